//! `gcp_vpc_connector` probe: a Serverless VPC Access connector's state (healthy when
//! `READY`) and its scaling bounds, from `GET /v1/projects/P/locations/R/connectors/C`.

use super::{ConnectorSize, GcpObs, Prepared, classify_state, state_error};
use crate::probe::Observation;
use crate::probe::google::CredentialsSpec;
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
    /// The sizing the connector should have (the capacity plan): a connector resized or
    /// recreated with other bounds fails with `expectation`, naming each one that broke.
    #[serde(default)]
    pub expect: ConnectorExpect,
    #[serde(skip)]
    prepared: OnceLock<Prepared>,
}

/// Expected scaling bounds and machine type; each one set is compared for equality with what
/// the API reports, and exported as `pathwatch_gcp_expectation_met{expectation=NAME}`.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConnectorExpect {
    pub min_instances: Option<u32>,
    pub max_instances: Option<u32>,
    /// Mbps.
    pub min_throughput: Option<u32>,
    /// Mbps.
    pub max_throughput: Option<u32>,
    /// e.g. `e2-micro`, `f1-micro`, `e2-standard-4`.
    pub machine_type: Option<String>,
}

impl ConnectorExpect {
    /// (name, expected as text, actual as text, met) for every expectation set.
    fn check(&self, c: &Connector) -> Vec<(&'static str, String, String, bool)> {
        let num = |v: Option<f64>| v.map_or_else(|| "unset".to_string(), |n| n.to_string());
        let mut out = Vec::new();
        for (name, want, got) in [
            ("min_instances", self.min_instances, c.min_instances),
            ("max_instances", self.max_instances, c.max_instances),
            ("min_throughput", self.min_throughput, c.min_throughput),
            ("max_throughput", self.max_throughput, c.max_throughput),
        ] {
            if let Some(w) = want {
                let met = got == Some(f64::from(w));
                out.push((name, w.to_string(), num(got), met));
            }
        }
        if let Some(w) = &self.machine_type {
            let got = c.machine_type.clone().unwrap_or_else(|| "unset".into());
            out.push(("machine_type", w.clone(), got.clone(), got == *w));
        }
        out
    }
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
    /// The expectation names this probe exports (`pathwatch_gcp_expectation_met`).
    pub fn expectation_names(&self) -> Vec<String> {
        let e = &self.expect;
        [
            ("min_instances", e.min_instances.is_some()),
            ("max_instances", e.max_instances.is_some()),
            ("min_throughput", e.min_throughput.is_some()),
            ("max_throughput", e.max_throughput.is_some()),
            ("machine_type", e.machine_type.is_some()),
        ]
        .into_iter()
        .filter(|(_, set)| *set)
        .map(|(n, _)| n.to_string())
        .collect()
    }

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
    let mut obs = GcpObs::pending(spec.expectation_names());
    trace.observe(Observation::Gcp(obs.clone()));
    let c: Connector = prep.client.get_json(API, &prep.url, trace).await?;
    let checks = spec.expect.check(&c);
    obs.expectations = checks
        .iter()
        .map(|(name, _, _, met)| (name.to_string(), Some(*met)))
        .collect();
    let unmet: Vec<String> = checks
        .iter()
        .filter(|(_, _, _, met)| !met)
        .map(|(name, want, got, _)| {
            format!(
                "{name} is {} (expected {})",
                super::show(got),
                super::show(want)
            )
        })
        .collect();
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
    let down =
        (state != HEALTHY).then(|| state_error("connector", c.state.as_deref(), state, HEALTHY));
    super::verdict(down, &unmet, checks.len())?;
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

impl crate::probe::ProbeKind for VpcConnectorSpec {
    const KIND: crate::probe::Kind = crate::probe::Kind::GcpVpcConnector;

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
