//! Values every layer shares, importing nothing above them (nothing else from the crate):
//! the wall clock and the parsing of an on-demand target's `host:port`. Leaves by rule
//! (tests/it/structure.rs): config, probes, incidents, metrics and the runner may all use
//! them, so they must use none of those.

pub mod clock;
pub mod target;
