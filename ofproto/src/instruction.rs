//! Instructions: goto_table, write_metadata, write/apply/clear actions, meter.
//!
//! INTERFACE STUB: the ofproto-match work fills this in; the signatures below are what the
//! message codecs call.

use bytes::BytesMut;

use crate::action::Action;
use crate::error::DecodeError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Instruction {
    ApplyActions(Vec<Action>),
}

impl Instruction {
    /// Decodes a whole instruction list: all of `input` is instructions.
    pub fn decode_list(input: &[u8]) -> Result<Vec<Instruction>, DecodeError> {
        let _ = input;
        todo!("ofproto-match")
    }

    pub fn encode_list(instructions: &[Instruction], buf: &mut BytesMut) {
        let _ = (instructions, buf);
        todo!("ofproto-match")
    }

    pub fn list_len(instructions: &[Instruction]) -> usize {
        let _ = instructions;
        todo!("ofproto-match")
    }
}
