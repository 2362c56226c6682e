//! The kubelet device manager's checkpoint
//! (`/var/lib/kubelet/device-plugins/kubelet_internal_checkpoint`): the devices it lists
//! for one pod (`Data.PodDeviceEntries[]` matched by pod UID), sorted per resource.
//! Reading the file is the node's business (multus-cni).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use serde_json::Value;

use super::{DeviceSource, ResourceMap};

#[derive(Deserialize)]
struct Checkpoint {
    #[serde(rename = "Data")]
    data: Data,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "PodDeviceEntries", default)]
    entries: Option<Vec<Entry>>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(rename = "PodUID", default)]
    pod_uid: String,
    #[serde(rename = "ResourceName", default)]
    resource_name: String,
    /// `{numa node: [ids]}` since Kubernetes 1.20, `[ids]` before.
    #[serde(rename = "DeviceIDs", default)]
    device_ids: Value,
}

/// The devices of `pod_uid` in a checkpoint document.
pub fn parse(bytes: &[u8], pod_uid: &str) -> Result<ResourceMap, serde_json::Error> {
    let checkpoint: Checkpoint = serde_json::from_slice(bytes)?;
    let mut resources: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let entries = checkpoint.data.entries.unwrap_or_default();
    for entry in entries
        .iter()
        .filter(|e| !pod_uid.is_empty() && e.pod_uid == pod_uid)
    {
        let ids = resources.entry(entry.resource_name.clone()).or_default();
        collect_ids(&entry.device_ids, ids);
    }
    let mut map = ResourceMap::default();
    for (resource, ids) in resources {
        for id in ids {
            map.push(&resource, &id, DeviceSource::Checkpoint);
        }
    }
    Ok(map)
}

fn collect_ids(value: &Value, into: &mut BTreeSet<String>) {
    match value {
        Value::String(id) => {
            into.insert(id.clone());
        }
        Value::Array(items) => items.iter().for_each(|v| collect_ids(v, into)),
        Value::Object(numa) => numa.values().for_each(|v| collect_ids(v, into)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_of_the_pod_are_found_by_uid_and_sorted() {
        let doc = br#"{"Data":{"PodDeviceEntries":[
            {"PodUID":"u1","ContainerName":"a","ResourceName":"intel.com/sriov","DeviceIDs":{"0":["0000:03:02.3","0000:03:02.1"]},"AllocResp":"x"},
            {"PodUID":"u2","ContainerName":"a","ResourceName":"intel.com/sriov","DeviceIDs":{"0":["0000:03:02.2"]}},
            {"PodUID":"u1","ContainerName":"b","ResourceName":"intel.com/sriov","DeviceIDs":{"1":["0000:81:00.1"]}},
            {"PodUID":"u1","ContainerName":"b","ResourceName":"old/list","DeviceIDs":["z","y"]}],
            "RegisteredDevices":{}},"Checksum":1}"#;
        let map = parse(doc, "u1").unwrap();
        let ids = |r| {
            map.devices(r)
                .iter()
                .map(|e| e.device_id.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            ids("intel.com/sriov"),
            ["0000:03:02.1", "0000:03:02.3", "0000:81:00.1"]
        );
        assert_eq!(ids("old/list"), ["y", "z"]);
        assert!(parse(doc, "").unwrap().is_empty());
        assert!(parse(doc, "nobody").unwrap().is_empty());
    }
}
