//! File-based NetworkAttachmentDefinitions: a directory of YAML or JSON manifests, as
//! `kubectl apply -f` would take them. No API server is involved.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use multus_core::nad::{NetworkAttachmentDefinition, NetworkStatus, parse_manifests};
use multus_core::request::PodRef;
use multus_core::seams::{ApiError, ClusterApi, PodEvent, PodInfo};

use super::NoClusterApi;
use crate::files::has_extension;

const MANIFEST_EXTENSIONS: &[&str] = &["yaml", "yml", "json"];

/// Every NAD of a directory, with the problems of the files that did not parse.
type Catalog = (Vec<NetworkAttachmentDefinition>, Vec<String>);

/// NADs from manifest files; pods are unknown (their annotations come from the runtime).
///
/// The directory is read once per instance: the thin plugin makes one per CNI call, so
/// a pod with N networks parses the manifests once, not N times. Make a new instance
/// to see later changes.
///
/// The network-status is kept in multus' own state record rather than on a pod object.
#[derive(Clone, Debug)]
pub struct FileClusterApi {
    dir: PathBuf,
    catalog: std::sync::OnceLock<Result<Catalog, ApiError>>,
}

impl FileClusterApi {
    /// A source reading the manifests in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self {
            dir: dir.into(),
            catalog: std::sync::OnceLock::new(),
        }
    }

    fn catalog(&self) -> Result<&Catalog, ApiError> {
        self.catalog
            .get_or_init(|| self.load_all())
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Every NAD in the directory, with the problems of files that did not parse (read
    /// afresh).
    pub fn load_all(&self) -> Result<Catalog, ApiError> {
        let entries = std::fs::read_dir(&self.dir).map_err(|e| {
            ApiError::Unavailable(format!(
                "cannot read NetworkAttachmentDefinition directory {}: {e}",
                self.dir.display()
            ))
        })?;
        let mut paths: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| has_extension(p, MANIFEST_EXTENSIONS) && p.is_file())
            .collect();
        paths.sort();
        let mut nads = Vec::new();
        let mut problems = Vec::new();
        for path in paths {
            match read_manifest(&path) {
                Ok(found) => nads.extend(found),
                Err(problem) => {
                    tracing::warn!(%problem, "skipping manifest");
                    problems.push(problem);
                }
            }
        }
        Ok((nads, problems))
    }
}

fn read_manifest(path: &Path) -> Result<Vec<NetworkAttachmentDefinition>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_manifests(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[async_trait]
impl ClusterApi for FileClusterApi {
    async fn pod(&self, _pod: &PodRef) -> Result<Option<PodInfo>, ApiError> {
        Ok(None)
    }

    async fn network_attachment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<NetworkAttachmentDefinition>, ApiError> {
        let (nads, problems) = self.catalog()?;
        let found = nads
            .iter()
            .find(|nad| nad.namespace == namespace && nad.name == name);
        match found {
            Some(nad) => Ok(Some(nad.clone())),
            None if problems.is_empty() => Ok(None),
            None => Err(ApiError::Other(format!(
                "{namespace}/{name} not found, and some manifests in {} do not parse: {}",
                self.dir.display(),
                problems.join("; ")
            ))),
        }
    }

    /// Without a pod object the network-status lives in the sandbox record only.
    async fn set_network_status(
        &self,
        pod: &PodRef,
        status: &[NetworkStatus],
    ) -> Result<(), ApiError> {
        NoClusterApi.set_network_status(pod, status).await
    }

    /// Events go to the log.
    async fn emit_event(&self, pod: &PodRef, event: &PodEvent) -> Result<(), ApiError> {
        NoClusterApi.emit_event(pod, event).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NADS: &str = r#"
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: blue
spec:
  config: '{"cniVersion":"1.0.0","type":"bridge"}'
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: red
  namespace: team
spec:
  config: '{"cniVersion":"1.0.0","type":"macvlan"}'
"#;

    #[test]
    fn finds_nads_by_namespace_and_name() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("nets.yaml"), NADS).unwrap();
        let api = FileClusterApi::new(dir.path());
        let blue = pollster::block_on(api.network_attachment("default", "blue")).unwrap();
        assert_eq!(blue.unwrap().name, "blue");
        let red = pollster::block_on(api.network_attachment("team", "red")).unwrap();
        assert!(red.is_some());
        let none = pollster::block_on(api.network_attachment("default", "red")).unwrap();
        assert!(none.is_none());
    }

    #[test]
    fn broken_manifests_are_named_when_a_network_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("bad.yaml"), "kind: [").unwrap();
        let api = FileClusterApi::new(dir.path());
        let err = pollster::block_on(api.network_attachment("default", "x")).unwrap_err();
        assert!(err.to_string().contains("bad.yaml"), "{err}");
    }

    #[test]
    fn missing_directory_is_an_error() {
        let api = FileClusterApi::new("/nonexistent/nads");
        assert!(pollster::block_on(api.network_attachment("a", "b")).is_err());
    }
}
