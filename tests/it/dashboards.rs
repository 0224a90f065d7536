//! The Grafana dashboards: generated from dashboards/generate.py (and in sync with it), current
//! schema, a Prometheus datasource variable, stable unique uids, valid PromQL in every panel,
//! and threshold lines equal to the bundled criteria.

use std::collections::HashSet;
use std::process::Command;

pub fn dashboards() -> Vec<(String, serde_json::Value)> {
    let mut files: Vec<_> = std::fs::read_dir("dashboards")
        .expect("dashboards/")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).expect("read dashboard");
            (
                p.display().to_string(),
                serde_json::from_str(&text).expect("dashboard JSON"),
            )
        })
        .collect()
}

/// Every PromQL expression of every panel, with Grafana's variables made concrete.
pub fn expressions() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (file, d) in dashboards() {
        for p in d["panels"].as_array().expect("panels") {
            for t in p["targets"].as_array().expect("targets") {
                let expr = t["expr"].as_str().expect("expr");
                let concrete = expr
                    .replace("$__rate_interval", "1m")
                    .replace("$probe", ".*")
                    .replace("$incident", ".*");
                out.push((format!("{file}: {}", p["title"]), concrete));
            }
        }
    }
    out
}

#[test]
fn committed_dashboards_match_the_generator() {
    let dir = tempfile::tempdir().expect("temp dir");
    let status = Command::new("python3")
        .arg("dashboards/generate.py")
        .arg(dir.path())
        .status()
        .expect("python3");
    assert!(status.success());
    for (file, committed) in dashboards() {
        let name = std::path::Path::new(&file)
            .file_name()
            .expect("name")
            .to_owned();
        let fresh = std::fs::read_to_string(dir.path().join(&name)).expect("generated file");
        let fresh: serde_json::Value = serde_json::from_str(&fresh).expect("JSON");
        assert_eq!(
            committed, fresh,
            "{file}: run python3 dashboards/generate.py"
        );
    }
}

#[test]
fn dashboards_are_well_formed() {
    let mut uids = HashSet::new();
    let all = dashboards();
    assert_eq!(all.len(), 5);
    for (file, d) in &all {
        assert!(d["schemaVersion"].as_u64() >= Some(39), "{file}");
        let uid = d["uid"].as_str().expect("uid");
        assert!(
            uid.starts_with("pathwatch-") && uids.insert(uid.to_string()),
            "{file}: uid {uid}"
        );
        let vars = d["templating"]["list"].as_array().expect("variables");
        assert!(
            vars.iter()
                .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
            "{file}"
        );
        for p in d["panels"].as_array().expect("panels") {
            assert_eq!(
                p["datasource"]["uid"], "${datasource}",
                "{file}: {}",
                p["title"]
            );
            for t in p["targets"].as_array().expect("targets") {
                assert_eq!(t["datasource"]["uid"], "${datasource}");
            }
        }
    }
}

#[test]
fn every_panel_expression_is_valid_promql() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut rules = String::from("groups:\n  - name: dashboards\n    rules:\n");
    for (i, (_, expr)) in expressions().iter().enumerate() {
        rules.push_str(&format!(
            "      - record: dashboard:expr_{i}\n        expr: {}\n",
            serde_json::to_string(expr).expect("quote")
        ));
    }
    let path = dir.path().join("dashboards.rules.yml");
    std::fs::write(&path, rules).expect("write rules");
    let out = Command::new("promtool")
        .args(["check", "rules"])
        .arg(&path)
        .output()
        .expect("promtool must be installed");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn threshold_lines_match_the_bundled_criteria() {
    let text = std::fs::read_to_string("examples/staging.yaml").expect("staging example");
    let bound = |criterion: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.contains(&format!("name: {criterion},")))
            .unwrap_or_else(|| panic!("criterion {criterion} in examples/staging.yaml"));
        let after = line.split("max_seconds:").nth(1).expect("max_seconds");
        after
            .trim()
            .trim_end_matches('}')
            .trim()
            .parse()
            .expect("a number")
    };
    let threshold = |uid: &str, title_part: &str| -> f64 {
        let (_, d) = dashboards()
            .into_iter()
            .find(|(_, d)| d["uid"] == uid)
            .expect("dashboard");
        let p = d["panels"]
            .as_array()
            .expect("panels")
            .iter()
            .find(|p| p["title"].as_str().is_some_and(|t| t.contains(title_part)))
            .cloned()
            .expect("panel");
        assert_eq!(
            p["fieldConfig"]["defaults"]["custom"]["thresholdsStyle"]["mode"],
            "line+area"
        );
        p["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"]
            .as_f64()
            .expect("threshold")
    };
    assert_eq!(
        threshold("pathwatch-database", "usable session"),
        bound("database_connect")
    );
    assert_eq!(
        threshold("pathwatch-startup", "Startup time"),
        bound("startup")
    );
    assert_eq!(
        threshold("pathwatch-golden-path", "Login to final"),
        bound("golden_path")
    );
}
