//! One `probes:` entry -> [`ProbeConfig`]: the common keys (name, schedule, `depends_on`,
//! `on_demand`), then the kind's own keys as a [`ProbeSpec`], every error of the entry
//! collected with its location.

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
    pub name: String,
    pub interval: Duration,
    pub timeout: Duration,
    /// The probes this one needs (`depends_on`): a failure of theirs explains one of its own
    /// (incident::rootcause). Checked at load: every name exists, no cycle.
    pub depends_on: Vec<String>,
    /// What the config says (plain data: on-demand runs retarget it).
    pub spec: ProbeSpec,
    /// The probe built from `spec` when the config loaded, ready to run; clones share it
    /// (and the state it keeps across runs).
    pub built: Arc<BuiltProbe>,
    /// How `/probe` may use this probe as a module.
    pub on_demand: on_demand::ModuleOnDemand,
    /// Bounds of the run-duration histogram (config/buckets.rs).
    pub buckets: super::buckets::Buckets,
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

pub(super) fn parse_probe(
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
        Some((_, v)) => de::from_node(v).unwrap_or_else(|e| {
            errs.push(fail(e, v.loc));
            Default::default()
        }),
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
    let spec = kind_spec(rest, n.loc, &fail, &mut errs);
    // Built once, here: a spec that does not build is an error at the probe's location.
    let built = match &spec {
        Some(spec) if errs.is_empty() => match spec.build() {
            Ok(b) => Some(b),
            Err(e) => {
                errs.push((n.loc, label.clone(), e.to_string()));
                None
            }
        },
        _ => None,
    };
    let (Some(spec), Some(built)) = (spec, built) else {
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
