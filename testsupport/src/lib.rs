//! Test fixtures that use the real thing: network namespaces, Open vSwitch instances (userspace
//! datapath, each in its own directory and namespace) and etcd servers.
//!
//! Every fixture removes what it made when dropped, also when the test panics, and names what it
//! makes uniquely (process id and a counter), so tests run in parallel without clashing. A missing
//! binary is a panic that says how to install it, never a silent skip.
//!
//! Tests may shell out to `ip`, `ovs-vsctl`, `ovs-ofctl` and friends here: they observe and set
//! up; the product itself speaks the protocols.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub mod frames;

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A name unique to this process and call: `PREFIX<pid>x<n>`, short enough for interface names.
pub fn unique_name(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}{}x{n}", std::process::id() % 100_000)
}

/// Runs a command, panicking with its output if it fails.
pub fn run(cmd: &mut Command) -> String {
    let out = output(cmd);
    if !out.status.success() {
        panic!(
            "{:?} failed ({}):\n{}{}",
            cmd,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn output(cmd: &mut Command) -> Output {
    cmd.output().unwrap_or_else(|e| {
        let prog = cmd.get_program().to_string_lossy().into_owned();
        if e.kind() == std::io::ErrorKind::NotFound {
            panic!(
                "{prog} not found: run scripts/test.sh, which installs what the tests need ({})",
                package_of(&prog)
            );
        }
        panic!("running {prog}: {e}")
    })
}

fn package_of(prog: &str) -> &'static str {
    match prog {
        "etcd" => "etcd-server",
        "ip" => "iproute2",
        p if p.starts_with("ovs") => "openvswitch-switch",
        _ => "see scripts/install-deps.sh",
    }
}

/// Polls `cond` every 20 ms until it holds (true) or `timeout` passes (false).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until `cond` holds, polling; panics with `what` (and `detail()`) after `timeout`.
pub fn wait_for(
    what: &str,
    timeout: Duration,
    mut cond: impl FnMut() -> bool,
    detail: impl Fn() -> String,
) {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > timeout {
            panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                detail()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Arms a watchdog for this test process (once; later calls do nothing): if the process still
/// runs after `limit`, it says so, removes what this process's fixtures made (their daemons, child
/// processes, namespaces and directories, all named after the process id) and exits with a
/// failure. A hung test then fails with a message instead of stalling the whole run. An
/// interrupted run (SIGINT, SIGTERM, SIGHUP) cleans up the same way before it exits.
pub fn watchdog(limit: Duration) {
    static ARMED: std::sync::Once = std::sync::Once::new();
    ARMED.call_once(|| {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        match signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
            Ok(mut signals) => {
                std::thread::Builder::new()
                    .name("interrupted".into())
                    .spawn(move || {
                        if let Some(sig) = signals.forever().next() {
                            eprintln!("interrupted (signal {sig}): cleaning up");
                            clean_up_after_process();
                            std::process::exit(128 + sig);
                        }
                    })
                    .expect("signal thread");
            }
            Err(e) => eprintln!("cannot catch interruptions ({e}); a ^C leaves things behind"),
        }
        std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                std::thread::sleep(limit);
                eprintln!(
                    "watchdog: this test process is still running after {limit:?}; \
                     something hangs. Cleaning up and failing."
                );
                clean_up_after_process();
                std::process::exit(101);
            })
            .expect("watchdog thread");
    });
}

/// Removes every fixture this process made, without their owners' help (for the watchdog).
fn clean_up_after_process() {
    let pid = std::process::id();
    let tag = format!("{}x", pid % 100_000);
    let tmp = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let ours = name.starts_with("weft-")
                && name
                    .rsplit('-')
                    .next()
                    .is_some_and(|rest| rest.starts_with(&tag));
            if !ours {
                continue;
            }
            if let Ok(files) = std::fs::read_dir(e.path()) {
                for f in files.flatten() {
                    if f.path().extension().is_some_and(|x| x == "pid") {
                        if let Ok(p) = std::fs::read_to_string(f.path()) {
                            let _ = Command::new("kill").args(["-9", p.trim()]).output();
                        }
                    }
                }
            }
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
    let _ = Command::new("pkill")
        .args(["-9", "-P", &pid.to_string()])
        .output();
    if let Ok(out) = Command::new("ip").args(["netns", "list"]).output() {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let name = line.split_whitespace().next().unwrap_or("");
            if name.starts_with(&format!("wt{tag}")) {
                let _ = Command::new("ip").args(["netns", "del", name]).output();
            }
        }
    }
}

/// (transmitted, received) from the summary line of `ping`'s output, if it printed one.
pub fn ping_summary(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().find(|l| l.contains("packets transmitted"))?;
    let n: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .take(2)
        .map(|s| s.parse().ok())
        .collect::<Option<_>>()?;
    (n.len() == 2).then(|| (n[0], n[1]))
}

/// `ping -c COUNT -i 0.2 -W 1 ADDR` inside `c`: how many replies came back (0 when ping could not
/// even send). `ping` exits 0 on a single reply out of COUNT, so callers compare this count.
pub fn ping_replies(c: &Netns, addr: &str, count: u32) -> u64 {
    let out = output(&mut c.command(&[
        "ping",
        "-c",
        &count.to_string(),
        "-i",
        "0.2",
        "-W",
        "1",
        addr,
    ]));
    ping_summary(&String::from_utf8_lossy(&out.stdout)).map_or(0, |(_, r)| r)
}

/// Packets interface `ifname` in `c` received (the kernel's counter).
pub fn rx_packets(c: &Netns, ifname: &str) -> u64 {
    c.exec(&[
        "cat",
        &format!("/sys/class/net/{ifname}/statistics/rx_packets"),
    ])
    .trim()
    .parse()
    .expect("a packet count")
}

/// A ping from a container at 100 per second for a while, for "nothing lost while ..." checks.
/// Killed when dropped before [`Flood::finish`].
pub struct Flood(Option<std::process::Child>);

impl Flood {
    /// Starts pinging `addr` from `c`: `secs` × 100 pings, one each 10 ms (or slower, as the
    /// machine allows). A count, not a deadline: at a deadline ping stops with a packet in flight
    /// and counts it as lost.
    pub fn start(c: &Netns, addr: &str, secs: u32) -> Flood {
        let child = c
            .command(&[
                "ping",
                "-D",
                "-i",
                "0.01",
                "-c",
                &(secs * 100).to_string(),
                "-W",
                "1",
                addr,
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ping");
        Flood(Some(child))
    }

    /// Whether the ping still runs.
    pub fn running(&mut self) -> bool {
        self.0
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// Waits for the end: (sent, received).
    pub fn finish(self) -> (u64, u64) {
        let (sent, got, _) = self.finish_with_losses();
        (sent, got)
    }

    /// Waits for the end: (sent, received, when each lost ping was sent, as unix time — the
    /// answer before it plus 10 ms per ping between, to set beside what the test did when).
    pub fn finish_with_losses(mut self) -> (u64, u64, Vec<f64>) {
        let out = self
            .0
            .take()
            .expect("running")
            .wait_with_output()
            .expect("ping ends");
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        let (sent, got) =
            ping_summary(&text).unwrap_or_else(|| panic!("no summary from ping: {text}"));
        let mut lost = vec![];
        if sent != got {
            eprintln!("{}", lost_pings(&text, sent));
            let answered = answers(&text);
            for seq in (1..=sent).filter(|s| !answered.contains_key(s)) {
                let at = match answered.range(..seq).next_back() {
                    Some((p, t)) => t + (seq - p) as f64 * 0.01,
                    None => answered
                        .range(seq..)
                        .next()
                        .map_or(0.0, |(n, t)| t - (n - seq) as f64 * 0.01),
                };
                lost.push(at);
            }
        }
        (sent, got, lost)
    }
}

/// The answered pings of a `ping -D` run: sequence number → unix time of the answer.
fn answers(text: &str) -> std::collections::BTreeMap<u64, f64> {
    text.lines()
        .filter(|l| l.contains("bytes from"))
        .filter_map(|l| {
            let ts = l.trim_start_matches('[').split(']').next()?.parse().ok()?;
            let seq = l
                .split("icmp_seq=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse()
                .ok()?;
            Some((seq, ts))
        })
        .collect()
}

/// Which pings of a `ping -D` run got no answer, with the (unix) times of the answers around
/// them, to set beside what the test did when.
fn lost_pings(text: &str, sent: u64) -> String {
    let mut answered = std::collections::BTreeMap::new();
    for l in text.lines().filter(|l| l.contains("bytes from")) {
        let ts = l
            .trim_start_matches('[')
            .split(']')
            .next()
            .unwrap_or("")
            .to_string();
        if let Some(seq) = l
            .split("icmp_seq=")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
        {
            answered.insert(seq, ts);
        }
    }
    let mut out = vec![];
    for seq in 1..=sent {
        if !answered.contains_key(&seq) {
            let before = answered.range(..seq).next_back().map(|(_, t)| t.as_str());
            let after = answered.range(seq..).next().map(|(_, t)| t.as_str());
            out.push(format!(
                "ping: no answer to icmp_seq={seq} (answers around it at {} and {})",
                before.unwrap_or("-"),
                after.unwrap_or("-")
            ));
        }
    }
    out.join("\n")
}

/// Now, as unix time, to compare with `ping -D`.
pub fn unix_now() -> String {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}.{:06}", d.as_secs(), d.subsec_micros())
}

impl Drop for Flood {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A scratch directory removed on drop.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let p = std::env::temp_dir().join(unique_name(prefix));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A network namespace, deleted on drop.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    pub fn new() -> Netns {
        let name = unique_name("wt");
        run(Command::new("ip").args(["netns", "add", &name]));
        let ns = Netns { name };
        ns.exec(&["ip", "link", "set", "lo", "up"]);
        ns
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `/var/run/netns/NAME`, the path the product takes.
    pub fn path(&self) -> PathBuf {
        PathBuf::from("/var/run/netns").join(&self.name)
    }

    /// A command that runs inside the namespace.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.name]).args(args);
        c
    }

    /// Runs inside the namespace; panics on failure.
    pub fn exec(&self, args: &[&str]) -> String {
        run(&mut self.command(args))
    }

    /// Runs inside the namespace; returns whether it succeeded.
    pub fn try_exec(&self, args: &[&str]) -> bool {
        output(&mut self.command(args)).status.success()
    }

    /// Moves the calling thread into the namespace (threads it starts later inherit it). For
    /// running a tokio runtime, and the agent in it, "on" a simulated host. The thread stays
    /// there: use it on a thread of its own (each test runs on one).
    pub fn enter_current_thread(&self) {
        setns_net(std::fs::File::open(self.path()).expect("namespace file"));
    }
}

/// Moves the calling thread into the network namespace of `ns` (an open namespace file).
pub fn setns_net(ns: std::fs::File) {
    nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
}

impl Default for Netns {
    fn default() -> Self {
        Netns::new()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// One Open vSwitch (ovsdb-server and ovs-vswitchd) with the userspace datapath, in its own
/// directory and network namespace, as `shared/ENVIRONMENT.md` describes.
#[derive(Debug)]
pub struct Ovs {
    dir: TempDir,
    netns: Netns,
}

impl Ovs {
    pub fn start() -> Ovs {
        let dir = TempDir::new("weft-ovs-");
        let netns = Netns::new();
        let d = dir.path().to_string_lossy().into_owned();
        let ovs = Ovs { dir, netns };
        let env = [
            ("OVS_RUNDIR", d.as_str()),
            ("OVS_LOGDIR", d.as_str()),
            ("OVS_DBDIR", d.as_str()),
        ];
        run(Command::new("ovsdb-tool").args([
            "create",
            &format!("{d}/conf.db"),
            "/usr/share/openvswitch/vswitch.ovsschema",
        ]));
        let mut c = ovs.netns.command(&[
            "ovsdb-server",
            &format!("{d}/conf.db"),
            &format!("--remote=punix:{d}/db.sock"),
            &format!("--unixctl={d}/ovsdb-server.ctl"),
            &format!("--pidfile={d}/ovsdb-server.pid"),
            &format!("--log-file={d}/ovsdb-server.log"),
            "--detach",
        ]);
        c.envs(env);
        run(&mut c);
        ovs.vsctl(&["--no-wait", "init"]);
        ovs.start_vswitchd();
        ovs
    }

    fn start_vswitchd(&self) {
        let d = self.dir.path().to_string_lossy().into_owned();
        let mut c = self.netns.command(&[
            "ovs-vswitchd",
            &format!("unix:{d}/db.sock"),
            &format!("--unixctl={d}/ovs-vswitchd.ctl"),
            &format!("--pidfile={d}/ovs-vswitchd.pid"),
            &format!("--log-file={d}/ovs-vswitchd.log"),
            "--detach",
        ]);
        c.envs([
            ("OVS_RUNDIR", d.as_str()),
            ("OVS_LOGDIR", d.as_str()),
            ("OVS_DBDIR", d.as_str()),
        ]);
        run(&mut c);
    }

    /// Stops ovs-vswitchd (as a crash would: flows are lost, the database stays).
    pub fn stop_vswitchd(&self) {
        if let Ok(pid) = std::fs::read_to_string(self.dir().join("ovs-vswitchd.pid")) {
            let pid = pid.trim().to_string();
            let _ = Command::new("kill").args(["-9", &pid]).output();
            let start = Instant::now();
            while process_alive(&pid) && start.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = std::fs::remove_file(self.dir().join("ovs-vswitchd.pid"));
    }

    /// Starts ovs-vswitchd again after [`Ovs::stop_vswitchd`].
    pub fn start_vswitchd_again(&self) {
        self.start_vswitchd();
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn netns(&self) -> &Netns {
        &self.netns
    }

    /// `unix:DIR/db.sock`.
    pub fn db_remote(&self) -> String {
        format!("unix:{}/db.sock", self.dir().display())
    }

    /// The OpenFlow management socket of `bridge`.
    pub fn mgmt_socket(&self, bridge: &str) -> PathBuf {
        self.dir().join(format!("{bridge}.mgmt"))
    }

    /// Adds a netdev bridge speaking OpenFlow 1.3 with `fail_mode=secure`, and waits for its
    /// management socket.
    pub fn add_bridge(&self, bridge: &str) {
        self.vsctl(&[
            "add-br",
            bridge,
            "--",
            "set",
            "bridge",
            bridge,
            "datapath_type=netdev",
            "protocols=OpenFlow13",
            "fail_mode=secure",
        ]);
        let sock = self.mgmt_socket(bridge);
        wait_for(
            &format!("{}", sock.display()),
            Duration::from_secs(10),
            || sock.exists(),
            || self.log_tail(),
        );
    }

    pub fn vsctl(&self, args: &[&str]) -> String {
        run(Command::new("ovs-vsctl")
            .arg(format!("--db={}", self.db_remote()))
            .arg("--timeout=10")
            .args(args))
    }

    /// `ovs-ofctl -O OpenFlow13 CMD unix:DIR/BRIDGE.mgmt ARGS...`.
    pub fn ofctl(&self, cmd: &str, bridge: &str, args: &[&str]) -> String {
        run(Command::new("ovs-ofctl")
            .args(["-O", "OpenFlow13", cmd])
            .arg(format!("unix:{}", self.mgmt_socket(bridge).display()))
            .args(args))
    }

    pub fn appctl(&self, args: &[&str]) -> String {
        run(Command::new("ovs-appctl")
            .arg("-t")
            .arg(self.dir().join("ovs-vswitchd.ctl"))
            .args(args))
    }

    /// The last lines of vswitchd's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir().join("ovs-vswitchd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    fn stop_daemon(&self, name: &str) {
        let ctl = self.dir().join(format!("{name}.ctl"));
        let _ = Command::new("ovs-appctl")
            .arg("-t")
            .arg(&ctl)
            .arg("exit")
            .output();
        if let Ok(pid) = std::fs::read_to_string(self.dir().join(format!("{name}.pid"))) {
            let pid = pid.trim().to_string();
            let alive = || Path::new(&format!("/proc/{pid}")).exists();
            let start = Instant::now();
            while alive() && start.elapsed() < Duration::from_secs(3) {
                std::thread::sleep(Duration::from_millis(20));
            }
            if alive() {
                let _ = Command::new("kill").args(["-9", &pid]).output();
            }
        }
    }
}

impl Drop for Ovs {
    fn drop(&mut self) {
        self.stop_daemon("ovs-vswitchd");
        self.stop_daemon("ovsdb-server");
        // dir and netns are dropped after this, removing the rest.
    }
}

/// Whether a process runs: it exists and is not a zombie. Daemons detach to PID 1, which in some
/// sandboxes reaps late, so an exited daemon may linger as a zombie for a while.
pub fn process_alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// A free TCP port on the loopback address (bound once, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral port")
}

/// An etcd server on free loopback ports with its own data directory.
#[derive(Debug)]
pub struct Etcd {
    child: std::process::Child,
    client_url: String,
    _dir: TempDir,
}

impl Etcd {
    pub fn start() -> Etcd {
        Etcd::start_in(None)
    }

    /// An etcd server inside `ns` (on its loopback), or in the test's own namespace.
    pub fn start_in(ns: Option<&Netns>) -> Etcd {
        let dir = TempDir::new("weft-etcd-");
        let (cp, pp) = (free_port(), free_port());
        let client_url = format!("http://127.0.0.1:{cp}");
        let peer_url = format!("http://127.0.0.1:{pp}");
        let log = std::fs::File::create(dir.path().join("etcd.log")).expect("etcd log file");
        let mut cmd = match ns {
            Some(ns) => ns.command(&["etcd"]),
            None => Command::new("etcd"),
        };
        cmd.arg("--name")
            .arg("default")
            .arg("--data-dir")
            .arg(dir.path().join("data"))
            .args([
                "--listen-client-urls",
                &client_url,
                "--advertise-client-urls",
                &client_url,
            ])
            .args([
                "--listen-peer-urls",
                &peer_url,
                "--initial-advertise-peer-urls",
                &peer_url,
            ])
            .args(["--initial-cluster", &format!("default={peer_url}")])
            // Weft commits a whole intent change in one transaction; etcd's default of 128
            // operations per transaction is too few for large specs.
            .args(["--max-txn-ops", "100000", "--max-request-bytes", "33554432"])
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log);
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!("etcd not found or not startable ({e}): run scripts/test.sh, which installs etcd-server")
        });
        let etcd = Etcd {
            child,
            client_url,
            _dir: dir,
        };
        let port = cp;
        let ns_path = ns.map(Netns::path);
        let accepts = move || match &ns_path {
            None => std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
            Some(p) => {
                let p = p.clone();
                std::thread::spawn(move || {
                    setns_net(std::fs::File::open(p).expect("namespace file"));
                    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
                })
                .join()
                .unwrap_or(false)
            }
        };
        wait_for(
            "etcd to accept connections",
            Duration::from_secs(15),
            accepts,
            || std::fs::read_to_string(etcd._dir.path().join("etcd.log")).unwrap_or_default(),
        );
        etcd
    }

    /// `http://127.0.0.1:PORT`.
    pub fn client_url(&self) -> &str {
        &self.client_url
    }

    /// Stops the server (for tests of an unreachable store); the data directory stays until drop.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Several etcd members forming one cluster, each on its own loopback ports and data directory.
#[derive(Debug)]
pub struct EtcdCluster {
    members: Vec<(std::process::Child, String)>,
    _dir: TempDir,
}

impl EtcdCluster {
    /// `n` members (`m0`, `m1`, ...); returns once every member accepts connections.
    pub fn start(n: usize) -> EtcdCluster {
        let dir = TempDir::new("weft-etcd-cluster-");
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let initial = ports
            .iter()
            .enumerate()
            .map(|(i, (_, pp))| format!("m{i}=http://127.0.0.1:{pp}"))
            .collect::<Vec<_>>()
            .join(",");
        let mut members = vec![];
        for (i, (cp, pp)) in ports.iter().enumerate() {
            let client_url = format!("http://127.0.0.1:{cp}");
            let peer_url = format!("http://127.0.0.1:{pp}");
            let log = std::fs::File::create(dir.path().join(format!("m{i}.log"))).expect("log");
            let child = Command::new("etcd")
                .args(["--name", &format!("m{i}")])
                .arg("--data-dir")
                .arg(dir.path().join(format!("m{i}")))
                .args(["--listen-client-urls", &client_url])
                .args(["--advertise-client-urls", &client_url])
                .args(["--listen-peer-urls", &peer_url])
                .args(["--initial-advertise-peer-urls", &peer_url])
                .args(["--initial-cluster", &initial])
                .args(["--initial-cluster-state", "new"])
                .args(["--max-txn-ops", "100000", "--max-request-bytes", "33554432"])
                .stdout(log.try_clone().expect("clone log handle"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("etcd not found or not startable ({e}): run scripts/test.sh, which installs etcd-server")
                });
            members.push((child, client_url));
        }
        let cluster = EtcdCluster { members, _dir: dir };
        for (cp, _) in &ports {
            let port = *cp;
            wait_for(
                "etcd members to accept connections",
                Duration::from_secs(20),
                || std::net::TcpStream::connect(("127.0.0.1", port)).is_ok(),
                || {
                    (0..n)
                        .map(|i| {
                            std::fs::read_to_string(cluster._dir.path().join(format!("m{i}.log")))
                                .unwrap_or_default()
                        })
                        .collect::<Vec<_>>()
                        .join("\n")
                },
            );
        }
        cluster
    }

    /// Every member's client URL.
    pub fn client_urls(&self) -> Vec<String> {
        self.members.iter().map(|(_, u)| u.clone()).collect()
    }

    /// Stops member `i` (kill -9).
    pub fn kill(&mut self, i: usize) {
        let _ = self.members[i].0.kill();
        let _ = self.members[i].0.wait();
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            self.kill(i);
        }
    }
}

/// A container image as a tarball, for `podman import` / `docker import`: `/bin/busybox` (from
/// busybox-static) and a link for each of its applets, built under `dir`. Returns the tarball.
pub fn busybox_image_tar(dir: &Path) -> PathBuf {
    let root = dir.join("rootfs");
    std::fs::create_dir_all(root.join("bin")).expect("rootfs/bin");
    std::fs::copy("/bin/busybox", root.join("bin/busybox")).expect("/bin/busybox (busybox-static)");
    let list = run(Command::new("/bin/busybox").arg("--list"));
    for a in list.lines().filter(|a| *a != "busybox") {
        let _ = std::os::unix::fs::symlink("busybox", root.join("bin").join(a));
    }
    let tar = dir.join("busybox-image.tar");
    run(Command::new("tar").args([
        "-C",
        &root.display().to_string(),
        "-cf",
        &tar.display().to_string(),
        ".",
    ]));
    tar
}

/// A dockerd of a test's own: data, exec root, socket and pid file in a temp directory, no
/// bridge, no iptables, the vfs storage driver. Started in the root namespace or inside `ns` (a
/// simulated host: Docker then moves interfaces out of that namespace). Its containers are
/// removed and it is stopped on drop, and whatever is still mounted under its directory goes.
pub struct Dockerd {
    dir: TempDir,
    child: std::process::Child,
}

impl Dockerd {
    pub fn start_in(ns: Option<&Netns>) -> Dockerd {
        let dir = TempDir::new("weft-dockerd-");
        let d = dir.path();
        let log = std::fs::File::create(d.join("dockerd.log")).expect("dockerd.log");
        let s = |p: &Path| p.display().to_string();
        let args = [
            "dockerd".to_string(),
            "--data-root".into(),
            s(&d.join("data")),
            "--exec-root".into(),
            s(&d.join("exec")),
            "--pidfile".into(),
            s(&d.join("docker.pid")),
            "-H".into(),
            format!("unix://{}", s(&d.join("docker.sock"))),
            "--iptables=false".into(),
            "--bridge=none".into(),
            "--storage-driver=vfs".into(),
        ];
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        // Only the network namespace: `ip netns exec` would also give dockerd a mount namespace
        // with a fresh /sys and no cgroup filesystem. nsenter execs dockerd: the child is dockerd.
        let mut cmd = match ns {
            Some(ns) => {
                let mut c = Command::new("nsenter");
                c.arg(format!("--net={}", ns.path().display())).args(&args);
                c
            }
            None => {
                let mut c = Command::new(args[0]);
                c.args(&args[1..]);
                c
            }
        };
        let child = cmd
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("dockerd (docker.io)");
        let dk = Dockerd { dir, child };
        for _ in 0..150 {
            if dk.try_run(&["version"]).is_ok() {
                return dk;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("dockerd did not come up: {}", dk.log());
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("dockerd.log")).unwrap_or_default()
    }

    /// `docker ARGS` against this daemon: Ok(stdout) or Err(stderr).
    pub fn try_run(&self, args: &[&str]) -> Result<String, String> {
        // Debian's client matches Debian's daemon (a newer CLI may be first on PATH).
        let out = Command::new("/usr/bin/docker")
            .arg("-H")
            .arg(format!(
                "unix://{}",
                self.dir.path().join("docker.sock").display()
            ))
            .args(args)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("docker CLI");
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).to_string())
        }
    }

    pub fn run(&self, args: &[&str]) -> String {
        self.try_run(args)
            .unwrap_or_else(|e| panic!("docker {}: {e}", args.join(" ")))
    }

    /// Imports the busybox image (see [`busybox_image_tar`]) as `weft-busybox:test`.
    pub fn busybox(&self) -> String {
        let tar = busybox_image_tar(self.dir.path());
        let name = "weft-busybox:test";
        self.run(&["import", &tar.display().to_string(), name]);
        name.to_string()
    }

    /// The IPv4 address (with prefix) of `eth0` in container `c`.
    pub fn addr_of(&self, c: &str) -> String {
        let out = self.run(&["exec", c, "ip", "-4", "-o", "addr", "show", "eth0"]);
        out.split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .unwrap_or_else(|| panic!("{c}: no IPv4 address: {out}"))
            .to_string()
    }

    /// Whether every one of three pings from `from` to `to` is answered (`ping` exits 0 on a
    /// single reply, so the count is read from its summary).
    pub fn pings(&self, from: &str, to: &str) -> bool {
        self.replies(from, to, 3) == 3
    }

    /// How many of `count` pings from container `from` to `to` are answered.
    pub fn replies(&self, from: &str, to: &str, count: u32) -> u64 {
        let n = count.to_string();
        let out = match self.try_run(&["exec", from, "ping", "-c", &n, "-i", "0.2", "-W", "1", to])
        {
            Ok(o) => o,
            // No reply at all: docker exec passes on ping's failure; nothing was answered.
            Err(_) => return 0,
        };
        ping_summary(&out).map_or(0, |(_, r)| r)
    }

    /// For "`from` does not reach `to`": pings `addr` `count` times from container `from` and
    /// says (packets that arrived at `to`'s `eth0` meanwhile, pings answered). Afterwards
    /// `from`'s neighbour cache goes, so that the kernel's further ARP tries (flooded in `from`'s
    /// own network) cannot land in the next check's window.
    pub fn arrivals(
        &self,
        from: &str,
        addr: &str,
        count: u32,
        to: &Dockerd,
        to_c: &str,
    ) -> (u64, u64) {
        let before = to.rx_packets(to_c);
        let answered = self.replies(from, addr, count);
        let arrived = to.rx_packets(to_c) - before;
        // From outside, in the container's network namespace (`docker exec` gets no
        // CAP_NET_ADMIN here).
        let pid = self.run(&["inspect", "-f", "{{.State.Pid}}", from]);
        run(Command::new("nsenter")
            .arg(format!("--net=/proc/{}/ns/net", pid.trim()))
            .args(["ip", "neigh", "flush", "to", addr]));
        (arrived, answered)
    }

    /// Packets `eth0` in container `c` received (the kernel's counter).
    pub fn rx_packets(&self, c: &str) -> u64 {
        self.run(&[
            "exec",
            c,
            "cat",
            "/sys/class/net/eth0/statistics/rx_packets",
        ])
        .trim()
        .parse()
        .expect("a packet count")
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Ok(ids) = self.try_run(&["ps", "-aq"]) {
            for id in ids.split_whitespace() {
                let _ = self.try_run(&["rm", "-f", id]);
            }
        }
        // SIGTERM: dockerd stops its containerd and unmounts what it mounted.
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Anything still mounted below our directory goes before the directory does.
        if let Ok(m) = std::fs::read_to_string("/proc/self/mounts") {
            let root = self.dir.path().display().to_string();
            let mut points: Vec<&str> = m
                .lines()
                .filter_map(|l| l.split(' ').nth(1))
                .filter(|mp| mp.starts_with(&root))
                .collect();
            points.sort_by_key(|mp| std::cmp::Reverse(mp.len()));
            for mp in points {
                let _ = Command::new("umount").arg("-l").arg(mp).status();
            }
        }
    }
}

/// Removes a file on drop (a socket in a shared directory such as `/run/docker/plugins`), also
/// when a check fails.
pub struct RemoveOnDrop(pub PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
