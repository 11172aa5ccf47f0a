//! Nicira's NXT_PACKET_IN2 (a property list, with the controller action's userdata) and
//! NXT_SET_PACKET_IN_FORMAT, which asks Open vSwitch to send packet-ins that way.
//!
//! Both travel as [`Message::Experimenter`](super::Message::Experimenter) with Nicira's id;
//! [`PacketIn2::from_experimenter`] reads the first, [`set_packet_in_format`] builds the second.
//! A plain OFPT_PACKET_IN converts into the same [`PacketIn2`] (without userdata), so a
//! controller handles one type whatever the switch sent.

use bytes::BytesMut;

use crate::action::NX_VENDOR_ID;
use crate::error::DecodeError;
use crate::oxm::Match;
use crate::prop;

use super::wire::BAD_REQUEST_LEN;
use super::{Experimenter, Message, PacketIn};

/// NXT_SET_PACKET_IN_FORMAT's subtype.
pub const NXT_SET_PACKET_IN_FORMAT: u32 = 16;
/// NXT_PACKET_IN2's subtype.
pub const NXT_PACKET_IN2: u32 = 30;
/// `NXPIF_NXT_PACKET_IN2`: the packet-in format that carries userdata.
pub const NXPIF_NXT_PACKET_IN2: u32 = 2;
/// `OFP_NO_BUFFER`: the packet is in the message, not in a switch buffer.
pub const NO_BUFFER: u32 = 0xffff_ffff;

mod nxpint {
    pub const PACKET: u16 = 0;
    pub const FULL_LEN: u16 = 1;
    pub const BUFFER_ID: u16 = 2;
    pub const TABLE_ID: u16 = 3;
    pub const COOKIE: u16 = 4;
    pub const REASON: u16 = 5;
    pub const METADATA: u16 = 6;
    pub const USERDATA: u16 = 7;
    pub const CONTINUATION: u16 = 8;
}

/// A packet the switch sent to the controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketIn2 {
    /// `OFPR_*`: 0 no match (table miss), 1 controller action, 2 invalid TTL, ...
    pub reason: u8,
    pub table_id: u8,
    /// The cookie of the flow that sent it (all ones when none).
    pub cookie: u64,
    /// The packet's metadata: `in_port`, `metadata`, registers, tunnel and conntrack fields.
    pub match_: Match,
    /// The controller action's userdata (NXAST_CONTROLLER2), if it had any.
    pub userdata: Option<Vec<u8>>,
    /// The packet's full length (larger than `data` when truncated by `max_len`).
    pub total_len: u32,
    /// [`NO_BUFFER`] unless the switch kept the packet (Open vSwitch never does).
    pub buffer_id: u32,
    /// The packet, from its Ethernet header on.
    pub data: Vec<u8>,
    /// With `pause`: the switch's private state to resume the pipeline (NXT_RESUME).
    pub continuation: Option<Vec<u8>>,
}

const WHAT: &str = "nx_packet_in2";

impl PacketIn2 {
    /// The packet-in in `e` if it is an NXT_PACKET_IN2; `None` for another experimenter message.
    pub fn from_experimenter(e: &Experimenter) -> Option<Result<PacketIn2, DecodeError>> {
        (e.experimenter == NX_VENDOR_ID && e.exp_type == NXT_PACKET_IN2)
            .then(|| PacketIn2::decode_props(&e.data))
    }

    /// Decodes the property list of an NXT_PACKET_IN2 (what follows its experimenter header).
    pub fn decode_props(body: &[u8]) -> Result<PacketIn2, DecodeError> {
        let mut p = PacketIn2 {
            reason: 0,
            table_id: 0,
            cookie: u64::MAX,
            match_: Match::new(),
            userdata: None,
            total_len: 0,
            buffer_id: NO_BUFFER,
            data: Vec::new(),
            continuation: None,
        };
        let ofp = BAD_REQUEST_LEN;
        for pr in prop::props(body, WHAT, ofp)? {
            let v = pr.value;
            match pr.typ {
                nxpint::PACKET => p.data = v.to_vec(),
                nxpint::FULL_LEN => p.total_len = prop::be32(v, WHAT, ofp)?,
                nxpint::BUFFER_ID => p.buffer_id = prop::be32(v, WHAT, ofp)?,
                nxpint::TABLE_ID => p.table_id = prop::u8(v, WHAT, ofp)?,
                nxpint::COOKIE => p.cookie = prop::be64(v, WHAT, ofp)?,
                nxpint::REASON => p.reason = prop::u8(v, WHAT, ofp)?,
                nxpint::METADATA => p.match_ = Match::decode_fields(v)?,
                nxpint::USERDATA => p.userdata = Some(v.to_vec()),
                nxpint::CONTINUATION => p.continuation = Some(v.to_vec()),
                // Like OVS decoding loosely: a property from a newer switch is skipped.
                _ => {}
            }
        }
        if p.data.is_empty() {
            return Err(DecodeError::Invalid {
                what: WHAT,
                why: "no packet".into(),
                ofp,
            });
        }
        let len = p.data.len() as u32;
        if p.total_len == 0 {
            p.total_len = len;
        } else if p.total_len < len {
            return Err(DecodeError::Invalid {
                what: WHAT,
                why: format!("full_len {} below the packet's {len} bytes", p.total_len),
                ofp,
            });
        }
        Ok(p)
    }

    /// The NXT_PACKET_IN2 message, with properties in OVS's order (for tests and fakes).
    pub fn to_message(&self) -> Message {
        let mut b = BytesMut::new();
        prop::put(&mut b, nxpint::PACKET, &self.data);
        if self.total_len as usize != self.data.len() {
            prop::put(&mut b, nxpint::FULL_LEN, &self.total_len.to_be_bytes());
        }
        if self.buffer_id != NO_BUFFER {
            prop::put(&mut b, nxpint::BUFFER_ID, &self.buffer_id.to_be_bytes());
        }
        prop::put(&mut b, nxpint::TABLE_ID, &[self.table_id]);
        if self.cookie != u64::MAX {
            prop::put(&mut b, nxpint::COOKIE, &prop::be64_value(self.cookie));
        }
        prop::put(&mut b, nxpint::REASON, &[self.reason]);
        let mut m = BytesMut::new();
        for f in &self.match_.fields {
            f.encode(&mut m);
        }
        prop::put(&mut b, nxpint::METADATA, &m);
        if let Some(u) = &self.userdata {
            prop::put(&mut b, nxpint::USERDATA, u);
        }
        if let Some(c) = &self.continuation {
            prop::put(&mut b, nxpint::CONTINUATION, c);
        }
        Message::Experimenter(Experimenter {
            experimenter: NX_VENDOR_ID,
            exp_type: NXT_PACKET_IN2,
            data: b.to_vec(),
        })
    }
}

impl From<PacketIn> for PacketIn2 {
    fn from(p: PacketIn) -> Self {
        PacketIn2 {
            reason: p.reason,
            table_id: p.table_id,
            cookie: p.cookie,
            match_: p.match_,
            userdata: None,
            total_len: u32::from(p.total_len),
            buffer_id: p.buffer_id,
            data: p.data,
            continuation: None,
        }
    }
}

/// NXT_SET_PACKET_IN_FORMAT asking for NXT_PACKET_IN2 (so that packet-ins carry userdata).
pub fn set_packet_in_format() -> Message {
    Message::Experimenter(Experimenter {
        experimenter: NX_VENDOR_ID,
        exp_type: NXT_SET_PACKET_IN_FORMAT,
        data: NXPIF_NXT_PACKET_IN2.to_be_bytes().to_vec(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oxm::Field;

    fn sample() -> PacketIn2 {
        PacketIn2 {
            reason: 1,
            table_id: 7,
            cookie: 0x1234,
            match_: Match::new()
                .in_port(3)
                .reg(0, 0x42)
                .with(Field::Metadata, 9),
            userdata: Some(vec![1, 2, 3, 4, 5]),
            total_len: 60,
            buffer_id: NO_BUFFER,
            data: vec![0xab; 60],
            continuation: None,
        }
    }

    #[test]
    fn round_trips_through_the_experimenter_message() {
        let p = sample();
        let bytes = p.to_message().to_bytes(5);
        let (_, m) = Message::decode(&bytes).unwrap();
        let Message::Experimenter(e) = m else {
            panic!("{m:?}")
        };
        assert_eq!(PacketIn2::from_experimenter(&e).unwrap().unwrap(), p);
    }

    #[test]
    fn refuses_what_ovs_refuses_and_never_panics() {
        // No packet.
        assert!(PacketIn2::decode_props(&[0, 3, 0, 5, 7, 0, 0, 0]).is_err());
        // A property overrunning its list.
        assert!(PacketIn2::decode_props(&[0, 0, 0, 40, 1, 2, 3, 4]).is_err());
        // full_len below the packet's length.
        let mut p = sample();
        p.total_len = 10;
        let Message::Experimenter(e) = p.to_message() else {
            unreachable!()
        };
        assert!(PacketIn2::decode_props(&e.data).is_err());
        for n in 0..e.data.len() {
            let _ = PacketIn2::decode_props(&e.data[..n]);
        }
    }
}
