//! # multus-node
//!
//! The node installer of multus-rs, run by the DaemonSets in `deployments/`:
//!
//! - `install --type thin|thick`: copies `multus` or `multus-shim` into the host's CNI
//!   bin dir atomically ([`atomic`]), so a runtime executing the old binary never sees
//!   a partial file and the copy never fails with "text file busy";
//! - `thin-entrypoint`: the thin DaemonSet's main process ([`thin`]): installs
//!   `multus`, writes its kubeconfig from the pod's service account and keeps it fresh
//!   as the token rotates ([`kubeconfig`]), generates `00-multus.conf(list)` from the
//!   primary CNI config with [`multus_core::generate`] and follows the primary's changes;
//! - `probe`: the DaemonSets' exec probes ([`probe`], [`thin::probe`]).
//!
//! The command line is in [`cli`]; [`cli::command`] gives it to tests.

pub mod atomic;
pub mod cli;
pub mod error;
pub mod identity;
pub mod install;
pub mod kubeconfig;
pub mod probe;
pub mod thin;

pub use error::NodeError;
