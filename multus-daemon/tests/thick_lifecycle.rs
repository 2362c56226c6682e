//! The daemon's life cycle: 00-multus.conf generated, regenerated and kept; a user conf
//! copied; graceful shutdown; restarts and kills during traffic with nothing lost or
//! half-applied.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use multus_integration_tests::thick as support;

use std::time::{Duration, Instant};

use multus_integration_tests::CLUSTER_NETWORK;
use multus_integration_tests::fixtures::{self, Subnet};
use multus_integration_tests::runtime::RunningCall;
use serde_json::{Value, json};
use support::{Thick, plugin_stdin};

#[test]
fn primary_edited_then_replaced_regenerates_the_conf_and_it_is_kept_on_shutdown() {
    let mut thick = Thick::new(false);
    thick.set("daemonUnreachableDelGraceSeconds", json!(900));
    let first = thick.write_primary(
        "20-a.conf",
        &json!({"cniVersion":"0.3.1","name":"a","type":"bridge","capabilities":{"mac":true}}),
    );
    thick.start_daemon();
    let doc = thick.wait_generated("00-multus.conf", |_| true);
    assert_eq!(
        doc,
        json!({
            "cniVersion": "0.3.1",
            "name": "multus-cni-network",
            "type": "multus-shim",
            // File-based NADs: the pod annotations can only come from the runtime.
            "capabilities": {"io.kubernetes.cri.pod-annotations": true, "mac": true},
            "logLevel": "verbose",
            "logToStderr": true,
            "binDir": thick.h.dirs.bin_dir(),
            "cniDir": thick.h.dirs.cni_dir(),
            "daemonSocketDir": thick.socket_dir(),
            "daemonUnreachableDelGraceSeconds": 900,
            "daemonReadyTimeoutSeconds": 20.0,
            "clusterNetwork": first,
        })
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(thick.net_d().join("00-multus.conf"))
            .unwrap()
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);

    // Edited in place: new capabilities.
    thick.write_primary(
        "20-a.conf",
        &json!({"cniVersion":"0.3.1","name":"a","type":"bridge","capabilities":{"mac":true,"portMappings":true}}),
    );
    thick.wait_generated("00-multus.conf", |d| {
        d["capabilities"]["portMappings"] == true
    });

    // Replaced by another file that sorts first (and is a 1.0.0 config list).
    let second = thick.write_primary(
        "10-b.conflist",
        &json!({"cniVersion":"1.0.0","name":"b","plugins":[{"type":"ptp"},{"type":"portmap","capabilities":{"portMappings":true}}]}),
    );
    let list = thick.wait_generated("00-multus.conflist", |_| true);
    assert_eq!(
        list["plugins"][0]["clusterNetwork"],
        second.display().to_string()
    );
    assert_eq!(
        list["plugins"][0]["capabilities"],
        json!({"io.kubernetes.cri.pod-annotations": true, "portMappings": true})
    );
    let deadline = Instant::now() + Duration::from_secs(5);
    while thick.net_d().join("00-multus.conf").exists() {
        assert!(
            Instant::now() < deadline,
            "the stale 00-multus.conf was not removed"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // A primary that is being rewritten (empty) never produces an empty conf.
    std::fs::write(&second, b"").unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let unchanged: Value =
        serde_json::from_slice(&std::fs::read(thick.net_d().join("00-multus.conflist")).unwrap())
            .unwrap();
    assert_eq!(unchanged, list);
    // Removed by hand: written again.
    std::fs::remove_file(&second).unwrap();
    std::fs::remove_file(thick.net_d().join("00-multus.conflist")).unwrap();
    thick.wait_generated("00-multus.conf", |d| {
        d["clusterNetwork"] == first.display().to_string()
    });
    let generated_names: Vec<String> = std::fs::read_dir(thick.net_d())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("00-multus") || n.contains(".tmp"))
        .collect();
    assert_eq!(generated_names, vec!["00-multus.conf"]);

    assert_eq!(thick.stop_daemon(), 0);
    assert!(
        thick.net_d().join("00-multus.conf").exists(),
        "kept on shutdown"
    );
    assert!(
        !thick.socket().exists(),
        "the socket is removed on shutdown"
    );
}

#[test]
fn a_user_conf_path_is_copied_and_the_daemon_keeps_serving() {
    let mut thick = Thick::new(false);
    let source_dir = tempfile::tempdir().unwrap();
    let source = source_dir.path().join("70-multus.conf");
    let user = json!({"cniVersion":"0.3.1","name":"multus-cni-network","type":"multus-shim",
        "clusterNetwork":"/etc/cni/net.d/10-x.conf"});
    std::fs::write(&source, user.to_string()).unwrap();
    thick.set("multusConfigFile", json!(source));
    thick.start_daemon();
    let copied = thick.wait_generated("70-multus.conf", |_| true);
    assert_eq!(copied, user);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(
        thick.client().get("/readyz").unwrap().status,
        200,
        "still serving (upstream exits)"
    );
    let config: Value =
        serde_json::from_slice(&thick.client().get("/config").unwrap().body).unwrap();
    assert_eq!(
        config["configManager"]["file"],
        thick.net_d().join("70-multus.conf").display().to_string()
    );
    assert_eq!(thick.stop_daemon(), 0);
}

/// `n` ADDs started at once through the shim, each for its own pod.
fn concurrent_adds(
    thick: &Thick,
    conf: &Value,
    n: usize,
) -> Vec<(multus_integration_tests::runtime::Sandbox, RunningCall)> {
    (0..n)
        .map(|_| {
            let pod = thick.h.sandbox();
            let call = thick.shim.call("ADD", &pod, conf);
            let running = thick.shim.spawn(call);
            (pod, running)
        })
        .collect()
}

#[test]
fn sigterm_with_queued_requests_loses_nothing_and_half_applies_nothing() {
    let mut thick = Thick::new(false);
    thick.set("maxConcurrentRequests", json!(1));
    // The shim does not wait for a busy daemon here: every request is answered by the
    // daemon that received it.
    thick.set("daemonReadyTimeoutSeconds", json!(0.2));
    let subnet = Subnet::unique();
    thick.write_primary(
        "10-cluster.conf",
        &fixtures::bridge_conf(
            "0.4.0",
            CLUSTER_NETWORK,
            "mrs-cbr0",
            subnet,
            true,
            &thick.h.dirs,
        ),
    );
    thick.start_daemon();
    let conf = plugin_stdin(&thick.wait_generated("00-multus.conf", |_| true));
    let calls = concurrent_adds(&thick, &conf, 12);
    let deadline = Instant::now() + Duration::from_secs(20);
    while thick.metric("multus_requests_queued") < 3.0 {
        assert!(
            Instant::now() < deadline,
            "requests never queued:\n{}",
            thick.metrics()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut daemon = thick.daemon.take().unwrap();
    daemon.terminate();
    // While the running request finishes, the daemon says it is not ready.
    let mut saw_not_ready = false;
    while daemon.wait(Duration::ZERO).is_none() {
        if let Ok(response) = thick.client().get("/readyz") {
            saw_not_ready |= response.status == 500;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(daemon.wait(Duration::ZERO), Some(0), "{}", daemon.log());
    let log = daemon.log();
    drop(daemon);
    assert!(
        saw_not_ready || log.contains("in-flight requests finished"),
        "{log}"
    );

    let mut succeeded = Vec::new();
    let mut retry = Vec::new();
    for (pod, running) in calls {
        let out = running.wait();
        if out.code == 0 {
            let result = out.success();
            assert!(
                pod.netns.link("eth0").is_some(),
                "a successful ADD attached eth0"
            );
            succeeded.push((pod, result));
        } else {
            let error = out.error_with_code(11);
            assert!(
                error.msg.contains("shutting down") || error.msg.contains("multus-daemon"),
                "{}",
                error.output
            );
            // Nothing half-applied: no interface, no lease, no record.
            assert_eq!(pod.netns.link_names(), vec!["lo"], "{}", error.output);
            assert!(thick.h.dirs.leases_of(&pod.container_id, "eth0").is_empty());
            assert!(thick.h.dirs.state(&pod.container_id).is_none());
            retry.push(pod);
        }
    }
    assert!(!succeeded.is_empty(), "the running request finished");
    assert!(
        !retry.is_empty(),
        "queued requests were turned away with code 11"
    );

    // The runtime retries once the daemon is back.
    thick.start_daemon();
    for pod in retry {
        let result = thick.shim.add(&pod, &conf).success();
        succeeded.push((pod, result));
    }
    for (pod, result) in &succeeded {
        thick.shim.del(pod, &conf, Some(result)).empty_success();
    }
    let pods: Vec<_> = succeeded.iter().map(|(p, _)| p).collect();
    thick.h.assert_nothing_leaked(&pods);
}

#[test]
fn daemon_killed_mid_add_then_del_after_restart_leaks_nothing() {
    let mut thick = Thick::new(false);
    thick.h.dirs.install_recorder("recorder");
    thick.set("daemonReadyTimeoutSeconds", json!(0.5));
    let subnet = Subnet::unique();
    // A cluster network list: bridge, then a slow recorder (the kill lands there).
    thick.write_primary(
        "10-cluster.conflist",
        &json!({"cniVersion":"0.4.0","name":CLUSTER_NETWORK,"plugins":[
            fixtures::bridge_conf("0.4.0", CLUSTER_NETWORK, "mrs-cbr0", subnet, true, &thick.h.dirs),
            {"type":"recorder","recordFile":thick.h.dirs.record_file(),"sleepOnAdd":3000}
        ]}),
    );
    thick.start_daemon();
    let conf = plugin_stdin(&thick.wait_generated("00-multus.conf", |_| true));
    let pod = thick.h.sandbox();
    let running = thick.shim.spawn(thick.shim.call("ADD", &pod, &conf));
    let marker = multus_integration_tests::recording::in_flight_marker(
        &thick.h.dirs.record_file(),
        "ADD",
        &pod.container_id,
        "eth0",
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let delegate_pid: u32 = loop {
        if let Some(pid) = std::fs::read_to_string(&marker)
            .ok()
            .and_then(|text| text.trim().parse().ok())
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "the slow plugin never started");
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut daemon = thick.daemon.take().unwrap();
    let pid = nix::unistd::Pid::from_raw(i32::try_from(daemon.pid()).unwrap());
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL).unwrap();
    daemon.wait(Duration::from_secs(10));
    drop(daemon);
    // The in-flight delegate died with the daemon, long before its sleep would end.
    fixtures::assert_gone_within(
        delegate_pid,
        Duration::from_millis(1500),
        "the delegate, after its daemon was killed",
    );
    let out = running.wait();
    out.error_with_code(11);

    // The runtime's DEL: the daemon is back (a stale socket file is no obstacle).
    thick.start_daemon();
    thick.shim.del(&pod, &conf, None).empty_success();
    thick.h.assert_nothing_leaked(&[&pod]);
}

#[test]
fn invalid_daemon_config_is_a_clear_error_and_exit_1() {
    let mut thick = Thick::new(false);
    thick.set("maxConcurrentRequests", json!("lots"));
    let mut daemon = thick.spawn_daemon(&[]);
    assert_eq!(daemon.wait(Duration::from_secs(20)), Some(1));
    let log = daemon.log();
    assert!(log.contains("key `maxConcurrentRequests`"), "{log}");
    assert!(log.contains("expected an integer"), "{log}");

    let thick = Thick::new(false);
    let mut daemon = thick.spawn_daemon(&["--config", "/nonexistent/daemon-config.json"]);
    assert_eq!(daemon.wait(Duration::from_secs(20)), Some(1));
    assert!(
        daemon
            .log()
            .contains("cannot read /nonexistent/daemon-config.json"),
        "{}",
        daemon.log()
    );
}

/// `GET path` on 127.0.0.1:`port` inside the namespace at `netns` (from a thread that
/// enters it); the whole response.
fn http_get_in(netns: std::path::PathBuf, port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let path = path.to_owned();
    std::thread::spawn(move || {
        let file = std::fs::File::open(&netns).unwrap();
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    })
    .join()
    .unwrap()
}

#[test]
fn metrics_on_the_metrics_port_and_the_connection_limit() {
    let mut thick = Thick::new(false);
    thick.h.dirs.install_recorder("recorder");
    thick.set("metricsPort", json!(19091));
    thick.set("metricsAddress", json!("127.0.0.1"));
    thick.set("connectionLimit", json!(1));
    let mut recorder = fixtures::recorder_conf("1.0.0", "rec", "slow", &thick.h.dirs);
    recorder["sleepOnAdd"] = json!(1500);
    thick.write_primary("10-rec.conf", &recorder);
    thick.start_daemon();
    let conf = plugin_stdin(&thick.wait_generated("00-multus.conflist", |_| true));

    let page = http_get_in(thick.h.node.netns().path(), 19091, "/metrics");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.contains("multus_server_request_total{handler=\"/readyz\""),
        "{page}"
    );
    assert!(page.contains("multus_requests_in_flight 0"), "{page}");
    assert!(page.contains("process_resident_memory_bytes"), "{page}");
    assert!(http_get_in(thick.h.node.netns().path(), 19091, "/nope").starts_with("HTTP/1.1 404"));

    // One connection at a time: while the slow ADD holds the only one, another
    // connection waits in the backlog.
    let pod = thick.h.sandbox();
    let running = thick.shim.spawn(thick.shim.call("ADD", &pod, &conf));
    let marker = multus_integration_tests::recording::in_flight_marker(
        &thick.h.dirs.record_file(),
        "ADD",
        &pod.container_id,
        "eth0",
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the slow ADD never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let started = Instant::now();
    assert_eq!(thick.client().get("/healthz").unwrap().status, 200);
    let waited = started.elapsed();
    running.wait().success();
    assert!(
        waited >= Duration::from_millis(500),
        "/healthz was accepted after {waited:?} while the only connection was busy"
    );
    thick.shim.del(&pod, &conf, None).empty_success();
}

#[test]
fn sigterm_turns_not_ready_refuses_new_work_and_lets_the_running_add_finish() {
    let mut thick = Thick::new(false);
    thick.h.dirs.install_recorder("recorder");
    thick.set("daemonReadyTimeoutSeconds", json!(0));
    let mut recorder = fixtures::recorder_conf("1.0.0", "rec", "slow", &thick.h.dirs);
    recorder["sleepOnAdd"] = json!(2000);
    thick.write_primary("10-rec.conf", &recorder);
    thick.start_daemon();
    let conf = plugin_stdin(&thick.wait_generated("00-multus.conflist", |_| true));
    let pod = thick.h.sandbox();
    let running = thick.shim.spawn(thick.shim.call("ADD", &pod, &conf));
    let marker = multus_integration_tests::recording::in_flight_marker(
        &thick.h.dirs.record_file(),
        "ADD",
        &pod.container_id,
        "eth0",
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the slow ADD never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut daemon = thick.daemon.take().unwrap();
    daemon.terminate();
    let deadline = Instant::now() + Duration::from_secs(5);
    while thick.client().get("/readyz").map(|r| r.status).unwrap_or(0) != 500 {
        assert!(
            Instant::now() < deadline,
            "/readyz never answered 500:\n{}",
            daemon.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // New work is turned away with "try again later" while the ADD runs.
    let other = thick.h.sandbox();
    let out = thick.shim.del(&other, &conf, None);
    let error = out.error_with_code(11);
    assert!(error.msg.contains("shutting down"), "{}", error.output);
    assert_eq!(daemon.wait(Duration::ZERO), None, "still draining");
    let result = running.wait().success();
    assert_eq!(result["cniVersion"], "1.0.0");
    assert_eq!(
        daemon.wait(Duration::from_secs(20)),
        Some(0),
        "{}",
        daemon.log()
    );
    assert!(thick.net_d().join("00-multus.conflist").exists());
    drop(daemon);
    // Back up: the runtime's DEL of the finished ADD works.
    thick.start_daemon();
    thick.shim.del(&pod, &conf, None).empty_success();
    assert!(thick.h.dirs.sandbox_files().is_empty());
}
