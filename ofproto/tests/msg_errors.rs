//! Malformed messages give typed errors that map to the OpenFlow error a switch would send.

use bytes::BytesMut;
use ofproto::header::frame_len;
use ofproto::msg::{FlowMod, Message};
use ofproto::oxm::Match;
use ofproto::{DecodeError, ErrorCode};

fn name(e: &DecodeError) -> String {
    e.ofp_error().name()
}

fn flow_mod_bytes() -> Vec<u8> {
    let mut b = BytesMut::new();
    Message::FlowMod(FlowMod::add(0, 10, Match::new().in_port(1), vec![])).encode(7, &mut b);
    b.to_vec()
}

#[test]
fn truncated_message_is_bad_len() {
    let full = flow_mod_bytes();
    // The frame is shorter than its length field says.
    let e = Message::decode(&full[..full.len() - 8]).unwrap_err();
    assert_eq!(name(&e), "OFPBRC_BAD_LEN", "{e}");
    // The framer waits for the rest instead of erroring.
    assert_eq!(frame_len(&full[..full.len() - 8]).unwrap(), None);
    // Shorter than a header.
    assert_eq!(
        name(&Message::decode(&full[..5]).unwrap_err()),
        "OFPBRC_BAD_LEN"
    );
}

#[test]
fn over_long_message_is_bad_len() {
    // A barrier request whose length field claims a body it must not have.
    let mut b = vec![0x04, 20, 0, 16, 0, 0, 0, 1];
    b.extend([0u8; 8]);
    let e = Message::decode(&b).unwrap_err();
    assert_eq!(name(&e), "OFPBRC_BAD_LEN", "{e}");
    // A length below the header size cannot be framed at all.
    assert!(frame_len(&[0x04, 2, 0, 4, 0, 0, 0, 1]).is_err());
}

#[test]
fn bad_inner_lengths_map_to_their_family() {
    let mut b = flow_mod_bytes();
    // The match's length field (right after the 48-byte fixed part) made odd and too long.
    b[50..52].copy_from_slice(&0x00ffu16.to_be_bytes());
    let e = Message::decode(&b).unwrap_err();
    assert!(e.ofp_error().typ == 4, "a match error, got {e}");
    // An action whose length is not a multiple of 8, inside a packet-out.
    let mut po = vec![0x04, 13, 0, 0, 0, 0, 0, 1];
    po.extend(0xffff_ffffu32.to_be_bytes()); // buffer_id
    po.extend(1u32.to_be_bytes()); // in_port
    po.extend(16u16.to_be_bytes()); // actions_len
    po.extend([0u8; 6]);
    po.extend([0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0]); // output action, len 12
    let len = po.len() as u16;
    po[2..4].copy_from_slice(&len.to_be_bytes());
    let e = Message::decode(&po).unwrap_err();
    assert_eq!(name(&e), "OFPBAC_BAD_LEN", "{e}");
}

#[test]
fn bad_version_and_unknown_type() {
    let mut b = flow_mod_bytes();
    b[0] = 0x01;
    assert_eq!(Message::decode(&b).unwrap_err(), DecodeError::BadVersion(1));
    // HELLO of any version decodes: negotiation needs it.
    assert!(Message::decode(&[0x06, 0, 0, 8, 0, 0, 0, 1]).is_ok());
    // An unknown type is kept, not refused; the session answers it with OFPBRC_BAD_TYPE.
    let (_, m) = Message::decode(&[0x04, 99, 0, 12, 0, 0, 0, 1, 1, 2, 3, 4]).unwrap();
    assert_eq!(
        m,
        Message::Unknown {
            msg_type: 99,
            body: vec![1, 2, 3, 4]
        }
    );
    assert_eq!(
        ErrorCode::by_name("OFPBRC_BAD_TYPE"),
        Some(ErrorCode::new(1, 1))
    );
}
