//! Matches: `ofp_match` (OXM type) and its fields, the OpenFlow 1.3 basic fields plus the
//! Nicira/OVS fields the pipeline needs (registers, tunnel metadata, conntrack, conj_id).
//!
//! Every field is declared once in [`fields!`]: its OXM/NXM class and number, width, whether it
//! may carry a mask, its prerequisites and how OVS spells and prints it. A value lives in a
//! `u128` with the field's width, so no field needs the heap and encoding stays cheap.

use std::net::Ipv4Addr;

use bytes::BytesMut;

use crate::error::{DecodeError, ErrorCode};
use crate::writer::Writer;

/// OXM class numbers.
pub mod class {
    pub const NXM_0: u16 = 0x0000;
    pub const NXM_1: u16 = 0x0001;
    pub const OPENFLOW_BASIC: u16 = 0x8000;
    pub const PACKET_REGS: u16 = 0x8001;
    pub const EXPERIMENTER: u16 = 0xffff;
}

const OFPET_BAD_MATCH: u16 = 4;
const BAD_LEN: ErrorCode = ErrorCode::new(OFPET_BAD_MATCH, 1);
const BAD_VALUE: ErrorCode = ErrorCode::new(OFPET_BAD_MATCH, 7);
const BAD_MASK: ErrorCode = ErrorCode::new(OFPET_BAD_MATCH, 8);
const BAD_PREREQ: ErrorCode = ErrorCode::new(OFPET_BAD_MATCH, 9);
const DUP_FIELD: ErrorCode = ErrorCode::new(OFPET_BAD_MATCH, 10);
const BAD_TYPE: ErrorCode = ErrorCode::new(OFPET_BAD_MATCH, 0);

mod codec;
mod field;
mod matching;
#[cfg(test)]
mod tests;

pub use crate::print::oxm::{port_name, CHex};
pub use codec::*;
pub use field::*;
pub(crate) use matching::ofp_match;
pub use matching::*;
