//! Figures, not assertions: Kubernetes API requests per ADD and per DEL, and the median
//! ADD wall time with the stand-in at 0 ms and 50 ms of injected latency, next to
//! upstream's serial design ((2 + N) sequential round trips). Run with
//! `cargo test --release -p multus-cni --test kube_bench -- --ignored --nocapture`
//! (root, reference plugins installed).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use k8s_standin::RequestRecord;
use multus_integration_tests::kube::{KubeNode, NETWORKS};
use serde_json::json;

const ROUNDS: usize = 9;

fn count(records: &[RequestRecord]) -> (usize, usize, usize, usize) {
    let reads = records.iter().filter(|r| r.is_read()).count();
    let status_writes = records
        .iter()
        .filter(|r| r.is_write() && r.resource.as_deref() == Some("pods"))
        .count();
    let events = records
        .iter()
        .filter(|r| r.is_write() && r.resource.as_deref() == Some("events"))
        .count();
    (reads, status_writes, events, records.len())
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// One scenario: `networks` NADs, annotations from the API or trusted from the runtime.
fn scenario(networks: usize, trusted: bool, latency_ms: u64) -> (String, String, Duration) {
    let mut node = KubeNode::new();
    let names: Vec<String> = (0..networks).map(|i| format!("net-{i}")).collect();
    for (i, name) in names.iter().enumerate() {
        let config = node.macvlan_config(name, &format!("10.100.{i}.0/24"));
        node.api.create_nad("default", name, &config).unwrap();
    }
    let annotation = names.join(",");
    let (pod, index) = node.api_pod("default", "bench", &[(NETWORKS, annotation.as_str())]);
    if trusted {
        node.conf_extra = json!({
            "trustRuntimeAnnotations": true,
            "runtimeConfig": {"io.kubernetes.cri.pod-annotations": {NETWORKS: annotation}}
        });
    }
    node.api.set_latency(Duration::from_millis(latency_ms));
    let mut add_times = Vec::new();
    let (mut add_counts, mut del_counts) = (String::new(), String::new());
    for round in 0..ROUNDS {
        node.api.clear_requests();
        let outcome = node.multus("ADD", &pod, index);
        outcome.ok();
        add_times.push(outcome.elapsed);
        let (reads, status, events, _) = count(&node.api.requests());
        if round == 0 {
            add_counts = format!("{reads} reads, {status} status write, {events} events");
        }
        node.api.clear_requests();
        node.multus("DEL", &pod, index).ok();
        let (reads, status, events, _) = count(&node.api.requests());
        if round == 0 {
            del_counts = format!("{reads} reads, {} writes", status + events);
        }
    }
    (add_counts, del_counts, median(add_times))
}

/// ADD with file-based NADs and the runtime's annotations: no API server at all.
fn files_scenario(networks: usize) -> Duration {
    let mut node = KubeNode::new();
    let dir = node.dir.path().join("nads");
    std::fs::create_dir_all(&dir).unwrap();
    let mut annotation = Vec::new();
    for i in 0..networks {
        let name = format!("net-{i}");
        let config = node.macvlan_config(&name, &format!("10.100.{i}.0/24"));
        let manifest = json!({"apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": name}, "spec": {"config": config}});
        std::fs::write(dir.join(format!("{name}.json")), manifest.to_string()).unwrap();
        annotation.push(name);
    }
    let (pod, index) = node.pod("default", "bench", "");
    let mut conf = node.conf();
    let object = conf.as_object_mut().unwrap();
    object.remove("kubeconfig");
    object.insert("networkAttachmentDir".into(), json!(dir));
    object.insert(
        "runtimeConfig".into(),
        json!({"io.kubernetes.cri.pod-annotations": {NETWORKS: annotation.join(",")}}),
    );
    node.api.clear_requests();
    let mut times = Vec::new();
    for _ in 0..ROUNDS {
        let outcome = node.multus_with("ADD", &pod, index, &conf);
        outcome.ok();
        times.push(outcome.elapsed);
        node.multus_with("DEL", &pod, index, &conf).ok();
    }
    assert!(node.api.requests().is_empty());
    median(times)
}

#[test]
#[ignore = "benchmark: prints figures"]
fn api_requests_and_add_latency() {
    println!("\nKubernetes API requests and median ADD wall time ({ROUNDS} rounds each)\n");
    println!(
        "| networks | annotations | API requests per ADD | per DEL | ADD median, 0 ms | ADD median, 50 ms | our API cost at 50 ms | upstream serial API cost at 50 ms ((2+N) x 50 ms) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for networks in [1usize, 8] {
        for trusted in [false, true] {
            let (add, del, fast) = scenario(networks, trusted, 0);
            let (_, _, slow) = scenario(networks, trusted, 50);
            let upstream = Duration::from_millis(50 * (2 + networks as u64));
            println!(
                "| {networks} | {} | {add} | {del} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} ms |",
                if trusted {
                    "runtime (trusted)"
                } else {
                    "pod GET"
                },
                fast.as_secs_f64() * 1000.0,
                slow.as_secs_f64() * 1000.0,
                slow.saturating_sub(fast).as_secs_f64() * 1000.0,
                upstream.as_secs_f64() * 1000.0,
            );
        }
        let files = files_scenario(networks);
        println!(
            "| {networks} | runtime, NAD files | 0 | 0 | {:.0} ms | n/a | 0 ms | n/a |",
            files.as_secs_f64() * 1000.0
        );
    }
}
