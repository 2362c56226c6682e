//! Thick mode run by a real containerd (Debian's 1.6, its CRI plugin) driven through
//! the CRI v1 API: containerd loads the `00-multus.conflist` the daemon generates (its
//! CNI conf dir is the daemon's `cniConfigDir`) and executes `multus-shim`, which
//! forwards to `multus-daemon`. NADs are files; the pod's annotations reach the daemon
//! only through containerd's runtimeConfig, which containerd passes only because the
//! generated conf declares `io.kubernetes.cri.pod-annotations` (issue 13 item 4).
//!
//! Also the daemon's failures as the runtime sees them: a restart with a running pod,
//! the daemon down during RunPodSandbox (containerd's own rollback DEL fails too, the
//! sandbox stays NOTREADY: the next Stop/Remove with the daemon back cleans up) and
//! during StopPodSandbox. Every test ends checking that nothing is left: no sandbox,
//! shim, sandbox namespace, veth, lease, record, lock or pending-DEL marker.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use multus_integration_tests::thick as support;

use multus_integration_tests::binaries::Binaries;
use multus_integration_tests::cri::{Containerd, PodSpec, SandboxStatus};
use multus_integration_tests::fixtures::{self, Subnet};
use multus_integration_tests::{BRIDGE_NAD, CLUSTER_NETWORK, MACVLAN_NAD, StandardNetworks};
use serde_json::json;
use support::{Thick, built};

const VERSION: &str = "1.0.0";

/// A thick node (file-based NADs, the standard networks) whose daemon runs and has
/// generated `00-multus.conflist`, and a containerd loading it.
fn node() -> (Thick, StandardNetworks, Containerd) {
    let mut thick = Thick::new(false);
    let nets = thick.h.standard_networks(VERSION);
    thick.set("binDir", json!(Binaries::get().plugin_dir));
    thick.set("daemonReadyTimeoutSeconds", json!(2));
    thick.set("daemonUnreachableDelGraceSeconds", json!(600));
    thick.write_primary(
        "10-cluster.conflist",
        &json!({"cniVersion": VERSION, "name": CLUSTER_NETWORK, "plugins": [
            fixtures::bridge_conf(VERSION, CLUSTER_NETWORK, "mrs-cbr0", nets.cluster, true, &thick.h.dirs)
        ]}),
    );
    thick.start_daemon();
    let generated = thick.wait_generated("00-multus.conflist", |_| true);
    assert_eq!(
        generated["plugins"][0]["capabilities"]["io.kubernetes.cri.pod-annotations"], true,
        "file-based NADs: the generated conf must ask for the pod annotations: {generated:#}"
    );
    let ctrd =
        Containerd::start_with_conf_dir(&thick.h.node, &built("multus-shim"), &thick.net_d());
    (thick, nets, ctrd)
}

fn run_pod(thick: &Thick, ctrd: &Containerd, pod: &PodSpec) -> (String, SandboxStatus) {
    ctrd.run_ready(pod, &format!("daemon:\n{}", thick.daemon_log()))
}

fn address(status: &SandboxStatus, ifname: &str, subnet: Subnet) -> String {
    status.address(ifname, subnet)
}

fn assert_nothing_left(thick: &Thick, ctrd: &Containerd) {
    ctrd.assert_nothing_left();
    thick.h.assert_nothing_leaked(&[]);
    let pending = thick.h.dirs.cni_dir().join("shim-pending-del");
    let markers: Vec<_> = std::fs::read_dir(&pending)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(markers.is_empty(), "pending-DEL markers left: {markers:?}");
}

#[test]
fn two_pods_get_their_annotation_networks_through_the_daemon_and_leave_nothing() {
    let (thick, nets, ctrd) = node();
    let networks = format!("{MACVLAN_NAD},{BRIDGE_NAD}");
    let (a, sa) = run_pod(&thick, &ctrd, &PodSpec::new("a").networks(&networks));
    let (b, sb) = run_pod(&thick, &ctrd, &PodSpec::new("b").networks(&networks));
    for (ifname, subnet) in [
        ("eth0", nets.cluster),
        ("net1", nets.macnet),
        ("net2", nets.brnet),
    ] {
        address(&sa, ifname, subnet);
        let ip = address(&sb, ifname, subnet);
        sa.netns()
            .exec(&Binaries::get().ping, &["-c", "1", "-W", "5", &ip])
            .expect_success(&format!("ping {ip} ({ifname})"));
    }
    ctrd.stop_and_remove(&a);
    ctrd.stop_and_remove(&b);
    assert_nothing_left(&thick, &ctrd);
}

#[test]
fn unknown_network_and_failing_delegate_fail_the_sandbox_and_leave_nothing() {
    let (thick, _nets, ctrd) = node();
    let error = ctrd
        .run_pod(&PodSpec::new("unknown").networks(&format!("{BRIDGE_NAD},no-such-net")))
        .expect_err("an unknown network fails the sandbox");
    assert!(error.contains("no-such-net"), "{error}");
    thick.h.dirs.write_nad_json(
        "failnet",
        &fixtures::ipvlan_conf(
            VERSION,
            "failnet",
            "mrs-br0",
            Subnet::unique(),
            &thick.h.dirs,
        ),
    );
    let error = ctrd
        .run_pod(&PodSpec::new("fail").networks(&format!("{MACVLAN_NAD},failnet")))
        .expect_err("ipvlan fails on this kernel");
    assert!(error.contains("failnet"), "{error}");
    assert_nothing_left(&thick, &ctrd);
}

#[test]
fn a_daemon_restart_with_a_running_pod_loses_nothing() {
    let (mut thick, nets, ctrd) = node();
    let (id, status) = run_pod(&thick, &ctrd, &PodSpec::new("r").networks(BRIDGE_NAD));
    address(&status, "net1", nets.brnet);
    assert_eq!(thick.stop_daemon(), 0);
    thick.start_daemon();
    ctrd.stop_and_remove(&id);
    assert_nothing_left(&thick, &ctrd);
}

/// Issue 13 item 6: with the daemon down, the ADD fails and so does containerd's own
/// rollback DEL; the sandbox stays NOTREADY. The next Stop/Remove, with the daemon
/// back, cleans up everything, the pending-DEL marker included.
#[test]
fn daemon_down_during_run_then_stop_and_remove_with_the_daemon_back_clean_up() {
    let (mut thick, _nets, ctrd) = node();
    assert_eq!(thick.stop_daemon(), 0);
    let error = ctrd
        .run_pod(&PodSpec::new("down").networks(BRIDGE_NAD))
        .expect_err("no daemon: the ADD fails");
    assert!(!error.is_empty());
    let left = ctrd.pods();
    assert_eq!(left.len(), 1, "the failed sandbox stays: {left:?}");
    assert_eq!(ctrd.status(&left[0]).state, "SANDBOX_NOTREADY");
    let pending = thick.h.dirs.cni_dir().join("shim-pending-del");
    assert!(
        std::fs::read_dir(&pending).is_ok_and(|mut d| d.next().is_some()),
        "the failed rollback DEL is remembered in {}",
        pending.display()
    );
    thick.start_daemon();
    for id in left {
        ctrd.stop_and_remove(&id);
    }
    assert_nothing_left(&thick, &ctrd);
}

#[test]
fn daemon_down_during_stop_then_stop_again_with_the_daemon_back_cleans_up() {
    let (mut thick, nets, ctrd) = node();
    let (id, status) = run_pod(&thick, &ctrd, &PodSpec::new("s").networks(BRIDGE_NAD));
    address(&status, "net1", nets.brnet);
    assert_eq!(thick.stop_daemon(), 0);
    let error = ctrd
        .stop_pod(&id)
        .expect_err("no daemon: the DEL fails and StopPodSandbox with it");
    assert!(!error.is_empty());
    thick.start_daemon();
    ctrd.stop_and_remove(&id);
    assert_nothing_left(&thick, &ctrd);
}
