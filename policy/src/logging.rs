//! The policy verdict log: a rule or a default-deny group with `log` sends a copy of the first
//! packet of each connection it decides to netplugin, through a meter of its own, while the
//! packet itself is forwarded or dropped exactly as without logging.
//!
//! The copy is Open vSwitch's `controller(meter_id=N)`: `NXAST_CONTROLLER2` (Nicira subtype 37)
//! with a `METER_ID` property (Open vSwitch 2.11 and later). The packet-in carries the flow's
//! cookie and table, which name the rule (or the group) and the direction; netplugin looks the
//! cookie up in what it compiled. Until `ofproto` has a typed variant for `CONTROLLER2`, the
//! action is an [`Action::Experimenter`] with exactly the bytes Open vSwitch encodes for it (and
//! dumps back), so compiled and dumped flows compare equal.

use ofproto::action::{Action, NX_VENDOR_ID};

use crate::flowset::Meter;

/// The meter every verdict-log copy goes through (one for the host: a flood of new connections
/// cannot send more than [`VERDICT_METER_PPS`] packets a second to netplugin). Endpoint meters
/// use their OpenFlow port number as id, which never reaches this.
pub const VERDICT_METER: u32 = 0x0001_0000;
/// Its rate, packets per second.
pub const VERDICT_METER_PPS: u32 = 100;
/// Its burst, packets.
pub const VERDICT_METER_BURST: u32 = 20;

/// `NXAST_CONTROLLER2`.
const NXAST_CONTROLLER2: u16 = 37;
/// `NXAC2PT_METER_ID`.
const NXAC2PT_METER_ID: u16 = 5;

/// The verdict log's meter (in every compiled set).
pub fn verdict_meter() -> Meter {
    Meter {
        meter_id: VERDICT_METER,
        rate_kbps: VERDICT_METER_PPS,
        burst_kb: VERDICT_METER_BURST,
        pps: true,
    }
}

/// `controller(meter_id=METER)`: a copy of the packet to the controller (reason `action`, the
/// whole packet), rate-limited by `meter`; the packet itself goes on.
pub fn controller_with_meter(meter: u32) -> Action {
    // nx_action_controller2: subtype, 6 zero bytes, then properties (type, length, value),
    // padded to 8. Open vSwitch writes only the properties that differ from their defaults.
    let mut body = Vec::with_capacity(16);
    body.extend_from_slice(&NXAST_CONTROLLER2.to_be_bytes());
    body.extend_from_slice(&[0; 6]);
    body.extend_from_slice(&NXAC2PT_METER_ID.to_be_bytes());
    body.extend_from_slice(&8u16.to_be_bytes());
    body.extend_from_slice(&meter.to_be_bytes());
    Action::Experimenter {
        experimenter: NX_VENDOR_ID,
        body,
    }
}

/// The verdict log's action.
pub fn log_action() -> Action {
    controller_with_meter(VERDICT_METER)
}

/// The meter of a `controller(meter_id=N)` action as [`controller_with_meter`] makes it; None
/// for any other action.
pub fn controller_meter(a: &Action) -> Option<u32> {
    let Action::Experimenter { experimenter, body } = a else {
        return None;
    };
    if *experimenter != NX_VENDOR_ID || body.len() < 8 {
        return None;
    }
    if u16::from_be_bytes([body[0], body[1]]) != NXAST_CONTROLLER2 {
        return None;
    }
    let mut props = &body[8..];
    while props.len() >= 4 {
        let typ = u16::from_be_bytes([props[0], props[1]]);
        let len = usize::from(u16::from_be_bytes([props[2], props[3]]));
        if len < 4 || len > props.len() {
            return None;
        }
        if typ == NXAC2PT_METER_ID && len == 8 {
            return Some(u32::from_be_bytes([props[4], props[5], props[6], props[7]]));
        }
        let padded = len.div_ceil(8) * 8;
        props = &props[padded.min(props.len())..];
    }
    None
}

/// `controller(meter_id=N)` as `ovs-ofctl` prints it, for the action; None for another action.
pub fn describe(a: &Action) -> Option<String> {
    controller_meter(a).map(|m| format!("controller(meter_id={m})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    #[test]
    fn the_action_is_the_bytes_open_vswitch_encodes_and_reads_back() {
        let a = log_action();
        let mut buf = BytesMut::new();
        a.encode(&mut buf);
        // type 0xffff, length 24, Nicira, subtype 37, zeros, METER_ID property (5, 8, id).
        assert_eq!(
            buf.as_ref(),
            &[
                0xff, 0xff, 0, 24, 0, 0, 0x23, 0x20, 0, 37, 0, 0, 0, 0, 0, 0, 0, 5, 0, 8, 0, 1, 0,
                0
            ]
        );
        let back = Action::decode_list(&buf).unwrap();
        assert_eq!(back, vec![a.clone()]);
        assert_eq!(controller_meter(&back[0]), Some(VERDICT_METER));
        assert_eq!(controller_meter(&Action::output(1)), None);
        assert_eq!(describe(&a).as_deref(), Some("controller(meter_id=65536)"));
    }
}
