//! `gcp_cloud_run` probe: a Cloud Run service's readiness (its terminal condition) and its
//! wiring checked against `expect` (the test plan's category 1, configuration drift): the VPC
//! connector, the egress setting, env values and the attached Cloud SQL instances. From
//! `GET /v2/projects/P/locations/R/services/S` (Cloud Run Admin API v2).
//!
//! Env values may be secrets: only the names listed in `safe_env` have their values shown in
//! details and facts; every other value is `<hidden>`, and values from Secret Manager are
//! never read at all.

use super::{GcpObs, Prepared, classify_state, show, state_error};
use crate::core::types::Secret;
use crate::probe::Observation;
use crate::probe::google::CredentialsSpec;
use crate::probe::{Outcome, ProbeError, Trace};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

pub const DEFAULT_API_BASE: &str = "https://run.googleapis.com";
/// `Condition.State` of the Cloud Run Admin API v2, read from `terminalCondition.state`.
pub const STATES: &[&str] = &[
    "STATE_UNSPECIFIED",
    "CONDITION_PENDING",
    "CONDITION_RECONCILING",
    "CONDITION_FAILED",
    "CONDITION_SUCCEEDED",
];
const HEALTHY: &str = "CONDITION_SUCCEEDED";
const API: &str = "Cloud Run Admin API";
const HIDDEN: &str = "<hidden>";
const FROM_SECRET: &str = "<from a secret>";

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloudRunSpec {
    pub project: String,
    pub region: String,
    pub service: String,
    /// What the service's template must say; each entry is one expectation.
    #[serde(default)]
    pub expect: CloudRunExpect,
    /// Env names whose values may be shown (in details, facts and logs).
    #[serde(default)]
    pub safe_env: Vec<String>,
    /// The container whose env is checked (default: the ingress container, the one with
    /// ports, else the first).
    pub container: Option<String>,
    /// Default `https://run.googleapis.com`.
    pub api_base: Option<String>,
    #[serde(default)]
    pub credentials: CredentialsSpec,
    #[serde(skip)]
    prepared: OnceLock<Prepared>,
}

#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloudRunExpect {
    /// `projects/P/locations/R/connectors/C`, or only `C` to compare the last segment.
    pub vpc_connector: Option<String>,
    pub egress: Option<Egress>,
    /// Expected env values; they may be secrets, so they are kept as such.
    #[serde(default)]
    pub env: BTreeMap<String, Secret>,
    /// Cloud SQL connection names that must be attached (others may be too).
    pub cloudsql_instances: Option<Vec<String>>,
}

/// `VpcAccess.VpcEgress` values a user can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
pub enum Egress {
    #[serde(rename = "ALL_TRAFFIC")]
    AllTraffic,
    #[serde(rename = "PRIVATE_RANGES_ONLY")]
    PrivateRangesOnly,
}

impl Egress {
    pub fn as_str(self) -> &'static str {
        match self {
            Egress::AllTraffic => "ALL_TRAFFIC",
            Egress::PrivateRangesOnly => "PRIVATE_RANGES_ONLY",
        }
    }
}

/// The fields of the v2 `Service` pathwatch reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Service {
    template: Template,
    terminal_condition: Option<Condition>,
    latest_ready_revision: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Template {
    vpc_access: Option<VpcAccess>,
    containers: Vec<Container>,
    volumes: Vec<Volume>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct VpcAccess {
    connector: Option<String>,
    egress: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Container {
    name: Option<String>,
    env: Vec<EnvVar>,
    ports: Vec<serde::de::IgnoredAny>,
}

/// `{name, value}` or `{name, valueSource: {secretKeyRef}}`. The value is a `Secret` so that
/// no Debug output can show it.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct EnvVar {
    name: String,
    value: Option<Secret>,
    value_source: Option<serde::de::IgnoredAny>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Volume {
    cloud_sql_instance: Option<CloudSqlInstances>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CloudSqlInstances {
    instances: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
struct Condition {
    state: Option<String>,
    reason: Option<String>,
    revision_reason: Option<String>,
}

/// One expectation's verdict, with secret-free text for details and facts.
#[derive(Debug, Clone, PartialEq)]
struct Check {
    name: String,
    met: bool,
    /// What the service has, as it may be shown.
    actual: String,
    /// What the config asks for, as it may be shown.
    expected: String,
}

fn valid_env_name(n: &str) -> bool {
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && n.len() <= 64
}

impl CloudRunSpec {
    pub fn validate(&self) -> Result<(), String> {
        for n in self.expect.env.keys().chain(&self.safe_env) {
            if !valid_env_name(n) {
                return Err(format!(
                    "env name {n:?} must be 1-64 letters, digits or '_', not starting with a digit"
                ));
            }
        }
        if self.expect.vpc_connector.as_deref() == Some("") {
            return Err("\"expect.vpc_connector\" must not be empty".into());
        }
        // Values the config declares safe to show are not masked as secrets.
        for (name, value) in &self.expect.env {
            if self.safe(name) {
                crate::redact::forget(value.expose());
            }
        }
        let p = self.prepare()?;
        let _ = self.prepared.set(p);
        Ok(())
    }

    fn prepare(&self) -> Result<Prepared, String> {
        Prepared::new(
            &self.api_base,
            DEFAULT_API_BASE,
            &self.credentials,
            &[
                ("project", &self.project),
                ("region", &self.region),
                ("service", &self.service),
            ],
            &format!(
                "v2/projects/{}/locations/{}/services/{}",
                self.project, self.region, self.service
            ),
        )
    }

    /// The expectation names this probe exports, in the order they are checked.
    pub fn expectation_names(&self) -> Vec<String> {
        let e = &self.expect;
        let mut names = Vec::new();
        if e.vpc_connector.is_some() {
            names.push("vpc_connector".to_string());
        }
        if e.egress.is_some() {
            names.push("egress".to_string());
        }
        names.extend(e.env.keys().map(|k| format!("env:{k}")));
        if e.cloudsql_instances.is_some() {
            names.push("cloudsql_instances".to_string());
        }
        names
    }

    fn safe(&self, name: &str) -> bool {
        self.safe_env.iter().any(|s| s == name)
    }

    /// Compares the service with `expect`. Env values not in `safe_env` never leave here.
    fn check(&self, svc: &Service) -> Vec<Check> {
        let e = &self.expect;
        let t = &svc.template;
        let vpc = t.vpc_access.as_ref();
        let mut checks = Vec::new();
        if let Some(want) = &e.vpc_connector {
            let actual = vpc.and_then(|v| v.connector.as_deref()).unwrap_or("");
            let met = if want.contains('/') {
                actual == want
            } else {
                actual.rsplit('/').next() == Some(want.as_str())
            };
            checks.push(Check {
                name: "vpc_connector".into(),
                met,
                actual: or_unset(actual),
                expected: show(want),
            });
        }
        if let Some(want) = e.egress {
            let actual = vpc.and_then(|v| v.egress.as_deref()).unwrap_or("");
            checks.push(Check {
                name: "egress".into(),
                met: actual == want.as_str(),
                actual: if actual.is_empty() {
                    "unset".into()
                } else {
                    super::enum_label(actual)
                },
                expected: want.as_str().into(),
            });
        }
        let container = match &self.container {
            Some(name) => t
                .containers
                .iter()
                .find(|c| c.name.as_deref() == Some(name.as_str())),
            None => t
                .containers
                .iter()
                .find(|c| !c.ports.is_empty())
                .or(t.containers.first()),
        };
        for (name, want) in &e.env {
            let var = container.and_then(|c| c.env.iter().find(|v| &v.name == name));
            let safe = self.safe(name);
            let (met, actual) = match var {
                None => (false, "unset".to_string()),
                Some(v) if v.value_source.is_some() => (false, FROM_SECRET.to_string()),
                Some(v) => {
                    let value = v.value.as_ref().map_or("", Secret::expose);
                    let shown = if safe { show(value) } else { HIDDEN.into() };
                    (value == want.expose(), shown)
                }
            };
            checks.push(Check {
                name: format!("env:{name}"),
                met,
                actual,
                expected: if safe {
                    show(want.expose())
                } else {
                    HIDDEN.into()
                },
            });
        }
        if let Some(want) = &e.cloudsql_instances {
            let attached: Vec<&str> = t
                .volumes
                .iter()
                .filter_map(|v| v.cloud_sql_instance.as_ref())
                .flat_map(|c| c.instances.iter().map(String::as_str))
                .collect();
            let met = want.iter().all(|w| attached.contains(&w.as_str()));
            checks.push(Check {
                name: "cloudsql_instances".into(),
                met,
                actual: list(attached.iter().copied()),
                expected: list(want.iter().map(String::as_str)),
            });
        }
        checks
    }
}

fn or_unset(v: &str) -> String {
    if v.is_empty() {
        "unset".into()
    } else {
        show(v)
    }
}

fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let shown: Vec<String> = items.map(show).collect();
    format!("[{}]", shown.join(", "))
}

/// `env:DB_CONNECT_TIMEOUT is "30" (expected "75")`, without a value that is not safe.
fn describe(c: &Check) -> String {
    let hint = if c.expected == HIDDEN {
        "; list the name in safe_env to show values"
    } else {
        ""
    };
    format!("{} is {} (expected {}{hint})", c.name, c.actual, c.expected)
}

pub async fn probe(spec: &CloudRunSpec, trace: &Trace) -> Result<Outcome, ProbeError> {
    let prep = Prepared::get(&spec.prepared, || spec.prepare())?;
    let mut obs = GcpObs::pending(spec.expectation_names());
    trace.observe(Observation::Gcp(obs.clone()));
    let svc: Service = prep.client.get_json(API, &prep.url, trace).await?;
    let checks = spec.check(&svc);
    obs.expectations = checks
        .iter()
        .map(|c| (c.name.clone(), Some(c.met)))
        .collect();
    let cond = svc.terminal_condition.as_ref();
    let raw_state = cond.and_then(|c| c.state.as_deref());
    let state = classify_state(
        trace,
        &mut obs,
        "service",
        "terminalCondition.state",
        raw_state,
        STATES,
    );
    trace.observe(Observation::Gcp(obs.clone()));
    let state = state?;
    let unmet: Vec<String> = checks.iter().filter(|c| !c.met).map(describe).collect();
    let down = (state != HEALTHY).then(|| {
        let mut e = state_error("service", raw_state, state, HEALTHY);
        if let Some(why) = cond.and_then(|c| c.revision_reason.as_deref().or(c.reason.as_deref())) {
            e.detail
                .push_str(&format!(" (reason {})", super::enum_label(why)));
        }
        e
    });
    super::verdict(down, &unmet, checks.len())?;
    let mut facts = vec![("state", state.to_string())];
    if let Some(r) = &svc.latest_ready_revision {
        facts.push(("latest_ready_revision", show(r)));
    }
    for c in &checks {
        facts.push(("expectation", format!("{} = {}", c.name, c.actual)));
    }
    Ok(Outcome { facts })
}

impl crate::probe::ProbeKind for CloudRunSpec {
    const KIND: crate::probe::Kind = crate::probe::Kind::GcpCloudRun;

    fn default_timeout(&self) -> std::time::Duration {
        super::DEFAULT_TIMEOUT
    }

    fn check(&self) -> Result<(), String> {
        self.validate()
    }

    fn run<'a>(
        &'a self,
        trace: &'a crate::probe::Trace,
    ) -> impl std::future::Future<Output = Result<crate::probe::Outcome, crate::probe::ProbeError>>
    + Send
    + 'a {
        probe(self, trace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(yaml_expect: CloudRunExpect, safe: &[&str]) -> CloudRunSpec {
        CloudRunSpec {
            project: "p".into(),
            region: "r".into(),
            service: "s".into(),
            expect: yaml_expect,
            safe_env: safe.iter().map(|s| s.to_string()).collect(),
            container: None,
            api_base: None,
            credentials: CredentialsSpec::default(),
            prepared: OnceLock::new(),
        }
    }

    fn service(json: serde_json::Value) -> Service {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn drift_is_described_without_unsafe_values() {
        let mut env = BTreeMap::new();
        env.insert("DB_CONNECT_TIMEOUT".to_string(), Secret::new("75"));
        env.insert("API_KEY".to_string(), Secret::new("expected-secret"));
        let s = spec(
            CloudRunExpect {
                vpc_connector: Some("projects/p/locations/r/connectors/good".into()),
                egress: Some(Egress::AllTraffic),
                env,
                cloudsql_instances: Some(vec!["p:r:db".into()]),
            },
            &["DB_CONNECT_TIMEOUT"],
        );
        let svc = service(serde_json::json!({
            "template": {
                "vpcAccess": {"connector": "projects/p/locations/r/connectors/bad", "egress": "PRIVATE_RANGES_ONLY"},
                "containers": [
                    {"name": "sidecar", "env": [{"name": "DB_CONNECT_TIMEOUT", "value": "1"}]},
                    {"name": "app", "ports": [{"containerPort": 8080}], "env": [
                        {"name": "DB_CONNECT_TIMEOUT", "value": "30"},
                        {"name": "API_KEY", "value": "actual-secret"}
                    ]}
                ],
                "volumes": [{"name": "cloudsql", "cloudSqlInstance": {"instances": ["p:r:db"]}}]
            }
        }));
        let checks = s.check(&svc);
        let met: Vec<(&str, bool)> = checks.iter().map(|c| (c.name.as_str(), c.met)).collect();
        assert_eq!(
            met,
            [
                ("vpc_connector", false),
                ("egress", false),
                ("env:API_KEY", false),
                ("env:DB_CONNECT_TIMEOUT", false),
                ("cloudsql_instances", true),
            ]
        );
        let text: Vec<String> = checks.iter().map(describe).collect();
        let all = text.join("\n");
        assert!(
            all.contains("env:DB_CONNECT_TIMEOUT is \"30\" (expected \"75\")"),
            "{all}"
        );
        assert!(
            all.contains("egress is PRIVATE_RANGES_ONLY (expected ALL_TRAFFIC)"),
            "{all}"
        );
        assert!(!all.contains("secret\""), "{all}");
        assert!(all.contains("env:API_KEY is <hidden>"), "{all}");
    }

    #[test]
    fn short_connector_names_and_secret_refs() {
        let mut env = BTreeMap::new();
        env.insert("DB_PASSWORD".to_string(), Secret::new("x"));
        let s = spec(
            CloudRunExpect {
                vpc_connector: Some("good".into()),
                env,
                ..CloudRunExpect::default()
            },
            &["DB_PASSWORD"],
        );
        let svc = service(serde_json::json!({
            "template": {
                "vpcAccess": {"connector": "projects/123/locations/r/connectors/good"},
                "containers": [{"env": [{"name": "DB_PASSWORD", "valueSource": {"secretKeyRef": {"secret": "pw", "version": "latest"}}}]}]
            }
        }));
        let checks = s.check(&svc);
        assert!(checks[0].met);
        assert!(!checks[1].met);
        assert_eq!(checks[1].actual, FROM_SECRET);
    }

    #[test]
    fn env_names_are_checked() {
        assert!(valid_env_name("DB_CONNECT_TIMEOUT"));
        assert!(!valid_env_name("1X"));
        assert!(!valid_env_name("A-B"));
        assert!(!valid_env_name(""));
    }
}
