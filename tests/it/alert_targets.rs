//! alerts/ is the one source of every alert target: deploy/generate.py writes the
//! prometheus-operator PrometheusRule, GMP Rules and one Cloud Monitoring alert policy per
//! alert. These tests run the real generator and validators (python3, jsonschema, promtool):
//! the checked-in targets are current, a hand edit is caught, an expression or runbook change
//! reaches every target, and the policies pass the AlertPolicy schema and promtool.

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

pub fn python(args: &[&str]) -> Output {
    Command::new("python3")
        .args(args)
        .output()
        .expect("python3 must be installed (with pyyaml and jsonschema: .ci/install)")
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn yaml_file(path: &Path) -> Value {
    let t = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_str(&t).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// (group name, rule) of every alerting rule in alerts/*.rules.yml under `dir` (beside them,
/// alertmanager.yml is no rule file).
pub fn source_alerts(dir: &Path) -> Vec<(String, Value)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("alerts dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.to_str().is_some_and(|n| n.ends_with(".rules.yml")))
        .collect();
    files.sort();
    let mut out = Vec::new();
    for f in files {
        for g in yaml_file(&f)["groups"].as_array().expect("groups") {
            for r in g["rules"].as_array().expect("rules") {
                if r["alert"].is_string() {
                    out.push((g["name"].as_str().expect("name").to_string(), r.clone()));
                }
            }
        }
    }
    out
}

/// PathwatchDatabaseConnectSlow -> pathwatch-database-connect-slow (the policy's file name).
pub fn kebab(name: &str) -> String {
    let mut s = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            s.push('-');
        }
        s.push(c.to_ascii_lowercase());
    }
    s
}

fn prom_seconds(d: &str) -> u64 {
    let (n, unit) = d.split_at(d.len() - 1);
    let n: u64 = n
        .parse()
        .unwrap_or_else(|_| panic!("simple duration expected: {d}"));
    match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => panic!("unit of {d}"),
    }
}

/// The alerts that become Cloud Monitoring policies: all but severity none, which only
/// inhibit others in Alertmanager.
pub fn policy_alerts() -> Vec<(String, Value)> {
    source_alerts(Path::new("alerts"))
        .into_iter()
        .filter(|(_, r)| r["labels"]["severity"] != "none")
        .collect()
}

/// The first alert of alerts/: tests use whichever alert is there, not a hard-coded one.
fn first_alert() -> String {
    source_alerts(Path::new("alerts"))[0].1["alert"]
        .as_str()
        .expect("alert")
        .to_string()
}

fn policy(root: &Path, alert: &str) -> Value {
    yaml_file(&root.join(format!(
        "deploy/cloud-monitoring/policies/{}.yaml",
        kebab(alert)
    )))
}

fn rule_in(doc: &Value, alert: &str) -> Value {
    doc["spec"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").iter())
        .find(|r| r["alert"] == alert)
        .unwrap_or_else(|| panic!("{alert} missing"))
        .clone()
}

#[test]
fn generated_targets_are_current() {
    let out = python(&["deploy/generate.py", "--check"]);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn every_alert_has_one_policy_with_its_query_severity_duration_and_runbook() {
    let root = Path::new(".");
    let alerts = policy_alerts();
    assert!(!alerts.is_empty());
    let files = std::fs::read_dir("deploy/cloud-monitoring/policies")
        .expect("policies dir")
        .count();
    assert_eq!(files, alerts.len(), "one policy file per alert, no strays");
    for (group, rule) in &alerts {
        let name = rule["alert"].as_str().expect("alert");
        let p = policy(root, name);
        assert_eq!(p["displayName"], format!("{group}/{name}"));
        let c = &p["conditions"][0]["conditionPrometheusQueryLanguage"];
        assert_eq!(c["query"], rule["expr"].as_str().expect("expr").trim());
        assert_eq!(c["alertRule"], name);
        assert_eq!(c["ruleGroup"], group.as_str());
        assert_eq!(c["evaluationInterval"], "30s");
        assert_eq!(c["disableMetricValidation"], true);
        match rule["for"].as_str() {
            Some(d) => assert_eq!(c["duration"], format!("{}s", prom_seconds(d)), "{name}"),
            None => assert!(c["duration"].is_null(), "{name}"),
        }
        let sev = rule["labels"]["severity"].as_str().expect("severity");
        assert_eq!(c["labels"]["severity"], sev);
        let expected = match sev {
            "critical" => Value::from("CRITICAL"),
            "warning" => Value::from("WARNING"),
            "error" => Value::from("ERROR"),
            _ => Value::Null,
        };
        assert_eq!(p["severity"], expected, "{name}");
        // The runbook link: the rule's own (runbook_url or runbook), made absolute at deploy.
        // The shipped repository base becomes the placeholder deploy.py fills.
        let ann = &rule["annotations"];
        let link = ann["runbook_url"]
            .as_str()
            .or(ann["runbook"].as_str())
            .expect("runbook");
        let link = link
            .strip_prefix("https://github.com/pathwatch/pathwatch/blob/main/")
            .unwrap_or(link);
        let url = p["documentation"]["links"][0]["url"]
            .as_str()
            .expect("link");
        assert!(
            url.ends_with(link),
            "{name}: {url} does not end with {link}"
        );
        assert!(
            p["documentation"]["content"]
                .as_str()
                .expect("content")
                .contains(url)
        );
        assert!(
            !p["documentation"]["content"]
                .as_str()
                .unwrap_or("")
                .contains("{{")
        );
        // The channels are a deploy-time parameter (deploy.py --channels).
        assert_eq!(p["notificationChannels"], Value::Array(vec![]));
        let head = std::fs::read_to_string(format!(
            "deploy/cloud-monitoring/policies/{}.yaml",
            kebab(name)
        ))
        .expect("read");
        assert!(head.starts_with("# Generated by deploy/generate.py"));
    }
}

#[test]
fn policies_pass_the_alert_policy_schema_and_a_broken_one_does_not() {
    let mut args = vec!["deploy/validate.py".to_string(), "alert-policy".into()];
    for e in std::fs::read_dir("deploy/cloud-monitoring/policies").expect("dir") {
        args.push(e.expect("entry").path().display().to_string());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = python(&argv);
    assert!(out.status.success(), "{}", text(&out));
    let n = policy_alerts().len();
    assert!(
        text(&out).contains(&format!("{n} of {n} valid")),
        "{}",
        text(&out)
    );

    // The schema can fail: fields and values the API refuses.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut p = policy(Path::new("."), &first_alert());
    p["severity"] = "INFO".into();
    p["conditions"][0]["conditionPrometheusQueryLanguage"]["evaluationInterval"] = "45s".into();
    p["userLabels"]["Team"] = "sre".into();
    p["notificationChannels"] = serde_json::json!(["my-email"]);
    p["documentation"]["mimeType"] = "text/html".into();
    p["nonsense"] = true.into();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, p.to_string()).expect("write");
    let out = python(&[
        "deploy/validate.py",
        "alert-policy",
        bad.to_str().expect("utf-8"),
    ]);
    let t = text(&out);
    assert_eq!(out.status.code(), Some(1), "{t}");
    for needle in [
        "severity: 'INFO' is not one of",
        "45s is not a positive multiple of 30s",
        "'Team' does not match",
        "notificationChannels/0: 'my-email' does not match",
        "mimeType: 'text/html' is not one of",
        "'nonsense' was unexpected",
    ] {
        assert!(t.contains(needle), "missing {needle:?} in:\n{t}");
    }
}

#[test]
fn every_generated_promql_expression_parses_with_promtool() {
    let mut args = vec!["deploy/validate.py".to_string(), "promql".into()];
    for e in std::fs::read_dir("deploy/cloud-monitoring/policies").expect("dir") {
        args.push(e.expect("entry").path().display().to_string());
    }
    args.push("k8s/gmp/rules.yaml".into());
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = python(&argv);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!text(&out).contains("no PromQL"));

    // A query promtool rejects fails the check and is named.
    let dir = tempfile::tempdir().expect("tempdir");
    let name = first_alert();
    let mut p = policy(Path::new("."), &name);
    p["conditions"][0]["conditionPrometheusQueryLanguage"]["query"] =
        "rate(up{job=\"pathwatch\"}[5m]".into();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, p.to_string()).expect("write");
    let out = python(&["deploy/validate.py", "promql", bad.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains(&name), "{}", text(&out));
}

/// Copies alerts/ to a temp dir and generates every target there.
fn generate_from(alerts: &Path, out: &Path) {
    let o = python(&[
        "deploy/generate.py",
        "--alerts",
        alerts.to_str().expect("utf-8"),
        "--out",
        out.to_str().expect("utf-8"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn an_expression_and_runbook_change_in_alerts_reaches_every_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    let alerts = dir.path().join("alerts");
    std::fs::create_dir(&alerts).expect("mkdir");
    // Change the first alert of the first rule file, whatever the rules say today.
    let mut first = None;
    for e in std::fs::read_dir("alerts").expect("alerts/") {
        let p = e.expect("entry").path();
        if p.to_str().is_some_and(|n| n.ends_with(".rules.yml")) {
            std::fs::copy(&p, alerts.join(p.file_name().expect("name"))).expect("copy");
        }
    }
    let (_, rule) = source_alerts(&alerts).remove(0);
    let name = rule["alert"].as_str().expect("alert").to_string();
    let old = rule["expr"].as_str().expect("expr").trim().to_string();
    let new = format!("({old}) * 1");
    let runbook = "https://runbooks.example/pathwatch#changed";
    for e in std::fs::read_dir(&alerts).expect("dir") {
        let p = e.expect("entry").path();
        let mut doc = yaml_file(&p);
        for g in doc["groups"].as_array_mut().expect("groups") {
            for r in g["rules"].as_array_mut().expect("rules") {
                if r["alert"] == name.as_str() && first.is_none() {
                    r["expr"] = new.clone().into();
                    r["annotations"]["runbook_url"] = runbook.into();
                    first = Some(p.clone());
                }
            }
        }
        // JSON is YAML: the generator reads it as it reads the hand-written files.
        std::fs::write(&p, doc.to_string()).expect("write");
    }
    assert!(first.is_some());
    let out = dir.path().join("out");
    generate_from(&alerts, &out);

    let op = rule_in(&yaml_file(&out.join("k8s/base/prometheusrule.yaml")), &name);
    let gmp = rule_in(&yaml_file(&out.join("k8s/gmp/rules.yaml")), &name);
    let pol = policy(&out, &name);
    assert_eq!(op["expr"], new.as_str(), "PrometheusRule");
    assert_eq!(gmp["expr"], new.as_str(), "GMP Rules");
    assert_eq!(
        pol["conditions"][0]["conditionPrometheusQueryLanguage"]["query"],
        new.as_str(),
        "alert policy"
    );
    assert_eq!(pol["documentation"]["links"][0]["url"], runbook);
    // The repository's targets still carry the old expression: the change came from the copy.
    assert_eq!(
        policy(Path::new("."), &name)["conditions"][0]["conditionPrometheusQueryLanguage"]["query"],
        old.as_str()
    );
    // And the checked-in targets are now stale against the changed source: CI would fail.
    let o = python(&[
        "deploy/generate.py",
        "--check",
        "--alerts",
        alerts.to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    for f in [
        "k8s/base/prometheusrule.yaml".to_string(),
        "k8s/gmp/rules.yaml".into(),
        format!("deploy/cloud-monitoring/policies/{}.yaml", kebab(&name)),
    ] {
        assert!(
            t.contains(&format!("{f}: differs")),
            "{f} not named in:\n{t}"
        );
    }
}

#[test]
fn the_check_names_a_hand_edited_missing_or_stray_target() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path();
    generate_from(Path::new("alerts"), out);
    let check = || {
        python(&[
            "deploy/generate.py",
            "--check",
            "--out",
            out.to_str().expect("utf-8"),
        ])
    };
    assert!(check().status.success(), "{}", text(&check()));
    let pdir = out.join("deploy/cloud-monitoring/policies");
    let edited = format!("{}.yaml", kebab(&first_alert()));
    let t = std::fs::read_to_string(pdir.join(&edited)).expect("read");
    std::fs::write(pdir.join(&edited), t.replace("\"OR\"", "\"AND\"")).expect("write");
    std::fs::remove_file(out.join("k8s/gmp/rules.yaml")).expect("rm");
    std::fs::write(pdir.join("pathwatch-gone.yaml"), "{}").expect("write");
    let o = check();
    let t = text(&o);
    assert_eq!(o.status.code(), Some(1), "{t}");
    assert!(t.contains(&format!("policies/{edited}: differs")), "{t}");
    assert!(t.contains("k8s/gmp/rules.yaml: missing"), "{t}");
    assert!(
        t.contains("policies/pathwatch-gone.yaml: no alert generates it"),
        "{t}"
    );
}

#[test]
fn a_rule_no_target_can_carry_is_refused_with_its_name() {
    let dir = tempfile::tempdir().expect("tempdir");
    let f = dir.path().join("x.rules.yml");
    std::fs::write(
        &f,
        "groups:\n  - name: g\n    interval: 45s\n    rules:\n      - alert: Odd\n        expr: up == 0\n        annotations: {runbook: docs/runbook.md#odd}\n",
    )
    .expect("write");
    let o = python(&[
        "deploy/generate.py",
        "--alerts",
        dir.path().to_str().expect("utf-8"),
        "--out",
        dir.path().join("out").to_str().expect("utf-8"),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("x.rules.yml: group g: interval 45s is not a positive multiple of 30s"),
        "{}",
        text(&o)
    );
}
