//! The node-side seams of `multus-cni` (state store, namespace inspection, config
//! files) block their caller: a `flock`, file writes with `fsync`, a thread that enters
//! the pod's namespace and is joined. On the daemon's runtime they run on the blocking
//! pool (`spawn_blocking`, `block_in_place`) so a worker thread never stalls, and a
//! container's lock held by one request never blocks the requests of other containers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use multus_cni::files::FsConfigFiles;
use multus_cni::netns::NetnsInspector;
use multus_cni::state_store::FileStateStore;
use multus_core::seams::{
    ConfigFiles, DefaultRoute, NetnsError, NetnsOps, StateError, StateLock, StateStore,
};
use multus_core::state::SandboxState;
use multus_core::upstream::{UnknownAttachments, UpstreamSandbox};

fn join_error(path: &Path, e: &tokio::task::JoinError) -> StateError {
    StateError::Io {
        path: path.to_owned(),
        source: std::io::Error::other(format!("state task failed: {e}")),
    }
}

/// [`FileStateStore`] off the async workers.
#[derive(Clone, Debug)]
pub struct BlockingStateStore {
    inner: Arc<FileStateStore>,
}

impl BlockingStateStore {
    /// The store under `<cni_dir>/sandboxes`.
    pub fn new(cni_dir: &Path) -> Self {
        Self {
            inner: Arc::new(FileStateStore::new(cni_dir)),
        }
    }
}

#[async_trait]
impl StateStore for BlockingStateStore {
    async fn lock(&self, container_id: &str) -> Result<Box<dyn StateLock>, StateError> {
        let inner = self.inner.clone();
        let id = container_id.to_owned();
        // The file store's lock completes without awaiting anything: it is a blocking
        // flock, run to completion on the blocking pool.
        tokio::task::spawn_blocking(move || pollster::block_on(inner.lock(&id)))
            .await
            .map_err(|e| join_error(self.inner.dir(), &e))?
    }

    fn load(&self, container_id: &str) -> Result<Option<SandboxState>, StateError> {
        tokio::task::block_in_place(|| self.inner.load(container_id))
    }

    fn save(&self, state: &SandboxState) -> Result<(), StateError> {
        tokio::task::block_in_place(|| self.inner.save(state))
    }

    fn update(&self, state: &SandboxState) -> Result<(), StateError> {
        tokio::task::block_in_place(|| self.inner.update(state))
    }

    fn remove(&self, container_id: &str) -> Result<(), StateError> {
        tokio::task::block_in_place(|| self.inner.remove(container_id))
    }

    fn list(&self) -> Result<Vec<String>, StateError> {
        tokio::task::block_in_place(|| self.inner.list())
    }

    fn upstream(&self, container_id: &str) -> Result<Option<UpstreamSandbox>, StateError> {
        tokio::task::block_in_place(|| self.inner.upstream(container_id))
    }

    fn remove_upstream(&self, sandbox: &UpstreamSandbox) -> Result<(), StateError> {
        tokio::task::block_in_place(|| self.inner.remove_upstream(sandbox))
    }

    fn list_upstream(&self) -> Result<Vec<String>, StateError> {
        tokio::task::block_in_place(|| self.inner.list_upstream())
    }

    fn note_unknown(
        &self,
        container_id: &str,
        note: Option<&UnknownAttachments>,
    ) -> Result<(), StateError> {
        tokio::task::block_in_place(|| self.inner.note_unknown(container_id, note))
    }
}

/// [`NetnsInspector`] off the async workers.
#[derive(Clone, Copy, Debug, Default)]
pub struct BlockingNetns;

async fn off_worker<T, F>(netns: &str, work: F) -> Result<T, NetnsError>
where
    F: FnOnce() -> Result<T, NetnsError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| NetnsError::Other {
            path: netns.to_owned(),
            reason: format!("namespace task failed: {e}"),
        })?
}

#[async_trait]
impl NetnsOps for BlockingNetns {
    async fn link_addresses(
        &self,
        netns: &str,
        ifname: &str,
    ) -> Result<Option<Vec<std::net::IpAddr>>, NetnsError> {
        let (path, name) = (netns.to_owned(), ifname.to_owned());
        off_worker(netns, move || {
            pollster::block_on(NetnsInspector.link_addresses(&path, &name))
        })
        .await
    }

    async fn default_routes(&self, netns: &str) -> Result<Vec<DefaultRoute>, NetnsError> {
        let path = netns.to_owned();
        off_worker(netns, move || {
            pollster::block_on(NetnsInspector.default_routes(&path))
        })
        .await
    }

    async fn replace_default_route(
        &self,
        netns: &str,
        ifname: &str,
        gateway: std::net::IpAddr,
    ) -> Result<(), NetnsError> {
        let (path, name) = (netns.to_owned(), ifname.to_owned());
        off_worker(netns, move || {
            pollster::block_on(NetnsInspector.replace_default_route(&path, &name, gateway))
        })
        .await
    }

    async fn remove_default_routes(&self, netns: &str, ifname: &str) -> Result<(), NetnsError> {
        let (path, name) = (netns.to_owned(), ifname.to_owned());
        off_worker(netns, move || {
            pollster::block_on(NetnsInspector.remove_default_routes(&path, &name))
        })
        .await
    }

    async fn link_exists(&self, netns: &str, ifname: &str) -> Result<bool, NetnsError> {
        let (path, name) = (netns.to_owned(), ifname.to_owned());
        off_worker(netns, move || {
            pollster::block_on(NetnsInspector.link_exists(&path, &name))
        })
        .await
    }

    async fn existing_links(
        &self,
        netns: &str,
        names: &[String],
    ) -> Result<Vec<String>, NetnsError> {
        let (path, names) = (netns.to_owned(), names.to_vec());
        off_worker(netns, move || {
            pollster::block_on(NetnsInspector.existing_links(&path, &names))
        })
        .await
    }
}

/// [`FsConfigFiles`] whose waiting (`readinessindicatorfile`) happens off the async
/// workers; plain reads of small config files are made in place.
#[derive(Clone, Copy, Debug, Default)]
pub struct BlockingFiles;

impl ConfigFiles for BlockingFiles {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        FsConfigFiles.read(path)
    }

    fn is_dir(&self, path: &Path) -> bool {
        FsConfigFiles.is_dir(path)
    }

    fn list_configs(&self, dir: &Path) -> std::io::Result<Vec<(PathBuf, Vec<u8>)>> {
        FsConfigFiles.list_configs(dir)
    }

    fn exists(&self, path: &Path) -> bool {
        FsConfigFiles.exists(path)
    }

    fn wait_for(&self, path: &Path, timeout: Duration, interval: Duration) -> bool {
        if path.exists() {
            return true;
        }
        tokio::task::block_in_place(|| FsConfigFiles.wait_for(path, timeout, interval))
    }
}
