//! The label sets of the families in metrics.rs: typed structs whose values are configured
//! probe names or closed enums (never an error text, URL or secret), and the text each writes
//! for the families that encode themselves ([`LabelText`]).

use super::histograms::{LabelText, push_pair};
#[cfg(test)]
use crate::probe::{Kind, Phase, Reason};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use std::fmt::Write as _;

#[cfg(test)]
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ProbeLabels {
    pub(crate) probe: String,
    pub(crate) kind: Kind,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct NameLabels {
    pub(crate) probe: String,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub(crate) enum RunResultLabel {
    Success,
    Failure,
}

impl RunResultLabel {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            RunResultLabel::Success => "success",
            RunResultLabel::Failure => "failure",
        }
    }
}

impl EncodeLabelValue for RunResultLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

#[cfg(test)]
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RunLabels {
    pub(crate) probe: String,
    pub(crate) kind: Kind,
    pub(crate) result: RunResultLabel,
    pub(crate) reason: Reason,
}

#[cfg(test)]
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PhaseLabels {
    pub(crate) probe: String,
    pub(crate) kind: Kind,
    pub(crate) phase: Phase,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct BuildLabels {
    pub(crate) version: String,
}

/// `pathwatch_shard_info`: two small numbers, bounded by the shard count (at most 1024).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ShardLabels {
    pub(crate) index: String,
    pub(crate) count: String,
}

#[cfg(test)]
impl LabelText for ProbeLabels {
    fn write_labels(&self, out: &mut String) {
        push_pair(out, "probe", &self.probe);
        push_pair(out, "kind", self.kind.as_str());
    }
}

#[cfg(test)]
impl LabelText for RunLabels {
    fn write_labels(&self, out: &mut String) {
        push_pair(out, "probe", &self.probe);
        push_pair(out, "kind", self.kind.as_str());
        push_pair(out, "result", self.result.as_str());
        push_pair(out, "reason", self.reason.as_str());
    }
}

#[cfg(test)]
impl LabelText for PhaseLabels {
    fn write_labels(&self, out: &mut String) {
        push_pair(out, "probe", &self.probe);
        push_pair(out, "kind", self.kind.as_str());
        push_pair(out, "phase", self.phase.as_str());
    }
}

impl LabelText for NameLabels {
    fn write_labels(&self, out: &mut String) {
        push_pair(out, "probe", &self.probe);
    }
}
