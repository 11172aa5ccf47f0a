//! The agents' gRPC service against a live in-process netmaster: nodes under leases, endpoint
//! allocation (idempotent, static, release), and the watch: snapshot, changes, resume.

use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::json;
use testsupport::TempDir;
use tokio::time::timeout;
use tonic::Code;
use weft_api::proto::agent as pb;
use weft_api::proto::agent::agent_service_client::AgentServiceClient;
use weft_controller::server::{local_config, spawn, Bound, Running};

struct Netmaster {
    bound: Bound,
    _running: Running,
    _dir: TempDir,
}

async fn netmaster() -> (Netmaster, AgentServiceClient<tonic::transport::Channel>) {
    let dir = TempDir::new("weft-nm-");
    let running = spawn(local_config(dir.path())).await.unwrap();
    let bound = running.bound;
    let client = AgentServiceClient::connect(format!("http://{}", bound.grpc))
        .await
        .unwrap();
    (
        Netmaster {
            bound,
            _running: running,
            _dir: dir,
        },
        client,
    )
}

async fn apply(nm: &Netmaster, spec: serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("http://{}/api/v1/intent", nm.bound.rest))
        .json(&spec)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

fn alloc_req(id: &str, ip: &str) -> pb::AllocateEndpointRequest {
    pb::AllocateEndpointRequest {
        endpoint_id: id.into(),
        tenant: "blue".into(),
        network: "web".into(),
        host: "h1".into(),
        container: format!("c-{id}"),
        interface_name: "eth0".into(),
        requested_ipv4: ip.into(),
        ..Default::default()
    }
}

async fn next(s: &mut tonic::Streaming<pb::WatchEvent>) -> pb::WatchEvent {
    timeout(Duration::from_secs(10), s.message())
        .await
        .expect("event within 10 s")
        .unwrap()
        .expect("stream open")
}

const SPEC: &str = r#"{"tenants": [{"tenantName": "blue"}],
  "networks": [{"tenantName": "blue", "networkName": "web", "subnet": "10.7.0.0/29", "gateway": "10.7.0.1"}]}"#;

#[tokio::test(flavor = "multi_thread")]
async fn endpoints_are_allocated_idempotently_and_released() {
    let (nm, mut c) = netmaster().await;
    apply(&nm, serde_json::from_str(SPEC).unwrap()).await;
    let ep = |r: pb::AllocateEndpointReply| {
        assert_eq!(r.network.as_ref().unwrap().network_name, "web");
        assert!(r.revision > 0);
        weft_api::watch::endpoint_from(&r.endpoint.unwrap()).unwrap()
    };
    let a = ep(c
        .allocate_endpoint(alloc_req("a", ""))
        .await
        .unwrap()
        .into_inner());
    assert_eq!(
        a.ipv4,
        Ipv4Addr::new(10, 7, 0, 2),
        "first usable address after the gateway"
    );
    assert_eq!(a.mac, "02:00:0a:07:00:02");
    let again = ep(c
        .allocate_endpoint(alloc_req("a", ""))
        .await
        .unwrap()
        .into_inner());
    assert_eq!(again, a, "asking twice gives the same endpoint");
    let b = ep(c
        .allocate_endpoint(alloc_req("b", "10.7.0.5"))
        .await
        .unwrap()
        .into_inner());
    assert_eq!(b.ipv4, Ipv4Addr::new(10, 7, 0, 5));
    let taken = c
        .allocate_endpoint(alloc_req("c", "10.7.0.5"))
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists);
    assert!(
        taken.message().contains("already used by b"),
        "{}",
        taken.message()
    );
    let mut bad = alloc_req("d", "");
    bad.network = "nope".into();
    assert_eq!(
        c.allocate_endpoint(bad).await.unwrap_err().code(),
        Code::NotFound
    );
    // Release frees the address; releasing what is gone succeeds.
    assert!(
        c.release_endpoint(pb::ReleaseEndpointRequest {
            endpoint_id: "b".into()
        })
        .await
        .unwrap()
        .into_inner()
        .existed
    );
    assert!(
        !c.release_endpoint(pb::ReleaseEndpointRequest {
            endpoint_id: "b".into()
        })
        .await
        .unwrap()
        .into_inner()
        .existed
    );
    let c2 = ep(c
        .allocate_endpoint(alloc_req("c", "10.7.0.5"))
        .await
        .unwrap()
        .into_inner());
    assert_eq!(c2.ipv4, Ipv4Addr::new(10, 7, 0, 5));
    // A network with endpoints cannot be removed.
    let r = reqwest::Client::new()
        .post(format!("http://{}/api/v1/intent?prune=true", nm.bound.rest))
        .json(&json!({"tenants": [{"tenantName": "blue"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), reqwest::StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("still has endpoints"));
}

/// An event as text: "put kind/key", "delete kind/key", "drop unit", "synced".
fn show(e: &pb::WatchEvent) -> String {
    use pb::watch_event::Event;
    match e.event.as_ref().expect("an event") {
        Event::Put(o) => {
            let o = weft_api::watch::Object::from_proto(o).unwrap();
            format!("put {}/{}", o.kind(), o.key())
        }
        Event::Delete(r) => {
            let k = pb::ObjectKind::try_from(r.kind)
                .ok()
                .and_then(weft_api::watch::Kind::from_proto)
                .unwrap();
            format!("delete {k}/{}", r.key)
        }
        Event::Drop(d) => format!("drop {}", d.unit),
        Event::Synced(_) => "synced".into(),
    }
}

/// Events up to and including the next SYNCED, as text; and SYNCED's revision.
async fn until_synced(w: &mut tonic::Streaming<pb::WatchEvent>) -> (Vec<String>, i64) {
    let mut out = vec![];
    loop {
        let e = next(w).await;
        let s = show(&e);
        if s == "synced" {
            return (out, e.revision);
        }
        out.push(s);
    }
}

async fn watch(
    c: &mut AgentServiceClient<tonic::transport::Channel>,
    host: &str,
    from: i64,
    held: Vec<pb::HeldUnit>,
) -> tonic::Streaming<pb::WatchEvent> {
    c.watch(pb::WatchRequest {
        host: host.into(),
        from_revision: from,
        held,
    })
    .await
    .unwrap()
    .into_inner()
}

/// What an agent holds, for resuming: its units' digests, kept as it applies events.
#[derive(Default)]
struct Held(std::collections::HashMap<String, (u64, std::collections::HashSet<String>)>);

impl Held {
    fn apply(&mut self, e: &pb::WatchEvent) {
        use pb::watch_event::Event;
        match e.event.as_ref().unwrap() {
            Event::Put(o) => {
                let o = weft_api::watch::Object::from_proto(o).unwrap();
                let u = self.0.entry(o.unit()).or_default();
                if u.1.insert(format!("{}/{}", o.kind(), o.key())) {
                    u.0 ^= weft_api::watch::digest_of(o.kind(), &o.key());
                }
            }
            Event::Delete(r) => {
                let k = pb::ObjectKind::try_from(r.kind)
                    .ok()
                    .and_then(weft_api::watch::Kind::from_proto)
                    .unwrap();
                for u in self.0.values_mut() {
                    if u.1.remove(&format!("{k}/{}", r.key)) {
                        u.0 ^= weft_api::watch::digest_of(k, &r.key);
                    }
                }
            }
            Event::Drop(d) => {
                self.0.remove(&d.unit);
            }
            Event::Synced(_) => {}
        }
    }
    fn units(&self) -> Vec<pb::HeldUnit> {
        self.0
            .iter()
            .map(|(u, (d, _))| pb::HeldUnit {
                unit: u.clone(),
                digest: *d,
            })
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_host_receives_a_tenant_with_its_first_endpoint_there_and_loses_it_with_its_last() {
    let (nm, mut c) = netmaster().await;
    apply(&nm, serde_json::from_str(SPEC).unwrap()).await;
    // h2 has no endpoint: the tenant's name, nothing of its networks.
    let mut w2 = watch(&mut c, "h2", 0, vec![]).await;
    let (snap, _) = until_synced(&mut w2).await;
    assert_eq!(snap, ["put tenant/blue"]);
    // An endpoint on h1: h2 hears nothing of it.
    c.allocate_endpoint(alloc_req("a", "")).await.unwrap();
    assert!(
        timeout(Duration::from_millis(300), w2.message())
            .await
            .is_err(),
        "h2 receives nothing about a network it has no endpoint on"
    );
    // Its first endpoint of blue brings blue's network, groups and endpoints (on every host).
    let mut on_h2 = alloc_req("b", "");
    on_h2.host = "h2".into();
    c.allocate_endpoint(on_h2).await.unwrap();
    let mut got = vec![show(&next(&mut w2).await)];
    while got.len() < 3 {
        got.push(show(&next(&mut w2).await));
    }
    got.sort();
    assert_eq!(
        got,
        ["put endpoint/a", "put endpoint/b", "put network/blue:web"]
    );
    // Its last endpoint gone: the endpoint's delete, then the network's unit dropped.
    c.release_endpoint(pb::ReleaseEndpointRequest {
        endpoint_id: "b".into(),
    })
    .await
    .unwrap();
    assert_eq!(show(&next(&mut w2).await), "delete endpoint/b");
    // (the rule goes with the tenant's unit)
    let mut dropped = vec![show(&next(&mut w2).await), show(&next(&mut w2).await)];
    dropped.sort();
    assert_eq!(dropped, ["drop net/blue:web", "drop tenant/blue"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn watch_gives_a_snapshot_then_changes_and_resumes_without_gaps() {
    let (nm, mut c) = netmaster().await;
    apply(&nm, serde_json::from_str(SPEC).unwrap()).await;
    c.allocate_endpoint(alloc_req("a", "")).await.unwrap();
    let mut held = Held::default();
    let mut w = watch(&mut c, "h1", 0, vec![]).await;
    let mut snapshot = Vec::new();
    let end = loop {
        let e = next(&mut w).await;
        held.apply(&e);
        if show(&e) == "synced" {
            break e.revision;
        }
        snapshot.push(show(&e));
    };
    for want in ["put network/blue:web", "put tenant/blue", "put endpoint/a"] {
        assert!(snapshot.contains(&want.to_string()), "{snapshot:?}");
    }
    // A node registers: the watch sees it.
    let reg = c
        .register_node(pb::RegisterNodeRequest {
            name: "h1".into(),
            vtep_ip: "192.0.2.10".into(),
            uplink: "eth1".into(),
            lease_ttl_seconds: 2,
            inspect: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let e = next(&mut w).await;
    held.apply(&e);
    assert_eq!(show(&e), "put node/h1");
    assert!(e.revision > end);
    let last_seen = e.revision;
    drop(w);
    // While nobody watches: an endpoint added, and the node's lease lapses.
    c.allocate_endpoint(alloc_req("b", "")).await.unwrap();
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(
        c.keep_alive(pb::KeepAliveRequest {
            lease_id: reg.lease_id
        })
        .await
        .unwrap_err()
        .code(),
        Code::NotFound
    );
    // Resume after the last revision seen, with the units held: the new endpoint; the node's
    // unit (cluster) lost a key, so it comes again whole after a drop; nothing else.
    let mut w = watch(&mut c, "h1", last_seen, held.units()).await;
    let (got, rev) = until_synced(&mut w).await;
    assert_eq!(
        got,
        ["drop cluster", "put tenant/blue", "put endpoint/b"],
        "exactly what changed"
    );
    assert!(rev > last_seen);
    // A fresh snapshot's units, resumed at its revision with nothing changed: only SYNCED.
    let mut held2 = Held::default();
    let mut w = watch(&mut c, "h1", 0, vec![]).await;
    loop {
        let e = next(&mut w).await;
        held2.apply(&e);
        if show(&e) == "synced" {
            break;
        }
    }
    drop(w);
    let mut w = watch(&mut c, "h1", rev, held2.units()).await;
    assert_eq!(until_synced(&mut w).await.0, Vec::<String>::new());
    assert!(
        timeout(Duration::from_millis(300), w.message())
            .await
            .is_err(),
        "nothing more, nothing repeated"
    );
}
