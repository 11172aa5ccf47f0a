//! Policy across two hosts with real traffic (ping, TCP and UDP with `nc`): allow and deny by
//! group, network, CIDR, port and port range, in both directions; priority order (at equal
//! priority a deny wins); default-deny both ways; replies of allowed connections pass; same-host
//! and cross-host pairs alike; and rules changed while traffic runs (an established connection
//! and a running ping keep going, new connections are refused at once, and pass again when the
//! deny goes).
//!
//! Every phase is a set of expectations checked together, in parallel, until all hold at once
//! (agents realize intent asynchronously) and then once more; every "does not reach" has a
//! control in the same round (the same probe to the same container from elsewhere, or another
//! probe on the same pair) that reaches, so a broken path cannot pass for a deny.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use systemtests::{reaches, tcp_connects, udp_send, Cluster, Flood, Listener};
use testsupport::{Netns, TempDir};

const T: &str = "pt";
const TCP_PORTS: [u16; 5] = [80, 5432, 5433, 5434, 8080];
const UDP_PORTS: [u16; 2] = [53, 5353];

/// One container: where it runs, its group, its address, its listeners.
struct Ctr {
    name: &'static str,
    ns: Netns,
    ip: String,
    udp: Vec<(u16, Listener)>,
    _tcp: Vec<Listener>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Probe {
    Ping,
    Tcp(u16),
    Udp(u16),
}

/// From container, to container, probe, whether it must get through.
type Check = (usize, usize, Probe, bool);

static TOKENS: AtomicU64 = AtomicU64::new(0);

fn probe(cs: &[Ctr], from: usize, to: usize, p: Probe) -> bool {
    let (f, t) = (&cs[from], &cs[to]);
    match p {
        Probe::Ping => reaches(&f.ns, &t.ip, 1),
        Probe::Tcp(port) => tcp_connects(&f.ns, &t.ip, port),
        Probe::Udp(port) => {
            let token = format!(
                "tok{}-{}-{}",
                TOKENS.fetch_add(1, Ordering::Relaxed),
                f.name,
                t.name
            );
            let l = &t
                .udp
                .iter()
                .find(|(p, _)| *p == port)
                .expect("a UDP listener on the port")
                .1;
            udp_send(&f.ns, &t.ip, port, &token);
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(1) {
                if l.received().contains(&token) {
                    return true;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            false
        }
    }
}

/// Runs every check at once (a few dozen processes at most at a time); the results in order.
fn round(cs: &[Ctr], checks: &[Check]) -> Vec<bool> {
    let mut out = Vec::with_capacity(checks.len());
    for chunk in checks.chunks(32) {
        let r: Vec<bool> = std::thread::scope(|s| {
            let hs: Vec<_> = chunk
                .iter()
                .map(|&(f, t, p, _)| s.spawn(move || probe(cs, f, t, p)))
                .collect();
            hs.into_iter().map(|h| h.join().expect("probe")).collect()
        });
        out.extend(r);
    }
    out
}

fn describe(cs: &[Ctr], c: &Check) -> String {
    let p = match c.2 {
        Probe::Ping => "ping".to_string(),
        Probe::Tcp(p) => format!("tcp/{p}"),
        Probe::Udp(p) => format!("udp/{p}"),
    };
    format!("{} → {} {p}", cs[c.0].name, cs[c.1].name)
}

/// The policy tables of every host (egress 30-33, ingress 60-63), for failure messages.
fn policy_flows(cluster: &Cluster) -> String {
    let mut s = String::new();
    for h in &cluster.hosts {
        let dump = h.ovs.ofctl("dump-flows", "br-int", &["--no-stats"]);
        let mine: Vec<&str> = dump
            .lines()
            .filter(|l| l.contains("table=3") || l.contains("table=6"))
            .collect();
        s.push_str(&format!(
            "--- {} policy tables\n{}\n",
            h.name,
            mine.join("\n")
        ));
        // What the datapath's flow cache does with conntrack (it should follow the tables).
        let dp = h.ovs.appctl(&["dpctl/dump-flows"]);
        let ct: Vec<&str> = dp.lines().filter(|l| l.contains("ct(")).take(20).collect();
        s.push_str(&format!(
            "--- {} datapath flows with ct (up to 20)\n{}\n",
            h.name,
            ct.join("\n")
        ));
    }
    s
}

/// Waits (15 s at most) until every check holds in one round, then checks once more.
fn expect(cluster: &Cluster, cs: &[Ctr], phase: &str, checks: &[Check]) {
    // Test design: every deny has a control that reaches in the same round.
    for c in checks.iter().filter(|c| !c.3) {
        let controlled = checks
            .iter()
            .any(|d| d.3 && d.1 == c.1 && (d.2 == c.2 || d.0 == c.0));
        assert!(controlled, "{phase}: {} has no control", describe(cs, c));
    }
    let start = Instant::now();
    let mut last = vec![];
    let mut confirmed = false;
    while start.elapsed() < Duration::from_secs(15) {
        let r = round(cs, checks);
        last = checks
            .iter()
            .zip(&r)
            .filter(|(c, got)| c.3 != **got)
            .map(|(c, got)| {
                format!(
                    "{}: want {}, got {}",
                    describe(cs, c),
                    if c.3 { "reached" } else { "denied" },
                    if *got { "reached" } else { "denied" }
                )
            })
            .collect();
        if last.is_empty() {
            if confirmed {
                eprintln!(
                    "{phase}: {} checks hold ({:.1} s)",
                    checks.len(),
                    start.elapsed().as_secs_f64()
                );
                return;
            }
            confirmed = true;
        } else {
            confirmed = false;
        }
    }
    panic!(
        "{phase}: after {:.0} s, {} of {} checks fail:\n{}\n{}\n{}",
        start.elapsed().as_secs_f64(),
        last.len(),
        checks.len(),
        last.join("\n"),
        policy_flows(cluster),
        cluster.diagnose()
    );
}

// Containers: web, db and one in no group, on each host.
const A1: usize = 0;
const B1: usize = 1;
const N1: usize = 2;
const A2: usize = 3;
const B2: usize = 4;
const N2: usize = 5;
const WEB: [usize; 2] = [A1, A2];
const DB: [usize; 2] = [B1, B2];
const NONE: [usize; 2] = [N1, N2];
const ALL: [usize; 6] = [A1, B1, N1, A2, B2, N2];

/// (name, host, group, address)
const LAYOUT: [(&str, usize, &str, &str); 6] = [
    ("a1", 0, "web", "10.234.1.11"),
    ("b1", 0, "db", "10.234.1.21"),
    ("n1", 0, "", "10.234.1.31"),
    ("a2", 1, "web", "10.234.1.12"),
    ("b2", 1, "db", "10.234.1.22"),
    ("n2", 1, "", "10.234.1.32"),
];

/// The whole intent: the network "app" (and "other", named by rules only), groups web and db
/// with the given policies, and `rules` (JSON objects) in policies "db-in", "web-in", "web-out".
fn spec(db: &[&str], db_deny: bool, web: &[&str], rules: &[String]) -> String {
    let list = |v: &[&str]| {
        v.iter()
            .map(|p| format!("\"{p}\""))
            .collect::<Vec<_>>()
            .join(",")
    };
    format!(
        r#"{{
  "global": {{ "vlans": "100-199", "vxlans": "5000-5999" }},
  "tenants": [ {{ "tenantName": "{T}" }} ],
  "networks": [
    {{ "tenantName": "{T}", "networkName": "app", "encap": "vxlan", "pktTag": 5341,
      "subnet": "10.234.1.0/24", "gateway": "10.234.1.1" }},
    {{ "tenantName": "{T}", "networkName": "other", "encap": "vxlan", "pktTag": 5342,
      "subnet": "10.234.2.0/24", "gateway": "10.234.2.1" }}
  ],
  "endpointGroups": [
    {{ "tenantName": "{T}", "groupName": "web", "networkName": "app", "policies": [{}] }},
    {{ "tenantName": "{T}", "groupName": "db", "networkName": "app", "policies": [{}],
      "defaultDeny": {db_deny} }}
  ],
  "policies": [
    {{ "tenantName": "{T}", "policyName": "db-in" }},
    {{ "tenantName": "{T}", "policyName": "web-in" }},
    {{ "tenantName": "{T}", "policyName": "web-out" }}
  ],
  "rules": [ {} ]
}}"#,
        list(web),
        list(db),
        rules.join(",\n")
    )
}

/// A rule of `policy`: `body` holds direction, peer, protocol, ports and action.
fn rule(policy: &str, id: &str, priority: u32, body: &str) -> String {
    format!(
        r#"{{ "tenantName": "{T}", "policyName": "{policy}", "ruleId": "{id}", "priority": {priority}, {body} }}"#
    )
}

fn start(
    cluster: &Cluster,
    tmp: &TempDir,
    layout: &[(&'static str, usize, &str, &str)],
) -> Vec<Ctr> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    layout
        .iter()
        .map(|&(name, host, group, ip)| {
            let ns = Netns::new();
            rt.block_on(cluster.hosts[host].attach_in_group(&ns, name, T, "app", group, ip))
                .unwrap_or_else(|e| panic!("attach {name}: {e}"));
            let tcp = TCP_PORTS.iter().map(|p| Listener::tcp(&ns, *p)).collect();
            let udp = UDP_PORTS
                .iter()
                .map(|p| {
                    let out: PathBuf = tmp.path().join(format!("{name}-udp{p}"));
                    (*p, Listener::udp(&ns, *p, out))
                })
                .collect();
            Ctr {
                name,
                ns,
                ip: ip.to_string(),
                udp,
                _tcp: tcp,
            }
        })
        .collect()
}

fn pairs(from: &[usize], to: &[usize], p: Probe, want: bool) -> Vec<Check> {
    let mut v = vec![];
    for &f in from {
        for &t in to {
            if f != t {
                v.push((f, t, p, want));
            }
        }
    }
    v
}

/// Everything reaches everything: ping, TCP and UDP between every ordered pair.
fn open_checks() -> Vec<Check> {
    let mut c = pairs(&ALL, &ALL, Probe::Ping, true);
    c.extend(pairs(&ALL, &ALL, Probe::Tcp(80), true));
    c.extend(pairs(&ALL, &ALL, Probe::Udp(53), true));
    c
}

#[test]
fn rules_by_group_network_cidr_port_priority_and_default_deny() {
    let cluster = Cluster::new(2);
    let tmp = TempDir::new("weft-policy-");
    cluster.apply_pruned(&spec(&[], false, &[], &[]));
    let cs = start(&cluster, &tmp, &LAYOUT);

    // Groups without policy: everything within the network passes.
    expect(&cluster, &cs, "no policy", &open_checks());

    // In, by group, port and range; an allow over a lower deny; protocols apart.
    cluster.apply_pruned(&spec(
        &["db-in"],
        false,
        &[],
        &[
            rule(
                "db-in",
                "g-deny",
                5,
                r#""direction": "in", "fromEndpointGroup": "web", "protocol": "tcp", "action": "deny""#,
            ),
            rule(
                "db-in",
                "g-allow",
                10,
                r#""direction": "in", "fromEndpointGroup": "web", "protocol": "tcp", "port": 5432, "portEnd": 5433, "action": "allow""#,
            ),
        ],
    ));
    let mut c = vec![];
    c.extend(pairs(&WEB, &DB, Probe::Tcp(5432), true));
    c.extend(pairs(&WEB, &DB, Probe::Tcp(5433), true));
    c.extend(pairs(&WEB, &DB, Probe::Tcp(5434), false));
    c.extend(pairs(&WEB, &DB, Probe::Tcp(80), false));
    c.extend(pairs(&WEB, &DB, Probe::Ping, true));
    c.extend(pairs(&WEB, &DB, Probe::Udp(53), true));
    c.extend(pairs(&NONE, &DB, Probe::Tcp(5434), true));
    c.extend(pairs(&NONE, &DB, Probe::Tcp(80), true));
    // In-rules do not govern what db starts, nor anything between others.
    c.extend(pairs(&DB, &WEB, Probe::Tcp(80), true));
    c.extend(pairs(&DB, &NONE, Probe::Tcp(80), true));
    c.extend(pairs(&WEB, &NONE, Probe::Tcp(80), true));
    c.extend(pairs(&NONE, &WEB, Probe::Tcp(80), true));
    c.extend(pairs(&WEB, &WEB, Probe::Tcp(5434), true));
    expect(&cluster, &cs, "by group, port and range", &c);

    // Priority: the highest matching rule decides; at equal priority a deny wins.
    cluster.apply_pruned(&spec(
        &["db-in"],
        false,
        &[],
        &[
            rule(
                "db-in",
                "p-deny",
                10,
                r#""direction": "in", "fromEndpointGroup": "web", "protocol": "tcp", "action": "deny""#,
            ),
            rule(
                "db-in",
                "p-low",
                5,
                r#""direction": "in", "fromEndpointGroup": "web", "protocol": "tcp", "port": 5432, "action": "allow""#,
            ),
            rule(
                "db-in",
                "p-high",
                20,
                r#""direction": "in", "fromEndpointGroup": "web", "protocol": "tcp", "port": 5433, "action": "allow""#,
            ),
            rule(
                "db-in",
                "p-equal",
                10,
                r#""direction": "in", "fromEndpointGroup": "web", "protocol": "tcp", "port": 5434, "action": "allow""#,
            ),
        ],
    ));
    let mut c = vec![];
    c.extend(pairs(&WEB, &DB, Probe::Tcp(5432), false));
    c.extend(pairs(&WEB, &DB, Probe::Tcp(5433), true));
    c.extend(pairs(&WEB, &DB, Probe::Tcp(5434), false));
    c.extend(pairs(&WEB, &DB, Probe::Tcp(80), false));
    c.extend(pairs(&NONE, &DB, Probe::Tcp(5432), true));
    c.extend(pairs(&NONE, &DB, Probe::Tcp(5434), true));
    c.extend(pairs(&NONE, &DB, Probe::Tcp(80), true));
    expect(&cluster, &cs, "priority order", &c);

    // In, by network and by CIDR; UDP and ICMP.
    cluster.apply_pruned(&spec(
        &["db-in"],
        false,
        &[],
        &[
            rule(
                "db-in",
                "n-udp",
                10,
                r#""direction": "in", "fromNetwork": "app", "protocol": "udp", "port": 53, "action": "deny""#,
            ),
            // Another network's subnet: matches nothing here.
            rule(
                "db-in",
                "n-other",
                10,
                r#""direction": "in", "fromNetwork": "other", "protocol": "icmp", "action": "deny""#,
            ),
            rule(
                "db-in",
                "c-host",
                10,
                r#""direction": "in", "fromIpAddress": "10.234.1.32/32", "protocol": "tcp", "action": "deny""#,
            ),
            // 10.234.1.8-15: a1 and a2.
            rule(
                "db-in",
                "c-net",
                10,
                r#""direction": "in", "fromIpAddress": "10.234.1.8/29", "protocol": "tcp", "port": 8080, "action": "deny""#,
            ),
            rule(
                "db-in",
                "c-far",
                10,
                r#""direction": "in", "fromIpAddress": "10.99.0.0/16", "action": "deny""#,
            ),
        ],
    ));
    let srcs = [A1, A2, N1, N2];
    let mut c = vec![];
    c.extend(pairs(&srcs, &DB, Probe::Udp(53), false));
    c.extend(pairs(&srcs, &DB, Probe::Udp(5353), true));
    c.extend(pairs(&srcs, &DB, Probe::Ping, true));
    c.extend(pairs(&[N2], &DB, Probe::Tcp(80), false));
    c.extend(pairs(&[N2], &DB, Probe::Tcp(8080), false));
    c.extend(pairs(&[N1], &DB, Probe::Tcp(80), true));
    c.extend(pairs(&[N1], &DB, Probe::Tcp(8080), true));
    c.extend(pairs(&WEB, &DB, Probe::Tcp(80), true));
    c.extend(pairs(&WEB, &DB, Probe::Tcp(8080), false));
    // Not db: untouched.
    c.extend(pairs(&[N2], &WEB, Probe::Tcp(8080), true));
    c.extend(pairs(&NONE, &WEB, Probe::Udp(53), true));
    expect(&cluster, &cs, "by network and CIDR", &c);

    // Out, by group, CIDR and network, on web.
    cluster.apply_pruned(&spec(
        &[],
        false,
        &["web-out"],
        &[
            rule(
                "web-out",
                "o-grp",
                10,
                r#""direction": "out", "toEndpointGroup": "db", "protocol": "tcp", "port": 8080, "action": "deny""#,
            ),
            rule(
                "web-out",
                "o-cidr",
                10,
                r#""direction": "out", "toIpAddress": "10.234.1.32/32", "protocol": "udp", "action": "deny""#,
            ),
            rule(
                "web-out",
                "o-net",
                10,
                r#""direction": "out", "toNetwork": "app", "protocol": "tcp", "port": 5434, "action": "deny""#,
            ),
            rule(
                "web-out",
                "o-over",
                20,
                r#""direction": "out", "toEndpointGroup": "db", "protocol": "tcp", "port": 5433, "portEnd": 5434, "action": "allow""#,
            ),
        ],
    ));
    let mut c = vec![];
    c.extend(pairs(&WEB, &DB, Probe::Tcp(8080), false));
    c.extend(pairs(&WEB, &NONE, Probe::Tcp(8080), true));
    c.extend(pairs(&NONE, &DB, Probe::Tcp(8080), true));
    c.extend(pairs(&WEB, &[N2], Probe::Udp(53), false));
    c.extend(pairs(&WEB, &[N2], Probe::Udp(5353), false));
    c.extend(pairs(&WEB, &[N2], Probe::Tcp(80), true));
    c.extend(pairs(&WEB, &[N1], Probe::Udp(53), true));
    c.extend(pairs(&[N1, B1, B2], &[N2], Probe::Udp(53), true));
    c.extend(pairs(&[N1, B1, B2], &[N2], Probe::Udp(5353), true));
    c.extend(pairs(&WEB, &NONE, Probe::Tcp(5434), false));
    c.extend(pairs(&WEB, &WEB, Probe::Tcp(5434), false));
    c.extend(pairs(&DB, &NONE, Probe::Tcp(5434), true));
    c.extend(pairs(&DB, &WEB, Probe::Tcp(5434), true));
    c.extend(pairs(&WEB, &DB, Probe::Tcp(5434), true));
    c.extend(pairs(&WEB, &DB, Probe::Tcp(5433), true));
    // Out-rules do not govern what comes in.
    c.extend(pairs(&NONE, &WEB, Probe::Tcp(8080), true));
    expect(&cluster, &cs, "out: by group, CIDR and network", &c);

    // Default-deny on db, both ways; replies of what it allows pass, although web denies
    // anything new from db at the highest priority.
    cluster.apply_pruned(&spec(
        &["db-in"],
        true,
        &["web-in"],
        &[
            rule(
                "db-in",
                "d-pg",
                10,
                r#""direction": "in", "fromEndpointGroup": "web", "protocol": "tcp", "port": 5432, "action": "allow""#,
            ),
            rule(
                "db-in",
                "d-icmp",
                10,
                r#""direction": "in", "fromEndpointGroup": "web", "protocol": "icmp", "action": "allow""#,
            ),
            rule(
                "db-in",
                "d-out-n1",
                10,
                r#""direction": "out", "toIpAddress": "10.234.1.31/32", "protocol": "tcp", "port": 80, "action": "allow""#,
            ),
            rule(
                "db-in",
                "d-out-web",
                10,
                r#""direction": "out", "toEndpointGroup": "web", "protocol": "tcp", "port": 80, "action": "allow""#,
            ),
            rule(
                "web-in",
                "w-no-db",
                100,
                r#""direction": "in", "fromEndpointGroup": "db", "action": "deny""#,
            ),
        ],
    ));
    let mut c = vec![];
    c.extend(pairs(&WEB, &DB, Probe::Tcp(5432), true));
    c.extend(pairs(&WEB, &DB, Probe::Ping, true));
    c.extend(pairs(&WEB, &DB, Probe::Tcp(5433), false));
    c.extend(pairs(&WEB, &DB, Probe::Udp(53), false));
    c.extend(pairs(&NONE, &DB, Probe::Tcp(5432), false));
    c.extend(pairs(&NONE, &DB, Probe::Ping, false));
    c.extend(pairs(&DB, &DB, Probe::Tcp(5432), false));
    c.extend(pairs(&DB, &[N1], Probe::Tcp(80), true));
    c.extend(pairs(&DB, &[N1], Probe::Tcp(8080), false));
    c.extend(pairs(&DB, &[N1], Probe::Ping, false));
    c.extend(pairs(&DB, &[N2], Probe::Tcp(80), false));
    c.extend(pairs(&[N1], &[N2], Probe::Tcp(80), true));
    c.extend(pairs(&DB, &WEB, Probe::Tcp(80), false));
    c.extend(pairs(&NONE, &WEB, Probe::Tcp(80), true));
    c.extend(pairs(&WEB, &NONE, Probe::Tcp(80), true));
    expect(&cluster, &cs, "default-deny and replies", &c);

    // Policies gone: everything passes again.
    cluster.apply_pruned(&spec(&[], false, &[], &[]));
    expect(&cluster, &cs, "policies removed", &open_checks());
}

/// A TCP connection fed a line every 100 ms by a thread; the receiver writes what it gets to a
/// file. Both processes are killed on drop.
struct Stream {
    server: Child,
    client: Child,
    out: PathBuf,
    stop: Arc<AtomicBool>,
    writer: Option<std::thread::JoinHandle<u64>>,
}

impl Stream {
    fn start(from: &Ctr, to: &Ctr, port: u16, out: PathBuf) -> Stream {
        let file = std::fs::File::create(&out).unwrap();
        let server = to
            .ns
            .command(&["nc", "-l", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(300));
        let mut client = from
            .ns
            .command(&["nc", &to.ip, &port.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = client.stdin.take().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let writer = std::thread::spawn(move || {
            let mut n = 0;
            while !s.load(Ordering::Relaxed) {
                if writeln!(stdin, "line {n}")
                    .and_then(|_| stdin.flush())
                    .is_err()
                {
                    break;
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            n
        });
        Stream {
            server,
            client,
            out,
            stop,
            writer: Some(writer),
        }
    }

    /// Lines received so far.
    fn received(&self) -> usize {
        std::fs::read_to_string(&self.out)
            .map(|s| s.lines().count())
            .unwrap_or(0)
    }

    fn alive(&mut self) -> bool {
        matches!(self.client.try_wait(), Ok(None)) && matches!(self.server.try_wait(), Ok(None))
    }

    /// Stops writing: lines written.
    fn stop(&mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.writer.take().map(|w| w.join().unwrap()).unwrap_or(0)
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for c in [&mut self.client, &mut self.server] {
            let _ = c.kill();
            let _ = c.wait();
        }
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// Waits (10 s at most) until `s` has received more than `n` lines.
fn grows(s: &Stream, n: usize) -> bool {
    systemtests::eventually(Duration::from_secs(10), || s.received() > n)
}

#[test]
fn rule_changes_while_traffic_runs() {
    let cluster = Cluster::new(2);
    let tmp = TempDir::new("weft-policy-live-");
    // db under policy from the start (a policy without rules: everything passes, tracked).
    cluster.apply_pruned(&spec(&["db-in"], false, &[], &[]));
    let cs = start(&cluster, &tmp, &LAYOUT);
    let mut base = vec![];
    base.extend(pairs(&WEB, &DB, Probe::Tcp(80), true));
    base.extend(pairs(&WEB, &DB, Probe::Ping, true));
    base.extend(pairs(&NONE, &DB, Probe::Tcp(80), true));
    base.extend(pairs(&NONE, &DB, Probe::Ping, true));
    expect(&cluster, &cs, "before", &base);

    // Long-lived: a2 → b1 (across hosts) and a1 → b1 (same host), and a2 pinging b1.
    let mut cross = Stream::start(&cs[A2], &cs[B1], 7000, tmp.path().join("cross"));
    let mut same = Stream::start(&cs[A1], &cs[B1], 7001, tmp.path().join("same"));
    assert!(grows(&cross, 2) && grows(&same, 2), "streams flow");
    let flood = Flood::start(&cs[A2].ns, &cs[B1].ip, 25);
    let mut flood = Some(flood);
    std::thread::sleep(Duration::from_millis(500));
    eprintln!("deny applied at {}", systemtests::unix_now());
    cluster.apply(&spec(
        &["db-in"],
        false,
        &[],
        &[rule(
            "db-in",
            "block",
            50,
            r#""direction": "in", "fromEndpointGroup": "web", "action": "deny""#,
        )],
    ));
    let mut denied = vec![];
    denied.extend(pairs(&WEB, &DB, Probe::Tcp(80), false));
    denied.extend(pairs(&WEB, &DB, Probe::Ping, false));
    denied.extend(pairs(&WEB, &DB, Probe::Udp(53), false));
    denied.extend(pairs(&NONE, &DB, Probe::Tcp(80), true));
    denied.extend(pairs(&NONE, &DB, Probe::Ping, true));
    denied.extend(pairs(&NONE, &DB, Probe::Udp(53), true));
    expect(&cluster, &cs, "deny while traffic runs", &denied);
    // The established connections keep going, the running ping too.
    let (c0, s0) = (cross.received(), same.received());
    assert!(
        grows(&cross, c0 + 5) && grows(&same, s0 + 5),
        "established connections stopped after the deny (cross {c0}→{}, same {s0}→{})\n{}",
        cross.received(),
        same.received(),
        policy_flows(&cluster)
    );
    assert!(
        cross.alive() && same.alive(),
        "an established connection ended"
    );
    assert!(
        flood.as_mut().unwrap().running(),
        "the flood must outlast the deny"
    );

    // The deny goes: new connections pass again.
    eprintln!("deny removed at {}", systemtests::unix_now());
    cluster.delete(&format!("/api/v1/rules/{T}:db-in:block/"));
    let mut open = vec![];
    open.extend(pairs(&WEB, &DB, Probe::Tcp(80), true));
    open.extend(pairs(&WEB, &DB, Probe::Ping, true));
    open.extend(pairs(&WEB, &DB, Probe::Udp(53), true));
    expect(&cluster, &cs, "deny removed", &open);
    assert!(
        flood.as_mut().unwrap().running(),
        "the flood must outlast the removal"
    );

    // Nothing of the established traffic was lost.
    let (sent, got) = flood.take().unwrap().finish();
    assert_eq!(
        sent,
        got,
        "the established ping lost {} of {sent} (see the lines above)",
        sent - got
    );
    let (wc, ws) = (cross.stop(), same.stop());
    assert!(
        systemtests::eventually(Duration::from_secs(5), || cross.received() as u64 == wc
            && same.received() as u64 == ws),
        "lines lost: cross {wc} written, {} received; same {ws} written, {} received",
        cross.received(),
        same.received()
    );
}
