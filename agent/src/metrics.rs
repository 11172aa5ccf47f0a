//! Prometheus metrics of netplugin, served at `/metrics` (`--metrics-listen`): the endpoint
//! service's stages, timed, and its outcomes; drift the reconciler repaired.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StageLabels {
    /// `alloc` (netmaster), `kernel` (the veth pair and the inside of the container), `port`
    /// (OVSDB until ovs-vswitchd numbered it), `flows` (compile until the switch confirmed),
    /// `total`; `detach` for a whole detach.
    pub stage: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    /// `attach` or `detach`.
    pub op: String,
    /// `ok` or the error's kind (`invalid`, `netmaster`, `unavailable`, `failed`).
    pub outcome: String,
}

#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    stages: Family<StageLabels, Histogram>,
    outcomes: Family<OutcomeLabels, Counter>,
    drift_repairs: Counter,
    drift_changes: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("weft_netplugin");
        // 0.25 ms to ~4 s.
        let stages = Family::<StageLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.00025, 2.0, 15))
        });
        let outcomes = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "endpoint_stage_duration_seconds",
            "time of each stage of an endpoint attach (and of a whole detach)",
            stages.clone(),
        );
        registry.register(
            "endpoint_operations",
            "endpoint attaches and detaches by outcome",
            outcomes.clone(),
        );
        let drift_repairs = Counter::default();
        let drift_changes = Counter::default();
        registry.register(
            "drift_repairs",
            "periodic reads of the switch that found it changed behind netplugin's back",
            drift_repairs.clone(),
        );
        registry.register(
            "drift_repaired_changes",
            "flows, groups and meters put back or removed by those repairs",
            drift_changes.clone(),
        );
        Metrics {
            registry: Arc::new(Mutex::new(registry)),
            stages,
            outcomes,
            drift_repairs,
            drift_changes,
        }
    }
}

impl Metrics {
    /// Drift repairs since the last call: repairs, and the changes they made.
    pub fn drift(&self, repairs: u64, changes: u64) {
        self.drift_repairs.inc_by(repairs);
        self.drift_changes.inc_by(changes);
    }

    pub fn stage(&self, stage: &str, d: Duration) {
        self.stages
            .get_or_create(&StageLabels {
                stage: stage.to_string(),
            })
            .observe(d.as_secs_f64());
    }

    pub fn outcome(&self, op: &str, outcome: &str) {
        self.outcomes
            .get_or_create(&OutcomeLabels {
                op: op.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
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

    /// Serves `GET /metrics` on `addr` until cancelled.
    pub async fn serve(&self, addr: SocketAddr, cancel: CancellationToken) -> Result<(), String> {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("metrics listener {addr}: {e}"))?;
        let m = self.clone();
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let m = m.clone();
                async move {
                    (
                        [(
                            "content-type",
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                        )],
                        m.render(),
                    )
                }
            }),
        );
        tokio::spawn(async move {
            let _ = axum::serve(l, app)
                .with_graceful_shutdown(cancel.cancelled_owned())
                .await;
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_and_outcomes_render() {
        let m = Metrics::default();
        m.stage("kernel", Duration::from_millis(2));
        m.outcome("attach", "ok");
        let t = m.render();
        assert!(
            t.contains("weft_netplugin_endpoint_stage_duration_seconds_count{stage=\"kernel\"} 1"),
            "{t}"
        );
        assert!(
            t.contains("weft_netplugin_endpoint_operations_total{op=\"attach\",outcome=\"ok\"} 1"),
            "{t}"
        );
        m.drift(1, 13);
        let t = m.render();
        assert!(t.contains("weft_netplugin_drift_repairs_total 1"), "{t}");
        assert!(
            t.contains("weft_netplugin_drift_repaired_changes_total 13"),
            "{t}"
        );
    }
}
