//! Managed Service for Prometheus wiring, checked offline: on Cloud Run the collector sidecar
//! scrapes pathwatch's port after pathwatch started, with CPU always allocated, and the service
//! validates as a Knative Service with the fields Cloud Run accepts; on GKE the GMP component
//! swaps the operator's kinds for PodMonitoring and Rules; every scrape config names the job
//! the alerts select; deploy.py fills channels and runbook links into valid policies.

use crate::alert_targets::{python, source_alerts, text, yaml_file};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn yaml(path: &str) -> Value {
    yaml_file(Path::new(path))
}

fn container<'a>(svc: &'a Value, name: &str) -> &'a Value {
    svc["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// The job values the alert rules select (`job="..."`), e.g. {"pathwatch"}.
fn jobs_in_alerts() -> Vec<String> {
    let mut jobs = Vec::new();
    for (_, r) in source_alerts(Path::new("alerts")) {
        let expr = r["expr"].as_str().unwrap_or("");
        for part in expr.split("job=\"").skip(1) {
            let j = part.split('"').next().unwrap_or("").to_string();
            if !jobs.contains(&j) {
                jobs.push(j);
            }
        }
    }
    jobs
}

#[test]
fn the_cloud_run_service_runs_the_gmp_collector_after_pathwatch() {
    let out = python(&[
        "deploy/validate.py",
        "cloud-run-service",
        "k8s/cloudrun/service.yaml",
    ]);
    assert!(out.status.success(), "{}", text(&out));

    let svc = yaml("k8s/cloudrun/service.yaml");
    let ann = &svc["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(ann["run.googleapis.com/cpu-throttling"], "false");
    let deps: Value = serde_json::from_str(
        ann["run.googleapis.com/container-dependencies"]
            .as_str()
            .expect("dependencies"),
    )
    .expect("JSON");
    assert_eq!(deps["collector"], serde_json::json!(["pathwatch"]));

    let col = container(&svc, "collector");
    assert!(col["image"].as_str().expect("image").starts_with(
        "us-docker.pkg.dev/cloud-ops-agents-artifacts/cloud-run-gmp-sidecar/cloud-run-gmp-sidecar:"
    ));
    assert!(col["ports"].is_null(), "only the backend takes ingress");
    assert_eq!(col["startupProbe"]["httpGet"]["port"], 13133);
    let mount = &col["volumeMounts"][0];
    assert_eq!(mount["mountPath"], "/etc/rungmp");
    let vol = svc["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["name"] == mount["name"])
        .expect("the mounted volume");
    assert_eq!(vol["secret"]["items"][0]["path"], "config.yaml");

    // The RunMonitoring scrapes the port pathwatch listens on, as the job the alerts select.
    let rm = yaml("k8s/cloudrun/runmonitoring.yaml");
    assert_eq!(rm["apiVersion"], "monitoring.googleapis.com/v1beta");
    assert_eq!(rm["kind"], "RunMonitoring");
    let pw = container(&svc, "pathwatch");
    let args: Vec<&str> = pw["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let listen = args[args
        .iter()
        .position(|a| *a == "--listen")
        .expect("--listen")
        + 1];
    let port = listen.rsplit(':').next().expect("port");
    let ep = &rm["spec"]["endpoints"][0];
    assert_eq!(ep["port"], port, "the port is a string in RunMonitoring");
    assert_eq!(ep["path"], "/metrics");
    assert_eq!(ep["interval"], "30s");
    assert_eq!(
        jobs_in_alerts(),
        vec![rm["metadata"]["name"].as_str().expect("name").to_string()]
    );
    assert_eq!(
        pw["startupProbe"]["httpGet"]["port"]
            .as_u64()
            .map(|p| p.to_string()),
        Some(port.to_string())
    );
}

/// One change to a copy of the service that Cloud Run would refuse.
type Mutation = Box<dyn Fn(&mut Value)>;

#[test]
fn the_cloud_run_check_rejects_what_cloud_run_would() {
    let svc = yaml("k8s/cloudrun/service.yaml");
    let dir = tempfile::tempdir().expect("tempdir");
    let cases: Vec<(&str, Mutation)> = vec![
        (
            "'readinessProbe' was unexpected",
            Box::new(|s: &mut Value| {
                s["spec"]["template"]["spec"]["containers"][1]["readinessProbe"] =
                    serde_json::json!({"httpGet": {"port": 9778}});
            }),
        ),
        (
            "nope is not a container of this service",
            Box::new(|s: &mut Value| {
                s["spec"]["template"]["metadata"]["annotations"]["run.googleapis.com/container-dependencies"] =
                    r#"{"collector":["nope"]}"#.into();
            }),
        ),
        (
            "cycle",
            Box::new(|s: &mut Value| {
                s["spec"]["template"]["metadata"]["annotations"]["run.googleapis.com/container-dependencies"] =
                    r#"{"collector":["pathwatch"],"pathwatch":["collector"]}"#.into();
            }),
        ),
        (
            "exactly one container takes ingress",
            Box::new(|s: &mut Value| {
                s["spec"]["template"]["spec"]["containers"][2]["ports"] =
                    serde_json::json!([{"containerPort": 9090}]);
            }),
        ),
        (
            "minScale",
            Box::new(|s: &mut Value| {
                s["spec"]["template"]["metadata"]["annotations"]["autoscaling.knative.dev/minScale"] =
                    1.into();
            }),
        ),
    ];
    for (i, (needle, mutate)) in cases.iter().enumerate() {
        let mut s = svc.clone();
        mutate(&mut s);
        let f = dir.path().join(format!("svc{i}.json"));
        std::fs::write(&f, s.to_string()).expect("write");
        let out = python(&[
            "deploy/validate.py",
            "cloud-run-service",
            f.to_str().expect("utf-8"),
        ]);
        assert_eq!(out.status.code(), Some(1), "case {needle}: {}", text(&out));
        assert!(text(&out).contains(needle), "case {needle}: {}", text(&out));
    }
}

#[test]
fn gke_gmp_component_swaps_operator_kinds_for_podmonitoring_and_rules() {
    let out = Command::new("kubectl")
        .args(["kustomize", "k8s/overlays/staging-gmp"])
        .output()
        .expect("kubectl must be installed (Debian package kubernetes-client; .ci/install)");
    assert!(out.status.success(), "{}", text(&out));
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&String::from_utf8_lossy(&out.stdout)).expect("YAML stream");
    let kinds: Vec<&str> = docs.iter().filter_map(|d| d["kind"].as_str()).collect();
    assert!(
        !kinds.contains(&"ServiceMonitor") && !kinds.contains(&"PrometheusRule"),
        "{kinds:?}"
    );
    let pm = docs
        .iter()
        .find(|d| d["kind"] == "PodMonitoring")
        .expect("PodMonitoring");
    let rules = docs.iter().find(|d| d["kind"] == "Rules").expect("Rules");
    let dep = docs
        .iter()
        .find(|d| d["kind"] == "Deployment")
        .expect("Deployment");
    for d in [pm, rules, dep] {
        assert_eq!(d["metadata"]["namespace"], "netra-staging");
    }
    assert_eq!(rules["apiVersion"], "monitoring.googleapis.com/v1");
    // GMP's job label is the PodMonitoring's name: the one the alerts select.
    assert_eq!(
        jobs_in_alerts(),
        vec![pm["metadata"]["name"].as_str().expect("name").to_string()]
    );
    // It selects the pods and scrapes pathwatch's named metrics port.
    assert_eq!(
        pm["spec"]["selector"]["matchLabels"],
        dep["spec"]["template"]["metadata"]["labels"]
    );
    let pw = dep["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .find(|c| c["name"] == "pathwatch")
        .expect("pathwatch");
    assert_eq!(pm["spec"]["endpoints"][0]["port"], pw["ports"][0]["name"]);
    assert_eq!(pm["spec"]["endpoints"][0]["path"], "/metrics");
    // The Rules carry every rule of alerts/, each group with an interval GMP evaluates at.
    let op = yaml("k8s/base/prometheusrule.yaml");
    let groups = rules["spec"]["groups"].as_array().expect("groups");
    assert_eq!(
        groups.len(),
        op["spec"]["groups"].as_array().expect("groups").len()
    );
    for (g, o) in groups
        .iter()
        .zip(op["spec"]["groups"].as_array().expect("groups"))
    {
        assert_eq!(g["rules"], o["rules"]);
        assert!(g["interval"].is_string());
    }
    // The ServiceMonitor (prometheus-operator) relabels to the same job.
    let sm = yaml("k8s/base/servicemonitor.yaml");
    assert_eq!(
        jobs_in_alerts(),
        vec![
            sm["spec"]["endpoints"][0]["relabelings"][0]["replacement"]
                .as_str()
                .expect("job")
                .to_string()
        ]
    );
}

#[test]
fn deploy_fills_channels_and_runbook_links_into_valid_policies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let render = dir.path().join("r");
    let out = python(&[
        "deploy/cloud-monitoring/deploy.py",
        "--project",
        "netra-staging",
        "--runbook-base",
        "https://github.com/example/pathwatch/blob/main/",
        "--channels",
        "123,projects/other/notificationChannels/456",
        "--dry-run",
        "--render-dir",
        render.to_str().expect("utf-8"),
    ]);
    let t = text(&out);
    assert!(out.status.success(), "{t}");
    let n = crate::alert_targets::policy_alerts().len();
    assert_eq!(
        t.matches("gcloud monitoring policies create --policy-from-file=")
            .count(),
        n,
        "{t}"
    );
    let mut files: Vec<String> = Vec::new();
    for e in std::fs::read_dir(&render).expect("rendered") {
        let p = e.expect("entry").path();
        let raw = std::fs::read_to_string(&p).expect("read");
        assert!(!raw.contains("@RUNBOOK_BASE_URL@"), "{}", p.display());
        let v: Value = serde_json::from_str(&raw).expect("JSON");
        assert_eq!(
            v["notificationChannels"],
            serde_json::json!([
                "projects/netra-staging/notificationChannels/123",
                "projects/other/notificationChannels/456"
            ])
        );
        assert!(
            v["documentation"]["links"][0]["url"]
                .as_str()
                .expect("url")
                .starts_with("https://github.com/example/pathwatch/blob/main/docs/")
        );
        files.push(p.display().to_string());
    }
    assert_eq!(files.len(), n);
    let mut args = vec!["deploy/validate.py", "alert-policy"];
    args.extend(files.iter().map(String::as_str));
    let out = python(&args);
    assert!(out.status.success(), "{}", text(&out));

    let out = python(&[
        "deploy/cloud-monitoring/deploy.py",
        "--project",
        "p",
        "--runbook-base",
        "docs",
        "--dry-run",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("--runbook-base must be an http(s) URL"));
}

#[test]
fn the_grafana_syncer_keeps_the_provisioned_data_source_and_its_token_in_a_secret() {
    let out = Command::new("kubectl")
        .args(["kustomize", "k8s/grafana-gmp"])
        .output()
        .expect("kubectl must be installed (Debian package kubernetes-client; .ci/install)");
    assert!(out.status.success(), "{}", text(&out));
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&String::from_utf8_lossy(&out.stdout)).expect("YAML stream");
    let cm = docs
        .iter()
        .find(|d| d["kind"] == "ConfigMap")
        .expect("ConfigMap");
    let job = docs
        .iter()
        .find(|d| d["kind"] == "CronJob")
        .expect("CronJob");
    let pod = &job["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let args: Vec<&str> = c["args"]
        .as_array()
        .expect("args")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    // The token is read from a mounted Secret, never passed as a literal.
    assert!(args.iter().all(|a| !a.starts_with("--grafana-api-token=")));
    let file_arg = args
        .iter()
        .find_map(|a| a.strip_prefix("--grafana-api-token-filepath="))
        .expect("token file");
    let mount = c["volumeMounts"][0]["mountPath"].as_str().expect("mount");
    assert!(file_arg.starts_with(mount));
    assert!(pod["volumes"][0]["secret"]["secretName"].is_string());
    // Every $(VAR) in the args comes from the generated ConfigMap.
    for a in &args {
        if let Some(var) = a.split("$(").nth(1).and_then(|r| r.split(')').next()) {
            assert!(cm["data"][var].is_string(), "{var} not in the ConfigMap");
        }
    }
    // The provisioned data source is the one the syncer updates.
    let ds = yaml("k8s/grafana-gmp/grafana-provisioning/datasource.yaml");
    assert_eq!(cm["data"]["DATASOURCE_UIDS"], ds["datasources"][0]["uid"]);
    assert_eq!(ds["datasources"][0]["type"], "prometheus");
    assert!(
        ds["datasources"][0]["url"]
            .as_str()
            .expect("url")
            .contains(&format!(
                "/projects/{}/location/global/prometheus",
                cm["data"]["PROJECT_ID"].as_str().expect("project")
            ))
    );
}
