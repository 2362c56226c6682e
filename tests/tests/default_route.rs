//! The `default-route` attribute with real plugins, checked by reading the routes inside
//! the pod (`ip -j route`), not by trusting multus' own result.
//!
//! The cluster network is a bridge with `isGateway` whose host-local IPAM installs a
//! default route via its gateway on eth0; NAD `brnet` is a bridge network (net1).
//!
//! - `default-route: ["<gw in brnet>"]` on net1: the pod's only IPv4 default route is
//!   via that gateway on net1; the result returned to the runtime (the cluster
//!   network's) has no default route any more; network-status says the same.
//! - `default-route: []` on net1 leaves eth0's default route in place.
//! - Two IPv4 gateways (on two attachments, or on one) are refused with code 102
//!   ("ECMP") before anything runs: nothing is attached.
//! - IPv6: with a dual-stack cluster network, a v6 gateway on net1 replaces only the
//!   IPv6 default; the IPv4 default stays on eth0.

// Test code: a panic (`expect`, `unwrap`, `panic!`) in a helper is a test failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use multus_integration_tests::fixtures::{MultusConfig, Subnet, TestDirs, bridge_conf};
use multus_integration_tests::netns::{Family, Route};
use multus_integration_tests::runtime::Sandbox;
use multus_integration_tests::{
    BRIDGE_NAD, CLUSTER_NETWORK, Harness, MACVLAN_NAD, StandardNetworks,
};
use serde_json::{Value, json};

const VERSION: &str = "1.0.0";

/// The cluster bridge (eth0) with `isGateway` and a default route via its gateway.
fn cluster_with_default_route(nets: &StandardNetworks, dirs: &TestDirs) -> Value {
    let mut cluster = bridge_conf(
        VERSION,
        CLUSTER_NETWORK,
        "mrs-cbr0",
        nets.cluster,
        true,
        dirs,
    );
    cluster["ipam"]["routes"] = json!([{"dst": "0.0.0.0/0", "gw": nets.cluster.host(1)}]);
    cluster
}

fn setup() -> (Harness, Sandbox, StandardNetworks, MultusConfig) {
    let h = Harness::new();
    let nets = h.standard_networks(VERSION);
    let conf = MultusConfig::new(VERSION, &h.dirs, cluster_with_default_route(&nets, &h.dirs));
    let pod = h.sandbox();
    (h, pod, nets, conf)
}

fn route(gateway: &str, dev: &str) -> Route {
    Route {
        dst: "default".to_owned(),
        gateway: Some(gateway.to_owned()),
        dev: dev.to_owned(),
    }
}

/// The default routes a result document lists (`dst` 0.0.0.0/0 or ::/0).
fn result_default_routes(result: &Value) -> Vec<Value> {
    result["routes"]
        .as_array()
        .map(|routes| {
            routes
                .iter()
                .filter(|r| matches!(r["dst"].as_str(), Some("0.0.0.0/0" | "::/0" | "::0/0")))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
}

/// The `gateway` field of the network-status entry for `ifname` (empty when absent).
fn status_gateways(h: &Harness, pod: &Sandbox, ifname: &str) -> Vec<String> {
    let status = h.dirs.network_status(&pod.container_id);
    let entry = status
        .iter()
        .find(|e| e["interface"] == ifname)
        .unwrap_or_else(|| panic!("no network-status entry for {ifname}: {status:#?}"));
    entry
        .get("gateway")
        .and_then(Value::as_array)
        .map(|gws| {
            gws.iter()
                .map(|g| g.as_str().expect("gateway text").to_owned())
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn requested_gateway_becomes_the_only_ipv4_default_route() {
    let (h, pod, nets, conf) = setup();
    let gateway = nets.brnet.host(1);
    let annotation = json!([{"name": BRIDGE_NAD, "default-route": [gateway]}]);
    let conf = conf.networks(&annotation.to_string()).build();

    let result = h.runtime.add(&pod, &conf).success();

    assert_eq!(
        pod.netns.default_routes(Family::V4),
        [route(&gateway, "net1")],
        "the pod's IPv4 default routes: {:?}",
        pod.netns.routes(Family::V4)
    );
    assert!(
        result_default_routes(&result).is_empty(),
        "the cluster network's result no longer claims a default route: {result:#}"
    );
    assert_eq!(status_gateways(&h, &pod, "net1"), [gateway.as_str()]);
    assert!(status_gateways(&h, &pod, "eth0").is_empty());

    h.runtime.del(&pod, &conf, Some(&result)).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn empty_default_route_leaves_the_cluster_default_in_place() {
    let (h, pod, nets, conf) = setup();
    let annotation = json!([{"name": BRIDGE_NAD, "default-route": []}]);
    let conf = conf.networks(&annotation.to_string()).build();

    let result = h.runtime.add(&pod, &conf).success();

    let cluster_gateway = nets.cluster.host(1);
    assert_eq!(
        pod.netns.default_routes(Family::V4),
        [route(&cluster_gateway, "eth0")],
        "upstream #1011 would remove eth0's default: {:?}",
        pod.netns.routes(Family::V4)
    );
    let defaults = result_default_routes(&result);
    assert_eq!(defaults.len(), 1, "{result:#}");
    assert_eq!(defaults[0]["gw"], cluster_gateway.as_str());
    assert_eq!(status_gateways(&h, &pod, "eth0"), [cluster_gateway]);
    assert!(status_gateways(&h, &pod, "net1").is_empty());

    h.runtime.del(&pod, &conf, Some(&result)).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}

fn assert_ecmp_refused(annotation: &Value) {
    let (h, pod, _nets, conf) = setup();
    let conf = conf.networks(&annotation.to_string()).build();

    let error = h.runtime.add(&pod, &conf).error_with_code(102);
    error.assert_msg_contains(&[
        &pod.pod_ref(),
        "multus does not support ECMP for default-route: 2 IPv4 gateways requested",
    ]);
    assert_eq!(error.cni_version, VERSION);
    // Refused before anything ran.
    h.assert_nothing_leaked(&[&pod]);
    assert!(h.dirs.leases().is_empty());
}

#[test]
fn two_ipv4_gateways_on_two_attachments_are_refused_before_anything_runs() {
    // The gateways need not be reachable: nothing runs.
    assert_ecmp_refused(&json!([
        {"name": BRIDGE_NAD, "default-route": ["10.255.1.1"]},
        {"name": MACVLAN_NAD, "default-route": ["10.255.2.1"]},
    ]));
}

#[test]
fn two_ipv4_gateways_on_one_attachment_are_refused_before_anything_runs() {
    assert_ecmp_refused(&json!([
        {"name": BRIDGE_NAD, "default-route": ["10.255.1.1", "10.255.1.2"]},
    ]));
}

/// `fd00:<x>:<y>::/64` for a [`Subnet`] `10.x.y.0/24`.
fn v6_subnet(subnet: Subnet) -> (String, String) {
    let v4 = subnet.host(0);
    let parts: Vec<&str> = v4.split('.').collect();
    let prefix = format!("fd00:{}:{}", parts[1], parts[2]);
    (format!("{prefix}::/64"), format!("{prefix}::1"))
}

#[test]
fn ipv6_gateway_replaces_only_the_ipv6_default() {
    let h = Harness::new();
    let nets = h.standard_networks(VERSION);
    let (cluster_v6, cluster_v6_gateway) = v6_subnet(Subnet::unique());
    let mut cluster = cluster_with_default_route(&nets, &h.dirs);
    cluster["ipam"] = json!({
        "type": "host-local",
        "dataDir": h.dirs.data_dir(),
        "ranges": [[{"subnet": nets.cluster.cidr()}], [{"subnet": cluster_v6}]],
        "routes": [
            {"dst": "0.0.0.0/0", "gw": nets.cluster.host(1)},
            {"dst": "::/0", "gw": cluster_v6_gateway},
        ],
    });
    let (v6net, v6_gateway) = v6_subnet(Subnet::unique());
    let mut v6conf = bridge_conf(
        VERSION,
        "v6net",
        "mrs-br6",
        Subnet::unique(),
        false,
        &h.dirs,
    );
    v6conf["ipam"] = json!({
        "type": "host-local",
        "dataDir": h.dirs.data_dir(),
        "ranges": [[{"subnet": v6net}]],
    });
    h.dirs.write_nad_json("v6net", &v6conf);
    let annotation = json!([{"name": "v6net", "default-route": [v6_gateway]}]);
    let conf = MultusConfig::new(VERSION, &h.dirs, cluster)
        .networks(&annotation.to_string())
        .build();
    let pod = h.sandbox();

    let result = h.runtime.add(&pod, &conf).success();

    assert_eq!(
        pod.netns.default_routes(Family::V6),
        [route(&v6_gateway, "net1")],
        "the pod's IPv6 default routes: {:?}",
        pod.netns.routes(Family::V6)
    );
    assert_eq!(
        pod.netns.default_routes(Family::V4),
        [route(&nets.cluster.host(1), "eth0")],
        "the IPv4 default is not touched"
    );
    let defaults = result_default_routes(&result);
    assert_eq!(
        defaults.len(),
        1,
        "only the IPv4 default is left: {result:#}"
    );
    assert_eq!(defaults[0]["dst"], "0.0.0.0/0");
    assert_eq!(status_gateways(&h, &pod, "net1"), [v6_gateway.as_str()]);
    assert_eq!(status_gateways(&h, &pod, "eth0"), [nets.cluster.host(1)]);

    h.runtime.del(&pod, &conf, Some(&result)).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}
