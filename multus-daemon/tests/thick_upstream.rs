//! Thick mode, coming from upstream Go Multus: a pod upstream attached (its scratch cache
//! and libcni's result cache in the same `cniDir`, no multus-rs record) is torn down
//! completely by the daemon on the runtime's DEL through the shim, with the pod gone.
//! Needs root and `containernetworking-plugins`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use multus_integration_tests::thick as support;

use multus_integration_tests::fixtures::macvlan_conf;
use multus_integration_tests::upstream::{self, Delegate, Release};
use multus_integration_tests::{MACVLAN_NAD, NODE_BRIDGE};
use support::{Thick, plugin_stdin};

#[test]
fn del_through_the_daemon_tears_down_what_upstream_attached() {
    let mut thick = Thick::new(false);
    let version = "1.0.0";
    let nets = thick.h.standard_networks(version);
    let dirs = &thick.h.dirs;
    let cluster = thick.h.cluster_conf(version, &nets);
    let macvlan = macvlan_conf(version, MACVLAN_NAD, NODE_BRIDGE, nets.macnet, dirs);
    thick.write_primary("10-cluster.conf", &cluster);
    thick.start_daemon();
    let conf = plugin_stdin(&thick.wait_generated("00-multus.conflist", |_| true));
    let pod = thick.h.sandbox();
    let attached = upstream::attach(
        &thick.h,
        &pod,
        &[Delegate::cluster(cluster), Delegate::nad(macvlan, None)],
        Release::V4_3_0,
    );
    assert_eq!(pod.netns.link_names(), ["eth0", "lo", "net1"]);

    // The pod is gone: the runtime passes no annotations.
    thick.shim.del(&pod, &conf, None).empty_success();
    thick.h.assert_nothing_leaked(&[&pod]);
    assert!(
        attached.remaining().is_empty(),
        "upstream's cache files are left: {:?}",
        attached.remaining()
    );
    assert!(
        thick
            .daemon_log()
            .contains("using the cache upstream Multus wrote for this sandbox"),
        "{}",
        thick.daemon_log()
    );
}
