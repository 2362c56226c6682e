//! `multus-ctl nad validate`: what a delegate will face, checked before a pod fails.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use multus_cni::exec::find_plugin;
use multus_cni::files::FsConfigFiles;
use multus_core::cni::CniVersion;
use multus_core::cni::version::parse_version_reply;
use multus_core::config::DEFAULT_CONF_DIR;
use multus_core::delegate::{DelegateConfig, DelegateKind};
use multus_core::nad::NetworkAttachmentDefinition;
use multus_core::nad::manifest::find_config_by_name;
use multus_core::seams::ConfigFiles;
use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::cli::{DEFAULT_BIN_DIRS, GlobalArgs, NadValidateArgs};
use crate::cluster::Cluster;
use crate::cni_call::{self, Call};
use crate::error::{CtlError, CtlResult, Outcome, one_line};
use crate::output::{Level, Printer, progress_bar};
use crate::sources::{load_conf, nads_in_dir, read_manifest_file, split_namespaced};

/// Plugins that create an interface and leave it without an address unless `ipam` says
/// otherwise.
const NEEDS_IPAM: &[&str] = &["bridge", "macvlan", "ipvlan", "ptp", "host-device", "vlan"];
/// Plugins that only modify an interface an earlier plugin of the list created.
const CHAINED_ONLY: &[&str] = &["tuning", "portmap", "bandwidth", "firewall", "sbr"];

/// One check of one NAD.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Check {
    check: String,
    status: Level,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<String>,
}

impl Check {
    fn new(check: impl Into<String>, status: Level, detail: impl Into<String>) -> Self {
        Self {
            check: check.into(),
            status,
            detail: detail.into(),
            fix: None,
        }
    }

    fn fix(mut self, fix: impl Into<String>) -> Self {
        self.fix = Some(fix.into());
        self
    }
}

/// The checks of one NAD (or of a manifest file that did not parse).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct NadResult {
    /// `namespace/name`, or the file when it did not parse.
    nad: String,
    /// Where it came from: a file, or `api`.
    source: String,
    checks: Vec<Check>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Summary {
    nads: usize,
    errors: usize,
    warnings: usize,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ValidateReport {
    bin_dirs: Vec<String>,
    conf_dir: String,
    nads: Vec<NadResult>,
    summary: Summary,
}

/// What the checks need to know about the node.
struct Environment {
    bin_dirs: Vec<PathBuf>,
    conf_dir: PathBuf,
    multus_version: Option<CniVersion>,
    versions: HashMap<PathBuf, Result<Vec<CniVersion>, String>>,
}

/// A NAD to check, or a file that did not parse.
enum Item {
    Nad {
        source: String,
        nad: NetworkAttachmentDefinition,
    },
    Broken {
        file: String,
        problem: String,
    },
}

/// `nad validate`.
pub fn validate(printer: &Printer, global: &GlobalArgs, args: &NadValidateArgs) -> CtlResult {
    let conf = args.conf.as_deref().map(load_conf).transpose()?;
    let mut bin_dirs: Vec<PathBuf> = args.bin_dirs.clone();
    if bin_dirs.is_empty() {
        if let Some(conf) = &conf {
            bin_dirs.push(conf.conf.bin_dir.clone());
        }
        for dir in DEFAULT_BIN_DIRS {
            let dir = PathBuf::from(dir);
            if !bin_dirs.contains(&dir) {
                bin_dirs.push(dir);
            }
        }
    }
    let conf_dir = args
        .conf_dir
        .clone()
        .or_else(|| conf.as_ref().map(|c| c.conf.conf_dir.clone()))
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONF_DIR));
    let nad_dir = args.nad_dir.clone().or_else(|| {
        conf.as_ref()
            .and_then(|c| c.conf.network_attachment_dir.clone())
    });
    let items = collect(global, args, nad_dir.as_deref())?;
    let mut env = Environment {
        bin_dirs,
        conf_dir,
        multus_version: conf.as_ref().map(|c| c.conf.cni_version),
        versions: HashMap::new(),
    };
    let progress = progress_bar(items.len() as u64, "validating");
    let mut nads = Vec::new();
    for item in items {
        match item {
            Item::Nad { source, nad } => {
                progress.set_message(nad.qualified_name());
                nads.push(NadResult {
                    nad: nad.qualified_name(),
                    source,
                    checks: check_nad(&nad, &mut env),
                });
            }
            Item::Broken { file, problem } => nads.push(NadResult {
                nad: file.clone(),
                source: file,
                checks: vec![Check::new("manifest", Level::Error, problem).fix(
                    "fix the manifest so that `kubectl apply --dry-run=client -f` accepts it",
                )],
            }),
        }
        progress.inc(1);
    }
    progress.finish_and_clear();
    let count = |level: Level| {
        nads.iter()
            .flat_map(|n| &n.checks)
            .filter(|c| c.status == level)
            .count()
    };
    let summary = Summary {
        nads: nads.len(),
        errors: count(Level::Error),
        warnings: count(Level::Warning),
    };
    let failed = summary.errors > 0 || (args.strict && summary.warnings > 0);
    let report = ValidateReport {
        bin_dirs: env
            .bin_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect(),
        conf_dir: env.conf_dir.display().to_string(),
        nads,
        summary,
    };
    printer.emit(&report, |p| render(p, &report))?;
    Ok(Outcome::from_problems(failed))
}

/// Whether a target names a file rather than `NS/NAME`.
fn looks_like_file(target: &str) -> bool {
    target.starts_with('/')
        || target.starts_with('.')
        || [".yaml", ".yml", ".json"]
            .iter()
            .any(|ext| target.ends_with(ext))
        || Path::new(target).exists()
}

/// The NADs to validate: `--all`'s, then each target's, in order.
fn collect(
    global: &GlobalArgs,
    args: &NadValidateArgs,
    nad_dir: Option<&Path>,
) -> Result<Vec<Item>, CtlError> {
    let mut items = Vec::new();
    let mut cache: Option<Option<Cluster>> = None;
    if args.all {
        items.extend(all_items(global, args, nad_dir, &mut cache)?);
    }
    for target in &args.targets {
        if looks_like_file(target) {
            items.extend(file_items(target)?);
        } else {
            items.push(named_item(global, target, nad_dir, &mut cache)?);
        }
    }
    Ok(items)
}

/// `--all`: every NAD of the NAD directory, else of the API (in `--namespace` if
/// given).
fn all_items(
    global: &GlobalArgs,
    args: &NadValidateArgs,
    nad_dir: Option<&Path>,
    cache: &mut Option<Option<Cluster>>,
) -> Result<Vec<Item>, CtlError> {
    let mut items = Vec::new();
    if let Some(dir) = nad_dir {
        items.extend(dir_items(dir)?.into_iter().filter(|item| {
            match item {
                Item::Nad { nad, .. } => args
                    .namespace
                    .as_ref()
                    .is_none_or(|ns| *ns == nad.namespace),
                Item::Broken { .. } => true,
            }
        }));
    } else if let Some(cluster) = api(cache, global)? {
        let (nads, problems) = cluster.nads(args.namespace.as_deref())?;
        items.extend(nads.into_iter().map(|nad| Item::Nad {
            source: "api".to_owned(),
            nad,
        }));
        items.extend(
            problems
                .into_iter()
                .map(|(file, problem)| Item::Broken { file, problem }),
        );
    } else {
        return Err(no_source("--all"));
    }
    Ok(items)
}

/// A manifest file, or every manifest of a directory.
fn file_items(target: &str) -> Result<Vec<Item>, CtlError> {
    let path = Path::new(target);
    if path.is_dir() {
        return dir_items(path);
    }
    if !path.exists() {
        return Err(CtlError::NotFound(format!(
            "manifest file {target} does not exist; pass a file or a NAMESPACE/NAME"
        )));
    }
    Ok(match read_manifest_file(path) {
        Ok(nads) if nads.is_empty() => vec![Item::Broken {
            file: target.to_owned(),
            problem: "no NetworkAttachmentDefinition in the file".to_owned(),
        }],
        Ok(nads) => nads
            .into_iter()
            .map(|nad| Item::Nad {
                source: target.to_owned(),
                nad,
            })
            .collect(),
        Err(problem) => vec![Item::Broken {
            file: target.to_owned(),
            problem,
        }],
    })
}

/// `NS/NAME`, from the NAD directory, else from the API.
fn named_item(
    global: &GlobalArgs,
    target: &str,
    nad_dir: Option<&Path>,
    cache: &mut Option<Option<Cluster>>,
) -> Result<Item, CtlError> {
    let (namespace, name) = split_namespaced(target, "NetworkAttachmentDefinition")?;
    if let Some(dir) = nad_dir {
        let (nads, _) = nads_in_dir(dir)?;
        let found = nads
            .into_iter()
            .find(|(_, n)| n.namespace == namespace && n.name == name)
            .ok_or_else(|| {
                CtlError::NotFound(format!(
                    "no NetworkAttachmentDefinition {namespace}/{name} in {}; check the name and namespace (manifests without metadata.namespace are in default)",
                    dir.display()
                ))
            })?;
        Ok(Item::Nad {
            source: found.0.display().to_string(),
            nad: found.1,
        })
    } else if let Some(cluster) = api(cache, global)? {
        let nad = cluster.nad(&namespace, &name)?.ok_or_else(|| {
            CtlError::NotFound(format!(
                "network-attachment-definition {namespace}/{name} not found through {}; check the name and namespace (`kubectl get net-attach-def -A`)",
                cluster.describe
            ))
        })?;
        Ok(Item::Nad {
            source: "api".to_owned(),
            nad,
        })
    } else {
        Err(no_source(target))
    }
}

/// The API, connected on first use.
fn api<'a>(
    cache: &'a mut Option<Option<Cluster>>,
    global: &GlobalArgs,
) -> Result<Option<&'a Cluster>, CtlError> {
    if cache.is_none() {
        *cache = Some(Cluster::connect(global)?);
    }
    Ok(cache.as_ref().and_then(Option::as_ref))
}

fn no_source(what: &str) -> CtlError {
    CtlError::Usage(format!(
        "cannot look up {what}: no NetworkAttachmentDefinition source; pass --nad-dir DIR, --conf FILE with networkAttachmentDir, or a kubeconfig (--kubeconfig, KUBECONFIG)"
    ))
}

fn dir_items(dir: &Path) -> Result<Vec<Item>, CtlError> {
    let (nads, problems) = nads_in_dir(dir)?;
    let mut items: Vec<Item> = nads
        .into_iter()
        .map(|(path, nad)| Item::Nad {
            source: path.display().to_string(),
            nad,
        })
        .collect();
    items.extend(problems.into_iter().map(|(path, problem)| Item::Broken {
        file: path.display().to_string(),
        problem,
    }));
    Ok(items)
}

fn check_nad(nad: &NetworkAttachmentDefinition, env: &mut Environment) -> Vec<Check> {
    let mut checks = Vec::new();
    let (bytes, from_conf_dir) = match nad.delegate_config() {
        Err(e) => {
            checks.push(
                Check::new("config", Level::Error, one_line(e))
                    .fix("write spec.config as a JSON CNI network config (with \"type\") or config list (with \"plugins\")"),
            );
            return checks;
        }
        Ok(Some(bytes)) => (bytes, None),
        Ok(None) => match conf_dir_lookup(&env.conf_dir, &nad.name) {
            Some((path, bytes)) => (bytes, Some(path)),
            None => {
                checks.push(
                    Check::new(
                        "config",
                        Level::Error,
                        format!(
                            "spec.config is empty and no CNI config named {:?} is in {}",
                            nad.name,
                            env.conf_dir.display()
                        ),
                    )
                    .fix(format!(
                        "add spec.config, or put a config with \"name\": {:?} in {} (--conf-dir)",
                        nad.name,
                        env.conf_dir.display()
                    )),
                );
                return checks;
            }
        },
    };
    let config = match DelegateConfig::from_bytes(&bytes) {
        Ok(config) => config,
        Err(e) => {
            checks.push(Check::new("config", Level::Error, e.to_string()).fix(
                "give the config a \"type\" (single plugin) or a non-empty \"plugins\" list whose entries each have a plain \"type\"",
            ));
            return checks;
        }
    };
    let doc: Map<String, Value> = serde_json::from_slice(&bytes).unwrap_or_default();
    let types = config.plugin_types().join(" → ");
    let shape = match config.kind() {
        DelegateKind::Single => format!("single config ({types})"),
        DelegateKind::List => format!(
            "config list of {} plugins ({types})",
            config.plugins().len()
        ),
    };
    checks.push(Check::new(
        "config",
        Level::Ok,
        match &from_conf_dir {
            Some(path) => format!("spec.config is empty: uses {shape} from {}", path.display()),
            None => shape,
        },
    ));
    if from_conf_dir.is_none() {
        checks.push(name_check(nad, &config));
    }
    let version = version_check(&config, env.multus_version, &mut checks);
    structure_checks(&config, &doc, version, &mut checks);
    if let Some(resource) = &nad.resource_name {
        checks.push(resource_check(resource, &config));
    }
    for (index, plugin) in config.plugins().into_iter().enumerate() {
        plugin_checks(index, plugin, &config, version, env, &mut checks);
    }
    checks
}

/// Plugin types known to ignore the `deviceID` (and `pciBusID`) a `resourceName`
/// network is given: they create or change interfaces without a device.
const IGNORE_DEVICE_ID: &[&str] = &[
    "bridge",
    "macvlan",
    "ipvlan",
    "ptp",
    "vlan",
    "loopback",
    "dummy",
    "tap",
    "vrf",
    "bandwidth",
    "portmap",
    "firewall",
    "tuning",
    "sbr",
];

/// A `resourceName` network whose plugins all ignore `deviceID` takes a device from the
/// pod's resources and never uses it.
fn resource_check(resource: &str, config: &DelegateConfig) -> Check {
    let types = config.plugin_types();
    if types.iter().all(|t| IGNORE_DEVICE_ID.contains(t)) {
        return Check::new(
            "resourceName",
            Level::Warning,
            format!(
                "resourceName {resource:?}: each pod gets a device of it as deviceID, but {} ignore{} deviceID",
                types.join(", "),
                if types.len() == 1 { "s" } else { "" }
            ),
        )
        .fix("use a plugin that takes the device (sriov, host-device, ib-sriov, ...), or remove the k8s.v1.cni.cncf.io/resourceName annotation");
    }
    Check::new(
        "resourceName",
        Level::Ok,
        format!(
            "resourceName {resource:?}: the pod's next device of it is passed as deviceID and pciBusID"
        ),
    )
}

fn conf_dir_lookup(dir: &Path, name: &str) -> Option<(PathBuf, Vec<u8>)> {
    let files = FsConfigFiles.list_configs(dir).ok()?;
    files
        .iter()
        .find(|file| find_config_by_name(std::slice::from_ref(*file), name).is_some())
        .cloned()
}

fn name_check(nad: &NetworkAttachmentDefinition, config: &DelegateConfig) -> Check {
    let raw: Map<String, Value> = serde_json::from_str(&nad.config).unwrap_or_default();
    let written = raw.get("name").and_then(Value::as_str).unwrap_or_default();
    if written.is_empty() {
        Check::new(
            "name",
            Level::Info,
            format!(
                "spec.config has no name: multus injects the NAD name {:?}, as upstream does",
                nad.name
            ),
        )
    } else if config.name() == nad.name {
        Check::new(
            "name",
            Level::Ok,
            format!("{:?} matches the NAD name", nad.name),
        )
    } else {
        Check::new(
            "name",
            Level::Warning,
            format!(
                "the config's name {:?} differs from the NAD name {:?}: network-status says {} while IPAM leases and the runtime's cache use {:?}",
                config.name(),
                nad.name,
                nad.qualified_name(),
                config.name()
            ),
        )
        .fix(format!(
            "set \"name\": {:?} in spec.config (or leave it out and multus injects it)",
            nad.name
        ))
    }
}

/// The cniVersion the plugins will see, checked.
fn version_check(
    config: &DelegateConfig,
    multus: Option<CniVersion>,
    checks: &mut Vec<Check>,
) -> Option<CniVersion> {
    match config.cni_version_text().filter(|v| !v.is_empty()) {
        Some(text) => match text.parse::<CniVersion>() {
            Ok(version) => {
                checks.push(Check::new("cniVersion", Level::Ok, text));
                Some(version)
            }
            Err(_) => {
                checks.push(
                    Check::new(
                        "cniVersion",
                        Level::Error,
                        format!("{text:?} is not a CNI version"),
                    )
                    .fix(format!(
                        "use one of {}",
                        CniVersion::ALL.map(|v| v.as_str()).join(", ")
                    )),
                );
                None
            }
        },
        None => {
            let detail = match multus {
                Some(v) => format!(
                    "no cniVersion: multus passes its own ({}) to the plugins",
                    v.as_str()
                ),
                None => "no cniVersion: multus passes its own cniVersion to the plugins (give --conf to check with it)".to_owned(),
            };
            checks.push(
                Check::new("cniVersion", Level::Info, detail).fix(
                    "set cniVersion explicitly so the config means the same under every runtime",
                ),
            );
            multus
        }
    }
}

/// A single plugin with a stray `plugins`, or a config list's shape.
fn structure_checks(
    config: &DelegateConfig,
    doc: &Map<String, Value>,
    version: Option<CniVersion>,
    checks: &mut Vec<Check>,
) {
    match config.kind() {
        DelegateKind::Single => {
            if doc.contains_key("plugins") {
                checks.push(
                    Check::new(
                        "conflist",
                        Level::Warning,
                        "the config has both \"type\" and \"plugins\": it is run as a single plugin and \"plugins\" is ignored",
                    )
                    .fix("remove \"type\" to make it a config list, or remove \"plugins\""),
                );
            }
        }
        DelegateKind::List => list_checks(config, version, checks),
    }
}

/// A config list: each plugin's own cniVersion, what comes first, and whether the
/// version can chain at all.
fn list_checks(config: &DelegateConfig, version: Option<CniVersion>, checks: &mut Vec<Check>) {
    let plugins = config.plugins();
    let mut problems = list_plugin_problems(config);
    if plugins.len() > 1
        && let Some(v) = version
        && matches!(v, CniVersion::V0_1_0 | CniVersion::V0_2_0)
    {
        problems.push(
            Check::new(
                "conflist",
                Level::Error,
                format!(
                    "a chain of plugins needs cniVersion 0.3.0 or later to pass prevResult; this list has {}",
                    v.as_str()
                ),
            )
            .fix("set cniVersion to 0.3.1 or later"),
        );
    }
    if problems.is_empty() {
        checks.push(Check::new(
            "conflist",
            Level::Ok,
            format!(
                "{} plugins run in order, each with the previous result",
                plugins.len()
            ),
        ));
    }
    checks.extend(problems);
}

/// Plugins of a list that set a cniVersion of their own, and a chained-only plugin
/// first.
fn list_plugin_problems(config: &DelegateConfig) -> Vec<Check> {
    let mut problems = Vec::new();
    let plugins = config.plugins();
    let list_version = config.cni_version_text().unwrap_or_default();
    for (index, plugin) in plugins.iter().enumerate() {
        let kind = multus_core::delegate::plugin_type(plugin);
        if let Some(own) = plugin.get("cniVersion").and_then(Value::as_str)
            && own != list_version
        {
            problems.push(
                Check::new(
                    "conflist",
                    Level::Warning,
                    format!(
                        "plugins[{index}] ({kind}) sets cniVersion {own:?}; it receives the list's {list_version:?} instead"
                    ),
                )
                .fix(format!("remove cniVersion from plugins[{index}]")),
            );
        }
        if index == 0 && CHAINED_ONLY.contains(&kind) && plugins.len() > 1 {
            problems.push(
                Check::new(
                    "conflist",
                    Level::Warning,
                    format!(
                        "the first plugin is {kind}, which only changes an interface an earlier plugin created"
                    ),
                )
                .fix("put the plugin that creates the interface (bridge, macvlan, ...) first"),
            );
        }
    }
    problems
}

fn plugin_checks(
    index: usize,
    plugin: &Map<String, Value>,
    config: &DelegateConfig,
    version: Option<CniVersion>,
    env: &mut Environment,
    checks: &mut Vec<Check>,
) {
    let kind = multus_core::delegate::plugin_type(plugin).to_owned();
    let label = if config.kind() == DelegateKind::List {
        format!("plugins[{index}] {kind}")
    } else {
        kind.clone()
    };
    let dirs = env
        .bin_dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    match find_plugin(&kind, &env.bin_dirs) {
        None => checks.push(
            Check::new(
                format!("binary {label}"),
                Level::Error,
                format!("plugin {kind:?} is not in {dirs}"),
            )
            .fix(format!(
                "install the {kind} plugin into one of them (or pass --bin-dir where it is), or fix \"type\""
            )),
        ),
        Some(binary) => {
            checks.push(Check::new(
                format!("binary {label}"),
                Level::Ok,
                binary.display().to_string(),
            ));
            checks.push(supported_version_check(&label, &kind, &binary, version, env));
        }
    }
    if let Some(check) = ipam_check(&label, &kind, plugin, env) {
        checks.push(check);
    }
}

fn supported_version_check(
    label: &str,
    kind: &str,
    binary: &Path,
    version: Option<CniVersion>,
    env: &mut Environment,
) -> Check {
    let name = format!("version {label}");
    let search = env.bin_dirs.clone();
    let supported = env
        .versions
        .entry(binary.to_owned())
        .or_insert_with(|| plugin_versions(binary, &search))
        .clone();
    let supported = match supported {
        Ok(list) => list,
        Err(e) => {
            return Check::new(
                name,
                Level::Warning,
                format!("the plugin's VERSION reply cannot be read: {e}"),
            )
            .fix(format!(
                "run `CNI_COMMAND=VERSION {}` to see what it says",
                binary.display()
            ));
        }
    };
    let list = supported
        .iter()
        .map(|v| v.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    match version {
        None => Check::new(name, Level::Info, format!("{kind} supports {list}")),
        Some(v) if supported.contains(&v) => Check::new(
            name,
            Level::Ok,
            format!("{kind} supports {} ({list})", v.as_str()),
        ),
        Some(v) => Check::new(
            name,
            Level::Error,
            format!(
                "{kind} does not support cniVersion {}: it supports {list}",
                v.as_str()
            ),
        )
        .fix(format!(
            "set cniVersion to one of {list}, or install a {kind} plugin that supports {}",
            v.as_str()
        )),
    }
}

fn plugin_versions(binary: &Path, search: &[PathBuf]) -> Result<Vec<CniVersion>, String> {
    let cni_path = search
        .iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(":");
    let call = Call {
        binary: binary.to_owned(),
        env: [
            ("CNI_COMMAND".to_owned(), "VERSION".to_owned()),
            ("CNI_PATH".to_owned(), cni_path),
        ]
        .into_iter()
        .collect(),
        stdin: json!({"cniVersion": CniVersion::LATEST.as_str()})
            .to_string()
            .into_bytes(),
        timeout: Duration::from_secs(10),
    };
    let finished = cni_call::run(&call).map_err(|e| e.to_string())?;
    if !finished.success() {
        return Err(cni_call::DecodedError::from_finished(&finished).msg);
    }
    parse_version_reply(&finished.stdout).map_err(|e| e.to_string())
}

fn ipam_check(
    label: &str,
    kind: &str,
    plugin: &Map<String, Value>,
    env: &Environment,
) -> Option<Check> {
    let name = format!("ipam {label}");
    let needs = NEEDS_IPAM.contains(&kind);
    match plugin.get("ipam") {
        None if needs => Some(
            Check::new(
                name,
                Level::Warning,
                format!("{kind} without ipam: the interface gets no IP address"),
            )
            .fix("add an ipam section (host-local, static, dhcp, whereabouts, ...), or \"ipam\": {} to say the interface is meant to have no address"),
        ),
        None => None,
        Some(Value::Object(ipam)) if ipam.is_empty() => Some(Check::new(
            name,
            Level::Ok,
            "\"ipam\": {}: no address, intentionally",
        )),
        Some(Value::Object(ipam)) => {
            let ipam_type = ipam.get("type").and_then(Value::as_str).unwrap_or_default();
            if ipam_type.is_empty() {
                return Some(
                    Check::new(name, Level::Error, "ipam has no \"type\"")
                        .fix("name the IPAM plugin in ipam.type (e.g. host-local), or use \"ipam\": {}"),
                );
            }
            Some(match find_plugin(ipam_type, &env.bin_dirs) {
                Some(binary) => Check::new(
                    name,
                    Level::Ok,
                    format!("{ipam_type} at {}", binary.display()),
                ),
                None => Check::new(
                    name,
                    Level::Error,
                    format!(
                        "IPAM plugin {ipam_type:?} is not in {}",
                        env.bin_dirs
                            .iter()
                            .map(|d| d.display().to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .fix(format!(
                    "install the {ipam_type} plugin there (or pass --bin-dir), or fix ipam.type"
                )),
            })
        }
        Some(_) => Some(
            Check::new(name, Level::Error, "ipam is not an object")
                .fix("make ipam an object with a \"type\", or {}"),
        ),
    }
}

fn render(printer: &Printer, report: &ValidateReport) -> String {
    let mut table = printer.table(&["NAD", "CHECK", "STATUS", "DETAIL"]);
    for nad in &report.nads {
        for (index, check) in nad.checks.iter().enumerate() {
            let detail = match &check.fix {
                Some(fix) => format!("{}\nfix: {fix}", check.detail),
                None => check.detail.clone(),
            };
            table.add_row(vec![
                comfy_table::Cell::new(if index == 0 { nad.nad.as_str() } else { "" }),
                comfy_table::Cell::new(&check.check),
                printer.level_cell(check.status),
                comfy_table::Cell::new(detail),
            ]);
        }
    }
    let s = &report.summary;
    let verdict = if s.errors > 0 {
        printer.level_text("FAILED", Level::Error)
    } else if s.warnings > 0 {
        printer.level_text("passed with warnings", Level::Warning)
    } else {
        printer.level_text("passed", Level::Ok)
    };
    format!(
        "{table}\n{} NAD(s): {} error(s), {} warning(s): {verdict}",
        s.nads, s.errors, s.warnings
    )
}
