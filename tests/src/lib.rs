//! # multus-integration-tests
//!
//! The harness shared by the workspace-level integration tests in `tests/tests/`: the
//! real `multus` binary is executed the way a CNI runtime executes it, with the real
//! reference plugins (`containernetworking-plugins`) as delegates, inside network
//! namespaces the tests create and always remove.
//!
//! - [`binaries`]: where `multus`, `cni-recorder`, `passthru`, the reference plugins and the system
//!   tools are, and the loud failure when something is missing.
//! - [`command`]: running a program with a clean environment, and what it did.
//! - [`netns`]: the [`netns::Node`] guard (a named namespace playing the node, and the
//!   pod namespaces made on it) and link inspection.
//! - [`runtime`]: [`runtime::Runtime`], which builds the `CNI_*` environment and runs
//!   `multus` inside the node namespace, to completion, within a time limit, or in the
//!   background ([`runtime::RunningCall`]: its pid, SIGKILL, wait).
//! - [`fixtures`]: per-test directories, multus and delegate configs, NAD manifests,
//!   state-file access and the "nothing leaked" assertion.
//! - [`recording`]: the record format written by the `cni-recorder` test plugin (with
//!   each call's start and end time), and its marker files (a slow call in flight, a
//!   `DEL-once` failure done).
//! - [`cri`]: a real containerd of the test's own, driven through the CRI v1 API.
//! - [`podman`]: a real podman (CNI backend) of the test's own.
//! - [`thick`]: a thick-mode node ([`thick::Thick`]): the real `multus-daemon` in the
//!   node namespace, the shim as the runtime, the API stand-in; shared by the tests of
//!   multus-daemon and multus-ctl.
//! - [`kube`]: a node with the API stand-in on its loopback and the real `multus` run
//!   in it against the API ([`kube::KubeNode`]), for multus-cni's Kubernetes tests.
//! - [`ctl`]: the built `multus-ctl`, a work directory from its fixtures, tables made
//!   comparable; [`fake_daemon`]: multus-daemon's socket answering fixed documents.
//! - [`manifests`]: the manifests of `deployments/` as typed Kubernetes objects.
//! - [`upstream`]: upstream Go Multus attaching a pod (the plugins run directly) and
//!   leaving its caches behind, for the tests of the switch to multus-rs.
//! - [`Harness`]: one node, its directories and a runtime, the usual start of a test,
//!   with the standard real-plugin networks ([`Harness::standard_networks`]).
//!
//! Every test needs root, `ip`, `ping` and the reference plugins; a missing piece is a
//! test failure with instructions, never a skip.

// This crate is test-only: its panics are test failures with a message.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

pub mod binaries;
pub mod command;
pub mod cri;
pub mod ctl;
pub mod fake_daemon;
pub mod fixtures;
mod harness;
pub mod kube;
pub mod manifests;
pub mod netns;
pub mod podman;
pub mod recording;
pub mod runtime;
pub mod thick;
pub mod upstream;

pub use harness::{
    BRIDGE_NAD, CLUSTER_NETWORK, Harness, MACVLAN_NAD, NODE_BRIDGE, StandardNetworks,
};
