//! Logging: human-readable, or JSON lines in Cloud Logging's shape; always on stderr so logs
//! never mix with command output on stdout.

mod cloud_json;
pub mod otlp;

use tracing_subscriber::EnvFilter;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
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
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // Every line is redacted on its way out (crate::redact), whoever logged it.
    let fmt = tracing_subscriber::fmt::layer().with_writer(crate::redact::RedactingStderr);
    let fmt = match format {
        LogFormat::Text => fmt.with_ansi(false).boxed(),
        LogFormat::Json => fmt.event_format(cloud_json::CloudJson).boxed(),
    };
    let mut problem = None;
    let provider = otlp::wanted(&|k| std::env::var(k).ok())
        .and_then(|protocol| otlp::provider(protocol).map_err(|e| problem = Some(e)).ok());
    // Spans go to OTLP at info level whatever the log level, so traces are complete even
    // when the logs are quiet; without OTLP, no span layer exists at all.
    let otel = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(otlp::tracer(p))
            .with_filter(tracing_subscriber::filter::LevelFilter::INFO)
    });
    // The log layer takes events only: no event is logged inside a probe's spans, and a span
    // that no layer wants is never built. Without OTLP that takes the run and phase spans
    // off every run: 0.02 ms of a 2 ms local Postgres session (bench/pg_baseline.py).
    use tracing_subscriber::filter::FilterExt as _;
    let events = tracing_subscriber::filter::filter_fn(|m| {
        m.is_event() && !(*m.level() == tracing::Level::TRACE && carries_requests(m.target()))
    });
    // A second init (tests calling main twice) is harmless: the first subscriber stays.
    let _ = tracing_subscriber::registry()
        .with(fmt.with_filter(filter.and(events)))
        .with(otel)
        .try_init();
    if let Some(e) = problem {
        tracing::error!("traces are off: {e}");
    } else if provider.is_some() {
        tracing::info!("exporting traces over OTLP");
    }
    Telemetry { provider }
}
