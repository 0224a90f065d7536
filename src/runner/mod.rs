//! The scheduler: one timetable over all probes ([`timetable`]), each run a task of its own,
//! bounded by the probe's timeout and isolated from panics, its result handed to [`State`].
//! Shutdown is one token; in-flight runs are cancelled with it.

use crate::config::ProbeConfig;
use crate::core::clock::unix_now;
use crate::probe::{Outcome, ProbeError, Reason, RunResult, Trace};
use crate::store::State;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

mod timetable;
pub(crate) use timetable::{Entry, run_timetable};

/// First runs are spread over at most this much time (less for shorter intervals).
pub(crate) const MAX_SPREAD: Duration = Duration::from_secs(10);

/// The grid's phases are whole steps of this: the runs of one step wake the runtime once.
/// At 100,000 probes every 60 s (bench/schedule_at_scale.py), slots each their own (1,700
/// a second) cost 0.19 core, 10 ms steps 0.12, the same runs bunched in the first 10 s of
/// every minute 0.11.
const GRID_STEP: Duration = Duration::from_millis(10);

/// Runs a probe once within its timeout. A panic in the probe becomes a failed run with
/// reason `panic` rather than the end of the scheduler.
pub(crate) async fn run_once(probe: Arc<ProbeConfig>) -> RunResult {
    let trace = Trace::default();
    let start = Instant::now();
    // One span per run; the probe's phases become its children (see Trace::enter).
    let span = tracing::info_span!(
        "probe run",
        otel.name = %format!("probe {}", probe.name),
        probe = %probe.name,
        kind = %probe.spec.kind(),
        result = tracing::field::Empty,
        reason = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    // The probe runs inline, not as a task of its own: a spawned task's hand-off back to
    // this one added about 0.05 ms to every measured duration (bench/pg_baseline.py). Boxed
    // (`BuiltProbe::run` boxes each kind's future at its own size), so a run's task stays
    // small: inline in what was each probe's scheduling task, the
    // largest kind's future (~26 KB) cost 10,000 probes 250 MiB (bench/memory_and_scrape.py).
    let run = tracing::Instrument::instrument(guarded(probe.built.run(&trace)), span.clone());
    let outcome = match tokio::time::timeout(probe.timeout, run).await {
        Ok(out) => out,
        Err(_) => {
            let mut detail = format!(
                "no answer within {}",
                humantime::format_duration(probe.timeout)
            );
            if let Some(p) = trace.current() {
                detail.push_str(&format!(" (stopped in phase {p})"));
            }
            // The probe's own account of what it saw, when it has one: its reason replaces
            // the bare `timeout` (events that arrived but did not count are not a slow server).
            let (reason, why) = trace
                .explanation()
                .unwrap_or((Reason::Timeout, String::new()));
            if !why.is_empty() {
                detail.push_str(": ");
                detail.push_str(&why);
            }
            Err(ProbeError::new(reason, detail))
        }
    };
    let duration = start.elapsed();
    let failed_phase = if outcome.is_err() {
        trace.current()
    } else {
        None
    };
    match &outcome {
        Ok(_) => {
            span.record("result", "success");
        }
        Err(e) => {
            span.record("result", "failure");
            span.record("reason", e.reason.as_str());
            span.record("otel.status_code", "ERROR");
            trace.fail_current(e.reason);
        }
    }
    let trace_id = {
        use opentelemetry::trace::TraceContextExt as _;
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        let cx = span.context();
        let sc = cx.span().span_context().clone();
        sc.is_valid().then(|| sc.trace_id().to_string())
    };
    RunResult {
        finished_unix_seconds: unix_now(),
        duration,
        phases: trace.completed(),
        failed_phase,
        observations: trace.observations(),
        next_run: trace.next_run(),
        trace_id,
        lateness: None,
        outcome,
    }
}

/// A probe's future with its panics turned into a failed run (the panic hook has already
/// logged the message). Probes hold no state across runs, so nothing is left half-updated.
async fn guarded(
    run: impl std::future::Future<Output = Result<Outcome, ProbeError>>,
) -> Result<Outcome, ProbeError> {
    use futures_util::FutureExt;
    std::panic::AssertUnwindSafe(run)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| {
            Err(ProbeError::new(
                Reason::Panic,
                "the probe panicked (a bug in pathwatch; the logs have the panic message)",
            ))
        })
}

/// A stable fraction in [0, 1) from a probe's name (FNV-1a), so first runs spread evenly
/// and the same probe keeps its slot across restarts.
fn spread_fraction(name: &str) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // FNV alone leaves short, similar names (db-1, db-2) close together: finish with
    // MurmurHash3's fmix64 so every bit depends on every input byte.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^= h >> 33;
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// A probe's place in the timetable, from one hash of its name: its first run a stable
/// slot within min(interval, [`MAX_SPREAD`]), and its grid the same fraction of the whole
/// interval, so the probes of a replica spread over all of it (for intervals up to
/// [`MAX_SPREAD`], the grid is the first run's slot within [`GRID_STEP`]).
pub(crate) fn place(name: &str, interval: Duration) -> Entry {
    let fraction = spread_fraction(name);
    let phase = interval.mul_f64(fraction);
    let steps = phase.as_nanos() / GRID_STEP.as_nanos();
    Entry {
        delay: interval.min(MAX_SPREAD).mul_f64(fraction),
        interval,
        phase: u32::try_from(steps)
            .ok()
            .and_then(|n| GRID_STEP.checked_mul(n))
            .unwrap_or(phase),
    }
}

/// Starts every probe on one timetable ([`timetable`]: one task and one timer for all of
/// them, each run a task of its own while it runs); they stop when `token` is cancelled.
/// The set's task ends once the runs in flight are gone.
pub(crate) fn spawn_all(
    probes: &[Arc<ProbeConfig>],
    state: Arc<State>,
    token: CancellationToken,
) -> JoinSet<()> {
    let entries = probes.iter().map(|p| place(&p.name, p.interval)).collect();
    // The config's own copies, shared: a copy per probe cost ~230 B.
    let probes = probes.to_vec();
    let mut set = JoinSet::new();
    set.spawn(run_timetable(entries, token, move |i, lateness| {
        let (probe, state) = (probes.get(i).cloned(), state.clone());
        async move {
            let probe = probe?;
            let mut run = run_once(probe.clone()).await;
            run.lateness = Some(lateness);
            // A probe asking to run again sooner (startup polling) still waits the shortest
            // interval the config allows: never a hot loop against the target.
            let next = run.next_run.map(|d| d.max(crate::config::INTERVAL_RANGE.0));
            state.record(&probe, run);
            next
        }
    }));
    set
}

/// `d` after `from`, checked: an Instant past the clock's range panics. Config bounds keep
/// intervals to a week; a week is the fallback if arithmetic ever overflows anyway.
fn later(from: Instant, d: Duration) -> Instant {
    from.checked_add(d)
        .or_else(|| from.checked_add(Duration::from_secs(7 * 24 * 3600)))
        .unwrap_or(from)
}

/// One task's schedule (the incident evaluator's; the probes share [`run_timetable`], which
/// keeps these semantics per probe). Calls `run` after `delay`, then every `interval` from
/// that first slot (no drift), until
/// `token` is cancelled, which also drops a run in flight. A run longer than the interval
/// delays the next one (runs of one probe never overlap) and the grid moves with it. A run
/// that returns `Some(d)` is followed by the next one `d` after it ends. `run` gets how late
/// it was woken against its slot (the scheduler's own delay, for the lateness histogram).
pub(crate) async fn schedule<F, Fut>(
    delay: Duration,
    interval: Duration,
    token: CancellationToken,
    mut run: F,
) where
    F: FnMut(Duration) -> Fut,
    Fut: std::future::Future<Output = Option<Duration>>,
{
    let mut slot = later(Instant::now(), delay);
    loop {
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep_until(slot) => {}
        }
        let lateness = Instant::now().saturating_duration_since(slot);
        let sooner = tokio::select! {
            () = token.cancelled() => return,
            next = run(lateness) => next,
        };
        let now = Instant::now();
        slot = match sooner {
            Some(after) => later(now, after),
            None => later(slot, interval).max(now),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// (start, end) of each run, relative to the test's start.
    type RunLog = Arc<Mutex<Vec<(Duration, Duration)>>>;

    fn recorder() -> (RunLog, Instant) {
        (Arc::new(Mutex::new(Vec::new())), Instant::now())
    }

    #[tokio::test(start_paused = true)]
    async fn runs_at_the_offset_then_every_interval_without_drift() {
        let (log, t0) = recorder();
        let token = CancellationToken::new();
        let l = log.clone();
        let task = tokio::spawn(schedule(
            Duration::from_millis(700),
            Duration::from_secs(30),
            token.clone(),
            move |_| {
                let l = l.clone();
                async move {
                    let start = t0.elapsed();
                    // Each run takes 2 s: the next one still starts on its slot.
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    l.lock().unwrap().push((start, t0.elapsed()));
                    None
                }
            },
        ));
        tokio::time::sleep(Duration::from_secs(95)).await;
        token.cancel();
        task.await.unwrap();
        let starts: Vec<u128> = log
            .lock()
            .unwrap()
            .iter()
            .map(|r| r.0.as_millis())
            .collect();
        assert_eq!(starts, [700, 30_700, 60_700, 90_700]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_longer_than_the_interval_delays_the_next_and_never_overlaps() {
        let (log, t0) = recorder();
        let token = CancellationToken::new();
        let l = log.clone();
        let task = tokio::spawn(schedule(
            Duration::ZERO,
            Duration::from_secs(10),
            token.clone(),
            move |_| {
                let l = l.clone();
                async move {
                    let start = t0.elapsed();
                    tokio::time::sleep(Duration::from_secs(25)).await;
                    l.lock().unwrap().push((start, t0.elapsed()));
                    None
                }
            },
        ));
        tokio::time::sleep(Duration::from_secs(80)).await;
        token.cancel();
        task.await.unwrap();
        let runs = log.lock().unwrap().clone();
        assert_eq!(runs.len(), 3, "{runs:?}");
        for pair in runs.windows(2) {
            assert!(pair[1].0 >= pair[0].1, "runs overlap: {runs:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn cancellation_drops_the_run_in_flight() {
        let token = CancellationToken::new();
        let finished = Arc::new(Mutex::new(false));
        let f = finished.clone();
        let task = tokio::spawn(schedule(
            Duration::ZERO,
            Duration::from_secs(30),
            token.clone(),
            move |_| {
                let f = f.clone();
                async move {
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
    }

    #[tokio::test(start_paused = true)]
    async fn a_run_can_ask_to_poll_sooner_then_the_grid_resumes() {
        let (log, t0) = recorder();
        let token = CancellationToken::new();
        let l = log.clone();
        let mut n = 0;
        let task = tokio::spawn(schedule(
            Duration::ZERO,
            Duration::from_secs(30),
            token.clone(),
            move |_| {
                n += 1;
                let (l, fast) = (l.clone(), n <= 3);
                async move {
                    l.lock().unwrap().push((t0.elapsed(), t0.elapsed()));
                    fast.then_some(Duration::from_secs(1))
                }
            },
        ));
        tokio::time::sleep(Duration::from_secs(70)).await;
        token.cancel();
        task.await.unwrap();
        let starts: Vec<u64> = log.lock().unwrap().iter().map(|r| r.0.as_secs()).collect();
        assert_eq!(starts, [0, 1, 2, 3, 33, 63]);
    }

    #[tokio::test(start_paused = true)]
    async fn no_delay_or_interval_overflows_the_clock() {
        // Config bounds keep intervals to a week; the scheduler must not panic past them.
        let token = CancellationToken::new();
        let runs = Arc::new(Mutex::new(0));
        let r = runs.clone();
        let task = tokio::spawn(schedule(
            Duration::ZERO,
            Duration::MAX,
            token.clone(),
            move |_| {
                *r.lock().unwrap() += 1;
                async { Some(Duration::MAX) }
            },
        ));
        tokio::time::sleep(Duration::from_secs(3600)).await;
        token.cancel();
        task.await.expect("the scheduler did not panic");
        assert_eq!(*runs.lock().unwrap(), 1);
        let far = schedule(
            Duration::MAX,
            Duration::MAX,
            CancellationToken::new(),
            |_| async { None },
        );
        let _ = tokio::time::timeout(Duration::from_secs(1), far).await;
    }

    #[test]
    fn a_waiting_run_holds_no_probe_future() {
        // Each run in flight is a task holding a run_once future; the probe's own future (up
        // to ~26 KB for the largest kind) is boxed, so a burst of runs stays small.
        let config = crate::config::parse(
            "t.yaml",
            "probes:\n  - { name: a, kind: tcp, host: 127.0.0.1, port: 9 }\n",
            &|_| None,
        )
        .expect("config")
        .config;
        let probe = config.probes[0].clone();
        let size = std::mem::size_of_val(&run_once(probe));
        assert!(size < 2048, "run_once's future is {size} bytes");
    }

    #[tokio::test]
    async fn a_panicking_probe_is_a_failed_run() {
        let err = guarded(async { panic!("boom") }).await.unwrap_err();
        assert_eq!(err.reason, Reason::Panic);
        let ok = guarded(async { Ok(Outcome { facts: Vec::new() }) }).await;
        assert!(ok.is_ok());
    }

    #[test]
    fn first_runs_spread_within_the_interval() {
        let d = place("staging-db", Duration::from_secs(30)).delay;
        assert!(d < MAX_SPREAD);
        assert_eq!(d, place("staging-db", Duration::from_secs(30)).delay);
        assert!(place("x", Duration::from_millis(200)).delay < Duration::from_millis(200));
        let distinct: std::collections::HashSet<_> = (0..100)
            .map(|i| {
                place(&format!("p{i}"), Duration::from_secs(10))
                    .delay
                    .as_millis()
                    / 100
            })
            .collect();
        assert!(distinct.len() > 50, "names should spread over the slots");
    }

    #[test]
    fn grids_spread_over_the_whole_interval_on_whole_steps() {
        // Up to MAX_SPREAD the grid is the first run's slot, on its step.
        for i in 0..100 {
            let e = place(&format!("p{i}"), Duration::from_secs(10));
            assert!(e.phase <= e.delay && e.delay - e.phase < GRID_STEP, "{e:?}");
        }
        // Past it, the phases cover the interval, each on a whole step.
        let phases: Vec<Duration> = (0..100)
            .map(|i| place(&format!("p{i}"), Duration::from_secs(600)).phase)
            .collect();
        assert!(phases.iter().all(|p| *p < Duration::from_secs(600)));
        assert!(
            phases
                .iter()
                .all(|p| p.as_nanos() % GRID_STEP.as_nanos() == 0)
        );
        assert!(
            phases.iter().any(|p| *p > Duration::from_secs(300)),
            "{phases:?}"
        );
    }
}
