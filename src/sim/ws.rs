//! The simulated backend's WebSocket: token auth at upgrade, connection_established,
//! heartbeats, client messages, and the registry of open connections.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use axum::extract::ws::{
    CloseFrame, Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection,
};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::auth::{User, detail};
use super::health::DB_REASON;
use super::run::{self, RunRecord, RunRequest};
use super::{SimState, clock, lock};

/// Frames queued per connection before a run's sender waits (backpressure, not loss).
const OUTGOING_CAPACITY: usize = 256;
/// How long to wait for the client's closing frame after ours.
const CLOSE_GRACE: Duration = Duration::from_secs(1);
/// Close code for "the server cannot serve this now" (RFC 6455 internal error).
const INTERNAL_ERROR: u16 = 1011;
/// Close reason of the real backend when it is not ready.
const NOT_READY: &str = "backend not ready";

/// A frame for a connection's socket; `record` marks an agent event to time in its run.
pub(super) struct Outgoing {
    pub(super) msg: Message,
    pub(super) record: Option<(Arc<RunRecord>, &'static str)>,
}

/// What the rest of the service holds of an open connection.
pub(super) struct ConnHandle {
    tx: mpsc::Sender<Outgoing>,
    cancel: CancellationToken,
    /// Close code and reason, set once by whoever cancels the connection.
    close: Arc<OnceLock<(u16, &'static str)>>,
}

impl SimState {
    /// Closes every open WebSocket with `code` (restart, shutdown).
    pub(super) fn close_connections(&self, code: u16, reason: &'static str) {
        for conn in lock(&self.inner.conns).values() {
            let _ = conn.close.set((code, reason));
            conn.cancel.cancel();
        }
    }

    /// The crosstalk fault: hands a frame to every open connection but `from`. A full queue
    /// drops the frame for that connection rather than stall the run that leaks it.
    pub(super) fn broadcast_except(&self, from: u64, msg: &Message) {
        for (id, conn) in lock(&self.inner.conns).iter() {
            if *id != from {
                let out = Outgoing {
                    msg: msg.clone(),
                    record: None,
                };
                let _ = conn.tx.try_send(out);
            }
        }
    }
}

/// Removes a connection from the registry and stops its runs when the connection task ends.
struct Registration {
    state: SimState,
    id: u64,
    cancel: CancellationToken,
    close: Arc<OnceLock<(u16, &'static str)>>,
}

impl Registration {
    fn new(state: &SimState, tx: mpsc::Sender<Outgoing>) -> Self {
        let id = state.next_id();
        let cancel = CancellationToken::new();
        let close = Arc::new(OnceLock::new());
        let handle = ConnHandle {
            tx,
            cancel: cancel.clone(),
            close: close.clone(),
        };
        lock(&state.inner.conns).insert(id, handle);
        Registration {
            state: state.clone(),
            id,
            cancel,
            close,
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&self.state.inner.conns).remove(&self.id);
        self.cancel.cancel();
    }
}

/// The authenticated user and the subprotocol to echo.
struct Authed {
    user: User,
    protocol: Option<HeaderValue>,
}

/// Protocols offered in `Sec-WebSocket-Protocol` (any number of headers, comma-separated).
fn offered_protocols(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|p| p.trim().to_owned())
        .filter(|p| !p.is_empty())
        .collect()
}

/// Auth in the real backend's order: `jwt.<base64url(token)>` subprotocol, then
/// `Authorization: Bearer`, then `?token=`.
fn authenticate(
    state: &SimState,
    headers: &HeaderMap,
    query: &HashMap<String, String>,
) -> Option<Authed> {
    let offered = offered_protocols(headers);
    for proto in &offered {
        let Some(encoded) = proto.strip_prefix("jwt.") else {
            continue;
        };
        // Tolerate padding although clients must strip it.
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(encoded.trim_end_matches('=')) else {
            continue;
        };
        let Ok(token) = String::from_utf8(bytes) else {
            continue;
        };
        if let Some(user) = state.user_for_token(&token) {
            let protocol = HeaderValue::from_str(proto).ok();
            return Some(Authed { user, protocol });
        }
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
    let user = bearer
        .and_then(|t| state.user_for_token(t))
        .or_else(|| query.get("token").and_then(|t| state.user_for_token(t)))?;
    // A client that offered subprotocols fails the handshake unless one is echoed.
    let protocol = offered
        .iter()
        .find(|p| p.as_str() == "jwt-auth")
        .and_then(|p| HeaderValue::from_str(p).ok());
    Some(Authed { user, protocol })
}

/// `GET /ws` and `GET /api/v1/websocket`.
pub(super) async fn upgrade(
    State(state): State<SimState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    ws: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    // Auth comes before the upgrade checks so a token-less client sees 401, as from the real one.
    let Some(authed) = authenticate(&state, &headers, &query) else {
        return detail(StatusCode::UNAUTHORIZED, "Not authenticated");
    };
    let mut ws = match ws {
        Ok(ws) => ws,
        Err(rejection) => return rejection.into_response(),
    };
    if let Some(protocol) = authed.protocol {
        ws.set_selected_protocol(protocol);
    }
    let faults = state.faults();
    let refuse = if faults.db_down {
        Some(DB_REASON)
    } else if faults.ws_close_1011 || state.starting(&faults) {
        Some(NOT_READY)
    } else {
        None
    };
    let user = authed.user;
    ws.on_upgrade(move |socket| async move {
        match refuse {
            Some(reason) => close(socket, INTERNAL_ERROR, reason).await,
            None => connection(state, user, socket).await,
        }
    })
}

async fn send_json(socket: &mut WebSocket, v: &Value) -> Result<(), axum::Error> {
    socket.send(Message::text(v.to_string())).await
}

/// Sends a close frame, then waits (bounded) for the client's, so the handshake completes.
async fn close(mut socket: WebSocket, code: u16, reason: &'static str) {
    let frame = CloseFrame {
        code,
        reason: reason.into(),
    };
    if socket.send(Message::Close(Some(frame))).await.is_err() {
        return;
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, async {
        while let Some(Ok(msg)) = socket.recv().await {
            if matches!(msg, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// What to do after a client message.
enum Next {
    Continue,
    Close(u16, &'static str),
}

/// One accepted connection: runs are separate tasks feeding `rx`, so a slow run never delays
/// heartbeats or other runs.
async fn connection(state: SimState, user: User, mut socket: WebSocket) {
    let (tx, mut rx) = mpsc::channel(OUTGOING_CAPACITY);
    let reg = Registration::new(&state, tx.clone());
    let established = json!({
        "type": "connection_established",
        "connection_id": format!("conn_{}", reg.id),
        "user_id": user.id,
        "timestamp": clock::now_iso(),
    });
    if send_json(&mut socket, &established).await.is_err() {
        return;
    }
    tracing::debug!(conn = reg.id, user = %user.id, "sim websocket open");
    // interval_at panics on a zero period.
    let period = state.inner.heartbeat.max(Duration::from_millis(1));
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    heartbeat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = reg.cancel.cancelled() => {
                let (code, reason) = reg.close.get().copied().unwrap_or((1001, "going away"));
                close(socket, code, reason).await;
                return;
            }
            _ = heartbeat.tick() => {
                let beat = json!({"type": "heartbeat", "timestamp": clock::unix_seconds()});
                if send_json(&mut socket, &beat).await.is_err() {
                    return;
                }
            }
            Some(out) = rx.recv() => {
                if socket.send(out.msg).await.is_err() {
                    return;
                }
                if let Some((record, event)) = out.record {
                    record.push(event);
                }
            }
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) => return,
                Some(Ok(Message::Text(text))) => {
                    let next = on_client_text(&state, &user, &reg, &tx, &mut socket, text.as_str()).await;
                    if let Next::Close(code, reason) = next {
                        close(socket, code, reason).await;
                        return;
                    }
                }
                // Pings are answered by the socket itself; after a client close frame the
                // reply is flushed by the next recv, which then ends the stream.
                Some(Ok(_)) => {}
            },
        }
    }
}

/// Handles one text frame from the client; unknown or malformed messages are ignored.
async fn on_client_text(
    state: &SimState,
    user: &User,
    reg: &Registration,
    tx: &mpsc::Sender<Outgoing>,
    socket: &mut WebSocket,
    text: &str,
) -> Next {
    let received = Instant::now();
    let received_unix_ms = clock::unix_seconds() * 1000.0;
    let Ok(msg) = serde_json::from_str::<Value>(text) else {
        return Next::Continue;
    };
    let kind = msg.get("type").and_then(Value::as_str).unwrap_or("");
    let text_key = match kind {
        "ping" => {
            let pong = json!({"type": "pong", "timestamp": clock::unix_seconds()});
            return match send_json(socket, &pong).await {
                Ok(()) => Next::Continue,
                Err(_) => Next::Close(1001, "going away"),
            };
        }
        "user_message" => "text",
        "start_agent" => "user_request",
        _ => return Next::Continue,
    };
    if state.faults().db_down {
        state.log_db_request_failed();
        // The agent needs the database: the real backend reports and drops the connection.
        let err = json!({"type": "error", "error": DB_REASON, "timestamp": clock::now_iso()});
        let _ = send_json(socket, &err).await;
        return Next::Close(INTERNAL_ERROR, DB_REASON);
    }
    let payload = msg.get("payload").unwrap_or(&Value::Null);
    let field = |name: &str| payload.get(name).or_else(|| msg.get(name));
    let user_text = field(text_key)
        .or_else(|| field("content"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let thread_id = match field("thread_id") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => format!("thread_{}", &state.random_hex(&user.id)[..16]),
    };
    run::spawn(
        state.clone(),
        RunRequest {
            conn_id: reg.id,
            user_id: user.id.clone(),
            thread_id,
            text: user_text,
            tx: tx.clone(),
            cancel: reg.cancel.child_token(),
            received,
            received_unix_ms,
        },
    );
    Next::Continue
}
