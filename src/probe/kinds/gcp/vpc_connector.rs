//! `gcp_vpc_connector` probe: a Serverless VPC Access connector's state (healthy when
//! `READY`) and its scaling bounds, from `GET /v1/projects/P/locations/R/connectors/C`.

use super::resource::{self, Check, Resource, ResourceProbe};
use super::{ConnectorSize, GcpError, GcpObs, show};
use crate::probe::Kind;
use crate::probe::common::google::CredentialsSpec;
use crate::probe::common::kind::ProbeKind;
use serde::Deserialize;
use std::time::Duration;

pub(crate) const DEFAULT_API_BASE: &str = "https://vpcaccess.googleapis.com";
/// `Connector.State` of the VPC Access API v1.
pub(crate) const STATES: &[&str] = &[
    "STATE_UNSPECIFIED",
    "READY",
    "CREATING",
    "DELETING",
    "ERROR",
    "UPDATING",
];

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VpcConnectorSpec {
    /// The project id, as in the connector's name.
    pub(crate) project: String,
    /// The connector's region, e.g. `us-central1`.
    pub(crate) region: String,
    /// The connector's name.
    pub(crate) connector: String,
    /// Default `https://vpcaccess.googleapis.com` (tests point it at a local fake).
    pub(crate) api_base: Option<String>,
    /// Default: the metadata server.
    #[serde(default)]
    pub(crate) credentials: CredentialsSpec,
    /// The sizing the connector should have (the capacity plan): a connector resized or
    /// recreated with other bounds fails with `expectation`, naming each one that broke.
    #[serde(default)]
    pub(crate) expect: ConnectorExpect,
}

/// Expected scaling bounds and machine type; each one set is compared for equality with what
/// the API reports, and exported as `pathwatch_gcp_expectation_met{expectation=NAME}`.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConnectorExpect {
    /// The minimum number of instances the connector must have.
    pub(crate) min_instances: Option<u32>,
    /// The maximum number of instances the connector must have.
    pub(crate) max_instances: Option<u32>,
    /// Mbps.
    pub(crate) min_throughput: Option<u32>,
    /// Mbps.
    pub(crate) max_throughput: Option<u32>,
    /// e.g. `e2-micro`, `f1-micro`, `e2-standard-4`.
    pub(crate) machine_type: Option<String>,
}

impl ConnectorExpect {
    /// Every expectation set, compared with what the connector has.
    fn check(&self, c: &Connector) -> Vec<Check> {
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
                out.push(check(name, &w.to_string(), &num(got), met));
            }
        }
        if let Some(w) = &self.machine_type {
            let got = c.machine_type.clone().unwrap_or_else(|| "unset".into());
            let met = got == *w;
            out.push(check("machine_type", w, &got, met));
        }
        out
    }
}

/// Values are shown quoted (`min_instances is "3" (expected "2")`).
fn check(name: &str, want: &str, got: &str, met: bool) -> Check {
    Check {
        name: name.to_string(),
        met,
        actual: show(got),
        expected: show(want),
        hint: "",
    }
}

/// The fields of `Connector` pathwatch reads; the others are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Connector {
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

impl Resource for VpcConnectorSpec {
    type Answer = Connector;
    const API: &'static str = "VPC Access API";
    const DEFAULT_API_BASE: &'static str = DEFAULT_API_BASE;
    const STATES: &'static [&'static str] = STATES;
    const HEALTHY: &'static str = "READY";
    const NOUN: &'static str = "connector";
    const STATE_FIELD: &'static str = "state";

    fn ids(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("project", &self.project),
            ("region", &self.region),
            ("connector", &self.connector),
        ]
    }

    fn path(&self) -> String {
        format!(
            "v1/projects/{}/locations/{}/connectors/{}",
            self.project, self.region, self.connector
        )
    }

    fn api_base(&self) -> Option<&str> {
        self.api_base.as_deref()
    }

    fn credentials(&self) -> &CredentialsSpec {
        &self.credentials
    }

    fn expectation_names(&self) -> Vec<String> {
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

    fn state(c: &Connector) -> Option<&str> {
        c.state.as_deref()
    }

    fn expectations(&self, c: &Connector, obs: &mut GcpObs) -> Vec<Check> {
        obs.connector = Some(ConnectorSize {
            min_instances: c.min_instances,
            max_instances: c.max_instances,
            min_throughput: c.min_throughput,
            max_throughput: c.max_throughput,
        });
        self.expect.check(c)
    }

    fn facts(
        &self,
        c: &Connector,
        state: &'static str,
        _: &[Check],
    ) -> Vec<(&'static str, String)> {
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
        if let Some(m) = &c.machine_type {
            facts.push(("machine_type", show(m)));
        }
        facts
    }
}

impl ProbeKind for VpcConnectorSpec {
    const KIND: Kind = Kind::GcpVpcConnector;
    const DEFAULT_TIMEOUT: Duration = super::DEFAULT_TIMEOUT;
    type Probe = ResourceProbe<Self>;
    type Error = GcpError;
    const FAMILIES: &'static [crate::probe::KindFamily] = &[
        super::RESOURCE_STATE,
        super::CONNECTOR_INSTANCES,
        super::CONNECTOR_THROUGHPUT,
        super::EXPECTATION_MET,
    ];

    /// Every state at 0 before the first run.
    fn initial_samples(&self) -> Vec<crate::probe::Sample> {
        super::initial_samples(<Self as Resource>::STATES)
    }

    fn build(&self) -> Result<Self::Probe, GcpError> {
        resource::build(self)
    }
}
