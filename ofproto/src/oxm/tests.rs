use super::*;

fn roundtrip(m: &Match) -> Vec<u8> {
    let mut buf = BytesMut::from(&[0xa5u8; 3][..]);
    m.encode(&mut buf);
    assert_eq!(buf.len() - 3, m.encoded_len());
    let (back, n) = Match::decode(&buf[3..]).unwrap();
    assert_eq!(n, m.encoded_len());
    assert_eq!(&back, m);
    buf[3..].to_vec()
}

#[test]
fn decodes_ovs_flow_mod_match_and_prints_like_ovs() {
    // The match of the "OFPT_FLOW_MOD - OF1.3 - flags" vector of OVS's ofp-print tests.
    let hex = "000100428000000400000001800008065054000000068000060650540000000580000a02080680000c02000080002a02000280002c04c0a8000280002e04c0a80001000000000000";
    let bytes = hex_to_bytes(hex);
    let (m, n) = Match::decode(&bytes).unwrap();
    assert_eq!(n, 0x48);
    assert_eq!(
        m.to_string(),
        "arp,in_port=1,vlan_tci=0x0000/0x1fff,dl_src=50:54:00:00:00:06,dl_dst=50:54:00:00:00:05,arp_spa=192.168.0.2,arp_tpa=192.168.0.1,arp_op=2"
    );
    assert_eq!(roundtrip(&m), bytes);
    m.validate().unwrap();
}

#[test]
fn builds_a_pipeline_match() {
    let m = Match::new()
        .in_port(3)
        .eth_type(0x0800)
        .ip_proto(6)
        .ipv4_src(Ipv4Addr::new(10, 1, 0, 0), 24)
        .with(Field::TcpDst, 80)
        .reg_masked(3, 5, 0xff)
        .ct_state(
            ct_state::TRK | ct_state::NEW,
            ct_state::TRK | ct_state::NEW | ct_state::EST,
        );
    m.validate().unwrap();
    assert_eq!(
        m.to_string(),
        "ct_state=+new-est+trk,tcp,reg3=0x5/0xff,in_port=3,nw_src=10.1.0.0/24,tp_dst=80"
    );
    roundtrip(&m);
}

#[test]
fn refuses_what_a_switch_refuses() {
    // tcp_dst without ip_proto.
    let m = Match::new().eth_type(0x0800).with(Field::TcpDst, 80);
    assert_eq!(m.validate().unwrap_err().ofp_error(), BAD_PREREQ);
    // Duplicate field.
    let m = Match::new().in_port(1).in_port(2);
    assert_eq!(m.validate().unwrap_err().ofp_error(), DUP_FIELD);
    // Mask on a field that cannot be masked.
    assert_eq!(
        FieldMatch::masked(Field::EthType, 0x800, 0xff00)
            .unwrap_err()
            .ofp_error(),
        BAD_MASK
    );
    // Value wider than the field.
    assert_eq!(
        FieldMatch::exact(Field::CtZone, 0x1_0000)
            .unwrap_err()
            .ofp_error(),
        BAD_VALUE
    );
    // Wrong OXM length for the field (in_port with 2 bytes).
    let bad = hex_to_bytes("0001000a80000002000100000000000000");
    assert_eq!(Match::decode(&bad).unwrap_err().ofp_error(), BAD_LEN);
    // Field overrunning the match.
    let bad = hex_to_bytes("0001000c8000000400000000");
    assert!(Match::decode(&bad).is_err());
    // Not an OXM match.
    let bad = hex_to_bytes("0000000400000000");
    assert_eq!(Match::decode(&bad).unwrap_err().ofp_error(), BAD_TYPE);
}

#[test]
fn unknown_fields_survive() {
    // Experimenter OXM (ONF, tcp_flags 42) and an unknown NXM_1 field (tun_gbp_id 38).
    let hex = "00010014ffff54064f4e4600001200014c02000100000000";
    let bytes = hex_to_bytes(hex);
    let (m, n) = Match::decode(&bytes).unwrap();
    assert_eq!(n, bytes.len());
    assert!(matches!(m.fields[0], MatchField::Unknown(_)));
    let mut buf = BytesMut::new();
    m.encode(&mut buf);
    assert_eq!(&buf[..], &bytes[..n]);
}

#[test]
fn nicira_fields_print_like_ovs() {
    let m = Match::new()
        .with(Field::NxmTunId, 0x64)
        .with(
            Field::TunIpv4Dst,
            u128::from(u32::from(Ipv4Addr::new(192, 0, 2, 7))),
        )
        .with(Field::CtZone, 5)
        .with_masked(Field::CtMark, 1, 1)
        .with(Field::ConjId, 7)
        .with(Field::PktMark, 0x10)
        .with(Field::XReg(1), 0xabc)
        .with(Field::NxmInPort, 0xfffe);
    assert_eq!(
        m.to_string(),
        "pkt_mark=0x10,conj_id=7,ct_zone=5,ct_mark=0x1/0x1,reg2=0,reg3=0xabc,tun_id=0x64,tun_dst=192.0.2.7,in_port=LOCAL"
    );
    roundtrip(&m);
}

pub(crate) fn hex_to_bytes(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}
