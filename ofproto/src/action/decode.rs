//! Decoding actions: nom parsers over each action's bytes, one per layout. An action list is
//! cut on each header's length first, so a parser only ever sees one whole action.

use nom::sequence::preceded;
use nom::Parser;

#[allow(unused_imports)]
use super::*;
use crate::parse::{
    all, be_u16, be_u32, be_u64, be_u8, check, fail, lift, many_all, need, take, In, PError,
    PResult,
};

type R<T> = Result<T, nom::Err<PError>>;

fn err<T>(e: DecodeError) -> R<T> {
    Err(nom::Err::Failure(PError(e)))
}

impl Action {
    /// Decodes a whole action list: all of `input` is actions.
    pub fn decode_list(input: &[u8]) -> Result<Vec<Action>, DecodeError> {
        all(input, many_all(action, 16))
    }
}

/// Actions until the input is used up.
pub(crate) fn action_list(i: In<'_>) -> PResult<'_, Vec<Action>> {
    many_all(action, 16)(i)
}

/// One action, its length taken from its header (a multiple of 8, at least 8).
#[inline]
pub(crate) fn action(i: In<'_>) -> PResult<'_, Action> {
    check("action header", 4, BAD_LEN, i)?;
    let (h, typ) = be_u16(i)?;
    let (_, len) = be_u16(h)?;
    let len = len as usize;
    if len < 8 || !len.is_multiple_of(8) {
        return fail(DecodeError::BadLength {
            what: "action",
            len,
            why: "an action's length must be a multiple of 8, at least 8",
            ofp: BAD_LEN,
        });
    }
    check("action", len, BAD_LEN, i)?;
    let (rest, a) = take(len)(i)?;
    Ok((rest, body(typ, a)?))
}

/// A fixed-size action must have exactly its size.
fn exact(what: &'static str, a: In<'_>, len: usize) -> R<()> {
    if a.len() != len {
        return err(DecodeError::BadLength {
            what,
            len: a.len(),
            why: "not the size of this action",
            ofp: BAD_LEN,
        });
    }
    Ok(())
}

/// A TLV followed by padding: fewer than 8 bytes may be left.
fn padded(what: &'static str, a: In<'_>, rest: In<'_>) -> R<()> {
    if rest.len() >= 8 {
        return err(DecodeError::BadLength {
            what,
            len: a.len(),
            why: "length disagrees with the contents",
            ofp: BAD_LEN,
        });
    }
    Ok(())
}

/// `a` is one whole action (at least 8 bytes).
#[inline]
fn body(typ: u16, a: In<'_>) -> R<Action> {
    let (b, _) = take(4)(a)?;
    let u8_ = |b| be_u8(b).map(|(_, v)| v);
    let u16_ = |b| be_u16(b).map(|(_, v)| v);
    let u32_ = |b| be_u32(b).map(|(_, v)| v);
    Ok(match typ {
        at::OUTPUT => {
            exact("ofp_action_output", a, 16)?;
            let (_, (port, max_len)) = (be_u32, be_u16).parse(b)?;
            Action::Output { port, max_len }
        }
        at::COPY_TTL_OUT => Action::CopyTtlOut,
        at::COPY_TTL_IN => Action::CopyTtlIn,
        at::SET_MPLS_TTL => Action::SetMplsTtl(u8_(b)?),
        at::DEC_MPLS_TTL => Action::DecMplsTtl,
        at::PUSH_VLAN => Action::PushVlan(u16_(b)?),
        at::POP_VLAN => Action::PopVlan,
        at::PUSH_MPLS => Action::PushMpls(u16_(b)?),
        at::POP_MPLS => Action::PopMpls(u16_(b)?),
        at::SET_QUEUE => Action::SetQueue(u32_(b)?),
        at::GROUP => Action::Group(u32_(b)?),
        at::SET_NW_TTL => Action::SetNwTtl(u8_(b)?),
        at::DEC_NW_TTL => Action::DecNwTtl,
        at::PUSH_PBB => Action::PushPbb(u16_(b)?),
        at::POP_PBB => Action::PopPbb,
        at::SET_FIELD => {
            let (rest, f) = crate::oxm::match_field(b)?;
            if let MatchField::Field(fm) = &f {
                if fm.mask().is_some() {
                    return err(DecodeError::Invalid {
                        what: "ofp_action_set_field",
                        why: "OpenFlow 1.3 set_field carries no mask".into(),
                        ofp: BAD_SET_ARGUMENT,
                    });
                }
            }
            padded("ofp_action_set_field", a, rest)?;
            Action::SetField(f)
        }
        at::EXPERIMENTER => {
            let (rest, experimenter) = be_u32(b)?;
            if experimenter == NX_VENDOR_ID {
                nicira(a)?
            } else {
                Action::Experimenter {
                    experimenter,
                    body: rest.to_vec(),
                }
            }
        }
        other => Action::Unknown {
            typ: other,
            body: b.to_vec(),
        },
    })
}

/// A Nicira action of at least `n` bytes: `fields` parse what follows the 10-byte
/// `nx_action_header` (type, length, vendor, subtype).
fn nx<'a, O>(
    what: &'static str,
    n: usize,
    fields: impl Parser<In<'a>, Output = O, Error = PError>,
) -> impl Parser<In<'a>, Output = O, Error = PError> {
    need(what, n, BAD_LEN, preceded(take(10usize), fields))
}

/// What follows the 10-byte `nx_action_header` of a Nicira action of at least `n` bytes.
#[inline]
fn nx_body<'a>(what: &'static str, n: usize, a: In<'a>) -> R<In<'a>> {
    check(what, n, BAD_LEN, a)?;
    Ok(take(10)(a)?.0)
}

/// `a` is one whole Nicira action (at least 16 bytes, vendor NX_VENDOR_ID).
#[inline]
fn nicira(a: In<'_>) -> R<Action> {
    let (b, _) = take(8)(a)?;
    let (b, sub) = be_u16(b)?;
    Ok(match sub {
        nxast::RESUBMIT | nxast::RESUBMIT_TABLE => {
            let b = nx_body("nx_action_resubmit", 16, a)?;
            let (b, in_port) = be_u16(b)?;
            let (_, table) = be_u8(b)?;
            Action::Resubmit {
                in_port,
                table: (sub == nxast::RESUBMIT_TABLE).then_some(table),
            }
        }
        nxast::REG_MOVE => {
            let (_, (n_bits, src_ofs, dst_ofs, src, dst)) = nx(
                "nx_action_reg_move",
                24,
                (be_u16, be_u16, be_u16, be_u32, be_u32),
            )
            .parse(a)?;
            Action::Move {
                src: lift(FieldRange::from_header(src, src_ofs, n_bits))?,
                dst: lift(FieldRange::from_header(dst, dst_ofs, n_bits))?,
            }
        }
        nxast::REG_LOAD => {
            let b = nx_body("nx_action_reg_load", 24, a)?;
            let (b, ofs_nbits) = be_u16(b)?;
            let (b, dst) = be_u32(b)?;
            let (_, value) = be_u64(b)?;
            let dst = lift(FieldRange::from_ofs_nbits(dst, ofs_nbits))?;
            if dst.n_bits < 64 && value >> dst.n_bits != 0 {
                return err(DecodeError::Invalid {
                    what: "nx_action_reg_load",
                    why: format!("value {value:#x} does not fit in {} bits", dst.n_bits),
                    ofp: BAD_ARGUMENT,
                });
            }
            Action::Load { dst, value }
        }
        nxast::REG_LOAD2 => {
            let (rest, f) = crate::oxm::match_field(b)?;
            padded("nx_action_reg_load2", a, rest)?;
            Action::Load2(f)
        }
        // Padding is part of the note, as in OVS: a note of 6 + 8n bytes round-trips exactly.
        nxast::NOTE => Action::Note(b.to_vec()),
        nxast::OUTPUT_REG => {
            let (_, (ofs_nbits, src, max_len)) =
                nx("nx_action_output_reg", 24, (be_u16, be_u32, be_u16)).parse(a)?;
            Action::OutputReg {
                src: lift(FieldRange::from_ofs_nbits(src, ofs_nbits))?,
                max_len,
            }
        }
        nxast::DEC_TTL_CNT_IDS => {
            let (ids, n) = nx("nx_action_cnt_ids", 16, be_u16).parse(a)?;
            let n = n as usize;
            let (_, ids) = need(
                "nx_action_cnt_ids",
                4 + 2 * n,
                BAD_LEN,
                preceded(take(4usize), nom::multi::count(be_u16, n)),
            )
            .parse(ids)
            .map_err(|_| {
                nom::Err::Failure(PError(DecodeError::Truncated {
                    what: "nx_action_cnt_ids",
                    need: 16 + 2 * n,
                    have: a.len(),
                    ofp: BAD_LEN,
                }))
            })?;
            Action::DecTtl {
                controller_ids: ids,
            }
        }
        nxast::CONTROLLER => {
            let (_, (max_len, controller_id, reason)) =
                nx("nx_action_controller", 16, (be_u16, be_u16, be_u8)).parse(a)?;
            Action::Controller {
                max_len,
                controller_id,
                reason,
            }
        }
        nxast::CONTROLLER2 => Action::Controller2(controller2(a)?),
        nxast::CONJUNCTION => {
            let (_, (clause, n_clauses, id)) =
                nx("nx_action_conjunction", 16, (be_u8, be_u8, be_u32)).parse(a)?;
            if !(2..=64).contains(&n_clauses) || clause >= n_clauses {
                return err(DecodeError::Invalid {
                    what: "nx_action_conjunction",
                    why: format!(
                        "clause {clause} of {n_clauses}: needs 2..64 clauses and clause < n_clauses"
                    ),
                    ofp: BAD_ARGUMENT,
                });
            }
            Action::Conjunction {
                id,
                clause,
                n_clauses,
            }
        }
        nxast::CT => Action::Ct(ct(a)?),
        nxast::NAT => Action::Nat(nat(a)?),
        nxast::CT_CLEAR => Action::CtClear,
        _ => Action::Experimenter {
            experimenter: NX_VENDOR_ID,
            body: a[8..].to_vec(),
        },
    })
}

fn ct(a: In<'_>) -> R<Ct> {
    const WHAT: &str = "nx_action_conntrack";
    let b = nx_body(WHAT, 24, a)?;
    let (b, flags) = be_u16(b)?;
    let (b, zone_src) = be_u32(b)?;
    let (b, zone_ofs_nbits) = be_u16(b)?;
    let (b, table) = be_u8(b)?;
    let (b, _pad) = take(3)(b)?;
    let (nested, alg) = be_u16(b)?;
    if flags & !0x3 != 0 {
        return err(DecodeError::Invalid {
            what: WHAT,
            why: format!("unknown flags {flags:#x}"),
            ofp: BAD_ARGUMENT,
        });
    }
    let zone = if zone_src == 0 {
        CtZone::Imm(zone_ofs_nbits)
    } else {
        CtZone::Field(lift(FieldRange::from_ofs_nbits(zone_src, zone_ofs_nbits))?)
    };
    let (_, actions) = many_all(action, 16)(nested)?;
    if let Some(bad) = actions.iter().find(|x| !allowed_in_ct(x)) {
        return err(DecodeError::Invalid {
            what: WHAT,
            why: format!(
                "action {bad} is not allowed inside ct (only nat and setting ct_mark/ct_label)"
            ),
            ofp: UNSUPPORTED_ORDER,
        });
    }
    Ok(Ct {
        commit: flags & 1 != 0,
        force: flags & 2 != 0,
        zone,
        table: (table != CT_RECIRC_NONE).then_some(table),
        alg,
        actions,
    })
}

fn nat(a: In<'_>) -> R<Nat> {
    const WHAT: &str = "nx_action_nat";
    let (mut rest, (_pad, flags, present)) =
        nx(WHAT, 16, (take(2usize), be_u16, be_u16)).parse(a)?;
    let bad = |why: String| {
        nom::Err::Failure(PError(DecodeError::Invalid {
            what: WHAT,
            why,
            ofp: BAD_ARGUMENT,
        }))
    };
    if flags & !0x1f != 0
        || (flags & nat_flag::SRC != 0 && flags & nat_flag::DST != 0)
        || (flags & nat_flag::HASH != 0 && flags & nat_flag::RANDOM != 0)
    {
        return Err(bad(format!("inconsistent flags {flags:#x}")));
    }
    if present & !0x3f != 0 {
        return Err(bad(format!("unknown range bits {present:#x}")));
    }
    let has = |bit| present & bit != 0;
    // Each range present, in order; a short action is truncated where the range would be.
    let mut range = |n: usize| -> R<In<'_>> {
        let have = a.len() - rest.len();
        let (r, v) = need("nx_action_nat range", n, BAD_LEN, take(n))
            .parse(rest)
            .map_err(|_| {
                nom::Err::Failure(PError(DecodeError::Truncated {
                    what: "nx_action_nat range",
                    need: have + n,
                    have: a.len(),
                    ofp: BAD_LEN,
                }))
            })?;
        rest = r;
        Ok(v)
    };
    let v4 = |b: In<'_>| -> R<Ipv4Addr> { Ok(Ipv4Addr::from(be_u32(b)?.1)) };
    let v6 = |b: In<'_>| -> R<Ipv6Addr> {
        let (_, (hi, lo)) = (be_u64, be_u64).parse(b)?;
        Ok(Ipv6Addr::from((u128::from(hi) << 64) | u128::from(lo)))
    };
    let addrs = if has(nat_range::V4_MIN) {
        if has(nat_range::V6_MIN) || has(nat_range::V6_MAX) {
            return Err(bad("both IPv4 and IPv6 ranges".into()));
        }
        let min = v4(range(4)?)?;
        let max = if has(nat_range::V4_MAX) {
            Some(v4(range(4)?)?)
        } else {
            None
        };
        NatAddrs::V4(min, max)
    } else if has(nat_range::V6_MIN) {
        let min = v6(range(16)?)?;
        let max = if has(nat_range::V6_MAX) {
            Some(v6(range(16)?)?)
        } else {
            None
        };
        NatAddrs::V6(min, max)
    } else if has(nat_range::V4_MAX) || has(nat_range::V6_MAX) {
        return Err(bad("a range maximum without its minimum".into()));
    } else {
        NatAddrs::None
    };
    let port = |b: In<'_>| -> R<u16> { Ok(be_u16(b)?.1) };
    let ports = if has(nat_range::PROTO_MIN) {
        let min = port(range(2)?)?;
        let max = if has(nat_range::PROTO_MAX) {
            Some(port(range(2)?)?)
        } else {
            None
        };
        Some((min, max))
    } else {
        None
    };
    let kind = if flags & nat_flag::SRC != 0 {
        NatKind::Src
    } else if flags & nat_flag::DST != 0 {
        NatKind::Dst
    } else {
        NatKind::Reuse
    };
    Ok(Nat {
        kind,
        addrs,
        ports,
        persistent: flags & nat_flag::PERSISTENT != 0,
        hash: flags & nat_flag::HASH != 0,
        random: flags & nat_flag::RANDOM != 0,
    })
}

/// NXAST_CONTROLLER2: `ext_action_header` (16 bytes: 6 of them zero padding), then properties.
fn controller2(a: In<'_>) -> R<Controller2> {
    const WHAT: &str = "nx_action_controller2";
    let (props, pad) = nx(WHAT, 16, take(6usize)).parse(a)?;
    if pad.iter().any(|b| *b != 0) {
        return err(DecodeError::Invalid {
            what: WHAT,
            why: "padding must be zero".into(),
            ofp: BAD_ARGUMENT,
        });
    }
    let mut c = Controller2::default();
    for p in lift(crate::prop::props(props, WHAT, BAD_LEN))? {
        let v = p.value;
        match p.typ {
            nxac2pt::MAX_LEN => c.max_len = lift(crate::prop::be16(v, WHAT, BAD_LEN))?,
            nxac2pt::CONTROLLER_ID => c.controller_id = lift(crate::prop::be16(v, WHAT, BAD_LEN))?,
            nxac2pt::REASON => c.reason = lift(crate::prop::u8(v, WHAT, BAD_LEN))?,
            nxac2pt::USERDATA => c.userdata = v.to_vec(),
            nxac2pt::PAUSE => c.pause = true,
            nxac2pt::METER_ID => c.meter_id = lift(crate::prop::be32(v, WHAT, BAD_LEN))?,
            other => {
                return err(DecodeError::Invalid {
                    what: WHAT,
                    why: format!("unknown property {other}"),
                    ofp: BAD_ARGUMENT,
                })
            }
        }
    }
    Ok(c)
}
