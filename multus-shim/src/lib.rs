//! # multus-shim
//!
//! The thick-mode half that runs on the host: the `multus-shim` CNI plugin, which
//! forwards every CNI call to `multus-daemon` over its unix socket, and the pieces other
//! tools reuse to talk to that socket:
//!
//! - [`api`]: the socket API's wire types and paths (upstream-compatible);
//! - [`client`]: a blocking HTTP/1.1 client over a unix socket ([`client::SocketClient`]);
//! - [`readiness`]: waiting for `/readyz`, probing `/healthz`;
//! - [`shim`]: the plugin's logic ([`shim::run`]);
//! - [`pending`]: the memory of DELs that failed because the daemon was unreachable.
//!
//! No async runtime and no Kubernetes client: the shim is exec'd once per CNI call.
#![forbid(unsafe_code)]

/// The socket API's wire types, defined in multus-core so the daemon and the CLI share
/// them without linking the shim.
pub use multus_core::daemon_api as api;
pub mod client;
pub mod log;
pub mod pending;
pub mod readiness;
pub mod shim;

pub use client::{ClientError, HttpResponse, SocketClient};
