//! DEL is idempotent, as runtimes rely on: containerd deletes twice (the second time
//! with an empty CNI_NETNS and no prevResult; fault 8), and a DEL may come after the
//! pod's namespace is gone (fault 9); every one succeeds and host-local leases are still
//! released.

// Test code: a panic (`expect`, `unwrap`, `panic!`) in a helper is a test failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use multus_integration_tests::{BRIDGE_NAD, Harness, MACVLAN_NAD};

#[test]
fn del_twice_the_second_without_netns_succeeds() {
    let h = Harness::new();
    let nets = h.standard_networks("1.0.0");
    let conf = h
        .multus_config("1.0.0", &nets)
        .networks(&format!("{MACVLAN_NAD}, {BRIDGE_NAD}"))
        .build();
    let pod = h.sandbox();
    let result = h.runtime.add(&pod, &conf).success();

    h.runtime.del(&pod, &conf, Some(&result)).empty_success();
    h.assert_nothing_leaked(&[&pod]);

    let second = h.runtime.call("DEL", &pod, &conf).set("CNI_NETNS", "");
    h.runtime.run(second).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn del_after_the_pod_netns_is_gone_releases_leases() {
    let h = Harness::new();
    let nets = h.standard_networks("1.0.0");
    let conf = h
        .multus_config("1.0.0", &nets)
        .networks(&format!("{MACVLAN_NAD}, {BRIDGE_NAD}"))
        .build();
    let pod = h.sandbox();
    let result = h.runtime.add(&pod, &conf).success();
    assert_eq!(h.dirs.leases().len(), 3, "{:?}", h.dirs.leases());

    h.node.delete_pod_netns(&pod.netns);
    assert!(!pod.netns.path().exists());

    h.runtime.del(&pod, &conf, Some(&result)).empty_success();
    h.assert_nothing_leaked(&[]);

    // And once more, as containerd does on sandbox removal.
    let again = h.runtime.call("DEL", &pod, &conf).set("CNI_NETNS", "");
    h.runtime.run(again).empty_success();
    h.assert_nothing_leaked(&[]);
}
