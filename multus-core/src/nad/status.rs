//! The `k8s.v1.cni.cncf.io/network-status` annotation (NPWG v1.3 §5).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::cni::CniResult;
use crate::cni::result::Dns;

/// One entry of the network-status annotation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworkStatus {
    /// `namespace/nad` for NADs, the CNI name otherwise.
    pub name: String,
    /// Interface name inside the pod.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub interface: String,
    /// Addresses without prefix length.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ips: Vec<String>,
    /// MAC address.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    /// MTU, when the result reported one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    /// Whether this is the pod's default (cluster) network interface.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub default: bool,
    /// DNS settings from the result (always present, `{}` when empty).
    #[serde(default)]
    pub dns: Dns,
    /// Device information (NPWG device-info spec).
    #[serde(
        default,
        rename = "device-info",
        skip_serializing_if = "Option::is_none"
    )]
    pub device_info: Option<Value>,
    /// Gateways of the result's default routes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gateway: Vec<String>,
}

/// Build the entries for one delegate's result.
///
/// Rules of the NPWG specification as upstream applies them: a result with exactly one
/// interface gives one entry with all addresses; otherwise one entry per sandbox
/// interface, addresses placed by their interface index (unindexed ones on the last
/// entry). Unlike upstream, a result with no sandbox interface at all (CNI 0.2.0 results,
/// plugins that only report IPs) still yields one entry, named after `ifname`.
pub fn network_status_entries(
    network: &str,
    ifname: &str,
    result: &CniResult,
    is_default: bool,
) -> Vec<NetworkStatus> {
    let gateway: Vec<String> = result
        .routes
        .iter()
        .filter(|route| route.is_default())
        .filter_map(|route| route.gw.clone())
        .collect();
    let entry = |interface: &str, mac: Option<&String>, mtu: Option<u32>| NetworkStatus {
        name: network.to_owned(),
        interface: interface.to_owned(),
        mac: mac.cloned().unwrap_or_default(),
        mtu,
        dns: result.dns.clone(),
        gateway: gateway.clone(),
        ..NetworkStatus::default()
    };
    let all_ips = || result.ips.iter().map(|ip| ip.ip().to_owned()).collect();

    if result.interfaces.len() == 1 {
        let mut status = match result.sandbox_interfaces().last() {
            Some((_, iface)) => entry(&iface.name, iface.mac.as_ref(), iface.mtu),
            None => entry(ifname, None, None),
        };
        status.ips = all_ips();
        status.default = is_default;
        return vec![status];
    }

    let sandboxed: Vec<usize> = result.sandbox_interfaces().map(|(i, _)| i).collect();
    if sandboxed.is_empty() {
        let mut status = entry(ifname, None, None);
        status.ips = all_ips();
        status.default = is_default;
        return vec![status];
    }
    let mut entries: Vec<NetworkStatus> = sandboxed
        .iter()
        .map(|&i| {
            let iface = &result.interfaces[i];
            entry(&iface.name, iface.mac.as_ref(), iface.mtu)
        })
        .collect();
    for ip in &result.ips {
        let position = ip
            .interface
            .and_then(|index| sandboxed.iter().position(|&i| i == index))
            .unwrap_or(entries.len() - 1);
        entries[position].ips.push(ip.ip().to_owned());
    }
    if is_default {
        let with_gateway = result
            .ips
            .iter()
            .find(|ip| ip.gateway.is_some())
            .and_then(|ip| ip.interface)
            .and_then(|index| sandboxed.iter().position(|&i| i == index));
        entries[with_gateway.unwrap_or(0)].default = true;
    }
    entries
}

/// Render the annotation value: a JSON array of the entries.
pub fn annotation_value(statuses: &[NetworkStatus]) -> String {
    serde_json::to_string_pretty(statuses).unwrap_or_else(|_| "[]".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cni::CniVersion;

    fn parse(doc: &str) -> CniResult {
        CniResult::parse(doc.as_bytes(), CniVersion::V1_0_0).unwrap()
    }

    #[test]
    fn bridge_result_gives_one_entry_for_the_sandbox_interface() {
        let result = parse(
            r#"{"cniVersion":"1.0.0",
              "interfaces":[{"name":"cni0","mac":"aa:aa:aa:aa:aa:aa"},
                            {"name":"veth1","mac":"bb:bb:bb:bb:bb:bb"},
                            {"name":"eth0","mac":"cc:cc:cc:cc:cc:cc","sandbox":"/var/run/netns/p"}],
              "ips":[{"address":"10.1.0.5/16","gateway":"10.1.0.1","interface":2}],
              "routes":[{"dst":"0.0.0.0/0","gw":"10.1.0.1"}],"dns":{}}"#,
        );
        let entries = network_status_entries("cbr0", "eth0", &result, true);
        insta::assert_json_snapshot!(entries, @r#"
        [
          {
            "name": "cbr0",
            "interface": "eth0",
            "ips": [
              "10.1.0.5"
            ],
            "mac": "cc:cc:cc:cc:cc:cc",
            "default": true,
            "dns": {},
            "gateway": [
              "10.1.0.1"
            ]
          }
        ]
        "#);
    }

    #[test]
    fn result_without_interfaces_still_yields_an_entry() {
        let result = CniResult::parse(
            br#"{"cniVersion":"0.2.0","ip4":{"ip":"10.2.0.7/24"},"dns":{}}"#,
            CniVersion::V0_2_0,
        )
        .unwrap();
        let entries = network_status_entries("default/static", "net1", &result, false);
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].interface, "net1");
        assert_eq!(entries[0].ips, vec!["10.2.0.7"]);
        assert!(!entries[0].default);
    }

    #[test]
    fn single_interface_result_takes_all_addresses() {
        let result = parse(
            r#"{"cniVersion":"1.0.0","interfaces":[{"name":"net1","mac":"02:00:00:00:00:01","sandbox":"/x"}],
               "ips":[{"address":"10.0.0.2/24"},{"address":"fd00::2/64"}]}"#,
        );
        let entries = network_status_entries("ns/mv", "net1", &result, false);
        assert_eq!(entries[0].ips, vec!["10.0.0.2", "fd00::2"]);
        assert_eq!(entries[0].mac, "02:00:00:00:00:01");
    }

    #[test]
    fn several_sandbox_interfaces_get_their_indexed_addresses() {
        let result = parse(
            r#"{"cniVersion":"1.0.0","interfaces":[
                 {"name":"a","sandbox":"/x"},{"name":"host"},{"name":"b","sandbox":"/x"}],
               "ips":[{"address":"10.0.0.2/24","interface":2,"gateway":"10.0.0.1"},
                      {"address":"10.0.1.2/24","interface":0},{"address":"10.0.2.2/24"}]}"#,
        );
        let entries = network_status_entries("n", "eth0", &result, true);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].ips, vec!["10.0.1.2"]);
        assert_eq!(entries[1].ips, vec!["10.0.0.2", "10.0.2.2"]);
        assert!(!entries[0].default);
        assert!(entries[1].default);
    }
}
