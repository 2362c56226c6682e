//! The CSR approver (`multus_daemon::approver::run`, what `multus-daemon approve-csrs`
//! runs) against the Kubernetes API stand-in: it approves a node's bootstrap request
//! (which the stand-in then signs), denies another node's name, a server-auth usage and
//! a requester that is not a bootstrap identity, with the reason in the CSR and in an
//! event; a restarted approver decides nothing twice; decisions are spaced out.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use k8s_openapi::ByteString;
use k8s_openapi::api::certificates::v1::{
    CertificateSigningRequest, CertificateSigningRequestSpec,
};
use k8s_standin::{EVENTS, StandIn, UserInfo};
use kube::Api;
use kube::api::PostParams;
use multus_cni::identity::{CertManager, PerNodeCertificate};
use multus_daemon::approver::{ApproverConfig, run};
use serde_json::Value;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn client(kubeconfig: &std::path::Path) -> kube::Client {
    let source = multus_cni::cluster::kube::ApiSource::Kubeconfig(kubeconfig.to_owned());
    multus_cni::cluster::kube::connect(&source, Duration::from_secs(10))
        .await
        .unwrap()
}

/// A CSR for `cn` with `usages`, created with `kubeconfig`'s credentials.
async fn create_csr(kubeconfig: &std::path::Path, cn_node: &str, usages: &[&str]) -> String {
    let (_, request) = multus_cni::identity::cert::key_and_request(cn_node).unwrap();
    let csr = CertificateSigningRequest {
        metadata: kube::api::ObjectMeta {
            generate_name: Some("test-".into()),
            ..Default::default()
        },
        spec: CertificateSigningRequestSpec {
            request: ByteString(request.into_bytes()),
            signer_name: "kubernetes.io/kube-apiserver-client".into(),
            usages: Some(usages.iter().map(|u| (*u).to_owned()).collect()),
            expiration_seconds: Some(3600),
            ..Default::default()
        },
        status: None,
    };
    let api: Api<CertificateSigningRequest> = Api::all(client(kubeconfig).await);
    api.create(&PostParams::default(), &csr)
        .await
        .unwrap()
        .metadata
        .name
        .unwrap()
}

fn conditions(api: &StandIn, name: &str) -> Vec<(String, String)> {
    let csr = api
        .csrs()
        .into_iter()
        .find(|c| c["metadata"]["name"] == name)
        .unwrap();
    csr["status"]["conditions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|c| {
            (
                c["type"].as_str().unwrap().to_owned(),
                c["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn wait_decided(api: &StandIn, name: &str) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(first) = conditions(api, name).into_iter().next() {
            return first;
        }
        assert!(Instant::now() < deadline, "{name} was never decided");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn approves_its_own_node_and_denies_theft_server_usage_and_strangers_once_each() {
    let api = StandIn::start().unwrap();
    api.create_node("node-a").unwrap();
    api.create_node("node-b").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = |token: &str, user: UserInfo| {
        api.add_user(token, user);
        let path = dir.path().join(format!("{token}.kubeconfig"));
        api.write_kubeconfig(&path, token).unwrap();
        path
    };
    let bootstrap_a = kubeconfig(
        "bootstrap-a",
        UserInfo::service_account_on_node("kube-system", "multus", Some("node-a")),
    );
    let stranger = kubeconfig(
        "stranger",
        UserInfo::service_account_on_node("default", "intruder", Some("node-b")),
    );
    let approver = kubeconfig(
        "approver",
        UserInfo::service_account_on_node("kube-system", "multus-csr-approver", None),
    );
    let rt = runtime();
    let config = ApproverConfig {
        decisions_per_second: 5.0,
        ..ApproverConfig::default()
    };
    let task = rt.spawn({
        let config = config.clone();
        let approver = approver.clone();
        async move { run(client(&approver).await, config).await }
    });

    // node-a's bootstrap request: approved and issued.
    let manager = rt
        .block_on(CertManager::start(
            PerNodeCertificate {
                bootstrap_kubeconfig: Some(bootstrap_a.clone()),
                cert_dir: dir.path().join("certs"),
                cert_duration: Duration::from_secs(3600),
            },
            "node-a",
            Duration::from_secs(10),
            Some(Duration::from_secs(20)),
        ))
        .unwrap();
    assert_eq!(manager.current().common_name, "system:multus:node-a");

    // node-a's bootstrap token asking for node-b; a server-auth usage; a stranger.
    let theft = rt.block_on(create_csr(
        &bootstrap_a,
        "node-b",
        &["digital signature", "client auth"],
    ));
    let server = rt.block_on(create_csr(
        &bootstrap_a,
        "node-a",
        &["digital signature", "server auth"],
    ));
    let strange = rt.block_on(create_csr(
        &stranger,
        "node-b",
        &["digital signature", "client auth"],
    ));
    for (name, why) in [
        (&theft, "bound to node"),
        (&server, "usages must be exactly"),
        (&strange, "neither a bootstrap identity"),
    ] {
        let (kind, message) = wait_decided(&api, name);
        assert_eq!(kind, "Denied", "{name}: {message}");
        assert!(message.contains(why), "{name}: {message}");
        let csr = api
            .csrs()
            .into_iter()
            .find(|c| c["metadata"]["name"] == **name)
            .unwrap();
        assert!(
            csr["status"].get("certificate").is_none(),
            "a denied CSR got a certificate"
        );
    }
    let events = |reason: &str| -> Vec<Value> {
        api.list(&EVENTS)
            .into_iter()
            .filter(|e| e["reason"] == reason)
            .collect()
    };
    assert_eq!(events("CSRApproved").len(), 1);
    let denied = events("CSRDenied");
    assert_eq!(denied.len(), 3, "{denied:#?}");
    assert!(
        denied.iter().all(|e| e["type"] == "Warning"
            && e["involvedObject"]["kind"] == "CertificateSigningRequest")
    );

    // Decisions were spaced out (5 per second: 200 ms apart).
    let approvals: Vec<Instant> = api
        .requests()
        .into_iter()
        .filter(|r| r.subresource.as_deref() == Some("approval"))
        .map(|r| r.at)
        .collect();
    assert_eq!(approvals.len(), 4);
    for pair in approvals.windows(2) {
        assert!(
            pair[1].duration_since(pair[0]) >= Duration::from_millis(180),
            "decisions {:?} apart",
            pair[1].duration_since(pair[0])
        );
    }

    // A new approver (restart, re-list) decides nothing again.
    task.abort();
    let again = rt.spawn(async move { run(client(&approver).await, config).await });
    std::thread::sleep(Duration::from_secs(2));
    again.abort();
    assert_eq!(events("CSRApproved").len(), 1);
    assert_eq!(events("CSRDenied").len(), 3);
    for csr in api.csrs() {
        let name = csr["metadata"]["name"].as_str().unwrap().to_owned();
        assert_eq!(conditions(&api, &name).len(), 1, "{name}");
    }
}
