//! Subdirectory chaining and the auxiliary CNI chain (reference §4.12).
//!
//! libcni's "safe subdirectory-based plugin conf loading": a config list loaded from a
//! `.conflist` file is followed by the plugin configs of `<dir of the file>/<list name>/`
//! (`*.conf` files, sorted, each one plugin object with a `type`), unless the list sets
//! `loadOnlyInlinedPlugins: true`. The list name must be a valid CNI network name
//! (`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`), so that it can never name a path outside that
//! directory.
//!
//! The auxiliary chain (`auxiliaryCNIChainName: X`) is a list named `X` whose first plugin
//! is `passthru` (an empty result for the plugins after it), followed by the plugins of
//! `<dir of clusterNetwork>/X/`.
//!
//! Everything here reads files through [`ConfigFiles`] only.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

use crate::cni::CniVersion;
use crate::delegate::{DelegateConfig, DelegateConfigError};
use crate::seams::ConfigFiles;

/// The extension of the plugin config files of a chaining subdirectory (libcni reads
/// only `*.conf` there).
pub const PLUGIN_CONF_EXTENSION: &str = "conf";

/// The plugin upstream puts first in the auxiliary chain, and its name there.
pub const PASSTHRU_TYPE: &str = "passthru";
/// The `name` of the passthru plugin in the auxiliary chain (upstream's).
pub const PASSTHRU_NAME: &str = "passthru-cni";

/// Why the chained plugins of a list could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainError {
    /// The list's name is not a valid CNI network name (it names the subdirectory).
    #[error("invalid network config name: {0}")]
    InvalidName(String),
    /// A list key has a value libcni would refuse.
    #[error("error parsing configuration list: {0}")]
    List(String),
    /// The subdirectory exists but cannot be listed.
    #[error("failed to read plugin config files in {}: {reason}", dir.display())]
    ReadDir {
        /// The subdirectory.
        dir: PathBuf,
        /// The OS error.
        reason: String,
    },
    /// A plugin config file is not a JSON object with a `type`.
    #[error("error parsing plugin configuration {}: {reason}", path.display())]
    Plugin {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The document built from the list and its chained plugins is not a usable config.
    #[error("{0}")]
    Config(DelegateConfigError),
}

/// Whether `name` is a valid CNI network name: `^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`.
pub fn is_valid_network_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The list's `loadOnlyInlinedPlugins`, read as libcni reads it: a boolean, or the
/// strings `"true"`/`"false"` in any case; absent is `false`.
pub fn load_only_inlined_plugins(list: &Map<String, Value>) -> Result<bool, ChainError> {
    const KEY: &str = "loadOnlyInlinedPlugins";
    match list.get(KEY) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(Value::String(s)) => match s.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            other => Err(ChainError::List(format!(
                "invalid value {other:?} for {KEY}"
            ))),
        },
        Some(other) => Err(ChainError::List(format!(
            "invalid type {} for {KEY}",
            json_type(other)
        ))),
    }
}

/// The plugin configs of `<dir>/<name>/`: its `*.conf` files in name order, each a JSON
/// object with a non-empty `type`. A missing subdirectory has none.
pub fn subdirectory_plugins(
    files: &dyn ConfigFiles,
    dir: &Path,
    name: &str,
) -> Result<Vec<Map<String, Value>>, ChainError> {
    if !is_valid_network_name(name) {
        return Err(ChainError::InvalidName(name.to_owned()));
    }
    let subdir = dir.join(name);
    let listed = match files.list_configs(&subdir) {
        Ok(listed) => listed,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(ChainError::ReadDir {
                dir: subdir,
                reason: e.to_string(),
            });
        }
    };
    listed
        .into_iter()
        .filter(|(path, _)| path.extension().is_some_and(|e| e == PLUGIN_CONF_EXTENSION))
        .map(|(path, bytes)| plugin_config(path, &bytes))
        .collect()
}

fn plugin_config(path: PathBuf, bytes: &[u8]) -> Result<Map<String, Value>, ChainError> {
    let plugin: Map<String, Value> =
        serde_json::from_slice(bytes).map_err(|e| ChainError::Plugin {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    match plugin.get("type").and_then(Value::as_str) {
        Some(kind) if !kind.is_empty() => Ok(plugin),
        _ => Err(ChainError::Plugin {
            path,
            reason: "missing 'type'".to_owned(),
        }),
    }
}

/// A `.conflist` file's config with its subdirectory plugins appended (unless it sets
/// `loadOnlyInlinedPlugins`). `path` is the file, `bytes` its content.
///
/// A `.conflist` file that holds a single network config (a `type`, no `plugins`) is
/// taken as it is, as before chaining existed (upstream refuses it).
pub fn conflist_file(
    files: &dyn ConfigFiles,
    path: &Path,
    bytes: &[u8],
) -> Result<DelegateConfig, ChainError> {
    let list: Map<String, Value> = serde_json::from_slice(bytes)
        .map_err(|e| ChainError::Config(DelegateConfigError::NotAnObject(e.to_string())))?;
    let single = list.contains_key("type") && !list.contains_key("plugins");
    let plugins = if single || load_only_inlined_plugins(&list)? {
        Vec::new()
    } else {
        let name = list.get("name").and_then(Value::as_str).unwrap_or_default();
        subdirectory_plugins(files, parent_dir(path), name)?
    };
    DelegateConfig::list_with_appended_plugins(bytes, plugins).map_err(ChainError::Config)
}

/// The auxiliary chain `name` at `version`: passthru, then the plugins of `<dir>/<name>/`.
/// `None` when that subdirectory has no plugin (the chain is then not run at all).
pub fn auxiliary_chain(
    files: &dyn ConfigFiles,
    dir: &Path,
    name: &str,
    version: CniVersion,
) -> Result<Option<DelegateConfig>, ChainError> {
    let plugins = subdirectory_plugins(files, dir, name)?;
    if plugins.is_empty() {
        return Ok(None);
    }
    let list = json!({
        "cniVersion": version.as_str(),
        "name": name,
        "plugins": [{"type": PASSTHRU_TYPE, "name": PASSTHRU_NAME}],
    });
    DelegateConfig::list_with_appended_plugins(list.to_string().as_bytes(), plugins)
        .map(Some)
        .map_err(ChainError::Config)
}

/// The directory the auxiliary chain's subdirectory is in: `clusterNetwork` itself when
/// it is a directory, else the directory of the file it names.
///
/// Upstream always takes the parent (`filepath.Dir`), so with a directory
/// `clusterNetwork` it looks next to that directory instead of in it.
pub fn auxiliary_chain_dir<'p>(files: &dyn ConfigFiles, cluster_network: &'p Path) -> &'p Path {
    if files.is_dir(cluster_network) {
        cluster_network
    } else {
        parent_dir(cluster_network)
    }
}

fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or_else(|| Path::new("."))
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::testing::MemoryConfigFiles;

    fn files(entries: &[(&str, &str)]) -> MemoryConfigFiles {
        MemoryConfigFiles {
            files: entries
                .iter()
                .map(|(p, c)| (PathBuf::from(p), c.as_bytes().to_vec()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    const KINDNET: &str = r#"{"cniVersion":"1.0.0","name":"kindnet","plugins":[{"type":"ptp","mtu":1500},{"type":"portmap","capabilities":{"portMappings":true}}]}"#;
    const TUNING: &str = r#"{"cniVersion":"1.0.0","name":"sysctl","type":"tuning","sysctl":{"net.ipv4.conf.eth0.arp_filter":"1"}}"#;

    #[test]
    fn network_names_follow_the_cni_rule() {
        for good in ["a", "kindnet", "9", "a.b-c_d", "vendor-cni-chain", "A.."] {
            assert!(is_valid_network_name(good), "{good}");
        }
        for bad in [
            "", ".", "..", "../etc", "-a", "_a", ".a", "a/b", "a b", "a\n", "é",
        ] {
            assert!(!is_valid_network_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn subdirectory_plugins_follow_the_inlined_ones_in_file_name_order() {
        let files = files(&[
            ("/etc/cni/net.d/10-kindnet.conflist", KINDNET),
            (
                "/etc/cni/net.d/kindnet/20-b.conf",
                r#"{"type":"bandwidth"}"#,
            ),
            ("/etc/cni/net.d/kindnet/10-a.conf", TUNING),
            // libcni reads only *.conf in the subdirectory.
            ("/etc/cni/net.d/kindnet/30-c.json", r#"{"type":"firewall"}"#),
            ("/etc/cni/net.d/kindnet/40-d.conflist", r#"{"type":"sbr"}"#),
            ("/etc/cni/net.d/other/10-x.conf", r#"{"type":"vrf"}"#),
        ]);
        let path = Path::new("/etc/cni/net.d/10-kindnet.conflist");
        let conf = conflist_file(&files, path, KINDNET.as_bytes()).unwrap();
        assert_eq!(
            conf.plugin_types(),
            vec!["ptp", "portmap", "tuning", "bandwidth"]
        );
        // The inlined part is unchanged, the appended plugins are the files' objects.
        let doc: Value = serde_json::from_str(conf.raw()).unwrap();
        assert_eq!(doc["plugins"][0], json!({"type":"ptp","mtu":1500}));
        assert_eq!(
            doc["plugins"][2],
            serde_json::from_str::<Value>(TUNING).unwrap()
        );
        assert_eq!(conf.name(), "kindnet");
    }

    #[test]
    fn without_a_subdirectory_the_list_is_kept_byte_for_byte() {
        let files = files(&[("/etc/cni/net.d/10-kindnet.conflist", KINDNET)]);
        let path = Path::new("/etc/cni/net.d/10-kindnet.conflist");
        let conf = conflist_file(&files, path, KINDNET.as_bytes()).unwrap();
        assert_eq!(conf.raw(), KINDNET);
    }

    #[test]
    fn load_only_inlined_plugins_skips_the_subdirectory() {
        let files = files(&[("/n/k/10-a.conf", TUNING)]);
        for value in ["true", r#""TRUE""#, r#""true""#] {
            let list = format!(
                r#"{{"name":"k","loadOnlyInlinedPlugins":{value},"plugins":[{{"type":"ptp"}}]}}"#
            );
            let conf = conflist_file(&files, Path::new("/n/k.conflist"), list.as_bytes()).unwrap();
            assert_eq!(conf.raw(), list, "{value}");
        }
        for value in ["false", r#""False""#] {
            let list = format!(
                r#"{{"name":"k","loadOnlyInlinedPlugins":{value},"plugins":[{{"type":"ptp"}}]}}"#
            );
            let conf = conflist_file(&files, Path::new("/n/k.conflist"), list.as_bytes()).unwrap();
            assert_eq!(conf.plugin_types(), vec!["ptp", "tuning"], "{value}");
        }
        for value in ["1", r#""yes""#] {
            let list = format!(
                r#"{{"name":"k","loadOnlyInlinedPlugins":{value},"plugins":[{{"type":"ptp"}}]}}"#
            );
            let err =
                conflist_file(&files, Path::new("/n/k.conflist"), list.as_bytes()).unwrap_err();
            assert!(matches!(err, ChainError::List(_)), "{value}: {err}");
        }
    }

    #[test]
    fn a_list_may_get_all_its_plugins_from_the_subdirectory() {
        let files = files(&[("/n/k/10-a.conf", TUNING)]);
        let conf = conflist_file(&files, Path::new("/n/k.conflist"), br#"{"name":"k"}"#).unwrap();
        assert_eq!(conf.plugin_types(), vec!["tuning"]);
        let err =
            conflist_file(&files, Path::new("/n/x.conflist"), br#"{"name":"x"}"#).unwrap_err();
        assert_eq!(
            err,
            ChainError::Config(DelegateConfigError::NoTypeOrPlugins)
        );
    }

    #[test]
    fn an_invalid_list_name_is_refused_unless_only_inlined_plugins_are_loaded() {
        let files = files(&[]);
        for name in ["../etc", "", "-x", "a b"] {
            let list = json!({"name": name, "plugins": [{"type": "ptp"}]}).to_string();
            let err =
                conflist_file(&files, Path::new("/n/k.conflist"), list.as_bytes()).unwrap_err();
            assert_eq!(err, ChainError::InvalidName(name.to_owned()));
            assert_eq!(
                err.to_string(),
                format!("invalid network config name: {name}")
            );
        }
        let list = r#"{"name":"../etc","loadOnlyInlinedPlugins":true,"plugins":[{"type":"ptp"}]}"#;
        assert!(conflist_file(&files, Path::new("/n/k.conflist"), list.as_bytes()).is_ok());
    }

    #[test]
    fn a_plugin_file_without_type_or_not_json_is_an_error_naming_it() {
        for (content, reason) in [
            (r#"{"name":"x"}"#, "missing 'type'"),
            (r#"{"type":""}"#, "missing 'type'"),
            ("not json", "expected"),
            ("[]", "invalid type"),
        ] {
            let files = files(&[("/n/k/10-a.conf", TUNING), ("/n/k/20-bad.conf", content)]);
            let err = conflist_file(
                &files,
                Path::new("/n/k.conflist"),
                KINDNET.replace("kindnet", "k").as_bytes(),
            )
            .unwrap_err();
            let ChainError::Plugin { path, reason: got } = &err else {
                panic!("{err}");
            };
            assert_eq!(path, Path::new("/n/k/20-bad.conf"));
            assert!(got.contains(reason), "{content}: {got}");
        }
    }

    #[test]
    fn a_single_conf_in_a_conflist_file_is_taken_as_it_is() {
        let files = files(&[("/n/b/10-a.conf", TUNING)]);
        let single = br#"{"cniVersion":"0.4.0","name":"b","type":"bridge"}"#;
        let conf = conflist_file(&files, Path::new("/n/b.conflist"), single).unwrap();
        assert_eq!(conf.raw().as_bytes(), single);
    }

    #[test]
    fn the_auxiliary_chain_is_passthru_then_the_subdirectory_plugins() {
        let files = files(&[
            ("/etc/cni/net.d/10-kindnet.conflist", KINDNET),
            ("/etc/cni/net.d/vendor-chain/10-sysctl.conf", TUNING),
        ]);
        let dir = auxiliary_chain_dir(&files, Path::new("/etc/cni/net.d/10-kindnet.conflist"));
        assert_eq!(dir, Path::new("/etc/cni/net.d"));
        let chain = auxiliary_chain(&files, dir, "vendor-chain", CniVersion::V0_4_0)
            .unwrap()
            .unwrap();
        let doc: Value = serde_json::from_str(chain.raw()).unwrap();
        assert_eq!(
            doc,
            json!({"cniVersion":"0.4.0","name":"vendor-chain","plugins":[
                {"type":"passthru","name":"passthru-cni"},
                serde_json::from_str::<Value>(TUNING).unwrap()
            ]})
        );
        // Key order as upstream writes it.
        assert!(chain.raw().starts_with(r#"{"cniVersion":"0.4.0","name":"vendor-chain","plugins":[{"type":"passthru","name":"passthru-cni"},"#), "{}", chain.raw());
        // No subdirectory, or nothing in it: no chain at all.
        assert_eq!(
            auxiliary_chain(&files, dir, "absent", CniVersion::V0_4_0).unwrap(),
            None
        );
        assert_eq!(
            auxiliary_chain(&files, dir, "../x", CniVersion::V0_4_0).unwrap_err(),
            ChainError::InvalidName("../x".into())
        );
    }

    #[test]
    fn a_directory_cluster_network_holds_the_auxiliary_chain_itself() {
        let files = files(&[("/etc/cni/net.d/10-kindnet.conflist", KINDNET)]);
        assert_eq!(
            auxiliary_chain_dir(&files, Path::new("/etc/cni/net.d")),
            Path::new("/etc/cni/net.d")
        );
        assert_eq!(
            auxiliary_chain_dir(&files, Path::new("/etc/cni/net.d/none.conflist")),
            Path::new("/etc/cni/net.d")
        );
        assert_eq!(
            auxiliary_chain_dir(&files, Path::new("relative.conflist")),
            Path::new(".")
        );
    }
}
