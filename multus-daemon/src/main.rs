//! `multus-daemon`: the thick-mode node agent of multus-rs.

use std::path::PathBuf;
use std::process::ExitCode;

use multus_daemon::config::DEFAULT_CONFIG_PATH;

const USAGE: &str = "usage: multus-daemon [--config <daemon-config.json>] [--version]";

fn main() -> ExitCode {
    let mut config_path = PathBuf::from(DEFAULT_CONFIG_PATH);
    let mut args = std::env::args().skip(1);
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
