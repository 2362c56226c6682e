//! Running a program to completion with a clean environment (only `PATH`, plus what the
//! test gives) and what it did.

use std::io::Write as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::binaries::SYSTEM_PATH;

/// What a finished command did.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Output {
    /// stdout, or a panic naming `what` with the command's stderr.
    pub fn expect_success(self, what: &str) -> String {
        assert!(
            self.code == 0,
            "{what} failed with exit code {}:\nstdout: {}\nstderr: {}",
            self.code,
            self.stdout,
            self.stderr
        );
        self.stdout
    }

    /// stdout, after asserting the exit code.
    #[track_caller]
    pub fn expect(&self, code: i32) -> &str {
        assert_eq!(
            self.code, code,
            "exit code {} (expected {code})\nstdout:\n{}\nstderr:\n{}",
            self.code, self.stdout, self.stderr
        );
        &self.stdout
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }

    fn of(out: &std::process::Output) -> Self {
        Self {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Run a program with a clean environment (only `PATH`) and capture its output.
pub fn run(program: &Path, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .env_clear()
        .env("PATH", SYSTEM_PATH)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    Output::of(&out)
}

/// Run `program args...` in `cwd` with only `PATH` and `env` in its environment, stdin
/// empty.
pub fn run_in(program: &Path, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let out = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env("PATH", SYSTEM_PATH)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    Output::of(&out)
}

/// Start `command` with its standard streams piped, write `stdin` and close it. The
/// caller waits (`wait_with_output`), so that several can run at once.
pub fn start_with_stdin(command: &mut Command, stdin: &[u8]) -> Child {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {:?}: {e}", command.get_program()));
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin)
        .unwrap_or_else(|e| panic!("cannot write the stdin of {:?}: {e}", command.get_program()));
    child
}

/// Run `command` to the end with `stdin` (see [`start_with_stdin`]): how it ended and
/// what it printed.
pub fn output_with_stdin(command: &mut Command, stdin: &[u8]) -> std::process::Output {
    start_with_stdin(command, stdin)
        .wait_with_output()
        .unwrap_or_else(|e| panic!("cannot wait for {:?}: {e}", command.get_program()))
}
