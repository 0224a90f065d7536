//! The sessions of one run: their progress merged into the run's trace as they go (so a
//! timeout reports what every session saw, with the most telling explanation), and the check
//! that no two sessions took the same run for theirs.

use super::GoldenObs;
use crate::probe::Observation;
use crate::probe::{Reason, Trace};
use std::sync::Mutex;

/// A session's events so far, and why it is not done yet (None once done).
type Progress = (GoldenObs, Option<(Reason, String)>);

/// The sessions of one run, as they progress: their events merged into the run's trace, and
/// the most telling explanation among them kept current for a timeout. A session reports
/// once logged in (a run that fails before has no golden-path observation, as before).
pub(crate) struct Board<'t> {
    trace: &'t Trace,
    sessions: Mutex<Vec<Option<Progress>>>,
}

impl<'t> Board<'t> {
    pub(crate) fn new(trace: &'t Trace, sessions: u32) -> Self {
        Board {
            trace,
            sessions: Mutex::new(vec![None; sessions as usize]),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Option<Progress>>> {
        // A poisoned lock only means a session panicked mid-update; the data is still usable.
        self.sessions
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Session `n` (1-based) saw `obs`; `why` explains why it is not done (None once done).
    pub(crate) fn update(&self, n: u32, obs: GoldenObs, why: Option<(Reason, String)>) {
        let mut sessions = self.lock();
        if let Some(slot) = sessions.get_mut(n as usize - 1) {
            *slot = Some((obs, why));
        }
        self.publish(&sessions);
    }

    fn publish(&self, sessions: &[Option<Progress>]) {
        if let Some(m) = merge(sessions) {
            self.trace.observe(Observation::Samples(m.samples()));
        }
        self.trace.set_explanation(self.explanation(sessions));
    }

    /// The sessions' events merged, once one has reported.
    pub(super) fn merged(&self) -> Option<GoldenObs> {
        merge(&self.lock())
    }

    /// The explanation that tells most: crosstalk, then unexpected events, then the rest;
    /// named by session when there are several.
    fn explanation(&self, sessions: &[Option<Progress>]) -> Option<(Reason, String)> {
        let rank = |r: Reason| match r {
            Reason::Crosstalk => 0,
            Reason::UnexpectedEvents => 1,
            _ => 2,
        };
        let (n, (reason, why)) = sessions
            .iter()
            .enumerate()
            .filter_map(|(i, p)| Some((i + 1, p.as_ref()?.1.as_ref()?)))
            .min_by_key(|(_, (r, _))| rank(*r))?;
        Some(if sessions.len() > 1 {
            (*reason, format!("session {n}: {why}"))
        } else {
            (*reason, why.clone())
        })
    }
}

/// The sessions' events merged: an event counts for the run only when every session saw it.
fn merge(sessions: &[Option<Progress>]) -> Option<GoldenObs> {
    let mut merged: Option<GoldenObs> = None;
    for (obs, _) in sessions.iter().flatten() {
        match &mut merged {
            Some(m) => m.merge(obs),
            None => merged = Some(obs.clone()),
        }
    }
    merged
}

/// How one session ended when it got every event.
pub(crate) struct SessionEnd {
    /// The thread its run was bound to (`bind_first`), if any event named one.
    pub(crate) bound: Option<String>,
    pub(crate) delivered: u64,
    /// Why events of other runs arrived too, if any did.
    pub(crate) crosstalk: Option<String>,
}

/// Two sessions bound to the same thread: (first, second, thread, the second's events).
pub(crate) fn shared_run(ends: &[(usize, SessionEnd)]) -> Option<(usize, usize, String, u64)> {
    for (i, (a, ea)) in ends.iter().enumerate() {
        for (b, eb) in &ends[i + 1..] {
            if let (Some(x), Some(y)) = (&ea.bound, &eb.bound)
                && x == y
            {
                return Some((*a, *b, x.clone(), eb.delivered));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn end(bound: Option<&str>, delivered: u64) -> SessionEnd {
        SessionEnd {
            bound: bound.map(str::to_string),
            delivered,
            crosstalk: None,
        }
    }

    #[test]
    fn two_sessions_bound_to_one_run_are_found() {
        let ends = vec![
            (1, end(Some("thread-a"), 5)),
            (2, end(None, 5)),
            (3, end(Some("thread-b"), 5)),
        ];
        assert_eq!(shared_run(&ends), None);
        let ends = vec![
            (1, end(Some("thread-a"), 5)),
            (2, end(Some("thread-b"), 5)),
            (3, end(Some("thread-a"), 4)),
        ];
        assert_eq!(shared_run(&ends), Some((1, 3, "thread-a".into(), 4)));
    }

    #[test]
    fn the_run_reports_every_session_and_the_most_telling_explanation() {
        let trace = Trace::default();
        let board = Board::new(&trace, 2);
        let delivered = || trace.observations().value(super::super::DELIVERED.name);
        assert_eq!(delivered(), None, "nothing before a session reports");
        let obs = |seen: bool| GoldenObs {
            expected: vec!["a".into()],
            arrived: vec![seen.then(|| std::time::Duration::from_millis(5))],
            ..GoldenObs::default()
        };
        board.update(1, obs(true), Some((Reason::Timeout, "1/1".into())));
        board.update(
            2,
            obs(false),
            Some((Reason::Crosstalk, "3 events of another run".into())),
        );
        assert_eq!(
            trace.explanation(),
            Some((
                Reason::Crosstalk,
                "session 2: 3 events of another run".into()
            ))
        );
        // An event counts for the run only when every session saw it.
        assert_eq!(delivered(), Some(0.0));
        board.update(2, obs(true), None);
        assert_eq!(
            trace.explanation(),
            Some((Reason::Timeout, "session 1: 1/1".into()))
        );
        assert_eq!(delivered(), Some(1.0));
    }
}
