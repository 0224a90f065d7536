//! The `golden_path` spec: what to log in with, the WebSocket to open, the message to send
//! and the events to wait for (plain data; [`super::GoldenProbe`] is what it builds).

use super::DEFAULT_EVENTS;
use super::shape::{EventFields, Isolation, JsonPointer};
use crate::core::types::{Secret, SecretFile};
use crate::probe::common::google::id_token::IdTokenSpec;
use crate::probe::kinds::http::{IpProtocol, OAuth2Spec};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The `golden_path` probe: log in, open the chat WebSocket, send one message and time each
/// expected event until the last arrives.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoldenPathSpec {
    /// Log in for a token; or give `token` / `token_file`.
    pub(crate) login: Option<LoginSpec>,
    pub(crate) token: Option<Secret>,
    pub(crate) token_file: Option<SecretFile>,
    /// The chat WebSocket: where, how the token is presented, what to wait for.
    pub(crate) websocket: WebSocketSpec,
    /// The text of the default message `{"type":"user_message","payload":{"text","thread_id"}}`.
    #[serde(default = "default_message")]
    pub(crate) message: String,
    /// A message of another shape; the strings `{text}` and `{thread_id}` in it are replaced.
    pub(crate) message_json: Option<serde_json::Value>,
    /// Event types to collect, matched on the event's name only.
    #[serde(default = "default_events")]
    pub(crate) events: Vec<String>,
    /// Where an event's name, thread id and user id are (JSON pointers, tried in order).
    #[serde(default)]
    pub(crate) event_fields: EventFields,
    /// Whose events count as this run's (default `bind_first`).
    #[serde(default)]
    pub(crate) isolation: Isolation,
    /// Types that are neither expected nor unexpected.
    #[serde(default = "default_ignore")]
    pub(crate) ignore: Vec<String>,
    /// Fail when an expected event arrives before an earlier one.
    #[serde(default)]
    pub(crate) ordered: bool,
    /// The last of `events` is the run's final answer (`agent_completed`): when it arrives
    /// while others are still missing, nothing more will come, so the run fails at once with
    /// `events_missing` instead of waiting out its timeout. `false` keeps waiting (a server
    /// that may send the final answer before other events).
    #[serde(default = "default_true")]
    pub(crate) final_event_ends_run: bool,
    /// Golden paths run at once, each on its own connection and bound to its own run.
    #[serde(default = "default_sessions")]
    pub(crate) sessions: u32,
    /// A larger WebSocket frame fails the run with `frame_too_large`.
    #[serde(default = "default_max_frame")]
    pub(crate) max_frame_bytes: usize,
    /// Frames read per session before giving up (an endless stream).
    #[serde(default = "default_max_messages")]
    pub(crate) max_messages: u32,
    /// PEM CA file trusted for `https://` logins and `wss://` (default: the Mozilla roots).
    pub(crate) ca_file: Option<PathBuf>,
    /// Encrypt without checking the server certificate.
    #[serde(default)]
    pub(crate) insecure_skip_verify: bool,
    /// PEM client certificate (chain) presented to the login and the WebSocket when their
    /// server asks for one (mTLS); with `key_file`.
    pub(crate) cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// A file holding a token sent as `Authorization: Bearer` (read again when it changes)
    /// to the WebSocket's origin: its upgrade, and the login when the login shares that
    /// origin. A gateway's credential (an API gateway, Cloud Run, IAP), beside the
    /// session's own token, which then cannot be `websocket.auth: bearer`.
    pub(crate) bearer_token_file: Option<PathBuf>,
    /// Send a Google-signed ID token for this audience, from the metadata server, as
    /// `bearer_token_file` sends its token (Cloud Run services that refuse unauthenticated
    /// calls, IAP).
    pub(crate) google_id_token: Option<IdTokenSpec>,
    /// Send a token from an OAuth2 token endpoint (client-credentials grant), as
    /// `bearer_token_file` sends its token.
    pub(crate) oauth2: Option<OAuth2Spec>,
    /// An HTTP proxy (`http://[user:password@]host:port`): the login goes through it as an
    /// `http` probe's request does, the WebSocket through a `CONNECT` tunnel.
    pub(crate) proxy_url: Option<String>,
    /// Connect the login and the WebSocket over `ip4` or `ip6` first (default: the
    /// resolver's order).
    pub(crate) ip_protocol: Option<IpProtocol>,
    /// With `ip_protocol`, also try the other family's addresses (default `true`); `false`
    /// fails when the name has no address of the preferred family.
    #[serde(default = "default_true")]
    pub(crate) ip_protocol_fallback: bool,
}

/// `login:`: how the probe gets a token from the service's login endpoint.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginSpec {
    /// The login URL: a POST of `{"email","password"}` as JSON.
    pub(crate) url: String,
    /// `{n}` is replaced by the session number (1, 2, ...) for distinct users.
    pub(crate) email: String,
    pub(crate) password: Option<Secret>,
    pub(crate) password_file: Option<SecretFile>,
    /// Extra headers, e.g. `X-E2E-Bypass-Key`; values are never logged.
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
    /// Where the token is in the login answer (default `/access_token`).
    #[serde(default = "default_token_pointer")]
    pub(crate) token_pointer: JsonPointer,
    /// Where the user's id is in the login answer (default `/user/id`): events naming another
    /// user are crosstalk.
    #[serde(default = "default_user_pointer")]
    pub(crate) user_id_pointer: JsonPointer,
    /// The most bytes of login answer read (`body_too_large` beyond).
    #[serde(default = "default_login_body")]
    pub(crate) max_body_bytes: usize,
}

/// How the probe presents its token when it opens the WebSocket (`websocket.auth`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum WsAuth {
    /// `Sec-WebSocket-Protocol: jwt-auth, jwt.<base64url(token)>`; the server must echo the
    /// token-bearing protocol.
    #[default]
    Subprotocol,
    /// `Authorization: Bearer <token>` on the upgrade request.
    Bearer,
    /// The token in the URL's query (`?token=`).
    Query,
    /// No token at all (a WebSocket without auth).
    None,
}

/// `websocket:`: the chat WebSocket, how the token is presented and which events to wait for.
#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebSocketSpec {
    /// `ws://` or `wss://` URL.
    pub(crate) url: String,
    /// How the token is presented: `subprotocol` (default), `bearer` (an `Authorization`
    /// header), `query` (`?token=`) or `none`.
    #[serde(default)]
    pub(crate) auth: WsAuth,
    /// The subprotocol offered beside the token's (`auth: subprotocol`).
    #[serde(default = "default_subprotocol")]
    pub(crate) subprotocol: String,
    /// The prefix of the token-bearing subprotocol (`auth: subprotocol`).
    #[serde(default = "default_token_prefix")]
    pub(crate) token_prefix: String,
    /// The query parameter that carries the token (`auth: query`).
    #[serde(default = "default_query_param")]
    pub(crate) query_param: String,
    /// The first message to wait for after the upgrade (`null`: do not wait).
    #[serde(default = "default_welcome")]
    pub(crate) welcome: Option<String>,
    /// A message type to wait for after the welcome and before sending (`null`: none). When
    /// it names a thread, the run is bound to that thread (`isolation: bind_first`).
    #[serde(default)]
    pub(crate) ack: Option<String>,
    /// Extra headers of the upgrade request; values are never logged.
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
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

impl GoldenPathSpec {
    /// The message sent on the WebSocket, for `thread_id`.
    pub(super) fn message(&self, thread_id: &str) -> String {
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
