//! `tcp` probe: time to open a TCP connection to host:port (the network path check, e.g.
//! through a VPC connector to a private database address).

use super::kind::{Probe, ProbeKind, RetargetError};
use super::{Kind, Outcome, ProbeError, Trace, connect_tcp, resolve};
use serde::Deserialize;
use std::time::Duration;

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpSpec {
    /// Host name or IP address.
    pub host: String,
    pub port: u16,
}

/// Why a `tcp` spec does not build.
#[derive(Debug, thiserror::Error)]
pub enum TcpError {
    #[error("\"host\" must not be empty")]
    EmptyHost,
    #[error("\"port\" must be between 1 and 65535")]
    Port,
}

/// A checked `tcp` spec: nothing to prepare but the address.
#[derive(Debug)]
pub struct TcpProbe(TcpSpec);

impl ProbeKind for TcpSpec {
    const KIND: Kind = Kind::Tcp;
    const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    type Probe = TcpProbe;
    type Error = TcpError;

    fn build(&self) -> Result<TcpProbe, TcpError> {
        if self.host.trim().is_empty() {
            return Err(TcpError::EmptyHost);
        }
        if self.port == 0 {
            return Err(TcpError::Port);
        }
        Ok(TcpProbe(self.clone()))
    }

    fn retarget(&self, target: &str) -> Result<Self, RetargetError> {
        let (host, port) = crate::core::target::host_port(target)?;
        Ok(TcpSpec { host, port })
    }
}

impl Probe for TcpProbe {
    async fn run(&self, trace: &Trace) -> Result<Outcome, ProbeError> {
        let addrs = resolve(&self.0.host, self.0.port, trace).await?;
        let stream = connect_tcp(&addrs, trace).await?;
        let peer = stream
            .peer_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        Ok(Outcome {
            facts: vec![("peer", peer)],
        })
    }
}
