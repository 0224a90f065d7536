//! The opt-in part of the `postgres` probe (`connections: true`): in the same session, how
//! many client connections the server holds, by database and state, against
//! `max_connections` less the superuser-reserved slots. Saturation shows here before connects
//! start failing with `too_many_connections`.
//!
//! It needs only `pg_stat_activity`, which every role may read by default (other roles'
//! sessions then show no state: counted as `unknown`). When the view is not readable, the run
//! still succeeds (the database answered) and the observation says so: a missing right is a
//! reason of its own, not a failed connect.

use crate::probe::common::kind::{KindFamily, Sample};
use crate::probe::{ProbeError, Reason};
use tokio_postgres::SimpleQueryMessage;
use tokio_postgres::error::SqlState;

/// Databases reported by name; the rest count as `other`, so the label stays bounded.
pub(crate) const MAX_DATABASES: usize = 10;

/// One read, with the simple query protocol (no prepared statement is left behind).
const QUERY: &str = "SELECT current_setting('max_connections'), \
     current_setting('superuser_reserved_connections'), \
     coalesce(datname, ''), coalesce(state, 'unknown'), count(*) \
     FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 3, 4";

/// The `state` of a session, as pg_stat_activity names it (a closed set for the label).
pub(crate) const STATES: &[&str] = &[
    "active",
    "idle",
    "idle in transaction",
    "idle in transaction (aborted)",
    "fastpath function call",
    "disabled",
    "unknown",
];

/// `pathwatch_db_connections{probe, database, state}`: a read replaces the pairs of the one
/// before (a pair it does not have goes); a run that did not reach the read keeps them.
pub(crate) const SESSIONS: KindFamily = KindFamily::int_gauge(
    "db_connections",
    "Client sessions the server holds, by database (the ten busiest, the rest 'other') and state (pg_stat_activity); postgres probes with connections: true",
)
.labels(&["database", "state"])
.removed_when_others_reported();
/// `max_connections`, as the server reports it.
pub(crate) const MAX: KindFamily =
    KindFamily::int_gauge("db_connections_max", "The server's max_connections");
/// `superuser_reserved_connections`: the slots ordinary roles cannot take.
pub(crate) const RESERVED: KindFamily = KindFamily::int_gauge(
    "db_connections_reserved",
    "The server's superuser_reserved_connections: slots ordinary roles cannot take",
);
/// Client sessions over the slots an ordinary role can take: 1 means new connects fail.
pub(crate) const USED_RATIO: KindFamily = KindFamily::gauge(
    "db_connections_used_ratio",
    "Client sessions over the slots an ordinary role can take (max_connections - reserved); at 1 new connects fail with too_many_connections",
)
.removed_when_others_reported();
/// Whether the probe's role could read `pg_stat_activity` (1) or not (0).
pub(crate) const READABLE: KindFamily = KindFamily::int_gauge(
    "db_connections_readable",
    "1 when the probe's role could read pg_stat_activity, 0 when not (a missing right, not a failed connect)",
);

/// What one read saw.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct PgConnections {
    /// `max_connections`.
    pub max: u32,
    /// `superuser_reserved_connections`: slots ordinary roles cannot take.
    pub reserved: u32,
    /// (database or `other`, state from [`STATES`], sessions), at most [`MAX_DATABASES`]
    /// databases by name.
    pub sessions: Vec<(String, &'static str, u32)>,
    /// Why the view could not be read (`None` when it was).
    pub unreadable: Option<String>,
}

impl PgConnections {
    /// Client sessions in use, this probe's own included.
    pub(crate) fn used(&self) -> u32 {
        self.sessions.iter().map(|(_, _, n)| n).sum()
    }

    /// Used over the slots an ordinary role can take; `None` when not read.
    pub(crate) fn ratio(&self) -> Option<f64> {
        let usable = self.max.saturating_sub(self.reserved);
        (self.unreadable.is_none() && usable > 0)
            .then(|| f64::from(self.used()) / f64::from(usable))
    }

    /// The samples of the `pathwatch_db_connections*` families: whether the view was
    /// readable, and when it was, the limits, the share in use and the sessions.
    pub(crate) fn samples(&self) -> Vec<Sample> {
        let mut samples = vec![READABLE.sample(f64::from(u8::from(self.unreadable.is_none())))];
        let Some(ratio) = self.ratio() else {
            return samples;
        };
        samples.extend([
            MAX.sample(f64::from(self.max)),
            RESERVED.sample(f64::from(self.reserved)),
            USED_RATIO.sample(ratio),
        ]);
        samples.extend(self.sessions.iter().map(|(db, state, n)| {
            SESSIONS.sample_with(vec![db.clone(), (*state).to_string()], f64::from(*n))
        }));
        samples
    }

    /// `6 of 7 usable (max_connections 10, 3 reserved)`, or why it is unknown.
    pub(crate) fn text(&self) -> String {
        match &self.unreadable {
            Some(why) => format!("not readable: {why}"),
            None => format!(
                "{} of {} usable (max_connections {}, {} reserved)",
                self.used(),
                self.max.saturating_sub(self.reserved),
                self.max,
                self.reserved
            ),
        }
    }
}

/// Reads the server's connections on `client`. A permission error is an observation; any
/// other failure (the session broke) fails the run.
pub(crate) async fn read(client: &tokio_postgres::Client) -> Result<PgConnections, ProbeError> {
    let messages = match client.simple_query(QUERY).await {
        Ok(m) => m,
        Err(e) => {
            if let Some(db) = e.as_db_error()
                && *db.code() == SqlState::INSUFFICIENT_PRIVILEGE
            {
                return Ok(PgConnections {
                    unreadable: Some(format!("{} ({})", db.message(), db.code().code())),
                    ..PgConnections::default()
                });
            }
            return Err(ProbeError::new(
                Reason::Query,
                format!("reading pg_stat_activity: {e}"),
            ));
        }
    };
    Ok(tally(messages.iter().filter_map(|m| match m {
        SimpleQueryMessage::Row(r) => Some([0, 1, 2, 3, 4].map(|i| r.get(i).unwrap_or(""))),
        _ => None,
    })))
}

/// The rows `[max, reserved, database, state, count]` as a [`PgConnections`]; databases
/// beyond the [`MAX_DATABASES`] busiest fold into `other`.
fn tally<'a>(rows: impl Iterator<Item = [&'a str; 5]>) -> PgConnections {
    let mut c = PgConnections::default();
    let mut raw: Vec<(String, &'static str, u32)> = Vec::new();
    for [max, reserved, db, state, n] in rows {
        c.max = max.parse().unwrap_or(c.max);
        c.reserved = reserved.parse().unwrap_or(c.reserved);
        let state = STATES
            .iter()
            .find(|s| **s == state)
            .copied()
            .unwrap_or("unknown");
        raw.push((db.to_string(), state, n.parse().unwrap_or(0)));
    }
    let mut per_db: Vec<(String, u32)> = Vec::new();
    for (db, _, n) in &raw {
        match per_db.iter_mut().find(|(d, _)| d == db) {
            Some((_, total)) => *total += n,
            None => per_db.push((db.clone(), *n)),
        }
    }
    per_db.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let named: Vec<&str> = per_db
        .iter()
        .take(MAX_DATABASES)
        .map(|(d, _)| d.as_str())
        .collect();
    for (db, state, n) in raw {
        let db = if named.contains(&db.as_str()) {
            db
        } else {
            "other".to_string()
        };
        match c
            .sessions
            .iter_mut()
            .find(|(d, s, _)| *d == db && *s == state)
        {
            Some((_, _, total)) => *total += n,
            None => c.sessions.push((db, state, n)),
        }
    }
    c.sessions.sort();
    c
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_tally_by_database_and_state_with_the_rest_as_other() {
        let mut rows = vec![
            ["10", "3", "app", "active", "2"],
            ["10", "3", "app", "idle", "3"],
            ["10", "3", "app", "idle in transaction", "1"],
            ["10", "3", "postgres", "weird new state", "1"],
        ];
        let c = tally(rows.clone().into_iter());
        assert_eq!((c.max, c.reserved, c.used()), (10, 3, 7));
        assert_eq!(c.ratio(), Some(1.0));
        assert!(c.sessions.contains(&("postgres".into(), "unknown", 1)));
        assert_eq!(c.text(), "7 of 7 usable (max_connections 10, 3 reserved)");
        // Twelve more databases: the ten busiest keep their names.
        let names: Vec<String> = (0..12).map(|i| format!("db{i:02}")).collect();
        for n in &names {
            rows.push(["10", "3", n.as_str(), "idle", "1"]);
        }
        let c = tally(rows.into_iter());
        let dbs: std::collections::BTreeSet<&str> =
            c.sessions.iter().map(|(d, _, _)| d.as_str()).collect();
        assert!(dbs.len() <= MAX_DATABASES + 1, "{dbs:?}");
        assert!(dbs.contains("other") && dbs.contains("app"), "{dbs:?}");
        assert_eq!(c.used(), 19);
    }

    #[test]
    fn an_unreadable_view_has_no_ratio() {
        let c = PgConnections {
            max: 10,
            unreadable: Some("permission denied for view pg_stat_activity (42501)".into()),
            ..PgConnections::default()
        };
        assert_eq!(c.ratio(), None);
        assert!(c.text().starts_with("not readable: permission denied"));
    }
}
