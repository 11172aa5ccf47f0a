//! A writer over a zero-filled byte slice, for the encoders on the hot path (matches, actions,
//! instructions, flow-mods). Writing fixed-size integers into a slice lets the compiler emit
//! plain stores, where `BytesMut`'s per-call capacity checks and `memcpy` calls cost several
//! times more; the caller sizes the slice once from `encoded_len()`.

use bytes::BytesMut;

pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    pos: usize,
}

impl<'a> Writer<'a> {
    /// `buf` must be zero-filled: padding is written by skipping.
    fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }

    /// Bytes written so far.
    pub(crate) fn len(&self) -> usize {
        self.pos
    }

    pub(crate) fn put_u8(&mut self, v: u8) {
        self.buf[self.pos] = v;
        self.pos += 1;
    }
    pub(crate) fn put_u16(&mut self, v: u16) {
        self.buf[self.pos..self.pos + 2].copy_from_slice(&v.to_be_bytes());
        self.pos += 2;
    }
    pub(crate) fn put_u32(&mut self, v: u32) {
        self.buf[self.pos..self.pos + 4].copy_from_slice(&v.to_be_bytes());
        self.pos += 4;
    }
    pub(crate) fn put_u64(&mut self, v: u64) {
        self.buf[self.pos..self.pos + 8].copy_from_slice(&v.to_be_bytes());
        self.pos += 8;
    }
    pub(crate) fn put_slice(&mut self, s: &[u8]) {
        self.buf[self.pos..self.pos + s.len()].copy_from_slice(s);
        self.pos += s.len();
    }
    /// `n` zero bytes (the slice is zero-filled already).
    pub(crate) fn put_zeros(&mut self, n: usize) {
        self.pos += n;
    }
    /// Overwrites a big-endian u16 at `at` (a length known only after the contents).
    pub(crate) fn patch_u16(&mut self, at: usize, v: u16) {
        self.buf[at..at + 2].copy_from_slice(&v.to_be_bytes());
    }
}

/// Appends `len` bytes to `buf` and lets `write` fill them through a [`Writer`].
pub(crate) fn append(buf: &mut BytesMut, len: usize, write: impl FnOnce(&mut Writer<'_>)) {
    let start = buf.len();
    buf.resize(start + len, 0);
    let mut w = Writer::new(&mut buf[start..]);
    write(&mut w);
    debug_assert_eq!(w.len(), len, "encoded_len disagrees with what was written");
}
