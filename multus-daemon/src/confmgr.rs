//! The config manager: owns multus' CNI configuration file in `cniConfigDir`.
//!
//! - `multusConfigFile: auto`: the primary CNI config is `multusMasterCNI` in
//!   `multusAutoconfigDir`, else the lexically first CNI config there that is not multus'
//!   own; multus' conf is generated from it ([`multus_core::generate`], thick flavour)
//!   and written atomically (temp file, fsync, rename) with mode 0600. The directories
//!   are watched (`notify`, debounced) and re-read every [`RESYNC_INTERVAL`] as well:
//!   an edited primary, a primary replaced by another file, or multus' file removed by
//!   someone all lead to a new generation. Nothing is written when the primary is
//!   missing or invalid: the previous file stays (never an empty or invalid file), and
//!   the file stays when the daemon stops (pods created during a daemon restart keep
//!   their secondary networks; the shim waits for the daemon).
//! - a path: that file is copied into `cniConfigDir` (atomically) and the daemon keeps
//!   serving.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use multus_core::generate::{
    self, CONF_FILE_NAME, CONFLIST_FILE_NAME, GeneratorOptions, choose_primary,
};
use notify::Watcher;
use serde_json::Value;
use tokio::sync::{mpsc, watch};

use crate::config::{ConfigFileMode, DaemonConfig};
use multus_cni::daemon_config::generator_options;

/// Wait after a file-system event for more to come before regenerating.
pub const DEBOUNCE: Duration = Duration::from_millis(200);
/// Periodic re-read, in case an event was missed (or a directory did not exist yet).
pub const RESYNC_INTERVAL: Duration = Duration::from_secs(10);

/// What the manager did last, for `GET /config`.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ManagerStatus {
    /// The primary CNI config in use.
    pub primary: Option<PathBuf>,
    /// The file multus' configuration is in.
    pub file: Option<PathBuf>,
    /// Why the last attempt did not produce a file, if it did not.
    pub last_error: Option<String>,
}

impl ManagerStatus {
    /// As JSON.
    pub fn to_value(&self) -> Value {
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        serde_json::json!({
            "primary": path(&self.primary),
            "file": path(&self.file),
            "lastError": self.last_error,
        })
    }
}

/// The shared status of the manager.
pub type SharedStatus = Arc<Mutex<ManagerStatus>>;

/// Write `bytes` to `path` atomically with mode 0600 (the one writer of
/// [`multus_host::atomic`]), creating its directory when missing. The temporary file is a
/// dot-name without a CNI extension: the runtime never reads it as a config.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    Ok(multus_host::atomic::write_atomic(path, bytes, 0o600)?)
}

/// The primary CNI config's path, if there is one.
fn find_primary(config: &DaemonConfig) -> Result<PathBuf, String> {
    let dir = &config.autoconfig_dir;
    if let Some(name) = &config.master_cni {
        let path = dir.join(name);
        if generate::is_generated_name(name) {
            return Err(format!(
                "cannot specify {} as multusMasterCNI: it is multus' own configuration (recursive config load)",
                path.display()
            ));
        }
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!(
                "the primary CNI config {} (multusMasterCNI) does not exist",
                path.display()
            ))
        };
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot read multusAutoconfigDir {}: {e}", dir.display()))?;
    let names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    choose_primary(names.iter().map(String::as_str))
        .map(|name| dir.join(name))
        .ok_or_else(|| {
            format!(
                "no primary CNI config (*.conf, *.conflist, *.json) in {}",
                dir.display()
            )
        })
}

/// One generation: find the primary, generate, write when the content changed.
/// Returns the file written (or already up to date).
pub fn sync_once(
    config: &DaemonConfig,
    options: &GeneratorOptions,
) -> Result<(PathBuf, PathBuf), String> {
    let primary = find_primary(config)?;
    let bytes = std::fs::read(&primary).map_err(|e| {
        format!(
            "cannot read the primary CNI config {}: {e}",
            primary.display()
        )
    })?;
    let generated = generate::generate(&bytes, &primary, options).map_err(|e| e.to_string())?;
    let target = config.cni_config_dir.join(generated.file_name);
    let current = std::fs::read(&target).ok();
    if current.as_deref() != Some(generated.bytes.as_slice()) {
        write_atomically(&target, &generated.bytes)
            .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
        tracing::info!(file = %target.display(), primary = %primary.display(), "wrote multus configuration");
    }
    // A file of the other name from an earlier generation would be read first (or
    // instead) by the runtime.
    let stale = config.cni_config_dir.join(generated.stale_file_name());
    if stale.exists() {
        match std::fs::remove_file(&stale) {
            Ok(()) => {
                tracing::info!(file = %stale.display(), "removed the stale multus configuration")
            }
            Err(e) => {
                tracing::warn!(file = %stale.display(), error = %e, "cannot remove the stale multus configuration")
            }
        }
    }
    Ok((primary, target))
}

/// Copy a user-given conf into `cniConfigDir` (same file name).
pub fn copy_user_conf(config: &DaemonConfig, source: &Path) -> Result<PathBuf, String> {
    let name = source
        .file_name()
        .ok_or_else(|| format!("multusConfigFile {} has no file name", source.display()))?;
    let bytes = std::fs::read(source)
        .map_err(|e| format!("cannot read multusConfigFile {}: {e}", source.display()))?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(format!("multusConfigFile {} is empty", source.display()));
    }
    serde_json::from_slice::<serde_json::Map<String, Value>>(&bytes).map_err(|e| {
        format!(
            "multusConfigFile {} is not a JSON object: {e}",
            source.display()
        )
    })?;
    let target = config.cni_config_dir.join(name);
    if target != source {
        write_atomically(&target, &bytes)
            .map_err(|e| format!("cannot write {}: {e}", target.display()))?;
    }
    Ok(target)
}

/// Run the manager until `shutdown` turns true; the file is left in place.
pub async fn run(
    config: Arc<DaemonConfig>,
    status: SharedStatus,
    mut shutdown: watch::Receiver<bool>,
) {
    let source = match &config.config_file {
        ConfigFileMode::Copy(source) => source.clone(),
        ConfigFileMode::Auto => {
            return run_auto(config, status, shutdown).await;
        }
    };
    let copied = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || copy_user_conf(&config, &source)).await
    };
    {
        let mut status = status
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match copied {
            Ok(Ok(target)) => {
                tracing::info!(file = %target.display(), "copied multusConfigFile");
                status.file = Some(target);
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot install multusConfigFile; serving anyway");
                status.last_error = Some(e);
            }
            Err(e) => status.last_error = Some(e.to_string()),
        }
    }
    stopped(&mut shutdown).await;
}

async fn run_auto(
    config: Arc<DaemonConfig>,
    status: SharedStatus,
    mut shutdown: watch::Receiver<bool>,
) {
    let options = Arc::new(generator_options(&config));
    let (tx, mut rx) = mpsc::channel::<()>(1);
    let mut watcher = DirWatcher::new(&config, tx);
    let mut resync = tokio::time::interval(RESYNC_INTERVAL);
    resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        watcher.watch_new_dirs();
        let outcome = {
            let (config, options) = (config.clone(), options.clone());
            tokio::task::spawn_blocking(move || sync_once(&config, &options)).await
        };
        record_outcome(&status, outcome);
        tokio::select! {
            event = rx.recv() => {
                if event.is_none() {
                    // The watcher is gone: rely on the periodic re-read.
                    resync.tick().await;
                }
                tokio::time::sleep(DEBOUNCE).await;
                while rx.try_recv().is_ok() {}
            }
            _ = resync.tick() => {}
            () = stopped(&mut shutdown) => {
                tracing::info!("config manager stopped; multus' configuration file is kept");
                return;
            }
        }
    }
}

/// Watches the config directories (`multusAutoconfigDir`, `cniConfigDir`) for changes,
/// each from when it exists; without a watcher, only the periodic re-read remains.
struct DirWatcher {
    watcher: Option<notify::RecommendedWatcher>,
    dirs: Vec<PathBuf>,
    watched: Vec<PathBuf>,
}

impl DirWatcher {
    /// A watcher that sends on `changed` (a full channel already holds a pending
    /// regeneration).
    fn new(config: &DaemonConfig, changed: mpsc::Sender<()>) -> Self {
        let watcher = match notify::recommended_watcher(
            move |event: notify::Result<notify::Event>| {
                if event.is_ok() {
                    let _ = changed.try_send(());
                }
            },
        ) {
            Ok(watcher) => Some(watcher),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch the CNI config directories; re-reading them every {RESYNC_INTERVAL:?}");
                None
            }
        };
        let mut dirs = vec![config.autoconfig_dir.clone()];
        if config.cni_config_dir != config.autoconfig_dir {
            dirs.push(config.cni_config_dir.clone());
        }
        Self {
            watcher,
            dirs,
            watched: Vec::new(),
        }
    }

    /// Start watching the directories that exist now and were not watched yet.
    fn watch_new_dirs(&mut self) {
        let Some(watcher) = self.watcher.as_mut() else {
            return;
        };
        for dir in &self.dirs {
            if !self.watched.contains(dir) && dir.is_dir() {
                match watcher.watch(dir, notify::RecursiveMode::NonRecursive) {
                    Ok(()) => self.watched.push(dir.clone()),
                    Err(e) => {
                        tracing::warn!(dir = %dir.display(), error = %e, "cannot watch directory")
                    }
                }
            }
        }
    }
}

/// Keep the outcome of one generation in the manager's status; a new error is logged.
fn record_outcome(
    status: &SharedStatus,
    outcome: Result<Result<(PathBuf, PathBuf), String>, tokio::task::JoinError>,
) {
    let mut status = status
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match outcome {
        Ok(Ok((primary, file))) => {
            status.primary = Some(primary);
            status.file = Some(file);
            status.last_error = None;
        }
        Ok(Err(e)) => {
            if status.last_error.as_deref() != Some(e.as_str()) {
                tracing::error!(error = %e, "cannot generate the multus configuration; keeping the current file");
            }
            status.last_error = Some(e);
        }
        Err(e) => status.last_error = Some(e.to_string()),
    }
}

/// Resolves once `shutdown` turns true (or its sender is gone).
pub async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stopping| *stopping).await;
}

/// Both names multus' generated configuration may have.
pub const GENERATED_NAMES: [&str; 2] = [CONF_FILE_NAME, CONFLIST_FILE_NAME];

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn config(dir: &Path, extra: &str) -> DaemonConfig {
        let text = format!(
            r#"{{"cniConfigDir":"{0}","multusAutoconfigDir":"{0}","daemonSocketDir":"/run/multus/"{extra}}}"#,
            dir.display()
        );
        DaemonConfig::parse(&dir.join("daemon-config.json"), text.as_bytes()).unwrap()
    }

    #[test]
    fn the_pod_annotations_capability_follows_where_annotations_come_from() {
        let dir = tempfile::tempdir().unwrap();
        let declared = |extra: &str| {
            let options = generator_options(&config(dir.path(), extra));
            options.annotations_from_runtime
        };
        assert!(declared(
            r#","networkAttachmentDir":"/etc/cni/multus/networks""#
        ));
        assert!(!declared(
            r#","networkAttachmentDir":"/n","podAnnotationsFrom":"none""#
        ));
        assert!(!declared(r#","kubeconfig":"/etc/kube.conf""#));
        assert!(declared(
            r#","kubeconfig":"/etc/kube.conf","trustRuntimeAnnotations":true"#
        ));
    }

    #[test]
    fn generates_regenerates_and_never_writes_garbage() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(dir.path(), "");
        let options = generator_options(&config);
        assert!(
            sync_once(&config, &options)
                .unwrap_err()
                .contains("no primary")
        );
        std::fs::write(
            dir.path().join("10-bridge.conf"),
            r#"{"cniVersion":"0.4.0","name":"b","type":"bridge","capabilities":{"mac":true}}"#,
        )
        .unwrap();
        let (primary, file) = sync_once(&config, &options).unwrap();
        assert_eq!(primary, dir.path().join("10-bridge.conf"));
        assert_eq!(file, dir.path().join("00-multus.conf"));
        let meta = std::fs::metadata(&file).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        let doc: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        assert_eq!(doc["clusterNetwork"], primary.display().to_string());
        assert_eq!(doc["capabilities"]["mac"], true);
        let inode = meta.ino();
        // Unchanged primary: the file is not rewritten.
        sync_once(&config, &options).unwrap();
        assert_eq!(std::fs::metadata(&file).unwrap().ino(), inode);
        // A broken primary leaves the good file alone.
        std::fs::write(dir.path().join("10-bridge.conf"), "").unwrap();
        assert!(sync_once(&config, &options).unwrap_err().contains("empty"));
        assert_eq!(
            std::fs::read(&file).unwrap(),
            serde_json::to_vec_pretty(&doc)
                .unwrap()
                .into_iter()
                .chain(*b"\n")
                .collect::<Vec<u8>>()
        );
        // A 1.0.0 primary that sorts first replaces it; the .conf goes.
        std::fs::write(
            dir.path().join("05-ptp.conflist"),
            r#"{"cniVersion":"1.0.0","name":"p","plugins":[{"type":"ptp"}]}"#,
        )
        .unwrap();
        let (primary, file) = sync_once(&config, &options).unwrap();
        assert_eq!(primary, dir.path().join("05-ptp.conflist"));
        assert_eq!(file, dir.path().join("00-multus.conflist"));
        assert!(!dir.path().join("00-multus.conf").exists());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty());
    }

    #[test]
    fn master_cni_is_used_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("20-b.conf"),
            r#"{"cniVersion":"0.3.1","name":"b","type":"bridge"}"#,
        )
        .unwrap();
        std::fs::write(
            dir.path().join("10-a.conf"),
            r#"{"cniVersion":"0.3.1","name":"a","type":"bridge"}"#,
        )
        .unwrap();
        let config = config(dir.path(), r#","multusMasterCNI":"20-b.conf""#);
        let (primary, _) = sync_once(&config, &generator_options(&config)).unwrap();
        assert_eq!(primary, dir.path().join("20-b.conf"));
        let config = super::tests::config(dir.path(), r#","multusMasterCNI":"00-multus.conf""#);
        assert!(
            sync_once(&config, &generator_options(&config))
                .unwrap_err()
                .contains("recursive")
        );
    }

    #[test]
    fn a_user_conf_is_copied() {
        let dir = tempfile::tempdir().unwrap();
        let source_dir = tempfile::tempdir().unwrap();
        let source = source_dir.path().join("70-multus.conf");
        std::fs::write(&source, r#"{"cniVersion":"0.3.1","type":"multus-shim"}"#).unwrap();
        let config = config(dir.path(), "");
        let target = copy_user_conf(&config, &source).unwrap();
        assert_eq!(
            std::fs::read(&target).unwrap(),
            std::fs::read(&source).unwrap()
        );
        std::fs::write(&source, "").unwrap();
        assert!(
            copy_user_conf(&config, &source)
                .unwrap_err()
                .contains("empty")
        );
    }
}
