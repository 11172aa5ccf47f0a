//! The OpenFlow driver and the reconciler against a real (userspace) Open vSwitch: the switch
//! ends up holding exactly the compiled set, a second reconciler (an agent restart) finds nothing
//! to change, drift is repaired, and a restarted ovs-vswitchd is refilled.

use std::time::{Duration, Instant};

use testsupport::Ovs;
use tokio_util::sync::CancellationToken;
use weft_agent::ofdriver::OfDriver;
use weft_agent::reconcile::Reconciler;
use weft_policy::{
    compile, parse_mac, Direction, Endpoint, EndpointGroup, FlowSet, HostState, Network, Peer,
    Policy, Profile, Rule, Segment,
};

/// Two networks; blue:web under policy (groups, a default-deny, rules with a port range on two
/// groups, i.e. a conjunction, a netprofile's DSCP), so conntrack and conjunction flows must
/// read back from the switch exactly as compiled.
fn state(n: u32) -> HostState {
    let group = |key: &str, policies: &[&str], default_deny: bool| EndpointGroup {
        key: key.into(),
        network: "blue:web".into(),
        policies: policies.iter().map(|p| p.to_string()).collect(),
        default_deny,
        profile: (key == "blue:a").then_some(Profile {
            rate_kbps: Some(10_000),
            burst_kb: 800,
            dscp: Some(10),
        }),
        // A logged default deny: controller(meter_id=…) must read back as compiled.
        log: default_deny,
    };
    // The host gateway with every kind of its flows (host access, a service range, another
    // host, egress of two tenants): the switch must take them all as compiled.
    let me: std::net::Ipv4Addr = "192.168.9.1".parse().unwrap();
    HostState {
        gateway_port: Some(weft_policy::GatewayPort {
            ofport: 2,
            mac: weft_policy::layout::host_gateway_mac(me),
            address: me,
        }),
        other_hosts: vec!["192.168.9.2".parse().unwrap()],
        service_cidrs: vec![("10.96.0.0".parse().unwrap(), 12)],
        groups: vec![
            group("blue:a", &["blue:p"], true),
            group("blue:b", &["blue:p"], false),
        ],
        policies: vec![Policy {
            key: "blue:p".into(),
            rules: vec![
                Rule {
                    key: "blue:p:1".into(),
                    priority: 10,
                    direction: Direction::In,
                    peer: Peer::Group("blue:b".into()),
                    protocol: Some(6),
                    ports: Some((8000, 8100)),
                    allow: true,
                    log: true,
                },
                Rule {
                    key: "blue:p:2".into(),
                    priority: 20,
                    direction: Direction::Out,
                    peer: Peer::Cidr("10.1.0.0".parse().unwrap(), 24),
                    protocol: Some(17),
                    ports: None,
                    allow: false,
                    log: false,
                },
            ],
        }],
        uplink_port: Some(1),
        tunnel_port: None,
        remote_endpoints: vec![],
        networks: vec![
            Network {
                subnet: Some(("10.1.0.0".parse().unwrap(), 16)),
                host_access: true,
                external: true,
                key: "blue:web".into(),
                segment: Segment::Vlan(100),
                gateway: Some("10.1.0.1".parse().unwrap()),
                zone: 7,
            },
            Network {
                subnet: Some(("10.1.0.0".parse().unwrap(), 16)),
                host_access: false,
                external: true,
                key: "red:db".into(),
                segment: Segment::Vxlan(5000),
                gateway: None,
                zone: 8,
            },
        ],
        endpoints: (0..n)
            .map(|i| Endpoint {
                key: format!("ep{i}"),
                network: if i % 2 == 0 { "blue:web" } else { "red:db" }.into(),
                ofport: 10 + i,
                mac: parse_mac(&format!("02:00:00:00:{:02x}:{:02x}", i / 256, i % 256)).unwrap(),
                ipv4: vec![format!("10.1.{}.{}", i / 200, i % 200 + 2).parse().unwrap()],
                ipv6: if i == 1 {
                    vec!["fd00::1".parse().unwrap()]
                } else {
                    vec![]
                },
                group: match i % 4 {
                    0 => Some("blue:a".into()),
                    2 => Some("blue:b".into()),
                    _ => None,
                },
            })
            .collect(),
    }
}

/// What `ovs-ofctl dump-flows` shows, without counters, sorted.
fn switch_flows(ovs: &Ovs) -> Vec<String> {
    let out = ovs.ofctl("dump-flows", "br-int", &["--no-stats"]);
    let mut v: Vec<String> = out
        .lines()
        .map(|l| l.trim().to_string())
        .filter(|l| !l.is_empty())
        .collect();
    v.sort();
    v
}

async fn applied_quietly(r: &Reconciler, version: u64) {
    assert!(
        r.wait_applied(version, Duration::from_secs(10)).await,
        "the switch did not take version {version}: {:?}",
        *r.applied().borrow()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switch_holds_exactly_the_compiled_set_and_restarts_change_nothing() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let ovs = Ovs::start();
    ovs.add_bridge("br-int");
    // Something stale that must go, and nothing of ours yet.
    ovs.ofctl(
        "add-flow",
        "br-int",
        &["table=99,priority=5,cookie=0x99,actions=drop"],
    );

    let cancel = CancellationToken::new();
    let driver = OfDriver::spawn(ovs.mgmt_socket("br-int"), cancel.clone());
    let rec = Reconciler::spawn(driver.clone(), cancel.clone());
    let want = compile(&state(6)).flows;
    let v = rec.set(want.clone());
    applied_quietly(&rec, v).await;

    // Read back through our own driver: equal to what we compiled, in normal form.
    let dump = driver.dump().await.unwrap();
    let have = FlowSet::from_switch(&dump.flows, &dump.groups).with_meters(&dump.meters);
    assert_eq!(
        have.flows.len(),
        want.flows.len(),
        "{}",
        weft_policy::diff(&have, &want)
    );
    assert!(
        weft_policy::diff(&have, &want).is_empty(),
        "{}",
        weft_policy::diff(&have, &want)
    );
    let text = switch_flows(&ovs);
    assert!(
        !text.iter().any(|l| l.contains("table=99")),
        "stale flow kept: {text:#?}"
    );
    assert!(text.iter().any(|l| l.contains("arp_tpa=10.1.0.1")));
    let groups = ovs.ofctl("dump-groups", "br-int", &[]);
    assert!(groups.contains("group_id=16777316,type=all"), "{groups}");
    // The netprofile: a meter per endpoint of group blue:a (ports 10, 14, ...), used by its
    // classifier flow.
    let meters = ovs.ofctl("dump-meters", "br-int", &[]);
    assert!(
        meters.contains("meter=10 kbps burst stats bands=") && meters.contains("rate=10000"),
        "{meters}"
    );
    assert!(
        text.iter()
            .any(|l| l.contains("in_port=10 ") && l.contains("meter:10")),
        "{text:#?}"
    );

    // An agent restart: a new driver and reconciler with the same desired set change nothing.
    cancel.cancel();
    let before = switch_flows(&ovs);
    let cancel = CancellationToken::new();
    let driver = OfDriver::spawn(ovs.mgmt_socket("br-int"), cancel.clone());
    let rec = Reconciler::spawn(driver.clone(), cancel.clone());
    let v = rec.set(want.clone());
    applied_quietly(&rec, v).await;
    let a = rec.applied().borrow().clone();
    assert_eq!(
        a.bundles, 0,
        "a restart with the same state must send nothing: {a:?}"
    );
    assert_eq!(a.dumps, 1);
    assert_eq!(switch_flows(&ovs), before);

    // A change is a small diff.
    let more = compile(&state(7)).flows;
    let v = rec.set(more.clone());
    applied_quietly(&rec, v).await;
    let a = rec.applied().borrow().clone();
    assert!(a.last_changes > 0 && a.last_changes < 10, "{a:?}");

    // ovs-vswitchd restarts: its flows are gone, and come back within a second of it being back.
    ovs.stop_vswitchd();
    ovs.start_vswitchd_again();
    let back = Instant::now();
    let sock = ovs.mgmt_socket("br-int");
    loop {
        let flows = std::process::Command::new("ovs-ofctl")
            .args(["-O", "OpenFlow13", "dump-flows", "--no-stats"])
            .arg(format!("unix:{}", sock.display()))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&flows.stdout);
        if text.lines().filter(|l| l.contains("cookie=")).count() == more.flows.len() {
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "not repaired: {text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!(
        "flows back {:?} after ovs-vswitchd was started again",
        back.elapsed()
    );
    let dump = driver.dump().await.unwrap();
    let have = FlowSet::from_switch(&dump.flows, &dump.groups).with_meters(&dump.meters);
    assert!(weft_policy::diff(&have, &more).is_empty());
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_bundle_changes_nothing_and_is_reported() {
    let ovs = Ovs::start();
    ovs.add_bridge("br-int");
    let cancel = CancellationToken::new();
    let driver = OfDriver::spawn(ovs.mgmt_socket("br-int"), cancel.clone());
    let mut gen = driver.generation();
    tokio::time::timeout(Duration::from_secs(10), gen.wait_for(|g| *g > 0))
        .await
        .unwrap()
        .unwrap();
    // A state first (no meters: a switch takes no meter change in a bundle).
    let without_meters = |mut s: HostState| {
        for g in &mut s.groups {
            if let Some(p) = &mut g.profile {
                p.rate_kbps = None;
            }
        }
        s
    };
    let loaded = compile(&without_meters(state(4))).flows;
    driver
        .bundle(weft_policy::diff(&FlowSet::default(), &loaded).messages())
        .await
        .unwrap();
    let switch_state = || (switch_flows(&ovs), ovs.ofctl("dump-groups", "br-int", &[]));
    let before = switch_state();
    assert!(before.0.len() > 20, "{before:?}");
    // The change to another state: an endpoint goes (deletes, a flood group modified), one
    // comes (adds), a rule turns from allow to deny (its flows replaced). Plus one bad flow.
    let mut next = without_meters(state(5));
    next.endpoints.retain(|e| e.key != "ep1");
    next.policies[0].rules[0].allow = false;
    let change = weft_policy::diff(&loaded, &compile(&next).flows);
    assert!(
        !change.flows_delete.is_empty()
            && !change.flows_add.is_empty()
            && change.groups_upsert.iter().any(|(_, exists)| *exists)
            && change.groups_delete.is_empty(),
        "the change must delete, add and modify:\n{change}"
    );
    let mut msgs = change.messages();
    // A flow in a table that does not exist (255) makes the switch refuse the whole bundle.
    let mut bad = loaded.flows.values().next().unwrap().add();
    bad.table_id = 255;
    msgs.push(ofproto::msg::Message::FlowMod(bad));
    let err = driver.bundle(msgs).await.unwrap_err();
    assert!(err.to_string().contains("refused"), "{err}");
    // The switch holds exactly what it held: nothing deleted, modified or added.
    assert_eq!(
        switch_state(),
        before,
        "a refused bundle changed the switch"
    );
    // And the change itself, without the bad flow, is taken.
    driver.bundle(change.messages()).await.unwrap();
    let dump = driver.dump().await.unwrap();
    let have = FlowSet::from_switch(&dump.flows, &dump.groups);
    // (Flows and groups: this test sends no meters, not even the verdict log's.)
    let mut want = compile(&next).flows;
    want.meters.clear();
    assert!(weft_policy::diff(&have, &want).is_empty());
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_behind_the_agents_back_is_repaired_within_one_resync() {
    let ovs = Ovs::start();
    ovs.add_bridge("br-int");
    let cancel = CancellationToken::new();
    let driver = OfDriver::spawn(ovs.mgmt_socket("br-int"), cancel.clone());
    let resync = Duration::from_millis(500);
    let rec = Reconciler::spawn_with_resync(driver.clone(), resync, cancel.clone());
    let want = compile(&state(6)).flows;
    let v = rec.set(want.clone());
    applied_quietly(&rec, v).await;
    let switch = || async {
        let dump = driver.dump().await.unwrap();
        FlowSet::from_switch(&dump.flows, &dump.groups).with_meters(&dump.meters)
    };
    assert!(weft_policy::diff(&switch().await, &want).is_empty());
    // Quiet resyncs find nothing to repair.
    tokio::time::sleep(resync * 3).await;
    assert_eq!(
        rec.applied().borrow().repairs,
        0,
        "{:?}",
        rec.applied().borrow()
    );

    // Behind the agent's back: flows of one table, a flooding group (OVS drops the flows that
    // use it), a meter (and the flows that use it), and a stranger's flow.
    ovs.ofctl("del-flows", "br-int", &["table=20"]);
    ovs.ofctl("del-groups", "br-int", &["group_id=16777316"]);
    ovs.ofctl("del-meter", "br-int", &["meter=10"]);
    ovs.ofctl(
        "add-flow",
        "br-int",
        &["table=0,priority=999,cookie=0x77,actions=drop"],
    );
    let broken = switch().await;
    let before = weft_policy::diff(&broken, &want).len();
    assert!(before > 10, "the damage shows: {before} differences");
    let t = Instant::now();
    loop {
        let a = rec.applied().borrow().clone();
        if a.repairs >= 1 && weft_policy::diff(&switch().await, &want).is_empty() {
            eprintln!(
                "{before} differences repaired in {:?} ({} changes)",
                t.elapsed(),
                a.repaired_changes
            );
            assert!(a.repaired_changes as usize >= before, "{a:?}");
            break;
        }
        assert!(
            t.elapsed() < resync * 4,
            "not repaired within a resync period: {a:?}\n{}",
            weft_policy::diff(&switch().await, &want)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    cancel.cancel();
}
