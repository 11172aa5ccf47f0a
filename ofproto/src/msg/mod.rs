//! OpenFlow 1.3 messages: one file per message family, one [`Message`] enum.
//!
//! INTERFACE STUB: the ofproto-messages work fills this in.

use bytes::BytesMut;

use crate::error::DecodeError;
use crate::header::Header;

/// Every OpenFlow 1.3 message this crate speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Hello,
}

impl Message {
    /// Decodes one complete message (as framed by [`crate::header::frame_len`]).
    pub fn decode(frame: &[u8]) -> Result<(Header, Message), DecodeError> {
        let _ = frame;
        todo!("ofproto-messages")
    }

    /// Appends the message with the given xid; lengths and padding are computed here.
    pub fn encode(&self, xid: u32, buf: &mut BytesMut) {
        let _ = (xid, buf);
        todo!("ofproto-messages")
    }
}
