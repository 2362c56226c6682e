//! Set-up that runs in the forked child between fork and exec: the one place of the
//! runner that needs `unsafe`.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::sync::Arc;

use nix::sys::signal::Signal;

/// Make the child die with the thread that starts it (`PR_SET_PDEATHSIG`), and
/// `chroot(dir)` + `chdir("/")` when `chroot` is given.
///
/// The parent-death signal fires when the *thread* that forked exits: the runner
/// starts and reaps the child on one thread, so it fires only when multus (thin, ctl
/// or the daemon) dies in the middle of the call; the plugin then does not go on
/// attaching things after the runtime's DEL cleaned up.
pub(super) fn prepare(command: &mut Command, chroot: Option<Arc<CStr>>) {
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs in the child between fork and exec, where only
    // async-signal-safe calls are allowed. It calls prctl(2), getppid(2), chroot(2)
    // and chdir(2) (raw system calls) on a C string prepared before the fork, and
    // builds errors from errno: no allocation, no lock, no other state of the parent.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // The parent may have died before prctl took effect.
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(nix::libc::ESRCH));
            }
            if let Some(root) = &chroot {
                if nix::libc::chroot(root.as_ptr()) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                if nix::libc::chdir(c"/".as_ptr()) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        });
    }
}
