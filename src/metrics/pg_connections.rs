//! The `pathwatch_db_connections*` families of a postgres probe with `connections: true`:
//! sessions by database and state, the server's limits, and the share of usable slots in
//! use, so saturation alerts before connects fail. `database` is bounded (the ten busiest,
//! the rest `other`), `state` is pg_stat_activity's closed set.

use super::kind_metrics::KindMetrics;
use super::{FloatGauge, NameLabels};
use crate::config::ProbeConfig;
use crate::probe::pg_connections::PgConnections;
use crate::probe::{Kind, RunResult};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::collections::{BTreeSet, HashMap};
use std::sync::Mutex;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct SessionLabels {
    pub(crate) probe: String,
    pub(crate) database: String,
    pub(crate) state: String,
}

#[derive(Debug, Default)]
pub(crate) struct PgConnectionMetrics {
    pub(crate) sessions: Family<SessionLabels, Gauge>,
    pub(crate) max: Family<NameLabels, Gauge>,
    pub(crate) reserved: Family<NameLabels, Gauge>,
    pub(crate) used_ratio: Family<NameLabels, FloatGauge>,
    pub(crate) readable: Family<NameLabels, Gauge>,
    /// The (database, state) series each probe exports now, to drop those that went away.
    exported: Mutex<HashMap<String, BTreeSet<(String, String)>>>,
}

impl PgConnectionMetrics {
    fn register_families(&self, r: &mut Registry) {
        r.register(
            "db_connections",
            "Client sessions the server holds, by database (the ten busiest, the rest 'other') and state (pg_stat_activity); postgres probes with connections: true",
            self.sessions.clone(),
        );
        r.register(
            "db_connections_max",
            "The server's max_connections",
            self.max.clone(),
        );
        r.register(
            "db_connections_reserved",
            "The server's superuser_reserved_connections: slots ordinary roles cannot take",
            self.reserved.clone(),
        );
        r.register(
            "db_connections_used_ratio",
            "Client sessions over the slots an ordinary role can take (max_connections - reserved); at 1 new connects fail with too_many_connections",
            self.used_ratio.clone(),
        );
        r.register(
            "db_connections_readable",
            "1 when the probe's role could read pg_stat_activity, 0 when not (a missing right, not a failed connect)",
            self.readable.clone(),
        );
    }

    /// Exports one read; a run that did not reach the read leaves the last values.
    fn record_obs(&self, probe: &str, c: &PgConnections) {
        let name = NameLabels {
            probe: probe.to_string(),
        };
        self.readable
            .get_or_create(&name)
            .set(i64::from(c.unreadable.is_none()));
        let mut exported = self.exported.lock().unwrap_or_else(|p| p.into_inner());
        let before = exported.remove(probe).unwrap_or_default();
        let Some(ratio) = c.ratio() else {
            self.forget_sessions(probe, &before);
            self.used_ratio.remove(&name);
            return;
        };
        self.max.get_or_create(&name).set(i64::from(c.max));
        self.reserved
            .get_or_create(&name)
            .set(i64::from(c.reserved));
        self.used_ratio.get_or_create(&name).set(ratio);
        let now: BTreeSet<(String, String)> = c
            .sessions
            .iter()
            .map(|(db, state, _)| (db.clone(), state.to_string()))
            .collect();
        self.forget_sessions(probe, &before.difference(&now).cloned().collect());
        for (db, state, n) in &c.sessions {
            self.sessions
                .get_or_create(&SessionLabels {
                    probe: probe.to_string(),
                    database: db.clone(),
                    state: state.to_string(),
                })
                .set(i64::from(*n));
        }
        exported.insert(probe.to_string(), now);
    }

    fn forget_sessions(&self, probe: &str, pairs: &BTreeSet<(String, String)>) {
        for (database, state) in pairs {
            self.sessions.remove(&SessionLabels {
                probe: probe.to_string(),
                database: database.clone(),
                state: state.clone(),
            });
        }
    }

    /// Drops every series of a probe (removed by a reload).
    fn forget(&self, probe: &str) {
        let before = self
            .exported
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(probe)
            .unwrap_or_default();
        self.forget_sessions(probe, &before);
        let name = NameLabels {
            probe: probe.to_string(),
        };
        self.max.remove(&name);
        self.reserved.remove(&name);
        self.used_ratio.remove(&name);
        self.readable.remove(&name);
    }
}

impl KindMetrics for PgConnectionMetrics {
    fn register(&self, r: &mut Registry) {
        self.register_families(r);
    }

    fn init_probe(&self, _p: &ProbeConfig) {}

    fn record(&self, probe: &str, _kind: Kind, run: &RunResult) {
        if let Some(c) = run.observations.pg_connections() {
            self.record_obs(probe, c);
        }
    }

    fn forget_probe(&self, p: &ProbeConfig) {
        self.forget(&p.name);
    }
}
