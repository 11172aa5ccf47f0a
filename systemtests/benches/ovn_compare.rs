//! Endpoint attach latency, Weft against OVN, in one run on the same machine and the same two
//! simulated hosts (systemtests' `Cluster`: each host a namespace with its own Open vSwitch,
//! userspace datapath). The workload is the same on both: N ports (200; `OVN_COMPARE_N` changes
//! it), alternating between the two hosts, bound one by one, each waited for; every port goes
//! into a namespace of its own, made before the clock starts.
//!
//! - **OVN** (Debian's `ovn-central` and `ovn-host`; `scripts/install-ovn.sh` installs them when
//!   `ovn-nbctl` is missing): private NB and SB ovsdb-servers and ovn-northd in the fabric's
//!   namespace (SB on TCP at the management address), one ovn-controller per host on that host's
//!   own Open vSwitch (bridge `br-ovn`, Geneve between the hosts' VTEP addresses), one logical
//!   switch. One attach: the veth made with its peer in the container's namespace, the peer's MAC
//!   and address set and both ends up (`ip`), the host end added to `br-ovn` with
//!   `external_ids:iface-id` (`ovs-vsctl`, which waits for ovs-vswitchd), then
//!   `ovn-nbctl --wait=hv lsp-add … -- lsp-set-addresses …`: returns when every chassis has
//!   caught up with the change. The `--wait=hv` step is also reported alone.
//! - **Weft**: the host's endpoint service `Attach` (`Host::attach`), request to reply; the reply
//!   comes after the host's switch confirmed the endpoint's flows. Kernel work (veth, namespace,
//!   MAC, address, routes) and netmaster's address allocation included.
//!
//! OVN runs first, then is removed entirely (its daemons stopped, `br-ovn` deleted, its ports'
//! namespaces gone), then Weft runs; netplugin (in-process) idles during the OVN phase.
//! Run: `cargo bench -p systemtests --bench ovn_compare` (as root).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use systemtests::{eventually, reaches, Cluster, Host, Process, MGMT_IP};
use testsupport::{run, wait_for, Netns, TempDir};

const DEFAULT_PORTS: usize = 200;
/// The SB database's TCP port on the management address, for the hosts' ovn-controllers.
const SB_PORT: u16 = 6642;

/// Nearest rank.
fn pct(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn p50(v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    pct(&s, 0.5)
}

/// Ports counted apart at the start and at the end, to show how a step grows with the ports
/// already bound.
const EDGE: usize = 20;

/// Prints n, p50, p90, p99, max, and the p50 of the first and of the last [`EDGE`] ports;
/// returns p50.
fn report(what: &str, v: &[Duration]) -> Duration {
    let mut s = v.to_vec();
    s.sort();
    let edges = if v.len() >= 2 * EDGE {
        format!(
            "  (first {EDGE}: {:.1}, last {EDGE}: {:.1})",
            ms(p50(&v[..EDGE])),
            ms(p50(&v[v.len() - EDGE..]))
        )
    } else {
        String::new()
    };
    println!(
        "  {what:<34} n={:<4} p50 {:>7.1} ms  p90 {:>7.1} ms  p99 {:>7.1} ms  max {:>7.1} ms{edges}",
        s.len(),
        ms(pct(&s, 0.5)),
        ms(pct(&s, 0.9)),
        ms(pct(&s, 0.99)),
        ms(pct(&s, 1.0))
    );
    pct(&s, 0.5)
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Resident memory of a process, from /proc.
fn rss(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .map_or_else(|| "?".into(), |v| v.trim().to_string())
}

/// Installs Debian's OVN with `scripts/install-ovn.sh` unless `ovn-nbctl` is there.
fn ensure_ovn_installed() {
    let found = Command::new("ovn-nbctl")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../scripts/install-ovn.sh");
        println!("ovn-nbctl not found: running {}", script.display());
        run(&mut Command::new(script));
    }
}

/// A private OVN: NB and SB databases, northd, one ovn-controller per host. Daemons are stopped
/// when dropped (controllers first), their directory removed; each writes a pid file into that
/// directory, so an interrupted run's cleanup (`testsupport::watchdog`) finds them.
struct Ovn {
    controllers: Vec<Process>,
    northd: Process,
    sb: Process,
    nb: Process,
    dir: TempDir,
}

impl Ovn {
    /// Starts the central part in the fabric's namespace and a controller on each host, and
    /// returns when every host is a chassis in SB with its tunnels made.
    fn start(c: &Cluster) -> Ovn {
        let dir = TempDir::new("weft-ovn-");
        let d = dir.path().to_path_buf();
        let fab = c.fabric.netns();
        let db = |name: &str, schema: &str, extra: Option<String>| {
            let file = d.join(format!("{name}.db"));
            run(Command::new("ovsdb-tool")
                .arg("create")
                .arg(&file)
                .arg(schema));
            let sock = d.join(format!("{name}.sock"));
            let mut args = vec![
                file.display().to_string(),
                format!("--remote=punix:{}", sock.display()),
            ];
            args.extend(extra);
            let p = daemon(fab, &d, &d, "ovsdb-server", name, args);
            wait_for(
                &format!("{name} database socket"),
                Duration::from_secs(10),
                || sock.exists(),
                || p.log(),
            );
            p
        };
        let nb = db("nb", "/usr/share/ovn/ovn-nb.ovsschema", None);
        let sb = db(
            "sb",
            "/usr/share/ovn/ovn-sb.ovsschema",
            Some(format!("--remote=ptcp:{SB_PORT}:{MGMT_IP}")),
        );
        let northd = daemon(
            fab,
            &d,
            &d,
            "ovn-northd",
            "northd",
            vec![
                format!("--ovnnb-db=unix:{}", d.join("nb.sock").display()),
                format!("--ovnsb-db=unix:{}", d.join("sb.sock").display()),
            ],
        );
        let mut ovn = Ovn {
            controllers: vec![],
            northd,
            sb,
            nb,
            dir,
        };
        for (i, h) in c.hosts.iter().enumerate() {
            h.ovs.vsctl(&[
                "set",
                "Open_vSwitch",
                ".",
                &format!("external_ids:system-id={}", chassis(h)),
                &format!("external_ids:ovn-remote=tcp:{MGMT_IP}:{SB_PORT}"),
                "external_ids:ovn-encap-type=geneve",
                &format!("external_ids:ovn-encap-ip={}", h.vtep),
                "external_ids:ovn-bridge=br-ovn",
                "external_ids:ovn-bridge-datapath-type=netdev",
            ]);
            let p = daemon(
                h.ovs.netns(),
                &d,
                h.ovs.dir(),
                "ovn-controller",
                &format!("controller{i}"),
                vec![h.ovs.db_remote()],
            );
            ovn.controllers.push(p);
        }
        // Every host a chassis, and every host's bridge with a tunnel to each other host.
        let names: Vec<String> = c.hosts.iter().map(chassis).collect();
        wait_for(
            "every host registered as an OVN chassis, with its tunnels",
            Duration::from_secs(60),
            || {
                ovn.check_running();
                let listed = ovn.sbctl(&["--bare", "--columns=name", "list", "Chassis"]);
                names.iter().all(|n| listed.lines().any(|l| l.trim() == n))
                    && c.hosts.iter().all(|h| {
                        let tunnels = h.ovs.vsctl(&[
                            "--bare",
                            "--columns=name",
                            "find",
                            "Interface",
                            "type=geneve",
                        ]);
                        tunnels.split_whitespace().count() == c.hosts.len() - 1
                    })
            },
            || ovn.logs(),
        );
        ovn.nbctl(&[
            "init",
            "--",
            "ls-add",
            "ls",
            "--",
            "set",
            "Logical_Switch",
            "ls",
            "other_config:subnet=10.251.0.0/16",
        ]);
        ovn
    }

    fn ctl(&self, prog: &str, db: &str, args: &[&str]) -> String {
        run(Command::new(prog)
            .arg(format!(
                "--db=unix:{}",
                self.dir.path().join(format!("{db}.sock")).display()
            ))
            .arg("--timeout=60")
            .args(args))
    }

    fn nbctl(&self, args: &[&str]) -> String {
        self.ctl("ovn-nbctl", "nb", args)
    }

    fn sbctl(&self, args: &[&str]) -> String {
        self.ctl("ovn-sbctl", "sb", args)
    }

    /// Panics, with the logs, if a daemon has exited.
    fn check_running(&self) {
        let all = [&self.nb, &self.sb, &self.northd];
        for p in all.into_iter().chain(&self.controllers) {
            assert!(
                testsupport::process_alive(&p.pid().to_string()),
                "an OVN daemon exited\n{}",
                self.logs()
            );
        }
    }

    /// The daemons' logs, for failure messages.
    fn logs(&self) -> String {
        let mut out = String::new();
        for (what, p) in [("nb", &self.nb), ("sb", &self.sb), ("northd", &self.northd)]
            .into_iter()
            .chain(self.controllers.iter().map(|p| ("controller", p)))
        {
            out.push_str(&format!("--- {what}\n{}\n", p.log()));
        }
        out
    }

    /// One port bound on `h` in container `c`, the way a CMS on OVN does it (see the top of the
    /// file). Returns the times of the whole attach and of its steps.
    fn attach(&self, h: &Host, c: &Netns, i: usize) -> Steps {
        let (hns, cns) = (h.ovs.netns().name(), c.name());
        let (veth, lsp) = (format!("o{i}"), format!("lsp{i}"));
        let (mac, ip) = ovn_addr(i);
        let t0 = Instant::now();
        run(Command::new("ip").args([
            "-n", hns, "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", cns,
        ]));
        run(Command::new("ip").args(["-n", cns, "link", "set", "eth0", "address", &mac, "up"]));
        run(Command::new("ip").args([
            "-n",
            cns,
            "addr",
            "add",
            &format!("{ip}/16"),
            "dev",
            "eth0",
        ]));
        run(Command::new("ip").args(["-n", hns, "link", "set", &veth, "up"]));
        let t1 = Instant::now();
        h.ovs.vsctl(&[
            "add-port",
            "br-ovn",
            &veth,
            "--",
            "set",
            "Interface",
            &veth,
            &format!("external_ids:iface-id={lsp}"),
        ]);
        let t2 = Instant::now();
        self.nbctl(&[
            "--wait=hv",
            "lsp-add",
            "ls",
            &lsp,
            "--",
            "lsp-set-addresses",
            &lsp,
            &format!("{mac} {ip}"),
        ]);
        Steps {
            whole: t0.elapsed(),
            ip: t1 - t0,
            vsctl: t2 - t1,
            wait_hv: t2.elapsed(),
        }
    }
}

/// One OVN attach: the whole, and its steps (`ip`: veth, namespace, MAC, address, links up;
/// `ovs-vsctl add-port`; `ovn-nbctl --wait=hv lsp-add`).
struct Steps {
    whole: Duration,
    ip: Duration,
    vsctl: Duration,
    wait_hv: Duration,
}

/// A daemon of OVS or OVN (`prog`) in `ns`, in the foreground, its pid file and log in `dir`
/// (named `tag`), with `rundir` as OVS_RUNDIR (where ovn-controller finds the bridge's OpenFlow
/// socket) and `dir` as OVN_RUNDIR: the control sockets land there, nothing in the machine's own
/// run directories.
fn daemon(
    ns: &Netns,
    dir: &Path,
    rundir: &Path,
    prog: &str,
    tag: &str,
    args: Vec<String>,
) -> Process {
    let mut all = vec![
        format!("OVS_RUNDIR={}", rundir.display()),
        format!("OVN_RUNDIR={}", dir.display()),
        prog.to_string(),
    ];
    all.extend(args);
    all.push(format!(
        "--pidfile={}",
        dir.join(format!("{tag}.pid")).display()
    ));
    Process::start(ns, Path::new("env"), &all, dir.join(format!("{tag}.log")))
}

fn chassis(h: &Host) -> String {
    format!("ovn-{}", h.name)
}

/// Port `i`'s MAC and address on OVN's logical switch (10.251.0.0/16).
fn ovn_addr(i: usize) -> (String, String) {
    let n = i + 10;
    (
        format!("0a:00:00:00:{:02x}:{:02x}", (n >> 8) & 0xff, n & 0xff),
        format!("10.251.{}.{}", (n >> 8) & 0xff, n & 0xff),
    )
}

/// Whether a link name from `ip -o link` (` oNN@ifMM`) is the host end of an OVN port's veth.
fn is_ovn_veth(name: &str) -> bool {
    let name = name.trim().split('@').next().unwrap_or("");
    name.strip_prefix('o')
        .is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()))
}

/// Port `i` lives on host `i % 2`.
fn host_of(i: usize) -> usize {
    i % 2
}

/// Binds `n` ports on OVN; returns the times of each and ovn-controller's RSS on each host.
fn ovn_phase(cluster: &Cluster, n: usize) -> (Vec<Steps>, Vec<String>) {
    let ovn = Ovn::start(cluster);
    let spaces: Vec<Netns> = (0..n).map(|_| Netns::new()).collect();
    let steps: Vec<Steps> = spaces
        .iter()
        .enumerate()
        .map(|(i, c)| ovn.attach(&cluster.hosts[host_of(i)], c, i))
        .collect();
    // Every port is bound (up), and a cross-host pair answers: OVN did what it was timed for.
    let up = ovn.nbctl(&["--bare", "--columns=up", "list", "Logical_Switch_Port"]);
    let bound = up.lines().filter(|l| l.trim() == "true").count();
    assert_eq!(bound, n, "OVN ports up:\n{up}\n{}", ovn.logs());
    if n >= 2 {
        let (_, ip1) = ovn_addr(1);
        assert!(
            eventually(Duration::from_secs(10), || reaches(&spaces[0], &ip1, 1)),
            "OVN: port 0 (host1) does not reach port 1 (host2)\n{}",
            ovn.logs()
        );
    }
    let rss: Vec<String> = ovn
        .controllers
        .iter()
        .zip(&cluster.hosts)
        .map(|(p, h)| format!("{} {}", h.name, rss(p.pid())))
        .collect();
    // Gone before Weft runs: daemons, bridge, ports (their namespaces), the hosts' OVN settings.
    drop(ovn);
    for h in &cluster.hosts {
        h.ovs.vsctl(&["--if-exists", "del-br", "br-ovn"]);
        h.ovs.vsctl(&[
            "remove",
            "Open_vSwitch",
            ".",
            "external_ids",
            "system-id",
            "ovn-remote",
            "ovn-encap-type",
            "ovn-encap-ip",
            "ovn-bridge",
            "ovn-bridge-datapath-type",
        ]);
    }
    drop(spaces);
    for h in &cluster.hosts {
        wait_for(
            "OVN's veths gone",
            Duration::from_secs(60),
            || {
                !h.ovs
                    .netns()
                    .exec(&["ip", "-o", "link", "show"])
                    .lines()
                    .any(|l| is_ovn_veth(l.split(':').nth(1).unwrap_or("")))
            },
            || h.ovs.netns().exec(&["ip", "-o", "link", "show"]),
        );
    }
    (steps, rss)
}

fn weft_phase(cluster: &Cluster, n: usize) -> Vec<Duration> {
    cluster.apply(
        r#"{ "tenants": [ { "tenantName": "bench" } ],
             "networks": [ { "tenantName": "bench", "networkName": "net", "encap": "vxlan",
                             "subnet": "10.250.0.0/16", "gateway": "10.250.0.1" } ] }"#,
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let spaces: Vec<Netns> = (0..n).map(|_| Netns::new()).collect();
    let mut times = vec![];
    let mut addrs = vec![];
    for (i, c) in spaces.iter().enumerate() {
        let h = &cluster.hosts[host_of(i)];
        let t0 = Instant::now();
        let itf = rt
            .block_on(h.attach(c, &format!("w{i}"), "bench", "net", ""))
            .unwrap_or_else(|e| panic!("Weft attach {i} on {}: {e}", h.name));
        times.push(t0.elapsed());
        addrs.push(itf.ipv4.split('/').next().unwrap_or("").to_string());
    }
    if n >= 2 {
        assert!(
            eventually(Duration::from_secs(10), || reaches(
                &spaces[0], &addrs[1], 1
            )),
            "Weft: w0 (host1) does not reach w1 (host2)\n{}",
            cluster.diagnose()
        );
    }
    times
}

fn main() {
    let n: usize = std::env::var("OVN_COMPARE_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_PORTS);
    ensure_ovn_installed();
    let version = run(Command::new("ovn-nbctl").arg("--version"));
    let version = version
        .lines()
        .next()
        .unwrap_or("ovn-nbctl ?")
        .trim()
        .to_string();
    let cluster = Cluster::new(2);
    println!(
        "endpoint attach latency, {n} ports alternating between 2 simulated hosts, bound one by \
         one, each waited for; OVN first (then removed), then Weft"
    );

    println!("OVN ({version}), load average {}:", loadavg());
    let (ovn, rss) = ovn_phase(&cluster, n);
    let step = |f: fn(&Steps) -> Duration| ovn.iter().map(f).collect::<Vec<_>>();
    let ovn_p50 = report("OVN attach (kernel work included)", &step(|s| s.whole));
    report("  of which ip (veth, netns, addr)", &step(|s| s.ip));
    report("  of which ovs-vsctl add-port", &step(|s| s.vsctl));
    report("  of which ovn-nbctl --wait=hv", &step(|s| s.wait_hv));

    println!("Weft, load average {}:", loadavg());
    let weft = weft_phase(&cluster, n);
    let weft_p50 = report("Weft attach (request to reply)", &weft);

    let ratio = ms(weft_p50) / ms(ovn_p50);
    println!("Weft p50 / OVN p50 = {ratio:.3}");
    println!("OVN p50 / Weft p50 = {:.1}", 1.0 / ratio);
    println!(
        "goal, Weft's p50 at most a tenth of OVN's: {}",
        if ratio <= 0.1 { "met" } else { "not met" }
    );
    println!("ovn-controller RSS after {n} ports: {}", rss.join(", "));
}
