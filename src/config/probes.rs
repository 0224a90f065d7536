//! One `probes:` entry -> [`ProbeConfig`]: the common keys (name, schedule, `depends_on`,
//! `on_demand`), then the kind's own keys as a [`ProbeSpec`], every error of the entry
//! collected with its location.

use super::aside::{Aside, Located, names_any, parse_all, take_invalid};
use super::de;
use super::defaults::{DEFAULT_INTERVAL, Defaults, check_range};
use super::entry::{EntryError, EntryErrors, EntryLabel};
use super::node::{Key, Loc, Node, Value};
use super::on_demand;
use crate::core::types::PositiveDuration;
use crate::probe::{BuiltProbe, ProbeSpec};
use std::sync::Arc;
use std::time::Duration;

/// Keys every probe takes, whatever its kind; the rest belong to the kind.
const COMMON_KEYS: &[&str] = &[
    "name",
    "interval",
    "timeout",
    "depends_on",
    "on_demand",
    "buckets",
];

/// One configured probe, with its schedule resolved.
#[derive(Clone, Debug)]
pub struct ProbeConfig {
    /// The probe's name: unique in the config, the `probe` label of its series.
    pub name: String,
    pub(crate) interval: Duration,
    pub(crate) timeout: Duration,
    /// The probes this one needs (`depends_on`): a failure of theirs explains one of its own
    /// (incident::rootcause). Checked at load: every name exists, no cycle.
    pub(crate) depends_on: Vec<String>,
    /// What the config says (plain data: on-demand runs retarget it).
    pub spec: ProbeSpec,
    /// The probe built from `spec` when the config loaded, ready to run; clones share it
    /// (and the state it keeps across runs).
    pub(crate) built: Arc<BuiltProbe>,
    /// How `/probe` may use this probe as a module.
    pub(crate) on_demand: on_demand::ModuleOnDemand,
    /// Bounds of the run-duration histogram (config/buckets.rs).
    pub(crate) buckets: super::buckets::Buckets,
}

impl ProbeConfig {
    /// A copy that shares no memory with `self`: the probe is built again from its spec (a
    /// fresh config's probe has no state yet). `Config::shard` keeps such copies, so that the
    /// whole config, freed after the cut, leaves no page of the heap holding a probe that
    /// runs (core/heap.rs). If the spec does not build again (it did at load: a file it
    /// reads changed since), the copy shares the built probe instead.
    pub(crate) fn detached(&self) -> ProbeConfig {
        let built = self
            .spec
            .build()
            .map_or_else(|_| Arc::clone(&self.built), Arc::new);
        ProbeConfig {
            built,
            ..self.clone()
        }
    }
}

pub(super) struct Parsed {
    pub(super) config: ProbeConfig,
    pub(super) name_loc: Loc,
    /// Where `depends_on` is, for the graph's errors.
    pub(super) depends_loc: Loc,
}

/// Label values must stay short and plain: they end up in every series of the probe.
pub(super) fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
}

/// One `probes:` entry (the `index`th, from 0) with `defaults:` applied, or every error it
/// has, in file order.
pub(super) fn parse_probe(
    n: &Node,
    index: usize,
    defaults: &Defaults,
) -> Result<Parsed, Vec<EntryError>> {
    // Every error of the entry, not only the first: `validate` lists them in file order.
    // An unset variable is one of them: its key is set aside and the rest still checked.
    let mut found: Vec<Located> = Vec::new();
    let mut aside: Vec<Aside> = Vec::new();
    let n = &take_invalid(n, &mut found, &mut aside);
    let Value::Map(entries) = &n.value else {
        return Err(vec![not_a_mapping(n, index)]);
    };
    let name = name(n, &aside, &mut found);
    // Errors before the name is known (or without a usable one) carry the entry's number.
    let label = match &name {
        Some((name, _)) => EntryLabel::Probe(name.clone()),
        None => EntryLabel::ProbeNo(index + 1),
    };
    let name_loc = name.as_ref().map_or(n.loc, |(_, l)| *l);
    let mut errs = EntryErrors::new(label, found);
    let interval = duration(n, "interval", &mut errs);
    let timeout = duration(n, "timeout", &mut errs);
    let (depends_on, depends_loc) = depends_on(n, name_loc, &mut errs);
    let on_demand = on_demand(n, &mut aside, &mut errs);
    let buckets =
        super::buckets::of_probe(n, defaults.buckets.as_ref()).unwrap_or_else(|(e, loc)| {
            errs.de(e, loc);
            Default::default()
        });
    let spec = kind_spec(n, entries, &mut aside, &mut errs);
    let built = spec
        .as_ref()
        .and_then(|s| build(s, n.loc, &aside, &mut errs));
    let (true, Some((name, name_loc)), Some(spec), Some(built)) =
        (errs.is_empty(), name, spec, built)
    else {
        return Err(errs.into_sorted());
    };
    let (interval, timeout) = schedule(interval, timeout, defaults, &spec);
    Ok(Parsed {
        config: ProbeConfig {
            name,
            interval,
            timeout,
            depends_on,
            spec,
            built: Arc::new(built),
            on_demand,
            buckets,
        },
        name_loc,
        depends_loc,
    })
}

/// The one error of an entry that is not a mapping.
fn not_a_mapping(n: &Node, index: usize) -> EntryError {
    let msg = match &n.value {
        Value::Invalid(msg) => msg.clone(),
        other => format!("a probe must be a mapping, found {}", other.describe()),
    };
    EntryError {
        loc: n.loc,
        entry: EntryLabel::ProbeNo(index + 1),
        msg,
    }
}

/// The interval and timeout in force: the entry's own, else `defaults:`'s, else the
/// built-in interval and the kind's timeout.
fn schedule(
    interval: Option<Duration>,
    timeout: Option<Duration>,
    defaults: &Defaults,
    spec: &ProbeSpec,
) -> (Duration, Duration) {
    let interval = interval
        .or(defaults.interval.map(|d| d.0))
        .unwrap_or(DEFAULT_INTERVAL);
    let timeout = timeout
        .or(defaults.timeout.map(|d| d.0))
        .unwrap_or_else(|| spec.default_timeout());
    (interval, timeout)
}

/// The entry's `name` and where it is; `None` (its error in `found`) when missing or not a
/// valid label value.
fn name(n: &Node, aside: &[Aside], found: &mut Vec<Located>) -> Option<(String, Loc)> {
    match n.get("name") {
        // A name set aside (an unset variable) is already reported.
        None if aside.iter().any(|a| a.parent == n.loc && a.key == "name") => None,
        None => {
            found.push((n.loc, "missing required field \"name\"".into()));
            None
        }
        Some((_, v)) => match v.as_str() {
            Some(s) if valid_name(s) => Some((s.to_string(), v.loc)),
            _ => {
                found.push((
                    v.loc,
                    "\"name\" must be 1-64 characters of letters, digits, '_', '-', '.', ':'"
                        .into(),
                ));
                None
            }
        },
    }
}

/// `interval` or `timeout` (`key`) within its bounds; `None` when absent or wrong.
fn duration(n: &Node, key: &str, errs: &mut EntryErrors) -> Option<Duration> {
    let (_, v) = n.get(key)?;
    let d = de::from_node::<PositiveDuration>(v)
        .map_err(|e| errs.de(e, v.loc))
        .ok()?;
    match check_range(key, d.0) {
        Ok(()) => Some(d.0),
        Err(e) => {
            errs.push(v.loc, e.to_string());
            None
        }
    }
}

/// `depends_on` and where its errors go: at the key, or at the name without one.
fn depends_on(n: &Node, name_loc: Loc, errs: &mut EntryErrors) -> (Vec<String>, Loc) {
    match n.get("depends_on") {
        None => (Vec::new(), name_loc),
        Some((_, v)) => match de::from_node::<Vec<String>>(v) {
            Ok(d) => (d, v.loc),
            Err(e) => {
                errs.de(e, v.loc);
                (Vec::new(), v.loc)
            }
        },
    }
}

/// The probe's own `on_demand:` (the defaults when absent or wrong).
fn on_demand(
    n: &Node,
    aside: &mut Vec<Aside>,
    errs: &mut EntryErrors,
) -> on_demand::ModuleOnDemand {
    let Some((_, v)) = n.get("on_demand") else {
        return Default::default();
    };
    let mut found = Vec::new();
    let o = parse_all(v.clone(), &mut found, aside);
    errs.extend(found);
    o.unwrap_or_default()
}

/// The kind's own keys (all but [`COMMON_KEYS`]) as a spec. serde stops at the first error,
/// so each error's key is set aside and the rest parsed again.
fn kind_spec(
    n: &Node,
    entries: &[(Key, Node)],
    aside: &mut Vec<Aside>,
    errs: &mut EntryErrors,
) -> Option<ProbeSpec> {
    let rest: Vec<(Key, Node)> = entries
        .iter()
        .filter(|(k, _)| !COMMON_KEYS.contains(&k.name.as_str()))
        .cloned()
        .collect();
    let mut found: Vec<Located> = Vec::new();
    let tree = Node {
        value: Value::Map(rest),
        loc: n.loc,
    };
    let spec = parse_all::<ProbeSpec>(tree, &mut found, aside);
    errs.extend(found);
    spec
}

/// The spec built once, here: one that does not build is an error at the probe's location
/// (`loc`). Built even when the entry has other errors (none hides another), but a rule
/// about a key set aside is not reported ("ca_file needs tls" once `tls: ${UNSET}` is).
fn build(
    spec: &ProbeSpec,
    loc: Loc,
    aside: &[Aside],
    errs: &mut EntryErrors,
) -> Option<BuiltProbe> {
    match spec.build() {
        Ok(b) => Some(b),
        Err(e) => {
            let msg = e.to_string();
            if !names_any(&msg, aside) {
                errs.push(loc, msg);
            }
            None
        }
    }
}
