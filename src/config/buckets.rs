//! `buckets:`: the upper bounds of a probe's run-duration histogram
//! (`pathwatch_probe_run_duration_seconds`), in a probe or in `defaults:`.
//!
//! At 10,000 probes the histogram's bucket lines were 60% of `/metrics`, and no shipped rule
//! or dashboard reads this histogram (they read `pathwatch_db_connect_seconds`,
//! `pathwatch_golden_path_seconds` and the gauges), so its default set is short:
//! [`DEFAULT_RUN_BUCKETS`], plus the `max_seconds` bound of every criterion that names the
//! probe, so that a criterion's line falls on a bucket edge. A probe's own `buckets:` (or
//! `defaults:`, as one list or per kind) is taken as written; `buckets: []` turns the
//! histogram off for the probe.

use crate::probe::Kind;
use serde::Deserialize;
use std::sync::Arc;

/// Bounds of a probe's run-duration histogram when neither it nor `defaults:` sets any:
/// decades up to the first criterion bound of the shipped examples (10 s, the DB connect of
/// incident 1278), then the other two (30 s startup, 60 s golden path). A run cut at a
/// longer timeout (postgres: 75 s) counts in `+Inf`, apart from every finished run.
pub(crate) const DEFAULT_RUN_BUCKETS: &[f64] = &[0.01, 0.1, 1.0, 10.0, 30.0, 60.0];

/// At most this many bounds: each is one more series per probe.
pub(crate) const MAX_BUCKETS: usize = 32;

/// A validated list of bucket bounds in seconds: finite, above 0, strictly ascending.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(try_from = "Vec<f64>")]
pub(crate) struct Buckets {
    bounds: Arc<[f64]>,
    /// Set in the config (taken as written) rather than the default (which gains the
    /// probe's criteria bounds).
    configured: bool,
}

impl schemars::JsonSchema for Buckets {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Buckets".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "type": "array",
            "description": "Upper bounds in seconds of the run-duration histogram's buckets, ascending; [] turns the histogram off",
            "maxItems": MAX_BUCKETS,
            "items": { "type": "number", "exclusiveMinimum": 0 },
        })
    }
}

impl TryFrom<Vec<f64>> for Buckets {
    type Error = String;

    fn try_from(bounds: Vec<f64>) -> Result<Self, Self::Error> {
        if bounds.len() > MAX_BUCKETS {
            return Err(format!(
                "\"buckets\" has {} bounds: at most {MAX_BUCKETS}",
                bounds.len()
            ));
        }
        if let Some(b) = bounds.iter().find(|b| !(b.is_finite() && **b > 0.0)) {
            return Err(format!(
                "\"buckets\": {b} is not a number of seconds above 0 (+Inf is always there)"
            ));
        }
        if let Some(w) = bounds.windows(2).find(|w| w[0] >= w[1]) {
            return Err(format!(
                "\"buckets\" must be ascending: {} comes after {}",
                w[1], w[0]
            ));
        }
        Ok(Buckets {
            bounds: bounds.into(),
            configured: true,
        })
    }
}

/// The default bounds, one allocation shared by every probe that keeps them (64 bytes a
/// probe otherwise: 6 MB at 100,000 probes).
static DEFAULT_BOUNDS: std::sync::LazyLock<Arc<[f64]>> =
    std::sync::LazyLock::new(|| DEFAULT_RUN_BUCKETS.into());

impl Default for Buckets {
    fn default() -> Self {
        Buckets {
            bounds: Arc::clone(&DEFAULT_BOUNDS),
            configured: false,
        }
    }
}

impl Buckets {
    /// The bounds, ascending, without `+Inf`; empty when the histogram is off.
    pub(crate) fn bounds(&self) -> &[f64] {
        &self.bounds
    }

    /// False for `buckets: []`: the probe has no run-duration histogram.
    pub(crate) fn enabled(&self) -> bool {
        !self.bounds.is_empty()
    }

    /// The default set with `bound` added (a criterion's `max_seconds`); configured sets
    /// are kept as written.
    fn with_bound(&self, bound: f64) -> Buckets {
        if self.configured || self.bounds.contains(&bound) || !(bound.is_finite() && bound > 0.0) {
            return self.clone();
        }
        let mut bounds = self.bounds.to_vec();
        bounds.push(bound);
        bounds.sort_by(f64::total_cmp);
        Buckets {
            bounds: bounds.into(),
            configured: false,
        }
    }
}

/// `buckets:` in `defaults:`: one list for every kind, or a list per kind
/// (`buckets: { tcp: [], postgres: [0.1, 1, 10, 75] }`; kinds not named get the default).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct DefaultBuckets {
    all: Option<Buckets>,
    by_kind: Vec<(Kind, Buckets)>,
}

impl DefaultBuckets {
    /// The buckets of a probe of kind `kind` (its `kind:` text) without its own.
    fn of_kind(&self, kind: Option<&str>) -> Option<&Buckets> {
        let named = self
            .by_kind
            .iter()
            .find(|(k, _)| Some(k.as_str()) == kind)
            .map(|(_, b)| b);
        named.or(self.all.as_ref())
    }
}

impl<'de> Deserialize<'de> for DefaultBuckets {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = DefaultBuckets;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a list of bounds, or a list per kind")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut bounds = Vec::new();
                while let Some(b) = seq.next_element::<f64>()? {
                    bounds.push(b);
                }
                let all = Buckets::try_from(bounds).map_err(serde::de::Error::custom)?;
                Ok(DefaultBuckets {
                    all: Some(all),
                    by_kind: Vec::new(),
                })
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Self::Value, A::Error> {
                let mut by_kind: Vec<(Kind, Buckets)> = Vec::new();
                while let Some(KindName(kind)) = map.next_key::<KindName>()? {
                    let buckets = map.next_value::<Buckets>()?;
                    by_kind.retain(|(k, _)| *k != kind);
                    by_kind.push((kind, buckets));
                }
                Ok(DefaultBuckets { all: None, by_kind })
            }
        }
        d.deserialize_any(Visit)
    }
}

/// A kind's name as a key of `buckets:`, checked as it is read (so an error points at it).
struct KindName(Kind);

impl<'de> Deserialize<'de> for KindName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        match Kind::ALL.iter().find(|k| k.as_str() == name) {
            Some(k) => Ok(KindName(*k)),
            None => Err(serde::de::Error::unknown_variant(&name, kind_names())),
        }
    }
}

/// The kinds' names, as serde's errors want them (`&'static [&'static str]`).
fn kind_names() -> &'static [&'static str] {
    static NAMES: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    NAMES.get_or_init(|| Kind::ALL.iter().map(|k| k.as_str()).collect())
}

impl schemars::JsonSchema for DefaultBuckets {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "DefaultBuckets".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let list = generator.subschema_for::<Buckets>();
        let kinds = kind_names();
        schemars::json_schema!({
            "description": "Run-duration histogram buckets of every probe without its own: one list, or a list per kind",
            "oneOf": [
                list,
                {
                    "type": "object",
                    "propertyNames": { "enum": kinds },
                    "additionalProperties": list,
                },
            ],
        })
    }
}

/// A probe's buckets: its own `buckets:`, else those of `defaults:` for its kind, else the
/// default set. The error comes with the place of the probe's `buckets:`.
pub(crate) fn of_probe(
    n: &super::node::Node,
    defaults: Option<&DefaultBuckets>,
) -> Result<Buckets, (super::de::DeError, super::node::Loc)> {
    match n.get("buckets") {
        None => {
            let kind = n.get("kind").and_then(|(_, v)| v.as_str());
            Ok(defaults
                .and_then(|d| d.of_kind(kind))
                .cloned()
                .unwrap_or_default())
        }
        Some((_, v)) => super::de::from_node(v).map_err(|e| (e, v.loc)),
    }
}

/// Adds each criterion's `max_seconds` to the default buckets of the probe it names.
pub(crate) fn add_criteria_bounds(
    probes: &mut [std::sync::Arc<super::ProbeConfig>],
    incidents: &[crate::incident::IncidentSpec],
) {
    for c in incidents.iter().flat_map(|i| &i.criteria) {
        let Some(bound) = c.max_seconds else { continue };
        if let Some(p) = probes.iter_mut().find(|p| p.name == c.probe) {
            // Not shared yet (the config is being built): no copy is made.
            let p = std::sync::Arc::make_mut(p);
            p.buckets = p.buckets.with_bound(bound);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_are_checked_and_criteria_join_only_the_default() {
        assert!(Buckets::try_from(vec![0.1, 1.0]).is_ok());
        assert!(Buckets::try_from(vec![]).is_ok_and(|b| !b.enabled()));
        assert_eq!(
            Buckets::try_from(vec![1.0, 0.5]).unwrap_err(),
            "\"buckets\" must be ascending: 0.5 comes after 1"
        );
        assert!(Buckets::try_from(vec![1.0, 1.0]).is_err());
        assert!(Buckets::try_from(vec![0.0]).is_err());
        assert!(Buckets::try_from(vec![f64::INFINITY]).is_err());
        assert!(Buckets::try_from(vec![1.0; MAX_BUCKETS + 1]).is_err());

        let d = Buckets::default().with_bound(5.0).with_bound(10.0);
        assert_eq!(d.bounds(), &[0.01, 0.1, 1.0, 5.0, 10.0, 30.0, 60.0]);
        let mine = Buckets::try_from(vec![1.0]).unwrap().with_bound(5.0);
        assert_eq!(mine.bounds(), &[1.0]);
    }

    fn bounds_of(text: &str) -> Vec<(String, Vec<f64>)> {
        let loaded = crate::config::parse("t.yaml", text, &|_| None).expect("parses");
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        let probes = loaded.config.probes.iter();
        probes
            .map(|p| (p.name.clone(), p.buckets.bounds().to_vec()))
            .collect()
    }

    #[test]
    fn a_probe_takes_its_own_then_its_kinds_then_every_kinds_then_the_default() {
        let probes = "probes:
  - { name: own, kind: tcp, host: a, port: 1, buckets: [2] }
  - { name: tcp, kind: tcp, host: a, port: 1 }
  - { name: redis, kind: redis, host: a, port: 1 }
incidents:
  - id: i
    criteria: [{ name: c, probe: redis, max_seconds: 7 }]
";
        let per_kind = format!("defaults:\n  buckets: {{ tcp: [], redis: [1, 3] }}\n{probes}");
        assert_eq!(
            bounds_of(&per_kind),
            [
                ("own".to_string(), vec![2.0]),
                ("tcp".to_string(), vec![]),
                ("redis".to_string(), vec![1.0, 3.0]),
            ]
        );
        let all = format!("defaults:\n  buckets: [0.5]\n{probes}");
        assert_eq!(bounds_of(&all)[1].1, [0.5]);
        let only_tcp = format!("defaults:\n  buckets: {{ tcp: [0.5] }}\n{probes}");
        assert_eq!(
            bounds_of(&only_tcp)[2].1,
            [0.01, 0.1, 1.0, 7.0, 10.0, 30.0, 60.0],
            "the default set, with the criterion's bound"
        );
    }
}
