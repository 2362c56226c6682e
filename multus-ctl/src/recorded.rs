//! Views of what a sandbox record holds, shared by `state` and `pod`.

use multus_core::cni::{CniResult, CniVersion};
use multus_core::state::{Attachment, Phase, SandboxState};
use serde::Serialize;

/// The pod a record belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodIdentity {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// UID.
    pub uid: String,
}

impl PodIdentity {
    /// Of a record.
    pub fn of(state: &SandboxState) -> Self {
        Self {
            namespace: state.pod_namespace.clone(),
            name: state.pod_name.clone(),
            uid: state.pod_uid.clone(),
        }
    }

    /// `namespace/name`, or `-` when the record names no pod.
    pub fn short(&self) -> String {
        if self.namespace.is_empty() && self.name.is_empty() {
            "-".to_owned()
        } else {
            format!("{}/{}", self.namespace, self.name)
        }
    }
}

/// `adding` or `added`.
pub fn phase_text(phase: Phase) -> &'static str {
    match phase {
        Phase::Adding => "adding",
        Phase::Added => "added",
    }
}

/// One pod interface a delegate reported in its result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordedInterface {
    /// Interface name in the pod.
    pub name: String,
    /// MAC address, when the result gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Addresses with prefix length, as the result gave them.
    pub addresses: Vec<String>,
}

/// The plugin types of an attachment's delegate, in chain order.
pub fn plugin_type_names(attachment: &Attachment) -> Vec<String> {
    attachment
        .delegate
        .config
        .plugin_types()
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// The result of an attachment, parsed (`None` when there is none or it does not parse).
pub fn parsed_result(attachment: &Attachment, fallback: CniVersion) -> Option<CniResult> {
    let result = attachment.result.as_ref()?;
    let fallback = attachment.delegate.config.cni_version().unwrap_or(fallback);
    CniResult::from_value(result, fallback).ok()
}

/// The pod interfaces an attachment's result reports, with their addresses. Addresses
/// without an interface index (or pointing at a host interface) belong to the
/// attachment's own interface, as multus' network-status places them.
pub fn recorded_interfaces(
    attachment: &Attachment,
    fallback: CniVersion,
) -> Vec<RecordedInterface> {
    let own = attachment.delegate.ifname.clone();
    let mut interfaces: Vec<RecordedInterface> = Vec::new();
    let Some(result) = parsed_result(attachment, fallback) else {
        return vec![RecordedInterface {
            name: own,
            mac: None,
            addresses: Vec::new(),
        }];
    };
    let sandboxed: Vec<(usize, String, Option<String>)> = result
        .interfaces
        .iter()
        .enumerate()
        .filter(|(_, i)| i.sandbox.as_deref().is_some_and(|s| !s.is_empty()))
        .map(|(index, i)| (index, i.name.clone(), i.mac.clone()))
        .collect();
    for (_, name, mac) in &sandboxed {
        interfaces.push(RecordedInterface {
            name: name.clone(),
            mac: mac.clone(),
            addresses: Vec::new(),
        });
    }
    for ip in &result.ips {
        let target = ip
            .interface
            .and_then(|index| sandboxed.iter().find(|(i, _, _)| *i == index))
            .map_or_else(|| own.clone(), |(_, name, _)| name.clone());
        match interfaces.iter_mut().find(|i| i.name == target) {
            Some(interface) => interface.addresses.push(ip.address.clone()),
            None => interfaces.push(RecordedInterface {
                name: target,
                mac: None,
                addresses: vec![ip.address.clone()],
            }),
        }
    }
    if !interfaces.iter().any(|i| i.name == own) {
        interfaces.insert(
            0,
            RecordedInterface {
                name: own,
                mac: None,
                addresses: Vec::new(),
            },
        );
    }
    interfaces
}

#[cfg(test)]
mod tests {
    use super::*;
    use multus_core::plan::PlannedDelegate;
    use serde_json::json;

    fn attachment(result: serde_json::Value) -> Attachment {
        // As a record stores it: the keys a plan always has (newer, optional ones take
        // their defaults).
        let delegate: PlannedDelegate = serde_json::from_value(json!({
            "network": "default/blue",
            "ifname": "net1",
            "clusterNetwork": false,
            "config": r#"{"cniVersion":"1.0.0","type":"bridge"}"#,
            "runtimeConfig": {},
            "cniArgs": "",
            "addCniArgs": "",
        }))
        .unwrap();
        Attachment {
            delegate,
            result: Some(result),
        }
    }

    #[test]
    fn addresses_go_to_their_sandbox_interface() {
        let a = attachment(json!({
            "cniVersion": "1.0.0",
            "interfaces": [{"name":"br"},{"name":"veth1"},{"name":"net1","mac":"aa:bb:cc:dd:ee:ff","sandbox":"/run/netns/p"}],
            "ips": [{"address":"10.1.0.2/24","interface":2},{"address":"10.9.0.2/24"}]
        }));
        let found = recorded_interfaces(&a, CniVersion::V1_0_0);
        assert_eq!(
            found,
            vec![RecordedInterface {
                name: "net1".into(),
                mac: Some("aa:bb:cc:dd:ee:ff".into()),
                addresses: vec!["10.1.0.2/24".into(), "10.9.0.2/24".into()],
            }]
        );
    }

    #[test]
    fn an_attachment_without_result_still_has_its_interface() {
        let mut a = attachment(json!({}));
        a.result = None;
        let found = recorded_interfaces(&a, CniVersion::V1_0_0);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].name, "net1");
    }
}
