//! The HTTP API on the unix socket (upstream-compatible) and the daemon's life cycle.
//!
//! | Path | Methods | |
//! |---|---|---|
//! | `/cni` | POST | a full CNI request from the shim |
//! | `/delegate` | POST | hot-plug of one delegate ([`crate::hotplug`]) |
//! | `/healthz` | GET, POST | 200 while the daemon runs |
//! | `/readyz` | GET, POST | 200, or 500 once it is shutting down |
//! | `/metrics` | GET | Prometheus text (multus-rs) |
//! | `/config` | GET | the effective daemon configuration and the config manager's state (multus-rs) |
//!
//! Other paths answer 404, other methods 405, bodies over 1 MiB 413. CNI requests
//! pass admission ([`crate::admission`]) and then run on their own task: a client that
//! goes away (the runtime's timeout) never cancels an ADD half-way.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request as HttpRequest, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use multus_cni::devices::{DevicePaths, DraSource, NodeDevices};
use multus_cni::files::FsConfigFiles;
use multus_core::cni::{CniError, CniResult, CniVersion, ErrorCode};
use multus_core::config::MultusConf;
use multus_core::daemon_api::{self as api, MAX_REQUEST_BYTES, Request};
use multus_core::engine::{Engine, MultusError, Seams};
use multus_core::request::{CniRequest, Command};
use multus_core::seams::ClusterApi;
use tokio::sync::watch;

use crate::admission::{Admission, Rejection};
use crate::blocking::{BlockingNetns, BlockingStateStore};
use crate::cache::Caches;
use crate::config::DaemonConfig;
use crate::confmgr::SharedStatus;
use crate::exec::TokioExec;
use crate::metrics::{CommandLabel, Metrics, RequestLabels};

/// Everything the handlers share.
#[derive(Debug)]
pub struct Daemon {
    /// The daemon configuration.
    pub config: Arc<DaemonConfig>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Admission control of CNI requests.
    pub admission: Admission,
    /// Delegate execution.
    pub exec: TokioExec,
    /// The Kubernetes caches, when the daemon has an API server.
    pub caches: Option<Arc<Caches>>,
    /// `/readyz` answers 200 while this is true.
    pub ready: AtomicBool,
    /// The config manager's state.
    pub manager: SharedStatus,
    /// The `CNI_PATH` of the last CNI request, for the DELs the daemon runs itself.
    pub runtime_cni_path: std::sync::Mutex<Option<String>>,
}

/// The socket's router.
pub fn router(daemon: Arc<Daemon>) -> Router {
    Router::new()
        .route(api::CNI_PATH, post(cni))
        .route(api::DELEGATE_PATH, post(delegate))
        .route(api::HEALTHZ_PATH, get(healthz).post(healthz))
        .route(api::READYZ_PATH, get(readyz).post(readyz))
        .route(api::METRICS_PATH, get(metrics))
        .route(api::CONFIG_PATH, get(config))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            MAX_REQUEST_BYTES,
        ))
        .layer(axum::middleware::from_fn_with_state(daemon.clone(), count))
        .with_state(daemon)
}

/// The metrics listener's router.
pub fn metrics_router(daemon: Arc<Daemon>) -> Router {
    Router::new()
        .route(api::METRICS_PATH, get(metrics))
        .with_state(daemon)
}

const KNOWN_PATHS: &[&str] = &[
    api::CNI_PATH,
    api::DELEGATE_PATH,
    api::HEALTHZ_PATH,
    api::READYZ_PATH,
    api::METRICS_PATH,
    api::CONFIG_PATH,
];

/// `multus_server_request_total{handler,code,method}`.
async fn count(State(daemon): State<Arc<Daemon>>, request: HttpRequest, next: Next) -> Response {
    let path = request.uri().path();
    let handler = if KNOWN_PATHS.contains(&path) {
        path.to_owned()
    } else {
        "NotFound".to_owned()
    };
    let method = request.method().as_str().to_owned();
    let response = next.run(request).await;
    daemon
        .metrics
        .server_requests
        .get_or_create(&RequestLabels {
            handler,
            code: response.status().as_u16().to_string(),
            method,
        })
        .inc();
    response
}

async fn healthz() -> StatusCode {
    StatusCode::OK
}

async fn readyz(State(daemon): State<Arc<Daemon>>) -> StatusCode {
    if daemon.ready.load(Ordering::Acquire) {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    }
}

async fn metrics(State(daemon): State<Arc<Daemon>>) -> Response {
    let mut response = daemon.metrics.render().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

async fn config(State(daemon): State<Arc<Daemon>>) -> Response {
    let manager = daemon
        .manager
        .lock()
        .map(|s| s.to_value())
        .unwrap_or_default();
    let (pods, nads) = daemon.caches.as_ref().map_or((0, 0), |c| c.sizes());
    let body = serde_json::json!({
        "effective": daemon.config.effective(),
        "file": daemon.config.raw,
        "configManager": manager,
        "caches": {"pods": pods, "networkAttachmentDefinitions": nads, "kubernetes": daemon.caches.is_some()},
        "ready": daemon.ready.load(Ordering::Acquire),
    });
    json_response(StatusCode::OK, body.to_string())
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A CNI error answer (400, or 503 for "try again later" before anything ran).
fn cni_error(status: StatusCode, error: &CniError) -> Response {
    json_response(status, error.to_json())
}

fn rejected(daemon: &Daemon, rejection: Rejection) -> Response {
    cni_error(
        StatusCode::SERVICE_UNAVAILABLE,
        &CniError::new(
            ErrorCode::TryAgainLater,
            rejection.message(&daemon.admission),
        ),
    )
}

async fn read_body(body: Body) -> Result<Bytes, Response> {
    axum::body::to_bytes(body, MAX_REQUEST_BYTES)
        .await
        .map_err(|e| {
            let too_large = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.to_string().contains("length limit");
            if too_large {
                (StatusCode::PAYLOAD_TOO_LARGE, "request body too large").into_response()
            } else {
                cni_error(
                    StatusCode::BAD_REQUEST,
                    &CniError::new(
                        ErrorCode::IoFailure,
                        format!("cannot read the request body: {e}"),
                    ),
                )
            }
        })
}

fn decode(bytes: &[u8]) -> Result<Request, Response> {
    serde_json::from_slice::<Request>(bytes).map_err(|e| {
        cni_error(
            StatusCode::BAD_REQUEST,
            &CniError::new(
                ErrorCode::DecodeFailure,
                format!("invalid request body: {e}"),
            ),
        )
    })
}

/// `POST /cni`.
async fn cni(State(daemon): State<Arc<Daemon>>, body: Body) -> Response {
    let started = Instant::now();
    let bytes = match read_body(body).await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    let request = match decode(&bytes) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let command = command_label(request.env.get("CNI_COMMAND"));
    let slot = match daemon.admission.admit().await {
        Ok(slot) => slot,
        Err(rejection) => return rejected(&daemon, rejection),
    };
    // Its own task: the client going away must not cancel a request half-way.
    let task = {
        let daemon = daemon.clone();
        tokio::spawn(async move {
            let outcome = serve_cni(&daemon, request).await;
            drop(slot);
            outcome
        })
    };
    let outcome = task.await.unwrap_or_else(|e| {
        Err((
            StatusCode::INTERNAL_SERVER_ERROR,
            CniError::new(ErrorCode::IoFailure, format!("request task failed: {e}")),
        ))
    });
    daemon
        .metrics
        .cni_duration
        .get_or_create(&CommandLabel {
            command: command.to_owned(),
        })
        .observe(started.elapsed().as_secs_f64());
    match outcome {
        Ok(Some(result)) => json_response(
            StatusCode::OK,
            serde_json::json!({ "Result": result }).to_string(),
        ),
        Ok(None) => StatusCode::OK.into_response(),
        Err((status, error)) => cni_error(status, &error),
    }
}

/// `POST /delegate`.
async fn delegate(State(daemon): State<Arc<Daemon>>, body: Body) -> Response {
    let started = Instant::now();
    let bytes = match read_body(body).await {
        Ok(bytes) => bytes,
        Err(response) => return response,
    };
    let request = match decode(&bytes) {
        Ok(request) => request,
        Err(response) => return response,
    };
    let command = format!("delegate-{}", command_label(request.env.get("CNI_COMMAND")));
    let slot = match daemon.admission.admit().await {
        Ok(slot) => slot,
        Err(rejection) => return rejected(&daemon, rejection),
    };
    let task = {
        let daemon = daemon.clone();
        tokio::spawn(async move {
            let outcome = crate::hotplug::serve(&daemon, request).await;
            drop(slot);
            outcome
        })
    };
    let outcome = task.await.unwrap_or_else(|e| {
        Err(CniError::new(
            ErrorCode::IoFailure,
            format!("request task failed: {e}"),
        ))
    });
    daemon
        .metrics
        .cni_duration
        .get_or_create(&CommandLabel { command })
        .observe(started.elapsed().as_secs_f64());
    match outcome {
        Ok(Some(result)) => json_response(
            StatusCode::OK,
            serde_json::json!({ "Result": result }).to_string(),
        ),
        Ok(None) => StatusCode::OK.into_response(),
        Err(error) => cni_error(StatusCode::BAD_REQUEST, &error),
    }
}

/// The metric label of a `CNI_COMMAND` (bounded: anything unknown is `invalid`).
fn command_label(command: Option<&String>) -> &'static str {
    match command.map(String::as_str) {
        None | Some("") => "none",
        Some(text) => Command::parse(text).map_or("invalid", Command::as_str),
    }
}

pub(crate) type Failure = (StatusCode, CniError);

fn bad_request(error: CniError) -> Failure {
    (StatusCode::BAD_REQUEST, error)
}

/// One `/cni` request: the request is built from the shim's environment, the
/// configuration is the shim's stdin overlaid with the daemon configuration.
pub(crate) async fn serve_cni(
    daemon: &Daemon,
    request: Request,
) -> Result<Option<serde_json::Value>, Failure> {
    remember_cni_path(daemon, &request.env);
    let (cni, conf) = parse_request(daemon, request)?;
    tracing::info!(
        command = %cni.command, container = %cni.container_id, netns = %cni.netns,
        ifname = %cni.ifname, args = %cni.args, "starting CNI request"
    );
    let started = Instant::now();
    let outcome = run_engine(daemon, &conf, &cni).await;
    let took = started.elapsed();
    let version = conf.cni_version;
    match outcome {
        Ok(None) => {
            tracing::info!(command = %cni.command, container = %cni.container_id, took_ms = took.as_millis() as u64, "finished CNI request");
            Ok(None)
        }
        Ok(Some(bytes)) => {
            let result = CniResult::parse(&bytes, version).map_err(|e| {
                bad_request(CniError::new(
                    ErrorCode::DecodeFailure,
                    format!("Multus: cannot convert the result to CNI 1.0.0: {e}"),
                ))
            })?;
            tracing::info!(command = %cni.command, container = %cni.container_id, took_ms = took.as_millis() as u64, "finished CNI request");
            Ok(Some(result.to_value(CniVersion::V1_0_0)))
        }
        Err(e) => {
            let error = e.to_cni_error(version.as_str());
            tracing::error!(command = %cni.command, container = %cni.container_id, error = %e, details = %error.details, "CNI request failed");
            Err(bad_request(error))
        }
    }
}

/// Keep the runtime's `CNI_PATH` for the requests the daemon makes itself (reaping).
fn remember_cni_path(daemon: &Daemon, env: &BTreeMap<String, String>) {
    if let Some(path) = env.get("CNI_PATH")
        && let Ok(mut last) = daemon.runtime_cni_path.lock()
        && last.as_deref() != Some(path.as_str())
    {
        *last = Some(path.clone());
    }
}

/// The CNI request and multus' configuration for it: the shim's document with the
/// daemon configuration set over it.
fn parse_request(daemon: &Daemon, request: Request) -> Result<(CniRequest, MultusConf), Failure> {
    let hint = stdin_version(&request.config);
    let overlaid = daemon.config.overlay(&request.config).map_err(|e| {
        bad_request(
            CniError::new(
                ErrorCode::DecodeFailure,
                format!("Multus: invalid network configuration: {e}"),
            )
            .with_version(&hint),
        )
    })?;
    let cni = CniRequest::from_env(&request.env, overlaid)
        .map_err(|e| bad_request(MultusError::from(e).to_cni_error(&hint)))?;
    if cni.command == Command::Version {
        return Err(bad_request(
            CniError::new(
                ErrorCode::InvalidEnvironment,
                "unexpected CNI_COMMAND VERSION: the shim answers VERSION itself",
            )
            .with_version(&hint),
        ));
    }
    let conf = MultusConf::parse(&cni.stdin)
        .map_err(|e| bad_request(MultusError::from(e).to_cni_error(&hint)))?;
    Ok((cni, conf))
}

/// Run the request through the engine over the daemon's seams.
async fn run_engine(
    daemon: &Daemon,
    conf: &MultusConf,
    cni: &CniRequest,
) -> Result<Option<Vec<u8>>, MultusError> {
    let cached = daemon.caches.as_ref().map(|caches| caches.api());
    let fallback;
    let (api, dra): (&dyn ClusterApi, Option<&dyn DraSource>) = match &cached {
        Some(cached) => (cached, Some(cached.live())),
        None => {
            fallback = multus_cni::edge::cluster_api(conf);
            (fallback.as_ref(), None)
        }
    };
    let state = BlockingStateStore::new(&conf.cni_dir);
    let devices = NodeDevices::new(DevicePaths::from_conf(conf), dra);
    let seams = Seams {
        api,
        exec: &daemon.exec,
        state: &state,
        netns: &BlockingNetns,
        files: &FsConfigFiles,
        devices: &devices,
    };
    let engine = Engine::new(conf, cni, seams);
    match cni.command {
        Command::Add => engine.add().await.map(Some),
        Command::Del => engine.del().await.map(|()| None),
        Command::Check => engine.check().await.map(|()| None),
        Command::Status => engine.status().await.map(|()| None),
        Command::Gc => engine.gc().await.map(|()| None),
        Command::Version => Ok(None),
    }
}

fn stdin_version(stdin: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(stdin)
        .ok()
        .and_then(|v| v.get("cniVersion")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| CniVersion::LATEST.as_str().to_owned())
}

/// Wait for SIGTERM or SIGINT. The handlers are installed when this is called (not
/// when the future is first polled), so a signal that arrives before the task waiting
/// for it runs is not lost to the default action (which would end the process without
/// its shutdown). Needs a tokio runtime.
pub fn termination() -> impl std::future::Future<Output = ()> + Send + 'static {
    use tokio::signal::unix::{SignalKind, signal};
    let signals = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut int)) = signals else {
            tracing::error!("cannot install signal handlers");
            return std::future::pending().await;
        };
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => tracing::info!("SIGINT: shutting down"),
        }
    }
}

/// How long shutdown waits for in-flight requests (a delegate's own timeout bounds
/// each of them).
pub const DRAIN_LIMIT: Duration = Duration::from_secs(600);

/// Turn not-ready and tell everything to stop.
pub fn begin_shutdown(daemon: &Daemon, shutdown: &watch::Sender<bool>) {
    daemon.ready.store(false, Ordering::Release);
    let _ = shutdown.send(true);
}
