//! The thin plugin's kubeconfig, made from the DaemonSet pod's service account.
//!
//! The thin plugin runs on the host, outside the pod, so it cannot read the pod's
//! projected token at `/var/run/secrets/...`. multus-node copies the token to the host
//! as `<dir>/multus.token` (0600) and writes `<dir>/multus.kubeconfig` (0600) that
//! names it with `tokenFile` and embeds the CA (`certificate-authority-data`).
//!
//! Why `tokenFile` rather than an inline token: when the kubelet rotates the projected
//! token only the token file is rewritten (atomically), and every reader picks it up
//! without re-reading the kubeconfig: the thin plugin reads it on every call, and
//! long-lived clients (client-go, kube-rs) re-read a `tokenFile` periodically. The
//! kubeconfig itself changes only when the CA or the API server address changes. Both
//! files are refreshed by the entrypoint's watch loop (upstream refreshed its inline
//! token only with `--cleanup-config-on-exit`, so bound tokens expired: #852).

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::atomic;
use crate::error::NodeError;

/// Name of the kubeconfig in `<cni-conf-dir>/multus.d`.
pub const KUBECONFIG_NAME: &str = "multus.kubeconfig";
/// Name of the token file beside it.
pub const TOKEN_NAME: &str = "multus.token";

/// What the pod's service account provides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    /// The bearer token (trimmed).
    pub token: String,
    /// The CA bundle, PEM.
    pub ca_pem: Vec<u8>,
}

impl ServiceAccount {
    /// Read `token` and `ca.crt` from the service-account directory.
    pub fn read(dir: &Path) -> Result<Self, NodeError> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|e| {
                NodeError::ServiceAccount(format!(
                    "cannot read the service account's {name} at {}: {e}: the pod needs a mounted service-account token (automountServiceAccountToken must not be false)",
                    path.display()
                ))
            })
        };
        let token = String::from_utf8_lossy(&read("token")?).trim().to_owned();
        if token.is_empty() {
            return Err(NodeError::ServiceAccount(format!(
                "the service-account token {} is empty",
                dir.join("token").display()
            )));
        }
        let ca_pem = read("ca.crt")?;
        if ca_pem.is_empty() {
            return Err(NodeError::ServiceAccount(format!(
                "the service-account CA {} is empty",
                dir.join("ca.crt").display()
            )));
        }
        Ok(Self { token, ca_pem })
    }
}

/// The API server URL from `KUBERNETES_SERVICE_HOST` / `_PORT` (IPv6 hosts bracketed).
pub fn server_url(host: &str, port: &str, protocol: &str) -> Result<String, NodeError> {
    let host = host.trim();
    let port = port.trim();
    if host.is_empty() || port.is_empty() {
        return Err(NodeError::ServiceAccount(
            "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set (the kubelet sets them in every pod; pass --kubernetes-service-host/--kubernetes-service-port otherwise)".to_owned(),
        ));
    }
    if port.parse::<u16>().is_err() {
        return Err(NodeError::ServiceAccount(format!(
            "KUBERNETES_SERVICE_PORT {port:?} is not a port number"
        )));
    }
    let host = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    Ok(format!("{protocol}://{host}:{port}"))
}

/// The kubeconfig document: cluster `server` trusting `ca_pem`, user with `tokenFile`.
pub fn document(server: &str, ca_pem: &[u8], token_file_on_host: &Path) -> Value {
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "local", "cluster": {
            "server": server,
            "certificate-authority-data": ca
        }}],
        "users": [{"name": "multus", "user": {
            "tokenFile": token_file_on_host.display().to_string()
        }}],
        "contexts": [{"name": "multus-context", "context": {"cluster": "local", "user": "multus"}}],
        "current-context": "multus-context"
    })
}

/// The kubeconfig of a per-node identity: cluster `server` trusting `ca_pem`, user
/// with the certificate and key file `cert_file_on_host` (rotated in place).
pub fn cert_document(server: &str, ca_pem: &[u8], cert_file_on_host: &Path) -> Value {
    let mut doc = document(server, ca_pem, Path::new(""));
    let file = cert_file_on_host.display().to_string();
    doc["users"][0]["user"] = json!({"client-certificate": file, "client-key": file});
    doc
}

/// Write the per-node identity's kubeconfig (0600, atomically, only when it changed)
/// and remove a service-account token left by the token mode: the token must not stay
/// on the host. Returns whether the kubeconfig was written.
pub fn write_for_cert(
    paths: &KubeconfigPaths,
    server: &str,
    ca_pem: &[u8],
    cert_file_on_host: &Path,
) -> Result<bool, NodeError> {
    match std::fs::remove_file(&paths.token) {
        Ok(()) => {
            tracing::info!(path = %paths.token.display(), "removed the service-account token from the host")
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(NodeError::Io {
                action: "remove".to_owned(),
                path: paths.token.clone(),
                source: e,
            });
        }
    }
    let doc = cert_document(server, ca_pem, cert_file_on_host);
    let mut text = String::from(
        "# Written by multus-node thin-entrypoint for this node's own identity (perNodeCertificate); do not edit.\n",
    );
    text.push_str(
        &serde_saphyr::to_string(&doc)
            .map_err(|e| NodeError::Config(format!("cannot serialise the kubeconfig: {e}")))?,
    );
    if std::fs::read(&paths.kubeconfig).ok().as_deref() == Some(text.as_bytes()) {
        return Ok(false);
    }
    atomic::write_atomic(&paths.kubeconfig, text.as_bytes(), 0o600)?;
    Ok(true)
}

/// A bootstrap kubeconfig from the pod's service account, for the CSRs only: it names
/// the token where the kubelet mounts (and rotates) it, so it never leaves the pod.
pub fn bootstrap_document(server: &str, ca_pem: &[u8], token_file: &Path) -> Value {
    document(server, ca_pem, token_file)
}

/// Where the two files go, in the container and as the host sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KubeconfigPaths {
    /// `<cni-conf-dir>/multus.d/multus.kubeconfig` (container path).
    pub kubeconfig: PathBuf,
    /// `<cni-conf-dir>/multus.d/multus.token` (container path).
    pub token: PathBuf,
    /// The kubeconfig's path on the host (written into `00-multus.conf`).
    pub kubeconfig_on_host: PathBuf,
    /// The token file's path on the host (written into the kubeconfig).
    pub token_on_host: PathBuf,
}

impl KubeconfigPaths {
    /// In `dir` (container path), with the kubeconfig at `kubeconfig_on_host` on the host;
    /// the token file sits beside it there.
    pub fn new(dir: &Path, kubeconfig_on_host: &Path) -> Self {
        let host_dir = kubeconfig_on_host.parent().unwrap_or(Path::new("/"));
        Self {
            kubeconfig: dir.join(KUBECONFIG_NAME),
            token: dir.join(TOKEN_NAME),
            kubeconfig_on_host: kubeconfig_on_host.to_owned(),
            token_on_host: host_dir.join(TOKEN_NAME),
        }
    }
}

/// What [`write()`] changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Written {
    /// The token file was (re)written.
    pub token: bool,
    /// The kubeconfig was (re)written.
    pub kubeconfig: bool,
}

/// Write the token file and the kubeconfig (0600 each, atomically), each only when its
/// content differs from what is on disk. The token goes first, so the kubeconfig never
/// names a missing token file.
pub fn write(
    paths: &KubeconfigPaths,
    server: &str,
    account: &ServiceAccount,
) -> Result<Written, NodeError> {
    let mut written = Written::default();
    // Exactly the token, no newline: not every client trims the file.
    let token = account.token.clone();
    if std::fs::read(&paths.token).ok().as_deref() != Some(token.as_bytes()) {
        atomic::write_atomic(&paths.token, token.as_bytes(), 0o600)?;
        written.token = true;
    }
    let doc = document(server, &account.ca_pem, &paths.token_on_host);
    let mut text = String::from(
        "# Written by multus-node thin-entrypoint from the DaemonSet's service account; do not edit.\n",
    );
    text.push_str(
        &serde_saphyr::to_string(&doc)
            .map_err(|e| NodeError::Config(format!("cannot serialise the kubeconfig: {e}")))?,
    );
    if std::fs::read(&paths.kubeconfig).ok().as_deref() != Some(text.as_bytes()) {
        atomic::write_atomic(&paths.kubeconfig, text.as_bytes(), 0o600)?;
        written.kubeconfig = true;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_urls_bracket_ipv6_and_check_the_port() {
        assert_eq!(
            server_url("10.96.0.1", "443", "https").unwrap(),
            "https://10.96.0.1:443"
        );
        assert_eq!(
            server_url("fd00::1", "6443", "https").unwrap(),
            "https://[fd00::1]:6443"
        );
        assert!(server_url("", "443", "https").is_err());
        assert!(server_url("h", "https", "https").is_err());
    }

    #[test]
    fn the_kubeconfig_names_the_host_token_file_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let paths = KubeconfigPaths::new(
            dir.path(),
            Path::new("/etc/cni/net.d/multus.d/multus.kubeconfig"),
        );
        let account = ServiceAccount {
            token: "t1".into(),
            ca_pem: b"-----BEGIN CERTIFICATE-----\n".to_vec(),
        };
        let first = write(&paths, "https://10.0.0.1:443", &account).unwrap();
        assert_eq!(
            first,
            Written {
                token: true,
                kubeconfig: true
            }
        );
        let doc: Value =
            serde_saphyr::from_str(&std::fs::read_to_string(&paths.kubeconfig).unwrap()).unwrap();
        assert_eq!(
            doc["users"][0]["user"]["tokenFile"],
            "/etc/cni/net.d/multus.d/multus.token"
        );
        assert_eq!(
            doc["clusters"][0]["cluster"]["server"],
            "https://10.0.0.1:443"
        );
        assert_eq!(std::fs::read_to_string(&paths.token).unwrap(), "t1");
        use std::os::unix::fs::PermissionsExt as _;
        for path in [&paths.kubeconfig, &paths.token] {
            let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{}", path.display());
        }
        let again = write(&paths, "https://10.0.0.1:443", &account).unwrap();
        assert_eq!(again, Written::default());
        let rotated = ServiceAccount {
            token: "t2".into(),
            ..account
        };
        let third = write(&paths, "https://10.0.0.1:443", &rotated).unwrap();
        assert_eq!(
            third,
            Written {
                token: true,
                kubeconfig: false
            }
        );
    }
}
