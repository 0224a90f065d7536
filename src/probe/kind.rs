//! What a probe kind is to the rest of pathwatch: [`ProbeKind`], implemented by each kind's
//! spec in its own module, and [`Probe`], implemented by what a spec builds. The
//! [`ProbeSpec`](super::ProbeSpec) and [`BuiltProbe`](super::BuiltProbe) enums and the `kind`
//! label are generated from one table in probe/mod.rs, one line per kind, and every match
//! over the kinds dispatches to these traits, so a new kind is its module plus that line.
//!
//! Parse, then build: a spec is plain data (what the config says); [`ProbeKind::build`] turns
//! it once, when the config loads, into the ready probe (parsed URLs, TLS configs, clients,
//! regexes, token caches, state kept across runs), or into a typed error shown at the
//! probe's config location.

use super::{Kind, Outcome, ProbeError, Trace, Transport};
use std::time::Duration;

/// A kind's spec: its label, default timeout, build and on-demand behaviour.
pub trait ProbeKind: Clone + Sized {
    /// The `kind` label (and the config's `kind:` value).
    const KIND: Kind;
    /// Timeout when neither the probe nor `defaults` set one.
    const DEFAULT_TIMEOUT: Duration;
    /// The ready probe this spec builds.
    type Probe: Probe;
    /// Why a spec does not build (its Display is the config error's text).
    type Error: std::error::Error + Send + Sync + 'static;
    /// The gauges this kind's runs report ([`super::Observation::Gauges`]); metrics
    /// registers one family for each, so such a kind needs no metrics module of its own.
    const GAUGES: &'static [KindGauge] = &[];

    /// Checks what needs more than one field and prepares everything a run needs.
    fn build(&self) -> Result<Self::Probe, Self::Error>;

    /// Builds a retargeted copy of a module (on-demand probing), reusing what does not
    /// depend on the target from `base`, the module's own built probe (TLS configs,
    /// regexes), so that a request does not rebuild them.
    fn build_like(&self, _base: &Self::Probe) -> Result<Self::Probe, Self::Error> {
        self.build()
    }

    /// The same probe against another target (`/probe?target=`); most kinds take none.
    fn retarget(&self, _target: &str) -> Result<Self, RetargetError> {
        Err(RetargetError::NoTarget(Self::KIND))
    }

    /// The same probe without the credentials it would send (for an on-demand target that
    /// is not the module's own); kinds without credentials stay as they are.
    fn without_credentials(&self) -> Self {
        self.clone()
    }

    /// How a database probe reaches its server (`pathwatch_db_connect_seconds`); `None`
    /// for the others.
    fn db_transport(&self) -> Option<Transport> {
        None
    }
}

/// A built probe: one run, recording phases and observations into `trace` as they happen.
/// Dispatch is always over the concrete types of the registry's enum, which is why an
/// `async fn` is enough here (the runner's future stays `Send` where each kind's is).
#[allow(async_fn_in_trait)]
pub trait Probe: std::fmt::Debug + Send + Sync + 'static {
    async fn run(&self, trace: &Trace) -> Result<Outcome, ProbeError>;
}

/// A gauge family a kind declares: `pathwatch_<name>_<unit>{probe}`, set from the value of
/// that name its last run reported, absent when the run reported none (a failed run).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindGauge {
    /// The family's name without the `pathwatch_` prefix and the unit suffix.
    pub name: &'static str,
    pub help: &'static str,
    /// The unit suffix (`seconds`, `bytes`), if the value has one.
    pub unit: Option<&'static str>,
}

/// Why an on-demand target does not fit a probe.
#[derive(Debug, thiserror::Error)]
pub enum RetargetError {
    #[error("a {0} probe cannot take a target")]
    NoTarget(Kind),
    #[error(transparent)]
    Target(#[from] crate::core::target::TargetError),
}
