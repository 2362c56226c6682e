//! The engine: ADD, DEL and CHECK of one sandbox over the [`crate::seams`] traits.
//!
//! ADD persists the plan before the first delegate runs, runs the delegates in order and,
//! when one fails, deletes every delegate already attempted in reverse order. DEL works
//! from the persisted plan alone, tries every delegate and reports all failures together.

mod default_route;
mod error;
mod invoke;
mod pod;
mod readiness;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

pub use error::{AttachmentReport, DelegateFailure, MultusError};
use invoke::Invoker;

use crate::cni::{CniResult, CniVersion};
use crate::config::{MultusConf, PodAnnotationsSource};
use crate::delegate::DelegateConfig;
use crate::nad::status::network_status_entries;
use crate::nad::{
    DEFAULT_NETWORK_ANNOTATION, NETWORKS_ANNOTATION, NetworkStatus, parse_networks_annotation,
};
use crate::plan::{Plan, PlannedDelegate, Planner};
use crate::request::CniRequest;
use crate::seams::{
    ClusterApi, ConfigFiles, DelegateExec, ExecError, NetnsError, NetnsOps, PodEvent, StateError,
    StateStore,
};
use crate::state::{Attachment, Phase, STATE_FORMAT, SandboxState};

/// The side-effect implementations the engine runs over.
#[derive(Clone, Copy)]
pub struct Seams<'a> {
    /// Pods and NADs.
    pub api: &'a dyn ClusterApi,
    /// Delegate plugin execution.
    pub exec: &'a dyn DelegateExec,
    /// Per-sandbox state.
    pub state: &'a dyn StateStore,
    /// Pod network namespace inspection.
    pub netns: &'a dyn NetnsOps,
    /// CNI config files on the node.
    pub files: &'a dyn ConfigFiles,
}

impl std::fmt::Debug for Seams<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Seams")
    }
}

/// Runs one CNI request.
#[derive(Debug)]
pub struct Engine<'a> {
    conf: &'a MultusConf,
    request: &'a CniRequest,
    seams: Seams<'a>,
}

impl<'a> Engine<'a> {
    /// An engine for one request.
    pub fn new(conf: &'a MultusConf, request: &'a CniRequest, seams: Seams<'a>) -> Self {
        Self {
            conf,
            request,
            seams,
        }
    }

    fn invoker(&self) -> Invoker<'a> {
        let mut search_path = vec![self.conf.bin_dir.clone()];
        search_path.extend(self.request.path.iter().map(PathBuf::from));
        Invoker {
            exec: self.seams.exec,
            container_id: self.request.container_id.clone(),
            netns: self.request.netns.clone(),
            search_path,
            timeout: Duration::from_secs(self.conf.delegate_timeout_secs),
        }
    }

    fn state_error(&self, source: StateError) -> MultusError {
        MultusError::State {
            pod: self.request.pod.clone(),
            source,
        }
    }

    async fn plan(
        &self,
        annotations: Option<&BTreeMap<String, String>>,
    ) -> Result<Plan, MultusError> {
        Planner::new(self.conf, self.request, self.seams.api, self.seams.files)
            .plan(annotations)
            .await
            .map_err(|source| MultusError::Plan {
                pod: self.request.pod.clone(),
                source: Box::new(source),
            })
    }

    /// ADD: attach every planned network; returns the cluster network's result rendered
    /// in multus' configured cniVersion.
    pub async fn add(&self) -> Result<Vec<u8>, MultusError> {
        self.wait_until_ready("ADD")?;
        let store = self.seams.state;
        let _lock = store
            .lock(&self.request.container_id)
            .await
            .map_err(|e| self.state_error(e))?;
        let plan = match self.plan_add().await {
            Ok(Some(plan)) => plan,
            // The pod is gone: upstream's empty success, nothing attached (pod.rs).
            Ok(None) => {
                self.forget_unrecorded();
                return Ok(self.pod_gone_result());
            }
            Err(e) => {
                self.forget_unrecorded();
                return Err(e);
            }
        };
        let mut state = self.new_state(plan);
        store.save(&state).map_err(|e| self.state_error(e))?;

        let invoker = self.invoker();
        for index in 0..state.attachments.len() {
            match invoker.add(&state.attachments[index].delegate).await {
                Ok(result) => state.attachments[index].result = Some(result),
                Err(source) => {
                    let report = self.roll_back(&invoker, &state, index).await;
                    self.finish_failed_add(&report);
                    let delegate = &state.attachments[index].delegate;
                    return Err(MultusError::Add {
                        pod: self.request.pod.clone(),
                        network: delegate.network.clone(),
                        ifname: delegate.ifname.clone(),
                        source,
                        report,
                    });
                }
            }
        }

        let netns = &self.request.netns;
        if let Err(failure) =
            default_route::apply(self.seams.netns, netns, &mut state.attachments).await
        {
            let last = state.attachments.len().saturating_sub(1);
            let report = self.roll_back(&invoker, &state, last).await;
            self.finish_failed_add(&report);
            let delegate = &state.attachments[failure.index].delegate;
            return Err(MultusError::DefaultRoute {
                pod: self.request.pod.clone(),
                network: delegate.network.clone(),
                ifname: delegate.ifname.clone(),
                source: failure.source,
                report,
            });
        }

        state.network_status = self.network_status(&state);
        state.phase = Phase::Added;
        store.save(&state).map_err(|e| self.state_error(e))?;
        self.publish(&state).await;
        Ok(self.cluster_result(&state).into_bytes())
    }

    /// Plan an ADD and check that every interface name is free; nothing has run yet.
    /// `None` when the API says the pod is gone.
    async fn plan_add(&self) -> Result<Option<Plan>, MultusError> {
        let annotations = match self.lookup_pod_for_add().await? {
            pod::PodLookup::Annotations(annotations) => annotations,
            pod::PodLookup::Gone => return Ok(None),
        };
        let plan = match self.plan(annotations.as_ref()).await {
            Ok(plan) => plan,
            Err(e) => {
                if let MultusError::Plan { source, .. } = &e {
                    self.report_missing_network(source).await;
                }
                return Err(e);
            }
        };
        self.ensure_ifnames_free(&plan).await?;
        Ok(Some(plan))
    }

    /// After a request refused before anything ran: remove the lock file taken for it,
    /// unless an earlier ADD left a record of this container.
    fn forget_unrecorded(&self) {
        let store = self.seams.state;
        if matches!(store.load(&self.request.container_id), Ok(None)) {
            if let Err(e) = store.remove(&self.request.container_id) {
                tracing::warn!(error = %e, "could not remove the lock of a refused request");
            }
        }
    }

    /// Fail when a planned interface name is already taken in the pod, or the pod's
    /// network namespace is gone, before anything runs.
    async fn ensure_ifnames_free(&self, plan: &Plan) -> Result<(), MultusError> {
        let netns = &self.request.netns;
        let names: Vec<String> = plan.delegates.iter().map(|d| d.ifname.clone()).collect();
        let network_of = |ifname: &str| {
            plan.delegates
                .iter()
                .find(|d| d.ifname == ifname)
                .map(|d| d.network.clone())
                .unwrap_or_default()
        };
        let existing = self
            .seams
            .netns
            .existing_links(netns, &names)
            .await
            .map_err(|source| MultusError::Netns {
                pod: self.request.pod.clone(),
                network: names.first().map(|n| network_of(n)).unwrap_or_default(),
                source,
            })?;
        match existing.first() {
            None => Ok(()),
            Some(ifname) => Err(MultusError::InterfaceExists {
                pod: self.request.pod.clone(),
                network: network_of(ifname),
                ifname: ifname.clone(),
                netns: netns.clone(),
            }),
        }
    }

    fn new_state(&self, plan: Plan) -> SandboxState {
        SandboxState {
            format: STATE_FORMAT,
            container_id: self.request.container_id.clone(),
            netns: self.request.netns.clone(),
            ifname: self.request.ifname.clone(),
            pod_namespace: self.request.pod.namespace.clone(),
            pod_name: self.request.pod.name.clone(),
            pod_uid: self.request.pod.uid.clone(),
            cni_version: self.conf.cni_version,
            phase: Phase::Adding,
            attachments: plan
                .delegates
                .into_iter()
                .map(|delegate| Attachment {
                    delegate,
                    result: None,
                })
                .collect(),
            network_status: Vec::new(),
        }
    }

    /// DEL, in reverse order, every delegate up to and including `failed`.
    async fn roll_back(
        &self,
        invoker: &Invoker<'_>,
        state: &SandboxState,
        failed: usize,
    ) -> AttachmentReport {
        let mut report = AttachmentReport::default();
        for (index, attachment) in state.attachments[..=failed].iter().enumerate().rev() {
            let delegate = &attachment.delegate;
            let label = format!("{} ({})", delegate.network, delegate.ifname);
            match invoker.del(delegate, attachment.result.as_ref()).await {
                Ok(()) => report.rolled_back.push(label),
                // The failed delegate's binary is missing: it never ran, nothing to undo.
                Err(ExecError::NotFound { .. }) if index == failed => {
                    report.rolled_back.push(label);
                }
                Err(e) => report.not_rolled_back.push(format!("{label}: {e}")),
            }
        }
        report.rolled_back.reverse();
        report.not_rolled_back.reverse();
        report
    }

    /// After a failed ADD: forget the sandbox when everything was rolled back, else keep
    /// the record so the runtime's DEL can finish the job.
    fn finish_failed_add(&self, report: &AttachmentReport) {
        if report.not_rolled_back.is_empty() {
            if let Err(e) = self.seams.state.remove(&self.request.container_id) {
                tracing::warn!(error = %e, "could not remove state after rollback");
            }
        }
    }

    fn network_status(&self, state: &SandboxState) -> Vec<NetworkStatus> {
        state
            .attachments
            .iter()
            .filter_map(|a| {
                let result = parse_result(a)?;
                Some(network_status_entries(
                    &a.delegate.network,
                    &a.delegate.ifname,
                    &result,
                    a.delegate.cluster_network,
                ))
            })
            .flatten()
            .collect()
    }

    /// Write network-status and events (best effort: the networks are attached), all
    /// at once.
    async fn publish(&self, state: &SandboxState) {
        let api = self.seams.api;
        let pod = &self.request.pod;
        let status = async {
            if let Err(e) = api.set_network_status(pod, &state.network_status).await {
                tracing::warn!(%pod, error = %e, "could not record network-status");
            }
        };
        let mut events = Vec::new();
        for attachment in &state.attachments {
            let Some(result) = parse_result(attachment) else {
                continue;
            };
            let addresses: Vec<&str> = result.ips.iter().map(|ip| ip.address.as_str()).collect();
            let event = PodEvent {
                kind: "Normal".into(),
                reason: "AddedInterface".into(),
                message: format!(
                    "Add {} [{}] from {}",
                    attachment.delegate.ifname,
                    addresses.join(" "),
                    attachment.delegate.network
                ),
            };
            events.push(async move {
                if let Err(e) = api.emit_event(pod, &event).await {
                    tracing::debug!(%pod, error = %e, "could not record event");
                }
            });
        }
        futures_util::future::join(status, futures_util::future::join_all(events)).await;
    }

    fn cluster_result(&self, state: &SandboxState) -> String {
        let version = self.conf.cni_version;
        let result = state
            .attachments
            .iter()
            .find(|a| a.delegate.cluster_network)
            .and_then(parse_result)
            .unwrap_or_else(|| CniResult {
                cni_version: version,
                ..CniResult::default()
            });
        result.to_json(version)
    }

    /// DEL: detach every recorded delegate in reverse order. Without a record, the plan is
    /// rebuilt from the configuration (and the annotations, when available).
    ///
    /// When every delegate's DEL succeeded the record is removed. When one failed, the
    /// record is kept (a rebuilt plan is written as one) whatever `retryDeleteOnError`
    /// says, so that the runtime's retry reaches every network again, including the
    /// annotation networks that could not be rebuilt once the pod is gone.
    pub async fn del(&self) -> Result<(), MultusError> {
        self.warn_if_not_ready();
        let store = self.seams.state;
        let _lock = store
            .lock(&self.request.container_id)
            .await
            .map_err(|e| self.state_error(e))?;
        let (record, recorded) = match store.load(&self.request.container_id) {
            Ok(Some(state)) => (state, true),
            Ok(None) => (self.rebuild_for_del().await?, false),
            Err(e @ StateError::Corrupt { .. }) => {
                tracing::warn!(error = %e, "state is corrupt; rebuilding the plan from configuration");
                (self.rebuild_for_del().await?, false)
            }
            Err(e) => return Err(self.state_error(e)),
        };
        let invoker = self.invoker();
        let mut failures = Vec::new();
        let mut deleted = Vec::new();
        for attachment in record.attachments.iter().rev() {
            let delegate = &attachment.delegate;
            match invoker.del(delegate, attachment.result.as_ref()).await {
                Ok(()) => deleted.push(format!("{} ({})", delegate.network, delegate.ifname)),
                // Without a record nothing says this network was ever attached, and a
                // plugin that is not installed cannot have attached it: failing would
                // only leave the sandbox stuck.
                Err(ExecError::NotFound { plugin, .. }) if !recorded => {
                    tracing::warn!(network = %delegate.network, plugin, "plugin not installed; nothing recorded to delete");
                }
                Err(error) => failures.push(DelegateFailure {
                    network: delegate.network.clone(),
                    ifname: delegate.ifname.clone(),
                    error,
                }),
            }
        }
        failures.reverse();
        deleted.reverse();
        if failures.is_empty() {
            return store
                .remove(&self.request.container_id)
                .map_err(|e| self.state_error(e));
        }
        // Upstream drops its cache here unless `retryDeleteOnError` is set, and its retry
        // then cannot find the annotation networks of a deleted pod: keep it always.
        let record_kept = recorded
            || store
                .save(&record)
                .map_err(|e| tracing::warn!(error = %e, "could not record the sandbox for the runtime's retry"))
                .is_ok();
        Err(MultusError::Del {
            pod: self.request.pod.clone(),
            failures,
            deleted,
            record_kept,
        })
    }

    /// Without a record: plan as ADD would; if the pod's annotations are unavailable or
    /// their networks cannot be resolved any more, still detach what the configuration
    /// alone determines, and say (WARN) which networks could not be reached.
    async fn rebuild_for_del(&self) -> Result<SandboxState, MultusError> {
        let annotations = self.pod_annotations_for_del().await;
        let plan = match annotations.as_ref() {
            // Configured never to use annotations: the plan is complete.
            None if !self.seams.api.has_pods()
                && self.conf.pod_annotations_from == PodAnnotationsSource::None =>
            {
                self.plan(None).await?
            }
            None => {
                let plan = self.plan(None).await?;
                tracing::warn!(
                    deleting = %plan_labels(&plan),
                    "no record of this sandbox and the pod's annotations are unavailable: deleting only the networks the configuration determines; networks the pod requested through its annotations (k8s.v1.cni.cncf.io/networks, v1.multus-cni.io/default-network), if any, cannot be reached and are not deleted"
                );
                plan
            }
            Some(annotations) => match self.plan(Some(annotations)).await {
                Ok(plan) => plan,
                Err(e) => {
                    let plan = self.plan(None).await?;
                    tracing::warn!(
                        error = %e,
                        unreachable = %self.annotation_networks_label(annotations),
                        deleting = %plan_labels(&plan),
                        "cannot resolve the pod's annotation networks for DEL: deleting the configured networks only; the unreachable networks are not deleted"
                    );
                    plan
                }
            },
        };
        Ok(self.new_state(plan))
    }

    /// The networks the pod's annotations name, for logs: `namespace/name` of every
    /// `networks` entry and of the `default-network` override (the raw value when an
    /// annotation does not parse).
    fn annotation_networks_label(&self, annotations: &BTreeMap<String, String>) -> String {
        let namespace = if self.request.pod.namespace.is_empty() {
            "default"
        } else {
            &self.request.pod.namespace
        };
        let mut names = Vec::new();
        let parsed = [
            (
                DEFAULT_NETWORK_ANNOTATION,
                self.conf.multus_namespace.as_str(),
            ),
            (NETWORKS_ANNOTATION, namespace),
        ];
        for (key, default_namespace) in parsed {
            let Some(value) = annotations.get(key).filter(|v| !v.trim().is_empty()) else {
                continue;
            };
            match parse_networks_annotation(value, default_namespace) {
                Ok(selections) => names.extend(
                    selections
                        .iter()
                        .map(|s| format!("{}/{}", s.namespace, s.name)),
                ),
                Err(_) => names.push(format!("{key}={value}")),
            }
        }
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    }

    /// CHECK: every recorded attachment must still be present and pass its delegate's
    /// CHECK with the cached result as `prevResult`.
    pub async fn check(&self) -> Result<(), MultusError> {
        let store = self.seams.state;
        let _lock = store
            .lock(&self.request.container_id)
            .await
            .map_err(|e| self.state_error(e))?;
        let Some(state) = store
            .load(&self.request.container_id)
            .map_err(|e| self.state_error(e))?
        else {
            self.forget_unrecorded();
            return Err(MultusError::UnknownContainer {
                pod: self.request.pod.clone(),
                container_id: self.request.container_id.clone(),
            });
        };
        let invoker = self.invoker();
        for attachment in &state.attachments {
            let delegate = &attachment.delegate;
            let check_error = |reason: String, code: u32| MultusError::Check {
                pod: self.request.pod.clone(),
                network: delegate.network.clone(),
                ifname: delegate.ifname.clone(),
                reason,
                code,
            };
            let present = self
                .seams
                .netns
                .link_addresses(&self.request.netns, &delegate.ifname)
                .await
                .map_err(|e| netns_check_error(self, delegate, e))?;
            let Some(present) = present else {
                return Err(check_error(
                    "interface is missing from the pod's network namespace".into(),
                    crate::cni::ErrorCode::InvalidInterface.code(),
                ));
            };
            if let Some(missing) = missing_address(attachment, &present) {
                return Err(check_error(
                    format!("address {missing} is missing from the interface"),
                    crate::cni::ErrorCode::InvalidInterface.code(),
                ));
            }
            let supports_check = delegate
                .config
                .cni_version()
                .is_some_and(CniVersion::supports_check);
            let Some(cached) = attachment.result.as_ref().filter(|_| supports_check) else {
                tracing::info!(network = %delegate.network, "delegate cniVersion is older than 0.4.0 or has no cached result; skipping its CHECK");
                continue;
            };
            invoker
                .check(delegate, cached)
                .await
                .map_err(|e| check_error(e.to_string(), e.cni_code()))?;
        }
        Ok(())
    }
    fn require_gc_and_status(&self, command: &'static str) -> Result<(), MultusError> {
        if self.conf.cni_version.supports_gc_and_status() {
            Ok(())
        } else {
            Err(MultusError::VersionTooOld {
                command,
                version: self.conf.cni_version.to_string(),
            })
        }
    }

    async fn configured_networks(&self) -> Result<Vec<(String, DelegateConfig)>, MultusError> {
        Planner::new(self.conf, self.request, self.seams.api, self.seams.files)
            .configured_networks()
            .await
            .map_err(|source| MultusError::Plan {
                pod: self.request.pod.clone(),
                source: Box::new(source),
            })
    }

    /// STATUS (CNI 1.1): the cluster network, the static delegates and every
    /// `defaultNetworks` entry must report ready. Delegates older than 1.1.0 cannot
    /// answer STATUS and are taken as ready.
    pub async fn status(&self) -> Result<(), MultusError> {
        self.require_gc_and_status("STATUS")?;
        self.wait_until_ready("STATUS")?;
        let invoker = self.invoker();
        for (network, config) in self.configured_networks().await? {
            if !config
                .cni_version()
                .is_some_and(CniVersion::supports_gc_and_status)
            {
                tracing::info!(%network, "delegate is older than CNI 1.1.0; not asking it for STATUS");
                continue;
            }
            invoker
                .status(&config)
                .await
                .map_err(|source| MultusError::Status { network, source })?;
        }
        Ok(())
    }

    /// GC (CNI 1.1): tear down every sandbox multus has a record of that is not in the
    /// runtime's `cni.dev/valid-attachments`, then forward GC to every network that has
    /// attachments on this node or is configured, each with its own valid attachments
    /// (the sandbox's container ID and the interface that network created).
    pub async fn gc(&self) -> Result<(), MultusError> {
        self.require_gc_and_status("GC")?;
        self.wait_until_ready("GC")?;
        let store = self.seams.state;
        let valid: HashSet<(&str, &str)> = self
            .conf
            .valid_attachments
            .iter()
            .map(|a| (a.container_id.as_str(), a.ifname.as_str()))
            .collect();
        let mut failures = Vec::new();
        let mut networks: BTreeMap<String, (DelegateConfig, Vec<Value>)> = BTreeMap::new();
        let ids = store.list().map_err(|e| self.state_error(e))?;
        for id in ids {
            let _lock = store.lock(&id).await.map_err(|e| self.state_error(e))?;
            let record = match store.load(&id) {
                Ok(Some(record)) => record,
                Ok(None) => continue,
                Err(e) => {
                    failures.push(format!("{id}: {e}"));
                    continue;
                }
            };
            if valid.contains(&(record.container_id.as_str(), record.ifname.as_str())) {
                for attachment in &record.attachments {
                    let delegate = &attachment.delegate;
                    let entry = networks
                        .entry(delegate.network.clone())
                        .or_insert_with(|| (delegate.config.clone(), Vec::new()));
                    entry.1.push(serde_json::json!({
                        "containerID": record.container_id,
                        "ifname": delegate.ifname,
                    }));
                }
                continue;
            }
            tracing::info!(container = %id, "sandbox is not valid any more; deleting its attachments");
            match self.tear_down(&record).await {
                Ok(()) => {
                    if let Err(e) = store.remove(&id) {
                        failures.push(format!("{id}: {e}"));
                    }
                }
                Err(e) => failures.push(format!("{id}: {e}")),
            }
        }
        match self.configured_networks().await {
            Ok(configured) => {
                for (network, config) in configured {
                    networks
                        .entry(network)
                        .or_insert_with(|| (config, Vec::new()));
                }
            }
            Err(e) => failures.push(e.to_string()),
        }
        let invoker = self.invoker();
        for (network, (config, valid_attachments)) in networks {
            if !config
                .cni_version()
                .is_some_and(CniVersion::supports_gc_and_status)
            {
                continue;
            }
            if let Err(e) = invoker.gc(&config, &Value::from(valid_attachments)).await {
                failures.push(format!("{network}: {e}"));
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(MultusError::Gc { failures })
        }
    }

    /// DEL every attachment of a stale record, in reverse, in the record's own sandbox.
    async fn tear_down(&self, record: &SandboxState) -> Result<(), String> {
        let mut invoker = self.invoker();
        invoker.container_id = record.container_id.clone();
        invoker.netns = record.netns.clone();
        let mut errors = Vec::new();
        for attachment in record.attachments.iter().rev() {
            if let Err(e) = invoker
                .del(&attachment.delegate, attachment.result.as_ref())
                .await
            {
                errors.push(format!(
                    "{} ({}): {e}",
                    attachment.delegate.network, attachment.delegate.ifname
                ));
            }
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join(", "))
        }
    }
}

fn netns_check_error(
    engine: &Engine<'_>,
    delegate: &PlannedDelegate,
    source: NetnsError,
) -> MultusError {
    MultusError::Netns {
        pod: engine.request.pod.clone(),
        network: delegate.network.clone(),
        source,
    }
}

/// The first address the attachment's cached result gave its interface that the
/// interface no longer has.
fn missing_address(attachment: &Attachment, present: &[std::net::IpAddr]) -> Option<String> {
    let result = parse_result(attachment)?;
    let ifname = &attachment.delegate.ifname;
    let own_index = result
        .interfaces
        .iter()
        .position(|i| i.is_in_sandbox() && &i.name == ifname);
    result
        .ips
        .iter()
        .filter(|ip| match (ip.interface, own_index) {
            (Some(index), Some(own)) => index == own,
            (Some(_), None) => false,
            (None, _) => true,
        })
        .map(|ip| ip.ip().to_owned())
        .find(|ip| {
            ip.parse::<std::net::IpAddr>()
                .is_ok_and(|addr| !present.contains(&addr))
        })
}

/// `network (ifname)` of every delegate of a plan, for logs.
fn plan_labels(plan: &Plan) -> String {
    plan.delegates
        .iter()
        .map(|d| format!("{} ({})", d.network, d.ifname))
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_result(attachment: &Attachment) -> Option<CniResult> {
    let value: &Value = attachment.result.as_ref()?;
    let fallback = attachment
        .delegate
        .config
        .cni_version()
        .unwrap_or(CniVersion::V0_1_0);
    CniResult::from_value(value, fallback)
        .map_err(|e| tracing::warn!(network = %attachment.delegate.network, error = %e, "delegate result does not parse"))
        .ok()
}

#[cfg(test)]
mod tests;
