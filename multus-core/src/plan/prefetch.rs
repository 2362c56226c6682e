//! The NetworkAttachmentDefinitions one plan needs, fetched concurrently before the
//! plan is resolved in order.
//!
//! Upstream fetches one NAD after the other, so a pod with N networks waits N round
//! trips to the API server. The planner first collects every `(namespace, name)` the
//! request can reference, fetches them all at once (`join_all`: no runtime needed, any
//! executor drives it) and then resolves the plan from the answers, in the same order
//! and with the same errors as before.
//!
//! The pod's author chooses how many NADs an annotation names, so the fetch is bounded:
//! at most [`MAX_CONCURRENT_FETCHES`] requests are in flight at once, and it stops at the
//! first NAD whose absence fails the plan (an annotation network that does not exist),
//! since nothing after it would be used.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use futures_util::StreamExt;
use futures_util::stream;

use super::Planner;
use crate::nad::{NetworkAttachmentDefinition, NetworkSelectionElement};
use crate::seams::{ApiError, ClusterApi};

type Key = (String, String);
type Answer = Result<Option<NetworkAttachmentDefinition>, ApiError>;

/// API requests one plan keeps in flight at most.
pub(super) const MAX_CONCURRENT_FETCHES: usize = 8;

/// One NAD a plan may read, and whether the plan fails when it is missing (an
/// annotation network) or falls back to something else (a `defaultNetworks` name may be
/// a CNI config name in `confDir`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Reference {
    pub(super) key: Key,
    pub(super) required: bool,
}

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

    /// Fetch every distinct NAD of `references`, [`MAX_CONCURRENT_FETCHES`] at a time
    /// and in order, and keep the answers; stop after the first required one that is
    /// missing or cannot be read.
    pub(super) async fn fetch(&self, api: &dyn ClusterApi, references: Vec<Reference>) {
        let mut distinct: Vec<Reference> = Vec::with_capacity(references.len());
        for reference in references {
            if self.nads().contains_key(&reference.key) {
                continue;
            }
            match distinct.iter_mut().find(|d| d.key == reference.key) {
                Some(known) => known.required |= reference.required,
                None => distinct.push(reference),
            }
        }
        let mut answers = stream::iter(distinct.into_iter().map(|reference| async move {
            let (namespace, name) = &reference.key;
            let answer = api.network_attachment(namespace, name).await;
            (reference, answer)
        }))
        .buffered(MAX_CONCURRENT_FETCHES);
        while let Some((reference, answer)) = answers.next().await {
            let fatal = reference.required && !matches!(answer, Ok(Some(_)));
            self.nads().insert(reference.key, answer);
            if fatal {
                break;
            }
        }
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
    ) -> Vec<Reference> {
        let multus_namespace = &self.conf.multus_namespace;
        let by_name = |value: &str| {
            (!value.is_empty() && !value.contains('/')).then(|| Reference {
                key: (multus_namespace.clone(), value.to_owned()),
                required: false,
            })
        };
        let selected = |selection: &NetworkSelectionElement| Reference {
            key: (selection.namespace.clone(), selection.name.clone()),
            required: true,
        };
        let mut keys = Vec::new();
        match cluster_selection {
            Some(selection) => keys.push(selected(selection)),
            None if self.conf.delegates.is_empty() => {
                keys.extend(self.conf.cluster_network.as_deref().and_then(by_name));
            }
            None => {}
        }
        if self.gets_default_networks() {
            keys.extend(self.conf.default_networks.iter().filter_map(|n| by_name(n)));
        }
        keys.extend(selections.iter().map(selected));
        keys
    }
}
