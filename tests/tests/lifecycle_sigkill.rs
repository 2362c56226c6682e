//! Fault 6: `multus` killed with SIGKILL in the middle of an ADD, then the runtime's DEL.
//!
//! The pod gets two real bridges (the cluster network eth0 and NAD `brnet` net1) and,
//! last, a `cni-recorder` network whose ADD sleeps. While that ADD is in flight (the
//! recorder says so through its marker file), the `multus` process itself is killed
//! with SIGKILL: the pod is half attached (eth0 and net1 with their leases) and the
//! record says `adding`. The runtime's DEL then releases everything from the record,
//! nothing is left, and the lock the killed process held is not stale: the DEL and a
//! new ADD for the same container ID run at once (each bounded by a timeout).
//!
//! `ip netns exec <node> multus` enters the node namespace and then execs `multus` in
//! the same process, so the pid of the spawned child is `multus`' pid (checked through
//! `/proc/<pid>/exe` before the kill).
//!
//! The killed multus' delegate (the sleeping recorder) dies with it: multus starts its
//! delegates with a parent-death signal, so no orphan goes on attaching things after
//! the runtime's DEL has cleaned up. The test asserts the delegate is gone long before
//! its sleep would have ended.

// Test code: a panic (`expect`, `unwrap`, `panic!`) in a helper is a test failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::path::Path;
use std::time::{Duration, Instant};

use multus_integration_tests::fixtures::{process_gone, recorder_conf};
use multus_integration_tests::recording::{in_flight_marker, read_records, summaries};
use multus_integration_tests::{BRIDGE_NAD, Harness};
use serde_json::json;

const VERSION: &str = "1.0.0";
/// How long the recorder's ADD sleeps: long enough to kill multus during it.
const SLEEP_MS: u64 = 3000;

/// Wait until `path` exists with content, and return it.
fn wait_for_file(path: &Path, timeout: Duration) -> String {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(text) = std::fs::read_to_string(path)
            && !text.is_empty()
        {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{} did not appear within {timeout:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn sigkill_during_add_then_del_releases_everything_and_leaves_no_stale_lock() {
    let h = Harness::new();
    let nets = h.standard_networks(VERSION);
    h.dirs.install_recorder("recorder");
    let mut slow = recorder_conf(VERSION, "slow", "slow", &h.dirs);
    slow["sleepOnAdd"] = json!(SLEEP_MS);
    h.dirs.write_nad_json("slow", &slow);
    let base = h
        .multus_config(VERSION, &nets)
        .set("binDir", json!(h.dirs.bin_dir()));
    let conf = base
        .clone()
        .networks(&format!("{BRIDGE_NAD}, slow"))
        .build();
    let pod = h.sandbox();

    let mut add = h.runtime.spawn(h.runtime.call("ADD", &pod, &conf));
    let marker = in_flight_marker(&h.dirs.record_file(), "ADD", &pod.container_id, "net2");
    let delegate_pid: u32 = wait_for_file(&marker, Duration::from_secs(30))
        .trim()
        .parse()
        .expect("the recorder writes its pid");
    let multus_pid = add.multus_pid();
    add.kill();
    let killed = add.wait();
    assert_eq!(killed.code, -1, "killed by a signal:\n{killed:?}");
    assert!(killed.stdout.is_empty(), "{killed:?}");
    assert!(process_gone(multus_pid));

    // Half attached: both bridges, their leases, and a record in phase `adding`.
    assert_eq!(pod.netns.link_names(), ["eth0", "lo", "net1"]);
    assert_eq!(h.dirs.leases().len(), 2, "{:?}", h.dirs.leases());
    let record = h
        .dirs
        .state(&pod.container_id)
        .expect("the plan was recorded before the first delegate ran");
    assert_eq!(record["phase"], "adding", "{record:#}");
    assert_eq!(record["attachments"].as_array().map(Vec::len), Some(3));

    // The delegate died with multus, long before its sleep would have ended.
    let deadline = Instant::now() + Duration::from_millis(SLEEP_MS / 2);
    while !process_gone(delegate_pid) {
        assert!(
            Instant::now() < deadline,
            "the recorder {delegate_pid} outlived the multus that started it"
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // The runtime's DEL: the killed process' lock is not stale, the record drives it.
    let del = h
        .runtime
        .run_within(h.runtime.call("DEL", &pod, &conf), Duration::from_secs(30))
        .expect("DEL after the kill must not wait on the dead process' lock");
    del.empty_success();
    h.assert_nothing_leaked(&[&pod]);
    let records = read_records(&h.dirs.record_file());
    assert_eq!(
        summaries(&records).last().map(String::as_str),
        Some("DEL slow"),
        "the DEL reached the delegate that was in flight: {:?}",
        summaries(&records)
    );

    // A new ADD for the same container ID does not hang either, and completes.
    let quick = base.networks(BRIDGE_NAD).build();
    let again = h
        .runtime
        .run_within(h.runtime.call("ADD", &pod, &quick), Duration::from_secs(30))
        .expect("ADD for the same container ID must not hang");
    let result = again.success();
    assert_eq!(pod.netns.link_names(), ["eth0", "lo", "net1"]);
    h.runtime.del(&pod, &quick, Some(&result)).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}

/// The lock alone: kill multus while it holds the lock mid-ADD, then take the lock at
/// once with a DEL, without waiting for the orphaned delegate.
#[test]
fn sigkill_during_add_leaves_no_stale_lock() {
    let h = Harness::new();
    let nets = h.standard_networks(VERSION);
    h.dirs.install_recorder("recorder");
    let mut slow = recorder_conf(VERSION, "slow", "slow", &h.dirs);
    slow["sleepOnAdd"] = json!(SLEEP_MS);
    h.dirs.write_nad_json("slow", &slow);
    let conf = h
        .multus_config(VERSION, &nets)
        .set("binDir", json!(h.dirs.bin_dir()))
        .networks("slow")
        .build();
    let pod = h.sandbox();

    let mut add = h.runtime.spawn(h.runtime.call("ADD", &pod, &conf));
    let marker = in_flight_marker(&h.dirs.record_file(), "ADD", &pod.container_id, "net1");
    wait_for_file(&marker, Duration::from_secs(30));
    add.multus_pid();
    assert!(
        h.dirs.lock_path(&pod.container_id).exists(),
        "multus holds the lock"
    );
    add.kill();
    add.wait();

    // Well within the orphan's sleep: the lock died with multus.
    let started = Instant::now();
    h.runtime
        .run_within(h.runtime.call("DEL", &pod, &conf), Duration::from_secs(30))
        .expect("the lock of a killed multus is not stale")
        .empty_success();
    assert!(
        started.elapsed() < Duration::from_millis(SLEEP_MS),
        "DEL waited {:?}: on the orphan?",
        started.elapsed()
    );
    h.assert_nothing_leaked(&[&pod]);
}

/// Parallel attach: the delegates run at once, each started from a thread of its own;
/// killing multus kills every one of them (the parent-death signal follows the thread
/// that started a delegate, and that thread lives until the delegate is reaped).
#[test]
fn sigkill_during_a_parallel_add_kills_every_delegate_in_flight() {
    let h = Harness::new();
    let nets = h.standard_networks(VERSION);
    h.dirs.install_recorder("recorder");
    for name in ["slow1", "slow2"] {
        let mut slow = recorder_conf(VERSION, name, name, &h.dirs);
        slow["sleepOnAdd"] = json!(SLEEP_MS);
        h.dirs.write_nad_json(name, &slow);
    }
    let conf = h
        .multus_config(VERSION, &nets)
        .set("binDir", json!(h.dirs.bin_dir()))
        .set("parallelAttach", json!(true))
        .set("parallelAttachLimit", json!(2))
        .networks("slow1, slow2")
        .build();
    let pod = h.sandbox();

    let mut add = h.runtime.spawn(h.runtime.call("ADD", &pod, &conf));
    let pids: Vec<u32> = ["net1", "net2"]
        .iter()
        .map(|ifname| {
            let marker = in_flight_marker(&h.dirs.record_file(), "ADD", &pod.container_id, ifname);
            wait_for_file(&marker, Duration::from_secs(30))
                .trim()
                .parse()
                .expect("the recorder writes its pid")
        })
        .collect();
    let multus_pid = add.multus_pid();
    add.kill();
    assert_eq!(add.wait().code, -1);
    assert!(process_gone(multus_pid));
    let deadline = Instant::now() + Duration::from_millis(SLEEP_MS / 2);
    for pid in pids {
        while !process_gone(pid) {
            assert!(
                Instant::now() < deadline,
                "the recorder {pid} outlived the multus that started it"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    h.runtime
        .run_within(h.runtime.call("DEL", &pod, &conf), Duration::from_secs(30))
        .expect("DEL after the kill")
        .empty_success();
    h.assert_nothing_leaked(&[&pod]);
}
