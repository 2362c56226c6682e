//! Per-sandbox state on disk: `<cniDir>/sandboxes/<containerID>.json`, written atomically
//! (temp file, fsync, rename) and guarded by an `flock` on `<containerID>.lock`.
//!
//! `flock` locks die with the process that holds them, so a multus killed mid-ADD never
//! leaves a stale lock behind.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use multus_core::request::is_valid_container_id;
use multus_core::seams::{StateError, StateLock, StateStore};
use multus_core::state::SandboxState;
use nix::fcntl::{Flock, FlockArg};

/// Subdirectory of `cniDir` holding the records.
pub const SANDBOX_DIR: &str = "sandboxes";

/// The on-disk state store.
#[derive(Clone, Debug)]
pub struct FileStateStore {
    dir: PathBuf,
}

/// An exclusive lock on one container's record.
#[derive(Debug)]
pub struct FileLock {
    _lock: Flock<File>,
}

impl StateLock for FileLock {}

impl FileStateStore {
    /// A store under `<cni_dir>/sandboxes`.
    pub fn new(cni_dir: &Path) -> Self {
        Self {
            dir: cni_dir.join(SANDBOX_DIR),
        }
    }

    /// The directory holding the records.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The record file of a container.
    pub fn record_path(&self, container_id: &str) -> PathBuf {
        self.dir.join(format!("{container_id}.json"))
    }

    fn lock_path(&self, container_id: &str) -> PathBuf {
        self.dir.join(format!("{container_id}.lock"))
    }

    fn io_error(path: &Path, source: std::io::Error) -> StateError {
        StateError::Io {
            path: path.to_owned(),
            source,
        }
    }

    fn ensure_dir(&self) -> Result<(), StateError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| Self::io_error(&self.dir, e))
    }

    fn checked_id<'a>(&self, container_id: &'a str) -> Result<&'a str, StateError> {
        if is_valid_container_id(container_id) {
            Ok(container_id)
        } else {
            Err(Self::io_error(
                &self.dir,
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("invalid container ID {container_id:?}"),
                ),
            ))
        }
    }

    /// Take the lock, retrying when the lock file was removed and recreated meanwhile.
    fn lock_blocking(&self, container_id: &str) -> Result<FileLock, StateError> {
        self.ensure_dir()?;
        let path = self.lock_path(self.checked_id(container_id)?);
        loop {
            let file = OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .mode(0o600)
                .open(&path)
                .map_err(|e| Self::io_error(&path, e))?;
            let lock = Flock::lock(file, FlockArg::LockExclusive)
                .map_err(|(_, errno)| Self::io_error(&path, errno.into()))?;
            // remove() unlinks the lock file while holding it; a waiter that then gets
            // the lock holds a dead inode and must start again on the new file.
            let held = lock.metadata().map_err(|e| Self::io_error(&path, e))?;
            match std::fs::metadata(&path) {
                Ok(current) if current.ino() == held.ino() && current.dev() == held.dev() => {
                    return Ok(FileLock { _lock: lock });
                }
                _ => continue,
            }
        }
    }

    fn move_aside(&self, path: &Path) -> PathBuf {
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let kept = path.with_extension(format!("json.corrupt-{stamp}"));
        match std::fs::rename(path, &kept) {
            Ok(()) => kept,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "could not move corrupt state aside");
                path.to_owned()
            }
        }
    }
}

#[async_trait]
impl StateStore for FileStateStore {
    async fn lock(&self, container_id: &str) -> Result<Box<dyn StateLock>, StateError> {
        Ok(Box::new(self.lock_blocking(container_id)?))
    }

    fn load(&self, container_id: &str) -> Result<Option<SandboxState>, StateError> {
        let path = self.record_path(self.checked_id(container_id)?);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Self::io_error(&path, e)),
        };
        match serde_json::from_slice::<SandboxState>(&bytes) {
            Ok(state) if state.container_id == container_id => Ok(Some(state)),
            Ok(state) => Err(StateError::Corrupt {
                container_id: container_id.to_owned(),
                reason: format!("record names container {:?}", state.container_id),
                kept_at: self.move_aside(&path),
            }),
            Err(e) => Err(StateError::Corrupt {
                container_id: container_id.to_owned(),
                reason: e.to_string(),
                kept_at: self.move_aside(&path),
            }),
        }
    }

    fn save(&self, state: &SandboxState) -> Result<(), StateError> {
        self.ensure_dir()?;
        let path = self.record_path(self.checked_id(&state.container_id)?);
        let bytes =
            serde_json::to_vec_pretty(state).map_err(|e| Self::io_error(&path, e.into()))?;
        let temp = self.dir.join(format!(
            ".{}.json.tmp-{}",
            state.container_id,
            std::process::id()
        ));
        let write = || -> std::io::Result<()> {
            let mut file = OpenOptions::new()
                .create(true)
                .truncate(true)
                .write(true)
                .mode(0o600)
                .open(&temp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
            std::fs::rename(&temp, &path)
        };
        write().map_err(|e| {
            let _ = std::fs::remove_file(&temp);
            Self::io_error(&path, e)
        })
    }

    fn list(&self) -> Result<Vec<String>, StateError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Self::io_error(&self.dir, e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let id = name.strip_suffix(".json")?;
                is_valid_container_id(id).then(|| id.to_owned())
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    fn remove(&self, container_id: &str) -> Result<(), StateError> {
        let id = self.checked_id(container_id)?;
        for path in [self.record_path(id), self.lock_path(id)] {
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Self::io_error(&path, e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use multus_core::cni::CniVersion;
    use multus_core::state::{Phase, STATE_FORMAT};
    use std::os::unix::fs::PermissionsExt;

    fn state(id: &str) -> SandboxState {
        SandboxState {
            format: STATE_FORMAT,
            container_id: id.into(),
            netns: "/var/run/netns/x".into(),
            ifname: "eth0".into(),
            pod_namespace: "ns".into(),
            pod_name: "p".into(),
            pod_uid: "u".into(),
            cni_version: CniVersion::V1_0_0,
            phase: Phase::Added,
            attachments: vec![],
            network_status: vec![],
            multus_network: None,
        }
    }

    #[test]
    fn save_load_remove_round_trip_with_narrow_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStateStore::new(dir.path());
        let _lock = store.lock_blocking("abc").unwrap();
        store.save(&state("abc")).unwrap();
        assert_eq!(store.load("abc").unwrap(), Some(state("abc")));
        let mode = std::fs::metadata(store.record_path("abc"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(store.dir()).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        assert_eq!(store.list().unwrap(), vec!["abc"]);
        store.remove("abc").unwrap();
        assert_eq!(store.load("abc").unwrap(), None);
        assert!(store.list().unwrap().is_empty());
        store.remove("abc").unwrap();
    }

    #[test]
    fn corrupt_record_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStateStore::new(dir.path());
        store.ensure_dir().unwrap();
        std::fs::write(store.record_path("bad"), b"{\"format\":1,").unwrap();
        match store.load("bad") {
            Err(StateError::Corrupt { kept_at, .. }) => {
                assert!(kept_at.exists());
                assert!(!store.record_path("bad").exists());
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn escaping_container_ids_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStateStore::new(dir.path());
        assert!(store.load("../../etc/passwd").is_err());
        assert!(store.lock_blocking("a/b").is_err());
    }

    #[test]
    fn lock_serialises_holders_across_threads() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStateStore::new(dir.path());
        let first = store.lock_blocking("c").unwrap();
        let other = store.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            let _second = other.lock_blocking("c").unwrap();
            tx.send(()).unwrap();
        });
        assert!(
            rx.recv_timeout(std::time::Duration::from_millis(200))
                .is_err()
        );
        // The holder removes the record and its lock file, as DEL does.
        store.remove("c").unwrap();
        drop(first);
        rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        waiter.join().unwrap();
    }
}
