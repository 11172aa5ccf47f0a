use super::*;

pub(crate) fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// Decodes `bytes`, checks the printed form, and encodes back byte for byte into a buffer
/// that starts with garbage.
fn check(bytes: &str, text: &str) {
    let bytes = hex(bytes);
    let actions = Action::decode_list(&bytes).unwrap();
    assert_eq!(ActionList(&actions).to_string(), text);
    let mut buf = BytesMut::from(&[0x5au8; 5][..]);
    Action::encode_list(&actions, &mut buf);
    assert_eq!(&buf[5..], &bytes[..]);
    assert_eq!(Action::list_len(&actions), bytes.len());
}

#[test]
fn standard_actions() {
    check("0000 0010 00000003 0000 000000000000", "output:3");
    check("0000 0010 fffffffd ffff 000000000000", "CONTROLLER:65535");
    check("0016 0008 00000007", "group:7");
    check(
        "0011 0008 8100 0000 0012 0008 00000000",
        "push_vlan:0x8100,pop_vlan",
    );
    check("0018 0008 00000000", "dec_ttl");
    check("0015 0008 00000002", "set_queue:2");
    // set_field:0x5->reg0 as an OXM of class NXM_1.
    check(
        "0019 0010 00010004 00000005 00000000",
        "set_field:0x5->reg0",
    );
    check(
        "0019 0010 80000c02 100a 000000000000",
        "set_field:4106->vlan_vid",
    );
}

#[test]
fn nicira_actions() {
    check("ffff 0010 00002320 000e fff8 05 000000", "resubmit(,5)");
    check("ffff 0010 00002320 0001 0003 00000000", "resubmit:3");
    check(
        "ffff 0018 00002320 0006 0010 0000 0000 00010004 00010204",
        "move:NXM_NX_REG0[0..15]->NXM_NX_REG1[0..15]",
    );
    check(
        "ffff 0018 00002320 0007 001f 00010004 0000000000000005",
        "set_field:0x5->reg0",
    );
    check(
        "ffff 0018 00002320 0007 0007 00010004 0000000000000005",
        "load:0x5->NXM_NX_REG0[0..7]",
    );
    check(
        "ffff 0010 00002320 0022 01 03 00000007",
        "conjunction(7,2/3)",
    );
    check(
        "ffff 0010 00002320 0008 010203 000000",
        "note:01.02.03.00.00.00",
    );
    check(
        "ffff 0018 00002320 0015 0002 00000000 0001 0002 00000000",
        "dec_ttl(1,2)",
    );
    check(
        "ffff 0010 00002320 0014 ffff 0000 00 00",
        "controller(reason=no_match)",
    );
}

#[test]
fn controller2_properties_as_ovs_encodes_and_prints_them() {
    check(
        "ffff 0018 00002320 0025 000000000000 0003 0007 010203 00",
        "controller(userdata=01.02.03)",
    );
    check(
        "ffff 0040 00002320 0025 000000000000 \
         0000 0008 0080 0000 0001 0008 0002 0000 0002 0005 00 000000 \
         0003 0007 010203 00 0004 0004 00000000 0005 0008 00000007",
        "controller(reason=no_match,max_len=128,id=2,userdata=01.02.03,pause,meter_id=7)",
    );
    // Nothing but defaults: printed as OVS prints it.
    check("ffff 0010 00002320 0025 000000000000", "CONTROLLER:65535");
    // Refused, never a panic: nonzero padding, a property overrunning, an unknown one,
    // a max_len of the wrong size.
    for bad in [
        "ffff 0010 00002320 0025 000000000001",
        "ffff 0018 00002320 0025 000000000000 0003 0010 010203 00",
        "ffff 0018 00002320 0025 000000000000 0009 0004 00000000",
        "ffff 0018 00002320 0025 000000000000 0000 0005 00 000000",
    ] {
        assert!(Action::decode_list(&hex(bad)).is_err(), "{bad}");
    }
}

#[test]
fn ct_with_nat_and_zone_from_a_register() {
    let ct = Action::Ct(Ct {
        commit: true,
        force: false,
        zone: CtZone::Field(FieldRange::new(Field::Reg(4), 0, 16).unwrap()),
        table: Some(3),
        alg: 0,
        actions: vec![
            Action::Nat(Nat {
                kind: NatKind::Src,
                addrs: NatAddrs::V4(Ipv4Addr::new(10, 0, 0, 1), Some(Ipv4Addr::new(10, 0, 0, 9))),
                ports: Some((1000, Some(2000))),
                persistent: false,
                hash: false,
                random: true,
            }),
            Action::set_field(Field::CtMark, 1).unwrap(),
        ],
    });
    assert_eq!(
        ct.to_string(),
        "ct(commit,table=3,zone=NXM_NX_REG4[0..15],nat(src=10.0.0.1-10.0.0.9:1000-2000,random),exec(set_field:0x1->ct_mark))"
    );
    let mut buf = BytesMut::new();
    ct.encode(&mut buf);
    assert_eq!(buf.len(), ct.encoded_len());
    assert_eq!(Action::decode_list(&buf).unwrap(), vec![ct]);
}

#[test]
fn ct_refuses_actions_ovs_refuses() {
    let ct = Action::Ct(Ct {
        commit: true,
        force: false,
        zone: CtZone::Imm(1),
        table: None,
        alg: 0,
        actions: vec![Action::output(1)],
    });
    let mut buf = BytesMut::new();
    ct.encode(&mut buf);
    assert_eq!(
        Action::decode_list(&buf).unwrap_err().ofp_error(),
        UNSUPPORTED_ORDER
    );
}

#[test]
fn bad_lengths_are_refused() {
    // Length 12: not a multiple of 8.
    assert_eq!(
        Action::decode_list(&hex("0000000c000000030000ffff"))
            .unwrap_err()
            .ofp_error(),
        BAD_LEN
    );
    // Length overruns the list.
    assert!(Action::decode_list(&hex("0000 0018 00000003 0000 000000000000")).is_err());
    // Output action of length 8.
    assert_eq!(
        Action::decode_list(&hex("0000000800000003"))
            .unwrap_err()
            .ofp_error(),
        BAD_LEN
    );
    // Unknown action type survives.
    check("0063 0008 01020304", "unknown_action(99:01020304)");
}
