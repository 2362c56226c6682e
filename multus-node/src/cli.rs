//! The command line. Public so that tests (and the manifest cross-checks) can introspect
//! it with [`command`].

// The doc comments here are the `--help` text clap prints, where `<file>` means a
// placeholder, not an HTML tag.
#![allow(rustdoc::invalid_html_tags)]

use std::path::PathBuf;

use clap::{ArgAction, Args, CommandFactory as _, Parser, Subcommand};

use crate::install::{IMAGE_BIN_DIR, Mode};

/// multus-node: installs multus-rs on a node (run by the DaemonSets).
#[derive(Debug, Parser)]
#[command(
    name = "multus-node",
    version,
    about = "Installs multus-rs on a Kubernetes node: the CNI binary, the thin plugin's kubeconfig and 00-multus.conf; and the DaemonSet's health probes",
    subcommand_required = true,
    arg_required_else_help = true,
    // As Go's flag package does (upstream's binaries): a repeated flag's last value wins.
    args_override_self = true
)]
pub struct Cli {
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy the mode's CNI binary (thin: multus, thick: multus-shim) and passthru into
    /// the host's CNI bin dir atomically (temporary file, fsync, rename: never "text file
    /// busy").
    Install(InstallArgs),
    /// The thin DaemonSet's main process: install multus, write its kubeconfig and
    /// 00-multus.conf(list), keep both current until SIGTERM.
    ThinEntrypoint(Box<ThinArgs>),
    /// Exit 0 when the node agent is healthy/ready, 1 otherwise (exec probes).
    Probe(ProbeArgs),
}

/// `install`.
#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Which plugin to install: thin (multus) or thick (multus-shim); passthru either way.
    #[arg(short = 't', long = "type", value_enum)]
    pub mode: Mode,
    /// The host's CNI bin dir, as mounted in the container.
    #[arg(
        short = 'd',
        long,
        value_name = "DIR",
        default_value = "/host/opt/cni/bin"
    )]
    pub dest: PathBuf,
    /// Where the binaries are in the image.
    #[arg(long, value_name = "DIR", default_value = IMAGE_BIN_DIR)]
    pub source_dir: PathBuf,
}

/// `thin-entrypoint`: upstream `thin_entrypoint`'s flags that still make sense, with
/// the same names and defaults (paths are container paths unless the name says host),
/// plus the service-account and polling settings. Boolean flags also take Go's
/// `--flag=true|false` form, as upstream's manifests and charts write them.
#[derive(Debug, Clone, Args)]
pub struct ThinArgs {
    /// The host's CNI bin dir (container path): multus is installed here.
    #[arg(long, value_name = "DIR", default_value = "/host/opt/cni/bin")]
    pub cni_bin_dir: PathBuf,
    /// The host's CNI conf dir (container path): 00-multus.conf(list) and multus.d/ go
    /// here.
    #[arg(long, value_name = "DIR", default_value = "/host/etc/cni/net.d")]
    pub cni_conf_dir: PathBuf,
    /// cniVersion of the generated configuration (default: the primary's).
    #[arg(long, value_name = "VERSION", default_value = "")]
    pub cni_version: String,
    /// `auto` to generate 00-multus.conf(list) from the primary CNI config, or a file
    /// (container path) to copy into --cni-conf-dir as is.
    #[arg(long, value_name = "auto|FILE", default_value = "auto")]
    pub multus_conf_file: String,
    /// The multus binary in the image.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/usr/src/multus-cni/bin/multus"
    )]
    pub multus_bin_file: PathBuf,
    /// Directory of CNI configs referenced by NADs with an empty spec (container path;
    /// created if missing). Written into the configuration as `confDir` (host path).
    #[arg(long, value_name = "DIR", default_value = "/host/etc/cni/multus/net.d")]
    pub multus_cni_conf_dir: PathBuf,
    /// Do not install the multus binary (an init container did).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value_t = false, action = ArgAction::Set)]
    pub skip_multus_binary_copy: bool,
    /// The kubeconfig's path as the host sees it (written into the configuration); the
    /// token file sits beside it.
    #[arg(
        long,
        value_name = "FILE",
        default_value = "/etc/cni/net.d/multus.d/multus.kubeconfig"
    )]
    pub multus_kubeconfig_file_host: PathBuf,
    /// File name of the primary CNI config in --multus-autoconfig-dir (default: the
    /// lexically first *.conf, *.conflist or *.json that is not 00-multus*).
    #[arg(long, value_name = "NAME", default_value = "")]
    pub multus_master_cni_file_name: String,
    /// `namespaceIsolation` of the generated configuration.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value_t = false, action = ArgAction::Set)]
    pub namespace_isolation: bool,
    /// `globalNamespaces` (comma-separated) of the generated configuration.
    #[arg(long, value_name = "NS,NS", default_value = "")]
    pub global_namespaces: String,
    /// Where the primary CNI config is found (container path).
    #[arg(long, value_name = "DIR", default_value = "/host/etc/cni/net.d")]
    pub multus_autoconfig_dir: PathBuf,
    /// `logToStderr` of the generated configuration.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value_t = true, action = ArgAction::Set)]
    pub multus_log_to_stderr: bool,
    /// `logLevel` of the generated configuration: debug, verbose, error or panic.
    #[arg(long, value_name = "LEVEL", default_value = "")]
    pub multus_log_level: String,
    /// `logFile` of the generated configuration (host path).
    #[arg(long, value_name = "FILE", default_value = "")]
    pub multus_log_file: String,
    /// Name the network after the primary instead of multus-cni-network.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value_t = false, action = ArgAction::Set)]
    pub override_network_name: bool,
    /// Write the config-list form (`00-multus.conflist`) whatever the cniVersion:
    /// podman reads only `.conflist` files (multus-rs).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value_t = false, action = ArgAction::Set)]
    pub conflist: bool,
    /// Remove the configuration multus-node wrote when it receives SIGTERM. Off by
    /// default: a missing 00-multus.conf makes the runtime use the primary CNI directly
    /// and pods lose their secondary networks during a restart (upstream #1527).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value_t = false, action = ArgAction::Set)]
    pub cleanup_config_on_exit: bool,
    /// Generate the configuration once; do not follow changes of the primary (the
    /// kubeconfig is still kept fresh).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value_t = false, action = ArgAction::Set)]
    pub skip_config_watch: bool,
    /// Rename the primary CNI config to <file>.old once it is inlined, so the runtime
    /// can only use it through multus.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value_t = false, action = ArgAction::Set)]
    pub rename_conf_file: bool,
    /// `readinessindicatorfile` of the generated configuration (host path).
    #[arg(long, value_name = "FILE", default_value = "")]
    pub readiness_indicator_file: String,
    /// `binDir` of the generated configuration (host path).
    #[arg(long, value_name = "DIR", default_value = "")]
    pub additional_bin_dir: String,
    /// Use --cni-version even if the primary's version cannot serve it.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value_t = false, action = ArgAction::Set)]
    pub force_cni_version: bool,
    /// The pod's service-account directory (token and ca.crt).
    #[arg(
        long,
        value_name = "DIR",
        default_value = "/var/run/secrets/kubernetes.io/serviceaccount"
    )]
    pub service_account_dir: PathBuf,
    /// The API server's address (the kubelet sets KUBERNETES_SERVICE_HOST in every pod).
    #[arg(
        long,
        env = "KUBERNETES_SERVICE_HOST",
        value_name = "HOST",
        default_value = ""
    )]
    pub kubernetes_service_host: String,
    /// The API server's port.
    #[arg(
        long,
        env = "KUBERNETES_SERVICE_PORT",
        value_name = "PORT",
        default_value = ""
    )]
    pub kubernetes_service_port: String,
    /// The API server's scheme.
    #[arg(
        long,
        env = "KUBERNETES_SERVICE_PROTOCOL",
        value_name = "SCHEME",
        default_value = "https"
    )]
    pub kubernetes_service_protocol: String,
    /// Where the host's root is mounted: container paths under it are written into the
    /// configuration without it (`/host/etc/cni/multus/net.d` → `/etc/cni/multus/net.d`).
    #[arg(long, value_name = "DIR", default_value = "/host")]
    pub host_prefix: PathBuf,
    /// Re-check the token, the CA and the primary this often even without a file
    /// event (a safety net; events are acted on at once).
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub poll_interval_seconds: u64,
    /// Give the thin plugin this node's own identity (`system:multus:<node>`, a client
    /// certificate obtained with a CSR and rotated) instead of the service-account
    /// token: the token never reaches the host (upstream's `perNodeCertificate`).
    #[arg(long, value_name = "BOOL", num_args = 0..=1, require_equals = true, default_missing_value = "true", default_value_t = false, action = ArgAction::Set)]
    pub per_node_certificate: bool,
    /// With --per-node-certificate: the kubeconfig whose credentials create the CSRs
    /// (default: the pod's service account, read where the kubelet mounts it).
    #[arg(long, value_name = "FILE")]
    pub bootstrap_config: Option<PathBuf>,
    /// With --per-node-certificate: where the key and the current certificate live
    /// (container path under --host-prefix; the kubeconfig names it as the host sees it).
    #[arg(
        long = "certdir",
        value_name = "DIR",
        default_value = "/host/etc/cni/multus/certs"
    )]
    pub cert_dir: PathBuf,
    /// With --per-node-certificate: the certificate lifetime asked for (Go duration).
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub cert_duration: String,
    /// With --per-node-certificate: this node's name.
    #[arg(
        long,
        env = "MULTUS_NODE_NAME",
        value_name = "NAME",
        default_value = ""
    )]
    pub node_name: String,
}

/// `probe`.
#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// What to probe.
    #[command(subcommand)]
    pub target: ProbeTarget,
}

/// What `probe` checks.
#[derive(Debug, Subcommand)]
pub enum ProbeTarget {
    /// GET a path of the thick daemon's HTTP API over its unix socket; 200 is success.
    Daemon {
        /// The daemon's socket (container path).
        #[arg(
            long,
            value_name = "FILE",
            default_value = "/host/run/multus/multus.sock"
        )]
        socket: PathBuf,
        /// `/healthz` (liveness) or `/readyz` (readiness).
        #[arg(long, value_name = "PATH", default_value = "/readyz")]
        path: String,
        /// Give up after this many seconds.
        #[arg(long, value_name = "SECONDS", default_value_t = 3)]
        timeout_seconds: u64,
    },
    /// The thin entrypoint's work is on disk: the kubeconfig, its token and the
    /// configuration.
    Thin {
        /// As given to thin-entrypoint.
        #[arg(long, value_name = "DIR", default_value = "/host/etc/cni/net.d")]
        cni_conf_dir: PathBuf,
        /// As given to thin-entrypoint.
        #[arg(long, value_name = "auto|FILE", default_value = "auto")]
        multus_conf_file: String,
    },
}

/// The clap command, for introspection.
pub fn command() -> clap::Command {
    Cli::command()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        command().debug_assert();
    }

    #[test]
    fn go_style_booleans_are_accepted() {
        let cli = Cli::try_parse_from([
            "multus-node",
            "thin-entrypoint",
            "--cleanup-config-on-exit=true",
            "--multus-log-to-stderr=false",
            "--skip-config-watch",
            "--multus-conf-file=auto",
        ])
        .unwrap();
        let Command::ThinEntrypoint(args) = cli.command else {
            panic!("not thin-entrypoint");
        };
        assert!(args.cleanup_config_on_exit);
        assert!(!args.multus_log_to_stderr);
        assert!(args.skip_config_watch);
        assert!(!args.rename_conf_file);
    }

    #[test]
    fn install_takes_upstreams_short_flags() {
        let cli =
            Cli::try_parse_from(["multus-node", "install", "-t", "thick", "-d", "/x"]).unwrap();
        let Command::Install(args) = cli.command else {
            panic!("not install");
        };
        assert_eq!(args.mode, Mode::Thick);
        assert_eq!(args.dest, PathBuf::from("/x"));
    }
}
