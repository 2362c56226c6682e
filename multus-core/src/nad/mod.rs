//! NetworkAttachmentDefinitions, the `k8s.v1.cni.cncf.io/networks` annotation and the
//! `k8s.v1.cni.cncf.io/network-status` annotation.

pub mod annotation;
pub mod manifest;
pub mod status;

pub use annotation::{NetworkSelectionElement, parse_networks_annotation};
pub use manifest::{NetworkAttachmentDefinition, parse_manifests};
pub use status::NetworkStatus;

/// Pod annotation naming the additional networks of a pod.
pub const NETWORKS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/networks";
/// Pod annotation replacing the cluster network of a pod.
pub const DEFAULT_NETWORK_ANNOTATION: &str = "v1.multus-cni.io/default-network";
/// Pod annotation turning parallel attach on (`"true"`) or off (`"false"`) for one pod,
/// whatever the multus configuration's `parallelAttach` says (multus-rs).
pub const PARALLEL_ATTACH_ANNOTATION: &str = "k8s.v1.cni.cncf.io/parallel-attach";
/// Pod annotation that Multus writes after ADD.
pub const NETWORK_STATUS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/network-status";
/// NAD annotation naming the device-plugin resource behind a network.
pub const RESOURCE_NAME_ANNOTATION: &str = "k8s.v1.cni.cncf.io/resourceName";
