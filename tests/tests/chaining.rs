//! Subdirectory chaining and the auxiliary CNI chain with the real `multus` binary, the
//! real `passthru` and the real reference plugins (reference §4.12, upstream's e2e
//! `test-subdirectory-chaining*.sh`):
//!
//! - a cluster network given as a `.conflist` file path runs the plugins of
//!   `<dir>/<list name>/` after its own, on eth0: a `tuning` conf there sets
//!   `net.ipv4.conf.eth0.arp_filter` inside the pod; with `loadOnlyInlinedPlugins` it
//!   does not; an invalid list name fails ADD before anything runs;
//! - `auxiliaryCNIChainName: vendor-chain` runs passthru + the plugins of
//!   `<dir>/vendor-chain/` as `net<N>` after the annotation networks: the tuning conf
//!   there (hard-coding eth0, as upstream's e2e does) takes effect, the chain creates no
//!   interface and gets no network-status entry, and DEL removes everything.

// Test code: a panic (`expect`, `unwrap`, `panic!`) in a helper is a test failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};

use multus_integration_tests::fixtures::{self, recorder_conf};
use multus_integration_tests::recording::read_records;
use multus_integration_tests::runtime::Sandbox;
use multus_integration_tests::{
    BRIDGE_NAD, CLUSTER_NETWORK, Harness, MACVLAN_NAD, StandardNetworks,
};
use serde_json::{Value, json};

const VERSION: &str = "1.0.0";
/// The sysctl upstream's e2e sets through a chained tuning plugin.
const ARP_FILTER: &str = "/proc/sys/net/ipv4/conf/eth0/arp_filter";
/// The auxiliary chain's name.
const AUX_CHAIN: &str = "vendor-chain";

/// A tuning plugin config setting `arp_filter` on eth0, as upstream's e2e writes it.
fn arp_filter_tuning() -> Value {
    json!({
        "cniVersion": VERSION,
        "name": "sysctltwiddle",
        "type": "tuning",
        "sysctl": {"net.ipv4.conf.eth0.arp_filter": "1"}
    })
}

/// The node's CNI config directory of this test (`<root>/net.d`).
fn net_d(h: &Harness) -> PathBuf {
    let dir = h.dirs.root().join("net.d");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn write_json(path: &Path, doc: &Value) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, doc.to_string()).unwrap();
}

/// `<net.d>/10-cluster.conflist`: the standard cluster network (bridge + host-local) as
/// a config list named `name`, with `extra` top-level keys; returns its path.
fn write_cluster_conflist(
    h: &Harness,
    nets: &StandardNetworks,
    name: &str,
    extra: Value,
) -> PathBuf {
    let bridge = fixtures::bridge_conf(VERSION, name, "mrs-cbr0", nets.cluster, true, &h.dirs);
    let mut list = json!({"cniVersion": VERSION, "name": name, "plugins": [bridge]});
    for (key, value) in extra.as_object().unwrap() {
        list[key] = value.clone();
    }
    let path = net_d(h).join("10-cluster.conflist");
    write_json(&path, &list);
    path
}

/// The multus configuration with `clusterNetwork` = that file.
fn multus_conf(h: &Harness, nets: &StandardNetworks, cluster: &Path) -> fixtures::MultusConfig {
    h.multus_config(VERSION, nets)
        .set("clusterNetwork", json!(cluster))
}

/// The content of a sysctl file inside the pod.
fn pod_sysctl(pod: &Sandbox, file: &str) -> String {
    let cat = ["/usr/bin/cat", "/bin/cat"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
        .expect("cat (coreutils)");
    pod.netns
        .exec(cat, &[file])
        .expect_success(&format!("cat {file} in the pod"))
        .trim()
        .to_owned()
}

fn attachments(h: &Harness, pod: &Sandbox) -> Vec<Value> {
    let state = h.dirs.state(&pod.container_id).expect("a record after ADD");
    state["attachments"]
        .as_array()
        .expect("attachments")
        .clone()
}

#[test]
fn a_conflist_cluster_network_runs_the_plugins_of_its_subdirectory_on_eth0() {
    let h = Harness::new();
    let nets = h.standard_networks(VERSION);
    let cluster = write_cluster_conflist(&h, &nets, CLUSTER_NETWORK, json!({}));
    write_json(
        &net_d(&h).join(CLUSTER_NETWORK).join("50-sysctl.conf"),
        &arp_filter_tuning(),
    );
    // Not a plugin conf for libcni (only *.conf are): ignored.
    write_json(
        &net_d(&h).join(CLUSTER_NETWORK).join("60-ignored.json"),
        &json!({"type": "does-not-exist"}),
    );
    let conf = multus_conf(&h, &nets, &cluster)
        .networks(MACVLAN_NAD)
        .build();
    let pod = h.sandbox();

    let result = h.runtime.add(&pod, &conf).success();

    assert_eq!(pod_sysctl(&pod, ARP_FILTER), "1", "tuning ran on eth0");
    assert_eq!(pod.netns.link_names(), ["eth0", "lo", "net1"]);
    // tuning passed the bridge's result on: eth0 with its cluster address.
    let ips = result["ips"].as_array().expect("ips");
    assert!(
        ips.iter()
            .any(|ip| nets.cluster.contains(ip["address"].as_str().unwrap())),
        "{result:#}"
    );
    let recorded = attachments(&h, &pod);
    let cluster_config: Value =
        serde_json::from_str(recorded[0]["config"].as_str().unwrap()).unwrap();
    let types: Vec<&str> = cluster_config["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["bridge", "tuning"]);
    let status = h.dirs.network_status(&pod.container_id);
    assert_eq!(status.len(), 2, "{status:#?}");
    assert_eq!(status[0]["interface"], "eth0");

    // DEL works from the record alone, even with the chained file gone.
    std::fs::remove_dir_all(net_d(&h).join(CLUSTER_NETWORK)).unwrap();
    h.runtime.del(&pod, &conf, Some(&result)).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn load_only_inlined_plugins_leaves_the_subdirectory_alone() {
    let h = Harness::new();
    let nets = h.standard_networks(VERSION);
    let cluster = write_cluster_conflist(
        &h,
        &nets,
        CLUSTER_NETWORK,
        json!({"loadOnlyInlinedPlugins": true}),
    );
    write_json(
        &net_d(&h).join(CLUSTER_NETWORK).join("50-sysctl.conf"),
        &arp_filter_tuning(),
    );
    let conf = multus_conf(&h, &nets, &cluster).build();
    let pod = h.sandbox();

    let result = h.runtime.add(&pod, &conf).success();

    // The control of the test above: eth0's default is 0 in a new namespace.
    assert_eq!(pod_sysctl(&pod, ARP_FILTER), "0", "tuning did not run");
    let recorded = attachments(&h, &pod);
    let cluster_config: Value =
        serde_json::from_str(recorded[0]["config"].as_str().unwrap()).unwrap();
    assert_eq!(cluster_config["plugins"].as_array().unwrap().len(), 1);

    h.runtime.del(&pod, &conf, Some(&result)).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn an_invalid_conflist_name_fails_add_before_anything_runs() {
    let h = Harness::new();
    let nets = h.standard_networks(VERSION);
    let cluster = write_cluster_conflist(&h, &nets, "cluster net", json!({}));
    let conf = multus_conf(&h, &nets, &cluster)
        .networks(MACVLAN_NAD)
        .build();
    let pod = h.sandbox();

    let error = h.runtime.add(&pod, &conf).error_with_code(7);
    error.assert_msg_contains(&[
        "invalid network config name: cluster net",
        cluster.to_str().unwrap(),
        &pod.pod_ref(),
    ]);
    assert!(h.dirs.state(&pod.container_id).is_none());
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn the_auxiliary_chain_runs_after_the_annotation_networks_and_del_removes_everything() {
    let h = Harness::new();
    let nets = h.standard_networks(VERSION);
    h.dirs.install_passthru();
    h.dirs.install_recorder("recorder");
    let cluster = write_cluster_conflist(&h, &nets, CLUSTER_NETWORK, json!({}));
    let chain_dir = net_d(&h).join(AUX_CHAIN);
    write_json(
        &chain_dir.join("10-sysctltwiddle.conf"),
        &arp_filter_tuning(),
    );
    // The recorder after tuning shows what the chain's plugins are called with.
    write_json(
        &chain_dir.join("20-recorder.conf"),
        &recorder_conf(VERSION, "recorder", "aux", &h.dirs),
    );
    let conf = multus_conf(&h, &nets, &cluster)
        .set("binDir", json!(h.dirs.bin_dir()))
        .set("auxiliaryCNIChainName", json!(AUX_CHAIN))
        .networks(&format!("{MACVLAN_NAD}, {BRIDGE_NAD}"))
        .build();
    let pod = h.sandbox();

    let result = h.runtime.add(&pod, &conf).success();

    // The chain's tuning, hard-coding eth0, took effect; the chain made no interface.
    assert_eq!(pod_sysctl(&pod, ARP_FILTER), "1");
    assert_eq!(pod.netns.link_names(), ["eth0", "lo", "net1", "net2"]);
    // It ran as net3, the index after the annotation networks, with passthru's empty
    // result (passed on by tuning) as prevResult, and the chain's name.
    let records = read_records(&h.dirs.record_file());
    assert_eq!(records.len(), 1, "{records:#?}");
    let add = &records[0];
    assert_eq!((add.command.as_str(), add.ifname.as_str()), ("ADD", "net3"));
    assert_eq!(add.container_id, pod.container_id);
    assert_eq!(add.stdin["name"], AUX_CHAIN);
    assert_eq!(add.stdin["cniVersion"], VERSION);
    assert_eq!(
        add.stdin["prevResult"],
        json!({"cniVersion": VERSION, "dns": {}})
    );
    // The cluster network's result is still what the runtime gets.
    assert_eq!(
        result["interfaces"].as_array().map(Vec::len),
        Some(3),
        "{result:#}"
    );

    // Recorded like any delegate (the record flattens it into the attachment), flagged;
    // no network-status entry.
    let recorded = attachments(&h, &pod);
    let ifnames: Vec<&str> = recorded
        .iter()
        .map(|a| a["ifname"].as_str().unwrap())
        .collect();
    assert_eq!(ifnames, ["eth0", "net1", "net2", "net3"]);
    let aux = &recorded[3];
    assert_eq!(aux["auxiliary"], true);
    assert_eq!(aux["network"], AUX_CHAIN);
    assert!(recorded[..3].iter().all(|a| a.get("auxiliary").is_none()));
    let status = h.dirs.network_status(&pod.container_id);
    let names: Vec<&str> = status.iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            CLUSTER_NETWORK.to_owned(),
            format!("default/{MACVLAN_NAD}"),
            format!("default/{BRIDGE_NAD}")
        ]
    );

    // CHECK passes: the chain (no interface of its own) is not checked.
    h.runtime.check(&pod, &conf, &result).empty_success();

    h.runtime.del(&pod, &conf, Some(&result)).empty_success();
    let records = read_records(&h.dirs.record_file());
    let del: Vec<(&str, &str)> = records[1..]
        .iter()
        .map(|r| (r.command.as_str(), r.ifname.as_str()))
        .collect();
    assert_eq!(del, [("DEL", "net3")]);
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn without_plugins_in_its_directory_the_auxiliary_chain_does_not_run() {
    let h = Harness::new();
    let nets = h.standard_networks(VERSION);
    let cluster = write_cluster_conflist(&h, &nets, CLUSTER_NETWORK, json!({}));
    // No passthru installed either: it is never called.
    let conf = multus_conf(&h, &nets, &cluster)
        .set("auxiliaryCNIChainName", json!(AUX_CHAIN))
        .networks(MACVLAN_NAD)
        .build();
    let pod = h.sandbox();

    let result = h.runtime.add(&pod, &conf).success();
    let recorded = attachments(&h, &pod);
    assert_eq!(recorded.len(), 2);

    h.runtime.del(&pod, &conf, Some(&result)).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}
