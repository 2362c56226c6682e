//! The `default-route` attribute of the networks annotation, applied inside the pod.
//!
//! For each address family in which an attachment asks for a gateway, that gateway
//! becomes the pod's only default route of the family: every other default route of the
//! family is deleted (on any interface) and `default via <gateway> dev <ifname>` is
//! added. An attachment that asks for `default-route: []` gets no default route of its
//! own: the default routes its plugin installed on its interface are deleted, and other
//! interfaces are left alone (upstream also removes the cluster network's, #1011).
//!
//! The cached results are edited to match, so the result returned to the runtime, the
//! network-status gateways and later DEL/CHECK `prevResult`s describe the pod as it is.

use std::net::IpAddr;

use crate::cni::result::Route;
use crate::cni::{CniResult, CniVersion};
use crate::seams::{NetnsError, NetnsOps};
use crate::state::Attachment;

/// A failure applying default routes: the attachment concerned and the cause.
#[derive(Debug)]
pub(super) struct RouteFailure {
    /// Index of the attachment whose request failed.
    pub index: usize,
    /// The namespace error.
    pub source: NetnsError,
}

/// Apply every `default-route` request of `attachments` in the pod at `netns`.
pub(super) async fn apply(
    netns_ops: &dyn NetnsOps,
    netns: &str,
    attachments: &mut [Attachment],
) -> Result<(), RouteFailure> {
    let requests: Vec<(usize, Vec<IpAddr>)> = attachments
        .iter()
        .enumerate()
        .filter_map(|(i, a)| a.delegate.default_route.clone().map(|gws| (i, gws)))
        .collect();
    for (index, gateways) in &requests {
        let ifname = attachments[*index].delegate.ifname.clone();
        let fail = |source| RouteFailure {
            index: *index,
            source,
        };
        if gateways.is_empty() {
            netns_ops
                .remove_default_routes(netns, &ifname)
                .await
                .map_err(fail)?;
            edit_result(&mut attachments[*index], |r| {
                r.routes.retain(|route| !route.is_default())
            });
            continue;
        }
        for gateway in gateways {
            netns_ops
                .replace_default_route(netns, &ifname, *gateway)
                .await
                .map_err(fail)?;
            let v4 = gateway.is_ipv4();
            for attachment in attachments.iter_mut() {
                edit_result(attachment, |r| {
                    r.routes
                        .retain(|route| !(route.is_default() && route.is_ipv4() == v4));
                });
            }
            edit_result(&mut attachments[*index], |r| {
                r.routes.push(default_route(*gateway))
            });
        }
    }
    Ok(())
}

fn default_route(gateway: IpAddr) -> Route {
    Route {
        dst: if gateway.is_ipv4() {
            "0.0.0.0/0"
        } else {
            "::/0"
        }
        .to_owned(),
        gw: Some(gateway.to_string()),
        ..Route::default()
    }
}

/// Rewrite an attachment's cached result in its own version.
fn edit_result(attachment: &mut Attachment, edit: impl FnOnce(&mut CniResult)) {
    let Some(value) = attachment.result.as_ref() else {
        return;
    };
    let fallback = attachment
        .delegate
        .config
        .cni_version()
        .unwrap_or(CniVersion::V0_1_0);
    let Ok(mut result) = CniResult::from_value(value, fallback) else {
        return;
    };
    edit(&mut result);
    let version = result.cni_version;
    attachment.result = Some(result.to_value(version));
}

/// Whether an attachment's result value holds a default route (for tests and CHECK).
#[cfg(test)]
pub(super) fn has_default_route(value: &serde_json::Value) -> bool {
    CniResult::from_value(value, CniVersion::V1_0_0)
        .map(|r| r.routes.iter().any(Route::is_default))
        .unwrap_or(false)
}
