//! Records of sandboxes whose pod is gone: torn down by the daemon itself.
//!
//! A sandbox record normally goes with the runtime's DEL. It stays when that DEL
//! failed and the runtime does not retry it (containerd treats DEL errors that contain
//! "not found" as success), or when the node lost the runtime's state. Every
//! `reapStaleRecordsSeconds` the daemon looks at the records of its multus network and,
//! for each that is older than one period and whose pod the Kubernetes API says is gone
//! (no such pod, or a pod of that name with another UID), runs the DEL the runtime
//! would have run: the same request, through the same path, with the multus
//! configuration the runtime reads and the `CNI_PATH` of its last request, taking a
//! request slot like any other. A pod the API cannot be asked about is left alone
//! until the next period; so is every record when there is no API.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use multus_cni::cluster::kube::KubeClusterApi;
use multus_cni::state_store::FileStateStore;
use multus_core::config::MultusConf;
use multus_core::daemon_api::Request;
use multus_core::request::PodRef;
use multus_core::seams::ClusterApi;
use multus_core::state::SandboxState;
use tokio::sync::watch;

use crate::server::{self, Daemon};

/// Reap stale records every `period` until shutdown.
pub async fn run(
    daemon: Arc<Daemon>,
    live: KubeClusterApi,
    period: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick fires at once: records older than one period may be reaped right
    // after a restart.
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                reap_once(&daemon, &live, period).await;
            }
            _ = crate::confmgr::stopped(&mut shutdown) => return,
        }
    }
}

/// One pass over the records; returns how many were reaped.
pub async fn reap_once(daemon: &Daemon, live: &dyn ClusterApi, min_age: Duration) -> usize {
    let Some(conf_file) = daemon.manager.lock().ok().and_then(|s| s.file.clone()) else {
        tracing::debug!("no multus configuration written yet; not reaping records");
        return 0;
    };
    let stdin = match runtime_stdin(&conf_file) {
        Ok(stdin) => stdin,
        Err(e) => {
            tracing::warn!(file = %conf_file.display(), error = %e, "cannot read the multus configuration; not reaping records");
            return 0;
        }
    };
    let conf = match daemon
        .config
        .overlay(&stdin)
        .map_err(|e| e.to_string())
        .and_then(|bytes| MultusConf::parse(&bytes).map_err(|e| e.to_string()))
    {
        Ok(conf) => conf,
        Err(e) => {
            tracing::warn!(file = %conf_file.display(), error = %e, "the multus configuration does not parse; not reaping records");
            return 0;
        }
    };
    let candidates = {
        let (cni_dir, name) = (conf.cni_dir.clone(), conf.name.clone());
        tokio::task::spawn_blocking(move || candidates(&cni_dir, &name, min_age)).await
    };
    let candidates = match candidates {
        Ok(Ok(candidates)) => candidates,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "cannot list the sandbox records; not reaping");
            return 0;
        }
        Err(e) => {
            tracing::warn!(error = %e, "listing the sandbox records failed; not reaping");
            return 0;
        }
    };
    let mut reaped = 0;
    for record in candidates {
        if !pod_is_gone(live, &record).await {
            continue;
        }
        tracing::info!(
            container = %record.container_id,
            pod = %format!("{}/{}", record.pod_namespace, record.pod_name),
            "the pod of this sandbox is gone and its record was left behind; deleting its attachments"
        );
        // A slot like any CNI request: reaping never adds to a burst's load.
        let Ok(slot) = daemon.admission.admit().await else {
            tracing::debug!("no free request slot; reaping again next period");
            break;
        };
        let request = del_request(daemon, &record, &stdin);
        let outcome = server::serve_cni(daemon, request).await;
        drop(slot);
        match outcome {
            Ok(_) => {
                daemon.metrics.reaped.inc();
                reaped += 1;
            }
            Err((_, error)) => {
                tracing::warn!(container = %record.container_id, error = %error.msg, details = %error.details, "reaping the record failed; trying again next period");
            }
        }
    }
    reaped
}

/// The records in `cni_dir` that belong to this multus network, name a pod and are at
/// least `min_age` old (blocking: file reads).
fn candidates(
    cni_dir: &Path,
    multus_network: &str,
    min_age: Duration,
) -> Result<Vec<SandboxState>, multus_core::seams::StateError> {
    let store = FileStateStore::new(cni_dir);
    let old_enough = |id: &str| {
        std::fs::metadata(store.record_path(id))
            .and_then(|m| m.modified())
            .ok()
            .and_then(|modified| SystemTime::now().duration_since(modified).ok())
            .is_some_and(|age| age >= min_age)
    };
    Ok(store
        .list_blocking()?
        .into_iter()
        .filter(|id| old_enough(id))
        .filter_map(|id| store.load_blocking(&id).ok().flatten())
        .filter(|record| record.belongs_to(multus_network) && !record.pod_name.is_empty())
        .collect())
}

/// Whether the API says the record's pod is gone: no such pod, or one of that name with
/// another UID. Any doubt (API errors) keeps the record.
async fn pod_is_gone(live: &dyn ClusterApi, record: &SandboxState) -> bool {
    let pod = PodRef {
        namespace: record.pod_namespace.clone(),
        name: record.pod_name.clone(),
        uid: record.pod_uid.clone(),
        infra_container_id: record.container_id.clone(),
    };
    match live.pod(&pod).await {
        Ok(None) => true,
        Ok(Some(info)) => !record.pod_uid.is_empty() && info.uid != record.pod_uid,
        Err(e) => {
            tracing::debug!(container = %record.container_id, error = %e, "cannot ask the API about this sandbox's pod; keeping its record");
            false
        }
    }
}

/// The DEL a runtime sends for the record's sandbox.
fn del_request(daemon: &Daemon, record: &SandboxState, stdin: &[u8]) -> Request {
    let args = format!(
        "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID={}",
        record.pod_namespace, record.pod_name, record.container_id, record.pod_uid
    );
    let env = [
        ("CNI_COMMAND", "DEL".to_owned()),
        ("CNI_CONTAINERID", record.container_id.clone()),
        ("CNI_NETNS", record.netns.clone()),
        ("CNI_IFNAME", record.ifname.clone()),
        ("CNI_ARGS", args),
        ("CNI_PATH", cni_path(daemon)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Request {
        env,
        config: stdin.to_vec(),
        interface_attributes: None,
    }
}

/// The `CNI_PATH` of the runtime's last request; before any, `binDir` and libcni's
/// default directory.
fn cni_path(daemon: &Daemon) -> String {
    daemon
        .runtime_cni_path
        .lock()
        .ok()
        .and_then(|last| last.clone())
        .unwrap_or_else(|| format!("{}:/opt/cni/bin", daemon.config.bin_dir.display()))
}

/// What a runtime passes on stdin for the multus configuration in `path` (see
/// [`multus_core::delegate::runtime_stdin`]).
fn runtime_stdin(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    multus_core::delegate::runtime_stdin(&bytes)
        .map(|stdin| stdin.bytes)
        .map_err(|e| e.to_string())
}
