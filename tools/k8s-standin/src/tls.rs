//! A CA and a server certificate for 127.0.0.1, made at start, and the kubeconfig that
//! trusts that CA.

use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;

/// The server's TLS identity.
pub struct Identity {
    /// The CA certificate, PEM.
    pub ca_pem: String,
    /// The rustls configuration serving the server certificate and accepting (not
    /// requiring) client certificates signed by the CA.
    pub server_config: Arc<rustls::ServerConfig>,
    /// The CA, which also signs approved client CSRs.
    pub issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").finish_non_exhaustive()
    }
}

/// A fresh CA and a server certificate for `127.0.0.1` and `localhost`.
pub fn make_identity() -> Result<Identity, String> {
    let err = |e: rcgen::Error| e.to_string();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).map_err(err)?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "k8s-standin-ca");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate().map_err(err)?;
    let ca_cert = ca_params.self_signed(&ca_key).map_err(err)?;
    let issuer = Issuer::new(ca_params.clone(), ca_key);

    let mut params = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
        .map_err(err)?;
    params
        .distinguished_name
        .push(DnType::CommonName, "k8s-standin");
    let key = KeyPair::generate().map_err(err)?;
    let cert = params.signed_by(&key, &issuer).map_err(err)?;

    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> = vec![cert.der().clone(), ca_cert.der().clone()];
    let private = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(ca_cert.der().clone())
        .map_err(|e| e.to_string())?;
    let client_verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .allow_unauthenticated()
    .build()
    .map_err(|e| e.to_string())?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(client_verifier)
        .with_single_cert(chain, private)
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Identity {
        ca_pem: ca_cert.pem(),
        server_config: Arc::new(config),
        issuer,
    })
}

/// How the kubeconfig carries the bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenIn {
    /// Inline `token`.
    Kubeconfig,
    /// `tokenFile` pointing at `<kubeconfig>.token`, re-read by clients as it changes.
    File,
}

/// Write a kubeconfig for `server` trusting `ca_pem` with `token` (file mode 0600).
pub fn write_kubeconfig(
    path: &Path,
    server: &str,
    ca_pem: &str,
    token: &str,
    token_in: TokenIn,
) -> std::io::Result<()> {
    let user = match token_in {
        TokenIn::Kubeconfig => json!({"token": token}),
        TokenIn::File => {
            let file = token_file_path(path);
            write_private(&file, token.as_bytes())?;
            json!({"tokenFile": file.display().to_string()})
        }
    };
    let ca = base64::engine::general_purpose::STANDARD.encode(ca_pem);
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "standin", "cluster": {"server": server, "certificate-authority-data": ca}}],
        "users": [{"name": "multus", "user": user}],
        "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "multus", "namespace": "default"}}],
        "current-context": "standin",
        "preferences": {}
    });
    write_private(path, config.to_string().as_bytes())
}

/// Where [`TokenIn::File`] puts the token.
pub fn token_file_path(kubeconfig: &Path) -> std::path::PathBuf {
    let mut name = kubeconfig.as_os_str().to_owned();
    name.push(".token");
    name.into()
}

/// Write a file readable by its owner only, atomically.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    Ok(multus_host::atomic::write_atomic(path, bytes, 0o600)?)
}
