//! The report `multus-ctl pod` emits: what was asked, recorded and is live, and the
//! findings; its JSON form is the `--output json` document.

use std::net::IpAddr;

use multus_cni::netns::inspect::NetnsSnapshot;
use multus_core::nad::NetworkStatus;
use serde::Serialize;

use crate::output::Level;
use crate::recorded::RecordedInterface;

/// A difference between what was asked, recorded and is live.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Finding {
    /// Stable identifier: `stale-state`, `no-record`, `missing-interface`, ...
    pub(super) kind: &'static str,
    pub(super) level: Level,
    /// The interface, network or record concerned.
    pub(super) subject: String,
    pub(super) detail: String,
    pub(super) fix: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PodView {
    pub(super) namespace: String,
    pub(super) name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) node: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Sources {
    /// The Kubernetes API used, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) api: Option<String>,
    /// The sandbox record read, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) record: Option<String>,
    /// Where current NADs were read for comparison, if anywhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) nads: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Requested {
    /// `api` (the pod's annotation), `record` (the annotation the runtime passed at ADD)
    /// or `none`.
    pub(super) source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) annotation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) default_network: Option<String>,
    pub(super) networks: Vec<RequestedNetwork>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RequestedNetwork {
    pub(super) network: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) interface: Option<String>,
    /// The interface it was attached as, per the record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) attached_as: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct AttachmentView {
    pub(super) network: String,
    pub(super) ifname: String,
    pub(super) cluster_network: bool,
    pub(super) plugin_types: Vec<String>,
    /// The NAD's `k8s.v1.cni.cncf.io/resourceName`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) resource_name: Option<String>,
    /// The device it was given, and which source (pod-resources, checkpoint, dra)
    /// supplied it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) device: Option<multus_core::devices::AssignedDevice>,
    /// What the delegate's result reported.
    pub(super) recorded: Vec<RecordedInterface>,
    /// The addresses on the interface now (IPv6 link-local left out).
    pub(super) live: Vec<String>,
    /// `ok`, or the worst finding on this attachment.
    pub(super) status: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StatusView {
    /// `api`, `record` or `none`.
    pub(super) source: &'static str,
    pub(super) entries: Vec<NetworkStatus>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PlanView {
    pub(super) container_id: String,
    pub(super) netns: String,
    pub(super) netns_exists: bool,
    pub(super) phase: &'static str,
    pub(super) cni_version: String,
    pub(super) ifname: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct LiveInterface {
    pub(super) name: String,
    pub(super) up: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) mac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) mtu: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) kind: Option<String>,
    pub(super) addresses: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct LiveRoute {
    pub(super) destination: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) gateway: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) dev: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct LiveView {
    pub(super) netns: String,
    pub(super) interfaces: Vec<LiveInterface>,
    pub(super) routes: Vec<LiveRoute>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct PodReport {
    pub(super) pod: PodView,
    pub(super) sources: Sources,
    pub(super) requested: Requested,
    pub(super) attachments: Vec<AttachmentView>,
    pub(super) network_status: StatusView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) plan: Option<PlanView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) live: Option<LiveView>,
    pub(super) findings: Vec<Finding>,
}

pub(super) fn live_view(path: &str, snapshot: &NetnsSnapshot) -> LiveView {
    LiveView {
        netns: path.to_owned(),
        interfaces: snapshot
            .links
            .iter()
            .map(|l| LiveInterface {
                name: l.name.clone(),
                up: l.up,
                mac: l.mac.clone(),
                mtu: l.mtu,
                kind: l.kind.clone(),
                addresses: l
                    .addresses
                    .iter()
                    .filter(|a| !a.is_link_local())
                    .map(|a| a.cidr())
                    .collect(),
            })
            .collect(),
        routes: snapshot
            .routes
            .iter()
            .filter(|r| !matches!(r.destination, Some(IpAddr::V6(v6)) if (v6.segments()[0] & 0xffc0) == 0xfe80 && r.prefix_len > 0))
            .map(|r| LiveRoute {
                destination: r.destination_text(),
                gateway: r.gateway.map(|g| g.to_string()),
                dev: r.ifname.clone(),
            })
            .collect(),
    }
}
