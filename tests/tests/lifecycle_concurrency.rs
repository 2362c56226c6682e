//! Fault 7: ADD and DEL of the same container at once, and ADDs of different
//! containers in parallel.
//!
//! Operations on one container ID are serialised by multus' per-container lock: a DEL
//! that comes during an ADD waits and then sees the complete record (and removes
//! everything); a DEL that runs first finds nothing recorded, and the ADD that waited
//! for it then attaches a complete pod, which a final DEL removes. Either way nothing
//! is left. Different containers do not wait for each other: two slow ADDs overlap.
//!
//! The pods get the real cluster bridge (eth0), the real bridge NAD `brnet` (net1) and
//! `cni-recorder` networks (net2, net3) whose records carry start and end times, which
//! show the order in which the operations really ran.

// Test code: a panic (`expect`, `unwrap`, `panic!`) in a helper is a test failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use multus_integration_tests::fixtures::{MultusConfig, recorder_conf};
use multus_integration_tests::recording::{Record, in_flight_marker, read_records, summaries};
use multus_integration_tests::runtime::{CniOutput, Sandbox};
use multus_integration_tests::{BRIDGE_NAD, Harness};
use serde_json::{Value, json};

const VERSION: &str = "1.0.0";
/// How long a slow recorder call sleeps.
const SLEEP_MS: u64 = 1500;

/// A harness with the standard networks and the recorder installed; `slow_add` /
/// `slow_del` make the `rec-a` network's ADD / DEL sleep. Pods ask for `brnet`, `rec-a`
/// and `rec-b`.
fn setup(slow_add: bool, slow_del: bool) -> (Harness, MultusConfig) {
    let h = Harness::new();
    let nets = h.standard_networks(VERSION);
    h.dirs.install_recorder("recorder");
    for name in ["rec-a", "rec-b"] {
        let mut config = recorder_conf(VERSION, name, name, &h.dirs);
        if name == "rec-a" {
            if slow_add {
                config["sleepOnAdd"] = json!(SLEEP_MS);
            }
            if slow_del {
                config["sleepOnDel"] = json!(SLEEP_MS);
            }
        }
        h.dirs.write_nad_json(name, &config);
    }
    let conf = h
        .multus_config(VERSION, &nets)
        .set("binDir", json!(h.dirs.bin_dir()))
        .networks(&format!("{BRIDGE_NAD}, rec-a, rec-b"));
    (h, conf)
}

fn wait_for_file(path: &Path) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{} did not appear",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The recorder calls of one container with one command.
fn calls<'a>(records: &'a [Record], container_id: &str, command: &str) -> Vec<&'a Record> {
    records
        .iter()
        .filter(|r| r.container_id == container_id && r.command == command)
        .collect()
}

/// The time span `[first start, last end]` of a set of calls.
fn span(calls: &[&Record]) -> (u64, u64) {
    let start = calls.iter().map(|r| r.started_at_ms).min().expect("calls");
    let end = calls.iter().map(|r| r.finished_at_ms).max().expect("calls");
    (start, end)
}

/// Assert that the ADD and the DEL of `pod` did not interleave: all the recorder calls
/// of one ran before all those of the other. Returns whether the ADD ran first.
fn assert_serialised(records: &[Record], pod: &Sandbox) -> bool {
    let adds = calls(records, &pod.container_id, "ADD");
    let dels = calls(records, &pod.container_id, "DEL");
    assert_eq!(adds.len(), 2, "{:?}", summaries(records));
    assert_eq!(dels.len(), 2, "{:?}", summaries(records));
    let (add_start, add_end) = span(&adds);
    let (del_start, del_end) = span(&dels);
    assert!(
        add_end <= del_start || del_end <= add_start,
        "ADD [{add_start}, {add_end}] and DEL [{del_start}, {del_end}] interleaved: {:?}",
        summaries(records)
    );
    add_end <= del_start
}

/// A DEL that comes while the ADD is in flight waits for it, then removes everything.
#[test]
fn del_during_add_waits_and_removes_the_complete_pod() {
    let (h, conf) = setup(true, false);
    let conf = conf.build();
    let pod = h.sandbox();

    let add = h.runtime.spawn(h.runtime.call("ADD", &pod, &conf));
    // rec-a (net2) sleeping in its ADD: multus holds the lock, eth0 and net1 are there.
    wait_for_file(&in_flight_marker(
        &h.dirs.record_file(),
        "ADD",
        &pod.container_id,
        "net2",
    ));
    let del = h.runtime.spawn(h.runtime.call("DEL", &pod, &conf));
    let add = add.wait();
    let del = del.wait();
    add.success();
    del.empty_success();

    let records = read_records(&h.dirs.record_file());
    assert!(
        assert_serialised(&records, &pod),
        "the ADD held the lock first"
    );
    // The DEL saw the complete record: both recorders got the ADD's result as prevResult.
    for record in calls(&records, &pod.container_id, "DEL") {
        assert!(
            record.stdin.get("prevResult").is_some(),
            "{} ran without the ADD's result",
            record.summary()
        );
    }
    h.assert_nothing_leaked(&[&pod]);
}

/// A DEL that runs first (nothing recorded yet) makes the ADD wait; the ADD then
/// attaches a complete pod, which a final DEL removes.
#[test]
fn add_during_del_waits_and_attaches_a_complete_pod() {
    let (h, conf) = setup(false, true);
    let conf = conf.build();
    let pod = h.sandbox();

    let del = h.runtime.spawn(h.runtime.call("DEL", &pod, &conf));
    // rec-a (net2) sleeping in its DEL: multus holds the lock.
    let marker = in_flight_marker(&h.dirs.record_file(), "DEL", &pod.container_id, "net2");
    wait_for_file(&marker);
    std::fs::remove_file(&marker).expect("reset the marker for the final DEL");
    let add = h.runtime.spawn(h.runtime.call("ADD", &pod, &conf));
    let del = del.wait();
    let add = add.wait();
    del.empty_success();
    let result = add.success();

    let records = read_records(&h.dirs.record_file());
    assert!(
        !assert_serialised(&records, &pod),
        "the DEL held the lock first"
    );
    assert_eq!(pod.netns.link_names(), ["eth0", "lo", "net1"]);
    let state = h.dirs.state(&pod.container_id).expect("complete record");
    assert_eq!(state["phase"], "added");

    h.runtime.del(&pod, &conf, Some(&result)).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}

/// ADD and DEL started at the same instant, several times: whichever wins, they never
/// interleave, and after a final DEL nothing is left.
#[test]
fn add_and_del_at_once_are_serialised_and_leave_nothing() {
    let (h, conf) = setup(false, false);
    let conf = conf.build();
    let h = Arc::new(h);
    let mut pods = Vec::new();
    for _ in 0..4 {
        let pod = h.sandbox();
        let barrier = Arc::new(Barrier::new(2));
        let run = |command: &'static str| {
            let (h, pod, conf, barrier) = (
                Arc::clone(&h),
                pod.clone(),
                conf.clone(),
                Arc::clone(&barrier),
            );
            std::thread::spawn(move || -> CniOutput {
                barrier.wait();
                h.runtime.run(h.runtime.call(command, &pod, &conf))
            })
        };
        let add = run("ADD");
        let del = run("DEL");
        add.join().expect("ADD thread").success();
        del.join().expect("DEL thread").empty_success();

        let records = read_records(&h.dirs.record_file());
        let add_first = assert_serialised(&records, &pod);
        eprintln!(
            "{}: {} ran first",
            pod.container_id,
            if add_first { "ADD" } else { "DEL" }
        );
        let recorded = h.dirs.state(&pod.container_id);
        if add_first {
            // The DEL removed the complete pod.
            assert!(recorded.is_none(), "{recorded:?}");
            assert_eq!(pod.netns.link_names(), ["lo"]);
        } else {
            // The ADD came second and attached the complete pod.
            let recorded: Value = recorded.expect("the ADD's record");
            assert_eq!(recorded["phase"], "added");
            assert_eq!(pod.netns.link_names(), ["eth0", "lo", "net1"]);
        }
        h.runtime.del(&pod, &conf, None).empty_success();
        pods.push(pod);
    }
    let pods: Vec<&Sandbox> = pods.iter().collect();
    h.assert_nothing_leaked(&pods);
}

/// Two slow ADDs of different containers run at the same time: their slow delegate
/// calls overlap.
#[test]
fn adds_of_different_containers_run_in_parallel() {
    let (h, conf) = setup(true, false);
    let conf = conf.build();
    let first = h.sandbox();
    let second = h.sandbox();

    let a = h.runtime.spawn(h.runtime.call("ADD", &first, &conf));
    let b = h.runtime.spawn(h.runtime.call("ADD", &second, &conf));
    let result_a = a.wait().success();
    let result_b = b.wait().success();

    let records = read_records(&h.dirs.record_file());
    let slow = |pod: &Sandbox| {
        records
            .iter()
            .find(|r| {
                r.command == "ADD" && r.tag() == "rec-a" && r.container_id == pod.container_id
            })
            .unwrap_or_else(|| {
                panic!(
                    "no slow ADD of {}: {:?}",
                    pod.container_id,
                    summaries(&records)
                )
            })
    };
    let (slow_a, slow_b) = (slow(&first), slow(&second));
    assert!(
        slow_a.overlaps(slow_b),
        "the two ADDs ran one after the other: [{}, {}] and [{}, {}]",
        slow_a.started_at_ms,
        slow_a.finished_at_ms,
        slow_b.started_at_ms,
        slow_b.finished_at_ms
    );

    h.runtime
        .del(&first, &conf, Some(&result_a))
        .empty_success();
    h.runtime
        .del(&second, &conf, Some(&result_b))
        .empty_success();
    h.assert_nothing_leaked(&[&first, &second]);
}
