//! STATUS and GC (CNI 1.1).

use super::*;

impl Engine<'_> {
    pub(super) fn require_gc_and_status(&self, command: &'static str) -> Result<(), MultusError> {
        if self.conf.cni_version.supports_gc_and_status() {
            Ok(())
        } else {
            Err(MultusError::VersionTooOld {
                command,
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
                upstream::list_valid_attachments(&mut networks, &record);
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
        self.gc_upstream(&valid, &mut networks, &mut failures).await;
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
