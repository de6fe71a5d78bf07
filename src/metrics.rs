//! The bot's metrics, as typed metric families (the `prometheus-client`
//! crate), exposed in the OpenMetrics text format at `GET /metrics`:
//! deliveries by event and outcome, jobs and their latency, forge API calls
//! and errors (GitHub and GitLab), and the queue's depth. A family is a
//! field, so a misspelt name cannot silently never render.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::{Family, MetricConstructor};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Upper bounds of the latency buckets, seconds.
const BUCKETS: [f64; 17] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
    600.0,
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventOutcome {
    pub event: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Event {
    pub event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Request {
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestError {
    pub method: String,
    /// `transport`, `rate_limit` or `server`.
    pub kind: &'static str,
}

/// Makes the latency histograms.
#[derive(Clone, Copy)]
pub struct Latency;

impl MetricConstructor<Histogram> for Latency {
    fn new_metric(&self) -> Histogram {
        Histogram::new(BUCKETS)
    }
}

/// One forge's API calls.
#[derive(Clone, Default)]
pub struct ForgeCalls {
    pub requests: Family<Request, Counter>,
    pub errors: Family<RequestError, Counter>,
}

impl ForgeCalls {
    /// Counts one try of a request (see [`crate::forge::http::Try`]).
    pub fn observe(&self, method: &str, t: crate::forge::http::Try) {
        use crate::forge::http::Try;
        let kind = match t {
            Try::Answered(status) => {
                self.requests
                    .get_or_create(&Request {
                        method: method.to_owned(),
                        status: status.as_u16(),
                    })
                    .inc();
                return;
            }
            Try::Transport => "transport",
            Try::RateLimited => "rate_limit",
            Try::ServerError => "server",
        };
        self.errors
            .get_or_create(&RequestError {
                method: method.to_owned(),
                kind,
            })
            .inc();
    }
}

pub struct Metrics {
    registry: Registry,
    pub deliveries: Family<EventOutcome, Counter>,
    pub jobs: Family<EventOutcome, Counter>,
    pub job_duration: Family<Event, Histogram, Latency>,
    pub delivery_latency: Family<Event, Histogram, Latency>,
    pub github: ForgeCalls,
    pub gitlab: ForgeCalls,
    pub queue_depth: Gauge,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::with_prefix("envgate");
        let m = Metrics {
            deliveries: Family::default(),
            jobs: Family::default(),
            job_duration: Family::new_with_constructor(Latency),
            delivery_latency: Family::new_with_constructor(Latency),
            github: ForgeCalls::default(),
            gitlab: ForgeCalls::default(),
            queue_depth: Gauge::default(),
            registry: Registry::default(),
        };
        registry.register(
            "webhook_deliveries",
            "Webhook deliveries by event and outcome",
            m.deliveries.clone(),
        );
        registry.register("jobs", "Jobs run, by event and outcome", m.jobs.clone());
        registry.register(
            "job_duration_seconds",
            "Time one attempt of a job ran",
            m.job_duration.clone(),
        );
        registry.register(
            "delivery_latency_seconds",
            "Time from a delivery's arrival to the end of its job (retries and queueing included)",
            m.delivery_latency.clone(),
        );
        for (forge, name, calls) in [
            ("github", "GitHub", &m.github),
            ("gitlab", "GitLab", &m.gitlab),
        ] {
            registry.register(
                format!("{forge}_api_requests"),
                format!("{name} API requests by method and status"),
                calls.requests.clone(),
            );
            registry.register(
                format!("{forge}_api_errors"),
                format!("{name} API requests that failed (transport, 5xx, rate limit)"),
                calls.errors.clone(),
            );
        }
        registry.register(
            "queue_depth",
            "Jobs queued or running",
            m.queue_depth.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    pub fn delivery(&self, event: &str, outcome: &str) {
        self.deliveries
            .get_or_create(&EventOutcome {
                event: event.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn job(&self, event: &str, outcome: &str) {
        self.jobs
            .get_or_create(&EventOutcome {
                event: event.to_owned(),
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn job_took(&self, event: &str, seconds: f64) {
        self.job_duration
            .get_or_create(&Event {
                event: event.to_owned(),
            })
            .observe(seconds);
    }

    pub fn delivery_took(&self, event: &str, seconds: f64) {
        self.delivery_latency
            .get_or_create(&Event {
                event: event.to_owned(),
            })
            .observe(seconds);
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_exposition() {
        let m = Metrics::default();
        m.delivery("push", "accepted");
        m.delivery("push", "accepted");
        m.job_took("push", 0.02);
        m.queue_depth.set(3);
        m.gitlab.observe(
            "POST",
            crate::forge::http::Try::Answered(reqwest::StatusCode::CREATED),
        );
        m.github
            .observe("GET", crate::forge::http::Try::RateLimited);
        let text = m.render();
        for want in [
            "envgate_webhook_deliveries_total{event=\"push\",outcome=\"accepted\"} 2\n",
            "envgate_job_duration_seconds_bucket{le=\"0.025\",event=\"push\"} 1\n",
            "envgate_job_duration_seconds_bucket{le=\"0.01\",event=\"push\"} 0\n",
            "envgate_job_duration_seconds_count{event=\"push\"} 1\n",
            "envgate_queue_depth 3\n",
            "envgate_gitlab_api_requests_total{method=\"POST\",status=\"201\"} 1\n",
            "envgate_github_api_errors_total{method=\"GET\",kind=\"rate_limit\"} 1\n",
            "# EOF\n",
        ] {
            assert!(text.contains(want), "{want} not in:\n{text}");
        }
    }
}
