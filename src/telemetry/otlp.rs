//! OpenTelemetry traces over OTLP, switched on by the standard variables only:
//! `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (and not
//! `OTEL_TRACES_EXPORTER=none` or `OTEL_SDK_DISABLED=true`). `OTEL_EXPORTER_OTLP_PROTOCOL`
//! (or `..._TRACES_PROTOCOL`) picks `grpc` or `http/protobuf` (the default). gRPC exports run
//! in the SDK's tokio batch processor, since a tonic channel needs the runtime; HTTP exports
//! run on the SDK's own thread with a blocking client. Without these variables no exporter
//! exists, so nothing is sent and nothing waits. An exporter that cannot be built is an
//! [`ExporterError`]: logged once, traces stay off, the exporter runs on.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

/// The protocols OTLP speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Protocol {
    Grpc,
    HttpProtobuf,
}

/// What the environment asks for: None when tracing is off.
pub(crate) fn wanted(env: &dyn Fn(&str) -> Option<String>) -> Option<Protocol> {
    let set = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    if set("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true"))
        || set("OTEL_TRACES_EXPORTER").is_some_and(|v| v.eq_ignore_ascii_case("none"))
    {
        return None;
    }
    set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| set("OTEL_EXPORTER_OTLP_ENDPOINT"))?;
    let protocol = set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|| set("OTEL_EXPORTER_OTLP_PROTOCOL"))
        .unwrap_or_default();
    Some(if protocol.eq_ignore_ascii_case("grpc") {
        Protocol::Grpc
    } else {
        Protocol::HttpProtobuf
    })
}

/// The exporter could not be built (a bad endpoint or header in the `OTEL_*` variables):
/// traces stay off, the exporter runs on.
#[derive(Debug, thiserror::Error)]
#[error("cannot build the OTLP exporter: {0}")]
pub(crate) struct ExporterError(#[from] opentelemetry_otlp::ExporterBuildError);

/// Builds the tracer provider; the exporter reads the endpoint, headers and timeout from the
/// same variables. Must run inside the tokio runtime (the gRPC processor is a task on it).
pub(crate) fn provider(protocol: Protocol) -> Result<SdkTracerProvider, ExporterError> {
    let builder = SdkTracerProvider::builder();
    let builder = match protocol {
        Protocol::Grpc => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()?;
            let processor =
                opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor::builder(
                    exporter,
                    opentelemetry_sdk::runtime::Tokio,
                )
                .build();
            builder.with_span_processor(processor)
        }
        Protocol::HttpProtobuf => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .build()?;
            builder.with_batch_exporter(exporter)
        }
    };
    let resource = Resource::builder()
        .with_service_name("pathwatch")
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    Ok(builder.with_resource(resource).build())
}

/// The tracer the tracing layer writes to.
pub(crate) fn tracer(provider: &SdkTracerProvider) -> opentelemetry_sdk::trace::Tracer {
    provider.tracer("pathwatch")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_standard_variables_switch_tracing_on() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(wanted(&env(&[])), None);
        assert_eq!(
            wanted(&env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")])),
            Some(Protocol::HttpProtobuf)
        );
        assert_eq!(
            wanted(&env(&[
                ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4317"),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            ])),
            Some(Protocol::Grpc)
        );
        assert_eq!(
            wanted(&env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_SDK_DISABLED", "true")
            ])),
            None
        );
        assert_eq!(
            wanted(&env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
                ("OTEL_TRACES_EXPORTER", "none")
            ])),
            None
        );
    }
}
