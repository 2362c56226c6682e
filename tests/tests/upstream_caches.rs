//! Coming from upstream Go Multus: pods upstream attached before multus-rs took over the
//! node are torn down completely from upstream's own caches.
//!
//! Each test attaches a pod as upstream v4.x did (the reference plugins run directly,
//! with upstream's interface names and `CNI_ARGS`) to the cluster network (bridge,
//! `eth0`), the macvlan NAD with `interface: data0` and a config-list NAD (bridge +
//! tuning, `net2`), and leaves upstream's scratch cache (`<cniDir>/<containerID>`) and
//! libcni's result cache (`<cniDir>/results/...`) behind, with no multus-rs record.
//! Then multus-rs DELs it with the pod still known (the runtime passes its annotations),
//! with the pod gone, and with the API server down: every interface and host-local
//! lease is released and upstream's cache files are removed. GC keeps such a sandbox
//! while the runtime lists it as valid and releases it once it does not.
//!
//! When nothing is known (no record, no upstream cache, the pod's annotations
//! unavailable), DEL deletes what the configuration determines, WARNs naming the
//! sandbox and leaves a note `multus-ctl state list` shows as unknown attachments.

// Test code: a panic (`expect`, `unwrap`, `panic!`) in a helper is a test failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use multus_integration_tests::fixtures::{MultusConfig, bridge_conf, macvlan_conf};
use multus_integration_tests::runtime::Sandbox;
use multus_integration_tests::upstream::{self, Attached, Delegate, Release};
use multus_integration_tests::{BRIDGE_NAD, Harness, MACVLAN_NAD, NODE_BRIDGE};
use serde_json::{Value, json};

const VERSION: &str = "1.0.0";

/// The NADs (the bridge NAD as a list, as upstream saw them), the multus configuration
/// without the pod's annotations, and a pod upstream attached.
fn upstream_pod(h: &Harness, release: Release) -> (Sandbox, MultusConfig, Attached) {
    let nets = h.standard_networks(VERSION);
    let dirs = &h.dirs;
    let cluster = h.cluster_conf(VERSION, &nets);
    let macvlan = macvlan_conf(VERSION, MACVLAN_NAD, NODE_BRIDGE, nets.macnet, dirs);
    let mut bridge = bridge_conf(VERSION, BRIDGE_NAD, "mrs-br1", nets.brnet, false, dirs);
    let bridge_plugin = {
        let object = bridge.as_object_mut().expect("object");
        object.remove("name");
        object.remove("cniVersion");
        bridge.clone()
    };
    let list = json!({
        "cniVersion": VERSION,
        "name": BRIDGE_NAD,
        "plugins": [bridge_plugin, {"type": "tuning", "sysctl": {"net.ipv4.conf.IFNAME.arp_filter": "1"}}],
    });
    dirs.write_nad_json(BRIDGE_NAD, &list);
    let conf = h.multus_config(VERSION, &nets);
    let pod = h.sandbox();
    let attached = upstream::attach(
        h,
        &pod,
        &[
            Delegate::cluster(cluster),
            Delegate::nad(macvlan, Some("data0")),
            Delegate::nad(list, None),
        ],
        release,
    );
    assert_eq!(pod.netns.link_names(), ["data0", "eth0", "lo", "net2"]);
    assert_eq!(h.dirs.leases().len(), 3, "{:?}", h.dirs.leases());
    assert_eq!(attached.remaining().len(), 4);
    assert!(h.dirs.state(&pod.container_id).is_none());
    (pod, conf, attached)
}

/// The pod's annotation, as the runtime passes it while the pod exists.
fn annotated(conf: &MultusConfig) -> Value {
    conf.clone()
        .networks(&format!("{MACVLAN_NAD}@data0, {BRIDGE_NAD}"))
        .build()
}

/// Everything upstream attached is released and its caches are gone.
fn assert_torn_down(h: &Harness, pod: &Sandbox, attached: &Attached) {
    h.assert_nothing_leaked(&[pod]);
    assert!(
        attached.remaining().is_empty(),
        "upstream's cache files are left: {:?}",
        attached.remaining()
    );
    assert!(notes(h).is_empty(), "{:?}", notes(h));
}

fn notes(h: &Harness) -> Vec<std::path::PathBuf> {
    match std::fs::read_dir(h.dirs.cni_dir().join("unknown")) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn del_with_the_pod_present_tears_down_what_upstream_attached() {
    let h = Harness::new();
    let (pod, conf, attached) = upstream_pod(&h, Release::V4_3_0);
    let verbose = conf.set("logLevel", json!("verbose"));
    let out = h.runtime.del(&pod, &annotated(&verbose), None);
    out.empty_success();
    assert!(
        out.stderr
            .contains("no multus-rs record: using the cache upstream Multus wrote")
            && out
                .stderr
                .contains("cluster (eth0), default/macnet (data0), default/brnet (net2)"),
        "{}",
        out.stderr
    );
    assert_torn_down(&h, &pod, &attached);
}

#[test]
fn del_with_the_pod_gone_tears_down_what_upstream_attached() {
    let h = Harness::new();
    let (pod, conf, attached) = upstream_pod(&h, Release::Head);
    let out = h.runtime.del(&pod, &conf.clone().build(), None);
    out.empty_success();
    assert_torn_down(&h, &pod, &attached);

    // containerd's second DEL (no netns any more) knows nothing and is no news.
    let again = h
        .runtime
        .call("DEL", &pod, &conf.build())
        .set("CNI_NETNS", "");
    h.runtime.run(again).empty_success();
    assert!(notes(&h).is_empty(), "{:?}", notes(&h));
}

#[test]
fn del_with_the_api_down_tears_down_what_upstream_attached() {
    let h = Harness::new();
    let (pod, conf, attached) = upstream_pod(&h, Release::Head);
    let api_conf = conf
        .set("kubeconfig", json!(h.dirs.write_unreachable_kubeconfig()))
        .build();
    let out = h.runtime.del(&pod, &api_conf, None);
    out.empty_success();
    assert_torn_down(&h, &pod, &attached);
}

#[test]
fn failed_del_keeps_upstreams_caches_for_the_retry() {
    let h = Harness::new();
    let (pod, conf, attached) = upstream_pod(&h, Release::Head);
    // The macvlan plugin disappears for a moment: its DEL cannot run.
    let conf = conf.set("binDir", json!(h.dirs.bin_dir())).build();
    let call = h
        .runtime
        .call("DEL", &pod, &conf)
        .set("CNI_PATH", &h.dirs.bin_dir().display().to_string());
    let out = h.runtime.run(call);
    out.error().assert_msg_contains(&["default/macnet"]);
    assert_eq!(attached.remaining().len(), 4, "caches kept for the retry");

    let out = h.runtime.del(&pod, &conf, None);
    out.empty_success();
    assert_torn_down(&h, &pod, &attached);
}

/// GC as the runtime calls it: no per-container variables.
fn gc(h: &Harness, conf: &MultusConfig, valid: Value) {
    let conf = conf
        .clone()
        .set("cniVersion", json!("1.1.0"))
        .set("cni.dev/valid-attachments", valid)
        .build();
    let nobody = h.sandbox();
    let call = h.runtime.call("GC", &nobody, &conf).without_sandbox();
    h.runtime.run(call).empty_success();
}

#[test]
fn gc_keeps_a_valid_upstream_sandbox_and_releases_it_once_invalid() {
    let h = Harness::new();
    let (pod, conf, attached) = upstream_pod(&h, Release::V4_3_0);

    gc(
        &h,
        &conf,
        json!([{"containerID": pod.container_id, "ifname": "eth0"}]),
    );
    assert_eq!(pod.netns.link_names(), ["data0", "eth0", "lo", "net2"]);
    assert_eq!(h.dirs.leases().len(), 3, "{:?}", h.dirs.leases());
    assert_eq!(attached.remaining().len(), 4);

    gc(&h, &conf, json!([]));
    h.assert_nothing_leaked(&[&pod]);
    assert!(
        attached.remaining().is_empty(),
        "{:?}",
        attached.remaining()
    );
}

#[test]
fn del_that_knows_nothing_warns_and_leaves_a_note() {
    let h = Harness::new();
    let (pod, conf, attached) = upstream_pod(&h, Release::Head);
    // Upstream's caches lost as well (another cniDir, a wiped node): nothing is known.
    for file in attached.remaining() {
        std::fs::remove_file(file).unwrap();
    }
    let logged = conf.clone().set("logLevel", json!("error")).build();
    let out = h.runtime.del(&pod, &logged, None);
    out.empty_success();
    assert!(
        out.stderr.contains("WARN")
            && out
                .stderr
                .contains(&format!("container={}", pod.container_id))
            && out.stderr.contains("cannot be reached and are not deleted"),
        "{}",
        out.stderr
    );
    // Only the cluster network was known.
    assert_eq!(pod.netns.link_names(), ["data0", "lo", "net2"]);
    let notes = notes(&h);
    assert_eq!(notes.len(), 1, "{notes:?}");
    let note: Value = serde_json::from_slice(&std::fs::read(&notes[0]).unwrap()).unwrap();
    assert_eq!(note["containerId"], pod.container_id.as_str());
    assert_eq!(note["podName"], pod.name.as_str());
    assert_eq!(note["deleted"], json!(["cluster (eth0)"]));

    // Once the pod's networks are known again, a DEL releases the rest and drops the note.
    h.runtime.del(&pod, &annotated(&conf), None).empty_success();
    h.assert_nothing_leaked(&[&pod]);
    assert!(self::notes(&h).is_empty());
}
