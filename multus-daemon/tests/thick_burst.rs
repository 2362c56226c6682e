//! A burst of 200 concurrent ADDs: every one succeeds (the daemon queues what it
//! cannot run yet and turns away what it cannot queue; the shim retries those), and
//! the daemon's resident memory stays bounded.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use multus_integration_tests::thick as support;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use multus_integration_tests::binaries::SYSTEM_PATH;
use multus_integration_tests::command::start_with_stdin;
use multus_integration_tests::fixtures;
use serde_json::json;
use support::{Thick, built};

const BURST: usize = 200;
/// Resident memory the daemon may gain during the burst. The work in the daemon is
/// bounded by admission (2 x CPUs requests running, 64 queued, each holding a request
/// of a few KiB and one engine run; the rest is turned away with 503 and waits in the
/// shims), so the growth is a few MiB of allocator and thread stacks, independent of
/// the burst size (about 6 MiB measured in a debug build); 32 MiB leaves room for the
/// allocator's arenas on a machine with more CPUs.
const RSS_GROWTH_BOUND_KIB: u64 = 32 * 1024;

fn run_shims(
    thick: &Thick,
    conf: &serde_json::Value,
    command: &str,
    netns: &str,
) -> Vec<(i32, String)> {
    let shim = built("multus-shim");
    let children: Vec<_> = (0..BURST)
        .map(|i| {
            start_with_stdin(
                Command::new(&shim)
                    .env_clear()
                    .env("PATH", SYSTEM_PATH)
                    .env("CNI_COMMAND", command)
                    .env(
                        "CNI_CONTAINERID",
                        format!("burst{}x{i}", std::process::id()),
                    )
                    .env("CNI_NETNS", netns)
                    .env("CNI_IFNAME", "eth0")
                    .env(
                        "CNI_ARGS",
                        format!("IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=burst-{i}"),
                    )
                    .env("CNI_PATH", thick.h.dirs.bin_dir()),
                conf.to_string().as_bytes(),
            )
        })
        .collect();
    children
        .into_iter()
        .map(|child| {
            let out = child.wait_with_output().unwrap();
            (
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stdout).into_owned(),
            )
        })
        .collect()
}

#[test]
fn burst_of_200_adds_all_succeed_with_bounded_memory() {
    let mut thick = Thick::new(false);
    thick.h.dirs.install_recorder("recorder");
    // The shims wait for a busy daemon up to 2 minutes.
    thick.set("daemonReadyTimeoutSeconds", json!(120));
    let primary = thick.write_primary(
        "10-rec.conf",
        &fixtures::recorder_conf("1.0.0", "rec", "burst", &thick.h.dirs),
    );
    thick.start_daemon();
    let generated = thick.wait_generated("00-multus.conflist", |_| true);
    let conf = support::plugin_stdin(&generated);
    assert_eq!(conf["clusterNetwork"], primary.display().to_string());
    // The recorder creates nothing: every sandbox can share one namespace.
    let pod = thick.h.sandbox();
    let netns = pod.netns.path_string();

    let daemon_pid = thick.daemon.as_ref().unwrap().pid();
    let rss = |pid: u32| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    };
    // Warm up (first request, thread pools), then take the idle figure.
    let warm = thick.h.sandbox();
    thick.shim.add(&warm, &conf).success();
    thick.shim.del(&warm, &conf, None).empty_success();
    let idle = rss(daemon_pid);
    let peak = Arc::new(AtomicU64::new(idle));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss(daemon_pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    let adds = run_shims(&thick, &conf, "ADD", &netns);
    let dels = run_shims(&thick, &conf, "DEL", &netns);
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();

    let failed: Vec<_> = adds.iter().filter(|(code, _)| *code != 0).collect();
    assert!(
        failed.is_empty(),
        "{} ADDs failed, e.g. {:?}",
        failed.len(),
        failed.first()
    );
    for (_, stdout) in &adds {
        let result: serde_json::Value = serde_json::from_str(stdout).unwrap();
        assert_eq!(result["cniVersion"], "1.0.0");
    }
    assert!(
        dels.iter().all(|(code, _)| *code == 0),
        "{:?}",
        dels.iter().find(|(c, _)| *c != 0)
    );
    assert!(thick.h.dirs.sandbox_files().is_empty());

    let metrics = thick.metrics();
    let peak = peak.load(Ordering::Relaxed);
    eprintln!(
        "burst of {BURST} ADDs + {BURST} DELs: daemon RSS idle {idle} KiB, peak {peak} KiB; rejected (retried by the shims): {}",
        support::metric_value(
            &metrics,
            r#"multus_requests_rejected_total{reason="queue_full"}"#
        )
    );
    assert!(
        peak.saturating_sub(idle) < RSS_GROWTH_BOUND_KIB,
        "daemon RSS grew from {idle} KiB to {peak} KiB during the burst"
    );
    assert_eq!(
        support::metric_value(&metrics, "multus_requests_in_flight"),
        0.0
    );
    assert_eq!(
        support::metric_value(&metrics, "multus_requests_queued"),
        0.0
    );
}
