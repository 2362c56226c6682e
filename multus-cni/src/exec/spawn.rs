//! Starting a delegate: `clone(CLONE_VM | CLONE_VFORK)`, as `posix_spawn` does, then
//! the few steps the runner needs in the child before `execve`. The one place of the
//! runner that needs `unsafe`, narrowed to [`spawn`] and [`in_child`].
//!
//! `fork` copies the caller's page tables (0.1-0.2 ms for the thin plugin, more for the
//! daemon); with `CLONE_VM` the child borrows the parent's memory until `execve`, and
//! `CLONE_VFORK` suspends the calling thread until then. What `posix_spawn` cannot do,
//! and the runner needs, is set the parent-death signal in the child.

use std::ffi::{CStr, CString, c_char};
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::libc;
use nix::sched::CloneFlags;
use nix::sys::signal::{SigSet, SigmaskHow, pthread_sigmask};
use nix::unistd::Pid;

/// Stack of the child until `execve`: it runs system call wrappers only.
const CHILD_STACK: usize = 64 * 1024;
/// Signal numbers are below this on Linux (`_NSIG`).
const SIGNAL_LIMIT: libc::c_int = 65;

/// Everything the child uses, prepared before the clone: the child must not allocate.
pub(super) struct Launch<'a> {
    binary: CString,
    argv: [*const c_char; 2],
    envp: Vec<*const c_char>,
    /// Owns what `envp` points into.
    _env: Vec<CString>,
    chroot: Option<&'a CStr>,
    stdio: [RawFd; 3],
    parent: libc::pid_t,
}

impl<'a> Launch<'a> {
    /// `binary` with exactly `env`, its stdin, stdout and stderr on `stdio` (each a
    /// descriptor above 2, so that placing one never closes another), and `chroot`.
    pub(super) fn new(
        binary: &Path,
        env: &[(&str, &str)],
        chroot: Option<&'a CStr>,
        stdio: [&'a OwnedFd; 3],
    ) -> io::Result<Self> {
        let binary = CString::new(binary.as_os_str().as_bytes()).map_err(nul_error)?;
        let env = env
            .iter()
            .map(|(name, value)| CString::new(format!("{name}={value}")).map_err(nul_error))
            .collect::<io::Result<Vec<_>>>()?;
        let mut envp: Vec<*const c_char> = env.iter().map(|v| v.as_ptr()).collect();
        envp.push(std::ptr::null());
        let stdio = stdio.map(AsRawFd::as_raw_fd);
        if stdio.iter().any(|fd| *fd <= 2) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "child's standard descriptors must be above 2",
            ));
        }
        Ok(Self {
            argv: [binary.as_ptr(), std::ptr::null()],
            binary,
            envp,
            _env: env,
            chroot,
            stdio,
            parent: nix::unistd::getpid().as_raw(),
        })
    }
}

fn nul_error(_: std::ffi::NulError) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        "nul byte in a program path or environment",
    )
}

/// Start the child described by `launch`; it has called `execve` (or exited) when this
/// returns. An error is the child's: `execve`'s errno (e.g. `ETXTBSY`, `ENOENT`) or
/// the set-up step's that failed; the child is reaped then.
#[allow(unsafe_code)]
pub(super) fn spawn(launch: &Launch<'_>) -> io::Result<Pid> {
    let failure = AtomicI32::new(0);
    let mut stack = vec![0u8; CHILD_STACK];
    // The child shares this memory: no handler of ours may run in it before it has
    // reset the dispositions, so every signal stays blocked across the clone.
    let mut previous = SigSet::empty();
    pthread_sigmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut previous),
    )?;
    let child = Box::new(|| in_child(launch, &failure));
    // SAFETY: with CLONE_VFORK this thread is suspended until the child has called
    // execve or exited, so `launch`, `failure` and `stack` outlive the child's use of
    // them; the child runs only `in_child` (see there).
    let cloned = unsafe {
        nix::sched::clone(
            child,
            &mut stack,
            CloneFlags::CLONE_VM | CloneFlags::CLONE_VFORK,
            Some(libc::SIGCHLD),
        )
    };
    let restored = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&previous), None);
    let pid = cloned?;
    match failure.load(Ordering::Acquire) {
        0 => {}
        errno => {
            let _ = nix::sys::wait::waitpid(pid, None);
            return Err(io::Error::from_raw_os_error(errno));
        }
    }
    if let Err(e) = restored {
        // No caller will supervise a child it gets no handle of.
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
        return Err(e.into());
    }
    Ok(pid)
}

/// The child, between clone and `execve`: reset signal handling, place the pipes,
/// lead a process group of its own, die with the thread that started it, enter the
/// chroot, exec. Only returns (with the errno, also left in `failure`) when a step
/// fails.
#[allow(unsafe_code)]
fn in_child(launch: &Launch<'_>, failure: &AtomicI32) -> isize {
    // SAFETY: this runs in a child that shares the parent's memory while the parent's
    // thread is suspended. It makes only async-signal-safe system calls (sigaction,
    // sigprocmask, dup2, setpgid, prctl, getppid, chroot, chdir, execve, _exit) on
    // data prepared before the clone; it allocates nothing and takes no lock.
    unsafe {
        let errno = prepare_and_exec(launch);
        failure.store(errno, Ordering::Release);
        libc::_exit(127)
    }
}

/// The steps of [`in_child`]; the errno of the one that failed.
#[allow(unsafe_code)]
unsafe fn prepare_and_exec(launch: &Launch<'_>) -> libc::c_int {
    let last_errno = || nix::errno::Errno::last_raw();
    // SAFETY: see in_child; every pointer passed is valid for the call.
    unsafe {
        // The parent's handlers must not run here (they would run on its memory), and
        // a plugin starts with default dispositions for what it catches (SIGPIPE
        // included, which Rust programs ignore), as std::process gives it.
        let mut action: libc::sigaction = std::mem::zeroed();
        let mut default: libc::sigaction = std::mem::zeroed();
        default.sa_sigaction = libc::SIG_DFL;
        for signal in 1..SIGNAL_LIMIT {
            if signal == libc::SIGKILL
                || signal == libc::SIGSTOP
                || libc::sigaction(signal, std::ptr::null(), &mut action) != 0
            {
                continue;
            }
            let handled =
                action.sa_sigaction != libc::SIG_DFL && action.sa_sigaction != libc::SIG_IGN;
            if handled || signal == libc::SIGPIPE {
                libc::sigaction(signal, &default, std::ptr::null_mut());
            }
        }
        let mut unblocked: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut unblocked);
        if libc::sigprocmask(libc::SIG_SETMASK, &unblocked, std::ptr::null_mut()) != 0 {
            return last_errno();
        }
        for (target, fd) in (0..).zip(launch.stdio) {
            if libc::dup2(fd, target) < 0 {
                return last_errno();
            }
        }
        if libc::setpgid(0, 0) != 0 {
            return last_errno();
        }
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            return last_errno();
        }
        // The parent may have died before the parent-death signal was set.
        if libc::getppid() != launch.parent {
            return libc::ESRCH;
        }
        if let Some(root) = launch.chroot
            && (libc::chroot(root.as_ptr()) != 0 || libc::chdir(c"/".as_ptr()) != 0)
        {
            return last_errno();
        }
        libc::execve(
            launch.binary.as_ptr(),
            launch.argv.as_ptr(),
            launch.envp.as_ptr(),
        );
        last_errno()
    }
}
