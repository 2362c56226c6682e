//! Delegates that misbehave, run by the real `multus` with real plugins in real
//! namespaces:
//!
//! - a delegate printing without end (1 GiB) fails once it passes the output cap
//!   (4 MiB), the ADD is rolled back, and multus' own memory stays small;
//! - a delegate that forks a grandchild and then hangs is killed at the delegate
//!   timeout together with the grandchild (its whole process group), and the ADD is
//!   rolled back.

// Test code: a panic (`expect`, `unwrap`, `panic!`) in a helper is a test failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::time::{Duration, Instant};

use multus_integration_tests::fixtures::{
    assert_grandchild_gone, hanging_forker_script, loud_script, peak_rss_kib,
};
use multus_integration_tests::{BRIDGE_NAD, Harness};
use serde_json::json;

const VERSION: &str = "1.0.0";
/// multus' peak memory must stay under this while a delegate prints 1 GiB.
const RSS_BOUND_KIB: u64 = 64 * 1024;

#[test]
fn a_delegate_printing_past_the_cap_fails_and_is_rolled_back_in_bounded_memory() {
    for (plugin, to_stderr, stream) in [("loud", false, "stdout"), ("noisy", true, "stderr")] {
        let h = Harness::new();
        let nets = h.standard_networks(VERSION);
        h.dirs
            .install_script(plugin, &loud_script(1 << 30, to_stderr));
        h.dirs.write_nad_json(
            plugin,
            &json!({"cniVersion": VERSION, "name": plugin, "type": plugin}),
        );
        let conf = h
            .multus_config(VERSION, &nets)
            .set("binDir", json!(h.dirs.bin_dir()))
            .networks(&format!("{BRIDGE_NAD}, {plugin}"))
            .build();
        let pod = h.sandbox();

        let running = h.runtime.spawn(h.runtime.call("ADD", &pod, &conf));
        let pid = running.multus_pid();
        let mut peak = 0;
        while let Some(kib) = peak_rss_kib(pid) {
            peak = peak.max(kib);
            std::thread::sleep(Duration::from_millis(2));
        }
        let out = running.wait();
        out.error_with_code(100).assert_msg_contains(&[
            &format!("default/{plugin}"),
            &format!("printed more than 4194304 bytes on {stream}"),
        ]);
        assert!(
            peak < RSS_BOUND_KIB,
            "multus grew to {peak} KiB while {plugin} printed on {stream}"
        );
        h.assert_nothing_leaked(&[&pod]);
    }
}

#[test]
fn a_hanging_delegate_is_killed_with_its_grandchild_at_the_timeout() {
    let h = Harness::new();
    let nets = h.standard_networks(VERSION);
    let pid_file = h.dirs.root().join("grandchild.pid");
    h.dirs
        .install_script("forky", &hanging_forker_script(&pid_file));
    h.dirs.write_nad_json(
        "forky",
        &json!({"cniVersion": VERSION, "name": "forky", "type": "forky"}),
    );
    let conf = h
        .multus_config(VERSION, &nets)
        .set("binDir", json!(h.dirs.bin_dir()))
        .set("delegateTimeoutSeconds", json!(2))
        .networks(&format!("{BRIDGE_NAD}, forky"))
        .build();
    let pod = h.sandbox();

    let started = Instant::now();
    h.runtime
        .add(&pod, &conf)
        .error_with_code(100)
        .assert_msg_contains(&["default/forky", "did not finish within 2 s"]);
    assert!(started.elapsed() < Duration::from_secs(60));
    assert_grandchild_gone(&pid_file);
    h.assert_nothing_leaked(&[&pod]);
}
