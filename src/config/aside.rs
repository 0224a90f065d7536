//! Every error of an entry, not only the first: keys are set aside (treated as absent) so that
//! one error does not hide the others.
//!
//! serde stops at the first error, so [`parse_all`] sets aside the innermost key the error lies
//! in and parses the rest again (each key at most once). An unexpandable `${VAR}` is an error
//! of its own ([`take_invalid`]): its key is set aside before parsing, so a misspelt key or a
//! bad value elsewhere in the entry is still reported. An error that only repeats one already
//! reported ("missing field" for a key set aside, or for the key a misspelling stands for) is
//! a consequence, not news, and is dropped.

use super::de;
use super::node::{Key, Loc, Node, Value};

/// A key set aside: the mapping it was in (by location) and its name.
#[derive(Clone, Debug)]
pub(super) struct Aside {
    pub(super) parent: Loc,
    pub(super) key: String,
}

/// An error with its place, before the entry's label is added.
pub(super) type Located = (Loc, String);

/// `node` without the keys whose value holds an unexpandable `${VAR}`, one error for each
/// such value (a list item too: the list's key is set aside), and the keys set aside.
pub(super) fn take_invalid(node: &Node, errs: &mut Vec<Located>, aside: &mut Vec<Aside>) -> Node {
    let mut node = node.clone();
    strip(&mut node, errs, aside);
    node
}

fn strip(node: &mut Node, errs: &mut Vec<Located>, aside: &mut Vec<Aside>) {
    match &mut node.value {
        Value::Map(entries) => {
            let parent = node.loc;
            entries.retain_mut(|(k, v)| {
                if invalid_in(v, errs, aside) {
                    aside.push(Aside {
                        parent,
                        key: k.name.clone(),
                    });
                    false
                } else {
                    true
                }
            });
        }
        Value::Seq(_) => {
            invalid_in(node, errs, aside);
        }
        _ => {}
    }
}

/// Strips the mappings inside `v` and reports whether `v` itself, or an item of it (a list's,
/// at any depth of lists), is invalid: then the key holding it goes.
fn invalid_in(v: &mut Node, errs: &mut Vec<Located>, aside: &mut Vec<Aside>) -> bool {
    match &mut v.value {
        Value::Invalid(msg) => {
            errs.push((v.loc, msg.clone()));
            true
        }
        Value::Map(_) => {
            strip(v, errs, aside);
            false
        }
        Value::Seq(items) => {
            // Every item is looked at (no short circuit): each unset variable is reported.
            let mut any = false;
            for i in items.iter_mut() {
                any |= invalid_in(i, errs, aside);
            }
            any
        }
        _ => false,
    }
}

/// Parses `T` from `tree`, collecting every error into `errs`: after each one the innermost
/// key it lies in is set aside and the rest parsed again. `Some` only if the last attempt
/// parsed, which may be after errors (the caller knows from `errs`).
pub(super) fn parse_all<T: serde::de::DeserializeOwned>(
    mut tree: Node,
    errs: &mut Vec<Located>,
    aside: &mut Vec<Aside>,
) -> Option<T> {
    loop {
        let e = match de::from_node::<T>(&tree) {
            Ok(v) => return Some(v),
            Err(e) => e,
        };
        let loc = e.loc.unwrap_or(tree.loc);
        if !consequence(&e.msg, loc, aside) {
            errs.push((loc, e.msg.clone()));
        }
        // An error about the entry as a whole (a missing key, a rule between keys) comes
        // after serde has seen every key: nothing is left to set aside.
        if loc == tree.loc {
            return None;
        }
        match set_aside(&mut tree, loc, &e.msg) {
            Some(a) => aside.push(a),
            None => return None,
        }
    }
}

/// Whether an error only repeats news already given: it is about a mapping a key was set aside from, and
/// names that key ("missing field user" once `user: ${UNSET}` is set aside, "give token or
/// login" once `token` is) or the key a set-aside misspelling stands for ("missing field
/// host" after `hots`). A wrong guess only delays an error to the next run of `validate`,
/// where an echo of an error already shown would mislead now.
fn consequence(msg: &str, loc: Loc, aside: &[Aside]) -> bool {
    let missing = msg
        .strip_prefix("missing required field \"")
        .and_then(|f| f.strip_suffix('"'));
    aside
        .iter()
        .filter(|a| a.parent == loc)
        .any(|a| names(msg, &a.key) || missing.is_some_and(|f| de::closest(&a.key, [f]).is_some()))
}

/// Whether a rule the whole entry breaks (checked once it parsed: "give either login or
/// token") names a key set aside anywhere in it, or the key a misspelling stands for.
pub(super) fn names_any(msg: &str, aside: &[Aside]) -> bool {
    aside.iter().any(|a| names(msg, &a.key))
}

fn names(msg: &str, key: &str) -> bool {
    mentions(msg, key) || mentions_near(msg, key)
}

/// Whether `word` appears in `msg` as a whole word (not inside a longer name).
fn mentions(msg: &str, word: &str) -> bool {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_';
    msg.match_indices(word).any(|(i, _)| {
        let before = msg[..i].chars().next_back();
        let after = msg[i + word.len()..].chars().next();
        !before.is_some_and(is_name) && !after.is_some_and(is_name)
    })
}

/// Whether `msg` names a word a misspelling `key` may stand for. Short words are left out:
/// within two edits, `ak` is as near to `or` as to `ack`.
fn mentions_near(msg: &str, key: &str) -> bool {
    key.len() >= 4
        && msg
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.len() >= 4)
            .any(|w| de::closest(key, [w]).is_some())
}

/// Removes the innermost key an error at `loc` lies in; `None` if there is none.
fn set_aside(tree: &mut Node, loc: Loc, msg: &str) -> Option<Aside> {
    // An unknown field is at its key: that exact key goes, even when it is the first of a
    // nested block (which starts where the block does).
    if let Some(name) = msg
        .strip_prefix("unknown field \"")
        .and_then(|r| r.split('"').next())
        && let Some(a) = remove_key(tree, name, loc)
    {
        return Some(a);
    }
    remove_within(tree, loc)
}

fn remove_key(node: &mut Node, name: &str, loc: Loc) -> Option<Aside> {
    let parent = node.loc;
    match &mut node.value {
        Value::Map(entries) => {
            if let Some(i) = entries
                .iter()
                .position(|(k, _)| k.name == name && k.loc == loc)
            {
                entries.remove(i);
                return Some(Aside {
                    parent,
                    key: name.to_string(),
                });
            }
            entries
                .iter_mut()
                .find_map(|(_, v)| remove_key(v, name, loc))
        }
        Value::Seq(items) => items.iter_mut().find_map(|i| remove_key(i, name, loc)),
        _ => None,
    }
}

fn before(a: Loc, b: Loc) -> bool {
    (a.line, a.col) < (b.line, b.col)
}

/// The key of `node` (a mapping) that starts last at or before `loc`, or a key inside its
/// value when `loc` lies past where that value starts (an error at a value's own start is
/// about the value as a whole, and its key goes).
fn remove_within(node: &mut Node, loc: Loc) -> Option<Aside> {
    let parent = node.loc;
    let Value::Map(entries) = &mut node.value else {
        return None;
    };
    let i = entries.iter().rposition(|(k, _)| !before(loc, k.loc))?;
    let (_, v): &mut (Key, Node) = &mut entries[i];
    if before(v.loc, loc) {
        let inner = match &mut v.value {
            Value::Map(_) => remove_within(v, loc),
            Value::Seq(items) => items
                .iter_mut()
                .rev()
                .find(|item| !before(loc, item.loc))
                .filter(|item| before(item.loc, loc))
                .and_then(|item| remove_within(item, loc)),
            _ => None,
        };
        if inner.is_some() {
            return inner;
        }
    }
    let (k, _) = entries.remove(i);
    Some(Aside {
        parent,
        key: k.name,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::node;
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        url: String,
        email: String,
        #[serde(default)]
        password: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Outer {
        host: String,
        port: u16,
        login: Option<Inner>,
    }

    fn run(text: &str) -> (Option<Outer>, Vec<String>) {
        let env = |n: &str| (n == "SET").then(|| "x".to_string());
        let n = node::parse(text, &env).unwrap();
        let (mut errs, mut aside) = (Vec::new(), Vec::new());
        let tree = take_invalid(&n, &mut errs, &mut aside);
        let out = parse_all::<Outer>(tree, &mut errs, &mut aside);
        errs.sort_by_key(|(l, _)| (l.line, l.col));
        let errs = errs
            .into_iter()
            .map(|(l, m)| format!("{}:{}: {m}", l.line, l.col))
            .collect();
        (out, errs)
    }

    #[test]
    fn an_unset_variable_is_one_error_among_the_others() {
        let (out, errs) = run("host: ${UNSET}\npot: 1\nport: 99999\n");
        assert!(out.is_none());
        assert_eq!(
            errs,
            [
                "1:7: environment variable \"UNSET\" is not set",
                "2:1: unknown field \"pot\", did you mean \"port\"?",
                "3:7: invalid value 99999: expected an integer from 0 to 65535",
            ]
        );
    }

    #[test]
    fn every_error_of_a_nested_block_and_no_consequences() {
        let text = "host: h\nport: 1\nlogin:\n  emial: e\n  pasword: p\n  url: ${UNSET}\n";
        let (_, errs) = run(text);
        assert_eq!(
            errs,
            [
                "4:3: unknown field \"emial\", did you mean \"email\"?",
                "5:3: unknown field \"pasword\", did you mean \"password\"?",
                "6:8: environment variable \"UNSET\" is not set",
            ]
        );
    }

    #[test]
    fn a_list_item_sets_its_key_aside_and_each_is_reported() {
        let n = node::parse("a: [\"${U1}\", ok, \"${U2}\"]\nb: ${SET}\n", &|n| {
            (n == "SET").then(|| "x".to_string())
        })
        .unwrap();
        let (mut errs, mut aside) = (Vec::new(), Vec::new());
        let tree = take_invalid(&n, &mut errs, &mut aside);
        assert_eq!(errs.len(), 2);
        assert!(tree.get("a").is_none());
        assert_eq!(tree.get("b").and_then(|(_, v)| v.as_str()), Some("x"));
        assert_eq!(aside.len(), 1);
        assert_eq!(aside[0].key, "a");
    }

    #[test]
    fn a_word_is_mentioned_only_whole() {
        assert!(mentions("give \"token\" or \"login\"", "token"));
        assert!(mentions("missing required field \"user\"", "user"));
        assert!(!mentions("give token_file or token_env", "token"));
        assert!(!mentions("username", "user"));
        assert!(mentions_near("missing required field \"host\"", "hots"));
        assert!(mentions_near("give either \"login\" or \"token\"", "tokn"));
        assert!(!mentions_near("give either \"login\" or \"token\"", "ak"));
    }
}
