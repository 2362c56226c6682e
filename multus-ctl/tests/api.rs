//! multus-ctl against the Kubernetes API stand-in (HTTPS on loopback): pods and NADs read
//! through a kubeconfig, the API's view compared with the node's records, and an API
//! that refuses or is not there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

// `common::collapse` is the expression the table's snapshot names.
use k8s_standin::{Fault, StandIn};
use multus_integration_tests::command::{Output, run_in};
use multus_integration_tests::ctl::{self as common, ctl, ctl_binary, workdir};

/// The stand-in, with the NADs and pods the tests read.
fn standin() -> StandIn {
    let api = StandIn::start().expect("the API stand-in starts");
    api.create_nad(
        "default",
        "blue",
        r#"{"cniVersion":"1.0.0","name":"blue","type":"bridge","bridge":"br-blue","ipam":{"type":"host-local","subnet":"10.20.0.0/24"}}"#,
    )
    .unwrap();
    api.create_nad(
        "team-a",
        "no-ipam",
        r#"{"cniVersion":"1.0.0","type":"macvlan","master":"eth1"}"#,
    )
    .unwrap();
    api.create_nad(
        "team-b",
        "too-new",
        r#"{"cniVersion":"1.1.0","name":"too-new","type":"bridge","ipam":{}}"#,
    )
    .unwrap();
    api.create_pod(
        "team-a",
        "db",
        &[
            ("k8s.v1.cni.cncf.io/networks", "default/blue@data0, default/red"),
            (
                "k8s.v1.cni.cncf.io/network-status",
                r#"[{"name":"cluster","interface":"eth0","ips":["10.10.0.7"],"default":true,"dns":{}},{"name":"default/blue","interface":"data0","ips":["10.21.0.9"],"dns":{}}]"#,
            ),
        ],
    );
    api
}

fn kubeconfig_args(api: &StandIn) -> [String; 2] {
    [
        "--kubeconfig".to_owned(),
        api.kubeconfig().display().to_string(),
    ]
}

/// Replace what differs between runs (the kubeconfig's path, the server's port).
fn stable(api: &StandIn, text: &str) -> String {
    text.replace(&api.kubeconfig().display().to_string(), "<kubeconfig>")
        .replace(api.url(), "https://127.0.0.1:<port>")
}

fn run(dir: &Path, api: &StandIn, args: &[&str]) -> Output {
    let [flag, path] = kubeconfig_args(api);
    let mut all = vec![flag.as_str(), path.as_str()];
    all.extend_from_slice(args);
    ctl(dir, &all)
}

#[test]
fn nad_validate_reads_nads_from_the_api() {
    let api = standin();
    let work = workdir();
    let dir = work.path();
    let out = run(dir, &api, &["nad", "validate", "--all", "--bin-dir", "bin"]);
    let table = stable(&api, out.expect(1));
    insta::assert_snapshot!("api_nad_validate_all_table", table);
    let out = run(
        dir,
        &api,
        &[
            "nad",
            "validate",
            "--all",
            "-n",
            "team-a",
            "--bin-dir",
            "bin",
            "-o",
            "json",
        ],
    );
    out.expect(0);
    insta::assert_snapshot!("api_nad_validate_namespace_json", stable(&api, &out.stdout));
    // One by name.
    let out = run(
        dir,
        &api,
        &["nad", "validate", "team-b/too-new", "--bin-dir", "bin"],
    );
    assert!(
        out.expect(1).contains("does not support cniVersion 1.1.0"),
        "{}",
        out.stdout
    );
    // Unknown NAD: not found, one line.
    let out = run(dir, &api, &["nad", "validate", "team-b/nosuch"]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("team-b/nosuch not found through kubeconfig"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn pod_compares_the_api_with_the_record() {
    let api = standin();
    let work = workdir();
    let dir = work.path();
    // The record of team-a/db (fixture gone-2): its netns is gone, it attached
    // default/blue as data0 with 10.21.0.0/24 where the API's blue now says 10.20, and the
    // annotation also asks for default/red, which the record never attached.
    let out = run(dir, &api, &["pod", "team-a/db", "--cni-dir", "cni"]);
    let table = stable(&api, out.expect(1));
    let uid = api
        .get(&k8s_standin::PODS, "team-a", "db")
        .unwrap()
        .pointer("/metadata/uid")
        .unwrap()
        .as_str()
        .unwrap()
        .to_owned();
    insta::assert_snapshot!(
        "api_pod_table",
        common::collapse(&table.replace(&uid, "<uid>"))
    );
    let out = run(
        dir,
        &api,
        &["pod", "team-a/db", "--cni-dir", "cni", "-o", "json"],
    );
    out.expect(1);
    let json = stable(&api, &out.stdout).replace(&uid, "<uid>");
    insta::assert_snapshot!("api_pod_json", json);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let kinds: Vec<&str> = value["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "incomplete-add",
            "stale-state",
            "not-attached",
            "nad-changed"
        ]
    );
    assert_eq!(value["networkStatus"]["source"], "api");
    assert_eq!(value["requested"]["source"], "api");
}

#[test]
fn pod_known_to_only_one_side() {
    let api = standin();
    let work = workdir();
    let dir = work.path();
    // In the API, no record on this node.
    api.create_pod(
        "default",
        "lonely",
        &[("k8s.v1.cni.cncf.io/networks", "blue")],
    );
    let out = run(
        dir,
        &api,
        &["pod", "default/lonely", "--cni-dir", "cni", "-o", "json"],
    );
    out.expect(1);
    let value = out.json();
    assert_eq!(value["findings"][0]["kind"], "no-record", "{value:#}");
    // A record, but the pod is gone from the API.
    api.delete(&k8s_standin::PODS, "team-a", "db").unwrap();
    let out = run(
        dir,
        &api,
        &["pod", "team-a/db", "--cni-dir", "cni", "-o", "json"],
    );
    let value = out.json();
    assert!(
        value["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["kind"] == "not-in-api"),
        "{value:#}"
    );
    // Neither: not found.
    let out = run(dir, &api, &["pod", "default/nosuch", "--cni-dir", "cni"]);
    assert_eq!(out.code, 4, "{}", out.stderr);
    assert!(
        out.stderr.contains("not found through kubeconfig"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
}

#[test]
fn an_api_that_refuses_or_fails_is_reported_in_one_line() {
    let api = standin();
    let work = workdir();
    let dir = work.path();
    api.refuse(Some(403));
    let out = run(dir, &api, &["pod", "team-a/db", "--cni-dir", "cni"]);
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(out.stderr.contains("RBAC"), "{}", out.stderr);
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    api.refuse(None);
    api.fail_next(1, Fault::Status(500));
    let out = run(
        dir,
        &api,
        &["nad", "validate", "default/blue", "--bin-dir", "bin"],
    );
    assert_eq!(out.code, 3, "{}", out.stderr);
    assert!(
        out.stderr
            .contains("GET network-attachment-definition default/blue"),
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    // KUBECONFIG works as for kubectl.
    let path = api.kubeconfig().display().to_string();
    let out = run_in(
        &ctl_binary(),
        dir,
        &["nad", "validate", "default/blue", "--bin-dir", "bin"],
        &[("KUBECONFIG", path.as_str())],
    );
    assert!(out.expect(0).contains("passed"), "{}", out.stdout);
}
