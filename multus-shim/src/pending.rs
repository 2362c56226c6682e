//! The shim's memory of DELs that failed because the daemon was unreachable:
//! `<cniDir>/shim-pending-del/<containerID>`, holding the time of the first failure (Unix
//! seconds). A DEL keeps failing with code 11 ("try again later") until the daemon is
//! back (the DEL then really runs and the marker goes) or until the first failure is
//! older than `daemonUnreachableDelGraceSeconds` (the DEL then succeeds with a warning,
//! so that a node whose multus was uninstalled can still delete its pods).

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use multus_core::request::is_valid_container_id;

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

/// Decide from the first failure's time.
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
        let text = std::fs::read_to_string(&path).ok()?;
        match text.trim().parse::<u64>() {
            Ok(secs) => Some(UNIX_EPOCH + Duration::from_secs(secs)),
            // Unreadable content: the file's own time is the best estimate.
            Err(_) => std::fs::metadata(&path).and_then(|m| m.modified()).ok(),
        }
    }

    /// Record a failure at `now`; returns the first failure's time (`now` unless an
    /// earlier one was recorded).
    pub fn record(&self, container_id: &str, now: SystemTime) -> std::io::Result<SystemTime> {
        let path = self.path(container_id).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("invalid container ID {container_id:?}"),
            )
        })?;
        if let Some(first) = self.first_failure(container_id) {
            return Ok(first);
        }
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)?;
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(mut file) => {
                file.write_all(format!("{secs}\n").as_bytes())?;
                file.sync_all()?;
                Ok(UNIX_EPOCH + Duration::from_secs(secs))
            }
            // A concurrent DEL of the same container recorded it first.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Ok(self.first_failure(container_id).unwrap_or(now))
            }
            Err(e) => Err(e),
        }
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
    }
}
