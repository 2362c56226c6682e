//! Engine tests of parallel attach: overlap, the cluster network first and alone,
//! results and record identical to a serial ADD, rollback and DEL in reverse stages.

use std::sync::Mutex;
use std::task::Poll;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::{World, request};
use crate::config::MultusConf;
use crate::engine::{Engine, MultusError, Seams};
use crate::request::Command;
use crate::seams::{DelegateExec, ExecError, ExecRequest};

/// The world's fake exec, with each call yielding once mid-way (so concurrent calls
/// overlap) and a log of starts and ends.
struct Yielding<'a> {
    world: &'a World,
    log: Mutex<Vec<String>>,
    in_flight: Mutex<(usize, usize)>,
}

impl<'a> Yielding<'a> {
    fn new(world: &'a World) -> Self {
        Self {
            world,
            log: Mutex::new(Vec::new()),
            in_flight: Mutex::new((0, 0)),
        }
    }
    fn peak(&self) -> usize {
        self.in_flight.lock().unwrap().1
    }
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
    fn seams(&self) -> Seams<'_> {
        Seams {
            exec: self,
            ..self.world.seams()
        }
    }
}

#[async_trait]
impl DelegateExec for Yielding<'_> {
    async fn exec(&self, request: ExecRequest) -> Result<Vec<u8>, ExecError> {
        let call = format!("{} {}", request.command, request.ifname);
        self.log.lock().unwrap().push(format!("start {call}"));
        {
            let mut f = self.in_flight.lock().unwrap();
            f.0 += 1;
            f.1 = f.1.max(f.0);
        }
        let mut yielded = false;
        std::future::poll_fn(|cx| {
            if yielded {
                Poll::Ready(())
            } else {
                yielded = true;
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        })
        .await;
        self.in_flight.lock().unwrap().0 -= 1;
        self.log.lock().unwrap().push(format!("end {call}"));
        self.world.exec.exec(request).await
    }
}

fn conf(networks: &str, parallel: bool, annotation: Option<&str>) -> MultusConf {
    let mut annotations = json!({"k8s.v1.cni.cncf.io/networks": networks});
    if let Some(value) = annotation {
        annotations["k8s.v1.cni.cncf.io/parallel-attach"] = json!(value);
    }
    let doc = json!({
        "cniVersion": "1.0.0",
        "name": "multus",
        "type": "multus",
        "delegates": [{"cniVersion": "1.0.0", "name": "cluster", "type": "ptp"}],
        "parallelAttach": parallel,
        "parallelAttachLimit": 3,
        "runtimeConfig": {"io.kubernetes.cri.pod-annotations": annotations}
    });
    MultusConf::parse(doc.to_string().as_bytes()).unwrap()
}

const NETWORKS: &str = "blue, blue@b2, chain@mv0, fromdir, blue@b3";

fn add(exec: &Yielding<'_>, conf: &MultusConf) -> Result<Vec<u8>, MultusError> {
    let request = request(Command::Add);
    pollster::block_on(Engine::new(conf, &request, exec.seams()).add())
}

fn del(exec: &Yielding<'_>, conf: &MultusConf) -> Result<(), MultusError> {
    let request = request(Command::Del);
    pollster::block_on(Engine::new(conf, &request, exec.seams()).del())
}

/// Index in `log` of `entry`.
fn at(log: &[String], entry: &str) -> usize {
    log.iter()
        .position(|e| e == entry)
        .unwrap_or_else(|| panic!("{entry} not in {log:?}"))
}

#[test]
fn parallel_attach_overlaps_and_is_observably_serial() {
    let serial_world = World::new();
    let serial = Yielding::new(&serial_world);
    let serial_out = add(&serial, &conf(NETWORKS, false, None)).unwrap();
    assert_eq!(serial.peak(), 1);

    let world = World::new();
    let parallel = Yielding::new(&world);
    let out = add(&parallel, &conf(NETWORKS, true, None)).unwrap();
    assert!(parallel.peak() >= 2, "{:?}", parallel.log());
    assert!(parallel.peak() <= 3, "parallelAttachLimit bounds it");
    let log = parallel.log();
    // The cluster network ran first and alone.
    assert_eq!(log[..2], ["start ADD eth0", "end ADD eth0"]);
    assert!(
        at(&log, "start ADD b2") < at(&log, "end ADD net1"),
        "two in flight: {log:?}"
    );

    assert_eq!(out, serial_out);
    let mut record = world.state.record("c1").unwrap();
    let serial_record = serial_world.state.record("c1").unwrap();
    assert!(record.parallel_attach && !serial_record.parallel_attach);
    record.parallel_attach = false;
    assert_eq!(record, serial_record, "the record is the serial one");
    // The conflist's plugins still run in order within their delegate.
    let calls = world.exec.summary();
    assert!(
        calls.iter().position(|c| c == "ADD macvlan mv0")
            < calls.iter().position(|c| c == "ADD tuning mv0")
    );
}

#[test]
fn del_of_a_parallel_attach_runs_additional_networks_together_then_the_cluster_network() {
    let world = World::new();
    let exec = Yielding::new(&world);
    // The pod asked for it; DEL knows from the record, whatever the configuration says.
    add(&exec, &conf(NETWORKS, false, Some("true"))).unwrap();
    let before = exec.log().len();
    del(&exec, &conf(NETWORKS, false, None)).unwrap();
    let log = exec.log()[before..].to_vec();
    assert!(exec.peak() >= 2);
    assert_eq!(
        log[log.len() - 2..],
        ["start DEL eth0", "end DEL eth0"],
        "the cluster network last and alone: {log:?}"
    );
    // Reverse order of start: the last network first.
    assert_eq!(log[0], "start DEL b3");
    assert!(world.state.record("c1").is_none());
}

#[test]
fn the_pod_annotation_turns_parallel_attach_on_or_off() {
    for (parallel, annotation, expected) in [
        (false, None, false),
        (true, None, true),
        (false, Some("true"), true),
        (true, Some("false"), false),
        (true, Some("maybe"), true),
        (false, Some("TRUE"), true),
    ] {
        let world = World::new();
        let exec = Yielding::new(&world);
        add(&exec, &conf(NETWORKS, parallel, annotation)).unwrap();
        let record = world.state.record("c1").unwrap();
        assert_eq!(
            record.parallel_attach, expected,
            "{parallel} {annotation:?}"
        );
        assert_eq!(exec.peak() > 1, expected, "{parallel} {annotation:?}");
    }
}

#[test]
fn a_failure_mid_way_rolls_back_every_attempted_attachment() {
    let world = World::new();
    let exec = Yielding::new(&world);
    let networks = "blue, broken@x1, blue@b2, chain@mv0, blue@b3, blue@b4";
    let err = add(&exec, &conf(networks, true, None)).unwrap_err();
    assert_eq!(err.code(), 999);
    let cni = err.to_cni_error("1.0.0");
    assert!(cni.msg.contains("default/broken"), "{}", cni.msg);
    let calls = world.exec.summary();
    let added: Vec<&String> = calls.iter().filter(|c| c.starts_with("ADD")).collect();
    let deleted: Vec<&String> = calls.iter().filter(|c| c.starts_with("DEL")).collect();
    assert!(added.len() >= 3, "{calls:?}");
    // Everything started was deleted again (the failed one too), the cluster network
    // last; what never started was never deleted.
    for add in &added {
        let ifname = add.rsplit(' ').next().unwrap();
        assert!(
            deleted.iter().any(|d| d.ends_with(&format!(" {ifname}"))),
            "{ifname} not rolled back: {calls:?}"
        );
    }
    assert_eq!(calls.last().unwrap(), "DEL ptp eth0");
    assert!(
        !calls.iter().any(|c| c.ends_with(" b4")),
        "b4 never started: {calls:?}"
    );
    assert!(
        cni.details
            .contains("rolled back: cluster (eth0), default/blue (net1), default/broken (x1)"),
        "{}",
        cni.details
    );
    assert!(world.state.record("c1").is_none(), "nothing left");
}

#[test]
fn a_parallel_record_reads_back_and_an_old_record_is_serial() {
    let world = World::new();
    let exec = Yielding::new(&world);
    add(&exec, &conf("blue", true, None)).unwrap();
    let record = world.state.record("c1").unwrap();
    let doc: Value = serde_json::to_value(&record).unwrap();
    assert_eq!(doc["parallelAttach"], true);
    let mut old = doc.clone();
    old.as_object_mut().unwrap().remove("parallelAttach");
    let old: crate::state::SandboxState = serde_json::from_value(old).unwrap();
    assert!(!old.parallel_attach);
}
