//! The generator of multus' own CNI configuration (`00-multus.conf` or
//! `00-multus.conflist`) from the node's primary CNI configuration.
//!
//! Pure: bytes of the primary config and options in, the document's file name and bytes
//! out. The thick daemon's config manager and the node installer both call it; reading
//! the primary, choosing it among the files of a directory ([`choose_primary`]) and
//! writing the result atomically are theirs.
//!
//! Two flavours, as upstream ships them:
//!
//! - **thin** (upstream `thin_entrypoint`): `"type": "multus"`, the primary config inlined
//!   as the only entry of `delegates`, plus `kubeconfig` and `confDir` when given
//!   (upstream emits the latter as `cniConf`, a key the plugin never reads: fixed here);
//! - **thick** (upstream `multus-daemon`): `"type": "multus-shim"`, `clusterNetwork` is
//!   the primary's path *as the daemon sees it*, plus the shim's keys
//!   (`daemonSocketDir`, `daemonUnreachableDelGraceSeconds`,
//!   `daemonReadyTimeoutSeconds`).
//!
//! Both carry the union of the primary's capabilities (entries set to `true`; for a
//! config list, of every plugin) and of the configured ones, and the logging keys.
//!
//! When the pod's annotations may come from the runtime
//! ([`GeneratorOptions::annotations_from_runtime`]) the capability
//! `io.kubernetes.cri.pod-annotations` is declared too.
//!
//! **conf or conflist**: the document is a config list (`00-multus.conflist`, multus as
//! its only plugin) when its `cniVersion` is 1.0.0 or later, since CNI 1.0 defines only
//! the list format, or when [`GeneratorOptions::conflist`] asks for it (podman reads
//! only lists); a single config (`00-multus.conf`) otherwise. The shape of the
//! primary does not matter (it is inlined or referenced whole either way). Upstream's
//! thin installer makes the same choice; upstream's daemon always writes `.conf`.

use std::path::Path;

use serde_json::{Map, Value};

use crate::cni::CniVersion;
use crate::config::POD_ANNOTATIONS_RUNTIME_KEY;
use crate::delegate::DelegateConfig;

/// The name multus' network gets unless `overrideNetworkName` asks for the primary's.
pub const DEFAULT_NETWORK_NAME: &str = "multus-cni-network";
/// File name of a generated single config.
pub const CONF_FILE_NAME: &str = "00-multus.conf";
/// File name of a generated config list.
pub const CONFLIST_FILE_NAME: &str = "00-multus.conflist";
/// Prefix of every file multus generates; such files are never taken as the primary.
pub const GENERATED_PREFIX: &str = "00-multus";
/// The plugin types multus runs as in a runtime's configuration: the thin plugin and
/// the thick shim.
pub const MULTUS_PLUGIN_TYPES: &[&str] = &["multus", "multus-shim"];

/// Thin or thick, with the keys only that flavour has.
#[derive(Clone, Debug, PartialEq)]
pub enum Flavour {
    /// `"type": "multus"`: the primary is inlined in `delegates`.
    Thin {
        /// `kubeconfig` for the plugin's API access (path on the host).
        kubeconfig: Option<String>,
        /// `confDir`: the directory of CNI configs named by NADs with an empty spec.
        conf_dir: Option<String>,
    },
    /// `"type": "multus-shim"`: the shim forwards to the daemon, which reads the primary
    /// from `clusterNetwork`.
    Thick {
        /// `daemonSocketDir`: where the shim finds the daemon's socket (host path).
        daemon_socket_dir: Option<String>,
        /// `daemonUnreachableDelGraceSeconds`: how long the shim fails DELs while the
        /// daemon is unreachable before it lets them succeed (multus-rs).
        del_grace_seconds: Option<u64>,
        /// `daemonReadyTimeoutSeconds`: how long the shim waits for the daemon's
        /// readiness before ADD, CHECK, GC and STATUS (multus-rs).
        ready_timeout_seconds: Option<f64>,
    },
}

/// What goes into the generated document besides what the primary determines.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratorOptions {
    /// Thin or thick.
    pub flavour: Flavour,
    /// The generated document's `cniVersion`; the primary's when `None`.
    pub cni_version: Option<String>,
    /// Use the primary's `name` instead of [`DEFAULT_NETWORK_NAME`].
    pub override_network_name: bool,
    /// Skip the check that the primary's version can serve the generated one
    /// (upstream's `forceCNIVersion`; the primary file itself is never rewritten).
    pub force_cni_version: bool,
    /// Capabilities to declare on top of the primary's (entries set to `true` are kept).
    pub capabilities: Map<String, Value>,
    /// `logFile`.
    pub log_file: Option<String>,
    /// `logLevel`.
    pub log_level: Option<String>,
    /// `logToStderr`.
    pub log_to_stderr: Option<bool>,
    /// `logOptions`, copied as given.
    pub log_options: Option<Value>,
    /// `binDir`.
    pub bin_dir: Option<String>,
    /// `cniDir`.
    pub cni_dir: Option<String>,
    /// `namespaceIsolation` (written only when true).
    pub namespace_isolation: bool,
    /// `globalNamespaces` (comma-separated, as upstream).
    pub global_namespaces: Option<String>,
    /// `auxiliaryCNIChainName`.
    pub auxiliary_cni_chain_name: Option<String>,
    /// `readinessindicatorfile` (thin only: the thick daemon waits for it itself).
    pub readiness_indicator_file: Option<String>,
    /// The pod's annotations may come from the runtime (file-based NADs or no API
    /// server, or `trustRuntimeAnnotations`): declare the capability
    /// `io.kubernetes.cri.pod-annotations`, without which containerd and CRI-O never
    /// pass them and pods silently get only the cluster network.
    pub annotations_from_runtime: bool,
    /// Write the config-list form (`00-multus.conflist`) whatever the version: runtimes
    /// such as podman read only `.conflist` files.
    pub conflist: bool,
}

impl GeneratorOptions {
    /// Options with nothing set but the flavour.
    pub fn new(flavour: Flavour) -> Self {
        Self {
            flavour,
            cni_version: None,
            override_network_name: false,
            force_cni_version: false,
            capabilities: Map::new(),
            log_file: None,
            log_level: None,
            log_to_stderr: None,
            log_options: None,
            bin_dir: None,
            cni_dir: None,
            namespace_isolation: false,
            global_namespaces: None,
            auxiliary_cni_chain_name: None,
            readiness_indicator_file: None,
            annotations_from_runtime: false,
            conflist: false,
        }
    }
}

/// A generated document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Generated {
    /// [`CONF_FILE_NAME`] or [`CONFLIST_FILE_NAME`].
    pub file_name: &'static str,
    /// The document, pretty-printed, ending with a newline.
    pub bytes: Vec<u8>,
    /// Its `cniVersion`.
    pub cni_version: CniVersion,
}

impl Generated {
    /// The other file name: the one a previous generation with another version may
    /// have left behind, and which must go so that the runtime does not read it first.
    pub fn stale_file_name(&self) -> &'static str {
        if self.file_name == CONF_FILE_NAME {
            CONFLIST_FILE_NAME
        } else {
            CONF_FILE_NAME
        }
    }
}

/// Why no document was generated. Nothing must be written then.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenerateError {
    /// The primary file is empty (being written, or truncated).
    #[error("the primary CNI config {path} is empty")]
    EmptyPrimary {
        /// The primary's path.
        path: String,
    },
    /// The primary is not a CNI config or config list.
    #[error("the primary CNI config {path} is invalid: {reason}")]
    InvalidPrimary {
        /// The primary's path.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The primary has no `cniVersion` and none was configured.
    #[error("the primary CNI config {path} has no cniVersion and no cniVersion is configured")]
    NoVersion {
        /// The primary's path.
        path: String,
    },
    /// A version is not one this implementation knows.
    #[error("unsupported cniVersion {version:?} ({what})")]
    UnsupportedVersion {
        /// The version string.
        version: String,
        /// Whose version it is.
        what: &'static str,
    },
    /// The primary's version cannot serve the generated one (upstream's check).
    #[error(
        "delegate cni version is {primary} while top level cni version is {top}: the primary CNI config {path} must be at least 0.4.0 when multus' cniVersion is"
    )]
    IncompatibleVersion {
        /// The primary's path.
        path: String,
        /// The primary's version.
        primary: String,
        /// The generated document's version.
        top: String,
    },
    /// The primary named is multus' own generated file.
    #[error(
        "cannot use {path} as the primary CNI config: it is multus' own configuration (recursive config load)"
    )]
    Recursive {
        /// The path named.
        path: String,
    },
}

/// Whether a file name is one multus generates (`00-multus.conf`, `00-multus.conflist`
/// and anything else starting with `00-multus`).
pub fn is_generated_name(file_name: &str) -> bool {
    file_name.starts_with(GENERATED_PREFIX)
}

/// Whether a file name has a CNI config extension the runtime loads as a primary
/// (`.conf`, `.conflist`, `.json`).
pub fn is_config_name(file_name: &str) -> bool {
    [".conf", ".conflist", ".json"]
        .iter()
        .any(|ext| file_name.ends_with(ext) && file_name.len() > ext.len())
        && !file_name.starts_with('.')
}

/// The primary among a directory's file names: the lexically first CNI config that is
/// not multus' own, as the runtime would choose it once multus' file is gone.
pub fn choose_primary<'a, I>(file_names: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    file_names
        .into_iter()
        .filter(|name| is_config_name(name) && !is_generated_name(name))
        .min()
}

/// Generate multus' configuration from the primary's bytes. `primary_path` names the
/// primary in errors and is thick's `clusterNetwork`: give it as the daemon sees it.
pub fn generate(
    primary: &[u8],
    primary_path: &Path,
    options: &GeneratorOptions,
) -> Result<Generated, GenerateError> {
    let path = primary_path.display().to_string();
    let (delegate, primary_doc) = read_primary(primary, primary_path)?;
    let version = generated_version(&delegate, &path, options)?;
    let name = if options.override_network_name && !delegate.name().is_empty() {
        delegate.name().to_owned()
    } else {
        DEFAULT_NETWORK_NAME.to_owned()
    };
    let plugin = multus_plugin(&delegate, primary_doc, path, options);
    let mut document = Map::new();
    document.insert("cniVersion".into(), version.as_str().into());
    document.insert("name".into(), name.into());
    let file_name = if version >= CniVersion::V1_0_0 || options.conflist {
        document.insert("plugins".into(), Value::Array(vec![Value::Object(plugin)]));
        CONFLIST_FILE_NAME
    } else {
        document.extend(plugin);
        CONF_FILE_NAME
    };
    let mut bytes = serde_json::to_vec_pretty(&Value::Object(document)).map_err(|e| {
        GenerateError::InvalidPrimary {
            path: primary_path.display().to_string(),
            reason: e.to_string(),
        }
    })?;
    bytes.push(b'\n');
    Ok(Generated {
        file_name,
        bytes,
        cni_version: version,
    })
}

/// The primary, checked: not multus' own file, not empty, a CNI config or list; as a
/// delegate and as the JSON object it is.
fn read_primary(
    primary: &[u8],
    primary_path: &Path,
) -> Result<(DelegateConfig, Map<String, Value>), GenerateError> {
    let path = || primary_path.display().to_string();
    if primary_path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(is_generated_name)
    {
        return Err(GenerateError::Recursive { path: path() });
    }
    if primary.iter().all(u8::is_ascii_whitespace) {
        return Err(GenerateError::EmptyPrimary { path: path() });
    }
    let invalid = |e: &dyn std::fmt::Display| GenerateError::InvalidPrimary {
        path: path(),
        reason: e.to_string(),
    };
    let delegate = DelegateConfig::from_bytes(primary).map_err(|e| invalid(&e))?;
    let primary_doc: Map<String, Value> =
        serde_json::from_slice(primary).map_err(|e| invalid(&e))?;
    Ok((delegate, primary_doc))
}

/// The generated conf's `cniVersion`: the configured one, else the primary's. From
/// 0.4.0 on, the primary must be 0.4.0 or later too, unless `forceCNIVersion`.
fn generated_version(
    delegate: &DelegateConfig,
    path: &str,
    options: &GeneratorOptions,
) -> Result<CniVersion, GenerateError> {
    let primary_version_text = delegate.cni_version_text().filter(|v| !v.is_empty());
    let version_text = match (&options.cni_version, primary_version_text) {
        (Some(configured), _) if !configured.is_empty() => configured.clone(),
        (_, Some(primary)) => primary.to_owned(),
        _ => {
            return Err(GenerateError::NoVersion {
                path: path.to_owned(),
            });
        }
    };
    let version: CniVersion =
        version_text
            .parse()
            .map_err(|_| GenerateError::UnsupportedVersion {
                version: version_text.clone(),
                what: "multus' configuration",
            })?;
    if !options.force_cni_version && version >= CniVersion::V0_4_0 {
        let primary_version = primary_version_text.unwrap_or_default();
        let usable = primary_version
            .parse::<CniVersion>()
            .is_ok_and(|v| v >= CniVersion::V0_4_0);
        if !usable {
            return Err(GenerateError::IncompatibleVersion {
                path: path.to_owned(),
                primary: primary_version.to_owned(),
                top: version_text,
            });
        }
    }
    Ok(version)
}

/// The capabilities multus declares: the configured ones, every one a plugin of the
/// primary declares, and the pod annotations when they may come from the runtime.
fn capabilities(delegate: &DelegateConfig, options: &GeneratorOptions) -> Map<String, Value> {
    let mut capabilities = Map::new();
    let mut add_capabilities = |declared: Option<&Value>| {
        for (key, enabled) in declared.and_then(Value::as_object).into_iter().flatten() {
            if enabled.as_bool() == Some(true) {
                capabilities.insert(key.clone(), Value::Bool(true));
            }
        }
    };
    add_capabilities(Some(&Value::Object(options.capabilities.clone())));
    for plugin in delegate.plugins() {
        add_capabilities(plugin.get("capabilities"));
    }
    if options.annotations_from_runtime {
        capabilities.insert(POD_ANNOTATIONS_RUNTIME_KEY.to_owned(), Value::Bool(true));
    }
    capabilities.sort_keys();
    capabilities
}

/// Multus' own plugin entry: its type, capabilities and the keys of the flavour (thin:
/// the primary as its one delegate; thick: the primary's path as `clusterNetwork`).
fn multus_plugin(
    delegate: &DelegateConfig,
    primary_doc: Map<String, Value>,
    path: String,
    options: &GeneratorOptions,
) -> Map<String, Value> {
    let mut plugin = Map::new();
    let plugin_type = match options.flavour {
        Flavour::Thin { .. } => "multus",
        Flavour::Thick { .. } => "multus-shim",
    };
    plugin.insert("type".into(), plugin_type.into());
    let capabilities = capabilities(delegate, options);
    if !capabilities.is_empty() {
        plugin.insert("capabilities".into(), Value::Object(capabilities));
    }
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            plugin.insert(key.to_owned(), value);
        }
    };
    let text = |value: &Option<String>| {
        value
            .as_ref()
            .filter(|v| !v.is_empty())
            .map(|v| Value::String(v.clone()))
    };
    put("logFile", text(&options.log_file));
    put("logLevel", text(&options.log_level));
    put("logToStderr", options.log_to_stderr.map(Value::Bool));
    put("logOptions", options.log_options.clone());
    put("binDir", text(&options.bin_dir));
    put("cniDir", text(&options.cni_dir));
    put(
        "namespaceIsolation",
        options.namespace_isolation.then_some(Value::Bool(true)),
    );
    put("globalNamespaces", text(&options.global_namespaces));
    put(
        "auxiliaryCNIChainName",
        text(&options.auxiliary_cni_chain_name),
    );
    match &options.flavour {
        Flavour::Thin {
            kubeconfig,
            conf_dir,
        } => {
            put("kubeconfig", text(kubeconfig));
            put("confDir", text(conf_dir));
            put(
                "readinessindicatorfile",
                text(&options.readiness_indicator_file),
            );
            put(
                "delegates",
                Some(Value::Array(vec![Value::Object(primary_doc)])),
            );
        }
        Flavour::Thick {
            daemon_socket_dir,
            del_grace_seconds,
            ready_timeout_seconds,
        } => {
            put("daemonSocketDir", text(daemon_socket_dir));
            put(
                "daemonUnreachableDelGraceSeconds",
                del_grace_seconds.map(Value::from),
            );
            put(
                "daemonReadyTimeoutSeconds",
                ready_timeout_seconds.map(Value::from),
            );
            put("clusterNetwork", Some(Value::String(path)));
        }
    }
    plugin
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MultusConf;
    use std::path::PathBuf;

    const CALICO: &str = r#"{"name":"k8s-pod-network","cniVersion":"0.3.1","plugins":[
        {"type":"calico","ipam":{"type":"calico-ipam"},"kubernetes":{"kubeconfig":"/etc/cni/net.d/calico-kubeconfig"}},
        {"type":"bandwidth","capabilities":{"bandwidth":true}},
        {"type":"portmap","snat":true,"capabilities":{"portMappings":true,"ips":false}}]}"#;
    const BRIDGE_1_0: &str = r#"{"cniVersion":"1.0.0","name":"cbr0","type":"bridge",
        "capabilities":{"mac":true},"ipam":{"type":"host-local","subnet":"10.1.0.0/16"}}"#;

    fn thick() -> GeneratorOptions {
        GeneratorOptions::new(Flavour::Thick {
            daemon_socket_dir: Some("/run/multus/".into()),
            del_grace_seconds: None,
            ready_timeout_seconds: None,
        })
    }

    fn text(generated: &Generated) -> String {
        String::from_utf8(generated.bytes.clone()).unwrap()
    }

    #[test]
    fn thick_conf_of_a_calico_conflist() {
        let mut options = thick();
        options.log_level = Some("verbose".into());
        options.log_to_stderr = Some(true);
        let generated = generate(
            CALICO.as_bytes(),
            Path::new("/host/etc/cni/net.d/10-calico.conflist"),
            &options,
        )
        .unwrap();
        assert_eq!(generated.file_name, CONF_FILE_NAME);
        assert_eq!(generated.stale_file_name(), CONFLIST_FILE_NAME);
        insta::assert_snapshot!(text(&generated));
        // What the shim and the daemon read back.
        let conf = MultusConf::parse(&generated.bytes).unwrap();
        assert_eq!(conf.plugin_type, "multus-shim");
        assert_eq!(
            conf.cluster_network.as_deref(),
            Some("/host/etc/cni/net.d/10-calico.conflist")
        );
        assert_eq!(conf.cni_version, CniVersion::V0_3_1);
    }

    #[test]
    fn thick_conflist_for_version_1_0_with_every_key() {
        let mut options = thick();
        options.flavour = Flavour::Thick {
            daemon_socket_dir: Some("/run/multus/".into()),
            del_grace_seconds: Some(600),
            ready_timeout_seconds: Some(45.0),
        };
        options
            .capabilities
            .insert("portMappings".into(), true.into());
        options.capabilities.insert("ignored".into(), false.into());
        options.log_file = Some("/var/log/multus.log".into());
        options.log_level = Some("debug".into());
        options.log_options = Some(serde_json::json!({"maxAge": 5}));
        options.bin_dir = Some("/opt/cni/bin".into());
        options.cni_dir = Some("/var/lib/cni/multus".into());
        options.namespace_isolation = true;
        options.global_namespaces = Some("default,shared".into());
        options.auxiliary_cni_chain_name = Some("vendor-chain".into());
        options.readiness_indicator_file = Some("/run/ready".into());
        let generated = generate(
            BRIDGE_1_0.as_bytes(),
            Path::new("/etc/cni/net.d/10-bridge.conf"),
            &options,
        )
        .unwrap();
        assert_eq!(generated.file_name, CONFLIST_FILE_NAME);
        assert_eq!(generated.cni_version, CniVersion::V1_0_0);
        insta::assert_snapshot!(text(&generated));
        // A runtime hands the plugin its entry with the list's name and version.
        let doc: Value = serde_json::from_slice(&generated.bytes).unwrap();
        let mut plugin = doc["plugins"][0].as_object().unwrap().clone();
        plugin.insert("cniVersion".into(), doc["cniVersion"].clone());
        plugin.insert("name".into(), doc["name"].clone());
        let conf = MultusConf::parse(Value::Object(plugin).to_string().as_bytes()).unwrap();
        assert!(conf.namespace_isolation);
        assert_eq!(conf.global_namespaces, vec!["default", "shared"]);
        assert_eq!(conf.readiness_indicator_file, None, "thick drops it");
    }

    #[test]
    fn thin_inlines_the_primary_and_writes_conf_dir() {
        let mut options = GeneratorOptions::new(Flavour::Thin {
            kubeconfig: Some("/etc/cni/net.d/multus.d/multus.kubeconfig".into()),
            conf_dir: Some("/etc/cni/multus/net.d".into()),
        });
        options.readiness_indicator_file = Some("/run/flannel/subnet.env".into());
        let generated = generate(
            CALICO.as_bytes(),
            Path::new("/host/etc/cni/net.d/10-calico.conflist"),
            &options,
        )
        .unwrap();
        insta::assert_snapshot!(text(&generated));
        let conf = MultusConf::parse(&generated.bytes).unwrap();
        assert_eq!(conf.plugin_type, "multus");
        assert_eq!(conf.conf_dir, PathBuf::from("/etc/cni/multus/net.d"));
        assert_eq!(conf.delegates.len(), 1);
        assert_eq!(conf.delegates[0]["plugins"][0]["type"], "calico");
        assert_eq!(
            conf.delegates[0]["plugins"][0]["kubernetes"]["kubeconfig"],
            "/etc/cni/net.d/calico-kubeconfig"
        );
    }

    #[test]
    fn upstream_test_asserted_output() {
        let mut options = thick();
        options.flavour = Flavour::Thick {
            daemon_socket_dir: None,
            del_grace_seconds: None,
            ready_timeout_seconds: None,
        };
        options.cni_version = Some("0.4.0".into());
        let primary = br#"{"cniVersion":"0.4.0","name":"x","type":"bridge"}"#;
        let generated = generate(primary, Path::new("/etc/cni/net.d/10-x.conf"), &options).unwrap();
        let doc: Value = serde_json::from_slice(&generated.bytes).unwrap();
        assert_eq!(
            doc,
            serde_json::json!({"cniVersion":"0.4.0","name":"multus-cni-network",
                "clusterNetwork":"/etc/cni/net.d/10-x.conf","type":"multus-shim"})
        );
    }

    #[test]
    fn runtime_annotations_declare_the_pod_annotations_capability() {
        let primary = br#"{"cniVersion":"0.4.0","name":"x","type":"bridge"}"#;
        let path = Path::new("/etc/cni/net.d/10-x.conf");
        let without = generate(primary, path, &thick()).unwrap();
        let doc: Value = serde_json::from_slice(&without.bytes).unwrap();
        assert!(doc.get("capabilities").is_none(), "{doc}");

        let mut options = thick();
        options.annotations_from_runtime = true;
        let with = generate(primary, path, &options).unwrap();
        let doc: Value = serde_json::from_slice(&with.bytes).unwrap();
        assert_eq!(
            doc["capabilities"],
            serde_json::json!({"io.kubernetes.cri.pod-annotations": true})
        );
    }

    #[test]
    fn conflist_form_on_request_for_any_version() {
        let primary = br#"{"cniVersion":"0.4.0","name":"x","type":"bridge"}"#;
        let mut options = thick();
        options.conflist = true;
        let generated = generate(primary, Path::new("/etc/cni/net.d/10-x.conf"), &options).unwrap();
        assert_eq!(generated.file_name, CONFLIST_FILE_NAME);
        let doc: Value = serde_json::from_slice(&generated.bytes).unwrap();
        assert_eq!(doc["cniVersion"], "0.4.0");
        assert_eq!(doc["name"], DEFAULT_NETWORK_NAME);
        assert_eq!(doc["plugins"][0]["type"], "multus-shim");
        assert!(doc.get("type").is_none(), "{doc}");
    }

    #[test]
    fn override_network_name_takes_the_primary_name() {
        let mut options = thick();
        options.override_network_name = true;
        let generated = generate(
            CALICO.as_bytes(),
            Path::new("/p/10-calico.conflist"),
            &options,
        )
        .unwrap();
        let doc: Value = serde_json::from_slice(&generated.bytes).unwrap();
        assert_eq!(doc["name"], "k8s-pod-network");
    }

    #[test]
    fn configured_version_must_be_served_by_the_primary() {
        let mut options = thick();
        options.cni_version = Some("1.0.0".into());
        let err = generate(
            CALICO.as_bytes(),
            Path::new("/p/10-calico.conflist"),
            &options,
        )
        .unwrap_err();
        assert!(
            matches!(err, GenerateError::IncompatibleVersion { ref primary, ref top, .. } if primary == "0.3.1" && top == "1.0.0"),
            "{err}"
        );
        assert!(err.to_string().contains("delegate cni version is 0.3.1"));
        options.force_cni_version = true;
        let generated = generate(
            CALICO.as_bytes(),
            Path::new("/p/10-calico.conflist"),
            &options,
        )
        .unwrap();
        assert_eq!(generated.file_name, CONFLIST_FILE_NAME);
        // An older top-level version works with any primary.
        options.force_cni_version = false;
        options.cni_version = Some("0.3.0".into());
        assert!(generate(BRIDGE_1_0.as_bytes(), Path::new("/p/b.conf"), &options).is_ok());
    }

    #[test]
    fn nothing_is_generated_from_a_bad_primary() {
        let options = thick();
        let path = Path::new("/p/10-x.conf");
        for (bytes, expected) in [
            (&b""[..], "empty"),
            (&b"  \n"[..], "empty"),
            (&b"{\"cniVersion\":"[..], "invalid"),
            (&b"[1]"[..], "invalid"),
            (&b"{\"cniVersion\":\"0.3.1\",\"name\":\"x\"}"[..], "invalid"),
            (
                &b"{\"name\":\"x\",\"type\":\"bridge\"}"[..],
                "no cniVersion",
            ),
            (
                &b"{\"cniVersion\":\"9.9\",\"name\":\"x\",\"type\":\"bridge\"}"[..],
                "unsupported",
            ),
        ] {
            let err = generate(bytes, path, &options).unwrap_err();
            assert!(
                err.to_string().contains(expected),
                "{:?}: {err}",
                String::from_utf8_lossy(bytes)
            );
        }
        let err = generate(
            BRIDGE_1_0.as_bytes(),
            Path::new("/p/00-multus.conf"),
            &options,
        )
        .unwrap_err();
        assert!(matches!(err, GenerateError::Recursive { .. }));
    }

    #[test]
    fn the_primary_is_the_first_config_that_is_not_multus() {
        let names = [
            "99-last.conf",
            "00-multus.conf",
            "00-multus.conflist",
            "10-calico.conflist",
            ".hidden.conf",
            "README",
            "05-x.json",
            "multus.d",
            "10-calico.conflist.old",
        ];
        assert_eq!(choose_primary(names), Some("05-x.json"));
        assert_eq!(choose_primary(["00-multus.conf", "notes.txt"]), None);
        assert!(is_generated_name("00-multus.conflist"));
        assert!(!is_config_name(".conf"));
    }
}
