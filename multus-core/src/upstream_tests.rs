//! Fixtures in upstream's formats (`testdata/upstream/`): the scratch cache of a pod
//! with a cluster network loaded from a `.conflist` file (bridge + portmap), a macvlan
//! NAD with `interface: data0` and an IP request, and a config-list NAD (bridge +
//! tuning, `cni-args`, `default-route`); as v4.3.0 wrote it (with
//! `CNINetworkConfigList` and lossy `Bytes` for the file list) and as later versions
//! write it; and libcni's result cache entries of the three delegates.

use super::*;

use super::fixtures::{CONTAINER, RESULTS, SCRATCH_HEAD as HEAD, SCRATCH_V4_3_0 as V4_3_0};

fn defaults() -> UpstreamDefaults {
    UpstreamDefaults {
        cni_version: CniVersion::V1_0_0,
        ifname: "eth0".into(),
        netns: "/proc/1/ns/net".into(),
        cni_args: "IgnoreUnknown=true;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0".into(),
        runtime_config: Map::new(),
    }
}

fn results() -> Vec<LibcniCacheEntry> {
    RESULTS
        .iter()
        .map(|b| LibcniCacheEntry::parse(b).unwrap())
        .collect()
}

fn sandbox(scratch: Option<&[u8]>, results: Vec<LibcniCacheEntry>) -> UpstreamSandbox {
    UpstreamSandbox {
        container_id: CONTAINER.into(),
        delegates: scratch.map(|b| parse_scratch(CONTAINER, b).unwrap()),
        results,
        files: Vec::new(),
    }
}

/// `(network, ifname, cluster network)` of every attachment.
fn summary(state: &SandboxState) -> Vec<(&str, &str, bool)> {
    state
        .attachments
        .iter()
        .map(|a| {
            (
                a.delegate.network.as_str(),
                a.delegate.ifname.as_str(),
                a.delegate.cluster_network,
            )
        })
        .collect()
}

fn plugin(state: &SandboxState, attachment: usize, index: usize) -> Value {
    let config = &state.attachments[attachment].delegate.config;
    Value::Object(config.plugins()[index].clone())
}

#[test]
fn both_scratch_formats_give_upstreams_delegates_ifnames_and_order() {
    for scratch in [V4_3_0, HEAD] {
        let state = sandbox(Some(scratch), results())
            .to_state(&defaults())
            .unwrap();
        assert_eq!(
            summary(&state),
            [
                ("cluster", "eth0", true),
                ("default/macvlan-conf", "data0", false),
                ("kube-system/br-list", "net2", false),
            ]
        );
        assert_eq!(state.container_id, CONTAINER);
        assert_eq!(state.pod_name, "web-0");
        assert_eq!(state.pod_namespace, "default");
        assert_eq!(state.pod_uid, "0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a");
        assert_eq!(
            state.netns,
            "/var/run/netns/cni-6a1b2c3d-0000-4e5f-8a9b-0c1d2e3f4a5b"
        );
        assert_eq!(state.ifname, "eth0");
        let br = &state.attachments[2].delegate;
        assert_eq!(br.default_route, Some(vec!["10.2.2.1".parse().unwrap()]));
        assert_eq!(plugin(&state, 2, 1)["args"]["cni"]["team"], "blue");
    }
}

/// v4.3.0 wrote a file-loaded list's `Bytes` from the parsed standard keys: DEL with
/// them would lose host-local's ranges and dataDir. The raw plugin bytes restore them.
#[test]
fn lossy_v4_3_0_list_bytes_are_completed_from_the_raw_plugins() {
    let state = sandbox(Some(V4_3_0), results())
        .to_state(&defaults())
        .unwrap();
    let bridge = plugin(&state, 0, 0);
    assert_eq!(bridge["bridge"], "cni0");
    assert_eq!(bridge["ipam"]["dataDir"], "/var/lib/cni/networks");
    assert_eq!(bridge["ipam"]["ranges"][0][0]["subnet"], "10.244.1.0/24");
    assert_eq!(plugin(&state, 0, 1)["snat"], true);
    let head = sandbox(Some(HEAD), results())
        .to_state(&defaults())
        .unwrap();
    assert_eq!(
        state.attachments[0].delegate.config.plugins(),
        head.attachments[0].delegate.config.plugins()
    );
}

#[test]
fn libcni_entries_give_results_args_and_runtime_config() {
    let state = sandbox(Some(HEAD), results())
        .to_state(&defaults())
        .unwrap();
    let mac = &state.attachments[1];
    assert_eq!(
        mac.result.as_ref().unwrap()["ips"][0]["address"],
        "10.1.1.101/24"
    );
    // The ADD-only IP= key is not passed on DEL.
    assert_eq!(
        mac.delegate.cni_args,
        format!(
            "IgnoreUnknown=true;K8S_POD_NAMESPACE=default;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID={CONTAINER};K8S_POD_UID=0d9c8b7a-6f5e-4d3c-2b1a-0f9e8d7c6b5a"
        )
    );
    assert_eq!(
        state.attachments[0].delegate.runtime_config["portMappings"][0]["hostPort"],
        8080
    );
    assert!(state.attachments[0].result.is_some());
}

#[test]
fn without_libcni_entries_the_request_fills_in() {
    let state = sandbox(Some(HEAD), Vec::new())
        .to_state(&defaults())
        .unwrap();
    assert_eq!(state.netns, "/proc/1/ns/net");
    assert_eq!(state.attachments[0].delegate.ifname, "eth0");
    assert_eq!(state.attachments[2].delegate.ifname, "net2");
    assert_eq!(state.attachments[1].delegate.cni_args, defaults().cni_args);
    assert!(state.attachments.iter().all(|a| a.result.is_none()));
}

#[test]
fn without_a_scratch_cache_libcni_entries_alone_give_every_attachment() {
    let state = sandbox(None, results()).to_state(&defaults()).unwrap();
    assert_eq!(
        summary(&state),
        [
            ("cluster", "eth0", true),
            ("macvlan-conf", "data0", false),
            ("br-list", "net2", false),
        ]
    );
    assert_eq!(
        plugin(&state, 0, 0)["ipam"]["dataDir"],
        "/var/lib/cni/networks"
    );
}

#[test]
fn corrupt_scratch_caches_and_foreign_entries_are_refused() {
    assert!(parse_scratch(CONTAINER, b"[{\"Conf\":").is_err());
    assert!(parse_scratch(CONTAINER, b"[]").is_err());
    assert!(parse_scratch(CONTAINER, b"{\"format\":1}").is_err());
    assert!(
        LibcniCacheEntry::parse(
            b"{\"kind\":\"other\",\"containerId\":\"a\",\"ifName\":\"eth0\",\"networkName\":\"n\"}"
        )
        .is_none()
    );
    assert!(LibcniCacheEntry::parse(b"{\"kind\":\"cniCacheV1\",\"containerId\":\"a\",\"ifName\":\"\",\"networkName\":\"n\"}").is_none());
    let mut broken = parse_scratch(CONTAINER, HEAD).unwrap();
    broken[1].bytes = Some("not base64!".into());
    let sandbox = UpstreamSandbox {
        container_id: CONTAINER.into(),
        delegates: Some(broken),
        results: results(),
        files: Vec::new(),
    };
    let error = sandbox.to_state(&defaults()).unwrap_err();
    assert!(
        error.to_string().contains("default/macvlan-conf"),
        "{error}"
    );
}

#[test]
fn entry_file_names_are_libcnis() {
    let entries = results();
    assert_eq!(entries[2].file_name(), format!("br-list-{CONTAINER}-net2"));
}
