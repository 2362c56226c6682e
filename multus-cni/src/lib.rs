//! # multus-cni
//!
//! The node-side half of multus-rs: real implementations of the [`multus_core::seams`]
//! traits (delegate plugins run as child processes, per-sandbox state on disk, network
//! namespace inspection, CNI config files and file-based NetworkAttachmentDefinitions)
//! and the CNI protocol edge used by the thin `multus` binary.
// Unsafe code is refused everywhere but in `exec::spawn`, which starts a delegate with
// clone(CLONE_VM | CLONE_VFORK) and runs a few system calls in the child before exec.
#![deny(unsafe_code)]

pub mod cluster;
pub mod daemon_config;
pub mod devices;
pub mod edge;
pub mod exec;
pub mod files;
pub mod identity;
pub mod logging;
pub mod netns;
pub mod state_store;
pub mod unknown_notes;
pub mod upstream_cache;
