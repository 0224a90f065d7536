#!/usr/bin/env python3
"""Offline checks of what deploy/ and k8s/ ship for Google Cloud (no project needed).

  python3 deploy/validate.py alert-policy FILE...       AlertPolicy JSON Schema + 30 s rule
  python3 deploy/validate.py cloud-run-service FILE...  Knative Service as Cloud Run takes it
  python3 deploy/validate.py promql FILE...             every PromQL expression parses (promtool)

FILE is YAML or JSON (JSON under a comment header is YAML too). Each error is printed as
`FILE: path: message`; the exit status is 1 when any file has one, 2 on unusable input.
"""
import json, os, re, subprocess, sys, tempfile

import jsonschema  # the reference implementation; .ci/install installs it
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SCHEMAS = os.path.join(HERE, "schemas")


def load(path):
    with open(path) as f:
        return yaml.safe_load(f)


def where(err):
    return "/".join(str(p) for p in err.absolute_path) or "(top)"


def schema_errors(kind, doc):
    with open(os.path.join(SCHEMAS, f"{kind}.schema.json")) as f:
        schema = json.load(f)
    v = jsonschema.Draft202012Validator(schema)
    return [f"{where(e)}: {e.message}" for e in sorted(v.iter_errors(doc), key=lambda e: list(e.absolute_path))]


def alert_policy(doc):
    errs = schema_errors("alert-policy", doc)
    for i, c in enumerate(doc.get("conditions") or [] if isinstance(doc, dict) else []):
        q = c.get("conditionPrometheusQueryLanguage") if isinstance(c, dict) else None
        iv = (q or {}).get("evaluationInterval")
        m = re.match(r"^([0-9]+)s$", iv) if isinstance(iv, str) else None
        if m and (int(m.group(1)) == 0 or int(m.group(1)) % 30):
            errs.append(f"conditions/{i}/conditionPrometheusQueryLanguage/evaluationInterval: "
                        f"{iv} is not a positive multiple of 30s")
    return errs


def cloud_run_service(doc):
    errs = schema_errors("cloud-run-service", doc)
    if errs:
        return errs
    tmpl = doc["spec"]["template"]
    spec = tmpl["spec"]
    containers = spec["containers"]
    names = [c.get("name") for c in containers]
    if len(containers) > 1:
        if None in names:
            errs.append("spec/template/spec/containers: every container needs a name when there are several")
        if len(set(names)) != len(names):
            errs.append("spec/template/spec/containers: container names repeat")
    ingress = [c.get("name") for c in containers if c.get("ports")]
    if len(containers) > 1 and len(ingress) != 1:
        errs.append(f"spec/template/spec/containers: exactly one container takes ingress (has ports), found {len(ingress)}")
    volumes = {v["name"] for v in spec.get("volumes", [])}
    for i, c in enumerate(containers):
        for m in c.get("volumeMounts", []):
            if m["name"] not in volumes:
                errs.append(f"spec/template/spec/containers/{i}/volumeMounts: volume {m['name']} is not declared")
    ann = (tmpl.get("metadata") or {}).get("annotations") or {}
    deps = ann.get("run.googleapis.com/container-dependencies")
    if deps is not None:
        key = "spec/template/metadata/annotations/run.googleapis.com~1container-dependencies"
        try:
            graph = json.loads(deps)
        except ValueError as e:
            return errs + [f"{key}: not JSON: {e}"]
        if not isinstance(graph, dict) or not all(isinstance(v, list) for v in graph.values()):
            return errs + [f"{key}: must map a container name to a list of container names"]
        for name, after in graph.items():
            for n in [name] + after:
                if n not in names:
                    errs.append(f"{key}: {n} is not a container of this service")
        # A dependency cycle would keep the instance from ever starting.
        state = {}

        def visit(n, path):
            if state.get(n) == 1:
                errs.append(f"{key}: cycle {' -> '.join(path + [n])}")
                return
            if state.get(n) == 2:
                return
            state[n] = 1
            for m in graph.get(n, []):
                visit(m, path + [n])
            state[n] = 2

        for n in graph:
            visit(n, [])
    return errs


def expressions(doc):
    """[(label, expr)] from an AlertPolicy, a Rules/PrometheusRule, or a Prometheus rule file."""
    out = []
    if isinstance(doc, dict) and "conditions" in doc:
        for c in doc["conditions"]:
            q = c.get("conditionPrometheusQueryLanguage")
            if q:
                out.append((c.get("displayName", "condition"), q.get("query", "")))
        return out
    groups = (doc.get("spec") or {}).get("groups") if "spec" in doc else doc.get("groups")
    for g in groups or []:
        for r in g.get("rules", []):
            out.append((r.get("alert") or r.get("record") or "rule", r.get("expr", "")))
    return out


def promql(paths):
    """Wraps every expression in a recording rule and runs `promtool check rules` on each file."""
    failed = False
    for path in paths:
        exprs = expressions(load(path))
        if not exprs:
            print(f"{path}: no PromQL expressions found", file=sys.stderr)
            failed = True
            continue
        rules = {"groups": [{"name": "check", "rules": [
            {"record": f"check:expr_{i}", "expr": e} for i, (_, e) in enumerate(exprs)]}]}
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            yaml.safe_dump(rules, f)
        try:
            res = subprocess.run(["promtool", "check", "rules", f.name], capture_output=True, text=True)
        finally:
            os.unlink(f.name)
        if res.returncode != 0:
            failed = True
            text = res.stdout + res.stderr
            for i, (label, _) in enumerate(exprs):
                text = text.replace(f"check:expr_{i}", f"{label}")
            print(f"{path}: promtool check rules failed:\n{text}", file=sys.stderr)
        else:
            print(f"{path}: {len(exprs)} expressions parse")
    return 1 if failed else 0


def main(argv):
    if len(argv) < 2 or argv[0] not in ("alert-policy", "cloud-run-service", "promql"):
        print(__doc__, file=sys.stderr)
        return 2
    kind, paths = argv[0], argv[1:]
    if kind == "promql":
        return promql(paths)
    check = alert_policy if kind == "alert-policy" else cloud_run_service
    bad = 0
    for path in paths:
        try:
            doc = load(path)
        except (OSError, yaml.YAMLError) as e:
            print(f"{path}: {e}", file=sys.stderr)
            return 2
        errs = check(doc)
        for e in errs:
            print(f"{path}: {e}", file=sys.stderr)
        bad += bool(errs)
    print(f"{kind}: {len(paths) - bad} of {len(paths)} valid")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
