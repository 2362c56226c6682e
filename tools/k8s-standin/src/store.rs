//! The objects, in memory, with resourceVersions, UIDs, creation timestamps and a watch
//! history, as the API server keeps them.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use tokio::sync::broadcast;

use crate::kinds::Kind;
use multus_host::time::rfc3339_now as now_rfc3339;

/// A change, as a watch reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchEvent {
    /// The resourceVersion the change produced.
    pub resource_version: u64,
    /// Plural resource (`pods`, ...).
    pub resource: &'static str,
    /// The object's namespace.
    pub namespace: String,
    /// `ADDED`, `MODIFIED` or `DELETED`.
    pub kind: &'static str,
    /// The object after the change (before it, for `DELETED`).
    pub object: Value,
}

/// Why a write was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreError {
    /// No such object.
    NotFound,
    /// An object of that name exists.
    AlreadyExists,
    /// A precondition (resourceVersion, UID) does not hold.
    Conflict(String),
    /// The object is not acceptable.
    Invalid(String),
    /// The patch does not apply.
    BadPatch(String),
}

type Key = (&'static str, String, String);

/// Every object, by (resource, namespace, name).
#[derive(Debug)]
pub struct Store {
    objects: BTreeMap<Key, Value>,
    resource_version: u64,
    history: Vec<WatchEvent>,
    sender: broadcast::Sender<WatchEvent>,
}

impl Default for Store {
    fn default() -> Self {
        Self {
            objects: BTreeMap::new(),
            resource_version: 1000,
            history: Vec::new(),
            sender: broadcast::channel(4096).0,
        }
    }
}

/// How a PATCH body is to be applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    /// `application/merge-patch+json` (and strategic merge, treated alike).
    Merge,
    /// `application/json-patch+json`.
    Json,
}

fn meta(object: &Value, key: &str) -> Option<String> {
    object
        .get("metadata")?
        .get(key)?
        .as_str()
        .map(str::to_owned)
}

fn meta_mut(object: &mut Value) -> Result<&mut Map<String, Value>, StoreError> {
    let Value::Object(map) = object else {
        return Err(StoreError::Invalid(
            "the object is not a JSON object".into(),
        ));
    };
    let metadata = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    metadata
        .as_object_mut()
        .ok_or_else(|| StoreError::Invalid("metadata is not an object".into()))
}

impl Store {
    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    /// Subscribe to changes after now.
    pub fn subscribe(&self) -> broadcast::Receiver<WatchEvent> {
        self.sender.subscribe()
    }

    /// The changes after `resource_version`.
    pub fn history_after(&self, resource_version: u64) -> Vec<WatchEvent> {
        self.history
            .iter()
            .filter(|e| e.resource_version > resource_version)
            .cloned()
            .collect()
    }

    fn record(
        &mut self,
        resource: &'static str,
        namespace: &str,
        kind: &'static str,
        object: Value,
    ) {
        let event = WatchEvent {
            resource_version: self.resource_version,
            resource,
            namespace: namespace.to_owned(),
            kind,
            object,
        };
        self.history.push(event.clone());
        let _ = self.sender.send(event);
    }

    fn bump(&mut self) -> u64 {
        self.resource_version += 1;
        self.resource_version
    }

    /// One object.
    pub fn get(&self, kind: &Kind, namespace: &str, name: &str) -> Option<Value> {
        self.objects
            .get(&(kind.resource, namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// The objects of a resource, in one namespace or all.
    pub fn list(&self, kind: &Kind, namespace: Option<&str>) -> Vec<Value> {
        self.objects
            .iter()
            .filter(|((resource, ns, _), _)| {
                *resource == kind.resource && namespace.is_none_or(|n| n == ns)
            })
            .map(|(_, object)| object.clone())
            .collect()
    }

    /// Create an object, setting what the server sets.
    pub fn create(
        &mut self,
        kind: &Kind,
        namespace: &str,
        mut object: Value,
    ) -> Result<Value, StoreError> {
        let metadata = meta_mut(&mut object)?;
        let name = match metadata.get("name").and_then(Value::as_str) {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => match metadata.get("generateName").and_then(Value::as_str) {
                Some(prefix) if !prefix.is_empty() => {
                    let suffix: String = uuid::Uuid::new_v4().simple().to_string()[..5].to_owned();
                    format!("{prefix}{suffix}")
                }
                _ => {
                    return Err(StoreError::Invalid(
                        "metadata.name: Required value: name or generateName is required".into(),
                    ));
                }
            },
        };
        if let Some(ns) = metadata.get("namespace").and_then(Value::as_str)
            && !ns.is_empty()
            && ns != namespace
        {
            return Err(StoreError::Invalid(format!(
                "the namespace of the provided object ({ns}) does not match the namespace sent on the request ({namespace})"
            )));
        }
        let key = (kind.resource, namespace.to_owned(), name.clone());
        if self.objects.contains_key(&key) {
            return Err(StoreError::AlreadyExists);
        }
        let resource_version = self.bump();
        metadata.insert("name".into(), name.into());
        if namespace.is_empty() {
            metadata.remove("namespace");
        } else {
            metadata.insert("namespace".into(), namespace.into());
        }
        metadata.insert("uid".into(), uuid::Uuid::new_v4().to_string().into());
        metadata.insert(
            "resourceVersion".into(),
            resource_version.to_string().into(),
        );
        metadata.insert("creationTimestamp".into(), now_rfc3339().into());
        if let Value::Object(map) = &mut object {
            map.insert("apiVersion".into(), kind.api_version().into());
            map.insert("kind".into(), kind.kind.into());
            if kind.resource == "pods" && !map.contains_key("status") {
                map.insert("status".into(), json!({"phase": "Pending"}));
            }
        }
        self.objects.insert(key, object.clone());
        self.record(kind.resource, namespace, "ADDED", object.clone());
        Ok(object)
    }

    /// Replace an object (PUT), or its status (`status` subresource).
    pub fn update(
        &mut self,
        kind: &Kind,
        namespace: &str,
        name: &str,
        object: Value,
        status_only: bool,
    ) -> Result<Value, StoreError> {
        let current = self
            .get(kind, namespace, name)
            .ok_or(StoreError::NotFound)?;
        if let Some(version) = meta(&object, "resourceVersion")
            && meta(&current, "resourceVersion").as_deref() != Some(version.as_str())
        {
            return Err(StoreError::Conflict(format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                kind.qualified()
            )));
        }
        self.finish_update(kind, namespace, name, &current, object, status_only)
    }

    /// Apply a patch.
    pub fn patch(
        &mut self,
        kind: &Kind,
        namespace: &str,
        name: &str,
        patch_type: PatchType,
        patch: &Value,
        status_only: bool,
    ) -> Result<Value, StoreError> {
        let current = self
            .get(kind, namespace, name)
            .ok_or(StoreError::NotFound)?;
        let mut patched = current.clone();
        match patch_type {
            PatchType::Merge => json_patch::merge(&mut patched, patch),
            PatchType::Json => {
                let operations: json_patch::Patch = serde_json::from_value(patch.clone())
                    .map_err(|e| StoreError::BadPatch(e.to_string()))?;
                json_patch::patch(&mut patched, &operations)
                    .map_err(|e| StoreError::BadPatch(e.to_string()))?;
            }
        }
        let (old_uid, new_uid) = (meta(&current, "uid"), meta(&patched, "uid"));
        if old_uid != new_uid {
            return Err(StoreError::Conflict(format!(
                "Precondition failed: UID in precondition: {}, UID in object meta: {}",
                new_uid.unwrap_or_default(),
                old_uid.unwrap_or_default()
            )));
        }
        let (old_version, new_version) = (
            meta(&current, "resourceVersion"),
            meta(&patched, "resourceVersion"),
        );
        if old_version != new_version {
            return Err(StoreError::Conflict(format!(
                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                kind.qualified()
            )));
        }
        self.finish_update(kind, namespace, name, &current, patched, status_only)
    }

    fn finish_update(
        &mut self,
        kind: &Kind,
        namespace: &str,
        name: &str,
        current: &Value,
        mut object: Value,
        status_only: bool,
    ) -> Result<Value, StoreError> {
        let resource_version = self.bump();
        {
            let metadata = meta_mut(&mut object)?;
            for key in ["name", "namespace", "uid", "creationTimestamp"] {
                match meta(current, key) {
                    Some(value) => metadata.insert(key.into(), value.into()),
                    None => metadata.remove(key),
                };
            }
            metadata.insert(
                "resourceVersion".into(),
                resource_version.to_string().into(),
            );
        }
        if let Value::Object(map) = &mut object {
            map.insert("apiVersion".into(), kind.api_version().into());
            map.insert("kind".into(), kind.kind.into());
            // The status subresource changes metadata and status only.
            if status_only {
                match current.get("spec") {
                    Some(spec) => map.insert("spec".into(), spec.clone()),
                    None => map.remove("spec"),
                };
            }
        }
        self.objects.insert(
            (kind.resource, namespace.to_owned(), name.to_owned()),
            object.clone(),
        );
        self.record(kind.resource, namespace, "MODIFIED", object.clone());
        Ok(object)
    }

    /// Delete an object; returns it.
    pub fn delete(
        &mut self,
        kind: &Kind,
        namespace: &str,
        name: &str,
    ) -> Result<Value, StoreError> {
        let mut object = self
            .objects
            .remove(&(kind.resource, namespace.to_owned(), name.to_owned()))
            .ok_or(StoreError::NotFound)?;
        let resource_version = self.bump();
        if let Ok(metadata) = meta_mut(&mut object) {
            metadata.insert(
                "resourceVersion".into(),
                resource_version.to_string().into(),
            );
        }
        self.record(kind.resource, namespace, "DELETED", object.clone());
        Ok(object)
    }
}
