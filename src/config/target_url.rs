//! `--target URL` and `DATABASE_URL`: one URL -> one probe entry with the kind's defaults, no
//! config file needed. The URL becomes the same located tree a YAML entry is, and goes
//! through the same `parse_probe` (so a target is checked, built and named by the rules a
//! file's probe is).
//!
//! Forms: `postgres://` / `postgresql://` (libpq's URI: user, password, host or a socket
//! directory, port, dbname, and the `host`, `port`, `user`, `password`, `dbname`, `sslmode`,
//! `sslrootcert`, `application_name` query parameters; a part left out comes from libpq's
//! variables PGHOST, PGPORT, PGUSER, PGPASSWORD, PGDATABASE, PGSSLMODE, as psql takes it),
//! `redis://[user:password@]host[:port][/db]` and `rediss://` (TLS), `http://` and
//! `https://` (user and password become basic auth), `tcp://host:port`.
//!
//! The password is a secret from the moment the URL is read: it is registered with the
//! redactor, never part of the probe's name, and every error quotes the URL with it masked.

use super::de;
use super::defaults::Defaults;
use super::node::{Key, Loc, Node, Value};
use super::probes::{ProbeConfig, parse_probe, valid_name};
use percent_encoding::percent_decode_str;
use std::fmt;

/// libpq's default socket directory as Debian, Ubuntu and Red Hat build it (upstream's is
/// /tmp): where `psql` with no host goes.
pub(crate) const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// The query parameters a `postgres://` target reads (libpq's names).
const PG_PARAMS: &[&str] = &[
    "host",
    "port",
    "user",
    "password",
    "dbname",
    "sslmode",
    "sslrootcert",
    "application_name",
];

/// The schemes a target may have.
const SCHEMES: &str =
    "postgres://, postgresql://, redis://, rediss://, http://, https:// or tcp://";

/// Where a target was given: the flag and its position, or the variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The n-th `--target` (1-based).
    Flag(usize),
    /// An environment variable (`DATABASE_URL`).
    Env(&'static str),
}

/// One target, ready to become a probe: its entry without the name, the name it would like,
/// and how errors name it.
#[derive(Clone)]
pub struct TargetUrl {
    /// `--target "postgres://app:<redacted>@127.0.0.1:5432/app"`: what errors start with.
    label: String,
    /// `postgres-127.0.0.1-5432`: the probe's name unless another probe has it.
    base_name: String,
    /// The entry's keys (`kind`, `host`, ...), as a YAML entry would hold them.
    entries: Vec<(Key, Node)>,
}

/// A target that cannot be probed: the flag (or variable), the URL with its password masked
/// when it parses, and the problem.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{label}: {problem}")]
pub struct TargetUrlError {
    pub(crate) label: String,
    pub(crate) problem: Problem,
}

/// What is wrong with a target URL. The texts are part of the interface
/// (tests/it/first_probe.rs pins each).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Problem {
    #[error("not a URL ({0}); write it like postgres://user:password@host:5432/dbname")]
    NotUrl(url::ParseError),
    #[error("unknown scheme \"{0}\": use {SCHEMES}")]
    Scheme(String),
    #[error("{0}:// needs a host")]
    NoHost(&'static str),
    #[error("tcp:// needs a port (tcp://host:port)")]
    NoPort,
    #[error("{0}:// takes only a host and a port")]
    OnlyHostPort(&'static str),
    #[error("several hosts in one URL: give one --target per host")]
    SeveralHosts,
    #[error("invalid port \"{0}\": an integer from 1 to 65535")]
    Port(String),
    /// The parameter, and the one it is probably a typo of.
    #[error("unknown query parameter \"{0}\"{hint} (postgres:// reads {params})",
        hint = .1.map(|s| format!(", did you mean \"{s}\"?")).unwrap_or_default(),
        params = PG_PARAMS.join(", "))]
    Param(String, Option<&'static str>),
    #[error("query parameter \"{0}\" is given twice")]
    ParamTwice(String),
    #[error("the {0} is not valid UTF-8 after percent-decoding")]
    Encoding(&'static str),
    #[error("the Redis database \"{0}\" must be a number (redis://host:6379/0)")]
    RedisDb(String),
    #[error("{0}:// takes no query parameters")]
    NoQuery(&'static str),
    /// What the config's own checks say of the probe entry the URL makes.
    #[error("{0}")]
    Probe(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Flag(n) => write!(f, "--target #{n}"),
            Origin::Env(name) => f.write_str(name),
        }
    }
}

/// The label and the name only: the entry holds the password as plain text.
impl fmt::Debug for TargetUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetUrl")
            .field("label", &self.label)
            .field("base_name", &self.base_name)
            .finish_non_exhaustive()
    }
}

impl TargetUrl {
    /// Reads one target URL; the parts a `postgres://` URL leaves out come from `env` (libpq's
    /// variables). The target is already checked as its probe entry: a `TargetUrl` builds.
    pub fn parse(
        origin: Origin,
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<TargetUrl, TargetUrlError> {
        crate::redact::while_loading(|| parse(&origin, text, env))
    }

    /// How errors name this target.
    pub(crate) fn label(&self) -> &str {
        &self.label
    }

    /// The probe kind the URL makes (`postgres`, `redis`, `http`, `tcp`).
    pub fn kind(&self) -> Option<&str> {
        self.string("kind")
    }

    /// A key of the probe entry the URL makes, when it is text (`host`, `user`, `password`,
    /// `dbname`, ...): the parts libpq would use, decoded and with the `PG*` variables
    /// filled in.
    pub fn string(&self, key: &str) -> Option<&str> {
        self.entries.iter().find_map(|(k, v)| match &v.value {
            Value::Str(s) if k.name == key => Some(s.as_str()),
            _ => None,
        })
    }

    /// A key of the probe entry that is a number (`port`).
    pub fn int(&self, key: &str) -> Option<i128> {
        self.entries.iter().find_map(|(k, v)| match &v.value {
            Value::Int(n) if k.name == key => Some(*n),
            _ => None,
        })
    }

    /// The probe, named `base_name` or, when `taken` says that is used, `base_name-2`, `-3`...
    pub(super) fn probe(
        &self,
        defaults: &Defaults,
        taken: &dyn Fn(&str) -> bool,
    ) -> Result<ProbeConfig, Vec<String>> {
        let name = (1..)
            .map(|n| numbered(&self.base_name, n))
            .find(|n| !taken(n))
            .unwrap_or_default();
        // Each key on a line of its own, so that an error can say which part it is about.
        let mut entries = vec![key("name", Value::Str(name))];
        entries.extend(self.entries.iter().cloned());
        for (i, (k, v)) in entries.iter_mut().enumerate() {
            let at = Loc {
                line: i as u32 + 1,
                col: 1,
            };
            k.loc = at;
            v.loc = at;
        }
        let names: Vec<String> = entries.iter().map(|(k, _)| k.name.clone()).collect();
        let node = Node {
            value: Value::Map(entries),
            loc: Loc::FILE,
        };
        parse_probe(&node, 0, defaults)
            .map(|p| p.config)
            .map_err(|errs| {
                errs.into_iter()
                    .map(|e| match names.get((e.loc.line as usize).wrapping_sub(1)) {
                        Some(k) if !e.msg.contains(&format!("\"{k}\"")) => {
                            format!("{k}: {}", e.msg)
                        }
                        _ => e.msg,
                    })
                    .collect()
            })
    }
}

/// `base` with `-n` after it from n = 2 on, cut to a probe name's 64 characters.
fn numbered(base: &str, n: usize) -> String {
    let suffix = if n < 2 {
        String::new()
    } else {
        format!("-{n}")
    };
    let keep = 64 - suffix.len();
    let mut name: String = base.chars().take(keep).collect();
    name.push_str(&suffix);
    name
}

/// A target's kind and the keys of its probe entry.
type Entry = (&'static str, Vec<(Key, Node)>);

fn key(name: &str, value: Value) -> (Key, Node) {
    (
        Key {
            name: name.to_string(),
            loc: Loc::FILE,
        },
        Node {
            value,
            loc: Loc::FILE,
        },
    )
}

fn str_entry(name: &str, value: impl Into<String>) -> (Key, Node) {
    key(name, Value::Str(value.into()))
}

fn parse(
    origin: &Origin,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<TargetUrl, TargetUrlError> {
    let text = text.trim();
    // libpq's list of hosts (`a:5432,b:5433`) is no URL to the url crate: say what it is.
    let authority = text
        .split_once("://")
        .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(""));
    if authority.is_some_and(|a| a.rsplit('@').next().unwrap_or(a).contains(',')) {
        return Err(TargetUrlError {
            label: origin.to_string(),
            problem: Problem::SeveralHosts,
        });
    }
    // libpq takes a user with an empty host (`postgresql://app:pw@/db?host=/cloudsql/...`, the
    // form Cloud SQL's socket URLs take); the url crate refuses it, so it reads a stand-in
    // host there, which `host_of` reads as none.
    let spliced;
    let text = match authority {
        Some(a) if text.starts_with("postgres") && empty_host_after_user(a) => {
            let at = text.find("://").unwrap_or(0) + 3 + a.rfind('@').unwrap_or(0) + 1;
            spliced = format!("{}{NO_HOST}{}", &text[..at], &text[at..]);
            spliced.as_str()
        }
        _ => text,
    };
    let url = match url::Url::parse(text) {
        Ok(u) => u,
        Err(e) => {
            // Nothing to quote safely: a URL that does not parse has no password we can find.
            return Err(TargetUrlError {
                label: origin.to_string(),
                problem: Problem::NotUrl(e),
            });
        }
    };
    // Registered before anything quotes the URL: the decoded password and its URL form.
    if let Some(pw) = url.password() {
        crate::redact::register(pw);
        if let Ok(decoded) = percent_decode_str(pw).decode_utf8() {
            crate::redact::register(&decoded);
        }
    }
    for (k, v) in url.query_pairs() {
        if k == "password" {
            crate::redact::register(&v);
        }
    }
    let shown = crate::redact::redact(url.as_str()).replace(&format!("@{NO_HOST}"), "@");
    let label = format!("{origin} \"{shown}\"");
    let fail = |problem: Problem| TargetUrlError {
        label: label.clone(),
        problem,
    };
    let (kind, entries) = match url.scheme() {
        "postgres" | "postgresql" => postgres(&url, env),
        "redis" => redis(&url, false),
        "rediss" => redis(&url, true),
        "http" | "https" => http(&url),
        "tcp" => tcp(&url),
        other => Err(Problem::Scheme(other.to_string())),
    }
    .map_err(fail)?;
    let base_name = base_name(kind, &entries);
    let target = TargetUrl {
        label: label.clone(),
        base_name,
        entries,
    };
    // Checked now, with the kind's defaults, so a bad target stops the command before it
    // starts (exit 2), as a bad config does.
    target
        .probe(&Defaults::default(), &|_| false)
        .map_err(|errs| fail(Problem::Probe(errs.join("; "))))?;
    Ok(target)
}

/// `kind-host-port`, in the characters a probe name may have (a socket directory's slashes
/// become `_`). No user, no password, no database: a name ends up in every label.
fn base_name(kind: &str, entries: &[(Key, Node)]) -> String {
    let get = |k: &str| {
        entries
            .iter()
            .find(|(key, _)| key.name == k)
            .map(|(_, n)| match &n.value {
                Value::Str(s) => s.clone(),
                Value::Int(i) => i.to_string(),
                _ => String::new(),
            })
    };
    let (host, port) = match kind {
        "http" => {
            let url = get("url").and_then(|u| url::Url::parse(&u).ok());
            let host = url.as_ref().and_then(|u| u.host_str().map(str::to_string));
            let port = url.as_ref().and_then(url::Url::port_or_known_default);
            (host.unwrap_or_default(), port.map(|p| p.to_string()))
        }
        "postgres" => (
            get("host").unwrap_or_default(),
            Some(get("port").unwrap_or_else(|| "5432".into())),
        ),
        "redis" => (
            get("host").unwrap_or_default(),
            Some(get("port").unwrap_or_else(|| "6379".into())),
        ),
        _ => (get("host").unwrap_or_default(), get("port")),
    };
    let host: String = host
        .trim_start_matches('/')
        .trim_start_matches('[')
        .trim_end_matches(']')
        .chars()
        .map(|c| if valid_name(&c.to_string()) { c } else { '_' })
        .collect();
    let mut name = format!("{kind}-{host}");
    if let Some(p) = port {
        name.push('-');
        name.push_str(&p);
    }
    numbered(&name, 1)
}

/// A percent-decoded part of the URL (user, password, path).
fn decoded(text: &str, what: &'static str) -> Result<String, Problem> {
    percent_decode_str(text)
        .decode_utf8()
        .map(std::borrow::Cow::into_owned)
        .map_err(|_| Problem::Encoding(what))
}

fn port_number(text: &str) -> Result<u16, Problem> {
    match text.trim().parse::<u16>() {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(Problem::Port(text.to_string())),
    }
}

/// The host `parse` reads in place of an empty one after a user name (`app@/db`).
const NO_HOST: &str = "no-host.invalid";

/// Whether a URL's authority (`user:pw@host:port`) has a user and an empty host.
fn empty_host_after_user(authority: &str) -> bool {
    authority
        .rsplit_once('@')
        .is_some_and(|(_, host)| host.is_empty() || host.starts_with(':'))
}

/// The URL's host without IPv6 brackets, percent-decoded (libpq writes a socket directory
/// there as `%2Fvar%2Frun%2Fpostgresql`); `None` when it has none.
fn host_of(url: &url::Url) -> Result<Option<String>, Problem> {
    match url.host() {
        None | Some(url::Host::Domain("" | NO_HOST)) => Ok(None),
        Some(url::Host::Ipv6(a)) => Ok(Some(a.to_string())),
        Some(url::Host::Ipv4(a)) => Ok(Some(a.to_string())),
        Some(url::Host::Domain(d)) => {
            let host = decoded(d, "host")?;
            if host.contains(',') {
                return Err(Problem::SeveralHosts);
            }
            Ok(Some(host))
        }
    }
}

/// The port as written; the url crate refuses what is not a number below 65536, and a list
/// of hosts (`a:1,b:2`) lands here too.
fn port_of(url: &url::Url) -> Result<Option<u16>, Problem> {
    match url.port() {
        Some(0) => Err(Problem::Port("0".into())),
        p => Ok(p),
    }
}

fn postgres(url: &url::Url, env: &dyn Fn(&str) -> Option<String>) -> Result<Entry, Problem> {
    // An empty variable counts as unset, as in libpq.
    let env = |k: &str| env(k).filter(|v| !v.is_empty());
    let mut params: Vec<(String, String)> = Vec::new();
    for (k, v) in url.query_pairs() {
        if !PG_PARAMS.contains(&k.as_ref()) {
            let hint = de::closest(&k, PG_PARAMS.iter().copied());
            return Err(Problem::Param(k.into_owned(), hint));
        }
        if params.iter().any(|(seen, _)| *seen == k) {
            return Err(Problem::ParamTwice(k.into_owned()));
        }
        params.push((k.into_owned(), v.into_owned()));
    }
    let param = |k: &str| {
        params
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let user = Some(decoded(url.username(), "user name")?).filter(|u| !u.is_empty());
    let password = url.password().map(|p| decoded(p, "password")).transpose()?;
    let dbname = Some(decoded(
        url.path().trim_start_matches('/'),
        "database name",
    )?)
    .filter(|d| !d.is_empty());

    let host = match param("host") {
        Some(h) => h,
        None => host_of(url)?
            .or_else(|| env("PGHOST"))
            .unwrap_or_else(|| DEFAULT_SOCKET_DIR.to_string()),
    };
    if host.contains(',') {
        return Err(Problem::SeveralHosts);
    }
    let port = match param("port") {
        Some(p) => Some(p),
        None => port_of(url)?
            .map(|p| p.to_string())
            .or_else(|| env("PGPORT")),
    };
    let port = port.map(|p| port_number(&p)).transpose()?;
    let mut entries = vec![str_entry("kind", "postgres"), str_entry("host", host)];
    if let Some(p) = port {
        entries.push(key("port", Value::Int(p.into())));
    }
    if let Some(u) = param("user").or(user).or_else(|| env("PGUSER")) {
        entries.push(str_entry("user", u));
    }
    if let Some(pw) = param("password").or(password).or_else(|| env("PGPASSWORD")) {
        crate::redact::register(&pw);
        entries.push(str_entry("password", pw));
    }
    if let Some(d) = param("dbname").or(dbname).or_else(|| env("PGDATABASE")) {
        entries.push(str_entry("dbname", d));
    }
    if let Some(m) = param("sslmode").or_else(|| env("PGSSLMODE")) {
        entries.push(str_entry("sslmode", m));
    }
    for k in ["sslrootcert", "application_name"] {
        if let Some(v) = param(k) {
            entries.push(str_entry(k, v));
        }
    }
    Ok(("postgres", entries))
}

fn redis(url: &url::Url, tls: bool) -> Result<Entry, Problem> {
    let scheme = if tls { "rediss" } else { "redis" };
    if url.query().is_some() {
        return Err(Problem::NoQuery(scheme));
    }
    let host = host_of(url)?.ok_or(Problem::NoHost(scheme))?;
    let mut entries = vec![str_entry("kind", "redis"), str_entry("host", host)];
    if let Some(p) = port_of(url)? {
        entries.push(key("port", Value::Int(p.into())));
    }
    let user = decoded(url.username(), "user name")?;
    if !user.is_empty() {
        entries.push(str_entry("username", user));
    }
    if let Some(pw) = url.password() {
        let pw = decoded(pw, "password")?;
        crate::redact::register(&pw);
        entries.push(str_entry("password", pw));
    }
    let db = url.path().trim_matches('/');
    if !db.is_empty() {
        let n: u32 = db.parse().map_err(|_| Problem::RedisDb(db.to_string()))?;
        entries.push(key("db", Value::Int(n.into())));
    }
    if tls {
        entries.push(key("tls", Value::Bool(true)));
    }
    Ok(("redis", entries))
}

fn http(url: &url::Url) -> Result<Entry, Problem> {
    let scheme = if url.scheme() == "https" {
        "https"
    } else {
        "http"
    };
    if url.host_str().is_none_or(str::is_empty) {
        return Err(Problem::NoHost(scheme));
    }
    port_of(url)?;
    // The http probe sends no userinfo: user and password become basic auth, as curl does.
    let mut bare = url.clone();
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    let mut entries = vec![str_entry("kind", "http"), str_entry("url", bare.as_str())];
    if !url.username().is_empty() || url.password().is_some() {
        use base64::Engine as _;
        let user = decoded(url.username(), "user name")?;
        let pw = url.password().map(|p| decoded(p, "password")).transpose()?;
        let basic = base64::engine::general_purpose::STANDARD
            .encode(format!("{user}:{}", pw.unwrap_or_default()));
        let header = format!("Basic {basic}");
        crate::redact::register(&header);
        entries.push(key(
            "headers",
            Value::Map(vec![str_entry("Authorization", header)]),
        ));
    }
    Ok(("http", entries))
}

fn tcp(url: &url::Url) -> Result<Entry, Problem> {
    let host = host_of(url)?.ok_or(Problem::NoHost("tcp"))?;
    let port = port_of(url)?.ok_or(Problem::NoPort)?;
    let extra = !url.username().is_empty()
        || url.password().is_some()
        || !matches!(url.path(), "" | "/")
        || url.query().is_some()
        || url.fragment().is_some();
    if extra {
        return Err(Problem::OnlyHostPort("tcp"));
    }
    Ok((
        "tcp",
        vec![
            str_entry("kind", "tcp"),
            str_entry("host", host),
            key("port", Value::Int(port.into())),
        ],
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    /// The entry's keys and values as `key=value` text, sorted, for compact assertions.
    fn entry(url: &str, env: &dyn Fn(&str) -> Option<String>) -> (String, Vec<String>) {
        let t = TargetUrl::parse(Origin::Flag(1), url, env).unwrap_or_else(|e| panic!("{e}"));
        let mut kv: Vec<String> = t
            .entries
            .iter()
            .map(|(k, v)| match &v.value {
                Value::Str(s) => format!("{}={s}", k.name),
                Value::Int(i) => format!("{}={i}", k.name),
                Value::Bool(b) => format!("{}={b}", k.name),
                Value::Map(m) => format!("{}={{{}}}", k.name, m.len()),
                _ => format!("{}=?", k.name),
            })
            .collect();
        kv.sort();
        (t.base_name, kv)
    }

    fn problem(url: &str) -> Problem {
        TargetUrl::parse(Origin::Flag(1), url, &no_env)
            .unwrap_err()
            .problem
    }

    #[test]
    fn postgres_uri_forms() {
        let (name, kv) = entry(
            "postgres://app:s3cr%40t@127.0.0.1:6543/shop?sslmode=disable",
            &no_env,
        );
        assert_eq!(name, "postgres-127.0.0.1-6543");
        assert_eq!(
            kv,
            [
                "dbname=shop",
                "host=127.0.0.1",
                "kind=postgres",
                "password=s3cr@t",
                "port=6543",
                "sslmode=disable",
                "user=app"
            ]
        );
        let (name, kv) = entry("postgresql:///shop?host=/tmp/pg%20dir", &no_env);
        assert_eq!(name, "postgres-tmp_pg_dir-5432");
        assert_eq!(kv, ["dbname=shop", "host=/tmp/pg dir", "kind=postgres"]);
        let (name, kv) = entry("postgresql://%2Fvar%2Flib%2Fpostgresql/db", &no_env);
        assert_eq!(name, "postgres-var_lib_postgresql-5432");
        assert!(
            kv.contains(&"host=/var/lib/postgresql".to_string()),
            "{kv:?}"
        );
        let (name, _) = entry("postgres://[::1]:5433/db", &no_env);
        assert_eq!(name, "postgres-::1-5433");
    }

    #[test]
    fn postgres_parts_left_out_come_from_libpq_variables() {
        let env = |k: &str| match k {
            "PGHOST" => Some("/run/pg".to_string()),
            "PGPORT" => Some("5439".to_string()),
            "PGUSER" => Some("alice".to_string()),
            "PGPASSWORD" => Some("from-env".to_string()),
            "PGSSLMODE" => Some("require".to_string()),
            "PGDATABASE" => Some(String::new()),
            _ => None,
        };
        let (name, kv) = entry("postgresql://", &env);
        assert_eq!(name, "postgres-run_pg-5439");
        assert_eq!(
            kv,
            [
                "host=/run/pg",
                "kind=postgres",
                "password=from-env",
                "port=5439",
                "sslmode=require",
                "user=alice"
            ]
        );
        // What the URL says wins.
        let (_, kv) = entry("postgres://bob:pw12@db:5432/x?sslmode=disable", &env);
        assert!(
            kv.contains(&"user=bob".to_string()) && kv.contains(&"sslmode=disable".to_string())
        );
        // Nothing at all: libpq's socket directory.
        let (name, _) = entry("postgresql://", &no_env);
        assert_eq!(name, "postgres-var_run_postgresql-5432");
    }

    #[test]
    fn redis_http_and_tcp_forms() {
        let (name, kv) = entry("rediss://u:pw12@127.0.0.1:6380/2", &no_env);
        assert_eq!(name, "redis-127.0.0.1-6380");
        assert_eq!(
            kv,
            [
                "db=2",
                "host=127.0.0.1",
                "kind=redis",
                "password=pw12",
                "port=6380",
                "tls=true",
                "username=u"
            ]
        );
        let (name, kv) = entry("redis://:pw12@localhost", &no_env);
        assert_eq!(name, "redis-localhost-6379");
        assert_eq!(kv, ["host=localhost", "kind=redis", "password=pw12"]);
        let (name, kv) = entry("https://u:pw12@example.test/health", &no_env);
        assert_eq!(name, "http-example.test-443");
        assert_eq!(
            kv,
            [
                "headers={1}",
                "kind=http",
                "url=https://example.test/health"
            ]
        );
        let (name, kv) = entry("tcp://127.0.0.1:9", &no_env);
        assert_eq!(name, "tcp-127.0.0.1-9");
        assert_eq!(kv, ["host=127.0.0.1", "kind=tcp", "port=9"]);
    }

    #[test]
    fn names_are_numbered_and_cut_to_64() {
        assert_eq!(numbered("tcp-a-1", 1), "tcp-a-1");
        assert_eq!(numbered("tcp-a-1", 2), "tcp-a-1-2");
        let long = "x".repeat(80);
        assert_eq!(numbered(&long, 1).len(), 64);
        assert!(numbered(&long, 12).ends_with("x-12") && numbered(&long, 12).len() == 64);
    }

    #[test]
    fn problems() {
        assert!(matches!(problem("localhost:5432"), Problem::Scheme(s) if s == "localhost"));
        assert!(matches!(problem("db.internal"), Problem::NotUrl(_)));
        assert_eq!(problem("mysql://h/db"), Problem::Scheme("mysql".into()));
        assert_eq!(problem("tcp://127.0.0.1"), Problem::NoPort);
        assert_eq!(problem("tcp://127.0.0.1:9/x"), Problem::OnlyHostPort("tcp"));
        assert_eq!(problem("redis:///x"), Problem::NoHost("redis"));
        assert_eq!(problem("redis://h/zero"), Problem::RedisDb("zero".into()));
        assert_eq!(problem("postgres://h:0/db"), Problem::Port("0".into()));
        assert_eq!(
            problem("postgres://h/db?port=99999"),
            Problem::Port("99999".into())
        );
        assert_eq!(problem("postgres://a,b/db"), Problem::SeveralHosts);
        assert_eq!(
            problem("postgres://h/db?sslmod=require"),
            Problem::Param("sslmod".into(), Some("sslmode"))
        );
        assert_eq!(
            problem("postgres://h/db?port=1&port=2"),
            Problem::ParamTwice("port".into())
        );
        assert!(matches!(
            problem("postgres://h/db?sslmode=allow"),
            Problem::Probe(_)
        ));
    }

    #[test]
    fn errors_mask_the_password() {
        let e = TargetUrl::parse(
            Origin::Flag(2),
            "postgres://app:hunter22@h/db?sslmode=nope",
            &no_env,
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(!text.contains("hunter22"), "{text}");
        assert!(text.starts_with("--target #2 \"postgres://app:"), "{text}");
        let t = TargetUrl::parse(
            Origin::Env("DATABASE_URL"),
            "postgres://app:hunter22@h/db",
            &no_env,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert!(!format!("{t:?}").contains("hunter22"), "{t:?}");
    }
}
