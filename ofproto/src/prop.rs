//! `ofp_prop_header` lists (OpenFlow 1.4-style properties, which Nicira extensions use in
//! OpenFlow 1.3 too): type, length without padding, value, padding to 8 bytes.

use nom::Parser;

use crate::error::{DecodeError, ErrorCode};
use crate::parse::{all, be_u16, check, fail, many_all, take, In, PResult};

/// One property: its type and value (padding excluded).
pub(crate) struct Prop<'a> {
    pub typ: u16,
    pub value: &'a [u8],
}

/// Splits `input` into properties. `ofp` is the error a malformed length maps to.
pub(crate) fn props<'a>(
    input: &'a [u8],
    what: &'static str,
    ofp: ErrorCode,
) -> Result<Vec<Prop<'a>>, DecodeError> {
    all(input, many_all(|i| prop(what, ofp, i), 8))
}

/// One property: type, length (header included, padding not), value, padding to 8.
fn prop<'a>(what: &'static str, ofp: ErrorCode, i: In<'a>) -> PResult<'a, Prop<'a>> {
    check(what, 4, ofp, i)?;
    let (_, (typ, len)) = (be_u16, be_u16).parse(i)?;
    let len = len as usize;
    let padded = len.div_ceil(8) * 8;
    if len < 4 || padded > i.len() {
        return fail(DecodeError::BadLength {
            what,
            len,
            why: "a property's length must be at least 4 and lie within its list",
            ofp,
        });
    }
    let (rest, (_, value, _)) = (take(4), take(len - 4), take(padded - len)).parse(i)?;
    Ok((rest, Prop { typ, value }))
}

fn exact<const N: usize>(
    v: &[u8],
    what: &'static str,
    ofp: ErrorCode,
) -> Result<[u8; N], DecodeError> {
    v.try_into().map_err(|_| DecodeError::BadLength {
        what,
        len: v.len() + 4,
        why: "a property has the wrong length for its type",
        ofp,
    })
}

fn at_least<const N: usize>(
    v: &[u8],
    what: &'static str,
    ofp: ErrorCode,
) -> Result<[u8; N], DecodeError> {
    exact(v.get(..N).unwrap_or(v), what, ofp)
}

/// As OVS: at least one byte (OpenFlow gives small values 8-byte properties).
pub(crate) fn u8(v: &[u8], what: &'static str, ofp: ErrorCode) -> Result<u8, DecodeError> {
    Ok(at_least::<1>(v, what, ofp)?[0])
}
/// As OVS: at least two bytes (OVS writes them with two bytes of padding).
pub(crate) fn be16(v: &[u8], what: &'static str, ofp: ErrorCode) -> Result<u16, DecodeError> {
    Ok(u16::from_be_bytes(at_least(v, what, ofp)?))
}

/// The value of a 16-bit property as OVS writes it: the value, then two zero bytes.
pub(crate) fn be16_value(v: u16) -> [u8; 4] {
    let b = v.to_be_bytes();
    [b[0], b[1], 0, 0]
}
pub(crate) fn be32(v: &[u8], what: &'static str, ofp: ErrorCode) -> Result<u32, DecodeError> {
    Ok(u32::from_be_bytes(exact(v, what, ofp)?))
}
/// A 64-bit value sits 8-aligned: 4 bytes of padding after the header, then the value.
pub(crate) fn be64(v: &[u8], what: &'static str, ofp: ErrorCode) -> Result<u64, DecodeError> {
    let b: [u8; 12] = exact(v, what, ofp)?;
    Ok(u64::from_be_bytes(b[4..].try_into().expect("8 bytes")))
}

/// The value of a 64-bit property as [`put`] takes it (padding first).
pub(crate) fn be64_value(v: u64) -> [u8; 12] {
    let mut b = [0; 12];
    b[4..].copy_from_slice(&v.to_be_bytes());
    b
}

/// Appends one property, padded to 8.
pub(crate) fn put(buf: &mut bytes::BytesMut, typ: u16, value: &[u8]) {
    use bytes::BufMut;
    let len = 4 + value.len();
    buf.put_u16(typ);
    buf.put_u16(len as u16);
    buf.put_slice(value);
    buf.put_bytes(0, len.div_ceil(8) * 8 - len);
}
