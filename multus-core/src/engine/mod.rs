//! The engine: ADD, DEL and CHECK of one sandbox over the [`crate::seams`] traits.
//!
//! ADD persists the plan before the first delegate runs, runs the delegates in order and,
//! when one fails, deletes every delegate already attempted in reverse order. DEL works
//! from the persisted plan alone, tries every delegate and reports all failures together.

mod add;
mod check;
mod cni11;
mod default_route;
mod del;
mod devices;
mod error;
mod invoke;
mod parallel;
mod pod;
mod readiness;
mod upstream;

use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;

pub use error::{AttachmentReport, DelegateFailure, MultusError};
pub use invoke::Invoker;

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
    ClusterApi, ConfigFiles, DelegateExec, DeviceResources, ExecError, NetnsError, NetnsOps,
    PodEvent, StateError, StateStore,
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
    /// The pod's device-plugin and DRA devices (only read for `resourceName` networks).
    pub devices: &'a dyn DeviceResources,
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
}

impl Engine<'_> {
    /// Plan a DEL without a record: like [`Engine::plan`], leaving out `defaultNetworks`
    /// entries that no longer resolve (see [`Planner::for_del`]).
    async fn plan_for_del(
        &self,
        annotations: Option<&BTreeMap<String, String>>,
    ) -> Result<Plan, MultusError> {
        Planner::new(self.conf, self.request, self.seams.api, self.seams.files)
            .for_del()
            .plan(annotations)
            .await
            .map_err(|source| MultusError::Plan {
                pod: self.request.pod.clone(),
                source: Box::new(source),
            })
    }
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
