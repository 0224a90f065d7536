//! `gcp_vpc_connector` probe: a Serverless VPC Access connector's state (healthy when
//! `READY`) and its scaling bounds, from `GET /v1/projects/P/locations/R/connectors/C`.

use super::{ConnectorSize, GcpObs, Prepared, classify_state, state_error};
use crate::gcp::CredentialsSpec;
use crate::probe::Observation;
use crate::probe::{Outcome, ProbeError, Trace};
use serde::Deserialize;
use std::sync::OnceLock;

pub const DEFAULT_API_BASE: &str = "https://vpcaccess.googleapis.com";
/// `Connector.State` of the VPC Access API v1.
pub const STATES: &[&str] = &[
    "STATE_UNSPECIFIED",
    "READY",
    "CREATING",
    "DELETING",
    "ERROR",
    "UPDATING",
];
const HEALTHY: &str = "READY";
const API: &str = "VPC Access API";

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VpcConnectorSpec {
    pub project: String,
    pub region: String,
    pub connector: String,
    /// Default `https://vpcaccess.googleapis.com` (tests point it at a local fake).
    pub api_base: Option<String>,
    /// Default: the metadata server.
    #[serde(default)]
    pub credentials: CredentialsSpec,
    #[serde(skip)]
    prepared: OnceLock<Prepared>,
}

/// The fields of `Connector` pathwatch reads; the others are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Connector {
    state: Option<String>,
    #[serde(default, with = "super::lenient_number")]
    min_instances: Option<f64>,
    #[serde(default, with = "super::lenient_number")]
    max_instances: Option<f64>,
    #[serde(default, with = "super::lenient_number")]
    min_throughput: Option<f64>,
    #[serde(default, with = "super::lenient_number")]
    max_throughput: Option<f64>,
    machine_type: Option<String>,
}

impl VpcConnectorSpec {
    pub fn validate(&self) -> Result<(), String> {
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
                ("connector", &self.connector),
            ],
            &format!(
                "v1/projects/{}/locations/{}/connectors/{}",
                self.project, self.region, self.connector
            ),
        )
    }
}

pub async fn probe(spec: &VpcConnectorSpec, trace: &Trace) -> Result<Outcome, ProbeError> {
    let prep = Prepared::get(&spec.prepared, || spec.prepare())?;
    let mut obs = GcpObs::default();
    trace.observe(Observation::Gcp(obs.clone()));
    let c: Connector = prep.client.get_json(API, &prep.url, trace).await?;
    obs.connector = Some(ConnectorSize {
        min_instances: c.min_instances,
        max_instances: c.max_instances,
        min_throughput: c.min_throughput,
        max_throughput: c.max_throughput,
    });
    let state = classify_state(
        trace,
        &mut obs,
        "connector",
        "state",
        c.state.as_deref(),
        STATES,
    );
    trace.observe(Observation::Gcp(obs.clone()));
    let state = state?;
    if state != HEALTHY {
        return Err(state_error("connector", c.state.as_deref(), state, HEALTHY));
    }
    let num = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |n| n.to_string());
    let mut facts = vec![
        ("state", state.to_string()),
        (
            "instances",
            format!("{}-{}", num(c.min_instances), num(c.max_instances)),
        ),
        (
            "throughput_mbps",
            format!("{}-{}", num(c.min_throughput), num(c.max_throughput)),
        ),
    ];
    if let Some(m) = c.machine_type {
        facts.push(("machine_type", super::show(&m)));
    }
    Ok(Outcome { facts })
}
