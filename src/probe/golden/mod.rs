//! `golden_path` probe: log in, open the chat WebSocket, send a message, and collect every
//! expected agent event up to the final answer, timing each step.
//!
//! Steps (the `step` label of failures): login, connect (resolve, TCP, TLS), handshake (the
//! upgrade, the server's welcome and its optional acknowledgement), send, event, close.
//! `sessions: N` runs N golden paths at once, each bound to its own run (and user, with `{n}`
//! in the email), and fails the run when an event reaches the wrong session.
//!
//! Whose events count is the isolation rule's call (shape.rs); when events arrive but do not
//! count, the failure says so (`crosstalk`, `unexpected_events`) with what arrived, also when
//! the runner's timeout cuts the run (through [`Trace::set_explanation`]).

mod board;
mod events;
mod login;
pub mod shape;
mod ws;

use super::tls::{self, Verify};
use super::{Outcome, Phase, ProbeError, Reason, Trace};
use crate::core::types::{Secret, SecretFile, pick_secret};
use crate::probe::Observation;
use board::{Board, SessionEnd, shared_run};
use events::{Matcher, Rules, Seen};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use shape::{EventFields, Isolation, JsonPointer};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use url::Url;

/// The plan's bound: login to final answer within 60 s.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

pub const DEFAULT_EVENTS: [&str; 5] = [
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
];

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoldenPathSpec {
    /// Log in for a token; or give `token` / `token_file`.
    pub login: Option<LoginSpec>,
    pub token: Option<Secret>,
    pub token_file: Option<SecretFile>,
    pub websocket: WebSocketSpec,
    /// The text of the default message `{"type":"user_message","payload":{"text","thread_id"}}`.
    #[serde(default = "default_message")]
    pub message: String,
    /// A message of another shape; the strings `{text}` and `{thread_id}` in it are replaced.
    pub message_json: Option<serde_json::Value>,
    /// Event types to collect, matched on the event's name only.
    #[serde(default = "default_events")]
    pub events: Vec<String>,
    /// Where an event's name, thread id and user id are (JSON pointers, tried in order).
    #[serde(default)]
    pub event_fields: EventFields,
    /// Whose events count as this run's (default `bind_first`).
    #[serde(default)]
    pub isolation: Isolation,
    /// Types that are neither expected nor unexpected.
    #[serde(default = "default_ignore")]
    pub ignore: Vec<String>,
    /// Fail when an expected event arrives before an earlier one.
    #[serde(default)]
    pub ordered: bool,
    /// The last of `events` is the run's final answer (`agent_completed`): when it arrives
    /// while others are still missing, nothing more will come, so the run fails at once with
    /// `events_missing` instead of waiting out its timeout. `false` keeps waiting (a server
    /// that may send the final answer before other events).
    #[serde(default = "default_true")]
    pub final_event_ends_run: bool,
    #[serde(default = "default_sessions")]
    pub sessions: u32,
    #[serde(default = "default_max_frame")]
    pub max_frame_bytes: usize,
    /// Frames read per session before giving up (an endless stream).
    #[serde(default = "default_max_messages")]
    pub max_messages: u32,
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub insecure_skip_verify: bool,
    #[serde(skip)]
    prepared: OnceLock<Prepared>,
}

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginSpec {
    pub url: String,
    /// `{n}` is replaced by the session number (1, 2, ...) for distinct users.
    pub email: String,
    pub password: Option<Secret>,
    pub password_file: Option<SecretFile>,
    /// Extra headers, e.g. `X-E2E-Bypass-Key`; values are never logged.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default = "default_token_pointer")]
    pub token_pointer: JsonPointer,
    #[serde(default = "default_user_pointer")]
    pub user_id_pointer: JsonPointer,
    /// The most bytes of login answer read (`body_too_large` beyond).
    #[serde(default = "default_login_body")]
    pub max_body_bytes: usize,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WsAuth {
    /// `Sec-WebSocket-Protocol: jwt-auth, jwt.<base64url(token)>`; the server must echo the
    /// token-bearing protocol.
    #[default]
    Subprotocol,
    Bearer,
    Query,
    None,
}

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebSocketSpec {
    /// `ws://` or `wss://` URL.
    pub url: String,
    #[serde(default)]
    pub auth: WsAuth,
    #[serde(default = "default_subprotocol")]
    pub subprotocol: String,
    #[serde(default = "default_token_prefix")]
    pub token_prefix: String,
    #[serde(default = "default_query_param")]
    pub query_param: String,
    /// The first message to wait for after the upgrade (`null`: do not wait).
    #[serde(default = "default_welcome")]
    pub welcome: Option<String>,
    /// A message type to wait for after the welcome and before sending (`null`: none). When
    /// it names a thread, the run is bound to that thread (`isolation: bind_first`).
    #[serde(default)]
    pub ack: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

fn default_message() -> String {
    "What is the status of my last optimisation?".into()
}
fn default_events() -> Vec<String> {
    DEFAULT_EVENTS.map(String::from).to_vec()
}
fn default_ignore() -> Vec<String> {
    ["heartbeat", "connection_established", "pong"]
        .map(String::from)
        .to_vec()
}
fn default_true() -> bool {
    true
}

fn default_sessions() -> u32 {
    1
}
fn default_max_frame() -> usize {
    1 << 20
}
fn default_max_messages() -> u32 {
    1000
}
fn default_login_body() -> usize {
    1 << 20
}
fn default_token_pointer() -> JsonPointer {
    JsonPointer::literal("/access_token")
}
fn default_user_pointer() -> JsonPointer {
    JsonPointer::literal("/user/id")
}
fn default_subprotocol() -> String {
    "jwt-auth".into()
}
fn default_token_prefix() -> String {
    "jwt.".into()
}
fn default_query_param() -> String {
    "token".into()
}
fn default_welcome() -> Option<String> {
    Some("connection_established".into())
}

#[derive(Clone, Debug)]
struct Prepared {
    ws_url: Url,
    tls: Arc<rustls::ClientConfig>,
    http: reqwest::Client,
    password: Option<Secret>,
    token: Option<Secret>,
}

/// What the event step saw, merged over sessions: the golden-path metrics come from here.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GoldenObs {
    pub expected: Vec<String>,
    /// Per expected event: latency from the send (slowest session), None if any session
    /// has not seen it.
    pub arrived: Vec<Option<Duration>>,
    pub duplicates: u64,
    pub unexpected: u64,
    pub crosstalk: u64,
    /// Login to the final expected event (slowest session), when every event arrived.
    pub total: Option<Duration>,
}

impl GoldenObs {
    pub fn delivered(&self) -> usize {
        self.arrived.iter().filter(|a| a.is_some()).count()
    }

    fn from_matcher(m: &Matcher, expected: &[String], total: Option<Duration>) -> Self {
        GoldenObs {
            expected: expected.to_vec(),
            arrived: m.arrived.clone(),
            duplicates: m.duplicates,
            unexpected: m.unexpected,
            crosstalk: m.crosstalk,
            total,
        }
    }

    /// Combines two sessions: an event counts as delivered only if both saw it.
    fn merge(&mut self, other: &GoldenObs) {
        for (a, b) in self.arrived.iter_mut().zip(&other.arrived) {
            *a = match (*a, *b) {
                (Some(x), Some(y)) => Some(x.max(y)),
                _ => None,
            };
        }
        self.duplicates += other.duplicates;
        self.unexpected += other.unexpected;
        self.crosstalk += other.crosstalk;
        self.total = match (self.total, other.total) {
            (Some(x), Some(y)) => Some(x.max(y)),
            _ => None,
        };
    }
}

impl GoldenPathSpec {
    pub fn validate(&self) -> Result<(), String> {
        self.prepare().map(|p| {
            let _ = self.prepared.set(p);
        })
    }

    fn prepare(&self) -> Result<Prepared, String> {
        // A credential in a login or WebSocket header (X-E2E-Bypass-Key, Authorization) is
        // masked wherever a server echoes it back.
        let login_headers = self.login.iter().flat_map(|l| l.headers.iter());
        for (k, v) in login_headers.chain(self.websocket.headers.iter()) {
            crate::redact::register_header(k, v);
        }
        let ws_url =
            Url::parse(&self.websocket.url).map_err(|e| format!("invalid websocket url: {e}"))?;
        if !matches!(ws_url.scheme(), "ws" | "wss") || ws_url.host_str().is_none() {
            return Err("\"websocket.url\" must be a ws:// or wss:// URL with a host".into());
        }
        let token = pick_secret(&self.token, &self.token_file, "token")?;
        let password = match &self.login {
            Some(l) => {
                Url::parse(&l.url).map_err(|e| format!("invalid login url: {e}"))?;
                pick_secret(&l.password, &l.password_file, "password")?
            }
            None => None,
        };
        if self.login.is_some() == token.is_some() {
            return Err("give either \"login\" or \"token\"/\"token_file\"".into());
        }
        if self.events.is_empty() {
            return Err("\"events\" must name at least one event type".into());
        }
        if self.sessions == 0 || self.sessions > 100 {
            return Err("\"sessions\" must be between 1 and 100".into());
        }
        let verify = if self.insecure_skip_verify {
            Verify::Nothing
        } else {
            Verify::Full
        };
        let base = tls::client_config(verify, self.ca_file.as_deref())?;
        let mut ws_tls = (*base).clone();
        ws_tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let http = reqwest::Client::builder()
            .use_preconfigured_tls((*base).clone())
            .user_agent(concat!("pathwatch/", env!("CARGO_PKG_VERSION")))
            .redirect(login::redirect_policy())
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Prepared {
            ws_url,
            tls: Arc::new(ws_tls),
            http,
            password,
            token,
        })
    }

    fn prepared(&self) -> Result<&Prepared, ProbeError> {
        super::prepared(&self.prepared, || self.validate())
    }

    fn message(&self, thread_id: &str) -> String {
        match &self.message_json {
            Some(template) => fill(template, &self.message, thread_id).to_string(),
            None => serde_json::json!({
                "type": "user_message",
                "payload": { "text": self.message, "thread_id": thread_id },
            })
            .to_string(),
        }
    }
}

/// Replaces `{text}` and `{thread_id}` in every string of a JSON template.
fn fill(v: &serde_json::Value, text: &str, thread_id: &str) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::String(s) => {
            Value::String(s.replace("{text}", text).replace("{thread_id}", thread_id))
        }
        Value::Array(items) => {
            Value::Array(items.iter().map(|i| fill(i, text, thread_id)).collect())
        }
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), fill(v, text, thread_id)))
                .collect(),
        ),
        other => other.clone(),
    }
}

pub async fn probe(spec: &GoldenPathSpec, trace: &Trace) -> Result<Outcome, ProbeError> {
    let prep = spec.prepared()?;
    let stamp = crate::core::clock::unix_now();
    let board = Board::new(trace, spec.sessions);
    // Session 1 records its phases into the run's trace (so a timeout still shows its
    // progress); the others time theirs apart. Events of all go through the board.
    let others: Vec<Trace> = (1..spec.sessions).map(|_| Trace::default()).collect();
    let mut runs = Vec::with_capacity(spec.sessions as usize);
    runs.push(session(spec, prep, 1, stamp, trace, &board));
    for (i, t) in others.iter().enumerate() {
        runs.push(session(spec, prep, i as u32 + 2, stamp, t, &board));
    }
    let results = futures_util::future::join_all(runs).await;

    let mut first_error = None;
    let mut ends = Vec::new();
    for (i, result) in results.into_iter().enumerate() {
        match result {
            Ok(end) => ends.push((i + 1, end)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Err(e);
    }
    let mut obs = trace.observations().golden().cloned().unwrap_or_default();
    // Every session finished; a failure now belongs to the event step all the same.
    if let Some((a, b, thread, events)) = shared_run(&ends) {
        // Two sessions took the same run for theirs: the second one's events were another
        // session's, whatever its thread check said.
        obs.crosstalk += events;
        trace.observe(Observation::Golden(obs));
        trace.enter(Phase::Events);
        return Err(ProbeError::new(
            Reason::Crosstalk,
            format!(
                "sessions {a} and {b} were both bound to thread {thread} ({events} events of one session reached the other)"
            ),
        ));
    }
    if let Some((n, end)) = ends.iter().find(|(_, e)| e.crosstalk.is_some()) {
        trace.enter(Phase::Events);
        let why = end.crosstalk.clone().unwrap_or_default();
        return Err(ProbeError::new(
            Reason::Crosstalk,
            if spec.sessions > 1 {
                format!("session {n}: {why}")
            } else {
                why
            },
        ));
    }
    let bound = match ends.first().and_then(|(_, e)| e.bound.clone()) {
        Some(t) => events::printable(&t, 64),
        None => "none (connection scope)".into(),
    };
    Ok(Outcome {
        facts: vec![
            (
                "events",
                format!("{}/{}", obs.delivered(), obs.expected.len()),
            ),
            ("sessions", spec.sessions.to_string()),
            ("isolation", spec.isolation.as_str().to_string()),
            ("thread", bound),
        ],
    })
}

/// One golden path; `n` is the session number (1-based).
async fn session(
    spec: &GoldenPathSpec,
    prep: &Prepared,
    n: u32,
    stamp: f64,
    trace: &Trace,
    board: &Board<'_>,
) -> Result<SessionEnd, ProbeError> {
    let start = Instant::now();
    let creds = match (&spec.login, &prep.token) {
        (Some(l), _) => {
            let email = l.email.replace("{n}", &n.to_string());
            trace
                .time(
                    Phase::Login,
                    login::login(
                        &prep.http,
                        login::LoginRequest {
                            url: &l.url,
                            email: &email,
                            password: prep.password.as_ref(),
                            headers: &l.headers,
                            token_pointer: &l.token_pointer,
                            user_id_pointer: &l.user_id_pointer,
                            max_body_bytes: l.max_body_bytes,
                        },
                    ),
                )
                .await?
        }
        (None, Some(token)) => login::Session {
            token: token.clone(),
            user_id: None,
        },
        (None, None) => return Err(ProbeError::new(Reason::Auth, "no login and no token")),
    };
    let thread_id = format!("pathwatch-{}-{n}", (stamp * 1000.0) as u64);
    let rules = Rules {
        expected: &spec.events,
        ignore: &spec.ignore,
        ordered: spec.ordered,
        isolation: spec.isolation,
        fields: &spec.event_fields,
    };
    let mut matcher = Matcher::new(rules, &thread_id, creds.user_id.as_deref());
    board.update(
        n,
        GoldenObs::from_matcher(&matcher, &spec.events, None),
        None,
    );

    let (mut socket, ack) = ws::connect(spec, &prep.ws_url, &prep.tls, &creds.token, trace).await?;
    if let Some(thread) = ack
        .as_ref()
        .and_then(|a| spec.event_fields.thread_id.text(a))
    {
        matcher.bind(thread);
    }
    let message = spec.message(&thread_id);
    trace
        .time(Phase::Send, socket.send(Message::text(message)))
        .await
        .map_err(|e| ws::frame_error(&e))?;
    let sent = Instant::now();

    let events_start = trace.enter(Phase::Events);
    let report = |m: &Matcher, total: Option<Duration>| {
        let why = (!m.done()).then(|| m.explain());
        board.update(n, GoldenObs::from_matcher(m, &spec.events, total), why);
    };
    report(&matcher, None);
    let mut frames = 0u32;
    while !matcher.done() {
        let Some(msg) = socket.next().await else {
            return Err(ended(
                &matcher,
                ProbeError::new(Reason::EventsMissing, "the connection ended"),
            ));
        };
        frames += 1;
        if frames > spec.max_messages {
            let (_, why) = matcher.explain();
            return Err(ProbeError::new(
                Reason::TooManyMessages,
                format!("{} frames without every event: {why}", spec.max_messages),
            ));
        }
        match msg.map_err(|e| ws::frame_error(&e))? {
            Message::Text(text) => match matcher.text(&text, sent.elapsed()) {
                Seen::OutOfOrder(got, wanted) => {
                    return Err(ProbeError::new(
                        Reason::EventOrder,
                        format!(
                            "{} arrived before {}",
                            spec.events[got], spec.events[wanted]
                        ),
                    ));
                }
                Seen::Expected(i)
                    if spec.final_event_ends_run
                        && i + 1 == spec.events.len()
                        && !matcher.done() =>
                {
                    report(&matcher, None);
                    return Err(ended(
                        &matcher,
                        ProbeError::new(
                            Reason::EventsMissing,
                            format!("the final event {} arrived", spec.events[i]),
                        ),
                    ));
                }
                _ => {}
            },
            Message::Binary(_) => matcher.binary(),
            Message::Close(frame) => {
                report(&matcher, None);
                return Err(ended(
                    &matcher,
                    ws::closed(frame.as_ref(), "before every event arrived"),
                ));
            }
            _ => {}
        }
        report(&matcher, None);
    }
    let total = start.elapsed();
    trace.complete(Phase::Events, events_start.elapsed());
    report(&matcher, Some(total));
    let end = SessionEnd {
        bound: matcher.bound().map(str::to_string),
        delivered: matcher.delivered() as u64,
        crosstalk: (matcher.crosstalk > 0).then(|| matcher.explain().1),
    };

    trace
        .time(Phase::Close, async {
            socket.close(None).await.map_err(|e| ws::frame_error(&e))?;
            // Drain until the server's close answer; frames still in flight do not matter.
            while let Some(msg) = socket.next().await {
                if msg.is_err() {
                    break;
                }
            }
            Ok::<_, ProbeError>(())
        })
        .await?;
    Ok(end)
}

/// The connection ended (or closed) before every event: when events arrived that did not
/// count, that is the reason; otherwise the end's own (`events_missing`, `not_ready`).
fn ended(m: &Matcher, end: ProbeError) -> ProbeError {
    let (reason, why) = m.explain();
    match reason {
        Reason::Crosstalk | Reason::UnexpectedEvents if end.reason == Reason::EventsMissing => {
            ProbeError::new(reason, format!("{} before every event: {why}", end.detail))
        }
        _ => ProbeError::new(end.reason, format!("{} ({why})", end.detail)),
    }
}

impl crate::probe::ProbeKind for GoldenPathSpec {
    const KIND: crate::probe::Kind = crate::probe::Kind::GoldenPath;

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
}
