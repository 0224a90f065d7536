//! `gcp_cloudsql` probe: a Cloud SQL instance's state (healthy when `RUNNABLE` and not
//! stopped), its database version, and its connection name checked against the one the
//! service is configured with, from `GET /v1/projects/P/instances/I` (Cloud SQL Admin API).

use super::resource::{self, Check, Resource, ResourceProbe, describe};
use super::{GcpError, GcpObs, enum_label, show, state_error};
use crate::probe::common::google::CredentialsSpec;
use crate::probe::common::kind::ProbeKind;
use crate::probe::{Kind, ProbeError, Reason};
use serde::Deserialize;
use std::time::Duration;

pub(crate) const DEFAULT_API_BASE: &str = "https://sqladmin.googleapis.com";
/// `SqlInstanceState` of the Cloud SQL Admin API v1.
pub(crate) const STATES: &[&str] = &[
    "SQL_INSTANCE_STATE_UNSPECIFIED",
    "RUNNABLE",
    "SUSPENDED",
    "PENDING_DELETE",
    "PENDING_CREATE",
    "MAINTENANCE",
    "FAILED",
    "ONLINE_MAINTENANCE",
    "REPAIRING",
];
pub(crate) const EXPECT_CONNECTION_NAME: &str = "connection_name";

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloudSqlSpec {
    /// The project id, as in the instance's name.
    pub(crate) project: String,
    /// The instance's name (not its connection name).
    pub(crate) instance: String,
    /// The `PROJECT:REGION:INSTANCE` the service connects to (its `/cloudsql/...` socket);
    /// a different `connectionName` fails with `expectation`.
    pub(crate) connection_name: Option<String>,
    /// Default `https://sqladmin.googleapis.com`.
    pub(crate) api_base: Option<String>,
    #[serde(default)]
    pub(crate) credentials: CredentialsSpec,
}

/// The fields of `DatabaseInstance` pathwatch reads (never `rootPassword` and the like).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Instance {
    state: Option<String>,
    database_version: Option<String>,
    connection_name: Option<String>,
    settings: Option<Settings>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Settings {
    activation_policy: Option<String>,
}

impl Resource for CloudSqlSpec {
    type Answer = Instance;
    const API: &'static str = "Cloud SQL Admin API";
    const DEFAULT_API_BASE: &'static str = DEFAULT_API_BASE;
    const STATES: &'static [&'static str] = STATES;
    const HEALTHY: &'static str = "RUNNABLE";
    const NOUN: &'static str = "instance";
    const STATE_FIELD: &'static str = "state";

    fn ids(&self) -> Vec<(&'static str, &str)> {
        vec![("project", &self.project), ("instance", &self.instance)]
    }

    fn path(&self) -> String {
        format!("v1/projects/{}/instances/{}", self.project, self.instance)
    }

    fn api_base(&self) -> Option<&str> {
        self.api_base.as_deref()
    }

    fn credentials(&self) -> &CredentialsSpec {
        &self.credentials
    }

    fn check_fields(&self) -> Result<(), GcpError> {
        if let Some(c) = &self.connection_name
            && c.split(':').filter(|p| !p.is_empty()).count() < 3
        {
            return Err(GcpError::ConnectionName(c.clone()));
        }
        Ok(())
    }

    fn expectation_names(&self) -> Vec<String> {
        self.connection_name
            .iter()
            .map(|_| EXPECT_CONNECTION_NAME.to_string())
            .collect()
    }

    fn state(i: &Instance) -> Option<&str> {
        i.state.as_deref()
    }

    fn expectations(&self, i: &Instance, obs: &mut GcpObs) -> Vec<Check> {
        obs.database_version = i.database_version.as_deref().map(enum_label);
        let actual = i.connection_name.as_deref().unwrap_or("");
        self.connection_name
            .iter()
            .map(|want| Check {
                name: EXPECT_CONNECTION_NAME.to_string(),
                met: actual == want,
                actual: if actual.is_empty() {
                    "unset".to_string()
                } else {
                    show(actual)
                },
                expected: show(want),
                hint: "",
            })
            .collect()
    }

    /// The expectation is reported in every detail: a wrong instance that is also down
    /// must not hide the wiring mistake behind the state.
    fn verdict(
        &self,
        i: &Instance,
        state: &'static str,
        checks: &[Check],
    ) -> Result<(), ProbeError> {
        let mismatch = checks.iter().find(|c| !c.met).map(describe);
        let stopped = i
            .settings
            .as_ref()
            .and_then(|s| s.activation_policy.as_deref())
            == Some("NEVER");
        let also = mismatch
            .as_deref()
            .map(|m| format!("; also {m}"))
            .unwrap_or_default();
        if state != Self::HEALTHY {
            let mut e = state_error(Self::NOUN, i.state.as_deref(), state, Self::HEALTHY);
            e.detail.push_str(&also);
            return Err(e);
        }
        if stopped {
            // The API calls a stopped instance RUNNABLE ("ready to run when accessed"), but
            // with activationPolicy NEVER nothing starts it: connections fail.
            return Err(ProbeError::new(
                Reason::ResourceState,
                format!(
                    "the instance is RUNNABLE but stopped (settings.activationPolicy NEVER){also}"
                ),
            ));
        }
        if let Some(m) = mismatch {
            return Err(ProbeError::new(Reason::Expectation, m));
        }
        Ok(())
    }

    fn facts(&self, i: &Instance, state: &'static str, _: &[Check]) -> Vec<(&'static str, String)> {
        let mut facts = vec![("state", state.to_string())];
        if let Some(v) = i.database_version.as_deref().map(enum_label) {
            facts.push(("database_version", v));
        }
        let actual = i.connection_name.as_deref().unwrap_or("");
        if !actual.is_empty() {
            facts.push(("connection_name", show(actual)));
        }
        facts
    }
}

impl ProbeKind for CloudSqlSpec {
    const KIND: Kind = Kind::GcpCloudsql;
    const DEFAULT_TIMEOUT: Duration = super::DEFAULT_TIMEOUT;
    type Probe = ResourceProbe<Self>;
    type Error = GcpError;
    const FAMILIES: &'static [crate::probe::KindFamily] = &[
        super::RESOURCE_STATE,
        super::EXPECTATION_MET,
        super::CLOUDSQL_INFO,
    ];

    /// Every state at 0 before the first run.
    fn initial_samples(&self) -> Vec<crate::probe::Sample> {
        super::initial_samples(<Self as Resource>::STATES)
    }

    fn build(&self) -> Result<Self::Probe, GcpError> {
        resource::build(self)
    }
}
