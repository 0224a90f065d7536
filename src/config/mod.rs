//! YAML config -> typed config: defaults, `${VAR}` expansion, secrets, and located errors.
//!
//! Loading is forgiving per probe: a bad probe entry yields a [`ConfigError`] naming the file,
//! line, column and probe, and the valid probes are still returned so that the exporter keeps
//! serving them. Only an unreadable file or broken YAML is fatal.

pub mod buckets;
pub mod de;
pub mod node;
pub mod on_demand;
#[cfg(test)]
mod props;

use crate::core::types::PositiveDuration;
use crate::incident::IncidentSpec;
use crate::incident::spec::kind_supports;
use crate::probe::{Kind, ProbeSpec};
use node::{Key, Loc, Node, Value};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::Duration;

/// Interval when neither the probe nor `defaults` set one.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);

/// The range of `interval`: at least 100 ms, at most a week. 100 ms is the fastest schedule
/// anyone uses (the tests' fast probes, startup polling); it caps a probe at 10 runs a second,
/// where `1ns` meant 800 connects a second to the target. A week: longer is a typo, and a
/// probe that rare says nothing about an incident.
pub const INTERVAL_RANGE: (Duration, Duration) = (
    Duration::from_millis(100),
    Duration::from_secs(7 * 24 * 3600),
);

/// The range of `timeout`: at least 10 ms (less cannot even connect), at most a day (the
/// longest startup any user waits for is minutes).
pub const TIMEOUT_RANGE: (Duration, Duration) =
    (Duration::from_millis(10), Duration::from_secs(24 * 3600));

/// Checks `interval` and `timeout` against their ranges.
fn check_range(key: &str, d: Duration) -> Result<(), String> {
    let ((min, max), words) = match key {
        "interval" => (INTERVAL_RANGE, "from 100ms to 7d"),
        _ => (TIMEOUT_RANGE, "from 10ms to 24h"),
    };
    if d < min || d > max {
        return Err(format!(
            "\"{key}\" is {}: it must be {words}",
            humantime::format_duration(d)
        ));
    }
    Ok(())
}

/// Keys every probe takes, whatever its kind; the rest belong to the kind.
const COMMON_KEYS: &[&str] = &[
    "name",
    "interval",
    "timeout",
    "depends_on",
    "on_demand",
    "buckets",
];
const TOP_KEYS: &[&str] = &["defaults", "probes", "incidents", "on_demand"];

#[derive(Clone, Debug, Default, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    pub interval: Option<PositiveDuration>,
    pub timeout: Option<PositiveDuration>,
    /// Run-duration histogram buckets of every probe without its own: one list, or one
    /// per kind (`{ tcp: [] }`).
    pub buckets: Option<buckets::DefaultBuckets>,
}

/// One configured probe, with its schedule resolved.
#[derive(Clone, Debug)]
pub struct ProbeConfig {
    pub name: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// The probes this one needs (`depends_on`): a failure of theirs explains one of its own
    /// (incident::rootcause). Checked at load: every name exists, no cycle.
    pub depends_on: Vec<String>,
    pub spec: ProbeSpec,
    /// How `/probe` may use this probe as a module.
    pub on_demand: on_demand::ModuleOnDemand,
    /// Bounds of the run-duration histogram (config/buckets.rs).
    pub buckets: buckets::Buckets,
}

#[derive(Clone, Debug, Default)]
pub struct Config {
    pub probes: Vec<ProbeConfig>,
    pub incidents: Vec<IncidentSpec>,
    pub on_demand: on_demand::OnDemandSpec,
}

impl Config {
    /// The dependency graph the root-cause judgement runs over: only the probes that take
    /// part in one (a `depends_on` of their own, or named in one).
    pub fn dependency_graph(&self) -> crate::incident::rootcause::Graph {
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
    pub config: Config,
    pub errors: Vec<ConfigError>,
}

/// An error at a place in a config file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    pub file: String,
    pub loc: Loc,
    /// `probe "name"` or `probe #3` when the entry has no usable name.
    pub probe: Option<String>,
    pub msg: String,
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
    let file = path.display().to_string();
    let text = crate::core::file::read_regular(path).map_err(|e| ConfigError {
        file: file.clone(),
        loc: Loc::FILE,
        probe: None,
        msg: format!("cannot read config file: {e}"),
    })?;
    parse(&file, &text, &|name| std::env::var(name).ok())
}

/// Parses config text; `file` only names the source in errors. Every secret it holds is
/// registered with the redactor as it is read.
pub fn parse(
    file: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Loaded, ConfigError> {
    crate::redact::while_loading(|| parse_text(file, text, env))
}

fn parse_text(
    file: &str,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
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
        // Probes and incidents report their own unexpandable variables, with their name.
        if !matches!(key.name.as_str(), "probes" | "incidents")
            && let Some((loc, msg)) = value.first_invalid()
        {
            errors.push(err(loc, None, msg.to_string()));
            continue;
        }
        match key.name.as_str() {
            "defaults" => match de::from_node::<Defaults>(value) {
                Ok(d) => {
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
                Err(e) => errors.push(err(e.loc.unwrap_or(value.loc), None, e.msg)),
            },
            "on_demand" => match de::from_node::<on_demand::OnDemandSpec>(value) {
                Ok(o) => on_demand = o,
                Err(e) => errors.push(err(e.loc.unwrap_or(value.loc), None, e.msg)),
            },
            "probes" | "incidents" => match &value.value {
                Value::Seq(items) if key.name == "probes" => probe_nodes = items,
                Value::Seq(items) => incident_nodes = items,
                Value::Null => {}
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
            Err(all) => errors.extend(
                all.into_iter()
                    .map(|(loc, probe, msg)| err(loc, Some(probe), msg)),
            ),
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
        let hint = match &e {
            crate::incident::rootcause::GraphError::Unknown { missing, .. } => {
                de::closest(missing, graph.keys().map(String::as_str))
                    .map(|s| format!(", did you mean \"{s}\"?"))
                    .unwrap_or_default()
            }
            _ => String::new(),
        };
        errors.push(err(
            loc,
            Some(format!("probe \"{}\"", e.probe())),
            format!("{e}{hint}"),
        ));
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
        match parse_incident(n, i, &kinds) {
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
    Ok(Loaded {
        config: Config {
            probes,
            incidents,
            on_demand,
        },
        errors,
    })
}

/// An incident entry, checked against the probes that loaded.
fn parse_incident(
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
            Err(msg) => {
                errs.push(here(msg));
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

struct Parsed {
    config: ProbeConfig,
    name_loc: Loc,
    /// Where `depends_on` is, for the graph's errors.
    depends_loc: Loc,
}

/// Label values must stay short and plain: they end up in every series of the probe.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

/// The kind's own keys as a [`ProbeSpec`], collecting every error: serde stops at the first,
/// so each error's key is set aside and the rest parsed again (at most once per key). A
/// "missing field" for a key set aside (or a near miss of it) is a consequence, not news.
fn kind_spec(
    mut rest: Vec<(Key, Node)>,
    at: Loc,
    fail: &dyn Fn(de::DeError, Loc) -> (Loc, String, String),
    errs: &mut Vec<(Loc, String, String)>,
) -> Option<ProbeSpec> {
    let mut set_aside: Vec<String> = Vec::new();
    loop {
        let node = Node {
            value: Value::Map(rest.clone()),
            loc: at,
        };
        let e = match de::from_node::<ProbeSpec>(&node) {
            Ok(spec) => return Some(spec),
            Err(e) => e,
        };
        let loc = e.loc.unwrap_or(at);
        // "missing field host" after setting aside "hots" (or "host" itself) repeats news.
        let consequence = e
            .msg
            .strip_prefix("missing required field \"")
            .and_then(|f| f.strip_suffix('"'))
            .is_some_and(|field| set_aside.iter().any(|k| de::closest(k, [field]).is_some()));
        if !consequence {
            errs.push(fail(e, at));
        }
        // The top-level key the error lies in: the last one that starts at or before it.
        let within = rest
            .iter()
            .rposition(|(k, _)| (k.loc.line, k.loc.col) <= (loc.line, loc.col));
        match within {
            Some(i) if loc != at => set_aside.push(rest.remove(i).0.name),
            _ => return None,
        }
    }
}

fn parse_probe(
    n: &Node,
    index: usize,
    defaults: &Defaults,
) -> Result<Parsed, Vec<(Loc, String, String)>> {
    let anon = format!("probe #{}", index + 1);
    let Value::Map(entries) = &n.value else {
        return Err(vec![(
            n.loc,
            anon,
            format!("a probe must be a mapping, found {}", n.value.describe()),
        )]);
    };
    let label = match n.get("name").and_then(|(_, v)| v.as_str()) {
        Some(name) => format!("probe \"{name}\""),
        None => anon.clone(),
    };
    if let Some((loc, msg)) = n.first_invalid() {
        return Err(vec![(loc, label, msg.to_string())]);
    }
    let (name, name_loc) = match n.get("name") {
        None => {
            return Err(vec![(
                n.loc,
                anon,
                "missing required field \"name\"".into(),
            )]);
        }
        Some((_, v)) => match v.as_str() {
            Some(s) if valid_name(s) => (s.to_string(), v.loc),
            _ => {
                return Err(vec![(
                    v.loc,
                    anon,
                    "\"name\" must be 1-64 characters of letters, digits, '_', '-', '.', ':'"
                        .into(),
                )]);
            }
        },
    };
    let fail = |e: de::DeError, fallback: Loc| (e.loc.unwrap_or(fallback), label.clone(), e.msg);
    // Every error of the entry, not only the first: `validate` lists them in file order.
    let mut errs: Vec<(Loc, String, String)> = Vec::new();

    let duration = |key: &str| -> Result<Option<Duration>, (Loc, String, String)> {
        match n.get(key) {
            None => Ok(None),
            Some((_, v)) => {
                let d = de::from_node::<PositiveDuration>(v).map_err(|e| fail(e, v.loc))?;
                check_range(key, d.0).map_err(|e| (v.loc, label.clone(), e))?;
                Ok(Some(d.0))
            }
        }
    };
    let interval = duration("interval").unwrap_or_else(|e| {
        errs.push(e);
        None
    });
    let timeout = duration("timeout").unwrap_or_else(|e| {
        errs.push(e);
        None
    });
    let (depends_on, depends_loc) = match n.get("depends_on") {
        None => (Vec::new(), name_loc),
        Some((_, v)) => match de::from_node::<Vec<String>>(v) {
            Ok(d) => (d, v.loc),
            Err(e) => {
                errs.push(fail(e, v.loc));
                (Vec::new(), v.loc)
            }
        },
    };
    let on_demand = match n.get("on_demand") {
        None => Default::default(),
        Some((_, v)) => de::from_node(v).unwrap_or_else(|e| {
            errs.push(fail(e, v.loc));
            Default::default()
        }),
    };

    let buckets = buckets::of_probe(n, defaults.buckets.as_ref()).unwrap_or_else(|(e, loc)| {
        errs.push(fail(e, loc));
        Default::default()
    });

    let rest: Vec<(Key, Node)> = entries
        .iter()
        .filter(|(k, _)| !COMMON_KEYS.contains(&k.name.as_str()))
        .cloned()
        .collect();
    let spec = kind_spec(rest, n.loc, &fail, &mut errs);
    if let Some(spec) = &spec
        && errs.is_empty()
        && let Err(msg) = spec.validate()
    {
        errs.push((n.loc, label.clone(), msg));
    }
    let Some(spec) = spec.filter(|_| errs.is_empty()) else {
        errs.sort_by_key(|(loc, _, _)| (loc.line, loc.col));
        return Err(errs);
    };

    let timeout = timeout
        .or(defaults.timeout.map(|d| d.0))
        .unwrap_or_else(|| spec.default_timeout());
    let interval = interval
        .or(defaults.interval.map(|d| d.0))
        .unwrap_or(DEFAULT_INTERVAL);
    Ok(Parsed {
        config: ProbeConfig {
            name,
            interval,
            timeout,
            depends_on,
            spec,
            on_demand,
            buckets,
        },
        name_loc,
        depends_loc,
    })
}
