//! The agent on one simulated host, end to end: endpoints attached through the endpoint service
//! get interfaces, addresses and flows; traffic flows where it should and nowhere else.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::{ip_of, no_reply, ping, Host, SPEC};
use testsupport::frames::{self, mac};
use testsupport::{Netns, Ovs};
use weft_api::proto::endpoint as pb;

#[test]
fn one_network_reaches_itself_and_nothing_else() {
    let ovs = Ovs::start();
    let rt = common::runtime_in(&ovs);
    rt.block_on(async {
        let h = Host::start(&ovs, SPEC).await;
        let (a, b, c, r) = (quiet(), quiet(), quiet(), quiet());
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
            no_reply(&a, &ip_of(&ic.ipv4), 2),
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
        let a_before = rx_packets(&a);
        assert!(no_reply(&r, &ip_of(&ia.ipv4), 2), "red → blue must fail");
        assert_eq!(rx_packets(&a), a_before, "blue's a received red's traffic");
    });
}

/// A namespace without IPv6 (no router solicitations or the like move its counters).
fn quiet() -> Netns {
    let ns = Netns::new();
    ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
    ns.exec(&["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
    ns
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
        // Without IPv6, nothing but the test's own frames moves the counters.
        let (a, b, c) = (quiet(), quiet(), quiet());
        let ia = h.attach(&a, "sa", "eth0", "blue", "web").await;
        let ib = h.attach(&b, "sb", "eth0", "blue", "web").await;
        let ic = h.attach(&c, "sc", "eth0", "blue", "web").await;
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

        // Forged frames, sent raw from a's interface (the kernel would never send them): each
        // must die in the spoof guard. b (the addressee) and c (whose identity a takes) must not
        // see one of them, and the spoof guard's drop flow counts every one. A truthful frame
        // through the same sender first: it arrives (the sender works).
        let (a_mac, b_mac, c_mac) = (mac(&ia.mac), mac(&ib.mac), mac(&ic.mac));
        let (a_ip, b_ip, c_ip): (Ipv4Addr, Ipv4Addr, Ipv4Addr) = (
            ip_of(&ia.ipv4).parse().unwrap(),
            ip_of(&ib.ipv4).parse().unwrap(),
            ip_of(&ic.ipv4).parse().unwrap(),
        );
        let b_before = rx_packets(&b);
        frames::send(
            &a,
            "eth0",
            &[frames::icmp_echo(a_mac, b_mac, a_ip, b_ip, 1)],
            3,
        );
        assert!(
            testsupport::wait_until(Duration::from_secs(2), || rx_packets(&b) >= b_before + 3),
            "b did not receive a's truthful raw frames: the sender is broken"
        );
        let forged = [
            (
                "an unassigned source address",
                frames::icmp_echo(a_mac, b_mac, "10.231.1.250".parse().unwrap(), b_ip, 2),
            ),
            (
                "another MAC",
                frames::icmp_echo(frames::mac("02:aa:bb:cc:dd:ee"), b_mac, a_ip, b_ip, 3),
            ),
            (
                "c's address and MAC (impersonation)",
                frames::icmp_echo(c_mac, b_mac, c_ip, b_ip, 4),
            ),
            (
                "an ARP reply to b: c's address is at a's MAC",
                frames::arp(a_mac, b_mac, 2, a_mac, c_ip, b_mac, b_ip),
            ),
            (
                "a gratuitous ARP: c's address is at a's MAC",
                frames::arp(a_mac, frames::BROADCAST, 1, a_mac, c_ip, [0; 6], c_ip),
            ),
            (
                "an ARP reply in c's name (c's MAC and address)",
                frames::arp(c_mac, b_mac, 2, c_mac, c_ip, b_mac, b_ip),
            ),
        ];
        for (what, frame) in &forged {
            let (b0, c0) = (rx_packets(&b), rx_packets(&c));
            let drops = frames::spoof_guard_drops(&ovs, "br-int");
            frames::send(&a, "eth0", std::slice::from_ref(frame), 3);
            // The drop is counted when the switch has handled the frames.
            testsupport::wait_until(Duration::from_secs(2), || {
                frames::spoof_guard_drops(&ovs, "br-int") >= drops + 3
            });
            // Whatever got through has arrived by now too.
            std::thread::sleep(Duration::from_millis(200));
            assert_eq!(
                (rx_packets(&b) - b0, rx_packets(&c) - c0),
                (0, 0),
                "{what}: forged frames arrived at (b, c)\n{}",
                ovs.ofctl("dump-flows", "br-int", &["table=10"])
            );
            let dropped = frames::spoof_guard_drops(&ovs, "br-int") - drops;
            assert!(
                dropped >= 3,
                "{what}: the spoof guard dropped {dropped} of 3\n{}",
                ovs.ofctl("dump-flows", "br-int", &["table=10"])
            );
        }
        // The ARP lies reached nobody: b has no entry for c's address at a's MAC.
        let neigh = b.exec(&["ip", "neigh", "show", &c_ip.to_string()]);
        assert!(
            !neigh.contains(&ia.mac),
            "b's ARP cache was poisoned: {neigh}"
        );

        // a's own identity still passes.
        assert!(ping(&a, &ip_of(&ib.ipv4), 2));
    });
}
