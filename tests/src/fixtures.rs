//! Per-test directories, configurations and leak checks.
//!
//! Every configuration points at the test's own directories: `cniDir` (multus state),
//! the NAD manifest directory, and the host-local `dataDir` (always set, so leases can be
//! checked), so tests never touch the machine's `/var/lib/cni` and never see each other's
//! files.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};
use tempfile::TempDir;

use crate::binaries::Binaries;
use crate::netns::{Netns, Node};

/// The annotation listing a pod's additional networks.
pub const NETWORKS_ANNOTATION: &str = "k8s.v1.cni.cncf.io/networks";
/// The runtimeConfig key carrying the pod's annotations.
pub const POD_ANNOTATIONS_KEY: &str = "io.kubernetes.cri.pod-annotations";

/// A test's private directories, removed when dropped.
#[derive(Debug)]
pub struct TestDirs {
    root: TempDir,
}

impl TestDirs {
    /// Fresh directories: `cni/`, `nads/`, `ipam/`, `bin/`, `records/`.
    pub fn new() -> Self {
        let root = tempfile::Builder::new()
            .prefix("mrs-test-")
            .tempdir()
            .expect("cannot create a temporary directory");
        for dir in ["cni", "nads", "ipam", "bin", "records"] {
            std::fs::create_dir(root.path().join(dir)).expect("cannot create a test directory");
        }
        Self { root }
    }

    /// The root of the test's directories.
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// multus `cniDir`.
    pub fn cni_dir(&self) -> PathBuf {
        self.root().join("cni")
    }

    /// Where multus keeps its per-sandbox records.
    pub fn sandboxes_dir(&self) -> PathBuf {
        self.cni_dir().join("sandboxes")
    }

    /// multus `networkAttachmentDir`.
    pub fn nad_dir(&self) -> PathBuf {
        self.root().join("nads")
    }

    /// host-local `dataDir`.
    pub fn data_dir(&self) -> PathBuf {
        self.root().join("ipam")
    }

    /// A private `binDir` for test plugins.
    pub fn bin_dir(&self) -> PathBuf {
        self.root().join("bin")
    }

    /// The record file of the `cni-recorder` plugin.
    pub fn record_file(&self) -> PathBuf {
        self.root().join("records").join("calls.jsonl")
    }

    /// Make the recorder available in [`TestDirs::bin_dir`] as plugin type `plugin_type`.
    pub fn install_recorder(&self, plugin_type: &str) {
        std::os::unix::fs::symlink(&Binaries::get().recorder, self.bin_dir().join(plugin_type))
            .expect("cannot link cni-recorder into the test binDir");
    }

    /// Install a `/bin/sh` script as plugin type `plugin_type` in
    /// [`TestDirs::bin_dir`] (hostile or odd plugins).
    pub fn install_script(&self, plugin_type: &str, body: &str) {
        write_script(&self.bin_dir().join(plugin_type), body);
    }

    /// Make the built `passthru` plugin available in [`TestDirs::bin_dir`] (the auxiliary
    /// CNI chain's first plugin).
    pub fn install_passthru(&self) {
        std::os::unix::fs::symlink(&Binaries::get().passthru, self.bin_dir().join("passthru"))
            .expect("cannot link passthru into the test binDir");
    }

    /// The path of a container's record, `<cniDir>/sandboxes/<id>.json`.
    pub fn record_path(&self, container_id: &str) -> PathBuf {
        self.sandboxes_dir().join(format!("{container_id}.json"))
    }

    /// The path of a container's lock file, `<cniDir>/sandboxes/<id>.lock`.
    pub fn lock_path(&self, container_id: &str) -> PathBuf {
        self.sandboxes_dir().join(format!("{container_id}.lock"))
    }

    /// Records of a container that multus found corrupt and moved aside
    /// (`<id>.json.corrupt-<time>`).
    pub fn corrupt_records(&self, container_id: &str) -> Vec<PathBuf> {
        let prefix = format!("{container_id}.json.corrupt-");
        self.sandbox_files()
            .into_iter()
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&prefix))
            })
            .collect()
    }

    /// host-local leases held by `container_id` on `ifname` (host-local writes both into
    /// the lease file).
    pub fn leases_of(&self, container_id: &str, ifname: &str) -> Vec<PathBuf> {
        self.leases()
            .into_iter()
            .filter(|(_, owner)| {
                let mut lines = owner.lines().map(str::trim);
                lines.next() == Some(container_id) && lines.next() == Some(ifname)
            })
            .map(|(path, _)| path)
            .collect()
    }

    /// The multus record of a container, parsed, if there is one.
    pub fn state(&self, container_id: &str) -> Option<Value> {
        let path = self.sandboxes_dir().join(format!("{container_id}.json"));
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => panic!("cannot read {}: {e}", path.display()),
        };
        Some(serde_json::from_str(&text).expect("the state file is JSON"))
    }

    /// The `networkStatus` entries of a container's record.
    pub fn network_status(&self, container_id: &str) -> Vec<Value> {
        let state = self
            .state(container_id)
            .unwrap_or_else(|| panic!("no state file for container {container_id}"));
        state["networkStatus"]
            .as_array()
            .unwrap_or_else(|| panic!("state has no networkStatus: {state:#}"))
            .clone()
    }

    /// host-local lease files (`<dataDir>/<network>/<ip>`) with their content; the
    /// `lock` and `last_reserved_ip.*` bookkeeping files are not leases.
    pub fn leases(&self) -> Vec<(PathBuf, String)> {
        let mut leases = Vec::new();
        for file in files_under(&self.data_dir()) {
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name != "lock" && !name.starts_with("last_reserved_ip.") {
                let content = std::fs::read_to_string(&file).unwrap_or_default();
                leases.push((file, content));
            }
        }
        leases
    }

    /// Files under [`TestDirs::sandboxes_dir`].
    pub fn sandbox_files(&self) -> Vec<PathBuf> {
        files_under(&self.sandboxes_dir())
    }

    /// A kubeconfig whose only cluster is `https://127.0.0.1:<closed port>`: an API
    /// server that is down. multus runs in the node namespace, where nothing listens at
    /// all, so the port is closed there in any case.
    pub fn write_unreachable_kubeconfig(&self) -> PathBuf {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = listener.local_addr().expect("local address").port();
        drop(listener);
        let path = self.root().join("unreachable.kubeconfig");
        let kubeconfig = format!(
            "apiVersion: v1\n\
             kind: Config\n\
             clusters:\n\
             - name: down\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\n\
             users:\n\
             - name: multus\n  user:\n    token: not-used\n\
             contexts:\n\
             - name: down\n  context:\n    cluster: down\n    user: multus\n\
             current-context: down\n"
        );
        std::fs::write(&path, kubeconfig).expect("write the kubeconfig");
        path
    }

    /// Write a NetworkAttachmentDefinition manifest (YAML) whose `spec.config` is exactly
    /// `config`; `namespace: None` leaves `metadata.namespace` out (`default`).
    pub fn write_nad(&self, name: &str, namespace: Option<&str>, config: &str) {
        let namespace_line =
            namespace.map_or_else(String::new, |ns| format!("  namespace: {ns}\n"));
        let yaml = format!(
            "apiVersion: k8s.cni.cncf.io/v1\n\
             kind: NetworkAttachmentDefinition\n\
             metadata:\n  name: {name}\n{namespace_line}\
             spec:\n  config: '{}'\n",
            config.replace('\'', "''")
        );
        let file = format!("{}-{name}.yaml", namespace.unwrap_or("default"));
        std::fs::write(self.nad_dir().join(file), yaml).expect("cannot write a NAD manifest");
    }

    /// [`TestDirs::write_nad`] in `default` with a JSON config; returns the config text.
    pub fn write_nad_json(&self, name: &str, config: &Value) -> String {
        let text = config.to_string();
        self.write_nad(name, None, &text);
        text
    }
}

impl Default for TestDirs {
    fn default() -> Self {
        Self::new()
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files = Vec::new();
    for path in entries.filter_map(Result::ok).map(|e| e.path()) {
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files.sort();
    files
}

/// An IPv4 /24 no other test of this process uses: `10.<200+pid%50>.<n>.0/24`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    second: u32,
    third: u32,
}

impl Subnet {
    /// The next unused subnet.
    pub fn unique() -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        Self {
            second: 200 + std::process::id() % 50,
            third: n % 256,
        }
    }

    /// `10.x.y.0/24`.
    pub fn cidr(&self) -> String {
        format!("10.{}.{}.0/24", self.second, self.third)
    }

    /// `10.x.y.<host>`.
    pub fn host(&self, host: u8) -> String {
        format!("10.{}.{}.{host}", self.second, self.third)
    }

    /// Whether `ip` (with or without a prefix length) is in this subnet.
    pub fn contains(&self, ip: &str) -> bool {
        ip.starts_with(&format!("10.{}.{}.", self.second, self.third))
    }
}

/// host-local IPAM on `subnet`, leases under the test's `dataDir`.
pub fn host_local(subnet: Subnet, dirs: &TestDirs) -> Value {
    json!({
        "type": "host-local",
        "subnet": subnet.cidr(),
        "dataDir": dirs.data_dir(),
    })
}

/// A bridge plugin config on `bridge` (created by the plugin when absent).
pub fn bridge_conf(
    version: &str,
    name: &str,
    bridge: &str,
    subnet: Subnet,
    gateway: bool,
    dirs: &TestDirs,
) -> Value {
    json!({
        "cniVersion": version,
        "name": name,
        "type": "bridge",
        "bridge": bridge,
        "isGateway": gateway,
        "ipam": host_local(subnet, dirs),
    })
}

/// A macvlan (bridge mode) config on `master`, a bridge in the node namespace.
pub fn macvlan_conf(
    version: &str,
    name: &str,
    master: &str,
    subnet: Subnet,
    dirs: &TestDirs,
) -> Value {
    json!({
        "cniVersion": version,
        "name": name,
        "type": "macvlan",
        "master": master,
        "mode": "bridge",
        "ipam": host_local(subnet, dirs),
    })
}

/// An ipvlan config: a real delegate that fails with code 999 on this kernel.
pub fn ipvlan_conf(
    version: &str,
    name: &str,
    master: &str,
    subnet: Subnet,
    dirs: &TestDirs,
) -> Value {
    json!({
        "cniVersion": version,
        "name": name,
        "type": "ipvlan",
        "master": master,
        "ipam": host_local(subnet, dirs),
    })
}

/// A `cni-recorder` config (installed as type `recorder`) tagged `tag`.
pub fn recorder_conf(version: &str, name: &str, tag: &str, dirs: &TestDirs) -> Value {
    json!({
        "cniVersion": version,
        "name": name,
        "type": "recorder",
        "tag": tag,
        "recordFile": dirs.record_file(),
    })
}

/// Builder of the multus configuration passed on stdin.
#[derive(Debug, Clone)]
pub struct MultusConfig {
    conf: Map<String, Value>,
}

impl MultusConfig {
    /// multus at `version` with `cluster` as its only static delegate (the cluster
    /// network), the test's `cniDir` and NAD directory, and the reference plugins as
    /// `binDir`.
    pub fn new(version: &str, dirs: &TestDirs, cluster: Value) -> Self {
        let conf = json!({
            "cniVersion": version,
            "name": "multus-cni-network",
            "type": "multus",
            "cniDir": dirs.cni_dir(),
            "binDir": Binaries::get().plugin_dir,
            "networkAttachmentDir": dirs.nad_dir(),
            "delegateTimeoutSeconds": 60,
            "delegates": [cluster],
        });
        let Value::Object(conf) = conf else {
            unreachable!("json! of an object")
        };
        Self { conf }
    }

    /// Set a top-level key.
    pub fn set(mut self, key: &str, value: Value) -> Self {
        self.conf.insert(key.to_owned(), value);
        self
    }

    /// Set one `runtimeConfig` key.
    pub fn runtime_config(mut self, key: &str, value: Value) -> Self {
        let runtime_config = self
            .conf
            .entry("runtimeConfig")
            .or_insert_with(|| json!({}));
        runtime_config[key] = value;
        self
    }

    /// Set one pod annotation, as containerd passes it in runtimeConfig.
    pub fn annotation(mut self, key: &str, value: &str) -> Self {
        let runtime_config = self
            .conf
            .entry("runtimeConfig")
            .or_insert_with(|| json!({}));
        if runtime_config.get(POD_ANNOTATIONS_KEY).is_none() {
            runtime_config[POD_ANNOTATIONS_KEY] = json!({});
        }
        runtime_config[POD_ANNOTATIONS_KEY][key] = Value::from(value);
        self
    }

    /// The `k8s.v1.cni.cncf.io/networks` annotation.
    pub fn networks(self, value: &str) -> Self {
        self.annotation(NETWORKS_ANNOTATION, value)
    }

    /// The document.
    pub fn build(self) -> Value {
        Value::Object(self.conf)
    }
}

/// Assert that nothing is left of the pods' attachments: only `lo` in each pod
/// namespace, no veth left in the node, no host-local lease, no multus state file.
pub fn assert_nothing_leaked(node: &Node, dirs: &TestDirs, pods: &[&Netns]) {
    assert_released(node, dirs, pods);
    let files = dirs.sandbox_files();
    assert!(files.is_empty(), "multus state left behind: {files:?}");
}

/// Assert that every attachment is gone, whatever multus keeps on disk: only `lo` in
/// each pod namespace, no veth left in the node, no host-local lease.
pub fn assert_released(node: &Node, dirs: &TestDirs, pods: &[&Netns]) {
    for pod in pods {
        assert_eq!(
            pod.link_names(),
            vec!["lo".to_owned()],
            "pod namespace {} still has interfaces",
            pod.name()
        );
    }
    // A veth whose pod namespace was deleted goes away when the kernel finishes
    // destroying that namespace, which happens asynchronously: allow it a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let veths: Vec<String> = node
            .netns()
            .link_names()
            .into_iter()
            .filter(|name| name.starts_with("veth"))
            .collect();
        if veths.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "host-side veths left in the node: {veths:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let leases = dirs.leases();
    assert!(leases.is_empty(), "host-local leases leaked: {leases:?}");
}

/// Whether process `pid` is gone (or a zombie nobody reaped yet).
pub fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .and_then(|rest| rest.split_whitespace().next())
            .is_some_and(|state| state == "Z" || state == "X"),
    }
}

/// Body of a script plugin that, for ADD, forks a grandchild (its pid written to
/// `pid_file`) and then hangs; other commands succeed.
pub fn hanging_forker_script(pid_file: &Path) -> String {
    format!(
        "cat >/dev/null\n[ \"$CNI_COMMAND\" = ADD ] || exit 0\nsleep 120 >/dev/null 2>&1 </dev/null &\necho $! > {}\nsleep 120",
        pid_file.display()
    )
}

/// Body of a script plugin that, for ADD, prints `bytes` bytes on stdout (stderr with
/// `to_stderr`) and fails; other commands succeed quietly.
pub fn loud_script(bytes: u64, to_stderr: bool) -> String {
    let redirect = if to_stderr { " >&2" } else { "" };
    format!(
        "cat >/dev/null\n[ \"$CNI_COMMAND\" = ADD ] || exit 0\nhead -c {bytes} /dev/zero{redirect}\nexit 1"
    )
}

/// The grandchild that [`hanging_forker_script`] recorded is gone within 5 s.
#[track_caller]
pub fn assert_grandchild_gone(pid_file: &Path) {
    let grandchild: u32 = std::fs::read_to_string(pid_file)
        .expect("the plugin wrote its grandchild's pid")
        .trim()
        .parse()
        .expect("a pid");
    assert_gone_within(
        grandchild,
        std::time::Duration::from_secs(5),
        "the delegate's grandchild, after the timeout",
    );
}

/// Wait up to `limit` for process `pid` to be gone; panics naming `what` if it is not.
#[track_caller]
pub fn assert_gone_within(pid: u32, limit: std::time::Duration, what: &str) {
    let deadline = std::time::Instant::now() + limit;
    while !process_gone(pid) {
        assert!(
            std::time::Instant::now() < deadline,
            "{what} (pid {pid}) is still running after {limit:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Peak resident memory (`VmHWM`, KiB) of a running process; `None` once it exited.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
}

/// Write an executable `/bin/sh` script (a fake plugin, a hostile one).
pub fn write_script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).expect("cannot write a script");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
        .expect("cannot make the script executable");
}

/// Copy a directory tree (a fixture tree into a test's directory).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
