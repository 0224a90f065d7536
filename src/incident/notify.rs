//! Announcing a status change: one readable log line, and an optional webhook POST that is
//! retried with backoff in its own task, so a slow or dead receiver never delays probing.

use super::spec::WebhookSpec;
use super::{Evaluation, IncidentSpec, Status};
use serde::Serialize;
use std::time::Duration;

/// The webhook's JSON body.
#[derive(Clone, Debug, Serialize)]
pub(crate) struct WebhookBody<'a> {
    pub incident: &'a str,
    pub title: &'a str,
    pub status: Status,
    pub previous: Status,
    pub changed_at_unix: f64,
    /// The log line's text.
    pub(crate) summary: String,
    pub(crate) criteria: &'a [super::CriterionResult],
    /// `Root cause: vpc-connector (is ERROR); 6 failures follow from it`, when probes in a
    /// dependency graph fail (incident::rootcause).
    pub(crate) root_cause: Option<String>,
}

/// `Incident 1278 RESOLVED: database_connect 2.5s < 10s; golden_path 41.2s < 60s; ...`
pub(crate) fn line(spec: &IncidentSpec, eval: &Evaluation) -> String {
    format!(
        "Incident {} {}: {}",
        spec.id,
        eval.status.word(),
        eval.summary()
    )
}

/// Logs a status change; a PRESENT line ends with the root cause when one is known.
pub(crate) fn log_change(
    spec: &IncidentSpec,
    eval: &Evaluation,
    previous: Status,
    root_cause: Option<&str>,
) {
    let mut text = line(spec, eval);
    if let (Status::Present, Some(cause)) = (eval.status, root_cause) {
        text.push_str(". ");
        text.push_str(cause);
    }
    match eval.status {
        Status::Present => tracing::warn!(
            incident = %spec.id, status = eval.status.word(), previous = previous.word(), "{text}"
        ),
        _ => tracing::info!(
            incident = %spec.id, status = eval.status.word(), previous = previous.word(), "{text}"
        ),
    }
}

/// Posts `change` to the webhook in the background.
pub(crate) fn post(client: reqwest::Client, hook: WebhookSpec, incident: String, body: String) {
    tokio::spawn(async move {
        let timeout = hook.timeout.map(|t| t.0).unwrap_or(Duration::from_secs(5));
        let mut backoff = Duration::from_secs(1);
        for attempt in 1..=hook.attempts.max(1) {
            let mut req = client
                .post(&hook.url)
                .timeout(timeout)
                .header("content-type", "application/json")
                .body(body.clone());
            for (k, v) in &hook.headers {
                req = req.header(k, v);
            }
            // Only the status or the error kind is logged: the URL may hold a token.
            let failure = match req.send().await {
                Ok(r) if r.status().is_success() => {
                    tracing::info!(incident = %incident, attempt, "webhook delivered");
                    return;
                }
                Ok(r) => format!("answered {}", r.status().as_u16()),
                Err(e) if e.is_timeout() => "timed out".to_string(),
                Err(e) if e.is_connect() => "connection failed".to_string(),
                Err(_) => "request failed".to_string(),
            };
            tracing::warn!(incident = %incident, attempt, "webhook {failure}");
            if attempt < hook.attempts {
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
        tracing::error!(incident = %incident, "webhook gave up after {} attempts", hook.attempts);
    });
}
