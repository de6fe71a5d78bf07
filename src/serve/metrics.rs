//! The bot's metrics, in Prometheus' text format (`GET /metrics`):
//! deliveries by event and outcome, jobs and their latency, GitHub API calls
//! and errors, and the queue's depth.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

/// Upper bounds of the latency buckets, seconds.
const BUCKETS: [f64; 17] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    600.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    counters: Mutex<BTreeMap<(&'static str, String), u64>>,
    histograms: Mutex<BTreeMap<(&'static str, String), Histogram>>,
    queue_depth: AtomicI64,
}

/// `{k="v",…}` with values escaped.
fn labels(pairs: &[(&str, &str)]) -> String {
    if pairs.is_empty() {
        return String::new();
    }
    let inner: Vec<String> = pairs
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{{{}}}", inner.join(","))
}

const HELP: [(&str, &str, &str); 7] = [
    (
        "envgate_webhook_deliveries_total",
        "counter",
        "Webhook deliveries by event and outcome.",
    ),
    (
        "envgate_jobs_total",
        "counter",
        "Jobs run, by event and outcome.",
    ),
    (
        "envgate_job_duration_seconds",
        "histogram",
        "Time one attempt of a job ran.",
    ),
    (
        "envgate_delivery_latency_seconds",
        "histogram",
        "Time from a delivery's arrival to the end of its job (retries and queueing included).",
    ),
    (
        "envgate_github_api_requests_total",
        "counter",
        "GitHub API requests by method and status.",
    ),
    (
        "envgate_github_api_errors_total",
        "counter",
        "GitHub API requests that failed (transport, 5xx, rate limit).",
    ),
    ("envgate_queue_depth", "gauge", "Jobs queued or running."),
];

impl Metrics {
    pub fn inc(&self, name: &'static str, pairs: &[(&str, &str)]) {
        *self
            .counters
            .lock()
            .expect("metrics")
            .entry((name, labels(pairs)))
            .or_default() += 1;
    }

    pub fn observe(&self, name: &'static str, pairs: &[(&str, &str)], seconds: f64) {
        let mut h = self.histograms.lock().expect("metrics");
        let h = h.entry((name, labels(pairs))).or_default();
        for (i, b) in BUCKETS.iter().enumerate() {
            if seconds <= *b {
                h.counts[i] += 1;
            }
        }
        h.count += 1;
        h.sum += seconds;
    }

    pub fn set_queue_depth(&self, n: i64) {
        self.queue_depth.store(n, Ordering::Relaxed);
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counters = self.counters.lock().expect("metrics");
        let histograms = self.histograms.lock().expect("metrics");
        for (name, kind, help) in HELP {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            match kind {
                "counter" => {
                    for ((n, l), v) in counters.iter() {
                        if *n == name {
                            let _ = writeln!(out, "{name}{l} {v}");
                        }
                    }
                }
                "histogram" => {
                    for ((n, l), h) in histograms.iter() {
                        if *n != name {
                            continue;
                        }
                        let with = |extra: &str| {
                            if l.is_empty() {
                                format!("{{{extra}}}")
                            } else {
                                format!("{},{extra}}}", &l[..l.len() - 1])
                            }
                        };
                        for (i, b) in BUCKETS.iter().enumerate() {
                            let _ = writeln!(
                                out,
                                "{name}_bucket{} {}",
                                with(&format!("le=\"{b}\"")),
                                h.counts[i]
                            );
                        }
                        let _ = writeln!(out, "{name}_bucket{} {}", with("le=\"+Inf\""), h.count);
                        let _ = writeln!(out, "{name}_sum{l} {}", h.sum);
                        let _ = writeln!(out, "{name}_count{l} {}", h.count);
                    }
                }
                _ => {
                    let _ = writeln!(out, "{name} {}", self.queue_depth.load(Ordering::Relaxed));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_exposition() {
        let m = Metrics::default();
        m.inc(
            "envgate_webhook_deliveries_total",
            &[("event", "push"), ("outcome", "accepted")],
        );
        m.inc(
            "envgate_webhook_deliveries_total",
            &[("event", "push"), ("outcome", "accepted")],
        );
        m.observe("envgate_job_duration_seconds", &[("event", "push")], 0.02);
        m.set_queue_depth(3);
        let text = m.render();
        assert!(
            text.contains(
                "envgate_webhook_deliveries_total{event=\"push\",outcome=\"accepted\"} 2\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("envgate_job_duration_seconds_bucket{event=\"push\",le=\"0.025\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("envgate_job_duration_seconds_bucket{event=\"push\",le=\"0.01\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("envgate_job_duration_seconds_count{event=\"push\"} 1\n"),
            "{text}"
        );
        assert!(text.contains("envgate_queue_depth 3\n"), "{text}");
        assert!(
            text.contains("# TYPE envgate_github_api_requests_total counter\n"),
            "{text}"
        );
    }
}
