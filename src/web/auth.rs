//! HTTP basic auth against bcrypt hashes, in front of every route but the open paths.
//!
//! Every failure (no header, a malformed one, an unknown user, a wrong password) gets the
//! same 401 and body, so a client learns nothing about which part was wrong. An unknown user
//! is checked against a dummy hash of the highest configured cost, so the response time does
//! not tell whether a user name exists. Each check re-runs bcrypt: at cost 10 that is tens of
//! milliseconds per scrape (see the README), cheap next to a 15 s scrape interval, and it
//! avoids keeping anything derived from passwords in memory.

use super::config::{User, WebConfigError};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::Arc;
use tokio::sync::Semaphore;

/// The `WWW-Authenticate` challenge of every 401.
pub const CHALLENGE: &str = "Basic realm=\"pathwatch\"";

/// The body of every 401: the same whatever was wrong.
pub const UNAUTHORIZED_BODY: &str = "unauthorized\n";

/// Users, their hashes, and the paths that skip the check.
pub struct BasicAuth {
    users: HashMap<String, String>,
    /// Verified against for unknown users, so they cost as much as known ones.
    dummy: String,
    open_paths: HashSet<String>,
    /// bcrypt is CPU-bound by design: at most one check per core at a time, so a flood of
    /// bad credentials queues up instead of starving the probes of CPU.
    checks: Semaphore,
}

impl std::fmt::Debug for BasicAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BasicAuth")
            .field("users", &self.users.len())
            .field("open_paths", &self.open_paths)
            .finish_non_exhaustive()
    }
}

impl BasicAuth {
    /// Checks every hash; `None` when there are no users (no authentication).
    pub fn new(
        file: &str,
        users: &[User],
        open_paths: &[String],
    ) -> Result<Option<Arc<BasicAuth>>, WebConfigError> {
        if users.is_empty() {
            return Ok(None);
        }
        let mut max_cost = 0;
        let mut map = HashMap::new();
        for u in users {
            // The hash is left out of the message: it can be attacked offline.
            let parts = bcrypt::HashParts::from_str(&u.hash).map_err(|_| {
                u.pos.err(
                    file,
                    format!(
                        "basic_auth_users \"{}\": not a bcrypt hash ($2y$, $2b$ or $2a$ and a \
                         cost, e.g. from `htpasswd -nBC 10 {}`)",
                        u.name, u.name
                    ),
                )
            })?;
            max_cost = max_cost.max(parts.get_cost());
            map.insert(u.name.clone(), u.hash.clone());
        }
        // A fixed salt is fine: this hash only burns time, no password is behind it.
        let dummy = bcrypt::hash_with_salt(b"pathwatch: no such user", max_cost, [0x5a; 16])
            .map_err(|e| users[0].pos.err(file, format!("bcrypt: {e}")))?
            .format_for_version(bcrypt::Version::TwoB);
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Ok(Some(Arc::new(BasicAuth {
            users: map,
            dummy,
            open_paths: open_paths.iter().cloned().collect(),
            checks: Semaphore::new(cores),
        })))
    }

    /// Whether `user` and `password` match a configured user.
    pub async fn verify(&self, user: &str, password: Vec<u8>) -> bool {
        let (known, hash) = match self.users.get(user) {
            Some(h) => (true, h.clone()),
            None => (false, self.dummy.clone()),
        };
        let Ok(_permit) = self.checks.acquire().await else {
            return false;
        };
        // bcrypt takes tens of milliseconds on purpose: off the async workers.
        let matched = tokio::task::spawn_blocking(move || {
            // verify compares the hashes in constant time.
            bcrypt::verify(&password, &hash).unwrap_or(false)
        })
        .await
        .unwrap_or(false);
        known && matched
    }

    fn is_open(&self, path: &str) -> bool {
        self.open_paths.contains(path)
    }
}

/// The middleware: `axum::middleware::from_fn_with_state(auth, require)`.
pub async fn require(State(auth): State<Arc<BasicAuth>>, req: Request, next: Next) -> Response {
    if auth.is_open(req.uri().path()) {
        return next.run(req).await;
    }
    let Some((user, password)) = credentials(req.headers()) else {
        return unauthorized();
    };
    if auth.verify(&user, password).await {
        next.run(req).await
    } else {
        unauthorized()
    }
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(CHALLENGE),
        )],
        UNAUTHORIZED_BODY,
    )
        .into_response()
}

/// `Authorization: Basic base64(user:password)` (RFC 7617). The password stays bytes: it
/// may be any encoding, and bcrypt hashes bytes.
fn credentials(headers: &HeaderMap) -> Option<(String, Vec<u8>)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, encoded) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let colon = decoded.iter().position(|&b| b == b':')?;
    let user = std::str::from_utf8(&decoded[..colon]).ok()?.to_string();
    Some((user, decoded[colon + 1..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::web::config::Pos;

    fn header(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn credentials_are_parsed_per_rfc_7617() {
        // "prometheus:pa:ss" -> the password keeps its colon
        let h = header("Basic cHJvbWV0aGV1czpwYTpzcw==");
        assert_eq!(
            credentials(&h),
            Some(("prometheus".to_string(), b"pa:ss".to_vec()))
        );
        assert_eq!(
            credentials(&header("basic   cHJvbWV0aGV1czpwYTpzcw== ")).map(|c| c.0),
            Some("prometheus".to_string())
        );
        assert_eq!(credentials(&header("Bearer abc")), None);
        assert_eq!(credentials(&header("Basic !!!")), None);
        // "nocolon"
        assert_eq!(credentials(&header("Basic bm9jb2xvbg==")), None);
        assert_eq!(credentials(&HeaderMap::new()), None);
    }

    fn user(name: &str, hash: &str) -> User {
        User {
            name: name.into(),
            hash: hash.into(),
            pos: Pos { line: 3, col: 15 },
        }
    }

    #[tokio::test]
    async fn only_the_right_user_and_password_pass() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let auth = BasicAuth::new("web.yml", &[user("prometheus", &hash)], &[])
            .unwrap()
            .unwrap();
        assert!(auth.verify("prometheus", b"s3cret".to_vec()).await);
        assert!(!auth.verify("prometheus", b"wrong".to_vec()).await);
        assert!(!auth.verify("nobody", b"s3cret".to_vec()).await);
        // The dummy's own password does not let an unknown user in.
        assert!(
            !auth
                .verify("nobody", b"pathwatch: no such user".to_vec())
                .await
        );
    }

    #[test]
    fn a_bad_hash_is_named_by_user_not_by_content() {
        let e = BasicAuth::new("web.yml", &[user("prometheus", "plaintext-oops")], &[])
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("web.yml:3:15: basic_auth_users \"prometheus\""),
            "{e}"
        );
        assert!(!e.contains("plaintext-oops"), "{e}");
        assert!(BasicAuth::new("web.yml", &[], &[]).unwrap().is_none());
    }
}
