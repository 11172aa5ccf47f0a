//! Prometheus metrics of netmaster, served at `/metrics` (names and meanings:
//! `docs/observability.md`): REST requests by route, method and status with their latency,
//! intent objects committed and the latency of intent commits, agents connected (watch streams
//! open), each host's watch lag (store revisions it has not been brought up to), and endpoint
//! address allocations by outcome.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::store::Store;
use crate::watch::Hub;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    pub method: String,
    pub route: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// `object` (one REST change) or `spec` (a whole spec).
    pub kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HostLabels {
    pub host: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub outcome: String,
}

/// One host's watch streams, as the gRPC service sees them.
#[derive(Default)]
struct HostWatch {
    streams: usize,
    /// The newest revision handed to the host's stream.
    delivered: Arc<AtomicI64>,
}

#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram>,
    /// Intent objects created, updated or deleted.
    pub objects_committed: Counter,
    commit_latency: Family<KindLabels, Histogram>,
    agents: Gauge,
    watch_lag: Family<HostLabels, Gauge>,
    allocations: Family<OutcomeLabels, Counter>,
    watches: Arc<Mutex<HashMap<String, HostWatch>>>,
    /// What the watch lag is computed from at scrape time (set by `server::run`).
    sources: Arc<OnceLock<(Store, Hub)>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// Returned by [`Metrics::watch_opened`]: the stream records what it delivers through it, and
/// the host's count of streams drops with it.
pub struct WatchGuard {
    metrics: Metrics,
    host: String,
    delivered: Arc<AtomicI64>,
}

impl WatchGuard {
    /// The stream handed the host events up to `revision`.
    pub fn delivered(&self, revision: i64) {
        self.delivered.fetch_max(revision, Ordering::Relaxed);
    }
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        let mut w = self.metrics.watches.lock().expect("metrics lock");
        if let Some(h) = w.get_mut(&self.host) {
            h.streams = h.streams.saturating_sub(1);
            if h.streams == 0 {
                w.remove(&self.host);
                self.metrics.watch_lag.remove(&HostLabels {
                    host: self.host.clone(),
                });
            }
        }
        self.metrics.agents.dec();
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
        let commit_latency = Family::<KindLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0002, 2.0, 16))
        });
        let agents = Gauge::default();
        let watch_lag = Family::<HostLabels, Gauge>::default();
        let allocations = Family::<OutcomeLabels, Counter>::default();
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
        registry.register(
            "intent_commit_duration_seconds",
            "intent change, from its request to its commit seen by this netmaster's index (kind: object or spec)",
            commit_latency.clone(),
        );
        registry.register(
            "agents_connected",
            "agents with a watch stream open to this netmaster",
            agents.clone(),
        );
        registry.register(
            "watch_lag_revisions",
            "per host: store revisions the host's watch has not been brought up to",
            watch_lag.clone(),
        );
        registry.register(
            "allocations",
            "endpoint allocations (AllocateEndpoint) by outcome",
            allocations.clone(),
        );
        Metrics {
            registry: Arc::new(Mutex::new(registry)),
            requests,
            latency,
            objects_committed,
            commit_latency,
            agents,
            watch_lag,
            allocations,
            watches: Arc::default(),
            sources: Arc::default(),
        }
    }

    /// An intent change committed `start` ago (`kind`: `object` or `spec`).
    pub fn commit_took(&self, kind: &str, start: Instant) {
        self.commit_latency
            .get_or_create(&KindLabels { kind: kind.into() })
            .observe(start.elapsed().as_secs_f64());
    }

    /// An endpoint allocation ended with `outcome` (`allocated`, `exhausted`, `taken`,
    /// `invalid`, `unavailable`, `error`).
    pub fn allocation(&self, outcome: &str) {
        self.allocations
            .get_or_create(&OutcomeLabels {
                outcome: outcome.into(),
            })
            .inc();
    }

    /// A watch stream for `host` opened; it counts until the guard is dropped.
    pub fn watch_opened(&self, host: &str) -> WatchGuard {
        self.agents.inc();
        let mut w = self.watches.lock().expect("metrics lock");
        let h = w.entry(host.to_string()).or_default();
        h.streams += 1;
        WatchGuard {
            metrics: self.clone(),
            host: host.to_string(),
            delivered: h.delivered.clone(),
        }
    }

    /// The store and hub the watch lag is read from.
    pub fn attach(&self, store: Store, hub: Hub) {
        let _ = self.sources.set((store, hub));
    }

    /// Brings the watch-lag gauges up to date: a host whose stream has taken every batch the hub
    /// queued for it is as far as the hub (which follows the store); one with batches waiting is
    /// at the newest revision its stream delivered.
    async fn refresh(&self) {
        let Some((store, hub)) = self.sources.get() else {
            return;
        };
        let Ok((_, store_rev)) = store.range(crate::keys::HEALTHZ).await else {
            return;
        };
        let (Some(stats), Some(queued)) = (hub.stats().await, hub.queued().await) else {
            return;
        };
        let mut waiting: HashMap<String, usize> = HashMap::new();
        for (host, n) in queued {
            *waiting.entry(host).or_default() += n;
        }
        let w = self.watches.lock().expect("metrics lock");
        for (host, h) in w.iter() {
            let at = if waiting.get(host).copied().unwrap_or(0) == 0 {
                stats.revision
            } else {
                h.delivered.load(Ordering::Relaxed)
            };
            self.watch_lag
                .get_or_create(&HostLabels { host: host.clone() })
                .set((store_rev - at).max(0));
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
    m.refresh().await;
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        m.render(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agents_count_streams_and_hosts_leave_with_their_last() {
        let m = Metrics::new();
        let a = m.watch_opened("h1");
        let b = m.watch_opened("h1");
        let c = m.watch_opened("h2");
        m.allocation("allocated");
        m.allocation("exhausted");
        m.commit_took("object", Instant::now());
        let text = m.render();
        assert!(text.contains("weft_netmaster_agents_connected 3"), "{text}");
        assert!(
            text.contains("weft_netmaster_allocations_total{outcome=\"exhausted\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("weft_netmaster_intent_commit_duration_seconds_count{kind=\"object\"} 1"),
            "{text}"
        );
        drop((a, c));
        assert!(m.render().contains("weft_netmaster_agents_connected 1"));
        assert_eq!(m.watches.lock().unwrap().len(), 1);
        drop(b);
        assert!(m.render().contains("weft_netmaster_agents_connected 0"));
        assert!(m.watches.lock().unwrap().is_empty());
    }
}
