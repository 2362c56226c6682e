//! Device IDs of networks backed by a device-plugin or DRA resource (NAD annotation
//! `k8s.v1.cni.cncf.io/resourceName`): the pod's resource map, the device each network
//! takes from it, and the device-info file names (NPWG device-info spec).
//!
//! Where the map comes from (kubelet pod-resources, the device-manager checkpoint, DRA
//! claims) is the business of a [`crate::seams::DeviceResources`] implementation; this
//! module holds what is decided from it.

pub mod checkpoint;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Which source supplied a device ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeviceSource {
    /// The kubelet's pod-resources gRPC API (`Get` or `List`).
    PodResources,
    /// The device manager's checkpoint file (kubelet socket absent).
    Checkpoint,
    /// A DRA ResourceClaim allocated to the pod (`resource.k8s.io/v1`).
    Dra,
}

impl DeviceSource {
    /// The name operators see (`pod-resources`, `checkpoint`, `dra`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PodResources => "pod-resources",
            Self::Checkpoint => "checkpoint",
            Self::Dra => "dra",
        }
    }
}

impl std::fmt::Display for DeviceSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One device of a resource allocated to the pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceEntry {
    /// The device ID (for SR-IOV, the VF's PCI address).
    pub device_id: String,
    /// Where it was learnt.
    pub source: DeviceSource,
}

/// The pod's devices, by resource name, in the order networks take them: the kubelet's
/// (sorted) first, then DRA's.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceMap {
    resources: BTreeMap<String, Vec<DeviceEntry>>,
}

impl ResourceMap {
    /// Append a device to a resource (a device already listed is not repeated).
    pub fn push(&mut self, resource: &str, device_id: &str, source: DeviceSource) {
        let entries = self.resources.entry(resource.to_owned()).or_default();
        if !entries.iter().any(|e| e.device_id == device_id) {
            entries.push(DeviceEntry {
                device_id: device_id.to_owned(),
                source,
            });
        }
    }

    /// Append every device of `other` after this map's own, resource by resource.
    pub fn extend(&mut self, other: ResourceMap) {
        for (resource, entries) in other.resources {
            for entry in entries {
                self.push(&resource, &entry.device_id, entry.source);
            }
        }
    }

    /// The devices of a resource, in order.
    pub fn devices(&self, resource: &str) -> &[DeviceEntry] {
        self.resources.get(resource).map_or(&[], Vec::as_slice)
    }

    /// Whether the map holds no device at all.
    pub fn is_empty(&self) -> bool {
        self.resources.values().all(Vec::is_empty)
    }

    /// The resource names, sorted.
    pub fn resource_names(&self) -> impl Iterator<Item = &str> {
        self.resources.keys().map(String::as_str)
    }
}

/// The device a planned network was given; persisted with the plan, so that DEL needs
/// neither the kubelet nor the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AssignedDevice {
    /// The device ID injected as `deviceID` and `pciBusID`.
    #[serde(rename = "deviceID")]
    pub device_id: String,
    /// Where it came from.
    pub source: DeviceSource,
    /// The file name of the CNI's device-info copy under the device-info directory's
    /// `cni/`, when one was set up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_info_file: Option<String>,
}

/// Hands out device IDs to networks in annotation order: each network takes the next
/// unused device of its resource.
#[derive(Debug)]
pub struct DeviceAssigner<'a> {
    map: &'a ResourceMap,
    used: BTreeMap<String, usize>,
}

impl<'a> DeviceAssigner<'a> {
    /// An assigner over the pod's map.
    pub fn new(map: &'a ResourceMap) -> Self {
        Self {
            map,
            used: BTreeMap::new(),
        }
    }

    /// The next unused device of `resource`, or `None` when every one is taken.
    pub fn next(&mut self, resource: &str) -> Option<&'a DeviceEntry> {
        let index = self.used.entry(resource.to_owned()).or_default();
        let entry = self.map.devices(resource).get(*index)?;
        *index += 1;
        Some(entry)
    }
}

/// The longest file name the device-info files may have (a file system's limit).
const MAX_FILE_NAME: usize = 255;

/// A file-name component with `/` replaced by `-` as the device-info spec maps it;
/// `None` when what is left could still escape or confuse the directory (`..`,
/// control characters, anything beyond letters, digits and `._:-`).
fn file_component(text: &str) -> Option<String> {
    let mapped = text.replace('/', "-");
    let safe = !mapped.is_empty()
        && !mapped.contains("..")
        && mapped
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'));
    safe.then_some(mapped)
}

fn bounded(name: String) -> Option<String> {
    (name.len() <= MAX_FILE_NAME).then_some(name)
}

/// The device plugin's device-info file name, `<resource>-<deviceID>-device.json`
/// (under `dp/`), or `None` when the names cannot make a safe file name.
pub fn device_plugin_info_file(resource: &str, device_id: &str) -> Option<String> {
    bounded(format!(
        "{}-{}-device.json",
        file_component(resource)?,
        file_component(device_id)?
    ))
}

/// The CNI's device-info file name, `<network>-<containerID>_<ifname>` (under `cni/`),
/// or `None` when the names cannot make a safe file name.
pub fn cni_info_file(network: &str, container_id: &str, ifname: &str) -> Option<String> {
    bounded(format!(
        "{}-{}_{}",
        file_component(network)?,
        file_component(container_id)?,
        file_component(ifname)?
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_take_devices_in_order_and_run_out() {
        let mut map = ResourceMap::default();
        map.push(
            "intel.com/sriov",
            "0000:03:02.0",
            DeviceSource::PodResources,
        );
        map.push(
            "intel.com/sriov",
            "0000:03:02.1",
            DeviceSource::PodResources,
        );
        let mut dra = ResourceMap::default();
        dra.push("intel.com/sriov", "0000:03:02.1", DeviceSource::Dra);
        dra.push("intel.com/sriov", "0000:81:00.4", DeviceSource::Dra);
        map.extend(dra);
        let mut assigner = DeviceAssigner::new(&map);
        let ids: Vec<_> = std::iter::from_fn(|| assigner.next("intel.com/sriov"))
            .map(|e| (e.device_id.as_str(), e.source))
            .collect();
        assert_eq!(
            ids,
            [
                ("0000:03:02.0", DeviceSource::PodResources),
                ("0000:03:02.1", DeviceSource::PodResources),
                ("0000:81:00.4", DeviceSource::Dra),
            ]
        );
        assert!(assigner.next("intel.com/sriov").is_none());
        assert!(assigner.next("other/res").is_none());
    }

    #[test]
    fn device_info_names_follow_the_spec_and_refuse_hostile_input() {
        assert_eq!(
            device_plugin_info_file("intel.com/sriov", "0000:03:02.0").as_deref(),
            Some("intel.com-sriov-0000:03:02.0-device.json")
        );
        assert_eq!(
            cni_info_file("default/sriov-net", "abc123", "net1").as_deref(),
            Some("default-sriov-net-abc123_net1")
        );
        for (resource, id) in [
            ("intel.com/sriov", "../../etc/passwd"),
            ("..", "x"),
            ("a/b", "x\0y"),
            ("a", ""),
            ("a b", "x"),
            ("a", "x\ny"),
        ] {
            assert_eq!(
                device_plugin_info_file(resource, id),
                None,
                "{resource:?} {id:?}"
            );
        }
        assert_eq!(cni_info_file("ns/n", &"c".repeat(300), "net1"), None);
    }

    proptest::proptest! {
        #[test]
        fn device_info_names_are_always_plain_file_names(
            resource in ".{0,80}",
            device in ".{0,80}",
            container in "[a-zA-Z0-9_.-]{0,80}",
        ) {
            for name in [
                device_plugin_info_file(&resource, &device),
                cni_info_file(&resource, &container, &device),
            ]
            .into_iter()
            .flatten()
            {
                proptest::prop_assert!(!name.contains('/') && !name.contains(".."), "{}", name);
                proptest::prop_assert!(!name.is_empty() && name.len() <= MAX_FILE_NAME);
                proptest::prop_assert!(name != "." && name != "..");
            }
        }
    }

    #[test]
    fn assigned_device_round_trips_with_upstream_key_names() {
        let device = AssignedDevice {
            device_id: "0000:03:02.0".into(),
            source: DeviceSource::Checkpoint,
            device_info_file: None,
        };
        let json = serde_json::to_string(&device).unwrap();
        assert_eq!(json, r#"{"deviceID":"0000:03:02.0","source":"checkpoint"}"#);
        assert_eq!(
            serde_json::from_str::<AssignedDevice>(&json).unwrap(),
            device
        );
    }
}
