//! netmaster's `/metrics` against a live in-process netmaster: intent commit latency, agents
//! connected, per-host watch lag, allocations by outcome.

use std::time::Duration;

use testsupport::TempDir;
use tokio::time::timeout;
use weft_api::proto::agent as pb;
use weft_api::proto::agent::agent_service_client::AgentServiceClient;
use weft_controller::server::{local_config, spawn};

const SPEC: &str = r#"{"tenants": [{"tenantName": "blue"}],
  "networks": [{"tenantName": "blue", "networkName": "web", "subnet": "10.7.0.0/29", "gateway": "10.7.0.1"}]}"#;

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l[series.len() + 1..].trim().parse().ok())
}

fn alloc(id: &str, network: &str) -> pb::AllocateEndpointRequest {
    pb::AllocateEndpointRequest {
        endpoint_id: id.into(),
        tenant: "blue".into(),
        network: network.into(),
        host: "h1".into(),
        container: id.into(),
        interface_name: "eth0".into(),
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_commits_agents_lag_and_allocations() {
    let dir = TempDir::new("weft-nm-metrics-");
    let nm = spawn(local_config(dir.path())).await.unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://{}", nm.bound.rest);
    let metrics = || async {
        http.get(format!("{base}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let r = http
        .post(format!("{base}/api/v1/intent"))
        .body(SPEC)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let r = http
        .post(format!("{base}/api/v1/tenants/red/"))
        .body(r#"{"tenantName": "red"}"#)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());

    let mut c = AgentServiceClient::connect(format!("http://{}", nm.bound.grpc))
        .await
        .unwrap();
    c.allocate_endpoint(alloc("a", "web")).await.unwrap();
    c.allocate_endpoint(alloc("b", "nope")).await.unwrap_err();
    let m = metrics().await;
    assert_eq!(
        value(
            &m,
            "weft_netmaster_intent_commit_duration_seconds_count{kind=\"spec\"}"
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        value(
            &m,
            "weft_netmaster_intent_commit_duration_seconds_count{kind=\"object\"}"
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        value(
            &m,
            "weft_netmaster_allocations_total{outcome=\"allocated\"}"
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "weft_netmaster_allocations_total{outcome=\"invalid\"}"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "weft_netmaster_agents_connected"),
        Some(0.0),
        "{m}"
    );

    // An agent watches and takes everything: connected, no lag.
    let mut w = c
        .watch(pb::WatchRequest {
            host: "h1".into(),
            from_revision: 0,
            held: vec![],
        })
        .await
        .unwrap()
        .into_inner();
    loop {
        let e = timeout(Duration::from_secs(10), w.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if matches!(e.event, Some(pb::watch_event::Event::Synced(_))) {
            break;
        }
    }
    let m = metrics().await;
    assert_eq!(
        value(&m, "weft_netmaster_agents_connected"),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        value(&m, "weft_netmaster_watch_lag_revisions{host=\"h1\"}"),
        Some(0.0),
        "{m}"
    );
    drop(w);
    // The stream's end is seen by the server shortly after.
    let mut gone = false;
    for _ in 0..50 {
        let m = metrics().await;
        if value(&m, "weft_netmaster_agents_connected") == Some(0.0) {
            assert!(!m.contains("host=\"h1\""), "{m}");
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(gone, "the watch's end was never counted");
}
