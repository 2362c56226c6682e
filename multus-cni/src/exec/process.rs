//! The one process runner: start a program with an explicit environment, feed it
//! stdin, read its stdout and stderr (bounded), within a time limit, on the calling
//! thread. The thin plugin, the daemon (through [`super::PooledExec`]) and
//! `multus-ctl` all run plugins through [`run`].
//!
//! - The environment is exactly the one given (`env_clear` first).
//! - A binary being replaced ("text file busy") is retried a few times.
//! - The child dies with the thread that started it (`PR_SET_PDEATHSIG`): [`run`]
//!   starts and reaps the child on the calling thread, so the signal fires only when
//!   the caller's process dies.
//! - The child leads a process group of its own; on timeout or too much output the
//!   whole group is killed, so a forked grandchild does not survive it.
//! - stdout and stderr are each kept up to `output_limit` bytes; a child printing more
//!   is killed and the call ends in [`End::OutputLimit`].
//! - The child's exit is noticed (through a pidfd, in the same `poll` as its output)
//!   even when a background process it left holds its stdout open.
//! - The child is started the way `posix_spawn` starts one (`clone` with `CLONE_VM`,
//!   no copy of the caller's page tables), see `spawn.rs`.

use std::ffi::CStr;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::path::Path;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::child::Child;

/// The most a plugin may print on stdout, and separately on stderr: 4 MiB.
pub const DEFAULT_OUTPUT_LIMIT: usize = 4 * 1024 * 1024;

/// Attempts to start a binary that is being replaced ("text file busy").
const SPAWN_ATTEMPTS: u32 = 5;
/// Pause between those attempts.
const SPAWN_RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Stdin documents up to this size are written before reading the output; a plugin
/// reads its config before printing anything, and the pipe buffer (64 KiB) holds it.
const INLINE_STDIN_LIMIT: usize = 16 * 1024;
/// How often the child's exit is checked where the kernel offers no pidfd.
const EXIT_CHECK_INTERVAL: Duration = Duration::from_millis(50);
/// Longest pause between exit checks once both pipes are closed (no pidfd).
const WAIT_PAUSE_MAX: Duration = Duration::from_millis(10);
/// Bytes read from a pipe at once.
const CHUNK: usize = 16 * 1024;

/// One program to run.
#[derive(Clone, Copy, Debug)]
pub struct Spawn<'a> {
    /// The program, by path (not searched in `PATH`).
    pub binary: &'a Path,
    /// The child's whole environment.
    pub env: &'a [(&'a str, &'a str)],
    /// What the child reads on stdin.
    pub stdin: &'a [u8],
    /// Time limit for the whole call.
    pub timeout: Duration,
    /// Most bytes kept of stdout, and of stderr; more kills the child.
    pub output_limit: usize,
    /// A directory to `chroot` into in the child before exec (the daemon's `chrootDir`).
    pub chroot: Option<&'a Arc<CStr>>,
}

/// Which output stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stream {
    /// stdout.
    Stdout,
    /// stderr.
    Stderr,
}

impl Stream {
    /// `stdout` or `stderr`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stdout => "stdout",
            Self::Stderr => "stderr",
        }
    }
}

/// How the call ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The child exited (or was killed by someone else).
    Exited(ExitStatus),
    /// The time limit passed; the child's process group was killed.
    TimedOut,
    /// The child printed more than the limit on this stream; its group was killed.
    OutputLimit(Stream),
}

/// A finished call, with what the child printed (each at most the output limit).
#[derive(Clone, Debug)]
pub struct Finished {
    /// How it ended.
    pub end: End,
    /// stdout.
    pub stdout: Vec<u8>,
    /// stderr.
    pub stderr: Vec<u8>,
}

/// Run `spawn` to the end on this thread. An error means the program could not be
/// started (or its pipes could not be watched; it is killed then).
pub fn run(spawn: &Spawn<'_>) -> std::io::Result<Finished> {
    let deadline = Instant::now() + spawn.timeout;
    let mut child = start(spawn)?;
    feed_stdin(&mut child, spawn.stdin);
    let mut output = Output::new(&mut child, spawn.output_limit);
    let end = match output.collect(&mut child, deadline) {
        Ok(Some(status)) => End::Exited(status),
        Ok(None) => {
            child.kill_group();
            End::TimedOut
        }
        Err(Collect::Limit(stream)) => {
            child.kill_group();
            End::OutputLimit(stream)
        }
        Err(Collect::Io(e)) => {
            child.kill_group();
            return Err(e);
        }
    };
    Ok(Finished {
        end,
        stdout: output.stdout,
        stderr: output.stderr,
    })
}

/// Spawn the child, retrying while its binary is busy being written.
fn start(spawn: &Spawn<'_>) -> std::io::Result<Child> {
    let chroot = spawn.chroot.map(|root| &**root);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match Child::start(spawn.binary, spawn.env, chroot) {
            // An installer is copying the binary: again a moment later.
            Err(e) if e.raw_os_error() == Some(nix::libc::ETXTBSY) && attempt < SPAWN_ATTEMPTS => {
                std::thread::sleep(SPAWN_RETRY_PAUSE);
            }
            other => return other,
        }
    }
}

/// Write stdin: inline when small, on a thread when large. The thread is not joined:
/// a background process of the plugin may hold the pipe open; it ends when the pipe
/// closes.
fn feed_stdin(child: &mut Child, stdin: &[u8]) {
    let Some(mut pipe) = child.stdin.take() else {
        return;
    };
    if stdin.len() <= INLINE_STDIN_LIMIT {
        // A plugin may exit without reading stdin; that is its answer, not our error.
        let _ = pipe.write_all(stdin);
        return;
    }
    let stdin = stdin.to_vec();
    std::thread::spawn(move || {
        let _ = pipe.write_all(&stdin);
    });
}

/// Why collecting stopped early.
enum Collect {
    Limit(Stream),
    Io(std::io::Error),
}

impl From<std::io::Error> for Collect {
    fn from(e: std::io::Error) -> Self {
        Self::Io(e)
    }
}

/// The child's two output pipes and what was read from them.
struct Output {
    stdout_pipe: Option<File>,
    stderr_pipe: Option<File>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    limit: usize,
}

impl Output {
    fn new(child: &mut Child, limit: usize) -> Self {
        Self {
            stdout_pipe: child.stdout.take(),
            stderr_pipe: child.stderr.take(),
            stdout: Vec::new(),
            stderr: Vec::new(),
            limit,
        }
    }

    /// Read both pipes until the child exits, within `deadline`. `Ok(None)` means the
    /// deadline passed with the child still running.
    fn collect(
        &mut self,
        child: &mut Child,
        deadline: Instant,
    ) -> Result<Option<ExitStatus>, Collect> {
        while self.stdout_pipe.is_some() || self.stderr_pipe.is_some() {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                return Ok(None);
            }
            let [stdout_ready, stderr_ready, exited] = self.wait_readable(child, remaining)?;
            if stdout_ready {
                read_ready(&mut self.stdout_pipe, &mut self.stdout, self.limit)
                    .map_err(|()| Collect::Limit(Stream::Stdout))?;
            }
            if stderr_ready {
                read_ready(&mut self.stderr_pipe, &mut self.stderr, self.limit)
                    .map_err(|()| Collect::Limit(Stream::Stderr))?;
            }
            let check_exit = exited || (child.exit.is_none() && !stdout_ready && !stderr_ready);
            if check_exit && child.try_wait()?.is_some() {
                // Exited, and maybe something it left behind holds the pipes: take
                // what is buffered and stop reading.
                drain_nonblocking(&mut self.stdout_pipe, &mut self.stdout, self.limit)
                    .map_err(|()| Collect::Limit(Stream::Stdout))?;
                drain_nonblocking(&mut self.stderr_pipe, &mut self.stderr, self.limit)
                    .map_err(|()| Collect::Limit(Stream::Stderr))?;
            }
        }
        Ok(wait_until(child, deadline)?)
    }

    /// `poll` the open pipes and the child's pidfd for at most `remaining` (and at
    /// most the exit-check interval without a pidfd); which of stdout, stderr and the
    /// exit are ready.
    fn wait_readable(&self, child: &Child, remaining: Duration) -> std::io::Result<[bool; 3]> {
        let limit = if child.exit.is_some() {
            remaining
        } else {
            remaining.min(EXIT_CHECK_INTERVAL)
        };
        let open = [
            self.stdout_pipe.as_ref().map(AsFd::as_fd),
            self.stderr_pipe.as_ref().map(AsFd::as_fd),
            child.exit.as_ref().map(AsFd::as_fd),
        ];
        let mut indexes = [0usize; 3];
        let mut fds: Vec<PollFd<'_>> = Vec::with_capacity(3);
        for (index, fd) in open.iter().enumerate() {
            if let Some(fd) = fd {
                indexes[fds.len()] = index;
                fds.push(PollFd::new(*fd, PollFlags::POLLIN));
            }
        }
        poll_once(&mut fds, limit)?;
        let mut ready = [false; 3];
        for (index, fd) in indexes.iter().zip(&fds) {
            ready[*index] = is_ready(fd);
        }
        Ok(ready)
    }
}

/// One `poll` for at most `limit`; an interruption counts as nothing ready.
fn poll_once(fds: &mut [PollFd<'_>], limit: Duration) -> std::io::Result<()> {
    let timeout = PollTimeout::try_from(limit).unwrap_or(PollTimeout::MAX);
    match poll(fds, timeout) {
        Ok(_) | Err(nix::errno::Errno::EINTR) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Wait for the child's exit until `deadline` (its pipes are closed, so this is
/// normally immediate); `None` when it is still running then.
fn wait_until(child: &mut Child, deadline: Instant) -> std::io::Result<Option<ExitStatus>> {
    let mut pause = Duration::from_micros(50);
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(Some(status));
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() {
            return Ok(None);
        }
        match &child.exit {
            Some(exit) => poll_once(
                &mut [PollFd::new(exit.as_fd(), PollFlags::POLLIN)],
                remaining,
            )?,
            None => {
                std::thread::sleep(pause.min(remaining));
                pause = (pause * 2).min(WAIT_PAUSE_MAX);
            }
        }
    }
}

fn is_ready(fd: &PollFd<'_>) -> bool {
    fd.revents()
        .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR))
}

/// Read what a ready pipe holds; close it (set `None`) at end of file or error.
/// `Err(())` when the buffer would pass `limit`.
fn read_ready<R: Read>(pipe: &mut Option<R>, buffer: &mut Vec<u8>, limit: usize) -> Result<(), ()> {
    let Some(reader) = pipe.as_mut() else {
        return Ok(());
    };
    let mut chunk = [0u8; CHUNK];
    match reader.read(&mut chunk) {
        Ok(0) | Err(_) => *pipe = None,
        Ok(n) => {
            if buffer.len() + n > limit {
                *pipe = None;
                return Err(());
            }
            buffer.extend_from_slice(&chunk[..n]);
        }
    }
    Ok(())
}

/// After the child exited: take whatever is still buffered without blocking.
fn drain_nonblocking<R: Read + AsFd>(
    pipe: &mut Option<R>,
    buffer: &mut Vec<u8>,
    limit: usize,
) -> Result<(), ()> {
    while let Some(reader) = pipe.as_ref() {
        let mut fds = [PollFd::new(reader.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::ZERO) {
            Ok(n) if n > 0 => {}
            Err(nix::errno::Errno::EINTR) => continue,
            _ => break,
        }
        read_ready(pipe, buffer, limit)?;
    }
    *pipe = None;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn script(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn spawn<'a>(binary: &'a Path, env: &'a [(&'a str, &'a str)]) -> Spawn<'a> {
        Spawn {
            binary,
            env,
            stdin: b"{}",
            timeout: Duration::from_secs(5),
            output_limit: DEFAULT_OUTPUT_LIMIT,
            chroot: None,
        }
    }

    fn alive(pid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit(')')
                    .next()
                    .and_then(|r| r.split_whitespace().next().map(str::to_owned))
            })
            .is_some_and(|state| state != "Z" && state != "X")
    }

    #[test]
    fn only_the_given_environment_reaches_the_child() {
        let binary = Path::new("/usr/bin/env");
        let out = run(&spawn(binary, &[("A", "1"), ("PATH", "/bin")])).unwrap();
        assert_eq!(out.end.clone_exit().map(|s| s.success()), Some(true));
        assert_eq!(String::from_utf8_lossy(&out.stdout), "A=1\nPATH=/bin\n");
    }

    #[test]
    fn output_over_the_limit_kills_the_child() {
        let dir = tempfile::tempdir().unwrap();
        let binary = script(dir.path(), "loud", "head -c 100000000 /dev/zero");
        let mut call = spawn(&binary, &[]);
        call.output_limit = 64 * 1024;
        let started = Instant::now();
        let out = run(&call).unwrap();
        assert_eq!(out.end, End::OutputLimit(Stream::Stdout));
        assert!(out.stdout.len() <= 64 * 1024);
        assert!(started.elapsed() < Duration::from_secs(4));

        let binary = script(dir.path(), "loud2", "head -c 100000000 /dev/zero >&2");
        let mut call = spawn(&binary, &[]);
        call.output_limit = 64 * 1024;
        assert_eq!(run(&call).unwrap().end, End::OutputLimit(Stream::Stderr));
    }

    #[test]
    fn timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("grandchild");
        let binary = script(
            dir.path(),
            "forks",
            &format!(
                "sleep 60 >/dev/null 2>&1 </dev/null & echo $! > {}; sleep 60",
                pid_file.display()
            ),
        );
        let mut call = spawn(&binary, &[]);
        call.timeout = Duration::from_millis(500);
        let out = run(&call).unwrap();
        assert_eq!(out.end, End::TimedOut);
        let grandchild: i32 = std::fs::read_to_string(&pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while alive(grandchild) {
            assert!(
                Instant::now() < deadline,
                "grandchild {grandchild} survived the timeout"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_child_that_closes_its_pipes_and_keeps_running_times_out() {
        let dir = tempfile::tempdir().unwrap();
        let binary = script(dir.path(), "closer", "exec >&- 2>&-; sleep 60");
        let mut call = spawn(&binary, &[]);
        call.timeout = Duration::from_millis(300);
        let started = Instant::now();
        assert_eq!(run(&call).unwrap().end, End::TimedOut);
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    fn status_field(status: &str, name: &str) -> String {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    }

    #[test]
    fn the_child_starts_with_default_signal_handling() {
        use nix::sys::signal::{SigSet, SigmaskHow, Signal, pthread_sigmask};
        // On a thread of its own: the blocked signal is this test's only. Rust
        // programs ignore SIGPIPE; the child must not inherit either.
        std::thread::spawn(|| {
            let mut blocked = SigSet::empty();
            blocked.add(Signal::SIGUSR1);
            pthread_sigmask(SigmaskHow::SIG_BLOCK, Some(&blocked), None).unwrap();
            let dir = tempfile::tempdir().unwrap();
            let binary = script(dir.path(), "status", "exec cat /proc/self/status");
            let out = run(&spawn(&binary, &[])).unwrap();
            let status = String::from_utf8_lossy(&out.stdout).into_owned();
            assert_eq!(
                status_field(&status, "SigBlk:"),
                "0000000000000000",
                "{status}"
            );
            let ignored = u64::from_str_radix(&status_field(&status, "SigIgn:"), 16).unwrap();
            assert_eq!(ignored & (1 << (Signal::SIGPIPE as u64 - 1)), 0, "{status}");
        })
        .join()
        .unwrap();
    }

    #[test]
    fn the_child_leads_its_own_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let binary = script(dir.path(), "stat", "exec cat /proc/self/stat");
        let out = run(&spawn(&binary, &[])).unwrap();
        let stat = String::from_utf8_lossy(&out.stdout).into_owned();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        let pid: &str = stat.split_whitespace().next().unwrap();
        // After the command name: state, ppid, pgrp.
        assert_eq!(fields[2], pid, "{stat}");
        assert_eq!(fields[1], std::process::id().to_string(), "{stat}");
    }

    #[test]
    fn text_file_busy_is_retried() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("busy");
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(b"#!/bin/sh\necho ok\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        // Held open for writing: exec fails with ETXTBSY until it is closed.
        let closer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(file);
        });
        let out = run(&spawn(&path, &[])).unwrap();
        closer.join().unwrap();
        assert_eq!(out.stdout, b"ok\n");
    }

    impl End {
        fn clone_exit(&self) -> Option<ExitStatus> {
            match self {
                Self::Exited(status) => Some(*status),
                _ => None,
            }
        }
    }
}
