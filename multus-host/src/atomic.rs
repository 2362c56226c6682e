//! Atomic file writes: the one way multus-rs puts a file on the node (sandbox records,
//! `00-multus.conf`, kubeconfig, installed binaries, the shim's pending-DEL markers).
//!
//! The content goes to a temporary file in the target's own directory (a rename never
//! crosses file systems), created with `O_CREAT|O_EXCL|O_NOFOLLOW` and owner-only, so a
//! file or symlink planted at its name is never opened: the next name is tried instead.
//! It is written, given its final mode, fsynced, then renamed over the target (or linked
//! to it, when an existing target must win), and the directory is fsynced so the new
//! name survives a power loss. The target itself is never opened for writing: a reader
//! sees the old file or the new one, never a partial one, and replacing a running binary
//! never fails with "text file busy".

use std::ffi::OsStr;
use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::os::unix::ffi::{OsStrExt as _, OsStringExt as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use nix::libc;

use crate::NAME_MAX;

/// A failed atomic write: what was being done, to which path, and the OS error.
#[derive(Debug, thiserror::Error)]
#[error("cannot {action} {path}: {source}")]
pub struct WriteError {
    /// The step that failed ("create a temporary file for", "rename into place", ...).
    pub action: &'static str,
    /// The file concerned (the temporary file or the target).
    pub path: PathBuf,
    /// The OS error.
    #[source]
    pub source: std::io::Error,
}

impl From<WriteError> for std::io::Error {
    /// The same kind of error, its message naming the step and the path.
    fn from(e: WriteError) -> Self {
        std::io::Error::new(e.source.kind(), e.to_string())
    }
}

/// How many temporary names are tried before giving up (each taken one was planted or
/// left by a crashed writer with the same PID).
const TEMP_ATTEMPTS: u32 = 16;

/// Room kept in a temporary name for `.tmp-<pid>-<attempt>` (10 + 10 digits).
const TEMP_SUFFIX_ROOM: usize = ".tmp-".len() + 10 + 1 + 10;

/// Replace `target` with `bytes`, atomically, with permission bits `mode`.
pub fn write_atomic(target: &Path, bytes: &[u8], mode: u32) -> Result<(), WriteError> {
    write_atomic_with(target, mode, |file| file.write_all(bytes))
}

/// Replace `target` atomically with what `fill` writes into the temporary file, with
/// permission bits `mode`.
pub fn write_atomic_with(
    target: &Path,
    mode: u32,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<(), WriteError> {
    place(target, mode, fill, Placement::Replace, Durability::Synced).map(|_| ())
}

/// [`write_atomic`] without waiting for the disk (no fsync of the file or of its
/// directory): readers see the old or the new file, never a partial one, but after a
/// power loss the old one (or, on file systems that do not order a replacing rename
/// after the data, an empty file) may be what is there. For a newer version of a file
/// whose older version is already durable and good enough on its own.
pub fn replace_atomic_unsynced(target: &Path, bytes: &[u8], mode: u32) -> Result<(), WriteError> {
    place(
        target,
        mode,
        |file| file.write_all(bytes),
        Placement::Replace,
        Durability::Unsynced,
    )
    .map(|_| ())
}

/// Create `target` with `bytes` and permission bits `mode`, atomically, unless it
/// exists: `true` when this call created it, `false` when an existing file (perhaps
/// written by a concurrent caller) was kept. Readers never see a partial file.
pub fn create_atomic(target: &Path, bytes: &[u8], mode: u32) -> Result<bool, WriteError> {
    place(
        target,
        mode,
        |file| file.write_all(bytes),
        Placement::KeepExisting,
        Durability::Synced,
    )
}

/// What to do when the target exists.
#[derive(Clone, Copy)]
enum Placement {
    Replace,
    KeepExisting,
}

/// Whether the write waits for the disk (fsync of the file and its directory).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Durability {
    Synced,
    Unsynced,
}

fn place(
    target: &Path,
    mode: u32,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
    placement: Placement,
    durability: Durability,
) -> Result<bool, WriteError> {
    let (temp, mut file) = create_temp(target)?;
    let synced = durability == Durability::Synced;
    let written = fill(&mut file)
        .and_then(|()| file.set_permissions(std::fs::Permissions::from_mode(mode)))
        .and_then(|()| if synced { file.sync_all() } else { Ok(()) });
    drop(file);
    let fail = |action: &'static str, path: &Path, source: std::io::Error| {
        let _ = std::fs::remove_file(&temp);
        Err(WriteError {
            action,
            path: path.to_owned(),
            source,
        })
    };
    if let Err(e) = written {
        return fail("write", &temp, e);
    }
    let placed = match placement {
        Placement::Replace => match std::fs::rename(&temp, target) {
            Ok(()) => true,
            Err(e) => return fail("rename the temporary file over", target, e),
        },
        // link(2) fails on an existing target, where rename(2) would replace it.
        Placement::KeepExisting => {
            let linked = std::fs::hard_link(&temp, target);
            let _ = std::fs::remove_file(&temp);
            match linked {
                Ok(()) => true,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
                Err(e) => return fail("link the temporary file to", target, e),
            }
        }
    };
    if placed && synced {
        sync_parent(target)?;
    }
    Ok(placed)
}

/// Create a fresh temporary file next to `target`, never opening an existing file or
/// following a symlink.
fn create_temp(target: &Path) -> Result<(PathBuf, File), WriteError> {
    let mut last = None;
    for attempt in 0..TEMP_ATTEMPTS {
        let temp = temp_path(target, attempt);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&temp)
        {
            Ok(file) => return Ok((temp, file)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => last = Some((temp, e)),
            Err(source) => {
                return Err(WriteError {
                    action: "create a temporary file",
                    path: temp,
                    source,
                });
            }
        }
    }
    let (path, source) = last.unwrap_or_else(|| {
        (
            temp_path(target, 0),
            std::io::Error::from(std::io::ErrorKind::AlreadyExists),
        )
    });
    Err(WriteError {
        action: "create a temporary file (every candidate name is taken)",
        path,
        source,
    })
}

/// The temporary file used for `target` by this process at `attempt` (0, 1, ...):
/// `.<name>.tmp-<pid>-<attempt>` in the target's directory, the name cut so that the
/// whole stays within `NAME_MAX`. Hidden and without a config extension, so no runtime
/// reads it as a CNI config.
pub fn temp_path(target: &Path, attempt: u32) -> PathBuf {
    let mut name = temp_prefix(target.file_name().unwrap_or_default());
    name.extend_from_slice(format!("{}-{attempt}", std::process::id()).as_bytes());
    target.with_file_name(std::ffi::OsString::from_vec(name))
}

/// `.<name>.tmp-` with `name` cut to fit.
fn temp_prefix(name: &OsStr) -> Vec<u8> {
    let bytes = name.as_bytes();
    let keep = bytes.len().min(NAME_MAX - 1 - TEMP_SUFFIX_ROOM);
    let mut prefix = Vec::with_capacity(NAME_MAX);
    prefix.push(b'.');
    prefix.extend_from_slice(&bytes[..keep]);
    prefix.extend_from_slice(b".tmp-");
    prefix
}

/// Remove temporary files of `target` left by writers that crashed; returns their
/// paths. Only for a caller that is the sole writer of `target` (the node installer):
/// another process's write in progress would fail.
pub fn remove_stale_temps(target: &Path) -> std::io::Result<Vec<PathBuf>> {
    let prefix = temp_prefix(target.file_name().unwrap_or_default());
    let dir = parent_of(target);
    let mut removed = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_name().as_bytes().starts_with(&prefix) {
            let path = entry.path();
            match std::fs::remove_file(&path) {
                Ok(()) => removed.push(path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

fn parent_of(target: &Path) -> &Path {
    match target.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// fsync the target's directory so that the rename or link is durable.
fn sync_parent(target: &Path) -> Result<(), WriteError> {
    let dir = parent_of(target);
    let synced = File::open(dir).and_then(|d| d.sync_all());
    match synced {
        Ok(()) => Ok(()),
        // Some file systems cannot fsync a directory; the data itself is synced.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        Err(source) => Err(WriteError {
            action: "sync the directory",
            path: dir.to_owned(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The only entry of `dir` (fails when there are others: a temporary file left).
    fn only_entry(dir: &Path) -> String {
        let entries: Vec<_> = std::fs::read_dir(dir).unwrap().collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
        let name = entries[0].as_ref().unwrap().file_name();
        name.to_string_lossy().into_owned()
    }

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn replaces_with_the_mode_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("conf");
        write_atomic(&target, b"one", 0o600).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"one");
        assert_eq!(mode_of(&target), 0o600);
        write_atomic(&target, b"two", 0o755).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"two");
        assert_eq!(mode_of(&target), 0o755);
        assert_eq!(only_entry(dir.path()), "conf");
        replace_atomic_unsynced(&target, b"three", 0o600).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"three");
        assert_eq!(mode_of(&target), 0o600);
        assert_eq!(only_entry(dir.path()), "conf");
    }

    #[test]
    fn planted_symlinks_at_temporary_names_are_never_followed() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let target = dir.path().join("c1.json");
        // The first candidates are links to the victim (one dangling): skipped.
        std::os::unix::fs::symlink(&victim, temp_path(&target, 0)).unwrap();
        std::os::unix::fs::symlink(dir.path().join("new"), temp_path(&target, 1)).unwrap();
        write_atomic(&target, b"record", 0o600).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"record");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert!(!dir.path().join("new").exists());
        // Every candidate taken: a clear error, and still nothing written through.
        for attempt in 0..TEMP_ATTEMPTS {
            let _ = std::os::unix::fs::symlink(&victim, temp_path(&target, attempt));
        }
        let err = write_atomic(&target, b"again", 0o600).unwrap_err();
        assert!(
            err.to_string().contains("every candidate name is taken"),
            "{err}"
        );
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        assert_eq!(std::fs::read(&target).unwrap(), b"record");
    }

    #[test]
    fn a_failed_fill_removes_the_temporary_file_and_keeps_the_target() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("conf");
        write_atomic(&target, b"old", 0o600).unwrap();
        let err = write_atomic_with(&target, 0o600, |_| {
            Err(std::io::Error::from(std::io::ErrorKind::StorageFull))
        })
        .unwrap_err();
        assert_eq!(err.source.kind(), std::io::ErrorKind::StorageFull);
        assert_eq!(std::fs::read(&target).unwrap(), b"old");
        assert_eq!(only_entry(dir.path()), "conf");
    }

    #[test]
    fn create_keeps_an_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("marker");
        assert!(create_atomic(&target, b"first", 0o600).unwrap());
        assert!(!create_atomic(&target, b"second", 0o600).unwrap());
        assert_eq!(std::fs::read(&target).unwrap(), b"first");
        assert_eq!(only_entry(dir.path()), "marker");
    }

    #[test]
    fn long_names_keep_temporary_names_within_name_max() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join(format!("{}.json", "a".repeat(250)));
        let temp = temp_path(&target, TEMP_ATTEMPTS);
        assert!(temp.file_name().unwrap().len() <= NAME_MAX);
        write_atomic(&target, b"x", 0o600).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"x");
    }

    #[test]
    fn stale_temporary_files_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("multus");
        std::fs::write(temp_path(&target, 3), "stale").unwrap();
        std::fs::write(dir.path().join(".other.tmp-1-0"), "not ours").unwrap();
        let removed = remove_stale_temps(&target).unwrap();
        assert_eq!(removed, vec![temp_path(&target, 3)]);
        assert_eq!(only_entry(dir.path()), ".other.tmp-1-0");
    }
}
