//! Upstream parity: the behaviours where multus must act as upstream Multus (and libcni)
//! do, replayed through the real `multus` binary with the `cni-recorder` as delegate.
//!
//! - GC never releases an attachment the runtime lists as valid, even without a record
//!   of it, and reads libcni's legacy `cni.dev/attachments`;
//! - GC of one multus network touches only the records it made (two multus networks
//!   sharing a `cniDir`);
//! - a delegate config without a network name is refused before anything runs;
//! - CHECK of a network whose result lists no interface runs only the plugin's CHECK;
//! - CHECK is refused for a multus configuration older than 0.4.0;
//! - a single delegate config without `cniVersion` reaches its plugin without one;
//! - a confDir file that does not parse is named in the lookup error;
//! - a missing `clusterNetwork` / `defaultNetworks` names where it was looked for;
//! - DEL and CHECK get `prevResult` in the delegate's own cniVersion.

// Test code: a panic (`expect`, `unwrap`, `panic!`) in a helper is a test failure.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;

use multus_integration_tests::Harness;
use multus_integration_tests::fixtures::{MultusConfig, recorder_conf};
use multus_integration_tests::recording::{Record, find_call as find, read_records, summaries};
use multus_integration_tests::runtime::CniCall;
use serde_json::{Value, json};

fn records(h: &Harness) -> Vec<Record> {
    read_records(&h.dirs.record_file())
}

/// A recorder NAD `default/<name>` at `version` with `extra` keys.
fn recorder_nad(h: &Harness, version: &str, name: &str, extra: Value) {
    let mut config = recorder_conf(version, name, name, &h.dirs);
    for (key, value) in extra.as_object().expect("extra keys are an object") {
        config[key] = value.clone();
    }
    h.dirs.write_nad_json(name, &config);
}

// ---------------------------------------------------------------------------------------
// GC
// ---------------------------------------------------------------------------------------

const GC_VERSION: &str = "1.1.0";

/// multus network `name` at 1.1.0: cluster network recorder `cluster`, default network
/// NAD `kube-system/dflt`, and the pods' annotation asks for NAD `default/extra`.
fn gc_setup(h: &Harness, name: &str) -> Value {
    let dirs = &h.dirs;
    let dflt = recorder_conf(GC_VERSION, "dflt", "dflt", dirs);
    dirs.write_nad("dflt", Some("kube-system"), &dflt.to_string());
    dirs.write_nad_json("extra", &recorder_conf(GC_VERSION, "extra", "extra", dirs));
    let cluster = recorder_conf(GC_VERSION, "cluster", "cluster", dirs);
    MultusConfig::new(GC_VERSION, dirs, cluster)
        .set("name", json!(name))
        .set("binDir", json!(dirs.bin_dir()))
        .set("defaultNetworks", json!(["dflt"]))
        .networks("extra")
        .build()
}

/// A GC call as a runtime makes it: no per-container variables.
fn gc_call(h: &Harness, conf: &Value) -> CniCall {
    let nobody = h.sandbox();
    h.runtime
        .call("GC", &nobody, conf)
        .unset("CNI_CONTAINERID")
        .unset("CNI_NETNS")
        .unset("CNI_IFNAME")
        .unset("CNI_ARGS")
}

/// The GC calls after the first `skip` records: network tag -> its valid attachments.
fn gc_calls(h: &Harness, skip: usize) -> BTreeMap<String, Vec<(String, String)>> {
    records(h)[skip..]
        .iter()
        .filter(|r| r.command == "GC")
        .map(|r| (r.tag().to_owned(), r.valid_attachments()))
        .collect()
}

fn attachment(container_id: &str, ifname: &str) -> (String, String) {
    (container_id.to_owned(), ifname.to_owned())
}

#[test]
fn gc_keeps_a_valid_sandbox_it_has_no_record_of() {
    let h = Harness::new();
    h.dirs.install_recorder("recorder");
    let conf = gc_setup(&h, "multus-cni-network");
    let kept = h.sandbox();
    h.runtime.add(&kept, &conf).success();
    // A sandbox the runtime still runs, attached before multus kept records (a node
    // upgraded from upstream Multus) or whose record was lost.
    let unrecorded = "c0ffee-unrecorded";
    let added = records(&h).len();

    let mut gc_conf = conf.clone();
    gc_conf["cni.dev/valid-attachments"] = json!([
        {"containerID": kept.container_id, "ifname": "eth0"},
        {"containerID": unrecorded, "ifname": "eth0"},
    ]);
    h.runtime.run(gc_call(&h, &gc_conf)).empty_success();

    let after = &records(&h)[added..];
    assert!(
        after.iter().all(|r| r.command == "GC"),
        "nothing is torn down: {:?}",
        summaries(after)
    );
    // The cluster network keeps both; the others are not asked to GC at all, since
    // nothing says which of their interfaces the unrecorded sandbox has.
    assert_eq!(
        gc_calls(&h, added),
        BTreeMap::from([(
            "cluster".to_owned(),
            vec![
                attachment(&kept.container_id, "eth0"),
                attachment(unrecorded, "eth0")
            ]
        )]),
        "{:?}",
        summaries(after)
    );
    assert!(h.dirs.state(&kept.container_id).is_some());

    h.runtime.del(&kept, &conf, None).empty_success();
    h.assert_nothing_leaked(&[&kept]);
}

#[test]
fn gc_reads_the_legacy_attachments_key_and_sends_both_keys() {
    let h = Harness::new();
    h.dirs.install_recorder("recorder");
    let conf = gc_setup(&h, "multus-cni-network");
    let kept = h.sandbox();
    h.runtime.add(&kept, &conf).success();
    let added = records(&h).len();

    // libcni's legacy name only: the sandbox is valid.
    let mut gc_conf = conf.clone();
    gc_conf["cni.dev/attachments"] = json!([{"containerID": kept.container_id, "ifname": "eth0"}]);
    h.runtime.run(gc_call(&h, &gc_conf)).empty_success();

    let after = &records(&h)[added..];
    assert!(
        after.iter().all(|r| r.command == "GC"),
        "{:?}",
        summaries(after)
    );
    let valid = |ifname: &str| vec![attachment(&kept.container_id, ifname)];
    assert_eq!(
        gc_calls(&h, added),
        BTreeMap::from([
            ("cluster".to_owned(), valid("eth0")),
            ("dflt".to_owned(), valid("net1")),
            ("extra".to_owned(), valid("net2")),
        ])
    );
    for gc in after {
        assert_eq!(
            gc.stdin["cni.dev/attachments"], gc.stdin["cni.dev/valid-attachments"],
            "libcni sends both keys: {}",
            gc.stdin
        );
    }

    h.runtime.del(&kept, &conf, None).empty_success();
    h.assert_nothing_leaked(&[&kept]);
}

#[test]
fn gc_of_one_multus_network_touches_only_its_own_records() {
    let h = Harness::new();
    h.dirs.install_recorder("recorder");
    // Two multus networks sharing one cniDir (and their delegate networks).
    let conf_a = gc_setup(&h, "multus-a");
    let mut conf_b = conf_a.clone();
    conf_b["name"] = json!("multus-b");
    let valid_a = h.sandbox();
    let stale_a = h.sandbox();
    let of_b = h.sandbox();
    let legacy = h.sandbox();
    h.runtime.add(&valid_a, &conf_a).success();
    h.runtime.add(&stale_a, &conf_a).success();
    h.runtime.add(&of_b, &conf_b).success();
    h.runtime.add(&legacy, &conf_b).success();
    assert_eq!(
        h.dirs.state(&of_b.container_id).unwrap()["multusNetwork"],
        "multus-b",
        "the record says which multus network made it"
    );
    // A record written before records named their multus network: still loads, and
    // GC treats it as its own, as before.
    let path = h.dirs.record_path(&legacy.container_id);
    let mut old = h.dirs.state(&legacy.container_id).unwrap();
    old.as_object_mut().unwrap().remove("multusNetwork");
    std::fs::write(&path, old.to_string()).unwrap();
    let added = records(&h).len();

    let mut gc_conf = conf_a.clone();
    gc_conf["cni.dev/valid-attachments"] =
        json!([{"containerID": valid_a.container_id, "ifname": "eth0"}]);
    h.runtime.run(gc_call(&h, &gc_conf)).empty_success();

    let after = &records(&h)[added..];
    let mut torn_down: Vec<&str> = after
        .iter()
        .filter(|r| r.command == "DEL")
        .map(|r| r.container_id.as_str())
        .collect();
    torn_down.sort_unstable();
    torn_down.dedup();
    let mut expected = [stale_a.container_id.as_str(), legacy.container_id.as_str()];
    expected.sort_unstable();
    assert_eq!(
        torn_down,
        expected,
        "only multus-a's stale sandbox and the unnamed record: {:?}",
        summaries(after)
    );
    assert!(h.dirs.state(&stale_a.container_id).is_none());
    assert!(h.dirs.state(&legacy.container_id).is_none());
    assert!(h.dirs.state(&valid_a.container_id).is_some());
    assert!(
        h.dirs.state(&of_b.container_id).is_some(),
        "multus-b's record is not multus-a's to collect"
    );
    // multus-b's attachments stay valid on the networks both use.
    let both = |ifname: &str| {
        let mut list = vec![
            attachment(&valid_a.container_id, ifname),
            attachment(&of_b.container_id, ifname),
        ];
        list.sort();
        list
    };
    let mut gc = gc_calls(&h, added);
    for list in gc.values_mut() {
        list.sort();
    }
    assert_eq!(
        gc,
        BTreeMap::from([
            ("cluster".to_owned(), both("eth0")),
            ("dflt".to_owned(), both("net1")),
            ("extra".to_owned(), both("net2")),
        ])
    );

    h.runtime.del(&valid_a, &conf_a, None).empty_success();
    h.runtime.del(&of_b, &conf_b, None).empty_success();
    h.assert_nothing_leaked(&[&valid_a, &stale_a, &of_b, &legacy]);
}

// ---------------------------------------------------------------------------------------
// ADD, CHECK, DEL
// ---------------------------------------------------------------------------------------

const VERSION: &str = "1.0.0";

/// multus at `version` whose cluster network is recorder `cluster` with `cluster_extra`
/// keys, plugin binaries from the test binDir.
fn conf_with(h: &Harness, version: &str, cluster_extra: Value) -> MultusConfig {
    h.dirs.install_recorder("recorder");
    let mut cluster = recorder_conf(version, "cluster", "cluster", &h.dirs);
    for (key, value) in cluster_extra.as_object().expect("extra keys") {
        cluster[key] = value.clone();
    }
    MultusConfig::new(version, &h.dirs, cluster).set("binDir", json!(h.dirs.bin_dir()))
}

#[test]
fn a_delegate_without_a_network_name_is_refused_before_anything_runs() {
    let h = Harness::new();
    let base = conf_with(&h, VERSION, json!({}));
    let record_file = h.dirs.record_file();
    let single =
        json!({"cniVersion": VERSION, "type": "recorder", "tag": "x", "recordFile": record_file});
    let mut empty_name = single.clone();
    empty_name["name"] = json!("");
    let list = json!({"cniVersion": VERSION, "plugins": [{"type": "recorder", "tag": "x", "recordFile": record_file}]});
    for nameless in [single, empty_name, list] {
        let cluster = recorder_conf(VERSION, "cluster", "cluster", &h.dirs);
        let conf = base
            .clone()
            .set("delegates", json!([cluster, nameless]))
            .build();
        let pod = h.sandbox();

        let error = h.runtime.add(&pod, &conf).error_with_code(7);
        error.assert_msg_contains(&["missing network name", "delegate 1", "recorder"]);

        assert_eq!(
            summaries(&records(&h)),
            Vec::<String>::new(),
            "no delegate ran for {nameless}"
        );
        assert!(h.dirs.state(&pod.container_id).is_none());
    }
}

#[test]
fn check_of_a_network_whose_result_lists_no_interface_runs_its_plugin_check() {
    let h = Harness::new();
    let conf = conf_with(
        &h,
        VERSION,
        json!({"fixedResult": {"dns": {"nameservers": ["10.96.0.10"]}}}),
    );
    recorder_nad(&h, VERSION, "sysctl", json!({"fixedResult": {}}));
    let conf = conf.networks("sysctl").build();
    let pod = h.sandbox();
    let result = h.runtime.add(&pod, &conf).success();

    h.runtime.check(&pod, &conf, &result).empty_success();

    let records = records(&h);
    for tag in ["cluster", "sysctl"] {
        let check = find(&records, "CHECK", tag);
        let add = find(&records, "ADD", tag);
        assert_eq!(
            Some(&check.stdin["prevResult"]),
            add.result.as_ref(),
            "{tag}'s CHECK gets its cached result"
        );
    }
    h.runtime.del(&pod, &conf, Some(&result)).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn check_is_refused_for_a_multus_configuration_older_than_0_4_0() {
    for version in [Some("0.3.1"), None] {
        let h = Harness::new();
        let mut conf = conf_with(&h, "0.3.1", json!({"address": "10.250.0.2/24"})).build();
        if version.is_none() {
            conf.as_object_mut().unwrap().remove("cniVersion");
        }
        let pod = h.sandbox();
        let result = h.runtime.add(&pod, &conf).success();

        let error = h.runtime.check(&pod, &conf, &result).error_with_code(1);
        error.assert_msg_contains(&["config version does not allow CHECK", "0.4.0"]);
        assert!(
            records(&h).iter().all(|r| r.command != "CHECK"),
            "no delegate is asked (cniVersion {version:?})"
        );

        h.runtime.del(&pod, &conf, Some(&result)).empty_success();
        h.assert_nothing_leaked(&[&pod]);
    }
}

#[test]
fn single_delegate_configs_without_cni_version_stay_versionless() {
    let h = Harness::new();
    let static_text = format!(
        r#"{{"name":"old","type":"recorder","tag":"old","recordFile":"{}"}}"#,
        h.dirs.record_file().display()
    );
    let cluster = recorder_conf(VERSION, "cluster", "cluster", &h.dirs);
    let static_delegate: Value = serde_json::from_str(&static_text).unwrap();
    let nad_text = format!(
        r#"{{"type":"recorder","tag":"nad","recordFile":"{}"}}"#,
        h.dirs.record_file().display()
    );
    h.dirs.write_nad("versionless", None, &nad_text);
    let conf = conf_with(&h, VERSION, json!({}))
        .set("delegates", json!([cluster, static_delegate]))
        .networks("versionless")
        .build();
    let pod = h.sandbox();
    let result = h.runtime.add(&pod, &conf).success();
    h.runtime.del(&pod, &conf, Some(&result)).empty_success();

    let records = records(&h);
    for command in ["ADD", "DEL"] {
        let old = find(&records, command, "old");
        assert_eq!(
            old.stdin_raw, static_text,
            "{command}: the static delegate arrives as written"
        );
        let nad = find(&records, command, "nad");
        assert!(
            nad.stdin.get("cniVersion").is_none(),
            "{command}: no cniVersion added to the NAD config: {}",
            nad.stdin_raw
        );
        assert_eq!(
            nad.stdin["name"], "versionless",
            "the NAD's name is injected, as upstream does"
        );
    }
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn a_conf_dir_file_that_does_not_parse_is_named_in_the_lookup_error() {
    let h = Harness::new();
    let conf_dir = h.dirs.root().join("confdir");
    std::fs::create_dir(&conf_dir).unwrap();
    std::fs::write(conf_dir.join("10-broken.conf"), "{\"name\": \"byname\",").unwrap();
    // A NAD whose spec is empty: its config is looked up by name in confDir.
    h.dirs.write_nad("byname", None, "");
    let conf = conf_with(&h, VERSION, json!({}))
        .set("confDir", json!(conf_dir))
        .networks("byname")
        .build();
    let pod = h.sandbox();

    let error = h.runtime.add(&pod, &conf).error_with_code(101);
    error.assert_msg_contains(&[
        "default/byname",
        "the NAD has no config and no CNI config named \"byname\" was found in",
        &conf_dir.display().to_string(),
        "10-broken.conf does not parse",
        "EOF while parsing",
    ]);
    assert!(h.dirs.state(&pod.container_id).is_none());

    // With the named config present, the lookup succeeds despite the broken file.
    let byname = recorder_conf(VERSION, "byname", "byname", &h.dirs);
    std::fs::write(conf_dir.join("20-byname.conf"), byname.to_string()).unwrap();
    let result = h.runtime.add(&pod, &conf).success();
    assert_eq!(
        summaries(&records(&h)),
        ["ADD cluster", "ADD byname"],
        "the config found by name ran"
    );
    h.runtime.del(&pod, &conf, Some(&result)).empty_success();
    h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn a_missing_cluster_or_default_network_names_every_place_looked_in() {
    let h = Harness::new();
    let conf_dir = h.dirs.root().join("confdir");
    std::fs::create_dir(&conf_dir).unwrap();
    let base = conf_with(&h, VERSION, json!({})).set("confDir", json!(conf_dir));
    let dir = conf_dir.display().to_string();
    let pod = h.sandbox();

    let conf = base.clone().set("clusterNetwork", json!("gone")).build();
    let error = h.runtime.add(&pod, &conf).error_with_code(101);
    error.assert_msg_contains(&[
        "clusterNetwork \"gone\" names no NetworkAttachmentDefinition in namespace \"kube-system\" (multusNamespace)",
        "no CNI config named \"gone\" was found in",
        &dir,
        "(confDir)",
    ]);

    let conf = base
        .set("multusNamespace", json!("netops"))
        .set("defaultNetworks", json!(["absent"]))
        .build();
    let error = h.runtime.add(&pod, &conf).error_with_code(101);
    error.assert_msg_contains(&[
        "defaultNetworks \"absent\" names no NetworkAttachmentDefinition in namespace \"netops\" (multusNamespace)",
        "no CNI config named \"absent\" was found in",
        &dir,
    ]);
    assert_eq!(summaries(&records(&h)), Vec::<String>::new());
    assert!(h.dirs.state(&pod.container_id).is_none());
}

#[test]
fn del_and_check_get_prev_result_in_the_delegates_version() {
    let h = Harness::new();
    h.dirs.install_recorder("recorder");
    // A 1.0.0 list whose plugin answers in 0.4.0.
    let cluster = json!({
        "cniVersion": VERSION,
        "name": "cluster",
        "plugins": [{
            "type": "recorder", "tag": "cluster", "recordFile": h.dirs.record_file(),
            "resultVersion": "0.4.0", "address": "10.250.0.2/24",
        }],
    });
    let conf = MultusConfig::new(VERSION, &h.dirs, cluster)
        .set("binDir", json!(h.dirs.bin_dir()))
        .build();
    let pod = h.sandbox();
    let result = h.runtime.add(&pod, &conf).success();
    let records_after_add = records(&h);
    let added = find(&records_after_add, "ADD", "cluster");
    assert_eq!(added.result.as_ref().unwrap()["cniVersion"], "0.4.0");
    // The recorder creates nothing: make the interface its result lists.
    pod.netns.ip(&[
        "link",
        "add",
        "eth0",
        "type",
        "veth",
        "peer",
        "name",
        "eth0-peer",
    ]);
    pod.netns
        .ip(&["addr", "add", "10.250.0.2/24", "dev", "eth0"]);

    h.runtime.check(&pod, &conf, &result).empty_success();
    h.runtime.del(&pod, &conf, Some(&result)).empty_success();

    let records = records(&h);
    for command in ["CHECK", "DEL"] {
        let prev = &find(&records, command, "cluster").stdin["prevResult"];
        assert_eq!(prev["cniVersion"], VERSION, "{command}: {prev}");
        assert_eq!(
            prev["ips"],
            json!([{"interface": 0, "address": "10.250.0.2/24"}]),
            "{command}: the 1.0.0 layout (no \"version\" key): {prev}"
        );
    }
    assert!(h.dirs.state(&pod.container_id).is_none());
}
