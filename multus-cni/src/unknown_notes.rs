//! Notes of sandboxes whose DEL had to guess what was attached (no multus-rs record, no
//! upstream cache, the pod's annotations unavailable): `<cniDir>/unknown/<containerID>.json`,
//! listed by `multus-ctl state list` as unknown attachments. A later DEL that knows the
//! sandbox's networks removes the note.

use std::path::{Path, PathBuf};

use multus_core::request::is_valid_container_id;
use multus_core::seams::StateError;
use multus_core::upstream::UnknownAttachments;

use crate::upstream_cache::entry_names;

/// Subdirectory of `cniDir` holding the notes.
pub const UNKNOWN_DIR: &str = "unknown";

/// One note as read: the container and the note, or why it cannot be read.
pub type Note = (String, Result<UnknownAttachments, String>);

/// The notes under one `cniDir`.
#[derive(Clone, Debug)]
pub struct UnknownNotes {
    dir: PathBuf,
}

fn io_error(path: &Path, source: std::io::Error) -> StateError {
    StateError::Io {
        path: path.to_owned(),
        source,
    }
}

impl UnknownNotes {
    /// The notes in `<cni_dir>/unknown`.
    pub fn new(cni_dir: &Path) -> Self {
        Self {
            dir: cni_dir.join(UNKNOWN_DIR),
        }
    }

    /// The note file of a container (`None` for an invalid container ID).
    pub fn path(&self, container_id: &str) -> Option<PathBuf> {
        is_valid_container_id(container_id).then(|| self.dir.join(format!("{container_id}.json")))
    }

    /// Write (`Some`) or remove (`None`) the note of a container.
    pub fn set(
        &self,
        container_id: &str,
        note: Option<&UnknownAttachments>,
    ) -> Result<(), StateError> {
        let Some(path) = self.path(container_id) else {
            return Ok(());
        };
        let Some(note) = note else {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io_error(&path, e)),
                _ => Ok(()),
            };
        };
        multus_host::dir::secure_dir(&self.dir, 0o700).map_err(|e| io_error(&self.dir, e))?;
        let bytes = serde_json::to_vec_pretty(note).map_err(|e| io_error(&path, e.into()))?;
        multus_host::atomic::write_atomic(&path, &bytes, 0o600)
            .map_err(|e| io_error(&path, e.into()))
    }

    /// Every note, sorted by container ID (unreadable ones as errors).
    pub fn list(&self) -> Result<Vec<Note>, StateError> {
        let mut ids: Vec<String> = entry_names(&self.dir, |_| true)?
            .into_iter()
            .filter_map(|name| name.strip_suffix(".json").map(str::to_owned))
            .filter(|id| is_valid_container_id(id))
            .collect();
        ids.sort();
        Ok(ids
            .into_iter()
            .map(|id| {
                let path = self.dir.join(format!("{id}.json"));
                let note = std::fs::read(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()));
                (id, note)
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn notes_are_written_listed_and_forgotten() {
        let dir = tempfile::tempdir().unwrap();
        let notes = UnknownNotes::new(dir.path());
        let note = UnknownAttachments {
            container_id: "c1".into(),
            pod_namespace: "default".into(),
            pod_name: "web".into(),
            pod_uid: "u1".into(),
            netns: "/var/run/netns/x".into(),
            deleted: vec!["cluster (eth0)".into()],
            reason: "pod gone".into(),
        };
        notes.set("c1", Some(&note)).unwrap();
        let mode = std::fs::metadata(notes.path("c1").unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let listed = notes.list().unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].1.as_ref().unwrap(), &note);
        notes.set("c1", None).unwrap();
        notes.set("c1", None).unwrap();
        assert!(notes.list().unwrap().is_empty());
        notes.set("../x", Some(&note)).unwrap();
        assert!(notes.list().unwrap().is_empty());
    }
}
