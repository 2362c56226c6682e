//! Parallel attach through the real `multus` binary: the cluster network first and
//! alone, then the additional networks at the same time (seen with the `cni-recorder`
//! plugin's timestamps), results identical to a serial ADD, and real bridge, macvlan
//! and ptp networks, 16 at once, leaving nothing behind after ADD+DEL and after a
//! failure mid-way.

// Test code: a panic (`expect`, `unwrap`, `panic!`) in a helper is a test failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use multus_integration_tests::fixtures::{
    MultusConfig, Subnet, bridge_conf, host_local, ipvlan_conf, macvlan_conf, recorder_conf,
};
use multus_integration_tests::recording::{Record, read_records};
use multus_integration_tests::{Harness, NODE_BRIDGE};
use serde_json::{Value, json};

const VERSION: &str = "1.0.0";

/// A recorder node: cluster network `cluster` and NADs `r1`..`r4`, every call taking
/// 150 ms, so that calls run one after the other cannot overlap.
fn recorder_node() -> (Harness, MultusConfig) {
    let h = Harness::new();
    h.dirs.install_recorder("recorder");
    let slow = |name: &str| {
        let mut conf = recorder_conf(VERSION, name, name, &h.dirs);
        conf["sleepOnAdd"] = json!(150);
        conf["sleepOnDel"] = json!(150);
        conf
    };
    let mut cluster = slow("cluster");
    cluster["address"] = json!("10.250.0.2/24");
    for name in ["r1", "r2", "r3", "r4"] {
        h.dirs.write_nad_json(name, &slow(name));
    }
    let conf = MultusConfig::new(VERSION, &h.dirs, cluster)
        .set("binDir", json!(h.dirs.bin_dir()))
        .networks("r1, r2, r3, r4");
    (h, conf)
}

fn calls<'a>(records: &'a [Record], command: &str) -> Vec<&'a Record> {
    records.iter().filter(|r| r.command == command).collect()
}

fn tagged<'a>(records: &[&'a Record], tag: &str) -> &'a Record {
    records
        .iter()
        .find(|r| r.tag() == tag)
        .copied()
        .unwrap_or_else(|| panic!("no call tagged {tag}"))
}

/// Whether any two of `records` ran at the same time.
fn any_overlap(records: &[&Record]) -> bool {
    records
        .iter()
        .enumerate()
        .any(|(i, a)| records[i + 1..].iter().any(|b| a.overlaps(b)))
}

#[test]
fn additional_networks_overlap_after_the_cluster_network_and_del_reverses_the_stages() {
    let (h, conf) = recorder_node();
    let conf = conf
        .set("parallelAttach", json!(true))
        .set("parallelAttachLimit", json!(4))
        .build();
    let pod = h.sandbox();
    h.runtime.add(&pod, &conf).success();
    h.runtime.del(&pod, &conf, None).empty_success();

    let records = read_records(&h.dirs.record_file());
    let adds = calls(&records, "ADD");
    let dels = calls(&records, "DEL");
    assert_eq!((adds.len(), dels.len()), (5, 5));
    let cluster_add = tagged(&adds, "cluster");
    let extra_adds: Vec<&Record> = adds
        .iter()
        .copied()
        .filter(|r| r.tag() != "cluster")
        .collect();
    for r in &extra_adds {
        assert!(
            r.started_at_ms >= cluster_add.finished_at_ms,
            "{} started before the cluster network finished",
            r.tag()
        );
    }
    assert!(
        any_overlap(&extra_adds),
        "no two ADDs in flight at once: {records:#?}"
    );

    let cluster_del = tagged(&dels, "cluster");
    let extra_dels: Vec<&Record> = dels
        .iter()
        .copied()
        .filter(|r| r.tag() != "cluster")
        .collect();
    for r in &extra_dels {
        assert!(
            cluster_del.started_at_ms >= r.finished_at_ms,
            "the cluster network's DEL started before {} was deleted",
            r.tag()
        );
    }
    assert!(any_overlap(&extra_dels), "no two DELs in flight at once");
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn results_and_network_status_are_those_of_a_serial_add() {
    let (h, conf) = recorder_node();
    let serial = conf.clone().build();
    let parallel = conf.set("parallelAttach", json!(true)).build();
    let pod = h.sandbox();

    let serial_out = h.runtime.add(&pod, &serial).success();
    let serial_status = h.dirs.network_status(&pod.container_id);
    let serial_record = h.dirs.state(&pod.container_id).unwrap();
    h.runtime.del(&pod, &serial, None).empty_success();
    let before = read_records(&h.dirs.record_file()).len();

    let parallel_out = h.runtime.add(&pod, &parallel).success();
    let adds: Vec<Record> = read_records(&h.dirs.record_file())[before..]
        .iter()
        .filter(|r| r.command == "ADD" && r.tag() != "cluster")
        .cloned()
        .collect();
    assert!(
        any_overlap(&adds.iter().collect::<Vec<_>>()),
        "parallel attach is on"
    );
    assert_eq!(parallel_out, serial_out);
    assert_eq!(h.dirs.network_status(&pod.container_id), serial_status);
    let mut record = h.dirs.state(&pod.container_id).unwrap();
    assert_eq!(record["parallelAttach"], true);
    record.as_object_mut().unwrap().remove("parallelAttach");
    assert_eq!(record, serial_record, "the record is the serial one");
    h.runtime.del(&pod, &parallel, None).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}

/// 16 additional networks: bridges, macvlans on the node bridge and ptp links, each
/// with host-local IPAM on a subnet of its own; `failing` puts a real failing delegate
/// (ipvlan, refused by this kernel) in the middle.
fn sixteen_networks(h: &Harness, failing: bool) -> String {
    let mut names = Vec::new();
    for i in 0..16 {
        let name = format!("n{i}");
        let subnet = Subnet::unique();
        let config = match i % 3 {
            0 => bridge_conf(
                VERSION,
                &name,
                &format!("mrs-pb{i}"),
                subnet,
                false,
                &h.dirs,
            ),
            1 => macvlan_conf(VERSION, &name, NODE_BRIDGE, subnet, &h.dirs),
            _ => json!({
                "cniVersion": VERSION,
                "name": name,
                "type": "ptp",
                "ipam": host_local(subnet, &h.dirs),
            }),
        };
        h.dirs.write_nad_json(&name, &config);
        names.push(name);
    }
    if failing {
        h.dirs.write_nad_json(
            "bad",
            &ipvlan_conf(VERSION, "bad", NODE_BRIDGE, Subnet::unique(), &h.dirs),
        );
        names.insert(9, "bad".to_owned());
    }
    names.join(", ")
}

/// The standard node (its cluster network, the node bridge) with [`sixteen_networks`].
fn real_conf(h: &Harness, failing: bool) -> Value {
    let nets = h.standard_networks(VERSION);
    let networks = sixteen_networks(h, failing);
    h.multus_config(VERSION, &nets)
        .set("parallelAttach", json!(true))
        .set("parallelAttachLimit", json!(16))
        .networks(&networks)
        .build()
}

#[test]
fn sixteen_real_networks_at_once_attach_and_detach_without_a_leak() {
    let h = Harness::new();
    let conf = real_conf(&h, false);
    let pod = h.sandbox();
    h.runtime.add(&pod, &conf).success();
    let mut links = pod.netns.link_names();
    links.sort();
    assert_eq!(links.len(), 18, "lo, eth0 and net1..net16: {links:?}");
    let status = h.dirs.network_status(&pod.container_id);
    let names: Vec<&str> = status.iter().filter_map(|s| s["name"].as_str()).collect();
    let mut expected = vec!["cluster".to_owned()];
    expected.extend((0..16).map(|i| format!("default/n{i}")));
    assert_eq!(names, expected, "network-status in plan order");
    let interfaces: Vec<&str> = status
        .iter()
        .filter_map(|s| s["interface"].as_str())
        .collect();
    let mut expected = vec!["eth0".to_owned()];
    expected.extend((1..=16).map(|i| format!("net{i}")));
    assert_eq!(interfaces, expected);
    h.runtime.del(&pod, &conf, None).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn a_failure_among_sixteen_real_networks_rolls_back_everything() {
    let h = Harness::new();
    let conf = real_conf(&h, true);
    let pod = h.sandbox();
    let error = h.runtime.add(&pod, &conf).error_with_code(999);
    error
        .assert_msg_contains(&["default/bad"])
        .assert_details_contain(&["could not be rolled back: none", "cluster (eth0)"]);
    h.assert_nothing_leaked(&[&pod]);
    // The runtime's DEL after the failed ADD succeeds and finds nothing to do.
    h.runtime.del(&pod, &conf, None).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn the_pod_annotation_alone_turns_parallel_attach_on() {
    let (h, conf) = recorder_node();
    let conf = conf
        .annotation("k8s.v1.cni.cncf.io/parallel-attach", "true")
        .build();
    let pod = h.sandbox();
    h.runtime.add(&pod, &conf).success();
    let records = read_records(&h.dirs.record_file());
    let adds: Vec<&Record> = calls(&records, "ADD")
        .into_iter()
        .filter(|r| r.tag() != "cluster")
        .collect();
    assert!(any_overlap(&adds), "no two ADDs in flight at once");
    h.runtime.del(&pod, &conf, None).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}
