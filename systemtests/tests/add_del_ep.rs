//! Contiv's add/del-endpoint scenario: `two_hosts_multiple_vxlan_nets.json` runs, then
//! `two_hosts_multiple_vxlan_add_del_ep.json` (which names only an existing network) is applied
//! and containers come and go on both hosts, while a pair of other containers pings across hosts
//! at 100/s. No flow the churn does not concern (anything but purple's and the moved endpoint's)
//! is touched on either host (the agents change flows by diff, never by flush), and the pair loses
//! at most one packet each way per port change and none otherwise, counted step by step (what
//! OVS's userspace datapath still loses then, see the end); what was added reaches its network and
//! nothing else; what was removed is gone everywhere. The ping is captured at six points on its
//! way (`POINTS`), and every lost one must have been lost inside an Open vSwitch next to a port
//! change on that host (`locate`): the test prints where each was lost.

use std::path::PathBuf;
use std::time::Duration;

use systemtests::{eventually, reaches, Cluster, Flood};
use testsupport::Netns;

fn example(name: &str) -> String {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/contiv-examples")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn addr(i: &weft_api::proto::endpoint::Interface) -> String {
    i.ipv4.split('/').next().unwrap().to_string()
}

#[test]
fn endpoints_come_and_go_while_traffic_runs() {
    let cluster = Cluster::new(2);
    cluster.apply(&example("two_hosts_multiple_vxlan_nets.json"));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (c1, c3, c4) = (Netns::new(), Netns::new(), Netns::new());
    let (i1, i3, i4) = rt.block_on(async {
        let h = &cluster.hosts;
        (
            h[0].attach(&c1, "myContainer1", "tenant-one", "orange", "")
                .await
                .unwrap(),
            h[1].attach(&c3, "myContainer3", "tenant-one", "orange", "")
                .await
                .unwrap(),
            h[1].attach(&c4, "myContainer4", "tenant-one", "purple", "")
                .await
                .unwrap(),
        )
    });
    let (a1, a3, a4) = (addr(&i1), addr(&i3), addr(&i4));
    assert!(
        eventually(Duration::from_secs(10), || reaches(&c1, &a3, 1)),
        "orange across hosts before the churn\n{}",
        cluster.diagnose()
    );

    // Every flow the churn has no business with stays in place: never deleted and added again.
    let ages_before: Vec<_> = cluster.hosts.iter().map(|h| h.flow_ages()).collect();
    let churn_start = std::time::Instant::now();

    // Where the flood's packets pass, captured for its whole run: each lost ping is then located
    // (see `locate`). The veths' host ends are the switches' ports; u1 and u2 carry the VXLAN.
    let (h1, h2) = (cluster.hosts[0].ovs.netns(), cluster.hosts[1].ovs.netns());
    let mut captures = [
        Capture::start(&c1, "eth0", "icmp"),
        Capture::start(h1, &i1.host_interface, "icmp"),
        Capture::start(h1, "u1", "udp port 4789"),
        Capture::start(h2, "u2", "udp port 4789"),
        Capture::start(h2, &i3.host_interface, "icmp"),
        Capture::start(&c3, "eth0", "icmp"),
    ];
    for c in &mut captures {
        c.ready();
    }

    // The pair that must not notice anything. (Runs to its end: an interrupted ping counts the
    // packet in flight as lost.)
    let mut flood = Flood::start(&c1, &a3, 25);
    std::thread::sleep(Duration::from_millis(300));

    // Add: the second file names purple (which exists) and puts myContainer2 on host1. Each
    // step's start is noted, to lay the flood's losses beside them.
    let steps = std::cell::RefCell::new(vec![("flood started", now() - 0.3)]);
    let step = |what: &'static str| {
        eprintln!("[{}] {what}", systemtests::unix_now());
        steps.borrow_mut().push((what, now()));
    };
    // Each port change: its host, when the call began and returned, and the host's datapath
    // flows right after (what the switch had cached then, shown beside a loss there).
    let changes = std::cell::RefCell::new(Vec::<Change>::new());
    let changed = |host: usize, what: &'static str, start: f64| {
        let end = now();
        let flows = cluster.hosts[host].ovs.appctl(&["dpctl/dump-flows"]);
        changes.borrow_mut().push(Change {
            host,
            what,
            start,
            end,
            flows,
        });
    };
    step("apply the add/del file");
    cluster.apply(&example("two_hosts_multiple_vxlan_add_del_ep.json"));
    step("attach myContainer2 on host1");
    let c2 = Netns::new();
    let t = now();
    let i2 = rt
        .block_on(cluster.hosts[0].attach(&c2, "myContainer2", "tenant-one", "purple", ""))
        .unwrap();
    changed(0, "attach myContainer2 on host1", t);
    let a2 = addr(&i2);
    assert!(
        eventually(Duration::from_secs(10), || reaches(&c2, &a4, 1)),
        "the added container reaches purple on the other host\n{}",
        cluster.diagnose()
    );
    assert!(reaches(&c4, &a2, 1), "and is reached from there");
    // Purple and orange are networks of one tenant: routed between (docs/pipeline.md).
    assert!(
        eventually(Duration::from_secs(10), || reaches(&c2, &a1, 1)),
        "purple reaches orange, routed within the tenant"
    );

    // Delete: myContainer4 leaves host2; its address stops answering from host1.
    step("detach myContainer4 on host2");
    let t = now();
    let removed = rt
        .block_on(cluster.hosts[1].detach("myContainer4"))
        .unwrap();
    changed(1, "detach myContainer4 on host2", t);
    assert_eq!(removed.len(), 1, "{removed:?}");
    assert!(
        eventually(Duration::from_secs(10), || !reaches(&c2, &a4, 1)),
        "a detached endpoint is gone from the other host's switch"
    );
    let flows = cluster.hosts[0].ovs.ofctl("dump-flows", "br-int", &[]);
    let mac4 = i4.mac.to_lowercase();
    assert!(
        !flows.contains(&mac4),
        "host1 still has flows for {mac4}:\n{flows}"
    );

    // And comes back on host1 (another host, another port): found there.
    let c4b = Netns::new();
    step("attach myContainer4 on host1");
    let t = now();
    let i4b = rt
        .block_on(cluster.hosts[0].attach(&c4b, "myContainer4", "tenant-one", "purple", ""))
        .unwrap();
    changed(0, "attach myContainer4 on host1", t);
    let a4b = addr(&i4b);
    assert!(
        eventually(Duration::from_secs(10), || reaches(&c2, &a4b, 1)),
        "the moved container is reached on its new host"
    );
    assert!(
        eventually(Duration::from_secs(10), || reaches(&c3, &a4b, 1)),
        "orange reaches purple on its new host, routed within the tenant"
    );

    assert!(
        flood.running(),
        "the churn took longer than the flood that should cover it"
    );
    step("churn over");
    // The churn concerns purple (its segment: classifier, flooding, forwarding, ARP answers) and
    // the endpoints that came and went (myContainer4's MAC and address; the added ones have no
    // flow before). Every other flow that was there before is there after, not replaced (its
    // age went on): in particular all of orange, where the flood runs.
    let churn = churn_start.elapsed().as_secs_f64();
    let purple = cluster.get("/api/v1/networks/tenant-one:purple/");
    let vni = purple
        .split("\"pktTag\":")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse::<u32>().ok())
        .unwrap_or_else(|| panic!("purple's packet tag: {purple}"));
    let mentions = |flow: &str, word: &str| {
        flow.match_indices(word).any(|(i, _)| {
            !flow[i + word.len()..]
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_hexdigit())
        })
    };
    let concerns = |flow: &str| {
        [
            format!("reg5={vni:#x}"),
            format!("{vni:#x}->reg5"),
            format!("tun_id={vni:#x}"),
            format!("{vni:#x}->tun_id"),
            format!("group:{vni}"),
            format!("group:{}", vni | 1 << 30),
        ]
        .iter()
        .any(|w| mentions(flow, w))
            || mentions(flow, &mac4)
            || mentions(flow, &format!("{a4},"))
            || flow.ends_with(&a4)
            || mentions(flow, &format!("{a4} "))
    };
    for (h, before) in cluster.hosts.iter().zip(&ages_before) {
        let after = h.flow_ages();
        let mut kept = 0;
        for (flow, age) in before.iter().filter(|(f, _)| !concerns(f)) {
            let now = after.get(flow).unwrap_or_else(|| {
                panic!(
                    "{}: a flow the churn does not concern is gone: {flow}",
                    h.name
                )
            });
            kept += 1;
            assert!(
                *now + 0.5 >= age + churn,
                "{}: a flow the churn did not concern was replaced (age {age:.1}s before, \
                 {now:.1}s after {churn:.1}s): {flow}",
                h.name
            );
        }
        assert!(kept > 10, "{}: only {kept} flows kept", h.name);
    }

    let (sent, got, lost) = flood.finish_with_losses();
    assert!(sent > 100, "the flood ran ({sent} sent)");
    let captured = captures.each_mut().map(Capture::stop);
    let located = locate(
        &captured,
        [a1.parse().unwrap(), a3.parse().unwrap()],
        sent,
        got,
        &changes.into_inner(),
    );
    eprintln!("{}", located.table);
    // Losses, step by step. Each endpoint change is a link change in its host, and OVS (3.1,
    // userspace datapath) then rereads its cached routes; a tunnel flow revalidated meanwhile
    // could become `drop`. The agent leaves the tunnel's source open so that no longer happens
    // (see bridge::ensure_tunnel), but a reply is still lost now and then on the host being
    // changed. One such moment can take the packets in flight both ways: captured on 2026-11-29
    // in a full run, a reply (u1 → the port) and the next request (the port → u1) lost inside
    // host1's switch 25 and 27 ms after an attach there began. So: at most one each way (two)
    // per port change, none in any other step; and each one lost must be lost inside a switch
    // (captured entering it, never leaving it) on a host whose port changed just then
    // (`locate`).
    let steps = steps.into_inner();
    let mut report = vec![];
    let mut over = false;
    for (i, (what, at)) in steps.iter().enumerate() {
        let end = steps.get(i + 1).map_or(f64::MAX, |(_, t)| *t);
        let n = lost.iter().filter(|t| **t >= *at && **t < end).count();
        let budget = 2 * usize::from(what.starts_with("attach") || what.starts_with("detach"));
        over |= n > budget;
        report.push(format!("{what}: {n} lost (at most {budget})"));
    }
    let early = lost.iter().filter(|t| **t < steps[0].1).count();
    over |= early > 0;
    assert!(
        !over && located.misplaced.is_empty(),
        "{} of {sent} packets lost between myContainer1 and myContainer3 while others came and \
         went ({early} before the first step):\n{}\n{}{}",
        sent - got,
        report.join("\n"),
        located.table,
        located
            .misplaced
            .iter()
            .map(|m| format!("\nnot a loss inside Open vSwitch next to a port change: {m}"))
            .collect::<String>()
    );
    eprintln!(
        "flood: {sent} sent, {got} received; churn of 3 endpoints across 2 hosts\n{}",
        report.join("\n")
    );
}

/// Now, as unix time in seconds.
fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// A port change on a host: when the call began and returned, and the host's datapath flows
/// (`ovs-appctl dpctl/dump-flows`) right after.
struct Change {
    host: usize,
    what: &'static str,
    start: f64,
    end: f64,
    flows: String,
}

/// How long after a port change's call returned a loss inside that host's switch still counts
/// as next to it (OVS rereads its routes on the link change's notification, and its revalidators
/// catch up within a few hundred ms).
const NEXT_TO_CHANGE: f64 = 1.0;

/// `tcpdump -p` (no promiscuous mode: turning it on is a link change, which is what makes OVS
/// reread its routes) on one interface in a namespace, writing pcap to a pipe that a thread
/// reads. Killed on drop, also when the test fails; nothing is written to disk.
struct Capture {
    what: String,
    child: Option<std::process::Child>,
    ready: Option<std::sync::mpsc::Receiver<()>>,
    pcap: Option<std::thread::JoinHandle<Vec<u8>>>,
    log: Option<std::thread::JoinHandle<String>>,
}

/// What one capture saw.
struct Captured {
    pcap: Vec<u8>,
    /// tcpdump's own account ("N packets dropped by kernel").
    log: String,
}

impl Capture {
    fn start(ns: &Netns, ifname: &str, filter: &str) -> Capture {
        use std::io::{BufRead, Read};
        use std::process::Stdio;
        let mut child = ns
            .command(&[
                "tcpdump",
                "-p",
                "-n",
                "-U",
                "--immediate-mode",
                "-s",
                "256",
                "-i",
                ifname,
                "-w",
                "-",
                filter,
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump (package tcpdump)");
        let mut out = child.stdout.take().expect("stdout");
        let err = child.stderr.take().expect("stderr");
        let pcap = std::thread::spawn(move || {
            let mut b = vec![];
            let _ = out.read_to_end(&mut b);
            b
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::thread::spawn(move || {
            let mut all = String::new();
            for line in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                if line.contains("listening on") {
                    let _ = tx.send(());
                }
                all.push_str(&line);
                all.push('\n');
            }
            all
        });
        Capture {
            what: format!("{ifname} in {}", ns.name()),
            child: Some(child),
            ready: Some(rx),
            pcap: Some(pcap),
            log: Some(log),
        }
    }

    /// Waits until tcpdump listens.
    fn ready(&mut self) {
        let ok = self
            .ready
            .take()
            .is_some_and(|rx| rx.recv_timeout(Duration::from_secs(10)).is_ok());
        if !ok {
            let c = self.stop();
            panic!("tcpdump on {} did not start:\n{}", self.what, c.log);
        }
    }

    /// Stops it (SIGTERM: tcpdump writes out what it has and its counts) and says what it saw.
    fn stop(&mut self) -> Captured {
        if let Some(mut c) = self.child.take() {
            let _ = std::process::Command::new("kill")
                .arg(c.id().to_string())
                .status();
            for _ in 0..100 {
                if !matches!(c.try_wait(), Ok(None)) {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        Captured {
            pcap: self
                .pcap
                .take()
                .and_then(|t| t.join().ok())
                .unwrap_or_default(),
            log: self
                .log
                .take()
                .and_then(|t| t.join().ok())
                .unwrap_or_default(),
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.stop();
    }
}

/// An ICMP echo request or reply in a capture (inside VXLAN on the underlay).
struct Echo {
    request: bool,
    id: u16,
    seq: u16,
    src: std::net::Ipv4Addr,
    dst: std::net::Ipv4Addr,
    at: f64,
}

/// The ICMP echoes in a pcap file (Ethernet, microsecond or nanosecond timestamps).
fn echoes(pcap: &[u8]) -> Vec<Echo> {
    let word = |b: &[u8], i: usize, le: bool| -> Option<u32> {
        let w: [u8; 4] = b.get(i..i + 4)?.try_into().ok()?;
        Some(if le {
            u32::from_le_bytes(w)
        } else {
            u32::from_be_bytes(w)
        })
    };
    let (le, unit) = match word(pcap, 0, true) {
        Some(0xa1b2_c3d4) => (true, 1e6),
        Some(0xa1b2_3c4d) => (true, 1e9),
        Some(0xd4c3_b2a1) => (false, 1e6),
        Some(0x4d3c_b2a1) => (false, 1e9),
        _ => return vec![],
    };
    if word(pcap, 20, le) != Some(1) {
        return vec![];
    }
    let mut out = vec![];
    let mut i = 24;
    while let (Some(sec), Some(frac), Some(len)) = (
        word(pcap, i, le),
        word(pcap, i + 4, le),
        word(pcap, i + 8, le),
    ) {
        let Some(frame) = pcap.get(i + 16..i + 16 + len as usize) else {
            break;
        };
        i += 16 + len as usize;
        if let Some(e) = echo(frame, f64::from(sec) + f64::from(frac) / unit, true) {
            out.push(e);
        }
    }
    out
}

/// The ICMP echo in an Ethernet frame, or in the frame a VXLAN packet carries (`outer`).
fn echo(frame: &[u8], at: f64, outer: bool) -> Option<Echo> {
    let be16 = |b: &[u8], i: usize| -> Option<u16> {
        Some(u16::from_be_bytes([*b.get(i)?, *b.get(i + 1)?]))
    };
    let mut eth = 12;
    if be16(frame, eth)? == 0x8100 {
        eth += 4;
    }
    if be16(frame, eth)? != 0x0800 {
        return None;
    }
    let ip = frame.get(eth + 2..)?;
    let ihl = usize::from(ip.first()? & 0x0f) * 4;
    if ip.len() < 20 || be16(ip, 6)? & 0x1fff != 0 {
        return None;
    }
    let addr = |i: usize| std::net::Ipv4Addr::new(ip[i], ip[i + 1], ip[i + 2], ip[i + 3]);
    let l4 = ip.get(ihl..)?;
    match ip[9] {
        1 => {
            let request = match l4.first()? {
                8 => true,
                0 => false,
                _ => return None,
            };
            Some(Echo {
                request,
                id: be16(l4, 4)?,
                seq: be16(l4, 6)?,
                src: addr(12),
                dst: addr(16),
                at,
            })
        }
        17 if outer && be16(l4, 2)? == 4789 => echo(l4.get(16..)?, at, false),
        _ => None,
    }
}

/// The capture points, in the order a request passes them (a reply passes them backwards).
const POINTS: [&str; 6] = [
    "myContainer1's eth0",
    "host1's veth of myContainer1 (a port of its switch)",
    "host1's underlay u1",
    "host2's underlay u2",
    "host2's veth of myContainer3 (a port of its switch)",
    "myContainer3's eth0",
];

/// Where a lost ping was lost: after the `k`-th of the 12 sightings a request and its reply get
/// on their way (each point of `POINTS` forth, then back), the (k+1)-th is missing. With the
/// host whose switch that is, if it is inside one.
fn segment(k: usize) -> (&'static str, Option<usize>) {
    match k {
        0 => ("the request never left myContainer1", None),
        1 => (
            "request lost in myContainer1's veth (container to switch)",
            None,
        ),
        2 => (
            "request lost inside host1's Open vSwitch (its veth port to u1)",
            Some(0),
        ),
        3 => ("request lost on the fabric (u1 to u2)", None),
        4 => (
            "request lost inside host2's Open vSwitch (u2 to its veth port)",
            Some(1),
        ),
        5 => (
            "request lost in myContainer3's veth (switch to container)",
            None,
        ),
        6 => ("myContainer3 got the request and did not answer", None),
        7 => (
            "reply lost in myContainer3's veth (container to switch)",
            None,
        ),
        8 => (
            "reply lost inside host2's Open vSwitch (its veth port to u2)",
            Some(1),
        ),
        9 => ("reply lost on the fabric (u2 to u1)", None),
        10 => (
            "reply lost inside host1's Open vSwitch (u1 to its veth port)",
            Some(0),
        ),
        11 => (
            "reply lost in myContainer1's veth (switch to container)",
            None,
        ),
        _ => (
            "the reply reached myContainer1 and ping did not count it",
            None,
        ),
    }
}

/// The lost pings, each located by the captures, as a table; and those not lost inside a switch
/// next to a port change of its host.
struct Located {
    table: String,
    misplaced: Vec<String>,
}

/// Locates every ping of the flood (from `addrs[0]` to `addrs[1]`; `sent` pings, `got`
/// answered) that the sender's capture saw no reply to, from the six captures (`POINTS`).
/// ICMP id and sequence number are matched exactly: the flood's id is the one of most requests
/// from `addrs[0]` to `addrs[1]` in the sender's capture.
fn locate(
    captured: &[Captured; 6],
    addrs: [std::net::Ipv4Addr; 2],
    sent: u64,
    got: u64,
    changes: &[Change],
) -> Located {
    use std::collections::{BTreeMap, HashMap};
    let seen: Vec<Vec<Echo>> = captured.iter().map(|c| echoes(&c.pcap)).collect();
    let mut ids = BTreeMap::<u16, usize>::new();
    for e in seen[0]
        .iter()
        .filter(|e| e.request && e.src == addrs[0] && e.dst == addrs[1])
    {
        *ids.entry(e.id).or_default() += 1;
    }
    let id = ids.iter().max_by_key(|(_, n)| **n).map(|(id, _)| *id);
    // Per point: (request?, seq) → first sighting.
    let at: Vec<HashMap<(bool, u16), f64>> = seen
        .iter()
        .map(|es| {
            let mut m = HashMap::new();
            for e in es.iter().filter(|e| Some(e.id) == id) {
                let forth = e.src == addrs[0] && e.dst == addrs[1];
                let back = e.src == addrs[1] && e.dst == addrs[0];
                if (e.request && forth) || (!e.request && back) {
                    m.entry((e.request, e.seq)).or_insert(e.at);
                }
            }
            m
        })
        .collect();
    let mut table = vec![format!(
        "captures of the flood (ICMP id {}; requests/replies of it seen at each point, tcpdump's \
         kernel drops):",
        id.map_or("none".into(), |i| i.to_string())
    )];
    for (p, name) in POINTS.iter().enumerate() {
        let n = |r: bool| at[p].keys().filter(|(q, _)| *q == r).count();
        let drops = captured[p]
            .log
            .lines()
            .find(|l| l.contains("dropped by kernel"))
            .unwrap_or("tcpdump gave no count")
            .to_string();
        table.push(format!("  {name}: {}/{} ({drops})", n(true), n(false)));
    }
    let mut misplaced = vec![];
    let lost: Vec<u16> = (1..=sent as u16)
        .filter(|s| !at[0].contains_key(&(false, *s)))
        .collect();
    if lost.len() as u64 != sent - got {
        misplaced.push(format!(
            "ping lost {} but myContainer1's capture misses {} replies: the captures do not tell",
            sent - got,
            lost.len()
        ));
    }
    table.push(format!("{} lost, located:", lost.len()));
    let path: Vec<(usize, bool)> = (0..6)
        .map(|p| (p, true))
        .chain((0..6).rev().map(|p| (p, false)))
        .collect();
    for seq in lost {
        let sightings: Vec<Option<f64>> = path
            .iter()
            .map(|(p, r)| at[*p].get(&(*r, seq)).copied())
            .collect();
        let k = sightings.iter().position(Option::is_none).unwrap_or(12);
        let (what, host) = segment(k);
        let mut line = format!("  icmp_seq={seq}: {what}");
        let last = k.checked_sub(1).and_then(|j| sightings[j]);
        if let Some(t) = last {
            let (p, r) = path[k - 1];
            line.push_str(&format!(
                "; last seen as {} at {} at {t:.6}",
                if r { "request" } else { "reply" },
                POINTS[p]
            ));
        }
        let mut fault = None;
        let mut flows = String::new();
        if k < 12 && sightings[k..].iter().any(Option::is_some) {
            fault = Some("seen again further on: a capture missed it");
        }
        let near = host.zip(last).and_then(|(h, t)| {
            changes
                .iter()
                .find(|c| c.host == h && t >= c.start - 0.05 && t <= c.end + NEXT_TO_CHANGE)
                .map(|c| (c, t))
        });
        match (host, near) {
            (None, _) => fault = fault.or(Some("not inside an Open vSwitch")),
            (Some(h), None) => {
                fault = fault.or(Some("no port change on that host just then"));
                line.push_str(&format!(
                    " (port changes on host{}: {})",
                    h + 1,
                    changes
                        .iter()
                        .filter(|c| c.host == h)
                        .map(|c| format!("{} {:.3}-{:.3}", c.what, c.start, c.end))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            (Some(_), Some((c, t))) => {
                line.push_str(&format!(
                    ", {:.0} ms after \"{}\" began (the call took {:.0} ms)",
                    (t - c.start) * 1e3,
                    c.what,
                    (c.end - c.start) * 1e3,
                ));
                flows = c
                    .flows
                    .lines()
                    .filter(|l| l.contains("drop") || l.contains("tnl_p") || l.contains("tunnel("))
                    .take(20)
                    .map(|l| format!("\n      {l}"))
                    .collect();
            }
        }
        match fault {
            Some(f) => {
                line.push_str(&format!("  => NOT ALLOWED: {f}"));
                misplaced.push(format!("icmp_seq={seq}: {what} ({f})"));
            }
            None => line.push_str("  => allowed: inside Open vSwitch, next to a port change there"),
        }
        if !flows.is_empty() {
            line.push_str(
                "\n    that host's datapath flows right after the change that tunnel or drop:",
            );
            line.push_str(&flows);
        }
        table.push(line);
    }
    Located {
        table: table.join("\n"),
        misplaced,
    }
}

/// `locate` on made-up captures: a reply lost inside host1's switch just after a port change
/// there is allowed; one lost on the fabric, and a request lost inside host2's switch long after
/// any change there, are not.
#[test]
fn captures_locate_each_lost_ping() {
    use std::net::Ipv4Addr;
    let (a1, a3) = (Ipv4Addr::new(10, 1, 1, 1), Ipv4Addr::new(10, 1, 1, 3));
    let ether = |ethertype: u16, payload: &[u8]| {
        let mut f = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2];
        f.extend(ethertype.to_be_bytes());
        f.extend(payload);
        f
    };
    let ipv4 = |proto: u8, src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]| {
        let mut p = vec![0x45, 0];
        p.extend((20 + payload.len() as u16).to_be_bytes());
        p.extend([0, 0, 0x40, 0, 64, proto, 0, 0]);
        p.extend(src.octets());
        p.extend(dst.octets());
        p.extend(payload);
        p
    };
    let icmp = |request: bool, seq: u16| {
        let (src, dst) = if request { (a1, a3) } else { (a3, a1) };
        let mut m = vec![if request { 8 } else { 0 }, 0, 0, 0];
        m.extend(77u16.to_be_bytes());
        m.extend(seq.to_be_bytes());
        m.extend([0; 8]);
        ether(0x0800, &ipv4(1, src, dst, &m))
    };
    let vxlan = |inner: Vec<u8>| {
        let mut u = vec![0xc0, 0x01];
        u.extend(4789u16.to_be_bytes());
        u.extend((16 + inner.len() as u16).to_be_bytes());
        u.extend([0, 0, 8, 0, 0, 0, 0, 0, 1, 0]);
        u.extend(inner);
        let (v1, v2) = (
            Ipv4Addr::new(192, 168, 231, 1),
            Ipv4Addr::new(192, 168, 231, 2),
        );
        ether(0x0800, &ipv4(17, v1, v2, &u))
    };
    // Five pings, a second apart from 1000.0 on; each point of `POINTS` sees the request 0.1 ms
    // after the one before it, and the reply on its way back.
    let gone = |seq: u16, request: bool, p: usize| match seq {
        2 => !request && p < 2, // reply: not past u1 into host1's veth port
        4 => !request && p < 3, // reply: not from u2 to u1
        5 => !request || p > 3, // request: not from u2 out of host2's switch
        _ => false,
    };
    let captured: [Captured; 6] = std::array::from_fn(|p| {
        let mut pcap = vec![];
        pcap.extend(0xa1b2_c3d4u32.to_le_bytes());
        pcap.extend([2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        pcap.extend(256u32.to_le_bytes());
        pcap.extend(1u32.to_le_bytes());
        for seq in 1..=5u16 {
            for request in [true, false] {
                if gone(seq, request, p) {
                    continue;
                }
                let hop = if request { p } else { 11 - p };
                let usec = 100 * hop as u32;
                let mut frame = icmp(request, seq);
                if p == 2 || p == 3 {
                    frame = vxlan(frame);
                }
                pcap.extend((1000 + u32::from(seq)).to_le_bytes());
                pcap.extend(usec.to_le_bytes());
                pcap.extend((frame.len() as u32).to_le_bytes());
                pcap.extend((frame.len() as u32).to_le_bytes());
                pcap.extend(frame);
            }
        }
        Captured {
            pcap,
            log: "0 packets dropped by kernel\n".into(),
        }
    });
    let change = |host, start: f64| Change {
        host,
        what: "a port change",
        start,
        end: start + 0.05,
        flows: "recirc_id(0),in_port(2),eth_type(0x0800), packets:0, bytes:0, used:never, \
                actions:drop"
            .into(),
    };
    // host1 changed 20 ms before seq 2's reply; host2 long before seq 5.
    let l = locate(
        &captured,
        [a1, a3],
        5,
        2,
        &[change(0, 1001.98), change(1, 1002.0)],
    );
    eprintln!("{}\n{:#?}", l.table, l.misplaced);
    assert!(l.table.contains("ICMP id 77"), "{}", l.table);
    assert!(l.table.contains("myContainer1's eth0: 5/2"), "{}", l.table);
    assert!(
        l.table.contains(
            "icmp_seq=2: reply lost inside host1's Open vSwitch (u1 to its veth port); last seen \
             as reply at host1's underlay u1 at 1002.000900, 21 ms after \"a port change\""
        ),
        "{}",
        l.table
    );
    assert!(l.table.contains("actions:drop"), "{}", l.table);
    assert_eq!(
        l.misplaced,
        [
            "icmp_seq=4: reply lost on the fabric (u2 to u1) (not inside an Open vSwitch)",
            "icmp_seq=5: request lost inside host2's Open vSwitch (u2 to its veth port) (no port \
             change on that host just then)",
        ],
        "{}",
        l.table
    );
    // ping and the captures must agree on how many were lost.
    let l = locate(&captured, [a1, a3], 5, 3, &[]);
    assert!(
        l.misplaced[0].contains("the captures do not tell"),
        "{:?}",
        l.misplaced
    );
}
