//! A fake of the Google APIs the GCP probes read, on 127.0.0.1:0 in its own thread: the
//! metadata server's token endpoint (checks `Metadata-Flavor: Google`, counts calls), and the
//! VPC Access, Cloud SQL Admin and Cloud Run Admin v2 resources with bodies shaped like
//! Google's (camelCase, full resource names), each checking the Bearer token. Every resource
//! path has a fault switch.
#![allow(dead_code)]

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The only token the fake APIs accept (and the metadata server hands out).
pub const TOKEN: &str = "ya29.fake-access-token-for-tests";
pub const PROJECT: &str = "netra-staging";
pub const REGION: &str = "us-central1";
pub const CONNECTOR: &str = "staging-connector";
pub const INSTANCE: &str = "staging-shared-postgres";
pub const SERVICE: &str = "netra-backend-staging";
/// A literal env value on the fake service that must never leave pathwatch.
pub const SECRET_ENV_VALUE: &str = "jwt-s3cr3t-value-never-shown";
pub const TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";

/// What a resource path answers instead of its resource.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    Status(u16),
    /// 429 with `Retry-After: N`.
    RateLimited(u32),
    Malformed,
    MissingState,
    UnknownState(&'static str),
    /// Accepts the request and never answers (within a minute).
    Hang,
}

#[derive(Default)]
struct Inner {
    resources: Mutex<HashMap<String, Value>>,
    faults: Mutex<HashMap<String, Fault>>,
    metadata_fault: Mutex<Option<Fault>>,
    token_calls: AtomicUsize,
    api_calls: Mutex<HashMap<String, usize>>,
}

pub struct GcpFake {
    pub addr: SocketAddr,
    inner: Arc<Inner>,
    stop: CancellationToken,
}

pub fn connector_path(name: &str) -> String {
    format!("/v1/projects/{PROJECT}/locations/{REGION}/connectors/{name}")
}

pub fn instance_path(name: &str) -> String {
    format!("/v1/projects/{PROJECT}/instances/{name}")
}

pub fn service_path(name: &str) -> String {
    format!("/v2/projects/{PROJECT}/locations/{REGION}/services/{name}")
}

pub fn connector_full_name(name: &str) -> String {
    format!("projects/{PROJECT}/locations/{REGION}/connectors/{name}")
}

pub fn connection_name(instance: &str) -> String {
    format!("{PROJECT}:{REGION}:{instance}")
}

/// A Serverless VPC Access `Connector` as the v1 API returns it.
pub fn connector(name: &str, state: &str) -> Value {
    json!({
        "name": connector_full_name(name),
        "network": "default",
        "ipCidrRange": "10.8.0.0/28",
        "state": state,
        "minThroughput": 200,
        "maxThroughput": 1000,
        "connectedProjects": [PROJECT],
        "minInstances": 2,
        "maxInstances": 10,
        "machineType": "e2-micro"
    })
}

/// A Cloud SQL Admin v1 `DatabaseInstance` (trimmed to realistic fields).
pub fn instance(name: &str, state: &str) -> Value {
    json!({
        "kind": "sql#instance",
        "state": state,
        "databaseVersion": "POSTGRES_14",
        "settings": {
            "kind": "sql#settings",
            "tier": "db-custom-2-7680",
            "activationPolicy": "ALWAYS",
            "availabilityType": "ZONAL",
            "ipConfiguration": {"ipv4Enabled": false, "privateNetwork": format!("projects/{PROJECT}/global/networks/default")},
            "settingsVersion": "42"
        },
        "etag": "a1b2c3",
        "ipAddresses": [{"type": "PRIVATE", "ipAddress": "10.107.0.3"}],
        "instanceType": "CLOUD_SQL_INSTANCE",
        "project": PROJECT,
        "backendType": "SECOND_GEN",
        "selfLink": format!("https://sqladmin.googleapis.com/v1/projects/{PROJECT}/instances/{name}"),
        "connectionName": connection_name(name),
        "name": name,
        "region": REGION,
        "gceZone": "us-central1-a",
        "createTime": "2025-01-10T09:00:00.000Z"
    })
}

/// A Cloud Run Admin v2 `Service`, wired as the first user's backend should be: the staging
/// connector with all traffic, a 75 s DB timeout, the Cloud SQL instance mounted, a literal
/// secret and a Secret Manager reference in its env.
pub fn service(name: &str) -> Value {
    let revision = format!("projects/{PROJECT}/locations/{REGION}/revisions/{name}-00012-xqz");
    json!({
        "name": format!("projects/{PROJECT}/locations/{REGION}/services/{name}"),
        "uid": "5b2f0c36-1f6e-4a8e-9a57-2f0d1e9c1a11",
        "generation": "12",
        "createTime": "2025-01-10T09:00:00.000000Z",
        "updateTime": "2025-09-01T10:00:00.000000Z",
        "creator": "deploy@netra-staging.iam.gserviceaccount.com",
        "ingress": "INGRESS_TRAFFIC_ALL",
        "launchStage": "GA",
        "template": {
            "scaling": {"minInstanceCount": 1, "maxInstanceCount": 20},
            "vpcAccess": {
                "connector": connector_full_name(CONNECTOR),
                "egress": "ALL_TRAFFIC"
            },
            "timeout": "600s",
            "serviceAccount": "backend@netra-staging.iam.gserviceaccount.com",
            "containers": [{
                "name": "backend",
                "image": "us-docker.pkg.dev/netra-staging/backend/backend:latest",
                "env": [
                    {"name": "ENVIRONMENT", "value": "staging"},
                    {"name": "DB_CONNECT_TIMEOUT", "value": "75"},
                    {"name": "JWT_SECRET_KEY", "value": SECRET_ENV_VALUE},
                    {"name": "POSTGRES_PASSWORD", "valueSource": {"secretKeyRef": {"secret": "postgres-password-staging", "version": "latest"}}}
                ],
                "resources": {"limits": {"cpu": "2", "memory": "4Gi"}, "cpuIdle": true, "startupCpuBoost": true},
                "ports": [{"name": "http1", "containerPort": 8000}],
                "volumeMounts": [{"name": "cloudsql", "mountPath": "/cloudsql"}],
                "startupProbe": {"timeoutSeconds": 240, "periodSeconds": 240, "failureThreshold": 1, "tcpSocket": {"port": 8000}}
            }],
            "volumes": [{"name": "cloudsql", "cloudSqlInstance": {"instances": [connection_name(INSTANCE)]}}],
            "executionEnvironment": "EXECUTION_ENVIRONMENT_GEN2",
            "maxInstanceRequestConcurrency": 80
        },
        "traffic": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}],
        "observedGeneration": "12",
        "terminalCondition": {
            "type": "Ready",
            "state": "CONDITION_SUCCEEDED",
            "lastTransitionTime": "2025-09-01T10:01:00.000000Z"
        },
        "conditions": [
            {"type": "RoutesReady", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": "2025-09-01T10:01:00.000000Z"},
            {"type": "ConfigurationsReady", "state": "CONDITION_SUCCEEDED", "lastTransitionTime": "2025-09-01T10:00:30.000000Z"}
        ],
        "latestReadyRevision": revision,
        "latestCreatedRevision": revision,
        "trafficStatuses": [{"type": "TRAFFIC_TARGET_ALLOCATION_TYPE_LATEST", "percent": 100}],
        "uri": "https://netra-backend-staging-abc123-uc.a.run.app",
        "reconciling": false,
        "etag": "\"CKbZ2sYGEJj8pK0B/cHJvamVjdHMvbmV0cmEtc3RhZ2luZw\""
    })
}

impl GcpFake {
    /// Starts the fake with the staging connector, instance and service in place.
    pub fn start() -> GcpFake {
        let inner = Arc::new(Inner::default());
        {
            let mut r = inner.resources.lock().unwrap();
            r.insert(connector_path(CONNECTOR), connector(CONNECTOR, "READY"));
            r.insert(instance_path(INSTANCE), instance(INSTANCE, "RUNNABLE"));
            r.insert(service_path(SERVICE), service(SERVICE));
        }
        let stop = CancellationToken::new();
        let (tx, rx) = std::sync::mpsc::channel();
        let (state, token) = (inner.clone(), stop.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()
                .expect("runtime for the GCP fake");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind the GCP fake");
                tx.send(listener.local_addr().expect("fake address"))
                    .expect("send the fake address");
                let app = Router::new().fallback(handle).with_state(state);
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async move { token.cancelled().await })
                    .await;
            });
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(10))
            .expect("GCP fake started");
        GcpFake { addr, inner, stop }
    }

    /// `api_base` for every API (they share the fake).
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `GCE_METADATA_HOST` form: host:port.
    pub fn metadata_host(&self) -> String {
        self.addr.to_string()
    }

    pub fn set_resource(&self, path: &str, body: Value) {
        self.inner
            .resources
            .lock()
            .unwrap()
            .insert(path.to_string(), body);
    }

    pub fn set_fault(&self, path: &str, fault: Option<Fault>) {
        let mut f = self.inner.faults.lock().unwrap();
        match fault {
            Some(fault) => f.insert(path.to_string(), fault),
            None => f.remove(path),
        };
    }

    pub fn set_metadata_fault(&self, fault: Option<Fault>) {
        *self.inner.metadata_fault.lock().unwrap() = fault;
    }

    pub fn token_calls(&self) -> usize {
        self.inner.token_calls.load(Ordering::SeqCst)
    }

    pub fn api_calls(&self, path: &str) -> usize {
        self.inner
            .api_calls
            .lock()
            .unwrap()
            .get(path)
            .copied()
            .unwrap_or(0)
    }
}

impl Drop for GcpFake {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Google's error envelope.
fn google_error(code: u16, status: &str, message: &str) -> Response {
    let body = json!({"error": {"code": code, "message": message, "status": status}});
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        body.to_string(),
    )
        .into_response()
}

fn json_response(body: String) -> Response {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json; charset=UTF-8")],
        body,
    )
        .into_response()
}

async fn handle(State(s): State<Arc<Inner>>, req: Request<Body>) -> Response {
    let path = req.uri().path().to_string();
    if path == TOKEN_PATH {
        return metadata_token(&s, req.headers()).await;
    }
    *s.api_calls.lock().unwrap().entry(path.clone()).or_default() += 1;
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if bearer != Some(format!("Bearer {TOKEN}").as_str()) {
        return google_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token.",
        );
    }
    let fault = s.faults.lock().unwrap().get(&path).cloned();
    let resource = s.resources.lock().unwrap().get(&path).cloned();
    let Some(mut body) = resource else {
        return google_error(404, "NOT_FOUND", "Resource not found.");
    };
    match fault {
        None => json_response(body.to_string()),
        Some(Fault::Status(401)) => google_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
        ),
        Some(Fault::Status(403)) => google_error(
            403,
            "PERMISSION_DENIED",
            "Permission denied on resource (or it may not exist).",
        ),
        Some(Fault::Status(404)) => google_error(404, "NOT_FOUND", "Resource not found."),
        Some(Fault::Status(code)) => google_error(code, "INTERNAL", "Internal error encountered."),
        Some(Fault::RateLimited(secs)) => {
            let mut r = google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.");
            r.headers_mut().insert(
                header::RETRY_AFTER,
                secs.to_string().parse().expect("header value"),
            );
            r
        }
        // What a proxy in the way answers: an HTML page where JSON was promised.
        Some(Fault::Malformed) => {
            json_response("<!DOCTYPE html><html><body>Bad Gateway</body></html>".to_string())
        }
        Some(Fault::MissingState) => {
            remove_state(&mut body);
            json_response(body.to_string())
        }
        Some(Fault::UnknownState(state)) => {
            set_state(&mut body, state);
            json_response(body.to_string())
        }
        Some(Fault::Hang) => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            json_response(body.to_string())
        }
    }
}

/// Cloud Run keeps its state in `terminalCondition.state`, the others at the top.
fn remove_state(body: &mut Value) {
    if let Some(c) = body
        .get_mut("terminalCondition")
        .and_then(Value::as_object_mut)
    {
        c.remove("state");
    } else if let Some(o) = body.as_object_mut() {
        o.remove("state");
    }
}

fn set_state(body: &mut Value, state: &str) {
    if let Some(c) = body
        .get_mut("terminalCondition")
        .and_then(Value::as_object_mut)
    {
        c.insert("state".into(), state.into());
    } else if let Some(o) = body.as_object_mut() {
        o.insert("state".into(), state.into());
    }
}

async fn metadata_token(s: &Inner, headers: &HeaderMap) -> Response {
    if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
        return (
            StatusCode::FORBIDDEN,
            "Missing required header \"Metadata-Flavor\": \"Google\"\n",
        )
            .into_response();
    }
    s.token_calls.fetch_add(1, Ordering::SeqCst);
    let fault = s.metadata_fault.lock().unwrap().clone();
    match fault {
        Some(Fault::Hang) => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Some(Fault::Status(code)) => StatusCode::from_u16(code)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        Some(_) => json_response("not json".into()),
        None => json_response(
            json!({"access_token": TOKEN, "expires_in": 3599, "token_type": "Bearer"}).to_string(),
        ),
    }
}
