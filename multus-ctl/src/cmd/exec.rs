//! `multus-ctl exec add|del|check|status|gc`: run the multus plugin exactly as a
//! container runtime does and decode its answer. In thick mode (`--shim`, or a
//! configuration of type `multus-shim`) the plugin is `multus-shim`, which forwards the
//! call to multus-daemon over its socket.

use std::collections::BTreeMap;
use std::time::Duration;

use multus_core::cni::CniResult;
use multus_core::config::POD_ANNOTATIONS_RUNTIME_KEY;
use multus_core::request::is_valid_container_id;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::cli::{ContainerExecArgs, ExecCommand, RuntimeArgs};
use crate::cni_call::{self, Call, DecodedError};
use crate::error::{CtlError, CtlResult, Outcome, one_line};
use crate::output::{Format, Level, Printer, or_dash, sections};
use crate::sources::{LoadedConf, load_conf, split_namespaced};

/// The `CNI_*` environment of one call.
pub fn cni_env(
    command: &str,
    container_id: &str,
    netns: &str,
    ifname: &str,
    cni_args: &str,
    cni_path: &str,
) -> BTreeMap<String, String> {
    multus_cni::exec::CniEnv {
        command,
        container_id,
        netns,
        ifname,
        args: cni_args,
        path: cni_path,
    }
    .vars()
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

/// The JSON/YAML document of one call.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExecReport {
    command: String,
    multus: String,
    /// Whether the plugin is multus-shim (thick mode: the daemon does the work).
    shim: bool,
    conf: String,
    /// The `CNI_*` environment the plugin ran with.
    env: BTreeMap<String, String>,
    success: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    exit_code: Option<i32>,
    /// The result document (ADD), as printed.
    #[serde(skip_serializing_if = "Option::is_none")]
    result: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<DecodedError>,
    /// What the plugin logged on stderr.
    stderr: String,
    /// Remarks on the call (e.g. a capability the configuration does not declare).
    notes: Vec<String>,
}

/// `exec ...`.
pub fn run(printer: &Printer, command: &ExecCommand) -> CtlResult {
    let (cni_command, runtime) = match command {
        ExecCommand::Add(a) => ("ADD", &a.runtime),
        ExecCommand::Del(a) => ("DEL", &a.runtime),
        ExecCommand::Check(a) => ("CHECK", &a.runtime),
        ExecCommand::Status { runtime } => ("STATUS", runtime),
        ExecCommand::Gc { runtime, .. } => ("GC", runtime),
    };
    let loaded = load_conf(&runtime.conf)?;
    let mut notes = Vec::new();
    let (env, stdin) = match command {
        ExecCommand::Add(a) | ExecCommand::Del(a) | ExecCommand::Check(a) => {
            container_call(cni_command, a, &loaded, &mut notes)?
        }
        ExecCommand::Status { runtime } => (
            cni_env("STATUS", "", "", "", "", &runtime.cni_path),
            loaded.bytes.clone(),
        ),
        ExecCommand::Gc { valid, runtime } => {
            let mut doc = loaded.raw.clone();
            let attachments = valid
                .iter()
                .map(|v| valid_attachment(v))
                .collect::<Result<Vec<Value>, CtlError>>()?;
            doc.insert(
                "cni.dev/valid-attachments".into(),
                Value::Array(attachments),
            );
            (
                cni_env("GC", "", "", "", "", &runtime.cni_path),
                Value::Object(doc).to_string().into_bytes(),
            )
        }
    };
    let shim = uses_shim(runtime, &loaded);
    if shim {
        notes.extend(shim_notes(&loaded));
    }
    let multus = cni_call::plugin_binary(runtime.multus.as_deref(), shim)?;
    let finished = cni_call::run(&Call {
        binary: multus.clone(),
        env: env.clone(),
        stdin,
        timeout: Duration::from_secs(runtime.timeout),
    })?;
    let success = finished.success();
    let stdout_value: Option<Value> = serde_json::from_slice(&finished.stdout).ok();
    let report = ExecReport {
        command: cni_command.to_owned(),
        multus: multus.display().to_string(),
        shim,
        conf: loaded.path.display().to_string(),
        env,
        success,
        exit_code: finished.code,
        result: if success { stdout_value } else { None },
        error: (!success).then(|| DecodedError::from_finished(&finished)),
        stderr: finished.stderr.clone(),
        notes,
    };
    if printer.format == Format::Table && !report.stderr.trim().is_empty() {
        // What the plugin logged, as a runtime would log it.
        eprint!("{}", report.stderr);
    }
    let fallback = loaded.conf.cni_version;
    printer.emit(&report, |p| render(p, &report, fallback))?;
    Ok(Outcome::from_problems(!success))
}

/// Thick mode: `--shim`, or a configuration of type `multus-shim`.
pub fn uses_shim(runtime: &RuntimeArgs, loaded: &LoadedConf) -> bool {
    runtime.shim || loaded.conf.plugin_type == "multus-shim"
}

/// What to know about a call through the shim: where it forwards to.
fn shim_notes(loaded: &LoadedConf) -> Vec<String> {
    let mut notes = Vec::new();
    if let Ok(shim) = multus_shim::shim::ShimConf::parse(&loaded.bytes) {
        notes.push(format!(
            "thick mode: multus-shim forwards the call to multus-daemon at {} (daemonSocketDir), which overlays its daemon-config.json and runs the delegates",
            shim.socket().display()
        ));
    }
    if loaded.conf.plugin_type != "multus-shim" {
        notes.push(format!(
            "--shim with a configuration of type {:?}: a runtime would run {} instead",
            loaded.conf.plugin_type, loaded.conf.plugin_type
        ));
    }
    notes
}

/// The environment and stdin of a call for a container (ADD, DEL, CHECK, STATUS with
/// `--container-id`).
fn container_call(
    command: &str,
    args: &ContainerExecArgs,
    loaded: &LoadedConf,
    notes: &mut Vec<String>,
) -> Result<(BTreeMap<String, String>, Vec<u8>), CtlError> {
    let netns = checked_netns(command, args)?;
    let cni_args = container_cni_args(args)?;
    let stdin = container_stdin(args, loaded, notes)?;
    Ok((
        cni_env(
            command,
            &args.container_id,
            &netns,
            &args.ifname,
            &cni_args,
            &args.runtime.cni_path,
        ),
        stdin,
    ))
}

/// `--netns`, which every command but DEL needs, and which must exist; after checking
/// `--container-id`.
fn checked_netns(command: &str, args: &ContainerExecArgs) -> Result<String, CtlError> {
    if !is_valid_container_id(&args.container_id) {
        return Err(CtlError::Usage(format!(
            "--container-id {:?} is not a valid container ID (letters, digits, '_', '.', '-'; starting with a letter or digit)",
            args.container_id
        )));
    }
    let netns = args.netns.clone().unwrap_or_default();
    if command != "DEL" {
        if netns.is_empty() {
            return Err(CtlError::Usage(format!(
                "{command} needs --netns PATH (the pod's network namespace, e.g. /run/netns/NAME)"
            )));
        }
        if !std::path::Path::new(&netns).exists() {
            return Err(CtlError::NotFound(format!(
                "the network namespace {netns} does not exist; create it (`ip netns add NAME` makes /run/netns/NAME) or pass the sandbox's netns path"
            )));
        }
    }
    Ok(netns)
}

/// `CNI_ARGS`: the pod's identity as kubelet passes it, then `--cni-arg`s.
fn container_cni_args(args: &ContainerExecArgs) -> Result<String, CtlError> {
    let mut cni_args = vec!["IgnoreUnknown=1".to_owned()];
    if let Some(pod) = &args.pod {
        let (namespace, name) = split_namespaced(pod, "pod")?;
        cni_args.push(format!("K8S_POD_NAMESPACE={namespace}"));
        cni_args.push(format!("K8S_POD_NAME={name}"));
        cni_args.push(format!("K8S_POD_INFRA_CONTAINER_ID={}", args.container_id));
    }
    if let Some(uid) = &args.pod_uid {
        cni_args.push(format!("K8S_POD_UID={uid}"));
    }
    for pair in &args.cni_args {
        let (key, _) = split_pair(pair, "--cni-arg")?;
        if key.contains(';') {
            return Err(CtlError::Usage(format!(
                "--cni-arg {pair:?}: a key cannot contain ';'"
            )));
        }
        cni_args.push(pair.clone());
    }
    Ok(cni_args.join(";"))
}

/// The configuration as read, or with `--annotation`s and `--prev-result` added.
fn container_stdin(
    args: &ContainerExecArgs,
    loaded: &LoadedConf,
    notes: &mut Vec<String>,
) -> Result<Vec<u8>, CtlError> {
    let mut doc = loaded.raw.clone();
    let mut changed = false;
    if !args.annotations.is_empty() {
        add_annotations(&mut doc, &args.annotations)?;
        changed = true;
        let declared = loaded
            .conf
            .capabilities
            .get(POD_ANNOTATIONS_RUNTIME_KEY)
            .and_then(Value::as_bool)
            == Some(true);
        if !declared {
            notes.push(format!(
                "the configuration does not declare the capability {POD_ANNOTATIONS_RUNTIME_KEY:?}: containerd and CRI-O would not pass these annotations"
            ));
        }
    }
    if let Some(path) = &args.prev_result {
        doc.insert("prevResult".into(), read_prev_result(path)?);
        changed = true;
    }
    Ok(if changed {
        Value::Object(doc).to_string().into_bytes()
    } else {
        loaded.bytes.clone()
    })
}

/// `runtimeConfig.io.kubernetes.cri.pod-annotations` as containerd passes it.
fn add_annotations(doc: &mut Map<String, Value>, pairs: &[String]) -> Result<(), CtlError> {
    let mut annotations = Map::new();
    for pair in pairs {
        let (key, value) = split_pair(pair, "--annotation")?;
        annotations.insert(key.to_owned(), Value::from(value));
    }
    let runtime_config = doc
        .entry("runtimeConfig")
        .or_insert_with(|| Value::Object(Map::new()));
    if !runtime_config.is_object() {
        *runtime_config = Value::Object(Map::new());
    }
    if let Some(object) = runtime_config.as_object_mut() {
        object.insert(
            POD_ANNOTATIONS_RUNTIME_KEY.to_owned(),
            Value::Object(annotations),
        );
    }
    Ok(())
}

/// The `--prev-result` file, parsed.
fn read_prev_result(path: &std::path::Path) -> Result<Value, CtlError> {
    let text = std::fs::read(path).map_err(|e| {
        CtlError::NotFound(format!(
            "cannot read --prev-result {}: {}",
            path.display(),
            one_line(e)
        ))
    })?;
    serde_json::from_slice(&text)
        .map_err(|e| CtlError::Usage(format!("--prev-result {} is not JSON: {e}", path.display())))
}

fn split_pair<'a>(pair: &'a str, flag: &str) -> Result<(&'a str, &'a str), CtlError> {
    match pair.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key, value)),
        _ => Err(CtlError::Usage(format!(
            "{flag} {pair:?}: expected KEY=VALUE"
        ))),
    }
}

fn valid_attachment(text: &str) -> Result<Value, CtlError> {
    let (id, ifname) = text.split_once('/').unwrap_or((text, "eth0"));
    if !is_valid_container_id(id) || ifname.is_empty() {
        return Err(CtlError::Usage(format!(
            "--valid-attachment {text:?}: expected CONTAINER_ID or CONTAINER_ID/IFNAME"
        )));
    }
    Ok(serde_json::json!({"containerID": id, "ifname": ifname}))
}

fn render(
    printer: &Printer,
    report: &ExecReport,
    fallback: multus_core::cni::CniVersion,
) -> String {
    let target = report
        .env
        .get("CNI_CONTAINERID")
        .filter(|id| !id.is_empty())
        .map(|id| format!(" for container {id}"))
        .unwrap_or_default();
    let mut parts = Vec::new();
    if report.success {
        parts.push(format!(
            "{} {}{target}",
            report.command,
            printer.level_text("succeeded", Level::Ok)
        ));
        if let Some(result) = &report.result
            && let Ok(parsed) = CniResult::from_value(result, fallback)
        {
            parts.push(result_tables(printer, &parsed));
        }
    } else if let Some(error) = &report.error {
        let mut text = format!(
            "{} {}{target}: CNI error {} ({})\n  msg: {}",
            report.command,
            printer.level_text("failed", Level::Error),
            error.code,
            error.meaning,
            error.msg
        );
        if !error.details.is_empty() {
            text.push_str(&format!("\n  details: {}", error.details));
        }
        parts.push(text);
    }
    if !report.notes.is_empty() {
        parts.push(
            report
                .notes
                .iter()
                .map(|n| format!("note: {n}"))
                .collect::<Vec<_>>()
                .join("\n"),
        );
    }
    sections(parts)
}

/// The interfaces, addresses, routes and DNS of a result.
pub fn result_tables(printer: &Printer, result: &CniResult) -> String {
    let mut parts = Vec::new();
    if !result.interfaces.is_empty() {
        let mut table = printer.table(&["#", "INTERFACE", "MAC", "SANDBOX"]);
        for (index, i) in result.interfaces.iter().enumerate() {
            table.add_row(vec![
                index.to_string(),
                i.name.clone(),
                or_dash(i.mac.as_deref().unwrap_or_default()),
                or_dash(i.sandbox.as_deref().unwrap_or_default()),
            ]);
        }
        parts.push(format!("{}\n{table}", printer.heading("Interfaces")));
    }
    if !result.ips.is_empty() {
        let mut table = printer.table(&["ADDRESS", "GATEWAY", "INTERFACE"]);
        for ip in &result.ips {
            table.add_row(vec![
                ip.address.clone(),
                or_dash(ip.gateway.as_deref().unwrap_or_default()),
                ip.interface.map_or("-".to_owned(), |i| {
                    result
                        .interfaces
                        .get(i)
                        .map_or(format!("#{i}"), |iface| format!("#{i} {}", iface.name))
                }),
            ]);
        }
        parts.push(format!("{}\n{table}", printer.heading("Addresses")));
    }
    if !result.routes.is_empty() {
        let mut table = printer.table(&["DESTINATION", "GATEWAY"]);
        for route in &result.routes {
            table.add_row(vec![
                route.dst.clone(),
                or_dash(route.gw.as_deref().unwrap_or_default()),
            ]);
        }
        parts.push(format!("{}\n{table}", printer.heading("Routes")));
    }
    if !result.dns.nameservers.is_empty() || !result.dns.search.is_empty() {
        parts.push(format!(
            "{}\nnameservers: {}\nsearch: {}",
            printer.heading("DNS"),
            or_dash(&result.dns.nameservers.join(", ")),
            or_dash(&result.dns.search.join(", "))
        ));
    }
    sections(parts)
}
