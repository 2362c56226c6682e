//! CNI config files read from the node's file system.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use multus_core::seams::ConfigFiles;

/// File extensions of CNI config files, as libcni recognises them.
const CONFIG_EXTENSIONS: &[&str] = &["conf", "conflist", "json"];

/// Reads config files directly.
#[derive(Clone, Copy, Debug, Default)]
pub struct FsConfigFiles;

#[async_trait]
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

    async fn wait_for(&self, path: &Path, timeout: Duration, interval: Duration) -> bool {
        wait_for_path(path, timeout, interval).await
    }
}

/// Wait until something exists at `path`, checking every `interval` for at most
/// `timeout`; whether it exists.
///
/// Sleeps with `tokio::time::sleep` when called on a tokio runtime (which must have its
/// timer enabled, as the daemon's and the thin plugin's Kubernetes runtime do), so that
/// no thread of the runtime is held while waiting. Without one (the thin plugin's path
/// without an API server, driven by a plain executor, with nothing else to do) it
/// sleeps the calling thread.
pub async fn wait_for_path(path: &Path, timeout: Duration, interval: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let on_tokio = tokio::runtime::Handle::try_current().is_ok();
    loop {
        if path.exists() {
            return true;
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        tracing::info!(path = %path.display(), "waiting for readinessindicatorfile");
        let pause = interval.min(deadline - now);
        if on_tokio {
            tokio::time::sleep(pause).await;
        } else {
            std::thread::sleep(pause);
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
        let wait = |timeout| pollster::block_on(FsConfigFiles.wait_for(&path, timeout, short));
        assert!(!wait(Duration::from_millis(100)));
        assert!(started.elapsed() >= Duration::from_millis(100));
        let writer = {
            let path = path.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_millis(50));
                std::fs::write(path, "").unwrap();
            })
        };
        assert!(wait(Duration::from_secs(5)));
        writer.join().unwrap();
    }

    /// On a current-thread runtime the wait must not hold the thread: the task that
    /// creates the file runs on that same thread.
    #[tokio::test(flavor = "current_thread")]
    async fn waiting_on_a_current_thread_runtime_lets_its_other_tasks_run() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ready");
        let writer = {
            let path = path.clone();
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                std::fs::write(path, "").unwrap();
            })
        };
        let found = FsConfigFiles
            .wait_for(&path, Duration::from_secs(2), Duration::from_millis(20))
            .await;
        assert!(found, "the writer task never ran while waiting");
        writer.await.unwrap();
    }
}
