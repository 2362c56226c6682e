//! Opening lock files and records without following a symlink planted at their path.
//!
//! A symlink at a path multus opens as root could make it create, truncate or lock a
//! file elsewhere on the node. These opens refuse one with `ELOOP`; [`is_symlink_refusal`]
//! recognises that error so a caller can remove the planted link and try again.

use std::fs::{File, OpenOptions};
use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use nix::libc;

/// Open (creating it owner-only when absent) a lock file, never through a symlink. The
/// content is never read or written: the file only carries an `flock`.
pub fn open_lock_file(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
}

/// Read a whole file, refusing a symlink at `path`.
pub fn read_nofollow(path: &Path) -> std::io::Result<Vec<u8>> {
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Whether `error` is the refusal of a symlink by an `O_NOFOLLOW` open.
pub fn is_symlink_refusal(error: &std::io::Error) -> bool {
    error.raw_os_error() == Some(libc::ELOOP)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    #[test]
    fn a_planted_symlink_is_refused_and_its_target_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let lock = dir.path().join("c1.lock");
        std::os::unix::fs::symlink(&victim, &lock).unwrap();
        let err = open_lock_file(&lock).unwrap_err();
        assert!(is_symlink_refusal(&err), "{err}");
        let err = read_nofollow(&lock).unwrap_err();
        assert!(is_symlink_refusal(&err), "{err}");
        // A dangling link must not create its target either.
        let dangling = dir.path().join("c2.lock");
        std::os::unix::fs::symlink(dir.path().join("created"), &dangling).unwrap();
        assert!(is_symlink_refusal(&open_lock_file(&dangling).unwrap_err()));
        assert!(!dir.path().join("created").exists());
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn lock_files_are_created_owner_only_and_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("c1.lock");
        drop(open_lock_file(&lock).unwrap());
        let mode = std::fs::metadata(&lock).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        drop(open_lock_file(&lock).unwrap());
        std::fs::write(dir.path().join("r"), "x").unwrap();
        assert_eq!(read_nofollow(&dir.path().join("r")).unwrap(), b"x");
    }
}
