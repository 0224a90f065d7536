//! `grpc` probe: the standard gRPC health-checking protocol (`grpc.health.v1.Health/Check`)
//! against host:port, plaintext or TLS, as Kubernetes' gRPC probes, `grpc_health_probe` and
//! blackbox_exporter's grpc module do. The answer's `ServingStatus` is exported as
//! `pathwatch_grpc_health_status{probe}` (0 UNKNOWN, 1 SERVING, 2 NOT_SERVING,
//! 3 SERVICE_UNKNOWN); anything but SERVING fails the run.
//!
//! Phases: `resolve`, `connect`, `tls` (with `tls: true`), `request` (the HTTP/2 preface and
//! the Check call). pathwatch connects the TCP stream itself (the shared connect helpers, so a
//! self-connect is refused and each phase is timed apart) and hands that one stream to tonic
//! through a connector that can be used once: tonic never dials on its own.

use crate::core::target::{HostPort, HostPortError};
use crate::probe::common::kind::{KindFamily, Probe, ProbeKind, RetargetError};
use crate::probe::common::tls::{self, TlsError, Verify};
use crate::probe::{
    Kind, Observation, Outcome, Phase, ProbeError, Reason, Trace, connect_tcp, resolve,
};
use rustls::pki_types::ServerName;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// The gauge of the serving status the server answered. Absent after a run that got no
/// status (refused, a failed call); a `/probe` answer has it too.
const STATUS: KindFamily = KindFamily::gauge(
    "grpc_health_status",
    "The ServingStatus the last grpc.health.v1 Check answered: 0 UNKNOWN, 1 SERVING, \
     2 NOT_SERVING, 3 SERVICE_UNKNOWN",
)
.removed_when_unreported()
.on_demand();

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GrpcSpec {
    /// Host name or IP address.
    pub(crate) host: String,
    /// TCP port.
    pub(crate) port: u16,
    /// The service name asked about (`HealthCheckRequest.service`); empty or absent asks
    /// about the server's overall health.
    #[serde(default)]
    pub(crate) service: String,
    /// Speak TLS (with ALPN `h2`) instead of plaintext HTTP/2.
    #[serde(default)]
    pub(crate) tls: bool,
    /// With `tls`: the name sent (SNI) and verified (default: `host`).
    pub(crate) server_name: Option<String>,
    /// With `tls`: PEM CA file trusted (default: the Mozilla roots).
    pub(crate) ca_file: Option<PathBuf>,
    /// With `tls`: accept any certificate (a self-signed or private one).
    #[serde(default)]
    pub(crate) insecure_skip_verify: bool,
}

/// Why a `grpc` spec does not build.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GrpcError {
    #[error(transparent)]
    Address(#[from] HostPortError),
    #[error("\"server_name\", \"ca_file\" and \"insecure_skip_verify\" need \"tls: true\"")]
    TlsOptionsWithoutTls,
    #[error("give \"ca_file\" or \"insecure_skip_verify\", not both")]
    CaFileAndInsecure,
    #[error("invalid \"server_name\" {0:?}: {1}")]
    ServerName(String, rustls::pki_types::InvalidDnsNameError),
    #[error("\"host\" {0:?} does not make a gRPC authority: {1}")]
    Authority(String, String),
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A built `grpc` probe: the address, the request, and the TLS client when asked for.
#[derive(Debug)]
pub(crate) struct GrpcProbe {
    addr: HostPort,
    service: String,
    endpoint: tonic::transport::Endpoint,
    tls: Option<(ServerName<'static>, Arc<rustls::ClientConfig>)>,
}

impl ProbeKind for GrpcSpec {
    const KIND: Kind = Kind::Grpc;
    const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    const FAMILIES: &'static [KindFamily] = &[STATUS];
    type Probe = GrpcProbe;
    type Error = GrpcError;

    fn build(&self) -> Result<GrpcProbe, GrpcError> {
        let addr = HostPort::new(&self.host, self.port)?;
        if !self.tls
            && (self.server_name.is_some() || self.ca_file.is_some() || self.insecure_skip_verify)
        {
            return Err(GrpcError::TlsOptionsWithoutTls);
        }
        if self.ca_file.is_some() && self.insecure_skip_verify {
            return Err(GrpcError::CaFileAndInsecure);
        }
        let tls = if self.tls {
            let name = self.server_name.as_deref().unwrap_or(&self.host);
            let name = ServerName::try_from(name.to_string())
                .map_err(|e| GrpcError::ServerName(name.to_string(), e))?;
            let verify = if self.insecure_skip_verify {
                Verify::Nothing
            } else {
                Verify::Full
            };
            let mut config = (*tls::client_config(verify, self.ca_file.as_deref())?).clone();
            // gRPC is HTTP/2 only; a TLS server picks it by ALPN.
            config.alpn_protocols = vec![b"h2".to_vec()];
            Some((name, Arc::new(config)))
        } else {
            None
        };
        // The request's :authority (tonic's scheme stays `http`: TLS is pathwatch's, below
        // tonic, which would refuse an `https` URI it cannot dial itself).
        let authority = match (self.tls, self.server_name.as_deref()) {
            (true, Some(name)) => name.to_string(),
            _ if self.host.contains(':') => format!("[{}]", self.host),
            _ => self.host.clone(),
        };
        let endpoint =
            tonic::transport::Endpoint::from_shared(format!("http://{authority}:{}", self.port))
                .map_err(|e| GrpcError::Authority(self.host.clone(), e.to_string()))?;
        Ok(GrpcProbe {
            addr,
            service: self.service.clone(),
            endpoint,
            tls,
        })
    }

    /// Another server (`host:port`), asked about the same service, verified for its own name.
    fn retarget(&self, target: &str) -> Result<Self, RetargetError> {
        let HostPort { host, port } = HostPort::parse(target)?;
        Ok(GrpcSpec {
            host,
            port,
            server_name: None,
            ..self.clone()
        })
    }
}

/// What tonic reads and writes: the run's own TCP (or TLS over TCP) stream.
trait Io: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> Io for T {}
type Stream = hyper_util::rt::TokioIo<Box<dyn Io>>;

/// A connector that hands tonic the stream this run connected, once: a second dial (tonic
/// reconnecting after the server closed) fails instead of connecting where nothing was timed.
struct Handover(Arc<Mutex<Option<Stream>>>);

impl tower_service::Service<http::Uri> for Handover {
    type Response = Stream;
    type Error = std::io::Error;
    type Future = std::future::Ready<Result<Stream, std::io::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Uri) -> Self::Future {
        let stream = self.0.lock().ok().and_then(|mut s| s.take());
        std::future::ready(stream.ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "the connection closed (no reconnect within a run)",
            )
        }))
    }
}

impl Probe for GrpcProbe {
    async fn run(&self, trace: &Trace) -> Result<Outcome, ProbeError> {
        let addrs = resolve(&self.addr.host, self.addr.port, trace).await?;
        let tcp = connect_tcp(&addrs, trace).await?;
        let stream: Box<dyn Io> = match &self.tls {
            None => Box::new(tcp),
            Some((name, config)) => {
                let connector = tokio_rustls::TlsConnector::from(config.clone());
                let tls = trace
                    .time(Phase::Tls, connector.connect(name.clone(), tcp))
                    .await
                    .map_err(|e| ProbeError::new(Reason::Tls, format!("TLS handshake: {e}")))?;
                Box::new(tls)
            }
        };
        let handover = Handover(Arc::new(Mutex::new(Some(hyper_util::rt::TokioIo::new(
            stream,
        )))));
        let status = trace
            .time(Phase::Request, async {
                let channel = self
                    .endpoint
                    .connect_with_connector(handover)
                    .await
                    .map_err(|e| {
                        let (reason, detail) = crate::probe::error_chain(&e, Reason::Protocol);
                        ProbeError::new(reason, format!("HTTP/2: {detail}"))
                    })?;
                let request = HealthCheckRequest {
                    service: self.service.clone(),
                };
                HealthClient::new(channel)
                    .check(request)
                    .await
                    .map(|r| r.into_inner().status)
                    .map_err(|s| status_error(&s, &self.service))
            })
            .await?;
        trace.observe(Observation::Samples(vec![STATUS.sample(f64::from(status))]));
        let name = ServingStatus::try_from(status)
            .map(|s| s.as_str_name().to_string())
            .unwrap_or_else(|_| status.to_string());
        match ServingStatus::try_from(status) {
            Ok(ServingStatus::Serving) => Ok(Outcome {
                facts: vec![("status", name)],
            }),
            Ok(ServingStatus::ServiceUnknown) => Err(ProbeError::new(
                Reason::NotFound,
                format!("{} answered {name}", self.what()),
            )),
            _ => Err(ProbeError::new(
                Reason::NotReady,
                format!("{} answered {name}", self.what()),
            )),
        }
    }
}

impl GrpcProbe {
    /// What was asked about, for details.
    fn what(&self) -> String {
        if self.service.is_empty() {
            "the server's overall health".into()
        } else {
            format!("service {:?}", self.service)
        }
    }
}

/// The reason and detail of a failed Check call.
fn status_error(s: &tonic::Status, service: &str) -> ProbeError {
    use tonic::Code;
    let reason = match s.code() {
        // The health service's answer for a service it does not know.
        Code::NotFound => Reason::NotFound,
        Code::DeadlineExceeded => Reason::Timeout,
        Code::Unauthenticated => Reason::Auth,
        Code::PermissionDenied => Reason::Forbidden,
        Code::ResourceExhausted => Reason::RateLimited,
        Code::Unavailable => {
            // A transport failure tonic reports as UNAVAILABLE: the io error's reason if
            // there is one (a reset), else the server's own UNAVAILABLE.
            let source = std::error::Error::source(s);
            source
                .map(|e| crate::probe::error_chain(e, Reason::Unavailable).0)
                .unwrap_or(Reason::Unavailable)
        }
        // No health service (UNIMPLEMENTED), or an answer that is not gRPC.
        _ => Reason::Protocol,
    };
    let what = if service.is_empty() {
        String::new()
    } else {
        format!(" for service {service:?}")
    };
    let message = if s.message().is_empty() {
        String::new()
    } else {
        format!(": {}", s.message())
    };
    ProbeError::new(
        reason,
        format!("Health/Check{what} answered {:?}{message}", s.code()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(host: &str, port: u16) -> GrpcSpec {
        GrpcSpec {
            host: host.into(),
            port,
            service: String::new(),
            tls: false,
            server_name: None,
            ca_file: None,
            insecure_skip_verify: false,
        }
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let error = |s: GrpcSpec| s.build().map(|_| ()).unwrap_err().to_string();
        assert_eq!(error(spec(" ", 50051)), "\"host\" must not be empty");
        assert_eq!(error(spec("h", 0)), "\"port\" must be between 1 and 65535");
        let plain_ca = GrpcSpec {
            ca_file: Some("/ca.pem".into()),
            ..spec("h", 1)
        };
        assert_eq!(
            error(plain_ca),
            "\"server_name\", \"ca_file\" and \"insecure_skip_verify\" need \"tls: true\""
        );
        let both = GrpcSpec {
            tls: true,
            ca_file: Some("/ca.pem".into()),
            insecure_skip_verify: true,
            ..spec("h", 1)
        };
        assert_eq!(
            error(both),
            "give \"ca_file\" or \"insecure_skip_verify\", not both"
        );
        let name = GrpcSpec {
            tls: true,
            server_name: Some("bad name".into()),
            ..spec("h", 1)
        };
        assert!(error(name).starts_with("invalid \"server_name\" \"bad name\""));
        assert!(error(spec("a b", 1)).starts_with("\"host\" \"a b\" does not make"));
        // IPv6 literals are bracketed in the authority.
        assert!(spec("::1", 50051).build().is_ok());
    }

    #[test]
    fn status_codes_map_to_bounded_reasons() {
        let reason = |c| status_error(&tonic::Status::new(c, "m"), "").reason;
        assert_eq!(reason(tonic::Code::NotFound), Reason::NotFound);
        assert_eq!(reason(tonic::Code::Unimplemented), Reason::Protocol);
        assert_eq!(reason(tonic::Code::Unavailable), Reason::Unavailable);
        assert_eq!(reason(tonic::Code::DeadlineExceeded), Reason::Timeout);
        let e = status_error(&tonic::Status::not_found("unknown service"), "a.B");
        assert_eq!(
            e.detail,
            "Health/Check for service \"a.B\" answered NotFound: unknown service"
        );
    }

    #[test]
    fn a_target_keeps_the_service_and_is_verified_for_its_own_name() {
        let module = GrpcSpec {
            service: "pkg.Svc".into(),
            tls: true,
            server_name: Some("internal.example".into()),
            ..spec("10.0.0.1", 443)
        };
        let t = module.retarget("[::1]:50051").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.server_name, t.service.as_str()),
            ("::1", 50051, None, "pkg.Svc")
        );
    }
}
