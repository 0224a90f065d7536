//! Value types that config fields deserialize into: durations and secrets.

use serde::de::{self, Deserialize, Deserializer};
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// The longest duration any config field takes: larger ones are typos (`300000000000y`)
/// and would overflow the clock arithmetic they feed.
pub(crate) const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);

/// A duration written with a unit (`75s`, `1m30s`, `500ms`), above zero and at most
/// [`MAX_DURATION`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PositiveDuration(pub Duration);

impl<'de> Deserialize<'de> for PositiveDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let dur = humantime::parse_duration(text.trim()).map_err(|_| {
            de::Error::custom(format!(
                "invalid duration \"{text}\": write a number with a unit, like 75s, 500ms or 1m30s"
            ))
        })?;
        if dur.is_zero() {
            return Err(de::Error::custom(format!(
                "duration \"{text}\" must be greater than zero"
            )));
        }
        if dur > MAX_DURATION {
            return Err(de::Error::custom(format!(
                "duration \"{text}\" is too long (at most 365d)"
            )));
        }
        Ok(PositiveDuration(dur))
    }
}

/// A secret value: it never appears in Debug output, logs, labels or error messages.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(String);

impl Secret {
    /// A secret, registered with the redactor so that no echo of it is ever shown.
    pub(crate) fn new(s: impl Into<String>) -> Self {
        let s = s.into();
        crate::redact::register(&s);
        Secret(s)
    }

    /// The secret itself, for the one place that must send it (a login, a handshake).
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // Registered with the redactor only while a config loads: API answers read into a
        // Secret at run time (Cloud Run env values, most of them not secret) are not.
        String::deserialize(d).map(|s| {
            crate::redact::register_if_loading(&s);
            Secret(s)
        })
    }
}

/// A secret read from a file when the config loads (Kubernetes secret volumes, Docker secrets).
/// One trailing newline is dropped, as `echo pw > file` adds one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SecretFile {
    pub(crate) path: PathBuf,
    pub(crate) value: Secret,
}

impl<'de> Deserialize<'de> for SecretFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let path = PathBuf::from(String::deserialize(d)?);
        let text = super::file::read_regular(&path).map_err(|e| {
            de::Error::custom(format!(
                "cannot read secret file \"{}\": {e}",
                path.display()
            ))
        })?;
        let value = text
            .strip_suffix("\r\n")
            .or_else(|| text.strip_suffix('\n'))
            .unwrap_or(&text);
        Ok(SecretFile {
            value: Secret::new(value),
            path,
        })
    }
}

/// A secret given inline (usually as `${VAR}`) or as a file: at most one of the two.
pub(crate) fn pick_secret(
    inline: &Option<Secret>,
    file: &Option<SecretFile>,
    field: &str,
) -> Result<Option<Secret>, String> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(format!(
            "give either \"{field}\" or \"{field}_file\", not both"
        )),
        (Some(s), None) => Ok(Some(s.clone())),
        (None, Some(f)) => Ok(Some(f.value.clone())),
        (None, None) => Ok(None),
    }
}

/// JSON Schema for the hand-written Deserialize impls above: what a user writes in YAML.
mod schema {
    use super::{PositiveDuration, Secret, SecretFile};
    use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
    use std::borrow::Cow;

    impl JsonSchema for PositiveDuration {
        fn schema_name() -> Cow<'static, str> {
            "Duration".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "type": "string",
                "pattern": "^\\s*[0-9]",
                "description": "A duration with a unit, above zero: 500ms, 10s, 1m30s, 2h.",
                "examples": ["30s", "75s", "1m30s"]
            })
        }
    }

    impl JsonSchema for Secret {
        fn schema_name() -> Cow<'static, str> {
            "Secret".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "type": "string",
                "description": "A secret, usually \"${VAR}\"; never logged or exported."
            })
        }
    }

    impl JsonSchema for SecretFile {
        fn schema_name() -> Cow<'static, str> {
            "SecretFile".into()
        }
        fn json_schema(_: &mut SchemaGenerator) -> Schema {
            json_schema!({
                "type": "string",
                "description": "Path of a file holding a secret, read when the config loads."
            })
        }
    }
}
