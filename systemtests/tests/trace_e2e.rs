//! `netctl trace`'s route end to end (`POST /api/v1/trace` on netmaster, each host's netplugin
//! tracing its part through its inspect API) on two simulated hosts, for the demo's cases:
//! allowed on one host, allowed across hosts, refused by a rule, refused by a default deny, and
//! across tenants (whose subnets overlap). Each trace's verdict is checked against real traffic
//! between the same containers (`nc -z`, ping), and each is traced live too (`live: true`: a
//! real probe, observation flows on each host crossed): the live verdict, deciding rule and
//! hosts must be the simulated trace's, every hop must have seen the probe, and no observation
//! flow may be left on either host.
//!
//! Needs netplugin's inspect API (branch `agent17`) and the harness giving each simulated host's
//! agent an inspect address (`inspect_listen: Some(SocketAddr::new(v.into(), 0))` in
//! `Cluster::add_host`, `systemtests/src/lib.rs`); without them netmaster answers 503 ("its
//! netplugin serves no inspect API") for every trace and this test fails. With both (a trial
//! merge of agent17 and that one line) it passed, in 12 s.

use std::time::Duration;

use serde_json::{json, Value};
use systemtests::{eventually, reaches, tcp_connects, Cluster, Listener};
use testsupport::Netns;

const SPEC: &str = r#"{
  "tenants": [{"tenantName": "red"}, {"tenantName": "green"}],
  "networks": [
    {"tenantName": "red", "networkName": "net", "encap": "vxlan", "subnet": "10.40.0.0/24", "gateway": "10.40.0.1"},
    {"tenantName": "green", "networkName": "net", "encap": "vxlan", "subnet": "10.40.0.0/24", "gateway": "10.40.0.1"}
  ],
  "policies": [{"tenantName": "red", "policyName": "db-in"}, {"tenantName": "red", "policyName": "app-in"}],
  "rules": [
    {"tenantName": "red", "policyName": "db-in", "ruleId": "pg", "direction": "in",
     "fromEndpointGroup": "web", "protocol": "tcp", "port": 5432, "action": "allow"},
    {"tenantName": "red", "policyName": "db-in", "ruleId": "ping", "direction": "in",
     "fromEndpointGroup": "web", "protocol": "icmp", "action": "allow"},
    {"tenantName": "red", "policyName": "app-in", "ruleId": "no-ssh", "direction": "in",
     "protocol": "tcp", "port": 22, "action": "deny"}
  ],
  "endpointGroups": [
    {"tenantName": "red", "groupName": "web", "networkName": "net"},
    {"tenantName": "red", "groupName": "db", "networkName": "net", "policies": ["db-in"], "defaultDeny": true},
    {"tenantName": "red", "groupName": "app", "networkName": "net", "policies": ["app-in"]}
  ]
}"#;

fn trace(cluster: &Cluster, body: Value) -> Value {
    let url = format!("{}/api/v1/trace", cluster.rest);
    let (status, text) = cluster.on_fabric(move || async move {
        let r = reqwest::Client::new()
            .post(url)
            .json(&body)
            .send()
            .await
            .expect("netmaster answers");
        (r.status(), r.text().await.unwrap_or_default())
    });
    assert!(status.is_success(), "trace refused: {status} {text}");
    serde_json::from_str(&text).expect("a TraceReport")
}

#[test]
fn traces_agree_with_real_traffic() {
    let cluster = Cluster::new(2);
    cluster.apply(SPEC);
    let rt = tokio::runtime::Runtime::new().unwrap();
    // (container, host, tenant, group, address)
    let layout = [
        ("web1", 0, "red", "web", "10.40.0.10"),
        ("db1", 0, "red", "db", "10.40.0.11"),
        ("db2", 1, "red", "db", "10.40.0.12"),
        ("app1", 1, "red", "app", "10.40.0.13"),
        ("g1", 1, "green", "", "10.40.0.20"),
    ];
    let mut ns = std::collections::HashMap::new();
    let mut listeners = vec![];
    for (name, host, tenant, group, ip) in layout {
        let n = Netns::new();
        rt.block_on(cluster.hosts[host].attach_in_group(&n, name, tenant, "net", group, ip))
            .unwrap_or_else(|e| panic!("attach {name}: {e}"));
        for p in [22, 80, 5432] {
            listeners.push(Listener::tcp(&n, p));
        }
        ns.insert(name, n);
    }
    let web1 = &ns["web1"];

    // Real traffic first: what is allowed gets through once the agents have the intent.
    let wait = Duration::from_secs(20);
    assert!(
        eventually(wait, || tcp_connects(web1, "10.40.0.11", 5432)),
        "web1 → db1:5432 (same host)"
    );
    assert!(
        eventually(wait, || tcp_connects(web1, "10.40.0.12", 5432)),
        "web1 → db2:5432 (across hosts)"
    );
    assert!(
        eventually(wait, || tcp_connects(web1, "10.40.0.13", 80)),
        "web1 → app1:80 (the control of the next)"
    );
    assert!(
        !tcp_connects(web1, "10.40.0.13", 22),
        "web1 → app1:22 is refused by rule no-ssh"
    );
    assert!(
        !tcp_connects(web1, "10.40.0.12", 80),
        "web1 → db2:80 is refused by db's default deny"
    );
    assert!(
        !reaches(web1, "10.40.0.20", 2),
        "web1 (red) → g1 (green) never"
    );
    assert!(
        reaches(&ns["g1"], "10.40.0.20", 1),
        "g1 answers on its own address (control)"
    );

    // The traces say the same, and why.
    let cases = [
        (
            json!({"src": "red/web1", "dst": "red/db1", "proto": "tcp", "dport": 5432}),
            "delivered",
            "rule red:db-in:pg",
            1,
        ),
        (
            json!({"src": "red/web1", "dst": "red/db2", "proto": "tcp", "dport": 5432}),
            "delivered",
            "rule red:db-in:pg",
            2,
        ),
        (
            json!({"src": "red/web1", "dst": "red/app1", "proto": "tcp", "dport": 22}),
            "dropped",
            "no-ssh",
            2,
        ),
        (
            json!({"src": "red/web1", "dst": "10.40.0.12", "proto": "tcp", "dport": 80}),
            "dropped",
            "red:db",
            2,
        ),
        // g1 is green's: in red's network nobody holds 10.40.0.20, so web1's ARP goes unanswered.
        (
            json!({"src": "red/web1", "dst": "green/g1", "proto": "icmp"}),
            "dropped",
            "no ARP answer",
            0,
        ),
        // Off red's subnet (no network has it): to the gateway, routed within red, dropped there.
        (
            json!({"src": "red/web1", "dst": "10.41.0.20", "proto": "icmp"}),
            "dropped",
            "",
            0,
        ),
    ];
    for (req, verdict, by, hops) in cases {
        let r = trace(&cluster, req.clone());
        assert_eq!(r["verdict"], verdict, "{req}: {r:#}");
        let decided = r["decidedBy"].as_str().unwrap_or_default();
        assert!(
            decided.contains(by),
            "{req}: decided by {decided}, expected {by}: {r:#}"
        );
        if hops > 0 {
            assert_eq!(
                r["hops"].as_array().map(Vec::len),
                Some(hops),
                "{req}: {r:#}"
            );
        }
        // Live: a real probe, observed on each host it crosses, says the same: the verdict,
        // the deciding rule (a drop named by the flow that dropped it on the switch) and the
        // hosts, each of which saw it.
        let mut live_req = req.clone();
        live_req["live"] = json!(true);
        let l = trace(&cluster, live_req);
        assert_eq!(l["verdict"], r["verdict"], "live {req}: {l:#}");
        assert_eq!(l["decidedBy"], r["decidedBy"], "live {req}: {l:#}");
        let hosts = |t: &Value| -> Vec<String> {
            t["hops"]
                .as_array()
                .map(|h| h.iter().map(|h| h["host"].to_string()).collect())
                .unwrap_or_default()
        };
        assert_eq!(hosts(&l), hosts(&r), "live {req}: {l:#}");
        for h in l["hops"].as_array().into_iter().flatten() {
            assert_eq!(
                h["observed"], true,
                "live {req}: every hop saw the probe: {l:#}"
            );
        }
    }
    // The observation flows are gone from both hosts (netmaster collected them).
    for host in cluster.hosts.iter().map(|h| h.name.clone()) {
        let url = format!("{}/api/v1/hosts/{host}/flows", cluster.rest);
        let flows: Value = cluster.on_fabric(move || async move {
            reqwest::get(url)
                .await
                .expect("netmaster answers")
                .json()
                .await
                .expect("flows")
        });
        let left: Vec<&Value> = flows
            .as_array()
            .expect("flows")
            .iter()
            .filter(|f| f["cookie"].as_u64().is_some_and(|c| c >> 56 == 8))
            .collect();
        assert!(left.is_empty(), "{host}: observation flows left: {left:#?}");
    }

    // The policy matrix says the same of the groups.
    let url = format!("{}/api/v1/tenants/red/matrix", cluster.rest);
    let m: Value = cluster.on_fabric(move || async move {
        reqwest::get(url)
            .await
            .expect("netmaster answers")
            .json()
            .await
            .expect("a matrix")
    });
    let cell = |from: &str, to: &str| {
        m["cells"]
            .as_array()
            .expect("cells")
            .iter()
            .find(|c| c["from"] == from && c["to"] == to)
            .map(|c| c["summary"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    };
    assert_eq!(cell("web", "db"), "tcp/5432, icmp", "{m:#}");
    assert_eq!(
        cell("web", "app"),
        "tcp/0-21, tcp/23-65535, udp, icmp, other protocols",
        "{m:#}"
    );
    assert_eq!(cell("db", "web"), "none", "{m:#}");
    assert!(
        !tcp_connects(&ns["db1"], "10.40.0.10", 80),
        "db1 (default deny) starts nothing"
    );
    drop(listeners);
}
