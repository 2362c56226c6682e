//! A Kubernetes node for the tests of the thin plugin against the API
//! ([`KubeNode`]): a node network namespace with the API stand-in listening on its
//! loopback and two NADs in it, pod namespaces, and the real `multus` run inside the
//! node namespace as a runtime runs it.
//!
//! Nothing here touches the machine's own namespace: bridges, veths and the veth master
//! of macvlan networks live in the node namespace, which is deleted (with every pod
//! namespace) when the node is dropped.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use k8s_standin::{Options, PODS, StandIn};
use serde_json::{Value, json};

use crate::binaries::{self, SYSTEM_PATH};
use crate::command::output_with_stdin;
use crate::netns::{Netns, Node, unique_name};

/// The pod annotation naming additional networks.
pub const NETWORKS: &str = "k8s.v1.cni.cncf.io/networks";
/// The annotation multus writes.
pub const NETWORK_STATUS: &str = "k8s.v1.cni.cncf.io/network-status";
/// The reference plugins the node's networks use.
const PLUGINS: &[&str] = &["bridge", "host-local", "macvlan"];

/// What one `multus` call printed.
#[derive(Debug)]
pub struct Outcome {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// stdout as JSON (a string when it is not JSON, null when empty).
    pub stdout: Value,
    /// stderr.
    pub stderr: String,
    /// How long the call took.
    pub elapsed: Duration,
}

impl Outcome {
    /// The CNI error code (panics on success).
    pub fn error_code(&self) -> u64 {
        assert_ne!(self.code, 0, "expected a failure, got {}", self.stdout);
        self.stdout["code"].as_u64().unwrap_or_default()
    }
    /// The CNI error message.
    pub fn message(&self) -> String {
        self.stdout["msg"].as_str().unwrap_or_default().to_owned()
    }
    /// Panic unless it succeeded.
    pub fn ok(&self) -> &Value {
        assert_eq!(
            self.code, 0,
            "multus failed: {}\n{}",
            self.stdout, self.stderr
        );
        &self.stdout
    }
}

/// A pod as the runtime names it.
#[derive(Debug, Clone)]
pub struct PodArgs {
    /// `K8S_POD_NAMESPACE`.
    pub namespace: String,
    /// `K8S_POD_NAME`.
    pub name: String,
    /// `K8S_POD_UID` (empty for none).
    pub uid: String,
    /// `CNI_CONTAINERID`.
    pub container_id: String,
}

/// The node: its namespace, the stand-in on its loopback, a scratch directory and the
/// multus configuration.
///
/// Fields drop in order: the stand-in, the namespaces (pods and node), the scratch
/// directory.
#[derive(Debug)]
pub struct KubeNode {
    /// The Kubernetes API stand-in, listening in the node namespace.
    pub api: StandIn,
    node: Node,
    /// The pod namespaces, by the index [`KubeNode::pod`] returns.
    pub pods: Vec<Netns>,
    /// Scratch directory: kubeconfig, host-local's data, multus' state and confDir.
    pub dir: tempfile::TempDir,
    /// Extra keys of the multus configuration.
    pub conf_extra: Value,
}

impl KubeNode {
    /// A node with a veth `mkm0` as master of macvlan networks, the stand-in and NADs
    /// `blue` (bridge) and `green` (macvlan) in `default`.
    pub fn new() -> Self {
        binaries::require_plugins(PLUGINS);
        let node = Node::new();
        // The master of macvlan networks (no `dummy` module on every kernel: a veth).
        let netns = node.netns();
        netns.ip(&[
            "link", "add", "mkm0", "type", "veth", "peer", "name", "mkm1",
        ]);
        netns.ip(&["link", "set", "mkm0", "up"]);
        netns.ip(&["link", "set", "mkm1", "up"]);
        let dir = tempfile::tempdir().unwrap();
        let api = StandIn::start_with(Options {
            kubeconfig: Some(dir.path().join("kubeconfig")),
            netns: Some(netns.path()),
            ..Options::default()
        })
        .unwrap();
        let kube = Self {
            api,
            node,
            pods: Vec::new(),
            dir,
            conf_extra: json!({}),
        };
        let blue = kube.bridge_config("blue", "mkb0", "10.90.0.0/24");
        kube.api.create_nad("default", "blue", &blue).unwrap();
        let green = kube.macvlan_config("green", "10.91.0.0/24");
        kube.api.create_nad("default", "green", &green).unwrap();
        kube
    }

    /// The node namespace.
    pub fn netns(&self) -> &Netns {
        self.node.netns()
    }

    /// The reference plugins' directory, the `binDir` and `CNI_PATH` of every call.
    pub fn plugin_dir() -> PathBuf {
        binaries::plugin_dir()
    }

    /// host-local's data directory.
    pub fn ipam_dir(&self) -> PathBuf {
        self.dir.path().join("ipam")
    }

    /// A bridge network config with host-local IPAM in the scratch directory.
    pub fn bridge_config(&self, name: &str, bridge: &str, subnet: &str) -> String {
        json!({
            "cniVersion": "1.0.0", "name": name, "type": "bridge", "bridge": bridge,
            "ipam": {"type": "host-local", "subnet": subnet, "dataDir": self.ipam_dir()}
        })
        .to_string()
    }

    /// A macvlan network config on `mkm0`.
    pub fn macvlan_config(&self, name: &str, subnet: &str) -> String {
        json!({
            "cniVersion": "1.0.0", "name": name, "type": "macvlan", "master": "mkm0",
            "mode": "bridge",
            "ipam": {"type": "host-local", "subnet": subnet, "dataDir": self.ipam_dir()}
        })
        .to_string()
    }

    /// The multus configuration: cluster network `cluster` (bridge `mkc0`), the
    /// stand-in's kubeconfig, state and confDir in the scratch directory, plus
    /// `conf_extra`.
    pub fn conf(&self) -> Value {
        let cluster: Value =
            serde_json::from_str(&self.bridge_config("cluster", "mkc0", "10.88.0.0/24")).unwrap();
        let mut conf = json!({
            "cniVersion": "1.0.0", "name": "multus-cni-network", "type": "multus",
            "kubeconfig": self.api.kubeconfig(),
            "cniDir": self.dir.path().join("multus"),
            "confDir": self.dir.path().join("net.d"),
            "binDir": Self::plugin_dir(),
            "apiTimeoutSeconds": 5,
            "delegates": [cluster]
        });
        if let (Some(conf), Some(extra)) = (conf.as_object_mut(), self.conf_extra.as_object()) {
            conf.extend(extra.clone());
        }
        conf
    }

    /// A pod namespace (`lo` up) and its runtime identity; `uid` empty for none.
    pub fn pod(&mut self, namespace: &str, name: &str, uid: &str) -> (PodArgs, usize) {
        let netns = self.node.add_pod_netns();
        netns.ip(&["link", "set", "lo", "up"]);
        let args = PodArgs {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            uid: uid.to_owned(),
            container_id: unique_name("ctr"),
        };
        self.pods.push(netns);
        (args, self.pods.len() - 1)
    }

    /// Create the pod in the API and its sandbox; returns the runtime identity (with the
    /// API's UID) and the index of its namespace.
    pub fn api_pod(
        &mut self,
        namespace: &str,
        name: &str,
        annotations: &[(&str, &str)],
    ) -> (PodArgs, usize) {
        let uid = self.api.create_pod(namespace, name, annotations);
        self.pod(namespace, name, &uid)
    }

    /// Run `multus` inside the node namespace with `command` for the pod.
    pub fn multus(&self, command: &str, pod: &PodArgs, index: usize) -> Outcome {
        self.multus_with(command, pod, index, &self.conf())
    }

    /// Same, with an explicit configuration.
    pub fn multus_with(&self, command: &str, pod: &PodArgs, index: usize, conf: &Value) -> Outcome {
        let multus = binaries::built("multus");
        let multus = multus.to_str().expect("paths are UTF-8");
        self.multus_via(command, pod, index, conf, &[multus], &[])
    }

    /// Same, running `program` (which runs multus) inside the node namespace with extra
    /// environment variables.
    pub fn multus_via(
        &self,
        command: &str,
        pod: &PodArgs,
        index: usize,
        conf: &Value,
        program: &[&str],
        env: &[(&str, &str)],
    ) -> Outcome {
        let args = format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID={}",
            pod.namespace, pod.name, pod.container_id, pod.uid
        );
        let started = Instant::now();
        let output = output_with_stdin(
            Command::new(binaries::ip())
                .args(["netns", "exec", self.netns().name()])
                .args(program)
                .env_clear()
                .envs(env.iter().copied())
                .env("PATH", SYSTEM_PATH)
                .env("CNI_COMMAND", command)
                .env("CNI_CONTAINERID", &pod.container_id)
                .env("CNI_NETNS", self.pods[index].path())
                .env("CNI_IFNAME", "eth0")
                .env("CNI_ARGS", args)
                .env("CNI_PATH", Self::plugin_dir()),
            conf.to_string().as_bytes(),
        );
        let stdout = if output.stdout.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
                Value::String(String::from_utf8_lossy(&output.stdout).into_owned())
            })
        };
        Outcome {
            code: output.status.code().unwrap_or(-1),
            stdout,
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
            elapsed: started.elapsed(),
        }
    }

    /// The IP leases host-local holds, over every network.
    pub fn leases(&self) -> Vec<String> {
        let mut leases = Vec::new();
        let Ok(networks) = std::fs::read_dir(self.ipam_dir()) else {
            return leases;
        };
        for network in networks.flatten() {
            for file in std::fs::read_dir(network.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = file.file_name().to_string_lossy().into_owned();
                if name.parse::<std::net::IpAddr>().is_ok() {
                    leases.push(name);
                }
            }
        }
        leases.sort();
        leases
    }

    /// The network-status annotation of a pod, parsed.
    pub fn network_status(&self, namespace: &str, name: &str) -> Option<Value> {
        let pod = self.api.get(&PODS, namespace, name)?;
        let text = pod
            .pointer("/metadata/annotations")?
            .get(NETWORK_STATUS)?
            .as_str()?
            .to_owned();
        Some(serde_json::from_str(&text).unwrap())
    }

    /// Requests the stand-in received, as `verb resource[/subresource] name`.
    pub fn request_summary(&self) -> Vec<String> {
        self.api
            .requests()
            .iter()
            .map(|r| {
                let mut resource = r.resource.clone().unwrap_or_else(|| r.path.clone());
                if let Some(sub) = &r.subresource {
                    resource = format!("{resource}/{sub}");
                }
                format!(
                    "{} {resource} {}",
                    r.verb,
                    r.name.clone().unwrap_or_default()
                )
                .trim_end()
                .to_owned()
            })
            .collect()
    }
}

impl Default for KubeNode {
    fn default() -> Self {
        Self::new()
    }
}
