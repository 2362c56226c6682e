//! Harness of the Kubernetes end-to-end tests: a node network namespace with the API
//! stand-in listening on its loopback, pod namespaces, the real `multus` binary run
//! inside the node namespace as a runtime runs it, and cleanup in `Drop`.
//!
//! Nothing here touches the machine's own namespace: bridges, veths and the veth
//! master of macvlan networks live in the node namespace, which is deleted (with every
//! pod namespace) when the `Node` is dropped.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use k8s_standin::{Options, PODS, StandIn};
use serde_json::{Value, json};

/// Where Debian installs the reference plugins.
pub const PLUGIN_DIR: &str = "/usr/lib/cni";
use multus_host::DEFAULT_PATH as PATH;
/// The pod annotation naming additional networks.
pub const NETWORKS: &str = "k8s.v1.cni.cncf.io/networks";
/// The annotation multus writes.
pub const NETWORK_STATUS: &str = "k8s.v1.cni.cncf.io/network-status";

fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Run a command; panic with its output when it fails.
pub fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", PATH)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn check_machine() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the Kubernetes end-to-end tests create network namespaces: run them as root"
    );
    for plugin in ["bridge", "host-local", "macvlan"] {
        assert!(
            Path::new(PLUGIN_DIR).join(plugin).exists(),
            "{PLUGIN_DIR}/{plugin} is missing: apt-get install containernetworking-plugins"
        );
    }
}

/// A named network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    fn new(prefix: &str) -> Self {
        let name = unique(prefix);
        run("ip", &["netns", "add", &name]);
        run("ip", &["-n", &name, "link", "set", "lo", "up"]);
        Self { name }
    }

    /// `/run/netns/<name>`.
    pub fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }

    /// `ip -n <name> <args>`.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Links other than `lo`, as `(name, mac, [addresses])`, sorted by name.
    pub fn links(&self) -> Vec<(String, String, Vec<String>)> {
        let json: Value = serde_json::from_str(&self.ip(&["-j", "addr", "show"])).unwrap();
        let mut links: Vec<_> = json
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["ifname"] != "lo")
            .map(|l| {
                let addresses = l["addr_info"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter(|i| i["scope"] == "global")
                            .map(|i| i["local"].as_str().unwrap_or_default().to_owned())
                            .collect()
                    })
                    .unwrap_or_default();
                (
                    l["ifname"].as_str().unwrap_or_default().to_owned(),
                    l["address"].as_str().unwrap_or_default().to_owned(),
                    addresses,
                )
            })
            .collect();
        links.sort();
        links
    }

    /// The names of the links other than `lo`.
    pub fn link_names(&self) -> Vec<String> {
        self.links().into_iter().map(|(n, _, _)| n).collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .env_clear()
            .env("PATH", PATH)
            .output();
    }
}

/// What one `multus` call printed.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub stdout: Value,
    pub stderr: String,
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
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub container_id: String,
}

/// The node: its namespace, the stand-in on its loopback, a scratch directory and the
/// multus configuration.
/// Fields drop in order: pods, the stand-in, the node namespace, the scratch directory.
pub struct Node {
    pub pods: Vec<Netns>,
    pub api: StandIn,
    pub netns: Netns,
    pub dir: tempfile::TempDir,
    /// Extra keys of the multus configuration.
    pub conf_extra: Value,
}

impl Node {
    /// A node with a veth `mkm0` as master of macvlan networks, the stand-in and NADs `blue` (bridge)
    /// and `green` (macvlan) in `default`.
    pub fn new() -> Self {
        check_machine();
        let netns = Netns::new("mk-node");
        // The master of macvlan networks (no `dummy` module on every kernel: a veth).
        netns.ip(&[
            "link", "add", "mkm0", "type", "veth", "peer", "name", "mkm1",
        ]);
        netns.ip(&["link", "set", "mkm0", "up"]);
        netns.ip(&["link", "set", "mkm1", "up"]);
        let dir = tempfile::tempdir().unwrap();
        let api = StandIn::start_with(Options {
            kubeconfig: Some(dir.path().join("kubeconfig")),
            netns: Some(PathBuf::from(netns.path())),
            ..Options::default()
        })
        .unwrap();
        let node = Self {
            pods: Vec::new(),
            api,
            netns,
            dir,
            conf_extra: json!({}),
        };
        node.api
            .create_nad(
                "default",
                "blue",
                &node.bridge_config("blue", "mkb0", "10.90.0.0/24"),
            )
            .unwrap();
        node.api
            .create_nad(
                "default",
                "green",
                &node.macvlan_config("green", "10.91.0.0/24"),
            )
            .unwrap();
        node
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
            "binDir": PLUGIN_DIR,
            "apiTimeoutSeconds": 5,
            "delegates": [cluster]
        });
        if let (Some(conf), Some(extra)) = (conf.as_object_mut(), self.conf_extra.as_object()) {
            conf.extend(extra.clone());
        }
        conf
    }

    /// A pod namespace and its runtime identity; `uid` empty for none.
    pub fn pod(&mut self, namespace: &str, name: &str, uid: &str) -> (PodArgs, usize) {
        let netns = Netns::new("mk-pod");
        let args = PodArgs {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            uid: uid.to_owned(),
            container_id: unique("ctr"),
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
        self.multus_via(
            command,
            pod,
            index,
            conf,
            &[env!("CARGO_BIN_EXE_multus")],
            &[],
        )
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
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.netns.name])
            .args(program)
            .env_clear()
            .envs(env.iter().copied())
            .env("PATH", PATH)
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", &pod.container_id)
            .env("CNI_NETNS", self.pods[index].path())
            .env("CNI_IFNAME", "eth0")
            .env("CNI_ARGS", args)
            .env("CNI_PATH", PLUGIN_DIR)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(conf.to_string().as_bytes())
            .unwrap();
        let output = child.wait_with_output().unwrap();
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
