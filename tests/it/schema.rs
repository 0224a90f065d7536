//! `pathwatch schema` stays in step with the parser: every shipped config validates against
//! it (Python's jsonschema, a reference implementation), as written and with its variables
//! expanded, and configs the parser rejects for
//! their shape (unknown field, unknown kind, missing field) fail it too.

use crate::support::exporter::BIN;
use std::process::Command;

const CHECK: &str = r#"
import json, re, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft202012Validator.check_schema(schema)
v = jsonschema.Draft202012Validator(schema)
def expand(text):
    # ${VAR:-default} -> default, ${VAR} -> a placeholder, as if the environment were empty.
    # A value that is only an empty default stays an empty string, as in pathwatch (which
    # expands inside string scalars), not YAML's null.
    text = re.sub(r"(:[ \t]*)\$\{[A-Za-z0-9_]+:-\}([ \t]*(#.*)?)$", r'\1""\2', text, flags=re.M)
    text = re.sub(r"\$\{[A-Za-z0-9_]+:-([^}]*)\}", r"\1", text)
    return re.sub(r"\$\{[A-Za-z0-9_]+\}", "x", text)
bad = 0
for path in sys.argv[2:]:
    want_valid = not path.startswith("!")
    path = path.lstrip("!")
    text = open(path).read()
    # An editor sees the file as written, variables and all; pathwatch reads it expanded.
    # A shipped config must pass both ways.
    docs = [("expanded", yaml.safe_load(expand(text)))]
    if want_valid:
        docs.append(("as written", yaml.safe_load(text)))
    for how, doc in docs:
        errors = sorted(v.iter_errors(doc), key=lambda e: list(e.path))
        if want_valid and errors:
            bad += 1
            print(f"{path} ({how}): {errors[0].message} at {list(errors[0].path)}")
        if not want_valid and not errors:
            bad += 1
            print(f"{path}: accepted by the schema but rejected by pathwatch")
sys.exit(1 if bad else 0)
"#;

#[test]
fn shipped_configs_validate_against_the_schema_and_bad_shapes_do_not() {
    let out = Command::new(BIN)
        .arg("schema")
        .output()
        .expect("pathwatch schema");
    assert!(out.status.success());
    let dir = tempfile::tempdir().expect("temp dir");
    let schema = dir.path().join("schema.json");
    std::fs::write(&schema, &out.stdout).expect("write schema");
    let script = dir.path().join("check.py");
    std::fs::write(&script, CHECK).expect("write script");
    let files = [
        "examples/local.yaml",
        "examples/staging.yaml",
        "tests/fixtures/config/good.yaml",
        "tests/fixtures/config/golden_protocol.yaml",
        "k8s/base/pathwatch.yaml",
        "k8s/overlays/staging/pathwatch.yaml",
        "!tests/fixtures/config/bad/unknown_field.yaml",
        "!tests/fixtures/config/bad/unknown_kind.yaml",
        "!tests/fixtures/config/bad/missing_field.yaml",
        "!tests/fixtures/config/bad/unknown_top_level.yaml",
        "!tests/fixtures/config/bad/bad_sslmode.yaml",
        "!tests/fixtures/config/bad/golden_bad_pointer.yaml",
        "!tests/fixtures/config/bad/golden_bad_isolation.yaml",
        "!tests/fixtures/config/bad/golden_bad_login_pointer.yaml",
    ];
    let out = Command::new("python3")
        .arg(&script)
        .arg(&schema)
        .args(files)
        .output()
        .expect("python3 with jsonschema and pyyaml (.ci/test installs them)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
