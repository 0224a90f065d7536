//! One `incidents:` entry -> [`IncidentSpec`], checked against the probes that loaded: every
//! criterion's error, not only serde's first.

use super::aside::{Aside, Located, parse_all, take_invalid};
use super::de;
use super::node::{Loc, Node, Value};
use super::probes::valid_name;
use crate::incident::spec::kind_supports;
use crate::incident::{CriterionSpec, IncidentSpec};
use crate::probe::Kind;
use std::collections::HashMap;

/// An incident entry, checked against the probes that loaded. `declared` names every probe
/// entry of the file, loaded or not, for "did you mean".
pub(super) fn parse_incident(
    n: &Node,
    index: usize,
    kinds: &HashMap<&str, Kind>,
    declared: &[&str],
) -> Result<IncidentSpec, Vec<(Loc, String, String)>> {
    // Every error of the entry: an unset variable is one of them (its key is set aside),
    // each criterion is checked on its own, then the incident's own keys.
    let mut found: Vec<Located> = Vec::new();
    let mut aside: Vec<Aside> = Vec::new();
    let n = &take_invalid(n, &mut found, &mut aside);
    let label = match n.get("id").and_then(|(_, v)| v.as_str()) {
        Some(id) => format!("incident \"{id}\""),
        None => format!("incident #{}", index + 1),
    };
    let criterion_nodes: Vec<&Node> = match n.get("criteria").map(|(_, v)| &v.value) {
        Some(Value::Seq(items)) => items.iter().collect(),
        _ => Vec::new(),
    };
    let mut good: Vec<(CriterionSpec, &Node)> = Vec::new();
    for node in &criterion_nodes {
        let before = found.len();
        let parsed = parse_all::<CriterionSpec>((*node).clone(), &mut found, &mut aside);
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
    let mut errs: Vec<(Loc, String, String)> = found
        .into_iter()
        .map(|(loc, msg)| (loc, label.clone(), msg))
        .collect();
    let only_good = match &n.value {
        Value::Map(entries) => Node {
            value: Value::Map(
                entries
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
                    .collect(),
            ),
            loc: n.loc,
        },
        _ => n.clone(),
    };
    let mut incident_errs: Vec<Located> = Vec::new();
    let spec = parse_all::<IncidentSpec>(only_good, &mut incident_errs, &mut aside);
    errs.extend(
        incident_errs
            .into_iter()
            .map(|(loc, msg)| (loc, label.clone(), msg)),
    );
    check_criteria(&good, kinds, declared, &label, &mut errs);
    let Some(spec) = spec else {
        errs.sort_by_key(|(loc, _, _)| (loc.line, loc.col));
        return Err(errs);
    };
    if !valid_name(&spec.id) {
        let loc = n.get("id").map_or(n.loc, |(_, v)| v.loc);
        errs.push((
            loc,
            label.clone(),
            "\"id\" must be 1-64 characters of letters, digits, '_', '-', '.', ':'".into(),
        ));
    }
    if spec.resolve_after == 0 || spec.reopen_after == 0 {
        errs.push((
            n.loc,
            label.clone(),
            "resolve_after and reopen_after must be at least 1".into(),
        ));
    }
    if criterion_nodes.is_empty() {
        errs.push((
            n.loc,
            label.clone(),
            "an incident needs at least one criterion".into(),
        ));
    }
    if errs.is_empty() {
        Ok(spec)
    } else {
        errs.sort_by_key(|(loc, _, _)| (loc.line, loc.col));
        Err(errs)
    }
}

/// The checks of the criteria that parsed: names, conditions, probes.
fn check_criteria(
    good: &[(CriterionSpec, &Node)],
    kinds: &HashMap<&str, Kind>,
    declared: &[&str],
    label: &str,
    errs: &mut Vec<(Loc, String, String)>,
) {
    let mut names: Vec<&str> = Vec::new();
    for (c, node) in good {
        let here = |msg: String| (node.loc, label.to_string(), msg);
        // Each check is its own news: none hides the next.
        if !valid_name(&c.name) {
            errs.push(here(format!(
                "criterion name \"{}\" must be 1-64 characters of letters, digits, '_', '-', '.', ':'",
                c.name
            )));
        } else if names.contains(&c.name.as_str()) {
            errs.push(here(format!("criterion \"{}\" is given twice", c.name)));
        }
        names.push(&c.name);
        let condition = c
            .condition()
            .map_err(|e| errs.push(here(e.to_string())))
            .ok();
        let Some(kind) = kinds.get(c.probe.as_str()) else {
            errs.push(here(unknown_probe(&c.name, &c.probe, declared)));
            continue;
        };
        if let Some(condition) = condition
            && !kind_supports(*kind, &condition)
        {
            errs.push(here(format!(
                "criterion \"{}\": a {} probe does not report what {} needs",
                c.name,
                kind,
                match condition {
                    crate::incident::spec::Condition::AllEvents => "all_events",
                    crate::incident::spec::Condition::State(_) => "state",
                    _ => "this condition",
                }
            )));
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
