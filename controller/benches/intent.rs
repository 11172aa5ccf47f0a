//! Intent throughput and watch fan-out, on the embedded store and on etcd.
//! `cargo bench -p weft-controller --bench intent` prints:
//! - objects committed per second, one object per change (each validated against the index
//!   and committed as one CAS transaction guarded by the sequence key, as REST changes are) and
//!   as one 500-network spec (validated whole); `intent_scale` does the same at 100,000 objects;
//! - fan-out: time from a commit until 100 agents watching over gRPC have all seen it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use testsupport::{Etcd, TempDir};
use tokio_util::sync::CancellationToken;
use weft_api::proto::agent as pb;
use weft_api::proto::agent::agent_service_client::AgentServiceClient;
use weft_api::{Network, Spec, Tenant};
use weft_controller::intent::Intent;
use weft_controller::server::{open_store, run, Config};

fn network(i: usize) -> Network {
    serde_json::from_value(serde_json::json!({
        "tenantName": "bench", "networkName": format!("n{i}"), "encap": "vxlan",
        "subnet": format!("10.{}.{}.0/24", 100 + i / 256, i % 256)
    }))
    .unwrap()
}

async fn throughput(name: &str, config: &Config) {
    let intent = Intent::new(open_store(config).await.unwrap());
    intent
        .apply(|s| {
            let mut n = s.clone();
            n.tenants.insert(
                "bench".into(),
                Tenant {
                    tenant_name: "bench".into(),
                    default_network: None,
                },
            );
            Ok(n)
        })
        .await
        .unwrap();
    let n = 200;
    let t = Instant::now();
    for i in 0..n {
        intent
            .put(weft_api::state::Object::Network(network(i)))
            .await
            .unwrap();
    }
    let one_by_one = n as f64 / t.elapsed().as_secs_f64();
    let spec = Spec {
        tenants: vec![Tenant {
            tenant_name: "bench".into(),
            default_network: None,
        }],
        networks: (1000..1500).map(network).collect(),
        ..Spec::default()
    };
    let t = Instant::now();
    let (_, changes) = intent
        .apply(|s| Ok(spec.apply_to(s, false).unwrap()))
        .await
        .unwrap();
    let whole = changes.len() as f64 / t.elapsed().as_secs_f64();
    println!(
        "{name}: {one_by_one:.0} objects/s one change at a time ({n} networks); {whole:.0} objects/s as one {}-network spec",
        changes.len()
    );
}

async fn fan_out(name: &str, mut config: Config) {
    let stop = CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    config.listen = any;
    config.grpc_listen = any;
    tokio::spawn(run(config, stop.clone(), Some(tx)));
    let bound = rx.await.unwrap();
    let url = format!("http://{}", bound.grpc);
    let (seen_tx, mut seen_rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    let agents = 100;
    for a in 0..agents {
        let mut c = AgentServiceClient::connect(url.clone()).await.unwrap();
        let mut w = c
            .watch(pb::WatchRequest {
                host: format!("h{a}"),
                from_revision: 0,
                held: vec![],
            })
            .await
            .unwrap()
            .into_inner();
        let seen = seen_tx.clone();
        tokio::spawn(async move {
            let mut snapshot_done = false;
            while let Ok(Some(e)) = w.message().await {
                use pb::watch_event::Event;
                let tenant = matches!(&e.event, Some(Event::Put(o))
                    if matches!(o.kind, Some(pb::object::Kind::Tenant(_))));
                if matches!(e.event, Some(Event::Synced(_))) {
                    snapshot_done = true;
                    let _ = seen.send((usize::MAX, Instant::now()));
                } else if snapshot_done && tenant {
                    let _ = seen.send((a, Instant::now()));
                }
            }
        });
    }
    for _ in 0..agents {
        seen_rx.recv().await.unwrap();
    }
    let http = reqwest::Client::new();
    let mut times = Vec::new();
    for round in 0..20 {
        let t = Instant::now();
        let r = http
            .post(format!("http://{}/api/v1/tenants/t{round}/", bound.rest))
            .json(&serde_json::json!({"tenantName": format!("t{round}")}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
        let mut last = t;
        for _ in 0..agents {
            let (_, at) = tokio::time::timeout(Duration::from_secs(10), seen_rx.recv())
                .await
                .unwrap()
                .unwrap();
            last = last.max(at);
        }
        times.push(last - t);
    }
    times.sort();
    println!(
        "{name}: commit to all {agents} watching agents: p50 {:?}, max {:?} (20 commits, REST request included)",
        times[times.len() / 2],
        times[times.len() - 1]
    );
    stop.cancel();
}

#[tokio::main]
async fn main() {
    // `cargo test --benches` runs this with no arguments worth acting on; only `cargo bench` measures.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = TempDir::new("weft-bench-");
    let embedded = Config {
        data_dir: dir.path().to_path_buf(),
        etcd: vec![],
        listen: "127.0.0.1:0".parse().unwrap(),
        grpc_listen: "127.0.0.1:0".parse().unwrap(),
    };
    throughput("embedded", &embedded).await;
    let etcd = Etcd::start();
    let on_etcd = Config {
        etcd: vec![etcd.client_url().to_string()],
        ..embedded.clone()
    };
    throughput("etcd", &on_etcd).await;
    let dir2 = TempDir::new("weft-bench-");
    fan_out(
        "embedded",
        Config {
            data_dir: dir2.path().to_path_buf(),
            ..embedded
        },
    )
    .await;
    let etcd2 = Etcd::start();
    fan_out(
        "etcd",
        Config {
            etcd: vec![etcd2.client_url().to_string()],
            ..on_etcd
        },
    )
    .await;
}
