//! # k8s-standin
//!
//! A Kubernetes API server stand-in for tests. It serves, over HTTPS on 127.0.0.1:
//!
//! - pods (with the `status` subresource) and events (core/v1), and
//!   NetworkAttachmentDefinitions (`k8s.cni.cncf.io/v1`), namespaced, with GET, LIST,
//!   WATCH (`?watch=true`, JSON lines, from a `resourceVersion`), POST, PUT, PATCH
//!   (merge patch and JSON patch; strategic merge is treated as merge) and DELETE;
//! - `uid`, `resourceVersion` and `creationTimestamp` set as the API server sets them,
//!   resourceVersion and UID preconditions, and real `Status` error bodies;
//! - the discovery documents kubectl needs (`/version`, `/api`, `/apis`, `/api/v1`,
//!   `/apis/k8s.cni.cncf.io/v1`);
//! - cluster-scoped nodes and `certificates.k8s.io/v1` CertificateSigningRequests
//!   (with the `approval` and `status` subresources): a CSR created over HTTP gets its
//!   requester (`spec.username`, `groups`, `extra`), and once approved the stand-in's CA
//!   signs it for `kubernetes.io/kube-apiserver-client`
//!   ([`StandIn::auto_approve_csrs`] approves each one as it is created);
//! - bearer-token authentication (the token can be rotated; more users with
//!   [`StandIn::add_user`]) and client-certificate authentication (certificates signed
//!   by its CA, their validity checked on every request as the API server does); the
//!   request log names the user;
//! - injectable faults ([`Fault`]: per-request latency, 5xx, 429 with `Retry-After`,
//!   dropped connections, 401/403) and a log of every request ([`RequestRecord`]) so
//!   tests can count reads and writes.
//!
//! The certificate authority is made at start; [`StandIn::kubeconfig`] is a kubeconfig
//! that trusts it. [`Options::netns`] makes the server listen on the loopback of
//! another network namespace (a test's "node"), so that processes run there reach it.
//! State lives in memory and ends with the [`StandIn`].

mod certs;
mod faults;
mod kinds;
mod server;
mod store;
mod tls;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde_json::{Value, json};

pub use certs::{PeerCert, UserInfo, add_condition};
pub use faults::{Fault, Faults, RequestRecord};
pub use kinds::{CSRS, EVENTS, Kind, NADS, NODES, PODS, RESOURCE_CLAIMS, RESOURCE_SLICES};
pub use server::status_body;
pub use store::{Store, StoreError, WatchEvent};
pub use tls::TokenIn;

/// State shared by the connections.
pub(crate) struct Shared {
    store: Mutex<Store>,
    faults: Mutex<Faults>,
    log: Mutex<Vec<RequestRecord>>,
    token: Mutex<String>,
    /// Further bearer tokens and the users they authenticate.
    users: Mutex<Vec<(String, UserInfo)>>,
    /// The user of `token`.
    token_user: UserInfo,
    tls: Arc<rustls::ServerConfig>,
    /// The CA signing approved client CSRs.
    issuer: rcgen::Issuer<'static, rcgen::KeyPair>,
    /// Approve every CSR when it is created.
    auto_approve: std::sync::atomic::AtomicBool,
    server_address: String,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Shared {
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        lock(&self.store)
    }
    pub(crate) fn faults(&self) -> MutexGuard<'_, Faults> {
        lock(&self.faults)
    }
    pub(crate) fn log(&self, record: RequestRecord) {
        lock(&self.log).push(record);
    }
    /// The user a bearer token authenticates.
    pub(crate) fn token_user(&self, token: &str) -> Option<UserInfo> {
        if token == *lock(&self.token) {
            return Some(self.token_user.clone());
        }
        lock(&self.users)
            .iter()
            .find(|(t, _)| t == token)
            .map(|(_, user)| user.clone())
    }
    pub(crate) fn issuer(&self) -> &rcgen::Issuer<'static, rcgen::KeyPair> {
        &self.issuer
    }
    pub(crate) fn auto_approve(&self) -> bool {
        self.auto_approve.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("server_address", &self.server_address)
            .finish_non_exhaustive()
    }
}

/// How to start a stand-in.
#[derive(Debug, Clone)]
pub struct Options {
    /// Where to write the kubeconfig (a temporary directory's `kubeconfig` by default).
    pub kubeconfig: Option<PathBuf>,
    /// Listen on 127.0.0.1 inside this network namespace (`/run/netns/<name>`).
    pub netns: Option<PathBuf>,
    /// Port; 0 picks a free one.
    pub port: u16,
    /// The bearer token clients must present.
    pub token: String,
    /// How the kubeconfig carries the token.
    pub token_in: TokenIn,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            kubeconfig: None,
            netns: None,
            port: 0,
            token: "standin-token".to_owned(),
            token_in: TokenIn::Kubeconfig,
        }
    }
}

/// A running stand-in; dropping it stops the server.
#[derive(Debug)]
pub struct StandIn {
    shared: Arc<Shared>,
    runtime: Option<tokio::runtime::Runtime>,
    url: String,
    port: u16,
    kubeconfig: PathBuf,
    ca_pem: String,
    _dir: Option<TempDir>,
}

/// A directory removed on drop.
#[derive(Debug)]
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir() -> std::io::Result<TempDir> {
    let path = std::env::temp_dir().join(format!(
        "k8s-standin-{}-{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&path)?;
    Ok(TempDir(path))
}

/// Bind 127.0.0.1:`port` in the current network namespace, or in `netns` (from a
/// short-lived thread that enters it: the socket stays in that namespace).
fn bind(netns: Option<&Path>, port: u16) -> std::io::Result<std::net::TcpListener> {
    let listen = move || {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port))?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    };
    let Some(netns) = netns else {
        return listen();
    };
    let netns = netns.to_owned();
    std::thread::spawn(move || {
        let file = std::fs::File::open(&netns)?;
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(std::io::Error::from)?;
        listen()
    })
    .join()
    .map_err(|_| std::io::Error::other("the thread binding the listener panicked"))?
}

impl StandIn {
    /// Start with default options on this namespace's loopback.
    pub fn start() -> std::io::Result<Self> {
        Self::start_with(Options::default())
    }

    /// Start a server.
    pub fn start_with(options: Options) -> std::io::Result<Self> {
        let identity = tls::make_identity().map_err(std::io::Error::other)?;
        let listener = bind(options.netns.as_deref(), options.port)?;
        let port = listener.local_addr()?.port();
        let url = format!("https://127.0.0.1:{port}");
        let (dir, kubeconfig) = match options.kubeconfig {
            Some(path) => (None, path),
            None => {
                let dir = temp_dir()?;
                let path = dir.0.join("kubeconfig");
                (Some(dir), path)
            }
        };
        tls::write_kubeconfig(
            &kubeconfig,
            &url,
            &identity.ca_pem,
            &options.token,
            options.token_in,
        )?;
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::default()),
            faults: Mutex::new(Faults::default()),
            log: Mutex::new(Vec::new()),
            token: Mutex::new(options.token),
            users: Mutex::new(Vec::new()),
            token_user: UserInfo::service_account_on_node("kube-system", "multus", None),
            tls: identity.server_config,
            issuer: identity.issuer,
            auto_approve: std::sync::atomic::AtomicBool::new(false),
            server_address: format!("127.0.0.1:{port}"),
        });
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("k8s-standin")
            .enable_all()
            .build()?;
        let listener = {
            let _guard = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        runtime.spawn(server::serve(listener, shared.clone()));
        Ok(Self {
            shared,
            runtime: Some(runtime),
            url,
            port,
            kubeconfig,
            ca_pem: identity.ca_pem,
            _dir: dir,
        })
    }

    /// `https://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A kubeconfig for this server (CA embedded, bearer token).
    pub fn kubeconfig(&self) -> &Path {
        &self.kubeconfig
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Accept only `token` from now on. With [`TokenIn::File`] the token file is
    /// rewritten too, as the kubelet rotates a bound service-account token.
    pub fn rotate_token(&self, token: &str) -> std::io::Result<()> {
        *lock(&self.shared.token) = token.to_owned();
        let file = tls::token_file_path(&self.kubeconfig);
        if file.exists() {
            tls::write_private(&file, token.as_bytes())?;
        }
        Ok(())
    }

    /// Accept only `token`, without touching the token file (a token that expired).
    pub fn require_token(&self, token: &str) {
        *lock(&self.shared.token) = token.to_owned();
    }

    /// Accept `token` too, as `user`.
    pub fn add_user(&self, token: &str, user: UserInfo) {
        lock(&self.shared.users).push((token.to_owned(), user));
    }

    /// Write a kubeconfig for this server carrying `token` (mode 0600).
    pub fn write_kubeconfig(&self, path: &Path, token: &str) -> std::io::Result<()> {
        tls::write_kubeconfig(path, &self.url, &self.ca_pem, token, TokenIn::Kubeconfig)
    }

    /// Approve (and so issue) every CertificateSigningRequest as it is created, as if
    /// an approver were running.
    pub fn auto_approve_csrs(&self, on: bool) {
        self.shared
            .auto_approve
            .store(on, std::sync::atomic::Ordering::Relaxed);
    }

    /// The CertificateSigningRequests, in creation order.
    pub fn csrs(&self) -> Vec<Value> {
        let mut csrs = self.list(&CSRS);
        csrs.sort_by_key(|c| {
            c.pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or_default()
        });
        csrs
    }

    /// Create a node object named `name`.
    pub fn create_node(&self, name: &str) -> Result<Value, StoreError> {
        self.create(
            &NODES,
            "",
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name}}),
        )
    }

    /// Add `latency` to every request.
    pub fn set_latency(&self, latency: Duration) {
        self.shared.faults().latency = latency;
    }

    /// Apply `fault` to each of the next `count` requests.
    pub fn fail_next(&self, count: usize, fault: Fault) {
        let mut faults = self.shared.faults();
        faults.next.extend(std::iter::repeat_n(fault, count));
    }

    /// Refuse every request with 401 or 403 (`None` to stop).
    pub fn refuse(&self, status: Option<u16>) {
        self.shared.faults().refuse = status;
    }

    /// Clear every fault.
    pub fn clear_faults(&self) {
        *self.shared.faults() = Faults::default();
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        lock(&self.shared.log).clone()
    }

    /// Forget the requests so far.
    pub fn clear_requests(&self) {
        lock(&self.shared.log).clear();
    }

    /// Run `f` on the store (to seed or inspect objects directly).
    pub fn with_store<T>(&self, f: impl FnOnce(&mut Store) -> T) -> T {
        f(&mut self.shared.store())
    }

    /// Create an object as a client's POST would; returns it.
    pub fn create(&self, kind: &Kind, namespace: &str, object: Value) -> Result<Value, StoreError> {
        self.with_store(|store| store.create(kind, namespace, object))
    }

    /// One object.
    pub fn get(&self, kind: &Kind, namespace: &str, name: &str) -> Option<Value> {
        self.with_store(|store| store.get(kind, namespace, name))
    }

    /// Delete an object.
    pub fn delete(&self, kind: &Kind, namespace: &str, name: &str) -> Result<Value, StoreError> {
        self.with_store(|store| store.delete(kind, namespace, name))
    }

    /// The objects of a resource in every namespace.
    pub fn list(&self, kind: &Kind) -> Vec<Value> {
        self.with_store(|store| store.list(kind, None))
    }

    /// Create a pod with these annotations; returns its UID.
    pub fn create_pod(&self, namespace: &str, name: &str, annotations: &[(&str, &str)]) -> String {
        let annotations: serde_json::Map<String, Value> = annotations
            .iter()
            .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
            .collect();
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "annotations": annotations},
            "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/pause:3.10"}]}
        });
        self.create(&PODS, namespace, pod)
            .ok()
            .and_then(|p| p.pointer("/metadata/uid")?.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    /// Create a NetworkAttachmentDefinition with this `spec.config`.
    pub fn create_nad(
        &self,
        namespace: &str,
        name: &str,
        config: &str,
    ) -> Result<Value, StoreError> {
        let nad = json!({
            "apiVersion": "k8s.cni.cncf.io/v1", "kind": "NetworkAttachmentDefinition",
            "metadata": {"name": name}, "spec": {"config": config}
        });
        self.create(&NADS, namespace, nad)
    }

    /// The events recorded on the pod `namespace/name`.
    pub fn pod_events(&self, namespace: &str, name: &str) -> Vec<Value> {
        self.list(&EVENTS)
            .into_iter()
            .filter(|e| {
                e.pointer("/involvedObject/name").and_then(Value::as_str) == Some(name)
                    && e.pointer("/involvedObject/namespace")
                        .and_then(Value::as_str)
                        == Some(namespace)
            })
            .collect()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
