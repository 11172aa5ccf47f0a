//! The small messages: hello, echo, experimenter, features, switch config, role, async config,
//! port status/mod and the port description, table mod, queue config.

use bytes::{BufMut, BytesMut};

use nom::Parser;

use super::wire::{bad_len, fixed_str, put_fixed_str, Reader, BAD_REQUEST_LEN};
use crate::error::DecodeError;
use crate::parse::{
    all, be_u16, be_u32, be_u64, be_u8, check, fail, many_all, need, take, In, PResult,
};

/// A HELLO element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelloElement {
    /// OFPHET_VERSIONBITMAP: bit N of the bitmap means wire version N.
    VersionBitmap(Vec<u32>),
    Unknown {
        typ: u16,
        body: Vec<u8>,
    },
}

/// OFPT_HELLO.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hello {
    pub elements: Vec<HelloElement>,
}

impl Hello {
    /// The HELLO we send: OpenFlow 1.3 only, said both in the header and in a version bitmap.
    pub fn of13() -> Self {
        Hello {
            elements: vec![HelloElement::VersionBitmap(vec![1 << crate::OFP13_VERSION])],
        }
    }

    /// Whether the peer offers `version`: from its bitmap if it sent one, else from the header
    /// version (a peer offers every version up to the one in its header).
    pub fn offers(&self, header_version: u8, version: u8) -> bool {
        for e in &self.elements {
            if let HelloElement::VersionBitmap(words) = e {
                let word = words.get(usize::from(version / 32)).copied().unwrap_or(0);
                return word & (1 << (version % 32)) != 0;
            }
        }
        header_version >= version
    }

    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        all(r.rest(), hello)
    }

    pub(crate) fn encode(&self, buf: &mut BytesMut) {
        for e in &self.elements {
            let (typ, body): (u16, Vec<u8>) = match e {
                HelloElement::VersionBitmap(w) => {
                    (1, w.iter().flat_map(|x| x.to_be_bytes()).collect())
                }
                HelloElement::Unknown { typ, body } => (*typ, body.clone()),
            };
            let len = 4 + body.len();
            buf.put_u16(typ);
            buf.put_u16(len as u16);
            buf.put_slice(&body);
            buf.put_bytes(0, len.div_ceil(8) * 8 - len);
        }
    }
}

/// OFPT_EXPERIMENTER with an experimenter/type this crate has no struct for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Experimenter {
    pub experimenter: u32,
    pub exp_type: u32,
    pub data: Vec<u8>,
}

/// OFPT_FEATURES_REPLY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeaturesReply {
    pub datapath_id: u64,
    pub n_buffers: u32,
    pub n_tables: u8,
    pub auxiliary_id: u8,
    pub capabilities: u32,
    pub reserved: u32,
}

impl FeaturesReply {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        all(r.bytes(24)?, features_reply)
    }

    pub(crate) fn encode(&self, buf: &mut BytesMut) {
        buf.put_u64(self.datapath_id);
        buf.put_u32(self.n_buffers);
        buf.put_u8(self.n_tables);
        buf.put_u8(self.auxiliary_id);
        buf.put_u16(0);
        buf.put_u32(self.capabilities);
        buf.put_u32(self.reserved);
    }
}

/// Capability bits of FEATURES_REPLY, with OVS's names.
pub const CAPABILITIES: [(u32, &str); 7] = [
    (1 << 0, "FLOW_STATS"),
    (1 << 1, "TABLE_STATS"),
    (1 << 2, "PORT_STATS"),
    (1 << 3, "GROUP_STATS"),
    (1 << 5, "IP_REASM"),
    (1 << 6, "QUEUE_STATS"),
    (1 << 8, "PORT_BLOCKED"),
];

/// GET_CONFIG_REPLY / SET_CONFIG body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SwitchConfig {
    /// OFPC_FRAG_* bits.
    pub flags: u16,
    pub miss_send_len: u16,
}

/// ROLE_REQUEST / ROLE_REPLY body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Role {
    /// OFPCR_ROLE_NOCHANGE 0, EQUAL 1, MASTER 2, SLAVE 3.
    pub role: u32,
    pub generation_id: u64,
}

/// The ONF role-status extension message of OpenFlow 1.3 (ONFT 1911).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleStatus {
    pub role: u32,
    /// 0: master request, 1: config changed, 2: experimenter data changed.
    pub reason: u8,
    pub generation_id: u64,
    pub properties: Vec<u8>,
}

/// GET_ASYNC_REPLY / SET_ASYNC body: for packet-in, port-status and flow-removed, the reasons
/// sent to a master/equal controller ([0]) and to a slave ([1]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AsyncConfig {
    pub packet_in_mask: [u32; 2],
    pub port_status_mask: [u32; 2],
    pub flow_removed_mask: [u32; 2],
}

impl AsyncConfig {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        all(r.bytes(24)?, async_config)
    }
    pub(crate) fn encode(&self, buf: &mut BytesMut) {
        for m in [
            self.packet_in_mask,
            self.port_status_mask,
            self.flow_removed_mask,
        ] {
            buf.put_u32(m[0]);
            buf.put_u32(m[1]);
        }
    }
}

/// `ofp_port`: a port's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    pub port_no: u32,
    pub hw_addr: [u8; 6],
    pub name: String,
    pub config: u32,
    pub state: u32,
    pub curr: u32,
    pub advertised: u32,
    pub supported: u32,
    pub peer: u32,
    pub curr_speed: u32,
    pub max_speed: u32,
}

pub(crate) const PORT_LEN: usize = 64;

impl Port {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        all(r.bytes(PORT_LEN)?, port)
    }

    pub(crate) fn encode(&self, buf: &mut BytesMut) {
        buf.put_u32(self.port_no);
        buf.put_u32(0);
        buf.put_slice(&self.hw_addr);
        buf.put_u16(0);
        put_fixed_str(buf, &self.name, 16);
        for v in [
            self.config,
            self.state,
            self.curr,
            self.advertised,
            self.supported,
            self.peer,
            self.curr_speed,
            self.max_speed,
        ] {
            buf.put_u32(v);
        }
    }
}

/// OFPT_PORT_STATUS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortStatus {
    /// OFPPR_ADD 0, DELETE 1, MODIFY 2.
    pub reason: u8,
    pub port: Port,
}

/// OFPT_PORT_MOD.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortMod {
    pub port_no: u32,
    pub hw_addr: [u8; 6],
    pub config: u32,
    pub mask: u32,
    pub advertise: u32,
}

impl PortMod {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        all(r.bytes(32)?, port_mod)
    }
    pub(crate) fn encode(&self, buf: &mut BytesMut) {
        buf.put_u32(self.port_no);
        buf.put_u32(0);
        buf.put_slice(&self.hw_addr);
        buf.put_u16(0);
        buf.put_u32(self.config);
        buf.put_u32(self.mask);
        buf.put_u32(self.advertise);
        buf.put_u32(0);
    }
}

/// Port config bits, with OVS's names.
pub const PORT_CONFIG: [(u32, &str); 4] = [
    (1 << 0, "PORT_DOWN"),
    (1 << 2, "NO_RECV"),
    (1 << 5, "NO_FWD"),
    (1 << 6, "NO_PACKET_IN"),
];

/// OFPT_TABLE_MOD.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableMod {
    pub table_id: u8,
    pub config: u32,
}

/// A queue property of QUEUE_GET_CONFIG_REPLY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueProp {
    /// In 1/10 of a percent; > 1000 means disabled.
    MinRate(u16),
    MaxRate(u16),
    Unknown {
        property: u16,
        body: Vec<u8>,
    },
}

/// `ofp_packet_queue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PacketQueue {
    pub queue_id: u32,
    pub port: u32,
    pub properties: Vec<QueueProp>,
}

/// OFPT_QUEUE_GET_CONFIG_REPLY.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueGetConfigReply {
    pub port: u32,
    pub queues: Vec<PacketQueue>,
}

impl QueueGetConfigReply {
    pub(crate) fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        all(r.rest(), queue_get_config_reply)
    }

    pub(crate) fn encode(&self, buf: &mut BytesMut) {
        buf.put_u32(self.port);
        buf.put_u32(0);
        for q in &self.queues {
            let start = buf.len();
            buf.put_u32(q.queue_id);
            buf.put_u32(q.port);
            buf.put_u16(0);
            buf.put_bytes(0, 6);
            for p in &q.properties {
                let (property, body): (u16, Vec<u8>) = match p {
                    QueueProp::MinRate(r) => (1, [&r.to_be_bytes()[..], &[0; 6]].concat()),
                    QueueProp::MaxRate(r) => (2, [&r.to_be_bytes()[..], &[0; 6]].concat()),
                    QueueProp::Unknown { property, body } => (*property, body.clone()),
                };
                buf.put_u16(property);
                buf.put_u16((8 + body.len()) as u16);
                buf.put_u32(0);
                buf.put_slice(&body);
            }
            let len = (buf.len() - start) as u16;
            buf[start + 8..start + 10].copy_from_slice(&len.to_be_bytes());
        }
    }
}

/// HELLO: elements padded to 8 bytes; like OVS, trailing bytes too short for an element are
/// ignored.
fn hello(mut i: In<'_>) -> PResult<'_, Hello> {
    let mut elements = Vec::new();
    while i.len() >= 4 {
        let (_, (typ, len)) = (be_u16, be_u16).parse(i)?;
        let len = len as usize;
        if len < 4 || len > i.len() {
            return fail(bad_len(
                "ofp_hello_elem_header",
                len,
                "overruns the message",
            ));
        }
        let (rest, elem) = take(len)(i)?;
        let (body, _) = take(4)(elem)?;
        elements.push(if typ == 1 {
            let (_, words) = nom::multi::many0(be_u32).parse(body)?;
            HelloElement::VersionBitmap(words)
        } else {
            HelloElement::Unknown {
                typ,
                body: body.to_vec(),
            }
        });
        let pad = (len.div_ceil(8) * 8 - len).min(rest.len());
        i = take(pad)(rest)?.0;
    }
    Ok((&[], Hello { elements }))
}

fn features_reply(i: In<'_>) -> PResult<'_, FeaturesReply> {
    let (i, (datapath_id, n_buffers, n_tables, auxiliary_id, _, capabilities, reserved)) =
        (be_u64, be_u32, be_u8, be_u8, take(2), be_u32, be_u32).parse(i)?;
    Ok((
        i,
        FeaturesReply {
            datapath_id,
            n_buffers,
            n_tables,
            auxiliary_id,
            capabilities,
            reserved,
        },
    ))
}

fn async_config(i: In<'_>) -> PResult<'_, AsyncConfig> {
    let pair = |i| (be_u32, be_u32).map(|(a, b)| [a, b]).parse(i);
    let (i, (packet_in_mask, port_status_mask, flow_removed_mask)) = (pair, pair, pair).parse(i)?;
    Ok((
        i,
        AsyncConfig {
            packet_in_mask,
            port_status_mask,
            flow_removed_mask,
        },
    ))
}

fn mac(i: In<'_>) -> PResult<'_, [u8; 6]> {
    let (i, m) = take(6)(i)?;
    Ok((i, m.try_into().unwrap_or_default()))
}

/// `ofp_port` (64 bytes).
pub(crate) fn port(i: In<'_>) -> PResult<'_, Port> {
    let (i, (port_no, _, hw_addr, _, name)) =
        (be_u32, take(4), mac, take(2), take(16).map(fixed_str)).parse(i)?;
    let (i, (config, state, curr, advertised, supported, peer, curr_speed, max_speed)) = (
        be_u32, be_u32, be_u32, be_u32, be_u32, be_u32, be_u32, be_u32,
    )
        .parse(i)?;
    Ok((
        i,
        Port {
            port_no,
            hw_addr,
            name,
            config,
            state,
            curr,
            advertised,
            supported,
            peer,
            curr_speed,
            max_speed,
        },
    ))
}

/// OFPT_PORT_MOD's body (32 bytes).
fn port_mod(i: In<'_>) -> PResult<'_, PortMod> {
    let (i, (port_no, _, hw_addr, _, config, mask, advertise, _)) = (
        be_u32,
        take(4),
        mac,
        take(2),
        be_u32,
        be_u32,
        be_u32,
        take(4),
    )
        .parse(i)?;
    Ok((
        i,
        PortMod {
            port_no,
            hw_addr,
            config,
            mask,
            advertise,
        },
    ))
}

fn queue_get_config_reply(i: In<'_>) -> PResult<'_, QueueGetConfigReply> {
    let (i, (port, _)) = need(
        "ofp_queue_get_config_reply",
        8,
        BAD_REQUEST_LEN,
        (be_u32, take(4)),
    )
    .parse(i)?;
    let (i, queues) = many_all(packet_queue, 16)(i)?;
    Ok((i, QueueGetConfigReply { port, queues }))
}

/// One `ofp_packet_queue`: its length sits after the queue id and port; then properties.
fn packet_queue(i: In<'_>) -> PResult<'_, PacketQueue> {
    const WHAT: &str = "ofp_packet_queue";
    check(WHAT, 10, BAD_REQUEST_LEN, i)?;
    let (_, (_, len)) = (take(8), be_u16).parse(i)?;
    let len = len as usize;
    if len < 16 {
        return fail(bad_len(WHAT, len, "shorter than its 16-byte header"));
    }
    check(WHAT, len, BAD_REQUEST_LEN, i)?;
    let (rest, q) = take(len)(i)?;
    let (q, (queue_id, port, _)) = (be_u32, be_u32, take(8)).parse(q)?;
    let (_, properties) = many_all(queue_prop, 16)(q)?;
    Ok((
        rest,
        PacketQueue {
            queue_id,
            port,
            properties,
        },
    ))
}

/// One `ofp_queue_prop`: min/max rate (16 bytes) or kept raw.
fn queue_prop(i: In<'_>) -> PResult<'_, QueueProp> {
    check("ofp_queue_prop_header", 4, BAD_REQUEST_LEN, i)?;
    let (_, (property, len)) = (be_u16, be_u16).parse(i)?;
    let len = len as usize;
    if len < 8 {
        return fail(bad_len(
            "ofp_queue_prop_header",
            len,
            "shorter than 8 bytes",
        ));
    }
    check("ofp_queue_prop", len, BAD_REQUEST_LEN, i)?;
    let (rest, p) = take(len)(i)?;
    let (body, _) = take(8)(p)?;
    let prop = match (property, len) {
        (1, 16) => QueueProp::MinRate(be_u16(body)?.1),
        (2, 16) => QueueProp::MaxRate(be_u16(body)?.1),
        _ => QueueProp::Unknown {
            property,
            body: body.to_vec(),
        },
    };
    Ok((rest, prop))
}
