//! Matching a WebSocket event stream against the expected agent events: pure, no I/O.
//!
//! An event's name, thread and user are read at configured JSON pointers (by default `type`,
//! `thread_id` and `user_id`, flat or under `payload`), and only the name decides what an event
//! is. The isolation rule ([`Isolation`]) decides whose events count: an expected event of
//! another thread or user is crosstalk. When a run ends without every event, [`Matcher::explain`]
//! says why in terms of what arrived.

use super::shape::{EventFields, Isolation};
use crate::probe::Reason;
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
    /// Any other type, a frame without a type, or not JSON at all.
    Unexpected,
    /// An expected event that belongs to another run (thread) or user.
    Crosstalk,
    /// An expected event before an earlier one, when order is enforced: (got, wanted).
    OutOfOrder(usize, usize),
}

/// The rules a run is matched by (borrowed from the probe's spec).
#[derive(Clone, Copy, Debug)]
pub struct Rules<'a> {
    pub expected: &'a [String],
    pub ignore: &'a [String],
    pub ordered: bool,
    pub isolation: Isolation,
    pub fields: &'a EventFields,
}

/// Counts per name, keeping at most [`Tally::KEEP`] names (the rest are summed): a detail
/// stays short whatever the server sends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    items: Vec<(String, u64)>,
    others: u64,
}

impl Tally {
    const KEEP: usize = 4;
    /// Names are the server's strings: cut so a detail stays one readable line.
    const MAX_NAME: usize = 48;

    pub fn add(&mut self, name: &str) {
        let name = printable(name, Self::MAX_NAME);
        if let Some(item) = self.items.iter_mut().find(|(n, _)| *n == name) {
            item.1 += 1;
        } else if self.items.len() < Self::KEEP {
            self.items.push((name, 1));
        } else {
            self.others += 1;
        }
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.others == 0
    }

    /// `agent.started ×2, typing ×1 and 3 more`
    pub fn list(&self) -> String {
        let mut s = self
            .items
            .iter()
            .map(|(n, c)| format!("{n} ×{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        if self.others > 0 {
            s.push_str(&format!(" and {} more", self.others));
        }
        s
    }
}

/// A server's string made fit for a one-line detail: at most `max` characters, control
/// characters (a newline could forge a log line) shown as `?`.
pub fn printable(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The progress of one session's run.
#[derive(Debug)]
pub struct Matcher<'a> {
    rules: Rules<'a>,
    /// The thread id pathwatch put in its message.
    sent_thread: String,
    user_id: Option<String>,
    /// The thread the run is bound to (`bind_first`), once known.
    bound: Option<String>,
    /// Latency from the send of the message, per expected event (None until seen).
    pub arrived: Vec<Option<Duration>>,
    pub duplicates: u64,
    pub unexpected: u64,
    pub crosstalk: u64,
    foreign_threads: Tally,
    foreign_users: Tally,
    other_types: Tally,
}

impl<'a> Matcher<'a> {
    pub fn new(rules: Rules<'a>, sent_thread: &str, user_id: Option<&str>) -> Self {
        Matcher {
            rules,
            sent_thread: sent_thread.to_string(),
            user_id: user_id.map(str::to_string),
            bound: None,
            arrived: vec![None; rules.expected.len()],
            duplicates: 0,
            unexpected: 0,
            crosstalk: 0,
            foreign_threads: Tally::default(),
            foreign_users: Tally::default(),
            other_types: Tally::default(),
        }
    }

    /// Binds the run to `thread` (the server's acknowledgement named it), under `bind_first`.
    pub fn bind(&mut self, thread: String) {
        if self.rules.isolation == Isolation::BindFirst {
            self.bound = Some(thread);
        }
    }

    /// The thread this run is bound to, if any.
    pub fn bound(&self) -> Option<&str> {
        self.bound.as_deref()
    }

    pub fn done(&self) -> bool {
        self.arrived.iter().all(Option::is_some)
    }

    pub fn delivered(&self) -> usize {
        self.arrived.iter().filter(|a| a.is_some()).count()
    }

    /// Names of the events not seen yet.
    pub fn missing(&self) -> Vec<&str> {
        self.rules
            .expected
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
        self.other_types.add("<binary>");
    }

    fn classify(&mut self, frame: &str) -> Seen {
        let Ok(v) = serde_json::from_str::<Value>(frame) else {
            self.other_types.add("<not JSON>");
            return Seen::Unexpected;
        };
        let Some(kind) = self.rules.fields.kind.text(&v) else {
            self.other_types.add("<no type>");
            return Seen::Unexpected;
        };
        if self.rules.ignore.contains(&kind) {
            return Seen::Ignored;
        }
        let Some(index) = self.rules.expected.iter().position(|e| *e == kind) else {
            self.other_types.add(&kind);
            return Seen::Unexpected;
        };
        if !self.ours(&v) {
            return Seen::Crosstalk;
        }
        if self.arrived[index].is_some() {
            return Seen::Duplicate;
        }
        if self.rules.ordered
            && let Some(first_missing) = self.arrived.iter().position(Option::is_none)
            && first_missing < index
        {
            return Seen::OutOfOrder(index, first_missing);
        }
        Seen::Expected(index)
    }

    /// Whether an expected event belongs to this run under the isolation rule; binds the run
    /// to its thread when it is the first to name one (`bind_first`), and tallies the
    /// thread or user of one that does not belong.
    fn ours(&mut self, v: &Value) -> bool {
        let iso = self.rules.isolation;
        if iso == Isolation::None {
            return true;
        }
        if let (Some(mine), Some(theirs)) = (&self.user_id, self.rules.fields.user_id.text(v))
            && *mine != theirs
        {
            self.foreign_users.add(&theirs);
            return false;
        }
        let Some(thread) = self.rules.fields.thread_id.text(v) else {
            // No thread named: the connection is the scope.
            return true;
        };
        let mine = match iso {
            Isolation::Echo => thread == self.sent_thread,
            Isolation::BindFirst => match &self.bound {
                Some(b) => *b == thread,
                None => {
                    self.bound = Some(thread.clone());
                    true
                }
            },
            Isolation::User | Isolation::None => true,
        };
        if !mine {
            self.foreign_threads.add(&thread);
        }
        mine
    }

    /// Why the run has not got every event, from what arrived: `crosstalk` when events of
    /// another thread or user came, `unexpected_events` when no expected event came but
    /// frames of other types did, otherwise `timeout` (the caller may name it otherwise).
    pub fn explain(&self) -> (Reason, String) {
        let counted = format!("{}/{} events counted", self.delivered(), self.arrived.len());
        let missing = self.missing().join(", ");
        let counted = if missing.is_empty() {
            counted
        } else {
            format!("{counted}, missing: {missing}")
        };
        let mut uncounted = String::new();
        if !self.other_types.is_empty() {
            uncounted = format!("; other types: {}", self.other_types.list());
        }
        if self.crosstalk > 0 {
            let mut whose = Vec::new();
            if !self.foreign_threads.is_empty() {
                whose.push(format!("thread {}", self.foreign_threads.list()));
            }
            if !self.foreign_users.is_empty() {
                whose.push(format!("user {}", self.foreign_users.list()));
            }
            let bound = match &self.bound {
                Some(b) if *b != self.sent_thread => {
                    format!(", bound to {}", printable(b, Tally::MAX_NAME))
                }
                _ => String::new(),
            };
            return (
                Reason::Crosstalk,
                format!(
                    "{} events of another run ({}), sent {}{bound} (isolation {}); {counted}{uncounted}",
                    self.crosstalk,
                    whose.join("; "),
                    self.sent_thread,
                    self.rules.isolation.as_str(),
                ),
            );
        }
        if self.delivered() == 0 && self.unexpected > 0 {
            return (
                Reason::UnexpectedEvents,
                format!(
                    "no expected event, but {} frames of other types: {} (event type read at {}; missing: {missing})",
                    self.unexpected,
                    self.other_types.list(),
                    self.rules.fields.kind.describe(),
                ),
            );
        }
        (Reason::Timeout, format!("{counted}{uncounted}"))
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

    fn rules<'a>(
        expected: &'a [String],
        ignore: &'a [String],
        fields: &'a EventFields,
        isolation: Isolation,
        ordered: bool,
    ) -> Rules<'a> {
        Rules {
            expected,
            ignore,
            ordered,
            isolation,
            fields,
        }
    }

    #[test]
    fn matches_on_type_in_both_shapes_and_ignores_heartbeats() {
        let (e, i, f) = (events(), vec!["heartbeat".into()], EventFields::default());
        let mut m = Matcher::new(rules(&e, &i, &f, Isolation::Echo, false), "t1", Some("u1"));
        let frames = [
            r#"{"type":"heartbeat","timestamp":1}"#,
            r#"{"type":"agent_started","thread_id":"t1","user_id":"u1","timestamp":"2026-11-25T10:00:00Z"}"#,
            r#"{"type":"tool_executing","payload":{"thread_id":"t1","user_id":"u1"}}"#,
            r#"{"type":"agent_thinking","thread_id":"t1"}"#,
            r#"{"type":"status_update"}"#,
            "<<garbage>>",
            r#"{"no_type":true}"#,
            r#"{"type":"agent_started","thread_id":"t1"}"#,
            r#"{"payload":{"type":"tool_completed","thread_id":"t1"}}"#,
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
    fn echo_counts_another_thread_or_user_as_crosstalk_and_says_whose() {
        let (e, f) = (events(), EventFields::default());
        let mut m = Matcher::new(
            rules(&e, &[], &f, Isolation::Echo, false),
            "mine",
            Some("u1"),
        );
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
        let (reason, detail) = m.explain();
        assert_eq!(reason, Reason::Crosstalk);
        assert!(
            detail.starts_with(
                "2 events of another run (thread theirs ×1; user u2 ×1), sent mine (isolation echo); 0/5 events counted"
            ),
            "{detail}"
        );
    }

    #[test]
    fn bind_first_takes_the_servers_thread_then_flags_any_other() {
        let (e, f) = (events(), EventFields::default());
        let mut m = Matcher::new(
            rules(&e, &[], &f, Isolation::BindFirst, false),
            "pathwatch-1",
            Some("u1"),
        );
        let ev = |t: &str, th: &str| format!(r#"{{"type":"{t}","thread_id":"{th}"}}"#);
        assert_eq!(
            m.text(&ev("agent_started", "thread-aa"), ms(1)),
            Seen::Expected(0)
        );
        assert_eq!(m.bound(), Some("thread-aa"));
        assert_eq!(
            m.text(&ev("agent_thinking", "thread-3f2a"), ms(2)),
            Seen::Crosstalk
        );
        assert_eq!(
            m.text(&ev("agent_thinking", "thread-aa"), ms(3)),
            Seen::Expected(1)
        );
        let (reason, detail) = m.explain();
        assert_eq!(reason, Reason::Crosstalk);
        assert!(detail.contains("thread thread-3f2a ×1"), "{detail}");
        assert!(
            detail.contains("sent pathwatch-1, bound to thread-aa"),
            "{detail}"
        );
    }

    #[test]
    fn bind_first_without_thread_ids_counts_on_the_connection() {
        let (e, f) = (events(), EventFields::default());
        let mut m = Matcher::new(rules(&e, &[], &f, Isolation::BindFirst, false), "p", None);
        for t in &e {
            m.text(&format!(r#"{{"type":"{t}"}}"#), ms(1));
        }
        assert!(m.done());
        assert_eq!(m.bound(), None);
    }

    #[test]
    fn an_acknowledged_thread_binds_before_any_event() {
        let (e, f) = (events(), EventFields::default());
        let mut m = Matcher::new(rules(&e, &[], &f, Isolation::BindFirst, false), "p", None);
        m.bind("from-ack".into());
        assert_eq!(
            m.text(
                r#"{"type":"agent_started","thread_id":"first-event"}"#,
                ms(1)
            ),
            Seen::Crosstalk
        );
    }

    #[test]
    fn user_and_off_look_at_fewer_ids() {
        let (e, f) = (events(), EventFields::default());
        let frame = r#"{"type":"agent_started","thread_id":"x","user_id":"u2"}"#;
        let other_thread = r#"{"type":"agent_thinking","thread_id":"y","user_id":"u1"}"#;
        let mut user = Matcher::new(rules(&e, &[], &f, Isolation::User, false), "p", Some("u1"));
        assert_eq!(user.text(frame, ms(1)), Seen::Crosstalk);
        assert_eq!(user.text(other_thread, ms(1)), Seen::Expected(1));
        let mut off = Matcher::new(rules(&e, &[], &f, Isolation::None, false), "p", Some("u1"));
        assert_eq!(off.text(frame, ms(1)), Seen::Expected(0));
    }

    #[test]
    fn renamed_events_are_explained_as_unexpected_and_missing_ones_as_timeout() {
        let (e, f) = (events(), EventFields::default());
        let mut m = Matcher::new(rules(&e, &[], &f, Isolation::BindFirst, false), "p", None);
        for t in ["agent.started", "agent.thinking", "typing"] {
            m.text(&format!(r#"{{"type":"{t}"}}"#), ms(1));
        }
        let (reason, detail) = m.explain();
        assert_eq!(reason, Reason::UnexpectedEvents);
        assert!(
            detail.starts_with("no expected event, but 3 frames of other types: agent.started ×1, agent.thinking ×1, typing ×1 (event type read at /type, /payload/type"),
            "{detail}"
        );
        m.text(r#"{"type":"agent_started"}"#, ms(2));
        let (reason, detail) = m.explain();
        assert_eq!(reason, Reason::Timeout);
        assert!(
            detail.starts_with("1/5 events counted, missing: agent_thinking, "),
            "{detail}"
        );
    }

    #[test]
    fn a_configured_event_name_location_is_used() {
        let e = events();
        let f = EventFields {
            kind: super::super::shape::Pointers(vec![
                super::super::shape::JsonPointer::parse("/event").unwrap(),
            ]),
            ..EventFields::default()
        };
        let mut m = Matcher::new(rules(&e, &[], &f, Isolation::BindFirst, false), "p", None);
        assert_eq!(
            m.text(r#"{"event":"agent_started"}"#, ms(1)),
            Seen::Expected(0)
        );
        assert_eq!(
            m.text(r#"{"type":"agent_thinking"}"#, ms(1)),
            Seen::Unexpected
        );
    }

    #[test]
    fn order_is_enforced_only_when_asked() {
        let (e, f) = (events(), EventFields::default());
        let frame = r#"{"type":"tool_executing"}"#;
        let mut any = Matcher::new(rules(&e, &[], &f, Isolation::BindFirst, false), "t", None);
        assert_eq!(any.text(frame, ms(1)), Seen::Expected(2));
        let mut strict = Matcher::new(rules(&e, &[], &f, Isolation::BindFirst, true), "t", None);
        assert_eq!(strict.text(frame, ms(1)), Seen::OutOfOrder(2, 0));
        assert_eq!(strict.missing().len(), 5);
    }

    #[test]
    fn server_strings_cannot_break_a_log_line() {
        let mut t = Tally::default();
        t.add("thread-1\nfake log line");
        assert_eq!(t.list(), "thread-1?fake log line ×1");
    }

    #[test]
    fn tallies_stay_short() {
        let mut t = Tally::default();
        for n in ["a", "b", "a", "c", "d", "e", "f", &"x".repeat(100)] {
            t.add(n);
        }
        assert_eq!(t.list(), "a ×2, b ×1, c ×1, d ×1 and 3 more");
    }
}
