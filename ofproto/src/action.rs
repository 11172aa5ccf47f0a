//! Actions: the OpenFlow 1.3 actions and the Nicira extension actions the pipeline needs
//! (resubmit, move/load, ct with nat, conjunction, note, controller, dec_ttl, output_reg).
//!
//! Unknown action types and unknown Nicira subtypes are kept raw and re-encode byte for byte.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::BytesMut;

use crate::error::{DecodeError, ErrorCode};
use crate::oxm::{port_name, CHex, Field, FieldMatch, MatchField, OxmHeader};
use crate::writer::Writer;

/// Nicira's experimenter id, used by OVS's extension actions.
pub const NX_VENDOR_ID: u32 = 0x0000_2320;
/// `OFPP_IN_PORT`, the default `in_port` of resubmit (16-bit form in Nicira actions).
pub const NX_IN_PORT: u16 = 0xfff8;
/// `NX_CT_RECIRC_NONE`: ct without recirculation.
pub const CT_RECIRC_NONE: u8 = 0xff;

const OFPET_BAD_ACTION: u16 = 2;
const BAD_LEN: ErrorCode = ErrorCode::new(OFPET_BAD_ACTION, 1);
const BAD_ARGUMENT: ErrorCode = ErrorCode::new(OFPET_BAD_ACTION, 5);
const BAD_SET_ARGUMENT: ErrorCode = ErrorCode::new(OFPET_BAD_ACTION, 15);
const UNSUPPORTED_ORDER: ErrorCode = ErrorCode::new(OFPET_BAD_ACTION, 11);

mod at {
    pub const OUTPUT: u16 = 0;
    pub const COPY_TTL_OUT: u16 = 11;
    pub const COPY_TTL_IN: u16 = 12;
    pub const SET_MPLS_TTL: u16 = 15;
    pub const DEC_MPLS_TTL: u16 = 16;
    pub const PUSH_VLAN: u16 = 17;
    pub const POP_VLAN: u16 = 18;
    pub const PUSH_MPLS: u16 = 19;
    pub const POP_MPLS: u16 = 20;
    pub const SET_QUEUE: u16 = 21;
    pub const GROUP: u16 = 22;
    pub const SET_NW_TTL: u16 = 23;
    pub const DEC_NW_TTL: u16 = 24;
    pub const SET_FIELD: u16 = 25;
    pub const PUSH_PBB: u16 = 26;
    pub const POP_PBB: u16 = 27;
    pub const EXPERIMENTER: u16 = 0xffff;
}

mod nxast {
    pub const RESUBMIT: u16 = 1;
    pub const REG_MOVE: u16 = 6;
    pub const REG_LOAD: u16 = 7;
    pub const NOTE: u16 = 8;
    pub const RESUBMIT_TABLE: u16 = 14;
    pub const OUTPUT_REG: u16 = 15;
    pub const CONTROLLER: u16 = 20;
    pub const DEC_TTL_CNT_IDS: u16 = 21;
    pub const REG_LOAD2: u16 = 33;
    pub const CONJUNCTION: u16 = 34;
    pub const CT: u16 = 35;
    pub const NAT: u16 = 36;
    pub const CT_CLEAR: u16 = 43;
    pub const CONTROLLER2: u16 = 37;
}

/// `NXAC2PT_*`: the properties of NXAST_CONTROLLER2.
mod nxac2pt {
    pub const MAX_LEN: u16 = 0;
    pub const CONTROLLER_ID: u16 = 1;
    pub const REASON: u16 = 2;
    pub const USERDATA: u16 = 3;
    pub const PAUSE: u16 = 4;
    pub const METER_ID: u16 = 5;
}

/// `OFPR_ACTION`: the packet-in reason of the controller action unless told otherwise.
pub const OFPR_ACTION: u8 = 1;
/// `NX_CTLR_NO_METER`: the controller action's packet-ins go through no meter.
pub const NX_CTLR_NO_METER: u32 = 0;

/// Nicira's NXAST_CONTROLLER2, the controller action with properties: what `ovs-ofctl` writes
/// as `controller(userdata=01.02,pause,meter_id=3,...)`. Each property is on the wire only when
/// it differs from its default, as OVS encodes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Controller2 {
    /// Bytes of the packet to send; 65535 (the default) sends it all.
    pub max_len: u16,
    /// The controller connection id to send to (0, the default, is every connection's id unless
    /// set otherwise).
    pub controller_id: u16,
    /// The packet-in reason ([`OFPR_ACTION`] by default).
    pub reason: u8,
    /// Opaque bytes copied into the packet-in (NXPINT_USERDATA of NXT_PACKET_IN2).
    pub userdata: Vec<u8>,
    /// Pause the pipeline; the controller may resume it with the packet-in's continuation.
    pub pause: bool,
    /// The meter the packet-ins go through ([`NX_CTLR_NO_METER`] for none).
    pub meter_id: u32,
}

impl Default for Controller2 {
    fn default() -> Self {
        Controller2 {
            max_len: 0xffff,
            controller_id: 0,
            reason: OFPR_ACTION,
            userdata: Vec::new(),
            pause: false,
            meter_id: NX_CTLR_NO_METER,
        }
    }
}

impl Controller2 {
    /// `controller(userdata=...)`: the whole packet, reason `action`, with `userdata`.
    pub fn with_userdata(userdata: impl Into<Vec<u8>>) -> Self {
        Controller2 {
            userdata: userdata.into(),
            ..Controller2::default()
        }
    }

    /// Bytes of the properties (each padded to 8).
    fn props_len(&self) -> usize {
        let mut n = 0;
        if self.max_len != 0xffff {
            n += 8;
        }
        if self.controller_id != 0 {
            n += 8;
        }
        if self.reason != OFPR_ACTION {
            n += 8;
        }
        if !self.userdata.is_empty() {
            n += (4 + self.userdata.len()).div_ceil(8) * 8;
        }
        if self.pause {
            n += 8;
        }
        if self.meter_id != NX_CTLR_NO_METER {
            n += 8;
        }
        n
    }

    fn write_props(&self, buf: &mut Writer<'_>) {
        fn prop(buf: &mut Writer<'_>, typ: u16, value: &[u8]) {
            let len = 4 + value.len();
            buf.put_u16(typ);
            buf.put_u16(len as u16);
            buf.put_slice(value);
            buf.put_zeros(len.div_ceil(8) * 8 - len);
        }
        if self.max_len != 0xffff {
            prop(
                buf,
                nxac2pt::MAX_LEN,
                &crate::prop::be16_value(self.max_len),
            );
        }
        if self.controller_id != 0 {
            prop(
                buf,
                nxac2pt::CONTROLLER_ID,
                &crate::prop::be16_value(self.controller_id),
            );
        }
        if self.reason != OFPR_ACTION {
            prop(buf, nxac2pt::REASON, &[self.reason]);
        }
        if !self.userdata.is_empty() {
            prop(buf, nxac2pt::USERDATA, &self.userdata);
        }
        if self.pause {
            prop(buf, nxac2pt::PAUSE, &[]);
        }
        if self.meter_id != NX_CTLR_NO_METER {
            prop(buf, nxac2pt::METER_ID, &self.meter_id.to_be_bytes());
        }
    }

    /// Decodes the properties after the 16-byte `ext_action_header`.
    fn decode(a: &[u8]) -> Result<Controller2, DecodeError> {
        const WHAT: &str = "nx_action_controller2";
        if a.len() < 16 {
            return Err(truncated(WHAT, 16, a.len()));
        }
        if a[10..16].iter().any(|b| *b != 0) {
            return Err(DecodeError::Invalid {
                what: WHAT,
                why: "padding must be zero".into(),
                ofp: BAD_ARGUMENT,
            });
        }
        let mut c = Controller2::default();
        for p in crate::prop::props(&a[16..], WHAT, BAD_LEN)? {
            let v = p.value;
            match p.typ {
                nxac2pt::MAX_LEN => c.max_len = crate::prop::be16(v, WHAT, BAD_LEN)?,
                nxac2pt::CONTROLLER_ID => c.controller_id = crate::prop::be16(v, WHAT, BAD_LEN)?,
                nxac2pt::REASON => c.reason = crate::prop::u8(v, WHAT, BAD_LEN)?,
                nxac2pt::USERDATA => c.userdata = v.to_vec(),
                nxac2pt::PAUSE => c.pause = true,
                nxac2pt::METER_ID => c.meter_id = crate::prop::be32(v, WHAT, BAD_LEN)?,
                other => {
                    return Err(DecodeError::Invalid {
                        what: WHAT,
                        why: format!("unknown property {other}"),
                        ofp: BAD_ARGUMENT,
                    })
                }
            }
        }
        Ok(c)
    }
}

impl fmt::Display for Controller2 {
    /// As `format_CONTROLLER` in OVS: the plain `CONTROLLER:N` when nothing else is set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason == OFPR_ACTION
            && self.controller_id == 0
            && self.userdata.is_empty()
            && !self.pause
            && self.meter_id == NX_CTLR_NO_METER
        {
            return write!(f, "CONTROLLER:{}", self.max_len);
        }
        let mut parts = Vec::new();
        if self.reason != OFPR_ACTION {
            parts.push(format!("reason={}", packet_in_reason(self.reason)));
        }
        if self.max_len != 0xffff {
            parts.push(format!("max_len={}", self.max_len));
        }
        if self.controller_id != 0 {
            parts.push(format!("id={}", self.controller_id));
        }
        if !self.userdata.is_empty() {
            let hex: Vec<String> = self.userdata.iter().map(|b| format!("{b:02x}")).collect();
            parts.push(format!("userdata={}", hex.join(".")));
        }
        if self.pause {
            parts.push("pause".into());
        }
        if self.meter_id != NX_CTLR_NO_METER {
            parts.push(format!("meter_id={}", self.meter_id));
        }
        write!(f, "controller({})", parts.join(","))
    }
}

/// A range of bits of a field: `NXM_NX_REG0[0..15]`. Only valid ranges can be built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldRange {
    field: Field,
    ofs: u16,
    n_bits: u16,
    /// Whether the field is named by its NXM alias on the wire (what OVS does where one exists).
    nxm: bool,
}

impl FieldRange {
    /// Bits `ofs .. ofs + n_bits` of `field`. Fails when the range is empty or leaves the field.
    pub fn new(field: Field, ofs: u16, n_bits: u16) -> Result<Self, DecodeError> {
        let width = field.width() as u32 * 8;
        if n_bits == 0 || u32::from(ofs) + u32::from(n_bits) > width {
            return Err(DecodeError::Invalid {
                what: "field range",
                why: format!(
                    "bits {ofs}..{} do not lie within the {width} bits of {}",
                    u32::from(ofs) + u32::from(n_bits),
                    field.name()
                ),
                ofp: BAD_SET_ARGUMENT,
            });
        }
        Ok(FieldRange {
            field,
            ofs,
            n_bits,
            nxm: field.nxm_alias().is_some(),
        })
    }

    /// The whole field.
    pub fn whole(field: Field) -> Self {
        FieldRange {
            field,
            ofs: 0,
            n_bits: field.width() as u16 * 8,
            nxm: field.nxm_alias().is_some(),
        }
    }

    pub fn field(&self) -> Field {
        self.field
    }
    pub fn ofs(&self) -> u16 {
        self.ofs
    }
    pub fn n_bits(&self) -> u16 {
        self.n_bits
    }

    /// `(ofs << 6) | (n_bits - 1)`, the Nicira encoding.
    fn ofs_nbits(&self) -> u16 {
        (self.ofs << 6) | (self.n_bits - 1)
    }

    fn from_ofs_nbits(header: u32, ofs_nbits: u16) -> Result<Self, DecodeError> {
        Self::from_header(header, ofs_nbits >> 6, (ofs_nbits & 0x3f) + 1)
    }

    fn from_header(header: u32, ofs: u16, n_bits: u16) -> Result<Self, DecodeError> {
        let (field, nxm) = field_from_header(header)?;
        let mut r = FieldRange::new(field, ofs, n_bits)?;
        r.nxm = nxm;
        Ok(r)
    }

    fn header(&self) -> u32 {
        let mut h = OxmHeader::of(self.field, false);
        if self.nxm {
            if let Some((class, num)) = self.field.nxm_alias() {
                h.class = class;
                h.field = num;
            }
        }
        h.to_u32()
    }
}

/// The field a 32-bit NXM/OXM header names, and whether it was the NXM alias.
fn field_from_header(h: u32) -> Result<(Field, bool), DecodeError> {
    let h = OxmHeader::from_u32(h);
    if let Some(f) = Field::from_code(h.class, h.field) {
        return Ok((f, false));
    }
    Field::from_nxm_alias(h.class, h.field)
        .map(|f| (f, true))
        .ok_or_else(|| DecodeError::Invalid {
            what: "field reference",
            why: format!("unknown field class {:#06x} field {}", h.class, h.field),
            ofp: BAD_SET_ARGUMENT,
        })
}

impl fmt::Display for FieldRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.field.nxm_name())?;
        if self.ofs == 0 && self.n_bits as usize == self.field.width() * 8 {
            f.write_str("[]")
        } else if self.n_bits == 1 {
            write!(f, "[{}]", self.ofs)
        } else {
            write!(f, "[{}..{}]", self.ofs, self.ofs + self.n_bits - 1)
        }
    }
}

/// Where `ct` takes its zone from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CtZone {
    Imm(u16),
    Field(FieldRange),
}

/// The `ct` action.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Ct {
    pub commit: bool,
    pub force: bool,
    pub zone: CtZone,
    /// Table to recirculate to after conntrack, if any.
    pub table: Option<u8>,
    /// Application-layer gateway port (ftp 21, tftp 69), 0 for none.
    pub alg: u16,
    /// Actions applied to the connection (nat, set_field of ct_mark/ct_label).
    pub actions: Vec<Action>,
}

/// Which addresses `nat` rewrites.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatKind {
    /// No address given: NAT an already-NATed connection the same way.
    Reuse,
    Src,
    Dst,
}

/// The address range of `nat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NatAddrs {
    None,
    V4(Ipv4Addr, Option<Ipv4Addr>),
    V6(Ipv6Addr, Option<Ipv6Addr>),
}

/// The `nat` action, valid only inside `ct`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Nat {
    pub kind: NatKind,
    pub addrs: NatAddrs,
    pub ports: Option<(u16, Option<u16>)>,
    pub persistent: bool,
    pub hash: bool,
    pub random: bool,
}

/// One action.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    Output {
        port: u32,
        max_len: u16,
    },
    CopyTtlOut,
    CopyTtlIn,
    SetMplsTtl(u8),
    DecMplsTtl,
    PushVlan(u16),
    PopVlan,
    PushMpls(u16),
    PopMpls(u16),
    SetQueue(u32),
    Group(u32),
    SetNwTtl(u8),
    DecNwTtl,
    /// Set-Field with one OXM (no mask in OpenFlow 1.3).
    SetField(MatchField),
    PushPbb(u16),
    PopPbb,
    /// Nicira resubmit: `table` None resubmits to the current table.
    Resubmit {
        in_port: u16,
        table: Option<u8>,
    },
    /// Nicira reg_move: copies `src` to `dst` (same number of bits).
    Move {
        src: FieldRange,
        dst: FieldRange,
    },
    /// Nicira reg_load: loads `value` into `dst`.
    Load {
        dst: FieldRange,
        value: u64,
    },
    /// Nicira reg_load2: a set_field that may carry a mask.
    Load2(MatchField),
    Note(Vec<u8>),
    OutputReg {
        src: FieldRange,
        max_len: u16,
    },
    /// Nicira dec_ttl with the controller ids to notify (`dec_ttl(1,2)`). Plain `dec_ttl` is
    /// [`Action::DecNwTtl`]: OVS accepts Nicira's own plain form only in OpenFlow 1.0.
    DecTtl {
        controller_ids: Vec<u16>,
    },
    Controller {
        max_len: u16,
        controller_id: u16,
        reason: u8,
    },
    /// NXAST_CONTROLLER2: the controller action with userdata, pause or a meter.
    Controller2(Controller2),
    Conjunction {
        id: u32,
        clause: u8,
        n_clauses: u8,
    },
    Ct(Ct),
    Nat(Nat),
    CtClear,
    /// An experimenter action this crate does not know; `body` follows the experimenter id.
    Experimenter {
        experimenter: u32,
        body: Vec<u8>,
    },
    /// An action type this crate does not know; `body` follows the 4-byte type/length header.
    Unknown {
        typ: u16,
        body: Vec<u8>,
    },
}

fn truncated(what: &'static str, need: usize, have: usize) -> DecodeError {
    DecodeError::Truncated {
        what,
        need,
        have,
        ofp: BAD_LEN,
    }
}

fn be16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
fn be32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be64(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Checks that a fixed-size action has exactly its size.
fn want_len(what: &'static str, a: &[u8], len: usize) -> Result<(), DecodeError> {
    if a.len() != len {
        return Err(DecodeError::BadLength {
            what,
            len: a.len(),
            why: "not the size of this action",
            ofp: BAD_LEN,
        });
    }
    Ok(())
}

impl Action {
    /// Decodes a whole action list: all of `input` is actions.
    pub fn decode_list(input: &[u8]) -> Result<Vec<Action>, DecodeError> {
        let mut out = Vec::with_capacity(input.len() / 16);
        let mut rest = input;
        while !rest.is_empty() {
            if rest.len() < 4 {
                return Err(truncated("action header", 4, rest.len()));
            }
            let len = be16(rest, 2) as usize;
            if len < 8 || !len.is_multiple_of(8) {
                return Err(DecodeError::BadLength {
                    what: "action",
                    len,
                    why: "an action's length must be a multiple of 8, at least 8",
                    ofp: BAD_LEN,
                });
            }
            if len > rest.len() {
                return Err(truncated("action", len, rest.len()));
            }
            out.push(Action::decode_one(&rest[..len])?);
            rest = &rest[len..];
        }
        Ok(out)
    }

    /// Decodes one action of exactly `a.len()` bytes (a multiple of 8, at least 8).
    fn decode_one(a: &[u8]) -> Result<Action, DecodeError> {
        let typ = be16(a, 0);
        Ok(match typ {
            at::OUTPUT => {
                want_len("ofp_action_output", a, 16)?;
                Action::Output {
                    port: be32(a, 4),
                    max_len: be16(a, 8),
                }
            }
            at::COPY_TTL_OUT => Action::CopyTtlOut,
            at::COPY_TTL_IN => Action::CopyTtlIn,
            at::SET_MPLS_TTL => Action::SetMplsTtl(a[4]),
            at::DEC_MPLS_TTL => Action::DecMplsTtl,
            at::PUSH_VLAN => Action::PushVlan(be16(a, 4)),
            at::POP_VLAN => Action::PopVlan,
            at::PUSH_MPLS => Action::PushMpls(be16(a, 4)),
            at::POP_MPLS => Action::PopMpls(be16(a, 4)),
            at::SET_QUEUE => Action::SetQueue(be32(a, 4)),
            at::GROUP => Action::Group(be32(a, 4)),
            at::SET_NW_TTL => Action::SetNwTtl(a[4]),
            at::DEC_NW_TTL => Action::DecNwTtl,
            at::PUSH_PBB => Action::PushPbb(be16(a, 4)),
            at::POP_PBB => Action::PopPbb,
            at::SET_FIELD => {
                let (f, n) = MatchField::decode(&a[4..])?;
                if let MatchField::Field(fm) = &f {
                    if fm.mask().is_some() {
                        return Err(DecodeError::Invalid {
                            what: "ofp_action_set_field",
                            why: "OpenFlow 1.3 set_field carries no mask".into(),
                            ofp: BAD_SET_ARGUMENT,
                        });
                    }
                }
                check_padding("ofp_action_set_field", a, 4 + n)?;
                Action::SetField(f)
            }
            at::EXPERIMENTER => {
                if a.len() < 8 {
                    return Err(truncated("ofp_action_experimenter", 8, a.len()));
                }
                let exp = be32(a, 4);
                if exp == NX_VENDOR_ID && a.len() >= 10 {
                    decode_nicira(a)?
                } else {
                    Action::Experimenter {
                        experimenter: exp,
                        body: a[8..].to_vec(),
                    }
                }
            }
            other => Action::Unknown {
                typ: other,
                body: a[4..].to_vec(),
            },
        })
    }

    /// Appends one action; lengths and padding are computed here.
    pub fn encode(&self, buf: &mut BytesMut) {
        crate::writer::append(buf, self.encoded_len(), |w| self.write(w));
    }

    pub(crate) fn write(&self, buf: &mut Writer<'_>) {
        let start = buf.len();
        match self {
            Action::Output { port, max_len } => {
                put_hdr(buf, at::OUTPUT, 16);
                buf.put_u32(*port);
                buf.put_u16(*max_len);
                buf.put_zeros(6);
            }
            Action::CopyTtlOut => put_empty(buf, at::COPY_TTL_OUT),
            Action::CopyTtlIn => put_empty(buf, at::COPY_TTL_IN),
            Action::SetMplsTtl(t) => {
                put_hdr(buf, at::SET_MPLS_TTL, 8);
                buf.put_u8(*t);
                buf.put_zeros(3);
            }
            Action::DecMplsTtl => put_empty(buf, at::DEC_MPLS_TTL),
            Action::PushVlan(e) => put_u16_action(buf, at::PUSH_VLAN, *e),
            Action::PopVlan => put_empty(buf, at::POP_VLAN),
            Action::PushMpls(e) => put_u16_action(buf, at::PUSH_MPLS, *e),
            Action::PopMpls(e) => put_u16_action(buf, at::POP_MPLS, *e),
            Action::SetQueue(q) => {
                put_hdr(buf, at::SET_QUEUE, 8);
                buf.put_u32(*q);
            }
            Action::Group(g) => {
                put_hdr(buf, at::GROUP, 8);
                buf.put_u32(*g);
            }
            Action::SetNwTtl(t) => {
                put_hdr(buf, at::SET_NW_TTL, 8);
                buf.put_u8(*t);
                buf.put_zeros(3);
            }
            Action::DecNwTtl => put_empty(buf, at::DEC_NW_TTL),
            Action::PushPbb(e) => put_u16_action(buf, at::PUSH_PBB, *e),
            Action::PopPbb => put_empty(buf, at::POP_PBB),
            Action::SetField(f) => {
                put_hdr(buf, at::SET_FIELD, 0);
                f.write(buf);
            }
            Action::Resubmit { in_port, table } => {
                let sub = if table.is_some() {
                    nxast::RESUBMIT_TABLE
                } else {
                    nxast::RESUBMIT
                };
                put_nx(buf, sub);
                buf.put_u16(*in_port);
                buf.put_u8(table.unwrap_or(0));
                buf.put_zeros(3);
            }
            Action::Move { src, dst } => {
                put_nx(buf, nxast::REG_MOVE);
                buf.put_u16(src.n_bits);
                buf.put_u16(src.ofs);
                buf.put_u16(dst.ofs);
                buf.put_u32(src.header());
                buf.put_u32(dst.header());
            }
            Action::Load { dst, value } => {
                put_nx(buf, nxast::REG_LOAD);
                buf.put_u16(dst.ofs_nbits());
                buf.put_u32(dst.header());
                buf.put_u64(*value);
            }
            Action::Load2(f) => {
                put_nx(buf, nxast::REG_LOAD2);
                f.write(buf);
            }
            Action::Note(bytes) => {
                put_nx(buf, nxast::NOTE);
                buf.put_slice(bytes);
                // A note is at least 16 bytes: pad_to_8 below covers the rest.
                if buf.len() - start < 16 {
                    buf.put_zeros(16 - (buf.len() - start));
                }
            }
            Action::OutputReg { src, max_len } => {
                put_nx(buf, nxast::OUTPUT_REG);
                buf.put_u16(src.ofs_nbits());
                buf.put_u32(src.header());
                buf.put_u16(*max_len);
                buf.put_zeros(6);
            }
            Action::DecTtl {
                controller_ids: ids,
            } => {
                put_nx(buf, nxast::DEC_TTL_CNT_IDS);
                buf.put_u16(ids.len() as u16);
                buf.put_zeros(4);
                for id in ids {
                    buf.put_u16(*id);
                }
            }
            Action::Controller {
                max_len,
                controller_id,
                reason,
            } => {
                put_nx(buf, nxast::CONTROLLER);
                buf.put_u16(*max_len);
                buf.put_u16(*controller_id);
                buf.put_u8(*reason);
                buf.put_u8(0);
            }
            Action::Controller2(c) => {
                put_nx(buf, nxast::CONTROLLER2);
                buf.put_zeros(6);
                c.write_props(buf);
            }
            Action::Conjunction {
                id,
                clause,
                n_clauses,
            } => {
                put_nx(buf, nxast::CONJUNCTION);
                buf.put_u8(*clause);
                buf.put_u8(*n_clauses);
                buf.put_u32(*id);
            }
            Action::Ct(ct) => {
                put_nx(buf, nxast::CT);
                buf.put_u16(u16::from(ct.commit) | (u16::from(ct.force) << 1));
                match ct.zone {
                    CtZone::Imm(z) => {
                        buf.put_u32(0);
                        buf.put_u16(z);
                    }
                    CtZone::Field(r) => {
                        buf.put_u32(r.header());
                        buf.put_u16(r.ofs_nbits());
                    }
                }
                buf.put_u8(ct.table.unwrap_or(CT_RECIRC_NONE));
                buf.put_zeros(3);
                buf.put_u16(ct.alg);
                for a in &ct.actions {
                    a.write(buf);
                }
            }
            Action::Nat(nat) => encode_nat(nat, buf),
            Action::CtClear => {
                put_nx(buf, nxast::CT_CLEAR);
                buf.put_zeros(6);
            }
            Action::Experimenter { experimenter, body } => {
                put_hdr(buf, at::EXPERIMENTER, 0);
                buf.put_u32(*experimenter);
                buf.put_slice(body);
            }
            Action::Unknown { typ, body } => {
                put_hdr(buf, *typ, 0);
                buf.put_slice(body);
            }
        }
        let len = buf.len() - start;
        let padded = len.div_ceil(8) * 8;
        buf.put_zeros(padded - len);
        buf.patch_u16(start + 2, padded as u16);
    }

    /// Bytes [`Action::encode`] writes for this action.
    pub fn encoded_len(&self) -> usize {
        let raw = match self {
            Action::Output { .. } => 16,
            Action::SetField(f) | Action::Load2(f) => {
                let base = if matches!(self, Action::SetField(_)) {
                    4
                } else {
                    10
                };
                base + field_len(f)
            }
            Action::Resubmit { .. }
            | Action::Controller { .. }
            | Action::Conjunction { .. }
            | Action::CtClear => 16,
            Action::Move { .. } | Action::Load { .. } | Action::OutputReg { .. } => 24,
            Action::Note(b) => (10 + b.len()).max(16),
            Action::DecTtl {
                controller_ids: ids,
            } => 16 + 2 * ids.len(),
            Action::Controller2(c) => 16 + c.props_len(),
            Action::Ct(ct) => 24 + ct.actions.iter().map(Action::encoded_len).sum::<usize>(),
            Action::Nat(n) => 16 + nat_ranges_len(n),
            Action::Experimenter { body, .. } => 8 + body.len(),
            Action::Unknown { body, .. } => 4 + body.len(),
            _ => 8,
        };
        raw.div_ceil(8) * 8
    }

    pub fn encode_list(actions: &[Action], buf: &mut BytesMut) {
        crate::writer::append(buf, Action::list_len(actions), |w| {
            Action::write_list(actions, w)
        });
    }

    pub(crate) fn write_list(actions: &[Action], buf: &mut Writer<'_>) {
        for a in actions {
            a.write(buf);
        }
    }

    /// Bytes [`Action::encode_list`] writes.
    pub fn list_len(actions: &[Action]) -> usize {
        actions.iter().map(Action::encoded_len).sum()
    }

    /// `set_field:VALUE->FIELD` for a whole field.
    pub fn set_field(field: Field, value: u128) -> Result<Action, DecodeError> {
        Ok(Action::SetField(MatchField::Field(FieldMatch::exact(
            field, value,
        )?)))
    }

    /// `resubmit(,TABLE)`.
    pub fn resubmit(table: u8) -> Action {
        Action::Resubmit {
            in_port: NX_IN_PORT,
            table: Some(table),
        }
    }

    /// `output:PORT`.
    pub fn output(port: u32) -> Action {
        Action::Output { port, max_len: 0 }
    }
}

fn field_len(f: &MatchField) -> usize {
    f.encoded_len()
}

fn check_padding(what: &'static str, a: &[u8], used: usize) -> Result<(), DecodeError> {
    if used > a.len() || a.len() - used >= 8 {
        return Err(DecodeError::BadLength {
            what,
            len: a.len(),
            why: "length disagrees with the contents",
            ofp: BAD_LEN,
        });
    }
    Ok(())
}

fn put_hdr(buf: &mut Writer<'_>, typ: u16, len: u16) {
    buf.put_u16(typ);
    buf.put_u16(len); // fixed up by encode once the length is known
}

fn put_empty(buf: &mut Writer<'_>, typ: u16) {
    put_hdr(buf, typ, 8);
    buf.put_u32(0);
}

fn put_u16_action(buf: &mut Writer<'_>, typ: u16, v: u16) {
    put_hdr(buf, typ, 8);
    buf.put_u16(v);
    buf.put_u16(0);
}

fn put_nx(buf: &mut Writer<'_>, subtype: u16) {
    put_hdr(buf, at::EXPERIMENTER, 0);
    buf.put_u32(NX_VENDOR_ID);
    buf.put_u16(subtype);
}

/// Nested actions `ct` accepts (what OVS accepts inside ct).
fn allowed_in_ct(a: &Action) -> bool {
    match a {
        Action::Nat(_) => true,
        Action::SetField(MatchField::Field(f)) | Action::Load2(MatchField::Field(f)) => {
            matches!(f.field(), Field::CtMark | Field::CtLabel)
        }
        Action::Load { dst, .. } => matches!(dst.field(), Field::CtMark | Field::CtLabel),
        _ => false,
    }
}

fn decode_nicira(a: &[u8]) -> Result<Action, DecodeError> {
    let sub = be16(a, 8);
    let need = |n: usize, what: &'static str| -> Result<(), DecodeError> {
        if a.len() < n {
            Err(truncated(what, n, a.len()))
        } else {
            Ok(())
        }
    };
    Ok(match sub {
        nxast::RESUBMIT | nxast::RESUBMIT_TABLE => {
            need(16, "nx_action_resubmit")?;
            Action::Resubmit {
                in_port: be16(a, 10),
                table: (sub == nxast::RESUBMIT_TABLE).then_some(a[12]),
            }
        }
        nxast::REG_MOVE => {
            need(24, "nx_action_reg_move")?;
            let n_bits = be16(a, 10);
            Action::Move {
                src: FieldRange::from_header(be32(a, 16), be16(a, 12), n_bits)?,
                dst: FieldRange::from_header(be32(a, 20), be16(a, 14), n_bits)?,
            }
        }
        nxast::REG_LOAD => {
            need(24, "nx_action_reg_load")?;
            let dst = FieldRange::from_ofs_nbits(be32(a, 12), be16(a, 10))?;
            let value = be64(a, 16);
            if dst.n_bits < 64 && value >> dst.n_bits != 0 {
                return Err(DecodeError::Invalid {
                    what: "nx_action_reg_load",
                    why: format!("value {value:#x} does not fit in {} bits", dst.n_bits),
                    ofp: BAD_ARGUMENT,
                });
            }
            Action::Load { dst, value }
        }
        nxast::REG_LOAD2 => {
            let (f, n) = MatchField::decode(&a[10..])?;
            check_padding("nx_action_reg_load2", a, 10 + n)?;
            Action::Load2(f)
        }
        // Padding is part of the note, as in OVS: a note of 6 + 8n bytes round-trips exactly.
        nxast::NOTE => Action::Note(a[10..].to_vec()),
        nxast::OUTPUT_REG => {
            need(24, "nx_action_output_reg")?;
            Action::OutputReg {
                src: FieldRange::from_ofs_nbits(be32(a, 12), be16(a, 10))?,
                max_len: be16(a, 16),
            }
        }
        nxast::DEC_TTL_CNT_IDS => {
            need(16, "nx_action_cnt_ids")?;
            let n = be16(a, 10) as usize;
            need(16 + 2 * n, "nx_action_cnt_ids")?;
            let ids = (0..n).map(|i| be16(a, 16 + 2 * i)).collect();
            Action::DecTtl {
                controller_ids: ids,
            }
        }
        nxast::CONTROLLER => {
            need(16, "nx_action_controller")?;
            Action::Controller {
                max_len: be16(a, 10),
                controller_id: be16(a, 12),
                reason: a[14],
            }
        }
        nxast::CONTROLLER2 => Action::Controller2(Controller2::decode(a)?),
        nxast::CONJUNCTION => {
            need(16, "nx_action_conjunction")?;
            let (clause, n_clauses) = (a[10], a[11]);
            if !(2..=64).contains(&n_clauses) || clause >= n_clauses {
                return Err(DecodeError::Invalid {
                    what: "nx_action_conjunction",
                    why: format!("clause {clause} of {n_clauses}: needs 2..64 clauses and clause < n_clauses"),
                    ofp: BAD_ARGUMENT,
                });
            }
            Action::Conjunction {
                id: be32(a, 12),
                clause,
                n_clauses,
            }
        }
        nxast::CT => {
            need(24, "nx_action_conntrack")?;
            let flags = be16(a, 10);
            if flags & !0x3 != 0 {
                return Err(DecodeError::Invalid {
                    what: "nx_action_conntrack",
                    why: format!("unknown flags {flags:#x}"),
                    ofp: BAD_ARGUMENT,
                });
            }
            let zone_src = be32(a, 12);
            let zone = if zone_src == 0 {
                CtZone::Imm(be16(a, 16))
            } else {
                CtZone::Field(FieldRange::from_ofs_nbits(zone_src, be16(a, 16))?)
            };
            let table = a[18];
            let actions = Action::decode_list(&a[24..])?;
            if let Some(bad) = actions.iter().find(|x| !allowed_in_ct(x)) {
                return Err(DecodeError::Invalid {
                    what: "nx_action_conntrack",
                    why: format!("action {bad} is not allowed inside ct (only nat and setting ct_mark/ct_label)"),
                    ofp: UNSUPPORTED_ORDER,
                });
            }
            Action::Ct(Ct {
                commit: flags & 1 != 0,
                force: flags & 2 != 0,
                zone,
                table: (table != CT_RECIRC_NONE).then_some(table),
                alg: be16(a, 22),
                actions,
            })
        }
        nxast::NAT => Action::Nat(decode_nat(a)?),
        nxast::CT_CLEAR => Action::CtClear,
        _ => Action::Experimenter {
            experimenter: NX_VENDOR_ID,
            body: a[8..].to_vec(),
        },
    })
}

mod nat_flag {
    pub const SRC: u16 = 1;
    pub const DST: u16 = 2;
    pub const PERSISTENT: u16 = 4;
    pub const HASH: u16 = 8;
    pub const RANDOM: u16 = 16;
}
mod nat_range {
    pub const V4_MIN: u16 = 1;
    pub const V4_MAX: u16 = 2;
    pub const V6_MIN: u16 = 4;
    pub const V6_MAX: u16 = 8;
    pub const PROTO_MIN: u16 = 16;
    pub const PROTO_MAX: u16 = 32;
}

fn nat_present(n: &Nat) -> u16 {
    let mut p = 0;
    match n.addrs {
        NatAddrs::None => {}
        NatAddrs::V4(_, max) => {
            p |= nat_range::V4_MIN | if max.is_some() { nat_range::V4_MAX } else { 0 }
        }
        NatAddrs::V6(_, max) => {
            p |= nat_range::V6_MIN | if max.is_some() { nat_range::V6_MAX } else { 0 }
        }
    }
    if let Some((_, max)) = n.ports {
        p |= nat_range::PROTO_MIN
            | if max.is_some() {
                nat_range::PROTO_MAX
            } else {
                0
            };
    }
    p
}

fn nat_ranges_len(n: &Nat) -> usize {
    let p = nat_present(n);
    let mut len = 0;
    for (bit, size) in [
        (nat_range::V4_MIN, 4),
        (nat_range::V4_MAX, 4),
        (nat_range::V6_MIN, 16),
        (nat_range::V6_MAX, 16),
        (nat_range::PROTO_MIN, 2),
        (nat_range::PROTO_MAX, 2),
    ] {
        if p & bit != 0 {
            len += size;
        }
    }
    len
}

fn encode_nat(n: &Nat, buf: &mut Writer<'_>) {
    put_nx(buf, nxast::NAT);
    buf.put_u16(0);
    let mut flags = 0;
    match n.kind {
        NatKind::Reuse => {}
        NatKind::Src => flags |= nat_flag::SRC,
        NatKind::Dst => flags |= nat_flag::DST,
    }
    if n.persistent {
        flags |= nat_flag::PERSISTENT;
    }
    if n.hash {
        flags |= nat_flag::HASH;
    }
    if n.random {
        flags |= nat_flag::RANDOM;
    }
    buf.put_u16(flags);
    buf.put_u16(nat_present(n));
    match n.addrs {
        NatAddrs::None => {}
        NatAddrs::V4(min, max) => {
            buf.put_slice(&min.octets());
            if let Some(max) = max {
                buf.put_slice(&max.octets());
            }
        }
        NatAddrs::V6(min, max) => {
            buf.put_slice(&min.octets());
            if let Some(max) = max {
                buf.put_slice(&max.octets());
            }
        }
    }
    if let Some((min, max)) = n.ports {
        buf.put_u16(min);
        if let Some(max) = max {
            buf.put_u16(max);
        }
    }
}

fn decode_nat(a: &[u8]) -> Result<Nat, DecodeError> {
    if a.len() < 16 {
        return Err(truncated("nx_action_nat", 16, a.len()));
    }
    let flags = be16(a, 12);
    let present = be16(a, 14);
    let bad = |why: String| DecodeError::Invalid {
        what: "nx_action_nat",
        why,
        ofp: BAD_ARGUMENT,
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
    let mut at = 16;
    let mut take = |n: usize| -> Result<&[u8], DecodeError> {
        if at + n > a.len() {
            return Err(truncated("nx_action_nat range", at + n, a.len()));
        }
        let s = &a[at..at + n];
        at += n;
        Ok(s)
    };
    let v4 = |b: &[u8]| Ipv4Addr::new(b[0], b[1], b[2], b[3]);
    let v6 = |b: &[u8]| Ipv6Addr::from(<[u8; 16]>::try_from(b).expect("16 bytes"));
    let has = |bit| present & bit != 0;
    let addrs = if has(nat_range::V4_MIN) {
        if has(nat_range::V6_MIN) || has(nat_range::V6_MAX) {
            return Err(bad("both IPv4 and IPv6 ranges".into()));
        }
        let min = v4(take(4)?);
        let max = if has(nat_range::V4_MAX) {
            Some(v4(take(4)?))
        } else {
            None
        };
        NatAddrs::V4(min, max)
    } else if has(nat_range::V6_MIN) {
        let min = v6(take(16)?);
        let max = if has(nat_range::V6_MAX) {
            Some(v6(take(16)?))
        } else {
            None
        };
        NatAddrs::V6(min, max)
    } else if has(nat_range::V4_MAX) || has(nat_range::V6_MAX) {
        return Err(bad("a range maximum without its minimum".into()));
    } else {
        NatAddrs::None
    };
    let ports = if has(nat_range::PROTO_MIN) {
        let b = take(2)?;
        let min = u16::from_be_bytes([b[0], b[1]]);
        let max = if has(nat_range::PROTO_MAX) {
            let b = take(2)?;
            Some(u16::from_be_bytes([b[0], b[1]]))
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

/// Writes an action list as `ovs-ofctl` does: comma separated, `drop` when empty.
pub struct ActionList<'a>(pub &'a [Action]);

impl fmt::Display for ActionList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("drop");
        }
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

fn fmt_set_field(f: &mut fmt::Formatter<'_>, mf: &MatchField) -> fmt::Result {
    match mf {
        MatchField::Field(fm) => {
            let field = fm.field();
            write!(f, "set_field:{}", field.format_value(fm.value()))?;
            if let Some(m) = fm.mask() {
                write!(f, "/{}", field.format_value(m))?;
            }
            write!(f, "->{}", field.mf_name())
        }
        MatchField::Unknown(_) => write!(f, "set_field:{mf}"),
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Output { port, max_len } => {
                if *port == 0xffff_fffd {
                    write!(f, "CONTROLLER:{max_len}")
                } else if *port >= 0xffff_fff8 {
                    f.write_str(&port_name(*port))
                } else {
                    write!(f, "output:{port}")
                }
            }
            Action::CopyTtlOut => f.write_str("copy_ttl_out"),
            Action::CopyTtlIn => f.write_str("copy_ttl_in"),
            Action::SetMplsTtl(t) => write!(f, "set_mpls_ttl({t})"),
            Action::DecMplsTtl => f.write_str("dec_mpls_ttl"),
            Action::PushVlan(e) => write!(f, "push_vlan:{e:#06x}"),
            Action::PopVlan => f.write_str("pop_vlan"),
            Action::PushMpls(e) => write!(f, "push_mpls:{e:#06x}"),
            Action::PopMpls(e) => write!(f, "pop_mpls:{e:#06x}"),
            Action::SetQueue(q) => write!(f, "set_queue:{q}"),
            Action::Group(g) => write!(f, "group:{g}"),
            Action::SetNwTtl(t) => write!(f, "mod_nw_ttl:{t}"),
            Action::DecNwTtl => f.write_str("dec_ttl"),
            Action::SetField(mf) | Action::Load2(mf) => fmt_set_field(f, mf),
            Action::PushPbb(e) => write!(f, "push_pbb:{e:#06x}"),
            Action::PopPbb => f.write_str("pop_pbb"),
            Action::Resubmit { in_port, table } => match table {
                None => write!(f, "resubmit:{}", nx_port(*in_port)),
                Some(t) => {
                    f.write_str("resubmit(")?;
                    if *in_port != NX_IN_PORT {
                        f.write_str(&nx_port(*in_port))?;
                    }
                    if *t == 255 {
                        f.write_str(",)")
                    } else {
                        write!(f, ",{t})")
                    }
                }
            },
            Action::Move { src, dst } => write!(f, "move:{src}->{dst}"),
            Action::Load { dst, value } => {
                if dst.ofs == 0 && dst.n_bits as usize == dst.field.width() * 8 {
                    write!(
                        f,
                        "set_field:{}->{}",
                        CHex((*value).into()),
                        dst.field.name()
                    )
                } else {
                    write!(f, "load:{}->{dst}", CHex((*value).into()))
                }
            }
            Action::Note(b) => {
                f.write_str("note:")?;
                for (i, x) in b.iter().enumerate() {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    write!(f, "{x:02x}")?;
                }
                Ok(())
            }
            Action::OutputReg { src, max_len } => {
                write!(f, "output:{src}")?;
                if *max_len != 0 && *max_len != 0xffff {
                    write!(f, ",max_len={max_len}")?;
                }
                Ok(())
            }
            Action::DecTtl { controller_ids } => {
                f.write_str("dec_ttl(")?;
                for (i, id) in controller_ids.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{id}")?;
                }
                f.write_str(")")
            }
            Action::Controller {
                max_len,
                controller_id,
                reason,
            } => {
                let mut parts = Vec::new();
                if *reason != 1 {
                    parts.push(format!("reason={}", packet_in_reason(*reason)));
                }
                if *max_len != 0xffff {
                    parts.push(format!("max_len={max_len}"));
                }
                if *controller_id != 0 {
                    parts.push(format!("id={controller_id}"));
                }
                if parts.is_empty() {
                    f.write_str("CONTROLLER:65535")
                } else {
                    write!(f, "controller({})", parts.join(","))
                }
            }
            Action::Controller2(c) => write!(f, "{c}"),
            Action::Conjunction {
                id,
                clause,
                n_clauses,
            } => write!(f, "conjunction({id},{}/{n_clauses})", clause + 1),
            Action::Ct(ct) => {
                let mut parts: Vec<String> = Vec::new();
                if ct.commit {
                    parts.push("commit".into());
                }
                if ct.force {
                    parts.push("force".into());
                }
                if let Some(t) = ct.table {
                    parts.push(format!("table={t}"));
                }
                match ct.zone {
                    CtZone::Imm(0) => {}
                    CtZone::Imm(z) => parts.push(format!("zone={z}")),
                    CtZone::Field(r) => parts.push(format!("zone={r}")),
                }
                if ct.alg != 0 {
                    parts.push(match ct.alg {
                        21 => "alg=ftp".into(),
                        69 => "alg=tftp".into(),
                        n => format!("alg={n}"),
                    });
                }
                let nats: Vec<String> = ct
                    .actions
                    .iter()
                    .filter(|a| matches!(a, Action::Nat(_)))
                    .map(|a| a.to_string())
                    .collect();
                let others: Vec<&Action> = ct
                    .actions
                    .iter()
                    .filter(|a| !matches!(a, Action::Nat(_)))
                    .collect();
                parts.extend(nats);
                if !others.is_empty() {
                    let list: Vec<Action> = others.into_iter().cloned().collect();
                    parts.push(format!("exec({})", ActionList(&list)));
                }
                write!(f, "ct({})", parts.join(","))
            }
            Action::Nat(n) => {
                f.write_str("nat")?;
                let kind = match n.kind {
                    NatKind::Reuse => return Ok(()),
                    NatKind::Src => "src",
                    NatKind::Dst => "dst",
                };
                write!(f, "({kind}")?;
                match n.addrs {
                    NatAddrs::None => {}
                    NatAddrs::V4(min, max) => {
                        write!(f, "={min}")?;
                        if let Some(max) = max {
                            write!(f, "-{max}")?;
                        }
                    }
                    NatAddrs::V6(min, max) => {
                        write!(f, "=[{min}]")?;
                        if let Some(max) = max {
                            write!(f, "-[{max}]")?;
                        }
                    }
                }
                if let Some((min, max)) = n.ports {
                    write!(f, ":{min}")?;
                    if let Some(max) = max {
                        write!(f, "-{max}")?;
                    }
                }
                for (on, name) in [
                    (n.persistent, "persistent"),
                    (n.hash, "hash"),
                    (n.random, "random"),
                ] {
                    if on {
                        write!(f, ",{name}")?;
                    }
                }
                f.write_str(")")
            }
            Action::CtClear => f.write_str("ct_clear"),
            Action::Experimenter { experimenter, body } => {
                write!(f, "experimenter({experimenter:#010x}:")?;
                for b in body {
                    write!(f, "{b:02x}")?;
                }
                f.write_str(")")
            }
            Action::Unknown { typ, body } => {
                write!(f, "unknown_action({typ}:")?;
                for b in body {
                    write!(f, "{b:02x}")?;
                }
                f.write_str(")")
            }
        }
    }
}

fn nx_port(p: u16) -> String {
    if p >= 0xfff8 {
        port_name(u32::from(p) | 0xffff_0000)
    } else {
        p.to_string()
    }
}

/// `ofp_packet_in_reason` names as OVS prints them.
pub fn packet_in_reason(r: u8) -> String {
    match r {
        0 => "no_match".into(),
        1 => "action".into(),
        2 => "invalid_ttl".into(),
        3 => "action_set".into(),
        4 => "group".into(),
        5 => "packet_out".into(),
        n => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Decodes `bytes`, checks the printed form, and encodes back byte for byte into a buffer
    /// that starts with garbage.
    fn check(bytes: &str, text: &str) {
        let bytes = hex(bytes);
        let actions = Action::decode_list(&bytes).unwrap();
        assert_eq!(ActionList(&actions).to_string(), text);
        let mut buf = BytesMut::from(&[0x5au8; 5][..]);
        Action::encode_list(&actions, &mut buf);
        assert_eq!(&buf[5..], &bytes[..]);
        assert_eq!(Action::list_len(&actions), bytes.len());
    }

    #[test]
    fn standard_actions() {
        check("0000 0010 00000003 0000 000000000000", "output:3");
        check("0000 0010 fffffffd ffff 000000000000", "CONTROLLER:65535");
        check("0016 0008 00000007", "group:7");
        check(
            "0011 0008 8100 0000 0012 0008 00000000",
            "push_vlan:0x8100,pop_vlan",
        );
        check("0018 0008 00000000", "dec_ttl");
        check("0015 0008 00000002", "set_queue:2");
        // set_field:0x5->reg0 as an OXM of class NXM_1.
        check(
            "0019 0010 00010004 00000005 00000000",
            "set_field:0x5->reg0",
        );
        check(
            "0019 0010 80000c02 100a 000000000000",
            "set_field:4106->vlan_vid",
        );
    }

    #[test]
    fn nicira_actions() {
        check("ffff 0010 00002320 000e fff8 05 000000", "resubmit(,5)");
        check("ffff 0010 00002320 0001 0003 00000000", "resubmit:3");
        check(
            "ffff 0018 00002320 0006 0010 0000 0000 00010004 00010204",
            "move:NXM_NX_REG0[0..15]->NXM_NX_REG1[0..15]",
        );
        check(
            "ffff 0018 00002320 0007 001f 00010004 0000000000000005",
            "set_field:0x5->reg0",
        );
        check(
            "ffff 0018 00002320 0007 0007 00010004 0000000000000005",
            "load:0x5->NXM_NX_REG0[0..7]",
        );
        check(
            "ffff 0010 00002320 0022 01 03 00000007",
            "conjunction(7,2/3)",
        );
        check(
            "ffff 0010 00002320 0008 010203 000000",
            "note:01.02.03.00.00.00",
        );
        check(
            "ffff 0018 00002320 0015 0002 00000000 0001 0002 00000000",
            "dec_ttl(1,2)",
        );
        check(
            "ffff 0010 00002320 0014 ffff 0000 00 00",
            "controller(reason=no_match)",
        );
    }

    #[test]
    fn controller2_properties_as_ovs_encodes_and_prints_them() {
        check(
            "ffff 0018 00002320 0025 000000000000 0003 0007 010203 00",
            "controller(userdata=01.02.03)",
        );
        check(
            "ffff 0040 00002320 0025 000000000000 \
             0000 0008 0080 0000 0001 0008 0002 0000 0002 0005 00 000000 \
             0003 0007 010203 00 0004 0004 00000000 0005 0008 00000007",
            "controller(reason=no_match,max_len=128,id=2,userdata=01.02.03,pause,meter_id=7)",
        );
        // Nothing but defaults: printed as OVS prints it.
        check("ffff 0010 00002320 0025 000000000000", "CONTROLLER:65535");
        // Refused, never a panic: nonzero padding, a property overrunning, an unknown one,
        // a max_len of the wrong size.
        for bad in [
            "ffff 0010 00002320 0025 000000000001",
            "ffff 0018 00002320 0025 000000000000 0003 0010 010203 00",
            "ffff 0018 00002320 0025 000000000000 0009 0004 00000000",
            "ffff 0018 00002320 0025 000000000000 0000 0005 00 000000",
        ] {
            assert!(Action::decode_list(&hex(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn ct_with_nat_and_zone_from_a_register() {
        let ct = Action::Ct(Ct {
            commit: true,
            force: false,
            zone: CtZone::Field(FieldRange::new(Field::Reg(4), 0, 16).unwrap()),
            table: Some(3),
            alg: 0,
            actions: vec![
                Action::Nat(Nat {
                    kind: NatKind::Src,
                    addrs: NatAddrs::V4(
                        Ipv4Addr::new(10, 0, 0, 1),
                        Some(Ipv4Addr::new(10, 0, 0, 9)),
                    ),
                    ports: Some((1000, Some(2000))),
                    persistent: false,
                    hash: false,
                    random: true,
                }),
                Action::set_field(Field::CtMark, 1).unwrap(),
            ],
        });
        assert_eq!(
            ct.to_string(),
            "ct(commit,table=3,zone=NXM_NX_REG4[0..15],nat(src=10.0.0.1-10.0.0.9:1000-2000,random),exec(set_field:0x1->ct_mark))"
        );
        let mut buf = BytesMut::new();
        ct.encode(&mut buf);
        assert_eq!(buf.len(), ct.encoded_len());
        assert_eq!(Action::decode_list(&buf).unwrap(), vec![ct]);
    }

    #[test]
    fn ct_refuses_actions_ovs_refuses() {
        let ct = Action::Ct(Ct {
            commit: true,
            force: false,
            zone: CtZone::Imm(1),
            table: None,
            alg: 0,
            actions: vec![Action::output(1)],
        });
        let mut buf = BytesMut::new();
        ct.encode(&mut buf);
        assert_eq!(
            Action::decode_list(&buf).unwrap_err().ofp_error(),
            UNSUPPORTED_ORDER
        );
    }

    #[test]
    fn bad_lengths_are_refused() {
        // Length 12: not a multiple of 8.
        assert_eq!(
            Action::decode_list(&hex("0000000c000000030000ffff"))
                .unwrap_err()
                .ofp_error(),
            BAD_LEN
        );
        // Length overruns the list.
        assert!(Action::decode_list(&hex("0000 0018 00000003 0000 000000000000")).is_err());
        // Output action of length 8.
        assert_eq!(
            Action::decode_list(&hex("0000000800000003"))
                .unwrap_err()
                .ofp_error(),
            BAD_LEN
        );
        // Unknown action type survives.
        check("0063 0008 01020304", "unknown_action(99:01020304)");
    }
}
