//! `multus-node`: see the library documentation.

use std::time::Duration;

use clap::Parser as _;
use multus_node::cli::{Cli, Command, ProbeTarget};
use multus_node::{NodeError, install, probe, thin};

fn run(cli: Cli) -> Result<(), NodeError> {
    match cli.command {
        Command::Install(args) => {
            install::install(args.mode, &args.source_dir, &args.dest)?;
            Ok(())
        }
        Command::ThinEntrypoint(args) => thin::run(*args),
        Command::Probe(args) => {
            let line = match args.target {
                ProbeTarget::Daemon {
                    socket,
                    path,
                    timeout_seconds,
                } => probe::daemon(&socket, &path, Duration::from_secs(timeout_seconds))?,
                ProbeTarget::Thin {
                    cni_conf_dir,
                    multus_conf_file,
                } => thin::probe(&cni_conf_dir, &multus_conf_file)?,
            };
            println!("{line}");
            Ok(())
        }
    }
}

fn main() {
    let cli = Cli::parse();
    let quiet = matches!(cli.command, Command::Probe(_));
    let level = if quiet {
        tracing::level_filters::LevelFilter::WARN
    } else {
        tracing::level_filters::LevelFilter::INFO
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_target(false)
        .with_ansi(false)
        .with_writer(std::io::stderr)
        .try_init();
    if let Err(e) = run(cli) {
        eprintln!("multus-node: error: {e}");
        std::process::exit(1);
    }
}
