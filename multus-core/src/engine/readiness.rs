//! `readinessindicatorfile`: ADD, STATUS and GC wait (a bounded time) for the file that
//! says the cluster network is ready; DEL only warns when it is missing.

use std::time::Duration;

use super::{Engine, MultusError};

/// How often the file is checked while waiting (upstream: 1 s).
pub const READINESS_POLL_INTERVAL: Duration = Duration::from_secs(1);

impl Engine<'_> {
    /// Wait for the readiness indicator file, when one is configured.
    pub(super) async fn wait_until_ready(&self, command: &'static str) -> Result<(), MultusError> {
        let Some(path) = &self.conf.readiness_indicator_file else {
            return Ok(());
        };
        let timeout = self.conf.readiness_indicator_timeout;
        if self
            .seams
            .files
            .wait_for(path, timeout, READINESS_POLL_INTERVAL)
            .await
        {
            return Ok(());
        }
        Err(MultusError::NotReady {
            command,
            path: path.clone(),
            waited: timeout,
        })
    }

    /// DEL never waits: it only logs when the file is missing.
    pub(super) fn warn_if_not_ready(&self) {
        if let Some(path) = &self.conf.readiness_indicator_file
            && !self.seams.files.exists(path)
        {
            tracing::warn!(path = %path.display(), "readinessindicatorfile is missing; deleting anyway");
        }
    }
}
