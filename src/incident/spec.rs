//! Incidents in the config: an id, a title, resolution criteria, hysteresis and a webhook.
//!
//! Plain data that config deserializes; a criterion's invalid condition is a
//! [`ConditionError`], which config places at the criterion's line.

use crate::core::types::PositiveDuration;
use crate::probe::Kind;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Consecutive passing results each criterion needs before the incident counts as resolved.
/// Two rather than one: a single lucky run must not close an incident that hangs on and off,
/// and at the plan's 30 s interval two results still prove a fix within a minute.
pub(crate) const DEFAULT_RESOLVE_AFTER: u32 = 2;
/// Consecutive failing results of any criterion that reopen a resolved incident. Two, so one
/// network blip does not page anyone; a real regression shows twice within an interval or two.
pub(crate) const DEFAULT_REOPEN_AFTER: u32 = 2;

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentSpec {
    /// The incident's id (the `incident` label), e.g. `"1278"`; unique.
    pub(crate) id: String,
    /// A title for people: status page, log lines, webhooks and alerts.
    #[serde(default)]
    pub(crate) title: String,
    /// The resolution criteria: every one must hold for the incident to be resolved.
    pub(crate) criteria: Vec<CriterionSpec>,
    /// Passing results in a row of every criterion that resolve the incident.
    #[serde(default = "default_resolve")]
    pub(crate) resolve_after: u32,
    /// Failing results in a row of any criterion that make it present.
    #[serde(default = "default_reopen")]
    pub(crate) reopen_after: u32,
    pub(crate) webhook: Option<WebhookSpec>,
}

fn default_resolve() -> u32 {
    DEFAULT_RESOLVE_AFTER
}
fn default_reopen() -> u32 {
    DEFAULT_REOPEN_AFTER
}

/// One resolution criterion: a probe and exactly one condition on it.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CriterionSpec {
    /// The criterion's name (the `criterion` label); unique within its incident.
    pub(crate) name: String,
    /// The probe whose results it judges (a `name` under `probes:`).
    pub(crate) probe: String,
    /// The probe succeeds and its measured seconds stay below this bound.
    pub(crate) max_seconds: Option<f64>,
    /// Every expected golden-path event is delivered.
    pub(crate) all_events: Option<bool>,
    /// The probe succeeds.
    pub(crate) success: Option<bool>,
    /// The resource state the probe reports equals this (e.g. READY, RUNNABLE).
    pub(crate) state: Option<String>,
    /// The probe's latest result is at most this many intervals old.
    pub(crate) fresh: Option<u32>,
    /// The share of usable connection slots in use stays below this (0 < N <= 1): a
    /// `postgres` probe with `connections: true`; e.g. 0.8 warns before connects fail.
    pub(crate) connections_below: Option<f64>,
}

/// The condition of a criterion, once validated.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Condition {
    MaxSeconds(f64),
    AllEvents,
    Success,
    State(String),
    Fresh(u32),
    ConnectionsBelow(f64),
}

/// Why a criterion's condition is invalid; each variant holds the criterion's name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ConditionError {
    #[error("criterion \"{0}\": max_seconds must be above 0")]
    MaxSeconds(String),
    #[error("criterion \"{0}\": fresh must be at least 1")]
    Fresh(String),
    #[error("criterion \"{0}\": connections_below must be above 0 and at most 1")]
    ConnectionsBelow(String),
    #[error(
        "criterion \"{0}\": give exactly one of max_seconds, all_events: true, success: true, state, fresh"
    )]
    NotExactlyOne(String),
}

impl CriterionSpec {
    pub(crate) fn condition(&self) -> Result<Condition, ConditionError> {
        let mut found = Vec::new();
        if let Some(s) = self.max_seconds {
            if !(s > 0.0 && s.is_finite()) {
                return Err(ConditionError::MaxSeconds(self.name.clone()));
            }
            found.push(Condition::MaxSeconds(s));
        }
        if self.all_events == Some(true) {
            found.push(Condition::AllEvents);
        }
        if self.success == Some(true) {
            found.push(Condition::Success);
        }
        if let Some(s) = &self.state {
            found.push(Condition::State(s.clone()));
        }
        if let Some(n) = self.fresh {
            if n == 0 {
                return Err(ConditionError::Fresh(self.name.clone()));
            }
            found.push(Condition::Fresh(n));
        }
        if let Some(n) = self.connections_below {
            if !(n > 0.0 && n <= 1.0) {
                return Err(ConditionError::ConnectionsBelow(self.name.clone()));
            }
            found.push(Condition::ConnectionsBelow(n));
        }
        match found.len() {
            1 => Ok(found.remove(0)),
            _ => Err(ConditionError::NotExactlyOne(self.name.clone())),
        }
    }
}

/// Whether a probe kind produces what a condition reads.
pub(crate) fn kind_supports(kind: Kind, c: &Condition) -> bool {
    match c {
        Condition::MaxSeconds(_) | Condition::Success | Condition::Fresh(_) => true,
        Condition::AllEvents => kind == Kind::GoldenPath,
        Condition::ConnectionsBelow(_) => kind == Kind::Postgres,
        // Only the GCP probes report a resource state, and only one of their kind's enum
        // (READY, RUNNABLE, CONDITION_SUCCEEDED, ...): a misspelt state could never be met.
        Condition::State(want) => crate::probe::kinds::gcp::states(kind)
            .is_some_and(|states| states.contains(&want.as_str())),
    }
}

/// A generic JSON POST on every status change.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookSpec {
    /// May carry a token; it is never logged.
    pub(crate) url: String,
    /// Header values may carry credentials; they are never logged.
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
    /// Per attempt.
    pub(crate) timeout: Option<PositiveDuration>,
    /// Attempts in all (the first plus retries with doubling backoff from 1 s).
    #[serde(default = "default_attempts")]
    pub(crate) attempts: u32,
}

fn default_attempts() -> u32 {
    4
}
