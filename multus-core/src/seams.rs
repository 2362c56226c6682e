//! The side-effect traits the engine runs over.
//!
//! Each has a real implementation in `multus-cni` (and in the daemon) and a fake in the
//! tests. Keeping every side effect behind these traits is what lets other CNI projects
//! embed the engine with their own I/O.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::cni::CniError;
use crate::nad::{NetworkAttachmentDefinition, NetworkStatus};
use crate::request::{Command, PodRef};
use crate::state::SandboxState;
use crate::upstream::{UnknownAttachments, UpstreamSandbox};

/// What the cluster knows about a pod.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodInfo {
    /// The pod's UID.
    pub uid: String,
    /// The pod's annotations.
    pub annotations: BTreeMap<String, String>,
}

/// A failure talking to the cluster.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The API could not be reached or answered with a transient failure.
    #[error("cluster API unavailable: {0}")]
    Unavailable(String),
    /// The API refused the request (401/403 and the like).
    #[error("cluster API refused the request: {0}")]
    Forbidden(String),
    /// Any other failure.
    #[error("cluster API error: {0}")]
    Other(String),
}

/// An event to record on a pod.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PodEvent {
    /// `Normal` or `Warning`.
    pub kind: String,
    /// e.g. `AddedInterface`, `NoNetworkFound`.
    pub reason: String,
    /// Human-readable message.
    pub message: String,
}

/// Access to pods and NetworkAttachmentDefinitions.
#[async_trait]
pub trait ClusterApi: Send + Sync {
    /// Whether this source really knows the cluster's pods (a Kubernetes API), so that
    /// `pod` returning `None` means "the pod does not exist". Sources without pods
    /// (file-based NADs, no cluster) keep the default `false`.
    fn has_pods(&self) -> bool {
        false
    }
    /// The pod, or `None` when it does not exist or this source has no pods.
    async fn pod(&self, pod: &PodRef) -> Result<Option<PodInfo>, ApiError>;
    /// A NetworkAttachmentDefinition, or `None` when it does not exist.
    async fn network_attachment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<NetworkAttachmentDefinition>, ApiError>;
    /// Record the pod's network-status after ADD.
    async fn set_network_status(
        &self,
        pod: &PodRef,
        status: &[NetworkStatus],
    ) -> Result<(), ApiError>;
    /// Record an event on the pod (best effort).
    async fn emit_event(&self, pod: &PodRef, event: &PodEvent) -> Result<(), ApiError>;
}

/// One call of a delegate plugin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExecRequest {
    /// The plugin's `type`, the binary name (already validated: no `/`, no `..`).
    pub plugin_type: String,
    /// The CNI command.
    pub command: Command,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS`.
    pub netns: String,
    /// `CNI_IFNAME`.
    pub ifname: String,
    /// `CNI_ARGS`.
    pub args: String,
    /// Directories searched for the plugin, in order; also passed as `CNI_PATH`.
    pub search_path: Vec<PathBuf>,
    /// The config document for the plugin's stdin.
    pub stdin: Vec<u8>,
    /// Time limit for the call.
    pub timeout: std::time::Duration,
}

/// A failed delegate call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// No binary of that name in the search path.
    #[error("failed to find plugin {plugin:?} in path {searched:?}")]
    NotFound {
        /// The plugin type.
        plugin: String,
        /// Directories searched.
        searched: Vec<PathBuf>,
    },
    /// The plugin answered with a CNI error.
    #[error("plugin {plugin:?} failed: {error}")]
    Plugin {
        /// The plugin type.
        plugin: String,
        /// The error it printed.
        error: CniError,
    },
    /// The plugin exited non-zero without a CNI error document.
    #[error("plugin {plugin:?} failed ({status}): {stderr}")]
    Crashed {
        /// The plugin type.
        plugin: String,
        /// Exit status text.
        status: String,
        /// Its standard error, trimmed.
        stderr: String,
    },
    /// The plugin did not finish in time and was killed.
    #[error("plugin {plugin:?} did not finish within {seconds} s and was killed")]
    Timeout {
        /// The plugin type.
        plugin: String,
        /// The limit.
        seconds: u64,
    },
    /// The plugin exited 0 but what it printed is not a CNI result of its version.
    #[error("plugin {plugin:?} succeeded but printed an invalid CNI result: {reason}")]
    InvalidResult {
        /// The plugin type.
        plugin: String,
        /// What is wrong with the result.
        reason: String,
    },
    /// The plugin printed more than multus keeps (stdout or stderr) and was killed.
    #[error(
        "plugin {plugin:?} printed more than {limit} bytes on {stream} and was killed; a CNI plugin prints one result document"
    )]
    OutputTooLarge {
        /// The plugin type.
        plugin: String,
        /// `stdout` or `stderr`.
        stream: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// The plugin could not be started.
    #[error("plugin {plugin:?} could not be started: {reason}")]
    Spawn {
        /// The plugin type.
        plugin: String,
        /// The OS error.
        reason: String,
    },
}

impl ExecError {
    /// The CNI error code to report for this failure.
    pub fn cni_code(&self) -> u32 {
        match self {
            Self::Plugin { error, .. } => error.code,
            Self::NotFound { .. } => crate::cni::ErrorCode::InvalidNetworkConfig.code(),
            _ => crate::cni::ErrorCode::DelegateFailed.code(),
        }
    }
}

/// Runs delegate plugin binaries.
#[async_trait]
pub trait DelegateExec: Send + Sync {
    /// Run the plugin and return its stdout on success.
    async fn exec(&self, request: ExecRequest) -> Result<Vec<u8>, ExecError>;

    /// [`DelegateExec::exec`], for a call that runs at the same time as others of the
    /// same request (parallel attach). An implementation whose `exec` blocks the calling
    /// thread runs the call elsewhere here, so that the calls overlap; the default is
    /// `exec` itself, right for an implementation that is asynchronous already.
    async fn exec_concurrently(&self, request: ExecRequest) -> Result<Vec<u8>, ExecError> {
        self.exec(request).await
    }
}

/// A failure of the state store.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// Reading or writing failed.
    #[error("state store I/O error on {path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The stored record is unreadable; it was moved aside to `kept_at`.
    #[error("state of container {container_id} is corrupt ({reason}); kept at {kept_at}")]
    Corrupt {
        /// The container.
        container_id: String,
        /// What was wrong.
        reason: String,
        /// Where the bad file was moved for inspection.
        kept_at: PathBuf,
    },
    /// The store cannot keep a record under this container ID (for the file store: its
    /// record's file name would exceed the file system's 255 bytes). Nothing of it can
    /// have been stored, so only ADD fails with this; DEL finds nothing recorded.
    #[error(
        "container ID {container_id:?} is {length} bytes long; the state store keeps records of IDs up to {limit} bytes: the runtime must use a shorter container ID"
    )]
    Unstorable {
        /// The container ID.
        container_id: String,
        /// Its length in bytes.
        length: usize,
        /// The longest ID the store keeps.
        limit: usize,
    },
}

/// Held while one container's state is being worked on; dropping it releases the lock.
pub trait StateLock: Send + std::fmt::Debug {}

/// The per-sandbox record of what was attached.
///
/// Every method is asynchronous because a real store does file I/O that waits (`flock`,
/// `fsync`): an implementation on a shared runtime runs it off the async workers (the
/// daemon's store uses `spawn_blocking`); one that serves a single request on its own
/// runtime may block inside the future.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// Serialise all work on one container ID (waits until the lock is free).
    async fn lock(&self, container_id: &str) -> Result<Box<dyn StateLock>, StateError>;
    /// Read the record, `None` when there is none.
    async fn load(&self, container_id: &str) -> Result<Option<SandboxState>, StateError>;
    /// Write the record atomically and durably: DEL relies on it after a crash.
    async fn save(&self, state: &SandboxState) -> Result<(), StateError>;
    /// Replace a record that [`StateStore::save`] made durable with a newer version
    /// (ADD's results), atomically but without waiting for the disk: after a crash the
    /// older record, from which DEL works as well, may be what is found. Defaults to
    /// `save`.
    async fn update(&self, state: &SandboxState) -> Result<(), StateError> {
        self.save(state).await
    }
    /// Remove the record (no error when absent).
    async fn remove(&self, container_id: &str) -> Result<(), StateError>;
    /// The container IDs that have a record.
    async fn list(&self) -> Result<Vec<String>, StateError>;

    /// What upstream Go Multus left for this container in the same `cniDir` (its scratch
    /// cache and libcni's result cache), for sandboxes it attached before multus-rs took
    /// over the node. Stores that know no such caches keep the default (`None`).
    async fn upstream(&self, container_id: &str) -> Result<Option<UpstreamSandbox>, StateError> {
        let _ = container_id;
        Ok(None)
    }
    /// Remove upstream's cache files of a sandbox once it is deleted.
    async fn remove_upstream(&self, sandbox: &UpstreamSandbox) -> Result<(), StateError> {
        let _ = sandbox;
        Ok(())
    }
    /// The container IDs upstream has a scratch cache for.
    async fn list_upstream(&self) -> Result<Vec<String>, StateError> {
        Ok(Vec::new())
    }
    /// Note (`Some`) that a DEL had to guess what this sandbox had attached, so that
    /// operators can find it; or forget the note (`None`) once a DEL knew everything.
    async fn note_unknown(
        &self,
        container_id: &str,
        note: Option<&UnknownAttachments>,
    ) -> Result<(), StateError> {
        let _ = (container_id, note);
        Ok(())
    }
}

/// A failure inspecting a network namespace.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetnsError {
    /// The path is not a network namespace.
    #[error("no network namespace at {path}: {reason}")]
    NoSuchNetns {
        /// The path given.
        path: String,
        /// The OS error.
        reason: String,
    },
    /// Anything else.
    #[error("network namespace {path}: {reason}")]
    Other {
        /// The path given.
        path: String,
        /// What failed.
        reason: String,
    },
}

/// A default route inside the pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DefaultRoute {
    /// The interface it leaves through.
    pub ifname: String,
    /// Its gateway, if any.
    pub gateway: Option<std::net::IpAddr>,
    /// IPv4 (else IPv6).
    pub ipv4: bool,
}

/// What multus itself does inside the pod's network namespace.
#[async_trait]
pub trait NetnsOps: Send + Sync {
    /// The addresses on `ifname`, or `None` when there is no such interface.
    async fn link_addresses(
        &self,
        netns: &str,
        ifname: &str,
    ) -> Result<Option<Vec<std::net::IpAddr>>, NetnsError>;

    /// The default routes of the pod (main table, both families).
    async fn default_routes(&self, netns: &str) -> Result<Vec<DefaultRoute>, NetnsError>;

    /// Make `default via gateway dev ifname` the pod's only default route of the
    /// gateway's family.
    async fn replace_default_route(
        &self,
        netns: &str,
        ifname: &str,
        gateway: std::net::IpAddr,
    ) -> Result<(), NetnsError>;

    /// Delete every default route that leaves through `ifname`.
    async fn remove_default_routes(&self, netns: &str, ifname: &str) -> Result<(), NetnsError>;

    /// Whether a link with this name exists in the namespace.
    async fn link_exists(&self, netns: &str, ifname: &str) -> Result<bool, NetnsError>;

    /// Which of `names` exist in the namespace. Implementations may answer all names in
    /// one visit of the namespace.
    async fn existing_links(
        &self,
        netns: &str,
        names: &[String],
    ) -> Result<Vec<String>, NetnsError> {
        let mut existing = Vec::new();
        for name in names {
            if self.link_exists(netns, name).await? {
                existing.push(name.clone());
            }
        }
        Ok(existing)
    }
}

/// Read access to CNI config files on the node (`confDir`, file-based cluster networks).
///
/// Reads are synchronous: they read a few small local files written by the node's admin
/// and never wait for anything, so they cost no more than the parsing around them.
/// Only [`ConfigFiles::wait_for`], which sleeps between checks, is asynchronous.
#[async_trait]
pub trait ConfigFiles: Send + Sync {
    /// Read one file.
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>>;
    /// Whether the path is a directory.
    fn is_dir(&self, path: &Path) -> bool;
    /// The `*.conf`, `*.json` and `*.conflist` files of a directory with their contents,
    /// sorted by path. A directory that does not exist is an
    /// [`std::io::ErrorKind::NotFound`] error or an empty list (subdirectory chaining
    /// takes both as "no plugins").
    fn list_configs(&self, dir: &Path) -> std::io::Result<Vec<(PathBuf, Vec<u8>)>>;
    /// Whether something exists at the path.
    fn exists(&self, path: &Path) -> bool {
        self.is_dir(path) || self.read(path).is_ok()
    }
    /// Wait until something exists at `path`, checking every `interval` for at most
    /// `timeout`; whether it exists. The default checks once; the node's implementations
    /// poll, sleeping without holding a thread of a shared runtime.
    async fn wait_for(
        &self,
        path: &Path,
        timeout: std::time::Duration,
        interval: std::time::Duration,
    ) -> bool {
        let _ = (timeout, interval);
        self.exists(path)
    }
}

/// Why the pod's device resources could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeviceError {
    /// No source of device IDs exists on this node (no kubelet pod-resources socket, no
    /// device-manager checkpoint, no DRA claims).
    #[error("no source of device IDs answered: {0}")]
    Unavailable(String),
    /// A source exists but failed (gRPC error, unreadable checkpoint, API failure).
    #[error("{0}")]
    Failed(String),
}

/// The devices the kubelet and DRA allocated to a pod, and the device-info files of the
/// NPWG device-info spec. Only called when a selected network has a `resourceName`.
#[async_trait]
pub trait DeviceResources: Send + Sync {
    /// The pod's devices by resource name: the kubelet's (pod-resources API, else the
    /// device-manager checkpoint) followed by those of its DRA claims.
    async fn pod_devices(&self, pod: &PodRef) -> Result<crate::devices::ResourceMap, DeviceError>;

    /// Copy the device plugin's device-info file `dp_file` (if it left one) to the
    /// CNI's file `cni_file`, and return the CNI file's path for the delegate's
    /// `CNIDeviceInfoFile`; `None` when this node keeps no device-info files. Both names
    /// are plain file names (see [`crate::devices`]).
    fn prepare_device_info(&self, dp_file: &str, cni_file: &str) -> Option<String> {
        let _ = (dp_file, cni_file);
        None
    }

    /// The contents of the CNI's device-info file, for network-status.
    fn device_info(&self, cni_file: &str) -> Option<serde_json::Value> {
        let _ = cni_file;
        None
    }

    /// Remove the CNI's device-info file (no error when absent).
    fn remove_device_info(&self, cni_file: &str) {
        let _ = cni_file;
    }
}

/// A node without device sources: every `resourceName` network fails to find a device.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoDevices;

#[async_trait]
impl DeviceResources for NoDevices {
    async fn pod_devices(&self, _pod: &PodRef) -> Result<crate::devices::ResourceMap, DeviceError> {
        Err(DeviceError::Unavailable(
            "this multus has no kubelet, checkpoint or DRA access configured".into(),
        ))
    }
}
