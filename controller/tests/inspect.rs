//! netmaster's inspect routes against fake netplugins: small axum servers in this test that
//! serve canned `api::inspect` JSON, registered as nodes with their `inspect` address. A trace
//! stitched across two hosts, flows and verdicts gathered, Contiv's inspect shape, the matrix
//! route, and the failures: an unknown host, a netplugin that refuses or never answers, bad input.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{RawQuery, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use reqwest::StatusCode;
use serde_json::{json, Value};
use testsupport::TempDir;
use weft_api::inspect::*;
use weft_api::proto::agent as pb;
use weft_api::proto::agent::agent_service_client::AgentServiceClient;
use weft_controller::server::{local_config, spawn, Running};

const SPEC: &str = r#"{
  "tenants": [{"tenantName": "blue"}, {"tenantName": "red"}],
  "networks": [
    {"tenantName": "blue", "networkName": "web", "encap": "vxlan", "subnet": "10.1.0.0/24", "gateway": "10.1.0.1"},
    {"tenantName": "blue", "networkName": "db", "encap": "vxlan", "subnet": "10.2.0.0/24", "gateway": "10.2.0.1"},
    {"tenantName": "red", "networkName": "web", "encap": "vxlan", "subnet": "10.1.0.0/24", "gateway": "10.1.0.1"}
  ],
  "netprofiles": [{"tenantName": "blue", "profileName": "slow", "bandwidth": "10Mbps"}],
  "policies": [{"tenantName": "blue", "policyName": "db-in"}],
  "rules": [{"tenantName": "blue", "policyName": "db-in", "ruleId": "pg", "direction": "in",
             "fromEndpointGroup": "web", "protocol": "tcp", "port": 5432, "action": "allow"}],
  "endpointGroups": [
    {"tenantName": "blue", "groupName": "web", "networkName": "web", "netProfile": "slow"},
    {"tenantName": "blue", "groupName": "db", "networkName": "db", "policies": ["db-in"], "defaultDeny": true}
  ]
}"#;

const H1_VTEP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 11);
const H2_VTEP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 12);

type Tracer = Arc<dyn Fn(&HostTraceRequest) -> HostTrace + Send + Sync>;

/// A fake netplugin's inspect API; it remembers what it was asked.
#[derive(Clone)]
struct Fake {
    host: String,
    tracer: Tracer,
    traces: Arc<Mutex<Vec<HostTraceRequest>>>,
    queries: Arc<Mutex<Vec<String>>>,
    verdicts: Vec<VerdictRecord>,
}

async fn fake_flows(State(f): State<Fake>, RawQuery(q): RawQuery) -> Json<Vec<FlowView>> {
    let q = q.unwrap_or_default();
    f.queries.lock().unwrap().push(q.clone());
    Json(vec![FlowView {
        table: 0,
        table_name: "classifier".into(),
        priority: 100,
        cookie: 1,
        owner: Some(format!("endpoint on {}", f.host)),
        matches: format!("query {q}"),
        actions: "goto_table:10".into(),
        packets: 3,
        bytes: 180,
    }])
}

async fn fake_trace(
    State(f): State<Fake>,
    Json(r): Json<HostTraceRequest>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    f.traces.lock().unwrap().push(r.clone());
    match r.dport {
        Some(7) => (
            axum::http::StatusCode::NOT_IMPLEMENTED,
            Json(json!({"error": "live traces are not built"})),
        )
            .into_response(),
        Some(9) => (axum::http::StatusCode::INTERNAL_SERVER_ERROR, "it broke").into_response(),
        Some(11) => Json(json!({"not": "a trace"})).into_response(),
        _ => Json((f.tracer)(&r)).into_response(),
    }
}

async fn fake_verdicts(State(f): State<Fake>, RawQuery(q): RawQuery) -> Json<Vec<VerdictRecord>> {
    f.queries.lock().unwrap().push(q.unwrap_or_default());
    Json(f.verdicts.clone())
}

async fn serve_fake(f: Fake) -> SocketAddr {
    let app = Router::new()
        .route("/inspect/flows", get(fake_flows))
        .route("/inspect/trace", post(fake_trace))
        .route("/inspect/verdicts", get(fake_verdicts))
        .with_state(f);
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await });
    addr
}

/// A netplugin that accepts connections and never answers.
async fn silent() -> SocketAddr {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = vec![];
        while let Ok((s, _)) = l.accept().await {
            held.push(s);
        }
    });
    addr
}

/// An address where nothing listens.
fn closed() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn step(table: u8, name: &str, owner: &str) -> TraceStep {
    TraceStep {
        table,
        table_name: name.into(),
        priority: 100,
        cookie: 7,
        owner: Some(owner.into()),
        flow: "ip".into(),
        notes: vec![],
    }
}

fn verdict(host: &str, seq: u64, time_ms: u64) -> VerdictRecord {
    VerdictRecord {
        seq,
        time_ms,
        host: host.into(),
        tenant: "blue".into(),
        policy: "db-in".into(),
        rule: "pg".into(),
        verdict: "allow".into(),
        src: "10.1.0.2".parse().unwrap(),
        dst: "10.2.0.2".parse().unwrap(),
        proto: 6,
        dport: Some(5432),
    }
}

struct Cluster {
    base: String,
    http: reqwest::Client,
    grpc: AgentServiceClient<tonic::transport::Channel>,
    h1: Fake,
    h2: Fake,
    _running: Running,
    _dir: TempDir,
}

impl Cluster {
    async fn get(&self, path: &str) -> (StatusCode, Value) {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap();
        let s = r.status();
        (
            s,
            serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null),
        )
    }
    async fn post(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        let s = r.status();
        (
            s,
            serde_json::from_str(&r.text().await.unwrap()).unwrap_or(Value::Null),
        )
    }
    async fn register(&mut self, name: &str, vtep: Ipv4Addr, inspect: String) {
        self.grpc
            .register_node(pb::RegisterNodeRequest {
                name: name.into(),
                vtep_ip: vtep.to_string(),
                uplink: String::new(),
                lease_ttl_seconds: 300,
                inspect,
            })
            .await
            .unwrap();
    }
    async fn endpoint(&mut self, id: &str, network: &str, group: &str, host: &str) {
        self.grpc
            .allocate_endpoint(pb::AllocateEndpointRequest {
                endpoint_id: id.into(),
                tenant: "blue".into(),
                network: network.into(),
                group: group.into(),
                host: host.into(),
                container: id.into(),
                interface_name: "eth0".into(),
                ..Default::default()
            })
            .await
            .unwrap();
    }
}

/// h1 sends what is for db-1 (10.2.0.2) into the tunnel to h2 and delivers to web-2 itself; h2
/// delivers db-1 on Postgres and drops the rest by db's default deny.
async fn cluster() -> Cluster {
    let dir = TempDir::new("weft-nm-inspect-");
    let running = spawn(local_config(dir.path())).await.unwrap();
    let base = format!("http://{}", running.bound.rest);
    let grpc = AgentServiceClient::connect(format!("http://{}", running.bound.grpc))
        .await
        .unwrap();
    let h1 = Fake {
        host: "h1".into(),
        tracer: Arc::new(|r| HostTrace {
            host: "h1".into(),
            steps: vec![step(0, "classifier", "endpoint web-1")],
            outcomes: vec![if r.dst_ip == IpAddr::from([10, 2, 0, 2]) {
                Outcome::Tunnel {
                    tun_id: 5000,
                    remote_vtep: H2_VTEP,
                }
            } else if r.dst_ip == IpAddr::from([10, 9, 9, 9]) {
                Outcome::Tunnel {
                    tun_id: 5000,
                    remote_vtep: Ipv4Addr::new(192, 0, 2, 99),
                }
            } else {
                Outcome::Delivered {
                    endpoint: "web-2".into(),
                }
            }],
            observed: r.live,
        }),
        traces: Arc::default(),
        queries: Arc::default(),
        verdicts: vec![verdict("h1", 1, 1000), verdict("h1", 2, 3000)],
    };
    let h2 = Fake {
        host: "h2".into(),
        tracer: Arc::new(|r| {
            if r.dport == Some(5432) {
                HostTrace {
                    host: "h2".into(),
                    steps: vec![
                        step(50, "l2-forward", "endpoint db-1"),
                        step(63, "ingress-rules", "rule blue:db-in:pg"),
                    ],
                    outcomes: vec![Outcome::Delivered {
                        endpoint: "db-1".into(),
                    }],
                    observed: false,
                }
            } else if r.dport == Some(6000) {
                // A logged deny: the drop, and the copy for the verdict log.
                HostTrace {
                    host: "h2".into(),
                    steps: vec![step(63, "ingress-rules", "rule blue:db-in:no-x11")],
                    outcomes: vec![
                        Outcome::Dropped {
                            by: "rule blue:db-in:no-x11 (deny)".into(),
                        },
                        Outcome::Controller {
                            reason: "verdict logged: rule blue:db-in:no-x11".into(),
                        },
                    ],
                    observed: false,
                }
            } else {
                HostTrace {
                    host: "h2".into(),
                    steps: vec![step(63, "ingress-rules", "group blue:db")],
                    outcomes: vec![Outcome::Dropped {
                        by: "group blue:db default deny".into(),
                    }],
                    observed: false,
                }
            }
        }),
        traces: Arc::default(),
        queries: Arc::default(),
        verdicts: vec![verdict("h2", 1, 2000), verdict("h2", 2, 4000)],
    };
    let a1 = serve_fake(h1.clone()).await;
    let a2 = serve_fake(h2.clone()).await;
    let mut c = Cluster {
        base,
        http: reqwest::Client::new(),
        grpc,
        h1,
        h2,
        _running: running,
        _dir: dir,
    };
    let (s, v) = c
        .post("/api/v1/intent", serde_json::from_str(SPEC).unwrap())
        .await;
    assert!(s.is_success(), "{v}");
    c.register("h1", H1_VTEP, a1.to_string()).await;
    c.register("h2", H2_VTEP, a2.to_string()).await;
    c.endpoint("web-1", "web", "web", "h1").await; // 10.1.0.2
    c.endpoint("web-2", "web", "web", "h1").await; // 10.1.0.3
    c.endpoint("db-1", "db", "db", "h2").await; // 10.2.0.2
    c
}

fn error_of(v: &Value) -> &str {
    v["error"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_trace_continues_on_the_host_the_tunnel_leads_to() {
    let c = cluster().await;
    let (s, v) = c
        .post(
            "/api/v1/trace",
            json!({"src": "blue/web-1", "dst": "db-1", "proto": "tcp", "dport": 5432}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let r: TraceReport = serde_json::from_value(v).unwrap();
    assert_eq!(
        r.hops.iter().map(|h| h.host.as_str()).collect::<Vec<_>>(),
        ["h1", "h2"]
    );
    assert_eq!(r.verdict, "delivered");
    assert!(
        r.decided_by.contains("rule blue:db-in:pg"),
        "{}",
        r.decided_by
    );
    let first = c.h1.traces.lock().unwrap()[0].clone();
    assert_eq!(
        first.ingress,
        Ingress::Endpoint {
            endpoint: "web-1".into()
        }
    );
    // Another network of the tenant: the packet is addressed to the gateway's MAC.
    assert_eq!(first.dst_mac, "00:00:11:11:11:11");
    assert_eq!(first.src_mac, "02:00:0a:01:00:02");
    assert_eq!(first.src_ip, IpAddr::from([10, 1, 0, 2]));
    assert_eq!(first.dst_ip, IpAddr::from([10, 2, 0, 2]));
    // Simulated: live traces (arm, inject, collect) are proven on real hosts in
    // systemtests/tests/trace_e2e.rs.
    assert!(!first.live);
    let second = c.h2.traces.lock().unwrap()[0].clone();
    assert_eq!(
        second.ingress,
        Ingress::Tunnel {
            tun_id: 5000,
            from_vtep: H1_VTEP
        }
    );

    // Refused on h2 by the default deny.
    let (s, v) = c
        .post(
            "/api/v1/trace",
            json!({"src": "web-1", "dst": "10.2.0.2", "proto": "tcp", "dport": 80}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["verdict"], "dropped");
    assert_eq!(v["decidedBy"], "group blue:db default deny");

    // A logged deny: decided by the rule, not by the log's copy.
    let (s, v) = c
        .post(
            "/api/v1/trace",
            json!({"src": "web-1", "dst": "db-1", "proto": "tcp", "dport": 6000}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["verdict"], "dropped");
    assert_eq!(v["decidedBy"], "rule blue:db-in:no-x11 (deny)");

    // Same network, same host: one hop, to the destination's own MAC.
    let (s, v) = c
        .post(
            "/api/v1/trace",
            json!({"src": "web-1", "dst": "blue/web-2", "proto": "icmp"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["hops"].as_array().unwrap().len(), 1);
    assert_eq!(v["verdict"], "delivered");
    assert_eq!(
        v["decidedBy"],
        "no rule refused it (delivered to endpoint web-2 on h1)"
    );
    let last = c.h1.traces.lock().unwrap().last().unwrap().clone();
    assert_eq!(last.dst_mac, "02:00:0a:01:00:03");

    // An address of the source's own subnet that no endpoint holds: its ARP gets no answer, the
    // packet never leaves; no host is asked.
    let asked = c.h1.traces.lock().unwrap().len();
    let (s, v) = c
        .post(
            "/api/v1/trace",
            json!({"src": "web-1", "dst": "10.1.0.77", "proto": "icmp"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["verdict"], "dropped");
    assert_eq!(v["hops"], json!([]));
    assert!(
        v["decidedBy"].as_str().unwrap().contains("no ARP answer"),
        "{v}"
    );
    assert_eq!(c.h1.traces.lock().unwrap().len(), asked);

    // A tunnel to a VTEP no host has ends the trace there, saying so.
    let (s, v) = c
        .post(
            "/api/v1/trace",
            json!({"src": "web-1", "dst": "10.9.9.9", "proto": "icmp"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["verdict"], "dropped");
    assert!(
        v["decidedBy"].as_str().unwrap().contains("192.0.2.99"),
        "{v}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_traces_are_4xx_naming_the_mistake() {
    let c = cluster().await;
    for (body, status, says) in [
        (
            json!({"src": "nobody", "dst": "db-1", "proto": "icmp"}),
            404,
            "src \"nobody\"",
        ),
        (
            json!({"src": "blue/ghost", "dst": "db-1", "proto": "icmp"}),
            404,
            "container ghost",
        ),
        (
            json!({"src": "web-1", "dst": "db-1", "proto": "tcp"}),
            400,
            "dport is required",
        ),
        (
            json!({"src": "web-1", "dst": "not an address", "proto": "icmp"}),
            400,
            "neither an endpoint",
        ),
        (
            json!({"src": "web-1", "dst": "db-1", "proto": "sctp"}),
            400,
            "request body",
        ),
        (json!({"src": "web-1"}), 400, "request body"),
    ] {
        let (s, v) = c.post("/api/v1/trace", body.clone()).await;
        assert_eq!(s.as_u16(), status, "{body}: {v}");
        assert!(error_of(&v).contains(says), "{body}: {v}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn flows_are_proxied_and_failures_name_the_host() {
    let mut c = cluster().await;
    let (s, v) = c
        .get("/api/v1/hosts/h2/flows?network=blue%2Fdb&table=63")
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let flows: Vec<FlowView> = serde_json::from_value(v).unwrap();
    assert_eq!(flows[0].owner.as_deref(), Some("endpoint on h2"));
    assert_eq!(
        c.h2.queries.lock().unwrap().as_slice(),
        ["network=blue%2Fdb&table=63"]
    );

    let (s, v) = c.get("/api/v1/hosts/h9/flows").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(
        error_of(&v).contains("host \"h9\" is not registered"),
        "{v}"
    );
    let (s, v) = c.get("/api/v1/hosts/h1/flows?tabel=1").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(
        error_of(&v).contains("unknown flow filter \"tabel\""),
        "{v}"
    );

    // Nothing listens at h3's address; h4 never answers; h5 has no inspect API.
    c.register("h3", Ipv4Addr::new(192, 0, 2, 13), closed().to_string())
        .await;
    c.register(
        "h4",
        Ipv4Addr::new(192, 0, 2, 14),
        silent().await.to_string(),
    )
    .await;
    c.register("h5", Ipv4Addr::new(192, 0, 2, 15), String::new())
        .await;
    let (s, v) = c.get("/api/v1/hosts/h3/flows").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(
        error_of(&v).contains("host h3: netplugin's inspect API"),
        "{v}"
    );
    let start = Instant::now();
    let (s, v) = c.get("/api/v1/hosts/h4/flows").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(error_of(&v).contains("did not answer within"), "{v}");
    assert!(start.elapsed() < Duration::from_secs(10));
    let (s, v) = c.get("/api/v1/hosts/h5/flows").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(error_of(&v).contains("serves no inspect API"), "{v}");

    // What a netplugin answers with an error: a 501 stays a 501, a broken one is 502.
    for (dport, status, says) in [
        (
            7,
            StatusCode::NOT_IMPLEMENTED,
            "host h1: netplugin answered 501 Not Implemented: live traces are not built",
        ),
        (
            9,
            StatusCode::BAD_GATEWAY,
            "host h1: netplugin answered 500 Internal Server Error: it broke",
        ),
        (
            11,
            StatusCode::BAD_GATEWAY,
            "host h1: netplugin's answer is not what the inspect API promises",
        ),
    ] {
        let (s, v) = c
            .post(
                "/api/v1/trace",
                json!({"src": "web-1", "dst": "db-1", "proto": "tcp", "dport": dport}),
            )
            .await;
        assert_eq!(s, status, "{v}");
        assert!(error_of(&v).starts_with(says), "{v}");
    }

    // A trace whose source host does not answer.
    c.endpoint("web-4", "web", "web", "h4").await;
    let (s, v) = c
        .post(
            "/api/v1/trace",
            json!({"src": "web-4", "dst": "db-1", "proto": "icmp"}),
        )
        .await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(error_of(&v).contains("host h4"), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn verdicts_of_every_host_merge_by_time() {
    let mut c = cluster().await;
    c.register("h3", Ipv4Addr::new(192, 0, 2, 13), closed().to_string())
        .await;
    let r = c
        .http
        .get(format!("{}/api/v1/verdicts?since=1", c.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()
            .get("weft-unreachable-hosts")
            .map(|v| v.to_str().unwrap()),
        Some("h3")
    );
    let all: Vec<VerdictRecord> = r.json().await.unwrap();
    let order: Vec<(String, u64)> = all.iter().map(|v| (v.host.clone(), v.time_ms)).collect();
    assert_eq!(
        order,
        [
            ("h1".to_string(), 1000),
            ("h2".to_string(), 2000),
            ("h1".to_string(), 3000),
            ("h2".to_string(), 4000)
        ]
    );
    assert_eq!(c.h1.queries.lock().unwrap().as_slice(), ["since=1"]);
    let (s, v) = c.get("/api/v1/verdicts?since=yesterday").await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(error_of(&v).contains("since \"yesterday\""), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn contiv_inspect_shows_config_and_oper() {
    let c = cluster().await;
    let (s, v) = c.get("/api/v1/inspect/networks/blue:web/").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["Config"]["networkName"], "web");
    assert_eq!(v["Oper"]["allocatedAddressesCount"], 2);
    assert_eq!(v["Oper"]["allocatedIPAddresses"], "10.1.0.2-10.1.0.3");
    assert_eq!(v["Oper"]["numEndpoints"], 2);
    assert!(v["Oper"]["vni"].as_u64().is_some(), "{v}");
    let eps = v["Oper"]["endpoints"].as_array().unwrap();
    assert_eq!(eps[0]["homingHost"], "h1");
    assert_eq!(eps[0]["ipAddress"][0], "10.1.0.2");
    assert_eq!(eps[0]["macAddress"], "02:00:0a:01:00:02");

    let (s, v) = c.get("/api/v1/inspect/tenants/blue/").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["Oper"]["totalNetworks"], 2);
    assert_eq!(v["Oper"]["totalEPGs"], 2);
    assert_eq!(v["Oper"]["numEndpoints"], 3);
    let (_, v) = c.get("/api/v1/inspect/tenants/red").await;
    assert_eq!(v["Oper"]["numEndpoints"], 0);

    let (_, v) = c.get("/api/v1/inspect/endpointGroups/blue:db/").await;
    assert_eq!(v["Oper"]["numEndpoints"], 1);
    assert_eq!(v["Oper"]["endpoints"][0]["endpointID"], "db-1");
    let (_, v) = c.get("/api/v1/inspect/policys/blue:db-in/").await;
    assert_eq!(v["Oper"]["endpointGroups"], json!(["blue:db"]));
    assert_eq!(v["Oper"]["numEndpoints"], 1);
    let (_, v) = c.get("/api/v1/inspect/netprofiles/blue:slow/").await;
    assert_eq!(v["Oper"]["endpointGroups"], json!(["blue:web"]));
    assert_eq!(v["Oper"]["numEndpoints"], 2);

    let (s, v) = c.get("/api/v1/inspect/networks/blue:nope/").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(error_of(&v).contains("networks \"blue:nope\""), "{v}");
    let (s, v) = c.get("/api/v1/inspect/widgets/x/").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(error_of(&v).contains("no inspect for \"widgets\""), "{v}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_matrix_route_answers_per_tenant() {
    let c = cluster().await;
    let (s, v) = c.get("/api/v1/tenants/blue/matrix").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let cell = |from: &str, to: &str| {
        v["cells"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["from"] == from && c["to"] == to)
            .unwrap()["summary"]
            .clone()
    };
    assert_eq!(cell("web", "db"), "tcp/5432");
    assert_eq!(cell("db", "web"), "none");
    assert_eq!(cell("web", "web"), "any");
    let (s, v) = c.get("/api/v1/tenants/green/matrix").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert!(error_of(&v).contains("tenant \"green\""), "{v}");
}
