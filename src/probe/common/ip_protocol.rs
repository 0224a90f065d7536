//! `ip_protocol`: the address family a probe prefers when a name has both (http,
//! golden_path and icmp share the one setting, spelt as blackbox_exporter's modules spell it).

use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum IpProtocol {
    /// IPv4.
    Ip4,
    /// IPv6.
    Ip6,
}

impl IpProtocol {
    /// True when `a` is of this family.
    pub(crate) fn family(self, a: &SocketAddr) -> bool {
        match self {
            IpProtocol::Ip4 => a.is_ipv4(),
            IpProtocol::Ip6 => a.is_ipv6(),
        }
    }

    /// `IPv4` or `IPv6`, for an error that names the family.
    pub(crate) fn name(self) -> &'static str {
        match self {
            IpProtocol::Ip4 => "IPv4",
            IpProtocol::Ip6 => "IPv6",
        }
    }
}
