//! Thick mode end to end: the real `multus-daemon` in a node namespace with the
//! Kubernetes API stand-in, `multus-shim` driven as the runtime drives it, and the
//! reference plugins attaching real interfaces to pod namespaces.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use multus_integration_tests::thick as support;

use std::time::Duration;

use k8s_standin::PODS;
use multus_integration_tests::fixtures::{self, NETWORKS_ANNOTATION, Subnet};
use multus_integration_tests::{CLUSTER_NETWORK, MACVLAN_NAD, NODE_BRIDGE};
use serde_json::{Value, json};
use support::{Thick, cni_env, pairs, plugin_stdin, upstream_post};

const STATUS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/network-status";

/// The stand-in's `get` requests (watches and lists excluded) and writes.
fn api_counts(thick: &Thick) -> (usize, usize, usize) {
    let records = thick.api().requests();
    let gets = records.iter().filter(|r| r.verb == "get").count();
    let patches = records
        .iter()
        .filter(|r| r.verb == "patch" && r.resource.as_deref() == Some("pods"))
        .count();
    let events = records
        .iter()
        .filter(|r| r.verb == "create" && r.resource.as_deref() == Some("events"))
        .count();
    (gets, patches, events)
}

#[test]
fn add_check_del_through_the_shim_with_the_api_and_real_plugins() {
    let mut thick = Thick::new(true);
    let version = "0.4.0";
    thick.h.node.add_bridge(NODE_BRIDGE);
    let (cluster, macnet) = (Subnet::unique(), Subnet::unique());
    let primary = thick.write_primary(
        "10-cluster.conf",
        &fixtures::bridge_conf(
            version,
            CLUSTER_NETWORK,
            "mrs-cbr0",
            cluster,
            true,
            &thick.h.dirs,
        ),
    );
    let nad = fixtures::macvlan_conf(version, MACVLAN_NAD, NODE_BRIDGE, macnet, &thick.h.dirs);
    thick
        .api()
        .create_nad("default", MACVLAN_NAD, &nad.to_string())
        .unwrap();
    thick.start_daemon();

    // The daemon wrote 00-multus.conf for the shim.
    let generated = thick.wait_generated("00-multus.conf", |_| true);
    assert_eq!(generated["type"], "multus-shim");
    assert_eq!(generated["clusterNetwork"], primary.display().to_string());
    assert_eq!(
        generated["daemonSocketDir"],
        thick.socket_dir().display().to_string()
    );
    let conf = plugin_stdin(&generated);

    let pod = thick.api_pod(&[(NETWORKS_ANNOTATION, MACVLAN_NAD)]);
    thick.wait_cached_pods(1);
    thick.api().clear_requests();

    let result = thick.shim.add(&pod, &conf).success();
    assert_eq!(
        result["cniVersion"], version,
        "converted to the shim conf's version"
    );
    let eth0 = pod.netns.link("eth0").expect("eth0 in the pod");
    assert!(eth0.ips().iter().any(|ip| cluster.contains(ip)), "{eth0:?}");
    let net1 = pod.netns.link("net1").expect("net1 in the pod");
    assert!(net1.ips().iter().any(|ip| macnet.contains(ip)), "{net1:?}");

    // Zero API reads (caches), one status write (plus the best-effort events).
    let (gets, patches, events) = api_counts(&thick);
    assert_eq!(
        (gets, patches),
        (0, 1),
        "{:#?}\n{}",
        thick.api().requests(),
        thick.daemon_log()
    );
    assert_eq!(events, 2);
    let stored = thick.api().get(&PODS, "default", &pod.name).unwrap();
    let status: Vec<Value> = serde_json::from_str(
        stored["metadata"]["annotations"][STATUS_ANNOTATION]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(status.len(), 2);
    assert_eq!(status[1]["name"], format!("default/{MACVLAN_NAD}"));
    assert_eq!(status[1]["interface"], "net1");

    thick.shim.check(&pod, &conf, &result).empty_success();
    thick.api().clear_requests();
    thick.shim.del(&pod, &conf, Some(&result)).empty_success();
    assert_eq!(api_counts(&thick), (0, 0, 0), "DEL reads nothing");
    thick.h.assert_nothing_leaked(&[&pod]);

    let metrics = thick.metrics();
    for sample in [
        r#"multus_server_request_total{handler="/cni",code="200",method="POST"} 3"#,
        r#"multus_cni_request_duration_seconds_count{command="ADD"} 1"#,
        r#"multus_api_requests_total{verb="patch",resource="pods"} 1"#,
        r#"multus_cache_objects{kind="network-attachment-definitions"} 1"#,
    ] {
        assert!(metrics.contains(sample), "missing {sample}:\n{metrics}");
    }
    assert!(
        metrics.contains(r#"multus_delegate_exec_duration_seconds_count{plugin="macvlan"} 3"#),
        "{metrics}"
    );
    assert_eq!(thick.stop_daemon(), 0);
    assert!(
        thick.net_d().join("00-multus.conf").exists(),
        "the conf is kept across daemon restarts"
    );
}

#[test]
fn a_nad_created_just_before_its_pod_is_read_live_once() {
    let mut thick = Thick::new(true);
    let version = "1.0.0";
    thick.bridge_cluster_network(version);
    thick.start_daemon();
    let generated = thick.wait_generated("00-multus.conflist", |_| true);
    let conf = plugin_stdin(&generated);
    // The watch may or may not have seen them yet: the request must work either way,
    // with at most one live GET for the NAD and one for the pod.
    let nad = fixtures::macvlan_conf(
        version,
        "fresh",
        NODE_BRIDGE,
        Subnet::unique(),
        &thick.h.dirs,
    );
    thick.api().clear_requests();
    thick
        .api()
        .create_nad("default", "fresh", &nad.to_string())
        .unwrap();
    let pod = thick.api_pod(&[(NETWORKS_ANNOTATION, "fresh")]);
    let result = thick.shim.add(&pod, &conf).success();
    assert_eq!(result["cniVersion"], "1.0.0");
    assert!(pod.netns.link("net1").is_some());
    let (gets, _, _) = api_counts(&thick);
    assert!(gets <= 2, "{:#?}", thick.api().requests());
    thick.shim.del(&pod, &conf, Some(&result)).empty_success();
    thick.h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn upstream_request_format_over_raw_http_reaches_delegates_with_the_runtime_args() {
    let mut thick = Thick::new(false);
    thick.h.dirs.install_recorder("recorder");
    let version = "1.0.0";
    let mut recorder = fixtures::recorder_conf(version, "rec", "cluster", &thick.h.dirs);
    recorder["address"] = json!("10.99.0.5/24");
    let primary = thick.write_primary("10-rec.conf", &recorder);
    thick.start_daemon();
    // Upstream's generator output, hand-written: what an upstream 00-multus.conf holds.
    let stdin = json!({"cniVersion":"0.3.1","name":"multus-cni-network","type":"multus-shim",
        "clusterNetwork": primary});
    let pod = thick.h.sandbox();
    let mut env = cni_env("ADD", &pod, "eth0");
    // Runtime CNI_ARGS with a value holding '=' (upstream rejects it).
    env[4].1 = format!("{};FOO=a=b", pod.cni_args());
    env[5].1 = format!("/nonexistent:{}", env[5].1);
    let (status, body) = upstream_post(
        &thick.socket(),
        "/cni",
        &pairs(&env),
        stdin.to_string().as_bytes(),
        "",
    );
    assert_eq!(status, 200, "{body}\n{}", thick.daemon_log());
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["Result"]["cniVersion"], "1.0.0", "{answer}");
    assert_eq!(answer["Result"]["ips"][0]["address"], "10.99.0.5/24");

    let records = multus_integration_tests::recording::read_records(&thick.h.dirs.record_file());
    let add = records.iter().find(|r| r.command == "ADD").unwrap();
    assert!(
        add.args
            .contains(&format!("K8S_POD_INFRA_CONTAINER_ID={}", pod.container_id)),
        "{}",
        add.args
    );
    assert!(add.args.contains("FOO=a=b"), "{}", add.args);
    assert!(
        add.path.contains("/nonexistent"),
        "the runtime's CNI_PATH: {}",
        add.path
    );
    assert!(
        add.path
            .starts_with(&thick.h.dirs.bin_dir().display().to_string()),
        "binDir first: {}",
        add.path
    );

    // Upstream's shim sends the whole environment; keys beyond CNI_* are harmless.
    let mut del_env = cni_env("DEL", &pod, "eth0");
    del_env.push(("PATH".into(), "/usr/bin".into()));
    let (status, body) = upstream_post(
        &thick.socket(),
        "/cni",
        &pairs(&del_env),
        stdin.to_string().as_bytes(),
        "",
    );
    assert_eq!((status, body.as_str()), (200, ""));
    assert!(thick.h.dirs.sandbox_files().is_empty());

    // Go decodes `config: null` as no bytes: a clear error, nothing applied.
    let (status, body) = upstream_post(&thick.socket(), "/cni", &pairs(&env), b"", "");
    assert_eq!(status, 400, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error["code"], 6, "{error}");
}

#[test]
fn delegate_hot_plug_into_a_running_pod() {
    let mut thick = Thick::new(true);
    thick.h.node.add_bridge(NODE_BRIDGE);
    let version = "1.0.0";
    thick.write_primary(
        "10-cluster.conf",
        &fixtures::bridge_conf(
            version,
            CLUSTER_NETWORK,
            "mrs-cbr0",
            Subnet::unique(),
            true,
            &thick.h.dirs,
        ),
    );
    thick.start_daemon();
    let conf = plugin_stdin(&thick.wait_generated("00-multus.conflist", |_| true));
    let pod = thick.api_pod(&[]);
    let result = thick.shim.add(&pod, &conf).success();
    assert_eq!(pod.netns.link_names(), vec!["eth0", "lo"]);

    // KubeVirt-style hot-plug: one macvlan with a static IP and MAC.
    let delegate = json!({
        "cniVersion": version, "name": "hotplug", "type": "macvlan", "master": NODE_BRIDGE,
        "mode": "bridge", "capabilities": {"mac": true, "ips": true},
        "ipam": {"type": "static", "capabilities": {"ips": true}}
    });
    let attributes = r#","interfaceAttributes":{"ips":["10.123.0.7/24"],"mac":"02:aa:bb:cc:dd:ee","cni-args":{"note":"x"}}"#;
    let env = cni_env("ADD", &pod, "net5");
    let (status, body) = upstream_post(
        &thick.socket(),
        "/delegate",
        &pairs(&env),
        delegate.to_string().as_bytes(),
        attributes,
    );
    assert_eq!(status, 200, "{body}\n{}", thick.daemon_log());
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["Result"]["cniVersion"], "1.0.0");
    let net5 = pod.netns.link("net5").expect("net5 hot-plugged");
    assert_eq!(net5.ips(), vec!["10.123.0.7"]);
    assert_eq!(net5.mac, "02:aa:bb:cc:dd:ee");

    let env = cni_env("DEL", &pod, "net5");
    let (status, body) = upstream_post(
        &thick.socket(),
        "/delegate",
        &pairs(&env),
        delegate.to_string().as_bytes(),
        "",
    );
    assert_eq!((status, body.as_str()), (200, ""));
    assert!(
        pod.netns.link("net5").is_none(),
        "DEL removes the hot-plugged interface"
    );
    assert!(pod.netns.link("eth0").is_some());

    // DEL runs the engine's conflist loop: every plugin in reverse, and a plugin that
    // failed is reported before a binary that is missing.
    thick.h.dirs.install_script(
        "delfail",
        r#"cat >/dev/null; echo '{"cniVersion":"1.0.0","code":999,"msg":"del failed here"}'; exit 1"#,
    );
    let list = json!({"cniVersion": version, "name": "hotlist", "plugins": [
        {"type": "delfail"}, {"type": "doesnotexist"}
    ]});
    let (status, body) = upstream_post(
        &thick.socket(),
        "/delegate",
        &pairs(&env),
        list.to_string().as_bytes(),
        "",
    );
    assert_ne!(status, 200, "{body}");
    assert!(body.contains("del failed here"), "{body}");
    assert!(!body.contains("failed to find plugin"), "{body}");

    // GC is not a hot-plug command.
    let env = cni_env("GC", &pod, "net5");
    let (status, body) = upstream_post(
        &thick.socket(),
        "/delegate",
        &pairs(&env),
        delegate.to_string().as_bytes(),
        "",
    );
    assert_eq!(status, 400);
    assert!(body.contains("unknown cmd type"), "{body}");

    thick.shim.del(&pod, &conf, Some(&result)).empty_success();
    thick.h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn file_based_networks_work_in_the_daemon_without_a_cluster() {
    let mut thick = Thick::new(false);
    let nets = thick.h.standard_networks("0.4.0");
    let cluster = fixtures::bridge_conf(
        "0.4.0",
        CLUSTER_NETWORK,
        "mrs-cbr0",
        nets.cluster,
        true,
        &thick.h.dirs,
    );
    thick.write_primary("10-cluster.conf", &cluster);
    thick.start_daemon();
    let conf = plugin_stdin(&thick.wait_generated("00-multus.conf", |_| true));
    let mut conf = conf;
    conf["runtimeConfig"] =
        json!({"io.kubernetes.cri.pod-annotations": {NETWORKS_ANNOTATION: MACVLAN_NAD}});
    let pod = thick.h.sandbox();
    let result = thick.shim.add(&pod, &conf).success();
    assert_eq!(pod.netns.link_names(), vec!["eth0", "lo", "net1"]);
    thick.shim.check(&pod, &conf, &result).empty_success();
    thick.shim.del(&pod, &conf, Some(&result)).empty_success();
    thick.h.assert_nothing_leaked(&[&pod]);
    let _ = Duration::ZERO;
}

#[test]
fn parallel_attach_set_in_the_daemon_config_overlaps_the_additional_networks() {
    use multus_integration_tests::recording::{Record, read_records};
    let mut thick = Thick::new(true);
    thick.h.dirs.install_recorder("recorder");
    thick.set("parallelAttach", json!(true));
    thick.set("parallelAttachLimit", json!(3));
    let mut cluster = fixtures::recorder_conf("1.0.0", "cluster", "cluster", &thick.h.dirs);
    cluster["address"] = json!("10.250.0.2/24");
    thick.write_primary("10-rec.conf", &cluster);
    for name in ["r1", "r2", "r3"] {
        let mut nad = fixtures::recorder_conf("1.0.0", name, name, &thick.h.dirs);
        nad["sleepOnAdd"] = json!(300);
        nad["sleepOnDel"] = json!(300);
        thick
            .api()
            .create_nad("default", name, &nad.to_string())
            .unwrap();
    }
    thick.start_daemon();
    let conf = plugin_stdin(&thick.wait_generated("00-multus.conflist", |_| true));
    let pod = thick.api_pod(&[(NETWORKS_ANNOTATION, "r1, r2, r3")]);
    thick.wait_cached_pods(1);
    thick.shim.add(&pod, &conf).success();
    thick.shim.del(&pod, &conf, None).empty_success();
    let records = read_records(&thick.h.dirs.record_file());
    for command in ["ADD", "DEL"] {
        let calls: Vec<&Record> = records
            .iter()
            .filter(|r| r.command == command && r.tag() != "cluster")
            .collect();
        assert_eq!(calls.len(), 3, "{records:#?}");
        assert!(
            calls
                .iter()
                .enumerate()
                .any(|(i, a)| calls[i + 1..].iter().any(|b| a.overlaps(b))),
            "no two {command}s in flight at once in the daemon: {records:#?}\n{}",
            thick.daemon_log()
        );
    }
    assert!(thick.h.dirs.sandbox_files().is_empty());
}
