//! The status page (`/`) and its JSON twin (`/api/status`): each incident with its criteria,
//! each probe with its last result and a sparkline of recent durations. Server-rendered HTML
//! with inline CSS and SVG, no scripts; it refreshes itself.

use crate::core::clock::unix_now;
use crate::incident::engine::Progress;
use crate::incident::{CriterionResult, Status};
use crate::store::State;
use serde::Serialize;
use std::fmt::Write as _;

#[derive(Serialize)]
pub(crate) struct Snapshot {
    pub(crate) version: &'static str,
    pub(crate) generated_unix: f64,
    /// `Root cause: vpc-connector (is ERROR); 6 failures follow from it`, when probes in a
    /// dependency graph fail; the page shows it above everything else.
    pub(crate) root_cause: Option<String>,
    /// The judgement behind it: root causes, and what each failure follows from.
    pub(crate) judgement: crate::incident::rootcause::Judgement,
    pub(crate) incidents: Vec<IncidentView>,
    pub(crate) probes: Vec<ProbeView>,
}

#[derive(Serialize)]
pub(crate) struct IncidentView {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) status: Status,
    pub(crate) last_change_unix: Option<f64>,
    pub(crate) changes: u64,
    pub(crate) resolve_after: u32,
    /// `{"passing":1,"needed":2}` while every criterion passes but the incident is not
    /// resolved yet; the page shows "resolving: 1 of 2 passing results".
    pub(crate) resolving: Option<Progress>,
    /// The same progress as text, for people reading the JSON.
    pub(crate) progress: Option<String>,
    pub(crate) criteria: Vec<CriterionResult>,
    /// Every status change since pathwatch started (bounded), oldest first: when, from, to,
    /// and the criteria whose verdict moved, with their values then.
    pub timeline: Vec<crate::incident::StatusChange>,
}

#[derive(Serialize)]
pub(crate) struct ProbeView {
    pub(crate) name: String,
    pub(crate) kind: String,
    /// None before the first run.
    pub(crate) ok: Option<bool>,
    pub(crate) reason: Option<String>,
    pub(crate) failed_phase: Option<String>,
    pub(crate) duration_seconds: Option<f64>,
    pub(crate) finished_unix: Option<f64>,
    pub(crate) detail: Option<String>,
    /// A postgres probe's read of the server's connections (`connections: true`):
    /// `6 of 7 usable (max_connections 10, 3 reserved)`, or why it could not read them.
    pub(crate) connections: Option<String>,
    /// Recent runs, oldest first: (duration seconds, ok).
    pub(crate) history: Vec<(f64, bool)>,
    /// How late recent scheduled runs started against their slots, seconds, oldest first.
    pub(crate) lateness_seconds: Vec<f64>,
}

pub(crate) fn snapshot(state: &State) -> Snapshot {
    let incidents = state
        .incidents()
        .into_iter()
        .map(|(spec, t)| IncidentView {
            id: spec.id,
            title: spec.title,
            status: t.status,
            last_change_unix: (t.changes > 0).then_some(t.last_change_unix),
            changes: t.changes,
            resolve_after: spec.resolve_after,
            resolving: t.evaluation.as_ref().and_then(|e| e.resolving),
            progress: t
                .evaluation
                .as_ref()
                .and_then(|e| e.resolving)
                .map(super::incident::engine::Progress::text),
            timeline: t.timeline.iter().cloned().collect(),
            criteria: t.evaluation.map(|e| e.criteria).unwrap_or_default(),
        })
        .collect();
    let probes = state
        .probes()
        .into_iter()
        .map(|(name, e)| {
            let last = e.latest();
            ProbeView {
                name,
                kind: e.kind.to_string(),
                ok: last.map(|r| r.ok()),
                reason: last.filter(|r| !r.ok()).map(|r| r.reason().to_string()),
                failed_phase: last.and_then(|r| r.failed_phase).map(|p| p.to_string()),
                duration_seconds: last.map(|r| r.duration.as_secs_f64()),
                finished_unix: last.map(|r| r.finished_unix_seconds),
                detail: last
                    .and_then(|r| r.outcome.as_ref().err())
                    .map(|e| e.detail.clone()),
                connections: last
                    .and_then(|r| r.fact("connections"))
                    .map(|c| format!("connections: {c}")),
                history: e
                    .points
                    .iter()
                    .map(|p| (f64::from(p.seconds), p.ok))
                    .collect(),
                lateness_seconds: e
                    .points
                    .iter()
                    .filter_map(|p| p.lateness_seconds.map(f64::from))
                    .collect(),
            }
        })
        .collect();
    Snapshot {
        version: env!("CARGO_PKG_VERSION"),
        generated_unix: unix_now(),
        root_cause: state.root_cause_line(),
        judgement: state.judgement(),
        incidents,
        probes,
    }
}

const STYLE: &str = "
:root{--ok:#1a7f37;--bad:#cf222e;--unk:#6e7781;--bg:#f6f8fa;--card:#fff;--ink:#1f2328}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--card:#161b22;--ink:#e6edf3;--ok:#3fb950;--bad:#f85149}}
*{box-sizing:border-box}body{margin:0;font:clamp(14px,1.1vw,22px)/1.45 system-ui,sans-serif;background:var(--bg);color:var(--ink)}
header{display:flex;flex-wrap:wrap;gap:.3em 1em;align-items:baseline;padding:.8em 1em}h1{margin:0;font-size:1.4em}
header a{color:inherit}main{padding:0 1em 2em;display:grid;gap:1em}
section{background:var(--card);border-radius:10px;padding:.8em 1em;box-shadow:0 1px 3px #0002;overflow-x:auto}
h2{margin:.1em 0 .4em;font-size:1.15em}.badge{display:inline-block;padding:.1em .6em;border-radius:999px;color:#fff;font-weight:700;letter-spacing:.04em}
.RESOLVED,.pass{background:var(--ok)}.PRESENT,.fail{background:var(--bad)}.UNKNOWN,.none{background:var(--unk)}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3em .5em;border-bottom:1px solid #8883;vertical-align:middle}
th{font-weight:600;font-size:.85em;opacity:.8}td.num{font-variant-numeric:tabular-nums;white-space:nowrap}.detail{font-size:.85em;opacity:.85;max-width:40em}
svg.spark{width:8em;height:1.6em}.muted{opacity:.7;font-size:.9em}
.timeline svg{width:100%;height:.9em;display:block;margin-top:.6em;border-radius:3px}.timeline ol{margin:.3em 0 0;padding-left:1.6em;font-size:.85em}
rect.RESOLVED{fill:var(--ok)}rect.PRESENT{fill:var(--bad)}rect.UNKNOWN{fill:var(--unk)}
.rootcause{margin:0;padding:.7em 1em;border-radius:10px;background:var(--bad);color:#fff;font-weight:700;font-size:1.1em}
@media (max-width:640px){.w{display:none}svg.spark{width:5em}td.num{white-space:normal}}
";

/// The page; `refresh` seconds between automatic reloads.
pub(crate) fn html(s: &Snapshot, refresh: u32) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let worst = s
        .incidents
        .iter()
        .map(|i| i.status)
        .max_by_key(|st| match st {
            Status::Present => 2,
            Status::Unknown => 1,
            Status::Resolved => 0,
        });
    let title = match worst {
        Some(st) => format!("{} · pathwatch", st.word()),
        None => "pathwatch".to_string(),
    };
    let _ = write!(
        out,
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width,initial-scale=1\">\
         <meta http-equiv=refresh content={refresh}><title>{title}</title><style>{STYLE}</style></head><body>\
         <header><h1>pathwatch</h1><span class=muted>v{} · refreshes every {refresh} s</span>\
         <a href=/metrics>metrics</a><a href=/api/status>json</a></header><main>",
        s.version
    );
    if let Some(line) = &s.root_cause {
        let _ = write!(out, "<p class=rootcause id=root-cause>{}</p>", esc(line));
    }
    for inc in &s.incidents {
        incident(&mut out, inc, s.generated_unix);
    }
    probes(&mut out, s);
    out.push_str("</main></body></html>");
    out
}

fn incident(out: &mut String, inc: &IncidentView, now: f64) {
    let st = inc.status.word();
    let _ = write!(
        out,
        "<section id=\"incident-{id}\"><h2>Incident {id} <span class=\"badge {st}\">{st}</span></h2><div>{title}</div>\
         <p class=muted>{changes} status changes{since}{hint}</p>\
         <table><tr><th>criterion</th><th class=w>probe</th><th>value</th><th class=w>bound</th><th>result</th><th class=w>reason</th></tr>",
        id = esc(&inc.id),
        title = esc(&inc.title),
        changes = inc.changes,
        since = inc
            .last_change_unix
            .map(|t| format!(", last {} ago", ago(now - t)))
            .unwrap_or_default(),
        hint = inc
            .resolving
            .map(|p| format!("; {} (every criterion passes now)", p.text()))
            .unwrap_or_default(),
    );
    for c in &inc.criteria {
        let (cls, word) = match c.met {
            Some(true) => ("pass", "PASS"),
            Some(false) => ("fail", "FAIL"),
            None => ("none", "—"),
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=w>{}</td><td class=num>{}</td><td class=\"num w\">{}</td><td><span class=\"badge {cls}\">{word}</span></td><td class=w>{}</td></tr>",
            esc(&c.name),
            esc(&c.probe),
            esc(&c.display),
            c.threshold.map(|t| format!("{t} s")).unwrap_or_default(),
            c.reason.map(super::probe::Reason::as_str).unwrap_or(""),
        );
    }
    out.push_str("</table>");
    timeline(out, inc, now);
    out.push_str("</section>");
}

/// Changes listed under the strip; the JSON has them all.
const TIMELINE_LISTED: usize = 12;

/// The incident's status over time as one strip (a segment per status, from the first change
/// to now), and its latest changes with the criteria that moved: the postmortem's timeline.
fn timeline(out: &mut String, inc: &IncidentView, now: f64) {
    let Some(first) = inc.timeline.first() else {
        return;
    };
    let (start, w) = (first.at_unix, 1000.0);
    let span = (now - start).max(1.0);
    let x = |t: f64| ((t - start) / span * w).clamp(0.0, w);
    let mut strip = String::new();
    for (i, c) in inc.timeline.iter().enumerate() {
        let end = inc.timeline.get(i + 1).map_or(now, |n| n.at_unix);
        let _ = write!(
            strip,
            "<rect class={} x=\"{:.1}\" y=0 width=\"{:.1}\" height=12><title>{} from {}</title></rect>",
            c.to.word(),
            x(c.at_unix),
            (x(end) - x(c.at_unix)).max(1.0),
            c.to.word(),
            clock(c.at_unix),
        );
    }
    let _ = write!(
        out,
        "<div class=timeline><svg viewBox=\"0 0 {w} 12\" preserveAspectRatio=none role=img \
         aria-label=\"status since {}\">{strip}</svg><div class=muted>since {} · now</div><ol reversed>",
        clock(start),
        clock(start),
    );
    for c in inc.timeline.iter().rev().take(TIMELINE_LISTED) {
        let moved: Vec<String> = c
            .criteria
            .iter()
            .map(|(name, met, shown)| {
                let verdict = match met {
                    Some(true) => "PASS",
                    Some(false) => "FAIL",
                    None => "no data",
                };
                format!("{} {verdict} ({})", esc(name), esc(shown))
            })
            .collect();
        let _ = write!(
            out,
            "<li><span class=num>{}</span> {} &rarr; <span class=\"badge {}\">{}</span> {}</li>",
            clock(c.at_unix),
            c.from.word(),
            c.to.word(),
            c.to.word(),
            moved.join("; "),
        );
    }
    out.push_str("</ol></div>");
}

/// A unix time as RFC 3339 UTC to the second (what a postmortem quotes).
fn clock(unix: f64) -> String {
    let since = std::time::Duration::try_from_secs_f64(unix.max(0.0)).unwrap_or_default();
    let t = std::time::UNIX_EPOCH + since;
    humantime::format_rfc3339_seconds(t).to_string()
}

fn probes(out: &mut String, s: &Snapshot) {
    out.push_str(
        "<section id=probes><h2>Probes</h2><table><tr><th>probe</th><th class=w>kind</th><th>result</th>\
         <th>reason</th><th class=w>step</th><th class=w>last</th><th>recent</th><th class=w>detail</th></tr>",
    );
    for p in &s.probes {
        let (cls, word) = match p.ok {
            Some(true) => ("pass", "OK"),
            Some(false) => ("fail", "FAIL"),
            None => ("none", "waiting"),
        };
        let _ = write!(
            out,
            "<tr id=\"probe-{name}\"><td>{name}</td><td class=w>{kind}</td><td><span class=\"badge {cls}\">{word}</span></td>\
             <td>{reason}</td><td class=w>{step}</td><td class=\"num w\">{last}</td><td>{spark}</td><td class=\"detail w\">{detail}</td></tr>",
            name = esc(&p.name),
            kind = esc(&p.kind),
            reason = reason_cell(p, &s.judgement),
            step = p.failed_phase.as_deref().unwrap_or(""),
            last = p
                .duration_seconds
                .map(crate::units::seconds)
                .unwrap_or_default(),
            spark = sparkline(&p.history),
            detail = esc(p
                .detail
                .as_deref()
                .or(p.connections.as_deref())
                .unwrap_or("")),
        );
    }
    out.push_str("</table></section>");
}

/// A probe's reason, and what its failure follows from (depends_on): `refused · from
/// vpc-connector`; a root cause says so.
fn reason_cell(p: &ProbeView, j: &crate::incident::rootcause::Judgement) -> String {
    let reason = esc(p.reason.as_deref().unwrap_or(""));
    match j.blocked_by.get(&p.name) {
        Some(causes) if !causes.is_empty() => format!(
            "{reason} <span class=muted>· follows from {}</span>",
            esc(&causes.join(", "))
        ),
        Some(_) => format!("{reason} <strong>· root cause</strong>"),
        None => reason,
    }
}

/// The smallest full scale of a sparkline: differences of microseconds (a loopback connect
/// going from 0.2 to 0.9 ms) are noise a person should see as a flat line, not as spikes.
const SPARK_MIN_SCALE: f64 = 0.010;

/// Recent durations as an SVG line; failed runs are red dots. A single run is a short flat
/// line with its dot, not a stray dot on its own.
pub(crate) fn sparkline(history: &[(f64, bool)]) -> String {
    if history.is_empty() {
        return String::new();
    }
    let (w, h) = (120.0, 24.0);
    let max = history
        .iter()
        .map(|(d, _)| *d)
        .fold(SPARK_MIN_SCALE, f64::max);
    let step = if history.len() > 1 {
        w / (history.len() - 1) as f64
    } else {
        0.0
    };
    let point = |i: usize, d: f64| (i as f64 * step, h - 2.0 - (d / max) * (h - 4.0));
    let mut line = String::new();
    let mut dots = String::new();
    for (i, (d, ok)) in history.iter().enumerate() {
        let (x, y) = point(i, *d);
        let _ = write!(line, "{x:.1},{y:.1} ");
        if history.len() == 1 {
            let _ = write!(line, "{w:.1},{y:.1} ");
        }
        // A single run has no line to draw: show it as a dot.
        if !ok || history.len() == 1 {
            let fill = if *ok { "currentColor" } else { "#cf222e" };
            let _ = write!(
                dots,
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"2.2\" fill=\"{fill}\"/>"
            );
        }
    }
    format!(
        "<svg class=spark viewBox=\"-3 0 {} {h}\" role=img aria-label=\"recent durations, scale {}\">\
         <polyline fill=none stroke=currentColor stroke-width=1.5 points=\"{}\"/>{dots}</svg>",
        w + 6.0,
        crate::units::seconds(max),
        line.trim_end()
    )
}

fn ago(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        _ => format!("{} h", s / 3600),
    }
}

pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::sparkline;

    /// The y coordinates of the polyline's points.
    fn ys(svg: &str) -> Vec<f64> {
        let points = svg
            .split("points=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("");
        points
            .split_whitespace()
            .filter_map(|p| p.split(',').nth(1)?.parse().ok())
            .collect()
    }

    #[test]
    fn microsecond_noise_stays_flat_and_a_real_jump_shows() {
        // 0.2 ms to 0.9 ms on loopback: within 2 px of the bottom (the line is 24 px high).
        let noise = sparkline(&[(0.0002, true), (0.0009, true), (0.0003, true)]);
        assert!(ys(&noise).iter().all(|y| *y > 20.0), "{noise}");
        assert!(noise.contains("scale 10 ms"), "{noise}");
        // 10 ms to 2 s: the slow run reaches the top.
        let jump = sparkline(&[(0.010, true), (2.0, false)]);
        assert!(ys(&jump)[1] < 3.0, "{jump}");
        assert!(
            jump.contains("#cf222e"),
            "a failed run is a red dot: {jump}"
        );
    }

    #[test]
    fn a_single_run_is_a_short_line_with_its_dot() {
        let one = sparkline(&[(0.5, true)]);
        assert_eq!(ys(&one).len(), 2, "{one}");
        assert!(one.contains("<circle"), "{one}");
        assert_eq!(sparkline(&[]), "");
    }
}
