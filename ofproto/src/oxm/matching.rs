//! `ofp_match`: builders, validation (duplicates, prerequisites), encode and decode.

#[allow(unused_imports)]
use super::*;
use crate::parse::{be_u16, check, fail, many_all, take, In, PResult};

/// OXM TLVs until the input is used up.
#[inline]
pub(crate) fn fields(i: In<'_>) -> PResult<'_, Match> {
    let (i, fields) = many_all(match_field, 8)(i)?;
    Ok((i, Match { fields }))
}

/// An `ofp_match` of type OXM and its padding to 8 bytes.
#[inline]
pub(crate) fn ofp_match(i: In<'_>) -> PResult<'_, Match> {
    check("ofp_match", 4, BAD_LEN, i)?;
    let (h, typ) = be_u16(i)?;
    let (_, len) = be_u16(h)?;
    let len = len as usize;
    if typ != OFPMT_OXM {
        return fail(DecodeError::Invalid {
            what: "ofp_match",
            why: format!("match type {typ} is not OXM (1), the only type of OpenFlow 1.3"),
            ofp: BAD_TYPE,
        });
    }
    if len < 4 {
        return fail(DecodeError::BadLength {
            what: "ofp_match",
            len,
            why: "shorter than its 4-byte header",
            ofp: BAD_LEN,
        });
    }
    let padded = len.div_ceil(8) * 8;
    check("ofp_match", padded, BAD_LEN, i)?;
    let (rest, whole) = take(padded)(i)?;
    let (pad, body) = take(len)(whole)?;
    let (_, body) = take(4)(body).map(|(b, _)| (pad, b))?;
    let (_, m) = fields(body)?;
    Ok((rest, m))
}

/// `ofp_match` of type OFPMT_OXM: a list of OXM TLVs.
#[derive(Debug, Clone, PartialEq, Eq, Default, Hash)]
pub struct Match {
    pub fields: Vec<MatchField>,
}

pub(crate) const OFPMT_OXM: u16 = 1;

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

    pub(crate) fn exact_value(&self, field: Field) -> Option<u128> {
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

    pub(crate) fn prereq_holds(&self, p: Prereq) -> bool {
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
        let (rest, m) = crate::parse::finish(ofp_match(input))?;
        Ok((m, input.len() - rest.len()))
    }

    /// Decodes bare OXM/NXM entries, all of `input`, without an `ofp_match` header (as in
    /// NXT_PACKET_IN2's metadata property).
    pub fn decode_fields(input: &[u8]) -> Result<Match, DecodeError> {
        crate::parse::all(input, fields)
    }

    /// Length of the `ofp_match` without padding (its `length` field).
    pub(crate) fn unpadded_len(&self) -> usize {
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
    pub(crate) fn display_name(&self) -> String {
        match self {
            MatchField::Field(f) => f.field.name().into_owned(),
            MatchField::Unknown(r) => {
                format!("OXM class {:#06x} field {}", r.header.class, r.header.field)
            }
        }
    }
}
