//! The CNI protocol edge of the thin plugin: environment and stdin in, a result or a CNI
//! error document out, and the exit code.

use std::collections::BTreeMap;

use multus_core::cni::version::version_reply;
use multus_core::cni::{CniError, CniVersion, ErrorCode};
use multus_core::config::MultusConf;
use multus_core::engine::{Engine, MultusError, Seams};
use multus_core::request::{CniRequest, Command};
use multus_core::seams::{ApiError, ClusterApi};

use crate::cluster::{ApiSource, FileClusterApi, KubeClusterApi, NoClusterApi};
use crate::devices::{DevicePaths, DraSource, NodeDevices};
use crate::exec::ProcessExec;
use crate::files::FsConfigFiles;
use crate::netns::NetnsInspector;
use crate::state_store::FileStateStore;

pub use multus_core::cni::Outcome;

/// Handle one CNI invocation. Never panics; every failure becomes a CNI error.
pub fn run(env: &BTreeMap<String, String>, stdin: Vec<u8>) -> Outcome {
    let version_hint = stdin_version(&stdin);
    if env.get("CNI_COMMAND").map(String::as_str) == Some("VERSION") {
        return Outcome::success(version_reply(CniVersion::LATEST).to_string().into_bytes());
    }
    let request = match CniRequest::from_env(env, stdin) {
        Ok(request) => request,
        Err(e) => return Outcome::error(MultusError::from(e).to_cni_error(&version_hint)),
    };
    let conf = match MultusConf::parse(&request.stdin) {
        Ok(conf) => conf,
        Err(e) => return Outcome::error(MultusError::from(e).to_cni_error(&version_hint)),
    };
    crate::logging::init(
        conf.log_level.as_deref(),
        conf.log_file.as_deref(),
        conf.log_to_stderr,
    );
    let version = conf.cni_version.as_str();
    let source = ApiSource::for_conf(&conf, |key| std::env::var(key).ok());
    let result = if source.is_kubernetes() {
        run_with_kubernetes(&conf, &request, &source)
    } else {
        pollster::block_on(dispatch(&conf, &request, cluster_api(&conf).as_ref(), None))
    };
    match result {
        Ok(stdout) => Outcome::success(stdout),
        Err(e) => {
            let error = e.to_cni_error(version);
            tracing::error!(command = %request.command, container = %request.container_id, error = %e, details = %error.details, "CNI request failed");
            Outcome::error(error)
        }
    }
}

/// The Kubernetes path: a current-thread tokio runtime for kube-rs, made only here, with
/// the whole request run on it (so that the NAD GETs of one pod are concurrent).
fn run_with_kubernetes(
    conf: &MultusConf,
    request: &CniRequest,
    source: &ApiSource,
) -> Result<Vec<u8>, MultusError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| MultusError::Api {
            pod: request.pod.clone(),
            source: ApiError::Other(format!("cannot start the I/O runtime: {e}")),
        })?;
    runtime.block_on(async {
        let api = KubeClusterApi::connect(source, conf).await;
        dispatch(conf, request, &api, Some(&api)).await
    })
}

async fn dispatch(
    conf: &MultusConf,
    request: &CniRequest,
    api: &dyn ClusterApi,
    dra: Option<&dyn DraSource>,
) -> Result<Vec<u8>, MultusError> {
    let state = FileStateStore::new(&conf.cni_dir);
    let exec = ProcessExec::default();
    let devices = NodeDevices::new(DevicePaths::from_conf(conf), dra);
    let seams = Seams {
        api,
        exec: &exec,
        state: &state,
        netns: &NetnsInspector,
        files: &FsConfigFiles,
        devices: &devices,
    };
    let engine = Engine::new(conf, request, seams);
    match request.command {
        Command::Add => engine.add().await,
        Command::Del => engine.del().await.map(|()| Vec::new()),
        Command::Check => engine.check().await.map(|()| Vec::new()),
        Command::Status => engine.status().await.map(|()| Vec::new()),
        Command::Gc => engine.gc().await.map(|()| Vec::new()),
        Command::Version => Ok(version_reply(CniVersion::LATEST).to_string().into_bytes()),
    }
}

/// The cluster source without a Kubernetes API: file-based NADs, or none.
pub fn cluster_api(conf: &MultusConf) -> Box<dyn ClusterApi> {
    match &conf.network_attachment_dir {
        Some(dir) => Box::new(FileClusterApi::new(dir)),
        None => Box::new(NoClusterApi),
    }
}

/// The `cniVersion` of the stdin document, for error replies before the config parses.
fn stdin_version(stdin: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(stdin)
        .ok()
        .and_then(|v| v.get("cniVersion")?.as_str().map(str::to_owned))
        .unwrap_or_else(|| CniVersion::LATEST.as_str().to_owned())
}

/// The error document for input that could not even be read.
pub fn read_failure(reason: &str) -> Outcome {
    Outcome::error(CniError::new(
        ErrorCode::IoFailure,
        format!("Multus: cannot read stdin: {reason}"),
    ))
}
