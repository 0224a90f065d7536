//! The protocol's shape as configured: where an event's name, thread and user live (JSON
//! pointers, RFC 6901), and the isolation rule that decides whose events count.
//!
//! Pointers are checked when the config loads, so a malformed one is an error at its line.

use serde::de::{self, Deserialize, Deserializer, SeqAccess, Visitor};
use serde_json::Value;
use std::fmt;

/// A JSON pointer (RFC 6901): empty, or `/`-separated tokens where `~` is only `~0` or `~1`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JsonPointer(String);

/// Why a JSON pointer is malformed (the text quotes it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum PointerError {
    #[error("invalid JSON pointer \"{0}\": it must start with \"/\" (e.g. \"/{0}\")")]
    NoSlash(String),
    #[error(
        "invalid JSON pointer \"{0}\": \"~\" must be followed by 0 or 1 (\"~0\" is ~, \"~1\" is /)"
    )]
    BadEscape(String),
}

impl JsonPointer {
    pub(crate) fn parse(text: &str) -> Result<Self, PointerError> {
        if !text.is_empty() && !text.starts_with('/') {
            return Err(PointerError::NoSlash(text.to_string()));
        }
        let mut chars = text.chars();
        while let Some(c) = chars.next() {
            if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
                return Err(PointerError::BadEscape(text.to_string()));
            }
        }
        Ok(JsonPointer(text.to_string()))
    }

    /// A pointer written in pathwatch's own source (a default), known to be well formed.
    pub(crate) fn literal(text: &'static str) -> Self {
        JsonPointer(text.to_string())
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The value at this pointer in `v`, if any.
    pub(crate) fn get<'v>(&self, v: &'v Value) -> Option<&'v Value> {
        v.pointer(&self.0)
    }
}

impl fmt::Display for JsonPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for JsonPointer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        JsonPointer::parse(&text).map_err(de::Error::custom)
    }
}

/// One pointer or a list of them, tried in order: the first that yields a string or a
/// number wins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Pointers(pub Vec<JsonPointer>);

impl Pointers {
    fn of(list: &[&'static str]) -> Self {
        Pointers(list.iter().map(|p| JsonPointer::literal(p)).collect())
    }

    /// The first string (or number, as text) found at one of the pointers.
    pub(crate) fn text(&self, v: &Value) -> Option<String> {
        self.0.iter().find_map(|p| match p.get(v)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    }

    pub(crate) fn describe(&self) -> String {
        self.0
            .iter()
            .map(JsonPointer::as_str)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl<'de> Deserialize<'de> for Pointers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pointers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON pointer or a list of them")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Pointers, E> {
                JsonPointer::parse(s)
                    .map(|p| Pointers(vec![p]))
                    .map_err(E::custom)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Pointers, A::Error> {
                let mut list = Vec::new();
                while let Some(p) = seq.next_element::<JsonPointer>()? {
                    list.push(p);
                }
                if list.is_empty() {
                    return Err(de::Error::custom("give at least one JSON pointer"));
                }
                Ok(Pointers(list))
            }
        }
        d.deserialize_any(V)
    }
}

/// Where an event's name, thread id and user id are read.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventFields {
    /// The event's name (its type; default `[/type, /payload/type]`), also for `welcome`,
    /// `ack` and `ignore`.
    #[serde(rename = "type", default = "default_type")]
    pub(crate) kind: Pointers,
    /// Where an event names its thread (default `[/thread_id, /payload/thread_id]`).
    #[serde(default = "default_thread")]
    pub(crate) thread_id: Pointers,
    /// Where an event names its user (default `[/user_id, /payload/user_id]`).
    #[serde(default = "default_user")]
    pub(crate) user_id: Pointers,
}

impl Default for EventFields {
    fn default() -> Self {
        EventFields {
            kind: default_type(),
            thread_id: default_thread(),
            user_id: default_user(),
        }
    }
}

fn default_type() -> Pointers {
    Pointers::of(&["/type", "/payload/type"])
}
fn default_thread() -> Pointers {
    Pointers::of(&["/thread_id", "/payload/thread_id"])
}
fn default_user() -> Pointers {
    Pointers::of(&["/user_id", "/payload/user_id"])
}

/// Whose events count as this run's; every other expected event is crosstalk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Isolation {
    /// The server names the run by the thread id pathwatch sent: any other thread is
    /// crosstalk, and so is another user.
    Echo,
    /// The run is bound to the thread of the acknowledgement (`websocket.ack`) or of the first
    /// expected event, whether pathwatch's id or the server's own; after that, any other
    /// thread is crosstalk, and so is another user. Events that name no thread count on the
    /// connection they arrive on.
    #[default]
    BindFirst,
    /// Only the user matters: events of another user are crosstalk, threads are not looked at.
    User,
    /// Every expected event on the connection counts. (Named `none`, not `off`: YAML reads
    /// an unquoted `off` as a boolean.)
    None,
}

impl Isolation {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Isolation::Echo => "echo",
            Isolation::BindFirst => "bind_first",
            Isolation::User => "user",
            Isolation::None => "none",
        }
    }
}

/// JSON Schema of the hand-written Deserialize impls: what a user writes in YAML.
mod schema {
    use super::{JsonPointer, Pointers};
    use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
    use std::borrow::Cow;

    /// RFC 6901: empty, or tokens after `/` in which `~` is only `~0` or `~1`.
    const POINTER: &str = "^(/([^~]|~[01])*)*$";

    impl JsonSchema for JsonPointer {
        fn schema_name() -> Cow<'static, str> {
            "JsonPointer".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "type": "string",
                "pattern": POINTER,
                "description": "A JSON pointer (RFC 6901), e.g. /access_token or /payload/type.",
            })
        }
    }

    impl JsonSchema for Pointers {
        fn schema_name() -> Cow<'static, str> {
            "JsonPointers".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "description": "A JSON pointer or a list of them, tried in order.",
                "oneOf": [
                    { "type": "string", "pattern": POINTER },
                    { "type": "array", "minItems": 1, "items": { "type": "string", "pattern": POINTER } }
                ]
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_are_checked_and_tried_in_order() {
        assert!(JsonPointer::parse("").is_ok());
        assert!(JsonPointer::parse("/a~0b/c~1d").is_ok());
        assert!(
            JsonPointer::parse("type")
                .unwrap_err()
                .to_string()
                .contains("must start with \"/\"")
        );
        assert!(
            JsonPointer::parse("/a~2")
                .unwrap_err()
                .to_string()
                .contains("~0")
        );
        assert!(JsonPointer::parse("/a~").is_err());
        let p = default_type();
        let nested = serde_json::json!({"payload": {"type": "agent_started"}});
        assert_eq!(p.text(&nested).as_deref(), Some("agent_started"));
        let number = serde_json::json!({"thread_id": 42});
        assert_eq!(default_thread().text(&number).as_deref(), Some("42"));
    }
}
