//! Intent-to-traffic convergence on simulated hosts: 10 VXLAN networks, 200 endpoints spread over
//! the hosts, for 2 and 3 hosts; then the time for a new host to be fully joined.
//! Run: `cargo bench -p systemtests --bench convergence`.
//!
//! Times: from the intent apply (REST) to every endpoint attached (replies come after each
//! host's switch confirmed the local flows); to every host's switch holding the forwarding flows
//! for every remote endpoint of its networks; and to a sample of cross-host pairs (one per
//! network) answering ping.

use std::time::{Duration, Instant};

use systemtests::{eventually, reaches, Cluster};
use testsupport::Netns;

const NETS: usize = 10;
const ENDPOINTS: usize = 200;

fn spec() -> String {
    let nets: Vec<String> = (0..NETS)
        .map(|k| {
            format!(
                r#"{{ "tenantName": "bench", "networkName": "n{k}", "encap": "vxlan", "pktTag": {},
                 "subnet": "10.240.{k}.0/24", "gateway": "10.240.{k}.1" }}"#,
                6000 + k
            )
        })
        .collect();
    format!(
        r#"{{ "global": {{ "vxlans": "6000-6999" }}, "tenants": [ {{ "tenantName": "bench" }} ],
            "networks": [ {} ] }}"#,
        nets.join(",")
    )
}

/// Remote-endpoint forwarding flows on a host's switch.
fn remote_flows(h: &systemtests::Host) -> usize {
    h.ovs
        .ofctl("dump-flows", "br-int", &["table=50"])
        .lines()
        .filter(|l| l.contains("tun_dst"))
        .count()
}

/// How many remote endpoints host `i` must forward to: endpoints elsewhere in its networks.
fn expected(placement: &[(usize, usize)], i: usize) -> usize {
    placement
        .iter()
        .filter(|(h, k)| *h != i && placement.iter().any(|(h2, k2)| *h2 == i && k2 == k))
        .count()
}

fn wait_converged(c: &Cluster, placement: &[(usize, usize)], limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if (0..c.hosts.len()).all(|i| remote_flows(&c.hosts[i]) == expected(placement, i)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

fn run(hosts: usize) {
    let mut cluster = Cluster::new(hosts);
    let spaces: Vec<Netns> = (0..ENDPOINTS).map(|_| Netns::new()).collect();
    // Endpoint e: network e % NETS, host (e / NETS) % hosts: every network on every host.
    let placement: Vec<(usize, usize)> = (0..ENDPOINTS)
        .map(|e| ((e / NETS) % hosts, e % NETS))
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let t0 = Instant::now();
    cluster.apply(&spec());
    let t_apply = t0.elapsed();
    rt.block_on(async {
        let mut tasks = vec![];
        for hi in 0..hosts {
            let mine: Vec<(usize, String)> = placement
                .iter()
                .enumerate()
                .filter(|(_, (h, _))| *h == hi)
                .map(|(e, (_, k))| (e, format!("n{k}")))
                .collect();
            let mut client = cluster.hosts[hi].client().await;
            let paths: Vec<String> = mine
                .iter()
                .map(|(e, _)| spaces[*e].path().display().to_string())
                .collect();
            tasks.push(tokio::spawn(async move {
                for ((e, net), path) in mine.into_iter().zip(paths) {
                    client
                        .attach(weft_api::proto::endpoint::AttachRequest {
                            container_id: format!("e{e}"),
                            netns: path,
                            interface_name: "eth0".into(),
                            tenant: "bench".into(),
                            network: net,
                            ..Default::default()
                        })
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    });
    let t_attached = t0.elapsed();
    assert!(
        wait_converged(&cluster, &placement, Duration::from_secs(120)),
        "no convergence"
    );
    let t_flows = t0.elapsed();
    // One cross-host pair per network answers.
    for k in 0..NETS {
        let a = (0..ENDPOINTS).find(|e| placement[*e] == (0, k)).unwrap();
        let b = (0..ENDPOINTS).find(|e| placement[*e] == (1, k)).unwrap();
        let ip = spaces[b].exec(&["ip", "-4", "-o", "addr", "show", "eth0"]);
        let ip = ip
            .split_whitespace()
            .nth(3)
            .unwrap()
            .split('/')
            .next()
            .unwrap()
            .to_string();
        // The first packet to a peer VTEP may be dropped while OVS resolves its MAC.
        assert!(
            eventually(Duration::from_secs(10), || reaches(&spaces[a], &ip, 1)),
            "network n{k}: e{a} → e{b}"
        );
    }
    let t_traffic = t0.elapsed();
    println!(
        "{hosts} hosts, {NETS} networks, {ENDPOINTS} endpoints: intent applied {:.2} s; all attached {:.2} s; \
         all switches converged {:.2} s; sample pairs reachable {:.2} s",
        t_apply.as_secs_f64(),
        t_attached.as_secs_f64(),
        t_flows.as_secs_f64(),
        t_traffic.as_secs_f64()
    );

    // A new host joins and gets one endpoint per network.
    let t1 = Instant::now();
    cluster.add_host();
    let t_agent = t1.elapsed();
    let newi = cluster.hosts.len() - 1;
    let more: Vec<Netns> = (0..NETS).map(|_| Netns::new()).collect();
    let t2 = Instant::now();
    rt.block_on(async {
        let mut client = cluster.hosts[newi].client().await;
        for (k, ns) in more.iter().enumerate() {
            client
                .attach(weft_api::proto::endpoint::AttachRequest {
                    container_id: format!("new{k}"),
                    netns: ns.path().display().to_string(),
                    interface_name: "eth0".into(),
                    tenant: "bench".into(),
                    network: format!("n{k}"),
                    ..Default::default()
                })
                .await
                .unwrap();
        }
    });
    let mut all = placement.clone();
    all.extend((0..NETS).map(|k| (newi, k)));
    assert!(
        wait_converged(&cluster, &all, Duration::from_secs(60)),
        "new host not joined"
    );
    println!(
        "  new host: from nothing to its netplugin ready (its Open vSwitch started, its links to \
         the fabric made, netplugin started, registered, netmaster's snapshot received and its \
         switch programmed) {:.2} s; {NETS} endpoints attached and every switch (its own and the \
         others) converged {:.2} s later",
        t_agent.as_secs_f64(),
        t2.elapsed().as_secs_f64()
    );
}

fn main() {
    run(2);
    run(3);
}
