//! Every Contiv intent file in `../shared/contiv-examples/` (but the add/del one, which needs
//! another file's networks): applied as it is, its containers started on the hosts it names,
//! and the whole connectivity matrix checked — every pair in one network reaches, every pair in
//! one tenant reaches routed (but for a container with an interface in the sender's network,
//! whose reply leaves by it: not judged), no pair across tenants does.
//!
//! "Reaches b" is judged at b: b's interface must count the pings. Tenants here share subnets,
//! so a ping from a to b's address may be answered by a twin with the same address in a's own
//! network; b's counter tells the two apart. An allowed pair must also get every reply. A
//! forbidden pair is judged by b's counter alone, once every allowed pair has reached: a leaked
//! ping may reach b and be answered towards b's own tenant (a's twin there), never back to a.
//! Test containers run without IPv6 so that nothing else moves those counters.

use std::collections::BTreeMap;
use std::path::PathBuf;

use systemtests::{arrivals, reaches, rx_packets, Cluster};
use testsupport::Netns;
use weft_api::contiv::ContivIntent;

struct Placed {
    container: String,
    tenant: String,
    network: String,
    ifname: String,
    ip: String,
}

fn run_file(path: &PathBuf) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap();
    let name = path.file_name().unwrap().to_string_lossy().to_string();
    let conv = ContivIntent::from_json(&text).unwrap().convert().unwrap();
    // Hosts in the order the file names them, then any only placements name.
    let mut hosts: Vec<String> = conv.hosts.iter().map(|h| h.name.clone()).collect();
    for p in &conv.placements {
        if !hosts.contains(&p.host) {
            hosts.push(p.host.clone());
        }
    }
    let cluster = Cluster::new(hosts.len().max(1));
    cluster.apply(&text);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut spaces: BTreeMap<String, Netns> = BTreeMap::new();
    let mut placed: Vec<Placed> = vec![];
    for p in &conv.placements {
        let ns = spaces.entry(p.container.clone()).or_insert_with(|| {
            let ns = Netns::new();
            ns.exec(&["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
            ns.exec(&["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"]);
            ns
        });
        let n = placed.iter().filter(|x| x.container == p.container).count();
        let ifname = if n == 0 {
            "eth0".to_string()
        } else {
            format!("net{n}")
        };
        let host = &cluster.hosts[hosts.iter().position(|h| *h == p.host).unwrap()];
        let i = rt
            .block_on(async {
                host.client()
                    .await
                    .attach(weft_api::proto::endpoint::AttachRequest {
                        container_id: p.container.clone(),
                        netns: ns.path().display().to_string(),
                        interface_name: ifname.clone(),
                        tenant: p.tenant.clone(),
                        network: p.network.clone(),
                        ..Default::default()
                    })
                    .await
            })
            .unwrap_or_else(|e| panic!("{name}: attach {} on {}: {e}", p.container, p.host))
            .into_inner()
            .interface
            .unwrap();
        placed.push(Placed {
            container: p.container.clone(),
            tenant: p.tenant.clone(),
            network: p.network.clone(),
            ifname,
            ip: i.ipv4.split('/').next().unwrap().to_string(),
        });
    }
    // Agents learn remote endpoints through netmaster's watch. First every pair in one network
    // must reach (every ping answered, and counted at the target); only once all of them have,
    // the pairs that must not reach are judged, at the target's counter alone: tenants share
    // subnets, so a leaked ping may be answered by the sender's own twin (or by nobody) and the
    // sender's view proves nothing.
    let mut wrong = vec![];
    let describe = |a: &Placed, b: &Placed, got: &str, want: &str| {
        format!(
            "{name}: {} ({}:{}) → {} ({}:{}, {}): {got} but expected {want}",
            a.container, a.tenant, a.network, b.container, b.tenant, b.network, b.ip,
        )
    };
    let mut forbidden = vec![];
    for a in &placed {
        for b in &placed {
            if a.container == b.container {
                continue;
            }
            // A container with an interface in b's network reaches b through it. Otherwise, within
            // b's tenant, it reaches b routed (every network here has a gateway; the tenant is
            // one routing domain), unless b's container also sits in one of a's networks: its
            // reply would leave by that interface with b's address, which that port's spoof
            // guard refuses (such pairs are promised nothing either way, and not judged). Never
            // across tenants.
            let in_net = |c: &str, t: &str, n: &str| {
                placed
                    .iter()
                    .any(|x| x.container == c && x.tenant == t && x.network == n)
            };
            let in_tenant = placed
                .iter()
                .any(|x| x.container == a.container && x.tenant == b.tenant);
            let direct = in_net(&a.container, &b.tenant, &b.network);
            let multi_homed = placed
                .iter()
                .filter(|x| x.container == a.container)
                .any(|x| in_net(&b.container, &x.tenant, &x.network));
            let same = direct || (in_tenant && !multi_homed);
            if !in_tenant {
                forbidden.push((a, b));
                continue;
            }
            if !same {
                continue;
            }
            let (na, nb) = (&spaces[&a.container], &spaces[&b.container]);
            let ok = systemtests::eventually(std::time::Duration::from_secs(10), || {
                let before = rx_packets(nb, &b.ifname);
                reaches(na, &b.ip, 1) && rx_packets(nb, &b.ifname) > before
            });
            if !ok {
                wrong.push(describe(a, b, "does not reach", "reach"));
            }
        }
    }
    for (a, b) in forbidden {
        let (na, nb) = (&spaces[&a.container], &spaces[&b.container]);
        let (arrived, answered) = arrivals(na, &b.ip, 1, nb, &b.ifname);
        if arrived != 0 {
            wrong.push(describe(
                a,
                b,
                &format!("reaches ({arrived} packets arrived, {answered} of 1 pings answered)"),
                "no reach",
            ));
        }
    }
    eprintln!(
        "{name}: {} endpoints on {} hosts, {} pairs checked",
        placed.len(),
        hosts.len(),
        placed.len() * placed.len().saturating_sub(1)
    );
    wrong
}

#[test]
fn every_contiv_example_gives_exactly_its_connectivity() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/contiv-examples");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| !p.to_string_lossy().contains("add_del_ep"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "{files:?}");
    let mut wrong = vec![];
    for f in &files {
        wrong.extend(run_file(f));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
