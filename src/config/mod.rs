//! YAML config -> typed config: defaults, `${VAR}` expansion, secrets, and located errors.
//!
//! Loading is forgiving per probe: a bad probe entry yields a [`ConfigError`] naming the file,
//! line, column and probe, and the valid probes are still returned so that the exporter keeps
//! serving them. Only an unreadable file or broken YAML is fatal.
//!
//! Text flows one way: [`node`] (YAML -> located tree, `${VAR}`) -> [`de`] (serde over the
//! tree) -> `probes.rs` / `incidents.rs` (one entry each, with `defaults.rs`'s bounds) ->
//! [`Config`]. Each step has its own typed error ([`node::ParseError`],
//! [`node::ExpandError`], [`de::DeError`], [`OutOfRange`]); here they all become a
//! [`ConfigError`] with the file, line, column and entry, which is what users read.
//! No error hides another: `aside.rs` sets aside the key an error (or an unset variable) lies
//! in and checks the rest of the entry, and the errors leave in file order.

mod aside;
pub(crate) mod buckets;
pub(crate) mod de;
mod defaults;
mod incidents;
pub(crate) mod node;
pub mod on_demand;
mod probes;
#[cfg(test)]
mod props;
pub mod shard;
pub(crate) mod target_url;

pub use defaults::{DEFAULT_INTERVAL, Defaults, INTERVAL_RANGE, OutOfRange, TIMEOUT_RANGE};
pub use probes::ProbeConfig;
pub use target_url::{Origin, Target, TargetError};

use crate::incident::IncidentSpec;
use crate::probe::Kind;
use defaults::check_range;
use incidents::parse_incident;
use node::{Loc, Node, Value};
use probes::parse_probe;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;

const TOP_KEYS: &[&str] = &["defaults", "probes", "incidents", "on_demand"];

/// A loaded config: the probes and incidents in force (file order), and the on-demand settings.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Every probe, in file order; names are unique.
    pub probes: Vec<std::sync::Arc<ProbeConfig>>,
    /// Every incident, in file order; ids are unique.
    pub incidents: Vec<IncidentSpec>,
    pub(crate) on_demand: on_demand::OnDemandSpec,
}

impl Config {
    /// The dependency graph the root-cause judgement runs over: only the probes that take
    /// part in one (a `depends_on` of their own, or named in one).
    pub(crate) fn dependency_graph(&self) -> crate::incident::rootcause::Graph {
        crate::incident::rootcause::graph(
            self.probes
                .iter()
                .map(|p| (p.name.as_str(), p.depends_on.as_slice())),
        )
    }
}

/// A config that loaded, with the entries that did not (each already skipped).
#[derive(Debug)]
pub struct Loaded {
    /// The entries that loaded.
    pub config: Config,
    /// One error per entry that did not, in file order (empty when the whole file loaded).
    pub errors: Vec<ConfigError>,
}

/// An error at a place in a config file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    pub(crate) file: String,
    pub(crate) loc: Loc,
    /// `probe "name"` or `probe #3` when the entry has no usable name.
    pub(crate) probe: Option<String>,
    pub(crate) msg: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.loc == Loc::FILE {
            write!(f, "{}: ", self.file)?;
        } else {
            write!(f, "{}:{}:{}: ", self.file, self.loc.line, self.loc.col)?;
        }
        if let Some(p) = &self.probe {
            write!(f, "{p}: ")?;
        }
        // A message may quote a value (an invalid URL with a password in it).
        f.write_str(&crate::redact::redact(&self.msg))
    }
}

/// Reads and parses a config file, expanding `${VAR}` from the process environment.
pub fn load(path: &Path) -> Result<Loaded, ConfigError> {
    load_with(Some(path), &[])
}

/// Loads the config file, if any, with `targets` (`--target`, `DATABASE_URL`) added to its
/// probes under the file's `defaults:`. A target's probe takes its own name, or a numbered
/// one when a probe of the file already has it.
pub fn load_with(path: Option<&Path>, targets: &[Target]) -> Result<Loaded, ConfigError> {
    let (file, text) = match path {
        Some(path) => {
            let file = path.display().to_string();
            let text = crate::core::file::read_regular(path).map_err(|e| ConfigError {
                file: file.clone(),
                loc: Loc::FILE,
                probe: None,
                msg: format!("cannot read config file: {e}"),
            })?;
            (file, text)
        }
        None => ("<targets>".to_string(), String::new()),
    };
    let env = |name: &str| std::env::var(name).ok();
    crate::redact::while_loading(|| parse_text(&file, &text, &env, targets))
}

/// Parses config text; `file` only names the source in errors. Every secret it holds is
/// registered with the redactor as it is read.
pub fn parse(
    file: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    crate::redact::while_loading(|| parse_text(file, text, env, &[]))
}

fn parse_text(
    file: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    targets: &[Target],
) -> Result<Loaded, ConfigError> {
    let err = |loc: Loc, probe: Option<String>, msg: String| ConfigError {
        file: file.to_string(),
        loc,
        probe,
        msg,
    };
    let root = node::parse(text, env).map_err(|e| err(e.loc, None, e.msg))?;
    let Value::Map(entries) = &root.value else {
        return Err(err(
            root.loc,
            None,
            format!(
                "the config must be a mapping with \"probes:\", found {}",
                root.value.describe()
            ),
        ));
    };

    let mut errors = Vec::new();
    let mut defaults = Defaults::default();
    let mut probe_nodes: &[Node] = &[];
    let mut incident_nodes: &[Node] = &[];
    let mut on_demand = on_demand::OnDemandSpec::default();
    for (key, value) in entries {
        match key.name.as_str() {
            "defaults" => {
                if let Some(d) = section::<Defaults>(value, &mut |loc, msg| {
                    errors.push(err(loc, None, msg));
                }) {
                    let bad = [("interval", d.interval), ("timeout", d.timeout)]
                        .into_iter()
                        .find_map(|(k, v)| {
                            let e = check_range(k, v?.0).err()?;
                            Some((value.get(k).map_or(value.loc, |(_, n)| n.loc), e))
                        });
                    match bad {
                        Some((loc, e)) => errors.push(err(loc, None, format!("defaults: {e}"))),
                        None => defaults = d,
                    }
                }
            }
            "on_demand" => {
                if let Some(o) = section(value, &mut |loc, msg| {
                    errors.push(err(loc, None, msg));
                }) {
                    on_demand = o;
                }
            }
            "probes" | "incidents" => match &value.value {
                Value::Seq(items) if key.name == "probes" => probe_nodes = items,
                Value::Seq(items) => incident_nodes = items,
                Value::Null => {}
                Value::Invalid(msg) => errors.push(err(value.loc, None, msg.clone())),
                other => errors.push(err(
                    value.loc,
                    None,
                    format!(
                        "\"{}\" must be a list, found {}",
                        key.name,
                        other.describe()
                    ),
                )),
            },
            other => {
                let e = <de::DeError as serde::de::Error>::unknown_field(other, TOP_KEYS);
                errors.push(err(key.loc, None, e.msg));
            }
        }
    }

    // Every name the file gives a probe, loaded or not: a suggestion may point at an entry
    // that has errors of its own, and naming such an entry is not a typo.
    let declared: Vec<&str> = probe_nodes
        .iter()
        .filter_map(|n| n.get("name").and_then(|(_, v)| v.as_str()))
        .collect();
    let mut seen: HashMap<String, Loc> = HashMap::new();
    let mut depends_locs: HashMap<String, Loc> = HashMap::new();
    let mut probes = Vec::new();
    for (i, n) in probe_nodes.iter().enumerate() {
        match parse_probe(n, i, &defaults) {
            Ok(p) => {
                if let Some(first) = seen.get(&p.config.name) {
                    errors.push(err(
                        p.name_loc,
                        Some(format!("probe \"{}\"", p.config.name)),
                        format!(
                            "duplicate probe name (first defined at line {})",
                            first.line
                        ),
                    ));
                } else {
                    seen.insert(p.config.name.clone(), p.name_loc);
                    depends_locs.insert(p.config.name.clone(), p.depends_loc);
                    probes.push(p.config);
                }
            }
            Err(all) => {
                // An entry with errors is not in the graph, but a misspelt dependency of it
                // is news all the same.
                let label = all.first().map(|(_, label, _)| label.clone());
                errors.extend(
                    all.into_iter()
                        .map(|(loc, probe, msg)| err(loc, Some(probe), msg)),
                );
                if let Some(label) = label {
                    for (loc, msg) in unknown_dependencies(n, &declared) {
                        errors.push(err(loc, Some(label.clone()), msg));
                    }
                }
            }
        }
    }
    for t in targets {
        let taken = |name: &str| probes.iter().any(|p: &ProbeConfig| p.name == name);
        match t.probe(&defaults, &taken) {
            Ok(p) => probes.push(p),
            Err(all) => errors.extend(all.into_iter().map(|msg| ConfigError {
                file: t.label().to_string(),
                loc: Loc::FILE,
                probe: None,
                msg,
            })),
        }
    }
    // The dependency graph, checked as a whole: an unknown name or a cycle is an error at the
    // `depends_on` of the probe it belongs to, and that probe keeps running without its
    // dependencies (so nothing is judged a consequence on a broken graph).
    let graph: crate::incident::rootcause::Graph = probes
        .iter()
        .map(|p| (p.name.clone(), p.depends_on.clone()))
        .collect();
    for e in crate::incident::rootcause::check(&graph) {
        let loc = depends_locs.get(e.probe()).copied().unwrap_or_default();
        let msg = match &e {
            crate::incident::rootcause::GraphError::Unknown { missing, .. } => {
                unknown_dependency(missing, &declared)
            }
            _ => e.to_string(),
        };
        errors.push(err(loc, Some(format!("probe \"{}\"", e.probe())), msg));
        if let Some(p) = probes.iter_mut().find(|p| p.name == e.probe()) {
            p.depends_on.clear();
        }
    }
    let kinds: HashMap<&str, Kind> = probes
        .iter()
        .map(|p| (p.name.as_str(), p.spec.kind()))
        .collect();
    let mut incidents: Vec<IncidentSpec> = Vec::new();
    for (i, n) in incident_nodes.iter().enumerate() {
        match parse_incident(n, i, &kinds, &declared) {
            Ok(inc) if incidents.iter().any(|o| o.id == inc.id) => errors.push(err(
                n.get("id").map_or(n.loc, |(_, v)| v.loc),
                Some(format!("incident \"{}\"", inc.id)),
                "duplicate incident id".into(),
            )),
            Ok(inc) => incidents.push(inc),
            Err(all) => errors.extend(
                all.into_iter()
                    .map(|(loc, label, msg)| err(loc, Some(label), msg)),
            ),
        }
    }
    buckets::add_criteria_bounds(&mut probes, &incidents);
    // In file order, whichever check found them (the dependency graph is checked after
    // every entry); errors at one place keep the order they were found in.
    errors.sort_by_key(|e| (e.loc.line, e.loc.col));
    Ok(Loaded {
        config: Config {
            probes: probes.into_iter().map(std::sync::Arc::new).collect(),
            incidents,
            on_demand,
        },
        errors,
    })
}

/// A top-level section with every error of it, an unset variable among them (its key set
/// aside); `Some` only when it has none.
fn section<T: serde::de::DeserializeOwned>(
    value: &Node,
    report: &mut dyn FnMut(Loc, String),
) -> Option<T> {
    let (mut found, mut set_aside) = (Vec::new(), Vec::new());
    let tree = aside::take_invalid(value, &mut found, &mut set_aside);
    let parsed = aside::parse_all(tree, &mut found, &mut set_aside);
    let clean = found.is_empty();
    for (loc, msg) in found {
        report(loc, msg);
    }
    parsed.filter(|_| clean)
}

/// What a `depends_on` naming no loaded probe says: a suggestion for a name no entry has, or
/// that the entry it names failed (its own errors say why).
fn unknown_dependency(missing: &str, declared: &[&str]) -> String {
    if declared.contains(&missing) {
        return format!("depends_on names \"{missing}\", a probe whose entry has errors");
    }
    let e = crate::incident::rootcause::GraphError::Unknown {
        probe: String::new(),
        missing: missing.to_string(),
    };
    match de::closest(missing, declared.iter().copied()) {
        Some(s) => format!("{e}, did you mean \"{s}\"?"),
        None => e.to_string(),
    }
}

/// The names in a failed entry's `depends_on` that no entry of the file has.
fn unknown_dependencies(n: &Node, declared: &[&str]) -> Vec<(Loc, String)> {
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
