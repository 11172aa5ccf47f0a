//! Matches as `ovs-ofctl` prints them: field names, value formats, OVS's field order and
//! protocol shorthands.

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

use crate::oxm::*;

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
