//! HTTP basic auth against bcrypt hashes, in front of every route but the open paths.
//!
//! Every failure (no header, a malformed one, an unknown user, a wrong password) gets the
//! same 401 and body, so a client learns nothing about which part was wrong. An unknown user
//! is checked against a dummy hash of the highest configured cost, so the response time does
//! not tell whether a user name exists.
//!
//! bcrypt is slow on purpose, so a flood of wrong passwords must not queue up in front of
//! the scrapes that know theirs. As Prometheus' exporter-toolkit does, verified credentials
//! are cached: by an HMAC, under a random per-process key, of the user, the stored hash and
//! the password (never the password itself), so a scrape that passed once passes again
//! without bcrypt. Failed ones are cached the same way (a repeated wrong password costs
//! nothing), both caches bounded. At most one check per core runs at a time and at most
//! [`MAX_WAITING`] per core wait; beyond that a new credential gets 401 at once.

use super::config::{BasicAuthUser, WebConfigError};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

/// Credentials waiting for a bcrypt check, per core, before new ones are refused outright.
pub(crate) const MAX_WAITING: usize = 4;
/// Cached verified credentials (users times the passwords they rotate through).
const MAX_OK: usize = 64;
/// Cached failed credentials; the set is emptied when full.
const MAX_BAD: usize = 4096;

/// The cache key of one (user, stored hash, password).
type Key = [u8; 32];

/// The `WWW-Authenticate` challenge of every 401.
pub(crate) const CHALLENGE: &str = "Basic realm=\"pathwatch\"";

/// The body of every 401: the same whatever was wrong.
pub(crate) const UNAUTHORIZED_BODY: &str = "unauthorized\n";

/// Users, their hashes, and the paths that skip the check.
pub(crate) struct BasicAuth {
    users: HashMap<String, String>,
    /// Verified against for unknown users, so they cost as much as known ones.
    dummy: String,
    open_paths: HashSet<String>,
    /// bcrypt is CPU-bound by design: at most one check per core at a time, so a flood of
    /// bad credentials queues up instead of starving the probes of CPU.
    checks: Semaphore,
    cores: usize,
    /// Checks waiting or running.
    pending: AtomicUsize,
    /// Key of the cache HMAC, random per process.
    mac: ring::hmac::Key,
    ok: Mutex<HashSet<Key>>,
    bad: Mutex<HashSet<Key>>,
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
    pub(crate) fn new(
        file: &str,
        users: &[BasicAuthUser],
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
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        let mac =
            ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &ring::rand::SystemRandom::new())
                .map_err(|_| {
                    users[0]
                        .pos
                        .err(file, "no randomness for the credentials cache")
                })?;
        Ok(Some(Arc::new(BasicAuth {
            users: map,
            dummy,
            open_paths: open_paths.iter().cloned().collect(),
            checks: Semaphore::new(cores),
            cores,
            pending: AtomicUsize::new(0),
            mac,
            ok: Mutex::new(HashSet::new()),
            bad: Mutex::new(HashSet::new()),
        })))
    }

    /// Whether `user` and `password` match a configured user.
    pub(crate) async fn verify(&self, user: &str, password: Vec<u8>) -> bool {
        let (known, hash) = match self.users.get(user) {
            Some(h) => (true, h.clone()),
            None => (false, self.dummy.clone()),
        };
        let key = self.key(user, &hash, &password);
        if lock(&self.ok).contains(&key) {
            return known;
        }
        if lock(&self.bad).contains(&key) {
            return false;
        }
        // A bounded queue: past it, a flood gets its 401 without costing anyone CPU.
        if self.pending.fetch_add(1, Ordering::AcqRel) >= self.cores * (MAX_WAITING + 1) {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        let matched = match self.checks.acquire().await {
            // bcrypt takes tens of milliseconds on purpose: off the async workers. verify
            // compares the hashes in constant time.
            Ok(_permit) => tokio::task::spawn_blocking(move || {
                bcrypt::verify(&password, &hash).unwrap_or(false)
            })
            .await
            .unwrap_or(false),
            Err(_) => false,
        };
        self.pending.fetch_sub(1, Ordering::AcqRel);
        let ok = known && matched;
        let (cache, max) = if ok {
            (&self.ok, MAX_OK)
        } else {
            (&self.bad, MAX_BAD)
        };
        let mut cache = lock(cache);
        if cache.len() >= max {
            cache.clear();
        }
        cache.insert(key);
        ok
    }

    fn key(&self, user: &str, hash: &str, password: &[u8]) -> Key {
        let mut ctx = ring::hmac::Context::with_key(&self.mac);
        // Lengths first, so no two (user, hash, password) triples hash the same bytes.
        for part in [user.as_bytes(), hash.as_bytes(), password] {
            ctx.update(&(part.len() as u64).to_be_bytes());
            ctx.update(part);
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&ctx.sign().as_ref()[..32]);
        key
    }

    fn is_open(&self, path: &str) -> bool {
        self.open_paths.contains(path)
    }
}

fn lock(m: &Mutex<HashSet<Key>>) -> std::sync::MutexGuard<'_, HashSet<Key>> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The middleware: `axum::middleware::from_fn_with_state(auth, require)`.
pub(crate) async fn require(
    State(auth): State<Arc<BasicAuth>>,
    req: Request,
    next: Next,
) -> Response {
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

    fn user(name: &str, hash: &str) -> BasicAuthUser {
        BasicAuthUser {
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

    #[tokio::test]
    async fn verified_credentials_are_cached_and_failures_too() {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let auth = BasicAuth::new("web.yml", &[user("prometheus", &hash)], &[])
            .unwrap()
            .unwrap();
        assert!(auth.verify("prometheus", b"s3cret".to_vec()).await);
        assert!(!auth.verify("prometheus", b"wrong".to_vec()).await);
        assert_eq!(lock(&auth.ok).len(), 1);
        assert_eq!(lock(&auth.bad).len(), 1);
        // Cached: the same answers again, and nothing else passes through the cache.
        assert!(auth.verify("prometheus", b"s3cret".to_vec()).await);
        assert!(!auth.verify("prometheus", b"wrong".to_vec()).await);
        assert!(!auth.verify("prometheus", b"s3cre".to_vec()).await);
        assert!(!auth.verify("prometheu", b"s3cret".to_vec()).await);
        // The keys are MACs under this process's key, not the passwords.
        let k = auth.key("prometheus", &hash, b"s3cret");
        assert!(lock(&auth.ok).contains(&k));
        assert!(!k.windows(6).any(|w| w == b"s3cret"));
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
