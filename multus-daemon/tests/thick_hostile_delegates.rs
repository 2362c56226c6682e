//! Hostile delegates and clients against the real daemon in a node namespace:
//!
//! - a delegate printing without end fails once past the output cap, the ADD is rolled
//!   back and the daemon's memory stays bounded;
//! - a hanging delegate that forked a grandchild is killed with it at the timeout;
//! - with a low open-file limit, 1,000 idle connections neither stall nor starve the
//!   daemon: `/healthz` and a real ADD/DEL are still served, and an idle connection is
//!   closed after the header timeout.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use multus_integration_tests::thick as support;

use std::io::Read;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use multus_integration_tests::CLUSTER_NETWORK;
use multus_integration_tests::fixtures::{
    self, Subnet, assert_grandchild_gone, hanging_forker_script, loud_script, peak_rss_kib,
};
use serde_json::{Value, json};
use support::{Thick, plugin_stdin};

/// The daemon's peak memory must stay under this while a delegate prints 1 GiB.
const RSS_BOUND_KIB: u64 = 160 * 1024;

/// A node whose cluster network is a list: a real bridge, then `plugin`.
fn node_with_list(thick: &mut Thick, plugin: &str) -> Value {
    let subnet = Subnet::unique();
    thick.write_primary(
        "10-cluster.conflist",
        &json!({"cniVersion":"1.0.0","name":CLUSTER_NETWORK,"plugins":[
            fixtures::bridge_conf("1.0.0", CLUSTER_NETWORK, "mrs-cbr0", subnet, true, &thick.h.dirs),
            {"type": plugin}
        ]}),
    );
    thick.start_daemon();
    plugin_stdin(&thick.wait_generated("00-multus.conflist", |_| true))
}

#[test]
fn a_delegate_printing_past_the_cap_fails_and_the_daemon_stays_small() {
    let mut thick = Thick::new(false);
    thick
        .h
        .dirs
        .install_script("loud", &loud_script(1 << 30, false));
    let conf = node_with_list(&mut thick, "loud");
    let pod = thick.h.sandbox();
    thick
        .shim
        .add(&pod, &conf)
        .error_with_code(100)
        .assert_msg_contains(&["loud", "printed more than 4194304 bytes on stdout"]);
    let pid = thick.daemon.as_ref().unwrap().pid();
    let peak = peak_rss_kib(pid).expect("the daemon is running");
    assert!(
        peak < RSS_BOUND_KIB,
        "the daemon grew to {peak} KiB while a delegate printed 1 GiB"
    );
    thick.shim.del(&pod, &conf, None).empty_success();
    thick.h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn a_hanging_delegate_is_killed_with_its_grandchild_at_the_timeout() {
    let mut thick = Thick::new(false);
    thick.set("delegateTimeoutSeconds", json!(2));
    let pid_file = thick.h.dirs.root().join("grandchild.pid");
    thick
        .h
        .dirs
        .install_script("forky", &hanging_forker_script(&pid_file));
    let conf = node_with_list(&mut thick, "forky");
    let pod = thick.h.sandbox();
    thick
        .shim
        .add(&pod, &conf)
        .error_with_code(100)
        .assert_msg_contains(&["forky", "did not finish within 2 s"]);
    assert_grandchild_gone(&pid_file);
    thick.shim.del(&pod, &conf, None).empty_success();
    thick.h.assert_nothing_leaked(&[&pod]);
}

/// Raise this test process' own soft open-file limit so it can hold the connections.
fn raise_own_fd_limit(at_least: u64) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    if soft < at_least {
        assert!(
            hard >= at_least,
            "the hard open file limit {hard} is too low"
        );
        setrlimit(Resource::RLIMIT_NOFILE, at_least, hard).unwrap();
    }
}

#[test]
fn idle_connections_do_not_stall_a_daemon_with_a_low_fd_limit() {
    raise_own_fd_limit(4096);
    let mut thick = Thick::new(false);
    thick.h.dirs.install_recorder("recorder");
    thick.fd_limit = Some((64, 256));
    thick.write_primary(
        "10-rec.conf",
        &fixtures::recorder_conf("1.0.0", "rec", "cluster", &thick.h.dirs),
    );
    thick.start_daemon();
    let conf = plugin_stdin(&thick.wait_generated("00-multus.conflist", |_| true));
    assert!(
        thick.daemon_log().contains("raised the open file limit"),
        "{}",
        thick.daemon_log()
    );

    let idle: Vec<UnixStream> = (0..1000)
        .map(|_| UnixStream::connect(thick.socket()).unwrap())
        .collect();

    let started = Instant::now();
    assert_eq!(thick.client().get("/healthz").unwrap().status, 200);
    let pod = thick.h.sandbox();
    let result = thick.shim.add(&pod, &conf).success();
    thick.shim.del(&pod, &conf, Some(&result)).empty_success();
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "served only after {:?}",
        started.elapsed()
    );

    // A connection that sends nothing is closed after the header timeout.
    drop(idle);
    let mut silent = UnixStream::connect(thick.socket()).unwrap();
    silent
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let opened = Instant::now();
    let mut byte = [0u8; 1];
    assert_eq!(
        silent.read(&mut byte).expect("closed, not timed out"),
        0,
        "the daemon closes a silent connection"
    );
    assert!(
        opened.elapsed() >= Duration::from_secs(4),
        "closed after {:?}, before the header timeout",
        opened.elapsed()
    );
    thick.h.assert_nothing_leaked(&[&pod]);
}
