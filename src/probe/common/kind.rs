//! What a probe kind is to the rest of pathwatch: [`ProbeKind`], implemented by each kind's
//! spec in its own module, and [`Probe`], implemented by what a spec builds. The
//! [`ProbeSpec`](crate::probe::ProbeSpec) and [`BuiltProbe`](crate::probe::BuiltProbe) enums and the `kind`
//! label are generated from one table in probe/mod.rs, one line per kind, and every match
//! over the kinds dispatches to these traits, so a new kind is its module plus that line.
//!
//! Parse, then build: a spec is plain data (what the config says); [`ProbeKind::build`] turns
//! it once, when the config loads, into the ready probe (parsed URLs, TLS configs, clients,
//! regexes, token caches, state kept across runs), or into a typed error shown at the
//! probe's config location.

use crate::probe::{Kind, Outcome, Phase, ProbeError, Trace};
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
    /// ([`crate::probe::Observation::Samples`]): the exporter registers and writes each (and
    /// `/probe` the [`KindFamily::on_demand`] ones), so a kind needs no metrics code of its own.
    const FAMILIES: &'static [KindFamily] = &[];
    /// What a `max_seconds` criterion bounds: the run's duration unless the kind names a
    /// family of [`Self::FAMILIES`].
    const MEASURED: Measured = Measured::Duration;
    /// The family of [`Self::FAMILIES`] whose value a `connections_below` criterion bounds
    /// (e.g. a database's share of connection slots in use).
    const RATIO: Option<&'static str> = None;
    /// The families of [`Self::FAMILIES`] an `all_events` criterion compares: (events
    /// delivered, events expected).
    const EVENTS: Option<(&'static str, &'static str)> = None;

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
}

/// What a `max_seconds` criterion bounds ([`ProbeKind::MEASURED`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measured {
    /// The run's duration, less a database's read of its connections
    /// ([`crate::probe::RunResult::session_seconds`]).
    Duration,
    /// The value the run reported of this family (e.g. login to the final event).
    Value(&'static str),
    /// The last value any run reported of this family, while the run passes (e.g. the
    /// startup time, measured once per start).
    LastValue(&'static str),
}

/// Buckets for durations bounded by probe timeouts: they reach past the largest default
/// timeout (75 s) so that hangs land in a bucket of their own instead of `+Inf`.
pub(crate) const DURATION_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 75.0, 120.0,
];

/// A built probe: one run, recording phases and observations into `trace` as they happen.
/// Dispatch is always over the concrete types of the registry's enum, which is why an
/// `async fn` is enough here (the runner's future stays `Send` where each kind's is).
#[allow(async_fn_in_trait)]
pub(crate) trait Probe: std::fmt::Debug + Send + Sync + 'static {
    async fn run(&self, trace: &Trace) -> Result<Outcome, ProbeError>;
}

/// A metric family a kind reports: `pathwatch_<name>[_<unit>]{probe, <labels>...}` (a
/// counter's samples end in `_total`). The exporter registers one family per declaration
/// (metrics/kinds/mod.rs) and writes into it the [`Sample`]s of that name each run reports; nothing
/// outside the kind's module names the family. Kinds that share a family (http and startup,
/// postgres and redis) declare the same constant.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KindFamily {
    /// The family's name without the `pathwatch_` prefix, the unit suffix and `_total`.
    pub(crate) name: &'static str,
    pub(crate) help: &'static str,
    /// The unit suffix (`seconds`, `bytes`), if the value has one.
    pub(crate) unit: Option<&'static str>,
    /// The labels after `probe`, in order. Their values must be bounded: configured names
    /// or closed sets, never text a target sent.
    pub labels: &'static [&'static str],
    pub family_type: FamilyType,
    /// What a run that reports no sample of a series does to it.
    pub unreported: Unreported,
    /// Whether a `/probe` answer writes it: a gauge that is a fact of one run (not a total
    /// kept across runs).
    pub(crate) on_demand: bool,
}

/// What becomes of a family's series when a run reports no sample of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unreported {
    /// It keeps its last value (a total, or the last value measured).
    Kept,
    /// It is removed: the value is the last run's or none (e.g. a certificate's expiry).
    Removed,
    /// It is removed when the run reported samples of other gauges or counters of its kind
    /// (the report is whole: what it leaves out is gone), kept when the run reported none
    /// (cut before it could, or it did not look), e.g. a database's sessions by state.
    RemovedWhenOthersReported,
    /// It is 0: each series of the probe the run did not report, and a family without
    /// labels of its own is created at 0 (e.g. the HTTP status when no answer arrived);
    /// `/probe` writes the 0 too.
    Zero,
}

/// How the exporter writes a family's samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FamilyType {
    /// A gauge set to the run's value.
    Gauge,
    /// A gauge of whole numbers (written without a decimal point).
    IntGauge,
    /// A counter raised to the total the run reports since its probe was built (counters
    /// never go down): a run cut at its timeout is caught up by the next run's total.
    Counter,
    /// A counter the run's value is added to.
    CounterIncrement,
    /// A counter of the kind's failed runs by `step` (the name `steps` gives the phase the
    /// run failed in, else `other`) and `reason`: the runner knows both, also of a run cut
    /// at its timeout, so the run reports no sample of it.
    Failures {
        steps: &'static [(Phase, &'static str)],
        other: &'static str,
    },
    /// A histogram over `buckets` (finite, ascending), observed once per run that passed or
    /// was cut at its timeout (see [`Observed`]), with the run's trace id as the exemplar
    /// of its bucket. A probe's series is created empty by an initial sample.
    Histogram {
        buckets: &'static [f64],
        observed: Observed,
    },
}

/// What a histogram observes of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observed {
    /// A passing run's samples of it (none: not observed); a run cut at its timeout is
    /// observed at its duration.
    Sample,
    /// The run's duration less its [`crate::probe::Phase::Connections`] read
    /// ([`crate::probe::RunResult::session_seconds`]), for a run that passed or was cut at its
    /// timeout: the run reports a sample of it ([`KindFamily::timed`]) at its start, whose
    /// labels are the series' (the sample's value is not used).
    RunSeconds,
}

impl KindFamily {
    const fn new(name: &'static str, help: &'static str, family_type: FamilyType) -> Self {
        KindFamily {
            name,
            help,
            unit: None,
            labels: &[],
            family_type,
            unreported: Unreported::Kept,
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

    /// See [`FamilyType::Failures`] (labels `step`, `reason`).
    pub const fn failures(
        name: &'static str,
        help: &'static str,
        steps: &'static [(Phase, &'static str)],
        other: &'static str,
    ) -> Self {
        Self::new(name, help, FamilyType::Failures { steps, other }).labels(&["step", "reason"])
    }

    /// See [`FamilyType::Histogram`].
    pub const fn histogram(
        name: &'static str,
        help: &'static str,
        buckets: &'static [f64],
        observed: Observed,
    ) -> Self {
        Self::new(name, help, FamilyType::Histogram { buckets, observed })
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

    /// See [`Unreported::Removed`].
    pub const fn removed_when_unreported(self) -> Self {
        KindFamily {
            unreported: Unreported::Removed,
            ..self
        }
    }

    /// See [`Unreported::RemovedWhenOthersReported`].
    pub const fn removed_when_others_reported(self) -> Self {
        KindFamily {
            unreported: Unreported::RemovedWhenOthersReported,
            ..self
        }
    }

    /// See [`Unreported::Zero`].
    pub const fn zero_when_unreported(self) -> Self {
        KindFamily {
            unreported: Unreported::Zero,
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

    /// The sample that says a run is timed by this [`Observed::RunSeconds`] histogram, in
    /// the series of `labels`.
    pub fn timed(&self, labels: Vec<String>) -> Sample {
        self.sample_with(labels, 0.0)
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
