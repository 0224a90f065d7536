//! `pathwatch import blackbox FILE`: a blackbox_exporter config's modules as pathwatch
//! on-demand modules. Every field that cannot be carried over is named with its place in the
//! file, so that a team moving over knows exactly what it loses; nothing is dropped silently
//! unless pathwatch already does the same thing without it.
//!
//! Credentials written in the file itself (`basic_auth`, `bearer_token`,
//! `authorization.credentials`, `oauth2.client_secret`, `http_headers.*.secrets`) are never
//! copied into the output: each becomes a `${BLACKBOX_...}` reference, and the field is named
//! as needing that secret. Files (`bearer_token_file`, `client_secret_file`) stay file
//! references.

use crate::config::node::{self, Key, Loc, Node, Value};

/// The address every converted module gets: blackbox modules have none (Prometheus gives
/// the target), pathwatch probes need one. `.invalid` never resolves (RFC 6761).
pub(crate) const PLACEHOLDER_HOST: &str = "target.invalid";

/// A field that has no pathwatch equivalent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dropped {
    /// Where the field is in the blackbox file.
    pub loc: Loc,
    pub(crate) module: String,
    /// Its path within the module, dotted: `tcp.query_response`.
    pub(crate) field: String,
    /// Why, when the field name alone does not say it.
    pub why: Option<String>,
    /// The variable the converted config reads in its place, when the field is a secret
    /// written in the file: converted, but only once the variable is set.
    pub secret: Option<String>,
}

/// The converted config (YAML text) and the fields left behind.
#[derive(Debug)]
pub struct Converted {
    /// The pathwatch config: one probe entry per convertible module.
    pub yaml: String,
    /// How many modules the blackbox file had.
    pub modules: usize,
    /// Every field left behind, in file order.
    pub dropped: Vec<Dropped>,
}

/// The file is no blackbox config at all.
#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub struct ImportError {
    /// Where in the blackbox file the conversion gave up.
    pub loc: Loc,
    pub(crate) msg: String,
}

/// A value to write out: rendered in YAML flow style (JSON strings are YAML strings).
enum Out {
    Str(String),
    /// Written as is: numbers, booleans, words that need no quotes.
    Raw(String),
    Seq(Vec<Out>),
    Map(Vec<(String, Out)>),
}

impl Out {
    fn render(&self) -> String {
        match self {
            Out::Str(s) => quote(s),
            Out::Raw(s) => s.clone(),
            Out::Seq(items) => {
                let inner: Vec<String> = items.iter().map(Out::render).collect();
                format!("[{}]", inner.join(", "))
            }
            Out::Map(entries) => {
                let inner: Vec<String> = entries
                    .iter()
                    .map(|(k, v)| format!("{}: {}", quote(k), v.render()))
                    .collect();
                format!("{{ {} }}", inner.join(", "))
            }
        }
    }
}

fn quote(s: &str) -> String {
    // A JSON string is a valid YAML double-quoted scalar; `$` is doubled nowhere because
    // pathwatch expands `${VAR}` and blackbox does not: such a value is reported instead.
    serde_json::to_string(s).unwrap_or_else(|_| String::from("\"\""))
}

/// Converts the text of a blackbox_exporter config.
pub fn convert(text: &str) -> Result<Converted, ImportError> {
    // Blackbox does not expand `${VAR}`: give the text back as written.
    let keep = |name: &str| Some(format!("${{{name}}}"));
    let root = node::parse_foreign(text, &keep).map_err(|e| ImportError {
        loc: e.loc,
        msg: e.msg,
    })?;
    let Value::Map(top) = &root.value else {
        return Err(ImportError {
            loc: root.loc,
            msg: format!(
                "expected a mapping with `modules:`, found {}",
                root.value.describe()
            ),
        });
    };
    let mut cx = Cx::default();
    let mut modules = None;
    for (k, v) in top {
        if k.name == "modules" {
            modules = Some(v);
        } else {
            cx.drop_at(k.loc, "", &k.name, Some(" (not a module)"));
        }
    }
    let Some(modules) = modules else {
        return Err(ImportError {
            loc: root.loc,
            msg: "no `modules:` mapping: not a blackbox_exporter config".into(),
        });
    };
    let entries: &[(Key, Node)] = match &modules.value {
        Value::Map(m) => m,
        Value::Null => &[],
        other => {
            return Err(ImportError {
                loc: modules.loc,
                msg: format!("`modules:` must be a mapping, found {}", other.describe()),
            });
        }
    };
    let mut probes = Vec::new();
    let mut names = std::collections::HashSet::new();
    for (k, module) in entries {
        let name = probe_name(&k.name);
        if !names.insert(name.clone()) {
            cx.drop_at(
                k.loc,
                &k.name,
                "",
                Some("its name is taken by another module"),
            );
            continue;
        }
        if let Some(p) = cx.module(&name, k, module) {
            probes.push(p);
        }
    }
    // In file order: a missing field is reported at its section, after the fields in it.
    cx.dropped.sort_by_key(|d| (d.loc.line, d.loc.col));
    Ok(Converted {
        modules: probes.len(),
        yaml: render(&probes),
        dropped: cx.dropped,
    })
}

/// A probe name from a module name: pathwatch's names are label values of at most 64
/// characters of `[A-Za-z0-9_.:-]`.
fn probe_name(module: &str) -> String {
    let mut n: String = module
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    if n.is_empty() {
        n.push('_');
    }
    n
}

fn render(probes: &[Vec<(String, Out)>]) -> String {
    let mut s = String::new();
    s.push_str(
        "# Converted from a blackbox_exporter config by `pathwatch import blackbox`.\n\
         # Each module is a probe to call as /probe?module=NAME&target=TARGET (see the\n\
         # on-demand page). Its own address (target.invalid) is a placeholder: set a real one,\n\
         # or the module's scheduled runs fail with reason `dns`.\n\
         on_demand:\n  \
         # The targets Prometheus may ask for, e.g. \"10.0.0.0/16:*\" or \"https://*.example.com/*\";\n  \
         # empty refuses every target.\n  \
         allowed_targets: []\n",
    );
    if probes.is_empty() {
        s.push_str("probes: []\n");
        return s;
    }
    s.push_str("probes:\n");
    for p in probes {
        let mut first = true;
        for (k, v) in p {
            s.push_str(if first { "  - " } else { "    " });
            first = false;
            s.push_str(&format!("{k}: {}\n", v.render()));
        }
    }
    s
}

#[derive(Default)]
struct Cx {
    dropped: Vec<Dropped>,
}

/// The `${...}` pathwatch would expand: not writable as a pathwatch value.
fn has_var(s: &str) -> bool {
    s.contains("${")
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_string()
    } else if name.is_empty() {
        prefix.to_string()
    } else {
        format!("{prefix}.{name}")
    }
}

/// The variable a secret of module `m` is read from: `BLACKBOX_<MODULE>_<FIELD>`, in
/// capitals, every other character an underscore.
fn secret_var(m: &str, field: &str) -> String {
    format!("BLACKBOX_{m}_{field}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

impl Cx {
    fn drop_at(&mut self, loc: Loc, module: &str, field: &str, why: Option<&str>) {
        self.dropped.push(Dropped {
            loc,
            module: module.to_string(),
            field: field.to_string(),
            why: why.map(str::to_string),
            secret: None,
        });
    }

    /// A secret written in the file: named as needing its variable, which is returned as the
    /// `${VAR}` to write instead of the value.
    fn secret(&mut self, k: &Key, m: &str, field: &str, why: Option<&str>) -> String {
        let var = secret_var(m, field.trim_start_matches("http."));
        self.dropped.push(Dropped {
            loc: k.loc,
            module: m.to_string(),
            field: field.to_string(),
            why: why.map(str::to_string),
            secret: Some(var.clone()),
        });
        format!("${{{var}}}")
    }

    fn drop(&mut self, m: &str, prefix: &str, k: &Key) {
        self.drop_at(k.loc, m, &join(prefix, &k.name), None);
    }

    /// A string value, or the field reported.
    fn string(&mut self, m: &str, prefix: &str, k: &Key, v: &Node) -> Option<String> {
        match &v.value {
            Value::Str(s) if !has_var(s) => Some(s.clone()),
            Value::Int(i) => Some(i.to_string()),
            _ => {
                self.drop_at(
                    k.loc,
                    m,
                    &join(prefix, &k.name),
                    Some(" (not a plain string)"),
                );
                None
            }
        }
    }

    fn boolean(&mut self, m: &str, prefix: &str, k: &Key, v: &Node) -> Option<bool> {
        match v.value {
            Value::Bool(b) => Some(b),
            _ => {
                self.drop_at(k.loc, m, &join(prefix, &k.name), Some(" (not a boolean)"));
                None
            }
        }
    }

    fn strings(&mut self, m: &str, prefix: &str, k: &Key, v: &Node) -> Option<Vec<String>> {
        let Value::Seq(items) = &v.value else {
            self.drop_at(k.loc, m, &join(prefix, &k.name), Some(" (not a list)"));
            return None;
        };
        let mut out = Vec::new();
        for it in items {
            match &it.value {
                Value::Str(s) if !has_var(s) => out.push(s.clone()),
                _ => {
                    self.drop_at(
                        it.loc,
                        m,
                        &join(prefix, &k.name),
                        Some(" (not a plain string)"),
                    );
                    return None;
                }
            }
        }
        Some(out)
    }

    /// Reports every entry of a mapping (a section nothing of which converts).
    fn entries<'a>(&mut self, m: &str, prefix: &str, k: &Key, v: &'a Node) -> &'a [(Key, Node)] {
        match &v.value {
            Value::Map(e) => e,
            Value::Null => &[],
            _ => {
                self.drop_at(k.loc, m, &join(prefix, &k.name), Some(" (not a mapping)"));
                &[]
            }
        }
    }

    fn module(&mut self, name: &str, key: &Key, module: &Node) -> Option<Vec<(String, Out)>> {
        let m = key.name.as_str();
        let Value::Map(fields) = &module.value else {
            self.drop_at(key.loc, m, "", Some(" (not a mapping)"));
            return None;
        };
        let prober = fields
            .iter()
            .find(|(k, _)| k.name == "prober")
            .and_then(|(k, v)| v.as_str().map(|s| (k, s)));
        let Some((prober_key, prober)) = prober else {
            self.drop_at(key.loc, m, "prober", Some(" (missing)"));
            return None;
        };
        let kind = match prober {
            "http" | "tcp" | "dns" | "icmp" | "grpc" => prober,
            _ => {
                let why = format!(" (prober {prober:?}: the module is left out)");
                self.drop_at(prober_key.loc, m, "prober", Some(&why));
                return None;
            }
        };
        let mut out: Vec<(String, Out)> = vec![
            ("name".into(), Out::Str(name.into())),
            ("kind".into(), Out::Raw(kind.into())),
        ];
        let mut section = None;
        let mut timeout = None;
        for (k, v) in fields {
            match k.name.as_str() {
                "prober" => {}
                "timeout" => match v.as_str().filter(|s| is_duration(s)) {
                    Some(t) => timeout = Some(t.to_string()),
                    None => self.drop_at(
                        k.loc,
                        m,
                        "timeout",
                        Some(" (not a duration pathwatch reads)"),
                    ),
                },
                s if s == kind => section = Some((k, v)),
                _ => self.drop(m, "", k),
            }
        }
        let (sk, sv) = match section {
            Some((k, v)) => (Some(k), Some(v)),
            None => (None, None),
        };
        let body: &[(Key, Node)] = match (sk, sv) {
            (Some(k), Some(v)) => self.entries(m, "", k, v),
            _ => &[],
        };
        let ok = match kind {
            "http" => self.http(m, body, &mut out),
            "tcp" => self.tcp(m, body, &mut out),
            "dns" => self.dns(m, sk.map_or(key.loc, |k| k.loc), body, &mut out),
            "icmp" => self.icmp(m, body, &mut out),
            _ => self.grpc(m, body, &mut out),
        };
        if !ok {
            return None;
        }
        if let Some(t) = timeout {
            out.push(("timeout".into(), Out::Raw(t)));
        }
        Some(out)
    }

    fn ip_protocol(&mut self, m: &str, p: &str, k: &Key, v: &Node, out: &mut Vec<(String, Out)>) {
        match v.as_str() {
            Some(s @ ("ip4" | "ip6")) => out.push(("ip_protocol".into(), Out::Raw(s.into()))),
            _ => self.drop_at(
                k.loc,
                m,
                &join(p, &k.name),
                Some(" (only ip4 and ip6 convert)"),
            ),
        }
    }

    fn http(&mut self, m: &str, body: &[(Key, Node)], out: &mut Vec<(String, Out)>) -> bool {
        let p = "http";
        out.push((
            "url".into(),
            Out::Str(format!("http://{PLACEHOLDER_HOST}/")),
        ));
        let mut headers: Vec<(String, Out)> = Vec::new();
        let mut asserts: Vec<Out> = Vec::new();
        let mut valid = None;
        let mut follow = true;
        for (k, v) in body {
            match k.name.as_str() {
                "valid_status_codes" => match &v.value {
                    Value::Seq(items) => {
                        let codes: Option<Vec<Out>> = items
                            .iter()
                            .map(|i| match i.value {
                                Value::Int(c) if (100..=599).contains(&c) => {
                                    Some(Out::Raw(c.to_string()))
                                }
                                _ => None,
                            })
                            .collect();
                        match codes {
                            Some(c) if !c.is_empty() => valid = Some(c),
                            Some(_) => {}
                            None => self.drop_at(
                                k.loc,
                                m,
                                "http.valid_status_codes",
                                Some(" (not a list of status codes)"),
                            ),
                        }
                    }
                    _ => self.drop(m, p, k),
                },
                "method" => {
                    if let Some(s) = self.string(m, p, k, v) {
                        out.push(("method".into(), Out::Str(s)));
                    }
                }
                "headers" => {
                    for (hk, hv) in self.entries(m, p, k, v) {
                        if let Some(s) = self.string(m, "http.headers", hk, hv) {
                            headers.push((hk.name.clone(), Out::Str(s)));
                        }
                    }
                }
                "http_headers" => {
                    for (hk, hv) in self.entries(m, p, k, v) {
                        let prefix = format!("http.http_headers.{}", hk.name);
                        let mut one = None;
                        for (vk, vv) in self.entries(m, "http.http_headers", hk, hv) {
                            match vk.name.as_str() {
                                "secrets"
                                    if one.is_none()
                                        && matches!(&vv.value, Value::Seq(s) if s.len() == 1) =>
                                {
                                    one = Some(self.secret(vk, m, &join(&prefix, "secrets"), None));
                                }
                                "values" => match self.strings(m, &prefix, vk, vv) {
                                    Some(list) if list.len() == 1 && one.is_none() => {
                                        one = list.into_iter().next();
                                    }
                                    Some(_) => self.drop_at(
                                        vk.loc,
                                        m,
                                        &join(&prefix, &vk.name),
                                        Some(" (only one value per header converts)"),
                                    ),
                                    None => {}
                                },
                                _ => self.drop(m, &prefix, vk),
                            }
                        }
                        if let Some(s) = one {
                            headers.push((hk.name.clone(), Out::Str(s)));
                        }
                    }
                }
                "follow_redirects" => {
                    if let Some(b) = self.boolean(m, p, k, v) {
                        follow = b;
                    }
                }
                "fail_if_ssl" | "fail_if_not_ssl" => {
                    // false is what pathwatch does anyway.
                    if self.boolean(m, p, k, v) == Some(true) {
                        self.drop(m, p, k);
                    }
                }
                "fail_if_body_matches_regexp" => {
                    for r in self.strings(m, p, k, v).unwrap_or_default() {
                        asserts.push(Out::Map(vec![("not_regex".into(), Out::Str(r))]));
                    }
                }
                "fail_if_body_not_matches_regexp" => {
                    for r in self.strings(m, p, k, v).unwrap_or_default() {
                        asserts.push(Out::Map(vec![("regex".into(), Out::Str(r))]));
                    }
                }
                "tls_config" => self.tls_config(m, "http.tls_config", k, v, out, true),
                "preferred_ip_protocol" => self.ip_protocol(m, p, k, v, out),
                "ip_protocol_fallback" => {
                    if let Some(b) = self.boolean(m, p, k, v) {
                        out.push(("ip_protocol_fallback".into(), Out::Raw(b.to_string())));
                    }
                }
                "proxy_url" | "body" | "bearer_token_file" => {
                    if let Some(s) = self.string(m, p, k, v) {
                        out.push((k.name.clone(), Out::Str(s)));
                    }
                }
                "skip_resolve_phase_with_proxy" => {
                    // pathwatch always lets the proxy resolve the target.
                    if self.boolean(m, p, k, v) == Some(false) {
                        self.drop(m, p, k);
                    }
                }
                "authorization" => self.authorization(m, k, v, out, &mut headers),
                "basic_auth" => self.basic_auth(m, k, v, &mut headers),
                "bearer_token" => {
                    let var = self.secret(k, m, "http.bearer_token", None);
                    headers.push(("Authorization".into(), Out::Str(format!("Bearer {var}"))));
                }
                "oauth2" => self.oauth2(m, k, v, out),
                _ => self.drop(m, p, k),
            }
        }
        // Blackbox's defaults, where pathwatch's differ: 2xx (pathwatch: 200-399) and every
        // redirect followed (pathwatch: same origin only).
        out.push((
            "valid_status".into(),
            Out::Seq(valid.unwrap_or_else(|| vec![Out::Str("200-299".into())])),
        ));
        out.push((
            "follow_redirects".into(),
            Out::Raw(if follow { "any" } else { "none" }.into()),
        ));
        if !headers.is_empty() {
            out.push(("headers".into(), Out::Map(headers)));
        }
        if !asserts.is_empty() {
            out.push(("assert".into(), Out::Seq(asserts)));
        }
        true
    }

    /// `tls_config`: the keys pathwatch has; `client` says whether it takes client
    /// certificates (http does, grpc does not).
    fn tls_config(
        &mut self,
        m: &str,
        p: &str,
        k: &Key,
        v: &Node,
        out: &mut Vec<(String, Out)>,
        client: bool,
    ) {
        for (tk, tv) in self.entries(m, "", k, v) {
            let name = tk.name.as_str();
            match name {
                "insecure_skip_verify" => {
                    if let Some(b) = self.boolean(m, p, tk, tv) {
                        out.push((name.into(), Out::Raw(b.to_string())));
                    }
                }
                "ca_file" => {
                    if let Some(s) = self.string(m, p, tk, tv) {
                        out.push((name.into(), Out::Str(s)));
                    }
                }
                "cert_file" | "key_file" if client => {
                    if let Some(s) = self.string(m, p, tk, tv) {
                        out.push((name.into(), Out::Str(s)));
                    }
                }
                "server_name" if !client => {
                    if let Some(s) = self.string(m, p, tk, tv) {
                        out.push((name.into(), Out::Str(s)));
                    }
                }
                _ => self.drop(m, p, tk),
            }
        }
    }

    /// `authorization`: a bearer `credentials_file` is `bearer_token_file`; `credentials`
    /// written in the file become an `Authorization` header read from a variable.
    fn authorization(
        &mut self,
        m: &str,
        k: &Key,
        v: &Node,
        out: &mut Vec<(String, Out)>,
        headers: &mut Vec<(String, Out)>,
    ) {
        let p = "http.authorization";
        let e = self.entries(m, "http", k, v);
        let scheme = match e.iter().find(|(k, _)| k.name == "type") {
            None => Some("Bearer".to_string()),
            // A header's scheme is one token: anything else is left behind.
            Some((_, v)) => v
                .as_str()
                .filter(|t| {
                    !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
                .map(str::to_string),
        };
        let bearer = scheme
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case("bearer"));
        for (ak, av) in e {
            match ak.name.as_str() {
                "type" if scheme.is_some() => {}
                "credentials_file" if bearer => {
                    if let Some(s) = self.string(m, p, ak, av) {
                        out.push(("bearer_token_file".into(), Out::Str(s)));
                    }
                }
                "credentials" => match &scheme {
                    Some(scheme) => {
                        let var = self.secret(ak, m, "http.authorization.credentials", None);
                        headers.push(("Authorization".into(), Out::Str(format!("{scheme} {var}"))));
                    }
                    None => self.drop(m, p, ak),
                },
                _ => self.drop(m, p, ak),
            }
        }
    }

    /// `basic_auth`: pathwatch sends it as an `Authorization: Basic` header, read from a
    /// variable holding the base64 of `username:password` (the password, written in the
    /// file or in `password_file`, is not copied).
    fn basic_auth(&mut self, m: &str, k: &Key, v: &Node, headers: &mut Vec<(String, Out)>) {
        let p = "http.basic_auth";
        let mut user = String::new();
        for (bk, bv) in self.entries(m, "http", k, v) {
            match bk.name.as_str() {
                "username" => user = self.string(m, p, bk, bv).unwrap_or_default(),
                "password" | "password_file" => {}
                _ => self.drop(m, p, bk),
            }
        }
        let why = format!(" to the base64 of \"{user}:<password>\"");
        let var = self.secret(k, m, p, Some(&why));
        headers.push(("Authorization".into(), Out::Str(format!("Basic {var}"))));
    }

    fn oauth2(&mut self, m: &str, k: &Key, v: &Node, out: &mut Vec<(String, Out)>) {
        let p = "http.oauth2";
        let mut o: Vec<(String, Out)> = Vec::new();
        for (ok, ov) in self.entries(m, "http", k, v) {
            let name = ok.name.as_str();
            match name {
                "client_secret" => {
                    let var = self.secret(ok, m, "http.oauth2.client_secret", None);
                    o.push((name.into(), Out::Str(var)));
                }
                "client_id" | "client_secret_file" | "token_url" => {
                    if let Some(s) = self.string(m, p, ok, ov) {
                        o.push((name.into(), Out::Str(s)));
                    }
                }
                "scopes" => {
                    if let Some(list) = self.strings(m, p, ok, ov) {
                        o.push((
                            name.into(),
                            Out::Seq(list.into_iter().map(Out::Str).collect()),
                        ));
                    }
                }
                "endpoint_params" => {
                    let mut params = Vec::new();
                    let ep = format!("{p}.endpoint_params");
                    for (pk, pv) in self.entries(m, p, ok, ov) {
                        let Some(s) = self.string(m, &ep, pk, pv) else {
                            continue;
                        };
                        // pathwatch asks for client credentials itself.
                        if pk.name == "grant_type" && s == "client_credentials" {
                            continue;
                        }
                        if pk.name == "grant_type" {
                            self.drop(m, &ep, pk);
                            continue;
                        }
                        params.push((pk.name.clone(), Out::Str(s)));
                    }
                    if !params.is_empty() {
                        o.push((name.into(), Out::Map(params)));
                    }
                }
                _ => self.drop(m, p, ok),
            }
        }
        out.push(("oauth2".into(), Out::Map(o)));
    }

    fn tcp(&mut self, m: &str, body: &[(Key, Node)], out: &mut Vec<(String, Out)>) -> bool {
        out.push(("host".into(), Out::Str(PLACEHOLDER_HOST.into())));
        out.push(("port".into(), Out::Raw("1".into())));
        for (k, v) in body {
            match k.name.as_str() {
                // Plain TCP is what pathwatch's tcp probe does.
                "tls" if matches!(v.value, Value::Bool(false)) => {}
                "tls" => self.drop_at(
                    k.loc,
                    m,
                    "tcp.tls",
                    Some(" (pathwatch's tcp probe only connects)"),
                ),
                _ => self.drop(m, "tcp", k),
            }
        }
        true
    }

    fn dns(
        &mut self,
        m: &str,
        at: Loc,
        body: &[(Key, Node)],
        out: &mut Vec<(String, Out)>,
    ) -> bool {
        const TYPES: &[&str] = &["A", "AAAA", "CNAME", "MX", "TXT", "SRV", "NS", "SOA", "PTR"];
        const RCODES: &[&str] = &[
            "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "YXDOMAIN",
            "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE",
        ];
        const CHECKS: &[&str] = &[
            "fail_if_matches_regexp",
            "fail_if_not_matches_regexp",
            "fail_if_all_match_regexp",
            "fail_if_none_matches_regexp",
        ];
        let p = "dns";
        out.push(("server".into(), Out::Str(format!("{PLACEHOLDER_HOST}:53"))));
        let mut name = None;
        let mut qtype = false;
        let mut rest = Vec::new();
        for (k, v) in body {
            match k.name.as_str() {
                "query_name" => name = self.string(m, p, k, v),
                "query_type" => match v.as_str().map(str::to_ascii_uppercase) {
                    Some(t) if TYPES.contains(&t.as_str()) => {
                        qtype = true;
                        rest.push(("query_type".into(), Out::Raw(t)));
                    }
                    _ => {
                        qtype = true;
                        self.drop_at(k.loc, m, "dns.query_type", Some(" (this record type)"));
                    }
                },
                "query_class" if v.as_str().is_some_and(|c| c.eq_ignore_ascii_case("IN")) => {}
                "valid_rcodes" => {
                    if let Some(list) = self.strings(m, p, k, v) {
                        let known: Vec<Out> = list
                            .iter()
                            .filter(|r| RCODES.contains(&r.as_str()))
                            .map(|r| Out::Raw(r.clone()))
                            .collect();
                        if known.len() == list.len() {
                            rest.push(("valid_rcodes".into(), Out::Seq(known)));
                        } else {
                            self.drop_at(
                                k.loc,
                                m,
                                "dns.valid_rcodes",
                                Some(" (an rcode pathwatch does not name)"),
                            );
                        }
                    }
                }
                s @ ("validate_answer_rrs"
                | "validate_authority_rrs"
                | "validate_additional_rrs") => {
                    let prefix = format!("dns.{s}");
                    let mut checks = Vec::new();
                    for (ck, cv) in self.entries(m, p, k, v) {
                        if CHECKS.contains(&ck.name.as_str()) {
                            if let Some(list) = self.strings(m, &prefix, ck, cv) {
                                checks.push((
                                    ck.name.clone(),
                                    Out::Seq(list.into_iter().map(Out::Str).collect()),
                                ));
                            }
                        } else {
                            self.drop(m, &prefix, ck);
                        }
                    }
                    if !checks.is_empty() {
                        rest.push((s.into(), Out::Map(checks)));
                    }
                }
                "transport_protocol" => match v.as_str() {
                    Some(t @ ("udp" | "tcp")) => {
                        rest.push(("transport".into(), Out::Raw(t.into())));
                    }
                    _ => self.drop(m, p, k),
                },
                "recursion_desired" => {
                    if let Some(b) = self.boolean(m, p, k, v) {
                        rest.push(("recursion_desired".into(), Out::Raw(b.to_string())));
                    }
                }
                _ => self.drop(m, p, k),
            }
        }
        let Some(name) = name else {
            self.drop_at(
                at,
                m,
                "dns.query_name",
                Some(" (missing: the module is left out)"),
            );
            return false;
        };
        if !qtype {
            // Blackbox asks ANY by default; pathwatch asks A.
            self.drop_at(
                at,
                m,
                "dns.query_type",
                Some(" (blackbox's default ANY; pathwatch asks A)"),
            );
        }
        out.push(("query_name".into(), Out::Str(name)));
        out.extend(rest);
        true
    }

    fn icmp(&mut self, m: &str, body: &[(Key, Node)], out: &mut Vec<(String, Out)>) -> bool {
        out.push(("host".into(), Out::Str(PLACEHOLDER_HOST.into())));
        for (k, v) in body {
            match k.name.as_str() {
                "preferred_ip_protocol" => self.ip_protocol(m, "icmp", k, v, out),
                // pathwatch falls back to the other family, as blackbox's default does.
                "ip_protocol_fallback" if matches!(v.value, Value::Bool(true)) => {}
                _ => self.drop(m, "icmp", k),
            }
        }
        true
    }

    fn grpc(&mut self, m: &str, body: &[(Key, Node)], out: &mut Vec<(String, Out)>) -> bool {
        out.push(("host".into(), Out::Str(PLACEHOLDER_HOST.into())));
        out.push(("port".into(), Out::Raw("1".into())));
        for (k, v) in body {
            match k.name.as_str() {
                "service" => {
                    if let Some(s) = self.string(m, "grpc", k, v) {
                        out.push(("service".into(), Out::Str(s)));
                    }
                }
                "tls" => {
                    if let Some(b) = self.boolean(m, "grpc", k, v) {
                        out.push(("tls".into(), Out::Raw(b.to_string())));
                    }
                }
                "tls_config" => self.tls_config(m, "grpc.tls_config", k, v, out, false),
                _ => self.drop(m, "grpc", k),
            }
        }
        true
    }
}

/// A duration both tools read the same way: digits and a unit (ms, s, m, h), repeated.
fn is_duration(s: &str) -> bool {
    let mut rest = s;
    if rest.is_empty() {
        return false;
    }
    while !rest.is_empty() {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        let unit = ["ms", "s", "m", "h"]
            .into_iter()
            .find(|u| rest.starts_with(u));
        match unit {
            Some(u) => rest = &rest[u.len()..],
            None => return false,
        }
    }
    true
}

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(var) = &self.secret {
            write!(
                f,
                "module \"{}\": field \"{}\" needs a secret: set {var}",
                self.module, self.field
            )?;
            f.write_str(self.why.as_deref().unwrap_or(""))?;
            return f.write_str(" (the value in the file is not copied)");
        }
        if self.module.is_empty() {
            write!(f, "field \"{}\" has no pathwatch equivalent", self.field)?;
        } else if self.field.is_empty() {
            write!(f, "module \"{}\" has no pathwatch equivalent", self.module)?;
        } else {
            write!(
                f,
                "module \"{}\": field \"{}\" has no pathwatch equivalent",
                self.module, self.field
            )?;
        }
        f.write_str(self.why.as_deref().unwrap_or(""))
    }
}
