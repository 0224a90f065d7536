//! What ships for Kubernetes and Cloud Run: the PrometheusRule carries exactly the rules in
//! alerts/, the sidecar is locked down and probed on /healthz and /readyz, secrets only come
//! from references, and the bundled pathwatch configs validate with the binary.
//! (Core kinds are also schema-checked offline by .ci/lint-deploy.)

use crate::support::exporter::BIN;
use std::process::Command;

fn yaml(path: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn the_prometheus_rule_equals_the_rule_files() {
    let rule = yaml("k8s/base/prometheusrule.yaml");
    assert_eq!(rule["kind"], "PrometheusRule");
    let mut groups = Vec::new();
    for f in crate::rules::rule_files() {
        let doc = yaml(&f.display().to_string());
        groups.extend(doc["groups"].as_array().expect("groups").iter().cloned());
    }
    assert_eq!(
        rule["spec"]["groups"],
        serde_json::Value::Array(groups),
        "k8s/base/prometheusrule.yaml is stale: run python3 deploy/generate.py"
    );
}

#[test]
fn the_sidecar_is_locked_down_probed_and_scraped() {
    let dep = yaml("k8s/base/deployment.yaml");
    let containers = dep["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    let pw = containers
        .iter()
        .find(|c| c["name"] == "pathwatch")
        .expect("a pathwatch sidecar");
    assert!(containers.len() >= 2, "pathwatch runs beside the backend");
    let sc = &pw["securityContext"];
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(pw["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(pw["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert!(pw["resources"]["requests"]["memory"].is_string());
    assert!(pw["resources"]["limits"]["memory"].is_string());
    // Secrets only by reference: no literal value for anything that looks like a secret.
    for c in containers {
        for e in c["env"].as_array().into_iter().flatten() {
            let name = e["name"].as_str().unwrap_or("");
            if ["PASSWORD", "TOKEN", "SECRET", "KEY"]
                .iter()
                .any(|s| name.contains(s))
            {
                assert!(e["value"].is_null(), "{name} has a literal value");
                assert!(
                    e["valueFrom"]["secretKeyRef"].is_object(),
                    "{name} is not a Secret reference"
                );
            }
        }
    }
    let svc = yaml("k8s/base/service.yaml");
    let port = pw["ports"][0]["name"].as_str().expect("metrics port name");
    assert!(
        svc["spec"]["ports"]
            .as_array()
            .expect("ports")
            .iter()
            .any(|p| p["name"] == port)
    );
    let sm = yaml("k8s/base/servicemonitor.yaml");
    assert_eq!(sm["spec"]["endpoints"][0]["port"], port);
    assert_eq!(sm["spec"]["endpoints"][0]["path"], "/metrics");
    assert_eq!(
        sm["spec"]["selector"]["matchLabels"],
        svc["metadata"]["labels"]
    );
}

#[test]
fn the_cloud_run_service_wires_connector_socket_and_sidecar() {
    let svc = yaml("k8s/cloudrun/service.yaml");
    let ann = &svc["spec"]["template"]["metadata"]["annotations"];
    assert!(
        ann["run.googleapis.com/vpc-access-connector"]
            .as_str()
            .is_some_and(|c| c.contains("/connectors/"))
    );
    assert_eq!(ann["run.googleapis.com/vpc-access-egress"], "all-traffic");
    assert!(ann["run.googleapis.com/cloudsql-instances"].is_string());
    let containers = svc["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    let pw = containers
        .iter()
        .find(|c| c["name"] == "pathwatch")
        .expect("sidecar");
    assert!(
        pw["ports"].is_null(),
        "only the backend takes the ingress port"
    );
    for e in pw["env"].as_array().expect("env") {
        if e["name"].as_str().is_some_and(|n| n.contains("PASSWORD")) {
            assert!(e["valueFrom"]["secretKeyRef"].is_object());
        }
    }
}

#[test]
fn bundled_configs_validate() {
    for file in [
        "k8s/base/pathwatch.yaml",
        "k8s/overlays/staging/pathwatch.yaml",
    ] {
        let out = Command::new(BIN)
            .args(["validate", file])
            .envs([
                ("POSTGRES_HOST", "/cloudsql/p:r:i"),
                ("POSTGRES_DB", "netra_staging"),
                ("POSTGRES_USER", "postgres"),
                ("POSTGRES_PASSWORD", "x"),
                ("AUTH_URL", "http://127.0.0.1:8081"),
                ("E2E_EMAIL", "e2e@example.com"),
                ("E2E_PASSWORD", "x"),
            ])
            .output()
            .expect("run validate");
        assert!(
            out.status.success(),
            "{file}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
