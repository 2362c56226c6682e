//! The node's device sources for networks with a `resourceName`: the kubelet's
//! pod-resources gRPC API, the device manager's checkpoint when the socket is absent,
//! DRA ResourceClaims through the Kubernetes API, and the device-info files of the
//! NPWG device-info spec. Nothing here runs unless a selected network has a
//! `resourceName`.

pub mod checkpoint;
pub mod info;
pub mod podresources;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use multus_core::config::MultusConf;
use multus_core::devices::ResourceMap;
use multus_core::request::PodRef;
use multus_core::seams::{DeviceError, DeviceResources};

/// Upstream's time limit for the kubelet's gRPC API.
pub const POD_RESOURCES_TIMEOUT: Duration = Duration::from_secs(10);
/// Upstream's overall time limit for the DRA lookups.
pub const DRA_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the node keeps what the devices sources read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DevicePaths {
    /// The kubelet's pod-resources socket.
    pub pod_resources_socket: PathBuf,
    /// The device manager's checkpoint.
    pub checkpoint: PathBuf,
    /// The device-info directory (`dp/`, `cni/`).
    pub device_info_dir: PathBuf,
}

impl DevicePaths {
    /// The paths of a multus configuration.
    pub fn from_conf(conf: &MultusConf) -> Self {
        Self {
            pod_resources_socket: conf.pod_resources_socket.clone(),
            checkpoint: conf.device_checkpoint.clone(),
            device_info_dir: conf.device_info_dir.clone(),
        }
    }
}

/// DRA: the devices of a pod's allocated ResourceClaims that carry the CNI attributes.
#[async_trait]
pub trait DraSource: Send + Sync {
    /// `None` when the pod has no ResourceClaims.
    async fn dra_devices(&self, pod: &PodRef) -> Result<Option<ResourceMap>, DeviceError>;
}

/// The real [`DeviceResources`] of a node.
pub struct NodeDevices<'a> {
    paths: DevicePaths,
    dra: Option<&'a dyn DraSource>,
    pod_resources_timeout: Duration,
}

impl std::fmt::Debug for NodeDevices<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeDevices")
            .field("paths", &self.paths)
            .field("dra", &self.dra.is_some())
            .finish()
    }
}

impl<'a> NodeDevices<'a> {
    /// Devices from the kubelet (socket, else checkpoint) and, with a Kubernetes API,
    /// from DRA.
    pub fn new(paths: DevicePaths, dra: Option<&'a dyn DraSource>) -> Self {
        Self {
            paths,
            dra,
            pod_resources_timeout: POD_RESOURCES_TIMEOUT,
        }
    }

    /// The kubelet's devices of the pod: `None` when neither the socket nor the
    /// checkpoint exists.
    async fn kubelet_devices(&self, pod: &PodRef) -> Result<Option<ResourceMap>, DeviceError> {
        let socket = &self.paths.pod_resources_socket;
        if socket.exists() {
            return podresources::pod_devices(socket, pod, self.pod_resources_timeout)
                .await
                .map(Some);
        }
        let checkpoint = &self.paths.checkpoint;
        if checkpoint.exists() {
            tracing::debug!(socket = %socket.display(), "no kubelet pod-resources socket; reading the device-manager checkpoint");
            return checkpoint::pod_devices(checkpoint, &pod.uid).map(Some);
        }
        Ok(None)
    }
}

#[async_trait]
impl DeviceResources for NodeDevices<'_> {
    async fn pod_devices(&self, pod: &PodRef) -> Result<ResourceMap, DeviceError> {
        on_tokio(async {
            let kubelet = self.kubelet_devices(pod).await?;
            let dra = match self.dra {
                Some(dra) => dra.dra_devices(pod).await?,
                None => None,
            };
            match (kubelet, dra) {
                (None, None) => Err(DeviceError::Unavailable(format!(
                    "no kubelet pod-resources socket at {}, no device-manager checkpoint at {}{}",
                    self.paths.pod_resources_socket.display(),
                    self.paths.checkpoint.display(),
                    if self.dra.is_some() {
                        ", and the pod has no DRA ResourceClaims"
                    } else {
                        ", and no Kubernetes API for DRA"
                    }
                ))),
                (kubelet, dra) => {
                    let mut map = kubelet.unwrap_or_default();
                    map.extend(dra.unwrap_or_default());
                    Ok(map)
                }
            }
        })
        .await
    }

    fn prepare_device_info(&self, dp_file: &str, cni_file: &str) -> Option<String> {
        info::DeviceInfoDir::new(&self.paths.device_info_dir).prepare(dp_file, cni_file)
    }

    fn device_info(&self, cni_file: &str) -> Option<serde_json::Value> {
        info::DeviceInfoDir::new(&self.paths.device_info_dir).load(cni_file)
    }

    fn remove_device_info(&self, cni_file: &str) {
        info::DeviceInfoDir::new(&self.paths.device_info_dir).remove(cni_file);
    }
}

/// Run `work` on a tokio runtime: the current one (thin plugin with an API, daemon), or a
/// current-thread runtime made for it (thin plugin without an API, which runs on
/// pollster).
async fn on_tokio<T>(work: impl Future<Output = Result<T, DeviceError>>) -> Result<T, DeviceError> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return work.await;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DeviceError::Failed(format!("cannot start the I/O runtime: {e}")))?;
    runtime.block_on(work)
}
