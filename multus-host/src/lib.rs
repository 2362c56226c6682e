//! # multus-host
//!
//! Host-side primitives shared by every multus-rs binary (thin plugin, shim, daemon,
//! node installer), written once:
//!
//! - [`atomic`]: replace or create a file atomically (temp file created with
//!   `O_EXCL|O_NOFOLLOW`, written, fsynced, given its mode, renamed or linked into place,
//!   directory fsynced);
//! - [`dir`]: a state directory that only its owner can write (created `0700`; a loose
//!   existing one is tightened and reported);
//! - [`open`]: opening lock files and records without following a planted symlink;
//! - [`time`]: RFC 3339 timestamps;
//! - [`is_executable`] and [`DEFAULT_PATH`]: how plugins are found and run.
//!
//! It links no async runtime and no Kubernetes client, so the shim can use it.
#![forbid(unsafe_code)]

pub mod atomic;
pub mod dir;
pub mod open;
pub mod time;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;

/// The `PATH` a plugin runs with when the runtime gives none (the usual system PATH).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The longest file name (in bytes) Linux file systems hold (`NAME_MAX`).
pub const NAME_MAX: usize = 255;

/// Whether `path` is a regular file with an execute bit set (following symlinks, as
/// `exec` does).
pub fn is_executable(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn executables_are_files_with_an_execute_bit() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plugin");
        std::fs::write(&file, "#!/bin/sh\n").unwrap();
        assert!(!is_executable(&file));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(is_executable(&file));
        assert!(!is_executable(dir.path()));
        assert!(!is_executable(&dir.path().join("absent")));
        assert!(DEFAULT_PATH.split(':').all(|d| d.starts_with('/')));
    }
}
