//! Device IDs for networks with a `resourceName`: the pod's resource map is read once
//! per ADD (only when such a network is selected), each network takes the next unused
//! device of its resource in plan order, and gets it as `deviceID`/`pciBusID` plus the
//! device-info file of the NPWG device-info spec.

use super::*;
use crate::devices::{AssignedDevice, DeviceAssigner, cni_info_file, device_plugin_info_file};

/// The runtimeConfig key of the device ID.
const DEVICE_ID_KEY: &str = "deviceID";
/// The runtimeConfig key of the device-info file.
const DEVICE_INFO_KEY: &str = "CNIDeviceInfoFile";

impl Engine<'_> {
    /// Give every planned network with a `resourceName` its device. Nothing has run
    /// yet: a failure leaves nothing to roll back but the device-info copies made so far.
    pub(super) async fn assign_devices(&self, plan: &mut Plan) -> Result<(), MultusError> {
        let Some(first) = plan.delegates.iter().find(|d| d.resource_name.is_some()) else {
            return Ok(());
        };
        let devices = self.seams.devices;
        let map = match devices.pod_devices(&self.request.pod).await {
            Ok(map) => map,
            Err(e) => {
                return Err(MultusError::Device {
                    pod: self.request.pod.clone(),
                    network: first.network.clone(),
                    resource: first.resource_name.clone().unwrap_or_default(),
                    reason: e.to_string(),
                });
            }
        };
        tracing::debug!(resources = ?map.resource_names().collect::<Vec<_>>(), "pod resource map");
        let mut assigner = DeviceAssigner::new(&map);
        for index in 0..plan.delegates.len() {
            let Some(resource) = plan.delegates[index].resource_name.clone() else {
                continue;
            };
            let Some(entry) = assigner.next(&resource) else {
                let available = map.devices(&resource).len();
                for earlier in &plan.delegates[..index] {
                    self.release_device(earlier);
                }
                return Err(MultusError::Device {
                    pod: self.request.pod.clone(),
                    network: plan.delegates[index].network.clone(),
                    resource,
                    reason: format!(
                        "the pod has {available} device(s) of it and earlier networks took them all; request one more of it in the pod's resources (or claims)"
                    ),
                });
            };
            let delegate = &mut plan.delegates[index];
            delegate.config = delegate.config.with_device_id(&entry.device_id);
            delegate
                .runtime_config
                .insert(DEVICE_ID_KEY.into(), Value::from(entry.device_id.clone()));
            let device_info_file = self.device_info_file(delegate, &resource, &entry.device_id);
            if let Some((_, path)) = &device_info_file {
                delegate
                    .runtime_config
                    .insert(DEVICE_INFO_KEY.into(), Value::from(path.clone()));
            }
            tracing::info!(network = %delegate.network, resource, device = %entry.device_id, source = %entry.source, "device assigned");
            delegate.device = Some(AssignedDevice {
                device_id: entry.device_id.clone(),
                source: entry.source,
                device_info_file: device_info_file.map(|(file, _)| file),
            });
        }
        Ok(())
    }

    /// Set up the CNI's device-info file of a delegate: `(file name, path)`.
    fn device_info_file(
        &self,
        delegate: &PlannedDelegate,
        resource: &str,
        device_id: &str,
    ) -> Option<(String, String)> {
        let names = device_plugin_info_file(resource, device_id).zip(cni_info_file(
            &delegate.network,
            &self.request.container_id,
            &delegate.ifname,
        ));
        let Some((dp_file, cni_file)) = names else {
            tracing::warn!(network = %delegate.network, resource, device = device_id, "resource name or device ID cannot make a device-info file name; no device-info for this network");
            return None;
        };
        let path = self
            .seams
            .devices
            .prepare_device_info(&dp_file, &cni_file)?;
        Some((cni_file, path))
    }

    /// Forget a delegate's device: remove its CNI device-info file (after its DEL).
    pub(super) fn release_device(&self, delegate: &PlannedDelegate) {
        if let Some(file) = delegate
            .device
            .as_ref()
            .and_then(|d| d.device_info_file.as_deref())
        {
            self.seams.devices.remove_device_info(file);
        }
    }

    /// Put the device-info of a delegate's device into its network-status entries.
    pub(super) fn add_device_info(
        &self,
        delegate: &PlannedDelegate,
        entries: &mut [NetworkStatus],
    ) {
        let Some(file) = delegate
            .device
            .as_ref()
            .and_then(|d| d.device_info_file.as_deref())
        else {
            return;
        };
        if let Some(info) = self.seams.devices.device_info(file) {
            for entry in entries.iter_mut() {
                entry.device_info = Some(info.clone());
            }
        }
    }
}
