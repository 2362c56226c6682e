//! A CNI request as a runtime makes it: the `CNI_*` environment and the config on stdin.

use std::collections::BTreeMap;
use std::fmt;

use crate::cni::CniArgs;
use crate::cni::args::ArgsError;

/// The CNI command of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Command {
    /// Attach the container to the networks.
    Add,
    /// Detach it.
    Del,
    /// Verify the attachments.
    Check,
    /// Report the plugin's version support.
    Version,
    /// Report whether the plugin is ready (CNI 1.1).
    Status,
    /// Garbage-collect stale attachments (CNI 1.1).
    Gc,
}

impl Command {
    /// Parse `CNI_COMMAND`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ADD" => Self::Add,
            "DEL" => Self::Del,
            "CHECK" => Self::Check,
            "VERSION" => Self::Version,
            "STATUS" => Self::Status,
            "GC" => Self::Gc,
            _ => return None,
        })
    }

    /// The `CNI_COMMAND` spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "ADD",
            Self::Del => "DEL",
            Self::Check => "CHECK",
            Self::Version => "VERSION",
            Self::Status => "STATUS",
            Self::Gc => "GC",
        }
    }

    /// Whether the command concerns one container (needs `CNI_CONTAINERID` etc.).
    pub fn is_per_container(self) -> bool {
        matches!(self, Self::Add | Self::Del | Self::Check)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Problems with the request environment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// A required variable is absent or empty.
    #[error("required environment variable {0} is missing")]
    Missing(&'static str),
    /// `CNI_COMMAND` holds an unknown value.
    #[error("unknown CNI_COMMAND {0:?}")]
    UnknownCommand(String),
    /// `CNI_CONTAINERID` is not a valid container ID.
    #[error(
        "invalid CNI_CONTAINERID {0:?}: it must start with a letter or digit and contain only letters, digits, '_', '.' and '-'"
    )]
    InvalidContainerId(String),
    /// `CNI_IFNAME` is not a valid interface name.
    #[error("invalid CNI_IFNAME {name:?}: {reason}")]
    InvalidIfname {
        /// The name given.
        name: String,
        /// Why it is invalid.
        reason: String,
    },
    /// `CNI_ARGS` is malformed.
    #[error("invalid CNI_ARGS: {0}")]
    Args(#[from] ArgsError),
}

/// The Kubernetes identity of the pod, from `CNI_ARGS`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PodRef {
    /// `K8S_POD_NAMESPACE`.
    pub namespace: String,
    /// `K8S_POD_NAME`.
    pub name: String,
    /// `K8S_POD_UID`.
    pub uid: String,
    /// `K8S_POD_INFRA_CONTAINER_ID`.
    pub infra_container_id: String,
}

impl PodRef {
    /// Read the pod identity from CNI_ARGS (missing keys stay empty).
    pub fn from_args(args: &CniArgs) -> Self {
        let get = |k: &str| args.get(k).unwrap_or_default().to_owned();
        Self {
            namespace: get("K8S_POD_NAMESPACE"),
            name: get("K8S_POD_NAME"),
            uid: get("K8S_POD_UID"),
            infra_container_id: get("K8S_POD_INFRA_CONTAINER_ID"),
        }
    }

    /// Whether the runtime named a pod at all.
    pub fn is_known(&self) -> bool {
        !self.name.is_empty()
    }
}

impl fmt::Display for PodRef {
    /// Upstream's `<ns>/<name>/<uid>` form used in error messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}/{}", self.namespace, self.name, self.uid)
    }
}

/// One parsed CNI invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CniRequest {
    /// The command.
    pub command: Command,
    /// `CNI_CONTAINERID` (empty for VERSION, STATUS and GC).
    pub container_id: String,
    /// `CNI_NETNS` (may be empty on DEL).
    pub netns: String,
    /// `CNI_IFNAME`, the cluster network's interface name.
    pub ifname: String,
    /// `CNI_ARGS`, parsed.
    pub args: CniArgs,
    /// `CNI_PATH`, split on ':'.
    pub path: Vec<String>,
    /// The pod identity from `CNI_ARGS`.
    pub pod: PodRef,
    /// The config document from stdin.
    pub stdin: Vec<u8>,
}

impl CniRequest {
    /// Build a request from the `CNI_*` variables and stdin.
    ///
    /// `CNI_NETNS` may be empty on DEL (containerd's second DEL); it is required for ADD
    /// and CHECK.
    pub fn from_env(env: &BTreeMap<String, String>, stdin: Vec<u8>) -> Result<Self, RequestError> {
        let var = |k: &str| env.get(k).map(String::as_str).unwrap_or_default();
        let command_text = var("CNI_COMMAND");
        if command_text.is_empty() {
            return Err(RequestError::Missing("CNI_COMMAND"));
        }
        let command = Command::parse(command_text)
            .ok_or_else(|| RequestError::UnknownCommand(command_text.to_owned()))?;
        let args = CniArgs::parse(var("CNI_ARGS"))?;
        let path = var("CNI_PATH")
            .split(':')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect();
        let mut request = Self {
            command,
            container_id: var("CNI_CONTAINERID").to_owned(),
            netns: var("CNI_NETNS").to_owned(),
            ifname: var("CNI_IFNAME").to_owned(),
            pod: PodRef::from_args(&args),
            args,
            path,
            stdin,
        };
        if command.is_per_container() {
            request.validate_per_container()?;
        }
        Ok(request)
    }

    fn validate_per_container(&mut self) -> Result<(), RequestError> {
        if self.container_id.is_empty() {
            return Err(RequestError::Missing("CNI_CONTAINERID"));
        }
        if !is_valid_container_id(&self.container_id) {
            return Err(RequestError::InvalidContainerId(self.container_id.clone()));
        }
        if self.netns.is_empty() && self.command != Command::Del {
            return Err(RequestError::Missing("CNI_NETNS"));
        }
        if self.ifname.is_empty() {
            if self.command == Command::Del {
                self.ifname = "eth0".to_owned();
            } else {
                return Err(RequestError::Missing("CNI_IFNAME"));
            }
        }
        crate::nad::annotation::validate_ifname(&self.ifname).map_err(|e| {
            RequestError::InvalidIfname {
                name: self.ifname.clone(),
                reason: e.to_string(),
            }
        })
    }
}

/// libcni's container ID rule: `^[a-zA-Z0-9][a-zA-Z0-9_.\-]*$`. It also guarantees the ID
/// is safe as a file name under `cniDir`.
pub fn is_valid_container_id(id: &str) -> bool {
    let mut chars = id.chars();
    match chars.next() {
        Some(first) if first.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    id.len() <= 1024 && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn add_request_is_parsed() {
        let request = CniRequest::from_env(
            &env(&[
                ("CNI_COMMAND", "ADD"),
                ("CNI_CONTAINERID", "abc123"),
                ("CNI_NETNS", "/var/run/netns/x"),
                ("CNI_IFNAME", "eth0"),
                (
                    "CNI_ARGS",
                    "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=web",
                ),
                ("CNI_PATH", "/opt/cni/bin:/usr/lib/cni"),
            ]),
            b"{}".to_vec(),
        )
        .unwrap();
        assert_eq!(request.command, Command::Add);
        assert_eq!(request.pod.namespace, "ns");
        assert_eq!(request.pod.name, "web");
        assert_eq!(request.path, vec!["/opt/cni/bin", "/usr/lib/cni"]);
    }

    #[test]
    fn missing_variables_are_named() {
        let err = CniRequest::from_env(&env(&[("CNI_COMMAND", "ADD")]), vec![]).unwrap_err();
        assert_eq!(err, RequestError::Missing("CNI_CONTAINERID"));
        let err = CniRequest::from_env(
            &env(&[("CNI_COMMAND", "ADD"), ("CNI_CONTAINERID", "a")]),
            vec![],
        )
        .unwrap_err();
        assert_eq!(err, RequestError::Missing("CNI_NETNS"));
        let err = CniRequest::from_env(&env(&[]), vec![]).unwrap_err();
        assert_eq!(err, RequestError::Missing("CNI_COMMAND"));
    }

    #[test]
    fn del_tolerates_empty_netns() {
        let request = CniRequest::from_env(
            &env(&[("CNI_COMMAND", "DEL"), ("CNI_CONTAINERID", "a")]),
            vec![],
        )
        .unwrap();
        assert_eq!(request.netns, "");
        assert_eq!(request.ifname, "eth0");
    }

    #[test]
    fn container_ids_that_escape_are_refused() {
        for id in ["../etc", "a/b", ".hidden", "", "a b"] {
            assert!(!is_valid_container_id(id), "{id}");
        }
        assert!(is_valid_container_id("3f69a1_b.c-d"));
    }

    #[test]
    fn unknown_command_is_refused() {
        let err = CniRequest::from_env(&env(&[("CNI_COMMAND", "FOO")]), vec![]).unwrap_err();
        assert_eq!(err, RequestError::UnknownCommand("FOO".into()));
    }
}
