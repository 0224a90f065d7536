//! A YAML document as a tree of nodes that remember where they stand in the file.
//!
//! serde-saphyr parses the text; we keep every key and value with its line and column so that
//! every later error (unknown field, bad duration, duplicate probe name, unset `${VAR}`) can
//! point at the exact place, even inside the tagged probe list where serde's buffering would
//! lose positions. `${VAR}` expansion happens here, on string scalars, for the same reason.
//! A variable that cannot be expanded ([`ExpandError`]) does not stop the parse: the scalar
//! becomes [`Value::Invalid`] and the entry holding it reports it, with its name.

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;

/// A 1-based line and column in the config file; line 0 ([`Loc::FILE`]) is the file as a
/// whole, for errors that have no position (an unreadable file).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Loc {
    pub line: u32,
    pub col: u32,
}

impl Loc {
    pub(crate) const FILE: Loc = Loc { line: 0, col: 0 };

    fn from_saphyr(l: &serde_saphyr::Location) -> Self {
        Loc {
            line: l.line().max(1) as u32,
            col: l.column().max(1) as u32,
        }
    }
}

/// A value with its location.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    pub(crate) value: Value,
    pub(crate) loc: Loc,
}

/// A mapping key with its location.
#[derive(Clone, Debug)]
pub(crate) struct Key {
    pub(crate) name: String,
    pub(crate) loc: Loc,
}

#[derive(Clone, Debug)]
pub(crate) enum Value {
    Null,
    Bool(bool),
    Int(i128),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
    /// A string whose `${VAR}` could not be expanded; the message says why. Kept in the tree
    /// so that the error is reported with the probe it belongs to, not for the whole file.
    Invalid(String),
}

impl Value {
    /// What a user would call this value in an error message.
    pub(crate) fn describe(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Int(_) => "an integer",
            Value::Float(_) => "a number",
            Value::Str(_) => "a string",
            Value::Seq(_) => "a list",
            Value::Map(_) => "a mapping",
            Value::Invalid(_) => "an invalid value",
        }
    }
}

impl Node {
    /// The value of `key` in a mapping node.
    pub(crate) fn get(&self, key: &str) -> Option<(&Key, &Node)> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.name == key)
                .map(|(k, v)| (k, v)),
            _ => None,
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// A YAML syntax error or an unset variable, with its location.
#[derive(Debug, thiserror::Error)]
#[error("{msg}")]
pub(crate) struct ParseError {
    pub(crate) loc: Loc,
    pub(crate) msg: String,
}

/// Parses YAML text into a located tree, expanding `${VAR}` with `env`.
pub(crate) fn parse(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Node, ParseError> {
    parse_with(text, env, options(text.len()))
}

/// [`parse`] for another tool's file (`pathwatch import`): a `!!binary` scalar stays its
/// base64 text instead of failing the whole file, so that its field can be named.
pub(crate) fn parse_foreign(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Node, ParseError> {
    let mut opts = options(text.len());
    opts.ignore_binary_tag_for_string = true;
    parse_with(text, env, opts)
}

fn parse_with(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    opts: serde_saphyr::Options,
) -> Result<Node, ParseError> {
    if text.trim().is_empty() {
        return Ok(Node {
            value: Value::Map(Vec::new()),
            loc: Loc { line: 1, col: 1 },
        });
    }
    let read: Spanned<Value> =
        serde_saphyr::from_str_with_options(text, opts).map_err(|e| ParseError {
            loc: e
                .location()
                .map(|l| Loc::from_saphyr(&l))
                .unwrap_or(Loc { line: 1, col: 1 }),
            msg: friendly(&first_line(&e.to_string())),
        })?;
    let mut root = located(read);
    expand_all(&mut root, env);
    Ok(root)
}

/// serde-saphyr's default budget (250,000 nodes, 1,000,000 events) is what stops an alias
/// bomb, but it also stopped a plain file at about 27,000 probes. The node and event caps
/// grow with the text instead (a node takes at least two bytes of YAML without aliases), so
/// a large file parses while expansions still stay within a constant factor of its size.
fn options(bytes: usize) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_nodes = budget.max_nodes.max(bytes / 2);
    budget.max_events = budget.max_events.max(bytes);
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options
}

/// serde-saphyr renders a code snippet under its message; we keep only the message itself.
fn first_line(s: &str) -> String {
    let line = s.lines().next().unwrap_or(s);
    // "error: line 3 column 5: missing field" -> "missing field"
    let line = line.strip_prefix("error: ").unwrap_or(line);
    match line.find(": ") {
        Some(i) if line.starts_with("line ") => line[i + 2..].to_string(),
        _ => line.to_string(),
    }
}

/// Rewords parser messages written for Rust developers.
fn friendly(msg: &str) -> String {
    match msg.strip_prefix("duplicate mapping key: ") {
        Some(rest) => {
            let key = rest.split(',').next().unwrap_or(rest).trim();
            format!("key \"{key}\" is given twice in the same mapping")
        }
        None => msg.to_string(),
    }
}

/// A value read with its span -> a [`Node`]. serde-saphyr's span is two full locations
/// (about 100 bytes); a node keeps only where the value is referenced.
fn located(read: Spanned<Value>) -> Node {
    Node {
        loc: Loc::from_saphyr(&read.referenced),
        value: read.value,
    }
}

/// Expands `${VAR}` in every string of the tree, in place: a string that cannot be expanded
/// becomes [`Value::Invalid`], for the entry holding it to report.
fn expand_all(node: &mut Node, env: &dyn Fn(&str) -> Option<String>) {
    match &mut node.value {
        Value::Str(s) if s.contains('$') => {
            node.value = match expand(s, env) {
                Ok(s) => Value::Str(s),
                Err(e) => Value::Invalid(e.to_string()),
            };
        }
        Value::Seq(items) => items.iter_mut().for_each(|i| expand_all(i, env)),
        Value::Map(entries) => entries.iter_mut().for_each(|(_, v)| expand_all(v, env)),
        _ => {}
    }
}

/// Why a `${...}` cannot be expanded. Never quotes the string: it may be a literal password.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ExpandError {
    #[error("unclosed \"${{\" (write $${{ for a literal ${{)")]
    Unclosed,
    #[error(
        "invalid variable name in \"${{...}}\": letters, digits and _ only \
         (write $${{ for a literal ${{)"
    )]
    BadName,
    #[error("environment variable \"{0}\" is not set")]
    Unset(String),
}

/// Expands `${VAR}` and `${VAR:-default}`; `$${` stands for a literal `${`.
pub(crate) fn expand(s: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, ExpandError> {
    if !s.contains('$') {
        return Ok(s.to_string());
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let end = tail
                .find('}')
                // The value is not quoted: it may be a literal password (write $${ for ${).
                .ok_or(ExpandError::Unclosed)?;
            let expr = &tail[..end];
            let (name, default) = match expr.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (expr, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                // Nor is the name: in a literal password it is part of the password.
                return Err(ExpandError::BadName);
            }
            match (env(name), default) {
                (Some(v), _) if !(v.is_empty() && default.is_some()) => out.push_str(&v),
                (_, Some(d)) => out.push_str(d),
                (_, None) => {
                    return Err(ExpandError::Unset(name.to_string()));
                }
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The tree is read straight into nodes, each element's span unwrapped as soon as it is read:
/// a tree of serde-saphyr's spans first, converted after, took about 700 bytes a probe entry
/// and was a large file's peak of memory (issue 33: every shard reads the whole file).
/// Strings are as written; [`expand_all`] expands them after.
impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor)
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Int(v.into()))
    }
    fn visit_i128<E>(self, v: i128) -> Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::Str(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = a.next_element::<Spanned<Value>>()? {
            items.push(located(item));
        }
        Ok(Value::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(k) = a.next_key::<Spanned<String>>()? {
            let key = Key {
                loc: Loc::from_saphyr(&k.referenced),
                name: k.value,
            };
            entries.push((key, located(a.next_value::<Spanned<Value>>()?)));
        }
        Ok(Value::Map(entries))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Past serde-saphyr's default 250,000 nodes: 30,000 probes of 9 nodes each. The alias
    /// bomb that the budget exists for is refused in tests/it/hostile.rs.
    #[test]
    fn a_large_plain_file_is_within_the_budget() {
        let mut text = String::from("probes:\n");
        for i in 0..30_000 {
            text.push_str(&format!(
                "  - {{ name: p{i}, kind: tcp, host: 127.0.0.1, port: 9 }}\n"
            ));
        }
        let node = parse(&text, &|_| None).expect("a 30,000-probe file parses");
        let Value::Map(top) = &node.value else {
            panic!("not a map")
        };
        let Value::Seq(probes) = &top[0].1.value else {
            panic!("probes is not a list")
        };
        assert_eq!(probes.len(), 30_000);
    }

    fn env(name: &str) -> Option<String> {
        match name {
            "USER" => Some("alice".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn expands_variables_defaults_and_escapes() {
        assert_eq!(expand("u=${USER}", &env).unwrap(), "u=alice");
        assert_eq!(expand("${NOPE:-x}", &env).unwrap(), "x");
        assert_eq!(expand("${EMPTY:-d}", &env).unwrap(), "d");
        assert_eq!(expand("$${USER} $5", &env).unwrap(), "${USER} $5");
        assert_eq!(
            expand("${NOPE}", &env).unwrap_err().to_string(),
            "environment variable \"NOPE\" is not set"
        );
        assert!(
            expand("${USER", &env)
                .unwrap_err()
                .to_string()
                .contains("unclosed")
        );
        // The texts users see in config errors (braces are escaped in the error attributes).
        assert_eq!(
            ExpandError::Unclosed.to_string(),
            "unclosed \"${\" (write $${ for a literal ${)"
        );
        assert_eq!(
            ExpandError::BadName.to_string(),
            "invalid variable name in \"${...}\": letters, digits and _ only (write $${ for a literal ${)"
        );
    }

    #[test]
    fn keeps_locations() {
        let n = parse("a: 1\nb:\n  c: \"x\"\n", &env).unwrap();
        let (k, v) = n.get("b").unwrap();
        assert_eq!(k.loc, Loc { line: 2, col: 1 });
        let (_, c) = v.get("c").unwrap();
        assert_eq!(c.loc, Loc { line: 3, col: 6 });
        assert_eq!(c.as_str(), Some("x"));
    }
}
