//! ADD: plan, persist, attach in order, roll back on failure, publish.

use std::collections::BTreeSet;

use super::*;

impl Engine<'_> {
    /// ADD: attach every planned network; returns the cluster network's result rendered
    /// in multus' configured cniVersion.
    pub async fn add(&self) -> Result<Vec<u8>, MultusError> {
        self.wait_until_ready("ADD").await?;
        let store = self.seams.state;
        let _lock = store
            .lock(&self.request.container_id)
            .await
            .map_err(|e| self.state_error(e))?;
        let (plan, parallel) = match self.plan_add().await {
            Ok(Some(planned)) => planned,
            // The pod is gone: upstream's empty success, nothing attached (pod.rs).
            Ok(None) => {
                self.forget_unrecorded().await;
                return Ok(self.pod_gone_result());
            }
            Err(e) => {
                self.forget_unrecorded().await;
                return Err(e);
            }
        };
        let mut state = self.new_state(plan);
        state.parallel_attach = parallel;
        store.save(&state).await.map_err(|e| self.state_error(e))?;

        let invoker = self.invoker();
        if let Err(failure) = self.attach_all(&invoker, &mut state).await {
            let report = self
                .roll_back(&invoker, &state, failure.attempted, &failure.never_ran)
                .await;
            self.finish_failed_add(&report, &state, failure.attempted - 1)
                .await;
            let delegate = &state.attachments[failure.failed].delegate;
            return Err(MultusError::Add {
                pod: self.request.pod.clone(),
                network: delegate.network.clone(),
                ifname: delegate.ifname.clone(),
                source: failure.source,
                report,
            });
        }

        let netns = &self.request.netns;
        if let Err(failure) =
            default_route::apply(self.seams.netns, netns, &mut state.attachments).await
        {
            let last = state.attachments.len().saturating_sub(1);
            let report = self
                .roll_back(&invoker, &state, state.attachments.len(), &BTreeSet::new())
                .await;
            self.finish_failed_add(&report, &state, last).await;
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
        // The record saved before the first delegate ran is durable already, and DEL
        // works from it: this newer version need not wait for the disk.
        if let Err(e) = store.update(&state).await {
            // Attached but not recorded as such (a full or failing state directory): a
            // failed ADD must leave nothing attached, so undo it all.
            let last = state.attachments.len().saturating_sub(1);
            let report = self
                .roll_back(&invoker, &state, state.attachments.len(), &BTreeSet::new())
                .await;
            tracing::warn!(error = %e, %report, "could not record the attached networks; rolled back");
            self.finish_failed_add(&report, &state, last).await;
            return Err(self.state_error(e));
        }
        self.publish(&state).await;
        Ok(self.cluster_result(&state).into_bytes())
    }

    /// Plan an ADD and check that every interface name is free; nothing has run yet.
    /// `None` when the API says the pod is gone. With the plan, whether its networks are
    /// attached in parallel.
    pub(super) async fn plan_add(&self) -> Result<Option<(Plan, bool)>, MultusError> {
        let annotations = match self.lookup_pod_for_add().await? {
            pod::PodLookup::Annotations(annotations) => annotations,
            pod::PodLookup::Gone => return Ok(None),
        };
        let mut plan = match self.plan(annotations.as_ref()).await {
            Ok(plan) => plan,
            Err(e) => {
                if let MultusError::Plan { source, .. } = &e {
                    self.report_missing_network(source).await;
                }
                return Err(e);
            }
        };
        plan.check_network_names()
            .map_err(|source| MultusError::Plan {
                pod: self.request.pod.clone(),
                source: Box::new(source),
            })?;
        if annotations.is_none() {
            self.warn_annotations_unknown(&plan);
        }
        self.ensure_ifnames_free(&plan).await?;
        self.assign_devices(&mut plan).await?;
        let parallel = parallel::wanted(self.conf, annotations.as_ref());
        Ok(Some((plan, parallel)))
    }

    /// ADD without an API server and without the pod's annotations from the runtime:
    /// whatever networks the pod asked for through its annotations cannot be known, so
    /// say so (WARN), naming what is attached instead. Silent when the configuration
    /// says the pods have no annotations to pass (`podAnnotationsFrom: none`).
    fn warn_annotations_unknown(&self, plan: &Plan) {
        if self.seams.api.has_pods() || self.conf.pod_annotations_from == PodAnnotationsSource::None
        {
            return;
        }
        tracing::warn!(
            attaching = %super::del::plan_labels(plan),
            "no Kubernetes API and the runtime passed no pod annotations (runtimeConfig io.kubernetes.cri.pod-annotations; multus' configuration must declare that capability): the networks named by the pod's k8s.v1.cni.cncf.io/networks and v1.multus-cni.io/default-network annotations, if any, are unknown and not attached; set podAnnotationsFrom to none when pods have none"
        );
    }

    /// After a request refused before anything ran: let the store forget the container,
    /// unless an earlier ADD left a record of it. (The file store needs nothing here: its
    /// lock file goes when the lock is released.)
    pub(super) async fn forget_unrecorded(&self) {
        let store = self.seams.state;
        if matches!(store.load(&self.request.container_id).await, Ok(None))
            && let Err(e) = store.remove(&self.request.container_id).await
        {
            tracing::warn!(error = %e, "could not remove the lock of a refused request");
        }
    }

    /// Fail when a planned interface name is already taken in the pod, or the pod's
    /// network namespace is gone, before anything runs.
    pub(super) async fn ensure_ifnames_free(&self, plan: &Plan) -> Result<(), MultusError> {
        let netns = &self.request.netns;
        // The auxiliary chain creates no interface: its name need not be free.
        let names: Vec<String> = plan
            .delegates
            .iter()
            .filter(|d| !d.auxiliary)
            .map(|d| d.ifname.clone())
            .collect();
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

    pub(super) fn new_state(&self, plan: Plan) -> SandboxState {
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
            multus_network: Some(self.conf.name.clone()),
            parallel_attach: false,
        }
    }

    /// DEL the first `attempted` delegates in reverse (in reverse stages, concurrently
    /// within one, after a parallel attach). A delegate in `never_ran` (its binary was
    /// missing) attached nothing: a missing binary at its DEL counts as rolled back.
    pub(super) async fn roll_back(
        &self,
        invoker: &Invoker<'_>,
        state: &SandboxState,
        attempted: usize,
        never_ran: &BTreeSet<usize>,
    ) -> AttachmentReport {
        let attachments = &state.attachments[..attempted.min(state.attachments.len())];
        let outcomes = self
            .detach_all(invoker, attachments, state.parallel_attach)
            .await;
        let mut report = AttachmentReport::default();
        for (index, (attachment, outcome)) in attachments.iter().zip(outcomes).enumerate() {
            let delegate = &attachment.delegate;
            let label = format!("{} ({})", delegate.network, delegate.ifname);
            match outcome {
                Ok(()) => {
                    self.release_device(delegate);
                    report.rolled_back.push(label);
                }
                // A delegate whose binary is missing never ran: nothing to undo.
                Err(ExecError::NotFound { .. }) if never_ran.contains(&index) => {
                    report.rolled_back.push(label);
                }
                Err(e) => report.not_rolled_back.push(format!("{label}: {e}")),
            }
        }
        report
    }

    /// After a failed ADD: forget the sandbox when everything was rolled back, else keep
    /// the record of the delegates up to `failed` so the runtime's DEL can finish the
    /// job. The delegates after `failed` never ran: they leave the record, so that a
    /// network that was never attached never makes DEL fail.
    pub(super) async fn finish_failed_add(
        &self,
        report: &AttachmentReport,
        state: &SandboxState,
        failed: usize,
    ) {
        let store = self.seams.state;
        if report.not_rolled_back.is_empty() {
            if let Err(e) = store.remove(&self.request.container_id).await {
                tracing::warn!(error = %e, "could not remove state after rollback");
            }
        } else if failed + 1 < state.attachments.len() {
            let mut attempted = state.clone();
            attempted.attachments.truncate(failed + 1);
            if let Err(e) = store.save(&attempted).await {
                tracing::warn!(error = %e, "could not drop the delegates that never ran from the record");
            }
        }
    }

    pub(super) fn network_status(&self, state: &SandboxState) -> Vec<NetworkStatus> {
        state
            .attachments
            .iter()
            // The auxiliary chain attaches no network of its own (upstream lists none).
            .filter(|a| !a.delegate.auxiliary)
            .filter_map(|a| {
                let result = parse_result(a)?;
                let mut entries = network_status_entries(
                    &a.delegate.network,
                    &a.delegate.ifname,
                    &result,
                    a.delegate.cluster_network,
                );
                self.add_device_info(&a.delegate, &mut entries);
                Some(entries)
            })
            .flatten()
            .collect()
    }

    /// Write network-status and events (best effort: the networks are attached), all
    /// at once.
    pub(super) async fn publish(&self, state: &SandboxState) {
        let api = self.seams.api;
        let pod = &self.request.pod;
        let status = async {
            if let Err(e) = api.set_network_status(pod, &state.network_status).await {
                tracing::warn!(%pod, error = %e, "could not record network-status");
            }
        };
        let mut events = Vec::new();
        for attachment in state.attachments.iter().filter(|a| !a.delegate.auxiliary) {
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

    pub(super) fn cluster_result(&self, state: &SandboxState) -> String {
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
}
