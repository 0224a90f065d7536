//! One simulated agent run: the 5 agent events (shaped and faulted as configured), sent through
//! the connection's queue and timed into a `RunTimeline`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::Message;
use serde_json::{Map, Value, json};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::ws::Outgoing;
use super::{Faults, RunTimeline, SimState, clock, lock};

/// The agent events of one run, in the order the real backend sends them.
const AGENT_EVENTS: [&str; 5] = [
    "agent_started",
    "agent_thinking",
    "tool_executing",
    "tool_completed",
    "agent_completed",
];
/// The tool the simulated agent "calls".
const TOOL: &str = "platform_status_lookup";
/// Period of the agent_thinking frames under the `endless_stream` fault.
const ENDLESS_PERIOD: Duration = Duration::from_millis(50);

/// A run's timeline as it is being recorded.
pub(super) struct RunRecord {
    received: Instant,
    timeline: Mutex<RunTimeline>,
}

impl RunRecord {
    /// Records that `event` has just been handed to the socket.
    pub(super) fn push(&self, event: &str) {
        let ms = self.received.elapsed().as_secs_f64() * 1000.0;
        lock(&self.timeline).events.push((event.to_owned(), ms));
    }

    pub(super) fn timeline(&self) -> RunTimeline {
        lock(&self.timeline).clone()
    }
}

/// Everything a run needs from the connection that received the user message.
pub(super) struct RunRequest {
    pub(super) conn_id: u64,
    pub(super) user_id: String,
    pub(super) thread_id: String,
    pub(super) text: String,
    pub(super) tx: mpsc::Sender<Outgoing>,
    /// Cancelled when the connection ends.
    pub(super) cancel: CancellationToken,
    pub(super) received: Instant,
    pub(super) received_unix_ms: f64,
}

/// Records the run and starts it as its own task.
pub(super) fn spawn(state: SimState, req: RunRequest) {
    let record = Arc::new(RunRecord {
        received: req.received,
        timeline: Mutex::new(RunTimeline {
            user_id: req.user_id.clone(),
            thread_id: req.thread_id.clone(),
            received_at_unix_ms: req.received_unix_ms,
            events: Vec::new(),
        }),
    });
    state.record_run(record.clone());
    tokio::spawn(drive(state, req, record));
}

/// The event types to send, after the ordering, drop and duplicate faults.
fn plan(faults: &Faults) -> Vec<&'static str> {
    let mut order = AGENT_EVENTS;
    if faults.out_of_order {
        order.swap(1, 2);
    }
    let mut plan = Vec::with_capacity(order.len() + 1);
    for kind in order {
        if faults.drop_event.as_deref() == Some(kind) {
            continue;
        }
        plan.push(kind);
        if faults.duplicate_event.as_deref() == Some(kind) {
            plan.push(kind);
        }
    }
    plan
}

/// At most `max` chars of `s`, on a char boundary.
fn short(s: &str, max: usize) -> &str {
    s.char_indices().nth(max).map_or(s, |(i, _)| &s[..i])
}

/// The event-specific fields of `kind`.
fn fields(kind: &str, text: &str) -> Value {
    let topic = short(text.trim(), 80);
    match kind {
        "agent_started" => json!({"agent_name": "supervisor_agent"}),
        "agent_thinking" => json!({"thought": format!("Working out how to answer: {topic}")}),
        "tool_executing" => json!({"tool_name": TOOL}),
        "tool_completed" => json!({
            "tool_name": TOOL,
            "result": {"status": "success", "records": 3},
        }),
        "agent_completed" => json!({
            "final_response": format!(
                "I looked into \"{topic}\": the critical path is healthy. The database, the \
                 backend and the agent tools all answered, and your last optimisation run \
                 completed successfully."
            ),
        }),
        _ => json!({}),
    }
}

/// Tool events use the fallback shape (fields nested under `payload`), the others the flat one:
/// clients must match on `type` only.
fn event_frame(
    kind: &str,
    run_id: &str,
    req: &RunRequest,
    timestamp: Value,
    extra: Value,
) -> Value {
    let mut body = Map::new();
    body.insert("run_id".into(), json!(run_id));
    body.insert("thread_id".into(), json!(req.thread_id));
    body.insert("user_id".into(), json!(req.user_id));
    body.insert("timestamp".into(), timestamp);
    if let Value::Object(extra) = extra {
        body.extend(extra);
    }
    if kind.starts_with("tool_") {
        json!({"type": kind, "payload": body})
    } else {
        body.insert("type".into(), json!(kind));
        Value::Object(body)
    }
}

/// The real backend mixes both timestamp forms: even indexes get Unix seconds, odd ones ISO 8601.
fn timestamp(index: usize) -> Value {
    if index.is_multiple_of(2) {
        json!(clock::unix_seconds())
    } else {
        json!(clock::now_iso())
    }
}

/// Sleeps unless the connection ends first; false when it ended.
async fn pause(cancel: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        () = cancel.cancelled() => false,
        () = tokio::time::sleep(d) => true,
    }
}

/// Queues a frame on the run's own connection; false when the connection is gone.
async fn send(
    req: &RunRequest,
    msg: Message,
    record: Option<(Arc<RunRecord>, &'static str)>,
) -> bool {
    tokio::select! {
        () = req.cancel.cancelled() => false,
        sent = req.tx.send(Outgoing { msg, record }) => sent.is_ok(),
    }
}

async fn drive(state: SimState, req: RunRequest, record: Arc<RunRecord>) {
    // Faults are read once: a change applies to the next run, never halfway through one.
    let faults = state.faults();
    let run_id = format!("run_{}", &state.random_hex(&req.thread_id)[..16]);
    let event_pause = state.inner.event_pause + Duration::from_millis(faults.slow_events_ms);
    let plan = plan(&faults);
    tracing::debug!(run = %run_id, user = %req.user_id, events = ?plan, "sim run");
    let line = format!(
        "Agent run {run_id} started for thread {}",
        short(&req.thread_id, 64)
    );
    state.log("INFO", "netra.agent", &line);
    for (i, kind) in plan.iter().copied().enumerate() {
        if !pause(&req.cancel, event_pause).await {
            return;
        }
        let frame = event_frame(kind, &run_id, &req, timestamp(i), fields(kind, &req.text));
        let msg = Message::text(frame.to_string());
        if faults.crosstalk {
            state.broadcast_except(req.conn_id, &msg);
        }
        if !send(&req, msg, Some((record.clone(), kind))).await {
            return;
        }
        if kind == "tool_executing" {
            let status = json!({
                "type": "status_update",
                "status": "processing",
                "message": format!("Running {TOOL}"),
                "timestamp": clock::now_iso(),
            });
            if !send(&req, Message::text(status.to_string()), None).await {
                return;
            }
        }
        if faults.garbage_frames && i + 1 < plan.len() {
            let garbage = [
                Message::text("<<garbage>>"),
                Message::text(json!({"note": "a frame without a type"}).to_string()),
                Message::binary(vec![0xde, 0xad, 0xbe, 0xef]),
            ];
            for msg in garbage {
                if !send(&req, msg, None).await {
                    return;
                }
            }
        }
    }
    if faults.endless_stream {
        // Ends only with the connection: the client's own caps must stop it.
        for i in plan.len().. {
            if !pause(&req.cancel, ENDLESS_PERIOD).await {
                return;
            }
            let extra = json!({"thought": "Still thinking..."});
            let frame = event_frame("agent_thinking", &run_id, &req, timestamp(i), extra);
            if !send(&req, Message::text(frame.to_string()), None).await {
                return;
            }
        }
    }
}
