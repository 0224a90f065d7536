//! The config deserializer's error: a message in the user's words (serde's own ones are
//! reworded) and, once known, where in the file it is; "did you mean" suggestions.

use super::Loc;
use serde::de::{self, Expected, Unexpected};
use std::fmt;

/// A deserialization error, located once the innermost node that knows its place is reached.
#[derive(Debug)]
pub(crate) struct DeError {
    pub(crate) msg: String,
    pub(crate) loc: Option<Loc>,
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.msg)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError {
            msg: msg.to_string(),
            loc: None,
        }
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Self {
        let msg = match closest(field, expected.iter().copied()) {
            Some(s) => format!("unknown field \"{field}\", did you mean \"{s}\"?"),
            None if expected.is_empty() => format!("unknown field \"{field}\""),
            None => format!(
                "unknown field \"{field}\" (expected one of: {})",
                expected.join(", ")
            ),
        };
        DeError { msg, loc: None }
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Self {
        let msg = match closest(variant, expected.iter().copied()) {
            Some(s) => format!("unknown value \"{variant}\", did you mean \"{s}\"?"),
            None => format!(
                "unknown value \"{variant}\" (expected one of: {})",
                expected.join(", ")
            ),
        };
        DeError { msg, loc: None }
    }

    fn missing_field(field: &'static str) -> Self {
        DeError {
            msg: format!("missing required field \"{field}\""),
            loc: None,
        }
    }

    fn duplicate_field(field: &'static str) -> Self {
        DeError {
            msg: format!("field \"{field}\" is given twice"),
            loc: None,
        }
    }

    fn invalid_type(unexp: Unexpected, exp: &dyn Expected) -> Self {
        DeError {
            msg: format!("expected {exp}, found {}", describe_unexpected(&unexp)),
            loc: None,
        }
    }

    fn invalid_value(unexp: Unexpected, exp: &dyn Expected) -> Self {
        DeError {
            msg: format!(
                "invalid value {}: expected {exp}",
                describe_unexpected(&unexp)
            ),
            loc: None,
        }
    }
}

fn describe_unexpected(u: &Unexpected) -> String {
    match u {
        Unexpected::Str(s) => format!("\"{s}\""),
        Unexpected::Unsigned(n) => n.to_string(),
        Unexpected::Signed(n) => n.to_string(),
        Unexpected::Float(n) => n.to_string(),
        Unexpected::Bool(b) => b.to_string(),
        Unexpected::Unit => "null".into(),
        Unexpected::Seq => "a list".into(),
        Unexpected::Map => "a mapping".into(),
        other => other.to_string(),
    }
}

/// The expected name nearest to a typo (edit distance at most 2), for "did you mean".
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (levenshtein(word, c), c))
        .filter(|(d, _)| *d <= 2)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}
