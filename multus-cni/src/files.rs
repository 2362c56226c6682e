//! CNI config files read from the node's file system.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use multus_core::seams::ConfigFiles;

/// File extensions of CNI config files, as libcni recognises them.
const CONFIG_EXTENSIONS: &[&str] = &["conf", "conflist", "json"];

/// Reads config files directly.
#[derive(Clone, Copy, Debug, Default)]
pub struct FsConfigFiles;

impl ConfigFiles for FsConfigFiles {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn is_dir(&self, path: &Path) -> bool {
        path.is_dir()
    }

    fn list_configs(&self, dir: &Path) -> std::io::Result<Vec<(PathBuf, Vec<u8>)>> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| has_extension(path, CONFIG_EXTENSIONS) && path.is_file())
            .collect();
        paths.sort();
        Ok(paths
            .into_iter()
            .filter_map(|path| match std::fs::read(&path) {
                Ok(bytes) => Some((path, bytes)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "skipping unreadable CNI config");
                    None
                }
            })
            .collect())
    }

    fn exists(&self, path: &Path) -> bool {
        path.exists()
    }

    /// Polls with `std::thread::sleep`: the thin plugin has nothing else to do meanwhile
    /// (on the Kubernetes path no request is in flight yet when it waits).
    fn wait_for(&self, path: &Path, timeout: Duration, interval: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if path.exists() {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            tracing::info!(path = %path.display(), "waiting for readinessindicatorfile");
            std::thread::sleep(interval.min(deadline - now));
        }
    }
}

/// Whether the file name ends in one of `extensions`.
pub fn has_extension(path: &Path, extensions: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| extensions.contains(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_only_cni_configs_sorted() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["20-b.conflist", "10-a.conf", "notes.txt", "30-c.json"] {
            std::fs::write(dir.path().join(name), name).unwrap();
        }
        std::fs::create_dir(dir.path().join("99-dir.conf")).unwrap();
        let listed: Vec<String> = FsConfigFiles
            .list_configs(dir.path())
            .unwrap()
            .into_iter()
            .map(|(p, _)| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(listed, vec!["10-a.conf", "20-b.conflist", "30-c.json"]);
    }

    #[test]
    fn a_missing_directory_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = FsConfigFiles
            .list_configs(&dir.path().join("absent"))
            .unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }

    #[test]
    fn waits_for_a_file_within_the_bound() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ready");
        let started = Instant::now();
        let short = Duration::from_millis(30);
        assert!(!FsConfigFiles.wait_for(&path, Duration::from_millis(100), short));
        assert!(started.elapsed() >= Duration::from_millis(100));
        let writer = {
            let path = path.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                std::fs::write(path, "").unwrap();
            })
        };
        assert!(FsConfigFiles.wait_for(&path, Duration::from_secs(5), short));
        writer.join().unwrap();
    }
}
