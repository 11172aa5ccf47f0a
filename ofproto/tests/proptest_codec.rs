//! Property tests: `decode(encode(m)) == m` for generated matches, actions, instructions and
//! messages; arbitrary bytes never panic a decoder.

use std::net::Ipv4Addr;

use bytes::BytesMut;
use ofproto::action::{Action, Ct, CtZone, FieldRange, Nat, NatAddrs, NatKind};
use ofproto::header::frame_len;
use ofproto::instruction::Instruction;
use ofproto::msg::*;
use ofproto::oxm::{Field, FieldMatch, Match, MatchField};
use ofproto::session::{Config, Session};
use proptest::prelude::*;

fn field() -> impl Strategy<Value = Field> {
    prop::sample::select(Field::all())
}

fn fits(f: Field) -> impl Strategy<Value = u128> {
    let bits = f.width() * 8;
    any::<u128>().prop_map(move |v| {
        if bits >= 128 {
            v
        } else {
            v & ((1u128 << bits) - 1)
        }
    })
}

fn field_match() -> impl Strategy<Value = MatchField> {
    field().prop_flat_map(|f| {
        (Just(f), fits(f), proptest::option::of(fits(f))).prop_map(|(f, v, m)| {
            let fm = match m {
                Some(m) if f.maskable() => FieldMatch::masked(f, v, m).unwrap(),
                _ => FieldMatch::exact(f, v).unwrap(),
            };
            MatchField::Field(fm)
        })
    })
}

fn a_match() -> impl Strategy<Value = Match> {
    prop::collection::vec(field_match(), 0..8).prop_map(|fields| Match { fields })
}

fn range() -> impl Strategy<Value = FieldRange> {
    field().prop_flat_map(|f| {
        let bits = (f.width() * 8) as u16;
        (Just(f), 0..bits).prop_flat_map(move |(f, ofs)| {
            (Just(f), Just(ofs), 1..=(bits - ofs).min(64))
                .prop_map(|(f, o, n)| FieldRange::new(f, o, n).unwrap())
        })
    })
}

fn simple_action() -> impl Strategy<Value = Action> {
    prop_oneof![
        (any::<u32>(), any::<u16>()).prop_map(|(port, max_len)| Action::Output { port, max_len }),
        Just(Action::CopyTtlOut),
        Just(Action::CopyTtlIn),
        any::<u8>().prop_map(Action::SetMplsTtl),
        Just(Action::DecMplsTtl),
        any::<u16>().prop_map(Action::PushVlan),
        Just(Action::PopVlan),
        any::<u16>().prop_map(Action::PushMpls),
        any::<u16>().prop_map(Action::PopMpls),
        any::<u32>().prop_map(Action::SetQueue),
        any::<u32>().prop_map(Action::Group),
        any::<u8>().prop_map(Action::SetNwTtl),
        Just(Action::DecNwTtl),
        field().prop_flat_map(|f| fits(f).prop_map(move |v| Action::set_field(f, v).unwrap())),
        any::<u16>().prop_map(Action::PushPbb),
        Just(Action::PopPbb),
        (any::<u16>(), proptest::option::of(any::<u8>()))
            .prop_map(|(in_port, table)| Action::Resubmit { in_port, table }),
        range().prop_flat_map(|src| {
            field().prop_filter_map("fits", move |f| {
                let bits = (f.width() * 8) as u16;
                (bits >= src.n_bits()).then(|| Action::Move {
                    src,
                    dst: FieldRange::new(f, 0, src.n_bits()).unwrap(),
                })
            })
        }),
        (range(), any::<u64>()).prop_map(|(dst, v)| {
            let v = if dst.n_bits() >= 64 {
                v
            } else {
                v & ((1u64 << dst.n_bits()) - 1)
            };
            Action::Load { dst, value: v }
        }),
        field_match().prop_map(Action::Load2),
        (0usize..4)
            .prop_flat_map(|k| prop::collection::vec(any::<u8>(), 6 + 8 * k))
            .prop_map(Action::Note),
        (range(), any::<u16>()).prop_map(|(src, max_len)| Action::OutputReg { src, max_len }),
        prop::collection::vec(any::<u16>(), 0..6).prop_map(|ids| Action::DecTtl {
            controller_ids: ids
        }),
        (any::<u16>(), any::<u16>(), any::<u8>()).prop_map(|(max_len, controller_id, reason)| {
            Action::Controller {
                max_len,
                controller_id,
                reason,
            }
        }),
        (
            any::<u16>(),
            any::<u16>(),
            any::<u8>(),
            prop::collection::vec(any::<u8>(), 0..20),
            any::<bool>(),
            any::<u32>()
        )
            .prop_map(
                |(max_len, controller_id, reason, userdata, pause, meter_id)| {
                    Action::Controller2(ofproto::action::Controller2 {
                        max_len,
                        controller_id,
                        reason,
                        userdata,
                        pause,
                        meter_id,
                    })
                }
            ),
        (any::<u32>(), 2u8..=64)
            .prop_flat_map(|(id, n)| (Just(id), 0..n, Just(n)))
            .prop_map(|(id, clause, n_clauses)| Action::Conjunction {
                id,
                clause,
                n_clauses
            }),
        Just(Action::CtClear),
        (1u32..0x2320, prop::collection::vec(any::<u8>(), 0..3)).prop_map(|(experimenter, k)| {
            Action::Experimenter {
                experimenter,
                body: vec![0; 8 * k.len()],
            }
        }),
    ]
}

fn nat() -> impl Strategy<Value = Action> {
    (
        prop_oneof![Just(NatKind::Reuse), Just(NatKind::Src), Just(NatKind::Dst)],
        proptest::option::of((any::<u32>(), proptest::option::of(any::<u32>()))),
        proptest::option::of((any::<u16>(), proptest::option::of(any::<u16>()))),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(kind, addrs, ports, persistent, hash)| {
            let addrs = match addrs {
                None => NatAddrs::None,
                Some((a, b)) => NatAddrs::V4(Ipv4Addr::from(a), b.map(Ipv4Addr::from)),
            };
            Action::Nat(Nat {
                kind,
                addrs,
                ports,
                persistent,
                hash,
                random: !hash && persistent,
            })
        })
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        4 => simple_action(),
        1 => (any::<bool>(), any::<bool>(), prop_oneof![any::<u16>().prop_map(CtZone::Imm), Just(CtZone::Field(FieldRange::new(Field::Reg(4), 0, 16).unwrap()))],
              proptest::option::of(0u8..254), any::<u16>(), prop::collection::vec(nat(), 0..2))
            .prop_map(|(commit, force, zone, table, alg, actions)| Action::Ct(Ct { commit, force, zone, table, alg, actions })),
    ]
}

fn instruction() -> impl Strategy<Value = Instruction> {
    prop_oneof![
        any::<u8>().prop_map(Instruction::GotoTable),
        (any::<u64>(), any::<u64>())
            .prop_map(|(value, mask)| Instruction::WriteMetadata { value, mask }),
        prop::collection::vec(action(), 0..5).prop_map(Instruction::WriteActions),
        prop::collection::vec(action(), 0..5).prop_map(Instruction::ApplyActions),
        Just(Instruction::ClearActions),
        any::<u32>().prop_map(Instruction::Meter),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            any::<u64>(),
            any::<u64>(),
            any::<u8>(),
            0u8..5,
            any::<u16>(),
            any::<u16>(),
            any::<u16>(),
            any::<u32>(),
            any::<u16>(),
            a_match(),
            prop::collection::vec(instruction(), 0..4)
        )
            .prop_map(
                |(
                    cookie,
                    cookie_mask,
                    table_id,
                    cmd,
                    idle,
                    hard,
                    priority,
                    buffer_id,
                    flags,
                    m,
                    ins,
                )| {
                    Message::FlowMod(FlowMod {
                        cookie,
                        cookie_mask,
                        table_id,
                        command: FlowModCommand::from(cmd),
                        idle_timeout: idle,
                        hard_timeout: hard,
                        priority,
                        buffer_id,
                        out_port: 7,
                        out_group: 9,
                        flags,
                        match_: m,
                        instructions: ins,
                    })
                }
            ),
        (
            0u16..3,
            0u8..4,
            any::<u32>(),
            prop::collection::vec((any::<u16>(), prop::collection::vec(action(), 0..3)), 0..3)
        )
            .prop_map(|(c, t, group_id, bs)| Message::GroupMod(GroupMod {
                command: GroupModCommand::from(c),
                group_type: GroupType::from(t),
                group_id,
                buckets: bs
                    .into_iter()
                    .map(|(w, a)| Bucket {
                        weight: w,
                        watch_port: 1,
                        watch_group: 2,
                        actions: a
                    })
                    .collect(),
            })),
        (
            0u16..3,
            prop_oneof![Just(1u16), Just(2), Just(5), Just(9), Just(12)],
            any::<u32>(),
            prop::collection::vec((any::<u32>(), any::<u32>(), any::<u8>()), 0..3)
        )
            .prop_map(|(c, flags, meter_id, bands)| Message::MeterMod(MeterMod {
                command: MeterModCommand::from(c),
                flags,
                meter_id,
                bands: bands
                    .into_iter()
                    .map(|(rate, burst_size, p)| if p % 2 == 0 {
                        MeterBand::Drop { rate, burst_size }
                    } else {
                        MeterBand::DscpRemark {
                            rate,
                            burst_size,
                            prec_level: p,
                        }
                    })
                    .collect(),
            })),
        (
            any::<u32>(),
            any::<u32>(),
            prop::collection::vec(action(), 0..4),
            prop::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(|(buffer_id, in_port, actions, data)| Message::PacketOut(
                PacketOut {
                    buffer_id,
                    in_port,
                    actions,
                    data
                }
            )),
        (
            any::<u32>(),
            any::<u16>(),
            any::<u8>(),
            any::<u8>(),
            any::<u64>(),
            a_match(),
            prop::collection::vec(any::<u8>(), 0..64)
        )
            .prop_map(
                |(buffer_id, total_len, reason, table_id, cookie, m, data)| Message::PacketIn(
                    PacketIn {
                        buffer_id,
                        total_len,
                        reason,
                        table_id,
                        cookie,
                        match_: m,
                        data
                    }
                )
            ),
        prop::collection::vec(any::<u8>(), 0..32).prop_map(Message::EchoRequest),
        (any::<u32>(), 0u16..8, 0u16..4).prop_map(|(bundle_id, t, flags)| Message::BundleControl(
            BundleCtrl {
                bundle_id,
                ctrl_type: BundleCtrlType::from(t),
                flags,
                properties: vec![]
            }
        )),
        (any::<u32>(), 0u16..4, a_match()).prop_map(|(bundle_id, flags, m)| Message::BundleAdd(
            BundleAdd {
                bundle_id,
                flags,
                message: Box::new(Message::FlowMod(FlowMod::add(1, 2, m, vec![]))),
            }
        )),
        a_match().prop_map(|m| Message::MultipartRequest {
            flags: 0,
            body: MultipartRequest::Flow(ofproto::msg::multipart::FlowStatsRequest {
                match_: m,
                ..ofproto::msg::multipart::FlowStatsRequest::all()
            }),
        }),
        (
            any::<u8>(),
            any::<u64>(),
            a_match(),
            prop::collection::vec(instruction(), 0..3)
        )
            .prop_map(|(t, c, m, ins)| Message::MultipartReply {
                flags: 1,
                body: MultipartReply::Flow(vec![ofproto::msg::multipart::FlowStats {
                    table_id: t,
                    duration_sec: 1,
                    duration_nsec: 2,
                    priority: 3,
                    idle_timeout: 4,
                    hard_timeout: 5,
                    flags: 6,
                    cookie: c,
                    packet_count: 7,
                    byte_count: 8,
                    match_: m,
                    instructions: ins,
                }]),
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn matches_round_trip(m in a_match()) {
        let mut buf = BytesMut::new();
        m.encode(&mut buf);
        prop_assert_eq!(buf.len(), m.encoded_len());
        let (back, n) = Match::decode(&buf).unwrap();
        prop_assert_eq!(n, buf.len());
        prop_assert_eq!(back, m);
    }

    #[test]
    fn actions_round_trip(list in prop::collection::vec(action(), 0..8)) {
        let mut buf = BytesMut::new();
        Action::encode_list(&list, &mut buf);
        prop_assert_eq!(buf.len(), Action::list_len(&list));
        prop_assert_eq!(Action::decode_list(&buf).unwrap(), list);
    }

    #[test]
    fn instructions_round_trip(list in prop::collection::vec(instruction(), 0..5)) {
        let mut buf = BytesMut::new();
        Instruction::encode_list(&list, &mut buf);
        prop_assert_eq!(buf.len(), Instruction::list_len(&list));
        prop_assert_eq!(Instruction::decode_list(&buf).unwrap(), list);
    }

    #[test]
    fn messages_round_trip(m in message(), xid in any::<u32>()) {
        let bytes = m.to_bytes(xid);
        prop_assert_eq!(frame_len(&bytes).unwrap(), Some(bytes.len()));
        let (h, back) = Message::decode(&bytes).unwrap();
        prop_assert_eq!(h.xid, xid);
        prop_assert_eq!(back, m);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = Match::decode(&bytes);
        let _ = Action::decode_list(&bytes);
        let _ = Instruction::decode_list(&bytes);
        let _ = frame_len(&bytes);
        let _ = Message::decode(&bytes);
        let _ = ofproto::msg::print::ofp_print(&bytes);
    }

    /// Bytes that look like an OpenFlow 1.3 message (right version, length, type) reach deep
    /// into every decoder; they must still never panic.
    #[test]
    fn plausible_messages_never_panic(t in 0u8..32, body in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut bytes = vec![4, t, 0, 0, 0, 0, 0, 1];
        bytes.extend(&body);
        let len = bytes.len() as u16;
        bytes[2..4].copy_from_slice(&len.to_be_bytes());
        if let Ok((_, m)) = Message::decode(&bytes) {
            let _ = ofproto::msg::print::print(&ofproto::header::Header::parse(&bytes).unwrap(), &m);
        }
        let mut s = Session::new(std::time::Instant::now(), Config::default());
        s.handle_input(&bytes, std::time::Instant::now());
        while s.poll_event().is_some() {}
    }
}
