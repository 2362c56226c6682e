//! One API request with a time limit, retried with exponential backoff on connection
//! errors, timeouts, 5xx and 429 (honouring `Retry-After`). 401/403 are refusals, never
//! retried; other answers go back to the caller (404 means "not found", not failure).

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use multus_core::seams::ApiError;
use serde_json::Value;

/// How requests are bounded and retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Time limit of one attempt (connect, send, read the answer).
    pub timeout: Duration,
    /// Attempts after the first.
    pub retries: u32,
    /// Wait before the first retry; doubled each time.
    pub backoff: Duration,
    /// Longest wait between attempts (also caps `Retry-After`).
    pub max_backoff: Duration,
}

impl RetryPolicy {
    /// The policy of the multus configuration's `apiTimeoutSeconds` and `apiRetries`.
    pub fn new(timeout: Duration, retries: u32) -> Self {
        Self {
            timeout,
            retries,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        }
    }

    /// The same without retries (best-effort writes).
    pub fn once(self) -> Self {
        Self { retries: 0, ..self }
    }

    /// The wait before retry number `attempt` (0-based), with up to 20% jitter so that
    /// many nodes do not retry in step.
    fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .backoff
            .saturating_mul(2u32.saturating_pow(attempt))
            .min(self.max_backoff);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        base + base.mul_f64(f64::from(nanos % 200) / 1000.0)
    }
}

/// A final answer: its status and body.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The HTTP status (2xx, or a 4xx other than 401, 403 and 429).
    pub status: StatusCode,
    /// The body.
    pub body: Bytes,
}

impl Answer {
    /// The `message` of a `Status` body, else the status line.
    pub fn message(&self) -> String {
        status_message(self.status, &self.body)
    }
}

fn status_message(status: StatusCode, body: &[u8]) -> String {
    let message = serde_json::from_slice::<Value>(body)
        .ok()
        .and_then(|v| v.get("message")?.as_str().map(str::to_owned));
    match message {
        Some(message) => format!("{status}: {message}"),
        None => status.to_string(),
    }
}

/// `Retry-After` in seconds from the header, else from a `Status` body's
/// `details.retryAfterSeconds`.
fn retry_after(headers: &http::HeaderMap, body: &[u8]) -> Option<Duration> {
    let header = headers
        .get(http::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let detail = || {
        serde_json::from_slice::<Value>(body)
            .ok()?
            .pointer("/details/retryAfterSeconds")?
            .as_u64()
    };
    header.or_else(detail).map(Duration::from_secs)
}

enum Attempt {
    Done(Answer),
    Refused(String),
    Transient(String, Option<Duration>),
}

async fn attempt(client: &kube::Client, request: Request<Vec<u8>>, timeout: Duration) -> Attempt {
    let exchange = async {
        let response = client.send(request.map(kube::client::Body::from)).await?;
        let status = response.status();
        let headers = response.headers().clone();
        let body = response.into_body().collect_bytes().await?;
        Ok::<_, kube::Error>((status, headers, body))
    };
    match tokio::time::timeout(timeout, exchange).await {
        Err(_) => Attempt::Transient(
            format!("no answer within {} s", timeout.as_secs_f64()),
            None,
        ),
        Ok(Err(e)) => Attempt::Transient(e.to_string(), None),
        Ok(Ok((status, headers, body))) => match status.as_u16() {
            401 | 403 => Attempt::Refused(status_message(status, &body)),
            429 | 500..=599 => {
                Attempt::Transient(status_message(status, &body), retry_after(&headers, &body))
            }
            _ => Attempt::Done(Answer { status, body }),
        },
    }
}

/// Run the request `make` builds until it gets a final answer or the retries run out.
/// `what` names the request in errors (`GET pod default/web`).
pub async fn execute(
    client: &kube::Client,
    policy: RetryPolicy,
    what: &str,
    make: impl Fn() -> Result<Request<Vec<u8>>, kube::core::request::Error>,
) -> Result<Answer, ApiError> {
    let mut retry = 0;
    loop {
        let request = make().map_err(|e| ApiError::Other(format!("{what}: {e}")))?;
        let (reason, wait) = match attempt(client, request, policy.timeout).await {
            Attempt::Done(answer) => return Ok(answer),
            Attempt::Refused(reason) => {
                return Err(ApiError::Forbidden(format!("{what}: {reason}")));
            }
            Attempt::Transient(reason, wait) => (reason, wait),
        };
        if retry >= policy.retries {
            let attempts = retry + 1;
            return Err(ApiError::Unavailable(format!(
                "{what}: {reason} ({attempts} attempt{})",
                if attempts == 1 { "" } else { "s" }
            )));
        }
        let wait = wait
            .unwrap_or_else(|| policy.backoff(retry))
            .min(policy.max_backoff);
        tracing::info!(request = what, %reason, wait_ms = wait.as_millis() as u64, "retrying Kubernetes API request");
        tokio::time::sleep(wait).await;
        retry += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        let policy = RetryPolicy::new(Duration::from_secs(1), 3);
        let first = policy.backoff(0);
        assert!(first >= Duration::from_millis(200) && first < Duration::from_millis(241));
        let third = policy.backoff(2);
        assert!(third >= Duration::from_millis(800) && third < Duration::from_millis(961));
        assert!(policy.backoff(20) <= Duration::from_secs(6));
    }

    #[test]
    fn retry_after_comes_from_the_header_or_the_status_body() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(retry_after(&headers, b"{}"), None);
        let body = br#"{"kind":"Status","details":{"retryAfterSeconds":2}}"#;
        assert_eq!(retry_after(&headers, body), Some(Duration::from_secs(2)));
        headers.insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("1"),
        );
        assert_eq!(retry_after(&headers, body), Some(Duration::from_secs(1)));
    }

    #[test]
    fn status_messages_name_the_cause() {
        let body = br#"{"kind":"Status","message":"pods \"x\" is forbidden"}"#;
        assert_eq!(
            status_message(StatusCode::FORBIDDEN, body),
            "403 Forbidden: pods \"x\" is forbidden"
        );
        assert_eq!(
            status_message(StatusCode::BAD_GATEWAY, b"<html>"),
            "502 Bad Gateway"
        );
    }
}
