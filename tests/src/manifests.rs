//! The manifests of `deployments/` parsed into typed Kubernetes objects, for the
//! deployment tests (multus-node's): every document must be a known kind, and a key its
//! type does not know is a failure.

use std::path::{Path, PathBuf};

use k8s_openapi::api::admissionregistration::v1::{
    ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding,
};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::core::v1::{ConfigMap, Container, ServiceAccount};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde_json::Value;

/// The image every manifest runs.
pub const IMAGE: &str = "ghcr.io/multus-rs/multus-rs:latest";
/// Where the image keeps its binaries.
pub const IMAGE_BIN_DIR: &str = "/usr/src/multus-cni/bin";
/// The thick manifest.
pub const THICK: &str = "multus-daemonset-thick.yml";
/// The thin manifest.
pub const THIN: &str = "multus-daemonset.yml";
/// The standalone CRD.
pub const CRD: &str = "network-attachment-definition-crd.yml";
/// The optional admission policy that scopes a node's multus to its own pods.
pub const STATUS_POLICY: &str = "multus-node-scoped-status-policy.yml";
/// The per-node identity manifest (RBAC and the CSR approver).
pub const PER_NODE_IDENTITY: &str = "multus-per-node-identity.yml";

/// The repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// `deployments/<name>`.
pub fn deployment(name: &str) -> PathBuf {
    repo().join("deployments").join(name)
}

/// One YAML document: its JSON form and the typed object it is.
#[derive(Debug, Clone)]
#[allow(missing_docs)] // one variant per kind, named after it
pub enum Object {
    Crd(Box<CustomResourceDefinition>),
    ServiceAccount(Box<ServiceAccount>),
    ClusterRole(Box<ClusterRole>),
    ClusterRoleBinding(Box<ClusterRoleBinding>),
    ConfigMap(Box<ConfigMap>),
    DaemonSet(Box<DaemonSet>),
    Deployment(Box<Deployment>),
    Policy(Box<ValidatingAdmissionPolicy>),
    PolicyBinding(Box<ValidatingAdmissionPolicyBinding>),
}

/// Parse `value` as `T` and back: a key the type does not know (a typo such as
/// `mountPropagaton`) would be dropped and is reported.
fn typed<T: serde::de::DeserializeOwned + serde::Serialize>(value: &Value, what: &str) -> T {
    let object: T = serde_json::from_value(value.clone())
        .unwrap_or_else(|e| panic!("{what} does not parse as its Kubernetes type: {e}"));
    let back = serde_json::to_value(&object).unwrap();
    if let Some(path) = first_difference(value, &back, String::new()) {
        panic!("{what}: {path} is not part of the Kubernetes type (or has the wrong type)");
    }
    object
}

/// The JSON pointer of the first place where `a` and `b` differ.
fn first_difference(a: &Value, b: &Value, at: String) -> Option<String> {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => x
            .iter()
            .find_map(|(k, v)| match y.get(k) {
                Some(w) => first_difference(v, w, format!("{at}/{k}")),
                None => Some(format!("{at}/{k}")),
            })
            .or_else(|| {
                y.keys()
                    .find(|k| !x.contains_key(*k))
                    .map(|k| format!("{at}/{k}"))
            }),
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (v, w))| first_difference(v, w, format!("{at}/{i}"))),
        _ => (a != b).then_some(if at.is_empty() { "/".to_owned() } else { at }),
    }
}

/// A manifest: its documents in order.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The file name in `deployments/`.
    pub name: String,
    /// Each document as JSON and as its typed object.
    pub documents: Vec<(Value, Object)>,
}

impl Manifest {
    /// Parse `deployments/<name>`: every document must be a known kind.
    pub fn load(name: &str) -> Self {
        let text = std::fs::read_to_string(deployment(name)).unwrap();
        let mut documents = Vec::new();
        let values: Vec<Value> = serde_saphyr::from_multiple(&text)
            .unwrap_or_else(|e| panic!("{name}: not YAML documents: {e}"));
        for value in values {
            if value.is_null() {
                continue;
            }
            let kind = value["kind"].as_str().unwrap_or_default().to_owned();
            let what = format!("{name}: {kind} {}", value["metadata"]["name"]);
            let object = match kind.as_str() {
                "CustomResourceDefinition" => Object::Crd(typed(&value, &what)),
                "ServiceAccount" => Object::ServiceAccount(typed(&value, &what)),
                "ClusterRole" => Object::ClusterRole(typed(&value, &what)),
                "ClusterRoleBinding" => Object::ClusterRoleBinding(typed(&value, &what)),
                "ConfigMap" => Object::ConfigMap(typed(&value, &what)),
                "DaemonSet" => Object::DaemonSet(typed(&value, &what)),
                "Deployment" => Object::Deployment(typed(&value, &what)),
                "ValidatingAdmissionPolicy" => Object::Policy(typed(&value, &what)),
                "ValidatingAdmissionPolicyBinding" => Object::PolicyBinding(typed(&value, &what)),
                other => panic!("{what}: unexpected kind {other:?}"),
            };
            documents.push((value, object));
        }
        Self {
            name: name.to_owned(),
            documents,
        }
    }

    fn one<T>(&self, pick: impl Fn(&Object) -> Option<&T>) -> &T {
        let found: Vec<&T> = self.documents.iter().filter_map(|(_, o)| pick(o)).collect();
        assert_eq!(
            found.len(),
            1,
            "{}: expected exactly one of the kind",
            self.name
        );
        found[0]
    }

    /// The one CustomResourceDefinition of the manifest.
    pub fn crd(&self) -> &CustomResourceDefinition {
        self.one(|o| match o {
            Object::Crd(x) => Some(x.as_ref()),
            _ => None,
        })
    }
    /// The one ValidatingAdmissionPolicy of the manifest.
    pub fn policy(&self) -> &ValidatingAdmissionPolicy {
        self.one(|o| match o {
            Object::Policy(x) => Some(x.as_ref()),
            _ => None,
        })
    }
    /// The one ValidatingAdmissionPolicyBinding of the manifest.
    pub fn policy_binding(&self) -> &ValidatingAdmissionPolicyBinding {
        self.one(|o| match o {
            Object::PolicyBinding(x) => Some(x.as_ref()),
            _ => None,
        })
    }
    /// The one ServiceAccount of the manifest.
    pub fn service_account(&self) -> &ServiceAccount {
        self.one(|o| match o {
            Object::ServiceAccount(x) => Some(x.as_ref()),
            _ => None,
        })
    }
    /// The one ClusterRole of the manifest.
    pub fn cluster_role(&self) -> &ClusterRole {
        self.one(|o| match o {
            Object::ClusterRole(x) => Some(x.as_ref()),
            _ => None,
        })
    }
    /// The one ClusterRoleBinding of the manifest.
    pub fn binding(&self) -> &ClusterRoleBinding {
        self.one(|o| match o {
            Object::ClusterRoleBinding(x) => Some(x.as_ref()),
            _ => None,
        })
    }
    /// The one ConfigMap of the manifest.
    pub fn config_map(&self) -> &ConfigMap {
        self.one(|o| match o {
            Object::ConfigMap(x) => Some(x.as_ref()),
            _ => None,
        })
    }
    /// The one DaemonSet of the manifest.
    pub fn daemon_set(&self) -> &DaemonSet {
        self.one(|o| match o {
            Object::DaemonSet(x) => Some(x.as_ref()),
            _ => None,
        })
    }

    /// Init containers, then containers.
    pub fn containers(&self) -> Vec<&Container> {
        let spec = self.daemon_set().spec.template.spec.as_ref().unwrap();
        spec.init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
            .collect()
    }

    /// The container named `name`.
    pub fn container(&self, name: &str) -> &Container {
        self.containers()
            .into_iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("{}: no container {name}", self.name))
    }

    /// The host path a container path of `container` is, through its hostPath mounts
    /// (the longest mount path that contains it); `None` when no hostPath mount does.
    pub fn host_path_of(&self, container: &Container, path: &Path) -> Option<PathBuf> {
        let (mount_path, source) = self.mount_of(container, path)?;
        let Source::Host(host) = source else {
            return None;
        };
        let rest = path.strip_prefix(&mount_path).ok()?;
        Some(if rest.as_os_str().is_empty() {
            host
        } else {
            host.join(rest)
        })
    }

    /// The mount of `container` that contains `path`, and what it mounts.
    pub fn mount_of(&self, container: &Container, path: &Path) -> Option<(PathBuf, Source)> {
        let spec = self.daemon_set().spec.template.spec.as_ref()?;
        let mounts = container.volume_mounts.as_ref()?;
        let best = mounts
            .iter()
            .filter(|m| path.starts_with(&m.mount_path))
            .max_by_key(|m| m.mount_path.len())?;
        let volume = spec
            .volumes
            .iter()
            .flatten()
            .find(|v| v.name == best.name)
            .unwrap_or_else(|| panic!("{}: no volume {}", self.name, best.name));
        let source = if let Some(host) = &volume.host_path {
            let trimmed = host.path.trim_end_matches('/');
            Source::Host(PathBuf::from(if trimmed.is_empty() {
                "/"
            } else {
                trimmed
            }))
        } else if let Some(cm) = &volume.config_map {
            Source::ConfigMap(cm.name.clone())
        } else {
            Source::Other
        };
        Some((PathBuf::from(&best.mount_path), source))
    }
}

/// What a volume mounts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A hostPath volume: the host directory.
    Host(PathBuf),
    /// A ConfigMap volume: its name.
    ConfigMap(String),
    /// Anything else.
    Other,
}
