//! The Grafana dashboards as committed: current schema, a Prometheus datasource variable, stable
//! unique uids, valid PromQL in every panel, and threshold lines equal to the bundled criteria.
//! (That they equal what dashboards/generate.py writes is checked by .ci/lint-deploy, which
//! installs the generator's pinned grafana-foundation-sdk from PyPI; tests/it/e2e.rs proves
//! every panel has data through a real Prometheus.)

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

/// Every panel lies on Grafana's 24-column grid with an id of its own, and no two overlap: the
/// builder places a panel itself when it is given x = 0, y = 0 after the first, so a panel added
/// carelessly would land elsewhere or on top of another.
#[test]
fn panels_tile_the_grid_without_overlap() {
    for (file, d) in dashboards() {
        let mut ids = HashSet::new();
        let mut boxes: Vec<(String, [u64; 4])> = Vec::new();
        for p in d["panels"].as_array().expect("panels") {
            let title = p["title"].as_str().expect("title").to_string();
            assert!(
                ids.insert(p["id"].as_u64().expect("id")),
                "{file}: {title}: id"
            );
            let g = &p["gridPos"];
            let [x, y, w, h] = ["x", "y", "w", "h"].map(|k| g[k].as_u64().expect("gridPos"));
            assert!(w > 0 && h > 0 && x + w <= 24, "{file}: {title}: {g}");
            for (other, [ox, oy, ow, oh]) in &boxes {
                let apart = x + w <= *ox || ox + ow <= x || y + h <= *oy || oy + oh <= y;
                assert!(apart, "{file}: {title} overlaps {other}");
            }
            boxes.push((title, [x, y, w, h]));
        }
    }
}
