//! Per-node certificates against the Kubernetes API stand-in (which signs approved
//! CSRs with its CA and authenticates client certificates, checking their validity on
//! every request as the API server does): issue, store, reuse after a restart, deny,
//! time out, and rotation while requests keep succeeding.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Pod;
use k8s_standin::{CSRS, StandIn};
use kube::Api;
use multus_cni::identity::manager::Origin;
use multus_cni::identity::request::RequestError;
use multus_cni::identity::{CertManager, IdentityError, PerNodeCertificate};
use serde_json::Value;

const NODE: &str = "node-a";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn config(api: &StandIn, dir: &Path, duration: Duration) -> PerNodeCertificate {
    PerNodeCertificate {
        bootstrap_kubeconfig: Some(api.kubeconfig().to_owned()),
        cert_dir: dir.join("certs"),
        cert_duration: duration,
    }
}

/// Start a certificate manager for `node` (10 s per API request, no limit on the wait
/// for approval).
fn start(
    rt: &tokio::runtime::Runtime,
    config: &PerNodeCertificate,
    node: &str,
) -> Result<CertManager, IdentityError> {
    rt.block_on(CertManager::start(
        config.clone(),
        node,
        Duration::from_secs(10),
        None,
    ))
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_certificate_is_issued_stored_privately_and_reused_after_a_restart() {
    let api = StandIn::start().unwrap();
    api.auto_approve_csrs(true);
    let dir = tempfile::tempdir().unwrap();
    let config = config(&api, dir.path(), Duration::from_secs(3600));
    let rt = runtime();
    let manager = start(&rt, &config, NODE).unwrap();
    assert_eq!(manager.origin(), Origin::Issued);
    let pair = manager.current();
    assert_eq!(pair.common_name, "system:multus:node-a");
    assert_eq!(pair.organizations, ["system:multus"]);
    assert_eq!(mode(&config.cert_dir), 0o700);
    assert_eq!(mode(&config.current_file()), 0o600);
    let csrs = api.csrs();
    assert_eq!(csrs.len(), 1);
    let spec = &csrs[0]["spec"];
    assert_eq!(spec["signerName"], "kubernetes.io/kube-apiserver-client");
    assert_eq!(spec["expirationSeconds"], 3600);
    assert_eq!(
        spec["usages"],
        serde_json::json!(["digital signature", "client auth"])
    );
    assert_eq!(spec["username"], "system:serviceaccount:kube-system:multus");
    // The key never went to the API: only the request did.
    let stored = std::fs::read_to_string(config.current_file()).unwrap();
    assert!(stored.contains("PRIVATE KEY"));
    assert!(!csrs[0].to_string().contains("PRIVATE KEY"));

    // The client authenticates as the node, not with the bootstrap token.
    api.clear_requests();
    let client = rt.block_on(async { manager.client() });
    let pods: Api<Pod> = Api::namespaced(client, "default");
    rt.block_on(pods.list(&Default::default())).unwrap();
    let users: Vec<Option<String>> = api.requests().into_iter().map(|r| r.user).collect();
    assert_eq!(users, [Some("system:multus:node-a".to_owned())]);
    drop(manager);

    // A restart reuses the valid certificate: no new CSR.
    let again = start(&rt, &config, NODE).unwrap();
    assert_eq!(again.origin(), Origin::Reused);
    assert_eq!(*again.current(), *pair);
    assert_eq!(api.csrs().len(), 1);
}

#[test]
fn a_certificate_for_another_identity_or_a_corrupt_file_is_replaced() {
    let api = StandIn::start().unwrap();
    api.auto_approve_csrs(true);
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let config = config(&api, dir.path(), Duration::from_secs(3600));
    start(&rt, &config, "node-b").unwrap();
    let manager = start(&rt, &config, NODE).unwrap();
    assert_eq!(manager.origin(), Origin::Issued);
    std::fs::write(config.current_file(), "garbage").unwrap();
    let manager = start(&rt, &config, NODE).unwrap();
    assert_eq!(manager.origin(), Origin::Issued);
    assert_eq!(api.csrs().len(), 3);
}

#[test]
fn a_denied_request_names_the_reason_and_an_unanswered_one_times_out() {
    let api = StandIn::start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    let config = config(&api, dir.path(), Duration::from_secs(3600));
    let timeout = rt.block_on(CertManager::start(
        config.clone(),
        NODE,
        Duration::from_secs(10),
        Some(Duration::from_millis(800)),
    ));
    match timeout {
        Err(IdentityError::Request(RequestError::Timeout { .. })) => {}
        other => panic!("expected a timeout, got {other:?}"),
    }
    for csr in api.csrs() {
        api.delete(&CSRS, "", csr["metadata"]["name"].as_str().unwrap())
            .unwrap();
    }
    // An approver that denies the next CSR.
    let denier = std::thread::scope(|scope| {
        let api = &api;
        let handle = scope.spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                for mut csr in api.csrs() {
                    if csr.get("status").is_none() {
                        let name = csr["metadata"]["name"].as_str().unwrap().to_owned();
                        k8s_standin::add_condition(&mut csr, "Denied", "Nope", "not this node");
                        api.with_store(|s| s.update(&CSRS, "", &name, csr, true))
                            .unwrap();
                        return true;
                    }
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            false
        });
        let result = rt.block_on(CertManager::start(
            config,
            NODE,
            Duration::from_secs(10),
            Some(Duration::from_secs(20)),
        ));
        (handle.join().unwrap(), result)
    });
    assert!(denier.0);
    let message = denier.1.unwrap_err().to_string();
    assert!(
        message.contains("denied") && message.contains("not this node"),
        "{message}"
    );
}

#[test]
fn requests_keep_succeeding_across_two_rotations() {
    let api = StandIn::start().unwrap();
    api.auto_approve_csrs(true);
    api.create_pod("default", "web", &[]);
    let dir = tempfile::tempdir().unwrap();
    let rt = runtime();
    // 3 s certificates: rotation every 2.1 to 2.7 s.
    let config = config(&api, dir.path(), Duration::from_secs(3));
    let manager = std::sync::Arc::new(start(&rt, &config, NODE).unwrap());
    let first = manager.current();
    let changes = manager.subscribe();
    let client = rt.block_on(async { manager.client() });
    rt.spawn(manager.clone().rotate());
    let pods: Api<Pod> = Api::namespaced(client, "default");
    let started = Instant::now();
    let mut served = 0;
    let mut seen = std::collections::HashSet::new();
    while started.elapsed() < Duration::from_secs(8) {
        rt.block_on(pods.get("web")).unwrap_or_else(|e| {
            panic!("request {served} failed after {:?}: {e}", started.elapsed())
        });
        served += 1;
        seen.insert(manager.current().not_after);
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(changes.has_changed().unwrap());
    assert!(
        seen.len() >= 3,
        "expected at least two rotations, saw {} certificates",
        seen.len()
    );
    assert_ne!(*manager.current(), *first);
    // The stand-in refuses an expired certificate: none of the requests was refused.
    let records = api.requests();
    let refused: Vec<_> = records.iter().filter(|r| r.status == 401).collect();
    assert!(refused.is_empty(), "{refused:#?}");
    // Renewals were asked for by the node's own identity.
    let csrs = api.csrs();
    assert!(csrs.len() >= 3);
    let renewals: Vec<&Value> = csrs[1..].iter().map(|c| &c["spec"]["username"]).collect();
    assert!(
        renewals.iter().all(|u| *u == "system:multus:node-a"),
        "{renewals:?}"
    );
    assert!(served > 50);
}
