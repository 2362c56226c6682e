//! What a network selected by a pod (a NAD, named by an annotation or by
//! `clusterNetwork`/`defaultNetworks`) may be.
//!
//! Whoever may create a NAD or annotate a pod is not a node administrator, yet multus
//! runs the plugins their configs name as root. Before such a config is planned it must
//! not name multus itself (a nested multus would take the NAD as its own configuration),
//! must use only allowed plugin types, must have a CNI network name the plugins accept
//! (they refuse ADD and DEL alike otherwise, which would leave the sandbox undeletable),
//! and loses every key of multus' own configuration.

use crate::config::MultusConf;
use crate::delegate::DelegateConfig;

/// Plugin types that are multus itself, whatever the configuration says.
const MULTUS_TYPES: &[&str] = &["multus", "multus-shim", "multus-daemon"];

/// Keys of multus' own configuration (thin and thick). Removed from pod-selected
/// configs so that no plugin that reads them (a nested multus under another name) can
/// take them from a NAD.
///
/// `kubeconfig`, `logFile` and `logLevel` are multus keys too, but ordinary plugins
/// read them from their own configs (sriov-cni's `logFile` and `logLevel`, plugins that
/// talk to the API server): they are kept. Multus itself is refused by `type` above;
/// only an administrator can install it under another name.
pub const MULTUS_CONFIG_KEYS: &[&str] = &[
    "delegates",
    "clusterNetwork",
    "defaultNetworks",
    "systemNamespaces",
    "multusNamespace",
    "confDir",
    "cniDir",
    "binDir",
    "readinessindicatorfile",
    "namespaceIsolation",
    "globalNamespaces",
    "auxiliaryCNIChainName",
    "networkAttachmentDir",
    "podAnnotationsFrom",
    "trustRuntimeAnnotations",
    "allowedPluginTypes",
    "maxNetworksPerPod",
    "allowRuntimeConfigFromAnnotations",
    "isolateDefaultNetwork",
    "daemonSocketDir",
    "socketDir",
    "chrootDir",
];

/// Why a pod-selected network is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// The config names multus (or the shim) as a plugin.
    #[error(
        "plugin type {plugin:?} is multus itself; a NetworkAttachmentDefinition cannot run multus as a delegate"
    )]
    Multus {
        /// The refused type.
        plugin: String,
    },
    /// `allowedPluginTypes` is set and does not list the type.
    #[error("plugin type {plugin:?} is not in allowedPluginTypes {allowed:?}")]
    NotAllowed {
        /// The refused type.
        plugin: String,
        /// The allow-list.
        allowed: Vec<String>,
    },
    /// The CNI network name is one the plugins refuse.
    #[error(
        "CNI network name {name:?} {reason}; plugins refuse such a network for ADD and DEL alike"
    )]
    Name {
        /// The name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// Check a pod-selected network config and return it without multus' own keys.
pub fn admit(conf: &MultusConf, config: DelegateConfig) -> Result<DelegateConfig, GuardError> {
    for plugin in config.plugin_types() {
        if MULTUS_TYPES.contains(&plugin) || plugin == conf.plugin_type {
            return Err(GuardError::Multus {
                plugin: plugin.to_owned(),
            });
        }
        if let Some(allowed) = &conf.allowed_plugin_types
            && !allowed.iter().any(|a| a == plugin)
        {
            return Err(GuardError::NotAllowed {
                plugin: plugin.to_owned(),
                allowed: allowed.clone(),
            });
        }
    }
    if let Some(reason) = network_name_problem(config.name()) {
        return Err(GuardError::Name {
            name: config.name().to_owned(),
            reason,
        });
    }
    Ok(config.without_keys(MULTUS_CONFIG_KEYS))
}

/// libcni's `ValidateNetworkName`, which the plugins' `skel` applies to every call:
/// `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`.
fn network_name_problem(name: &str) -> Option<&'static str> {
    let mut chars = name.chars();
    match chars.next() {
        None => Some("is empty"),
        Some(first) if !first.is_ascii_alphanumeric() => {
            Some("must start with an ASCII letter or digit")
        }
        Some(_) if chars.any(|c| !(c.is_ascii_alphanumeric() || "_.-".contains(c))) => {
            Some("may contain only ASCII letters, digits, '_', '.' and '-'")
        }
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration of type `my-multus` (the name the running multus was called by).
    fn conf(extra: &str) -> MultusConf {
        MultusConf::parse(format!(r#"{{"clusterNetwork":"c"{extra}}}"#).as_bytes()).unwrap()
    }

    fn config(text: &str) -> DelegateConfig {
        DelegateConfig::from_bytes(text.as_bytes()).unwrap()
    }

    #[test]
    fn multus_and_the_shim_are_refused_as_delegates() {
        let conf = conf(r#","type":"my-multus""#);
        assert_eq!(conf.plugin_type, "my-multus");
        for plugin in ["multus", "multus-shim", "my-multus"] {
            let err = admit(
                &conf,
                config(&format!(
                    r#"{{"name":"n","plugins":[{{"type":"bridge"}},{{"type":"{plugin}"}}]}}"#
                )),
            )
            .unwrap_err();
            assert_eq!(
                err,
                GuardError::Multus {
                    plugin: plugin.into()
                }
            );
        }
    }

    #[test]
    fn the_allow_list_is_applied_to_every_plugin() {
        let conf = conf(r#","type":"multus","allowedPluginTypes":["bridge","host-local"]"#);
        assert!(admit(&conf, config(r#"{"name":"n","type":"bridge"}"#)).is_ok());
        let err = admit(
            &conf,
            config(r#"{"name":"n","plugins":[{"type":"bridge"},{"type":"portmap"}]}"#),
        )
        .unwrap_err();
        assert!(matches!(err, GuardError::NotAllowed { ref plugin, .. } if plugin == "portmap"));
    }

    #[test]
    fn names_the_plugins_refuse_are_refused() {
        let conf = conf(r#","type":"multus""#);
        for (name, ok) in [
            ("net-1.a_b", true),
            ("9", true),
            ("", false),
            ("-a", false),
            ("bad name", false),
            ("a/b", false),
            ("ä", false),
        ] {
            let doc = serde_json::json!({"name": name, "type": "bridge"}).to_string();
            assert_eq!(admit(&conf, config(&doc)).is_ok(), ok, "{name:?}");
        }
    }

    #[test]
    fn multus_keys_are_removed_from_the_conf_and_every_plugin() {
        let conf = conf(r#","type":"multus""#);
        let single = admit(
            &conf,
            config(r#"{"name":"n","type":"x","binDir":"/tmp","cniDir":"/etc","mtu":1}"#),
        )
        .unwrap();
        assert_eq!(single.raw(), r#"{"name":"n","type":"x","mtu":1}"#);
        // Keys ordinary plugins read from their own configs stay.
        let sriov = r#"{"name":"n","type":"sriov","logFile":"/var/log/sriov.log","logLevel":"debug","kubeconfig":"/k"}"#;
        assert_eq!(admit(&conf, config(sriov)).unwrap().raw(), sriov);
        let list = admit(
            &conf,
            config(
                r#"{"name":"n","plugins":[{"type":"x","delegates":[],"cniDir":"/"},{"type":"y"}]}"#,
            ),
        )
        .unwrap();
        assert_eq!(
            list.raw(),
            r#"{"name":"n","plugins":[{"type":"x"},{"type":"y"}]}"#
        );
        // Nothing removed: the bytes are kept.
        let text = r#"{ "name": "n", "type": "x" }"#;
        assert_eq!(admit(&conf, config(text)).unwrap().raw(), text);
    }
}
