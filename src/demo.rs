//! `pathwatch demo`: the reference service and pathwatch probing it, walking the first user's
//! incident on a loop (healthy -> database unreachable -> restart -> healthy) so every metric
//! moves. A Postgres probe joins when `DATABASE_URL` or `PGHOST` points at one.

use crate::sim::{Faults, SimOptions, SimState};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// One step of the scenario: what is wrong, and for how long.
pub struct Act {
    pub name: &'static str,
    pub faults: Faults,
    /// Restart the service when the act begins (its startup delay applies anew).
    pub restart: bool,
    pub lasts: Duration,
}

/// The incident as the first user lived it, on a loop.
pub fn scenario() -> Vec<Act> {
    vec![
        Act {
            name: "healthy: every probe passes",
            faults: Faults::default(),
            restart: false,
            lasts: Duration::from_secs(60),
        },
        Act {
            name: "outage: Cloud SQL unreachable through the VPC connector (logins 503, WebSocket 1011)",
            faults: Faults {
                db_down: true,
                ..Faults::default()
            },
            restart: false,
            lasts: Duration::from_secs(45),
        },
        Act {
            name: "recovery: the backend restarts and takes 8 s to become healthy",
            faults: Faults {
                startup_delay_ms: 8_000,
                ..Faults::default()
            },
            restart: true,
            lasts: Duration::from_secs(30),
        },
        Act {
            name: "degraded: the agent is slow and drops tool_completed",
            faults: Faults {
                slow_events_ms: 1_500,
                drop_event: Some("tool_completed".into()),
                ..Faults::default()
            },
            restart: false,
            lasts: Duration::from_secs(40),
        },
    ]
}

pub const DEMO_PASSWORD: &str = "pathwatch-demo";

/// The reference service's options in the demo: human-scale pauses between events.
pub fn sim_options() -> SimOptions {
    SimOptions {
        password: DEMO_PASSWORD.into(),
        bypass_key: None,
        event_pause: Duration::from_millis(400),
        heartbeat: Duration::from_secs(5),
        faults: Faults::default(),
    }
}

/// The bundled config, probing the reference service at `sim`. Secrets stay in `env` names.
pub fn config(sim: SocketAddr, with_postgres: bool) -> String {
    let mut y = format!(
        r#"defaults:
  interval: 5s
  timeout: 10s
probes:
  - name: backend-health
    kind: http
    url: http://{sim}/health
    assert:
      - {{ json_pointer: /status, equals: healthy }}
  - name: backend-database-health
    kind: http
    url: http://{sim}/api/health/database
  - name: auth-health
    kind: http
    url: http://{sim}/auth/health
  - name: backend-startup
    kind: startup
    interval: 5s
    poll_interval: 1s
    deadline: 30s
    reference: reported
    started_at_pointer: /started_at
    check: {{ url: "http://{sim}/health" }}
  - name: golden-path
    kind: golden_path
    interval: 10s
    timeout: 20s
    login:
      url: http://{sim}/auth/login
      email: demo@pathwatch.test
      password: ${{DEMO_PASSWORD}}
    websocket:
      url: ws://{sim}/ws
    message: What is the status of my last optimisation?
"#
    );
    if with_postgres {
        y.push_str(
            r#"  - name: database
    kind: postgres
    host: ${DEMO_PGHOST}
    port: ${DEMO_PGPORT}
    user: ${DEMO_PGUSER}
    password: ${DEMO_PGPASSWORD}
    dbname: ${DEMO_PGDATABASE}
    timeout: 10s
"#,
        );
    }
    // The resolution criteria of the first user's test plan.
    y.push_str(
        r#"incidents:
  - id: "1278"
    title: Staging cannot reach Cloud SQL through the VPC connector
    criteria:
      - { name: backend_database, probe: backend-database-health, success: true }
      - { name: startup, probe: backend-startup, max_seconds: 30 }
      - { name: golden_path, probe: golden-path, max_seconds: 60 }
      - { name: websocket_events, probe: golden-path, all_events: true }
"#,
    );
    if with_postgres {
        y.push_str("      - { name: database_connect, probe: database, max_seconds: 10 }\n");
    }
    y
}

/// Values for the `${DEMO_*}` names of [`config`], from `DATABASE_URL` or the `PG*` variables.
pub fn env_values(lookup: &dyn Fn(&str) -> Option<String>) -> (HashMap<String, String>, bool) {
    // An empty variable counts as unset, as in libpq.
    let get = |k: &str| lookup(k).filter(|v| !v.is_empty());
    let mut vars = HashMap::new();
    vars.insert("DEMO_PASSWORD".to_string(), DEMO_PASSWORD.to_string());
    let pg = if let Some(u) = get("DATABASE_URL").and_then(|u| url::Url::parse(&u).ok()) {
        Some((
            u.host_str().unwrap_or("127.0.0.1").to_string(),
            u.port().unwrap_or(5432).to_string(),
            Some(u.username().to_string()).filter(|s| !s.is_empty()),
            u.password().map(str::to_string),
            Some(u.path().trim_start_matches('/').to_string()).filter(|s| !s.is_empty()),
        ))
    } else {
        get("PGHOST").map(|h| {
            (
                h,
                get("PGPORT").unwrap_or_else(|| "5432".into()),
                get("PGUSER"),
                get("PGPASSWORD"),
                get("PGDATABASE"),
            )
        })
    };
    let Some((host, port, user, password, db)) = pg else {
        return (vars, false);
    };
    let user = user.unwrap_or_else(|| "postgres".into());
    vars.insert("DEMO_PGHOST".into(), host);
    vars.insert("DEMO_PGPORT".into(), port);
    vars.insert("DEMO_PGDATABASE".into(), db.unwrap_or_else(|| user.clone()));
    vars.insert("DEMO_PGUSER".into(), user);
    vars.insert("DEMO_PGPASSWORD".into(), password.unwrap_or_default());
    (vars, true)
}

/// Walks the scenario on a loop until `token` is cancelled, announcing each act on stdout.
/// `speed` divides every act's length (tests walk the incident in seconds).
pub async fn walk(state: SimState, speed: f64, token: CancellationToken) {
    let acts = scenario();
    loop {
        for act in &acts {
            state.set_faults(act.faults.clone());
            if act.restart {
                state.restart();
            }
            let lasts = act.lasts.div_f64(speed.max(0.001));
            println!("demo: {} (for {:.0} s)", act.name, lasts.as_secs_f64());
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(lasts) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn postgres_joins_from_database_url_or_pghost_and_not_from_empty_values() {
        let (vars, pg) = env_values(&env(&[(
            "DATABASE_URL",
            "postgres://app:s3cret@db.internal:6543/netra_staging",
        )]));
        assert!(pg);
        assert_eq!(vars["DEMO_PGHOST"], "db.internal");
        assert_eq!(vars["DEMO_PGPORT"], "6543");
        assert_eq!(vars["DEMO_PGUSER"], "app");
        assert_eq!(vars["DEMO_PGPASSWORD"], "s3cret");
        assert_eq!(vars["DEMO_PGDATABASE"], "netra_staging");
        let (vars, pg) = env_values(&env(&[("PGHOST", "/var/run/postgresql")]));
        assert!(pg);
        assert_eq!(vars["DEMO_PGDATABASE"], "postgres");
        let (_, pg) = env_values(&env(&[("DATABASE_URL", ""), ("PGHOST", "")]));
        assert!(!pg);
    }

    #[test]
    fn the_bundled_config_loads_with_and_without_postgres() {
        let addr: SocketAddr = "127.0.0.1:8000".parse().unwrap();
        for with_pg in [false, true] {
            let (vars, _) = env_values(&env(&[("PGHOST", "127.0.0.1")]));
            let loaded =
                crate::config::parse("demo", &config(addr, with_pg), &|k| vars.get(k).cloned())
                    .unwrap();
            assert!(loaded.errors.is_empty(), "{:?}", loaded.errors);
            assert_eq!(loaded.config.probes.len(), if with_pg { 6 } else { 5 });
            assert_eq!(
                loaded.config.incidents[0].criteria.len(),
                if with_pg { 5 } else { 4 }
            );
        }
    }
}
