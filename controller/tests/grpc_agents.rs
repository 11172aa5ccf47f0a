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
        serde_json::from_slice::<weft_api::Endpoint>(&r.endpoint_json).unwrap()
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

#[tokio::test(flavor = "multi_thread")]
async fn watch_gives_a_snapshot_then_changes_and_resumes_without_gaps() {
    let (nm, mut c) = netmaster().await;
    apply(&nm, serde_json::from_str(SPEC).unwrap()).await;
    let mut w = c
        .watch(pb::WatchRequest {
            host: "h1".into(),
            from_revision: 0,
        })
        .await
        .unwrap()
        .into_inner();
    let mut snapshot = Vec::new();
    let end = loop {
        let e = next(&mut w).await;
        if e.kind == pb::watch_event::Kind::SnapshotEnd as i32 {
            break e.revision;
        }
        snapshot.push((e.object_kind, e.key));
    };
    assert!(
        snapshot.contains(&("network".into(), "blue:web".into())),
        "{snapshot:?}"
    );
    assert!(snapshot.contains(&("tenant".into(), "blue".into())));
    // A node registers: the watch sees it.
    let reg = c
        .register_node(pb::RegisterNodeRequest {
            name: "h1".into(),
            vtep_ip: "192.0.2.10".into(),
            uplink: "eth1".into(),
            lease_ttl_seconds: 2,
        })
        .await
        .unwrap()
        .into_inner();
    let e = next(&mut w).await;
    assert_eq!(
        (e.object_kind.as_str(), e.key.as_str(), e.kind),
        ("node", "h1", pb::watch_event::Kind::Put as i32)
    );
    assert!(e.revision > end);
    let last_seen = e.revision;
    drop(w);
    // While nobody watches: an endpoint, and the node's lease lapses.
    c.allocate_endpoint(alloc_req("a", "")).await.unwrap();
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
    // Resume after the last revision seen: exactly what happened, in order.
    let mut w = c
        .watch(pb::WatchRequest {
            host: "h1".into(),
            from_revision: last_seen + 1,
        })
        .await
        .unwrap()
        .into_inner();
    let e1 = next(&mut w).await;
    assert_eq!(
        (e1.object_kind.as_str(), e1.key.as_str()),
        ("endpoint", "a")
    );
    let e2 = next(&mut w).await;
    assert_eq!(
        (e2.object_kind.as_str(), e2.key.as_str(), e2.kind),
        ("node", "h1", pb::watch_event::Kind::Delete as i32)
    );
    assert!(e1.revision > last_seen && e2.revision > e1.revision);
    assert!(
        timeout(Duration::from_millis(300), w.message())
            .await
            .is_err(),
        "nothing more, nothing repeated"
    );
}
