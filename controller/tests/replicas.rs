//! Several netmasters on one store, each with its own index of the intent: a change made through
//! one is seen by the next request to another; changes racing through different replicas never
//! leave an invalid state (each is judged against the state it replaces); an endpoint written
//! anywhere keeps its network from being deleted through any replica.

use std::collections::BTreeSet;

use serde_json::json;
use testsupport::{Etcd, TempDir};
use weft_api::state::{Kind, Object};
use weft_api::{validate_state, Network};
use weft_controller::intent::{Intent, IntentError};
use weft_controller::store::embedded::Embedded;
use weft_controller::store::etcd::EtcdStore;
use weft_controller::store::Store;

fn tenant(t: &str) -> Object {
    Object::Tenant(serde_json::from_value(json!({"tenantName": t})).unwrap())
}

fn network(t: &str, n: &str, subnet: &str, tag: u32) -> Object {
    Object::Network(
        serde_json::from_value(json!({"tenantName": t, "networkName": n, "encap": "vxlan",
                                      "pktTag": tag, "subnet": subnet}))
        .unwrap(),
    )
}

async fn etcd_stores(etcd: &Etcd, n: usize) -> Vec<Store> {
    let mut v = Vec::new();
    for _ in 0..n {
        v.push(Store::Etcd(Box::new(
            EtcdStore::connect(&[etcd.client_url().to_string()])
                .await
                .unwrap(),
        )));
    }
    v
}

async fn replicas_see_each_others_changes_at_once(a: Intent, b: Intent) {
    a.put(tenant("blue")).await.unwrap();
    for i in 0..50 {
        // Written through one, read through the other right away: no sleeping.
        let (w, r) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let stored = w
            .put(network(
                "blue",
                &format!("n{i}"),
                &format!("10.{i}.0.0/24"),
                0,
            ))
            .await
            .unwrap();
        let Object::Network(stored) = stored else {
            unreachable!()
        };
        let seen = r
            .read(|s| s.networks.get(&format!("blue:n{i}")).cloned())
            .await
            .unwrap();
        assert_eq!(seen.as_ref(), Some(&stored), "round {i}");
        if i % 5 == 4 {
            r.delete(Kind::Network, &format!("blue:n{i}"))
                .await
                .unwrap();
            assert!(w
                .read(|s| !s.networks.contains_key(&format!("blue:n{i}")))
                .await
                .unwrap());
        }
    }
    // Changes judged through the other replica right after: neither refused nor taken for
    // no-ops on a view that has not seen the first change yet.
    for i in 0..30 {
        let (w, r) = if i % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let t = format!("t{i}");
        w.put(tenant(&t)).await.unwrap();
        let net = network(&t, "x", "10.200.0.0/24", 0);
        let stored = r
            .put(net)
            .await
            .unwrap_or_else(|e| panic!("round {i}: {e}"));
        w.delete(Kind::Network, &format!("{t}:x")).await.unwrap();
        // The same network again: a creation, whatever the other replica saw last.
        r.put(stored).await.unwrap();
        assert!(
            w.read(|s| s.networks.contains_key(&format!("{t}:x")))
                .await
                .unwrap(),
            "round {i}: the network put again is not there"
        );
    }
    let (s, _) = a.load().await.unwrap();
    validate_state(&s).unwrap();
    assert_eq!((s, 0), (b.load().await.unwrap().0, 0));
}

/// 2 replicas × 4 tasks each create networks whose subnets and tags collide: whatever wins,
/// the result is valid, each refusal names a real collision, and both replicas agree.
async fn racing_replicas_never_leave_an_invalid_state(replicas: Vec<Intent>) {
    replicas[0].put(tenant("red")).await.unwrap();
    let mut tasks = Vec::new();
    for (r, intent) in replicas.iter().enumerate() {
        for t in 0..4 {
            let intent = intent.clone();
            tasks.push(tokio::spawn(async move {
                let (mut ok, mut refused) = (0, 0);
                for i in 0..25 {
                    // 40 distinct subnets and 30 distinct tags for 200 attempts.
                    let k = (r * 4 + t) * 25 + i;
                    let subnet = format!("10.{}.0.0/16", k % 40);
                    let tag = 100 + (k % 30) as u32;
                    match intent
                        .put(network("red", &format!("r{r}t{t}i{i}"), &subnet, tag))
                        .await
                    {
                        Ok(_) => ok += 1,
                        Err(IntentError::Invalid(e)) => {
                            let m = e.to_string();
                            assert!(
                                m.contains("overlaps") || m.contains("already used by"),
                                "{m}"
                            );
                            refused += 1;
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
                (ok, refused)
            }));
        }
    }
    let mut ok = 0;
    for t in tasks {
        ok += t.await.unwrap().0;
    }
    let (s, _) = replicas[0].load().await.unwrap();
    validate_state(&s).unwrap_or_else(|e| panic!("an invalid state was committed: {e}"));
    let nets: Vec<&Network> = s
        .networks
        .values()
        .filter(|n| n.tenant_name == "red")
        .collect();
    assert_eq!(nets.len(), ok);
    assert!(
        (15..=30).contains(&ok),
        "{ok} networks: at most one per tag, and every refusal was a collision"
    );
    let subnets: BTreeSet<_> = nets.iter().map(|n| n.subnet.net).collect();
    assert_eq!(subnets.len(), ok);
    for r in &replicas[1..] {
        assert_eq!(r.load().await.unwrap().0, s);
    }
}

async fn endpoints_anywhere_keep_their_network(a: Intent, b: Intent) {
    a.put(tenant("green")).await.unwrap();
    a.put(network("green", "web", "10.9.0.0/24", 0))
        .await
        .unwrap();
    // An endpoint as netmaster's gRPC service stores it, written by "another replica".
    let ep = json!({"endpointId": "e1", "container": "c", "host": "h", "tenantName": "green",
                    "networkName": "web", "interfaceName": "eth0", "mac": "02:00:0a:09:00:02",
                    "ipv4": "10.9.0.2"});
    b.store()
        .put(b"/weft/endpoints/e1", ep.to_string().as_bytes())
        .await
        .unwrap();
    let e = a.delete(Kind::Network, "green:web").await.unwrap_err();
    assert!(matches!(e, IntentError::Conflict(_)), "{e}");
    assert_eq!(
        e.to_string(),
        "network \"green:web\": networkName: still has endpoints; remove them first"
    );
    b.store()
        .txn(
            vec![],
            vec![weft_controller::store::Op::Delete(
                b"/weft/endpoints/e1".to_vec(),
            )],
            vec![],
        )
        .await
        .unwrap();
    a.delete(Kind::Network, "green:web").await.unwrap();
    assert!(b
        .read(|s| !s.networks.contains_key("green:web"))
        .await
        .unwrap());
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_on_one_etcd() {
    let etcd = Etcd::start();
    let stores = etcd_stores(&etcd, 3).await;
    let r: Vec<Intent> = stores.into_iter().map(Intent::new).collect();
    replicas_see_each_others_changes_at_once(r[0].clone(), r[1].clone()).await;
    racing_replicas_never_leave_an_invalid_state(r.clone()).await;
    endpoints_anywhere_keep_their_network(r[1].clone(), r[2].clone()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_on_one_embedded_store() {
    let dir = TempDir::new("weft-replicas-");
    let store = Store::Embedded(Embedded::open(dir.path()).await.unwrap());
    let r: Vec<Intent> = (0..3).map(|_| Intent::new(store.clone())).collect();
    replicas_see_each_others_changes_at_once(r[0].clone(), r[1].clone()).await;
    racing_replicas_never_leave_an_invalid_state(r.clone()).await;
    endpoints_anywhere_keep_their_network(r[1].clone(), r[2].clone()).await;
}
