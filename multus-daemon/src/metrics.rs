//! Prometheus metrics (text format on `metricsPort` and on the socket's `/metrics`).
//!
//! Upstream's only metric, `multus_server_request_total{handler,code,method}`, plus
//! what an operator needs to see the daemon's load: request latency per CNI command,
//! delegate exec latency per plugin type, in-flight and queued requests, rejections,
//! cache sizes, Kubernetes API requests made on the request path, and the process'
//! resident memory.

use std::sync::Arc;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// `handler`, `code`, `method` of one HTTP request on the socket.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `/cni`, `/delegate`, `/healthz`, `/readyz`, ... or `NotFound`.
    pub handler: String,
    /// HTTP status.
    pub code: String,
    /// HTTP method.
    pub method: String,
}

/// One label `command`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CommandLabel {
    /// `ADD`, `DEL`, `CHECK`, `GC`, `STATUS` (hot-plug: `delegate-ADD`, ...).
    pub command: String,
}

/// One label `plugin`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PluginLabel {
    /// The plugin `type`.
    pub plugin: String,
}

/// One label `kind`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// `pods` or `network-attachment-definitions`.
    pub kind: String,
}

/// One label `reason`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// `queue_full`, `queue_timeout`, `shutting_down`.
    pub reason: String,
}

/// `verb` and `resource` of an API request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    /// `get`, `patch`, `create`.
    pub verb: String,
    /// `pods`, `network-attachment-definitions`, `events`.
    pub resource: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms to about 131 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 18))
}

/// Every metric of the daemon.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `multus_server_request_total`.
    pub server_requests: Family<RequestLabels, Counter>,
    /// `multus_cni_request_duration_seconds`.
    pub cni_duration: Family<CommandLabel, Histogram>,
    /// `multus_delegate_exec_duration_seconds`.
    pub delegate_duration: Family<PluginLabel, Histogram>,
    /// `multus_requests_in_flight`.
    pub in_flight: Gauge,
    /// `multus_requests_queued`.
    pub queued: Gauge,
    /// `multus_requests_rejected_total`.
    pub rejected: Family<ReasonLabel, Counter>,
    /// `multus_cache_objects`.
    pub cache_objects: Family<KindLabel, Gauge>,
    /// `multus_api_requests_total`.
    pub api_requests: Family<ApiLabels, Counter>,
    /// `process_resident_memory_bytes`, refreshed at every scrape.
    pub rss: Gauge,
    /// `multus_stale_records_reaped_total`.
    pub reaped: Counter,
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::default();
        let server_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "multus_server_request",
            "Requests on the daemon's socket by handler, HTTP status and method",
            server_requests.clone(),
        );
        let cni_duration = Family::<CommandLabel, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register_with_unit(
            "multus_cni_request_duration",
            "Time to serve a CNI request (queue wait included), by command",
            Unit::Seconds,
            cni_duration.clone(),
        );
        let delegate_duration = Family::<PluginLabel, Histogram>::new_with_constructor(
            latency_histogram as fn() -> Histogram,
        );
        registry.register_with_unit(
            "multus_delegate_exec_duration",
            "Time one delegate plugin call took, by plugin type",
            Unit::Seconds,
            delegate_duration.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "multus_requests_in_flight",
            "CNI requests being served now",
            in_flight.clone(),
        );
        let queued = Gauge::default();
        registry.register(
            "multus_requests_queued",
            "CNI requests waiting for a free slot",
            queued.clone(),
        );
        let rejected = Family::<ReasonLabel, Counter>::default();
        registry.register(
            "multus_requests_rejected",
            "CNI requests answered 503 (try again later) without being served, by reason",
            rejected.clone(),
        );
        let cache_objects = Family::<KindLabel, Gauge>::default();
        registry.register(
            "multus_cache_objects",
            "Objects in the daemon's watch caches, by kind",
            cache_objects.clone(),
        );
        let api_requests = Family::<ApiLabels, Counter>::default();
        registry.register(
            "multus_api_requests",
            "Kubernetes API requests made while serving CNI requests (watches excluded)",
            api_requests.clone(),
        );
        let rss = Gauge::default();
        registry.register_with_unit(
            "process_resident_memory",
            "Resident memory of the daemon process",
            Unit::Bytes,
            rss.clone(),
        );
        let reaped = Counter::default();
        registry.register(
            "multus_stale_records_reaped",
            "Sandbox records whose pod was gone, torn down by the daemon",
            reaped.clone(),
        );
        Arc::new(Self {
            registry,
            reaped,
            server_requests,
            cni_duration,
            delegate_duration,
            in_flight,
            queued,
            rejected,
            cache_objects,
            api_requests,
            rss,
        })
    }

    /// Count one API request.
    pub fn api_request(&self, verb: &str, resource: &str) {
        self.api_requests
            .get_or_create(&ApiLabels {
                verb: verb.to_owned(),
                resource: resource.to_owned(),
            })
            .inc();
    }

    /// Observe one delegate call. `installed`: a binary of that type was found in the
    /// plugin directories. The type comes from NADs, which users write: only installed
    /// types with a plain name become a label value, every other under
    /// [`OTHER_PLUGIN`], so a NAD can neither forge series nor add new ones.
    pub fn delegate_exec(&self, plugin: &str, installed: bool, took: Duration) {
        self.delegate_duration
            .get_or_create(&PluginLabel {
                plugin: plugin_label(plugin, installed).to_owned(),
            })
            .observe(took.as_secs_f64());
    }

    /// Count a rejected request.
    pub fn reject(&self, reason: &str) {
        self.rejected
            .get_or_create(&ReasonLabel {
                reason: reason.to_owned(),
            })
            .inc();
    }

    /// Set a cache size.
    pub fn cache_size(&self, kind: &str, objects: usize) {
        self.cache_objects
            .get_or_create(&KindLabel {
                kind: kind.to_owned(),
            })
            .set(i64::try_from(objects).unwrap_or(i64::MAX));
    }

    /// The text exposition (OpenMetrics text, which Prometheus scrapes).
    pub fn render(&self) -> String {
        if let Some(rss) = resident_memory_bytes() {
            self.rss.set(i64::try_from(rss).unwrap_or(i64::MAX));
        }
        let mut text = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut text, &self.registry) {
            tracing::warn!(error = %e, "cannot encode metrics");
        }
        text
    }
}

/// The `plugin` label of delegates whose type is not installed or not a plain name.
pub const OTHER_PLUGIN: &str = "other";

/// The label value for a plugin type: the type when it is installed and a plain name
/// (ASCII letters, digits, `_ . + -`, at most 64 bytes), else [`OTHER_PLUGIN`].
fn plugin_label(plugin: &str, installed: bool) -> &str {
    let plain = !plugin.is_empty()
        && plugin.len() <= 64
        && plugin
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.+-".contains(&b));
    if installed && plain {
        plugin
    } else {
        OTHER_PLUGIN
    }
}

/// `VmRSS` of this process, in bytes.
pub fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_labels_from_nads_are_bounded_and_cannot_forge_series() {
        let metrics = Metrics::new();
        let forged = "x\"} 1\nmultus_requests_in_flight 99\n#";
        metrics.delegate_exec(forged, true, Duration::from_millis(1));
        for i in 0..100 {
            metrics.delegate_exec(&format!("nosuch{i}"), false, Duration::from_millis(1));
        }
        metrics.delegate_exec("bridge", true, Duration::from_millis(1));
        let text = metrics.render();
        assert!(!text.contains("99"), "{text}");
        assert!(!text.contains("nosuch"), "{text}");
        assert!(
            text.contains(r#"multus_delegate_exec_duration_seconds_count{plugin="other"} 101"#),
            "{text}"
        );
        assert!(
            text.contains(r#"multus_delegate_exec_duration_seconds_count{plugin="bridge"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn exposition_has_upstreams_counter_and_ours() {
        let metrics = Metrics::new();
        metrics
            .server_requests
            .get_or_create(&RequestLabels {
                handler: "/cni".into(),
                code: "200".into(),
                method: "POST".into(),
            })
            .inc();
        metrics
            .cni_duration
            .get_or_create(&CommandLabel {
                command: "ADD".into(),
            })
            .observe(0.01);
        metrics.delegate_exec("bridge", true, Duration::from_millis(3));
        metrics.api_request("patch", "pods");
        metrics.cache_size("pods", 3);
        metrics.reject("queue_full");
        let text = metrics.render();
        for expected in [
            r#"multus_server_request_total{handler="/cni",code="200",method="POST"} 1"#,
            r#"multus_cni_request_duration_seconds_count{command="ADD"} 1"#,
            r#"multus_delegate_exec_duration_seconds_bucket{le="0.004",plugin="bridge"} 1"#,
            r#"multus_api_requests_total{verb="patch",resource="pods"} 1"#,
            r#"multus_cache_objects{kind="pods"} 3"#,
            r#"multus_requests_rejected_total{reason="queue_full"} 1"#,
            "multus_requests_in_flight 0",
            "process_resident_memory_bytes ",
        ] {
            assert!(text.contains(expected), "missing {expected} in\n{text}");
        }
    }
}
