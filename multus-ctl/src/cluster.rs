//! The Kubernetes API, found as kubectl finds it: `--kubeconfig`, else `KUBECONFIG`
//! (several files merged), else the in-cluster service account, else
//! `$HOME/.kube/config`; `--context` picks the context. Reads only: pods and
//! NetworkAttachmentDefinitions.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use multus_core::nad::{NetworkAttachmentDefinition, parse_manifests};
use serde_json::{Value, json};

use crate::cli::GlobalArgs;
use crate::error::{CtlError, chain, one_line};

/// What multus-ctl needs of a pod.
#[derive(Debug, Clone)]
pub struct PodObject {
    /// metadata.uid.
    pub uid: String,
    /// metadata.annotations.
    pub annotations: BTreeMap<String, String>,
    /// spec.nodeName.
    pub node: Option<String>,
}

/// NADs that parsed, and `(namespace/name, problem)` of those that did not.
pub type NadList = (Vec<NetworkAttachmentDefinition>, Vec<(String, String)>);

/// Where the API configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Origin {
    /// `--kubeconfig FILE`.
    Flag(PathBuf),
    /// `KUBECONFIG`.
    Env(String),
    /// The in-cluster service account.
    InCluster,
    /// `$HOME/.kube/config`.
    Home(PathBuf),
}

impl Origin {
    fn describe(&self) -> String {
        match self {
            Self::Flag(path) => format!("kubeconfig {} (--kubeconfig)", path.display()),
            Self::Env(value) => format!("kubeconfig {value} (KUBECONFIG)"),
            Self::InCluster => "the in-cluster service account".to_owned(),
            Self::Home(path) => format!("kubeconfig {}", path.display()),
        }
    }
}

fn origin(global: &GlobalArgs) -> Option<Origin> {
    if global.no_api {
        return None;
    }
    if let Some(path) = &global.kubeconfig {
        return Some(Origin::Flag(path.clone()));
    }
    let env = |key: &str| std::env::var(key).ok().filter(|v| !v.is_empty());
    if let Some(value) = env("KUBECONFIG") {
        return Some(Origin::Env(value));
    }
    if env("KUBERNETES_SERVICE_HOST").is_some() && env("KUBERNETES_SERVICE_PORT").is_some() {
        return Some(Origin::InCluster);
    }
    let home = PathBuf::from(env("HOME")?).join(".kube").join("config");
    home.is_file().then_some(Origin::Home(home))
}

/// A connection to the API server.
pub struct Cluster {
    runtime: tokio::runtime::Runtime,
    client: kube::Client,
    /// How the server was found, for messages: `kubeconfig X, context Y (https://...)`.
    pub describe: String,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("describe", &self.describe)
            .finish_non_exhaustive()
    }
}

fn nad_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("k8s.cni.cncf.io", "v1", "NetworkAttachmentDefinition"),
        "network-attachment-definitions",
    )
}

impl Cluster {
    /// Connect when an API configuration is available; `Ok(None)` when there is none.
    /// Only configuration problems fail here; an unreachable server fails the first
    /// request.
    pub fn connect(global: &GlobalArgs) -> Result<Option<Self>, CtlError> {
        let Some(origin) = origin(global) else {
            return Ok(None);
        };
        if let Origin::Flag(path) = &origin
            && !path.exists()
        {
            return Err(CtlError::NotFound(format!(
                "the kubeconfig {} (--kubeconfig) does not exist; check the path",
                path.display()
            )));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                CtlError::Unreachable(format!("cannot start the I/O runtime: {}", one_line(e)))
            })?;
        let timeout = Duration::from_secs(global.request_timeout.max(1));
        let options = KubeConfigOptions {
            context: global.context.clone(),
            ..KubeConfigOptions::default()
        };
        let bad = |e: String| {
            CtlError::Unreachable(format!(
                "cannot use {}: {e}; check the file and --context",
                origin.describe()
            ))
        };
        let mut config = runtime.block_on(async {
            match &origin {
                Origin::Flag(path) | Origin::Home(path) => {
                    let kubeconfig = Kubeconfig::read_from(path).map_err(|e| bad(chain(&e)))?;
                    kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                        .await
                        .map_err(|e| bad(chain(&e)))
                }
                Origin::Env(_) => {
                    let kubeconfig = Kubeconfig::from_env()
                        .map_err(|e| bad(one_line(e)))?
                        .ok_or_else(|| bad("KUBECONFIG names no file".to_owned()))?;
                    kube::Config::from_custom_kubeconfig(kubeconfig, &options)
                        .await
                        .map_err(|e| bad(chain(&e)))
                }
                Origin::InCluster => kube::Config::incluster().map_err(|e| bad(one_line(e))),
            }
        })?;
        config.connect_timeout = Some(timeout);
        config.read_timeout = Some(timeout);
        config.write_timeout = Some(timeout);
        let mut describe = origin.describe();
        if let Some(context) = &global.context {
            describe.push_str(&format!(", context {context}"));
        }
        describe.push_str(&format!(", server {}", config.cluster_url));
        let client = {
            let _guard = runtime.enter();
            kube::Client::try_from(config).map_err(|e| bad(one_line(e)))?
        };
        Ok(Some(Self {
            runtime,
            client,
            describe,
        }))
    }

    fn failed(&self, what: &str, e: kube::Error) -> CtlError {
        let hint = match &e {
            kube::Error::Api(status) if status.code == 401 || status.code == 403 => {
                "check the credentials and RBAC of the kubeconfig's user"
            }
            _ => "check that the API server is up and reachable, and --kubeconfig/--context",
        };
        CtlError::Unreachable(format!(
            "{what} through {} failed: {}; {hint}",
            self.describe,
            chain(&e)
        ))
    }

    /// A pod; `None` when the API says it does not exist.
    pub fn pod(&self, namespace: &str, name: &str) -> Result<Option<PodObject>, CtlError> {
        let api: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let pod = self
            .runtime
            .block_on(api.get_opt(name))
            .map_err(|e| self.failed(&format!("GET pod {namespace}/{name}"), e))?;
        Ok(pod.map(|pod| PodObject {
            uid: pod.metadata.uid.unwrap_or_default(),
            annotations: pod.metadata.annotations.unwrap_or_default(),
            node: pod.spec.and_then(|s| s.node_name),
        }))
    }

    /// A NetworkAttachmentDefinition; `None` when it does not exist.
    pub fn nad(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<NetworkAttachmentDefinition>, CtlError> {
        let what = format!("GET network-attachment-definition {namespace}/{name}");
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), namespace, &nad_resource());
        let object = self
            .runtime
            .block_on(api.get_opt(name))
            .map_err(|e| self.failed(&what, e))?;
        object
            .map(|o| {
                to_nad(&o, namespace).map_err(|e| CtlError::Unreachable(format!("{what}: {e}")))
            })
            .transpose()
    }

    /// Every NetworkAttachmentDefinition, of one namespace or of all; objects that do
    /// not parse are returned as `(namespace/name, problem)`.
    pub fn nads(&self, namespace: Option<&str>) -> Result<NadList, CtlError> {
        let api: Api<DynamicObject> = match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, &nad_resource()),
            None => Api::all_with(self.client.clone(), &nad_resource()),
        };
        let list = self
            .runtime
            .block_on(api.list(&ListParams::default()))
            .map_err(|e| self.failed("LIST network-attachment-definitions", e))?;
        let mut nads = Vec::new();
        let mut problems = Vec::new();
        for object in &list.items {
            let ns = object.metadata.namespace.clone().unwrap_or_default();
            match to_nad(object, &ns) {
                Ok(nad) => nads.push(nad),
                Err(e) => problems.push((
                    format!("{ns}/{}", object.metadata.name.clone().unwrap_or_default()),
                    e,
                )),
            }
        }
        nads.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
        Ok((nads, problems))
    }
}

/// A NAD from its API object, through the same manifest parser as files.
fn to_nad(object: &DynamicObject, namespace: &str) -> Result<NetworkAttachmentDefinition, String> {
    let mut metadata = serde_json::to_value(&object.metadata).map_err(one_line)?;
    if metadata.get("namespace").is_none_or(Value::is_null) {
        metadata["namespace"] = Value::from(namespace);
    }
    let document = json!({
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": metadata,
        "spec": object.data.get("spec").cloned().unwrap_or_else(|| json!({})),
    });
    let mut nads = parse_manifests(&document.to_string()).map_err(one_line)?;
    nads.pop()
        .ok_or_else(|| "the object is not a NetworkAttachmentDefinition".to_owned())
}
