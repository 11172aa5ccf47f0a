//! What the nom decoders share: the length error, fixed strings, and `Reader`, a cut of one
//! message body that the family decoders' `decode(&mut Reader)` entry points take (they hand
//! its bytes to their nom parser).

use crate::error::{DecodeError, ErrorCode};

/// OFPET_BAD_REQUEST / OFPBRC_BAD_LEN: what a switch answers to a message of the wrong length.
pub(crate) const BAD_REQUEST_LEN: ErrorCode = ErrorCode::new(1, 6);

pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], what: &'static str) -> Self {
        Reader { buf, pos: 0, what }
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.buf.len() - self.pos < n {
            return Err(DecodeError::Truncated {
                what: self.what,
                need: self.pos + n,
                have: self.buf.len(),
                ofp: BAD_REQUEST_LEN,
            });
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// Everything not read yet.
    pub(crate) fn rest(&mut self) -> &'a [u8] {
        let s = &self.buf[self.pos..];
        self.pos = self.buf.len();
        s
    }
}

/// A length field that cannot be right (below the fixed part, or beyond the data).
pub(crate) fn bad_len(what: &'static str, len: usize, why: &'static str) -> DecodeError {
    DecodeError::BadLength {
        what,
        len,
        why,
        ofp: BAD_REQUEST_LEN,
    }
}

/// Reads a NUL-padded fixed-size string field.
pub(crate) fn fixed_str(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// Writes `s` into a NUL-padded field of `n` bytes (truncating, keeping a final NUL).
pub(crate) fn put_fixed_str(buf: &mut bytes::BytesMut, s: &str, n: usize) {
    use bytes::BufMut;
    let b = s.as_bytes();
    let len = b.len().min(n - 1);
    buf.put_slice(&b[..len]);
    buf.put_bytes(0, n - len);
}
