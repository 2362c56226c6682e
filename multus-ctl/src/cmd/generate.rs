//! `multus-ctl config generate`: the `00-multus.conf(list)` multus-daemon (thick) or the
//! thin entrypoint (thin) would write for a primary CNI config, through the code they
//! use: [`multus_core::generate::generate`], with the options built as they build them.
//!
//! - thick with `--daemon-config`: the file is read and checked by multus-daemon's own
//!   parser ([`multus_core::daemon_config::DaemonConfig`]) and the options come from its
//!   node adapter ([`multus_cni::daemon_config::generator_options`]);
//! - thick with flags: the flags become the daemon-config keys of the same names, which
//!   then take the same path (so the same checks apply);
//! - thin: the options the thin entrypoint (`multus-node thin-entrypoint`) builds from
//!   its flags, with its defaults (`kubeconfig`, `confDir`, `logToStderr: true`).

use std::io::Write;
use std::path::{Path, PathBuf};

use multus_core::daemon_config::{ConfigError, ConfigFileMode, DaemonConfig};
use multus_core::generate::{self, Flavour, GeneratorOptions};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::cli::{GenerateArgs, GenerateMode, THIN_DEFAULT_CONF_DIR, THIN_DEFAULT_KUBECONFIG};
use crate::cmd::daemon::load_daemon_config;
use crate::error::{CtlError, CtlResult, Outcome, one_line};
use crate::output::{Printer, sections};

/// The JSON/YAML document.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct GenerateReport {
    /// `thick` or `thin`.
    mode: &'static str,
    /// The primary CNI config read.
    primary: String,
    /// The daemon configuration the options came from.
    #[serde(skip_serializing_if = "Option::is_none")]
    daemon_config: Option<String>,
    /// Thick: `clusterNetwork`, the primary's path as the daemon sees it.
    #[serde(skip_serializing_if = "Option::is_none")]
    cluster_network: Option<String>,
    /// `00-multus.conf` or `00-multus.conflist` (or a copied file's name).
    file_name: String,
    /// Where it would be written, when known (the daemon configuration's cniConfigDir).
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    /// The document's cniVersion.
    cni_version: String,
    /// The document.
    document: Value,
    /// Remarks (a different primary the daemon would choose, a copied file).
    notes: Vec<String>,
}

/// What was produced.
struct Produced {
    file_name: String,
    bytes: Vec<u8>,
    cni_version: String,
    cluster_network: Option<String>,
    dir: Option<PathBuf>,
    notes: Vec<String>,
}

/// `config generate`.
pub fn run(printer: &Printer, args: &GenerateArgs) -> CtlResult {
    check_flags(args)?;
    let primary = read_primary(&args.primary)?;
    let produced = match (args.mode, &args.daemon_config) {
        (GenerateMode::Thick, Some(file)) => {
            let config = load_daemon_config(file)?;
            from_daemon_config(args, &config, &primary)?
        }
        (GenerateMode::Thick, None) => {
            let config = daemon_config_of_flags(args)?;
            let cluster_network = args.cluster_network.clone().unwrap_or_else(|| {
                std::path::absolute(&args.primary)
                    .unwrap_or_else(|_| args.primary.clone())
                    .display()
                    .to_string()
            });
            let mut options = multus_cni::daemon_config::generator_options(&config);
            options.conflist |= args.conflist;
            produce(
                &primary,
                Path::new(&cluster_network),
                &options,
                Some(cluster_network.clone()),
            )?
        }
        (GenerateMode::Thin, _) => {
            let mut options = thin_options(args);
            options.conflist |= args.conflist;
            produce(&primary, &args.primary, &options, None)?
        }
    };
    if args.raw {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&produced.bytes);
        let _ = out.flush();
        return Ok(Outcome::Clean);
    }
    let document: Value = serde_json::from_slice(&produced.bytes).unwrap_or(Value::Null);
    let report = GenerateReport {
        mode: match args.mode {
            GenerateMode::Thick => "thick",
            GenerateMode::Thin => "thin",
        },
        primary: args.primary.display().to_string(),
        daemon_config: args.daemon_config.as_ref().map(|p| p.display().to_string()),
        cluster_network: produced.cluster_network.clone(),
        path: produced
            .dir
            .as_ref()
            .map(|d| d.join(&produced.file_name).display().to_string()),
        file_name: produced.file_name.clone(),
        cni_version: produced.cni_version.clone(),
        document,
        notes: produced.notes.clone(),
    };
    printer.emit(&report, |p| {
        let writer = match args.mode {
            GenerateMode::Thick => "multus-daemon",
            GenerateMode::Thin => "the thin entrypoint",
        };
        let heading = match &report.path {
            Some(path) => format!("{} ({} writes it as {path})", report.file_name, writer),
            None => format!("{} (as {writer} writes it)", report.file_name),
        };
        let text = String::from_utf8_lossy(&produced.bytes);
        sections(vec![
            format!("{}\n{}", p.heading(&heading), text.trim_end()),
            report
                .notes
                .iter()
                .map(|n| format!("note: {n}"))
                .collect::<Vec<_>>()
                .join("\n"),
        ])
    })?;
    Ok(Outcome::Clean)
}

/// Flags of the other mode are refused: they would not be in the document.
fn check_flags(args: &GenerateArgs) -> Result<(), CtlError> {
    let thick_only: [(&'static str, bool); 9] = [
        ("--daemon-config", args.daemon_config.is_some()),
        ("--cluster-network", args.cluster_network.is_some()),
        ("--capability", !args.capabilities.is_empty()),
        ("--log-options", args.log_options.is_some()),
        ("--cni-dir", args.cni_dir.is_some()),
        (
            "--auxiliary-cni-chain-name",
            args.auxiliary_cni_chain_name.is_some(),
        ),
        ("--daemon-socket-dir", args.daemon_socket_dir.is_some()),
        ("--del-grace-seconds", args.del_grace_seconds.is_some()),
        (
            "--ready-timeout-seconds",
            args.ready_timeout_seconds.is_some(),
        ),
    ];
    let thin_only: [(&'static str, bool); 3] = [
        ("--multus-kubeconfig", args.multus_kubeconfig.is_some()),
        ("--multus-conf-dir", args.multus_conf_dir.is_some()),
        (
            "--readiness-indicator-file",
            args.readiness_indicator_file.is_some(),
        ),
    ];
    fn refused(list: &[(&'static str, bool)]) -> Vec<&'static str> {
        list.iter()
            .filter(|(_, given)| *given)
            .map(|(flag, _)| *flag)
            .collect()
    }
    match args.mode {
        GenerateMode::Thin => {
            let flags = refused(&thick_only);
            if !flags.is_empty() {
                return Err(CtlError::Usage(format!(
                    "{}: only with --mode thick (the thin entrypoint does not write these keys)",
                    flags.join(", ")
                )));
            }
            if let Some(level) = &args.log_level
                && !level.is_empty()
                && !matches!(
                    level.to_ascii_lowercase().as_str(),
                    "debug" | "verbose" | "error" | "panic"
                )
            {
                return Err(CtlError::Usage(format!(
                    "--log-level {level:?}: expected debug, verbose, error or panic"
                )));
            }
        }
        GenerateMode::Thick => {
            let flags = refused(&thin_only);
            if !flags.is_empty() {
                return Err(CtlError::Usage(format!(
                    "{}: only with --mode thin (multus-daemon does not write these keys; it waits for readinessindicatorfile itself)",
                    flags.join(", ")
                )));
            }
        }
    }
    Ok(())
}

fn read_primary(path: &Path) -> Result<Vec<u8>, CtlError> {
    std::fs::read(path).map_err(|e| {
        let what = format!("cannot read the primary CNI config {}", path.display());
        if e.kind() == std::io::ErrorKind::NotFound {
            CtlError::NotFound(format!(
                "{what}: no such file; pass --primary with the node's cluster network config (in /etc/cni/net.d)"
            ))
        } else {
            CtlError::Unreachable(format!("{what}: {}", one_line(e)))
        }
    })
}

/// Generate; a primary the generator refuses is exit code 3 with its reason.
fn produce(
    primary: &[u8],
    primary_path: &Path,
    options: &GeneratorOptions,
    cluster_network: Option<String>,
) -> Result<Produced, CtlError> {
    let generated = generate::generate(primary, primary_path, options).map_err(|e| {
        CtlError::Unreachable(format!(
            "cannot generate multus' configuration: {}; nothing would be written (the previous file stays)",
            one_line(e)
        ))
    })?;
    Ok(Produced {
        file_name: generated.file_name.to_owned(),
        bytes: generated.bytes,
        cni_version: generated.cni_version.as_str().to_owned(),
        cluster_network,
        dir: None,
        notes: Vec::new(),
    })
}

/// Thick, with a daemon configuration: what its config manager does.
fn from_daemon_config(
    args: &GenerateArgs,
    config: &DaemonConfig,
    primary: &[u8],
) -> Result<Produced, CtlError> {
    if let ConfigFileMode::Copy(source) = &config.config_file {
        return copied(config, source);
    }
    let name = args.primary.file_name().ok_or_else(|| {
        CtlError::Usage(format!(
            "--primary {} has no file name",
            args.primary.display()
        ))
    })?;
    // The daemon reads the primary in multusAutoconfigDir, and names it so.
    let cluster_network = args
        .cluster_network
        .clone()
        .unwrap_or_else(|| config.autoconfig_dir.join(name).display().to_string());
    let mut options = multus_cni::daemon_config::generator_options(config);
    options.conflist |= args.conflist;
    let mut produced = produce(
        primary,
        Path::new(&cluster_network),
        &options,
        Some(cluster_network.clone()),
    )?;
    produced.dir = Some(config.cni_config_dir.clone());
    if let Some(note) = other_primary(config, &name.to_string_lossy()) {
        produced.notes.push(note);
    }
    Ok(produced)
}

/// The note when the daemon would take another file as the primary.
fn other_primary(config: &DaemonConfig, name: &str) -> Option<String> {
    let dir = &config.autoconfig_dir;
    if let Some(master) = &config.master_cni {
        return (master != name).then(|| {
            format!(
                "multus-daemon takes {} (multusMasterCNI) as the primary, not {name}",
                dir.join(master).display()
            )
        });
    }
    let names: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    let chosen = generate::choose_primary(names.iter().map(String::as_str))?;
    (chosen != name).then(|| {
        format!(
            "multus-daemon takes {} as the primary (the lexically first CNI config in multusAutoconfigDir), not {name}",
            dir.join(chosen).display()
        )
    })
}

/// `multusConfigFile` is a path: the daemon copies that file as it is.
fn copied(config: &DaemonConfig, source: &Path) -> Result<Produced, CtlError> {
    let what = format!(
        "multusConfigFile {} (of {})",
        source.display(),
        config.path.display()
    );
    let bytes = std::fs::read(source).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            CtlError::NotFound(format!(
                "{what} does not exist; multus-daemon would write nothing"
            ))
        } else {
            CtlError::Unreachable(format!("cannot read {what}: {}", one_line(e)))
        }
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(CtlError::Unreachable(format!(
            "{what} is empty; multus-daemon would write nothing"
        )));
    }
    let document: Map<String, Value> = serde_json::from_slice(&bytes).map_err(|e| {
        CtlError::Unreachable(format!(
            "{what} is not a JSON object: {e}; multus-daemon would write nothing"
        ))
    })?;
    let file_name = source
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok(Produced {
        file_name,
        bytes,
        cni_version: document
            .get("cniVersion")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        cluster_network: None,
        dir: Some(config.cni_config_dir.clone()),
        notes: vec![format!(
            "{what} is copied as it is, not generated: --primary plays no part"
        )],
    })
}

/// The generator flags as the daemon-config keys they stand for, checked by the
/// daemon's parser; a bad value names its flag.
fn daemon_config_of_flags(args: &GenerateArgs) -> Result<DaemonConfig, CtlError> {
    let mut doc = Map::new();
    let mut put = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            doc.insert(key.to_owned(), value);
        }
    };
    put("cniVersion", args.cni_version.clone().map(Value::from));
    put(
        "overrideNetworkName",
        args.override_network_name.then_some(Value::Bool(true)),
    );
    put(
        "forceCNIVersion",
        args.force_cni_version.then_some(Value::Bool(true)),
    );
    put(
        "capabilities",
        (!args.capabilities.is_empty()).then(|| {
            Value::Object(
                args.capabilities
                    .iter()
                    .map(|c| (c.clone(), Value::Bool(true)))
                    .collect(),
            )
        }),
    );
    put("logFile", args.log_file.clone().map(Value::from));
    put("logLevel", args.log_level.clone().map(Value::from));
    put("logToStderr", args.log_to_stderr.map(Value::Bool));
    let log_options = match &args.log_options {
        None => None,
        Some(text) => Some(
            serde_json::from_str::<Value>(text)
                .map_err(|e| CtlError::Usage(format!("--log-options {text:?} is not JSON: {e}")))?,
        ),
    };
    put("logOptions", log_options);
    put("binDir", args.bin_dir.clone().map(Value::from));
    put("cniDir", args.cni_dir.clone().map(Value::from));
    put(
        "namespaceIsolation",
        args.namespace_isolation.then_some(Value::Bool(true)),
    );
    put(
        "globalNamespaces",
        args.global_namespaces.clone().map(Value::from),
    );
    put(
        "auxiliaryCNIChainName",
        args.auxiliary_cni_chain_name.clone().map(Value::from),
    );
    put(
        "daemonSocketDir",
        args.daemon_socket_dir.clone().map(Value::from),
    );
    put(
        "daemonUnreachableDelGraceSeconds",
        args.del_grace_seconds.map(Value::from),
    );
    put(
        "daemonReadyTimeoutSeconds",
        args.ready_timeout_seconds.map(Value::from),
    );
    let bytes = Value::Object(doc).to_string();
    DaemonConfig::parse(Path::new("(flags)"), bytes.as_bytes()).map_err(|e| match e {
        ConfigError::Key { key, reason, .. } => {
            CtlError::Usage(format!("{}: {}", flag_of(&key), one_line(reason)))
        }
        other => CtlError::Usage(one_line(other)),
    })
}

/// The flag of a daemon-config key.
fn flag_of(key: &str) -> String {
    match key {
        "capabilities" => "--capability".to_owned(),
        "daemonUnreachableDelGraceSeconds" => "--del-grace-seconds".to_owned(),
        "daemonReadyTimeoutSeconds" => "--ready-timeout-seconds".to_owned(),
        "forceCNIVersion" => "--force-cni-version".to_owned(),
        "auxiliaryCNIChainName" => "--auxiliary-cni-chain-name".to_owned(),
        "cniVersion" => "--cni-version".to_owned(),
        other => {
            let mut flag = "--".to_owned();
            for c in other.chars() {
                if c.is_ascii_uppercase() {
                    flag.push('-');
                    flag.push(c.to_ascii_lowercase());
                } else {
                    flag.push(c);
                }
            }
            flag
        }
    }
}

/// The options `multus-node thin-entrypoint` builds from its flags (`Thin::new`), with
/// its defaults.
fn thin_options(args: &GenerateArgs) -> GeneratorOptions {
    let non_empty = |text: &Option<String>| text.clone().filter(|t| !t.is_empty());
    let mut options = GeneratorOptions::new(Flavour::Thin {
        kubeconfig: Some(
            args.multus_kubeconfig
                .clone()
                .unwrap_or_else(|| THIN_DEFAULT_KUBECONFIG.to_owned()),
        ),
        conf_dir: Some(
            args.multus_conf_dir
                .clone()
                .unwrap_or_else(|| THIN_DEFAULT_CONF_DIR.to_owned()),
        ),
    });
    options.cni_version = non_empty(&args.cni_version);
    options.override_network_name = args.override_network_name;
    options.force_cni_version = args.force_cni_version;
    options.log_file = non_empty(&args.log_file);
    options.log_level = non_empty(&args.log_level);
    options.log_to_stderr = Some(args.log_to_stderr.unwrap_or(true));
    options.bin_dir = non_empty(&args.bin_dir);
    options.namespace_isolation = args.namespace_isolation;
    options.global_namespaces = non_empty(&args.global_namespaces);
    options.readiness_indicator_file = non_empty(&args.readiness_indicator_file);
    options
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn daemon_config_keys_name_their_flags() {
        assert_eq!(flag_of("logLevel"), "--log-level");
        assert_eq!(flag_of("daemonSocketDir"), "--daemon-socket-dir");
        assert_eq!(flag_of("namespaceIsolation"), "--namespace-isolation");
        assert_eq!(
            flag_of("daemonReadyTimeoutSeconds"),
            "--ready-timeout-seconds"
        );
    }
}
