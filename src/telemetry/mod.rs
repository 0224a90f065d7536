//! Logging: human-readable, or JSON lines in Cloud Logging's shape; always on stderr so logs
//! never mix with command output on stdout.

mod cloud_json;
pub mod otlp;

use tracing_subscriber::EnvFilter;

/// How log lines are written to stderr (`--log-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One human-readable line per event.
    #[default]
    Text,
    /// One JSON object per line, in Cloud Logging's structured-log fields.
    Json,
}

/// Keeps the trace exporter alive; `shutdown` flushes the spans still buffered.
pub struct Telemetry {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Telemetry {
    /// Flushes and stops the exporter. Blocking (the exporter's HTTP client is), so callers
    /// inside the runtime run it with `spawn_blocking`.
    pub fn shutdown(self) {
        if let Some(p) = self.provider {
            let _ = p.shutdown();
        }
    }
}

/// Libraries whose trace-level events quote whole requests (tungstenite logs the WebSocket
/// upgrade with its token and headers): never logged at trace, whatever the level asked.
const REQUEST_TRACERS: &[&str] = &[
    "tungstenite",
    "tokio_tungstenite",
    "hyper",
    "hyper_util",
    "h2",
    "reqwest",
    "tokio_postgres",
    "tonic",
];

fn carries_requests(target: &str) -> bool {
    REQUEST_TRACERS.iter().any(|c| {
        target
            .strip_prefix(c)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    })
}

/// Installs the global subscriber: logs (`RUST_LOG` overrides `level`, e.g.
/// `pathwatch=debug`) and, when the `OTEL_*` variables ask for it, OTLP traces.
pub fn init(format: LogFormat, level: &str) -> Telemetry {
    let mut problem = None;
    let provider = otlp::wanted(&|k| std::env::var(k).ok())
        .and_then(|protocol| otlp::provider(protocol).map_err(|e| problem = Some(e)).ok());
    // A second init (tests calling main twice) is harmless: the first subscriber stays.
    // `try_init` also routes the `log` crate's records (rustls, tungstenite) into it.
    use tracing_subscriber::util::SubscriberInitExt as _;
    let _ = dispatch(format, level, provider.as_ref().map(otlp::tracer)).try_init();
    if let Some(e) = problem {
        tracing::error!("traces are off: {e}");
    } else if provider.is_some() {
        tracing::info!("exporting traces over OTLP");
    }
    Telemetry { provider }
}

/// The subscriber: the log layer, and the span layer when there is a `tracer`.
fn dispatch(
    format: LogFormat,
    level: &str,
    tracer: Option<opentelemetry_sdk::trace::Tracer>,
) -> tracing::Dispatch {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::filter::FilterExt as _;
    use tracing_subscriber::layer::SubscriberExt as _;

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // Every line is redacted on its way out (crate::redact), whoever logged it.
    let fmt = tracing_subscriber::fmt::layer().with_writer(crate::redact::RedactingStderr);
    let fmt = match format {
        LogFormat::Text => fmt.with_ansi(false).boxed(),
        LogFormat::Json => fmt.event_format(cloud_json::CloudJson).boxed(),
    };
    // The log layer takes events only: no event is logged inside a probe's spans, and a span
    // that no layer wants is never built. Without OTLP that takes the run and phase spans
    // off every run: 0.02 ms of a 2 ms local Postgres session (bench/pg_baseline.py).
    let events = tracing_subscriber::filter::filter_fn(|m| {
        m.is_event() && !(*m.level() == tracing::Level::TRACE && carries_requests(m.target()))
    });
    let logs = tracing_subscriber::registry().with(fmt.with_filter(filter.and(events)));
    // Spans go to OTLP at info level whatever the log level, so traces are complete even
    // when the logs are quiet. Without OTLP there is no span layer at all, rather than a
    // `None` one: an absent `Option` layer says it wants every span, and the registry built
    // and closed the run and phase spans of every run for no one (about 15 % of the
    // instructions of a tcp `/probe`, callgrind: BENCHMARKS.md).
    match tracer {
        Some(tracer) => tracing::Dispatch::new(
            logs.with(
                tracing_opentelemetry::layer()
                    .with_tracer(tracer)
                    .with_filter(tracing_subscriber::filter::LevelFilter::INFO),
            ),
        ),
        None => tracing::Dispatch::new(logs),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The run's span exists only when a span layer records it.
    #[test]
    fn spans_are_built_only_for_otlp() {
        let run_span = |d: &tracing::Dispatch| {
            tracing::dispatcher::with_default(d, || {
                let span = tracing::info_span!("probe run", probe = "db");
                let _phase = span.in_scope(|| tracing::info_span!("phase"));
                !span.is_disabled()
            })
        };
        assert!(!run_span(&dispatch(LogFormat::Text, "info", None)));
        assert!(!run_span(&dispatch(LogFormat::Json, "trace", None)));
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        assert!(run_span(&dispatch(
            LogFormat::Text,
            "info",
            Some(otlp::tracer(&provider))
        )));
    }
}
