//! Embedding multus-core in another CNI project.
//!
//! The engine decides what to run; the embedder supplies the I/O through the traits in
//! `multus_core::seams`. This example answers every delegate call from memory (a real
//! embedder would exec the plugin binary, as `multus-cni`'s `ProcessExec` does), keeps
//! state in memory, and prints the plan's delegate calls, the result returned to the
//! runtime and the network-status.
//!
//! Run with `cargo run -p multus-core --example embed`.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use async_trait::async_trait;
use multus_core::config::MultusConf;
use multus_core::engine::{Engine, Seams};
use multus_core::nad::{NetworkAttachmentDefinition, NetworkStatus, parse_manifests};
use multus_core::request::{CniRequest, PodRef};
use multus_core::seams::{
    ApiError, ClusterApi, ConfigFiles, DefaultRoute, DelegateExec, ExecError, ExecRequest,
    NetnsError, NetnsOps, PodEvent, PodInfo, StateError, StateLock, StateStore,
};
use multus_core::state::SandboxState;

/// NADs parsed from an in-memory manifest.
struct Networks(Vec<NetworkAttachmentDefinition>);

#[async_trait]
impl ClusterApi for Networks {
    async fn pod(&self, _: &PodRef) -> Result<Option<PodInfo>, ApiError> {
        Ok(None)
    }
    async fn network_attachment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<NetworkAttachmentDefinition>, ApiError> {
        Ok(self
            .0
            .iter()
            .find(|n| n.namespace == namespace && n.name == name)
            .cloned())
    }
    async fn set_network_status(&self, _: &PodRef, _: &[NetworkStatus]) -> Result<(), ApiError> {
        Ok(())
    }
    async fn emit_event(&self, pod: &PodRef, event: &PodEvent) -> Result<(), ApiError> {
        println!("event on {pod}: {} {}", event.reason, event.message);
        Ok(())
    }
}

/// Answers each plugin call with a plausible result instead of running a binary.
struct PretendExec;

#[async_trait]
impl DelegateExec for PretendExec {
    async fn exec(&self, request: ExecRequest) -> Result<Vec<u8>, ExecError> {
        println!(
            "{} {} ifname={} args={}",
            request.command, request.plugin_type, request.ifname, request.args
        );
        let result = serde_json::json!({
            "cniVersion": "1.0.0",
            "interfaces": [{"name": request.ifname, "sandbox": request.netns}],
            "ips": [{"address": "10.0.0.2/24", "interface": 0}],
        });
        Ok(result.to_string().into_bytes())
    }
}

#[derive(Default)]
struct MemoryState(Mutex<HashMap<String, SandboxState>>);

#[derive(Debug)]
struct NoLock;
impl StateLock for NoLock {}

#[async_trait]
impl StateStore for MemoryState {
    async fn lock(&self, _: &str) -> Result<Box<dyn StateLock>, StateError> {
        Ok(Box::new(NoLock))
    }
    async fn load(&self, id: &str) -> Result<Option<SandboxState>, StateError> {
        Ok(self.0.lock().ok().and_then(|m| m.get(id).cloned()))
    }
    async fn save(&self, state: &SandboxState) -> Result<(), StateError> {
        if let Ok(mut records) = self.0.lock() {
            records.insert(state.container_id.clone(), state.clone());
        }
        Ok(())
    }
    async fn remove(&self, id: &str) -> Result<(), StateError> {
        if let Ok(mut records) = self.0.lock() {
            records.remove(id);
        }
        Ok(())
    }
    async fn list(&self) -> Result<Vec<String>, StateError> {
        Ok(self
            .0
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default())
    }
}

/// Pretends the pod's namespace is empty.
struct EmptyNetns;

#[async_trait]
impl NetnsOps for EmptyNetns {
    async fn link_exists(&self, _: &str, _: &str) -> Result<bool, NetnsError> {
        Ok(false)
    }
    async fn link_addresses(&self, _: &str, _: &str) -> Result<Option<Vec<IpAddr>>, NetnsError> {
        Ok(None)
    }
    async fn default_routes(&self, _: &str) -> Result<Vec<DefaultRoute>, NetnsError> {
        Ok(Vec::new())
    }
    async fn replace_default_route(&self, _: &str, _: &str, _: IpAddr) -> Result<(), NetnsError> {
        Ok(())
    }
    async fn remove_default_routes(&self, _: &str, _: &str) -> Result<(), NetnsError> {
        Ok(())
    }
}

/// No CNI config files on this "node".
struct NoFiles;

impl ConfigFiles for NoFiles {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            path.display().to_string(),
        ))
    }
    fn is_dir(&self, _: &Path) -> bool {
        false
    }
    fn list_configs(&self, _: &Path) -> std::io::Result<Vec<(PathBuf, Vec<u8>)>> {
        Ok(Vec::new())
    }
}

const NADS: &str = r#"
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: storage}
spec:
  config: '{"cniVersion":"1.0.0","type":"macvlan","master":"eth1","ipam":{"type":"host-local","subnet":"192.168.50.0/24"}}'
"#;

const CONF: &str = r#"{
  "cniVersion": "0.4.0", "name": "multus-cni-network", "type": "multus",
  "delegates": [{"cniVersion": "1.0.0", "name": "cluster", "type": "bridge"}],
  "runtimeConfig": {"io.kubernetes.cri.pod-annotations":
                     {"k8s.v1.cni.cncf.io/networks": "storage@stor0"}}
}"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let networks = Networks(parse_manifests(NADS)?);
    let state = MemoryState::default();
    let seams = Seams {
        api: &networks,
        exec: &PretendExec,
        state: &state,
        netns: &EmptyNetns,
        files: &NoFiles,
        devices: &multus_core::seams::NoDevices,
    };
    let conf = MultusConf::parse(CONF.as_bytes())?;
    let env = |command: &str| -> BTreeMap<String, String> {
        [
            ("CNI_COMMAND", command),
            ("CNI_CONTAINERID", "example"),
            ("CNI_NETNS", "/var/run/netns/example"),
            ("CNI_IFNAME", "eth0"),
            ("CNI_ARGS", "K8S_POD_NAMESPACE=default;K8S_POD_NAME=web"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    };

    let add = CniRequest::from_env(&env("ADD"), CONF.as_bytes().to_vec())?;
    let result = pollster::block_on(Engine::new(&conf, &add, seams).add())?;
    println!(
        "result for the runtime: {}",
        String::from_utf8_lossy(&result)
    );
    if let Some(record) = pollster::block_on(state.load("example"))? {
        println!(
            "network-status: {}",
            multus_core::nad::status::annotation_value(&record.network_status)
        );
    }

    let del = CniRequest::from_env(&env("DEL"), CONF.as_bytes().to_vec())?;
    pollster::block_on(Engine::new(&conf, &del, seams).del())?;
    Ok(())
}
