//! Shared by the tests against a real Open vSwitch: a corpus of messages covering every match
//! field, action and instruction the codec supports, and a tiny blocking driver for a session.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use ofproto::action::{Action, Ct, CtZone, FieldRange, Nat, NatAddrs, NatKind, NX_IN_PORT};
use ofproto::instruction::Instruction;
use ofproto::msg::{
    Bucket, FlowMod, GroupMod, GroupModCommand, GroupType, MeterBand, MeterMod, MeterModCommand,
};
use ofproto::oxm::{ct_state, Field, Match, OFPVID_PRESENT};
use ofproto::session::{Config, Event, Session};

pub const GROUP_ID: u32 = 7;
pub const METER_ID: u32 = 3;

fn ip4(a: u8, b: u8, c: u8, d: u8) -> u128 {
    u128::from(u32::from(Ipv4Addr::new(a, b, c, d)))
}

fn ip6(s: &str) -> u128 {
    u128::from(s.parse::<Ipv6Addr>().unwrap())
}

fn mac(last: u8) -> u128 {
    0x5054_0000_0000 | u128::from(last)
}

fn apply(actions: Vec<Action>) -> Vec<Instruction> {
    vec![Instruction::ApplyActions(actions)]
}

fn flow(
    table: u8,
    priority: u16,
    cookie: u64,
    m: Match,
    instructions: Vec<Instruction>,
) -> FlowMod {
    let mut f = FlowMod::add(table, priority, m, instructions);
    f.cookie = cookie;
    f
}

fn reg(n: u8, ofs: u16, bits: u16) -> FieldRange {
    FieldRange::new(Field::Reg(n), ofs, bits).unwrap()
}

/// The group the corpus outputs to, and the meter it uses.
pub fn group_and_meter() -> (GroupMod, MeterMod) {
    (
        GroupMod {
            command: GroupModCommand::Add,
            group_type: GroupType::All,
            group_id: GROUP_ID,
            buckets: vec![
                Bucket::new(vec![Action::output(1)]),
                Bucket::new(vec![Action::output(2)]),
                Bucket::new(vec![
                    Action::PushVlan(0x8100),
                    Action::set_field(Field::VlanVid, u128::from(OFPVID_PRESENT | 10)).unwrap(),
                    Action::output(3),
                ]),
            ],
        },
        MeterMod {
            command: MeterModCommand::Add,
            flags: ofproto::msg::meter_flags::KBPS
                | ofproto::msg::meter_flags::BURST
                | ofproto::msg::meter_flags::STATS,
            meter_id: METER_ID,
            bands: vec![MeterBand::Drop {
                rate: 1000,
                burst_size: 100,
            }],
        },
    )
}

/// Flows that together use every match field, action and instruction of the codec in a way a
/// switch accepts (prerequisites met, tables only forward, groups and meters existing).
pub fn flow_corpus() -> Vec<FlowMod> {
    let tcp = || Match::new().eth_type(0x0800).ip_proto(6);
    vec![
        // IPv4/TCP with masks, registers and conntrack.
        flow(
            0,
            100,
            0x101,
            tcp()
                .in_port(1)
                .ipv4_src(Ipv4Addr::new(10, 1, 0, 0), 24)
                .ipv4_dst(Ipv4Addr::new(10, 1, 0, 5), 32)
                .with_masked(Field::TcpSrc, 0x400, 0xfc00)
                .with(Field::TcpDst, 80)
                .with(Field::IpDscp, 10)
                .with(Field::IpEcn, 1)
                .reg_masked(3, 5, 0xff)
                .with(Field::Reg(15), 0xffff_ffff)
                .ct_state(
                    ct_state::TRK | ct_state::NEW,
                    ct_state::TRK | ct_state::NEW | ct_state::EST,
                )
                .with(Field::CtZone, 9)
                .with_masked(Field::CtMark, 1, 3)
                .with_masked(Field::CtLabel, 0x10, 0xff)
                .with_masked(Field::Metadata, 0x12, 0xff),
            vec![
                Instruction::Meter(METER_ID),
                Instruction::ApplyActions(vec![
                    Action::set_field(Field::Reg(0), 0x5).unwrap(),
                    Action::Load {
                        dst: reg(1, 0, 8),
                        value: 0x7,
                    },
                    Action::Move {
                        src: reg(0, 0, 16),
                        dst: reg(2, 16, 16),
                    },
                    Action::Ct(Ct {
                        commit: true,
                        force: false,
                        zone: CtZone::Field(reg(4, 0, 16)),
                        table: Some(5),
                        alg: 0,
                        actions: vec![
                            Action::Nat(Nat {
                                kind: NatKind::Src,
                                addrs: NatAddrs::V4(
                                    Ipv4Addr::new(192, 0, 2, 1),
                                    Some(Ipv4Addr::new(192, 0, 2, 9)),
                                ),
                                ports: Some((1000, Some(2000))),
                                persistent: false,
                                hash: false,
                                random: true,
                            }),
                            Action::set_field(Field::CtMark, 0x3).unwrap(),
                        ],
                    }),
                ]),
                Instruction::WriteMetadata {
                    value: 0x1,
                    mask: 0xff,
                },
                Instruction::GotoTable(5),
            ],
        ),
        // ARP: answered by rewriting in place (the ARP responder's shape).
        flow(
            1,
            200,
            0x102,
            Match::new()
                .eth_type(0x0806)
                .with(Field::ArpOp, 1)
                .with(Field::ArpTpa, ip4(10, 1, 0, 1))
                .with_masked(Field::ArpSpa, ip4(10, 1, 0, 0), ip4(255, 255, 255, 0))
                .with(Field::ArpSha, mac(5))
                .with_masked(Field::ArpTha, 0, mac(0) | 0xffff_ffff_ffff)
                .with(Field::EthSrc, mac(5))
                .with_masked(Field::EthDst, 0x0100_0000_0000, 0x0100_0000_0000),
            apply(vec![
                Action::Move {
                    src: FieldRange::whole(Field::EthSrc),
                    dst: FieldRange::whole(Field::EthDst),
                },
                Action::set_field(Field::EthSrc, mac(1)).unwrap(),
                Action::set_field(Field::ArpOp, 2).unwrap(),
                Action::Move {
                    src: FieldRange::whole(Field::ArpSha),
                    dst: FieldRange::whole(Field::ArpTha),
                },
                Action::Move {
                    src: FieldRange::whole(Field::ArpSpa),
                    dst: FieldRange::whole(Field::ArpTpa),
                },
                Action::set_field(Field::ArpSha, mac(1)).unwrap(),
                Action::set_field(Field::ArpSpa, ip4(10, 1, 0, 1)).unwrap(),
                Action::Output {
                    port: 0xffff_fff8,
                    max_len: 0,
                },
            ]),
        ),
        // VLAN tagging at the edge.
        flow(
            1,
            300,
            0x103,
            Match::new()
                .in_port(2)
                .with(Field::VlanVid, u128::from(OFPVID_PRESENT | 100))
                .with(Field::VlanPcp, 3),
            apply(vec![Action::PopVlan, Action::resubmit(2)]),
        ),
        flow(
            1,
            301,
            0x104,
            Match::new().in_port(3).with(Field::VlanVid, 0),
            apply(vec![
                Action::PushVlan(0x8100),
                Action::set_field(Field::VlanVid, u128::from(OFPVID_PRESENT | 100)).unwrap(),
                Action::output(2),
            ]),
        ),
        // IPv6 and ICMPv6 neighbour discovery.
        flow(
            2,
            400,
            0x105,
            Match::new()
                .eth_type(0x86dd)
                .ip_proto(58)
                .with_masked(Field::Ipv6Src, ip6("2001:db8::"), ip6("ffff:ffff::"))
                .with(Field::Ipv6Dst, ip6("2001:db8::1"))
                .with_masked(Field::Ipv6Flabel, 0x12345, 0xfffff)
                .with(Field::Icmpv6Type, 135)
                .with(Field::Icmpv6Code, 0)
                .with(Field::Ipv6NdTarget, ip6("2001:db8::1"))
                .with(Field::Ipv6NdSll, mac(9)),
            apply(vec![Action::DecNwTtl, Action::Group(GROUP_ID)]),
        ),
        flow(
            2,
            401,
            0x10d,
            Match::new()
                .eth_type(0x86dd)
                .ip_proto(58)
                .with(Field::Icmpv6Type, 136)
                .with(Field::Ipv6NdTll, mac(10)),
            apply(vec![Action::DecTtl {
                controller_ids: vec![1, 2],
            }]),
        ),
        // UDP, SCTP, ICMP.
        flow(
            2,
            500,
            0x106,
            Match::new()
                .eth_type(0x0800)
                .ip_proto(17)
                .with(Field::UdpSrc, 68)
                .with(Field::UdpDst, 67),
            apply(vec![
                Action::Controller {
                    max_len: 128,
                    controller_id: 0,
                    reason: 0,
                },
                Action::Controller2(ofproto::action::Controller2 {
                    max_len: 200,
                    userdata: vec![0xde, 0xad, 0xbe, 0xef, 0x00, 0x01],
                    ..Default::default()
                }),
                Action::SetQueue(1),
                Action::output(3),
            ]),
        ),
        flow(
            2,
            501,
            0x107,
            Match::new()
                .eth_type(0x0800)
                .ip_proto(132)
                .with(Field::SctpSrc, 1000)
                .with(Field::SctpDst, 2000),
            apply(vec![
                Action::SetNwTtl(9),
                Action::DecNwTtl,
                Action::output(1),
            ]),
        ),
        flow(
            2,
            502,
            0x108,
            Match::new()
                .eth_type(0x0800)
                .ip_proto(1)
                .with(Field::Icmpv4Type, 8)
                .with(Field::Icmpv4Code, 0),
            apply(vec![
                Action::Note(vec![0xde, 0xad, 0xbe, 0xef, 0, 1]),
                Action::output(1),
            ]),
        ),
        // MPLS.
        flow(
            3,
            600,
            0x109,
            Match::new()
                .eth_type(0x8847)
                .with(Field::MplsLabel, 1000)
                .with(Field::MplsTc, 2)
                .with(Field::MplsBos, 1),
            apply(vec![
                Action::DecMplsTtl,
                Action::SetMplsTtl(10),
                Action::PopMpls(0x0800),
                Action::output(1),
            ]),
        ),
        flow(
            3,
            601,
            0x10a,
            Match::new().eth_type(0x0800),
            apply(vec![Action::PushMpls(0x8847), Action::output(1)]),
        ),
        // Tunnel metadata, packet mark, extended registers, conjunctive matches.
        flow(
            4,
            700,
            0x10b,
            Match::new()
                .with_masked(Field::NxmTunId, 0x64, 0xffff)
                .with(Field::TunIpv4Src, ip4(192, 168, 7, 1))
                .with_masked(
                    Field::TunIpv4Dst,
                    ip4(192, 168, 7, 0),
                    ip4(255, 255, 255, 0),
                )
                .with_masked(Field::PktMark, 0x10, 0xf0)
                .with(Field::XReg(3), 0x0000_0005_0000_0007),
            apply(vec![Action::Conjunction {
                id: 11,
                clause: 0,
                n_clauses: 2,
            }]),
        ),
        flow(
            4,
            701,
            0x10c,
            Match::new()
                .with(Field::ConjId, 11)
                .with(Field::TunnelId, 0x99),
            vec![
                Instruction::ApplyActions(vec![
                    Action::OutputReg {
                        src: reg(6, 0, 16),
                        max_len: 0,
                    },
                    Action::Resubmit {
                        in_port: NX_IN_PORT,
                        table: Some(6),
                    },
                    Action::Resubmit {
                        in_port: 1,
                        table: None,
                    },
                    Action::CtClear,
                ]),
                Instruction::ClearActions,
                Instruction::WriteActions(vec![Action::output(2)]),
            ],
        ),
    ]
}

/// A blocking driver for a [`Session`] over a unix socket, for tests.
pub struct Conn {
    stream: UnixStream,
    pub session: Session,
}

impl Conn {
    pub fn connect(path: &Path) -> Conn {
        let stream =
            UnixStream::connect(path).unwrap_or_else(|e| panic!("connect {}: {e}", path.display()));
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let mut c = Conn {
            stream,
            session: Session::new(Instant::now(), Config::default()),
        };
        c.pump_until(|e| matches!(e, Event::Connected(_)));
        c
    }

    /// Sends what the session has, reads what arrives, until an event satisfies `done`; returns
    /// every event seen. Panics after 10 s.
    pub fn pump_until(&mut self, mut done: impl FnMut(&Event) -> bool) -> Vec<Event> {
        let start = Instant::now();
        let mut seen = Vec::new();
        let mut buf = vec![0u8; 65536];
        loop {
            while let Some(b) = self.session.poll_transmit() {
                self.stream.write_all(&b).unwrap();
            }
            while let Some(e) = self.session.poll_event() {
                let stop = done(&e);
                seen.push(e);
                if stop {
                    return seen;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "timed out; events so far: {seen:#?}"
            );
            match self.stream.read(&mut buf) {
                Ok(0) => panic!("switch closed the connection; events: {seen:#?}"),
                Ok(n) => self.session.handle_input(&buf[..n], Instant::now()),
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    self.session.handle_timeout(Instant::now())
                }
                Err(e) => panic!("read: {e}"),
            }
        }
    }
}
