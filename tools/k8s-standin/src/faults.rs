//! Injectable faults and the request log.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// What the stand-in does instead of answering a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer with this HTTP status and a matching `Status` body (500, 503, 504, ...).
    Status(u16),
    /// Answer 429 with `Retry-After` (and `details.retryAfterSeconds`) in seconds.
    TooManyRequests {
        /// The `Retry-After` value.
        retry_after_secs: u64,
    },
    /// Close the connection without answering.
    Drop,
    /// Wait this long before answering normally.
    Delay(Duration),
}

/// The faults in force.
#[derive(Debug, Default)]
pub struct Faults {
    /// Added to every request.
    pub latency: Duration,
    /// Applied to the next requests, one each, in order.
    pub next: VecDeque<Fault>,
    /// When set, every request (but `/version` and health checks) is refused with this
    /// status (401 or 403).
    pub refuse: Option<u16>,
}

/// One request the stand-in received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// URL path.
    pub path: String,
    /// URL query, without `?`.
    pub query: String,
    /// Kubernetes verb: `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`, or
    /// `discovery` / `other`.
    pub verb: String,
    /// Plural resource, when the path names one.
    pub resource: Option<String>,
    /// Subresource (`status`), when any.
    pub subresource: Option<String>,
    /// Namespace, when the path names one.
    pub namespace: Option<String>,
    /// Object name, when the path names one.
    pub name: Option<String>,
    /// The `Content-Type` of the request.
    pub content_type: Option<String>,
    /// The status answered (0 when the connection was dropped).
    pub status: u16,
    /// Who made it: the user of the bearer token or of the client certificate's
    /// subject common name (`None` when unauthenticated).
    pub user: Option<String>,
    /// When the request arrived.
    pub at: Instant,
}

impl RequestRecord {
    /// A read: get, list or watch.
    pub fn is_read(&self) -> bool {
        matches!(self.verb.as_str(), "get" | "list" | "watch")
    }
    /// A write: create, update, patch or delete.
    pub fn is_write(&self) -> bool {
        matches!(self.verb.as_str(), "create" | "update" | "patch" | "delete")
    }
}
