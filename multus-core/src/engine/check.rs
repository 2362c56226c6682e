//! CHECK: every recorded interface and address must be in the pod, and every
//! delegate's own CHECK must pass.

use super::*;

impl Engine<'_> {
    /// CHECK: every recorded attachment must still be present and pass its delegate's
    /// CHECK with the cached result as `prevResult` (the auxiliary chain, which has no
    /// interface of its own, is not checked).
    ///
    /// Only the interface and addresses the cached result lists are looked for in the
    /// pod: a plugin that configures something without creating an interface (its
    /// result is `{}` or only DNS) is checked by its own CHECK alone. Refused, as the
    /// CNI spec says, when multus' own configuration is older than 0.4.0.
    pub async fn check(&self) -> Result<(), MultusError> {
        self.require_version("CHECK", CniVersion::V0_4_0)?;
        let store = self.seams.state;
        let _lock = store
            .lock(&self.request.container_id)
            .await
            .map_err(|e| self.state_error(e))?;
        let Some(state) = self.load_or_upstream().await? else {
            self.forget_unrecorded().await;
            return Err(MultusError::UnknownContainer {
                pod: self.request.pod.clone(),
                container_id: self.request.container_id.clone(),
            });
        };
        let invoker = self.invoker();
        for attachment in &state.attachments {
            let delegate = &attachment.delegate;
            if delegate.auxiliary {
                // Its `net<index>` names no interface in the pod, so neither the interface
                // check nor its plugins' CHECK (tuning looks the interface up) can pass;
                // upstream never CHECKs it either.
                tracing::info!(network = %delegate.network, "not checking the auxiliary CNI chain");
                continue;
            }
            let check_error = |reason: String, code: u32| MultusError::Check {
                pod: self.request.pod.clone(),
                network: delegate.network.clone(),
                ifname: delegate.ifname.clone(),
                reason,
                code,
            };
            if lists_interface(attachment) {
                let present = self
                    .seams
                    .netns
                    .link_addresses(&self.request.netns, &delegate.ifname)
                    .await
                    .map_err(|e| netns_check_error(self, delegate, e))?;
                let Some(present) = present else {
                    return Err(check_error(
                        "interface is missing from the pod's network namespace".into(),
                        crate::cni::ErrorCode::InvalidInterface.code(),
                    ));
                };
                if let Some(missing) = missing_address(attachment, &present) {
                    return Err(check_error(
                        format!("address {missing} is missing from the interface"),
                        crate::cni::ErrorCode::InvalidInterface.code(),
                    ));
                }
            } else {
                tracing::info!(network = %delegate.network, ifname = %delegate.ifname, "the cached result lists no interface or address for this attachment; only its delegate's CHECK runs");
            }
            let supports_check = delegate
                .config
                .cni_version()
                .is_some_and(CniVersion::supports_check);
            let Some(cached) = attachment.result.as_ref().filter(|_| supports_check) else {
                tracing::info!(network = %delegate.network, "delegate cniVersion is older than 0.4.0 or has no cached result; skipping its CHECK");
                continue;
            };
            invoker
                .check(delegate, cached)
                .await
                .map_err(|e| check_error(e.to_string(), e.cni_code()))?;
        }
        Ok(())
    }
}

fn netns_check_error(
    engine: &Engine<'_>,
    delegate: &PlannedDelegate,
    source: NetnsError,
) -> MultusError {
    MultusError::Netns {
        pod: engine.request.pod.clone(),
        network: delegate.network.clone(),
        source,
    }
}

/// Whether the attachment's interface must be in the pod: there is no usable cached
/// result (ADD did not finish, or it does not parse), or the result lists the interface
/// in the sandbox or an address on it.
pub(super) fn lists_interface(attachment: &Attachment) -> bool {
    let Some(result) = parse_result(attachment) else {
        return true;
    };
    let ifname = &attachment.delegate.ifname;
    let own_index = result
        .interfaces
        .iter()
        .position(|i| i.is_in_sandbox() && &i.name == ifname);
    own_index.is_some() || result.ips.iter().any(|ip| ip.interface.is_none())
}

/// The first address the attachment's cached result gave its interface that the
/// interface no longer has.
fn missing_address(attachment: &Attachment, present: &[std::net::IpAddr]) -> Option<String> {
    let result = parse_result(attachment)?;
    let ifname = &attachment.delegate.ifname;
    let own_index = result
        .interfaces
        .iter()
        .position(|i| i.is_in_sandbox() && &i.name == ifname);
    result
        .ips
        .iter()
        .filter(|ip| match (ip.interface, own_index) {
            (Some(index), Some(own)) => index == own,
            (Some(_), None) => false,
            (None, _) => true,
        })
        .map(|ip| ip.ip().to_owned())
        .find(|ip| {
            ip.parse::<std::net::IpAddr>()
                .is_ok_and(|addr| !present.contains(&addr))
        })
}
