//! Sharding one config over replicas: every replica reads the same file and keeps only its
//! share (`--shard INDEX/COUNT`). The unit of assignment is a connected group -- probes
//! linked by `depends_on` or named by the same incident's criteria (union-find) -- so an
//! incident and its root-cause graph always live on one shard. A group goes to the shard
//! that scores highest for it under rendezvous (highest-random-weight) hashing of its sorted
//! probe names: changing COUNT from N to N+1 moves only the groups the new shard wins,
//! about 1/(N+1) of them, and nothing moves between the old shards.
//!
//! The hash is fixed (FNV-1a 64 of the group's names, mixed with the shard index by the
//! SplitMix64 finaliser), never std's randomly keyed one: every replica, every restart and
//! every version must compute the same plan. Pure data in, data out; no runner, no I/O.

use super::Config;
use crate::core::union_find::UnionFind;
use crate::probe::Kind;
use std::collections::HashMap;
use std::fmt;

/// One replica's place: shard `index` of `count` (0-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// This replica's shard, 0-based and below `count`.
    pub index: u32,
    /// How many shards the probes are spread over (1 to [`MAX_COUNT`]).
    pub count: u32,
}

/// The largest COUNT accepted: far past any real deployment, small enough that a plan's
/// per-shard tables stay trivial.
pub const MAX_COUNT: u32 = 1024;

/// Why a `--shard` value is refused (clap prints it after the option's name).
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ShardError {
    /// The value is neither `INDEX/COUNT` nor `ordinal/COUNT`.
    #[error("expected INDEX/COUNT (e.g. 2/4) or ordinal/COUNT")]
    Syntax,
    /// COUNT is 0 or above [`MAX_COUNT`].
    #[error("COUNT must be from 1 to {MAX_COUNT}")]
    Count,
    /// INDEX is not below COUNT.
    #[error("INDEX must be below COUNT ({index} is not below {count})")]
    Index {
        /// The INDEX given.
        index: u32,
        /// The COUNT given.
        count: u32,
    },
    /// `ordinal/COUNT` was given but HOSTNAME does not end in a pod ordinal.
    #[error("ordinal/COUNT needs HOSTNAME set to a StatefulSet pod name ending in -N")]
    NoOrdinal,
}

impl Shard {
    /// The one shard of an unsharded exporter: `0/1`.
    pub(crate) const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// Parses `INDEX/COUNT`, or `ordinal/COUNT` with INDEX taken from `hostname`'s trailing
    /// `-N` (a StatefulSet pod is named `<set>-<ordinal>`, and its HOSTNAME is that name).
    pub fn parse(text: &str, hostname: Option<&str>) -> Result<Shard, ShardError> {
        let (index, count) = text.trim().split_once('/').ok_or(ShardError::Syntax)?;
        let count: u32 = count.trim().parse().map_err(|_| ShardError::Syntax)?;
        if count == 0 || count > MAX_COUNT {
            return Err(ShardError::Count);
        }
        let index: u32 = match index.trim() {
            "ordinal" => hostname
                .and_then(|h| h.trim().rsplit_once('-'))
                .and_then(|(_, n)| n.parse().ok())
                .ok_or(ShardError::NoOrdinal)?,
            n => n.parse().map_err(|_| ShardError::Syntax)?,
        };
        if index >= count {
            return Err(ShardError::Index { index, count });
        }
        Ok(Shard { index, count })
    }

    /// The shard a group of sorted probe names goes to: the highest score wins (rendezvous
    /// hashing); a tie (never seen in practice) goes to the lower index.
    pub fn of_group(names: &[&str], count: u32) -> u32 {
        let key = group_key(names);
        (0..count.max(1))
            .max_by_key(|&i| (score(key, i), std::cmp::Reverse(i)))
            .unwrap_or(0)
    }
}

impl Default for Shard {
    fn default() -> Self {
        Shard::WHOLE
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// FNV-1a 64 over the names, each followed by a 0 byte (no two lists hash as one string).
fn group_key(names: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for n in names {
        for b in n.bytes().chain([0]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// SplitMix64's finaliser: every bit of the input reaches every bit of the output, so the
/// scores of one key under different shards are independent.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn score(key: u64, shard: u32) -> u64 {
    mix(key ^ mix(u64::from(shard).wrapping_add(0x9e37_79b9_7f4a_7c15)))
}

/// One connected group: probe names sorted, and the incidents whose criteria name them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Group {
    pub(crate) probes: Vec<String>,
    pub(crate) incidents: Vec<String>,
}

/// The connected groups of a graph given as probes (with their `depends_on`) and incidents
/// (with the probes their criteria name), in the order of each group's first name. A name
/// that is no probe (a broken config) still joins its group: the plan never splits an edge.
pub(crate) fn groups<'a>(
    probes: impl IntoIterator<Item = (&'a str, &'a [String])>,
    incidents: impl IntoIterator<Item = (&'a str, Vec<&'a str>)>,
) -> Vec<Group> {
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let mut names: Vec<&str> = Vec::new();
    let mut id = |n: &'a str, names: &mut Vec<&'a str>| {
        *ids.entry(n).or_insert_with(|| {
            names.push(n);
            names.len() - 1
        })
    };
    let mut edges: Vec<(usize, usize)> = Vec::new();
    for (name, deps) in probes {
        let a = id(name, &mut names);
        for d in deps {
            let b = id(d, &mut names);
            edges.push((a, b));
        }
    }
    let mut incident_roots: Vec<(&str, Option<usize>)> = Vec::new();
    for (inc, named) in incidents {
        let mut first = None;
        for n in named {
            let b = id(n, &mut names);
            match first {
                None => first = Some(b),
                Some(a) => edges.push((a, b)),
            }
        }
        incident_roots.push((inc, first));
    }
    // The lowest id is a set's root: deterministic, and the group's order is its first name.
    let mut sets = UnionFind::new(names.len());
    for (a, b) in edges {
        sets.union(a, b);
    }
    let mut by_root: HashMap<usize, usize> = HashMap::new();
    let mut out: Vec<Group> = Vec::new();
    for (i, name) in names.iter().enumerate() {
        let r = sets.find(i);
        let g = *by_root.entry(r).or_insert_with(|| {
            out.push(Group {
                probes: Vec::new(),
                incidents: Vec::new(),
            });
            out.len() - 1
        });
        out[g].probes.push(name.to_string());
    }
    for (inc, first) in incident_roots {
        if let Some(g) = first.and_then(|f| by_root.get(&sets.find(f))) {
            out[*g].incidents.push(inc.to_string());
        }
    }
    for g in &mut out {
        g.probes.sort();
    }
    out
}

/// The groups of a loaded config.
pub(crate) fn config_groups(config: &Config) -> Vec<Group> {
    groups(
        config
            .probes
            .iter()
            .map(|p| (p.name.as_str(), p.depends_on.as_slice())),
        config.incidents.iter().map(|i| {
            (
                i.id.as_str(),
                i.criteria.iter().map(|c| c.probe.as_str()).collect(),
            )
        }),
    )
}

/// Which shard each group of `groups` goes to under `count`.
pub(crate) fn assign(groups: &[Group], count: u32) -> Vec<u32> {
    groups
        .iter()
        .map(|g| {
            let names: Vec<&str> = g.probes.iter().map(String::as_str).collect();
            Shard::of_group(&names, count)
        })
        .collect()
}

impl Config {
    /// This shard's share: the probes and incidents of the groups assigned to it, in file
    /// order. The whole config for `0/1`. A share's probes are copies
    /// ([`super::ProbeConfig::detached`]), allocated where this is called: the whole config
    /// is freed once cut, and its pages go back to the system only if no probe that runs is
    /// left on them (issue 33: without the copies, shard 0/3 of 300,000 tcp probes kept
    /// 100 MiB more than its 100,196 probes alone, BENCHMARKS.md).
    pub fn shard(&self, shard: Shard) -> Config {
        if shard.count <= 1 {
            return self.clone();
        }
        let groups = config_groups(self);
        let owners = assign(&groups, shard.count);
        let mut mine: std::collections::HashSet<&str> = std::collections::HashSet::new();
        let mut incidents: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for (g, owner) in groups.iter().zip(&owners) {
            if *owner == shard.index {
                mine.extend(g.probes.iter().map(String::as_str));
                incidents.extend(g.incidents.iter().map(String::as_str));
            }
        }
        Config {
            probes: self
                .probes
                .iter()
                .filter(|p| mine.contains(p.name.as_str()))
                .map(|p| std::sync::Arc::new(p.detached()))
                .collect(),
            incidents: self
                .incidents
                .iter()
                .filter(|i| incidents.contains(i.id.as_str()))
                .cloned()
                .collect(),
            on_demand: self.on_demand.clone(),
        }
    }
}

/// Bytes a probe adds to a `/metrics` answer (text format 0.0.4, default buckets, after its
/// first runs), as `fixed + per_name_byte * name length`: each of its `lines` series lines
/// carries the name once. Measured from a real answer (bench/shard_bytes.py, see
/// docs/src/operating/sharding.md); a kind not measured counts as http.
pub(crate) fn metrics_bytes(kind: Kind, name_len: usize) -> u64 {
    let (fixed, lines) = match kind {
        Kind::Tcp => (TCP_BYTES, TCP_LINES),
        Kind::Postgres => (PG_BYTES, PG_LINES),
        _ => (HTTP_BYTES, HTTP_LINES),
    };
    fixed + lines * name_len as u64
}

// Measured per probe on local targets, name length aside (bench/shard_bytes.py): tcp and
// http succeeding, postgres failing (a reason series instead of the db-connect histogram).
const TCP_BYTES: u64 = 1_344;
const TCP_LINES: u64 = 19;
const HTTP_BYTES: u64 = 1_585;
const HTTP_LINES: u64 = 22;
const PG_BYTES: u64 = 1_521;
const PG_LINES: u64 = 20;

/// The answer's own part (family headers, self metrics): about 4 kB whatever the probes.
pub(crate) const ANSWER_BYTES: u64 = 4_000;

/// One shard of a plan: what `pathwatch shards` prints per line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct ShardLoad {
    pub(crate) probes: usize,
    pub(crate) groups: usize,
    pub(crate) incidents: usize,
    pub(crate) metrics_bytes: u64,
    /// The probe count of its largest group.
    pub(crate) largest_group: usize,
}

/// The load of every shard under `count`.
pub(crate) fn plan(config: &Config, count: u32) -> Vec<ShardLoad> {
    let groups = config_groups(config);
    let owners = assign(&groups, count);
    let sizes: HashMap<&str, u64> = config
        .probes
        .iter()
        .map(|p| (p.name.as_str(), metrics_bytes(p.spec.kind(), p.name.len())))
        .collect();
    let mut out = vec![
        ShardLoad {
            metrics_bytes: ANSWER_BYTES,
            ..ShardLoad::default()
        };
        count.max(1) as usize
    ];
    for (g, owner) in groups.iter().zip(owners) {
        let s = &mut out[owner as usize];
        s.probes += g.probes.len();
        s.groups += 1;
        s.incidents += g.incidents.len();
        s.largest_group = s.largest_group.max(g.probes.len());
        s.metrics_bytes += g
            .probes
            .iter()
            .filter_map(|n| sizes.get(n.as_str()))
            .sum::<u64>();
    }
    out
}

/// The largest group a config may have before `validate` and `pathwatch shards` warn: with
/// a shard count, twice a shard's mean share of the probes (and never below
/// [`MIN_WARN_GROUP`]: small configs need no warning); without one, [`ABSOLUTE_WARN_GROUP`].
/// A group is never split, so the shard that holds it carries all of it.
pub(crate) fn group_limit(probes: usize, count: Option<u32>) -> usize {
    match count {
        Some(c) => (2 * probes).div_ceil(c.max(1) as usize).max(MIN_WARN_GROUP),
        None => ABSOLUTE_WARN_GROUP,
    }
}

/// Below this a group is never too large: a thousand probes are about 1 % of one
/// replica's capacity (about 100,000 tcp probes, BENCHMARKS.md).
pub(crate) const MIN_WARN_GROUP: usize = 1_000;

/// Without a shard count: half of what one replica holds (100,000 tcp probes). A group
/// this large cannot be spread, so sharding stops helping at about two shards.
pub(crate) const ABSOLUTE_WARN_GROUP: usize = 50_000;

/// The warning for a config whose largest group passes [`group_limit`], if any.
pub fn large_group_warning(config: &Config, count: Option<u32>) -> Option<String> {
    let limit = group_limit(config.probes.len(), count);
    let groups = config_groups(config);
    let largest = groups.iter().max_by_key(|g| g.probes.len())?;
    (largest.probes.len() > limit).then(|| {
        let against = match count {
            Some(c) => format!("twice the mean share of {c} shards"),
            None => "half of what one replica holds".to_string(),
        };
        format!(
            "one group of {} probes (linked by depends_on or incident criteria, from \"{}\") is larger than {limit} ({against}); it always runs on one shard",
            largest.probes.len(),
            largest.probes.first().map_or("", String::as_str),
        )
    })
}

/// `pathwatch shards`: a table of the plan, one line per shard, then the balance.
pub fn render_plan(config: &Config, count: u32) -> String {
    use std::fmt::Write as _;
    let loads = plan(config, count);
    let mut out = String::new();
    let groups: usize = loads.iter().map(|l| l.groups).sum();
    let _ = writeln!(
        out,
        "{} probes in {groups} groups, {} incidents, over {count} shards",
        config.probes.len(),
        config.incidents.len()
    );
    let _ = writeln!(
        out,
        "{:<6} {:>8} {:>8} {:>10} {:>14} {:>16}",
        "shard", "probes", "groups", "incidents", "largest group", "/metrics (est.)"
    );
    for (i, l) in loads.iter().enumerate() {
        let _ = writeln!(
            out,
            "{:<6} {:>8} {:>8} {:>10} {:>14} {:>16}",
            format!("{i}/{count}"),
            l.probes,
            l.groups,
            l.incidents,
            l.largest_group,
            human_bytes(l.metrics_bytes)
        );
    }
    let max = loads.iter().map(|l| l.probes).max().unwrap_or(0);
    let min = loads.iter().map(|l| l.probes).min().unwrap_or(0);
    let ratio = if min == 0 {
        "-".to_string()
    } else {
        format!("{:.3}", max as f64 / min as f64)
    };
    let _ = writeln!(
        out,
        "probes per shard: max {max}, min {min}, max/min {ratio}"
    );
    out
}

/// The probes that change shard when `from` shards become `to`: (moved, total).
pub fn moved(config: &Config, from: u32, to: u32) -> (usize, usize) {
    let groups = config_groups(config);
    let (a, b) = (assign(&groups, from), assign(&groups, to));
    let moved = groups
        .iter()
        .zip(a.iter().zip(&b))
        .filter(|(_, (x, y))| x != y)
        .map(|(g, _)| g.probes.len())
        .sum();
    (moved, config.probes.len())
}

fn human_bytes(b: u64) -> String {
    match b {
        0..1_000_000 => format!("{:.1} kB", b as f64 / 1e3),
        _ => format!("{:.1} MB", b as f64 / 1e6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn singletons(n: usize) -> Vec<Group> {
        (0..n)
            .map(|i| Group {
                probes: vec![format!("probe-{i:05}")],
                incidents: vec![],
            })
            .collect()
    }

    #[test]
    fn parses_index_count_and_ordinal() {
        assert_eq!(Shard::parse("2/4", None), Ok(Shard { index: 2, count: 4 }));
        assert_eq!(
            Shard::parse("ordinal/3", Some("pathwatch-2")),
            Ok(Shard { index: 2, count: 3 })
        );
        assert_eq!(
            Shard::parse("ordinal/3", Some("pathwatch-b-10")),
            Err(ShardError::Index {
                index: 10,
                count: 3
            })
        );
        assert_eq!(
            Shard::parse("ordinal/3", Some("laptop")),
            Err(ShardError::NoOrdinal)
        );
        assert_eq!(Shard::parse("ordinal/3", None), Err(ShardError::NoOrdinal));
        assert_eq!(
            Shard::parse("4/4", None).map(|_| ()),
            Err(ShardError::Index { index: 4, count: 4 })
        );
        assert_eq!(Shard::parse("0/0", None), Err(ShardError::Count));
        assert_eq!(Shard::parse("2", None), Err(ShardError::Syntax));
        assert_eq!(Shard::parse("-1/4", None), Err(ShardError::Syntax));
    }

    #[test]
    fn assignment_is_fixed_across_runs_and_versions() {
        // Pinned values: a change here moves every deployed probe, so it must be deliberate.
        assert_eq!(format!("{:x}", group_key(&["a"])), "89be207b544f1e4");
        let got: Vec<u32> = ["db", "api", "probe-00001", "probe-00002"]
            .iter()
            .map(|n| Shard::of_group(&[n], 3))
            .collect();
        let again: Vec<u32> = ["db", "api", "probe-00001", "probe-00002"]
            .iter()
            .map(|n| Shard::of_group(&[n], 3))
            .collect();
        assert_eq!(got, again);
        assert_eq!(got, vec![1, 1, 0, 1]);
        assert_eq!(Shard::of_group(&["anything"], 1), 0);
    }

    #[test]
    fn groups_follow_depends_on_and_incidents() {
        let deps_b = vec!["a".to_string()];
        let deps_d = vec!["c".to_string()];
        let none: Vec<String> = vec![];
        let gs = groups(
            [
                ("a", none.as_slice()),
                ("b", deps_b.as_slice()),
                ("c", none.as_slice()),
                ("d", deps_d.as_slice()),
                ("e", none.as_slice()),
                ("f", none.as_slice()),
            ],
            [("inc-1", vec!["b", "d"]), ("inc-2", vec!["f"])],
        );
        assert_eq!(
            gs,
            vec![
                Group {
                    probes: vec!["a", "b", "c", "d"]
                        .into_iter()
                        .map(String::from)
                        .collect(),
                    incidents: vec!["inc-1".into()],
                },
                Group {
                    probes: vec!["e".into()],
                    incidents: vec![],
                },
                Group {
                    probes: vec!["f".into()],
                    incidents: vec!["inc-2".into()],
                },
            ]
        );
    }

    #[test]
    fn balance_within_a_few_percent() {
        let gs = singletons(30_000);
        for count in [2u32, 3, 4, 8] {
            let mut per = vec![0usize; count as usize];
            for s in assign(&gs, count) {
                per[s as usize] += 1;
            }
            let (min, max) = (per.iter().min().copied(), per.iter().max().copied());
            let (min, max) = (min.unwrap_or(0) as f64, max.unwrap_or(0) as f64);
            assert!(max / min < 1.06, "{count} shards: {per:?}");
        }
    }

    #[test]
    fn growing_3_to_4_moves_only_to_the_new_shard_about_a_quarter() {
        let gs = singletons(30_000);
        let (three, four) = (assign(&gs, 3), assign(&gs, 4));
        let mut moved = 0;
        for (a, b) in three.iter().zip(&four) {
            if a != b {
                assert_eq!(*b, 3, "a group moved between old shards");
                moved += 1;
            }
        }
        let share = f64::from(moved) / gs.len() as f64;
        assert!((0.23..0.27).contains(&share), "moved {share}");
    }

    #[test]
    fn a_config_cut_in_three_is_a_partition_with_incidents_whole() {
        let mut text = String::from("probes:\n");
        for i in 0..300 {
            text.push_str(&format!(
                "  - {{ name: p{i}, kind: tcp, host: 127.0.0.1, port: 9{} }}\n",
                if i % 3 == 1 {
                    format!(", depends_on: [p{}]", i - 1)
                } else {
                    String::new()
                }
            ));
        }
        text.push_str("incidents:\n");
        for k in 0..10 {
            text.push_str(&format!(
                "  - {{ id: i{k}, criteria: [{{ name: a, probe: p{}, success: true }}, {{ name: b, probe: p{}, success: true }}] }}\n",
                k * 3 + 1,
                150 + k * 3 + 2
            ));
        }
        let loaded = crate::config::parse("t.yaml", &text, &|_| None).expect("parses");
        assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
        let whole = loaded.config;
        let shards: Vec<Config> = (0..3)
            .map(|index| whole.shard(Shard { index, count: 3 }))
            .collect();
        let mut seen = std::collections::HashSet::new();
        for s in &shards {
            for p in &s.probes {
                assert!(seen.insert(p.name.clone()), "{} twice", p.name);
            }
            for i in &s.incidents {
                for c in &i.criteria {
                    let p = s.probes.iter().find(|p| p.name == c.probe);
                    let p = p.unwrap_or_else(|| panic!("{} without {}", i.id, c.probe));
                    for d in &p.depends_on {
                        assert!(s.probes.iter().any(|q| &q.name == d), "{d} elsewhere");
                    }
                }
            }
        }
        assert_eq!(seen.len(), 300);
        let incidents: usize = shards.iter().map(|s| s.incidents.len()).sum();
        assert_eq!(incidents, 10);
        assert_eq!(whole.shard(Shard::WHOLE).probes.len(), 300);
    }

    #[test]
    fn a_share_holds_copies_that_share_nothing_with_the_whole_config() {
        // The whole config is freed after the cut: a probe that runs must not keep any of
        // its memory (its Arc, its built probe) alive.
        let text = "probes:\n  - { name: a, kind: tcp, host: 127.0.0.1, port: 9 }\n  - { name: b, kind: tcp, host: 127.0.0.1, port: 9 }\n";
        let whole = crate::config::parse("t.yaml", text, &|_| None)
            .expect("parses")
            .config;
        let mut seen = 0;
        for index in 0..2 {
            for p in &whole.shard(Shard { index, count: 2 }).probes {
                let q = whole
                    .probes
                    .iter()
                    .find(|q| q.name == p.name)
                    .expect("a probe of the file");
                assert!(!std::sync::Arc::ptr_eq(p, q), "{}", p.name);
                assert!(!std::sync::Arc::ptr_eq(&p.built, &q.built), "{}", p.name);
                seen += 1;
            }
        }
        assert_eq!(seen, 2);
    }

    #[test]
    fn group_limit_is_twice_the_mean_share() {
        assert_eq!(group_limit(30_000, Some(3)), 20_000);
        assert_eq!(group_limit(100, Some(3)), MIN_WARN_GROUP);
        assert_eq!(group_limit(100, None), ABSOLUTE_WARN_GROUP);
    }
}
