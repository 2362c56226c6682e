//! The daemon's unix socket: its directory checked and made 0700, a stale socket
//! removed (never anything else), the socket 0600. Its connections are served by
//! [`crate::connections`].

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tokio::net::UnixListener;

/// Prepare `<dir>/multus.sock` and listen on it.
///
/// The directory must be owned by root (or by the daemon's user): a directory someone
/// else owns could let them swap the socket. It is created, or its mode set, to 0700.
/// An existing socket file is removed unless a daemon answers on it; any other file
/// there is left alone and is an error.
pub fn bind(dir: &Path) -> Result<(UnixListener, PathBuf), String> {
    let me = nix::unistd::geteuid().as_raw();
    match std::fs::symlink_metadata(dir) {
        Ok(meta) => {
            if !meta.is_dir() {
                return Err(format!(
                    "socketDir {} exists and is not a directory",
                    dir.display()
                ));
            }
            if meta.uid() != 0 && meta.uid() != me {
                return Err(format!(
                    "socketDir {} is owned by uid {}, not root: refusing to serve from it (another user could replace the socket)",
                    dir.display(),
                    meta.uid()
                ));
            }
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create socketDir {}: {e}", dir.display()))?;
        }
        Err(e) => return Err(format!("cannot inspect socketDir {}: {e}", dir.display())),
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| format!("cannot set the mode of socketDir {}: {e}", dir.display()))?;
    let path = multus_core::daemon_api::socket_path(dir);
    match std::fs::symlink_metadata(&path) {
        Ok(meta) if meta.file_type().is_socket() => {
            if std::os::unix::net::UnixStream::connect(&path).is_ok() {
                return Err(format!(
                    "another multus-daemon is serving {}; stop it first",
                    path.display()
                ));
            }
            std::fs::remove_file(&path)
                .map_err(|e| format!("cannot remove the stale socket {}: {e}", path.display()))?;
        }
        Ok(_) => {
            return Err(format!(
                "{} exists and is not a socket; refusing to remove it",
                path.display()
            ));
        }
        Err(_) => {}
    }
    let listener = UnixListener::bind(&path)
        .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot set the mode of {}: {e}", path.display()))?;
    Ok((listener, path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn socket_dir_and_socket_modes_and_stale_socket() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("run/multus");
        let (listener, path) = bind(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&path), 0o600);
        // A live daemon on it: refused.
        let err = bind(&dir).unwrap_err();
        assert!(err.contains("another multus-daemon"), "{err}");
        drop(listener);
        // A stale socket: replaced; a widened directory mode: narrowed.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
        let (_listener, _) = bind(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
    }

    #[test]
    fn other_files_and_foreign_directories_are_refused() {
        let root = tempfile::tempdir().unwrap();
        std::fs::write(root.path().join("multus.sock"), b"data").unwrap();
        assert!(bind(root.path()).unwrap_err().contains("not a socket"));
        assert!(root.path().join("multus.sock").exists());
        if nix::unistd::geteuid().is_root() {
            let foreign = root.path().join("foreign");
            std::fs::create_dir(&foreign).unwrap();
            nix::unistd::chown(&foreign, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
            assert!(bind(&foreign).unwrap_err().contains("owned by uid 65534"));
        }
    }
}
