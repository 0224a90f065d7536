//! Tests of the simulated golden-path service over real sockets on 127.0.0.1.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

use super::{Faults, SimOptions, SimState, serve};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

const PASSWORD: &str = "pathwatch-demo";
const EVENTS: [&str; 5] = [
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
];
/// Bound on any single wait in these tests.
const WAIT: Duration = Duration::from_secs(5);

/// A running simulator; shuts down when dropped.
struct Sim {
    state: SimState,
    base: String,
    ws_base: String,
    http: reqwest::Client,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn opts() -> SimOptions {
    SimOptions {
        bypass_key: Some("bypass-secret".into()),
        event_pause: Duration::from_millis(10),
        ..SimOptions::default()
    }
}

async fn start(opts: SimOptions) -> Sim {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let state = SimState::new(opts);
    let shutdown = CancellationToken::new();
    let server = tokio::spawn(serve(listener, state.clone(), shutdown.clone()));
    Sim {
        state,
        base: format!("http://{addr}"),
        ws_base: format!("ws://{addr}"),
        http: reqwest::Client::new(),
        shutdown,
        server: Some(server),
    }
}

impl Sim {
    async fn get(&self, path: &str) -> (u16, Value) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn post_json(&self, path: &str, body: &Value) -> (u16, Value) {
        let url = format!("{}{path}", self.base);
        let resp = self.http.post(url).json(body).send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn login(&self, email: &str) -> (String, String) {
        let (status, body) = self
            .post_json(
                "/auth/login",
                &json!({"email": email, "password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let token = body["access_token"].as_str().unwrap().to_owned();
        let user_id = body["user"]["id"].as_str().unwrap().to_owned();
        (token, user_id)
    }

    /// Connects with the subprotocol auth of the real client; returns the echoed protocol.
    async fn connect(&self, token: &str) -> (Ws, String) {
        let mut req = format!("{}/ws", self.ws_base)
            .into_client_request()
            .unwrap();
        let offer = format!("jwt-auth, jwt.{}", URL_SAFE_NO_PAD.encode(token));
        req.headers_mut().insert(
            "sec-websocket-protocol",
            HeaderValue::from_str(&offer).unwrap(),
        );
        let (ws, resp) = tokio_tungstenite::connect_async(req).await.unwrap();
        let proto = resp.headers()["sec-websocket-protocol"]
            .to_str()
            .unwrap()
            .to_owned();
        (ws, proto)
    }

    /// Connects and consumes connection_established.
    async fn connect_ready(&self, token: &str) -> Ws {
        let (mut ws, _) = self.connect(token).await;
        let first = next_json(&mut ws).await;
        assert_eq!(first["type"], "connection_established", "{first}");
        ws
    }

    async fn put_faults(&self, faults: &Faults) {
        let url = format!("{}/admin/faults", self.base);
        let resp = self.http.put(url).json(faults).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
    }
}

async fn recv(ws: &mut Ws) -> Message {
    tokio::time::timeout(WAIT, ws.next())
        .await
        .expect("timed out waiting for a frame")
        .expect("stream ended")
        .expect("websocket error")
}

/// The next JSON text frame that is not a heartbeat.
async fn next_json(ws: &mut Ws) -> Value {
    loop {
        if let Message::Text(t) = recv(ws).await {
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["type"] != "heartbeat" {
                return v;
            }
        }
    }
}

/// A field of an event in either the flat or the nested (`payload`) shape.
fn field<'a>(event: &'a Value, name: &str) -> Option<&'a Value> {
    event.get(name).or_else(|| event.get("payload")?.get(name))
}

/// The agent events of one run, up to and including agent_completed; other frames are skipped.
async fn run_events(ws: &mut Ws) -> Vec<Value> {
    let mut events = Vec::new();
    loop {
        let Message::Text(t) = recv(ws).await else {
            continue;
        };
        let Ok(v) = serde_json::from_str::<Value>(t.as_str()) else {
            continue;
        };
        let kind = v["type"].as_str().unwrap_or_default().to_owned();
        if EVENTS.contains(&kind.as_str()) {
            events.push(v);
            if kind == "agent_completed" {
                return events;
            }
        }
    }
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

async fn send_message(ws: &mut Ws, text: &str, thread_id: &str) {
    let msg = json!({"type": "user_message", "payload": {"text": text, "thread_id": thread_id}});
    ws.send(Message::text(msg.to_string())).await.unwrap();
}

async fn expect_close(ws: &mut Ws, code: u16, reason: &str) {
    match recv(ws).await {
        Message::Close(Some(frame)) => {
            assert_eq!(u16::from(frame.code), code);
            assert_eq!(frame.reason.as_str(), reason);
        }
        other => panic!("expected a close frame, got {other:?}"),
    }
}

#[tokio::test]
async fn login_answers_tokens_401_and_422() {
    let sim = start(opts()).await;
    let body = json!({"email": "a@example.com", "password": PASSWORD});
    let (status, ok) = sim.post_json("/auth/login", &body).await;
    assert_eq!(status, 200);
    assert_eq!(ok["token_type"], "Bearer");
    assert_eq!(ok["expires_in"], 900);
    assert_eq!(ok["user"]["email"], "a@example.com");
    let token = ok["access_token"].as_str().unwrap();
    assert_eq!(token.len(), 32);
    assert_ne!(ok["refresh_token"], ok["access_token"]);
    // The user id is stable across logins; tokens are not.
    let (again, id) = sim.login("a@example.com").await;
    assert_eq!(ok["user"]["id"], id.as_str());
    assert_ne!(again, token);

    let bad = json!({"email": "a@example.com", "password": "nope"});
    let (status, body) = sim.post_json("/auth/login", &bad).await;
    assert_eq!(
        (status, body),
        (401, json!({"detail": "Invalid credentials"}))
    );

    let (status, body) = sim
        .post_json("/auth/login", &json!({"password": PASSWORD}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(
        body,
        json!({"detail": [{"loc": ["body", "email"], "msg": "field required", "type": "value_error.missing"}]})
    );
    let url = format!("{}/auth/login", sim.base);
    let resp = sim.http.post(url).body("not json").send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 422);

    sim.state.set_faults(Faults {
        login_401: true,
        ..Faults::default()
    });
    let (status, _) = sim.post_json("/auth/login", &body_ok()).await;
    assert_eq!(status, 401);
    sim.state.set_faults(Faults {
        db_down: true,
        ..Faults::default()
    });
    let (status, body) = sim.post_json("/auth/login", &body_ok()).await;
    assert_eq!(
        (status, body),
        (503, json!({"detail": "Service Unavailable"}))
    );
}

fn body_ok() -> Value {
    json!({"email": "a@example.com", "password": PASSWORD})
}

#[tokio::test]
async fn e2e_bypass_login() {
    let sim = start(opts()).await;
    let url = format!("{}/auth/e2e/test-auth", sim.base);
    let resp = sim.http.post(&url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = sim
        .http
        .post(&url)
        .header("X-E2E-Bypass-Key", "wrong")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = sim
        .http
        .post(&url)
        .header("X-E2E-Bypass-Key", "bypass-secret")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["user"]["email"], "e2e@pathwatch.test");
    assert_eq!(body["token_type"], "Bearer");
    let resp = sim
        .http
        .post(&url)
        .header("X-E2E-Bypass-Key", "bypass-secret")
        .json(&json!({"email": "bot@example.com"}))
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["user"]["email"], "bot@example.com");
    // The token works on the WebSocket.
    let token = body["access_token"].as_str().unwrap();
    sim.connect_ready(token).await;

    let off = start(SimOptions {
        bypass_key: None,
        ..opts()
    })
    .await;
    let url = format!("{}/auth/e2e/test-auth", off.base);
    let resp = off
        .http
        .post(url)
        .header("X-E2E-Bypass-Key", "x")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}

#[tokio::test]
async fn health_follows_faults_and_startup() {
    let sim = start(opts()).await;
    let (status, body) = sim.get("/health").await;
    assert_eq!((status, &body["status"]), (200, &json!("healthy")));
    assert!(body["started_at"].as_f64().unwrap() > 1.6e9);
    assert!(body["uptime_seconds"].as_f64().unwrap() >= 0.0);
    assert_eq!(
        sim.get("/health/ready").await,
        (200, json!({"status": "ready"}))
    );
    assert_eq!(sim.get("/api/health/ready").await.0, 200);
    assert_eq!(
        sim.get("/api/health/database").await,
        (200, json!({"status": "healthy", "database": "connected"}))
    );
    assert_eq!(
        sim.get("/auth/health").await,
        (200, json!({"status": "healthy"}))
    );

    sim.state.set_faults(Faults {
        health_503: true,
        ..Faults::default()
    });
    for path in [
        "/health",
        "/health/ready",
        "/api/health/ready",
        "/api/health/database",
        "/auth/health",
    ] {
        assert_eq!(sim.get(path).await.0, 503, "{path}");
    }

    sim.state.set_faults(Faults {
        db_down: true,
        ..Faults::default()
    });
    let reason = "Database connectivity failed";
    let (status, body) = sim.get("/health").await;
    assert_eq!((status, &body["status"]), (503, &json!("unhealthy")));
    // The real /health/ready does not look at the database.
    assert_eq!(sim.get("/health/ready").await.0, 200);
    assert_eq!(sim.get("/api/health/ready").await.0, 503);
    assert_eq!(
        sim.get("/api/health/database").await,
        (
            503,
            json!({"detail": {"status": "unhealthy", "reason": reason}})
        )
    );
    assert_eq!(
        sim.get("/auth/health").await,
        (503, json!({"status": "unhealthy", "reason": reason}))
    );

    sim.state.set_faults(Faults {
        startup_delay_ms: 300,
        ..Faults::default()
    });
    let resp = sim
        .http
        .post(format!("{}/admin/restart", sim.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let (status, body) = sim.get("/health").await;
    assert_eq!((status, &body["status"]), (503, &json!("starting")));
    assert!(body["uptime_seconds"].as_f64().unwrap() < 0.3);
    assert_eq!(sim.get("/health/ready").await.0, 503);
    // The auth service did not restart.
    assert_eq!(sim.get("/auth/health").await.0, 200);
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(sim.get("/health").await.0, 200);

    sim.state.set_faults(Faults {
        startup_fails: true,
        ..Faults::default()
    });
    let (status, body) = sim.get("/api/health/ready").await;
    assert_eq!((status, &body["status"]), (503, &json!("starting")));
}

#[tokio::test]
async fn websocket_run_delivers_five_events_in_order() {
    let sim = start(opts()).await;
    let (token, user_id) = sim.login("run@example.com").await;
    let (mut ws, proto) = sim.connect(&token).await;
    assert_eq!(proto, format!("jwt.{}", URL_SAFE_NO_PAD.encode(&token)));
    let first = next_json(&mut ws).await;
    assert_eq!(first["type"], "connection_established");
    assert_eq!(first["user_id"], user_id.as_str());
    assert!(first["connection_id"].is_string());
    assert!(first["timestamp"].as_str().unwrap().ends_with('Z'));

    send_message(&mut ws, "How is my last optimisation?", "t-1").await;
    let mut saw_status_update = false;
    let mut events = Vec::new();
    while events.len() < 5 {
        let v = next_json(&mut ws).await;
        if v["type"] == "status_update" {
            saw_status_update = true;
            continue;
        }
        events.push(v);
    }
    assert!(saw_status_update);
    assert_eq!(types(&events), EVENTS);
    let mut numeric = 0;
    for e in &events {
        assert_eq!(field(e, "thread_id").unwrap(), "t-1", "{e}");
        assert_eq!(field(e, "user_id").unwrap(), user_id.as_str(), "{e}");
        assert!(field(e, "run_id").unwrap().is_string(), "{e}");
        numeric += usize::from(field(e, "timestamp").unwrap().is_number());
    }
    // Both timestamp forms occur.
    assert!(numeric > 0 && numeric < 5);
    assert!(
        events[2].get("payload").is_some(),
        "tool events use the nested shape"
    );
    assert!(
        events[0].get("payload").is_none(),
        "agent events use the flat shape"
    );
    let answer = field(&events[4], "final_response")
        .unwrap()
        .as_str()
        .unwrap();
    assert!(answer.contains("How is my last optimisation?"));

    // A second run on the same connection, started the other way, gets its own thread.
    let start_agent = json!({"type": "start_agent", "payload": {"user_request": "again"}});
    ws.send(Message::text(start_agent.to_string()))
        .await
        .unwrap();
    let second = run_events(&mut ws).await;
    assert_eq!(types(&second), EVENTS);
    let thread = field(&second[0], "thread_id").unwrap().as_str().unwrap();
    assert!(!thread.is_empty() && thread != "t-1");

    let (status, runs) = sim.get("/admin/runs").await;
    assert_eq!(status, 200);
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["thread_id"], "t-1");
    assert_eq!(runs[0]["user_id"], user_id.as_str());
    let timeline = runs[0]["events"].as_array().unwrap();
    let names: Vec<&str> = timeline.iter().map(|e| e[0].as_str().unwrap()).collect();
    assert_eq!(names, EVENTS);
    let ms: Vec<f64> = timeline.iter().map(|e| e[1].as_f64().unwrap()).collect();
    assert!(
        ms[0] >= 10.0 && ms.windows(2).all(|w| w[0] <= w[1]),
        "{ms:?}"
    );
    assert_eq!(sim.state.runs().len(), 2);
}

#[tokio::test]
async fn websocket_token_fallbacks_and_ping() {
    let sim = start(opts()).await;
    let token = sim.state.issue_token("static@example.com");
    let mut req = format!("{}/api/v1/websocket", sim.ws_base)
        .into_client_request()
        .unwrap();
    let bearer = HeaderValue::from_str(&format!("Bearer {token}")).unwrap();
    req.headers_mut().insert("authorization", bearer);
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "connection_established");
    ws.send(Message::text(r#"{"type":"ping"}"#)).await.unwrap();
    ws.send(Message::text(r#"{"type":"something_else"}"#))
        .await
        .unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "pong");

    let url = format!("{}/ws?token={token}", sim.ws_base);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    assert_eq!(next_json(&mut ws).await["type"], "connection_established");
}

#[tokio::test]
async fn websocket_without_token_is_refused_401() {
    let sim = start(opts()).await;
    for url in [
        format!("{}/ws", sim.ws_base),
        format!("{}/ws?token=forged", sim.ws_base),
    ] {
        match tokio_tungstenite::connect_async(url).await {
            Err(tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status().as_u16(), 401);
                let body: Value = serde_json::from_slice(resp.body().as_deref().unwrap()).unwrap();
                assert_eq!(body, json!({"detail": "Not authenticated"}));
            }
            other => panic!("expected HTTP 401, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn websocket_closes_1011_when_backend_not_ready() {
    let sim = start(opts()).await;
    let (token, _) = sim.login("c@example.com").await;
    for (faults, reason) in [
        (
            Faults {
                ws_close_1011: true,
                ..Faults::default()
            },
            "backend not ready",
        ),
        (
            Faults {
                db_down: true,
                ..Faults::default()
            },
            "Database connectivity failed",
        ),
        (
            Faults {
                startup_fails: true,
                ..Faults::default()
            },
            "backend not ready",
        ),
    ] {
        sim.put_faults(&faults).await;
        let (mut ws, _) = sim.connect(&token).await;
        expect_close(&mut ws, 1011, reason).await;
    }
}

#[tokio::test]
async fn crosstalk_leaks_a_run_to_other_users() {
    let sim = start(opts()).await;
    let (token_a, user_a) = sim.login("alice@example.com").await;
    let (token_b, user_b) = sim.login("bob@example.com").await;
    assert_ne!(user_a, user_b);
    let mut a = sim.connect_ready(&token_a).await;
    let mut b = sim.connect_ready(&token_b).await;
    sim.put_faults(&Faults {
        crosstalk: true,
        ..Faults::default()
    })
    .await;
    send_message(&mut a, "alice's secret question", "thread-a").await;
    let own = run_events(&mut a).await;
    assert_eq!(types(&own), EVENTS);
    let leaked = run_events(&mut b).await;
    assert_eq!(types(&leaked), EVENTS);
    for e in &leaked {
        assert_eq!(field(e, "user_id").unwrap(), user_a.as_str());
        assert_eq!(field(e, "thread_id").unwrap(), "thread-a");
    }
}

#[tokio::test]
async fn event_faults_drop_duplicate_reorder() {
    let sim = start(opts()).await;
    let (token, _) = sim.login("f@example.com").await;
    let mut ws = sim.connect_ready(&token).await;

    sim.put_faults(&Faults {
        drop_event: Some("tool_completed".into()),
        ..Faults::default()
    })
    .await;
    send_message(&mut ws, "one", "t").await;
    let got = run_events(&mut ws).await;
    assert_eq!(
        types(&got),
        [
            "agent_started",
            "agent_thinking",
            "tool_executing",
            "agent_completed"
        ]
    );

    sim.put_faults(&Faults {
        duplicate_event: Some("agent_thinking".into()),
        out_of_order: true,
        ..Faults::default()
    })
    .await;
    send_message(&mut ws, "two", "t").await;
    let got = run_events(&mut ws).await;
    assert_eq!(
        types(&got),
        [
            "agent_started",
            "tool_executing",
            "agent_thinking",
            "agent_thinking",
            "tool_completed",
            "agent_completed"
        ]
    );
}

#[tokio::test]
async fn garbage_endless_and_heartbeats() {
    let sim = start(SimOptions {
        heartbeat: Duration::from_millis(20),
        ..opts()
    })
    .await;
    let (token, _) = sim.login("g@example.com").await;
    let mut ws = sim.connect_ready(&token).await;
    sim.put_faults(&Faults {
        garbage_frames: true,
        endless_stream: true,
        slow_events_ms: 30,
        ..Faults::default()
    })
    .await;
    send_message(&mut ws, "noise", "t").await;
    let (mut garbage, mut untyped, mut binary, mut heartbeats) = (0, 0, 0, 0);
    let mut events = Vec::new();
    let mut after_completed = 0;
    while after_completed < 3 {
        match recv(&mut ws).await {
            Message::Binary(_) => binary += 1,
            Message::Text(t) => match serde_json::from_str::<Value>(t.as_str()) {
                Err(_) => garbage += 1,
                Ok(v) => match v["type"].as_str() {
                    None => untyped += 1,
                    Some("heartbeat") => heartbeats += 1,
                    Some(kind) if events.last() == Some(&"agent_completed".to_owned()) => {
                        assert_eq!(kind, "agent_thinking");
                        after_completed += 1;
                    }
                    Some(kind) if EVENTS.contains(&kind) => events.push(kind.to_owned()),
                    Some(_) => {}
                },
            },
            _ => {}
        }
    }
    assert_eq!(events, EVENTS);
    assert_eq!((garbage, untyped, binary), (4, 4, 4));
    // Heartbeats kept flowing while the slow run was in progress.
    assert!(heartbeats >= 3, "{heartbeats}");
}

#[tokio::test]
async fn admin_faults_round_trip() {
    let sim = start(opts()).await;
    assert_eq!(
        sim.get("/admin/faults").await,
        (200, serde_json::to_value(Faults::default()).unwrap())
    );
    let faults = Faults {
        db_down: true,
        drop_event: Some("agent_completed".into()),
        slow_events_ms: 7,
        ..Faults::default()
    };
    sim.put_faults(&faults).await;
    let (status, body) = sim.get("/admin/faults").await;
    assert_eq!(status, 200);
    assert_eq!(serde_json::from_value::<Faults>(body).unwrap(), faults);
    assert_eq!(sim.state.faults(), faults);

    let url = format!("{}/admin/faults", sim.base);
    let resp = sim
        .http
        .put(&url)
        .json(&json!({"db_dwn": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("db_dwn"),
        "{body}"
    );
    assert_eq!(sim.state.faults(), faults, "a rejected PUT changes nothing");
    // Omitted fields reset.
    let resp = sim.http.put(&url).json(&json!({})).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(sim.state.faults(), Faults::default());
    assert_eq!(Faults::default().active(), "{}");
    assert_eq!(
        faults.active(),
        r#"{"db_down":true,"drop_event":"agent_completed","slow_events_ms":7}"#
    );
    assert_eq!(
        sim.get("/nowhere").await,
        (404, json!({"detail": "Not Found"}))
    );
}

#[tokio::test]
async fn restart_and_shutdown_close_open_websockets() {
    let mut sim = start(opts()).await;
    let (token, _) = sim.login("s@example.com").await;
    let mut ws = sim.connect_ready(&token).await;
    sim.state.restart();
    expect_close(&mut ws, 1012, "service restart").await;

    let mut ws = sim.connect_ready(&token).await;
    sim.shutdown.cancel();
    expect_close(&mut ws, 1001, "server shutting down").await;
    let server = sim.server.take().unwrap();
    let served = tokio::time::timeout(WAIT, server).await.unwrap().unwrap();
    assert!(served.is_ok());
}

/// The sim's Google token, as a Bearer header value.
fn bearer() -> String {
    format!("Bearer {}", super::gcp::TOKEN)
}

impl Sim {
    /// GET with the sim's Google token: (status, Retry-After, body text).
    async fn google_get(&self, path: &str) -> (u16, Option<String>, String) {
        let resp = self
            .http
            .get(format!("{}{path}", self.base))
            .header("authorization", bearer())
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let retry = resp
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, retry, resp.text().await.unwrap())
    }

    /// `entries:list` with the token: (status, answer).
    async fn entries_list(&self, body: &Value) -> (u16, Value) {
        let resp = self
            .http
            .post(format!("{}/v2/entries:list", self.base))
            .header("authorization", bearer())
            .json(body)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    /// Every entry since `since` through every page of `page_size`: the texts, and how many
    /// pages it took.
    async fn all_log_messages(&self, since: &str, page_size: u64) -> (Vec<String>, usize) {
        let mut texts = Vec::new();
        let mut token: Option<String> = None;
        for pages in 1.. {
            let mut req = json!({
                "resourceNames": ["projects/netra-staging"],
                "filter": format!("resource.type=\"cloud_run_revision\" AND timestamp>=\"{since}\""),
                "orderBy": "timestamp asc",
                "pageSize": page_size,
            });
            if let Some(t) = &token {
                req["pageToken"] = json!(t);
            }
            let (status, page) = self.entries_list(&req).await;
            assert_eq!(status, 200, "{page}");
            for e in page["entries"].as_array().into_iter().flatten() {
                assert_eq!(
                    e["resource"]["labels"]["service_name"],
                    "netra-backend-staging"
                );
                assert!(
                    e["insertId"].is_string() && e["severity"].is_string(),
                    "{e}"
                );
                texts.push(e["jsonPayload"]["message"].as_str().unwrap().to_owned());
            }
            match page["nextPageToken"].as_str() {
                Some(t) => token = Some(t.to_owned()),
                None => return (texts, pages),
            }
        }
        unreachable!()
    }
}

#[tokio::test]
async fn gcp_metadata_token_and_resources_in_google_shapes() {
    use super::gcp::{CONNECTOR, INSTANCE, SERVICE, connector_path, instance_path, service_path};
    let sim = start(opts()).await;
    let token_url = format!("{}{}", sim.base, super::gcp::TOKEN_PATH);
    let resp = sim.http.get(&token_url).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 403, "Metadata-Flavor is required");
    let resp = sim
        .http
        .get(&token_url)
        .header("Metadata-Flavor", "Google")
        .send()
        .await
        .unwrap();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["access_token"], super::gcp::TOKEN);
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(sim.state.gcp_token_calls(), 1);

    // Without the token: Google's 401 envelope.
    let (status, body) = sim.get(&connector_path(CONNECTOR)).await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["status"], "UNAUTHENTICATED");

    let (status, _, text) = sim.google_get(&connector_path(CONNECTOR)).await;
    assert_eq!(status, 200);
    let c: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(c["state"], "READY");
    assert_eq!(
        c["name"],
        "projects/netra-staging/locations/us-central1/connectors/staging-connector"
    );
    assert_eq!(
        (c["minInstances"].as_u64(), c["maxThroughput"].as_u64()),
        (Some(2), Some(1000))
    );
    let (_, _, text) = sim.google_get(&instance_path(INSTANCE)).await;
    let i: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(i["state"], "RUNNABLE");
    assert_eq!(
        i["connectionName"],
        "netra-staging:us-central1:staging-shared-postgres"
    );
    let (_, _, text) = sim.google_get(&service_path(SERVICE)).await;
    let s: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(s["terminalCondition"]["state"], "CONDITION_SUCCEEDED");
    assert_eq!(s["template"]["vpcAccess"]["egress"], "ALL_TRAFFIC");
    assert_eq!(sim.state.gcp_api_calls(&connector_path(CONNECTOR)), 2);

    let (status, _, text) = sim.google_get(&connector_path("nowhere")).await;
    assert_eq!(status, 404);
    assert!(text.contains("NOT_FOUND"), "{text}");
    sim.state.set_gcp_resource(
        &connector_path("other"),
        super::gcp::connector("other", "CREATING"),
    );
    let (_, _, text) = sim.google_get(&connector_path("other")).await;
    assert!(text.contains("\"CREATING\""), "{text}");
}

#[tokio::test]
async fn gcp_state_switches_and_api_faults() {
    use super::GcpApiFault as F;
    use super::gcp::{CONNECTOR, INSTANCE, SERVICE, connector_path, instance_path, service_path};
    let sim = start(opts()).await;
    let c = connector_path(CONNECTOR);
    sim.put_faults(&Faults {
        connector_state: Some("ERROR".into()),
        cloudsql_state: Some("MAINTENANCE".into()),
        cloud_run_egress: Some("PRIVATE_RANGES_ONLY".into()),
        ..Faults::default()
    })
    .await;
    let get = |path: String| {
        let sim = &sim;
        async move {
            let (_, _, text) = sim.google_get(&path).await;
            serde_json::from_str::<Value>(&text).unwrap()
        }
    };
    assert_eq!(get(c.clone()).await["state"], "ERROR");
    assert_eq!(get(instance_path(INSTANCE)).await["state"], "MAINTENANCE");
    let s = get(service_path(SERVICE)).await;
    assert_eq!(s["template"]["vpcAccess"]["egress"], "PRIVATE_RANGES_ONLY");
    assert_eq!(s["terminalCondition"]["state"], "CONDITION_SUCCEEDED");

    // API faults on the connector's path, set through the admin API as a user would.
    let cases: Vec<(F, u16, Option<&str>, &str)> = vec![
        (F::Status(401), 401, None, "UNAUTHENTICATED"),
        (F::Status(403), 403, None, "PERMISSION_DENIED"),
        (F::Status(404), 404, None, "NOT_FOUND"),
        (F::Status(500), 500, None, "INTERNAL"),
        (F::RateLimited(30), 429, Some("30"), "RESOURCE_EXHAUSTED"),
        (F::Malformed, 200, None, "<!DOCTYPE html>"),
        (
            F::UnknownState("HIBERNATING".into()),
            200,
            None,
            "\"HIBERNATING\"",
        ),
    ];
    for (fault, status, retry, needle) in cases {
        let mut faults = Faults::default();
        faults.gcp_api.insert(c.clone(), fault.clone());
        sim.put_faults(&faults).await;
        let (got, got_retry, text) = sim.google_get(&c).await;
        assert_eq!((got, got_retry.as_deref()), (status, retry), "{fault:?}");
        assert!(text.contains(needle), "{fault:?}: {text}");
    }
    let mut faults = Faults::default();
    faults.gcp_api.insert(c.clone(), F::MissingState);
    faults
        .gcp_api
        .insert(service_path(SERVICE), F::MissingState);
    sim.state.set_faults(faults);
    assert!(get(c.clone()).await.get("state").is_none());
    let s = get(service_path(SERVICE)).await;
    assert!(s["terminalCondition"].get("state").is_none(), "{s}");
    assert_eq!(
        get(instance_path(INSTANCE)).await["state"],
        "RUNNABLE",
        "only that path"
    );

    // The fault switches' JSON, as `PUT /admin/faults` takes it.
    let faults: Faults = serde_json::from_value(json!({
        "gcp_api": {c.clone(): {"rate_limited": 5}},
        "gcp_metadata": "hang",
    }))
    .unwrap();
    assert_eq!(faults.gcp_api[&c], F::RateLimited(5));
    assert_eq!(faults.gcp_metadata, Some(F::Hang));

    sim.state.set_faults(Faults {
        gcp_metadata: Some(F::Status(500)),
        ..Faults::default()
    });
    let resp = sim
        .http
        .get(format!("{}{}", sim.base, super::gcp::TOKEN_PATH))
        .header("Metadata-Flavor", "Google")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 500);
    // A hang answers only after any probe has given up.
    let mut faults = Faults::default();
    faults.gcp_api.insert(c.clone(), F::Hang);
    sim.state.set_faults(faults);
    let hung = sim
        .http
        .get(format!("{}{c}", sim.base))
        .header("authorization", bearer())
        .timeout(Duration::from_millis(300))
        .send()
        .await;
    assert!(hung.unwrap_err().is_timeout());
}

#[tokio::test]
async fn the_service_logs_its_startups_and_the_incident_to_cloud_logging() {
    use super::logging::{DB_SOCKET_FAILED, STARTUP_FAILED, VPC_UNREACHABLE};
    let sim = start(opts()).await;
    let since = super::logging::timestamp(std::time::SystemTime::now() - Duration::from_secs(60));
    let (texts, _) = sim.all_log_messages(&since, 1000).await;
    assert!(
        texts
            .iter()
            .any(|t| t.starts_with("PHASE COMPLETED: DATABASE (")),
        "{texts:?}"
    );
    // A login, then the outage, then a restart with a slow startup.
    sim.login("l@example.com").await;
    sim.state.set_faults(Faults {
        db_down: true,
        ..Faults::default()
    });
    let (status, _) = sim.post_json("/auth/login", &body_ok()).await;
    assert_eq!(status, 503);
    sim.state.set_faults(Faults {
        startup_delay_ms: 5_000,
        ..Faults::default()
    });
    sim.state.restart();
    let (texts, pages) = sim.all_log_messages(&since, 2).await;
    assert!(pages > 3, "paged by 2: {pages}");
    let pos = |needle: &str| texts.iter().position(|t| t.contains(needle));
    let login = pos("Login succeeded for user-").expect("login line");
    let socket = pos(DB_SOCKET_FAILED).expect("socket line");
    let vpc = pos(VPC_UNREACHABLE).expect("vpc line");
    let exit = pos(STARTUP_FAILED).expect("exit line");
    assert!(login < socket && socket < vpc && vpc < exit, "{texts:?}");
    assert_eq!(
        texts
            .iter()
            .filter(|t| t.contains(DB_SOCKET_FAILED))
            .count(),
        2,
        "the outage began, and a login failed: {texts:?}"
    );
    let phases: Vec<f64> = texts
        .iter()
        .filter_map(|t| t.strip_prefix("PHASE COMPLETED: DATABASE ("))
        .map(|t| t.trim_end_matches("s)").parse().unwrap())
        .collect();
    assert_eq!(phases.len(), 2, "{texts:?}");
    assert!(
        phases[1] > 2.0 && phases[1] < 2.5,
        "a 5 s startup: {phases:?}"
    );
    // Each entry once, in time order; nothing before the bound.
    let entries = sim.state.log_entries();
    let later = entries.last().unwrap()["timestamp"]
        .as_str()
        .unwrap()
        .to_owned();
    let (texts, _) = sim.all_log_messages(&later, 1000).await;
    assert!(!texts.is_empty() && texts.len() < 4, "{texts:?}");
}

#[tokio::test]
async fn cloud_logging_checks_the_request_and_answers_queued_faults() {
    use super::LoggingFault;
    let sim = start(opts()).await;
    sim.state.clear_log_entries();
    let since = "2025-01-01T00:00:00Z";
    let ok = json!({
        "resourceNames": ["projects/netra-staging"],
        "filter": format!("timestamp>=\"{since}\""),
        "orderBy": "timestamp asc",
        "pageSize": 10,
    });
    let (status, page) = sim.entries_list(&ok).await;
    assert_eq!(
        (status, page),
        (200, json!({})),
        "an empty log: no entries key"
    );
    let resp = sim
        .http
        .post(format!("{}/v2/entries:list", sim.base))
        .json(&ok)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let no_bound = json!({"resourceNames": ["projects/p"], "filter": "severity>=ERROR", "orderBy": "timestamp asc"});
    assert_eq!(sim.entries_list(&no_bound).await.0, 400);
    let desc = json!({"resourceNames": ["projects/p"], "filter": ok["filter"], "orderBy": "timestamp desc"});
    assert_eq!(sim.entries_list(&desc).await.0, 400);

    sim.state.push_log_entry(super::logging::text_entry(
        "t1",
        "2025-06-01T10:00:00.5Z",
        "ERROR",
        "a line",
    ));
    sim.state
        .queue_logging_fault(LoggingFault::Status(429, Some(7)));
    sim.state.queue_logging_fault(LoggingFault::Malformed);
    let resp = sim
        .http
        .post(format!("{}/v2/entries:list", sim.base))
        .header("authorization", bearer())
        .json(&ok)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    let (status, body) = sim.entries_list(&ok).await;
    assert_eq!((status, body), (200, Value::Null), "cut JSON");
    let (_, page) = sim.entries_list(&ok).await;
    assert_eq!(page["entries"][0]["textPayload"], "a line");
    // Every request but the one without the token.
    assert_eq!(sim.state.logging_requests().len(), 6);
}

/// Serves the sim's Redis on 127.0.0.1:0.
async fn start_redis(sim: &Sim) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(super::serve_redis(
        listener,
        sim.state.clone(),
        sim.shutdown.clone(),
    ));
    addr
}

/// Sends raw RESP and reads one reply line.
async fn redis_call(conn: &mut tokio::io::BufReader<TcpStream>, command: &[&str]) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let mut out = format!("*{}\r\n", command.len());
    for arg in command {
        out.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    conn.get_mut().write_all(out.as_bytes()).await.unwrap();
    let mut line = String::new();
    tokio::time::timeout(WAIT, conn.read_line(&mut line))
        .await
        .unwrap()
        .unwrap();
    line.trim_end().to_owned()
}

#[tokio::test]
async fn redis_answers_auth_ping_select_quit_and_loading() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let sim = start(opts()).await;
    let addr = start_redis(&sim).await;
    let mut c = tokio::io::BufReader::new(TcpStream::connect(addr).await.unwrap());
    assert_eq!(
        redis_call(&mut c, &["PING"]).await,
        "-NOAUTH Authentication required."
    );
    assert!(
        redis_call(&mut c, &["AUTH", "nope"])
            .await
            .starts_with("-WRONGPASS")
    );
    assert!(
        redis_call(&mut c, &["AUTH", "bob", PASSWORD])
            .await
            .starts_with("-WRONGPASS")
    );
    assert_eq!(
        redis_call(&mut c, &["AUTH", "default", PASSWORD]).await,
        "+OK"
    );
    assert_eq!(redis_call(&mut c, &["auth", PASSWORD]).await, "+OK");
    assert_eq!(redis_call(&mut c, &["SELECT", "0"]).await, "+OK");
    assert_eq!(
        redis_call(&mut c, &["SELECT", "16"]).await,
        "-ERR DB index is out of range"
    );
    assert_eq!(redis_call(&mut c, &["ping"]).await, "+PONG");
    assert_eq!(redis_call(&mut c, &["PING", "hi"]).await, "$2");
    let mut rest = String::new();
    c.read_line(&mut rest).await.unwrap();
    assert_eq!(rest, "hi\r\n");
    assert!(
        redis_call(&mut c, &["GET", "k"])
            .await
            .starts_with("-ERR unknown command 'GET'")
    );

    sim.state.set_faults(Faults {
        redis_loading: true,
        ..Faults::default()
    });
    assert_eq!(
        redis_call(&mut c, &["PING"]).await,
        "-LOADING Redis is loading the dataset in memory"
    );
    // While the backend starts, too; AUTH and SELECT still work, as in Redis.
    sim.state.set_faults(Faults {
        startup_delay_ms: 60_000,
        ..Faults::default()
    });
    sim.state.restart();
    assert_eq!(redis_call(&mut c, &["SELECT", "0"]).await, "+OK");
    assert!(redis_call(&mut c, &["PING"]).await.starts_with("-LOADING"));
    sim.state.set_faults(Faults::default());
    assert_eq!(redis_call(&mut c, &["PING"]).await, "+PONG");
    assert_eq!(redis_call(&mut c, &["QUIT"]).await, "+OK");
    let mut end = String::new();
    assert_eq!(c.read_line(&mut end).await.unwrap(), 0, "closed after QUIT");

    // An inline command, as telnet sends it.
    let mut c = tokio::io::BufReader::new(TcpStream::connect(addr).await.unwrap());
    c.get_mut()
        .write_all(format!("AUTH {PASSWORD}\r\nPING\r\n").as_bytes())
        .await
        .unwrap();
    let mut lines = String::new();
    c.read_line(&mut lines).await.unwrap();
    c.read_line(&mut lines).await.unwrap();
    assert_eq!(lines, "+OK\r\n+PONG\r\n");
}

/// Connects until the answer is as wanted (the listener follows the faults asynchronously).
async fn wait_connectable(addr: std::net::SocketAddr, want: bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let ok = TcpStream::connect(addr).await.is_ok();
        if ok == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "connectable={want} never came"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn redis_is_refused_while_the_vpc_connector_is_down() {
    let sim = start(opts()).await;
    let addr = start_redis(&sim).await;
    let mut open = tokio::io::BufReader::new(TcpStream::connect(addr).await.unwrap());
    assert_eq!(redis_call(&mut open, &["AUTH", PASSWORD]).await, "+OK");
    sim.state.set_faults(Faults {
        connector_state: Some("ERROR".into()),
        ..Faults::default()
    });
    wait_connectable(addr, false).await;
    // The open session ends at its next command.
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
    let _ = open.get_mut().write_all(b"PING\r\n").await;
    let mut line = String::new();
    let n = tokio::time::timeout(WAIT, open.read_line(&mut line))
        .await
        .unwrap();
    assert!(matches!(n, Ok(0) | Err(_)), "{line}");
    // READY again: the same address answers.
    sim.state.set_faults(Faults::default());
    wait_connectable(addr, true).await;
    let mut c = tokio::io::BufReader::new(TcpStream::connect(addr).await.unwrap());
    assert_eq!(redis_call(&mut c, &["AUTH", PASSWORD]).await, "+OK");
    assert_eq!(redis_call(&mut c, &["PING"]).await, "+PONG");
}

#[tokio::test]
async fn clickhouse_ping_answers_ok() {
    let sim = start(opts()).await;
    let resp = sim
        .http
        .get(format!("{}/ping", sim.base))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(resp.text().await.unwrap(), "Ok.\n");
}
