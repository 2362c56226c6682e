//! Upstream Go Multus' cache files on the node, read (and, once their sandbox is
//! deleted, removed) so that multus-rs can tear down what upstream attached:
//!
//! - `<cniDir>/<containerID>`: upstream's scratch cache of the sandbox's delegates;
//! - `<cniDir>/results/<netName>-<containerID>-<ifName>`: libcni's result cache of each
//!   delegate upstream ran.
//!
//! The formats and their translation into a record are in
//! [`multus_core::upstream`]; this module only finds and reads the files.

use std::io::Read;
use std::path::{Path, PathBuf};

use multus_core::request::is_valid_container_id;
use multus_core::seams::StateError;
use multus_core::upstream::{LibcniCacheEntry, RESULTS_DIR, UpstreamSandbox, parse_scratch};

/// The largest cache file read: upstream's are a few KiB.
const MAX_CACHE_FILE: u64 = 4 << 20;

/// Upstream's caches under one `cniDir`.
#[derive(Clone, Debug)]
pub struct UpstreamCacheDir {
    cni_dir: PathBuf,
}

fn io_error(path: &Path, source: std::io::Error) -> StateError {
    StateError::Io {
        path: path.to_owned(),
        source,
    }
}

/// The names of the entries of `dir` that `keep` accepts; none when `dir` does not exist.
pub(crate) fn entry_names(
    dir: &Path,
    keep: impl Fn(&std::fs::DirEntry) -> bool,
) -> Result<Vec<String>, StateError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error(dir, e)),
    };
    Ok(entries
        .filter_map(Result::ok)
        .filter(|e| keep(e))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect())
}

/// The file's bytes; `None` when it does not exist. Files larger than any cache
/// upstream writes are refused.
fn read_bounded(path: &Path) -> Result<Option<Vec<u8>>, StateError> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path, e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_CACHE_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(path, e))?;
    if bytes.len() as u64 > MAX_CACHE_FILE {
        return Err(io_error(
            path,
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("larger than {MAX_CACHE_FILE} bytes: not an upstream cache"),
            ),
        ));
    }
    Ok(Some(bytes))
}

impl UpstreamCacheDir {
    /// Upstream's caches in `cni_dir` (multus' own `cniDir`: upstream used the same).
    pub fn new(cni_dir: &Path) -> Self {
        Self {
            cni_dir: cni_dir.to_owned(),
        }
    }

    /// Upstream's scratch cache file of a container.
    pub fn scratch_path(&self, container_id: &str) -> PathBuf {
        self.cni_dir.join(container_id)
    }

    /// What upstream left for this container: `None` when there is nothing usable (no
    /// scratch cache and no libcni entry; an unparsable scratch cache is logged and then
    /// stands in for nothing).
    pub fn read(&self, container_id: &str) -> Result<Option<UpstreamSandbox>, StateError> {
        if !is_valid_container_id(container_id) {
            return Ok(None);
        }
        let mut files = Vec::new();
        let scratch_path = self.scratch_path(container_id);
        let delegates = match read_bounded(&scratch_path)? {
            Some(bytes) => {
                files.push(scratch_path.clone());
                parse_scratch(container_id, &bytes)
                    .map_err(|e| tracing::warn!(path = %scratch_path.display(), error = %e, "upstream Multus' scratch cache does not parse"))
                    .ok()
            }
            None => None,
        };
        let results = self.results_of(container_id, &mut files)?;
        if delegates.is_none() && results.is_empty() {
            return Ok(None);
        }
        Ok(Some(UpstreamSandbox {
            container_id: container_id.to_owned(),
            delegates,
            results,
            files,
        }))
    }

    /// libcni's entries of one container, sorted by file name; their paths are added to
    /// `files`.
    fn results_of(
        &self,
        container_id: &str,
        files: &mut Vec<PathBuf>,
    ) -> Result<Vec<LibcniCacheEntry>, StateError> {
        let dir = self.cni_dir.join(RESULTS_DIR);
        let infix = format!("-{container_id}-");
        let mut names = entry_names(&dir, |e| e.file_name().to_string_lossy().contains(&infix))?;
        names.sort();
        let mut found = Vec::new();
        for name in names {
            let path = dir.join(&name);
            let Some(bytes) = read_bounded(&path)? else {
                continue;
            };
            match LibcniCacheEntry::parse(&bytes) {
                Some(entry) if entry.container_id == container_id && entry.file_name() == name => {
                    files.push(path);
                    found.push(entry);
                }
                _ => {
                    tracing::debug!(path = %path.display(), "not a libcni cache entry of this container")
                }
            }
        }
        Ok(found)
    }

    /// Remove the files a sandbox was read from (no error when already gone).
    pub fn remove(&self, sandbox: &UpstreamSandbox) -> Result<(), StateError> {
        for path in &sandbox.files {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_error(path, e)),
            }
        }
        Ok(())
    }

    /// The containers upstream has a scratch cache for: the regular files directly in
    /// `cniDir` named like a container ID, sorted.
    pub fn list(&self) -> Result<Vec<String>, StateError> {
        let mut ids = entry_names(&self.cni_dir, |e| e.file_type().is_ok_and(|t| t.is_file()))?;
        ids.retain(|name| is_valid_container_id(name));
        ids.sort();
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "9f3b1c0d7e2a4b5c8d6e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e";
    const FIXTURES: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../multus-core/testdata/upstream"
    );

    fn node() -> (tempfile::TempDir, UpstreamCacheDir) {
        let dir = tempfile::tempdir().unwrap();
        let fixtures = Path::new(FIXTURES);
        std::fs::copy(fixtures.join("head-scratch.json"), dir.path().join(ID)).unwrap();
        std::fs::create_dir(dir.path().join(RESULTS_DIR)).unwrap();
        for entry in std::fs::read_dir(fixtures.join(RESULTS_DIR)).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(
                entry.path(),
                dir.path().join(RESULTS_DIR).join(entry.file_name()),
            )
            .unwrap();
        }
        // Another container's entry, and multus-rs' own directories.
        std::fs::write(
            dir.path().join(RESULTS_DIR).join("cluster-other-eth0"),
            br#"{"kind":"cniCacheV1","containerId":"other","ifName":"eth0","networkName":"cluster"}"#,
        )
        .unwrap();
        std::fs::create_dir(dir.path().join("sandboxes")).unwrap();
        let caches = UpstreamCacheDir::new(dir.path());
        (dir, caches)
    }

    #[test]
    fn reads_lists_and_removes_a_sandboxs_caches() {
        let (dir, caches) = node();
        assert_eq!(caches.list().unwrap(), [ID]);
        let sandbox = caches.read(ID).unwrap().unwrap();
        assert_eq!(sandbox.delegates.as_ref().unwrap().len(), 3);
        assert_eq!(sandbox.results.len(), 3);
        assert_eq!(sandbox.files.len(), 4);
        caches.remove(&sandbox).unwrap();
        assert!(caches.read(ID).unwrap().is_none());
        assert!(caches.list().unwrap().is_empty());
        // The other container's entry is untouched.
        assert!(
            dir.path()
                .join(RESULTS_DIR)
                .join("cluster-other-eth0")
                .exists()
        );
        caches.remove(&sandbox).unwrap();
    }

    #[test]
    fn nothing_usable_is_none_and_bad_ids_never_touch_paths() {
        let (dir, caches) = node();
        assert!(caches.read("nothing-here").unwrap().is_none());
        assert!(caches.read("../etc").unwrap().is_none());
        // A corrupt scratch cache alone is nothing usable; with libcni's entries the
        // sandbox is still known.
        std::fs::write(dir.path().join("broken"), b"[{").unwrap();
        assert!(caches.read("broken").unwrap().is_none());
        std::fs::write(dir.path().join(ID), b"[{").unwrap();
        let sandbox = caches.read(ID).unwrap().unwrap();
        assert!(sandbox.delegates.is_none());
        assert_eq!(sandbox.results.len(), 3);
    }
}
