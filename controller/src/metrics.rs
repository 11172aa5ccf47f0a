//! Prometheus metrics of netmaster, served at `/metrics`: REST requests by route, method and
//! status with their latency, and intent objects committed.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram>,
    /// Intent objects created, updated or deleted.
    pub objects_committed: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("weft_netmaster");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0005, 2.0, 14))
        });
        let objects_committed = Counter::default();
        registry.register("http_requests", "REST requests served", requests.clone());
        registry.register(
            "http_request_duration_seconds",
            "REST request latency",
            latency.clone(),
        );
        registry.register(
            "intent_objects_committed",
            "intent objects created, updated or deleted",
            objects_committed.clone(),
        );
        Metrics {
            registry: Arc::new(Mutex::new(registry)),
            requests,
            latency,
            objects_committed,
        }
    }

    /// The metrics in Prometheus' text format.
    pub fn render(&self) -> String {
        let mut s = String::new();
        prometheus_client::encoding::text::encode(
            &mut s,
            &self.registry.lock().expect("metrics lock"),
        )
        .expect("writing to a String");
        s
    }
}

/// Middleware counting and timing every request.
pub async fn track(State(m): State<Metrics>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().to_string();
    let start = Instant::now();
    let resp = next.run(req).await;
    let labels = RequestLabels {
        method,
        route,
        status: resp.status().as_u16(),
    };
    m.requests.get_or_create(&labels).inc();
    m.latency
        .get_or_create(&labels)
        .observe(start.elapsed().as_secs_f64());
    resp
}

pub async fn serve(State(m): State<Metrics>) -> impl IntoResponse {
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.render(),
    )
}
