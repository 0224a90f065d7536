//! Matching a WebSocket event stream against the expected agent events: pure, no I/O.
//!
//! An event's name, thread and user are read at configured JSON pointers (by default `type`,
//! `thread_id` and `user_id`, flat or under `payload`), and only the name decides what an event
//! is. The isolation rule ([`Isolation`]) decides whose events count: an expected event of
//! another thread or user is crosstalk. When a run ends without every event, [`EventMatcher::explain`]
//! says why in terms of what arrived.

use super::shape::{EventFields, Isolation};
use crate::probe::Reason;
use serde_json::Value;
use std::time::Duration;

/// What one frame turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Seen {
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
pub(crate) struct Rules<'a> {
    pub(crate) expected: &'a [String],
    pub(crate) ignore: &'a [String],
    pub(crate) ordered: bool,
    pub(crate) isolation: Isolation,
    pub(crate) fields: &'a EventFields,
}

/// Counts per name, keeping at most [`Tally::KEEP`] names (the rest are summed): a detail
/// stays short whatever the server sends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    items: Vec<(String, u64)>,
    others: u64,
}

impl Tally {
    const KEEP: usize = 4;
    /// Names are the server's strings: cut so a detail stays one readable line.
    const MAX_NAME: usize = 48;

    pub(crate) fn add(&mut self, name: &str) {
        let name = printable(name, Self::MAX_NAME);
        if let Some(item) = self.items.iter_mut().find(|(n, _)| *n == name) {
            item.1 += 1;
        } else if self.items.len() < Self::KEEP {
            self.items.push((name, 1));
        } else {
            self.others += 1;
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty() && self.others == 0
    }

    /// `agent.started ×2, typing ×1 and 3 more`
    pub(crate) fn list(&self) -> String {
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
pub(crate) fn printable(s: &str, max: usize) -> String {
    s.chars()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

/// The progress of one session's run.
#[derive(Debug)]
pub(super) struct EventMatcher<'a> {
    rules: Rules<'a>,
    /// The thread id pathwatch put in its message.
    sent_thread: String,
    user_id: Option<String>,
    /// The thread the run is bound to (`bind_first`), once known.
    bound: Option<String>,
    /// Latency from the send of the message, per expected event (None until seen).
    pub(crate) arrived: Vec<Option<Duration>>,
    pub(crate) duplicates: u64,
    pub(crate) unexpected: u64,
    pub(crate) crosstalk: u64,
    foreign_threads: Tally,
    foreign_users: Tally,
    other_types: Tally,
}

impl<'a> EventMatcher<'a> {
    pub(super) fn new(rules: Rules<'a>, sent_thread: &str, user_id: Option<&str>) -> Self {
        EventMatcher {
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
    pub(crate) fn bind(&mut self, thread: String) {
        if self.rules.isolation == Isolation::BindFirst {
            self.bound = Some(thread);
        }
    }

    /// The thread this run is bound to, if any.
    pub(crate) fn bound(&self) -> Option<&str> {
        self.bound.as_deref()
    }

    pub(crate) fn done(&self) -> bool {
        self.arrived.iter().all(Option::is_some)
    }

    pub(crate) fn delivered(&self) -> usize {
        self.arrived.iter().filter(|a| a.is_some()).count()
    }

    /// Names of the events not seen yet.
    pub(crate) fn missing(&self) -> Vec<&str> {
        self.rules
            .expected
            .iter()
            .zip(&self.arrived)
            .filter(|(_, a)| a.is_none())
            .map(|(e, _)| e.as_str())
            .collect()
    }

    /// Classifies a text frame that arrived `at` after the message was sent, and records it.
    pub(crate) fn text(&mut self, frame: &str, at: Duration) -> Seen {
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
    pub(crate) fn binary(&mut self) {
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
    pub(crate) fn explain(&self) -> (Reason, String) {
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
mod tests;
