//! Network namespaces made by the tests, and what is inside them.
//!
//! A [`Node`] is a named namespace (`mrs-node-<pid>-<n>`) that plays the Kubernetes
//! node: `multus` runs inside it (`ip netns exec`), so every delegate runs there and the
//! bridges and host-side veths the plugins create live there, never in the machine's
//! own namespace. Pods are named namespaces (`mrs-pod-<pid>-<n>`) made through the node,
//! which deletes all of them and itself when dropped, whether the test passed or not.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::Once;
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

use crate::binaries;
pub use crate::command::{Output, run};

/// Prefix of node namespace names.
const NODE_PREFIX: &str = "mrs-node";
/// Prefix of pod namespace names.
const POD_PREFIX: &str = "mrs-pod";

/// A name unique in this machine while this process runs: `<prefix>-<pid>-<n>`.
pub fn unique_name(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{n}", std::process::id())
}

/// A named network namespace (`/run/netns/<name>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// The namespace `/run/netns/<name>` made by someone else (a container runtime).
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_owned(),
        }
    }

    /// The name given to `ip netns`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bind-mount path, as a runtime passes it in `CNI_NETNS`.
    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// [`Netns::path`] as a string.
    pub fn path_string(&self) -> String {
        self.path().display().to_string()
    }

    /// Run `ip <args>` against this namespace (`ip -n <name> ...`); panics on failure.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut full = vec!["-n", self.name.as_str()];
        full.extend_from_slice(args);
        run(binaries::ip(), &full).expect_success(&format!("ip {}", full.join(" ")))
    }

    /// Run `program args...` inside this namespace and capture what it did.
    pub fn exec(&self, program: &Path, args: &[&str]) -> Output {
        let program = program.to_str().expect("program paths are UTF-8");
        let mut full = vec!["netns", "exec", self.name.as_str(), program];
        full.extend_from_slice(args);
        run(binaries::ip(), &full)
    }

    /// The links of this namespace with their addresses (`ip -j addr`).
    pub fn links(&self) -> Vec<Link> {
        let json = self.ip(&["-j", "addr", "show"]);
        let value: Value = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("`ip -j addr` in {} is not JSON ({e}): {json}", self.name));
        value
            .as_array()
            .expect("`ip -j addr` prints an array")
            .iter()
            .map(Link::from_json)
            .collect()
    }

    /// The link named `name`, if present.
    pub fn link(&self, name: &str) -> Option<Link> {
        self.links().into_iter().find(|l| l.name == name)
    }

    /// The main-table routes of one family (`ip -j [-6] route show`).
    pub fn routes(&self, family: Family) -> Vec<Route> {
        let mut args = vec!["-j"];
        if family == Family::V6 {
            args.push("-6");
        }
        args.extend(["route", "show"]);
        let json = self.ip(&args);
        let value: Value = serde_json::from_str(&json)
            .unwrap_or_else(|e| panic!("`ip -j route` in {} is not JSON ({e}): {json}", self.name));
        value
            .as_array()
            .expect("`ip -j route` prints an array")
            .iter()
            .map(Route::from_json)
            .collect()
    }

    /// The default routes of one family (`ip` prints both `0.0.0.0/0` and a zero-length
    /// `Dst` as `default`).
    pub fn default_routes(&self, family: Family) -> Vec<Route> {
        self.routes(family)
            .into_iter()
            .filter(Route::is_default)
            .collect()
    }

    /// Its links other than `lo`, sorted by name.
    pub fn interfaces(&self) -> Vec<Link> {
        let mut links: Vec<Link> = self
            .links()
            .into_iter()
            .filter(|l| l.name != "lo")
            .collect();
        links.sort_by(|a, b| a.name.cmp(&b.name));
        links
    }

    /// The names of its links other than `lo`, sorted.
    pub fn interface_names(&self) -> Vec<String> {
        self.interfaces().into_iter().map(|l| l.name).collect()
    }

    /// The names of its links, sorted.
    pub fn link_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.links().into_iter().map(|l| l.name).collect();
        names.sort();
        names
    }
}

/// The node namespace and the pod namespaces made on it; dropping it deletes them all.
#[derive(Debug)]
pub struct Node {
    netns: Netns,
    pods: Mutex<Vec<Netns>>,
}

impl Node {
    /// A new node namespace with `lo` up.
    pub fn new() -> Self {
        reap_stale_namespaces();
        let node = Self {
            netns: add_netns(NODE_PREFIX),
            pods: Mutex::new(Vec::new()),
        };
        node.netns.ip(&["link", "set", "lo", "up"]);
        node
    }

    /// The node namespace's name, for `ip netns exec`.
    pub fn name(&self) -> &str {
        self.netns.name()
    }

    /// The node namespace.
    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// A new, empty pod namespace (only `lo`, down), deleted with the node.
    pub fn add_pod_netns(&self) -> Netns {
        let pod = add_netns(POD_PREFIX);
        self.pods.lock().expect("pod list lock").push(pod.clone());
        pod
    }

    /// Delete a pod namespace now, as a runtime does when a sandbox goes away.
    pub fn delete_pod_netns(&self, pod: &Netns) {
        self.pods
            .lock()
            .expect("pod list lock")
            .retain(|p| p != pod);
        delete_netns(pod.name()).expect_success(&format!("ip netns del {}", pod.name()));
    }

    /// A Linux bridge, up, in the node namespace (a `master` for macvlan or a bridge for
    /// the bridge plugin to reuse).
    pub fn add_bridge(&self, name: &str) {
        self.netns.ip(&["link", "add", name, "type", "bridge"]);
        self.netns.ip(&["link", "set", name, "up"]);
    }
}

impl Default for Node {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let pods = std::mem::take(&mut *self.pods.lock().unwrap_or_else(|e| e.into_inner()));
        for name in pods.iter().map(Netns::name).chain([self.netns.name()]) {
            let out = delete_netns(name);
            if out.code != 0 {
                eprintln!("warning: could not delete namespace {name}: {}", out.stderr);
            }
        }
    }
}

/// One interface of a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// Interface name.
    pub name: String,
    /// MAC address (`address`), empty when the link has none.
    pub mac: String,
    /// Addresses as `ip/prefix`.
    pub addresses: Vec<String>,
}

impl Link {
    fn from_json(value: &Value) -> Self {
        let text = |v: &Value, key: &str| {
            v.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let addresses = value
            .get("addr_info")
            .and_then(Value::as_array)
            .map(|infos| {
                infos
                    .iter()
                    .map(|info| format!("{}/{}", text(info, "local"), info["prefixlen"]))
                    .collect()
            })
            .unwrap_or_default();
        Self {
            name: text(value, "ifname"),
            mac: text(value, "address"),
            addresses,
        }
    }

    /// The addresses without prefix length, IPv6 link-local ones left out.
    pub fn ips(&self) -> Vec<String> {
        self.addresses
            .iter()
            .map(|a| a.split('/').next().unwrap_or_default().to_owned())
            .filter(|ip| !ip.starts_with("fe80:"))
            .collect()
    }
}

/// An address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

/// One route of a namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `dst` as `ip` prints it (`default` for a default route).
    pub dst: String,
    /// `gateway`, if any.
    pub gateway: Option<String>,
    /// The output interface.
    pub dev: String,
}

impl Route {
    fn from_json(value: &Value) -> Self {
        let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_owned);
        Self {
            dst: text("dst").unwrap_or_default(),
            gateway: text("gateway"),
            dev: text("dev").unwrap_or_default(),
        }
    }

    /// Whether this is a default route.
    pub fn is_default(&self) -> bool {
        matches!(self.dst.as_str(), "default" | "0.0.0.0/0" | "::/0")
    }
}

fn add_netns(prefix: &str) -> Netns {
    let name = unique_name(prefix);
    run(binaries::ip(), &["netns", "add", &name]).expect_success(&format!("ip netns add {name}"));
    Netns { name }
}

fn delete_netns(name: &str) -> Output {
    run(binaries::ip(), &["netns", "del", name])
}

/// Delete namespaces left by test processes that died without running their guards
/// (killed by a signal, say). Only names this harness makes, of processes that are gone.
fn reap_stale_namespaces() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let list = run(binaries::ip(), &["netns", "list"]).expect_success("ip netns list");
        for name in list
            .lines()
            .filter_map(|line| line.split_whitespace().next())
        {
            let Some(rest) = name
                .strip_prefix(NODE_PREFIX)
                .or_else(|| name.strip_prefix(POD_PREFIX))
                .and_then(|r| r.strip_prefix('-'))
            else {
                continue;
            };
            let Some(pid) = rest.split('-').next().filter(|p| p.parse::<u32>().is_ok()) else {
                continue;
            };
            if !Path::new("/proc").join(pid).exists() {
                let _ = delete_netns(name);
            }
        }
    });
}
