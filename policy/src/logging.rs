//! The policy verdict log: a rule or a default-deny group with `log` sends a copy of the first
//! packet of each connection it decides to netplugin, through a meter of its own, while the
//! packet itself is forwarded or dropped exactly as without logging.
//!
//! The copy is Open vSwitch's `controller(meter_id=N)`: `NXAST_CONTROLLER2` with a `METER_ID`
//! property (Open vSwitch 2.11 and later; `ofproto::action::Controller2`). The packet-in carries
//! the flow's cookie and table, which name the rule (or the group) and the direction; netplugin
//! looks the cookie up in what it compiled.

use ofproto::action::{Action, Controller2, NX_CTLR_NO_METER};

use crate::flowset::Meter;

/// The meter every verdict-log copy goes through (one for the host: a flood of new connections
/// cannot send more than [`VERDICT_METER_PPS`] packets a second to netplugin). Endpoint meters
/// use their OpenFlow port number as id, which never reaches this.
pub const VERDICT_METER: u32 = 0x0001_0000;
/// Its rate, packets per second.
pub const VERDICT_METER_PPS: u32 = 100;
/// Its burst, packets.
pub const VERDICT_METER_BURST: u32 = 20;

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
    Action::Controller2(Controller2 {
        meter_id: meter,
        ..Controller2::default()
    })
}

/// The verdict log's action.
pub fn log_action() -> Action {
    controller_with_meter(VERDICT_METER)
}

/// The meter of a controller action with a meter (`controller(meter_id=N)`, whatever its other
/// properties); None for any other action.
pub fn controller_meter(a: &Action) -> Option<u32> {
    match a {
        Action::Controller2(c) if c.meter_id != NX_CTLR_NO_METER && !c.pause => Some(c.meter_id),
        _ => None,
    }
}

/// `controller(meter_id=N)` as `ovs-ofctl` prints it, for the action; None for another action.
pub fn describe(a: &Action) -> Option<String> {
    controller_meter(a).map(|_| a.to_string())
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
