//! [`Harness`]: what nearly every test starts from, and the standard networks of the
//! real-plugin tests.

use crate::binaries::Binaries;
use crate::fixtures::{self, MultusConfig, Subnet, TestDirs};
use crate::netns::{Netns, Node};
use crate::runtime::{Runtime, Sandbox};

/// A node namespace, the per-test directories and a runtime driving `multus` on the node.
///
/// Fields drop in declaration order: the namespaces go first, then the directories.
#[derive(Debug)]
pub struct Harness {
    /// The node namespace (and every pod namespace made on it).
    pub node: Node,
    /// Per-test directories (cniDir, NADs, host-local dataDir, binDir, records).
    pub dirs: TestDirs,
    /// Runs `multus` inside the node namespace.
    pub runtime: Runtime,
}

impl Harness {
    /// A fresh node with fresh directories; panics when the machine cannot run the tests.
    pub fn new() -> Self {
        let binaries = Binaries::get();
        let node = Node::new();
        let dirs = TestDirs::new();
        let runtime = Runtime::new(node.name(), binaries);
        Self {
            node,
            dirs,
            runtime,
        }
    }

    /// A fresh node with [`Harness::standard_networks`] at `version`, one pod, and the
    /// multus configuration asking for `networks` (no annotation when empty).
    pub fn with_pod(version: &str, networks: &str) -> (Self, Sandbox, serde_json::Value) {
        let h = Self::new();
        let nets = h.standard_networks(version);
        let mut conf = h.multus_config(version, &nets);
        if !networks.is_empty() {
            conf = conf.networks(networks);
        }
        let pod = h.sandbox();
        (h, pod, conf.build())
    }

    /// A pod sandbox with a fresh, empty network namespace on this node.
    pub fn sandbox(&self) -> Sandbox {
        Sandbox::new(self.node.add_pod_netns())
    }

    /// The usual networks of the real-plugin tests, at `version`:
    ///
    /// - the cluster network [`CLUSTER_NETWORK`]: bridge plugin on `mrs-cbr0`,
    ///   `isGateway`, host-local (becomes `eth0`);
    /// - NAD `default/`[`MACVLAN_NAD`]: macvlan (bridge mode) whose `master` is the bridge
    ///   [`NODE_BRIDGE`] created here in the node namespace;
    /// - NAD `default/`[`BRIDGE_NAD`]: bridge plugin on `mrs-br1`.
    ///
    /// Each gets a subnet of its own, returned; [`Harness::multus_config`] then builds the
    /// configuration, to which the test adds the pod's annotations.
    pub fn standard_networks(&self, version: &str) -> StandardNetworks {
        self.node.add_bridge(NODE_BRIDGE);
        let nets = StandardNetworks {
            cluster: Subnet::unique(),
            macnet: Subnet::unique(),
            brnet: Subnet::unique(),
        };
        let dirs = &self.dirs;
        dirs.write_nad_json(
            MACVLAN_NAD,
            &fixtures::macvlan_conf(version, MACVLAN_NAD, NODE_BRIDGE, nets.macnet, dirs),
        );
        dirs.write_nad_json(
            BRIDGE_NAD,
            &fixtures::bridge_conf(version, BRIDGE_NAD, "mrs-br1", nets.brnet, false, dirs),
        );
        nets
    }

    /// The multus configuration at `version` with [`CLUSTER_NETWORK`] as cluster network.
    pub fn multus_config(&self, version: &str, nets: &StandardNetworks) -> MultusConfig {
        let cluster = fixtures::bridge_conf(
            version,
            CLUSTER_NETWORK,
            "mrs-cbr0",
            nets.cluster,
            true,
            &self.dirs,
        );
        MultusConfig::new(version, &self.dirs, cluster)
    }

    /// [`fixtures::assert_nothing_leaked`] for these pods.
    pub fn assert_nothing_leaked(&self, pods: &[&Sandbox]) {
        let netns: Vec<&Netns> = pods.iter().map(|p| &p.netns).collect();
        fixtures::assert_nothing_leaked(&self.node, &self.dirs, &netns);
    }
}

impl Harness {
    /// [`fixtures::assert_released`] for these pods: no interface and no lease left,
    /// whatever multus keeps on disk.
    pub fn assert_released(&self, pods: &[&Sandbox]) {
        let netns: Vec<&Netns> = pods.iter().map(|p| &p.netns).collect();
        fixtures::assert_released(&self.node, &self.dirs, &netns);
    }
}

/// Name of the cluster network of [`Harness::standard_networks`].
pub const CLUSTER_NETWORK: &str = "cluster";
/// The macvlan NAD of [`Harness::standard_networks`].
pub const MACVLAN_NAD: &str = "macnet";
/// The bridge-plugin NAD of [`Harness::standard_networks`].
pub const BRIDGE_NAD: &str = "brnet";
/// The bridge made in the node namespace as macvlan `master`.
pub const NODE_BRIDGE: &str = "mrs-br0";

/// The subnets of [`Harness::standard_networks`].
#[derive(Debug, Clone, Copy)]
pub struct StandardNetworks {
    /// Cluster network (eth0).
    pub cluster: Subnet,
    /// [`MACVLAN_NAD`].
    pub macnet: Subnet,
    /// [`BRIDGE_NAD`].
    pub brnet: Subnet,
}

impl Default for Harness {
    fn default() -> Self {
        Self::new()
    }
}
