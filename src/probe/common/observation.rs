//! What a run saw besides its outcome and phase timings: one [`Observation`] per thing a
//! kind reports, carried from the probe (through its [`crate::probe::Trace`], so a run cut short at
//! its timeout keeps what it saw) to the [`crate::probe::RunResult`] that metrics, incidents and the
//! status page read. A kind reports its own numbers as [`Observation::Samples`] of the
//! families it declares ([`crate::probe::ProbeKind::FAMILIES`]) and needs no variant here.

use crate::probe::common::kind::Sample;

/// One thing a run observed.
#[derive(Clone, Debug, PartialEq)]
pub enum Observation {
    /// A resource state the target reported (READY, RUNNABLE, ...): root-cause lines and
    /// `state:` criteria read it.
    State(String),
    /// Values of the families the kind declares ([`crate::probe::ProbeKind::FAMILIES`]): the
    /// exporter, `/probe` and the incident engine read them without knowing the kind.
    Samples(Vec<Sample>),
}

/// A run's observations, at most one of each variant (a later one replaces an earlier: a
/// kind's report of its samples is whole).
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

    pub(crate) fn state(&self) -> Option<&str> {
        self.iter().find_map(|o| match o {
            Observation::State(s) => Some(s.as_str()),
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_later_observation_replaces_one_of_its_variant_only() {
        let sample = |family, value| Sample {
            family,
            labels: Vec::new(),
            value,
        };
        let mut obs = Observations::default();
        obs.set(Observation::Samples(vec![sample("status", 503.0)]));
        obs.set(Observation::State("ERROR".into()));
        obs.set(Observation::Samples(vec![sample("status", 200.0)]));
        assert_eq!(obs.value("status"), Some(200.0));
        assert_eq!(obs.state(), Some("ERROR"));
        assert_eq!(obs.iter().count(), 2);
    }
}
