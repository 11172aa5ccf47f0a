//! The agent on one simulated host, end to end: endpoints attached through the endpoint service
//! get interfaces, addresses and flows; traffic flows where it should and nowhere else.

mod common;

use common::{ip_of, ping, Host, SPEC};
use testsupport::{Netns, Ovs};
use weft_api::proto::endpoint as pb;

#[test]
fn one_network_reaches_itself_and_nothing_else() {
    let ovs = Ovs::start();
    let rt = common::runtime_in(&ovs);
    rt.block_on(async {
        let h = Host::start(&ovs, SPEC).await;
        let (a, b, c, r) = (Netns::new(), Netns::new(), Netns::new(), Netns::new());
        let ia = h.attach(&a, "ca", "eth0", "blue", "web").await;
        let ib = h.attach(&b, "cb", "eth0", "blue", "web").await;
        let ic = h.attach(&c, "cc", "eth0", "blue", "db").await;
        // red:web has the same subnet as blue:web; ask for blue b's address on purpose.
        let ir = h
            .try_attach(pb::AttachRequest {
                container_id: "cr".into(),
                netns: r.path().display().to_string(),
                interface_name: "eth0".into(),
                tenant: "red".into(),
                network: "web".into(),
                ipv4: ip_of(&ib.ipv4),
                // netmaster derives MACs from addresses; give r its own so ARP tells them apart.
                mac: "02:00:00:00:be:ef".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(ip_of(&ir.ipv4), ip_of(&ib.ipv4));
        assert_eq!(ir.mtu, 1450, "VXLAN networks leave room for the header");
        assert_eq!(ia.mtu, 1500);

        // Same network: reaches.
        assert!(ping(&a, &ip_of(&ib.ipv4), 3), "a → b in blue:web");
        assert!(ping(&r, &ip_of(&ir.ipv4), 1), "r reaches itself");

        // Another network of the tenant: not, even with a route straight at it.
        a.exec(&["ip", "route", "add", "10.231.2.0/24", "dev", "eth0"]);
        assert!(
            !ping(&a, &ip_of(&ic.ipv4), 2),
            "a → c across networks must fail"
        );

        // Another tenant with the same subnet: b's twin address in red answers only in red.
        // a's ARP for that address is answered by blue's b; red's r never sees a's traffic.
        let r_rx_before = rx_packets(&r);
        assert!(ping(&a, &ip_of(&ib.ipv4), 2));
        let neigh = a.exec(&["ip", "neigh", "show", &ip_of(&ib.ipv4)]);
        assert!(
            neigh.contains(&ib.mac),
            "a resolved b's MAC, not r's: {neigh}"
        );
        assert!(!neigh.contains(&ir.mac), "{neigh}");
        assert_eq!(
            rx_packets(&r),
            r_rx_before,
            "red's endpoint received blue's traffic"
        );
        // And red's endpoint cannot reach blue's.
        assert!(!ping(&r, &ip_of(&ia.ipv4), 2), "red → blue must fail");
    });
}

/// Packets the interface received (kernel counters).
fn rx_packets(ns: &Netns) -> u64 {
    let s = ns.exec(&["cat", "/sys/class/net/eth0/statistics/rx_packets"]);
    s.trim().parse().unwrap()
}

#[test]
fn spoofed_sources_are_dropped_and_arp_is_answered_by_flows() {
    let ovs = Ovs::start();
    let rt = common::runtime_in(&ovs);
    rt.block_on(async {
        let h = Host::start(&ovs, SPEC).await;
        let (a, b, c) = (Netns::new(), Netns::new(), Netns::new());
        let ia = h.attach(&a, "sa", "eth0", "blue", "web").await;
        let ib = h.attach(&b, "sb", "eth0", "blue", "web").await;
        let _ic = h.attach(&c, "sc", "eth0", "blue", "web").await;
        assert!(ping(&a, &ip_of(&ib.ipv4), 1));

        // ARP for b is answered by the switch: the responder flow counts it, and c (same
        // network) sees no ARP request at all.
        a.exec(&["ip", "neigh", "flush", "all"]);
        let c_before = rx_packets(&c);
        assert!(ping(&a, &ip_of(&ib.ipv4), 1));
        let flows = ovs.ofctl("dump-flows", "br-int", &["table=20"]);
        let responder = flows
            .lines()
            .find(|l| l.contains(&format!("arp_tpa={}", ip_of(&ib.ipv4))))
            .unwrap_or_else(|| panic!("no responder flow for b: {flows}"));
        assert!(!responder.contains("n_packets=0,"), "{responder}");
        assert_eq!(
            rx_packets(&c),
            c_before,
            "c received something: ARP was flooded"
        );
        // The gateway answers too.
        // (Nothing routes yet, so the ping fails; its ARP resolves the gateway.)
        let _ = a.try_exec(&["ping", "-c", "1", "-W", "1", "10.231.1.1"]);
        let gw = a.exec(&["ip", "neigh", "show", "10.231.1.1"]);
        assert!(gw.contains("00:00:11:11:11:11"), "{gw}");

        // A second, unassigned address as the source: dropped.
        a.exec(&["ip", "addr", "add", "10.231.1.250/24", "dev", "eth0"]);
        assert!(!a.try_exec(&[
            "ping",
            "-c",
            "2",
            "-W",
            "1",
            "-I",
            "10.231.1.250",
            &ip_of(&ib.ipv4)
        ]));
        // Another MAC: dropped.
        a.exec(&["ip", "link", "set", "eth0", "address", "02:aa:bb:cc:dd:ee"]);
        a.exec(&["ip", "neigh", "flush", "all"]);
        b.exec(&["ip", "neigh", "flush", "all"]);
        assert!(!ping(&a, &ip_of(&ib.ipv4), 2), "spoofed MAC got through");
        // Its own again: passes.
        a.exec(&["ip", "link", "set", "eth0", "address", &ia.mac]);
        assert!(ping(&a, &ip_of(&ib.ipv4), 2));
    });
}
