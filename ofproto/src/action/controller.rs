//! The controller action with properties (NXAST_CONTROLLER2: userdata, pause, meter).

#[allow(unused_imports)]
use super::*;

/// `NXAC2PT_*`: the properties of NXAST_CONTROLLER2.
pub(crate) mod nxac2pt {
    pub const MAX_LEN: u16 = 0;
    pub const CONTROLLER_ID: u16 = 1;
    pub const REASON: u16 = 2;
    pub const USERDATA: u16 = 3;
    pub const PAUSE: u16 = 4;
    pub const METER_ID: u16 = 5;
}

/// `OFPR_ACTION`: the packet-in reason of the controller action unless told otherwise.
pub const OFPR_ACTION: u8 = 1;
/// `NX_CTLR_NO_METER`: the controller action's packet-ins go through no meter.
pub const NX_CTLR_NO_METER: u32 = 0;

/// Nicira's NXAST_CONTROLLER2, the controller action with properties: what `ovs-ofctl` writes
/// as `controller(userdata=01.02,pause,meter_id=3,...)`. Each property is on the wire only when
/// it differs from its default, as OVS encodes it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Controller2 {
    /// Bytes of the packet to send; 65535 (the default) sends it all.
    pub max_len: u16,
    /// The controller connection id to send to (0, the default, is every connection's id unless
    /// set otherwise).
    pub controller_id: u16,
    /// The packet-in reason ([`OFPR_ACTION`] by default).
    pub reason: u8,
    /// Opaque bytes copied into the packet-in (NXPINT_USERDATA of NXT_PACKET_IN2).
    pub userdata: Vec<u8>,
    /// Pause the pipeline; the controller may resume it with the packet-in's continuation.
    pub pause: bool,
    /// The meter the packet-ins go through ([`NX_CTLR_NO_METER`] for none).
    pub meter_id: u32,
}

impl Default for Controller2 {
    fn default() -> Self {
        Controller2 {
            max_len: 0xffff,
            controller_id: 0,
            reason: OFPR_ACTION,
            userdata: Vec::new(),
            pause: false,
            meter_id: NX_CTLR_NO_METER,
        }
    }
}

impl Controller2 {
    /// `controller(userdata=...)`: the whole packet, reason `action`, with `userdata`.
    pub fn with_userdata(userdata: impl Into<Vec<u8>>) -> Self {
        Controller2 {
            userdata: userdata.into(),
            ..Controller2::default()
        }
    }

    /// Bytes of the properties (each padded to 8).
    pub(crate) fn props_len(&self) -> usize {
        let mut n = 0;
        if self.max_len != 0xffff {
            n += 8;
        }
        if self.controller_id != 0 {
            n += 8;
        }
        if self.reason != OFPR_ACTION {
            n += 8;
        }
        if !self.userdata.is_empty() {
            n += (4 + self.userdata.len()).div_ceil(8) * 8;
        }
        if self.pause {
            n += 8;
        }
        if self.meter_id != NX_CTLR_NO_METER {
            n += 8;
        }
        n
    }

    pub(crate) fn write_props(&self, buf: &mut Writer<'_>) {
        fn prop(buf: &mut Writer<'_>, typ: u16, value: &[u8]) {
            let len = 4 + value.len();
            buf.put_u16(typ);
            buf.put_u16(len as u16);
            buf.put_slice(value);
            buf.put_zeros(len.div_ceil(8) * 8 - len);
        }
        if self.max_len != 0xffff {
            prop(
                buf,
                nxac2pt::MAX_LEN,
                &crate::prop::be16_value(self.max_len),
            );
        }
        if self.controller_id != 0 {
            prop(
                buf,
                nxac2pt::CONTROLLER_ID,
                &crate::prop::be16_value(self.controller_id),
            );
        }
        if self.reason != OFPR_ACTION {
            prop(buf, nxac2pt::REASON, &[self.reason]);
        }
        if !self.userdata.is_empty() {
            prop(buf, nxac2pt::USERDATA, &self.userdata);
        }
        if self.pause {
            prop(buf, nxac2pt::PAUSE, &[]);
        }
        if self.meter_id != NX_CTLR_NO_METER {
            prop(buf, nxac2pt::METER_ID, &self.meter_id.to_be_bytes());
        }
    }
}
