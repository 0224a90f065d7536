//! The shape of the crate: data flows down (config -> runner -> probe -> result -> metrics,
//! incidents, store -> HTTP), so no module may name one above it. This test reads every
//! `src/**/*.rs` (main.rs aside: the binary may use anything) and fails naming file:line on
//! each path to a module its own module must not reach: `use crate::x...`, `crate::x::` in
//! code, and `super::` chains (resolved from the file's module) that climb to another one.
//! Comment lines are skipped: a doc link is no dependency. A second test fails when the
//! top-level modules import each other in a circle, naming it.

use std::path::{Path, PathBuf};

/// `(module, forbidden, why)`: no file in `module` (or below it) may name a path in any of
/// `forbidden` (or below it). `"*"` forbids every other module of the crate (a leaf) except
/// those listed as `"!name"`.
const FORBIDDEN: &[(&str, &[&str], &str)] = &[
    (
        "core",
        &["*", "!redact"],
        "values every layer shares: it imports nothing above it (secrets register with redact)",
    ),
    ("units", &["*"], "a leaf: durations as a person reads them"),
    ("abort", &["*"], "a leaf: tasks that end with their owner"),
    (
        "redact",
        &["*"],
        "a leaf: config, probes and logs register secrets with it",
    ),
    (
        "allowlist",
        &["*"],
        "a leaf: config parses its patterns, probes check their hops",
    ),
    (
        "sim",
        &["*"],
        "the reference service shares no code with the exporter it is measured by",
    ),
    (
        "probe",
        &[
            "runner",
            "metrics",
            "server",
            "on_demand",
            "store",
            "reload",
            "status_page",
            "check",
            "incident",
            "config",
            "web",
            "app",
        ],
        "a probe returns an outcome; the runner times it and others record it; its spec's value types are in core",
    ),
    (
        "incident",
        &[
            "runner",
            "metrics",
            "server",
            "on_demand",
            "store",
            "reload",
            "status_page",
            "config",
            "app",
        ],
        "a pure engine over run results; config parses its specs, not the other way",
    ),
    (
        "metrics",
        &[
            "runner",
            "store",
            "server",
            "on_demand",
            "reload",
            "status_page",
            "app",
        ],
        "metrics encode results; they never schedule or serve",
    ),
    (
        "config",
        &[
            "runner",
            "on_demand",
            "metrics",
            "store",
            "server",
            "reload",
            "status_page",
            "check",
            "web",
            "app",
        ],
        "config is parsed data; the on-demand handler and the runner consume it",
    ),
    (
        "runner",
        &[
            "server",
            "on_demand",
            "status_page",
            "reload",
            "check",
            "app",
        ],
        "the scheduler hands results to the state; it knows no HTTP or reloads",
    ),
    (
        "store",
        &[
            "runner",
            "server",
            "on_demand",
            "reload",
            "status_page",
            "app",
        ],
        "the state holds results; the runner feeds it, HTTP reads it",
    ),
];

/// One path from a file to a module of the crate.
#[derive(Debug, PartialEq)]
struct Edge {
    line: usize,
    /// The top-level module named (`probe` for `crate::probe::Reason`).
    to: String,
    text: String,
}

/// The module path of a source file: `src/config/de/error.rs` -> `[config, de, error]`,
/// `src/config/mod.rs` -> `[config]`, `src/lib.rs` -> `[]`.
fn module_of(rel: &Path) -> Vec<String> {
    let mut parts: Vec<String> = rel
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    if let Some(last) = parts.pop() {
        let stem = last.trim_end_matches(".rs");
        if stem != "mod" && stem != "lib" {
            parts.push(stem.to_string());
        }
    }
    parts
}

fn ident_at(s: &str) -> Option<&str> {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    (end > 0).then(|| &s[..end])
}

/// The top-level modules a file's code names, with their lines. `crate::{a, b::c}` names
/// `a` and `b`; `super::super::x` from `config::de::error` names `config` (its own).
fn edges(module: &[String], text: &str) -> Vec<Edge> {
    let mut out = Vec::new();
    // The file with comment lines blanked, so offsets still map to lines.
    let code: String = text
        .lines()
        .map(|l| {
            if l.trim_start().starts_with("//") {
                String::new()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    let bytes = code.as_bytes();
    let word_start =
        |at: usize| at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
    let mut push = |at: usize, to: &str| {
        let line = line_of(at);
        let text = code.lines().nth(line - 1).unwrap_or("").trim().to_string();
        out.push(Edge {
            line,
            to: to.to_string(),
            text,
        });
    };
    for (at, _) in code.match_indices("crate::") {
        if !word_start(at) {
            continue;
        }
        let rest = &code[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level names of the group, up to its matching brace.
            let mut depth = 0usize;
            let mut item_start = true;
            for (i, c) in group.char_indices() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => item_start = true,
                    c if c.is_whitespace() => {}
                    _ if item_start && depth == 0 => {
                        item_start = false;
                        if let Some(name) = ident_at(&group[i..]) {
                            push(at, name);
                        }
                    }
                    _ => {}
                }
            }
        } else if let Some(name) = ident_at(rest) {
            push(at, name);
        }
    }
    for (at, _) in code.match_indices("super::") {
        if !word_start(at) || code[..at].ends_with("::") {
            continue;
        }
        let mut rest = &code[at..];
        let mut up = 0;
        while let Some(r) = rest.strip_prefix("super::") {
            up += 1;
            rest = r;
        }
        // Only a chain that climbs to the crate root names another top-level module.
        if up >= module.len()
            && let Some(name) = ident_at(rest)
        {
            push(at, name);
        }
    }
    out
}

/// `file:line: module -> forbidden (why): text` for every forbidden edge in `text`.
fn violations(
    rules: &[(&str, &[&str], &str)],
    rel: &Path,
    text: &str,
    modules: &[String],
) -> Vec<String> {
    let module = module_of(rel);
    let Some(top) = module.first() else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for edge in edges(&module, text) {
        if edge.to == *top || !modules.contains(&edge.to) {
            continue;
        }
        for (from, forbidden, why) in rules {
            let excepted = forbidden
                .iter()
                .any(|f| f.strip_prefix('!') == Some(&edge.to));
            let listed = forbidden
                .iter()
                .any(|f| *f == edge.to || (*f == "*" && !excepted));
            if from == top && listed {
                out.push(format!(
                    "src/{}:{}: {top} -> {} is forbidden ({why}): {}",
                    rel.display(),
                    edge.line,
                    edge.to,
                    edge.text
                ));
            }
        }
    }
    out
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|e| e == "rs") {
            out.push(p);
        }
    }
}

/// The crate's top-level modules, from lib.rs's `pub mod` / `pub(crate) mod` / `mod` lines.
fn crate_modules(src: &Path) -> Vec<String> {
    let lib = std::fs::read_to_string(src.join("lib.rs")).expect("src/lib.rs");
    lib.lines()
        .filter_map(|l| {
            let l = l.trim();
            let name = l
                .strip_prefix("pub mod ")
                .or_else(|| l.strip_prefix("pub(crate) mod "))
                .or_else(|| l.strip_prefix("mod "))?;
            Some(name.trim_end_matches(';').to_string())
        })
        .collect()
}

#[test]
fn no_module_names_one_above_it() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = crate_modules(&src);
    // A rule about a module that no longer exists would pass for ever: each must name real ones.
    for (from, forbidden, _) in FORBIDDEN {
        for m in std::iter::once(from).chain(forbidden.iter()) {
            assert!(
                *m == "*" || modules.iter().any(|x| x == m.trim_start_matches('!')),
                "rule names {m:?}, which is not a module of src/lib.rs ({modules:?})"
            );
        }
    }
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut found = Vec::new();
    let mut edges_seen = 0;
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        if rel == Path::new("main.rs") {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("readable source");
        edges_seen += edges(&module_of(rel), &text).len();
        found.extend(violations(FORBIDDEN, rel, &text, &modules));
    }
    assert!(
        files.len() > 50 && edges_seen > 100,
        "the scan read {} files and {edges_seen} paths: it is not reading the crate",
        files.len()
    );
    assert!(
        found.is_empty(),
        "{} forbidden import(s):\n{}",
        found.len(),
        found.join("\n")
    );
}

/// A circle among top-level modules, as `a -> b -> ... -> a`, if there is one.
fn circle(
    edges: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
) -> Option<String> {
    fn visit(
        at: &str,
        edges: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<String> {
        if let Some(i) = path.iter().position(|p| p == at) {
            let mut names = path[i..].to_vec();
            names.push(at.to_string());
            return Some(names.join(" -> "));
        }
        if done.contains(at) {
            return None;
        }
        path.push(at.to_string());
        for next in edges.get(at).into_iter().flatten() {
            if let Some(c) = visit(next, edges, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(at.to_string());
        None
    }
    let mut done = std::collections::BTreeSet::new();
    edges
        .keys()
        .find_map(|m| visit(m, edges, &mut Vec::new(), &mut done))
}

#[test]
fn no_import_circle_among_top_level_modules() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = crate_modules(&src);
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut graph = std::collections::BTreeMap::<String, std::collections::BTreeSet<String>>::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        let module = module_of(rel);
        let Some(top) = module.first() else { continue };
        if rel == Path::new("main.rs") {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("readable source");
        for edge in edges(&module, &text) {
            if edge.to != *top && modules.contains(&edge.to) {
                graph.entry(top.clone()).or_default().insert(edge.to);
            }
        }
    }
    assert!(
        graph.len() > 10,
        "the scan found too few modules: {graph:?}"
    );
    assert_eq!(
        circle(&graph),
        None,
        "modules import each other in a circle"
    );
    // The check itself finds a circle when there is one.
    let mut looped = graph.clone();
    looped
        .entry("core".into())
        .or_default()
        .insert("app".into());
    assert!(
        circle(&looped).is_some(),
        "core -> app closes a circle: {looped:?}"
    );
}

#[test]
fn the_guard_sees_every_way_of_naming_a_module() {
    let modules: Vec<String> = ["probe", "runner", "metrics", "config", "core"]
        .map(String::from)
        .to_vec();
    let text = "//! [`crate::runner`] in a doc comment is no dependency\n\
                use crate::core::clock::unix_now;\n\
                use crate::{config::ProbeConfig, runner::run_once};\n\
                fn f() { let _ = crate::metrics::Metrics::new; }\n";
    let found = violations(
        FORBIDDEN,
        Path::new("probe/kinds/golden/mod.rs"),
        text,
        &modules,
    );
    assert_eq!(found.len(), 3, "{found:#?}");
    assert!(found[0].starts_with("src/probe/kinds/golden/mod.rs:3: probe -> config"));
    assert!(found[1].starts_with("src/probe/kinds/golden/mod.rs:3: probe -> runner"));
    assert!(found[2].starts_with("src/probe/kinds/golden/mod.rs:4: probe -> metrics"));
    // `super::` that climbs out of a top-level module is a path to a sibling.
    let found = violations(
        FORBIDDEN,
        Path::new("probe/mod.rs"),
        "use super::runner::run_once;\nuse super::Reason;\n",
        &modules,
    );
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].contains("probe -> runner"));
    // A leaf may name nothing else of the crate, but what its rule excepts.
    let modules: Vec<String> = ["probe", "core", "redact"].map(String::from).to_vec();
    let found = violations(
        FORBIDDEN,
        Path::new("core/types.rs"),
        "use crate::probe::Reason;\nfn f() { crate::redact::register(\"x\"); }\n",
        &modules,
    );
    assert_eq!(found.len(), 1, "{found:#?}");
    assert!(found[0].contains("core -> probe"), "{found:#?}");
}

/// The submodules of src/metrics/ that a path from a file inside it names: `super::`
/// chains that reach the module's root file and `crate::metrics::` paths, followed to the
/// submodule they name directly or through one of the root's `pub use` re-exports. Code from the
/// first `#[cfg(test)]` on is skipped: tests may use anything.
fn metrics_edges(
    depth: usize,
    text: &str,
    subs: &[String],
    owner: &std::collections::BTreeMap<String, String>,
) -> Vec<String> {
    let code: String = text
        .split("#[cfg(test)]")
        .next()
        .unwrap_or("")
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n");
    let resolve = |name: &str| -> Option<String> {
        if subs.iter().any(|s| s == name) {
            Some(name.to_string())
        } else {
            owner.get(name).cloned()
        }
    };
    // The first identifier of each top-level item after a path's `::` (`x` or `{a, b::c}`).
    let names = |rest: &str| -> Vec<String> {
        let ident = |s: &str| -> String {
            s.chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect()
        };
        let Some(group) = rest.strip_prefix('{') else {
            return vec![ident(rest)];
        };
        let (mut out, mut depth, mut start) = (Vec::new(), 0usize, true);
        for (i, c) in group.char_indices() {
            match c {
                '{' => depth += 1,
                '}' if depth == 0 => break,
                '}' => depth -= 1,
                ',' if depth == 0 => start = true,
                c if c.is_whitespace() => {}
                _ if start && depth == 0 => {
                    start = false;
                    out.push(ident(&group[i..]));
                }
                _ => {}
            }
        }
        out
    };
    let mut out = Vec::new();
    let chain = "super::".repeat(depth);
    for (at, _) in code.match_indices(&chain) {
        let before = &code[..at];
        let rest = &code[at + chain.len()..];
        if before.ends_with("::") || rest.starts_with("super::") {
            continue;
        }
        out.extend(names(rest).iter().filter_map(|n| resolve(n)));
    }
    for (at, _) in code.match_indices("crate::metrics::") {
        let rest = &code[at + "crate::metrics::".len()..];
        out.extend(names(rest).iter().filter_map(|n| resolve(n)));
    }
    out
}

#[test]
fn no_import_circle_inside_metrics() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    // The module's root file: metrics/mod.rs (metrics.rs before the module-file convention).
    let root_file = ["metrics/mod.rs", "metrics.rs"]
        .map(|f| src.join(f))
        .into_iter()
        .find(|f| f.is_file())
        .expect("src/metrics/mod.rs");
    let root = std::fs::read_to_string(&root_file).expect("the metrics module's root file");
    let subs: Vec<String> = root
        .lines()
        .filter_map(|l| {
            let l = l.trim();
            let name = l
                .strip_prefix("pub mod ")
                .or_else(|| l.strip_prefix("pub(crate) mod "))
                .or_else(|| l.strip_prefix("mod "))?;
            Some(name.trim_end_matches(';').to_string())
        })
        .collect();
    // `pub use m::{A, B};` in the root: A and B are m's.
    let mut owner = std::collections::BTreeMap::new();
    for stmt in root.split(';') {
        let Some(rest) = ["pub use ", "pub(crate) use "]
            .iter()
            .find_map(|p| stmt.find(p).map(|i| &stmt[i + p.len()..]))
        else {
            continue;
        };
        let Some((m, items)) = rest.split_once("::") else {
            continue;
        };
        if subs.iter().any(|s| s == m.trim()) {
            for item in items.split(|c: char| "{},".contains(c)) {
                let item = item.trim();
                if !item.is_empty() {
                    owner.insert(item.to_string(), m.trim().to_string());
                }
            }
        }
    }
    let mut files = Vec::new();
    sources(&src.join("metrics"), &mut files);
    let mut graph = std::collections::BTreeMap::<String, std::collections::BTreeSet<String>>::new();
    for file in &files {
        if *file == root_file {
            continue;
        }
        let rel = file
            .strip_prefix(src.join("metrics"))
            .expect("under src/metrics");
        let parts: Vec<_> = rel.components().collect();
        let Some(first) = parts.first() else { continue };
        let from = first
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        // A module's tests in a file of their own (`tests.rs`, or `#[path]` to `x_tests.rs`)
        // are test code.
        let name = rel.file_name().map(|n| n.to_string_lossy().into_owned());
        if from.ends_with("_tests") || from == "testdata" || name.as_deref() == Some("tests.rs") {
            continue;
        }
        // `super::` chains climb modules, not directories: `rows/mod.rs` is one below metrics.
        let depth = parts.len() - usize::from(name.as_deref() == Some("mod.rs"));
        let text = std::fs::read_to_string(file).expect("readable source");
        for to in metrics_edges(depth, &text, &subs, &owner) {
            if to != from {
                graph.entry(from.clone()).or_default().insert(to);
            }
        }
    }
    // Seven edges since the kinds' families became declarations (metrics/kinds/mod.rs).
    assert!(
        graph
            .values()
            .map(std::collections::BTreeSet::len)
            .sum::<usize>()
            > 5
            && owner.len() > 3,
        "the scan found too few edges: {graph:?} (re-exports: {owner:?})"
    );
    assert_eq!(
        circle(&graph),
        None,
        "modules of src/metrics/ import each other in a circle"
    );
    // The check itself finds a circle when there is one.
    let mut looped = graph.clone();
    looped
        .entry("histograms".into())
        .or_default()
        .insert("rows".into());
    assert!(
        circle(&looped).is_some(),
        "histograms -> rows closes a circle: {looped:?}"
    );
}
