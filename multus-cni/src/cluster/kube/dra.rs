//! DRA (`resource.k8s.io/v1`): the devices of a pod's allocated ResourceClaims that
//! carry the CNI attributes `k8s.cni.cncf.io/deviceID` and
//! `k8s.cni.cncf.io/resourceName` in this node's ResourceSlices.
//!
//! Devices without both attributes (a GPU beside an SR-IOV VF) and devices that no slice
//! of the pod's node lists are skipped with a log line, so that they never break the
//! pod. The claims a pod may name are bounded, and each driver's slices of the node are
//! listed once.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use http::StatusCode;
use kube::core::Request as KubeRequest;
use kube::core::params::{GetParams, ListParams};
use multus_core::devices::{DeviceSource, ResourceMap};
use multus_core::request::PodRef;
use multus_core::seams::DeviceError;
use serde::Deserialize;
use serde_json::Value;

use super::objects::{pods, segment};
use super::{KubeClusterApi, retry};
use crate::devices::{DRA_TIMEOUT, DraSource};

/// The device attribute naming the device ID delegates get.
pub const DEVICE_ID_ATTRIBUTE: &str = "k8s.cni.cncf.io/deviceID";
/// The device attribute naming the resource a NAD's `resourceName` matches.
pub const RESOURCE_NAME_ATTRIBUTE: &str = "k8s.cni.cncf.io/resourceName";
/// The most ResourceClaims of one pod looked at (Kubernetes allows 32 per pod).
const MAX_CLAIMS: usize = 32;
const DRA_PATH: &str = "/apis/resource.k8s.io/v1";

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PodObject {
    #[serde(default)]
    spec: PodSpec,
    #[serde(default)]
    status: PodStatus,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PodSpec {
    #[serde(default)]
    node_name: String,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PodStatus {
    #[serde(default)]
    resource_claim_statuses: Vec<ClaimStatus>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ClaimStatus {
    #[serde(default)]
    resource_claim_name: Option<String>,
}

#[derive(Deserialize)]
struct Claim {
    #[serde(default)]
    status: Option<ClaimState>,
}

#[derive(Deserialize)]
struct ClaimState {
    allocation: Option<Allocation>,
}

#[derive(Deserialize)]
struct Allocation {
    #[serde(default)]
    devices: AllocatedDevices,
}

#[derive(Deserialize, Default)]
struct AllocatedDevices {
    #[serde(default)]
    results: Vec<AllocationResult>,
}

#[derive(Deserialize)]
struct AllocationResult {
    driver: String,
    pool: String,
    device: String,
}

#[derive(Deserialize)]
struct SliceList {
    #[serde(default)]
    items: Vec<Slice>,
}

#[derive(Deserialize)]
struct Slice {
    spec: SliceSpec,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SliceSpec {
    driver: String,
    pool: Pool,
    #[serde(default)]
    node_name: Option<String>,
    #[serde(default)]
    devices: Vec<SliceDevice>,
}

#[derive(Deserialize)]
struct Pool {
    name: String,
}

#[derive(Deserialize)]
struct SliceDevice {
    name: String,
    #[serde(default)]
    attributes: BTreeMap<String, Value>,
}

/// The CNI attributes of a device: `(resourceName, deviceID)`.
type CniAttributes = (String, String);

/// `(driver, pool, device)` of one device.
type DeviceKey = (String, String, String);

fn string_attribute(attributes: &BTreeMap<String, Value>, key: &str) -> Option<String> {
    attributes
        .get(key)?
        .get("string")?
        .as_str()
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn failed(reason: String) -> DeviceError {
    DeviceError::Failed(format!("DRA: {reason}"))
}

impl KubeClusterApi {
    async fn fetch(
        &self,
        request: KubeRequest,
        name: Option<&str>,
        list: Option<ListParams>,
        what: &str,
    ) -> Result<Option<bytes::Bytes>, DeviceError> {
        let client = self.client().map_err(|e| failed(e.to_string()))?;
        let name = name.map(segment);
        let answer = retry::execute(client, self.policy, what, || match (&name, &list) {
            (Some(name), _) => request.get(name, &GetParams::default()),
            (None, Some(params)) => request.list(params),
            (None, None) => request.list(&ListParams::default()),
        })
        .await
        .map_err(|e| failed(e.to_string()))?;
        match answer.status {
            status if status.is_success() => Ok(Some(answer.body)),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(failed(format!("{what}: {}", answer.message()))),
        }
    }

    async fn claim_devices(&self, pod: &PodRef) -> Result<Option<ResourceMap>, DeviceError> {
        let what = format!("GET pod {}/{}", pod.namespace, pod.name);
        let Some(body) = self
            .fetch(pods(&pod.namespace), Some(&pod.name), None, &what)
            .await?
        else {
            return Ok(None);
        };
        let object: PodObject = serde_json::from_slice(&body)
            .map_err(|e| failed(format!("{what}: the pod does not parse: {e}")))?;
        let mut claims: Vec<String> = object
            .status
            .resource_claim_statuses
            .into_iter()
            .filter_map(|c| c.resource_claim_name)
            .collect();
        if claims.is_empty() {
            return Ok(None);
        }
        if claims.len() > MAX_CLAIMS {
            tracing::warn!(%pod, count = claims.len(), max = MAX_CLAIMS, "pod names more ResourceClaims than are looked at");
            claims.truncate(MAX_CLAIMS);
        }
        let node = object.spec.node_name;
        let mut results = Vec::new();
        for name in &claims {
            let what = format!("GET resourceclaim {}/{name}", pod.namespace);
            let collection = KubeRequest::new(format!(
                "{DRA_PATH}/namespaces/{}/resourceclaims",
                segment(&pod.namespace)
            ));
            let body = self
                .fetch(collection, Some(name), None, &what)
                .await?
                .ok_or_else(|| failed(format!("{what}: the pod's ResourceClaim does not exist")))?;
            let claim: Claim = serde_json::from_slice(&body)
                .map_err(|e| failed(format!("{what}: the claim does not parse: {e}")))?;
            let allocation = claim
                .status
                .and_then(|s| s.allocation)
                .ok_or_else(|| failed(format!("{what}: the claim is not allocated")))?;
            results.extend(allocation.devices.results);
        }
        let drivers: BTreeSet<&str> = results.iter().map(|r| r.driver.as_str()).collect();
        let mut index: HashMap<DeviceKey, CniAttributes> = HashMap::new();
        for driver in drivers {
            index.extend(self.node_devices(&node, driver).await?);
        }
        let mut map = ResourceMap::default();
        for result in &results {
            let key = (
                result.driver.clone(),
                result.pool.clone(),
                result.device.clone(),
            );
            match index.get(&key) {
                Some((resource, device_id)) => map.push(resource, device_id, DeviceSource::Dra),
                None => {
                    tracing::info!(%pod, driver = %result.driver, pool = %result.pool, device = %result.device, node = %node,
                    "allocated device has no {DEVICE_ID_ATTRIBUTE} and {RESOURCE_NAME_ATTRIBUTE} attributes in a ResourceSlice of the pod's node; not a CNI device, skipped")
                }
            }
        }
        Ok(Some(map))
    }

    /// The devices with CNI attributes in the ResourceSlices of `driver` on `node`.
    async fn node_devices(
        &self,
        node: &str,
        driver: &str,
    ) -> Result<HashMap<DeviceKey, CniAttributes>, DeviceError> {
        let what = format!("LIST resourceslices of driver {driver} on node {node}");
        let params =
            ListParams::default().fields(&format!("spec.nodeName={node},spec.driver={driver}"));
        let collection = KubeRequest::new(format!("{DRA_PATH}/resourceslices"));
        let Some(body) = self.fetch(collection, None, Some(params), &what).await? else {
            return Ok(HashMap::new());
        };
        let list: SliceList = serde_json::from_slice(&body)
            .map_err(|e| failed(format!("{what}: the list does not parse: {e}")))?;
        let mut devices = HashMap::new();
        // The server filters by the field selector; a server that does not is not trusted.
        for slice in list
            .items
            .into_iter()
            .filter(|s| s.spec.driver == driver && s.spec.node_name.as_deref() == Some(node))
        {
            for device in slice.spec.devices {
                let attributes = string_attribute(&device.attributes, RESOURCE_NAME_ATTRIBUTE)
                    .zip(string_attribute(&device.attributes, DEVICE_ID_ATTRIBUTE));
                if let Some(attributes) = attributes {
                    devices.insert(
                        (driver.to_owned(), slice.spec.pool.name.clone(), device.name),
                        attributes,
                    );
                }
            }
        }
        Ok(devices)
    }
}

#[async_trait]
impl DraSource for KubeClusterApi {
    async fn dra_devices(&self, pod: &PodRef) -> Result<Option<ResourceMap>, DeviceError> {
        if !pod.is_known() {
            return Ok(None);
        }
        tokio::time::timeout(DRA_TIMEOUT, self.claim_devices(pod))
            .await
            .map_err(|_| failed(format!("no answer within {} s", DRA_TIMEOUT.as_secs())))?
    }
}
