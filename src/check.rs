//! `pathwatch check`: run every probe once, evaluate the incidents on those results, print a
//! table, JSON or JUnit XML, and say by exit code whether the selected incidents are resolved.
//! It replaces hand-run validation scripts in pipelines.
//!
//! It reads the loaded config and the runs' results and only renders them: a failing probe
//! is a row of the report, and the one way `run` fails is a [`CheckError`].

use crate::config::{Config, ProbeConfig};
use crate::core::clock::unix_now;
use crate::incident::engine::ProbeHistory;
use crate::incident::rootcause::{self, Judgement};
use crate::incident::{CriterionResult, IncidentSpec, Status, evaluate};
use crate::probe::ProbeSpec;
use crate::probe::RunResult;
use crate::probe::kinds::startup::Reference;
use crate::runner::run_once;
use serde::Serialize;
use std::fmt::Write as _;
use std::sync::Arc;

/// How `pathwatch check` prints its report (`--format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckFormat {
    /// Lines for a person: each incident, its criteria and each probe's outcome.
    #[default]
    Text,
    /// One JSON document (the [`Report`] as serialized).
    Json,
    /// JUnit XML: one test case per incident, for CI systems that read test reports.
    Junit,
}

/// The outcome of one `pathwatch check`: every selected probe run once and every incident
/// judged on that one run.
#[derive(Serialize)]
pub struct Report {
    /// `Root cause: vpc-connector (is ERROR); 6 failures follow from it` (depends_on).
    pub(crate) root_cause: Option<String>,
    pub(crate) judgement: Judgement,
    pub(crate) incidents: Vec<IncidentReport>,
    pub(crate) probes: Vec<ProbeReport>,
    /// True when every selected incident is resolved (or, with none, every probe passed).
    pub passed: bool,
}

#[derive(Serialize)]
pub(crate) struct IncidentReport {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) status: Status,
    pub(crate) criteria: Vec<CriterionResult>,
}

#[derive(Serialize)]
pub(crate) struct ProbeReport {
    pub(crate) name: String,
    pub(crate) kind: String,
    pub(crate) ok: bool,
    pub(crate) reason: String,
    pub(crate) failed_phase: Option<String>,
    pub(crate) duration_seconds: f64,
    pub(crate) detail: Option<String>,
}

/// Why `check` ran nothing.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// `--incident ID` names no incident of the config.
    #[error("no incident \"{0}\" in the config")]
    UnknownIncident(String),
}

/// Runs all probes once, concurrently, and evaluates `incidents` (all when empty).
pub async fn run(config: &Config, only: Option<&str>) -> Result<Report, CheckError> {
    let selected: Vec<&IncidentSpec> = config
        .incidents
        .iter()
        .filter(|i| only.is_none_or(|id| i.id == id))
        .collect();
    if let Some(id) = only
        && selected.is_empty()
    {
        return Err(CheckError::UnknownIncident(id.to_string()));
    }
    let runs: Vec<(ProbeConfig, Vec<Arc<RunResult>>)> =
        futures_util::future::join_all(config.probes.iter().map(|p| async move {
            let run = run_once(p.clone()).await;
            (ProbeConfig::clone(p), vec![Arc::new(run)])
        }))
        .await;
    let now = unix_now();
    let view = |name: &str| {
        runs.iter()
            .find(|(p, _)| p.name == name)
            .map(|(p, r)| ProbeHistory {
                kind: p.spec.kind(),
                interval: p.interval,
                timeout: p.timeout,
                runs: r,
            })
    };
    let incidents: Vec<IncidentReport> = selected
        .iter()
        .map(|spec| {
            // One run each: a single passing result is enough here, as in a manual check.
            let once = IncidentSpec {
                resolve_after: 1,
                reopen_after: 1,
                ..(*spec).clone()
            };
            let mut eval = evaluate(&once, &view, now, Status::Unknown);
            for c in &mut eval.criteria {
                untimed_startup(config, c);
            }
            IncidentReport {
                id: spec.id.clone(),
                title: spec.title.clone(),
                status: eval.status,
                criteria: eval.criteria,
            }
        })
        .collect();
    let probes: Vec<ProbeReport> = runs
        .iter()
        .map(|(p, r)| {
            let run = &r[0];
            ProbeReport {
                name: p.name.clone(),
                kind: p.spec.kind().to_string(),
                ok: run.ok(),
                reason: run.reason().to_string(),
                failed_phase: run.failed_phase.map(|f| f.to_string()),
                duration_seconds: run.duration.as_secs_f64(),
                detail: run.outcome.as_ref().err().map(|e| e.detail.clone()),
            }
        })
        .collect();
    // By name, so judging a large graph looks each run up once, not by a scan.
    let by_name: std::collections::HashMap<&str, &RunResult> = runs
        .iter()
        .map(|(p, r)| (p.name.as_str(), &*r[0]))
        .collect();
    let latest = |name: &str| by_name.get(name).copied();
    let judgement = rootcause::judge(&config.dependency_graph(), |name| {
        latest(name).is_some_and(|r| !r.ok())
    });
    let root_cause =
        judgement.line(|name| latest(name).map(super::probe::common::result::RunResult::brief));
    let passed = if incidents.is_empty() {
        probes.iter().all(|p| p.ok)
    } else {
        incidents.iter().all(|i| i.status == Status::Resolved)
    };
    Ok(Report {
        root_cause,
        judgement,
        incidents,
        probes,
        passed,
    })
}

/// A `startup` probe with `reference: restart` times a startup from pathwatch's own start,
/// which for `check` is the check itself: its "4ms < 30s" would time nothing. What one run can
/// tell is whether the service answers healthy now, so that is what the criterion says; its
/// verdict (healthy passes, unhealthy fails) is the engine's.
fn untimed_startup(config: &Config, c: &mut CriterionResult) {
    let restart = config.probes.iter().any(|p| {
        p.name == c.probe
            && matches!(&p.spec, ProbeSpec::Startup(s) if s.reference == Reference::Restart)
    });
    if restart && c.threshold.is_some() && c.met == Some(true) {
        c.value = None;
        c.display = "healthy now (check times no startup with reference: restart)".into();
    }
}

/// The report as text in `format`, ready to print.
pub fn render(report: &Report, format: CheckFormat) -> String {
    match format {
        CheckFormat::Text => text(report),
        CheckFormat::Json => serde_json::to_string_pretty(report).unwrap_or_default() + "\n",
        CheckFormat::Junit => junit(report),
    }
}

fn text(r: &Report) -> String {
    let mut out = String::new();
    if let Some(line) = &r.root_cause {
        let _ = writeln!(out, "{line}\n");
    }
    for inc in &r.incidents {
        let _ = writeln!(
            out,
            "Incident {} {}: {}",
            inc.id,
            inc.status.word(),
            inc.title
        );
        let rows: Vec<[String; 5]> = inc
            .criteria
            .iter()
            .map(|c| {
                [
                    c.name.clone(),
                    c.display.clone(),
                    c.threshold
                        .map(|t| format!("{t} s"))
                        .unwrap_or_else(|| "-".into()),
                    match c.met {
                        Some(true) => "PASS".into(),
                        Some(false) => "FAIL".into(),
                        None => "UNKNOWN".into(),
                    },
                    c.reason
                        .map(|r| r.to_string())
                        .unwrap_or_else(|| "-".into()),
                ]
            })
            .collect();
        table(
            &mut out,
            ["criterion", "value", "bound", "result", "reason"],
            &rows,
        );
        out.push('\n');
    }
    let _ = writeln!(out, "Probes");
    let rows: Vec<[String; 5]> = r
        .probes
        .iter()
        .map(|p| {
            [
                p.name.clone(),
                p.kind.clone(),
                if p.ok { "PASS".into() } else { "FAIL".into() },
                match (&p.failed_phase, p.ok) {
                    (Some(ph), false) => format!("{} (in {ph})", p.reason),
                    _ => p.reason.clone(),
                },
                crate::units::seconds(p.duration_seconds),
            ]
        })
        .collect();
    table(
        &mut out,
        ["probe", "kind", "result", "reason", "duration"],
        &rows,
    );
    // What JSON carries as `detail`: the reason alone rarely says what to fix.
    let failures: Vec<&ProbeReport> = r
        .probes
        .iter()
        .filter(|p| !p.ok && p.detail.is_some())
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(out, "\nFailures");
        for p in failures {
            let _ = writeln!(out, "  {}: {}", p.name, p.detail.as_deref().unwrap_or(""));
        }
    }
    out
}

fn table<const N: usize>(out: &mut String, head: [&str; N], rows: &[[String; N]]) {
    let mut widths = head.map(str::len);
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: Vec<&str>| {
        let mut l = String::from("  ");
        for (cell, w) in cells.iter().zip(widths) {
            let _ = write!(l, "{cell:<w$}  ");
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(out, head.to_vec());
    for row in rows {
        line(out, row.iter().map(String::as_str).collect());
    }
}

/// JUnit XML: one test suite per incident, one test case per criterion, so CI systems list
/// every criterion with its verdict.
fn junit(r: &Report) -> String {
    let mut out = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"pathwatch check\">\n",
    );
    for inc in &r.incidents {
        let failures = inc.criteria.iter().filter(|c| c.met != Some(true)).count();
        let _ = writeln!(
            out,
            "  <testsuite name=\"incident {}\" tests=\"{}\" failures=\"{failures}\">",
            xml(&inc.id),
            inc.criteria.len()
        );
        for c in &inc.criteria {
            let _ = write!(
                out,
                "    <testcase classname=\"pathwatch.incident.{}\" name=\"{}\" time=\"{:.3}\"",
                xml(&inc.id),
                xml(&c.name),
                c.value.filter(|_| c.threshold.is_some()).unwrap_or(0.0)
            );
            if c.met == Some(true) {
                out.push_str("/>\n");
            } else {
                let _ = writeln!(
                    out,
                    "><failure message=\"{}\" type=\"{}\">probe {}: {}</failure></testcase>",
                    xml(&c.display),
                    c.reason
                        .map(super::probe::Reason::as_str)
                        .unwrap_or("criterion"),
                    xml(&c.probe),
                    xml(&c.display)
                );
            }
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

fn xml(s: &str) -> String {
    crate::status_page::esc(s)
}
