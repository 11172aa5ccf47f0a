//! The store's own throughput, below the intent layer: objects committed per second (one
//! transaction per ~300-byte JSON object, and batches of 100 per transaction) and watch fan-out
//! (time from a commit until 100 watchers of the prefix have all seen it), on the embedded store
//! and on a real etcd. `cargo bench -p weft-controller --bench store` prints the figures.

use std::time::{Duration, Instant};

use testsupport::{Etcd, TempDir};
use weft_controller::store::embedded::Embedded;
use weft_controller::store::etcd::EtcdStore;
use weft_controller::store::{Compare, Op, Store};

/// A network object about the size netmaster stores (~300 bytes of JSON).
fn object(i: usize) -> Vec<u8> {
    let v = serde_json::json!({
        "tenantName": "bench", "networkName": format!("net-{i:06}"), "encap": "vxlan",
        "pktTag": 1000 + i, "subnet": format!("10.{}.{}.0/24", i / 256 % 256, i % 256),
        "gateway": format!("10.{}.{}.1", i / 256 % 256, i % 256), "ipv6Subnet": "",
        "nwType": "data", "labels": {"owner": "bench", "purpose": "store throughput figure"},
        "created": "2026-11-22T12:00:00Z", "description": "a network of the store benchmark"
    });
    serde_json::to_vec(&v).expect("json")
}

async fn commits(name: &str, s: &Store) {
    let n = 2000;
    let size = object(0).len();
    let t = Instant::now();
    for i in 0..n {
        // As netmaster writes: create only if absent, a compare-and-swap.
        let key = format!("/bench/one/{i}").into_bytes();
        let r = s
            .txn(
                vec![Compare::Absent(key.clone())],
                vec![Op::put(key, object(i))],
                vec![],
            )
            .await
            .expect("commit");
        assert!(r.succeeded);
    }
    let one = n as f64 / t.elapsed().as_secs_f64();
    let batch = 100;
    let t = Instant::now();
    for b in 0..n / batch {
        let ops = (0..batch)
            .map(|j| Op::put(format!("/bench/many/{b}/{j}"), object(b * batch + j)))
            .collect();
        s.txn(vec![], ops, vec![]).await.expect("commit");
    }
    let many = n as f64 / t.elapsed().as_secs_f64();
    println!(
        "{name:8} commits: {one:8.0} objects/s one per txn, {many:8.0} objects/s {batch} per txn ({size} B each)"
    );
}

async fn fan_out(name: &str, s: &Store) {
    let watchers = 100;
    let (_, rev) = s.range(b"/bench/fan/").await.expect("range");
    let mut streams = Vec::new();
    for _ in 0..watchers {
        streams.push(s.watch(b"/bench/fan/", rev + 1).await.expect("watch"));
    }
    let rounds = 50;
    let mut times = Vec::new();
    for i in 0..rounds {
        let t = Instant::now();
        let r = s
            .put(format!("/bench/fan/{i}").as_bytes(), &object(i))
            .await
            .expect("put");
        let mut pending = Vec::new();
        for w in streams.iter_mut() {
            pending.push(async move {
                let e = tokio::time::timeout(Duration::from_secs(10), w.recv())
                    .await
                    .expect("event within 10 s")
                    .expect("watch open")
                    .expect("no watch error");
                assert_eq!(e.revision(), r);
            });
        }
        futures::future::join_all(pending).await;
        times.push(t.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name:8} fan-out to {watchers} watchers (commit until all saw it): median {:.2} ms, p90 {:.2} ms, max {:.2} ms",
        ms(times[rounds / 2]),
        ms(times[rounds * 9 / 10]),
        ms(times[rounds - 1])
    );
}

#[tokio::main]
async fn main() {
    // `cargo test --benches` runs this without `--bench`; only `cargo bench` measures.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let dir = TempDir::new("weft-bench-store-");
    let embedded = Store::Embedded(Embedded::open(dir.path()).await.expect("open"));
    commits("embedded", &embedded).await;
    fan_out("embedded", &embedded).await;
    let etcd = Etcd::start();
    let on_etcd = Store::Etcd(Box::new(
        EtcdStore::connect(&[etcd.client_url().to_string()])
            .await
            .expect("connect"),
    ));
    commits("etcd", &on_etcd).await;
    fan_out("etcd", &on_etcd).await;
}
