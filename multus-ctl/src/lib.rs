//! # multus-ctl
//!
//! The operator's tool for multus-rs, and a kubectl plugin (`kubectl multus`): one
//! command answers "why does my pod not have net1?".
//!
//! - `pod NS/NAME`: the networks the pod asked for, what each resolved to, the
//!   network-status, the plan persisted on this node and the live interfaces, addresses
//!   and routes in its network namespace, with every difference called out;
//! - `state list|show|prune`: the per-sandbox records, and the teardown (DEL through the
//!   delegates) of those whose namespace is gone;
//! - `exec add|del|check|status|gc`: the multus plugin (or, in thick mode, multus-shim)
//!   driven as a runtime drives it;
//! - `nad validate`: NADs checked against what their delegates will face;
//! - `config show`: the effective Multus configuration; `config generate`: the
//!   `00-multus.conf(list)` multus-daemon or the thin entrypoint would write, through
//!   their own generator code;
//! - `daemon health|metrics|config`: the thick daemon, through its unix socket;
//! - `completions`: shell completion scripts.
//!
//! Output is a table by default, or `-o json|yaml` with stable field names. Exit codes:
//! 0 ok, 1 problems found, 2 usage, 3 a source could not be reached or read, 4 not
//! found (see [`error`]). The full reference is `docs/multus-ctl.md`.
#![forbid(unsafe_code)]

pub mod cli;
pub mod cluster;
pub mod cmd;
pub mod cni_call;
pub mod error;
pub mod exposition;
pub mod output;
pub mod recorded;
pub mod sources;

use std::ffi::OsString;
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::cli::{Cli, Command, ConfigCommand, DaemonCommand, NadCommand, StateCommand};
use crate::error::{CtlResult, EXIT_USAGE};
use crate::output::Printer;

/// Run with the process arguments; `program` is the binary's name (`multus-ctl`, or
/// `kubectl-multus` when run as a kubectl plugin).
pub fn main(program: &str) -> ExitCode {
    run(program, std::env::args_os().collect())
}

/// Run with these arguments (the first is the program name).
pub fn run(program: &str, args: Vec<OsString>) -> ExitCode {
    let bin_name = if program == "kubectl-multus" {
        "kubectl multus"
    } else {
        "multus-ctl"
    };
    let matches = match Cli::command().bin_name(bin_name).try_get_matches_from(args) {
        Ok(matches) => matches,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(EXIT_USAGE));
        }
    };
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let printer = Printer::new(cli.global.output, cli.global.color);
    match dispatch(&printer, &cli, bin_name) {
        Ok(outcome) => outcome.exit_code(),
        Err(e) => {
            eprintln!("{bin_name}: error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn dispatch(printer: &Printer, cli: &Cli, bin_name: &str) -> CtlResult {
    match &cli.command {
        Command::Pod(args) => cmd::pod::run(printer, &cli.global, args),
        Command::State(StateCommand::List { state }) => cmd::state::list(printer, state),
        Command::State(StateCommand::Show {
            container_id,
            state,
        }) => cmd::state::show(printer, container_id, state),
        Command::State(StateCommand::Prune(args)) => cmd::state::prune(printer, args),
        Command::Exec(command) => cmd::exec::run(printer, command),
        Command::Nad(NadCommand::Validate(args)) => cmd::nad::validate(printer, &cli.global, args),
        Command::Config(ConfigCommand::Show { conf }) => cmd::config::show(printer, conf),
        Command::Config(ConfigCommand::Generate(args)) => cmd::generate::run(printer, args),
        Command::Daemon(DaemonCommand::Health { socket }) => cmd::daemon::health(printer, socket),
        Command::Daemon(DaemonCommand::Metrics { socket, raw, all }) => {
            cmd::daemon::metrics(printer, socket, *raw, *all)
        }
        Command::Daemon(DaemonCommand::Config { socket }) => cmd::daemon::config(printer, socket),
        Command::Identity { cert_dir } => cmd::identity::run(printer, cert_dir),
        Command::Completions { shell } => {
            let mut command = Cli::command();
            let name = bin_name.replace(' ', "-");
            clap_complete::generate(*shell, &mut command, name, &mut std::io::stdout());
            Ok(error::Outcome::Clean)
        }
    }
}
