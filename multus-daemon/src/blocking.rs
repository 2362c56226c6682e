//! The node-side seams of `multus-cni` (state store, namespace inspection) block their
//! caller: a `flock`, file writes with `fsync`, a thread that enters the pod's namespace
//! and is joined. On the daemon's runtime each call runs on the blocking pool
//! (`spawn_blocking`) so a worker thread never stalls, whatever the runtime's flavour,
//! and a container's lock held by one request never blocks the requests of other
//! containers. Config files need no wrapper: [`multus_cni::files::FsConfigFiles`] reads
//! small local files in place and sleeps on the runtime's timer while waiting for one.

use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use multus_cni::netns::NetnsInspector;
use multus_cni::state_store::FileStateStore;
use multus_core::seams::{DefaultRoute, NetnsError, NetnsOps, StateError, StateLock, StateStore};
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

    /// Run one blocking operation of the file store on the blocking pool.
    async fn off_worker<T, F>(&self, work: F) -> Result<T, StateError>
    where
        F: FnOnce(&FileStateStore) -> Result<T, StateError> + Send + 'static,
        T: Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .map_err(|e| join_error(self.inner.dir(), &e))?
    }
}

#[async_trait]
impl StateStore for BlockingStateStore {
    async fn lock(&self, container_id: &str) -> Result<Box<dyn StateLock>, StateError> {
        let id = container_id.to_owned();
        let lock = self.off_worker(move |s| s.lock_blocking(&id)).await?;
        Ok(Box::new(lock))
    }

    async fn load(&self, container_id: &str) -> Result<Option<SandboxState>, StateError> {
        let id = container_id.to_owned();
        self.off_worker(move |s| s.load_blocking(&id)).await
    }

    async fn save(&self, state: &SandboxState) -> Result<(), StateError> {
        let state = state.clone();
        self.off_worker(move |s| s.save_blocking(&state)).await
    }

    async fn update(&self, state: &SandboxState) -> Result<(), StateError> {
        let state = state.clone();
        self.off_worker(move |s| s.update_blocking(&state)).await
    }

    async fn remove(&self, container_id: &str) -> Result<(), StateError> {
        let id = container_id.to_owned();
        self.off_worker(move |s| s.remove_blocking(&id)).await
    }

    async fn list(&self) -> Result<Vec<String>, StateError> {
        self.off_worker(FileStateStore::list_blocking).await
    }

    async fn upstream(&self, container_id: &str) -> Result<Option<UpstreamSandbox>, StateError> {
        let id = container_id.to_owned();
        self.off_worker(move |s| s.upstream_blocking(&id)).await
    }

    async fn remove_upstream(&self, sandbox: &UpstreamSandbox) -> Result<(), StateError> {
        let sandbox = sandbox.clone();
        self.off_worker(move |s| s.remove_upstream_blocking(&sandbox))
            .await
    }

    async fn list_upstream(&self) -> Result<Vec<String>, StateError> {
        self.off_worker(FileStateStore::list_upstream_blocking)
            .await
    }

    async fn note_unknown(
        &self,
        container_id: &str,
        note: Option<&UnknownAttachments>,
    ) -> Result<(), StateError> {
        let (id, note) = (container_id.to_owned(), note.cloned());
        self.off_worker(move |s| s.note_unknown_blocking(&id, note.as_ref()))
            .await
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

#[cfg(test)]
mod tests {
    use multus_core::state::Phase;

    use super::*;

    fn state(id: &str, phase: Phase) -> SandboxState {
        multus_core::testing::empty_record(id, phase)
    }

    /// The daemon's state store as the engine drives it, on a current-thread runtime
    /// (where `block_in_place` panics): every call goes to the blocking pool. (The wait
    /// for a file is multus-cni's `FsConfigFiles`, tested there on such a runtime.)
    #[tokio::test(flavor = "current_thread")]
    async fn the_state_store_works_on_a_current_thread_runtime() {
        let dir = tempfile::tempdir().unwrap();
        let store: &dyn StateStore = &BlockingStateStore::new(dir.path());
        let lock = store.lock("c1").await.unwrap();
        store.save(&state("c1", Phase::Adding)).await.unwrap();
        store.update(&state("c1", Phase::Added)).await.unwrap();
        assert_eq!(
            store.load("c1").await.unwrap(),
            Some(state("c1", Phase::Added))
        );
        assert_eq!(store.list().await.unwrap(), vec!["c1"]);
        assert_eq!(store.upstream("c1").await.unwrap(), None);
        assert!(store.list_upstream().await.unwrap().is_empty());
        store.note_unknown("c1", None).await.unwrap();
        store.remove("c1").await.unwrap();
        drop(lock);
        assert_eq!(store.load("c1").await.unwrap(), None);
    }
}
