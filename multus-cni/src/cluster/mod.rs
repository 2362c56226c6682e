//! Sources of pods and NetworkAttachmentDefinitions.

mod file;
mod none;

pub use file::FileClusterApi;
pub use none::NoClusterApi;
