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
mod entry;
mod graph;
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
pub use target_url::{Origin, TargetUrl, TargetUrlError};

use crate::incident::IncidentSpec;
use crate::probe::Kind;
use defaults::check_range;
use entry::{EntryError, EntryLabel};
use incidents::parse_incident;
use node::{Loc, Node, Value};
use probes::parse_probe;
use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::Arc;

const TOP_KEYS: &[&str] = &["defaults", "probes", "incidents", "on_demand"];

/// A loaded config: the probes and incidents in force (file order), and the on-demand settings.
#[derive(Clone, Debug, Default)]
pub struct Config {
    /// Every probe, in file order; names are unique.
    pub probes: Vec<Arc<ProbeConfig>>,
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
pub fn load_with(path: Option<&Path>, targets: &[TargetUrl]) -> Result<Loaded, ConfigError> {
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

/// [`load_with`] on a thread of its own (`config-load`), awaited without blocking an async
/// worker: what the load allocates sits in that thread's malloc arena, which is freed whole
/// once the share that runs is copied out of it (core/heap.rs; issue 33). A thread that
/// cannot start, or a load that stops without an answer, is an error at the file.
pub async fn load_apart(
    path: Option<std::path::PathBuf>,
    targets: Vec<TargetUrl>,
) -> Result<Loaded, ConfigError> {
    let file = path
        .as_deref()
        .map_or_else(|| "<targets>".to_string(), |p| p.display().to_string());
    let failed = |msg: String| ConfigError {
        file: file.clone(),
        loc: Loc::FILE,
        probe: None,
        msg,
    };
    let (sender, answer) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("config-load".into())
        .spawn(move || {
            let _ = sender.send(load_with(path.as_deref(), &targets));
        })
        .map_err(|e| failed(format!("cannot start a thread to load the config: {e}")))?;
    answer
        .await
        .map_err(|_| failed("loading the config stopped before it finished".to_string()))?
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
    targets: &[TargetUrl],
) -> Result<Loaded, ConfigError> {
    let mut root = node::parse(text, env).map_err(|e| ConfigError::at(file, e.loc, None, e.msg))?;
    let Value::Map(entries) = &mut root.value else {
        return Err(ConfigError::at(
            file,
            root.loc,
            None,
            format!(
                "the config must be a mapping with \"probes:\", found {}",
                root.value.describe()
            ),
        ));
    };
    let mut errors = Errors {
        file,
        list: Vec::new(),
    };
    let sections = top_level(entries, &mut errors);
    // Every name the file gives a probe, loaded or not: a suggestion may point at an entry
    // that has errors of its own, and naming such an entry is not a typo. Owned: the probe
    // entries are freed as they are read (parse_probes).
    let names: Vec<String> = graph::declared(sections.probes)
        .into_iter()
        .map(String::from)
        .collect();
    let declared: Vec<&str> = names.iter().map(String::as_str).collect();
    let (mut probes, depends_locs) =
        parse_probes(sections.probes, &sections.defaults, &declared, &mut errors);
    add_targets(targets, &sections.defaults, &mut probes, &mut errors.list);
    for (loc, probe, msg) in graph::check(&mut probes, &depends_locs, &declared) {
        errors.at(loc, Some(probe), msg);
    }
    let incidents = parse_incidents(sections.incidents, &probes, &declared, &mut errors);
    buckets::add_criteria_bounds(&mut probes, &incidents);
    let mut errors = errors.list;
    // In file order, whichever check found them (the dependency graph is checked after
    // every entry); errors at one place keep the order they were found in.
    errors.sort_by_key(|e| (e.loc.line, e.loc.col));
    Ok(Loaded {
        config: Config {
            probes,
            incidents,
            on_demand: sections.on_demand,
        },
        errors,
    })
}

impl ConfigError {
    fn at(file: &str, loc: Loc, probe: Option<String>, msg: String) -> ConfigError {
        ConfigError {
            file: file.to_string(),
            loc,
            probe,
            msg,
        }
    }
}

/// The errors of one file, in the order found.
struct Errors<'a> {
    file: &'a str,
    list: Vec<ConfigError>,
}

impl Errors<'_> {
    fn at(&mut self, loc: Loc, probe: Option<String>, msg: String) {
        self.list.push(ConfigError::at(self.file, loc, probe, msg));
    }

    /// An error of a probe or incident entry.
    fn entry(&mut self, e: EntryError) {
        self.at(e.loc, Some(e.entry.to_string()), e.msg);
    }
}

/// The top-level keys, each section parsed as far as it goes (an empty one when it has
/// errors: they are in `errors`).
struct Sections<'n> {
    defaults: Defaults,
    /// Mutable: parse_probes frees each entry once read.
    probes: &'n mut [Node],
    incidents: &'n [Node],
    on_demand: on_demand::OnDemandSpec,
}

fn top_level<'n>(entries: &'n mut [(node::Key, Node)], errors: &mut Errors) -> Sections<'n> {
    let mut sections = Sections {
        defaults: Defaults::default(),
        probes: &mut [],
        incidents: &[],
        on_demand: on_demand::OnDemandSpec::default(),
    };
    for (key, value) in entries {
        match key.name.as_str() {
            "defaults" => {
                if let Some(d) = parse_defaults(value, errors) {
                    sections.defaults = d;
                }
            }
            "on_demand" => {
                if let Some(o) = section(value, &mut |loc, msg| errors.at(loc, None, msg)) {
                    sections.on_demand = o;
                }
            }
            "probes" => sections.probes = list(&key.name, value, errors),
            "incidents" => sections.incidents = &*list(&key.name, value, errors),
            other => {
                let e = <de::DeError as serde::de::Error>::unknown_field(other, TOP_KEYS);
                errors.at(key.loc, None, e.msg);
            }
        }
    }
    sections
}

/// `defaults:`, with its interval and timeout in bounds; `None` when it has an error.
fn parse_defaults(value: &Node, errors: &mut Errors) -> Option<Defaults> {
    let d = section::<Defaults>(value, &mut |loc, msg| errors.at(loc, None, msg))?;
    let bad = [("interval", d.interval), ("timeout", d.timeout)]
        .into_iter()
        .find_map(|(k, v)| {
            let e = check_range(k, v?.0).err()?;
            Some((value.get(k).map_or(value.loc, |(_, n)| n.loc), e))
        });
    match bad {
        Some((loc, e)) => {
            errors.at(loc, None, format!("defaults: {e}"));
            None
        }
        None => Some(d),
    }
}

/// The entries of `probes:` or `incidents:` (`key`); none when it is empty or not a list.
fn list<'n>(key: &str, value: &'n mut Node, errors: &mut Errors) -> &'n mut [Node] {
    match &mut value.value {
        Value::Seq(items) => return items,
        Value::Null => {}
        Value::Invalid(msg) => errors.at(value.loc, None, msg.clone()),
        other => errors.at(
            value.loc,
            None,
            format!("\"{key}\" must be a list, found {}", other.describe()),
        ),
    }
    &mut []
}

/// The probe entries that load, each name once, and where each one's `depends_on` is. Each
/// entry's tree is freed once read: it is most of a large file's tree (about 500 bytes a
/// probe), and freed here it holds the specs built next instead of adding to the load's peak.
fn parse_probes(
    nodes: &mut [Node],
    defaults: &Defaults,
    declared: &[&str],
    errors: &mut Errors,
) -> (Vec<Arc<ProbeConfig>>, HashMap<String, Loc>) {
    let mut seen: HashMap<String, Loc> = HashMap::new();
    let mut depends_locs: HashMap<String, Loc> = HashMap::new();
    let mut probes = Vec::new();
    for (i, n) in nodes.iter_mut().enumerate() {
        match parse_probe(n, i, defaults) {
            Ok(p) => {
                if let Some(first) = seen.get(&p.config.name) {
                    errors.at(
                        p.name_loc,
                        Some(EntryLabel::Probe(p.config.name.clone()).to_string()),
                        format!(
                            "duplicate probe name (first defined at line {})",
                            first.line
                        ),
                    );
                } else {
                    seen.insert(p.config.name.clone(), p.name_loc);
                    depends_locs.insert(p.config.name.clone(), p.depends_loc);
                    // Straight into the Arc the config keeps: collecting the Arcs at the end
                    // held every spec twice at the load's peak (the Vec's buffer and the Arcs).
                    probes.push(Arc::new(p.config));
                }
            }
            Err(all) => {
                // An entry with errors is not in the graph, but a misspelt dependency of it
                // is news all the same.
                let label = all.first().map(|e| e.entry.to_string());
                for e in all {
                    errors.entry(e);
                }
                if let Some(label) = label {
                    for (loc, msg) in graph::unknown_dependencies(n, declared) {
                        errors.at(loc, Some(label.clone()), msg);
                    }
                }
            }
        }
        n.value = Value::Null;
    }
    (probes, depends_locs)
}

/// The probes of `targets` (`--target`, `DATABASE_URL`), each named apart from the file's;
/// their errors name the target, not the file.
fn add_targets(
    targets: &[TargetUrl],
    defaults: &Defaults,
    probes: &mut Vec<Arc<ProbeConfig>>,
    errors: &mut Vec<ConfigError>,
) {
    for t in targets {
        let taken = |name: &str| probes.iter().any(|p| p.name == name);
        match t.probe(defaults, &taken) {
            Ok(p) => probes.push(Arc::new(p)),
            Err(all) => errors.extend(
                all.into_iter()
                    .map(|msg| ConfigError::at(t.label(), Loc::FILE, None, msg)),
            ),
        }
    }
}

/// The incident entries that load, checked against the probes that did; each id once.
fn parse_incidents(
    nodes: &[Node],
    probes: &[Arc<ProbeConfig>],
    declared: &[&str],
    errors: &mut Errors,
) -> Vec<IncidentSpec> {
    let kinds: HashMap<&str, Kind> = probes
        .iter()
        .map(|p| (p.name.as_str(), p.spec.kind()))
        .collect();
    let mut incidents: Vec<IncidentSpec> = Vec::new();
    for (i, n) in nodes.iter().enumerate() {
        match parse_incident(n, i, &kinds, declared) {
            Ok(inc) if incidents.iter().any(|o| o.id == inc.id) => errors.at(
                n.get("id").map_or(n.loc, |(_, v)| v.loc),
                Some(EntryLabel::Incident(inc.id.clone()).to_string()),
                "duplicate incident id".into(),
            ),
            Ok(inc) => incidents.push(inc),
            Err(all) => {
                for e in all {
                    errors.entry(e);
                }
            }
        }
    }
    incidents
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
