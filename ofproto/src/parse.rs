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
    need(what, n, ofp, nom::bytes::complete::take(n))
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

/// Applies `item` until the input is used up.
pub(crate) fn many_all<'a, T>(
    mut item: impl Parser<In<'a>, Output = T, Error = PError>,
    size_hint: usize,
) -> impl Parser<In<'a>, Output = Vec<T>, Error = PError> {
    move |mut i: In<'a>| {
        let mut out = Vec::with_capacity(i.len() / size_hint.max(1));
        while !i.is_empty() {
            let (rest, v) = item.parse(i)?;
            out.push(v);
            i = rest;
        }
        Ok((i, out))
    }
}
