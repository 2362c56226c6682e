//! Gathering what `multus-ctl pod` compares: the pod named on the command line, its
//! sandbox record, the API's pod, the current NADs and the live network namespace.

use std::path::{Path, PathBuf};

use multus_cni::netns::inspect::{NetnsSnapshot, inspect_netns};
use multus_core::nad::NetworkAttachmentDefinition;
use multus_core::state::SandboxState;

use super::report::Finding;
use crate::cluster::{Cluster, PodObject};
use crate::error::{CtlError, one_line};
use crate::output::Level;
use crate::sources::{LoadedConf, Record, Records, nads_in_dir, netns_exists, split_namespaced};

/// Where current NADs come from, for the "changed after attach" comparison.
pub(super) enum NadSource<'a> {
    Dir(PathBuf, Vec<NetworkAttachmentDefinition>),
    Api(&'a Cluster),
    None,
}

impl NadSource<'_> {
    pub(super) fn describe(&self) -> Option<String> {
        match self {
            Self::Dir(dir, _) => Some(dir.display().to_string()),
            Self::Api(_) => Some("the API".to_owned()),
            Self::None => None,
        }
    }

    pub(super) fn get(
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
pub(super) fn target(
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

/// The pod looked at: its name, its sandbox record and what the API says of it.
pub(super) struct Subject {
    pub(super) namespace: String,
    pub(super) name: String,
    pub(super) record: Option<Record>,
    pub(super) api_pod: Option<PodObject>,
    pub(super) state: Option<SandboxState>,
}

impl Subject {
    /// The API's pod and the record's state; an error when neither they nor `--netns`
    /// give anything to look at.
    pub(super) fn look_up(
        records: &Records,
        cluster: Option<&Cluster>,
        (namespace, name, record): (String, String, Option<Record>),
        netns: Option<&str>,
    ) -> Result<Self, CtlError> {
        let api_pod = match cluster {
            Some(c) if !namespace.is_empty() => c.pod(&namespace, &name)?,
            _ => None,
        };
        let state: Option<SandboxState> =
            match &record {
                Some(r) => Some(r.state.clone().map_err(|e| {
                    CtlError::Unreachable(format!("{e}; the record cannot be used"))
                })?),
                None => None,
            };
        if let Some(path) = netns
            && !netns_exists(path)
        {
            return Err(CtlError::NotFound(format!(
                "the network namespace {path} (--netns) does not exist; pass the pod's netns path (e.g. /run/netns/NAME)"
            )));
        }
        if api_pod.is_none() && state.is_none() && netns.is_none() {
            let api = match cluster {
                Some(c) => format!("not found through {}", c.describe),
                None => "no Kubernetes API configured to ask".to_owned(),
            };
            return Err(CtlError::NotFound(format!(
                "pod {namespace}/{name}: {api}, and no sandbox record of it in {}; check the name and namespace, --cni-dir/--conf, and that you are on the pod's node",
                records.dir().display()
            )));
        }
        Ok(Self {
            namespace,
            name,
            record,
            api_pod,
            state,
        })
    }
}

/// Where the current NADs are read: `--nad-dir`, else the configuration's
/// `networkAttachmentDir`, else the API.
pub(super) fn nad_source<'a>(
    nad_dir: Option<&Path>,
    conf: Option<&LoadedConf>,
    cluster: Option<&'a Cluster>,
) -> Result<NadSource<'a>, CtlError> {
    let nad_dir = nad_dir
        .map(Path::to_path_buf)
        .or_else(|| conf.and_then(|c| c.conf.network_attachment_dir.clone()));
    Ok(match (nad_dir, cluster) {
        (Some(dir), _) => {
            let nads = nads_in_dir(&dir)?.0.into_iter().map(|(_, n)| n).collect();
            NadSource::Dir(dir, nads)
        }
        (None, Some(c)) => NadSource::Api(c),
        (None, None) => NadSource::None,
    })
}

/// The namespace to inspect (`--netns`, else the record's), if it exists.
pub(super) fn live_netns(netns: Option<&str>, state: Option<&SandboxState>) -> Option<String> {
    netns
        .map(str::to_owned)
        .or_else(|| state.map(|s| s.netns.clone()))
        .filter(|p| netns_exists(p))
}

/// What is in the namespace at `path`; a finding when it cannot be read.
pub(super) fn snapshot(path: &str, findings: &mut Vec<Finding>) -> Option<NetnsSnapshot> {
    match inspect_netns(path) {
        Ok(snapshot) => Some(snapshot),
        Err(e) => {
            findings.push(Finding {
                kind: "netns-unreadable",
                level: Level::Error,
                subject: path.to_owned(),
                detail: one_line(e),
                fix: "run as root on the pod's node".to_owned(),
            });
            None
        }
    }
}
