//! `http` probe: one request (following redirects if asked), with status and body checks.
//!
//! Credentials stay with their origin: the configured headers, the `Authorization` of
//! `bearer_token_file`, `google_id_token` or `oauth2` (auth.rs) and the client certificate
//! go only to the configured URL's origin (scheme, host, port), and redirects leave that
//! origin only with `follow_redirects: any`, without them. An on-demand run also checks every hop
//! against the allowlist ([`crate::allowlist::check_hop`]).
//!
//! pathwatch opens the socket and the TLS session itself and speaks HTTP/1.1 through hyper's
//! connection API, so each phase is timed as blackbox_exporter's `http` prober does:
//! `resolve`, `connect`, `tls`, `processing` (request sent until the response head arrives)
//! and `transfer` (the body). Over redirects, the trace of every hop add up.

mod assertions;
mod auth;
mod client;
mod exchange;
mod ip;
mod proxy;
mod redirect;

pub(crate) use assertions::{Assertion, StatusRange};
pub(crate) use auth::{AuthError, OAuth2Spec};
pub(crate) use client::{Client, Fields};
pub(crate) use ip::IpProtocol;
pub(crate) use proxy::ProxyError;
pub(crate) use redirect::{FollowRedirects, RedirectBody};

use crate::probe::Observation;
use crate::probe::common::google::id_token::IdTokenSpec;
use crate::probe::common::kind::{KindFamily, Probe, ProbeKind, RetargetError};
use crate::probe::common::tls::{self, ClientCert, TlsError, Verify};
use crate::probe::{Kind, Outcome, ProbeError, Reason, Trace};
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// `pathwatch_http_status_code`: the last response's status, 0 when none arrived (http and
/// startup, whose health check is an http probe).
pub(crate) const STATUS: KindFamily = KindFamily::int_gauge(
    "http_status_code",
    "Status code of the last HTTP response (0 when none arrived)",
)
.zero_when_unreported()
.on_demand();
const USER_AGENT: &str = concat!("pathwatch/", env!("CARGO_PKG_VERSION"));

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// `http://` or `https://` URL.
    pub(crate) url: String,
    /// The request method.
    #[serde(default = "default_method")]
    pub(crate) method: String,
    /// Request headers. Values may hold credentials (`Bearer ${TOKEN}`): they are never logged.
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
    /// The request body (set `Content-Type` in `headers`).
    pub(crate) body: Option<String>,
    /// Accepted status codes: `200`, `"200-399"` (default `["200-399"]`).
    #[serde(default = "default_valid_status")]
    pub(crate) valid_status: Vec<StatusRange>,
    /// Checks on the response body, all of which must hold.
    #[serde(default, rename = "assert")]
    pub(crate) assertions: Vec<Assertion>,
    /// Bodies larger than this fail with `body_too_large` (default 1 MiB).
    #[serde(default = "default_max_body")]
    pub(crate) max_body_bytes: usize,
    /// Which redirects to follow: `same_origin` (default), `any` or `none`.
    #[serde(default)]
    pub(crate) follow_redirects: FollowRedirects,
    /// More redirects than this fail with `too_many_redirects`.
    #[serde(default = "default_max_redirects")]
    pub(crate) max_redirects: u32,
    /// Where the request body may follow a redirect that keeps it (307, 308, and 301/302
    /// after a method other than POST): `same_origin` (default) follows such a redirect
    /// only within the configured URL's origin and leaves one elsewhere unfollowed (its 3xx
    /// is the answer); `any` re-sends the body wherever `follow_redirects` goes. 303, and
    /// 301/302 after POST, continue as GET without the body or its Content-* headers.
    #[serde(default)]
    pub(crate) redirect_body: RedirectBody,
    /// PEM CA file trusted for `https://` (default: the Mozilla roots).
    pub(crate) ca_file: Option<PathBuf>,
    /// Encrypt without checking the server's certificate.
    #[serde(default)]
    pub(crate) insecure_skip_verify: bool,
    /// PEM client certificate (chain) presented when the server asks for one (mTLS), to
    /// the configured origin only; with `key_file`.
    pub(crate) cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub(crate) key_file: Option<PathBuf>,
    /// A file holding a token sent as `Authorization: Bearer` (read again when it changes).
    pub(crate) bearer_token_file: Option<PathBuf>,
    /// Send a Google-signed ID token for this audience, from the metadata server (Cloud
    /// Run services that refuse unauthenticated calls, IAP).
    pub(crate) google_id_token: Option<IdTokenSpec>,
    /// Send a token from an OAuth2 token endpoint (client-credentials grant).
    pub(crate) oauth2: Option<OAuth2Spec>,
    /// An HTTP proxy (`http://[user:password@]host:port`): `CONNECT` for `https://`
    /// targets, absolute-form requests for `http://` ones.
    pub(crate) proxy_url: Option<String>,
    /// Connect over `ip4` or `ip6` first (default: the resolver's order).
    pub(crate) ip_protocol: Option<IpProtocol>,
    /// With `ip_protocol`, also try the other family's addresses (default `true`); `false`
    /// fails with `dns` when the name has no address of the preferred family.
    #[serde(default = "default_true")]
    pub(crate) ip_protocol_fallback: bool,
}

fn default_true() -> bool {
    true
}

fn default_method() -> String {
    "GET".into()
}
fn default_valid_status() -> Vec<StatusRange> {
    vec![StatusRange(200, 399)]
}
fn default_max_body() -> usize {
    1 << 20
}
fn default_max_redirects() -> u32 {
    10
}

/// Why an `http` spec does not build.
#[derive(Debug, thiserror::Error)]
pub(crate) enum HttpError {
    #[error("invalid url: {0}")]
    Url(#[from] url::ParseError),
    #[error("\"url\" must be an http:// or https:// URL with a host")]
    NotHttp,
    #[error("invalid method \"{0}\"")]
    Method(String),
    #[error("invalid header name \"{0}\"")]
    HeaderName(String),
    /// The value is left out of the message: it may be a credential.
    #[error("invalid value for header \"{0}\"")]
    HeaderValue(String),
    #[error("assertion {0}: give exactly one of json_pointer, regex, not_regex")]
    AssertionKind(usize),
    #[error("assertion {0}: json_pointer needs \"equals\" or \"exists\", and only it takes them")]
    AssertionArgs(usize),
    #[error("assertion {0}: json_pointer \"{1}\" must start with '/'")]
    AssertionPointer(usize, String),
    #[error("assertion {0}: bad regex: {1}")]
    AssertionRegex(usize, regex::Error),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("give \"cert_file\" and \"key_file\" together")]
    CertWithoutKey,
    #[error(transparent)]
    Auth(#[from] AuthError),
    #[error(transparent)]
    Proxy(#[from] ProxyError),
}

/// The configured headers, parsed.
type Headers = Vec<(HeaderName, HeaderValue)>;

/// What a build derives once: parsed URL, method, headers, regexes, TLS config.
#[derive(Clone, Debug)]
struct Prepared {
    url: Url,
    method: Method,
    headers: Headers,
    regexes: Arc<assertions::Regexes>,
    /// For the configured origin (with the client certificate, if any).
    tls: Arc<rustls::ClientConfig>,
    /// For other origins a redirect leads to: no client certificate.
    tls_foreign: Arc<rustls::ClientConfig>,
    /// The credential, proxy and address-family order.
    client: Client,
}

/// A built `http` probe (also the health check of `startup`).
#[derive(Debug)]
pub(crate) struct HttpProbe {
    spec: HttpSpec,
    prep: Prepared,
}

impl HttpSpec {
    fn parse_url(url: &str) -> Result<Url, HttpError> {
        let url = Url::parse(url)?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(HttpError::NotHttp);
        }
        Ok(url)
    }

    /// URL, method and headers: what on-demand retargeting changes.
    fn request_parts(&self) -> Result<(Url, Method, Headers), HttpError> {
        let url = Self::parse_url(&self.url)?;
        let method = Method::from_bytes(self.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| HttpError::Method(self.method.clone()))?;
        let mut headers = Vec::new();
        for (k, v) in &self.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| HttpError::HeaderName(k.clone()))?;
            let value = HeaderValue::from_str(v).map_err(|_| HttpError::HeaderValue(k.clone()))?;
            // A credential's echo (a server quoting it back) is masked wherever it shows.
            crate::redact::register_header(k, v);
            headers.push((name, value));
        }
        Ok((url, method, headers))
    }

    /// The TLS configs for the configured origin (with the client certificate) and for
    /// others (without).
    #[allow(clippy::type_complexity)]
    fn tls_configs(
        &self,
    ) -> Result<(Arc<rustls::ClientConfig>, Arc<rustls::ClientConfig>), HttpError> {
        let verify = if self.insecure_skip_verify {
            Verify::Nothing
        } else {
            Verify::Full
        };
        let http11 = |c: Arc<rustls::ClientConfig>| {
            let mut tls = (*c).clone();
            // HTTP/1.1 only: the trace of one request on one connection are what we time.
            tls.alpn_protocols = vec![b"http/1.1".to_vec()];
            Arc::new(tls)
        };
        let foreign = http11(tls::client_config(verify, self.ca_file.as_deref())?);
        let own = match (&self.cert_file, &self.key_file) {
            (None, None) => foreign.clone(),
            (Some(cert_file), Some(key_file)) => http11(tls::client_config_with_cert(
                verify,
                self.ca_file.as_deref(),
                Some(ClientCert {
                    cert_file,
                    key_file,
                }),
            )?),
            _ => return Err(HttpError::CertWithoutKey),
        };
        Ok((own, foreign))
    }

    fn has_auth(&self) -> bool {
        self.bearer_token_file.is_some() || self.google_id_token.is_some() || self.oauth2.is_some()
    }

    fn client(&self, tls: &rustls::ClientConfig) -> Result<Client, HttpError> {
        Client::build(
            Fields {
                bearer_token_file: self.bearer_token_file.as_deref(),
                google_id_token: self.google_id_token.as_ref(),
                oauth2: self.oauth2.as_ref(),
                proxy_url: self.proxy_url.as_deref(),
                ip_protocol: self.ip_protocol,
                ip_protocol_fallback: self.ip_protocol_fallback,
                authorization_header: self
                    .headers
                    .keys()
                    .any(|k| k.eq_ignore_ascii_case("authorization")),
            },
            tls,
        )
    }
}

impl ProbeKind for HttpSpec {
    const KIND: Kind = Kind::Http;
    const DEFAULT_TIMEOUT: Duration = DEFAULT_TIMEOUT;
    type Probe = HttpProbe;
    type Error = HttpError;
    const FAMILIES: &'static [KindFamily] = &[STATUS];

    fn build(&self) -> Result<HttpProbe, HttpError> {
        let (url, method, headers) = self.request_parts()?;
        let regexes = Arc::new(assertions::compile(&self.assertions)?);
        let (tls, tls_foreign) = self.tls_configs()?;
        let client = self.client(&tls_foreign)?;
        Ok(HttpProbe {
            spec: self.clone(),
            prep: Prepared {
                url,
                method,
                headers,
                regexes,
                tls,
                tls_foreign,
                client,
            },
        })
    }

    /// Only the URL is prepared again: the method, headers, TLS config and regexes of a
    /// module are built once, not per request.
    fn build_like(&self, base: &HttpProbe) -> Result<HttpProbe, HttpError> {
        let (url, method, headers) = if self.method == base.spec.method
            && (self.headers.is_empty() || self.headers == base.spec.headers)
        {
            // The module's method and headers (already registered with the redactor), or
            // none: only the target's URL is new.
            let headers = if self.headers.is_empty() {
                Vec::new()
            } else {
                base.prep.headers.clone()
            };
            (
                Self::parse_url(&self.url)?,
                base.prep.method.clone(),
                headers,
            )
        } else {
            self.request_parts()?
        };
        // A retargeted module keeps its credentials (and their caches) or, without them
        // (`without_credentials`), sends no token and presents no client certificate.
        let client = if self.has_auth() {
            base.prep.client.clone()
        } else {
            base.prep.client.without_auth()
        };
        let tls = if self.cert_file.is_some() {
            base.prep.tls.clone()
        } else {
            base.prep.tls_foreign.clone()
        };
        Ok(HttpProbe {
            spec: self.clone(),
            prep: Prepared {
                url,
                method,
                headers,
                tls,
                client,
                ..base.prep.clone()
            },
        })
    }

    /// The same check against another URL (on-demand probing).
    fn retarget(&self, target: &str) -> Result<Self, RetargetError> {
        Ok(HttpSpec {
            url: target.to_string(),
            ..self.clone()
        })
    }

    /// The same check without its configured headers, token or client certificate (an
    /// on-demand target that is not the module's own origin gets none of them).
    fn without_credentials(&self) -> Self {
        HttpSpec {
            headers: BTreeMap::new(),
            cert_file: None,
            key_file: None,
            bearer_token_file: None,
            google_id_token: None,
            oauth2: None,
            ..self.clone()
        }
    }
}

impl Probe for HttpProbe {
    async fn run(&self, trace: &Trace) -> Result<Outcome, ProbeError> {
        self.run_with_body(trace).await.map(|(outcome, _)| outcome)
    }
}

impl HttpProbe {
    /// The probe, also handing back the final response's body (for probes built on this one).
    pub(crate) async fn run_with_body(
        &self,
        trace: &Trace,
    ) -> Result<(Outcome, Bytes), ProbeError> {
        let (spec, prep) = (&self.spec, &self.prep);
        let origin = prep.url.origin();
        let mut url = prep.url.clone();
        let mut method = prep.method.clone();
        // The body and the configured `Content-*` headers that describe it, until a
        // redirect turns the request into a GET.
        let mut body = spec
            .body
            .as_ref()
            .filter(|b| !b.is_empty())
            .map(|b| Bytes::from(b.clone()));
        let mut rewritten = false;
        let mut hops = 0;
        // Fetched (or taken from its cache) once per run, for the configured origin.
        let authorization = prep.client.authorization().await?;
        loop {
            // The configured headers (credentials, often) go to the configured origin only;
            // the `Content-*` ones also go with the body where `redirect_body: any` sends
            // it, and no longer once a redirect has turned the request into a bodiless GET.
            let own = url.origin() == origin;
            let send = exchange::Sent {
                headers: own,
                content: !rewritten && (own || body.is_some()),
                authorization: authorization.as_ref().filter(|_| own),
                tls: if own { &prep.tls } else { &prep.tls_foreign },
            };
            let (status, location, answer) =
                exchange::request(self, &url, &method, body.as_ref(), send, trace).await?;
            trace.observe(Observation::Samples(vec![
                STATUS.sample(f64::from(status.as_u16())),
            ]));
            let next = redirect::redirect(spec, &url, status, location.as_deref(), &origin)?;
            let (next_method, keeps_body) = redirect::next_request(status, &method);
            // A body leaves the configured origin only when the probe says so; a redirect
            // that would carry it elsewhere is the final answer.
            let may_follow = !keeps_body
                || body.is_none()
                || spec.redirect_body == RedirectBody::Any
                || next.as_ref().is_some_and(|n| n.origin() == origin);
            if let Some(next) = next.filter(|_| may_follow) {
                hops += 1;
                if hops > spec.max_redirects {
                    return Err(ProbeError::new(
                        Reason::TooManyRedirects,
                        format!("more than {} redirects", spec.max_redirects),
                    ));
                }
                crate::allowlist::check_hop(&next)
                    .map_err(|e| ProbeError::new(Reason::Forbidden, e))?;
                url = next;
                method = next_method;
                if !keeps_body {
                    body = None;
                    rewritten = true;
                }
                continue;
            }
            let code = status.as_u16();
            if code == 401 && url.origin() == origin {
                // A revoked or rotated token: the next run fetches a fresh one.
                prep.client.invalidate();
            }
            assertions::check_status(spec, code)?;
            assertions::check_body(spec, &prep.regexes, &answer)?;
            let outcome = Outcome {
                facts: vec![
                    ("status", code.to_string()),
                    ("bytes", answer.len().to_string()),
                ],
            };
            return Ok((outcome, answer));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn module() -> HttpSpec {
        serde_json::from_value(serde_json::json!({
            "url": "https://module.example/health",
            "headers": { "X-Api-Key": "module-only-key-123" },
            "assert": [{ "regex": "ok" }],
        }))
        .unwrap()
    }

    #[test]
    fn a_retargeted_module_reuses_what_does_not_depend_on_the_target() {
        let spec = module();
        let base = spec.build().unwrap();
        let target = spec.retarget("https://other.example/x").unwrap();
        let other = target.build_like(&base).unwrap();
        assert_eq!(other.prep.url.as_str(), "https://other.example/x");
        assert_eq!(other.prep.headers.len(), 1);
        assert!(Arc::ptr_eq(&other.prep.tls, &base.prep.tls));
        assert!(Arc::ptr_eq(&other.prep.regexes, &base.prep.regexes));
        // Without credentials, no header goes; a bad URL is the same error as at load.
        let bare = target.without_credentials().build_like(&base).unwrap();
        assert!(bare.prep.headers.is_empty());
        let bad = spec.retarget("ftp://x").unwrap().build_like(&base);
        assert_eq!(
            bad.map(|_| ()).unwrap_err().to_string(),
            "\"url\" must be an http:// or https:// URL with a host"
        );
    }
}
