//! The one GCP resource probe: a kind is a [`Resource`] (its ids and path template, its API,
//! its closed state list and healthy state, and the function that evaluates its
//! expectations), and [`ResourceProbe`] does the rest for every kind: checks the common keys,
//! builds the resource URL and the client once, GETs the resource, classifies its state,
//! records the observation and judges the run.

use super::{Client, GcpError, GcpObs, classify_state, state_error, verdict};
use crate::probe::common::google::CredentialsSpec;
use crate::probe::common::kind::Probe;
use crate::probe::{Observation, Outcome, ProbeError, Trace};
use serde::de::DeserializeOwned;
use url::Url;

/// A GCP resource kind, as the generic probe needs it.
pub(crate) trait Resource: Clone + std::fmt::Debug + Send + Sync + 'static {
    /// The fields of the API's answer pathwatch reads.
    type Answer: DeserializeOwned + Send;
    /// The API, as details name it.
    const API: &'static str;
    const DEFAULT_API_BASE: &'static str;
    /// The closed list of states (the one-hot gauge's values, without `UNRECOGNIZED`).
    const STATES: &'static [&'static str];
    const HEALTHY: &'static str;
    /// The resource as details name it (`connector`, `instance`, `service`).
    const NOUN: &'static str;
    /// Where the answer holds its state, as details name it.
    const STATE_FIELD: &'static str;

    /// The resource's ids by config key, checked to be safe in a URL path.
    fn ids(&self) -> Vec<(&'static str, &str)>;
    /// The resource's path under the API base (its ids are checked before it is used).
    fn path(&self) -> String;
    fn api_base(&self) -> Option<&str>;
    fn credentials(&self) -> &CredentialsSpec;
    /// Checks of the kind's own fields, before the common ones.
    fn check_fields(&self) -> Result<(), GcpError> {
        Ok(())
    }
    /// The expectation names this probe exports (`pathwatch_gcp_expectation_met`), in the
    /// order they are checked.
    fn expectation_names(&self) -> Vec<String>;
    /// The answer's raw state.
    fn state(answer: &Self::Answer) -> Option<&str>;
    /// Compares the answer with the expectations; records what else the kind reports
    /// (sizes, versions) in `obs`.
    fn expectations(&self, answer: &Self::Answer, obs: &mut GcpObs) -> Vec<Check>;
    /// The verdict on a resource that was read: by default an unhealthy state fails the run,
    /// with the unmet expectations appended; else any unmet expectation fails it.
    fn verdict(
        &self,
        answer: &Self::Answer,
        state: &'static str,
        checks: &[Check],
    ) -> Result<(), ProbeError> {
        let down = (state != Self::HEALTHY)
            .then(|| state_error(Self::NOUN, Self::state(answer), state, Self::HEALTHY));
        verdict(down, &unmet(checks), checks.len())
    }
    /// The facts of a run that passed.
    fn facts(
        &self,
        answer: &Self::Answer,
        state: &'static str,
        checks: &[Check],
    ) -> Vec<(&'static str, String)>;
}

/// One expectation's verdict, with secret-free text for details and facts.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Check {
    pub(crate) name: String,
    pub(crate) met: bool,
    /// What the resource has, as it may be shown.
    pub(crate) actual: String,
    /// What the config asks for, as it may be shown.
    pub(crate) expected: String,
    /// Appended to the expected value in details (how to see more), or empty.
    pub(crate) hint: &'static str,
}

/// `env:DB_CONNECT_TIMEOUT is "30" (expected "75")`.
pub(crate) fn describe(c: &Check) -> String {
    format!(
        "{} is {} (expected {}{})",
        c.name, c.actual, c.expected, c.hint
    )
}

/// The descriptions of the unmet expectations.
pub(crate) fn unmet(checks: &[Check]) -> Vec<String> {
    checks.iter().filter(|c| !c.met).map(describe).collect()
}

/// A built GCP probe: the spec, the resource URL and the API client (whose clones share the
/// token cache).
#[derive(Debug)]
pub(crate) struct ResourceProbe<R> {
    spec: R,
    url: Url,
    client: Client,
}

/// Checks a spec and prepares its probe.
pub(crate) fn build<R: Resource>(spec: &R) -> Result<ResourceProbe<R>, GcpError> {
    spec.check_fields()?;
    spec.credentials().validate()?;
    for (key, value) in spec.ids() {
        if !valid_id(value) {
            return Err(GcpError::Id(key));
        }
    }
    let base =
        Url::parse(spec.api_base().unwrap_or(R::DEFAULT_API_BASE)).map_err(GcpError::ApiBase)?;
    if !matches!(base.scheme(), "http" | "https") || base.host_str().is_none() {
        return Err(GcpError::ApiBaseNotHttp);
    }
    let joined = format!("{}/{}", base.as_str().trim_end_matches('/'), spec.path());
    Ok(ResourceProbe {
        url: Url::parse(&joined).map_err(GcpError::ResourceUrl)?,
        client: Client::new(spec.credentials())?,
        spec: spec.clone(),
    })
}

/// Resource ids go into the URL path: no '/', '?', '%' or spaces may sneak in.
fn valid_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

impl<R: Resource> Probe for ResourceProbe<R> {
    async fn run(&self, trace: &Trace) -> Result<Outcome, ProbeError> {
        let spec = &self.spec;
        let mut obs = GcpObs::pending(spec.expectation_names());
        trace.observe(Observation::Samples(obs.samples()));
        let answer: R::Answer = self.client.get_json(R::API, &self.url, trace).await?;
        let checks = spec.expectations(&answer, &mut obs);
        obs.expectations = checks
            .iter()
            .map(|c| (c.name.clone(), Some(c.met)))
            .collect();
        let state = classify_state(
            trace,
            &mut obs,
            R::NOUN,
            R::STATE_FIELD,
            R::state(&answer),
            R::STATES,
        );
        trace.observe(Observation::Samples(obs.samples()));
        let state = state?;
        spec.verdict(&answer, state, &checks)?;
        Ok(Outcome {
            facts: spec.facts(&answer, state, &checks),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_escape_the_path() {
        assert!(valid_id("netra-staging"));
        assert!(valid_id("example.com:my-project"));
        for bad in ["", "a/b", "a b", "a?b", "a%2F", &"x".repeat(129)] {
            assert!(!valid_id(bad), "{bad}");
        }
    }
}
