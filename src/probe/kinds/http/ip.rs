//! `ip_protocol`: which address family the probe connects over. The preferred family's
//! addresses are tried first; with `ip_protocol_fallback` (the default, as in
//! blackbox_exporter) the others follow, without it they are dropped, and a name with no
//! address of the preferred family fails with `dns`.

pub(crate) use crate::probe::common::ip_protocol::IpProtocol;
use crate::probe::{ProbeError, Reason};
use std::net::SocketAddr;

/// `addrs` in the order they are tried: the preferred family first (each family in the
/// resolver's order), the other only with `fallback`.
pub(super) fn order(
    mut addrs: Vec<SocketAddr>,
    prefer: Option<IpProtocol>,
    fallback: bool,
    host: &str,
) -> Result<Vec<SocketAddr>, ProbeError> {
    let Some(p) = prefer else {
        return Ok(addrs);
    };
    if fallback {
        // Stable: within a family the resolver's order stays.
        addrs.sort_by_key(|a| !p.family(a));
    } else {
        addrs.retain(|a| p.family(a));
    }
    if addrs.is_empty() {
        return Err(ProbeError::new(
            Reason::Dns,
            format!(
                "{host:?} has no {} address (ip_protocol_fallback is off)",
                p.name()
            ),
        ));
    }
    Ok(addrs)
}

/// A reqwest resolver that orders (or keeps only) the addresses of the preferred family, as
/// [`order`] does for the connections pathwatch opens itself.
#[derive(Debug)]
pub(super) struct Ordered {
    pub prefer: IpProtocol,
    pub fallback: bool,
}

impl reqwest::dns::Resolve for Ordered {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let (prefer, fallback) = (self.prefer, self.fallback);
        Box::pin(async move {
            let host = name.as_str();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
            let addrs = order(addrs, Some(prefer), fallback, host)
                .map_err(|e| std::io::Error::other(e.detail))?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preferred_family_goes_first_or_alone() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let mixed = vec![
            a("[::1]:80"),
            a("127.0.0.1:80"),
            a("[::2]:80"),
            a("127.0.0.2:80"),
        ];
        let got = order(mixed.clone(), Some(IpProtocol::Ip4), true, "h").unwrap();
        assert_eq!(
            got,
            [
                a("127.0.0.1:80"),
                a("127.0.0.2:80"),
                a("[::1]:80"),
                a("[::2]:80")
            ]
        );
        let got = order(mixed.clone(), Some(IpProtocol::Ip6), false, "h").unwrap();
        assert_eq!(got, [a("[::1]:80"), a("[::2]:80")]);
        assert_eq!(order(mixed.clone(), None, false, "h").unwrap(), mixed);
        let e = order(vec![a("127.0.0.1:80")], Some(IpProtocol::Ip6), false, "h").unwrap_err();
        assert_eq!(e.reason, Reason::Dns);
        assert_eq!(
            order(vec![a("127.0.0.1:80")], Some(IpProtocol::Ip6), true, "h").unwrap(),
            [a("127.0.0.1:80")]
        );
    }
}
