//! STATUS and GC (CNI 1.1).

use super::*;

impl Engine<'_> {
    pub(super) fn require_gc_and_status(&self, command: &'static str) -> Result<(), MultusError> {
        self.require_version(command, CniVersion::V1_1_0)
    }

    /// Refuse `command` when multus' own configuration is older than `required`, as
    /// the CNI spec (and upstream's skel) do: code 1, `config version does not allow`.
    pub(super) fn require_version(
        &self,
        command: &'static str,
        required: CniVersion,
    ) -> Result<(), MultusError> {
        if self.conf.cni_version >= required {
            Ok(())
        } else {
            Err(MultusError::VersionTooOld {
                command,
                required: required.as_str(),
                version: self.conf.cni_version.to_string(),
            })
        }
    }

    pub(super) async fn configured_networks(
        &self,
    ) -> Result<Vec<(String, DelegateConfig)>, MultusError> {
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
        self.wait_until_ready("STATUS").await?;
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

    /// GC (CNI 1.1): tear down every sandbox this multus network has a record of that
    /// is not in the runtime's `cni.dev/valid-attachments`, then forward GC to every
    /// network that has attachments on this node or is configured, each with its own
    /// valid attachments (the sandbox's container ID and the interface that network
    /// created).
    ///
    /// Records another multus network made (one sharing this `cniDir`) are never torn
    /// down, and their attachments stay valid on the networks both use. A sandbox the
    /// runtime lists as valid that has no record is kept everywhere: the cluster network
    /// gets it as valid with the runtime's interface name, and every other network is
    /// not sent GC at all, since which of its interfaces the sandbox has is unknown.
    pub async fn gc(&self) -> Result<(), MultusError> {
        self.require_gc_and_status("GC")?;
        self.wait_until_ready("GC").await?;
        let valid: HashSet<(&str, &str)> = self
            .conf
            .valid_attachments
            .iter()
            .map(|a| (a.container_id.as_str(), a.ifname.as_str()))
            .collect();
        let mut failures = Vec::new();
        let mut targets = GcTargets::default();
        let mut recorded = self.gc_records(&valid, &mut targets, &mut failures).await?;
        recorded.extend(self.gc_upstream(&valid, &mut targets, &mut failures).await);
        let cluster_network = self
            .gc_configured_networks(&mut targets, &mut failures)
            .await;
        self.keep_unrecorded(&recorded, cluster_network.as_deref(), &mut targets);
        self.forward_gc(targets, &mut failures).await;
        if failures.is_empty() {
            Ok(())
        } else {
            Err(MultusError::Gc { failures })
        }
    }

    /// Go through every record: tear down this network's sandboxes that are not valid
    /// any more, and note the attachments of the others as valid. Returns the container
    /// IDs that have a record.
    async fn gc_records(
        &self,
        valid: &HashSet<(&str, &str)>,
        targets: &mut GcTargets,
        failures: &mut Vec<String>,
    ) -> Result<HashSet<String>, MultusError> {
        let store = self.seams.state;
        let mut recorded = HashSet::new();
        for id in store.list().await.map_err(|e| self.state_error(e))? {
            let _lock = store.lock(&id).await.map_err(|e| self.state_error(e))?;
            let record = match store.load(&id).await {
                Ok(Some(record)) => record,
                Ok(None) => continue,
                Err(e) => {
                    failures.push(format!("{id}: {e}"));
                    continue;
                }
            };
            if !record.belongs_to(&self.conf.name) {
                tracing::debug!(container = %id, multus_network = ?record.multus_network, "record of another multus network; keeping it");
                targets.keep_foreign(&record);
                continue;
            }
            recorded.insert(record.container_id.clone());
            if valid.contains(&(record.container_id.as_str(), record.ifname.as_str())) {
                targets.keep(&record);
                continue;
            }
            tracing::info!(container = %id, "sandbox is not valid any more; deleting its attachments");
            match self.tear_down(&record).await {
                Ok(()) => {
                    if let Err(e) = store.remove(&id).await {
                        failures.push(format!("{id}: {e}"));
                    }
                }
                Err(e) => failures.push(format!("{id}: {e}")),
            }
        }
        Ok(recorded)
    }

    /// Add the configured networks (cluster network, static delegates,
    /// `defaultNetworks`) to the GC targets; returns the cluster network's name.
    async fn gc_configured_networks(
        &self,
        targets: &mut GcTargets,
        failures: &mut Vec<String>,
    ) -> Option<String> {
        match self.configured_networks().await {
            Ok(configured) => {
                let cluster_network = configured.first().map(|(network, _)| network.clone());
                for (network, config) in configured {
                    targets.network(network, config);
                }
                cluster_network
            }
            Err(e) => {
                failures.push(e.to_string());
                None
            }
        }
    }

    /// Valid attachments the runtime listed that have no record: never release them.
    fn keep_unrecorded(
        &self,
        recorded: &HashSet<String>,
        cluster_network: Option<&str>,
        targets: &mut GcTargets,
    ) {
        for attachment in &self.conf.valid_attachments {
            if recorded.contains(&attachment.container_id) {
                continue;
            }
            tracing::info!(
                container = %attachment.container_id,
                ifname = %attachment.ifname,
                "the runtime lists a sandbox multus has no record of; keeping its attachments on every network"
            );
            targets.keep_unknown(
                cluster_network,
                &attachment.container_id,
                &attachment.ifname,
            );
        }
    }

    /// Send GC to every target network that speaks CNI 1.1 and is not held.
    async fn forward_gc(&self, targets: GcTargets, failures: &mut Vec<String>) {
        let invoker = self.invoker();
        for (network, target) in targets.networks {
            if !target
                .config
                .cni_version()
                .is_some_and(CniVersion::supports_gc_and_status)
            {
                continue;
            }
            if target.held {
                tracing::info!(%network, "not sending GC: a valid sandbox without a record may have attachments on it");
                continue;
            }
            if let Err(e) = invoker.gc(&target.config, &Value::from(target.valid)).await {
                failures.push(format!("{network}: {e}"));
            }
        }
    }

    /// DEL every attachment of a stale record, in reverse, in the record's own sandbox.
    pub(super) async fn tear_down(&self, record: &SandboxState) -> Result<(), String> {
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

/// One network GC is forwarded to.
pub(super) struct GcTarget {
    /// Its config.
    config: DelegateConfig,
    /// Its valid attachments, `{"containerID", "ifname"}`.
    valid: Vec<Value>,
    /// Not sent GC: a sandbox may have attachments on it that nothing here knows of.
    held: bool,
}

/// The networks GC is forwarded to, by network name, and the attachments that stay
/// valid on each.
#[derive(Default)]
pub(super) struct GcTargets {
    networks: BTreeMap<String, GcTarget>,
    /// Attachments of records another multus network made, by network: valid on the
    /// networks this GC reaches anyway, never a reason to reach one.
    foreign: BTreeMap<String, Vec<Value>>,
}

impl GcTargets {
    /// The target for `network`, added with `config` when new.
    fn network(&mut self, network: String, config: DelegateConfig) -> &mut GcTarget {
        let foreign = &mut self.foreign;
        self.networks
            .entry(network)
            .or_insert_with_key(|network| GcTarget {
                config,
                valid: foreign.remove(network).unwrap_or_default(),
                held: false,
            })
    }

    /// Every attachment of a valid record of this multus network stays valid.
    pub(super) fn keep(&mut self, record: &SandboxState) {
        for attachment in &record.attachments {
            let delegate = &attachment.delegate;
            self.network(delegate.network.clone(), delegate.config.clone())
                .valid
                .push(valid_attachment(&record.container_id, &delegate.ifname));
        }
    }

    /// Every attachment of another multus network's record stays valid.
    fn keep_foreign(&mut self, record: &SandboxState) {
        for attachment in &record.attachments {
            let delegate = &attachment.delegate;
            let entry = valid_attachment(&record.container_id, &delegate.ifname);
            match self.networks.get_mut(&delegate.network) {
                Some(target) => target.valid.push(entry),
                None => self
                    .foreign
                    .entry(delegate.network.clone())
                    .or_default()
                    .push(entry),
            }
        }
    }

    /// A valid sandbox without a record: valid on the cluster network with the
    /// runtime's interface name, and every other network is held.
    fn keep_unknown(&mut self, cluster_network: Option<&str>, container_id: &str, ifname: &str) {
        for (network, target) in &mut self.networks {
            if Some(network.as_str()) == cluster_network {
                target.valid.push(valid_attachment(container_id, ifname));
            } else {
                target.held = true;
            }
        }
    }
}

/// One entry of `cni.dev/valid-attachments`.
fn valid_attachment(container_id: &str, ifname: &str) -> Value {
    serde_json::json!({"containerID": container_id, "ifname": ifname})
}
