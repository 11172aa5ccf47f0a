//! netplugin's memory as an operator sees it: the real binary (its own process in a simulated
//! host), its resident set (VmRSS) idle, with 200 local endpoints and with 1,000 (`RSS_N`).
//! For comparison: ovn-controller's RSS after 200 ports is printed by
//! `cargo bench -p systemtests --bench ovn_compare`.
//!
//! `cargo bench -p systemtests --bench netplugin_rss` (as root).

use systemtests::Cluster;
use testsupport::Netns;

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .expect("VmRSS")
}

fn main() {
    let n: usize = std::env::var("RSS_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let mut cluster = Cluster::new(1);
    cluster.apply(
        r#"{ "global": { "vxlans": "7000-7999" }, "tenants": [ { "tenantName": "rss" } ],
             "networks": [ { "tenantName": "rss", "networkName": "n", "encap": "vxlan",
               "pktTag": 7000, "subnet": "10.250.0.0/20", "gateway": "10.250.0.1" } ] }"#,
    );
    cluster.hosts[0].start_real_agent();
    let pid = cluster.hosts[0]
        .real_agent_pid()
        .expect("the real netplugin");
    let spaces: Vec<Netns> = (0..n).map(|_| Netns::new()).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    println!("netplugin RSS, idle: {:.1} MB", rss_kb(pid) as f64 / 1024.0);
    rt.block_on(async {
        let host = &cluster.hosts[0];
        for (i, ns) in spaces.iter().enumerate() {
            host.attach(ns, &format!("r{i}"), "rss", "n", "")
                .await
                .expect("attach");
            let k = i + 1;
            if k == 200 || k == n {
                println!(
                    "netplugin RSS with {k} local endpoints: {:.1} MB",
                    rss_kb(pid) as f64 / 1024.0
                );
            }
        }
    });
}
