//! A real containerd (Debian's, with its CRI plugin) started by the test, and the CRI v1
//! calls the kubelet makes to it, so that `multus` is run by the runtime itself.
//!
//! [`Containerd::start`] runs `containerd` inside the node namespace (`nsenter --net`,
//! so the bridges and host-side veths live there, and the machine's mounts and cgroups
//! stay visible to runc) with its own root, state, socket and CNI directories under a
//! temp dir, and `restrict_oom_score_adj = true` (the VM lacks CAP_SYS_RESOURCE). Its
//! CNI `bin_dir` holds `multus` (or `multus-shim`) and `loopback`; its `conf_dir` holds
//! only the multus configuration the test gives. There is no image registry: a tiny
//! "pause" image is made from the static busybox (`tests/cri/pause_image.py`) and
//! imported with `ctr -n k8s.io images import`.
//!
//! The CRI calls go through `tests/cri/cri.py`, a small Python client (PyPI
//! `container-runtime-interface-api` + `grpcio`) that `scripts/install-runtimes.sh`
//! installs into `target/cri-venv`. Dropping a [`Containerd`] stops and removes the
//! pods it still lists, stops containerd by its PID, kills the shims it started (found
//! by their `-address`) by PID, and unmounts what it left under its temp dir.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::binaries::{Binaries, SYSTEM_PATH};
use crate::netns::{Netns, Node, Output, run};

/// The name the pause image is imported under (the CRI plugin's `sandbox_image`).
pub const PAUSE_IMAGE: &str = "docker.io/library/mrs-pause:1";
/// What to run when the runtimes or the CRI client are missing.
const INSTALL_HINT: &str = "run scripts/install-runtimes.sh (as root)";
/// How long containerd may take to open its socket.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// The workspace directory (the parent of `tests/`).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is inside the workspace")
        .to_owned()
}

/// Where the venv's Python is (it may be missing).
fn python_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace().join("target"), PathBuf::from);
    target.join("cri-venv/bin/python")
}

/// The venv's Python, with the CRI client's packages and cel-python; panics with the
/// install hint.
pub fn python() -> PathBuf {
    let python = python_path();
    assert!(
        python.exists(),
        "{} is missing: {INSTALL_HINT}",
        python.display()
    );
    python
}

/// A system tool by name, or a panic with the install hint.
pub fn tool(name: &str) -> PathBuf {
    SYSTEM_PATH
        .split(':')
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
        .unwrap_or_else(|| panic!("`{name}` is not installed: {INSTALL_HINT}"))
}

/// A pod as the kubelet describes it to RunPodSandbox.
#[derive(Debug, Clone)]
pub struct PodSpec {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.uid`.
    pub uid: String,
    /// The pod's annotations (containerd passes them to CNI as
    /// `io.kubernetes.cri.pod-annotations` when multus declares that capability).
    pub annotations: serde_json::Map<String, Value>,
}

impl PodSpec {
    /// A pod in `default` with a unique name and UID, and no annotations.
    pub fn new(tag: &str) -> Self {
        let name = crate::netns::unique_name(&format!("cri-{tag}"));
        Self {
            uid: format!("uid-{name}"),
            name,
            namespace: "default".to_owned(),
            annotations: serde_json::Map::new(),
        }
    }

    /// The same pod with the `k8s.v1.cni.cncf.io/networks` annotation.
    pub fn networks(mut self, value: &str) -> Self {
        self.annotations.insert(
            crate::fixtures::NETWORKS_ANNOTATION.to_owned(),
            Value::from(value),
        );
        self
    }
}

/// What PodSandboxStatus (verbose) says about a sandbox.
#[derive(Debug, Clone)]
pub struct SandboxStatus {
    /// `SANDBOX_READY` or `SANDBOX_NOTREADY`.
    pub state: String,
    /// The IP of the cluster network (eth0) as the runtime saw it.
    pub ip: String,
    /// The sandbox's network namespace (`/var/run/netns/cni-<uuid>`), empty once closed.
    pub netns: String,
}

impl SandboxStatus {
    /// The sandbox namespace as a harness [`Netns`] (containerd names it under
    /// `/run/netns`, so `ip -n` and `ip netns exec` reach it).
    pub fn netns(&self) -> Netns {
        let name = Path::new(&self.netns)
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_else(|| panic!("sandbox has no netns path: {self:?}"));
        Netns::named(name)
    }

    /// The address of `ifname` in the sandbox that lies in `subnet`; panics when there is
    /// no such interface or address.
    pub fn address(&self, ifname: &str, subnet: crate::fixtures::Subnet) -> String {
        let link = self
            .netns()
            .link(ifname)
            .unwrap_or_else(|| panic!("no {ifname} in {}", self.netns));
        link.ips()
            .into_iter()
            .find(|ip| subnet.contains(ip))
            .unwrap_or_else(|| panic!("{ifname} has no address in {}: {link:?}", subnet.cidr()))
    }
}

/// A containerd of the test's own, in the node namespace.
#[derive(Debug)]
pub struct Containerd {
    child: Child,
    root: TempDir,
    /// Every namespace path a sandbox of this containerd ever had (for the leak check).
    seen_netns: std::sync::Mutex<Vec<String>>,
}

impl Containerd {
    /// Start containerd in `node`, with `conf` as its only CNI config
    /// (`00-multus.conflist`) and `cni_binary` (the built `multus` or `multus-shim`)
    /// installed as `bin_dir/<its file name>`, with `loopback` beside it. Returns once the
    /// pause image is imported.
    pub fn start(node: &Node, cni_binary: &Path, conf: &Value) -> Self {
        Self::launch(node, cni_binary, Some(conf), None)
    }

    /// [`Containerd::start`] with `conf_dir` as the CRI plugin's CNI config directory
    /// (e.g. the one the thick daemon writes `00-multus.conflist` into), written by
    /// someone else.
    pub fn start_with_conf_dir(node: &Node, cni_binary: &Path, conf_dir: &Path) -> Self {
        Self::launch(node, cni_binary, None, Some(conf_dir))
    }

    fn launch(
        node: &Node,
        cni_binary: &Path,
        conf: Option<&Value>,
        conf_dir: Option<&Path>,
    ) -> Self {
        let binaries = Binaries::get();
        let (containerd, ctr) = (tool("containerd"), tool("ctr"));
        tool("runc");
        let root = tempfile::Builder::new()
            .prefix("mrs-ctrd-")
            .tempdir()
            .expect("cannot create containerd's temp dir");
        let dir = root.path();
        for sub in ["bin", "net.d"] {
            std::fs::create_dir(dir.join(sub)).expect("cannot create a containerd dir");
        }
        let file_name = cni_binary.file_name().expect("the CNI binary has a name");
        std::os::unix::fs::symlink(cni_binary, dir.join("bin").join(file_name))
            .expect("cannot link the multus binary");
        std::os::unix::fs::symlink(
            binaries.plugin_dir.join("loopback"),
            dir.join("bin/loopback"),
        )
        .expect("cannot link loopback");
        if let Some(conf) = conf {
            write_conf(&dir.join("net.d"), conf);
        }
        let conf_dir = conf_dir.map_or_else(|| dir.join("net.d"), Path::to_owned);
        std::fs::write(dir.join("config.toml"), config_toml(dir, &conf_dir))
            .expect("cannot write config");
        let log = std::fs::File::create(dir.join("containerd.log")).expect("cannot create log");
        let err = log.try_clone().expect("cannot clone the log handle");
        let child = Command::new(tool("nsenter"))
            .arg(format!("--net={}", node.netns().path_string()))
            .arg(&containerd)
            .arg("--config")
            .arg(dir.join("config.toml"))
            .env_clear()
            .env("PATH", SYSTEM_PATH)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("cannot start containerd");
        // From here on, dropping `this` stops containerd whatever happens.
        let mut this = Self {
            child,
            root,
            seen_netns: std::sync::Mutex::new(Vec::new()),
        };
        let dir = this.root.path().to_owned();
        let deadline = Instant::now() + START_TIMEOUT;
        while !this.socket().exists() {
            assert!(
                Instant::now() < deadline,
                "containerd did not open {} within {START_TIMEOUT:?}:\n{}",
                this.socket().display(),
                this.log()
            );
            if let Ok(Some(status)) = this.child.try_wait() {
                panic!("containerd exited ({status}):\n{}", this.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let image = dir.join("pause.tar");
        run(
            Path::new("/usr/bin/python3"),
            &[
                workspace()
                    .join("tests/cri/pause_image.py")
                    .to_str()
                    .expect("UTF-8 path"),
                image.to_str().expect("UTF-8 path"),
                PAUSE_IMAGE,
            ],
        )
        .expect_success("building the pause image");
        let socket = this.socket();
        run(
            &ctr,
            &[
                "--address",
                socket.to_str().expect("UTF-8 path"),
                "-n",
                "k8s.io",
                "images",
                "import",
                "--snapshotter",
                "native",
                image.to_str().expect("UTF-8 path"),
            ],
        )
        .expect_success("ctr images import");
        this
    }

    /// Replace the multus configuration (containerd reloads its CNI dir on change).
    pub fn write_conf(&self, conf: &Value) {
        write_conf(&self.root.path().join("net.d"), conf);
    }

    /// containerd's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The CRI socket.
    pub fn socket(&self) -> PathBuf {
        self.root.path().join("containerd.sock")
    }

    /// containerd's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.root.path().join("containerd.log")).unwrap_or_default()
    }

    fn cri(&self, args: &[&str]) -> Result<Value, String> {
        let out = Command::new(python())
            .arg(workspace().join("tests/cri/cri.py"))
            .arg(self.socket())
            .args(args)
            .env_clear()
            .env("PATH", SYSTEM_PATH)
            .output()
            .expect("cannot run the CRI client");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let value: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "CRI client {args:?} printed no JSON ({e}): {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        match value.get("error").and_then(Value::as_str) {
            Some(error) => Err(error.to_owned()),
            None => Ok(value),
        }
    }

    /// RunPodSandbox: the sandbox ID, or the runtime's error text.
    pub fn run_pod(&self, pod: &PodSpec) -> Result<String, String> {
        let spec = json!({
            "name": pod.name, "namespace": pod.namespace, "uid": pod.uid,
            "annotations": pod.annotations,
        });
        let id = self.cri(&["run", &spec.to_string()])?["id"]
            .as_str()
            .expect("run answers an id")
            .to_owned();
        let status = self.status(&id);
        self.seen_netns
            .lock()
            .expect("netns list lock")
            .push(status.netns);
        Ok(id)
    }

    /// RunPodSandbox that must succeed and leave the sandbox READY: its ID and status.
    /// A failure panics with containerd's log and `context` (e.g. another log).
    pub fn run_ready(&self, pod: &PodSpec, context: &str) -> (String, SandboxStatus) {
        let id = self.run_pod(pod).unwrap_or_else(|e| {
            panic!(
                "RunPodSandbox {}: {e}\ncontainerd:\n{}\n{context}",
                pod.name,
                self.log()
            )
        });
        let status = self.status(&id);
        assert_eq!(status.state, "SANDBOX_READY", "{status:?}");
        (id, status)
    }

    /// PodSandboxStatus (verbose).
    pub fn status(&self, id: &str) -> SandboxStatus {
        let value = self
            .cri(&["status", id])
            .unwrap_or_else(|e| panic!("PodSandboxStatus {id}: {e}"));
        let text = |key: &str| value[key].as_str().unwrap_or_default().to_owned();
        SandboxStatus {
            state: text("state"),
            ip: text("ip"),
            netns: text("netns"),
        }
    }

    /// StopPodSandbox.
    pub fn stop_pod(&self, id: &str) -> Result<(), String> {
        self.cri(&["stop", id]).map(drop)
    }

    /// RemovePodSandbox.
    pub fn remove_pod(&self, id: &str) -> Result<(), String> {
        self.cri(&["remove", id]).map(drop)
    }

    /// StopPodSandbox then RemovePodSandbox; panics on failure.
    pub fn stop_and_remove(&self, id: &str) {
        self.stop_pod(id)
            .unwrap_or_else(|e| panic!("StopPodSandbox {id}: {e}\n{}", self.log()));
        self.remove_pod(id)
            .unwrap_or_else(|e| panic!("RemovePodSandbox {id}: {e}"));
    }

    /// ListPodSandbox.
    pub fn pods(&self) -> Vec<String> {
        let value = self
            .cri(&["list"])
            .unwrap_or_else(|e| panic!("ListPodSandbox: {e}"));
        value["ids"]
            .as_array()
            .expect("list answers ids")
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect()
    }

    /// The running shims this containerd started (their command line names its
    /// socket), by PID.
    pub fn shims(&self) -> Vec<u32> {
        processes_naming(&self.socket().display().to_string())
            .into_iter()
            .filter(|pid| *pid != self.pid())
            .collect()
    }

    /// Assert that nothing this containerd made is left: no sandbox listed, no shim
    /// running, and none of the sandbox namespaces it ever made.
    pub fn assert_nothing_left(&self) {
        let pods = self.pods();
        assert!(pods.is_empty(), "sandboxes left in containerd: {pods:?}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.shims().is_empty() {
            assert!(
                Instant::now() < deadline,
                "shims left running: {:?}",
                self.shims()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        for path in self.seen_netns.lock().expect("netns list lock").iter() {
            assert!(
                path.is_empty() || !Path::new(path).exists(),
                "sandbox namespace {path} left behind"
            );
        }
    }

    /// Stop containerd (SIGTERM, then SIGKILL after 10 s) and wait for it; the pods
    /// keep running in their shims, as when a node's runtime restarts.
    pub fn kill(&mut self) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Never panic here: a missing CRI client already failed the test, and a panic
        // while unwinding would abort every other test of the binary.
        if python_path().exists()
            && let Ok(None) = self.child.try_wait()
            && let Ok(value) = self.cri(&["list"])
        {
            for id in value["ids"].as_array().into_iter().flatten() {
                if let Some(id) = id.as_str() {
                    if let Ok(status) = self.cri(&["status", id]) {
                        let netns = status["netns"].as_str().unwrap_or_default().to_owned();
                        self.seen_netns
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(netns);
                    }
                    let _ = self.cri(&["stop", id]);
                    let _ = self.cri(&["remove", id]);
                }
            }
        }
        self.kill();
        for pid in self.shims() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
        // Sandboxes containerd could not stop (a test failing) keep their namespaces:
        // delete the ones this containerd made.
        let seen = std::mem::take(&mut *self.seen_netns.lock().unwrap_or_else(|e| e.into_inner()));
        for path in seen
            .iter()
            .filter(|p| !p.is_empty() && Path::new(p).exists())
        {
            if let Some(name) = Path::new(path).file_name().and_then(|n| n.to_str()) {
                let _ = run(&Binaries::get().ip, &["netns", "del", name]);
            }
        }
        unmount_under(self.root.path());
    }
}

/// Write `conf` as `dir/00-multus.conflist`, atomically (containerd watches the dir).
fn write_conf(dir: &Path, conf: &Value) {
    let tmp = dir.join(".00-multus.conflist.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(conf).expect("JSON"))
        .expect("cannot write the CNI config");
    std::fs::rename(&tmp, dir.join("00-multus.conflist")).expect("cannot rename the config");
}

/// containerd's configuration: everything under `dir`, the CRI plugin's CNI dirs,
/// the pause image, the native snapshotter, no OOM score adjustment.
fn config_toml(dir: &Path, conf_dir: &Path) -> String {
    let d = dir.display();
    let conf_dir = conf_dir.display();
    format!(
        r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",
  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]
[grpc]
  address = "{d}/containerd.sock"
[ttrpc]
  address = "{d}/containerd.sock.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "native"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/bin"
    conf_dir = "{conf_dir}"
    max_conf_num = 1
"#
    )
}

/// PIDs of the processes whose command line contains `needle`.
pub fn processes_naming(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            let proc = Path::new("/proc").join(pid.to_string());
            let running = std::fs::read_to_string(proc.join("stat"))
                .ok()
                .and_then(|stat| {
                    let state = stat.rsplit_once(')')?.1.split_whitespace().next()?;
                    Some(state != "Z" && state != "X")
                })
                .unwrap_or(false);
            running
                && std::fs::read(proc.join("cmdline"))
                    .map(|c| {
                        String::from_utf8_lossy(&c)
                            .replace('\0', " ")
                            .contains(needle)
                    })
                    .unwrap_or(false)
        })
        .collect()
}

/// Unmount (lazily) whatever is still mounted under `dir`, deepest first.
pub fn unmount_under(dir: &Path) {
    let Ok(mountinfo) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<&str> = mountinfo
        .lines()
        .filter_map(|line| line.split(' ').nth(4))
        .filter(|point| Path::new(point).starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for point in points {
        let _: Output = run(&tool("umount"), &["-l", point]);
    }
}
