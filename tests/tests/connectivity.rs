//! Traffic really flows over the additional networks: two pods attached to the same
//! macvlan network (on a bridge in the node namespace) and the same bridge-plugin
//! network ping each other over net1 and net2, and an address nobody holds does not
//! answer.

// Test code: a panic (`expect`, `unwrap`, `panic!`) in a helper is a test failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use multus_integration_tests::binaries::Binaries;
use multus_integration_tests::netns::Netns;
use multus_integration_tests::{BRIDGE_NAD, Harness, MACVLAN_NAD};

fn ping(from: &Netns, address: &str) -> bool {
    from.exec(&Binaries::get().ping, &["-c1", "-W2", address])
        .code
        == 0
}

fn ipv4_of(netns: &Netns, ifname: &str) -> String {
    let link = netns
        .link(ifname)
        .unwrap_or_else(|| panic!("{ifname} missing in {}", netns.name()));
    link.ips()
        .into_iter()
        .find(|ip| !ip.contains(':'))
        .unwrap_or_else(|| panic!("{ifname} has no IPv4 address: {link:?}"))
}

#[test]
fn two_pods_on_the_same_additional_networks_ping_each_other() {
    let h = Harness::new();
    let nets = h.standard_networks("1.0.0");
    let conf = h
        .multus_config("1.0.0", &nets)
        .networks(&format!("{MACVLAN_NAD}, {BRIDGE_NAD}"))
        .build();
    let a = h.sandbox();
    let b = h.sandbox();
    let result_a = h.runtime.add(&a, &conf).success();
    let result_b = h.runtime.add(&b, &conf).success();
    for pod in [&a, &b] {
        pod.netns.ip(&["link", "set", "lo", "up"]);
    }

    for ifname in ["net1", "net2", "eth0"] {
        let target = ipv4_of(&b.netns, ifname);
        assert!(
            ping(&a.netns, &target),
            "pod A cannot ping pod B's {ifname} {target}"
        );
        let back = ipv4_of(&a.netns, ifname);
        assert!(
            ping(&b.netns, &back),
            "pod B cannot ping pod A's {ifname} {back}"
        );
    }
    let nobody = nets.macnet.host(250);
    assert!(
        !ping(&a.netns, &nobody),
        "{nobody} is not assigned, yet it answered"
    );

    h.runtime.del(&a, &conf, Some(&result_a)).empty_success();
    h.runtime.del(&b, &conf, Some(&result_b)).empty_success();
    h.assert_nothing_leaked(&[&a, &b]);
}
