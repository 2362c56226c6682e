//! Sources of pods and NetworkAttachmentDefinitions.

mod file;
pub mod kube;
mod none;

pub use file::FileClusterApi;
pub use kube::{ApiSource, KubeClusterApi};
pub use none::NoClusterApi;
