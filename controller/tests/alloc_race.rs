//! Allocation through the store: idempotent by owner, static requests honoured or refused with
//! the holder named, release; and two replicas racing over thousands of allocations never hand
//! out the same value (on one real etcd, and on the embedded store with concurrent tasks).

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::time::Instant;

use testsupport::{Etcd, TempDir};
use weft_controller::alloc::{AllocError, Allocator, Pool};
use weft_controller::store::embedded::Embedded;
use weft_controller::store::etcd::EtcdStore;
use weft_controller::store::Store;

async fn embedded(dir: &TempDir) -> Store {
    Store::Embedded(Embedded::open(dir.path()).await.unwrap())
}

#[tokio::test(flavor = "multi_thread")]
async fn allocation_rules() {
    let dir = TempDir::new("weft-alloc-");
    let a = Allocator::new(embedded(&dir).await);
    let net = Pool::addresses(
        "ip/blue:orange",
        Ipv4Addr::new(10, 1, 0, 1),
        Ipv4Addr::new(10, 1, 0, 6),
        vec![Ipv4Addr::new(10, 1, 0, 1)],
    );
    let first = a.allocate(&net, "ep1").await.unwrap();
    assert_eq!(
        Ipv4Addr::from(first),
        Ipv4Addr::new(10, 1, 0, 2),
        "gateway skipped"
    );
    assert_eq!(
        a.allocate(&net, "ep1").await.unwrap(),
        first,
        "idempotent by owner"
    );
    let st = a
        .allocate_static(&net, "ep2", Ipv4Addr::new(10, 1, 0, 5).into())
        .await
        .unwrap();
    assert_eq!(Ipv4Addr::from(st), Ipv4Addr::new(10, 1, 0, 5));
    let e = a
        .allocate_static(&net, "ep3", Ipv4Addr::new(10, 1, 0, 5).into())
        .await
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "10.1.0.5 in pool ip/blue:orange is already used by ep2"
    );
    let e = a
        .allocate_static(&net, "ep3", Ipv4Addr::new(10, 1, 0, 9).into())
        .await
        .unwrap_err();
    assert!(matches!(e, AllocError::OutOfPool { .. }), "{e}");
    // Fill the rest: .3, .4, .6; then the pool is exhausted.
    let mut got = HashSet::new();
    for o in ["a", "b", "c"] {
        got.insert(Ipv4Addr::from(a.allocate(&net, o).await.unwrap()));
    }
    assert_eq!(
        got,
        [3, 4, 6]
            .iter()
            .map(|l| Ipv4Addr::new(10, 1, 0, *l))
            .collect()
    );
    assert!(matches!(
        a.allocate(&net, "d").await,
        Err(AllocError::Exhausted { .. })
    ));
    // Release frees the value for someone else; releasing twice is fine.
    assert!(a.release(&net, "b").await.unwrap().is_some());
    assert_eq!(a.release(&net, "b").await.unwrap(), None);
    assert!(a.allocate(&net, "d").await.is_ok());
    // Subnets of a tenant pool.
    let subnets = Pool::subnets("subnet/blue", "11.1.0.0/22".parse().unwrap(), 24).unwrap();
    let nets: Vec<Ipv4Addr> = futures_join(&a, &subnets, &["n1", "n2", "n3", "n4"]).await;
    assert_eq!(nets.iter().collect::<HashSet<_>>().len(), 4);
    assert!(nets.iter().all(|n| n.octets()[3] == 0 && n.octets()[2] < 4));
    assert!(matches!(
        a.allocate(&subnets, "n5").await,
        Err(AllocError::Exhausted { .. })
    ));
}

async fn futures_join(a: &Allocator, p: &Pool, owners: &[&str]) -> Vec<Ipv4Addr> {
    let mut v = Vec::new();
    for o in owners {
        v.push(Ipv4Addr::from(a.allocate(p, o).await.unwrap()));
    }
    v
}

/// `per_replica` allocations from each of two allocators at once, `tasks` concurrent requests
/// per replica; every owner must get a value, and no value two owners.
async fn race(r1: Allocator, r2: Allocator, pool: Pool, per_replica: usize, tasks: usize) {
    let start = Instant::now();
    let mut handles = Vec::new();
    for (ri, alloc) in [r1.clone(), r2.clone()].into_iter().enumerate() {
        for t in 0..tasks {
            let (alloc, pool) = (alloc.clone(), pool.clone());
            handles.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for i in (t..per_replica).step_by(tasks) {
                    let owner = format!("r{ri}-o{i}");
                    got.push((owner.clone(), alloc.allocate(&pool, &owner).await.unwrap()));
                }
                got
            }));
        }
    }
    let mut all = Vec::new();
    for h in handles {
        all.extend(h.await.unwrap());
    }
    assert_eq!(all.len(), 2 * per_replica);
    let values: HashSet<u32> = all.iter().map(|(_, v)| *v).collect();
    assert_eq!(values.len(), all.len(), "a value was handed out twice");
    // All accounted for: each replica's store records every owner's value, whichever replica
    // handed it out.
    for (owner, v) in &all {
        for r in [&r1, &r2] {
            assert_eq!(r.held(&pool, owner).await.unwrap(), Some(*v), "{owner}");
        }
    }
    eprintln!(
        "{}: {} allocations by two replicas in {:?}",
        pool.name,
        all.len(),
        start.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_on_one_etcd_never_share_a_value() {
    let etcd = Etcd::start();
    let url = etcd.client_url().to_string();
    let r1 = Allocator::new(Store::Etcd(Box::new(
        EtcdStore::connect(std::slice::from_ref(&url))
            .await
            .unwrap(),
    )));
    let r2 = Allocator::new(Store::Etcd(Box::new(
        EtcdStore::connect(&[url]).await.unwrap(),
    )));
    race(
        r1.clone(),
        r2.clone(),
        Pool::numbers("vni", vec![(5000, 9999)]),
        1000,
        16,
    )
    .await;
    let addrs = Pool::addresses(
        "ip/t:n",
        Ipv4Addr::new(10, 8, 0, 2),
        Ipv4Addr::new(10, 8, 15, 254),
        vec![],
    );
    race(r1, r2, addrs, 1000, 16).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn concurrent_tasks_on_the_embedded_store_never_share_a_value() {
    let dir = TempDir::new("weft-alloc-");
    let store = embedded(&dir).await;
    // Two allocators on one store, each with its own cache of the pool: like two replicas,
    // they meet only in the store's transactions.
    race(
        Allocator::new(store.clone()),
        Allocator::new(store),
        Pool::numbers("vlan", vec![(100, 4000)]),
        1000,
        8,
    )
    .await;
}

/// Each allocator's cache of a pool is only a guide: what another allocator did on the same
/// store (allocated, released) is found out from the store, and one owner asking many times at
/// once gets one value.
#[tokio::test(flavor = "multi_thread")]
async fn caches_give_way_to_the_store() {
    let dir = TempDir::new("weft-alloc-");
    let store = embedded(&dir).await;
    let (a, b) = (Allocator::new(store.clone()), Allocator::new(store.clone()));
    let pool = Pool::numbers("vni", vec![(1, 10)]);
    for i in 1..=10 {
        a.allocate(&pool, &format!("o{i}")).await.unwrap();
    }
    // b has never seen the pool: full, and o3 gets what a gave it.
    assert!(matches!(
        b.allocate(&pool, "x").await,
        Err(AllocError::Exhausted { .. })
    ));
    let o3 = a.held(&pool, "o3").await.unwrap().unwrap();
    assert_eq!(b.allocate(&pool, "o3").await.unwrap(), o3);
    // a releases; b, whose cache says the pool is full, finds the value in the store.
    let freed = a.release(&pool, "o5").await.unwrap().unwrap();
    assert_eq!(b.allocate(&pool, "y").await.unwrap(), freed);
    // And the other way round: a's cache takes o5's value for free (b gave it to y) and o1's
    // for taken (b released it); the store's answers set both right.
    let o1 = b.release(&pool, "o1").await.unwrap().unwrap();
    assert_eq!(a.allocate(&pool, "x").await.unwrap(), o1);
    // One owner, many requests at once, through a third allocator: one value.
    b.release(&pool, "o2").await.unwrap();
    b.release(&pool, "x").await.unwrap();
    let c = Allocator::new(store);
    let mut handles = Vec::new();
    for _ in 0..16 {
        let (c, pool) = (c.clone(), pool.clone());
        handles.push(tokio::spawn(async move {
            c.allocate(&pool, "z").await.unwrap()
        }));
    }
    let mut got = HashSet::new();
    for h in handles {
        got.insert(h.await.unwrap());
    }
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        c.held(&pool, "z").await.unwrap(),
        got.into_iter().next(),
        "what z was given is what the store says it holds"
    );
}
