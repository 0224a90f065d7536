//! Which failure is the cause and which follow from it: probes name what they depend on
//! (`depends_on`), and a failing probe whose dependencies (transitively) also fail is a
//! consequence of the deepest of them. The failures with no failing dependency are the root
//! causes. Pure: names and verdicts in, a judgement out.
//!
//! "Deepest" is the failing dependency that itself has no failing dependency: in the user's
//! outage (golden path -> health -> startup -> database -> VPC path -> connector) every layer
//! fails at once, and the connector alone is the root cause.

use crate::core::union_find::UnionFind;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The dependency graph: probe name -> the probes it names in `depends_on`. Checked at load
/// ([`check`]): every name exists and there is no cycle.
pub(crate) type Graph = BTreeMap<String, Vec<String>>;

/// The graph of the probes that take part in one: those with a `depends_on`, and those named
/// in one. Probes outside it are never judged (and cost nothing per result).
pub(crate) fn graph<'a>(probes: impl IntoIterator<Item = (&'a str, &'a [String])>) -> Graph {
    let all: Vec<(&str, &[String])> = probes.into_iter().collect();
    let named: BTreeSet<&str> = all
        .iter()
        .flat_map(|(_, deps)| deps.iter().map(String::as_str))
        .collect();
    all.into_iter()
        .filter(|(name, deps)| !deps.is_empty() || named.contains(name))
        .map(|(name, deps)| (name.to_string(), deps.to_vec()))
        .collect()
}

/// A graph error, for the config loader to place at its line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum GraphError {
    #[error("depends_on names \"{missing}\", which is not a probe of this config")]
    Unknown { probe: String, missing: String },
    #[error("depends_on makes a cycle: {}", .cycle.join(" -> "))]
    Cycle { probe: String, cycle: Vec<String> },
}

impl GraphError {
    /// The probe whose entry the error belongs to.
    pub(crate) fn probe(&self) -> &str {
        match self {
            GraphError::Unknown { probe, .. } | GraphError::Cycle { probe, .. } => probe,
        }
    }
}

/// Every unknown name, then each cycle once (as a path `a -> b -> a`, reported at the probe
/// it was entered from). One depth-first pass over the whole graph: O(probes + edges).
pub(crate) fn check(graph: &Graph) -> Vec<GraphError> {
    let mut errors = Vec::new();
    for (probe, deps) in graph {
        for d in deps {
            if !graph.contains_key(d) {
                errors.push(GraphError::Unknown {
                    probe: probe.clone(),
                    missing: d.clone(),
                });
            }
        }
    }
    // Grey: on the current path; black: fully explored. Iterative, so a long chain of
    // dependencies cannot overflow the stack.
    let mut grey: BTreeSet<&str> = BTreeSet::new();
    let mut black: BTreeSet<&str> = BTreeSet::new();
    for start in graph.keys() {
        if black.contains(start.as_str()) {
            continue;
        }
        let mut path: Vec<(&str, usize)> = vec![(start, 0)];
        grey.insert(start);
        while let Some((node, next)) = path.last_mut() {
            let deps = graph.get(*node).map(Vec::as_slice).unwrap_or(&[]);
            let Some(dep) = deps.get(*next) else {
                let Some((node, _)) = path.pop() else { break };
                grey.remove(node);
                black.insert(node);
                continue;
            };
            *next += 1;
            if grey.contains(dep.as_str()) {
                let from = path.iter().position(|(n, _)| *n == dep).unwrap_or(0);
                let mut cycle: Vec<String> =
                    path[from..].iter().map(|(n, _)| n.to_string()).collect();
                cycle.push(dep.clone());
                errors.push(GraphError::Cycle {
                    probe: cycle[0].clone(),
                    cycle,
                });
            } else if graph.contains_key(dep) && !black.contains(dep.as_str()) {
                grey.insert(dep);
                path.push((dep, 0));
            }
        }
    }
    errors
}

/// The judgement on one set of latest verdicts.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Judgement {
    /// Failing probes with no failing dependency, by name, sorted.
    pub root_causes: Vec<String>,
    /// Failing probe -> the root causes it follows from (empty for a root cause itself).
    pub blocked_by: BTreeMap<String, Vec<String>>,
}

impl Judgement {
    /// `Root cause: vpc-connector; 7 failures follow from it` (None when nothing fails).
    pub(crate) fn line(&self, detail: impl Fn(&str) -> Option<String>) -> Option<String> {
        if self.root_causes.is_empty() {
            return None;
        }
        let causes: Vec<String> = self
            .root_causes
            .iter()
            .map(|c| match detail(c) {
                Some(d) => format!("{c} ({d})"),
                None => c.clone(),
            })
            .collect();
        let follow = self.blocked_by.values().filter(|v| !v.is_empty()).count();
        let (noun, it) = if causes.len() == 1 {
            ("Root cause", "it")
        } else {
            ("Root causes", "them")
        };
        Some(match follow {
            0 => format!("{noun}: {}", causes.join(", ")),
            1 => format!("{noun}: {}; 1 failure follows from {it}", causes.join(", ")),
            n => format!(
                "{noun}: {}; {n} failures follow from {it}",
                causes.join(", ")
            ),
        })
    }

    /// The judgement as far as `probes` go: the root causes behind them (a failing probe that
    /// is one, or those its failure follows from) and what each failing one follows from.
    /// An incident's page names these, not every failure of the replica.
    pub(crate) fn behind<'a>(&self, probes: impl IntoIterator<Item = &'a str>) -> Judgement {
        let mut roots: BTreeSet<&str> = BTreeSet::new();
        let mut blocked_by = BTreeMap::new();
        for p in probes {
            let Some(causes) = self.blocked_by.get(p) else {
                continue;
            };
            if causes.is_empty() {
                roots.insert(p);
            } else {
                roots.extend(causes.iter().map(String::as_str));
            }
            blocked_by.insert(p.to_string(), causes.clone());
        }
        Judgement {
            root_causes: roots.into_iter().map(str::to_string).collect(),
            blocked_by,
        }
    }

    /// True when `probe` fails and its failure is a root cause.
    pub(crate) fn is_root(&self, probe: &str) -> bool {
        // Sorted (a field invariant): a whole graph's judgement may name thousands.
        self.root_causes
            .binary_search_by(|c| c.as_str().cmp(probe))
            .is_ok()
    }
}

/// Judges the failing probes (`failing(name)` is true when its latest result failed; a probe
/// with no result yet is not failing). `graph` must have passed [`check`] (no cycles).
/// Dependencies count through passing probes too: a failing golden path behind a passing
/// health check still follows from a failing database under it.
pub(crate) fn judge(graph: &Graph, failing: impl Fn(&str) -> bool) -> Judgement {
    let failing: BTreeSet<&str> = graph
        .keys()
        .map(String::as_str)
        .filter(|p| failing(p))
        .collect();
    // roots[p]: the root causes reachable from p, not counting p. Filled in post-order (a
    // probe after all its dependencies), iteratively, once per probe: O(probes + edges) set
    // unions, however many probes fail.
    let mut roots: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for start in graph.keys() {
        let mut stack: Vec<(&str, bool)> = vec![(start, false)];
        while let Some((p, expanded)) = stack.pop() {
            if roots.contains_key(p) {
                continue;
            }
            let deps = graph.get(p).map(Vec::as_slice).unwrap_or(&[]);
            if !expanded {
                stack.push((p, true));
                stack.extend(
                    deps.iter()
                        .filter(|d| !roots.contains_key(d.as_str()))
                        .map(|d| (d.as_str(), false)),
                );
                continue;
            }
            let mut mine = BTreeSet::new();
            for d in deps {
                let below = roots.get(d.as_str()).cloned().unwrap_or_default();
                if failing.contains(d.as_str()) && below.is_empty() {
                    mine.insert(d.as_str());
                }
                mine.extend(below);
            }
            roots.insert(p, mine);
        }
    }
    let mut j = Judgement::default();
    for &probe in &failing {
        let mine: Vec<String> = roots
            .get(probe)
            .map(|r| r.iter().map(std::string::ToString::to_string).collect())
            .unwrap_or_default();
        if mine.is_empty() {
            j.root_causes.push(probe.to_string());
        }
        j.blocked_by.insert(probe.to_string(), mine);
    }
    j
}

/// The graph cut into its parts: the probes linked by `depends_on`, either way. A verdict
/// changes the judgement of its own part only (a probe's root causes are among what it
/// reaches), so a result re-judges its part, not the whole graph. Re-judging the whole
/// graph on every result made each interval cost O(probes²): at 10,000 probes in parts of
/// four, a debug build no longer answered a scrape within a minute.
#[derive(Debug, Default)]
pub(crate) struct Parts {
    /// Probe -> its part in `graphs`.
    part_of: HashMap<String, usize>,
    /// Each part's own graph, in the order of its first name.
    graphs: Vec<Graph>,
}

impl Parts {
    pub(crate) fn new(graph: Graph) -> Parts {
        let index: HashMap<&str, usize> = graph
            .keys()
            .enumerate()
            .map(|(i, name)| (name.as_str(), i))
            .collect();
        let mut sets = UnionFind::new(graph.len());
        for (i, deps) in graph.values().enumerate() {
            // A name outside the graph (a config that failed its check) joins nothing.
            for j in deps.iter().filter_map(|d| index.get(d.as_str())) {
                sets.union(i, *j);
            }
        }
        let mut part_of_root: HashMap<usize, usize> = HashMap::new();
        let mut parts = Parts::default();
        for (i, (name, deps)) in graph.into_iter().enumerate() {
            let next = parts.graphs.len();
            let part = *part_of_root.entry(sets.find(i)).or_insert(next);
            if part == next {
                parts.graphs.push(Graph::new());
            }
            parts.part_of.insert(name.clone(), part);
            parts.graphs[part].insert(name, deps);
        }
        parts
    }

    /// The part `probe` is in; None for a probe outside every dependency graph.
    pub(crate) fn part_of(&self, probe: &str) -> Option<usize> {
        self.part_of.get(probe).copied()
    }

    /// Every part's graph; a part's index is the one [`Parts::part_of`] gives.
    pub(crate) fn graphs(&self) -> &[Graph] {
        &self.graphs
    }
}

impl Judgement {
    /// The judgements of disjoint parts as one: root causes sorted, as [`judge`] gives them.
    pub(crate) fn merge<'a>(parts: impl IntoIterator<Item = &'a Judgement>) -> Judgement {
        let mut all = Judgement::default();
        for j in parts {
            all.root_causes.extend(j.root_causes.iter().cloned());
            all.blocked_by
                .extend(j.blocked_by.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        all.root_causes.sort();
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first user's stack, top to bottom.
    fn stack() -> Graph {
        let edges: &[(&str, &[&str])] = &[
            ("golden-path", &["backend-health"]),
            ("backend-health", &["backend-startup"]),
            ("backend-startup", &["staging-db"]),
            ("staging-db", &["vpc-path"]),
            ("vpc-path", &["vpc-connector", "cloudsql"]),
            ("vpc-connector", &[]),
            ("cloudsql", &[]),
            ("redis", &["vpc-connector"]),
        ];
        edges
            .iter()
            .map(|(p, d)| {
                (
                    p.to_string(),
                    d.iter().map(std::string::ToString::to_string).collect(),
                )
            })
            .collect()
    }

    fn judge_failing(g: &Graph, failing: &[&str]) -> Judgement {
        judge(g, |p| failing.contains(&p))
    }

    #[test]
    fn when_every_layer_fails_the_connector_is_the_one_root_cause() {
        let j = judge_failing(
            &stack(),
            &[
                "golden-path",
                "backend-health",
                "backend-startup",
                "staging-db",
                "vpc-path",
                "vpc-connector",
                "redis",
            ],
        );
        assert_eq!(j.root_causes, ["vpc-connector"]);
        assert_eq!(j.blocked_by["golden-path"], ["vpc-connector"]);
        assert_eq!(j.blocked_by["redis"], ["vpc-connector"]);
        assert!(j.blocked_by["vpc-connector"].is_empty());
        assert_eq!(
            j.line(|p| (p == "vpc-connector").then(|| "ERROR".to_string()))
                .as_deref(),
            Some("Root cause: vpc-connector (ERROR); 6 failures follow from it")
        );
    }

    #[test]
    fn a_healthy_connector_moves_the_cause_up_to_the_database() {
        let j = judge_failing(
            &stack(),
            &[
                "golden-path",
                "backend-health",
                "backend-startup",
                "staging-db",
            ],
        );
        assert_eq!(j.root_causes, ["staging-db"]);
        assert_eq!(j.blocked_by["backend-health"], ["staging-db"]);
    }

    #[test]
    fn dependencies_count_through_passing_probes() {
        let j = judge_failing(&stack(), &["golden-path", "staging-db"]);
        assert_eq!(j.root_causes, ["staging-db"]);
        assert_eq!(j.blocked_by["golden-path"], ["staging-db"]);
    }

    #[test]
    fn a_failure_whose_dependencies_pass_is_its_own_root_cause() {
        let j = judge_failing(&stack(), &["golden-path"]);
        assert_eq!(j.root_causes, ["golden-path"]);
        let j = judge_failing(&stack(), &[]);
        assert_eq!(j, Judgement::default());
        assert_eq!(j.line(|_| None), None);
    }

    #[test]
    fn two_independent_roots_are_both_named() {
        let j = judge_failing(&stack(), &["vpc-path", "vpc-connector", "cloudsql"]);
        assert_eq!(j.root_causes, ["cloudsql", "vpc-connector"]);
        assert_eq!(j.blocked_by["vpc-path"], ["cloudsql", "vpc-connector"]);
        assert_eq!(
            j.line(|_| None).as_deref(),
            Some("Root causes: cloudsql, vpc-connector; 1 failure follows from them")
        );
    }

    #[test]
    fn an_incident_sees_only_the_root_causes_behind_its_probes() {
        let mut g = stack();
        g.insert("checkout".into(), vec!["payments".into()]);
        g.insert("payments".into(), vec![]);
        let j = judge_failing(
            &g,
            &[
                "backend-health",
                "staging-db",
                "vpc-path",
                "vpc-connector",
                "checkout",
                "payments",
            ],
        );
        assert_eq!(j.root_causes, ["payments", "vpc-connector"]);
        let mine = j.behind(["backend-health", "golden-path"]);
        assert_eq!(mine.root_causes, ["vpc-connector"]);
        assert_eq!(
            mine.line(|_| None).as_deref(),
            Some("Root cause: vpc-connector; 1 failure follows from it")
        );
        // A criterion on the root cause itself names it; a passing probe names nothing.
        assert_eq!(j.behind(["payments"]).root_causes, ["payments"]);
        assert_eq!(j.behind(["redis", "cloudsql"]), Judgement::default());
    }

    #[test]
    fn judging_each_part_alone_is_judging_the_whole_graph() {
        let mut g = stack();
        // A second part: web -> api -> db, and a probe both depend on.
        for (p, d) in [
            ("web", "api"),
            ("api", "db"),
            ("web", "dns"),
            ("api", "dns"),
        ] {
            g.entry(p.to_string()).or_default().push(d.to_string());
        }
        for p in ["db", "dns"] {
            g.insert(p.to_string(), Vec::new());
        }
        let parts = Parts::new(g.clone());
        assert_eq!(parts.graphs().len(), 2);
        assert_eq!(parts.part_of("redis"), parts.part_of("cloudsql"));
        assert_eq!(parts.part_of("dns"), parts.part_of("web"));
        assert_ne!(parts.part_of("web"), parts.part_of("redis"));
        assert_eq!(parts.part_of("elsewhere"), None);
        let names: Vec<&String> = g.keys().collect();
        // Every set of failing probes.
        for mask in 0u32..(1 << names.len()) {
            let failing = |p: &str| {
                names
                    .iter()
                    .position(|n| n.as_str() == p)
                    .is_some_and(|i| mask & (1 << i) != 0)
            };
            let each: Vec<Judgement> = parts
                .graphs()
                .iter()
                .map(|part| judge(part, failing))
                .collect();
            assert_eq!(
                Judgement::merge(&each),
                judge(&g, failing),
                "failing mask {mask:b}"
            );
        }
    }

    #[test]
    fn unknown_names_and_cycles_are_reported_once_each() {
        let mut g = stack();
        g.insert("golden-path".into(), vec!["backend-healt".into()]);
        g.insert("vpc-connector".into(), vec!["staging-db".into()]);
        let errors = check(&g);
        assert_eq!(
            errors[0].to_string(),
            "depends_on names \"backend-healt\", which is not a probe of this config"
        );
        assert_eq!(errors[0].probe(), "golden-path");
        let cycles: Vec<String> = errors[1..]
            .iter()
            .map(std::string::ToString::to_string)
            .collect();
        assert_eq!(
            cycles,
            ["depends_on makes a cycle: staging-db -> vpc-path -> vpc-connector -> staging-db"]
        );
        assert!(check(&stack()).is_empty());
    }

    #[test]
    fn a_self_loop_is_a_cycle_and_a_long_chain_is_fine() {
        let g: Graph = [("a".to_string(), vec!["a".to_string()])].into();
        assert_eq!(check(&g)[0].to_string(), "depends_on makes a cycle: a -> a");
        // 100,000 probes in one chain: no recursion, one pass.
        let g: Graph = (0..100_000)
            .map(|i| {
                (
                    format!("p{i}"),
                    if i == 0 {
                        vec![]
                    } else {
                        vec![format!("p{}", i - 1)]
                    },
                )
            })
            .collect();
        assert!(check(&g).is_empty());
        let j = judge(&g, |p| p == "p0" || p == "p1");
        assert_eq!(j.root_causes, ["p0"]);
        assert_eq!(j.blocked_by["p1"], ["p0"]);
    }
}
