//! `multus-daemon`: the thick-mode node agent of multus-rs.

use std::path::PathBuf;
use std::process::ExitCode;

use multus_daemon::config::DEFAULT_CONFIG_PATH;

const USAGE: &str = "usage: multus-daemon [--config <daemon-config.json>] [--version]
       multus-daemon approve-csrs [--kubeconfig <path>] [--bootstrap-user <user>]...
                                  [--allow-missing-node-claim] [--min-duration <d>]
                                  [--max-duration <d>] [--decisions-per-second <n>]";

fn main() -> ExitCode {
    let mut config_path = PathBuf::from(DEFAULT_CONFIG_PATH);
    let mut args = std::env::args().skip(1).peekable();
    if args.peek().map(String::as_str) == Some("approve-csrs") {
        args.next();
        return approve_csrs(args.collect());
    }
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-v" | "-version" | "--version" => {
                println!(
                    "multus-rs multus-daemon: version:{}",
                    env!("CARGO_PKG_VERSION")
                );
                return ExitCode::SUCCESS;
            }
            "-h" | "-help" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            "-config" | "--config" => match args.next() {
                Some(path) => config_path = PathBuf::from(path),
                None => {
                    eprintln!("multus-daemon: {arg} needs a path\n{USAGE}");
                    return ExitCode::FAILURE;
                }
            },
            other => {
                if let Some(path) = other
                    .strip_prefix("--config=")
                    .or_else(|| other.strip_prefix("-config="))
                {
                    config_path = PathBuf::from(path);
                } else {
                    eprintln!("multus-daemon: unknown argument {other:?}\n{USAGE}");
                    return ExitCode::FAILURE;
                }
            }
        }
    }
    if !nix::unistd::geteuid().is_root() {
        eprintln!(
            "multus-daemon: failed to run multus-daemon with root: it must run as root (uid 0)"
        );
        return ExitCode::FAILURE;
    }
    let config = match multus_cni::daemon_config::load(&config_path) {
        Ok(config) => config,
        Err(e) => {
            eprintln!("multus-daemon: invalid configuration: {e}");
            return ExitCode::FAILURE;
        }
    };
    multus_cni::logging::init(
        config.log_level.as_deref(),
        config.log_file.as_deref(),
        config.log_to_stderr,
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("multus-daemon")
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("multus-daemon: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(multus_daemon::run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("multus-daemon: {e}");
            tracing::error!(error = %e, "multus-daemon failed to start");
            ExitCode::FAILURE
        }
    }
}

/// `multus-daemon approve-csrs`: the per-cluster CSR approver.
fn approve_csrs(args: Vec<String>) -> ExitCode {
    let (config, kubeconfig) = match approver_args(args) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("multus-daemon approve-csrs: {e}\n{USAGE}");
            return ExitCode::FAILURE;
        }
    };
    multus_cni::logging::init(Some("verbose"), None, true);
    match run_approver(config, kubeconfig) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("multus-daemon approve-csrs: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The approver's configuration and `--kubeconfig` from its arguments; `None` when
/// help was asked for.
fn approver_args(
    args: Vec<String>,
) -> Result<Option<(multus_daemon::approver::ApproverConfig, Option<PathBuf>)>, String> {
    use multus_daemon::approver::{ApproverConfig, DEFAULT_BOOTSTRAP_USER};
    let mut config = ApproverConfig {
        bootstrap_users: Vec::new(),
        ..ApproverConfig::default()
    };
    let mut kubeconfig: Option<PathBuf> = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) => (flag.to_owned(), Some(value.to_owned())),
            None => (arg.clone(), None),
        };
        if flag == "--allow-missing-node-claim" {
            config.allow_missing_node_claim = true;
            continue;
        }
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let Some(value) = inline.or_else(|| args.next()) else {
            return Err(format!("{flag} needs a value"));
        };
        let duration = |v: &str| multus_cni::identity::parse_duration(v);
        let outcome = match flag.as_str() {
            "--kubeconfig" => {
                kubeconfig = Some(PathBuf::from(value));
                Ok(())
            }
            "--bootstrap-user" => {
                config.bootstrap_users.push(value);
                Ok(())
            }
            "--min-duration" => duration(&value).map(|d| config.min_duration = d),
            "--max-duration" => duration(&value).map(|d| config.max_duration = d),
            "--decisions-per-second" => match value.parse::<f64>() {
                Ok(n) if n.is_finite() && n > 0.0 => {
                    config.decisions_per_second = n;
                    Ok(())
                }
                _ => Err(format!("{value:?} is not a number above 0")),
            },
            other => Err(format!("unknown argument {other:?}")),
        };
        outcome.map_err(|e| format!("{flag}: {e}"))?;
    }
    if config.bootstrap_users.is_empty() {
        config
            .bootstrap_users
            .push(DEFAULT_BOOTSTRAP_USER.to_owned());
    }
    Ok(Some((config, kubeconfig)))
}

/// Run the approver until SIGTERM/SIGINT.
fn run_approver(
    config: multus_daemon::approver::ApproverConfig,
    kubeconfig: Option<PathBuf>,
) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let source = multus_cni::cluster::kube::ApiSource::select(kubeconfig.as_deref(), None, |key| {
        std::env::var(key).ok()
    });
    runtime.block_on(async {
        let client =
            multus_cni::cluster::kube::connect(&source, std::time::Duration::from_secs(30)).await?;
        tokio::select! {
            outcome = multus_daemon::approver::run(client, config) => outcome,
            () = multus_daemon::server::termination() => Ok(()),
        }
    })
}
