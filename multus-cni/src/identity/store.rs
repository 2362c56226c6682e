//! The current certificate and key in `certDir`: one file (upstream's
//! `multus-client-current.pem`), so that the certificate and its key are always
//! replaced together; written atomically with mode 0600 in a 0700 directory.

use std::path::Path;
use std::time::SystemTime;

use super::CURRENT_FILE;
use super::cert::CertPair;

/// Why the stored pair cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory or file cannot be made or written.
    #[error("{0}")]
    Io(String),
}

/// Create `cert_dir` (0700) when missing, tightening a loose existing one.
pub fn prepare(cert_dir: &Path) -> Result<(), StoreError> {
    let report = multus_host::dir::secure_dir(cert_dir, 0o700)
        .map_err(|e| StoreError::Io(format!("certDir {}: {e}", cert_dir.display())))?;
    if let Some(fix) = report.fixed {
        tracing::warn!(dir = %cert_dir.display(), old_mode = format!("{:o}", fix.old_mode),
            "certDir could be written by others; tightened");
    }
    Ok(())
}

/// The stored pair when it is usable at `now` for `user`: readable, its key its own,
/// issued to `user`, and not expired. Anything else is logged and ignored (a new
/// certificate is then requested).
pub fn load_valid(cert_dir: &Path, user: &str, now: SystemTime) -> Option<CertPair> {
    let path = cert_dir.join(CURRENT_FILE);
    let bytes = match multus_host::open::read_nofollow(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "cannot read the stored certificate");
            return None;
        }
    };
    let pair = match CertPair::parse(&String::from_utf8_lossy(&bytes)) {
        Ok(pair) => pair,
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "ignoring the stored certificate");
            return None;
        }
    };
    if pair.common_name != user {
        tracing::warn!(file = %path.display(), found = %pair.common_name, wanted = %user,
            "the stored certificate is for another identity; ignoring it");
        return None;
    }
    if !pair.valid_at(now) {
        tracing::info!(file = %path.display(), "the stored certificate has expired");
        return None;
    }
    Some(pair)
}

/// Replace the stored pair atomically (mode 0600).
pub fn save(cert_dir: &Path, pair: &CertPair) -> Result<(), StoreError> {
    let path = cert_dir.join(CURRENT_FILE);
    multus_host::atomic::write_atomic(&path, pair.pem.as_bytes(), 0o600)
        .map_err(|e| StoreError::Io(e.to_string()))
}
