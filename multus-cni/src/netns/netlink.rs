//! Route and address work inside a pod's network namespace over rtnetlink.
//!
//! Every function here runs on the namespace thread of [`super::NetnsInspector::run_in`]:
//! the netlink socket is opened after `setns`, so it stays bound to the pod's namespace,
//! and a current-thread runtime that lives only for the call drives it.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures_util::TryStreamExt;
use multus_core::seams::{DefaultRoute, NetnsError};
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::AddressAttribute;
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteHeader, RouteMessage};
use rtnetlink::{Handle, RouteMessageBuilder};

/// Run `work` with a netlink handle bound to the calling thread's namespace.
pub(super) fn with_handle<T, F, Fut>(path: &str, work: F) -> Result<T, NetnsError>
where
    F: FnOnce(Handle) -> Fut,
    Fut: Future<Output = Result<T, NetnsError>>,
{
    let failed = |what: &str, e: &dyn std::fmt::Display| NetnsError::Other {
        path: path.to_owned(),
        reason: format!("{what}: {e}"),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(|e| failed("cannot start netlink runtime", &e))?;
    runtime.block_on(async {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(|e| failed("cannot open netlink socket", &e))?;
        let driver = tokio::spawn(connection);
        let outcome = work(handle).await;
        driver.abort();
        outcome
    })
}

fn netlink_error(path: &str, what: String, e: rtnetlink::Error) -> NetnsError {
    NetnsError::Other {
        path: path.to_owned(),
        reason: format!("{what}: {e}"),
    }
}

/// Interface index of `ifname` in the calling thread's namespace.
pub(super) fn index_of(path: &str, ifname: &str) -> Result<u32, NetnsError> {
    nix::net::if_::if_nametoindex(ifname).map_err(|e| NetnsError::Other {
        path: path.to_owned(),
        reason: format!("no interface {ifname}: {e}"),
    })
}

/// Name of interface `index` in the calling thread's namespace.
fn name_of(index: u32) -> String {
    nix::net::if_::if_nameindex()
        .ok()
        .and_then(|list| {
            list.iter()
                .find(|i| i.index() == index)
                .map(|i| i.name().to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| format!("if{index}"))
}

/// Routes of the main table, both families.
pub(super) async fn main_table_routes(
    handle: &Handle,
    path: &str,
) -> Result<Vec<RouteMessage>, NetnsError> {
    let mut found = Vec::new();
    for query in [
        RouteMessageBuilder::<Ipv4Addr>::new().build(),
        RouteMessageBuilder::<Ipv6Addr>::new().build(),
    ] {
        let mut routes = handle.route().get(query).execute();
        while let Some(route) = routes
            .try_next()
            .await
            .map_err(|e| netlink_error(path, "cannot list routes".into(), e))?
        {
            if is_main_table(&route) {
                found.push(route);
            }
        }
    }
    Ok(found)
}

/// Default routes of the main table, both families. A default route is any route with
/// prefix length 0, whether the kernel reports its destination as absent or as
/// `0.0.0.0`/`::` (the two representations netlink libraries produce).
async fn default_route_messages(
    handle: &Handle,
    path: &str,
) -> Result<Vec<RouteMessage>, NetnsError> {
    let mut routes = main_table_routes(handle, path).await?;
    routes.retain(|route| route.header.destination_prefix_length == 0);
    Ok(routes)
}

fn is_main_table(route: &RouteMessage) -> bool {
    let table = route
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(route.header.table));
    table == u32::from(RouteHeader::RT_TABLE_MAIN)
}

fn output_interface(route: &RouteMessage) -> Option<u32> {
    route.attributes.iter().find_map(|a| match a {
        RouteAttribute::Oif(index) => Some(*index),
        _ => None,
    })
}

fn gateway(route: &RouteMessage) -> Option<IpAddr> {
    route.attributes.iter().find_map(|a| match a {
        RouteAttribute::Gateway(RouteAddress::Inet(v4)) => Some(IpAddr::V4(*v4)),
        RouteAttribute::Gateway(RouteAddress::Inet6(v6)) => Some(IpAddr::V6(*v6)),
        _ => None,
    })
}

fn is_ipv4(route: &RouteMessage) -> bool {
    route.header.address_family == AddressFamily::Inet
}

/// The default routes of the namespace.
pub(super) async fn default_routes(
    handle: Handle,
    path: String,
) -> Result<Vec<DefaultRoute>, NetnsError> {
    Ok(default_route_messages(&handle, &path)
        .await?
        .iter()
        .map(|route| DefaultRoute {
            ifname: output_interface(route).map(name_of).unwrap_or_default(),
            gateway: gateway(route),
            ipv4: is_ipv4(route),
        })
        .collect())
}

/// Delete the default routes matching `select`.
async fn delete_default_routes(
    handle: &Handle,
    path: &str,
    select: impl Fn(&RouteMessage) -> bool,
) -> Result<(), NetnsError> {
    for route in default_route_messages(handle, path).await? {
        if select(&route) {
            handle
                .route()
                .del(route)
                .execute()
                .await
                .map_err(|e| netlink_error(path, "cannot delete default route".into(), e))?;
        }
    }
    Ok(())
}

/// Make `default via gateway dev ifindex` the only default route of its family.
pub(super) async fn replace_default_route(
    handle: Handle,
    path: String,
    ifindex: u32,
    gateway: IpAddr,
) -> Result<(), NetnsError> {
    let v4 = gateway.is_ipv4();
    delete_default_routes(&handle, &path, |route| is_ipv4(route) == v4).await?;
    let route = match gateway {
        IpAddr::V4(gw) => RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gw)
            .output_interface(ifindex)
            .build(),
        IpAddr::V6(gw) => RouteMessageBuilder::<Ipv6Addr>::new()
            .gateway(gw)
            .output_interface(ifindex)
            .build(),
    };
    handle
        .route()
        .add(route)
        .execute()
        .await
        .map_err(|e| netlink_error(&path, format!("cannot add default route via {gateway}"), e))
}

/// Delete every default route that leaves through `ifindex`.
pub(super) async fn remove_default_routes(
    handle: Handle,
    path: String,
    ifindex: u32,
) -> Result<(), NetnsError> {
    delete_default_routes(&handle, &path, |route| {
        output_interface(route) == Some(ifindex)
    })
    .await
}

/// The addresses on `ifindex`.
pub(super) async fn addresses(
    handle: Handle,
    path: String,
    ifindex: u32,
) -> Result<Vec<IpAddr>, NetnsError> {
    let mut found = Vec::new();
    let mut messages = handle
        .address()
        .get()
        .set_link_index_filter(ifindex)
        .execute();
    while let Some(message) = messages
        .try_next()
        .await
        .map_err(|e| netlink_error(&path, "cannot list addresses".into(), e))?
    {
        if message.header.index != ifindex {
            continue;
        }
        found.extend(message.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        }));
    }
    Ok(found)
}
