//! The command line.

// The doc comments here are the `--help` text clap prints, where `<cniDir>` means a
// placeholder, not an HTML tag.
#![allow(rustdoc::invalid_html_tags)]

use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};

use crate::output::{ColorChoice, Format};

/// Default Multus configuration, as runtimes install it.
pub const DEFAULT_CONF: &str = "/etc/cni/net.d/00-multus.conf";
/// Default CNI_PATH passed to the multus plugin.
pub const DEFAULT_CNI_PATH: &str = "/opt/cni/bin:/usr/lib/cni";
/// Default plugin directories searched by `nad validate`.
pub const DEFAULT_BIN_DIRS: &[&str] = &["/opt/cni/bin", "/usr/lib/cni"];
/// `kubeconfig` the thin entrypoint writes into the configuration by default
/// (`--multus-kubeconfig-file-host`).
pub const THIN_DEFAULT_KUBECONFIG: &str = "/etc/cni/net.d/multus.d/multus.kubeconfig";
/// `confDir` the thin entrypoint writes into the configuration by default (its
/// `--multus-cni-conf-dir` on the host).
pub const THIN_DEFAULT_CONF_DIR: &str = "/etc/cni/multus/net.d";

const ABOUT: &str = "The operator's tool for multus-rs: explains a pod's networks, \
drives the multus plugin, validates NetworkAttachmentDefinitions, cleans up state and \
talks to the thick daemon";

const AFTER_HELP: &str = "\
Exit codes: 0 ok, 1 problems found (drift, failed checks, a failed CNI call), \
2 usage, 3 a source could not be reached or read, 4 not found.
Node-local commands (state, exec, config, daemon, nad validate FILE) need no cluster; pod and \
nad validate NS/NAME read the Kubernetes API when a kubeconfig is available \
(--kubeconfig, KUBECONFIG, in-cluster, ~/.kube/config).";

/// multus-ctl: explains a pod's networks.
#[derive(Debug, Parser)]
#[command(
    name = "multus-ctl",
    version,
    about = ABOUT,
    after_help = AFTER_HELP,
    propagate_version = true,
    subcommand_required = true,
    arg_required_else_help = true
)]
pub struct Cli {
    /// Options of every command.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Output format.
    #[arg(
        short = 'o',
        long,
        global = true,
        value_enum,
        default_value_t = Format::Table
    )]
    pub output: Format,
    /// Colour tables and headings: auto (only on a terminal, unless NO_COLOR is set),
    /// always or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Kubeconfig file (default: $KUBECONFIG, then the in-cluster service account, then
    /// ~/.kube/config).
    #[arg(long, global = true, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context to use (default: the current context).
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// Time limit of one Kubernetes API request, in seconds.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 10)]
    pub request_timeout: u64,
    /// Never read the Kubernetes API, even when a kubeconfig is available: node-local
    /// sources only.
    #[arg(long, global = true, conflicts_with_all = ["kubeconfig", "context"])]
    pub no_api: bool,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Explain a pod's networks: what it asked for, what each resolved to, what the
    /// node recorded and what is really in its network namespace; differences are
    /// called out.
    Pod(PodArgs),
    /// The per-sandbox records multus keeps on this node (<cniDir>/sandboxes).
    #[command(subcommand)]
    State(StateCommand),
    /// Run the multus plugin exactly as a container runtime would (CNI_* environment,
    /// configuration on stdin) and decode what it answers.
    #[command(subcommand)]
    Exec(ExecCommand),
    /// NetworkAttachmentDefinitions.
    #[command(subcommand)]
    Nad(NadCommand),
    /// The Multus configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// The thick daemon (multus-daemon), through its unix socket: health, metrics, its
    /// effective configuration.
    #[command(subcommand)]
    Daemon(DaemonCommand),
    /// The node's own API identity (perNodeCertificate): user, groups and when its
    /// certificate expires and rotates. Exits 1 when it has expired.
    Identity {
        /// multus' certDir on this node (multus-client-current.pem inside).
        #[arg(long, value_name = "DIR", default_value = multus_cni::identity::DEFAULT_CERT_DIR)]
        cert_dir: PathBuf,
    },
    /// Print a shell completion script (e.g. `multus-ctl completions bash >
    /// /etc/bash_completion.d/multus-ctl`).
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

/// Where the sandbox records are.
#[derive(Debug, Args, Clone)]
pub struct StateSource {
    /// multus' state directory (the configuration's cniDir) [default:
    /// /var/lib/cni/multus].
    #[arg(long, value_name = "DIR", conflicts_with = "conf")]
    pub cni_dir: Option<PathBuf>,
    /// Take cniDir from this Multus configuration.
    #[arg(long, value_name = "FILE")]
    pub conf: Option<PathBuf>,
}

/// `multus-ctl pod`.
#[derive(Debug, Args)]
pub struct PodArgs {
    /// The pod, as NAMESPACE/NAME (or NAME in namespace `default`).
    #[arg(value_name = "NS/NAME")]
    pub pod: String,
    /// Use this sandbox's record (default: the newest record of the pod).
    #[arg(long, value_name = "ID")]
    pub container_id: Option<String>,
    /// Where the records are.
    #[command(flatten)]
    pub state: StateSource,
    /// Directory of NetworkAttachmentDefinition manifests to compare the recorded
    /// configs with (default: the configuration's networkAttachmentDir, else the API).
    #[arg(long, value_name = "DIR")]
    pub nad_dir: Option<PathBuf>,
    /// Inspect this network namespace (default: the one in the record); for a pod whose
    /// record is gone.
    #[arg(long, value_name = "PATH")]
    pub netns: Option<String>,
}

/// `multus-ctl state ...`.
#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List the sandbox records on this node, with whether their netns still exists.
    List {
        /// Where the records are.
        #[command(flatten)]
        state: StateSource,
    },
    /// Show one sandbox record: the plan, each attachment's config and result, the
    /// network-status.
    Show {
        /// The sandbox's container ID (CNI_CONTAINERID).
        #[arg(value_name = "CONTAINER_ID")]
        container_id: String,
        /// Where the records are.
        #[command(flatten)]
        state: StateSource,
    },
    /// Tear down records whose network namespace is gone: DEL through the multus plugin
    /// (so every delegate releases its IPs), which removes the record.
    Prune(PruneArgs),
}

/// `multus-ctl state prune`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["container_ids", "all"])))]
pub struct PruneArgs {
    /// Prune these sandboxes (each only when its netns is gone).
    #[arg(value_name = "CONTAINER_ID")]
    pub container_ids: Vec<String>,
    /// Consider every record on the node.
    #[arg(long)]
    pub all: bool,
    /// Only say what would be done.
    #[arg(long)]
    pub dry_run: bool,
    /// How to run the multus plugin (its configuration also gives cniDir).
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// How the multus plugin is run.
#[derive(Debug, Args, Clone)]
pub struct RuntimeArgs {
    /// The Multus configuration passed on stdin, as the runtime passes it.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_CONF)]
    pub conf: PathBuf,
    /// The plugin binary [default: `multus` (`multus-shim` in thick mode) next to this
    /// program, else in /opt/cni/bin].
    #[arg(long, visible_alias = "plugin", value_name = "PATH")]
    pub multus: Option<PathBuf>,
    /// Thick mode: run multus-shim, which forwards the call to multus-daemon over its
    /// socket (the default when the configuration's type is multus-shim).
    #[arg(long)]
    pub shim: bool,
    /// CNI_PATH passed to the plugin (colon-separated directories).
    #[arg(long, value_name = "DIRS", default_value = DEFAULT_CNI_PATH)]
    pub cni_path: String,
    /// Time limit of one plugin call, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub timeout: u64,
}

/// `multus-ctl exec ...`.
#[derive(Debug, Subcommand)]
pub enum ExecCommand {
    /// CNI ADD: attach the pod's networks.
    Add(ContainerExecArgs),
    /// CNI DEL: detach them (CNI_NETNS may be empty).
    Del(ContainerExecArgs),
    /// CNI CHECK: verify the pod's attachments.
    Check(ContainerExecArgs),
    /// CNI STATUS: is every configured network ready (needs cniVersion 1.1.0).
    Status {
        /// How to run the plugin.
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
    /// CNI GC: tear down every attachment not listed as valid (needs cniVersion 1.1.0).
    Gc {
        /// A sandbox the runtime still uses, CONTAINER_ID or CONTAINER_ID/IFNAME
        /// (IFNAME defaults to eth0); repeat for each.
        #[arg(long = "valid-attachment", value_name = "ID[/IFNAME]")]
        valid: Vec<String>,
        /// How to run the plugin.
        #[command(flatten)]
        runtime: RuntimeArgs,
    },
}

/// A per-container CNI call.
#[derive(Debug, Args)]
pub struct ContainerExecArgs {
    /// The pod's network namespace (CNI_NETNS), e.g. /run/netns/NAME; required for ADD
    /// and CHECK.
    #[arg(long, value_name = "PATH")]
    pub netns: Option<String>,
    /// The sandbox's container ID (CNI_CONTAINERID).
    #[arg(long, value_name = "ID")]
    pub container_id: String,
    /// The cluster network's interface name (CNI_IFNAME).
    #[arg(long, value_name = "NAME", default_value = "eth0")]
    pub ifname: String,
    /// The pod, NAMESPACE/NAME: K8S_POD_NAMESPACE and K8S_POD_NAME in CNI_ARGS.
    #[arg(long, value_name = "NS/NAME")]
    pub pod: Option<String>,
    /// K8S_POD_UID in CNI_ARGS.
    #[arg(long, value_name = "UID")]
    pub pod_uid: Option<String>,
    /// A pod annotation, KEY=VALUE, passed as containerd passes annotations (runtimeConfig
    /// io.kubernetes.cri.pod-annotations); repeat for each.
    #[arg(long = "annotation", value_name = "KEY=VALUE")]
    pub annotations: Vec<String>,
    /// An extra CNI_ARGS pair, KEY=VALUE; repeat for each.
    #[arg(long = "cni-arg", value_name = "KEY=VALUE")]
    pub cni_args: Vec<String>,
    /// A result document to pass as prevResult (DEL and CHECK, as runtimes do).
    #[arg(long, value_name = "FILE")]
    pub prev_result: Option<PathBuf>,
    /// How to run the plugin.
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// `multus-ctl nad ...`.
#[derive(Debug, Subcommand)]
pub enum NadCommand {
    /// Check NetworkAttachmentDefinitions against what their delegates will face:
    /// plugins present, cniVersion supported, conflist structure, IPAM, names.
    Validate(NadValidateArgs),
}

/// `multus-ctl nad validate`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("which").required(true).args(["targets", "all"])))]
pub struct NadValidateArgs {
    /// A manifest FILE, or a NAD as NAMESPACE/NAME (from --nad-dir, the configuration's
    /// networkAttachmentDir, or the API).
    #[arg(value_name = "FILE|NS/NAME")]
    pub targets: Vec<String>,
    /// Every NAD of the source (--nad-dir, the configuration's networkAttachmentDir, or
    /// the API).
    #[arg(long)]
    pub all: bool,
    /// With --all: only this namespace.
    #[arg(long, short = 'n', value_name = "NS")]
    pub namespace: Option<String>,
    /// Directory of NAD manifests.
    #[arg(long, value_name = "DIR")]
    pub nad_dir: Option<PathBuf>,
    /// Multus configuration: its networkAttachmentDir, confDir, binDir and cniVersion
    /// are used.
    #[arg(long, value_name = "FILE")]
    pub conf: Option<PathBuf>,
    /// Where CNI configs are looked up for NADs with an empty spec.config [default:
    /// the configuration's confDir, else /etc/cni/multus/net.d].
    #[arg(long, value_name = "DIR")]
    pub conf_dir: Option<PathBuf>,
    /// A directory of plugin binaries; repeat for each [default: the configuration's
    /// binDir, /opt/cni/bin, /usr/lib/cni].
    #[arg(long = "bin-dir", value_name = "DIR")]
    pub bin_dirs: Vec<PathBuf>,
    /// Fail (exit 1) on warnings too.
    #[arg(long)]
    pub strict: bool,
}

/// `multus-ctl config ...`.
#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// The effective Multus configuration: every key, with defaults applied.
    Show {
        /// The Multus configuration file.
        #[arg(long, value_name = "FILE", default_value = DEFAULT_CONF)]
        conf: PathBuf,
    },
    /// The 00-multus.conf(list) that multus-daemon (thick) or the thin entrypoint
    /// (thin) would write for a primary CNI config, generated by the same code.
    Generate(Box<GenerateArgs>),
}

/// Which installer's document `config generate` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GenerateMode {
    /// multus-daemon's config manager: `type: multus-shim`, `clusterNetwork` = the
    /// primary's path.
    Thick,
    /// `multus-node thin-entrypoint`: `type: multus`, the primary inlined in
    /// `delegates`.
    Thin,
}

/// `multus-ctl config generate`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("generator").multiple(true).args([
    "cni_version", "override_network_name", "force_cni_version", "capabilities",
    "log_file", "log_level", "log_to_stderr", "log_options", "bin_dir", "cni_dir",
    "namespace_isolation", "global_namespaces", "auxiliary_cni_chain_name",
    "daemon_socket_dir", "del_grace_seconds", "ready_timeout_seconds",
    "multus_kubeconfig", "multus_conf_dir", "readiness_indicator_file",
])))]
pub struct GenerateArgs {
    /// The primary CNI config (the node's cluster network: calico, flannel, ...).
    #[arg(long, value_name = "FILE")]
    pub primary: PathBuf,
    /// Whose document: multus-daemon's (thick) or the thin entrypoint's (thin).
    #[arg(long, value_enum, default_value_t = GenerateMode::Thick)]
    pub mode: GenerateMode,
    /// Thick: take the generator options from this daemon-config.json, as the daemon
    /// does (instead of the flags below).
    #[arg(long, value_name = "FILE", conflicts_with = "generator")]
    pub daemon_config: Option<PathBuf>,
    /// Thick: `clusterNetwork`, the primary's path as the daemon sees it [default: with
    /// --daemon-config, <multusAutoconfigDir>/<the primary's file name>; else the
    /// --primary path, absolute].
    #[arg(long, value_name = "PATH")]
    pub cluster_network: Option<String>,
    /// Print only the document, byte for byte as it would be written.
    #[arg(long)]
    pub raw: bool,
    /// Emit the config-list form (`00-multus.conflist`) whatever the cniVersion:
    /// podman reads only `.conflist` files.
    #[arg(long)]
    pub conflist: bool,
    /// `cniVersion` of the document [default: the primary's].
    #[arg(long, value_name = "VERSION", help_heading = "Generator options")]
    pub cni_version: Option<String>,
    /// Name the network after the primary instead of multus-cni-network.
    #[arg(long, help_heading = "Generator options")]
    pub override_network_name: bool,
    /// Allow a --cni-version the primary's version cannot serve.
    #[arg(long, help_heading = "Generator options")]
    pub force_cni_version: bool,
    /// Declare this capability on top of the primary's (thick); repeat for each.
    #[arg(
        long = "capability",
        value_name = "NAME",
        help_heading = "Generator options"
    )]
    pub capabilities: Vec<String>,
    /// `logFile`.
    #[arg(long, value_name = "FILE", help_heading = "Generator options")]
    pub log_file: Option<String>,
    /// `logLevel`: debug, verbose, error or panic.
    #[arg(long, value_name = "LEVEL", help_heading = "Generator options")]
    pub log_level: Option<String>,
    /// `logToStderr` [default: thin true (the entrypoint's default), thick unset].
    #[arg(
        long,
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "true",
        help_heading = "Generator options"
    )]
    pub log_to_stderr: Option<bool>,
    /// `logOptions`, a JSON object (thick).
    #[arg(long, value_name = "JSON", help_heading = "Generator options")]
    pub log_options: Option<String>,
    /// `binDir`.
    #[arg(long, value_name = "DIR", help_heading = "Generator options")]
    pub bin_dir: Option<String>,
    /// `cniDir` (thick).
    #[arg(long, value_name = "DIR", help_heading = "Generator options")]
    pub cni_dir: Option<String>,
    /// `namespaceIsolation: true`.
    #[arg(long, help_heading = "Generator options")]
    pub namespace_isolation: bool,
    /// `globalNamespaces` (comma-separated).
    #[arg(long, value_name = "NS,NS", help_heading = "Generator options")]
    pub global_namespaces: Option<String>,
    /// `auxiliaryCNIChainName` (thick).
    #[arg(long, value_name = "NAME", help_heading = "Generator options")]
    pub auxiliary_cni_chain_name: Option<String>,
    /// `daemonSocketDir`: where the shim finds the daemon's socket (thick).
    #[arg(long, value_name = "DIR", help_heading = "Generator options")]
    pub daemon_socket_dir: Option<String>,
    /// `daemonUnreachableDelGraceSeconds` (thick).
    #[arg(long, value_name = "SECONDS", help_heading = "Generator options")]
    pub del_grace_seconds: Option<u64>,
    /// `daemonReadyTimeoutSeconds` (thick).
    #[arg(long, value_name = "SECONDS", help_heading = "Generator options")]
    pub ready_timeout_seconds: Option<f64>,
    /// `kubeconfig` (thin; the entrypoint's --multus-kubeconfig-file-host) [default:
    /// /etc/cni/net.d/multus.d/multus.kubeconfig].
    #[arg(long, value_name = "FILE", help_heading = "Generator options")]
    pub multus_kubeconfig: Option<String>,
    /// `confDir` (thin; the entrypoint's --multus-cni-conf-dir as the host sees it)
    /// [default: /etc/cni/multus/net.d].
    #[arg(long, value_name = "DIR", help_heading = "Generator options")]
    pub multus_conf_dir: Option<String>,
    /// `readinessindicatorfile` (thin).
    #[arg(long, value_name = "FILE", help_heading = "Generator options")]
    pub readiness_indicator_file: Option<String>,
}

/// `multus-ctl daemon ...`.
#[derive(Debug, Subcommand)]
pub enum DaemonCommand {
    /// Liveness (/healthz) and readiness (/readyz), with their latency.
    Health {
        /// Where the daemon's socket is.
        #[command(flatten)]
        socket: SocketArgs,
    },
    /// The daemon's Prometheus metrics (GET /metrics): the multus_* families as a table.
    Metrics {
        /// Where the daemon's socket is.
        #[command(flatten)]
        socket: SocketArgs,
        /// Print the text exposition as the daemon sends it.
        #[arg(long)]
        raw: bool,
        /// Every family, not only multus_* (process_resident_memory_bytes, ...).
        #[arg(long)]
        all: bool,
    },
    /// The daemon's effective configuration (GET /config): every key, the config
    /// manager's state, the caches, readiness.
    Config {
        /// Where the daemon's socket is.
        #[command(flatten)]
        socket: SocketArgs,
    },
}

/// Where the daemon's socket is.
#[derive(Debug, Args, Clone)]
pub struct SocketArgs {
    /// The daemon's socket directory (multus.sock inside) [default: /run/multus/].
    #[arg(long, value_name = "DIR", conflicts_with_all = ["conf", "daemon_config"])]
    pub socket_dir: Option<PathBuf>,
    /// Take daemonSocketDir from this Multus (shim) configuration, as multus-shim does.
    #[arg(long, value_name = "FILE", conflicts_with = "daemon_config")]
    pub conf: Option<PathBuf>,
    /// Take socketDir from this daemon-config.json (inside the daemon's pod).
    #[arg(long, value_name = "FILE")]
    pub daemon_config: Option<PathBuf>,
    /// Time limit of one request, in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub timeout: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
