//! `multus-ctl config show`: the effective Multus configuration, every key of
//! [`MultusConf`] with its default applied.

use std::path::Path;

use multus_core::config::{MultusConf, PodAnnotationsSource};
use multus_core::delegate::DelegateConfig;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::error::{CtlResult, Outcome};
use crate::output::{Printer, or_dash, value_text};
use crate::sources::load_conf;

/// Keys a runtime or chaining adds that multus reads elsewhere or ignores on purpose.
const TOLERATED_KEYS: &[&str] = &["prevResult", "args", "ipam", "dns", "cni.dev/attachments"];

/// The JSON/YAML document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ConfigReport {
    /// The file.
    file: String,
    /// Every key, as named in the file, with its effective value.
    effective: Map<String, Value>,
    /// The keys the file sets (the others have their default).
    explicit: Vec<String>,
    /// Keys of the file that multus does not read (typos, or keys of other plugins).
    ignored_keys: Vec<String>,
}

/// Every key with its effective value, in the order of the configuration reference.
fn effective(conf: &MultusConf) -> Vec<(&'static str, Value)> {
    every_key_is_shown(conf);
    [
        networks(conf),
        logging(conf),
        behaviour(conf),
        devices(conf),
    ]
    .concat()
}

/// The exhaustive destructuring is the reminder: a key added to [`MultusConf`] does not
/// compile here until it is given a place in one of the groups of [`effective`].
fn every_key_is_shown(conf: &MultusConf) {
    // networks
    let MultusConf {
        cni_version: _,
        name: _,
        plugin_type: _,
        delegates: _,
        cluster_network: _,
        default_networks: _,
        system_namespaces: _,
        multus_namespace: _,
        conf_dir: _,
        cni_dir: _,
        bin_dir: _,
        kubeconfig: _,
        // logging
        log_level: _,
        log_file: _,
        log_to_stderr: _,
        log_options: _,
        // behaviour
        readiness_indicator_file: _,
        readiness_indicator_timeout: _,
        namespace_isolation: _,
        global_namespaces: _,
        retry_delete_on_error: _,
        auxiliary_cni_chain_name: _,
        capabilities: _,
        runtime_config: _,
        network_attachment_dir: _,
        pod_annotations_from: _,
        delegate_timeout_secs: _,
        api_timeout: _,
        api_retries: _,
        trust_runtime_annotations: _,
        allowed_plugin_types: _,
        max_networks_per_pod: _,
        allow_runtime_config_from_annotations: _,
        isolate_default_network: _,
        parallel_attach: _,
        parallel_attach_limit: _,
        // devices
        pod_resources_socket: _,
        device_checkpoint: _,
        device_info_dir: _,
        valid_attachments: _,
    } = conf;
}

fn path(p: &Option<std::path::PathBuf>) -> Value {
    p.as_ref()
        .map_or(Value::Null, |p| Value::from(p.display().to_string()))
}

fn text(t: &Option<String>) -> Value {
    t.as_ref().map_or(Value::Null, |t| Value::from(t.clone()))
}

/// The plugin itself, its networks and where it reads and writes.
fn networks(conf: &MultusConf) -> Vec<(&'static str, Value)> {
    vec![
        ("cniVersion", json!(conf.cni_version.as_str())),
        ("name", json!(conf.name)),
        ("type", json!(conf.plugin_type)),
        ("delegates", Value::Array(conf.delegates.clone())),
        ("clusterNetwork", text(&conf.cluster_network)),
        ("defaultNetworks", json!(conf.default_networks)),
        ("systemNamespaces", json!(conf.system_namespaces)),
        ("multusNamespace", json!(conf.multus_namespace)),
        ("confDir", json!(conf.conf_dir.display().to_string())),
        ("cniDir", json!(conf.cni_dir.display().to_string())),
        ("binDir", json!(conf.bin_dir.display().to_string())),
        ("kubeconfig", path(&conf.kubeconfig)),
    ]
}

/// The log keys.
fn logging(conf: &MultusConf) -> Vec<(&'static str, Value)> {
    vec![
        (
            "logLevel",
            json!(conf.log_level.clone().unwrap_or_else(|| "panic".to_owned())),
        ),
        ("logFile", path(&conf.log_file)),
        ("logToStderr", json!(conf.log_to_stderr)),
        (
            "logOptions",
            conf.log_options.as_ref().map_or(Value::Null, |o| {
                json!({"maxAge": o.max_age, "maxSize": o.max_size,
                       "maxBackups": o.max_backups, "compress": o.compress})
            }),
        ),
    ]
}

/// Readiness, isolation, timeouts, limits and what pods may ask for.
fn behaviour(conf: &MultusConf) -> Vec<(&'static str, Value)> {
    vec![
        (
            "readinessindicatorfile",
            path(&conf.readiness_indicator_file),
        ),
        (
            "readinessIndicatorTimeoutSeconds",
            json!(conf.readiness_indicator_timeout.as_secs_f64()),
        ),
        ("namespaceIsolation", json!(conf.namespace_isolation)),
        ("globalNamespaces", json!(conf.global_namespaces)),
        ("retryDeleteOnError", json!(conf.retry_delete_on_error)),
        (
            "auxiliaryCNIChainName",
            text(&conf.auxiliary_cni_chain_name),
        ),
        ("capabilities", Value::Object(conf.capabilities.clone())),
        ("runtimeConfig", Value::Object(conf.runtime_config.clone())),
        ("networkAttachmentDir", path(&conf.network_attachment_dir)),
        (
            "podAnnotationsFrom",
            json!(match conf.pod_annotations_from {
                PodAnnotationsSource::RuntimeConfig => "runtimeConfig",
                PodAnnotationsSource::None => "none",
            }),
        ),
        ("delegateTimeoutSeconds", json!(conf.delegate_timeout_secs)),
        ("apiTimeoutSeconds", json!(conf.api_timeout.as_secs_f64())),
        ("apiRetries", json!(conf.api_retries)),
        (
            "trustRuntimeAnnotations",
            json!(conf.trust_runtime_annotations),
        ),
        ("allowedPluginTypes", json!(conf.allowed_plugin_types)),
        ("maxNetworksPerPod", json!(conf.max_networks_per_pod)),
        (
            "allowRuntimeConfigFromAnnotations",
            json!(conf.allow_runtime_config_from_annotations),
        ),
        ("isolateDefaultNetwork", json!(conf.isolate_default_network)),
        ("parallelAttach", json!(conf.parallel_attach)),
        ("parallelAttachLimit", json!(conf.parallel_attach_limit)),
    ]
}

/// Where devices are found, and the attachments GC keeps.
fn devices(conf: &MultusConf) -> Vec<(&'static str, Value)> {
    vec![
        (
            "podResourcesSocket",
            json!(conf.pod_resources_socket.display().to_string()),
        ),
        (
            "deviceCheckpointFile",
            json!(conf.device_checkpoint.display().to_string()),
        ),
        (
            "deviceInfoDir",
            json!(conf.device_info_dir.display().to_string()),
        ),
        (
            "cni.dev/valid-attachments",
            serde_json::to_value(&conf.valid_attachments).unwrap_or(Value::Null),
        ),
    ]
}

/// `config show --conf FILE`.
pub fn show(printer: &Printer, conf_path: &Path) -> CtlResult {
    let loaded = load_conf(conf_path)?;
    let keys = effective(&loaded.conf);
    let explicit: Vec<String> = keys
        .iter()
        .filter(|(key, _)| loaded.raw.contains_key(*key))
        .map(|(key, _)| (*key).to_owned())
        .collect();
    let mut ignored_keys: Vec<String> = loaded
        .raw
        .keys()
        .filter(|k| !keys.iter().any(|(key, _)| key == k) && !TOLERATED_KEYS.contains(&k.as_str()))
        .cloned()
        .collect();
    ignored_keys.sort();
    let report = ConfigReport {
        file: loaded.path.display().to_string(),
        effective: keys
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
        explicit,
        ignored_keys,
    };
    printer.emit(&report, |p| render(p, &report, &keys))?;
    Ok(Outcome::Clean)
}

fn render(printer: &Printer, report: &ConfigReport, keys: &[(&'static str, Value)]) -> String {
    let mut table = printer.table(&["KEY", "VALUE", "SOURCE"]);
    for (key, value) in keys {
        let source = if report.explicit.iter().any(|k| k == key) {
            "file"
        } else {
            "default"
        };
        let shown = if *key == "delegates" {
            delegates_summary(value)
        } else {
            value_text(value)
        };
        table.add_row(vec![(*key).to_owned(), shown, source.to_owned()]);
    }
    let mut out = format!(
        "{}\n{table}",
        printer.heading(&format!("Multus configuration {}", report.file))
    );
    if !report.ignored_keys.is_empty() {
        out.push_str(&format!(
            "\nignored keys (multus does not read them; a typo?): {}",
            report.ignored_keys.join(", ")
        ));
    }
    out
}

/// `name (type, type)` per delegate.
fn delegates_summary(value: &Value) -> String {
    let Some(list) = value.as_array().filter(|l| !l.is_empty()) else {
        return "-".to_owned();
    };
    list.iter()
        .map(|d| match DelegateConfig::from_value(d) {
            Ok(config) => format!(
                "{} ({})",
                or_dash(config.name()),
                config.plugin_types().join(", ")
            ),
            Err(e) => format!("invalid: {e}"),
        })
        .collect::<Vec<_>>()
        .join("\n")
}
