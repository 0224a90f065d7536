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
    y
}

/// Values for the `${DEMO_*}` names of [`config`], from `DATABASE_URL` or the `PG*` variables.
pub fn env_values(get: &dyn Fn(&str) -> Option<String>) -> (HashMap<String, String>, bool) {
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
pub async fn walk(state: SimState, token: CancellationToken) {
    let acts = scenario();
    loop {
        for act in &acts {
            state.set_faults(act.faults.clone());
            if act.restart {
                state.restart();
            }
            println!("demo: {} (for {} s)", act.name, act.lasts.as_secs());
            tokio::select! {
                _ = token.cancelled() => return,
                _ = tokio::time::sleep(act.lasts) => {}
            }
        }
    }
}
