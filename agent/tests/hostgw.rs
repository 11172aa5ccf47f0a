//! The host gateway on a real kernel and a real Open vSwitch: in a namespace of its own with its
//! own OVS (userspace datapath, `br-int`), `hostgw::ensure` makes the veth pair and the port once
//! and then changes nothing; `hostgw::sync` keeps Weft's routes (and only Weft's) and the
//! `ip weft` masquerade table equal to what is asked; and the masquerade really translates: a
//! client behind the bridge with a link-local transit address reaches a namespace "outside" that
//! has no route back to it, through weft-gw, the host's routing and the masquerade, and stops
//! reaching it when the rule goes.
//!
//! Every namespace, veth and daemon is removed when the test ends, also on failure (the
//! fixtures' Drop); the veths die with their namespaces.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use serde_json::Value as Json;
use testsupport::{Netns, Ovs};
use weft_agent::hostgw::{self, HostRoutes, GW_IFNAME, GW_PORT, RTPROT_WEFT};

const MAC: [u8; 6] = [0x02, 0x77, 0x66, 0x00, 0x00, 0x01];
const MAC_STR: &str = "02:77:66:00:00:01";
const MTU: u32 = 1400;

fn json(ns: &Netns, args: &[&str]) -> Json {
    let out = ns.exec(args);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

fn link(ns: &Netns, name: &str) -> Json {
    json(ns, &["ip", "-j", "link", "show", name])[0].clone()
}

/// The routes of the main table, IPv4.
fn routes(ns: &Netns) -> Vec<Json> {
    json(ns, &["ip", "-j", "-4", "route", "show", "table", "main"])
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn route_to<'a>(routes: &'a [Json], dst: &str) -> Option<&'a Json> {
    routes.iter().find(|r| r["dst"] == dst)
}

fn ruleset(ns: &Netns) -> Vec<Json> {
    json(ns, &["nft", "-j", "list", "ruleset"])["nftables"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn weft_table(rs: &[Json]) -> Option<Json> {
    rs.iter()
        .find(|o| o["table"]["family"] == "ip" && o["table"]["name"] == "weft")
        .map(|o| o["table"].clone())
}

fn ports(ovs: &Ovs) -> Vec<String> {
    ovs.vsctl(&["list-ports", "br-int"])
        .lines()
        .map(str::to_string)
        .collect()
}

fn ip_forward(ns: &Netns) -> String {
    ns.exec(&["cat", "/proc/sys/net/ipv4/ip_forward"])
        .trim()
        .to_string()
}

#[test]
fn ensure_makes_the_pair_once() {
    let ovs = Ovs::start();
    ovs.add_bridge("br-int");
    let rt = common::runtime_in(&ovs);
    let ns = ovs.netns();
    let db = rt
        .block_on(ovsdb::Client::connect(&ovs.db_remote()))
        .unwrap();
    ns.exec(&["sh", "-c", "echo 0 > /proc/sys/net/ipv4/ip_forward"]);

    let g1 = rt
        .block_on(hostgw::ensure(&db, "br-int", MAC, MTU))
        .unwrap();
    assert_eq!(g1.mac, MAC);
    let gw = link(ns, GW_IFNAME);
    let port = link(ns, GW_PORT);
    assert_eq!(gw["address"], MAC_STR, "{gw}");
    assert_eq!(gw["mtu"], MTU, "{gw}");
    assert_eq!(port["mtu"], MTU, "{port}");
    assert_eq!(gw["link"], GW_PORT, "{gw}");
    for l in [&gw, &port] {
        let flags = l["flags"].as_array().unwrap();
        assert!(flags.contains(&Json::from("UP")), "{l}");
    }
    assert_eq!(ip_forward(ns), "1");
    assert_eq!(ports(&ovs), vec![GW_PORT.to_string()]);
    assert_eq!(
        ovs.vsctl(&["get", "interface", GW_PORT, "ofport"]).trim(),
        g1.ofport.to_string()
    );
    assert_eq!(
        ovs.vsctl(&["get", "port", GW_PORT, "external_ids:weft"])
            .trim(),
        "gateway"
    );

    // The second call changes nothing: no link, IPv4 address or route event in the kernel, no
    // OVSDB change (next_cfg stays), same interfaces, same port. (First the kernel's own
    // aftermath of bringing the links up settles: carrier, operstate.)
    testsupport::wait_for(
        "both ends to be operationally up",
        Duration::from_secs(10),
        || link(ns, GW_IFNAME)["operstate"] == "UP" && link(ns, GW_PORT)["operstate"] == "UP",
        || format!("{} {}", link(ns, GW_IFNAME), link(ns, GW_PORT)),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let cfg_before = ovs.vsctl(&["get", "Open_vSwitch", ".", "next_cfg"]);
    let (g2, events) = kernel_events(ns, || {
        rt.block_on(hostgw::ensure(&db, "br-int", MAC, MTU))
            .unwrap()
    });
    assert_eq!(g2, g1);
    assert!(events.trim().is_empty(), "second ensure changed: {events}");
    assert_eq!(
        ovs.vsctl(&["get", "Open_vSwitch", ".", "next_cfg"]),
        cfg_before
    );
    assert_eq!(link(ns, GW_IFNAME)["ifindex"], gw["ifindex"]);
    assert_eq!(link(ns, GW_PORT)["ifindex"], port["ifindex"]);
    assert_eq!(ports(&ovs), vec![GW_PORT.to_string()]);

    // Another MAC and MTU: set in place, same interfaces, same port.
    let other = [0x02, 0x77, 0x66, 0x00, 0x00, 0x02];
    let (g3, events) = kernel_events(ns, || {
        rt.block_on(hostgw::ensure(&db, "br-int", other, 1500))
            .unwrap()
    });
    // (The monitor does see changes.)
    assert!(
        events.contains(GW_IFNAME),
        "no event for a MAC change: {events}"
    );
    assert_eq!(g3.ofport, g1.ofport);
    let gw3 = link(ns, GW_IFNAME);
    assert_eq!(gw3["address"], "02:77:66:00:00:02", "{gw3}");
    assert_eq!(gw3["mtu"], 1500);
    assert_eq!(link(ns, GW_PORT)["mtu"], 1500);
    assert_eq!(gw3["ifindex"], gw["ifindex"]);

    // A lone bridge end (the host end deleted behind Weft's back): a new pair, same port name.
    ns.exec(&["ip", "link", "del", GW_IFNAME]);
    ns.exec(&[
        "ip", "link", "add", GW_PORT, "type", "veth", "peer", "name", "stray0",
    ]);
    let g4 = rt
        .block_on(hostgw::ensure(&db, "br-int", MAC, MTU))
        .unwrap();
    assert_eq!(link(ns, GW_IFNAME)["link"], GW_PORT);
    assert!(!ns.try_exec(&["ip", "link", "show", "stray0"]));
    assert_eq!(ports(&ovs), vec![GW_PORT.to_string()]);
    assert!(g4.ofport > 0);
}

/// The kernel's link, IPv4 address and route events in `ns` while `f` runs (`ip monitor`).
fn kernel_events<T>(ns: &Netns, f: impl FnOnce() -> T) -> (T, String) {
    let monitor = ns
        .command(&["ip", "-4", "-o", "monitor", "link", "address", "route"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("ip monitor");
    let guard = KillOnDrop(monitor.id());
    std::thread::sleep(Duration::from_millis(300));
    let r = f();
    std::thread::sleep(Duration::from_millis(300));
    drop(guard);
    let out = monitor.wait_with_output().expect("ip monitor output");
    (r, String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Kills a process (by id) on drop.
struct KillOnDrop(u32);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .arg(self.0.to_string())
            .status();
    }
}

/// `ping` with a fixed ICMP identifier (each phase its own, so that no conntrack entry of an
/// earlier phase answers for a later one).
fn ping(ns: &Netns, ident: u16, addr: &str, count: u32) -> bool {
    ns.try_exec(&[
        "ping",
        "-e",
        &ident.to_string(),
        "-c",
        &count.to_string(),
        "-i",
        "0.2",
        "-W",
        "1",
        addr,
    ])
}

#[test]
fn sync_routes_and_masquerade() {
    let ovs = Ovs::start();
    ovs.add_bridge("br-int");
    let rt = common::runtime_in(&ovs);
    let ns = ovs.netns();
    let db = rt
        .block_on(ovsdb::Client::connect(&ovs.db_remote()))
        .unwrap();
    let gw = rt
        .block_on(hostgw::ensure(&db, "br-int", MAC, MTU))
        .unwrap();

    // Outside: a network the host reaches through out0, with no route back to 169.254/16.
    let outside = Netns::new();
    ns.exec(&[
        "ip",
        "link",
        "add",
        "out0",
        "type",
        "veth",
        "peer",
        "name",
        "out0p",
        "netns",
        outside.name(),
    ]);
    ns.exec(&["ip", "addr", "add", "10.250.7.1/24", "dev", "out0"]);
    ns.exec(&["ip", "link", "set", "out0", "up"]);
    outside.exec(&["ip", "addr", "add", "10.250.7.2/24", "dev", "out0p"]);
    outside.exec(&["ip", "link", "set", "out0p", "up"]);

    // A client behind the bridge with a transit address; br-int wires it to weft-gw-p. Its
    // gateway is weft-gw's MAC (a permanent neighbour: flows would answer ARP in the product).
    let client = Netns::new();
    ns.exec(&[
        "ip",
        "link",
        "add",
        "cl0",
        "type",
        "veth",
        "peer",
        "name",
        "cl0p",
        "netns",
        client.name(),
    ]);
    ns.exec(&["ip", "link", "set", "cl0", "up"]);
    client.exec(&["ip", "addr", "add", "169.254.5.5/32", "dev", "cl0p"]);
    client.exec(&["ip", "link", "set", "cl0p", "up"]);
    client.exec(&[
        "ip",
        "route",
        "add",
        "default",
        "via",
        "169.254.0.1",
        "dev",
        "cl0p",
        "onlink",
    ]);
    client.exec(&[
        "ip",
        "neigh",
        "replace",
        "169.254.0.1",
        "lladdr",
        MAC_STR,
        "dev",
        "cl0p",
        "nud",
        "permanent",
    ]);
    ovs.vsctl(&["add-port", "br-int", "cl0"]);
    let cl_port = ovs.vsctl(&["get", "interface", "cl0", "ofport"]);
    let cl_port = cl_port.trim();
    ovs.ofctl(
        "add-flow",
        "br-int",
        &[&format!("in_port={cl_port},actions=output:{}", gw.ofport)],
    );
    ovs.ofctl(
        "add-flow",
        "br-int",
        &[&format!("in_port={},actions=output:{cl_port}", gw.ofport)],
    );

    let src: Ipv4Addr = "10.250.7.1".parse().unwrap();
    let want = HostRoutes {
        src: Some(src),
        prefixes: vec![
            "169.254.5.5/32".parse().unwrap(),
            "10.251.0.0/24".parse().unwrap(),
        ],
        masquerade: Some("169.254.0.0/16".parse().unwrap()),
    };
    rt.block_on(hostgw::sync(&want)).unwrap();

    let proto = RTPROT_WEFT.to_string();
    let rs = routes(ns);
    for dst in ["169.254.5.5", "10.251.0.0/24"] {
        let r = route_to(&rs, dst).unwrap_or_else(|| panic!("no route to {dst}: {rs:?}"));
        assert_eq!(r["dev"], GW_IFNAME, "{r}");
        assert_eq!(r["prefsrc"], "10.250.7.1", "{r}");
        assert_eq!(r["protocol"], proto.as_str(), "{r}");
        assert_eq!(r["scope"], "link", "{r}");
    }
    let nft = ruleset(ns);
    let table = weft_table(&nft).unwrap_or_else(|| panic!("no table ip weft: {nft:?}"));
    let chain = nft
        .iter()
        .find(|o| o["chain"]["table"] == "weft")
        .map(|o| o["chain"].clone())
        .unwrap_or_else(|| panic!("no chain: {nft:?}"));
    assert_eq!(chain["name"], "postrouting");
    assert_eq!(chain["type"], "nat");
    assert_eq!(chain["hook"], "postrouting");
    assert_eq!(chain["prio"], 100);
    assert_eq!(chain["policy"], "accept");
    let rules: Vec<&Json> = nft
        .iter()
        .filter(|o| o["rule"]["table"] == "weft")
        .map(|o| &o["rule"])
        .collect();
    assert_eq!(rules.len(), 1, "{nft:?}");
    let expr = &rules[0]["expr"];
    assert_eq!(
        expr[0]["match"]["left"]["payload"],
        serde_json::json!({"protocol": "ip", "field": "saddr"}),
        "{expr}"
    );
    assert_eq!(
        expr[0]["match"]["right"]["prefix"],
        serde_json::json!({"addr": "169.254.0.0", "len": 16}),
        "{expr}"
    );
    assert_eq!(expr[0]["match"]["op"], "==");
    assert_eq!(expr[1]["match"]["left"]["meta"]["key"], "oifname");
    assert_eq!(expr[1]["match"]["op"], "!=");
    assert_eq!(expr[1]["match"]["right"], GW_IFNAME);
    assert!(expr[2].get("masquerade").is_some(), "{expr}");
    assert!(rules[0]["comment"]
        .as_str()
        .is_some_and(|c| c.starts_with("weft: masquerade 169.254.0.0/16")));

    // The same again: nothing replaced (the table keeps its handle).
    rt.block_on(hostgw::sync(&want)).unwrap();
    assert_eq!(weft_table(&ruleset(ns)).unwrap()["handle"], table["handle"]);
    assert_eq!(routes(ns), rs);

    // The host reaches the client through weft-gw, from its own address (no masquerade there)...
    assert!(ping(ns, 4101, "169.254.5.5", 2), "host → client");
    // ...and the client reaches outside, which can only answer the masqueraded address.
    assert!(
        ping(&client, 4102, "10.250.7.2", 3),
        "client → outside through weft-gw and the masquerade\n{}",
        ovs.ofctl("dump-flows", "br-int", &[])
    );
    let ct = ns.exec(&["cat", "/proc/net/nf_conntrack"]);
    assert!(
        ct.lines()
            .any(|l| l.contains("src=169.254.5.5 dst=10.250.7.2")
                && l.contains("src=10.250.7.2 dst=10.250.7.1")),
        "no translated connection in conntrack:\n{ct}"
    );

    // One prefix less; an operator's routes (one on weft-gw, one elsewhere) are left alone.
    ns.exec(&["ip", "route", "add", "10.252.0.0/24", "dev", GW_IFNAME]);
    ns.exec(&["ip", "route", "add", "10.253.0.0/24", "via", "10.250.7.2"]);
    let less = HostRoutes {
        prefixes: vec!["169.254.5.5/32".parse().unwrap()],
        ..want.clone()
    };
    rt.block_on(hostgw::sync(&less)).unwrap();
    let rs = routes(ns);
    assert!(route_to(&rs, "10.251.0.0/24").is_none(), "{rs:?}");
    assert!(route_to(&rs, "169.254.5.5").is_some(), "{rs:?}");
    assert_eq!(route_to(&rs, "10.252.0.0/24").unwrap()["dev"], GW_IFNAME);
    assert!(route_to(&rs, "10.253.0.0/24").is_some(), "{rs:?}");

    // A prefix whose destination already has an operator's route: reported, not taken over.
    let clash = HostRoutes {
        prefixes: vec![
            "169.254.5.5/32".parse().unwrap(),
            "10.252.0.0/24".parse().unwrap(),
        ],
        ..want.clone()
    };
    let err = rt.block_on(hostgw::sync(&clash)).unwrap_err().to_string();
    assert!(
        err.contains("10.252.0.0/24") && err.contains("not Weft's"),
        "{err}"
    );
    let r = routes(ns);
    assert_ne!(
        route_to(&r, "10.252.0.0/24").unwrap()["protocol"],
        proto.as_str()
    );
    assert!(route_to(&r, "169.254.5.5").is_some());

    // No masquerade: the table goes, and outside no longer answers the client.
    let no_masq = HostRoutes {
        masquerade: None,
        ..less.clone()
    };
    rt.block_on(hostgw::sync(&no_masq)).unwrap();
    assert!(weft_table(&ruleset(ns)).is_none());
    assert!(
        !ping(&client, 4103, "10.250.7.2", 2),
        "outside answered an address it has no route to"
    );
    // Idempotent without a table too.
    rt.block_on(hostgw::sync(&no_masq)).unwrap();

    // remove(): Weft's routes and table go; the operator's stay.
    rt.block_on(hostgw::sync(&want)).unwrap();
    assert!(weft_table(&ruleset(ns)).is_some());
    rt.block_on(hostgw::remove()).unwrap();
    let rs = routes(ns);
    assert!(
        !rs.iter().any(|r| r["protocol"] == proto.as_str()),
        "{rs:?}"
    );
    assert!(route_to(&rs, "10.252.0.0/24").is_some());
    assert!(route_to(&rs, "10.253.0.0/24").is_some());
    assert!(weft_table(&ruleset(ns)).is_none());
}
