//! OTLP traces: with the standard OTEL_* variables, every run is a span with a child per
//! phase, sent to a local OTLP/HTTP receiver that decodes them; histogram observations carry
//! the run's trace id as an OpenMetrics exemplar. Without the variables nothing is traced.

use crate::support::exporter::Exporter;
use crate::support::hang::{SilentServer, closed_port};
use crate::support::served::{Served, serve};
use axum::Router;
use axum::body::Bytes;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Clone, Debug)]
struct Span {
    name: String,
    trace_id: String,
    span_id: String,
    parent: String,
    attributes: Vec<(String, String)>,
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn store_spans(spans: &Mutex<Vec<Span>>, req: ExportTraceServiceRequest) {
    let mut s = spans.lock().unwrap();
    for rs in req.resource_spans {
        for ss in rs.scope_spans {
            for sp in ss.spans {
                s.push(Span {
                    name: sp.name.clone(),
                    trace_id: hex(&sp.trace_id),
                    span_id: hex(&sp.span_id),
                    parent: hex(&sp.parent_span_id),
                    attributes: sp
                        .attributes
                        .iter()
                        .map(|kv| (kv.key.clone(), format!("{:?}", kv.value)))
                        .collect(),
                });
            }
        }
    }
}

/// An OTLP/gRPC collector (tonic) on a free port.
fn grpc_receiver() -> (std::net::SocketAddr, Arc<Mutex<Vec<Span>>>) {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
        TraceService, TraceServiceServer,
    };
    struct Collector(Arc<Mutex<Vec<Span>>>);
    #[tonic::async_trait]
    impl TraceService for Collector {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            store_spans(&self.0, request.into_inner());
            Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
        }
    }
    let spans = Arc::new(Mutex::new(Vec::new()));
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", closed_port())
        .parse()
        .expect("addr");
    let collector = Collector(spans.clone());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let _ = tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(collector))
                .serve(addr)
                .await;
        });
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "gRPC collector did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    (addr, spans)
}

/// An OTLP/HTTP receiver; it stops when the returned `Served` is dropped.
fn receiver() -> (Served, Arc<Mutex<Vec<Span>>>) {
    let spans = Arc::new(Mutex::new(Vec::new()));
    let store = spans.clone();
    let app = Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let store = store.clone();
            async move {
                let req = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                store_spans(&store, req);
                ""
            }
        }),
    );
    (serve(app), spans)
}

#[test]
fn runs_and_phases_arrive_as_spans_and_exemplars_point_at_them() {
    let (collector, spans) = receiver();
    let addr = collector.addr;
    let open = SilentServer::start();
    let secret = "otlp-never-this-password";
    let exp = Exporter::start_with_env(
        &format!(
            "defaults: {{ interval: 300ms, timeout: 2s }}\nprobes:\n  - {{ name: path, kind: tcp, host: 127.0.0.1, port: {} }}\n  - {{ name: db, kind: postgres, host: 127.0.0.1, port: {}, password: \"{secret}\" }}\n",
            open.port,
            closed_port()
        ),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("http://{addr}")),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let (run, children) = loop {
        let all = spans.lock().unwrap().clone();
        let found = all
            .iter()
            .find(|s| s.name == "probe path")
            .cloned()
            .and_then(|run| {
                let kids: Vec<Span> = all
                    .iter()
                    .filter(|s| s.parent == run.span_id)
                    .cloned()
                    .collect();
                (!kids.is_empty()).then_some((run, kids))
            });
        if let Some(f) = found {
            break f;
        }
        assert!(
            Instant::now() < deadline,
            "no run span with children arrived: {all:?}\n{}",
            exp.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let attr = |s: &Span, k: &str| {
        s.attributes
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
    };
    assert!(
        attr(&run, "probe").is_some_and(|v| v.contains("path")),
        "{run:?}"
    );
    assert!(
        attr(&run, "result").is_some_and(|v| v.contains("success")),
        "{run:?}"
    );
    let mut names: Vec<&str> = children.iter().map(|c| c.name.as_str()).collect();
    names.sort();
    assert_eq!(names, ["connect", "resolve"]);
    assert!(children.iter().all(|c| c.trace_id == run.trace_id));

    // The failing probe's run and its failing phase are marked.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all = spans.lock().unwrap().clone();
        if all.iter().any(|s| {
            s.name == "connect" && attr(s, "reason").is_some_and(|v| v.contains("refused"))
        }) {
            break;
        }
        assert!(Instant::now() < deadline, "no failed phase span: {all:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    for s in spans.lock().unwrap().iter() {
        for (_, v) in &s.attributes {
            assert!(!v.contains(secret), "a secret in a span attribute: {s:?}");
        }
    }

    // Exemplars on /metrics name traces that arrived.
    let m = exp.metrics();
    let exemplar_ids: Vec<String> = m
        .lines()
        .filter(|l| l.starts_with("pathwatch_probe_run_duration_seconds_bucket"))
        .filter_map(|l| l.split("trace_id=\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_string)
        .collect();
    assert!(!exemplar_ids.is_empty(), "no exemplar:\n{m}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !exemplar_ids
        .iter()
        .any(|id| spans.lock().unwrap().iter().any(|s| &s.trace_id == id))
    {
        assert!(
            Instant::now() < deadline,
            "exemplar trace ids {exemplar_ids:?} never arrived"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn grpc_exports_reach_a_grpc_collector() {
    let (addr, spans) = grpc_receiver();
    let exp = Exporter::start_with_env(
        &format!(
            "probes:\n  - {{ name: path, kind: tcp, host: 127.0.0.1, port: {}, interval: 200ms }}\n",
            closed_port()
        ),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &format!("http://{addr}")),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let all = spans.lock().unwrap().clone();
        let run = all.iter().find(|s| s.name == "probe path").cloned();
        if let Some(run) = run
            && all
                .iter()
                .any(|s| s.parent == run.span_id && s.name == "connect")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no spans over gRPC: {all:?}\n{}",
            exp.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn without_otel_variables_nothing_is_traced() {
    let exp = Exporter::start_with_env(
        &format!(
            "probes:\n  - {{ name: path, kind: tcp, host: 127.0.0.1, port: {}, interval: 200ms }}\n",
            closed_port()
        ),
        &[],
    );
    let m = exp.wait_first_run("path", Duration::from_secs(20));
    assert!(!m.contains("trace_id"), "{m}");
    assert!(!exp.logs().contains("OTLP"), "{}", exp.logs());
}
