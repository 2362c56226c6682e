//! A started delegate: its pid, its pipes and a pidfd that becomes readable when it
//! exits, so the runner waits for output and exit in one `poll` without sleeping.

use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::ExitStatus;

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use super::spawn::{Launch, spawn};

/// A running (or exited, not yet reaped) child process. Dropping it kills the child's
/// process group if the child was not reaped, then reaps it: no zombie is left.
#[derive(Debug)]
pub(super) struct Child {
    pid: Pid,
    /// Readable once the child exits; `None` on kernels without `pidfd_open` (before
    /// 5.3), where the runner checks the exit at intervals instead.
    pub(super) exit: Option<OwnedFd>,
    status: Option<ExitStatus>,
    /// The child's stdin (write end).
    pub(super) stdin: Option<File>,
    /// The child's stdout (read end).
    pub(super) stdout: Option<File>,
    /// The child's stderr (read end).
    pub(super) stderr: Option<File>,
}

impl Child {
    /// Start `binary` with exactly `env`, leading a process group of its own, with
    /// the parent-death signal set, chrooted when `chroot` is given.
    pub(super) fn start(
        binary: &Path,
        env: &[(&str, &str)],
        chroot: Option<&std::ffi::CStr>,
    ) -> io::Result<Self> {
        let (stdin_read, stdin_write) = pipe()?;
        let (stdout_read, stdout_write) = pipe()?;
        let (stderr_read, stderr_write) = pipe()?;
        let launch = Launch::new(
            binary,
            env,
            chroot,
            [&stdin_read, &stdout_write, &stderr_write],
        )?;
        let pid = spawn(&launch)?;
        drop((stdin_read, stdout_write, stderr_write));
        let exit = rustix::process::Pid::from_raw(pid.as_raw()).and_then(|p| {
            rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()).ok()
        });
        Ok(Self {
            pid,
            exit,
            status: None,
            stdin: Some(File::from(stdin_write)),
            stdout: Some(File::from(stdout_read)),
            stderr: Some(File::from(stderr_read)),
        })
    }

    /// The child's exit status if it has exited (reaping it), without waiting.
    pub(super) fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.reap(Some(WaitPidFlag::WNOHANG))
    }

    /// Kill the child's process group (the child leads it) and the child, then reap it.
    pub(super) fn kill_group(&mut self) {
        if self.status.is_some() {
            // Reaped: its pid (and group id) may belong to someone else by now.
            return;
        }
        let _ = killpg(self.pid, Signal::SIGKILL);
        let _ = kill(self.pid, Signal::SIGKILL);
        let _ = self.reap(None);
    }

    fn reap(&mut self, flags: Option<WaitPidFlag>) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.status {
            return Ok(Some(status));
        }
        loop {
            match waitpid(self.pid, flags) {
                Ok(status) => {
                    self.status = exit_status(status);
                    return Ok(self.status);
                }
                Err(Errno::EINTR) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill_group();
    }
}

/// A pipe whose two ends are above the standard descriptors and close on exec.
fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    Ok((above_stdio(read)?, above_stdio(write)?))
}

/// `fd`, or a duplicate numbered 3 or more (`try_clone` duplicates with
/// `F_DUPFD_CLOEXEC` from 3) when the process runs with a standard descriptor closed.
fn above_stdio(fd: OwnedFd) -> io::Result<OwnedFd> {
    use std::os::fd::AsRawFd;
    if fd.as_raw_fd() > 2 {
        Ok(fd)
    } else {
        fd.try_clone()
    }
}

/// `waitpid`'s answer as std's exit status; `None` while the child runs.
fn exit_status(status: WaitStatus) -> Option<ExitStatus> {
    match status {
        WaitStatus::Exited(_, code) => Some(ExitStatus::from_raw((code & 0xff) << 8)),
        WaitStatus::Signaled(_, signal, core) => Some(ExitStatus::from_raw(
            signal as i32 | if core { 0x80 } else { 0 },
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_statuses_map_like_std() {
        let pid = Pid::from_raw(1);
        let exited = exit_status(WaitStatus::Exited(pid, 3)).unwrap();
        assert_eq!(exited.code(), Some(3));
        let killed = exit_status(WaitStatus::Signaled(pid, Signal::SIGKILL, false)).unwrap();
        assert_eq!(killed.signal(), Some(9));
        assert_eq!(killed.code(), None);
        assert_eq!(exit_status(WaitStatus::StillAlive), None);
    }

    #[test]
    fn a_missing_binary_is_the_child_errno() {
        let err = Child::start(Path::new("/nonexistent/plugin"), &[], None).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(nix::libc::ENOENT));
    }

    #[test]
    fn a_nul_byte_in_the_environment_is_refused() {
        let err = Child::start(Path::new("/bin/true"), &[("A", "x\0y")], None).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn dropping_an_unreaped_child_kills_and_reaps_it() {
        // cat waits for the stdin the runner still holds open.
        let child = Child::start(Path::new("/bin/cat"), &[], None).unwrap();
        let pid = child.pid;
        assert_eq!(
            waitpid(pid, Some(WaitPidFlag::WNOHANG)),
            Ok(WaitStatus::StillAlive)
        );
        drop(child);
        // Reaped: no such child any more.
        assert_eq!(waitpid(pid, Some(WaitPidFlag::WNOHANG)), Err(Errno::ECHILD));
    }
}
