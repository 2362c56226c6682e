//! `POST /delegate`: hot-plug one delegate into (or out of) a running pod, as upstream's
//! daemon offers it to integrations such as KubeVirt.
//!
//! The request's config is the delegate's own CNI config (a conf or a conflist), not a
//! multus configuration. `interfaceAttributes` asks for static IPs and a MAC (passed as
//! the `ips` and `mac` runtimeConfig to plugins that declare those capabilities, and as
//! the legacy `IP=` / `MAC=` CNI_ARGS on ADD) and `cni-args` (merged into `args.cni`).
//! The delegate runs with the request's `CNI_IFNAME`, the pod's CNI_ARGS and the
//! daemon's `binDir` before the request's `CNI_PATH`. As upstream: no NAD lookup, no
//! network-status update, no sandbox record (the caller owns the attachment's life).
//! Commands: ADD, DEL, CHECK, STATUS.

use multus_core::cni::{CniError, CniResult, CniVersion, ErrorCode};
use multus_core::daemon_api::{InterfaceAttributes, Request};
use multus_core::delegate::DelegateConfig;
use multus_core::engine::Invoker;
use multus_core::plan::{PlannedDelegate, base_cni_args};
use multus_core::request::{CniRequest, Command};
use multus_core::seams::ExecError;
use serde_json::{Map, Value};

use crate::server::Daemon;

fn error(code: ErrorCode, msg: String) -> CniError {
    CniError::new(code, msg)
}

/// Serve one `/delegate` request; `Some(result)` (CNI 1.0.0) for ADD.
pub async fn serve(daemon: &Daemon, request: Request) -> Result<Option<Value>, CniError> {
    let command = command(&request)?;
    let cni = CniRequest::from_env(&request.env, Vec::new())
        .map_err(|e| error(ErrorCode::InvalidEnvironment, format!("delegate: {e}")))?;
    let prev = prev_result(&request.config);
    let delegate = planned_delegate(&cni, request)?;
    let label = format!(
        "[{}/{}:{}]",
        cni.pod.namespace, cni.pod.name, delegate.network
    );
    let failed = |e: ExecError| delegate_failed(command, &label, &delegate, e);
    let mut search_path = vec![daemon.config.bin_dir.clone()];
    search_path.extend(cni.path.iter().map(std::path::PathBuf::from));
    // The engine's conflist loop runs the plugins; the request is one delegate.
    let invoker = Invoker {
        exec: &daemon.exec,
        container_id: cni.container_id.clone(),
        netns: cni.netns.clone(),
        search_path,
        timeout: daemon.config.delegate_timeout,
    };
    match command {
        Command::Add => {
            let last = invoker.add(&delegate).await.map_err(failed)?;
            let fallback = delegate.config.cni_version().unwrap_or(CniVersion::V1_0_0);
            let result = CniResult::from_value(&last, fallback).map_err(|e| {
                error(
                    ErrorCode::DecodeFailure,
                    format!("{label}: delegate result: {e}"),
                )
            })?;
            Ok(Some(result.to_value(CniVersion::V1_0_0)))
        }
        Command::Del => invoker
            .del(&delegate, prev.as_ref())
            .await
            .map(|()| None)
            .map_err(failed),
        Command::Check => invoker
            .check_with(&delegate, prev.as_ref())
            .await
            .map(|()| None)
            .map_err(failed),
        _ => invoker
            .status(&delegate.config)
            .await
            .map(|()| None)
            .map_err(failed),
    }
}

/// The request's `CNI_COMMAND`: ADD, DEL, CHECK or STATUS.
fn command(request: &Request) -> Result<Command, CniError> {
    let command_text = request.env.get("CNI_COMMAND").cloned().unwrap_or_default();
    match Command::parse(&command_text) {
        Some(command @ (Command::Add | Command::Del | Command::Check | Command::Status)) => {
            Ok(command)
        }
        _ => Err(error(
            ErrorCode::InvalidEnvironment,
            format!("delegate: unknown cmd type {command_text:?} (ADD, DEL, CHECK or STATUS)"),
        )),
    }
}

/// The request's config as the one delegate to run, with the interface attributes
/// (`cni-args`, MAC, IPs) applied.
fn planned_delegate(cni: &CniRequest, request: Request) -> Result<PlannedDelegate, CniError> {
    let config = DelegateConfig::from_bytes(&request.config).map_err(|e| {
        error(
            ErrorCode::InvalidNetworkConfig,
            format!("delegate: invalid delegate configuration: {e}"),
        )
    })?;
    let attributes = request.interface_attributes.unwrap_or_default();
    let config = match &attributes.cni_args {
        Some(cni_args) => config.with_cni_args(cni_args),
        None => config,
    };
    let base_args = base_cni_args(cni);
    let mut args = base_args.clone();
    if let Some(mac) = &attributes.mac {
        args.push("MAC", mac.clone());
    }
    if !attributes.ips.is_empty() {
        args.push("IP", attributes.ips.join(","));
    }
    Ok(PlannedDelegate {
        network: config.name().to_owned(),
        ifname: cni.ifname.clone(),
        cluster_network: false,
        runtime_config: runtime_config(&config, &attributes),
        cni_args: base_args.to_string(),
        add_cni_args: args.to_string(),
        default_route: None,
        resource_name: None,
        device: None,
        auxiliary: false,
        config,
    })
}

/// The CNI error of a failed delegate call.
fn delegate_failed(
    command: Command,
    label: &str,
    delegate: &PlannedDelegate,
    e: ExecError,
) -> CniError {
    let verb = match command {
        Command::Add => "adding",
        Command::Del => "deleting",
        Command::Check => "checking",
        _ => "getting the status of",
    };
    let preposition = if command == Command::Del {
        "from"
    } else {
        "to"
    };
    CniError {
        cni_version: String::new(),
        code: e.cni_code(),
        msg: format!(
            "{label}: error {verb} container {preposition} network {:?} ({}): {e}",
            delegate.network, delegate.ifname
        ),
        details: String::new(),
    }
}

/// `ips` and `mac` as runtimeConfig, over whatever runtimeConfig the config carries.
fn runtime_config(config: &DelegateConfig, attributes: &InterfaceAttributes) -> Map<String, Value> {
    let mut runtime = serde_json::from_str::<Map<String, Value>>(config.raw())
        .ok()
        .and_then(|doc| doc.get("runtimeConfig")?.as_object().cloned())
        .unwrap_or_default();
    if !attributes.ips.is_empty() {
        runtime.insert("ips".into(), attributes.ips.clone().into());
    }
    if let Some(mac) = &attributes.mac {
        runtime.insert("mac".into(), mac.clone().into());
    }
    runtime
}

/// The `prevResult` the caller put in the delegate config (for DEL and CHECK).
fn prev_result(config: &[u8]) -> Option<Value> {
    serde_json::from_slice::<Map<String, Value>>(config)
        .ok()?
        .get("prevResult")
        .filter(|v| !v.is_null())
        .cloned()
}
