//! What an on-demand run (`/probe`) may contact: the patterns of `on_demand.allowed_targets`,
//! the networks no on-demand run may reach, and the guard that re-checks both once a name is
//! resolved and at every redirect hop.
//!
//! A pattern is matched against the target as it will be contacted, part by part, never as
//! one string. Its host is either an IP network (`10.0.0.0/16`, `127.0.0.1`, `[fd00::/8]`),
//! matched only against IP literals, or a DNS name whose labels are globs (`*` matches within
//! one label, never a dot or a colon), matched only against names with as many labels. The
//! port is a number, a range (`5432-5439`) or `*`. URL patterns add a scheme and a path glob.
//! A target without a port (an `icmp` module's host) is admitted by a `host:*` pattern only.
//! Whatever a pattern admits, addresses in [`DENIED_NETWORKS`] (link-local, cloud metadata)
//! are refused, before resolution for IP literals and after it for names: a name matching
//! `*.internal` may still resolve to 169.254.169.254.
//!
//! What is an address is decided as browsers decide it (the WHATWG URL host parser, which
//! the `url` crate implements): a host whose last label is a number (`2130706441`,
//! `0x7f000009`, `017700000011`, `127.1`, `0x7f.1`) is an IPv4 address, never a name, so
//! `*:6379` does not match it and the denied networks apply to it before anything is
//! contacted; one that ends in a number but is no valid address is refused. The resolver
//! (glibc's `inet_aton`) would read most of these forms as the same address. IPv6 literals
//! may carry a zone (`fe80::1%eth0`: judged as `fe80::1`), and an address that carries an
//! IPv4 one (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`, NAT64 `64:ff9b::a.b.c.d`) is
//! denied when that IPv4 address is.
//!
//! The guard is task-local: `/probe` runs the probe inline in its own task, and the probes'
//! shared `resolve` and the http probe's redirect loop ask [`check_resolved`] and
//! [`check_hop`], which pass everything outside a guarded run (scheduled probes go where the
//! operator's config says).
//!
//! A leaf (it imports nothing of the crate): config parses its patterns, `/probe` its
//! targets, probes ask its guard. Each of those three gets its own error type
//! ([`TargetPatternError`], [`TargetError`], [`Refused`]); `Refused` converts into the `String`
//! a probe's failure detail is.

mod error;

pub(crate) use error::{Refused, TargetError, TargetPatternError};

use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, LazyLock};

/// Networks no on-demand target may reach, whatever the allowlist says: link-local (where
/// the cloud metadata servers answer: 169.254.169.254, fd00:ec2::254 on AWS, 100.100.100.200
/// on Alibaba) and the unspecified addresses, which Linux connects to the host itself.
pub(crate) const DENIED_NETWORKS: &[&str] = &[
    "169.254.0.0/16",
    "fe80::/10",
    "fd00:ec2::254/128",
    "100.100.100.200/32",
    "0.0.0.0/8",
    "::/128",
];

/// One pattern of `on_demand.allowed_targets`, parsed at config load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TargetPattern {
    text: String,
    kind: PatternKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum PatternKind {
    /// `host:port` for postgres, redis and tcp.
    Socket(HostPattern, PortPattern),
    /// `scheme://host[:port][/path]` for http; no path means any path.
    Url {
        scheme: String,
        host: HostPattern,
        port: PortPattern,
        path: Option<String>,
    },
    /// An absolute socket directory; `*` matches within one path segment.
    Dir(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum HostPattern {
    Net(IpNet),
    /// Lowercase labels, each a glob.
    Name(Vec<String>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PortPattern {
    Any,
    Range(u16, u16),
}

/// A target as it will be contacted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    Socket(Host, u16),
    /// A host without a port, for kinds that take none (`icmp`).
    Host(Host),
    Url {
        scheme: String,
        host: Host,
        port: u16,
        path: String,
    },
    Dir(String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Host {
    Ip(IpAddr),
    /// Lowercase, without a trailing dot.
    Name(String),
}

impl TargetPattern {
    pub(crate) fn parse(text: &str) -> Result<TargetPattern, TargetPatternError> {
        let kind = if text.starts_with('/') {
            if text.split('/').any(|s| s == "..") {
                return Err(TargetPatternError::DotDot(text.to_string()));
            }
            PatternKind::Dir(text.to_string())
        } else if let Some((scheme, rest)) = text.split_once("://") {
            let scheme = scheme.to_ascii_lowercase();
            let default = match scheme.as_str() {
                "http" => 80,
                "https" => 443,
                _ => return Err(TargetPatternError::Scheme(text.to_string())),
            };
            let (authority, path) = match rest.find('/') {
                Some(i) => (&rest[..i], Some(rest[i..].to_string())),
                None => (rest, None),
            };
            let (host, port) = split_port(authority);
            let port = match port {
                Some(p) => parse_port(p, text)?,
                None => PortPattern::Range(default, default),
            };
            PatternKind::Url {
                scheme,
                host: parse_host(host, text)?,
                port,
                path,
            }
        } else {
            let (host, port) = split_port(text);
            let port = port.ok_or_else(|| TargetPatternError::NoPort(text.to_string()))?;
            PatternKind::Socket(parse_host(host, text)?, parse_port(port, text)?)
        };
        Ok(TargetPattern {
            text: text.to_string(),
            kind,
        })
    }

    pub(crate) fn matches(&self, target: &Target) -> bool {
        match (&self.kind, target) {
            (PatternKind::Socket(hp, pp), Target::Socket(h, p)) => hp.matches(h) && pp.matches(*p),
            // No port to judge: only a pattern that allows every port of the host admits it.
            (PatternKind::Socket(hp, PortPattern::Any), Target::Host(h)) => hp.matches(h),
            (
                PatternKind::Url {
                    scheme,
                    host,
                    port,
                    path,
                },
                Target::Url {
                    scheme: s,
                    host: h,
                    port: p,
                    path: tp,
                },
            ) => {
                scheme == s
                    && host.matches(h)
                    && port.matches(*p)
                    && path.as_ref().is_none_or(|g| glob(g, tp, None))
            }
            (PatternKind::Dir(g), Target::Dir(d)) => glob(g, d, Some('/')),
            _ => false,
        }
    }
}

impl HostPattern {
    fn matches(&self, host: &Host) -> bool {
        match (self, host) {
            (HostPattern::Net(net), Host::Ip(ip)) => net.contains(&ip.to_canonical()),
            (HostPattern::Name(labels), Host::Name(name)) => {
                let parts: Vec<&str> = name.split('.').collect();
                parts.len() == labels.len()
                    && labels.iter().zip(parts).all(|(g, l)| glob(g, l, None))
            }
            _ => false,
        }
    }
}

impl PortPattern {
    fn matches(self, port: u16) -> bool {
        match self {
            PortPattern::Any => true,
            PortPattern::Range(a, b) => (a..=b).contains(&port),
        }
    }
}

/// `host:port`, `[v6]:port`, `[v6/len]:port` or a bare host; the port text if any.
fn split_port(s: &str) -> (&str, Option<&str>) {
    if let Some(rest) = s.strip_prefix('[') {
        return match rest.split_once(']') {
            Some((host, tail)) => (host, tail.strip_prefix(':')),
            None => (s, None),
        };
    }
    match s.rsplit_once(':') {
        // More than one colon and no brackets: a bare IPv6 address without a port.
        Some((h, _)) if h.contains(':') => (s, None),
        Some((h, p)) => (h, Some(p)),
        None => (s, None),
    }
}

fn parse_port(p: &str, text: &str) -> Result<PortPattern, TargetPatternError> {
    let bad = || TargetPatternError::Port(text.to_string());
    if p == "*" {
        return Ok(PortPattern::Any);
    }
    let (a, b) = p.split_once('-').unwrap_or((p, p));
    let (a, b) = (
        a.parse::<u16>().map_err(|_| bad())?,
        b.parse::<u16>().map_err(|_| bad())?,
    );
    if a == 0 || a > b {
        return Err(bad());
    }
    Ok(PortPattern::Range(a, b))
}

fn parse_host(h: &str, text: &str) -> Result<HostPattern, TargetPatternError> {
    if let Ok(net) = h.parse::<IpNet>() {
        // 10.0.3.7/16 is written for 10.0.0.0/16; keep what it means, not its typo.
        return Ok(HostPattern::Net(net.trunc()));
    }
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Ok(HostPattern::Net(IpNet::from(ip.to_canonical())));
    }
    let name = h.to_ascii_lowercase();
    let name = name.strip_suffix('.').unwrap_or(&name);
    let labels: Vec<String> = name.split('.').map(str::to_string).collect();
    let label_ok = |l: &String| {
        !l.is_empty()
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*'))
    };
    if !labels.iter().all(label_ok) {
        return Err(TargetPatternError::Host(text.to_string()));
    }
    if labels
        .iter()
        .all(|l| l.chars().all(|c| c.is_ascii_digit() || c == '*'))
        && labels
            .iter()
            .any(|l| l.contains(|c: char| c.is_ascii_digit()))
    {
        return Err(TargetPatternError::IpRange(text.to_string()));
    }
    // A name ending in a number is an address to every target parser (`0x7f000001`,
    // `127.1`): as a name pattern it could never match, and as an address it is ambiguous.
    if ends_in_a_number(name) {
        return Err(TargetPatternError::NumericHost(text.to_string()));
    }
    Ok(HostPattern::Name(labels))
}

/// Parses what `/probe?target=` names: a URL (no user info), a socket directory, or
/// `host:port`.
pub(crate) fn parse_target(t: &str) -> Result<Target, TargetError> {
    if t.contains("://") {
        let u = url::Url::parse(t).map_err(TargetError::Url)?;
        return url_target(&u);
    }
    if t.starts_with('/') {
        if t.split('/').any(|s| s == ".." || s == ".") || t.contains('\0') {
            return Err(TargetError::Dir);
        }
        return Ok(Target::Dir(t.to_string()));
    }
    let (host, port) = t.rsplit_once(':').ok_or(TargetError::NotHostPort)?;
    let port: u16 = port
        .parse()
        .ok()
        .filter(|p| *p != 0)
        .ok_or(TargetError::Port)?;
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    let host = match bare {
        Some(v6) => match parse_ip(v6) {
            Some(ip @ IpAddr::V6(_)) => Host::Ip(ip.to_canonical()),
            _ => return Err(TargetError::Bracketed),
        },
        None => parse_host_name(host)?,
    };
    Ok(Target::Socket(host, port))
}

/// Parses what `/probe?target=` names for a kind whose target is a host without a port
/// (`icmp`): a name, an IPv4 address in any spelling browsers read, or an IPv6 address,
/// bracketed or not.
pub(crate) fn parse_host_target(t: &str) -> Result<Target, TargetError> {
    let bracketed = t.strip_prefix('[').and_then(|h| h.strip_suffix(']'));
    let host = match bracketed.or(t.contains(':').then_some(t)) {
        Some(v6) => match parse_ip(v6) {
            Some(ip @ IpAddr::V6(_)) => Host::Ip(ip.to_canonical()),
            _ => return Err(TargetError::Bracketed),
        },
        None => parse_host_name(t)?,
    };
    Ok(Target::Host(host))
}

impl Target {
    /// The `host:port` of a socket target (the host of a portless one) whose host is an
    /// address, written the one
    /// standard way (`2130706441:6379` is `127.0.0.9:6379`): the probe is handed what was
    /// judged, so no resolver reads the original text another way. `None` for names (left
    /// as written: a trailing dot changes how a resolver searches), URLs (the `url` crate
    /// reads their hosts as browsers do) and socket directories.
    pub(crate) fn address_text(&self) -> Option<String> {
        match self {
            Target::Socket(Host::Ip(IpAddr::V6(ip)), port) => Some(format!("[{ip}]:{port}")),
            Target::Socket(Host::Ip(ip), port) => Some(format!("{ip}:{port}")),
            Target::Host(Host::Ip(ip)) => Some(ip.to_string()),
            _ => None,
        }
    }
}

/// A URL as a target: what a redirect hop is checked as, too.
pub(crate) fn url_target(u: &url::Url) -> Result<Target, TargetError> {
    if !u.username().is_empty() || u.password().is_some() {
        return Err(TargetError::UrlCredentials);
    }
    let scheme = u.scheme().to_string();
    if !matches!(scheme.as_str(), "http" | "https") {
        return Err(TargetError::UrlScheme);
    }
    let host = match u.host() {
        Some(url::Host::Ipv4(ip)) => Host::Ip(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Host::Ip(IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) => parse_host_name(d)?,
        None => return Err(TargetError::UrlNoHost),
    };
    let port = u.port_or_known_default().ok_or(TargetError::UrlNoPort)?;
    Ok(Target::Url {
        scheme,
        host,
        port,
        path: u.path().to_string(),
    })
}

fn parse_host_name(h: &str) -> Result<Host, TargetError> {
    if let Some(ip) = parse_ip(h) {
        return Ok(Host::Ip(ip.to_canonical()));
    }
    let name = h.to_ascii_lowercase();
    let name = name.strip_suffix('.').unwrap_or(&name).to_string();
    let ok = !name.is_empty()
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_'))
        });
    if !ok {
        return Err(TargetError::HostName);
    }
    // Within these characters the WHATWG host parser only lowercases (IDNA of ASCII) and
    // decides whether the host is an IPv4 address: reuse it, it is what browsers and the
    // URL targets' own parser do.
    match url::Host::parse(&name) {
        Ok(url::Host::Ipv4(ip)) => Ok(Host::Ip(IpAddr::V4(ip))),
        Ok(_) => Ok(Host::Name(name)),
        Err(url::ParseError::InvalidIpv4Address) => Err(TargetError::NumericHost),
        Err(_) => Err(TargetError::HostName),
    }
}

/// An IP literal as the standard parsers write it, or an IPv6 one with a zone
/// (`fe80::1%eth0`), which is judged as its address (the zone only picks an interface).
fn parse_ip(h: &str) -> Option<IpAddr> {
    if let Ok(ip) = h.parse::<IpAddr>() {
        return Some(ip);
    }
    let (addr, zone) = h.split_once('%')?;
    let zone_ok = !zone.is_empty()
        && zone
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let ip = addr.parse::<std::net::Ipv6Addr>().ok()?;
    zone_ok.then_some(IpAddr::V6(ip))
}

/// The WHATWG URL "ends in a number" check: the last label (a trailing dot aside) is all
/// digits or an IPv4 number (`0x7f`, `0x`). Such a host is an address or invalid.
fn ends_in_a_number(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    let last = name.rsplit('.').next().unwrap_or_default();
    let hex = last
        .strip_prefix("0x")
        .or_else(|| last.strip_prefix("0X"))
        .is_some_and(|h| h.chars().all(|c| c.is_ascii_hexdigit()));
    hex || (!last.is_empty() && last.chars().all(|c| c.is_ascii_digit()))
}

/// The IPv4 address an IPv6 one carries, where reaching the IPv6 address may reach it:
/// IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, but not `::` or `::1`),
/// and the NAT64 well-known prefix (`64:ff9b::a.b.c.d`, RFC 6052).
fn embedded_v4(ip: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    let s = ip.segments();
    let o = ip.octets();
    let v4 = std::net::Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    let mapped = s[..5] == [0; 5] && s[5] == 0xffff;
    let compatible = s[..6] == [0; 6] && u32::from(v4) > 1;
    let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    (mapped || compatible || nat64).then_some(v4)
}

/// Whether an on-demand run may contact `target` (before any resolution): a pattern admits
/// it, and its host, when an address, is outside the denied networks.
pub(crate) fn admits(allowed: &[TargetPattern], target: &Target) -> bool {
    let address = match target {
        Target::Socket(Host::Ip(ip), _)
        | Target::Host(Host::Ip(ip))
        | Target::Url {
            host: Host::Ip(ip), ..
        } => Some(*ip),
        _ => None,
    };
    allowed.iter().any(|p| p.matches(target)) && !address.is_some_and(denied)
}

/// Whether an address lies in a denied network.
pub(crate) fn denied(ip: IpAddr) -> bool {
    // Parsed once: every `/probe` with a target and every address it resolves asks.
    static NETWORKS: LazyLock<Vec<IpNet>> = LazyLock::new(|| {
        DENIED_NETWORKS
            .iter()
            .filter_map(|n| n.parse::<IpNet>().ok())
            .collect()
    });
    let ip = ip.to_canonical();
    let carried = match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map(IpAddr::V4),
        IpAddr::V4(_) => None,
    };
    NETWORKS
        .iter()
        .any(|n| n.contains(&ip) || carried.is_some_and(|v4| n.contains(&v4)))
}

/// `*` globbing over one label, path or segment, case-sensitive (names are lowercased
/// before). `stop`: a character `*` never matches (the path separator for directories).
fn glob(pattern: &str, text: &str, stop: Option<char>) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    // Two-pointer wildcard match, backtracking to the last star.
    let (mut i, mut j, mut star, mut mark) = (0, 0, None, 0);
    while j < t.len() {
        if i < p.len() && p[i] != '*' && p[i] == t[j] {
            i += 1;
            j += 1;
        } else if i < p.len() && p[i] == '*' {
            star = Some(i);
            mark = j;
            i += 1;
        } else if let Some(s) = star
            && Some(t[mark]) != stop
        {
            i = s + 1;
            mark += 1;
            j = mark;
        } else {
            return false;
        }
    }
    p[i..].iter().all(|c| *c == '*')
}

/// The rules of one on-demand run.
#[derive(Debug)]
pub(crate) struct Guard {
    /// The config's `on_demand.allowed_targets`, shared.
    pub(crate) allowed: Arc<[TargetPattern]>,
    /// The module's own origin when it runs without a target: its redirects within that
    /// origin need no pattern (the operator chose it).
    pub(crate) trusted_origin: Option<url::Origin>,
}

tokio::task_local! {
    static GUARD: Arc<Guard>;
}

/// Runs `fut` (a probe run, inline in this task) under `guard`.
pub(crate) async fn guarded<F: std::future::Future>(guard: Arc<Guard>, fut: F) -> F::Output {
    GUARD.scope(guard, fut).await
}

/// Outside a guarded run: Ok. Inside: every resolved address must be outside the denied
/// networks.
pub(crate) fn check_resolved(addrs: &[SocketAddr]) -> Result<(), Refused> {
    let guarded = GUARD.try_with(|_| ()).is_ok();
    match addrs.iter().find(|a| denied(a.ip())) {
        Some(a) if guarded => Err(Refused::Resolved(a.ip())),
        _ => Ok(()),
    }
}

/// Outside a guarded run: Ok. Inside: a redirect hop must match the allowlist (or stay in
/// the module's own origin when it runs without a target).
pub(crate) fn check_hop(url: &url::Url) -> Result<(), Refused> {
    GUARD
        .try_with(|g| {
            if g.trusted_origin.as_ref() == Some(&url.origin()) {
                return Ok(());
            }
            let target = url_target(url)?;
            if let Target::Url {
                host: Host::Ip(ip), ..
            } = &target
                && denied(*ip)
            {
                return Err(Refused::HopDenied);
            }
            if g.allowed.iter().any(|p| p.matches(&target)) {
                Ok(())
            } else {
                Err(Refused::HopNotAllowed)
            }
        })
        .unwrap_or(Ok(()))
}

#[cfg(test)]
mod tests;
