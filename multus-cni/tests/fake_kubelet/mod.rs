//! A fake kubelet pod-resources gRPC server (tonic) on a Unix socket, answering `Get`
//! and `List` with the devices it was given; optionally one that predates `Get`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use multus_cni::devices::podresources::api::pod_resources_lister_server::{
    PodResourcesLister, PodResourcesListerServer,
};
use multus_cni::devices::podresources::api::{
    AllocatableResourcesRequest, AllocatableResourcesResponse, ContainerDevices,
    ContainerResources, GetPodResourcesRequest, GetPodResourcesResponse, ListPodResourcesRequest,
    ListPodResourcesResponse, PodResources,
};
use tonic::{Request, Response, Status};

/// What the fake kubelet knows and was asked.
#[derive(Clone, Default)]
pub struct Kubelet {
    pods: Vec<PodResources>,
    /// Answer `Get` with Unimplemented, as kubelets before 1.27 do.
    list_only: bool,
    calls: Arc<Mutex<Vec<String>>>,
}

impl Kubelet {
    /// A kubelet with no pods.
    pub fn new(list_only: bool) -> Self {
        Self {
            list_only,
            ..Self::default()
        }
    }

    /// A pod with one container per `(container, resource, device IDs)`.
    pub fn with_pod(
        mut self,
        namespace: &str,
        name: &str,
        devices: &[(&str, &str, &[&str])],
    ) -> Self {
        self.pods.push(PodResources {
            name: name.into(),
            namespace: namespace.into(),
            containers: devices
                .iter()
                .map(|(container, resource, ids)| ContainerResources {
                    name: (*container).into(),
                    devices: vec![ContainerDevices {
                        resource_name: (*resource).into(),
                        device_ids: ids.iter().map(|id| (*id).to_owned()).collect(),
                        topology: None,
                    }],
                    ..ContainerResources::default()
                })
                .collect(),
            ..PodResources::default()
        });
        self
    }

    /// The calls received, as `Get ns/name` or `List`.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }

    /// Serve on a socket at `socket` from a thread of its own (the server stops when the
    /// test process ends).
    pub fn serve(&self, socket: &Path) -> PathBuf {
        let listener = std::os::unix::net::UnixListener::bind(socket).unwrap();
        listener.set_nonblocking(true).unwrap();
        let kubelet = self.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::UnixListener::from_std(listener).unwrap();
                let incoming = futures_util::stream::unfold(listener, |listener| async move {
                    let accepted = listener.accept().await.map(|(stream, _)| stream);
                    Some((accepted, listener))
                });
                tonic::transport::Server::builder()
                    .add_service(PodResourcesListerServer::new(kubelet))
                    .serve_with_incoming(incoming)
                    .await
                    .unwrap();
            });
        });
        socket.to_owned()
    }
}

#[tonic::async_trait]
impl PodResourcesLister for Kubelet {
    async fn list(
        &self,
        _request: Request<ListPodResourcesRequest>,
    ) -> Result<Response<ListPodResourcesResponse>, Status> {
        self.calls.lock().unwrap().push("List".into());
        Ok(Response::new(ListPodResourcesResponse {
            pod_resources: self.pods.clone(),
        }))
    }

    async fn get_allocatable_resources(
        &self,
        _request: Request<AllocatableResourcesRequest>,
    ) -> Result<Response<AllocatableResourcesResponse>, Status> {
        Err(Status::unimplemented("not in this fake"))
    }

    async fn get(
        &self,
        request: Request<GetPodResourcesRequest>,
    ) -> Result<Response<GetPodResourcesResponse>, Status> {
        let request = request.into_inner();
        self.calls.lock().unwrap().push(format!(
            "Get {}/{}",
            request.pod_namespace, request.pod_name
        ));
        if self.list_only {
            return Err(Status::unimplemented("unknown method Get"));
        }
        self.pods
            .iter()
            .find(|p| p.name == request.pod_name && p.namespace == request.pod_namespace)
            .map(|p| {
                Response::new(GetPodResourcesResponse {
                    pod_resources: Some(p.clone()),
                })
            })
            .ok_or_else(|| Status::not_found("pod not found"))
    }
}
