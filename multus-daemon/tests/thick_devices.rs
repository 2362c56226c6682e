//! Device IDs in thick mode: the daemon asks the kubelet (a fake pod-resources gRPC
//! server) for the pod's devices, the reference `host-device` plugin (through a wrapper
//! that turns `deviceID` into `device`) moves the assigned veth into the pod, and DEL,
//! which asks the kubelet nothing, gives it back.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "../../multus-cni/tests/fake_kubelet/mod.rs"]
mod fake_kubelet;
use multus_integration_tests::thick as support;

use std::os::unix::fs::PermissionsExt as _;

use fake_kubelet::Kubelet;
use k8s_standin::{NADS, PODS};
use multus_integration_tests::fixtures::{self, NETWORKS_ANNOTATION, Subnet};
use multus_integration_tests::{CLUSTER_NETWORK, NODE_BRIDGE};
use serde_json::{Value, json};
use support::{Thick, plugin_stdin};

const RESOURCE: &str = "example.com/veth";

#[test]
fn the_daemon_gives_a_resource_network_the_kubelet_s_device() {
    let mut thick = Thick::new(true);
    thick.h.node.add_bridge(NODE_BRIDGE);
    let node = thick.h.node.netns();
    node.ip(&[
        "link", "add", "tvf0", "type", "veth", "peer", "name", "tvf0p",
    ]);
    node.ip(&["addr", "add", "10.97.0.1/24", "dev", "tvf0p"]);
    node.ip(&["link", "set", "tvf0p", "up"]);
    let bin = thick.h.dirs.bin_dir();
    std::fs::create_dir_all(&bin).unwrap();
    let wrapper = bin.join("hostdev-wrap");
    std::fs::write(
        &wrapper,
        "#!/bin/sh\nsed -e 's/\"deviceID\":\"\\([^\"]*\\)\"/\"device\":\"\\1\"/' -e 's/,\"pciBusID\":\"[^\"]*\"//' | exec /usr/lib/cni/host-device\n",
    )
    .unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    thick.write_primary(
        "10-cluster.conf",
        &fixtures::bridge_conf(
            "1.0.0",
            CLUSTER_NETWORK,
            "mrs-cbr0",
            Subnet::unique(),
            true,
            &thick.h.dirs,
        ),
    );
    let config = json!({
        "cniVersion": "1.0.0", "name": "vf-a", "type": "hostdev-wrap",
        "ipam": {"type": "static", "addresses": [{"address": "10.97.0.2/24"}]}
    });
    thick
        .api()
        .create(
            &NADS,
            "default",
            json!({"metadata": {"name": "vf-a", "annotations": {"k8s.v1.cni.cncf.io/resourceName": RESOURCE}},
                   "spec": {"config": config.to_string()}}),
        )
        .unwrap();
    let socket = thick.root.path().join("kubelet.sock");
    thick.set("podResourcesSocket", json!(socket));
    thick.set(
        "deviceCheckpointFile",
        json!(thick.root.path().join("no-checkpoint")),
    );
    thick.set("deviceInfoDir", json!(thick.root.path().join("devinfo")));
    thick.start_daemon();
    let generated = thick.wait_generated("00-multus.conflist", |_| true);
    let conf = plugin_stdin(&generated);
    let pod = thick.api_pod(&[(NETWORKS_ANNOTATION, "vf-a")]);
    let kubelet =
        Kubelet::new(false).with_pod(&pod.namespace, &pod.name, &[("app", RESOURCE, &["tvf0"])]);
    kubelet.serve(&socket);
    thick.wait_cached_pods(1);

    let result = thick.shim.add(&pod, &conf).success();
    assert!(pod.netns.link("net1").is_some(), "{}", thick.daemon_log());
    assert_eq!(
        kubelet.calls(),
        [format!("Get {}/{}", pod.namespace, pod.name)]
    );
    let ping = pod.netns.exec(
        std::path::Path::new("/usr/bin/ping"),
        &["-c", "1", "-W", "2", "10.97.0.1"],
    );
    assert_eq!(ping.code, 0, "{ping:?}");
    let stored = thick.api().get(&PODS, &pod.namespace, &pod.name).unwrap();
    let status: Vec<Value> = serde_json::from_str(
        stored["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(status[1]["name"], "default/vf-a");

    thick.shim.del(&pod, &conf, Some(&result)).empty_success();
    assert_eq!(kubelet.calls().len(), 1, "DEL asks the kubelet nothing");
    assert!(pod.netns.link("net1").is_none());
    assert!(
        thick
            .h
            .node
            .netns()
            .link_names()
            .contains(&"tvf0".to_owned()),
        "host-device gave the device back"
    );
}
