//! Matches: `ofp_match` (OXM type) and the OXM/NXM fields, OpenFlow 1.3 basic fields plus the
//! Nicira/OVS fields the pipeline needs.
//!
//! INTERFACE STUB: the ofproto-match work fills this in; the signatures below are what the
//! message codecs call.

use bytes::BytesMut;

use crate::error::DecodeError;

/// One match field with its value and optional mask.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatchField {
    InPort(u32),
}

/// `ofp_match` of type OFPMT_OXM: a list of OXM TLVs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Match {
    pub fields: Vec<MatchField>,
}

impl Match {
    /// Decodes an `ofp_match` at the start of `input`; returns it and the bytes it took,
    /// padding to a multiple of 8 included.
    pub fn decode(input: &[u8]) -> Result<(Match, usize), DecodeError> {
        let _ = input;
        todo!("ofproto-match")
    }

    /// Appends the `ofp_match`, padding included.
    pub fn encode(&self, buf: &mut BytesMut) {
        let _ = buf;
        todo!("ofproto-match")
    }

    /// Bytes [`Match::encode`] writes, padding included.
    pub fn encoded_len(&self) -> usize {
        todo!("ofproto-match")
    }
}
