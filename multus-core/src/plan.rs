//! Delegate planning: from the Multus configuration, the request and the pod's
//! annotations to the ordered list of delegates to run, each with its interface name,
//! exact config, runtimeConfig and CNI_ARGS.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cni::CniArgs;
use crate::config::MultusConf;
use crate::delegate::{DelegateConfig, DelegateConfigError};
use crate::nad::annotation::{AnnotationError, validate_ifname};
use crate::nad::manifest::{find_config_by_name, unparsable_configs};
use crate::nad::{
    DEFAULT_NETWORK_ANNOTATION, NETWORKS_ANNOTATION, NetworkSelectionElement,
    parse_networks_annotation,
};
use crate::request::CniRequest;
use crate::seams::{ApiError, ClusterApi, ConfigFiles};

pub mod chain;
pub mod guard;
mod prefetch;

/// The configuration key of the networks every pod gets, for messages.
const DEFAULT_NETWORKS: &str = "defaultNetworks";

/// One delegate to run, with everything needed to run it again on DEL.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PlannedDelegate {
    /// The network's name in network-status and events: `namespace/nad` for NADs,
    /// the CNI `name` otherwise.
    pub network: String,
    /// The interface name inside the pod.
    pub ifname: String,
    /// Whether this is the cluster network (its result is returned to the runtime).
    pub cluster_network: bool,
    /// The exact config.
    pub config: DelegateConfig,
    /// The runtimeConfig candidates; each plugin gets the keys it declares as
    /// capabilities.
    pub runtime_config: Map<String, Value>,
    /// `CNI_ARGS` for DEL and CHECK.
    pub cni_args: String,
    /// `CNI_ARGS` for ADD (adds the legacy `IP=` and `MAC=` keys).
    pub add_cni_args: String,
    /// Gateways requested with `default-route` (`Some(vec![])` is meaningful).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_route: Option<Vec<IpAddr>>,
    /// The NAD's device-plugin resource name, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// The device taken from `resource_name` for this sandbox, once assigned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<crate::devices::AssignedDevice>,
    /// The auxiliary CNI chain (`auxiliaryCNIChainName`): it runs as `net<index>` but
    /// creates no interface of its own, so it gets no network-status entry and no event,
    /// and its interface name is neither checked in the pod nor reserved.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auxiliary: bool,
}

/// The ordered delegates of one sandbox.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Cluster network first, then static delegates, defaultNetworks, annotation
    /// networks and the auxiliary chain, in order.
    pub delegates: Vec<PlannedDelegate>,
}

impl Plan {
    /// Refuse a delegate whose config has no CNI network name (missing or empty `name`
    /// of a single config or of a list), before anything runs, as libcni refuses to run
    /// it. NAD configs never fail this: their name is injected from the NAD.
    pub fn check_network_names(&self) -> Result<(), PlanError> {
        match self
            .delegates
            .iter()
            .position(|d| d.config.name().is_empty())
        {
            None => Ok(()),
            Some(position) => Err(PlanError::MissingNetworkName {
                position,
                plugin_types: self.delegates[position].config.plugin_types().join(", "),
            }),
        }
    }
}

/// Why no plan could be made. Nothing has run when this is returned.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// A pod annotation does not parse.
    #[error("invalid annotation {annotation}: {source}")]
    Annotation {
        /// The annotation key.
        annotation: &'static str,
        /// The parse error.
        source: AnnotationError,
    },
    /// A network does not exist.
    #[error("cannot find network {network:?}: {detail}")]
    NetworkNotFound {
        /// The name as referenced.
        network: String,
        /// What was searched.
        detail: String,
    },
    /// A network's config is unusable.
    #[error("network {network:?} has an invalid config: {source}")]
    InvalidNetwork {
        /// The network.
        network: String,
        /// Why.
        source: DelegateConfigError,
    },
    /// The API failed while resolving a network.
    #[error("cannot get network {network:?}: {source}")]
    Api {
        /// The network.
        network: String,
        /// The API error.
        source: ApiError,
    },
    /// A network selected by the pod is refused before anything runs (multus as a
    /// delegate, a type outside `allowedPluginTypes`, a name the plugins refuse).
    #[error("network {network:?} is refused: {source}")]
    Refused {
        /// The network.
        network: String,
        /// Why.
        source: guard::GuardError,
    },
    /// The pod's annotations name more networks than `maxNetworksPerPod`.
    #[error(
        "the pod requests {count} networks, more than maxNetworksPerPod ({max}); no network was looked up"
    )]
    TooManyNetworks {
        /// Networks requested.
        count: usize,
        /// The cap.
        max: usize,
    },
    /// Namespace isolation forbids the reference.
    #[error(
        "namespace isolation enabled, annotation violates permission: pod is in namespace {pod_namespace} but refers to network {network:?} in namespace {target_namespace}"
    )]
    Isolation {
        /// The pod's namespace.
        pod_namespace: String,
        /// The referenced namespace.
        target_namespace: String,
        /// The network.
        network: String,
    },
    /// An interface name is invalid.
    #[error("network {network:?}: invalid interface name {ifname:?}: {reason}")]
    InvalidIfname {
        /// The network.
        network: String,
        /// The name.
        ifname: String,
        /// Why.
        reason: String,
    },
    /// Two delegates would create the same interface.
    #[error("interface {ifname:?} is requested by both {first:?} and {second:?}")]
    DuplicateIfname {
        /// The name.
        ifname: String,
        /// The first network.
        first: String,
        /// The second network.
        second: String,
    },
    /// The chained plugins of a `.conflist` file cannot be loaded.
    #[error("network {network:?}: {source}")]
    Chain {
        /// The network as referenced (the file path).
        network: String,
        /// Why.
        source: chain::ChainError,
    },
    /// `auxiliaryCNIChainName` is set but `clusterNetwork` is not a path (upstream's
    /// message).
    #[error(
        "auxiliary chain used but ClusterNetwork must be a path, and it is not a path: {cluster_network}"
    )]
    AuxiliaryChainWithoutPath {
        /// `clusterNetwork` (empty when only `delegates` are configured).
        cluster_network: String,
    },
    /// A delegate config without a CNI network name (libcni: `missing network name`).
    #[error(
        "missing network name: delegate {position} (plugin type {plugin_types}) has no \"name\"; every delegate config needs a non-empty CNI network name"
    )]
    MissingNetworkName {
        /// Its position among the delegates: 0 is the cluster network, and static
        /// `delegates` entries keep their index.
        position: usize,
        /// Its plugin types, comma-separated.
        plugin_types: String,
    },
    /// More than one default gateway of one family requested.
    #[error(
        "multus does not support ECMP for default-route: {count} IPv{family} gateways requested"
    )]
    Ecmp {
        /// 4 or 6.
        family: u8,
        /// How many.
        count: usize,
    },
}

impl PlanError {
    /// The network this error concerns, if any.
    pub fn network(&self) -> Option<&str> {
        match self {
            Self::NetworkNotFound { network, .. }
            | Self::InvalidNetwork { network, .. }
            | Self::Api { network, .. }
            | Self::Isolation { network, .. }
            | Self::Refused { network, .. }
            | Self::InvalidIfname { network, .. }
            | Self::Chain { network, .. } => Some(network),
            Self::DuplicateIfname { second, .. } => Some(second),
            Self::Annotation { .. }
            | Self::TooManyNetworks { .. }
            | Self::MissingNetworkName { .. }
            | Self::Ecmp { .. }
            | Self::AuxiliaryChainWithoutPath { .. } => None,
        }
    }
}

/// A network resolved to its config.
struct Resolved {
    network: String,
    config: DelegateConfig,
    resource_name: Option<String>,
    auxiliary: bool,
}

impl Resolved {
    /// A network named after its config's CNI `name`, not from a NAD.
    fn named_by_config(config: DelegateConfig) -> Self {
        Self {
            network: config.name().to_owned(),
            config,
            resource_name: None,
            auxiliary: false,
        }
    }
}

/// One network of a plan being built; `None` for a network left out of a DEL plan.
type PlanEntry = Option<(Resolved, Option<NetworkSelectionElement>)>;

/// Builds the plan for one request.
pub struct Planner<'a> {
    conf: &'a MultusConf,
    request: &'a CniRequest,
    api: &'a dyn ClusterApi,
    files: &'a dyn ConfigFiles,
    prefetched: prefetch::Prefetched,
    for_del: bool,
}

impl std::fmt::Debug for Planner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Planner")
            .field("container_id", &self.request.container_id)
            .finish_non_exhaustive()
    }
}

impl<'a> Planner<'a> {
    /// A planner over the given sources.
    pub fn new(
        conf: &'a MultusConf,
        request: &'a CniRequest,
        api: &'a dyn ClusterApi,
        files: &'a dyn ConfigFiles,
    ) -> Self {
        Self {
            conf,
            request,
            api,
            files,
            prefetched: prefetch::Prefetched::default(),
            for_del: false,
        }
    }

    /// A planner for a DEL without a record: a `defaultNetworks` entry that does not
    /// resolve any more is left out (WARN) instead of failing the plan, since nothing
    /// can have been attached for it without a record saying so. The interface names
    /// of the other networks stay what ADD gave them.
    pub fn for_del(mut self) -> Self {
        self.for_del = true;
        self
    }

    /// Plan the delegates for a pod with these annotations (`None`: pod unknown).
    pub async fn plan(
        &self,
        annotations: Option<&BTreeMap<String, String>>,
    ) -> Result<Plan, PlanError> {
        let cluster_selection = self.default_network_override(annotations)?;
        // Refuse bad annotations before any API read, then fetch every NAD concurrently.
        let selections = self.annotation_networks(annotations)?;
        self.check_selections(cluster_selection.as_ref(), &selections)?;
        let references = self.nad_references(cluster_selection.as_ref(), &selections);
        self.prefetched.fetch(self.api, references).await;
        let entries = self.resolve_entries(cluster_selection, selections).await?;

        let delegates = entries
            .into_iter()
            .enumerate()
            .filter_map(|(index, entry)| entry.map(|e| (index, e)))
            .map(|(index, (resolved, selection))| self.delegate(index, resolved, selection))
            .collect::<Result<Vec<_>, _>>()?;
        check_ifnames(&delegates)?;
        check_ecmp(&delegates)?;
        Ok(Plan { delegates })
    }

    /// The `v1.multus-cni.io/default-network` annotation's selection, if set.
    fn default_network_override(
        &self,
        annotations: Option<&BTreeMap<String, String>>,
    ) -> Result<Option<NetworkSelectionElement>, PlanError> {
        let Some(value) = annotations
            .and_then(|a| a.get(DEFAULT_NETWORK_ANNOTATION))
            .filter(|v| !v.trim().is_empty())
        else {
            return Ok(None);
        };
        crate::nad::annotation::parse_default_network_annotation(value, &self.conf.multus_namespace)
            .map(Some)
            .map_err(|source| PlanError::Annotation {
                annotation: DEFAULT_NETWORK_ANNOTATION,
                source,
            })
    }

    /// The pod may ask for this many networks, in these namespaces.
    fn check_selections(
        &self,
        cluster_selection: Option<&NetworkSelectionElement>,
        selections: &[NetworkSelectionElement],
    ) -> Result<(), PlanError> {
        let requested = selections.len() + usize::from(cluster_selection.is_some());
        if requested > self.conf.max_networks_per_pod {
            return Err(PlanError::TooManyNetworks {
                count: requested,
                max: self.conf.max_networks_per_pod,
            });
        }
        if let Some(selection) = cluster_selection
            && self.conf.isolate_default_network
        {
            self.check_isolation(selection, Some(&self.conf.multus_namespace))?;
        }
        for selection in selections {
            self.check_isolation(selection, None)?;
        }
        Ok(())
    }

    /// Every network of the plan in order: the cluster network, the static delegates,
    /// `defaultNetworks`, the annotation's networks, the auxiliary chain. `None`: a
    /// network left out of a DEL plan; it keeps its position (`net<index>`).
    async fn resolve_entries(
        &self,
        cluster_selection: Option<NetworkSelectionElement>,
        selections: Vec<NetworkSelectionElement>,
    ) -> Result<Vec<PlanEntry>, PlanError> {
        let mut entries: Vec<PlanEntry> = Vec::new();
        match cluster_selection {
            Some(selection) => {
                let resolved = self
                    .resolve_nad(&selection.namespace, &selection.name)
                    .await?;
                entries.push(Some((resolved, Some(selection))));
            }
            None => entries.push(Some((self.resolve_cluster_network().await?, None))),
        }
        for value in self.conf.delegates.iter().skip(1) {
            entries.push(Some((self.static_delegate(value)?, None)));
        }
        if self.gets_default_networks() {
            for name in &self.conf.default_networks {
                entries.push(self.default_network_entry(name).await?);
            }
        }
        for selection in selections {
            let resolved = self
                .resolve_nad(&selection.namespace, &selection.name)
                .await?;
            entries.push(Some((resolved, Some(selection))));
        }
        if let Some(chain) = self.auxiliary_chain()? {
            entries.push(Some((chain, None)));
        }
        Ok(entries)
    }

    /// One `defaultNetworks` entry; for DEL without a record, `None` when it does not
    /// resolve (nothing can have been attached for it).
    async fn default_network_entry(&self, name: &str) -> Result<PlanEntry, PlanError> {
        match self.resolve_reference(DEFAULT_NETWORKS, name).await {
            Ok(resolved) => Ok(Some((resolved, None))),
            Err(error) if self.for_del => {
                tracing::warn!(
                    network = %name, %error,
                    "defaultNetworks entry does not resolve and no record of this sandbox exists: nothing can have been attached for it, not deleting it"
                );
                Ok(None)
            }
            Err(error) => Err(error),
        }
    }

    /// The networks the configuration alone determines (cluster network, static
    /// delegates, `defaultNetworks`), as `(network, config)`: what STATUS and GC reach
    /// when no pod is involved.
    pub async fn configured_networks(&self) -> Result<Vec<(String, DelegateConfig)>, PlanError> {
        let mut networks = vec![self.resolve_cluster_network().await?];
        for value in self.conf.delegates.iter().skip(1) {
            networks.push(self.static_delegate(value)?);
        }
        for name in &self.conf.default_networks {
            networks.push(self.resolve_reference(DEFAULT_NETWORKS, name).await?);
        }
        Ok(networks
            .into_iter()
            .map(|r| {
                (
                    r.network,
                    r.config.with_default_version(self.conf.cni_version),
                )
            })
            .collect())
    }

    fn gets_default_networks(&self) -> bool {
        !self
            .conf
            .system_namespaces
            .contains(&self.request.pod.namespace)
    }

    fn pod_namespace(&self) -> &str {
        if self.request.pod.namespace.is_empty() {
            "default"
        } else {
            &self.request.pod.namespace
        }
    }

    fn annotation_networks(
        &self,
        annotations: Option<&BTreeMap<String, String>>,
    ) -> Result<Vec<NetworkSelectionElement>, PlanError> {
        let Some(value) = annotations.and_then(|a| a.get(NETWORKS_ANNOTATION)) else {
            return Ok(Vec::new());
        };
        parse_networks_annotation(value, self.pod_namespace()).map_err(|source| {
            PlanError::Annotation {
                annotation: NETWORKS_ANNOTATION,
                source,
            }
        })
    }

    /// With `namespaceIsolation`: a pod may name NADs of its own namespace, of
    /// `globalNamespaces` and of `also_allowed`.
    fn check_isolation(
        &self,
        selection: &NetworkSelectionElement,
        also_allowed: Option<&String>,
    ) -> Result<(), PlanError> {
        let pod_namespace = self.pod_namespace();
        if !self.conf.namespace_isolation
            || selection.namespace == pod_namespace
            || self.conf.global_namespaces.contains(&selection.namespace)
            || also_allowed == Some(&selection.namespace)
        {
            return Ok(());
        }
        Err(PlanError::Isolation {
            pod_namespace: pod_namespace.to_owned(),
            target_namespace: selection.namespace.clone(),
            network: format!("{}/{}", selection.namespace, selection.name),
        })
    }

    async fn resolve_cluster_network(&self) -> Result<Resolved, PlanError> {
        if let Some(first) = self.conf.delegates.first() {
            return self.static_delegate(first);
        }
        let value = self.conf.cluster_network.as_deref().unwrap_or_default();
        self.resolve_reference("clusterNetwork", value).await
    }

    fn static_delegate(&self, value: &Value) -> Result<Resolved, PlanError> {
        let config =
            DelegateConfig::from_value(value).map_err(|source| PlanError::InvalidNetwork {
                network: value
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or("<static delegate>")
                    .to_owned(),
                source,
            })?;
        Ok(Resolved::named_by_config(config))
    }

    /// The auxiliary chain (`auxiliaryCNIChainName`), after every other network:
    /// passthru and the plugins of `<dir of clusterNetwork>/<name>/`. Like upstream, it
    /// is left out when that directory has no plugin, and when loading it fails (logged).
    fn auxiliary_chain(&self) -> Result<Option<Resolved>, PlanError> {
        let Some(name) = self.conf.auxiliary_cni_chain_name.as_deref() else {
            return Ok(None);
        };
        let cluster_network = self.conf.cluster_network.as_deref().unwrap_or_default();
        if !cluster_network.contains('/') {
            return Err(PlanError::AuxiliaryChainWithoutPath {
                cluster_network: cluster_network.to_owned(),
            });
        }
        let dir = chain::auxiliary_chain_dir(self.files, Path::new(cluster_network));
        match chain::auxiliary_chain(self.files, dir, name, self.conf.cni_version) {
            Ok(Some(config)) => Ok(Some(Resolved {
                auxiliary: true,
                ..Resolved::named_by_config(config)
            })),
            Ok(None) => {
                tracing::debug!(chain = name, dir = %dir.display(), "no plugins for the auxiliary CNI chain; not running it");
                Ok(None)
            }
            Err(e) => {
                tracing::error!(chain = name, dir = %dir.display(), error = %e, "cannot load the auxiliary CNI chain; not running it");
                Ok(None)
            }
        }
    }

    /// `clusterNetwork` / `defaultNetworks` resolution, in upstream's order: NAD in
    /// `multusNamespace`, CNI config name in `confDir`, directory, file.
    /// `key` (`clusterNetwork`, `defaultNetworks`) names where `value` comes from.
    async fn resolve_reference(
        &self,
        key: &'static str,
        value: &str,
    ) -> Result<Resolved, PlanError> {
        if !value.contains('/') {
            match self.resolve_nad(&self.conf.multus_namespace, value).await {
                Ok(resolved) => return Ok(resolved),
                Err(PlanError::NetworkNotFound { .. }) => {}
                Err(other) => return Err(other),
            }
            let not_found = |detail| PlanError::NetworkNotFound {
                network: value.to_owned(),
                detail: format!(
                    "{key} {value:?} names no NetworkAttachmentDefinition in namespace {:?} (multusNamespace), and {detail}",
                    self.conf.multus_namespace
                ),
            };
            return self
                .config_by_name(value, value, not_found)
                .map(Resolved::named_by_config);
        }
        let path = Path::new(value);
        if self.files.is_dir(path) {
            let bytes = self.first_config_in_dir(path)?;
            return parse_config(value, &bytes).map(Resolved::named_by_config);
        }
        let bytes = self
            .files
            .read(path)
            .map_err(|e| PlanError::NetworkNotFound {
                network: value.to_owned(),
                detail: format!("cannot read {value}: {e}"),
            })?;
        // A config list file: with libcni's subdirectory chaining, as upstream loads it.
        let config = if value.ends_with(".conflist") {
            chain::conflist_file(self.files, path, &bytes).map_err(|source| match source {
                chain::ChainError::Config(source) => PlanError::InvalidNetwork {
                    network: value.to_owned(),
                    source,
                },
                source => PlanError::Chain {
                    network: value.to_owned(),
                    source,
                },
            })?
        } else {
            parse_config(value, &bytes)?
        };
        Ok(Resolved::named_by_config(config))
    }

    fn first_config_in_dir(&self, dir: &Path) -> Result<Vec<u8>, PlanError> {
        let network = dir.display().to_string();
        let files = self
            .files
            .list_configs(dir)
            .map_err(|e| PlanError::NetworkNotFound {
                network: network.clone(),
                detail: format!("cannot list {network}: {e}"),
            })?;
        // Never pick multus' own generated config (upstream may, and recurses).
        files
            .into_iter()
            .find(|(path, _)| {
                !path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("00-multus"))
            })
            .map(|(_, bytes)| bytes)
            .ok_or_else(|| PlanError::NetworkNotFound {
                network: network.clone(),
                detail: format!("no CNI config files in {network}"),
            })
    }

    /// The config named `name` in `confDir`. When there is none, `not_found` makes the
    /// error from why, as the end of a sentence: "no CNI config named X was found in
    /// DIR (confDir)", naming every file there that does not parse and its error.
    fn config_by_name(
        &self,
        network: &str,
        name: &str,
        not_found: impl FnOnce(String) -> PlanError,
    ) -> Result<DelegateConfig, PlanError> {
        let conf_dir = &self.conf.conf_dir;
        let files = match self.files.list_configs(conf_dir) {
            Ok(files) => files,
            Err(e) => {
                return Err(not_found(format!(
                    "{} (confDir) cannot be listed: {e}",
                    conf_dir.display()
                )));
            }
        };
        let broken = unparsable_configs(&files);
        let broken_text = broken
            .iter()
            .map(|(path, error)| format!("{} does not parse: {error}", path.display()))
            .collect::<Vec<_>>()
            .join("; ");
        let Some(bytes) = find_config_by_name(&files, name) else {
            let mut detail = format!(
                "no CNI config named {name:?} was found in {} (confDir)",
                conf_dir.display()
            );
            if !broken.is_empty() {
                detail.push_str(&format!(", where {broken_text}"));
            }
            return Err(not_found(detail));
        };
        if !broken.is_empty() {
            tracing::warn!(network, broken = %broken_text, "confDir holds CNI config files that do not parse");
        }
        parse_config(network, bytes)
    }

    async fn resolve_nad(&self, namespace: &str, name: &str) -> Result<Resolved, PlanError> {
        let network = format!("{namespace}/{name}");
        let fetched = match self.prefetched.get(namespace, name) {
            Some(answer) => answer,
            None => self.api.network_attachment(namespace, name).await,
        };
        let nad = fetched
            .map_err(|source| PlanError::Api {
                network: network.clone(),
                source,
            })?
            .ok_or_else(|| PlanError::NetworkNotFound {
                network: network.clone(),
                detail: format!(
                    "no network-attachment-definition {name:?} in namespace {namespace:?}"
                ),
            })?;
        let bytes = nad
            .delegate_config()
            .map_err(|e| PlanError::InvalidNetwork {
                network: network.clone(),
                source: DelegateConfigError::NotAnObject(e.to_string()),
            })?;
        let config = match bytes {
            Some(bytes) => parse_config(&network, &bytes)?,
            None => self.config_by_name(&network, name, |detail| PlanError::NetworkNotFound {
                network: network.clone(),
                detail: format!("the NAD has no config and {detail}"),
            })?,
        };
        let config = guard::admit(self.conf, config).map_err(|source| PlanError::Refused {
            network: network.clone(),
            source,
        })?;
        Ok(Resolved {
            network,
            config,
            resource_name: nad.resource_name.clone(),
            auxiliary: false,
        })
    }

    fn delegate(
        &self,
        index: usize,
        resolved: Resolved,
        selection: Option<NetworkSelectionElement>,
    ) -> Result<PlannedDelegate, PlanError> {
        let cluster_network = index == 0;
        let requested = selection.as_ref().and_then(|s| s.interface.clone());
        let ifname = match requested {
            Some(name) => name,
            None if cluster_network => self.request.ifname.clone(),
            None => format!("net{index}"),
        };
        validate_ifname(&ifname).map_err(|e| PlanError::InvalidIfname {
            network: resolved.network.clone(),
            ifname: ifname.clone(),
            reason: e.to_string(),
        })?;
        let mut config = resolved.config.with_default_version(self.conf.cni_version);
        let mut runtime_config = self.conf.runtime_config.clone();
        let base_args = base_cni_args(self.request);
        let mut add_args = base_args.clone();
        if let Some(selection) = &selection {
            if let Some(cni_args) = &selection.cni_args {
                config = config.with_cni_args(cni_args);
            }
            // The cluster network gets only the runtime's values (upstream behaviour).
            if !cluster_network {
                apply_selection(
                    &mut runtime_config,
                    selection,
                    self.conf.allow_runtime_config_from_annotations.as_deref(),
                );
            }
            let allows = |key: &str| {
                self.conf
                    .allow_runtime_config_from_annotations
                    .as_ref()
                    .is_none_or(|allowed| allowed.iter().any(|a| a == key))
            };
            if let Some(mac) = selection.mac.as_ref().filter(|_| allows("mac")) {
                add_args.push("MAC", mac.clone());
            }
            if !selection.ips.is_empty() && allows("ips") {
                add_args.push("IP", selection.ips.join(","));
            }
        }
        Ok(PlannedDelegate {
            network: resolved.network,
            ifname,
            cluster_network,
            config,
            runtime_config,
            cni_args: base_args.to_string(),
            add_cni_args: add_args.to_string(),
            default_route: selection.and_then(|s| s.default_route),
            resource_name: resolved.resource_name,
            device: None,
            auxiliary: resolved.auxiliary,
        })
    }
}

fn parse_config(network: &str, bytes: &[u8]) -> Result<DelegateConfig, PlanError> {
    DelegateConfig::from_bytes(bytes).map_err(|source| PlanError::InvalidNetwork {
        network: network.to_owned(),
        source,
    })
}

/// The CNI_ARGS every delegate gets: upstream's keys in upstream's order, then the
/// runtime's own keys.
pub fn base_cni_args(request: &CniRequest) -> CniArgs {
    let pod = &request.pod;
    let mut args = CniArgs::default();
    args.push("IgnoreUnknown", "true");
    args.push("K8S_POD_NAMESPACE", pod.namespace.clone());
    args.push("K8S_POD_NAME", pod.name.clone());
    args.push("K8S_POD_INFRA_CONTAINER_ID", pod.infra_container_id.clone());
    args.push("K8S_POD_UID", pod.uid.clone());
    for (key, value) in request.args.pairs() {
        if key != "IgnoreUnknown" {
            args.merge(key, value);
        }
    }
    args
}

/// Override runtimeConfig keys with what the annotation asked for this network; with
/// `allowRuntimeConfigFromAnnotations`, only the keys it lists (the others are ignored,
/// logged at debug level).
fn apply_selection(
    runtime_config: &mut Map<String, Value>,
    selection: &NetworkSelectionElement,
    allowed: Option<&[String]>,
) {
    let mut set = |key: &str, value: Value| {
        if allowed.is_some_and(|allowed| !allowed.iter().any(|a| a == key)) {
            tracing::debug!(key, network = %selection.name, "runtimeConfig key from the annotation ignored: not in allowRuntimeConfigFromAnnotations");
            return;
        }
        runtime_config.insert(key.to_owned(), value);
    };
    if let Some(port_mappings) = &selection.port_mappings {
        set("portMappings", port_mappings.clone());
    }
    if let Some(bandwidth) = &selection.bandwidth {
        set("bandwidth", bandwidth.clone());
    }
    if !selection.ips.is_empty() {
        set("ips", Value::from(selection.ips.clone()));
    }
    if let Some(mac) = &selection.mac {
        set("mac", Value::from(mac.clone()));
    }
    if let Some(guid) = &selection.infiniband_guid {
        set("infinibandGUID", Value::from(guid.clone()));
    }
    if let Some(device_id) = &selection.device_id {
        set("deviceID", Value::from(device_id.clone()));
    }
}

fn check_ifnames(delegates: &[PlannedDelegate]) -> Result<(), PlanError> {
    let mut seen: HashMap<&str, &str> = HashMap::new();
    // The auxiliary chain creates no interface: its name collides with nothing.
    for delegate in delegates.iter().filter(|d| !d.auxiliary) {
        if let Some(first) = seen.insert(&delegate.ifname, &delegate.network) {
            return Err(PlanError::DuplicateIfname {
                ifname: delegate.ifname.clone(),
                first: first.to_owned(),
                second: delegate.network.clone(),
            });
        }
    }
    Ok(())
}

fn check_ecmp(delegates: &[PlannedDelegate]) -> Result<(), PlanError> {
    let gateways: Vec<&IpAddr> = delegates
        .iter()
        .filter_map(|d| d.default_route.as_ref())
        .flatten()
        .collect();
    for (family, is_family) in [
        (4u8, IpAddr::is_ipv4 as fn(&IpAddr) -> bool),
        (6, IpAddr::is_ipv6),
    ] {
        let count = gateways.iter().filter(|gw| is_family(gw)).count();
        if count > 1 {
            return Err(PlanError::Ecmp { family, count });
        }
    }
    Ok(())
}
