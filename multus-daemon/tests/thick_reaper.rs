//! The daemon tears down the records of sandboxes whose pod is gone (a DEL the
//! runtime never retried): real daemon, API stand-in, reference plugins, real
//! namespaces.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use multus_integration_tests::thick as support;

use std::time::{Duration, Instant};

use k8s_standin::PODS;
use multus_integration_tests::fixtures::{self, NETWORKS_ANNOTATION, Subnet};
use multus_integration_tests::runtime::Sandbox;
use multus_integration_tests::{MACVLAN_NAD, NODE_BRIDGE};
use serde_json::json;
use support::{Thick, plugin_stdin};

#[test]
fn records_of_pods_gone_from_the_api_are_torn_down_and_the_others_kept() {
    let mut thick = Thick::new(true);
    let version = "1.0.0";
    thick.bridge_cluster_network(version);
    let nad = fixtures::macvlan_conf(
        version,
        MACVLAN_NAD,
        NODE_BRIDGE,
        Subnet::unique(),
        &thick.h.dirs,
    );
    thick
        .api()
        .create_nad("default", MACVLAN_NAD, &nad.to_string())
        .unwrap();
    thick.set("reapStaleRecordsSeconds", json!(1));
    thick.start_daemon();
    let conf = plugin_stdin(&thick.wait_generated("00-multus.conflist", |_| true));

    let gone = thick.api_pod(&[(NETWORKS_ANNOTATION, MACVLAN_NAD)]);
    let kept = thick.api_pod(&[(NETWORKS_ANNOTATION, MACVLAN_NAD)]);
    let replaced = thick.api_pod(&[]);
    thick.wait_cached_pods(3);
    let kept_result = thick.shim.add(&kept, &conf).success();
    for pod in [&gone, &replaced] {
        thick.shim.add(pod, &conf).success();
    }
    let record = |pod: &Sandbox| thick.h.dirs.record_path(&pod.container_id);
    assert!(record(&gone).exists() && record(&replaced).exists());

    // The runtime's DELs never come: one pod is deleted, another is deleted and made
    // again under the same name (another UID).
    thick.api().delete(&PODS, "default", &gone.name).unwrap();
    thick
        .api()
        .delete(&PODS, "default", &replaced.name)
        .unwrap();
    thick
        .api()
        .create(
            &PODS,
            "default",
            json!({
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": replaced.name},
                "spec": {"nodeName": support::NODE_NAME, "containers": [{"name": "app", "image": "pause"}]}
            }),
        )
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(30);
    while record(&gone).exists() || record(&replaced).exists() {
        assert!(
            Instant::now() < deadline,
            "stale records were not reaped:\n{}",
            thick.daemon_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Their attachments are gone with them; the live pod keeps everything.
    for pod in [&gone, &replaced] {
        assert!(pod.netns.link("eth0").is_none(), "{}", thick.daemon_log());
        assert!(pod.netns.link("net1").is_none());
    }
    assert!(kept.netns.link("eth0").is_some() && kept.netns.link("net1").is_some());
    assert!(record(&kept).exists());
    assert_eq!(thick.metric("multus_stale_records_reaped_total"), 2.0);
    // A live pod is never reaped, however old its record.
    std::thread::sleep(Duration::from_secs(2));
    assert!(record(&kept).exists(), "{}", thick.daemon_log());

    // The runtime's DEL may still come late: nothing is left, and it succeeds.
    thick.shim.del(&gone, &conf, None).empty_success();
    thick.shim.del(&replaced, &conf, None).empty_success();
    thick
        .shim
        .del(&kept, &conf, Some(&kept_result))
        .empty_success();
    thick.h.assert_nothing_leaked(&[&gone, &kept, &replaced]);
}

#[test]
fn zero_turns_reaping_off() {
    let mut thick = Thick::new(true);
    thick.h.dirs.install_recorder("recorder");
    thick.write_primary(
        "10-rec.conf",
        &fixtures::recorder_conf("1.0.0", "rec", "cluster", &thick.h.dirs),
    );
    thick.set("reapStaleRecordsSeconds", json!(0));
    thick.start_daemon();
    let conf = plugin_stdin(&thick.wait_generated("00-multus.conflist", |_| true));
    let pod = thick.api_pod(&[]);
    thick.wait_cached_pods(1);
    let result = thick.shim.add(&pod, &conf).success();
    thick.api().delete(&PODS, "default", &pod.name).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    assert!(thick.h.dirs.record_path(&pod.container_id).exists());
    assert_eq!(thick.metric("multus_stale_records_reaped_total"), 0.0);
    thick.shim.del(&pod, &conf, Some(&result)).empty_success();
}
