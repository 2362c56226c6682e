//! multus-ctl on real pods: the real `multus` binary with the reference plugins attaches
//! pods inside network namespaces the test creates (a node namespace per test, pods on
//! it, all removed when the test ends), then `multus-ctl pod` and `state show` explain
//! them. Then each pod is broken on purpose (an interface deleted inside the netns, the
//! state file removed, the NAD changed after attach, the netns gone) and the drift report
//! must catch it. Needs root and `containernetworking-plugins`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use multus_integration_tests::binaries::Binaries;
use multus_integration_tests::command::run_in;
use multus_integration_tests::ctl::{collapse, ctl_binary};
use multus_integration_tests::fixtures::NETWORKS_ANNOTATION;
use multus_integration_tests::netns::Output;
use multus_integration_tests::runtime::Sandbox;
use multus_integration_tests::{BRIDGE_NAD, Harness, MACVLAN_NAD, StandardNetworks};
use serde_json::Value;

const VERSION: &str = "1.0.0";

/// A node with the standard networks (cluster bridge, macvlan NAD, bridge NAD) and the
/// Multus configuration written to `<dir>/multus.conf` (without annotations: the
/// runtime passes them).
struct Node {
    h: Harness,
    nets: StandardNetworks,
    conf_path: PathBuf,
}

impl Node {
    fn new() -> Self {
        let h = Harness::new();
        let nets = h.standard_networks(VERSION);
        let conf = h.multus_config(VERSION, &nets).build();
        let conf_path = h.dirs.root().join("multus.conf");
        std::fs::write(&conf_path, conf.to_string()).unwrap();
        Self { h, nets, conf_path }
    }

    /// A pod `default/web` (fixed identity, so outputs are stable) attached through the
    /// harness' runtime to the cluster network, macnet and brnet.
    fn attached_pod(&self) -> Sandbox {
        let mut pod = self.h.sandbox();
        pod.container_id = "ctlpod0001".to_owned();
        pod.name = "web".to_owned();
        pod.uid = "uid-web".to_owned();
        let conf = self.request_conf();
        self.h.runtime.add(&pod, &conf).success();
        pod
    }

    /// The configuration as the runtime passes it for `web`, annotation included.
    fn request_conf(&self) -> Value {
        self.h
            .multus_config(VERSION, &self.nets)
            .networks(&format!("{MACVLAN_NAD}, {BRIDGE_NAD}"))
            .build()
    }

    fn conf_arg(&self) -> String {
        self.conf_path.display().to_string()
    }

    /// multus-ctl in the machine's namespace: it only reads (records, and the pod's
    /// namespace through setns).
    fn ctl(&self, args: &[&str]) -> Output {
        run_in(&ctl_binary(), self.h.dirs.root(), args, &[])
    }

    /// multus-ctl inside the node namespace: for commands that run delegates.
    fn ctl_on_node(&self, args: &[&str]) -> Output {
        self.h.node.netns().exec(&ctl_binary(), args)
    }

    /// What differs between runs, replaced: directories, namespace names, subnets,
    /// MACs and host-side veth names.
    fn stable(&self, pod: Option<&Sandbox>, text: &str) -> String {
        let mut text = text.replace(&self.h.dirs.root().display().to_string(), "<dir>");
        if let Some(pod) = pod {
            text = text.replace(&pod.netns.path_string(), "<pod-netns>");
        }
        for (subnet, name) in [
            (self.nets.cluster, "<cluster>"),
            (self.nets.macnet, "<macnet>"),
            (self.nets.brnet, "<brnet>"),
        ] {
            let cidr = subnet.cidr();
            let prefix = cidr.trim_end_matches("0/24");
            text = text.replace(prefix, &format!("{name}."));
        }
        redact_macs(&text)
    }
}

/// `aa:bb:cc:dd:ee:ff` → `<mac>` (the loopback's all-zero one is kept).
fn redact_macs(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if i + 17 <= text.len()
            && is_mac(&bytes[i..i + 17])
            && &text[i..i + 17] != "00:00:00:00:00:00"
        {
            out.push_str("<mac>");
            i += 17;
        } else {
            let c = text[i..].chars().next().unwrap();
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

fn is_mac(bytes: &[u8]) -> bool {
    bytes.iter().enumerate().all(|(i, b)| {
        if i % 3 == 2 {
            *b == b':'
        } else {
            b.is_ascii_hexdigit()
        }
    })
}

fn findings(value: &Value) -> Vec<(String, String)> {
    value["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().to_owned(),
                f["subject"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn a_healthy_pod_is_explained_without_findings() {
    let node = Node::new();
    let pod = node.attached_pod();
    let conf = node.conf_arg();

    let out = node.ctl(&["--no-api", "pod", "default/web", "--conf", &conf]);
    let table = node.stable(Some(&pod), out.expect(0));
    assert!(table.contains("Findings: none"), "{table}");
    insta::assert_snapshot!("netns_pod_healthy_table", collapse(&table));

    let out = node.ctl(&[
        "--no-api",
        "pod",
        "default/web",
        "--conf",
        &conf,
        "-o",
        "json",
    ]);
    out.expect(0);
    let json = node.stable(Some(&pod), &out.stdout);
    insta::assert_snapshot!("netns_pod_healthy_json", json);
    let value: Value = serde_json::from_str(&out.stdout).unwrap();
    // The live view is what `ip` sees.
    for ifname in ["eth0", "net1", "net2"] {
        let live = pod.netns.link(ifname).expect("link");
        let reported = value["live"]["interfaces"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["name"] == ifname)
            .unwrap_or_else(|| panic!("{ifname} not reported: {value:#}"));
        assert_eq!(reported["mac"], live.mac.as_str());
        let addresses: Vec<&str> = reported["addresses"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let expected: Vec<&str> = live
            .addresses
            .iter()
            .map(String::as_str)
            .filter(|a| !a.starts_with("fe80:"))
            .collect();
        assert_eq!(addresses, expected, "{ifname}");
    }

    let out = node.ctl(&["state", "show", &pod.container_id, "--conf", &conf]);
    let table = node.stable(Some(&pod), out.expect(0));
    insta::assert_snapshot!("netns_state_show_table", collapse(&table));
    let out = node.ctl(&[
        "state",
        "show",
        &pod.container_id,
        "--conf",
        &conf,
        "-o",
        "json",
    ]);
    out.expect(0);
    let value = out.json();
    assert_eq!(value["attachments"].as_array().unwrap().len(), 3);
    assert_eq!(value["attachments"][1]["network"], "default/macnet");
    assert_eq!(
        value["attachments"][1]["pluginTypes"],
        serde_json::json!(["macvlan"])
    );

    node.h
        .runtime
        .del(&pod, &node.request_conf(), None)
        .empty_success();
    node.h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn an_interface_deleted_inside_the_netns_is_caught() {
    let node = Node::new();
    let pod = node.attached_pod();
    let conf = node.conf_arg();
    pod.netns.ip(&["link", "del", "net1"]);
    pod.netns
        .ip(&["address", "add", "192.0.2.9/32", "dev", "net2"]);

    let out = node.ctl(&["--no-api", "pod", "default/web", "--conf", &conf]);
    let table = node.stable(Some(&pod), out.expect(1));
    insta::assert_snapshot!("netns_pod_interface_deleted_table", collapse(&table));
    let out = node.ctl(&[
        "--no-api",
        "pod",
        "default/web",
        "--conf",
        &conf,
        "-o",
        "json",
    ]);
    out.expect(1);
    let value = out.json();
    assert_eq!(
        findings(&value),
        [
            ("missing-interface".to_owned(), "net1".to_owned()),
            ("unexpected-address".to_owned(), "net2".to_owned()),
        ]
    );
    assert_eq!(value["attachments"][1]["status"], "missing-interface");

    // multus' own CHECK agrees, through multus-ctl exec (on the node, as a runtime).
    let check = node.ctl_on_node(&[
        "exec",
        "check",
        "--conf",
        &conf,
        "--netns",
        &pod.netns.path_string(),
        "--container-id",
        &pod.container_id,
        "--pod",
        "default/web",
        "--pod-uid",
        "uid-web",
        "--cni-path",
        &Binaries::get().plugin_dir.display().to_string(),
    ]);
    assert_eq!(check.code, 1, "{}{}", check.stdout, check.stderr);
    assert!(check.stdout.contains("CHECK failed"), "{}", check.stdout);
    assert!(check.stdout.contains("net1"), "{}", check.stdout);

    node.h
        .runtime
        .del(&pod, &node.request_conf(), None)
        .empty_success();
    node.h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn a_removed_state_file_is_caught_with_the_api() {
    let node = Node::new();
    let pod = node.attached_pod();
    let record = node
        .h
        .dirs
        .sandboxes_dir()
        .join(format!("{}.json", pod.container_id));
    let status = serde_json::to_string(&node.h.dirs.network_status(&pod.container_id)).unwrap();
    // The pod as the API server knows it: its annotation and network-status.
    let api = k8s_standin::StandIn::start().unwrap();
    let networks = format!("{MACVLAN_NAD}, {BRIDGE_NAD}");
    api.create_pod(
        "default",
        "web",
        &[
            (NETWORKS_ANNOTATION, networks.as_str()),
            ("k8s.v1.cni.cncf.io/network-status", status.as_str()),
        ],
    );
    std::fs::remove_file(&record).unwrap();

    let kubeconfig = api.kubeconfig().display().to_string();
    let cni_dir = node.h.dirs.cni_dir().display().to_string();
    let netns = pod.netns.path_string();
    let args = [
        "--kubeconfig",
        kubeconfig.as_str(),
        "pod",
        "default/web",
        "--cni-dir",
        cni_dir.as_str(),
        "--netns",
        netns.as_str(),
    ];
    let out = node.ctl(&args);
    let uid = api
        .get(&k8s_standin::PODS, "default", "web")
        .and_then(|p| p.pointer("/metadata/uid")?.as_str().map(str::to_owned))
        .unwrap();
    let table = node
        .stable(Some(&pod), out.expect(1))
        .replace(&kubeconfig, "<kubeconfig>")
        .replace(api.url(), "https://127.0.0.1:<port>")
        .replace(&uid, "<uid>");
    insta::assert_snapshot!("netns_pod_state_removed_table", collapse(&table));
    let mut json_args = args.to_vec();
    json_args.extend(["-o", "json"]);
    let out = node.ctl(&json_args);
    out.expect(1);
    let value = out.json();
    assert_eq!(
        findings(&value),
        [
            ("no-record".to_owned(), "pod default/web".to_owned()),
            ("extra-interface".to_owned(), "eth0".to_owned()),
            ("extra-interface".to_owned(), "net1".to_owned()),
            ("extra-interface".to_owned(), "net2".to_owned()),
        ]
    );
    assert_eq!(value["networkStatus"]["source"], "api");
    assert_eq!(
        value["requested"]["networks"][0]["network"],
        "default/macnet"
    );

    // Without its record, DEL rebuilds the plan from the configuration and annotation.
    node.h
        .runtime
        .del(&pod, &node.request_conf(), None)
        .empty_success();
    node.h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn a_nad_changed_after_attach_is_caught() {
    let node = Node::new();
    let pod = node.attached_pod();
    let conf = node.conf_arg();
    // brnet moves to another bridge and MTU after the pod was attached.
    let mut changed: Value = {
        let path = nad_file(node.h.dirs.nad_dir().as_path(), BRIDGE_NAD);
        let docs =
            multus_core::nad::parse_manifests(&std::fs::read_to_string(path).unwrap()).unwrap();
        serde_json::from_str(&docs[0].config).unwrap()
    };
    changed["bridge"] = Value::from("mrs-br9");
    changed["mtu"] = Value::from(1400);
    node.h.dirs.write_nad_json(BRIDGE_NAD, &changed);

    let out = node.ctl(&["--no-api", "pod", "default/web", "--conf", &conf]);
    let table = node.stable(Some(&pod), out.expect(1));
    insta::assert_snapshot!("netns_pod_nad_changed_table", collapse(&table));
    let out = node.ctl(&[
        "--no-api",
        "pod",
        "default/web",
        "--conf",
        &conf,
        "-o",
        "json",
    ]);
    out.expect(1);
    let value = out.json();
    assert_eq!(
        findings(&value),
        [("nad-changed".to_owned(), "default/brnet".to_owned())]
    );
    let detail = value["findings"][0]["detail"].as_str().unwrap();
    assert!(
        detail.contains(r#"bridge: "mrs-br1" → "mrs-br9""#),
        "{detail}"
    );
    assert!(detail.contains("mtu: (absent) → 1400"), "{detail}");

    // DEL uses the recorded config: the old bridge's attachment goes away cleanly.
    node.h
        .runtime
        .del(&pod, &node.request_conf(), None)
        .empty_success();
    node.h.assert_nothing_leaked(&[&pod]);
}

fn nad_file(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("default-{name}.yaml"))
}

#[test]
fn a_gone_netns_is_stale_and_prune_tears_it_down() {
    let node = Node::new();
    let pod = node.attached_pod();
    let conf = node.conf_arg();
    // The runtime lost the sandbox without calling DEL.
    node.h.node.delete_pod_netns(&pod.netns);

    let out = node.ctl(&[
        "--no-api",
        "pod",
        "default/web",
        "--conf",
        &conf,
        "-o",
        "json",
    ]);
    out.expect(1);
    let value = out.json();
    assert_eq!(
        findings(&value),
        [("stale-state".to_owned(), "record ctlpod0001".to_owned())]
    );
    let out = node.ctl(&["state", "list", "--conf", &conf, "-o", "json"]);
    out.expect(1);
    assert_eq!(out.json()["sandboxes"][0]["stale"], true);

    let multus = Binaries::get().multus.display().to_string();
    let plugins = Binaries::get().plugin_dir.display().to_string();
    let prune = |extra: &[&str]| {
        let mut args = vec![
            "state",
            "prune",
            "--all",
            "--conf",
            &conf,
            "--multus",
            &multus,
            "--cni-path",
            &plugins,
        ];
        args.extend_from_slice(extra);
        node.ctl_on_node(&args)
    };
    let dry = prune(&["--dry-run"]);
    assert_eq!(dry.code, 0, "{}{}", dry.stdout, dry.stderr);
    assert!(
        dry.stdout
            .contains("would run DEL for default/web (eth0, net1, net2)"),
        "{}",
        dry.stdout
    );
    assert_eq!(node.h.dirs.leases().len(), 3, "dry run changes nothing");

    let done = prune(&["-o", "json"]);
    assert_eq!(done.code, 0, "{}{}", done.stdout, done.stderr);
    let report: Value = serde_json::from_str(&done.stdout).unwrap();
    assert_eq!(report["actions"][0]["result"], "deleted", "{report:#}");
    // Every delegate released its lease; no record, no veth left on the node.
    node.h.assert_nothing_leaked(&[]);
}

#[test]
fn exec_drives_real_multus_like_a_runtime() {
    let node = Node::new();
    let pod = node.h.sandbox();
    let conf = node.conf_arg();
    let netns = pod.netns.path_string();
    let plugins = Binaries::get().plugin_dir.display().to_string();
    let networks = format!("{NETWORKS_ANNOTATION}={BRIDGE_NAD}@data0, {MACVLAN_NAD}");
    let base = |command: &'static str| {
        vec![
            "exec".to_owned(),
            command.to_owned(),
            "--conf".to_owned(),
            conf.clone(),
            "--netns".to_owned(),
            netns.clone(),
            "--container-id".to_owned(),
            "ctlexec01".to_owned(),
            "--pod".to_owned(),
            "default/api".to_owned(),
            "--pod-uid".to_owned(),
            "uid-api".to_owned(),
            "--cni-path".to_owned(),
            plugins.clone(),
            "--annotation".to_owned(),
            networks.clone(),
        ]
    };
    let run = |command: &'static str, extra: &[&str]| {
        let mut args = base(command);
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        let refs: Vec<&str> = args.iter().map(String::as_str).collect();
        node.ctl_on_node(&refs)
    };
    let add = run("add", &["-o", "json"]);
    assert_eq!(add.code, 0, "{}{}", add.stdout, add.stderr);
    let report: Value = serde_json::from_str(&add.stdout).unwrap();
    assert_eq!(report["success"], true);
    assert_eq!(report["result"]["cniVersion"], VERSION);
    assert_eq!(pod.netns.link_names(), ["data0", "eth0", "lo", "net2"]);

    let out = node.ctl(&[
        "--no-api",
        "pod",
        "default/api",
        "--conf",
        &conf,
        "-o",
        "json",
    ]);
    out.expect(0);
    let value = out.json();
    assert_eq!(value["requested"]["source"], "record");
    assert_eq!(value["requested"]["networks"][0]["attachedAs"], "data0");
    assert!(
        value["findings"].as_array().unwrap().is_empty(),
        "{value:#}"
    );

    let check = run("check", &[]);
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    assert!(check.stdout.contains("CHECK succeeded"), "{}", check.stdout);
    let del = run("del", &[]);
    assert_eq!(del.code, 0, "{}{}", del.stdout, del.stderr);
    node.h.assert_nothing_leaked(&[&pod]);
}
