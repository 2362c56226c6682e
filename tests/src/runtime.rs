//! A CNI runtime stand-in: runs `multus` exactly as kubelet/containerd do, with the
//! `CNI_*` environment, the network configuration on stdin, and the result or error
//! document read back from stdout together with the exit code.
//!
//! `multus` runs inside the node namespace (`ip netns exec <node> multus`), with a
//! cleared environment holding only the `CNI_*` variables and `PATH`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use wait_timeout::ChildExt;

use crate::binaries::{Binaries, SYSTEM_PATH};
use crate::netns::Netns;

/// How long one `multus` call may take before the test fails.
const CALL_TIMEOUT: Duration = Duration::from_secs(90);

/// A pod sandbox as the runtime knows it: its namespace and its Kubernetes identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sandbox {
    /// The pod's network namespace.
    pub netns: Netns,
    /// `CNI_CONTAINERID` (also `K8S_POD_INFRA_CONTAINER_ID`).
    pub container_id: String,
    /// `K8S_POD_NAMESPACE`.
    pub namespace: String,
    /// `K8S_POD_NAME`.
    pub name: String,
    /// `K8S_POD_UID`.
    pub uid: String,
}

impl Sandbox {
    /// A pod in namespace `default` with unique name, UID and container ID.
    pub fn new(netns: Netns) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        Self {
            netns,
            container_id: format!("ctr{pid}x{n}"),
            namespace: "default".to_owned(),
            name: format!("pod-{pid}-{n}"),
            uid: format!("uid-{pid}-{n}"),
        }
    }

    /// The kubelet-style `CNI_ARGS` the runtime passes.
    pub fn cni_args(&self) -> String {
        format!(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE={};K8S_POD_NAME={};K8S_POD_INFRA_CONTAINER_ID={};K8S_POD_UID={}",
            self.namespace, self.name, self.container_id, self.uid
        )
    }

    /// How multus names the pod in messages: `<namespace>/<name>/<uid>`.
    pub fn pod_ref(&self) -> String {
        format!("{}/{}/{}", self.namespace, self.name, self.uid)
    }
}

/// Runs `multus` in one node namespace.
#[derive(Debug, Clone)]
pub struct Runtime {
    node: String,
    multus: PathBuf,
    plugin_dir: PathBuf,
    ip: PathBuf,
}

impl Runtime {
    /// A runtime for the node namespace `node`.
    pub fn new(node: &str, binaries: &Binaries) -> Self {
        Self {
            node: node.to_owned(),
            multus: binaries.multus.clone(),
            plugin_dir: binaries.plugin_dir.clone(),
            ip: binaries.ip.clone(),
        }
    }

    /// The reference plugin directory passed as `CNI_PATH`.
    pub fn plugin_dir(&self) -> &PathBuf {
        &self.plugin_dir
    }

    /// A call as the runtime would make it; adjust it before [`Runtime::run`].
    pub fn call(&self, command: &str, sandbox: &Sandbox, conf: &Value) -> CniCall {
        let env = [
            ("CNI_COMMAND", command.to_owned()),
            ("CNI_CONTAINERID", sandbox.container_id.clone()),
            ("CNI_NETNS", sandbox.netns.path_string()),
            ("CNI_IFNAME", "eth0".to_owned()),
            ("CNI_ARGS", sandbox.cni_args()),
            ("CNI_PATH", self.plugin_dir.display().to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        CniCall {
            env,
            stdin: conf.to_string().into_bytes(),
        }
    }

    /// ADD.
    pub fn add(&self, sandbox: &Sandbox, conf: &Value) -> CniOutput {
        self.run(self.call("ADD", sandbox, conf))
    }

    /// DEL; with `prev_result`, the configuration carries it as `prevResult`, as runtimes
    /// do for CNI 0.4.0 and later.
    pub fn del(&self, sandbox: &Sandbox, conf: &Value, prev_result: Option<&Value>) -> CniOutput {
        self.run(self.call("DEL", sandbox, &with_prev_result(conf, prev_result)))
    }

    /// CHECK with the ADD result as `prevResult`.
    pub fn check(&self, sandbox: &Sandbox, conf: &Value, prev_result: &Value) -> CniOutput {
        self.run(self.call("CHECK", sandbox, &with_prev_result(conf, Some(prev_result))))
    }

    /// Run `multus` inside the node namespace with exactly the call's environment.
    pub fn run(&self, call: CniCall) -> CniOutput {
        let env = call.env.clone();
        self.run_within(call, CALL_TIMEOUT)
            .unwrap_or_else(|| panic!("multus did not finish within {CALL_TIMEOUT:?}: {env:?}"))
    }

    /// [`Runtime::run`] with a time limit: `None` (and `multus` killed) when it is still
    /// running after `timeout`, e.g. because it waits on a lock nobody will release.
    pub fn run_within(&self, call: CniCall, timeout: Duration) -> Option<CniOutput> {
        let mut running = self.spawn(call);
        match running.wait_within(timeout) {
            Some(output) => Some(output),
            None => {
                running.kill();
                let _ = running.wait();
                None
            }
        }
    }

    /// Start `multus` inside the node namespace and return at once.
    ///
    /// `ip netns exec` enters the namespace and then `exec`s `multus` in the same
    /// process, so [`RunningCall::pid`] is `multus`' own pid (checked here through
    /// `/proc/<pid>/exe` once the exec happened).
    pub fn spawn(&self, call: CniCall) -> RunningCall {
        let multus = self.multus.to_str().expect("binary paths are UTF-8");
        let mut child = Command::new(&self.ip)
            .args(["netns", "exec", &self.node, multus])
            .env_clear()
            .env("PATH", SYSTEM_PATH)
            .envs(&call.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cannot start `ip netns exec ... multus`");
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        if let Some(mut stdin) = child.stdin.take() {
            // multus may answer without reading stdin (e.g. a bad environment).
            let _ = stdin.write_all(&call.stdin);
        }
        RunningCall {
            child,
            multus: self.multus.clone(),
            stdout: Some(stdout),
            stderr: Some(stderr),
            env: call.env,
        }
    }
}

/// A `multus` call in progress ([`Runtime::spawn`]).
#[derive(Debug)]
pub struct RunningCall {
    child: std::process::Child,
    multus: PathBuf,
    stdout: Option<std::thread::JoinHandle<String>>,
    stderr: Option<std::thread::JoinHandle<String>>,
    env: BTreeMap<String, String>,
}

impl RunningCall {
    /// The pid of the process, which is `multus` once `ip netns exec` has exec'd it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The pid of the running `multus`, after waiting (up to 10 s) for `ip netns exec`
    /// to become it; panics when it does not.
    pub fn multus_pid(&self) -> u32 {
        let pid = self.pid();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
            if exe.as_deref() == Some(self.multus.as_path()) {
                return pid;
            }
            assert!(
                Instant::now() < deadline,
                "process {pid} did not become {} (it is {exe:?})",
                self.multus.display()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Send SIGKILL to the process (the `multus` itself, see [`Runtime::spawn`]).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
    }

    /// Wait for the end and collect what it printed.
    pub fn wait(self) -> CniOutput {
        let env = self.env.clone();
        let mut this = self;
        this.wait_within(CALL_TIMEOUT)
            .unwrap_or_else(|| panic!("multus did not finish within {CALL_TIMEOUT:?}: {env:?}"))
    }

    /// Wait up to `timeout`; `None` when it is still running.
    pub fn wait_within(&mut self, timeout: Duration) -> Option<CniOutput> {
        let status = self
            .child
            .wait_timeout(timeout)
            .expect("waiting for multus")?;
        let join = |handle: Option<std::thread::JoinHandle<String>>| {
            handle
                .map(|h| h.join().expect("output reader"))
                .unwrap_or_default()
        };
        Some(CniOutput {
            code: status.code().unwrap_or(-1),
            stdout: join(self.stdout.take()),
            stderr: join(self.stderr.take()),
            env: self.env.clone(),
        })
    }
}

/// The configuration with `prevResult` set (or left as it is without one).
pub fn with_prev_result(conf: &Value, prev_result: Option<&Value>) -> Value {
    let mut conf = conf.clone();
    if let Some(prev) = prev_result {
        conf["prevResult"] = prev.clone();
    }
    conf
}

fn drain<R: Read + Send + 'static>(reader: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut reader) = reader {
            let mut bytes = Vec::new();
            let _ = reader.read_to_end(&mut bytes);
            text = String::from_utf8_lossy(&bytes).into_owned();
        }
        text
    })
}

/// One CNI call: the environment and stdin `multus` will get.
#[derive(Debug, Clone)]
pub struct CniCall {
    env: BTreeMap<String, String>,
    stdin: Vec<u8>,
}

impl CniCall {
    /// Set (or override) one environment variable, e.g. `CNI_NETNS` to `""`.
    pub fn set(mut self, key: &str, value: &str) -> Self {
        self.env.insert(key.to_owned(), value.to_owned());
        self
    }

    /// Leave one environment variable out entirely.
    pub fn unset(mut self, key: &str) -> Self {
        self.env.remove(key);
        self
    }

    /// Without the per-container variables (`CNI_CONTAINERID`, `CNI_NETNS`,
    /// `CNI_IFNAME`, `CNI_ARGS`), as runtimes call STATUS, GC and VERSION.
    pub fn without_sandbox(self) -> Self {
        self.unset("CNI_CONTAINERID")
            .unset("CNI_NETNS")
            .unset("CNI_IFNAME")
            .unset("CNI_ARGS")
    }

    /// Replace stdin with raw bytes (e.g. malformed JSON).
    pub fn stdin(mut self, bytes: &[u8]) -> Self {
        self.stdin = bytes.to_vec();
        self
    }
}

/// What `multus` did.
#[derive(Debug, Clone)]
pub struct CniOutput {
    /// Exit code.
    pub code: i32,
    /// stdout: the result, version reply or error document.
    pub stdout: String,
    /// stderr: logs.
    pub stderr: String,
    /// The environment it ran with, for failure messages.
    pub env: BTreeMap<String, String>,
}

impl CniOutput {
    fn describe(&self) -> String {
        format!(
            "env: {:?}\nexit code: {}\nstdout: {}\nstderr: {}",
            self.env, self.code, self.stdout, self.stderr
        )
    }

    /// Assert exit 0 and return stdout parsed as JSON (`Null` when stdout is empty).
    pub fn success(&self) -> Value {
        assert_eq!(self.code, 0, "multus failed:\n{}", self.describe());
        if self.stdout.trim().is_empty() {
            return Value::Null;
        }
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.describe()))
    }

    /// Assert exit 0 with nothing on stdout (DEL, CHECK).
    pub fn empty_success(&self) {
        assert_eq!(
            self.success(),
            Value::Null,
            "expected no output:\n{}",
            self.describe()
        );
    }

    /// Assert exit 1 with a CNI error document on stdout, and return it.
    pub fn error(&self) -> CniErrorDoc {
        assert_eq!(self.code, 1, "expected exit code 1:\n{}", self.describe());
        let doc: Value = serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not a CNI error document ({e}):\n{}",
                self.describe()
            )
        });
        let text = |key: &str| doc.get(key).and_then(Value::as_str).map(str::to_owned);
        CniErrorDoc {
            cni_version: text("cniVersion")
                .unwrap_or_else(|| panic!("error without cniVersion:\n{}", self.describe())),
            code: doc
                .get("code")
                .and_then(Value::as_u64)
                .unwrap_or_else(|| panic!("error without numeric code:\n{}", self.describe())),
            msg: text("msg").unwrap_or_else(|| panic!("error without msg:\n{}", self.describe())),
            details: text("details").unwrap_or_default(),
            output: self.describe(),
        }
    }

    /// Assert a CNI error with this code, and return it.
    pub fn error_with_code(&self, code: u64) -> CniErrorDoc {
        let error = self.error();
        assert_eq!(error.code, code, "unexpected error code:\n{}", error.output);
        error
    }
}

/// A CNI error document `{"cniVersion","code","msg","details"}`.
#[derive(Debug, Clone)]
pub struct CniErrorDoc {
    /// `cniVersion`.
    pub cni_version: String,
    /// `code`.
    pub code: u64,
    /// `msg`.
    pub msg: String,
    /// `details` (empty when absent).
    pub details: String,
    /// The whole call, for assertion messages.
    pub output: String,
}

impl CniErrorDoc {
    /// Assert `msg` contains every one of `parts`.
    pub fn assert_msg_contains(&self, parts: &[&str]) -> &Self {
        for part in parts {
            assert!(
                self.msg.contains(part),
                "error msg does not mention {part:?}:\n{}",
                self.output
            );
        }
        self
    }

    /// Assert `details` contains every one of `parts`.
    pub fn assert_details_contain(&self, parts: &[&str]) -> &Self {
        for part in parts {
            assert!(
                self.details.contains(part),
                "error details do not mention {part:?}:\n{}",
                self.output
            );
        }
        self
    }
}
