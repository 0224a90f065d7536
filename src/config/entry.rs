//! The error of one `probes:` or `incidents:` entry ([`EntryError`]: where, which entry,
//! what), as probes.rs and incidents.rs return them; mod.rs adds the file's name
//! ([`super::ConfigError`]).

use super::aside::Located;
use super::de::DeError;
use super::node::Loc;
use std::fmt;

/// An entry as its errors name it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum EntryLabel {
    /// `probe "name"`.
    Probe(String),
    /// `probe #3`: an entry without a usable name, by its place in `probes:` (from 1).
    ProbeNo(usize),
    /// `incident "id"`.
    Incident(String),
    /// `incident #2`: an entry without a string `id`, by its place in `incidents:`.
    IncidentNo(usize),
}

impl fmt::Display for EntryLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EntryLabel::Probe(name) => write!(f, "probe \"{name}\""),
            EntryLabel::ProbeNo(n) => write!(f, "probe #{n}"),
            EntryLabel::Incident(id) => write!(f, "incident \"{id}\""),
            EntryLabel::IncidentNo(n) => write!(f, "incident #{n}"),
        }
    }
}

/// One error of an entry.
#[derive(Clone, Debug, thiserror::Error)]
#[error("{entry}: {msg}")]
pub(super) struct EntryError {
    /// Where in the file.
    pub(super) loc: Loc,
    pub(super) entry: EntryLabel,
    pub(super) msg: String,
}

/// Every error of one entry as it is found (none hides another), all under its label.
pub(super) struct EntryErrors {
    label: EntryLabel,
    list: Vec<EntryError>,
}

impl EntryErrors {
    /// The errors so far: `found` before the label was known.
    pub(super) fn new(label: EntryLabel, found: Vec<Located>) -> Self {
        let mut errors = EntryErrors {
            label,
            list: Vec::new(),
        };
        errors.extend(found);
        errors
    }

    pub(super) fn push(&mut self, loc: Loc, msg: impl Into<String>) {
        self.list.push(EntryError {
            loc,
            entry: self.label.clone(),
            msg: msg.into(),
        });
    }

    pub(super) fn extend(&mut self, found: Vec<Located>) {
        for (loc, msg) in found {
            self.push(loc, msg);
        }
    }

    /// A serde error, at `fallback` when it has no place of its own.
    pub(super) fn de(&mut self, e: DeError, fallback: Loc) {
        self.push(e.loc.unwrap_or(fallback), e.msg);
    }

    pub(super) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The errors in file order (those at one place in the order found).
    pub(super) fn into_sorted(mut self) -> Vec<EntryError> {
        self.list.sort_by_key(|e| (e.loc.line, e.loc.col));
        self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_reads_entry_then_message_in_file_order() {
        let at = |line| Loc { line, col: 3 };
        let mut errs = EntryErrors::new(EntryLabel::ProbeNo(3), vec![(at(9), "late".into())]);
        errs.push(at(2), "early");
        let texts: Vec<String> = errs
            .into_sorted()
            .iter()
            .map(std::string::ToString::to_string)
            .collect();
        assert_eq!(texts, ["probe #3: early", "probe #3: late"]);
        assert_eq!(EntryLabel::Probe("db".into()).to_string(), "probe \"db\"");
    }
}
