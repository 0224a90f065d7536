//! The reference service's Google Cloud plumbing, on the sim's own router: the metadata
//! server's token endpoint, and the VPC Access v1 connector, Cloud SQL Admin v1 instance and
//! Cloud Run Admin v2 service of the first user's staging, with bodies shaped like Google's
//! (camelCase, full resource names, the error envelope). Every resource GET checks the Bearer
//! token the metadata endpoint hands out.
//!
//! What goes wrong is switched through [`Faults`]: the states the resources report
//! (`connector_state`, `cloudsql_state`, `cloud_run_egress`), an API-level fault per resource
//! path (`gcp_api`: 401, 403, 404, 429 with Retry-After, 500, malformed JSON, no state, an
//! unknown state, a hang) and the metadata server's (`gcp_metadata`).

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{Faults, SimState, lock};

/// The only access token the APIs accept, and what the metadata server hands out. It is a
/// fixed, made-up value: the sim guards nothing, and tests look for it to prove it never leaks.
pub const TOKEN: &str = "ya29.sim-access-token-not-a-secret";
/// The project every simulated resource lives in.
pub const PROJECT: &str = "netra-staging";
/// The region of the simulated connector and Cloud Run service.
pub const REGION: &str = "us-central1";
/// The name of the simulated Serverless VPC Access connector.
pub const CONNECTOR: &str = "staging-connector";
/// The name of the simulated Cloud SQL instance.
pub const INSTANCE: &str = "staging-shared-postgres";
/// The name of the simulated Cloud Run service.
pub const SERVICE: &str = "netra-backend-staging";
/// A literal env value on the service that pathwatch must never show.
pub const SECRET_ENV_VALUE: &str = "jwt-s3cr3t-value-never-shown";
pub(crate) const TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";
/// How long a hung request waits before it answers after all: longer than any probe timeout.
const HANG: Duration = Duration::from_secs(60);

/// What a resource path (or the metadata server) answers instead of its resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GcpApiFault {
    /// Google's error envelope with this status (401, 403, 404, 500, ...).
    Status(u16),
    /// 429 with `Retry-After: N`.
    RateLimited(u32),
    /// An HTML page where JSON was promised (what a proxy in the way answers).
    Malformed,
    /// The resource without its state field.
    MissingState,
    /// The resource in a state outside the API's enum (a newer API).
    UnknownState(String),
    /// Accepts the request and answers only after a minute.
    Hang,
}

/// Resources by path and call counters.
pub(super) struct Store {
    resources: HashMap<String, Value>,
    token_calls: usize,
    api_calls: HashMap<String, usize>,
}

impl Default for Store {
    /// The first user's staging: the connector, the instance and the backend service.
    fn default() -> Self {
        let resources = HashMap::from([
            (connector_path(CONNECTOR), connector(CONNECTOR, "READY")),
            (instance_path(INSTANCE), instance(INSTANCE, "RUNNABLE")),
            (service_path(SERVICE), service(SERVICE)),
        ]);
        Store {
            resources,
            token_calls: 0,
            api_calls: HashMap::new(),
        }
    }
}

/// The API path of connector `name` in the sim's project and region (vpcaccess v1).
pub fn connector_path(name: &str) -> String {
    format!("/v1/projects/{PROJECT}/locations/{REGION}/connectors/{name}")
}

/// The API path of Cloud SQL instance `name` in the sim's project (sqladmin v1).
pub fn instance_path(name: &str) -> String {
    format!("/v1/projects/{PROJECT}/instances/{name}")
}

/// The API path of Cloud Run service `name` in the sim's project and region (run v2).
pub fn service_path(name: &str) -> String {
    format!("/v2/projects/{PROJECT}/locations/{REGION}/services/{name}")
}

/// Connector `name`'s full resource name, as a Cloud Run service's `vpcAccess` names it.
pub fn connector_full_name(name: &str) -> String {
    format!("projects/{PROJECT}/locations/{REGION}/connectors/{name}")
}

/// `project:region:instance`, as the backend's `/cloudsql/...` socket names it.
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

impl SimState {
    /// Puts (or replaces) the resource a GET of `path` returns, e.g. at
    /// [`connector_path`]`("other")`.
    pub fn set_gcp_resource(&self, path: &str, body: Value) {
        lock(&self.inner.gcp)
            .resources
            .insert(path.to_owned(), body);
    }

    /// How often the metadata server handed out a token (requests with the right header).
    pub fn gcp_token_calls(&self) -> usize {
        lock(&self.inner.gcp).token_calls
    }

    /// How often `path` was requested, whatever the answer.
    pub fn gcp_api_calls(&self, path: &str) -> usize {
        lock(&self.inner.gcp)
            .api_calls
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// True while the VPC connector carries traffic: it reports READY (the default). A
    /// connector in any other state takes the private network behind it down.
    pub(super) fn private_network_up(faults: &Faults) -> bool {
        faults
            .connector_state
            .as_deref()
            .is_none_or(|s| s == "READY")
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

/// True when the request carries the sim's access token.
pub(super) fn authorized(headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        == Some(TOKEN)
}

/// The kind of resource a path names, by the collection in it.
#[derive(Clone, Copy, PartialEq)]
enum Resource {
    Connector,
    Instance,
    Service,
}

fn resource_kind(path: &str) -> Option<Resource> {
    if path.contains("/connectors/") {
        Some(Resource::Connector)
    } else if path.contains("/instances/") {
        Some(Resource::Instance)
    } else if path.contains("/services/") {
        Some(Resource::Service)
    } else {
        None
    }
}

/// Applies the state switches of `faults` to a resource of `kind`.
fn apply_switches(kind: Resource, faults: &Faults, body: &mut Value) {
    match kind {
        Resource::Connector => {
            if let Some(s) = &faults.connector_state {
                set_state(body, s);
            }
        }
        Resource::Instance => {
            if let Some(s) = &faults.cloudsql_state {
                set_state(body, s);
            }
        }
        Resource::Service => {
            if let (Some(e), Some(vpc)) = (
                &faults.cloud_run_egress,
                body.pointer_mut("/template/vpcAccess")
                    .and_then(Value::as_object_mut),
            ) {
                vpc.insert("egress".into(), e.as_str().into());
            }
        }
    }
}

/// `GET` of a connector, an instance or a service.
pub(super) async fn resource(State(state): State<SimState>, req: Request<Body>) -> Response {
    let path = req.uri().path().to_owned();
    let found = {
        let mut gcp = lock(&state.inner.gcp);
        *gcp.api_calls.entry(path.clone()).or_default() += 1;
        gcp.resources.get(&path).cloned()
    };
    if !authorized(req.headers()) {
        return google_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token.",
        );
    }
    let (Some(mut body), Some(kind)) = (found, resource_kind(&path)) else {
        return google_error(404, "NOT_FOUND", "Resource not found.");
    };
    let faults = state.faults();
    apply_switches(kind, &faults, &mut body);
    match faults.gcp_api.get(&path).cloned() {
        None => json_response(body.to_string()),
        Some(GcpApiFault::Status(401)) => google_error(
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials.",
        ),
        Some(GcpApiFault::Status(403)) => google_error(
            403,
            "PERMISSION_DENIED",
            "Permission denied on resource (or it may not exist).",
        ),
        Some(GcpApiFault::Status(404)) => google_error(404, "NOT_FOUND", "Resource not found."),
        Some(GcpApiFault::Status(code)) => {
            google_error(code, "INTERNAL", "Internal error encountered.")
        }
        Some(GcpApiFault::RateLimited(secs)) => {
            let mut r = google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded.");
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            r
        }
        Some(GcpApiFault::Malformed) => {
            json_response("<!DOCTYPE html><html><body>Bad Gateway</body></html>".to_owned())
        }
        Some(GcpApiFault::MissingState) => {
            remove_state(&mut body);
            json_response(body.to_string())
        }
        Some(GcpApiFault::UnknownState(s)) => {
            set_state(&mut body, &s);
            json_response(body.to_string())
        }
        Some(GcpApiFault::Hang) => {
            tokio::time::sleep(HANG).await;
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

/// `GET` of the metadata server's token for the default service account.
pub(super) async fn metadata_token(State(state): State<SimState>, headers: HeaderMap) -> Response {
    if headers.get("metadata-flavor").and_then(|v| v.to_str().ok()) != Some("Google") {
        return (
            StatusCode::FORBIDDEN,
            "Missing required header \"Metadata-Flavor\": \"Google\"\n",
        )
            .into_response();
    }
    lock(&state.inner.gcp).token_calls += 1;
    match state.faults().gcp_metadata {
        Some(GcpApiFault::Hang) => {
            tokio::time::sleep(HANG).await;
            StatusCode::GATEWAY_TIMEOUT.into_response()
        }
        Some(GcpApiFault::Status(code)) => StatusCode::from_u16(code)
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response(),
        Some(GcpApiFault::RateLimited(secs)) => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, HeaderValue::from(secs))],
        )
            .into_response(),
        Some(_) => json_response("not json".into()),
        None => json_response(
            json!({"access_token": TOKEN, "expires_in": 3599, "token_type": "Bearer"}).to_string(),
        ),
    }
}
