//! A read-only look inside a network namespace: every link with its addresses, and the
//! routes of the main table, read over rtnetlink on a namespace thread of its own
//! ([`NetnsInspector::run_in`]). Nothing is changed; operators' tools (`multus-ctl pod`)
//! compare this with what multus recorded.

use std::net::IpAddr;

use futures_util::TryStreamExt;
use multus_core::seams::NetnsError;
use netlink_packet_route::AddressFamily;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use netlink_packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use rtnetlink::Handle;

use super::NetnsInspector;
use super::netlink::{main_table_routes, with_handle};

/// What a network namespace holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetnsSnapshot {
    /// The links, by interface index.
    pub links: Vec<LinkInfoView>,
    /// The routes of the main table, IPv4 first, in the kernel's order.
    pub routes: Vec<RouteView>,
}

impl NetnsSnapshot {
    /// The link named `name`.
    pub fn link(&self, name: &str) -> Option<&LinkInfoView> {
        self.links.iter().find(|l| l.name == name)
    }
}

/// One link of the namespace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LinkInfoView {
    /// Interface index.
    pub index: u32,
    /// Interface name.
    pub name: String,
    /// Hardware address, `aa:bb:...`, when the link has one.
    pub mac: Option<String>,
    /// MTU.
    pub mtu: Option<u32>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// The link kind (`veth`, `macvlan`, ...) when the kernel reports one.
    pub kind: Option<String>,
    /// Its addresses, in the kernel's order.
    pub addresses: Vec<AddressView>,
}

/// One address of a link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AddressView {
    /// The address (`IFA_LOCAL` when present, else `IFA_ADDRESS`).
    pub address: IpAddr,
    /// Prefix length.
    pub prefix_len: u8,
}

impl AddressView {
    /// `address/prefix`.
    pub fn cidr(&self) -> String {
        format!("{}/{}", self.address, self.prefix_len)
    }

    /// An IPv6 link-local address (`fe80::/10`), which the kernel adds by itself.
    pub fn is_link_local(&self) -> bool {
        match self.address {
            IpAddr::V6(v6) => (v6.segments()[0] & 0xffc0) == 0xfe80,
            IpAddr::V4(v4) => v4.is_link_local(),
        }
    }
}

/// One route of the main table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteView {
    /// Destination address; `None` for a default route.
    pub destination: Option<IpAddr>,
    /// Destination prefix length (0 for a default route).
    pub prefix_len: u8,
    /// Next hop.
    pub gateway: Option<IpAddr>,
    /// Output interface name.
    pub ifname: Option<String>,
    /// Metric (`RTA_PRIORITY`).
    pub metric: Option<u32>,
    /// IPv4 (else IPv6).
    pub ipv4: bool,
}

impl RouteView {
    /// Whether this is a default route.
    pub fn is_default(&self) -> bool {
        self.prefix_len == 0
    }

    /// `default` or `address/prefix`.
    pub fn destination_text(&self) -> String {
        match self.destination {
            _ if self.is_default() => "default".to_owned(),
            Some(ip) => format!("{ip}/{}", self.prefix_len),
            None => "default".to_owned(),
        }
    }
}

/// Read the links, addresses and main-table routes of the namespace at `path`.
///
/// Fails with [`NetnsError::NoSuchNetns`] when `path` is not a network namespace.
pub fn inspect_netns(path: &str) -> Result<NetnsSnapshot, NetnsError> {
    let owned = path.to_owned();
    NetnsInspector::run_in(path, move || {
        with_handle(&owned, |handle| snapshot(handle, owned.clone()))
    })
}

async fn snapshot(handle: Handle, path: String) -> Result<NetnsSnapshot, NetnsError> {
    let failed = |what: &str, e: rtnetlink::Error| NetnsError::Other {
        path: path.clone(),
        reason: format!("{what}: {e}"),
    };
    let mut links = Vec::new();
    let mut stream = handle.link().get().execute();
    while let Some(message) = stream
        .try_next()
        .await
        .map_err(|e| failed("cannot list links", e))?
    {
        links.push(link_view(&message));
    }
    let mut addresses = handle.address().get().execute();
    while let Some(message) = addresses
        .try_next()
        .await
        .map_err(|e| failed("cannot list addresses", e))?
    {
        if let Some(view) = address_view(&message)
            && let Some(link) = links.iter_mut().find(|l| l.index == message.header.index)
        {
            link.addresses.push(view);
        }
    }
    links.sort_by_key(|l| l.index);
    let routes = main_table_routes(&handle, &path)
        .await?
        .iter()
        .map(|route| route_view(route, &links))
        .collect();
    Ok(NetnsSnapshot { links, routes })
}

fn link_view(message: &LinkMessage) -> LinkInfoView {
    let mut view = LinkInfoView {
        index: message.header.index,
        up: message.header.flags.contains(LinkFlags::Up),
        ..LinkInfoView::default()
    };
    for attribute in &message.attributes {
        match attribute {
            LinkAttribute::IfName(name) => view.name = name.clone(),
            LinkAttribute::Address(bytes) if !bytes.is_empty() => {
                view.mac = Some(
                    bytes
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect::<Vec<_>>()
                        .join(":"),
                );
            }
            LinkAttribute::Mtu(mtu) => view.mtu = Some(*mtu),
            LinkAttribute::LinkInfo(infos) => {
                view.kind = infos.iter().find_map(|info| match info {
                    LinkInfo::Kind(kind) => Some(kind.to_string()),
                    _ => None,
                });
            }
            _ => {}
        }
    }
    if view.name.is_empty() {
        view.name = format!("if{}", view.index);
    }
    view
}

fn address_view(message: &AddressMessage) -> Option<AddressView> {
    let find = |local: bool| {
        message.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(ip) if local => Some(*ip),
            AddressAttribute::Address(ip) if !local => Some(*ip),
            _ => None,
        })
    };
    let address = find(true).or_else(|| find(false))?;
    Some(AddressView {
        address,
        prefix_len: message.header.prefix_len,
    })
}

fn route_address(address: &RouteAddress) -> Option<IpAddr> {
    match address {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn route_view(route: &RouteMessage, links: &[LinkInfoView]) -> RouteView {
    let mut view = RouteView {
        destination: None,
        prefix_len: route.header.destination_prefix_length,
        gateway: None,
        ifname: None,
        metric: None,
        ipv4: route.header.address_family == AddressFamily::Inet,
    };
    for attribute in &route.attributes {
        match attribute {
            RouteAttribute::Destination(address) => view.destination = route_address(address),
            RouteAttribute::Gateway(address) => view.gateway = route_address(address),
            RouteAttribute::Oif(index) => {
                view.ifname = Some(
                    links
                        .iter()
                        .find(|l| l.index == *index)
                        .map_or_else(|| format!("if{index}"), |l| l.name.clone()),
                );
            }
            RouteAttribute::Priority(metric) => view.metric = Some(*metric),
            _ => {}
        }
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_namespace_is_reported() {
        let err = inspect_netns("/nonexistent/netns").unwrap_err();
        assert!(matches!(err, NetnsError::NoSuchNetns { .. }), "{err:?}");
    }

    #[test]
    fn our_own_namespace_has_loopback_with_its_address() {
        // Needs CAP_SYS_ADMIN for setns, which the test suite runs with.
        let snapshot = inspect_netns("/proc/self/ns/net").unwrap();
        let lo = snapshot.link("lo").expect("lo");
        assert_eq!(lo.mac.as_deref(), Some("00:00:00:00:00:00"));
        if lo.up {
            assert!(
                lo.addresses
                    .iter()
                    .any(|a| a.address == IpAddr::V4(std::net::Ipv4Addr::LOCALHOST)),
                "{lo:?}"
            );
        }
    }

    #[test]
    fn route_destinations_are_rendered() {
        let route = RouteView {
            destination: Some("10.1.0.0".parse().unwrap()),
            prefix_len: 24,
            gateway: None,
            ifname: Some("eth0".into()),
            metric: None,
            ipv4: true,
        };
        assert_eq!(route.destination_text(), "10.1.0.0/24");
        let default = RouteView {
            destination: Some("0.0.0.0".parse().unwrap()),
            prefix_len: 0,
            ..route
        };
        assert!(default.is_default());
        assert_eq!(default.destination_text(), "default");
        let ll = AddressView {
            address: "fe80::1".parse().unwrap(),
            prefix_len: 64,
        };
        assert!(ll.is_link_local());
        assert_eq!(ll.cidr(), "fe80::1/64");
    }
}
