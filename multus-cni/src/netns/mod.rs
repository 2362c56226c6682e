//! Network namespace inspection and route changes. `setns` happens only on a
//! short-lived thread made for the purpose, never on the caller's thread.

pub mod inspect;
mod netlink;

use std::fs::File;

use async_trait::async_trait;
use std::net::IpAddr;

use multus_core::seams::{DefaultRoute, NetnsError, NetnsOps};
use nix::errno::Errno;
use nix::sched::{CloneFlags, setns};

/// Inspects namespaces by entering them on a dedicated thread.
#[derive(Clone, Copy, Debug, Default)]
pub struct NetnsInspector;

impl NetnsInspector {
    /// Run `work` inside the network namespace at `path`, on a fresh OS thread that is
    /// discarded afterwards.
    pub fn run_in<T, F>(path: &str, work: F) -> Result<T, NetnsError>
    where
        F: FnOnce() -> Result<T, NetnsError> + Send + 'static,
        T: Send + 'static,
    {
        let no_netns = |reason: String| NetnsError::NoSuchNetns {
            path: path.to_owned(),
            reason,
        };
        let file = File::open(path).map_err(|e| no_netns(e.to_string()))?;
        let owned_path = path.to_owned();
        std::thread::Builder::new()
            .name("netns".into())
            .spawn(move || {
                setns(&file, CloneFlags::CLONE_NEWNET).map_err(|e| NetnsError::NoSuchNetns {
                    path: owned_path,
                    reason: format!("not a network namespace: {e}"),
                })?;
                work()
            })
            .map_err(|e| NetnsError::Other {
                path: path.to_owned(),
                reason: format!("cannot start namespace thread: {e}"),
            })?
            .join()
            .map_err(|_| NetnsError::Other {
                path: path.to_owned(),
                reason: "namespace thread failed".into(),
            })?
    }
}

/// Whether `name` exists in the calling thread's network namespace.
fn link_exists_here(path: &str, name: &str) -> Result<bool, NetnsError> {
    match nix::net::if_::if_nametoindex(name) {
        Ok(_) => Ok(true),
        Err(Errno::ENODEV) => Ok(false),
        Err(e) => Err(NetnsError::Other {
            path: path.to_owned(),
            reason: format!("cannot look up interface {name}: {e}"),
        }),
    }
}

#[async_trait]
impl NetnsOps for NetnsInspector {
    async fn link_exists(&self, netns: &str, ifname: &str) -> Result<bool, NetnsError> {
        let name = ifname.to_owned();
        let path = netns.to_owned();
        Self::run_in(netns, move || link_exists_here(&path, &name))
    }

    async fn existing_links(
        &self,
        netns: &str,
        names: &[String],
    ) -> Result<Vec<String>, NetnsError> {
        let names = names.to_vec();
        let path = netns.to_owned();
        Self::run_in(netns, move || {
            let mut existing = Vec::new();
            for name in names {
                if link_exists_here(&path, &name)? {
                    existing.push(name);
                }
            }
            Ok(existing)
        })
    }

    async fn link_addresses(
        &self,
        netns: &str,
        ifname: &str,
    ) -> Result<Option<Vec<IpAddr>>, NetnsError> {
        let name = ifname.to_owned();
        let path = netns.to_owned();
        Self::run_in(netns, move || {
            if !link_exists_here(&path, &name)? {
                return Ok(None);
            }
            let index = netlink::index_of(&path, &name)?;
            netlink::with_handle(&path, |handle| {
                netlink::addresses(handle, path.clone(), index)
            })
            .map(Some)
        })
    }

    async fn default_routes(&self, netns: &str) -> Result<Vec<DefaultRoute>, NetnsError> {
        let path = netns.to_owned();
        Self::run_in(netns, move || {
            netlink::with_handle(&path, |handle| {
                netlink::default_routes(handle, path.clone())
            })
        })
    }

    async fn replace_default_route(
        &self,
        netns: &str,
        ifname: &str,
        gateway: IpAddr,
    ) -> Result<(), NetnsError> {
        let name = ifname.to_owned();
        let path = netns.to_owned();
        Self::run_in(netns, move || {
            let index = netlink::index_of(&path, &name)?;
            netlink::with_handle(&path, |handle| {
                netlink::replace_default_route(handle, path.clone(), index, gateway)
            })
        })
    }

    async fn remove_default_routes(&self, netns: &str, ifname: &str) -> Result<(), NetnsError> {
        let name = ifname.to_owned();
        let path = netns.to_owned();
        Self::run_in(netns, move || {
            let index = netlink::index_of(&path, &name)?;
            netlink::with_handle(&path, |handle| {
                netlink::remove_default_routes(handle, path.clone(), index)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_namespace_is_reported() {
        let err = pollster::block_on(NetnsInspector.link_exists("/nonexistent/netns", "eth0"))
            .unwrap_err();
        assert!(matches!(err, NetnsError::NoSuchNetns { .. }));
    }

    #[test]
    fn a_regular_file_is_not_a_namespace() {
        let file = tempfile::NamedTempFile::new().unwrap();
        let path = file.path().to_str().unwrap();
        let err = pollster::block_on(NetnsInspector.link_exists(path, "eth0")).unwrap_err();
        assert!(matches!(err, NetnsError::NoSuchNetns { .. }), "{err:?}");
    }

    #[test]
    fn loopback_exists_in_our_own_namespace() {
        // Needs CAP_SYS_ADMIN for setns, which the test suite runs with.
        let exists = pollster::block_on(NetnsInspector.link_exists("/proc/self/ns/net", "lo"));
        assert_eq!(exists, Ok(true));
        let missing =
            pollster::block_on(NetnsInspector.link_exists("/proc/self/ns/net", "nosuchif0"));
        assert_eq!(missing, Ok(false));
        let names = vec!["nosuchif0".to_owned(), "lo".to_owned()];
        let existing =
            pollster::block_on(NetnsInspector.existing_links("/proc/self/ns/net", &names));
        assert_eq!(existing, Ok(vec!["lo".to_owned()]));
    }
}
