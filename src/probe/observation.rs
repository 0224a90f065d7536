//! What a run saw besides its outcome and phase timings: one [`Observation`] per thing a
//! kind reports, carried from the probe (through its [`super::Trace`], so a run cut short at
//! its timeout keeps what it saw) to the [`super::RunResult`] that metrics, incidents and the
//! status page read. A kind reports its own numbers as [`Observation::Samples`] of the
//! families it declares ([`super::ProbeKind::FAMILIES`]) and needs no variant here.

use super::gcp::GcpObs;
use super::golden::GoldenObs;
use super::kind::Sample;

/// One thing a run observed.
#[derive(Clone, Debug, PartialEq)]
pub enum Observation {
    /// The HTTP status of the last response seen (http, startup): `pathwatch_http_status_code`.
    HttpStatus(u16),
    /// A golden path's events so far.
    Golden(GoldenObs),
    /// A resource state the target reported (READY, RUNNABLE, ...): root-cause lines and
    /// `state:` criteria read it.
    State(String),
    /// What a GCP probe learned (state, expectations, sizes).
    Gcp(GcpObs),
    /// A postgres probe's read of the server's connections (`connections: true`).
    PgConnections(super::pg_connections::PgConnections),
    /// Values of the families the kind declares ([`super::ProbeKind::FAMILIES`]): the
    /// exporter, `/probe` and the incident engine read them without knowing the kind.
    Samples(Vec<Sample>),
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

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Observation> {
        self.0.iter()
    }

    pub(crate) fn http_status(&self) -> Option<u16> {
        self.iter().find_map(|o| match o {
            Observation::HttpStatus(code) => Some(*code),
            _ => None,
        })
    }

    pub(crate) fn golden(&self) -> Option<&GoldenObs> {
        self.iter().find_map(|o| match o {
            Observation::Golden(g) => Some(g),
            _ => None,
        })
    }

    #[cfg(test)]
    pub(crate) fn golden_mut(&mut self) -> Option<&mut GoldenObs> {
        self.0.iter_mut().find_map(|o| match o {
            Observation::Golden(g) => Some(g),
            _ => None,
        })
    }

    pub(crate) fn pg_connections(&self) -> Option<&super::pg_connections::PgConnections> {
        self.iter().find_map(|o| match o {
            Observation::PgConnections(c) => Some(c),
            _ => None,
        })
    }

    pub(crate) fn state(&self) -> Option<&str> {
        self.iter().find_map(|o| match o {
            Observation::State(s) => Some(s.as_str()),
            _ => None,
        })
    }

    pub(crate) fn gcp(&self) -> Option<&GcpObs> {
        self.iter().find_map(|o| match o {
            Observation::Gcp(g) => Some(g),
            _ => None,
        })
    }

    /// The samples of the kind's declared families the run reported (none when it
    /// reported none).
    pub(crate) fn samples(&self) -> &[Sample] {
        self.iter()
            .find_map(|o| match o {
                Observation::Samples(s) => Some(s.as_slice()),
                _ => None,
            })
            .unwrap_or(&[])
    }

    /// The value the run reported for the declared family `name` (its first sample).
    pub(crate) fn value(&self, name: &str) -> Option<f64> {
        self.samples()
            .iter()
            .find(|s| s.family == name)
            .map(|s| s.value)
    }

    #[cfg(test)]
    /// [`Observations::value`] under its former name (src/demo.rs's test reads a tls_cert
    /// expiry with it).
    pub(crate) fn gauge(&self, name: &str) -> Option<f64> {
        self.value(name)
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
