//! Prometheus metrics of netplugin, served at `/metrics` (`--metrics-listen`): the endpoint
//! service's stages, timed, and its outcomes; drift the reconciler repaired; flows per table,
//! the time of each batch sent to the switch and of each reconcile step, packet and byte counts
//! per rule (from the resync's flow dump); the policy verdict log's records. Names and meanings:
//! `docs/observability.md`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabels {
    /// The table's number.
    pub table: String,
    /// Its name in the pipeline (`docs/pipeline.md`), `?` for another.
    pub name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RuleLabels {
    pub tenant: String,
    /// The policy; `group:NAME` for a group's default deny.
    pub policy: String,
    /// The rule id; empty for a default deny.
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerdictLabels {
    pub tenant: String,
    pub policy: String,
    pub rule: String,
    /// `allow` or `deny`.
    pub verdict: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OpLabels {
    /// `bundle` (flows and groups, atomic) or `meters` (sent one by one, then a barrier).
    pub kind: String,
}

#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Mutex<Registry>>,
    stages: Family<StageLabels, Histogram>,
    outcomes: Family<OutcomeLabels, Counter>,
    drift_repairs: Counter,
    drift_changes: Counter,
    flows: Family<TableLabels, Gauge>,
    flow_ops: Family<OpLabels, Histogram>,
    reconcile: Histogram,
    rule_packets: Family<RuleLabels, Gauge>,
    rule_bytes: Family<RuleLabels, Gauge>,
    verdicts: Family<VerdictLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut root = Registry::default();
        let verdicts = Family::<VerdictLabels, Counter>::default();
        root.register(
            "weft_policy_verdicts",
            "first packets of connections a logged rule or default deny decided (after the verdict meter)",
            verdicts.clone(),
        );
        let registry = root.sub_registry_with_prefix("weft_netplugin");
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
        let flows = Family::<TableLabels, Gauge>::default();
        registry.register(
            "flows",
            "flows the switch holds per table (as netplugin last installed or read them)",
            flows.clone(),
        );
        // 0.1 ms to ~3 s.
        let flow_ops = Family::<OpLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.0001, 2.0, 16))
        });
        registry.register(
            "flow_operation_duration_seconds",
            "time from sending a batch of changes to the switch until it confirmed them",
            flow_ops.clone(),
        );
        let reconcile = Histogram::new(exponential_buckets(0.0001, 2.0, 18));
        registry.register(
            "reconcile_duration_seconds",
            "time of a reconcile step (reading the switch where needed, diff, sending, confirmation)",
            reconcile.clone(),
        );
        let rule_packets = Family::<RuleLabels, Gauge>::default();
        let rule_bytes = Family::<RuleLabels, Gauge>::default();
        registry.register(
            "rule_packets",
            "packets the flows of a rule (or a default deny) matched, summed over its flows at the last full read of the switch (a flow replaced starts again at 0)",
            rule_packets.clone(),
        );
        registry.register(
            "rule_bytes",
            "bytes the flows of a rule (or a default deny) matched, as rule_packets",
            rule_bytes.clone(),
        );
        Metrics {
            registry: Arc::new(Mutex::new(root)),
            stages,
            outcomes,
            drift_repairs,
            drift_changes,
            flows,
            flow_ops,
            reconcile,
            rule_packets,
            rule_bytes,
            verdicts,
        }
    }
}

impl Metrics {
    /// Drift repairs since the last call: repairs, and the changes they made.
    pub fn drift(&self, repairs: u64, changes: u64) {
        self.drift_repairs.inc_by(repairs);
        self.drift_changes.inc_by(changes);
    }

    /// A verdict record.
    pub fn verdict(&self, tenant: &str, policy: &str, rule: &str, verdict: &str) {
        self.verdicts
            .get_or_create(&VerdictLabels {
                tenant: tenant.into(),
                policy: policy.into(),
                rule: rule.into(),
                verdict: verdict.into(),
            })
            .inc();
    }

    /// Flows per table now (tables not named have none).
    pub fn flows_per_table(&self, counts: &std::collections::BTreeMap<u8, usize>) {
        self.flows.clear();
        for (t, n) in counts {
            self.flows
                .get_or_create(&TableLabels {
                    table: t.to_string(),
                    name: weft_policy::layout::table_name(*t)
                        .unwrap_or("?")
                        .to_string(),
                })
                .set(*n as i64);
        }
    }

    /// A batch of changes the switch confirmed (`bundle` or `meters`), and how long it took.
    pub fn flow_operation(&self, kind: &str, d: Duration) {
        self.flow_ops
            .get_or_create(&OpLabels { kind: kind.into() })
            .observe(d.as_secs_f64());
    }

    pub fn reconciled(&self, d: Duration) {
        self.reconcile.observe(d.as_secs_f64());
    }

    /// Per-rule counters as of a full read of the switch: (rule, packets, bytes).
    pub fn rule_counts(&self, counts: &[(RuleLabels, u64, u64)]) {
        self.rule_packets.clear();
        self.rule_bytes.clear();
        for (l, p, b) in counts {
            self.rule_packets.get_or_create(l).set(*p as i64);
            self.rule_bytes.get_or_create(l).set(*b as i64);
        }
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
    pub async fn serve(
        &self,
        addr: SocketAddr,
        cancel: CancellationToken,
    ) -> Result<(), MetricsListenError> {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|source| MetricsListenError { addr, source })?;
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
        m.verdict("blue", "db-in", "pg", "allow");
        m.flows_per_table(&[(63u8, 7usize)].into_iter().collect());
        m.flow_operation("bundle", Duration::from_millis(3));
        m.reconciled(Duration::from_millis(4));
        m.rule_counts(&[(
            RuleLabels {
                tenant: "blue".into(),
                policy: "db-in".into(),
                rule: "pg".into(),
            },
            5,
            600,
        )]);
        let t = m.render();
        for line in [
            "weft_policy_verdicts_total{tenant=\"blue\",policy=\"db-in\",rule=\"pg\",verdict=\"allow\"} 1",
            "weft_netplugin_flows{table=\"63\",name=\"ingress-rules\"} 7",
            "weft_netplugin_flow_operation_duration_seconds_count{kind=\"bundle\"} 1",
            "weft_netplugin_reconcile_duration_seconds_count 1",
            "weft_netplugin_rule_packets{tenant=\"blue\",policy=\"db-in\",rule=\"pg\"} 5",
            "weft_netplugin_rule_bytes{tenant=\"blue\",policy=\"db-in\",rule=\"pg\"} 600",
        ] {
            assert!(t.contains(line), "{line} not in\n{t}");
        }
        m.drift(1, 13);
        let t = m.render();
        assert!(t.contains("weft_netplugin_drift_repairs_total 1"), "{t}");
        assert!(
            t.contains("weft_netplugin_drift_repaired_changes_total 13"),
            "{t}"
        );
    }
}

/// The metrics listener could not be opened.
#[derive(Debug, thiserror::Error)]
#[error("metrics listener {addr}")]
pub struct MetricsListenError {
    pub addr: SocketAddr,
    #[source]
    pub source: std::io::Error,
}
