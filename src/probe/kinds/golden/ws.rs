//! The WebSocket steps: connect (resolve, TCP, TLS), the upgrade handshake with the token
//! (as subprotocol, bearer header or query parameter), and waiting for the server's welcome
//! and, when configured, its acknowledgement.

use super::events::Tally;
use super::{GoldenPathSpec, Prepared, WsAuth};
use crate::core::types::Secret;
use crate::probe::{Phase, ProbeError, Reason, Trace, error_chain, io_reason};
use base64::Engine as _;
use futures_util::StreamExt;
use http::HeaderValue;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

/// A WebSocket over plain TCP or TLS: one type so the steps after the handshake are shared.
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

pub(crate) type Ws = WebSocketStream<Box<dyn Io>>;

/// The subprotocol that carries the token: `jwt.` + base64url(token), no padding.
pub(crate) fn token_protocol(spec: &GoldenPathSpec, token: &Secret) -> String {
    format!(
        "{}{}",
        spec.websocket.token_prefix,
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(token.expose())
    )
}

/// Opens the WebSocket (through `proxy_url`'s tunnel, if any), presenting the session's
/// `token` and the gateway credential's `authorization`; returns it with the acknowledgement
/// message, when one is configured.
pub(super) async fn connect(
    spec: &GoldenPathSpec,
    prep: &Prepared,
    token: &Secret,
    authorization: Option<&HeaderValue>,
    trace: &Trace,
) -> Result<(Ws, Option<serde_json::Value>), ProbeError> {
    let (url, tls) = (&prep.ws_url, &prep.tls);
    let host = url.host_str().unwrap_or_default();
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let port = url.port_or_known_default().unwrap_or(80);
    // A WebSocket goes through a proxy in a tunnel, `ws://` as well as `wss://`.
    let tcp = prep.client.connect(bare, port, true, trace).await?;
    let stream: Box<dyn Io> = if url.scheme() == "wss" {
        let name = rustls::pki_types::ServerName::try_from(bare.to_string())
            .map_err(|e| ProbeError::new(Reason::Tls, format!("bad TLS server name: {e}")))?;
        let tls = trace
            .time(
                Phase::Tls,
                tokio_rustls::TlsConnector::from(tls.clone()).connect(name, tcp),
            )
            .await
            .map_err(|e| ProbeError::new(Reason::Tls, format!("TLS handshake: {e}")))?;
        Box::new(tls)
    } else {
        Box::new(tcp)
    };

    let mut url = url.clone();
    if spec.websocket.auth == WsAuth::Query {
        url.query_pairs_mut()
            .append_pair(&spec.websocket.query_param, token.expose());
    }
    let secret_free = |e: &dyn std::fmt::Display| {
        // The request URL may now hold the token: never let it into a message.
        e.to_string().replace(token.expose(), "<token>")
    };
    let mut request = url
        .as_str()
        .into_client_request()
        .map_err(|e| ProbeError::new(Reason::Protocol, secret_free(&e)))?;
    let offered = token_protocol(spec, token);
    let header = |v: String| {
        HeaderValue::from_str(&v)
            .map_err(|_| ProbeError::new(Reason::Protocol, "the token cannot travel in a header"))
    };
    match spec.websocket.auth {
        WsAuth::Subprotocol => {
            request.headers_mut().insert(
                http::header::SEC_WEBSOCKET_PROTOCOL,
                header(format!("{}, {offered}", spec.websocket.subprotocol))?,
            );
        }
        WsAuth::Bearer => {
            request.headers_mut().insert(
                http::header::AUTHORIZATION,
                header(format!("Bearer {}", token.expose()))?,
            );
        }
        WsAuth::Query | WsAuth::None => {}
    }
    if let Some(auth) = authorization {
        // build() refused `auth: bearer` beside a credential: this is the only Authorization.
        request
            .headers_mut()
            .insert(http::header::AUTHORIZATION, auth.clone());
    }
    for (k, v) in &spec.websocket.headers {
        let name = http::HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| ProbeError::new(Reason::Protocol, format!("bad header name {k:?}")))?;
        request.headers_mut().insert(name, header(v.clone())?);
    }

    let config = WebSocketConfig::default()
        .max_frame_size(Some(spec.max_frame_bytes))
        .max_message_size(Some(spec.max_frame_bytes));
    let (mut ws, response, ack) = trace
        .time(Phase::Handshake, async {
            let (mut ws, response) =
                tokio_tungstenite::client_async_with_config(request, stream, Some(config))
                    .await
                    .map_err(|e| handshake_error(&e, token))?;
            if let Some(welcome) = &spec.websocket.welcome {
                wait_for(&mut ws, spec, welcome, trace).await?;
            }
            let ack = match &spec.websocket.ack {
                Some(ack) => Some(wait_for(&mut ws, spec, ack, trace).await?),
                None => None,
            };
            Ok::<_, ProbeError>((ws, response, ack))
        })
        .await?;
    if spec.websocket.auth == WsAuth::Subprotocol {
        let echoed = response
            .headers()
            .get(http::header::SEC_WEBSOCKET_PROTOCOL)
            .and_then(|v| v.to_str().ok());
        if echoed != Some(offered.as_str()) {
            let _ = ws.close(None).await;
            return Err(ProbeError::new(
                Reason::Protocol,
                match echoed {
                    None => "the server did not echo the token subprotocol".to_string(),
                    Some(_) => "the server echoed another subprotocol than the token's".to_string(),
                },
            ));
        }
    }
    Ok((ws, ack))
}

/// Reads until the server's first message of type `welcome` (its name read where events'
/// names are) and returns it; a close before it names why. Frames of other types are
/// tallied, so that a timeout here says what came instead.
async fn wait_for(
    ws: &mut Ws,
    spec: &GoldenPathSpec,
    welcome: &str,
    trace: &Trace,
) -> Result<serde_json::Value, ProbeError> {
    let mut others = Tally::default();
    let mut count = 0u64;
    while let Some(msg) = ws.next().await {
        let name = match msg.map_err(|e| frame_error(&e))? {
            Message::Text(t) => match serde_json::from_str::<serde_json::Value>(&t) {
                Ok(v) => match spec.event_fields.kind.text(&v) {
                    Some(kind) if kind == welcome => {
                        trace.set_explanation(None);
                        return Ok(v);
                    }
                    Some(kind) => kind,
                    None => "<no type>".into(),
                },
                Err(_) => "<not JSON>".into(),
            },
            Message::Binary(_) => "<binary>".into(),
            Message::Close(frame) => {
                return Err(closed(frame.as_ref(), &format!("before {welcome}")));
            }
            _ => continue,
        };
        count += 1;
        others.add(&name);
        trace.set_explanation(Some((
            Reason::UnexpectedEvents,
            format!(
                "waiting for {welcome}, {count} frames of other types came: {} (type read at {})",
                others.list(),
                spec.event_fields.kind.describe()
            ),
        )));
    }
    Err(ProbeError::new(
        Reason::Reset,
        format!("the connection ended before {welcome}"),
    ))
}

/// A close frame as a failure: 1011 means the backend is not ready.
pub(crate) fn closed(
    frame: Option<&tokio_tungstenite::tungstenite::protocol::CloseFrame>,
    when: &str,
) -> ProbeError {
    match frame {
        Some(f) if f.code == CloseCode::Error => ProbeError::new(
            Reason::NotReady,
            format!("the server closed with 1011 ({}) {when}", f.reason),
        ),
        Some(f) => ProbeError::new(
            Reason::EventsMissing,
            format!(
                "the server closed with {} ({}) {when}",
                u16::from(f.code),
                f.reason
            ),
        ),
        None => ProbeError::new(Reason::EventsMissing, format!("the server closed {when}")),
    }
}

fn handshake_error(e: &WsError, token: &Secret) -> ProbeError {
    let scrub = |s: String| s.replace(token.expose(), "<token>");
    match e {
        WsError::Http(resp) => {
            let code = resp.status().as_u16();
            let reason = match code {
                401 => Reason::Auth,
                403 => Reason::Forbidden,
                500..=599 => Reason::ServerError,
                _ => Reason::HttpStatus,
            };
            ProbeError::new(reason, format!("the WebSocket upgrade answered {code}"))
        }
        WsError::Io(io) => ProbeError::new(io_reason(io), scrub(format!("handshake: {io}"))),
        other => {
            let (reason, detail) = error_chain(other, Reason::Protocol);
            ProbeError::new(reason, scrub(format!("handshake: {detail}")))
        }
    }
}

/// A read error after the handshake.
pub(crate) fn frame_error(e: &WsError) -> ProbeError {
    match e {
        WsError::Capacity(c) => ProbeError::new(Reason::FrameTooLarge, c.to_string()),
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            ProbeError::new(Reason::EventsMissing, "the connection closed")
        }
        WsError::Io(io) => ProbeError::new(io_reason(io), format!("reading frames: {io}")),
        other => {
            let (reason, detail) = error_chain(other, Reason::Protocol);
            ProbeError::new(reason, detail)
        }
    }
}
