//! Named log patterns: compiled when the config loads (a bad regex is an error at its line,
//! with its position inside the pattern), matched against each line or entry, and the sliding
//! window of match times behind `pathwatch_log_pattern_window_matches`.

use regex::{Regex, RegexSet};
use serde::de::{self, Deserialize, Deserializer};
use std::collections::VecDeque;
use std::fmt;
use std::time::Duration;

/// A pattern's name: it becomes the `pattern` label, so it follows the rule of probe names.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PatternName(pub String);

impl<'de> Deserialize<'de> for PatternName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        // Same rule as probe names (config::valid_name): short, plain label values.
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
        if !ok {
            return Err(de::Error::custom(format!(
                "pattern name \"{name}\" must be 1-64 characters of letters, digits, '_', '-', '.', ':'"
            )));
        }
        Ok(PatternName(name))
    }
}

impl fmt::Display for PatternName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A compiled regular expression (the `regex` crate's syntax).
#[derive(Clone, Debug)]
pub(crate) struct Pattern(pub Regex);

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        compile(&text).map(Pattern).map_err(de::Error::custom)
    }
}

/// Why a pattern does not compile, in one line.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PatternError {
    #[error("an empty pattern matches every line")]
    Empty,
    /// Where (`character 3`, `line 2 character 1`) and what.
    #[error("invalid regex at {at}: {kind}")]
    At { at: String, kind: String },
    #[error("invalid regex: {0}")]
    Invalid(String),
    #[error("regex too big: its compiled form exceeds {0} bytes")]
    TooBig(usize),
    /// The patterns together (their one-pass set) do not compile.
    #[error("patterns: {0}")]
    Set(String),
}

/// Compiles `text`, or says what is wrong and where, in one line.
pub(crate) fn compile(text: &str) -> Result<Regex, PatternError> {
    if text.is_empty() {
        return Err(PatternError::Empty);
    }
    // regex's own error is a multi-line drawing; regex-syntax gives the same diagnosis with a
    // position, which fits the one-line config error.
    if let Err(e) = regex_syntax::Parser::new().parse(text) {
        let (kind, span) = match &e {
            regex_syntax::Error::Parse(e) => (e.kind().to_string(), *e.span()),
            regex_syntax::Error::Translate(e) => (e.kind().to_string(), *e.span()),
            other => {
                return Err(PatternError::Invalid(other.to_string().replace('\n', " ")));
            }
        };
        // Span columns count characters from 1; patterns are one line in practice.
        let at = if span.start.line > 1 {
            format!("line {} character {}", span.start.line, span.start.column)
        } else {
            format!("character {}", span.start.column)
        };
        return Err(PatternError::At { at, kind });
    }
    Regex::new(text).map_err(|e| match e {
        regex::Error::CompiledTooBig(limit) => PatternError::TooBig(limit),
        other => PatternError::Invalid(other.to_string().replace('\n', " ")),
    })
}

/// All of a probe's patterns, matched in one pass per line.
#[derive(Clone, Debug)]
pub(crate) struct Matcher {
    set: RegexSet,
    /// In the order of `set`; used again only for patterns with a capture group.
    regexes: Vec<Regex>,
}

impl Matcher {
    pub(crate) fn new(patterns: &[&Regex]) -> Result<Matcher, PatternError> {
        let set = RegexSet::new(patterns.iter().map(|r| r.as_str()))
            .map_err(|e| PatternError::Set(e.to_string().replace('\n', " ")))?;
        Ok(Matcher {
            set,
            regexes: patterns.iter().map(|r| (*r).clone()).collect(),
        })
    }

    /// Calls `hit(index, value)` once for each pattern that matches `text` (a line counts
    /// once however often it matches). `value` is the first capture group that parses as a
    /// number, for patterns that have one.
    pub(crate) fn scan(&self, text: &str, mut hit: impl FnMut(usize, Option<f64>)) {
        for i in self.set.matches(text).iter() {
            let value = self.regexes.get(i).and_then(|re| {
                if re.captures_len() < 2 {
                    return None;
                }
                let caps = re.captures(text)?;
                caps.iter()
                    .skip(1)
                    .flatten()
                    .find_map(|m| m.as_str().trim().parse::<f64>().ok())
                    .filter(|v| v.is_finite())
            });
            hit(i, value);
        }
    }
}

/// Match times within a sliding window, counted in buckets so memory stays bounded whatever
/// the match rate: at most [`Window::MAX_BUCKETS`] (time, count) pairs.
#[derive(Clone, Debug)]
pub(crate) struct Window {
    span_ms: u64,
    /// Bucket width (ms): at least 1 s, and wide enough that the span needs at most
    /// MAX_BUCKETS / 2 of them. The count is exact to one bucket at the window's old edge.
    bucket_ms: u64,
    /// (bucket start in unix ms, matches), oldest first.
    buckets: VecDeque<(u64, u64)>,
}

impl Window {
    pub(crate) const MAX_BUCKETS: usize = 2048;

    pub(crate) fn new(span: Duration) -> Window {
        let span_ms = u64::try_from(span.as_millis()).unwrap_or(u64::MAX).max(1);
        let half = (Self::MAX_BUCKETS / 2) as u64;
        Window {
            span_ms,
            bucket_ms: span_ms.div_ceil(half).max(1000),
            buckets: VecDeque::new(),
        }
    }

    /// Records one match at `at_ms` (unix ms); matches already outside the window at `now_ms`
    /// are left out.
    pub(crate) fn add(&mut self, at_ms: u64, now_ms: u64) {
        if at_ms < now_ms.saturating_sub(self.span_ms) {
            return;
        }
        let start = at_ms - at_ms % self.bucket_ms;
        match self.buckets.back_mut() {
            Some((t, n)) if *t == start => *n += 1,
            Some((t, _)) if *t > start => {
                // Out of order (two sources of time, clock steps): insert in place.
                match self.buckets.binary_search_by_key(&start, |b| b.0) {
                    Ok(i) => {
                        if let Some(b) = self.buckets.get_mut(i) {
                            b.1 += 1;
                        }
                    }
                    Err(i) => self.buckets.insert(i, (start, 1)),
                }
            }
            _ => self.buckets.push_back((start, 1)),
        }
        while self.buckets.len() > Self::MAX_BUCKETS {
            self.buckets.pop_front();
        }
    }

    /// Matches in the window ending at `now_ms`; older buckets are dropped.
    pub(crate) fn count(&mut self, now_ms: u64) -> u64 {
        let oldest = now_ms.saturating_sub(self.span_ms);
        // A bucket counts while any part of it is inside the window.
        while self
            .buckets
            .front()
            .is_some_and(|(t, _)| t + self.bucket_ms <= oldest)
        {
            self.buckets.pop_front();
        }
        self.buckets.iter().map(|(_, n)| n).sum()
    }
}

impl schemars::JsonSchema for PatternName {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "PatternName".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "pattern": "^[A-Za-z0-9_.:-]{1,64}$",
            "description": "A pattern's name: the `pattern` label."
        })
    }
}

impl schemars::JsonSchema for Pattern {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Pattern".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "string",
            "format": "regex",
            "description": "A regular expression (Rust regex syntax); a capture group that parses as a number becomes pathwatch_log_pattern_last_value."
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_regexes_say_where() {
        assert_eq!(
            compile("PHASE COMPLETED: DATABASE \\(([0-9.]+s\\)")
                .unwrap_err()
                .to_string(),
            "invalid regex at character 29: unclosed group"
        );
        assert_eq!(
            compile("a{2,1}").unwrap_err().to_string(),
            "invalid regex at character 2: invalid repetition count range, the start must be <= the end"
        );
        assert!(compile("").is_err());
        assert!(
            compile(r"\p{NoSuchClass}")
                .unwrap_err()
                .to_string()
                .starts_with("invalid regex at character 1")
        );
    }

    #[test]
    fn scans_each_pattern_once_per_line_with_numeric_captures() {
        let a = compile(r"PHASE COMPLETED: DATABASE \(([0-9.]+)s\)").unwrap();
        let b = compile("failed").unwrap();
        let c = compile("(not a number)").unwrap();
        let m = Matcher::new(&[&a, &b, &c]).unwrap();
        let mut hits = Vec::new();
        m.scan(
            "PHASE COMPLETED: DATABASE (12.345s) failed failed not a number",
            |i, v| hits.push((i, v)),
        );
        assert_eq!(hits, vec![(0, Some(12.345)), (1, None), (2, None)]);
    }

    #[test]
    fn window_counts_recent_matches_in_bounded_buckets() {
        let mut w = Window::new(Duration::from_secs(60));
        let t0 = 1_000_000_000;
        for i in 0..10 {
            w.add(t0 + i * 10_000, t0 + i * 10_000);
        }
        assert_eq!(w.count(t0 + 90_000), 7);
        assert_eq!(w.count(t0 + 200_000), 0);
        // A flood stays within the bucket cap.
        let mut w = Window::new(Duration::from_secs(24 * 3600));
        for i in 0..1_000_000u64 {
            w.add(t0 + i * 50, t0 + i * 50);
        }
        assert!(w.buckets.len() <= Window::MAX_BUCKETS);
        assert_eq!(w.count(t0 + 50_000_000), 1_000_000);
        // Out-of-order matches land in their own bucket; too old ones are left out.
        let mut w = Window::new(Duration::from_secs(60));
        w.add(t0 + 50_000, t0 + 50_000);
        w.add(t0 + 10_000, t0 + 50_000);
        w.add(t0 - 50_000, t0 + 50_000);
        assert_eq!(w.count(t0 + 60_000), 2);
        assert_eq!(w.count(t0 + 75_000), 1);
    }
}
