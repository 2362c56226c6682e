//! The thin plugin run by a real podman (Debian's 4.3, CNI backend): run, exec ping,
//! stop/start, rm, and a `defaultNetworks` entry that does not resolve.
//!
//! podman passes no Kubernetes namespace and no annotations (only
//! `K8S_POD_NAME=<container name>`), so only `defaultNetworks` apply, resolved in
//! `multusNamespace`. Every test ends checking that nothing is left: no container or
//! podman process, host-side veth, host-local lease, multus record or lock file.
//!
//! Needs `scripts/install-runtimes.sh` (podman, runc, busybox-static); a missing piece
//! is a failure, never a skip.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use multus_integration_tests::binaries::Binaries;
use multus_integration_tests::netns::run;
use multus_integration_tests::podman::{NETWORK, Podman};
use multus_integration_tests::{BRIDGE_NAD, Harness, StandardNetworks};
use serde_json::{Value, json};

/// podman speaks CNI up to 1.0.0 through its vendored libcni; 0.4.0 is what its own
/// networks use.
const VERSION: &str = "0.4.0";

/// multus' config list for podman: the cluster network plus `defaultNetworks`, NADs
/// resolved in `default` (`multusNamespace`), no annotations to expect.
fn multus_conflist(h: &Harness, nets: &StandardNetworks, default_networks: &[&str]) -> Value {
    let mut conf = h
        .multus_config(VERSION, nets)
        .set("defaultNetworks", json!(default_networks))
        .set("multusNamespace", json!("default"))
        .set("podAnnotationsFrom", json!("none"))
        .set("logLevel", json!("error"))
        .set("logFile", json!(h.dirs.root().join("multus.log")))
        .build();
    let object = conf.as_object_mut().expect("an object");
    object.remove("name");
    let version = object.remove("cniVersion").expect("cniVersion");
    json!({"cniVersion": version, "name": NETWORK, "plugins": [conf]})
}

fn address_in(
    podman: &Podman,
    name: &str,
    ifname: &str,
    subnet: multus_integration_tests::fixtures::Subnet,
) -> String {
    let out = podman
        .exec(name, &["ip", "-4", "-o", "addr", "show", ifname])
        .expect_success(&format!("ip addr in {name}"));
    out.split_whitespace()
        .filter_map(|word| word.split('/').next())
        .find(|ip| subnet.contains(ip))
        .unwrap_or_else(|| panic!("{name} {ifname} has no address in {}: {out}", subnet.cidr()))
        .to_owned()
}

#[test]
fn containers_get_the_default_networks_ping_restart_and_leave_nothing() {
    let h = Harness::new();
    let nets = h.standard_networks(VERSION);
    let podman = Podman::new(&h.node, &multus_conflist(&h, &nets, &[BRIDGE_NAD]));
    for name in ["c1", "c2"] {
        podman
            .run_container(name)
            .expect_success(&format!("podman run {name}"));
    }
    let c1_record = podman.container_id("c1");
    let state = h.dirs.state(&c1_record).expect("multus recorded c1");
    assert_eq!(state["podName"], "c1", "{state:#}");
    assert_eq!(state["podNamespace"], "", "podman passes no namespace");

    for (ifname, subnet) in [("eth0", nets.cluster), ("net1", nets.brnet)] {
        let ip = address_in(&podman, "c2", ifname, subnet);
        podman
            .exec("c1", &["ping", "-c", "1", "-W", "5", &ip])
            .expect_success(&format!("ping {ip} ({ifname}) from c1"));
    }

    // `multus-ctl pod` finds a container without namespace by its name.
    let ctl = Binaries::get().multus.with_file_name("multus-ctl");
    let cni_dir = h.dirs.cni_dir();
    let out = run(
        &ctl,
        &[
            "--no-api",
            "pod",
            "c1",
            "--cni-dir",
            cni_dir.to_str().unwrap(),
            "-o",
            "json",
        ],
    );
    assert_eq!(
        out.code, 0,
        "multus-ctl pod c1: {}{}",
        out.stdout, out.stderr
    );
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(
        report["plan"]["containerId"],
        c1_record.as_str(),
        "{report:#}"
    );

    podman
        .run(&["stop", "-t", "0", "c1"])
        .expect_success("podman stop c1");
    assert!(
        h.dirs.state(&c1_record).is_none(),
        "stop deletes c1's networks"
    );
    podman
        .run(&["start", "c1"])
        .expect_success("podman start c1");
    let ip = address_in(&podman, "c2", "net1", nets.brnet);
    podman
        .exec("c1", &["ping", "-c", "1", "-W", "5", &ip])
        .expect_success("ping after restart");

    for name in ["c1", "c2"] {
        podman
            .run(&["rm", "-f", "-t", "0", name])
            .expect_success(&format!("podman rm {name}"));
    }
    podman.assert_nothing_left();
    h.assert_nothing_leaked(&[]);
}

/// `podman run` with a `defaultNetworks` entry that does not resolve: the run fails
/// naming it, and nothing is attached or left running. The harness of both tests below.
fn run_with_an_unresolvable_default_network() -> (Harness, Podman) {
    let h = Harness::new();
    let nets = h.standard_networks(VERSION);
    let podman = Podman::new(
        &h.node,
        &multus_conflist(&h, &nets, &[BRIDGE_NAD, "gone-net"]),
    );
    let out = podman.run_container("bad");
    assert_ne!(
        out.code, 0,
        "a default network that does not resolve fails the run"
    );
    assert!(out.stderr.contains("gone-net"), "{}", out.stderr);
    podman.run(&["rm", "-f", "-t", "0", "bad"]);
    podman.assert_nothing_left();
    h.assert_released(&[]);
    let records: Vec<_> = h
        .dirs
        .sandbox_files()
        .into_iter()
        .filter(|f| f.extension().is_some_and(|e| e == "json"))
        .collect();
    assert!(records.is_empty(), "records left: {records:?}");
    (h, podman)
}

#[test]
fn an_unresolvable_default_network_fails_run_and_attaches_nothing() {
    run_with_an_unresolvable_default_network();
}

/// Issue 13 item 2: not even the lock file of the failed ADD is left.
#[test]
fn an_unresolvable_default_network_leaves_no_lock_file() {
    let (h, _podman) = run_with_an_unresolvable_default_network();
    h.assert_nothing_leaked(&[]);
}
