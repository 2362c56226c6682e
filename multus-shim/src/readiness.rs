//! Waiting for the daemon: `/readyz` before ADD, CHECK, GC and STATUS (bounded), a
//! `/healthz` probe before DEL (a daemon that is shutting down still serves DELs).

use std::time::{Duration, Instant};

use crate::api::{HEALTHZ_PATH, READYZ_PATH};
use crate::client::{ClientError, SocketClient};

/// How often `/readyz` is polled (upstream: 100 ms).
pub const READY_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Time limit of one probe.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The last thing that kept the daemon from being ready.
#[derive(Debug)]
pub enum NotReady {
    /// No connection (or no answer).
    Unreachable(ClientError),
    /// It answered `/readyz` with this status (500 while shutting down).
    Status(u16),
}

impl std::fmt::Display for NotReady {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unreachable(e) => write!(f, "{e}"),
            Self::Status(status) => write!(f, "/readyz answered {status}"),
        }
    }
}

/// Poll `/readyz` every [`READY_POLL_INTERVAL`] until it answers 200 or `timeout`
/// passes (at least one probe is made).
pub fn wait_ready(client: &SocketClient, timeout: Duration) -> Result<(), NotReady> {
    let probe = client.clone().with_timeout(PROBE_TIMEOUT);
    let deadline = Instant::now() + timeout;
    loop {
        let last = match probe.get(READYZ_PATH) {
            Ok(response) if response.status == 200 => return Ok(()),
            Ok(response) => NotReady::Status(response.status),
            // Waiting will not grant the permission.
            Err(e) if e.is_permission_denied() => return Err(NotReady::Unreachable(e)),
            Err(e) => NotReady::Unreachable(e),
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(last);
        }
        std::thread::sleep(READY_POLL_INTERVAL.min(deadline - now));
    }
}

/// Probe `/healthz` until the daemon answers at all (any status) or `timeout` passes.
pub fn wait_healthy(client: &SocketClient, timeout: Duration) -> Result<u16, ClientError> {
    let probe = client.clone().with_timeout(PROBE_TIMEOUT);
    let deadline = Instant::now() + timeout;
    loop {
        match probe.get(HEALTHZ_PATH) {
            Ok(response) => return Ok(response.status),
            Err(e) if e.is_permission_denied() => return Err(e),
            Err(e) => {
                let now = Instant::now();
                if now >= deadline {
                    return Err(e);
                }
                std::thread::sleep(Duration::from_millis(200).min(deadline - now));
            }
        }
    }
}
