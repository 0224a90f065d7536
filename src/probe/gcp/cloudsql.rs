//! `gcp_cloudsql` probe: a Cloud SQL instance's state (healthy when `RUNNABLE` and not
//! stopped), its database version, and its connection name checked against the one the
//! service is configured with, from `GET /v1/projects/P/instances/I` (Cloud SQL Admin API).

use super::{GcpObs, Prepared, classify_state, enum_label, show, state_error};
use crate::probe::Observation;
use crate::probe::google::CredentialsSpec;
use crate::probe::{Outcome, ProbeError, Reason, Trace};
use serde::Deserialize;
use std::sync::OnceLock;

pub const DEFAULT_API_BASE: &str = "https://sqladmin.googleapis.com";
/// `SqlInstanceState` of the Cloud SQL Admin API v1.
pub const STATES: &[&str] = &[
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
const HEALTHY: &str = "RUNNABLE";
const API: &str = "Cloud SQL Admin API";
pub const EXPECT_CONNECTION_NAME: &str = "connection_name";

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloudSqlSpec {
    pub project: String,
    pub instance: String,
    /// The `PROJECT:REGION:INSTANCE` the service connects to (its `/cloudsql/...` socket);
    /// a different `connectionName` fails with `expectation`.
    pub connection_name: Option<String>,
    /// Default `https://sqladmin.googleapis.com`.
    pub api_base: Option<String>,
    #[serde(default)]
    pub credentials: CredentialsSpec,
    #[serde(skip)]
    prepared: OnceLock<Prepared>,
}

/// The fields of `DatabaseInstance` pathwatch reads (never `rootPassword` and the like).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Instance {
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

impl CloudSqlSpec {
    pub fn validate(&self) -> Result<(), String> {
        if let Some(c) = &self.connection_name
            && c.split(':').filter(|p| !p.is_empty()).count() < 3
        {
            return Err(format!(
                "\"connection_name\" must be PROJECT:REGION:INSTANCE, found {c:?}"
            ));
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
            &[("project", &self.project), ("instance", &self.instance)],
            &format!("v1/projects/{}/instances/{}", self.project, self.instance),
        )
    }

    /// The expectation names this probe exports (`pathwatch_gcp_expectation_met`).
    pub fn expectation_names(&self) -> Vec<String> {
        self.connection_name
            .iter()
            .map(|_| EXPECT_CONNECTION_NAME.to_string())
            .collect()
    }
}

pub async fn probe(spec: &CloudSqlSpec, trace: &Trace) -> Result<Outcome, ProbeError> {
    let prep = Prepared::get(&spec.prepared, || spec.prepare())?;
    let mut obs = GcpObs::pending(spec.expectation_names());
    trace.observe(Observation::Gcp(obs.clone()));
    let i: Instance = prep.client.get_json(API, &prep.url, trace).await?;
    obs.database_version = i.database_version.as_deref().map(enum_label);
    let actual = i.connection_name.as_deref().unwrap_or("");
    let mismatch = match &spec.connection_name {
        Some(want) => {
            let met = actual == want;
            obs.expectations = vec![(EXPECT_CONNECTION_NAME.to_string(), Some(met))];
            (!met).then(|| {
                format!(
                    "connection_name is {} (expected {})",
                    if actual.is_empty() {
                        "unset".to_string()
                    } else {
                        show(actual)
                    },
                    show(want)
                )
            })
        }
        None => None,
    };
    let state = classify_state(
        trace,
        &mut obs,
        "instance",
        "state",
        i.state.as_deref(),
        STATES,
    );
    trace.observe(Observation::Gcp(obs.clone()));
    let state = state?;
    let stopped = i
        .settings
        .as_ref()
        .and_then(|s| s.activation_policy.as_deref())
        == Some("NEVER");
    // The expectation is reported in every detail: a wrong instance that is also down
    // must not hide the wiring mistake behind the state.
    let also = mismatch
        .as_deref()
        .map(|m| format!("; also {m}"))
        .unwrap_or_default();
    if state != HEALTHY {
        let mut e = state_error("instance", i.state.as_deref(), state, HEALTHY);
        e.detail.push_str(&also);
        return Err(e);
    }
    if stopped {
        // The API calls a stopped instance RUNNABLE ("ready to run when accessed"), but
        // with activationPolicy NEVER nothing starts it: connections fail.
        return Err(ProbeError::new(
            Reason::ResourceState,
            format!("the instance is RUNNABLE but stopped (settings.activationPolicy NEVER){also}"),
        ));
    }
    if let Some(m) = mismatch {
        return Err(ProbeError::new(Reason::Expectation, m));
    }
    let mut facts = vec![("state", state.to_string())];
    if let Some(v) = &obs.database_version {
        facts.push(("database_version", v.clone()));
    }
    if !actual.is_empty() {
        facts.push(("connection_name", show(actual)));
    }
    Ok(Outcome { facts })
}

impl crate::probe::ProbeKind for CloudSqlSpec {
    const KIND: crate::probe::Kind = crate::probe::Kind::GcpCloudsql;

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
