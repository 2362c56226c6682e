//! The shim's memory of DELs that failed because the daemon was unreachable:
//! `<cniDir>/shim-pending-del/<containerID>`, holding the time of the first failure (Unix
//! seconds). A DEL keeps failing with code 11 ("try again later") until the daemon is
//! back (the DEL then really runs and the marker goes) or until the first failure is
//! older than `daemonUnreachableDelGraceSeconds` (the DEL then succeeds with a warning,
//! so that a node whose multus was uninstalled can still delete its pods).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use multus_core::request::is_valid_container_id;
use multus_host::atomic::{create_atomic, write_atomic};

use crate::log::{self, Level};

/// Subdirectory of `cniDir` holding the markers.
pub const PENDING_DEL_DIR: &str = "shim-pending-del";

/// What to do with a DEL the daemon could not be reached for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Fail with code 11; the grace period ends in this long.
    Fail {
        /// Time left before DELs of this container succeed anyway.
        remaining: Duration,
    },
    /// Succeed with a warning: the daemon has been unreachable for longer than the grace.
    GiveUp {
        /// Since the first failure.
        unreachable_for: Duration,
    },
}

/// Decide from the first failure's time. A first failure in the future (the clock was
/// set back) counts as now: the grace never exceeds its configured length.
pub fn verdict(first_failure: SystemTime, now: SystemTime, grace: Duration) -> Verdict {
    let elapsed = now.duration_since(first_failure).unwrap_or_default();
    if elapsed >= grace {
        Verdict::GiveUp {
            unreachable_for: elapsed,
        }
    } else {
        Verdict::Fail {
            remaining: grace - elapsed,
        }
    }
}

/// The markers under one `cniDir`.
#[derive(Clone, Debug)]
pub struct PendingDels {
    dir: PathBuf,
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl PendingDels {
    /// The markers of `<cni_dir>/shim-pending-del`.
    pub fn new(cni_dir: &Path) -> Self {
        Self {
            dir: cni_dir.join(PENDING_DEL_DIR),
        }
    }

    /// The marker of a container (`None` for an ID that is not a safe file name).
    pub fn path(&self, container_id: &str) -> Option<PathBuf> {
        is_valid_container_id(container_id).then(|| self.dir.join(container_id))
    }

    /// The first failure recorded for the container, if any.
    pub fn first_failure(&self, container_id: &str) -> Option<SystemTime> {
        let path = self.path(container_id)?;
        let bytes = multus_host::open::read_nofollow(&path).ok()?;
        match String::from_utf8_lossy(&bytes).trim().parse::<u64>() {
            Ok(secs) => Some(UNIX_EPOCH + Duration::from_secs(secs)),
            // Unreadable content: the file's own time is the best estimate.
            Err(_) => std::fs::symlink_metadata(&path)
                .and_then(|m| m.modified())
                .ok(),
        }
    }

    /// Record a failure at `now`; returns the first failure's time (`now` unless an
    /// earlier one was recorded). A recorded first failure later than `now` (the clock
    /// jumped back, or a forged marker) is replaced by `now`, with a WARN: the grace then
    /// runs from now, never from a future date.
    pub fn record(&self, container_id: &str, now: SystemTime) -> std::io::Result<SystemTime> {
        let path = self.path(container_id).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("invalid container ID {container_id:?}"),
            )
        })?;
        let secs = unix_secs(now);
        let stamp = format!("{secs}\n");
        let recorded_now = UNIX_EPOCH + Duration::from_secs(secs);
        match self.first_failure(container_id) {
            Some(first) if first > now => {
                log::log(
                    Level::Error,
                    &format!(
                        "the pending-DEL marker {} is dated in the future ({} s > now {secs} s; clock jump?): restarting its grace period from now",
                        path.display(),
                        unix_secs(first)
                    ),
                );
                write_atomic(&path, stamp.as_bytes(), 0o600).map_err(|e| e.source)?;
                return Ok(recorded_now);
            }
            Some(first) => return Ok(first),
            None => {}
        }
        let report = multus_host::dir::secure_dir(&self.dir, 0o700)?;
        if let Some(fix) = report.fixed {
            log::log(
                Level::Error,
                &format!(
                    "{} was writable by others (mode {:04o}, owner {}); fixed it to {:04o}",
                    self.dir.display(),
                    fix.old_mode,
                    fix.old_uid,
                    fix.new_mode
                ),
            );
        }
        if create_atomic(&path, stamp.as_bytes(), 0o600).map_err(|e| e.source)? {
            return Ok(recorded_now);
        }
        // A concurrent DEL of the same container recorded it first.
        if let Some(first) = self.first_failure(container_id) {
            return Ok(first);
        }
        // Something that is not a marker (a planted symlink) holds the name: replace it
        // (the link itself, never its target), or no grace would ever start.
        write_atomic(&path, stamp.as_bytes(), 0o600).map_err(|e| e.source)?;
        Ok(recorded_now)
    }

    /// Forget the container (its DEL reached the daemon, or the shim gave up).
    pub fn clear(&self, container_id: &str) {
        if let Some(path) = self.path(container_id) {
            let _ = std::fs::remove_file(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_failure_is_kept_and_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let pending = PendingDels::new(dir.path());
        assert_eq!(pending.first_failure("c1"), None);
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(pending.record("c1", t0).unwrap(), t0);
        let later = t0 + Duration::from_secs(50);
        assert_eq!(pending.record("c1", later).unwrap(), t0);
        assert_eq!(pending.first_failure("c1"), Some(t0));
        pending.clear("c1");
        assert_eq!(pending.first_failure("c1"), None);
        assert!(pending.record("../x", t0).is_err());
        assert_eq!(pending.path("a/b"), None);
    }

    #[test]
    fn verdict_fails_within_the_grace_and_gives_up_after() {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000);
        let grace = Duration::from_secs(600);
        assert_eq!(
            verdict(t0, t0 + Duration::from_secs(10), grace),
            Verdict::Fail {
                remaining: Duration::from_secs(590)
            }
        );
        assert!(matches!(
            verdict(t0, t0 + grace, grace),
            Verdict::GiveUp { .. }
        ));
        assert!(matches!(
            verdict(t0, t0, Duration::ZERO),
            Verdict::GiveUp { .. }
        ));
        // Dated in the future: the whole grace, never more.
        assert_eq!(
            verdict(t0 + Duration::from_secs(86_400), t0, grace),
            Verdict::Fail { remaining: grace }
        );
    }

    #[test]
    fn a_marker_dated_in_the_future_restarts_the_grace_from_now() {
        let dir = tempfile::tempdir().unwrap();
        let pending = PendingDels::new(dir.path());
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let grace = Duration::from_secs(600);
        // Written before the clock was set back by a year.
        let future = now + Duration::from_secs(365 * 86_400);
        assert_eq!(pending.record("c1", future).unwrap(), future);
        let first = pending.record("c1", now).unwrap();
        assert_eq!(first, now);
        assert_eq!(pending.first_failure("c1"), Some(now));
        // So DELs succeed once the grace has passed on the current clock.
        assert!(matches!(
            verdict(
                pending.record("c1", now + grace).unwrap(),
                now + grace,
                grace
            ),
            Verdict::GiveUp { .. }
        ));
    }

    #[test]
    fn markers_are_never_written_through_a_planted_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let pending = PendingDels::new(dir.path());
        std::fs::create_dir(dir.path().join(PENDING_DEL_DIR)).unwrap();
        std::os::unix::fs::symlink(&victim, pending.path("c1").unwrap()).unwrap();
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000);
        // The link is not a marker (not followed); recording replaces the link itself.
        assert_eq!(pending.first_failure("c1"), None);
        assert_eq!(pending.record("c1", t0).unwrap(), t0);
        assert_eq!(pending.first_failure("c1"), Some(t0));
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    }
}
