//! The real `multus` binary against the Kubernetes API stand-in, with the reference
//! plugins in real network namespaces. Needs root and `containernetworking-plugins`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use k8s_standin::{Fault, Options, PODS, StandIn, TokenIn};
use multus_integration_tests::kube::{KubeNode, NETWORKS};
use serde_json::{Value, json};

fn addresses(status: &Value) -> Vec<String> {
    let mut ips: Vec<String> = status["ips"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    ips.sort();
    ips
}

#[test]
fn annotated_pod_gets_its_networks_and_the_status_matches_the_netns() {
    let mut node = KubeNode::new();
    let (pod, index) = node.api_pod("default", "web", &[(NETWORKS, "blue, default/green@data0")]);
    node.api.clear_requests();
    let result = node.multus("ADD", &pod, index).ok().clone();
    assert_eq!(result["cniVersion"], "1.0.0");
    assert_eq!(
        node.pods[index].interface_names(),
        vec!["data0", "eth0", "net1"]
    );

    // One pod GET, one GET per NAD, one status PATCH, and the events.
    let requests = node.request_summary();
    let reads: Vec<&String> = requests.iter().filter(|r| r.starts_with("get")).collect();
    assert_eq!(reads.len(), 3, "{requests:?}");
    assert_eq!(reads[0], "get pods web");
    assert_eq!(
        requests
            .iter()
            .filter(|r| r.starts_with("patch"))
            .collect::<Vec<_>>(),
        vec!["patch pods/status web"]
    );
    let events = node.api.pod_events("default", "web");
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(
        events
            .iter()
            .all(|e| e["reason"] == "AddedInterface" && e["type"] == "Normal")
    );
    assert!(
        events.iter().any(|e| e["message"]
            .as_str()
            .unwrap()
            .starts_with("Add data0 [10.91.0.")
            && e["message"]
                .as_str()
                .unwrap()
                .ends_with("from default/green")),
        "{events:?}"
    );

    // network-status says exactly what is in the pod.
    let status = node
        .network_status("default", "web")
        .expect("network-status written");
    let entries = status.as_array().unwrap();
    assert_eq!(entries.len(), 3, "{status}");
    for link in node.pods[index].interfaces() {
        let (ifname, mac, ips) = (link.name.clone(), link.mac.clone(), link.ips());
        let entry = entries
            .iter()
            .find(|e| e["interface"] == ifname.as_str())
            .unwrap_or_else(|| panic!("no status for {ifname}: {status}"));
        assert_eq!(entry["mac"], mac.as_str(), "{ifname}");
        let mut ips = ips;
        ips.sort();
        assert_eq!(addresses(entry), ips, "{ifname}");
    }
    assert_eq!(entries[0]["name"], "cluster");
    assert_eq!(entries[0]["default"], true);
    assert_eq!(entries[1]["name"], "default/blue");
    assert_eq!(entries[2]["name"], "default/green");
    assert_eq!(node.leases().len(), 3);

    // DEL works from the record: no API read at all (even with an unusable
    // kubeconfig), everything released.
    node.api.clear_requests();
    let mut conf = node.conf();
    conf["kubeconfig"] = json!("/nonexistent/kubeconfig");
    node.multus_with("DEL", &pod, index, &conf).ok();
    assert!(
        node.api.requests().is_empty(),
        "{:?}",
        node.request_summary()
    );
    assert!(node.pods[index].interface_names().is_empty());
    assert!(node.leases().is_empty());
}

/// Asserts that nothing was attached: no interface in the pod, no lease.
fn assert_nothing_ran(node: &KubeNode, index: usize) {
    assert!(
        node.pods[index].interface_names().is_empty(),
        "{:?}",
        node.pods[index].interface_names()
    );
    assert!(node.leases().is_empty(), "{:?}", node.leases());
}

#[test]
fn missing_nad_fails_with_101_and_a_no_network_found_event() {
    let mut node = KubeNode::new();
    let (pod, index) = node.api_pod("default", "web", &[(NETWORKS, "blue, nosuch")]);
    let outcome = node.multus("ADD", &pod, index);
    assert_eq!(outcome.error_code(), 101, "{}", outcome.stdout);
    assert!(
        outcome.message().contains("default/web"),
        "{}",
        outcome.message()
    );
    assert!(
        outcome.message().contains("default/nosuch"),
        "{}",
        outcome.message()
    );
    assert_nothing_ran(&node, index);
    let events = node.api.pod_events("default", "web");
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "Warning");
    assert_eq!(events[0]["reason"], "NoNetworkFound");
    assert_eq!(events[0]["involvedObject"]["uid"], pod.uid.as_str());
    let message = events[0]["message"].as_str().unwrap();
    assert!(
        message.starts_with(
            "cannot find a network-attachment-definition (nosuch) in namespace (default): "
        ),
        "{message}"
    );
    assert!(node.network_status("default", "web").is_none());
}

/// Pod name, annotations, expected code, expected words of the message.
type Case = (
    &'static str,
    &'static [(&'static str, &'static str)],
    u64,
    &'static str,
);

#[test]
fn bad_input_is_refused_before_any_delegate_runs() {
    let mut node = KubeNode::new();
    node.api
        .create_nad(
            "default",
            "broken",
            r#"{"cniVersion":"1.0.0","type":"bridge","#,
        )
        .unwrap();
    let cases: [Case; 5] = [
        ("text", &[(NETWORKS, "blue@a@b")], 102, "failed at '@'"),
        ("json", &[(NETWORKS, r#"[{"name": 1}]"#)], 102, NETWORKS),
        (
            "invalid-config",
            &[(NETWORKS, "broken")],
            7,
            "default/broken",
        ),
        (
            "two-defaults",
            &[("v1.multus-cni.io/default-network", "blue, green")],
            102,
            "v1.multus-cni.io/default-network",
        ),
        (
            "isolation",
            &[(NETWORKS, "other/blue")],
            102,
            "namespace isolation",
        ),
    ];
    node.conf_extra = json!({"namespaceIsolation": true});
    for (name, annotations, code, needle) in cases {
        let (pod, index) = node.api_pod("default", name, annotations);
        let outcome = node.multus("ADD", &pod, index);
        assert_eq!(outcome.error_code(), code, "{name}: {}", outcome.stdout);
        assert!(
            outcome.message().contains(needle),
            "{name}: {}",
            outcome.message()
        );
        assert!(
            outcome.message().contains(&format!("default/{name}")),
            "{name}: {}",
            outcome.message()
        );
        assert_nothing_ran(&node, index);
    }
}

#[test]
fn api_unreachable_unauthorized_and_forbidden_are_api_failures() {
    let mut node = KubeNode::new();
    let (pod, index) = node.api_pod("default", "web", &[(NETWORKS, "blue")]);
    node.conf_extra = json!({"apiRetries": 1});

    node.api.refuse(Some(401));
    let outcome = node.multus("ADD", &pod, index);
    assert_eq!(outcome.error_code(), 105, "{}", outcome.stdout);
    assert!(
        outcome.message().contains("Unauthorized"),
        "{}",
        outcome.message()
    );
    assert!(
        outcome.message().contains("default/web"),
        "{}",
        outcome.message()
    );
    assert_nothing_ran(&node, index);

    node.api.refuse(Some(403));
    let outcome = node.multus("ADD", &pod, index);
    assert_eq!(outcome.error_code(), 105);
    assert!(
        outcome.message().contains("forbidden"),
        "{}",
        outcome.message()
    );
    // Refusals are not retried.
    let gets = node
        .api
        .requests()
        .iter()
        .filter(|r| r.verb == "get")
        .count();
    assert_eq!(gets, 2);
    assert_nothing_ran(&node, index);
    node.api.refuse(None);

    // Nothing listens on the kubeconfig's port any more.
    let mut conf = node.conf();
    let gone = StandIn::start().unwrap();
    conf["kubeconfig"] = json!(gone.kubeconfig());
    let kubeconfig = std::fs::read_to_string(gone.kubeconfig()).unwrap();
    let copy = node.dir.path().join("gone.kubeconfig");
    std::fs::write(&copy, kubeconfig).unwrap();
    conf["kubeconfig"] = json!(copy);
    drop(gone);
    let outcome = node.multus_with("ADD", &pod, index, &conf);
    assert_eq!(outcome.error_code(), 105, "{}", outcome.stdout);
    assert!(
        outcome.message().contains("2 attempts"),
        "{}",
        outcome.message()
    );
    assert_nothing_ran(&node, index);
}

#[test]
fn uid_mismatch_fails_and_static_pods_are_exempt() {
    let mut node = KubeNode::new();
    let uid = node.api.create_pod("default", "web", &[(NETWORKS, "blue")]);
    let (pod, index) = node.pod("default", "web", "0000-runtime-uid");
    let outcome = node.multus("ADD", &pod, index);
    assert_eq!(outcome.error_code(), 4, "{}", outcome.stdout);
    assert!(
        outcome.message().contains(&format!(
            r#"expected pod UID "0000-runtime-uid" but got "{uid}" from Kube API"#
        )),
        "{}",
        outcome.message()
    );
    assert_nothing_ran(&node, index);

    node.api.create_pod(
        "kube-system",
        "etcd-node1",
        &[
            (NETWORKS, "default/blue"),
            ("kubernetes.io/config.source", "file"),
        ],
    );
    let (pod, index) = node.pod("kube-system", "etcd-node1", "static-manifest-uid");
    node.multus("ADD", &pod, index).ok();
    assert_eq!(node.pods[index].interface_names(), vec!["eth0", "net1"]);
    node.multus("DEL", &pod, index).ok();
    assert!(node.leases().is_empty());
}

#[test]
fn a_pod_gone_from_the_api_gets_the_minimal_result() {
    let mut node = KubeNode::new();
    let (pod, index) = node.pod("default", "deleted", "some-uid");
    let result = node.multus("ADD", &pod, index).ok().clone();
    assert_eq!(
        result,
        json!({
            "cniVersion": "1.0.0",
            "interfaces": [{"name": "eth0", "sandbox": node.pods[index].path()}],
            "ips": [{"address": "0.0.0.0/0", "gateway": "0.0.0.0"}],
            "dns": {}
        })
    );
    assert_nothing_ran(&node, index);
    // And its DEL succeeds.
    node.multus("DEL", &pod, index).ok();
}

#[test]
fn nad_with_an_empty_spec_resolves_from_conf_dir() {
    let mut node = KubeNode::new();
    let conf_dir = node.dir.path().join("net.d");
    std::fs::create_dir_all(&conf_dir).unwrap();
    std::fs::write(
        conf_dir.join("20-purple.conf"),
        node.bridge_config("purple", "mkp0", "10.92.0.0/24"),
    )
    .unwrap();
    node.api.create_nad("default", "purple", "").unwrap();
    let (pod, index) = node.api_pod("default", "web", &[(NETWORKS, "purple")]);
    node.multus("ADD", &pod, index).ok();
    let links = node.pods[index].interfaces();
    assert!(links[1].ips()[0].starts_with("10.92.0."), "{links:?}");
    let status = node.network_status("default", "web").unwrap();
    assert_eq!(status[1]["name"], "default/purple");
    node.multus("DEL", &pod, index).ok();
}

#[test]
fn transient_failures_are_retried_honouring_retry_after() {
    let mut node = KubeNode::new();
    let (pod, index) = node.api_pod("default", "web", &[(NETWORKS, "blue")]);
    node.api.clear_requests();
    node.api.fail_next(1, Fault::Status(503));
    node.api.fail_next(
        1,
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
    );
    node.api.fail_next(1, Fault::Drop);
    let outcome = node.multus("ADD", &pod, index);
    outcome.ok();
    assert!(
        outcome.elapsed >= Duration::from_secs(1),
        "Retry-After honoured: {:?}",
        outcome.elapsed
    );
    let statuses: Vec<u16> = node
        .api
        .requests()
        .iter()
        .filter(|r| r.resource.as_deref() == Some("pods") && r.verb == "get")
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses, vec![503, 429, 0, 200]);
    assert_eq!(node.pods[index].interface_names(), vec!["eth0", "net1"]);
    assert!(node.network_status("default", "web").is_some());
    node.multus("DEL", &pod, index).ok();

    // Out of retries: the error says how often it tried.
    let (pod, index) = node.api_pod("default", "web2", &[(NETWORKS, "blue")]);
    node.conf_extra = json!({"apiRetries": 2});
    node.api.fail_next(3, Fault::Status(500));
    let outcome = node.multus("ADD", &pod, index);
    assert_eq!(outcome.error_code(), 105);
    assert!(
        outcome.message().contains("3 attempts"),
        "{}",
        outcome.message()
    );
    assert_nothing_ran(&node, index);
}

#[test]
fn each_request_is_bounded_by_the_api_timeout() {
    let mut node = KubeNode::new();
    let (pod, index) = node.api_pod("default", "web", &[(NETWORKS, "blue")]);
    node.conf_extra = json!({"apiTimeoutSeconds": 0.3, "apiRetries": 1});
    node.api.set_latency(Duration::from_millis(1500));
    let outcome = node.multus("ADD", &pod, index);
    assert_eq!(outcome.error_code(), 105, "{}", outcome.stdout);
    assert!(
        outcome.message().contains("no answer within 0.3 s"),
        "{}",
        outcome.message()
    );
    assert!(
        outcome.elapsed < Duration::from_secs(3),
        "{:?}",
        outcome.elapsed
    );
    assert_nothing_ran(&node, index);
    // A slow but answering server is fine within the bound.
    node.api.set_latency(Duration::from_millis(100));
    node.multus("ADD", &pod, index).ok();
    node.multus("DEL", &pod, index).ok();
}

#[test]
fn trusted_runtime_annotations_skip_the_pod_get() {
    let mut node = KubeNode::new();
    let (pod, index) = node.api_pod("default", "web", &[]);
    node.conf_extra = json!({
        "trustRuntimeAnnotations": true,
        "runtimeConfig": {"io.kubernetes.cri.pod-annotations": {NETWORKS: "green"}}
    });
    node.api.clear_requests();
    node.multus("ADD", &pod, index).ok();
    assert_eq!(node.pods[index].interface_names(), vec!["eth0", "net1"]);
    let requests = node.request_summary();
    assert!(
        !requests.iter().any(|r| r == "get pods web"),
        "{requests:?}"
    );
    assert_eq!(
        requests.iter().filter(|r| r.starts_with("get")).count(),
        1,
        "{requests:?}"
    );
    node.multus("DEL", &pod, index).ok();
}

#[test]
fn a_rotated_token_file_is_read_on_the_next_call() {
    let mut node = KubeNode::new();
    // A second stand-in on the same node whose kubeconfig uses `tokenFile`.
    let api = StandIn::start_with(Options {
        kubeconfig: Some(node.dir.path().join("token.kubeconfig")),
        netns: Some(node.netns().path()),
        token_in: TokenIn::File,
        ..Options::default()
    })
    .unwrap();
    let uid = api.create_pod("default", "web", &[]);
    let (pod, index) = node.pod("default", "web", &uid);
    let mut conf = node.conf();
    conf["kubeconfig"] = json!(api.kubeconfig());
    node.multus_with("ADD", &pod, index, &conf).ok();
    node.multus_with("DEL", &pod, index, &conf).ok();
    // The old token expires: refused until the kubelet rotates the file.
    api.require_token("rotated-token");
    let outcome = node.multus_with("ADD", &pod, index, &conf);
    assert_eq!(outcome.error_code(), 105);
    assert!(
        outcome.message().contains("Unauthorized"),
        "{}",
        outcome.message()
    );
    api.rotate_token("rotated-token").unwrap();
    node.multus_with("ADD", &pod, index, &conf).ok();
    assert!(
        api.get(&PODS, "default", "web").unwrap()["metadata"]["annotations"]
            .get(multus_integration_tests::kube::NETWORK_STATUS)
            .is_some()
    );
    node.multus_with("DEL", &pod, index, &conf).ok();
}

#[test]
fn readiness_indicator_file_bounds_add_and_never_blocks_del() {
    let mut node = KubeNode::new();
    let (pod, index) = node.api_pod("default", "web", &[]);
    let ready = node.dir.path().join("ready");
    node.conf_extra =
        json!({"readinessindicatorfile": ready, "readinessIndicatorTimeoutSeconds": 1});
    let outcome = node.multus("ADD", &pod, index);
    assert_eq!(outcome.error_code(), 11, "{}", outcome.stdout);
    assert!(
        outcome.message().contains("readinessindicatorfile"),
        "{}",
        outcome.message()
    );
    assert!(outcome.elapsed >= Duration::from_secs(1));
    node.multus("DEL", &pod, index).ok();
    std::fs::write(&ready, "").unwrap();
    node.multus("ADD", &pod, index).ok();
    node.multus("DEL", &pod, index).ok();
}

/// Removes the mount point this test had to create on the machine (empty directories
/// under /run, never anything that existed before).
struct CreatedDirs(Vec<std::path::PathBuf>);

impl Drop for CreatedDirs {
    fn drop(&mut self) {
        for dir in self.0.iter().rev() {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

#[test]
fn in_cluster_service_account_is_used_without_a_kubeconfig() {
    let mut node = KubeNode::new();
    let (pod, index) = node.api_pod("default", "web", &[(NETWORKS, "blue")]);
    // The service account as the kubelet mounts it, in a private mount namespace of the
    // multus process only.
    let mount_point = std::path::Path::new("/run/secrets/kubernetes.io/serviceaccount");
    let mut created = CreatedDirs(Vec::new());
    for dir in [
        "/run/secrets",
        "/run/secrets/kubernetes.io",
        "/run/secrets/kubernetes.io/serviceaccount",
    ] {
        if std::fs::create_dir(dir).is_ok() {
            created.0.push(dir.into());
        }
    }
    let account = node.dir.path().join("serviceaccount");
    std::fs::create_dir_all(&account).unwrap();
    std::fs::write(account.join("token"), "standin-token").unwrap();
    std::fs::write(account.join("ca.crt"), node.api.ca_pem()).unwrap();
    std::fs::write(account.join("namespace"), "kube-system").unwrap();
    let script = format!(
        "mount --bind {} {} && exec {}",
        account.display(),
        mount_point.display(),
        env!("CARGO_BIN_EXE_multus")
    );
    let mut conf = node.conf();
    conf.as_object_mut().unwrap().remove("kubeconfig");
    let outcome = node.multus_via(
        "ADD",
        &pod,
        index,
        &conf,
        &[
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ],
        &[
            ("KUBERNETES_SERVICE_HOST", "127.0.0.1"),
            ("KUBERNETES_SERVICE_PORT", &node.api.port().to_string()),
        ],
    );
    outcome.ok();
    assert_eq!(node.pods[index].interface_names(), vec!["eth0", "net1"]);
    assert!(node.network_status("default", "web").is_some());
    assert!(
        node.api
            .requests()
            .iter()
            .any(|r| r.name.as_deref() == Some("web"))
    );
    node.multus("DEL", &pod, index).ok();
    drop(created);
}

#[test]
fn cluster_network_default_networks_override_and_isolation_through_the_api() {
    let mut node = KubeNode::new();
    let nads = [
        (
            "cluster-nad",
            node.bridge_config("", "mkc1", "10.93.0.0/24"),
        ),
        ("extra", node.macvlan_config("", "10.94.0.0/24")),
        ("alt", node.bridge_config("", "mkc2", "10.95.0.0/24")),
    ];
    for (name, config) in &nads {
        // No `name` in the config: the NAD's name is injected.
        let mut config: Value = serde_json::from_str(config).unwrap();
        config.as_object_mut().unwrap().remove("name");
        node.api
            .create_nad("kube-system", name, &config.to_string())
            .unwrap();
    }
    let mut conf = node.conf();
    let object = conf.as_object_mut().unwrap();
    object.remove("delegates");
    object.insert("clusterNetwork".into(), json!("cluster-nad"));
    object.insert("defaultNetworks".into(), json!(["extra"]));
    object.insert("namespaceIsolation".into(), json!(true));
    object.insert("globalNamespaces".into(), json!("default,shared"));

    // clusterNetwork and defaultNetworks are NADs in multusNamespace (kube-system); the
    // annotation may name a NAD of a global namespace.
    let (pod, index) = node.api_pod("team", "web", &[(NETWORKS, "default/blue")]);
    node.multus_with("ADD", &pod, index, &conf).ok();
    let status = node.network_status("team", "web").unwrap();
    let names: Vec<&str> = status
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec![
            "kube-system/cluster-nad",
            "kube-system/extra",
            "default/blue"
        ]
    );
    let links = node.pods[index].interfaces();
    assert!(links[0].ips()[0].starts_with("10.93.0."), "{links:?}");
    node.multus_with("DEL", &pod, index, &conf).ok();

    // A pod in a system namespace gets no defaultNetworks.
    let (pod, index) = node.api_pod("kube-system", "dns", &[]);
    node.multus_with("ADD", &pod, index, &conf).ok();
    assert_eq!(node.pods[index].interface_names(), vec!["eth0"]);
    node.multus_with("DEL", &pod, index, &conf).ok();

    // The default-network annotation replaces the cluster network (its namespace
    // defaults to multusNamespace).
    let (pod, index) = node.api_pod(
        "team",
        "custom",
        &[("v1.multus-cni.io/default-network", "alt")],
    );
    node.multus_with("ADD", &pod, index, &conf).ok();
    let links = node.pods[index].interfaces();
    assert_eq!(links[0].name, "eth0");
    assert!(links[0].ips()[0].starts_with("10.95.0."), "{links:?}");
    assert_eq!(
        node.network_status("team", "custom").unwrap()[0]["name"],
        "kube-system/alt"
    );
    node.multus_with("DEL", &pod, index, &conf).ok();
    assert!(node.leases().is_empty());
}
