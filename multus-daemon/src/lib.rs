//! # multus-daemon
//!
//! The thick-mode node agent of multus-rs: it serves upstream's socket API
//! ([`server`]) to `multus-shim` and runs every CNI request through the same engine as
//! the thin plugin (`multus_core::engine::Engine`), over daemon implementations of the
//! seams: watch-backed caches of this node's pods and of NADs ([`cache`]), delegates
//! run through multus-cni's process runner on the blocking pool, with a timeout and
//! optional chroot ([`exec`]), and the node-side state
//! store and namespace inspection moved off the async workers ([`blocking`]). It bounds
//! its work ([`admission`]) and its connections ([`connections`]), owns
//! `00-multus.conf` ([`confmgr`]), exports Prometheus
//! metrics ([`metrics`]) and shuts down gracefully.
#![deny(unsafe_code)]

pub mod admission;
pub mod approver;
pub mod blocking;
pub mod cache;
/// `daemon-config.json`, the model of multus-core.
pub use multus_core::daemon_config as config;
pub mod confmgr;
pub mod connections;
pub mod exec;
pub mod hotplug;
pub mod listener;
pub mod metrics;
pub mod reaper;
pub mod server;

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use multus_cni::cluster::kube::{ApiSource, RetryPolicy};
use multus_cni::identity::CertManager;
use tokio::sync::watch;

use crate::admission::Admission;
use crate::cache::Caches;
use crate::config::DaemonConfig;
use crate::confmgr::ManagerStatus;
use crate::exec::TokioExec;
use crate::metrics::Metrics;
use crate::server::Daemon;

/// The environment variable naming this node (the pod cache's field selector).
pub const NODE_NAME_ENV: &str = "MULTUS_NODE_NAME";
/// How long start-up waits for `readinessindicatorfile` (upstream: 45 s).
pub const READINESS_WAIT: Duration = Duration::from_secs(45);

pub use multus_cni::daemon_config::api_source;

async fn wait_for_readiness_file(path: &std::path::Path) -> Result<(), String> {
    let interval = Duration::from_secs(1);
    if multus_cni::files::wait_for_path(path, READINESS_WAIT, interval).await {
        return Ok(());
    }
    Err(format!(
        "have you checked that your default network is ready? still waiting for readinessindicatorfile @ {} after {} s",
        path.display(),
        READINESS_WAIT.as_secs()
    ))
}

/// Run the daemon until SIGTERM/SIGINT; `Err` is a start-up failure (exit 1).
pub async fn run(config: DaemonConfig) -> Result<(), String> {
    let config = Arc::new(config);
    if config.enable_pprof {
        tracing::warn!("enablePprof has no effect in multus-rs (no Go profiler); use the metrics");
    }
    if let Some(path) = &config.readiness_indicator_file {
        wait_for_readiness_file(path).await?;
    }
    let connection_limit =
        connections::connection_limit(config.connection_limit, connections::raise_fd_limit());
    let metrics = Metrics::new();
    let (listener, socket) = listener::bind(&config.socket_dir)?;
    let caches = start_caches(&config, &metrics).await?;
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let daemon = Arc::new(Daemon {
        config: config.clone(),
        metrics: metrics.clone(),
        admission: Admission::new(
            config.max_concurrent,
            config.max_queued,
            config.queue_timeout,
            shutdown_rx.clone(),
            metrics.clone(),
        ),
        exec: TokioExec::new(config.chroot_dir.clone(), metrics.clone())?,
        caches,
        ready: AtomicBool::new(true),
        manager: Arc::new(Mutex::new(ManagerStatus::default())),
        runtime_cni_path: Mutex::new(None),
    });
    let manager = tokio::spawn(confmgr::run(
        config.clone(),
        daemon.manager.clone(),
        shutdown_rx.clone(),
    ));
    let reaper = match (&daemon.caches, config.reap_stale_records) {
        (Some(caches), Some(period)) => Some(tokio::spawn(reaper::run(
            daemon.clone(),
            caches.live(),
            period,
            shutdown_rx.clone(),
        ))),
        _ => None,
    };
    let metrics_server = serve_metrics(&daemon, shutdown_rx.clone()).await?;
    // Installed now, before the socket serves: a SIGTERM right after start-up is a
    // graceful shutdown too.
    shut_down_on_termination(daemon.clone(), shutdown_tx.clone());
    tracing::info!(socket = %socket.display(), "multus-daemon serving");
    serve_socket(listener, &daemon, connection_limit, shutdown_rx.clone()).await;
    let _ = std::fs::remove_file(&socket);
    let _ = manager.await;
    for task in [reaper, metrics_server].into_iter().flatten() {
        let _ = task.await;
    }
    tracing::info!("multus-daemon stopped");
    Ok(())
}

/// The watch-backed caches of the cluster API, when the daemon has one: with the node's
/// own certificate (`perNodeCertificate`), else the kubeconfig or in-cluster account.
async fn start_caches(
    config: &DaemonConfig,
    metrics: &Arc<Metrics>,
) -> Result<Option<Arc<Caches>>, String> {
    let policy = RetryPolicy::new(config.api_timeout, config.api_retries);
    match (api_source(config), &config.per_node_certificate) {
        (_, Some(per_node)) => {
            let node = std::env::var(NODE_NAME_ENV)
                .ok()
                .filter(|n| !n.is_empty())
                .ok_or_else(|| {
                    format!("perNodeCertificate needs the node name in {NODE_NAME_ENV}")
                })?;
            let manager = Arc::new(
                CertManager::start(per_node.clone(), &node, config.api_timeout, None)
                    .await
                    .map_err(|e| e.to_string())?,
            );
            let pair = manager.current();
            tracing::info!(user = %pair.common_name,
                not_after = %multus_host::time::rfc3339(pair.not_after),
                "authenticating with the node's own certificate");
            let client = manager.client();
            tokio::spawn(manager.rotate());
            Ok(Some(
                Caches::start(client, policy, Some(node), metrics.clone()).await,
            ))
        }
        (source @ (ApiSource::Kubeconfig(_) | ApiSource::InCluster), None) => {
            let client = multus_cni::cluster::kube::connect(&source, config.api_timeout)
                .await
                .map_err(|e| format!("cannot make the Kubernetes client: {e}"))?;
            let node = std::env::var(NODE_NAME_ENV).ok();
            Ok(Some(
                Caches::start(client, policy, node, metrics.clone()).await,
            ))
        }
        (ApiSource::Files(dir), None) => {
            tracing::info!(dir = %dir.display(), "NetworkAttachmentDefinitions from files; no Kubernetes API");
            Ok(None)
        }
        (ApiSource::None, None) => {
            tracing::info!("no Kubernetes API: static delegates and file-based networks only");
            Ok(None)
        }
    }
}

/// The metrics endpoint on `metricsAddress:metricsPort`, when a port is configured,
/// until shutdown.
async fn serve_metrics(
    daemon: &Arc<Daemon>,
    mut stop: watch::Receiver<bool>,
) -> Result<Option<tokio::task::JoinHandle<()>>, String> {
    let config = &daemon.config;
    let Some(port) = config.metrics_port else {
        return Ok(None);
    };
    let address: std::net::IpAddr = config
        .metrics_address
        .parse()
        .map_err(|e| format!("metricsAddress: {e}"))?;
    let tcp = tokio::net::TcpListener::bind((address, port))
        .await
        .map_err(|e| format!("cannot listen on {address}:{port} for metrics: {e}"))?;
    let router = server::metrics_router(daemon.clone());
    Ok(Some(tokio::spawn(async move {
        let _ = axum::serve(tcp, router)
            .with_graceful_shutdown(async move { confmgr::stopped(&mut stop).await })
            .await;
    })))
}

/// On SIGTERM/SIGINT, begin the graceful shutdown.
fn shut_down_on_termination(daemon: Arc<Daemon>, shutdown_tx: watch::Sender<bool>) {
    let terminated = server::termination();
    tokio::spawn(async move {
        terminated.await;
        server::begin_shutdown(&daemon, &shutdown_tx);
    });
}

/// Serve the socket until shutdown. On SIGTERM: /readyz answers 500 and new or queued
/// CNI requests 503 (try again later) while the running ones finish (also those whose
/// client went away); then the socket closes.
async fn serve_socket(
    listener: tokio::net::UnixListener,
    daemon: &Arc<Daemon>,
    connection_limit: usize,
    mut stop: watch::Receiver<bool>,
) {
    let draining = daemon.clone();
    connections::serve(
        listener,
        server::router(daemon.clone()),
        connection_limit,
        async move {
            confmgr::stopped(&mut stop).await;
            if tokio::time::timeout(server::DRAIN_LIMIT, draining.admission.drain())
                .await
                .is_err()
            {
                tracing::warn!(
                    "in-flight requests did not finish within {:?}",
                    server::DRAIN_LIMIT
                );
            }
            tracing::info!("in-flight requests finished; closing the socket");
        },
    )
    .await;
}
