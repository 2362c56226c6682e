//! Bad input to the daemon's socket and to the shim: clear errors, nothing applied.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use multus_integration_tests::thick as support;

use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::Duration;

use multus_integration_tests::binaries::SYSTEM_PATH;
use multus_integration_tests::command::start_with_stdin;
use serde_json::Value;
use support::{Thick, built, cni_env, pairs, raw_http, upstream_post};

fn error_code(body: &str) -> u64 {
    let doc: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    doc["code"].as_u64().unwrap()
}

fn recorder_node() -> (Thick, Value) {
    support::recorder_node(|_| {})
}

fn assert_nothing_applied(thick: &Thick) {
    let records = multus_integration_tests::recording::read_records(&thick.h.dirs.record_file());
    assert!(records.is_empty(), "a delegate ran: {records:?}");
    assert!(
        thick.h.dirs.sandbox_files().is_empty(),
        "{:?}",
        thick.h.dirs.sandbox_files()
    );
}

#[test]
fn malformed_requests_are_refused_with_cni_errors() {
    let (thick, conf) = recorder_node();
    let socket = thick.socket();
    let pod = thick.h.sandbox();
    let post = |body: &str| {
        raw_http(
            &socket,
            format!(
                "POST /cni HTTP/1.1\r\nHost: dummy\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
    };
    // Not JSON.
    let (status, body) = post(r#"{"env":{"CNI_COMMAND":"ADD""#);
    assert_eq!((status, error_code(&body)), (400, 6), "{body}");
    assert!(body.contains("invalid request body"), "{body}");
    // config is not base64.
    let (status, body) = post(r#"{"env":{"CNI_COMMAND":"ADD"},"config":"%%%"}"#);
    assert_eq!((status, error_code(&body)), (400, 6), "{body}");
    // config is not a JSON document.
    let env = cni_env("ADD", &pod, "eth0");
    let (status, body) = upstream_post(&socket, "/cni", &pairs(&env), b"{not json", "");
    assert_eq!((status, error_code(&body)), (400, 6), "{body}");
    // Missing environment keys are named.
    let conf_bytes = conf.to_string();
    for (drop_key, named) in [
        ("CNI_COMMAND", "CNI_COMMAND"),
        ("CNI_CONTAINERID", "CNI_CONTAINERID"),
        ("CNI_NETNS", "CNI_NETNS"),
    ] {
        let env: Vec<(String, String)> = cni_env("ADD", &pod, "eth0")
            .into_iter()
            .filter(|(k, _)| k != drop_key)
            .collect();
        let (status, body) =
            upstream_post(&socket, "/cni", &pairs(&env), conf_bytes.as_bytes(), "");
        assert_eq!((status, error_code(&body)), (400, 4), "{body}");
        assert!(body.contains(named), "{body}");
    }
    // Unknown command, container IDs that escape.
    let mut env = cni_env("FROB", &pod, "eth0");
    let (status, body) = upstream_post(&socket, "/cni", &pairs(&env), conf_bytes.as_bytes(), "");
    assert_eq!((status, error_code(&body)), (400, 4), "{body}");
    env = cni_env("ADD", &pod, "eth0");
    env[1].1 = "../../etc".into();
    let (status, body) = upstream_post(&socket, "/cni", &pairs(&env), conf_bytes.as_bytes(), "");
    assert_eq!((status, error_code(&body)), (400, 4), "{body}");
    // A configuration without a cluster network.
    let env = cni_env("ADD", &pod, "eth0");
    let (status, body) = upstream_post(
        &socket,
        "/cni",
        &pairs(&env),
        br#"{"cniVersion":"1.0.0"}"#,
        "",
    );
    assert_eq!((status, error_code(&body)), (400, 7), "{body}");
    assert_nothing_applied(&thick);
}

#[test]
fn oversized_bodies_unknown_paths_and_wrong_methods() {
    let (thick, _) = recorder_node();
    let socket = thick.socket();
    let big = format!(
        r#"{{"env":{{}},"config":"{}"}}"#,
        "A".repeat(2 * 1024 * 1024)
    );
    let request = format!(
        "POST /cni HTTP/1.1\r\nHost: dummy\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{big}",
        big.len()
    );
    let (status, _) = raw_http(&socket, request.as_bytes());
    assert_eq!(status, 413);
    // The same without a length (chunked): refused while reading.
    let chunk = "A".repeat(1024 * 1024);
    let request = format!(
        "POST /delegate HTTP/1.1\r\nHost: dummy\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{chunk}\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len(),
        chunk.len()
    );
    let (status, _) = raw_http(&socket, request.as_bytes());
    assert_eq!(status, 413);
    let get = |method: &str, path: &str| {
        raw_http(
            &socket,
            format!("{method} {path} HTTP/1.1\r\nHost: dummy\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .0
    };
    assert_eq!(get("GET", "/nope"), 404);
    assert_eq!(get("POST", "/cni/extra"), 404);
    assert_eq!(get("GET", "/cni"), 405);
    assert_eq!(get("PUT", "/healthz"), 405);
    assert_eq!(get("DELETE", "/delegate"), 405);
    assert_eq!(get("GET", "/healthz"), 200);
    assert_eq!(get("POST", "/readyz"), 200);
    let metrics = thick.metrics();
    assert!(
        metrics.contains(
            r#"multus_server_request_total{handler="NotFound",code="404",method="GET"} 1"#
        ),
        "{metrics}"
    );
    assert!(
        metrics
            .contains(r#"multus_server_request_total{handler="/cni",code="413",method="POST"} 1"#),
        "{metrics}"
    );
    assert_nothing_applied(&thick);
}

#[test]
fn a_shim_that_is_not_root_gets_a_clear_error_and_nothing_is_applied() {
    let (thick, conf) = recorder_node();
    let pod = thick.h.sandbox();
    let child = start_with_stdin(
        Command::new(built("multus-shim"))
            .env_clear()
            .env("PATH", SYSTEM_PATH)
            .envs(cni_env("ADD", &pod, "eth0"))
            .uid(65534)
            .gid(65534),
        conf.to_string().as_bytes(),
    );
    let started = std::time::Instant::now();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let error: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(error["code"], 5, "{error}");
    let msg = error["msg"].as_str().unwrap();
    assert!(
        msg.contains("Permission denied") && msg.contains("must run as root"),
        "{msg}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no readiness wait for a permission error"
    );
    assert_nothing_applied(&thick);
}

#[test]
fn a_socket_directory_owned_by_another_user_is_refused_by_the_daemon() {
    let thick = Thick::new(false);
    std::fs::create_dir_all(thick.socket_dir()).unwrap();
    nix::unistd::chown(
        &thick.socket_dir(),
        Some(nix::unistd::Uid::from_raw(65534)),
        None,
    )
    .unwrap();
    let mut daemon = thick.spawn_daemon(&[]);
    assert_eq!(
        daemon.wait(Duration::from_secs(20)),
        Some(1),
        "{}",
        daemon.log()
    );
    assert!(
        daemon.log().contains("owned by uid 65534"),
        "{}",
        daemon.log()
    );
    assert!(!thick.socket().exists());
}
