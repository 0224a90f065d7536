//! `proxy_url`: an HTTP proxy between the probe and its target. `https://` targets go
//! through a `CONNECT` tunnel (timed as part of `connect`; TLS is then end to end), `http://`
//! ones are sent to the proxy in absolute form. A `user:password@` in the proxy URL becomes
//! `Proxy-Authorization: Basic`, registered with the redactor and never shown.

use super::USER_AGENT;
use crate::probe::{ProbeError, Reason, error_chain};
use base64::Engine as _;
use http::HeaderValue;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A proxy's answer to `CONNECT` is a short head; more is not a proxy.
const MAX_HEAD: usize = 16 << 10;

/// A parsed `proxy_url`.
#[derive(Clone, Debug)]
pub(super) struct Proxy {
    /// Host (bare, without IPv6 brackets) and port to connect to.
    pub(crate) host: String,
    pub(crate) port: u16,
    /// `Proxy-Authorization`, from the URL's user info.
    pub(crate) authorization: Option<HeaderValue>,
}

/// Why a `proxy_url` is refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ProxyError {
    #[error(
        "\"proxy_url\" must be an http:// URL with a host (https:// proxies are not supported)"
    )]
    Url,
}

impl Proxy {
    pub(super) fn parse(text: &str) -> Result<Proxy, ProxyError> {
        let url = url::Url::parse(text).map_err(|_| ProxyError::Url)?;
        let host = url.host_str().ok_or(ProxyError::Url)?;
        if url.scheme() != "http" {
            return Err(ProxyError::Url);
        }
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let authorization = if url.username().is_empty() && url.password().is_none() {
            None
        } else {
            let user = decode(url.username());
            let pass = decode(url.password().unwrap_or_default());
            crate::redact::register(&pass);
            let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
            crate::redact::register(&b64);
            let mut v =
                HeaderValue::from_str(&format!("Basic {b64}")).map_err(|_| ProxyError::Url)?;
            v.set_sensitive(true);
            Some(v)
        };
        Ok(Proxy {
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
            port: url.port_or_known_default().unwrap_or(80),
            authorization,
        })
    }

    /// Opens a tunnel to `authority` (`host:port`) through the proxy on `tcp`.
    pub(super) async fn connect(
        &self,
        tcp: &mut TcpStream,
        authority: &str,
    ) -> Result<(), ProbeError> {
        let io = |e: std::io::Error| {
            let (reason, detail) = error_chain(&e, Reason::Reset);
            ProbeError::new(reason, format!("proxy CONNECT: {detail}"))
        };
        let mut head = format!(
            "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: {USER_AGENT}\r\n"
        );
        if let Some(auth) = &self.authorization {
            head.push_str("Proxy-Authorization: ");
            head.push_str(auth.to_str().unwrap_or_default());
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        tcp.write_all(head.as_bytes()).await.map_err(io)?;
        // The client speaks first in TLS, so nothing follows the proxy's head until we do:
        // reading past it cannot swallow the server's bytes.
        let mut answer = Vec::new();
        let mut buf = [0u8; 1024];
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            if answer.len() > MAX_HEAD {
                return Err(ProbeError::new(
                    Reason::Protocol,
                    format!("the proxy's answer to CONNECT is longer than {MAX_HEAD} bytes"),
                ));
            }
            let n = tcp.read(&mut buf).await.map_err(io)?;
            if n == 0 {
                return Err(ProbeError::new(
                    Reason::Reset,
                    "the proxy closed the connection during CONNECT",
                ));
            }
            answer.extend_from_slice(&buf[..n]);
        }
        let status = std::str::from_utf8(&answer)
            .ok()
            .and_then(|t| t.split_whitespace().nth(1))
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| {
                ProbeError::new(
                    Reason::Protocol,
                    "the proxy's answer to CONNECT is not HTTP",
                )
            })?;
        match status {
            200..=299 => Ok(()),
            407 => Err(ProbeError::new(
                Reason::Auth,
                "the proxy answered 407 to CONNECT (proxy authentication required)",
            )),
            s => Err(ProbeError::new(
                Reason::HttpStatus,
                format!("the proxy answered {s} to CONNECT"),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_urls_are_http_with_a_host_and_user_info_becomes_basic_auth() {
        let p = Proxy::parse("http://u%40x:pa%3Ass@[::1]:3128").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("::1", 3128));
        let b64 = base64::engine::general_purpose::STANDARD.encode("u@x:pa:ss");
        assert_eq!(
            p.authorization.unwrap().to_str().unwrap(),
            format!("Basic {b64}")
        );
        assert!(
            Proxy::parse("http://proxy.internal")
                .unwrap()
                .authorization
                .is_none()
        );
        for bad in [
            "https://proxy:443",
            "socks5://proxy:1080",
            "proxy:3128",
            "http://",
        ] {
            assert!(Proxy::parse(bad).is_err(), "{bad}");
        }
    }
}
