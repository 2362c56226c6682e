//! Thick mode with a per-node identity (`perNodeCertificate`): the real daemon in a
//! node namespace obtains `system:multus:node-1`'s certificate through the real CSR
//! approver (`multus-daemon approve-csrs`) and the API stand-in's signer, serves pods
//! across two rotations of a 4 s certificate without one failed request, writes
//! network-status as the node, and reuses a valid certificate after a restart.
//! Needs root and `containernetworking-plugins`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use multus_integration_tests::thick as support;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use k8s_standin::{PODS, StandIn, UserInfo};
use multus_integration_tests::binaries::{Binaries, SYSTEM_PATH};
use serde_json::json;
use support::{NODE_NAME, Thick, daemon_binary, plugin_stdin};

const STATUS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/network-status";

/// The approver process; killed on drop.
struct Approver {
    child: Child,
    log: PathBuf,
}

impl Approver {
    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Approver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Users, kubeconfigs and the node object; the approver running in the node.
fn setup(thick: &mut Thick, duration: &str) -> (Approver, PathBuf) {
    let root = thick.root.path().to_owned();
    let api: &StandIn = thick.api();
    api.create_node(NODE_NAME).unwrap();
    api.add_user(
        "bootstrap",
        UserInfo::service_account_on_node("kube-system", "multus", Some(NODE_NAME)),
    );
    api.add_user(
        "approver",
        UserInfo::service_account_on_node("kube-system", "multus-csr-approver", None),
    );
    let bootstrap = root.join("bootstrap.kubeconfig");
    api.write_kubeconfig(&bootstrap, "bootstrap").unwrap();
    let approver_config = root.join("approver.kubeconfig");
    api.write_kubeconfig(&approver_config, "approver").unwrap();
    let log = root.join("approver.log");
    let child = Command::new(&Binaries::get().ip)
        .args(["netns", "exec", thick.h.node.name()])
        .arg(daemon_binary())
        .args(["approve-csrs", "--min-duration=1s", "--kubeconfig"])
        .arg(&approver_config)
        .env_clear()
        .env("PATH", SYSTEM_PATH)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let cert_dir = root.join("certs");
    thick.set(
        "perNodeCertificate",
        json!({"enabled": true, "bootstrapKubeconfig": bootstrap,
               "certDir": cert_dir, "certDuration": duration}),
    );
    // The per-node identity replaces the kubeconfig's credentials.
    thick.config.as_object_mut().unwrap().remove("kubeconfig");
    (Approver { child, log }, cert_dir)
}

fn primary(thick: &Thick) -> serde_json::Value {
    thick.bridge_cluster_network("0.4.0");
    thick.wait_generated("00-multus.conf", |_| true)
}

fn approved_csrs(api: &StandIn) -> usize {
    api.csrs()
        .iter()
        .filter(|c| {
            c["status"]["certificate"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        })
        .count()
}

#[test]
fn the_daemon_serves_pods_as_its_node_across_two_rotations() {
    let mut thick = Thick::new(true);
    let (approver, cert_dir) = setup(&mut thick, "4s");
    thick.start_daemon();
    let conf = plugin_stdin(&primary(&thick));
    let file = cert_dir.join("multus-client-current.pem");
    assert!(file.exists(), "{}", thick.daemon_log());
    thick.api().clear_requests();

    let started = Instant::now();
    let mut pods = 0;
    while started.elapsed() < Duration::from_secs(11) || approved_csrs(thick.api()) < 3 {
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "fewer than two rotations:\n{}\n{}",
            thick.daemon_log(),
            approver.log()
        );
        let pod = thick.api_pod(&[]);
        thick.wait_cached_pods(1);
        let result = thick.shim.add(&pod, &conf).success();
        let stored = thick.api().get(&PODS, "default", &pod.name).unwrap();
        assert!(
            stored["metadata"]["annotations"][STATUS_ANNOTATION].is_string(),
            "pod {pods}: no network-status\n{}",
            thick.daemon_log()
        );
        thick.shim.del(&pod, &conf, Some(&result)).empty_success();
        thick.api().delete(&PODS, "default", &pod.name).unwrap();
        thick.h.assert_nothing_leaked(&[&pod]);
        pods += 1;
    }
    assert!(pods >= 3);
    let records = thick.api().requests();
    let refused: Vec<_> = records.iter().filter(|r| r.status >= 400).collect();
    assert!(refused.is_empty(), "{refused:#?}\n{}", thick.daemon_log());
    // Every request of the daemon (watches, status patches, events, renewals) came from
    // the node's identity; the bootstrap token is no longer used.
    let daemon_users: std::collections::BTreeSet<String> = records
        .iter()
        .filter_map(|r| r.user.clone())
        .filter(|u| !u.ends_with("multus-csr-approver"))
        .collect();
    assert_eq!(
        daemon_users.into_iter().collect::<Vec<_>>(),
        ["system:multus:node-1"]
    );
    let patches = records
        .iter()
        .filter(|r| r.subresource.as_deref() == Some("status") && r.verb == "patch")
        .count();
    assert!(patches >= pods, "{patches} status patches for {pods} pods");
    let csrs = thick.api().csrs();
    assert!(
        csrs[1..]
            .iter()
            .all(|c| c["spec"]["username"] == "system:multus:node-1")
    );
    assert!(thick.daemon_log().contains("certificate rotated"));
    assert_eq!(thick.stop_daemon(), 0);
}

#[test]
fn a_restart_reuses_the_valid_certificate() {
    let mut thick = Thick::new(true);
    let (approver, cert_dir) = setup(&mut thick, "1h");
    thick.start_daemon();
    assert_eq!(approved_csrs(thick.api()), 1, "{}", approver.log());
    let first = std::fs::read(cert_dir.join("multus-client-current.pem")).unwrap();
    assert_eq!(thick.stop_daemon(), 0);
    thick.start_daemon();
    assert!(
        thick
            .daemon_log()
            .contains("reusing the stored certificate"),
        "{}",
        thick.daemon_log()
    );
    assert_eq!(thick.api().csrs().len(), 1, "no new CSR");
    assert_eq!(
        std::fs::read(cert_dir.join("multus-client-current.pem")).unwrap(),
        first
    );
    let mode = |p: &Path| {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    };
    assert_eq!(mode(&cert_dir), 0o700);
    assert_eq!(mode(&cert_dir.join("multus-client-current.pem")), 0o600);
    assert_eq!(thick.stop_daemon(), 0);
}
