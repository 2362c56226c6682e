//! What upstream Go Multus left on the node for the sandboxes it attached, read so that
//! multus-rs can DEL, CHECK and GC them after it took over the node.
//!
//! Two caches, both under the same `cniDir` (default `/var/lib/cni/multus`), in the
//! formats of upstream v4.x (`pkg/multus/multus.go`, `pkg/types`) and of libcni
//! (`libcni/api.go`):
//!
//! - the **scratch cache** `<cniDir>/<containerID>`: `json.Marshal` of the sandbox's
//!   `[]*DelegateNetConf` in ADD order, written before the first delegate ran. Each entry
//!   carries `Name` (the NAD `namespace/name` or the CNI name), `ifnameRequest`,
//!   `default-route`, `deviceID`, `resourceName` and `Bytes`, the base64 of the exact
//!   delegate config upstream DELs with. v4.3.0 also serialised `CNINetworkConfigList`
//!   (with each plugin's raw bytes); later versions drop it.
//! - **libcni's result cache** `<cniDir>/results/<netName>-<containerID>-<ifName>`
//!   (`kind: cniCacheV1`), one per delegate ADDed through libcni: the config, the
//!   interface name, the netns, the `CNI_ARGS` pairs, the capability args
//!   (runtimeConfig) and the result.
//!
//! This module parses those documents and turns them into a [`SandboxState`], the record
//! the engine works from; reading and removing the files is the state store's job
//! ([`crate::seams::StateStore::upstream`]).

use std::net::IpAddr;
use std::path::PathBuf;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cni::{CniArgs, CniVersion};
use crate::delegate::{DelegateConfig, DelegateConfigError};
use crate::plan::PlannedDelegate;
use crate::state::{Attachment, Phase, STATE_FORMAT, SandboxState};

/// Subdirectory of `cniDir` holding libcni's result cache.
pub const RESULTS_DIR: &str = "results";
/// libcni's `kind` of a result cache entry.
pub const CNI_CACHE_V1: &str = "cniCacheV1";

/// Why an upstream cache cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpstreamCacheError {
    /// The scratch cache is not upstream's JSON list of delegates.
    #[error("upstream scratch cache of container {container_id} does not parse: {reason}")]
    Scratch {
        /// The container.
        container_id: String,
        /// The parse error.
        reason: String,
    },
    /// One delegate's config cannot be recovered.
    #[error("upstream cache of container {container_id}, network {network:?}: {reason}")]
    Delegate {
        /// The container.
        container_id: String,
        /// The delegate's `Name`.
        network: String,
        /// What is wrong.
        reason: String,
    },
}

/// One entry of upstream's scratch cache (`types.DelegateNetConf` as `encoding/json`
/// writes it). Keys upstream does not need for DEL are ignored.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct UpstreamDelegate {
    /// `Conf`: the single conf's standard keys (`type` is empty for a list).
    #[serde(rename = "Conf", default)]
    pub conf: Value,
    /// `ConfList`: the list's standard keys (`plugins` non-empty for a list).
    #[serde(rename = "ConfList", default)]
    pub conf_list: Value,
    /// `CNINetworkConfigList` (v4.3.0 and earlier): libcni's parsed list with each
    /// plugin's raw bytes.
    #[serde(rename = "CNINetworkConfigList", default)]
    pub network_config_list: Option<GoNetworkConfigList>,
    /// `Name`: `namespace/name` of the NAD, else the CNI config's `name`.
    #[serde(rename = "Name", default)]
    pub name: String,
    /// `ifnameRequest`: the interface name the pod asked for.
    #[serde(rename = "ifnameRequest", default)]
    pub ifname_request: String,
    /// `default-route`: the gateways the pod asked for.
    #[serde(rename = "default-route", default)]
    pub default_route: Option<Vec<IpAddr>>,
    /// `deviceID`.
    #[serde(rename = "deviceID", default)]
    pub device_id: String,
    /// `resourceName`.
    #[serde(rename = "resourceName", default)]
    pub resource_name: String,
    /// `Bytes`: base64 of the config upstream runs the delegate with (`null` when nil).
    #[serde(rename = "Bytes", default)]
    pub bytes: Option<String>,
}

/// libcni's `NetworkConfigList` as `encoding/json` writes it (Go field names).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct GoNetworkConfigList {
    /// `Plugins`: each plugin's parsed keys and raw bytes.
    #[serde(rename = "Plugins", default)]
    pub plugins: Option<Vec<GoPluginConfig>>,
}

/// libcni's `PluginConfig` as `encoding/json` writes it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
pub struct GoPluginConfig {
    /// `Bytes`: base64 of the plugin's raw JSON.
    #[serde(rename = "Bytes", default)]
    pub bytes: Option<String>,
}

/// One libcni result cache entry (`cachedInfo`, kind `cniCacheV1`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LibcniCacheEntry {
    /// `cniCacheV1`.
    #[serde(default)]
    pub kind: String,
    /// `CNI_CONTAINERID`.
    #[serde(default)]
    pub container_id: String,
    /// base64 of the config (the conf, or the whole list) libcni ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    /// `CNI_IFNAME`.
    #[serde(default)]
    pub if_name: String,
    /// The CNI network name (the conf's or the list's `name`).
    #[serde(default)]
    pub network_name: String,
    /// `CNI_NETNS` at ADD.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub netns: String,
    /// `CNI_ARGS` pairs at ADD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cni_args: Option<Vec<[String; 2]>>,
    /// The capability args (runtimeConfig candidates) at ADD.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capability_args: Option<Map<String, Value>>,
    /// The result the delegate (the list's last plugin) returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
}

impl LibcniCacheEntry {
    /// Parse an entry; `None` for anything that is not a usable `cniCacheV1` entry.
    pub fn parse(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice::<Self>(bytes)
            .ok()
            .filter(|e| e.kind == CNI_CACHE_V1 && !e.container_id.is_empty())
            .filter(|e| !e.if_name.is_empty() && !e.network_name.is_empty())
    }

    /// The file name libcni gives this entry: `<netName>-<containerID>-<ifName>`.
    pub fn file_name(&self) -> String {
        format!(
            "{}-{}-{}",
            self.network_name, self.container_id, self.if_name
        )
    }

    fn cni_args_text(&self) -> Option<String> {
        let pairs = self.cni_args.as_ref()?;
        let mut args = CniArgs::default();
        // The legacy IP= and MAC= keys are for ADD only (upstream never sends them on DEL).
        for [key, value] in pairs.iter().filter(|[k, _]| k != "IP" && k != "MAC") {
            args.push(key.clone(), value.clone());
        }
        Some(args.to_string())
    }

    fn arg(&self, key: &str) -> Option<&str> {
        self.cni_args
            .as_ref()?
            .iter()
            .find(|[k, _]| k == key)
            .map(|[_, v]| v.as_str())
    }
}

/// Parse upstream's scratch cache of one container.
pub fn parse_scratch(
    container_id: &str,
    bytes: &[u8],
) -> Result<Vec<UpstreamDelegate>, UpstreamCacheError> {
    let delegates: Vec<UpstreamDelegate> =
        serde_json::from_slice(bytes).map_err(|e| UpstreamCacheError::Scratch {
            container_id: container_id.to_owned(),
            reason: e.to_string(),
        })?;
    if delegates.is_empty() {
        return Err(UpstreamCacheError::Scratch {
            container_id: container_id.to_owned(),
            reason: "no delegates".into(),
        });
    }
    Ok(delegates)
}

/// Everything upstream left for one container, as the state store read it.
#[derive(Clone, Debug, PartialEq)]
pub struct UpstreamSandbox {
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// The scratch cache's delegates in ADD order; `None` when there is no usable scratch
    /// cache (the sandbox is then known from libcni's entries alone).
    pub delegates: Option<Vec<UpstreamDelegate>>,
    /// libcni's result cache entries of this container.
    pub results: Vec<LibcniCacheEntry>,
    /// The files these came from (removed once the sandbox is deleted).
    pub files: Vec<PathBuf>,
}

/// What the record of an upstream sandbox takes from the request when the caches do not
/// say it.
#[derive(Clone, Debug, PartialEq)]
pub struct UpstreamDefaults {
    /// Multus' own `cniVersion` (injected into lists without one, as upstream does).
    pub cni_version: CniVersion,
    /// `CNI_IFNAME` (the cluster network's interface).
    pub ifname: String,
    /// `CNI_NETNS`.
    pub netns: String,
    /// The `CNI_ARGS` every delegate gets on DEL.
    pub cni_args: String,
    /// Multus' runtimeConfig.
    pub runtime_config: Map<String, Value>,
}

impl UpstreamSandbox {
    /// The record multus-rs works from: one attachment per upstream delegate, in ADD
    /// order, with upstream's interface names (`ifnameRequest`, else `CNI_IFNAME` for the
    /// cluster network, else `net<index>`), the exact config upstream recorded, and the
    /// `CNI_ARGS`, runtimeConfig and result libcni cached for it.
    pub fn to_state(
        &self,
        defaults: &UpstreamDefaults,
    ) -> Result<SandboxState, UpstreamCacheError> {
        let attachments = match &self.delegates {
            Some(delegates) => delegates
                .iter()
                .enumerate()
                .map(|(index, d)| self.scratch_attachment(index, d, defaults))
                .collect::<Result<Vec<_>, _>>()?,
            None => self.results_attachments(defaults)?,
        };
        let first = self.results.first();
        let netns = first
            .map(|e| e.netns.clone())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| defaults.netns.clone());
        let arg = |key: &str| {
            self.results
                .iter()
                .find_map(|e| e.arg(key))
                .unwrap_or_default()
                .to_owned()
        };
        let ifname = attachments
            .first()
            .map(|a| a.delegate.ifname.clone())
            .unwrap_or_else(|| defaults.ifname.clone());
        Ok(SandboxState {
            format: STATE_FORMAT,
            container_id: self.container_id.clone(),
            netns,
            ifname,
            pod_namespace: arg("K8S_POD_NAMESPACE"),
            pod_name: arg("K8S_POD_NAME"),
            pod_uid: arg("K8S_POD_UID"),
            cni_version: defaults.cni_version,
            phase: Phase::Added,
            attachments,
            network_status: Vec::new(),
            // Upstream's caches do not say which multus network made them.
            multus_network: None,
            // Upstream attaches one network after the other.
            parallel_attach: false,
        })
    }

    fn error(&self, network: &str, reason: impl Into<String>) -> UpstreamCacheError {
        UpstreamCacheError::Delegate {
            container_id: self.container_id.clone(),
            network: network.to_owned(),
            reason: reason.into(),
        }
    }

    fn scratch_attachment(
        &self,
        index: usize,
        delegate: &UpstreamDelegate,
        defaults: &UpstreamDefaults,
    ) -> Result<Attachment, UpstreamCacheError> {
        let bytes = delegate_bytes(delegate).map_err(|e| self.error(&delegate.name, e))?;
        let config = DelegateConfig::from_bytes(&bytes)
            .map_err(|e: DelegateConfigError| self.error(&delegate.name, e.to_string()))?
            .with_default_version(defaults.cni_version);
        let cluster_network = index == 0;
        let net_name = config.name().to_owned();
        let ifname = if !delegate.ifname_request.is_empty() {
            delegate.ifname_request.clone()
        } else if cluster_network {
            // Upstream used CNI_IFNAME; libcni's entry says which one.
            self.results
                .iter()
                .find(|e| e.network_name == net_name)
                .map(|e| e.if_name.clone())
                .unwrap_or_else(|| defaults.ifname.clone())
        } else {
            format!("net{index}")
        };
        let entry = self
            .results
            .iter()
            .find(|e| e.network_name == net_name && e.if_name == ifname);
        let network = if delegate.name.is_empty() {
            net_name
        } else {
            delegate.name.clone()
        };
        Ok(attachment(
            network,
            ifname,
            cluster_network,
            config,
            entry,
            defaults,
            delegate.default_route.clone(),
            Some(delegate.resource_name.clone()).filter(|r| !r.is_empty()),
        ))
    }

    /// Without a scratch cache: one attachment per libcni entry, the cluster network
    /// (`CNI_IFNAME`) first, then the others by interface name (upstream's ADD order for
    /// `net<index>` names).
    fn results_attachments(
        &self,
        defaults: &UpstreamDefaults,
    ) -> Result<Vec<Attachment>, UpstreamCacheError> {
        let mut entries: Vec<&LibcniCacheEntry> = self.results.iter().collect();
        entries.sort_by_key(|e| (e.if_name != defaults.ifname, e.if_name.clone()));
        entries
            .into_iter()
            .enumerate()
            .map(|(index, entry)| {
                let bytes = entry
                    .config
                    .as_deref()
                    .ok_or_else(|| "libcni's cache entry has no config".to_owned())
                    .and_then(decode)
                    .map_err(|e| self.error(&entry.network_name, e))?;
                let config = DelegateConfig::from_bytes(&bytes)
                    .map_err(|e| self.error(&entry.network_name, e.to_string()))?
                    .with_default_version(defaults.cni_version);
                Ok(attachment(
                    entry.network_name.clone(),
                    entry.if_name.clone(),
                    index == 0 && entry.if_name == defaults.ifname,
                    config,
                    Some(entry),
                    defaults,
                    None,
                    None,
                ))
            })
            .collect()
    }
}

#[allow(clippy::too_many_arguments)]
fn attachment(
    network: String,
    ifname: String,
    cluster_network: bool,
    config: DelegateConfig,
    entry: Option<&LibcniCacheEntry>,
    defaults: &UpstreamDefaults,
    default_route: Option<Vec<IpAddr>>,
    resource_name: Option<String>,
) -> Attachment {
    let cni_args = entry
        .and_then(LibcniCacheEntry::cni_args_text)
        .unwrap_or_else(|| defaults.cni_args.clone());
    let runtime_config = entry
        .and_then(|e| e.capability_args.clone())
        .unwrap_or_else(|| defaults.runtime_config.clone());
    Attachment {
        delegate: PlannedDelegate {
            network,
            ifname,
            cluster_network,
            config,
            runtime_config,
            add_cni_args: cni_args.clone(),
            cni_args,
            default_route,
            resource_name,
            device: None,
            auxiliary: false,
        },
        result: entry.and_then(|e| e.result.clone()),
    }
}

fn decode(text: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("invalid base64: {e}"))
}

/// The config to DEL with: `Bytes`, with its plugins completed from
/// `CNINetworkConfigList`'s raw plugin bytes when the cache has them (v4.3.0 wrote
/// `Bytes` of config lists loaded from a file from the parsed standard keys only, losing
/// e.g. the IPAM ranges, which leaked addresses on its own DEL).
fn delegate_bytes(delegate: &UpstreamDelegate) -> Result<Vec<u8>, String> {
    let bytes = decode(
        delegate
            .bytes
            .as_deref()
            .ok_or("the scratch cache entry has no Bytes")?,
    )?;
    let raw_plugins = delegate
        .network_config_list
        .as_ref()
        .and_then(|l| l.plugins.as_ref())
        .filter(|p| !p.is_empty());
    let Some(raw_plugins) = raw_plugins else {
        return Ok(bytes);
    };
    let mut doc: Value =
        serde_json::from_slice(&bytes).map_err(|e| format!("Bytes is not JSON: {e}"))?;
    let Some(plugins) = doc.get_mut("plugins").and_then(Value::as_array_mut) else {
        return Ok(bytes);
    };
    if plugins.len() != raw_plugins.len() {
        return Ok(bytes);
    }
    for (plugin, raw) in plugins.iter_mut().zip(raw_plugins) {
        let Some(Value::Object(mut full)) = raw
            .bytes
            .as_deref()
            .and_then(|b| decode(b).ok())
            .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        else {
            continue;
        };
        // The raw plugin is complete; upstream added `deviceID` and `args` (`cni-args`)
        // to `Bytes` after parsing, so those come from `Bytes`.
        if let Value::Object(mut kept) = plugin.take() {
            for key in ["deviceID", "args"] {
                if let Some(value) = kept.remove(key) {
                    full.insert(key.to_owned(), value);
                }
            }
        }
        *plugin = Value::Object(full);
    }
    Ok(doc.to_string().into_bytes())
}

/// What a DEL without any record of the sandbox could not know: it deleted what the
/// configuration determines, but networks the pod asked for may have been left. Kept on
/// the node so that operators can find such sandboxes (`multus-ctl state list`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UnknownAttachments {
    /// `CNI_CONTAINERID`.
    pub container_id: String,
    /// Pod namespace from CNI_ARGS.
    pub pod_namespace: String,
    /// Pod name.
    pub pod_name: String,
    /// Pod UID.
    pub pod_uid: String,
    /// `CNI_NETNS` of the DEL.
    pub netns: String,
    /// `network (ifname)` of what the DEL deleted.
    pub deleted: Vec<String>,
    /// Why the rest is unknown.
    pub reason: String,
}

/// The fixtures in upstream's formats (`testdata/upstream/`), for the tests.
#[cfg(test)]
pub(crate) mod fixtures {
    /// The container of the fixtures.
    pub const CONTAINER: &str = "9f3b1c0d7e2a4b5c8d6e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e";
    /// The scratch cache as v4.3.0 wrote it.
    pub const SCRATCH_V4_3_0: &[u8] = include_bytes!("../testdata/upstream/v4.3.0-scratch.json");
    /// The scratch cache as later versions write it.
    pub const SCRATCH_HEAD: &[u8] = include_bytes!("../testdata/upstream/head-scratch.json");
    /// libcni's result cache entries of the three delegates.
    pub const RESULTS: [&[u8]; 3] = [
        include_bytes!(
            "../testdata/upstream/results/cluster-9f3b1c0d7e2a4b5c8d6e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e-eth0"
        ),
        include_bytes!(
            "../testdata/upstream/results/macvlan-conf-9f3b1c0d7e2a4b5c8d6e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e-data0"
        ),
        include_bytes!(
            "../testdata/upstream/results/br-list-9f3b1c0d7e2a4b5c8d6e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e-net2"
        ),
    ];
}

#[cfg(test)]
#[path = "upstream_tests.rs"]
mod tests;
