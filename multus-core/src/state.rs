//! The per-sandbox record multus persists before the first delegate runs, so that DEL,
//! CHECK and GC work from what was really attached, even when the API is gone.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cni::CniVersion;
use crate::nad::NetworkStatus;
use crate::plan::PlannedDelegate;

/// Version of the on-disk record layout.
pub const STATE_FORMAT: u32 = 1;

/// How far an ADD got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// Planned; delegates may be partly attached (an ADD in progress or interrupted).
    Adding,
    /// Every delegate was attached.
    Added,
}

/// One delegate of the sandbox and what it returned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    /// What was planned.
    #[serde(flatten)]
    pub delegate: PlannedDelegate,
    /// The result the delegate returned, as it returned it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

/// The record of one sandbox.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SandboxState {
    /// Layout version ([`STATE_FORMAT`]).
    pub format: u32,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// `CNI_NETNS` at ADD.
    pub netns: String,
    /// `CNI_IFNAME` at ADD.
    pub ifname: String,
    /// Pod namespace, name and UID from CNI_ARGS.
    pub pod_namespace: String,
    /// Pod name.
    pub pod_name: String,
    /// Pod UID.
    pub pod_uid: String,
    /// Multus' own cniVersion at ADD.
    pub cni_version: CniVersion,
    /// How far ADD got.
    pub phase: Phase,
    /// The delegates in ADD order.
    pub attachments: Vec<Attachment>,
    /// The network-status computed after ADD.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub network_status: Vec<NetworkStatus>,
    /// The CNI `name` of the multus network that made this record, so that GC of one
    /// multus network sharing a `cniDir` with another touches only its own records.
    /// Absent in records written before it existed (GC then treats them as its own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multus_network: Option<String>,
    /// The additional networks were attached concurrently (parallel attach), so DEL
    /// detaches them concurrently too. Absent when they were attached one by one.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub parallel_attach: bool,
}

impl SandboxState {
    /// Whether the multus network named `name` owns this record: it says so, or it
    /// predates [`SandboxState::multus_network`] and names no network at all.
    pub fn belongs_to(&self, name: &str) -> bool {
        self.multus_network.as_deref().is_none_or(|own| own == name)
    }
}
