//! The GCP probes (`gcp_vpc_connector`, `gcp_cloudsql`, `gcp_cloud_run`) through the real
//! binary against a fake of Google's APIs: healthy states one-hot, every API fault's reason,
//! token caching, hangs, the metadata server down, Cloud Run config drift without leaking
//! secrets, and a token file.

use crate::support::exporter::{Exporter, samples, value};
use crate::support::gcp_fake::{
    self, CONNECTOR, Fault, GcpFake, INSTANCE, PROJECT, REGION, SECRET_ENV_VALUE, SERVICE,
    connector_path, instance_path, service_path,
};
use crate::support::hang::closed_port;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const DEFAULTS: &str = "defaults: { interval: 300ms, timeout: 3s }\n";
/// An expected env value that is not in `safe_env`: it must never be shown either.
const EXPECTED_SECRET: &str = "expected-jwt-value-never-shown";

fn connector_probe(fake: &GcpFake, name: &str, connector: &str, extra: &str) -> String {
    format!(
        "  - name: {name}\n    kind: gcp_vpc_connector\n    project: {PROJECT}\n    region: {REGION}\n    connector: {connector}\n    api_base: {}\n{extra}",
        fake.base()
    )
}

fn cloudsql_probe(fake: &GcpFake, name: &str, instance: &str, extra: &str) -> String {
    format!(
        "  - name: {name}\n    kind: gcp_cloudsql\n    project: {PROJECT}\n    instance: {instance}\n    connection_name: {}\n    api_base: {}\n{extra}",
        gcp_fake::connection_name(INSTANCE),
        fake.base()
    )
}

fn cloud_run_probe(fake: &GcpFake, name: &str) -> String {
    format!(
        "  - name: {name}
    kind: gcp_cloud_run
    project: {PROJECT}
    region: {REGION}
    service: {SERVICE}
    api_base: {}
    expect:
      vpc_connector: {}
      egress: ALL_TRAFFIC
      env: {{ DB_CONNECT_TIMEOUT: \"75\", JWT_SECRET_KEY: \"{EXPECTED_SECRET}\" }}
      cloudsql_instances: [\"{}\"]
    safe_env: [DB_CONNECT_TIMEOUT, ENVIRONMENT]
",
        fake.base(),
        gcp_fake::connector_full_name(CONNECTOR),
        gcp_fake::connection_name(INSTANCE),
    )
}

fn runs(m: &str, probe: &str, reason: &str) -> f64 {
    value(
        m,
        "pathwatch_probe_runs_total",
        &[("probe", probe), ("reason", reason)],
    )
    .unwrap_or(0.0)
}

/// The one-hot's current state (None when every state is 0), after checking it is one-hot.
fn one_hot(m: &str, probe: &str) -> Option<String> {
    let s: Vec<_> = samples(m, "pathwatch_gcp_resource_state")
        .into_iter()
        .filter(|s| s.labels.get("probe").map(String::as_str) == Some(probe))
        .collect();
    assert!(s.len() >= 6, "{probe}: every state is exported: {s:?}");
    assert!(s.iter().any(|s| s.labels["state"] == "UNRECOGNIZED"));
    let on: Vec<_> = s.iter().filter(|s| s.value == 1.0).collect();
    assert!(on.len() <= 1, "{probe}: at most one state is 1: {on:?}");
    assert!(s.iter().all(|s| s.value == 0.0 || s.value == 1.0));
    on.first().map(|s| s.labels["state"].clone())
}

/// `promtool check metrics` finds nothing at all in the text format 0.0.4 answer (what a
/// client that does not ask for OpenMetrics gets), GCP families included.
fn promtool_lint(exp: &Exporter) {
    let (status, _, text) = crate::support::exporter::http_get(exp.addr, "/metrics");
    assert_eq!(status, 200);
    assert!(text.contains("pathwatch_gcp_"), "{text}");
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool must be installed (Debian package prometheus)");
    child
        .stdin
        .take()
        .expect("promtool stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool result");
    let report =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && report.trim().is_empty(),
        "promtool check metrics:\n{report}"
    );
}

fn wait_reason(exp: &Exporter, probe: &str, reason: &str) {
    exp.wait_for(
        "pathwatch_probe_runs_total",
        &[("probe", probe), ("result", "failure"), ("reason", reason)],
        WAIT,
        |v| v >= 1.0,
    );
}

#[test]
fn healthy_resources_export_their_state_and_each_probe_fetches_one_token() {
    let fake = GcpFake::start();
    // The service holds the expected secret: every expectation is met.
    let mut svc = gcp_fake::service(SERVICE);
    svc["template"]["containers"][0]["env"][2]["value"] = EXPECTED_SECRET.into();
    fake.set_resource(&service_path(SERVICE), svc);
    let yaml = format!(
        "{DEFAULTS}probes:\n{}{}{}incidents:\n  - id: \"1278\"\n    resolve_after: 2\n    criteria:\n      - {{ name: connector_ready, probe: connector, state: READY }}\n      - {{ name: cloudsql_runnable, probe: cloudsql, state: RUNNABLE }}\n      - {{ name: service_wired, probe: backend, success: true }}\n",
        connector_probe(&fake, "connector", CONNECTOR, ""),
        cloudsql_probe(&fake, "cloudsql", INSTANCE, ""),
        cloud_run_probe(&fake, "backend"),
    );
    let exp = Exporter::start_with_env(&yaml, &[("GCE_METADATA_HOST", &fake.metadata_host())]);
    // Before the first run every state is exported at 0.
    let early = exp.metrics();
    assert_eq!(one_hot(&early, "connector"), None, "{early}");
    for probe in ["connector", "cloudsql", "backend"] {
        exp.wait_for(
            "pathwatch_probe_runs_total",
            &[("probe", probe), ("result", "success")],
            WAIT,
            |v| v >= 3.0,
        );
    }
    exp.wait_for(
        "pathwatch_incident_status",
        &[("incident", "1278")],
        WAIT,
        |v| v == 0.0,
    );
    let m = exp.metrics();
    assert_eq!(one_hot(&m, "connector").as_deref(), Some("READY"));
    assert_eq!(one_hot(&m, "cloudsql").as_deref(), Some("RUNNABLE"));
    assert_eq!(
        one_hot(&m, "backend").as_deref(),
        Some("CONDITION_SUCCEEDED")
    );
    let bound = |name: &str, b: &str| value(&m, name, &[("probe", "connector"), ("bound", b)]);
    assert_eq!(
        bound("pathwatch_gcp_vpc_connector_instances", "min"),
        Some(2.0)
    );
    assert_eq!(
        bound("pathwatch_gcp_vpc_connector_instances", "max"),
        Some(10.0)
    );
    assert_eq!(
        bound("pathwatch_gcp_vpc_connector_throughput_mbps", "min"),
        Some(200.0)
    );
    assert_eq!(
        bound("pathwatch_gcp_vpc_connector_throughput_mbps", "max"),
        Some(1000.0)
    );
    assert_eq!(
        value(
            &m,
            "pathwatch_gcp_cloudsql_info",
            &[("probe", "cloudsql"), ("database_version", "POSTGRES_14")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &m,
            "pathwatch_gcp_expectation_met",
            &[("probe", "cloudsql"), ("expectation", "connection_name")]
        ),
        Some(1.0)
    );
    for e in [
        "vpc_connector",
        "egress",
        "env:DB_CONNECT_TIMEOUT",
        "env:JWT_SECRET_KEY",
        "cloudsql_instances",
    ] {
        assert_eq!(
            value(
                &m,
                "pathwatch_gcp_expectation_met",
                &[("probe", "backend"), ("expectation", e)]
            ),
            Some(1.0),
            "{e}"
        );
    }
    for phase in ["credentials", "request"] {
        assert!(
            value(
                &m,
                "pathwatch_probe_phase_duration_seconds",
                &[("probe", "connector"), ("phase", phase)]
            )
            .is_some(),
            "phase {phase}"
        );
    }
    assert_eq!(
        value(
            &m,
            "pathwatch_incident_criterion_met",
            &[("incident", "1278"), ("criterion", "connector_ready")]
        ),
        Some(1.0)
    );
    promtool_lint(&exp);
    // Each probe fetched its token once and used it for every run.
    assert!(fake.api_calls(&connector_path(CONNECTOR)) >= 3);
    assert_eq!(fake.token_calls(), 3, "one metadata call per probe");
    assert!(!m.contains(gcp_fake::TOKEN) && !exp.logs().contains(gcp_fake::TOKEN));
}

#[test]
fn each_api_fault_has_its_reason() {
    let fake = GcpFake::start();
    let cases: &[(&str, Option<Fault>, &str)] = &[
        ("c-401", Some(Fault::Status(401)), "auth"),
        ("c-403", Some(Fault::Status(403)), "forbidden"),
        // No such connector: the API's own 404.
        ("c-404", None, "not_found"),
        ("c-429", Some(Fault::RateLimited(30)), "rate_limited"),
        ("c-500", Some(Fault::Status(500)), "server_error"),
        ("c-malformed", Some(Fault::Malformed), "protocol"),
        ("c-nostate", Some(Fault::MissingState), "protocol"),
        (
            "c-unknown",
            Some(Fault::UnknownState("HIBERNATING".into())),
            "resource_state",
        ),
        ("c-error", None, "resource_state"),
    ];
    let mut probes = String::new();
    for (name, fault, _) in cases {
        probes.push_str(&connector_probe(&fake, name, name, ""));
        match (*name, fault) {
            ("c-404", _) => {}
            ("c-error", _) => {
                fake.set_resource(&connector_path(name), gcp_fake::connector(name, "ERROR"));
            }
            (_, fault) => {
                fake.set_resource(&connector_path(name), gcp_fake::connector(name, "READY"));
                fake.set_fault(&connector_path(name), fault.clone());
            }
        }
    }
    let exp = Exporter::start_with_env(
        &format!("{DEFAULTS}probes:\n{probes}"),
        &[("GCE_METADATA_HOST", &fake.metadata_host())],
    );
    for (name, _, reason) in cases {
        wait_reason(&exp, name, reason);
    }
    exp.wait_for(
        "pathwatch_probe_runs_total",
        &[("probe", "c-401"), ("reason", "auth")],
        WAIT,
        |v| v >= 3.0,
    );
    let m = exp.metrics();
    // A 401 drops the cached token: the 401 probe fetched one per run, the others one each.
    let runs_401 = runs(&m, "c-401", "auth") as usize;
    let others = cases.len() - 1;
    assert!(
        fake.token_calls() >= others + runs_401,
        "token calls {} for {runs_401} runs of c-401",
        fake.token_calls()
    );
    assert_eq!(one_hot(&m, "c-unknown").as_deref(), Some("UNRECOGNIZED"));
    assert_eq!(one_hot(&m, "c-error").as_deref(), Some("ERROR"));
    assert_eq!(one_hot(&m, "c-403"), None, "no state learned: all 0");
    assert_eq!(one_hot(&m, "c-nostate"), None);
    let logs = exp.logs();
    for needle in [
        "VPC Access API answered 429: rate limited, retry after 30 s",
        "VPC Access API answered 403: permission denied (check the IAM role)",
        "reports state \"HIBERNATING\", which pathwatch does not know (exported as UNRECOGNIZED",
        "the connector answer has no \"state\" field",
        "the connector is ERROR, not READY",
        "VPC Access API answered malformed JSON",
    ] {
        assert!(logs.contains(needle), "missing {needle:?} in logs:\n{logs}");
    }
    assert!(!logs.contains(&fake.base()), "no URL in details:\n{logs}");
}

#[test]
fn a_hang_times_out_in_its_phase_while_other_probes_keep_running() {
    let fake = GcpFake::start();
    // A second fake whose metadata server hangs.
    let slow_metadata = GcpFake::start();
    slow_metadata.set_metadata_fault(Some(Fault::Hang));
    fake.set_fault(&connector_path(CONNECTOR), Some(Fault::Hang));
    let yaml = format!(
        "defaults: {{ interval: 300ms, timeout: 1s }}\nprobes:\n{}{}{}",
        connector_probe(&fake, "hung-api", CONNECTOR, ""),
        connector_probe(
            &fake,
            "hung-metadata",
            CONNECTOR,
            &format!(
                "    credentials: {{ metadata_host: \"{}\" }}\n",
                slow_metadata.metadata_host()
            )
        ),
        cloudsql_probe(&fake, "steady", INSTANCE, ""),
    );
    let exp = Exporter::start_with_env(&yaml, &[("GCE_METADATA_HOST", &fake.metadata_host())]);
    let before = exp.wait_for(
        "pathwatch_probe_runs_total",
        &[("probe", "steady"), ("result", "success")],
        WAIT,
        |v| v >= 1.0,
    );
    for probe in ["hung-api", "hung-metadata"] {
        exp.wait_for(
            "pathwatch_probe_runs_total",
            &[("probe", probe), ("reason", "timeout")],
            WAIT,
            |v| v >= 2.0,
        );
    }
    let m = exp.metrics();
    let after = value(
        &m,
        "pathwatch_probe_runs_total",
        &[("probe", "steady"), ("result", "success")],
    )
    .unwrap_or(0.0);
    // Two 1 s timeouts passed: the steady probe kept its 300 ms rhythm meanwhile.
    assert!(after >= before + 3.0, "steady ran {before} -> {after}");
    assert_eq!(one_hot(&m, "hung-api"), None, "a hang learns no state");
    let logs = exp.logs();
    assert!(
        logs.contains("stopped in phase request"),
        "hung API names its phase:\n{logs}"
    );
    assert!(
        logs.contains("stopped in phase credentials"),
        "hung metadata server names its phase:\n{logs}"
    );
}

#[test]
fn metadata_server_down_or_failing_is_credentials() {
    let fake = GcpFake::start();
    let failing = GcpFake::start();
    failing.set_metadata_fault(Some(Fault::Status(500)));
    let down = format!("127.0.0.1:{}", closed_port());
    let yaml = format!(
        "{DEFAULTS}probes:\n{}{}",
        connector_probe(&fake, "metadata-down", CONNECTOR, ""),
        cloudsql_probe(
            &fake,
            "metadata-500",
            INSTANCE,
            &format!(
                "    credentials: {{ metadata_host: \"http://{}\" }}\n",
                failing.metadata_host()
            )
        ),
    );
    let exp = Exporter::start_with_env(&yaml, &[("GCE_METADATA_HOST", &down)]);
    wait_reason(&exp, "metadata-down", "credentials");
    wait_reason(&exp, "metadata-500", "credentials");
    let logs = exp.logs();
    assert!(logs.contains("metadata server unreachable"), "{logs}");
    assert!(logs.contains("metadata server answered 500"), "{logs}");
    assert!(logs.contains("phase=\"credentials\""), "{logs}");
    assert_eq!(fake.api_calls(&connector_path(CONNECTOR)), 0);
}

#[test]
fn cloud_run_drift_shows_actual_values_but_never_a_secret() {
    let fake = GcpFake::start();
    let mut drifted = gcp_fake::service(SERVICE);
    let t = &mut drifted["template"];
    t["vpcAccess"]["connector"] = gcp_fake::connector_full_name("old-connector").into();
    t["vpcAccess"]["egress"] = "PRIVATE_RANGES_ONLY".into();
    t["containers"][0]["env"][1]["value"] = "30".into();
    fake.set_resource(&service_path(SERVICE), drifted);
    let exp = Exporter::start_with_env(
        &format!("{DEFAULTS}probes:\n{}", cloud_run_probe(&fake, "backend")),
        &[("GCE_METADATA_HOST", &fake.metadata_host())],
    );
    wait_reason(&exp, "backend", "expectation");
    let m = exp.metrics();
    let met = |e: &str| {
        value(
            &m,
            "pathwatch_gcp_expectation_met",
            &[("probe", "backend"), ("expectation", e)],
        )
    };
    assert_eq!(met("vpc_connector"), Some(0.0));
    assert_eq!(met("egress"), Some(0.0));
    assert_eq!(met("env:DB_CONNECT_TIMEOUT"), Some(0.0));
    assert_eq!(met("env:JWT_SECRET_KEY"), Some(0.0));
    assert_eq!(met("cloudsql_instances"), Some(1.0));
    // The service itself is Ready: the drift is the failure.
    assert_eq!(
        one_hot(&m, "backend").as_deref(),
        Some("CONDITION_SUCCEEDED")
    );
    let logs = exp.logs();
    for needle in [
        "4 of 5 expectations unmet",
        "vpc_connector is \"projects/netra-staging/locations/us-central1/connectors/old-connector\"",
        "egress is PRIVATE_RANGES_ONLY (expected ALL_TRAFFIC)",
        "env:DB_CONNECT_TIMEOUT is \"30\" (expected \"75\")",
        "env:JWT_SECRET_KEY is <hidden> (expected <hidden>",
    ] {
        assert!(logs.contains(needle), "missing {needle:?} in logs:\n{logs}");
    }
    let (_, _, page) = exp.get("/");
    let (_, _, api) = exp.get("/api/status");
    assert!(
        api.contains("env:DB_CONNECT_TIMEOUT is"),
        "the status shows the drift: {api}"
    );
    for (what, text) in [
        ("logs", &logs),
        ("metrics", &m),
        ("page", &page),
        ("api", &api),
    ] {
        for secret in [SECRET_ENV_VALUE, EXPECTED_SECRET] {
            assert!(!text.contains(secret), "{what} shows a secret env value");
        }
    }

    // The fix: the connector and env are right again; only the secret's value differs, and
    // nothing shows it.
    let mut fixed = gcp_fake::service(SERVICE);
    fixed["template"]["containers"][0]["env"][2]["value"] = EXPECTED_SECRET.into();
    fake.set_resource(&service_path(SERVICE), fixed);
    exp.wait_for(
        "pathwatch_probe_success",
        &[("probe", "backend")],
        WAIT,
        |v| v == 1.0,
    );
    let m = exp.metrics();
    for e in [
        "vpc_connector",
        "egress",
        "env:DB_CONNECT_TIMEOUT",
        "env:JWT_SECRET_KEY",
        "cloudsql_instances",
    ] {
        assert_eq!(
            value(
                &m,
                "pathwatch_gcp_expectation_met",
                &[("probe", "backend"), ("expectation", e)]
            ),
            Some(1.0),
            "{e}"
        );
    }
    let logs = exp.logs();
    assert!(!logs.contains(SECRET_ENV_VALUE) && !logs.contains(EXPECTED_SECRET));
}

#[test]
fn cloudsql_wrong_connection_name_and_a_stopped_instance() {
    let fake = GcpFake::start();
    fake.set_resource(
        &instance_path("other-db"),
        gcp_fake::instance("other-db", "RUNNABLE"),
    );
    let mut stopped = gcp_fake::instance(INSTANCE, "RUNNABLE");
    stopped["settings"]["activationPolicy"] = "NEVER".into();
    fake.set_resource(&instance_path("stopped-db"), stopped);
    let exp = Exporter::start_with_env(
        &format!(
            "{DEFAULTS}probes:\n{}{}",
            cloudsql_probe(&fake, "wrong-instance", "other-db", ""),
            cloudsql_probe(&fake, "stopped", "stopped-db", ""),
        ),
        &[("GCE_METADATA_HOST", &fake.metadata_host())],
    );
    wait_reason(&exp, "wrong-instance", "expectation");
    wait_reason(&exp, "stopped", "resource_state");
    let m = exp.metrics();
    assert_eq!(
        value(
            &m,
            "pathwatch_gcp_expectation_met",
            &[
                ("probe", "wrong-instance"),
                ("expectation", "connection_name")
            ]
        ),
        Some(0.0)
    );
    let logs = exp.logs();
    assert!(
        logs.contains("connection_name is \"netra-staging:us-central1:other-db\" (expected \"netra-staging:us-central1:staging-shared-postgres\")"),
        "{logs}"
    );
    assert!(logs.contains("RUNNABLE but stopped"), "{logs}");
}

#[test]
fn a_token_file_or_env_var_is_used_instead_of_the_metadata_server() {
    let fake = GcpFake::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("token");
    let bad = dir.path().join("stale-token");
    std::fs::write(&good, format!("{}\n", gcp_fake::TOKEN)).expect("write token");
    std::fs::write(&bad, "ya29.revoked\n").expect("write token");
    let creds =
        |p: &std::path::Path| format!("    credentials: {{ token_file: \"{}\" }}\n", p.display());
    let down = format!("127.0.0.1:{}", closed_port());
    let exp = Exporter::start_with_env(
        &format!(
            "{DEFAULTS}probes:\n{}{}{}{}",
            connector_probe(&fake, "from-file", CONNECTOR, &creds(&good)),
            connector_probe(&fake, "stale-file", CONNECTOR, &creds(&bad)),
            connector_probe(
                &fake,
                "from-env",
                CONNECTOR,
                "    credentials: { token_env: PATHWATCH_TEST_GCP_TOKEN }\n"
            ),
            connector_probe(
                &fake,
                "env-unset",
                CONNECTOR,
                "    credentials: { token_env: PATHWATCH_TEST_GCP_TOKEN_UNSET }\n"
            ),
        ),
        &[
            ("GCE_METADATA_HOST", &down),
            ("PATHWATCH_TEST_GCP_TOKEN", gcp_fake::TOKEN),
        ],
    );
    exp.wait_for(
        "pathwatch_probe_runs_total",
        &[("probe", "from-file"), ("result", "success")],
        WAIT,
        |v| v >= 2.0,
    );
    exp.wait_for(
        "pathwatch_probe_runs_total",
        &[("probe", "from-env"), ("result", "success")],
        WAIT,
        |v| v >= 2.0,
    );
    wait_reason(&exp, "stale-file", "auth");
    wait_reason(&exp, "env-unset", "credentials");
    assert_eq!(fake.token_calls(), 0, "the metadata server is never asked");
    assert!(!exp.logs().contains("ya29."), "no token in the logs");
}

#[test]
fn a_resized_connector_fails_its_expectations_naming_each() {
    let fake = GcpFake::start();
    // The plan: 2-10 instances of e2-micro. Someone resized it to 2-3 f1-micro.
    let mut resized = gcp_fake::connector("resized", "READY");
    resized["maxInstances"] = 3.into();
    resized["machineType"] = "f1-micro".into();
    fake.set_resource(&connector_path("resized"), resized);
    let expect = "    expect: { min_instances: 2, max_instances: 10, machine_type: e2-micro }\n";
    let exp = Exporter::start_with_env(
        &format!(
            "{DEFAULTS}probes:\n{}{}",
            connector_probe(&fake, "as-planned", CONNECTOR, expect),
            connector_probe(&fake, "resized", "resized", expect),
        ),
        &[("GCE_METADATA_HOST", &fake.metadata_host())],
    );
    wait_reason(&exp, "resized", "expectation");
    exp.wait_for(
        "pathwatch_probe_success",
        &[("probe", "as-planned")],
        WAIT,
        |v| v == 1.0,
    );
    let m = exp.metrics();
    let met = |probe: &str, e: &str| {
        value(
            &m,
            "pathwatch_gcp_expectation_met",
            &[("probe", probe), ("expectation", e)],
        )
    };
    assert_eq!(met("resized", "min_instances"), Some(1.0));
    assert_eq!(met("resized", "max_instances"), Some(0.0));
    assert_eq!(met("resized", "machine_type"), Some(0.0));
    assert_eq!(met("as-planned", "max_instances"), Some(1.0));
    // The bounds the API reports stay exported beside the verdicts (the dashboard's panel).
    assert_eq!(
        value(
            &m,
            "pathwatch_gcp_vpc_connector_instances",
            &[("probe", "resized"), ("bound", "max")]
        ),
        Some(3.0)
    );
    let logs = exp.logs();
    assert!(
        logs.contains("2 of 3 expectations unmet: max_instances is \"3\" (expected \"10\"); machine_type is \"f1-micro\" (expected \"e2-micro\")"),
        "{logs}"
    );
}
