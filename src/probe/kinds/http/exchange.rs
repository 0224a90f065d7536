//! One request on a fresh connection, phase by phase: `resolve`, `connect`, `tls`,
//! `processing` (request sent until the response head arrives) and `transfer` (the body).

use super::{HttpProbe, USER_AGENT};
use crate::probe::{Phase, ProbeError, Reason, Trace, error_chain};
use bytes::Bytes;
use http::{Method, Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use std::pin::{Pin, pin};
use url::Url;

/// Which of the configured headers and credentials a request carries.
#[derive(Clone, Copy, Debug)]
pub(super) struct Sent<'a> {
    /// All but `Content-*` (the configured origin only: they may be credentials).
    pub(crate) headers: bool,
    /// The `Content-*` ones, which describe the body.
    pub(crate) content: bool,
    /// The token's `Authorization` (the configured origin only).
    pub(crate) authorization: Option<&'a http::HeaderValue>,
    /// The TLS config: with the client certificate for the configured origin only.
    pub(crate) tls: &'a std::sync::Arc<rustls::ClientConfig>,
}

/// One request on a fresh connection: (status, Location header, body).
pub(super) async fn request(
    probe: &HttpProbe,
    url: &Url,
    method: &Method,
    body: Option<&Bytes>,
    send: Sent<'_>,
    trace: &Trace,
) -> Result<(StatusCode, Option<String>, Bytes), ProbeError> {
    let (spec, prep) = (&probe.spec, &probe.prep);
    let host = url.host_str().unwrap_or_default();
    // Url keeps IPv6 hosts in brackets; the resolver and TLS want them bare.
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_or_known_default().unwrap_or(80);
    // Through a proxy, the proxy is what is resolved and connected to; `https://` tunnels.
    let proxy = prep.client.proxy.as_deref();
    let https = url.scheme() == "https";
    let tcp = prep.client.connect(bare, port, https, trace).await?;

    let path = match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    };
    // A plain-HTTP request to a proxy names the whole URL (absolute form, RFC 9112 3.2.2).
    let target = match proxy {
        Some(_) if !https => format!("{}://{host}:{port}{path}", url.scheme()),
        _ => path,
    };
    let mut req = Request::builder().method(method.clone()).uri(target);
    if let Some(auth) = proxy
        .filter(|_| !https)
        .and_then(|p| p.authorization.as_ref())
    {
        req = req.header(header::PROXY_AUTHORIZATION, auth);
    }
    let authority = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    req = req
        .header(header::HOST, authority)
        .header(header::USER_AGENT, USER_AGENT)
        .header(header::ACCEPT, "*/*")
        .header(header::CONNECTION, "close");
    for (k, v) in &prep.headers {
        let describes_body = k.as_str().starts_with("content-");
        if (describes_body && send.content) || (!describes_body && send.headers) {
            req = req.header(k, v);
        }
    }
    if let Some(auth) = send.authorization {
        req = req.header(header::AUTHORIZATION, auth);
    }
    let req = req
        .body(Full::new(body.cloned().unwrap_or_default()))
        .map_err(|e| ProbeError::new(Reason::Protocol, format!("building the request: {e}")))?;

    if https {
        let name = rustls::pki_types::ServerName::try_from(bare.to_string())
            .map_err(|e| ProbeError::new(Reason::Tls, format!("bad TLS server name: {e}")))?;
        let stream = trace
            .time(
                Phase::Tls,
                tokio_rustls::TlsConnector::from(send.tls.clone()).connect(name, tcp),
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
    // Driven in this task beside the request, not spawned: a task per run cost a spawn and
    // a hand-off between the runtime's threads at every step of the exchange.
    let mut conn = pin!(conn);
    let mut ended = false;
    let resp = driven(
        conn.as_mut(),
        &mut ended,
        trace.time(Phase::Processing, sender.send_request(req)),
    )
    .await
    .map_err(|e| hyper_error(&e))?;
    let status = resp.status();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let body = driven(
        conn.as_mut(),
        &mut ended,
        trace.time(
            Phase::Transfer,
            Limited::new(resp.into_body(), max_body).collect(),
        ),
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

/// Polls `fut` and, in the same task, the connection `conn` until it has `ended` (it ends
/// after the response to a `Connection: close` request, or on an error, which `fut` then
/// sees as a closed channel). Dropping `conn` closes the connection.
async fn driven<C: Future, F: Future>(
    mut conn: Pin<&mut C>,
    ended: &mut bool,
    fut: F,
) -> F::Output {
    let mut fut = pin!(fut);
    std::future::poll_fn(|cx| {
        if !*ended && conn.as_mut().poll(cx).is_ready() {
            *ended = true;
        }
        fut.as_mut().poll(cx)
    })
    .await
}

fn hyper_error(e: &hyper::Error) -> ProbeError {
    let fallback = if e.is_incomplete_message() || e.is_closed() {
        Reason::Reset
    } else {
        Reason::Protocol
    };
    let (mut reason, detail) = error_chain(e, fallback);
    if tls_alert(e) {
        // TLS 1.3 ends the client's handshake before the server has judged its certificate:
        // a refused (or missing) client certificate arrives as an alert at the first read.
        reason = Reason::Tls;
    }
    ProbeError::new(reason, detail)
}

/// Whether a rustls error (an alert from the server) is in `e`'s chain; rustls' errors
/// travel inside io::Errors, whose `source()` skips them.
fn tls_alert(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(e);
    while let Some(err) = next {
        if err.is::<rustls::Error>()
            || err
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(
                    <dyn std::error::Error + std::marker::Send + std::marker::Sync + 'static>::is::<
                        rustls::Error,
                    >,
                )
        {
            return true;
        }
        next = err.source();
    }
    false
}
