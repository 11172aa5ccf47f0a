//! The agent's core: what this host has (local ports, from OVSDB and attaches), what netmaster
//! wants (the watched [`View`]), and the step that compiles both into the desired flow set.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use weft_api::model::{Encap, Endpoint, Network, Node, PktTag};
use weft_policy::{compile, HostState, Segment};

use crate::netmaster::{Netmaster, View};
use crate::ofdriver::OfDriver;
use crate::reconcile::Reconciler;

/// How netplugin is set up on one host.
#[derive(Debug, Clone)]
pub struct Config {
    /// This host's name, as netmaster knows it.
    pub host: String,
    /// netmaster's gRPC address, `http://HOST:PORT`.
    pub netmaster: String,
    /// OVSDB remote: `unix:/var/run/openvswitch/db.sock` or `tcp:HOST:PORT`.
    pub ovsdb: String,
    /// Where ovs-vswitchd puts `BRIDGE.mgmt`.
    pub ovs_rundir: PathBuf,
    /// The integration bridge.
    pub bridge: String,
    /// `system` (kernel datapath) or `netdev` (userspace).
    pub datapath: String,
    /// The interface towards the physical network, added to the bridge as a trunk.
    pub uplink: Option<String>,
    /// This host's underlay address (VXLAN tunnel endpoint).
    pub vtep_ip: Ipv4Addr,
    /// The endpoint service's unix socket (mode 0600).
    pub socket: PathBuf,
    /// The endpoint service on TCP too, when given.
    pub listen_tcp: Option<SocketAddr>,
    /// Lease of this host's registration.
    pub lease_ttl: u32,
    /// How long an attach waits for the switch to confirm its flows.
    pub confirm_timeout: Duration,
}

/// A container interface this host holds. Kept in the port's `external_ids` so that a restarted
/// agent knows it again without asking anyone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalPort {
    pub endpoint_id: String,
    pub container_id: String,
    pub interface_name: String,
    pub host_interface: String,
    pub netns: String,
    /// The bridge the port is on (the integration bridge, or a bare bridge).
    pub bridge: String,
    /// netmaster's record (tenant, network, group, MAC, address); None on a bare bridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Endpoint>,
    /// Bare-bridge mode: the port's VLAN tag (0: none).
    #[serde(default)]
    pub vlan: u16,
    pub mac: String,
    /// With prefix length.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ipv4: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub gateway: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv6: Vec<String>,
    pub mtu: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes: Vec<(String, String)>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Not stored: read from OVSDB.
    #[serde(skip)]
    pub ofport: u32,
}

/// `external_ids` keys on ports the agent made.
pub const EXT_ENDPOINT: &str = "weft-endpoint";
pub const EXT_RECORD: &str = "weft-record";

pub(crate) struct Inner {
    pub cfg: Config,
    pub netmaster: Netmaster,
    pub ovsdb: ovsdb::Client,
    pub reconciler: Reconciler,
    pub view: watch::Receiver<View>,
    pub local: Mutex<BTreeMap<String, LocalPort>>,
    pub uplink_port: Mutex<Option<u32>>,
    pub tunnel_port: Mutex<Option<u32>>,
    /// The port into this host's own IP stack (None if it could not be made).
    pub gateway: Mutex<Option<crate::hostgw::HostGateway>>,
    /// What the host's routes through the gateway port and its masquerade rule must be.
    /// None until the first compile: a restarted agent leaves the host's routes alone until it
    /// knows what they must be.
    host_routes: watch::Sender<Option<crate::hostgw::HostRoutes>>,
    /// Serialises compile-and-publish so versions follow state.
    publish_lock: Mutex<()>,
    /// One attach or detach at a time per endpoint id.
    pub ep_locks: Mutex<BTreeMap<String, Arc<tokio::sync::Mutex<()>>>>,
    pub driver: OfDriver,
}

/// A running agent. Dropping it stops its tasks (the switch keeps its flows).
pub struct Agent {
    pub(crate) inner: Arc<Inner>,
    cancel: CancellationToken,
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("OVSDB at {remote}: {error}")]
    Ovsdb { remote: String, error: String },
    #[error("{0}")]
    Config(String),
    #[error("endpoint service socket {path}: {error}")]
    Socket { path: String, error: String },
}

impl Agent {
    /// Sets up the bridge, learns the ports this host already has, starts the watch, the
    /// OpenFlow driver, the reconciler and the endpoint service.
    pub async fn start(cfg: Config) -> Result<Agent, StartError> {
        let cancel = CancellationToken::new();
        let ovsdb_err = |e: ovsdb::Error| StartError::Ovsdb {
            remote: cfg.ovsdb.clone(),
            error: e.to_string(),
        };
        let db = ovsdb::Client::connect(&cfg.ovsdb)
            .await
            .map_err(ovsdb_err)?;
        crate::bridge::ensure_integration_bridge(&db, &cfg)
            .await
            .map_err(ovsdb_err)?;
        let uplink_port = match &cfg.uplink {
            Some(u) => {
                crate::kernel::bridge_only(u).map_err(StartError::Config)?;
                Some(
                    crate::bridge::ensure_uplink(&db, &cfg.bridge, u)
                        .await
                        .map_err(ovsdb_err)?,
                )
            }
            None => None,
        };
        let tunnel_port =
            crate::bridge::ensure_tunnel(&db, &cfg.bridge, cfg.vtep_ip, &cfg.datapath)
                .await
                .map_err(ovsdb_err)?;
        let gateway = match crate::hostgw::ensure(
            &db,
            &cfg.bridge,
            weft_policy::layout::host_gateway_mac(cfg.vtep_ip),
            GATEWAY_MTU,
        )
        .await
        {
            Ok(g) => Some(g),
            Err(e) => {
                warn!(error = %e, "no host gateway port: host access and egress will not work on this host");
                None
            }
        };
        let local = crate::bridge::local_ports(&db, &cfg.bridge)
            .await
            .map_err(ovsdb_err)?;
        info!(ports = local.len(), bridge = %cfg.bridge, "known local endpoints");

        let netmaster = Netmaster::new(&cfg.netmaster).map_err(StartError::Config)?;
        netmaster.spawn_registration(
            Node {
                name: cfg.host.clone(),
                vtep_ip: cfg.vtep_ip,
                uplink: cfg.uplink.clone().unwrap_or_default(),
            },
            cfg.lease_ttl,
            cancel.clone(),
        );
        let view = netmaster.spawn_watch(cfg.host.clone(), cancel.clone());
        let mgmt = cfg.ovs_rundir.join(format!("{}.mgmt", cfg.bridge));
        let driver = OfDriver::spawn(mgmt, cancel.clone());
        let reconciler = Reconciler::spawn(driver.clone(), cancel.clone());
        let inner = Arc::new(Inner {
            cfg,
            netmaster,
            ovsdb: db,
            reconciler,
            view,
            local: Mutex::new(local),
            uplink_port: Mutex::new(uplink_port),
            tunnel_port: Mutex::new(Some(tunnel_port)),
            gateway: Mutex::new(gateway),
            host_routes: watch::Sender::new(None),
            publish_lock: Mutex::new(()),
            ep_locks: Mutex::new(BTreeMap::new()),
            driver,
        });
        tokio::spawn(follow_view(inner.clone(), cancel.clone()));
        if gateway.is_some() {
            tokio::spawn(follow_host_routes(inner.clone(), cancel.clone()));
        }
        tokio::spawn(follow_switch(inner.clone(), cancel.clone()));
        crate::service::serve(inner.clone(), cancel.clone()).await?;
        Ok(Agent { inner, cancel })
    }

    /// The reconciler (tests and benchmarks wait on it).
    pub fn reconciler(&self) -> &Reconciler {
        &self.inner.reconciler
    }

    pub fn view(&self) -> View {
        self.inner.view.borrow().clone()
    }

    pub fn local_ports(&self) -> Vec<LocalPort> {
        self.inner
            .local
            .lock()
            .expect("lock")
            .values()
            .cloned()
            .collect()
    }

    /// Waits until netmaster's snapshot has arrived and the switch holds what it implies.
    pub async fn ready(&self, timeout: Duration) -> bool {
        let mut view = self.inner.view.clone();
        // `wait_for` hands back a read guard on the view: it must go at the end of this
        // statement, or the watch task (which writes the view) blocks a runtime worker on it.
        let complete = tokio::time::timeout(timeout, view.wait_for(|v| v.complete))
            .await
            .is_ok_and(|r| r.is_ok());
        if !complete {
            return false;
        }
        let v = self.inner.publish();
        v > 0 && self.inner.reconciler.wait_applied(v, timeout).await
    }
}

impl Inner {
    /// The pipeline's input: this host's ports joined with netmaster's networks.
    pub fn host_state(&self, view: &View) -> HostState {
        let local = self.local.lock().expect("lock");
        let mut state =
            HostState {
                uplink_port: *self.uplink_port.lock().expect("lock"),
                tunnel_port: *self.tunnel_port.lock().expect("lock"),
                gateway_port: self.gateway.lock().expect("lock").map(|g| {
                    weft_policy::GatewayPort {
                        ofport: g.ofport,
                        mac: g.mac,
                        address: self.cfg.vtep_ip,
                    }
                }),
                other_hosts: view
                    .nodes
                    .values()
                    .filter(|n| n.name != self.cfg.host)
                    .map(|n| n.vtep_ip)
                    .collect(),
                service_cidrs: view
                    .globals
                    .values()
                    .flat_map(|g| &g.service_cidrs)
                    .map(|c| (c.network(), c.prefix_len()))
                    .collect(),
                ..HostState::default()
            };
        // Endpoints of other hosts, where the host is known (a host whose lease lapsed is gone
        // from the node list, and its endpoints with it).
        for ep in view.endpoints.values() {
            if ep.host == self.cfg.host {
                continue;
            }
            let (Some(node), Some(mac)) =
                (view.nodes.get(&ep.host), weft_policy::parse_mac(&ep.mac))
            else {
                continue;
            };
            state.remote_endpoints.push(weft_policy::RemoteEndpoint {
                key: ep.endpoint_id.clone(),
                network: format!("{}:{}", ep.tenant_name, ep.network_name),
                vtep: node.vtep_ip,
                mac,
                ipv4: vec![ep.ipv4],
                group: group_key(ep),
            });
        }
        let zones = weft_policy::tenant_zones(view.tenants.keys().map(String::as_str));
        // Every network: the compiler keeps those this host carries (its endpoints' networks,
        // the other networks of their tenants, host-access networks).
        state.networks = view
            .networks
            .iter()
            .filter_map(|(key, net)| {
                Some(weft_policy::Network {
                    key: key.clone(),
                    segment: segment_of(net)?,
                    gateway: net.gateway,
                    zone: *zones.get(&net.tenant_name)?,
                    subnet: Some((net.subnet.net.network(), net.subnet.net.prefix_len())),
                    host_access: net.host_access,
                    external: net.external,
                })
            })
            .collect();
        for p in local.values() {
            let Some(ep) = &p.endpoint else { continue };
            if p.bridge != self.cfg.bridge || p.ofport == 0 {
                continue;
            }
            let key = format!("{}:{}", ep.tenant_name, ep.network_name);
            let Some(mac) = weft_policy::parse_mac(&ep.mac) else {
                warn!(endpoint = %p.endpoint_id, mac = %ep.mac, "unreadable MAC; endpoint left out");
                continue;
            };
            state.endpoints.push(weft_policy::Endpoint {
                key: p.endpoint_id.clone(),
                network: key,
                ofport: p.ofport,
                mac,
                ipv4: vec![ep.ipv4],
                ipv6: p
                    .ipv6
                    .iter()
                    .filter_map(|a| a.split('/').next()?.parse().ok())
                    .collect(),
                group: group_key(ep),
            });
        }
        let (groups, policies) = policy_state(view);
        state.groups = groups;
        state.policies = policies;
        state
    }

    /// Compiles the current state and hands it to the reconciler. Returns the version to wait
    /// for, or 0 while netmaster's snapshot has not arrived (nothing is published then: the
    /// switch keeps what it has).
    pub fn publish(&self) -> u64 {
        let _g = self.publish_lock.lock().expect("lock");
        let view = self.view.borrow().clone();
        if !view.complete {
            return 0;
        }
        let state = self.host_state(&view);
        let compiled = compile(&state);
        for p in &compiled.problems {
            warn!(problem = %p, "left out of the pipeline");
        }
        let routes = host_routes(&state, &compiled, &view);
        self.host_routes.send_if_modified(|r| {
            let changed = r.as_ref() != Some(&routes);
            *r = Some(routes);
            changed
        });
        self.reconciler.set(compiled.flows)
    }

    /// Drops a local port from the state and waits (bounded) until its flows are gone.
    pub async fn forget_local(&self, id: &str) {
        self.local.lock().expect("lock").remove(id);
        let v = self.publish();
        if v > 0 {
            self.reconciler
                .wait_applied(v, self.cfg.confirm_timeout)
                .await;
        }
    }

    pub fn ep_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.ep_locks
            .lock()
            .expect("lock")
            .entry(id.to_string())
            .or_default()
            .clone()
    }
}

/// The key of an endpoint's group (`tenant:group`), if it is in one.
fn group_key(ep: &Endpoint) -> Option<String> {
    (!ep.group_name.is_empty()).then(|| format!("{}:{}", ep.tenant_name, ep.group_name))
}

/// Groups and policies as the compiler takes them: netprofiles resolved, rules gathered under
/// their policies, peers made concrete (a network is its subnet, an address a /32).
pub fn policy_state(view: &View) -> (Vec<weft_policy::EndpointGroup>, Vec<weft_policy::Policy>) {
    let groups = view
        .groups
        .iter()
        .map(|(key, g)| weft_policy::EndpointGroup {
            key: key.clone(),
            network: format!("{}:{}", g.tenant_name, g.network_name),
            policies: g
                .policies
                .iter()
                .map(|p| format!("{}:{p}", g.tenant_name))
                .collect(),
            default_deny: g.default_deny,
            profile: g
                .net_profile
                .as_ref()
                .and_then(|p| view.netprofiles.get(&format!("{}:{p}", g.tenant_name)))
                .map(|p| weft_policy::Profile {
                    rate_kbps: p
                        .bandwidth
                        .as_deref()
                        .and_then(|b| weft_api::validate::bandwidth_kbps(b).ok())
                        .map(|k| u32::try_from(k).unwrap_or(u32::MAX)),
                    burst_kb: p.burst.saturating_mul(8),
                    dscp: (p.dscp > 0).then_some((p.dscp & 63) as u8),
                }),
        })
        .collect();
    let mut policies: BTreeMap<String, weft_policy::Policy> = BTreeMap::new();
    for r in view.rules.values() {
        let pkey = format!("{}:{}", r.tenant_name, r.policy_name);
        let Some(rule) = compile_rule(view, r) else {
            warn!(rule = %format!("{pkey}:{}", r.rule_id), "rule names a peer this agent does not know; left out");
            continue;
        };
        policies
            .entry(pkey.clone())
            .or_insert_with(|| weft_policy::Policy {
                key: pkey,
                rules: vec![],
            })
            .rules
            .push(rule);
    }
    // Groups may name policies without rules yet: they exist, and allow everything.
    for g in view.groups.values() {
        for p in &g.policies {
            let key = format!("{}:{p}", g.tenant_name);
            policies
                .entry(key.clone())
                .or_insert_with(|| weft_policy::Policy { key, rules: vec![] });
        }
    }
    (groups, policies.into_values().collect())
}

fn compile_rule(view: &View, r: &weft_api::model::Rule) -> Option<weft_policy::Rule> {
    use weft_api::model::{Direction, Protocol, RuleAction};
    let (group, network, ip) = match r.direction {
        Direction::In => (&r.from_endpoint_group, &r.from_network, &r.from_ip_address),
        Direction::Out => (&r.to_endpoint_group, &r.to_network, &r.to_ip_address),
    };
    let peer = if !group.is_empty() {
        weft_policy::Peer::Group(format!("{}:{group}", r.tenant_name))
    } else if !network.is_empty() {
        let net = view.networks.get(&format!("{}:{network}", r.tenant_name))?;
        weft_policy::Peer::Cidr(net.subnet.net.network(), net.subnet.net.prefix_len())
    } else if !ip.is_empty() {
        let net: ipnet::Ipv4Net = ip
            .parse()
            .or_else(|_| ip.parse::<Ipv4Addr>().map(ipnet::Ipv4Net::from))
            .ok()?;
        weft_policy::Peer::Cidr(net.network(), net.prefix_len())
    } else {
        weft_policy::Peer::Any
    };
    let protocol = match r.protocol {
        Protocol::Any => None,
        Protocol::Tcp => Some(6),
        Protocol::Udp => Some(17),
        Protocol::Icmp => Some(1),
        Protocol::Number(n) => Some(n),
    };
    let ports = (r.port != 0).then(|| {
        let lo = u16::try_from(r.port).unwrap_or(u16::MAX);
        let hi = if r.port_end == 0 {
            lo
        } else {
            u16::try_from(r.port_end).unwrap_or(u16::MAX)
        };
        (lo, hi)
    });
    Some(weft_policy::Rule {
        key: format!("{}:{}:{}", r.tenant_name, r.policy_name, r.rule_id),
        priority: u8::try_from(r.priority.clamp(1, 100)).unwrap_or(100),
        direction: match r.direction {
            Direction::In => weft_policy::Direction::In,
            Direction::Out => weft_policy::Direction::Out,
        },
        peer,
        protocol,
        ports,
        allow: r.action == RuleAction::Allow,
    })
}

/// The segment a network's frames carry, once netmaster has allocated its tag.
pub fn segment_of(net: &Network) -> Option<Segment> {
    match (net.encap, &net.pkt_tag) {
        (Encap::Vlan, PktTag::Tag(t)) => u16::try_from(*t).ok().map(Segment::Vlan),
        (Encap::Vxlan, PktTag::Tag(t)) => Some(Segment::Vxlan(*t)),
        (_, PktTag::Allocate) => None,
    }
}

/// The MTU of the host gateway port: the smallest a container gets (VXLAN's 1450), so the host
/// never sends a container more than it takes.
const GATEWAY_MTU: u32 = 1450;

/// The host's side of what the pipeline routes through the gateway port: every host-access
/// subnet (the host reaches those endpoints), and the transit address of every tenant whose
/// external network this host carries, masqueraded as the host's own when it leaves.
fn host_routes(
    state: &HostState,
    compiled: &weft_policy::Compiled,
    view: &View,
) -> crate::hostgw::HostRoutes {
    let Some(gw) = state.gateway_port else {
        return crate::hostgw::HostRoutes::default();
    };
    let carried = |key: &str| {
        compiled.owners.contains_key(&weft_policy::layout::cookie(
            weft_policy::layout::CookieKind::Network,
            key,
        ))
    };
    let mut prefixes = std::collections::BTreeSet::new();
    let mut external = false;
    for n in &state.networks {
        if !carried(&n.key) {
            continue;
        }
        if n.host_access {
            if let Some(net) = view.networks.get(&n.key) {
                prefixes.insert(net.subnet.net.trunc());
            }
        }
        if n.external {
            external = true;
            prefixes.insert(ipnet::Ipv4Net::from(weft_policy::layout::transit_address(
                n.zone,
            )));
        }
    }
    let (range, len) = weft_policy::layout::TRANSIT_RANGE;
    crate::hostgw::HostRoutes {
        src: Some(gw.address),
        prefixes: prefixes.into_iter().collect(),
        masquerade: external.then(|| ipnet::Ipv4Net::new(range, len).expect("a valid prefix")),
    }
}

/// Keeps the host's routes through the gateway port (and its masquerade rule) equal to what
/// the last compile needs; retries while the kernel refuses.
async fn follow_host_routes(inner: Arc<Inner>, cancel: CancellationToken) {
    let mut want = inner.host_routes.subscribe();
    loop {
        let routes = want.borrow_and_update().clone();
        if let Some(Err(e)) = match &routes {
            Some(r) => Some(crate::hostgw::sync(r).await),
            None => None,
        } {
            warn!(error = %e, "host routes through the gateway port");
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                _ = cancel.cancelled() => return,
            }
        }
        tokio::select! {
            r = want.changed() => if r.is_err() { return },
            _ = cancel.cancelled() => return,
        }
    }
}

/// Recompiles whenever netmaster's view changes.
async fn follow_view(inner: Arc<Inner>, cancel: CancellationToken) {
    let mut view = inner.view.clone();
    loop {
        tokio::select! {
            r = view.changed() => if r.is_err() { return },
            _ = cancel.cancelled() => return,
        }
        inner.publish();
    }
}

/// After Open vSwitch comes back, port numbers may have changed: read them again.
async fn follow_switch(inner: Arc<Inner>, cancel: CancellationToken) {
    let mut gen = inner.driver.generation();
    let mut seen_first = false;
    loop {
        tokio::select! {
            r = gen.changed() => if r.is_err() { return },
            _ = cancel.cancelled() => return,
        }
        if *gen.borrow_and_update() == 0 {
            continue;
        }
        if !seen_first {
            seen_first = true;
            continue;
        }
        match crate::bridge::local_ports(&inner.ovsdb, &inner.cfg.bridge).await {
            Ok(fresh) => {
                let mut changed = false;
                {
                    let mut local = inner.local.lock().expect("lock");
                    for (id, p) in local.iter_mut() {
                        if let Some(f) = fresh.get(id) {
                            if f.ofport != p.ofport {
                                p.ofport = f.ofport;
                                changed = true;
                            }
                        }
                    }
                }
                if changed {
                    info!("port numbers changed after Open vSwitch restarted; recompiling");
                    inner.publish();
                }
            }
            Err(e) => warn!(error = %e, "reading ports after reconnect failed"),
        }
    }
}
