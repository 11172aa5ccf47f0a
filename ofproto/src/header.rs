//! The 8-byte OpenFlow header, the message-type code table, and framing.
//!
//! Framing comes first (as in h2): [`frame_len`] looks only at the header and says how many bytes
//! the next message takes, so that message decoders always see one complete message and
//! "incomplete" never leaks past this file.

use bytes::BufMut;

use crate::error::{DecodeError, ErrorCode};

/// OpenFlow 1.3's wire version.
pub const OFP13_VERSION: u8 = 0x04;
/// Size of `ofp_header`.
pub const HEADER_LEN: usize = 8;

/// Declares a code table once: the enum with an `Unknown` variant, and both conversions.
/// Unknown codes never make parsing fail; they print as hex.
macro_rules! code_table {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident : $repr:ty {
            $( $(#[$vmeta:meta])* $variant:ident = $value:expr ),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A code this crate does not know; kept so that it round-trips.
            Unknown($repr),
        }

        impl From<$repr> for $name {
            fn from(v: $repr) -> Self {
                match v {
                    $( $value => $name::$variant, )*
                    other => $name::Unknown(other),
                }
            }
        }

        impl From<$name> for $repr {
            fn from(v: $name) -> $repr {
                match v {
                    $( $name::$variant => $value, )*
                    $name::Unknown(other) => other,
                }
            }
        }
    };
}
pub(crate) use code_table;

code_table! {
    /// `ofp_type`: the message types of OpenFlow 1.3.
    pub enum MsgType: u8 {
        Hello = 0,
        Error = 1,
        EchoRequest = 2,
        EchoReply = 3,
        Experimenter = 4,
        FeaturesRequest = 5,
        FeaturesReply = 6,
        GetConfigRequest = 7,
        GetConfigReply = 8,
        SetConfig = 9,
        PacketIn = 10,
        FlowRemoved = 11,
        PortStatus = 12,
        PacketOut = 13,
        FlowMod = 14,
        GroupMod = 15,
        PortMod = 16,
        TableMod = 17,
        MultipartRequest = 18,
        MultipartReply = 19,
        BarrierRequest = 20,
        BarrierReply = 21,
        QueueGetConfigRequest = 22,
        QueueGetConfigReply = 23,
        RoleRequest = 24,
        RoleReply = 25,
        GetAsyncRequest = 26,
        GetAsyncReply = 27,
        SetAsync = 28,
        MeterMod = 29,
    }
}

/// `ofp_header`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub version: u8,
    pub msg_type: MsgType,
    /// Length of the whole message, header included.
    pub length: u16,
    pub xid: u32,
}

impl Header {
    /// Reads a header from the first 8 bytes of `input`. Does not check the version: HELLO must
    /// be readable whatever version the peer speaks.
    pub fn parse(input: &[u8]) -> Result<Header, DecodeError> {
        if input.len() < HEADER_LEN {
            return Err(DecodeError::Truncated {
                what: "ofp_header",
                need: HEADER_LEN,
                have: input.len(),
                ofp: ErrorCode::new(1, 6), // OFPET_BAD_REQUEST / OFPBRC_BAD_LEN
            });
        }
        Ok(Header {
            version: input[0],
            msg_type: MsgType::from(input[1]),
            length: u16::from_be_bytes([input[2], input[3]]),
            xid: u32::from_be_bytes([input[4], input[5], input[6], input[7]]),
        })
    }

    pub fn encode(&self, buf: &mut impl BufMut) {
        buf.put_u8(self.version);
        buf.put_u8(self.msg_type.into());
        buf.put_u16(self.length);
        buf.put_u32(self.xid);
    }
}

/// How many bytes the message at the start of `input` takes: `Ok(None)` when more bytes are
/// needed to know or to have it all, `Ok(Some(n))` when `input[..n]` is one complete message.
/// A length below the header's own size is an error: the stream cannot be resynchronised.
pub fn frame_len(input: &[u8]) -> Result<Option<usize>, DecodeError> {
    if input.len() < HEADER_LEN {
        return Ok(None);
    }
    let len = u16::from_be_bytes([input[2], input[3]]) as usize;
    if len < HEADER_LEN {
        return Err(DecodeError::BadLength {
            what: "ofp_header",
            len,
            why: "shorter than the 8-byte header",
            ofp: ErrorCode::new(1, 6),
        });
    }
    Ok((input.len() >= len).then_some(len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_only_whole_messages() {
        let hello = [
            0x04, 0x00, 0x00, 0x10, 0, 0, 0, 1, 0, 1, 0, 8, 0, 0, 0, 0x10,
        ];
        assert_eq!(frame_len(&hello[..7]), Ok(None));
        assert_eq!(frame_len(&hello[..15]), Ok(None));
        assert_eq!(frame_len(&hello), Ok(Some(16)));
        let bad = [0x04, 0x00, 0x00, 0x04, 0, 0, 0, 1];
        assert!(frame_len(&bad).is_err());
    }

    #[test]
    fn msg_type_table_round_trips_unknown_codes() {
        assert_eq!(MsgType::from(14), MsgType::FlowMod);
        assert_eq!(MsgType::from(200), MsgType::Unknown(200));
        assert_eq!(u8::from(MsgType::Unknown(200)), 200);
    }
}
