//! The API objects multus reads and writes: pods, NetworkAttachmentDefinitions, the
//! network-status patch and events.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, Pod};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use kube::Resource;
use kube::core::Request as KubeRequest;
use multus_core::nad::status::annotation_value;
use multus_core::nad::{NETWORK_STATUS_ANNOTATION, NetworkAttachmentDefinition, NetworkStatus};
use multus_core::request::PodRef;
use multus_core::seams::{PodEvent, PodInfo};
use serde::Deserialize;
use serde_json::{Value, json};

/// Group, version and plural of NetworkAttachmentDefinitions.
pub const NAD_PATH: &str = "apis/k8s.cni.cncf.io/v1";
const NAD_RESOURCE: &str = "network-attachment-definitions";

/// Percent-encode one URL path segment (names come from CNI_ARGS and annotations, so
/// a `/` or `..` in one must never reach another path).
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    // `.` and `..` are path segments of their own meaning, whatever their encoding.
    match out.as_str() {
        "." => "%2E".to_owned(),
        ".." => "%2E%2E".to_owned(),
        _ => out,
    }
}

/// kube's request builder for the pods of `namespace`.
pub fn pods(namespace: &str) -> KubeRequest {
    KubeRequest::new(Pod::url_path(&(), Some(&segment(namespace))))
}

/// kube's request builder for the NetworkAttachmentDefinitions of `namespace`.
pub fn nads(namespace: &str) -> KubeRequest {
    KubeRequest::new(format!(
        "/{NAD_PATH}/namespaces/{}/{NAD_RESOURCE}",
        segment(namespace)
    ))
}

/// kube's request builder for the events of `namespace`.
pub fn events(namespace: &str) -> KubeRequest {
    KubeRequest::new(Event::url_path(&(), Some(&segment(namespace))))
}

/// What multus needs of a pod.
pub fn pod_info(body: &[u8]) -> Result<PodInfo, String> {
    let pod: Pod =
        serde_json::from_slice(body).map_err(|e| format!("the pod does not parse: {e}"))?;
    Ok(PodInfo {
        uid: pod.metadata.uid.unwrap_or_default(),
        annotations: pod.metadata.annotations.unwrap_or_default(),
    })
}

#[derive(Deserialize)]
struct NadObject {
    metadata: ObjectMeta,
    #[serde(default)]
    spec: NadSpec,
}

#[derive(Deserialize, Default)]
struct NadSpec {
    #[serde(default)]
    config: String,
}

/// A NetworkAttachmentDefinition from its API object.
pub fn nad(
    body: &[u8],
    namespace: &str,
    name: &str,
) -> Result<NetworkAttachmentDefinition, String> {
    let object: NadObject = serde_json::from_slice(body).map_err(|e| {
        format!("network-attachment-definition {namespace}/{name} does not parse: {e}")
    })?;
    let annotations: BTreeMap<String, String> = object.metadata.annotations.unwrap_or_default();
    Ok(NetworkAttachmentDefinition {
        namespace: object
            .metadata
            .namespace
            .unwrap_or_else(|| namespace.to_owned()),
        name: object.metadata.name.unwrap_or_else(|| name.to_owned()),
        config: object.spec.config,
        resource_name: annotations
            .get(multus_core::nad::RESOURCE_NAME_ANNOTATION)
            .filter(|r| !r.is_empty())
            .cloned(),
        annotations,
    })
}

/// The merge patch that sets the network-status annotation; with the pod's UID as a
/// precondition when it is known, so a pod re-created under the same name is never
/// annotated with another sandbox's interfaces.
pub fn network_status_patch(status: &[NetworkStatus], uid: Option<&str>) -> Value {
    let mut metadata =
        json!({"annotations": {NETWORK_STATUS_ANNOTATION: annotation_value(status)}});
    if let (Some(uid), Some(object)) = (uid.filter(|u| !u.is_empty()), metadata.as_object_mut()) {
        object.insert("uid".into(), uid.into());
    }
    json!({"metadata": metadata})
}

/// A core/v1 Event on the pod, as upstream's recorder (component `multus`) makes it.
pub fn event(pod: &PodRef, uid: Option<&str>, event: &PodEvent) -> Event {
    let now = k8s_openapi::jiff::Timestamp::now();
    let name = format!("{}.{:x}", pod.name, now.as_nanosecond());
    Event {
        metadata: ObjectMeta {
            name: Some(name),
            namespace: Some(pod.namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Pod".into()),
            name: Some(pod.name.clone()),
            namespace: Some(pod.namespace.clone()),
            uid: uid.filter(|u| !u.is_empty()).map(str::to_owned),
            ..ObjectReference::default()
        },
        reason: Some(event.reason.clone()),
        message: Some(event.message.clone()),
        type_: Some(event.kind.clone()),
        source: Some(EventSource {
            component: Some("multus".into()),
            host: None,
        }),
        reporting_component: Some("multus".into()),
        first_timestamp: Some(Time(now)),
        last_timestamp: Some(Time(now)),
        count: Some(1),
        ..Event::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(request: Result<http::Request<Vec<u8>>, kube::core::request::Error>) -> String {
        request.unwrap().uri().to_string()
    }

    #[test]
    fn requests_escape_what_is_not_a_name() {
        let get = kube::core::params::GetParams::default();
        assert_eq!(
            uri(pods("default").get(&segment("web-0"), &get)),
            "/api/v1/namespaces/default/pods/web-0"
        );
        assert_eq!(
            uri(pods("a/b").get(&segment("x?y"), &get)),
            "/api/v1/namespaces/a%2Fb/pods/x%3Fy"
        );
        assert_eq!(
            uri(pods("..").get(&segment("."), &get)),
            "/api/v1/namespaces/%2E%2E/pods/%2E"
        );
        assert_eq!(
            uri(nads("ns").get(&segment("blue"), &get)),
            "/apis/k8s.cni.cncf.io/v1/namespaces/ns/network-attachment-definitions/blue"
        );
        let patch = kube::core::params::Patch::Merge(serde_json::json!({}));
        let status = pods("ns").patch_subresource(
            "status",
            "web-0",
            &kube::core::params::PatchParams::default(),
            &patch,
        );
        assert_eq!(uri(status), "/api/v1/namespaces/ns/pods/web-0/status?");
        assert_eq!(
            uri(events("ns").create(&kube::core::params::PostParams::default(), Vec::new())),
            "/api/v1/namespaces/ns/events?"
        );
    }

    #[test]
    fn nads_keep_config_annotations_and_resource_name() {
        let body = br#"{"apiVersion":"k8s.cni.cncf.io/v1","kind":"NetworkAttachmentDefinition",
            "metadata":{"name":"sriov","namespace":"ns","uid":"u",
              "annotations":{"k8s.v1.cni.cncf.io/resourceName":"intel.com/sriov"}},
            "spec":{"config":"{\"type\":\"sriov\"}"}}"#;
        let nad = nad(body, "ns", "sriov").unwrap();
        assert_eq!(nad.config, r#"{"type":"sriov"}"#);
        assert_eq!(nad.resource_name.as_deref(), Some("intel.com/sriov"));
        let empty = super::nad(br#"{"metadata":{"name":"e"}}"#, "ns", "e").unwrap();
        assert_eq!(empty.config, "");
        assert_eq!(empty.namespace, "ns");
    }

    #[test]
    fn the_status_patch_sets_only_the_annotation_and_the_uid_precondition() {
        let status = vec![NetworkStatus {
            name: "cbr0".into(),
            interface: "eth0".into(),
            ..NetworkStatus::default()
        }];
        let patch = network_status_patch(&status, Some("u1"));
        assert_eq!(patch["metadata"]["uid"], "u1");
        let value = patch["metadata"]["annotations"][NETWORK_STATUS_ANNOTATION]
            .as_str()
            .unwrap();
        let parsed: Vec<NetworkStatus> = serde_json::from_str(value).unwrap();
        assert_eq!(parsed, status);
        assert!(
            network_status_patch(&status, None)["metadata"]
                .get("uid")
                .is_none()
        );
    }

    #[test]
    fn events_name_the_pod_and_multus() {
        let pod = PodRef {
            namespace: "ns".into(),
            name: "web".into(),
            ..PodRef::default()
        };
        let e = event(
            &pod,
            Some("u1"),
            &PodEvent {
                kind: "Warning".into(),
                reason: "NoNetworkFound".into(),
                message: "m".into(),
            },
        );
        let value = serde_json::to_value(&e).unwrap();
        assert_eq!(value["involvedObject"]["uid"], "u1");
        assert_eq!(value["involvedObject"]["kind"], "Pod");
        assert_eq!(value["type"], "Warning");
        assert_eq!(value["source"]["component"], "multus");
        assert!(
            value["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("web.")
        );
    }
}
