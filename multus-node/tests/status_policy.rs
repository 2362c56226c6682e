//! The ValidatingAdmissionPolicy of `deployments/multus-node-scoped-status-policy.yml`,
//! its CEL evaluated (cel-python, `tests/policy/vap.py`) against allowed and denied
//! `pods/status` updates: a node's identity (`system:multus:<node>`, or the service
//! account's token bound to the node) may change the network-status annotation of the
//! pods on its node and nothing else. Needs the venv of `scripts/install-runtimes.sh`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Command;

use multus_integration_tests::command::output_with_stdin;
use multus_integration_tests::manifests::{Manifest, STATUS_POLICY, repo};
use serde_json::{Value, json};

const STATUS: &str = "k8s.v1.cni.cncf.io/network-status";

fn pod(node: Option<&str>, annotations: Value, labels: Value, phase: &str) -> Value {
    let mut spec = json!({"containers": [{"name": "c", "image": "i"}]});
    if let Some(node) = node {
        spec["nodeName"] = json!(node);
    }
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web", "namespace": "default", "annotations": annotations, "labels": labels},
        "spec": spec,
        "status": {"phase": phase}
    })
}

fn per_node(node: &str) -> Value {
    json!({"userInfo": {"username": format!("system:multus:{node}"), "groups": ["system:multus", "system:authenticated"]}})
}

fn service_account(node: Option<&str>) -> Value {
    let mut user = json!({"username": "system:serviceaccount:kube-system:multus",
        "groups": ["system:serviceaccounts", "system:authenticated"]});
    if let Some(node) = node {
        user["extra"] = json!({"authentication.kubernetes.io/node-name": [node]});
    }
    json!({"userInfo": user})
}

/// The case's outcome: `None` when the policy does not apply, else the denials.
type Outcome = Option<Vec<String>>;

fn evaluate(cases: &[(Value, Value, Value)]) -> Vec<Outcome> {
    let manifest = Manifest::load(STATUS_POLICY);
    let spec = serde_json::to_value(manifest.policy().spec.as_ref().unwrap()).unwrap();
    let input = json!({
        "spec": spec,
        "cases": cases.iter().map(|(request, old, new)| json!({
            "request": request, "oldObject": old, "object": new
        })).collect::<Vec<_>>()
    });
    let python = multus_integration_tests::cri::python();
    let output = output_with_stdin(
        Command::new(python).arg(repo().join("tests/policy/vap.py")),
        input.to_string().as_bytes(),
    );
    assert!(
        output.status.success(),
        "vap.py failed (is cel-python installed? run scripts/install-runtimes.sh):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    results
        .into_iter()
        .map(|r| {
            r["applies"].as_bool().unwrap().then(|| {
                r["denied"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|m| m.as_str().unwrap().to_owned())
                    .collect()
            })
        })
        .collect()
}

#[test]
fn a_node_may_change_only_the_network_status_of_its_own_pods() {
    let old = |node: Option<&str>| {
        pod(
            node,
            json!({"keep": "1", STATUS: "[]"}),
            json!({"app": "web"}),
            "Running",
        )
    };
    let new_status = |node: Option<&str>| {
        pod(
            node,
            json!({"keep": "1", STATUS: "[{\"name\":\"x\"}]"}),
            json!({"app": "web"}),
            "Running",
        )
    };
    let on_a = Some("node-a");
    let mut other_annotation = new_status(on_a);
    other_annotation["metadata"]["annotations"]["keep"] = json!("2");
    let mut removed_annotation = new_status(on_a);
    removed_annotation["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("keep");
    let mut added_annotation = new_status(on_a);
    added_annotation["metadata"]["annotations"]["k8s.v1.cni.cncf.io/networks"] = json!("evil");
    let mut label = new_status(on_a);
    label["metadata"]["labels"]["role"] = json!("admin");
    let mut phase = new_status(on_a);
    phase["status"]["phase"] = json!("Failed");

    let cases = [
        // Allowed: each identity, its own node's pod, only network-status.
        (per_node("node-a"), old(on_a), new_status(on_a)),
        (service_account(on_a), old(on_a), new_status(on_a)),
        // Another node's pod.
        (
            per_node("node-a"),
            old(Some("node-b")),
            new_status(Some("node-b")),
        ),
        (
            per_node("node-a"),
            old(Some("node-ab")),
            new_status(Some("node-ab")),
        ),
        (
            service_account(on_a),
            old(Some("node-b")),
            new_status(Some("node-b")),
        ),
        // A token without the node claim, and an unscheduled pod.
        (service_account(None), old(on_a), new_status(on_a)),
        (per_node("node-a"), old(None), new_status(None)),
        // More than network-status.
        (per_node("node-a"), old(on_a), other_annotation),
        (per_node("node-a"), old(on_a), removed_annotation),
        (per_node("node-a"), old(on_a), added_annotation),
        (per_node("node-a"), old(on_a), label),
        (per_node("node-a"), old(on_a), phase),
        // Not multus: the policy does not apply.
        (
            json!({"userInfo": {"username": "system:node:node-b"}}),
            old(on_a),
            new_status(on_a),
        ),
    ];
    let outcomes = evaluate(&cases);
    let allowed = |o: &Outcome| matches!(o, Some(denied) if denied.is_empty());
    assert!(allowed(&outcomes[0]), "{:?}", outcomes[0]);
    assert!(allowed(&outcomes[1]), "{:?}", outcomes[1]);
    let denied_with = |o: &Outcome, part: &str| matches!(o, Some(denied) if denied.iter().any(|m| m.contains(part)));
    for (i, outcome) in outcomes.iter().enumerate().take(7).skip(2) {
        assert!(
            denied_with(outcome, "only write the status of pods on its own node"),
            "case {i}: {outcome:?}"
        );
    }
    assert!(
        denied_with(&outcomes[2], "system:multus:node-a, the pod runs on node-b"),
        "{:?}",
        outcomes[2]
    );
    for (i, outcome) in outcomes.iter().enumerate().take(10).skip(7) {
        assert!(
            denied_with(outcome, "no pod annotation but"),
            "case {i}: {outcome:?}"
        );
    }
    assert!(denied_with(&outcomes[10], "labels"), "{:?}", outcomes[10]);
    assert!(
        denied_with(&outcomes[11], "pod status itself"),
        "{:?}",
        outcomes[11]
    );
    assert_eq!(outcomes[12], None);
}
