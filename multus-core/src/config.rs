//! The Multus network configuration: the document the runtime passes on stdin
//! (`00-multus.conf`), with every key of upstream's thin configuration and its defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::cni::CniVersion;

/// Default directory searched for CNI configs named by a NAD with an empty spec.
pub const DEFAULT_CONF_DIR: &str = "/etc/cni/multus/net.d";
/// Default directory of multus' own per-sandbox state.
pub const DEFAULT_CNI_DIR: &str = "/var/lib/cni/multus";
/// Default directory searched first for delegate plugin binaries.
pub const DEFAULT_BIN_DIR: &str = "/opt/cni/bin";
/// Default namespace of NADs named by `clusterNetwork` and `defaultNetworks`.
pub const DEFAULT_MULTUS_NAMESPACE: &str = "kube-system";
/// Default delegate timeout in seconds.
pub const DEFAULT_DELEGATE_TIMEOUT_SECS: u64 = 120;
/// Default time limit of one Kubernetes API request, in seconds.
pub const DEFAULT_API_TIMEOUT_SECS: f64 = 10.0;
/// Default number of retries of a Kubernetes API request that failed transiently.
pub const DEFAULT_API_RETRIES: u32 = 3;
/// Default wait for `readinessindicatorfile`, in seconds (upstream's 45 s).
pub const DEFAULT_READINESS_TIMEOUT_SECS: f64 = 45.0;
/// Default kubelet pod-resources socket (`podResourcesSocket`).
pub const DEFAULT_POD_RESOURCES_SOCKET: &str = "/var/lib/kubelet/pod-resources/kubelet.sock";
/// Default device-manager checkpoint, read when the socket is absent
/// (`deviceCheckpointFile`).
pub const DEFAULT_DEVICE_CHECKPOINT: &str =
    "/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint";
/// Default directory of device-info files (`deviceInfoDir`; NPWG device-info spec).
pub const DEFAULT_DEVICE_INFO_DIR: &str = "/var/run/k8s.cni.cncf.io/devinfo";
/// Default cap on the networks one pod may request through its annotations
/// (`maxNetworksPerPod`).
pub const DEFAULT_MAX_NETWORKS_PER_POD: usize = 64;

/// `parallelAttachLimit` when not set: the CPUs this process may use.
pub fn default_parallel_attach_limit() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Errors found while reading the Multus configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The document is not valid JSON or a key has the wrong type.
    #[error("invalid multus configuration: {0}")]
    Json(#[from] serde_json::Error),
    /// `cniVersion` names a version this implementation does not know.
    #[error("invalid multus configuration: {0}")]
    Version(#[from] crate::cni::version::UnsupportedVersion),
    /// Neither `delegates` nor `clusterNetwork` is given.
    #[error("invalid multus configuration: at least one delegate/clusterNetwork must be specified")]
    NoClusterNetwork,
    /// A delegate of the static list is not a CNI config or config list.
    #[error("invalid multus configuration: delegate {index}: {reason}")]
    InvalidDelegate {
        /// Position in `delegates`.
        index: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// Log rotation options (`logOptions`), kept for compatibility.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogOptions {
    /// Days to keep rotated files.
    pub max_age: Option<u32>,
    /// Megabytes before rotation.
    pub max_size: Option<u32>,
    /// Rotated files kept.
    pub max_backups: Option<u32>,
    /// Compress rotated files.
    pub compress: Option<bool>,
}

/// The parsed Multus configuration.
///
/// Every upstream key is accepted with upstream's default; unknown keys are ignored
/// (and logged at debug level). The keys `networkAttachmentDir`, `podAnnotationsFrom`,
/// `delegateTimeoutSeconds`, `apiTimeoutSeconds`, `apiRetries`,
/// `readinessIndicatorTimeoutSeconds`, `trustRuntimeAnnotations`, `allowedPluginTypes`,
/// `maxNetworksPerPod`, `allowRuntimeConfigFromAnnotations`, `isolateDefaultNetwork`,
/// `podResourcesSocket`, `deviceCheckpointFile`, `deviceInfoDir`, `parallelAttach` and
/// `parallelAttachLimit` are multus-rs additions, documented in `docs/configuration.md`.
#[derive(Clone, Debug, PartialEq)]
pub struct MultusConf {
    /// CNI `name` of the Multus network.
    pub name: String,
    /// CNI `type` (`multus` or `multus-shim`).
    pub plugin_type: String,
    /// Multus' own CNI version: the version results are returned in.
    pub cni_version: CniVersion,
    /// Kubeconfig for API access.
    pub kubeconfig: Option<PathBuf>,
    /// Static delegate list (first is the cluster network), as raw JSON documents.
    pub delegates: Vec<Value>,
    /// Cluster network: NAD name, CNI config name in `confDir`, directory or file path.
    pub cluster_network: Option<String>,
    /// Networks added to every pod outside `systemNamespaces`.
    pub default_networks: Vec<String>,
    /// Namespaces whose pods do not get `defaultNetworks`.
    pub system_namespaces: Vec<String>,
    /// Namespace of NADs named by `clusterNetwork` and `defaultNetworks`.
    pub multus_namespace: String,
    /// Directory searched by CNI name for NADs with an empty spec.
    pub conf_dir: PathBuf,
    /// Directory of multus' per-sandbox state.
    pub cni_dir: PathBuf,
    /// First directory searched for plugin binaries.
    pub bin_dir: PathBuf,
    /// Log file.
    pub log_file: Option<PathBuf>,
    /// Log level (`debug`, `verbose`, `error`, `panic`).
    pub log_level: Option<String>,
    /// Echo logs to stderr.
    pub log_to_stderr: bool,
    /// Log rotation options.
    pub log_options: Option<LogOptions>,
    /// File whose existence signals that the cluster network is ready.
    pub readiness_indicator_file: Option<PathBuf>,
    /// Restrict `networks` entries to the pod's namespace and `globalNamespaces`.
    pub namespace_isolation: bool,
    /// Namespaces any pod may reference when isolation is on.
    pub global_namespaces: Vec<String>,
    /// Upstream's switch to keep state when a delegate DEL fails. Accepted for
    /// compatibility: the engine always keeps the record when a DEL fails.
    pub retry_delete_on_error: bool,
    /// Name of the auxiliary CNI chain.
    pub auxiliary_cni_chain_name: Option<String>,
    /// Multus' own capabilities (read by the runtime, not by multus).
    pub capabilities: Map<String, Value>,
    /// The runtime-injected `runtimeConfig`, every key kept.
    pub runtime_config: Map<String, Value>,
    /// Directory of NetworkAttachmentDefinition manifests (multus-rs: file-based networks).
    pub network_attachment_dir: Option<PathBuf>,
    /// Where pod annotations come from when no API server is used (multus-rs).
    pub pod_annotations_from: PodAnnotationsSource,
    /// Time limit for one delegate plugin call (multus-rs).
    pub delegate_timeout_secs: u64,
    /// Time limit of one Kubernetes API request (multus-rs `apiTimeoutSeconds`).
    pub api_timeout: Duration,
    /// Retries of a Kubernetes API request after a connection error, a 5xx or a 429
    /// (multus-rs `apiRetries`).
    pub api_retries: u32,
    /// How long ADD, STATUS and GC wait for `readinessindicatorfile` (multus-rs
    /// `readinessIndicatorTimeoutSeconds`).
    pub readiness_indicator_timeout: Duration,
    /// With a Kubernetes API: take the pod's annotations from the runtime's
    /// `io.kubernetes.cri.pod-annotations` when it passed them, and skip the pod GET
    /// (multus-rs `trustRuntimeAnnotations`).
    pub trust_runtime_annotations: bool,
    /// GC only: the attachments the runtime still uses (`cni.dev/valid-attachments`,
    /// or libcni's legacy `cni.dev/attachments` when that is absent).
    pub valid_attachments: Vec<ValidAttachment>,
    /// The only plugin types networks selected by a pod (NADs, annotations) may use;
    /// `None`: any type but multus itself (multus-rs `allowedPluginTypes`).
    pub allowed_plugin_types: Option<Vec<String>>,
    /// The most networks one pod may request through its annotations (multus-rs
    /// `maxNetworksPerPod`).
    pub max_networks_per_pod: usize,
    /// The runtimeConfig keys a pod's networks annotation may set (`portMappings`,
    /// `ips`, `mac`, `bandwidth`, `infinibandGUID`, `deviceID`); `None`: all of them, as
    /// upstream (multus-rs `allowRuntimeConfigFromAnnotations`).
    pub allow_runtime_config_from_annotations: Option<Vec<String>>,
    /// With `namespaceIsolation`: the `v1.multus-cni.io/default-network` override may
    /// name only NADs of the pod's namespace, `multusNamespace` and `globalNamespaces`
    /// (multus-rs `isolateDefaultNetwork`, default true).
    pub isolate_default_network: bool,
    /// The kubelet's pod-resources gRPC socket (multus-rs `podResourcesSocket`).
    pub pod_resources_socket: PathBuf,
    /// The device manager's checkpoint, read when the socket is absent (multus-rs
    /// `deviceCheckpointFile`).
    pub device_checkpoint: PathBuf,
    /// The device-info directory, with `dp/` and `cni/` below it (multus-rs
    /// `deviceInfoDir`).
    pub device_info_dir: PathBuf,
    /// Attach a pod's additional networks concurrently once its cluster network is
    /// attached (multus-rs `parallelAttach`, default false); a pod may override it
    /// with the `k8s.v1.cni.cncf.io/parallel-attach` annotation.
    pub parallel_attach: bool,
    /// The most delegates run at once by a parallel attach (multus-rs
    /// `parallelAttachLimit`); `None`: the number of CPUs (see
    /// [`MultusConf::parallel_attach_limit`]).
    pub parallel_attach_limit: Option<usize>,
}

/// One entry of `cni.dev/valid-attachments` (CNI 1.1 GC).
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, Deserialize)]
pub struct ValidAttachment {
    /// The sandbox's container ID.
    #[serde(rename = "containerID")]
    pub container_id: String,
    /// The interface name the runtime used for the attachment.
    pub ifname: String,
}

/// Where pod annotations are read from without an API server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PodAnnotationsSource {
    /// From the runtime's `runtimeConfig` key `io.kubernetes.cri.pod-annotations`.
    #[default]
    RuntimeConfig,
    /// Never: pods get only the cluster network and `defaultNetworks`.
    None,
}

/// The runtimeConfig key through which containerd and CRI-O pass the pod's annotations.
pub const POD_ANNOTATIONS_RUNTIME_KEY: &str = "io.kubernetes.cri.pod-annotations";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawConf {
    #[serde(default)]
    name: String,
    #[serde(default, rename = "type")]
    plugin_type: String,
    #[serde(default)]
    cni_version: String,
    kubeconfig: Option<PathBuf>,
    #[serde(default)]
    delegates: Vec<Value>,
    cluster_network: Option<String>,
    #[serde(default)]
    default_networks: Vec<String>,
    system_namespaces: Option<Vec<String>>,
    multus_namespace: Option<String>,
    conf_dir: Option<PathBuf>,
    cni_dir: Option<PathBuf>,
    bin_dir: Option<PathBuf>,
    log_file: Option<PathBuf>,
    log_level: Option<String>,
    log_to_stderr: Option<bool>,
    log_options: Option<LogOptions>,
    #[serde(rename = "readinessindicatorfile")]
    readiness_indicator_file: Option<PathBuf>,
    #[serde(default)]
    namespace_isolation: bool,
    global_namespaces: Option<String>,
    #[serde(default)]
    retry_delete_on_error: bool,
    #[serde(rename = "auxiliaryCNIChainName")]
    auxiliary_cni_chain_name: Option<String>,
    #[serde(default)]
    capabilities: Map<String, Value>,
    #[serde(default)]
    runtime_config: Map<String, Value>,
    network_attachment_dir: Option<PathBuf>,
    #[serde(default)]
    pod_annotations_from: PodAnnotationsSource,
    delegate_timeout_seconds: Option<u64>,
    api_timeout_seconds: Option<f64>,
    api_retries: Option<u32>,
    readiness_indicator_timeout_seconds: Option<f64>,
    #[serde(default)]
    trust_runtime_annotations: bool,
    #[serde(rename = "cni.dev/valid-attachments")]
    valid_attachments: Option<Vec<ValidAttachment>>,
    /// libcni's legacy name of `cni.dev/valid-attachments`, read when that is absent.
    #[serde(rename = "cni.dev/attachments")]
    legacy_attachments: Option<Vec<ValidAttachment>>,
    allowed_plugin_types: Option<Vec<String>>,
    max_networks_per_pod: Option<usize>,
    allow_runtime_config_from_annotations: Option<Vec<String>>,
    isolate_default_network: Option<bool>,
    pod_resources_socket: Option<PathBuf>,
    device_checkpoint_file: Option<PathBuf>,
    device_info_dir: Option<PathBuf>,
    #[serde(default)]
    parallel_attach: bool,
    parallel_attach_limit: Option<usize>,
    #[serde(flatten)]
    unknown: Map<String, Value>,
}

/// Keys a runtime or chaining may add that multus reads elsewhere or on purpose ignores.
const TOLERATED_KEYS: &[&str] = &["prevResult", "args", "ipam", "dns"];

impl MultusConf {
    /// The most delegates one parallel attach runs at once: `parallelAttachLimit`, else
    /// the number of CPUs.
    pub fn parallel_attach_limit(&self) -> usize {
        self.parallel_attach_limit
            .unwrap_or_else(default_parallel_attach_limit)
    }

    /// Parse the configuration the runtime passed on stdin.
    pub fn parse(bytes: &[u8]) -> Result<Self, ConfigError> {
        let mut raw: RawConf = serde_json::from_slice(bytes)?;
        for key in raw.unknown.keys() {
            if !TOLERATED_KEYS.contains(&key.as_str()) {
                tracing::debug!(key, "ignoring unknown multus configuration key");
            }
        }
        let cni_version = if raw.cni_version.is_empty() {
            CniVersion::V0_3_1
        } else {
            raw.cni_version.parse()?
        };
        let (cluster_network, delegates) = cluster_network(&mut raw)?;
        Ok(Self::from_checked(
            raw,
            cni_version,
            cluster_network,
            delegates,
        ))
    }

    /// The configuration from its checked parts, with defaults applied.
    fn from_checked(
        raw: RawConf,
        cni_version: CniVersion,
        cluster_network: Option<String>,
        delegates: Vec<Value>,
    ) -> Self {
        Self {
            name: raw.name,
            plugin_type: raw.plugin_type,
            cni_version,
            kubeconfig: raw.kubeconfig.filter(|p| !p.as_os_str().is_empty()),
            delegates,
            cluster_network,
            default_networks: raw.default_networks,
            system_namespaces: raw
                .system_namespaces
                .unwrap_or_else(|| vec!["kube-system".to_owned()]),
            multus_namespace: raw
                .multus_namespace
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| DEFAULT_MULTUS_NAMESPACE.to_owned()),
            conf_dir: non_empty_or(raw.conf_dir, DEFAULT_CONF_DIR),
            cni_dir: non_empty_or(raw.cni_dir, DEFAULT_CNI_DIR),
            bin_dir: non_empty_or(raw.bin_dir, DEFAULT_BIN_DIR),
            log_file: raw.log_file.filter(|p| !p.as_os_str().is_empty()),
            log_level: raw.log_level.filter(|l| !l.is_empty()),
            log_to_stderr: raw.log_to_stderr.unwrap_or(true),
            log_options: raw.log_options,
            readiness_indicator_file: raw
                .readiness_indicator_file
                .filter(|p| !p.as_os_str().is_empty()),
            namespace_isolation: raw.namespace_isolation,
            global_namespaces: global_namespaces(raw.global_namespaces),
            retry_delete_on_error: raw.retry_delete_on_error,
            auxiliary_cni_chain_name: raw.auxiliary_cni_chain_name.filter(|n| !n.is_empty()),
            capabilities: raw.capabilities,
            runtime_config: raw.runtime_config,
            network_attachment_dir: raw
                .network_attachment_dir
                .filter(|p| !p.as_os_str().is_empty()),
            pod_annotations_from: raw.pod_annotations_from,
            delegate_timeout_secs: raw
                .delegate_timeout_seconds
                .filter(|s| *s > 0)
                .unwrap_or(DEFAULT_DELEGATE_TIMEOUT_SECS),
            api_timeout: seconds(raw.api_timeout_seconds, DEFAULT_API_TIMEOUT_SECS),
            api_retries: raw.api_retries.unwrap_or(DEFAULT_API_RETRIES),
            readiness_indicator_timeout: seconds(
                raw.readiness_indicator_timeout_seconds,
                DEFAULT_READINESS_TIMEOUT_SECS,
            ),
            trust_runtime_annotations: raw.trust_runtime_annotations,
            valid_attachments: raw
                .valid_attachments
                .or(raw.legacy_attachments)
                .unwrap_or_default(),
            allowed_plugin_types: raw.allowed_plugin_types,
            max_networks_per_pod: raw
                .max_networks_per_pod
                .unwrap_or(DEFAULT_MAX_NETWORKS_PER_POD),
            allow_runtime_config_from_annotations: raw.allow_runtime_config_from_annotations,
            isolate_default_network: raw.isolate_default_network.unwrap_or(true),
            pod_resources_socket: non_empty_or(
                raw.pod_resources_socket,
                DEFAULT_POD_RESOURCES_SOCKET,
            ),
            device_checkpoint: non_empty_or(raw.device_checkpoint_file, DEFAULT_DEVICE_CHECKPOINT),
            device_info_dir: non_empty_or(raw.device_info_dir, DEFAULT_DEVICE_INFO_DIR),
            parallel_attach: raw.parallel_attach,
            parallel_attach_limit: raw.parallel_attach_limit.filter(|n| *n > 0),
        }
    }

    /// The pod annotations the runtime passed in `runtimeConfig`, when the configuration
    /// says to read them from there.
    pub fn runtime_pod_annotations(&self) -> Option<BTreeMap<String, String>> {
        if self.pod_annotations_from != PodAnnotationsSource::RuntimeConfig {
            return None;
        }
        let object = self
            .runtime_config
            .get(POD_ANNOTATIONS_RUNTIME_KEY)?
            .as_object()?;
        Some(
            object
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_owned())))
                .collect(),
        )
    }
}

/// `globalNamespaces`: a comma-separated list, `default` when unset.
fn global_namespaces(list: Option<String>) -> Vec<String> {
    match list {
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        None => vec!["default".to_owned()],
    }
}

/// The cluster network and the static `delegates` (taken out of `raw`): one of them
/// must be set, and every delegate must be a valid config.
fn cluster_network(raw: &mut RawConf) -> Result<(Option<String>, Vec<Value>), ConfigError> {
    let cluster_network = raw.cluster_network.take().filter(|c| !c.is_empty());
    if cluster_network.is_none() && raw.delegates.is_empty() {
        return Err(ConfigError::NoClusterNetwork);
    }
    // Upstream ignores `delegates` entirely when `clusterNetwork` is set.
    let delegates = if cluster_network.is_some() {
        Vec::new()
    } else {
        std::mem::take(&mut raw.delegates)
    };
    for (index, delegate) in delegates.iter().enumerate() {
        if let Err(reason) = crate::delegate::DelegateConfig::from_value(delegate) {
            return Err(ConfigError::InvalidDelegate {
                index,
                reason: reason.to_string(),
            });
        }
    }
    Ok((cluster_network, delegates))
}

/// A positive, finite number of seconds (at most a day), else the default.
fn seconds(value: Option<f64>, default: f64) -> Duration {
    let secs = value
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(default, |s| s.min(86_400.0));
    Duration::from_secs_f64(secs)
}

fn non_empty_or(path: Option<PathBuf>, default: &str) -> PathBuf {
    path.filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| PathBuf::from(default))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_thin_conf_gets_upstream_defaults() {
        let conf = MultusConf::parse(
            br#"{"cniVersion":"0.3.1","name":"multus-cni-network","type":"multus",
                "kubeconfig":"/etc/cni/net.d/multus.d/multus.kubeconfig",
                "delegates":[{"cniVersion":"0.3.1","name":"cbr0","plugins":[{"type":"flannel"}]}]}"#,
        )
        .unwrap();
        assert_eq!(conf.cni_version, CniVersion::V0_3_1);
        assert_eq!(conf.conf_dir, PathBuf::from("/etc/cni/multus/net.d"));
        assert_eq!(conf.cni_dir, PathBuf::from("/var/lib/cni/multus"));
        assert_eq!(conf.bin_dir, PathBuf::from("/opt/cni/bin"));
        assert_eq!(conf.multus_namespace, "kube-system");
        assert_eq!(conf.system_namespaces, vec!["kube-system"]);
        assert_eq!(conf.global_namespaces, vec!["default"]);
        assert!(conf.log_to_stderr);
        assert!(!conf.namespace_isolation);
        assert_eq!(conf.delegates.len(), 1);
    }

    #[test]
    fn cluster_network_wins_over_delegates() {
        let conf = MultusConf::parse(
            br#"{"cniVersion":"1.0.0","clusterNetwork":"/etc/cni/net.d/10-bridge.conf",
                "delegates":[{"type":"bogus"}],"globalNamespaces":" a, b ,"}"#,
        )
        .unwrap();
        assert!(conf.delegates.is_empty());
        assert_eq!(conf.global_namespaces, vec!["a", "b"]);
    }

    #[test]
    fn missing_cluster_network_is_an_error() {
        let err = MultusConf::parse(br#"{"cniVersion":"1.0.0","name":"m"}"#).unwrap_err();
        assert!(matches!(err, ConfigError::NoClusterNetwork));
    }

    #[test]
    fn delegate_without_type_or_plugins_is_refused() {
        let err = MultusConf::parse(br#"{"delegates":[{"name":"x"}]}"#).unwrap_err();
        assert!(matches!(err, ConfigError::InvalidDelegate { index: 0, .. }));
    }

    #[test]
    fn unsupported_version_is_refused() {
        let err =
            MultusConf::parse(br#"{"cniVersion":"9.9.9","delegates":[{"type":"a"}]}"#).unwrap_err();
        assert!(matches!(err, ConfigError::Version(_)));
    }

    #[test]
    fn api_and_readiness_keys_have_defaults_and_accept_fractions() {
        let conf = MultusConf::parse(br#"{"delegates":[{"type":"a"}]}"#).unwrap();
        assert_eq!(conf.api_timeout, Duration::from_secs(10));
        assert_eq!(conf.api_retries, 3);
        assert_eq!(conf.readiness_indicator_timeout, Duration::from_secs(45));
        assert!(!conf.trust_runtime_annotations);
        let conf = MultusConf::parse(
            br#"{"delegates":[{"type":"a"}],"apiTimeoutSeconds":0.5,"apiRetries":0,
                "readinessIndicatorTimeoutSeconds":2,"trustRuntimeAnnotations":true}"#,
        )
        .unwrap();
        assert_eq!(conf.api_timeout, Duration::from_millis(500));
        assert_eq!(conf.api_retries, 0);
        assert_eq!(conf.readiness_indicator_timeout, Duration::from_secs(2));
        assert!(conf.trust_runtime_annotations);
        let conf =
            MultusConf::parse(br#"{"delegates":[{"type":"a"}],"apiTimeoutSeconds":-1}"#).unwrap();
        assert_eq!(conf.api_timeout, Duration::from_secs(10));
    }

    #[test]
    fn hostile_input_keys_have_safe_defaults() {
        let conf = MultusConf::parse(br#"{"delegates":[{"type":"a"}]}"#).unwrap();
        assert_eq!(conf.allowed_plugin_types, None);
        assert_eq!(conf.max_networks_per_pod, 64);
        assert_eq!(conf.allow_runtime_config_from_annotations, None);
        assert!(conf.isolate_default_network);
        let conf = MultusConf::parse(
            br#"{"delegates":[{"type":"a"}],"allowedPluginTypes":["bridge"],"maxNetworksPerPod":3,
                "allowRuntimeConfigFromAnnotations":[],"isolateDefaultNetwork":false}"#,
        )
        .unwrap();
        assert_eq!(conf.allowed_plugin_types, Some(vec!["bridge".to_owned()]));
        assert_eq!(conf.max_networks_per_pod, 3);
        assert_eq!(conf.allow_runtime_config_from_annotations, Some(Vec::new()));
        assert!(!conf.isolate_default_network);
    }

    #[test]
    fn parallel_attach_is_off_by_default_and_bounded() {
        let conf = MultusConf::parse(br#"{"delegates":[{"type":"a"}]}"#).unwrap();
        assert!(!conf.parallel_attach);
        assert_eq!(conf.parallel_attach_limit, None);
        assert_eq!(
            conf.parallel_attach_limit(),
            default_parallel_attach_limit()
        );
        assert!(conf.parallel_attach_limit() >= 1);
        let conf = MultusConf::parse(
            br#"{"delegates":[{"type":"a"}],"parallelAttach":true,"parallelAttachLimit":3}"#,
        )
        .unwrap();
        assert!(conf.parallel_attach);
        assert_eq!(conf.parallel_attach_limit(), 3);
        let conf =
            MultusConf::parse(br#"{"delegates":[{"type":"a"}],"parallelAttachLimit":0}"#).unwrap();
        assert_eq!(conf.parallel_attach_limit, None);
    }

    #[test]
    fn runtime_annotations_are_read_from_runtime_config() {
        let conf = MultusConf::parse(
            br#"{"delegates":[{"type":"a"}],"runtimeConfig":{
                "io.kubernetes.cri.pod-annotations":{"k8s.v1.cni.cncf.io/networks":"a,b"}}}"#,
        )
        .unwrap();
        let annotations = conf.runtime_pod_annotations().unwrap();
        assert_eq!(annotations["k8s.v1.cni.cncf.io/networks"], "a,b");
    }
}
