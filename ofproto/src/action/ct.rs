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
