//! `multus-ctl pod NS/NAME`: what the pod asked for, what each network resolved to,
//! what the node recorded, what is really in the pod's network namespace, and every
//! difference between them.

use std::net::IpAddr;
use std::path::PathBuf;

use multus_cni::netns::inspect::{NetnsSnapshot, inspect_netns};
use multus_core::config::POD_ANNOTATIONS_RUNTIME_KEY;
use multus_core::delegate::DelegateConfig;
use multus_core::nad::{
    DEFAULT_NETWORK_ANNOTATION, NETWORK_STATUS_ANNOTATION, NETWORKS_ANNOTATION,
    NetworkAttachmentDefinition, NetworkSelectionElement, NetworkStatus, parse_networks_annotation,
};
use multus_core::state::{Phase, SandboxState};
use serde::Serialize;
use serde_json::Value;

use crate::cli::{GlobalArgs, PodArgs};
use crate::cluster::{Cluster, PodObject};
use crate::cmd::state::network_status_table_titled;
use crate::error::{CtlError, CtlResult, Outcome, one_line};
use crate::output::{Level, Printer, or_dash, sections};
use crate::recorded::{RecordedInterface, phase_text, recorded_interfaces};
use crate::sources::{
    Record, Records, cni_dir, load_conf, nads_in_dir, netns_exists, split_namespaced,
};

/// A difference between what was asked, recorded and is live.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Finding {
    /// Stable identifier: `stale-state`, `no-record`, `missing-interface`, ...
    kind: &'static str,
    level: Level,
    /// The interface, network or record concerned.
    subject: String,
    detail: String,
    fix: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PodView {
    namespace: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    node: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Sources {
    /// The Kubernetes API used, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    api: Option<String>,
    /// The sandbox record read, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    record: Option<String>,
    /// Where current NADs were read for comparison, if anywhere.
    #[serde(skip_serializing_if = "Option::is_none")]
    nads: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Requested {
    /// `api` (the pod's annotation), `record` (the annotation the runtime passed at ADD)
    /// or `none`.
    source: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    default_network: Option<String>,
    networks: Vec<RequestedNetwork>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestedNetwork {
    network: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    interface: Option<String>,
    /// The interface it was attached as, per the record.
    #[serde(skip_serializing_if = "Option::is_none")]
    attached_as: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct AttachmentView {
    network: String,
    ifname: String,
    cluster_network: bool,
    plugin_types: Vec<String>,
    /// The NAD's `k8s.v1.cni.cncf.io/resourceName`.
    #[serde(skip_serializing_if = "Option::is_none")]
    resource_name: Option<String>,
    /// The device it was given, and which source (pod-resources, checkpoint, dra)
    /// supplied it.
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<multus_core::devices::AssignedDevice>,
    /// What the delegate's result reported.
    recorded: Vec<RecordedInterface>,
    /// The addresses on the interface now (IPv6 link-local left out).
    live: Vec<String>,
    /// `ok`, or the worst finding on this attachment.
    status: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusView {
    /// `api`, `record` or `none`.
    source: &'static str,
    entries: Vec<NetworkStatus>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PlanView {
    container_id: String,
    netns: String,
    netns_exists: bool,
    phase: &'static str,
    cni_version: String,
    ifname: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LiveInterface {
    name: String,
    up: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    mac: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mtu: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<String>,
    addresses: Vec<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LiveRoute {
    destination: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    dev: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct LiveView {
    netns: String,
    interfaces: Vec<LiveInterface>,
    routes: Vec<LiveRoute>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct PodReport {
    pod: PodView,
    sources: Sources,
    requested: Requested,
    attachments: Vec<AttachmentView>,
    network_status: StatusView,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<PlanView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    live: Option<LiveView>,
    findings: Vec<Finding>,
}

/// Where current NADs come from, for the "changed after attach" comparison.
enum NadSource<'a> {
    Dir(PathBuf, Vec<NetworkAttachmentDefinition>),
    Api(&'a Cluster),
    None,
}

impl NadSource<'_> {
    fn describe(&self) -> Option<String> {
        match self {
            Self::Dir(dir, _) => Some(dir.display().to_string()),
            Self::Api(_) => Some("the API".to_owned()),
            Self::None => None,
        }
    }

    fn get(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<NetworkAttachmentDefinition>, CtlError> {
        match self {
            Self::Dir(_, nads) => Ok(nads
                .iter()
                .find(|n| n.namespace == namespace && n.name == name)
                .cloned()),
            Self::Api(cluster) => cluster.nad(namespace, name),
            Self::None => Ok(None),
        }
    }
}

/// The pod `pod ARG [--container-id ID]` names, and its record if any:
///
/// - `NAMESPACE/NAME`: that Kubernetes pod (its newest record, or the `--container-id`
///   one, which must belong to it);
/// - `/NAME`: a container without a Kubernetes namespace (podman passes only
///   `K8S_POD_NAME=<container name>`);
/// - `NAME`: the pod in `default`, else a container without namespace of that name,
///   else the container whose ID is `NAME`; with `--container-id`, whatever pod that
///   record belongs to, if its name is `NAME`.
fn target(
    records: &Records,
    arg: &str,
    container_id: Option<&str>,
) -> Result<(String, String, Option<Record>), CtlError> {
    let explicit = arg.contains('/');
    let (namespace, name) = match arg.strip_prefix('/') {
        Some(name) if !name.is_empty() && !name.contains('/') => (String::new(), name.to_owned()),
        _ if explicit => split_namespaced(arg, "pod")?,
        // Podman's container names allow upper case and '_', which Kubernetes names do
        // not: checked below against the records only.
        _ => ("default".to_owned(), arg.to_owned()),
    };
    let identity = |record: &Record| {
        record
            .state
            .as_ref()
            .ok()
            .map(|s| (s.pod_namespace.clone(), s.pod_name.clone()))
    };
    if let Some(id) = container_id {
        let record = records.get(id)?;
        if let Some((ns, pod)) = identity(&record)
            && (pod != name || (explicit && ns != namespace))
        {
            let shown = if ns.is_empty() {
                format!("/{pod}")
            } else {
                format!("{ns}/{pod}")
            };
            return Err(CtlError::Usage(format!(
                "container {id} belongs to pod {shown}, not {arg}"
            )));
        }
        let (ns, pod) = identity(&record).unwrap_or((namespace, name));
        return Ok((ns, pod, Some(record)));
    }
    if explicit {
        let record = records.find_pod(&namespace, &name)?;
        return Ok((namespace, name, record));
    }
    if let Some(record) = records.find_pod("default", arg)? {
        return Ok(("default".to_owned(), arg.to_owned(), Some(record)));
    }
    if let Some(record) = records.find_pod("", arg)? {
        return Ok((String::new(), arg.to_owned(), Some(record)));
    }
    if multus_core::request::is_valid_container_id(arg)
        && let Ok(record) = records.get(arg)
        && let Some((ns, pod)) = identity(&record)
    {
        return Ok((ns, pod, Some(record)));
    }
    split_namespaced(arg, "pod")?;
    Ok((namespace, name, None))
}

/// `pod NS/NAME`.
pub fn run(printer: &Printer, global: &GlobalArgs, args: &PodArgs) -> CtlResult {
    let conf = args.state.conf.as_deref().map(load_conf).transpose()?;
    let dir = cni_dir(&args.state)?;
    let records = Records::new(&dir);
    let (namespace, name, record) = target(&records, &args.pod, args.container_id.as_deref())?;
    let cluster = Cluster::connect(global)?;
    let api_pod = match &cluster {
        Some(c) if !namespace.is_empty() => c.pod(&namespace, &name)?,
        _ => None,
    };
    let state: Option<SandboxState> = match &record {
        Some(r) => Some(
            r.state
                .clone()
                .map_err(|e| CtlError::Unreachable(format!("{e}; the record cannot be used")))?,
        ),
        None => None,
    };
    if let Some(path) = &args.netns
        && !netns_exists(path)
    {
        return Err(CtlError::NotFound(format!(
            "the network namespace {path} (--netns) does not exist; pass the pod's netns path (e.g. /run/netns/NAME)"
        )));
    }
    if api_pod.is_none() && state.is_none() && args.netns.is_none() {
        let api = match &cluster {
            Some(c) => format!("not found through {}", c.describe),
            None => "no Kubernetes API configured to ask".to_owned(),
        };
        return Err(CtlError::NotFound(format!(
            "pod {namespace}/{name}: {api}, and no sandbox record of it in {}; check the name and namespace, --cni-dir/--conf, and that you are on the pod's node",
            records.dir().display()
        )));
    }

    let nad_dir = args.nad_dir.clone().or_else(|| {
        conf.as_ref()
            .and_then(|c| c.conf.network_attachment_dir.clone())
    });
    let nad_source = match (&nad_dir, &cluster) {
        (Some(dir), _) => NadSource::Dir(
            dir.clone(),
            nads_in_dir(dir)?.0.into_iter().map(|(_, n)| n).collect(),
        ),
        (None, Some(c)) => NadSource::Api(c),
        (None, None) => NadSource::None,
    };

    let mut findings = Vec::new();
    let (mut requested, selections) =
        requested(&namespace, api_pod.as_ref(), state.as_ref(), &mut findings);

    // Pod and record against each other.
    match (&cluster, &api_pod, &state) {
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

    // The plan.
    let plan = state.as_ref().map(|s| PlanView {
        container_id: s.container_id.clone(),
        netns: s.netns.clone(),
        netns_exists: netns_exists(&s.netns),
        phase: phase_text(s.phase),
        cni_version: s.cni_version.as_str().to_owned(),
        ifname: s.ifname.clone(),
    });
    if let Some(state) = &state {
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
    // Which requested network became which attachment.
    if let Some(state) = &state {
        for (net, selection) in requested.networks.iter_mut().zip(&selections) {
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

    // The live namespace.
    let netns_path = args
        .netns
        .clone()
        .or_else(|| state.as_ref().map(|s| s.netns.clone()))
        .filter(|p| netns_exists(p));
    let snapshot = match &netns_path {
        Some(path) => match inspect_netns(path) {
            Ok(snapshot) => Some(snapshot),
            Err(e) => {
                findings.push(Finding {
                    kind: "netns-unreadable",
                    level: Level::Error,
                    subject: path.clone(),
                    detail: one_line(e),
                    fix: "run as root on the pod's node".to_owned(),
                });
                None
            }
        },
        None => None,
    };

    // Attachments: recorded against live, and against the current NADs.
    let mut attachments = Vec::new();
    if let Some(state) = &state {
        for attachment in &state.attachments {
            let recorded = recorded_interfaces(attachment, state.cni_version);
            let mut local = Vec::new();
            if let Some(snapshot) = &snapshot {
                compare_live(
                    &attachment.delegate.network,
                    &recorded,
                    snapshot,
                    &mut local,
                );
            }
            let live = snapshot
                .as_ref()
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
                    &nad_source,
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
                plugin_types: attachment
                    .delegate
                    .config
                    .plugin_types()
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                resource_name: attachment.delegate.resource_name.clone(),
                device: attachment.delegate.device.clone(),
                recorded,
                live,
                status,
            });
            findings.extend(local);
        }
    }
    if let Some(snapshot) = &snapshot {
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
                    detail: if state.is_some() {
                        "in the pod, but no attachment of the record created it".to_owned()
                    } else {
                        "in the pod, but there is no record of what created it".to_owned()
                    },
                    fix: "something outside multus added it, or the record is out of date; DEL will not remove it".to_owned(),
                });
            }
        }
    }

    // network-status: the API's when there is one, else the record's.
    let api_status = api_pod
        .as_ref()
        .and_then(|p| p.annotations.get(NETWORK_STATUS_ANNOTATION))
        .map(|text| serde_json::from_str::<Vec<NetworkStatus>>(text));
    let network_status = match api_status {
        Some(Ok(entries)) => {
            if let Some(state) = &state
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
            StatusView {
                source: "none",
                entries: Vec::new(),
            }
        }
        None => match &state {
            Some(state) => StatusView {
                source: "record",
                entries: state.network_status.clone(),
            },
            None => StatusView {
                source: "none",
                entries: Vec::new(),
            },
        },
    };

    let live = match (&netns_path, &snapshot) {
        (Some(path), Some(snapshot)) => Some(live_view(path, snapshot)),
        _ => None,
    };
    let report = PodReport {
        pod: PodView {
            namespace,
            name,
            uid: api_pod
                .as_ref()
                .map(|p| p.uid.clone())
                .or_else(|| state.as_ref().map(|s| s.pod_uid.clone()))
                .filter(|u| !u.is_empty()),
            node: api_pod.as_ref().and_then(|p| p.node.clone()),
        },
        sources: Sources {
            api: cluster.as_ref().map(|c| c.describe.clone()),
            record: record.as_ref().map(|r| r.path.display().to_string()),
            nads: nad_source.describe(),
        },
        requested,
        attachments,
        network_status,
        plan,
        live,
        findings,
    };
    let problems = report.findings.iter().any(|f| f.level >= Level::Warning);
    printer.emit(&report, |p| render(p, &report))?;
    Ok(Outcome::from_problems(problems))
}

/// The networks asked for: the API's annotation, else the one the runtime passed at ADD.
fn requested(
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

fn ip_of(cidr: &str) -> Option<IpAddr> {
    cidr.split('/').next()?.parse().ok()
}

/// Recorded interfaces and addresses against the live namespace.
fn compare_live(
    network: &str,
    recorded: &[RecordedInterface],
    snapshot: &NetnsSnapshot,
    findings: &mut Vec<Finding>,
) {
    for interface in recorded {
        let Some(link) = snapshot.link(&interface.name) else {
            findings.push(Finding {
                kind: "missing-interface",
                level: Level::Error,
                subject: interface.name.clone(),
                detail: format!("{network} attached {} but it is not in the pod", interface.name),
                fix: "something deleted it inside the pod; the network is down for the pod: recreate the pod (DEL still releases its IPs)".to_owned(),
            });
            continue;
        };
        for address in &interface.addresses {
            let Some(ip) = ip_of(address) else { continue };
            match link.addresses.iter().find(|a| a.address == ip) {
                None => findings.push(Finding {
                    kind: "missing-address",
                    level: Level::Error,
                    subject: interface.name.clone(),
                    detail: format!("{address} from {network}'s result is not on {}", interface.name),
                    fix: "it was removed inside the pod: recreate the pod, or add it back with `ip addr add`".to_owned(),
                }),
                Some(live) if Some(live.cidr()) != Some(address.clone()) => findings.push(Finding {
                    kind: "wrong-address",
                    level: Level::Warning,
                    subject: interface.name.clone(),
                    detail: format!("{} has {} where {network}'s result says {address}", interface.name, live.cidr()),
                    fix: "the prefix was changed inside the pod: recreate the pod".to_owned(),
                }),
                Some(_) => {}
            }
        }
        let recorded_ips: Vec<IpAddr> = interface
            .addresses
            .iter()
            .filter_map(|a| ip_of(a))
            .collect();
        for live in link.addresses.iter().filter(|a| !a.is_link_local()) {
            if !recorded_ips.contains(&live.address) {
                findings.push(Finding {
                    kind: "unexpected-address",
                    level: Level::Warning,
                    subject: interface.name.clone(),
                    detail: format!("{} has {}, which {network}'s result does not list", interface.name, live.cidr()),
                    fix: "it was added outside multus, which neither recorded nor releases it: remove it, or ignore it if it is intended".to_owned(),
                });
            }
        }
    }
}

/// The recorded config against the NAD as it is now.
fn compare_nad(
    source: &NadSource<'_>,
    namespace: &str,
    name: &str,
    recorded: &DelegateConfig,
    state: &SandboxState,
    selection: Option<&NetworkSelectionElement>,
    findings: &mut Vec<Finding>,
) -> Result<(), CtlError> {
    let Some(nad_source) = source.describe() else {
        return Ok(());
    };
    let network = format!("{namespace}/{name}");
    let Some(nad) = source.get(namespace, name)? else {
        findings.push(Finding {
            kind: "nad-missing",
            level: Level::Warning,
            subject: network.clone(),
            detail: format!(
                "the pod was attached to {network}, which no longer exists in {nad_source}"
            ),
            fix:
                "the pod keeps its interface until it is deleted; new pods asking for it will fail"
                    .to_owned(),
        });
        return Ok(());
    };
    let current = match nad.delegate_config() {
        Ok(Some(bytes)) => match DelegateConfig::from_bytes(&bytes) {
            Ok(config) => config,
            Err(e) => {
                findings.push(nad_changed(
                    &network,
                    &nad_source,
                    format!("its config is now invalid: {e}"),
                ));
                return Ok(());
            }
        },
        // An empty spec resolves from confDir, which is not compared here.
        Ok(None) => return Ok(()),
        Err(e) => {
            findings.push(nad_changed(
                &network,
                &nad_source,
                format!("its config is now invalid: {}", one_line(e)),
            ));
            return Ok(());
        }
    };
    let mut current = current.with_default_version(state.cni_version);
    if let Some(cni_args) = selection.and_then(|s| s.cni_args.as_ref()) {
        current = current.with_cni_args(cni_args);
    }
    let old: Value = serde_json::from_str(recorded.raw()).unwrap_or(Value::Null);
    let new: Value = serde_json::from_str(current.raw()).unwrap_or(Value::Null);
    if old != new {
        let mut changes = Vec::new();
        diff("", &old, &new, &mut changes);
        let shown: Vec<String> = changes.iter().take(4).cloned().collect();
        let more = changes.len().saturating_sub(shown.len());
        let mut detail = format!("changed after the pod was attached: {}", shown.join("; "));
        if more > 0 {
            detail.push_str(&format!("; and {more} more"));
        }
        findings.push(nad_changed(&network, &nad_source, detail));
    }
    Ok(())
}

fn nad_changed(network: &str, nad_source: &str, detail: String) -> Finding {
    Finding {
        kind: "nad-changed",
        level: Level::Warning,
        subject: network.to_owned(),
        detail: format!("{network} in {nad_source}: {detail}"),
        fix: "the pod still runs with the config it was attached with (DEL uses the recorded one); recreate the pod to use the new config".to_owned(),
    }
}

/// The differing paths of two JSON documents, `path: old → new`.
fn diff(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let sub = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => diff(&sub, x, y, out),
                    (Some(x), None) => out.push(format!("{sub}: {x} → (removed)")),
                    (None, Some(y)) => out.push(format!("{sub}: (absent) → {y}")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (index, (x, y)) in a.iter().zip(b).enumerate() {
                diff(&format!("{path}[{index}]"), x, y, out);
            }
        }
        (a, b) if a != b => out.push(format!(
            "{}: {a} → {b}",
            if path.is_empty() { "config" } else { path }
        )),
        _ => {}
    }
}

/// What identifies a network-status: interface and addresses per network.
fn status_key(entries: &[NetworkStatus]) -> Vec<(String, String, Vec<String>)> {
    let mut key: Vec<(String, String, Vec<String>)> = entries
        .iter()
        .map(|e| {
            let mut ips = e.ips.clone();
            ips.sort();
            (e.name.clone(), e.interface.clone(), ips)
        })
        .collect();
    key.sort();
    key
}

fn live_view(path: &str, snapshot: &NetnsSnapshot) -> LiveView {
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

fn render(printer: &Printer, report: &PodReport) -> String {
    let mut parts = Vec::new();

    let mut summary = printer.table(&["FIELD", "VALUE"]);
    summary.add_row(vec![
        "pod".to_owned(),
        format!("{}/{}", report.pod.namespace, report.pod.name),
    ]);
    summary.add_row(vec![
        "uid".to_owned(),
        or_dash(report.pod.uid.as_deref().unwrap_or_default()),
    ]);
    if let Some(node) = &report.pod.node {
        summary.add_row(vec!["node".to_owned(), node.clone()]);
    }
    summary.add_row(vec![
        "api".to_owned(),
        or_dash(
            report
                .sources
                .api
                .as_deref()
                .unwrap_or("none (node-local only)"),
        ),
    ]);
    summary.add_row(vec![
        "record".to_owned(),
        or_dash(report.sources.record.as_deref().unwrap_or("none")),
    ]);
    summary.add_row(vec![
        "nads".to_owned(),
        report
            .sources
            .nads
            .clone()
            .unwrap_or_else(|| "none (NAD changes not checked)".to_owned()),
    ]);
    if let Some(plan) = &report.plan {
        summary.add_row(vec!["container".to_owned(), plan.container_id.clone()]);
        summary.add_row(vec!["phase".to_owned(), plan.phase.to_owned()]);
        summary.add_row(vec![
            comfy_table::Cell::new("netns"),
            if plan.netns_exists {
                printer.coloured(&plan.netns, Level::Ok)
            } else {
                printer.coloured(format!("{} (gone)", plan.netns), Level::Error)
            },
        ]);
    } else if let Some(live) = &report.live {
        summary.add_row(vec!["netns".to_owned(), live.netns.clone()]);
    }
    parts.push(format!("{}\n{summary}", printer.heading("Pod")));

    let title = match report.requested.source {
        "api" => "Requested networks (annotation, from the API)",
        "record" => "Requested networks (annotation the runtime passed at ADD)",
        _ => "Requested networks",
    };
    if report.requested.networks.is_empty() && report.requested.default_network.is_none() {
        let why = match report.requested.source {
            "none" => "unknown: no API and no annotation in the record",
            _ => "none beyond the cluster network",
        };
        parts.push(format!("{}\n{why}", printer.heading(title)));
    } else {
        let mut table = printer.table(&["NETWORK", "INTERFACE", "ATTACHED AS"]);
        if let Some(default) = &report.requested.default_network {
            table.add_row(vec![
                format!("{default} (default-network)"),
                "-".to_owned(),
                "cluster network".to_owned(),
            ]);
        }
        for n in &report.requested.networks {
            table.add_row(vec![
                comfy_table::Cell::new(&n.network),
                comfy_table::Cell::new(or_dash(n.interface.as_deref().unwrap_or_default())),
                match &n.attached_as {
                    Some(i) => printer.coloured(i, Level::Ok),
                    None => printer.coloured("-", Level::Error),
                },
            ]);
        }
        parts.push(format!("{}\n{table}", printer.heading(title)));
    }

    if !report.attachments.is_empty() {
        let mut table =
            printer.table(&["NETWORK", "IFNAME", "TYPES", "RECORDED", "LIVE", "STATUS"]);
        for a in &report.attachments {
            let mut network = if a.cluster_network {
                format!("{} (cluster network)", a.network)
            } else {
                a.network.clone()
            };
            if let Some(resource) = &a.resource_name {
                let device = a.device.as_ref().map_or_else(
                    || "no device".to_owned(),
                    |d| format!("device {} from {}", d.device_id, d.source),
                );
                network.push_str(&format!("\n{resource}: {device}"));
            }
            let recorded = a
                .recorded
                .iter()
                .flat_map(|r| {
                    r.addresses.iter().map(move |ad| {
                        if r.name == a.ifname {
                            ad.clone()
                        } else {
                            format!("{} {ad}", r.name)
                        }
                    })
                })
                .collect::<Vec<_>>()
                .join("\n");
            let level = if a.status == "ok" {
                Level::Ok
            } else {
                Level::Error
            };
            table.add_row(vec![
                comfy_table::Cell::new(network),
                comfy_table::Cell::new(&a.ifname),
                comfy_table::Cell::new(a.plugin_types.join(", ")),
                comfy_table::Cell::new(or_dash(&recorded)),
                comfy_table::Cell::new(or_dash(&a.live.join("\n"))),
                printer.coloured(&a.status, level),
            ]);
        }
        parts.push(format!(
            "{}\n{table}",
            printer.heading("Attachments (the plan persisted on this node)")
        ));
    }

    let status_title = match report.network_status.source {
        "api" => "Network status (annotation, from the API)",
        "record" => "Network status (recorded on this node)",
        _ => "Network status",
    };
    parts.push(network_status_table_titled(
        printer,
        status_title,
        &report.network_status.entries,
    ));

    if let Some(live) = &report.live {
        let mut table = printer.table(&["INTERFACE", "STATE", "KIND", "MAC", "MTU", "ADDRESSES"]);
        for i in &live.interfaces {
            table.add_row(vec![
                i.name.clone(),
                if i.up { "up" } else { "down" }.to_owned(),
                or_dash(i.kind.as_deref().unwrap_or_default()),
                or_dash(i.mac.as_deref().unwrap_or_default()),
                i.mtu.map_or("-".to_owned(), |m| m.to_string()),
                or_dash(&i.addresses.join("\n")),
            ]);
        }
        parts.push(format!(
            "{}\n{table}",
            printer.heading(&format!("Live interfaces in {}", live.netns))
        ));
        let mut routes = printer.table(&["DESTINATION", "GATEWAY", "DEV"]);
        for r in &live.routes {
            routes.add_row(vec![
                r.destination.clone(),
                or_dash(r.gateway.as_deref().unwrap_or_default()),
                or_dash(r.dev.as_deref().unwrap_or_default()),
            ]);
        }
        parts.push(format!(
            "{}\n{routes}",
            printer.heading("Live routes (main table)")
        ));
    }

    if report.findings.is_empty() {
        parts.push(format!(
            "{} {}",
            printer.heading("Findings:"),
            printer.level_text(
                "none: what was asked, recorded and is live agree",
                Level::Ok
            )
        ));
    } else {
        let mut table = printer.table(&["FINDING", "LEVEL", "SUBJECT", "DETAIL"]);
        for f in &report.findings {
            table.add_row(vec![
                printer.coloured(f.kind, f.level),
                printer.level_cell(f.level),
                comfy_table::Cell::new(&f.subject),
                comfy_table::Cell::new(format!("{}\nfix: {}", f.detail, f.fix)),
            ]);
        }
        parts.push(format!(
            "{}\n{table}",
            printer.heading(&format!("Findings ({})", report.findings.len()))
        ));
    }
    sections(parts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_names_changed_paths() {
        let mut out = Vec::new();
        diff(
            "",
            &json!({"type":"bridge","ipam":{"subnet":"10.1.0.0/24"},"mtu":1500}),
            &json!({"type":"bridge","ipam":{"subnet":"10.2.0.0/24"},"vlan":5}),
            &mut out,
        );
        assert_eq!(
            out,
            vec![
                "ipam.subnet: \"10.1.0.0/24\" → \"10.2.0.0/24\"",
                "mtu: 1500 → (removed)",
                "vlan: (absent) → 5",
            ]
        );
    }

    #[test]
    fn status_keys_ignore_order() {
        let a = NetworkStatus {
            name: "n".into(),
            interface: "net1".into(),
            ips: vec!["10.0.0.2".into(), "10.0.0.1".into()],
            ..NetworkStatus::default()
        };
        let mut b = a.clone();
        b.ips.reverse();
        assert_eq!(status_key(&[a]), status_key(&[b]));
    }
}
