//! The API client of one GCP probe: an HTTP client with the probe's own rustls config and a
//! token source; one authenticated GET of a resource's JSON, phase by phase.

use super::{GcpError, MAX_BODY_BYTES};
use crate::probe::common::google::{CredentialsSpec, TokenSource, status_error};
use crate::probe::common::tls::{self, Verify};
use crate::probe::{Phase, ProbeError, Reason, Trace, error_chain};
use serde::de::DeserializeOwned;
use url::Url;

/// The API client and token source of one probe, built once when the config loads; clones
/// share the token cache.
#[derive(Clone, Debug)]
pub(crate) struct Client {
    http: reqwest::Client,
    tokens: TokenSource,
}

impl Client {
    pub(crate) fn new(credentials: &CredentialsSpec) -> Result<Self, GcpError> {
        // The probe's own rustls config: no process-wide crypto provider is needed.
        let tls = tls::client_config(Verify::Full, None)?;
        let http = reqwest::Client::builder()
            .connector_layer(crate::probe::common::self_connect::RefuseSelfConnect)
            .use_preconfigured_tls((*tls).clone())
            .user_agent(concat!("pathwatch/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(GcpError::Client)?;
        Ok(Client {
            http,
            tokens: TokenSource::new(credentials),
        })
    }

    /// GETs `url` with a bearer token and parses the JSON answer. Phases: `credentials`
    /// (the token) and `request` (the GET and its body). `api` names the API in details.
    pub(crate) async fn get_json<T: DeserializeOwned>(
        &self,
        api: &str,
        url: &Url,
        trace: &Trace,
    ) -> Result<T, ProbeError> {
        let token = trace
            .time(Phase::Credentials, self.tokens.token(&self.http))
            .await?;
        let body = trace
            .time(Phase::Request, async {
                let resp = self
                    .http
                    .get(url.clone())
                    .bearer_auth(token.expose())
                    .header(reqwest::header::ACCEPT, "application/json")
                    .send()
                    .await
                    .map_err(|e| send_error(api, e))?;
                let status = resp.status().as_u16();
                if !resp.status().is_success() {
                    if status == 401 {
                        // A revoked or rotated token: fetch a fresh one next run.
                        self.tokens.invalidate();
                    }
                    let retry = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .map(str::trim)
                        // Only delay-seconds; an HTTP date is left out of the detail.
                        .filter(|v| !v.is_empty() && v.len() <= 10)
                        .filter(|v| v.bytes().all(|b| b.is_ascii_digit()))
                        .map(str::to_string);
                    return Err(status_error(api, status, retry.as_deref()));
                }
                read_capped(api, resp).await
            })
            .await?;
        serde_json::from_slice(&body).map_err(|e| {
            // serde_json's message may quote a value from the body (an env value of a
            // Cloud Run service): only its category and position are kept.
            let what = match e.classify() {
                serde_json::error::Category::Data => "JSON of an unexpected shape",
                serde_json::error::Category::Eof => "truncated JSON",
                _ => "malformed JSON",
            };
            ProbeError::new(
                Reason::Protocol,
                format!(
                    "{api} answered {what} (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        })
    }
}

fn send_error(api: &str, e: reqwest::Error) -> ProbeError {
    let e = e.without_url();
    let (reason, detail) = error_chain(&e, Reason::Io);
    ProbeError::new(reason, format!("{api}: {detail}"))
}

async fn read_capped(api: &str, mut resp: reqwest::Response) -> Result<Vec<u8>, ProbeError> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| send_error(api, e))? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(ProbeError::new(
                Reason::BodyTooLarge,
                format!("{api} answered more than {MAX_BODY_BYTES} bytes"),
            ));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
