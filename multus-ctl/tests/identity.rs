//! `multus-ctl identity`: the node's per-node certificate (issued by the API stand-in
//! through a real CSR), its user, groups and expiry; exit 1 once it has expired, 4 (not
//! found) without one.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use k8s_standin::StandIn;
use multus_cni::identity::{CertManager, PerNodeCertificate};
use multus_integration_tests::ctl::ctl;

fn issue(api: &StandIn, cert_dir: &std::path::Path, duration: Duration) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(CertManager::start(
            PerNodeCertificate {
                bootstrap_kubeconfig: Some(api.kubeconfig().to_owned()),
                cert_dir: cert_dir.to_owned(),
                cert_duration: duration,
            },
            "node-a",
            Duration::from_secs(10),
            None,
        ))
        .unwrap();
}

#[test]
fn shows_the_user_groups_and_expiry_and_fails_once_expired() {
    let api = StandIn::start().unwrap();
    api.auto_approve_csrs(true);
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let certs_arg = certs.display().to_string();

    let missing = ctl(dir.path(), &["identity", "--cert-dir", &certs_arg]);
    assert_eq!(missing.code, 4, "{missing:?}");
    assert!(
        missing.stderr.contains("no per-node certificate"),
        "{}",
        missing.stderr
    );

    issue(&api, &certs, Duration::from_secs(3600));
    let run = ctl(
        dir.path(),
        &["identity", "--cert-dir", &certs_arg, "-o", "json"],
    );
    run.expect(0);
    let report = run.json();
    assert_eq!(report["user"], "system:multus:node-a");
    assert_eq!(report["node"], "node-a");
    assert_eq!(report["groups"], serde_json::json!(["system:multus"]));
    assert_eq!(report["expired"], false);
    let left = report["expiresInSeconds"].as_i64().unwrap();
    assert!((3590..=3600).contains(&left), "{left}");
    assert!(
        report["issuer"]
            .as_str()
            .unwrap()
            .contains("k8s-standin-ca")
    );
    let table = ctl(dir.path(), &["identity", "--cert-dir", &certs_arg]);
    let text = table.expect(0);
    assert!(
        text.contains("system:multus:node-a") && text.contains("next rotation"),
        "{text}"
    );

    std::fs::remove_dir_all(&certs).unwrap();
    issue(&api, &certs, Duration::from_secs(1));
    std::thread::sleep(Duration::from_millis(1500));
    let expired = ctl(
        dir.path(),
        &["identity", "--cert-dir", &certs_arg, "-o", "json"],
    );
    expired.expect(1);
    assert_eq!(expired.json()["expired"], true);
}
