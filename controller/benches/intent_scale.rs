//! Single-object changes against a large intent, on the embedded store and on etcd.
//! `cargo bench -p weft-controller --bench intent_scale` preloads 102,200 objects (200 tenants,
//! 2,000 networks, 20,000 endpoint groups, 20,000 policies, 60,000 rules: a valid state, written
//! straight into the store in chunks), starts netmaster's intent on it (the index loads), and
//! times 1,000 single-object changes one after another, each one validated and committed
//! before the next: creates of networks (tag left to netmaster), groups and rules, updates of
//! groups, deletes of rules. It prints changes/s and the latency per change (p50, p99).
//!
//! `WEFT_BENCH_OBJECTS_SCALE=0.1` shrinks the preload (for a quick look).

use std::time::{Duration, Instant};

use serde_json::json;
use testsupport::{Etcd, TempDir};
use weft_api::state::{Kind, Object};
use weft_api::State;
use weft_controller::intent::Intent;
use weft_controller::server::{open_store, Config};
use weft_controller::store::{Op, Store};

const TENANTS: usize = 200;
const NETS_PER_TENANT: usize = 10;
const POLICIES_PER_TENANT: usize = 100;
const GROUPS_PER_TENANT: usize = 100;
const RULES_PER_POLICY: usize = 3;
const CHANGES: usize = 1000;

fn obj<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> T {
    serde_json::from_value(v).expect("bench objects parse")
}

fn tenant(t: usize) -> Object {
    Object::Tenant(obj(json!({"tenantName": format!("t{t}")})))
}

fn network(t: usize, n: usize, tag: u32) -> Object {
    // Every tenant has 10.<n>.*.0/24 subnets: overlapping across tenants, as tenants may.
    // One network per tenant has hostAccess, with subnets disjoint across all tenants.
    let host = n == 0;
    let subnet = if host {
        format!("172.{}.{}.0/24", 16 + t / 256, t % 256)
    } else {
        format!("10.{n}.{}.0/24", t % 256)
    };
    Object::Network(obj(
        json!({"tenantName": format!("t{t}"), "networkName": format!("n{n}"),
        "encap": "vxlan", "pktTag": tag, "subnet": subnet, "hostAccess": host}),
    ))
}

fn policy(t: usize, p: usize) -> Object {
    Object::Policy(obj(
        json!({"tenantName": format!("t{t}"), "policyName": format!("p{p}")}),
    ))
}

fn group(t: usize, g: usize, policies: &[usize]) -> Object {
    let pols: Vec<String> = policies.iter().map(|p| format!("p{p}")).collect();
    Object::Group(obj(
        json!({"tenantName": format!("t{t}"), "groupName": format!("g{g}"),
        "networkName": format!("n{}", g % NETS_PER_TENANT), "policies": pols}),
    ))
}

fn rule(t: usize, p: usize, r: usize, from_group: usize) -> Object {
    Object::Rule(obj(
        json!({"tenantName": format!("t{t}"), "policyName": format!("p{p}"),
        "ruleId": format!("r{r}"), "priority": 1 + r % 100, "direction": "in",
        "fromEndpointGroup": format!("g{from_group}"), "protocol": "tcp",
        "port": 1000 + r, "action": "allow"}),
    ))
}

fn key(o: &Object) -> Vec<u8> {
    format!("/weft/intent/{}/{}", o.kind().as_str(), o.key()).into_bytes()
}

/// Writes a valid intent of `scale` × 102,200 objects straight into the store; returns how many.
async fn preload(store: &Store, scale: f64) -> usize {
    let tenants = ((TENANTS as f64 * scale).round() as usize).max(1);
    let mut objects = Vec::new();
    let mut tag = 0u32;
    for t in 0..tenants {
        objects.push(tenant(t));
        for n in 0..NETS_PER_TENANT {
            tag += 1;
            objects.push(network(t, n, tag));
        }
        for p in 0..POLICIES_PER_TENANT {
            objects.push(policy(t, p));
        }
        for g in 0..GROUPS_PER_TENANT {
            objects.push(group(t, g, &[g % POLICIES_PER_TENANT]));
        }
        for p in 0..POLICIES_PER_TENANT {
            for r in 0..RULES_PER_POLICY {
                objects.push(rule(t, p, r, (p + r) % GROUPS_PER_TENANT));
            }
        }
    }
    // The bench's own check: what it preloads is a valid state.
    let mut s = State::default();
    for o in &objects {
        s.put(o.clone());
    }
    weft_api::validate_state(&s).expect("the preloaded intent is valid");
    for chunk in objects.chunks(1000) {
        let ops = chunk.iter().map(|o| Op::put(key(o), o.to_json())).collect();
        store.txn(vec![], ops, vec![]).await.unwrap();
    }
    store.put(b"/weft/meta/intent-seq", b"").await.unwrap();
    objects.len()
}

/// The `i`-th change: five kinds in turn, each round of five in the next tenant.
fn change(i: usize, tenants: usize) -> (Option<Object>, Option<(Kind, String)>) {
    let round = i / 5;
    let t = round % tenants;
    match i % 5 {
        // A new network, its tag left to netmaster.
        0 => (
            Some(Object::Network(obj(json!({"tenantName": format!("t{t}"),
                "networkName": format!("new{round}"), "encap": "vxlan",
                "subnet": format!("10.{}.{}.0/24", 100 + round / 256, round % 256)})))),
            None,
        ),
        // A new group, naming two policies.
        1 => (
            Some(group(t, 1000 + round, &[round % 100, (round + 1) % 100])),
            None,
        ),
        // A new rule from that group.
        2 => (Some(rule(t, round % 100, 1000 + round, 1000 + round)), None),
        // An existing group now names another policy.
        3 => (Some(group(t, round % 100, &[(round + 7) % 100])), None),
        // The rule created two changes ago goes.
        _ => (
            None,
            Some((
                Kind::Rule,
                format!("t{t}:p{}:r{}", round % 100, 1000 + round),
            )),
        ),
    }
}

async fn scale(name: &str, config: &Config, scale: f64) {
    let store = open_store(config).await.unwrap();
    let t = Instant::now();
    let n = preload(&store, scale).await;
    let preload_took = t.elapsed();
    let t = Instant::now();
    let intent = Intent::new(store.clone());
    let (s, _) = intent.load().await.unwrap();
    let load_took = t.elapsed();
    assert_eq!(s.objects().count(), n);
    let tenants = s.tenants.len();
    let mut lat = Vec::with_capacity(CHANGES);
    let t = Instant::now();
    for i in 0..CHANGES {
        let c = Instant::now();
        match change(i, tenants) {
            (Some(o), _) => {
                intent
                    .put(o)
                    .await
                    .unwrap_or_else(|e| panic!("change {i}: {e}"));
            }
            (None, Some((kind, key))) => intent
                .delete(kind, &key)
                .await
                .unwrap_or_else(|e| panic!("change {i}: {e}")),
            (None, None) => unreachable!(),
        }
        lat.push(c.elapsed());
    }
    let took = t.elapsed();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "{name}: {CHANGES} single-object changes at {n} objects: {:.0} changes/s (p50 {:?}, p99 {:?}, max {:?}); \
         preload {preload_took:.1?}, index loaded in {load_took:.1?}",
        CHANGES as f64 / took.as_secs_f64(),
        pct(0.5),
        pct(0.99),
        lat[lat.len() - 1],
    );
    // Everything committed is valid as a whole, and a second netmaster reads the same.
    let (s, _) = intent.load().await.unwrap();
    weft_api::validate_state(&s).expect("the state after the changes is valid");
    let other = Intent::new(store);
    assert_eq!(other.load().await.unwrap().0, s);
    // A whole spec on top (the bulk path: validated whole, from the index).
    let spec = weft_api::Spec {
        networks: (0..50)
            .filter_map(|i| match network(0, 100 + i, 0) {
                Object::Network(mut n) => {
                    n.subnet = format!("10.250.{i}.0/24").parse().unwrap();
                    n.host_access = false;
                    Some(n)
                }
                _ => None,
            })
            .collect(),
        ..Default::default()
    };
    let t = Instant::now();
    let (_, changes) = intent
        .apply(|s| Ok(spec.apply_to(s, false).unwrap()))
        .await
        .unwrap();
    println!(
        "{name}: a {}-network spec at {n} objects: {:.1?}",
        changes.len(),
        t.elapsed()
    );
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[tokio::main]
async fn main() {
    // `cargo test --benches` runs this with no arguments worth acting on; only `cargo bench` measures.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let factor: f64 = std::env::var("WEFT_BENCH_OBJECTS_SCALE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let dir = TempDir::new("weft-bench-");
    let embedded = Config {
        data_dir: dir.path().to_path_buf(),
        etcd: vec![],
        listen: "127.0.0.1:0".parse().unwrap(),
        grpc_listen: "127.0.0.1:0".parse().unwrap(),
    };
    scale("embedded", &embedded, factor).await;
    let etcd = Etcd::start();
    let on_etcd = Config {
        etcd: vec![etcd.client_url().to_string()],
        ..embedded
    };
    scale("etcd", &on_etcd, factor).await;
}
