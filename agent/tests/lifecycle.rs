//! Endpoint lifecycle on one host: VLAN tagging on the uplink, several interfaces and routes in
//! one container, idempotent attach, failed attaches that leave nothing behind, detach, bare
//! bridges, and restarts of the agent and of ovs-vswitchd under traffic.

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{ip_of, ping, Host, SPEC};
use testsupport::{Netns, Ovs};
use weft_api::proto::endpoint as pb;

/// Everything on the host that could be left behind by an endpoint: veths, bridge ports, flows
/// naming an endpoint.
fn leftovers(ovs: &Ovs) -> (Vec<String>, Vec<String>, usize) {
    let links: Vec<String> = ovs
        .netns()
        .exec(&["ip", "-o", "link", "show"])
        .lines()
        .filter_map(|l| {
            l.split(": ")
                .nth(1)
                .map(|n| n.split('@').next().unwrap().to_string())
        })
        .filter(|n| n.starts_with("wf") || n.starts_with("wp"))
        .collect();
    let ports: Vec<String> = ovs
        .vsctl(&["list-ports", "br-int"])
        .lines()
        .filter(|p| p.starts_with("wf"))
        .map(str::to_string)
        .collect();
    // Endpoint cookies have 0x03 in the top byte.
    let flows = ovs
        .ofctl("dump-flows", "br-int", &[])
        .lines()
        .filter(|l| l.contains("cookie=0x3"))
        .filter(|l| {
            l.split("cookie=")
                .nth(1)
                .is_some_and(|c| c.split(',').next().unwrap().len() == 17)
        })
        .count();
    (links, ports, flows)
}

#[test]
fn vlan_frames_leave_the_uplink_tagged() {
    let ovs = Ovs::start();
    let rt = common::runtime_in(&ovs);
    rt.block_on(async {
        let h = Host::start(&ovs, SPEC).await;
        let a = Netns::new();
        let _ia = h.attach(&a, "va", "eth0", "blue", "web").await;
        // Watch the physical side for VLAN 100 while a asks for an address nobody here has.
        let dump = ovs
            .netns()
            .command(&[
                "timeout",
                "8",
                "tcpdump",
                "-n",
                "-e",
                "-c",
                "1",
                "-i",
                "up0p",
                "vlan 100 and arp",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(700));
        let _ = a.try_exec(&["ping", "-c", "3", "-W", "1", "10.231.1.200"]);
        let out = dump.wait_with_output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("vlan 100"),
            "no tagged frame on the uplink: {text:?}"
        );
        assert!(text.contains("10.231.1.200"), "{text}");

        // And tagged frames from the physical network reach the endpoint untagged: a host on
        // the "physical" side pings a. (These VMs have no 8021q and no Linux bridge, so the
        // physical switch is a second, ordinary OVS bridge: up0p as its trunk, an access port
        // in VLAN 100 for the host.)
        let ia_ip = ip_of(&_ia.ipv4);
        ovs.vsctl(&[
            "add-br",
            "br-phys",
            "--",
            "set",
            "bridge",
            "br-phys",
            "datapath_type=netdev",
        ]);
        ovs.vsctl(&["add-port", "br-phys", "up0p"]);
        ovs.vsctl(&[
            "add-port",
            "br-phys",
            "phys100",
            "tag=100",
            "--",
            "set",
            "interface",
            "phys100",
            "type=internal",
        ]);
        ovs.netns()
            .exec(&["ip", "addr", "add", "10.231.1.99/24", "dev", "phys100"]);
        ovs.netns().exec(&["ip", "link", "set", "phys100", "up"]);
        assert!(
            ovs.netns()
                .try_exec(&["ping", "-c", "2", "-W", "1", &ia_ip]),
            "the physical network could not reach a over VLAN 100"
        );
    });
}

#[test]
fn a_container_gets_every_interface_and_route_it_asked_for() {
    let ovs = Ovs::start();
    let rt = common::runtime_in(&ovs);
    rt.block_on(async {
        let h = Host::start(&ovs, SPEC).await;
        let c = Netns::new();
        let peer = Netns::new();
        let e0 = h
            .try_attach(pb::AttachRequest {
                container_id: "multi".into(),
                netns: c.path().display().to_string(),
                interface_name: "eth0".into(),
                tenant: "blue".into(),
                network: "web".into(),
                ipv4: "10.231.1.50".into(),
                ipv6: vec!["fd00:231::50/64".into()],
                routes: vec![pb::Route {
                    dst: "192.168.77.0/24".into(),
                    gateway: "10.231.1.1".into(),
                }],
                pod_name: "web-0".into(),
                pod_namespace: "shop".into(),
                pod_uid: "uid-1".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        let e1 = h
            .try_attach(pb::AttachRequest {
                container_id: "multi".into(),
                netns: c.path().display().to_string(),
                interface_name: "net1".into(),
                tenant: "blue".into(),
                network: "db".into(),
                mac: "02:12:34:56:78:9a".into(),
                mtu: 1400,
                no_default_route: true,
                routes: vec![
                    pb::Route {
                        dst: "172.31.5.0/24".into(),
                        gateway: String::new(),
                    },
                    pb::Route {
                        dst: "172.31.6.0/24".into(),
                        gateway: "10.231.2.1".into(),
                    },
                ],
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(e0.ipv4, "10.231.1.50/24");
        assert_eq!(e0.pod_name, "web-0");
        assert_eq!(e1.mac, "02:12:34:56:78:9a");
        let addr = c.exec(&["ip", "addr"]);
        assert!(
            addr.contains("10.231.1.50/24") && addr.contains("fd00:231::50/64"),
            "{addr}"
        );
        assert!(
            addr.contains(&ip_of(&e1.ipv4)) && addr.contains("02:12:34:56:78:9a"),
            "{addr}"
        );
        assert!(c.exec(&["ip", "link", "show", "net1"]).contains("mtu 1400"));
        let routes = c.exec(&["ip", "route"]);
        for want in [
            ["default", "via 10.231.1.1", "dev eth0"],
            ["192.168.77.0/24", "via 10.231.1.1", "dev eth0"],
            ["172.31.5.0/24", "dev net1", "scope link"],
            ["172.31.6.0/24", "via 10.231.2.1", "dev net1"],
        ] {
            assert!(
                routes
                    .lines()
                    .any(|l| l.starts_with(want[0]) && want.iter().all(|w| l.contains(w))),
                "missing route {want:?} in\n{routes}"
            );
        }
        assert_eq!(routes.matches("default").count(), 1, "{routes}");
        // Both interfaces carry traffic: a peer on each network.
        let p0 = h.attach(&peer, "peer", "eth0", "blue", "web").await;
        let p1 = h.attach(&peer, "peer", "net1", "blue", "db").await;
        assert!(ping(&c, &ip_of(&p0.ipv4), 1));
        assert!(ping(&c, &ip_of(&p1.ipv4), 1));
        // IPv6 passes the spoof guard too.
        let list = h
            .client
            .clone()
            .list(pb::ListRequest {
                container_id: "multi".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(list.interfaces.len(), 2);
        let check = h
            .client
            .clone()
            .check(pb::CheckRequest {
                container_id: "multi".into(),
                interface_name: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(check.ok, "{:?}", check.problems);
        // Detach one: the other stays.
        assert_eq!(
            h.detach("multi", "net1").await,
            vec!["multi-net1".to_string()]
        );
        assert!(!c.exec(&["ip", "link"]).contains("net1"));
        assert!(ping(&c, &ip_of(&p0.ipv4), 1));
    });
}

#[test]
fn attach_is_idempotent_and_a_failed_attach_leaves_nothing() {
    let ovs = Ovs::start();
    let rt = common::runtime_in(&ovs);
    rt.block_on(async {
        let h = Host::start(&ovs, SPEC).await;
        let c = Netns::new();
        let first = h.attach(&c, "idem", "eth0", "blue", "web").await;
        let again = h.attach(&c, "idem", "eth0", "blue", "web").await;
        assert_eq!(first, again);
        assert_eq!(
            c.exec(&["ip", "-o", "link"]).lines().count(),
            2,
            "lo and eth0 only"
        );
        let before = leftovers(&ovs);
        assert_eq!(before.0.len(), 1);
        assert_eq!(before.1.len(), 1);

        // Broken from outside (the container's interface deleted): attach again repairs it.
        c.exec(&["ip", "link", "del", "eth0"]);
        let check = h
            .client
            .clone()
            .check(pb::CheckRequest {
                container_id: "idem".into(),
                interface_name: "eth0".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            !check.ok && check.problems.iter().any(|p| p.contains("not in")),
            "{:?}",
            check.problems
        );
        let repaired = h.attach(&c, "idem", "eth0", "blue", "web").await;
        assert_eq!(repaired.ipv4, first.ipv4);
        assert!(c.exec(&["ip", "addr"]).contains(&first.ipv4));

        // Failures at each stage leave nothing: bad input, netmaster refusing, the kernel refusing.
        let base = leftovers(&ovs);
        let eps_before = h.nm_endpoints().await;
        let bad = |f: &dyn Fn(&mut pb::AttachRequest)| {
            let mut r = pb::AttachRequest {
                container_id: "bad".into(),
                netns: c.path().display().to_string(),
                interface_name: "eth1".into(),
                tenant: "blue".into(),
                network: "web".into(),
                ..Default::default()
            };
            f(&mut r);
            r
        };
        let cases: Vec<(pb::AttachRequest, &str)> = vec![
            (bad(&|r| r.network = "nope".into()), "does not exist"),
            (
                bad(&|r| r.netns = "/var/run/netns/no-such-ns".into()),
                "netns",
            ),
            (bad(&|r| r.interface_name = "a/b".into()), "interface_name"),
            (bad(&|r| r.ipv4 = "10.9.9.9".into()), "10.9.9.9"),
            (
                bad(&|r| {
                    r.routes = vec![pb::Route {
                        dst: "nonsense".into(),
                        gateway: String::new(),
                    }]
                }),
                "routes[0].dst",
            ),
            // The kernel refuses: the container already has eth0.
            (
                bad(&|r| r.interface_name = "eth0".into()),
                "already has an interface named eth0",
            ),
            // The kernel refuses: a gateway that is not on any connected network.
            (
                bad(&|r| {
                    r.routes = vec![pb::Route {
                        dst: "172.16.0.0/16".into(),
                        gateway: "192.0.2.1".into(),
                    }]
                }),
                "172.16.0.0/16",
            ),
        ];
        for (req, want) in cases {
            let err = h.try_attach(req).await.unwrap_err();
            assert!(err.message().contains(want), "wanted {want:?} in {err:?}");
            assert_eq!(leftovers(&ovs), base, "after {want:?}");
            assert_eq!(
                h.nm_endpoints().await,
                eps_before,
                "address still held after {want:?}"
            );
        }
        assert_eq!(c.exec(&["ip", "-o", "link"]).lines().count(), 2);

        // Detach, twice; and of something never attached.
        assert_eq!(
            h.detach("idem", "eth0").await,
            vec!["idem-eth0".to_string()]
        );
        assert!(h.detach("idem", "eth0").await.is_empty());
        assert!(h.detach("never", "eth0").await.is_empty());
        assert_eq!(leftovers(&ovs), (vec![], vec![], 0));
        assert!(!h.nm_endpoints().await.contains("idem-eth0"));
    });
}

#[test]
fn a_bare_bridge_with_a_vlan_tag_needs_no_intent() {
    let ovs = Ovs::start();
    let rt = common::runtime_in(&ovs);
    rt.block_on(async {
        let h = Host::start(&ovs, SPEC).await;
        ovs.vsctl(&[
            "add-br",
            "br-bare",
            "--",
            "set",
            "bridge",
            "br-bare",
            "datapath_type=netdev",
        ]);
        let (a, b) = (Netns::new(), Netns::new());
        let mut ports = vec![];
        for (ns, name, ip) in [
            (&a, "ba", "192.168.231.2/24"),
            (&b, "bb", "192.168.231.3/24"),
        ] {
            let i = h
                .try_attach(pb::AttachRequest {
                    container_id: name.into(),
                    netns: ns.path().display().to_string(),
                    interface_name: "eth0".into(),
                    bridge: "br-bare".into(),
                    vlan: 30,
                    ipv4: ip.into(),
                    ..Default::default()
                })
                .await
                .unwrap();
            assert_eq!(i.vlan, 30);
            assert_eq!(
                ovs.vsctl(&["get", "port", &i.host_interface, "tag"]).trim(),
                "30"
            );
            ports.push(i.host_interface);
        }
        assert!(ping(&a, "192.168.231.3", 2));
        assert_eq!(h.detach("ba", "").await, vec!["ba-eth0".to_string()]);
        let left = ovs.vsctl(&["list-ports", "br-bare"]);
        assert!(
            !left.contains(&ports[0]) && left.contains(&ports[1]),
            "{left}"
        );
    });
}

#[test]
fn restarts_of_the_agent_and_of_the_switch() {
    let ovs = Ovs::start();
    let rt = common::runtime_in(&ovs);
    rt.block_on(async {
        let mut h = Host::start(&ovs, SPEC).await;
        let (a, b) = (Netns::new(), Netns::new());
        let _ia = h.attach(&a, "ra", "eth0", "blue", "web").await;
        let ib = h.attach(&b, "rb", "eth0", "blue", "web").await;
        assert!(ping(&a, &ip_of(&ib.ipv4), 1));
        let flows_before = ovs.ofctl("dump-flows", "br-int", &["--no-stats"]);

        // The agent restarts under continuous traffic: not one packet lost, nothing resent.
        let p = testsupport::Flood::start(&a, &ip_of(&ib.ipv4), 4);
        tokio::time::sleep(Duration::from_millis(800)).await;
        h.restart_agent().await;
        let applied = h.agent().reconciler().applied().borrow().clone();
        assert_eq!(
            applied.bundles, 0,
            "a restarted agent must find nothing to change: {applied:?}"
        );
        let (sent, got) = tokio::task::spawn_blocking(move || p.finish())
            .await
            .unwrap();
        assert!(sent > 100, "{sent}");
        assert_eq!(sent, got, "packets lost across an agent restart");
        assert_eq!(
            ovs.ofctl("dump-flows", "br-int", &["--no-stats"]),
            flows_before
        );
        assert_eq!(
            h.agent().local_ports().len(),
            2,
            "ports learned again from OVSDB"
        );

        // ovs-vswitchd restarts (flows lost): repaired as soon as it is back.
        ovs.stop_vswitchd();
        ovs.start_vswitchd_again();
        let back = Instant::now();
        let sock = ovs.mgmt_socket("br-int");
        loop {
            let out = Command::new("ovs-ofctl")
                .args(["-O", "OpenFlow13", "dump-flows", "--no-stats"])
                .arg(format!("unix:{}", sock.display()))
                .output()
                .unwrap();
            // The same flows; a refilled switch may list equal-priority flows in another order.
            let sorted = |t: &str| {
                let mut v: Vec<String> = t.lines().map(str::to_string).collect();
                v.sort();
                v
            };
            if sorted(&String::from_utf8_lossy(&out.stdout)) == sorted(&flows_before) {
                break;
            }
            assert!(
                back.elapsed() < Duration::from_secs(15),
                "flows not restored: now\n{}\nbefore\n{flows_before}",
                String::from_utf8_lossy(&out.stdout)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        eprintln!(
            "flows restored {:?} after ovs-vswitchd was started",
            back.elapsed()
        );
        assert!(
            ping(&a, &ip_of(&ib.ipv4), 2),
            "no traffic after the switch restarted"
        );
    });
}
