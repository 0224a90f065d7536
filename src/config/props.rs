//! Property tests of config loading: no text, however hostile, panics the parser, and every
//! duration that loads is inside its bounds.

use super::{INTERVAL_RANGE, TIMEOUT_RANGE, parse};
use crate::core::types::MAX_DURATION;
use proptest::prelude::*;

/// YAML-ish text: the config's own keys and values, in any order, with the characters that
/// change YAML's meaning.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("probes:".to_string()),
        Just("defaults:".to_string()),
        Just("on_demand:".to_string()),
        Just("allowed_targets:".to_string()),
        Just("incidents:".to_string()),
        Just("  - ".to_string()),
        Just("name: p".to_string()),
        Just("kind: tcp".to_string()),
        Just("kind: http".to_string()),
        Just("host: 127.0.0.1".to_string()),
        Just("port: 5432".to_string()),
        Just("url: http://x/".to_string()),
        Just("interval: ".to_string()),
        Just("timeout: ".to_string()),
        Just("follow_redirects: ".to_string()),
        Just("&a [*a, *a]".to_string()),
        Just("${X}".to_string()),
        Just("$${".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just("[".to_string()),
        Just(": ".to_string()),
        Just("\n".to_string()),
        Just("\n    ".to_string()),
        "[0-9]{1,25}(ns|ms|s|m|h|d|y)?",
        "\\PC{0,12}",
    ];
    proptest::collection::vec(token, 0..40).prop_map(|t| t.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn no_config_text_panics_and_loaded_durations_are_bounded(text in yamlish()) {
        if let Ok(loaded) = parse("p.yaml", &text, &|_| Some("v".into())) {
            for p in &loaded.config.probes {
                prop_assert!((INTERVAL_RANGE.0..=INTERVAL_RANGE.1).contains(&p.interval));
                prop_assert!(p.timeout <= MAX_DURATION);
            }
        }
    }

    #[test]
    fn any_duration_text_loads_in_bounds_or_fails_cleanly(d in "\\PC{0,30}|[0-9]{1,30}[a-z]{0,6}") {
        let text = format!(
            "probes:\n  - {{ name: p, kind: tcp, host: h, port: 1, interval: \"{d}\", timeout: \"{d}\" }}\n",
            d = d.replace(['"', '\\'], "")
        );
        if let Ok(loaded) = parse("p.yaml", &text, &|_| None) {
            for p in &loaded.config.probes {
                prop_assert!((INTERVAL_RANGE.0..=INTERVAL_RANGE.1).contains(&p.interval));
                prop_assert!((TIMEOUT_RANGE.0..=TIMEOUT_RANGE.1).contains(&p.timeout));
            }
        }
    }
}
