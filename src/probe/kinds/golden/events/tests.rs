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
    let mut m = EventMatcher::new(rules(&e, &i, &f, Isolation::Echo, false), "t1", Some("u1"));
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
    let mut m = EventMatcher::new(
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
    let mut m = EventMatcher::new(
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
    let mut m = EventMatcher::new(rules(&e, &[], &f, Isolation::BindFirst, false), "p", None);
    for t in &e {
        m.text(&format!(r#"{{"type":"{t}"}}"#), ms(1));
    }
    assert!(m.done());
    assert_eq!(m.bound(), None);
}

#[test]
fn an_acknowledged_thread_binds_before_any_event() {
    let (e, f) = (events(), EventFields::default());
    let mut m = EventMatcher::new(rules(&e, &[], &f, Isolation::BindFirst, false), "p", None);
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
    let mut user = EventMatcher::new(rules(&e, &[], &f, Isolation::User, false), "p", Some("u1"));
    assert_eq!(user.text(frame, ms(1)), Seen::Crosstalk);
    assert_eq!(user.text(other_thread, ms(1)), Seen::Expected(1));
    let mut off = EventMatcher::new(rules(&e, &[], &f, Isolation::None, false), "p", Some("u1"));
    assert_eq!(off.text(frame, ms(1)), Seen::Expected(0));
}

#[test]
fn renamed_events_are_explained_as_unexpected_and_missing_ones_as_timeout() {
    let (e, f) = (events(), EventFields::default());
    let mut m = EventMatcher::new(rules(&e, &[], &f, Isolation::BindFirst, false), "p", None);
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
    let mut m = EventMatcher::new(rules(&e, &[], &f, Isolation::BindFirst, false), "p", None);
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
    let mut any = EventMatcher::new(rules(&e, &[], &f, Isolation::BindFirst, false), "t", None);
    assert_eq!(any.text(frame, ms(1)), Seen::Expected(2));
    let mut strict = EventMatcher::new(rules(&e, &[], &f, Isolation::BindFirst, true), "t", None);
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

// Properties: whatever a server sends, in any order and at any length, the matcher does not
// panic, keeps a bounded state, and explains itself with one of its three reasons on one
// short line.

mod properties {
    use super::super::*;
    use crate::probe::kinds::golden::arbitrary::{Frame, frame, json};
    use crate::probe::kinds::golden::shape::{JsonPointer, Pointers};
    use proptest::prelude::*;

    const NAMES: [&str; 8] = [
        "agent_started",
        "agent_thinking",
        "tool_executing",
        "tool_completed",
        "agent_completed",
        "heartbeat",
        "status_update",
        "ack",
    ];
    const IDS: [&str; 5] = ["t1", "t2", "mine", "u1", "u2"];

    fn strings() -> impl Strategy<Value = String> + Clone {
        prop_oneof![
            3 => proptest::sample::select(&NAMES[..]).prop_map(String::from),
            2 => proptest::sample::select(&IDS[..]).prop_map(String::from),
            2 => "\\PC{0,20}",
            1 => any::<String>(),
        ]
    }

    fn keys() -> impl Strategy<Value = String> + Clone {
        prop_oneof![
            4 => proptest::sample::select(&["type", "thread_id", "user_id", "payload", "kind", "0"][..])
                .prop_map(String::from),
            1 => "\\PC{0,8}",
        ]
    }

    fn pointers() -> impl Strategy<Value = Pointers> {
        let one = proptest::sample::select(
            &[
                "",
                "/type",
                "/payload/type",
                "/kind",
                "/0",
                "/payload",
                "/thread_id",
                "/user_id",
                "/a~1b",
            ][..],
        )
        .prop_map(|p| JsonPointer::parse(p).expect("a well-formed pointer"));
        proptest::collection::vec(one, 1..3).prop_map(Pointers)
    }

    fn fields() -> impl Strategy<Value = EventFields> {
        prop_oneof![
            Just(EventFields::default()),
            (pointers(), pointers(), pointers()).prop_map(|(kind, thread_id, user_id)| {
                EventFields {
                    kind,
                    thread_id,
                    user_id,
                }
            }),
        ]
    }

    fn isolation() -> impl Strategy<Value = Isolation> {
        proptest::sample::select(
            &[
                Isolation::Echo,
                Isolation::BindFirst,
                Isolation::User,
                Isolation::None,
            ][..],
        )
    }

    fn name_list(n: std::ops::Range<usize>) -> impl Strategy<Value = Vec<String>> {
        proptest::collection::vec(
            proptest::sample::select(&NAMES[..]).prop_map(String::from),
            n,
        )
    }

    /// The bytes a matcher holds on to (its strings, tallies and slots), one bound thread aside.
    fn retained(m: &EventMatcher) -> usize {
        let tally = |t: &Tally| {
            t.items.capacity() * std::mem::size_of::<(String, u64)>()
                + t.items.iter().map(|(n, _)| n.capacity()).sum::<usize>()
        };
        m.sent_thread.capacity()
            + m.user_id.as_ref().map_or(0, String::capacity)
            + m.arrived.capacity() * std::mem::size_of::<Option<Duration>>()
            + tally(&m.foreign_threads)
            + tally(&m.foreign_users)
            + tally(&m.other_types)
    }

    /// Three tallies of at most KEEP names of MAX_NAME characters (4 bytes at most each,
    /// twice over for the growth of a collected String), plus the slots.
    fn bound(expected: usize, sent: &str, user: Option<&str>) -> usize {
        3 * Tally::KEEP * (std::mem::size_of::<(String, u64)>() + 2 * 4 * Tally::MAX_NAME)
            + expected * std::mem::size_of::<Option<Duration>>()
            + sent.len()
            + user.map_or(0, str::len)
    }

    /// Feeds `frames`, checking what each was found to be and counting, per expected
    /// event, the frames found to be its first arrival in `firsts`.
    fn feed(
        m: &mut EventMatcher,
        frames: &[Frame],
        firsts: &mut [u32],
    ) -> Result<(), TestCaseError> {
        let expected = firsts.len();
        for (i, f) in frames.iter().enumerate() {
            match f {
                Frame::Binary => m.binary(),
                Frame::Text(t) => match m.text(t, Duration::from_millis(i as u64)) {
                    Seen::Expected(k) => {
                        prop_assert!(k < expected);
                        firsts[k] += 1;
                    }
                    Seen::OutOfOrder(got, wanted) => {
                        prop_assert!(wanted < got && got < expected, "{got} {wanted}");
                    }
                    Seen::Duplicate | Seen::Ignored | Seen::Unexpected | Seen::Crosstalk => {}
                },
            }
        }
        Ok(())
    }

    /// After a run: an expected event is counted once, and exactly the counted have arrived.
    fn check_arrivals(m: &EventMatcher, firsts: &[u32]) -> Result<(), TestCaseError> {
        let expected = firsts.len();
        // An expected event is counted once, and exactly the ones counted have arrived.
        for (k, n) in firsts.iter().enumerate() {
            prop_assert!(*n <= 1);
            prop_assert_eq!(*n == 1, m.arrived[k].is_some());
        }
        prop_assert!(m.delivered() <= expected);
        prop_assert_eq!(m.done(), m.missing().is_empty());
        Ok(())
    }

    fn check_explanation(m: &EventMatcher, config_len: usize) -> Result<(), TestCaseError> {
        let (reason, detail) = m.explain();
        prop_assert!(
            matches!(
                reason,
                Reason::Crosstalk | Reason::UnexpectedEvents | Reason::Timeout
            ),
            "{reason:?}"
        );
        // One line whatever the server sent: its strings are cut and made printable.
        prop_assert!(!detail.contains(['\n', '\r']), "{detail:?}");
        prop_assert!(
            detail.len() <= 4096 + 4 * config_len,
            "{} bytes",
            detail.len()
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_frames_under_any_rules_are_matched_without_panic_in_bounded_state(
            expected in name_list(1..6),
            ignore in name_list(0..3),
            ordered in any::<bool>(),
            isolation in isolation(),
            fields in fields(),
            sent in prop_oneof![Just("t1".to_string()), "\\PC{0,12}"],
            user in proptest::option::of(proptest::sample::select(&IDS[..])),
            frames in proptest::collection::vec(frame(json(strings(), keys())), 0..64),
            bind_at in proptest::option::of((0usize..64, strings())),
        ) {
            let rules = Rules { expected: &expected, ignore: &ignore, ordered, isolation, fields: &fields };
            let mut m = EventMatcher::new(rules, &sent, user);
            let (before, after) = match &bind_at {
                Some((at, _)) => frames.split_at((*at).min(frames.len())),
                None => (&frames[..], &[][..]),
            };
            let mut firsts = vec![0; expected.len()];
            feed(&mut m, before, &mut firsts)?;
            if let Some((_, thread)) = &bind_at {
                m.bind(thread.clone());
            }
            feed(&mut m, after, &mut firsts)?;
            check_arrivals(&m, &firsts)?;
            prop_assert!(retained(&m) <= bound(expected.len(), &sent, user));
            // The bound thread is one id the server named, never more than one frame.
            let longest = frames.iter().map(|f| match f { Frame::Text(t) => t.len(), Frame::Binary => 0 }).max().unwrap_or(0);
            let bound_thread = m.bound().map_or(0, str::len);
            prop_assert!(bound_thread <= longest.max(bind_at.as_ref().map_or(0, |(_, t)| t.len())));
            let config_len = expected.concat().len() + sent.len() + 200;
            check_explanation(&m, config_len)?;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(8))]

        /// A long stream of ever new types, threads and users (a server that never stops
        /// talking): the state stays the same size after 20,000 frames as after 200.
        #[test]
        fn a_long_stream_of_new_names_keeps_the_state_bounded(
            template in proptest::collection::vec(json(strings(), keys()), 1..8),
            isolation in isolation(),
        ) {
            let (expected, fields) = (super::events(), EventFields::default());
            let rules = Rules { expected: &expected, ignore: &[], ordered: false, isolation, fields: &fields };
            let mut m = EventMatcher::new(rules, "t1", Some("u1"));
            let mut at_200 = 0;
            for i in 0..20_000u64 {
                // Every frame new: a type, a thread and a user never seen before, or one of
                // the generated values.
                let frame = match i % 4 {
                    0 => format!(r#"{{"type":"type-{i}"}}"#),
                    1 => format!(r#"{{"type":"agent_started","thread_id":"thread-{i}"}}"#),
                    2 => format!(r#"{{"type":"agent_thinking","user_id":"user-{i}"}}"#),
                    _ => template[(i as usize / 4) % template.len()].to_string(),
                };
                m.text(&frame, Duration::from_millis(i));
                if i == 200 {
                    at_200 = retained(&m);
                }
            }
            let at_end = retained(&m);
            prop_assert!(at_end <= bound(expected.len(), "t1", Some("u1")), "{at_end} bytes");
            prop_assert!(at_end <= at_200.max(bound(expected.len(), "t1", Some("u1"))));
            prop_assert!(m.foreign_threads.items.len() <= Tally::KEEP);
            prop_assert!(m.other_types.items.len() <= Tally::KEEP);
            check_explanation(&m, 400)?;
        }
    }
}
