//! Atomic file replacement on the node, through the one writer of
//! [`multus_host::atomic`]: a temporary file in the target's own directory, written,
//! fsynced and given its final mode, then renamed over the target, then the directory
//! fsynced.
//!
//! The target is never opened for writing, so a runtime executing the old binary never
//! sees a partial file and the copy never fails with "text file busy" (ETXTBSY, the
//! failure of a plain `cp` over a running binary, upstream #1221): the old inode lives
//! on until its last user exits, and a new `exec` finds the new one.

use std::fs::File;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

use crate::error::NodeError;

/// Check that `dir` exists, is a directory and is writable by this process.
pub fn check_writable_dir(dir: &Path, what: &str) -> Result<(), NodeError> {
    let meta = std::fs::metadata(dir).map_err(|e| NodeError::Dir {
        what: what.to_owned(),
        path: dir.to_owned(),
        problem: if e.kind() == std::io::ErrorKind::NotFound {
            "does not exist".to_owned()
        } else {
            format!("cannot be read: {e}")
        },
    })?;
    if !meta.is_dir() {
        return Err(NodeError::Dir {
            what: what.to_owned(),
            path: dir.to_owned(),
            problem: "is not a directory".to_owned(),
        });
    }
    nix::unistd::access(
        dir,
        nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
    )
    .map_err(|e| NodeError::Dir {
        what: what.to_owned(),
        path: dir.to_owned(),
        problem: if e == nix::errno::Errno::EROFS {
            "is on a read-only file system".to_owned()
        } else {
            format!("is not writable: {e}")
        },
    })?;
    // access(2) answers for the real uid and ignores read-only mounts in some cases;
    // statvfs tells about a read-only mount for sure.
    if let Ok(stat) = nix::sys::statvfs::statvfs(dir) {
        if stat.flags().contains(nix::sys::statvfs::FsFlags::ST_RDONLY) {
            return Err(NodeError::Dir {
                what: what.to_owned(),
                path: dir.to_owned(),
                problem: "is on a read-only file system".to_owned(),
            });
        }
    }
    Ok(())
}

/// Replace `target` with `bytes`, atomically, with permission bits `mode`.
pub fn write_atomic(target: &Path, bytes: &[u8], mode: u32) -> Result<(), NodeError> {
    write_atomic_with(target, mode, |file| std::io::Write::write_all(file, bytes))
}

/// Replace `target` atomically with what `fill` writes into the temporary file, with
/// permission bits `mode`. Temporary files of `target` left by a crashed installer are
/// removed first (the installer is their only writer).
pub fn write_atomic_with(
    target: &Path,
    mode: u32,
    fill: impl FnOnce(&mut File) -> std::io::Result<()>,
) -> Result<(), NodeError> {
    match multus_host::atomic::remove_stale_temps(target) {
        Ok(removed) => {
            for path in removed {
                tracing::info!(path = %path.display(), "removed a stale temporary file");
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(NodeError::Io {
                action: "remove stale temporary files beside".to_owned(),
                path: target.to_owned(),
                source,
            });
        }
    }
    multus_host::atomic::write_atomic_with(target, mode, fill).map_err(|e| NodeError::Io {
        action: e.action.to_owned(),
        path: e.path,
        source: e.source,
    })
}

/// Whether two files have the same bytes, compared in chunks (binaries are megabytes:
/// never read whole into memory).
fn same_content(a: &Path, b: &Path) -> std::io::Result<bool> {
    let mut a = std::io::BufReader::with_capacity(CHUNK, File::open(a)?);
    let mut b = std::io::BufReader::with_capacity(CHUNK, File::open(b)?);
    let (mut x, mut y) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    loop {
        let n = read_full(&mut a, &mut x)?;
        let m = read_full(&mut b, &mut y)?;
        if n != m || x[..n] != y[..m] {
            return Ok(false);
        }
        if n == 0 {
            return Ok(true);
        }
    }
}

/// Read until `buf` is full or the end of the file.
fn read_full(reader: &mut impl std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

/// Chunk size of comparisons.
const CHUNK: usize = 64 * 1024;

/// What [`copy_atomic`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Copied {
    /// The target was written.
    Replaced,
    /// The target already had the same bytes and mode.
    UpToDate,
}

/// Copy `source` over `target` atomically, with the source's permission bits. A target
/// that already has the same content and mode is left alone.
pub fn copy_atomic(source: &Path, target: &Path) -> Result<Copied, NodeError> {
    let meta = std::fs::metadata(source).map_err(|e| NodeError::Source {
        path: source.to_owned(),
        problem: if e.kind() == std::io::ErrorKind::NotFound {
            "does not exist".to_owned()
        } else {
            e.to_string()
        },
    })?;
    if !meta.is_file() {
        return Err(NodeError::Source {
            path: source.to_owned(),
            problem: "is not a regular file".to_owned(),
        });
    }
    let mode = meta.permissions().mode() & 0o7777;
    let mut reader = File::open(source).map_err(|e| NodeError::Source {
        path: source.to_owned(),
        problem: format!("cannot be read: {e}"),
    })?;
    if let Ok(existing) = std::fs::metadata(target) {
        if existing.is_file()
            && existing.permissions().mode() & 0o7777 == mode
            && existing.len() == meta.len()
            && same_content(source, target).unwrap_or(false)
        {
            return Ok(Copied::UpToDate);
        }
    }
    write_atomic_with(target, mode, |file| {
        std::io::copy(&mut reader, file).map(|_| ())
    })?;
    Ok(Copied::Replaced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_with_the_mode_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("conf");
        let stale = multus_host::atomic::temp_path(&target, 7);
        std::fs::write(&stale, "stale").unwrap();
        write_atomic(&target, b"one", 0o600).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"one");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(!stale.exists());
        write_atomic(&target, b"two", 0o644).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1);
    }

    #[test]
    fn copies_keep_the_source_mode_and_skip_identical_targets() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("src");
        std::fs::write(&source, "binary").unwrap();
        std::fs::set_permissions(&source, std::fs::Permissions::from_mode(0o755)).unwrap();
        let target = dir.path().join("dst");
        assert_eq!(copy_atomic(&source, &target).unwrap(), Copied::Replaced);
        let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755);
        assert_eq!(copy_atomic(&source, &target).unwrap(), Copied::UpToDate);
        std::fs::write(&source, "binary2").unwrap();
        assert_eq!(copy_atomic(&source, &target).unwrap(), Copied::Replaced);
        assert_eq!(std::fs::read(&target).unwrap(), b"binary2");
    }

    #[test]
    fn a_missing_source_or_directory_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = copy_atomic(&dir.path().join("nope"), &dir.path().join("x")).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        let err = check_writable_dir(&dir.path().join("missing"), "CNI bin dir").unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        let file = dir.path().join("file");
        std::fs::write(&file, "").unwrap();
        let err = check_writable_dir(&file, "CNI bin dir").unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }
}
