//! The node's device sources as the thin plugin and the daemon use them: a fake
//! kubelet pod-resources gRPC server on a Unix socket (with `Get`, with only `List`),
//! the device-manager checkpoint when there is no socket, and DRA claims and slices in
//! the Kubernetes API stand-in.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod fake_kubelet;

use std::path::Path;

use fake_kubelet::Kubelet;
use k8s_standin::{PODS, RESOURCE_CLAIMS, RESOURCE_SLICES, StandIn};
use multus_cni::cluster::kube::{ApiSource, KubeClusterApi};
use multus_cni::devices::{DevicePaths, DraSource, NodeDevices};
use multus_core::config::MultusConf;
use multus_core::devices::{DeviceSource, ResourceMap};
use multus_core::request::PodRef;
use multus_core::seams::{DeviceError, DeviceResources};
use serde_json::json;

const SRIOV: &str = "intel.com/sriov";

fn pod(uid: &str) -> PodRef {
    PodRef {
        namespace: "default".into(),
        name: "web".into(),
        uid: uid.into(),
        infra_container_id: String::new(),
    }
}

fn paths(dir: &Path) -> DevicePaths {
    DevicePaths {
        pod_resources_socket: dir.join("pod-resources/kubelet.sock"),
        checkpoint: dir.join("device-plugins/kubelet_internal_checkpoint"),
        device_info_dir: dir.join("devinfo"),
    }
}

fn ids(map: &ResourceMap, resource: &str) -> Vec<(String, DeviceSource)> {
    map.devices(resource)
        .iter()
        .map(|e| (e.device_id.clone(), e.source))
        .collect()
}

fn kubelet_pods(list_only: bool) -> Kubelet {
    Kubelet::new(list_only)
        .with_pod(
            "default",
            "web",
            &[
                ("app", SRIOV, &["0000:03:02.3", "0000:03:02.1"]),
                ("sidecar", SRIOV, &["0000:03:02.2"]),
                ("sidecar", "nvidia.com/gpu", &["GPU-1"]),
            ],
        )
        .with_pod("default", "other", &[("app", SRIOV, &["0000:03:02.7"])])
}

fn serve(kubelet: &Kubelet, dir: &Path) {
    std::fs::create_dir_all(dir.join("pod-resources")).unwrap();
    kubelet.serve(&dir.join("pod-resources/kubelet.sock"));
}

#[tokio::test]
async fn pod_resources_get_gives_every_container_s_devices_sorted() {
    let dir = tempfile::tempdir().unwrap();
    let kubelet = kubelet_pods(false);
    serve(&kubelet, dir.path());
    let devices = NodeDevices::new(paths(dir.path()), None);
    let map = devices.pod_devices(&pod("u1")).await.unwrap();
    let source = DeviceSource::PodResources;
    assert_eq!(
        ids(&map, SRIOV),
        [
            ("0000:03:02.1".into(), source),
            ("0000:03:02.2".into(), source),
            ("0000:03:02.3".into(), source)
        ]
    );
    assert_eq!(ids(&map, "nvidia.com/gpu"), [("GPU-1".into(), source)]);
    assert_eq!(kubelet.calls(), ["Get default/web"]);
}

#[tokio::test]
async fn a_kubelet_without_get_is_asked_to_list_and_only_the_pod_counts() {
    let dir = tempfile::tempdir().unwrap();
    let kubelet = kubelet_pods(true);
    serve(&kubelet, dir.path());
    let devices = NodeDevices::new(paths(dir.path()), None);
    let map = devices.pod_devices(&pod("u1")).await.unwrap();
    assert_eq!(ids(&map, SRIOV).len(), 3);
    assert!(!ids(&map, SRIOV).iter().any(|(id, _)| id == "0000:03:02.7"));
    assert_eq!(kubelet.calls(), ["Get default/web", "List"]);
}

#[tokio::test]
async fn a_socket_nobody_answers_on_fails_clearly_and_in_time() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("pod-resources")).unwrap();
    // A socket file with no listener behind it (the kubelet died).
    let socket = dir.path().join("pod-resources/kubelet.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let devices = NodeDevices::new(paths(dir.path()), None);
    let err = devices.pod_devices(&pod("u1")).await.unwrap_err();
    assert!(matches!(err, DeviceError::Failed(_)), "{err}");
    assert!(err.to_string().contains("kubelet.sock"), "{err}");
}

fn write_checkpoint(dir: &Path, text: &str) {
    std::fs::create_dir_all(dir.join("device-plugins")).unwrap();
    std::fs::write(dir.join("device-plugins/kubelet_internal_checkpoint"), text).unwrap();
}

#[test]
fn without_a_socket_the_checkpoint_is_read_by_pod_uid() {
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(
        dir.path(),
        r#"{"Data":{"PodDeviceEntries":[
            {"PodUID":"u1","ContainerName":"app","ResourceName":"intel.com/sriov","DeviceIDs":{"0":["0000:03:02.5","0000:03:02.4"]},"AllocResp":"CgQ="},
            {"PodUID":"u2","ContainerName":"app","ResourceName":"intel.com/sriov","DeviceIDs":{"0":["0000:03:02.6"]},"AllocResp":"CgQ="}],
            "RegisteredDevices":{"intel.com/sriov":["0000:03:02.4","0000:03:02.5","0000:03:02.6"]}},"Checksum":1234}"#,
    );
    let devices = NodeDevices::new(paths(dir.path()), None);
    // The thin plugin without an API has no tokio runtime: the lookup makes its own.
    let map = pollster::block_on(devices.pod_devices(&pod("u1"))).unwrap();
    let source = DeviceSource::Checkpoint;
    assert_eq!(
        ids(&map, SRIOV),
        [
            ("0000:03:02.4".into(), source),
            ("0000:03:02.5".into(), source)
        ]
    );
    let other = pollster::block_on(devices.pod_devices(&pod("u2"))).unwrap();
    assert_eq!(ids(&other, SRIOV), [("0000:03:02.6".into(), source)]);
}

#[test]
fn a_garbage_checkpoint_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    write_checkpoint(dir.path(), "{\"Data\": [not json");
    let devices = NodeDevices::new(paths(dir.path()), None);
    let err = pollster::block_on(devices.pod_devices(&pod("u1"))).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("kubelet_internal_checkpoint"), "{text}");
    assert!(text.contains("does not parse"), "{text}");
}

#[test]
fn no_socket_no_checkpoint_and_no_api_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let devices = NodeDevices::new(paths(dir.path()), None);
    let err = pollster::block_on(devices.pod_devices(&pod("u1"))).unwrap_err();
    assert!(matches!(err, DeviceError::Unavailable(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("kubelet.sock") && text.contains("checkpoint"),
        "{text}"
    );
}

// --- DRA -------------------------------------------------------------------------

fn slice(
    name: &str,
    node: &str,
    driver: &str,
    pool: &str,
    devices: serde_json::Value,
) -> serde_json::Value {
    json!({
        "metadata": {"name": name},
        "spec": {"driver": driver, "nodeName": node, "pool": {"name": pool, "generation": 1, "resourceSliceCount": 1},
                 "devices": devices}
    })
}

fn cni_device(name: &str, resource: &str, id: &str) -> serde_json::Value {
    json!({"name": name, "attributes": {
        "k8s.cni.cncf.io/resourceName": {"string": resource},
        "k8s.cni.cncf.io/deviceID": {"string": id},
        "dra.net/numa": {"int": 0}
    }})
}

fn claim(api: &StandIn, name: &str, results: serde_json::Value) {
    let object = json!({
        "metadata": {"name": name},
        "spec": {"devices": {"requests": []}},
        "status": {"allocation": {"devices": {"results": results}}}
    });
    api.create(&RESOURCE_CLAIMS, "default", object).unwrap();
}

fn result(driver: &str, pool: &str, device: &str) -> serde_json::Value {
    json!({"request": "vf", "driver": driver, "pool": pool, "device": device})
}

fn dra_pod(api: &StandIn, claims: &[&str]) -> PodRef {
    let statuses: Vec<_> = claims
        .iter()
        .map(|c| json!({"name": format!("req-{c}"), "resourceClaimName": c}))
        .collect();
    let object = api
        .create(
            &PODS,
            "default",
            json!({
                "metadata": {"name": "web"},
                "spec": {"nodeName": "node-a", "containers": [{"name": "app", "image": "x"}]},
                "status": {"phase": "Pending", "resourceClaimStatuses": statuses}
            }),
        )
        .unwrap();
    pod(object["metadata"]["uid"].as_str().unwrap())
}

async fn kube(api: &StandIn) -> KubeClusterApi {
    let conf = MultusConf::parse(
        json!({"delegates": [{"type": "bridge"}], "kubeconfig": api.kubeconfig(), "apiRetries": 0})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    KubeClusterApi::connect(&ApiSource::for_conf(&conf, |_| None), &conf).await
}

fn dra_world() -> StandIn {
    let api = StandIn::start().unwrap();
    api.create(
        &RESOURCE_SLICES,
        "",
        slice(
            "node-a-sriov",
            "node-a",
            "sriov.dra.net",
            "node-a",
            json!([
                cni_device("vf-0", SRIOV, "0000:81:00.2"),
                cni_device("vf-1", SRIOV, "0000:81:00.3")
            ]),
        ),
    )
    .unwrap();
    api.create(
        &RESOURCE_SLICES,
        "",
        slice(
            "node-b-sriov",
            "node-b",
            "sriov.dra.net",
            "node-b",
            json!([cni_device("vf-0", SRIOV, "0000:82:00.2")]),
        ),
    )
    .unwrap();
    api.create(
        &RESOURCE_SLICES,
        "",
        slice(
            "node-a-gpu",
            "node-a",
            "gpu.example.com",
            "node-a",
            json!([{"name": "gpu-0", "attributes": {"productName": {"string": "A100"}}}]),
        ),
    )
    .unwrap();
    api
}

#[tokio::test]
async fn dra_claims_give_the_devices_with_cni_attributes_of_this_node() {
    let api = dra_world();
    claim(
        &api,
        "sriov",
        json!([result("sriov.dra.net", "node-a", "vf-1")]),
    );
    // A GPU claim beside it: its device has no CNI attributes and is skipped.
    claim(
        &api,
        "gpu",
        json!([result("gpu.example.com", "node-a", "gpu-0")]),
    );
    // A device of another node's pool, and a device no slice lists: skipped.
    claim(
        &api,
        "strays",
        json!([
            result("sriov.dra.net", "node-b", "vf-0"),
            result("sriov.dra.net", "node-a", "vf-9")
        ]),
    );
    let pod = dra_pod(&api, &["sriov", "gpu", "strays"]);
    let kube = kube(&api).await;
    let map = kube.dra_devices(&pod).await.unwrap().unwrap();
    assert_eq!(
        ids(&map, SRIOV),
        [("0000:81:00.3".into(), DeviceSource::Dra)]
    );
    assert_eq!(map.resource_names().collect::<Vec<_>>(), [SRIOV]);
    // Slices are listed once per driver, filtered to the pod's node.
    let lists: Vec<_> = api
        .requests()
        .into_iter()
        .filter(|r| r.verb == "list")
        .collect();
    assert_eq!(lists.len(), 2, "{lists:?}");
}

#[tokio::test]
async fn kubelet_devices_come_first_and_dra_devices_are_appended() {
    let dir = tempfile::tempdir().unwrap();
    let api = dra_world();
    claim(
        &api,
        "sriov",
        json!([result("sriov.dra.net", "node-a", "vf-0")]),
    );
    let pod = dra_pod(&api, &["sriov"]);
    let kubelet =
        Kubelet::new(false).with_pod("default", "web", &[("app", SRIOV, &["0000:03:02.1"])]);
    serve(&kubelet, dir.path());
    let kube = kube(&api).await;
    let devices = NodeDevices::new(paths(dir.path()), Some(&kube as &dyn DraSource));
    let map = devices.pod_devices(&pod).await.unwrap();
    assert_eq!(
        ids(&map, SRIOV),
        [
            ("0000:03:02.1".into(), DeviceSource::PodResources),
            ("0000:81:00.2".into(), DeviceSource::Dra)
        ]
    );
}

#[tokio::test]
async fn a_pod_without_claims_asks_dra_nothing_more_and_an_unallocated_claim_fails() {
    let api = dra_world();
    let kube = kube(&api).await;
    let pod_without = dra_pod(&api, &[]);
    assert_eq!(kube.dra_devices(&pod_without).await.unwrap(), None);
    api.delete(&PODS, "default", "web").unwrap();
    api.create(
        &RESOURCE_CLAIMS,
        "default",
        json!({"metadata": {"name": "pending"}, "spec": {"devices": {"requests": []}}}),
    )
    .unwrap();
    let pod = dra_pod(&api, &["pending"]);
    let err = kube.dra_devices(&pod).await.unwrap_err().to_string();
    assert!(
        err.contains("default/pending") && err.contains("not allocated"),
        "{err}"
    );
    // Neither a kubelet nor DRA devices: the devices of no source.
    let dir = tempfile::tempdir().unwrap();
    api.delete(&PODS, "default", "web").unwrap();
    let pod = dra_pod(&api, &[]);
    let devices = NodeDevices::new(paths(dir.path()), Some(&kube as &dyn DraSource));
    let err = devices.pod_devices(&pod).await.unwrap_err();
    assert!(err.to_string().contains("no DRA ResourceClaims"), "{err}");
}
