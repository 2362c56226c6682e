//! The NetworkAttachmentDefinitions one plan needs, fetched concurrently before the
//! plan is resolved in order.
//!
//! Upstream fetches one NAD after the other, so a pod with N networks waits N round
//! trips to the API server. The planner first collects every `(namespace, name)` the
//! request can reference, fetches them all at once (`join_all`: no runtime needed, any
//! executor drives it) and then resolves the plan from the answers, in the same order
//! and with the same errors as before.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use futures_util::future::join_all;

use super::Planner;
use crate::nad::{NetworkAttachmentDefinition, NetworkSelectionElement};
use crate::seams::{ApiError, ClusterApi};

type Key = (String, String);
type Answer = Result<Option<NetworkAttachmentDefinition>, ApiError>;

/// The answers of the prefetch, by `(namespace, name)`.
#[derive(Debug, Default)]
pub(super) struct Prefetched {
    nads: Mutex<HashMap<Key, Answer>>,
}

impl Prefetched {
    fn nads(&self) -> MutexGuard<'_, HashMap<Key, Answer>> {
        self.nads
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Fetch every distinct NAD of `keys` concurrently and keep the answers.
    pub(super) async fn fetch(&self, api: &dyn ClusterApi, keys: Vec<Key>) {
        let mut distinct: Vec<Key> = Vec::with_capacity(keys.len());
        for key in keys {
            if !distinct.contains(&key) && !self.nads().contains_key(&key) {
                distinct.push(key);
            }
        }
        let answers = join_all(
            distinct
                .iter()
                .map(|(namespace, name)| api.network_attachment(namespace, name)),
        )
        .await;
        self.nads().extend(distinct.into_iter().zip(answers));
    }

    /// The prefetched answer for one NAD, if it was prefetched.
    pub(super) fn get(&self, namespace: &str, name: &str) -> Option<Answer> {
        self.nads()
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }
}

impl Planner<'_> {
    /// Every NAD this plan may read: the default-network override (or a `clusterNetwork`
    /// given as a name), `defaultNetworks` given as names, and the annotation networks.
    pub(super) fn nad_references(
        &self,
        cluster_selection: Option<&NetworkSelectionElement>,
        selections: &[NetworkSelectionElement],
    ) -> Vec<Key> {
        let multus_namespace = &self.conf.multus_namespace;
        let by_name = |value: &str| {
            (!value.is_empty() && !value.contains('/'))
                .then(|| (multus_namespace.clone(), value.to_owned()))
        };
        let mut keys = Vec::new();
        match cluster_selection {
            Some(selection) => keys.push((selection.namespace.clone(), selection.name.clone())),
            None if self.conf.delegates.is_empty() => {
                keys.extend(self.conf.cluster_network.as_deref().and_then(by_name));
            }
            None => {}
        }
        if self.gets_default_networks() {
            keys.extend(self.conf.default_networks.iter().filter_map(|n| by_name(n)));
        }
        keys.extend(
            selections
                .iter()
                .map(|s| (s.namespace.clone(), s.name.clone())),
        );
        keys
    }
}
