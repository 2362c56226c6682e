//! Watch-backed caches of this node's pods and of every NetworkAttachmentDefinition
//! (`kube::runtime::reflector`), and the [`ClusterApi`] the engine uses in the daemon:
//! reads from the caches, one live GET on a miss, writes through the live client.
//!
//! - Pods are watched with the field selector `spec.nodeName=$MULTUS_NODE_NAME`, and
//!   only what multus reads is kept (metadata without managed fields; spec and status
//!   dropped). Without a node name no pod cache is kept (caching every pod of the
//!   cluster is what made upstream's daemon use gigabytes, #2020): pods are read live.
//! - A cache miss (a pod or NAD created a moment ago, not seen by the watch yet), a
//!   cache that has not synced yet, or a cached pod whose UID differs from the
//!   runtime's (re-created under the same name) is answered by one live GET.
//! - network-status is one merge patch of the pod's status (the thin path's), with the
//!   cached UID as a precondition.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ApiResource, DynamicObject, GroupVersionKind};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, ResourceExt};
use multus_cni::cluster::kube::{KubeClusterApi, RetryPolicy};
use multus_core::nad::{NetworkAttachmentDefinition, NetworkStatus, RESOURCE_NAME_ANNOTATION};
use multus_core::request::PodRef;
use multus_core::seams::{ApiError, ClusterApi, PodEvent, PodInfo};

use crate::metrics::Metrics;

/// Resource name of NADs (metrics label, watch).
pub const NADS: &str = "network-attachment-definitions";
/// How long start-up waits for each cache's first sync (upstream: 20 s).
pub const SYNC_WAIT: Duration = Duration::from_secs(20);

/// The `ApiResource` of NetworkAttachmentDefinitions.
pub fn nad_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("k8s.cni.cncf.io", "v1", "NetworkAttachmentDefinition"),
        NADS,
    )
}

/// One watched resource: its store and whether it has synced once.
struct Watched<K: kube::Resource + 'static>
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store: Store<K>,
    synced: Arc<AtomicBool>,
}

impl<K> Watched<K>
where
    K: kube::Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    fn get(&self, namespace: &str, name: &str) -> Option<Arc<K>>
    where
        K::DynamicType: Default,
    {
        if !self.synced.load(Ordering::Acquire) {
            return None;
        }
        self.store
            .get(&ObjectRef::new_with(name, K::DynamicType::default()).within(namespace))
    }
}

/// The caches and the live client, shared by every request.
pub struct Caches {
    client: kube::Client,
    policy: RetryPolicy,
    pods: Option<Watched<Pod>>,
    nads: NadCache,
    metrics: Arc<Metrics>,
}

/// NADs are dynamic objects, whose `DynamicType` is the `ApiResource`.
#[derive(Debug)]
struct NadCache {
    store: Store<DynamicObject>,
    synced: Arc<AtomicBool>,
    resource: ApiResource,
}

impl<K> std::fmt::Debug for Watched<K>
where
    K: kube::Resource + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("synced", &self.synced.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (pods, nads) = self.sizes();
        f.debug_struct("Caches")
            .field("pods", &pods)
            .field("nads", &nads)
            .finish_non_exhaustive()
    }
}

fn trim_pod(pod: &mut Pod) {
    pod.metadata.managed_fields = None;
    pod.spec = None;
    pod.status = None;
}

fn trim_nad(nad: &mut DynamicObject) {
    nad.metadata.managed_fields = None;
}

impl Caches {
    /// Start the watches (pods of `node_name` only; none without a node name) and wait,
    /// at most [`SYNC_WAIT`] each, for their first sync. Needs the tokio runtime.
    pub async fn start(
        client: kube::Client,
        policy: RetryPolicy,
        node_name: Option<String>,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        let pods = match node_name.filter(|n| !n.is_empty()) {
            Some(node) => {
                let (store, writer) = reflector::store::<Pod>();
                let config = watcher::Config::default().fields(&format!("spec.nodeName={node}"));
                let stream = watcher(Api::<Pod>::all(client.clone()), config)
                    .default_backoff()
                    .modify(trim_pod)
                    .reflect(writer);
                let synced = spawn_watch("pods", stream, store.clone(), metrics.clone());
                Some(Watched { store, synced })
            }
            None => {
                tracing::warn!(
                    "MULTUS_NODE_NAME is not set: no pod cache (every pod of the cluster would be cached); pods are read with one live GET per request"
                );
                None
            }
        };
        let resource = nad_resource();
        let writer = reflector::store::Writer::<DynamicObject>::new(resource.clone());
        let store = writer.as_reader();
        let stream = watcher(
            Api::<DynamicObject>::all_with(client.clone(), &resource),
            watcher::Config::default(),
        )
        .default_backoff()
        .modify(trim_nad)
        .reflect(writer);
        let synced = spawn_watch(NADS, stream, store.clone(), metrics.clone());
        let caches = Arc::new(Self {
            client,
            policy,
            pods,
            nads: NadCache {
                store,
                synced,
                resource,
            },
            metrics,
        });
        caches.wait_synced(SYNC_WAIT).await;
        caches
    }

    /// Wait until both caches synced once, at most `limit`.
    pub async fn wait_synced(&self, limit: Duration) {
        let deadline = tokio::time::Instant::now() + limit;
        let synced = |flag: &AtomicBool| flag.load(Ordering::Acquire);
        loop {
            let pods = self.pods.as_ref().is_none_or(|p| synced(&p.synced));
            let nads = synced(&self.nads.synced);
            if pods && nads {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    pods_synced = pods,
                    nads_synced = nads,
                    "failed to sync the caches within {limit:?}; reading live until they do"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Objects cached: (pods, NADs).
    pub fn sizes(&self) -> (usize, usize) {
        (
            self.pods.as_ref().map_or(0, |p| p.store.len()),
            self.nads.store.len(),
        )
    }

    /// The API without the caches: every read goes to the server.
    pub fn live(&self) -> KubeClusterApi {
        KubeClusterApi::with_client(Ok(self.client.clone()), self.policy)
    }

    /// The cluster API of one request.
    pub fn api(self: &Arc<Self>) -> CachedClusterApi {
        CachedClusterApi {
            caches: self.clone(),
            live: KubeClusterApi::with_client(Ok(self.client.clone()), self.policy),
        }
    }

    fn cached_nad(&self, namespace: &str, name: &str) -> Option<NetworkAttachmentDefinition> {
        if !self.nads.synced.load(Ordering::Acquire) {
            return None;
        }
        let key = ObjectRef::new_with(name, self.nads.resource.clone()).within(namespace);
        let object = self.nads.store.get(&key)?;
        Some(nad_from(&object, namespace, name))
    }
}

/// Run a reflector stream forever on its own task, keeping the cache-size gauge; the
/// flag turns true once the store has synced.
fn spawn_watch<K, S>(
    kind: &'static str,
    stream: S,
    store: Store<K>,
    metrics: Arc<Metrics>,
) -> Arc<AtomicBool>
where
    K: kube::Resource + Clone + Send + Sync + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone + Send + Sync,
    S: futures_util::Stream<Item = Result<watcher::Event<K>, watcher::Error>> + Send + 'static,
{
    // The flag is set from the stream itself (the store's own readiness future wakes
    // only one waiter).
    let synced = Arc::new(AtomicBool::new(false));
    let flag = synced.clone();
    tokio::spawn(async move {
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(event) => {
                    if matches!(event, watcher::Event::InitDone)
                        && !flag.swap(true, Ordering::AcqRel)
                    {
                        tracing::info!(kind, objects = store.len(), "cache synced");
                    }
                    metrics.cache_size(kind, store.len());
                }
                Err(e) => tracing::warn!(kind, error = %e, "watch failed; retrying with backoff"),
            }
        }
    });
    synced
}

/// A NAD from its dynamic object.
fn nad_from(object: &DynamicObject, namespace: &str, name: &str) -> NetworkAttachmentDefinition {
    let annotations = object.annotations().clone();
    NetworkAttachmentDefinition {
        namespace: object
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| namespace.to_owned()),
        name: object
            .metadata
            .name
            .clone()
            .unwrap_or_else(|| name.to_owned()),
        config: object
            .data
            .pointer("/spec/config")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        resource_name: annotations
            .get(RESOURCE_NAME_ANNOTATION)
            .filter(|r| !r.is_empty())
            .cloned(),
        annotations,
    }
}

/// The engine's cluster API in the daemon: caches first, the live API on a miss.
#[derive(Debug)]
pub struct CachedClusterApi {
    caches: Arc<Caches>,
    live: KubeClusterApi,
}

#[async_trait]
impl ClusterApi for CachedClusterApi {
    fn has_pods(&self) -> bool {
        true
    }

    async fn pod(&self, pod: &PodRef) -> Result<Option<PodInfo>, ApiError> {
        if let Some(cached) = self
            .caches
            .pods
            .as_ref()
            .and_then(|pods| pods.get(&pod.namespace, &pod.name))
        {
            let uid = cached.metadata.uid.clone().unwrap_or_default();
            if pod.uid.is_empty() || uid == pod.uid {
                self.live.remember_uid(pod, &uid);
                return Ok(Some(PodInfo {
                    uid,
                    annotations: cached.metadata.annotations.clone().unwrap_or_default(),
                }));
            }
            tracing::info!(%pod, cached_uid = %uid, "cached pod has another UID; reading it live");
        }
        self.caches.metrics.api_request("get", "pods");
        self.live.pod(pod).await
    }

    async fn network_attachment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<NetworkAttachmentDefinition>, ApiError> {
        if let Some(nad) = self.caches.cached_nad(namespace, name) {
            return Ok(Some(nad));
        }
        self.caches.metrics.api_request("get", NADS);
        self.live.network_attachment(namespace, name).await
    }

    async fn set_network_status(
        &self,
        pod: &PodRef,
        status: &[NetworkStatus],
    ) -> Result<(), ApiError> {
        if pod.is_known() {
            self.caches.metrics.api_request("patch", "pods");
        }
        self.live.set_network_status(pod, status).await
    }

    async fn emit_event(&self, pod: &PodRef, event: &PodEvent) -> Result<(), ApiError> {
        if pod.is_known() {
            self.caches.metrics.api_request("create", "events");
        }
        self.live.emit_event(pod, event).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nads_are_read_from_dynamic_objects() {
        let object: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": "sriov", "namespace": "ns",
                "annotations": {"k8s.v1.cni.cncf.io/resourceName": "intel.com/sriov"}},
            "spec": {"config": "{\"type\":\"sriov\"}"}
        }))
        .unwrap();
        let nad = nad_from(&object, "ns", "sriov");
        assert_eq!(nad.config, r#"{"type":"sriov"}"#);
        assert_eq!(nad.resource_name.as_deref(), Some("intel.com/sriov"));
        assert_eq!(nad.namespace, "ns");
        let mut pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "managedFields": [{"manager": "x"}]},
            "spec": {"containers": [{"name": "c", "image": "i"}]}
        }))
        .unwrap();
        trim_pod(&mut pod);
        assert!(pod.spec.is_none() && pod.metadata.managed_fields.is_none());
    }
}
