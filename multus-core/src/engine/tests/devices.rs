//! Device IDs of `resourceName` networks: lookup only when needed, assignment in
//! annotation order, injection, device-info files, exhaustion and rollback.

use super::*;
use crate::devices::{DeviceSource, ResourceMap};
use crate::seams::DeviceError;
use crate::testing::MemoryDevices;

const SRIOV: &str = "intel.com/sriov";

fn sriov_nad(name: &str, config: &str) -> NetworkAttachmentDefinition {
    NetworkAttachmentDefinition {
        namespace: "default".into(),
        name: name.into(),
        config: config.into(),
        resource_name: Some(SRIOV.into()),
        annotations: BTreeMap::new(),
    }
}

fn world_with(devices: MemoryDevices) -> World {
    let mut world = World::new();
    world.api.nads.push(sriov_nad(
        "sriov-a",
        r#"{"cniVersion":"1.0.0","type":"sriov","deviceID":"asked","capabilities":{"CNIDeviceInfoFile":true}}"#,
    ));
    world.api.nads.push(sriov_nad(
        "sriov-b",
        r#"{"cniVersion":"1.0.0","name":"b","plugins":[{"type":"host-device"},{"type":"tuning"}]}"#,
    ));
    world.devices = devices;
    world
}

fn two_vfs() -> ResourceMap {
    let mut map = ResourceMap::default();
    map.push(SRIOV, "0000:03:02.0", DeviceSource::PodResources);
    map.push(SRIOV, "0000:03:02.1", DeviceSource::Dra);
    map
}

fn add_stdin(world: &World, plugin: &str) -> Vec<Value> {
    world
        .exec
        .calls()
        .into_iter()
        .filter(|(c, p, _, _)| *c == Command::Add && p == plugin)
        .map(|(_, _, _, stdin)| stdin)
        .collect()
}

#[test]
fn networks_without_resource_name_never_look_up_devices() {
    let world = world_with(MemoryDevices::default());
    add(&world, &conf("blue")).unwrap();
    assert_eq!(world.devices.lookups(), 0);
}

#[test]
fn two_networks_on_one_resource_take_two_devices_in_annotation_order() {
    let world = world_with(MemoryDevices::with_map(two_vfs()));
    add(&world, &conf("sriov-a, sriov-b")).unwrap();
    assert_eq!(world.devices.lookups(), 1);
    let sriov = &add_stdin(&world, "sriov")[0];
    // The map's device replaces the deviceID the config asked for.
    assert_eq!(sriov["deviceID"], "0000:03:02.0");
    assert_eq!(sriov["pciBusID"], "0000:03:02.0");
    for plugin in ["host-device", "tuning"] {
        let stdin = &add_stdin(&world, plugin)[0];
        assert_eq!(stdin["deviceID"], "0000:03:02.1", "{plugin}");
        assert_eq!(stdin["pciBusID"], "0000:03:02.1", "{plugin}");
    }
    // The delegate declaring the capability gets the device-info file.
    assert_eq!(
        sriov["runtimeConfig"]["CNIDeviceInfoFile"],
        "/devinfo/cni/default-sriov-a-c1_net1"
    );
    let state = world.state.record("c1").unwrap();
    let devices: Vec<_> = state
        .attachments
        .iter()
        .filter_map(|a| a.delegate.device.as_ref())
        .map(|d| (d.device_id.as_str(), d.source))
        .collect();
    assert_eq!(
        devices,
        [
            ("0000:03:02.0", DeviceSource::PodResources),
            ("0000:03:02.1", DeviceSource::Dra)
        ]
    );
}

#[test]
fn device_id_replaces_the_one_the_annotation_asked_for() {
    let world = world_with(MemoryDevices::with_map(two_vfs()));
    let mut conf = conf("");
    conf.runtime_config.insert(
        "io.kubernetes.cri.pod-annotations".into(),
        json!({"k8s.v1.cni.cncf.io/networks": r#"[{"name":"sriov-a","deviceID":"0000:99:00.0"}]"#}),
    );
    add(&world, &conf).unwrap();
    let state = world.state.record("c1").unwrap();
    let delegate = &state.attachments[1].delegate;
    assert_eq!(delegate.runtime_config["deviceID"], "0000:03:02.0");
}

#[test]
fn a_network_without_a_device_left_fails_before_anything_runs() {
    let mut one = ResourceMap::default();
    one.push(SRIOV, "0000:03:02.0", DeviceSource::Checkpoint);
    let mut devices = MemoryDevices::with_map(one);
    devices.dp_files.insert(
        "intel.com-sriov-0000:03:02.0-device.json".into(),
        json!({"type":"pci"}),
    );
    let world = world_with(devices);
    let err = add(&world, &conf("sriov-a, sriov-b")).unwrap_err();
    assert_eq!(err.code(), 106, "{err}");
    let text = err.to_string();
    for part in [
        "default/web",
        "default/sriov-b",
        "intel.com/sriov",
        "1 device(s)",
    ] {
        assert!(text.contains(part), "{part} missing from {text}");
    }
    assert!(world.exec.calls().is_empty());
    assert!(world.state.record("c1").is_none());
    // The device-info copy made for the first network is gone again.
    assert!(world.devices.cni_files().is_empty());
}

#[test]
fn no_device_source_fails_the_add_naming_pod_network_and_resource() {
    let world = world_with(MemoryDevices::failing(DeviceError::Unavailable(
        "no kubelet pod-resources socket and no checkpoint".into(),
    )));
    let err = add(&world, &conf("blue, sriov-a")).unwrap_err();
    assert_eq!(err.code(), 106);
    let text = err.to_string();
    assert!(text.contains("default/web/u1:default/sriov-a]"), "{text}");
    assert!(text.contains("intel.com/sriov"), "{text}");
    assert!(text.contains("no kubelet pod-resources socket"), "{text}");
    assert!(world.exec.calls().is_empty());
}

#[test]
fn device_info_reaches_network_status_and_del_removes_it() {
    let mut devices = MemoryDevices::with_map(two_vfs());
    let info = json!({"type":"pci","version":"1.1.0","pci":{"pci-address":"0000:03:02.0"}});
    devices.dp_files.insert(
        "intel.com-sriov-0000:03:02.0-device.json".into(),
        info.clone(),
    );
    let world = world_with(devices);
    add(&world, &conf("sriov-a")).unwrap();
    assert_eq!(
        world.devices.cni_files().keys().collect::<Vec<_>>(),
        ["default-sriov-a-c1_net1"]
    );
    let state = world.state.record("c1").unwrap();
    assert_eq!(state.network_status[1].name, "default/sriov-a");
    assert_eq!(state.network_status[1].device_info, Some(info));
    assert_eq!(state.network_status[0].device_info, None);
    let lookups = world.devices.lookups();
    del(&world, &conf("sriov-a")).unwrap();
    assert!(world.devices.cni_files().is_empty());
    // DEL works from the record: no second lookup.
    assert_eq!(world.devices.lookups(), lookups);
    let dels: Vec<_> = world
        .exec
        .calls()
        .into_iter()
        .filter(|(c, p, _, _)| *c == Command::Del && p == "sriov")
        .collect();
    assert_eq!(dels[0].3["deviceID"], "0000:03:02.0");
}

#[test]
fn a_failing_later_network_rolls_back_the_device_network_and_its_device_info() {
    let mut devices = MemoryDevices::with_map(two_vfs());
    devices.dp_files.insert(
        "intel.com-sriov-0000:03:02.0-device.json".into(),
        json!({"type":"pci"}),
    );
    let world = world_with(devices);
    let err = add(&world, &conf("sriov-a, broken")).unwrap_err();
    assert!(err.to_string().contains("default/broken"), "{err}");
    assert!(world.devices.cni_files().is_empty());
    assert!(world.state.record("c1").is_none());
    assert!(world.exec.summary().contains(&"DEL sriov net1".to_owned()));
}

#[test]
fn del_without_a_record_tolerates_a_device_network_it_cannot_name_the_device_of() {
    let mut world = world_with(MemoryDevices::with_map(two_vfs()));
    world.exec.failing_del.insert("sriov".into());
    del(&world, &conf("sriov-a")).unwrap();
    assert_eq!(world.devices.lookups(), 0);
    // With a record the device is known, and a failing DEL is reported.
    add(&world, &conf("sriov-a")).unwrap();
    assert!(del(&world, &conf("sriov-a")).is_err());
}
