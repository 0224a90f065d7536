//! `http` probe: one request (following redirects if asked), with status and body checks.
//!
//! Credentials stay with their origin: the configured headers go only to the configured
//! URL's origin (scheme, host, port), and redirects leave that origin only with
//! `follow_redirects: any`, without the headers. An on-demand run also checks every hop
//! against the allowlist ([`crate::allowlist::check_hop`]).
//!
//! pathwatch opens the socket and the TLS session itself and speaks HTTP/1.1 through hyper's
//! connection API, so each phase is timed as blackbox_exporter's `http` prober does:
//! `resolve`, `connect`, `tls`, `processing` (request sent until the response head arrives)
//! and `transfer` (the body). Over redirects, the trace of every hop add up.

use super::tls::{self, Verify};
use super::{Outcome, Phase, ProbeError, Reason, Trace, connect_tcp, error_chain, resolve};
use crate::abort::AbortOnDrop;
use crate::probe::Observation;
use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use url::Url;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
const USER_AGENT: &str = concat!("pathwatch/", env!("CARGO_PKG_VERSION"));

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HttpSpec {
    /// `http://` or `https://` URL.
    pub url: String,
    #[serde(default = "default_method")]
    pub method: String,
    /// Request headers. Values may hold credentials (`Bearer ${TOKEN}`): they are never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    /// Accepted status codes: `200`, `"200-399"` (default `["200-399"]`).
    #[serde(default = "default_valid_status")]
    pub valid_status: Vec<StatusRange>,
    /// Checks on the response body, all of which must hold.
    #[serde(default, rename = "assert")]
    pub assertions: Vec<Assertion>,
    /// Bodies larger than this fail with `body_too_large` (default 1 MiB).
    #[serde(default = "default_max_body")]
    pub max_body_bytes: usize,
    /// Which redirects to follow: `same_origin` (default), `any` or `none`.
    #[serde(default)]
    pub follow_redirects: FollowRedirects,
    #[serde(default = "default_max_redirects")]
    pub max_redirects: u32,
    /// PEM CA file trusted for `https://` (default: the Mozilla roots).
    pub ca_file: Option<PathBuf>,
    /// Encrypt without checking the server's certificate.
    #[serde(default)]
    pub insecure_skip_verify: bool,
    #[serde(skip)]
    prepared: OnceLock<Prepared>,
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
/// Which redirects the probe follows. A redirect it does not follow is the final answer
/// (its 3xx status is checked against `valid_status`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FollowRedirects {
    /// Only within the configured URL's scheme, host and port.
    #[default]
    SameOrigin,
    /// Anywhere; the configured headers are never sent outside the configured origin.
    Any,
    None,
}

impl<'de> Deserialize<'de> for FollowRedirects {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = FollowRedirects;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("same_origin, any or none")
            }
            // Before 0.2 this was a boolean: `true` keeps redirects but now only within
            // the origin (following them anywhere must be asked for), `false` is `none`.
            fn visit_bool<E: serde::de::Error>(self, b: bool) -> Result<FollowRedirects, E> {
                Ok(if b {
                    FollowRedirects::SameOrigin
                } else {
                    FollowRedirects::None
                })
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<FollowRedirects, E> {
                match s {
                    "same_origin" => Ok(FollowRedirects::SameOrigin),
                    "any" => Ok(FollowRedirects::Any),
                    "none" => Ok(FollowRedirects::None),
                    "true" | "false" => self.visit_bool(s == "true"),
                    _ => Err(E::custom(format!(
                        "unknown value \"{s}\" (expected one of: same_origin, any, none)"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}
fn default_max_redirects() -> u32 {
    10
}

/// An inclusive range of status codes, written `204` or `"200-399"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusRange(pub u16, pub u16);

impl<'de> Deserialize<'de> for StatusRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let parse = |s: &str| {
            s.trim()
                .parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c))
        };
        let range = match text.split_once('-') {
            Some((a, b)) => parse(a).zip(parse(b)).filter(|(a, b)| a <= b),
            None => parse(&text).map(|c| (c, c)),
        };
        range.map(|(a, b)| StatusRange(a, b)).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid status \"{text}\": write a code like 200 or a range like \"200-399\""
            ))
        })
    }
}

/// One body check: a JSON pointer that `equals` a value or `exists` (or not), or a `regex`
/// that must match (`not_regex`: must not).
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Assertion {
    pub json_pointer: Option<String>,
    pub equals: Option<serde_json::Value>,
    pub exists: Option<bool>,
    pub regex: Option<String>,
    pub not_regex: Option<String>,
}

/// What `validate` derives once: parsed URL, method, headers, regexes, TLS config.
#[derive(Clone, Debug)]
struct Prepared {
    url: Url,
    method: Method,
    headers: Vec<(HeaderName, HeaderValue)>,
    regexes: Vec<Option<(regex::Regex, bool)>>,
    tls: Arc<rustls::ClientConfig>,
}

impl HttpSpec {
    pub fn validate(&self) -> Result<(), String> {
        self.prepare().map(|p| {
            let _ = self.prepared.set(p);
        })
    }

    fn parse_url(url: &str) -> Result<Url, String> {
        let url = Url::parse(url).map_err(|e| format!("invalid url: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err("\"url\" must be an http:// or https:// URL with a host".into());
        }
        Ok(url)
    }

    fn prepare(&self) -> Result<Prepared, String> {
        let url = Self::parse_url(&self.url)?;
        let method = Method::from_bytes(self.method.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("invalid method \"{}\"", self.method))?;
        let mut headers = Vec::new();
        for (k, v) in &self.headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|_| format!("invalid header name \"{k}\""))?;
            // The value is left out of the message: it may be a credential.
            let value = HeaderValue::from_str(v)
                .map_err(|_| format!("invalid value for header \"{k}\""))?;
            // A credential's echo (a server quoting it back) is masked wherever it shows.
            crate::redact::register_header(k, v);
            headers.push((name, value));
        }
        let mut regexes = Vec::new();
        for (i, a) in self.assertions.iter().enumerate() {
            let n = i + 1;
            let kinds = [
                a.json_pointer.is_some(),
                a.regex.is_some(),
                a.not_regex.is_some(),
            ];
            if kinds.iter().filter(|k| **k).count() != 1 {
                return Err(format!(
                    "assertion {n}: give exactly one of json_pointer, regex, not_regex"
                ));
            }
            if a.json_pointer.is_some() == (a.equals.is_none() && a.exists.is_none()) {
                return Err(format!(
                    "assertion {n}: json_pointer needs \"equals\" or \"exists\", and only it takes them"
                ));
            }
            if let Some(p) = &a.json_pointer
                && !(p.is_empty() || p.starts_with('/'))
            {
                return Err(format!(
                    "assertion {n}: json_pointer \"{p}\" must start with '/'"
                ));
            }
            let re = match (&a.regex, &a.not_regex) {
                (Some(r), _) => Some((r, true)),
                (_, Some(r)) => Some((r, false)),
                _ => None,
            };
            regexes.push(match re {
                Some((r, want)) => Some((
                    regex::Regex::new(r).map_err(|e| format!("assertion {n}: bad regex: {e}"))?,
                    want,
                )),
                None => None,
            });
        }
        let verify = if self.insecure_skip_verify {
            Verify::Nothing
        } else {
            Verify::Full
        };
        let mut tls = (*tls::client_config(verify, self.ca_file.as_deref())?).clone();
        // HTTP/1.1 only: the trace of one request on one connection are what we time.
        tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Prepared {
            url,
            method,
            headers,
            regexes,
            tls: Arc::new(tls),
        })
    }

    /// The same check against another URL (on-demand probing). Only the URL is prepared
    /// again: the TLS config and the regexes of a module are built once, not per request.
    pub fn with_url(&self, url: &str) -> HttpSpec {
        self.rebuilt(url, false)
    }

    /// The same check without its configured headers (an on-demand target that is not the
    /// module's own origin gets none of them).
    pub fn without_headers(&self) -> HttpSpec {
        self.rebuilt(&self.url, true)
    }

    fn rebuilt(&self, url: &str, drop_headers: bool) -> HttpSpec {
        let spec = HttpSpec {
            url: url.to_string(),
            headers: if drop_headers {
                BTreeMap::new()
            } else {
                self.headers.clone()
            },
            prepared: OnceLock::new(),
            ..self.clone()
        };
        if let (Some(p), Ok(url)) = (self.prepared.get(), Self::parse_url(url)) {
            let headers = if drop_headers {
                Vec::new()
            } else {
                p.headers.clone()
            };
            let _ = spec.prepared.set(Prepared {
                url,
                headers,
                ..p.clone()
            });
        }
        spec
    }

    fn prepared(&self) -> Result<&Prepared, ProbeError> {
        super::prepared(&self.prepared, || self.validate())
    }
}

pub async fn probe(spec: &HttpSpec, trace: &Trace) -> Result<Outcome, ProbeError> {
    probe_with_body(spec, trace)
        .await
        .map(|(outcome, _)| outcome)
}

/// The probe, also handing back the final response's body (for probes built on this one).
pub async fn probe_with_body(
    spec: &HttpSpec,
    trace: &Trace,
) -> Result<(Outcome, Bytes), ProbeError> {
    let prep = spec.prepared()?;
    let origin = prep.url.origin();
    let mut url = prep.url.clone();
    let mut method = prep.method.clone();
    let mut hops = 0;
    loop {
        // The configured headers (credentials, often) go to the configured origin only.
        let own = url.origin() == origin;
        let (status, location, body) = request(spec, prep, &url, &method, own, trace).await?;
        trace.observe(Observation::HttpStatus(status.as_u16()));
        if let Some(next) = redirect(spec, &url, status, location.as_deref(), &origin)? {
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
            // 303, and 301/302 after POST in practice, turn into GET (RFC 9110 15.4).
            if status == StatusCode::SEE_OTHER
                || (method == Method::POST
                    && matches!(status, StatusCode::MOVED_PERMANENTLY | StatusCode::FOUND))
            {
                method = Method::GET;
            }
            continue;
        }
        let code = status.as_u16();
        if !spec
            .valid_status
            .iter()
            .any(|r| (r.0..=r.1).contains(&code))
        {
            return Err(ProbeError::new(
                Reason::HttpStatus,
                format!("answered {code} (accepted: {})", ranges(&spec.valid_status)),
            ));
        }
        check_body(spec, prep, &body)?;
        let outcome = Outcome {
            facts: vec![
                ("status", code.to_string()),
                ("bytes", body.len().to_string()),
            ],
        };
        return Ok((outcome, body));
    }
}

/// The next URL when `status` is a redirect the probe follows; `None` when the answer is
/// final (not a redirect, no Location, or a hop `follow_redirects` does not allow).
fn redirect(
    spec: &HttpSpec,
    url: &Url,
    status: StatusCode,
    location: Option<&str>,
    origin: &url::Origin,
) -> Result<Option<Url>, ProbeError> {
    let (true, Some(loc)) = (status.is_redirection(), location) else {
        return Ok(None);
    };
    if spec.follow_redirects == FollowRedirects::None {
        return Ok(None);
    }
    // The Location is left out of messages: it may carry tokens in its query.
    let next = url
        .join(loc)
        .map_err(|e| ProbeError::new(Reason::Protocol, format!("bad redirect location: {e}")))?;
    if !matches!(next.scheme(), "http" | "https") || next.host_str().is_none() {
        return Err(ProbeError::new(
            Reason::Protocol,
            "a redirect to a location that is not an http(s) URL with a host",
        ));
    }
    if spec.follow_redirects == FollowRedirects::SameOrigin && next.origin() != *origin {
        return Ok(None);
    }
    Ok(Some(next))
}

fn ranges(r: &[StatusRange]) -> String {
    r.iter()
        .map(|r| {
            if r.0 == r.1 {
                r.0.to_string()
            } else {
                format!("{}-{}", r.0, r.1)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn check_body(spec: &HttpSpec, prep: &Prepared, body: &Bytes) -> Result<(), ProbeError> {
    let text = String::from_utf8_lossy(body);
    let mut json: Option<serde_json::Value> = None;
    for (i, a) in spec.assertions.iter().enumerate() {
        let fail = |msg: String| Err(ProbeError::new(Reason::Assertion, msg));
        if let Some(pointer) = &a.json_pointer {
            if json.is_none() {
                json = Some(serde_json::from_slice(body).map_err(|e| {
                    ProbeError::new(Reason::Assertion, format!("body is not JSON: {e}"))
                })?);
            }
            let found = json.as_ref().and_then(|j| j.pointer(pointer));
            if let Some(want) = a.exists
                && found.is_some() != want
            {
                return fail(format!(
                    "{pointer} {}",
                    if want { "is missing" } else { "exists" }
                ));
            }
            if let Some(want) = &a.equals
                && !json_equal(found, want)
            {
                // The value found may be huge (a 10 MB string): cut before it is formatted.
                let found = found
                    .map(|v| super::truncate(v.to_string(), 256))
                    .unwrap_or_else(|| "missing".into());
                return fail(format!("{pointer} is {found}, expected {want}"));
            }
        }
        if let Some(Some((re, want))) = prep.regexes.get(i)
            && re.is_match(&text) != *want
        {
            return fail(format!(
                "body {} /{}/",
                if *want { "does not match" } else { "matches" },
                re.as_str()
            ));
        }
    }
    Ok(())
}

/// YAML `equals: 200` must match JSON `200` and `"ok"` must match `"ok"`; a YAML scalar that
/// reads as a number also matches the same number written as a JSON string.
fn json_equal(found: Option<&serde_json::Value>, want: &serde_json::Value) -> bool {
    match found {
        None => false,
        Some(f) if f == want => true,
        Some(serde_json::Value::Number(n)) => want.as_str() == Some(&n.to_string()),
        Some(serde_json::Value::String(s)) => {
            !want.is_string() && s.as_str() == want.to_string().as_str()
        }
        Some(serde_json::Value::Bool(b)) => want.as_str() == Some(&b.to_string()),
        _ => false,
    }
}

/// One request on a fresh connection: (status, Location header, body).
async fn request(
    spec: &HttpSpec,
    prep: &Prepared,
    url: &Url,
    method: &Method,
    send_headers: bool,
    trace: &Trace,
) -> Result<(StatusCode, Option<String>, Bytes), ProbeError> {
    let host = url.host_str().unwrap_or_default();
    // Url keeps IPv6 hosts in brackets; the resolver and TLS want them bare.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs = resolve(bare, port, trace).await?;
    let tcp = connect_tcp(&addrs, trace).await?;

    let mut req = Request::builder()
        .method(method.clone())
        .uri(match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        });
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    req = req
        .header(header::HOST, authority)
        .header(header::USER_AGENT, USER_AGENT)
        .header(header::ACCEPT, "*/*")
        .header(header::CONNECTION, "close");
    if send_headers {
        for (k, v) in &prep.headers {
            req = req.header(k, v);
        }
    }
    let body = spec.body.clone().unwrap_or_default();
    let req = req
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| ProbeError::new(Reason::Protocol, format!("building the request: {e}")))?;

    if url.scheme() == "https" {
        let name = rustls::pki_types::ServerName::try_from(bare.to_string())
            .map_err(|e| ProbeError::new(Reason::Tls, format!("bad TLS server name: {e}")))?;
        let stream = trace
            .time(
                Phase::Tls,
                tokio_rustls::TlsConnector::from(prep.tls.clone()).connect(name, tcp),
            )
            .await
            .map_err(|e| ProbeError::new(Reason::Tls, format!("TLS handshake: {e}")))?;
        exchange(TokioIo::new(stream), req, spec.max_body_bytes, trace).await
    } else {
        exchange(TokioIo::new(tcp), req, spec.max_body_bytes, trace).await
    }
}

async fn exchange<IO>(
    io: IO,
    req: Request<Full<Bytes>>,
    max_body: usize,
    trace: &Trace,
) -> Result<(StatusCode, Option<String>, Bytes), ProbeError>
where
    IO: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| hyper_error(&e))?;
    let _driver = AbortOnDrop(tokio::spawn(conn));
    let resp = trace
        .time(Phase::Processing, sender.send_request(req))
        .await
        .map_err(|e| hyper_error(&e))?;
    let status = resp.status();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = trace
        .time(
            Phase::Transfer,
            Limited::new(resp.into_body(), max_body).collect(),
        )
        .await
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                ProbeError::new(
                    Reason::BodyTooLarge,
                    format!("body larger than {max_body} bytes"),
                )
            } else {
                let (reason, detail) = error_chain(&*e, Reason::Protocol);
                ProbeError::new(reason, format!("reading the body: {detail}"))
            }
        })?
        .to_bytes();
    Ok((status, location, body))
}

fn hyper_error(e: &hyper::Error) -> ProbeError {
    let fallback = if e.is_incomplete_message() || e.is_closed() {
        Reason::Reset
    } else {
        Reason::Protocol
    };
    let (reason, detail) = error_chain(e, fallback);
    ProbeError::new(reason, detail)
}

impl schemars::JsonSchema for FollowRedirects {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "FollowRedirects".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Which redirects to follow: same_origin (default), any, none; true and false (older configs) read as same_origin and none.",
            "oneOf": [
                { "type": "string", "enum": ["same_origin", "any", "none"] },
                { "type": "boolean" }
            ]
        })
    }
}

impl schemars::JsonSchema for StatusRange {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StatusRange".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A status code (200) or an inclusive range (\"200-399\").",
            "oneOf": [
                { "type": "integer", "minimum": 100, "maximum": 599 },
                { "type": "string", "pattern": "^\\s*[1-5][0-9]{2}\\s*(-\\s*[1-5][0-9]{2}\\s*)?$" }
            ]
        })
    }
}

impl crate::probe::ProbeKind for HttpSpec {
    const KIND: crate::probe::Kind = crate::probe::Kind::Http;

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
        Ok(self.with_url(target))
    }

    fn without_credentials(&self) -> Self {
        self.without_headers()
    }
}
