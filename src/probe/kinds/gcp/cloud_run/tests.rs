//! Tests of cloud_run.rs: drift descriptions never show a value that is not safe.

use super::*;
use crate::probe::kinds::gcp::resource::describe;

fn spec(yaml_expect: CloudRunExpect, safe: &[&str]) -> CloudRunSpec {
    CloudRunSpec {
        project: "p".into(),
        region: "r".into(),
        service: "s".into(),
        expect: yaml_expect,
        safe_env: safe.iter().map(std::string::ToString::to_string).collect(),
        container: None,
        api_base: None,
        credentials: CredentialsSpec::default(),
    }
}

fn service(json: serde_json::Value) -> Service {
    serde_json::from_value(json).unwrap()
}

#[test]
fn drift_is_described_without_unsafe_values() {
    let mut env = BTreeMap::new();
    env.insert("DB_CONNECT_TIMEOUT".to_string(), Secret::new("75"));
    env.insert("API_KEY".to_string(), Secret::new("expected-secret"));
    let s = spec(
        CloudRunExpect {
            vpc_connector: Some("projects/p/locations/r/connectors/good".into()),
            egress: Some(Egress::AllTraffic),
            env,
            cloudsql_instances: Some(vec!["p:r:db".into()]),
        },
        &["DB_CONNECT_TIMEOUT"],
    );
    let svc = service(serde_json::json!({
        "template": {
            "vpcAccess": {"connector": "projects/p/locations/r/connectors/bad", "egress": "PRIVATE_RANGES_ONLY"},
            "containers": [
                {"name": "sidecar", "env": [{"name": "DB_CONNECT_TIMEOUT", "value": "1"}]},
                {"name": "app", "ports": [{"containerPort": 8080}], "env": [
                    {"name": "DB_CONNECT_TIMEOUT", "value": "30"},
                    {"name": "API_KEY", "value": "actual-secret"}
                ]}
            ],
            "volumes": [{"name": "cloudsql", "cloudSqlInstance": {"instances": ["p:r:db"]}}]
        }
    }));
    let checks = s.check(&svc);
    let met: Vec<(&str, bool)> = checks.iter().map(|c| (c.name.as_str(), c.met)).collect();
    assert_eq!(
        met,
        [
            ("vpc_connector", false),
            ("egress", false),
            ("env:API_KEY", false),
            ("env:DB_CONNECT_TIMEOUT", false),
            ("cloudsql_instances", true),
        ]
    );
    let text: Vec<String> = checks.iter().map(describe).collect();
    let all = text.join("\n");
    assert!(
        all.contains("env:DB_CONNECT_TIMEOUT is \"30\" (expected \"75\")"),
        "{all}"
    );
    assert!(
        all.contains("egress is PRIVATE_RANGES_ONLY (expected ALL_TRAFFIC)"),
        "{all}"
    );
    assert!(!all.contains("secret\""), "{all}");
    assert!(all.contains("env:API_KEY is <hidden>"), "{all}");
}

#[test]
fn short_connector_names_and_secret_refs() {
    let mut env = BTreeMap::new();
    env.insert("DB_PASSWORD".to_string(), Secret::new("x"));
    let s = spec(
        CloudRunExpect {
            vpc_connector: Some("good".into()),
            env,
            ..CloudRunExpect::default()
        },
        &["DB_PASSWORD"],
    );
    let svc = service(serde_json::json!({
        "template": {
            "vpcAccess": {"connector": "projects/123/locations/r/connectors/good"},
            "containers": [{"env": [{"name": "DB_PASSWORD", "valueSource": {"secretKeyRef": {"secret": "pw", "version": "latest"}}}]}]
        }
    }));
    let checks = s.check(&svc);
    assert!(checks[0].met);
    assert!(!checks[1].met);
    assert_eq!(checks[1].actual, FROM_SECRET);
}

#[test]
fn env_names_are_checked() {
    assert!(valid_env_name("DB_CONNECT_TIMEOUT"));
    assert!(!valid_env_name("1X"));
    assert!(!valid_env_name("A-B"));
    assert!(!valid_env_name(""));
}
