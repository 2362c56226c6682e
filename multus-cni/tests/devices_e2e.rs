//! Device IDs end to end: the real `multus` binary asks a fake kubelet (gRPC on a Unix
//! socket) for the pod's devices, and the reference `host-device` plugin moves the
//! "device" it was given (a veth made for the test, whose name is the fake device ID)
//! into the pod. A small wrapper plugin turns the injected `deviceID` into
//! host-device's `device`. Needs root and `containernetworking-plugins`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fake_kubelet;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use fake_kubelet::Kubelet;
use multus_integration_tests::binaries;
use multus_integration_tests::kube::{KubeNode, NETWORKS};
use multus_integration_tests::netns;
use serde_json::json;

const RESOURCE: &str = "example.com/veth";

/// The wrapper: `deviceID` becomes `device`, `pciBusID` goes (there is no PCI device).
fn install_wrapper(bin: &Path) {
    std::fs::create_dir_all(bin).unwrap();
    let script = format!(
        "#!/bin/sh\nsed -e 's/\"deviceID\":\"\\([^\"]*\\)\"/\"device\":\"\\1\"/' -e 's/,\"pciBusID\":\"[^\"]*\"//' | exec {}/host-device\n",
        KubeNode::plugin_dir().display()
    );
    let path = bin.join("hostdev-wrap");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn vf_nad(name: &str, address: &str) -> String {
    json!({
        "cniVersion": "1.0.0", "name": name, "type": "hostdev-wrap",
        "capabilities": {"CNIDeviceInfoFile": true},
        "ipam": {"type": "static", "addresses": [{"address": address}]}
    })
    .to_string()
}

fn create_vf_nad(node: &KubeNode, name: &str, address: &str) {
    node.api
        .create(
            &k8s_standin::NADS,
            "default",
            json!({
                "metadata": {"name": name, "annotations": {"k8s.v1.cni.cncf.io/resourceName": RESOURCE}},
                "spec": {"config": vf_nad(name, address)}
            }),
        )
        .unwrap();
}

/// The node side of a fake VF: `vfN` (the device ID, moved into the pod) and `vfNp`
/// (stays on the node with `peer`).
fn make_vf(node: &KubeNode, name: &str, peer: &str) {
    let host = format!("{name}p");
    node.netns()
        .ip(&["link", "add", name, "type", "veth", "peer", "name", &host]);
    node.netns().ip(&["addr", "add", peer, "dev", &host]);
    node.netns().ip(&["link", "set", &host, "up"]);
}

struct DeviceNode {
    node: KubeNode,
    kubelet: Kubelet,
}

fn device_node(devices: &[&str]) -> DeviceNode {
    let mut node = KubeNode::new();
    make_vf(&node, "vf0", "10.95.0.1/24");
    make_vf(&node, "vf1", "10.96.0.1/24");
    create_vf_nad(&node, "vf-a", "10.95.0.2/24");
    create_vf_nad(&node, "vf-b", "10.96.0.2/24");
    let bin = node.dir.path().join("bin");
    install_wrapper(&bin);
    let devinfo = node.dir.path().join("devinfo");
    std::fs::create_dir_all(devinfo.join("dp")).unwrap();
    std::fs::write(
        devinfo.join("dp/example.com-veth-vf0-device.json"),
        r#"{"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:95:00.0"}}"#,
    )
    .unwrap();
    let sockets = node.dir.path().join("pod-resources");
    std::fs::create_dir_all(&sockets).unwrap();
    let kubelet = Kubelet::new(false).with_pod("default", "web", &[("app", RESOURCE, devices)]);
    kubelet.serve(&sockets.join("kubelet.sock"));
    node.conf_extra = json!({
        "binDir": bin,
        "podResourcesSocket": sockets.join("kubelet.sock"),
        "deviceCheckpointFile": node.dir.path().join("no-checkpoint"),
        "deviceInfoDir": devinfo,
    });
    DeviceNode { node, kubelet }
}

fn ping(node: &KubeNode, index: usize, address: &str) {
    netns::run(
        binaries::ip(),
        &[
            "netns",
            "exec",
            node.pods[index].name(),
            "ping",
            "-c",
            "1",
            "-W",
            "2",
            address,
        ],
    )
    .expect_success(&format!("ping {address}"));
}

#[test]
fn host_device_gets_the_kubelet_s_devices_in_annotation_order_and_del_returns_them() {
    let DeviceNode { mut node, kubelet } = device_node(&["vf1", "vf0"]);
    let (pod, index) = node.api_pod("default", "web", &[(NETWORKS, "vf-a, vf-b")]);
    node.multus("ADD", &pod, index).ok();
    assert_eq!(kubelet.calls(), ["Get default/web"]);
    // Sorted device IDs, taken in annotation order: vf-a gets vf0, vf-b gets vf1.
    assert_eq!(node.pods[index].interface_names(), ["eth0", "net1", "net2"]);
    ping(&node, index, "10.95.0.1");
    ping(&node, index, "10.96.0.1");
    let node_links: Vec<String> = node.netns().interface_names();
    assert!(!node_links.contains(&"vf0".to_owned()), "{node_links:?}");

    let status = node.network_status("default", "web").unwrap();
    let vf_a = status
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "default/vf-a")
        .unwrap();
    assert_eq!(vf_a["interface"], "net1");
    assert_eq!(vf_a["device-info"]["pci"]["pci-address"], "0000:95:00.0");
    let cni_info = node.dir.path().join("devinfo/cni");
    assert_eq!(std::fs::read_dir(&cni_info).unwrap().count(), 1);

    // The record keeps the devices: DEL needs no kubelet.
    let store = multus_cni::state_store::FileStateStore::new(&node.dir.path().join("multus"));
    let record = std::fs::read_to_string(store.record_path(&pod.container_id)).unwrap();
    let record: serde_json::Value = serde_json::from_str(&record).unwrap();
    let device = &record["attachments"][1]["device"];
    assert_eq!(device["deviceID"], "vf0", "{record}");
    assert_eq!(device["source"], "pod-resources", "{record}");
    node.multus("DEL", &pod, index).ok();
    assert_eq!(kubelet.calls(), ["Get default/web"]);
    let node_links = node.netns().interface_names();
    assert!(
        node_links.contains(&"vf0".to_owned()) && node_links.contains(&"vf1".to_owned()),
        "host-device returns the devices: {node_links:?}"
    );
    assert_eq!(node.pods[index].interface_names(), Vec::<String>::new());
    assert_eq!(std::fs::read_dir(&cni_info).unwrap().count(), 0);
    assert!(node.leases().is_empty());
}

#[test]
fn a_second_network_without_a_device_left_fails_and_nothing_stays_attached() {
    let DeviceNode { mut node, .. } = device_node(&["vf0"]);
    let (pod, index) = node.api_pod("default", "web", &[(NETWORKS, "vf-a, vf-b")]);
    let outcome = node.multus("ADD", &pod, index);
    assert_eq!(outcome.error_code(), 106, "{}", outcome.stderr);
    let message = outcome.message();
    for part in ["default/web", "default/vf-b", RESOURCE] {
        assert!(message.contains(part), "{part} missing from {message}");
    }
    assert!(node.netns().interface_names().contains(&"vf0".to_owned()));
    assert_eq!(node.pods[index].interface_names(), Vec::<String>::new());
    assert!(node.leases().is_empty());
    let cni_info = node.dir.path().join("devinfo/cni");
    assert_eq!(
        std::fs::read_dir(&cni_info).map(|d| d.count()).unwrap_or(0),
        0
    );
    node.multus("DEL", &pod, index).ok();
}

#[test]
fn networks_without_resource_name_never_call_the_kubelet() {
    let DeviceNode { mut node, kubelet } = device_node(&["vf0"]);
    let (pod, index) = node.api_pod("default", "web", &[(NETWORKS, "blue")]);
    node.multus("ADD", &pod, index).ok();
    node.multus("DEL", &pod, index).ok();
    assert!(kubelet.calls().is_empty());
}
