//! DEL: detach from the record, from upstream Go Multus' caches, or from a rebuilt plan
//! when there is neither.

use super::*;
use crate::upstream::{UnknownAttachments, UpstreamSandbox};

/// Where DEL's list of attachments came from.
enum Known {
    /// multus-rs' own record.
    Record,
    /// Upstream Go Multus' caches (a sandbox it attached before the switch).
    Upstream(UpstreamSandbox),
    /// Rebuilt from the configuration; `guessed` when networks the pod asked for may be
    /// missing from it.
    Rebuilt { guessed: bool },
}

impl Engine<'_> {
    /// DEL: detach every recorded delegate in reverse order. Without a record, from what
    /// upstream Go Multus cached for the sandbox; without either, the plan is rebuilt
    /// from the configuration (and the annotations, when available).
    ///
    /// When every delegate's DEL succeeded the record (or upstream's cache files) is
    /// removed. When one failed, the record is kept (a rebuilt plan is written as one)
    /// whatever `retryDeleteOnError` says, so that the runtime's retry reaches every
    /// network again, including the annotation networks that could not be rebuilt once
    /// the pod is gone.
    pub async fn del(&self) -> Result<(), MultusError> {
        self.warn_if_not_ready();
        let store = self.seams.state;
        let _lock = store
            .lock(&self.request.container_id)
            .await
            .map_err(|e| self.state_error(e))?;
        let (mut record, known) = self.record_for_del().await?;
        let recorded = !matches!(known, Known::Rebuilt { .. });
        // A record says how it was attached; a rebuilt plan follows the configuration.
        if !recorded {
            record.parallel_attach = self.conf.parallel_attach;
        }
        let outcomes = self
            .detach_all(&self.invoker(), &record.attachments, record.parallel_attach)
            .await;
        let (failures, deleted) = self.sort_outcomes(&record, outcomes, recorded);
        if failures.is_empty() {
            store
                .remove(&self.request.container_id)
                .await
                .map_err(|e| self.state_error(e))?;
            return self.forget_after_del(&known).await;
        }
        // Upstream drops its cache here unless `retryDeleteOnError` is set, and its retry
        // then cannot find the annotation networks of a deleted pod: keep it always
        // (upstream's own cache files stay for the retry as they are).
        let record_kept = recorded
            || store
                .save(&record)
                .await
                .map_err(|e| tracing::warn!(error = %e, "could not record the sandbox for the runtime's retry"))
                .is_ok();
        Err(MultusError::Del {
            pod: self.request.pod.clone(),
            failures,
            deleted,
            record_kept,
        })
    }

    /// What DEL works from: the record, else upstream's caches of the sandbox, else the
    /// plan rebuilt from the configuration (also when the record is corrupt).
    async fn record_for_del(&self) -> Result<(SandboxState, Known), MultusError> {
        match self.seams.state.load(&self.request.container_id).await {
            Ok(Some(state)) => Ok((state, Known::Record)),
            Ok(None) => match self.upstream_record(&self.request.container_id).await {
                Some((state, sandbox)) => Ok((state, Known::Upstream(sandbox))),
                None => self.rebuild_for_del().await,
            },
            Err(e @ StateError::Corrupt { .. }) => {
                tracing::warn!(error = %e, "state is corrupt; rebuilding the plan from configuration");
                self.rebuild_for_del().await
            }
            Err(e) => Err(self.state_error(e)),
        }
    }

    /// The failed delegates and the labels of the deleted ones, in attachment order;
    /// a delegate's devices are released once it is deleted. Without a record
    /// (`recorded` false), failures that cannot mean a leak are logged, not returned.
    fn sort_outcomes(
        &self,
        record: &SandboxState,
        outcomes: Vec<Result<(), ExecError>>,
        recorded: bool,
    ) -> (Vec<DelegateFailure>, Vec<String>) {
        let mut failures = Vec::new();
        let mut deleted = Vec::new();
        for (attachment, outcome) in record.attachments.iter().zip(outcomes).rev() {
            let delegate = &attachment.delegate;
            match outcome {
                Ok(()) => {
                    self.release_device(delegate);
                    deleted.push(label(delegate));
                }
                // Without a record nothing says this network was ever attached, and a
                // plugin that is not installed cannot have attached it: failing would
                // only leave the sandbox stuck.
                Err(ExecError::NotFound { plugin, .. }) if !recorded => {
                    tracing::warn!(network = %delegate.network, plugin, "plugin not installed; nothing recorded to delete");
                }
                // Without a record, a device network's device is unknown (DEL asks no
                // kubelet): its plugin cannot be told what to release, and nothing says
                // it was ever attached.
                Err(error)
                    if !recorded
                        && delegate.resource_name.is_some()
                        && delegate.device.is_none() =>
                {
                    tracing::warn!(network = %delegate.network, %error, "no record of this sandbox, so the device of this resourceName network is unknown; its DEL failure is ignored");
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
        (failures, deleted)
    }

    /// After a successful DEL: remove upstream's cache files of the sandbox, and the note
    /// of unknown attachments once a DEL knew the whole sandbox (upstream's caches, or a
    /// plan rebuilt with the pod's annotations).
    async fn forget_after_del(&self, known: &Known) -> Result<(), MultusError> {
        let store = self.seams.state;
        let id = &self.request.container_id;
        match known {
            Known::Upstream(sandbox) => {
                store
                    .remove_upstream(sandbox)
                    .await
                    .map_err(|e| self.state_error(e))?;
                tracing::info!(container = %id, "deleted a sandbox attached by upstream Multus and removed its caches");
            }
            // A record may be a guessed plan a failed DEL kept: what it could not know
            // is still unknown.
            Known::Rebuilt { guessed: true } | Known::Record => return Ok(()),
            Known::Rebuilt { guessed: false } => {}
        }
        if let Err(e) = store.note_unknown(id, None).await {
            tracing::warn!(container = %id, error = %e, "could not remove the note of unknown attachments");
        }
        Ok(())
    }

    /// Without a record: plan as ADD would; if the pod's annotations are unavailable or
    /// their networks cannot be resolved any more, still detach what the configuration
    /// alone determines, and say which networks could not be reached: a WARN naming the
    /// sandbox, a warning event on the pod where an API is reachable, and a note that
    /// `multus-ctl state list` shows as unknown attachments.
    async fn rebuild_for_del(&self) -> Result<(SandboxState, Known), MultusError> {
        let annotations = self.pod_annotations_for_del().await;
        let (plan, unreachable) = match annotations.as_ref() {
            // Configured never to use annotations: the plan is complete.
            None if !self.seams.api.has_pods()
                && self.conf.pod_annotations_from == PodAnnotationsSource::None =>
            {
                (self.plan_for_del(None).await?, None)
            }
            // The runtime's repeated DEL once the sandbox's netns is gone (containerd's
            // on RemovePodSandbox): it removes the netns only after a DEL succeeded,
            // and that DEL removed the record. Routine, not worth a WARN.
            None if self.request.netns.is_empty() => {
                let plan = self.plan(None).await?;
                tracing::info!(
                    deleting = %plan_labels(&plan),
                    "no record of this sandbox and no network namespace (a repeated DEL after a successful one): deleting the networks the configuration determines again"
                );
                (plan, None)
            }
            None => {
                let plan = self.plan_for_del(None).await?;
                tracing::warn!(
                    container = %self.request.container_id,
                    pod = %self.request.pod,
                    deleting = %plan_labels(&plan),
                    "no record of this sandbox and the pod's annotations are unavailable: deleting only the networks the configuration determines; networks the pod requested through its annotations (k8s.v1.cni.cncf.io/networks, v1.multus-cni.io/default-network), if any, cannot be reached and are not deleted"
                );
                (
                    plan,
                    Some(
                        "the pod's annotations are unavailable (pod gone or API unreachable)"
                            .to_owned(),
                    ),
                )
            }
            Some(annotations) => match self.plan_for_del(Some(annotations)).await {
                Ok(plan) => (plan, None),
                Err(e) => {
                    let plan = self.plan_for_del(None).await?;
                    let networks = self.annotation_networks_label(annotations);
                    tracing::warn!(
                        container = %self.request.container_id,
                        pod = %self.request.pod,
                        error = %e,
                        unreachable = %networks,
                        deleting = %plan_labels(&plan),
                        "cannot resolve the pod's annotation networks for DEL: deleting the configured networks only; the unreachable networks are not deleted"
                    );
                    (
                        plan,
                        Some(format!(
                            "cannot resolve the pod's annotation networks ({networks}): {e}"
                        )),
                    )
                }
            },
        };
        // Only while the pod's network namespace exists: containerd's second DEL (empty
        // CNI_NETNS, after the first removed the record) knows nothing either, and is no
        // news.
        if let Some(reason) = &unreachable
            && self.sandbox_netns_exists().await
        {
            self.report_unknown_attachments(&plan, reason).await;
        }
        // Complete: the annotations resolved, or the configuration never uses any. A
        // repeated DEL without annotations is not complete either, so it leaves a note of
        // an earlier guess in place.
        let complete = match annotations {
            Some(_) => unreachable.is_none(),
            None => {
                !self.seams.api.has_pods()
                    && self.conf.pod_annotations_from == PodAnnotationsSource::None
            }
        };
        let known = Known::Rebuilt { guessed: !complete };
        Ok((self.new_state(plan), known))
    }

    /// Whether the request's network namespace (still) exists.
    async fn sandbox_netns_exists(&self) -> bool {
        let netns = &self.request.netns;
        !netns.is_empty() && self.seams.netns.link_exists(netns, "lo").await.is_ok()
    }

    /// Tell operators that this DEL had to guess: a warning event on the pod (best
    /// effort, where an API is reachable) and a note kept on the node.
    async fn report_unknown_attachments(&self, plan: &Plan, reason: &str) {
        let pod = &self.request.pod;
        let note = UnknownAttachments {
            container_id: self.request.container_id.clone(),
            pod_namespace: pod.namespace.clone(),
            pod_name: pod.name.clone(),
            pod_uid: pod.uid.clone(),
            netns: self.request.netns.clone(),
            deleted: plan.delegates.iter().map(label).collect(),
            reason: reason.to_owned(),
        };
        if let Err(e) = self
            .seams
            .state
            .note_unknown(&self.request.container_id, Some(&note))
            .await
        {
            tracing::warn!(error = %e, "could not keep a note of the unknown attachments");
        }
        if !self.seams.api.has_pods() || !pod.is_known() {
            return;
        }
        let event = PodEvent {
            kind: "Warning".into(),
            reason: "UnknownAttachments".into(),
            message: format!(
                "sandbox {}: no record of its attachments; deleted {} only, other networks the pod had may be left attached: {reason}",
                self.request.container_id,
                plan_labels(plan)
            ),
        };
        if let Err(e) = self.seams.api.emit_event(pod, &event).await {
            tracing::debug!(%pod, error = %e, "could not record event");
        }
    }

    /// The networks the pod's annotations name, for logs: `namespace/name` of every
    /// `networks` entry and of the `default-network` override (the raw value when an
    /// annotation does not parse).
    pub(super) fn annotation_networks_label(
        &self,
        annotations: &BTreeMap<String, String>,
    ) -> String {
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
}

/// `network (ifname)` of one delegate, for logs and notes.
fn label(delegate: &PlannedDelegate) -> String {
    format!("{} ({})", delegate.network, delegate.ifname)
}

/// [`label`] of every delegate, comma-separated.
fn labels<'a>(delegates: impl Iterator<Item = &'a PlannedDelegate>) -> String {
    delegates.map(label).collect::<Vec<_>>().join(", ")
}

/// `network (ifname)` of every delegate of a plan, for logs.
pub(super) fn plan_labels(plan: &Plan) -> String {
    labels(plan.delegates.iter())
}

/// `network (ifname)` of every attachment of a record, for logs.
pub(super) fn state_labels(state: &SandboxState) -> String {
    labels(state.attachments.iter().map(|a| &a.delegate))
}
