//! `gcp_cloud_run` probe: a Cloud Run service's readiness (its terminal condition) and its
//! wiring checked against `expect` (the test plan's category 1, configuration drift): the VPC
//! connector, the egress setting, env values and the attached Cloud SQL instances. From
//! `GET /v2/projects/P/locations/R/services/S` (Cloud Run Admin API v2).
//!
//! Env values may be secrets: only the names listed in `safe_env` have their values shown in
//! details and facts; every other value is `<hidden>`, and values from Secret Manager are
//! never read at all.

use super::resource::{self, Check, Resource, ResourceProbe, unmet};
use super::{GcpError, GcpObs, show, state_error};
use crate::core::types::Secret;
use crate::probe::common::google::CredentialsSpec;
use crate::probe::common::kind::ProbeKind;
use crate::probe::{Kind, ProbeError};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::time::Duration;

pub(crate) const DEFAULT_API_BASE: &str = "https://run.googleapis.com";
/// `Condition.State` of the Cloud Run Admin API v2, read from `terminalCondition.state`.
pub(crate) const STATES: &[&str] = &[
    "STATE_UNSPECIFIED",
    "CONDITION_PENDING",
    "CONDITION_RECONCILING",
    "CONDITION_FAILED",
    "CONDITION_SUCCEEDED",
];
const HIDDEN: &str = "<hidden>";
const FROM_SECRET: &str = "<from a secret>";

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloudRunSpec {
    /// The project id, as in the service's name.
    pub(crate) project: String,
    /// The service's region, e.g. `us-central1`.
    pub(crate) region: String,
    /// The service's name.
    pub(crate) service: String,
    /// What the service's template must say; each entry is one expectation.
    #[serde(default)]
    pub(crate) expect: CloudRunExpect,
    /// Env names whose values may be shown (in details, facts and logs).
    #[serde(default)]
    pub(crate) safe_env: Vec<String>,
    /// The container whose env is checked (default: the ingress container, the one with
    /// ports, else the first).
    pub(crate) container: Option<String>,
    /// Default `https://run.googleapis.com`.
    pub(crate) api_base: Option<String>,
    #[serde(default)]
    pub(crate) credentials: CredentialsSpec,
}

#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CloudRunExpect {
    /// `projects/P/locations/R/connectors/C`, or only `C` to compare the last segment.
    pub(crate) vpc_connector: Option<String>,
    /// `template.vpcAccess.egress`: `ALL_TRAFFIC` or `PRIVATE_RANGES_ONLY`.
    pub(crate) egress: Option<Egress>,
    /// Expected env values; they may be secrets, so they are kept as such.
    #[serde(default)]
    pub(crate) env: BTreeMap<String, Secret>,
    /// Cloud SQL connection names that must be attached (others may be too).
    pub(crate) cloudsql_instances: Option<Vec<String>>,
}

/// `VpcAccess.VpcEgress` values a user can ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
pub(crate) enum Egress {
    #[serde(rename = "ALL_TRAFFIC")]
    AllTraffic,
    #[serde(rename = "PRIVATE_RANGES_ONLY")]
    PrivateRangesOnly,
}

impl Egress {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Egress::AllTraffic => "ALL_TRAFFIC",
            Egress::PrivateRangesOnly => "PRIVATE_RANGES_ONLY",
        }
    }
}

/// The fields of the v2 `Service` pathwatch reads.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub(crate) struct Service {
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

fn valid_env_name(n: &str) -> bool {
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && n.len() <= 64
}

impl CloudRunSpec {
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
                hint: "",
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
                hint: "",
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
                hint: if safe {
                    ""
                } else {
                    "; list the name in safe_env to show values"
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
                hint: "",
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

impl Resource for CloudRunSpec {
    type Answer = Service;
    const API: &'static str = "Cloud Run Admin API";
    const DEFAULT_API_BASE: &'static str = DEFAULT_API_BASE;
    const STATES: &'static [&'static str] = STATES;
    const HEALTHY: &'static str = "CONDITION_SUCCEEDED";
    const NOUN: &'static str = "service";
    const STATE_FIELD: &'static str = "terminalCondition.state";

    fn ids(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("project", &self.project),
            ("region", &self.region),
            ("service", &self.service),
        ]
    }

    fn path(&self) -> String {
        format!(
            "v2/projects/{}/locations/{}/services/{}",
            self.project, self.region, self.service
        )
    }

    fn api_base(&self) -> Option<&str> {
        self.api_base.as_deref()
    }

    fn credentials(&self) -> &CredentialsSpec {
        &self.credentials
    }

    fn check_fields(&self) -> Result<(), GcpError> {
        for n in self.expect.env.keys().chain(&self.safe_env) {
            if !valid_env_name(n) {
                return Err(GcpError::EnvName(n.clone()));
            }
        }
        if self.expect.vpc_connector.as_deref() == Some("") {
            return Err(GcpError::EmptyVpcConnector);
        }
        // Values the config declares safe to show are not masked as secrets.
        for (name, value) in &self.expect.env {
            if self.safe(name) {
                crate::redact::forget(value.expose());
            }
        }
        Ok(())
    }

    fn expectation_names(&self) -> Vec<String> {
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

    fn state(svc: &Service) -> Option<&str> {
        svc.terminal_condition.as_ref()?.state.as_deref()
    }

    fn expectations(&self, svc: &Service, _: &mut GcpObs) -> Vec<Check> {
        self.check(svc)
    }

    /// A service that is not ready says why (its condition's reason).
    fn verdict(
        &self,
        svc: &Service,
        state: &'static str,
        checks: &[Check],
    ) -> Result<(), ProbeError> {
        let cond = svc.terminal_condition.as_ref();
        let down = (state != Self::HEALTHY).then(|| {
            let mut e = state_error(Self::NOUN, Self::state(svc), state, Self::HEALTHY);
            if let Some(why) =
                cond.and_then(|c| c.revision_reason.as_deref().or(c.reason.as_deref()))
            {
                e.detail
                    .push_str(&format!(" (reason {})", super::enum_label(why)));
            }
            e
        });
        super::verdict(down, &unmet(checks), checks.len())
    }

    fn facts(
        &self,
        svc: &Service,
        state: &'static str,
        checks: &[Check],
    ) -> Vec<(&'static str, String)> {
        let mut facts = vec![("state", state.to_string())];
        if let Some(r) = &svc.latest_ready_revision {
            facts.push(("latest_ready_revision", show(r)));
        }
        for c in checks {
            facts.push(("expectation", format!("{} = {}", c.name, c.actual)));
        }
        facts
    }
}

impl ProbeKind for CloudRunSpec {
    const KIND: Kind = Kind::GcpCloudRun;
    const DEFAULT_TIMEOUT: Duration = super::DEFAULT_TIMEOUT;
    type Probe = ResourceProbe<Self>;
    type Error = GcpError;
    const FAMILIES: &'static [crate::probe::KindFamily] =
        &[super::RESOURCE_STATE, super::EXPECTATION_MET];

    /// Every state at 0 before the first run.
    fn initial_samples(&self) -> Vec<crate::probe::Sample> {
        super::initial_samples(<Self as Resource>::STATES)
    }

    fn build(&self) -> Result<Self::Probe, GcpError> {
        resource::build(self)
    }
}

#[cfg(test)]
mod tests;
