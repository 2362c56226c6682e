//! Per-sandbox state on disk: `<cniDir>/sandboxes/<containerID>.json`, written with the
//! one atomic writer ([`multus_host::atomic`]) and guarded by an `flock` on
//! `<containerID>.lock`.
//!
//! - The directory is owner-only (`0700`); an existing one that others can write is
//!   tightened with a WARN ([`multus_host::dir::secure_dir`]).
//! - Lock files and records are opened with `O_NOFOLLOW`: a symlink planted at their path
//!   is never followed (a planted lock-file symlink is removed, with a WARN).
//! - A lock file lives only while a process holds or waits for it: the holder unlinks
//!   it before releasing the lock, and a waiter that then gets a lock on the unlinked
//!   inode sees that the path no longer names it and starts again. So no `.lock` file
//!   outlives its sandbox, whatever the outcome of the request.
//! - A container ID whose record name would exceed `NAME_MAX` cannot be stored: saving
//!   its record fails ([`StateError::Unstorable`], ADD refused before any delegate ran),
//!   while loading and removing find nothing (DEL succeeds).
//! - On a read-only directory, the lock degrades to none (nothing can be written, so
//!   nothing to protect) and removing an absent record succeeds: DEL of a container that
//!   was never added does not fail.
//!
//! `flock` locks die with the process that holds them, so a multus killed mid-ADD never
//! leaves a held lock behind.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use multus_core::request::is_valid_container_id;
use multus_core::seams::{StateError, StateLock, StateStore};
use multus_core::state::SandboxState;
use multus_core::upstream::{UnknownAttachments, UpstreamSandbox};
use multus_host::NAME_MAX;
use multus_host::open::{is_symlink_refusal, open_lock_file, read_nofollow};
use nix::fcntl::{Flock, FlockArg};

use crate::unknown_notes::UnknownNotes;
use crate::upstream_cache::UpstreamCacheDir;

/// Subdirectory of `cniDir` holding the records.
pub const SANDBOX_DIR: &str = "sandboxes";

/// Extension of record files.
const RECORD_SUFFIX: &str = ".json";

/// The longest container ID (in bytes) whose record `<id>.json` fits in a file name.
pub const MAX_CONTAINER_ID_BYTES: usize = NAME_MAX - RECORD_SUFFIX.len();

/// The on-disk state store.
#[derive(Clone, Debug)]
pub struct FileStateStore {
    dir: PathBuf,
}

/// An exclusive lock on one container's record. Dropping it removes the lock file, then
/// releases the lock.
#[derive(Debug)]
pub struct FileLock {
    held: Option<(PathBuf, Flock<File>)>,
}

impl FileLock {
    /// No lock: for a container nothing can be stored for (an ID too long, a read-only
    /// directory), so no concurrent request can write anything of it either.
    fn none() -> Self {
        Self { held: None }
    }
}

impl Drop for FileLock {
    fn drop(&mut self) {
        if let Some((path, lock)) = self.held.take() {
            // Unlinked while still held: waiters on this inode re-check and retry.
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove the lock file");
                }
            }
            drop(lock);
        }
    }
}

impl StateLock for FileLock {}

/// Whether `error` says the file system is mounted read-only.
fn is_read_only(error: &std::io::Error) -> bool {
    error.raw_os_error() == Some(nix::libc::EROFS)
}

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

    /// The `cniDir` the records are kept in.
    fn cni_dir(&self) -> &Path {
        self.dir.parent().unwrap_or(&self.dir)
    }

    /// Upstream Go Multus' caches in the same `cniDir`.
    fn upstream_caches(&self) -> UpstreamCacheDir {
        UpstreamCacheDir::new(self.cni_dir())
    }

    /// The record file of a container.
    pub fn record_path(&self, container_id: &str) -> PathBuf {
        self.dir.join(format!("{container_id}{RECORD_SUFFIX}"))
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

    /// Create the directory owner-only, or tighten an existing one others can write.
    fn ensure_dir(&self) -> Result<(), StateError> {
        let report = multus_host::dir::secure_dir(&self.dir, 0o700)
            .map_err(|e| Self::io_error(&self.dir, e))?;
        if let Some(fix) = report.fixed {
            tracing::warn!(
                path = %self.dir.display(),
                old_mode = format!("{:04o}", fix.old_mode),
                old_owner = fix.old_uid,
                new_mode = format!("{:04o}", fix.new_mode),
                "the state directory was writable by others (or owned by another user); fixed it to owner-only"
            );
        }
        Ok(())
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

    /// Whether a record of this (valid) ID fits in a file name.
    fn storable(container_id: &str) -> bool {
        container_id.len() <= MAX_CONTAINER_ID_BYTES
    }

    /// [`StateStore::lock`], blocking until the lock is free; retries when the lock file
    /// was removed and recreated meanwhile.
    pub fn lock_blocking(&self, container_id: &str) -> Result<FileLock, StateError> {
        let id = self.checked_id(container_id)?;
        if !Self::storable(id) {
            return Ok(FileLock::none());
        }
        match self.ensure_dir() {
            Err(StateError::Io { source, .. }) if is_read_only(&source) => {
                return Ok(self.read_only_lock());
            }
            other => other?,
        }
        let path = self.lock_path(id);
        let mut planted_removed = false;
        loop {
            let file = match open_lock_file(&path) {
                Ok(file) => file,
                Err(e) if is_symlink_refusal(&e) && !planted_removed => {
                    tracing::warn!(path = %path.display(), "a symbolic link was planted at the lock file's path; removing it (its target is untouched)");
                    std::fs::remove_file(&path).map_err(|e| Self::io_error(&path, e))?;
                    planted_removed = true;
                    continue;
                }
                Err(e) if is_read_only(&e) => return Ok(self.read_only_lock()),
                Err(e) => return Err(Self::io_error(&path, e)),
            };
            let lock = Flock::lock(file, FlockArg::LockExclusive)
                .map_err(|(_, errno)| Self::io_error(&path, errno.into()))?;
            // The previous holder unlinks the lock file before releasing it; a waiter
            // that then gets the lock holds a dead inode and must start again.
            let held = lock.metadata().map_err(|e| Self::io_error(&path, e))?;
            match std::fs::symlink_metadata(&path) {
                Ok(current) if current.ino() == held.ino() && current.dev() == held.dev() => {
                    return Ok(FileLock {
                        held: Some((path, lock)),
                    });
                }
                _ => continue,
            }
        }
    }

    fn read_only_lock(&self) -> FileLock {
        tracing::warn!(path = %self.dir.display(), "the state directory is read-only: proceeding without a lock (no record can be written)");
        FileLock::none()
    }

    /// Where a corrupt record is kept: `<id>.json.corrupt-<unix seconds>`, the ID cut so
    /// the name fits.
    fn aside_path(&self, container_id: &str) -> PathBuf {
        let stamp = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let suffix = format!("{RECORD_SUFFIX}.corrupt-{stamp}");
        // Container IDs are ASCII (checked): any byte is a char boundary.
        let keep = container_id.len().min(NAME_MAX - suffix.len());
        self.dir.join(format!("{}{suffix}", &container_id[..keep]))
    }

    fn move_aside(&self, container_id: &str, path: &Path) -> PathBuf {
        let kept = self.aside_path(container_id);
        match std::fs::rename(path, &kept) {
            Ok(()) => kept,
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "could not move corrupt state aside");
                path.to_owned()
            }
        }
    }

    fn corrupt(&self, container_id: &str, path: &Path, reason: String) -> StateError {
        StateError::Corrupt {
            container_id: container_id.to_owned(),
            reason,
            kept_at: self.move_aside(container_id, path),
        }
    }
}

impl FileStateStore {
    /// Check, serialise and place the record with `place`.
    fn write(
        &self,
        state: &SandboxState,
        place: fn(&Path, &[u8], u32) -> Result<(), multus_host::atomic::WriteError>,
    ) -> Result<(), StateError> {
        let id = self.checked_id(&state.container_id)?;
        if !Self::storable(id) {
            return Err(StateError::Unstorable {
                container_id: id.to_owned(),
                length: id.len(),
                limit: MAX_CONTAINER_ID_BYTES,
            });
        }
        self.ensure_dir()?;
        let path = self.record_path(id);
        let bytes =
            serde_json::to_vec_pretty(state).map_err(|e| Self::io_error(&path, e.into()))?;
        place(&path, &bytes, 0o600).map_err(|e| Self::io_error(&e.path, e.source))
    }

    /// The container IDs with a record.
    fn list_ids(&self) -> Result<Vec<String>, StateError> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Self::io_error(&self.dir, e)),
        };
        let mut ids: Vec<String> = entries
            .filter_map(Result::ok)
            .filter_map(|entry| {
                let name = entry.file_name().into_string().ok()?;
                let id = name.strip_suffix(RECORD_SUFFIX)?;
                is_valid_container_id(id).then(|| id.to_owned())
            })
            .collect();
        ids.sort();
        Ok(ids)
    }
}

/// The store's blocking operations: each one does its file I/O (`flock`, reads, writes
/// with `fsync`) on the calling thread. The [`StateStore`] implementation calls them in
/// place; a caller on a shared async runtime runs them on its blocking pool instead.
impl FileStateStore {
    /// [`StateStore::load`], blocking.
    pub fn load_blocking(&self, container_id: &str) -> Result<Option<SandboxState>, StateError> {
        let id = self.checked_id(container_id)?;
        if !Self::storable(id) {
            return Ok(None);
        }
        let path = self.record_path(id);
        let bytes = match read_nofollow(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) if is_symlink_refusal(&e) => {
                let reason = "the record is a symbolic link (not followed)".to_owned();
                return Err(self.corrupt(id, &path, reason));
            }
            Err(e) => return Err(Self::io_error(&path, e)),
        };
        match serde_json::from_slice::<SandboxState>(&bytes) {
            Ok(state) if state.container_id == container_id => Ok(Some(state)),
            Ok(state) => {
                let reason = format!("record names container {:?}", state.container_id);
                Err(self.corrupt(id, &path, reason))
            }
            Err(e) => Err(self.corrupt(id, &path, e.to_string())),
        }
    }

    /// [`StateStore::save`], blocking until the record is on disk.
    pub fn save_blocking(&self, state: &SandboxState) -> Result<(), StateError> {
        self.write(state, multus_host::atomic::write_atomic)
    }

    /// [`StateStore::update`], blocking.
    pub fn update_blocking(&self, state: &SandboxState) -> Result<(), StateError> {
        self.write(state, multus_host::atomic::replace_atomic_unsynced)
    }

    /// [`StateStore::list`], blocking.
    pub fn list_blocking(&self) -> Result<Vec<String>, StateError> {
        self.list_ids()
    }

    /// [`StateStore::remove`], blocking. The lock file goes when its holder releases it.
    pub fn remove_blocking(&self, container_id: &str) -> Result<(), StateError> {
        let id = self.checked_id(container_id)?;
        if !Self::storable(id) {
            return Ok(());
        }
        let path = self.record_path(id);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            // unlink(2) reports EROFS before looking the name up: nothing to remove is
            // success on a read-only file system too.
            Err(e) if is_read_only(&e) => match std::fs::symlink_metadata(&path) {
                Err(absent) if absent.kind() == std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(Self::io_error(&path, e)),
            },
            Err(e) => Err(Self::io_error(&path, e)),
        }
    }

    /// [`StateStore::upstream`], blocking.
    pub fn upstream_blocking(
        &self,
        container_id: &str,
    ) -> Result<Option<UpstreamSandbox>, StateError> {
        self.upstream_caches().read(container_id)
    }

    /// [`StateStore::remove_upstream`], blocking.
    pub fn remove_upstream_blocking(&self, sandbox: &UpstreamSandbox) -> Result<(), StateError> {
        self.upstream_caches().remove(sandbox)
    }

    /// [`StateStore::list_upstream`], blocking.
    pub fn list_upstream_blocking(&self) -> Result<Vec<String>, StateError> {
        self.upstream_caches().list()
    }

    /// [`StateStore::note_unknown`], blocking.
    pub fn note_unknown_blocking(
        &self,
        container_id: &str,
        note: Option<&UnknownAttachments>,
    ) -> Result<(), StateError> {
        UnknownNotes::new(self.cni_dir()).set(container_id, note)
    }
}

/// Runs each blocking operation inside its future, on the calling thread: right for the
/// thin plugin, which serves one request on a runtime of its own (nothing else waits
/// for that thread). On a runtime shared by many requests, wrap the store so that these
/// calls run on the blocking pool (as the daemon does).
#[async_trait]
impl StateStore for FileStateStore {
    async fn lock(&self, container_id: &str) -> Result<Box<dyn StateLock>, StateError> {
        Ok(Box::new(self.lock_blocking(container_id)?))
    }

    async fn load(&self, container_id: &str) -> Result<Option<SandboxState>, StateError> {
        self.load_blocking(container_id)
    }

    async fn save(&self, state: &SandboxState) -> Result<(), StateError> {
        self.save_blocking(state)
    }

    async fn update(&self, state: &SandboxState) -> Result<(), StateError> {
        self.update_blocking(state)
    }

    async fn list(&self) -> Result<Vec<String>, StateError> {
        self.list_blocking()
    }

    async fn remove(&self, container_id: &str) -> Result<(), StateError> {
        self.remove_blocking(container_id)
    }

    async fn upstream(&self, container_id: &str) -> Result<Option<UpstreamSandbox>, StateError> {
        self.upstream_blocking(container_id)
    }

    async fn remove_upstream(&self, sandbox: &UpstreamSandbox) -> Result<(), StateError> {
        self.remove_upstream_blocking(sandbox)
    }

    async fn list_upstream(&self) -> Result<Vec<String>, StateError> {
        self.list_upstream_blocking()
    }

    async fn note_unknown(
        &self,
        container_id: &str,
        note: Option<&UnknownAttachments>,
    ) -> Result<(), StateError> {
        self.note_unknown_blocking(container_id, note)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use multus_core::state::Phase;
    use std::os::unix::fs::PermissionsExt;

    fn state(id: &str) -> SandboxState {
        multus_core::testing::empty_record(id, Phase::Added)
    }

    #[test]
    fn save_load_remove_round_trip_with_narrow_permissions() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStateStore::new(dir.path());
        let lock = store.lock_blocking("abc").unwrap();
        store.save_blocking(&state("abc")).unwrap();
        assert_eq!(store.load_blocking("abc").unwrap(), Some(state("abc")));
        let mode = std::fs::metadata(store.record_path("abc"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = std::fs::metadata(store.dir()).unwrap().permissions().mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        assert_eq!(store.list_blocking().unwrap(), vec!["abc"]);
        drop(lock);
        store.remove_blocking("abc").unwrap();
        assert_eq!(store.load_blocking("abc").unwrap(), None);
        assert!(store.list_blocking().unwrap().is_empty());
        store.remove_blocking("abc").unwrap();
    }

    #[test]
    fn corrupt_record_is_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStateStore::new(dir.path());
        store.ensure_dir().unwrap();
        std::fs::write(store.record_path("bad"), b"{\"format\":1,").unwrap();
        match store.load_blocking("bad") {
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
        assert!(store.load_blocking("../../etc/passwd").is_err());
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
        store.remove_blocking("c").unwrap();
        drop(first);
        rx.recv_timeout(std::time::Duration::from_secs(5)).unwrap();
        waiter.join().unwrap();
    }

    #[test]
    fn no_lock_file_outlives_its_holder() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStateStore::new(dir.path());
        // A request that wrote nothing (a refused ADD, a DEL that failed early).
        drop(store.lock_blocking("gone").unwrap());
        assert!(std::fs::read_dir(store.dir()).unwrap().next().is_none());
        // A request that kept a record (a failed DEL): the record stays, not the lock.
        let lock = store.lock_blocking("kept").unwrap();
        store.save_blocking(&state("kept")).unwrap();
        drop(lock);
        assert!(store.record_path("kept").exists());
        assert!(!store.lock_path("kept").exists());
    }

    #[test]
    fn a_symlink_planted_at_the_lock_path_is_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStateStore::new(dir.path());
        store.ensure_dir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        std::os::unix::fs::symlink(&victim, store.lock_path("c1")).unwrap();
        let lock = store.lock_blocking("c1").unwrap();
        store.save_blocking(&state("c1")).unwrap();
        drop(lock);
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!store.lock_path("c1").exists());
        assert!(store.record_path("c1").exists());
    }

    #[test]
    fn symlinks_planted_at_temporary_names_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStateStore::new(dir.path());
        store.ensure_dir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let record = store.record_path("c1");
        for attempt in 0..3 {
            let temp = multus_host::atomic::temp_path(&record, attempt);
            std::os::unix::fs::symlink(&victim, temp).unwrap();
        }
        store.save_blocking(&state("c1")).unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(store.load_blocking("c1").unwrap(), Some(state("c1")));
        // A symlink in place of the record itself is not read through either.
        std::fs::remove_file(&record).unwrap();
        std::os::unix::fs::symlink(&victim, &record).unwrap();
        assert!(matches!(
            store.load_blocking("c1"),
            Err(StateError::Corrupt { .. })
        ));
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn a_world_writable_state_directory_is_fixed_to_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStateStore::new(dir.path());
        std::fs::create_dir(store.dir()).unwrap();
        std::fs::set_permissions(store.dir(), std::fs::Permissions::from_mode(0o1777)).unwrap();
        drop(store.lock_blocking("c1").unwrap());
        let mode = std::fs::metadata(store.dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o7777, 0o700);
    }

    #[test]
    fn ids_too_long_for_a_file_name_cannot_be_saved_and_are_never_found() {
        let dir = tempfile::tempdir().unwrap();
        let store = FileStateStore::new(dir.path());
        let longest = "a".repeat(MAX_CONTAINER_ID_BYTES);
        let lock = store.lock_blocking(&longest).unwrap();
        store.save_blocking(&state(&longest)).unwrap();
        assert_eq!(
            store.load_blocking(&longest).unwrap(),
            Some(state(&longest))
        );
        drop(lock);
        // Its corrupt record is kept under a name that fits.
        std::fs::write(store.record_path(&longest), b"{").unwrap();
        match store.load_blocking(&longest) {
            Err(StateError::Corrupt { kept_at, .. }) => assert!(kept_at.exists()),
            other => panic!("unexpected {other:?}"),
        }

        let too_long = "b".repeat(300);
        let _lock = store.lock_blocking(&too_long).unwrap();
        assert_eq!(store.load_blocking(&too_long).unwrap(), None);
        store.remove_blocking(&too_long).unwrap();
        match store.save_blocking(&state(&too_long)) {
            Err(e @ StateError::Unstorable { length: 300, .. }) => {
                assert!(e.to_string().contains("up to 250 bytes"), "{e}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}
