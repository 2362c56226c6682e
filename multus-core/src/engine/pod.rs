//! The pod behind a request, as the cluster knows it (upstream's `GetPod`), and what
//! the engine tells the cluster about it when a network cannot be found.

use std::collections::BTreeMap;

use serde_json::json;

use super::{Engine, MultusError};
use crate::cni::CniResult;
use crate::plan::PlanError;
use crate::seams::{PodEvent, PodInfo};

/// Pod annotation set on static pods (and their mirror pods) by the kubelet: the source
/// of the pod's manifest, `api` for pods created through the API server.
pub const CONFIG_SOURCE_ANNOTATION: &str = "kubernetes.io/config.source";

/// What ADD knows about the pod.
#[derive(Debug)]
pub(super) enum PodLookup {
    /// Plan with these annotations (`None`: none are known).
    Annotations(Option<BTreeMap<String, String>>),
    /// The API says the pod does not exist (any more): nothing is to be attached.
    Gone,
}

/// Whether the pod is a static pod (or its mirror): its API object carries another UID
/// than the runtime's, so the UID check does not apply.
pub fn is_static_pod(pod: &PodInfo) -> bool {
    pod.annotations
        .get(CONFIG_SOURCE_ANNOTATION)
        .is_some_and(|source| source != "api")
}

impl Engine<'_> {
    /// ADD's view of the pod: with a real pod source, the runtime's annotations when the
    /// configuration trusts them (no API read), else the pod from the API, whose UID
    /// must match `K8S_POD_UID` unless it is a static pod. Without a pod source, the
    /// runtime's annotations.
    pub(super) async fn lookup_pod_for_add(&self) -> Result<PodLookup, MultusError> {
        let api = self.seams.api;
        let pod = &self.request.pod;
        if !api.has_pods() {
            return Ok(PodLookup::Annotations(
                self.pod_annotations_without_api().await?,
            ));
        }
        if self.conf.trust_runtime_annotations
            && let Some(annotations) = self.conf.runtime_pod_annotations()
        {
            return Ok(PodLookup::Annotations(Some(annotations)));
        }
        if !pod.is_known() {
            return Ok(PodLookup::Annotations(self.conf.runtime_pod_annotations()));
        }
        let found = api.pod(pod).await.map_err(|source| MultusError::Api {
            pod: pod.clone(),
            source,
        })?;
        let Some(found) = found else {
            tracing::info!(%pod, "pod not found in the API: returning an empty result without attaching anything");
            return Ok(PodLookup::Gone);
        };
        if !pod.uid.is_empty() && found.uid != pod.uid && !is_static_pod(&found) {
            return Err(MultusError::PodUidMismatch {
                pod: pod.clone(),
                expected: pod.uid.clone(),
                actual: found.uid,
            });
        }
        Ok(PodLookup::Annotations(Some(found.annotations)))
    }

    /// The annotations without a real pod source: whatever the source says about the
    /// pod (nothing, for file-based NADs), else the runtime's.
    async fn pod_annotations_without_api(
        &self,
    ) -> Result<Option<BTreeMap<String, String>>, MultusError> {
        if self.request.pod.is_known() {
            let pod = self
                .seams
                .api
                .pod(&self.request.pod)
                .await
                .map_err(|source| MultusError::Api {
                    pod: self.request.pod.clone(),
                    source,
                })?;
            if let Some(pod) = pod {
                return Ok(Some(pod.annotations));
            }
        }
        Ok(self.conf.runtime_pod_annotations())
    }

    /// DEL without a record: the annotations if they can be had. A pod that is gone,
    /// replaced (UID mismatch) or unreachable is not an error: DEL then detaches what the
    /// configuration alone determines.
    pub(super) async fn pod_annotations_for_del(&self) -> Option<BTreeMap<String, String>> {
        match self.lookup_pod_for_add().await {
            Ok(PodLookup::Annotations(annotations)) => annotations,
            Ok(PodLookup::Gone) => None,
            Err(e) => {
                tracing::warn!(error = %e, "pod annotations unavailable for DEL");
                None
            }
        }
    }

    /// Upstream's result for a pod that no longer exists: multus' cniVersion, one
    /// interface `CNI_IFNAME` in `CNI_NETNS`, address `0.0.0.0/0` via `0.0.0.0`.
    pub(super) fn pod_gone_result(&self) -> Vec<u8> {
        let version = self.conf.cni_version;
        let document = json!({
            "cniVersion": "1.0.0",
            "interfaces": [{"name": self.request.ifname, "sandbox": self.request.netns}],
            "ips": [{"address": "0.0.0.0/0", "gateway": "0.0.0.0"}],
        });
        let result = CniResult::from_value(&document, version).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot build the empty result");
            CniResult {
                cni_version: version,
                ..CniResult::default()
            }
        });
        result.to_json(version).into_bytes()
    }

    /// Upstream's `NoNetworkFound` warning event when a NAD the pod asked for cannot be
    /// read (best effort; only with a real pod source and a named pod).
    pub(super) async fn report_missing_network(&self, error: &PlanError) {
        let api = self.seams.api;
        let pod = &self.request.pod;
        if !api.has_pods() || !pod.is_known() {
            return;
        }
        let (network, cause) = match error {
            PlanError::NetworkNotFound { network, detail } => (network, detail.clone()),
            PlanError::Api { network, source } => (network, source.to_string()),
            _ => return,
        };
        let Some((namespace, name)) = network.split_once('/') else {
            return;
        };
        let event = PodEvent {
            kind: "Warning".into(),
            reason: "NoNetworkFound".into(),
            message: format!(
                "cannot find a network-attachment-definition ({name}) in namespace ({namespace}): {cause}"
            ),
        };
        if let Err(e) = api.emit_event(pod, &event).await {
            tracing::debug!(%pod, error = %e, "could not record event");
        }
    }
}
