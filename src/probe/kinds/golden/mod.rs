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

#[cfg(test)]
mod arbitrary;
mod board;
mod events;
mod login;
mod session;
pub(crate) mod shape;
mod spec;
mod ws;

pub use spec::{GoldenPathSpec, LoginSpec, WebSocketSpec, WsAuth};

use crate::core::types::{Secret, pick_secret};
use crate::probe::Observation;
use crate::probe::common::kind::{
    DURATION_BUCKETS, KindFamily, Measured, Observed, Probe, ProbeKind, Sample,
};
use crate::probe::common::tls::{self, TlsError, Verify};
use crate::probe::kinds::http::{Client, Fields, HttpError};
use crate::probe::{Kind, Outcome, Phase, ProbeError, Reason, Trace};
use board::{Board, shared_run};
use events::EventMatcher;
use session::session;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

pub(crate) const DEFAULT_EVENTS: [&str; 5] = [
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
];

/// `pathwatch_golden_path_seconds`: login to the final event of a passing run; a run cut
/// at its timeout is observed at it.
const SECONDS: KindFamily = KindFamily::histogram(
    "golden_path",
    "Login to the final agent event; runs cut at the timeout are observed at it",
    DURATION_BUCKETS,
    Observed::Sample,
)
.unit("seconds");
/// 0 when a run delivered none (one that failed before the events too).
const DELIVERED: KindFamily = KindFamily::int_gauge(
    "golden_path_events_delivered",
    "Expected agent events delivered in the last run (in every session)",
)
.zero_when_unreported();
const EXPECTED: KindFamily = KindFamily::int_gauge(
    "golden_path_events_expected",
    "Agent events the golden path expects",
);
/// Per configured event (bounded by the config); absent when the last run did not see it.
const EVENT: KindFamily = KindFamily::gauge(
    "golden_path_event",
    "Time from sending the message to each event in the last run (absent if not seen)",
)
.unit("seconds")
.labels(&["event"])
.removed_when_unreported();
const CROSSTALK: KindFamily = KindFamily::counter_increment(
    "golden_path_crosstalk_events",
    "Events that reached a session they did not belong to",
);
const DUPLICATES: KindFamily = KindFamily::counter_increment(
    "golden_path_duplicate_events",
    "Expected events received more than once",
);
const UNEXPECTED: KindFamily = KindFamily::counter_increment(
    "golden_path_unexpected_events",
    "Frames that were not an expected or ignored event (other types, non-JSON, binary)",
);
/// Failed runs by `step`, the user-level step the failed phase belongs to (resolve, TCP and
/// TLS are all `connect`), and `reason`.
const FAILURES: KindFamily = KindFamily::failures(
    "golden_path_failures",
    "Failed golden-path runs by the step that broke and why",
    &[
        (Phase::Login, "login"),
        (Phase::Handshake, "handshake"),
        (Phase::Send, "send"),
        (Phase::Events, "event"),
        (Phase::Close, "close"),
    ],
    "connect",
);

/// Why a `golden_path` spec does not build.
#[derive(Debug, thiserror::Error)]
pub(crate) enum GoldenError {
    #[error("invalid websocket url: {0}")]
    WsUrl(url::ParseError),
    #[error("\"websocket.url\" must be a ws:// or wss:// URL with a host")]
    NotWs,
    /// Both a secret and its file, or a file that cannot be read.
    #[error("{0}")]
    Secret(String),
    #[error("invalid login url: {0}")]
    LoginUrl(url::ParseError),
    #[error("give either \"login\" or \"token\"/\"token_file\"")]
    Credentials,
    #[error("\"events\" must name at least one event type")]
    NoEvents,
    #[error("\"sessions\" must be between 1 and 100")]
    Sessions,
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("give \"cert_file\" and \"key_file\" together")]
    CertWithoutKey,
    #[error("cannot build the HTTP client: {0}")]
    Client(reqwest::Error),
    #[error(
        "websocket.auth: bearer sends the session's token as Authorization: give bearer_token_file, google_id_token or oauth2 with another websocket.auth"
    )]
    BearerTwice,
    /// The shared HTTP client settings (credential, proxy).
    #[error(transparent)]
    Http(#[from] HttpError),
}

/// What a build derives once: the WebSocket URL, TLS config, login client and secrets.
#[derive(Clone, Debug)]
struct Prepared {
    ws_url: Url,
    tls: Arc<rustls::ClientConfig>,
    http: reqwest::Client,
    password: Option<Secret>,
    token: Option<Secret>,
    /// The gateway credential, proxy and address-family order (shared with `http`).
    client: Client,
    /// Whether the login shares the WebSocket's origin, so that the credential goes to it.
    login_gets_credential: bool,
}

/// A built `golden_path` probe.
#[derive(Debug)]
pub(crate) struct GoldenProbe {
    spec: GoldenPathSpec,
    prep: Prepared,
}

impl ProbeKind for GoldenPathSpec {
    const KIND: Kind = Kind::GoldenPath;
    /// The plan's bound: login to final answer within 60 s.
    const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
    type Probe = GoldenProbe;
    type Error = GoldenError;
    const FAMILIES: &'static [KindFamily] = &[
        SECONDS, DELIVERED, EXPECTED, EVENT, CROSSTALK, DUPLICATES, UNEXPECTED, FAILURES,
    ];
    /// `max_seconds` bounds login to the final event of the run.
    const MEASURED: Measured = Measured::Value(SECONDS.name);
    /// `all_events` compares the events delivered with those expected.
    const EVENTS: Option<(&'static str, &'static str)> = Some((DELIVERED.name, EXPECTED.name));

    /// The histogram and the counters at zero, and the events expected.
    fn initial_samples(&self) -> Vec<Sample> {
        vec![
            SECONDS.sample(0.0),
            CROSSTALK.sample(0.0),
            DUPLICATES.sample(0.0),
            UNEXPECTED.sample(0.0),
            EXPECTED.sample(self.events.len() as f64),
        ]
    }

    fn build(&self) -> Result<GoldenProbe, GoldenError> {
        // A credential in a login or WebSocket header (X-E2E-Bypass-Key, Authorization) is
        // masked wherever a server echoes it back.
        let login_headers = self.login.iter().flat_map(|l| l.headers.iter());
        for (k, v) in login_headers.chain(self.websocket.headers.iter()) {
            crate::redact::register_header(k, v);
        }
        let ws_url = Url::parse(&self.websocket.url).map_err(GoldenError::WsUrl)?;
        if !matches!(ws_url.scheme(), "ws" | "wss") || ws_url.host_str().is_none() {
            return Err(GoldenError::NotWs);
        }
        let token =
            pick_secret(&self.token, &self.token_file, "token").map_err(GoldenError::Secret)?;
        let password = match &self.login {
            Some(l) => {
                Url::parse(&l.url).map_err(GoldenError::LoginUrl)?;
                pick_secret(&l.password, &l.password_file, "password")
                    .map_err(GoldenError::Secret)?
            }
            None => None,
        };
        if self.login.is_some() == token.is_some() {
            return Err(GoldenError::Credentials);
        }
        if self.events.is_empty() {
            return Err(GoldenError::NoEvents);
        }
        if self.sessions == 0 || self.sessions > 100 {
            return Err(GoldenError::Sessions);
        }
        let verify = if self.insecure_skip_verify {
            Verify::Nothing
        } else {
            Verify::Full
        };
        let cert = match (&self.cert_file, &self.key_file) {
            (None, None) => None,
            (Some(cert_file), Some(key_file)) => Some(tls::ClientCert {
                cert_file,
                key_file,
            }),
            _ => return Err(GoldenError::CertWithoutKey),
        };
        let base = tls::client_config_with_cert(verify, self.ca_file.as_deref(), cert)?;
        let mut ws_tls = (*base).clone();
        ws_tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let client = self.client()?;
        let http = reqwest::Client::builder()
            .connector_layer(crate::probe::common::self_connect::RefuseSelfConnect)
            .use_preconfigured_tls((*base).clone())
            .user_agent(concat!("pathwatch/", env!("CARGO_PKG_VERSION")))
            .redirect(login::redirect_policy());
        let http = client
            .reqwest(http, self.proxy_url.as_deref())?
            .build()
            .map_err(GoldenError::Client)?;
        let login_gets_credential = self
            .login
            .as_ref()
            .and_then(|l| Url::parse(&l.url).ok())
            .is_some_and(|l| http_origin(&l) == http_origin(&ws_url));
        Ok(GoldenProbe {
            spec: self.clone(),
            prep: Prepared {
                ws_url,
                tls: Arc::new(ws_tls),
                http,
                password,
                token,
                client,
                login_gets_credential,
            },
        })
    }
}

impl GoldenPathSpec {
    /// The credential, proxy and address-family settings, built as an `http` probe's are.
    fn client(&self) -> Result<Client, GoldenError> {
        let has_auth = self.bearer_token_file.is_some()
            || self.google_id_token.is_some()
            || self.oauth2.is_some();
        if has_auth && self.websocket.auth == WsAuth::Bearer {
            return Err(GoldenError::BearerTwice);
        }
        let login_headers = self.login.iter().flat_map(|l| l.headers.keys());
        let authorization_header = login_headers
            .chain(self.websocket.headers.keys())
            .any(|k| k.eq_ignore_ascii_case("authorization"));
        // Token requests trust what the login and the WebSocket trust, without the client
        // certificate.
        let verify = if self.insecure_skip_verify {
            Verify::Nothing
        } else {
            Verify::Full
        };
        let token_tls = tls::client_config(verify, self.ca_file.as_deref())?;
        Ok(Client::build(
            Fields {
                bearer_token_file: self.bearer_token_file.as_deref(),
                google_id_token: self.google_id_token.as_ref(),
                oauth2: self.oauth2.as_ref(),
                proxy_url: self.proxy_url.as_deref(),
                ip_protocol: self.ip_protocol,
                ip_protocol_fallback: self.ip_protocol_fallback,
                authorization_header,
            },
            &token_tls,
        )?)
    }
}

/// The origin a URL's requests go to, a WebSocket's written as the HTTP origin it upgrades
/// from (`ws` as `http`, `wss` as `https`): where the gateway credential may go.
fn http_origin(url: &Url) -> Option<(&'static str, String, u16)> {
    let scheme = match url.scheme() {
        "http" | "ws" => "http",
        "https" | "wss" => "https",
        _ => return None,
    };
    Some((
        scheme,
        url.host_str()?.to_string(),
        url.port_or_known_default()?,
    ))
}

impl Probe for GoldenProbe {
    async fn run(&self, trace: &Trace) -> Result<Outcome, ProbeError> {
        probe(self, trace).await
    }
}

/// What the event step saw, merged over sessions: the golden-path metrics come from here.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GoldenObs {
    /// The event types the probe waits for, in the configured order.
    pub expected: Vec<String>,
    /// Per expected event: latency from the send (slowest session), None if any session
    /// has not seen it.
    pub arrived: Vec<Option<Duration>>,
    /// Expected events seen again, summed over sessions.
    pub duplicates: u64,
    /// Frames of a type not expected nor ignored, or not JSON at all, summed over sessions.
    pub unexpected: u64,
    /// Expected events that belong to another run's thread or another user, summed over sessions.
    pub crosstalk: u64,
    /// Login to the final expected event (slowest session), when every event arrived.
    pub total: Option<Duration>,
}

impl GoldenObs {
    pub(crate) fn delivered(&self) -> usize {
        self.arrived.iter().filter(|a| a.is_some()).count()
    }

    /// The samples of the `pathwatch_golden_path_*` families: events delivered and
    /// expected, this run's counts, each event's time and login to the final event.
    pub fn samples(&self) -> Vec<Sample> {
        let mut samples = vec![
            DELIVERED.sample(self.delivered() as f64),
            EXPECTED.sample(self.expected.len() as f64),
            CROSSTALK.sample(self.crosstalk as f64),
            DUPLICATES.sample(self.duplicates as f64),
            UNEXPECTED.sample(self.unexpected as f64),
        ];
        for (event, arrived) in self.expected.iter().zip(&self.arrived) {
            if let Some(d) = arrived {
                samples.push(EVENT.sample_with(vec![event.clone()], d.as_secs_f64()));
            }
        }
        if let Some(total) = self.total {
            samples.push(SECONDS.sample(total.as_secs_f64()));
        }
        samples
    }

    fn from_matcher(m: &EventMatcher, expected: &[String], total: Option<Duration>) -> Self {
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

async fn probe(p: &GoldenProbe, trace: &Trace) -> Result<Outcome, ProbeError> {
    let (spec, prep) = (&p.spec, &p.prep);
    let stamp = crate::core::clock::unix_now();
    let board = Board::new(trace, spec.sessions);
    // Session 1 records its phases into the run's trace (so a timeout still shows its
    // progress); the others time theirs apart. Events of all go through the board.
    let others: Vec<Trace> = (1..spec.sessions).map(|_| Trace::default()).collect();
    // The gateway credential: fetched (or taken from its cache) once per run.
    let authorization = prep.client.authorization().await?;
    let auth = authorization.as_ref();
    let mut runs = Vec::with_capacity(spec.sessions as usize);
    runs.push(session(spec, prep, auth, 1, stamp, trace, &board));
    for (i, t) in others.iter().enumerate() {
        runs.push(session(spec, prep, auth, i as u32 + 2, stamp, t, &board));
    }
    let results = futures_util::future::join_all(runs).await;
    if auth.is_some()
        && results
            .iter()
            .any(|r| r.as_ref().is_err_and(|e| e.reason == Reason::Auth))
    {
        // A revoked or rotated token: the next run fetches a fresh one.
        prep.client.invalidate();
    }

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
    let mut obs = board.merged().unwrap_or_default();
    // Every session finished; a failure now belongs to the event step all the same.
    if let Some((a, b, thread, events)) = shared_run(&ends) {
        // Two sessions took the same run for theirs: the second one's events were another
        // session's, whatever its thread check said.
        obs.crosstalk += events;
        trace.observe(Observation::Samples(obs.samples()));
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
