//! One `probes:` entry -> [`ProbeConfig`]: the common keys (name, schedule, `depends_on`,
//! `on_demand`), then the kind's own keys as a [`ProbeSpec`], every error of the entry
//! collected with its location.

use super::aside::{Aside, Located, names_any, parse_all, take_invalid};
use super::de;
use super::defaults::{DEFAULT_INTERVAL, Defaults, check_range};
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

pub(super) fn parse_probe(
    n: &Node,
    index: usize,
    defaults: &Defaults,
) -> Result<Parsed, Vec<(Loc, String, String)>> {
    let anon = format!("probe #{}", index + 1);
    // Every error of the entry, not only the first: `validate` lists them in file order.
    // An unset variable is one of them: its key is set aside and the rest still checked.
    let mut found: Vec<Located> = Vec::new();
    let mut aside: Vec<Aside> = Vec::new();
    let n = &take_invalid(n, &mut found, &mut aside);
    let Value::Map(entries) = &n.value else {
        let msg = match &n.value {
            Value::Invalid(msg) => msg.clone(),
            other => format!("a probe must be a mapping, found {}", other.describe()),
        };
        return Err(vec![(n.loc, anon, msg)]);
    };
    let name = match n.get("name") {
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
    };
    // Errors before the name is known (or without a usable one) carry the entry's number.
    let label = match &name {
        Some((name, _)) => format!("probe \"{name}\""),
        None => anon,
    };
    let name_loc = name.as_ref().map_or(n.loc, |(_, l)| *l);
    let mut errs: Vec<(Loc, String, String)> = found
        .into_iter()
        .map(|(loc, msg)| (loc, label.clone(), msg))
        .collect();
    let fail = |e: de::DeError, fallback: Loc| (e.loc.unwrap_or(fallback), label.clone(), e.msg);

    let duration = |key: &str| -> Result<Option<Duration>, (Loc, String, String)> {
        match n.get(key) {
            None => Ok(None),
            Some((_, v)) => {
                let d = de::from_node::<PositiveDuration>(v).map_err(|e| fail(e, v.loc))?;
                check_range(key, d.0).map_err(|e| (v.loc, label.clone(), e.to_string()))?;
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
        Some((_, v)) => {
            let mut found = Vec::new();
            let o = parse_all(v.clone(), &mut found, &mut aside);
            errs.extend(
                found
                    .into_iter()
                    .map(|(loc, msg)| (loc, label.clone(), msg)),
            );
            o.unwrap_or_default()
        }
    };

    let buckets =
        super::buckets::of_probe(n, defaults.buckets.as_ref()).unwrap_or_else(|(e, loc)| {
            errs.push(fail(e, loc));
            Default::default()
        });

    let rest: Vec<(Key, Node)> = entries
        .iter()
        .filter(|(k, _)| !COMMON_KEYS.contains(&k.name.as_str()))
        .cloned()
        .collect();
    // The kind's own keys: serde stops at the first error, so each error's key is set aside
    // and the rest parsed again.
    let mut kind_errs: Vec<Located> = Vec::new();
    let tree = Node {
        value: Value::Map(rest),
        loc: n.loc,
    };
    let spec = parse_all::<ProbeSpec>(tree, &mut kind_errs, &mut aside);
    errs.extend(
        kind_errs
            .into_iter()
            .map(|(loc, msg)| (loc, label.clone(), msg)),
    );
    // Built once, here: a spec that does not build is an error at the probe's location.
    // Built even when the entry has other errors (none hides another), unless the rule it
    // breaks is about a key set aside ("ca_file needs tls" once `tls: ${UNSET}` is).
    let built = match &spec {
        Some(spec) => match spec.build() {
            Ok(b) => Some(b),
            Err(e) => {
                let msg = e.to_string();
                if !names_any(&msg, &aside) {
                    errs.push((n.loc, label.clone(), msg));
                }
                None
            }
        },
        None => None,
    };
    let (true, Some((name, name_loc)), Some(spec), Some(built)) =
        (errs.is_empty(), name, spec, built)
    else {
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
            built: Arc::new(built),
            on_demand,
            buckets,
        },
        name_loc,
        depends_loc,
    })
}
