//! Bounded work: at most `maxConcurrentRequests` CNI requests are served at once, at
//! most `maxQueuedRequests` wait for a slot (first come, first served), and none waits
//! longer than `queueTimeoutSeconds`. A request that cannot be admitted is answered at
//! once with 503 and CNI code 11 ("try again later"), so a burst slows the node down
//! instead of growing the daemon (and the delegate processes it runs) without bound.
//!
//! Once the daemon is shutting down, waiting requests are turned away the same way and
//! no new one is admitted; the ones already running finish.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

use crate::metrics::Metrics;

/// Why a request was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection {
    /// The queue is full.
    QueueFull,
    /// No slot freed up within `queueTimeoutSeconds`.
    QueueTimeout,
    /// The daemon is shutting down.
    ShuttingDown,
}

impl Rejection {
    /// The metric label.
    pub fn reason(self) -> &'static str {
        match self {
            Self::QueueFull => "queue_full",
            Self::QueueTimeout => "queue_timeout",
            Self::ShuttingDown => "shutting_down",
        }
    }

    /// The message for the CNI error.
    pub fn message(self, admission: &Admission) -> String {
        match self {
            Self::QueueFull => format!(
                "multus-daemon is busy: {} requests running and {} waiting (maxConcurrentRequests, maxQueuedRequests); try again later",
                admission.max_concurrent, admission.max_queued
            ),
            Self::QueueTimeout => format!(
                "multus-daemon is busy: no request slot freed up within {:.1} s (queueTimeoutSeconds); try again later",
                admission.queue_timeout.as_secs_f64()
            ),
            Self::ShuttingDown => {
                "multus-daemon is shutting down; try again once it is back".to_owned()
            }
        }
    }
}

/// A slot; dropping it frees the slot.
#[derive(Debug)]
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    metrics: Arc<Metrics>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.metrics.in_flight.dec();
    }
}

/// The admission control of CNI requests.
#[derive(Debug)]
pub struct Admission {
    permits: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_concurrent: usize,
    max_queued: usize,
    queue_timeout: Duration,
    shutdown: watch::Receiver<bool>,
    metrics: Arc<Metrics>,
}

impl Admission {
    /// Admission with these bounds; `shutdown` turns true when the daemon stops.
    pub fn new(
        max_concurrent: usize,
        max_queued: usize,
        queue_timeout: Duration,
        shutdown: watch::Receiver<bool>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(max_concurrent.max(1))),
            waiting: AtomicUsize::new(0),
            max_concurrent: max_concurrent.max(1),
            max_queued,
            queue_timeout,
            shutdown,
            metrics,
        }
    }

    fn slot(&self, permit: OwnedSemaphorePermit) -> Slot {
        self.metrics.in_flight.inc();
        Slot {
            _permit: permit,
            metrics: self.metrics.clone(),
        }
    }

    /// Wait until every slot is free (shutdown: the running requests finished).
    pub async fn drain(&self) {
        let all = u32::try_from(self.max_concurrent).unwrap_or(u32::MAX);
        let _ = self.permits.acquire_many(all).await;
    }

    /// Wait for a slot, within the bounds.
    pub async fn admit(&self) -> Result<Slot, Rejection> {
        let result = self.try_admit().await;
        if let Err(rejection) = result {
            self.metrics.reject(rejection.reason());
        }
        result
    }

    async fn try_admit(&self) -> Result<Slot, Rejection> {
        let mut shutdown = self.shutdown.clone();
        if *shutdown.borrow() {
            return Err(Rejection::ShuttingDown);
        }
        if let Ok(permit) = self.permits.clone().try_acquire_owned() {
            return Ok(self.slot(permit));
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_queued {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(Rejection::QueueFull);
        }
        self.metrics.queued.inc();
        let outcome = tokio::select! {
            permit = self.permits.clone().acquire_owned() => match permit {
                Ok(permit) => Ok(permit),
                Err(_) => Err(Rejection::ShuttingDown),
            },
            () = tokio::time::sleep(self.queue_timeout) => Err(Rejection::QueueTimeout),
            () = crate::confmgr::stopped(&mut shutdown) => Err(Rejection::ShuttingDown),
        };
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        self.metrics.queued.dec();
        outcome.map(|permit| self.slot(permit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(
        concurrent: usize,
        queued: usize,
        timeout_ms: u64,
    ) -> (Arc<Admission>, watch::Sender<bool>) {
        let (tx, rx) = watch::channel(false);
        (
            Arc::new(Admission::new(
                concurrent,
                queued,
                Duration::from_millis(timeout_ms),
                rx,
                Metrics::new(),
            )),
            tx,
        )
    }

    #[tokio::test]
    async fn slots_queue_and_overflow() {
        let (admission, _tx) = admission(1, 1, 5_000);
        let first = admission.admit().await.unwrap();
        let queued = tokio::spawn({
            let admission = admission.clone();
            async move { admission.admit().await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(admission.admit().await.unwrap_err(), Rejection::QueueFull);
        drop(first);
        queued.await.unwrap().unwrap();
        assert_eq!(admission.metrics.in_flight.get(), 0);
        assert_eq!(admission.metrics.queued.get(), 0);
    }

    #[tokio::test]
    async fn waiting_is_bounded_and_shutdown_turns_waiters_away() {
        let (admission, tx) = admission(1, 4, 100);
        let _first = admission.admit().await.unwrap();
        assert_eq!(
            admission.admit().await.unwrap_err(),
            Rejection::QueueTimeout
        );
        let (admission, tx2) = (admission, tx);
        let waiter = tokio::spawn({
            let admission = admission.clone();
            async move { admission.admit().await.map(|_| ()) }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx2.send(true).unwrap();
        assert_eq!(waiter.await.unwrap().unwrap_err(), Rejection::ShuttingDown);
        assert_eq!(
            admission.admit().await.unwrap_err(),
            Rejection::ShuttingDown
        );
        let text = admission.metrics.render();
        assert!(text.contains(r#"multus_requests_rejected_total{reason="queue_timeout"} 1"#));
    }
}
