//! Google Cloud resource probes: one authenticated GET of a resource's REST representation,
//! its state checked against the kind's closed enum, and the user's expectations compared with
//! what the API reports. One generic probe ([`resource::ResourceProbe`]) does it for every
//! kind; a kind is its [`resource::Resource`]: path, states, and its expectation checks.
//!
//! - `gcp_vpc_connector`: Serverless VPC Access connector, healthy when `READY`.
//! - `gcp_cloudsql`: Cloud SQL instance, healthy when `RUNNABLE` (and not stopped).
//! - `gcp_cloud_run`: Cloud Run service, healthy when its terminal condition succeeded;
//!   its wiring (connector, egress, env, Cloud SQL instances) is checked against `expect`.
//!
//! Each run has two phases: `credentials` (an access token, usually from the cache) and
//! `request` (the GET and its body). API errors map to reasons through
//! [`crate::probe::common::google::status_error`]; a state outside the kind's enum is exported as
//! [`UNRECOGNIZED`] and fails with `resource_state`.

mod client;
pub(crate) mod cloud_run;
pub(crate) mod cloudsql;
pub(crate) mod resource;
pub(crate) mod vpc_connector;

pub(crate) use client::Client;

use crate::probe::Observation;
use crate::probe::common::google::CredentialsError;
use crate::probe::common::kind::{KindFamily, Sample};
use crate::probe::common::tls::TlsError;
use crate::probe::{Kind, ProbeError, Reason, Trace};
use std::time::Duration;

/// An API GET takes well under a second; 10 s leaves room for a slow metadata server.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The state exported when the API answers a value outside the kind's enum (a newer API).
pub(crate) const UNRECOGNIZED: &str = "UNRECOGNIZED";
/// A resource larger than this is not what we asked for (a Cloud Run service is ~10 KiB).
const MAX_BODY_BYTES: usize = 4 << 20;
/// Values quoted in details are cut here so a log line stays a line.
const MAX_SHOWN: usize = 200;

/// Why a GCP spec does not build.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GcpError {
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error("\"{0}\" must be 1-128 characters of letters, digits, '-', '_', '.', ':'")]
    Id(&'static str),
    #[error("invalid api_base: {0}")]
    ApiBase(url::ParseError),
    #[error("\"api_base\" must be an http:// or https:// URL with a host")]
    ApiBaseNotHttp,
    #[error("invalid resource URL: {0}")]
    ResourceUrl(url::ParseError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot build the HTTP client: {0}")]
    Client(reqwest::Error),
    #[error("\"connection_name\" must be PROJECT:REGION:INSTANCE, found {0:?}")]
    ConnectionName(String),
    #[error("env name {0:?} must be 1-64 letters, digits or '_', not starting with a digit")]
    EnvName(String),
    #[error("\"expect.vpc_connector\" must not be empty")]
    EmptyVpcConnector,
}

/// The closed list of states a GCP kind reports (the one-hot gauge's values, without
/// [`UNRECOGNIZED`]); `None` for the other kinds.
pub(crate) fn states(kind: Kind) -> Option<&'static [&'static str]> {
    match kind {
        Kind::GcpVpcConnector => Some(vpc_connector::STATES),
        Kind::GcpCloudsql => Some(cloudsql::STATES),
        Kind::GcpCloudRun => Some(cloud_run::STATES),
        _ => None,
    }
}

/// `pathwatch_gcp_resource_state{probe, state}`: 1 on the current state, 0 on the kind's
/// others (all 0 when the run learned no state). Label values are the kind's closed list
/// and [`UNRECOGNIZED`].
pub const RESOURCE_STATE: KindFamily = KindFamily::int_gauge(
    "gcp_resource_state",
    "The GCP resource's state as the API reports it: 1 on the current state, 0 on the kind's others (all 0 when the last run learned no state)",
)
.labels(&["state"])
.zero_when_unreported();
/// A VPC connector's scaling bounds (`bound`: `min`, `max`), kept while a run learns none.
pub const CONNECTOR_INSTANCES: KindFamily = KindFamily::gauge(
    "gcp_vpc_connector_instances",
    "The VPC connector's minimum and maximum instances, as last reported",
)
.labels(&["bound"])
.removed_when_others_reported();
/// A VPC connector's throughput bounds in Mbps (`bound`: `min`, `max`), kept while a run
/// learns none.
pub const CONNECTOR_THROUGHPUT: KindFamily = KindFamily::gauge(
    "gcp_vpc_connector_throughput",
    "The VPC connector's minimum and maximum throughput, as last reported",
)
.unit("mbps")
.labels(&["bound"])
.removed_when_others_reported();
/// Each configured expectation (`vpc_connector`, `egress`, `env:NAME`, ...: bounded by the
/// config) met or not; absent while the resource is not read.
pub const EXPECTATION_MET: KindFamily = KindFamily::int_gauge(
    "gcp_expectation_met",
    "Whether each configured expectation on the GCP resource holds (absent: the resource could not be read)",
)
.labels(&["expectation"])
.removed_when_unreported();
/// A Cloud SQL instance's `databaseVersion` (an API enum value such as `POSTGRES_15`,
/// anything else `UNRECOGNIZED`): an upgrade drops the old series.
pub const CLOUDSQL_INFO: KindFamily = KindFamily::int_gauge(
    "gcp_cloudsql_info",
    "The Cloud SQL instance's database version (always 1)",
)
.labels(&["database_version"])
.removed_when_others_reported();

/// Every state of a kind (and [`UNRECOGNIZED`]) at 0, before the first run.
pub fn initial_samples(states: &'static [&'static str]) -> Vec<Sample> {
    states
        .iter()
        .chain([&UNRECOGNIZED])
        .map(|s| RESOURCE_STATE.sample_with(vec![(*s).to_string()], 0.0))
        .collect()
}

/// What a GCP run learned, for the `pathwatch_gcp_*` metrics. The probe stores it in the
/// trace before the request (nothing known yet) and again at the end, so a run cut at its
/// timeout still reports "state unknown" rather than the previous run's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GcpObs {
    /// One of the kind's states or [`UNRECOGNIZED`]; `None` when the API gave no state.
    pub state: Option<&'static str>,
    /// Each configured expectation by name (`egress`, `env:NAME`, ...) and whether it holds;
    /// `None` when the resource could not be read this run.
    pub expectations: Vec<(String, Option<bool>)>,
    /// A VPC connector's instance and throughput bounds.
    pub connector: Option<ConnectorSize>,
    /// A Cloud SQL instance's `databaseVersion` (an API enum value, checked to be one).
    pub database_version: Option<String>,
}

/// A connector's scaling bounds, as the API reports them (absent fields stay `None`).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ConnectorSize {
    /// The fewest connector instances the connector scales down to.
    pub min_instances: Option<f64>,
    /// The most connector instances the connector scales up to.
    pub max_instances: Option<f64>,
    /// Mbps.
    pub min_throughput: Option<f64>,
    /// Mbps.
    pub max_throughput: Option<f64>,
}

impl GcpObs {
    /// The samples of the `pathwatch_gcp_*` families: the current state (the others read
    /// 0), the expectations checked, a connector's bounds and an instance's version.
    pub fn samples(&self) -> Vec<Sample> {
        let label = |s: &str| vec![s.to_string()];
        let mut samples: Vec<Sample> = self
            .state
            .map(|s| RESOURCE_STATE.sample_with(label(s), 1.0))
            .into_iter()
            .collect();
        for (name, met) in &self.expectations {
            if let Some(met) = met {
                samples.push(EXPECTATION_MET.sample_with(label(name), f64::from(u8::from(*met))));
            }
        }
        if let Some(c) = self.connector {
            let bounds = [
                (CONNECTOR_INSTANCES, "min", c.min_instances),
                (CONNECTOR_INSTANCES, "max", c.max_instances),
                (CONNECTOR_THROUGHPUT, "min", c.min_throughput),
                (CONNECTOR_THROUGHPUT, "max", c.max_throughput),
            ];
            for (family, bound, value) in bounds {
                if let Some(v) = value {
                    samples.push(family.sample_with(label(bound), v));
                }
            }
        }
        if let Some(version) = &self.database_version {
            samples.push(CLOUDSQL_INFO.sample_with(label(version), 1.0));
        }
        samples
    }

    /// Nothing known yet: every expectation pending.
    pub(crate) fn pending(names: impl IntoIterator<Item = String>) -> Self {
        GcpObs {
            expectations: names.into_iter().map(|n| (n, None)).collect(),
            ..GcpObs::default()
        }
    }
}

/// Classifies a reported state: one of `states`, or [`UNRECOGNIZED`]. Records it in the
/// trace (for `state:` criteria) and returns it with the raw value shown in details.
/// A missing state is a protocol error: the answer is not the resource we asked for.
pub(crate) fn classify_state(
    trace: &Trace,
    obs: &mut GcpObs,
    what: &str,
    field: &str,
    raw: Option<&str>,
    states: &'static [&'static str],
) -> Result<&'static str, ProbeError> {
    let raw = raw.filter(|s| !s.is_empty()).ok_or_else(|| {
        ProbeError::new(
            Reason::Protocol,
            format!("the {what} answer has no \"{field}\" field"),
        )
    })?;
    let state = states
        .iter()
        .copied()
        .find(|s| *s == raw)
        .unwrap_or(UNRECOGNIZED);
    obs.state = Some(state);
    trace.observe(Observation::State(state.into()));
    Ok(state)
}

/// The verdict on a resource that was read: an unhealthy state fails the run, with the unmet
/// expectations appended so a wrong sizing or wiring is not hidden behind the state; else any
/// unmet expectation fails it with `expectation` (`2 of 3 expectations unmet: a; b`).
pub(crate) fn verdict(
    state: Option<ProbeError>,
    unmet: &[String],
    total: usize,
) -> Result<(), ProbeError> {
    let text = (!unmet.is_empty()).then(|| {
        format!(
            "{} of {total} expectations unmet: {}",
            unmet.len(),
            unmet.join("; ")
        )
    });
    match (state, text) {
        (Some(mut e), Some(t)) => {
            e.detail.push_str("; also ");
            e.detail.push_str(&t);
            Err(e)
        }
        (Some(e), None) => Err(e),
        (None, Some(t)) => Err(ProbeError::new(Reason::Expectation, t)),
        (None, None) => Ok(()),
    }
}

/// The error for a state that is not the healthy one.
pub(crate) fn state_error(what: &str, raw: Option<&str>, state: &str, healthy: &str) -> ProbeError {
    let detail = if state == UNRECOGNIZED {
        format!(
            "the {what} reports state {}, which pathwatch does not know (exported as {UNRECOGNIZED}; healthy is {healthy})",
            show(raw.unwrap_or(""))
        )
    } else {
        format!("the {what} is {state}, not {healthy}")
    };
    ProbeError::new(Reason::ResourceState, detail)
}

/// A value from the API, quoted and cut for a detail or fact (only for values that are not
/// secret: names, enum values, safe env values).
pub(crate) fn show(value: &str) -> String {
    if value.chars().count() > MAX_SHOWN {
        let cut: String = value.chars().take(MAX_SHOWN).collect();
        format!("{cut:?}...")
    } else {
        format!("{value:?}")
    }
}

/// An API enum value fit for a label: upper-case letters, digits and '_' (else UNRECOGNIZED).
pub(crate) fn enum_label(value: &str) -> String {
    if !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
    {
        value.to_string()
    } else {
        UNRECOGNIZED.to_string()
    }
}

/// Reads an integer the API may send as a JSON number or (int64 in proto3 JSON) a string.
pub(crate) mod lenient_number {
    use serde::{Deserialize, Deserializer};

    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrText {
        Num(f64),
        Text(String),
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        Ok(match Option::<NumOrText>::deserialize(d)? {
            Some(NumOrText::Num(n)) => Some(n),
            Some(NumOrText::Text(t)) => t.trim().parse().ok(),
            None => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enum_labels_are_bounded() {
        assert_eq!(enum_label("POSTGRES_15"), "POSTGRES_15");
        assert_eq!(enum_label("postgres 15"), UNRECOGNIZED);
        assert_eq!(enum_label(&"A".repeat(65)), UNRECOGNIZED);
    }

    #[test]
    fn unknown_states_become_unrecognized() {
        let trace = Trace::default();
        let mut obs = GcpObs::default();
        let s = classify_state(
            &trace,
            &mut obs,
            "connector",
            "state",
            Some("HIBERNATING"),
            vpc_connector::STATES,
        )
        .unwrap();
        assert_eq!(s, UNRECOGNIZED);
        assert_eq!(trace.observations().state(), Some(UNRECOGNIZED));
        let e = state_error("connector", Some("HIBERNATING"), s, "READY");
        assert_eq!(e.reason, Reason::ResourceState);
        assert!(e.detail.contains("\"HIBERNATING\""), "{}", e.detail);
        let missing = classify_state(&trace, &mut obs, "connector", "state", None, &[]);
        assert_eq!(missing.unwrap_err().reason, Reason::Protocol);
    }

    #[test]
    fn long_values_are_cut() {
        let shown = show(&"v".repeat(500));
        assert!(shown.len() < 220 && shown.ends_with("..."), "{shown}");
    }
}
