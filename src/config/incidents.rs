//! One `incidents:` entry -> [`IncidentSpec`], checked against the probes that loaded: every
//! criterion's error, not only serde's first.

use super::de;
use super::node::{Loc, Node, Value};
use super::probes::valid_name;
use crate::incident::IncidentSpec;
use crate::incident::spec::kind_supports;
use crate::probe::Kind;
use std::collections::HashMap;

/// An incident entry, checked against the probes that loaded.
pub(super) fn parse_incident(
    n: &Node,
    index: usize,
    kinds: &HashMap<&str, Kind>,
) -> Result<IncidentSpec, Vec<(Loc, String, String)>> {
    let label = match n.get("id").and_then(|(_, v)| v.as_str()) {
        Some(id) => format!("incident \"{id}\""),
        None => format!("incident #{}", index + 1),
    };
    if let Some((loc, msg)) = n.first_invalid() {
        return Err(vec![(loc, label, msg.to_string())]);
    }
    // Every criterion's own error, then the incident's: serde would stop at the first.
    let mut errs: Vec<(Loc, String, String)> = Vec::new();
    let criterion_nodes: Vec<&Node> = match n.get("criteria").map(|(_, v)| &v.value) {
        Some(Value::Seq(items)) => items.iter().collect(),
        _ => Vec::new(),
    };
    let mut good: Vec<&Node> = Vec::new();
    for node in &criterion_nodes {
        match de::from_node::<crate::incident::CriterionSpec>(node) {
            Ok(_) => good.push(node),
            Err(e) => errs.push((e.loc.unwrap_or(node.loc), label.clone(), e.msg)),
        }
    }
    let only_good = match &n.value {
        Value::Map(entries) => Node {
            value: Value::Map(
                entries
                    .iter()
                    .map(|(k, v)| match (k.name.as_str(), &v.value) {
                        ("criteria", Value::Seq(_)) => (
                            k.clone(),
                            Node {
                                value: Value::Seq(good.iter().map(|c| (*c).clone()).collect()),
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
    let spec: IncidentSpec = match de::from_node(&only_good) {
        Ok(spec) => spec,
        Err(e) => {
            errs.push((e.loc.unwrap_or(n.loc), label.clone(), e.msg));
            errs.sort_by_key(|(loc, _, _)| (loc.line, loc.col));
            return Err(errs);
        }
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
    let mut names: Vec<&str> = Vec::new();
    for (c, node) in spec.criteria.iter().zip(&good) {
        let here = |msg: String| (node.loc, label.clone(), msg);
        if !valid_name(&c.name) {
            errs.push(here(format!(
                "criterion name \"{}\" must be 1-64 characters of letters, digits, '_', '-', '.', ':'",
                c.name
            )));
            continue;
        }
        if names.contains(&c.name.as_str()) {
            errs.push(here(format!("criterion \"{}\" is given twice", c.name)));
            continue;
        }
        names.push(&c.name);
        let condition = match c.condition() {
            Ok(c) => c,
            Err(e) => {
                errs.push(here(e.to_string()));
                continue;
            }
        };
        let Some(kind) = kinds.get(c.probe.as_str()) else {
            errs.push(here(format!(
                "criterion \"{}\": no valid probe named \"{}\"",
                c.name, c.probe
            )));
            continue;
        };
        if !kind_supports(*kind, &condition) {
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
    if errs.is_empty() {
        Ok(spec)
    } else {
        errs.sort_by_key(|(loc, _, _)| (loc.line, loc.col));
        Err(errs)
    }
}
