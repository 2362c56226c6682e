//! The result a plugin prints after a successful `ADD`, in every layout from 0.1.0 to 1.1.0.
//!
//! [`CniResult`] holds the CNI 1.x layout. It is parsed from, and rendered to, the layout
//! of any version, following libcni's conversion rules:
//!
//! - 0.1.0/0.2.0 (`ip4`/`ip6`): each becomes an entry of `ips` (without an interface
//!   index) and its routes go to the top-level `routes`. Rendered back, the first IPv4 and
//!   the first IPv6 address become `ip4` and `ip6`, each with the routes of its family;
//!   interfaces, the other addresses and the routes of a family without address are dropped.
//! - 0.3.0/0.3.1/0.4.0: each IP carries a `version` ("4" or "6"), computed on output from
//!   the address and ignored on input.
//! - 1.0.0: the 1.x layout without the fields added by 1.1.0.
//! - 1.1.0: adds interface `mtu`, `socketPath`, `pciID` and route `mtu`, `advmss`,
//!   `priority`, `table`, `scope`. They are read at any version but only written at 1.1.0.
//!
//! Keys that multus-rs does not know in interfaces, IPs, routes and `dns` are kept in
//! their `extra` maps and written back at every version, so nothing a plugin returned is
//! lost when rendering at the same or a newer version. The one exception is a key that
//! names a field of the layout being written (`interface` from a 0.1.0/0.2.0 address at
//! 0.3.0 and later, `routes` from a later address at 0.1.0/0.2.0): it is dropped, as it
//! would be read back as that field. On output, absent options and
//! empty lists are omitted (libcni's `omitempty`), except `dns`, which is always written.

use std::net::IpAddr;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use super::version::{CniVersion, UnsupportedVersion};

/// Unknown keys of a result object, kept verbatim.
pub type Extra = Map<String, Value>;

/// A CNI result in the 1.x layout, with the version it was parsed from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CniResult {
    /// The version of the document this result was parsed from (informative: rendering
    /// takes the version to render at).
    pub cni_version: CniVersion,
    /// The interfaces the plugin created or knows of.
    pub interfaces: Vec<Interface>,
    /// The IP addresses assigned.
    pub ips: Vec<IpConfig>,
    /// The routes created.
    pub routes: Vec<Route>,
    /// DNS settings.
    pub dns: Dns,
}

/// An interface of a result (`interfaces[]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Interface {
    /// The interface name.
    #[serde(default)]
    pub name: String,
    /// The hardware address.
    #[serde(default)]
    pub mac: Option<String>,
    /// The MTU (CNI 1.1.0).
    #[serde(default)]
    pub mtu: Option<u32>,
    /// The sandbox (network namespace path) the interface is in; absent for host interfaces.
    #[serde(default)]
    pub sandbox: Option<String>,
    /// The path to a vhost-user or similar socket (CNI 1.1.0, `socketPath`).
    #[serde(default, rename = "socketPath")]
    pub socket_path: Option<String>,
    /// The PCI address of a device (CNI 1.1.0, `pciID`).
    #[serde(default, rename = "pciID")]
    pub pci_id: Option<String>,
    /// Any other keys.
    #[serde(flatten)]
    pub extra: Extra,
}

/// An IP address of a result (`ips[]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct IpConfig {
    /// The index in the result's `interfaces` of the interface this address is on.
    #[serde(default)]
    pub interface: Option<usize>,
    /// The address with its prefix length, as the plugin returned it, e.g. `10.1.0.5/16`.
    pub address: String,
    /// The default gateway for this subnet, if any.
    #[serde(default)]
    pub gateway: Option<String>,
    /// Any other keys.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A route of a result (`routes[]`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Route {
    /// The destination in CIDR notation, e.g. `0.0.0.0/0`.
    pub dst: String,
    /// The next hop; the default gateway when absent.
    #[serde(default)]
    pub gw: Option<String>,
    /// The route MTU (CNI 1.1.0).
    #[serde(default)]
    pub mtu: Option<u32>,
    /// The advertised MSS (CNI 1.1.0).
    #[serde(default)]
    pub advmss: Option<u32>,
    /// The route priority (CNI 1.1.0).
    #[serde(default)]
    pub priority: Option<u32>,
    /// The routing table (CNI 1.1.0).
    #[serde(default)]
    pub table: Option<u32>,
    /// The route scope (CNI 1.1.0).
    #[serde(default)]
    pub scope: Option<u32>,
    /// Any other keys.
    #[serde(flatten)]
    pub extra: Extra,
}

/// DNS settings of a result (`dns`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct Dns {
    /// Name servers, in order of preference.
    #[serde(default)]
    pub nameservers: Vec<String>,
    /// The local domain.
    #[serde(default)]
    pub domain: Option<String>,
    /// Search domains, in order of preference.
    #[serde(default)]
    pub search: Vec<String>,
    /// Resolver options.
    #[serde(default)]
    pub options: Vec<String>,
    /// Any other keys.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Why a document is not a valid CNI result.
#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    /// The text is not JSON.
    #[error("invalid CNI result JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// The document's `cniVersion` is not a supported version.
    #[error(transparent)]
    Version(#[from] UnsupportedVersion),
    /// The document has no `cniVersion` (only from [`CniResult::document_version`]).
    #[error("CNI result has no cniVersion")]
    MissingVersion,
    /// The document is not a JSON object.
    #[error("CNI result is not a JSON object")]
    NotAnObject,
    /// A key of the document has the wrong shape.
    #[error("invalid {key:?} in CNI result: {source}")]
    Field {
        /// The top-level key.
        key: &'static str,
        /// What is wrong with it.
        #[source]
        source: serde_json::Error,
    },
    /// The 0.1.0/0.2.0 layout needs an IP address and the result has none.
    #[error("cannot render CNI result at {0}: it has no IP address")]
    NoIpAddress(CniVersion),
}

impl CniResult {
    /// Parse a plugin's stdout. The layout is chosen by the document's own `cniVersion`;
    /// when it has none (or it is empty), `fallback` (the version the plugin was called
    /// with) is used.
    pub fn parse(bytes: &[u8], fallback: CniVersion) -> Result<Self, ResultError> {
        let value: Value = serde_json::from_slice(bytes).map_err(ResultError::Json)?;
        Self::from_value(&value, fallback)
    }

    /// Like [`CniResult::parse`], from a JSON value (e.g. a `prevResult`).
    pub fn from_value(v: &Value, fallback: CniVersion) -> Result<Self, ResultError> {
        let cni_version = match Self::document_version(v) {
            Err(ResultError::MissingVersion) => fallback,
            other => other?,
        };
        let object = v.as_object().ok_or(ResultError::NotAnObject)?;
        let mut result = CniResult {
            cni_version,
            dns: field(object, "dns")?.unwrap_or_default(),
            ..CniResult::default()
        };
        if cni_version.has_legacy_result_layout() {
            for key in ["ip4", "ip6"] {
                if let Some(legacy) = field::<LegacyIpConfig>(object, key)? {
                    result.ips.push(IpConfig {
                        interface: None,
                        address: legacy.ip,
                        gateway: legacy.gateway,
                        extra: legacy.extra,
                    });
                    result.routes.extend(legacy.routes);
                }
            }
        } else {
            result.interfaces = field(object, "interfaces")?.unwrap_or_default();
            result.ips = field(object, "ips")?.unwrap_or_default();
            result.routes = field(object, "routes")?.unwrap_or_default();
            if cni_version < CniVersion::V1_0_0 {
                // Recomputed from the address on output.
                for ip in &mut result.ips {
                    ip.extra.shift_remove("version");
                }
            }
        }
        Ok(result)
    }

    /// The `cniVersion` a document declares: [`ResultError::MissingVersion`] when it has
    /// none or an empty one.
    pub fn document_version(v: &Value) -> Result<CniVersion, ResultError> {
        let object = v.as_object().ok_or(ResultError::NotAnObject)?;
        match object.get("cniVersion") {
            None | Some(Value::Null) => Err(ResultError::MissingVersion),
            Some(Value::String(s)) if s.is_empty() => Err(ResultError::MissingVersion),
            Some(Value::String(s)) => Ok(s.parse()?),
            Some(other) => Err(UnsupportedVersion(other.to_string()).into()),
        }
    }

    /// Render in the layout of `version` (sets `cniVersion` to it).
    ///
    /// At 0.1.0/0.2.0 a result without any IP address renders with neither `ip4` nor
    /// `ip6`, which libcni refuses to produce; see [`CniResult::check_renderable`].
    pub fn to_value(&self, version: CniVersion) -> Value {
        let mut doc = Map::new();
        doc.insert("cniVersion".into(), version.as_str().into());
        if version.has_legacy_result_layout() {
            for (key, v4) in [("ip4", true), ("ip6", false)] {
                if let Some(ip) = self.legacy_ip_config(v4, version) {
                    doc.insert(key.into(), ip);
                }
            }
        } else {
            let interfaces = self.interfaces.iter().map(|i| i.to_object(version));
            let ips = self.ips.iter().map(|ip| ip.to_object(version));
            let routes = self.routes.iter().map(|r| r.to_object(version));
            put_list(&mut doc, "interfaces", interfaces);
            put_list(&mut doc, "ips", ips);
            put_list(&mut doc, "routes", routes);
        }
        doc.insert("dns".into(), Value::Object(self.dns.to_object()));
        Value::Object(doc)
    }

    /// [`CniResult::to_value`] as compact JSON text.
    pub fn to_json(&self, version: CniVersion) -> String {
        self.to_value(version).to_string()
    }

    /// Can this result be rendered at `version` the way libcni would? Only the
    /// 0.1.0/0.2.0 layout can fail: it needs at least one IP address.
    pub fn check_renderable(&self, version: CniVersion) -> Result<(), ResultError> {
        if version.has_legacy_result_layout() && self.ips.is_empty() {
            return Err(ResultError::NoIpAddress(version));
        }
        Ok(())
    }

    /// Interfaces that are inside the sandbox (have a non-empty `sandbox`), with their index.
    pub fn sandbox_interfaces(&self) -> impl Iterator<Item = (usize, &Interface)> {
        self.interfaces
            .iter()
            .enumerate()
            .filter(|(_, i)| i.is_in_sandbox())
    }

    /// The `ip4`/`ip6` object of the legacy layout: the first address of the family, with
    /// the routes of that family.
    fn legacy_ip_config(&self, v4: bool, version: CniVersion) -> Option<Value> {
        let ip = self.ips.iter().find(|ip| ip.is_ipv4() == v4)?;
        let mut object = Map::new();
        object.insert("ip".into(), ip.address.clone().into());
        put(&mut object, "gateway", &ip.gateway);
        let routes = self.routes.iter().filter(|r| r.is_ipv4() == v4);
        put_list(&mut object, "routes", routes.map(|r| r.to_object(version)));
        // An unknown `routes` key of a 1.x address would be read back as this family's
        // routes (and fail to parse when it is not a list of routes).
        add_extra_except(&mut object, &ip.extra, &["routes"]);
        Some(Value::Object(object))
    }
}

impl Serialize for CniResult {
    /// Serializes as [`CniResult::to_value`] at the result's own `cni_version`.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_value(self.cni_version).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for CniResult {
    /// Deserializes as [`CniResult::from_value`], with [`CniVersion::LATEST`] as fallback.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = Value::deserialize(deserializer)?;
        CniResult::from_value(&value, CniVersion::LATEST).map_err(serde::de::Error::custom)
    }
}

impl Interface {
    /// Is the interface inside the sandbox (has a non-empty `sandbox`)?
    pub fn is_in_sandbox(&self) -> bool {
        self.sandbox.as_deref().is_some_and(|s| !s.is_empty())
    }

    fn to_object(&self, version: CniVersion) -> Value {
        let v1_1 = version >= CniVersion::V1_1_0;
        let mut object = Map::new();
        object.insert("name".into(), self.name.clone().into());
        put(&mut object, "mac", &self.mac);
        put(&mut object, "mtu", &self.mtu.filter(|_| v1_1));
        put(&mut object, "sandbox", &self.sandbox);
        put(
            &mut object,
            "socketPath",
            &self.socket_path.clone().filter(|_| v1_1),
        );
        put(&mut object, "pciID", &self.pci_id.clone().filter(|_| v1_1));
        add_extra(&mut object, &self.extra);
        Value::Object(object)
    }
}

impl IpConfig {
    /// The IP address without prefix length (`10.1.0.5/16` gives `10.1.0.5`).
    pub fn ip(&self) -> &str {
        without_prefix(&self.address)
    }

    /// Is this an IPv4 address? Decided by parsing the address, or when it does not parse,
    /// by the absence of `:`.
    pub fn is_ipv4(&self) -> bool {
        is_ipv4_text(self.ip())
    }

    fn to_object(&self, version: CniVersion) -> Value {
        let mut object = Map::new();
        if version < CniVersion::V1_0_0 {
            let family = if self.is_ipv4() { "4" } else { "6" };
            object.insert("version".into(), family.into());
        }
        put(&mut object, "interface", &self.interface);
        object.insert("address".into(), self.address.clone().into());
        put(&mut object, "gateway", &self.gateway);
        // An unknown `interface` key of a 0.1.0/0.2.0 `ip4`/`ip6` object would be read
        // back as the interface index (and fail to parse when it is not one).
        add_extra_except(&mut object, &self.extra, &["interface"]);
        Value::Object(object)
    }
}

impl Route {
    /// Is this a default route: a destination with prefix length 0, however the address
    /// is spelt (`0.0.0.0/0`, `::/0`, `::0/0`, ...)?
    pub fn is_default(&self) -> bool {
        match self.dst.split_once('/') {
            Some((addr, prefix)) => {
                !prefix.is_empty()
                    && prefix.bytes().all(|b| b == b'0')
                    && addr.parse::<IpAddr>().is_ok()
            }
            None => false,
        }
    }

    /// Is the destination an IPv4 network? Decided as for [`IpConfig::is_ipv4`].
    pub fn is_ipv4(&self) -> bool {
        is_ipv4_text(without_prefix(&self.dst))
    }

    fn to_object(&self, version: CniVersion) -> Value {
        let mut object = Map::new();
        object.insert("dst".into(), self.dst.clone().into());
        put(&mut object, "gw", &self.gw);
        if version >= CniVersion::V1_1_0 {
            put(&mut object, "mtu", &self.mtu);
            put(&mut object, "advmss", &self.advmss);
            put(&mut object, "priority", &self.priority);
            put(&mut object, "table", &self.table);
            put(&mut object, "scope", &self.scope);
        }
        add_extra(&mut object, &self.extra);
        Value::Object(object)
    }
}

impl Dns {
    /// Does it hold no setting at all?
    pub fn is_empty(&self) -> bool {
        self == &Dns::default()
    }

    fn to_object(&self) -> Map<String, Value> {
        let mut object = Map::new();
        put_list(
            &mut object,
            "nameservers",
            self.nameservers.iter().map(|s| s.as_str().into()),
        );
        put(&mut object, "domain", &self.domain);
        put_list(
            &mut object,
            "search",
            self.search.iter().map(|s| s.as_str().into()),
        );
        put_list(
            &mut object,
            "options",
            self.options.iter().map(|s| s.as_str().into()),
        );
        add_extra(&mut object, &self.extra);
        object
    }
}

impl Serialize for Interface {
    /// Serializes in the CNI 1.1.0 layout.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_object(CniVersion::LATEST).serialize(serializer)
    }
}

impl Serialize for IpConfig {
    /// Serializes in the CNI 1.1.0 layout.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_object(CniVersion::LATEST).serialize(serializer)
    }
}

impl Serialize for Route {
    /// Serializes in the CNI 1.1.0 layout.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_object(CniVersion::LATEST).serialize(serializer)
    }
}

impl Serialize for Dns {
    /// Serializes as it is rendered in a result.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_object().serialize(serializer)
    }
}

/// The `ip4`/`ip6` object of the 0.1.0/0.2.0 layout.
#[derive(Deserialize)]
struct LegacyIpConfig {
    ip: String,
    #[serde(default)]
    gateway: Option<String>,
    #[serde(default)]
    routes: Vec<Route>,
    #[serde(flatten)]
    extra: Extra,
}

/// Deserialize a top-level key of a result; `None` when absent or `null`.
fn field<T: DeserializeOwned>(
    object: &Map<String, Value>,
    key: &'static str,
) -> Result<Option<T>, ResultError> {
    match object.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => T::deserialize(value)
            .map(Some)
            .map_err(|source| ResultError::Field { key, source }),
    }
}

/// Insert `key` when `value` is present.
fn put<T: Clone + Into<Value>>(object: &mut Map<String, Value>, key: &str, value: &Option<T>) {
    if let Some(value) = value {
        object.insert(key.into(), value.clone().into());
    }
}

/// Insert `key` when the list is not empty.
fn put_list(object: &mut Map<String, Value>, key: &str, items: impl Iterator<Item = Value>) {
    let items: Vec<Value> = items.collect();
    if !items.is_empty() {
        object.insert(key.into(), Value::Array(items));
    }
}

/// Add the unknown keys; they never replace a known one.
fn add_extra(object: &mut Map<String, Value>, extra: &Extra) {
    add_extra_except(object, extra, &[]);
}

/// Add the unknown keys except `reserved` ones (keys of the rendered layout that an
/// object parsed from another layout may carry as unknown keys); they never replace a
/// known one.
fn add_extra_except(object: &mut Map<String, Value>, extra: &Extra, reserved: &[&str]) {
    for (key, value) in extra {
        if !reserved.contains(&key.as_str()) {
            object.entry(key.clone()).or_insert_with(|| value.clone());
        }
    }
}

fn without_prefix(cidr: &str) -> &str {
    cidr.split_once('/').map_or(cidr, |(addr, _)| addr)
}

fn is_ipv4_text(addr: &str) -> bool {
    match addr.parse::<IpAddr>() {
        Ok(ip) => ip.is_ipv4(),
        Err(_) => !addr.contains(':'),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use proptest::prelude::*;
    use serde_json::json;

    use super::*;
    use CniVersion::*;

    /// The JSON text without whitespace, keys in their original order.
    fn compact(text: &str) -> String {
        serde_json::from_str::<Value>(text).unwrap().to_string()
    }

    fn extra(value: Value) -> Extra {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    // What the Debian reference plugins 1.1.1 print for `bridge` + `host-local`.
    const BRIDGE_1_0_0: &str = r#"{
    "cniVersion": "1.0.0",
    "interfaces": [
        {"name": "cni0", "mac": "6a:3e:9c:1b:04:5f"},
        {"name": "veth8f3a2c1d", "mac": "9e:21:7b:c4:55:10"},
        {"name": "eth0", "mac": "0a:58:0a:01:00:05", "sandbox": "/var/run/netns/x"}
    ],
    "ips": [{"interface": 2, "address": "10.1.0.5/16", "gateway": "10.1.0.1"}],
    "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}],
    "dns": {}
}"#;
    const BRIDGE_0_4_0: &str = r#"{
    "cniVersion": "0.4.0",
    "interfaces": [
        {"name": "cni0", "mac": "6a:3e:9c:1b:04:5f"},
        {"name": "veth8f3a2c1d", "mac": "9e:21:7b:c4:55:10"},
        {"name": "eth0", "mac": "0a:58:0a:01:00:05", "sandbox": "/var/run/netns/x"}
    ],
    "ips": [{"version": "4", "interface": 2, "address": "10.1.0.5/16", "gateway": "10.1.0.1"}],
    "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}],
    "dns": {}
}"#;
    const BRIDGE_0_2_0: &str = r#"{
    "cniVersion": "0.2.0",
    "ip4": {
        "ip": "10.1.0.5/16",
        "gateway": "10.1.0.1",
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}]
    },
    "dns": {}
}"#;
    // `loopback` (which returns the namespace path it was given as sandbox).
    const LOOPBACK_1_0_0: &str = r#"{
    "cniVersion": "1.0.0",
    "interfaces": [{"name": "lo", "mac": "00:00:00:00:00:00", "sandbox": "/var/run/netns/x"}],
    "ips": [
        {"interface": 0, "address": "127.0.0.1/8"},
        {"interface": 0, "address": "::1/128"}
    ],
    "dns": {}
}"#;
    const LOOPBACK_0_3_1: &str = r#"{
    "cniVersion": "0.3.1",
    "interfaces": [{"name": "lo", "mac": "00:00:00:00:00:00", "sandbox": "/var/run/netns/x"}],
    "ips": [
        {"version": "4", "interface": 0, "address": "127.0.0.1/8"},
        {"version": "6", "interface": 0, "address": "::1/128"}
    ],
    "dns": {}
}"#;
    const LOOPBACK_0_2_0: &str = r#"{
    "cniVersion": "0.2.0",
    "ip4": {"ip": "127.0.0.1/8"},
    "ip6": {"ip": "::1/128"},
    "dns": {}
}"#;

    fn bridge(version: CniVersion) -> CniResult {
        let interface = |name: &str, mac: &str, sandbox: Option<&str>| Interface {
            name: name.into(),
            mac: Some(mac.into()),
            sandbox: sandbox.map(Into::into),
            ..Interface::default()
        };
        CniResult {
            cni_version: version,
            interfaces: vec![
                interface("cni0", "6a:3e:9c:1b:04:5f", None),
                interface("veth8f3a2c1d", "9e:21:7b:c4:55:10", None),
                interface("eth0", "0a:58:0a:01:00:05", Some("/var/run/netns/x")),
            ],
            ips: vec![IpConfig {
                interface: Some(2),
                address: "10.1.0.5/16".into(),
                gateway: Some("10.1.0.1".into()),
                extra: Extra::new(),
            }],
            routes: vec![Route {
                dst: "0.0.0.0/0".into(),
                gw: Some("10.1.0.1".into()),
                ..Route::default()
            }],
            dns: Dns::default(),
        }
    }

    fn loopback(version: CniVersion) -> CniResult {
        let ip = |address: &str| IpConfig {
            interface: Some(0),
            address: address.into(),
            gateway: None,
            extra: Extra::new(),
        };
        CniResult {
            cni_version: version,
            interfaces: vec![Interface {
                name: "lo".into(),
                mac: Some("00:00:00:00:00:00".into()),
                sandbox: Some("/var/run/netns/x".into()),
                ..Interface::default()
            }],
            ips: vec![ip("127.0.0.1/8"), ip("::1/128")],
            ..CniResult::default()
        }
    }

    /// What is left of `r` after a trip through the layout of `version` (the model the
    /// conversion tests check against).
    fn degrade(r: &CniResult, version: CniVersion) -> CniResult {
        let mut out = r.clone();
        out.cni_version = version;
        if version < V1_1_0 {
            for i in &mut out.interfaces {
                (i.mtu, i.socket_path, i.pci_id) = (None, None, None);
            }
            for route in &mut out.routes {
                route.mtu = None;
                route.advmss = None;
                route.priority = None;
                route.table = None;
                route.scope = None;
            }
        }
        if version.has_legacy_result_layout() {
            out.interfaces.clear();
            let first = |v4: bool| {
                let ip = r.ips.iter().find(|ip| ip.is_ipv4() == v4)?;
                Some(IpConfig {
                    interface: None,
                    ..ip.clone()
                })
            };
            let (ip4, ip6) = (first(true), first(false));
            let routes_of = |present: bool, v4: bool| {
                out.routes
                    .iter()
                    .filter(move |rt| present && rt.is_ipv4() == v4)
                    .cloned()
            };
            out.routes = routes_of(ip4.is_some(), true)
                .chain(routes_of(ip6.is_some(), false))
                .collect();
            out.ips = ip4.into_iter().chain(ip6).collect();
        }
        out
    }

    /// A result with every field, several addresses of each family and extra keys.
    fn rich() -> CniResult {
        CniResult {
            cni_version: V1_1_0,
            interfaces: vec![
                Interface {
                    name: "cni0".into(),
                    mac: Some("6a:3e:9c:1b:04:5f".into()),
                    mtu: Some(1500),
                    ..Interface::default()
                },
                Interface {
                    name: "eth0".into(),
                    mac: Some("0a:58:0a:01:00:05".into()),
                    mtu: Some(9000),
                    sandbox: Some("/var/run/netns/x".into()),
                    extra: extra(json!({"x-vendor": {"queues": 4}})),
                    ..Interface::default()
                },
                Interface {
                    name: "net1".into(),
                    sandbox: Some("/var/run/netns/x".into()),
                    socket_path: Some("/var/run/vhost/net1.sock".into()),
                    pci_id: Some("0000:3b:00.2".into()),
                    ..Interface::default()
                },
            ],
            ips: vec![
                IpConfig {
                    interface: Some(1),
                    address: "10.1.0.5/16".into(),
                    gateway: Some("10.1.0.1".into()),
                    extra: extra(json!({"x-pool": "blue"})),
                },
                IpConfig {
                    interface: Some(2),
                    address: "fd00:10::5/64".into(),
                    gateway: Some("fd00:10::1".into()),
                    extra: Extra::new(),
                },
                IpConfig {
                    interface: Some(2),
                    address: "192.168.7.9/24".into(),
                    gateway: None,
                    extra: Extra::new(),
                },
                IpConfig {
                    interface: Some(1),
                    address: "2001:db8::5/64".into(),
                    gateway: None,
                    extra: Extra::new(),
                },
            ],
            routes: vec![
                Route {
                    dst: "0.0.0.0/0".into(),
                    gw: Some("10.1.0.1".into()),
                    ..Route::default()
                },
                Route {
                    dst: "::/0".into(),
                    gw: Some("fd00:10::1".into()),
                    ..Route::default()
                },
                Route {
                    dst: "172.16.0.0/12".into(),
                    gw: Some("192.168.7.1".into()),
                    mtu: Some(1400),
                    advmss: Some(1360),
                    priority: Some(100),
                    table: Some(10),
                    scope: Some(0),
                    extra: extra(json!({"x-note": "kept"})),
                },
            ],
            dns: Dns {
                nameservers: vec!["10.96.0.10".into(), "fd00:10::a".into()],
                domain: Some("cluster.local".into()),
                search: vec![
                    "default.svc.cluster.local".into(),
                    "svc.cluster.local".into(),
                ],
                options: vec!["ndots:5".into()],
                extra: extra(json!({"x-dns": true})),
            },
        }
    }

    #[test]
    fn parses_and_renders_reference_plugin_results() {
        let table: &[(&str, CniVersion, CniResult)] = &[
            (BRIDGE_1_0_0, V1_0_0, bridge(V1_0_0)),
            (BRIDGE_0_4_0, V0_4_0, bridge(V0_4_0)),
            (
                &BRIDGE_0_4_0.replace("0.4.0", "0.3.1"),
                V0_3_1,
                bridge(V0_3_1),
            ),
            (
                &BRIDGE_0_4_0.replace("0.4.0", "0.3.0"),
                V0_3_0,
                bridge(V0_3_0),
            ),
            (BRIDGE_0_2_0, V0_2_0, degrade(&bridge(V1_0_0), V0_2_0)),
            (LOOPBACK_1_0_0, V1_0_0, loopback(V1_0_0)),
            (
                &LOOPBACK_1_0_0.replace("1.0.0", "1.1.0"),
                V1_1_0,
                loopback(V1_1_0),
            ),
            (LOOPBACK_0_3_1, V0_3_1, loopback(V0_3_1)),
            (LOOPBACK_0_2_0, V0_2_0, degrade(&loopback(V1_0_0), V0_2_0)),
            (
                &LOOPBACK_0_2_0.replace("0.2.0", "0.1.0"),
                V0_1_0,
                degrade(&loopback(V1_0_0), V0_1_0),
            ),
        ];
        for (text, version, expected) in table {
            // The document's own version wins over the fallback.
            let parsed = CniResult::parse(text.as_bytes(), V1_1_0).unwrap();
            assert_eq!(&parsed, expected, "{text}");
            assert_eq!(parsed.to_json(*version), compact(text), "{text}");
        }
        let legacy = CniResult::parse(BRIDGE_0_2_0.as_bytes(), V1_1_0).unwrap();
        assert_eq!(legacy.ips[0].address, "10.1.0.5/16");
        assert_eq!(legacy.ips[0].interface, None);
        assert_eq!(legacy.routes[0].gw.as_deref(), Some("10.1.0.1"));
    }

    #[test]
    fn converts_reference_results_like_libcni() {
        let bridge = CniResult::parse(BRIDGE_1_0_0.as_bytes(), V1_1_0).unwrap();
        assert_eq!(bridge.to_json(V0_4_0), compact(BRIDGE_0_4_0));
        assert_eq!(bridge.to_json(V0_2_0), compact(BRIDGE_0_2_0));
        assert_eq!(
            bridge.to_json(V1_1_0),
            compact(&BRIDGE_1_0_0.replace("1.0.0", "1.1.0"))
        );
        let bridge = CniResult::parse(BRIDGE_0_4_0.as_bytes(), V1_1_0).unwrap();
        assert_eq!(bridge.to_json(V1_0_0), compact(BRIDGE_1_0_0));

        let loopback = CniResult::parse(LOOPBACK_1_0_0.as_bytes(), V1_1_0).unwrap();
        assert_eq!(loopback.to_json(V0_3_1), compact(LOOPBACK_0_3_1));
        assert_eq!(loopback.to_json(V0_2_0), compact(LOOPBACK_0_2_0));

        // Up from 0.2.0: no interfaces, no interface index, routes at the top level.
        let legacy = CniResult::parse(BRIDGE_0_2_0.as_bytes(), V1_1_0).unwrap();
        assert_eq!(
            legacy.to_value(V1_0_0),
            json!({
                "cniVersion": "1.0.0",
                "ips": [{"address": "10.1.0.5/16", "gateway": "10.1.0.1"}],
                "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}],
                "dns": {}
            })
        );
        assert_eq!(
            CniResult::parse(LOOPBACK_0_2_0.as_bytes(), V1_1_0)
                .unwrap()
                .to_value(V0_4_0),
            json!({
                "cniVersion": "0.4.0",
                "ips": [
                    {"version": "4", "address": "127.0.0.1/8"},
                    {"version": "6", "address": "::1/128"}
                ],
                "dns": {}
            })
        );
    }

    #[test]
    fn conversion_between_every_pair_of_versions() {
        let rich = rich();
        for from in CniVersion::ALL {
            let survivor = degrade(&rich, from);
            // Rendering only depends on what survives the layout.
            assert_eq!(survivor.to_value(from), rich.to_value(from), "{from}");
            let parsed = CniResult::parse(rich.to_json(from).as_bytes(), V1_1_0).unwrap();
            assert_eq!(parsed, survivor, "{from}");
            for to in CniVersion::ALL {
                assert_eq!(parsed.to_value(to), survivor.to_value(to), "{from} -> {to}");
                let twice = CniResult::parse(parsed.to_json(to).as_bytes(), V1_1_0).unwrap();
                assert_eq!(twice, degrade(&survivor, to), "{from} -> {to}");
            }
        }
    }

    #[test]
    fn rich_result_at_every_version() {
        for version in CniVersion::ALL {
            let name = format!("rich_result_{}", version.as_str().replace('.', "_"));
            insta::assert_json_snapshot!(name, rich().to_value(version));
        }
    }

    #[test]
    fn version_comes_from_the_document_or_the_fallback() {
        // A prevResult as in the SPEC's examples, without cniVersion.
        let prev = json!({
            "ips": [{"address": "10.1.0.5/16", "gateway": "10.1.0.1", "interface": 2}],
            "routes": [{"dst": "0.0.0.0/0"}],
            "interfaces": [
                {"name": "cni0", "mac": "00:11:22:33:44:55"},
                {"name": "veth3243", "mac": "55:44:33:22:11:11"},
                {"name": "eth0", "mac": "99:88:77:66:55:44", "sandbox": "/var/run/netns/blue"}
            ],
            "dns": {"nameservers": ["10.1.0.1"]}
        });
        let r = CniResult::from_value(&prev, V1_1_0).unwrap();
        assert_eq!(r.cni_version, V1_1_0);
        assert_eq!(r.ips[0].interface, Some(2));
        assert_eq!(r.dns.nameservers, ["10.1.0.1"]);
        assert!(matches!(
            CniResult::document_version(&prev),
            Err(ResultError::MissingVersion)
        ));

        let legacy = json!({"cniVersion": "", "ip4": {"ip": "10.0.0.2/24"}});
        let r = CniResult::from_value(&legacy, V0_1_0).unwrap();
        assert_eq!(r.cni_version, V0_1_0);
        assert_eq!(r.ips[0].address, "10.0.0.2/24");
        // The same document read with a 1.x fallback has no ips (ip4 is unknown there).
        assert!(
            CniResult::from_value(&legacy, V1_0_0)
                .unwrap()
                .ips
                .is_empty()
        );

        let declared =
            json!({"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.0.0.2/24"}]});
        assert_eq!(CniResult::document_version(&declared).unwrap(), V0_4_0);
        assert_eq!(
            CniResult::from_value(&declared, V0_2_0)
                .unwrap()
                .cni_version,
            V0_4_0
        );
    }

    #[test]
    fn rejects_invalid_documents() {
        let err = |text: &str| CniResult::parse(text.as_bytes(), V1_0_0).unwrap_err();
        assert!(matches!(err(""), ResultError::Json(_)));
        assert!(matches!(err("{\"ips\": ["), ResultError::Json(_)));
        assert!(matches!(err("[]"), ResultError::NotAnObject));
        assert!(matches!(err("\"1.0.0\""), ResultError::NotAnObject));
        assert!(matches!(
            err(r#"{"cniVersion": "1.2.0"}"#),
            ResultError::Version(UnsupportedVersion(v)) if v == "1.2.0"
        ));
        assert!(matches!(
            err(r#"{"cniVersion": 1}"#),
            ResultError::Version(UnsupportedVersion(v)) if v == "1"
        ));
        assert!(matches!(
            err(r#"{"ips": {}}"#),
            ResultError::Field { key: "ips", .. }
        ));
        assert!(matches!(
            err(r#"{"ips": [{"gateway": "10.0.0.1"}]}"#),
            ResultError::Field { key: "ips", .. }
        ));
        assert!(matches!(
            err(r#"{"interfaces": [{"mtu": "1500"}]}"#),
            ResultError::Field {
                key: "interfaces",
                ..
            }
        ));
        assert!(matches!(
            err(r#"{"routes": [{"dst": "::/0", "table": -1}]}"#),
            ResultError::Field { key: "routes", .. }
        ));
        assert!(matches!(
            err(r#"{"dns": []}"#),
            ResultError::Field { key: "dns", .. }
        ));
        assert!(matches!(
            err(r#"{"cniVersion": "0.2.0", "ip4": {"gateway": "10.0.0.1"}}"#),
            ResultError::Field { key: "ip4", .. }
        ));
        assert_eq!(
            err(r#"{"ips": 1}"#).to_string(),
            "invalid \"ips\" in CNI result: invalid type: integer `1`, expected a sequence"
        );
        assert_eq!(
            err(r#"{"cniVersion": "9"}"#).to_string(),
            "unsupported CNI version \"9\""
        );
    }

    #[test]
    fn null_and_missing_keys_are_empty() {
        let r = CniResult::parse(
            br#"{"cniVersion": "1.0.0", "interfaces": null, "ips": null, "routes": null, "dns": null}"#,
            V1_0_0,
        )
        .unwrap();
        assert_eq!(
            r,
            CniResult {
                cni_version: V1_0_0,
                ..CniResult::default()
            }
        );
        assert_eq!(r.to_json(V1_0_0), r#"{"cniVersion":"1.0.0","dns":{}}"#);
        assert_eq!(r.to_json(V0_2_0), r#"{"cniVersion":"0.2.0","dns":{}}"#);
        assert!(matches!(
            r.check_renderable(V0_2_0),
            Err(ResultError::NoIpAddress(V0_2_0))
        ));
        assert!(r.check_renderable(V0_3_0).is_ok());
        assert!(bridge(V1_0_0).check_renderable(V0_1_0).is_ok());
    }

    #[test]
    fn keeps_unknown_keys() {
        let text = r#"{
            "cniVersion": "1.0.0",
            "interfaces": [{"name": "eth0", "sandbox": "/run/netns/a", "x-queues": 4}],
            "ips": [{"interface": 0, "address": "10.0.0.2/24", "version": "4", "x-lease": {"ttl": 60}}],
            "routes": [{"dst": "10.10.0.0/16", "x-proto": "static"}],
            "dns": {"nameservers": ["10.0.0.1"], "x-dnssec": true},
            "x-top-level": "dropped"
        }"#;
        let r = CniResult::parse(text.as_bytes(), V1_0_0).unwrap();
        assert_eq!(r.interfaces[0].extra, extra(json!({"x-queues": 4})));
        assert_eq!(
            r.ips[0].extra,
            extra(json!({"version": "4", "x-lease": {"ttl": 60}}))
        );
        assert_eq!(r.routes[0].extra, extra(json!({"x-proto": "static"})));
        assert_eq!(r.dns.extra, extra(json!({"x-dnssec": true})));
        let mut expected = serde_json::from_str::<Value>(text).unwrap();
        expected.as_object_mut().unwrap().remove("x-top-level");
        assert_eq!(r.to_json(V1_0_0), expected.to_string());
        expected["cniVersion"] = json!("1.1.0");
        assert_eq!(r.to_json(V1_1_0), expected.to_string());

        // Below 1.0.0 the IP version is recomputed from the address.
        let r = CniResult::parse(
            br#"{"cniVersion": "0.4.0", "ips": [{"version": "6", "address": "10.0.0.2/24", "x-a": 1}]}"#,
            V1_0_0,
        )
        .unwrap();
        assert_eq!(r.ips[0].extra, extra(json!({"x-a": 1})));
        assert_eq!(
            r.to_json(V0_4_0),
            r#"{"cniVersion":"0.4.0","ips":[{"version":"4","address":"10.0.0.2/24","x-a":1}],"dns":{}}"#
        );

        // Extra keys never replace known ones.
        let ip = IpConfig {
            address: "10.0.0.2/24".into(),
            extra: extra(json!({"address": "bogus", "version": "6"})),
            ..IpConfig::default()
        };
        let r = CniResult {
            ips: vec![ip],
            ..CniResult::default()
        };
        assert_eq!(
            r.to_value(V0_3_1)["ips"][0],
            json!({"version": "4", "address": "10.0.0.2/24"})
        );
    }

    #[test]
    fn fields_of_1_1_0_are_only_written_at_1_1_0() {
        let text = r#"{
            "cniVersion": "1.0.0",
            "interfaces": [{"name": "eth0", "mac": "0a:58:0a:01:00:05", "mtu": 1450, "sandbox": "/run/netns/a", "socketPath": "/s", "pciID": "0000:00:01.0"}],
            "routes": [{"dst": "::/0", "gw": "fe80::1", "mtu": 1400, "advmss": 1340, "priority": 5, "table": 100, "scope": 253}]
        }"#;
        let r = CniResult::parse(text.as_bytes(), V1_1_0).unwrap();
        assert_eq!(r.interfaces[0].mtu, Some(1450));
        assert_eq!(r.interfaces[0].socket_path.as_deref(), Some("/s"));
        assert_eq!(r.interfaces[0].pci_id.as_deref(), Some("0000:00:01.0"));
        assert_eq!(
            (
                r.routes[0].mtu,
                r.routes[0].advmss,
                r.routes[0].priority,
                r.routes[0].table,
                r.routes[0].scope
            ),
            (Some(1400), Some(1340), Some(5), Some(100), Some(253))
        );
        let mut expected: Value = serde_json::from_str(text).unwrap();
        expected["cniVersion"] = json!("1.1.0");
        expected["dns"] = json!({});
        assert_eq!(r.to_json(V1_1_0), expected.to_string());
        assert_eq!(
            r.to_value(V1_0_0),
            json!({
                "cniVersion": "1.0.0",
                "interfaces": [{"name": "eth0", "mac": "0a:58:0a:01:00:05", "sandbox": "/run/netns/a"}],
                "routes": [{"dst": "::/0", "gw": "fe80::1"}],
                "dns": {}
            })
        );
    }

    #[test]
    fn address_helpers() {
        let ip = |address: &str| IpConfig {
            address: address.into(),
            ..IpConfig::default()
        };
        for (address, bare, v4) in [
            ("10.1.0.5/16", "10.1.0.5", true),
            ("10.1.0.5", "10.1.0.5", true),
            ("::1/128", "::1", false),
            ("2001:db8::5/64", "2001:db8::5", false),
            ("::ffff:10.0.0.1/128", "::ffff:10.0.0.1", false),
            ("fe80::1%eth0/64", "fe80::1%eth0", false),
            ("not-an-ip/8", "not-an-ip", true),
        ] {
            assert_eq!(ip(address).ip(), bare, "{address}");
            assert_eq!(ip(address).is_ipv4(), v4, "{address}");
        }

        let route = |dst: &str| Route {
            dst: dst.into(),
            ..Route::default()
        };
        for (dst, default, v4) in [
            ("0.0.0.0/0", true, true),
            ("::/0", true, false),
            ("::0/0", true, false),
            ("0:0:0:0:0:0:0:0/0", true, false),
            ("0.0.0.0/00", true, true),
            ("10.0.0.0/0", true, true),
            ("0.0.0.0/8", false, true),
            ("0.0.0.0/", false, true),
            ("0.0.0.0", false, true),
            ("::/+0", false, false),
            ("::/128", false, false),
            ("default", false, true),
            ("10.96.0.0/12", false, true),
            ("fd00::/8", false, false),
        ] {
            assert_eq!(route(dst).is_default(), default, "{dst}");
            assert_eq!(route(dst).is_ipv4(), v4, "{dst}");
        }
    }

    #[test]
    fn sandbox_interfaces_have_a_sandbox() {
        let mut r = bridge(V1_0_0);
        r.interfaces.push(Interface {
            name: "empty".into(),
            sandbox: Some(String::new()),
            ..Interface::default()
        });
        r.interfaces.push(Interface {
            name: "net1".into(),
            sandbox: Some("/var/run/netns/x".into()),
            ..Interface::default()
        });
        let inside: Vec<(usize, &str)> = r
            .sandbox_interfaces()
            .map(|(i, iface)| (i, iface.name.as_str()))
            .collect();
        assert_eq!(inside, [(2, "eth0"), (4, "net1")]);
        assert!(CniResult::default().sandbox_interfaces().next().is_none());
    }

    #[test]
    fn serde_impls_follow_the_result_version() {
        #[derive(Debug, PartialEq, Serialize, Deserialize)]
        struct Conf {
            #[serde(rename = "prevResult")]
            prev_result: CniResult,
        }
        let conf = Conf {
            prev_result: bridge(V0_4_0),
        };
        let text = serde_json::to_string(&conf).unwrap();
        assert_eq!(
            text,
            format!("{{\"prevResult\":{}}}", compact(BRIDGE_0_4_0))
        );
        assert_eq!(serde_json::from_str::<Conf>(&text).unwrap(), conf);
        assert!(serde_json::from_str::<Conf>(r#"{"prevResult": {"cniVersion": "7"}}"#).is_err());
        // Without a cniVersion, the latest layout.
        let r: CniResult =
            serde_json::from_str(r#"{"ips": [{"address": "10.0.0.2/24"}]}"#).unwrap();
        assert_eq!(r.cni_version, V1_1_0);

        let rich = rich();
        let layout = rich.to_value(V1_1_0);
        assert_eq!(
            serde_json::to_value(&rich.interfaces).unwrap(),
            layout["interfaces"]
        );
        assert_eq!(serde_json::to_value(&rich.ips).unwrap(), layout["ips"]);
        assert_eq!(
            serde_json::to_value(&rich.routes).unwrap(),
            layout["routes"]
        );
        assert_eq!(serde_json::to_value(&rich.dns).unwrap(), layout["dns"]);
        assert!(Dns::default().is_empty());
        assert!(!rich.dns.is_empty());
    }

    fn ipv4() -> impl Strategy<Value = String> {
        any::<[u8; 4]>().prop_map(|octets| Ipv4Addr::from(octets).to_string())
    }

    fn ipv6() -> impl Strategy<Value = String> {
        any::<u128>().prop_map(|bits| Ipv6Addr::from(bits).to_string())
    }

    fn ip_address() -> impl Strategy<Value = String> {
        prop_oneof![ipv4(), ipv6()]
    }

    fn cidr() -> impl Strategy<Value = String> {
        prop_oneof![
            (ipv4(), 0u8..=32).prop_map(|(ip, len)| format!("{ip}/{len}")),
            (ipv6(), 0u8..=128).prop_map(|(ip, len)| format!("{ip}/{len}")),
        ]
    }

    fn extras() -> impl Strategy<Value = Extra> {
        let value = prop_oneof![
            any::<i64>().prop_map(Value::from),
            any::<bool>().prop_map(Value::from),
            "[a-z ]{0,6}".prop_map(Value::from),
            Just(json!({"nested": [1, "two", null]})),
        ];
        proptest::collection::btree_map("x-[a-z]{1,4}", value, 0..3)
            .prop_map(|map| map.into_iter().collect())
    }

    fn text() -> impl Strategy<Value = String> {
        "[a-z0-9:/.-]{0,12}"
    }

    prop_compose! {
        fn interface()(
            name in "[a-z0-9]{0,8}",
            mac in proptest::option::of(text()),
            mtu in proptest::option::of(any::<u32>()),
            sandbox in proptest::option::of(text()),
            socket_path in proptest::option::of(text()),
            pci_id in proptest::option::of(text()),
            extra in extras(),
        ) -> Interface {
            Interface { name, mac, mtu, sandbox, socket_path, pci_id, extra }
        }
    }

    prop_compose! {
        fn ip_config()(
            interface in proptest::option::of(0usize..5),
            address in cidr(),
            gateway in proptest::option::of(ip_address()),
            extra in extras(),
        ) -> IpConfig {
            IpConfig { interface, address, gateway, extra }
        }
    }

    prop_compose! {
        fn route()(
            dst in cidr(),
            gw in proptest::option::of(ip_address()),
            v1_1 in proptest::array::uniform5(proptest::option::of(any::<u32>())),
            extra in extras(),
        ) -> Route {
            let [mtu, advmss, priority, table, scope] = v1_1;
            Route { dst, gw, mtu, advmss, priority, table, scope, extra }
        }
    }

    prop_compose! {
        fn dns()(
            nameservers in proptest::collection::vec(ip_address(), 0..3),
            domain in proptest::option::of(text()),
            search in proptest::collection::vec(text(), 0..3),
            options in proptest::collection::vec(text(), 0..3),
            extra in extras(),
        ) -> Dns {
            Dns { nameservers, domain, search, options, extra }
        }
    }

    prop_compose! {
        fn cni_result()(
            cni_version in proptest::sample::select(CniVersion::ALL.to_vec()),
            interfaces in proptest::collection::vec(interface(), 0..4),
            ips in proptest::collection::vec(ip_config(), 0..5),
            routes in proptest::collection::vec(route(), 0..5),
            dns in dns(),
        ) -> CniResult {
            CniResult { cni_version, interfaces, ips, routes, dns }
        }
    }

    proptest! {
        #[test]
        fn render_then_parse_keeps_what_the_layout_holds(r in cni_result()) {
            for version in CniVersion::ALL {
                let rendered = r.to_json(version);
                let parsed = CniResult::parse(rendered.as_bytes(), V0_1_0).unwrap();
                if version >= V0_3_0 {
                    // Lossless, except for the fields 1.1.0 added.
                    prop_assert_eq!(&parsed, &degrade(&r, version), "{}", version);
                }
                if version >= V1_1_0 {
                    prop_assert_eq!(&parsed, &CniResult { cni_version: version, ..r.clone() });
                }
                if version.has_legacy_result_layout() {
                    prop_assert_eq!(&parsed, &degrade(&r, version), "{}", version);
                }
                // Rendering what was parsed gives the same document.
                prop_assert_eq!(parsed.to_json(version), rendered);
            }
        }
    }
}
