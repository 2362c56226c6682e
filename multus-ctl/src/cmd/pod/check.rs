//! Deciding what `multus-ctl pod` reports: the networks asked for, the record against
//! the API, each attachment against the live namespace and the current NADs, and the
//! network-status to show.

use multus_cni::netns::inspect::NetnsSnapshot;
use multus_core::config::POD_ANNOTATIONS_RUNTIME_KEY;
use multus_core::nad::{
    DEFAULT_NETWORK_ANNOTATION, NETWORK_STATUS_ANNOTATION, NETWORKS_ANNOTATION,
    NetworkSelectionElement, NetworkStatus, parse_networks_annotation,
};
use multus_core::state::{Phase, SandboxState};
use serde_json::Value;

use super::compare::{compare_live, compare_nad, status_key};
use super::gather::{NadSource, Subject};
use super::report::{AttachmentView, Finding, PlanView, Requested, RequestedNetwork, StatusView};
use crate::cluster::{Cluster, PodObject};
use crate::error::{CtlError, one_line};
use crate::output::Level;
use crate::recorded::{phase_text, plugin_type_names, recorded_interfaces};
use crate::sources::{Records, netns_exists};

/// The networks asked for: the API's annotation, else the one the runtime passed at ADD.
pub(super) fn requested(
    namespace: &str,
    api_pod: Option<&PodObject>,
    state: Option<&SandboxState>,
    findings: &mut Vec<Finding>,
) -> (Requested, Vec<NetworkSelectionElement>) {
    let from_record = state.and_then(|s| {
        s.attachments.iter().find_map(|a| {
            a.delegate
                .runtime_config
                .get(POD_ANNOTATIONS_RUNTIME_KEY)
                .and_then(Value::as_object)
                .cloned()
        })
    });
    let record_annotation = |key: &str| {
        from_record
            .as_ref()
            .and_then(|m| m.get(key))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let (source, annotation, default_network) = match api_pod {
        Some(pod) => (
            "api",
            pod.annotations.get(NETWORKS_ANNOTATION).cloned(),
            pod.annotations.get(DEFAULT_NETWORK_ANNOTATION).cloned(),
        ),
        None if from_record.is_some() => (
            "record",
            record_annotation(NETWORKS_ANNOTATION),
            record_annotation(DEFAULT_NETWORK_ANNOTATION),
        ),
        None => ("none", None, None),
    };
    let selections = match annotation.as_deref() {
        Some(value) => match parse_networks_annotation(value, namespace) {
            Ok(list) => list,
            Err(e) => {
                findings.push(Finding {
                    kind: "invalid-annotation",
                    level: Level::Error,
                    subject: NETWORKS_ANNOTATION.to_owned(),
                    detail: one_line(e),
                    fix: "fix the annotation (see docs/configuration.md#pod-annotations)"
                        .to_owned(),
                });
                Vec::new()
            }
        },
        None => Vec::new(),
    };
    let networks = selections
        .iter()
        .map(|s| RequestedNetwork {
            network: format!("{}/{}", s.namespace, s.name),
            interface: s.interface.clone(),
            attached_as: None,
        })
        .collect();
    (
        Requested {
            source,
            annotation,
            default_network,
            networks,
        },
        selections,
    )
}

/// The pod and its record against each other: a record of a pod the API does not know,
/// or a pod without a record.
pub(super) fn record_findings(
    subject: &Subject,
    cluster: Option<&Cluster>,
    records: &Records,
    findings: &mut Vec<Finding>,
) {
    let (namespace, name) = (&subject.namespace, &subject.name);
    match (cluster, &subject.api_pod, &subject.state) {
        (Some(c), None, Some(state)) => findings.push(Finding {
            kind: "not-in-api",
            level: Level::Warning,
            subject: format!("record {}", state.container_id),
            detail: format!(
                "the pod does not exist through {}, but its sandbox record is on this node",
                c.describe
            ),
            fix: format!(
                "if the sandbox is gone, `multus-ctl state prune {}` tears it down",
                state.container_id
            ),
        }),
        (_, Some(pod), None) => findings.push(Finding {
            kind: "no-record",
            level: Level::Error,
            subject: format!("pod {namespace}/{name}"),
            detail: format!(
                "no sandbox record of the pod in {}: DEL will rebuild the plan from the configuration and CHECK fails",
                records.dir().display()
            ),
            fix: match &pod.node {
                Some(node) => format!(
                    "run this on the pod's node ({node}); if that is this node, the record was removed: recreate the pod"
                ),
                None => "run this on the pod's node; if the record was removed there, recreate the pod".to_owned(),
            },
        }),
        _ => {}
    }
}

/// The plan the record holds.
pub(super) fn plan_view(state: &SandboxState) -> PlanView {
    PlanView {
        container_id: state.container_id.clone(),
        netns: state.netns.clone(),
        netns_exists: netns_exists(&state.netns),
        phase: phase_text(state.phase),
        cni_version: state.cni_version.as_str().to_owned(),
        ifname: state.ifname.clone(),
    }
}

/// An ADD that did not finish, a namespace gone with its record left.
pub(super) fn plan_findings(state: &SandboxState, findings: &mut Vec<Finding>) {
    if state.phase == Phase::Adding {
        findings.push(Finding {
            kind: "incomplete-add",
            level: Level::Warning,
            subject: format!("record {}", state.container_id),
            detail: "ADD did not finish (phase adding): it was interrupted or is running".to_owned(),
            fix: "wait and look again; if it stays, the runtime's DEL (or `multus-ctl state prune`) cleans it up".to_owned(),
        });
    }
    if !netns_exists(&state.netns) {
        findings.push(Finding {
            kind: "stale-state",
            level: Level::Error,
            subject: format!("record {}", state.container_id),
            detail: format!(
                "the pod's network namespace {} is gone but the record remains: the sandbox went away without a DEL",
                state.netns
            ),
            fix: format!(
                "`multus-ctl state prune {}` runs DEL through the delegates (releasing IPs) and removes the record",
                state.container_id
            ),
        });
    }
}

/// Which requested network became which attachment (`attached_as`); a finding for each
/// that did not.
pub(super) fn match_requested(
    state: &SandboxState,
    requested: &mut Requested,
    selections: &[NetworkSelectionElement],
    findings: &mut Vec<Finding>,
) {
    for (net, selection) in requested.networks.iter_mut().zip(selections) {
        let found = state
            .attachments
            .iter()
            .filter(|a| !a.delegate.cluster_network)
            .find(|a| {
                a.delegate.network == net.network
                    && selection
                        .interface
                        .as_ref()
                        .is_none_or(|i| *i == a.delegate.ifname)
            });
        match found {
            Some(a) => net.attached_as = Some(a.delegate.ifname.clone()),
            None => findings.push(Finding {
                kind: "not-attached",
                level: Level::Error,
                subject: net.network.clone(),
                detail: "requested by the annotation, but the record has no attachment for it".to_owned(),
                fix: "the annotation changed after the pod was created, or ADD skipped it: recreate the pod".to_owned(),
            }),
        }
    }
}

/// Every attachment of the record, recorded against live and against the current NADs.
pub(super) fn attachments(
    state: &SandboxState,
    snapshot: Option<&NetnsSnapshot>,
    selections: &[NetworkSelectionElement],
    nad_source: &NadSource<'_>,
    findings: &mut Vec<Finding>,
) -> Result<Vec<AttachmentView>, CtlError> {
    let mut attachments = Vec::new();
    for attachment in &state.attachments {
        let recorded = recorded_interfaces(attachment, state.cni_version);
        let mut local = Vec::new();
        if let Some(snapshot) = snapshot {
            compare_live(
                &attachment.delegate.network,
                &recorded,
                snapshot,
                &mut local,
            );
        }
        let live = snapshot
            .and_then(|s| s.link(&attachment.delegate.ifname))
            .map(|l| {
                l.addresses
                    .iter()
                    .filter(|a| !a.is_link_local())
                    .map(|a| a.cidr())
                    .collect()
            })
            .unwrap_or_default();
        if let Some((ns, nad_name)) = attachment.delegate.network.split_once('/') {
            let selection = selections
                .iter()
                .find(|s| s.namespace == ns && s.name == nad_name);
            compare_nad(
                nad_source,
                ns,
                nad_name,
                &attachment.delegate.config,
                state,
                selection,
                &mut local,
            )?;
        }
        let status = local
            .iter()
            .max_by_key(|f| f.level)
            .map_or_else(|| "ok".to_owned(), |f| f.kind.to_owned());
        attachments.push(AttachmentView {
            network: attachment.delegate.network.clone(),
            ifname: attachment.delegate.ifname.clone(),
            cluster_network: attachment.delegate.cluster_network,
            plugin_types: plugin_type_names(attachment),
            resource_name: attachment.delegate.resource_name.clone(),
            device: attachment.delegate.device.clone(),
            recorded,
            live,
            status,
        });
        findings.extend(local);
    }
    Ok(attachments)
}

/// Links in the pod that no attachment accounts for.
pub(super) fn extra_interfaces(
    attachments: &[AttachmentView],
    snapshot: &NetnsSnapshot,
    has_record: bool,
    findings: &mut Vec<Finding>,
) {
    let known: Vec<String> = attachments
        .iter()
        .flat_map(|a| {
            a.recorded
                .iter()
                .map(|r| r.name.clone())
                .chain([a.ifname.clone()])
        })
        .collect();
    for link in &snapshot.links {
        if link.name != "lo" && !known.contains(&link.name) {
            findings.push(Finding {
                kind: "extra-interface",
                level: Level::Warning,
                subject: link.name.clone(),
                detail: if has_record {
                    "in the pod, but no attachment of the record created it".to_owned()
                } else {
                    "in the pod, but there is no record of what created it".to_owned()
                },
                fix: "something outside multus added it, or the record is out of date; DEL will not remove it".to_owned(),
            });
        }
    }
}

/// network-status: the API's when there is one, else the record's.
pub(super) fn network_status(
    api_pod: Option<&PodObject>,
    state: Option<&SandboxState>,
    findings: &mut Vec<Finding>,
) -> StatusView {
    let none = || StatusView {
        source: "none",
        entries: Vec::new(),
    };
    let api_status = api_pod
        .and_then(|p| p.annotations.get(NETWORK_STATUS_ANNOTATION))
        .map(|text| serde_json::from_str::<Vec<NetworkStatus>>(text));
    match api_status {
        Some(Ok(entries)) => {
            if let Some(state) = state
                && !state.network_status.is_empty()
                && status_key(&entries) != status_key(&state.network_status)
            {
                findings.push(Finding {
                    kind: "status-mismatch",
                    level: Level::Warning,
                    subject: NETWORK_STATUS_ANNOTATION.to_owned(),
                    detail: "the pod's network-status annotation differs from the one this node recorded".to_owned(),
                    fix: "another sandbox of the pod wrote it, or it was edited: compare with `multus-ctl state show`".to_owned(),
                });
            }
            StatusView {
                source: "api",
                entries,
            }
        }
        Some(Err(e)) => {
            findings.push(Finding {
                kind: "invalid-status",
                level: Level::Warning,
                subject: NETWORK_STATUS_ANNOTATION.to_owned(),
                detail: format!("the annotation does not parse: {e}"),
                fix: "it is written by multus; someone edited it".to_owned(),
            });
            none()
        }
        None => match state {
            Some(state) => StatusView {
                source: "record",
                entries: state.network_status.clone(),
            },
            None => none(),
        },
    }
}
