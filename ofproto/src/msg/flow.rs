//! Flow messages: FLOW_MOD, FLOW_REMOVED, PACKET_IN, PACKET_OUT.

use bytes::{BufMut, BytesMut};

use nom::combinator::rest;
use nom::Parser;

use super::wire::{bad_len, BAD_REQUEST_LEN};
use crate::action::Action;
use crate::error::{DecodeError, ErrorCode};
use crate::header::code_table;
use crate::instruction::Instruction;
use crate::oxm::Match;
use crate::parse::{
    all, be_u16, be_u32, be_u64, be_u8, bytes, check, fail, lift, need, take, In, PResult,
};

/// `OFP_NO_BUFFER`.
pub const NO_BUFFER: u32 = 0xffff_ffff;
/// `OFPP_ANY`, `OFPG_ANY`.
pub const ANY: u32 = 0xffff_ffff;

code_table! {
    /// `ofp_flow_mod_command`.
    pub enum FlowModCommand: u8 {
        Add = 0,
        Modify = 1,
        ModifyStrict = 2,
        Delete = 3,
        DeleteStrict = 4,
    }
}

/// `ofp_flow_mod_flags` bits.
pub mod flow_flags {
    pub const SEND_FLOW_REM: u16 = 1 << 0;
    pub const CHECK_OVERLAP: u16 = 1 << 1;
    pub const RESET_COUNTS: u16 = 1 << 2;
    pub const NO_PKT_COUNTS: u16 = 1 << 3;
    pub const NO_BYT_COUNTS: u16 = 1 << 4;
    /// Names in the order OVS prints them.
    pub const NAMES: [(u16, &str); 5] = [
        (SEND_FLOW_REM, "send_flow_rem"),
        (CHECK_OVERLAP, "check_overlap"),
        (RESET_COUNTS, "reset_counts"),
        (NO_PKT_COUNTS, "no_packet_counts"),
        (NO_BYT_COUNTS, "no_byte_counts"),
    ];
}

/// OFPT_FLOW_MOD.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FlowMod {
    pub cookie: u64,
    pub cookie_mask: u64,
    pub table_id: u8,
    pub command: FlowModCommand,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub priority: u16,
    pub buffer_id: u32,
    pub out_port: u32,
    pub out_group: u32,
    pub flags: u16,
    pub match_: Match,
    pub instructions: Vec<Instruction>,
}

impl FlowMod {
    /// An ADD of `match_` → `instructions` at `priority` in `table_id`, defaults elsewhere.
    pub fn add(table_id: u8, priority: u16, match_: Match, instructions: Vec<Instruction>) -> Self {
        FlowMod {
            cookie: 0,
            cookie_mask: 0,
            table_id,
            command: FlowModCommand::Add,
            idle_timeout: 0,
            hard_timeout: 0,
            priority,
            buffer_id: NO_BUFFER,
            out_port: ANY,
            out_group: ANY,
            flags: 0,
            match_,
            instructions,
        }
    }

    /// A DELETE (non-strict) of every flow whose cookie matches `cookie`/`mask`, in every table.
    pub fn delete_by_cookie(cookie: u64, mask: u64) -> Self {
        FlowMod {
            cookie,
            cookie_mask: mask,
            table_id: 0xff,
            command: FlowModCommand::Delete,
            ..FlowMod::add(0, 0, Match::default(), vec![])
        }
    }

    pub(crate) fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        all(body, flow_mod)
    }

    pub(crate) fn encode(&self, buf: &mut BytesMut) {
        crate::writer::append(buf, self.body_len(), |w| self.write(w));
    }

    pub(crate) fn write(&self, buf: &mut crate::writer::Writer<'_>) {
        buf.put_u64(self.cookie);
        buf.put_u64(self.cookie_mask);
        buf.put_u8(self.table_id);
        buf.put_u8(self.command.into());
        buf.put_u16(self.idle_timeout);
        buf.put_u16(self.hard_timeout);
        buf.put_u16(self.priority);
        buf.put_u32(self.buffer_id);
        buf.put_u32(self.out_port);
        buf.put_u32(self.out_group);
        buf.put_u16(self.flags);
        buf.put_u16(0);
        self.match_.write(buf);
        Instruction::write_list(&self.instructions, buf);
    }

    pub(crate) fn body_len(&self) -> usize {
        40 + self.match_.encoded_len() + Instruction::list_len(&self.instructions)
    }
}

/// OFPT_FLOW_REMOVED.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowRemoved {
    pub cookie: u64,
    pub priority: u16,
    /// OFPRR_IDLE_TIMEOUT 0, HARD_TIMEOUT 1, DELETE 2, GROUP_DELETE 3, METER_DELETE 4.
    pub reason: u8,
    pub table_id: u8,
    pub duration_sec: u32,
    pub duration_nsec: u32,
    pub idle_timeout: u16,
    pub hard_timeout: u16,
    pub packet_count: u64,
    pub byte_count: u64,
    pub match_: Match,
}

impl FlowRemoved {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        all(body, flow_removed)
    }

    pub(crate) fn encode(&self, buf: &mut BytesMut) {
        buf.put_u64(self.cookie);
        buf.put_u16(self.priority);
        buf.put_u8(self.reason);
        buf.put_u8(self.table_id);
        buf.put_u32(self.duration_sec);
        buf.put_u32(self.duration_nsec);
        buf.put_u16(self.idle_timeout);
        buf.put_u16(self.hard_timeout);
        buf.put_u64(self.packet_count);
        buf.put_u64(self.byte_count);
        self.match_.encode(buf);
    }
}

/// OFPT_PACKET_IN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketIn {
    pub buffer_id: u32,
    pub total_len: u16,
    /// OFPR_NO_MATCH 0, ACTION 1, INVALID_TTL 2.
    pub reason: u8,
    pub table_id: u8,
    pub cookie: u64,
    pub match_: Match,
    pub data: Vec<u8>,
}

impl PacketIn {
    pub(crate) fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        all(body, packet_in)
    }

    pub(crate) fn encode(&self, buf: &mut BytesMut) {
        buf.put_u32(self.buffer_id);
        buf.put_u16(self.total_len);
        buf.put_u8(self.reason);
        buf.put_u8(self.table_id);
        buf.put_u64(self.cookie);
        self.match_.encode(buf);
        buf.put_u16(0);
        buf.put_slice(&self.data);
    }
}

/// OFPT_PACKET_OUT.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketOut {
    pub buffer_id: u32,
    pub in_port: u32,
    pub actions: Vec<Action>,
    pub data: Vec<u8>,
}

impl PacketOut {
    /// A packet-out of `data` (from its Ethernet header on), not from a switch buffer
    /// (`OFP_NO_BUFFER`), as if received on `in_port` (`OFPP_CONTROLLER`, 0xfffffffd, for none),
    /// running `actions` (`output:TABLE`, 0xfffffff9, sends it through the pipeline).
    pub fn new(in_port: u32, actions: Vec<Action>, data: Vec<u8>) -> PacketOut {
        PacketOut {
            buffer_id: super::NO_BUFFER,
            in_port,
            actions,
            data,
        }
    }

    pub(crate) fn decode(body: &[u8]) -> Result<Self, DecodeError> {
        all(body, packet_out)
    }

    pub(crate) fn encode(&self, buf: &mut BytesMut) {
        buf.put_u32(self.buffer_id);
        buf.put_u32(self.in_port);
        buf.put_u16(Action::list_len(&self.actions) as u16);
        buf.put_bytes(0, 6);
        Action::encode_list(&self.actions, buf);
        buf.put_slice(&self.data);
    }
}

fn flow_mod(i: In<'_>) -> PResult<'_, FlowMod> {
    check("ofp_flow_mod", 40, BAD_REQUEST_LEN, i)?;
    let (i, cookie) = be_u64(i)?;
    let (i, cookie_mask) = be_u64(i)?;
    let (i, table_id) = be_u8(i)?;
    let (i, command) = be_u8(i)?;
    let command = FlowModCommand::from(command);
    if let FlowModCommand::Unknown(c) = command {
        return fail(DecodeError::Invalid {
            what: "ofp_flow_mod",
            why: format!("unknown command {c}"),
            ofp: ErrorCode::new(5, 6), // OFPFMFC_BAD_COMMAND
        });
    }
    let (i, idle_timeout) = be_u16(i)?;
    let (i, hard_timeout) = be_u16(i)?;
    let (i, priority) = be_u16(i)?;
    let (i, buffer_id) = be_u32(i)?;
    let (i, out_port) = be_u32(i)?;
    let (i, out_group) = be_u32(i)?;
    let (i, flags) = be_u16(i)?;
    let (i, _) = take(2)(i)?;
    let (i, match_) = crate::oxm::ofp_match(i)?;
    let (i, instructions) = crate::instruction::instruction_list(i)?;
    Ok((
        i,
        FlowMod {
            cookie,
            cookie_mask,
            table_id,
            command,
            idle_timeout,
            hard_timeout,
            priority,
            buffer_id,
            out_port,
            out_group,
            flags,
            match_,
            instructions,
        },
    ))
}

fn flow_removed(i: In<'_>) -> PResult<'_, FlowRemoved> {
    let (i, (cookie, priority, reason, table_id, duration_sec, duration_nsec)) = need(
        "ofp_flow_removed",
        40,
        BAD_REQUEST_LEN,
        (be_u64, be_u16, be_u8, be_u8, be_u32, be_u32),
    )
    .parse(i)?;
    let (i, (idle_timeout, hard_timeout, packet_count, byte_count)) =
        (be_u16, be_u16, be_u64, be_u64).parse(i)?;
    let (rest, match_) = crate::oxm::ofp_match(i)?;
    if !rest.is_empty() {
        return fail(bad_len(
            "ofp_flow_removed",
            i.len(),
            "bytes after the match",
        ));
    }
    Ok((
        rest,
        FlowRemoved {
            cookie,
            priority,
            reason,
            table_id,
            duration_sec,
            duration_nsec,
            idle_timeout,
            hard_timeout,
            packet_count,
            byte_count,
            match_,
        },
    ))
}

fn packet_in(i: In<'_>) -> PResult<'_, PacketIn> {
    let (i, (buffer_id, total_len, reason, table_id, cookie)) = need(
        "ofp_packet_in",
        16,
        BAD_REQUEST_LEN,
        (be_u32, be_u16, be_u8, be_u8, be_u64),
    )
    .parse(i)?;
    let (i, match_) = crate::oxm::ofp_match(i)?;
    let (i, _) = bytes("ofp_packet_in", 2, BAD_REQUEST_LEN).parse(i)?;
    let (i, data) = rest(i)?;
    Ok((
        i,
        PacketIn {
            buffer_id,
            total_len,
            reason,
            table_id,
            cookie,
            match_,
            data: data.to_vec(),
        },
    ))
}

fn packet_out(i: In<'_>) -> PResult<'_, PacketOut> {
    let (i, (buffer_id, in_port, actions_len, _)) = need(
        "ofp_packet_out",
        16,
        BAD_REQUEST_LEN,
        (be_u32, be_u32, be_u16, take(6usize)),
    )
    .parse(i)?;
    let actions_len = actions_len as usize;
    if actions_len > i.len() {
        return fail(bad_len(
            "ofp_packet_out",
            actions_len,
            "actions_len overruns the message",
        ));
    }
    let (i, actions) = take(actions_len).parse(i)?;
    let actions = lift(Action::decode_list(actions))?;
    let (i, data) = rest(i)?;
    Ok((
        i,
        PacketOut {
            buffer_id,
            in_port,
            actions,
            data: data.to_vec(),
        },
    ))
}
