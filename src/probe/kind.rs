//! What a probe kind is to the rest of pathwatch: [`ProbeKind`], implemented by each kind's
//! spec in its own module. The [`ProbeSpec`](super::ProbeSpec) enum and the `kind` label are
//! generated from one table in probe/mod.rs, one line per kind, and every match over the
//! kinds dispatches to this trait, so a new kind is its module plus that line.

use super::{Kind, Outcome, ProbeError, Trace, Transport};
use std::future::Future;
use std::time::Duration;

/// A kind's spec: its label, default timeout, checks, run and on-demand behaviour.
pub trait ProbeKind: Clone + Sized {
    /// The `kind` label (and the config's `kind:` value).
    const KIND: Kind;

    /// Timeout when neither the probe nor `defaults` set one.
    fn default_timeout(&self) -> Duration;

    /// Checks that need more than one field; the message is shown at the probe's location.
    fn check(&self) -> Result<(), String>;

    /// Runs the probe once, recording phases and observations into `trace` as they happen.
    fn run<'a>(
        &'a self,
        trace: &'a Trace,
    ) -> impl Future<Output = Result<Outcome, ProbeError>> + Send + 'a;

    /// The same probe against another target (`/probe?target=`); most kinds take none.
    fn retarget(&self, _target: &str) -> Result<Self, String> {
        Err(format!("a {} probe cannot take a target", Self::KIND))
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
