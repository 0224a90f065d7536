//! Matching a WebSocket event stream against the expected agent events: pure, no I/O.
//!
//! Events are JSON objects keyed by `type`; fields vary, and a fallback shape nests them under
//! `payload`, so only `type` decides what an event is. `thread_id` / `user_id` (flat or under
//! `payload`) tell whose run an event belongs to: an event of another session is crosstalk.

use serde_json::Value;
use std::time::Duration;

/// What one frame turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// An expected event, first time: its index in the expected list.
    Expected(usize),
    /// An expected event again.
    Duplicate,
    /// A type we were told to ignore (heartbeats, acknowledgements).
    Ignored,
    /// Any other type, a frame without `type`, or not JSON at all.
    Unexpected,
    /// An event that belongs to another session.
    Crosstalk,
    /// An expected event before an earlier one, when order is enforced: (got, wanted).
    OutOfOrder(usize, usize),
}

/// The progress of one session's run.
#[derive(Debug)]
pub struct Matcher {
    expected: Vec<String>,
    ignore: Vec<String>,
    ordered: bool,
    thread_id: String,
    user_id: Option<String>,
    /// Latency from the send of the message, per expected event (None until seen).
    pub arrived: Vec<Option<Duration>>,
    pub duplicates: u64,
    pub unexpected: u64,
    pub crosstalk: u64,
}

impl Matcher {
    pub fn new(
        expected: &[String],
        ignore: &[String],
        ordered: bool,
        thread_id: &str,
        user_id: Option<&str>,
    ) -> Self {
        Matcher {
            expected: expected.to_vec(),
            ignore: ignore.to_vec(),
            ordered,
            thread_id: thread_id.to_string(),
            user_id: user_id.map(str::to_string),
            arrived: vec![None; expected.len()],
            duplicates: 0,
            unexpected: 0,
            crosstalk: 0,
        }
    }

    pub fn done(&self) -> bool {
        self.arrived.iter().all(Option::is_some)
    }

    #[cfg(test)]
    pub fn delivered(&self) -> usize {
        self.arrived.iter().filter(|a| a.is_some()).count()
    }

    /// Names of the events not seen yet.
    pub fn missing(&self) -> Vec<&str> {
        self.expected
            .iter()
            .zip(&self.arrived)
            .filter(|(_, a)| a.is_none())
            .map(|(e, _)| e.as_str())
            .collect()
    }

    /// Classifies a text frame that arrived `at` after the message was sent, and records it.
    pub fn text(&mut self, frame: &str, at: Duration) -> Seen {
        let seen = self.classify(frame);
        match seen {
            Seen::Expected(i) => self.arrived[i] = Some(at),
            Seen::Duplicate => self.duplicates += 1,
            Seen::Unexpected => self.unexpected += 1,
            Seen::Crosstalk => self.crosstalk += 1,
            Seen::Ignored | Seen::OutOfOrder(..) => {}
        }
        seen
    }

    /// A binary frame: the protocol has none, so it is unexpected.
    pub fn binary(&mut self) {
        self.unexpected += 1;
    }

    fn classify(&self, frame: &str) -> Seen {
        let Ok(v) = serde_json::from_str::<Value>(frame) else {
            return Seen::Unexpected;
        };
        let Some(kind) = v.get("type").and_then(Value::as_str) else {
            return Seen::Unexpected;
        };
        if self.ignore.iter().any(|i| i == kind) {
            return Seen::Ignored;
        }
        let Some(index) = self.expected.iter().position(|e| e == kind) else {
            return Seen::Unexpected;
        };
        if self.foreign(&v) {
            return Seen::Crosstalk;
        }
        if self.arrived[index].is_some() {
            return Seen::Duplicate;
        }
        if self.ordered
            && let Some(first_missing) = self.arrived.iter().position(Option::is_none)
            && first_missing < index
        {
            return Seen::OutOfOrder(index, first_missing);
        }
        Seen::Expected(index)
    }

    /// True when the event names a thread or user that is not this session's.
    fn foreign(&self, v: &Value) -> bool {
        let field = |name: &str| {
            v.get(name)
                .or_else(|| v.get("payload").and_then(|p| p.get(name)))
                .and_then(|x| match x {
                    Value::String(s) => Some(s.clone()),
                    Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
        };
        let other_thread = field("thread_id").is_some_and(|t| t != self.thread_id);
        let other_user = match (&self.user_id, field("user_id")) {
            (Some(mine), Some(theirs)) => *mine != theirs,
            _ => false,
        };
        other_thread || other_user
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> Vec<String> {
        [
            "agent_started",
            "agent_thinking",
            "tool_executing",
            "tool_completed",
            "agent_completed",
        ]
        .map(String::from)
        .to_vec()
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn matches_on_type_in_both_shapes_and_ignores_heartbeats() {
        let mut m = Matcher::new(&events(), &["heartbeat".into()], false, "t1", Some("u1"));
        let frames = [
            r#"{"type":"heartbeat","timestamp":1}"#,
            r#"{"type":"agent_started","thread_id":"t1","user_id":"u1","timestamp":"2026-11-25T10:00:00Z"}"#,
            r#"{"type":"tool_executing","payload":{"thread_id":"t1","user_id":"u1"}}"#,
            r#"{"type":"agent_thinking","thread_id":"t1"}"#,
            r#"{"type":"status_update"}"#,
            "<<garbage>>",
            r#"{"no_type":true}"#,
            r#"{"type":"agent_started","thread_id":"t1"}"#,
            r#"{"type":"tool_completed","payload":{"thread_id":"t1"}}"#,
            r#"{"type":"agent_completed","final_response":"ok"}"#,
        ];
        for (i, f) in frames.iter().enumerate() {
            m.text(f, ms(i as u64 * 10));
        }
        assert!(m.done());
        assert_eq!(m.arrived[0], Some(ms(10)));
        assert_eq!(m.arrived[2], Some(ms(20)));
        assert_eq!((m.duplicates, m.unexpected, m.crosstalk), (1, 3, 0));
    }

    #[test]
    fn events_of_another_session_are_crosstalk_not_delivery() {
        let mut m = Matcher::new(&events(), &[], false, "mine", Some("u1"));
        assert_eq!(
            m.text(r#"{"type":"agent_started","thread_id":"theirs"}"#, ms(1)),
            Seen::Crosstalk
        );
        assert_eq!(
            m.text(
                r#"{"type":"agent_started","payload":{"thread_id":"mine","user_id":"u2"}}"#,
                ms(2)
            ),
            Seen::Crosstalk
        );
        assert_eq!(m.delivered(), 0);
        assert_eq!(m.crosstalk, 2);
    }

    #[test]
    fn order_is_enforced_only_when_asked() {
        let frame = r#"{"type":"tool_executing"}"#;
        let mut any = Matcher::new(&events(), &[], false, "t", None);
        assert_eq!(any.text(frame, ms(1)), Seen::Expected(2));
        let mut strict = Matcher::new(&events(), &[], true, "t", None);
        assert_eq!(strict.text(frame, ms(1)), Seen::OutOfOrder(2, 0));
        assert_eq!(strict.missing().len(), 5);
    }
}
