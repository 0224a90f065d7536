//! One `incidents:` entry -> [`IncidentSpec`], checked against the probes that loaded: every
//! criterion's error, not only serde's first.

use super::aside::{Aside, Located, parse_all, take_invalid};
use super::de;
use super::entry::{EntryError, EntryErrors, EntryLabel};
use super::node::{Node, Value};
use super::probes::valid_name;
use crate::incident::spec::kind_supports;
use crate::incident::{CriterionSpec, IncidentSpec};
use crate::probe::Kind;
use std::collections::HashMap;

/// An incident entry (the `index`th, from 0), checked against the probes that loaded.
/// `declared` names every probe entry of the file, loaded or not, for "did you mean".
pub(super) fn parse_incident(
    n: &Node,
    index: usize,
    kinds: &HashMap<&str, Kind>,
    declared: &[&str],
) -> Result<IncidentSpec, Vec<EntryError>> {
    // Every error of the entry: an unset variable is one of them (its key is set aside),
    // each criterion is checked on its own, then the incident's own keys.
    let mut found: Vec<Located> = Vec::new();
    let mut aside: Vec<Aside> = Vec::new();
    let n = &take_invalid(n, &mut found, &mut aside);
    let label = match n.get("id").and_then(|(_, v)| v.as_str()) {
        Some(id) => EntryLabel::Incident(id.to_string()),
        None => EntryLabel::IncidentNo(index + 1),
    };
    let criterion_nodes: Vec<&Node> = match n.get("criteria").map(|(_, v)| &v.value) {
        Some(Value::Seq(items)) => items.iter().collect(),
        _ => Vec::new(),
    };
    let good = parse_criteria(&criterion_nodes, kinds, declared, &mut found, &mut aside);
    let mut errs = EntryErrors::new(label, found);
    let mut incident_errs: Vec<Located> = Vec::new();
    let spec = parse_all::<IncidentSpec>(with_criteria(n, &good), &mut incident_errs, &mut aside);
    errs.extend(incident_errs);
    check_criteria(&good, kinds, declared, &mut errs);
    let Some(spec) = spec else {
        return Err(errs.into_sorted());
    };
    check_incident(&spec, n, criterion_nodes.is_empty(), &mut errs);
    if errs.is_empty() {
        Ok(spec)
    } else {
        Err(errs.into_sorted())
    }
}

/// The criteria that parse without an error, each with its node; the errors of the others
/// go to `found`.
fn parse_criteria<'n>(
    nodes: &[&'n Node],
    kinds: &HashMap<&str, Kind>,
    declared: &[&str],
    found: &mut Vec<Located>,
    aside: &mut Vec<Aside>,
) -> Vec<(CriterionSpec, &'n Node)> {
    let mut good = Vec::new();
    for &node in nodes {
        let before = found.len();
        let parsed = parse_all::<CriterionSpec>(node.clone(), found, aside);
        let clean = found.len() == before && !aside.iter().any(|a| a.parent == node.loc);
        match parsed {
            Some(c) if clean => good.push((c, node)),
            // A criterion with errors of its own may also misspell its probe: that is news
            // too (a probe whose entry failed is not: its own errors say why).
            _ => {
                let name = node.get("name").and_then(|(_, v)| v.as_str());
                let probe = node.get("probe").and_then(|(_, v)| v.as_str());
                if let (Some(name), Some(probe)) = (name, probe)
                    && !kinds.contains_key(probe)
                    && !declared.contains(&probe)
                {
                    found.push((node.loc, unknown_probe(name, probe, declared)));
                }
            }
        }
    }
    good
}

/// The entry `n` with only the `good` criteria in its list, so that the incident's own keys
/// parse without repeating the criteria's errors.
fn with_criteria(n: &Node, good: &[(CriterionSpec, &Node)]) -> Node {
    let Value::Map(entries) = &n.value else {
        return n.clone();
    };
    let entries = entries
        .iter()
        .map(|(k, v)| match (k.name.as_str(), &v.value) {
            ("criteria", Value::Seq(_)) => (
                k.clone(),
                Node {
                    value: Value::Seq(good.iter().map(|(_, c)| (*c).clone()).collect()),
                    loc: v.loc,
                },
            ),
            _ => (k.clone(), v.clone()),
        })
        .collect();
    Node {
        value: Value::Map(entries),
        loc: n.loc,
    }
}

/// The rules of the incident's own keys once it parsed: its id, its thresholds, at least
/// one criterion (`no_criteria`).
fn check_incident(spec: &IncidentSpec, n: &Node, no_criteria: bool, errs: &mut EntryErrors) {
    if !valid_name(&spec.id) {
        let loc = n.get("id").map_or(n.loc, |(_, v)| v.loc);
        errs.push(
            loc,
            "\"id\" must be 1-64 characters of letters, digits, '_', '-', '.', ':'",
        );
    }
    if spec.resolve_after == 0 || spec.reopen_after == 0 {
        errs.push(n.loc, "resolve_after and reopen_after must be at least 1");
    }
    if no_criteria {
        errs.push(n.loc, "an incident needs at least one criterion");
    }
}

/// The checks of the criteria that parsed: names, conditions, probes.
fn check_criteria(
    good: &[(CriterionSpec, &Node)],
    kinds: &HashMap<&str, Kind>,
    declared: &[&str],
    errs: &mut EntryErrors,
) {
    let mut names: Vec<&str> = Vec::new();
    for (c, node) in good {
        let here = node.loc;
        // Each check is its own news: none hides the next.
        if !valid_name(&c.name) {
            errs.push(here, format!(
                "criterion name \"{}\" must be 1-64 characters of letters, digits, '_', '-', '.', ':'",
                c.name
            ));
        } else if names.contains(&c.name.as_str()) {
            errs.push(here, format!("criterion \"{}\" is given twice", c.name));
        }
        names.push(&c.name);
        let condition = c
            .condition()
            .map_err(|e| errs.push(here, e.to_string()))
            .ok();
        let Some(kind) = kinds.get(c.probe.as_str()) else {
            errs.push(here, unknown_probe(&c.name, &c.probe, declared));
            continue;
        };
        if let Some(condition) = condition
            && !kind_supports(*kind, &condition)
        {
            errs.push(
                here,
                format!(
                    "criterion \"{}\": a {} probe does not report what {} needs",
                    c.name,
                    kind,
                    match condition {
                        crate::incident::spec::Condition::AllEvents => "all_events",
                        crate::incident::spec::Condition::State(_) => "state",
                        _ => "this condition",
                    }
                ),
            );
        }
    }
}

/// A criterion naming a probe that did not load: with a suggestion when no entry of the file
/// has that name (an entry that has it failed, and its own errors say why).
fn unknown_probe(criterion: &str, probe: &str, declared: &[&str]) -> String {
    let hint = if declared.contains(&probe) {
        None
    } else {
        de::closest(probe, declared.iter().copied())
    };
    match hint {
        Some(s) => format!(
            "criterion \"{criterion}\": no valid probe named \"{probe}\", did you mean \"{s}\"?"
        ),
        None => format!("criterion \"{criterion}\": no valid probe named \"{probe}\""),
    }
}
