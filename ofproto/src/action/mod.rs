//! Actions: the OpenFlow 1.3 actions and the Nicira extension actions the pipeline needs
//! (resubmit, move/load, ct with nat, conjunction, note, controller, dec_ttl, output_reg).
//!
//! Unknown action types and unknown Nicira subtypes are kept raw and re-encode byte for byte.

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::BytesMut;

use crate::error::{DecodeError, ErrorCode};
use crate::oxm::{Field, FieldMatch, MatchField, OxmHeader};
use crate::writer::Writer;

/// Nicira's experimenter id, used by OVS's extension actions.
pub const NX_VENDOR_ID: u32 = 0x0000_2320;
/// `OFPP_IN_PORT`, the default `in_port` of resubmit (16-bit form in Nicira actions).
pub const NX_IN_PORT: u16 = 0xfff8;
/// `NX_CT_RECIRC_NONE`: ct without recirculation.
pub const CT_RECIRC_NONE: u8 = 0xff;

pub(crate) const OFPET_BAD_ACTION: u16 = 2;
pub(crate) const BAD_LEN: ErrorCode = ErrorCode::new(OFPET_BAD_ACTION, 1);
pub(crate) const BAD_ARGUMENT: ErrorCode = ErrorCode::new(OFPET_BAD_ACTION, 5);
pub(crate) const BAD_SET_ARGUMENT: ErrorCode = ErrorCode::new(OFPET_BAD_ACTION, 15);
pub(crate) const UNSUPPORTED_ORDER: ErrorCode = ErrorCode::new(OFPET_BAD_ACTION, 11);

pub(crate) mod at {
    pub const OUTPUT: u16 = 0;
    pub const COPY_TTL_OUT: u16 = 11;
    pub const COPY_TTL_IN: u16 = 12;
    pub const SET_MPLS_TTL: u16 = 15;
    pub const DEC_MPLS_TTL: u16 = 16;
    pub const PUSH_VLAN: u16 = 17;
    pub const POP_VLAN: u16 = 18;
    pub const PUSH_MPLS: u16 = 19;
    pub const POP_MPLS: u16 = 20;
    pub const SET_QUEUE: u16 = 21;
    pub const GROUP: u16 = 22;
    pub const SET_NW_TTL: u16 = 23;
    pub const DEC_NW_TTL: u16 = 24;
    pub const SET_FIELD: u16 = 25;
    pub const PUSH_PBB: u16 = 26;
    pub const POP_PBB: u16 = 27;
    pub const EXPERIMENTER: u16 = 0xffff;
}

pub(crate) mod nxast {
    pub const RESUBMIT: u16 = 1;
    pub const REG_MOVE: u16 = 6;
    pub const REG_LOAD: u16 = 7;
    pub const NOTE: u16 = 8;
    pub const RESUBMIT_TABLE: u16 = 14;
    pub const OUTPUT_REG: u16 = 15;
    pub const CONTROLLER: u16 = 20;
    pub const DEC_TTL_CNT_IDS: u16 = 21;
    pub const REG_LOAD2: u16 = 33;
    pub const CONJUNCTION: u16 = 34;
    pub const CT: u16 = 35;
    pub const NAT: u16 = 36;
    pub const CT_CLEAR: u16 = 43;
    pub const CONTROLLER2: u16 = 37;
}

/// One action.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    Output {
        port: u32,
        max_len: u16,
    },
    CopyTtlOut,
    CopyTtlIn,
    SetMplsTtl(u8),
    DecMplsTtl,
    PushVlan(u16),
    PopVlan,
    PushMpls(u16),
    PopMpls(u16),
    SetQueue(u32),
    Group(u32),
    SetNwTtl(u8),
    DecNwTtl,
    /// Set-Field with one OXM (no mask in OpenFlow 1.3).
    SetField(MatchField),
    PushPbb(u16),
    PopPbb,
    /// Nicira resubmit: `table` None resubmits to the current table.
    Resubmit {
        in_port: u16,
        table: Option<u8>,
    },
    /// Nicira reg_move: copies `src` to `dst` (same number of bits).
    Move {
        src: FieldRange,
        dst: FieldRange,
    },
    /// Nicira reg_load: loads `value` into `dst`.
    Load {
        dst: FieldRange,
        value: u64,
    },
    /// Nicira reg_load2: a set_field that may carry a mask.
    Load2(MatchField),
    Note(Vec<u8>),
    OutputReg {
        src: FieldRange,
        max_len: u16,
    },
    /// Nicira dec_ttl with the controller ids to notify (`dec_ttl(1,2)`). Plain `dec_ttl` is
    /// [`Action::DecNwTtl`]: OVS accepts Nicira's own plain form only in OpenFlow 1.0.
    DecTtl {
        controller_ids: Vec<u16>,
    },
    Controller {
        max_len: u16,
        controller_id: u16,
        reason: u8,
    },
    /// NXAST_CONTROLLER2: the controller action with userdata, pause or a meter.
    Controller2(Controller2),
    Conjunction {
        id: u32,
        clause: u8,
        n_clauses: u8,
    },
    Ct(Ct),
    Nat(Nat),
    CtClear,
    /// An experimenter action this crate does not know; `body` follows the experimenter id.
    Experimenter {
        experimenter: u32,
        body: Vec<u8>,
    },
    /// An action type this crate does not know; `body` follows the 4-byte type/length header.
    Unknown {
        typ: u16,
        body: Vec<u8>,
    },
}

pub(crate) mod codec;
pub(crate) mod controller;
pub(crate) mod ct;
pub(crate) mod decode;
pub(crate) mod field_range;
#[cfg(test)]
pub(crate) mod tests;

pub use crate::print::action::{packet_in_reason, ActionList};
pub(crate) use codec::*;
pub use controller::*;
pub use ct::*;
pub(crate) use decode::action_list;
pub use field_range::*;
