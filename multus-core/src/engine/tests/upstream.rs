//! Sandboxes upstream Go Multus attached (its caches in the fixtures'
//! `testdata/upstream/` formats, no multus-rs record): DEL, CHECK and GC from them, and
//! the note and event of a DEL that had to guess.

use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::json;

use super::{World, conf, conf_1_1, del, request, run};
use crate::engine::{Engine, MultusError, Seams};
use crate::nad::{NetworkAttachmentDefinition, NetworkStatus};
use crate::request::{Command, PodRef};
use crate::seams::{ApiError, ClusterApi, PodEvent, PodInfo};
use crate::upstream::fixtures::{RESULTS, SCRATCH_HEAD as SCRATCH};
use crate::upstream::{LibcniCacheEntry, UpstreamSandbox, parse_scratch};

/// The fixtures' sandbox as container `c1` (the tests' request).
fn upstream_sandbox(container_id: &str) -> UpstreamSandbox {
    UpstreamSandbox {
        container_id: container_id.into(),
        delegates: Some(parse_scratch(container_id, SCRATCH).unwrap()),
        results: RESULTS
            .iter()
            .map(|b| {
                let mut entry = LibcniCacheEntry::parse(b).unwrap();
                entry.container_id = container_id.into();
                entry
            })
            .collect(),
        files: Vec::new(),
    }
}

#[test]
fn del_of_an_upstream_sandbox_deletes_its_delegates_in_reverse_and_drops_the_caches() {
    let world = World::new();
    world.state.put_upstream(upstream_sandbox("c1"));
    del(&world, &conf("")).unwrap();
    assert_eq!(
        world.exec.summary(),
        [
            "DEL tuning net2",
            "DEL bridge net2",
            "DEL macvlan data0",
            "DEL portmap eth0",
            "DEL bridge eth0",
        ]
    );
    let calls = world.exec.calls();
    // br-list is 0.4.0: its DEL gets the result libcni cached; macvlan is 0.3.1: none.
    assert_eq!(calls[0].3["prevResult"]["ips"][0]["address"], "10.2.2.5/24");
    assert!(calls[2].3.get("prevResult").is_none());
    assert_eq!(calls[2].3["master"], "eth1");
    // portmap gets the portMappings the runtime passed at ADD (libcni's cache).
    assert_eq!(
        calls[3].3["runtimeConfig"]["portMappings"][0]["hostPort"],
        8080
    );
    assert!(world.state.upstream_left().is_empty());
    assert!(world.state.record("c1").is_none());
    assert!(world.state.notes().is_empty());
}

#[test]
fn failed_del_of_an_upstream_sandbox_keeps_its_caches_for_the_retry() {
    let mut world = World::new();
    world.exec.failing_del.insert("macvlan".into());
    world.state.put_upstream(upstream_sandbox("c1"));
    let err = del(&world, &conf("")).unwrap_err();
    assert!(err.to_string().contains("default/macvlan-conf"), "{err}");
    // Every delegate was still tried.
    assert_eq!(world.exec.summary().len(), 5);
    assert_eq!(world.state.upstream_left(), ["c1"]);
    assert!(world.state.record("c1").is_none());
    world.exec.failing_del.clear();
    del(&world, &conf("")).unwrap();
    assert!(world.state.upstream_left().is_empty());
}

#[test]
fn check_of_an_upstream_sandbox_checks_its_attachments() {
    let world = World::new();
    world.state.put_upstream(upstream_sandbox("c1"));
    let request = request(Command::Check);
    // CHECK needs a conf of CNI 0.4.0 or later.
    let mut conf = conf("");
    conf.cni_version = crate::cni::CniVersion::V1_0_0;
    let err = pollster::block_on(Engine::new(&conf, &request, world.seams()).check()).unwrap_err();
    // Not "unknown container": the cluster network's eth0 is looked for, and missing.
    assert!(
        matches!(&err, MultusError::Check { network, ifname, .. } if network == "cluster" && ifname == "eth0"),
        "{err:?}"
    );
    assert_eq!(world.state.upstream_left(), ["c1"]);
}

#[test]
fn gc_keeps_a_valid_upstream_sandbox_and_releases_it_once_invalid() {
    let world = World::new();
    world.state.put_upstream(upstream_sandbox("c1"));
    let valid =
        conf_1_1(json!({"cni.dev/valid-attachments": [{"containerID": "c1", "ifname": "eth0"}]}));
    run(&world, &valid, Command::Gc).unwrap();
    assert!(
        world.exec.summary().iter().all(|c| !c.starts_with("DEL")),
        "{:?}",
        world.exec.summary()
    );
    assert_eq!(world.state.upstream_left(), ["c1"]);

    let invalid = conf_1_1(json!({"cni.dev/valid-attachments": []}));
    run(&world, &invalid, Command::Gc).unwrap();
    let dels: Vec<String> = world
        .exec
        .summary()
        .into_iter()
        .filter(|c| c.starts_with("DEL"))
        .collect();
    assert_eq!(dels.len(), 5, "{dels:?}");
    // Torn down in its own sandbox (libcni's cached netns).
    assert!(
        world
            .exec
            .containers
            .lock()
            .unwrap()
            .iter()
            .any(|c| c == "c1")
    );
    assert!(world.state.upstream_left().is_empty());
}

/// The cluster network only, and no pod annotations from the runtime.
fn conf_without_annotations() -> crate::config::MultusConf {
    crate::config::MultusConf::parse(
        json!({
            "cniVersion": "0.3.1",
            "name": "multus",
            "type": "multus",
            "delegates": [{"cniVersion": "1.0.0", "name": "cluster", "type": "ptp"}],
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap()
}

/// An API where every pod is gone; it records the events.
#[derive(Default)]
struct GoneApi {
    events: Mutex<Vec<PodEvent>>,
}

#[async_trait]
impl ClusterApi for GoneApi {
    fn has_pods(&self) -> bool {
        true
    }
    async fn pod(&self, _: &PodRef) -> Result<Option<PodInfo>, ApiError> {
        Ok(None)
    }
    async fn network_attachment(
        &self,
        _: &str,
        _: &str,
    ) -> Result<Option<NetworkAttachmentDefinition>, ApiError> {
        Ok(None)
    }
    async fn set_network_status(&self, _: &PodRef, _: &[NetworkStatus]) -> Result<(), ApiError> {
        Ok(())
    }
    async fn emit_event(&self, _: &PodRef, event: &PodEvent) -> Result<(), ApiError> {
        self.events.lock().unwrap().push(event.clone());
        Ok(())
    }
}

#[test]
fn del_with_nothing_known_notes_the_sandbox_and_warns_on_the_pod() {
    let world = World::new();
    let api = GoneApi::default();
    let seams = Seams {
        api: &api,
        ..world.seams()
    };
    let request = request(Command::Del);
    let plain = conf_without_annotations();
    pollster::block_on(Engine::new(&plain, &request, seams).del()).unwrap();
    assert_eq!(world.exec.summary(), ["DEL ptp eth0"]);
    let notes = world.state.notes();
    let note = &notes["c1"];
    assert_eq!(note.pod_name, "web");
    assert_eq!(note.deleted, ["cluster (eth0)"]);
    assert!(
        note.reason.contains("annotations are unavailable"),
        "{note:?}"
    );
    let events = api.events.lock().unwrap().clone();
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].kind, "Warning");
    assert_eq!(events[0].reason, "UnknownAttachments");
    assert!(events[0].message.contains("sandbox c1"), "{events:?}");

    // A later DEL that knows the pod's networks (the runtime passes its annotations)
    // forgets the note.
    del(&world, &conf("")).unwrap();
    assert!(world.state.notes().is_empty());
}

#[test]
fn complete_del_without_record_leaves_no_note() {
    let world = World::new();
    del(&world, &conf("blue")).unwrap();
    assert!(world.state.notes().is_empty());
}

/// A guessed DEL that failed keeps its plan as a record; the retry from that record
/// still knows nothing more, so the note stays.
#[test]
fn retry_of_a_failed_guessed_del_keeps_the_note() {
    let mut world = World::new();
    world.exec.failing_del.insert("ptp".into());
    let api = GoneApi::default();
    let plain = conf_without_annotations();
    let request = request(Command::Del);
    let run = |world: &World| {
        let seams = Seams {
            api: &api,
            ..world.seams()
        };
        pollster::block_on(Engine::new(&plain, &request, seams).del())
    };
    run(&world).unwrap_err();
    assert!(world.state.record("c1").is_some());
    assert!(world.state.notes().contains_key("c1"));
    world.exec.failing_del.clear();
    run(&world).unwrap();
    assert!(world.state.record("c1").is_none());
    assert!(world.state.notes().contains_key("c1"));
}
