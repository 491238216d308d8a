//! Every metric the crate records, in one catalogue: name, type, unit, labels and help text.
//!
//! The pipeline reports through the [`metrics`](https://docs.rs/metrics) facade; this list is
//! what it describes to the installed recorder (`describe_*`), what the README's metrics
//! table is generated from (a test keeps the two equal), and where the histogram buckets
//! suited to delivery latencies come from, for exporters that use buckets:
//!
//! ```
//! use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
//! use oauth_audit::metric::{DELIVERY_SECONDS, LATENCY_BUCKETS};
//!
//! let builder = PrometheusBuilder::new()
//!     .set_buckets_for_metric(Matcher::Full(DELIVERY_SECONDS.name.into()), LATENCY_BUCKETS)
//!     .unwrap();
//! # let _ = builder;
//! ```
//!
//! Names follow Prometheus' conventions: the unit in the name (`_seconds`, `_bytes`),
//! counters end in `_total`.

/// What kind of metric it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricKind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// A distribution of observations.
    Histogram,
}

impl MetricKind {
    /// `counter`, `gauge` or `histogram`.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        }
    }
}

/// One metric of the catalogue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Metric {
    /// Its name, as exporters show it.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// Its unit.
    pub unit: metrics::Unit,
    /// The labels it carries.
    pub labels: &'static [&'static str],
    /// What it counts or measures (the exporter's help text).
    pub help: &'static str,
}

/// `oauth_audit_events_total{kind,outcome}`.
pub const EVENTS_TOTAL: Metric = Metric {
    name: "oauth_audit_events_total",
    kind: MetricKind::Counter,
    unit: metrics::Unit::Count,
    labels: &["kind", "outcome"],
    help: "Audit events emitted by the request path (and raised by processors), by kind and outcome; every pair is exported, from 0.",
};

/// `oauth_audit_queue_depth{writer}`.
pub const QUEUE_DEPTH: Metric = Metric {
    name: "oauth_audit_queue_depth",
    kind: MetricKind::Gauge,
    unit: metrics::Unit::Count,
    labels: &["writer"],
    help: "Audit events waiting in a writer's queue, as last seen by its task (and the capacity when an event finds it full).",
};

/// `oauth_audit_events_written_total{writer}`.
pub const EVENTS_WRITTEN: Metric = Metric {
    name: "oauth_audit_events_written_total",
    kind: MetricKind::Counter,
    unit: metrics::Unit::Count,
    labels: &["writer"],
    help: "Audit events a writer wrote successfully (its own AuditEventsDropped reports aside).",
};

/// `oauth_audit_events_dropped_total{writer,reason}`.
pub const EVENTS_DROPPED: Metric = Metric {
    name: "oauth_audit_events_dropped_total",
    kind: MetricKind::Counter,
    unit: metrics::Unit::Count,
    labels: &["writer", "reason"],
    help: "Audit events a writer lost, by reason: processor_panicked, queue_full, block_timeout, spool_full, rejected, write_failed, shut_down.",
};

/// `oauth_audit_delivery_seconds{writer}`.
pub const DELIVERY_SECONDS: Metric = Metric {
    name: "oauth_audit_delivery_seconds",
    kind: MetricKind::Histogram,
    unit: metrics::Unit::Seconds,
    labels: &["writer"],
    help: "How long a sink took to confirm a batch.",
};

/// `oauth_audit_delivery_retries_total{writer}`.
pub const DELIVERY_RETRIES: Metric = Metric {
    name: "oauth_audit_delivery_retries_total",
    kind: MetricKind::Counter,
    unit: metrics::Unit::Count,
    labels: &["writer"],
    help: "Sends to a sink that repeated a failed one.",
};

/// `oauth_audit_spool_events{writer}`.
pub const SPOOL_EVENTS: Metric = Metric {
    name: "oauth_audit_spool_events",
    kind: MetricKind::Gauge,
    unit: metrics::Unit::Count,
    labels: &["writer"],
    help: "Audit events waiting in a sink's spool (on disk, or in memory).",
};

/// `oauth_audit_spool_bytes{writer}`.
pub const SPOOL_BYTES: Metric = Metric {
    name: "oauth_audit_spool_bytes",
    kind: MetricKind::Gauge,
    unit: metrics::Unit::Bytes,
    labels: &["writer"],
    help: "Bytes of audit events waiting in a sink's spool.",
};

/// `oauth_audit_detect_keys_evicted_total`.
pub const DETECT_KEYS_EVICTED: Metric = Metric {
    name: "oauth_audit_detect_keys_evicted_total",
    kind: MetricKind::Counter,
    unit: metrics::Unit::Count,
    labels: &[],
    help: "Detection groups, revoked tokens, rotated refresh tokens and sign-in places forgotten to stay within the detector's max_keys.",
};

/// `oauth_audit_geoip_reloads_total{result}`.
pub const GEOIP_RELOADS: Metric = Metric {
    name: "oauth_audit_geoip_reloads_total",
    kind: MetricKind::Counter,
    unit: metrics::Unit::Count,
    labels: &["result"],
    help: "Geolocation database files read again after they changed, by result (ok, failed).",
};

/// `oauth_audit_dpop_replay_evicted_total`.
pub const DPOP_REPLAY_EVICTED: Metric = Metric {
    name: "oauth_audit_dpop_replay_evicted_total",
    kind: MetricKind::Counter,
    unit: metrics::Unit::Count,
    labels: &[],
    help: "DPoP proof ids forgotten before their time to stay within the replay cache's capacity: a replay of one of them would go unnoticed.",
};

/// Every metric, in the order of the README's table.
pub const ALL: [Metric; 11] = [
    EVENTS_TOTAL,
    QUEUE_DEPTH,
    EVENTS_WRITTEN,
    EVENTS_DROPPED,
    DELIVERY_SECONDS,
    DELIVERY_RETRIES,
    SPOOL_EVENTS,
    SPOOL_BYTES,
    DETECT_KEYS_EVICTED,
    GEOIP_RELOADS,
    DPOP_REPLAY_EVICTED,
];

/// Histogram buckets for latencies, in seconds: from 50 µs (a local file) to 30 s (a remote
/// sink retrying), about three per decade.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Describes `metric` to the installed recorder.
pub(crate) fn describe(metric: &Metric) {
    match metric.kind {
        MetricKind::Counter => metrics::describe_counter!(metric.name, metric.unit, metric.help),
        MetricKind::Gauge => metrics::describe_gauge!(metric.name, metric.unit, metric.help),
        MetricKind::Histogram => {
            metrics::describe_histogram!(metric.name, metric.unit, metric.help)
        }
    }
}

fn unit_name(unit: metrics::Unit) -> &'static str {
    match unit {
        metrics::Unit::Count => "count",
        metrics::Unit::Seconds => "seconds",
        metrics::Unit::Bytes => "bytes",
        other => other.as_canonical_label(),
    }
}

/// The README's metrics table, as [`ALL`] says it.
pub fn markdown_table() -> String {
    let mut table = String::from(
        "| metric | type | unit | labels | meaning |\n| --- | --- | --- | --- | --- |\n",
    );
    for metric in ALL {
        let labels: Vec<String> = metric.labels.iter().map(|l| format!("`{l}`")).collect();
        table.push_str(&format!(
            "| `{}` | {} | {} | {} | {} |\n",
            metric.name,
            metric.kind.as_str(),
            unit_name(metric.unit),
            labels.join(", "),
            metric.help
        ));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_prometheus_conventions() {
        for metric in ALL {
            assert!(metric.name.starts_with("oauth_audit_"), "{}", metric.name);
            match (metric.kind, metric.unit) {
                (MetricKind::Counter, _) => {
                    assert!(metric.name.ends_with("_total"), "{}", metric.name)
                }
                (_, metrics::Unit::Seconds) => assert!(metric.name.ends_with("_seconds")),
                (_, metrics::Unit::Bytes) => assert!(metric.name.ends_with("_bytes")),
                _ => {}
            }
        }
        assert!(LATENCY_BUCKETS.windows(2).all(|w| w[0] < w[1]));
        assert!(LATENCY_BUCKETS[0] <= 0.0001 && *LATENCY_BUCKETS.last().unwrap() >= 10.0);
    }

    #[test]
    fn the_readme_table_is_the_catalogue() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
        let (begin, end) = ("<!-- metrics:begin -->\n", "<!-- metrics:end -->");
        let start = readme.find(begin).expect("README: no metrics:begin marker") + begin.len();
        let stop = readme[start..]
            .find(end)
            .expect("README: no metrics:end marker")
            + start;
        let table = markdown_table();
        if readme[start..stop] != table {
            if std::env::var_os("OAUTH_AUDIT_BLESS").is_some() {
                let updated = format!("{}{table}{}", &readme[..start], &readme[stop..]);
                std::fs::write(root.join("README.md"), updated).unwrap();
            } else {
                panic!(
                    "README.md's metrics table is not src/metric.rs's; rerun with OAUTH_AUDIT_BLESS=1 to write it:\n{table}"
                );
            }
        }
    }
}
