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
///
/// The destructuring is exhaustive on purpose: a key added to [`MultusConf`] does not
/// compile here until `config show` shows it.
fn effective(conf: &MultusConf) -> Vec<(&'static str, Value)> {
    let MultusConf {
        name,
        plugin_type,
        cni_version,
        kubeconfig,
        delegates,
        cluster_network,
        default_networks,
        system_namespaces,
        multus_namespace,
        conf_dir,
        cni_dir,
        bin_dir,
        log_file,
        log_level,
        log_to_stderr,
        log_options,
        readiness_indicator_file,
        namespace_isolation,
        global_namespaces,
        retry_delete_on_error,
        auxiliary_cni_chain_name,
        capabilities,
        runtime_config,
        network_attachment_dir,
        pod_annotations_from,
        delegate_timeout_secs,
        api_timeout,
        api_retries,
        readiness_indicator_timeout,
        trust_runtime_annotations,
        valid_attachments,
        allowed_plugin_types,
        max_networks_per_pod,
        allow_runtime_config_from_annotations,
        isolate_default_network,
        pod_resources_socket,
        device_checkpoint,
        device_info_dir,
        parallel_attach,
        parallel_attach_limit,
    } = conf;
    let path = |p: &Option<std::path::PathBuf>| {
        p.as_ref()
            .map_or(Value::Null, |p| Value::from(p.display().to_string()))
    };
    let text = |t: &Option<String>| t.as_ref().map_or(Value::Null, |t| Value::from(t.clone()));
    vec![
        ("cniVersion", json!(cni_version.as_str())),
        ("name", json!(name)),
        ("type", json!(plugin_type)),
        ("delegates", Value::Array(delegates.clone())),
        ("clusterNetwork", text(cluster_network)),
        ("defaultNetworks", json!(default_networks)),
        ("systemNamespaces", json!(system_namespaces)),
        ("multusNamespace", json!(multus_namespace)),
        ("confDir", json!(conf_dir.display().to_string())),
        ("cniDir", json!(cni_dir.display().to_string())),
        ("binDir", json!(bin_dir.display().to_string())),
        ("kubeconfig", path(kubeconfig)),
        (
            "logLevel",
            json!(log_level.clone().unwrap_or_else(|| "panic".to_owned())),
        ),
        ("logFile", path(log_file)),
        ("logToStderr", json!(log_to_stderr)),
        (
            "logOptions",
            log_options.as_ref().map_or(Value::Null, |o| {
                json!({"maxAge": o.max_age, "maxSize": o.max_size,
                       "maxBackups": o.max_backups, "compress": o.compress})
            }),
        ),
        ("readinessindicatorfile", path(readiness_indicator_file)),
        (
            "readinessIndicatorTimeoutSeconds",
            json!(readiness_indicator_timeout.as_secs_f64()),
        ),
        ("namespaceIsolation", json!(namespace_isolation)),
        ("globalNamespaces", json!(global_namespaces)),
        ("retryDeleteOnError", json!(retry_delete_on_error)),
        ("auxiliaryCNIChainName", text(auxiliary_cni_chain_name)),
        ("capabilities", Value::Object(capabilities.clone())),
        ("runtimeConfig", Value::Object(runtime_config.clone())),
        ("networkAttachmentDir", path(network_attachment_dir)),
        (
            "podAnnotationsFrom",
            json!(match pod_annotations_from {
                PodAnnotationsSource::RuntimeConfig => "runtimeConfig",
                PodAnnotationsSource::None => "none",
            }),
        ),
        ("delegateTimeoutSeconds", json!(delegate_timeout_secs)),
        ("apiTimeoutSeconds", json!(api_timeout.as_secs_f64())),
        ("apiRetries", json!(api_retries)),
        ("trustRuntimeAnnotations", json!(trust_runtime_annotations)),
        ("allowedPluginTypes", json!(allowed_plugin_types)),
        ("maxNetworksPerPod", json!(max_networks_per_pod)),
        (
            "allowRuntimeConfigFromAnnotations",
            json!(allow_runtime_config_from_annotations),
        ),
        ("isolateDefaultNetwork", json!(isolate_default_network)),
        ("parallelAttach", json!(parallel_attach)),
        ("parallelAttachLimit", json!(parallel_attach_limit)),
        (
            "podResourcesSocket",
            json!(pod_resources_socket.display().to_string()),
        ),
        (
            "deviceCheckpointFile",
            json!(device_checkpoint.display().to_string()),
        ),
        (
            "deviceInfoDir",
            json!(device_info_dir.display().to_string()),
        ),
        (
            "cni.dev/valid-attachments",
            serde_json::to_value(valid_attachments).unwrap_or(Value::Null),
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
