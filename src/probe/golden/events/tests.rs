//! Tests of events.rs.

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
