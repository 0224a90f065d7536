//! One session of a golden path: log in, open the WebSocket, send the message, collect the
//! expected events until the final answer, then close.

use super::board::{Board, SessionEnd};
use super::events::{EventMatcher, Rules, Seen};
use super::{GoldenObs, GoldenPathSpec, Prepared, login, ws};
use crate::probe::{Phase, ProbeError, Reason, Trace};
use futures_util::{SinkExt, StreamExt};
use http::HeaderValue;
use std::time::Duration;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// One golden path; `n` is the session number (1-based), `authorization` the gateway
/// credential of this run (to the WebSocket's origin only).
pub(super) async fn session(
    spec: &GoldenPathSpec,
    prep: &Prepared,
    authorization: Option<&HeaderValue>,
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
                            authorization: authorization.filter(|_| prep.login_gets_credential),
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
    let mut matcher = EventMatcher::new(rules, &thread_id, creds.user_id.as_deref());
    board.update(
        n,
        GoldenObs::from_matcher(&matcher, &spec.events, None),
        None,
    );

    let (mut socket, ack) = ws::connect(spec, prep, &creds.token, authorization, trace).await?;
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
    let report = |m: &EventMatcher, total: Option<Duration>| {
        let why = (!m.done()).then(|| m.explain());
        board.update(n, GoldenObs::from_matcher(m, &spec.events, total), why);
    };
    report(&matcher, None);
    let mut frames = 0u32;
    while !matcher.done() {
        let Some(msg) = socket.next().await else {
            return Err(ended(
                &matcher,
                &ProbeError::new(Reason::EventsMissing, "the connection ended"),
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
                        &ProbeError::new(
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
                    &ws::closed(frame.as_ref(), "before every event arrived"),
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
fn ended(m: &EventMatcher, end: &ProbeError) -> ProbeError {
    let (reason, why) = m.explain();
    match reason {
        Reason::Crosstalk | Reason::UnexpectedEvents if end.reason == Reason::EventsMissing => {
            ProbeError::new(reason, format!("{} before every event: {why}", end.detail))
        }
        _ => ProbeError::new(end.reason, format!("{} ({why})", end.detail)),
    }
}
