//! Engine tests over in-memory fakes of every seam.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::*;
use crate::cni::CniError;
use crate::nad::NetworkAttachmentDefinition;
use crate::request::{Command, PodRef};
use crate::seams::{ApiError, ExecError, ExecRequest, NetnsError, PodInfo};
use crate::testing::{MemoryConfigFiles, MemoryStateStore};

#[derive(Default)]
struct FakeApi {
    nads: Vec<NetworkAttachmentDefinition>,
}

#[async_trait]
impl ClusterApi for FakeApi {
    async fn pod(&self, _pod: &PodRef) -> Result<Option<PodInfo>, ApiError> {
        Ok(None)
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
    async fn set_network_status(&self, _: &PodRef, _: &[NetworkStatus]) -> Result<(), ApiError> {
        Ok(())
    }
    async fn emit_event(&self, _: &PodRef, _: &PodEvent) -> Result<(), ApiError> {
        Ok(())
    }
}

/// Records every call; plugins listed in `failing` fail their ADD.
#[derive(Default)]
struct FakeExec {
    calls: Mutex<Vec<(Command, String, String, Value)>>,
    containers: Mutex<Vec<String>>,
    failing_add: BTreeSet<String>,
    failing_del: BTreeSet<String>,
    failing_status: BTreeSet<String>,
    missing: BTreeSet<String>,
}

impl FakeExec {
    fn calls(&self) -> Vec<(Command, String, String, Value)> {
        self.calls.lock().unwrap().clone()
    }
    fn summary(&self) -> Vec<String> {
        self.calls()
            .iter()
            .map(|(c, plugin, ifname, _)| format!("{c} {plugin} {ifname}"))
            .collect()
    }
}

#[async_trait]
impl DelegateExec for FakeExec {
    async fn exec(&self, request: ExecRequest) -> Result<Vec<u8>, ExecError> {
        let stdin: Value = serde_json::from_slice(&request.stdin).unwrap();
        self.containers
            .lock()
            .unwrap()
            .push(request.container_id.clone());
        self.calls.lock().unwrap().push((
            request.command,
            request.plugin_type.clone(),
            request.ifname.clone(),
            stdin.clone(),
        ));
        if self.missing.contains(&request.plugin_type) {
            return Err(ExecError::NotFound {
                plugin: request.plugin_type,
                searched: request.search_path,
            });
        }
        let failing = match request.command {
            Command::Add => &self.failing_add,
            Command::Status => &self.failing_status,
            _ => &self.failing_del,
        };
        if failing.contains(&request.plugin_type) {
            return Err(ExecError::Plugin {
                plugin: request.plugin_type,
                error: CniError {
                    cni_version: String::new(),
                    code: 999,
                    msg: "operation not supported".into(),
                    details: String::new(),
                },
            });
        }
        if request.command != Command::Add {
            return Ok(Vec::new());
        }
        let version = stdin["cniVersion"].as_str().unwrap_or("1.0.0");
        let result = json!({
            "cniVersion": version,
            "interfaces": [{"name": request.ifname, "mac": "02:00:00:00:00:01", "sandbox": request.netns}],
            "ips": [{"address": "10.0.0.2/24", "gateway": "10.0.0.1", "interface": 0}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.0.0.1"}],
            "dns": {}
        });
        Ok(result.to_string().into_bytes())
    }
}

#[derive(Default)]
struct FakeNetns {
    existing: BTreeSet<String>,
    /// Interfaces whose address was removed behind multus' back.
    stripped: BTreeSet<String>,
    /// Route operations performed, in order.
    route_ops: Mutex<Vec<String>>,
    fail_routes: bool,
}

#[async_trait]
impl NetnsOps for FakeNetns {
    async fn link_exists(&self, netns: &str, ifname: &str) -> Result<bool, NetnsError> {
        if netns == "/gone" {
            return Err(NetnsError::NoSuchNetns {
                path: netns.into(),
                reason: "No such file or directory".into(),
            });
        }
        Ok(self.existing.contains(ifname))
    }
    async fn link_addresses(
        &self,
        netns: &str,
        ifname: &str,
    ) -> Result<Option<Vec<std::net::IpAddr>>, NetnsError> {
        if !self.link_exists(netns, ifname).await? {
            return Ok(None);
        }
        if self.stripped.contains(ifname) {
            return Ok(Some(vec![]));
        }
        Ok(Some(vec!["10.0.0.2".parse().unwrap()]))
    }
    async fn default_routes(&self, _: &str) -> Result<Vec<crate::seams::DefaultRoute>, NetnsError> {
        Ok(vec![])
    }
    async fn replace_default_route(
        &self,
        netns: &str,
        ifname: &str,
        gateway: std::net::IpAddr,
    ) -> Result<(), NetnsError> {
        self.route_ops
            .lock()
            .unwrap()
            .push(format!("replace {ifname} via {gateway}"));
        if self.fail_routes {
            return Err(NetnsError::Other {
                path: netns.into(),
                reason: "Network is unreachable".into(),
            });
        }
        Ok(())
    }
    async fn remove_default_routes(&self, _: &str, ifname: &str) -> Result<(), NetnsError> {
        self.route_ops
            .lock()
            .unwrap()
            .push(format!("remove {ifname}"));
        Ok(())
    }
}

struct World {
    api: FakeApi,
    exec: FakeExec,
    state: MemoryStateStore,
    netns: FakeNetns,
    files: MemoryConfigFiles,
    devices: crate::testing::MemoryDevices,
}

impl World {
    fn new() -> Self {
        let nad = |name: &str, config: &str| NetworkAttachmentDefinition {
            namespace: "default".into(),
            name: name.into(),
            config: config.into(),
            resource_name: None,
            annotations: BTreeMap::new(),
        };
        Self {
            api: FakeApi {
                nads: vec![
                    nad("blue", r#"{"cniVersion":"1.0.0","type":"bridge"}"#),
                    nad(
                        "chain",
                        r#"{"cniVersion":"0.4.0","name":"chain","plugins":[{"type":"macvlan"},{"type":"tuning","capabilities":{"mac":true}}]}"#,
                    ),
                    nad("broken", r#"{"cniVersion":"1.0.0","type":"ipvlan"}"#),
                    nad("fromdir", ""),
                ],
            },
            exec: FakeExec {
                failing_add: BTreeSet::from(["ipvlan".to_owned()]),
                ..FakeExec::default()
            },
            state: MemoryStateStore::default(),
            netns: FakeNetns::default(),
            files: MemoryConfigFiles {
                files: BTreeMap::from([(
                    PathBuf::from("/etc/cni/multus/net.d/10-fromdir.conf"),
                    br#"{"cniVersion":"1.0.0","name":"fromdir","type":"ptp"}"#.to_vec(),
                )]),
            },
            devices: crate::testing::MemoryDevices::default(),
        }
    }

    fn seams(&self) -> Seams<'_> {
        Seams {
            api: &self.api,
            exec: &self.exec,
            state: &self.state,
            netns: &self.netns,
            files: &self.files,
            devices: &self.devices,
        }
    }
}

fn conf(networks: &str) -> MultusConf {
    let doc = json!({
        "cniVersion": "0.3.1",
        "name": "multus",
        "type": "multus",
        "delegates": [{"cniVersion": "1.0.0", "name": "cluster", "type": "ptp"}],
        "runtimeConfig": {
            "io.kubernetes.cri.pod-annotations": {"k8s.v1.cni.cncf.io/networks": networks},
            "portMappings": [{"hostPort": 8080, "containerPort": 80}],
            "mac": "runtime-mac"
        }
    });
    MultusConf::parse(doc.to_string().as_bytes()).unwrap()
}

/// [`conf`] at 0.4.0, which allows CHECK.
fn check_conf(networks: &str) -> MultusConf {
    MultusConf {
        cni_version: CniVersion::V0_4_0,
        ..conf(networks)
    }
}

fn request(command: Command) -> CniRequest {
    let env: BTreeMap<String, String> = [
        ("CNI_COMMAND", command.as_str()),
        ("CNI_CONTAINERID", "c1"),
        ("CNI_NETNS", "/var/run/netns/p"),
        ("CNI_IFNAME", "eth0"),
        (
            "CNI_ARGS",
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_UID=u1;CUSTOM=a=b",
        ),
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

fn del(world: &World, conf: &MultusConf) -> Result<(), MultusError> {
    let request = request(Command::Del);
    pollster::block_on(Engine::new(conf, &request, world.seams()).del())
}

#[test]
fn add_runs_delegates_in_order_and_returns_cluster_result_in_multus_version() {
    let world = World::new();
    let out = add(&world, &conf("blue, chain@mv0")).unwrap();
    assert_eq!(
        world.exec.summary(),
        vec![
            "ADD ptp eth0",
            "ADD bridge net1",
            "ADD macvlan mv0",
            "ADD tuning mv0"
        ]
    );
    let result: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(result["cniVersion"], "0.3.1");
    assert_eq!(result["ips"][0]["version"], "4");
    let state = world.state.record("c1").unwrap();
    assert_eq!(state.phase, crate::state::Phase::Added);
    assert_eq!(state.network_status.len(), 3);
    assert_eq!(state.network_status[1].name, "default/blue");
    assert!(state.network_status[0].default);
}

#[test]
fn conflist_threads_prev_result_and_filters_runtime_config() {
    let world = World::new();
    add(&world, &conf("chain")).unwrap();
    let calls = world.exec.calls();
    let (_, _, _, macvlan) = &calls[1];
    let (_, _, _, tuning) = &calls[2];
    assert_eq!(macvlan["name"], "chain");
    assert_eq!(macvlan["cniVersion"], "0.4.0");
    assert!(macvlan.get("prevResult").is_none());
    assert!(macvlan.get("runtimeConfig").is_none());
    assert_eq!(tuning["prevResult"]["interfaces"][0]["name"], "net1");
    // tuning declares only `mac`, and gets the runtime's value (no annotation override).
    assert_eq!(tuning["runtimeConfig"], json!({"mac": "runtime-mac"}));
}

#[test]
fn annotation_attributes_override_runtime_config_for_secondaries_only() {
    let world = World::new();
    let networks = r#"[{"name":"chain","mac":"02:11:22:33:44:55","ips":["10.9.0.5/24"]}]"#;
    add(&world, &conf(networks)).unwrap();
    let calls = world.exec.calls();
    let (_, _, _, tuning) = &calls[2];
    assert_eq!(tuning["runtimeConfig"], json!({"mac": "02:11:22:33:44:55"}));
    let state = world.state.record("c1").unwrap();
    let chain = &state.attachments[1].delegate;
    assert_eq!(
        chain.add_cni_args,
        "IgnoreUnknown=true;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web;K8S_POD_INFRA_CONTAINER_ID=;K8S_POD_UID=u1;CUSTOM=a=b;MAC=02:11:22:33:44:55;IP=10.9.0.5/24"
    );
    assert!(!chain.cni_args.contains("MAC="));
}

#[test]
fn failure_at_k_rolls_back_everything_attempted_in_reverse() {
    let world = World::new();
    let err = add(&world, &conf("blue, broken, chain")).unwrap_err();
    assert_eq!(
        world.exec.summary(),
        vec![
            "ADD ptp eth0",
            "ADD bridge net1",
            "ADD ipvlan net2",
            "DEL ipvlan net2",
            "DEL bridge net1",
            "DEL ptp eth0"
        ]
    );
    assert_eq!(err.code(), 999);
    let cni = err.to_cni_error("0.3.1");
    assert!(cni.msg.contains("default/broken"), "{}", cni.msg);
    assert!(cni.msg.contains("web"), "{}", cni.msg);
    assert!(
        cni.details
            .contains("rolled back: cluster (eth0), default/blue (net1), default/broken (net2)"),
        "{}",
        cni.details
    );
    assert!(
        world.state.record("c1").is_none(),
        "state removed after full rollback"
    );
}

#[test]
fn a_failed_final_record_write_rolls_everything_back() {
    let world = World::new();
    // The first record (the plan) is written; the disk is full for the last one.
    world.state.fail_saves_from(2);
    let err = add(&world, &conf("blue")).unwrap_err();
    assert_eq!(
        world.exec.summary(),
        vec![
            "ADD ptp eth0",
            "ADD bridge net1",
            "DEL bridge net1",
            "DEL ptp eth0"
        ]
    );
    assert_eq!(err.code(), 104);
    assert!(world.state.record("c1").is_none());
}

#[test]
fn failed_rollback_keeps_state_for_the_runtime_del() {
    let mut world = World::new();
    world.exec.failing_del.insert("bridge".into());
    add(&world, &conf("blue, broken")).unwrap_err();
    assert!(world.state.record("c1").is_some());
}

#[test]
fn del_uses_the_persisted_plan_in_reverse_with_cached_results() {
    let world = World::new();
    add(&world, &conf("blue, chain")).unwrap();
    world.exec.calls.lock().unwrap().clear();
    // The annotation changed since ADD: DEL must still use what was attached.
    del(&world, &conf("")).unwrap();
    assert_eq!(
        world.exec.summary(),
        vec![
            "DEL tuning net2",
            "DEL macvlan net2",
            "DEL bridge net1",
            "DEL ptp eth0"
        ]
    );
    let calls = world.exec.calls();
    assert_eq!(calls[0].3["prevResult"]["interfaces"][0]["name"], "net2");
    assert!(world.state.record("c1").is_none());
}

#[test]
fn del_without_state_rebuilds_the_plan() {
    let world = World::new();
    del(&world, &conf("blue")).unwrap();
    assert_eq!(
        world.exec.summary(),
        vec!["DEL bridge net1", "DEL ptp eth0"]
    );
}

#[test]
fn del_without_state_and_unresolvable_networks_still_deletes_the_cluster_network() {
    let world = World::new();
    del(&world, &conf("vanished")).unwrap();
    assert_eq!(world.exec.summary(), vec!["DEL ptp eth0"]);
}

#[test]
fn del_tries_every_delegate_and_reports_all_failures() {
    let mut world = World::new();
    add(&world, &conf("blue, chain")).unwrap();
    world
        .exec
        .failing_del
        .extend(["bridge".to_owned(), "ptp".to_owned()]);
    world.exec.calls.lock().unwrap().clear();
    let err = del(&world, &conf("")).unwrap_err();
    assert_eq!(world.exec.summary().len(), 4);
    let msg = err.to_string();
    assert!(
        msg.contains("default/blue (net1)") && msg.contains("cluster (eth0)"),
        "{msg}"
    );
}

#[test]
fn duplicate_and_existing_interfaces_are_refused_before_anything_runs() {
    let world = World::new();
    let err = add(&world, &conf("blue@x1, chain@x1")).unwrap_err();
    assert!(
        matches!(&err, MultusError::Plan { source, .. } if matches!(**source, crate::plan::PlanError::DuplicateIfname { .. })),
        "{err}"
    );
    let mut world = World::new();
    world.netns.existing.insert("net1".into());
    let err = add(&world, &conf("blue")).unwrap_err();
    assert!(matches!(err, MultusError::InterfaceExists { .. }), "{err}");
    assert!(world.exec.calls().is_empty());
    assert!(world.state.record("c1").is_none());
}

#[test]
fn unknown_network_fails_with_its_name_and_runs_nothing() {
    let world = World::new();
    let err = add(&world, &conf("blue, nosuch")).unwrap_err();
    assert_eq!(err.code(), crate::cni::ErrorCode::NetworkNotFound.code());
    assert!(err.to_string().contains("default/nosuch"), "{err}");
    assert!(world.exec.calls().is_empty());
}

#[test]
fn nad_with_empty_spec_is_resolved_from_conf_dir() {
    let world = World::new();
    add(&world, &conf("fromdir")).unwrap();
    assert_eq!(world.exec.summary(), vec!["ADD ptp eth0", "ADD ptp net1"]);
}

#[test]
fn cluster_network_from_a_directory_skips_multus_own_config() {
    let mut world = World::new();
    world.files.files.insert(
        PathBuf::from("/etc/cni/net.d/00-multus.conf"),
        br#"{"cniVersion":"1.0.0","name":"multus","type":"multus"}"#.to_vec(),
    );
    world.files.files.insert(
        PathBuf::from("/etc/cni/net.d/10-flannel.conflist"),
        br#"{"cniVersion":"1.0.0","name":"cbr0","plugins":[{"type":"flannel"}]}"#.to_vec(),
    );
    let conf =
        MultusConf::parse(br#"{"cniVersion":"1.0.0","clusterNetwork":"/etc/cni/net.d"}"#).unwrap();
    add(&world, &conf).unwrap();
    assert_eq!(world.exec.summary(), vec!["ADD flannel eth0"]);
}

#[test]
fn check_reports_a_missing_interface_by_name() {
    let mut world = World::new();
    add(&world, &conf("blue")).unwrap();
    world.netns.existing.insert("eth0".into());
    let request = request(Command::Check);
    let err = pollster::block_on(Engine::new(&check_conf("blue"), &request, world.seams()).check())
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("net1") && msg.contains("default/blue"),
        "{msg}"
    );
}

#[test]
fn check_runs_delegate_check_with_cached_result() {
    let mut world = World::new();
    add(&world, &conf("chain")).unwrap();
    world
        .netns
        .existing
        .extend(["eth0".to_owned(), "net1".to_owned()]);
    world.exec.calls.lock().unwrap().clear();
    let request = request(Command::Check);
    pollster::block_on(Engine::new(&check_conf("chain"), &request, world.seams()).check()).unwrap();
    assert_eq!(
        world.exec.summary(),
        vec!["CHECK ptp eth0", "CHECK macvlan net1", "CHECK tuning net1"]
    );
    let calls = world.exec.calls();
    assert_eq!(calls[0].3["prevResult"]["interfaces"][0]["name"], "eth0");
}

#[test]
fn add_persists_the_plan_before_the_first_delegate_and_saves_twice() {
    let world = World::new();
    add(&world, &conf("blue")).unwrap();
    assert_eq!(world.state.saves(), 2);
}

#[test]
fn missing_netns_is_reported_before_anything_runs() {
    let world = World::new();
    let mut request = request(Command::Add);
    request.netns = "/gone".into();
    let conf = conf("blue");
    let err = pollster::block_on(Engine::new(&conf, &request, world.seams()).add()).unwrap_err();
    assert!(matches!(err, MultusError::Netns { .. }), "{err}");
    assert!(world.exec.calls().is_empty());
}

#[test]
fn ecmp_default_routes_are_refused() {
    let world = World::new();
    let networks = r#"[{"name":"blue","default-route":["10.0.0.1"]},{"name":"chain","default-route":["10.0.1.1"]}]"#;
    let err = add(&world, &conf(networks)).unwrap_err();
    assert!(err.to_string().contains("ECMP"), "{err}");
    assert!(world.exec.calls().is_empty());
}

#[test]
fn namespace_isolation_refuses_foreign_namespaces() {
    let world = World::new();
    let mut conf = conf("other/blue");
    conf.namespace_isolation = true;
    let err = add(&world, &conf).unwrap_err();
    assert!(err.to_string().contains("namespace isolation"), "{err}");
}

fn conf_1_1(extra: Value) -> MultusConf {
    let mut doc = json!({
        "cniVersion": "1.1.0",
        "delegates": [{"cniVersion": "1.1.0", "name": "cluster", "type": "ptp"}],
        "defaultNetworks": ["blue"],
        "multusNamespace": "default",
        "runtimeConfig": {"io.kubernetes.cri.pod-annotations": {"k8s.v1.cni.cncf.io/networks": "chain"}}
    });
    if let (Some(doc), Some(extra)) = (doc.as_object_mut(), extra.as_object()) {
        doc.extend(extra.clone());
    }
    MultusConf::parse(doc.to_string().as_bytes()).unwrap()
}

fn run(world: &World, conf: &MultusConf, command: Command) -> Result<Vec<u8>, MultusError> {
    let request = if command.is_per_container() {
        request(command)
    } else {
        let env = BTreeMap::from([("CNI_COMMAND".to_owned(), command.as_str().to_owned())]);
        CniRequest::from_env(&env, Vec::new()).unwrap()
    };
    let engine = Engine::new(conf, &request, world.seams());
    pollster::block_on(async {
        match command {
            Command::Add => engine.add().await,
            Command::Del => engine.del().await.map(|()| Vec::new()),
            Command::Status => engine.status().await.map(|()| Vec::new()),
            Command::Gc => engine.gc().await.map(|()| Vec::new()),
            _ => unreachable!(),
        }
    })
}

#[test]
fn status_and_gc_need_a_1_1_multus_configuration() {
    let world = World::new();
    let err = run(&world, &conf(""), Command::Status).unwrap_err();
    assert_eq!(err.code(), 1);
    assert!(err.to_string().contains("STATUS"), "{err}");
    let err = run(&world, &conf(""), Command::Gc).unwrap_err();
    assert_eq!(err.code(), 1);
}

#[test]
fn status_asks_configured_networks_that_speak_1_1() {
    let world = World::new();
    run(&world, &conf_1_1(json!({})), Command::Status).unwrap();
    // "blue" (a default network) is a 1.0.0 config: it cannot answer STATUS.
    assert_eq!(world.exec.summary(), vec!["STATUS ptp "]);
    let calls = world.exec.calls();
    assert_eq!(calls[0].3["cniVersion"], "1.1.0");
}

#[test]
fn status_failure_maps_to_code_50() {
    let mut world = World::new();
    world.exec.failing_status.insert("ptp".into());
    let err = run(&world, &conf_1_1(json!({})), Command::Status).unwrap_err();
    assert_eq!(err.code(), 50);
    assert!(err.to_string().contains("cluster"), "{err}");
}

#[test]
fn gc_tears_down_invalid_sandboxes_and_forwards_valid_attachments() {
    let world = World::new();
    let conf = conf_1_1(json!({}));
    run(&world, &conf, Command::Add).unwrap();
    // A second sandbox, still in use.
    let mut kept = world.state.record("c1").unwrap();
    kept.container_id = "c2".into();
    world.state.put(kept);
    world.exec.calls.lock().unwrap().clear();
    world.exec.containers.lock().unwrap().clear();

    let gc_conf =
        conf_1_1(json!({"cni.dev/valid-attachments": [{"containerID": "c2", "ifname": "eth0"}]}));
    run(&world, &gc_conf, Command::Gc).unwrap();

    let summary = world.exec.summary();
    assert_eq!(
        &summary[..5],
        &[
            "DEL tuning net2",
            "DEL macvlan net2",
            "DEL bridge net1",
            "DEL ptp eth0",
            "GC ptp "
        ],
        "{summary:?}"
    );
    assert!(
        world.exec.containers.lock().unwrap()[..4]
            .iter()
            .all(|c| c == "c1")
    );
    assert!(world.state.record("c1").is_none());
    assert!(world.state.record("c2").is_some());
    let calls = world.exec.calls();
    let gc = &calls[4].3;
    assert_eq!(
        gc["cni.dev/valid-attachments"],
        json!([{"containerID": "c2", "ifname": "eth0"}])
    );
    // Only 1.1.0 configs get GC: blue is 1.0.0 and chain is 0.4.0.
    assert_eq!(summary.len(), 5, "{summary:?}");
}

#[test]
fn gc_never_touches_records_of_another_multus_network() {
    let world = World::new();
    let conf = conf_1_1(json!({"name": "multus-a"}));
    run(&world, &conf, Command::Add).unwrap();
    let mut record = world.state.record("c1").unwrap();
    assert_eq!(record.multus_network.as_deref(), Some("multus-a"));
    record.multus_network = Some("multus-b".into());
    world.state.put(record);
    world.exec.calls.lock().unwrap().clear();

    run(&world, &conf, Command::Gc).unwrap();

    assert_eq!(world.exec.summary(), vec!["GC ptp "], "no DEL");
    assert!(world.state.record("c1").is_some());
    // Its attachment on the network both use stays valid.
    assert_eq!(
        world.exec.calls()[0].3["cni.dev/valid-attachments"],
        json!([{"containerID": "c1", "ifname": "eth0"}])
    );
}

#[test]
fn gc_collects_a_record_without_multus_network_as_its_own() {
    let world = World::new();
    let conf = conf_1_1(json!({"name": "multus-a"}));
    run(&world, &conf, Command::Add).unwrap();
    let mut record = world.state.record("c1").unwrap();
    record.multus_network = None;
    world.state.put(record);

    run(&world, &conf, Command::Gc).unwrap();

    assert!(world.state.record("c1").is_none());
}

#[test]
fn gc_keeps_a_valid_sandbox_without_record_on_every_network() {
    let world = World::new();
    let conf = conf_1_1(json!({}));
    run(&world, &conf, Command::Add).unwrap();
    world.exec.calls.lock().unwrap().clear();

    let gc_conf = conf_1_1(json!({"cni.dev/attachments": [
        {"containerID": "c1", "ifname": "eth0"},
        {"containerID": "lost", "ifname": "eth0"},
    ]}));
    run(&world, &gc_conf, Command::Gc).unwrap();

    // Only the cluster network is sent GC, with the unrecorded sandbox valid on it.
    assert_eq!(world.exec.summary(), vec!["GC ptp "]);
    let gc = &world.exec.calls()[0].3;
    let valid = json!([
        {"containerID": "c1", "ifname": "eth0"},
        {"containerID": "lost", "ifname": "eth0"},
    ]);
    assert_eq!(gc["cni.dev/valid-attachments"], valid);
    assert_eq!(gc["cni.dev/attachments"], valid);
}

#[test]
fn check_needs_a_0_4_0_multus_configuration() {
    let world = World::new();
    let conf = MultusConf::parse(
        br#"{"delegates": [{"cniVersion": "0.4.0", "name": "cluster", "type": "ptp"}]}"#,
    )
    .unwrap();
    let request = request(Command::Check);
    let engine = Engine::new(&conf, &request, world.seams());
    let err = pollster::block_on(engine.check()).unwrap_err();
    assert_eq!(err.code(), 1);
    assert!(
        err.to_string()
            .contains("config version does not allow CHECK"),
        "{err}"
    );
}

#[test]
fn a_nameless_delegate_is_refused_before_anything_runs() {
    let world = World::new();
    let conf = MultusConf::parse(
        br#"{"cniVersion": "1.0.0", "delegates": [
            {"cniVersion": "1.0.0", "name": "cluster", "type": "ptp"},
            {"cniVersion": "1.0.0", "name": "", "type": "bridge"}]}"#,
    )
    .unwrap();
    let err = add(&world, &conf).unwrap_err();
    assert_eq!(err.code(), 7);
    assert!(
        err.to_string().contains("missing network name: delegate 1"),
        "{err}"
    );
    assert!(world.exec.calls().is_empty());
    assert!(world.state.record("c1").is_none());
}

#[test]
fn check_looks_only_for_what_the_cached_result_lists() {
    let world = World::new();
    add(&world, &conf("blue")).unwrap();
    let state = world.state.record("c1").unwrap();
    let mut attachment = state.attachments[1].clone();
    let listed = |result: Value| {
        let mut attachment = attachment.clone();
        attachment.result = Some(result);
        check::lists_interface(&attachment)
    };
    assert!(listed(
        json!({"cniVersion": "1.0.0", "interfaces": [{"name": "net1", "sandbox": "/p"}]})
    ));
    assert!(listed(
        json!({"cniVersion": "0.2.0", "ip4": {"ip": "10.0.0.2/24"}})
    ));
    assert!(!listed(json!({"cniVersion": "1.0.0"})));
    assert!(!listed(
        json!({"cniVersion": "1.0.0", "dns": {"nameservers": ["10.0.0.10"]}})
    ));
    assert!(!listed(
        json!({"cniVersion": "1.0.0", "interfaces": [{"name": "net1"}], "ips": [{"interface": 0, "address": "10.0.0.2/24"}]})
    ));
    // No result at all (ADD did not finish): the interface is looked for.
    attachment.result = None;
    assert!(check::lists_interface(&attachment));
}

mod api;
mod chaining;
mod devices;
mod parallel;
mod upstream;

#[test]
fn default_route_request_replaces_other_default_routes_in_pod_and_results() {
    let world = World::new();
    let networks = r#"[{"name":"blue","default-route":["10.0.0.1"]}]"#;
    let out = add(&world, &conf(networks)).unwrap();
    assert_eq!(
        *world.netns.route_ops.lock().unwrap(),
        vec!["replace net1 via 10.0.0.1"]
    );
    let state = world.state.record("c1").unwrap();
    let cluster = state.attachments[0].result.as_ref().unwrap();
    let blue = state.attachments[1].result.as_ref().unwrap();
    assert!(!default_route::has_default_route(cluster), "{cluster}");
    assert!(default_route::has_default_route(blue), "{blue}");
    // The runtime sees the cluster network without its default route, and the
    // network-status gateway moved to blue.
    let result: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(result["routes"], Value::Null, "{result}");
    assert!(state.network_status[0].gateway.is_empty());
    assert_eq!(state.network_status[1].gateway, vec!["10.0.0.1"]);
}

#[test]
fn empty_default_route_removes_only_that_attachments_default() {
    let world = World::new();
    let networks = r#"[{"name":"blue","default-route":[]}]"#;
    add(&world, &conf(networks)).unwrap();
    assert_eq!(*world.netns.route_ops.lock().unwrap(), vec!["remove net1"]);
    let state = world.state.record("c1").unwrap();
    assert!(default_route::has_default_route(
        state.attachments[0].result.as_ref().unwrap()
    ));
    assert!(!default_route::has_default_route(
        state.attachments[1].result.as_ref().unwrap()
    ));
}

#[test]
fn failed_default_route_rolls_everything_back() {
    let mut world = World::new();
    world.netns.fail_routes = true;
    let networks = r#"[{"name":"blue","default-route":["10.0.0.1"]}]"#;
    let err = add(&world, &conf(networks)).unwrap_err();
    assert!(err.to_string().contains("default route"), "{err}");
    assert_eq!(
        world.exec.summary(),
        vec![
            "ADD ptp eth0",
            "ADD bridge net1",
            "DEL bridge net1",
            "DEL ptp eth0"
        ]
    );
    assert!(world.state.record("c1").is_none());
}

#[test]
fn check_reports_a_missing_address() {
    let mut world = World::new();
    add(&world, &conf("blue")).unwrap();
    world
        .netns
        .existing
        .extend(["eth0".to_owned(), "net1".to_owned()]);
    world.netns.stripped.insert("net1".into());
    let request = request(Command::Check);
    let err = pollster::block_on(Engine::new(&check_conf("blue"), &request, world.seams()).check())
        .unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("10.0.0.2") && msg.contains("net1"), "{msg}");
}

#[test]
fn del_without_record_tolerates_a_plugin_that_is_not_installed() {
    let mut world = World::new();
    world.exec.missing.insert("bridge".into());
    del(&world, &conf("blue")).unwrap();
    assert_eq!(
        world.exec.summary(),
        vec!["DEL bridge net1", "DEL ptp eth0"]
    );
}

#[test]
fn del_with_a_record_reports_a_plugin_that_disappeared() {
    let mut world = World::new();
    add(&world, &conf("blue")).unwrap();
    world.exec.missing.insert("bridge".into());
    let err = del(&world, &conf("blue")).unwrap_err();
    assert!(err.to_string().contains("bridge"), "{err}");
}

/// The multus configuration of [`conf`] as a runtime passes it once the pod is gone: no
/// pod annotations in runtimeConfig; `retryDeleteOnError` as given.
fn conf_without_annotations(retry_delete_on_error: bool) -> MultusConf {
    let doc = json!({
        "cniVersion": "0.3.1",
        "name": "multus",
        "type": "multus",
        "retryDeleteOnError": retry_delete_on_error,
        "delegates": [{"cniVersion": "1.0.0", "name": "cluster", "type": "ptp"}],
    });
    MultusConf::parse(doc.to_string().as_bytes()).unwrap()
}

#[test]
fn failed_del_keeps_the_record_with_or_without_retry_delete_on_error() {
    for retry in [false, true] {
        let mut world = World::new();
        add(&world, &conf("blue")).unwrap();
        world.exec.failing_del.insert("bridge".into());
        let err = del(&world, &conf_without_annotations(retry)).unwrap_err();
        let kept = world.state.record("c1").expect("record kept");
        assert_eq!(kept.attachments.len(), 2, "retryDeleteOnError={retry}");
        let doc = err.to_cni_error("1.0.0");
        assert_eq!(doc.code, 999);
        assert!(doc.msg.contains("default/blue (net1)"), "{doc:?}");
        assert_eq!(
            doc.details,
            "deleted: cluster (eth0); could not be deleted: default/blue (net1): plugin \"bridge\" failed: operation not supported; \
             the sandbox record is kept: a retried DEL deletes every attachment again from it \
             (a runtime that takes DEL errors containing \"not found\" as success never retries: \
             once the sandbox is gone, `multus-ctl state prune --all` on the node deletes what is left and the record)",
            "retryDeleteOnError={retry}"
        );

        // The runtime's retry, once the plugin recovers, runs from the record: the
        // annotation network is reached although the pod's annotations are gone.
        world.exec.failing_del.clear();
        world.exec.calls.lock().unwrap().clear();
        del(&world, &conf_without_annotations(retry)).unwrap();
        assert_eq!(
            world.exec.summary(),
            vec!["DEL bridge net1", "DEL ptp eth0"]
        );
        assert!(world.state.record("c1").is_none());
    }
}

#[test]
fn failed_del_without_a_record_records_the_rebuilt_plan_for_the_retry() {
    let mut world = World::new();
    world.exec.failing_del.insert("bridge".into());
    // No record; the annotations are still known: the plan is rebuilt with them.
    let err = del(&world, &conf("blue")).unwrap_err();
    assert!(
        matches!(
            err,
            MultusError::Del {
                record_kept: true,
                ..
            }
        ),
        "{err}"
    );
    let kept = world.state.record("c1").expect("rebuilt plan recorded");
    assert_eq!(kept.phase, Phase::Adding);
    let networks: Vec<&str> = kept
        .attachments
        .iter()
        .map(|a| a.delegate.network.as_str())
        .collect();
    assert_eq!(networks, ["cluster", "default/blue"]);

    // The retry comes when the annotations are gone: the record still names net1.
    world.exec.failing_del.clear();
    world.exec.calls.lock().unwrap().clear();
    del(&world, &conf_without_annotations(false)).unwrap();
    assert_eq!(
        world.exec.summary(),
        vec!["DEL bridge net1", "DEL ptp eth0"]
    );
    assert!(world.state.record("c1").is_none());
}

#[test]
fn del_without_record_or_annotations_deletes_the_configured_networks() {
    let world = World::new();
    del(&world, &conf_without_annotations(false)).unwrap();
    assert_eq!(world.exec.summary(), vec!["DEL ptp eth0"]);
    assert!(world.state.record("c1").is_none());
}

#[test]
fn annotation_networks_are_named_for_the_del_warning() {
    let world = World::new();
    let conf = conf("blue, other/red@x9");
    let request = request(Command::Del);
    let engine = Engine::new(&conf, &request, world.seams());
    let mut annotations = conf.runtime_pod_annotations().unwrap();
    assert_eq!(
        engine.annotation_networks_label(&annotations),
        "default/blue, other/red"
    );
    annotations.insert(DEFAULT_NETWORK_ANNOTATION.into(), "kube-system/alt".into());
    annotations.insert(NETWORKS_ANNOTATION.into(), "bad name!".into());
    assert_eq!(
        engine.annotation_networks_label(&annotations),
        "kube-system/alt, k8s.v1.cni.cncf.io/networks=bad name!"
    );
}
