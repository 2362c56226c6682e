//! One delegate network config (a single conf or a conflist), kept byte-faithful, and the
//! stdin documents built from it for each plugin call.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cni::CniVersion;

mod runtime_stdin;

pub use runtime_stdin::{RuntimeStdin, RuntimeStdinError, runtime_stdin};

/// Why a document is not a usable delegate config.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DelegateConfigError {
    /// Not JSON, or not a JSON object.
    #[error("config is not a JSON object: {0}")]
    NotAnObject(String),
    /// Neither `type` nor `plugins`.
    #[error("delegate must have the 'type' or 'plugins' field")]
    NoTypeOrPlugins,
    /// A conflist with an empty `plugins` array or a plugin that is not an object.
    #[error("config list 'plugins' must be a non-empty array of objects")]
    BadPlugins,
    /// A plugin without a `type`.
    #[error("plugin {index} of the config list has no 'type' field")]
    PluginWithoutType {
        /// Its position in `plugins`.
        index: usize,
    },
    /// Plugins can only be appended to a config list, not to a single network config.
    #[error(
        "plugins can only be appended to a config list ('plugins'), not to a single network config ('type')"
    )]
    NotAList,
    /// A `type` that could name a path outside the plugin directories.
    #[error("plugin type {0:?} is not a plain binary name")]
    UnsafeType(String),
}

/// Whether the config is a single network config or a config list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DelegateKind {
    /// A single network config with a `type`.
    Single,
    /// A config list with `plugins`.
    List,
}

/// A delegate network config, kept exactly as the administrator wrote it.
///
/// Serialises as its JSON text, so persisted state holds the exact bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DelegateConfig {
    raw: String,
    doc: Map<String, Value>,
    kind: DelegateKind,
}

impl DelegateConfig {
    /// Parse and validate config bytes; the bytes are kept unchanged.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DelegateConfigError> {
        let raw = std::str::from_utf8(bytes)
            .map_err(|e| DelegateConfigError::NotAnObject(e.to_string()))?
            .to_owned();
        Self::from_string(raw)
    }

    /// Build from a JSON value (static `delegates` entries), keeping key order.
    pub fn from_value(value: &Value) -> Result<Self, DelegateConfigError> {
        Self::from_string(value.to_string())
    }

    /// A config list read from `bytes` with `plugins` appended after its own, as libcni's
    /// subdirectory chaining (`NetworkPluginConfsFromFiles`) does: the plugins found in
    /// `<dir of the list>/<list name>/` run after the inlined ones.
    ///
    /// With nothing to append the bytes are kept exactly. Otherwise the document is
    /// re-serialised with its key order kept (compact JSON); a list without `plugins`
    /// gets the appended ones as its `plugins`.
    pub fn list_with_appended_plugins(
        bytes: &[u8],
        plugins: Vec<Map<String, Value>>,
    ) -> Result<Self, DelegateConfigError> {
        if plugins.is_empty() {
            return Self::from_bytes(bytes);
        }
        let mut doc: Map<String, Value> = serde_json::from_slice(bytes)
            .map_err(|e| DelegateConfigError::NotAnObject(e.to_string()))?;
        if doc.contains_key("type") && !doc.contains_key("plugins") {
            // A single network config: nothing to append plugins to.
            return Err(DelegateConfigError::NotAList);
        }
        match doc
            .entry("plugins")
            .or_insert_with(|| Value::Array(Vec::new()))
        {
            Value::Array(list) => list.extend(plugins.into_iter().map(Value::Object)),
            _ => return Err(DelegateConfigError::BadPlugins),
        }
        Self::from_string(Value::Object(doc).to_string())
    }

    fn from_string(raw: String) -> Result<Self, DelegateConfigError> {
        let doc: Map<String, Value> = serde_json::from_str(&raw)
            .map_err(|e| DelegateConfigError::NotAnObject(e.to_string()))?;
        let kind = classify(&doc)?;
        Ok(Self { raw, doc, kind })
    }

    /// The exact JSON text.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// Single conf or list.
    pub fn kind(&self) -> DelegateKind {
        self.kind
    }

    /// The CNI `name` (empty when absent).
    pub fn name(&self) -> &str {
        self.doc
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or_default()
    }

    /// The `cniVersion` as written, if any.
    pub fn cni_version_text(&self) -> Option<&str> {
        self.doc.get("cniVersion").and_then(Value::as_str)
    }

    /// The `cniVersion` when it is one this implementation knows.
    pub fn cni_version(&self) -> Option<CniVersion> {
        self.cni_version_text()?.parse().ok()
    }

    /// The plugin configs in call order: the document itself for a single conf.
    pub fn plugins(&self) -> Vec<&Map<String, Value>> {
        match self.kind {
            DelegateKind::Single => vec![&self.doc],
            DelegateKind::List => self
                .doc
                .get("plugins")
                .and_then(Value::as_array)
                .map(|plugins| plugins.iter().filter_map(Value::as_object).collect())
                .unwrap_or_default(),
        }
    }

    /// The plugin types, in call order.
    pub fn plugin_types(&self) -> Vec<&str> {
        self.plugins().into_iter().map(plugin_type).collect()
    }

    /// A copy with `cni-args` merged into `args.cni` of the conf, or of every plugin of a
    /// list; keys from `cni_args` win.
    pub fn with_cni_args(&self, cni_args: &Map<String, Value>) -> Self {
        if cni_args.is_empty() {
            return self.clone();
        }
        let mut doc = self.doc.clone();
        match self.kind {
            DelegateKind::Single => merge_cni_args(&mut doc, cni_args),
            DelegateKind::List => {
                if let Some(Value::Array(plugins)) = doc.get_mut("plugins") {
                    for plugin in plugins.iter_mut().filter_map(Value::as_object_mut) {
                        merge_cni_args(plugin, cni_args);
                    }
                }
            }
        }
        self.rebuilt(doc)
    }

    /// A copy with the device a resource map supplied: `deviceID` and `pciBusID` at
    /// the top level of a single conf, or of every plugin of a list (upstream's rule);
    /// they replace any value already there.
    pub fn with_device_id(&self, device_id: &str) -> Self {
        let mut doc = self.doc.clone();
        let inject = |object: &mut Map<String, Value>| {
            for key in ["deviceID", "pciBusID"] {
                object.insert(key.into(), Value::String(device_id.to_owned()));
            }
        };
        match self.kind {
            DelegateKind::Single => inject(&mut doc),
            DelegateKind::List => {
                if let Some(Value::Array(plugins)) = doc.get_mut("plugins") {
                    plugins
                        .iter_mut()
                        .filter_map(Value::as_object_mut)
                        .for_each(inject);
                }
            }
        }
        self.rebuilt(doc)
    }

    /// A copy without `keys` at the top level of a single conf, or of every plugin of a
    /// list; the bytes are kept when none of them is present.
    pub fn without_keys(self, keys: &[&str]) -> Self {
        let present = |object: &Map<String, Value>| keys.iter().any(|k| object.contains_key(*k));
        if !self.plugins().into_iter().any(present) {
            return self;
        }
        let mut doc = self.doc.clone();
        let strip = |object: &mut Map<String, Value>| {
            for key in keys {
                object.shift_remove(*key);
            }
        };
        match self.kind {
            DelegateKind::Single => strip(&mut doc),
            DelegateKind::List => {
                if let Some(Value::Array(plugins)) = doc.get_mut("plugins") {
                    plugins
                        .iter_mut()
                        .filter_map(Value::as_object_mut)
                        .for_each(strip);
                }
            }
        }
        self.rebuilt(doc)
    }

    /// A copy whose list carries `version` when it has no `cniVersion` of its own.
    ///
    /// A single network config is returned unchanged: without `cniVersion` it means
    /// 0.1.0 (CNI spec) and reaches its plugin as written, as upstream passes it.
    pub fn with_default_version(&self, version: CniVersion) -> Self {
        if self.kind == DelegateKind::Single
            || self.cni_version_text().is_some_and(|v| !v.is_empty())
        {
            return self.clone();
        }
        let mut doc = self.doc.clone();
        doc.insert("cniVersion".into(), Value::String(version.as_str().into()));
        self.rebuilt(doc)
    }

    fn rebuilt(&self, doc: Map<String, Value>) -> Self {
        Self {
            raw: Value::Object(doc.clone()).to_string(),
            doc,
            kind: self.kind,
        }
    }

    /// The stdin document for plugin `index` of this config.
    ///
    /// As a runtime does (CNI spec, "Section 4: Plugin Delegation"): list plugins receive
    /// the list's `name` and `cniVersion`; every plugin receives `runtimeConfig` with the
    /// keys of `runtime_config` it declares as capabilities, and `prevResult` when given.
    /// A single conf that needs nothing injected is passed byte for byte.
    pub fn plugin_stdin(
        &self,
        index: usize,
        runtime_config: &Map<String, Value>,
        prev_result: Option<&Value>,
    ) -> Vec<u8> {
        let plugins = self.plugins();
        let Some(plugin) = plugins.get(index) else {
            return self.raw.clone().into_bytes();
        };
        let capability_args = filter_by_capabilities(plugin, runtime_config);
        if self.kind == DelegateKind::Single && capability_args.is_empty() && prev_result.is_none()
        {
            return self.raw.clone().into_bytes();
        }
        let mut doc = (*plugin).clone();
        if self.kind == DelegateKind::List {
            doc.insert("name".into(), Value::String(self.name().to_owned()));
            let version = self.cni_version_text().unwrap_or_default();
            doc.insert("cniVersion".into(), Value::String(version.to_owned()));
        }
        if !capability_args.is_empty() {
            doc.insert("runtimeConfig".into(), Value::Object(capability_args));
        }
        if let Some(prev) = prev_result {
            doc.insert("prevResult".into(), prev.clone());
        }
        Value::Object(doc).to_string().into_bytes()
    }
}

impl TryFrom<String> for DelegateConfig {
    type Error = DelegateConfigError;
    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Self::from_string(raw)
    }
}

impl From<DelegateConfig> for String {
    fn from(config: DelegateConfig) -> Self {
        config.raw
    }
}

/// A plugin's `type` (empty when absent).
pub fn plugin_type(plugin: &Map<String, Value>) -> &str {
    plugin
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// The runtimeConfig keys this plugin declared as capabilities (`"capabilities": {k: true}`).
pub fn filter_by_capabilities(
    plugin: &Map<String, Value>,
    runtime_config: &Map<String, Value>,
) -> Map<String, Value> {
    let Some(capabilities) = plugin.get("capabilities").and_then(Value::as_object) else {
        return Map::new();
    };
    capabilities
        .iter()
        .filter(|(_, enabled)| enabled.as_bool() == Some(true))
        .filter_map(|(key, _)| runtime_config.get(key).map(|v| (key.clone(), v.clone())))
        .collect()
}

fn classify(doc: &Map<String, Value>) -> Result<DelegateKind, DelegateConfigError> {
    if let Some(kind) = doc.get("type") {
        validate_type(kind.as_str().unwrap_or_default())?;
        return Ok(DelegateKind::Single);
    }
    let plugins = doc
        .get("plugins")
        .ok_or(DelegateConfigError::NoTypeOrPlugins)?
        .as_array()
        .filter(|p| !p.is_empty())
        .ok_or(DelegateConfigError::BadPlugins)?;
    for (index, plugin) in plugins.iter().enumerate() {
        let plugin = plugin.as_object().ok_or(DelegateConfigError::BadPlugins)?;
        let kind = plugin_type(plugin);
        if kind.is_empty() {
            return Err(DelegateConfigError::PluginWithoutType { index });
        }
        validate_type(kind)?;
    }
    Ok(DelegateKind::List)
}

/// A plugin type must be a plain file name: it is joined to the plugin directories.
fn validate_type(kind: &str) -> Result<(), DelegateConfigError> {
    if kind.is_empty() {
        return Err(DelegateConfigError::NoTypeOrPlugins);
    }
    if kind.contains('/') || kind.contains('\0') || kind == "." || kind == ".." {
        return Err(DelegateConfigError::UnsafeType(kind.to_owned()));
    }
    Ok(())
}

fn merge_cni_args(conf: &mut Map<String, Value>, cni_args: &Map<String, Value>) {
    let args = conf
        .entry("args")
        .or_insert_with(|| Value::Object(Map::new()));
    if !args.is_object() {
        *args = Value::Object(Map::new());
    }
    let Some(args) = args.as_object_mut() else {
        return;
    };
    let cni = args
        .entry("cni")
        .or_insert_with(|| Value::Object(Map::new()));
    if !cni.is_object() {
        *cni = Value::Object(Map::new());
    }
    if let Some(cni) = cni.as_object_mut() {
        for (k, v) in cni_args {
            cni.insert(k.clone(), v.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BRIDGE: &str =
        r#"{"cniVersion":"1.0.0","name":"b","type":"bridge","z":1.50,"a":{"k":[1,2]}}"#;

    #[test]
    fn single_conf_without_injection_is_byte_identical() {
        let conf = DelegateConfig::from_bytes(BRIDGE.as_bytes()).unwrap();
        assert_eq!(conf.plugin_stdin(0, &Map::new(), None), BRIDGE.as_bytes());
        assert_eq!(conf.kind(), DelegateKind::Single);
        assert_eq!(conf.name(), "b");
    }

    #[test]
    fn device_id_reaches_a_conf_and_every_plugin_of_a_list() {
        let conf = DelegateConfig::from_bytes(
            br#"{"cniVersion":"1.0.0","name":"s","type":"sriov","deviceID":"asked","vlan":5}"#,
        )
        .unwrap()
        .with_device_id("0000:03:02.0");
        assert_eq!(
            conf.raw(),
            r#"{"cniVersion":"1.0.0","name":"s","type":"sriov","deviceID":"0000:03:02.0","vlan":5,"pciBusID":"0000:03:02.0"}"#
        );
        let list = DelegateConfig::from_bytes(
            br#"{"cniVersion":"1.0.0","name":"l","plugins":[{"type":"host-device"},{"type":"tuning"}]}"#,
        )
        .unwrap()
        .with_device_id("0000:81:00.1");
        for plugin in list.plugins() {
            assert_eq!(plugin["deviceID"], "0000:81:00.1");
            assert_eq!(plugin["pciBusID"], "0000:81:00.1");
        }
        assert!(!list.raw().starts_with(r#"{"deviceID""#));
    }

    #[test]
    fn runtime_config_is_filtered_by_capabilities() {
        let conf = DelegateConfig::from_bytes(
            br#"{"cniVersion":"1.0.0","name":"p","plugins":[
                {"type":"bridge"},
                {"type":"portmap","capabilities":{"portMappings":true,"bandwidth":false}}]}"#,
        )
        .unwrap();
        let rc = json!({"portMappings":[{"hostPort":80}],"bandwidth":{},"custom":1});
        let rc = rc.as_object().unwrap();
        let first: Value = serde_json::from_slice(&conf.plugin_stdin(0, rc, None)).unwrap();
        assert_eq!(
            first,
            json!({"type":"bridge","name":"p","cniVersion":"1.0.0"})
        );
        let prev = json!({"cniVersion":"1.0.0"});
        let second: Value = serde_json::from_slice(&conf.plugin_stdin(1, rc, Some(&prev))).unwrap();
        assert_eq!(
            second["runtimeConfig"],
            json!({"portMappings":[{"hostPort":80}]})
        );
        assert_eq!(second["prevResult"], prev);
    }

    #[test]
    fn unknown_runtime_config_keys_reach_plugins_that_ask_for_them() {
        let conf = DelegateConfig::from_bytes(
            br#"{"type":"x","capabilities":{"io.kubernetes.cri.pod-annotations":true}}"#,
        )
        .unwrap();
        let rc = json!({"io.kubernetes.cri.pod-annotations":{"a":"b"}});
        let doc: Value =
            serde_json::from_slice(&conf.plugin_stdin(0, rc.as_object().unwrap(), None)).unwrap();
        assert_eq!(doc["runtimeConfig"], rc);
    }

    #[test]
    fn cni_args_are_merged_into_every_plugin() {
        let conf = DelegateConfig::from_bytes(
            br#"{"name":"l","plugins":[{"type":"a","args":{"cni":{"x":"old","y":"keep"}}},{"type":"b"}]}"#,
        )
        .unwrap();
        let args = json!({"x":"new"});
        let merged = conf.with_cni_args(args.as_object().unwrap());
        let plugins = merged.plugins();
        assert_eq!(plugins[0]["args"]["cni"], json!({"x":"new","y":"keep"}));
        assert_eq!(plugins[1]["args"]["cni"], json!({"x":"new"}));
    }

    #[test]
    fn invalid_configs_are_refused() {
        let cases: &[(&str, DelegateConfigError)] = &[
            ("[]", DelegateConfigError::NotAnObject(String::new())),
            (r#"{"name":"x"}"#, DelegateConfigError::NoTypeOrPlugins),
            (r#"{"plugins":[]}"#, DelegateConfigError::BadPlugins),
            (
                r#"{"plugins":[{"type":"a"},{"name":"b"}]}"#,
                DelegateConfigError::PluginWithoutType { index: 1 },
            ),
            (
                r#"{"type":"../bin/sh"}"#,
                DelegateConfigError::UnsafeType("../bin/sh".into()),
            ),
            (
                r#"{"type":".."}"#,
                DelegateConfigError::UnsafeType("..".into()),
            ),
        ];
        for (doc, expected) in cases {
            let err = DelegateConfig::from_bytes(doc.as_bytes()).unwrap_err();
            match (expected, &err) {
                (DelegateConfigError::NotAnObject(_), DelegateConfigError::NotAnObject(_)) => {}
                _ => assert_eq!(&err, expected, "{doc}"),
            }
        }
    }

    #[test]
    fn serde_round_trip_keeps_raw_text() {
        let conf = DelegateConfig::from_bytes(BRIDGE.as_bytes()).unwrap();
        let text = serde_json::to_string(&conf).unwrap();
        let back: DelegateConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(back.raw(), BRIDGE);
    }

    #[test]
    fn appended_plugins_follow_the_inlined_ones_with_key_order_kept() {
        let list = br#"{"cniVersion":"1.0.0","name":"k","z":1,"plugins":[{"type":"bridge","b":2,"a":1}],"after":true}"#;
        let extra = |doc: Value| doc.as_object().unwrap().clone();
        let conf = DelegateConfig::list_with_appended_plugins(
            list,
            vec![
                extra(json!({"type":"tuning","sysctl":{"y":"1","x":"0"}})),
                extra(json!({"type":"portmap"})),
            ],
        )
        .unwrap();
        assert_eq!(
            conf.raw(),
            r#"{"cniVersion":"1.0.0","name":"k","z":1,"plugins":[{"type":"bridge","b":2,"a":1},{"type":"tuning","sysctl":{"y":"1","x":"0"}},{"type":"portmap"}],"after":true}"#
        );
        assert_eq!(conf.plugin_types(), vec!["bridge", "tuning", "portmap"]);
        assert_eq!(conf.kind(), DelegateKind::List);
    }

    #[test]
    fn nothing_to_append_keeps_the_bytes() {
        let list = "{ \"name\": \"k\", \"plugins\": [ {\"type\": \"bridge\", \"mtu\": 1.50} ] }";
        let conf = DelegateConfig::list_with_appended_plugins(list.as_bytes(), Vec::new()).unwrap();
        assert_eq!(conf.raw(), list);
    }

    #[test]
    fn a_list_without_plugins_gets_the_appended_ones() {
        let extra = json!({"type":"tuning"}).as_object().unwrap().clone();
        let conf =
            DelegateConfig::list_with_appended_plugins(br#"{"name":"k"}"#, vec![extra.clone()])
                .unwrap();
        assert_eq!(conf.raw(), r#"{"name":"k","plugins":[{"type":"tuning"}]}"#);
        assert_eq!(
            DelegateConfig::list_with_appended_plugins(
                br#"{"type":"bridge"}"#,
                vec![extra.clone()]
            )
            .unwrap_err(),
            DelegateConfigError::NotAList
        );
        assert_eq!(
            DelegateConfig::list_with_appended_plugins(br#"{"plugins":{}}"#, vec![extra.clone()])
                .unwrap_err(),
            DelegateConfigError::BadPlugins
        );
        let unsafe_type = json!({"type":"../sh"}).as_object().unwrap().clone();
        assert_eq!(
            DelegateConfig::list_with_appended_plugins(br#"{"name":"k"}"#, vec![unsafe_type])
                .unwrap_err(),
            DelegateConfigError::UnsafeType("../sh".into())
        );
    }

    #[test]
    fn missing_list_version_is_filled() {
        let conf = DelegateConfig::from_bytes(br#"{"name":"l","plugins":[{"type":"a"}]}"#).unwrap();
        let filled = conf.with_default_version(CniVersion::V0_4_0);
        assert_eq!(filled.cni_version(), Some(CniVersion::V0_4_0));
    }

    #[test]
    fn missing_single_conf_version_is_left_out() {
        let text = br#"{"name":"s", "type":"a"}"#;
        let conf = DelegateConfig::from_bytes(text).unwrap();
        let kept = conf.with_default_version(CniVersion::V1_1_0);
        assert_eq!(kept.raw().as_bytes(), text);
        assert_eq!(kept.cni_version(), None);
    }
}
