//! A notification receiver for Alertmanager's webhooks (payload version 4): the demo (and
//! `pathwatch sim --webhook-listen`) prints one line per alert it is sent, so the shipped
//! alerts/alertmanager.yml delivers somewhere and the page shows in the demo's terminal.
//!
//! `POST /{receiver}` takes the receivers of alerts/alertmanager.yml (`/pager`, `/tickets`,
//! `/default`, all on 127.0.0.1:9095) and any other one-segment path: the path names the
//! receiver in the line, as the shipped config maps one receiver to one path.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

/// Where alerts/alertmanager.yml sends its notifications.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9095";

#[cfg(test)]
/// The receivers of alerts/alertmanager.yml, one path each.
pub(crate) const RECEIVERS: [&str; 3] = ["pager", "tickets", "default"];

/// A notification larger than this is refused with 413: Alertmanager's webhook sends a few
/// KiB per alert, and a receiver that prints must not buffer whatever a client streams.
pub(crate) const MAX_BODY: usize = 1 << 20;

/// How many characters of a summary or label value a line shows (one line stays one line).
const MAX_TEXT: usize = 300;

/// The labels a line names besides alertname, in this order: what tells pathwatch's alerts
/// apart (job, instance and severity are the same for all, or said by the receiver).
const SHOWN_LABELS: [&str; 6] = [
    "incident",
    "probe",
    "cause",
    "pattern",
    "expectation",
    "criterion",
];

/// Where the lines go: stdout in the demo, a buffer in tests.
pub(crate) type Printer = Arc<dyn Fn(&str) + Send + Sync>;

/// A notification as Alertmanager's webhook sends it (version 4); fields not read here are
/// ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    version: String,
    #[serde(default)]
    alerts: Vec<Alert>,
    /// Alerts left out by the receiver's `max_alerts`.
    #[serde(default)]
    truncated_alerts: u64,
}

#[derive(Debug, Deserialize)]
struct Alert {
    status: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Why a notification is refused (400), as the response says it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReceiveError {
    #[error("not an Alertmanager webhook notification: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported webhook payload version {0:?} (this receiver reads version 4)")]
    Version(String),
}

/// The lines for one notification sent to `receiver`: one per alert, then one for the alerts
/// `max_alerts` left out, if any.
///
/// # Errors
/// When `body` is not a version 4 webhook payload.
pub(crate) fn lines(receiver: &str, body: &[u8]) -> Result<Vec<String>, ReceiveError> {
    let n: Notification = serde_json::from_slice(body)?;
    if n.version != "4" {
        return Err(ReceiveError::Version(clean(&n.version)));
    }
    let receiver = clean(receiver);
    let mut out: Vec<String> = n
        .alerts
        .iter()
        .map(|a| {
            let name = a.labels.get("alertname").map_or("", String::as_str);
            let labels: Vec<String> = SHOWN_LABELS
                .iter()
                .filter_map(|k| a.labels.get(*k).map(|v| format!("{k}=\"{}\"", clean(v))))
                .collect();
            let summary = a.annotations.get("summary").map_or("", String::as_str);
            format!(
                "webhook /{receiver}: {} {}{{{}}}: {}",
                clean(&a.status),
                clean(name),
                labels.join(", "),
                clean(summary)
            )
        })
        .collect();
    if n.truncated_alerts > 0 {
        out.push(format!(
            "webhook /{receiver}: and {} more alerts left out by max_alerts",
            n.truncated_alerts
        ));
    }
    Ok(out)
}

/// `text` on one line, at most [`MAX_TEXT`] characters: control characters (a newline in a
/// template's output) become spaces.
fn clean(text: &str) -> String {
    let mut out: String = text
        .chars()
        .take(MAX_TEXT)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().nth(MAX_TEXT).is_some() {
        out.push('…');
    }
    out
}

async fn receive(
    State(print): State<Printer>,
    Path(receiver): Path<String>,
    body: Bytes,
) -> (StatusCode, String) {
    match lines(&receiver, &body) {
        Ok(lines) => {
            for line in &lines {
                print(line);
            }
            (StatusCode::OK, String::new())
        }
        Err(e) => {
            print(&format!("webhook /{}: refused: {e}", clean(&receiver)));
            (StatusCode::BAD_REQUEST, format!("{e}\n"))
        }
    }
}

/// The receiver's routes: `POST /{receiver}`, bodies up to [`MAX_BODY`].
pub(crate) fn router(print: Printer) -> Router {
    Router::new()
        .route("/{receiver}", post(receive))
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(print)
}

/// Serves the receiver on `listener`, printing each line to stdout, until `shutdown` is
/// cancelled.
///
/// # Errors
/// Only what `axum::serve` returns (accept errors are retried inside it).
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let print: Printer = Arc::new(|line: &str| println!("{line}"));
    axum::serve(listener, router(print))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

/// `--webhook-listen`: an address, or `off` for none.
pub fn parse_listen(value: &str) -> Option<&str> {
    (!value.eq_ignore_ascii_case("off") && !value.is_empty()).then_some(value)
}

/// Binds `listen` and serves the receiver in the background until `shutdown`.
///
/// # Errors
/// When the address cannot be bound (taken, or not an address of this machine).
pub async fn spawn(listen: &str, shutdown: CancellationToken) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(e) = serve(listener, shutdown).await {
            tracing::warn!("the webhook receiver stopped: {e}");
        }
    });
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// What Alertmanager 0.25 sends for the demo's page (trimmed to what matters, plus the
    /// fields a receiver ignores).
    const PAGE: &str = r#"{
      "receiver": "pager", "status": "firing", "version": "4",
      "groupKey": "{}/{alertname=\"PathwatchIncidentPresent\"}:{alertname=\"PathwatchIncidentPresent\", incident=\"1278\"}",
      "truncatedAlerts": 0, "externalURL": "http://127.0.0.1:9093",
      "groupLabels": {"alertname": "PathwatchIncidentPresent", "incident": "1278"},
      "commonLabels": {}, "commonAnnotations": {},
      "alerts": [
        {"status": "firing",
         "labels": {"alertname": "PathwatchIncidentPresent", "incident": "1278", "instance": "127.0.0.1:9778", "job": "pathwatch", "probe": "golden-path", "severity": "critical"},
         "annotations": {"summary": "Incident 1278 is PRESENT: golden_path failing", "description": "..."},
         "startsAt": "2026-12-06T18:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
         "generatorURL": "http://127.0.0.1:9090/graph", "fingerprint": "0123456789abcdef"},
        {"status": "resolved",
         "labels": {"alertname": "PathwatchWebSocketErrorsInLogs", "probe": "backend-logs", "pattern": "ws_failed"},
         "annotations": {"summary": "two\nlines"}}
      ]
    }"#;

    #[test]
    fn one_line_per_alert_with_receiver_status_name_labels_and_summary() {
        let got = lines("pager", PAGE.as_bytes()).unwrap();
        assert_eq!(
            got,
            [
                "webhook /pager: firing PathwatchIncidentPresent{incident=\"1278\", probe=\"golden-path\"}: Incident 1278 is PRESENT: golden_path failing",
                "webhook /pager: resolved PathwatchWebSocketErrorsInLogs{probe=\"backend-logs\", pattern=\"ws_failed\"}: two lines",
            ]
        );
        let truncated = PAGE.replace("\"truncatedAlerts\": 0", "\"truncatedAlerts\": 7");
        let got = lines("pager", truncated.as_bytes()).unwrap();
        assert_eq!(
            got[2],
            "webhook /pager: and 7 more alerts left out by max_alerts"
        );
    }

    #[test]
    fn other_payloads_are_refused_and_long_texts_cut() {
        let e = lines("pager", b"{\"status\": \"firing\"}").unwrap_err();
        assert!(e.to_string().contains("missing field `version`"), "{e}");
        let v3 = PAGE.replace("\"version\": \"4\"", "\"version\": \"3\"");
        let e = lines("pager", v3.as_bytes()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "unsupported webhook payload version \"3\" (this receiver reads version 4)"
        );
        let long = "x".repeat(MAX_TEXT + 50);
        assert_eq!(clean(&long).chars().count(), MAX_TEXT + 1);
        assert_eq!(parse_listen("off"), None);
        assert_eq!(parse_listen(""), None);
        assert_eq!(parse_listen(DEFAULT_LISTEN), Some(DEFAULT_LISTEN));
    }

    /// Through a real socket: each shipped receiver's path prints, a bad payload is a 400
    /// that says why, an oversized one a 413, anything but POST /{receiver} is refused.
    #[tokio::test]
    async fn the_shipped_receiver_paths_print_and_bad_requests_are_refused() {
        let printed = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = printed.clone();
        let print: Printer = Arc::new(move |l: &str| sink.lock().unwrap().push(l.to_string()));
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stop = CancellationToken::new();
        let server = axum::serve(listener, router(print))
            .with_graceful_shutdown(stop.clone().cancelled_owned());
        tokio::spawn(async move { server.await });
        let client = reqwest::Client::new();
        let post = |path: &str, body: Vec<u8>| {
            client
                .post(format!("http://{addr}{path}"))
                .header("content-type", "application/json")
                .body(body)
                .send()
        };
        for r in RECEIVERS {
            let resp = post(&format!("/{r}"), PAGE.as_bytes().to_vec())
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
        }
        let resp = post("/pager", b"not json".to_vec()).await.unwrap();
        assert_eq!(resp.status(), 400);
        assert!(resp.text().await.unwrap().contains("not an Alertmanager"));
        let resp = post("/pager", vec![b' '; MAX_BODY + 1]).await.unwrap();
        assert_eq!(resp.status(), 413);
        let resp = post("/a/b", PAGE.as_bytes().to_vec()).await.unwrap();
        assert_eq!(resp.status(), 404);
        let resp = client
            .get(format!("http://{addr}/pager"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 405);
        let printed = printed.lock().unwrap().clone();
        let firing: Vec<_> = printed
            .iter()
            .filter(|l| l.contains(": firing PathwatchIncidentPresent"))
            .collect();
        assert_eq!(firing.len(), 3, "{printed:#?}");
        for r in RECEIVERS {
            assert!(
                printed
                    .iter()
                    .any(|l| l.starts_with(&format!("webhook /{r}: "))),
                "{printed:#?}"
            );
        }
        assert!(
            printed
                .iter()
                .any(|l| l.starts_with("webhook /pager: refused: ")),
            "{printed:#?}"
        );
        stop.cancel();
    }
}
