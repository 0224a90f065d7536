//! Values every layer shares, importing nothing above them (only the redactor, which secrets
//! register with): the wall clock, the parsing of an on-demand target's `host:port`, the
//! value types config fields deserialize into (durations, secrets) and the reading of
//! regular files. Leaves by rule (tests/it/structure.rs): config, probes, incidents, metrics
//! and the runner may all use them, so they must use none of those.

pub(crate) mod clock;
pub(crate) mod file;
pub(crate) mod target;
pub(crate) mod types;
