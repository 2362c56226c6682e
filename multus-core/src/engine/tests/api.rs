//! Engine tests with a real pod source: pod lookup, UID check, pod gone, readiness,
//! NoNetworkFound, trusted runtime annotations and the concurrent NAD prefetch.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Mutex;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::World;
use crate::config::MultusConf;
use crate::engine::{Engine, MultusError, Seams};
use crate::nad::{NetworkAttachmentDefinition, NetworkStatus};
use crate::request::{CniRequest, Command, PodRef};
use crate::seams::{ApiError, ClusterApi, ConfigFiles, PodEvent, PodInfo};

/// A Kubernetes API in memory: pods, NADs, the requests made, and the writes.
#[derive(Default)]
struct PodApi {
    nads: Vec<NetworkAttachmentDefinition>,
    pods: BTreeMap<(String, String), PodInfo>,
    nad_error: Option<ApiError>,
    requests: Mutex<Vec<String>>,
    events: Mutex<Vec<PodEvent>>,
    statuses: Mutex<Vec<Vec<NetworkStatus>>>,
    in_flight: Mutex<(usize, usize)>,
}

impl PodApi {
    fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
    fn events(&self) -> Vec<PodEvent> {
        self.events.lock().unwrap().clone()
    }
    fn with_pod(
        mut self,
        namespace: &str,
        name: &str,
        uid: &str,
        annotations: &[(&str, &str)],
    ) -> Self {
        let annotations = annotations
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        self.pods.insert(
            (namespace.to_owned(), name.to_owned()),
            PodInfo {
                uid: uid.to_owned(),
                annotations,
            },
        );
        self
    }
}

/// Returns `Pending` once, so that `join_all` starts every future before any ends.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

#[async_trait]
impl ClusterApi for PodApi {
    fn has_pods(&self) -> bool {
        true
    }
    async fn pod(&self, pod: &PodRef) -> Result<Option<PodInfo>, ApiError> {
        self.requests
            .lock()
            .unwrap()
            .push(format!("GET pod {}/{}", pod.namespace, pod.name));
        Ok(self
            .pods
            .get(&(pod.namespace.clone(), pod.name.clone()))
            .cloned())
    }
    async fn network_attachment(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<NetworkAttachmentDefinition>, ApiError> {
        self.requests
            .lock()
            .unwrap()
            .push(format!("GET nad {namespace}/{name}"));
        {
            let mut in_flight = self.in_flight.lock().unwrap();
            in_flight.0 += 1;
            in_flight.1 = in_flight.1.max(in_flight.0);
        }
        YieldOnce(false).await;
        self.in_flight.lock().unwrap().0 -= 1;
        if let Some(error) = &self.nad_error {
            return Err(error.clone());
        }
        Ok(self
            .nads
            .iter()
            .find(|n| n.namespace == namespace && n.name == name)
            .cloned())
    }
    async fn set_network_status(
        &self,
        _: &PodRef,
        status: &[NetworkStatus],
    ) -> Result<(), ApiError> {
        self.requests.lock().unwrap().push("PATCH status".into());
        self.statuses.lock().unwrap().push(status.to_vec());
        Ok(())
    }
    async fn emit_event(&self, _: &PodRef, event: &PodEvent) -> Result<(), ApiError> {
        self.events.lock().unwrap().push(event.clone());
        Ok(())
    }
}

/// The world's files, recording every wait for a file.
struct WaitingFiles<'a> {
    inner: &'a dyn ConfigFiles,
    waits: Mutex<Vec<(PathBuf, Duration, Duration)>>,
    present: bool,
}

#[async_trait]
impl ConfigFiles for WaitingFiles<'_> {
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.inner.read(path)
    }
    fn is_dir(&self, path: &Path) -> bool {
        self.inner.is_dir(path)
    }
    fn list_configs(&self, dir: &Path) -> std::io::Result<Vec<(PathBuf, Vec<u8>)>> {
        self.inner.list_configs(dir)
    }
    fn exists(&self, _: &Path) -> bool {
        self.present
    }
    async fn wait_for(&self, path: &Path, timeout: Duration, interval: Duration) -> bool {
        self.waits
            .lock()
            .unwrap()
            .push((path.to_owned(), timeout, interval));
        self.present
    }
}

fn api_for(world: &World) -> PodApi {
    PodApi {
        nads: world.api.nads.clone(),
        ..PodApi::default()
    }
}

fn seams<'a>(world: &'a World, api: &'a PodApi, files: Option<&'a WaitingFiles<'a>>) -> Seams<'a> {
    Seams {
        api,
        files: match files {
            Some(files) => files,
            None => &world.files,
        },
        ..world.seams()
    }
}

/// A conf without runtime annotations: the pod's come from the API.
fn api_conf(extra: Value) -> MultusConf {
    let mut doc = json!({
        "cniVersion": "0.3.1",
        "name": "multus",
        "type": "multus",
        "delegates": [{"cniVersion": "1.0.0", "name": "cluster", "type": "ptp"}],
    });
    if let (Some(doc), Some(extra)) = (doc.as_object_mut(), extra.as_object()) {
        doc.extend(extra.clone());
    }
    MultusConf::parse(doc.to_string().as_bytes()).unwrap()
}

fn pod_request(command: Command, namespace: &str, name: &str, uid: &str) -> CniRequest {
    let args = format!(
        "IgnoreUnknown=1;K8S_POD_NAMESPACE={namespace};K8S_POD_NAME={name};K8S_POD_UID={uid}"
    );
    let env: BTreeMap<String, String> = [
        ("CNI_COMMAND", command.as_str()),
        ("CNI_CONTAINERID", "c1"),
        ("CNI_NETNS", "/var/run/netns/p"),
        ("CNI_IFNAME", "eth0"),
        ("CNI_ARGS", args.as_str()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    CniRequest::from_env(&env, Vec::new()).unwrap()
}

fn run(seams: Seams<'_>, conf: &MultusConf, request: &CniRequest) -> Result<Vec<u8>, MultusError> {
    let engine = Engine::new(conf, request, seams);
    pollster::block_on(async {
        match request.command {
            Command::Add => engine.add().await,
            Command::Del => engine.del().await.map(|()| Vec::new()),
            Command::Status => engine.status().await.map(|()| Vec::new()),
            Command::Gc => engine.gc().await.map(|()| Vec::new()),
            _ => unreachable!(),
        }
    })
}

fn add_web(world: &World, api: &PodApi, conf: &MultusConf) -> Result<Vec<u8>, MultusError> {
    run(
        seams(world, api, None),
        conf,
        &pod_request(Command::Add, "default", "web", "u1"),
    )
}

const NETWORKS: &str = "k8s.v1.cni.cncf.io/networks";

#[test]
fn annotations_come_from_the_api_pod_and_status_and_events_are_written_once() {
    let world = World::new();
    let api = api_for(&world).with_pod("default", "web", "u1", &[(NETWORKS, "blue")]);
    // The runtime's annotations are not trusted by default: the API's win.
    let conf = api_conf(
        json!({"runtimeConfig": {"io.kubernetes.cri.pod-annotations": {NETWORKS: "chain"}}}),
    );
    add_web(&world, &api, &conf).unwrap();
    assert_eq!(
        world.exec.summary(),
        vec!["ADD ptp eth0", "ADD bridge net1"]
    );
    assert_eq!(
        api.requests(),
        vec![
            "GET pod default/web",
            "GET nad default/blue",
            "PATCH status"
        ]
    );
    let statuses = api.statuses.lock().unwrap().clone();
    assert_eq!(statuses.len(), 1);
    assert_eq!(statuses[0][1].name, "default/blue");
    let events = api.events();
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].reason, "AddedInterface");
    assert_eq!(
        events[1].message,
        "Add net1 [10.0.0.2/24] from default/blue"
    );
}

#[test]
fn trusted_runtime_annotations_skip_the_pod_get() {
    let world = World::new();
    let api = api_for(&world).with_pod("default", "web", "u1", &[(NETWORKS, "blue")]);
    let conf = api_conf(json!({
        "trustRuntimeAnnotations": true,
        "runtimeConfig": {"io.kubernetes.cri.pod-annotations": {NETWORKS: "chain"}}
    }));
    add_web(&world, &api, &conf).unwrap();
    assert_eq!(
        api.requests(),
        vec!["GET nad default/chain", "PATCH status"]
    );
    assert_eq!(world.exec.summary()[1], "ADD macvlan net1");
    // Without runtime annotations, trusting them still GETs the pod.
    let world = World::new();
    let api = api_for(&world).with_pod("default", "web", "u1", &[(NETWORKS, "blue")]);
    add_web(
        &world,
        &api,
        &api_conf(json!({"trustRuntimeAnnotations": true})),
    )
    .unwrap();
    assert_eq!(api.requests()[0], "GET pod default/web");
}

#[test]
fn uid_mismatch_fails_add_before_anything_runs() {
    let world = World::new();
    let api = api_for(&world).with_pod("default", "web", "u2", &[(NETWORKS, "blue")]);
    let err = add_web(&world, &api, &api_conf(json!({}))).unwrap_err();
    assert!(
        err.to_string()
            .contains(r#"expected pod UID "u1" but got "u2" from Kube API"#),
        "{err}"
    );
    assert_eq!(err.code(), crate::cni::ErrorCode::InvalidEnvironment.code());
    assert!(world.exec.calls().is_empty());
    assert!(world.state.record("c1").is_none());
}

#[test]
fn static_pods_are_exempt_from_the_uid_check() {
    let world = World::new();
    let api = api_for(&world).with_pod(
        "default",
        "web",
        "mirror-uid",
        &[(NETWORKS, "blue"), ("kubernetes.io/config.source", "file")],
    );
    add_web(&world, &api, &api_conf(json!({}))).unwrap();
    assert_eq!(world.exec.summary().len(), 2);
    // `config.source: api` is an ordinary pod.
    let world = World::new();
    let api = api_for(&world).with_pod(
        "default",
        "web",
        "other",
        &[("kubernetes.io/config.source", "api")],
    );
    assert!(add_web(&world, &api, &api_conf(json!({}))).is_err());
}

#[test]
fn pod_gone_gives_the_minimal_result_and_runs_nothing() {
    let world = World::new();
    let api = api_for(&world);
    let out = add_web(&world, &api, &api_conf(json!({}))).unwrap();
    let result: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        result,
        json!({
            "cniVersion": "0.3.1",
            "interfaces": [{"name": "eth0", "sandbox": "/var/run/netns/p"}],
            "ips": [{"version": "4", "address": "0.0.0.0/0", "gateway": "0.0.0.0"}],
            "dns": {}
        })
    );
    assert!(world.exec.calls().is_empty());
    assert!(world.state.record("c1").is_none());
    assert_eq!(api.requests(), vec!["GET pod default/web"]);
}

#[test]
fn del_needs_no_pod_and_tolerates_a_replaced_one() {
    let world = World::new();
    let api = api_for(&world).with_pod("default", "web", "u1", &[(NETWORKS, "blue")]);
    add_web(&world, &api, &api_conf(json!({}))).unwrap();
    world.exec.calls.lock().unwrap().clear();
    // The pod is gone: DEL runs from the record, without asking the API.
    let gone = api_for(&world);
    let del = pod_request(Command::Del, "default", "web", "u1");
    run(seams(&world, &gone, None), &api_conf(json!({})), &del).unwrap();
    assert_eq!(
        world.exec.summary(),
        vec!["DEL bridge net1", "DEL ptp eth0"]
    );
    assert!(gone.requests().is_empty());
    // No record and a re-created pod (other UID): the configured networks only.
    world.exec.calls.lock().unwrap().clear();
    let replaced = api_for(&world).with_pod("default", "web", "u2", &[(NETWORKS, "blue")]);
    run(seams(&world, &replaced, None), &api_conf(json!({})), &del).unwrap();
    assert_eq!(world.exec.summary(), vec!["DEL ptp eth0"]);
}

#[test]
fn system_namespaces_compare_the_pod_namespace_not_its_name() {
    let conf = api_conf(json!({"defaultNetworks": ["blue"], "multusNamespace": "default"}));
    // A pod in kube-system gets no defaultNetworks.
    let world = World::new();
    let api = api_for(&world).with_pod("kube-system", "web", "u1", &[]);
    let request = pod_request(Command::Add, "kube-system", "web", "u1");
    run(seams(&world, &api, None), &conf, &request).unwrap();
    assert_eq!(world.exec.summary(), vec!["ADD ptp eth0"]);
    // A pod *named* kube-system elsewhere does (upstream compares the name).
    let world = World::new();
    let api = api_for(&world).with_pod("default", "kube-system", "u1", &[]);
    let request = pod_request(Command::Add, "default", "kube-system", "u1");
    run(seams(&world, &api, None), &conf, &request).unwrap();
    assert_eq!(
        world.exec.summary(),
        vec!["ADD ptp eth0", "ADD bridge net1"]
    );
}

#[test]
fn cluster_network_nad_default_networks_and_the_default_network_override() {
    let world = World::new();
    let mut api = api_for(&world).with_pod(
        "default",
        "web",
        "u1",
        &[
            ("v1.multus-cni.io/default-network", "chain"),
            (NETWORKS, "blue"),
        ],
    );
    for nad in &mut api.nads {
        nad.namespace = "infra".into();
    }
    api.nads.push(NetworkAttachmentDefinition {
        namespace: "default".into(),
        name: "blue".into(),
        config: r#"{"cniVersion":"1.0.0","type":"bridge"}"#.into(),
        resource_name: None,
        annotations: BTreeMap::new(),
    });
    let conf = MultusConf::parse(
        br#"{"cniVersion":"1.0.0","clusterNetwork":"fromdir","multusNamespace":"infra",
            "defaultNetworks":["blue"]}"#,
    )
    .unwrap();
    add_web(&world, &api, &conf).unwrap();
    // The override replaces the cluster network (NAD infra/chain, on eth0); the
    // default network resolves in multusNamespace, the annotation's in the pod's.
    assert_eq!(
        world.exec.summary(),
        vec![
            "ADD macvlan eth0",
            "ADD tuning eth0",
            "ADD bridge net1",
            "ADD bridge net2"
        ]
    );
    let state = world.state.record("c1").unwrap();
    let networks: Vec<&str> = state
        .attachments
        .iter()
        .map(|a| a.delegate.network.as_str())
        .collect();
    assert_eq!(networks, vec!["infra/chain", "infra/blue", "default/blue"]);
    // Without the override, clusterNetwork names the NAD infra/fromdir (empty spec,
    // resolved from confDir).
    let world = World::new();
    let mut api = api_for(&world).with_pod("default", "web", "u1", &[]);
    for nad in &mut api.nads {
        nad.namespace = "infra".into();
    }
    add_web(&world, &api, &conf).unwrap();
    assert_eq!(
        world.exec.summary(),
        vec!["ADD ptp eth0", "ADD bridge net1"]
    );
}

#[test]
fn isolation_allows_global_namespaces_and_refuses_others_without_reading_nads() {
    let world = World::new();
    let api = api_for(&world).with_pod(
        "team",
        "web",
        "u1",
        &[(NETWORKS, "default/blue, shared/red")],
    );
    let conf = api_conf(json!({"namespaceIsolation": true, "globalNamespaces": "default"}));
    let request = pod_request(Command::Add, "team", "web", "u1");
    let err = run(seams(&world, &api, None), &conf, &request).unwrap_err();
    assert!(
        err.to_string().contains("refers to network \"shared/red\""),
        "{err}"
    );
    assert_eq!(api.requests(), vec!["GET pod team/web"]);
    let conf = api_conf(json!({"namespaceIsolation": true, "globalNamespaces": "default,shared"}));
    let err = run(seams(&world, &api, None), &conf, &request).unwrap_err();
    // Allowed now; shared/red simply does not exist.
    assert_eq!(err.code(), crate::cni::ErrorCode::NetworkNotFound.code());
}

#[test]
fn missing_nad_emits_no_network_found_and_runs_nothing() {
    let world = World::new();
    let api = api_for(&world).with_pod("default", "web", "u1", &[(NETWORKS, "blue, nosuch")]);
    let err = add_web(&world, &api, &api_conf(json!({}))).unwrap_err();
    assert_eq!(err.code(), 101);
    assert!(err.to_string().contains("default/nosuch"), "{err}");
    assert!(world.exec.calls().is_empty());
    let events = api.events();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind, "Warning");
    assert_eq!(events[0].reason, "NoNetworkFound");
    assert!(
        events[0].message.starts_with(
            "cannot find a network-attachment-definition (nosuch) in namespace (default): "
        ),
        "{}",
        events[0].message
    );
    // An API failure reading the NAD is reported the same way, with code 105.
    let world = World::new();
    let mut api = api_for(&world).with_pod("default", "web", "u1", &[(NETWORKS, "blue")]);
    api.nad_error = Some(ApiError::Forbidden("403 Forbidden".into()));
    let err = add_web(&world, &api, &api_conf(json!({}))).unwrap_err();
    assert_eq!(err.code(), crate::cni::ErrorCode::ApiFailure.code());
    assert!(api.events()[0].message.contains("403 Forbidden"));
}

#[test]
fn malformed_annotation_reads_no_nad() {
    let world = World::new();
    let api = api_for(&world).with_pod("default", "web", "u1", &[(NETWORKS, "[{\"name\":")]);
    let err = add_web(&world, &api, &api_conf(json!({}))).unwrap_err();
    assert_eq!(err.code(), crate::cni::ErrorCode::InvalidAnnotation.code());
    assert_eq!(api.requests(), vec!["GET pod default/web"]);
    assert!(world.exec.calls().is_empty());
}

#[test]
fn nads_are_fetched_concurrently_once_each_in_plan_order() {
    let world = World::new();
    let api = api_for(&world).with_pod(
        "default",
        "web",
        "u1",
        &[(NETWORKS, "blue@b1, chain, fromdir, blue@b2")],
    );
    add_web(&world, &api, &api_conf(json!({}))).unwrap();
    let nad_gets: Vec<String> = api
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET nad"))
        .collect();
    assert_eq!(
        nad_gets,
        vec![
            "GET nad default/blue",
            "GET nad default/chain",
            "GET nad default/fromdir"
        ]
    );
    assert_eq!(
        api.in_flight.lock().unwrap().1,
        3,
        "all three were in flight at once"
    );
    assert_eq!(
        world.exec.summary(),
        vec![
            "ADD ptp eth0",
            "ADD bridge b1",
            "ADD macvlan net2",
            "ADD tuning net2",
            "ADD ptp net3",
            "ADD bridge b2"
        ]
    );
}

#[test]
fn nad_reads_are_bounded_and_stop_at_the_first_missing_one() {
    let world = World::new();
    let names: Vec<String> = (0..40).map(|i| format!("missing{i}")).collect();
    let annotation = names.join(",");
    let api = api_for(&world).with_pod("default", "web", "u1", &[(NETWORKS, &annotation)]);
    let err = add_web(&world, &api, &api_conf(json!({}))).unwrap_err();
    assert_eq!(err.code(), crate::cni::ErrorCode::NetworkNotFound.code());
    let nad_gets = api
        .requests()
        .into_iter()
        .filter(|r| r.starts_with("GET nad"))
        .count();
    assert!(nad_gets <= 8, "{nad_gets} NAD reads for one missing NAD");
    assert!(
        api.in_flight.lock().unwrap().1 <= 8,
        "more than 8 reads at once"
    );
    assert!(world.exec.calls().is_empty());
}

#[test]
fn more_networks_than_max_networks_per_pod_read_no_nad() {
    let world = World::new();
    let annotation = ["blue"; 5].join(",");
    let api = api_for(&world).with_pod("default", "web", "u1", &[(NETWORKS, &annotation)]);
    let err = add_web(&world, &api, &api_conf(json!({"maxNetworksPerPod": 4}))).unwrap_err();
    assert_eq!(err.code(), crate::cni::ErrorCode::InvalidAnnotation.code());
    assert!(err.to_string().contains("maxNetworksPerPod (4)"), "{err}");
    assert_eq!(api.requests(), vec!["GET pod default/web"]);
}

#[test]
fn readiness_indicator_bounds_add_status_and_gc_but_not_del() {
    let world = World::new();
    let api = api_for(&world).with_pod("default", "web", "u1", &[]);
    let missing = WaitingFiles {
        inner: &world.files,
        waits: Mutex::new(Vec::new()),
        present: false,
    };
    let conf = api_conf(json!({
        "cniVersion": "1.1.0",
        "readinessindicatorfile": "/run/ready",
        "readinessIndicatorTimeoutSeconds": 3
    }));
    let add = pod_request(Command::Add, "default", "web", "u1");
    let err = run(seams(&world, &api, Some(&missing)), &conf, &add).unwrap_err();
    assert_eq!(err.code(), crate::cni::ErrorCode::TryAgainLater.code());
    assert!(
        err.to_string()
            .contains("readinessindicatorfile @ /run/ready"),
        "{err}"
    );
    assert_eq!(
        missing.waits.lock().unwrap()[0],
        (
            PathBuf::from("/run/ready"),
            Duration::from_secs(3),
            Duration::from_secs(1)
        )
    );
    assert!(
        api.requests().is_empty(),
        "nothing asked before the network is ready"
    );
    let status = CniRequest::from_env(
        &BTreeMap::from([("CNI_COMMAND".to_owned(), "STATUS".to_owned())]),
        Vec::new(),
    )
    .unwrap();
    let err = run(seams(&world, &api, Some(&missing)), &conf, &status).unwrap_err();
    assert_eq!(err.code(), 50);
    let gc = CniRequest::from_env(
        &BTreeMap::from([("CNI_COMMAND".to_owned(), "GC".to_owned())]),
        Vec::new(),
    )
    .unwrap();
    assert!(run(seams(&world, &api, Some(&missing)), &conf, &gc).is_err());
    // DEL does not wait.
    let del = pod_request(Command::Del, "default", "web", "u1");
    run(seams(&world, &api, Some(&missing)), &conf, &del).unwrap();
    assert_eq!(missing.waits.lock().unwrap().len(), 3);
    assert_eq!(world.exec.summary(), vec!["DEL ptp eth0"]);
    // Present: ADD goes on.
    let present = WaitingFiles {
        inner: &world.files,
        waits: Mutex::new(Vec::new()),
        present: true,
    };
    run(seams(&world, &api, Some(&present)), &conf, &add).unwrap();
}
