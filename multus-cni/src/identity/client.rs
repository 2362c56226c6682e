//! A kube-rs client that authenticates with the node's current certificate.
//!
//! Each request goes through the kube-rs client made for the certificate current at
//! that moment; when the certificate is replaced, the next request makes a new one
//! (new TLS connections with the new certificate), while requests and watches already
//! running finish on the old connections. Bootstrap credentials are never sent once a
//! certificate is used.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use base64::Engine as _;
use futures_util::future::BoxFuture;
use http::{Request, Response};
use kube::client::Body;
use tokio::sync::watch;

use super::cert::CertPair;

/// `base` (server, CA, timeouts) authenticating with `pair` only.
pub fn config_for(base: &kube::Config, pair: &CertPair) -> Result<kube::Config, String> {
    let data = base64::engine::general_purpose::STANDARD.encode(&pair.pem);
    let auth_info: kube::config::AuthInfo = serde_json::from_value(serde_json::json!({
        "client-certificate-data": data,
        "client-key-data": data,
    }))
    .map_err(|e| format!("cannot use the certificate: {e}"))?;
    let mut config = base.clone();
    config.auth_info = auth_info;
    Ok(config)
}

/// The client made for a certificate, kept until the certificate changes.
type MadeClient = Arc<Mutex<Option<(Arc<CertPair>, kube::Client)>>>;

/// The tower service behind [`rotating_client`].
#[derive(Clone)]
pub struct RotatingService {
    base: kube::Config,
    current: watch::Receiver<Arc<CertPair>>,
    made: MadeClient,
}

impl std::fmt::Debug for RotatingService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RotatingService")
            .field("cluster_url", &self.base.cluster_url)
            .finish_non_exhaustive()
    }
}

impl RotatingService {
    fn client(&self) -> Result<kube::Client, kube::Error> {
        let pair = self.current.borrow().clone();
        let mut made = self
            .made
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((for_pair, client)) = made.as_ref()
            && Arc::ptr_eq(for_pair, &pair)
        {
            return Ok(client.clone());
        }
        let config = config_for(&self.base, &pair).map_err(|e| kube::Error::Service(e.into()))?;
        let client = kube::Client::try_from(config)?;
        *made = Some((pair, client.clone()));
        Ok(client)
    }
}

impl tower::Service<Request<Body>> for RotatingService {
    type Response = Response<Body>;
    type Error = kube::Error;
    type Future = BoxFuture<'static, Result<Response<Body>, kube::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        let client = self.client();
        Box::pin(async move { client?.send(request).await })
    }
}

/// A client for `base`'s server that always presents the certificate in `current`
/// (needs a tokio runtime).
pub fn rotating_client(
    base: &kube::Config,
    current: watch::Receiver<Arc<CertPair>>,
) -> kube::Client {
    let service = RotatingService {
        base: base.clone(),
        current,
        made: Arc::new(Mutex::new(None)),
    };
    kube::Client::new(service, base.default_namespace.clone())
}
