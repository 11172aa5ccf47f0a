//! The decoding idiom: `nom` parsers over `&[u8]` whose error is a [`DecodeError`], so every
//! failure names the structure and carries the OpenFlow error a switch would answer with.
//!
//! Fixed layouts are parsed as tuples of nom's big-endian number parsers behind [`need`], which
//! first checks that the structure is all there (a typed `Truncated` error otherwise), so nom's
//! own anonymous errors never reach a caller. Decoders only use nom's `complete` parsers: an
//! input is always one whole frame.

use nom::error::{ErrorKind, ParseError};
use nom::{IResult, Parser};

use crate::error::{DecodeError, ErrorCode};

pub(crate) type In<'a> = &'a [u8];

/// A decoding failure inside nom.
#[derive(Debug)]
pub(crate) struct PError(pub DecodeError);

impl<'a> ParseError<In<'a>> for PError {
    fn from_error_kind(input: In<'a>, kind: ErrorKind) -> Self {
        // Only reached if a parser reads past a length that `need` did not check: still an
        // error, never a panic.
        PError(DecodeError::BadLength {
            what: "OpenFlow structure",
            len: input.len(),
            why: match kind {
                ErrorKind::Eof => "shorter than its contents",
                _ => "malformed",
            },
            ofp: ErrorCode::new(1, 6), // OFPBRC_BAD_LEN
        })
    }
    fn append(_: In<'a>, _: ErrorKind, other: Self) -> Self {
        other
    }
}

pub(crate) type PResult<'a, T> = IResult<In<'a>, T, PError>;

/// Fails the parse with `e`.
pub(crate) fn fail<'a, T>(e: DecodeError) -> PResult<'a, T> {
    Err(nom::Err::Failure(PError(e)))
}

/// Lifts a plain decoding result into a parser's.
pub(crate) fn lift<T>(r: Result<T, DecodeError>) -> Result<T, nom::Err<PError>> {
    r.map_err(|e| nom::Err::Failure(PError(e)))
}

/// Runs `parser` only if at least `n` bytes are there; else `what` is truncated.
pub(crate) fn need<'a, O, P>(
    what: &'static str,
    n: usize,
    ofp: ErrorCode,
    mut parser: P,
) -> impl Parser<In<'a>, Output = O, Error = PError>
where
    P: Parser<In<'a>, Output = O, Error = PError>,
{
    move |i: In<'a>| {
        if i.len() < n {
            return fail(DecodeError::Truncated {
                what,
                need: n,
                have: i.len(),
                ofp,
            });
        }
        parser.parse(i)
    }
}

/// Exactly `n` bytes, or `what` is truncated.
pub(crate) fn bytes<'a>(
    what: &'static str,
    n: usize,
    ofp: ErrorCode,
) -> impl Parser<In<'a>, Output = In<'a>, Error = PError> {
    need(what, n, ofp, take(n))
}

/// The decoded value, or the error, out of a parser's result.
pub(crate) fn finish<T>(r: PResult<'_, T>) -> Result<(In<'_>, T), DecodeError> {
    r.map_err(|e| match e {
        nom::Err::Error(PError(e)) | nom::Err::Failure(PError(e)) => e,
        nom::Err::Incomplete(_) => DecodeError::BadLength {
            what: "OpenFlow structure",
            len: 0,
            why: "incomplete",
            ofp: ErrorCode::new(1, 6),
        },
    })
}

/// Runs `parser` over all of `input`, which must then be used up.
pub(crate) fn all<'a, T>(
    input: In<'a>,
    mut parser: impl Parser<In<'a>, Output = T, Error = PError>,
) -> Result<T, DecodeError> {
    finish(parser.parse(input)).map(|(_, v)| v)
}

/// Applies `item` until the input is used up. A plain closure (called directly, not through
/// nom's `Parser::process`), since it is the inner loop of every list.
pub(crate) fn many_all<'a, T>(
    item: impl Fn(In<'a>) -> PResult<'a, T>,
    size_hint: usize,
) -> impl Fn(In<'a>) -> PResult<'a, Vec<T>> {
    move |mut i: In<'a>| {
        let mut out = Vec::with_capacity(i.len() / size_hint.max(1));
        while !i.is_empty() {
            let (rest, v) = item(i)?;
            out.push(v);
            i = rest;
        }
        Ok((i, out))
    }
}

/// Big-endian integers, as nom parsers (plain functions of nom's `IResult`): nom's own `be_u*`
/// assemble the value byte by byte through its generic input trait, and calling them through
/// `Parser::parse` goes through `Parser::process`, which the compiler did not inline; these read
/// a fixed-size chunk and are called directly on the hot paths (profiled with
/// `examples/decode-loop.rs`).
macro_rules! be_uint {
    ($($name:ident: $t:ty),*) => {$(
        #[inline]
        pub(crate) fn $name(i: In<'_>) -> PResult<'_, $t> {
            match i.split_first_chunk() {
                Some((b, rest)) => Ok((rest, <$t>::from_be_bytes(*b))),
                None => Err(nom::Err::Error(PError::from_error_kind(i, ErrorKind::Eof))),
            }
        }
    )*};
}
be_uint!(be_u8: u8, be_u16: u16, be_u32: u32, be_u64: u64);

/// Fails with `what` truncated unless `i` holds at least `n` bytes; the plain-function form of
/// [`need`] for hot paths.
#[inline]
pub(crate) fn check(
    what: &'static str,
    n: usize,
    ofp: ErrorCode,
    i: In<'_>,
) -> Result<(), nom::Err<PError>> {
    if i.len() < n {
        return Err(nom::Err::Failure(PError(DecodeError::Truncated {
            what,
            need: n,
            have: i.len(),
            ofp,
        })));
    }
    Ok(())
}

/// The first `n` bytes, as a parser (nom's `take` without the generic input plumbing).
#[inline]
pub(crate) fn take<'a>(n: usize) -> impl Fn(In<'a>) -> PResult<'a, In<'a>> {
    move |i: In<'a>| match i.split_at_checked(n) {
        Some((first, rest)) => Ok((rest, first)),
        None => Err(nom::Err::Error(PError::from_error_kind(i, ErrorKind::Eof))),
    }
}
