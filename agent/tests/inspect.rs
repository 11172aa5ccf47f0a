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
