//! The probes' `depends_on`, checked as a whole once every entry is read: a name no probe
//! has (with "did you mean"), or a cycle, is an error at the `depends_on` it is in.

use super::ProbeConfig;
use super::de;
use super::entry::EntryLabel;
use super::node::{Loc, Node, Value};
use crate::incident::rootcause::{self, GraphError};
use std::collections::HashMap;

/// Every name the file gives a probe entry, loaded or not.
pub(super) fn declared(probe_nodes: &[Node]) -> Vec<&str> {
    probe_nodes
        .iter()
        .filter_map(|n| n.get("name").and_then(|(_, v)| v.as_str()))
        .collect()
}

/// The graph's errors as (the `depends_on`'s location, the probe's label, message). A probe
/// with one keeps running without its dependencies, so nothing is judged a consequence on a
/// broken graph.
pub(super) fn check(
    probes: &mut [std::sync::Arc<ProbeConfig>],
    depends_locs: &HashMap<String, Loc>,
    declared: &[&str],
) -> Vec<(Loc, String, String)> {
    let graph: rootcause::Graph = probes
        .iter()
        .map(|p| (p.name.clone(), p.depends_on.clone()))
        .collect();
    let mut errors = Vec::new();
    for e in rootcause::check(&graph) {
        let loc = depends_locs.get(e.probe()).copied().unwrap_or_default();
        let msg = match &e {
            GraphError::Unknown { missing, .. } => unknown_dependency(missing, declared),
            _ => e.to_string(),
        };
        errors.push((
            loc,
            EntryLabel::Probe(e.probe().to_string()).to_string(),
            msg,
        ));
        if let Some(p) = probes.iter_mut().find(|p| p.name == e.probe()) {
            // Not shared yet (the config is being built): no copy is made.
            std::sync::Arc::make_mut(p).depends_on.clear();
        }
    }
    errors
}

/// What a `depends_on` naming no loaded probe says: a suggestion for a name no entry has, or
/// that the entry it names failed (its own errors say why).
fn unknown_dependency(missing: &str, declared: &[&str]) -> String {
    if declared.contains(&missing) {
        return format!("depends_on names \"{missing}\", a probe whose entry has errors");
    }
    let e = GraphError::Unknown {
        probe: String::new(),
        missing: missing.to_string(),
    };
    match de::closest(missing, declared.iter().copied()) {
        Some(s) => format!("{e}, did you mean \"{s}\"?"),
        None => e.to_string(),
    }
}

/// The names in a failed entry's `depends_on` that no entry of the file has.
pub(super) fn unknown_dependencies(n: &Node, declared: &[&str]) -> Vec<(Loc, String)> {
    let Some((_, list)) = n.get("depends_on") else {
        return Vec::new();
    };
    let Value::Seq(items) = &list.value else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|i| i.as_str())
        .filter(|name| !declared.contains(name))
        .map(|name| (list.loc, unknown_dependency(name, declared)))
        .collect()
}
