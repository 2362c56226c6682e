//! STATUS and GC (CNI 1.1) through the real `multus` binary, with the `cni-recorder` as
//! every delegate (the reference plugins refuse cniVersion 1.1.0).
//!
//! multus' configuration is at 1.1.0: the cluster network is a recorder (1.1.0), the
//! `defaultNetworks` are NAD `kube-system/dflt` (recorder, 1.1.0) and
//! `kube-system/old` (recorder, 1.0.0: cannot answer STATUS or GC, and fails if asked),
//! and the pods' annotation asks for NAD `default/extra` (recorder, 1.1.0).
//!
//! - STATUS asks the cluster network and every `defaultNetworks` entry that speaks
//!   1.1.0, never the annotation networks; a delegate's "not ready" (code 50) fails
//!   STATUS with code 50 naming the network, and so does any other failure (a plugin
//!   that is not installed).
//! - GC tears down a sandbox missing from `cni.dev/valid-attachments` (DEL of each of
//!   its attachments, in reverse, then its record is removed), and sends GC to every
//!   network that speaks 1.1.0 with that network's own valid attachments: the valid
//!   container ID with the interface **that network** created.

// Test code: a panic (`expect`, `unwrap`, `panic!`) in a helper is a test failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;

use multus_integration_tests::Harness;
use multus_integration_tests::fixtures::{MultusConfig, recorder_conf};
use multus_integration_tests::recording::{Record, read_records, summaries};
use multus_integration_tests::runtime::CniCall;
use serde_json::{Value, json};

const VERSION: &str = "1.1.0";

/// The recorder networks described above; `dflt_extra` adds keys to `kube-system/dflt`.
fn setup(dflt_extra: Value) -> (Harness, MultusConfig) {
    let h = Harness::new();
    h.dirs.install_recorder("recorder");
    let dirs = &h.dirs;
    let mut dflt = recorder_conf(VERSION, "dflt", "dflt", dirs);
    for (key, value) in dflt_extra.as_object().expect("extra keys") {
        dflt[key] = value.clone();
    }
    dirs.write_nad("dflt", Some("kube-system"), &dflt.to_string());
    let old = recorder_conf("1.0.0", "old", "old", dirs);
    dirs.write_nad("old", Some("kube-system"), &old.to_string());
    dirs.write_nad_json("extra", &recorder_conf(VERSION, "extra", "extra", dirs));
    let cluster = recorder_conf(VERSION, "cluster", "cluster", dirs);
    let conf = MultusConfig::new(VERSION, dirs, cluster)
        .set("binDir", json!(dirs.bin_dir()))
        .set("defaultNetworks", json!(["dflt", "old"]))
        .networks("extra");
    (h, conf)
}

/// A STATUS or GC call as a runtime makes it: no per-container variables.
fn runtime_call(h: &Harness, command: &str, conf: &Value) -> CniCall {
    let nobody = h.sandbox();
    h.runtime.call(command, &nobody, conf).without_sandbox()
}

fn records_of<'a>(records: &'a [Record], command: &str) -> Vec<&'a Record> {
    records.iter().filter(|r| r.command == command).collect()
}

#[test]
fn status_asks_the_cluster_network_and_default_networks_that_speak_1_1() {
    let (h, conf) = setup(json!({}));
    let conf = conf.build();

    h.runtime
        .run(runtime_call(&h, "STATUS", &conf))
        .empty_success();

    let records = read_records(&h.dirs.record_file());
    let mut asked: Vec<String> = records_of(&records, "STATUS")
        .iter()
        .map(|r| r.tag().to_owned())
        .collect();
    asked.sort();
    assert_eq!(
        asked,
        ["cluster", "dflt"],
        "not `old` (1.0.0), not the annotation network `extra`: {:?}",
        summaries(&records)
    );
}

#[test]
fn status_maps_a_not_ready_network_to_code_50() {
    let (h, conf) = setup(json!({"failOn": "STATUS"}));
    let conf = conf.build();

    let error = h
        .runtime
        .run(runtime_call(&h, "STATUS", &conf))
        .error_with_code(50);
    error.assert_msg_contains(&["kube-system/dflt", "is not ready", "not ready"]);
    assert_eq!(error.cni_version, VERSION);
}

#[test]
fn status_maps_any_other_failure_to_code_50() {
    let (h, conf) = setup(json!({"type": "not-installed"}));
    let conf = conf.build();

    let error = h
        .runtime
        .run(runtime_call(&h, "STATUS", &conf))
        .error_with_code(50);
    error.assert_msg_contains(&["kube-system/dflt", "is not ready", "not-installed"]);
}

#[test]
fn gc_tears_down_invalid_sandboxes_and_sends_each_network_its_valid_attachments() {
    let (h, conf) = setup(json!({}));
    let conf = conf.build();
    let kept = h.sandbox();
    let stale = h.sandbox();
    for pod in [&kept, &stale] {
        h.runtime.add(pod, &conf).success();
        assert!(h.dirs.state(&pod.container_id).is_some());
    }
    let added = read_records(&h.dirs.record_file()).len();

    let mut gc_conf = conf.clone();
    gc_conf["cni.dev/valid-attachments"] =
        json!([{"containerID": kept.container_id, "ifname": "eth0"}]);
    h.runtime
        .run(runtime_call(&h, "GC", &gc_conf))
        .empty_success();

    let records = read_records(&h.dirs.record_file());
    let after = &records[added..];
    // The stale sandbox was torn down, in reverse, in its own sandbox.
    let dels: Vec<&Record> = records_of(after, "DEL");
    assert_eq!(
        dels.iter().map(|r| r.summary()).collect::<Vec<_>>(),
        ["DEL extra", "DEL old", "DEL dflt", "DEL cluster"]
    );
    for del in &dels {
        assert_eq!(del.container_id, stale.container_id);
        assert_eq!(del.netns, stale.netns.path_string());
    }
    assert!(
        h.dirs.state(&stale.container_id).is_none(),
        "its record is removed"
    );
    assert!(
        h.dirs.state(&kept.container_id).is_some(),
        "the valid one is kept"
    );

    // GC reached every 1.1.0 network, each with the valid container and its own ifname.
    let gc: BTreeMap<String, Vec<(String, String)>> = records_of(after, "GC")
        .iter()
        .map(|r| (r.tag().to_owned(), r.valid_attachments()))
        .collect();
    let valid = |ifname: &str| vec![(kept.container_id.clone(), ifname.to_owned())];
    assert_eq!(
        gc,
        BTreeMap::from([
            ("cluster".to_owned(), valid("eth0")),
            ("dflt".to_owned(), valid("net1")),
            ("extra".to_owned(), valid("net3")),
        ]),
        "`old` (1.0.0) gets no GC: {:?}",
        summaries(after)
    );
    for record in records_of(after, "GC") {
        assert!(record.container_id.is_empty(), "GC has no container");
    }

    h.runtime.del(&kept, &conf, None).empty_success();
    h.assert_nothing_leaked(&[&kept, &stale]);
}
