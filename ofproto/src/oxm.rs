//! Matches: `ofp_match` (OXM type) and its fields, the OpenFlow 1.3 basic fields plus the
//! Nicira/OVS fields the pipeline needs (registers, tunnel metadata, conntrack, conj_id).
//!
//! Every field is declared once in [`fields!`]: its OXM/NXM class and number, width, whether it
//! may carry a mask, its prerequisites and how OVS spells and prints it. A value lives in a
//! `u128` with the field's width, so no field needs the heap and encoding stays cheap.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::BytesMut;

use crate::error::{DecodeError, ErrorCode};
use crate::writer::Writer;

/// OXM class numbers.
pub mod class {
    pub const NXM_0: u16 = 0x0000;
    pub const NXM_1: u16 = 0x0001;
    pub const OPENFLOW_BASIC: u16 = 0x8000;
    pub const PACKET_REGS: u16 = 0x8001;
    pub const EXPERIMENTER: u16 = 0xffff;
}

const OFPET_BAD_MATCH: u16 = 4;
const BAD_LEN: ErrorCode = ErrorCode::new(OFPET_BAD_MATCH, 1);
const BAD_VALUE: ErrorCode = ErrorCode::new(OFPET_BAD_MATCH, 7);
const BAD_MASK: ErrorCode = ErrorCode::new(OFPET_BAD_MATCH, 8);
const BAD_PREREQ: ErrorCode = ErrorCode::new(OFPET_BAD_MATCH, 9);
const DUP_FIELD: ErrorCode = ErrorCode::new(OFPET_BAD_MATCH, 10);
const BAD_TYPE: ErrorCode = ErrorCode::new(OFPET_BAD_MATCH, 0);

/// How a field's value is printed, in OVS's style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Decimal,
    Hex,
    Mac,
    Ipv4,
    Ipv6,
    Port,
    CtState,
    VlanVid,
}

/// What must hold of other fields before a field may be matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prereq {
    None,
    Ipv4,
    Ipv6,
    Ip,
    Arp,
    Tcp,
    Udp,
    Sctp,
    Icmpv4,
    Icmpv6,
    Nd,
    NdSll,
    NdTll,
    Mpls,
    VlanPresent,
}

macro_rules! fields {
    ($( $variant:ident : $name:literal, $class:ident, $num:literal, $width:literal, $maskable:literal, $prereq:ident, $fmt:ident; )*) => {
        /// A match field this crate knows by name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Field {
            $( $variant, )*
            /// NXM_NX_REG0..15 (32 bits).
            Reg(u8),
            /// OXM_OF_PKT_REG0..7, `xreg` in OVS (64 bits).
            XReg(u8),
        }

        impl Field {
            /// Every named field, registers included (for tests and tables).
            pub fn all() -> Vec<Field> {
                let mut v = vec![$( Field::$variant, )*];
                v.extend((0..16).map(Field::Reg));
                v.extend((0..8).map(Field::XReg));
                v
            }

            /// (class, field number) on the wire.
            pub const fn code(self) -> (u16, u8) {
                match self {
                    $( Field::$variant => ($class, $num), )*
                    Field::Reg(n) => (class::NXM_1, n),
                    Field::XReg(n) => (class::PACKET_REGS, n),
                }
            }

            /// Width of the value in bytes.
            pub const fn width(self) -> usize {
                match self {
                    $( Field::$variant => $width, )*
                    Field::Reg(_) => 4,
                    Field::XReg(_) => 8,
                }
            }

            pub const fn maskable(self) -> bool {
                match self {
                    $( Field::$variant => $maskable, )*
                    Field::Reg(_) | Field::XReg(_) => true,
                }
            }

            pub const fn prereq(self) -> Prereq {
                match self {
                    $( Field::$variant => Prereq::$prereq, )*
                    Field::Reg(_) | Field::XReg(_) => Prereq::None,
                }
            }

            pub const fn format(self) -> Format {
                match self {
                    $( Field::$variant => Format::$fmt, )*
                    Field::Reg(_) | Field::XReg(_) => Format::Hex,
                }
            }

            /// The field's name as `ovs-ofctl` prints it in a match.
            pub fn name(self) -> std::borrow::Cow<'static, str> {
                match self {
                    $( Field::$variant => std::borrow::Cow::Borrowed($name), )*
                    Field::Reg(n) => format!("reg{n}").into(),
                    Field::XReg(n) => format!("xreg{n}").into(),
                }
            }

            /// The field for a (class, number) pair, if known.
            pub fn from_code(class: u16, num: u8) -> Option<Field> {
                match (class, num) {
                    (class::NXM_1, n @ 0..=15) => Some(Field::Reg(n)),
                    (class::PACKET_REGS, n @ 0..=7) => Some(Field::XReg(n)),
                    $( ($class, $num) => Some(Field::$variant), )*
                    _ => None,
                }
            }
        }
    };
}

use class::{NXM_0, NXM_1, OPENFLOW_BASIC as OF};

fields! {
    InPort: "in_port", OF, 0, 4, false, None, Port;
    InPhyPort: "in_phy_port", OF, 1, 4, false, None, Port;
    Metadata: "metadata", OF, 2, 8, true, None, Hex;
    EthDst: "dl_dst", OF, 3, 6, true, None, Mac;
    EthSrc: "dl_src", OF, 4, 6, true, None, Mac;
    EthType: "dl_type", OF, 5, 2, false, None, Hex;
    VlanVid: "vlan_vid", OF, 6, 2, true, None, VlanVid;
    VlanPcp: "dl_vlan_pcp", OF, 7, 1, false, VlanPresent, Decimal;
    IpDscp: "ip_dscp", OF, 8, 1, false, Ip, Decimal;
    IpEcn: "nw_ecn", OF, 9, 1, false, Ip, Decimal;
    IpProto: "nw_proto", OF, 10, 1, false, Ip, Decimal;
    Ipv4Src: "nw_src", OF, 11, 4, true, Ipv4, Ipv4;
    Ipv4Dst: "nw_dst", OF, 12, 4, true, Ipv4, Ipv4;
    TcpSrc: "tp_src", OF, 13, 2, true, Tcp, Decimal;
    TcpDst: "tp_dst", OF, 14, 2, true, Tcp, Decimal;
    UdpSrc: "tp_src", OF, 15, 2, true, Udp, Decimal;
    UdpDst: "tp_dst", OF, 16, 2, true, Udp, Decimal;
    SctpSrc: "tp_src", OF, 17, 2, true, Sctp, Decimal;
    SctpDst: "tp_dst", OF, 18, 2, true, Sctp, Decimal;
    Icmpv4Type: "icmp_type", OF, 19, 1, false, Icmpv4, Decimal;
    Icmpv4Code: "icmp_code", OF, 20, 1, false, Icmpv4, Decimal;
    ArpOp: "arp_op", OF, 21, 2, false, Arp, Decimal;
    ArpSpa: "arp_spa", OF, 22, 4, true, Arp, Ipv4;
    ArpTpa: "arp_tpa", OF, 23, 4, true, Arp, Ipv4;
    ArpSha: "arp_sha", OF, 24, 6, true, Arp, Mac;
    ArpTha: "arp_tha", OF, 25, 6, true, Arp, Mac;
    Ipv6Src: "ipv6_src", OF, 26, 16, true, Ipv6, Ipv6;
    Ipv6Dst: "ipv6_dst", OF, 27, 16, true, Ipv6, Ipv6;
    Ipv6Flabel: "ipv6_label", OF, 28, 4, true, Ipv6, Hex;
    Icmpv6Type: "icmp_type", OF, 29, 1, false, Icmpv6, Decimal;
    Icmpv6Code: "icmp_code", OF, 30, 1, false, Icmpv6, Decimal;
    Ipv6NdTarget: "nd_target", OF, 31, 16, true, Nd, Ipv6;
    Ipv6NdSll: "nd_sll", OF, 32, 6, true, NdSll, Mac;
    Ipv6NdTll: "nd_tll", OF, 33, 6, true, NdTll, Mac;
    MplsLabel: "mpls_label", OF, 34, 4, false, Mpls, Decimal;
    MplsTc: "mpls_tc", OF, 35, 1, false, Mpls, Decimal;
    MplsBos: "mpls_bos", OF, 36, 1, false, Mpls, Decimal;
    PbbIsid: "pbb_isid", OF, 37, 3, true, None, Hex;
    TunnelId: "tun_id", OF, 38, 8, true, None, Hex;
    Ipv6Exthdr: "ipv6_exthdr", OF, 39, 2, true, Ipv6, Hex;
    NxmInPort: "in_port", NXM_0, 0, 2, false, None, Port;
    NxmTunId: "tun_id", NXM_1, 16, 8, true, None, Hex;
    TunIpv4Src: "tun_src", NXM_1, 31, 4, true, None, Ipv4;
    TunIpv4Dst: "tun_dst", NXM_1, 32, 4, true, None, Ipv4;
    PktMark: "pkt_mark", NXM_1, 33, 4, true, None, Hex;
    ConjId: "conj_id", NXM_1, 37, 4, false, None, Decimal;
    CtState: "ct_state", NXM_1, 105, 4, true, None, CtState;
    CtZone: "ct_zone", NXM_1, 106, 2, false, None, Decimal;
    CtMark: "ct_mark", NXM_1, 107, 4, true, None, Hex;
    CtLabel: "ct_label", NXM_1, 108, 16, true, None, Hex;
}

/// Bits of `ct_state`.
pub mod ct_state {
    pub const NEW: u32 = 0x01;
    pub const EST: u32 = 0x02;
    pub const REL: u32 = 0x04;
    pub const RPL: u32 = 0x08;
    pub const INV: u32 = 0x10;
    pub const TRK: u32 = 0x20;
    pub const SNAT: u32 = 0x40;
    pub const DNAT: u32 = 0x80;
    /// Names in the order OVS prints them.
    pub const NAMES: [(u32, &str); 8] = [
        (NEW, "new"),
        (EST, "est"),
        (REL, "rel"),
        (RPL, "rpl"),
        (INV, "inv"),
        (TRK, "trk"),
        (SNAT, "snat"),
        (DNAT, "dnat"),
    ];
}

/// `OFPVID_PRESENT`: set in `vlan_vid` when a VLAN header is present.
pub const OFPVID_PRESENT: u16 = 0x1000;

fn width_mask(width: usize) -> u128 {
    if width >= 16 {
        u128::MAX
    } else {
        (1u128 << (width * 8)) - 1
    }
}

/// Fields that also have an NXM (class 0 or 1) code besides their OXM one: OVS refers to them
/// by the NXM code in `move`, `load` and `output_reg`.
const NXM_ALIASES: [(Field, u16, u8); 26] = [
    (Field::EthDst, NXM_0, 1),
    (Field::EthSrc, NXM_0, 2),
    (Field::EthType, NXM_0, 3),
    (Field::IpProto, NXM_0, 6),
    (Field::Ipv4Src, NXM_0, 7),
    (Field::Ipv4Dst, NXM_0, 8),
    (Field::TcpSrc, NXM_0, 9),
    (Field::TcpDst, NXM_0, 10),
    (Field::UdpSrc, NXM_0, 11),
    (Field::UdpDst, NXM_0, 12),
    (Field::Icmpv4Type, NXM_0, 13),
    (Field::Icmpv4Code, NXM_0, 14),
    (Field::ArpOp, NXM_0, 15),
    (Field::ArpSpa, NXM_0, 16),
    (Field::ArpTpa, NXM_0, 17),
    (Field::ArpSha, NXM_1, 17),
    (Field::ArpTha, NXM_1, 18),
    (Field::Ipv6Src, NXM_1, 19),
    (Field::Ipv6Dst, NXM_1, 20),
    (Field::Icmpv6Type, NXM_1, 21),
    (Field::Icmpv6Code, NXM_1, 22),
    (Field::Ipv6NdTarget, NXM_1, 23),
    (Field::Ipv6NdSll, NXM_1, 24),
    (Field::Ipv6NdTll, NXM_1, 25),
    (Field::Ipv6Flabel, NXM_1, 27),
    (Field::IpEcn, NXM_1, 28),
];

impl Field {
    /// The field's NXM code where it has one besides its OXM code.
    pub fn nxm_alias(self) -> Option<(u16, u8)> {
        NXM_ALIASES.iter().find(|a| a.0 == self).map(|a| (a.1, a.2))
    }

    /// A field by its NXM alias code.
    pub fn from_nxm_alias(class: u16, num: u8) -> Option<Field> {
        NXM_ALIASES
            .iter()
            .find(|a| a.1 == class && a.2 == num)
            .map(|a| a.0)
    }

    /// The mask that covers every bit the field can hold: a match with it is an exact match.
    pub fn full_mask(self) -> u128 {
        match self {
            Field::Ipv6Flabel => 0xf_ffff,
            Field::VlanVid => 0x1fff,
            f => width_mask(f.width()),
        }
    }
}

/// The header of one OXM TLV: class, field number, has-mask bit, payload length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct OxmHeader {
    pub class: u16,
    pub field: u8,
    pub has_mask: bool,
    pub length: u8,
}

impl OxmHeader {
    pub fn from_u32(h: u32) -> Self {
        OxmHeader {
            class: (h >> 16) as u16,
            field: ((h >> 9) & 0x7f) as u8,
            has_mask: h & 0x100 != 0,
            length: (h & 0xff) as u8,
        }
    }

    pub fn to_u32(self) -> u32 {
        (u32::from(self.class) << 16)
            | (u32::from(self.field) << 9)
            | (u32::from(self.has_mask) << 8)
            | u32::from(self.length)
    }

    /// The exact-match header of a known field.
    pub fn of(field: Field, has_mask: bool) -> Self {
        let (class, num) = field.code();
        let w = field.width() as u8;
        OxmHeader {
            class,
            field: num,
            has_mask,
            length: if has_mask { 2 * w } else { w },
        }
    }
}

/// One match field: a known field with its value and optional mask, or an OXM this crate does
/// not know, kept whole so that it re-encodes byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MatchField {
    Field(FieldMatch),
    Unknown(RawOxm),
}

/// A known field's value and mask, both within the field's width.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FieldMatch {
    field: Field,
    value: u128,
    mask: Option<u128>,
    /// The OXM header on the wire, computed once: encoding is on the hot path.
    hdr: u32,
}

/// An OXM entry of an unknown class or field. For the experimenter class, `payload` starts with
/// the 4-byte experimenter id.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawOxm {
    pub header: OxmHeader,
    pub payload: Vec<u8>,
}

impl FieldMatch {
    /// An exact match. Fails if `value` does not fit the field.
    pub fn exact(field: Field, value: u128) -> Result<Self, DecodeError> {
        Self::check_value(field, value)?;
        Ok(FieldMatch::new(field, value, None))
    }

    /// A masked match. Fails if the field cannot be masked or a number does not fit. Bits of
    /// the value outside the mask are cleared, as a switch would.
    pub fn masked(field: Field, value: u128, mask: u128) -> Result<Self, DecodeError> {
        Self::check_value(field, value)?;
        Self::check_value(field, mask)?;
        if !field.maskable() {
            return Err(DecodeError::Invalid {
                what: "OXM field",
                why: format!("{} cannot be masked", field.name()),
                ofp: BAD_MASK,
            });
        }
        Ok(FieldMatch::new(field, value & mask, Some(mask)))
    }

    fn new(field: Field, value: u128, mask: Option<u128>) -> Self {
        FieldMatch {
            field,
            value,
            mask,
            hdr: OxmHeader::of(field, mask.is_some()).to_u32(),
        }
    }

    fn check_value(field: Field, v: u128) -> Result<(), DecodeError> {
        if v & !width_mask(field.width()) != 0 {
            return Err(DecodeError::Invalid {
                what: "OXM field",
                why: format!(
                    "value {v:#x} does not fit the {} bytes of {}",
                    field.width(),
                    field.name()
                ),
                ofp: BAD_VALUE,
            });
        }
        Ok(())
    }

    pub fn field(&self) -> Field {
        self.field
    }
    pub fn value(&self) -> u128 {
        self.value
    }
    pub fn mask(&self) -> Option<u128> {
        self.mask
    }
}

impl MatchField {
    fn header(&self) -> OxmHeader {
        match self {
            MatchField::Field(f) => OxmHeader::from_u32(f.hdr),
            MatchField::Unknown(r) => r.header,
        }
    }

    /// Bytes [`MatchField::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        match self {
            MatchField::Field(f) => 4 + (f.hdr & 0xff) as usize,
            MatchField::Unknown(r) => 4 + r.header.length as usize,
        }
    }

    /// Appends the OXM TLV (header and payload; no padding).
    pub fn encode(&self, buf: &mut BytesMut) {
        crate::writer::append(buf, self.encoded_len(), |w| self.write(w));
    }

    pub(crate) fn write(&self, buf: &mut Writer<'_>) {
        match self {
            MatchField::Field(f) => {
                let len = (f.hdr & 0xff) as usize;
                let w = if f.mask.is_some() { len / 2 } else { len };
                buf.put_u32(f.hdr);
                put_uint(buf, f.value, w);
                if let Some(m) = f.mask {
                    put_uint(buf, m, w);
                }
            }
            MatchField::Unknown(r) => {
                buf.put_u32(r.header.to_u32());
                buf.put_slice(&r.payload);
            }
        }
    }

    /// Decodes one OXM TLV at the start of `input`; returns it and its length.
    pub fn decode(input: &[u8]) -> Result<(MatchField, usize), DecodeError> {
        if input.len() < 4 {
            return Err(DecodeError::Truncated {
                what: "OXM header",
                need: 4,
                have: input.len(),
                ofp: BAD_LEN,
            });
        }
        let header =
            OxmHeader::from_u32(u32::from_be_bytes([input[0], input[1], input[2], input[3]]));
        let total = 4 + header.length as usize;
        if input.len() < total {
            return Err(DecodeError::Truncated {
                what: "OXM field",
                need: total,
                have: input.len(),
                ofp: BAD_LEN,
            });
        }
        let payload = &input[4..total];
        let Some(field) = Field::from_code(header.class, header.field) else {
            if header.class == class::EXPERIMENTER && header.length < 4 {
                return Err(DecodeError::BadLength {
                    what: "experimenter OXM",
                    len: header.length as usize,
                    why: "shorter than its 4-byte experimenter id",
                    ofp: BAD_LEN,
                });
            }
            if header.has_mask && !header.length.is_multiple_of(2) {
                return Err(DecodeError::BadLength {
                    what: "OXM field",
                    len: header.length as usize,
                    why: "a masked field's payload must have an even length",
                    ofp: BAD_LEN,
                });
            }
            return Ok((
                MatchField::Unknown(RawOxm {
                    header,
                    payload: payload.to_vec(),
                }),
                total,
            ));
        };
        let w = field.width();
        let want = if header.has_mask { 2 * w } else { w };
        if header.length as usize != want {
            return Err(DecodeError::BadLength {
                what: "OXM field",
                len: header.length as usize,
                why: "does not match the field's width",
                ofp: BAD_LEN,
            });
        }
        let value = get_uint(&payload[..w]);
        let fm = if header.has_mask {
            let mask = get_uint(&payload[w..]);
            if !field.maskable() {
                return Err(DecodeError::Invalid {
                    what: "OXM field",
                    why: format!("{} cannot be masked", field.name()),
                    ofp: BAD_MASK,
                });
            }
            if value & !mask != 0 {
                return Err(DecodeError::Invalid {
                    what: "OXM field",
                    why: format!("{}: value has bits set outside its mask", field.name()),
                    ofp: BAD_VALUE,
                });
            }
            FieldMatch::new(field, value, Some(mask))
        } else {
            FieldMatch::new(field, value, None)
        };
        Ok((MatchField::Field(fm), total))
    }
}

fn put_uint(buf: &mut Writer<'_>, v: u128, width: usize) {
    // Constant-size writes for the usual widths compile to plain stores.
    match width {
        1 => buf.put_u8(v as u8),
        2 => buf.put_u16(v as u16),
        4 => buf.put_u32(v as u32),
        8 => buf.put_u64(v as u64),
        16 => {
            buf.put_u64((v >> 64) as u64);
            buf.put_u64(v as u64);
        }
        _ => buf.put_slice(&v.to_be_bytes()[16 - width..]),
    }
}

pub(crate) fn get_uint(b: &[u8]) -> u128 {
    let mut v = 0u128;
    for &x in b {
        v = (v << 8) | u128::from(x);
    }
    v
}

/// `ofp_match` of type OFPMT_OXM: a list of OXM TLVs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct Match {
    pub fields: Vec<MatchField>,
}

const OFPMT_OXM: u16 = 1;

impl Match {
    pub fn new() -> Self {
        Match::default()
    }

    /// Adds an exact match on `field`. Panics if `value` does not fit the field: values come
    /// from typed helpers or from code, not from the wire (use [`FieldMatch::exact`] for those).
    pub fn with(mut self, field: Field, value: u128) -> Self {
        let fm = FieldMatch::exact(field, value).expect("value fits the field");
        self.fields.push(MatchField::Field(fm));
        self
    }

    /// Adds a masked match on `field`. Panics like [`Match::with`] on values that do not fit or a
    /// field that cannot be masked.
    pub fn with_masked(mut self, field: Field, value: u128, mask: u128) -> Self {
        let fm = FieldMatch::masked(field, value, mask).expect("maskable field, fitting values");
        self.fields.push(MatchField::Field(fm));
        self
    }

    pub fn in_port(self, port: u32) -> Self {
        self.with(Field::InPort, port.into())
    }
    pub fn eth_type(self, t: u16) -> Self {
        self.with(Field::EthType, t.into())
    }
    pub fn eth_src(self, mac: [u8; 6]) -> Self {
        self.with(Field::EthSrc, get_uint(&mac))
    }
    pub fn eth_dst(self, mac: [u8; 6]) -> Self {
        self.with(Field::EthDst, get_uint(&mac))
    }
    pub fn ip_proto(self, p: u8) -> Self {
        self.with(Field::IpProto, p.into())
    }
    pub fn ipv4_src(self, a: Ipv4Addr, prefix: u8) -> Self {
        self.ipv4(Field::Ipv4Src, a, prefix)
    }
    pub fn ipv4_dst(self, a: Ipv4Addr, prefix: u8) -> Self {
        self.ipv4(Field::Ipv4Dst, a, prefix)
    }
    /// An IPv4 field with a prefix length (32: exact).
    pub fn ipv4(self, field: Field, a: Ipv4Addr, prefix: u8) -> Self {
        let v = u128::from(u32::from(a));
        if prefix >= 32 {
            self.with(field, v)
        } else {
            let mask = u128::from(u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0));
            self.with_masked(field, v & mask, mask)
        }
    }
    pub fn reg(self, n: u8, v: u32) -> Self {
        self.with(Field::Reg(n), v.into())
    }
    pub fn reg_masked(self, n: u8, v: u32, mask: u32) -> Self {
        self.with_masked(Field::Reg(n), v.into(), mask.into())
    }
    pub fn ct_state(self, bits: u32, mask: u32) -> Self {
        self.with_masked(Field::CtState, bits.into(), mask.into())
    }

    /// The first known match on `field`.
    pub fn get(&self, field: Field) -> Option<&FieldMatch> {
        self.fields.iter().find_map(|f| match f {
            MatchField::Field(fm) if fm.field == field => Some(fm),
            _ => None,
        })
    }

    fn exact_value(&self, field: Field) -> Option<u128> {
        self.get(field)
            .filter(|f| f.mask.is_none())
            .map(|f| f.value)
    }

    /// Checks what a switch checks before accepting a match: no field twice, and every field's
    /// prerequisites present (e.g. `tcp_dst` needs `eth_type` IPv4/IPv6 and `ip_proto` 6).
    pub fn validate(&self) -> Result<(), DecodeError> {
        let mut seen: Vec<OxmHeader> = Vec::with_capacity(self.fields.len());
        for f in &self.fields {
            let h = f.header();
            if seen
                .iter()
                .any(|s| s.class == h.class && s.field == h.field)
            {
                return Err(DecodeError::Invalid {
                    what: "ofp_match",
                    why: format!("field {} appears twice", f.display_name()),
                    ofp: DUP_FIELD,
                });
            }
            seen.push(h);
        }
        for f in &self.fields {
            if let MatchField::Field(fm) = f {
                if !self.prereq_holds(fm.field.prereq()) {
                    return Err(DecodeError::Invalid {
                        what: "ofp_match",
                        why: format!(
                            "{} needs {:?} prerequisites (eth_type/ip_proto) in the same match",
                            fm.field.name(),
                            fm.field.prereq()
                        ),
                        ofp: BAD_PREREQ,
                    });
                }
            }
        }
        Ok(())
    }

    fn prereq_holds(&self, p: Prereq) -> bool {
        let eth = self.exact_value(Field::EthType).map(|v| v as u16);
        let proto = self.exact_value(Field::IpProto).map(|v| v as u8);
        let ip4 = eth == Some(0x0800);
        let ip6 = eth == Some(0x86dd);
        let icmp6_type = self.exact_value(Field::Icmpv6Type).map(|v| v as u8);
        match p {
            Prereq::None => true,
            Prereq::Ipv4 => ip4,
            Prereq::Ipv6 => ip6,
            Prereq::Ip => ip4 || ip6,
            Prereq::Arp => matches!(eth, Some(0x0806) | Some(0x8035)),
            Prereq::Tcp => (ip4 || ip6) && proto == Some(6),
            Prereq::Udp => (ip4 || ip6) && proto == Some(17),
            Prereq::Sctp => (ip4 || ip6) && proto == Some(132),
            Prereq::Icmpv4 => ip4 && proto == Some(1),
            Prereq::Icmpv6 => ip6 && proto == Some(58),
            Prereq::Nd => ip6 && proto == Some(58) && matches!(icmp6_type, Some(135) | Some(136)),
            Prereq::NdSll => ip6 && proto == Some(58) && icmp6_type == Some(135),
            Prereq::NdTll => ip6 && proto == Some(58) && icmp6_type == Some(136),
            Prereq::Mpls => matches!(eth, Some(0x8847) | Some(0x8848)),
            Prereq::VlanPresent => self
                .get(Field::VlanVid)
                .is_some_and(|f| f.value & u128::from(OFPVID_PRESENT) != 0),
        }
    }

    /// Decodes an `ofp_match` at the start of `input`; returns it and the bytes it took,
    /// padding to a multiple of 8 included.
    pub fn decode(input: &[u8]) -> Result<(Match, usize), DecodeError> {
        if input.len() < 4 {
            return Err(DecodeError::Truncated {
                what: "ofp_match",
                need: 4,
                have: input.len(),
                ofp: BAD_LEN,
            });
        }
        let typ = u16::from_be_bytes([input[0], input[1]]);
        let len = u16::from_be_bytes([input[2], input[3]]) as usize;
        if typ != OFPMT_OXM {
            return Err(DecodeError::Invalid {
                what: "ofp_match",
                why: format!("match type {typ} is not OXM (1), the only type of OpenFlow 1.3"),
                ofp: BAD_TYPE,
            });
        }
        if len < 4 {
            return Err(DecodeError::BadLength {
                what: "ofp_match",
                len,
                why: "shorter than its 4-byte header",
                ofp: BAD_LEN,
            });
        }
        let padded = len.div_ceil(8) * 8;
        if input.len() < padded {
            return Err(DecodeError::Truncated {
                what: "ofp_match",
                need: padded,
                have: input.len(),
                ofp: BAD_LEN,
            });
        }
        let mut rest = &input[4..len];
        let mut fields = Vec::with_capacity(rest.len() / 8);
        while !rest.is_empty() {
            let (f, n) = MatchField::decode(rest)?;
            fields.push(f);
            rest = &rest[n..];
        }
        Ok((Match { fields }, padded))
    }

    /// Decodes bare OXM/NXM entries, all of `input`, without an `ofp_match` header (as in
    /// NXT_PACKET_IN2's metadata property).
    pub fn decode_fields(mut input: &[u8]) -> Result<Match, DecodeError> {
        let mut fields = Vec::with_capacity(input.len() / 8);
        while !input.is_empty() {
            let (f, n) = MatchField::decode(input)?;
            fields.push(f);
            input = &input[n..];
        }
        Ok(Match { fields })
    }

    /// Length of the `ofp_match` without padding (its `length` field).
    fn unpadded_len(&self) -> usize {
        4 + self
            .fields
            .iter()
            .map(MatchField::encoded_len)
            .sum::<usize>()
    }

    /// Appends the `ofp_match`, padding included.
    pub fn encode(&self, buf: &mut BytesMut) {
        crate::writer::append(buf, self.encoded_len(), |w| self.write(w));
    }

    pub(crate) fn write(&self, buf: &mut Writer<'_>) {
        let len = self.unpadded_len();
        buf.put_u16(OFPMT_OXM);
        buf.put_u16(len as u16);
        for f in &self.fields {
            f.write(buf);
        }
        buf.put_zeros(len.div_ceil(8) * 8 - len);
    }

    /// Bytes [`Match::encode`] writes, padding included.
    pub fn encoded_len(&self) -> usize {
        self.unpadded_len().div_ceil(8) * 8
    }
}

impl MatchField {
    fn display_name(&self) -> String {
        match self {
            MatchField::Field(f) => f.field.name().into_owned(),
            MatchField::Unknown(r) => {
                format!("OXM class {:#06x} field {}", r.header.class, r.header.field)
            }
        }
    }
}

/// Prints an OpenFlow port number the way OVS does (`LOCAL`, `CONTROLLER`, ... or a number).
pub fn port_name(p: u32) -> String {
    match p {
        0xffff_fff8 => "IN_PORT".into(),
        0xffff_fff9 => "TABLE".into(),
        0xffff_fffa => "NORMAL".into(),
        0xffff_fffb => "FLOOD".into(),
        0xffff_fffc => "ALL".into(),
        0xffff_fffd => "CONTROLLER".into(),
        0xffff_fffe => "LOCAL".into(),
        0xffff_ffff => "ANY".into(),
        n => n.to_string(),
    }
}

/// A number as C's `%#x` prints it: `0x` and lowercase hex digits, but `0` for zero, which is
/// how OVS prints hexadecimal fields.
pub struct CHex(pub u128);

impl fmt::Display for CHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            f.write_str("0")
        } else {
            write!(f, "{:#x}", self.0)
        }
    }
}

fn fmt_value(f: &mut fmt::Formatter<'_>, format: Format, width: usize, v: u128) -> fmt::Result {
    match format {
        Format::Decimal => write!(f, "{v}"),
        Format::Hex | Format::VlanVid | Format::CtState => write!(f, "{}", CHex(v)),
        Format::Mac => {
            let b = v.to_be_bytes();
            let m = &b[10..];
            write!(
                f,
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                m[0], m[1], m[2], m[3], m[4], m[5]
            )
        }
        Format::Ipv4 => write!(f, "{}", Ipv4Addr::from(v as u32)),
        Format::Ipv6 => write!(f, "{}", Ipv6Addr::from(v)),
        Format::Port => {
            if width == 2 {
                // NXM in_port is 16-bit: OF1.0 reserved ports are 0xfff8 and up.
                let p = v as u32;
                let p = if p >= 0xfff8 { p | 0xffff_0000 } else { p };
                f.write_str(&port_name(p))
            } else {
                f.write_str(&port_name(v as u32))
            }
        }
    }
}

impl fmt::Display for FieldMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let w = self.field.width();
        if self.mask == Some(self.field.full_mask()) {
            // An all-ones mask is an exact match; OVS prints it so.
            return FieldMatch::new(self.field, self.value, None).fmt(f);
        }
        if let Field::XReg(n) = self.field {
            // OVS prints a 64-bit xreg as the two 32-bit registers it is made of.
            let mask = self.mask.unwrap_or(u128::from(u64::MAX));
            let mut wrote = false;
            for (i, shift) in [(2 * n, 32), (2 * n + 1, 0)] {
                let m = ((mask >> shift) & 0xffff_ffff) as u32;
                if m == 0 {
                    continue;
                }
                if wrote {
                    f.write_str(",")?;
                }
                let v = ((self.value >> shift) & 0xffff_ffff) as u32;
                write!(f, "reg{i}={}", CHex(v.into()))?;
                if m != u32::MAX {
                    write!(f, "/{}", CHex(m.into()))?;
                }
                wrote = true;
            }
            return Ok(());
        }
        if self.field == Field::IpDscp {
            // OVS shows DSCP as the TOS byte it sits in.
            return write!(f, "nw_tos={}", self.value << 2);
        }
        match self.field.format() {
            Format::CtState => {
                let mask = self.mask.unwrap_or(0xffff_ffff) as u32;
                let v = self.value as u32;
                f.write_str("ct_state=")?;
                let mut any = false;
                for (bit, name) in ct_state::NAMES {
                    if mask & bit != 0 {
                        write!(f, "{}{name}", if v & bit != 0 { '+' } else { '-' })?;
                        any = true;
                    }
                }
                if !any {
                    f.write_str("0/0")?;
                }
                Ok(())
            }
            Format::VlanVid => {
                let v = self.value as u16;
                match self.mask {
                    None if v & OFPVID_PRESENT != 0 => write!(f, "dl_vlan={}", v & 0xfff),
                    None => write!(f, "vlan_tci={:#06x}/0x1fff", v & 0xfff),
                    Some(m) => write!(f, "vlan_vid={:#x}/{:#x}", v, m),
                }
            }
            fmt @ (Format::Ipv4 | Format::Ipv6) => {
                write!(f, "{}=", self.field.name())?;
                fmt_value(f, fmt, w, self.value)?;
                if let Some(m) = self.mask {
                    let ones = m.count_ones() as usize;
                    let bits = w * 8;
                    let is_prefix = (m << (128 - bits)).leading_ones() as usize == ones;
                    if is_prefix {
                        write!(f, "/{ones}")?;
                    } else {
                        f.write_str("/")?;
                        fmt_value(f, fmt, w, m)?;
                    }
                }
                Ok(())
            }
            fmt => {
                write!(f, "{}=", self.field.name())?;
                // A masked number prints in hex, as OVS does.
                let vfmt = if fmt == Format::Decimal && self.mask.is_some() {
                    Format::Hex
                } else {
                    fmt
                };
                fmt_value(f, vfmt, w, self.value)?;
                if let Some(m) = self.mask {
                    f.write_str("/")?;
                    // Masks print in hex for numbers, in their own form for addresses.
                    let mfmt = if fmt == Format::Decimal {
                        Format::Hex
                    } else {
                        fmt
                    };
                    fmt_value(f, mfmt, w, m)?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for MatchField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MatchField::Field(fm) => fm.fmt(f),
            MatchField::Unknown(r) => {
                write!(f, "OXM({:#06x}:{}", r.header.class, r.header.field)?;
                if r.header.has_mask {
                    f.write_str(",masked")?;
                }
                f.write_str(")=0x")?;
                for b in &r.payload {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}

impl Match {
    /// The protocol shorthand OVS prints (`ip`, `tcp`, `arp`, ...) and whether it stands for
    /// `ip_proto` as well as `eth_type`.
    fn shorthand(&self) -> Option<(&'static str, bool)> {
        let eth = self.exact_value(Field::EthType)? as u16;
        let proto = self.exact_value(Field::IpProto).map(|v| v as u8);
        Some(match (eth, proto) {
            (0x0800, Some(1)) => ("icmp", true),
            (0x0800, Some(6)) => ("tcp", true),
            (0x0800, Some(17)) => ("udp", true),
            (0x0800, Some(132)) => ("sctp", true),
            (0x0800, _) => ("ip", false),
            (0x86dd, Some(58)) => ("icmp6", true),
            (0x86dd, Some(6)) => ("tcp6", true),
            (0x86dd, Some(17)) => ("udp6", true),
            (0x86dd, Some(132)) => ("sctp6", true),
            (0x86dd, _) => ("ipv6", false),
            (0x0806, _) => ("arp", false),
            (0x8035, _) => ("rarp", false),
            (0x8847, _) => ("mpls", false),
            (0x8848, _) => ("mplsm", false),
            _ => return None,
        })
    }
}

impl Field {
    /// Where OVS's `match_format` prints this field: fields print in this order, so that our
    /// text reads like OVS's and can be compared with it.
    fn print_rank(self) -> u16 {
        use Field::*;
        match self {
            PktMark => 0,
            ConjId => 3,
            CtState => 6,
            CtZone => 7,
            CtMark => 8,
            CtLabel => 9,
            Reg(n) => 20 + u16::from(n),
            XReg(n) => 20 + 2 * u16::from(n),
            TunnelId | NxmTunId => 40,
            TunIpv4Src => 41,
            TunIpv4Dst => 42,
            Metadata => 50,
            InPort | NxmInPort => 51,
            InPhyPort => 52,
            VlanVid => 53,
            VlanPcp => 54,
            EthSrc => 55,
            EthDst => 56,
            EthType => 57,
            Ipv6Src => 58,
            Ipv6Dst => 59,
            Ipv6Flabel => 60,
            ArpSpa | Ipv4Src => 61,
            ArpTpa | Ipv4Dst => 62,
            ArpOp | IpProto => 63,
            ArpSha => 64,
            ArpTha => 65,
            IpDscp => 66,
            IpEcn => 67,
            MplsLabel => 68,
            MplsTc => 69,
            MplsBos => 70,
            Icmpv4Type | Icmpv6Type => 71,
            Icmpv4Code | Icmpv6Code => 72,
            Ipv6NdTarget => 73,
            Ipv6NdSll => 74,
            Ipv6NdTll => 75,
            TcpSrc | UdpSrc | SctpSrc => 76,
            TcpDst | UdpDst | SctpDst => 77,
            PbbIsid => 80,
            Ipv6Exthdr => 81,
        }
    }
}

impl Field {
    /// The name OVS gives the field in `set_field`/`load` and in most of its documentation
    /// (meta-flow's name), which differs from the match spelling for some fields.
    pub fn mf_name(self) -> std::borrow::Cow<'static, str> {
        use Field::*;
        std::borrow::Cow::Borrowed(match self {
            EthSrc => "eth_src",
            EthDst => "eth_dst",
            EthType => "eth_type",
            VlanVid => "vlan_vid",
            VlanPcp => "vlan_pcp",
            IpProto => "nw_proto",
            Ipv4Src => "ip_src",
            Ipv4Dst => "ip_dst",
            TcpSrc => "tcp_src",
            TcpDst => "tcp_dst",
            UdpSrc => "udp_src",
            UdpDst => "udp_dst",
            SctpSrc => "sctp_src",
            SctpDst => "sctp_dst",
            Icmpv6Type => "icmpv6_type",
            Icmpv6Code => "icmpv6_code",
            InPort => "in_port_oxm",
            _ => return self.name(),
        })
    }

    /// The NXM/OXM name OVS prints in sub-field references (`NXM_NX_REG0[0..15]`): the NXM
    /// name where the field has one, else the OXM name.
    pub fn nxm_name(self) -> std::borrow::Cow<'static, str> {
        use Field::*;
        std::borrow::Cow::Borrowed(match self {
            Reg(n) => return format!("NXM_NX_REG{n}").into(),
            XReg(n) => return format!("OXM_OF_PKT_REG{n}").into(),
            InPort | NxmInPort => "NXM_OF_IN_PORT",
            EthDst => "NXM_OF_ETH_DST",
            EthSrc => "NXM_OF_ETH_SRC",
            EthType => "NXM_OF_ETH_TYPE",
            IpProto => "NXM_OF_IP_PROTO",
            Ipv4Src => "NXM_OF_IP_SRC",
            Ipv4Dst => "NXM_OF_IP_DST",
            TcpSrc => "NXM_OF_TCP_SRC",
            TcpDst => "NXM_OF_TCP_DST",
            UdpSrc => "NXM_OF_UDP_SRC",
            UdpDst => "NXM_OF_UDP_DST",
            Icmpv4Type => "NXM_OF_ICMP_TYPE",
            Icmpv4Code => "NXM_OF_ICMP_CODE",
            ArpOp => "NXM_OF_ARP_OP",
            ArpSpa => "NXM_OF_ARP_SPA",
            ArpTpa => "NXM_OF_ARP_TPA",
            ArpSha => "NXM_NX_ARP_SHA",
            ArpTha => "NXM_NX_ARP_THA",
            Ipv6Src => "NXM_NX_IPV6_SRC",
            Ipv6Dst => "NXM_NX_IPV6_DST",
            Ipv6Flabel => "NXM_NX_IPV6_LABEL",
            Icmpv6Type => "NXM_NX_ICMPV6_TYPE",
            Icmpv6Code => "NXM_NX_ICMPV6_CODE",
            Ipv6NdTarget => "NXM_NX_ND_TARGET",
            Ipv6NdSll => "NXM_NX_ND_SLL",
            Ipv6NdTll => "NXM_NX_ND_TLL",
            IpEcn => "NXM_NX_IP_ECN",
            TunnelId | NxmTunId => "NXM_NX_TUN_ID",
            TunIpv4Src => "NXM_NX_TUN_IPV4_SRC",
            TunIpv4Dst => "NXM_NX_TUN_IPV4_DST",
            PktMark => "NXM_NX_PKT_MARK",
            ConjId => "NXM_NX_CONJ_ID",
            CtState => "NXM_NX_CT_STATE",
            CtZone => "NXM_NX_CT_ZONE",
            CtMark => "NXM_NX_CT_MARK",
            CtLabel => "NXM_NX_CT_LABEL",
            InPhyPort => "OXM_OF_IN_PHY_PORT",
            Metadata => "OXM_OF_METADATA",
            VlanVid => "OXM_OF_VLAN_VID",
            VlanPcp => "OXM_OF_VLAN_PCP",
            IpDscp => "OXM_OF_IP_DSCP",
            SctpSrc => "OXM_OF_SCTP_SRC",
            SctpDst => "OXM_OF_SCTP_DST",
            MplsLabel => "OXM_OF_MPLS_LABEL",
            MplsTc => "OXM_OF_MPLS_TC",
            MplsBos => "OXM_OF_MPLS_BOS",
            PbbIsid => "OXM_OF_PBB_ISID",
            Ipv6Exthdr => "OXM_OF_IPV6_EXTHDR",
        })
    }

    /// Formats a value of this field as OVS's meta-flow does (`set_field:VALUE->field`).
    pub fn format_value(self, v: u128) -> String {
        struct V(Field, u128);
        impl fmt::Display for V {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let fmt = match self.0.format() {
                    Format::VlanVid | Format::CtState => Format::Decimal,
                    other => other,
                };
                fmt_value(f, fmt, self.0.width(), self.1)
            }
        }
        V(self, v).to_string()
    }
}

/// Rank of the protocol shorthand (`ip`, `tcp`, ...) among the fields.
const SHORTHAND_RANK: u16 = 10;

/// Prints the match as `ovs-ofctl` does: `name=value[/mask]`, comma separated, in OVS's order,
/// with the protocol shorthand (`tcp`, `arp`, ...) standing for `dl_type` and `nw_proto`. An empty
/// match prints nothing.
impl fmt::Display for Match {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short = self.shorthand();
        let mut items: Vec<(u16, &MatchField)> = Vec::with_capacity(self.fields.len());
        for field in &self.fields {
            let rank = match field {
                MatchField::Field(fm) => {
                    if short.is_some() && fm.field == Field::EthType && fm.mask.is_none() {
                        continue;
                    }
                    if matches!(short, Some((_, true))) && fm.field == Field::IpProto {
                        continue;
                    }
                    fm.field.print_rank()
                }
                MatchField::Unknown(_) => 90,
            };
            items.push((rank, field));
        }
        items.sort_by_key(|(rank, _)| *rank);
        let mut first = true;
        let mut short_done = short.is_none();
        for (rank, field) in items {
            if !short_done && rank > SHORTHAND_RANK {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(short.map(|s| s.0).unwrap_or_default())?;
                first = false;
                short_done = true;
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            write!(f, "{field}")?;
        }
        if !short_done {
            if !first {
                f.write_str(",")?;
            }
            f.write_str(short.map(|s| s.0).unwrap_or_default())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(m: &Match) -> Vec<u8> {
        let mut buf = BytesMut::from(&[0xa5u8; 3][..]);
        m.encode(&mut buf);
        assert_eq!(buf.len() - 3, m.encoded_len());
        let (back, n) = Match::decode(&buf[3..]).unwrap();
        assert_eq!(n, m.encoded_len());
        assert_eq!(&back, m);
        buf[3..].to_vec()
    }

    #[test]
    fn decodes_ovs_flow_mod_match_and_prints_like_ovs() {
        // The match of the "OFPT_FLOW_MOD - OF1.3 - flags" vector of OVS's ofp-print tests.
        let hex = "000100428000000400000001800008065054000000068000060650540000000580000a02080680000c02000080002a02000280002c04c0a8000280002e04c0a80001000000000000";
        let bytes = hex_to_bytes(hex);
        let (m, n) = Match::decode(&bytes).unwrap();
        assert_eq!(n, 0x48);
        assert_eq!(
            m.to_string(),
            "arp,in_port=1,vlan_tci=0x0000/0x1fff,dl_src=50:54:00:00:00:06,dl_dst=50:54:00:00:00:05,arp_spa=192.168.0.2,arp_tpa=192.168.0.1,arp_op=2"
        );
        assert_eq!(roundtrip(&m), bytes);
        m.validate().unwrap();
    }

    #[test]
    fn builds_a_pipeline_match() {
        let m = Match::new()
            .in_port(3)
            .eth_type(0x0800)
            .ip_proto(6)
            .ipv4_src(Ipv4Addr::new(10, 1, 0, 0), 24)
            .with(Field::TcpDst, 80)
            .reg_masked(3, 5, 0xff)
            .ct_state(
                ct_state::TRK | ct_state::NEW,
                ct_state::TRK | ct_state::NEW | ct_state::EST,
            );
        m.validate().unwrap();
        assert_eq!(
            m.to_string(),
            "ct_state=+new-est+trk,tcp,reg3=0x5/0xff,in_port=3,nw_src=10.1.0.0/24,tp_dst=80"
        );
        roundtrip(&m);
    }

    #[test]
    fn refuses_what_a_switch_refuses() {
        // tcp_dst without ip_proto.
        let m = Match::new().eth_type(0x0800).with(Field::TcpDst, 80);
        assert_eq!(m.validate().unwrap_err().ofp_error(), BAD_PREREQ);
        // Duplicate field.
        let m = Match::new().in_port(1).in_port(2);
        assert_eq!(m.validate().unwrap_err().ofp_error(), DUP_FIELD);
        // Mask on a field that cannot be masked.
        assert_eq!(
            FieldMatch::masked(Field::EthType, 0x800, 0xff00)
                .unwrap_err()
                .ofp_error(),
            BAD_MASK
        );
        // Value wider than the field.
        assert_eq!(
            FieldMatch::exact(Field::CtZone, 0x1_0000)
                .unwrap_err()
                .ofp_error(),
            BAD_VALUE
        );
        // Wrong OXM length for the field (in_port with 2 bytes).
        let bad = hex_to_bytes("0001000a80000002000100000000000000");
        assert_eq!(Match::decode(&bad).unwrap_err().ofp_error(), BAD_LEN);
        // Field overrunning the match.
        let bad = hex_to_bytes("0001000c8000000400000000");
        assert!(Match::decode(&bad).is_err());
        // Not an OXM match.
        let bad = hex_to_bytes("0000000400000000");
        assert_eq!(Match::decode(&bad).unwrap_err().ofp_error(), BAD_TYPE);
    }

    #[test]
    fn unknown_fields_survive() {
        // Experimenter OXM (ONF, tcp_flags 42) and an unknown NXM_1 field (tun_gbp_id 38).
        let hex = "00010014ffff54064f4e4600001200014c02000100000000";
        let bytes = hex_to_bytes(hex);
        let (m, n) = Match::decode(&bytes).unwrap();
        assert_eq!(n, bytes.len());
        assert!(matches!(m.fields[0], MatchField::Unknown(_)));
        let mut buf = BytesMut::new();
        m.encode(&mut buf);
        assert_eq!(&buf[..], &bytes[..n]);
    }

    #[test]
    fn nicira_fields_print_like_ovs() {
        let m = Match::new()
            .with(Field::NxmTunId, 0x64)
            .with(
                Field::TunIpv4Dst,
                u128::from(u32::from(Ipv4Addr::new(192, 0, 2, 7))),
            )
            .with(Field::CtZone, 5)
            .with_masked(Field::CtMark, 1, 1)
            .with(Field::ConjId, 7)
            .with(Field::PktMark, 0x10)
            .with(Field::XReg(1), 0xabc)
            .with(Field::NxmInPort, 0xfffe);
        assert_eq!(
            m.to_string(),
            "pkt_mark=0x10,conj_id=7,ct_zone=5,ct_mark=0x1/0x1,reg2=0,reg3=0xabc,tun_id=0x64,tun_dst=192.0.2.7,in_port=LOCAL"
        );
        roundtrip(&m);
    }

    pub(crate) fn hex_to_bytes(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
