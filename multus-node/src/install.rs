//! `multus-node install`: put the CNI plugin binaries of a mode onto the host.
//!
//! Thin mode installs `multus`, thick mode `multus-shim`; both also install `passthru`,
//! the plugin that opens the auxiliary CNI chain (`auxiliaryCNIChainName`), as upstream's
//! `install_multus` does. Each binary must be in the source directory.

use std::path::{Path, PathBuf};

use crate::atomic::{self, Copied};
use crate::error::NodeError;

/// Where the image keeps its binaries (`deployments/Containerfile`).
pub const IMAGE_BIN_DIR: &str = "/usr/src/multus-cni/bin";

/// The plugin every mode installs besides its own: the auxiliary chain's first plugin.
pub const PASSTHRU: &str = "passthru";

/// The deployment mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// `multus`, the thin plugin that does the work in the runtime's process.
    Thin,
    /// `multus-shim`, which forwards every call to `multus-daemon`.
    Thick,
}

impl Mode {
    /// The binaries this mode installs on the host, in installation order.
    pub fn binaries(self) -> &'static [&'static str] {
        match self {
            Self::Thin => &["multus", PASSTHRU],
            Self::Thick => &["multus-shim", PASSTHRU],
        }
    }
}

/// Install one binary from `source_dir` into `dest_dir` atomically; returns what was
/// done. `dest_dir` must exist (it is the host's CNI bin dir, mounted).
pub fn install_binary(source_dir: &Path, dest_dir: &Path, name: &str) -> Result<Copied, NodeError> {
    atomic::check_writable_dir(dest_dir, "CNI bin dir")?;
    let source = source_dir.join(name);
    if !source.exists() {
        return Err(NodeError::Source {
            path: source,
            problem: format!(
                "does not exist: the image lacks the {name} binary (or --source-dir is wrong)"
            ),
        });
    }
    atomic::copy_atomic(&source, &dest_dir.join(name))
}

/// Install every binary of `mode`; returns the installed paths.
pub fn install(mode: Mode, source_dir: &Path, dest_dir: &Path) -> Result<Vec<PathBuf>, NodeError> {
    let mut installed = Vec::new();
    for name in mode.binaries() {
        let outcome = install_binary(source_dir, dest_dir, name)?;
        let target = dest_dir.join(name);
        match outcome {
            Copied::Replaced => tracing::info!(path = %target.display(), "installed"),
            Copied::UpToDate => tracing::info!(path = %target.display(), "already up to date"),
        }
        installed.push(target);
    }
    Ok(installed)
}
