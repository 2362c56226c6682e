//! # multus-core
//!
//! The pure core of multus-rs, a Rust implementation of the Multus meta CNI plugin.
//!
//! It holds everything that decides *what* Multus does for a pod, and nothing that does
//! I/O: CNI specification types ([`cni`]), the Multus configuration ([`config`]),
//! NetworkAttachmentDefinitions, the pod annotations and network-status ([`nad`]),
//! delegate planning ([`plan`]) and the engine that runs ADD/DEL/CHECK over the
//! side-effect traits in [`seams`]. Other CNI projects can embed it and supply their own
//! implementations of those traits.
#![forbid(unsafe_code)]

pub mod cni;
pub mod config;
pub mod daemon_api;
pub mod daemon_config;
pub mod delegate;
pub mod devices;
pub mod engine;
pub mod generate;
pub mod identity;
pub mod nad;
pub mod plan;
pub mod request;
pub mod seams;
pub mod state;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod upstream;
