//! The real `multus` binary against the Kubernetes API stand-in: a DEL that knows
//! nothing about a sandbox (no multus-rs record, no upstream cache, the pod already gone
//! from the API) deletes what the configuration determines and says so, with a warning
//! event on the pod and a note for `multus-ctl state list`. Needs root and
//! `containernetworking-plugins`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use k8s_standin::PODS;
use multus_integration_tests::kube::{KubeNode, NETWORKS};
use serde_json::Value;

#[test]
fn del_of_a_gone_pod_without_any_record_emits_an_event_and_leaves_a_note() {
    let mut node = KubeNode::new();
    let (pod, index) = node.api_pod("default", "web", &[(NETWORKS, "blue")]);
    node.multus("ADD", &pod, index).ok();
    let cni_dir = node.dir.path().join("multus");
    std::fs::remove_file(
        cni_dir
            .join("sandboxes")
            .join(format!("{}.json", pod.container_id)),
    )
    .unwrap();
    node.api.delete(&PODS, "default", "web").unwrap();

    let mut conf = node.conf();
    conf["logLevel"] = Value::from("error");
    let out = node.multus_with("DEL", &pod, index, &conf);
    out.ok();
    assert!(
        out.stderr.contains("WARN") && out.stderr.contains(&pod.container_id),
        "{}",
        out.stderr
    );
    let events = node.api.pod_events("default", "web");
    let unknown: Vec<&Value> = events
        .iter()
        .filter(|e| e["reason"] == "UnknownAttachments")
        .collect();
    assert_eq!(unknown.len(), 1, "{events:#?}");
    assert_eq!(unknown[0]["type"], "Warning");
    let message = unknown[0]["message"].as_str().unwrap();
    assert!(
        message.contains(&pod.container_id) && message.contains("cluster (eth0)"),
        "{message}"
    );
    let note = cni_dir
        .join("unknown")
        .join(format!("{}.json", pod.container_id));
    let note: Value = serde_json::from_slice(&std::fs::read(note).unwrap()).unwrap();
    assert_eq!(note["podName"], "web");
    // The annotation network was not reachable: its interface is still in the pod.
    assert_eq!(node.pods[index].interface_names(), ["net1"]);
}
