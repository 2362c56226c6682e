//! `daemon-config.json`: every key of upstream's daemon configuration with upstream's
//! defaults, the multus-rs additions, and the whole document kept for the per-request
//! overlay (upstream §5.6).
//!
//! Every key is checked when the daemon starts; a wrong one is an error that names the
//! key, what was expected and what was found.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::cni::CniVersion;
use crate::config::MultusConf;
use crate::identity::PerNodeCertificate;
use serde_json::{Map, Value};

/// Default `--config`.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/cni/net.d/multus.d/daemon-config.json";
/// Default `cniConfigDir`.
pub const DEFAULT_CNI_CONFIG_DIR: &str = "/etc/cni/net.d";
/// Default `maxQueuedRequests`.
pub const DEFAULT_MAX_QUEUED: usize = 64;
/// Default `queueTimeoutSeconds`.
pub const DEFAULT_QUEUE_TIMEOUT_SECS: f64 = 30.0;
/// Default `reapStaleRecordsSeconds`.
pub const DEFAULT_REAP_STALE_RECORDS_SECS: u64 = 600;
/// The key of the readiness indicator file (all lower case, as upstream).
pub const READINESS_KEY: &str = "readinessindicatorfile";

/// Why the configuration cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not a JSON object.
    #[error("{path} is not valid JSON: {reason}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        reason: String,
    },
    /// One key is wrong.
    #[error("{path}: key `{key}`: {reason}")]
    Key {
        /// The file.
        path: PathBuf,
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
}

/// `multusConfigFile`: generate multus' conf, or copy a given one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConfigFileMode {
    /// `auto`: generate from the primary CNI config and keep it in sync.
    Auto,
    /// A path: copy this file into `cniConfigDir`.
    Copy(PathBuf),
}

/// The parsed daemon configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct DaemonConfig {
    /// The file it was read from.
    pub path: PathBuf,
    /// The whole document, overlaid onto every request's configuration.
    pub raw: Map<String, Value>,
    /// `chrootDir`: delegates run `chroot`ed here.
    pub chroot_dir: Option<PathBuf>,
    /// `socketDir` (default `/run/multus/`).
    pub socket_dir: PathBuf,
    /// `daemonSocketDir`: written into the generated conf for the shim.
    pub daemon_socket_dir: Option<String>,
    /// `metricsPort`.
    pub metrics_port: Option<u16>,
    /// `metricsAddress` (multus-rs): the address the metrics listener binds.
    pub metrics_address: String,
    /// `enablePprof` (accepted; there is no Go profiler to enable).
    pub enable_pprof: bool,
    /// `connectionLimit`: most connections accepted at once on the socket.
    pub connection_limit: Option<usize>,
    /// `logFile`.
    pub log_file: Option<PathBuf>,
    /// `logLevel`.
    pub log_level: Option<String>,
    /// `logToStderr` (default false, as upstream's daemon).
    pub log_to_stderr: bool,
    /// `logOptions`, copied into the generated conf.
    pub log_options: Option<Value>,
    /// `multusConfigFile`.
    pub config_file: ConfigFileMode,
    /// `multusAutoconfigDir` (default: `cniConfigDir`).
    pub autoconfig_dir: PathBuf,
    /// `multusMasterCNI`: the primary's file name, instead of the lexically first.
    pub master_cni: Option<String>,
    /// `cniConfigDir` (default `/etc/cni/net.d`).
    pub cni_config_dir: PathBuf,
    /// `cniVersion` of the generated conf.
    pub cni_version: Option<String>,
    /// `forceCNIVersion`.
    pub force_cni_version: bool,
    /// `overrideNetworkName`.
    pub override_network_name: bool,
    /// `readinessindicatorfile`.
    pub readiness_indicator_file: Option<PathBuf>,
    /// `binDir` (default `/opt/cni/bin`): first directory searched for delegates.
    pub bin_dir: PathBuf,
    /// `maxConcurrentRequests` (multus-rs; default 2 x CPUs).
    pub max_concurrent: usize,
    /// `maxQueuedRequests` (multus-rs; default 64).
    pub max_queued: usize,
    /// `queueTimeoutSeconds` (multus-rs; default 30).
    pub queue_timeout: Duration,
    /// `daemonUnreachableDelGraceSeconds` (multus-rs shim key, written into the conf).
    pub del_grace_seconds: Option<u64>,
    /// `daemonReadyTimeoutSeconds` (multus-rs shim key, written into the conf).
    pub ready_timeout_seconds: Option<f64>,
    /// `reapStaleRecordsSeconds` (multus-rs; default 600): how often records of
    /// sandboxes whose pod is gone are torn down, and how old a record must be for
    /// that; `None` (the key set to 0) never.
    pub reap_stale_records: Option<Duration>,
    /// `kubeconfig`: the daemon's API credentials (else in-cluster).
    pub kubeconfig: Option<PathBuf>,
    /// `networkAttachmentDir`: file-based NADs (no API server).
    pub network_attachment_dir: Option<PathBuf>,
    /// `apiTimeoutSeconds`.
    pub api_timeout: Duration,
    /// `apiRetries`.
    pub api_retries: u32,
    /// `delegateTimeoutSeconds` (used by `/delegate`).
    pub delegate_timeout: Duration,
    /// `perNodeCertificate`: authenticate as `system:multus:<node>` with a certificate
    /// obtained through the bootstrap kubeconfig and rotated (`None` when not enabled).
    pub per_node_certificate: Option<PerNodeCertificate>,
}

/// Keys read as the daemon's own (the others are multus configuration keys, checked by
/// parsing them as such, or unknown and ignored).
const DAEMON_KEYS: &[&str] = &[
    "chrootDir",
    "socketDir",
    "daemonSocketDir",
    "metricsPort",
    "metricsAddress",
    "enablePprof",
    "connectionLimit",
    "perNodeCertificate",
    "multusConfigFile",
    "multusAutoconfigDir",
    "multusMasterCNI",
    "cniConfigDir",
    "forceCNIVersion",
    "overrideNetworkName",
    "maxConcurrentRequests",
    "maxQueuedRequests",
    "queueTimeoutSeconds",
    "daemonUnreachableDelGraceSeconds",
    "daemonReadyTimeoutSeconds",
    "reapStaleRecordsSeconds",
];

struct Keys<'a> {
    path: &'a Path,
    map: &'a Map<String, Value>,
}

impl Keys<'_> {
    fn error(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Key {
            path: self.path.to_owned(),
            key: key.to_owned(),
            reason: reason.into(),
        }
    }

    fn wrong(&self, key: &str, expected: &str, found: &Value) -> ConfigError {
        self.error(key, format!("expected {expected}, found {found}"))
    }

    /// A present, non-null value.
    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    fn string(&self, key: &str) -> Result<Option<String>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(self.wrong(key, "a string", other)),
        }
    }

    fn path(&self, key: &str) -> Result<Option<PathBuf>, ConfigError> {
        Ok(self.string(key)?.map(PathBuf::from))
    }

    fn bool(&self, key: &str) -> Result<bool, ConfigError> {
        match self.get(key) {
            None => Ok(false),
            Some(Value::Bool(b)) => Ok(*b),
            Some(other) => Err(self.wrong(key, "true or false", other)),
        }
    }

    fn integer(&self, key: &str, min: u64, max: u64) -> Result<Option<u64>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => match value.as_u64() {
                Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
                _ => Err(self.wrong(key, &format!("an integer from {min} to {max}"), value)),
            },
        }
    }

    fn seconds(&self, key: &str, min_exclusive_zero: bool) -> Result<Option<f64>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => match value.as_f64() {
                Some(s)
                    if s.is_finite()
                        && s <= 86_400.0
                        && (s > 0.0 || (!min_exclusive_zero && s == 0.0)) =>
                {
                    Ok(Some(s))
                }
                _ => Err(self.wrong(
                    key,
                    if min_exclusive_zero {
                        "a number of seconds above 0 (at most 86400)"
                    } else {
                        "a number of seconds, 0 or more (at most 86400)"
                    },
                    value,
                )),
            },
        }
    }
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

impl DaemonConfig {
    /// Parse and check a document read from `path`.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self, ConfigError> {
        let raw: Map<String, Value> =
            serde_json::from_slice(bytes).map_err(|e| ConfigError::Json {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        let keys = Keys { path, map: &raw };
        // Checked in this order, so that the first bad key is the one reported.
        let per_node_certificate = per_node_certificate(&keys)?;
        let connection_limit = connection_limit(&keys)?;
        let files = ConfigFileKeys::read(&keys)?;
        let admission = AdmissionKeys::read(&keys)?;
        let metrics = MetricsKeys::read(&keys)?;
        check_directories(&keys)?;
        let log_options = log_options(&keys)?;
        let multus = check_multus_keys(&keys)?;

        Ok(Self {
            path: path.to_owned(),
            chroot_dir: keys.path("chrootDir")?,
            socket_dir: keys
                .path("socketDir")?
                .unwrap_or_else(|| PathBuf::from(crate::daemon_api::DEFAULT_SOCKET_DIR)),
            daemon_socket_dir: keys.string("daemonSocketDir")?,
            metrics_port: metrics.port,
            metrics_address: metrics.address,
            enable_pprof: keys.bool("enablePprof")?,
            connection_limit,
            log_file: keys.path("logFile")?,
            log_level: keys.string("logLevel")?,
            log_to_stderr: keys.bool("logToStderr")?,
            log_options,
            config_file: files.config_file,
            autoconfig_dir: keys
                .path("multusAutoconfigDir")?
                .unwrap_or_else(|| files.cni_config_dir.clone()),
            master_cni: files.master_cni,
            cni_config_dir: files.cni_config_dir,
            cni_version: files.cni_version,
            force_cni_version: keys.bool("forceCNIVersion")?,
            override_network_name: keys.bool("overrideNetworkName")?,
            readiness_indicator_file: keys.path(READINESS_KEY)?,
            bin_dir: multus.bin_dir.clone(),
            max_concurrent: admission.max_concurrent,
            max_queued: admission.max_queued,
            queue_timeout: admission.queue_timeout,
            del_grace_seconds: keys.integer("daemonUnreachableDelGraceSeconds", 0, 31_536_000)?,
            ready_timeout_seconds: keys.seconds("daemonReadyTimeoutSeconds", false)?,
            reap_stale_records: reap_stale_records(&keys)?,
            kubeconfig: multus.kubeconfig.clone(),
            network_attachment_dir: multus.network_attachment_dir.clone(),
            api_timeout: multus.api_timeout,
            api_retries: multus.api_retries,
            delegate_timeout: Duration::from_secs(multus.delegate_timeout_secs),
            per_node_certificate,
            raw,
        })
    }

    /// The configuration of one request: the shim's document (`stdin`) with every key of
    /// the daemon configuration set over it (daemon keys win; objects are replaced, not
    /// merged), as upstream does.
    pub fn overlay(&self, stdin: &[u8]) -> Result<Vec<u8>, serde_json::Error> {
        let mut document: Map<String, Value> = serde_json::from_slice(stdin)?;
        for (key, value) in &self.raw {
            document.insert(key.clone(), value.clone());
        }
        serde_json::to_vec(&document)
    }

    /// The effective values, for `GET /config` and logs.
    pub fn effective(&self) -> Value {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        serde_json::json!({
            "configPath": self.path.display().to_string(),
            "chrootDir": path(&self.chroot_dir),
            "socketDir": self.socket_dir.display().to_string(),
            "daemonSocketDir": self.daemon_socket_dir,
            "metricsPort": self.metrics_port,
            "metricsAddress": self.metrics_address,
            "connectionLimit": self.connection_limit,
            "logFile": path(&self.log_file),
            "logLevel": self.log_level,
            "logToStderr": self.log_to_stderr,
            "multusConfigFile": match &self.config_file {
                ConfigFileMode::Auto => "auto".to_owned(),
                ConfigFileMode::Copy(p) => p.display().to_string(),
            },
            "multusAutoconfigDir": self.autoconfig_dir.display().to_string(),
            "multusMasterCNI": self.master_cni,
            "cniConfigDir": self.cni_config_dir.display().to_string(),
            "cniVersion": self.cni_version,
            "forceCNIVersion": self.force_cni_version,
            "overrideNetworkName": self.override_network_name,
            "readinessindicatorfile": path(&self.readiness_indicator_file),
            "binDir": self.bin_dir.display().to_string(),
            "maxConcurrentRequests": self.max_concurrent,
            "maxQueuedRequests": self.max_queued,
            "queueTimeoutSeconds": self.queue_timeout.as_secs_f64(),
            "daemonUnreachableDelGraceSeconds": self.del_grace_seconds,
            "daemonReadyTimeoutSeconds": self.ready_timeout_seconds,
            "reapStaleRecordsSeconds": self.reap_stale_records.map_or(0, |d| d.as_secs()),
            "kubeconfig": path(&self.kubeconfig),
            "networkAttachmentDir": path(&self.network_attachment_dir),
            "apiTimeoutSeconds": self.api_timeout.as_secs_f64(),
            "apiRetries": self.api_retries,
            "delegateTimeoutSeconds": self.delegate_timeout.as_secs(),
        })
    }
}

fn per_node_certificate(keys: &Keys<'_>) -> Result<Option<PerNodeCertificate>, ConfigError> {
    match keys.get("perNodeCertificate") {
        None => Ok(None),
        Some(value) => PerNodeCertificate::from_json(value)
            .map_err(|reason| keys.error("perNodeCertificate", reason)),
    }
}

fn connection_limit(keys: &Keys<'_>) -> Result<Option<usize>, ConfigError> {
    match keys.get("connectionLimit") {
        None => Ok(None),
        Some(value) => match value.as_u64() {
            Some(n) if n > 0 => Ok(Some(usize::try_from(n).unwrap_or(usize::MAX))),
            _ => Err(keys.wrong("connectionLimit", "an integer above 0", value)),
        },
    }
}

/// The keys of the multus configuration file the daemon writes or copies.
struct ConfigFileKeys {
    config_file: ConfigFileMode,
    cni_config_dir: PathBuf,
    cni_version: Option<String>,
    master_cni: Option<String>,
}

impl ConfigFileKeys {
    fn read(keys: &Keys<'_>) -> Result<Self, ConfigError> {
        let config_file = match keys.string("multusConfigFile")?.as_deref() {
            None | Some("auto") => ConfigFileMode::Auto,
            Some(path) => ConfigFileMode::Copy(PathBuf::from(path)),
        };
        let cni_config_dir = keys
            .path("cniConfigDir")?
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CNI_CONFIG_DIR));
        let cni_version = keys.string("cniVersion")?;
        if let Some(version) = &cni_version
            && version.parse::<CniVersion>().is_err()
        {
            return Err(keys.error(
                "cniVersion",
                format!("unsupported CNI version {version:?} (0.1.0 to 1.1.0)"),
            ));
        }
        let master_cni = keys.string("multusMasterCNI")?;
        if let Some(name) = &master_cni
            && name.contains('/')
        {
            return Err(keys.error(
                "multusMasterCNI",
                format!("{name:?} must be a file name inside multusAutoconfigDir"),
            ));
        }
        Ok(Self {
            config_file,
            cni_config_dir,
            cni_version,
            master_cni,
        })
    }
}

/// The request admission keys: concurrency, queue length and wait.
struct AdmissionKeys {
    max_concurrent: usize,
    max_queued: usize,
    queue_timeout: Duration,
}

impl AdmissionKeys {
    fn read(keys: &Keys<'_>) -> Result<Self, ConfigError> {
        let max_concurrent = keys
            .integer("maxConcurrentRequests", 1, 100_000)?
            .map_or(2 * cpus(), |n| usize::try_from(n).unwrap_or(usize::MAX));
        let max_queued = keys
            .integer("maxQueuedRequests", 0, 1_000_000)?
            .map_or(DEFAULT_MAX_QUEUED, |n| {
                usize::try_from(n).unwrap_or(usize::MAX)
            });
        let queue_timeout = keys
            .seconds("queueTimeoutSeconds", true)?
            .unwrap_or(DEFAULT_QUEUE_TIMEOUT_SECS);
        Ok(Self {
            max_concurrent,
            max_queued,
            queue_timeout: Duration::from_secs_f64(queue_timeout),
        })
    }
}

/// Where the metrics are served.
struct MetricsKeys {
    port: Option<u16>,
    address: String,
}

impl MetricsKeys {
    fn read(keys: &Keys<'_>) -> Result<Self, ConfigError> {
        let port = keys
            .integer("metricsPort", 1, 65_535)?
            .map(|p| u16::try_from(p).unwrap_or_default());
        let address = keys
            .string("metricsAddress")?
            .unwrap_or_else(|| "0.0.0.0".to_owned());
        if address.parse::<std::net::IpAddr>().is_err() {
            return Err(keys.error(
                "metricsAddress",
                format!("{address:?} is not an IP address"),
            ));
        }
        Ok(Self { port, address })
    }
}

/// Every directory key must be an absolute path.
fn check_directories(keys: &Keys<'_>) -> Result<(), ConfigError> {
    for dir_key in [
        "socketDir",
        "cniConfigDir",
        "multusAutoconfigDir",
        "chrootDir",
    ] {
        if let Some(dir) = keys.path(dir_key)?
            && dir.is_relative()
        {
            return Err(keys.error(
                dir_key,
                format!("{} is not an absolute path", dir.display()),
            ));
        }
    }
    Ok(())
}

/// Check `logLevel` and return `logOptions`.
fn log_options(keys: &Keys<'_>) -> Result<Option<Value>, ConfigError> {
    if let Some(level) = keys.string("logLevel")?
        && !matches!(
            level.to_ascii_lowercase().as_str(),
            "debug" | "verbose" | "error" | "panic"
        )
    {
        return Err(keys.error(
            "logLevel",
            format!("{level:?} is not one of debug, verbose, error, panic"),
        ));
    }
    match keys.get("logOptions") {
        None => Ok(None),
        Some(value @ Value::Object(_)) => Ok(Some(value.clone())),
        Some(other) => Err(keys.wrong("logOptions", "an object", other)),
    }
}

fn reap_stale_records(keys: &Keys<'_>) -> Result<Option<Duration>, ConfigError> {
    Ok(
        match keys.integer("reapStaleRecordsSeconds", 0, 31_536_000)? {
            Some(0) => None,
            seconds => Some(Duration::from_secs(
                seconds.unwrap_or(DEFAULT_REAP_STALE_RECORDS_SECS),
            )),
        },
    )
}

/// Check the multus configuration keys of the document by parsing each over a minimal
/// configuration (so an error names its key); returns the multus configuration of the
/// whole document for the values the daemon itself uses (`binDir`, `kubeconfig`, ...).
fn check_multus_keys(keys: &Keys<'_>) -> Result<MultusConf, ConfigError> {
    let base = || {
        let mut base = Map::new();
        base.insert("clusterNetwork".into(), "daemon-config-check".into());
        base
    };
    for (key, value) in keys.map {
        if DAEMON_KEYS.contains(&key.as_str()) || key == "clusterNetwork" || key == "delegates" {
            continue;
        }
        let mut document = base();
        document.insert(key.clone(), value.clone());
        if let Err(e) = MultusConf::parse(Value::Object(document).to_string().as_bytes()) {
            let reason = e.to_string();
            let reason = reason
                .strip_prefix("invalid multus configuration: ")
                .unwrap_or(&reason);
            return Err(keys.error(key, reason.to_owned()));
        }
    }
    let mut document = base();
    for (key, value) in keys.map {
        if key != "clusterNetwork" && key != "delegates" {
            document.insert(key.clone(), value.clone());
        }
    }
    MultusConf::parse(Value::Object(document).to_string().as_bytes())
        .map_err(|e| keys.error("(document)", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<DaemonConfig, ConfigError> {
        DaemonConfig::parse(Path::new("/etc/daemon-config.json"), text.as_bytes())
    }

    #[test]
    fn upstream_shipped_example_gets_upstream_defaults() {
        let config = parse(
            r#"{"chrootDir":"/hostroot","cniVersion":"0.3.1","logLevel":"verbose","logToStderr":true,
                "cniConfigDir":"/host/etc/cni/net.d","multusAutoconfigDir":"/host/etc/cni/net.d",
                "multusConfigFile":"auto","socketDir":"/host/run/multus/"}"#,
        )
        .unwrap();
        assert_eq!(config.chroot_dir, Some(PathBuf::from("/hostroot")));
        assert_eq!(config.socket_dir, PathBuf::from("/host/run/multus/"));
        assert_eq!(config.config_file, ConfigFileMode::Auto);
        assert_eq!(config.bin_dir, PathBuf::from("/opt/cni/bin"));
        assert_eq!(config.max_queued, 64);
        assert_eq!(config.queue_timeout, Duration::from_secs(30));
        assert_eq!(config.reap_stale_records, Some(Duration::from_secs(600)));
        assert_eq!(config.max_concurrent, 2 * cpus());
        assert_eq!(config.connection_limit, None);
        assert_eq!(config.metrics_port, None);
        assert!(config.log_to_stderr);
        let defaults = parse("{}").unwrap();
        assert_eq!(defaults.socket_dir, PathBuf::from("/run/multus/"));
        assert_eq!(defaults.cni_config_dir, PathBuf::from("/etc/cni/net.d"));
        assert_eq!(defaults.autoconfig_dir, PathBuf::from("/etc/cni/net.d"));
        assert!(!defaults.log_to_stderr);
        assert_eq!(defaults.delegate_timeout, Duration::from_secs(120));
    }

    #[test]
    fn every_bad_key_is_named() {
        for (text, key) in [
            (r#"{"metricsPort":"9091"}"#, "metricsPort"),
            (r#"{"metricsPort":70000}"#, "metricsPort"),
            (r#"{"connectionLimit":0}"#, "connectionLimit"),
            (r#"{"maxConcurrentRequests":0}"#, "maxConcurrentRequests"),
            (r#"{"queueTimeoutSeconds":-1}"#, "queueTimeoutSeconds"),
            (r#"{"socketDir":"run/multus"}"#, "socketDir"),
            (r#"{"cniVersion":"2.0"}"#, "cniVersion"),
            (r#"{"logLevel":"info"}"#, "logLevel"),
            (r#"{"logToStderr":"yes"}"#, "logToStderr"),
            (r#"{"multusMasterCNI":"../x.conf"}"#, "multusMasterCNI"),
            (r#"{"systemNamespaces":"kube-system"}"#, "systemNamespaces"),
            (
                r#"{"perNodeCertificate":{"enabled":true,"certDuration":"soon"}}"#,
                "perNodeCertificate",
            ),
            (r#"{"metricsAddress":"localhost"}"#, "metricsAddress"),
        ] {
            let err = parse(text).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Key { key: k, .. } if k == key),
                "{text}: {err}"
            );
            assert!(err.to_string().contains(&format!("key `{key}`")), "{err}");
        }
        assert!(matches!(parse("{"), Err(ConfigError::Json { .. })));
        assert!(matches!(parse("[]"), Err(ConfigError::Json { .. })));
    }

    #[test]
    fn a_path_is_copied_and_our_keys_are_read() {
        let config = parse(
            r#"{"multusConfigFile":"/etc/custom/70-multus.conf","connectionLimit":1,
                "maxConcurrentRequests":3,"maxQueuedRequests":0,"queueTimeoutSeconds":0.5,
                "daemonUnreachableDelGraceSeconds":5,"metricsPort":9091,"metricsAddress":"127.0.0.1",
                "apiTimeoutSeconds":2,"apiRetries":1,"binDir":"/usr/lib/cni"}"#,
        )
        .unwrap();
        assert_eq!(
            config.config_file,
            ConfigFileMode::Copy(PathBuf::from("/etc/custom/70-multus.conf"))
        );
        assert_eq!(config.connection_limit, Some(1));
        assert_eq!((config.max_concurrent, config.max_queued), (3, 0));
        assert_eq!(config.queue_timeout, Duration::from_millis(500));
        assert_eq!(config.del_grace_seconds, Some(5));
        assert_eq!(config.api_timeout, Duration::from_secs(2));
        assert_eq!(config.bin_dir, PathBuf::from("/usr/lib/cni"));
    }

    #[test]
    fn overlay_lets_daemon_keys_win_and_replaces_objects() {
        let config = parse(
            r#"{"cniVersion":"0.4.0","socketDir":"/run/m/","capabilities":{"bandwidth":true}}"#,
        )
        .unwrap();
        let merged = config
            .overlay(
                br#"{"cniVersion":"0.3.1","name":"multus-cni-network","type":"multus-shim",
                    "capabilities":{"portMappings":true},"clusterNetwork":"/etc/cni/net.d/10-x.conf"}"#,
            )
            .unwrap();
        let doc: Value = serde_json::from_slice(&merged).unwrap();
        assert_eq!(doc["cniVersion"], "0.4.0");
        assert_eq!(doc["socketDir"], "/run/m/");
        assert_eq!(doc["capabilities"], serde_json::json!({"bandwidth": true}));
        assert_eq!(doc["clusterNetwork"], "/etc/cni/net.d/10-x.conf");
        assert!(config.overlay(b"not json").is_err());
    }
}
