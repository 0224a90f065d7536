//! `tcp` probe: time to open a TCP connection to host:port (the network path check, e.g.
//! through a VPC connector to a private database address).

use super::kind::{Probe, ProbeKind, RetargetError};
use super::{Kind, Outcome, ProbeError, Trace, connect_first, resolve};
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

/// Why a `tcp` spec does not build.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TcpError {
    #[error("\"host\" must not be empty")]
    EmptyHost,
    #[error("\"port\" must be between 1 and 65535")]
    Port,
}

/// A checked `tcp` spec: nothing to prepare but the address.
#[derive(Debug)]
pub(crate) struct TcpProbe(TcpSpec);

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
        // Nothing is sent: no Nagle option, and the peer is the address connected to
        // (two system calls of the twelve a tcp `/probe` makes, strace -c).
        let (_stream, peer) = connect_first(&addrs, trace).await?;
        let peer = addr_text(peer);
        Ok(Outcome {
            facts: vec![("peer", peer)],
        })
    }
}

/// `a` as its `Display` writes it. IPv4 through itoa: formatting the peer was 3.5 % of the
/// instructions of a tcp `/probe` (callgrind, BENCHMARKS.md), for a fact only the status
/// page shows.
fn addr_text(a: std::net::SocketAddr) -> String {
    let std::net::SocketAddr::V4(v4) = a else {
        return a.to_string();
    };
    let mut text = String::with_capacity(21);
    let mut n = itoa::Buffer::new();
    for (i, octet) in v4.ip().octets().into_iter().enumerate() {
        if i > 0 {
            text.push('.');
        }
        text.push_str(n.format(octet));
    }
    text.push(':');
    text.push_str(n.format(v4.port()));
    text
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses_read_as_display_writes_them() {
        for a in [
            "127.0.0.1:5432",
            "0.0.0.0:1",
            "255.255.255.255:65535",
            "[::1]:80",
            "[fe80::1%2]:443",
        ] {
            let a: std::net::SocketAddr = a.parse().expect("address");
            assert_eq!(super::addr_text(a), a.to_string());
        }
    }
}
