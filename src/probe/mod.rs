//! Probe kinds: one table (`probe_kinds!` below) generates the serde enum [`ProbeSpec`], the
//! `kind` label and every dispatch to the kinds' [`ProbeKind`] implementations; it is the
//! registry. A spec (plain data) builds once into a [`BuiltProbe`]; a run returns an
//! [`Outcome`] or a [`ProbeError`] with a bounded [`Reason`]; the runner owns timing,
//! timeouts and metrics.

pub mod common;
pub mod kinds;

pub(crate) use common::kind::{
    FamilyType, KindFamily, Measured, Observed, Probe, ProbeKind, RetargetError, Sample, Unreported,
};
pub use common::observation::{Observation, Observations};
pub use common::result::RunResult;
pub use common::trace::{Phase, PhaseTimings, Trace};

use serde::Deserialize;
use std::time::Duration;

/// A run of a built probe, boxed (`BuiltProbe::run`).
pub(crate) type RunFuture<'a> =
    std::pin::Pin<Box<dyn Future<Output = Result<Outcome, ProbeError>> + Send + 'a>>;

/// What a successful run learned besides its phase timings.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// Short, secret-free facts for logs and the status page (e.g. the server version).
    pub facts: Vec<(&'static str, String)>,
}

/// A failed run: a bounded reason for labels, and a secret-free detail for logs.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{reason}: {detail}")]
pub struct ProbeError {
    pub(crate) reason: Reason,
    pub(crate) detail: String,
}

/// The longest failure detail kept: a value found in a 10 MB body must not become a 10 MB
/// log line, status page and `/api/status`.
pub(crate) const MAX_DETAIL_BYTES: usize = 512;

impl ProbeError {
    /// A failure; the detail is redacted ([`crate::redact`]) and cut at
    /// [`MAX_DETAIL_BYTES`], wherever it came from.
    pub fn new(reason: Reason, detail: impl Into<String>) -> Self {
        ProbeError {
            reason,
            detail: truncate(
                crate::redact::redact(&detail.into()).into_owned(),
                MAX_DETAIL_BYTES,
            ),
        }
    }
}

/// `text` cut to at most `max` bytes (on a character boundary), ending in
/// `...(N bytes)` with the original length when it was cut.
pub(crate) fn truncate(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...({} bytes)", &text[..cut], text.len())
}

macro_rules! label_enum {
    ($(#[$m:meta])* $vis:vis $name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name { $(#[doc = concat!("`", $text, "`")] $variant),* }

        impl $name {
            /// Every value, in declaration order.
            #[allow(dead_code, reason = "not every label enum iterates its values")]
            $vis const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The label value, as written in series.
            $vis fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl prometheus_client::encoding::EncodeLabelValue for $name {
            fn encode(
                &self,
                encoder: &mut prometheus_client::encoding::LabelValueEncoder,
            ) -> Result<(), std::fmt::Error> {
                std::fmt::Write::write_str(encoder, self.as_str())
            }
        }
    };
}
pub(crate) use label_enum;

/// Generates the [`ProbeSpec`] and [`BuiltProbe`] enums, the [`Kind`] label, [`BuildError`]
/// and every dispatch over the kinds from one table: `Variant(spec type) => "label"`.
macro_rules! probe_kinds {
    ($($variant:ident($spec:ty) => $label:literal),* $(,)?) => {
        /// Every probe kind, tagged by `kind:` in the config (boxed, so the enum stays small).
        #[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
        #[serde(rename_all = "snake_case")]
        #[allow(missing_docs, reason = "a variant is its spec type, which carries the docs (and the schema's description)")]
        pub enum ProbeSpec {
            $($variant(Box<$spec>)),*
        }

        /// A probe built from its spec, ready to run ([`ProbeKind::build`]).
        #[derive(Debug)]
        pub(crate) enum BuiltProbe {
            $($variant(Box<<$spec as ProbeKind>::Probe>)),*
        }

        /// Why a spec does not build; the text is shown at the probe's location.
        #[derive(Debug, thiserror::Error)]
        pub(crate) enum BuildError {
            $(#[error(transparent)] $variant(<$spec as ProbeKind>::Error)),*
        }

        label_enum!(
            /// The `kind` label.
            pub Kind { $($variant => $label),* }
        );

        impl Kind {
            /// The metric families the kind's runs report ([`ProbeKind::FAMILIES`]).
            pub fn families(self) -> &'static [KindFamily] {
                match self { $(Kind::$variant => <$spec as ProbeKind>::FAMILIES),* }
            }

            /// What a `max_seconds` criterion bounds ([`ProbeKind::MEASURED`]).
            pub fn measured(self) -> Measured {
                match self { $(Kind::$variant => <$spec as ProbeKind>::MEASURED),* }
            }

            /// The family a `connections_below` criterion bounds ([`ProbeKind::RATIO`]).
            pub fn ratio(self) -> Option<&'static str> {
                match self { $(Kind::$variant => <$spec as ProbeKind>::RATIO),* }
            }

            /// The families an `all_events` criterion compares ([`ProbeKind::EVENTS`]).
            pub fn events(self) -> Option<(&'static str, &'static str)> {
                match self { $(Kind::$variant => <$spec as ProbeKind>::EVENTS),* }
            }
        }

        impl ProbeSpec {
            /// The `kind` label of this spec's probes.
            pub fn kind(&self) -> Kind {
                match self { $(ProbeSpec::$variant(_) => Kind::$variant),* }
            }

            /// Timeout when neither the probe nor `defaults` set one.
            pub(crate) fn default_timeout(&self) -> Duration {
                match self { $(ProbeSpec::$variant(_) => <$spec as ProbeKind>::DEFAULT_TIMEOUT),* }
            }

            /// The ready probe (checks that need more than one field happen here).
            pub(crate) fn build(&self) -> Result<BuiltProbe, BuildError> {
                match self {
                    $(ProbeSpec::$variant(s) => ProbeKind::build(&**s)
                        .map(|p| BuiltProbe::$variant(Box::new(p)))
                        .map_err(BuildError::$variant)),*
                }
            }

            /// The ready probe of a retargeted module, reusing what `base` (the module's own
            /// built probe) prepared that does not depend on the target.
            pub(crate) fn build_like(&self, base: &BuiltProbe) -> Result<BuiltProbe, BuildError> {
                match (self, base) {
                    $((ProbeSpec::$variant(s), BuiltProbe::$variant(b)) => {
                        ProbeKind::build_like(&**s, b)
                            .map(|p| BuiltProbe::$variant(Box::new(p)))
                            .map_err(BuildError::$variant)
                    }),*
                    _ => self.build(),
                }
            }

            /// The same probe against another target, for on-demand probing
            /// (`/probe?target=`): `host:port` (or a socket directory) for socket kinds, a URL
            /// for `http`.
            pub(crate) fn retarget(&self, target: &str) -> Result<ProbeSpec, RetargetError> {
                Ok(match self {
                    $(ProbeSpec::$variant(s) => {
                        ProbeSpec::$variant(ProbeKind::retarget(&**s, target)?.into())
                    }),*
                })
            }

            /// The same probe without the credentials it would send (passwords, configured
            /// http headers), for an on-demand target that is not the module's own.
            pub(crate) fn without_credentials(&self) -> ProbeSpec {
                match self {
                    $(ProbeSpec::$variant(s) => {
                        ProbeSpec::$variant(ProbeKind::without_credentials(&**s).into())
                    }),*
                }
            }

            /// The series the probe has before its first run ([`ProbeKind::initial_samples`]).
            pub(crate) fn initial_samples(&self) -> Vec<Sample> {
                match self { $(ProbeSpec::$variant(s) => ProbeKind::initial_samples(&**s)),* }
            }

            /// Whether an on-demand target is a bare host ([`ProbeKind::PORTLESS_TARGET`]).
            pub fn portless_target(&self) -> bool {
                match self { $(ProbeSpec::$variant(_) => <$spec as ProbeKind>::PORTLESS_TARGET),* }
            }
        }

        impl BuiltProbe {
            /// Runs the probe once. Phases are recorded into `trace` as they complete, so that
            /// a run cut short by the runner's timeout still shows how far it got.
            ///
            /// Each kind's future is boxed on its own: one future over every kind was as
            /// large as the largest kind's (~26 KB), and every run of any kind copied that
            /// into its box (runner::run_once; about a fifth of a tcp `/probe`'s instructions).
            pub(crate) fn run<'a>(&'a self, trace: &'a Trace) -> RunFuture<'a> {
                match self { $(BuiltProbe::$variant(p) => Box::pin(Probe::run(&**p, trace))),* }
            }
        }
    };
}

// The registry: one line per kind.
probe_kinds! {
    Postgres(kinds::postgres::PostgresSpec) => "postgres",
    Tcp(kinds::tcp::TcpSpec) => "tcp",
    Http(kinds::http::HttpSpec) => "http",
    GoldenPath(kinds::golden::GoldenPathSpec) => "golden_path",
    Startup(kinds::startup::StartupSpec) => "startup",
    GcpVpcConnector(kinds::gcp::vpc_connector::VpcConnectorSpec) => "gcp_vpc_connector",
    GcpCloudsql(kinds::gcp::cloudsql::CloudSqlSpec) => "gcp_cloudsql",
    GcpCloudRun(kinds::gcp::cloud_run::CloudRunSpec) => "gcp_cloud_run",
    Redis(kinds::redis::RedisSpec) => "redis",
    Logs(kinds::logs::LogsSpec) => "logs",
    TlsCert(kinds::tls_cert::TlsCertSpec) => "tls_cert",
    Dns(kinds::dns::DnsSpec) => "dns",
    Grpc(kinds::grpc::GrpcSpec) => "grpc",
    Icmp(kinds::icmp::IcmpSpec) => "icmp",
}

label_enum!(
    /// The `transport` label of database probes.
    pub Transport {
        Tcp => "tcp",
        Unix => "unix",
    }
);

label_enum!(
    /// Why a run failed: a closed set, so the `reason` label stays bounded.
    pub Reason {
        Ok => "ok",
        Timeout => "timeout",
        Refused => "refused",
        Dns => "dns",
        SocketMissing => "socket_missing",
        PermissionDenied => "permission_denied",
        Unreachable => "unreachable",
        Reset => "reset",
        Tls => "tls",
        Auth => "auth",
        DatabaseMissing => "database_missing",
        TooManyConnections => "too_many_connections",
        Unavailable => "unavailable",
        Query => "query",
        HttpStatus => "http_status",
        Assertion => "assertion",
        BodyTooLarge => "body_too_large",
        TooManyRedirects => "too_many_redirects",
        Forbidden => "forbidden",
        Unprocessable => "unprocessable",
        ServerError => "server_error",
        NotReady => "not_ready",
        EventsMissing => "events_missing",
        EventOrder => "event_order",
        Crosstalk => "crosstalk",
        UnexpectedEvents => "unexpected_events",
        TooManyMessages => "too_many_messages",
        FrameTooLarge => "frame_too_large",
        StartupTimeout => "startup_timeout",
        NotFound => "not_found",
        RateLimited => "rate_limited",
        Credentials => "credentials",
        ResourceState => "resource_state",
        Expectation => "expectation",
        Protocol => "protocol",
        Io => "io",
        Panic => "panic",
    }
);

/// Maps a socket-level error to its reason.
pub(crate) fn io_reason(e: &std::io::Error) -> Reason {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => Reason::Refused,
        K::NotFound => Reason::SocketMissing,
        K::PermissionDenied => Reason::PermissionDenied,
        K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable => Reason::Unreachable,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof => {
            Reason::Reset
        }
        K::TimedOut => Reason::Timeout,
        _ => Reason::Io,
    }
}

/// Walks an error's source chain: the reason of the first `io::Error` in it (else
/// `fallback`), and the whole chain as one secret-free line.
pub(crate) fn error_chain(
    e: &(dyn std::error::Error + 'static),
    fallback: Reason,
) -> (Reason, String) {
    let mut detail = e.to_string();
    let mut reason = e.downcast_ref::<std::io::Error>().map(io_reason);
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !detail.contains(&text) {
            detail.push_str(": ");
            detail.push_str(&text);
        }
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            reason.get_or_insert(io_reason(io));
        }
        source = s.source();
    }
    (reason.unwrap_or(fallback), detail)
}

/// Resolves `host:port` (phase `resolve`), keeping every address in the order given.
pub(crate) async fn resolve(
    host: &str,
    port: u16,
    trace: &Trace,
) -> Result<Vec<std::net::SocketAddr>, ProbeError> {
    trace
        .time(Phase::Resolve, async {
            let addrs: Vec<_> = tokio::net::lookup_host((host, port))
                .await
                .map_err(|e| ProbeError::new(Reason::Dns, format!("resolving {host:?}: {e}")))?
                .collect();
            if addrs.is_empty() {
                return Err(ProbeError::new(
                    Reason::Dns,
                    format!("{host:?} has no addresses"),
                ));
            }
            // On-demand runs refuse addresses in the denied networks once resolved.
            crate::allowlist::check_resolved(&addrs)
                .map_err(|e| ProbeError::new(Reason::Forbidden, e))?;
            Ok(addrs)
        })
        .await
}

/// Connects to the first address that answers (phase `connect`), as libpq and browsers do,
/// for a probe that then exchanges messages: Nagle's delay is off.
pub(crate) async fn connect_tcp(
    addrs: &[std::net::SocketAddr],
    trace: &Trace,
) -> Result<tokio::net::TcpStream, ProbeError> {
    let (stream, _) = connect_first(addrs, trace).await?;
    // Probes exchange small messages: do not let Nagle delay them.
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// Connects to the first address that answers (phase `connect`); returns the stream and
/// the address it reached (the peer, without asking the kernel again).
pub(crate) async fn connect_first(
    addrs: &[std::net::SocketAddr],
    trace: &Trace,
) -> Result<(tokio::net::TcpStream, std::net::SocketAddr), ProbeError> {
    trace
        .time(Phase::Connect, async {
            let mut last = None;
            for addr in addrs {
                match tokio::net::TcpStream::connect(addr).await {
                    // Simultaneous open met itself: nothing listens (self_connect.rs).
                    Ok(s) if common::self_connect::is_self(s.local_addr(), *addr) => {
                        // Closed with a reset: a FIN would leave the port in TIME_WAIT, and
                        // the server that belongs there could not bind it for a minute.
                        let _ = s.set_zero_linger();
                        drop(s);
                        last = Some((addr, common::self_connect::error(*addr)));
                    }
                    Ok(s) => return Ok((s, *addr)),
                    Err(e) => last = Some((addr, e)),
                }
            }
            Err(match last {
                Some((addr, e)) => {
                    ProbeError::new(io_reason(&e), format!("connecting to {addr}: {e}"))
                }
                None => ProbeError::new(Reason::Dns, "no address to connect to"),
            })
        })
        .await
}

#[cfg(test)]
mod detail_tests {
    use super::*;

    #[test]
    fn details_are_cut_with_the_original_length() {
        let e = ProbeError::new(Reason::Assertion, "x".repeat(10_000_000));
        assert_eq!(
            e.detail.len(),
            MAX_DETAIL_BYTES + "...(10000000 bytes)".len()
        );
        assert!(e.detail.ends_with("...(10000000 bytes)"));
        // Never inside a character.
        let t = truncate("é".repeat(300), 511);
        assert!(
            t.starts_with(&"é".repeat(255)) && t.ends_with("...(600 bytes)"),
            "{t}"
        );
        assert_eq!(truncate("short".into(), 512), "short");
    }
}
