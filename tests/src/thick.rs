//! What the thick-mode tests share (those of multus-daemon and multus-ctl): a node
//! namespace (the workspace harness) with the real `multus-daemon` running inside it on
//! a temporary socket, `multus-shim` driven as a runtime drives it, the Kubernetes API
//! stand-in listening in the node, and a raw HTTP client for upstream's request format.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Harness;
use crate::binaries::{Binaries, SYSTEM_PATH};
use crate::command::output_with_stdin;
use crate::runtime::{Runtime, Sandbox};
use base64::Engine as _;
use k8s_standin::{Options, PODS, StandIn};
use multus_shim::SocketClient;
use serde_json::{Value, json};

/// The node name the daemon's pod cache is filtered on.
pub const NODE_NAME: &str = "node-1";

pub use crate::binaries::built;

/// The daemon binary (cargo builds it for multus-daemon's own tests; the others need
/// `cargo build --workspace --bins`).
pub fn daemon_binary() -> PathBuf {
    built("multus-daemon")
}

/// A running process (the daemon, the node installer) with its output in a log file;
/// dropping it stops it (SIGTERM, then SIGKILL).
#[derive(Debug)]
pub struct Process {
    child: Child,
    log: PathBuf,
}

impl Process {
    /// Start `command` with stdout and stderr into `log`.
    pub fn spawn(mut command: Command, log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .unwrap();
        Self { child, log }
    }

    /// The pid (`ip netns exec` execs the daemon in place).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send SIGTERM.
    pub fn terminate(&self) {
        let pid = nix::unistd::Pid::from_raw(i32::try_from(self.child.id()).unwrap());
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
    }

    /// Wait for the exit (at most `limit`); the exit code.
    pub fn wait(&mut self, limit: Duration) -> Option<i32> {
        use wait_timeout::ChildExt;
        self.child
            .wait_timeout(limit)
            .unwrap()
            .map(|s| s.code().unwrap_or(-1))
    }

    /// What the daemon logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `VmRSS` in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find(|l| l.starts_with("VmRSS:"))
            .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.terminate();
        if self.wait(Duration::from_secs(15)).is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One thick-mode node.
#[derive(Debug)]
pub struct Thick {
    /// Fields drop in order: the daemon first, then the API, then the namespaces.
    pub daemon: Option<Process>,
    /// The Kubernetes API stand-in, listening in the node.
    pub api: Option<StandIn>,
    /// The node, its directories and a runtime driving `multus`.
    pub h: Harness,
    /// Runs `multus-shim` in the node, as the runtime does.
    pub shim: Runtime,
    /// Socket dir, CNI config dir, daemon config and log.
    pub root: tempfile::TempDir,
    /// The daemon configuration written at the next start.
    pub config: Value,
    /// `(soft, hard)` open file limits the daemon starts with (default: the test's).
    pub fd_limit: Option<(u64, u64)>,
}

impl Thick {
    /// A node; with `api`, the stand-in listens in it and the daemon uses it.
    pub fn new(api: bool) -> Self {
        let h = Harness::new();
        let mut binaries = Binaries::get().clone();
        binaries.multus = built("multus-shim");
        let shim = Runtime::new(h.node.name(), &binaries);
        let root = tempfile::Builder::new()
            .prefix("mrs-thick-")
            .tempdir()
            .unwrap();
        std::fs::create_dir_all(root.path().join("net.d")).unwrap();
        let api = api.then(|| {
            StandIn::start_with(Options {
                netns: Some(h.node.netns().path()),
                ..Options::default()
            })
            .unwrap()
        });
        let mut config = json!({
            "socketDir": root.path().join("run/multus"),
            "daemonSocketDir": root.path().join("run/multus"),
            "cniConfigDir": root.path().join("net.d"),
            "multusAutoconfigDir": root.path().join("net.d"),
            "cniDir": h.dirs.cni_dir(),
            "binDir": h.dirs.bin_dir(),
            "logToStderr": true,
            "logLevel": "verbose",
            "delegateTimeoutSeconds": 60,
            "daemonReadyTimeoutSeconds": 20,
        });
        match &api {
            Some(api) => config["kubeconfig"] = json!(api.kubeconfig()),
            None => config["networkAttachmentDir"] = json!(h.dirs.nad_dir()),
        }
        Self {
            daemon: None,
            api,
            h,
            shim,
            root,
            config,
            fd_limit: None,
        }
    }

    /// The stand-in.
    pub fn api(&self) -> &StandIn {
        self.api.as_ref().expect("this node has no API stand-in")
    }

    /// The directory of CNI configs (`cniConfigDir` = `multusAutoconfigDir`).
    pub fn net_d(&self) -> PathBuf {
        self.root.path().join("net.d")
    }

    /// The socket directory.
    pub fn socket_dir(&self) -> PathBuf {
        self.root.path().join("run/multus")
    }

    /// The socket.
    pub fn socket(&self) -> PathBuf {
        self.socket_dir().join("multus.sock")
    }

    /// A client of the socket.
    pub fn client(&self) -> SocketClient {
        SocketClient::new(self.socket()).with_timeout(Duration::from_secs(120))
    }

    /// Set daemon configuration keys (for the next start).
    pub fn set(&mut self, key: &str, value: Value) {
        self.config[key] = value;
    }

    /// Write the daemon configuration; its path.
    pub fn write_config(&self) -> PathBuf {
        let path = self.config_path();
        std::fs::write(&path, self.config.to_string()).unwrap();
        path
    }

    /// Start the daemon inside the node and wait for `/readyz`.
    pub fn start_daemon(&mut self) {
        let daemon = self.spawn_daemon(&[]);
        self.daemon = Some(daemon);
        self.wait_ready();
    }

    /// Start the daemon with extra arguments, without waiting.
    pub fn spawn_daemon(&self, extra_args: &[&str]) -> Process {
        let config = self.write_config();
        let log = self.root.path().join(format!(
            "daemon-{}.log",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let binary = daemon_binary();
        let mut args = vec![
            "netns".to_owned(),
            "exec".to_owned(),
            self.h.node.name().to_owned(),
            binary.display().to_string(),
            "--config".to_owned(),
            config.display().to_string(),
        ];
        args.extend(extra_args.iter().map(|a| (*a).to_owned()));
        let mut command = Command::new(&Binaries::get().ip);
        if let Some((soft, hard)) = self.fd_limit {
            // A shell lowers the limits and execs `ip netns exec ... multus-daemon`.
            command = Command::new("/bin/sh");
            command.arg("-c").arg(format!(
                "ulimit -Sn {soft} && ulimit -Hn {hard} && exec \"$0\" \"$@\""
            ));
            command.arg(&Binaries::get().ip);
        }
        command
            .args(&args)
            .env_clear()
            .env("PATH", SYSTEM_PATH)
            .env("MULTUS_NODE_NAME", NODE_NAME);
        Process::spawn(command, log)
    }

    /// Wait (30 s at most) until `/readyz` answers 200.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(response) = self.client().get("/readyz")
                && response.status == 200
            {
                return;
            }
            if let Some(daemon) = self.daemon.as_mut()
                && let Some(code) = daemon.wait(Duration::ZERO)
            {
                panic!("multus-daemon exited with {code}:\n{}", daemon.log());
            }
            assert!(
                Instant::now() < deadline,
                "multus-daemon did not become ready:\n{}",
                self.daemon_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stop the daemon with SIGTERM; its exit code.
    pub fn stop_daemon(&mut self) -> i32 {
        let mut daemon = self.daemon.take().expect("no daemon running");
        daemon.terminate();
        daemon
            .wait(Duration::from_secs(60))
            .unwrap_or_else(|| panic!("daemon did not stop:\n{}", daemon.log()))
    }

    /// The daemon's log.
    pub fn daemon_log(&self) -> String {
        self.daemon.as_ref().map(Process::log).unwrap_or_default()
    }

    /// The daemon configuration's path.
    pub fn config_path(&self) -> PathBuf {
        self.root.path().join("daemon-config.json")
    }

    /// The usual cluster network: the node's bridge (`NODE_BRIDGE`) made, and a
    /// `bridge` primary of CNI `version` (`10-cluster.conf`, bridge `mrs-cbr0`, a
    /// subnet of its own, default gateway); its path.
    pub fn bridge_cluster_network(&self, version: &str) -> PathBuf {
        self.h.node.add_bridge(crate::NODE_BRIDGE);
        self.write_primary(
            "10-cluster.conf",
            &crate::fixtures::bridge_conf(
                version,
                crate::CLUSTER_NETWORK,
                "mrs-cbr0",
                crate::fixtures::Subnet::unique(),
                true,
                &self.h.dirs,
            ),
        )
    }

    /// Write the primary CNI config `name` into the CNI config directory.
    pub fn write_primary(&self, name: &str, config: &Value) -> PathBuf {
        self.write_primary_bytes(name, &serde_json::to_vec_pretty(config).unwrap())
    }

    /// Write the primary CNI config `name` byte for byte (atomically, as an admin's
    /// tool replaces a config).
    pub fn write_primary_bytes(&self, name: &str, bytes: &[u8]) -> PathBuf {
        write_atomically(&self.net_d().join(name), bytes)
    }

    /// Wait (10 s at most) until the generated file `name` satisfies `check`; its content.
    pub fn wait_generated(&self, name: &str, check: impl Fn(&Value) -> bool) -> Value {
        let bytes = self.wait_generated_bytes(name, check);
        serde_json::from_slice(&bytes).unwrap()
    }

    /// As [`Thick::wait_generated`], the file's bytes.
    pub fn wait_generated_bytes(&self, name: &str, check: impl Fn(&Value) -> bool) -> Vec<u8> {
        let path = self.net_d().join(name);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(bytes) = std::fs::read(&path)
                && serde_json::from_slice::<Value>(&bytes).is_ok_and(|doc| check(&doc))
            {
                return bytes;
            }
            assert!(
                Instant::now() < deadline,
                "{} never became as expected; now: {:?}\n{}",
                path.display(),
                std::fs::read_to_string(&path),
                self.daemon_log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The metrics page, from the socket.
    pub fn metrics(&self) -> String {
        self.client().get("/metrics").unwrap().text()
    }

    /// The value of one metric sample line (`name{labels}`), 0 when absent.
    pub fn metric(&self, sample: &str) -> f64 {
        metric_value(&self.metrics(), sample)
    }

    /// A pod in the stand-in, scheduled on this node; the sandbox for it (its UID).
    pub fn api_pod(&self, annotations: &[(&str, &str)]) -> Sandbox {
        let mut sandbox = self.h.sandbox();
        let annotations: serde_json::Map<String, Value> = annotations
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect();
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": sandbox.name, "annotations": annotations},
            "spec": {"nodeName": NODE_NAME, "containers": [{"name": "app", "image": "pause"}]}
        });
        let created = self.api().create(&PODS, &sandbox.namespace, pod).unwrap();
        sandbox.uid = created["metadata"]["uid"].as_str().unwrap().to_owned();
        sandbox
    }

    /// Wait until the daemon's pod cache holds `n` pods.
    pub fn wait_cached_pods(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.metric(r#"multus_cache_objects{kind="pods"}"#) < n as f64 {
            assert!(
                Instant::now() < deadline,
                "pod cache never reached {n}:\n{}",
                self.metrics()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// The value of `sample` in a metrics page.
pub fn metric_value(page: &str, sample: &str) -> f64 {
    page.lines()
        .find_map(|line| {
            let rest = line.strip_prefix(sample)?;
            rest.strip_prefix(' ')?.trim().parse().ok()
        })
        .unwrap_or(0.0)
}

/// What the runtime passes to the plugin of a generated document: the document itself,
/// or for a config list its (only) plugin with the list's `name` and `cniVersion`.
pub fn plugin_stdin(generated: &Value) -> Value {
    match generated.get("plugins") {
        None => generated.clone(),
        Some(plugins) => {
            let mut plugin = plugins[0].clone();
            plugin["name"] = generated["name"].clone();
            plugin["cniVersion"] = generated["cniVersion"].clone();
            plugin
        }
    }
}

/// A raw HTTP/1.1 exchange over the socket, written by hand (no client library):
/// returns the status and the body.
pub fn raw_http(socket: &Path, request: &[u8]) -> (u16, String) {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    // The daemon may answer (413) before reading everything.
    let _ = stream.write_all(request);
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {text:?}"));
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(body)
    } else {
        body.to_owned()
    };
    (status, body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if size == 0 {
            break;
        }
        out.push_str(&rest[..size]);
        body = &rest[size + 2..];
    }
    out
}

/// `POST path` with upstream's body `{"env":{...},"config":"<base64 stdin>"}`, built by
/// hand, as raw HTTP.
pub fn upstream_post(
    socket: &Path,
    path: &str,
    env: &[(&str, &str)],
    stdin: &[u8],
    extra: &str,
) -> (u16, String) {
    let env: serde_json::Map<String, Value> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect();
    let config = base64::engine::general_purpose::STANDARD.encode(stdin);
    let body = format!(
        r#"{{"env":{},"config":"{config}"{extra}}}"#,
        Value::Object(env)
    );
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: dummy\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    raw_http(socket, request.as_bytes())
}

/// The CNI environment of `sandbox` for `command`, as pairs.
pub fn cni_env(command: &str, sandbox: &Sandbox, ifname: &str) -> Vec<(String, String)> {
    vec![
        ("CNI_COMMAND".into(), command.into()),
        ("CNI_CONTAINERID".into(), sandbox.container_id.clone()),
        ("CNI_NETNS".into(), sandbox.netns.path_string()),
        ("CNI_IFNAME".into(), ifname.into()),
        ("CNI_ARGS".into(), sandbox.cni_args()),
        (
            "CNI_PATH".into(),
            Binaries::get().plugin_dir.display().to_string(),
        ),
    ]
}

/// Borrow pairs of owned strings as `&str` pairs.
pub fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Run `multus-shim` directly (not inside the node: the socket is a path), with `env`
/// and `stdin`; exit code and stdout.
pub fn run_shim(env: &[(String, String)], stdin: &[u8]) -> (i32, String, String) {
    let out = output_with_stdin(
        Command::new(built("multus-shim"))
            .env_clear()
            .env("PATH", SYSTEM_PATH)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        stdin,
    );
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A daemon node with file-based NADs and the recorder as its cluster network (started
/// after `configure` set daemon keys), and the shim's configuration for it.
pub fn recorder_node(configure: impl FnOnce(&mut Thick)) -> (Thick, Value) {
    let mut thick = Thick::new(false);
    thick.h.dirs.install_recorder("recorder");
    let primary = thick.write_primary(
        "10-rec.conf",
        &crate::fixtures::recorder_conf("1.0.0", "rec", "cluster", &thick.h.dirs),
    );
    configure(&mut thick);
    thick.start_daemon();
    let conf = json!({"cniVersion":"1.0.0","name":"multus-cni-network","type":"multus-shim",
        "clusterNetwork": primary, "daemonSocketDir": thick.socket_dir(), "cniDir": thick.h.dirs.cni_dir()});
    (thick, conf)
}

/// Write `bytes` to `path` atomically (as an admin's tool would replace a config);
/// `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> PathBuf {
    multus_host::atomic::write_atomic(path, bytes, 0o644).unwrap();
    path.to_owned()
}
