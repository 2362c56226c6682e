//! The ClusterRoles of the manifests grant exactly the API requests the code makes.
//!
//! The real binaries run against the Kubernetes API stand-in, whose request log records
//! every call: thin mode runs `multus` ADD and DEL (a pod with a NetworkAttachmentDefinition,
//! and a pod naming a missing one, which also emits a warning event); thick mode starts
//! `multus-daemon` (its watches) and runs ADD and DEL through `multus-shim`. Each request
//! maps to (API group, resource[/subresource], verb); the set must equal what the
//! ClusterRole grants: nothing missing (a request the cluster would refuse) and nothing
//! extra (a grant no code uses). Needs root and the reference CNI plugins.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_standin::{Options, PODS, RequestRecord, StandIn};
use multus_integration_tests::binaries::{Binaries, SYSTEM_PATH};
use multus_integration_tests::fixtures::{self, MultusConfig, Subnet};
use multus_integration_tests::manifests::{Manifest, THICK, THIN};
use multus_integration_tests::runtime::{Runtime, Sandbox};
use multus_integration_tests::thick::built;
use multus_integration_tests::{Harness, NODE_BRIDGE};
use serde_json::{Value, json};

const NETWORKS: &str = "k8s.v1.cni.cncf.io/networks";
const NODE_NAME: &str = "node-1";

/// (API group, resource or resource/subresource, verb).
type Grant = (String, String, String);

/// What a ClusterRole grants, one triple per group x resource x verb.
fn granted(manifest: &Manifest) -> BTreeSet<Grant> {
    let mut grants = BTreeSet::new();
    for rule in manifest.cluster_role().rules.iter().flatten() {
        for group in rule.api_groups.iter().flatten() {
            for resource in rule.resources.iter().flatten() {
                for verb in &rule.verbs {
                    grants.insert((group.clone(), resource.clone(), verb.clone()));
                }
            }
        }
    }
    grants
}

/// What the recorded requests need. Discovery and health paths (`/version`, `/api`)
/// are non-resource URLs every authenticated client may read: they need no grant.
fn needed(records: &[RequestRecord]) -> BTreeSet<Grant> {
    records
        .iter()
        .filter(|r| r.verb != "discovery")
        .map(|r| {
            let resource = r
                .resource
                .clone()
                .unwrap_or_else(|| panic!("a request to an unknown resource: {r:?}"));
            let group = match r.path.split('/').nth(1) {
                Some("api") => String::new(),
                Some("apis") => r.path.split('/').nth(2).unwrap_or_default().to_owned(),
                _ => panic!("unexpected API path {}", r.path),
            };
            let resource = match &r.subresource {
                Some(sub) => format!("{resource}/{sub}"),
                None => resource,
            };
            (group, resource, r.verb.clone())
        })
        .collect()
}

fn create_pod(api: &StandIn, sandbox: &mut Sandbox, annotations: &[(&str, &str)]) {
    create_pod_on(api, sandbox, annotations, NODE_NAME);
}

fn create_pod_on(api: &StandIn, sandbox: &mut Sandbox, annotations: &[(&str, &str)], node: &str) {
    let annotations: serde_json::Map<String, Value> = annotations
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect();
    let pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": sandbox.name, "annotations": annotations},
        "spec": {"nodeName": node, "containers": [{"name": "app", "image": "pause"}]}
    });
    let created = api.create(&PODS, &sandbox.namespace, pod).unwrap();
    sandbox.uid = created["metadata"]["uid"].as_str().unwrap().to_owned();
}

/// A node with the stand-in on its loopback and a macvlan NAD `macnet` in `default`.
fn node(version: &str) -> (Harness, StandIn) {
    let h = Harness::new();
    h.node.add_bridge(NODE_BRIDGE);
    let api = StandIn::start_with(Options {
        netns: Some(h.node.netns().path()),
        ..Options::default()
    })
    .unwrap();
    let nad = fixtures::macvlan_conf(version, "macnet", NODE_BRIDGE, Subnet::unique(), &h.dirs);
    api.create_nad("default", "macnet", &nad.to_string())
        .unwrap();
    (h, api)
}

#[test]
fn the_thin_cluster_role_grants_exactly_what_multus_requests() {
    let version = "1.0.0";
    let (h, api) = node(version);
    let cluster = fixtures::bridge_conf(
        version,
        "cluster",
        "mrs-cbr0",
        Subnet::unique(),
        true,
        &h.dirs,
    );
    let conf = MultusConfig::new(version, &h.dirs, cluster)
        .set("kubeconfig", json!(api.kubeconfig()))
        .build();
    api.clear_requests();

    let mut pod = h.sandbox();
    create_pod(&api, &mut pod, &[(NETWORKS, "macnet")]);
    let result = h.runtime.add(&pod, &conf).success();
    assert!(pod.netns.link("net1").is_some());
    h.runtime.del(&pod, &conf, Some(&result)).empty_success();

    // A missing NAD: the ADD fails (and rolls back) and a warning event is emitted.
    let mut missing = h.sandbox();
    create_pod(&api, &mut missing, &[(NETWORKS, "nonexistent")]);
    let failed = h.runtime.add(&missing, &conf);
    assert_ne!(failed.code, 0, "{}", failed.stdout);
    h.runtime.del(&missing, &conf, None).empty_success();
    h.assert_nothing_leaked(&[&pod, &missing]);

    let records = api.requests();
    let needed = needed(&records);
    let granted = granted(&Manifest::load(THIN));
    assert_eq!(
        needed,
        granted,
        "thin: the requests made (left) and the ClusterRole (right) differ; requests: {:#?}",
        records
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect::<Vec<_>>()
    );
}

/// `multus-daemon` running inside the node namespace.
struct Daemon {
    child: Child,
    log: PathBuf,
}

impl Daemon {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `multus-node probe daemon` against the socket until it passes (30 s at most).
fn wait_probe(socket: &Path, path: &str, daemon: &mut Daemon) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = Command::new(env!("CARGO_BIN_EXE_multus-node"))
            .args(["probe", "daemon", "--path", path, "--socket"])
            .arg(socket)
            .output()
            .unwrap();
        if out.status.success() {
            return;
        }
        if let Some(status) = daemon.child.try_wait().unwrap() {
            panic!("multus-daemon exited ({status}):\n{}", daemon.log());
        }
        assert!(
            Instant::now() < deadline,
            "probe {path} never passed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_thick_cluster_role_grants_exactly_what_the_daemon_requests() {
    let version = "1.0.0";
    let (h, api) = node(version);
    let root = tempfile::tempdir().unwrap();
    let net_d = root.path().join("net.d");
    std::fs::create_dir_all(&net_d).unwrap();
    let socket_dir = root.path().join("run/multus");
    let cluster = fixtures::bridge_conf(
        version,
        "cluster",
        "mrs-cbr0",
        Subnet::unique(),
        true,
        &h.dirs,
    );
    std::fs::write(net_d.join("10-cluster.conf"), cluster.to_string()).unwrap();
    let config = json!({
        "socketDir": socket_dir,
        "daemonSocketDir": socket_dir,
        "cniConfigDir": net_d,
        "multusAutoconfigDir": net_d,
        "multusConfigFile": "auto",
        "cniDir": h.dirs.cni_dir(),
        "binDir": Binaries::get().plugin_dir,
        "kubeconfig": api.kubeconfig(),
        "logToStderr": true,
        "logLevel": "verbose",
    });
    let config_path = root.path().join("daemon-config.json");
    std::fs::write(&config_path, config.to_string()).unwrap();
    api.clear_requests();

    let log = root.path().join("daemon.log");
    let log_file = std::fs::File::create(&log).unwrap();
    let child = Command::new(&Binaries::get().ip)
        .args(["netns", "exec", h.node.name()])
        .arg(built("multus-daemon"))
        .arg(format!("--config={}", config_path.display()))
        .env_clear()
        .env("PATH", SYSTEM_PATH)
        .env("MULTUS_NODE_NAME", NODE_NAME)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().unwrap())
        .stderr(log_file)
        .spawn()
        .unwrap();
    let mut daemon = Daemon { child, log };
    let socket = socket_dir.join("multus.sock");
    // The DaemonSet's probes, against the real daemon.
    wait_probe(&socket, "/healthz", &mut daemon);
    wait_probe(&socket, "/readyz", &mut daemon);

    let generated_path = net_d.join("00-multus.conflist");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !generated_path.exists() {
        assert!(
            Instant::now() < deadline,
            "no 00-multus.conflist:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let generated: Value =
        serde_json::from_slice(&std::fs::read(&generated_path).unwrap()).unwrap();
    let mut conf = generated["plugins"][0].clone();
    conf["name"] = generated["name"].clone();
    conf["cniVersion"] = generated["cniVersion"].clone();

    let mut binaries = Binaries::get().clone();
    binaries.multus = built("multus-shim");
    let shim = Runtime::new(h.node.name(), &binaries);
    let mut pod = h.sandbox();
    create_pod(&api, &mut pod, &[(NETWORKS, "macnet")]);
    let result = shim.add(&pod, &conf).success();
    assert!(pod.netns.link("net1").is_some(), "{}", daemon.log());
    shim.del(&pod, &conf, Some(&result)).empty_success();
    let mut missing = h.sandbox();
    create_pod(&api, &mut missing, &[(NETWORKS, "nonexistent")]);
    let failed = shim.add(&missing, &conf);
    assert_ne!(failed.code, 0, "{}", failed.stdout);
    shim.del(&missing, &conf, None).empty_success();
    // A pod the node's cache does not hold (here: bound to another node name; in a
    // cluster: created a moment ago) is read with one live GET.
    let mut uncached = h.sandbox();
    create_pod_on(&api, &mut uncached, &[], "node-2");
    let result = shim.add(&uncached, &conf).success();
    shim.del(&uncached, &conf, Some(&result)).empty_success();

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(daemon.child.id()).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let _ = daemon.child.wait();
    h.assert_nothing_leaked(&[&pod, &missing, &uncached]);

    let records = api.requests();
    let needed = needed(&records);
    let granted = granted(&Manifest::load(THICK));
    assert_eq!(
        needed,
        granted,
        "thick: the requests made (left) and the ClusterRole (right) differ; requests: {:#?}\n{}",
        records
            .iter()
            .map(|r| format!("{} {}?{}", r.method, r.path, r.query))
            .collect::<Vec<_>>(),
        daemon.log()
    );
}
