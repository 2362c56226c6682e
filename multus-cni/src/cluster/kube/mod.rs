//! Pods, NetworkAttachmentDefinitions, network-status and events through the
//! Kubernetes API (kube-rs over rustls).
//!
//! Every request has a time limit and is retried on connection errors, timeouts, 5xx
//! and 429 (`apiTimeoutSeconds`, `apiRetries`); NotFound is an answer, not a failure;
//! 401/403 are refusals. network-status is written with one JSON merge patch of the
//! pod's `status` subresource (no read-modify-write loop); events are created best
//! effort, without retries.

mod client;
mod dra;
mod objects;
mod retry;

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use http::StatusCode;
use kube::core::params::{GetParams, Patch, PatchParams, PostParams};
use multus_core::config::MultusConf;
use multus_core::nad::{NetworkAttachmentDefinition, NetworkStatus};
use multus_core::request::PodRef;
use multus_core::seams::{ApiError, ClusterApi, PodEvent, PodInfo};

pub use client::{ApiSource, connect, kube_config};
pub use dra::{DEVICE_ID_ATTRIBUTE, RESOURCE_NAME_ATTRIBUTE};
pub use retry::RetryPolicy;

/// The cluster API of a Kubernetes API server.
pub struct KubeClusterApi {
    client: Result<kube::Client, String>,
    policy: RetryPolicy,
    /// UIDs of the pods read so far, for the status patch precondition and events.
    uids: Mutex<HashMap<(String, String), String>>,
}

impl std::fmt::Debug for KubeClusterApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeClusterApi")
            .field("connected", &self.client.is_ok())
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl KubeClusterApi {
    /// Connect to `source` with the configuration's timeouts and retries (needs a tokio
    /// runtime). A client that cannot be made is kept as the reason: every request then
    /// fails with it (ADD fails clearly; DEL, which needs no API, still works).
    pub async fn connect(source: &ApiSource, conf: &MultusConf) -> Self {
        let policy = RetryPolicy::new(conf.api_timeout, conf.api_retries);
        let client = client::connect(source, conf.api_timeout).await;
        if let Err(reason) = &client {
            tracing::warn!(%reason, "no Kubernetes API client");
        }
        Self::with_client(client, policy)
    }

    /// Over an existing client.
    pub fn with_client(client: Result<kube::Client, String>, policy: RetryPolicy) -> Self {
        Self {
            client,
            policy,
            uids: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self) -> Result<&kube::Client, ApiError> {
        self.client
            .as_ref()
            .map_err(|reason| ApiError::Unavailable(reason.clone()))
    }

    /// Remember a pod's UID learnt elsewhere (the thick daemon's pod cache), so that the
    /// network-status patch carries it as a precondition as after a pod GET.
    pub fn remember_uid(&self, pod: &PodRef, uid: &str) {
        if uid.is_empty() {
            return;
        }
        if let Ok(mut uids) = self.uids.lock() {
            uids.insert((pod.namespace.clone(), pod.name.clone()), uid.to_owned());
        }
    }

    fn known_uid(&self, pod: &PodRef) -> Option<String> {
        self.uids
            .lock()
            .ok()?
            .get(&(pod.namespace.clone(), pod.name.clone()))
            .cloned()
    }

    async fn get(
        &self,
        collection: kube::core::Request,
        name: &str,
        what: &str,
    ) -> Result<Option<bytes::Bytes>, ApiError> {
        let name = objects::segment(name);
        let answer = retry::execute(self.client()?, self.policy, what, || {
            collection.get(&name, &GetParams::default())
        })
        .await?;
        match answer.status {
            status if status.is_success() => Ok(Some(answer.body)),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(ApiError::Other(format!("{what}: {}", answer.message()))),
        }
    }
}

#[async_trait]
impl ClusterApi for KubeClusterApi {
    fn has_pods(&self) -> bool {
        true
    }

    async fn pod(&self, pod: &PodRef) -> Result<Option<PodInfo>, ApiError> {
        let what = format!("GET pod {}/{}", pod.namespace, pod.name);
        let Some(body) = self
            .get(objects::pods(&pod.namespace), &pod.name, &what)
            .await?
        else {
            return Ok(None);
        };
        let info = objects::pod_info(&body).map_err(|e| ApiError::Other(format!("{what}: {e}")))?;
        if let Ok(mut uids) = self.uids.lock() {
            uids.insert((pod.namespace.clone(), pod.name.clone()), info.uid.clone());
        }
        Ok(Some(info))
    }

    async fn network_attachment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<NetworkAttachmentDefinition>, ApiError> {
        let what = format!("GET network-attachment-definition {namespace}/{name}");
        let Some(body) = self.get(objects::nads(namespace), name, &what).await? else {
            return Ok(None);
        };
        objects::nad(&body, namespace, name)
            .map(Some)
            .map_err(|e| ApiError::Other(format!("{what}: {e}")))
    }

    async fn set_network_status(
        &self,
        pod: &PodRef,
        status: &[NetworkStatus],
    ) -> Result<(), ApiError> {
        if !pod.is_known() {
            return Ok(());
        }
        let what = format!("PATCH pod {}/{} network-status", pod.namespace, pod.name);
        let uid = self.known_uid(pod);
        let patch = Patch::Merge(objects::network_status_patch(status, uid.as_deref()));
        let pods = objects::pods(&pod.namespace);
        let name = objects::segment(&pod.name);
        let answer = retry::execute(self.client()?, self.policy, &what, || {
            pods.patch_subresource("status", &name, &PatchParams::default(), &patch)
        })
        .await?;
        match answer.status {
            status if status.is_success() => Ok(()),
            // Deleted (or deleted and re-created) meanwhile: nothing to record.
            StatusCode::NOT_FOUND | StatusCode::CONFLICT => {
                tracing::info!(%pod, answer = %answer.message(), "pod is gone; network-status not written");
                Ok(())
            }
            _ => Err(ApiError::Other(format!("{what}: {}", answer.message()))),
        }
    }

    async fn emit_event(&self, pod: &PodRef, event: &PodEvent) -> Result<(), ApiError> {
        if !pod.is_known() {
            return Ok(());
        }
        let uid = self.known_uid(pod).or_else(|| Some(pod.uid.clone()));
        let object = objects::event(pod, uid.as_deref(), event);
        let body = serde_json::to_vec(&object).map_err(|e| ApiError::Other(e.to_string()))?;
        let what = format!(
            "POST event {} on pod {}/{}",
            event.reason, pod.namespace, pod.name
        );
        let events = objects::events(&pod.namespace);
        let answer = retry::execute(self.client()?, self.policy.once(), &what, || {
            events.create(&PostParams::default(), body.clone())
        })
        .await?;
        if answer.status.is_success() {
            Ok(())
        } else {
            Err(ApiError::Other(format!("{what}: {}", answer.message())))
        }
    }
}
