//! Fault 5: a delegate's DEL fails once, then succeeds on the runtime's retry.
//!
//! The pod has the real cluster bridge (eth0), a `cni-recorder` network whose first DEL
//! fails (`failOn: "DEL-once"`, net1) and a real bridge network (net2). The first DEL
//! deletes every other attachment, fails naming the failed one, says what was deleted,
//! and keeps the sandbox record; the retry runs from that record and succeeds, even when
//! it comes without the pod's annotations (the pod is gone by then), and nothing is
//! left.
//!
//! multus-rs keeps the record after a failed DEL with and without `retryDeleteOnError`
//! (upstream drops it by default, and its retry can then no longer find the annotation
//! networks of a deleted pod): both settings are run and behave the same.

// Test code: a panic (`expect`, `unwrap`, `panic!`) in a helper is a test failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use multus_integration_tests::fixtures::{MultusConfig, recorder_conf};
use multus_integration_tests::recording::{del_once_marker, read_records, summaries};
use multus_integration_tests::runtime::Sandbox;
use multus_integration_tests::{BRIDGE_NAD, Harness, StandardNetworks};
use serde_json::{Value, json};

const VERSION: &str = "1.0.0";
const FLAKY: &str = "flaky";

/// The standard networks plus NAD `flaky` (recorder, DEL fails once), with the recorder
/// installed in the test's binDir; `retry` sets `retryDeleteOnError` (absent: `None`).
fn setup(retry: Option<bool>) -> (Harness, Sandbox, StandardNetworks, MultusConfig) {
    let h = Harness::new();
    let nets = h.standard_networks(VERSION);
    h.dirs.install_recorder("recorder");
    let mut flaky = recorder_conf(VERSION, FLAKY, FLAKY, &h.dirs);
    flaky["failOn"] = json!("DEL-once");
    h.dirs.write_nad_json(FLAKY, &flaky);
    let mut conf = h
        .multus_config(VERSION, &nets)
        .set("binDir", json!(h.dirs.bin_dir()))
        .set("logLevel", json!("error"));
    if let Some(retry) = retry {
        conf = conf.set("retryDeleteOnError", json!(retry));
    }
    let pod = h.sandbox();
    (h, pod, nets, conf)
}

/// `network (ifname)` labels as multus reports them.
const CLUSTER_LABEL: &str = "cluster (eth0)";
const FLAKY_LABEL: &str = "default/flaky (net1)";
const BRIDGE_LABEL: &str = "default/brnet (net2)";

fn first_del_fails_and_the_retry_finishes(retry: Option<bool>) {
    let (h, pod, _nets, conf) = setup(retry);
    let with_annotations = conf
        .clone()
        .networks(&format!("{FLAKY}, {BRIDGE_NAD}"))
        .build();
    let result = h.runtime.add(&pod, &with_annotations).success();
    // The recorder (net1) creates nothing; the bridges hold one lease each.
    assert_eq!(pod.netns.link_names(), ["eth0", "lo", "net2"]);
    assert_eq!(h.dirs.leases().len(), 2, "{:?}", h.dirs.leases());

    let error = h
        .runtime
        .del(&pod, &with_annotations, Some(&result))
        .error_with_code(11);
    error
        .assert_msg_contains(&[
            &pod.pod_ref(),
            "error deleting networks",
            FLAKY_LABEL,
            "recorder asked to fail once",
        ])
        .assert_details_contain(&[
            &format!("deleted: {CLUSTER_LABEL}, {BRIDGE_LABEL};"),
            &format!("could not be deleted: {FLAKY_LABEL}: plugin \"recorder\" failed"),
            "the sandbox record is kept",
        ]);
    assert_eq!(error.cni_version, VERSION);
    assert!(
        !error.msg.contains(CLUSTER_LABEL) && !error.msg.contains(BRIDGE_LABEL),
        "only the failed attachment is an error:\n{}",
        error.output
    );
    assert!(
        del_once_marker(&h.dirs.record_file(), &pod.container_id, "net1").exists(),
        "the recorder failed its first DEL"
    );
    // Everything but the failed attachment is gone; the record is kept for the retry.
    h.assert_released(&[&pod]);
    let kept = h
        .dirs
        .state(&pod.container_id)
        .expect("the record is kept for the runtime's retry");
    let networks: Vec<&str> = kept["attachments"]
        .as_array()
        .expect("attachments")
        .iter()
        .map(|a| a["network"].as_str().expect("network"))
        .collect();
    assert_eq!(networks, ["cluster", "default/flaky", "default/brnet"]);

    // The runtime retries once the pod is gone: no annotations any more, and
    // containerd's empty CNI_NETNS. The record still leads it to the flaky network.
    let without_annotations = conf.build();
    let retry_call = h
        .runtime
        .call("DEL", &pod, &without_annotations)
        .set("CNI_NETNS", "");
    h.runtime.run(retry_call).empty_success();
    let records = read_records(&h.dirs.record_file());
    assert_eq!(
        summaries(&records),
        ["ADD flaky", "DEL flaky", "DEL flaky"],
        "the retry reached the annotation network from the record"
    );
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn del_fails_once_then_the_retry_succeeds_by_default() {
    first_del_fails_and_the_retry_finishes(None);
}

#[test]
fn del_fails_once_then_the_retry_succeeds_with_retry_delete_on_error_false() {
    first_del_fails_and_the_retry_finishes(Some(false));
}

#[test]
fn del_fails_once_then_the_retry_succeeds_with_retry_delete_on_error_true() {
    first_del_fails_and_the_retry_finishes(Some(true));
}

/// Without a record (lost, or never written) the first DEL rebuilds the plan from the
/// pod's annotations; when a delegate fails, that plan is recorded, so the retry
/// reaches the same networks although the annotations are gone by then.
#[test]
fn failed_del_without_a_record_records_the_rebuilt_plan_for_the_retry() {
    let (h, pod, _nets, conf) = setup(None);
    let with_annotations = conf
        .clone()
        .networks(&format!("{FLAKY}, {BRIDGE_NAD}"))
        .build();
    h.runtime.add(&pod, &with_annotations).success();
    std::fs::remove_file(h.dirs.record_path(&pod.container_id)).expect("remove the record");

    let error = h
        .runtime
        .del(&pod, &with_annotations, None)
        .error_with_code(11);
    error
        .assert_msg_contains(&[FLAKY_LABEL])
        .assert_details_contain(&[
            &format!("deleted: {CLUSTER_LABEL}, {BRIDGE_LABEL};"),
            "the sandbox record is kept",
        ]);
    h.assert_released(&[&pod]);
    let rebuilt = h
        .dirs
        .state(&pod.container_id)
        .expect("the rebuilt plan is recorded");
    assert_eq!(rebuilt["phase"], "adding", "{rebuilt:#}");
    assert!(
        rebuilt["attachments"]
            .as_array()
            .expect("attachments")
            .iter()
            .all(|a| a.get("result").is_none()),
        "a rebuilt plan has no results: {rebuilt:#}"
    );

    h.runtime.del(&pod, &conf.build(), None).empty_success();
    let records = read_records(&h.dirs.record_file());
    assert_eq!(summaries(&records), ["ADD flaky", "DEL flaky", "DEL flaky"]);
    h.assert_nothing_leaked(&[&pod]);
}

/// After the successful retry the record is gone, and a further DEL (containerd deletes
/// once more on sandbox removal) rebuilds the plan and succeeds too.
#[test]
fn a_third_del_after_the_retry_is_still_a_success() {
    let (h, pod, _nets, conf) = setup(Some(true));
    let conf: Value = conf.networks(FLAKY).build();
    let result = h.runtime.add(&pod, &conf).success();
    h.runtime
        .del(&pod, &conf, Some(&result))
        .error_with_code(11);
    h.runtime.del(&pod, &conf, Some(&result)).empty_success();
    h.runtime.del(&pod, &conf, None).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}
