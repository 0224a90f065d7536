//! `tcp` probe: time to open a TCP connection to host:port (the network path check, e.g.
//! through a VPC connector to a private database address).

use super::{Outcome, ProbeError, Trace, connect_tcp, resolve};
use serde::Deserialize;
use std::time::Duration;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TcpSpec {
    /// Host name or IP address.
    pub host: String,
    pub port: u16,
}

impl TcpSpec {
    pub fn validate(&self) -> Result<(), String> {
        if self.host.trim().is_empty() {
            return Err("\"host\" must not be empty".into());
        }
        if self.port == 0 {
            return Err("\"port\" must be between 1 and 65535".into());
        }
        Ok(())
    }
}

pub async fn probe(spec: &TcpSpec, trace: &Trace) -> Result<Outcome, ProbeError> {
    let addrs = resolve(&spec.host, spec.port, trace).await?;
    let stream = connect_tcp(&addrs, trace).await?;
    let peer = stream
        .peer_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    Ok(Outcome {
        facts: vec![("peer", peer)],
    })
}

impl crate::probe::ProbeKind for TcpSpec {
    const KIND: crate::probe::Kind = crate::probe::Kind::Tcp;

    fn default_timeout(&self) -> std::time::Duration {
        DEFAULT_TIMEOUT
    }

    fn check(&self) -> Result<(), String> {
        self.validate()
    }

    fn run<'a>(
        &'a self,
        trace: &'a crate::probe::Trace,
    ) -> impl std::future::Future<Output = Result<crate::probe::Outcome, crate::probe::ProbeError>>
    + Send
    + 'a {
        probe(self, trace)
    }

    fn retarget(&self, target: &str) -> Result<Self, String> {
        let (host, port) = crate::core::target::host_port(target)?;
        Ok(TcpSpec { host, port })
    }
}
