//! Errors of multus-node: each names the path, what was wrong and what to do.

use std::path::PathBuf;

/// A failure of an installer step. Every one ends the process with a non-zero status.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// A host directory the DaemonSet should have mounted is missing or unusable.
    #[error(
        "{what} {path} {problem}: check the DaemonSet's hostPath mount for it (and that the container runs as root, privileged)"
    )]
    Dir {
        /// Which directory (`CNI bin dir`, `CNI conf dir`, ...).
        what: String,
        /// Its path inside the container.
        path: PathBuf,
        /// `does not exist`, `is not writable: ...`, ...
        problem: String,
    },
    /// A file the image or the pod should provide is missing.
    #[error("{path} {problem}")]
    Source {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// A file operation failed.
    #[error("cannot {action} {path}: {source}")]
    Io {
        /// What was being done.
        action: String,
        /// On which path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The service account or the API server address is not available.
    #[error("{0}")]
    ServiceAccount(String),
    /// The primary CNI configuration cannot be used.
    #[error("{0}")]
    Config(String),
    /// A command-line value is invalid.
    #[error("{0}")]
    Usage(String),
    /// A probe failed.
    #[error("{0}")]
    Probe(String),
}
