//! The `cloud_logging` log source: Cloud Logging's `entries:list`, from the last entry seen.
//!
//! Each run POSTs `{api_base}/v2/entries:list` with the configured filter narrowed to
//! `timestamp>="<last entry's timestamp>"` (on the first run: now minus the window), ordered
//! `timestamp asc`, and follows `nextPageToken` for up to `max_pages` pages. Entries at the
//! boundary timestamp come back again on the next run; their `insertId`s are remembered so
//! they count once. An entry's text is its `textPayload`, or `jsonPayload.message`.
//!
//! Phases: `credentials` (the access token, usually cached) and `request` (every page).

use super::{Ctx, LogCounts, now_ms};
use crate::probe::common::google::{CredentialsError, CredentialsSpec, TokenSource, status_error};
use crate::probe::common::tls::{self, TlsError, Verify};
use crate::probe::{Phase, ProbeError, Reason, error_chain};
use serde::Deserialize;
use std::collections::HashSet;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const API: &str = "Cloud Logging entries:list";
/// A page of 1000 entries is a few MB; a larger answer is not a page.
const MAX_PAGE_BYTES: usize = 32 << 20;
/// insertIds remembered at the boundary timestamp; beyond this many entries sharing one
/// timestamp, a few may count twice rather than memory growing.
const MAX_BOUNDARY_IDS: usize = 10_000;
/// The longest Retry-After honoured (a larger one is likely a mistake; the probe retries).
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

#[derive(Clone, Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CloudSource {
    /// The project whose logs are read (`projects/P`).
    pub(crate) project: String,
    /// A Logging query, e.g. `resource.type="cloud_run_revision" AND
    /// resource.labels.service_name="S" AND severity>=WARNING`.
    pub(crate) filter: String,
    /// Another base URL (a proxy or a local fake); default `https://logging.googleapis.com`.
    #[serde(default = "default_api_base")]
    pub(crate) api_base: String,
    #[serde(default)]
    pub(crate) credentials: CredentialsSpec,
    /// Pages read per run at most; the rest follows on the next run.
    #[serde(default = "default_max_pages")]
    pub(crate) max_pages: u32,
    /// Entries per page (the API allows at most 1000).
    #[serde(default = "default_page_size")]
    pub(crate) page_size: u32,
}

fn default_api_base() -> String {
    "https://logging.googleapis.com".into()
}
fn default_max_pages() -> u32 {
    10
}
fn default_page_size() -> u32 {
    1000
}

/// What a build prepares once: the URL, an HTTP client and a token source with its cache.
#[derive(Clone, Debug)]
pub(crate) struct Prepared {
    url: String,
    http: reqwest::Client,
    tokens: TokenSource,
}

/// Why a `cloud_logging` source is refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CloudError {
    #[error("cloud_logging: \"project\" must be a project id")]
    Project,
    #[error("cloud_logging: \"page_size\" must be between 1 and 1000")]
    PageSize,
    #[error("cloud_logging: \"max_pages\" must be between 1 and 100")]
    MaxPages,
    #[error("cloud_logging: \"api_base\" must be an http:// or https:// URL")]
    ApiBase,
    #[error("cloud_logging: {0}")]
    Credentials(#[source] CredentialsError),
    #[error(transparent)]
    Tls(#[from] TlsError),
    #[error("cannot build the HTTP client: {0}")]
    Client(reqwest::Error),
}

impl CloudSource {
    pub(crate) fn prepare(&self) -> Result<Prepared, CloudError> {
        let project = self.project.trim();
        if project.is_empty() || project.contains('/') {
            return Err(CloudError::Project);
        }
        if !(1..=1000).contains(&self.page_size) {
            return Err(CloudError::PageSize);
        }
        if !(1..=100).contains(&self.max_pages) {
            return Err(CloudError::MaxPages);
        }
        let base = url::Url::parse(&self.api_base)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or(CloudError::ApiBase)?;
        self.credentials
            .validate()
            .map_err(CloudError::Credentials)?;
        let http = reqwest::Client::builder()
            .connector_layer(crate::probe::common::self_connect::RefuseSelfConnect)
            .use_preconfigured_tls((*tls::client_config(Verify::Full, None)?).clone())
            .user_agent(concat!("pathwatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(CloudError::Client)?;
        Ok(Prepared {
            url: format!("{}/v2/entries:list", base.as_str().trim_end_matches('/')),
            http,
            tokens: TokenSource::new(&self.credentials),
        })
    }
}

/// Where reading stopped.
#[derive(Debug, Default)]
pub(crate) struct Cursor {
    /// The newest entry timestamp seen: as the API wrote it (reused verbatim in the next
    /// filter) and parsed.
    last: Option<(String, SystemTime)>,
    /// insertIds of the entries seen at exactly `last`.
    boundary: HashSet<String>,
    /// No request before this (a 429's Retry-After).
    backoff_until: Option<Instant>,
}

impl Cursor {
    /// Whether an entry is new, moving the cursor past it.
    fn accept(&mut self, raw: Option<&str>, id: Option<&str>) -> bool {
        let Some((raw, at)) = raw.and_then(|r| Some((r, parse_time(r)?))) else {
            // Without a timestamp the entry cannot be placed; count it, keep the cursor.
            return true;
        };
        match &self.last {
            Some((_, last)) if at < *last => false,
            Some((_, last)) if at == *last => match id {
                Some(id) if self.boundary.contains(id) => false,
                Some(id) => {
                    if self.boundary.len() < MAX_BOUNDARY_IDS {
                        self.boundary.insert(id.to_string());
                    }
                    true
                }
                None => true,
            },
            _ => {
                self.last = Some((raw.to_string(), at));
                self.boundary.clear();
                if let Some(id) = id {
                    self.boundary.insert(id.to_string());
                }
                true
            }
        }
    }
}

fn parse_time(raw: &str) -> Option<SystemTime> {
    humantime::parse_rfc3339(raw.trim()).ok()
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Page {
    #[serde(default)]
    entries: Vec<Entry>,
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Entry {
    insert_id: Option<String>,
    timestamp: Option<String>,
    text_payload: Option<String>,
    json_payload: Option<serde_json::Value>,
}

impl Entry {
    fn text(&self) -> Option<&str> {
        self.text_payload.as_deref().or_else(|| {
            self.json_payload
                .as_ref()
                .and_then(|j| j.get("message"))
                .and_then(|m| m.as_str())
        })
    }
}

/// Reads the entries written since the last run.
pub(super) async fn read(
    src: &CloudSource,
    prep: &Prepared,
    window: Duration,
    cursor: &mut Cursor,
    counts: &mut LogCounts,
    ctx: &Ctx<'_>,
) -> Result<(), ProbeError> {
    if let Some(until) = cursor.backoff_until {
        let left = until.saturating_duration_since(Instant::now());
        if !left.is_zero() {
            return Err(ProbeError::new(
                Reason::RateLimited,
                format!(
                    "{API}: waiting out Retry-After ({} s left)",
                    left.as_secs().max(1)
                ),
            ));
        }
        cursor.backoff_until = None;
    }
    let token = ctx
        .trace
        .time(Phase::Credentials, prep.tokens.token(&prep.http))
        .await?;
    let start = ctx.trace.enter(Phase::Request);
    let since = match &cursor.last {
        Some((raw, _)) => raw.clone(),
        None => humantime::format_rfc3339_nanos(
            SystemTime::now().checked_sub(window).unwrap_or(UNIX_EPOCH),
        )
        .to_string(),
    };
    let filter = if src.filter.trim().is_empty() {
        format!("timestamp>=\"{since}\"")
    } else {
        format!("({}) AND timestamp>=\"{since}\"", src.filter)
    };
    let resource = format!("projects/{}", src.project.trim());
    let mut page_token: Option<String> = None;
    for _ in 0..src.max_pages {
        let mut body = serde_json::json!({
            "resourceNames": [resource],
            "filter": filter,
            "orderBy": "timestamp asc",
            "pageSize": src.page_size,
        });
        if let Some(t) = &page_token {
            body["pageToken"] = serde_json::Value::String(t.clone());
        }
        let resp = prep
            .http
            .post(&prep.url)
            .bearer_auth(token.expose())
            .json(&body)
            .send()
            .await
            .map_err(|e| send_error(&e))?;
        let status = resp.status().as_u16();
        if !resp.status().is_success() {
            // Only a number of seconds is honoured (the API does not send HTTP dates).
            let retry = resp
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            if status == 401 {
                // The token may have been revoked early: fetch a fresh one next run.
                prep.tokens.invalidate();
            }
            if let (429, Some(secs)) = (status, retry) {
                cursor.backoff_until =
                    Some(Instant::now() + Duration::from_secs(secs).min(MAX_BACKOFF));
            }
            return Err(status_error(
                API,
                status,
                retry.map(|r| r.to_string()).as_deref(),
            ));
        }
        let bytes = read_body(resp).await?;
        let page: Page = serde_json::from_slice(&bytes).map_err(|e| {
            ProbeError::new(
                Reason::Protocol,
                format!("{API}: the answer is not a page of entries: {e}"),
            )
        })?;
        // Nothing awaits from here to the next request: cursor and counts move together.
        let now = now_ms();
        for entry in &page.entries {
            if !cursor.accept(entry.timestamp.as_deref(), entry.insert_id.as_deref()) {
                continue;
            }
            let at = entry
                .timestamp
                .as_deref()
                .and_then(parse_time)
                .map(unix_ms)
                .unwrap_or(now);
            counts.scan(ctx.matcher, entry.text().unwrap_or(""), at, now);
        }
        ctx.publish(counts);
        match page.next_page_token.filter(|t| !t.is_empty()) {
            Some(t) => page_token = Some(t),
            None => break,
        }
    }
    ctx.trace.complete(Phase::Request, start.elapsed());
    Ok(())
}

async fn read_body(mut resp: reqwest::Response) -> Result<Vec<u8>, ProbeError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| send_error(&e))? {
        if body.len() + chunk.len() > MAX_PAGE_BYTES {
            return Err(ProbeError::new(
                Reason::Protocol,
                format!("{API}: the answer exceeds {MAX_PAGE_BYTES} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn send_error(e: &reqwest::Error) -> ProbeError {
    if e.is_timeout() {
        return ProbeError::new(Reason::Timeout, format!("{API}: timed out"));
    }
    let (reason, detail) = error_chain(e, Reason::Io);
    ProbeError::new(reason, format!("{API}: {detail}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_at_the_boundary_count_once() {
        let mut c = Cursor::default();
        let t1 = "2026-01-01T00:00:01.5Z";
        let t2 = "2026-01-01T00:00:02Z";
        assert!(c.accept(Some(t1), Some("a")));
        assert!(c.accept(Some(t2), Some("b")));
        assert!(c.accept(Some(t2), Some("c")));
        // The next query starts at t2 and returns b and c again, then d.
        assert!(!c.accept(Some(t2), Some("b")));
        assert!(!c.accept(Some(t2), Some("c")));
        assert!(!c.accept(Some(t1), Some("a")));
        assert!(c.accept(Some("2026-01-01T00:00:02.000000001Z"), Some("d")));
        assert_eq!(
            c.last.as_ref().map(|l| l.0.as_str()),
            Some("2026-01-01T00:00:02.000000001Z")
        );
        // No timestamp: counted, cursor kept.
        assert!(c.accept(None, Some("e")));
        assert!(c.accept(Some("yesterday"), Some("f")));
    }
}
