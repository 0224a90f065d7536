//! The checks on an answer: accepted status codes (`valid_status`) and body assertions
//! (`assert`: a JSON pointer that `equals` a value or `exists`, or a regex), compiled when the
//! probe is built.

use super::{HttpError, HttpSpec};
use crate::probe::{ProbeError, Reason};
use bytes::Bytes;
use serde::Deserialize;

/// An inclusive range of status codes, written `204` or `"200-399"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StatusRange(pub u16, pub u16);

impl<'de> Deserialize<'de> for StatusRange {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        let parse = |s: &str| {
            s.trim()
                .parse::<u16>()
                .ok()
                .filter(|c| (100..=599).contains(c))
        };
        let range = match text.split_once('-') {
            Some((a, b)) => parse(a).zip(parse(b)).filter(|(a, b)| a <= b),
            None => parse(&text).map(|c| (c, c)),
        };
        range.map(|(a, b)| StatusRange(a, b)).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "invalid status \"{text}\": write a code like 200 or a range like \"200-399\""
            ))
        })
    }
}

impl schemars::JsonSchema for StatusRange {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StatusRange".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A status code (200) or an inclusive range (\"200-399\").",
            "oneOf": [
                { "type": "integer", "minimum": 100, "maximum": 599 },
                { "type": "string", "pattern": "^\\s*[1-5][0-9]{2}\\s*(-\\s*[1-5][0-9]{2}\\s*)?$" }
            ]
        })
    }
}

/// One body check: a JSON pointer that `equals` a value or `exists` (or not), or a `regex`
/// that must match (`not_regex`: must not).
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Assertion {
    /// Where in a JSON body the value is, e.g. `/status` (with `equals` or `exists`).
    pub(crate) json_pointer: Option<String>,
    /// The value at `json_pointer` equals this (`{ json_pointer: /status, equals: healthy }`).
    pub(crate) equals: Option<serde_json::Value>,
    /// The value at `json_pointer` is there (`true`) or not (`false`).
    pub(crate) exists: Option<bool>,
    /// The body matches this regex (`{ regex: "^Ok\\." }`).
    pub(crate) regex: Option<String>,
    /// The body does not match this regex (`{ not_regex: "unhealthy" }`).
    pub(crate) not_regex: Option<String>,
}

/// One compiled regex per assertion (`None` for JSON pointer ones), with whether it must match.
pub(super) type Regexes = Vec<Option<(regex::Regex, bool)>>;

/// Checks every assertion's shape and compiles its regex.
pub(super) fn compile(assertions: &[Assertion]) -> Result<Regexes, HttpError> {
    let mut regexes = Vec::new();
    for (i, a) in assertions.iter().enumerate() {
        let n = i + 1;
        let kinds = [
            a.json_pointer.is_some(),
            a.regex.is_some(),
            a.not_regex.is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err(HttpError::AssertionKind(n));
        }
        if a.json_pointer.is_some() == (a.equals.is_none() && a.exists.is_none()) {
            return Err(HttpError::AssertionArgs(n));
        }
        if let Some(p) = &a.json_pointer
            && !(p.is_empty() || p.starts_with('/'))
        {
            return Err(HttpError::AssertionPointer(n, p.clone()));
        }
        let re = match (&a.regex, &a.not_regex) {
            (Some(r), _) => Some((r, true)),
            (_, Some(r)) => Some((r, false)),
            _ => None,
        };
        regexes.push(match re {
            Some((r, want)) => Some((
                regex::Regex::new(r).map_err(|e| HttpError::AssertionRegex(n, e))?,
                want,
            )),
            None => None,
        });
    }
    Ok(regexes)
}

/// Fails with `http_status` when `code` is not one of the accepted ones.
pub(super) fn check_status(spec: &HttpSpec, code: u16) -> Result<(), ProbeError> {
    if spec
        .valid_status
        .iter()
        .any(|r| (r.0..=r.1).contains(&code))
    {
        return Ok(());
    }
    Err(ProbeError::new(
        Reason::HttpStatus,
        format!("answered {code} (accepted: {})", ranges(&spec.valid_status)),
    ))
}

fn ranges(r: &[StatusRange]) -> String {
    r.iter()
        .map(|r| {
            if r.0 == r.1 {
                r.0.to_string()
            } else {
                format!("{}-{}", r.0, r.1)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) fn check_body(
    spec: &HttpSpec,
    regexes: &Regexes,
    body: &Bytes,
) -> Result<(), ProbeError> {
    let text = String::from_utf8_lossy(body);
    let mut json: Option<serde_json::Value> = None;
    for (i, a) in spec.assertions.iter().enumerate() {
        let fail = |msg: String| Err(ProbeError::new(Reason::Assertion, msg));
        if let Some(pointer) = &a.json_pointer {
            if json.is_none() {
                json = Some(serde_json::from_slice(body).map_err(|e| {
                    ProbeError::new(Reason::Assertion, format!("body is not JSON: {e}"))
                })?);
            }
            let found = json.as_ref().and_then(|j| j.pointer(pointer));
            if let Some(want) = a.exists
                && found.is_some() != want
            {
                return fail(format!(
                    "{pointer} {}",
                    if want { "is missing" } else { "exists" }
                ));
            }
            if let Some(want) = &a.equals
                && !json_equal(found, want)
            {
                // The value found may be huge (a 10 MB string): cut before it is formatted.
                let found = found
                    .map(|v| crate::probe::truncate(v.to_string(), 256))
                    .unwrap_or_else(|| "missing".into());
                return fail(format!("{pointer} is {found}, expected {want}"));
            }
        }
        if let Some(Some((re, want))) = regexes.get(i)
            && re.is_match(&text) != *want
        {
            return fail(format!(
                "body {} /{}/",
                if *want { "does not match" } else { "matches" },
                re.as_str()
            ));
        }
    }
    Ok(())
}

/// YAML `equals: 200` must match JSON `200` and `"ok"` must match `"ok"`; a YAML scalar that
/// reads as a number also matches the same number written as a JSON string.
fn json_equal(found: Option<&serde_json::Value>, want: &serde_json::Value) -> bool {
    match found {
        Some(f) if f == want => true,
        Some(serde_json::Value::Number(n)) => want.as_str() == Some(&n.to_string()),
        Some(serde_json::Value::String(s)) => {
            !want.is_string() && s.as_str() == want.to_string().as_str()
        }
        Some(serde_json::Value::Bool(b)) => want.as_str() == Some(&b.to_string()),
        _ => false,
    }
}
