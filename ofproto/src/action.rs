//! Actions: OpenFlow 1.3 actions and the Nicira extension actions.
//!
//! INTERFACE STUB: the ofproto-match work fills this in; the signatures below are what the
//! message codecs call.

use bytes::BytesMut;

use crate::error::DecodeError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Output { port: u32, max_len: u16 },
}

impl Action {
    /// Decodes a whole action list: all of `input` is actions.
    pub fn decode_list(input: &[u8]) -> Result<Vec<Action>, DecodeError> {
        let _ = input;
        todo!("ofproto-match")
    }

    pub fn encode_list(actions: &[Action], buf: &mut BytesMut) {
        let _ = (actions, buf);
        todo!("ofproto-match")
    }

    /// Bytes [`Action::encode_list`] writes.
    pub fn list_len(actions: &[Action]) -> usize {
        let _ = actions;
        todo!("ofproto-match")
    }
}
