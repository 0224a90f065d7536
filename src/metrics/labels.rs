//! The label sets of the families in metrics.rs: typed structs whose values are configured
//! probe names or closed enums (never an error text, URL or secret), and the text each writes
//! for the families that encode themselves ([`LabelText`]).

use super::histograms::{LabelText, push_pair};
use crate::probe::{Kind, Phase, Reason};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use std::fmt::Write as _;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProbeLabels {
    pub probe: String,
    pub kind: Kind,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NameLabels {
    pub probe: String,
}

#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum RunResultLabel {
    Success,
    Failure,
}

impl RunResultLabel {
    pub fn as_str(self) -> &'static str {
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    pub probe: String,
    pub kind: Kind,
    pub result: RunResultLabel,
    pub reason: Reason,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub probe: String,
    pub kind: Kind,
    pub phase: Phase,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    pub version: String,
}

/// `pathwatch_shard_info`: two small numbers, bounded by the shard count (at most 1024).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ShardLabels {
    pub index: String,
    pub count: String,
}

impl LabelText for ProbeLabels {
    fn write_labels(&self, out: &mut String) {
        push_pair(out, "probe", &self.probe);
        push_pair(out, "kind", self.kind.as_str());
    }
}

impl LabelText for RunLabels {
    fn write_labels(&self, out: &mut String) {
        push_pair(out, "probe", &self.probe);
        push_pair(out, "kind", self.kind.as_str());
        push_pair(out, "result", self.result.as_str());
        push_pair(out, "reason", self.reason.as_str());
    }
}

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
