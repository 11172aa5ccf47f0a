//! The compiler: [`HostState`] in, [`FlowSet`] out. See `docs/pipeline.md` for the layout.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};

use ofproto::action::{Action, FieldRange};
use ofproto::instruction::Instruction;
use ofproto::msg::group_meter::{Bucket, GroupType};
use ofproto::oxm::{Field, Match};

use crate::flowset::{Flow, FlowSet, Group};
use crate::layout::*;
use crate::model::{Endpoint, GatewayPort, HostState, Network, Problem, Profile, RemoteEndpoint};

const ETH_IPV4: u16 = 0x0800;
const ETH_ARP: u16 = 0x0806;
const ETH_IPV6: u16 = 0x86dd;
const ETH_VLAN: u16 = 0x8100;
const VID_PRESENT: u16 = 0x1000;
const ARP_REQUEST: u128 = 1;
const ARP_REPLY: u128 = 2;
const MULTICAST_BIT: u128 = 0x0100_0000_0000;

/// The compiled flows and groups, plus what was left out and why.
#[derive(Debug, Clone, Default)]
pub struct Compiled {
    pub flows: FlowSet,
    pub problems: Vec<Problem>,
    /// Cookie → the object it names (`network blue:web`), for explaining any flow.
    pub owners: BTreeMap<u64, String>,
}

pub(crate) fn goto(t: u8) -> Instruction {
    Instruction::GotoTable(t)
}

pub(crate) fn apply(actions: Vec<Action>) -> Instruction {
    Instruction::ApplyActions(actions)
}

pub(crate) fn set_f(field: Field, v: u128) -> Action {
    Action::set_field(field, v).expect("pipeline values fit their fields")
}

fn mac_u(m: &[u8; 6]) -> u128 {
    m.iter().fold(0u128, |a, b| (a << 8) | u128::from(*b))
}

fn mv(src: Field, dst: Field) -> Action {
    Action::Move {
        src: FieldRange::whole(src),
        dst: FieldRange::whole(dst),
    }
}

/// Compiles one host's desired state. Pure and deterministic: the same state gives the same set,
/// whatever the order of its lists. Inconsistent parts (an endpoint of an unknown network, a MAC
/// or address used twice in one network, a port used twice) are left out and reported; the
/// rest compiles.
pub fn compile(state: &HostState) -> Compiled {
    let mut out = Compiled::default();
    skeleton_fragment(&mut out);

    // Networks, sorted by key, first one wins on conflicts.
    let mut networks: Vec<&Network> = state.networks.iter().collect();
    networks.sort_by(|a, b| a.key.cmp(&b.key));
    let mut by_key: BTreeMap<&str, &Network> = BTreeMap::new();
    let mut by_segment: HashMap<u32, &str> = HashMap::new();
    for n in networks {
        if by_key.contains_key(n.key.as_str()) {
            out.problems.push(Problem::DuplicateNetwork {
                network: n.key.clone(),
            });
            continue;
        }
        if let Some(other) = by_segment.get(&n.segment.id()) {
            out.problems.push(Problem::SegmentInUse {
                network: n.key.clone(),
                other: other.to_string(),
            });
            continue;
        }
        by_segment.insert(n.segment.id(), &n.key);
        by_key.insert(&n.key, n);
    }

    // Endpoints, sorted by key; conflicts leave the later one out.
    let mut endpoints: Vec<&Endpoint> = state.endpoints.iter().collect();
    endpoints.sort_by(|a, b| a.key.cmp(&b.key));
    let mut ports: HashMap<u32, &str> = HashMap::new();
    let mut macs: HashMap<(&str, [u8; 6]), &str> = HashMap::new();
    let mut addrs: HashMap<(&str, String), &str> = HashMap::new();
    let mut members: BTreeMap<&str, Vec<&Endpoint>> = BTreeMap::new();
    'eps: for ep in endpoints {
        if !by_key.contains_key(ep.network.as_str()) {
            out.problems.push(Problem::UnknownNetwork {
                endpoint: ep.key.clone(),
                network: ep.network.clone(),
            });
            continue;
        }
        if let Some(other) = ports.get(&ep.ofport) {
            out.problems.push(Problem::PortInUse {
                endpoint: ep.key.clone(),
                other: other.to_string(),
                ofport: ep.ofport,
            });
            continue;
        }
        if let Some(other) = macs.get(&(ep.network.as_str(), ep.mac)) {
            out.problems.push(Problem::MacInUse {
                endpoint: ep.key.clone(),
                other: other.to_string(),
            });
            continue;
        }
        let addr_list: Vec<String> = ep
            .ipv4
            .iter()
            .map(|a| a.to_string())
            .chain(ep.ipv6.iter().map(|a| a.to_string()))
            .collect();
        for a in &addr_list {
            if let Some(other) = addrs.get(&(ep.network.as_str(), a.clone())) {
                out.problems.push(Problem::AddressInUse {
                    endpoint: ep.key.clone(),
                    other: other.to_string(),
                    address: a.clone(),
                });
                continue 'eps;
            }
        }
        ports.insert(ep.ofport, &ep.key);
        macs.insert((&ep.network, ep.mac), &ep.key);
        for a in addr_list {
            addrs.insert((&ep.network, a), &ep.key);
        }
        members.entry(ep.network.as_str()).or_default().push(ep);
    }

    // The networks this host carries: those with a local endpoint, every other network of their
    // tenants (routing reaches them), and, where the host has a gateway port, every host-access
    // network (the host reaches all of their endpoints).
    let local_zones: BTreeSet<u16> = members.keys().map(|k| by_key[k].zone).collect();
    let present: BTreeMap<&str, &Network> = by_key
        .iter()
        .filter(|(k, n)| {
            members.contains_key(*k)
                || local_zones.contains(&n.zone)
                || (n.host_access && state.gateway_port.is_some())
        })
        .map(|(k, n)| (*k, *n))
        .collect();

    // Remote endpoints matter only in networks this host carries; a clash with a local
    // endpoint (or an earlier remote one) leaves the remote one out.
    let mut remotes: BTreeMap<&str, Vec<&RemoteEndpoint>> = BTreeMap::new();
    let mut sorted: Vec<&RemoteEndpoint> = state.remote_endpoints.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    'remote: for r in sorted {
        if !present.contains_key(r.network.as_str()) {
            continue;
        }
        if let Some(other) = macs.get(&(r.network.as_str(), r.mac)) {
            out.problems.push(Problem::MacInUse {
                endpoint: r.key.clone(),
                other: other.to_string(),
            });
            continue;
        }
        for a in &r.ipv4 {
            if let Some(other) = addrs.get(&(r.network.as_str(), a.to_string())) {
                out.problems.push(Problem::AddressInUse {
                    endpoint: r.key.clone(),
                    other: other.to_string(),
                    address: a.to_string(),
                });
                continue 'remote;
            }
        }
        macs.insert((&r.network, r.mac), &r.key);
        for a in &r.ipv4 {
            addrs.insert((&r.network, a.to_string()), &r.key);
        }
        remotes.entry(r.network.as_str()).or_default().push(r);
    }

    let pol = crate::rules::Policies::resolve(state, &members, &mut out.problems);
    let links = Links::of(state);
    let mut routes = Routes::default();
    for (key, net) in &present {
        let eps = members.get(key).map(Vec::as_slice).unwrap_or_default();
        let rs = remotes.get(key).map(Vec::as_slice).unwrap_or_default();
        let ports: Vec<u32> = eps.iter().map(|e| e.ofport).collect();
        let vteps: BTreeSet<Ipv4Addr> = rs.iter().map(|r| r.vtep).collect();
        network_fragment(&mut out, net, &ports, vteps, links);
        for ep in eps {
            let wins = routes.claim(&mut out.problems, net.zone, &ep.key, &ep.ipv4);
            let m = pol.membership(ep.group.as_deref(), &net.key);
            endpoint_fragment(&mut out, net, ep, m, &wins);
        }
        for r in rs {
            let wins = routes.claim(&mut out.problems, net.zone, &r.key, &r.ipv4);
            let peer = pol.membership(r.group.as_deref(), &net.key).peer;
            remote_fragment(&mut out, net, r, links, peer, &wins);
        }
    }
    if let Some(gw) = &state.gateway_port {
        gateway_fragment(
            &mut out,
            gw,
            present.values().copied(),
            links,
            &state.other_hosts,
            &state.service_cidrs,
        );
    }
    pol.compile(&mut out);
    out
}

/// The ports that lead off this host: the tunnel (VXLAN networks) and the uplink (VLAN
/// networks).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Links {
    pub tunnel: Option<u32>,
    pub uplink: Option<u32>,
}

impl Links {
    pub(crate) fn of(state: &HostState) -> Links {
        Links {
            tunnel: state.tunnel_port,
            uplink: state.uplink_port,
        }
    }
}

/// What an endpoint's group means for its flows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Membership {
    /// The group's register value, for the classifier and forwarding (reg1, reg2): any known
    /// group, whatever its network.
    pub id: Option<u32>,
    /// The group's netprofile.
    pub profile: Option<Profile>,
    /// The group's register value as a peer (tables 32 and 62): only a known group of the
    /// endpoint's own network.
    pub peer: Option<u32>,
}

/// Routes within each tenant: an address of an endpoint of any of the tenant's networks, local
/// or remote, is reached from every other network of the tenant through the gateway MAC (the
/// distributed router: each host routes what its own endpoints send). The first endpoint (by
/// network, local before remote, then key) with an address wins it.
#[derive(Default)]
struct Routes {
    taken: HashMap<(u16, Ipv4Addr), String>,
}

impl Routes {
    /// Claims the endpoint's addresses in its tenant (`zone`), in emission order: which of them
    /// it wins. The others are reported.
    fn claim(
        &mut self,
        problems: &mut Vec<Problem>,
        zone: u16,
        key: &str,
        addrs: &[Ipv4Addr],
    ) -> Vec<bool> {
        addrs
            .iter()
            .map(|a| {
                if let Some(other) = self.taken.get(&(zone, *a)) {
                    problems.push(Problem::RouteInUse {
                        endpoint: key.to_string(),
                        other: other.clone(),
                        address: a.to_string(),
                    });
                    return false;
                }
                self.taken.insert((zone, *a), key.to_string());
                true
            })
            .collect()
    }
}

/// The routes to the addresses an endpoint won (`wins[i]` for `addrs[i]`): to its MAC, in its
/// network.
fn route_flows(
    out: &mut Compiled,
    net: &Network,
    c: u64,
    addrs: &[Ipv4Addr],
    wins: &[bool],
    mac: &[u8; 6],
) {
    for (a, _) in addrs.iter().zip(wins).filter(|(_, w)| **w) {
        let mut actions = routed_to(*mac);
        actions.push(set_reg(REG_NETWORK, net.segment.id()));
        out.flows.insert_flow(Flow::new(
            L3,
            300,
            c,
            to_router()
                .reg(REG_ZONE, u32::from(net.zone))
                .with(Field::Ipv4Dst, u128::from(u32::from(*a))),
            vec![apply(actions), goto(L2_FORWARD)],
        ));
    }
}

/// The skeleton: every table's default, and the policy tables' fixed flows.
pub(crate) fn skeleton_fragment(out: &mut Compiled) {
    let pipe = cookie(CookieKind::Pipeline, "pipeline");
    out.owners.insert(pipe, "pipeline".into());

    // The skeleton: every table's default.
    let set = &mut out.flows;
    set.insert_flow(Flow::new(CLASSIFIER, 0, pipe, Match::new(), vec![]));
    set.insert_flow(Flow::new(SPOOF_GUARD, 0, pipe, Match::new(), vec![]));
    set.insert_flow(Flow::new(
        ARP_RESPONDER,
        0,
        pipe,
        Match::new(),
        vec![goto(EGRESS_POLICY)],
    ));
    set.insert_flow(Flow::new(
        EGRESS_POLICY,
        0,
        pipe,
        Match::new(),
        vec![goto(L3)],
    ));
    crate::rules::skeleton(set, pipe);
    // The verdict log's meter: whatever logs, logs through it.
    set.insert_meter(crate::logging::verdict_meter());
    set.insert_flow(Flow::new(L3, 0, pipe, Match::new(), vec![goto(L2_FORWARD)]));
    set.insert_flow(Flow::new(L2_FORWARD, 0, pipe, Match::new(), vec![]));
    set.insert_flow(Flow::new(
        INGRESS_POLICY,
        0,
        pipe,
        Match::new(),
        vec![goto(OUTPUT)],
    ));
    set.insert_flow(Flow::new(
        OUTPUT,
        0,
        pipe,
        Match::new(),
        vec![apply(vec![Action::OutputReg {
            src: FieldRange::whole(reg(REG_OUT_PORT)),
            max_len: 0,
        }])],
    ));
}

/// IPv4 sent to the router (the gateway MAC).
fn to_router() -> Match {
    Match::new().eth_type(ETH_IPV4).eth_dst(GATEWAY_MAC)
}

/// Routed by the bridge to `mac`: from the gateway MAC, one hop less.
fn routed_to(mac: [u8; 6]) -> Vec<Action> {
    vec![
        set_f(Field::EthSrc, mac_u(&GATEWAY_MAC)),
        set_f(Field::EthDst, mac_u(&mac)),
        Action::DecNwTtl,
    ]
}

/// The host gateway: the port into this host's own IP stack.
/// - From the host: addresses of host-access subnets enter their network, the transit address
///   of a tenant with an external network enters that tenant (replies from the outside); ARP for
///   any of them is answered with the gateway MAC (the bridge is the host's router towards them).
/// - Host-access networks reach this host's address and the service ranges through the port,
///   and other hosts' addresses through the tunnel or uplink, at their gateway port's MAC, which
///   each host forwards to its own port.
/// - External networks send everything else out of the port, translated (see
///   `rules::gateway`).
pub(crate) fn gateway_fragment<'a>(
    out: &mut Compiled,
    gw: &GatewayPort,
    present: impl IntoIterator<Item = &'a Network>,
    links: Links,
    other_hosts: &[Ipv4Addr],
    service_cidrs: &[(Ipv4Addr, u8)],
) {
    let c = cookie(CookieKind::HostGateway, "host-gateway");
    out.owners.insert(c, "host gateway".into());
    let from_host = || Match::new().in_port(gw.ofport);
    // Into the host's stack through the port; `dest` tells table 61 whether a new connection
    // leaves the host translated (TO_EXTERNAL) or not (TO_LOCAL).
    let readdress = |dest: u32| {
        vec![
            set_f(Field::EthSrc, mac_u(&GATEWAY_MAC)),
            set_f(Field::EthDst, mac_u(&gw.mac)),
            set_reg(REG_OUT_PORT, gw.ofport),
            set_reg(REG_DEST, dest),
        ]
    };
    // ... routed there: one hop less.
    let into_host = |dest: u32| {
        let mut a = readdress(dest);
        a.push(Action::DecNwTtl);
        a
    };
    // The host never sends with a transit address as its source: such a packet is a tenant's
    // external traffic the host routed back into the bridge, and must not enter any network.
    let (range, len) = TRANSIT_RANGE;
    out.flows.insert_flow(Flow::new(
        CLASSIFIER,
        200,
        c,
        from_host().eth_type(ETH_IPV4).ipv4_src(range, len),
        vec![],
    ));
    let enter = |zone: u16, seg: Option<u32>| {
        let mut a = vec![
            set_reg(REG_ORIGIN, FROM_LOCAL),
            set_reg(REG_ZONE, u32::from(zone)),
        ];
        if let Some(seg) = seg {
            a.insert(0, set_reg(REG_NETWORK, seg));
        }
        vec![apply(a), goto(EGRESS_POLICY)]
    };
    let mut external_zones = BTreeSet::new();
    for net in present {
        let seg = net.segment.id();
        let nc = cookie(CookieKind::Network, &net.key);
        if net.external {
            external_zones.insert(net.zone);
            // Everything the tenant does not route itself (its endpoints, below at 300; the
            // hosts at 250) leaves through the host.
            out.flows.insert_flow(Flow::new(
                L3,
                100,
                nc,
                to_router().reg(REG_NETWORK, seg),
                vec![apply(into_host(TO_EXTERNAL)), goto(INGRESS_POLICY)],
            ));
        }
        if !net.host_access {
            continue;
        }
        let Some((addr, len)) = net.subnet else {
            continue;
        };
        out.flows.insert_flow(Flow::new(
            CLASSIFIER,
            100,
            nc,
            from_host().eth_type(ETH_IPV4).ipv4_dst(addr, len),
            enter(net.zone, Some(seg)),
        ));
        out.flows
            .insert_flow(proxy_arp(nc, from_host().ipv4(Field::ArpTpa, addr, len)));
        // This host's address, and the service ranges: into the host's stack.
        let mut local = vec![(gw.address, 32)];
        local.extend(service_cidrs.iter().copied());
        for (a, l) in local {
            out.flows.insert_flow(Flow::new(
                L3,
                if l == 32 { 250 } else { 200 },
                nc,
                to_router().reg(REG_NETWORK, seg).ipv4_dst(a, l),
                vec![apply(into_host(TO_LOCAL)), goto(INGRESS_POLICY)],
            ));
        }
        // Another host's address: to that host in this network, at its gateway port's MAC.
        for h in other_hosts {
            let Some(towards) = towards_unicast(net, *h, links) else {
                continue;
            };
            let mut actions = routed_to(host_gateway_mac(*h));
            actions.extend(towards);
            out.flows.insert_flow(Flow::new(
                L3,
                250,
                nc,
                to_router()
                    .reg(REG_NETWORK, seg)
                    .with(Field::Ipv4Dst, u128::from(u32::from(*h))),
                vec![apply(actions), goto(INGRESS_POLICY)],
            ));
        }
        // ... and what another host sends this way arrives here for our port.
        out.flows.insert_flow(Flow::new(
            L2_FORWARD,
            200,
            nc,
            Match::new().reg(REG_NETWORK, seg).eth_dst(gw.mac),
            vec![
                apply(vec![
                    set_reg(REG_OUT_PORT, gw.ofport),
                    set_reg(REG_DEST, TO_LOCAL),
                ]),
                goto(INGRESS_POLICY),
            ],
        ));
    }
    // Replies from the outside, translated back by the host to a tenant's transit address.
    for z in &external_zones {
        let t = transit_address(*z);
        out.flows.insert_flow(Flow::new(
            CLASSIFIER,
            100,
            c,
            from_host()
                .eth_type(ETH_IPV4)
                .with(Field::Ipv4Dst, u128::from(u32::from(t))),
            enter(*z, None),
        ));
        out.flows.insert_flow(proxy_arp(
            c,
            from_host().with(Field::ArpTpa, u128::from(u32::from(t))),
        ));
    }
    crate::rules::gateway(&mut out.flows, c, gw, &readdress(TO_LOCAL), &external_zones);
}

/// Answers the host's ARP requests (matched by `m`, which names the addresses) with the
/// gateway MAC, sent back out of the gateway port.
fn proxy_arp(c: u64, m: Match) -> Flow {
    let tmp = FieldRange::whole(reg(REG_PEER_GROUP));
    Flow::new(
        CLASSIFIER,
        100,
        c,
        m.eth_type(ETH_ARP).with(Field::ArpOp, ARP_REQUEST),
        vec![apply(vec![
            mv(Field::EthSrc, Field::EthDst),
            set_f(Field::EthSrc, mac_u(&GATEWAY_MAC)),
            set_f(Field::ArpOp, ARP_REPLY),
            mv(Field::ArpSha, Field::ArpTha),
            set_f(Field::ArpSha, mac_u(&GATEWAY_MAC)),
            // Swap the addresses: the asked-for one answers.
            Action::Move {
                src: FieldRange::whole(Field::ArpTpa),
                dst: tmp,
            },
            mv(Field::ArpSpa, Field::ArpTpa),
            Action::Move {
                src: tmp,
                dst: FieldRange::whole(Field::ArpSpa),
            },
            Action::output(IN_PORT),
        ])],
    )
}

/// The actions that carry a frame of `net` to the host at `vtep`, or to the physical network.
fn towards(net: &Network, vtep: Ipv4Addr, links: Links) -> Option<Vec<Action>> {
    match (net.segment, links.tunnel, links.uplink) {
        (crate::Segment::Vxlan(vni), Some(tunnel), _) => Some(vec![
            set_f(Field::TunnelId, u128::from(vni)),
            set_f(Field::TunIpv4Dst, u128::from(u32::from(vtep))),
            Action::output(tunnel),
        ]),
        (crate::Segment::Vlan(tag), _, Some(uplink)) => Some(uplink_tagged(tag, uplink)),
        _ => None,
    }
}

fn uplink_tagged(tag: u16, uplink: u32) -> Vec<Action> {
    vec![
        Action::PushVlan(ETH_VLAN),
        set_f(Field::VlanVid, u128::from(VID_PRESENT | tag)),
        Action::output(uplink),
    ]
}

/// The same for one unicast frame, through the ingress policy tables (which commit a new
/// connection to conntrack): the tunnel fields and reg7, or reg7 = the uplink (table OUTPUT
/// tags it).
fn towards_unicast(net: &Network, vtep: Ipv4Addr, links: Links) -> Option<Vec<Action>> {
    match (net.segment, links.tunnel, links.uplink) {
        (crate::Segment::Vxlan(vni), Some(tunnel), _) => Some(vec![
            set_f(Field::TunnelId, u128::from(vni)),
            set_f(Field::TunIpv4Dst, u128::from(u32::from(vtep))),
            set_reg(REG_OUT_PORT, tunnel),
            set_reg(REG_DEST, TO_REMOTE),
        ]),
        (crate::Segment::Vlan(_), _, Some(uplink)) => Some(vec![
            set_reg(REG_OUT_PORT, uplink),
            set_reg(REG_DEST, TO_REMOTE),
        ]),
        _ => None,
    }
}

/// An endpoint on another host, accepted in `net`: its ARP answers, the way to its host, its
/// addresses as peers of its group (`peer`), and the routes to the addresses it won
/// (`wins[i]` for `r.ipv4[i]`).
pub(crate) fn remote_fragment(
    out: &mut Compiled,
    net: &Network,
    r: &RemoteEndpoint,
    links: Links,
    peer: Option<u32>,
    wins: &[bool],
) {
    let c = cookie(CookieKind::RemoteEndpoint, &r.key);
    remote_flows(out, net, r, c, links, peer);
    route_flows(out, net, c, &r.ipv4, wins, &r.mac);
}

fn remote_flows(
    out: &mut Compiled,
    net: &Network,
    r: &RemoteEndpoint,
    c: u64,
    links: Links,
    peer: Option<u32>,
) {
    let Some(actions) = towards_unicast(net, r.vtep, links) else {
        return;
    };
    out.owners.insert(c, format!("remote endpoint {}", r.key));
    let seg = net.segment.id();
    for a in &r.ipv4 {
        out.flows.insert_flow(arp_answer(c, seg, *a, &r.mac));
    }
    // Only what a local endpoint sent goes out again: nothing from a tunnel goes back into one,
    // nothing from the uplink goes back to it.
    out.flows.insert_flow(Flow::new(
        L2_FORWARD,
        200,
        c,
        Match::new()
            .reg(REG_ORIGIN, FROM_LOCAL)
            .reg(REG_NETWORK, seg)
            .eth_dst(r.mac),
        vec![apply(actions), goto(INGRESS_POLICY)],
    ));
    if let Some(id) = peer {
        crate::rules::peer_flows(out, net.zone, c, &r.ipv4, id);
    }
}

/// A network this host carries: its classifier entries from the tunnel or the uplink, its
/// flooding groups (the local `ports`, the uplink, one copy per host in `vteps`), the gateway's
/// ARP answer, and the drop for the tenant's unheld addresses of its subnet.
pub(crate) fn network_fragment(
    out: &mut Compiled,
    net: &Network,
    ports: &[u32],
    vteps: impl IntoIterator<Item = Ipv4Addr>,
    links: Links,
) {
    network_flows(out, net, ports, vteps, links);
    if let Some((a, len)) = net.subnet {
        // An address of the tenant's own that no endpoint holds goes nowhere (not out of
        // the host, for one).
        out.flows.insert_flow(Flow::new(
            L3,
            150,
            cookie(CookieKind::Network, &net.key),
            to_router()
                .reg(REG_ZONE, u32::from(net.zone))
                .ipv4_dst(a, len),
            vec![],
        ));
    }
}

fn network_flows(
    out: &mut Compiled,
    net: &Network,
    ports: &[u32],
    vteps: impl IntoIterator<Item = Ipv4Addr>,
    links: Links,
) {
    let uplink = links.uplink;
    let c = cookie(CookieKind::Network, &net.key);
    out.owners.insert(c, format!("network {}", net.key));
    let seg = net.segment.id();
    let on_net = || Match::new().reg(REG_NETWORK, seg);
    let set = &mut out.flows;

    // Flooding: every local port of the network, and the uplink (tagged) for VLAN networks.
    // OpenFlow never outputs a packet to the port it came in on, so no bucket echoes it back.
    let mut buckets: Vec<Bucket> = ports
        .iter()
        .map(|p| Bucket::new(vec![Action::output(*p)]))
        .collect();
    let uplink_tagging = match (net.segment, uplink) {
        (crate::Segment::Vlan(tag), Some(port)) => Some(uplink_tagged(tag, port)),
        _ => None,
    };
    if let Some(tagging) = &uplink_tagging {
        buckets.push(Bucket::new(tagging.clone()));
    }
    // VXLAN: head-end replication, one copy per other host with endpoints in the network.
    if let (crate::Segment::Vxlan(vni), Some(tunnel)) = (net.segment, links.tunnel) {
        for v in vteps {
            if let Some(a) = towards(net, v, links) {
                buckets.push(Bucket::new(a));
            }
        }
        // What arrives from a tunnel: this network's frames with its VNI, flooded to local
        // ports only.
        set.insert_flow(Flow::new(
            CLASSIFIER,
            100,
            c,
            Match::new()
                .in_port(tunnel)
                .with(Field::TunnelId, u128::from(vni)),
            vec![
                apply(vec![
                    set_reg(REG_NETWORK, seg),
                    set_reg(REG_ORIGIN, FROM_TUNNEL),
                    set_reg(REG_ZONE, u32::from(net.zone)),
                ]),
                goto(L2_FORWARD),
            ],
        ));
        let mut local: Vec<Bucket> = ports
            .iter()
            .map(|p| Bucket::new(vec![Action::output(*p)]))
            .collect();
        local.sort_by_cached_key(|b| format!("{:?}", b.actions));
        set.insert_group(Group::new(seg | LOCAL_FLOOD_BIT, GroupType::All, local));
        set.insert_flow(Flow::new(
            L2_FORWARD,
            110,
            c,
            on_net().reg(REG_ORIGIN, FROM_TUNNEL).with_masked(
                Field::EthDst,
                MULTICAST_BIT,
                MULTICAST_BIT,
            ),
            vec![apply(vec![Action::Group(seg | LOCAL_FLOOD_BIT)])],
        ));
    }
    buckets.sort_by_cached_key(|b| format!("{:?}", b.actions));
    set.insert_group(Group::new(seg, GroupType::All, buckets));
    set.insert_flow(Flow::new(
        L2_FORWARD,
        100,
        c,
        on_net().with_masked(Field::EthDst, MULTICAST_BIT, MULTICAST_BIT),
        vec![apply(vec![Action::Group(seg)])],
    ));

    if let (Some(tagging), Some(port), crate::Segment::Vlan(tag)) =
        (&uplink_tagging, uplink, net.segment)
    {
        // Frames of this VLAN from the physical network join the network untagged.
        set.insert_flow(Flow::new(
            CLASSIFIER,
            100,
            c,
            Match::new()
                .in_port(port)
                .with(Field::VlanVid, u128::from(VID_PRESENT | tag)),
            vec![
                apply(vec![
                    Action::PopVlan,
                    set_reg(REG_NETWORK, seg),
                    set_reg(REG_ORIGIN, FROM_UPLINK),
                    set_reg(REG_ZONE, u32::from(net.zone)),
                ]),
                goto(L2_FORWARD),
            ],
        ));
        // Unknown unicast from a local endpoint goes to the physical network, which may know it
        // (through the ingress policy tables, which commit a new connection).
        set.insert_flow(Flow::new(
            L2_FORWARD,
            50,
            c,
            on_net().reg(REG_ORIGIN, FROM_LOCAL),
            vec![
                apply(vec![
                    set_reg(REG_OUT_PORT, port),
                    set_reg(REG_DEST, TO_REMOTE),
                ]),
                goto(INGRESS_POLICY),
            ],
        ));
        // Unicast to the uplink leaves tagged.
        set.insert_flow(Flow::new(
            OUTPUT,
            100,
            c,
            on_net().reg(REG_OUT_PORT, port),
            vec![apply(tagging.clone())],
        ));
    }
    let set = &mut out.flows;

    if let Some(gw) = net.gateway {
        set.insert_flow(arp_answer(c, seg, gw, &GATEWAY_MAC));
    }
}

pub(crate) fn set_reg(n: u8, v: u32) -> Action {
    set_f(reg(n), u128::from(v))
}

/// Turns an ARP request for `ip` into the reply `mac` would send, back out of the port it came in.
fn arp_answer(c: u64, seg: u32, ip: Ipv4Addr, mac: &[u8; 6]) -> Flow {
    Flow::new(
        ARP_RESPONDER,
        100,
        c,
        Match::new()
            .reg(REG_NETWORK, seg)
            .eth_type(ETH_ARP)
            .with(Field::ArpOp, ARP_REQUEST)
            .with(Field::ArpTpa, u128::from(u32::from(ip))),
        vec![apply(vec![
            mv(Field::EthSrc, Field::EthDst),
            set_f(Field::EthSrc, mac_u(mac)),
            set_f(Field::ArpOp, ARP_REPLY),
            mv(Field::ArpSha, Field::ArpTha),
            set_f(Field::ArpSha, mac_u(mac)),
            mv(Field::ArpSpa, Field::ArpTpa),
            set_f(Field::ArpSpa, u128::from(u32::from(ip))),
            Action::output(IN_PORT),
        ])],
    )
}

/// An endpoint on this host, accepted in `net`: its classifier, spoof guard, ARP answers and
/// forwarding, what its group (`m`) adds, and the routes to the addresses it won (`wins[i]`
/// for `ep.ipv4[i]`).
pub(crate) fn endpoint_fragment(
    out: &mut Compiled,
    net: &Network,
    ep: &Endpoint,
    m: Membership,
    wins: &[bool],
) {
    let c = cookie(CookieKind::Endpoint, &ep.key);
    endpoint_flows(out, net, ep, c, m);
    route_flows(out, net, c, &ep.ipv4, wins, &ep.mac);
}

fn endpoint_flows(out: &mut Compiled, net: &Network, ep: &Endpoint, c: u64, m: Membership) {
    out.owners.insert(c, format!("endpoint {}", ep.key));
    let seg = net.segment.id();
    let mac = mac_u(&ep.mac);
    let group = m.id;
    let profile = m.profile;
    if let Some(id) = m.peer {
        crate::rules::peer_flows(out, net.zone, c, &ep.ipv4, id);
    }
    let set = &mut out.flows;

    // Classifier: the port names the network (and the endpoint's group).
    let mut classify = vec![
        set_reg(REG_NETWORK, seg),
        set_reg(REG_ORIGIN, FROM_LOCAL),
        set_reg(REG_ZONE, u32::from(net.zone)),
    ];
    if let Some(g) = group {
        classify.push(set_reg(REG_SRC_GROUP, g));
    }
    let mut classify = vec![apply(classify), goto(SPOOF_GUARD)];
    if let Some(rate) = profile.and_then(|p| p.rate_kbps) {
        // Its netprofile's bandwidth: a meter of its own (id = its port), on all it sends.
        set.insert_meter(crate::flowset::Meter {
            meter_id: ep.ofport,
            rate_kbps: rate,
            burst_kb: profile.map_or(0, |p| p.burst_kb),
            pps: false,
        });
        classify.insert(0, Instruction::Meter(ep.ofport));
    }
    set.insert_flow(Flow::new(
        CLASSIFIER,
        100,
        c,
        Match::new().in_port(ep.ofport),
        classify,
    ));

    // Spoof guard: its own MAC, with its own addresses; ARP must name both truthfully.
    let from_ep = || Match::new().in_port(ep.ofport).eth_src(ep.mac);
    for a in &ep.ipv4 {
        let a = u128::from(u32::from(*a));
        let mut pass = vec![goto(ARP_RESPONDER)];
        if let Some(d) = profile.and_then(|p| p.dscp) {
            // Its netprofile's DSCP, on everything it sends.
            pass.insert(0, apply(vec![set_f(Field::IpDscp, u128::from(d))]));
        }
        set.insert_flow(Flow::new(
            SPOOF_GUARD,
            100,
            c,
            from_ep().eth_type(ETH_IPV4).with(Field::Ipv4Src, a),
            pass,
        ));
        set.insert_flow(Flow::new(
            SPOOF_GUARD,
            100,
            c,
            from_ep()
                .eth_type(ETH_ARP)
                .with(Field::ArpSpa, a)
                .with(Field::ArpSha, mac),
            vec![goto(ARP_RESPONDER)],
        ));
        set.insert_flow(arp_answer(c, seg, Ipv4Addr::from(a as u32), &ep.mac));
    }
    if !ep.ipv6.is_empty() {
        // Its addresses, its link-local addresses, and the unspecified address (duplicate
        // address detection).
        let mut v6: Vec<(u128, Option<u128>)> =
            ep.ipv6.iter().map(|a| (u128::from(*a), None)).collect();
        v6.push((
            u128::from(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0)),
            Some(!0u128 << 118),
        ));
        v6.push((0, None));
        for (a, mask) in v6 {
            let m = from_ep().eth_type(ETH_IPV6);
            let m = match mask {
                Some(mask) => m.with_masked(Field::Ipv6Src, a, mask),
                None => m.with(Field::Ipv6Src, a),
            };
            set.insert_flow(Flow::new(SPOOF_GUARD, 100, c, m, vec![goto(ARP_RESPONDER)]));
        }
    }

    // Forwarding: this MAC in this network is this port.
    set.insert_flow(Flow::new(
        L2_FORWARD,
        200,
        c,
        Match::new().reg(REG_NETWORK, seg).eth_dst(ep.mac),
        vec![
            apply(
                [
                    set_reg(REG_OUT_PORT, ep.ofport),
                    set_reg(REG_DEST, TO_LOCAL),
                ]
                .into_iter()
                .chain(group.map(|g| set_reg(REG_DST_GROUP, g)))
                .collect(),
            ),
            goto(INGRESS_POLICY),
        ],
    ));
}
