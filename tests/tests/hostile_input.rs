//! Attacks by someone who may create a NetworkAttachmentDefinition or annotate a pod,
//! replayed through the real `multus` binary with the real plugins: none of them makes
//! multus run a binary or a configuration of the attacker's choosing, spend unbounded
//! work, or leave a sandbox that cannot be deleted (docs/architecture.md, "Threat model").

// Test code: a panic (`expect`, `unwrap`, `panic!`) in a helper is a test failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;

use multus_integration_tests::fixtures::{MultusConfig, recorder_conf};
use multus_integration_tests::runtime::Sandbox;
use multus_integration_tests::{BRIDGE_NAD, Harness, MACVLAN_NAD};
use serde_json::{Value, json};

const VERSION: &str = "1.0.0";

/// A node with the standard networks and a pod; the configuration has no annotations.
fn setup() -> (Harness, Sandbox, MultusConfig) {
    let h = Harness::new();
    let nets = h.standard_networks(VERSION);
    let conf = h.multus_config(VERSION, &nets);
    let pod = h.sandbox();
    (h, pod, conf)
}

/// A DEL of the pod as the runtime sends it after a failed ADD succeeds, and leaves
/// nothing behind.
fn del_succeeds(h: &Harness, pod: &Sandbox, conf: &Value) {
    h.runtime.del(pod, conf, None).empty_success();
    h.assert_nothing_leaked(&[pod]);
}

#[test]
fn a_nad_cannot_run_multus_as_a_delegate() {
    for plugin in ["multus", "multus-shim"] {
        let (h, pod, conf) = setup();
        let log = h.dirs.root().join("chosen-by-the-nad.log");
        // A nested multus would take this as its own configuration: a log file, a
        // binDir and delegates of the NAD author's choosing, run as root.
        h.dirs.write_nad_json(
            "evil",
            &json!({"cniVersion": VERSION, "name": "evil", "type": plugin,
                    "logFile": log, "logLevel": "debug", "binDir": "/tmp",
                    "delegates": [{"cniVersion": VERSION, "name": "x", "type": "sh"}]}),
        );
        let conf = conf.networks("evil").build();
        h.runtime
            .add(&pod, &conf)
            .error_with_code(7)
            .assert_msg_contains(&[&pod.pod_ref(), "default/evil", plugin, "multus itself"]);
        assert!(!log.exists(), "the nested multus ran");
        h.assert_nothing_leaked(&[&pod]);
        del_succeeds(&h, &pod, &conf);
    }
}

#[test]
fn allowed_plugin_types_refuses_every_other_type() {
    let (h, pod, conf) = setup();
    let conf = conf
        .set("allowedPluginTypes", json!(["bridge", "host-local"]))
        .networks(&format!("{BRIDGE_NAD}, {MACVLAN_NAD}"))
        .build();
    h.runtime
        .add(&pod, &conf)
        .error_with_code(7)
        .assert_msg_contains(&[
            &format!("default/{MACVLAN_NAD}"),
            "\"macvlan\" is not in allowedPluginTypes",
        ]);
    h.assert_nothing_leaked(&[&pod]);
    del_succeeds(&h, &pod, &conf);
}

#[test]
fn interface_lo_is_refused_and_the_pod_stays_deletable() {
    let (h, pod, conf) = setup();
    let conf = conf
        .networks(&json!([{"name": BRIDGE_NAD, "interface": "lo"}]).to_string())
        .build();
    h.runtime
        .add(&pod, &conf)
        .error_with_code(102)
        .assert_msg_contains(&[&pod.pod_ref(), "\"lo\""]);
    h.assert_nothing_leaked(&[&pod]);
    // The DEL rebuilt from the same annotation must not try to delete `lo`.
    del_succeeds(&h, &pod, &conf);
    assert_eq!(pod.netns.link_names(), ["lo"]);
}

#[test]
fn a_network_name_the_plugins_reject_is_refused_and_the_pod_stays_deletable() {
    let (h, pod, conf) = setup();
    let mut config = multus_integration_tests::fixtures::bridge_conf(
        VERSION,
        "bad name",
        "mrs-br9",
        multus_integration_tests::fixtures::Subnet::unique(),
        false,
        &h.dirs,
    );
    config["name"] = json!("bad name");
    h.dirs.write_nad_json("badname", &config);
    let conf = conf.networks("badname").build();
    h.runtime
        .add(&pod, &conf)
        .error_with_code(7)
        .assert_msg_contains(&[&pod.pod_ref(), "default/badname", "\"bad name\""]);
    h.assert_nothing_leaked(&[&pod]);
    del_succeeds(&h, &pod, &conf);
}

#[test]
fn too_many_networks_are_refused_before_any_lookup() {
    let (h, pod, conf) = setup();
    // 65 names of NADs that do not exist: refused for their number, not looked up.
    let names: Vec<String> = (0..65).map(|i| format!("n{i}")).collect();
    let conf = conf.networks(&names.join(",")).build();
    h.runtime
        .add(&pod, &conf)
        .error_with_code(102)
        .assert_msg_contains(&[&pod.pod_ref(), "65 networks", "maxNetworksPerPod (64)"]);
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn a_delegate_result_that_is_not_a_cni_result_fails_and_rolls_back() {
    for printed in ["[1,2,3]", r#"{"cniVersion":"1.0.0","interfaces":"x"}"#] {
        let (h, pod, conf) = setup();
        let plugin = h.dirs.bin_dir().join("liar");
        std::fs::write(
            &plugin,
            format!("#!/bin/sh\ncat >/dev/null\n[ \"$CNI_COMMAND\" = ADD ] && echo '{printed}'\nexit 0\n"),
        )
        .unwrap();
        std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
        h.dirs.write_nad_json(
            "liar",
            &json!({"cniVersion": VERSION, "name": "liar", "type": "liar"}),
        );
        let conf = conf
            .set("binDir", json!(h.dirs.bin_dir()))
            .networks(&format!("{BRIDGE_NAD}, liar"))
            .build();
        h.runtime
            .add(&pod, &conf)
            .error_with_code(100)
            .assert_msg_contains(&[
                &pod.pod_ref(),
                "default/liar",
                "printed an invalid CNI result",
            ]);
        // The cluster network and the bridge network were rolled back.
        h.assert_nothing_leaked(&[&pod]);
    }
}

#[test]
fn networks_after_the_failed_one_never_make_del_fail() {
    let (h, pod, conf) = setup();
    h.dirs.install_recorder("recorder");
    let nad = |name: &str, fail_on: &str| {
        let mut config = recorder_conf(VERSION, name, name, &h.dirs);
        config["failOn"] = json!(fail_on);
        h.dirs.write_nad_json(name, &config);
    };
    // `first` cannot be rolled back once, `second` fails ADD, `never` (never run) would
    // fail every DEL.
    nad("first", "DEL-once");
    nad("second", "ADD");
    nad("never", "DEL");
    let conf = conf
        .set("binDir", json!(h.dirs.bin_dir()))
        .networks("first, second, never")
        .build();
    h.runtime.add(&pod, &conf).error_with_code(11);
    let record = h.dirs.state(&pod.container_id).expect("record kept");
    let networks: Vec<&str> = record["attachments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["network"].as_str().unwrap())
        .collect();
    assert!(!networks.contains(&"default/never"), "{networks:?}");
    h.runtime.del(&pod, &conf, None).empty_success();
    assert!(h.dirs.state(&pod.container_id).is_none());
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn unresolvable_default_networks_without_a_record_do_not_fail_del() {
    let (h, pod, conf) = setup();
    let conf = conf
        .set("defaultNetworks", json!(["gone", BRIDGE_NAD]))
        .build();
    // ADD fails: the entry does not resolve.
    h.runtime.add(&pod, &conf).error_with_code(101);
    // DEL has no record: it deletes what resolves and succeeds.
    del_succeeds(&h, &pod, &conf);
}

#[test]
fn default_network_override_is_subject_to_namespace_isolation() {
    let (h, pod, conf) = setup();
    let config = multus_integration_tests::fixtures::bridge_conf(
        VERSION,
        "theirs",
        "mrs-br8",
        multus_integration_tests::fixtures::Subnet::unique(),
        true,
        &h.dirs,
    );
    h.dirs
        .write_nad("theirs", Some("other"), &config.to_string());
    let isolated = conf
        .clone()
        .set("namespaceIsolation", json!(true))
        .annotation("v1.multus-cni.io/default-network", "other/theirs");
    h.runtime
        .add(&pod, &isolated.clone().build())
        .error_with_code(102)
        .assert_msg_contains(&[&pod.pod_ref(), "namespace isolation", "other"]);
    h.assert_nothing_leaked(&[&pod]);
    // The documented switch restores upstream's behaviour.
    let open = isolated.set("isolateDefaultNetwork", json!(false)).build();
    let result = h.runtime.add(&pod, &open).success();
    h.runtime.del(&pod, &open, Some(&result)).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn runtime_config_from_annotations_can_be_limited_per_key() {
    let (h, pod, conf) = setup();
    h.dirs.install_recorder("recorder");
    let mut config = recorder_conf(VERSION, "rec", "rec", &h.dirs);
    config["capabilities"] = json!({"portMappings": true, "mac": true});
    h.dirs.write_nad_json("rec", &config);
    let annotation = json!([{"name": "rec", "mac": "02:00:00:00:00:01",
        "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]}])
    .to_string();
    let conf = conf
        .set("binDir", json!(h.dirs.bin_dir()))
        .set("allowRuntimeConfigFromAnnotations", json!(["mac"]))
        .networks(&annotation)
        .build();
    let result = h.runtime.add(&pod, &conf).success();
    let records = multus_integration_tests::recording::read_records(&h.dirs.record_file());
    let add = records
        .iter()
        .find(|r| r.command == "ADD")
        .expect("the recorder's ADD");
    assert_eq!(
        add.stdin["runtimeConfig"],
        json!({"mac": "02:00:00:00:00:01"}),
        "{}",
        add.stdin
    );
    h.runtime.del(&pod, &conf, Some(&result)).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}
