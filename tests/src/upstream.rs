//! Upstream Go Multus, as far as the switch to multus-rs needs it: attach a pod's
//! delegates by running the reference plugins directly, exactly as upstream's libcni
//! calls do, and leave upstream's caches behind in its formats (those of
//! `multus-core/testdata/upstream/`):
//!
//! - `<cniDir>/<containerID>`: the scratch cache, `json.Marshal` of the delegate list
//!   (v4.3.0 with `CNINetworkConfigList`, later versions without);
//! - `<cniDir>/results/<netName>-<containerID>-<ifName>`: libcni's result cache.

use std::path::PathBuf;
use std::process::Command;

use base64::Engine as _;
use serde_json::{Map, Value, json};

use crate::binaries::{Binaries, SYSTEM_PATH};
use crate::command::output_with_stdin;
use crate::harness::Harness;
use crate::runtime::Sandbox;

/// Which upstream release's scratch cache layout to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Release {
    /// v4.3.0: `CNINetworkConfigList` serialised too.
    V4_3_0,
    /// After v4.3.0: `CNINetworkConfigList` is `json:"-"`.
    Head,
}

/// One delegate upstream attached.
#[derive(Debug, Clone)]
pub struct Delegate {
    /// `Name`: `namespace/name` of the NAD, or the CNI name of the cluster network.
    pub name: String,
    /// The delegate's config (a single conf or a list).
    pub conf: Value,
    /// The annotation's `interface`, if any.
    pub ifname_request: Option<String>,
}

impl Delegate {
    /// The cluster network, named by its CNI `name`.
    pub fn cluster(conf: Value) -> Self {
        Self {
            name: conf["name"].as_str().expect("config name").to_owned(),
            conf,
            ifname_request: None,
        }
    }

    /// NAD `default/<CNI name>`, with the annotation's `interface` if any.
    pub fn nad(conf: Value, ifname_request: Option<&str>) -> Self {
        Self {
            name: format!("default/{}", conf["name"].as_str().expect("config name")),
            conf,
            ifname_request: ifname_request.map(str::to_owned),
        }
    }
}

/// What upstream wrote for a pod.
#[derive(Debug)]
pub struct Attached {
    /// The scratch cache file.
    pub scratch: PathBuf,
    /// libcni's result cache files.
    pub results: Vec<PathBuf>,
}

impl Attached {
    /// Every cache file upstream wrote that still exists.
    pub fn remaining(&self) -> Vec<PathBuf> {
        std::iter::once(&self.scratch)
            .chain(&self.results)
            .filter(|p| p.exists())
            .cloned()
            .collect()
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// `CNI_ARGS` as upstream builds them for every delegate.
fn upstream_args(pod: &Sandbox) -> Vec<[String; 2]> {
    [
        ("IgnoreUnknown", "true"),
        ("K8S_POD_NAMESPACE", pod.namespace.as_str()),
        ("K8S_POD_NAME", pod.name.as_str()),
        ("K8S_POD_INFRA_CONTAINER_ID", pod.container_id.as_str()),
        ("K8S_POD_UID", pod.uid.as_str()),
    ]
    .iter()
    .map(|(k, v)| [(*k).to_owned(), (*v).to_owned()])
    .collect()
}

/// Run one plugin's ADD in the node namespace; its result.
fn plugin_add(h: &Harness, pod: &Sandbox, ifname: &str, args: &str, stdin: &Value) -> Value {
    let binaries = Binaries::get();
    let plugin_type = stdin["type"].as_str().expect("plugin type");
    let plugin = binaries.plugin_dir.join(plugin_type);
    let out = output_with_stdin(
        Command::new(&binaries.ip)
            .args(["netns", "exec", h.node.name()])
            .arg(&plugin)
            .env_clear()
            .env("PATH", SYSTEM_PATH)
            .env("CNI_COMMAND", "ADD")
            .env("CNI_CONTAINERID", &pod.container_id)
            .env("CNI_NETNS", pod.netns.path_string())
            .env("CNI_IFNAME", ifname)
            .env("CNI_ARGS", args)
            .env("CNI_PATH", &binaries.plugin_dir),
        stdin.to_string().as_bytes(),
    );
    assert!(
        out.status.success(),
        "{plugin_type} ADD failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the plugin's result is JSON")
}

/// libcni's ADD of a conf or a list: each plugin with the list's name and cniVersion
/// and the previous result; the last result.
fn libcni_add(h: &Harness, pod: &Sandbox, ifname: &str, args: &str, conf: &Value) -> Value {
    let Some(plugins) = conf["plugins"].as_array() else {
        return plugin_add(h, pod, ifname, args, conf);
    };
    let mut prev: Option<Value> = None;
    for plugin in plugins {
        let mut stdin = plugin.clone();
        stdin["name"] = conf["name"].clone();
        stdin["cniVersion"] = conf["cniVersion"].clone();
        if let Some(prev) = prev.take() {
            stdin["prevResult"] = prev;
        }
        prev = Some(plugin_add(h, pod, ifname, args, &stdin));
    }
    prev.expect("a list has plugins")
}

/// A `types.PluginConf` as Go writes it: the standard keys only, sorted, `ipam`
/// reduced to its `type`.
fn go_plugin_conf(conf: &Value) -> Value {
    let mut out = Map::new();
    for key in ["capabilities", "cniVersion", "name", "type"] {
        if let Some(value) = conf.get(key) {
            out.insert(key.to_owned(), value.clone());
        }
    }
    let ipam_type = conf["ipam"]["type"].clone();
    out.insert(
        "ipam".into(),
        if ipam_type.is_null() {
            json!({})
        } else {
            json!({ "type": ipam_type })
        },
    );
    Value::Object(out)
}

/// One `types.DelegateNetConf` entry of the scratch cache.
fn scratch_entry(delegate: &Delegate, release: Release) -> Value {
    let conf = &delegate.conf;
    let raw = conf.to_string();
    let (conf_std, list_std) = match conf["plugins"].as_array() {
        Some(plugins) => (
            json!({"cniVersion": conf["cniVersion"], "ipam": {}, "name": conf["name"]}),
            json!({
                "cniVersion": conf["cniVersion"],
                "name": conf["name"],
                "plugins": plugins.iter().map(go_plugin_conf).collect::<Vec<_>>(),
            }),
        ),
        None => (go_plugin_conf(conf), json!({})),
    };
    let mut entry = Map::new();
    entry.insert("Conf".into(), conf_std);
    entry.insert("ConfList".into(), list_std);
    if release == Release::V4_3_0 {
        entry.insert(
            "CNINetworkConfigList".into(),
            json!({"Name": "", "CNIVersion": "", "DisableCheck": false, "DisableGC": false,
                   "LoadOnlyInlinedPlugins": false, "Plugins": null, "Bytes": null}),
        );
    }
    entry.insert("Name".into(), json!(delegate.name));
    if let Some(ifname) = &delegate.ifname_request {
        entry.insert("ifnameRequest".into(), json!(ifname));
    }
    entry.insert("IsFilterV4Gateway".into(), json!(false));
    entry.insert("IsFilterV6Gateway".into(), json!(false));
    entry.insert("Bytes".into(), json!(b64(raw.as_bytes())));
    Value::Object(entry)
}

/// Attach `delegates` (the cluster network first) to the pod as upstream did, with
/// `CNI_IFNAME` `eth0`, and write its caches into the test's `cniDir`.
pub fn attach(h: &Harness, pod: &Sandbox, delegates: &[Delegate], release: Release) -> Attached {
    let cni_dir = h.dirs.cni_dir();
    let results_dir = cni_dir.join("results");
    std::fs::create_dir_all(&results_dir).expect("create the results directory");
    // Upstream saves the scratch cache before the first delegate runs.
    let scratch = cni_dir.join(&pod.container_id);
    let entries: Vec<Value> = delegates
        .iter()
        .map(|d| scratch_entry(d, release))
        .collect();
    std::fs::write(&scratch, Value::from(entries).to_string()).expect("write the scratch cache");
    let args = upstream_args(pod);
    let args_text = args
        .iter()
        .map(|[k, v]| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";");
    let mut results = Vec::new();
    for (index, delegate) in delegates.iter().enumerate() {
        let ifname = match (&delegate.ifname_request, index) {
            (Some(name), _) => name.clone(),
            (None, 0) => "eth0".to_owned(),
            (None, i) => format!("net{i}"),
        };
        let result = libcni_add(h, pod, &ifname, &args_text, &delegate.conf);
        let net_name = delegate.conf["name"].as_str().expect("config name");
        let entry = json!({
            "kind": "cniCacheV1",
            "containerId": pod.container_id,
            "config": b64(delegate.conf.to_string().as_bytes()),
            "ifName": ifname,
            "networkName": net_name,
            "netns": pod.netns.path_string(),
            "cniArgs": args,
            "result": result,
        });
        let path = results_dir.join(format!("{net_name}-{}-{ifname}", pod.container_id));
        std::fs::write(&path, entry.to_string()).expect("write libcni's cache entry");
        results.push(path);
    }
    Attached { scratch, results }
}
