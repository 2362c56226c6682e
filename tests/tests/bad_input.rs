//! Bad input from the runtime, the configuration or the pod: every case is a CNI error
//! document on stdout with exit code 1 and the documented code, names the pod and the
//! network where one is concerned, and attaches nothing.

// Test code: a panic (`expect`, `unwrap`, `panic!`) in a helper is a test failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use multus_integration_tests::runtime::Sandbox;
use multus_integration_tests::{BRIDGE_NAD, CLUSTER_NETWORK, Harness, MACVLAN_NAD};
use serde_json::{Value, json};

const VERSION: &str = "1.0.0";

/// A node with the standard networks, a pod, and the configuration asking for
/// `networks` (none when empty).
fn setup(networks: &str) -> (Harness, Sandbox, Value) {
    Harness::with_pod(VERSION, networks)
}

#[test]
fn malformed_json_on_stdin_is_a_decode_failure() {
    let (h, pod, conf) = setup(MACVLAN_NAD);
    let call = h
        .runtime
        .call("ADD", &pod, &conf)
        .stdin(b"{\"cniVersion\": \"1.0.0\", ");
    let error = h.runtime.run(call).error_with_code(6);
    error.assert_msg_contains(&["invalid multus configuration"]);
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn missing_cni_variables_are_invalid_environment() {
    let (h, pod, conf) = setup(MACVLAN_NAD);
    for variable in ["CNI_COMMAND", "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME"] {
        let call = h.runtime.call("ADD", &pod, &conf).unset(variable);
        let error = h.runtime.run(call).error_with_code(4);
        error.assert_msg_contains(&[variable]);
        assert_eq!(error.cni_version, VERSION);
        h.assert_nothing_leaked(&[&pod]);
    }
}

#[test]
fn unknown_command_is_invalid_environment() {
    let (h, pod, conf) = setup(MACVLAN_NAD);
    let call = h.runtime.call("ATTACH", &pod, &conf);
    h.runtime
        .run(call)
        .error_with_code(4)
        .assert_msg_contains(&["ATTACH"]);
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn invalid_cni_ifname_is_invalid_environment() {
    let (h, pod, conf) = setup("");
    let call = h
        .runtime
        .call("ADD", &pod, &conf)
        .set("CNI_IFNAME", "eth0/../x");
    h.runtime
        .run(call)
        .error_with_code(4)
        .assert_msg_contains(&["CNI_IFNAME"]);
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn unknown_network_is_network_not_found() {
    let (h, pod, conf) = setup(&format!("{MACVLAN_NAD}, nosuchnet"));
    h.runtime
        .add(&pod, &conf)
        .error_with_code(101)
        .assert_msg_contains(&[&pod.pod_ref(), "default/nosuchnet"]);
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn invalid_annotations_are_refused() {
    for annotation in ["a/b/c", r#"[{"name":1}]"#] {
        let (h, pod, conf) = setup(annotation);
        let error = h.runtime.add(&pod, &conf).error_with_code(102);
        error.assert_msg_contains(&[&pod.pod_ref(), "k8s.v1.cni.cncf.io/networks"]);
        h.assert_nothing_leaked(&[&pod]);
    }
}

#[test]
fn invalid_interface_names_in_the_annotation_are_refused() {
    let cases = [
        (format!("{MACVLAN_NAD}@averyveryverylong"), "15 bytes"),
        (
            json!([{"name": MACVLAN_NAD, "interface": "net/1"}]).to_string(),
            "'/'",
        ),
        (
            json!([{"name": MACVLAN_NAD, "interface": "net 1"}]).to_string(),
            "whitespace",
        ),
    ];
    for (annotation, reason) in cases {
        let (h, pod, conf) = setup(&annotation);
        let error = h.runtime.add(&pod, &conf).error_with_code(102);
        error.assert_msg_contains(&[&pod.pod_ref(), "invalid interface name", reason]);
        h.assert_nothing_leaked(&[&pod]);
    }
}

#[test]
fn interface_already_in_the_pod_is_refused() {
    let (h, pod, conf) = setup(MACVLAN_NAD);
    pod.netns.ip(&["link", "add", "net1", "type", "bridge"]);

    let error = h.runtime.add(&pod, &conf).error_with_code(103);
    error.assert_msg_contains(&[&pod.pod_ref(), &format!("default/{MACVLAN_NAD}"), "net1"]);

    // Nothing was attached: the pod has only what it had before.
    assert_eq!(pod.netns.link_names(), ["lo", "net1"]);
    pod.netns.ip(&["link", "del", "net1"]);
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn duplicate_interface_names_are_refused() {
    let cases = [
        (
            format!("{MACVLAN_NAD}@net5, {BRIDGE_NAD}@net5"),
            vec![
                "net5".to_owned(),
                format!("default/{MACVLAN_NAD}"),
                format!("default/{BRIDGE_NAD}"),
            ],
        ),
        (
            format!("{MACVLAN_NAD}@eth0"),
            vec![
                "eth0".to_owned(),
                CLUSTER_NETWORK.to_owned(),
                format!("default/{MACVLAN_NAD}"),
            ],
        ),
    ];
    for (annotation, mentions) in cases {
        let (h, pod, conf) = setup(&annotation);
        let error = h.runtime.add(&pod, &conf).error_with_code(103);
        let mentions: Vec<&str> = mentions.iter().map(String::as_str).collect();
        error
            .assert_msg_contains(&mentions)
            .assert_msg_contains(&[&pod.pod_ref()]);
        h.assert_nothing_leaked(&[&pod]);
    }
}

#[test]
fn missing_cluster_plugin_binary_is_reported() {
    let h = Harness::new();
    let cluster = json!({"cniVersion": VERSION, "name": "ghost-cluster", "type": "doesnotexist"});
    let conf =
        multus_integration_tests::fixtures::MultusConfig::new(VERSION, &h.dirs, cluster).build();
    let pod = h.sandbox();
    let error = h.runtime.add(&pod, &conf).error();
    error.assert_msg_contains(&[&pod.pod_ref(), "ghost-cluster", "doesnotexist"]);
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn container_id_that_escapes_cni_dir_is_refused() {
    let (h, pod, conf) = setup(MACVLAN_NAD);
    for command in ["ADD", "CHECK", "DEL"] {
        let call = h
            .runtime
            .call(command, &pod, &conf)
            .set("CNI_CONTAINERID", "../../etc");
        h.runtime
            .run(call)
            .error_with_code(4)
            .assert_msg_contains(&["CNI_CONTAINERID", "../../etc"]);
    }
    h.assert_nothing_leaked(&[&pod]);
    // Nothing was written anywhere, inside or outside cniDir.
    let written = files_under(h.dirs.root());
    assert!(
        written.iter().all(|f| !f.contains("etc")),
        "files written for the escaping ID: {written:?}"
    );
    assert!(!std::path::Path::new("/etc.json").exists());
    assert!(!std::path::Path::new("/etc.lock").exists());
}

#[test]
fn netns_path_that_does_not_exist_is_refused() {
    let (h, pod, conf) = setup(MACVLAN_NAD);
    let missing = format!("/run/netns/mrs-missing-{}", std::process::id());
    let call = h
        .runtime
        .call("ADD", &pod, &conf)
        .set("CNI_NETNS", &missing);
    h.runtime
        .run(call)
        .error_with_code(4)
        .assert_msg_contains(&[&pod.pod_ref(), &missing]);
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn version_prints_supported_versions() {
    let (h, pod, conf) = setup("");
    let call = h
        .runtime
        .call("VERSION", &pod, &conf)
        .unset("CNI_CONTAINERID")
        .unset("CNI_NETNS")
        .unset("CNI_IFNAME")
        .unset("CNI_ARGS")
        .stdin(br#"{"cniVersion":"1.0.0"}"#);
    let reply = h.runtime.run(call).success();
    let supported: Vec<&str> = reply["supportedVersions"]
        .as_array()
        .expect("supportedVersions")
        .iter()
        .map(|v| v.as_str().expect("version text"))
        .collect();
    for version in ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"] {
        assert!(
            supported.contains(&version),
            "{version} not in {supported:?}"
        );
    }
    assert!(reply["cniVersion"].is_string(), "{reply}");
    h.assert_nothing_leaked(&[&pod]);
}

fn files_under(dir: &std::path::Path) -> Vec<String> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)
        .expect("readable")
        .filter_map(Result::ok)
    {
        let path = entry.path();
        if path.is_dir() {
            let name = entry.file_name().to_string_lossy().into_owned();
            files.extend(
                files_under(&path)
                    .into_iter()
                    .map(|f| format!("{name}/{f}")),
            );
        } else {
            let relative = path.strip_prefix(dir).unwrap_or(&path);
            files.push(relative.display().to_string());
        }
    }
    files
}
