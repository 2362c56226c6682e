//! DEL: detach from the record, or from a rebuilt plan when there is none.

use super::*;

impl Engine<'_> {
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
    pub(super) async fn rebuild_for_del(&self) -> Result<SandboxState, MultusError> {
        let annotations = self.pod_annotations_for_del().await;
        let plan = match annotations.as_ref() {
            // Configured never to use annotations: the plan is complete.
            None if !self.seams.api.has_pods()
                && self.conf.pod_annotations_from == PodAnnotationsSource::None =>
            {
                self.plan(None).await?
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
                plan
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

/// `network (ifname)` of every delegate of a plan, for logs.
pub(super) fn plan_labels(plan: &Plan) -> String {
    plan.delegates
        .iter()
        .map(|d| format!("{} ({})", d.network, d.ifname))
        .collect::<Vec<_>>()
        .join(", ")
}
