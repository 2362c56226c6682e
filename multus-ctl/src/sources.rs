//! The node's sources: the Multus configuration file, the sandbox records, NAD manifest
//! directories. Everything here only reads.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use multus_cni::state_store::FileStateStore;
use multus_core::config::{DEFAULT_CNI_DIR, MultusConf};
use multus_core::delegate::runtime_stdin;
use multus_core::nad::NetworkAttachmentDefinition;
use multus_core::nad::parse_manifests;
use multus_core::state::SandboxState;
use serde_json::{Map, Value};

use crate::cli::StateSource;
use crate::error::{CtlError, one_line};

/// A Multus configuration file, parsed.
#[derive(Debug, Clone)]
pub struct LoadedConf {
    /// The file.
    pub path: PathBuf,
    /// What a runtime passes the plugin on stdin: the file's bytes, or for a config
    /// list, multus' entry with the list's `name` and `cniVersion`.
    pub bytes: Vec<u8>,
    /// That document.
    pub raw: Map<String, Value>,
    /// With defaults applied.
    pub conf: MultusConf,
    /// Whether the file is a config list (`00-multus.conflist`).
    pub from_list: bool,
}

/// A Multus configuration as a runtime hands it to the plugin, not yet checked as one.
#[derive(Debug, Clone)]
pub struct PluginStdin {
    /// The file.
    pub path: PathBuf,
    /// The plugin's stdin.
    pub bytes: Vec<u8>,
    /// That document.
    pub raw: Map<String, Value>,
    /// Whether the file is a config list.
    pub from_list: bool,
}

/// Read a Multus configuration file (`.conf`, or a `.conflist` whose multus entry is
/// taken, with the list's `name` and `cniVersion` as a runtime injects them: see
/// [`multus_core::delegate::runtime_stdin`]).
pub fn read_plugin_stdin(path: &Path) -> Result<PluginStdin, CtlError> {
    let bytes = std::fs::read(path).map_err(|e| {
        let what = format!("cannot read the Multus configuration {}", path.display());
        if e.kind() == std::io::ErrorKind::NotFound {
            CtlError::NotFound(format!(
                "{what}: no such file; pass --conf with the file your runtime uses (usually in /etc/cni/net.d)"
            ))
        } else {
            CtlError::Unreachable(format!("{what}: {}", one_line(e)))
        }
    })?;
    let stdin = runtime_stdin(&bytes).map_err(|e| invalid_conf(path, &e.to_string()))?;
    Ok(PluginStdin {
        path: path.to_owned(),
        bytes: stdin.bytes,
        raw: stdin.document,
        from_list: stdin.from_list,
    })
}

fn invalid_conf(path: &Path, reason: &str) -> CtlError {
    CtlError::Unreachable(format!(
        "cannot use the Multus configuration {}: {reason}; fix the file (see docs/configuration.md)",
        path.display()
    ))
}

/// Read and parse a Multus configuration.
pub fn load_conf(path: &Path) -> Result<LoadedConf, CtlError> {
    let stdin = read_plugin_stdin(path)?;
    let conf = MultusConf::parse(&stdin.bytes).map_err(|e| invalid_conf(path, &one_line(e)))?;
    Ok(LoadedConf {
        path: stdin.path,
        bytes: stdin.bytes,
        raw: stdin.raw,
        conf,
        from_list: stdin.from_list,
    })
}

/// The state directory: `--cni-dir`, else the configuration's `cniDir`, else the default.
pub fn cni_dir(source: &StateSource) -> Result<PathBuf, CtlError> {
    if let Some(dir) = &source.cni_dir {
        return Ok(dir.clone());
    }
    if let Some(conf) = &source.conf {
        return Ok(load_conf(conf)?.conf.cni_dir);
    }
    Ok(PathBuf::from(DEFAULT_CNI_DIR))
}

/// One sandbox record file.
#[derive(Debug, Clone)]
pub struct Record {
    /// `CNI_CONTAINERID` (the file's name).
    pub container_id: String,
    /// The file.
    pub path: PathBuf,
    /// The record, or why it cannot be read.
    pub state: Result<SandboxState, String>,
    /// When it was last written.
    pub modified: Option<SystemTime>,
}

impl Record {
    /// Whether the record's network namespace path still exists (`None`: unreadable
    /// record).
    pub fn netns_exists(&self) -> Option<bool> {
        self.state.as_ref().ok().map(|s| netns_exists(&s.netns))
    }
}

/// Whether a network namespace path exists (one we may not stat, such as another
/// process' `/proc/<pid>/ns/net`, exists too).
pub fn netns_exists(path: &str) -> bool {
    !path.is_empty()
        && std::fs::metadata(path)
            .map_or_else(|e| e.kind() != std::io::ErrorKind::NotFound, |_| true)
}

/// Reads the records under `<cniDir>/sandboxes` without changing anything (a corrupt
/// record is reported, not moved aside).
#[derive(Debug, Clone)]
pub struct Records {
    store: FileStateStore,
}

impl Records {
    /// Records of the state directory `cni_dir`.
    pub fn new(cni_dir: &Path) -> Self {
        Self {
            store: FileStateStore::new(cni_dir),
        }
    }

    /// The directory holding the records.
    pub fn dir(&self) -> &Path {
        self.store.dir()
    }

    /// Every record, sorted by container ID.
    pub fn list(&self) -> Result<Vec<Record>, CtlError> {
        if let Err(e) = std::fs::metadata(self.dir())
            && e.kind() != std::io::ErrorKind::NotFound
        {
            return Err(self.unreadable(e));
        }
        let ids = self.store.list_blocking().map_err(|e| {
            CtlError::Unreachable(format!(
                "cannot list sandbox records: {}; check --cni-dir/--conf and that you are root",
                one_line(e)
            ))
        })?;
        Ok(ids.iter().map(|id| self.read(id)).collect())
    }

    /// The record of one container; `NotFound` when there is none.
    pub fn get(&self, container_id: &str) -> Result<Record, CtlError> {
        if !multus_core::request::is_valid_container_id(container_id) {
            return Err(CtlError::Usage(format!(
                "{container_id:?} is not a valid container ID (letters, digits, '_', '.', '-')"
            )));
        }
        let path = self.store.record_path(container_id);
        match std::fs::metadata(&path) {
            Ok(_) => Ok(self.read(container_id)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(CtlError::NotFound(format!(
                "no sandbox record for container {container_id} in {}; list them with `multus-ctl state list` (and check --cni-dir/--conf)",
                self.dir().display()
            ))),
            Err(e) => Err(self.unreadable(e)),
        }
    }

    /// The newest readable record of pod `namespace/name`.
    pub fn find_pod(&self, namespace: &str, name: &str) -> Result<Option<Record>, CtlError> {
        let mut found: Vec<Record> = self
            .list()?
            .into_iter()
            .filter(|r| {
                r.state
                    .as_ref()
                    .is_ok_and(|s| s.pod_namespace == namespace && s.pod_name == name)
            })
            .collect();
        found.sort_by(|a, b| {
            a.modified
                .cmp(&b.modified)
                .then(a.container_id.cmp(&b.container_id))
        });
        Ok(found.pop())
    }

    fn read(&self, container_id: &str) -> Record {
        let path = self.store.record_path(container_id);
        let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
        let state = std::fs::read(&path)
            .map_err(|e| format!("cannot read {}: {}", path.display(), one_line(e)))
            .and_then(|bytes| {
                serde_json::from_slice::<SandboxState>(&bytes)
                    .map_err(|e| format!("corrupt record {}: {e}", path.display()))
            })
            .and_then(|state| {
                if state.container_id == container_id {
                    Ok(state)
                } else {
                    Err(format!(
                        "record {} names container {:?}",
                        path.display(),
                        state.container_id
                    ))
                }
            });
        Record {
            container_id: container_id.to_owned(),
            path,
            state,
            modified,
        }
    }

    fn unreadable(&self, e: std::io::Error) -> CtlError {
        CtlError::Unreachable(format!(
            "cannot read the state directory {}: {}; check --cni-dir/--conf and that you are root",
            self.dir().display(),
            one_line(e)
        ))
    }
}

/// The NADs of a directory with their files, and the files that did not parse.
pub type DirNads = (
    Vec<(PathBuf, NetworkAttachmentDefinition)>,
    Vec<(PathBuf, String)>,
);

/// Every NAD in a directory of manifests, with the files that did not parse.
pub fn nads_in_dir(dir: &Path) -> Result<DirNads, CtlError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        let what = format!(
            "cannot read the NetworkAttachmentDefinition directory {}",
            dir.display()
        );
        if e.kind() == std::io::ErrorKind::NotFound {
            CtlError::NotFound(format!("{what}: no such directory; check --nad-dir"))
        } else {
            CtlError::Unreachable(format!("{what}: {}", one_line(e)))
        }
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_file()
                && p.extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| ["yaml", "yml", "json"].contains(&e))
        })
        .collect();
    paths.sort();
    let mut nads = Vec::new();
    let mut problems = Vec::new();
    for path in paths {
        match read_manifest_file(&path) {
            Ok(found) => nads.extend(found.into_iter().map(|n| (path.clone(), n))),
            Err(problem) => problems.push((path, problem)),
        }
    }
    Ok((nads, problems))
}

/// The NADs of one manifest file.
pub fn read_manifest_file(path: &Path) -> Result<Vec<NetworkAttachmentDefinition>, String> {
    let text = std::fs::read_to_string(path).map_err(one_line)?;
    parse_manifests(&text).map_err(one_line)
}

/// Split `NS/NAME` (or `NAME`, in `default`).
pub fn split_namespaced(text: &str, what: &str) -> Result<(String, String), CtlError> {
    let (namespace, name) = match text.split_once('/') {
        Some((ns, name)) => (ns, name),
        None => ("default", text),
    };
    let valid = |s: &str| {
        !s.is_empty()
            && s.len() <= 253
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
    };
    if !valid(namespace) || !valid(name) {
        return Err(CtlError::Usage(format!(
            "{text:?} is not a {what} reference: expected NAMESPACE/NAME (lower-case letters, digits, '-', '.')"
        )));
    }
    Ok((namespace.to_owned(), name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaced_names_split_with_default_namespace() {
        assert_eq!(
            split_namespaced("team/web-1", "pod").unwrap(),
            ("team".to_owned(), "web-1".to_owned())
        );
        assert_eq!(
            split_namespaced("web", "pod").unwrap(),
            ("default".to_owned(), "web".to_owned())
        );
        assert!(split_namespaced("a/b/c", "pod").is_err());
        assert!(split_namespaced("/x", "pod").is_err());
        assert!(split_namespaced("Team/x", "pod").is_err());
    }
}
