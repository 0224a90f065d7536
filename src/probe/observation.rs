//! What a run saw besides its outcome and phase timings: one [`Observation`] per thing a
//! kind reports, carried from the probe (through its [`super::Trace`], so a run cut short at
//! its timeout keeps what it saw) to the [`super::RunResult`] that metrics, incidents and the
//! status page read. A new kind that reports something adds one variant here.

use super::gcp::GcpObs;
use super::golden::GoldenObs;
use super::logs::LogsObs;
use super::startup::StartupObs;

/// One thing a run observed.
#[derive(Clone, Debug, PartialEq)]
pub enum Observation {
    /// The HTTP status of the last response seen (http, startup): `pathwatch_http_status_code`.
    HttpStatus(u16),
    /// A golden path's events so far.
    Golden(GoldenObs),
    /// What a startup probe saw.
    Startup(StartupObs),
    /// A resource state the target reported (READY, RUNNABLE, ...): root-cause lines and
    /// `state:` criteria read it.
    State(String),
    /// What a GCP probe learned (state, expectations, sizes).
    Gcp(GcpObs),
    /// A logs probe's match totals.
    Logs(LogsObs),
    /// A postgres probe's read of the server's connections (`connections: true`).
    PgConnections(super::pg_connections::PgConnections),
    /// Values of the gauges the kind declares ([`super::ProbeKind::GAUGES`]), by name.
    Gauges(Vec<(&'static str, f64)>),
}

/// A run's observations, at most one of each variant (a later one replaces an earlier).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observations(Vec<Observation>);

impl Observations {
    /// Records `obs`, replacing an earlier observation of the same variant.
    pub fn set(&mut self, obs: Observation) {
        let same = std::mem::discriminant(&obs);
        match self
            .0
            .iter_mut()
            .find(|o| std::mem::discriminant(*o) == same)
        {
            Some(slot) => *slot = obs,
            None => self.0.push(obs),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &Observation> {
        self.0.iter()
    }

    pub fn http_status(&self) -> Option<u16> {
        self.iter().find_map(|o| match o {
            Observation::HttpStatus(code) => Some(*code),
            _ => None,
        })
    }

    pub fn golden(&self) -> Option<&GoldenObs> {
        self.iter().find_map(|o| match o {
            Observation::Golden(g) => Some(g),
            _ => None,
        })
    }

    pub fn golden_mut(&mut self) -> Option<&mut GoldenObs> {
        self.0.iter_mut().find_map(|o| match o {
            Observation::Golden(g) => Some(g),
            _ => None,
        })
    }

    pub fn pg_connections(&self) -> Option<&super::pg_connections::PgConnections> {
        self.iter().find_map(|o| match o {
            Observation::PgConnections(c) => Some(c),
            _ => None,
        })
    }

    pub fn startup(&self) -> Option<&StartupObs> {
        self.iter().find_map(|o| match o {
            Observation::Startup(s) => Some(s),
            _ => None,
        })
    }

    pub fn state(&self) -> Option<&str> {
        self.iter().find_map(|o| match o {
            Observation::State(s) => Some(s.as_str()),
            _ => None,
        })
    }

    pub fn gcp(&self) -> Option<&GcpObs> {
        self.iter().find_map(|o| match o {
            Observation::Gcp(g) => Some(g),
            _ => None,
        })
    }

    /// The value the run reported for the declared gauge `name`.
    pub fn gauge(&self, name: &str) -> Option<f64> {
        self.iter().find_map(|o| match o {
            Observation::Gauges(g) => g.iter().find(|(n, _)| *n == name).map(|(_, v)| *v),
            _ => None,
        })
    }

    pub fn logs(&self) -> Option<&LogsObs> {
        self.iter().find_map(|o| match o {
            Observation::Logs(l) => Some(l),
            _ => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_observation_replaces_one_of_its_variant_only() {
        let mut obs = Observations::default();
        obs.set(Observation::HttpStatus(503));
        obs.set(Observation::State("ERROR".into()));
        obs.set(Observation::HttpStatus(200));
        assert_eq!(obs.http_status(), Some(200));
        assert_eq!(obs.state(), Some("ERROR"));
        assert_eq!(obs.iter().count(), 2);
        assert_eq!(obs.golden(), None);
    }
}
