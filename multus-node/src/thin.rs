//! `multus-node thin-entrypoint`: the thin DaemonSet's main process.
//!
//! At start, in this order, each step fatal on failure (non-zero exit, a message that
//! names the path): check the host directories; install `multus` atomically; write the
//! kubeconfig and its token file from the pod's service account; write the multus
//! configuration (generated from the primary CNI config, or copied from a given file).
//! Then, until SIGTERM/SIGINT: on every change in the watched directories (`notify`:
//! the service-account directory, the autoconfig directory, the CNI conf directory, the
//! given configuration's directory) and every `--poll-interval-seconds` anyway, rewrite
//! the token file / kubeconfig when the token or CA changed, and regenerate the
//! configuration when the primary changed. Every write is atomic and only happens when
//! the content differs. A primary that is missing or invalid never produces an empty or
//! invalid file: the previous configuration stays and the problem is logged. On the
//! first signal: remove the configuration only with `--cleanup-config-on-exit`, exit 0;
//! a second signal exits 1 at once.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use multus_core::generate::{self, CONF_FILE_NAME, CONFLIST_FILE_NAME, Flavour, GeneratorOptions};
use nix::sys::signal::{SigSet, Signal};
use notify::Watcher as _;

use crate::atomic;
use crate::cli::ThinArgs;
use crate::error::NodeError;
use crate::identity::NodeIdentity;
use crate::kubeconfig::{self, KubeconfigPaths, ServiceAccount};

/// The suffix `--rename-conf-file` gives the primary.
const RENAMED_SUFFIX: &str = ".old";
/// Mode of the configuration files multus-node writes.
const CONF_MODE: u32 = 0o600;
/// How often "waiting for the primary" is logged.
const WAIT_LOG_EVERY: Duration = Duration::from_secs(30);
/// Quiet time after a file event before acting (a writer is usually mid-way).
const SETTLE: Duration = Duration::from_millis(200);

/// What a configuration sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfSync {
    /// This file was written.
    Written(PathBuf),
    /// The file on disk is already current.
    Unchanged(PathBuf),
    /// No primary CNI config exists yet in this directory.
    NoPrimary(PathBuf),
}

/// The thin entrypoint's state.
#[derive(Debug)]
pub struct Thin {
    args: ThinArgs,
    server: String,
    kubeconfig: KubeconfigPaths,
    options: GeneratorOptions,
    /// The configuration file this process keeps (for cleanup).
    current: Option<PathBuf>,
    /// The primary renamed by `--rename-conf-file` (original path), for cleanup.
    renamed: Option<PathBuf>,
    /// `--per-node-certificate`: the node's identity, and whether the bootstrap
    /// kubeconfig is made here from the service account.
    identity: Option<(NodeIdentity, bool)>,
}

fn check_readable_dir(dir: &Path, what: &str) -> Result<(), NodeError> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(NodeError::Dir {
            what: what.to_owned(),
            path: dir.to_owned(),
            problem: "is not a directory".to_owned(),
        }),
        Err(e) => Err(NodeError::Dir {
            what: what.to_owned(),
            path: dir.to_owned(),
            problem: if e.kind() == std::io::ErrorKind::NotFound {
                "does not exist".to_owned()
            } else {
                format!("cannot be read: {e}")
            },
        }),
    }
}

fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

/// `path` as the host sees it: without `prefix` when it starts with it.
pub fn host_path(prefix: &Path, path: &Path) -> PathBuf {
    match path.strip_prefix(prefix) {
        Ok(rest) if prefix != Path::new("") && prefix != Path::new("/") => {
            Path::new("/").join(rest)
        }
        _ => path.to_owned(),
    }
}

fn is_auto(conf_file: &str) -> bool {
    conf_file == "auto"
}

/// The log level and poll interval, checked before anything else.
fn check_args(args: &ThinArgs) -> Result<(), NodeError> {
    if !args.multus_log_level.is_empty()
        && !matches!(
            args.multus_log_level.to_ascii_lowercase().as_str(),
            "debug" | "verbose" | "error" | "panic"
        )
    {
        return Err(NodeError::Usage(format!(
            "--multus-log-level {:?}: expected debug, verbose, error or panic",
            args.multus_log_level
        )));
    }
    if args.poll_interval_seconds == 0 {
        return Err(NodeError::Usage(
            "--poll-interval-seconds must be at least 1".to_owned(),
        ));
    }
    Ok(())
}

/// Where the kubeconfig and its token file go, in the pod and on the host.
fn kubeconfig_paths(args: &ThinArgs) -> Result<KubeconfigPaths, NodeError> {
    let host_dir = args
        .multus_kubeconfig_file_host
        .parent()
        .unwrap_or(Path::new("/"));
    if !args.multus_kubeconfig_file_host.is_absolute()
        || args.multus_kubeconfig_file_host.file_name().is_none()
    {
        return Err(NodeError::Usage(format!(
            "--multus-kubeconfig-file-host {} must be an absolute file path",
            args.multus_kubeconfig_file_host.display()
        )));
    }
    Ok(KubeconfigPaths {
        kubeconfig: args.cni_conf_dir.join("multus.d").join(
            args.multus_kubeconfig_file_host
                .file_name()
                .unwrap_or(kubeconfig::KUBECONFIG_NAME.as_ref()),
        ),
        token: args
            .cni_conf_dir
            .join("multus.d")
            .join(kubeconfig::TOKEN_NAME),
        kubeconfig_on_host: args.multus_kubeconfig_file_host.clone(),
        token_on_host: host_dir.join(kubeconfig::TOKEN_NAME),
    })
}

/// The generator's options from the flags the Go entrypoint has.
fn generator_options(args: &ThinArgs) -> GeneratorOptions {
    let mut options = GeneratorOptions::new(Flavour::Thin {
        kubeconfig: Some(args.multus_kubeconfig_file_host.display().to_string()),
        conf_dir: Some(
            host_path(&args.host_prefix, &args.multus_cni_conf_dir)
                .display()
                .to_string(),
        ),
    });
    options.cni_version = non_empty(&args.cni_version);
    options.override_network_name = args.override_network_name;
    options.conflist = args.conflist;
    options.force_cni_version = args.force_cni_version;
    options.log_file = non_empty(&args.multus_log_file);
    options.log_level = non_empty(&args.multus_log_level);
    options.log_to_stderr = Some(args.multus_log_to_stderr);
    options.bin_dir = non_empty(&args.additional_bin_dir);
    options.namespace_isolation = args.namespace_isolation;
    options.global_namespaces = non_empty(&args.global_namespaces);
    options.readiness_indicator_file = non_empty(&args.readiness_indicator_file);
    options
}

/// `--per-node-certificate`: the node's identity, and whether the bootstrap kubeconfig
/// is to be made here (none given).
fn node_identity(args: &ThinArgs) -> Result<Option<(NodeIdentity, bool)>, NodeError> {
    if !args.per_node_certificate {
        return Ok(None);
    }
    let generated = args.bootstrap_config.is_none();
    let bootstrap = args
        .bootstrap_config
        .clone()
        .unwrap_or_else(|| args.cert_dir.join(BOOTSTRAP_NAME));
    Ok(Some((
        NodeIdentity::new(
            &args.node_name,
            bootstrap,
            &args.cert_dir,
            &args.cert_duration,
        )?,
        generated,
    )))
}

impl Thin {
    /// Check the arguments and the host directories; nothing is written yet.
    pub fn new(args: ThinArgs) -> Result<Self, NodeError> {
        check_args(&args)?;
        let server = kubeconfig::server_url(
            &args.kubernetes_service_host,
            &args.kubernetes_service_port,
            &args.kubernetes_service_protocol,
        )?;
        let kubeconfig = kubeconfig_paths(&args)?;
        let options = generator_options(&args);
        let identity = node_identity(&args)?;
        Ok(Self {
            args,
            server,
            kubeconfig,
            options,
            current: None,
            renamed: None,
            identity,
        })
    }

    /// The arguments.
    pub fn args(&self) -> &ThinArgs {
        &self.args
    }

    /// Check every host path and install what does not depend on the primary: the
    /// multus binary, `multus.d/`, `--multus-cni-conf-dir`, the kubeconfig.
    pub fn prepare(&mut self) -> Result<(), NodeError> {
        let args = &self.args;
        atomic::check_writable_dir(&args.cni_conf_dir, "CNI conf dir (--cni-conf-dir)")?;
        if is_auto(&args.multus_conf_file) {
            check_readable_dir(
                &args.multus_autoconfig_dir,
                "primary CNI config dir (--multus-autoconfig-dir)",
            )?;
            if args.rename_conf_file {
                atomic::check_writable_dir(
                    &args.multus_autoconfig_dir,
                    "primary CNI config dir (--multus-autoconfig-dir, --rename-conf-file)",
                )?;
            }
        } else if !Path::new(&args.multus_conf_file).is_file() {
            return Err(NodeError::Source {
                path: PathBuf::from(&args.multus_conf_file),
                problem: "(--multus-conf-file) does not exist or is not a file".to_owned(),
            });
        }
        if !args.skip_multus_binary_copy {
            atomic::check_writable_dir(&args.cni_bin_dir, "CNI bin dir (--cni-bin-dir)")?;
            let target = args.cni_bin_dir.join("multus");
            match atomic::copy_atomic(&args.multus_bin_file, &target)? {
                atomic::Copied::Replaced => {
                    tracing::info!(path = %target.display(), "installed multus")
                }
                atomic::Copied::UpToDate => {
                    tracing::info!(path = %target.display(), "multus already up to date");
                }
            }
        }
        create_dir(&args.multus_cni_conf_dir, 0o755)?;
        if let Some(dir) = self.kubeconfig.kubeconfig.parent() {
            create_dir(dir, 0o700)?;
        }
        if let Some((identity, generated)) = &self.identity {
            create_dir(&identity.config.cert_dir, 0o700)?;
            if let (true, Some(path)) = (*generated, &identity.config.bootstrap_kubeconfig) {
                crate::identity::write_bootstrap(
                    path,
                    &self.server,
                    &self.args.service_account_dir,
                )?;
            }
            let pair = crate::identity::start(identity.clone())?;
            tracing::info!(user = %pair.common_name,
                not_after = %multus_host::time::rfc3339(pair.not_after),
                "the thin plugin authenticates with this node's own certificate");
        }
        self.sync_kubeconfig()?;
        Ok(())
    }

    /// Rewrite the token file and the kubeconfig when the service account changed
    /// (with `--per-node-certificate`: the kubeconfig naming the certificate file, and
    /// no token on the host).
    pub fn sync_kubeconfig(&self) -> Result<kubeconfig::Written, NodeError> {
        if let Some((identity, _)) = &self.identity {
            let ca_path = self.args.service_account_dir.join("ca.crt");
            let ca = std::fs::read(&ca_path).map_err(|e| {
                NodeError::ServiceAccount(format!(
                    "cannot read the service account's CA {}: {e}",
                    ca_path.display()
                ))
            })?;
            let on_host = host_path(&self.args.host_prefix, &identity.config.current_file());
            let written =
                kubeconfig::write_for_cert(&self.kubeconfig, &self.server, &ca, &on_host)?;
            if written {
                tracing::info!(path = %self.kubeconfig.kubeconfig.display(), "wrote the kubeconfig");
            }
            return Ok(kubeconfig::Written {
                token: false,
                kubeconfig: written,
            });
        }
        let account = ServiceAccount::read(&self.args.service_account_dir)?;
        let written = kubeconfig::write(&self.kubeconfig, &self.server, &account)?;
        if written.token {
            tracing::info!(path = %self.kubeconfig.token.display(), "wrote the service-account token");
        }
        if written.kubeconfig {
            tracing::info!(path = %self.kubeconfig.kubeconfig.display(), "wrote the kubeconfig");
        }
        Ok(written)
    }

    /// The primary CNI config: its name's path and the file to read it from (the
    /// `.old` copy when `--rename-conf-file` renamed it). `None` when there is none yet.
    fn find_primary(&self) -> Result<Option<(PathBuf, PathBuf)>, NodeError> {
        let dir = &self.args.multus_autoconfig_dir;
        let rename = self.args.rename_conf_file;
        let pick = |path: PathBuf| {
            let old = renamed_path(&path);
            if path.is_file() {
                Some((path.clone(), path))
            } else if rename && old.is_file() {
                Some((path, old))
            } else {
                None
            }
        };
        if !self.args.multus_master_cni_file_name.is_empty() {
            return Ok(pick(dir.join(&self.args.multus_master_cni_file_name)));
        }
        let entries = std::fs::read_dir(dir).map_err(|source| NodeError::Io {
            action: "list".to_owned(),
            path: dir.clone(),
            source,
        })?;
        let mut names = Vec::new();
        for entry in entries.flatten() {
            if !entry
                .file_type()
                .is_ok_and(|t| t.is_file() || t.is_symlink())
            {
                continue;
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            match name.strip_suffix(RENAMED_SUFFIX) {
                Some(original) if rename && generate::is_config_name(original) => {
                    names.push(original.to_owned());
                }
                _ => names.push(name),
            }
        }
        let chosen = generate::choose_primary(names.iter().map(String::as_str));
        Ok(chosen.and_then(|name| pick(dir.join(name))))
    }

    /// Write the multus configuration if it is not current: generated from the primary
    /// (`auto`) or copied from `--multus-conf-file`.
    pub fn sync_conf(&mut self) -> Result<ConfSync, NodeError> {
        if !is_auto(&self.args.multus_conf_file) {
            return self.copy_conf();
        }
        let Some((primary, source)) = self.find_primary()? else {
            return Ok(ConfSync::NoPrimary(self.args.multus_autoconfig_dir.clone()));
        };
        let bytes = std::fs::read(&source).map_err(|e| NodeError::Io {
            action: "read the primary CNI config".to_owned(),
            path: source.clone(),
            source: e,
        })?;
        let generated = generate::generate(&bytes, &primary, &self.options)
            .map_err(|e| NodeError::Config(e.to_string()))?;
        let target = self.args.cni_conf_dir.join(generated.file_name);
        let stale = self.args.cni_conf_dir.join(generated.stale_file_name());
        let changed = std::fs::read(&target).ok().as_deref() != Some(generated.bytes.as_slice());
        if changed {
            atomic::write_atomic(&target, &generated.bytes, CONF_MODE)?;
            tracing::info!(path = %target.display(), primary = %source.display(), "wrote the multus configuration");
        }
        // A file of the other format would be read first by the runtime (".conf" sorts
        // before ".conflist"), or hide ours: it is ours from an earlier version.
        match std::fs::remove_file(&stale) {
            Ok(()) => {
                tracing::info!(path = %stale.display(), "removed the configuration of the other format")
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(path = %stale.display(), error = %e, "cannot remove the configuration of the other format")
            }
        }
        if self.args.rename_conf_file && source == primary {
            let old = renamed_path(&primary);
            std::fs::rename(&primary, &old).map_err(|e| NodeError::Io {
                action: "rename the primary CNI config (--rename-conf-file)".to_owned(),
                path: primary.clone(),
                source: e,
            })?;
            tracing::info!(from = %primary.display(), to = %old.display(), "renamed the primary CNI config");
            self.renamed = Some(primary);
        }
        self.current = Some(target.clone());
        Ok(if changed {
            ConfSync::Written(target)
        } else {
            ConfSync::Unchanged(target)
        })
    }

    fn copy_conf(&mut self) -> Result<ConfSync, NodeError> {
        let source = PathBuf::from(&self.args.multus_conf_file);
        let bytes = std::fs::read(&source).map_err(|e| NodeError::Io {
            action: "read --multus-conf-file".to_owned(),
            path: source.clone(),
            source: e,
        })?;
        check_conf(&bytes).map_err(|reason| {
            NodeError::Config(format!(
                "--multus-conf-file {} is not a usable multus configuration: {reason}",
                source.display()
            ))
        })?;
        let name = source.file_name().ok_or_else(|| {
            NodeError::Usage(format!(
                "--multus-conf-file {} has no file name",
                source.display()
            ))
        })?;
        let target = self.args.cni_conf_dir.join(name);
        self.current = Some(target.clone());
        if std::fs::read(&target).ok().as_deref() == Some(bytes.as_slice()) {
            return Ok(ConfSync::Unchanged(target));
        }
        atomic::write_atomic(&target, &bytes, CONF_MODE)?;
        tracing::info!(path = %target.display(), "copied the multus configuration");
        Ok(ConfSync::Written(target))
    }

    /// Remove the configuration this process keeps (and put back a renamed primary).
    pub fn cleanup(&mut self) {
        let mut targets: Vec<PathBuf> = self.current.take().into_iter().collect();
        if is_auto(&self.args.multus_conf_file) {
            for name in [CONF_FILE_NAME, CONFLIST_FILE_NAME] {
                let path = self.args.cni_conf_dir.join(name);
                if !targets.contains(&path) {
                    targets.push(path);
                }
            }
        }
        for target in targets {
            match std::fs::remove_file(&target) {
                Ok(()) => {
                    tracing::info!(path = %target.display(), "removed the multus configuration")
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %target.display(), error = %e, "cannot remove the multus configuration")
                }
            }
        }
        if let Some(primary) = self.renamed.take() {
            let old = renamed_path(&primary);
            if !primary.exists() && old.exists() {
                match std::fs::rename(&old, &primary) {
                    Ok(()) => {
                        tracing::info!(path = %primary.display(), "restored the primary CNI config")
                    }
                    Err(e) => {
                        tracing::warn!(path = %old.display(), error = %e, "cannot restore the primary CNI config")
                    }
                }
            }
        }
    }

    /// The directories whose changes matter.
    fn watched_dirs(&self) -> Vec<PathBuf> {
        let mut dirs = vec![
            self.args.service_account_dir.clone(),
            self.args.cni_conf_dir.clone(),
        ];
        if is_auto(&self.args.multus_conf_file) {
            dirs.push(self.args.multus_autoconfig_dir.clone());
        } else if let Some(parent) = Path::new(&self.args.multus_conf_file).parent() {
            dirs.push(parent.to_owned());
        }
        dirs.sort();
        dirs.dedup();
        dirs
    }
}

/// `<path>.old`.
fn renamed_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(RENAMED_SUFFIX);
    PathBuf::from(name)
}

fn create_dir(dir: &Path, mode: u32) -> Result<(), NodeError> {
    use std::os::unix::fs::DirBuilderExt as _;
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(dir)
        .map_err(|source| NodeError::Io {
            action: "create the directory".to_owned(),
            path: dir.to_owned(),
            source,
        })
}

/// A configuration given as a file must be a JSON object, and a multus configuration
/// the plugin accepts when it names multus as its type.
fn check_conf(bytes: &[u8]) -> Result<(), String> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| format!("not JSON: {e}"))?;
    let object = value.as_object().ok_or("not a JSON object")?;
    let single_multus = object.get("type").and_then(|t| t.as_str()) == Some("multus");
    if single_multus {
        multus_core::config::MultusConf::parse(bytes).map_err(|e| e.to_string())?;
    } else if object.get("type").is_none() && object.get("plugins").is_none() {
        return Err("neither \"type\" nor \"plugins\"".to_owned());
    }
    Ok(())
}

/// Why the loop woke up.
#[derive(Debug)]
enum Wake {
    Files,
    Signal(Signal),
}

/// Block SIGTERM, SIGINT and SIGHUP in this thread (and the threads it starts later) and
/// deliver them through `sender` from a dedicated thread; a second signal exits 1 at
/// once.
fn start_signal_thread(sender: mpsc::Sender<Wake>) -> Result<(), NodeError> {
    let mut set = SigSet::empty();
    for signal in [Signal::SIGTERM, Signal::SIGINT, Signal::SIGHUP] {
        set.add(signal);
    }
    set.thread_block()
        .map_err(|e| NodeError::Usage(format!("cannot block signals: {e}")))?;
    std::thread::Builder::new()
        .name("signals".to_owned())
        .spawn(move || {
            let mut seen = false;
            loop {
                let Ok(signal) = set.wait() else { continue };
                if seen {
                    eprintln!("multus-node: second signal ({signal}): exiting now");
                    std::process::exit(1);
                }
                seen = true;
                let _ = sender.send(Wake::Signal(signal));
            }
        })
        .map_err(|e| NodeError::Usage(format!("cannot start the signal thread: {e}")))?;
    Ok(())
}

/// Run the thin entrypoint until a signal. Errors at start are returned (the process
/// exits non-zero); errors later are logged and retried.
pub fn run(args: ThinArgs) -> Result<(), NodeError> {
    let (sender, wakes) = mpsc::channel();
    // Before any other thread exists, so that every thread has the signals blocked.
    start_signal_thread(sender.clone())?;
    let mut thin = Thin::new(args)?;
    thin.prepare()?;
    let mut last_wait_log: Option<Instant> = None;
    let mut report = |thin: &mut Thin, at_start: bool| -> Result<(), NodeError> {
        match thin.sync_conf() {
            Ok(ConfSync::NoPrimary(dir)) => {
                if last_wait_log.is_none_or(|at| at.elapsed() >= WAIT_LOG_EVERY) {
                    tracing::warn!(dir = %dir.display(), "waiting for the primary CNI config (none yet)");
                    last_wait_log = Some(Instant::now());
                }
                Ok(())
            }
            Ok(_) => Ok(()),
            // A bad --multus-conf-file is the operator's error: fail at start.
            Err(e) if at_start && !is_auto(&thin.args.multus_conf_file) => Err(e),
            Err(e) => {
                tracing::error!(error = %e, "the multus configuration was not updated");
                Ok(())
            }
        }
    };
    report(&mut thin, true)?;

    let mut watcher = {
        let sender = sender.clone();
        notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            if event.is_ok() {
                let _ = sender.send(Wake::Files);
            }
        })
        .map_err(|e| NodeError::Usage(format!("cannot watch files: {e}")))?
    };
    for dir in thin.watched_dirs() {
        if let Err(e) = watcher.watch(&dir, notify::RecursiveMode::NonRecursive) {
            tracing::warn!(dir = %dir.display(), error = %e, "cannot watch; polling only");
        }
    }
    tracing::info!(
        watch_config = !thin.args.skip_config_watch,
        poll_seconds = thin.args.poll_interval_seconds,
        "ready"
    );
    let poll = Duration::from_secs(thin.args.poll_interval_seconds);
    loop {
        let wake = wakes.recv_timeout(poll);
        if let Ok(Wake::Signal(signal)) = wake {
            tracing::info!(%signal, cleanup = thin.args.cleanup_config_on_exit, "stopping");
            if thin.args.cleanup_config_on_exit {
                thin.cleanup();
            }
            return Ok(());
        }
        if matches!(wake, Ok(Wake::Files)) {
            // Let the writer finish, then act once for the whole burst.
            std::thread::sleep(SETTLE);
            let mut signal = None;
            while let Ok(next) = wakes.try_recv() {
                if let Wake::Signal(s) = next {
                    signal = Some(s);
                }
            }
            if let Some(signal) = signal {
                let _ = sender.send(Wake::Signal(signal));
                continue;
            }
        }
        if let Err(e) = thin.sync_kubeconfig() {
            tracing::error!(error = %e, "the kubeconfig was not refreshed");
        }
        if !thin.args.skip_config_watch {
            report(&mut thin, false)?;
        }
    }
}

/// Where `--per-node-certificate` writes the bootstrap kubeconfig made from the
/// service account (in `--certdir`, which is 0700).
pub const BOOTSTRAP_NAME: &str = "bootstrap.kubeconfig";

/// `probe thin`: the kubeconfig, its token (or, for a per-node identity, the
/// certificate it names) and the configuration are on disk.
pub fn probe(cni_conf_dir: &Path, multus_conf_file: &str) -> Result<String, NodeError> {
    let present = |path: &Path| std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() > 0);
    let multus_d = cni_conf_dir.join("multus.d");
    let kubeconfig_path = multus_d.join(kubeconfig::KUBECONFIG_NAME);
    let per_node = std::fs::read_to_string(&kubeconfig_path)
        .is_ok_and(|text| text.contains("client-certificate"));
    let mut required = vec![kubeconfig_path];
    if !per_node {
        required.push(multus_d.join(kubeconfig::TOKEN_NAME));
    }
    for path in required {
        if !present(&path) {
            return Err(NodeError::Probe(format!(
                "{} is missing or empty",
                path.display()
            )));
        }
    }
    let confs: Vec<PathBuf> = if is_auto(multus_conf_file) {
        vec![
            cni_conf_dir.join(CONF_FILE_NAME),
            cni_conf_dir.join(CONFLIST_FILE_NAME),
        ]
    } else {
        Path::new(multus_conf_file)
            .file_name()
            .map(|name| cni_conf_dir.join(name))
            .into_iter()
            .collect()
    };
    match confs.iter().find(|p| present(p)) {
        Some(conf) => Ok(format!("ready: {}", conf.display())),
        None => Err(NodeError::Probe(format!(
            "no multus configuration yet ({})",
            confs
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" or ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_paths_drop_the_prefix() {
        let prefix = Path::new("/host");
        assert_eq!(
            host_path(prefix, Path::new("/host/etc/cni/multus/net.d")),
            PathBuf::from("/etc/cni/multus/net.d")
        );
        assert_eq!(
            host_path(prefix, Path::new("/etc/cni/multus/net.d")),
            PathBuf::from("/etc/cni/multus/net.d")
        );
        assert_eq!(
            host_path(prefix, Path::new("/hostroot/x")),
            PathBuf::from("/hostroot/x")
        );
        assert_eq!(
            host_path(Path::new("/"), Path::new("/a")),
            PathBuf::from("/a")
        );
    }

    #[test]
    fn given_configurations_are_checked() {
        assert!(check_conf(br#"{"cniVersion":"0.3.1","name":"m","type":"multus","delegates":[{"type":"bridge"}]}"#).is_ok());
        assert!(check_conf(br#"{"cniVersion":"0.3.1","name":"m","type":"multus"}"#).is_err());
        assert!(check_conf(br#"{"cniVersion":"1.0.0","name":"m","plugins":[]}"#).is_ok());
        assert!(check_conf(b"nope").is_err());
        assert!(check_conf(b"{}").is_err());
    }
}
