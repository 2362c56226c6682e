//! API semantics a client relies on: metadata set by the server, preconditions, patch
//! types, `Status` bodies, watch from a resourceVersion, faults and the request log.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use futures_util::{StreamExt as _, TryStreamExt as _};
use k8s_openapi::api::core::v1::Pod;
use k8s_standin::{Fault, PODS, StandIn};
use kube::api::{Api, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use serde_json::{Value, json};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

async fn client(standin: &StandIn) -> kube::Client {
    let kubeconfig = kube::config::Kubeconfig::read_from(standin.kubeconfig()).unwrap();
    let mut config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .unwrap();
    // The faults must reach the test as the stand-in sends them, not retried by kube.
    config.default_retry = false;
    kube::Client::try_from(config).unwrap()
}

fn pod(name: &str) -> Pod {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
        "spec": {"containers": [{"name": "c", "image": "i"}]}
    }))
    .unwrap()
}

#[test]
fn objects_get_server_metadata_and_writes_honour_preconditions() {
    let standin = StandIn::start().unwrap();
    runtime().block_on(async {
        let pods: Api<Pod> = Api::namespaced(client(&standin).await, "default");
        let created = pods.create(&PostParams::default(), &pod("web")).await.unwrap();
        let meta = &created.metadata;
        assert_eq!(meta.uid.as_ref().unwrap().len(), 36);
        assert!(meta.creation_timestamp.is_some());
        let first_version = meta.resource_version.clone().unwrap();

        // AlreadyExists, as a Status body.
        let err = pods.create(&PostParams::default(), &pod("web")).await.unwrap_err();
        match err {
            kube::Error::Api(status) => {
                assert_eq!(status.code, 409);
                assert_eq!(status.reason, "AlreadyExists");
            }
            other => panic!("{other}"),
        }

        // Merge patch of the status subresource changes metadata, not spec.
        let patch = json!({"metadata": {"annotations": {"a": "1"}}, "spec": {"nodeName": "x"}});
        let patched = pods
            .patch_status("web", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
        assert_eq!(patched.metadata.annotations.unwrap()["a"], "1");
        assert!(patched.spec.unwrap().node_name.is_none());
        assert_ne!(patched.metadata.resource_version.unwrap(), first_version);

        // A stale resourceVersion or another UID is a conflict.
        let stale = json!({"metadata": {"resourceVersion": first_version, "labels": {"x": "y"}}});
        let err = pods
            .patch("web", &PatchParams::default(), &Patch::Merge(&stale))
            .await
            .unwrap_err();
        assert!(matches!(err, kube::Error::Api(ref s) if s.code == 409), "{err}");
        let other_uid = json!({"metadata": {"uid": "00000000-0000-0000-0000-000000000000"}});
        let err = pods
            .patch("web", &PatchParams::default(), &Patch::Merge(&other_uid))
            .await
            .unwrap_err();
        assert!(matches!(err, kube::Error::Api(ref s) if s.code == 409 && s.message.contains("Precondition failed")), "{err}");

        // JSON patch.
        let json_patch = json!([{"op": "add", "path": "/metadata/labels", "value": {"k": "v"}}]);
        let request = http::Request::patch("/api/v1/namespaces/default/pods/web")
            .header("content-type", "application/json-patch+json")
            .body(kube::client::Body::from(json_patch.to_string().into_bytes()))
            .unwrap();
        let response = client(&standin).await.send(request).await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(pods.get("web").await.unwrap().metadata.labels.unwrap()["k"], "v");
        // An unknown patch type is refused.
        let request = http::Request::patch("/api/v1/namespaces/default/pods/web")
            .header("content-type", "application/apply-patch+yaml")
            .body(kube::client::Body::from(b"{}".to_vec()))
            .unwrap();
        let response = client(&standin).await.send(request).await.unwrap();
        assert_eq!(response.status(), 415);

        // NotFound, as a Status body.
        let err = pods.get("nosuch").await.unwrap_err();
        match err {
            kube::Error::Api(status) => {
                assert_eq!(status.code, 404);
                assert_eq!(status.reason, "NotFound");
                assert_eq!(status.message, r#"pods "nosuch" not found"#);
            }
            other => panic!("{other}"),
        }
        assert!(pods.get_opt("nosuch").await.unwrap().is_none());
    });
}

#[test]
fn watch_streams_changes_after_a_resource_version() {
    let standin = StandIn::start().unwrap();
    let uid = standin.create_pod("default", "a", &[]);
    let version = standin.get(&PODS, "default", "a").unwrap()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    standin.create_pod("default", "b", &[]);
    runtime().block_on(async {
        let pods: Api<Pod> = Api::namespaced(client(&standin).await, "default");
        let stream = pods
            .watch(&WatchParams::default().timeout(2), &version)
            .await
            .unwrap();
        let mut stream = stream.boxed();
        // History after the version first: b was added.
        match stream.try_next().await.unwrap().unwrap() {
            WatchEvent::Added(pod) => assert_eq!(pod.metadata.name.unwrap(), "b"),
            other => panic!("{other:?}"),
        }
        // Then live changes.
        standin.delete(&PODS, "default", "a").unwrap();
        match stream.try_next().await.unwrap().unwrap() {
            WatchEvent::Deleted(pod) => assert_eq!(pod.metadata.uid.unwrap(), uid),
            other => panic!("{other:?}"),
        }
    });
    let watches = standin
        .requests()
        .iter()
        .filter(|r| r.verb == "watch")
        .count();
    assert_eq!(watches, 1);
}

#[test]
fn faults_latency_and_the_request_log() {
    let standin = StandIn::start().unwrap();
    standin.create_pod("default", "web", &[]);
    runtime().block_on(async {
        let client = client(&standin).await;
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        standin.fail_next(
            1,
            Fault::TooManyRequests {
                retry_after_secs: 3,
            },
        );
        let request = http::Request::get("/api/v1/namespaces/default/pods/web")
            .body(kube::client::Body::empty())
            .unwrap();
        let response = client.send(request).await.unwrap();
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "3");
        let body: Value =
            serde_json::from_slice(&response.into_body().collect_bytes().await.unwrap()).unwrap();
        assert_eq!(body["details"]["retryAfterSeconds"], 3);
        assert_eq!(body["reason"], "TooManyRequests");

        standin.fail_next(1, Fault::Status(503));
        let err = pods.get("web").await.unwrap_err();
        assert!(
            matches!(err, kube::Error::Api(ref s) if s.code == 503),
            "{err}"
        );

        standin.fail_next(1, Fault::Drop);
        assert!(pods.get("web").await.is_err());

        standin.set_latency(Duration::from_millis(300));
        let started = Instant::now();
        pods.get("web").await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(300));
    });
    let log = standin.requests();
    let statuses: Vec<u16> = log.iter().map(|r| r.status).collect();
    assert_eq!(statuses, vec![429, 503, 0, 200]);
    assert!(log.iter().all(|r| r.is_read() && !r.is_write()));
    assert_eq!(log[3].name.as_deref(), Some("web"));
    assert_eq!(log[3].namespace.as_deref(), Some("default"));
}
