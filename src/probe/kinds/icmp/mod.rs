//! `icmp` probe: one ICMP echo request to a host and its reply (ping), IPv4 or IPv6. The round
//! trip is the `request` phase; the reply's TTL (IPv6: hop limit) is exported as
//! `pathwatch_icmp_reply_ttl{probe}`, which tells how many hops the reply crossed when the
//! sender's initial TTL is known (64 on Linux, 128 on Windows, 255 on network gear).
//!
//! Sockets: an unprivileged ping socket (`SOCK_DGRAM`/`IPPROTO_ICMP`, the kernel sets the
//! echo identifier and filters replies) when `net.ipv4.ping_group_range` includes the
//! process's group, else a raw socket, which needs CAP_NET_RAW; neither allowed fails with
//! `permission_denied` and a detail naming both. The packets are built and parsed here
//! ([`packet`]); nix provides the sockets and the control messages carrying the TTL.

mod packet;

use crate::probe::common::ip_protocol::IpProtocol;
use crate::probe::common::kind::{KindFamily, Probe, ProbeKind, RetargetError};
use crate::probe::{Kind, Observation, Outcome, Phase, ProbeError, Reason, Trace, resolve};
use nix::errno::Errno;
use nix::sys::socket::{
    self, AddressFamily, ControlMessageOwned, MsgFlags, SockFlag, SockProtocol, SockType,
    SockaddrIn, SockaddrIn6, sockopt,
};
use serde::Deserialize;
use std::io::IoSliceMut;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

/// The gauge of the reply's TTL (hop limit). Absent after a run without a reply; a
/// `/probe` answer has it too.
const TTL: KindFamily = KindFamily::gauge(
    "icmp_reply_ttl",
    "TTL (IPv6: hop limit) of the last echo reply, as it arrived",
)
.removed_when_unreported()
.on_demand();

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IcmpSpec {
    /// Host name or IP address.
    pub(crate) host: String,
    /// The address family preferred when the host has both (`ip4` or `ip6`); the other is
    /// used when it has none of this one. Default: the first address the resolver gives.
    pub(crate) ip_protocol: Option<IpProtocol>,
}

/// Why an `icmp` spec does not build.
#[derive(Debug, thiserror::Error)]
pub(crate) enum IcmpError {
    #[error("\"host\" must not be empty")]
    EmptyHost,
}

/// A built `icmp` probe.
#[derive(Debug)]
pub(crate) struct IcmpProbe {
    spec: IcmpSpec,
}

impl ProbeKind for IcmpSpec {
    const KIND: Kind = Kind::Icmp;
    const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);
    const FAMILIES: &'static [KindFamily] = &[TTL];
    type Probe = IcmpProbe;
    type Error = IcmpError;

    fn build(&self) -> Result<IcmpProbe, IcmpError> {
        if self.host.trim().is_empty() {
            return Err(IcmpError::EmptyHost);
        }
        Ok(IcmpProbe { spec: self.clone() })
    }

    /// `/probe?target=` names a host: a name or an address, without a port.
    const PORTLESS_TARGET: bool = true;

    /// Another host: a name or an address, or `host:port` (`[::1]:1`) as older `/probe`
    /// requests wrote it; ICMP has no ports, the port is ignored.
    fn retarget(&self, target: &str) -> Result<Self, RetargetError> {
        let with_port = target.starts_with('[') || target.matches(':').count() == 1;
        let host = match crate::core::target::HostPort::parse(target) {
            Ok(a) if with_port => a.host,
            _ => target
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        };
        if host.is_empty() {
            return Err(crate::core::target::HostPortParseError::NoHost(target.to_string()).into());
        }
        Ok(IcmpSpec {
            host,
            ..self.clone()
        })
    }
}

/// The socket a run got.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SocketKind {
    /// `SOCK_DGRAM` ping socket: no privilege, the kernel owns the identifier.
    Ping,
    /// `SOCK_RAW`: CAP_NET_RAW; IPv4 replies arrive with their IP header.
    Raw,
}

/// Sequence numbers (and, for raw sockets, identifiers) of this process's echo requests.
static SEQUENCE: AtomicU16 = AtomicU16::new(1);

impl Probe for IcmpProbe {
    async fn run(&self, trace: &Trace) -> Result<Outcome, ProbeError> {
        let addrs = resolve(&self.spec.host, 0, trace).await?;
        let ip = pick(&addrs, self.spec.ip_protocol)
            .ok_or_else(|| ProbeError::new(Reason::Dns, "no address to ping"))?;
        let (fd, kind) = open(ip)?;
        let v6 = ip.is_ipv6();
        // The reply's TTL arrives as a control message (a raw IPv4 socket reads it from the
        // IP header instead); a kernel without the option only loses the gauge.
        let _ = if v6 {
            socket::setsockopt(&fd, sockopt::Ipv6RecvHopLimit, &true)
        } else {
            socket::setsockopt(&fd, sockopt::Ipv4RecvTtl, &true)
        };
        let connected = match ip {
            IpAddr::V4(a) => socket::connect(
                fd.as_raw_fd(),
                &SockaddrIn::from(std::net::SocketAddrV4::new(a, 0)),
            ),
            IpAddr::V6(a) => socket::connect(
                fd.as_raw_fd(),
                &SockaddrIn6::from(std::net::SocketAddrV6::new(a, 0, 0, 0)),
            ),
        };
        connected.map_err(|e| io_error(e, &format!("connecting an ICMP socket to {ip}")))?;
        // tokio's UDP socket is the safe way to put a datagram socket in the reactor: it
        // only sends, receives and waits, which an ICMP socket does the same way.
        let fd = tokio::net::UdpSocket::from_std(std::net::UdpSocket::from(fd))
            .map_err(|e| ProbeError::new(Reason::Io, format!("registering the socket: {e}")))?;
        let seq = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        // A ping socket's identifier is the kernel's; a raw socket's is ours, unique enough
        // with the process id to tell our replies from another pinger's.
        let id = (std::process::id() as u16) ^ seq.rotate_left(8);
        let request = packet::echo_request(v6, id, seq);
        let (ttl, from) = trace
            .time(Phase::Request, async {
                send(&fd, &request).await?;
                receive(&fd, v6, kind, id, seq, &request).await
            })
            .await?;
        if let Some(ttl) = ttl {
            trace.observe(Observation::Samples(vec![TTL.sample(f64::from(ttl))]));
        }
        let mut facts = vec![
            ("address", from.to_string()),
            (
                "socket",
                match kind {
                    SocketKind::Ping => "ping",
                    SocketKind::Raw => "raw",
                }
                .to_string(),
            ),
        ];
        if let Some(ttl) = ttl {
            facts.push(("reply_ttl", ttl.to_string()));
        }
        Ok(Outcome { facts })
    }
}

/// The address to ping: the first of the preferred family, else the first of any.
fn pick(addrs: &[SocketAddr], prefer: Option<IpProtocol>) -> Option<IpAddr> {
    let preferred = addrs.iter().find(|a| prefer.is_none_or(|p| p.family(a)));
    preferred.or(addrs.first()).map(std::net::SocketAddr::ip)
}

/// A ping socket if this process may open one, else a raw socket.
fn open(ip: IpAddr) -> Result<(OwnedFd, SocketKind), ProbeError> {
    let (family, protocol) = match ip {
        IpAddr::V4(_) => (AddressFamily::Inet, SockProtocol::Icmp),
        IpAddr::V6(_) => (AddressFamily::Inet6, SockProtocol::IcmpV6),
    };
    let flags = SockFlag::SOCK_NONBLOCK | SockFlag::SOCK_CLOEXEC;
    let ping = match socket::socket(family, SockType::Datagram, flags, protocol) {
        Ok(fd) => return Ok((fd, SocketKind::Ping)),
        Err(e) => e,
    };
    match socket::socket(family, SockType::Raw, flags, protocol) {
        Ok(fd) => Ok((fd, SocketKind::Raw)),
        Err(raw) if denied(ping) && denied(raw) => Err(ProbeError::new(
            Reason::PermissionDenied,
            permission_text(
                &read_ping_group_range(),
                rustix::process::getegid().as_raw(),
            ),
        )),
        // Not a matter of permission (no IPv6, out of descriptors): the ping socket's error
        // unless only the raw socket was refused.
        Err(raw) => Err(io_error(
            if denied(ping) { raw } else { ping },
            "opening an ICMP socket",
        )),
    }
}

fn denied(e: Errno) -> bool {
    matches!(e, Errno::EACCES | Errno::EPERM)
}

/// What to change when neither socket may be opened, with the values that refused it.
fn permission_text(range: &str, gid: u32) -> String {
    format!(
        "ICMP needs a ping socket or a raw socket, and neither is allowed: a ping socket needs \
         this process's group ({gid}) within net.ipv4.ping_group_range (now {range:?}), a raw \
         socket needs CAP_NET_RAW"
    )
}

fn read_ping_group_range() -> String {
    std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unreadable".into())
}

fn io_error(e: Errno, what: &str) -> ProbeError {
    let io = std::io::Error::from(e);
    ProbeError::new(crate::probe::io_reason(&io), format!("{what}: {io}"))
}

async fn send(fd: &tokio::net::UdpSocket, request: &[u8]) -> Result<(), ProbeError> {
    fd.send(request).await.map(|_| ()).map_err(|e| {
        ProbeError::new(
            crate::probe::io_reason(&e),
            format!("sending the echo request: {e}"),
        )
    })
}

/// Reads until our echo reply arrives (a raw socket also sees other ICMP traffic from the
/// host, our own request on loopback among it); returns its TTL and sender.
async fn receive(
    fd: &tokio::net::UdpSocket,
    v6: bool,
    kind: SocketKind,
    id: u16,
    seq: u16,
    request: &[u8],
) -> Result<(Option<u8>, IpAddr), ProbeError> {
    let mut buf = [0u8; 1500];
    loop {
        let got = fd
            .async_io(tokio::io::Interest::READABLE, || recv(fd.as_fd(), &mut buf))
            .await;
        let (len, cmsg_ttl, from) = match got {
            // A ping socket reports an ICMP error for its request (unreachable) this way.
            Err(e) => {
                return Err(ProbeError::new(
                    crate::probe::io_reason(&e),
                    format!("waiting for the echo reply: {e}"),
                ));
            }
            Ok(r) => r,
        };
        let Some(reply) = packet::parse(&buf[..len], v6, kind == SocketKind::Raw) else {
            continue;
        };
        if !reply.answers(v6, kind == SocketKind::Ping, id, seq, request) {
            continue;
        }
        return Ok((reply.ttl.or(cmsg_ttl), from.unwrap_or(reply_from(v6))));
    }
}

/// Placeholder sender when the kernel reported none (a connected socket always has one).
fn reply_from(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    }
}

type Received = (usize, Option<u8>, Option<IpAddr>);

fn recv(fd: std::os::fd::BorrowedFd<'_>, buf: &mut [u8]) -> std::io::Result<Received> {
    let mut iov = [IoSliceMut::new(buf)];
    let mut cmsg = nix::cmsg_space!(i32, i32);
    let msg = socket::recvmsg::<socket::SockaddrStorage>(
        fd.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg),
        MsgFlags::empty(),
    )
    .map_err(std::io::Error::from)?;
    let ttl = msg.cmsgs().ok().and_then(|mut c| {
        c.find_map(|m| match m {
            ControlMessageOwned::Ipv4Ttl(t) | ControlMessageOwned::Ipv6HopLimit(t) => {
                u8::try_from(t).ok()
            }
            _ => None,
        })
    });
    let from = msg.address.and_then(|a| {
        a.as_sockaddr_in()
            .map(|s| IpAddr::V4(s.ip()))
            .or_else(|| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())))
    });
    Ok((msg.bytes, ttl, from))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_preferred_family_wins_and_the_other_is_the_fallback() {
        let v4: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let v6: SocketAddr = "[::1]:0".parse().unwrap();
        assert_eq!(pick(&[v4, v6], Some(IpProtocol::Ip6)), Some(v6.ip()));
        assert_eq!(pick(&[v4, v6], Some(IpProtocol::Ip4)), Some(v4.ip()));
        assert_eq!(pick(&[v6], Some(IpProtocol::Ip4)), Some(v6.ip()));
        assert_eq!(pick(&[v6, v4], None), Some(v6.ip()));
        assert_eq!(pick(&[], None), None);
    }

    #[test]
    fn the_permission_error_names_both_ways_out() {
        let text = permission_text("1 0", 1000);
        assert_eq!(
            text,
            "ICMP needs a ping socket or a raw socket, and neither is allowed: a ping socket \
             needs this process's group (1000) within net.ipv4.ping_group_range (now \"1 0\"), \
             a raw socket needs CAP_NET_RAW"
        );
        assert!(denied(Errno::EACCES) && denied(Errno::EPERM) && !denied(Errno::EAFNOSUPPORT));
    }

    #[test]
    fn targets_are_hosts_without_ports() {
        let module = IcmpSpec {
            host: "10.0.0.1".into(),
            ip_protocol: Some(IpProtocol::Ip6),
        };
        let t = module.retarget("[::1]").unwrap();
        assert_eq!(
            (t.host.as_str(), t.ip_protocol),
            ("::1", Some(IpProtocol::Ip6))
        );
        for (target, host) in [
            ("[::1]:1", "::1"),
            ("::1", "::1"),
            ("fe80::1", "fe80::1"),
            ("127.0.0.1:7", "127.0.0.1"),
            ("db.internal", "db.internal"),
        ] {
            assert_eq!(module.retarget(target).unwrap().host, host, "{target}");
        }
        assert!(module.retarget("").is_err());
        assert_eq!(
            IcmpSpec {
                host: " ".into(),
                ip_protocol: None
            }
            .build()
            .unwrap_err()
            .to_string(),
            "\"host\" must not be empty"
        );
    }
}
