//! Delegate plugins run as child processes, as a CNI runtime runs them.

use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use multus_core::cni::CniError;
use multus_core::seams::{DelegateExec, ExecError, ExecRequest};
use multus_host::is_executable;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use wait_timeout::ChildExt;

/// `PATH` given to plugins when multus itself has none.
pub use multus_host::DEFAULT_PATH;
/// How much of a failing plugin's stderr is kept in the error.
const STDERR_LIMIT: usize = 4096;

/// Runs plugins with `std::process`, blocking the calling thread.
///
/// The child's environment is built explicitly: the `CNI_*` variables of the call and
/// `PATH` (plugins such as bridge and portmap run `iptables`).
#[derive(Clone, Debug)]
pub struct ProcessExec {
    path_env: String,
}

impl Default for ProcessExec {
    fn default() -> Self {
        Self::new(std::env::var("PATH").ok())
    }
}

impl ProcessExec {
    /// A runner passing `path_env` (or a standard default) as the plugins' `PATH`.
    pub fn new(path_env: Option<String>) -> Self {
        Self {
            path_env: path_env
                .filter(|p| !p.is_empty())
                .unwrap_or_else(|| DEFAULT_PATH.to_owned()),
        }
    }

    fn run(&self, request: &ExecRequest) -> Result<Vec<u8>, ExecError> {
        let plugin = request.plugin_type.clone();
        let binary = find_plugin(&request.plugin_type, &request.search_path).ok_or_else(|| {
            ExecError::NotFound {
                plugin: plugin.clone(),
                searched: request.search_path.clone(),
            }
        })?;
        let cni_path = std::env::join_paths(&request.search_path)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default();
        let spawn_error = |e: std::io::Error| ExecError::Spawn {
            plugin: plugin.clone(),
            reason: e.to_string(),
        };
        let mut command = Command::new(&binary);
        child::die_with_this_process(&mut command);
        let mut child = command
            .env_clear()
            .env("CNI_COMMAND", request.command.as_str())
            .env("CNI_CONTAINERID", &request.container_id)
            .env("CNI_NETNS", &request.netns)
            .env("CNI_IFNAME", &request.ifname)
            .env("CNI_ARGS", &request.args)
            .env("CNI_PATH", cni_path)
            .env("PATH", &self.path_env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(spawn_error)?;
        let writer = feed_stdin(&mut child, request.stdin.clone());
        let collected = collect_output(&mut child, request.timeout);
        if let Some(writer) = writer {
            let _ = writer.join();
        }
        let Some(Finished {
            status,
            stdout,
            stderr,
        }) = collected.map_err(spawn_error)?
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(ExecError::Timeout {
                plugin,
                seconds: request.timeout.as_secs(),
            });
        };
        plugin_outcome(plugin, status, stdout, &stderr)
    }
}

#[async_trait]
impl DelegateExec for ProcessExec {
    async fn exec(&self, request: ExecRequest) -> Result<Vec<u8>, ExecError> {
        self.run(&request)
    }
}

/// Set-up that runs in the forked child before it execs the plugin.
mod child {
    #![allow(unsafe_code)]

    use std::os::unix::process::CommandExt;
    use std::process::Command;

    use nix::sys::signal::Signal;

    /// Make the plugin die with multus: if multus is killed in the middle of an ADD, a
    /// plugin still running must not go on attaching things after the runtime's DEL
    /// has cleaned up. Only for processes spawned from a thread that lives as long as
    /// the call, as in the thin plugin (the kernel signals on the spawning thread's exit).
    pub(super) fn die_with_this_process(command: &mut Command) {
        let parent = nix::unistd::getpid();
        // SAFETY: the closure runs in the child between fork and exec. It calls only
        // prctl(2) and getppid(2), both async-signal-safe, and allocates nothing.
        unsafe {
            command.pre_exec(move || {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
                // multus may have died before prctl took effect.
                if nix::unistd::getppid() != parent {
                    return Err(std::io::Error::from_raw_os_error(nix::libc::ESRCH));
                }
                Ok(())
            });
        }
    }
}

/// What a finished plugin call means: its stdout on success, else its CNI error, else
/// a crash with its stderr (or stdout), bounded.
pub fn plugin_outcome(
    plugin: String,
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: &[u8],
) -> Result<Vec<u8>, ExecError> {
    if !stderr.is_empty() {
        tracing::debug!(plugin, stderr = %String::from_utf8_lossy(stderr), "plugin stderr");
    }
    if status.success() {
        return Ok(stdout);
    }
    if let Some(error) = CniError::from_plugin_output(&stdout) {
        return Err(ExecError::Plugin { plugin, error });
    }
    let mut text = String::from_utf8_lossy(stderr).trim().to_owned();
    if text.is_empty() {
        text = String::from_utf8_lossy(&stdout).trim().to_owned();
    }
    text.truncate(floor_char_boundary(&text, STDERR_LIMIT));
    Err(ExecError::Crashed {
        plugin,
        status: status.to_string(),
        stderr: text,
    })
}

/// The first executable file named `plugin_type` in `search_path`.
pub fn find_plugin(plugin_type: &str, search_path: &[PathBuf]) -> Option<PathBuf> {
    if plugin_type.is_empty() || plugin_type.contains('/') || plugin_type == ".." {
        return None;
    }
    search_path
        .iter()
        .map(|dir| dir.join(plugin_type))
        .find(|candidate| is_executable(candidate))
}

fn floor_char_boundary(s: &str, max: usize) -> usize {
    if s.len() <= max {
        return s.len();
    }
    (0..=max)
        .rev()
        .find(|&i| s.is_char_boundary(i))
        .unwrap_or(0)
}

/// Stdin documents up to this size are written before reading the output; a plugin
/// reads its config before printing anything, and the pipe buffer (64 KiB) holds it.
const INLINE_STDIN_LIMIT: usize = 16 * 1024;

/// Write the config to the child's stdin: inline when small, on a thread when large.
fn feed_stdin(child: &mut Child, stdin: Vec<u8>) -> Option<JoinHandle<()>> {
    let mut pipe = child.stdin.take()?;
    if stdin.len() <= INLINE_STDIN_LIMIT {
        // A plugin may exit without reading stdin; that is its answer, not our error.
        let _ = pipe.write_all(&stdin);
        return None;
    }
    Some(std::thread::spawn(move || {
        let _ = pipe.write_all(&stdin);
    }))
}

/// A child that exited, with everything it printed.
struct Finished {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
}

/// Read stdout and stderr until the child exits, on this thread (`poll`), within
/// `timeout`. `Ok(None)` means the deadline passed with the child still running.
///
/// The child's exit is also checked between polls, so a plugin that leaves a
/// background process holding its stdout open does not stall multus.
fn collect_output(child: &mut Child, timeout: Duration) -> std::io::Result<Option<Finished>> {
    let deadline = Instant::now() + timeout;
    let mut stdout_pipe = child.stdout.take();
    let mut stderr_pipe = child.stderr.take();
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    while stdout_pipe.is_some() || stderr_pipe.is_some() {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Ok(None);
        }
        let timeout =
            PollTimeout::try_from(remaining.min(EXIT_CHECK_INTERVAL)).unwrap_or(PollTimeout::MAX);
        let [stdout_ready, stderr_ready] = {
            let open = [
                stdout_pipe.as_ref().map(AsFd::as_fd),
                stderr_pipe.as_ref().map(AsFd::as_fd),
            ];
            let indexes: Vec<usize> = (0..2).filter(|&i| open[i].is_some()).collect();
            let mut fds: Vec<PollFd<'_>> = open
                .iter()
                .flatten()
                .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
                .collect();
            match poll(&mut fds, timeout) {
                // SIGCHLD (wait-timeout installs a handler for it) interrupts poll.
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
            let mut ready = [false; 2];
            for (index, fd) in indexes.iter().zip(&fds) {
                ready[*index] = is_ready(fd);
            }
            ready
        };
        if stdout_ready {
            read_ready(&mut stdout_pipe, &mut stdout);
        }
        if stderr_ready {
            read_ready(&mut stderr_pipe, &mut stderr);
        }
        if !stdout_ready && !stderr_ready && child.try_wait()?.is_some() {
            drain_nonblocking(&mut stdout_pipe, &mut stdout);
            drain_nonblocking(&mut stderr_pipe, &mut stderr);
        }
    }
    let remaining = deadline.saturating_duration_since(Instant::now());
    match child.wait_timeout(remaining)? {
        Some(status) => Ok(Some(Finished {
            status,
            stdout,
            stderr,
        })),
        None => Ok(None),
    }
}

fn is_ready(fd: &PollFd<'_>) -> bool {
    fd.revents()
        .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR))
}

/// How often the child's exit is checked while its pipes stay open.
const EXIT_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// Read what a ready pipe holds; close it (set `None`) at end of file or error.
fn read_ready<R: Read>(pipe: &mut Option<R>, buffer: &mut Vec<u8>) {
    let Some(reader) = pipe.as_mut() else {
        return;
    };
    let mut chunk = [0u8; 8192];
    match reader.read(&mut chunk) {
        Ok(0) | Err(_) => *pipe = None,
        Ok(n) => buffer.extend_from_slice(&chunk[..n]),
    }
}

/// After the child exited: take whatever is still buffered without blocking.
fn drain_nonblocking<R: Read + AsFd>(pipe: &mut Option<R>, buffer: &mut Vec<u8>) {
    while let Some(reader) = pipe.as_ref() {
        let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(n) if n > 0 => {}
            Err(nix::errno::Errno::EINTR) => continue,
            _ => break,
        }
        read_ready(pipe, buffer);
    }
    *pipe = None;
}

#[cfg(test)]
mod tests {
    use super::*;
    use multus_core::request::Command as CniCommand;
    use std::os::unix::fs::PermissionsExt;
    use std::path::Path;

    fn script(dir: &Path, name: &str, body: &str) {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn request(dir: &Path, plugin: &str) -> ExecRequest {
        ExecRequest {
            plugin_type: plugin.into(),
            command: CniCommand::Add,
            container_id: "c1".into(),
            netns: "/var/run/netns/x".into(),
            ifname: "net1".into(),
            args: "A=b=c".into(),
            search_path: vec![dir.join("missing"), dir.to_path_buf()],
            stdin: br#"{"cniVersion":"1.0.0"}"#.to_vec(),
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn plugin_gets_env_and_stdin_and_returns_stdout() {
        let dir = tempfile::tempdir().unwrap();
        script(
            dir.path(),
            "echoer",
            r#"printf '{"env":"%s|%s|%s|%s|%s","in":%s}' "$CNI_COMMAND" "$CNI_CONTAINERID" "$CNI_IFNAME" "$CNI_ARGS" "$HOME" "$(cat)""#,
        );
        let out = ProcessExec::new(Some("/usr/bin:/bin".into()))
            .run(&request(dir.path(), "echoer"))
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(doc["env"], "ADD|c1|net1|A=b=c|");
        assert_eq!(doc["in"]["cniVersion"], "1.0.0");
    }

    #[test]
    fn cni_error_output_is_returned_as_plugin_error() {
        let dir = tempfile::tempdir().unwrap();
        script(
            dir.path(),
            "failer",
            r#"cat >/dev/null; echo '{"code":999,"msg":"operation not supported"}'; exit 1"#,
        );
        let err = ProcessExec::default()
            .run(&request(dir.path(), "failer"))
            .unwrap_err();
        match err {
            ExecError::Plugin { error, .. } => {
                assert_eq!(error.code, 999);
                assert_eq!(error.msg, "operation not supported");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn crash_without_error_document_keeps_stderr() {
        let dir = tempfile::tempdir().unwrap();
        script(dir.path(), "crasher", "echo boom >&2; exit 3");
        let err = ProcessExec::default()
            .run(&request(dir.path(), "crasher"))
            .unwrap_err();
        assert!(
            matches!(err, ExecError::Crashed { ref stderr, .. } if stderr == "boom"),
            "{err:?}"
        );
    }

    #[test]
    fn slow_plugin_is_killed_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        script(dir.path(), "sleeper", "sleep 30");
        let mut req = request(dir.path(), "sleeper");
        req.timeout = Duration::from_millis(200);
        let started = std::time::Instant::now();
        let err = ProcessExec::default().run(&req).unwrap_err();
        assert!(matches!(err, ExecError::Timeout { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn background_process_holding_stdout_does_not_stall() {
        let dir = tempfile::tempdir().unwrap();
        script(
            dir.path(),
            "forker",
            "cat >/dev/null; sleep 5 & echo '{\"ok\":1}'",
        );
        let started = std::time::Instant::now();
        let out = ProcessExec::default()
            .run(&request(dir.path(), "forker"))
            .unwrap();
        assert_eq!(out, b"{\"ok\":1}\n");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn large_stdin_and_stdout_pass_through() {
        let dir = tempfile::tempdir().unwrap();
        script(
            dir.path(),
            "catter",
            "cat; head -c 300000 /dev/zero | tr '\\0' x >&2",
        );
        let mut req = request(dir.path(), "catter");
        let big = format!("{{\"pad\":\"{}\"}}", "y".repeat(200_000));
        req.stdin = big.clone().into_bytes();
        let out = ProcessExec::default().run(&req).unwrap();
        assert_eq!(out, big.into_bytes());
    }

    #[test]
    fn missing_and_unsafe_plugins_are_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let err = ProcessExec::default()
            .run(&request(dir.path(), "nope"))
            .unwrap_err();
        assert!(matches!(err, ExecError::NotFound { .. }));
        assert_eq!(find_plugin("../sh", &[PathBuf::from("/bin")]), None);
        assert_eq!(find_plugin("..", &[PathBuf::from("/bin")]), None);
    }
}
