//! Directories holding multus's own state (sandbox records, pending-DEL markers): owned
//! by this process's user and writable by nobody else.
//!
//! A directory that others can write lets them plant symlinks or files where multus
//! writes as root. [`secure_dir`] creates a missing one with the wanted mode; it fixes
//! an existing one that is group- or world-writable (`0777`, `1777`, ...) or owned by
//! another user to the wanted mode and owner, and reports the fix so that the caller
//! logs a WARN. A symlink in place of the directory itself is refused.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt as _, MetadataExt as _, OpenOptionsExt as _};
use std::os::unix::fs::{PermissionsExt as _, fchown};
use std::path::Path;

use nix::libc;

/// What [`secure_dir`] found and did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirReport {
    /// The directory did not exist and was created.
    pub created: bool,
    /// It existed with unsafe permissions or owner and was fixed.
    pub fixed: Option<DirFix>,
}

/// An existing directory's unsafe state before [`secure_dir`] fixed it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirFix {
    /// Its permission bits (with setuid/setgid/sticky) before.
    pub old_mode: u32,
    /// Its owner before.
    pub old_uid: u32,
    /// The permission bits it has now.
    pub new_mode: u32,
}

/// Make sure `path` is a directory owned by this process's effective user that no one
/// else can write, creating it (and its missing parents) with `mode` when absent.
pub fn secure_dir(path: &Path, mode: u32) -> std::io::Result<DirReport> {
    let mut report = DirReport::default();
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => return Err(symlink_refused(path)),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(mode)
                .create(path)?;
            report.created = true;
        }
        Err(e) => return Err(e),
    }
    let dir = open_dir(path)?;
    let meta = dir.metadata()?;
    let uid = nix::unistd::geteuid().as_raw();
    let old_mode = meta.mode() & 0o7777;
    let foreign = meta.uid() != uid;
    if foreign || old_mode & 0o022 != 0 || old_mode & 0o1000 != 0 {
        if foreign {
            fchown(&dir, Some(uid), Some(nix::unistd::getegid().as_raw()))?;
        }
        dir.set_permissions(std::fs::Permissions::from_mode(mode))?;
        report.fixed = Some(DirFix {
            old_mode,
            old_uid: meta.uid(),
            new_mode: mode,
        });
    }
    Ok(report)
}

/// Open a directory itself, refusing a symlink in its place (one put there since it was
/// checked: `O_NOFOLLOW` with `O_DIRECTORY` fails with `ELOOP` or `ENOTDIR`).
fn open_dir(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP | libc::ENOTDIR) => symlink_refused(path),
            _ => e,
        })
}

fn symlink_refused(path: &Path) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("{} is a symbolic link or not a directory", path.display()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn creates_missing_directories_owner_only() {
        let root = tempfile::tempdir().unwrap();
        let path = root.path().join("a/b");
        let report = secure_dir(&path, 0o700).unwrap();
        assert!(report.created);
        assert_eq!(report.fixed, None);
        assert_eq!(mode_of(&path), 0o700);
        assert_eq!(secure_dir(&path, 0o700).unwrap(), DirReport::default());
    }

    #[test]
    fn world_writable_directories_are_tightened_and_reported() {
        let root = tempfile::tempdir().unwrap();
        for loose in [0o777, 0o1777, 0o770, 0o702] {
            let path = root.path().join(format!("d{loose:o}"));
            std::fs::create_dir(&path).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(loose)).unwrap();
            let report = secure_dir(&path, 0o700).unwrap();
            assert_eq!(report.fixed.map(|f| f.old_mode), Some(loose));
            assert_eq!(mode_of(&path), 0o700);
        }
        // Readable by the group is no risk: left as the admin set it.
        let path = root.path().join("readable");
        std::fs::create_dir(&path).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o750)).unwrap();
        assert_eq!(secure_dir(&path, 0o700).unwrap().fixed, None);
        assert_eq!(mode_of(&path), 0o750);
    }

    #[test]
    fn a_symlink_in_place_of_the_directory_is_refused() {
        let root = tempfile::tempdir().unwrap();
        let elsewhere = root.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o777)).unwrap();
        let link = root.path().join("state");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        let err = secure_dir(&link, 0o700).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(mode_of(&elsewhere), 0o777);
    }
}
