//! The field table: every field once (class, number, width, mask, prerequisites, names).

#[allow(unused_imports)]
use super::*;

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

use super::class::{NXM_0, NXM_1, OPENFLOW_BASIC as OF};

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

pub(crate) fn width_mask(width: usize) -> u128 {
    if width >= 16 {
        u128::MAX
    } else {
        (1u128 << (width * 8)) - 1
    }
}

/// Fields that also have an NXM (class 0 or 1) code besides their OXM one: OVS refers to them
/// by the NXM code in `move`, `load` and `output_reg`.
pub(crate) const NXM_ALIASES: [(Field, u16, u8); 26] = [
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
