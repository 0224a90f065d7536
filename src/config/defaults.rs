//! The `defaults:` section and the schedule bounds every probe's `interval` and `timeout`
//! are checked against.

use crate::core::types::PositiveDuration;
use serde::Deserialize;
use std::time::Duration;

/// Interval when neither the probe nor `defaults` set one.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

/// The range of `interval`: at least 100 ms, at most a week. 100 ms is the fastest schedule
/// anyone uses (the tests' fast probes, startup polling); it caps a probe at 10 runs a second,
/// where `1ns` meant 800 connects a second to the target. A week: longer is a typo, and a
/// probe that rare says nothing about an incident.
pub const INTERVAL_RANGE: (Duration, Duration) = (
    Duration::from_millis(100),
    Duration::from_secs(7 * 24 * 3600),
);

/// The range of `timeout`: at least 10 ms (less cannot even connect), at most a day (the
/// longest startup any user waits for is minutes).
pub const TIMEOUT_RANGE: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_secs(24 * 3600));

/// An `interval` or `timeout` outside its range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("\"{key}\" is {}: it must be {words}", humantime::format_duration(*.value))]
pub struct OutOfRange {
    pub(crate) key: String,
    pub(crate) value: Duration,
    /// The range in words: "from 100ms to 7d".
    pub(crate) words: &'static str,
}

/// Checks `interval` and `timeout` against their ranges.
pub(super) fn check_range(key: &str, d: Duration) -> Result<(), OutOfRange> {
    let ((min, max), words) = match key {
        "interval" => (INTERVAL_RANGE, "from 100ms to 7d"),
        _ => (TIMEOUT_RANGE, "from 10ms to 24h"),
    };
    if d < min || d > max {
        return Err(OutOfRange {
            key: key.to_string(),
            value: d,
            words,
        });
    }
    Ok(())
}

/// The `defaults:` section: interval, timeout and buckets of every probe that does not set its own.
#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub(crate) interval: Option<PositiveDuration>,
    pub(crate) timeout: Option<PositiveDuration>,
    /// Run-duration histogram buckets of every probe without its own: one list, or one
    /// per kind (`{ tcp: [] }`).
    pub(crate) buckets: Option<super::buckets::DefaultBuckets>,
}
