//! Obtain the node's certificate, reuse it across restarts, and rotate it before it
//! expires while the old one keeps serving.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::cert::{CertPair, jitter_fraction};
use super::request::{RequestError, obtain};
use super::{DEFAULT_ISSUE_TIMEOUT, PerNodeCertificate, client, store, user_name};
use crate::cluster::kube::{ApiSource, kube_config};

/// Why the node has no identity.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// The bootstrap kubeconfig cannot be used.
    #[error("perNodeCertificate: bootstrap credentials: {0}")]
    Bootstrap(String),
    /// `certDir` cannot be used.
    #[error("perNodeCertificate: {0}")]
    Store(#[from] store::StoreError),
    /// No certificate was issued.
    #[error("perNodeCertificate: {0}")]
    Request(#[from] RequestError),
}

/// Where the current certificate came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// A valid one stored by an earlier run.
    Reused,
    /// Issued now.
    Issued,
}

/// The node's identity: the current certificate, its rotation, and clients using it.
#[derive(Debug)]
pub struct CertManager {
    config: PerNodeCertificate,
    node: String,
    bootstrap: kube::Config,
    current: watch::Sender<Arc<CertPair>>,
    issue_timeout: Duration,
    origin: Origin,
}

impl CertManager {
    /// Reuse the stored certificate when it is valid, else obtain one with the
    /// bootstrap credentials (waiting up to `issue_timeout` for approval).
    pub async fn start(
        config: PerNodeCertificate,
        node: &str,
        api_timeout: Duration,
        issue_timeout: Option<Duration>,
    ) -> Result<Self, IdentityError> {
        let source = match &config.bootstrap_kubeconfig {
            Some(path) => ApiSource::Kubeconfig(path.clone()),
            None => ApiSource::InCluster,
        };
        let bootstrap = kube_config(&source, api_timeout)
            .await
            .map_err(IdentityError::Bootstrap)?;
        store::prepare(&config.cert_dir)?;
        let user = user_name(node);
        let issue_timeout = issue_timeout.unwrap_or(DEFAULT_ISSUE_TIMEOUT);
        let (pair, origin) = match store::load_valid(&config.cert_dir, &user, SystemTime::now()) {
            Some(pair) => {
                tracing::info!(%user, not_after = %multus_host::time::rfc3339(pair.not_after),
                    "reusing the stored certificate");
                (pair, Origin::Reused)
            }
            None => {
                let client = kube::Client::try_from(bootstrap.clone())
                    .map_err(|e| IdentityError::Bootstrap(e.to_string()))?;
                let pair = obtain(client, node, config.cert_duration, issue_timeout).await?;
                store::save(&config.cert_dir, &pair)?;
                tracing::info!(%user, not_after = %multus_host::time::rfc3339(pair.not_after),
                    "certificate issued");
                (pair, Origin::Issued)
            }
        };
        let (current, _) = watch::channel(Arc::new(pair));
        Ok(Self {
            config,
            node: node.to_owned(),
            bootstrap,
            current,
            issue_timeout,
            origin,
        })
    }

    /// Where the first certificate came from.
    pub fn origin(&self) -> Origin {
        self.origin
    }

    /// The certificate in use.
    pub fn current(&self) -> Arc<CertPair> {
        self.current.borrow().clone()
    }

    /// Follow the certificate in use.
    pub fn subscribe(&self) -> watch::Receiver<Arc<CertPair>> {
        self.current.subscribe()
    }

    /// A client that presents the current certificate (needs a tokio runtime).
    pub fn client(&self) -> kube::Client {
        client::rotating_client(&self.bootstrap, self.subscribe())
    }

    /// The configuration.
    pub fn config(&self) -> &PerNodeCertificate {
        &self.config
    }

    /// Rotate for ever: at 70-90% of each certificate's lifetime ask for a new one
    /// (with the current identity, falling back to the bootstrap credentials), retry
    /// with backoff while the old one keeps serving, then store and publish it.
    pub async fn rotate(self: Arc<Self>) {
        loop {
            let pair = self.current();
            let due = pair.rotation_due(jitter_fraction());
            let wait = due
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO);
            tracing::debug!(in_secs = wait.as_secs_f64(), "next certificate rotation");
            tokio::time::sleep(wait).await;
            let mut backoff =
                (pair.lifetime() / 20).clamp(Duration::from_millis(500), Duration::from_secs(30));
            loop {
                match self.renew().await {
                    Ok(new) => {
                        if let Err(e) = store::save(&self.config.cert_dir, &new) {
                            tracing::error!(error = %e, "cannot store the new certificate; using it from memory");
                        }
                        tracing::info!(user = %new.common_name,
                            not_after = %multus_host::time::rfc3339(new.not_after), "certificate rotated");
                        self.current.send_replace(Arc::new(new));
                        break;
                    }
                    Err(e) => {
                        let expired = !self.current().valid_at(SystemTime::now());
                        tracing::warn!(error = %e, expired, retry_in_secs = backoff.as_secs_f64(),
                            "certificate rotation failed; the current certificate stays in use");
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(300));
                    }
                }
            }
        }
    }

    /// One renewal: first as the node's own identity, then with the bootstrap
    /// credentials when the API refuses the current certificate.
    async fn renew(&self) -> Result<CertPair, RequestError> {
        let duration = self.config.cert_duration;
        let own = self.client();
        match obtain(own, &self.node, duration, self.issue_timeout).await {
            Err(RequestError::Api { reason, .. }) => {
                tracing::info!(%reason, "renewal with the current certificate refused; using the bootstrap credentials");
                let bootstrap = kube::Client::try_from(self.bootstrap.clone()).map_err(|e| {
                    RequestError::Api {
                        user: user_name(&self.node),
                        reason: e.to_string(),
                    }
                })?;
                obtain(bootstrap, &self.node, duration, self.issue_timeout).await
            }
            other => other,
        }
    }
}
