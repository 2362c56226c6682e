//! Fault 1: the Kubernetes API is unreachable at DEL.
//!
//! The pod is added with the file-based configuration (NAD manifests, no API server);
//! the DEL then comes with a configuration whose `kubeconfig` names an API server at
//! `https://127.0.0.1:<closed port>` (written here), as after a switch to the API or
//! with the API server down. DEL works from the sandbox record alone: it succeeds and
//! releases everything without a single API answer.
//!
//! Without a record as well, the API cannot say what the pod asked for: DEL still
//! deletes the cluster network (a static delegate), says in a WARN that the pod's other
//! networks cannot be reached, and succeeds; the rest is released once a DEL can resolve
//! the networks again.

// Test code: a panic (`expect`, `unwrap`, `panic!`) in a helper is a test failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::time::{Duration, Instant};

use multus_integration_tests::fixtures::MultusConfig;
use multus_integration_tests::runtime::Sandbox;
use multus_integration_tests::{BRIDGE_NAD, Harness, MACVLAN_NAD};
use serde_json::{Value, json};

const VERSION: &str = "1.0.0";

/// A pod added through the file-based configuration to the cluster network and both
/// standard NADs; returns the pod, the ADD configuration, its result, and the same
/// configuration pointing at the unreachable API server.
fn attached_pod(h: &Harness) -> (Sandbox, Value, Value, Value) {
    let nets = h.standard_networks(VERSION);
    let base: MultusConfig = h
        .multus_config(VERSION, &nets)
        .networks(&format!("{MACVLAN_NAD}, {BRIDGE_NAD}"))
        .set("logLevel", json!("error"));
    let file_conf = base.clone().build();
    let api_conf = base
        .set("kubeconfig", json!(h.dirs.write_unreachable_kubeconfig()))
        .set("apiRetries", json!(0))
        .set("apiTimeoutSeconds", json!(2))
        .build();
    let pod = h.sandbox();
    let result = h.runtime.add(&pod, &file_conf).success();
    assert_eq!(pod.netns.link_names(), ["eth0", "lo", "net1", "net2"]);
    assert_eq!(h.dirs.leases().len(), 3, "{:?}", h.dirs.leases());
    (pod, file_conf, result, api_conf)
}

#[test]
fn del_with_the_api_unreachable_works_from_the_record() {
    let h = Harness::new();
    let (pod, _file_conf, result, api_conf) = attached_pod(&h);

    let started = Instant::now();
    h.runtime
        .del(&pod, &api_conf, Some(&result))
        .empty_success();
    h.assert_nothing_leaked(&[&pod]);
    // Never waited on the API (one attempt would take up to apiTimeoutSeconds).
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "DEL took {:?}",
        started.elapsed()
    );

    // containerd's second DEL, with the API still down and no record left.
    let again = h.runtime.call("DEL", &pod, &api_conf).set("CNI_NETNS", "");
    h.runtime.run(again).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn del_with_the_api_unreachable_and_no_record_still_deletes_the_cluster_network() {
    let h = Harness::new();
    let (pod, file_conf, _result, api_conf) = attached_pod(&h);
    std::fs::remove_file(h.dirs.record_path(&pod.container_id)).expect("remove the record");

    let out = h.runtime.del(&pod, &api_conf, None);
    out.empty_success();
    // The cluster network is a static delegate: deleted, its lease released.
    assert_eq!(pod.netns.link_names(), ["lo", "net1", "net2"]);
    assert!(h.dirs.leases_of(&pod.container_id, "eth0").is_empty());
    assert!(
        out.stderr.contains("pod annotations unavailable for DEL")
            && out.stderr.contains("cannot be reached and are not deleted"),
        "the WARNs say why the other networks are left:\n{}",
        out.stderr
    );
    // The NADs live behind the API: without the record and the API, net1 and net2 (and
    // their leases) cannot be found. A DEL that can resolve them again finishes the job.
    assert_eq!(h.dirs.leases().len(), 2, "{:?}", h.dirs.leases());
    h.runtime.del(&pod, &file_conf, None).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}
