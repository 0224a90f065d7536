//! One timetable over every probe: a binary heap of (slot, probe) and one timer, instead of
//! a task and a timer per probe. A waiting probe costs its heap entry (24 bytes) and its
//! interval (16 bytes); a task per probe cost about 600 bytes (bench/heap_profile.py), 60 MB
//! at 100,000 probes. Shortly before a slot comes ([`LEAD`]) the run is spawned as a task of
//! its own on the multi-thread runtime, which waits for the slot on its own timer, so runs
//! proceed in parallel and a late timetable does not make them late; the timetable only
//! pops slots, spawns and pushes the next slot when a run ends (a few microseconds each at
//! 1,667 runs a second).
//!
//! Per probe: the first run `delay` after the start, then on the probe's grid, `phase` after
//! the start plus multiples of `interval` (no drift), each run at the first grid slot after
//! the previous slot (never more than an interval later: a probe runs at least once an
//! interval, as before). The first run comes soon (a fresh replica knows within seconds);
//! the grid spreads the runs over the whole interval, as Prometheus spreads its targets over
//! the scrape interval (100,000 probes every 60 s first ran within the same 10 s of every
//! minute: six times the load of an even spread in those seconds, and idle the rest). A run
//! longer than the interval delays the next one to its end (runs of one probe never overlap,
//! since its next slot is pushed only when its run ends), and the grid takes it back after;
//! a run returning `Some(d)` is followed by the next one `d` after it ends; cancelling the
//! token drops the runs in flight, and the timetable returns only once they have stopped (a
//! reload starts the new generation after the old one is gone).

use super::later;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// One probe's place in the timetable.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Entry {
    /// From the timetable's start to the probe's first run.
    pub(crate) delay: Duration,
    pub(crate) interval: Duration,
    /// From the timetable's start to the probe's grid (below `interval`; the runs after the
    /// first are on it).
    pub(crate) phase: Duration,
}

/// How long before its slot a run's task is spawned; it then waits for the slot on its own
/// timer. The timetable is then off the path from a slot to its run: its own wake-ups may
/// be this late (a busy runtime, 10,000 first runs a second) without making a run late.
/// Spawned at the slot, a run waited in the run queue twice (the timetable's wake-up, then
/// its own): side by side at 100,000 probes on a loaded machine, p50 lateness 13 s against
/// 3.5 s for a task per probe. Costs the tasks of the next second's runs (~1,700 at 100,000
/// probes every 60 s, a few MB).
const LEAD: Duration = Duration::from_secs(1);

/// A probe's next slot; the heap is a min-heap on it (ties: the lower index first).
type Slot = Reverse<(Instant, usize)>;

/// What a run task hands back: the probe, the slot it ran for, and the sooner next run it
/// asked for.
type Done = (usize, Instant, Option<Duration>);

/// Calls `run(i, lateness)` for each probe `i` of `entries` on its own schedule (see the
/// module docs) until `token` is cancelled. Each call's future runs as a task of its own;
/// `lateness` is how late that task woke against its slot (timer and runtime together, for
/// the lateness histogram).
pub(crate) async fn run_timetable<F, Fut>(entries: Vec<Entry>, token: CancellationToken, run: F)
where
    F: Fn(usize, Duration) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<Duration>> + Send + 'static,
{
    let run = Arc::new(run);
    let start = Instant::now();
    let mut heap: BinaryHeap<Slot> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| Reverse((later(start, e.delay), i)))
        .collect();
    // What a waiting probe keeps besides its slot: its grid.
    let grids: Vec<(Duration, Duration)> =
        entries.into_iter().map(|e| (e.interval, e.phase)).collect();
    let mut runs: JoinSet<Done> = JoinSet::new();
    let sleep = tokio::time::sleep_until(start);
    tokio::pin!(sleep);
    loop {
        let horizon = later(Instant::now(), LEAD);
        while let Some(&Reverse((slot, i))) = heap.peek() {
            if slot > horizon {
                break;
            }
            heap.pop();
            runs.spawn(one_run(run.clone(), i, slot));
        }
        if let Some(&Reverse((slot, _))) = heap.peek() {
            let wake = slot.checked_sub(LEAD).unwrap_or(slot);
            if sleep.deadline() != wake {
                sleep.as_mut().reset(wake);
            }
        }
        tokio::select! {
            biased;
            () = token.cancelled() => break,
            Some(done) = runs.join_next(), if !runs.is_empty() => {
                // Every run that has ended since, in one pass: one wake-up for a burst.
                let mut next = Some(done);
                while let Some(done) = next {
                    if let Ok((i, slot, sooner)) = done {
                        let (interval, phase) = grids.get(i).copied().unwrap_or((Duration::MAX, Duration::ZERO));
                        let grid = later(start, phase);
                        heap.push(Reverse((next_slot(grid, slot, interval, sooner), i)));
                    }
                    next = runs.try_join_next();
                }
            }
            () = &mut sleep, if !heap.is_empty() => {}
        }
    }
    // Drop the runs in flight and wait until they are gone: none records into a state the
    // next generation has already reconfigured.
    runs.abort_all();
    while runs.join_next().await.is_some() {}
}

/// One run as its own task, from up to [`LEAD`] before its slot. A panic (outside the probe, whose panics `run_once` already
/// turns into a failed run) still hands the probe back, so its schedule goes on.
async fn one_run<F, Fut>(run: Arc<F>, i: usize, slot: Instant) -> Done
where
    F: Fn(usize, Duration) -> Fut,
    Fut: Future<Output = Option<Duration>>,
{
    use futures_util::FutureExt;
    tokio::time::sleep_until(slot).await;
    let lateness = Instant::now().saturating_duration_since(slot);
    // The call inside the guarded future: a panic building the run is caught too.
    let sooner = std::panic::AssertUnwindSafe(async move { run(i, lateness).await })
        .catch_unwind()
        .await
        .unwrap_or(None);
    (i, slot, sooner)
}

/// The slot after a run for `slot` that ended now: `sooner` after now when the run asked for
/// it, else the first slot of the grid (`grid` plus multiples of `interval`) after `slot` (at
/// most an interval later), or now when the run took longer than that.
fn next_slot(
    grid: Instant,
    slot: Instant,
    interval: Duration,
    sooner: Option<Duration>,
) -> Instant {
    let now = Instant::now();
    if let Some(after) = sooner {
        return later(now, after);
    }
    let Some(behind) = slot.checked_duration_since(grid) else {
        return grid.max(now);
    };
    // Whole intervals from the grid's origin to the first slot after `slot`.
    let steps = behind.as_nanos() / interval.as_nanos().max(1) + 1;
    let step = u32::try_from(steps)
        .ok()
        .and_then(|n| interval.checked_mul(n));
    step.map_or(later(slot, interval), |d| later(grid, d))
        .max(now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// (probe, start, end) of each run, relative to the test's start.
    type RunLog = Arc<Mutex<Vec<(usize, Duration, Duration)>>>;

    /// A probe whose grid starts at its first run (every run an interval after the last).
    fn entry(delay_ms: u64, interval_s: u64) -> Entry {
        on_grid(delay_ms, interval_s, delay_ms % (interval_s * 1000))
    }

    fn on_grid(delay_ms: u64, interval_s: u64, phase_ms: u64) -> Entry {
        Entry {
            delay: Duration::from_millis(delay_ms),
            interval: Duration::from_secs(interval_s),
            phase: Duration::from_millis(phase_ms),
        }
    }

    /// Runs a timetable for `secs` of paused time; each run of probe `i` takes `takes[i]`
    /// seconds and asks for `sooner(i, n)` on its n-th run (from 1). Every run started, in
    /// order of start.
    async fn play(
        entries: Vec<Entry>,
        takes: &'static [u64],
        sooner: fn(usize, usize) -> Option<Duration>,
        secs: u64,
    ) -> Vec<(usize, Duration, Duration)> {
        let log: RunLog = Arc::default();
        let counts: Arc<Mutex<Vec<usize>>> = Arc::new(Mutex::new(vec![0; entries.len()]));
        let t0 = Instant::now();
        let token = CancellationToken::new();
        let l = log.clone();
        let task = tokio::spawn(run_timetable(entries, token.clone(), move |i, _| {
            let (l, counts) = (l.clone(), counts.clone());
            async move {
                let n = {
                    let mut c = counts.lock().unwrap();
                    c[i] += 1;
                    c[i]
                };
                // Logged as it starts (a run still going at the end has end MAX).
                let at = {
                    let mut l = l.lock().unwrap();
                    l.push((i, t0.elapsed(), Duration::MAX));
                    l.len() - 1
                };
                tokio::time::sleep(Duration::from_secs(takes[i])).await;
                l.lock().unwrap()[at].2 = t0.elapsed();
                sooner(i, n)
            }
        }));
        tokio::time::sleep(Duration::from_secs(secs)).await;
        token.cancel();
        task.await.unwrap();
        log.lock().unwrap().clone()
    }

    fn starts_ms(runs: &[(usize, Duration, Duration)], probe: usize) -> Vec<u128> {
        runs.iter()
            .filter(|r| r.0 == probe)
            .map(|r| r.1.as_millis())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn runs_at_the_offset_then_every_interval_without_drift() {
        // Each run takes 2 s: the next one still starts on its slot.
        let runs = play(vec![entry(700, 30)], &[2], |_, _| None, 95).await;
        assert_eq!(starts_ms(&runs, 0), [700, 30_700, 60_700, 90_700]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_longer_than_the_interval_delays_the_next_and_never_overlaps() {
        let runs = play(vec![entry(0, 10)], &[25], |_, _| None, 80).await;
        assert_eq!(starts_ms(&runs, 0), [0, 25_000, 50_000, 75_000], "{runs:?}");
        for pair in runs.windows(2) {
            assert!(pair[1].1 >= pair[0].2, "runs overlap: {runs:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_can_ask_to_poll_sooner_then_the_grid_resumes() {
        let runs = play(
            vec![entry(0, 30)],
            &[0],
            |_, n| (n <= 3).then_some(Duration::from_secs(1)),
            70,
        )
        .await;
        let starts: Vec<u128> = starts_ms(&runs, 0).iter().map(|ms| ms / 1000).collect();
        // Back on its grid (0, 30, 60): the first slot after 3.
        assert_eq!(starts, [0, 1, 2, 3, 30, 60]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_first_run_comes_soon_then_the_runs_keep_to_the_grid() {
        // First at 2 s, grid at 45 s + 60 s multiples: the second run 43 s after the first,
        // then every 60 s.
        let runs = play(vec![on_grid(2_000, 60, 45_000)], &[1], |_, _| None, 170).await;
        assert_eq!(starts_ms(&runs, 0), [2_000, 45_000, 105_000, 165_000]);
        // A grid slot soon after the first run is kept: never more than an interval between
        // two runs.
        let runs = play(vec![on_grid(5_000, 60, 7_000)], &[1], |_, _| None, 140).await;
        assert_eq!(starts_ms(&runs, 0), [5_000, 7_000, 67_000, 127_000]);
    }

    #[tokio::test(start_paused = true)]
    async fn probes_spread_over_the_whole_interval_after_their_first_runs() {
        // 600 probes every 60 s: first runs within 10 s, then 100 of them in each 10 s of the
        // minute (their phases are spread evenly, as the runner spreads names).
        let entries: Vec<Entry> = (0..600u64)
            .map(|i| on_grid(i * 10_000 / 600, 60, i * 100))
            .collect();
        let runs = play(entries, &[0; 600], |_, _| None, 185).await;
        let mut per_tenth = [0usize; 6];
        for r in runs
            .iter()
            .filter(|r| r.1 >= Duration::from_secs(120) && r.1 < Duration::from_secs(180))
        {
            per_tenth[(r.1.as_secs() % 60 / 10) as usize] += 1;
        }
        assert_eq!(per_tenth, [100; 6], "{per_tenth:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn each_probe_keeps_its_own_grid_whatever_the_others_do() {
        // Probe 0 runs 25 s at a 10 s interval; probe 1 runs 1 s every 3 s from 500 ms; probe
        // 2 polls every second (a startup probe). No probe waits for another's run.
        let runs = play(
            vec![entry(0, 10), entry(500, 3), entry(200, 30)],
            &[25, 1, 0],
            |i, _| (i == 2).then_some(Duration::from_secs(1)),
            20,
        )
        .await;
        assert_eq!(starts_ms(&runs, 0), [0], "{runs:?}");
        let one: Vec<u128> = (0..7).map(|k| 500 + 3000 * k).collect();
        assert_eq!(starts_ms(&runs, 1), one, "{runs:?}");
        let two: Vec<u128> = (0..20).map(|k| 200 + 1000 * k).collect();
        assert_eq!(starts_ms(&runs, 2), two, "{runs:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn probes_with_the_same_slot_run_at_once() {
        // 1,000 probes on one slot, each run 1 s: together, not one after another.
        let log: RunLog = Arc::default();
        let t0 = Instant::now();
        let token = CancellationToken::new();
        let l = log.clone();
        let task = tokio::spawn(run_timetable(
            vec![entry(0, 60); 1000],
            token.clone(),
            move |i, lateness| {
                let l = l.clone();
                async move {
                    let start = t0.elapsed();
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    l.lock().unwrap().push((i, start, lateness));
                    None
                }
            },
        ));
        tokio::time::sleep(Duration::from_secs(5)).await;
        token.cancel();
        task.await.unwrap();
        let runs = log.lock().unwrap().clone();
        assert_eq!(runs.len(), 1000);
        assert!(
            runs.iter().all(|r| r.1 == Duration::ZERO),
            "all start on the slot"
        );
        assert!(
            runs.iter().all(|r| r.2 == Duration::ZERO),
            "lateness against the slot"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_drops_the_runs_in_flight_before_it_returns() {
        /// Set when the run's future is dropped, finished or not.
        struct Dropped(Arc<Mutex<usize>>);
        impl Drop for Dropped {
            fn drop(&mut self) {
                *self.0.lock().unwrap() += 1;
            }
        }
        let token = CancellationToken::new();
        let finished = Arc::new(Mutex::new(false));
        let dropped = Arc::new(Mutex::new(0));
        let (f, d) = (finished.clone(), dropped.clone());
        let task = tokio::spawn(run_timetable(
            vec![entry(0, 30), entry(1000, 30)],
            token.clone(),
            move |_, _| {
                let (f, guard) = (f.clone(), Dropped(d.clone()));
                async move {
                    let _guard = guard;
                    tokio::time::sleep(Duration::from_secs(75)).await;
                    *f.lock().unwrap() = true;
                    None
                }
            },
        ));
        tokio::time::sleep(Duration::from_secs(5)).await;
        token.cancel();
        task.await.unwrap();
        assert!(!*finished.lock().unwrap());
        assert_eq!(
            *dropped.lock().unwrap(),
            2,
            "both runs gone when it returns"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_that_panics_keeps_its_schedule() {
        let runs: Arc<Mutex<Vec<u64>>> = Arc::default();
        let (r, t0) = (runs.clone(), Instant::now());
        let token = CancellationToken::new();
        let task = tokio::spawn(run_timetable(
            vec![entry(0, 10)],
            token.clone(),
            move |_, _| {
                let r = r.clone();
                async move {
                    r.lock().unwrap().push(t0.elapsed().as_secs());
                    assert!(r.lock().unwrap().len() != 1, "a bug outside the probe");
                    None
                }
            },
        ));
        tokio::time::sleep(Duration::from_secs(25)).await;
        token.cancel();
        task.await.expect("the timetable did not panic");
        assert_eq!(*runs.lock().unwrap(), [0, 10, 20]);
    }

    #[tokio::test(start_paused = true)]
    async fn no_delay_or_interval_overflows_the_clock() {
        // Config bounds keep intervals to a week; the timetable must not panic past them.
        let token = CancellationToken::new();
        let runs = Arc::new(Mutex::new(0));
        let r = runs.clone();
        let task = tokio::spawn(run_timetable(
            vec![
                Entry {
                    delay: Duration::ZERO,
                    interval: Duration::MAX,
                    phase: Duration::MAX,
                },
                Entry {
                    delay: Duration::MAX,
                    interval: Duration::MAX,
                    phase: Duration::MAX,
                },
            ],
            token.clone(),
            move |_, _| {
                *r.lock().unwrap() += 1;
                async { Some(Duration::MAX) }
            },
        ));
        tokio::time::sleep(Duration::from_secs(3600)).await;
        token.cancel();
        task.await.expect("the timetable did not panic");
        assert_eq!(*runs.lock().unwrap(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn no_probes_wait_for_the_token() {
        let token = CancellationToken::new();
        let task = tokio::spawn(run_timetable(Vec::new(), token.clone(), |_, _| async {
            None
        }));
        tokio::time::sleep(Duration::from_secs(60)).await;
        assert!(!task.is_finished());
        token.cancel();
        task.await.expect("ended with its token");
    }

    #[test]
    fn a_waiting_probe_costs_its_slot_and_its_entry() {
        // 100,000 probes: every 10 bytes here are 1 MB.
        let per_probe = std::mem::size_of::<Slot>() + std::mem::size_of::<Duration>();
        assert!(per_probe <= 40, "{per_probe} bytes a probe");
    }
}
