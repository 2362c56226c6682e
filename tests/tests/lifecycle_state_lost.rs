//! Faults 2 and 3: DEL when multus' sandbox record is missing, truncated or garbage.
//!
//! The pod has the cluster network (bridge, eth0), one network from `defaultNetworks`
//! (NAD `kube-system/dflt`, bridge, net1) and two annotation networks (macvlan net2,
//! bridge net3), all with host-local leases.
//!
//! - Record missing, pod gone (the runtime no longer passes the annotations): DEL still
//!   deletes the cluster network and the `defaultNetworks` entry, which the
//!   configuration alone determines, and logs a WARN saying the annotation networks
//!   cannot be reached. **What cannot be released** then: the annotation networks'
//!   interfaces and host-local leases (nothing on the node says they exist). The test
//!   asserts exactly that residue, then shows it released by a DEL that has the
//!   annotations again.
//! - Record missing, annotations still passed: the plan is rebuilt and everything is
//!   released. When one of the annotation's NADs was deleted meanwhile, the plan cannot
//!   be rebuilt: the configured networks are deleted and the WARN names the annotation
//!   networks left behind.
//! - Record truncated or garbage: it is moved aside as `<id>.json.corrupt-<time>` and
//!   **kept for inspection** (never deleted by multus), the plan is rebuilt and
//!   everything is released.

// Test code: a panic (`expect`, `unwrap`, `panic!`) in a helper is a test failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use multus_integration_tests::fixtures::{MultusConfig, Subnet, bridge_conf};
use multus_integration_tests::runtime::Sandbox;
use multus_integration_tests::{BRIDGE_NAD, Harness, MACVLAN_NAD};
use serde_json::json;

const VERSION: &str = "1.0.0";

/// A pod attached to all four networks; returns the configuration without the pod's
/// annotations (add them with [`MultusConfig::networks`]).
fn attached_pod() -> (Harness, Sandbox, MultusConfig) {
    let h = Harness::new();
    let nets = h.standard_networks(VERSION);
    let dflt = bridge_conf(VERSION, "dflt", "mrs-br3", Subnet::unique(), false, &h.dirs);
    h.dirs
        .write_nad("dflt", Some("kube-system"), &dflt.to_string());
    let conf = h
        .multus_config(VERSION, &nets)
        .set("defaultNetworks", json!(["dflt"]))
        .set("logLevel", json!("error"));
    let pod = h.sandbox();
    h.runtime.add(&pod, &annotated(&conf)).success();
    assert_eq!(
        pod.netns.link_names(),
        ["eth0", "lo", "net1", "net2", "net3"]
    );
    assert_eq!(h.dirs.leases().len(), 4, "{:?}", h.dirs.leases());
    assert!(h.dirs.record_path(&pod.container_id).exists());
    (h, pod, conf)
}

/// The configuration with the pod's annotation, as containerd passes it.
fn annotated(conf: &MultusConfig) -> serde_json::Value {
    conf.clone()
        .networks(&format!("{MACVLAN_NAD}, {BRIDGE_NAD}"))
        .build()
}

#[test]
fn missing_record_and_pod_gone_still_deletes_the_configured_networks() {
    let (h, pod, conf) = attached_pod();
    std::fs::remove_file(h.dirs.record_path(&pod.container_id)).expect("remove the record");

    // The pod is gone: the runtime passes no annotations any more.
    let out = h.runtime.del(&pod, &conf.clone().build(), None);
    out.empty_success();

    // The cluster network and the defaultNetworks entry are deleted, leases released.
    assert_eq!(pod.netns.link_names(), ["lo", "net2", "net3"]);
    for ifname in ["eth0", "net1"] {
        assert!(
            h.dirs.leases_of(&pod.container_id, ifname).is_empty(),
            "{ifname}'s lease is released: {:?}",
            h.dirs.leases()
        );
    }
    // What cannot be released without a record or the annotations: the annotation
    // networks (macvlan net2, bridge net3) and their leases.
    for ifname in ["net2", "net3"] {
        assert_eq!(
            h.dirs.leases_of(&pod.container_id, ifname).len(),
            1,
            "{ifname}'s lease cannot be released without its network: {:?}",
            h.dirs.leases()
        );
    }
    // ... and the operator is told so.
    assert!(
        out.stderr.contains("WARN")
            && out.stderr.contains("the pod's annotations are unavailable")
            && out.stderr.contains("cannot be reached and are not deleted")
            && out
                .stderr
                .contains("deleting=cluster (eth0), kube-system/dflt (net1)"),
        "no WARN about the unreachable annotation networks:\n{}",
        out.stderr
    );
    assert!(
        h.dirs.sandbox_files().is_empty(),
        "{:?}",
        h.dirs.sandbox_files()
    );

    // Once the annotations are known again, a DEL rebuilds the whole plan and releases
    // the rest.
    h.runtime.del(&pod, &annotated(&conf), None).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn missing_record_with_annotations_rebuilds_the_plan_and_releases_everything() {
    let (h, pod, conf) = attached_pod();
    std::fs::remove_file(h.dirs.record_path(&pod.container_id)).expect("remove the record");

    let out = h.runtime.del(&pod, &annotated(&conf), None);
    out.empty_success();
    assert!(
        !out.stderr.contains("cannot be reached"),
        "nothing is unreachable:\n{}",
        out.stderr
    );
    h.assert_nothing_leaked(&[&pod]);
}

/// Replace the record with `bytes`, DEL, and check that the plan was rebuilt, everything
/// released, and the corrupt record kept aside with exactly those bytes.
fn corrupt_and_delete(h: &Harness, pod: &Sandbox, conf: &MultusConfig, bytes: &[u8]) {
    let record = h.dirs.record_path(&pod.container_id);
    std::fs::write(&record, bytes).expect("corrupt the record");

    let out = h.runtime.del(pod, &annotated(conf), None);
    out.empty_success();
    assert!(
        out.stderr
            .contains("state is corrupt; rebuilding the plan from configuration"),
        "{}",
        out.stderr
    );

    h.assert_released(&[pod]);
    // The corrupt record is kept for inspection, and it is the only file left.
    let kept = h.dirs.corrupt_records(&pod.container_id);
    assert_eq!(kept.len(), 1, "{:?}", h.dirs.sandbox_files());
    assert_eq!(
        std::fs::read(&kept[0]).expect("read the kept record"),
        bytes
    );
    assert_eq!(h.dirs.sandbox_files(), kept, "nothing else is left");
    assert!(!record.exists());
}

/// A truncated record: the first half of the real record's bytes, as a torn write
/// would leave it.
#[test]
fn truncated_record_is_kept_aside_and_the_plan_rebuilt() {
    let (h, pod, conf) = attached_pod();
    let bytes = std::fs::read(h.dirs.record_path(&pod.container_id)).expect("read the record");
    corrupt_and_delete(&h, &pod, &conf, &bytes[..bytes.len() / 2]);
}

#[test]
fn garbage_record_is_kept_aside_and_the_plan_rebuilt() {
    let (h, pod, conf) = attached_pod();
    corrupt_and_delete(&h, &pod, &conf, b"\x00\x17not json at all\xff\n");
}

/// Record missing, annotations passed, but one of the annotation's NADs was deleted
/// meanwhile: the plan cannot be rebuilt, so the configured networks are deleted and the
/// WARN names every annotation network that is left (`unreachable=`).
#[test]
fn missing_record_and_a_deleted_nad_names_the_unreachable_networks() {
    let (h, pod, conf) = attached_pod();
    std::fs::remove_file(h.dirs.record_path(&pod.container_id)).expect("remove the record");
    let manifest = h.dirs.nad_dir().join(format!("default-{MACVLAN_NAD}.yaml"));
    let saved = std::fs::read(&manifest).expect("read the NAD manifest");
    std::fs::remove_file(&manifest).expect("delete the NAD");

    let out = h.runtime.del(&pod, &annotated(&conf), None);
    out.empty_success();
    assert_eq!(pod.netns.link_names(), ["lo", "net2", "net3"]);
    assert!(
        out.stderr
            .contains("cannot resolve the pod's annotation networks for DEL")
            && out.stderr.contains(&format!(
                "unreachable=default/{MACVLAN_NAD}, default/{BRIDGE_NAD}"
            ))
            && out
                .stderr
                .contains("deleting=cluster (eth0), kube-system/dflt (net1)"),
        "the WARN names the unreachable networks:\n{}",
        out.stderr
    );
    assert_eq!(h.dirs.leases().len(), 2, "{:?}", h.dirs.leases());

    // With the NAD back, a DEL releases the rest.
    std::fs::write(&manifest, saved).expect("restore the NAD");
    h.runtime.del(&pod, &annotated(&conf), None).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}
