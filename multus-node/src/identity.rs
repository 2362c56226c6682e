//! `--per-node-certificate`: the thin plugin authenticates as `system:multus:<node>`
//! with a certificate that this process obtains (CSR with the bootstrap credentials),
//! stores in `--certdir` and rotates, on a thread of its own with a small tokio
//! runtime. The kubeconfig written for the plugin names the certificate file, which is
//! replaced atomically on each rotation: every plugin call reads the current one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use multus_cni::identity::{CertManager, CertPair, PerNodeCertificate, parse_duration};

use crate::NodeError;
use crate::kubeconfig;

/// Time limit of one API request of the certificate manager.
const API_TIMEOUT: Duration = Duration::from_secs(30);

/// The settings of `--per-node-certificate`.
#[derive(Debug, Clone)]
pub struct NodeIdentity {
    /// The node.
    pub node: String,
    /// Bootstrap kubeconfig, certDir, certDuration.
    pub config: PerNodeCertificate,
}

impl NodeIdentity {
    /// From the flags; `bootstrap` is the kubeconfig to use (given or generated).
    pub fn new(
        node: &str,
        bootstrap: PathBuf,
        cert_dir: &Path,
        duration: &str,
    ) -> Result<Self, NodeError> {
        if node.is_empty() {
            return Err(NodeError::Usage(
                "--per-node-certificate needs the node name (--node-name or MULTUS_NODE_NAME, from the downward API's spec.nodeName)".to_owned(),
            ));
        }
        let cert_duration = parse_duration(duration)
            .map_err(|e| NodeError::Usage(format!("--cert-duration: {e}")))?;
        Ok(Self {
            node: node.to_owned(),
            config: PerNodeCertificate {
                bootstrap_kubeconfig: Some(bootstrap),
                cert_dir: cert_dir.to_owned(),
                cert_duration,
            },
        })
    }
}

/// Write a bootstrap kubeconfig at `path` (0600) from the service account: the server,
/// its CA and the token file where the kubelet mounts it.
pub fn write_bootstrap(
    path: &Path,
    server: &str,
    service_account_dir: &Path,
) -> Result<(), NodeError> {
    let ca_path = service_account_dir.join("ca.crt");
    let ca = std::fs::read(&ca_path).map_err(|e| {
        NodeError::ServiceAccount(format!(
            "cannot read the service account's CA {}: {e}",
            ca_path.display()
        ))
    })?;
    let doc = kubeconfig::bootstrap_document(server, &ca, &service_account_dir.join("token"));
    let text = serde_json::to_vec(&doc).map_err(|e| {
        NodeError::Config(format!("cannot serialise the bootstrap kubeconfig: {e}"))
    })?;
    crate::atomic::write_atomic(path, &text, 0o600)?;
    Ok(())
}

/// Obtain (or reuse) the certificate, then keep rotating it on a thread of its own.
/// Returns once the first certificate is on disk.
pub fn start(identity: NodeIdentity) -> Result<Arc<CertPair>, NodeError> {
    let (sender, receiver) = mpsc::channel();
    std::thread::Builder::new()
        .name("multus-node-identity".to_owned())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = sender.send(Err(format!("cannot start the runtime: {e}")));
                    return;
                }
            };
            runtime.block_on(async move {
                match CertManager::start(identity.config, &identity.node, API_TIMEOUT, None).await {
                    Ok(manager) => {
                        let manager = Arc::new(manager);
                        let _ = sender.send(Ok(manager.current()));
                        manager.rotate().await;
                    }
                    Err(e) => {
                        let _ = sender.send(Err(e.to_string()));
                    }
                }
            });
        })
        .map_err(|e| NodeError::Usage(format!("cannot start the identity thread: {e}")))?;
    receiver
        .recv()
        .map_err(|_| NodeError::ServiceAccount("the identity thread stopped".to_owned()))?
        .map_err(NodeError::ServiceAccount)
}
