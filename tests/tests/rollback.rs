//! A real delegate failing part-way through ADD: multus reports the delegate's own
//! error for the pod and the failing network, deletes what it attached in reverse, and
//! nothing is left: no interface, no host-local lease, no state file.
//!
//! The failing delegate is the real ipvlan plugin, which this kernel refuses with code
//! 999, as the cluster network and placed first, in the middle and last among the
//! additional networks (fault 4); a network whose plugin binary does not exist; and
//! plugin 2 of 3 of a config list (a `cni-recorder` failing between a real bridge and
//! tuning).

// Test code: a panic (`expect`, `unwrap`, `panic!`) in a helper is a test failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use multus_integration_tests::fixtures::{
    MultusConfig, Subnet, bridge_conf, host_local, ipvlan_conf, macvlan_conf,
};
use multus_integration_tests::recording::{read_records, summaries};
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

/// k = first of all: the cluster network itself fails (real ipvlan as the cluster
/// network); nothing else is attempted and nothing is left.
#[test]
fn failure_of_the_cluster_network_rolls_back() {
    let (h, pod, _nets) = setup();
    let cluster = ipvlan_conf(
        VERSION,
        CLUSTER_NETWORK,
        NODE_BRIDGE,
        Subnet::unique(),
        &h.dirs,
    );
    let conf = MultusConfig::new(VERSION, &h.dirs, cluster)
        .networks("good1, good2")
        .build();

    let error = h.runtime.add(&pod, &conf).error_with_code(999);
    error
        .assert_msg_contains(&[&pod.pod_ref(), CLUSTER_NETWORK, "as eth0"])
        .assert_details_contain(&[
            &format!("rolled back: {CLUSTER_NETWORK} (eth0);"),
            "could not be rolled back: none",
        ]);
    assert!(!error.details.contains("good1") && !error.details.contains("good2"));
    h.assert_nothing_leaked(&[&pod]);
}

/// A config list whose second plugin of three fails: the whole list (the bridge that
/// did attach included) and everything before it are rolled back.
#[test]
fn failure_of_plugin_2_of_3_in_a_conflist_rolls_back() {
    let (h, pod, nets) = setup();
    h.dirs.install_recorder("recorder");
    let chain = json!({
        "cniVersion": VERSION,
        "name": "chain",
        "plugins": [
            {"type": "bridge", "bridge": "mrs-br4", "ipam": host_local(Subnet::unique(), &h.dirs)},
            {"type": "recorder", "tag": "chain-2", "recordFile": h.dirs.record_file(), "failOn": "ADD"},
            {"type": "tuning", "sysctl": {"net.ipv4.conf.net2.log_martians": "1"}},
        ],
    });
    h.dirs.write_nad_json("chain", &chain);
    let conf = h
        .multus_config(VERSION, &nets)
        .set("binDir", json!(h.dirs.bin_dir()))
        .networks("good1, chain, good2")
        .build();

    let error = h.runtime.add(&pod, &conf).error_with_code(11);
    error
        .assert_msg_contains(&[
            &pod.pod_ref(),
            "default/chain",
            "as net2",
            "recorder asked to fail",
        ])
        .assert_details_contain(&[
            &format!(
                "rolled back: {CLUSTER_NETWORK} (eth0), default/good1 (net1), default/chain (net2);"
            ),
            "could not be rolled back: none",
        ]);
    assert!(!error.details.contains("good2"), "{}", error.output);
    // The failing plugin was called once for ADD and once by the list's rollback.
    let calls = read_records(&h.dirs.record_file());
    assert_eq!(summaries(&calls), ["ADD chain-2", "DEL chain-2"]);
    h.assert_nothing_leaked(&[&pod]);
}
