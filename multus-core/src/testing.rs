//! In-memory implementations of the seams that need no scripting, for tests of the
//! engine and of code that embeds it (enable the `testing` feature).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;

use crate::cni::CniVersion;
use crate::seams::{ConfigFiles, StateError, StateLock, StateStore};
use crate::state::{Phase, STATE_FORMAT, SandboxState};
use crate::upstream::{UnknownAttachments, UpstreamSandbox};

/// A record of `container_id` in `phase` with no attachments: the smallest valid
/// sandbox record, for tests of state stores.
pub fn empty_record(container_id: &str, phase: Phase) -> SandboxState {
    SandboxState {
        format: STATE_FORMAT,
        container_id: container_id.into(),
        netns: "/var/run/netns/x".into(),
        ifname: "eth0".into(),
        pod_namespace: "ns".into(),
        pod_name: "p".into(),
        pod_uid: "u".into(),
        cni_version: CniVersion::V1_0_0,
        phase,
        attachments: vec![],
        network_status: vec![],
        multus_network: None,
        parallel_attach: false,
    }
}

/// A lock that guards nothing: [`MemoryStateStore`] is used by one caller at a time.
#[derive(Debug)]
pub struct NoLock;

impl StateLock for NoLock {}

/// Sandbox records kept in memory.
#[derive(Debug, Default)]
pub struct MemoryStateStore {
    records: Mutex<BTreeMap<String, SandboxState>>,
    saves: AtomicUsize,
    /// Saves numbered from this one (1-based) fail; 0: none fails.
    fail_saves_from: AtomicUsize,
    upstream: Mutex<BTreeMap<String, UpstreamSandbox>>,
    notes: Mutex<BTreeMap<String, UnknownAttachments>>,
}

impl MemoryStateStore {
    /// How many times [`StateStore::save`] was called.
    pub fn saves(&self) -> usize {
        self.saves.load(Ordering::SeqCst)
    }

    /// The record of a container, as [`StateStore::load`] would return it.
    pub fn record(&self, container_id: &str) -> Option<SandboxState> {
        self.records().get(container_id).cloned()
    }

    /// Store a record directly (not counted as a save, never failing), as a previous
    /// request would have left it.
    pub fn put(&self, state: SandboxState) {
        self.records().insert(state.container_id.clone(), state);
    }

    /// The container IDs that have a record, sorted.
    pub fn ids(&self) -> Vec<String> {
        self.records().keys().cloned().collect()
    }

    /// Make the `n`th save (1-based) and every later one fail as a full disk would.
    pub fn fail_saves_from(&self, n: usize) {
        self.fail_saves_from.store(n, Ordering::SeqCst);
    }

    fn records(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, SandboxState>> {
        guard(&self.records)
    }

    /// Leave upstream Go Multus' caches of a sandbox, as after the switch.
    pub fn put_upstream(&self, sandbox: UpstreamSandbox) {
        guard(&self.upstream).insert(sandbox.container_id.clone(), sandbox);
    }

    /// The containers upstream's caches are still kept for.
    pub fn upstream_left(&self) -> Vec<String> {
        guard(&self.upstream).keys().cloned().collect()
    }

    /// The notes of unknown attachments.
    pub fn notes(&self) -> BTreeMap<String, UnknownAttachments> {
        guard(&self.notes).clone()
    }
}

fn guard<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[async_trait]
impl StateStore for MemoryStateStore {
    async fn lock(&self, _: &str) -> Result<Box<dyn StateLock>, StateError> {
        Ok(Box::new(NoLock))
    }

    async fn load(&self, container_id: &str) -> Result<Option<SandboxState>, StateError> {
        Ok(self.record(container_id))
    }

    async fn save(&self, state: &SandboxState) -> Result<(), StateError> {
        let number = self.saves.fetch_add(1, Ordering::SeqCst) + 1;
        let fail_from = self.fail_saves_from.load(Ordering::SeqCst);
        if fail_from != 0 && number >= fail_from {
            return Err(StateError::Io {
                path: PathBuf::from(format!("{}.json", state.container_id)),
                source: std::io::Error::from(std::io::ErrorKind::StorageFull),
            });
        }
        self.records()
            .insert(state.container_id.clone(), state.clone());
        Ok(())
    }

    async fn remove(&self, container_id: &str) -> Result<(), StateError> {
        self.records().remove(container_id);
        Ok(())
    }

    async fn list(&self) -> Result<Vec<String>, StateError> {
        Ok(self.ids())
    }

    async fn upstream(&self, container_id: &str) -> Result<Option<UpstreamSandbox>, StateError> {
        Ok(guard(&self.upstream).get(container_id).cloned())
    }

    async fn remove_upstream(&self, sandbox: &UpstreamSandbox) -> Result<(), StateError> {
        guard(&self.upstream).remove(&sandbox.container_id);
        Ok(())
    }

    async fn list_upstream(&self) -> Result<Vec<String>, StateError> {
        Ok(self.upstream_left())
    }

    async fn note_unknown(
        &self,
        container_id: &str,
        note: Option<&UnknownAttachments>,
    ) -> Result<(), StateError> {
        let mut notes = guard(&self.notes);
        match note {
            Some(note) => notes.insert(container_id.to_owned(), note.clone()),
            None => notes.remove(container_id),
        };
        Ok(())
    }
}

/// CNI config files kept in memory; a directory is any parent of a stored file.
#[derive(Debug, Default)]
pub struct MemoryConfigFiles {
    /// The files, by path.
    pub files: BTreeMap<PathBuf, Vec<u8>>,
}

impl ConfigFiles for MemoryConfigFiles {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.files
            .get(path)
            .cloned()
            .ok_or_else(|| std::io::Error::from(std::io::ErrorKind::NotFound))
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.files.keys().any(|p| p.parent() == Some(path))
    }

    fn list_configs(&self, dir: &Path) -> std::io::Result<Vec<(PathBuf, Vec<u8>)>> {
        Ok(self
            .files
            .iter()
            .filter(|(p, _)| p.parent() == Some(dir))
            .map(|(p, b)| (p.clone(), b.clone()))
            .collect())
    }
}

/// A node's devices kept in memory: a fixed resource map (or failure) for every pod,
/// and device-info files in a map. Counts how often the map was read.
#[derive(Debug, Default)]
pub struct MemoryDevices {
    /// The map every pod gets; `Err` makes every lookup fail with it.
    pub map: Option<Result<crate::devices::ResourceMap, crate::seams::DeviceError>>,
    /// Device-plugin device-info files, by file name.
    pub dp_files: BTreeMap<String, serde_json::Value>,
    cni_files: Mutex<BTreeMap<String, serde_json::Value>>,
    lookups: AtomicUsize,
}

impl MemoryDevices {
    /// Every lookup fails with `error`.
    pub fn failing(error: crate::seams::DeviceError) -> Self {
        Self {
            map: Some(Err(error)),
            ..Self::default()
        }
    }

    /// Devices every pod gets.
    pub fn with_map(map: crate::devices::ResourceMap) -> Self {
        Self {
            map: Some(Ok(map)),
            ..Self::default()
        }
    }

    /// How many times the pod's resource map was read.
    pub fn lookups(&self) -> usize {
        self.lookups.load(Ordering::SeqCst)
    }

    /// The CNI device-info files present, by file name.
    pub fn cni_files(&self) -> BTreeMap<String, serde_json::Value> {
        guard(&self.cni_files).clone()
    }
}

#[async_trait]
impl crate::seams::DeviceResources for MemoryDevices {
    async fn pod_devices(
        &self,
        pod: &crate::request::PodRef,
    ) -> Result<crate::devices::ResourceMap, crate::seams::DeviceError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        match &self.map {
            Some(answer) => answer.clone(),
            None => crate::seams::NoDevices.pod_devices(pod).await,
        }
    }

    fn prepare_device_info(&self, dp_file: &str, cni_file: &str) -> Option<String> {
        if let Some(info) = self.dp_files.get(dp_file) {
            guard(&self.cni_files).insert(cni_file.to_owned(), info.clone());
        }
        Some(format!("/devinfo/cni/{cni_file}"))
    }

    fn device_info(&self, cni_file: &str) -> Option<serde_json::Value> {
        guard(&self.cni_files).get(cni_file).cloned()
    }

    fn remove_device_info(&self, cni_file: &str) {
        guard(&self.cni_files).remove(cni_file);
    }
}
