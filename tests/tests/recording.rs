//! What exactly each delegate receives, observed with the `cni-recorder` test plugin as
//! every delegate: stdin documents (runtimeConfig filtered by capabilities, `cni-args`,
//! conflist injection and `prevResult`, byte-identical pass-through), the `CNI_*`
//! environment, and the order of calls on ADD, DEL and a failed ADD's rollback.

// Test code: a panic (`expect`, `unwrap`, `panic!`) in a helper is a test failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use multus_integration_tests::Harness;
use multus_integration_tests::fixtures::{MultusConfig, POD_ANNOTATIONS_KEY, recorder_conf};
use multus_integration_tests::recording::{Record, find_call as find, read_records, summaries};
use multus_integration_tests::runtime::Sandbox;
use serde_json::{Value, json};

const VERSION: &str = "1.0.0";

/// A node whose binDir holds the recorder as plugin type `recorder`, a pod, and a
/// multus configuration whose cluster network is a recorder tagged `cluster`.
fn setup() -> (Harness, Sandbox, MultusConfig) {
    let h = Harness::new();
    h.dirs.install_recorder("recorder");
    let mut cluster = recorder_conf(VERSION, "cluster", "cluster", &h.dirs);
    cluster["address"] = json!("10.250.0.2/24");
    let conf = MultusConfig::new(VERSION, &h.dirs, cluster).set("binDir", json!(h.dirs.bin_dir()));
    let pod = h.sandbox();
    (h, pod, conf)
}

/// Write a NAD named `name` whose config is a recorder tagged `name`, with `extra` keys.
fn recorder_nad(h: &Harness, name: &str, extra: Value) -> String {
    let mut config = recorder_conf(VERSION, name, name, &h.dirs);
    for (key, value) in extra.as_object().expect("extra keys are an object") {
        config[key] = value.clone();
    }
    h.dirs.write_nad_json(name, &config)
}

fn records(h: &Harness) -> Vec<Record> {
    read_records(&h.dirs.record_file())
}

#[test]
fn runtime_config_is_filtered_by_capabilities_and_plain_configs_pass_byte_identical() {
    let (h, pod, conf) = setup();
    let port_mappings = json!([{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}]);
    recorder_nad(
        &h,
        "ports",
        json!({"capabilities": {"portMappings": true, "bandwidth": false}}),
    );
    recorder_nad(
        &h,
        "annots",
        json!({"capabilities": {POD_ANNOTATIONS_KEY: true}}),
    );
    // Spacing, key order and number spelling that any re-serialisation would change.
    let plain_text = format!(
        r#"{{ "cniVersion": "{VERSION}",  "type": "recorder", "name": "plain", "tag": "plain", "recordFile": "{}", "zeta": 1.50, "alpha": {{"k": [1, 2]}} }}"#,
        h.dirs.record_file().display()
    );
    h.dirs.write_nad("plain", None, &plain_text);
    let conf = conf
        .runtime_config("portMappings", port_mappings.clone())
        .runtime_config(
            "bandwidth",
            json!({"ingressRate": 1000, "ingressBurst": 100}),
        )
        .networks("ports, annots, plain")
        .build();

    let result = h.runtime.add(&pod, &conf).success();

    let records = records(&h);
    assert_eq!(
        summaries(&records),
        ["ADD cluster", "ADD ports", "ADD annots", "ADD plain"]
    );
    assert!(
        find(&records, "ADD", "cluster")
            .stdin
            .get("runtimeConfig")
            .is_none()
    );
    assert_eq!(
        find(&records, "ADD", "ports").stdin["runtimeConfig"],
        json!({"portMappings": port_mappings})
    );
    assert_eq!(
        find(&records, "ADD", "annots").stdin["runtimeConfig"],
        json!({POD_ANNOTATIONS_KEY: conf["runtimeConfig"][POD_ANNOTATIONS_KEY]})
    );
    let plain = find(&records, "ADD", "plain");
    assert!(plain.stdin.get("runtimeConfig").is_none());
    assert_eq!(
        plain.stdin_raw, plain_text,
        "a config with nothing to inject is passed as is"
    );

    // The cluster network's result is what the runtime gets.
    assert_eq!(
        result,
        find(&records, "ADD", "cluster")
            .result
            .clone()
            .expect("result")
    );

    h.runtime.del(&pod, &conf, Some(&result)).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn cni_args_environment_and_selection_overrides() {
    let (h, pod, conf) = setup();
    recorder_nad(
        &h,
        "custom",
        json!({"capabilities": {"mac": true, "ips": true}, "args": {"cni": {"keep": "me", "foo": "old"}}}),
    );
    recorder_nad(&h, "other", json!({}));
    let annotation = json!([
        {"name": "custom", "interface": "net7", "mac": "c2:11:22:33:44:55", "ips": ["10.9.9.9/24"],
         "cni-args": {"foo": "bar", "n": 1}},
        {"name": "other"},
    ]);
    let conf = conf.networks(&annotation.to_string()).build();
    let runtime_args = format!("{};FOO=bar", pod.cni_args());

    let add = h
        .runtime
        .call("ADD", &pod, &conf)
        .set("CNI_ARGS", &runtime_args);
    let result = h.runtime.run(add).success();
    let del = h
        .runtime
        .call(
            "DEL",
            &pod,
            &multus_integration_tests::runtime::with_prev_result(&conf, Some(&result)),
        )
        .set("CNI_ARGS", &runtime_args);
    h.runtime.run(del).empty_success();

    let records = records(&h);
    assert_eq!(
        summaries(&records),
        [
            "ADD cluster",
            "ADD custom",
            "ADD other",
            "DEL other",
            "DEL custom",
            "DEL cluster"
        ]
    );
    let base = format!(
        "IgnoreUnknown=true;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID={};FOO=bar",
        pod.namespace, pod.name, pod.container_id, pod.uid
    );
    let search_path = format!(
        "{}:{}",
        h.dirs.bin_dir().display(),
        h.runtime.plugin_dir().display()
    );
    for record in &records {
        let expected_args = if record.command == "ADD" && record.tag() == "custom" {
            format!("{base};MAC=c2:11:22:33:44:55;IP=10.9.9.9/24")
        } else {
            base.clone()
        };
        assert_eq!(
            record.args,
            expected_args,
            "CNI_ARGS of {}",
            record.summary()
        );
        assert_eq!(record.container_id, pod.container_id);
        assert_eq!(record.netns, pod.netns.path_string());
        assert_eq!(record.path, search_path, "CNI_PATH of {}", record.summary());
        let ifname = match record.tag() {
            "cluster" => "eth0",
            "custom" => "net7",
            _ => "net2",
        };
        assert_eq!(record.ifname, ifname, "CNI_IFNAME of {}", record.summary());
    }
    let custom = find(&records, "ADD", "custom");
    assert_eq!(
        custom.stdin["args"]["cni"],
        json!({"keep": "me", "foo": "bar", "n": 1}),
        "cni-args are merged into args.cni"
    );
    assert_eq!(
        custom.stdin["runtimeConfig"],
        json!({"mac": "c2:11:22:33:44:55", "ips": ["10.9.9.9/24"]})
    );
    let other = find(&records, "ADD", "other");
    assert!(other.stdin.get("args").is_none(), "{:?}", other.stdin);
    assert!(
        other.stdin.get("runtimeConfig").is_none(),
        "{:?}",
        other.stdin
    );
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn conflists_are_chained_and_del_runs_in_exact_reverse() {
    let (h, pod, conf) = setup();
    let record_file = h.dirs.record_file();
    let chain = json!({
        "cniVersion": VERSION,
        "name": "chain",
        "plugins": [
            {"type": "recorder", "tag": "chain-1", "recordFile": record_file, "address": "10.251.0.5/24"},
            {"type": "recorder", "tag": "chain-2", "recordFile": record_file},
            {"type": "recorder", "tag": "chain-3", "recordFile": record_file},
        ],
    });
    h.dirs.write_nad_json("chain", &chain);
    recorder_nad(&h, "single", json!({"address": "10.252.0.5/24"}));
    let conf = conf.networks("chain, single").build();

    let result = h.runtime.add(&pod, &conf).success();
    let added = records(&h);
    assert_eq!(
        summaries(&added),
        [
            "ADD cluster",
            "ADD chain-1",
            "ADD chain-2",
            "ADD chain-3",
            "ADD single"
        ]
    );
    // Each list plugin gets the list's name and version, and the previous result.
    for (index, tag) in ["chain-1", "chain-2", "chain-3"].iter().enumerate() {
        let record = find(&added, "ADD", tag);
        assert_eq!(record.stdin["name"], "chain");
        assert_eq!(record.stdin["cniVersion"], VERSION);
        assert_eq!(record.ifname, "net1");
        if index == 0 {
            assert!(record.stdin.get("prevResult").is_none());
        } else {
            let previous = &added[index]; // ADD cluster is at 0, so chain-<index> is here.
            assert_eq!(
                Some(&record.stdin["prevResult"]),
                previous.result.as_ref(),
                "{tag} gets {}'s result",
                previous.tag()
            );
        }
    }
    let chain_result = find(&added, "ADD", "chain-3")
        .result
        .clone()
        .expect("result");
    let status = h.dirs.network_status(&pod.container_id);
    assert_eq!(status[1]["name"], "default/chain");
    assert_eq!(status[1]["ips"], json!(["10.251.0.5"]));
    assert_eq!(status[2]["name"], "default/single");
    assert_eq!(status[2]["interface"], "net2");

    h.runtime.del(&pod, &conf, Some(&result)).empty_success();
    let all = records(&h);
    let deleted = &all[added.len()..];
    let expected: Vec<String> = added
        .iter()
        .rev()
        .map(|r| format!("DEL {}", r.tag()))
        .collect();
    assert_eq!(
        summaries(deleted),
        expected,
        "DEL is the exact reverse of ADD"
    );
    // CNI 1.0.0 DEL carries the attachment's cached result.
    for record in deleted.iter().filter(|r| r.tag().starts_with("chain")) {
        assert_eq!(
            record.stdin["prevResult"],
            chain_result,
            "{}",
            record.summary()
        );
    }
    h.assert_nothing_leaked(&[&pod]);
}

/// The recorder tagged `bad` fails ADD at position `k` (1-based among the additional
/// networks) of `n`.
fn failing_add_rolls_back_in_reverse(k: usize, n: usize) {
    let (h, pod, conf) = setup();
    let mut names = Vec::new();
    for i in 1..=n {
        let name = if i == k {
            "bad".to_owned()
        } else {
            format!("good{i}")
        };
        let extra = if i == k {
            json!({"failOn": "ADD"})
        } else {
            json!({})
        };
        recorder_nad(&h, &name, extra);
        names.push(name);
    }
    let conf = conf.networks(&names.join(", ")).build();

    let error = h.runtime.add(&pod, &conf).error_with_code(11);
    error
        .assert_msg_contains(&[&pod.pod_ref(), "default/bad", "recorder asked to fail"])
        .assert_details_contain(&["could not be rolled back: none"]);

    let attempted: Vec<&str> = std::iter::once("cluster")
        .chain(names[..k].iter().map(String::as_str))
        .collect();
    let mut expected: Vec<String> = attempted.iter().map(|t| format!("ADD {t}")).collect();
    expected.extend(attempted.iter().rev().map(|t| format!("DEL {t}")));
    assert_eq!(summaries(&records(&h)), expected);
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn failing_add_first_of_three_rolls_back_in_reverse() {
    failing_add_rolls_back_in_reverse(1, 3);
}

#[test]
fn failing_add_second_of_three_rolls_back_in_reverse() {
    failing_add_rolls_back_in_reverse(2, 3);
}

#[test]
fn failing_add_last_of_three_rolls_back_in_reverse() {
    failing_add_rolls_back_in_reverse(3, 3);
}

#[test]
fn failing_del_still_deletes_every_other_delegate() {
    let (h, pod, conf) = setup();
    recorder_nad(&h, "first", json!({}));
    recorder_nad(&h, "stubborn", json!({"failOn": "DEL"}));
    recorder_nad(&h, "last", json!({}));
    let conf = conf.networks("first, stubborn, last").build();
    let result = h.runtime.add(&pod, &conf).success();

    let error = h
        .runtime
        .del(&pod, &conf, Some(&result))
        .error_with_code(11);
    error.assert_msg_contains(&[&pod.pod_ref(), "default/stubborn"]);

    let all = records(&h);
    assert_eq!(
        summaries(&all[4..]),
        ["DEL last", "DEL stubborn", "DEL first", "DEL cluster"]
    );
    // The record is kept (with or without retryDeleteOnError), so a retried DEL runs
    // every delegate again from it, and fails again while the plugin does.
    assert!(h.dirs.state(&pod.container_id).is_some());
    h.runtime
        .del(&pod, &conf, Some(&result))
        .error_with_code(11)
        .assert_details_contain(&[
            "deleted: cluster (eth0), default/first (net1), default/last (net3);",
            "could not be deleted: default/stubborn (net2)",
        ]);
    let all = records(&h);
    assert_eq!(
        summaries(&all[8..]),
        ["DEL last", "DEL stubborn", "DEL first", "DEL cluster"]
    );
    assert!(h.dirs.state(&pod.container_id).is_some());
}
