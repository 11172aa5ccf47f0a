//! Policy realization latency on two simulated hosts: from the start of the REST call that adds
//! or removes a rule (what an operator waits from; the call's own duration is reported apart) to
//! traffic flipping on every host, for one rule and for a policy of 1,000 rules.
//! Run: `cargo bench -p systemtests --bench policy`.
//!
//! Group `db` (one endpoint on each host) denies by default; its policy allows ICMP (so the path
//! is proven) and, when the flipping rule is there, TCP port 80 from group `cli` (one endpoint on
//! each host). Four probers, one per (client, db endpoint) pair — so each host's switch is judged
//! for a same-host and a cross-host sender — try new TCP connections to port 80 from threads
//! inside the clients' namespaces, each attempt given 50 ms. Allow: ten threads per pair try back
//! to back, started 5 ms apart; the flip is the start of the first accepted attempt (a SYN sent
//! before it is dropped), so it is seen within about 5 ms. Deny: one thread tries back to back;
//! the flip is the start of the first of three refused attempts in a row (an accepted attempt
//! takes about a millisecond, then 5 ms of pause), so within about 6 ms.
//! The figure for "every host" is the slowest of the four pairs.

use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use systemtests::{reaches, Cluster, Listener};
use testsupport::Netns;

const T: &str = "pb";
const FILLER: usize = 999;
const ROUNDS: usize = 5;

fn spec(rules: &[String]) -> String {
    format!(
        r#"{{
  "global": {{ "vxlans": "5000-5999" }},
  "tenants": [ {{ "tenantName": "{T}" }} ],
  "networks": [
    {{ "tenantName": "{T}", "networkName": "bench", "encap": "vxlan", "pktTag": 5351,
      "subnet": "10.235.1.0/24", "gateway": "10.235.1.1" }}
  ],
  "endpointGroups": [
    {{ "tenantName": "{T}", "groupName": "db", "networkName": "bench", "policies": ["bench"],
      "defaultDeny": true }},
    {{ "tenantName": "{T}", "groupName": "cli", "networkName": "bench" }}
  ],
  "policies": [ {{ "tenantName": "{T}", "policyName": "bench" }} ],
  "rules": [
    {{ "tenantName": "{T}", "policyName": "bench", "ruleId": "icmp", "priority": 1,
      "direction": "in", "protocol": "icmp", "action": "allow" }}{}
  ]
}}"#,
        rules.iter().map(|r| format!(",\n{r}")).collect::<String>()
    )
}

/// The rule that flips traffic: TCP 80 from `cli` into `db`.
fn flip_rule() -> String {
    format!(
        r#"{{ "tenantName": "{T}", "policyName": "bench", "ruleId": "flip", "priority": 50,
  "direction": "in", "fromEndpointGroup": "cli", "protocol": "tcp", "port": 80, "action": "allow" }}"#
    )
}

/// 999 other rules, none matching TCP port 80: by group, by address, by CIDR with UDP port
/// ranges, allow and deny, priorities 1-100, in and out.
fn filler() -> Vec<String> {
    (0..FILLER)
        .map(|i| {
            let body = match i % 4 {
                0 => format!(
                    r#""direction": "in", "fromEndpointGroup": "cli", "protocol": "tcp", "port": {}"#,
                    1000 + i
                ),
                1 => format!(
                    r#""direction": "in", "fromIpAddress": "10.200.{}.{}/32", "protocol": "tcp", "port": {}"#,
                    i / 256,
                    i % 256,
                    2000 + i
                ),
                2 => format!(
                    r#""direction": "in", "fromIpAddress": "10.201.{}.0/24", "protocol": "udp", "port": {}, "portEnd": {}"#,
                    i % 256,
                    10000 + 10 * i,
                    10000 + 10 * i + 9
                ),
                _ => format!(
                    r#""direction": "out", "toIpAddress": "10.202.{}.0/24", "protocol": "tcp", "port": {}"#,
                    i % 256,
                    3000 + i
                ),
            };
            format!(
                r#"{{ "tenantName": "{T}", "policyName": "bench", "ruleId": "f{i:04}", "priority": {},
  {body}, "action": "{}" }}"#,
                1 + i % 100,
                if i % 2 == 0 { "allow" } else { "deny" }
            )
        })
        .collect()
}

/// What a prober is asked: watch for `want` (need `need` attempts in a row), at most `limit`.
struct Watch {
    want: bool,
    need: usize,
    limit: Duration,
}

/// Connections tried while waiting for the first accepted one: this many threads (new threads
/// share the namespace of the thread that makes them), each trying back to back with 50 ms
/// for each, started 5 ms apart. A SYN sent before the flip is dropped, so the first accepted
/// attempt started after the flip, at most about 5 ms after it.
const STAGGERED: u32 = 10;

fn first_accepted(addr: SocketAddr, limit: Duration) -> Option<Instant> {
    let done = std::sync::atomic::AtomicBool::new(false);
    let start = Instant::now();
    std::thread::scope(|s| {
        let workers: Vec<_> = (0..STAGGERED)
            .map(|k| {
                let done = &done;
                s.spawn(move || {
                    std::thread::sleep(Duration::from_millis(5 * k as u64));
                    while start.elapsed() < limit && !done.load(Ordering::Relaxed) {
                        let t = Instant::now();
                        if TcpStream::connect_timeout(&addr, Duration::from_millis(50)).is_ok() {
                            done.store(true, Ordering::Relaxed);
                            return Some(t);
                        }
                    }
                    None
                })
            })
            .collect();
        workers
            .into_iter()
            .filter_map(|w| w.join().expect("worker"))
            .min()
    })
}

/// The start of the first of `need` attempts in a row that were not accepted within 50 ms.
fn refused_in_a_row(addr: SocketAddr, need: usize, limit: Duration) -> Option<Instant> {
    let start = Instant::now();
    let mut run: Option<Instant> = None;
    let mut n = 0;
    while start.elapsed() < limit {
        let t = Instant::now();
        if TcpStream::connect_timeout(&addr, Duration::from_millis(50)).is_err() {
            run.get_or_insert(t);
            n += 1;
            if n >= need {
                return run;
            }
        } else {
            run = None;
            n = 0;
            // Accepted, not wanted: do not hammer the listener.
            std::thread::sleep(Duration::from_millis(5));
        }
    }
    None
}

/// A thread inside a client's namespace trying TCP connections to one address.
struct Prober {
    name: String,
    tx: Option<mpsc::Sender<Watch>>,
    rx: mpsc::Receiver<Option<Instant>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Prober {
    fn start(name: String, ns: &Netns, addr: SocketAddr) -> Prober {
        let path = ns.path();
        let (tx, rx_cmd) = mpsc::channel::<Watch>();
        let (tx_res, rx) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            testsupport::setns_net(std::fs::File::open(path).expect("namespace"));
            for w in rx_cmd {
                let seen = if w.want {
                    first_accepted(addr, w.limit)
                } else {
                    refused_in_a_row(addr, w.need, w.limit)
                };
                let _ = tx_res.send(seen);
            }
        });
        Prober {
            name,
            tx: Some(tx),
            rx,
            thread: Some(thread),
        }
    }

    fn watch(&self, want: bool, limit: Duration) {
        let need = if want { 1 } else { 3 };
        self.tx
            .as_ref()
            .unwrap()
            .send(Watch { want, need, limit })
            .unwrap();
    }

    fn result(&self) -> Option<Instant> {
        self.rx.recv().expect("prober answers")
    }
}

impl Drop for Prober {
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The state every prober sees now must be `want` (a few attempts in a row).
fn assert_state(cluster: &Cluster, probers: &[Prober], want: bool, what: &str) {
    for p in probers {
        p.watch(want, Duration::from_secs(20));
    }
    for p in probers {
        assert!(
            p.result().is_some(),
            "{what}: {} never {}\n{}",
            p.name,
            if want { "connected" } else { "refused" },
            cluster.diagnose()
        );
    }
}

/// Starts the probers watching for `want`, runs `change` (a REST call to netmaster), and returns
/// (how long the call took, per prober the time from the call's start to the flip).
fn measure(
    cluster: &Cluster,
    probers: &[Prober],
    want: bool,
    what: &str,
    change: impl FnOnce(),
) -> (f64, Vec<f64>) {
    for p in probers {
        p.watch(want, Duration::from_secs(60));
    }
    let t0 = Instant::now();
    change();
    let accepted = Instant::now();
    let flips: Vec<f64> = probers
        .iter()
        .map(|p| {
            let t = p.result().unwrap_or_else(|| {
                panic!(
                    "{what}: {} did not flip within 60 s\n{}",
                    p.name,
                    cluster.diagnose()
                )
            });
            // A prober's flip is the start of its first attempt in the new state: one started
            // before the call can only be a prober that had not yet seen the old state go.
            t.saturating_duration_since(t0).as_secs_f64()
        })
        .collect();
    ((accepted - t0).as_secs_f64(), flips)
}

struct Series {
    what: String,
    apply: Vec<f64>,
    /// Per round, the slowest pair (every host flipped).
    all: Vec<f64>,
    /// Per round and pair.
    pairs: Vec<Vec<f64>>,
}

impl Series {
    fn new(what: &str) -> Series {
        Series {
            what: what.into(),
            apply: vec![],
            all: vec![],
            pairs: vec![],
        }
    }
    fn add(&mut self, (apply, flips): (f64, Vec<f64>)) {
        self.apply.push(apply);
        self.all
            .push(flips.iter().cloned().fold(f64::MIN, f64::max));
        self.pairs.push(flips);
    }
    fn print(&self, names: &[String]) {
        let ms = |v: f64| format!("{:.0}", v * 1000.0);
        let med = |v: &[f64]| {
            let mut s = v.to_vec();
            s.sort_by(|a, b| a.partial_cmp(b).unwrap());
            s[s.len() / 2]
        };
        let max = |v: &[f64]| v.iter().cloned().fold(f64::MIN, f64::max);
        println!(
            "{}: REST call returned in {} ms (median of {}); from its start to every host \
             flipped: median {} ms, max {} ms",
            self.what,
            ms(med(&self.apply)),
            self.apply.len(),
            ms(med(&self.all)),
            ms(max(&self.all)),
        );
        let per: Vec<String> = names
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let v: Vec<f64> = self.pairs.iter().map(|r| r[i]).collect();
                format!("{n} {}", ms(med(&v)))
            })
            .collect();
        println!("    per pair (median ms): {}", per.join(", "));
        println!(
            "    rounds (ms, slowest pair): {}",
            self.all
                .iter()
                .map(|v| ms(*v))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
}

fn main() {
    let cluster = Cluster::new(2);
    cluster.apply_pruned(&spec(&[]));
    let rt = tokio::runtime::Runtime::new().unwrap();
    // (name, host, group, address)
    let layout = [
        ("b1", 0, "db", "10.235.1.21"),
        ("b2", 1, "db", "10.235.1.22"),
        ("c1", 0, "cli", "10.235.1.31"),
        ("c2", 1, "cli", "10.235.1.32"),
    ];
    let ns: Vec<Netns> = layout.iter().map(|_| Netns::new()).collect();
    for (i, &(name, host, group, ip)) in layout.iter().enumerate() {
        rt.block_on(cluster.hosts[host].attach_in_group(&ns[i], name, T, "bench", group, ip))
            .unwrap();
    }
    let _listeners: Vec<Listener> = ns[..2].iter().map(|n| Listener::tcp(n, 80)).collect();
    // The path works (ICMP is allowed) before anything is measured.
    for (c, b) in [(2, 0), (2, 1), (3, 0), (3, 1)] {
        assert!(
            systemtests::eventually(Duration::from_secs(15), || reaches(&ns[c], layout[b].3, 1)),
            "{} → {}: no ping\n{}",
            layout[c].0,
            layout[b].0,
            cluster.diagnose()
        );
    }
    let mut probers = vec![];
    let mut names = vec![];
    for (c, b) in [(2, 0), (3, 0), (2, 1), (3, 1)] {
        let name = format!(
            "{}→{} ({})",
            layout[c].0,
            layout[b].0,
            if layout[c].1 == layout[b].1 {
                "same host"
            } else {
                "cross host"
            }
        );
        let addr: SocketAddr = format!("{}:80", layout[b].3).parse().unwrap();
        probers.push(Prober::start(name.clone(), &ns[c], addr));
        names.push(name);
    }
    assert_state(&cluster, &probers, false, "default-deny before any rule");

    let rule_path = format!("/api/v1/rules/{T}:bench:flip/");
    let flip_spec = spec(&[flip_rule()]);

    // One rule, into a policy with one other rule.
    let mut add1 = Series::new("one rule added (allow)");
    let mut del1 = Series::new("one rule removed (deny again)");
    for _ in 0..ROUNDS {
        add1.add(measure(&cluster, &probers, true, "add one", || {
            cluster.apply(&flip_spec)
        }));
        del1.add(measure(&cluster, &probers, false, "remove one", || {
            cluster.delete(&rule_path)
        }));
    }

    // A 1,000-rule policy applied at once (999 others and the flipping rule), and removed.
    let mut big: Vec<String> = filler();
    big.push(flip_rule());
    let big_spec = spec(&big);
    let mut add1000 = Series::new("1,000-rule policy applied (allow)");
    let mut del1000 = Series::new("1,000-rule policy removed (deny again)");
    let base = spec(&[]);
    for _ in 0..3 {
        add1000.add(measure(&cluster, &probers, true, "apply 1,000", || {
            cluster.apply(&big_spec)
        }));
        del1000.add(measure(&cluster, &probers, false, "remove 1,000", || {
            cluster.apply_pruned(&base)
        }));
    }

    // One rule added to and removed from a policy that holds 999 others.
    cluster.apply(&spec(&filler()));
    assert_state(&cluster, &probers, false, "999 rules, none for port 80");
    let mut addin = Series::new("one rule added to a 1,000-rule policy (allow)");
    let mut delin = Series::new("one rule removed from a 1,000-rule policy (deny again)");
    for _ in 0..ROUNDS {
        addin.add(measure(
            &cluster,
            &probers,
            true,
            "add one of 1,000",
            || cluster.apply(&flip_spec),
        ));
        delin.add(measure(
            &cluster,
            &probers,
            false,
            "remove one of 1,000",
            || cluster.delete(&rule_path),
        ));
    }
    let flows: Vec<usize> = cluster
        .hosts
        .iter()
        .map(|h| {
            h.ovs
                .ofctl("dump-flows", "br-int", &["--no-stats"])
                .lines()
                .filter(|l| l.contains("table="))
                .count()
        })
        .collect();

    println!(
        "policy realization latency, 2 hosts (userspace OVS), 4 probed pairs, from the REST \
         call's start to traffic flipped (resolution about 5 ms):"
    );
    for s in [&add1, &del1, &add1000, &del1000, &addin, &delin] {
        s.print(&names);
    }
    println!("    flows per switch with the 999 rules: {flows:?}");
    drop(probers);
}
