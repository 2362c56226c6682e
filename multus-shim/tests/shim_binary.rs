//! The `multus-shim` binary against a scripted daemon on a temporary socket: what the
//! runtime sees when the daemon answers, is busy, fails, or cannot be reached, and
//! both sides of the DEL-while-unreachable rule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

struct Shim {
    dir: tempfile::TempDir,
}

/// One request the fake daemon got: method, path, body.
type Seen = Arc<Mutex<Vec<(String, String, String)>>>;

impl Shim {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("run")).unwrap();
        std::fs::set_permissions(
            dir.path().join("run"),
            std::fs::Permissions::from_mode(0o700),
        )
        .unwrap();
        Self { dir }
    }

    fn socket(&self) -> PathBuf {
        self.dir.path().join("run/multus.sock")
    }

    fn conf(&self, version: &str, extra: Value) -> Vec<u8> {
        let mut conf = json!({
            "cniVersion": version, "name": "multus-cni-network", "type": "multus-shim",
            "clusterNetwork": "/etc/cni/net.d/10-x.conf",
            "daemonSocketDir": self.dir.path().join("run"),
            "cniDir": self.dir.path().join("cni"),
            "daemonReadyTimeoutSeconds": 0.3,
        });
        for (k, v) in extra.as_object().unwrap() {
            conf[k] = v.clone();
        }
        conf.to_string().into_bytes()
    }

    fn run(&self, command: &str, stdin: &[u8]) -> (i32, Value, String) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_multus-shim"))
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("CNI_COMMAND", command)
            .env("CNI_CONTAINERID", "ctr1")
            .env("CNI_NETNS", "/var/run/netns/x")
            .env("CNI_IFNAME", "eth0")
            .env(
                "CNI_ARGS",
                "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=p;FOO=a=b",
            )
            .env("CNI_PATH", "/opt/cni/bin")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let value = if stdout.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
        };
        (
            out.status.code().unwrap_or(-1),
            value,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    fn marker(&self) -> PathBuf {
        self.dir.path().join("cni/shim-pending-del/ctr1")
    }

    /// A fake daemon answering each request with `answer(method, path, body)`.
    fn serve(&self, answer: impl Fn(&str, &str, &str) -> (u16, String) + Send + 'static) -> Seen {
        let listener = UnixListener::bind(self.socket()).unwrap();
        std::fs::set_permissions(self.socket(), std::fs::Permissions::from_mode(0o600)).unwrap();
        let seen: Seen = Arc::default();
        let log = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let (method, path, body) = read_request(&mut stream);
                log.lock()
                    .unwrap()
                    .push((method.clone(), path.clone(), body.clone()));
                let (status, text) = answer(&method, &path, &body);
                let reply = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = stream.write_all(reply.as_bytes());
            }
        });
        seen
    }
}

fn read_request(stream: &mut UnixStream) -> (String, String, String) {
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).unwrap_or(0);
        data.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&data).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + length || n == 0 {
                let mut words = text.split_whitespace();
                let method = words.next().unwrap_or_default().to_owned();
                let path = words.next().unwrap_or_default().to_owned();
                return (method, path, text[end + 4..].to_owned());
            }
        }
        if n == 0 {
            return (String::new(), String::new(), String::new());
        }
    }
}

fn cni_posts(seen: &Seen) -> Vec<Value> {
    seen.lock()
        .unwrap()
        .iter()
        .filter(|(m, p, _)| m == "POST" && p == "/cni")
        .map(|(_, _, body)| serde_json::from_str(body).unwrap())
        .collect()
}

#[test]
fn add_forwards_env_and_base64_stdin_and_converts_the_result() {
    let shim = Shim::new();
    let seen = shim.serve(|_, _, _| {
        (
            200,
            json!({"Result":{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/var/run/netns/x"}],
                "ips":[{"address":"10.1.2.3/24","gateway":"10.1.2.1","interface":0}],"dns":{}}})
            .to_string(),
        )
    });
    let stdin = shim.conf("0.3.1", json!({}));
    let (code, result, stderr) = shim.run("ADD", &stdin);
    assert_eq!(code, 0, "{result}\n{stderr}");
    assert_eq!(result["cniVersion"], "0.3.1");
    assert_eq!(result["ips"][0]["version"], "4");
    let posts = cni_posts(&seen);
    assert_eq!(posts.len(), 1);
    let request = &posts[0];
    assert_eq!(
        request["env"]["CNI_ARGS"],
        "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=p;FOO=a=b"
    );
    assert_eq!(request["env"]["CNI_PATH"], "/opt/cni/bin");
    assert_eq!(
        request["env"]["PATH"], "/usr/bin:/bin",
        "the whole environment, as upstream"
    );
    let config = multus_shim::api::decode_base64(request["config"].as_str().unwrap()).unwrap();
    assert_eq!(config, stdin, "stdin byte for byte");
    assert!(request.get("interfaceAttributes").is_none());
    // One round trip: no readiness probe before it.
    assert_eq!(seen.lock().unwrap().len(), 1, "{:?}", seen.lock().unwrap());
}

#[test]
fn daemon_errors_reach_the_runtime_with_their_code_del_included() {
    let shim = Shim::new();
    shim.serve(|_, _, _| {
        (
            400,
            json!({"code":7,"msg":"delegate failed: bad config","details":"d"}).to_string(),
        )
    });
    for command in ["ADD", "CHECK", "DEL"] {
        let (code, error, _) = shim.run(command, &shim.conf("0.4.0", json!({})));
        assert_eq!(
            code, 1,
            "{command} failures are not swallowed (upstream #1239)"
        );
        assert_eq!(error["code"], 7);
        assert_eq!(error["cniVersion"], "0.4.0");
        assert_eq!(error["msg"], "delegate failed: bad config");
    }
    assert!(!shim.marker().exists());
}

#[test]
fn a_busy_daemon_is_retried_until_it_takes_the_request() {
    let shim = Shim::new();
    let busy = Arc::new(Mutex::new(2));
    let seen = shim.serve(move |_, _, _| {
        let mut left = busy.lock().unwrap();
        if *left > 0 {
            *left -= 1;
            return (
                503,
                json!({"code":11,"msg":"multus-daemon is busy"}).to_string(),
            );
        }
        (
            200,
            json!({"Result":{"cniVersion":"1.0.0","dns":{}}}).to_string(),
        )
    });
    let (code, result, stderr) = shim.run(
        "ADD",
        &shim.conf("1.0.0", json!({"daemonReadyTimeoutSeconds": 10})),
    );
    assert_eq!(code, 0, "{result} {stderr}");
    assert_eq!(cni_posts(&seen).len(), 3);
    // Without patience the runtime gets the daemon's "try again later".
    let shim = Shim::new();
    shim.serve(|_, _, _| {
        (
            503,
            json!({"code":11,"msg":"multus-daemon is busy"}).to_string(),
        )
    });
    let (code, error, _) = shim.run(
        "ADD",
        &shim.conf("1.0.0", json!({"daemonReadyTimeoutSeconds": 0})),
    );
    assert_eq!((code, error["code"].as_u64()), (1, Some(11)));
}

#[test]
fn add_to_a_daemon_shutting_down_is_retried_then_try_again_later() {
    let shim = Shim::new();
    // What a daemon shutting down answers to anything but DEL.
    let seen = shim.serve(|_, _, body| {
        if body.contains("\"CNI_COMMAND\":\"DEL\"") {
            (200, String::new())
        } else {
            (
                503,
                json!({"code":11,"msg":"multus-daemon is shutting down and serves only DEL; ADD not run"})
                    .to_string(),
            )
        }
    });
    let started = Instant::now();
    let (code, error, _) = shim.run(
        "ADD",
        &shim.conf("1.0.0", json!({"daemonReadyTimeoutSeconds": 0.5})),
    );
    assert_eq!((code, error["code"].as_u64()), (1, Some(11)), "{error}");
    assert!(
        error["msg"].as_str().unwrap().contains("shutting down"),
        "{error}"
    );
    assert!(started.elapsed() >= Duration::from_millis(500));
    assert!(cni_posts(&seen).len() >= 2, "retried");
    assert!(
        seen.lock()
            .unwrap()
            .iter()
            .all(|(_, path, _)| path == "/cni"),
        "no readiness probe"
    );
    // DEL is served by a daemon shutting down.
    let (code, _, _) = shim.run("DEL", &shim.conf("1.0.0", json!({})));
    assert_eq!(code, 0);
}

#[test]
fn add_waits_for_a_daemon_that_is_not_listening_yet() {
    let shim = Shim::new();
    let conf = shim.conf("1.0.0", json!({"daemonReadyTimeoutSeconds": 10}));
    let started = Instant::now();
    let seen = std::thread::scope(|scope| {
        let call = scope.spawn(|| shim.run("ADD", &conf));
        // The daemon binds its socket 300 ms after the shim started.
        std::thread::sleep(Duration::from_millis(300));
        let seen = shim.serve(|_, _, _| {
            (
                200,
                json!({"Result":{"cniVersion":"1.0.0","dns":{}}}).to_string(),
            )
        });
        let (code, result, stderr) = call.join().unwrap();
        assert_eq!(code, 0, "{result} {stderr}");
        seen
    });
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(cni_posts(&seen).len(), 1);
}

#[test]
fn del_while_the_daemon_is_unreachable_fails_then_succeeds_after_the_grace() {
    let shim = Shim::new();
    let conf = shim.conf("1.0.0", json!({"daemonUnreachableDelGraceSeconds": 2}));
    // First failure: code 11, remembered.
    let (code, error, _) = shim.run("DEL", &conf);
    assert_eq!((code, error["code"].as_u64()), (1, Some(11)), "{error}");
    assert!(
        error["msg"]
            .as_str()
            .unwrap()
            .contains("cannot reach multus-daemon"),
        "{error}"
    );
    assert!(
        error["details"]
            .as_str()
            .unwrap()
            .contains("daemonUnreachableDelGraceSeconds"),
        "{error}"
    );
    assert!(shim.marker().exists());
    let first = std::fs::read_to_string(shim.marker()).unwrap();
    // Within the grace: still failing, the first failure kept.
    let (code, _, _) = shim.run("DEL", &conf);
    assert_eq!(code, 1);
    assert_eq!(std::fs::read_to_string(shim.marker()).unwrap(), first);
    // After the grace: success with a warning, the marker gone.
    std::thread::sleep(Duration::from_millis(2100));
    let (code, out, stderr) = shim.run("DEL", &conf);
    assert_eq!((code, out), (0, Value::Null));
    assert!(
        stderr.contains("WARNING") && stderr.contains("unreachable"),
        "{stderr}"
    );
    assert!(!shim.marker().exists());
}

#[test]
fn a_pending_marker_dated_in_the_future_does_not_block_del_forever() {
    let shim = Shim::new();
    let conf = shim.conf("1.0.0", json!({"daemonUnreachableDelGraceSeconds": 2}));
    // Written before the clock was set back by a year (or planted).
    let future = SystemTime::now() + Duration::from_secs(365 * 86_400);
    let secs = future
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    std::fs::create_dir_all(shim.marker().parent().unwrap()).unwrap();
    std::fs::write(shim.marker(), format!("{secs}\n")).unwrap();
    // The grace restarts from now, not from next year.
    let (code, error, _) = shim.run("DEL", &conf);
    assert_eq!((code, error["code"].as_u64()), (1, Some(11)), "{error}");
    let reset: u64 = std::fs::read_to_string(shim.marker())
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(reset < secs, "marker still dated {reset}");
    std::thread::sleep(Duration::from_millis(2100));
    let (code, out, _) = shim.run("DEL", &conf);
    assert_eq!((code, out), (0, Value::Null));
    assert!(!shim.marker().exists());
}

#[test]
fn del_that_reaches_the_daemon_again_forgets_the_earlier_failure() {
    let shim = Shim::new();
    let conf = shim.conf("1.0.0", json!({"daemonUnreachableDelGraceSeconds": 600}));
    assert_eq!(shim.run("DEL", &conf).0, 1);
    assert!(shim.marker().exists());
    let seen = shim.serve(|_, _, _| (200, String::new()));
    let (code, _, _) = shim.run("DEL", &conf);
    assert_eq!(code, 0);
    assert_eq!(
        cni_posts(&seen).len(),
        1,
        "the DEL really ran in the daemon"
    );
    assert!(!shim.marker().exists());
}

#[test]
fn a_socket_that_is_not_the_daemons_is_refused() {
    for (mode, owner, expected) in [
        (0o666, 0, "mode is 666"),
        (0o600, 65534, "owned by uid 65534"),
    ] {
        let shim = Shim::new();
        let seen = shim.serve(|_, _, _| (200, String::new()));
        std::fs::set_permissions(shim.socket(), std::fs::Permissions::from_mode(mode)).unwrap();
        nix_chown(&shim.socket(), owner);
        for command in ["ADD", "DEL"] {
            let (code, error, _) = shim.run(command, &shim.conf("1.0.0", json!({})));
            assert_eq!(code, 1);
            assert_eq!(error["code"], 5, "{error}");
            let msg = error["msg"].as_str().unwrap();
            assert!(
                msg.contains("refusing to use") && msg.contains(expected),
                "{msg}"
            );
        }
        assert!(seen.lock().unwrap().is_empty(), "nothing was sent");
    }
}

#[test]
fn version_is_answered_without_the_daemon() {
    let shim = Shim::new();
    let (code, reply, _) = shim.run("VERSION", b"{}");
    assert_eq!(code, 0);
    assert_eq!(reply["supportedVersions"].as_array().unwrap().len(), 7);
}

fn nix_chown(path: &Path, uid: u32) {
    let status = Command::new("chown")
        .arg(uid.to_string())
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}
