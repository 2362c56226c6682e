//! Engine tests of subdirectory chaining (a `.conflist` cluster network followed by the
//! plugins of `<dir>/<list name>/`) and of the auxiliary CNI chain.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{World, add, del, request};
use crate::cni::ErrorCode;
use crate::config::MultusConf;
use crate::engine::{Engine, MultusError, Seams};
use crate::nad::{NetworkAttachmentDefinition, NetworkStatus};
use crate::plan::PlanError;
use crate::request::{Command, PodRef};
use crate::seams::{ApiError, ClusterApi, PodEvent, PodInfo};

const NET_D: &str = "/etc/cni/net.d";
const CLUSTER_LIST: &str = "/etc/cni/net.d/10-cluster.conflist";
const TUNING: &str = r#"{"cniVersion":"1.0.0","name":"sysctl","type":"tuning","sysctl":{"net.ipv4.conf.eth0.arp_filter":"1"}}"#;

/// The world with `10-cluster.conflist` (a ptp list named `cluster`) and `extra` files.
fn world(list: &str, extra: &[(&str, &str)]) -> World {
    let mut world = World::new();
    world
        .files
        .files
        .insert(PathBuf::from(CLUSTER_LIST), list.as_bytes().to_vec());
    for (path, content) in extra {
        world
            .files
            .files
            .insert(PathBuf::from(path), content.as_bytes().to_vec());
    }
    world
}

fn cluster_list(extra: Value) -> String {
    let mut list = json!({
        "cniVersion": "1.0.0",
        "name": "cluster",
        "plugins": [{"type": "ptp", "ipMasq": true}]
    });
    if let (Some(list), Some(extra)) = (list.as_object_mut(), extra.as_object()) {
        list.extend(extra.clone());
    }
    list.to_string()
}

/// Multus with `clusterNetwork` = the conflist file, the pod asking for `networks`.
fn conf(networks: &str, extra: Value) -> MultusConf {
    let mut doc = json!({
        "cniVersion": "1.0.0",
        "name": "multus",
        "type": "multus",
        "clusterNetwork": CLUSTER_LIST,
        "runtimeConfig": {
            "io.kubernetes.cri.pod-annotations": {"k8s.v1.cni.cncf.io/networks": networks}
        }
    });
    if let (Some(doc), Some(extra)) = (doc.as_object_mut(), extra.as_object()) {
        doc.extend(extra.clone());
    }
    MultusConf::parse(doc.to_string().as_bytes()).unwrap()
}

fn plan_error(err: &MultusError) -> &PlanError {
    match err {
        MultusError::Plan { source, .. } => source,
        other => panic!("not a plan error: {other}"),
    }
}

#[test]
fn subdirectory_plugins_run_after_the_inlined_ones_on_the_cluster_interface() {
    let world = world(
        &cluster_list(json!({})),
        &[
            ("/etc/cni/net.d/cluster/10-sysctl.conf", TUNING),
            ("/etc/cni/net.d/cluster/README", "not a config"),
        ],
    );
    let out = add(&world, &conf("blue", json!({}))).unwrap();
    assert_eq!(
        world.exec.summary(),
        vec!["ADD ptp eth0", "ADD tuning eth0", "ADD bridge net1"]
    );
    let calls = world.exec.calls();
    let tuning = &calls[1].3;
    // A list plugin: the list's name and version, prevResult from ptp.
    assert_eq!(tuning["name"], "cluster");
    assert_eq!(tuning["cniVersion"], "1.0.0");
    assert_eq!(
        tuning["sysctl"],
        json!({"net.ipv4.conf.eth0.arp_filter": "1"})
    );
    assert_eq!(tuning["prevResult"]["interfaces"][0]["name"], "eth0");
    // The cluster result is the chain's last result.
    let result: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(result["interfaces"][0]["name"], "eth0");
    // The record holds the whole chain, so DEL runs it without reading the files again.
    let state = world.state.record("c1").unwrap();
    let cluster = &state.attachments[0].delegate;
    assert_eq!(cluster.network, "cluster");
    assert_eq!(cluster.config.plugin_types(), vec!["ptp", "tuning"]);
    assert_eq!(
        cluster.config.raw(),
        r#"{"cniVersion":"1.0.0","name":"cluster","plugins":[{"type":"ptp","ipMasq":true},{"cniVersion":"1.0.0","name":"sysctl","type":"tuning","sysctl":{"net.ipv4.conf.eth0.arp_filter":"1"}}]}"#
    );
    world.exec.calls.lock().unwrap().clear();
    let mut world = world;
    world.files.files.clear();
    del(&world, &conf("", json!({}))).unwrap();
    assert_eq!(
        world.exec.summary(),
        vec!["DEL bridge net1", "DEL tuning eth0", "DEL ptp eth0"]
    );
    assert!(world.state.record("c1").is_none());
}

#[test]
fn load_only_inlined_plugins_leaves_the_subdirectory_alone() {
    let list = cluster_list(json!({"loadOnlyInlinedPlugins": true}));
    let world = world(&list, &[("/etc/cni/net.d/cluster/10-sysctl.conf", TUNING)]);
    add(&world, &conf("", json!({}))).unwrap();
    assert_eq!(world.exec.summary(), vec!["ADD ptp eth0"]);
    let state = world.state.record("c1").unwrap();
    assert_eq!(state.attachments[0].delegate.config.raw(), list);
}

#[test]
fn default_networks_given_as_conflist_files_are_chained_too() {
    let side = r#"{"cniVersion":"1.0.0","name":"side","plugins":[{"type":"bridge"}]}"#;
    let world = world(
        &cluster_list(json!({})),
        &[
            ("/opt/nets/side.conflist", side),
            ("/opt/nets/side/10-sysctl.conf", TUNING),
        ],
    );
    let conf = conf("", json!({"defaultNetworks": ["/opt/nets/side.conflist"]}));
    add(&world, &conf).unwrap();
    assert_eq!(
        world.exec.summary(),
        vec!["ADD ptp eth0", "ADD bridge net1", "ADD tuning net1"]
    );
}

#[test]
fn an_invalid_list_name_fails_add_before_anything_runs() {
    let list = json!({"cniVersion":"1.0.0","name":"../cluster","plugins":[{"type":"ptp"}]});
    let world = world(&list.to_string(), &[]);
    let err = add(&world, &conf("", json!({}))).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidNetworkConfig.code());
    assert!(matches!(plan_error(&err), PlanError::Chain { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("invalid network config name: ../cluster") && msg.contains(CLUSTER_LIST),
        "{msg}"
    );
    assert!(world.exec.calls().is_empty());
    assert!(world.state.record("c1").is_none());
}

#[test]
fn a_chained_plugin_without_type_fails_add_naming_the_file() {
    let world = world(
        &cluster_list(json!({})),
        &[("/etc/cni/net.d/cluster/10-bad.conf", r#"{"name":"x"}"#)],
    );
    let err = add(&world, &conf("", json!({}))).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidNetworkConfig.code());
    let msg = err.to_string();
    assert!(
        msg.contains("/etc/cni/net.d/cluster/10-bad.conf") && msg.contains("missing 'type'"),
        "{msg}"
    );
    assert!(world.exec.calls().is_empty());
}

/// Records network-status and events.
#[derive(Default)]
struct RecordingApi {
    nads: Vec<NetworkAttachmentDefinition>,
    statuses: Mutex<Vec<Vec<NetworkStatus>>>,
    events: Mutex<Vec<PodEvent>>,
}

#[async_trait]
impl ClusterApi for RecordingApi {
    async fn pod(&self, _: &PodRef) -> Result<Option<PodInfo>, ApiError> {
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
    async fn set_network_status(
        &self,
        _: &PodRef,
        status: &[NetworkStatus],
    ) -> Result<(), ApiError> {
        self.statuses.lock().unwrap().push(status.to_vec());
        Ok(())
    }
    async fn emit_event(&self, _: &PodRef, event: &PodEvent) -> Result<(), ApiError> {
        self.events.lock().unwrap().push(event.clone());
        Ok(())
    }
}

fn aux_world(extra: &[(&str, &str)]) -> World {
    let mut files = vec![("/etc/cni/net.d/vendor-chain/10-sysctl.conf", TUNING)];
    files.extend_from_slice(extra);
    world(&cluster_list(json!({})), &files)
}

fn aux_conf(networks: &str) -> MultusConf {
    conf(networks, json!({"auxiliaryCNIChainName": "vendor-chain"}))
}

#[test]
fn the_auxiliary_chain_runs_last_as_net_index_with_passthru_first() {
    let world = aux_world(&[]);
    let api = RecordingApi {
        nads: world.api.nads.clone(),
        ..RecordingApi::default()
    };
    let seams = Seams {
        api: &api,
        ..world.seams()
    };
    let conf = aux_conf("blue, chain@mv0");
    let request = request(Command::Add);
    pollster::block_on(Engine::new(&conf, &request, seams).add()).unwrap();
    assert_eq!(
        world.exec.summary(),
        vec![
            "ADD ptp eth0",
            "ADD bridge net1",
            "ADD macvlan mv0",
            "ADD tuning mv0",
            "ADD passthru net3",
            "ADD tuning net3"
        ]
    );
    let calls = world.exec.calls();
    let passthru = &calls[4].3;
    assert_eq!(
        *passthru,
        json!({"type":"passthru","name":"vendor-chain","cniVersion":"1.0.0"})
    );
    let tuning = &calls[5].3;
    assert_eq!(tuning["name"], "vendor-chain");
    assert_eq!(
        tuning["sysctl"],
        json!({"net.ipv4.conf.eth0.arp_filter": "1"})
    );
    assert!(tuning.get("prevResult").is_some(), "{tuning}");

    let state = world.state.record("c1").unwrap();
    let aux = &state.attachments[3].delegate;
    assert!(aux.auxiliary);
    assert_eq!(aux.network, "vendor-chain");
    assert_eq!(aux.ifname, "net3");
    assert!(!aux.cluster_network);
    assert_eq!(aux.config.plugin_types(), vec!["passthru", "tuning"]);
    assert!(state.attachments[..3].iter().all(|a| !a.delegate.auxiliary));
    // No network-status entry and no event for the chain.
    let names: Vec<&str> = state
        .network_status
        .iter()
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(names, ["cluster", "default/blue", "default/chain"]);
    assert_eq!(api.statuses.lock().unwrap()[0], state.network_status);
    let events = api.events.lock().unwrap();
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(
        events.iter().all(|e| !e.message.contains("vendor-chain")),
        "{events:?}"
    );
}

#[test]
fn the_auxiliary_chain_is_deleted_first_and_survives_a_lost_record() {
    let world = aux_world(&[]);
    add(&world, &aux_conf("blue")).unwrap();
    world.exec.calls.lock().unwrap().clear();
    del(&world, &aux_conf("")).unwrap();
    assert_eq!(
        world.exec.summary(),
        vec![
            "DEL tuning net2",
            "DEL passthru net2",
            "DEL bridge net1",
            "DEL ptp eth0"
        ]
    );
    assert!(world.state.record("c1").is_none());

    // Without a record the plan is rebuilt, chain included.
    world.exec.calls.lock().unwrap().clear();
    del(&world, &aux_conf("blue")).unwrap();
    assert_eq!(
        world.exec.summary(),
        vec![
            "DEL tuning net2",
            "DEL passthru net2",
            "DEL bridge net1",
            "DEL ptp eth0"
        ]
    );
}

#[test]
fn check_leaves_the_auxiliary_chain_alone() {
    let mut world = aux_world(&[]);
    add(&world, &aux_conf("")).unwrap();
    world.netns.existing.insert("eth0".into());
    world.exec.calls.lock().unwrap().clear();
    let request = request(Command::Check);
    pollster::block_on(Engine::new(&aux_conf(""), &request, world.seams()).check()).unwrap();
    assert_eq!(world.exec.summary(), vec!["CHECK ptp eth0"]);
}

#[test]
fn the_auxiliary_chain_name_reserves_no_interface() {
    // An annotation network asks for net2, the chain's name: no conflict.
    let world = aux_world(&[]);
    add(&world, &aux_conf("blue@net2")).unwrap();
    assert_eq!(
        world.exec.summary(),
        vec![
            "ADD ptp eth0",
            "ADD bridge net2",
            "ADD passthru net2",
            "ADD tuning net2"
        ]
    );
    // The pod already has a net1, the chain's name: not checked.
    let mut world = aux_world(&[]);
    world.netns.existing.insert("net1".into());
    add(&world, &aux_conf("")).unwrap();
    assert_eq!(
        world.exec.summary(),
        vec!["ADD ptp eth0", "ADD passthru net1", "ADD tuning net1"]
    );
}

#[test]
fn without_plugins_or_with_a_broken_subdirectory_there_is_no_auxiliary_chain() {
    // Nothing in the subdirectory.
    let world = world(&cluster_list(json!({})), &[]);
    add(&world, &aux_conf("blue")).unwrap();
    assert_eq!(
        world.exec.summary(),
        vec!["ADD ptp eth0", "ADD bridge net1"]
    );
    // A plugin file without type: logged and skipped, as upstream does.
    let world = aux_world(&[("/etc/cni/net.d/vendor-chain/20-bad.conf", "{}")]);
    add(&world, &aux_conf("blue")).unwrap();
    assert_eq!(
        world.exec.summary(),
        vec!["ADD ptp eth0", "ADD bridge net1"]
    );
    // An invalid chain name: the same.
    let world = aux_world(&[]);
    add(
        &world,
        &conf("", json!({"auxiliaryCNIChainName": "../vendor-chain"})),
    )
    .unwrap();
    assert_eq!(world.exec.summary(), vec!["ADD ptp eth0"]);
}

#[test]
fn a_directory_cluster_network_holds_the_auxiliary_chain_directory() {
    let world = aux_world(&[]);
    let conf = conf(
        "",
        json!({"clusterNetwork": NET_D, "auxiliaryCNIChainName": "vendor-chain"}),
    );
    add(&world, &conf).unwrap();
    assert_eq!(
        world.exec.summary(),
        vec!["ADD ptp eth0", "ADD passthru net1", "ADD tuning net1"]
    );
}

#[test]
fn the_auxiliary_chain_needs_a_cluster_network_path() {
    let world = aux_world(&[]);
    let static_delegates = MultusConf::parse(
        json!({
            "cniVersion": "1.0.0",
            "delegates": [{"cniVersion": "1.0.0", "name": "cluster", "type": "ptp"}],
            "auxiliaryCNIChainName": "vendor-chain"
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let err = add(&world, &static_delegates).unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidNetworkConfig.code());
    assert_eq!(
        plan_error(&err).to_string(),
        "auxiliary chain used but ClusterNetwork must be a path, and it is not a path: "
    );
    let by_name = conf(
        "",
        json!({"clusterNetwork": "blue", "multusNamespace": "default", "auxiliaryCNIChainName": "vendor-chain"}),
    );
    let err = add(&world, &by_name).unwrap_err();
    assert!(
        err.to_string()
            .contains("ClusterNetwork must be a path, and it is not a path: blue"),
        "{err}"
    );
    assert!(world.exec.calls().is_empty());
    assert!(world.state.ids().is_empty());
}

#[test]
fn status_does_not_ask_the_auxiliary_chain() {
    let world = aux_world(&[]);
    let conf = MultusConf::parse(
        json!({
            "cniVersion": "1.1.0",
            "clusterNetwork": CLUSTER_LIST,
            "auxiliaryCNIChainName": "vendor-chain"
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let request = crate::request::CniRequest::from_env(
        &BTreeMap::from([("CNI_COMMAND".to_owned(), "STATUS".to_owned())]),
        Vec::new(),
    )
    .unwrap();
    // The cluster list is 1.0.0: nothing can answer STATUS, and the chain is not asked.
    pollster::block_on(Engine::new(&conf, &request, world.seams()).status()).unwrap();
    assert!(world.exec.calls().is_empty());
}
