//! Values every layer shares, importing nothing above them (only the redactor, which secrets
//! register with): the wall clock, a probe's `host:port` (checked from a spec, or parsed
//! from an on-demand target), the value types config fields deserialize into (durations,
//! secrets), the reading of regular files, a socket address as text, disjoint sets, and
//! returning freed heap to the system after a config load. Leaves by rule
//! (tests/it/structure.rs): config, probes, incidents, metrics and the runner may all use
//! them, so they must use none of those.

pub(crate) mod addr_text;
pub(crate) mod clock;
pub(crate) mod file;
pub(crate) mod heap;
pub(crate) mod target;
pub(crate) mod types;
pub(crate) mod union_find;
