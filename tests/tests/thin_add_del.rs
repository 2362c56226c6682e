//! ADD then DEL with the real reference plugins, at each result layout multus returns:
//! the cluster network (bridge + host-local) becomes eth0, a macvlan NAD net1 and a
//! bridge NAD net2; the result, the live interfaces, the recorded network-status and
//! the host-local leases agree; DEL leaves nothing behind.

// Test code: a panic (`expect`, `unwrap`, `panic!`) in a helper is a test failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use multus_integration_tests::{BRIDGE_NAD, CLUSTER_NETWORK, Harness, MACVLAN_NAD};
use serde_json::Value;

fn add_then_del(version: &str) {
    let h = Harness::new();
    let nets = h.standard_networks(version);
    let conf = h
        .multus_config(version, &nets)
        .networks(&format!("{MACVLAN_NAD}, {BRIDGE_NAD}"))
        .build();
    let pod = h.sandbox();

    let result = h.runtime.add(&pod, &conf).success();

    // The cluster network's result, in multus' own version.
    assert_eq!(result["cniVersion"], version, "{result:#}");
    let interfaces = result["interfaces"].as_array().expect("interfaces");
    let sandboxed: Vec<(usize, &Value)> = interfaces
        .iter()
        .enumerate()
        .filter(|(_, i)| i.get("sandbox").is_some())
        .collect();
    assert_eq!(sandboxed.len(), 1, "one sandbox interface: {result:#}");
    let (eth0_index, eth0) = sandboxed[0];
    assert_eq!(eth0["name"], "eth0");
    assert_eq!(eth0["sandbox"], pod.netns.path_string());
    let ips = result["ips"].as_array().expect("ips");
    assert_eq!(ips.len(), 1, "{result:#}");
    let ip = &ips[0];
    let address = ip["address"].as_str().expect("address");
    assert!(
        nets.cluster.contains(address),
        "{address} not in {}",
        nets.cluster.cidr()
    );
    assert_eq!(ip["gateway"], nets.cluster.host(1));
    assert_eq!(ip["interface"], eth0_index);
    if version == "1.0.0" {
        assert!(
            ip.get("version").is_none(),
            "1.0.0 IPs carry no version: {ip}"
        );
    } else {
        assert_eq!(ip["version"], "4", "{version} IPs carry a version: {ip}");
    }

    // What is really in the pod.
    assert_eq!(pod.netns.link_names(), ["eth0", "lo", "net1", "net2"]);
    let live_eth0 = pod.netns.link("eth0").expect("eth0");
    assert!(
        live_eth0.addresses.iter().any(|a| a == address),
        "{live_eth0:?}"
    );
    assert_eq!(eth0["mac"], live_eth0.mac.as_str());

    // The recorded network-status matches the live interfaces.
    let status = h.dirs.network_status(&pod.container_id);
    let expected = [
        (CLUSTER_NETWORK.to_owned(), "eth0", nets.cluster),
        (format!("default/{MACVLAN_NAD}"), "net1", nets.macnet),
        (format!("default/{BRIDGE_NAD}"), "net2", nets.brnet),
    ];
    assert_eq!(status.len(), expected.len(), "{status:#?}");
    for (entry, (name, ifname, subnet)) in status.iter().zip(&expected) {
        assert_eq!(entry["name"], name.as_str(), "{entry:#}");
        assert_eq!(entry["interface"], *ifname, "{entry:#}");
        assert_eq!(
            entry.get("default").is_some_and(|d| d == true),
            *ifname == "eth0"
        );
        let live = pod.netns.link(ifname).expect("live link");
        assert_eq!(entry["mac"], live.mac.as_str(), "{entry:#} vs {live:?}");
        let recorded: Vec<&str> = entry["ips"]
            .as_array()
            .expect("ips")
            .iter()
            .map(|ip| ip.as_str().expect("ip text"))
            .collect();
        assert_eq!(recorded, live.ips(), "{entry:#} vs {live:?}");
        assert!(recorded.iter().all(|ip| subnet.contains(ip)), "{entry:#}");
    }

    // One host-local lease per network, held by this container.
    let leases = h.dirs.leases();
    assert_eq!(leases.len(), 3, "{leases:?}");
    assert!(
        leases
            .iter()
            .all(|(_, owner)| owner.contains(&pod.container_id)),
        "{leases:?}"
    );

    let prev = (version != "0.3.1").then_some(&result);
    h.runtime.del(&pod, &conf, prev).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn add_and_del_with_results_at_0_3_1() {
    add_then_del("0.3.1");
}

#[test]
fn add_and_del_with_results_at_0_4_0() {
    add_then_del("0.4.0");
}

#[test]
fn add_and_del_with_results_at_1_0_0() {
    add_then_del("1.0.0");
}
