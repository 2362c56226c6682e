//! The node side of `daemon-config.json`: reading the file, and what the daemon and
//! `multus-ctl` derive from the checked configuration ([`multus_core::daemon_config`])
//! with the node's environment: where pods and NADs come from, and the options of the
//! generated multus configuration.

use std::path::{Path, PathBuf};

use multus_core::daemon_config::{ConfigError, DaemonConfig};
use multus_core::generate::{Flavour, GeneratorOptions};
use serde_json::Value;

use crate::cluster::kube::ApiSource;

/// Read and check the daemon configuration file.
pub fn load(path: &Path) -> Result<DaemonConfig, ConfigError> {
    let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    DaemonConfig::parse(path, &bytes)
}

/// Where the daemon's pods and NADs come from: the daemon configuration's
/// `kubeconfig`, its `networkAttachmentDir`, the in-cluster environment, or none.
pub fn api_source(config: &DaemonConfig) -> ApiSource {
    ApiSource::select(
        config.kubeconfig.as_deref(),
        config.network_attachment_dir.as_deref(),
        |key| std::env::var(key).ok(),
    )
}

/// Generator options from the daemon configuration (thick flavour).
pub fn generator_options(config: &DaemonConfig) -> GeneratorOptions {
    let text = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    let raw_text = |key: &str| {
        config
            .raw
            .get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    let mut options = GeneratorOptions::new(Flavour::Thick {
        daemon_socket_dir: config.daemon_socket_dir.clone(),
        del_grace_seconds: config.del_grace_seconds,
        ready_timeout_seconds: config.ready_timeout_seconds,
    });
    options.cni_version = config.cni_version.clone();
    options.override_network_name = config.override_network_name;
    options.force_cni_version = config.force_cni_version;
    options.capabilities = config
        .raw
        .get("capabilities")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    options.log_file = text(&config.log_file);
    options.log_level = config.log_level.clone();
    options.log_to_stderr = config.raw.get("logToStderr").and_then(Value::as_bool);
    options.log_options = config.log_options.clone();
    options.bin_dir = raw_text("binDir");
    options.cni_dir = raw_text("cniDir");
    options.namespace_isolation = config
        .raw
        .get("namespaceIsolation")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    options.global_namespaces = raw_text("globalNamespaces");
    options.auxiliary_cni_chain_name = raw_text("auxiliaryCNIChainName");
    options.annotations_from_runtime = annotations_from_runtime(config);
    options
}

/// Whether the pods' annotations may come from the runtime (runtimeConfig
/// `io.kubernetes.cri.pod-annotations`): with file-based NADs or no API server (unless
/// `podAnnotationsFrom` is `none`), or with an API server and `trustRuntimeAnnotations`.
/// The generated conf must then declare that capability, or containerd never passes
/// them.
pub fn annotations_from_runtime(config: &DaemonConfig) -> bool {
    let raw = |key: &str| config.raw.get(key);
    if raw("podAnnotationsFrom").and_then(Value::as_str) == Some("none") {
        return false;
    }
    match api_source(config) {
        ApiSource::Files(_) | ApiSource::None => true,
        ApiSource::Kubeconfig(_) | ApiSource::InCluster => {
            raw("trustRuntimeAnnotations").and_then(Value::as_bool) == Some(true)
        }
    }
}
