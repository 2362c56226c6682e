//! The engine's error type, and its mapping onto a CNI error for the runtime.

use std::fmt;

use crate::cni::{CniError, ErrorCode};
use crate::config::ConfigError;
use crate::plan::PlanError;
use crate::request::{PodRef, RequestError};
use crate::seams::{ApiError, ExecError, NetnsError, StateError};

/// What happened to each attachment when an operation failed part-way, so an operator
/// can see what is left.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AttachmentReport {
    /// `network (ifname)` of attachments that were added and are still in place.
    pub added: Vec<String>,
    /// Attachments that were rolled back successfully.
    pub rolled_back: Vec<String>,
    /// Attachments whose rollback failed, with the reason.
    pub not_rolled_back: Vec<String>,
}

impl fmt::Display for AttachmentReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |items: &[String]| {
            if items.is_empty() {
                "none".to_owned()
            } else {
                items.join(", ")
            }
        };
        write!(
            f,
            "rolled back: {}; could not be rolled back: {}",
            list(&self.rolled_back),
            list(&self.not_rolled_back)
        )?;
        if !self.added.is_empty() {
            write!(f, "; still attached: {}", list(&self.added))?;
        }
        Ok(())
    }
}

/// One delegate that failed during DEL or CHECK.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DelegateFailure {
    /// The network.
    pub network: String,
    /// Its interface.
    pub ifname: String,
    /// What failed.
    pub error: ExecError,
}

impl fmt::Display for DelegateFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.network, self.ifname, self.error)
    }
}

/// Everything that can make a multus operation fail.
#[derive(Debug, thiserror::Error)]
pub enum MultusError {
    /// The CNI environment is invalid.
    #[error("Multus: {0}")]
    Request(#[from] RequestError),
    /// The multus configuration is invalid.
    #[error("Multus: {0}")]
    Config(#[from] ConfigError),
    /// No plan could be made; nothing was run.
    #[error("Multus: [{pod}]: {source}")]
    Plan {
        /// The pod.
        pod: PodRef,
        /// Why.
        source: Box<PlanError>,
    },
    /// The requested interface name is taken inside the pod.
    #[error(
        "Multus: [{pod}:{network}]: interface {ifname:?} already exists in network namespace {netns}"
    )]
    InterfaceExists {
        /// The pod.
        pod: PodRef,
        /// The network.
        network: String,
        /// The interface.
        ifname: String,
        /// The namespace path.
        netns: String,
    },
    /// The pod's network namespace cannot be used.
    #[error("Multus: [{pod}:{network}]: {source}")]
    Netns {
        /// The pod.
        pod: PodRef,
        /// The network being attached.
        network: String,
        /// Why.
        source: NetnsError,
    },
    /// A delegate ADD failed; the attachments made so far were rolled back.
    #[error(
        "[{pod}:{network}]: error adding container to network {network:?} as {ifname}: {source}"
    )]
    Add {
        /// The pod.
        pod: PodRef,
        /// The network that failed.
        network: String,
        /// Its interface.
        ifname: String,
        /// The delegate's error.
        source: ExecError,
        /// What was rolled back.
        report: AttachmentReport,
    },
    /// The requested default route could not be set; every attachment was rolled back.
    #[error("Multus: [{pod}:{network}]: cannot set the default route through {ifname}: {source}")]
    DefaultRoute {
        /// The pod.
        pod: PodRef,
        /// The network that asked for the default route.
        network: String,
        /// Its interface.
        ifname: String,
        /// The namespace error.
        source: NetnsError,
        /// What was rolled back.
        report: AttachmentReport,
    },
    /// One or more delegate DELs failed (every delegate was still tried).
    #[error("Multus: [{pod}]: error deleting networks: {}", join(.failures))]
    Del {
        /// The pod.
        pod: PodRef,
        /// Each failure.
        failures: Vec<DelegateFailure>,
        /// `network (ifname)` of the attachments whose DEL succeeded.
        deleted: Vec<String>,
        /// Whether the sandbox record is kept for the runtime's retry.
        record_kept: bool,
    },
    /// CHECK found a problem.
    #[error("Multus: [{pod}:{network}]: CHECK failed for interface {ifname}: {reason}")]
    Check {
        /// The pod.
        pod: PodRef,
        /// The network.
        network: String,
        /// Its interface.
        ifname: String,
        /// What is wrong.
        reason: String,
        /// The CNI code to report.
        code: u32,
    },
    /// There is no record of the container (CHECK before ADD).
    #[error("Multus: [{pod}]: no attachments recorded for container {container_id}")]
    UnknownContainer {
        /// The pod.
        pod: PodRef,
        /// The container.
        container_id: String,
    },
    /// The state store failed.
    #[error("Multus: [{pod}]: {source}")]
    State {
        /// The pod.
        pod: PodRef,
        /// The store's error.
        source: StateError,
    },
    /// A network with a `resourceName` got no device; nothing was run.
    #[error(
        "Multus: [{pod}:{network}]: no device of resource {resource:?} for this network: {reason}"
    )]
    Device {
        /// The pod.
        pod: PodRef,
        /// The network.
        network: String,
        /// Its NAD's `resourceName`.
        resource: String,
        /// Why (sources tried, devices already taken).
        reason: String,
    },
    /// The cluster API failed.
    #[error("Multus: [{pod}]: {source}")]
    Api {
        /// The pod.
        pod: PodRef,
        /// The API error.
        source: ApiError,
    },
    /// The pod the API returned is not the pod of this sandbox (it was deleted and
    /// re-created under the same name); static pods are exempt.
    #[error("Multus: [{pod}]: expected pod UID {expected:?} but got {actual:?} from Kube API")]
    PodUidMismatch {
        /// The pod, as the runtime named it.
        pod: PodRef,
        /// `K8S_POD_UID`.
        expected: String,
        /// The UID of the API's pod.
        actual: String,
    },
    /// `readinessindicatorfile` did not appear in time.
    #[error(
        "Multus: {command}: have you checked that your default network is ready? still waiting for readinessindicatorfile @ {}. pollimmediate error: timed out waiting for the condition ({} s)",
        .path.display(),
        .waited.as_secs_f64()
    )]
    NotReady {
        /// The CNI command that waited.
        command: &'static str,
        /// The file.
        path: std::path::PathBuf,
        /// How long it waited.
        waited: std::time::Duration,
    },
    /// A network is not ready (STATUS).
    #[error("Multus: network {network:?} is not ready: {source}")]
    Status {
        /// The network.
        network: String,
        /// The delegate's answer.
        source: ExecError,
    },
    /// GC could not finish everything; what it could do was done.
    #[error("Multus: garbage collection incomplete: {}", .failures.join(" / "))]
    Gc {
        /// Each failure.
        failures: Vec<String>,
    },
    /// The command is valid CNI but needs a newer multus configuration version.
    #[error(
        "Multus: config version does not allow {command}: {command} needs cniVersion {required} or later in the multus configuration, which has {version} (no cniVersion counts as older)"
    )]
    VersionTooOld {
        /// The command.
        command: &'static str,
        /// The oldest version that allows it.
        required: &'static str,
        /// Multus' configured version.
        version: String,
    },
}

/// What a failed DEL did, attachment by attachment, and where the retry starts from.
fn del_details(failures: &[DelegateFailure], deleted: &[String], record_kept: bool) -> String {
    let deleted = if deleted.is_empty() {
        "none".to_owned()
    } else {
        deleted.join(", ")
    };
    let record = if record_kept {
        "the sandbox record is kept: a retried DEL deletes every attachment again from it (a runtime that takes DEL errors containing \"not found\" as success never retries: once the sandbox is gone, `multus-ctl state prune --all` on the node deletes what is left and the record)"
    } else {
        "the sandbox record could not be kept: a retried DEL rebuilds the plan from the configuration"
    };
    format!(
        "deleted: {deleted}; could not be deleted: {}; {record}",
        failures
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    )
}

fn join(failures: &[DelegateFailure]) -> String {
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(" / ")
}

impl MultusError {
    /// The CNI error code for the runtime.
    pub fn code(&self) -> u32 {
        let code = match self {
            Self::Request(RequestError::Args(_)) => ErrorCode::InvalidEnvironment,
            Self::Request(_) => ErrorCode::InvalidEnvironment,
            Self::Config(ConfigError::Json(_)) => ErrorCode::DecodeFailure,
            Self::Config(ConfigError::Version(_)) | Self::VersionTooOld { .. } => {
                ErrorCode::IncompatibleVersion
            }
            Self::Config(_) => ErrorCode::InvalidNetworkConfig,
            Self::Plan { source, .. } => match source.as_ref() {
                PlanError::Annotation { .. } => ErrorCode::InvalidAnnotation,
                PlanError::NetworkNotFound { .. } => ErrorCode::NetworkNotFound,
                PlanError::InvalidNetwork { .. }
                | PlanError::MissingNetworkName { .. }
                | PlanError::Chain { .. }
                | PlanError::AuxiliaryChainWithoutPath { .. } => ErrorCode::InvalidNetworkConfig,
                PlanError::Api { .. } => ErrorCode::ApiFailure,
                PlanError::Isolation { .. } | PlanError::TooManyNetworks { .. } => {
                    ErrorCode::InvalidAnnotation
                }
                PlanError::Refused { .. } => ErrorCode::InvalidNetworkConfig,
                PlanError::InvalidIfname { .. } | PlanError::DuplicateIfname { .. } => {
                    ErrorCode::InvalidInterface
                }
                PlanError::Ecmp { .. } => ErrorCode::InvalidAnnotation,
            },
            Self::InterfaceExists { .. } => ErrorCode::InvalidInterface,
            Self::Netns { .. } => ErrorCode::InvalidEnvironment,
            Self::DefaultRoute { .. } => ErrorCode::IoFailure,
            Self::Add { source, .. } => return source.cni_code(),
            Self::Del { failures, .. } => {
                return failures
                    .first()
                    .map_or(ErrorCode::DelegateFailed.code(), |f| f.error.cni_code());
            }
            Self::Check { code, .. } => return *code,
            Self::Status { source, .. } => match source {
                ExecError::Plugin { error, .. } if matches!(error.code, 50 | 51) => {
                    return error.code;
                }
                _ => ErrorCode::PluginNotAvailable,
            },
            Self::Gc { .. } => ErrorCode::DelegateFailed,
            Self::UnknownContainer { .. } => ErrorCode::UnknownContainer,
            Self::State { .. } => ErrorCode::StateFailure,
            Self::Api { .. } => ErrorCode::ApiFailure,
            Self::Device { .. } => ErrorCode::DeviceUnavailable,
            Self::PodUidMismatch { .. } => ErrorCode::InvalidEnvironment,
            Self::NotReady { command, .. } if *command == "STATUS" => ErrorCode::PluginNotAvailable,
            Self::NotReady { .. } => ErrorCode::TryAgainLater,
        };
        code.code()
    }

    /// The CNI error document for the runtime, in `cni_version`.
    pub fn to_cni_error(&self, cni_version: &str) -> CniError {
        let error = CniError {
            cni_version: cni_version.to_owned(),
            code: self.code(),
            msg: self.to_string(),
            details: String::new(),
        };
        match self {
            Self::Add { report, .. } | Self::DefaultRoute { report, .. } => {
                error.with_details(report.to_string())
            }
            Self::Del {
                failures,
                deleted,
                record_kept,
                ..
            } => error.with_details(del_details(failures, deleted, *record_kept)),
            _ => error,
        }
    }
}
