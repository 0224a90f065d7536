#!/usr/bin/env python3
"""Writes the book's configuration reference (docs/src/reference/config.md) from the JSON
Schema `pathwatch schema` prints, which schemars derives from the structs the config parser
reads: every key of every kind with its type, default and doc comment. Nothing here is
hand-copied; a key without a doc comment shows an empty cell (write one on its field).

  pathwatch schema > schema.json
  python3 docs/reference.py --schema schema.json [--out docs/src/reference/config.md]

tests/it/docs.rs runs it and fails when the committed page differs (PATHWATCH_BLESS=1
rewrites it). Stdlib only.
"""
import argparse
import json
import re
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VAR = "^\\$\\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\\}$"  # the ${VAR} alternative of typed values
DEPTH = 3  # nested objects expanded as dotted keys up to this depth
# Keys every probe takes (src/schema.rs adds them to each kind): one table, not one per kind.
COMMON = ("name", "kind", "interval", "timeout", "depends_on", "on_demand", "buckets")


class Ref:
    def __init__(self, defs):
        self.defs = defs

    def resolve(self, node):
        """The node a $ref names (one level), with the referring node's description kept."""
        if "$ref" in node:
            target = dict(self.defs[node["$ref"].split("/")[-1]])
            if node.get("description"):
                target["description"] = node["description"]
            if "default" in node:
                target["default"] = node["default"]
            target["$name"] = node["$ref"].split("/")[-1]
            return target
        return node

    def strip_null(self, node):
        """`X or null` (an optional key) as X, keeping the outer description and default."""
        for key in ("anyOf", "oneOf"):
            alts = node.get(key)
            if alts and any(a.get("type") == "null" for a in alts):
                rest = [a for a in alts if a.get("type") != "null"]
                if len(rest) == 1:
                    inner = self.resolve(rest[0])
                    merged = dict(inner)
                    for k in ("description", "default"):
                        if k in node:
                            merged[k] = node[k]
                    return merged
        return self.resolve(node)

    def type_of(self, node):
        """A short type for a person: `duration`, `string`, `integer`, one of `a`, `b`, ..."""
        node = self.strip_null(node)
        name = node.get("$name")
        if name == "Duration":
            return "duration"
        if name in ("Secret",):
            return "secret"
        if name in ("SecretFile",):
            return "path (secret)"
        if "const" in node:
            return f"`{node['const']}`"
        if "enum" in node:
            return ", ".join(f"`{v}`" for v in node["enum"])
        for key in ("oneOf", "anyOf"):
            if key in node:
                words = self.words(node[key])
                if words:
                    return ", ".join(f"`{w}`" for w in words[:-1]) + f" or `{words[-1]}`" \
                        if len(words) > 1 else f"`{words[0]}`"
                parts = []
                for alt in node[key]:
                    if alt.get("pattern") == VAR and alt.get("type") == "string":
                        continue  # ${VAR}: every typed value takes one
                    t = self.type_of(alt)
                    if t and t not in parts:
                        parts.append(t)
                return " or ".join(parts)
        t = node.get("type")
        types = [t] if isinstance(t, str) else list(t or [])
        types = [x for x in types if x != "null"]
        if "string" in types and len(types) > 1 and node.get("pattern") == VAR:
            types.remove("string")  # a number or boolean that may be ${VAR}
        if types == ["array"]:
            items = node.get("items", {})
            return f"list of {self.type_of(items)}" if items else "list"
        if types == ["object"]:
            extra = node.get("additionalProperties")
            if isinstance(extra, dict):
                return f"map of {self.type_of(extra)}"
            return "map" if not node.get("properties") else "object"
        if types == ["string"] and node.get("format") == "regex":
            return "regex"
        if types == ["string"] and name == "JsonPointer":
            return "JSON pointer"
        return " or ".join(types) if types else "any"

    def words(self, alts):
        """The values of alternatives that are all fixed words (enum, const), nested or not;
        None when any alternative is something else (the ${VAR} form aside)."""
        out = []
        for alt in alts:
            alt = self.resolve(alt)
            if alt.get("pattern") == VAR and alt.get("type") == "string":
                continue
            if "const" in alt:
                out.append(alt["const"])
            elif "enum" in alt:
                out += alt["enum"]
            elif "oneOf" in alt or "anyOf" in alt:
                inner = self.words(alt.get("oneOf") or alt.get("anyOf"))
                if inner is None:
                    return None
                out += inner
            else:
                return None
        return out or None

    def is_object(self, node):
        node = self.strip_null(node)
        return bool(node.get("properties"))


def cell(text):
    # rustdoc's intra-doc links ([`crate::x`]) mean nothing in the book: keep the code span.
    text = re.sub(r"\[(`[^`]+`)\](?!\()", r"\1", text or "")
    return " ".join(text.split()).replace("|", "\\|")


def default_of(node, resolved):
    if "default" in node:
        d = node["default"]
    elif "default" in resolved:
        d = resolved["default"]
    else:
        return ""
    if d is None:
        return ""
    if d == "":
        return '`""`'
    if isinstance(d, dict) and set(d) == {"secs", "nanos"}:
        # A std Duration's serde form: written as a config duration.
        ms = d["secs"] * 1000 + d["nanos"] // 1_000_000
        return f"`{ms // 1000}s`" if ms % 1000 == 0 else f"`{ms}ms`"
    return f"`{json.dumps(d) if not isinstance(d, str) else d}`"


def rows(refs, props, required, prefix="", depth=0, limit=DEPTH):
    """(key, type, required, default, doc) per key, nested objects as dotted keys."""
    out = []
    for key in sorted(props, key=lambda k: (k != "name", k != "kind", k)):
        node = props[key] if isinstance(props[key], dict) else {}  # `true`: any value
        resolved = refs.strip_null(node)
        doc = node.get("description") or resolved.get("description", "")
        name = prefix + key
        req = "yes" if key in required else ""
        items = refs.strip_null(resolved.get("items", {})) if "items" in resolved else {}
        if refs.is_object(node) and depth < limit:
            out.append((name, "object", req, "", doc))
            out += rows(refs, resolved["properties"], resolved.get("required", []),
                        name + ".", depth + 1, limit)
        elif items.get("properties") and depth < limit:
            # A list of objects: each item's keys as `key[].sub`.
            out.append((name, "list of object", req, default_of(node, resolved),
                        doc or items.get("description", "")))
            out += rows(refs, items["properties"], items.get("required", []),
                        name + "[].", depth + 1, limit)
        else:
            out.append((name, refs.type_of(node), req, default_of(node, resolved), doc))
    return out


def table(refs, props, required, limit=DEPTH):
    lines = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for key, typ, req, default, doc in rows(refs, props, required, limit=limit):
        default = "(required)" if req else default
        lines.append(f"| `{key}` | {cell(typ)} | {cell(default)} | {cell(doc)} |")
    return "\n".join(lines) + "\n"


def page(schema):
    refs = Ref(schema["$defs"])
    props = schema["properties"]
    out = [
        "# Configuration reference\n",
        "<!-- Generated by docs/reference.py from `pathwatch schema`: do not edit. "
        "Regenerate with PATHWATCH_BLESS=1 cargo test --test it docs:: -->\n",
        "Every key of the config file, from the JSON Schema `pathwatch schema` prints (the "
        "structs the parser reads and their doc comments). A value typed `integer`, "
        "`boolean`, `number` or one of a fixed set of words also takes a whole `${VAR}` or "
        "`${VAR:-default}`. Durations need a unit (`500ms`, `10s`, `1m30s`). How to use them: "
        "[Configuration](../configuration.md) and the page of each probe kind.\n",
        "## Top level\n",
        table(refs, {k: v for k, v in props.items() if k != "probes"} | {
            "probes": {"type": "array", "description": "The probes: one entry per probe, "
                       "`kind:` says which (below)."}}, schema.get("required", []), limit=0),
        "## defaults\n",
        table(refs, refs.resolve(props["defaults"])["properties"], []),
        "## incidents\n",
        "Each entry of `incidents:` (see [incidents and criteria](../concepts/incidents.md)).\n\n",
    ]
    incident = refs.resolve(props["incidents"]["items"])
    out.append(table(refs, incident["properties"], incident.get("required", [])))
    out += ["## on_demand\n",
            table(refs, refs.resolve(props["on_demand"])["properties"], [])]
    # The keys every probe takes (schema.rs adds them to each kind), once.
    kinds = props["probes"]["items"]["oneOf"]
    out += ["## Keys every probe takes\n",
            "Besides its kind's own keys (below), every entry under `probes:` takes these.\n\n",
            table(refs, {k: v for k, v in kinds[0]["properties"].items() if k in COMMON} | {
                "kind": {"enum": [a["properties"]["kind"]["const"] for a in kinds],
                         "description": "The probe kind: which keys apply (below)."}},
                  [k for k in kinds[0].get("required", []) if k in COMMON])]
    for alt in kinds:
        kind = alt["properties"]["kind"]["const"]
        # The anchors let the kind's own page include its table (mdBook's {{#include}}).
        out += [f"## kind: {kind}\n",
                f"See [{kind}](../probes/{kind}.md) for what it measures; the keys every probe "
                "takes are [above](#keys-every-probe-takes).\n\n",
                f"<!-- ANCHOR: {kind} -->\n"
                + table(refs, {k: v for k, v in alt["properties"].items() if k not in COMMON},
                        alt.get("required", []))
                + f"<!-- ANCHOR_END: {kind} -->\n"]
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--schema", required=True, help="the output of `pathwatch schema`")
    ap.add_argument("--out", default=os.path.join(ROOT, "docs/src/reference/config.md"))
    a = ap.parse_args()
    with open(a.schema) as f:
        schema = json.load(f)
    with open(a.out, "w") as f:
        f.write(page(schema))


if __name__ == "__main__":
    main()
