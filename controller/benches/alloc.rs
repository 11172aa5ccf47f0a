//! Contended address allocation: 16 tasks allocating addresses of one network at once, on the
//! embedded store and on etcd, and two replicas doing so on one etcd.
//! `cargo bench -p weft-controller --bench alloc` prints addresses/s and the latency of one
//! allocation (p50, p99), and checks that no address was handed out twice.
//!
//! `WEFT_BENCH_ALLOCS=N` sets the allocations per task (default 250: 4,000 in all).

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use testsupport::{Etcd, TempDir};
use weft_controller::alloc::{Allocator, Pool};
use weft_controller::store::embedded::Embedded;
use weft_controller::store::etcd::EtcdStore;
use weft_controller::store::Store;

const TASKS: usize = 16;

fn pool(name: &str) -> Pool {
    // A /16 less its gateway: room for every allocation of the bench.
    Pool::addresses(
        name,
        Ipv4Addr::new(10, 20, 0, 1),
        Ipv4Addr::new(10, 20, 255, 254),
        vec![Ipv4Addr::new(10, 20, 0, 1)],
    )
}

/// `TASKS` tasks per allocator, `per_task` allocations each; returns every (owner, value).
async fn run(
    name: &str,
    allocators: &[Allocator],
    pool: &Pool,
    per_task: usize,
) -> Vec<(String, u32)> {
    let start = Instant::now();
    let mut handles = Vec::new();
    for (r, a) in allocators.iter().enumerate() {
        for t in 0..TASKS {
            let (a, pool) = (a.clone(), pool.clone());
            handles.push(tokio::spawn(async move {
                let mut got = Vec::with_capacity(per_task);
                for i in 0..per_task {
                    let owner = format!("r{r}-t{t}-{i}");
                    let c = Instant::now();
                    let v = a.allocate(&pool, &owner).await.unwrap();
                    got.push((owner, v, c.elapsed()));
                }
                got
            }));
        }
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    let took = start.elapsed();
    let values: HashSet<u32> = all.iter().map(|(_, v, _)| *v).collect();
    assert_eq!(
        values.len(),
        all.len(),
        "{name}: an address was handed out twice"
    );
    let mut lat: Vec<Duration> = all.iter().map(|(_, _, d)| *d).collect();
    lat.sort();
    println!(
        "{name}: {} addresses, {} allocators × {TASKS} tasks on one network: {:.0} addresses/s (one allocation: p50 {:?}, p99 {:?})",
        all.len(),
        allocators.len(),
        all.len() as f64 / took.as_secs_f64(),
        lat[lat.len() / 2],
        lat[lat.len() * 99 / 100],
    );
    all.into_iter().map(|(o, v, _)| (o, v)).collect()
}

async fn etcd_store(etcd: &Etcd) -> Store {
    Store::Etcd(Box::new(
        EtcdStore::connect(&[etcd.client_url().to_string()])
            .await
            .unwrap(),
    ))
}

#[tokio::main]
async fn main() {
    // `cargo test --benches` runs this with no arguments worth acting on; only `cargo bench` measures.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let per_task: usize = std::env::var("WEFT_BENCH_ALLOCS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(250);
    let dir = TempDir::new("weft-bench-");
    let embedded = Store::Embedded(Embedded::open(dir.path()).await.unwrap());
    run(
        "embedded",
        &[Allocator::new(embedded)],
        &pool("ip/bench:e"),
        per_task,
    )
    .await;
    let etcd = Etcd::start();
    run(
        "etcd",
        &[Allocator::new(etcd_store(&etcd).await)],
        &pool("ip/bench:one"),
        per_task,
    )
    .await;
    let replicas = [
        Allocator::new(etcd_store(&etcd).await),
        Allocator::new(etcd_store(&etcd).await),
    ];
    let all = run(
        "etcd, two replicas",
        &replicas,
        &pool("ip/bench:two"),
        per_task / 2,
    )
    .await;
    // Every value is recorded for its owner, whichever replica handed it out.
    for (owner, v) in all.iter().step_by(97) {
        assert_eq!(
            replicas[1]
                .held(&pool("ip/bench:two"), owner)
                .await
                .unwrap(),
            Some(*v)
        );
    }
}
