//! CHECK with the real reference plugins (fault 10): it passes right after ADD; once an
//! additional interface is removed from the pod it fails naming that interface and its
//! network, and once an address is removed from it, naming the address.

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

/// An address removed from net1 behind multus' back: CHECK reads the interface's
/// addresses in the pod and fails naming the missing one, the interface and network.
fn check_detects_a_missing_address(version: &str) {
    let h = Harness::new();
    let nets = h.standard_networks(version);
    let conf = h
        .multus_config(version, &nets)
        .networks(MACVLAN_NAD)
        .build();
    let pod = h.sandbox();
    let result = h.runtime.add(&pod, &conf).success();
    h.runtime.check(&pod, &conf, &result).empty_success();

    let net1 = pod.netns.link("net1").expect("net1");
    let address = net1
        .addresses
        .iter()
        .find(|a| nets.macnet.contains(a))
        .expect("net1 has its macvlan address")
        .clone();
    pod.netns.ip(&["addr", "del", &address, "dev", "net1"]);

    let ip = address.split('/').next().expect("ip");
    let error = h.runtime.check(&pod, &conf, &result).error_with_code(103);
    let network = format!("default/{MACVLAN_NAD}");
    error.assert_msg_contains(&[
        &format!("address {ip} is missing from the interface"),
        "net1",
        &network,
        &pod.pod_ref(),
    ]);
    assert_eq!(error.cni_version, version);

    h.runtime.del(&pod, &conf, Some(&result)).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn check_detects_a_missing_address_at_0_4_0() {
    check_detects_a_missing_address("0.4.0");
}

#[test]
fn check_detects_a_missing_address_at_1_0_0() {
    check_detects_a_missing_address("1.0.0");
}
