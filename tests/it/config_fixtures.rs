//! Every bad config under tests/fixtures/config/bad gives exactly the error in its `.err`
//! file from `pathwatch validate`, with exit code 2.

use crate::support::exporter::BIN;
use std::path::Path;
use std::process::Command;

#[test]
fn each_bad_config_gives_its_exact_error() {
    let dir = Path::new("tests/fixtures/config/bad");
    let mut cases: Vec<_> = std::fs::read_dir(dir)
        .expect("fixture dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 8, "fixtures found: {cases:?}");
    let mut failures = Vec::new();
    for case in &cases {
        let expected = std::fs::read_to_string(case.with_extension("err"))
            .unwrap_or_else(|e| panic!("{}: missing .err file: {e}", case.display()));
        let out = Command::new(BIN)
            .arg("validate")
            .arg(case)
            // The unset-variable case relies on this one being absent.
            .env_remove("PATHWATCH_TEST_UNSET")
            .output()
            .expect("run pathwatch validate");
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.code() != Some(2) || stderr != expected {
            failures.push(format!(
                "{}: exit {:?}\n  expected: {expected:?}\n  got:      {stderr:?}",
                case.display(),
                out.status.code()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_good_config_validates() {
    let out = Command::new(BIN)
        .args(["validate", "tests/fixtures/config/good.yaml"])
        .output()
        .expect("run pathwatch validate");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "tests/fixtures/config/good.yaml: OK (3 probes)\n"
    );
}
