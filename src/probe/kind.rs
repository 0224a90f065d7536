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
pub(crate) trait ProbeKind: Clone + Sized {
    /// The `kind` label (and the config's `kind:` value).
    const KIND: Kind;
    /// Timeout when neither the probe nor `defaults` set one.
    const DEFAULT_TIMEOUT: Duration;
    /// The ready probe this spec builds.
    type Probe: Probe;
    /// Why a spec does not build (its Display is the config error's text).
    type Error: std::error::Error + Send + Sync + 'static;
    /// The metric families this kind's runs report, as [`Sample`]s
    /// ([`super::Observation::Samples`]): the exporter registers and writes each (and
    /// `/probe` the [`KindFamily::on_demand`] ones), so a kind needs no metrics code of its own.
    const FAMILIES: &'static [KindFamily] = &[];
    /// The family of [`Self::FAMILIES`] whose last reported value a `max_seconds` criterion
    /// bounds (e.g. the measured startup time), instead of the run's duration.
    const MEASURED: Option<&'static str> = None;

    /// Checks what needs more than one field and prepares everything a run needs.
    fn build(&self) -> Result<Self::Probe, Self::Error>;

    /// Builds a retargeted copy of a module (on-demand probing), reusing what does not
    /// depend on the target from `base`, the module's own built probe (TLS configs,
    /// regexes), so that a request does not rebuild them.
    fn build_like(&self, _base: &Self::Probe) -> Result<Self::Probe, Self::Error> {
        self.build()
    }

    /// Whether an on-demand target is a host without a port (`icmp`), which the allowlist
    /// judges as the host alone; otherwise `host:port`, a socket directory or a URL.
    const PORTLESS_TARGET: bool = false;

    /// The same probe against another target (`/probe?target=`); most kinds take none.
    fn retarget(&self, _target: &str) -> Result<Self, RetargetError> {
        Err(RetargetError::NoTarget(Self::KIND))
    }

    /// The same probe without the credentials it would send (for an on-demand target that
    /// is not the module's own); kinds without credentials stay as they are.
    fn without_credentials(&self) -> Self {
        self.clone()
    }

    /// The series a probe of this spec has before its first run, so that `rate()` and
    /// dashboards see zeros: the exporter writes them at each config load as a run's samples
    /// (a gauge is set, a counter created).
    fn initial_samples(&self) -> Vec<Sample> {
        Vec::new()
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
pub(crate) trait Probe: std::fmt::Debug + Send + Sync + 'static {
    async fn run(&self, trace: &Trace) -> Result<Outcome, ProbeError>;
}

/// A metric family a kind reports: `pathwatch_<name>[_<unit>]{probe, <labels>...}` (a
/// counter's samples end in `_total`). The exporter registers one family per declaration
/// (metrics/kinds.rs) and writes into it the [`Sample`]s of that name each run reports; nothing
/// outside the kind's module names the family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KindFamily {
    /// The family's name without the `pathwatch_` prefix, the unit suffix and `_total`.
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
    /// The unit suffix (`seconds`, `bytes`), if the value has one.
    pub(crate) unit: Option<&'static str>,
    /// The labels after `probe`, in order. Their values must be bounded: configured names
    /// or closed sets, never text a target sent.
    pub labels: &'static [&'static str],
    pub(crate) family_type: FamilyType,
    /// Whether a run that reports no sample of a series removes it (the value is the last
    /// run's or none, e.g. a certificate's expiry) instead of keeping its last value.
    pub(crate) removed_when_unreported: bool,
    /// Whether a `/probe` answer writes it: a gauge that is a fact of one run (not a total
    /// kept across runs).
    pub(crate) on_demand: bool,
}

/// How the exporter writes a family's samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FamilyType {
    /// A gauge set to the run's value.
    Gauge,
    /// A gauge of whole numbers (written without a decimal point).
    IntGauge,
    /// A counter raised to the total the run reports since its probe was built (counters
    /// never go down): a run cut at its timeout is caught up by the next run's total.
    Counter,
    /// A counter the run's value is added to.
    CounterIncrement,
}

impl KindFamily {
    const fn new(name: &'static str, help: &'static str, family_type: FamilyType) -> Self {
        KindFamily {
            name,
            help,
            unit: None,
            labels: &[],
            family_type,
            removed_when_unreported: false,
            on_demand: false,
        }
    }

    pub(crate) const fn gauge(name: &'static str, help: &'static str) -> Self {
        Self::new(name, help, FamilyType::Gauge)
    }

    pub(crate) const fn int_gauge(name: &'static str, help: &'static str) -> Self {
        Self::new(name, help, FamilyType::IntGauge)
    }

    /// See [`FamilyType::Counter`].
    pub(crate) const fn counter(name: &'static str, help: &'static str) -> Self {
        Self::new(name, help, FamilyType::Counter)
    }

    /// See [`FamilyType::CounterIncrement`].
    pub(crate) const fn counter_increment(name: &'static str, help: &'static str) -> Self {
        Self::new(name, help, FamilyType::CounterIncrement)
    }

    pub(crate) const fn unit(self, unit: &'static str) -> Self {
        KindFamily {
            unit: Some(unit),
            ..self
        }
    }

    pub(crate) const fn labels(self, labels: &'static [&'static str]) -> Self {
        KindFamily { labels, ..self }
    }

    /// See [`KindFamily::removed_when_unreported`].
    pub(crate) const fn removed_when_unreported(self) -> Self {
        KindFamily {
            removed_when_unreported: true,
            ..self
        }
    }

    /// See [`KindFamily::on_demand`].
    pub(crate) const fn on_demand(self) -> Self {
        KindFamily {
            on_demand: true,
            ..self
        }
    }

    /// A value of this family for a probe (a family without labels of its own).
    pub(crate) fn sample(&self, value: f64) -> Sample {
        Sample {
            family: self.name,
            labels: Vec::new(),
            value,
        }
    }

    /// A value of this family for a probe and the values of [`KindFamily::labels`].
    pub fn sample_with(&self, labels: Vec<String>, value: f64) -> Sample {
        Sample {
            family: self.name,
            labels,
            value,
        }
    }
}

/// One value a run reports of a family its kind declares ([`KindFamily`]): the family's
/// name, the values of its labels after `probe` (in [`KindFamily::labels`] order) and the
/// value.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    pub(crate) family: &'static str,
    pub(crate) labels: Vec<String>,
    pub(crate) value: f64,
}

/// Why an on-demand target does not fit a probe.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RetargetError {
    #[error("a {0} probe cannot take a target")]
    NoTarget(Kind),
    #[error(transparent)]
    Target(#[from] crate::core::target::HostPortParseError),
}
