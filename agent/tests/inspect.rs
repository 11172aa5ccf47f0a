//! netplugin's inspect API against a real Open vSwitch and netmaster: the flows of an endpoint
//! as the switch holds them (owners, tables, counters), simulated traces between two local
//! endpoints (allowed, refused by a rule, refused by the default deny), and the policy verdict
//! log with real traffic (one record per connection, a logged deny still drops, a flood of new
//! connections is rate-limited by the verdict meter).

mod common;

use common::{ip_of, runtime_in, Host};
use testsupport::{Netns, Ovs};
use weft_api::inspect::{FlowView, HostTrace, Outcome, VerdictRecord};
use weft_api::proto::endpoint as pb;

const SPEC: &str = r#"{
  "tenants": [ { "tenantName": "blue" } ],
  "networks": [
    { "tenantName": "blue", "networkName": "app", "encap": "vxlan", "pktTag": 5102,
      "subnet": "10.231.8.0/24", "gateway": "10.231.8.1" }
  ],
  "endpointGroups": [
    { "tenantName": "blue", "groupName": "web", "networkName": "app" },
    { "tenantName": "blue", "groupName": "db", "networkName": "app",
      "policies": ["db-in"], "defaultDeny": true, "log": true }
  ],
  "policies": [ { "tenantName": "blue", "policyName": "db-in" } ],
  "rules": [
    { "tenantName": "blue", "policyName": "db-in", "ruleId": "pg", "priority": 10,
      "direction": "in", "fromEndpointGroup": "web", "protocol": "tcp",
      "port": 5432, "action": "allow", "log": true },
    { "tenantName": "blue", "policyName": "db-in", "ruleId": "dns", "priority": 10,
      "direction": "in", "fromEndpointGroup": "web", "protocol": "udp",
      "port": 53, "action": "allow", "log": true },
    { "tenantName": "blue", "policyName": "db-in", "ruleId": "no-ssh", "priority": 20,
      "direction": "in", "fromEndpointGroup": "web", "protocol": "tcp",
      "port": 22, "action": "deny", "log": true },
    { "tenantName": "blue", "policyName": "db-in", "ruleId": "ping", "priority": 10,
      "direction": "in", "fromEndpointGroup": "web", "protocol": "icmp", "action": "allow" }
  ]
}"#;

async fn attach(h: &Host, c: &Netns, id: &str, group: &str) -> pb::Interface {
    h.try_attach(pb::AttachRequest {
        container_id: id.into(),
        netns: c.path().display().to_string(),
        interface_name: "eth0".into(),
        tenant: "blue".into(),
        network: "app".into(),
        group: group.into(),
        ..Default::default()
    })
    .await
    .unwrap()
}

fn base(h: &Host) -> String {
    format!(
        "http://{}",
        h.agent().inspect_addr().expect("the inspect API listens")
    )
}

async fn flows(h: &Host, query: &str) -> Vec<FlowView> {
    let r = reqwest::get(format!("{}/inspect/flows?{query}", base(h)))
        .await
        .unwrap();
    assert!(r.status().is_success(), "{query}: {:?}", r.text().await);
    r.json().await.unwrap()
}

async fn trace(h: &Host, from: &pb::Interface, to: &pb::Interface, dport: u16) -> HostTrace {
    let req = serde_json::json!({
        "ingress": { "kind": "endpoint", "endpoint": from.endpoint_id },
        "srcMac": from.mac, "dstMac": to.mac,
        "srcIp": ip_of(&from.ipv4), "dstIp": ip_of(&to.ipv4),
        "proto": "tcp", "dport": dport,
    });
    let r = reqwest::Client::new()
        .post(format!("{}/inspect/trace", base(h)))
        .json(&req)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{:?}", r.text().await);
    r.json().await.unwrap()
}

async fn live(h: &Host, from: &pb::Interface, to: &pb::Interface, dport: u16) -> reqwest::Response {
    let req = serde_json::json!({
        "ingress": { "kind": "endpoint", "endpoint": from.endpoint_id },
        "srcMac": from.mac, "dstMac": to.mac,
        "srcIp": ip_of(&from.ipv4), "dstIp": ip_of(&to.ipv4),
        "proto": "tcp", "dport": dport, "live": true,
    });
    reqwest::Client::new()
        .post(format!("{}/inspect/trace", base(h)))
        .json(&req)
        .send()
        .await
        .unwrap()
}

async fn verdicts(h: &Host, since: u64) -> Vec<VerdictRecord> {
    reqwest::get(format!("{}/inspect/verdicts?since={since}", base(h)))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[test]
fn flows_of_an_endpoint_and_traces_between_two() {
    let ovs = Ovs::start();
    ovs.add_bridge("br-int");
    let rt = runtime_in(&ovs);
    let (w, d) = (Netns::new(), Netns::new());
    let h = rt.block_on(Host::start(&ovs, SPEC));
    let (wi, di) = rt.block_on(async {
        (
            attach(&h, &w, "w", "web").await,
            attach(&h, &d, "d", "db").await,
        )
    });
    // Some traffic, so that counters move.
    assert!(common::ping(&w, &ip_of(&di.ipv4), 2));

    rt.block_on(async {
        // The node record says where the API is.
        let nodes = reqwest::get(format!("{}/api/v1/inspect/nodes/", h.rest)).await.unwrap().text().await.unwrap();
        let addr = h.agent().inspect_addr().unwrap().to_string();
        assert!(nodes.contains(&addr), "{nodes}");

        // An endpoint's flows: each is its own or matches its port, MAC or address.
        let all = flows(&h, "").await;
        let mine = flows(&h, &format!("endpoint={}", di.endpoint_id)).await;
        assert!(!mine.is_empty() && mine.len() < all.len(), "{} of {}", mine.len(), all.len());
        let owner = format!("endpoint {}", di.endpoint_id);
        let (port, mac, addr) = (format!("in_port={}", di.ofport), di.mac.clone(), ip_of(&di.ipv4));
        for f in &mine {
            assert!(
                f.owner.as_deref() == Some(owner.as_str())
                    || f.matches.contains(&port)
                    || f.matches.contains(&mac)
                    || f.matches.contains(&addr),
                "{f:?}"
            );
        }
        // Its classifier flow, named, with the ping's packets counted.
        let classifier = mine
            .iter()
            .find(|f| f.table == 0 && f.owner.as_deref() == Some(owner.as_str()))
            .unwrap_or_else(|| panic!("{mine:#?}"));
        assert_eq!(classifier.table_name, "classifier");
        assert!(classifier.packets >= 2, "{classifier:?}");
        assert!(classifier.bytes > 0, "{classifier:?}");
        // By table (name or number) and by policy.
        let rules = flows(&h, "table=ingress-rules").await;
        assert!(!rules.is_empty() && rules.iter().all(|f| f.table == 63), "{rules:#?}");
        assert_eq!(rules.len(), flows(&h, "table=63").await.len());
        let pol = flows(&h, "policy=blue/db-in").await;
        assert!(pol.iter().all(|f| f.owner.as_deref().is_some_and(|o| o.starts_with("rule blue:db-in:"))), "{pol:#?}");
        for r in ["pg", "dns", "no-ssh", "ping"] {
            assert!(pol.iter().any(|f| f.owner.as_deref() == Some(&format!("rule blue:db-in:{r}"))), "{r}: {pol:#?}");
        }
        // A logged rule's flow shows the copy to netplugin.
        let pg = pol.iter().find(|f| f.owner.as_deref() == Some("rule blue:db-in:pg")).unwrap();
        assert!(pg.actions.contains("meter_id=65536"), "{pg:?}");
        assert!(flows(&h, "network=blue/app").await.iter().any(|f| f.owner.as_deref() == Some(owner.as_str())));
        let r = reqwest::get(format!("{}/inspect/flows?endpoint=nobody", base(&h))).await.unwrap();
        assert_eq!(r.status(), 400);

        // Traces: allowed by a rule, delivered to d.
        let t = trace(&h, &wi, &di, 5432).await;
        assert!(t.outcomes.contains(&Outcome::Delivered { endpoint: di.endpoint_id.clone() }), "{t:#?}");
        assert!(t.steps.iter().any(|s| s.table == 63 && s.owner.as_deref() == Some("rule blue:db-in:pg")), "{t:#?}");
        assert!(
            t.outcomes.iter().any(|o| matches!(o, Outcome::Controller { reason } if reason.contains("rule blue:db-in:pg"))),
            "the logged rule's copy: {t:#?}"
        );
        assert_eq!(t.steps.first().map(|s| s.table_name.as_str()), Some("classifier"));
        // Refused by a rule, and by the default deny.
        let t = trace(&h, &wi, &di, 22).await;
        assert!(t.outcomes.contains(&Outcome::Dropped { by: "rule blue:db-in:no-ssh (deny)".into() }), "{t:#?}");
        assert!(!t.outcomes.iter().any(|o| matches!(o, Outcome::Delivered { .. })), "{t:#?}");
        let t = trace(&h, &wi, &di, 80).await;
        assert!(t.outcomes.contains(&Outcome::Dropped { by: "group blue:db default deny".into() }), "{t:#?}");
        // web takes anything from db's side? No: db starts nothing (default deny both ways).
        let t = trace(&h, &di, &wi, 80).await;
        assert!(t.outcomes.contains(&Outcome::Dropped { by: "group blue:db default deny".into() }), "{t:#?}");
        // No verdict from traces: they are simulated.
        assert!(verdicts(&h, 0).await.is_empty());
    });
}

/// Whether a TCP connection from `c` to `addr:port` is accepted within 2 s.
fn connects(c: &Netns, addr: &str, port: u16) -> bool {
    c.try_exec(&["nc", "-z", "-w", "2", addr, &port.to_string()])
}

/// Waits (bounded) until the agent has at least `n` records after `since`; returns them.
async fn wait_verdicts(h: &Host, since: u64, n: usize) -> Vec<VerdictRecord> {
    for _ in 0..40 {
        let v = verdicts(h, since).await;
        if v.len() >= n {
            return v;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    verdicts(h, since).await
}

/// `count` UDP datagrams from `c` to `addr:port`, each from a socket of its own (a new source
/// port: a new connection for conntrack), as fast as they go.
fn udp_flood(c: &Netns, addr: &str, port: u16, count: usize) {
    let (path, to) = (c.path(), format!("{addr}:{port}"));
    std::thread::spawn(move || {
        testsupport::setns_net(std::fs::File::open(path).expect("namespace"));
        for _ in 0..count {
            let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
            s.send_to(b"q", &to).unwrap();
        }
    })
    .join()
    .unwrap();
}

#[test]
fn logged_rules_and_default_deny_record_each_connection_once_rate_limited() {
    let ovs = Ovs::start();
    ovs.add_bridge("br-int");
    let rt = runtime_in(&ovs);
    let (w, d) = (Netns::new(), Netns::new());
    // A resync every second: the per-rule counters come from its reads of the switch.
    let h = rt.block_on(Host::start_with(&ovs, SPEC, |c| {
        c.resync_interval = std::time::Duration::from_secs(1)
    }));
    let (wi, di) = rt.block_on(async {
        (
            attach(&h, &w, "w", "web").await,
            attach(&h, &d, "d", "db").await,
        )
    });
    let (wa, da) = (ip_of(&wi.ipv4), ip_of(&di.ipv4));
    let listener = d
        .command(&["nc", "-k", "-l", "-p", "5432"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _listener = Kill(listener);
    std::thread::sleep(std::time::Duration::from_millis(200));
    // The unlogged rule (icmp) records nothing.
    assert!(common::ping(&w, &da, 2));

    // One allowed connection, one record: its first packet only (the rest is established).
    assert!(connects(&w, &da, 5432), "web reaches db:5432");
    let v = rt.block_on(wait_verdicts(&h, 0, 1));
    std::thread::sleep(std::time::Duration::from_millis(500));
    let v2 = rt.block_on(verdicts(&h, 0));
    assert_eq!(v, v2, "more records came later");
    assert_eq!(v.len(), 1, "{v:#?}");
    let r = &v[0];
    assert_eq!(
        (
            r.host.as_str(),
            r.tenant.as_str(),
            r.policy.as_str(),
            r.rule.as_str(),
            r.verdict.as_str()
        ),
        ("host1", "blue", "db-in", "pg", "allow"),
        "{r:?}"
    );
    assert_eq!(
        (r.src.to_string(), r.dst.to_string(), r.proto, r.dport),
        (wa.clone(), da.clone(), 6, Some(5432))
    );
    let last = r.seq;

    // A logged deny still drops; each attempt (SYN and its retries) is a record.
    assert!(!connects(&w, &da, 22), "a logged deny must still drop");
    let v = rt.block_on(wait_verdicts(&h, last, 1));
    assert!(!v.is_empty());
    assert!(
        v.iter()
            .all(|r| r.rule == "no-ssh" && r.verdict == "deny" && r.dport == Some(22)),
        "{v:#?}"
    );
    let last = v.last().unwrap().seq;
    // The default deny, logged, drops too: both ways.
    assert!(!connects(&w, &da, 80), "the default deny must still drop");
    assert!(!connects(&d, &wa, 80), "db starts nothing");
    let v = rt.block_on(wait_verdicts(&h, last, 2));
    assert!(
        v.iter()
            .all(|r| r.policy == "group:db" && r.rule.is_empty() && r.verdict == "deny"),
        "{v:#?}"
    );
    assert!(
        v.iter().any(|r| r.src.to_string() == da),
        "db's own attempt: {v:#?}"
    );
    let last = v.last().unwrap().seq;

    // A flood of new connections: the verdict meter (100/s, burst 20) lets a few through.
    let t = std::time::Instant::now();
    udp_flood(&w, &da, 53, 3000);
    let took = t.elapsed().as_secs_f64();
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let v = rt.block_on(verdicts(&h, last));
    let bound = 20.0 + 100.0 * (took + 1.5) * 1.5;
    assert!(!v.is_empty(), "the flood was not logged at all");
    assert!(
        (v.len() as f64) < bound && v.len() < 3000 / 2,
        "{} records of 3000 new connections in {took:.2} s (bound {bound:.0})",
        v.len()
    );
    assert!(
        v.iter().all(|r| r.rule == "dns" && r.proto == 17),
        "{:?}",
        v.first()
    );
    eprintln!(
        "flood: {} records of 3000 new connections sent in {took:.2} s",
        v.len()
    );

    // Counted by rule and verdict.
    let m = h.agent().metrics().render();
    assert!(
        m.contains(r#"weft_policy_verdicts_total{tenant="blue",policy="db-in",rule="pg",verdict="allow"} 1"#),
        "{m}"
    );
    // The switch's counters per rule (each new connection's first packet met the rule's flow),
    // flows per table, and the times of batches and reconcile steps.
    let metric = |m: &str, name: &str| -> Option<u64> {
        m.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
    };
    // What the switch itself says the dns rule's flows matched (its only flow: table 63, udp
    // port 53); the metric, from the resync's read, must come to the same.
    let switch_count = || -> u64 {
        ovs.ofctl("dump-flows", "br-int", &["table=63,udp,tp_dst=53"])
            .lines()
            .filter_map(|l| l.split("n_packets=").nth(1))
            .filter_map(|v| v.split(',').next()?.parse::<u64>().ok())
            .sum()
    };
    let dns = r#"weft_netplugin_rule_packets{tenant="blue",policy="db-in",rule="dns"}"#;
    let mut m = String::new();
    let mut seen = 0;
    for _ in 0..50 {
        seen = switch_count();
        m = h.agent().metrics().render();
        if metric(&m, dns) == Some(seen) && seen > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    // (Some of the flood may be lost before the rules table: the datapath's upcall queue.)
    assert!(seen > 1000, "the switch counted {seen} of 3000");
    assert_eq!(metric(&m, dns), Some(seen), "{m}");
    assert_eq!(
        metric(
            &m,
            r#"weft_netplugin_rule_packets{tenant="blue",policy="db-in",rule="pg"}"#
        ),
        Some(1),
        "one SYN: {m}"
    );
    assert!(
        metric(
            &m,
            r#"weft_netplugin_rule_bytes{tenant="blue",policy="db-in",rule="dns"}"#
        )
        .is_some_and(|b| b >= seen * 43),
        "{m}"
    );
    assert!(
        metric(
            &m,
            r#"weft_netplugin_rule_packets{tenant="blue",policy="group:db",rule=""}"#
        )
        .is_some_and(|n| n >= 2),
        "{m}"
    );
    assert!(
        metric(
            &m,
            r#"weft_netplugin_flows{table="63",name="ingress-rules"}"#
        )
        .is_some_and(|n| n >= 5),
        "{m}"
    );
    assert!(
        metric(
            &m,
            r#"weft_netplugin_flow_operation_duration_seconds_count{kind="bundle"}"#
        )
        .is_some_and(|n| n >= 2),
        "{m}"
    );
    assert!(
        metric(&m, "weft_netplugin_reconcile_duration_seconds_count").is_some_and(|n| n >= 2),
        "{m}"
    );
    // The verdict meter is on the switch, in packets per second.
    let meters = ovs.ofctl("dump-meters", "br-int", &[]);
    assert!(
        meters.contains("meter=65536 pktps burst stats bands="),
        "{meters}"
    );
}

#[test]
fn live_traces_see_the_probe_delivered_or_not() {
    let ovs = Ovs::start();
    ovs.add_bridge("br-int");
    let rt = runtime_in(&ovs);
    let (w, d) = (Netns::new(), Netns::new());
    // A resync every second: the observation flows must not be taken for drift.
    let h = rt.block_on(Host::start_with(&ovs, SPEC, |c| {
        c.resync_interval = std::time::Duration::from_secs(1)
    }));
    let (wi, di) = rt.block_on(async {
        (
            attach(&h, &w, "w", "web").await,
            attach(&h, &d, "d", "db").await,
        )
    });
    rt.block_on(async {
        // Allowed: the observation flow at the output table saw it, bound for d's port.
        let r = live(&h, &wi, &di, 5432).await;
        assert!(r.status().is_success(), "{:?}", r.text().await);
        let t: HostTrace = r.json().await.unwrap();
        assert!(t.observed, "{t:#?}");
        assert_eq!(
            t.outcomes.first(),
            Some(&Outcome::Delivered {
                endpoint: di.endpoint_id.clone()
            }),
            "{t:#?}"
        );
        // Refused by the default deny and by a rule: the clone of the dropping flow saw it, and
        // names it as the simulation does.
        for (port, by) in [
            (80, "group blue:db default deny"),
            (22, "rule blue:db-in:no-ssh (deny)"),
        ] {
            let t: HostTrace = live(&h, &wi, &di, port).await.json().await.unwrap();
            assert!(t.observed, "a drop seen on the switch: {t:#?}");
            assert_eq!(
                t.outcomes,
                vec![Outcome::Dropped { by: by.into() }],
                "{t:#?}"
            );
            let sim = trace(&h, &wi, &di, port).await;
            assert!(
                sim.outcomes.contains(&Outcome::Dropped { by: by.into() }),
                "{sim:#?}"
            );
        }
        // The probe is a real packet: the logged rule logged it.
        assert!(verdicts(&h, 0).await.iter().any(|r| r.rule == "pg"));
        // Only from a local endpoint.
        let req = serde_json::json!({
            "ingress": { "kind": "uplink", "vlan": null },
            "srcMac": wi.mac, "dstMac": di.mac,
            "srcIp": ip_of(&wi.ipv4), "dstIp": ip_of(&di.ipv4),
            "proto": "tcp", "dport": 5432, "live": true,
        });
        let r = reqwest::Client::new()
            .post(format!("{}/inspect/trace", base(&h)))
            .json(&req)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{:?}", r.text().await);
        // Two resyncs later: no observation flow is left, none was repaired as drift.
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    });
    let flows = ovs.ofctl("dump-flows", "br-int", &[]);
    assert!(!flows.contains("cookie=0x8"), "{flows}");
    // Armed by hand (as netmaster does): the clones are on the switch, for the probe alone.
    rt.block_on(async {
        let arm = serde_json::json!({
            "tag": 7, "srcIp": ip_of(&wi.ipv4), "dstIp": ip_of(&di.ipv4),
            "proto": "tcp", "sport": 40123, "dport": 22,
        });
        let c = reqwest::Client::new();
        let r = c
            .post(format!("{}/inspect/live/arm", base(&h)))
            .json(&arm)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{:?}", r.text().await);
        let flows = ovs.ofctl("dump-flows", "br-int", &["table=63"]);
        let clone = flows
            .lines()
            .find(|l| l.contains("cookie=0x8") && l.contains("tp_dst=22"))
            .unwrap_or_else(|| panic!("no clone of no-ssh: {flows}"));
        assert!(
            clone.contains("nw_tos=28") && clone.contains("tp_src=40123"),
            "{clone}"
        );
        assert!(clone.contains("hard_timeout="), "{clone}");
        // Collected without a probe: nothing seen, the flows gone.
        let r = c
            .delete(format!("{}/inspect/live/7", base(&h)))
            .send()
            .await
            .unwrap();
        let hop: weft_api::inspect::LiveHop = r.json().await.unwrap();
        assert!(!hop.observed && hop.outcomes.is_empty(), "{hop:?}");
    });
    let flows = ovs.ofctl("dump-flows", "br-int", &[]);
    assert!(!flows.contains("cookie=0x8"), "{flows}");
    let m = h.agent().metrics().render();
    assert!(m.contains("weft_netplugin_drift_repairs_total 0"), "{m}");
}
