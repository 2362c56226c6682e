//! Serving the socket's connections so that idle or slow clients cannot stall the
//! daemon (nor use up its file descriptors):
//!
//! - a client must send a request's headers within [`HEADER_TIMEOUT`] of connecting
//!   (or of its previous response), else the connection is closed;
//! - at most `connectionLimit` connections are open at once (default: half the open
//!   file limit, between [`MIN_CONNECTIONS`] and [`MAX_CONNECTIONS`], so file
//!   descriptors remain for the delegates' pipes and the state files); when all are
//!   taken, a new connection closes the oldest one that is waiting for a request, and
//!   only when every one is serving a request does it wait;
//! - at start-up the soft open-file limit is raised to the hard limit.
//!
//! On shutdown the listener closes, connections waiting for a request close at once and
//! the others after their response.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;

/// How long a connection may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(5);
/// The fewest connections the default limit allows.
pub const MIN_CONNECTIONS: usize = 16;
/// The most connections the default limit allows.
pub const MAX_CONNECTIONS: usize = 4096;

/// Raise the soft `RLIMIT_NOFILE` to the hard limit; the soft limit in effect after.
pub fn raise_fd_limit() -> u64 {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => {
                tracing::info!(from = soft, to = hard, "raised the open file limit");
                hard
            }
            Err(e) => {
                tracing::warn!(soft, hard, error = %e, "cannot raise the open file limit");
                soft
            }
        },
        Ok((soft, _)) => soft,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read the open file limit");
            1024
        }
    }
}

/// `connectionLimit`, or the default for an open file limit of `fd_limit`.
pub fn connection_limit(configured: Option<usize>, fd_limit: u64) -> usize {
    configured.unwrap_or_else(|| {
        usize::try_from(fd_limit / 2)
            .unwrap_or(MAX_CONNECTIONS)
            .clamp(MIN_CONNECTIONS, MAX_CONNECTIONS)
    })
}

/// One open connection, as the accept loop sees it.
#[derive(Debug, Default)]
struct Slot {
    /// Requests being served on it.
    busy: AtomicUsize,
    /// Told to close when idle.
    close: Notify,
}

/// The open connections, oldest first, and a signal when one closes or goes idle.
#[derive(Debug, Default)]
struct Registry {
    open: Mutex<BTreeMap<u64, Arc<Slot>>>,
    freed: Notify,
}

impl Registry {
    fn len(&self) -> usize {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Close the oldest connection that is waiting for a request; whether there was one.
    fn close_oldest_idle(&self) -> bool {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let idle = open
            .iter()
            .find(|(_, slot)| slot.busy.load(Ordering::Acquire) == 0)
            .map(|(id, _)| *id);
        match idle.and_then(|id| open.remove(&id)) {
            Some(slot) => {
                slot.close.notify_one();
                true
            }
            None => false,
        }
    }

    fn insert(&self, id: u64, slot: Arc<Slot>) {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(id, slot);
    }

    fn remove(&self, id: u64) {
        self.open
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&id);
        self.freed.notify_waiters();
    }
}

/// Marks a connection busy while a request is served on it.
struct Busy {
    slot: Arc<Slot>,
    registry: Arc<Registry>,
}

impl Busy {
    fn enter(slot: &Arc<Slot>, registry: &Arc<Registry>) -> Self {
        slot.busy.fetch_add(1, Ordering::AcqRel);
        Self {
            slot: slot.clone(),
            registry: registry.clone(),
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if self.slot.busy.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.registry.freed.notify_waiters();
        }
    }
}

/// Serve `router` on `listener` until `shutdown` completes, with at most `limit`
/// connections open.
pub async fn serve(
    listener: UnixListener,
    router: Router,
    limit: usize,
    shutdown: impl Future<Output = ()>,
) {
    let registry = Arc::new(Registry::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut next_id: u64 = 0;
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        if !make_room(&registry, limit, &mut shutdown).await {
            break;
        }
        next_id += 1;
        let slot = Arc::new(Slot::default());
        registry.insert(next_id, slot.clone());
        tasks.spawn(connection(
            stream,
            router.clone(),
            ConnectionContext {
                id: next_id,
                slot,
                registry: registry.clone(),
                stop: stop_rx.clone(),
            },
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    while tasks.join_next().await.is_some() {}
}

/// Wait until a connection may be added: below `limit`, else after closing the oldest
/// idle one, else when one is freed. `false` when shutdown came first.
async fn make_room(
    registry: &Registry,
    limit: usize,
    shutdown: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
) -> bool {
    loop {
        let freed = registry.freed.notified();
        tokio::pin!(freed);
        freed.as_mut().enable();
        if registry.len() < limit || registry.close_oldest_idle() {
            return true;
        }
        tokio::select! {
            () = shutdown.as_mut() => return false,
            () = freed => {}
        }
    }
}

/// What a connection task needs besides its stream.
struct ConnectionContext {
    id: u64,
    slot: Arc<Slot>,
    registry: Arc<Registry>,
    stop: watch::Receiver<bool>,
}

/// Serve one connection until it closes, is closed for room, or the daemon stops.
async fn connection(stream: UnixStream, router: Router, context: ConnectionContext) {
    let ConnectionContext {
        id,
        slot,
        registry,
        mut stop,
    } = context;
    let inner = TowerToHyperService::new(router);
    let service = {
        let slot = slot.clone();
        let registry = registry.clone();
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let busy = Busy::enter(&slot, &registry);
            let call = hyper::service::Service::call(&inner, request);
            async move {
                let response: Result<_, Infallible> = call.await;
                drop(busy);
                response
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended");
                }
                break;
            }
            () = slot.close.notified(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            changed = stop.changed(), if !closing => {
                if changed.is_err() || *stop.borrow() {
                    closing = true;
                    conn.as_mut().graceful_shutdown();
                }
            }
        }
    }
    registry.remove(id);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_limit_follows_the_fd_limit() {
        assert_eq!(connection_limit(Some(3), 256), 3);
        assert_eq!(connection_limit(None, 256), 128);
        assert_eq!(connection_limit(None, 8), MIN_CONNECTIONS);
        assert_eq!(connection_limit(None, 1 << 20), MAX_CONNECTIONS);
    }

    #[test]
    fn only_idle_connections_are_closed_for_room() {
        let registry = Arc::new(Registry::default());
        let (busy, idle) = (Arc::new(Slot::default()), Arc::new(Slot::default()));
        registry.insert(1, busy.clone());
        registry.insert(2, idle.clone());
        let _serving = Busy::enter(&busy, &registry);
        assert!(registry.close_oldest_idle());
        assert_eq!(registry.len(), 1);
        assert!(!registry.close_oldest_idle(), "the busy one stays");
    }
}
