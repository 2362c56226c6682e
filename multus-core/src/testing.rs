//! In-memory implementations of the seams that need no scripting, for tests of the
//! engine and of code that embeds it (enable the `testing` feature).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;

use crate::seams::{ConfigFiles, StateError, StateLock, StateStore};
use crate::state::SandboxState;

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
}

impl MemoryStateStore {
    /// How many times [`StateStore::save`] was called.
    pub fn saves(&self) -> usize {
        self.saves.load(Ordering::SeqCst)
    }

    /// Make the `n`th save (1-based) and every later one fail as a full disk would.
    pub fn fail_saves_from(&self, n: usize) {
        self.fail_saves_from.store(n, Ordering::SeqCst);
    }

    fn records(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, SandboxState>> {
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[async_trait]
impl StateStore for MemoryStateStore {
    async fn lock(&self, _: &str) -> Result<Box<dyn StateLock>, StateError> {
        Ok(Box::new(NoLock))
    }

    fn load(&self, container_id: &str) -> Result<Option<SandboxState>, StateError> {
        Ok(self.records().get(container_id).cloned())
    }

    fn save(&self, state: &SandboxState) -> Result<(), StateError> {
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

    fn remove(&self, container_id: &str) -> Result<(), StateError> {
        self.records().remove(container_id);
        Ok(())
    }

    fn list(&self) -> Result<Vec<String>, StateError> {
        Ok(self.records().keys().cloned().collect())
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
