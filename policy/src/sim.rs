//! The pipeline simulator: one packet through a host's compiled flows, step by step, as Open
//! vSwitch would take it (for the part of OpenFlow Weft uses), told in intent terms. The base of
//! `netctl trace`; the model and what it leaves out are in `docs/observability.md`.
//!
//! Semantics follow Open vSwitch's code, not the OpenFlow specification where the two differ:
//! - table lookup as `lib/classifier.c` does it: the highest-priority match, with conjunctive
//!   matches (soft matches above the best plain one, evaluated priority by priority, then a
//!   second lookup with `conj_id` set that ignores clause flows);
//! - actions as `ofproto/ofproto-dpif-xlate.c` translates them: `ct(table=N)` forks (a clone
//!   goes through conntrack and resumes in table N once this pass is over; the packet itself
//!   continues untracked), every `ct` clears the conntrack fields of the packet that goes on, a
//!   group bucket works on a clone of the packet as the group met it, output never goes back to
//!   the input port except by `IN_PORT`, `set_field` only touches a field the packet has,
//!   `dec_ttl` at TTL 1 sends the packet to the controller and ends the action list;
//! - group buckets are action sets (`lib/ofp-actions.c`, `ofpacts_execute_action_set`);
//! - fields that share storage in OVS's `struct flow` are one field here (`arp_spa` is
//!   `nw_src`, `arp_op` is `nw_proto`, ICMP type and code are `tp_src` and `tp_dst`, the NXM and
//!   OXM spellings of a field are one), and a field the packet lacks reads as zero.
//!
//! Connection tracking is an explicit model, [`Conntrack`]: the caller passes the connections
//! the host holds (none: every packet is the first of a new connection) and gets back what the
//! packet committed, to simulate the next packet or the reply with.

use std::collections::BTreeMap;
use std::fmt;
use std::net::Ipv4Addr;

use ofproto::action::{Action, Ct, CtZone, FieldRange, NatAddrs, NatKind, NX_IN_PORT};
use ofproto::instruction::{Instruction, InstructionList};
use ofproto::msg::group_meter::GroupType;
use ofproto::oxm::{ct_state, port_name, Field, MatchField, Prereq, OFPVID_PRESENT};

use crate::flowset::{Flow, FlowSet};
use crate::layout::{self, CookieKind};
use crate::model::fmt_mac;
use crate::pipeline::Compiled;

const ETH_IPV4: u16 = 0x0800;
const ETH_ARP: u16 = 0x0806;
const ETH_RARP: u16 = 0x8035;
const ETH_IPV6: u16 = 0x86dd;
const TCP: u8 = 6;
const UDP: u8 = 17;
const ICMP: u8 = 1;
const OFPP_MAX: u32 = 0xffff_ff00;
const OFPP_IN_PORT: u32 = 0xffff_fff8;
const OFPP_CONTROLLER: u32 = 0xffff_fffd;
const OFPP_ANY: u32 = 0xffff_ffff;
/// Open vSwitch's limit on nested resubmits (`MAX_DEPTH`).
const MAX_DEPTH: usize = 64;
/// Table lookups one trace may make, clones included: a pipeline that loops ends here.
const MAX_LOOKUPS: usize = 4096;

/// A packet as it enters the bridge, or as it leaves it (in an [`Output`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet {
    /// The OpenFlow port it enters by.
    pub in_port: u32,
    pub eth_src: [u8; 6],
    pub eth_dst: [u8; 6],
    /// The VLAN id of its 802.1Q tag, if it has one.
    pub vlan: Option<u16>,
    pub l3: L3,
    /// The tunnel it came out of (VXLAN: VNI and outer addresses), for a frame arriving from
    /// the tunnel port.
    pub tunnel: Option<Tunnel>,
}

/// What an Ethernet frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L3 {
    Ipv4(Ipv4),
    Arp(Arp),
    /// Any other EtherType (IPv6 among them: its fields are not simulated).
    Other(u16),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ipv4 {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    /// The DSCP bits (0–63).
    pub dscp: u8,
    pub ttl: u8,
    pub l4: L4,
}

/// What an IPv4 packet carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum L4 {
    Tcp {
        src: u16,
        dst: u16,
    },
    Udp {
        src: u16,
        dst: u16,
    },
    Icmp {
        typ: u8,
        code: u8,
    },
    /// Another IP protocol, by number.
    Other(u8),
}

impl L4 {
    pub fn proto(self) -> u8 {
        match self {
            L4::Tcp { .. } => TCP,
            L4::Udp { .. } => UDP,
            L4::Icmp { .. } => ICMP,
            L4::Other(p) => p,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arp {
    /// 1: request, 2: reply.
    pub op: u16,
    pub sha: [u8; 6],
    pub spa: Ipv4Addr,
    pub tha: [u8; 6],
    pub tpa: Ipv4Addr,
}

/// The tunnel metadata of a frame that came out of a tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunnel {
    /// The VNI.
    pub id: u64,
    /// The sending host's VTEP address.
    pub src: Ipv4Addr,
    /// This host's VTEP address.
    pub dst: Ipv4Addr,
}

/// The source port [`Packet::tcp`] and [`Packet::udp`] give a packet.
pub const CLIENT_PORT: u16 = 40000;

impl Packet {
    fn ipv4(
        in_port: u32,
        eth_src: [u8; 6],
        eth_dst: [u8; 6],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        l4: L4,
    ) -> Packet {
        Packet {
            in_port,
            eth_src,
            eth_dst,
            vlan: None,
            l3: L3::Ipv4(Ipv4 {
                src,
                dst,
                dscp: 0,
                ttl: 64,
                l4,
            }),
            tunnel: None,
        }
    }

    /// A TCP packet to `dst_port` from [`CLIENT_PORT`], TTL 64, DSCP 0, untagged.
    pub fn tcp(
        in_port: u32,
        eth_src: [u8; 6],
        eth_dst: [u8; 6],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        dst_port: u16,
    ) -> Packet {
        let l4 = L4::Tcp {
            src: CLIENT_PORT,
            dst: dst_port,
        };
        Packet::ipv4(in_port, eth_src, eth_dst, src, dst, l4)
    }

    /// A UDP packet to `dst_port` from [`CLIENT_PORT`], TTL 64, DSCP 0, untagged.
    pub fn udp(
        in_port: u32,
        eth_src: [u8; 6],
        eth_dst: [u8; 6],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        dst_port: u16,
    ) -> Packet {
        let l4 = L4::Udp {
            src: CLIENT_PORT,
            dst: dst_port,
        };
        Packet::ipv4(in_port, eth_src, eth_dst, src, dst, l4)
    }

    /// An ICMP echo request, TTL 64, untagged.
    pub fn icmp_echo(
        in_port: u32,
        eth_src: [u8; 6],
        eth_dst: [u8; 6],
        src: Ipv4Addr,
        dst: Ipv4Addr,
    ) -> Packet {
        let l4 = L4::Icmp { typ: 8, code: 0 };
        Packet::ipv4(in_port, eth_src, eth_dst, src, dst, l4)
    }

    /// A broadcast ARP request from `sha`/`spa` for `tpa`.
    pub fn arp_request(in_port: u32, sha: [u8; 6], spa: Ipv4Addr, tpa: Ipv4Addr) -> Packet {
        Packet {
            in_port,
            eth_src: sha,
            eth_dst: [0xff; 6],
            vlan: None,
            l3: L3::Arp(Arp {
                op: 1,
                sha,
                spa,
                tha: [0; 6],
                tpa,
            }),
            tunnel: None,
        }
    }

    /// The answer to this packet, sent into the bridge at `in_port`: MACs, addresses and ports
    /// swapped, TTL 64, an ICMP echo request turned into its reply. (Only IPv4 is turned
    /// around; anything else keeps its payload.)
    pub fn reply(&self, in_port: u32) -> Packet {
        let l3 = match self.l3 {
            L3::Ipv4(ip) => L3::Ipv4(Ipv4 {
                src: ip.dst,
                dst: ip.src,
                dscp: ip.dscp,
                ttl: 64,
                l4: match ip.l4 {
                    L4::Tcp { src, dst } => L4::Tcp { src: dst, dst: src },
                    L4::Udp { src, dst } => L4::Udp { src: dst, dst: src },
                    L4::Icmp { typ: 8, code } => L4::Icmp { typ: 0, code },
                    other => other,
                },
            }),
            other => other,
        };
        Packet {
            in_port,
            eth_src: self.eth_dst,
            eth_dst: self.eth_src,
            vlan: self.vlan,
            l3,
            tunnel: None,
        }
    }

    /// This frame as it arrives at another host's tunnel port `in_port`, sent with VNI `id`
    /// from the VTEP `from` to the VTEP `to`.
    pub fn from_tunnel(self, in_port: u32, id: u64, from: Ipv4Addr, to: Ipv4Addr) -> Packet {
        Packet {
            in_port,
            tunnel: Some(Tunnel {
                id,
                src: from,
                dst: to,
            }),
            ..self
        }
    }

    /// The same frame entering at another port (what the next bridge or the receiver sees).
    pub fn at(self, in_port: u32) -> Packet {
        Packet {
            in_port,
            tunnel: None,
            ..self
        }
    }

    pub fn eth_type(&self) -> u16 {
        match self.l3 {
            L3::Ipv4(_) => ETH_IPV4,
            L3::Arp(_) => ETH_ARP,
            L3::Other(t) => t,
        }
    }
}

impl fmt::Display for Packet {
    /// Like `ovs-appctl ofproto/trace` takes a flow: `in_port=2,dl_src=…,tcp,nw_src=…`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "in_port={}", port_name(self.in_port))?;
        if let Some(t) = &self.tunnel {
            write!(f, ",tun_id={:#x},tun_src={},tun_dst={}", t.id, t.src, t.dst)?;
        }
        f.write_str(",")?;
        self.fmt_frame(f)
    }
}

impl Packet {
    /// The frame alone: VLAN, Ethernet, and what it carries.
    fn fmt_frame(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(v) = self.vlan {
            write!(f, "dl_vlan={v},")?;
        }
        write!(
            f,
            "dl_src={},dl_dst={}",
            fmt_mac(&self.eth_src),
            fmt_mac(&self.eth_dst)
        )?;
        match self.l3 {
            L3::Ipv4(ip) => {
                let proto = match ip.l4 {
                    L4::Tcp { .. } => "tcp".to_string(),
                    L4::Udp { .. } => "udp".to_string(),
                    L4::Icmp { .. } => "icmp".to_string(),
                    L4::Other(p) => format!("ip,nw_proto={p}"),
                };
                write!(f, ",{proto},nw_src={},nw_dst={}", ip.src, ip.dst)?;
                if ip.dscp != 0 {
                    write!(f, ",nw_tos={}", ip.dscp << 2)?;
                }
                write!(f, ",nw_ttl={}", ip.ttl)?;
                match ip.l4 {
                    L4::Tcp { src, dst } | L4::Udp { src, dst } => {
                        write!(f, ",tp_src={src},tp_dst={dst}")
                    }
                    L4::Icmp { typ, code } => write!(f, ",icmp_type={typ},icmp_code={code}"),
                    L4::Other(_) => Ok(()),
                }
            }
            L3::Arp(a) => write!(
                f,
                ",arp,arp_op={},arp_spa={},arp_tpa={},arp_sha={},arp_tha={}",
                a.op,
                a.spa,
                a.tpa,
                fmt_mac(&a.sha),
                fmt_mac(&a.tha)
            ),
            L3::Other(t) => write!(f, ",dl_type={t:#06x}"),
        }
    }
}

/// A connection's addresses and ports as one direction of it sees them (ports are 0 for
/// protocols other than TCP and UDP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tuple {
    pub proto: u8,
    pub src: Ipv4Addr,
    pub src_port: u16,
    pub dst: Ipv4Addr,
    pub dst_port: u16,
}

impl Tuple {
    /// The other direction.
    pub fn reversed(self) -> Tuple {
        Tuple {
            proto: self.proto,
            src: self.dst,
            src_port: self.dst_port,
            dst: self.src,
            dst_port: self.src_port,
        }
    }
}

impl fmt::Display for Tuple {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "src={} dst={} sport={} dport={}",
            self.src, self.dst, self.src_port, self.dst_port
        )
    }
}

/// One committed connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    pub zone: u16,
    /// As its first packet saw it (before any address translation).
    pub original: Tuple,
    /// What its replies look like: the original reversed, after translation.
    pub reply: Tuple,
    /// `ct_mark`.
    pub mark: u32,
    /// Whether a reply has passed: until then a packet in the original direction is `+new`, as
    /// in Linux and Open vSwitch's conntrack.
    pub seen_reply: bool,
}

/// Which way a packet goes in its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dir {
    Original,
    Reply,
}

/// The connections a host's conntrack holds: the simulator's explicit model of it. A packet
/// of no committed connection is the first of a new one (`+trk+new`); one in the reply
/// direction of a committed connection is `+trk+est+rpl`, and in the original direction
/// `+trk+est` once a reply has passed. `ct(commit)` adds its connection (with its translation
/// and `ct_mark`). No timeouts, no TCP state, no related (`+rel`) or invalid (`+inv`) packets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conntrack {
    connections: Vec<Connection>,
}

impl Conntrack {
    pub fn new() -> Conntrack {
        Conntrack::default()
    }

    pub fn connections(&self) -> &[Connection] {
        &self.connections
    }

    pub fn is_empty(&self) -> bool {
        self.connections.is_empty()
    }

    /// Records a connection as `ct(commit)` without translation would: for callers that know
    /// what a switch holds.
    pub fn commit(&mut self, zone: u16, original: Tuple) {
        if self.find(zone, &original).is_none() {
            self.connections.push(Connection {
                zone,
                original,
                reply: original.reversed(),
                mark: 0,
                seen_reply: false,
            });
        }
    }

    fn find(&self, zone: u16, t: &Tuple) -> Option<(usize, Dir)> {
        self.connections.iter().enumerate().find_map(|(i, c)| {
            if c.zone != zone {
                None
            } else if c.original == *t {
                Some((i, Dir::Original))
            } else if c.reply == *t {
                Some((i, Dir::Reply))
            } else {
                None
            }
        })
    }
}

impl fmt::Display for Conntrack {
    /// One line per connection, in the manner of `conntrack -L`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in &self.connections {
            writeln!(
                f,
                "zone={} proto={} {} {} mark={}{}",
                c.zone,
                c.original.proto,
                c.original,
                c.reply,
                c.mark,
                if c.seen_reply { " [SEEN_REPLY]" } else { "" }
            )?;
        }
        Ok(())
    }
}

/// One flow a packet met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub table: u8,
    /// The table's name in the pipeline (`layout::TABLES`), `?` for a table it does not use.
    pub table_name: &'static str,
    pub priority: u16,
    pub cookie: u64,
    /// The intent object that made the flow ([`Compiled::owners`]), where known.
    pub owner: Option<String>,
    /// The flow, as `ovs-ofctl dump-flows` prints it.
    pub flow: String,
    /// Its match alone, as OVS prints it (empty: it matches everything).
    pub match_: String,
    /// What its instructions did, in order, each with its effect where it has one.
    pub actions: Vec<String>,
    /// Other flows that matched with the same priority: Open vSwitch takes any one of them
    /// (this trace followed `flow`). Empty when the choice is clear.
    pub ties: Vec<String>,
    /// How the flow was chosen when that was not a plain match (the clauses of a conjunctive
    /// match), and what the simulator could not model here.
    pub notes: Vec<String>,
}

/// Where a packet leaves the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub port: u32,
    /// Sent by `IN_PORT`: back out of the port it came in by.
    pub to_in_port: bool,
    /// The frame as it leaves (its `in_port` is still the port it entered by; see
    /// [`Packet::at`] and [`Packet::from_tunnel`] to feed it to the next bridge).
    pub packet: Packet,
    /// For the tunnel port: the VNI and the remote VTEP it is sent to.
    pub tunnel: Option<TunnelOut>,
}

/// The outer header of a frame sent into the tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelOut {
    /// The VNI.
    pub id: u64,
    /// The remote VTEP.
    pub remote: Ipv4Addr,
}

/// Where a copy of the packet came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Via {
    /// A bucket of a group (its index in the group).
    Bucket { group: u32, bucket: usize },
    /// The clone `ct(table=N)` sends through conntrack, resumed in table N, when the packet
    /// itself did something too.
    Conntrack { table: u8 },
    /// The packet itself, next to copies.
    Packet,
}

/// One copy of the packet and its fate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketCopy {
    pub via: Via,
    /// What the bucket did to the copy (empty for the other kinds).
    pub actions: Vec<String>,
    /// The flows the copy met after it was made.
    pub steps: Vec<Step>,
    pub verdict: Verdict,
}

/// What became of the packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It leaves by these ports (usually one).
    Output(Vec<Output>),
    /// Nothing sent it anywhere. `table` is where it ended, `reason` names the deciding flow's
    /// object ("rule blue:p:3 (deny)", "group blue:db default deny", ...).
    Dropped { table: u8, reason: String },
    /// Sent to the controller (a packet-in), for `reason`.
    ToController { table: u8, reason: String },
    /// It was copied (a group, or a conntrack clone next to the packet itself): each copy with
    /// its own fate.
    Multiple(Vec<PacketCopy>),
}

impl Verdict {
    /// Every output, copies included.
    pub fn outputs(&self) -> Vec<&Output> {
        match self {
            Verdict::Output(o) => o.iter().collect(),
            Verdict::Multiple(copies) => copies.iter().flat_map(|c| c.verdict.outputs()).collect(),
            _ => vec![],
        }
    }
}

/// A copy sent to netplugin by the verdict log (`controller(meter_id=N)`, see
/// [`crate::logging`]): which flow sent it. The packet itself goes on as without it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub table: u8,
    pub cookie: u64,
    /// The object that made the flow (the rule, or the default-deny group).
    pub owner: Option<String>,
    /// The meter the copy went through (its rate is not simulated).
    pub meter: u32,
}

/// A packet's way through the bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    pub packet: Packet,
    pub steps: Vec<Step>,
    pub verdict: Verdict,
    /// Copies the verdict log sent to netplugin, in the order the flows were met (copies of
    /// every clone and bucket included).
    pub logged: Vec<Logged>,
    /// The conntrack after the packet: what it committed, replies it was.
    pub conntrack: Conntrack,
}

/// A bridge as the simulator sees it: its flows, groups and meters, who made each flow, and
/// which of its ports is the VXLAN tunnel (`remote_ip=flow`, `key=flow`).
#[derive(Debug, Clone)]
pub struct Bridge<'a> {
    set: &'a FlowSet,
    owners: &'a BTreeMap<u64, String>,
    tunnel_port: Option<u32>,
    /// Per table, its flows highest priority first.
    tables: BTreeMap<u8, Vec<&'a Flow>>,
}

impl<'a> Bridge<'a> {
    pub fn new(
        flows: &'a FlowSet,
        owners: &'a BTreeMap<u64, String>,
        tunnel_port: Option<u32>,
    ) -> Bridge<'a> {
        let mut tables: BTreeMap<u8, Vec<&Flow>> = BTreeMap::new();
        // The set iterates by table, then priority from high to low.
        for f in flows.flows.values() {
            tables.entry(f.table).or_default().push(f);
        }
        Bridge {
            set: flows,
            owners,
            tunnel_port,
            tables,
        }
    }

    /// A compiled host (`compile`'s answer), with its tunnel port (`HostState::tunnel_port`).
    pub fn of(compiled: &'a Compiled, tunnel_port: Option<u32>) -> Bridge<'a> {
        Bridge::new(&compiled.flows, &compiled.owners, tunnel_port)
    }

    /// Steps `packet` through the pipeline from table 0, with the connections `conntrack`
    /// holds, and tells what became of it.
    pub fn trace(&self, packet: &Packet, conntrack: &Conntrack) -> Trace {
        let mut exec = Exec {
            bridge: self,
            ct: conntrack.clone(),
            lookups: 0,
            cookie: 0,
            logged: vec![],
        };
        let mut pkt = Pkt::from_packet(packet);
        let mut pass = Pass::default();
        exec.run_tables(&mut pkt, 0, &mut pass, 0);
        let (steps, verdict) = exec.resolve(pass, 0);
        Trace {
            packet: *packet,
            steps,
            verdict,
            logged: exec.logged,
            conntrack: exec.ct,
        }
    }

    fn owner(&self, cookie: u64) -> Option<String> {
        self.owners.get(&cookie).cloned()
    }
}

/// The packet inside the simulator: its fields as OVS's `struct flow` holds them (one value
/// per storage slot, zero where the packet lacks the field) plus what no match field shows.
#[derive(Debug, Clone)]
struct Pkt {
    fields: BTreeMap<Field, u128>,
    ttl: u8,
    /// Rewrites the datapath's conntrack made (address translation) that the OpenFlow view of
    /// the packet does not show until it recirculates: they apply to what leaves.
    nat: Vec<(Field, u128)>,
}

/// The slot a field is stored in: fields OVS keeps in one place are one.
fn slot(f: Field) -> Field {
    use Field::*;
    match f {
        NxmInPort => InPort,
        NxmTunId => TunnelId,
        ArpSpa => Ipv4Src,
        ArpTpa => Ipv4Dst,
        ArpOp => IpProto,
        UdpSrc | SctpSrc | Icmpv4Type | Icmpv6Type => TcpSrc,
        UdpDst | SctpDst | Icmpv4Code | Icmpv6Code => TcpDst,
        f => f,
    }
}

fn mac_value(m: &[u8; 6]) -> u128 {
    m.iter().fold(0u128, |a, b| (a << 8) | u128::from(*b))
}

fn value_mac(v: u128) -> [u8; 6] {
    let b = v.to_be_bytes();
    [b[10], b[11], b[12], b[13], b[14], b[15]]
}

fn bits(n: u16) -> u128 {
    if n >= 128 {
        u128::MAX
    } else {
        (1u128 << n) - 1
    }
}

fn width_mask(f: Field) -> u128 {
    bits(f.width() as u16 * 8)
}

impl Pkt {
    fn from_packet(p: &Packet) -> Pkt {
        let mut k = Pkt {
            fields: BTreeMap::new(),
            ttl: 64,
            nat: vec![],
        };
        k.set(Field::InPort, p.in_port.into());
        k.set(Field::EthSrc, mac_value(&p.eth_src));
        k.set(Field::EthDst, mac_value(&p.eth_dst));
        if let Some(v) = p.vlan {
            k.set(Field::VlanVid, u128::from(OFPVID_PRESENT | (v & 0xfff)));
        }
        k.set(Field::EthType, p.eth_type().into());
        match p.l3 {
            L3::Ipv4(ip) => {
                k.set(Field::Ipv4Src, u32::from(ip.src).into());
                k.set(Field::Ipv4Dst, u32::from(ip.dst).into());
                k.set(Field::IpDscp, ip.dscp.into());
                k.set(Field::IpProto, ip.l4.proto().into());
                k.ttl = ip.ttl;
                let (a, b) = match ip.l4 {
                    L4::Tcp { src, dst } | L4::Udp { src, dst } => (src, dst),
                    L4::Icmp { typ, code } => (typ.into(), code.into()),
                    L4::Other(_) => (0, 0),
                };
                k.set(Field::TcpSrc, a.into());
                k.set(Field::TcpDst, b.into());
            }
            L3::Arp(a) => {
                k.set(Field::ArpOp, a.op.into());
                k.set(Field::ArpSpa, u32::from(a.spa).into());
                k.set(Field::ArpTpa, u32::from(a.tpa).into());
                k.set(Field::ArpSha, mac_value(&a.sha));
                k.set(Field::ArpTha, mac_value(&a.tha));
            }
            L3::Other(_) => {}
        }
        if let Some(t) = p.tunnel {
            k.set(Field::TunnelId, t.id.into());
            k.set(Field::TunIpv4Src, u32::from(t.src).into());
            k.set(Field::TunIpv4Dst, u32::from(t.dst).into());
        }
        k
    }

    /// The frame as it would leave now (translations made by conntrack included).
    fn to_packet(&self) -> Packet {
        let mut k = self.clone();
        k.apply_nat();
        let ip = |f| Ipv4Addr::from(k.get(f) as u32);
        let l3 = match k.eth_type() {
            ETH_IPV4 => {
                let (a, b) = (k.get(Field::TcpSrc) as u16, k.get(Field::TcpDst) as u16);
                let proto = k.get(Field::IpProto) as u8;
                L3::Ipv4(Ipv4 {
                    src: ip(Field::Ipv4Src),
                    dst: ip(Field::Ipv4Dst),
                    dscp: k.get(Field::IpDscp) as u8,
                    ttl: k.ttl,
                    l4: match proto {
                        TCP => L4::Tcp { src: a, dst: b },
                        UDP => L4::Udp { src: a, dst: b },
                        ICMP => L4::Icmp {
                            typ: a as u8,
                            code: b as u8,
                        },
                        p => L4::Other(p),
                    },
                })
            }
            ETH_ARP => L3::Arp(Arp {
                op: k.get(Field::ArpOp) as u16,
                sha: value_mac(k.get(Field::ArpSha)),
                spa: ip(Field::ArpSpa),
                tha: value_mac(k.get(Field::ArpTha)),
                tpa: ip(Field::ArpTpa),
            }),
            t => L3::Other(t),
        };
        let vid = k.get(Field::VlanVid) as u16;
        Packet {
            in_port: k.get(Field::InPort) as u32,
            eth_src: value_mac(k.get(Field::EthSrc)),
            eth_dst: value_mac(k.get(Field::EthDst)),
            vlan: (vid & OFPVID_PRESENT != 0).then_some(vid & 0xfff),
            l3,
            tunnel: None,
        }
    }

    fn get(&self, f: Field) -> u128 {
        let v = self.fields.get(&slot(f)).copied().unwrap_or(0);
        match f {
            // NXM's in_port is 16 bits: OpenFlow 1.0's reserved ports are 0xfff8 and up.
            Field::NxmInPort if v >= u128::from(OFPP_MAX) => v & 0xffff,
            _ => v & width_mask(f),
        }
    }

    fn set(&mut self, f: Field, v: u128) {
        self.fields.insert(slot(f), v & width_mask(f));
    }

    fn set_masked(&mut self, f: Field, v: u128, mask: u128) {
        let old = self.get(f);
        self.set(f, (old & !mask) | (v & mask));
    }

    fn read(&self, r: &FieldRange) -> u128 {
        (self.get(r.field()) >> r.ofs()) & bits(r.n_bits())
    }

    fn write(&mut self, r: &FieldRange, v: u128) {
        let mask = bits(r.n_bits()) << r.ofs();
        self.set_masked(r.field(), (v << r.ofs()) & mask, mask);
    }

    fn eth_type(&self) -> u16 {
        self.get(Field::EthType) as u16
    }

    fn is_ip(&self) -> bool {
        matches!(self.eth_type(), ETH_IPV4 | ETH_IPV6)
    }

    /// Whether the packet has the fields a prerequisite asks for (`mf_are_prereqs_ok`).
    fn prereq_ok(&self, p: Prereq) -> bool {
        let eth = self.eth_type();
        let proto = self.get(Field::IpProto) as u8;
        let ip4 = eth == ETH_IPV4;
        let ip6 = eth == ETH_IPV6;
        let icmp6_type = self.get(Field::Icmpv6Type) as u8;
        match p {
            Prereq::None => true,
            Prereq::Ipv4 => ip4,
            Prereq::Ipv6 => ip6,
            Prereq::Ip => ip4 || ip6,
            Prereq::Arp => eth == ETH_ARP || eth == ETH_RARP,
            Prereq::Tcp => (ip4 || ip6) && proto == TCP,
            Prereq::Udp => (ip4 || ip6) && proto == UDP,
            Prereq::Sctp => (ip4 || ip6) && proto == 132,
            Prereq::Icmpv4 => ip4 && proto == ICMP,
            Prereq::Icmpv6 => ip6 && proto == 58,
            Prereq::Nd => ip6 && proto == 58 && matches!(icmp6_type, 135 | 136),
            Prereq::NdSll => ip6 && proto == 58 && icmp6_type == 135,
            Prereq::NdTll => ip6 && proto == 58 && icmp6_type == 136,
            Prereq::Mpls => matches!(eth, 0x8847 | 0x8848),
            Prereq::VlanPresent => self.get(Field::VlanVid) & u128::from(OFPVID_PRESENT) != 0,
        }
    }

    /// The connection tuple of the packet as the datapath has it (translations included).
    fn tuple(&self) -> Tuple {
        let mut k = self.clone();
        k.apply_nat();
        let proto = k.get(Field::IpProto) as u8;
        let ports = proto == TCP || proto == UDP;
        let port = |f| if ports { k.get(f) as u16 } else { 0 };
        Tuple {
            proto,
            src: Ipv4Addr::from(k.get(Field::Ipv4Src) as u32),
            src_port: port(Field::TcpSrc),
            dst: Ipv4Addr::from(k.get(Field::Ipv4Dst) as u32),
            dst_port: port(Field::TcpDst),
        }
    }

    /// The field changes that make the packet's tuple `to`.
    fn rewrites(&self, to: &Tuple) -> Vec<(Field, u128)> {
        let from = self.tuple();
        let mut out = vec![];
        if from.src != to.src {
            out.push((Field::Ipv4Src, u32::from(to.src).into()));
        }
        if from.dst != to.dst {
            out.push((Field::Ipv4Dst, u32::from(to.dst).into()));
        }
        if from.src_port != to.src_port {
            out.push((Field::TcpSrc, to.src_port.into()));
        }
        if from.dst_port != to.dst_port {
            out.push((Field::TcpDst, to.dst_port.into()));
        }
        out
    }

    fn apply_nat(&mut self) {
        for (f, v) in std::mem::take(&mut self.nat) {
            self.set(f, v);
        }
    }

    fn clear_conntrack(&mut self) {
        for f in [Field::CtState, Field::CtZone, Field::CtMark, Field::CtLabel] {
            self.fields.remove(&f);
        }
    }
}

fn fmt_ct_state(s: u32) -> String {
    let mut out = String::new();
    for (bit, name) in ct_state::NAMES {
        if s & bit != 0 {
            out.push('+');
            out.push_str(name);
        }
    }
    if out.is_empty() {
        out.push_str("untracked");
    }
    out
}

/// Whether a flow matches the packet (with `conj_id`, 0 outside the second lookup of a
/// conjunctive match). A field the simulator does not know never matches.
fn matches(flow: &Flow, pkt: &Pkt, conj_id: u32) -> bool {
    flow.match_.fields.iter().all(|mf| match mf {
        MatchField::Field(fm) => {
            let have = if fm.field() == Field::ConjId {
                u128::from(conj_id)
            } else {
                pkt.get(fm.field())
            };
            let mask = fm.mask().unwrap_or(u128::MAX);
            have & mask == fm.value() & mask
        }
        MatchField::Unknown(_) => false,
    })
}

/// The instructions in the order OpenFlow 1.3 runs them, whatever their order in the flow.
fn in_order(list: &[Instruction]) -> Vec<&Instruction> {
    let rank = |i: &Instruction| match i {
        Instruction::Meter(_) => 0,
        Instruction::ApplyActions(_) => 1,
        Instruction::ClearActions => 2,
        Instruction::WriteActions(_) => 3,
        Instruction::WriteMetadata { .. } => 4,
        Instruction::GotoTable(_) => 5,
        Instruction::Experimenter { .. } | Instruction::Unknown { .. } => 6,
    };
    let mut v: Vec<&Instruction> = list.iter().collect();
    v.sort_by_key(|i| rank(i));
    v
}

/// One `conjunction(id, clause/n_clauses)` of a clause flow (`clause` from 0, as on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Clause {
    id: u32,
    clause: u8,
    n_clauses: u8,
}

/// The conjunctions a flow is a clause of, if it is a clause flow: as OVS's
/// `get_conjunctions`, conjunction actions with nothing but notes beside them.
fn conjunctions(flow: &Flow) -> Option<Vec<Clause>> {
    let mut out = vec![];
    'all: for ins in in_order(&flow.instructions) {
        match ins {
            Instruction::ApplyActions(actions) => {
                for a in actions {
                    match a {
                        Action::Conjunction {
                            id,
                            clause,
                            n_clauses,
                        } => out.push(Clause {
                            id: *id,
                            clause: *clause,
                            n_clauses: *n_clauses,
                        }),
                        Action::Note(_) => {}
                        _ => break 'all,
                    }
                }
            }
            _ => break,
        }
    }
    (!out.is_empty()).then_some(out)
}

/// A group bucket's actions as the action set they are (`ofpacts_execute_action_set`): the
/// last of each ordered kind (pop_vlan, push_vlan, dec_ttl), every set_field and move in order,
/// then the one final action (ct, ct_clear, resubmit, output, group: the later kind wins). With
/// no final action, nothing runs.
fn action_set(actions: &[Action]) -> Vec<Action> {
    let mut slots: [Option<&Action>; 3] = [None; 3];
    let mut sets = vec![];
    let mut last: Option<(u8, &Action)> = None;
    for a in actions {
        let final_class = match a {
            Action::PopVlan => {
                slots[0] = Some(a);
                continue;
            }
            Action::PushVlan(_) => {
                slots[1] = Some(a);
                continue;
            }
            Action::DecNwTtl | Action::DecTtl { .. } => {
                slots[2] = Some(a);
                continue;
            }
            Action::SetField(_)
            | Action::Load2(_)
            | Action::Load { .. }
            | Action::Move { .. }
            | Action::SetQueue(_) => {
                sets.push(a.clone());
                continue;
            }
            Action::Ct(_) => 0,
            Action::CtClear => 1,
            Action::Resubmit { .. } => 2,
            Action::Output { .. } => 3,
            Action::Group(_) => 4,
            // Not allowed in an action set (OVS refuses the group).
            _ => continue,
        };
        if last.is_none_or(|(c, _)| final_class >= c) {
            last = Some((final_class, a));
        }
    }
    let Some((_, fin)) = last else {
        return vec![];
    };
    let mut out: Vec<Action> = slots.iter().flatten().map(|a| (*a).clone()).collect();
    out.extend(sets);
    out.push(fin.clone());
    out
}

/// A new connection's tuple after `nat(src=…)` or `nat(dst=…)` (the first address and port of
/// the range: the model allocates no further).
fn translated(t: Tuple, nat: &ofproto::action::Nat) -> Tuple {
    let mut to = t;
    let addr = match nat.addrs {
        NatAddrs::V4(a, _) => Some(a),
        _ => None,
    };
    let port = nat.ports.map(|(p, _)| p);
    match nat.kind {
        NatKind::Src => {
            to.src = addr.unwrap_or(to.src);
            to.src_port = port.unwrap_or(to.src_port);
        }
        NatKind::Dst => {
            to.dst = addr.unwrap_or(to.dst);
            to.dst_port = port.unwrap_or(to.dst_port);
        }
        NatKind::Reuse => {}
    }
    to
}

/// The plain (not clause) flows of the highest priority among `matching` (ordered by
/// priority, highest first).
fn best_plain<'a>(matching: &[&'a Flow]) -> Vec<&'a Flow> {
    let plain: Vec<&'a Flow> = matching
        .iter()
        .copied()
        .filter(|f| conjunctions(f).is_none())
        .collect();
    match plain.first() {
        Some(top) => plain
            .iter()
            .copied()
            .take_while(|f| f.priority == top.priority)
            .collect(),
        None => vec![],
    }
}

/// What one table lookup found.
struct Lookup<'a> {
    flow: Option<&'a Flow>,
    /// Other flows that matched at the winner's priority.
    ties: Vec<&'a Flow>,
    notes: Vec<String>,
}

/// What one pass through the tables did (the packet itself, or a bucket's copy), before the
/// clones it sent to conntrack are followed.
#[derive(Default)]
struct Pass {
    steps: Vec<Step>,
    outputs: Vec<Output>,
    controller: Vec<(u8, String)>,
    copies: Vec<PacketCopy>,
    /// Clones sent through conntrack, to resume in a table once this pass is over.
    recircs: Vec<(u8, Pkt)>,
    /// Where and why the pipeline ended, if it ended at a flow or a table miss.
    end: Option<(u8, String)>,
    /// An output that was not made (to the input port, to a port out of range).
    skipped: Option<(u8, String)>,
}

/// Whether an action list goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    Go,
    Stop,
}

struct Exec<'b, 'a> {
    bridge: &'b Bridge<'a>,
    ct: Conntrack,
    lookups: usize,
    /// The cookie of the flow whose instructions run.
    cookie: u64,
    /// What the verdict log sent to netplugin.
    logged: Vec<Logged>,
}

impl<'a> Exec<'_, 'a> {
    /// Looks `pkt` up in `table` as OVS's classifier does.
    fn lookup(&self, table: u8, pkt: &Pkt) -> Lookup<'a> {
        let none = Vec::new();
        let flows = self.bridge.tables.get(&table).unwrap_or(&none);
        let matching: Vec<&'a Flow> = flows
            .iter()
            .copied()
            .filter(|f| matches(f, pkt, 0))
            .collect();
        let hard = best_plain(&matching);
        let hard_pri = hard.first().map_or(-1, |f| i32::from(f.priority));
        // Clause flows ("soft matches") count only above the best plain match.
        let soft: Vec<(&'a Flow, Vec<Clause>)> = matching
            .iter()
            .filter(|f| i32::from(f.priority) > hard_pri)
            .filter_map(|f| conjunctions(f).map(|c| (*f, c)))
            .collect();
        let mut priorities: Vec<u16> = soft.iter().map(|(f, _)| f.priority).collect();
        priorities.dedup();
        for p in priorities {
            let at_p: Vec<&(&Flow, Vec<Clause>)> =
                soft.iter().filter(|(f, _)| f.priority == p).collect();
            let n_soft = at_p.len();
            // As `find_conjunctive_match`: a conjunction is complete when every clause has a
            // matching flow at this priority; ids are tried in the order they complete.
            let mut clauses: BTreeMap<u32, u64> = BTreeMap::new();
            let mut by: BTreeMap<u32, Vec<&Flow>> = BTreeMap::new();
            let mut complete: Vec<u32> = vec![];
            for (f, conjs) in &at_p {
                for &Clause {
                    id,
                    clause,
                    n_clauses: n,
                } in conjs
                {
                    if usize::from(n) > n_soft {
                        continue;
                    }
                    let b = clauses.entry(id).or_insert(u64::MAX << (n & 63));
                    *b |= 1u64 << (clause & 63);
                    by.entry(id).or_default().push(f);
                    if *b == u64::MAX && !complete.contains(&id) {
                        complete.push(id);
                    }
                }
            }
            // The second lookup: the packet with conj_id set, clause flows ignored.
            let found: Vec<(u32, Vec<&'a Flow>)> = complete
                .iter()
                .map(|id| {
                    let with_id: Vec<&'a Flow> = flows
                        .iter()
                        .copied()
                        .filter(|f| matches(f, pkt, *id))
                        .collect();
                    (*id, best_plain(&with_id))
                })
                .filter(|(_, best)| !best.is_empty())
                .collect();
            if let Some((id, best)) = found.first() {
                let mut notes = vec![format!(
                    "conjunctive match {id} at priority {p}: {}",
                    by[id]
                        .iter()
                        .map(|f| {
                            let conj = conjunctions(f)
                                .unwrap_or_default()
                                .into_iter()
                                .filter(|c| c.id == *id)
                                .map(|c| format!("clause {}/{}", c.clause + 1, c.n_clauses))
                                .collect::<Vec<_>>()
                                .join(", ");
                            format!("{conj} by {}", f.match_)
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                )];
                let mut ties: Vec<&'a Flow> = best[1..].to_vec();
                for (other, b) in &found[1..] {
                    if b[0] != best[0] {
                        notes.push(format!(
                            "conjunctive match {other} is complete at the same priority too: Open vSwitch may take it instead"
                        ));
                        ties.push(b[0]);
                    }
                }
                return Lookup {
                    flow: Some(best[0]),
                    ties,
                    notes,
                };
            }
        }
        Lookup {
            flow: hard.first().copied(),
            ties: hard.get(1..).map(<[_]>::to_vec).unwrap_or_default(),
            notes: vec![],
        }
    }

    /// Runs the pipeline from `table` until a flow has no goto_table (or nothing matches).
    fn run_tables(&mut self, pkt: &mut Pkt, mut table: u8, pass: &mut Pass, depth: usize) {
        loop {
            if self.lookups >= MAX_LOOKUPS {
                pass.end = Some((
                    table,
                    format!("more than {MAX_LOOKUPS} table lookups: the pipeline loops"),
                ));
                return;
            }
            self.lookups += 1;
            let found = self.lookup(table, pkt);
            let Some(flow) = found.flow else {
                pass.end = Some((
                    table,
                    format!("no flow matched in table {table} (table miss)"),
                ));
                return;
            };
            let owner = self.bridge.owner(flow.cookie);
            let idx = pass.steps.len();
            pass.steps.push(Step {
                table,
                table_name: layout::table_name(table).unwrap_or("?"),
                priority: flow.priority,
                cookie: flow.cookie,
                owner: owner.clone(),
                flow: flow.to_string(),
                match_: flow.match_.to_string(),
                actions: vec![],
                ties: found.ties.iter().map(|f| f.to_string()).collect(),
                notes: found.notes,
            });
            let mut log = vec![];
            let mut goto = None;
            let mut next = Next::Go;
            self.cookie = flow.cookie;
            for ins in in_order(&flow.instructions) {
                match ins {
                    Instruction::Meter(m) => log.push(format!(
                        "meter:{m} (noted: meters' rates are not simulated)"
                    )),
                    Instruction::ApplyActions(actions) => {
                        next = self.actions(actions, pkt, pass, &mut log, table, depth);
                        if next == Next::Stop {
                            break;
                        }
                    }
                    Instruction::WriteMetadata { value, mask } => {
                        pkt.set_masked(Field::Metadata, (*value).into(), (*mask).into());
                        log.push(format!("write_metadata:{value:#x}/{mask:#x}"));
                    }
                    Instruction::GotoTable(t) => goto = Some(*t),
                    other => {
                        let text = InstructionList(std::slice::from_ref(other)).to_string();
                        pass.steps[idx]
                            .notes
                            .push(format!("{text}: not simulated (Weft does not use it)"));
                    }
                }
            }
            if next == Next::Go {
                if let Some(t) = goto {
                    log.push(format!("goto_table:{t}"));
                }
            }
            pass.steps[idx].actions.extend(log);
            match (next, goto) {
                (Next::Go, Some(t)) => table = t,
                _ => {
                    if next == Next::Go {
                        pass.end = Some((table, self.end_reason(table, flow, owner.as_deref())));
                    }
                    return;
                }
            }
        }
    }

    /// Why the pipeline ended at `flow` (what a drop means, in intent terms).
    fn end_reason(&self, table: u8, flow: &Flow, owner: Option<&str>) -> String {
        drop_reason(table, flow, owner).unwrap_or_else(|| {
            format!(
                "the pipeline ends in table {table} at a flow of {} that sends it nowhere",
                owner.unwrap_or("no known object")
            )
        })
    }

    /// Runs an action list on `pkt`, logging each action with its effect.
    fn actions(
        &mut self,
        actions: &[Action],
        pkt: &mut Pkt,
        pass: &mut Pass,
        log: &mut Vec<String>,
        table: u8,
        depth: usize,
    ) -> Next {
        for a in actions {
            let text = a.to_string();
            match a {
                Action::Output { port, .. } => {
                    let note = self.output(*port, pkt, pass, table);
                    log.push(format!("{text}{note}"));
                }
                Action::OutputReg { src, .. } => {
                    let v = pkt.read(src);
                    if v > 0xffff {
                        let why = format!("output port {v} is out of range");
                        log.push(format!("{text} → {why}"));
                        pass.skipped = Some((table, why));
                    } else {
                        // OVS keeps ports in 16 bits: 0xff00 and up are the reserved ones.
                        let p = v as u32;
                        let port = if p >= 0xff00 { p | 0xffff_0000 } else { p };
                        let note = self.output(port, pkt, pass, table);
                        log.push(format!("{text} → port {}{note}", port_name(port)));
                    }
                }
                Action::Group(id) => {
                    let (next, note) = self.group(*id, pkt, pass, table, depth);
                    log.push(format!("{text} → {note}"));
                    if next == Next::Stop {
                        return Next::Stop;
                    }
                }
                Action::SetField(MatchField::Field(fm)) | Action::Load2(MatchField::Field(fm)) => {
                    let f = fm.field();
                    if pkt.prereq_ok(f.prereq()) {
                        pkt.set_masked(f, fm.value(), fm.mask().unwrap_or(u128::MAX));
                        log.push(text);
                    } else {
                        log.push(format!("{text} → ignored: the packet has no {}", f.name()));
                    }
                }
                Action::Load { dst, value } => {
                    // OVS turns reg_load into a masked set_field: the same prerequisites.
                    if pkt.prereq_ok(dst.field().prereq()) {
                        pkt.write(dst, (*value).into());
                        log.push(text);
                    } else {
                        log.push(format!(
                            "{text} → ignored: the packet has no {}",
                            dst.field().name()
                        ));
                    }
                }
                Action::Move { src, dst } => {
                    let v = pkt.read(src);
                    pkt.write(dst, v);
                    let shown =
                        if dst.ofs() == 0 && usize::from(dst.n_bits()) == dst.field().width() * 8 {
                            dst.field().format_value(v)
                        } else {
                            format!("{v:#x}")
                        };
                    log.push(format!("{text} → {shown}"));
                }
                Action::PushVlan(_) => {
                    if pkt.prereq_ok(Prereq::VlanPresent) {
                        log.push(format!(
                            "{text} (a second tag: only the outer one is simulated)"
                        ));
                    } else {
                        log.push(text);
                    }
                    // As OVS: the new tag has VID 0 and PCP 0 until set.
                    pkt.set(Field::VlanVid, u128::from(OFPVID_PRESENT));
                }
                Action::PopVlan => {
                    pkt.set(Field::VlanVid, 0);
                    log.push(text);
                }
                Action::DecNwTtl | Action::DecTtl { .. } => {
                    if !pkt.is_ip() {
                        log.push(format!("{text} → not IP: nothing to do"));
                    } else if pkt.ttl > 1 {
                        pkt.ttl -= 1;
                        log.push(format!("{text} → ttl {}", pkt.ttl));
                    } else {
                        // `compose_dec_ttl`: a packet-in to each controller id (plain
                        // dec_ttl: id 0), and the action list ends.
                        let ids = match a {
                            Action::DecTtl { controller_ids } => controller_ids.clone(),
                            _ => vec![0],
                        };
                        for id in ids {
                            pass.controller.push((
                                table,
                                format!(
                                    "TTL {} expired at dec_ttl (packet-in reason invalid_ttl, controller id {id})",
                                    pkt.ttl
                                ),
                            ));
                        }
                        log.push(format!("{text} → TTL expired: to the controller, end"));
                        return Next::Stop;
                    }
                }
                Action::SetNwTtl(t) => {
                    if pkt.is_ip() {
                        pkt.ttl = *t;
                    }
                    log.push(text);
                }
                Action::Ct(ct) => {
                    let note = self.ct(ct, pkt, pass);
                    log.push(format!("{text} → {note}"));
                }
                Action::CtClear => {
                    pkt.clear_conntrack();
                    log.push(text);
                }
                Action::Conjunction { .. } => {
                    log.push(format!("{text} → does nothing when executed"));
                }
                Action::Note(_) => log.push(text),
                Action::Controller2(_) if crate::logging::controller_meter(a).is_some() => {
                    let meter = crate::logging::controller_meter(a).unwrap_or_default();
                    let cookie = self.cookie;
                    let owner = self.bridge.owner(cookie);
                    log.push(format!(
                        "controller(meter_id={meter}) → verdict log: a copy to netplugin (meter {meter}, its rate not simulated); the packet goes on"
                    ));
                    self.logged.push(Logged {
                        table,
                        cookie,
                        owner,
                        meter,
                    });
                }
                Action::Controller { reason, .. } => {
                    pass.controller.push((
                        table,
                        format!(
                            "controller action (reason {})",
                            ofproto::action::packet_in_reason(*reason)
                        ),
                    ));
                    log.push(text);
                }
                Action::Resubmit { in_port, table: t } => {
                    if depth + 1 >= MAX_DEPTH {
                        log.push(format!(
                            "{text} → too deep (more than {MAX_DEPTH} resubmits): ignored"
                        ));
                        continue;
                    }
                    if *in_port != NX_IN_PORT {
                        log.push(format!(
                            "{text} → with another in_port: not simulated, looked up with the packet's own"
                        ));
                    } else {
                        log.push(text);
                    }
                    let to = t.unwrap_or(table);
                    self.run_tables(pkt, to, pass, depth + 1);
                }
                _ => log.push(format!(
                    "{text} → not simulated (Weft does not use it); the packet goes on unchanged"
                )),
            }
        }
        Next::Go
    }

    /// `xlate_output_action` for `port`: where the packet goes, and a note for the log.
    fn output(&mut self, port: u32, pkt: &Pkt, pass: &mut Pass, table: u8) -> String {
        let in_port = pkt.get(Field::InPort) as u32;
        let (port, to_in_port) = match port {
            OFPP_IN_PORT => (in_port, true),
            OFPP_CONTROLLER => {
                pass.controller.push((table, "output to CONTROLLER".into()));
                return String::new();
            }
            OFPP_ANY => return " → nowhere (OFPP_NONE)".into(),
            p if p == in_port => {
                let why = format!(
                    "output to the input port {} skipped (OpenFlow sends a packet back only by IN_PORT)",
                    port_name(p)
                );
                pass.skipped = Some((table, why.clone()));
                return format!(" → {why}");
            }
            p if p > OFPP_MAX && p != 0xffff_fffe => {
                return format!(" → {}: not simulated (Weft does not use it)", port_name(p));
            }
            p => (p, false),
        };
        let packet = pkt.to_packet();
        let tunnel = (Some(port) == self.bridge.tunnel_port).then(|| TunnelOut {
            id: pkt.get(Field::TunnelId) as u64,
            remote: Ipv4Addr::from(pkt.get(Field::TunIpv4Dst) as u32),
        });
        let note = match &tunnel {
            Some(t) => format!(" (tunnel: VNI {}, remote {})", t.id, t.remote),
            None => String::new(),
        };
        pass.outputs.push(Output {
            port,
            to_in_port,
            packet,
            tunnel,
        });
        note
    }

    /// A group action: every bucket is a copy of the packet as the group met it.
    fn group(
        &mut self,
        id: u32,
        pkt: &Pkt,
        pass: &mut Pass,
        table: u8,
        depth: usize,
    ) -> (Next, String) {
        let Some(g) = self.bridge.set.groups.get(&id) else {
            // `xlate_group_action`: the action list ends, the pipeline does not.
            pass.skipped = Some((table, format!("group {id} does not exist")));
            return (
                Next::Stop,
                format!("group {id} does not exist: the action list ends"),
            );
        };
        let buckets: Vec<usize> = match g.group_type {
            GroupType::All => (0..g.buckets.len()).collect(),
            GroupType::Indirect => (0..g.buckets.len().min(1)).collect(),
            other => {
                return (
                    Next::Go,
                    format!("a group of type {other:?}: not simulated (Weft uses type all)"),
                )
            }
        };
        let n = buckets.len();
        for b in buckets {
            let mut copy = pkt.clone();
            let mut sub = Pass::default();
            let mut log = vec![];
            let acts = action_set(&g.buckets[b].actions);
            if acts.is_empty() {
                log.push("no output, group or other final action: the bucket does nothing".into());
            }
            self.actions(&acts, &mut copy, &mut sub, &mut log, table, depth + 1);
            let (steps, verdict) = self.resolve(sub, table);
            pass.copies.push(PacketCopy {
                via: Via::Bucket {
                    group: id,
                    bucket: b,
                },
                actions: log,
                steps,
                verdict,
            });
        }
        (Next::Go, format!("{n} copies"))
    }

    /// A `ct` action: the connection is looked up (and committed); a clone recirculates to
    /// `table` if there is one; the packet that goes on is untracked.
    fn ct(&mut self, ct: &Ct, pkt: &mut Pkt, pass: &mut Pass) -> String {
        let zone = match ct.zone {
            CtZone::Imm(z) => z,
            CtZone::Field(r) => pkt.read(&r) as u16,
        };
        let nat = ct.actions.iter().find_map(|a| match a {
            Action::Nat(n) => Some(*n),
            _ => None,
        });
        let set_mark = ct.actions.iter().find_map(|a| match a {
            Action::SetField(MatchField::Field(fm)) | Action::Load2(MatchField::Field(fm))
                if fm.field() == Field::CtMark =>
            {
                Some((fm.value() as u32, fm.mask().map_or(u32::MAX, |m| m as u32)))
            }
            _ => None,
        });
        let mut note = format!("zone {zone}");
        let (state, mark, rewrite) = if pkt.eth_type() != ETH_IPV4 {
            note.push_str(", not IPv4: conntrack not modelled, taken as new");
            (ct_state::TRK | ct_state::NEW, 0, None)
        } else {
            let tuple = pkt.tuple();
            match self.ct.find(zone, &tuple) {
                Some((i, dir)) => {
                    let c = &mut self.ct.connections[i];
                    let state = ct_state::TRK
                        | match dir {
                            Dir::Reply => {
                                c.seen_reply = true;
                                ct_state::EST | ct_state::RPL
                            }
                            Dir::Original if c.seen_reply => ct_state::EST,
                            Dir::Original => ct_state::NEW,
                        };
                    if ct.commit {
                        // A known connection keeps its translation; only its mark may change.
                        if let Some((v, m)) = set_mark {
                            c.mark = (c.mark & !m) | (v & m);
                        }
                        note.push_str(", committed already");
                    }
                    // With `nat`, a packet of a translated connection is translated.
                    let to = match dir {
                        Dir::Original => c.reply.reversed(),
                        Dir::Reply => c.original.reversed(),
                    };
                    let rewrite = nat.is_some().then_some(to).filter(|t| *t != tuple);
                    (state, c.mark, rewrite)
                }
                None if ct.commit => {
                    let to = nat.map_or(tuple, |n| translated(tuple, &n));
                    let mark = set_mark.map_or(0, |(v, m)| v & m);
                    self.ct.connections.push(Connection {
                        zone,
                        original: tuple,
                        reply: to.reversed(),
                        mark,
                        seen_reply: false,
                    });
                    note.push_str(", committed");
                    let rewrite = Some(to).filter(|t| *t != tuple);
                    (ct_state::TRK | ct_state::NEW, mark, rewrite)
                }
                // Not committed: conntrack forgets it once the packet is through.
                None => (ct_state::TRK | ct_state::NEW, 0, None),
            }
        };
        note.push_str(&format!(": {}", fmt_ct_state(state)));
        if mark != 0 {
            note.push_str(&format!(", ct_mark={mark:#x}"));
        }
        let changes = rewrite.map(|t| pkt.rewrites(&t)).unwrap_or_default();
        if let Some(t) = rewrite {
            note.push_str(&format!(", translated to {t}"));
        }
        if let Some(table) = ct.table {
            let mut clone = pkt.clone();
            clone.apply_nat();
            for (f, v) in &changes {
                clone.set(*f, *v);
            }
            clone.set(Field::CtState, state.into());
            clone.set(Field::CtZone, zone.into());
            clone.set(Field::CtMark, mark.into());
            pass.recircs.push((table, clone));
            note.push_str(&format!("; a clone resumes in table {table}"));
        }
        // The packet that goes on: translated by the datapath, untracked for OpenFlow.
        pkt.nat.extend(changes);
        pkt.clear_conntrack();
        note
    }

    /// The fate of a pass: its own outputs and copies, and the clones it sent through
    /// conntrack, followed. A pass that did nothing but send one clone is that clone's way.
    fn resolve(&mut self, mut pass: Pass, at: u8) -> (Vec<Step>, Verdict) {
        let mut clones = vec![];
        for (table, mut clone) in std::mem::take(&mut pass.recircs) {
            let mut sub = Pass::default();
            self.run_tables(&mut clone, table, &mut sub, 0);
            clones.push((table, self.resolve(sub, table)));
        }
        let mut steps = pass.steps;
        let acted =
            !pass.outputs.is_empty() || !pass.controller.is_empty() || !pass.copies.is_empty();
        if !acted {
            if clones.len() == 1 {
                let (_, (more, verdict)) = clones.pop().expect("one clone");
                steps.extend(more);
                return (steps, verdict);
            }
            if clones.is_empty() {
                let (table, reason) = pass
                    .skipped
                    .or(pass.end)
                    .unwrap_or((at, "nothing sent it anywhere".into()));
                return (steps, Verdict::Dropped { table, reason });
            }
        }
        if clones.is_empty() && pass.copies.is_empty() {
            if pass.controller.is_empty() {
                return (steps, Verdict::Output(pass.outputs));
            }
            if pass.outputs.is_empty() {
                let (table, reason) = pass.controller.remove(0);
                return (steps, Verdict::ToController { table, reason });
            }
        }
        let mut copies = pass.copies;
        for (table, (s, verdict)) in clones {
            copies.push(PacketCopy {
                via: Via::Conntrack { table },
                actions: vec![],
                steps: s,
                verdict,
            });
        }
        if !pass.outputs.is_empty() {
            copies.push(PacketCopy {
                via: Via::Packet,
                actions: vec![],
                steps: vec![],
                verdict: Verdict::Output(pass.outputs),
            });
        }
        for (table, reason) in pass.controller {
            copies.push(PacketCopy {
                via: Via::Packet,
                actions: vec![],
                steps: vec![],
                verdict: Verdict::ToController { table, reason },
            });
        }
        (steps, Verdict::Multiple(copies))
    }
}

impl fmt::Display for Step {
    /// In the manner of `ovs-appctl ofproto/trace`: the table, the match, the priority and the
    /// flow's object, then what it did, one action a line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = if self.match_.is_empty() {
            "(anything)"
        } else {
            &self.match_
        };
        write!(
            f,
            "{:>2}. {}: {m}, priority {}, ",
            self.table, self.table_name, self.priority
        )?;
        match &self.owner {
            Some(o) => writeln!(f, "{o}")?,
            None => writeln!(f, "cookie {:#x}", self.cookie)?,
        }
        for n in &self.notes {
            writeln!(f, "    note: {n}")?;
        }
        for t in &self.ties {
            writeln!(f, "    AMBIGUOUS, matches as well: {t}")?;
        }
        for a in &self.actions {
            writeln!(f, "    {a}")?;
        }
        Ok(())
    }
}

impl fmt::Display for Via {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Via::Bucket { group, bucket } => write!(f, "group {group} bucket {bucket}"),
            Via::Conntrack { table } => write!(f, "conntrack clone, resumed in table {table}"),
            Via::Packet => f.write_str("the packet itself"),
        }
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "output to port {}", port_name(self.port))?;
        if self.to_in_port {
            f.write_str(" (IN_PORT: back where it came from)")?;
        }
        if let Some(t) = &self.tunnel {
            write!(f, " (tunnel: VNI {}, remote VTEP {})", t.id, t.remote)?;
        }
        f.write_str(": ")?;
        self.packet.fmt_frame(f)
    }
}

impl Verdict {
    fn write(&self, f: &mut fmt::Formatter<'_>, indent: &str) -> fmt::Result {
        match self {
            Verdict::Output(outs) => {
                for o in outs {
                    writeln!(f, "{indent}{o}")?;
                }
                Ok(())
            }
            Verdict::Dropped { table, reason } => {
                writeln!(f, "{indent}dropped in table {table}: {reason}")
            }
            Verdict::ToController { table, reason } => {
                writeln!(f, "{indent}to the controller from table {table}: {reason}")
            }
            Verdict::Multiple(copies) => {
                writeln!(f, "{indent}{} copies:", copies.len())?;
                let inner = format!("{indent}    ");
                for c in copies {
                    writeln!(f, "{indent}  {}:", c.via)?;
                    for a in &c.actions {
                        writeln!(f, "{inner}{a}")?;
                    }
                    for s in &c.steps {
                        for line in s.to_string().lines() {
                            writeln!(f, "{inner}{line}")?;
                        }
                    }
                    c.verdict.write(f, &inner)?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.write(f, "")
    }
}

impl fmt::Display for Trace {
    /// The packet, each step, and the verdict, for people (`netctl trace`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "packet: {}", self.packet)?;
        for s in &self.steps {
            write!(f, "{s}")?;
        }
        f.write_str("verdict: ")?;
        if matches!(self.verdict, Verdict::Output(ref o) if o.len() > 1)
            || matches!(self.verdict, Verdict::Multiple(_))
        {
            writeln!(f)?;
            self.verdict.write(f, "  ")?;
        } else {
            self.verdict.write(f, "")?;
        }
        for l in &self.logged {
            writeln!(
                f,
                "logged: table {}, {} (meter {})",
                l.table,
                l.owner.as_deref().unwrap_or("an unknown object"),
                l.meter
            )?;
        }
        Ok(())
    }
}

/// What a flow that drops means, in intent terms ("rule blue:p:3 (deny)", "group blue:db default
/// deny", the spoof guard, a table's default, ...); None for a flow that sends the packet on
/// (anything but metering and the verdict log's copy). Live traces name what the switch dropped
/// with it too.
pub fn drop_reason(table: u8, flow: &Flow, owner: Option<&str>) -> Option<String> {
    // A flow that only meters or logs (the verdict log's copy) drops the packet itself.
    let drops = flow.instructions.iter().all(|i| match i {
        Instruction::Meter(_) => true,
        Instruction::ApplyActions(a) => a
            .iter()
            .all(|a| crate::logging::controller_meter(a).is_some()),
        _ => false,
    });
    if !drops {
        return None;
    }
    let invalid = flow
        .match_
        .get(Field::CtState)
        .is_some_and(|m| m.value() & u128::from(ct_state::INV) != 0);
    if invalid {
        return Some("conntrack: invalid packet (ct_state=+inv)".into());
    }
    let unknown = || format!("unknown object (cookie {:#x})", flow.cookie);
    Some(match CookieKind::from_cookie(flow.cookie) {
        Some(CookieKind::Rule) => format!("{} (deny)", owner.map_or_else(unknown, Into::into)),
        Some(CookieKind::Group) => {
            format!(
                "{} default deny",
                owner.map_or_else(unknown, Into::into)
            )
        }
        Some(CookieKind::Pipeline) if table == layout::SPOOF_GUARD => {
            "spoof guard: source address not the port's".into()
        }
        Some(CookieKind::Pipeline) if flow.match_.fields.is_empty() => {
            format!("no flow matched in table {table} (table default)")
        }
        Some(CookieKind::Network) if table == layout::L3 => format!(
            "{}: an address of the tenant's subnet that no endpoint holds",
            owner.map_or_else(unknown, Into::into)
        ),
        Some(CookieKind::HostGateway) if table == layout::CLASSIFIER => format!(
            "{}: a transit address as source from the host (a tenant's egress routed back into the bridge)",
            owner.map_or_else(unknown, Into::into)
        ),
        _ => format!(
            "dropped by a flow of {}: {}",
            owner.map_or_else(unknown, Into::into),
            flow.match_
        ),
    })
}

#[cfg(test)]
mod tests {
    //! The semantics the compiled pipeline does not exercise on its own: ties, conjunctions
    //! that do not complete, `ct` forks, action sets, TTL expiry.

    use ofproto::action::Nat;
    use ofproto::msg::group_meter::Bucket;
    use ofproto::oxm::Match;

    use super::*;
    use crate::flowset::Group;

    const A: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const B: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn flow(table: u8, priority: u16, m: Match, actions: Vec<Action>) -> Flow {
        Flow::new(
            table,
            priority,
            0x0100_0000_0000_0000 | u64::from(priority),
            m,
            vec![Instruction::ApplyActions(actions)],
        )
    }

    fn goto(table: u8, priority: u16, m: Match, actions: Vec<Action>, to: u8) -> Flow {
        let mut f = flow(table, priority, m, actions);
        f.instructions.push(Instruction::GotoTable(to));
        f
    }

    fn conj(id: u32, clause: u8) -> Action {
        Action::Conjunction {
            id,
            clause,
            n_clauses: 2,
        }
    }

    fn set(flows: Vec<Flow>) -> FlowSet {
        let mut s = FlowSet::default();
        for f in flows {
            s.insert_flow(f);
        }
        s
    }

    fn run(set: &FlowSet, p: &Packet) -> Trace {
        let owners = BTreeMap::new();
        Bridge::new(set, &owners, None).trace(p, &Conntrack::new())
    }

    fn tcp(in_port: u32) -> Packet {
        Packet::tcp(
            in_port,
            A,
            B,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 2),
            80,
        )
    }

    fn ports(t: &Trace) -> Vec<u32> {
        t.verdict.outputs().iter().map(|o| o.port).collect()
    }

    #[test]
    fn equal_priorities_that_both_match_are_reported_as_ties() {
        let s = set(vec![
            flow(0, 5, Match::new().in_port(1), vec![Action::output(2)]),
            flow(
                0,
                5,
                Match::new().eth_type(ETH_IPV4),
                vec![Action::output(3)],
            ),
            flow(0, 1, Match::new(), vec![Action::output(4)]),
        ]);
        let t = run(&s, &tcp(1));
        assert_eq!(t.steps.len(), 1);
        assert_eq!(t.steps[0].ties.len(), 1, "{t}");
        assert!(t.to_string().contains("AMBIGUOUS"));
        // Only one matches from port 7: no tie.
        let t = run(&s, &tcp(7));
        assert!(t.steps[0].ties.is_empty());
        assert_eq!(ports(&t), [3]);
    }

    #[test]
    fn a_conjunction_needs_a_flow_of_every_clause_at_one_priority() {
        let clause1 = |p| flow(0, p, Match::new().in_port(1), vec![conj(7, 0)]);
        let clause2 = |p| flow(0, p, Match::new().eth_type(ETH_IPV4), vec![conj(7, 1)]);
        let verdict = flow(
            0,
            10,
            Match::new().with(Field::ConjId, 7),
            vec![Action::output(9)],
        );
        let below = flow(0, 5, Match::new(), vec![Action::output(5)]);

        let s = set(vec![
            clause1(10),
            clause2(10),
            verdict.clone(),
            below.clone(),
        ]);
        let t = run(&s, &tcp(1));
        assert_eq!(ports(&t), [9], "{t}");
        assert!(
            t.steps[0].notes[0].contains("clause 1/2 by in_port=1"),
            "{t}"
        );
        // One clause only (another port): the next flow down.
        assert_eq!(ports(&run(&s, &tcp(2))), [5]);
        // Clauses at two priorities never combine.
        let s = set(vec![
            clause1(10),
            clause2(9),
            verdict.clone(),
            below.clone(),
        ]);
        assert_eq!(ports(&run(&s, &tcp(1))), [5]);
        // A plain flow above the clauses wins.
        let above = flow(0, 20, Match::new().in_port(1), vec![Action::output(20)]);
        let s = set(vec![clause1(10), clause2(10), verdict, below, above]);
        let t = run(&s, &tcp(1));
        assert_eq!(ports(&t), [20]);
        assert!(
            t.steps[0].notes.is_empty(),
            "no conjunction was needed: {t}"
        );
    }

    #[test]
    fn ct_untracks_the_packet_that_goes_on_and_forks_a_clone_to_its_table() {
        let ct = |table: Option<u8>, commit: bool| {
            Action::Ct(Ct {
                commit,
                force: false,
                zone: CtZone::Imm(5),
                table,
                alg: 0,
                actions: vec![],
            })
        };
        let tracked = Match::new().ct_state(ct_state::TRK, ct_state::TRK);
        // A tracked packet (the clone of table 0's ct), committed without a table: what goes
        // on is untracked.
        let s = set(vec![
            flow(0, 1, Match::new(), vec![ct(Some(1), false)]),
            goto(1, 1, tracked.clone(), vec![ct(None, true)], 2),
            flow(2, 10, tracked.clone(), vec![Action::output(1)]),
            flow(2, 0, Match::new(), vec![Action::output(2)]),
        ]);
        let t = run(&s, &tcp(3));
        assert_eq!(ports(&t), [2], "{t}");
        assert_eq!(t.conntrack.connections().len(), 1);
        // ct(table=1) then output: the packet itself leaves by port 4, the clone resumes
        // tracked in table 1.
        let s = set(vec![
            flow(
                0,
                1,
                Match::new(),
                vec![ct(Some(1), false), Action::output(4)],
            ),
            flow(1, 10, tracked, vec![Action::output(1)]),
            flow(1, 0, Match::new(), vec![Action::output(2)]),
        ]);
        let t = run(&s, &tcp(3));
        let Verdict::Multiple(copies) = &t.verdict else {
            panic!("{t}")
        };
        let vias: Vec<Via> = copies.iter().map(|c| c.via).collect();
        assert_eq!(vias, [Via::Conntrack { table: 1 }, Via::Packet], "{t}");
        assert_eq!(ports(&t), [1, 4]);
        assert!(t.conntrack.is_empty(), "nothing committed");
    }

    #[test]
    fn nat_translates_what_leaves_and_the_reply_back() {
        let snat = Action::Ct(Ct {
            commit: true,
            force: false,
            zone: CtZone::Imm(5),
            table: None,
            alg: 0,
            actions: vec![Action::Nat(Nat {
                kind: NatKind::Src,
                addrs: NatAddrs::V4(Ipv4Addr::new(169, 254, 0, 5), None),
                ports: None,
                persistent: false,
                hash: false,
                random: false,
            })],
        });
        let lookup = Action::Ct(Ct {
            commit: false,
            force: false,
            zone: CtZone::Imm(5),
            table: Some(1),
            alg: 0,
            actions: vec![Action::Nat(Nat {
                kind: NatKind::Reuse,
                addrs: NatAddrs::None,
                ports: None,
                persistent: false,
                hash: false,
                random: false,
            })],
        });
        let s = set(vec![
            flow(
                0,
                10,
                Match::new().in_port(1),
                vec![snat, Action::output(2)],
            ),
            flow(0, 10, Match::new().in_port(2), vec![lookup]),
            flow(
                1,
                10,
                Match::new().ct_state(
                    ct_state::TRK | ct_state::EST | ct_state::RPL,
                    ct_state::TRK | ct_state::EST | ct_state::RPL,
                ),
                vec![Action::output(1)],
            ),
        ]);
        let out = run(&s, &tcp(1));
        let sent = out.verdict.outputs()[0].packet;
        let L3::Ipv4(v4) = sent.l3 else { panic!() };
        assert_eq!(v4.src, Ipv4Addr::new(169, 254, 0, 5), "{out}");
        let owners = BTreeMap::new();
        let back = Bridge::new(&s, &owners, None).trace(&sent.reply(2), &out.conntrack);
        let o = back.verdict.outputs();
        assert_eq!(o.len(), 1, "{back}");
        let L3::Ipv4(v4) = o[0].packet.l3 else {
            panic!()
        };
        assert_eq!(v4.dst, Ipv4Addr::new(10, 0, 0, 1), "{back}");
    }

    #[test]
    fn a_bucket_is_an_action_set_on_a_copy() {
        let mut s = set(vec![flow(
            0,
            1,
            Match::new(),
            vec![Action::Group(1), Action::output(6)],
        )]);
        // Output written before set_field: the action set sets first.
        s.insert_group(Group::new(
            1,
            GroupType::All,
            vec![Bucket::new(vec![
                Action::output(5),
                Action::set_field(Field::EthDst, mac_value(&A)).unwrap(),
            ])],
        ));
        let t = run(&s, &tcp(3));
        let outs = t.verdict.outputs();
        assert_eq!(outs.len(), 2, "{t}");
        assert_eq!((outs[0].port, outs[0].packet.eth_dst), (5, A));
        // The packet after the group is the one the group met.
        assert_eq!((outs[1].port, outs[1].packet.eth_dst), (6, B));
    }

    #[test]
    fn an_expired_ttl_goes_to_the_controller_and_set_field_needs_its_field() {
        let s = set(vec![flow(
            0,
            1,
            Match::new(),
            vec![
                Action::set_field(Field::IpDscp, 46).unwrap(),
                Action::DecNwTtl,
                Action::output(2),
            ],
        )]);
        let mut p = tcp(1);
        if let L3::Ipv4(ref mut v4) = p.l3 {
            v4.ttl = 1;
        }
        let t = run(&s, &p);
        assert!(
            matches!(&t.verdict, Verdict::ToController { reason, .. } if reason.contains("invalid_ttl")),
            "{t}"
        );
        // ARP has no DSCP and no TTL: both are skipped, the output made.
        let arp = Packet::arp_request(1, A, Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
        let t = run(&s, &arp);
        assert_eq!(ports(&t), [2]);
        assert!(t.steps[0].actions[0].contains("ignored"), "{t}");
        // IPv4 with a TTL to spare: marked and decremented.
        let t = run(&s, &tcp(1));
        let L3::Ipv4(v4) = t.verdict.outputs()[0].packet.l3 else {
            panic!()
        };
        assert_eq!((v4.dscp, v4.ttl), (46, 63));
    }
}
