//! The shipped alert rules: promtool accepts them, their unit tests pass, and every alert
//! carries a severity, a summary, a description, an absolute runbook_url to a section that
//! exists and a dashboard_url.

use std::process::Command;

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .output()
        .expect("promtool must be installed (Debian package prometheus; .ci/test installs it)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}

pub fn rule_files() -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir("alerts")
        .expect("alerts/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_string_lossy().ends_with(".rules.yml"))
        .collect();
    files.sort();
    files
}

/// The runbook base the shipped rules carry (alerts/install.py --runbook-base replaces it).
pub const RUNBOOK_BASE: &str =
    "https://github.com/pathwatch/pathwatch/blob/main/docs/src/runbook.md";

#[test]
fn promtool_checks_and_unit_tests_pass() {
    for f in rule_files() {
        let f = f.display().to_string();
        assert!(promtool(&["check", "rules", &f]).contains("SUCCESS"));
    }
    let tests: Vec<String> = std::fs::read_dir("alerts/tests")
        .expect("alerts/tests/")
        .map(|e| e.expect("entry").path().display().to_string())
        .collect();
    assert!(!tests.is_empty());
    let mut args = vec!["test", "rules"];
    args.extend(tests.iter().map(String::as_str));
    assert!(promtool(&args).contains("SUCCESS"));
}

#[test]
fn every_alert_has_severity_text_and_a_runbook_section() {
    let runbook = std::fs::read_to_string("docs/src/runbook.md").expect("docs/src/runbook.md");
    let anchors: Vec<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix("## "))
        .map(|h| h.trim().to_lowercase())
        .collect();
    let mut alerts = 0;
    for f in rule_files() {
        let text = std::fs::read_to_string(&f).expect("read rules");
        let doc: serde_json::Value = serde_saphyr::from_str(&text).expect("rules are YAML");
        for group in doc["groups"].as_array().expect("groups") {
            for rule in group["rules"].as_array().expect("rules") {
                let Some(name) = rule["alert"].as_str() else {
                    continue;
                };
                alerts += 1;
                let sev = rule["labels"]["severity"].as_str().unwrap_or("");
                // none: an inhibitor only, routed nowhere (alerts/alertmanager.yml).
                assert!(
                    ["critical", "warning", "info", "none"].contains(&sev),
                    "{name}: severity {sev:?}"
                );
                for key in ["summary", "description"] {
                    assert!(
                        rule["annotations"][key]
                            .as_str()
                            .is_some_and(|s| !s.is_empty()),
                        "{name}: {key}"
                    );
                }
                let link = rule["annotations"]["runbook_url"].as_str().unwrap_or("");
                // Absolute, under the one base alerts/install.py replaces.
                let anchor = link.strip_prefix(RUNBOOK_BASE).unwrap_or("");
                let anchor = anchor.strip_prefix('#').unwrap_or("");
                let dashboard = rule["annotations"]["dashboard_url"].as_str().unwrap_or("");
                assert!(
                    dashboard.starts_with("http://localhost:3000/d/pathwatch-"),
                    "{name}: dashboard_url {dashboard:?}"
                );
                assert_eq!(anchor, name.to_lowercase(), "{name}: runbook link {link:?}");
                assert!(
                    anchors.contains(&anchor.to_string()),
                    "{name}: no runbook section"
                );
            }
        }
    }
    assert!(alerts >= 15, "{alerts} alerts");
}

/// alerts/install.py: the runbook and Grafana bases set in one place, and `--scale` divides
/// durations only (the texts' own durations with them); promtool accepts what it writes.
#[test]
fn install_sets_the_link_bases_and_scales_only_durations() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("installed.rules.yml");
    let status = Command::new("python3")
        .arg("alerts/install.py")
        .arg(&out)
        .args([
            "--runbook-base",
            "https://wiki.example/pathwatch/runbook.md",
            "--grafana-url",
            "https://grafana.example/",
            "--scale",
            "30",
        ])
        .status()
        .expect("python3");
    assert!(status.success());
    let text = std::fs::read_to_string(&out).expect("installed rules");
    let shipped = std::fs::read_to_string("alerts/pathwatch.rules.yml").expect("rules");
    assert!(promtool(&["check", "rules", &out.display().to_string()]).contains("SUCCESS"));
    assert!(!text.contains(RUNBOOK_BASE) && !text.contains("http://localhost:3000"));
    let links = |t: &str, prefix: &str| t.lines().filter(|l| l.contains(prefix)).count();
    assert_eq!(
        links(
            &text,
            "runbook_url: https://wiki.example/pathwatch/runbook.md#"
        ),
        links(&shipped, "runbook_url: ")
    );
    assert_eq!(
        links(
            &text,
            "dashboard_url: \"https://grafana.example/d/pathwatch-"
        ),
        links(&shipped, "dashboard_url: ")
    );
    // for: 15m -> 30s, for: 2m -> 4s, [30m] -> [60s], interval: 10s -> 333ms
    assert!(
        text.contains("for: 30s") && text.contains("for: 4s"),
        "{text}"
    );
    assert!(text.contains("[60s]") && !text.contains("[30m]"));
    assert!(text.contains("interval: 333ms"));
    // The texts say what the copy does: for: 2m -> "for over 4 seconds", [10m] -> "in 20
    // seconds", for: 15m -> "for 30 seconds". Thresholds are no durations of their rule.
    for said in [
        "has been starting for over 4 seconds\"",
        "lines in 20 seconds\"",
        "another session in 20 seconds (",
        "container exits in 20 seconds in",
        "no fresh result for 30 seconds.\"",
        "the criterion is under 10 s.",
        "valid for less than 14 days",
    ] {
        assert!(text.contains(said), "{said:?} not in\n{text}");
    }
    let words = regex::Regex::new(r"\b\d+ (?:second|minute|hour|day)s?\b").expect("regex");
    let texts = |t: &str| -> Vec<String> {
        t.lines()
            .map(str::trim_start)
            .filter(|l| l.starts_with("summary: ") || l.starts_with("description: "))
            .map(String::from)
            .collect()
    };
    let changed: Vec<(String, String)> = texts(&shipped)
        .into_iter()
        .zip(texts(&text))
        .filter(|(a, b)| a != b)
        .collect();
    assert_eq!(changed.len(), 6, "{changed:#?}");
    for (a, b) in &changed {
        assert_eq!(words.replace_all(a, "D"), words.replace_all(b, "D"));
    }
    // Everything else is the shipped text: same lines once links and durations are set aside.
    let skeleton = |t: &str| -> Vec<String> {
        t.lines()
            .filter(|l| !l.contains("_url: ") && !l.trim_start().starts_with("for: "))
            .filter(|l| !l.trim_start().starts_with("interval: "))
            .filter(|l| !l.trim_start().starts_with("summary: "))
            .filter(|l| !l.trim_start().starts_with("description: "))
            .map(|l| {
                let mut out = String::new();
                let mut skip = false;
                for c in l.chars() {
                    match c {
                        '[' => skip = true,
                        ']' => skip = false,
                        _ if skip => continue,
                        _ => {}
                    }
                    out.push(c);
                }
                out
            })
            .collect()
    };
    assert_eq!(skeleton(&text), skeleton(&shipped));
    // A bad scale is refused.
    let bad = Command::new("python3")
        .args(["alerts/install.py", "-", "--scale", "0"])
        .output()
        .expect("python3");
    assert!(!bad.status.success());
}
