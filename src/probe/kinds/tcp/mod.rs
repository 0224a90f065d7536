//! `tcp` probe: time to open a TCP connection to host:port (the network path check, e.g.
//! through a VPC connector to a private database address).

use crate::core::addr_text::addr_text;
use crate::core::target::{HostPort, HostPortError};
use crate::probe::common::kind::{Probe, ProbeKind, RetargetError};
use crate::probe::{Kind, Outcome, ProbeError, Trace, connect_first, resolve};
use serde::Deserialize;
use std::time::Duration;

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpSpec {
    /// Host name or IP address.
    pub(crate) host: String,
    /// TCP port.
    pub(crate) port: u16,
}

/// A checked `tcp` spec: nothing to prepare but the address.
#[derive(Debug)]
pub(crate) struct TcpProbe(HostPort);

impl ProbeKind for TcpSpec {
    const KIND: Kind = Kind::Tcp;
    const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    type Probe = TcpProbe;
    /// A blank host or port 0: the address is all a tcp spec has to check.
    type Error = HostPortError;

    fn build(&self) -> Result<TcpProbe, HostPortError> {
        Ok(TcpProbe(HostPort::new(&self.host, self.port)?))
    }

    fn retarget(&self, target: &str) -> Result<Self, RetargetError> {
        let HostPort { host, port } = HostPort::parse(target)?;
        Ok(TcpSpec { host, port })
    }
}

impl Probe for TcpProbe {
    async fn run(&self, trace: &Trace) -> Result<Outcome, ProbeError> {
        let addrs = resolve(&self.0.host, self.0.port, trace).await?;
        // Nothing is sent: no Nagle option, and the peer is the address connected to
        // (two system calls of the twelve a tcp `/probe` makes, strace -c).
        let (_stream, peer) = connect_first(&addrs, trace).await?;
        Ok(Outcome {
            facts: vec![("peer", addr_text(peer))],
        })
    }
}
