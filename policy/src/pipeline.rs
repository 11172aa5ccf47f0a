//! The compiler: [`HostState`] in, [`FlowSet`] out. See `docs/pipeline.md` for the layout.

use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};

use ofproto::action::{Action, FieldRange};
use ofproto::instruction::Instruction;
use ofproto::msg::group_meter::{Bucket, GroupType};
use ofproto::oxm::{Field, Match};

use crate::flowset::{Flow, FlowSet, Group};
use crate::layout::*;
use crate::model::{Endpoint, HostState, Network, Problem, RemoteEndpoint};

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

    // Remote endpoints matter only in networks that have local ones; a clash with a local
    // endpoint (or an earlier remote one) leaves the remote one out.
    let mut remotes: BTreeMap<&str, Vec<&RemoteEndpoint>> = BTreeMap::new();
    let mut sorted: Vec<&RemoteEndpoint> = state.remote_endpoints.iter().collect();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    'remote: for r in sorted {
        if !members.contains_key(r.network.as_str()) {
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
    for (key, eps) in &members {
        let net = by_key[key];
        let rs = remotes.get(key).map(Vec::as_slice).unwrap_or_default();
        network_flows(&mut out, net, eps, rs, state);
        for ep in eps {
            endpoint_flows(&mut out, net, ep, &pol);
        }
        for r in rs {
            remote_flows(&mut out, net, r, state, &pol);
        }
    }
    pol.compile(&mut out);
    out
}

/// The actions that carry a frame of `net` to the host at `vtep`, or to the physical network.
fn towards(net: &Network, vtep: Ipv4Addr, state: &HostState) -> Option<Vec<Action>> {
    match (net.segment, state.tunnel_port, state.uplink_port) {
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
fn towards_unicast(net: &Network, vtep: Ipv4Addr, state: &HostState) -> Option<Vec<Action>> {
    match (net.segment, state.tunnel_port, state.uplink_port) {
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

fn remote_flows(
    out: &mut Compiled,
    net: &Network,
    r: &RemoteEndpoint,
    state: &HostState,
    pol: &crate::rules::Policies<'_>,
) {
    let Some(actions) = towards_unicast(net, r.vtep, state) else {
        return;
    };
    let c = cookie(CookieKind::RemoteEndpoint, &r.key);
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
    pol.peer_flows(out, net, c, &r.ipv4, r.group.as_deref());
}

fn network_flows(
    out: &mut Compiled,
    net: &Network,
    eps: &[&Endpoint],
    remotes: &[&RemoteEndpoint],
    state: &HostState,
) {
    let uplink = state.uplink_port;
    let c = cookie(CookieKind::Network, &net.key);
    out.owners.insert(c, format!("network {}", net.key));
    let seg = net.segment.id();
    let on_net = || Match::new().reg(REG_NETWORK, seg);
    let set = &mut out.flows;

    // Flooding: every local port of the network, and the uplink (tagged) for VLAN networks.
    // OpenFlow never outputs a packet to the port it came in on, so no bucket echoes it back.
    let mut buckets: Vec<Bucket> = eps
        .iter()
        .map(|e| Bucket::new(vec![Action::output(e.ofport)]))
        .collect();
    let uplink_tagging = match (net.segment, uplink) {
        (crate::Segment::Vlan(tag), Some(port)) => Some(uplink_tagged(tag, port)),
        _ => None,
    };
    if let Some(tagging) = &uplink_tagging {
        buckets.push(Bucket::new(tagging.clone()));
    }
    // VXLAN: head-end replication, one copy per other host with endpoints in the network.
    let vteps: std::collections::BTreeSet<Ipv4Addr> = remotes.iter().map(|r| r.vtep).collect();
    if let (crate::Segment::Vxlan(vni), Some(tunnel)) = (net.segment, state.tunnel_port) {
        for v in &vteps {
            if let Some(a) = towards(net, *v, state) {
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
        let mut local: Vec<Bucket> = eps
            .iter()
            .map(|e| Bucket::new(vec![Action::output(e.ofport)]))
            .collect();
        local.sort_by_key(|b| format!("{:?}", b.actions));
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
    buckets.sort_by_key(|b| format!("{:?}", b.actions));
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

fn endpoint_flows(
    out: &mut Compiled,
    net: &Network,
    ep: &Endpoint,
    pol: &crate::rules::Policies<'_>,
) {
    let c = cookie(CookieKind::Endpoint, &ep.key);
    out.owners.insert(c, format!("endpoint {}", ep.key));
    let seg = net.segment.id();
    let mac = mac_u(&ep.mac);
    let group = pol.group_id(ep.group.as_deref());
    let profile = pol.profile(ep.group.as_deref());
    pol.peer_flows(out, net, c, &ep.ipv4, ep.group.as_deref());
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
