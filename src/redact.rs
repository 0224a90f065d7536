//! One redactor for every text that leaves the process: failure details (logs, status page,
//! `/api/status`, check output), config errors and every log line.
//!
//! Typed secrets stay out of messages by construction ([`crate::core::types::Secret`] has no
//! Display), but text also arrives by side doors: a server that echoes a header or a token, a
//! URL with a password typed into `host:`, a library's error quoting its input. So the values
//! themselves are masked wherever they appear, whatever path the text took:
//! - every secret the config loads (each `Secret`, and the values of configured headers whose
//!   name says credential), with its base64 forms (a token sent as a WebSocket subprotocol),
//!   registered as the config is read;
//! - the password of any `scheme://user:password@` in the text;
//! - the values of secret-bearing query keys (`token=`, `key=`, `password=`, `sig=` ...).

use base64::Engine as _;
use std::borrow::Cow;
use std::sync::{LazyLock, RwLock};

/// What replaces a secret.
pub(crate) const MASK: &str = "<redacted>";
/// Shorter values are not registered: masking every `ab` in every message would destroy the
/// messages and protect nothing a guess would not find.
pub(crate) const MIN_SECRET_LEN: usize = 4;
/// Registered values kept (the oldest go first): reloads and rotated tokens add more.
const MAX_SECRETS: usize = 4096;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

static USER_INFO: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"(?i)\b([a-z][a-z0-9+.\-]*://[^/\s:@]*:)[^@\s/]+@").expect("valid regex")
});

static SECRET_QUERY: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(
        r"(?i)([?&;][a-z0-9_.\-]*(?:token|key|secret|password|passwd|pwd|sig|signature|auth|credential)[a-z0-9_.\-]*=)[^&;#\s\x22'()<>\[\],]+",
    )
    .expect("valid regex")
});

thread_local! {
    /// Set while this thread parses a config ([`while_loading`]).
    static LOADING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `f` (a config parse) with secrets read by serde registered as they are read.
pub(crate) fn while_loading<T>(f: impl FnOnce() -> T) -> T {
    let before = LOADING.with(|l| l.replace(true));
    let out = f();
    LOADING.with(|l| l.set(before));
    out
}

/// [`register`], when a config is being loaded on this thread.
pub(crate) fn register_if_loading(secret: &str) {
    if LOADING.with(std::cell::Cell::get) {
        register(secret);
    }
}

/// Takes a value back out (one the config declares safe to show, e.g. Cloud Run's
/// `safe_env`), in every form it was registered.
pub(crate) fn forget(value: &str) {
    let b = value.as_bytes();
    let forms = [
        value.to_string(),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(b),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b),
    ];
    SECRETS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .retain(|s| !forms.contains(s));
}

/// Registers a secret value (and its base64 forms) to be masked from now on.
pub(crate) fn register(secret: &str) {
    if secret.len() < MIN_SECRET_LEN {
        return;
    }
    let b = secret.as_bytes();
    let forms = [
        secret.to_string(),
        base64::engine::general_purpose::STANDARD_NO_PAD.encode(b),
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b),
    ];
    let mut all = SECRETS
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for f in forms {
        if !all.contains(&f) {
            all.push(f);
        }
    }
    // Longest first, so a secret containing another is masked whole.
    all.sort_by_key(|s| std::cmp::Reverse(s.len()));
    if all.len() > MAX_SECRETS {
        let extra = all.len() - MAX_SECRETS;
        all.drain(..extra);
    }
}

/// Whether a header's value is a credential, by its name: `Authorization`, `Cookie`, and
/// anything naming a key, token, secret, password or auth (`X-ClickHouse-Key`).
pub(crate) fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    n == "cookie"
        || [
            "auth", "key", "token", "secret", "password", "passwd", "session",
        ]
        .iter()
        .any(|w| n.contains(w))
}

/// Registers a configured header's value when its name marks it secret; for
/// `Authorization: Bearer X` the credential `X` alone too.
pub(crate) fn register_header(name: &str, value: &str) {
    if !is_secret_header(name) {
        return;
    }
    register(value);
    if let Some((_, cred)) = value.split_once(' ') {
        register(cred.trim());
    }
}

/// `text` with every registered secret, URL password and secret query value masked.
pub(crate) fn redact(text: &str) -> Cow<'_, str> {
    let mut out = Cow::Borrowed(text);
    {
        let all = SECRETS
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for s in all.iter() {
            if out.contains(s.as_str()) {
                out = Cow::Owned(out.replace(s.as_str(), MASK));
            }
        }
    }
    if out.contains("://")
        && let Cow::Owned(s) = USER_INFO.replace_all(&out, format!("${{1}}{MASK}@"))
    {
        out = Cow::Owned(s);
    }
    if out.contains('=')
        && let Cow::Owned(s) = SECRET_QUERY.replace_all(&out, format!("${{1}}{MASK}"))
    {
        out = Cow::Owned(s);
    }
    out
}

/// A log writer that masks each line before it reaches stderr (tracing's fmt layer hands
/// over one whole formatted event per write).
pub(crate) struct RedactingStderr;

impl std::io::Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        std::io::stderr().write_all(redact(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingStderr;
    fn make_writer(&'a self) -> Self::Writer {
        RedactingStderr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registered_secrets_and_their_base64_are_masked_anywhere() {
        register("hunter2-redact-test");
        let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode("hunter2-redact-test");
        let text = format!("server said: hunter2-redact-test; proto jwt.{b64}");
        let t = redact(&text);
        assert_eq!(t, "server said: <redacted>; proto jwt.<redacted>");
        register("ab");
        assert_eq!(redact("ab cd"), "ab cd", "too short to register");
    }

    #[test]
    fn url_passwords_and_secret_query_values_are_masked() {
        assert_eq!(
            redact(r#"resolving "postgres://app:pa55@db:5432/x": failed"#),
            r#"resolving "postgres://app:<redacted>@db:5432/x": failed"#
        );
        assert_eq!(
            redact("GET https://login.example/cb?code=1&access_token=abc.def&x=2 failed"),
            "GET https://login.example/cb?code=1&access_token=<redacted>&x=2 failed"
        );
        assert_eq!(
            redact("?api_key=K1&sig=zz"),
            "?api_key=<redacted>&sig=<redacted>"
        );
        assert_eq!(redact("http://db:5432/x?q=1"), "http://db:5432/x?q=1");
        // reqwest quotes the URL in its errors: a login URL's key stays out of them.
        assert_eq!(
            redact(
                "error decoding response body for url (https://login.example/auth?apikey=abc123)"
            ),
            "error decoding response body for url (https://login.example/auth?apikey=<redacted>)"
        );
    }

    #[test]
    fn header_names_decide_what_is_secret() {
        for n in [
            "Authorization",
            "X-ClickHouse-Key",
            "Cookie",
            "X-Api-Token",
            "Proxy-Authorization",
        ] {
            assert!(is_secret_header(n), "{n}");
        }
        for n in ["Accept", "Content-Type", "X-ClickHouse-User", "Host"] {
            assert!(!is_secret_header(n), "{n}");
        }
        register_header("Authorization", "Bearer tok-redact-test-1");
        assert_eq!(redact("echo: tok-redact-test-1"), "echo: <redacted>");
    }
}
