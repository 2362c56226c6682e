//! CHECK with the real reference plugins: it passes right after ADD, and once an
//! additional interface is removed from the pod it fails naming that interface and its
//! network.

// Test code: a panic (`expect`, `unwrap`, `panic!`) in a helper is a test failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use multus_integration_tests::{Harness, MACVLAN_NAD};

fn check_detects_a_missing_interface(version: &str) {
    let h = Harness::new();
    let nets = h.standard_networks(version);
    let conf = h
        .multus_config(version, &nets)
        .networks(MACVLAN_NAD)
        .build();
    let pod = h.sandbox();
    let result = h.runtime.add(&pod, &conf).success();

    h.runtime.check(&pod, &conf, &result).empty_success();

    pod.netns.ip(&["link", "del", "net1"]);
    let error = h.runtime.check(&pod, &conf, &result).error_with_code(103);
    let network = format!("default/{MACVLAN_NAD}");
    error.assert_msg_contains(&["net1", &network, &pod.pod_ref()]);
    assert_eq!(error.cni_version, version);

    h.runtime.del(&pod, &conf, Some(&result)).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn check_at_0_4_0() {
    check_detects_a_missing_interface("0.4.0");
}

#[test]
fn check_at_1_0_0() {
    check_detects_a_missing_interface("1.0.0");
}
