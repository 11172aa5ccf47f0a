//! One OXM/NXM TLV: its header, typed value and mask, encode and decode.

#[allow(unused_imports)]
use super::*;
use crate::parse::{be_u32, check, fail, take, In, PResult};

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
    pub(crate) field: Field,
    pub(crate) value: u128,
    pub(crate) mask: Option<u128>,
    /// The OXM header on the wire, computed once: encoding is on the hot path.
    pub(crate) hdr: u32,
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

    #[inline]
    pub(crate) fn new(field: Field, value: u128, mask: Option<u128>) -> Self {
        FieldMatch {
            field,
            value,
            mask,
            hdr: OxmHeader::of(field, mask.is_some()).to_u32(),
        }
    }

    pub(crate) fn check_value(field: Field, v: u128) -> Result<(), DecodeError> {
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
    pub(crate) fn header(&self) -> OxmHeader {
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
        let (rest, f) = crate::parse::finish(match_field(input))?;
        Ok((f, input.len() - rest.len()))
    }
}

/// One OXM/NXM TLV: header, value, and mask if the header says so.
#[inline]
pub(crate) fn match_field(i: In<'_>) -> PResult<'_, MatchField> {
    check("OXM header", 4, BAD_LEN, i)?;
    let (_, header) = be_u32(i)?;
    let header = OxmHeader::from_u32(header);
    let total = 4 + header.length as usize;
    check("OXM field", total, BAD_LEN, i)?;
    let (rest, tlv) = take(total)(i)?;
    let (payload, _) = take(4)(tlv)?;
    let Some(field) = Field::from_code(header.class, header.field) else {
        if header.class == class::EXPERIMENTER && header.length < 4 {
            return fail(DecodeError::BadLength {
                what: "experimenter OXM",
                len: header.length as usize,
                why: "shorter than its 4-byte experimenter id",
                ofp: BAD_LEN,
            });
        }
        if header.has_mask && !header.length.is_multiple_of(2) {
            return fail(DecodeError::BadLength {
                what: "OXM field",
                len: header.length as usize,
                why: "a masked field's payload must have an even length",
                ofp: BAD_LEN,
            });
        }
        let payload = payload.to_vec();
        return Ok((rest, MatchField::Unknown(RawOxm { header, payload })));
    };
    let w = field.width();
    let want = if header.has_mask { 2 * w } else { w };
    if header.length as usize != want {
        return fail(DecodeError::BadLength {
            what: "OXM field",
            len: header.length as usize,
            why: "does not match the field's width",
            ofp: BAD_LEN,
        });
    }
    let (mask, value) = take(w)(payload)?;
    let value = get_uint(value);
    let fm = if header.has_mask {
        let mask = get_uint(mask);
        if !field.maskable() {
            return fail(DecodeError::Invalid {
                what: "OXM field",
                why: format!("{} cannot be masked", field.name()),
                ofp: BAD_MASK,
            });
        }
        if value & !mask != 0 {
            return fail(DecodeError::Invalid {
                what: "OXM field",
                why: format!("{}: value has bits set outside its mask", field.name()),
                ofp: BAD_VALUE,
            });
        }
        FieldMatch::new(field, value, Some(mask))
    } else {
        FieldMatch::new(field, value, None)
    };
    Ok((rest, MatchField::Field(fm)))
}

pub(crate) fn put_uint(buf: &mut Writer<'_>, v: u128, width: usize) {
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
