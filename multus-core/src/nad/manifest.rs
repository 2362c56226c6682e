//! NetworkAttachmentDefinition (NAD) manifests, as `kubectl apply -f` accepts them, and
//! the resolution of a NAD to the delegate CNI configuration bytes.
//!
//! A file is either a stream of JSON documents (when its first non-blank character is
//! `{`, as kubectl decides) or a multi-document YAML stream. Each document may be a NAD
//! (`apiVersion: k8s.cni.cncf.io/v1`, `kind: NetworkAttachmentDefinition`) or a list
//! (`kind: List` or `kind: <Something>List`) of objects in `items`; documents of other
//! kinds are skipped.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::RESOURCE_NAME_ANNOTATION;
use super::annotation::{dns1123_label_problem, dns1123_subdomain_problem, json_type};

/// `kind` of a NetworkAttachmentDefinition.
const NAD_KIND: &str = "NetworkAttachmentDefinition";
/// The only `apiVersion` a NetworkAttachmentDefinition may have.
const NAD_API_VERSION: &str = "k8s.cni.cncf.io/v1";
/// Namespace of a NAD whose manifest names none.
const DEFAULT_NAMESPACE: &str = "default";
/// Most bytes of one manifest file, JSON or YAML (a Kubernetes object is at most about
/// 1.5 MiB in etcd; a file may hold several).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;
/// Deepest nesting of collections in a YAML manifest document (a NAD needs 3). JSON
/// documents have `serde_json`'s limit of 128.
pub const MAX_MANIFEST_DEPTH: usize = 64;
/// Most documents in one YAML manifest file.
pub const MAX_MANIFEST_DOCUMENTS: usize = 1024;

/// A NetworkAttachmentDefinition, reduced to what Multus uses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkAttachmentDefinition {
    /// `metadata.namespace`; `"default"` when the manifest names none.
    pub namespace: String,
    /// `metadata.name`, a DNS-1123 subdomain.
    pub name: String,
    /// `spec.config`, the CNI configuration (conf or conflist) as JSON text; may be empty,
    /// in which case the configuration is looked up by name in the CNI configuration
    /// directory (see [`find_config_by_name`]).
    pub config: String,
    /// The `k8s.v1.cni.cncf.io/resourceName` annotation, when present and non-empty.
    pub resource_name: Option<String>,
    /// All of `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
}

/// Where in a manifest file an object is: the document and, inside lists, the item.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Location {
    /// 1-based number of the document in the file.
    pub document: usize,
    /// 0-based indexes into `items`, outermost list first; empty outside lists.
    pub items: Vec<usize>,
}

impl Location {
    /// The location of the `index`th item of the list at this location.
    fn item(&self, index: usize) -> Self {
        let mut items = self.items.clone();
        items.push(index);
        Self {
            document: self.document,
            items,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "document {}", self.document)?;
        for (depth, index) in self.items.iter().enumerate() {
            let sep = if depth == 0 { ", " } else { "." };
            write!(f, "{sep}items[{index}]")?;
        }
        Ok(())
    }
}

/// Why a manifest file, or the config of a NAD, was rejected.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ManifestError {
    /// A YAML document could not be parsed.
    #[error("manifest is {bytes} bytes, more than the limit of {max} bytes")]
    TooLarge {
        /// Size of the manifest.
        bytes: usize,
        /// [`MAX_MANIFEST_BYTES`].
        max: usize,
    },
    /// A YAML document could not be parsed (a budget exceeded included: nesting deeper
    /// than [`MAX_MANIFEST_DEPTH`], too many documents, nodes or aliases).
    #[error("document {document}: invalid YAML: {message}")]
    Yaml {
        /// 1-based number of the document.
        document: usize,
        /// The YAML parser's message.
        message: String,
    },
    /// A JSON document could not be parsed.
    #[error("document {document}: invalid JSON: {message}")]
    Json {
        /// 1-based number of the document.
        document: usize,
        /// The JSON parser's message.
        message: String,
    },
    /// A document or list item is not a mapping.
    #[error("{at}: expected a Kubernetes object (a mapping), found {found}")]
    NotAnObject {
        /// Where the object is.
        at: Location,
        /// The type found instead.
        found: &'static str,
    },
    /// An object has no `kind`.
    #[error("{at}: the object has no \"kind\"")]
    MissingKind {
        /// Where the object is.
        at: Location,
    },
    /// A NetworkAttachmentDefinition has an apiVersion other than `k8s.cni.cncf.io/v1`.
    #[error(
        "{at}: a NetworkAttachmentDefinition must have apiVersion \"k8s.cni.cncf.io/v1\", \
         found {api_version:?}"
    )]
    WrongApiVersion {
        /// Where the object is.
        at: Location,
        /// The apiVersion found.
        api_version: String,
    },
    /// A NetworkAttachmentDefinition has no `metadata.name`.
    #[error("{at}: NetworkAttachmentDefinition without metadata.name")]
    MissingName {
        /// Where the object is.
        at: Location,
    },
    /// `metadata.name` is not a DNS-1123 subdomain.
    #[error("{at}: invalid metadata.name {name:?}: {reason}")]
    InvalidName {
        /// Where the object is.
        at: Location,
        /// The rejected name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `metadata.namespace` is not a DNS-1123 label.
    #[error("{at}: invalid metadata.namespace {namespace:?}: {reason}")]
    InvalidNamespace {
        /// Where the object is.
        at: Location,
        /// The rejected namespace.
        namespace: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A field has the wrong type.
    #[error("{at}: {field} must be {expected}, found {found}")]
    WrongType {
        /// Where the object is.
        at: Location,
        /// Path of the field, e.g. `spec.config`.
        field: String,
        /// What was expected.
        expected: &'static str,
        /// The type found instead.
        found: &'static str,
    },
    /// `spec.config` is not a JSON object.
    #[error("spec.config of NetworkAttachmentDefinition {nad}: {message}")]
    InvalidConfig {
        /// `namespace/name` of the NAD.
        nad: String,
        /// What is wrong with the config.
        message: String,
    },
}

/// Parse a file's text: a YAML multi-document stream or a stream of JSON documents.
///
/// Each document may be a NetworkAttachmentDefinition or a list of objects in `items`
/// (`kind: List` or `kind: <Something>List`; items of a typed list such as
/// `NetworkAttachmentDefinitionList` inherit its kind and apiVersion when they name
/// none). Documents of other kinds, and empty documents, are skipped.
pub fn parse_manifests(text: &str) -> Result<Vec<NetworkAttachmentDefinition>, ManifestError> {
    let mut nads = Vec::new();
    for (index, document) in load_documents(text)?.into_iter().enumerate() {
        let at = Location {
            document: index + 1,
            items: Vec::new(),
        };
        collect_object(document, &at, &mut nads)?;
    }
    Ok(nads)
}

/// Upstream's confDir lookup by CNI network name.
///
/// Among `files` (path and content; the caller passes the `*.conf`, `*.json` and
/// `*.conflist` files of the directory), sorted by path, returns the content of the
/// first whose CNI `"name"` equals `name`. Unparsable files, `.conflist` files without a
/// `plugins` array, and other files without `type` and without `plugins` are skipped.
pub fn find_config_by_name<'a>(files: &'a [(PathBuf, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    let mut sorted: Vec<&(PathBuf, Vec<u8>)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.as_os_str().cmp(b.0.as_os_str()));
    sorted
        .into_iter()
        .find(|(path, bytes)| config_has_name(path, bytes, name))
        .map(|(_, bytes)| bytes.as_slice())
}

/// The files among `files` (as for [`find_config_by_name`]) that are not a JSON
/// object, sorted by path, each with its parse error: what a confDir lookup reports
/// instead of skipping them silently.
pub fn unparsable_configs(files: &[(PathBuf, Vec<u8>)]) -> Vec<(PathBuf, String)> {
    let mut broken: Vec<(PathBuf, String)> = files
        .iter()
        .filter_map(|(path, bytes)| {
            let error = match serde_json::from_slice::<Value>(bytes) {
                Ok(Value::Object(_)) => return None,
                Ok(other) => format!("not a JSON object but {}", json_type(&other)),
                Err(e) => e.to_string(),
            };
            Some((path.clone(), error))
        })
        .collect();
    broken.sort();
    broken
}

impl NetworkAttachmentDefinition {
    /// `namespace/name`, the name used in events and network-status.
    pub fn qualified_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    /// The delegate configuration bytes, with upstream's name injection.
    ///
    /// Returns `None` when `spec.config` is empty or blank (the caller then resolves the
    /// configuration from the CNI configuration directory). If the config is a JSON
    /// object with a non-empty `"name"` (or a `"name"` that is not a string), the bytes
    /// are returned unchanged. If `"name"` is missing, empty or null, it is set to the
    /// NAD's name and the config is re-serialised compactly, keeping key order and every
    /// other key. A config that is not a JSON object is an error.
    pub fn delegate_config(&self) -> Result<Option<Vec<u8>>, ManifestError> {
        if self.config.trim().is_empty() {
            return Ok(None);
        }
        let mut config: Value =
            serde_json::from_str(&self.config).map_err(|e| self.config_error(e.to_string()))?;
        let Value::Object(map) = &mut config else {
            return Err(self.config_error(format!(
                "must be a JSON object, found {}",
                json_type(&config)
            )));
        };
        if !needs_name(map) {
            return Ok(Some(self.config.as_bytes().to_vec()));
        }
        map.insert("name".to_owned(), Value::String(self.name.clone()));
        serde_json::to_vec(&config)
            .map(Some)
            .map_err(|e| self.config_error(e.to_string()))
    }

    /// An [`ManifestError::InvalidConfig`] for this NAD.
    fn config_error(&self, message: String) -> ManifestError {
        ManifestError::InvalidConfig {
            nad: self.qualified_name(),
            message,
        }
    }
}

/// Whether a config's `"name"` is missing, null or empty.
fn needs_name(config: &Map<String, Value>) -> bool {
    match config.get("name") {
        None | Some(Value::Null) => true,
        Some(Value::String(name)) => name.is_empty(),
        Some(_) => false,
    }
}

/// Whether a CNI configuration file is usable and has the CNI network name `name`.
fn config_has_name(path: &Path, bytes: &[u8], name: &str) -> bool {
    let Ok(Value::Object(config)) = serde_json::from_slice::<Value>(bytes) else {
        tracing::debug!(path = %path.display(), "skipping unparsable CNI configuration file");
        return false;
    };
    if config.get("name").and_then(Value::as_str) != Some(name) {
        return false;
    }
    let has_plugins = config.get("plugins").is_some_and(Value::is_array);
    let is_conflist = path.extension().is_some_and(|ext| ext == "conflist");
    if is_conflist && !has_plugins {
        tracing::debug!(path = %path.display(), "skipping .conflist without a plugins array");
        return false;
    }
    if !config.contains_key("type") && !has_plugins {
        tracing::debug!(
            path = %path.display(),
            "skipping CNI configuration without \"type\" (perhaps this is a .conflist?)"
        );
        return false;
    }
    true
}

// ---------------------------------------------------------------------------------------
// Documents
// ---------------------------------------------------------------------------------------

/// Split a file into documents, as JSON values (`Null` for empty documents).
fn load_documents(text: &str) -> Result<Vec<Value>, ManifestError> {
    if text.len() > MAX_MANIFEST_BYTES {
        return Err(ManifestError::TooLarge {
            bytes: text.len(),
            max: MAX_MANIFEST_BYTES,
        });
    }
    if text.trim_start().starts_with('{') {
        json_documents(text)
    } else {
        yaml_documents(text)
    }
}

/// A stream of concatenated JSON documents.
fn json_documents(text: &str) -> Result<Vec<Value>, ManifestError> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .enumerate()
        .map(|(index, document)| {
            document.map_err(|e| ManifestError::Json {
                document: index + 1,
                message: e.to_string(),
            })
        })
        .collect()
}

/// A `---`-separated YAML stream, parsed within budgets (depth, documents, nodes,
/// aliases, scalar bytes) so that no manifest costs more than linear time and bounded
/// memory; merge keys (`<<`) are applied, duplicate keys refused. Empty documents are
/// left out.
fn yaml_documents(text: &str) -> Result<Vec<Value>, ManifestError> {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_MANIFEST_DEPTH;
    budget.flow_nesting_limit = MAX_MANIFEST_DEPTH;
    budget.max_documents = MAX_MANIFEST_DOCUMENTS;
    budget.max_total_scalar_bytes = MAX_MANIFEST_BYTES;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.with_snippet = false;
    // YAML 1.2 core schema, as before: `n`, `yes`, `off` are strings, not booleans.
    options.strict_booleans = true;
    serde_saphyr::from_multiple_with_options::<Value>(text, options).map_err(|e| {
        ManifestError::Yaml {
            document: yaml_document_number(text, e.location().map(|l| l.line())),
            message: e.to_string(),
        }
    })
}

/// The 1-based number of the YAML document that holds 1-based `line` (the first when
/// unknown): one more than the `---` separators before it.
fn yaml_document_number(text: &str, line: Option<u64>) -> usize {
    let Some(line) = line else { return 1 };
    let before = usize::try_from(line.saturating_sub(1)).unwrap_or(usize::MAX);
    let separators = text
        .lines()
        .take(before)
        .filter(|l| l.starts_with("---"))
        .count();
    // A stream that starts with `---` opens its first document with it.
    let leading = text.trim_start().starts_with("---");
    (separators + 1).saturating_sub(usize::from(leading)).max(1)
}

/// Collect the NADs of one object (a NAD, a list, or an object of another kind).
fn collect_object(
    value: Value,
    at: &Location,
    nads: &mut Vec<NetworkAttachmentDefinition>,
) -> Result<(), ManifestError> {
    let obj = match value {
        Value::Null => return Ok(()),
        Value::Object(obj) => obj,
        other => {
            return Err(ManifestError::NotAnObject {
                at: at.clone(),
                found: json_type(&other),
            });
        }
    };
    let kind = string_field(&obj, "kind", "kind", at)?;
    match kind.as_str() {
        "" => Err(ManifestError::MissingKind { at: at.clone() }),
        NAD_KIND => {
            nads.push(parse_nad(&obj, at)?);
            Ok(())
        }
        list if list.ends_with("List") => collect_list(&obj, list, at, nads),
        other => {
            tracing::debug!(%at, kind = other, "skipping object that is not a NetworkAttachmentDefinition");
            Ok(())
        }
    }
}

/// Collect the NADs of the `items` of a list of kind `kind`.
fn collect_list(
    list: &Map<String, Value>,
    kind: &str,
    at: &Location,
    nads: &mut Vec<NetworkAttachmentDefinition>,
) -> Result<(), ManifestError> {
    let items = match list.get("items") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(items)) => items,
        Some(other) => return Err(wrong_type(at, "items", "an array", other)),
    };
    let item_kind = kind.strip_suffix("List").unwrap_or_default();
    let api_version = list.get("apiVersion");
    for (index, item) in items.iter().enumerate() {
        let item = inherit_type(item.clone(), item_kind, api_version);
        collect_object(item, &at.item(index), nads)?;
    }
    Ok(())
}

/// Give an item of a typed list (`<Kind>List`) the list's kind and apiVersion when it
/// names none, as the Kubernetes API omits them there.
fn inherit_type(mut item: Value, item_kind: &str, api_version: Option<&Value>) -> Value {
    if item_kind.is_empty() {
        return item;
    }
    if let Value::Object(obj) = &mut item
        && is_blank(obj.get("kind"))
    {
        obj.insert("kind".to_owned(), Value::String(item_kind.to_owned()));
        if let (true, Some(api_version)) = (is_blank(obj.get("apiVersion")), api_version) {
            obj.insert("apiVersion".to_owned(), api_version.clone());
        }
    }
    item
}

/// Absent, null or the empty string.
fn is_blank(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    }
}

/// Build a NAD from an object whose kind is NetworkAttachmentDefinition.
fn parse_nad(
    obj: &Map<String, Value>,
    at: &Location,
) -> Result<NetworkAttachmentDefinition, ManifestError> {
    let api_version = string_field(obj, "apiVersion", "apiVersion", at)?;
    if api_version != NAD_API_VERSION {
        return Err(ManifestError::WrongApiVersion {
            at: at.clone(),
            api_version,
        });
    }
    let metadata = object_field(obj, "metadata", "metadata", at)?;
    let name = parse_name(metadata, at)?;
    let namespace = parse_namespace(metadata, at)?;
    let annotations = parse_annotations(metadata, at)?;
    let spec = object_field(obj, "spec", "spec", at)?;
    let config = match spec {
        Some(spec) => string_field(spec, "config", "spec.config", at)?,
        None => String::new(),
    };
    let resource_name = annotations
        .get(RESOURCE_NAME_ANNOTATION)
        .filter(|name| !name.is_empty())
        .cloned();
    Ok(NetworkAttachmentDefinition {
        namespace,
        name,
        config,
        resource_name,
        annotations,
    })
}

/// `metadata.name`: required, a DNS-1123 subdomain.
fn parse_name(
    metadata: Option<&Map<String, Value>>,
    at: &Location,
) -> Result<String, ManifestError> {
    let name = match metadata {
        Some(metadata) => string_field(metadata, "name", "metadata.name", at)?,
        None => String::new(),
    };
    if name.is_empty() {
        return Err(ManifestError::MissingName { at: at.clone() });
    }
    match dns1123_subdomain_problem(&name) {
        None => Ok(name),
        Some(reason) => Err(ManifestError::InvalidName {
            at: at.clone(),
            name,
            reason,
        }),
    }
}

/// `metadata.namespace`: a DNS-1123 label, `"default"` when absent or empty.
fn parse_namespace(
    metadata: Option<&Map<String, Value>>,
    at: &Location,
) -> Result<String, ManifestError> {
    let namespace = match metadata {
        Some(metadata) => string_field(metadata, "namespace", "metadata.namespace", at)?,
        None => String::new(),
    };
    if namespace.is_empty() {
        return Ok(DEFAULT_NAMESPACE.to_owned());
    }
    match dns1123_label_problem(&namespace, 63) {
        None => Ok(namespace),
        Some(reason) => Err(ManifestError::InvalidNamespace {
            at: at.clone(),
            namespace,
            reason,
        }),
    }
}

/// `metadata.annotations`: a map of strings.
fn parse_annotations(
    metadata: Option<&Map<String, Value>>,
    at: &Location,
) -> Result<BTreeMap<String, String>, ManifestError> {
    let Some(metadata) = metadata else {
        return Ok(BTreeMap::new());
    };
    let Some(annotations) = object_field(metadata, "annotations", "metadata.annotations", at)?
    else {
        return Ok(BTreeMap::new());
    };
    annotations
        .iter()
        .map(|(key, value)| match value {
            Value::String(s) => Ok((key.clone(), s.clone())),
            other => Err(wrong_type(
                at,
                &format!("metadata.annotations[{key:?}]"),
                "a string",
                other,
            )),
        })
        .collect()
}

/// A string field; absent or null gives the empty string.
fn string_field(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
    at: &Location,
) -> Result<String, ManifestError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(wrong_type(at, path, "a string", other)),
    }
}

/// An object field; absent or null gives `None`.
fn object_field<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
    at: &Location,
) -> Result<Option<&'a Map<String, Value>>, ManifestError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(map)) => Ok(Some(map)),
        Some(other) => Err(wrong_type(at, path, "a mapping", other)),
    }
}

/// A [`ManifestError::WrongType`].
fn wrong_type(at: &Location, path: &str, expected: &'static str, found: &Value) -> ManifestError {
    ManifestError::WrongType {
        at: at.clone(),
        field: path.to_owned(),
        expected,
        found: json_type(found),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nad(ns: &str, name: &str, config: &str) -> NetworkAttachmentDefinition {
        NetworkAttachmentDefinition {
            namespace: ns.into(),
            name: name.into(),
            config: config.into(),
            resource_name: None,
            annotations: BTreeMap::new(),
        }
    }

    fn at(document: usize, items: &[usize]) -> Location {
        Location {
            document,
            items: items.to_vec(),
        }
    }

    const MACVLAN: &str = r#"{"cniVersion":"0.3.1","type":"macvlan","master":"eth0"}"#;

    #[test]
    fn yaml_multi_document_with_two_nads() {
        let text = r#"
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: macvlan-conf
  namespace: testns1
  annotations:
    k8s.v1.cni.cncf.io/resourceName: intel.com/sriov
spec:
  config: '{"cniVersion":"0.3.1","type":"macvlan","master":"eth0"}'
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: from-dir
"#;
        let nads = parse_manifests(text).unwrap();
        let mut first = nad("testns1", "macvlan-conf", MACVLAN);
        first.resource_name = Some("intel.com/sriov".into());
        first.annotations.insert(
            "k8s.v1.cni.cncf.io/resourceName".into(),
            "intel.com/sriov".into(),
        );
        assert_eq!(nads, vec![first, nad("default", "from-dir", "")]);
    }

    #[test]
    fn block_scalar_config() {
        let text = r#"apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: bridge-net
spec:
  config: |
    {
      "cniVersion": "1.0.0",
      "plugins": [
        {"type": "bridge", "bridge": "br0"}
      ]
    }
"#;
        let nads = parse_manifests(text).unwrap();
        assert_eq!(nads.len(), 1);
        assert_eq!(
            nads[0].config,
            "{\n  \"cniVersion\": \"1.0.0\",\n  \"plugins\": [\n    {\"type\": \"bridge\", \"bridge\": \"br0\"}\n  ]\n}\n"
        );
        let delegate = nads[0].delegate_config().unwrap().unwrap();
        let value: Value = serde_json::from_slice(&delegate).unwrap();
        assert_eq!(value["name"], "bridge-net");
        assert_eq!(value["plugins"][0]["type"], "bridge");
    }

    #[test]
    fn json_single_nad() {
        let text = r#"{"apiVersion":"k8s.cni.cncf.io/v1","kind":"NetworkAttachmentDefinition",
            "metadata":{"name":"n1","namespace":"ns1"},"spec":{"config":"{\"type\":\"ptp\"}"}}"#;
        assert_eq!(
            parse_manifests(text).unwrap(),
            vec![nad("ns1", "n1", r#"{"type":"ptp"}"#)]
        );
    }

    #[test]
    fn json_stream_of_documents() {
        let one = r#"{"apiVersion":"k8s.cni.cncf.io/v1","kind":"NetworkAttachmentDefinition","metadata":{"name":"a"}}"#;
        let two = one.replace("\"a\"", "\"b\"");
        let nads = parse_manifests(&format!("{one}\n{two}")).unwrap();
        assert_eq!(nads, vec![nad("default", "a", ""), nad("default", "b", "")]);
    }

    #[test]
    fn json_list() {
        let text = r#"{"apiVersion":"v1","kind":"List","items":[
            {"apiVersion":"k8s.cni.cncf.io/v1","kind":"NetworkAttachmentDefinition","metadata":{"name":"a"}},
            {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"cm"}},
            {"apiVersion":"k8s.cni.cncf.io/v1","kind":"NetworkAttachmentDefinition","metadata":{"name":"b","namespace":"x"}}
        ]}"#;
        assert_eq!(
            parse_manifests(text).unwrap(),
            vec![nad("default", "a", ""), nad("x", "b", "")]
        );
    }

    #[test]
    fn typed_list_items_inherit_kind_and_api_version() {
        let text = r#"{"apiVersion":"k8s.cni.cncf.io/v1","kind":"NetworkAttachmentDefinitionList",
            "metadata":{"resourceVersion":"1"},
            "items":[{"metadata":{"name":"a","namespace":"n"},"spec":{"config":""}}]}"#;
        assert_eq!(parse_manifests(text).unwrap(), vec![nad("n", "a", "")]);
    }

    #[test]
    fn yaml_list_and_skipped_kinds() {
        let text = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  template:
    metadata:
      annotations:
        k8s.v1.cni.cncf.io/networks: a
---
# only a comment
---
apiVersion: v1
kind: List
items:
- apiVersion: k8s.cni.cncf.io/v1
  kind: NetworkAttachmentDefinition
  metadata: {name: a, namespace: n}
  spec: {config: '{"type":"ptp"}'}
- apiVersion: v1
  kind: Service
  metadata: {name: s}
---
"#;
        assert_eq!(
            parse_manifests(text).unwrap(),
            vec![nad("n", "a", r#"{"type":"ptp"}"#)]
        );
    }

    #[test]
    fn yaml_anchors_and_merge_keys() {
        let text = r#"
apiVersion: v1
kind: List
items:
- &base
  apiVersion: k8s.cni.cncf.io/v1
  kind: NetworkAttachmentDefinition
  metadata: {name: a}
- <<: *base
  metadata: {name: b}
"#;
        assert_eq!(
            parse_manifests(text).unwrap(),
            vec![nad("default", "a", ""), nad("default", "b", "")]
        );
    }

    #[test]
    fn empty_files_have_no_nads() {
        for text in ["", "\n", "---\n---\n", "# comment\n", "  "] {
            assert_eq!(parse_manifests(text).unwrap(), vec![], "{text:?}");
        }
    }

    #[test]
    fn manifest_errors_table() {
        let header = "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\n";
        let cases: Vec<(String, ManifestError)> = vec![
            (
                format!("{header}metadata:\n  namespace: x\n"),
                ManifestError::MissingName { at: at(1, &[]) },
            ),
            (
                format!("{header}spec: {{}}\n"),
                ManifestError::MissingName { at: at(1, &[]) },
            ),
            (
                format!("kind: ConfigMap\n---\n{header}metadata: {{name: ''}}\n"),
                ManifestError::MissingName { at: at(2, &[]) },
            ),
            (
                format!("{header}metadata: {{name: My_Net}}\n"),
                ManifestError::InvalidName {
                    at: at(1, &[]),
                    name: "My_Net".into(),
                    reason: dns1123_subdomain_problem("My_Net").unwrap_or_default(),
                },
            ),
            (
                format!("{header}metadata: {{name: n, namespace: a.b}}\n"),
                ManifestError::InvalidNamespace {
                    at: at(1, &[]),
                    namespace: "a.b".into(),
                    reason: dns1123_label_problem("a.b", 63).unwrap_or_default(),
                },
            ),
            (
                "apiVersion: k8s.cni.cncf.io.example/v1\nkind: NetworkAttachmentDefinition\nmetadata: {name: n}\n".into(),
                ManifestError::WrongApiVersion {
                    at: at(1, &[]),
                    api_version: "k8s.cni.cncf.io.example/v1".into(),
                },
            ),
            (
                "apiVersion: v1\nkind: NetworkAttachmentDefinition\nmetadata: {name: n}\n".into(),
                ManifestError::WrongApiVersion {
                    at: at(1, &[]),
                    api_version: "v1".into(),
                },
            ),
            (
                format!("{header}metadata: {{name: n}}\nspec: {{config: {{type: ptp}}}}\n"),
                ManifestError::WrongType {
                    at: at(1, &[]),
                    field: "spec.config".into(),
                    expected: "a string",
                    found: "an object",
                },
            ),
            (
                format!("{header}metadata: {{name: n, annotations: {{a: 1}}}}\n"),
                ManifestError::WrongType {
                    at: at(1, &[]),
                    field: "metadata.annotations[\"a\"]".into(),
                    expected: "a string",
                    found: "a number",
                },
            ),
            (
                format!("{header}metadata: [n]\n"),
                ManifestError::WrongType {
                    at: at(1, &[]),
                    field: "metadata".into(),
                    expected: "a mapping",
                    found: "an array",
                },
            ),
            (
                "metadata: {name: n}\n".into(),
                ManifestError::MissingKind { at: at(1, &[]) },
            ),
            (
                "- a\n- b\n".into(),
                ManifestError::NotAnObject {
                    at: at(1, &[]),
                    found: "an array",
                },
            ),
            (
                "kind: List\nitems: {a: b}\n".into(),
                ManifestError::WrongType {
                    at: at(1, &[]),
                    field: "items".into(),
                    expected: "an array",
                    found: "an object",
                },
            ),
            (
                "kind: List\nitems:\n- kind: Secret\n- apiVersion: k8s.cni.cncf.io/v1\n  \
                 kind: NetworkAttachmentDefinition\n"
                    .into(),
                ManifestError::MissingName { at: at(1, &[1]) },
            ),
            (
                "kind: List\nitems:\n- kind: List\n  items: [3]\n".into(),
                ManifestError::NotAnObject {
                    at: at(1, &[0, 0]),
                    found: "a number",
                },
            ),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_manifests(&text).unwrap_err(), expected, "{text}");
        }
    }

    #[test]
    fn syntax_errors_name_the_document() {
        let err = parse_manifests("kind: ConfigMap\n---\nkind: [unclosed\n").unwrap_err();
        assert!(
            matches!(err, ManifestError::Yaml { document: 2, .. }),
            "{err:?}"
        );
        let err = parse_manifests("{\"kind\":\"List\"}\n{\"kind\":").unwrap_err();
        assert!(
            matches!(err, ManifestError::Json { document: 2, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn error_messages_say_where() {
        let err = parse_manifests("kind: List\nitems:\n- kind: List\n  items: [3]\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "document 1, items[0].items[0]: expected a Kubernetes object (a mapping), found a number"
        );
    }

    #[test]
    fn qualified_name() {
        assert_eq!(nad("ns", "net", "").qualified_name(), "ns/net");
    }

    #[test]
    fn delegate_config_keeps_bytes_when_named() {
        for config in [
            "{\"name\":\"mine\",\"type\":\"ptp\", \"mtu\": 1.50e3 }\n",
            "{ \"type\": \"bridge\",\n  \"name\": \"other\" }",
            // A non-string name is left for libcni to reject, as upstream.
            "{\"name\":5}",
        ] {
            let n = nad("ns", "net", config);
            assert_eq!(
                n.delegate_config().unwrap(),
                Some(config.as_bytes().to_vec())
            );
        }
    }

    #[test]
    fn delegate_config_injects_missing_name() {
        let cases = [
            (
                r#"{"cniVersion":"0.4.0","type":"ptp","ipam":{"z":1,"a":2}}"#,
                r#"{"cniVersion":"0.4.0","type":"ptp","ipam":{"z":1,"a":2},"name":"net"}"#,
            ),
            (
                r#"{"type":"ptp", "name": "", "b": true}"#,
                r#"{"type":"ptp","name":"net","b":true}"#,
            ),
            (
                r#"{"name":null,"type":"x"}"#,
                r#"{"name":"net","type":"x"}"#,
            ),
            ("{}", r#"{"name":"net"}"#),
        ];
        for (config, expected) in cases {
            let n = nad("ns", "net", config);
            assert_eq!(
                String::from_utf8(n.delegate_config().unwrap().unwrap()).unwrap(),
                expected
            );
        }
    }

    #[test]
    fn delegate_config_empty_and_errors() {
        assert_eq!(nad("ns", "net", "").delegate_config().unwrap(), None);
        assert_eq!(nad("ns", "net", " \n").delegate_config().unwrap(), None);
        let err = nad("ns", "net", "[1]").delegate_config().unwrap_err();
        assert_eq!(
            err,
            ManifestError::InvalidConfig {
                nad: "ns/net".into(),
                message: "must be a JSON object, found an array".into()
            }
        );
        let err = nad("ns", "net", "{\"type\":")
            .delegate_config()
            .unwrap_err();
        assert!(
            matches!(&err, ManifestError::InvalidConfig { nad, .. } if nad == "ns/net"),
            "{err:?}"
        );
    }

    fn file(path: &str, content: &str) -> (PathBuf, Vec<u8>) {
        (PathBuf::from(path), content.as_bytes().to_vec())
    }

    #[test]
    fn find_config_by_name_table() {
        let files = vec![
            file(
                "/etc/cni/net.d/30-b.conflist",
                r#"{"name":"net","plugins":[{"type":"ptp"}]}"#,
            ),
            file(
                "/etc/cni/net.d/20-a.conf",
                r#"{"name":"net","type":"bridge"}"#,
            ),
            file("/etc/cni/net.d/10-bad.conf", "not json"),
            file("/etc/cni/net.d/05-list-in-conf.conf", r#"{"name":"net"}"#),
            file("/etc/cni/net.d/04-x.json", r#"{"name":"other","type":"x"}"#),
            file(
                "/etc/cni/net.d/03-nolist.conflist",
                r#"{"name":"lst","type":"x"}"#,
            ),
            file(
                "/etc/cni/net.d/40-lst.conflist",
                r#"{"name":"lst","plugins":[]}"#,
            ),
            file(
                "/etc/cni/net.d/50-j.json",
                r#"{"name":"j","plugins":[{"type":"x"}]}"#,
            ),
        ];
        let find = |name| {
            find_config_by_name(&files, name).map(|b| String::from_utf8_lossy(b).into_owned())
        };
        assert_eq!(
            find("net").as_deref(),
            Some(r#"{"name":"net","type":"bridge"}"#)
        );
        assert_eq!(
            find("other").as_deref(),
            Some(r#"{"name":"other","type":"x"}"#)
        );
        assert_eq!(
            find("lst").as_deref(),
            Some(r#"{"name":"lst","plugins":[]}"#)
        );
        assert_eq!(
            find("j").as_deref(),
            Some(r#"{"name":"j","plugins":[{"type":"x"}]}"#)
        );
        assert_eq!(find("missing"), None);
        assert_eq!(find_config_by_name(&[], "net"), None);
        assert_eq!(
            unparsable_configs(&files),
            vec![(
                PathBuf::from("/etc/cni/net.d/10-bad.conf"),
                "expected ident at line 1 column 2".to_owned()
            )]
        );
    }

    #[test]
    fn deep_yaml_is_refused_quickly_with_a_clear_error() {
        let depth = 100_000;
        let text = format!(
            "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata:\n  name: n\nspec: {}{}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let started = std::time::Instant::now();
        let err = parse_manifests(&text).unwrap_err();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(5),
            "took {:?}",
            started.elapsed()
        );
        assert!(
            matches!(err, ManifestError::Yaml { document: 1, .. }),
            "{err}"
        );
        let message = err.to_string();
        assert!(
            ["depth", "nesting", "recursion limit"]
                .iter()
                .any(|m| message.contains(m)),
            "{message}"
        );
        // Just past the limit, in flow and in block style.
        let deep = MAX_MANIFEST_DEPTH + 6;
        let flow = format!(
            "kind: List\nitems: []\nx: {}{}\n",
            "[".repeat(deep),
            "]".repeat(deep)
        );
        assert!(
            parse_manifests(&flow).is_err(),
            "flow nesting {deep} accepted"
        );
        let mut block = String::from("kind: List\nitems: []\nx:\n");
        for level in 1..deep {
            block.push_str(&format!("{}a:\n", " ".repeat(level)));
        }
        block.push_str(&format!("{}a: 1\n", " ".repeat(deep)));
        assert!(
            parse_manifests(&block).is_err(),
            "block nesting {deep} accepted"
        );
        // Within the limit it parses.
        let shallow = format!(
            "apiVersion: k8s.cni.cncf.io/v1\nkind: NetworkAttachmentDefinition\nmetadata:\n  name: n\nspec:\n  config: ''\n  x: {}{}\n",
            "[".repeat(20),
            "]".repeat(20)
        );
        assert_eq!(parse_manifests(&shallow).unwrap().len(), 1);
    }

    #[test]
    fn oversized_manifests_are_refused_before_parsing() {
        let text = format!("# {}\n", "x".repeat(MAX_MANIFEST_BYTES));
        let err = parse_manifests(&text).unwrap_err();
        assert!(matches!(err, ManifestError::TooLarge { .. }), "{err}");
        assert!(err.to_string().contains("more than the limit"), "{err}");
    }

    #[test]
    fn yaml_errors_name_their_document() {
        let text = "kind: List\nitems: []\n---\nkind: List\nitems: []\n---\nkind: [\n";
        let err = parse_manifests(text).unwrap_err();
        assert!(
            matches!(err, ManifestError::Yaml { document: 3, .. }),
            "{err}"
        );
    }

    proptest! {
        #[test]
        fn manifest_parser_never_panics(text in "\\PC*") {
            let _ = parse_manifests(&text);
        }

        #[test]
        fn manifest_parser_never_panics_on_yamlish(
            text in r#"[-{}\[\]:,'"|>&*!#<\n a-zA-Z0-9.]{0,96}"#
        ) {
            let _ = parse_manifests(&text);
        }

        #[test]
        fn nads_parse_back(
            name in "[a-z0-9]([-a-z0-9.]{0,20}[a-z0-9])?",
            ns in proptest::option::of("[a-z0-9]([-a-z0-9]{0,20}[a-z0-9])?"),
            config in "\\PC{0,40}",
        ) {
            prop_assume!(dns1123_subdomain_problem(&name).is_none());
            let mut metadata = Map::new();
            metadata.insert("name".into(), Value::String(name.clone()));
            if let Some(ns) = &ns {
                metadata.insert("namespace".into(), Value::String(ns.clone()));
            }
            let doc = serde_json::json!({
                "apiVersion": NAD_API_VERSION,
                "kind": NAD_KIND,
                "metadata": metadata,
                "spec": {"config": config},
            });
            let json = serde_json::to_string(&doc).unwrap();
            let yaml = serde_saphyr::to_string(&doc).unwrap();
            let expected = vec![nad(ns.as_deref().unwrap_or("default"), &name, &config)];
            prop_assert_eq!(parse_manifests(&json).unwrap(), expected.clone());
            prop_assert_eq!(parse_manifests(&yaml).unwrap(), expected);
        }
    }
}
