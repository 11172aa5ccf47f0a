//! Conntrack: `ct` (zone, commit, recirculation, nested actions) and `nat`, with NAT's codec.

#[allow(unused_imports)]
use super::*;

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

pub(crate) mod nat_flag {
    pub const SRC: u16 = 1;
    pub const DST: u16 = 2;
    pub const PERSISTENT: u16 = 4;
    pub const HASH: u16 = 8;
    pub const RANDOM: u16 = 16;
}
pub(crate) mod nat_range {
    pub const V4_MIN: u16 = 1;
    pub const V4_MAX: u16 = 2;
    pub const V6_MIN: u16 = 4;
    pub const V6_MAX: u16 = 8;
    pub const PROTO_MIN: u16 = 16;
    pub const PROTO_MAX: u16 = 32;
}

pub(crate) fn nat_present(n: &Nat) -> u16 {
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

pub(crate) fn nat_ranges_len(n: &Nat) -> usize {
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

pub(crate) fn encode_nat(n: &Nat, buf: &mut Writer<'_>) {
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

pub(crate) fn decode_nat(a: &[u8]) -> Result<Nat, DecodeError> {
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
