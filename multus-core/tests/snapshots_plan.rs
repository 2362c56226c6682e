//! Snapshot tests of what multus decides and sends for one realistic pod, through the
//! public API of multus-core: the plan, the exact stdin documents, CNI_ARGS and ifnames
//! of every delegate plugin call, the result returned to the runtime at each multus
//! cniVersion, the network-status, and the CNI error of a failed ADD with its rollback.
//!
//! The pod (namespace `default`, name `web-0`):
//! - cluster network: the static delegate `k8s-pod-network`, a 1.0.0 conflist
//!   bridge + portmap (`portMappings` capability) + bandwidth (`bandwidth` capability);
//!   multus' runtimeConfig carries the runtime's `portMappings` and `bandwidth`;
//! - `defaultNetworks: ["sidecar"]`: NAD `kube-system/sidecar`, a 0.4.0 ptp conf
//!   without `name` (the NAD name is injected);
//! - `k8s.v1.cni.cncf.io/networks`, JSON form:
//!   1. `macvlan-conf` with interface, ips, mac, cni-args and portMappings: a 1.0.0
//!      conflist macvlan (`ips` capability, static IPAM) + tuning (`mac`) + portmap;
//!   2. `infra/fromdir`: a NAD with an empty spec, resolved by name from `confDir`
//!      to a 0.2.0 ipvlan conf.
//!
//! The fake plugins answer as the reference plugins do: in the cniVersion they were
//! called with, chained plugins (portmap, bandwidth, tuning) pass `prevResult` on, and
//! tuning applies the `mac` it was given.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::{Value, json};

use multus_core::cni::{CniError, CniResult, CniVersion};
use multus_core::config::MultusConf;
use multus_core::engine::{Engine, MultusError, Seams};
use multus_core::nad::status::annotation_value;
use multus_core::nad::{NETWORKS_ANNOTATION, NetworkAttachmentDefinition, NetworkStatus};
use multus_core::plan::{Plan, Planner};
use multus_core::request::{CniRequest, Command, PodRef};
use multus_core::seams::{
    ApiError, ClusterApi, DefaultRoute, DelegateExec, ExecError, ExecRequest, NetnsError, NetnsOps,
    PodEvent, PodInfo,
};
use multus_core::testing::{MemoryConfigFiles, MemoryStateStore};

const CONTAINER_ID: &str = "3f69a1b2c3d4";
const NETNS: &str = "/var/run/netns/cni-7d3c9a1e";
const POD_UID: &str = "5b9c6f0e-11ee-4c3a-9d2e-0242ac120002";
const CNI_ARGS: &str = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;\
     K8S_POD_INFRA_CONTAINER_ID=3f69a1b2c3d4;K8S_POD_UID=5b9c6f0e-11ee-4c3a-9d2e-0242ac120002";

const NETWORKS_JSON: &str = r#"[
  {"name": "macvlan-conf", "interface": "mv0", "ips": ["10.1.1.21/24"],
   "mac": "c2:11:22:33:44:66", "cni-args": {"foo": "bar"},
   "portMappings": [{"hostPort": 9090, "containerPort": 90, "protocol": "tcp"}]},
  {"name": "fromdir", "namespace": "infra"}
]"#;

// ---------------------------------------------------------------------------------------
// Fakes of the seams
// ---------------------------------------------------------------------------------------

/// A Kubernetes API in memory: one pod, the NADs, and what multus writes back.
#[derive(Default)]
struct FakeApi {
    annotations: BTreeMap<String, String>,
    nads: Vec<NetworkAttachmentDefinition>,
    statuses: Mutex<Vec<Vec<NetworkStatus>>>,
    events: Mutex<Vec<PodEvent>>,
}

#[async_trait]
impl ClusterApi for FakeApi {
    fn has_pods(&self) -> bool {
        true
    }
    async fn pod(&self, pod: &PodRef) -> Result<Option<PodInfo>, ApiError> {
        Ok(
            (pod.namespace == "default" && pod.name == "web-0").then(|| PodInfo {
                uid: POD_UID.to_owned(),
                annotations: self.annotations.clone(),
            }),
        )
    }
    async fn network_attachment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<NetworkAttachmentDefinition>, ApiError> {
        Ok(self
            .nads
            .iter()
            .find(|n| n.namespace == namespace && n.name == name)
            .cloned())
    }
    async fn set_network_status(
        &self,
        _pod: &PodRef,
        status: &[NetworkStatus],
    ) -> Result<(), ApiError> {
        self.statuses.lock().unwrap().push(status.to_vec());
        Ok(())
    }
    async fn emit_event(&self, _pod: &PodRef, event: &PodEvent) -> Result<(), ApiError> {
        self.events.lock().unwrap().push(event.clone());
        Ok(())
    }
}

/// One recorded plugin call.
#[derive(Clone, Debug)]
struct Call {
    command: Command,
    plugin: String,
    ifname: String,
    args: String,
    stdin: Value,
}

/// Records every call and answers like the reference plugins; plugin types in
/// `failing_add` / `failing_del` fail that command.
#[derive(Default)]
struct FakeExec {
    calls: Mutex<Vec<Call>>,
    failing_add: BTreeSet<String>,
    failing_del: BTreeSet<String>,
}

impl FakeExec {
    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

/// The result a reference plugin would print, in the 1.x layout (rendered at the
/// version the plugin was called with by the caller).
fn plugin_result(request: &ExecRequest, stdin: &Value) -> Value {
    let ifname = request.ifname.as_str();
    let netns = request.netns.as_str();
    let prev = || stdin.get("prevResult").cloned().unwrap_or(Value::Null);
    match request.plugin_type.as_str() {
        "bridge" => json!({
            "interfaces": [
                {"name": "cni0", "mac": "6a:3e:9c:1b:04:5f"},
                {"name": "veth3c9e1f2a", "mac": "9e:21:7b:c4:55:10"},
                {"name": ifname, "mac": "0a:58:0a:f4:01:05", "sandbox": netns}
            ],
            "ips": [{"interface": 2, "address": "10.244.1.5/24", "gateway": "10.244.1.1"}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.244.1.1"}],
            "dns": {}
        }),
        "ptp" => json!({
            "interfaces": [
                {"name": "veth9a8b7c6d", "mac": "f2:5e:31:0c:7a:11"},
                {"name": ifname, "mac": "4e:8d:2a:90:13:b7", "sandbox": netns}
            ],
            "ips": [{"interface": 1, "address": "10.250.0.7/24", "gateway": "10.250.0.1"}],
            "routes": [{"dst": "10.250.0.0/16", "gw": "10.250.0.1"}],
            "dns": {}
        }),
        "macvlan" => {
            // Static IPAM: the address the `ips` capability asked for.
            let address = stdin["runtimeConfig"]["ips"][0]
                .as_str()
                .unwrap_or("10.1.1.100/24")
                .to_owned();
            json!({
                "interfaces": [{"name": ifname, "mac": "8e:2b:44:d0:19:a3", "sandbox": netns}],
                "ips": [{"interface": 0, "address": address}],
                "dns": {}
            })
        }
        "ipvlan" => json!({
            "ips": [{"address": "192.168.50.10/24", "gateway": "192.168.50.1"}],
            "routes": [{"dst": "192.168.0.0/16", "gw": "192.168.50.1"}],
            "dns": {}
        }),
        "tuning" => {
            let mut result = prev();
            if let Some(mac) = stdin["runtimeConfig"]["mac"].as_str() {
                for iface in result["interfaces"].as_array_mut().into_iter().flatten() {
                    if iface["name"] == ifname && iface.get("sandbox").is_some() {
                        iface["mac"] = json!(mac);
                    }
                }
            }
            result
        }
        // portmap, bandwidth: pass prevResult on unchanged.
        _ => prev(),
    }
}

#[async_trait]
impl DelegateExec for FakeExec {
    async fn exec(&self, request: ExecRequest) -> Result<Vec<u8>, ExecError> {
        let stdin: Value = serde_json::from_slice(&request.stdin).expect("stdin is JSON");
        self.calls.lock().unwrap().push(Call {
            command: request.command,
            plugin: request.plugin_type.clone(),
            ifname: request.ifname.clone(),
            args: request.args.clone(),
            stdin: stdin.clone(),
        });
        let failing = match request.command {
            Command::Add => &self.failing_add,
            _ => &self.failing_del,
        };
        if failing.contains(&request.plugin_type) {
            return Err(ExecError::Plugin {
                plugin: request.plugin_type.clone(),
                error: CniError {
                    cni_version: stdin["cniVersion"].as_str().unwrap_or_default().to_owned(),
                    code: 999,
                    msg: format!("failed to configure {}", request.ifname),
                    details: "netlink: device or resource busy".to_owned(),
                },
            });
        }
        if request.command != Command::Add {
            return Ok(Vec::new());
        }
        let version: CniVersion = stdin["cniVersion"].as_str().unwrap().parse().unwrap();
        let result = CniResult::from_value(&plugin_result(&request, &stdin), CniVersion::V1_1_0)
            .expect("fake result parses");
        Ok(result.to_json(version).into_bytes())
    }
}

/// An empty pod network namespace: no link exists before ADD.
#[derive(Default)]
struct FakeNetns;

#[async_trait]
impl NetnsOps for FakeNetns {
    async fn link_addresses(
        &self,
        _netns: &str,
        _ifname: &str,
    ) -> Result<Option<Vec<std::net::IpAddr>>, NetnsError> {
        Ok(None)
    }
    async fn default_routes(&self, _netns: &str) -> Result<Vec<DefaultRoute>, NetnsError> {
        Ok(Vec::new())
    }
    async fn replace_default_route(
        &self,
        _netns: &str,
        _ifname: &str,
        _gateway: std::net::IpAddr,
    ) -> Result<(), NetnsError> {
        Ok(())
    }
    async fn remove_default_routes(&self, _netns: &str, _ifname: &str) -> Result<(), NetnsError> {
        Ok(())
    }
    async fn link_exists(&self, _netns: &str, _ifname: &str) -> Result<bool, NetnsError> {
        Ok(false)
    }
}

/// CNI config files on the node.
struct World {
    api: FakeApi,
    exec: FakeExec,
    state: MemoryStateStore,
    netns: FakeNetns,
    files: MemoryConfigFiles,
}

fn nad(namespace: &str, name: &str, config: &str) -> NetworkAttachmentDefinition {
    NetworkAttachmentDefinition {
        namespace: namespace.into(),
        name: name.into(),
        config: config.into(),
        resource_name: None,
        annotations: BTreeMap::new(),
    }
}

impl World {
    fn new(networks: &str) -> Self {
        let macvlan = r#"{
  "cniVersion": "1.0.0",
  "name": "macvlan-conf",
  "plugins": [
    {"type": "macvlan", "master": "eth1", "mode": "bridge",
     "capabilities": {"ips": true}, "ipam": {"type": "static"}},
    {"type": "tuning", "capabilities": {"mac": true}},
    {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
  ]
}"#;
        let sidecar = r#"{"cniVersion":"0.4.0","type":"ptp","mtu":1400,"ipam":{"type":"host-local","subnet":"10.250.0.0/24","routes":[{"dst":"10.250.0.0/16"}]}}"#;
        let fromdir = r#"{"cniVersion":"0.2.0","name":"fromdir","type":"ipvlan","master":"eth2","ipam":{"type":"host-local","subnet":"192.168.50.0/24"}}"#;
        Self {
            api: FakeApi {
                annotations: BTreeMap::from([(
                    NETWORKS_ANNOTATION.to_owned(),
                    networks.to_owned(),
                )]),
                nads: vec![
                    nad("default", "macvlan-conf", macvlan),
                    nad("kube-system", "sidecar", sidecar),
                    nad("infra", "fromdir", ""),
                ],
                ..FakeApi::default()
            },
            exec: FakeExec::default(),
            state: MemoryStateStore::default(),
            netns: FakeNetns,
            files: MemoryConfigFiles {
                files: BTreeMap::from([
                    (
                        PathBuf::from("/etc/cni/multus/net.d/10-other.conf"),
                        br#"{"cniVersion":"1.0.0","name":"other","type":"bridge"}"#.to_vec(),
                    ),
                    (
                        PathBuf::from("/etc/cni/multus/net.d/20-fromdir.conf"),
                        fromdir.as_bytes().to_vec(),
                    ),
                ]),
            },
        }
    }

    fn seams(&self) -> Seams<'_> {
        Seams {
            api: &self.api,
            exec: &self.exec,
            state: &self.state,
            netns: &self.netns,
            files: &self.files,
            devices: &multus_core::seams::NoDevices,
        }
    }
}

/// The multus configuration at `version`, as a thin `00-multus.conf` would have it.
fn conf(version: CniVersion) -> MultusConf {
    let doc = json!({
        "cniVersion": version.as_str(),
        "name": "multus-cni-network",
        "type": "multus",
        "kubeconfig": "/etc/cni/net.d/multus.d/multus.kubeconfig",
        "defaultNetworks": ["sidecar"],
        "delegates": [{
            "cniVersion": "1.0.0",
            "name": "k8s-pod-network",
            "plugins": [
                {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true,
                 "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.244.1.0/24"}]],
                          "routes": [{"dst": "0.0.0.0/0"}]}},
                {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true},
                {"type": "bandwidth", "capabilities": {"bandwidth": true}}
            ]
        }],
        "runtimeConfig": {
            "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
            "bandwidth": {"ingressRate": 1000000, "ingressBurst": 100000}
        }
    });
    MultusConf::parse(doc.to_string().as_bytes()).unwrap()
}

fn request(command: Command) -> CniRequest {
    let env: BTreeMap<String, String> = [
        ("CNI_COMMAND", command.as_str()),
        ("CNI_CONTAINERID", CONTAINER_ID),
        ("CNI_NETNS", NETNS),
        ("CNI_IFNAME", "eth0"),
        ("CNI_ARGS", CNI_ARGS),
        ("CNI_PATH", "/opt/cni/bin"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    CniRequest::from_env(&env, Vec::new()).unwrap()
}

fn add(world: &World, conf: &MultusConf) -> Result<Vec<u8>, MultusError> {
    let request = request(Command::Add);
    pollster::block_on(Engine::new(conf, &request, world.seams()).add())
}

fn plan(world: &World, conf: &MultusConf) -> Plan {
    let request = request(Command::Add);
    let annotations = world.api.annotations.clone();
    pollster::block_on(
        Planner::new(conf, &request, &world.api, &world.files).plan(Some(&annotations)),
    )
    .unwrap()
}

/// The calls as `{command, plugin, ifname, args, stdin}` documents, in call order.
fn recorded(calls: &[Call]) -> Value {
    calls
        .iter()
        .map(|call| {
            json!({
                "command": call.command.as_str(),
                "plugin": call.plugin,
                "ifname": call.ifname,
                "args": call.args,
                "stdin": call.stdin,
            })
        })
        .collect()
}

fn summary(calls: &[Call]) -> Vec<String> {
    calls
        .iter()
        .map(|c| format!("{} {} {}", c.command, c.plugin, c.ifname))
        .collect()
}

/// A plan with each exact config text shown next to its parsed form, for review.
fn plan_for_review(plan: &Plan) -> Value {
    let mut value = serde_json::to_value(plan).unwrap();
    for delegate in value["delegates"].as_array_mut().unwrap() {
        let raw = delegate["config"].as_str().unwrap().to_owned();
        let object = delegate.as_object_mut().unwrap();
        object.insert(
            "config (parsed)".into(),
            serde_json::from_str(&raw).unwrap(),
        );
    }
    value
}

// ---------------------------------------------------------------------------------------
// (1) The plan
// ---------------------------------------------------------------------------------------

#[test]
fn plan_of_a_realistic_pod_with_a_json_annotation() {
    let world = World::new(NETWORKS_JSON);
    let plan = plan(&world, &conf(CniVersion::V1_0_0));
    insta::assert_json_snapshot!("plan_json_annotation", plan_for_review(&plan));
}

#[test]
fn plan_of_a_pod_with_a_text_annotation() {
    // The same network twice (allowed), once with an interface name, and a NAD in
    // another namespace.
    let world = World::new("macvlan-conf@mv1, infra/fromdir , macvlan-conf");
    let plan = plan(&world, &conf(CniVersion::V0_3_1));
    insta::assert_json_snapshot!("plan_text_annotation", plan_for_review(&plan));
}

// ---------------------------------------------------------------------------------------
// (2) What each delegate plugin receives on ADD
// ---------------------------------------------------------------------------------------

#[test]
fn add_sends_these_exact_stdin_documents_args_and_ifnames() {
    let world = World::new(NETWORKS_JSON);
    add(&world, &conf(CniVersion::V1_0_0)).unwrap();
    let calls = world.exec.calls();
    assert_eq!(
        summary(&calls),
        [
            "ADD bridge eth0",
            "ADD portmap eth0",
            "ADD bandwidth eth0",
            "ADD ptp net1",
            "ADD macvlan mv0",
            "ADD tuning mv0",
            "ADD portmap mv0",
            "ADD ipvlan net3",
        ]
    );
    // Every plugin of a list gets the previous plugin's output as prevResult.
    for pair in calls.windows(2) {
        if pair[0].ifname == pair[1].ifname {
            assert!(
                pair[1].stdin.get("prevResult").is_some(),
                "{}",
                pair[1].plugin
            );
        }
    }
    insta::assert_json_snapshot!("add_delegate_calls", recorded(&calls));
}

// ---------------------------------------------------------------------------------------
// (3) The result returned to the runtime
// ---------------------------------------------------------------------------------------

#[test]
fn add_returns_the_cluster_network_result_at_multus_cni_version() {
    for version in [
        CniVersion::V0_2_0,
        CniVersion::V0_3_1,
        CniVersion::V0_4_0,
        CniVersion::V1_0_0,
    ] {
        let world = World::new(NETWORKS_JSON);
        let out = add(&world, &conf(version)).unwrap();
        let result: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(result["cniVersion"], version.as_str());
        let name = format!("add_result_{}", version.as_str().replace('.', "_"));
        insta::assert_json_snapshot!(name, result);
    }
}

// ---------------------------------------------------------------------------------------
// (4) network-status
// ---------------------------------------------------------------------------------------

#[test]
fn add_records_and_publishes_the_network_status() {
    let world = World::new(NETWORKS_JSON);
    add(&world, &conf(CniVersion::V1_0_0)).unwrap();
    let state = world.state.record(CONTAINER_ID).unwrap();
    let published = world.api.statuses.lock().unwrap().clone();
    assert_eq!(published, vec![state.network_status.clone()]);
    insta::assert_json_snapshot!("network_status_entries", state.network_status);
    insta::assert_snapshot!(
        "network_status_annotation",
        annotation_value(&state.network_status)
    );
    let events: Vec<String> = world
        .api
        .events
        .lock()
        .unwrap()
        .iter()
        .map(|e| format!("{} {}: {}", e.kind, e.reason, e.message))
        .collect();
    insta::assert_json_snapshot!("add_events", events);
}

// ---------------------------------------------------------------------------------------
// (5) A failed ADD
// ---------------------------------------------------------------------------------------

/// ADD fails at delegate `k` = 3 of `n` = 4 (macvlan-conf: its second plugin, tuning);
/// everything attempted is deleted in reverse, the failed delegate included.
#[test]
fn failure_at_delegate_3_of_4_is_rolled_back_and_reported() {
    let mut world = World::new(NETWORKS_JSON);
    world.exec.failing_add.insert("tuning".into());
    let err = add(&world, &conf(CniVersion::V1_0_0)).unwrap_err();
    let calls = world.exec.calls();
    assert!(world.state.record(CONTAINER_ID).is_none());
    insta::assert_json_snapshot!(
        "rollback_3_of_4",
        json!({
            "calls": summary(&calls),
            "error": err.to_cni_error("1.0.0").to_value(),
        })
    );
    // The DELs of the rollback get the cached results as prevResult (CNI >= 0.4.0) and
    // CNI_ARGS without the ADD-only IP/MAC keys.
    let dels: Vec<&Call> = calls.iter().filter(|c| c.command == Command::Del).collect();
    insta::assert_json_snapshot!(
        "rollback_3_of_4_del_calls",
        recorded(&dels.into_iter().cloned().collect::<Vec<_>>())
    );
}

/// The same failure when the rollback of the cluster network fails too: the record
/// stays for the runtime's DEL and the error says what is still attached.
#[test]
fn failure_with_a_failed_rollback_says_what_is_left() {
    let mut world = World::new(NETWORKS_JSON);
    world.exec.failing_add.insert("tuning".into());
    world.exec.failing_del.insert("bandwidth".into());
    let err = add(&world, &conf(CniVersion::V1_0_0)).unwrap_err();
    assert!(world.state.record(CONTAINER_ID).is_some());
    insta::assert_json_snapshot!(
        "rollback_3_of_4_failed_del",
        json!({
            "calls": summary(&world.exec.calls()),
            "error": err.to_cni_error("1.0.0").to_value(),
        })
    );
}
