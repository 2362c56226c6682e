//! The kubelet's pod-resources API (`v1.PodResourcesLister`, gRPC over its Unix
//! socket): `Get` for the one pod (kubelet 1.27 and later), `List` filtered by name and
//! namespace when `Get` is unimplemented. Device IDs of every container, sorted per
//! resource.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use multus_core::devices::{DeviceSource, ResourceMap};
use multus_core::request::PodRef;
use multus_core::seams::DeviceError;
use tonic::Code;
use tonic::transport::{Endpoint, Uri};

/// The generated types, client and server of `v1/api.proto` (the server is for tests
/// and for fakes of the kubelet).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod api {
    include!("podresources_v1.rs");
}

use api::pod_resources_lister_client::PodResourcesListerClient;
use api::{GetPodResourcesRequest, ListPodResourcesRequest, PodResources};

/// Upstream's limit on one answer (`List` returns every pod of the node).
const MAX_MESSAGE: usize = 16 << 20;

/// The pod's devices according to the kubelet listening on `socket`.
pub async fn pod_devices(
    socket: &Path,
    pod: &PodRef,
    timeout: Duration,
) -> Result<ResourceMap, DeviceError> {
    let failed = |reason: String| {
        DeviceError::Failed(format!(
            "kubelet pod-resources API at {}: {reason}",
            socket.display()
        ))
    };
    let lookup = async {
        let mut client = connect(socket.to_owned(), timeout)
            .await
            .map_err(|e| failed(format!("cannot connect: {e}")))?;
        let resources = match client
            .get(GetPodResourcesRequest {
                pod_name: pod.name.clone(),
                pod_namespace: pod.namespace.clone(),
            })
            .await
        {
            Ok(answer) => answer.into_inner().pod_resources.into_iter().collect(),
            Err(status) if status.code() == Code::Unimplemented => {
                tracing::debug!("kubelet has no pod-resources Get; listing every pod");
                let all = client
                    .list(ListPodResourcesRequest {})
                    .await
                    .map_err(|s| failed(format!("List: {}", s.message())))?;
                all.into_inner()
                    .pod_resources
                    .into_iter()
                    .filter(|p| p.name == pod.name && p.namespace == pod.namespace)
                    .collect()
            }
            Err(status) if status.code() == Code::NotFound => Vec::new(),
            Err(status) => {
                return Err(failed(format!(
                    "Get: {:?}: {}",
                    status.code(),
                    status.message()
                )));
            }
        };
        Ok(resource_map(&resources))
    };
    tokio::time::timeout(timeout, lookup)
        .await
        .map_err(|_| failed(format!("no answer within {} s", timeout.as_secs_f64())))?
}

async fn connect(
    socket: PathBuf,
    timeout: Duration,
) -> Result<PodResourcesListerClient<tonic::transport::Channel>, tonic::transport::Error> {
    // The URI is required by the API but unused: the connector dials the socket.
    let channel = Endpoint::from_static("http://localhost")
        .connect_timeout(timeout)
        .timeout(timeout)
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let socket = socket.clone();
            async move {
                tokio::net::UnixStream::connect(socket)
                    .await
                    .map(TokioIo::new)
            }
        }))
        .await?;
    Ok(PodResourcesListerClient::new(channel)
        .max_decoding_message_size(MAX_MESSAGE)
        .max_encoding_message_size(MAX_MESSAGE))
}

/// Device IDs of every container of the pods, by resource, sorted.
pub fn resource_map(pods: &[PodResources]) -> ResourceMap {
    let mut resources: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for container in pods.iter().flat_map(|p| &p.containers) {
        for devices in &container.devices {
            resources
                .entry(&devices.resource_name)
                .or_default()
                .extend(devices.device_ids.iter().map(String::as_str));
        }
    }
    let mut map = ResourceMap::default();
    for (resource, ids) in resources {
        for id in ids {
            map.push(resource, id, DeviceSource::PodResources);
        }
    }
    map
}
