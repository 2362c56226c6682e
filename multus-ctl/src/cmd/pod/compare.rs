//! Comparisons of `multus-ctl pod`: a recorded result against the live namespace, a
//! recorded delegate config against the NAD as it is now, two network-statuses.

use std::net::IpAddr;

use multus_cni::netns::inspect::NetnsSnapshot;
use multus_core::delegate::DelegateConfig;
use multus_core::nad::{NetworkSelectionElement, NetworkStatus};
use multus_core::state::SandboxState;
use serde_json::Value;

use super::gather::NadSource;
use super::report::Finding;
use crate::error::{CtlError, one_line};
use crate::output::Level;
use crate::recorded::RecordedInterface;

fn ip_of(cidr: &str) -> Option<IpAddr> {
    cidr.split('/').next()?.parse().ok()
}

/// Recorded interfaces and addresses against the live namespace.
pub(super) fn compare_live(
    network: &str,
    recorded: &[RecordedInterface],
    snapshot: &NetnsSnapshot,
    findings: &mut Vec<Finding>,
) {
    for interface in recorded {
        let Some(link) = snapshot.link(&interface.name) else {
            findings.push(Finding {
                kind: "missing-interface",
                level: Level::Error,
                subject: interface.name.clone(),
                detail: format!("{network} attached {} but it is not in the pod", interface.name),
                fix: "something deleted it inside the pod; the network is down for the pod: recreate the pod (DEL still releases its IPs)".to_owned(),
            });
            continue;
        };
        for address in &interface.addresses {
            let Some(ip) = ip_of(address) else { continue };
            match link.addresses.iter().find(|a| a.address == ip) {
                None => findings.push(Finding {
                    kind: "missing-address",
                    level: Level::Error,
                    subject: interface.name.clone(),
                    detail: format!("{address} from {network}'s result is not on {}", interface.name),
                    fix: "it was removed inside the pod: recreate the pod, or add it back with `ip addr add`".to_owned(),
                }),
                Some(live) if Some(live.cidr()) != Some(address.clone()) => findings.push(Finding {
                    kind: "wrong-address",
                    level: Level::Warning,
                    subject: interface.name.clone(),
                    detail: format!("{} has {} where {network}'s result says {address}", interface.name, live.cidr()),
                    fix: "the prefix was changed inside the pod: recreate the pod".to_owned(),
                }),
                Some(_) => {}
            }
        }
        let recorded_ips: Vec<IpAddr> = interface
            .addresses
            .iter()
            .filter_map(|a| ip_of(a))
            .collect();
        for live in link.addresses.iter().filter(|a| !a.is_link_local()) {
            if !recorded_ips.contains(&live.address) {
                findings.push(Finding {
                    kind: "unexpected-address",
                    level: Level::Warning,
                    subject: interface.name.clone(),
                    detail: format!("{} has {}, which {network}'s result does not list", interface.name, live.cidr()),
                    fix: "it was added outside multus, which neither recorded nor releases it: remove it, or ignore it if it is intended".to_owned(),
                });
            }
        }
    }
}

/// The recorded config against the NAD as it is now.
pub(super) fn compare_nad(
    source: &NadSource<'_>,
    namespace: &str,
    name: &str,
    recorded: &DelegateConfig,
    state: &SandboxState,
    selection: Option<&NetworkSelectionElement>,
    findings: &mut Vec<Finding>,
) -> Result<(), CtlError> {
    let Some(nad_source) = source.describe() else {
        return Ok(());
    };
    let network = format!("{namespace}/{name}");
    let Some(nad) = source.get(namespace, name)? else {
        findings.push(Finding {
            kind: "nad-missing",
            level: Level::Warning,
            subject: network.clone(),
            detail: format!(
                "the pod was attached to {network}, which no longer exists in {nad_source}"
            ),
            fix:
                "the pod keeps its interface until it is deleted; new pods asking for it will fail"
                    .to_owned(),
        });
        return Ok(());
    };
    let current = match nad.delegate_config() {
        Ok(Some(bytes)) => match DelegateConfig::from_bytes(&bytes) {
            Ok(config) => config,
            Err(e) => {
                findings.push(nad_changed(
                    &network,
                    &nad_source,
                    format!("its config is now invalid: {e}"),
                ));
                return Ok(());
            }
        },
        // An empty spec resolves from confDir, which is not compared here.
        Ok(None) => return Ok(()),
        Err(e) => {
            findings.push(nad_changed(
                &network,
                &nad_source,
                format!("its config is now invalid: {}", one_line(e)),
            ));
            return Ok(());
        }
    };
    let mut current = current.with_default_version(state.cni_version);
    if let Some(cni_args) = selection.and_then(|s| s.cni_args.as_ref()) {
        current = current.with_cni_args(cni_args);
    }
    let old: Value = serde_json::from_str(recorded.raw()).unwrap_or(Value::Null);
    let new: Value = serde_json::from_str(current.raw()).unwrap_or(Value::Null);
    if old != new {
        let mut changes = Vec::new();
        diff("", &old, &new, &mut changes);
        let shown: Vec<String> = changes.iter().take(4).cloned().collect();
        let more = changes.len().saturating_sub(shown.len());
        let mut detail = format!("changed after the pod was attached: {}", shown.join("; "));
        if more > 0 {
            detail.push_str(&format!("; and {more} more"));
        }
        findings.push(nad_changed(&network, &nad_source, detail));
    }
    Ok(())
}

fn nad_changed(network: &str, nad_source: &str, detail: String) -> Finding {
    Finding {
        kind: "nad-changed",
        level: Level::Warning,
        subject: network.to_owned(),
        detail: format!("{network} in {nad_source}: {detail}"),
        fix: "the pod still runs with the config it was attached with (DEL uses the recorded one); recreate the pod to use the new config".to_owned(),
    }
}

/// The differing paths of two JSON documents, `path: old → new`.
pub(super) fn diff(path: &str, old: &Value, new: &Value, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let sub = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => diff(&sub, x, y, out),
                    (Some(x), None) => out.push(format!("{sub}: {x} → (removed)")),
                    (None, Some(y)) => out.push(format!("{sub}: (absent) → {y}")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (index, (x, y)) in a.iter().zip(b).enumerate() {
                diff(&format!("{path}[{index}]"), x, y, out);
            }
        }
        (a, b) if a != b => out.push(format!(
            "{}: {a} → {b}",
            if path.is_empty() { "config" } else { path }
        )),
        _ => {}
    }
}

/// What identifies a network-status: interface and addresses per network.
pub(super) fn status_key(entries: &[NetworkStatus]) -> Vec<(String, String, Vec<String>)> {
    let mut key: Vec<(String, String, Vec<String>)> = entries
        .iter()
        .map(|e| {
            let mut ips = e.ips.clone();
            ips.sort();
            (e.name.clone(), e.interface.clone(), ips)
        })
        .collect();
    key.sort();
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn diff_names_changed_paths() {
        let mut out = Vec::new();
        diff(
            "",
            &json!({"type":"bridge","ipam":{"subnet":"10.1.0.0/24"},"mtu":1500}),
            &json!({"type":"bridge","ipam":{"subnet":"10.2.0.0/24"},"vlan":5}),
            &mut out,
        );
        assert_eq!(
            out,
            vec![
                "ipam.subnet: \"10.1.0.0/24\" → \"10.2.0.0/24\"",
                "mtu: 1500 → (removed)",
                "vlan: (absent) → 5",
            ]
        );
    }

    #[test]
    fn status_keys_ignore_order() {
        let a = NetworkStatus {
            name: "n".into(),
            interface: "net1".into(),
            ips: vec!["10.0.0.2".into(), "10.0.0.1".into()],
            ..NetworkStatus::default()
        };
        let mut b = a.clone();
        b.ips.reverse();
        assert_eq!(status_key(&[a]), status_key(&[b]));
    }
}
