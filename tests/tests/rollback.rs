//! A real delegate failing part-way through ADD: multus reports the delegate's own
//! error for the pod and the failing network, deletes what it attached in reverse, and
//! nothing is left: no interface, no host-local lease, no state file.
//!
//! The failing delegate is the real ipvlan plugin, which this kernel refuses with code
//! 999, placed first, in the middle and last among the additional networks; and a
//! network whose plugin binary does not exist.

// Test code: a panic (`expect`, `unwrap`, `panic!`) in a helper is a test failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use multus_integration_tests::fixtures::{
    Subnet, bridge_conf, host_local, ipvlan_conf, macvlan_conf,
};
use multus_integration_tests::runtime::Sandbox;
use multus_integration_tests::{CLUSTER_NETWORK, Harness, NODE_BRIDGE, StandardNetworks};
use serde_json::json;

const VERSION: &str = "1.0.0";

/// A node with the cluster network and the NADs `good1` (macvlan), `good2` (bridge) and
/// `bad` (ipvlan).
fn setup() -> (Harness, Sandbox, StandardNetworks) {
    let h = Harness::new();
    let nets = h.standard_networks(VERSION);
    let dirs = &h.dirs;
    dirs.write_nad_json(
        "good1",
        &macvlan_conf(VERSION, "good1", NODE_BRIDGE, Subnet::unique(), dirs),
    );
    dirs.write_nad_json(
        "good2",
        &bridge_conf(VERSION, "good2", "mrs-br2", Subnet::unique(), false, dirs),
    );
    dirs.write_nad_json(
        "bad",
        &ipvlan_conf(VERSION, "bad", NODE_BRIDGE, Subnet::unique(), dirs),
    );
    let pod = h.sandbox();
    (h, pod, nets)
}

/// ADD fails with the ipvlan error; `rolled_back` and `untouched` are `network (ifname)`
/// labels expected in, and absent from, the details.
fn assert_rolled_back(networks: &str, rolled_back: &[&str], untouched: &[&str]) {
    let (h, pod, nets) = setup();
    let conf = h.multus_config(VERSION, &nets).networks(networks).build();

    let error = h.runtime.add(&pod, &conf).error_with_code(999);

    let pod_name = format!("{}/{}", pod.namespace, pod.name);
    error
        .assert_msg_contains(&[
            &pod_name,
            "default/bad",
            "error adding container to network",
        ])
        .assert_details_contain(&["could not be rolled back: none"])
        .assert_details_contain(rolled_back);
    for label in untouched {
        assert!(
            !error.details.contains(label) && !error.msg.contains(label),
            "{label} was never attempted, yet it is reported:\n{}",
            error.output
        );
    }
    assert_eq!(error.cni_version, VERSION);
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn failure_at_the_first_additional_network_rolls_back() {
    assert_rolled_back(
        "bad, good1, good2",
        &[&format!("{CLUSTER_NETWORK} (eth0)"), "default/bad (net1)"],
        &["default/good1", "default/good2"],
    );
}

#[test]
fn failure_at_a_middle_additional_network_rolls_back() {
    assert_rolled_back(
        "good1, bad, good2",
        &[
            &format!("{CLUSTER_NETWORK} (eth0)"),
            "default/good1 (net1)",
            "default/bad (net2)",
        ],
        &["default/good2"],
    );
}

#[test]
fn failure_at_the_last_additional_network_rolls_back() {
    assert_rolled_back(
        "good1, good2, bad",
        &[
            &format!("{CLUSTER_NETWORK} (eth0)"),
            "default/good1 (net1)",
            "default/good2 (net2)",
            "default/bad (net3)",
        ],
        &[],
    );
}

#[test]
fn missing_plugin_binary_rolls_back() {
    let (h, pod, nets) = setup();
    let ghost = json!({
        "cniVersion": VERSION,
        "name": "ghost",
        "type": "doesnotexist",
        "ipam": host_local(Subnet::unique(), &h.dirs),
    });
    h.dirs.write_nad_json("ghost", &ghost);
    let conf = h
        .multus_config(VERSION, &nets)
        .networks("good1, ghost")
        .build();

    let error = h.runtime.add(&pod, &conf).error();

    error
        .assert_msg_contains(&[&pod.pod_ref(), "default/ghost", "doesnotexist"])
        .assert_details_contain(&[
            &format!("{CLUSTER_NETWORK} (eth0)"),
            "default/good1 (net1)",
            "could not be rolled back: none",
        ]);
    h.assert_nothing_leaked(&[&pod]);
}
