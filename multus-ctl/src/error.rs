//! Failures that stop a command, and the exit codes scripts rely on.
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success, nothing to report |
//! | 1 | the command ran and found problems: drift, failed validation, a CNI call that failed, a prune that could not tear something down |
//! | 2 | usage: bad flags or arguments |
//! | 3 | a source could not be reached or read: the Kubernetes API, a kubeconfig, the state directory, a configuration file, a binary |
//! | 4 | not found: the pod, NAD, sandbox record, network namespace or file named does not exist |

use std::process::ExitCode;

/// Exit code: problems found (drift, validation errors, a failed CNI call).
pub const EXIT_PROBLEMS: u8 = 1;
/// Exit code: usage error (clap's own code for bad arguments).
pub const EXIT_USAGE: u8 = 2;
/// Exit code: a source could not be reached or read.
pub const EXIT_UNREACHABLE: u8 = 3;
/// Exit code: the thing named does not exist.
pub const EXIT_NOT_FOUND: u8 = 4;

/// Why a command could not do its work. Every message is one line that says what was
/// tried and what to check.
#[derive(Debug, thiserror::Error)]
pub enum CtlError {
    /// Bad arguments that clap could not catch.
    #[error("{0}")]
    Usage(String),
    /// A source could not be reached or read.
    #[error("{0}")]
    Unreachable(String),
    /// The named object does not exist.
    #[error("{0}")]
    NotFound(String),
}

impl CtlError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Usage(_) => EXIT_USAGE,
            Self::Unreachable(_) => EXIT_UNREACHABLE,
            Self::NotFound(_) => EXIT_NOT_FOUND,
        }
    }
}

/// How a command that ran to the end went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Nothing to report.
    Clean,
    /// Problems were found and reported (exit 1).
    Problems,
}

impl Outcome {
    /// `Problems` when `problems` is true.
    pub fn from_problems(problems: bool) -> Self {
        if problems {
            Self::Problems
        } else {
            Self::Clean
        }
    }

    /// The process exit code.
    pub fn exit_code(self) -> ExitCode {
        match self {
            Self::Clean => ExitCode::SUCCESS,
            Self::Problems => ExitCode::from(EXIT_PROBLEMS),
        }
    }
}

/// Result of a command.
pub type CtlResult = Result<Outcome, CtlError>;

/// Shorten an error chain to one line (no newlines, no trailing period).
pub fn one_line(text: impl std::fmt::Display) -> String {
    text.to_string()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .trim_end_matches('.')
        .to_owned()
}

/// An error with its sources, on one line: `outer: inner: root` (a source whose text is
/// already included is skipped).
pub fn chain(error: &dyn std::error::Error) -> String {
    let mut text = one_line(error);
    let mut source = error.source();
    while let Some(e) = source {
        let part = one_line(e);
        if !part.is_empty() && !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = e.source();
    }
    text
}
