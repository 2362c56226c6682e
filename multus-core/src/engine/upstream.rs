//! Sandboxes upstream Go Multus attached before multus-rs took over the node: their
//! records, made from upstream's caches ([`crate::upstream`]), for DEL, CHECK and GC.

use super::*;
use crate::upstream::{UpstreamDefaults, UpstreamSandbox};

/// GC's view of the valid attachments, keyed by `(containerID, ifname)`.
pub(super) type ValidSet<'a> = HashSet<(&'a str, &'a str)>;

impl Engine<'_> {
    /// The record of a sandbox upstream Go Multus attached, from its caches; `None` when
    /// there are none (or they are unusable, logged).
    pub(super) async fn upstream_record(
        &self,
        container_id: &str,
    ) -> Option<(SandboxState, UpstreamSandbox)> {
        let sandbox = match self.seams.state.upstream(container_id).await {
            Ok(found) => found?,
            Err(e) => {
                tracing::warn!(container = %container_id, error = %e, "cannot read upstream Multus' cache of this sandbox");
                return None;
            }
        };
        match sandbox.to_state(&self.upstream_defaults()) {
            Ok(state) => {
                tracing::info!(
                    container = %container_id,
                    attachments = %super::del::state_labels(&state),
                    "no multus-rs record: using the cache upstream Multus wrote for this sandbox"
                );
                Some((state, sandbox))
            }
            Err(e) => {
                tracing::warn!(container = %container_id, error = %e, "upstream Multus' cache of this sandbox is unusable");
                None
            }
        }
    }

    /// What the record of an upstream sandbox takes from this request.
    fn upstream_defaults(&self) -> UpstreamDefaults {
        UpstreamDefaults {
            cni_version: self.conf.cni_version,
            ifname: if self.request.ifname.is_empty() {
                "eth0".to_owned()
            } else {
                self.request.ifname.clone()
            },
            netns: self.request.netns.clone(),
            cni_args: crate::plan::base_cni_args(self.request).to_string(),
            runtime_config: self.conf.runtime_config.clone(),
        }
    }

    /// The request's sandbox record: multus-rs' own, else one made from upstream's caches.
    pub(super) async fn load_or_upstream(&self) -> Result<Option<SandboxState>, MultusError> {
        let id = &self.request.container_id;
        let loaded = self.seams.state.load(id).await;
        match loaded.map_err(|e| self.state_error(e))? {
            Some(state) => Ok(Some(state)),
            None => Ok(self.upstream_record(id).await.map(|(state, _)| state)),
        }
    }

    /// GC of the sandboxes upstream attached (those without a multus-rs record): a valid
    /// one keeps its attachments on the networks' valid lists, an invalid one is torn
    /// down and its caches removed. Returns the container IDs of the valid ones, which
    /// therefore have a record.
    pub(super) async fn gc_upstream(
        &self,
        valid: &ValidSet<'_>,
        targets: &mut super::cni11::GcTargets,
        failures: &mut Vec<String>,
    ) -> HashSet<String> {
        let store = self.seams.state;
        let mut kept = HashSet::new();
        let ids = match store.list_upstream().await {
            Ok(ids) => ids,
            Err(e) => {
                failures.push(format!("upstream caches: {e}"));
                return kept;
            }
        };
        // A sandbox with a multus-rs record was handled from it.
        let recorded = store.list().await.unwrap_or_default();
        for id in ids.iter().filter(|id| !recorded.contains(id)) {
            let _lock = match store.lock(id).await {
                Ok(lock) => lock,
                Err(e) => {
                    failures.push(format!("{id}: {e}"));
                    continue;
                }
            };
            let Some((record, sandbox)) = self.upstream_record(id).await else {
                continue;
            };
            if valid.contains(&(record.container_id.as_str(), record.ifname.as_str())) {
                targets.keep(&record);
                kept.insert(record.container_id);
                continue;
            }
            tracing::info!(container = %id, "sandbox attached by upstream Multus is not valid any more; deleting its attachments");
            match self.tear_down(&record).await {
                Ok(()) => {
                    // remove() also drops the lock file taken above.
                    let removed = match store.remove_upstream(&sandbox).await {
                        Ok(()) => store.remove(id).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = removed {
                        failures.push(format!("{id}: {e}"));
                    }
                }
                Err(e) => failures.push(format!("{id}: {e}")),
            }
        }
        kept
    }
}
