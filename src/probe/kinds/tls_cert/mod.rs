//! `tls_cert` probe: a TLS handshake with host:port, and the leaf certificate's `notAfter`
//! exported as `pathwatch_tls_cert_expiry_timestamp_seconds{probe}` (blackbox_exporter's
//! `probe_ssl_earliest_cert_expiry`, for the certificate the server presents), so an alert
//! can fire weeks before a certificate expires rather than when it has.
//!
//! Phases: `resolve`, `connect`, `tls`. The certificate is verified against the Mozilla roots
//! or `ca_file` for `server_name` (default: the host); `insecure_skip_verify` reads the date
//! of a certificate nothing could verify. A run fails with `tls` when the handshake does, or
//! when the certificate has expired (its date is still exported).

mod der;

use crate::core::target::{HostPort, HostPortError};
use crate::probe::common::kind::{KindFamily, Probe, ProbeKind, RetargetError};
use crate::probe::common::tls::{self, TlsError, Verify};
use crate::probe::{
    Kind, Observation, Outcome, Phase, ProbeError, Reason, Trace, connect_tcp, resolve,
};
use rustls::pki_types::ServerName;
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// The gauge of the leaf certificate's `notAfter`.
/// Absent after a run that read none (it failed first); a `/probe` answer has it too.
const EXPIRY: KindFamily = KindFamily::gauge(
    "tls_cert_expiry_timestamp",
    "Unix time the leaf certificate the server presented expires (its notAfter)",
)
.unit("seconds")
.removed_when_unreported()
.on_demand();

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsCertSpec {
    /// Host name or IP address.
    pub(crate) host: String,
    /// TCP port.
    pub(crate) port: u16,
    /// The name sent (SNI) and verified (default: `host`).
    pub(crate) server_name: Option<String>,
    /// PEM CA file trusted (default: the Mozilla roots).
    pub(crate) ca_file: Option<PathBuf>,
    /// Read the certificate without checking it (a self-signed or private one).
    #[serde(default)]
    pub(crate) insecure_skip_verify: bool,
}

/// Why a `tls_cert` spec does not build.
#[derive(Debug, thiserror::Error)]
pub(crate) enum TlsCertError {
    #[error(transparent)]
    Address(#[from] HostPortError),
    #[error("invalid \"server_name\" {0:?}: {1}")]
    ServerName(String, rustls::pki_types::InvalidDnsNameError),
    #[error("give \"ca_file\" or \"insecure_skip_verify\", not both")]
    CaFileAndInsecure,
    #[error(transparent)]
    Tls(#[from] TlsError),
}

/// A built `tls_cert` probe: the address, the name and the client config.
#[derive(Debug)]
pub(crate) struct TlsCertProbe {
    addr: HostPort,
    name: ServerName<'static>,
    config: Arc<rustls::ClientConfig>,
}

impl ProbeKind for TlsCertSpec {
    const KIND: Kind = Kind::TlsCert;
    const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
    const FAMILIES: &'static [KindFamily] = &[EXPIRY];
    type Probe = TlsCertProbe;
    type Error = TlsCertError;

    fn build(&self) -> Result<TlsCertProbe, TlsCertError> {
        let addr = HostPort::new(&self.host, self.port)?;
        if self.ca_file.is_some() && self.insecure_skip_verify {
            return Err(TlsCertError::CaFileAndInsecure);
        }
        let name = self.server_name.as_deref().unwrap_or(&self.host);
        let name = ServerName::try_from(name.to_string())
            .map_err(|e| TlsCertError::ServerName(name.to_string(), e))?;
        let verify = if self.insecure_skip_verify {
            Verify::Nothing
        } else {
            Verify::Full
        };
        Ok(TlsCertProbe {
            addr,
            name,
            config: tls::client_config(verify, self.ca_file.as_deref())?,
        })
    }

    /// Another server (`host:port`), verified for its own name.
    fn retarget(&self, target: &str) -> Result<Self, RetargetError> {
        let HostPort { host, port } = HostPort::parse(target)?;
        Ok(TlsCertSpec {
            host,
            port,
            server_name: None,
            ..self.clone()
        })
    }
}

impl Probe for TlsCertProbe {
    async fn run(&self, trace: &Trace) -> Result<Outcome, ProbeError> {
        let addrs = resolve(&self.addr.host, self.addr.port, trace).await?;
        let tcp = connect_tcp(&addrs, trace).await?;
        let connector = tokio_rustls::TlsConnector::from(self.config.clone());
        let stream = trace
            .time(Phase::Tls, connector.connect(self.name.clone(), tcp))
            .await
            .map_err(|e| ProbeError::new(Reason::Tls, format!("TLS handshake: {e}")))?;
        let leaf = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .ok_or_else(|| ProbeError::new(Reason::Tls, "the server presented no certificate"))?;
        let not_after = der::not_after(leaf).ok_or_else(|| {
            ProbeError::new(Reason::Protocol, "cannot read the certificate's notAfter")
        })?;
        trace.observe(Observation::Samples(vec![EXPIRY.sample(not_after as f64)]));
        let left = not_after - crate::core::clock::unix_now() as i64;
        let date = UNIX_EPOCH
            .checked_add(Duration::from_secs(not_after.max(0).unsigned_abs()))
            .map(|t| humantime::format_rfc3339_seconds(t).to_string())
            .unwrap_or_default();
        if left < 0 {
            return Err(ProbeError::new(
                Reason::Tls,
                format!("the certificate expired at {date}"),
            ));
        }
        Ok(Outcome {
            facts: vec![
                ("not_after", date),
                ("days_left", (left / 86_400).to_string()),
            ],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(host: &str, port: u16) -> TlsCertSpec {
        TlsCertSpec {
            host: host.into(),
            port,
            server_name: None,
            ca_file: None,
            insecure_skip_verify: false,
        }
    }

    #[test]
    fn bad_specs_say_what_is_wrong() {
        let error = |s: TlsCertSpec| s.build().map(|_| ()).unwrap_err().to_string();
        assert_eq!(error(spec(" ", 443)), "\"host\" must not be empty");
        assert_eq!(error(spec("h", 0)), "\"port\" must be between 1 and 65535");
        let both = TlsCertSpec {
            ca_file: Some("/ca.pem".into()),
            insecure_skip_verify: true,
            ..spec("h", 443)
        };
        assert_eq!(
            error(both),
            "give \"ca_file\" or \"insecure_skip_verify\", not both"
        );
        let name = TlsCertSpec {
            server_name: Some("bad name".into()),
            ..spec("h", 443)
        };
        assert!(error(name).starts_with("invalid \"server_name\" \"bad name\""));
        let missing = TlsCertSpec {
            ca_file: Some("/no/such/ca.pem".into()),
            ..spec("h", 443)
        };
        assert!(error(missing).starts_with("cannot read CA file \"/no/such/ca.pem\""));
    }

    #[test]
    fn a_target_is_verified_for_its_own_name() {
        let module = TlsCertSpec {
            server_name: Some("internal.example".into()),
            ..spec("10.0.0.1", 443)
        };
        let t = module.retarget("[::1]:8443").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.server_name),
            ("::1", 8443, None)
        );
        assert!(spec("h", 1).retarget("no-port").is_err());
    }
}
