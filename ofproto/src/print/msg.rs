//! Messages as text, in the style of `ovs-ofctl ofp-print`, so that a capture can be read by a
//! person and our output compared with Open vSwitch's.

use std::fmt::Write;

use crate::action::{packet_in_reason, ActionList};
use crate::error::DecodeError;
use crate::header::{frame_len, Header, MsgType};
use crate::instruction::InstructionList;
use crate::msg::basic::{CAPABILITIES, PORT_CONFIG};
use crate::msg::flow::{flow_flags, FlowModCommand, NO_BUFFER};
use crate::msg::group_meter::{meter_flags, Bucket, GroupType, MeterBand, MeterModCommand};
use crate::msg::multipart::{MultipartReply, MultipartRequest, MultipartType, MORE};
use crate::msg::{ErrorMsg, Message};
use crate::oxm::{port_name, Match};

/// OVS's default flow priority; not printed.
const DEFAULT_PRIORITY: u16 = 0x8000;

/// Decodes every message in `bytes` and prints them, one after another.
pub fn ofp_print(bytes: &[u8]) -> Result<String, DecodeError> {
    let mut out = String::new();
    let mut rest = bytes;
    let mut offset = 0;
    while !rest.is_empty() {
        let Some(len) = frame_len(rest)? else {
            return Err(DecodeError::Truncated {
                what: "OpenFlow message",
                need: if rest.len() < 8 {
                    8
                } else {
                    u16::from_be_bytes([rest[2], rest[3]]) as usize
                },
                have: rest.len(),
                ofp: crate::ErrorCode::new(1, 6),
            });
        };
        let (header, msg) = Message::decode(&rest[..len]).map_err(|e| at_offset(e, offset))?;
        out.push_str(&print(&header, &msg));
        rest = &rest[len..];
        offset += len;
    }
    Ok(out)
}

fn at_offset(e: DecodeError, offset: usize) -> DecodeError {
    if offset == 0 {
        return e;
    }
    let ofp = e.ofp_error();
    DecodeError::Invalid {
        what: "OpenFlow stream",
        why: format!("message at byte offset {offset}: {e}"),
        ofp,
    }
}

fn name(header: &Header, msg: &Message) -> String {
    let mp = |t: MultipartType| -> String {
        let n = match t {
            MultipartType::Desc => "DESC".to_string(),
            MultipartType::Flow => "FLOW".into(),
            MultipartType::Aggregate => "AGGREGATE".into(),
            MultipartType::Table => "TABLE".into(),
            MultipartType::PortStats => "PORT".into(),
            MultipartType::Queue => "QUEUE".into(),
            MultipartType::Group => "GROUP".into(),
            MultipartType::GroupDesc => "GROUP_DESC".into(),
            MultipartType::GroupFeatures => "GROUP_FEATURES".into(),
            MultipartType::Meter => "METER".into(),
            MultipartType::MeterConfig => "METER_CONFIG".into(),
            MultipartType::MeterFeatures => "METER_FEATURES".into(),
            MultipartType::TableFeatures => "TABLE_FEATURES".into(),
            MultipartType::PortDesc => "PORT_DESC".into(),
            MultipartType::Experimenter => "EXPERIMENTER".into(),
            MultipartType::Unknown(n) => format!("{n}"),
        };
        format!("OFPST_{n}")
    };
    match msg {
        Message::MultipartRequest { body, .. } => format!("{} request", mp(body.multipart_type())),
        Message::MultipartReply { body, .. } => format!("{} reply", mp(body.multipart_type())),
        Message::BundleControl(_) => "ONFT_BUNDLE_CONTROL".into(),
        Message::BundleAdd(_) => "ONFT_BUNDLE_ADD_MESSAGE".into(),
        Message::RoleStatus(_) => "ONFT_ROLE_STATUS".into(),
        _ => {
            let t = match header.msg_type {
                MsgType::Unknown(n) => return format!("OFPT_UNKNOWN_{n}"),
                t => format!("{t:?}"),
            };
            // CamelCase → OFPT_SNAKE_CASE.
            let mut s = String::from("OFPT_");
            for (i, c) in t.chars().enumerate() {
                if c.is_uppercase() && i > 0 {
                    s.push('_');
                }
                s.push(c.to_ascii_uppercase());
            }
            s
        }
    }
}

/// Prints one message: `NAME (OF1.3) (xid=0x..):` and its body.
pub fn print(header: &Header, msg: &Message) -> String {
    let mut s = format!("{} (OF1.3) (xid={:#x}):", name(header, msg), header.xid);
    body(&mut s, msg, header.xid);
    if !s.ends_with('\n') {
        s.push('\n');
    }
    s
}

fn flags_names<T: Copy + Into<u32>>(v: T, names: &[(T, &str)]) -> Vec<String> {
    let v: u32 = v.into();
    names
        .iter()
        .filter(|(bit, _)| v & (*bit).into() != 0)
        .map(|(_, n)| n.to_string())
        .collect()
}

fn duration(sec: u32, nsec: u32) -> String {
    let ms = nsec / 1_000_000;
    format!("{sec}.{ms:03}s")
}

/// A match with its priority first, as OVS prints flows.
fn match_with_priority(m: &Match, priority: u16) -> String {
    let text = m.to_string();
    if priority == DEFAULT_PRIORITY {
        text
    } else if text.is_empty() {
        format!("priority={priority}")
    } else {
        format!("priority={priority},{text}")
    }
}

fn body(s: &mut String, msg: &Message, xid: u32) {
    match msg {
        Message::Hello(h) => {
            for e in &h.elements {
                if let crate::msg::HelloElement::VersionBitmap(words) = e {
                    let mut versions = Vec::new();
                    for (i, w) in words.iter().enumerate() {
                        for bit in 0..32 {
                            if w & (1 << bit) != 0 {
                                let v = i * 32 + bit;
                                versions.push(match v {
                                    1 => "0x01".to_string(),
                                    v => format!("{v:#04x}"),
                                });
                            }
                        }
                    }
                    let _ = write!(s, "\n version bitmap: {}", versions.join(", "));
                }
            }
        }
        Message::Error(e) => match e {
            ErrorMsg::Standard { code, data } => {
                let _ = write!(s, " {}", code.name());
                if let Ok((h, inner)) = Message::decode(data) {
                    let _ = write!(s, "\n{}", print(&h, &inner));
                } else if !data.is_empty() {
                    let _ = write!(s, "\n{}", hex_dump(data));
                }
            }
            ErrorMsg::Experimenter {
                exp_code,
                experimenter,
                ..
            } => {
                let _ = write!(
                    s,
                    " experimenter error {experimenter:#010x} code {exp_code}"
                );
            }
        },
        Message::EchoRequest(d) | Message::EchoReply(d) => {
            let _ = write!(s, " {} bytes of payload", d.len());
            if !d.is_empty() {
                let _ = write!(s, "\n{}", hex_dump(d));
            }
        }
        Message::Experimenter(e) => {
            let _ = write!(
                s,
                " experimenter={:#010x} exp_type={}",
                e.experimenter, e.exp_type
            );
        }
        Message::FeaturesReply(f) => {
            let _ = write!(
                s,
                " dpid:{:016x}\nn_tables:{}, n_buffers:{}",
                f.datapath_id, f.n_tables, f.n_buffers
            );
            if f.auxiliary_id != 0 {
                let _ = write!(s, ", auxiliary_id:{}", f.auxiliary_id);
            }
            let caps = flags_names(f.capabilities, &CAPABILITIES);
            let _ = write!(s, "\ncapabilities: {}", caps.join(" "));
        }
        Message::GetConfigReply(c) | Message::SetConfig(c) => {
            let frag = match c.flags & 3 {
                0 => "normal",
                1 => "drop",
                2 => "reassemble",
                _ => "nx-match",
            };
            let _ = write!(s, " frags={frag} miss_send_len={}", c.miss_send_len);
        }
        Message::PacketIn(p) => {
            if p.table_id != 0 {
                let _ = write!(s, " table_id={}", p.table_id);
            }
            if p.cookie != u64::MAX {
                let _ = write!(s, " cookie={:#x}", p.cookie);
            }
            let _ = write!(
                s,
                " total_len={} {} (via {}) data_len={}",
                p.total_len,
                p.match_,
                packet_in_reason(p.reason),
                p.data.len()
            );
            if p.buffer_id == NO_BUFFER {
                s.push_str(" (unbuffered)");
            } else {
                let _ = write!(s, " buffer={:#010x}", p.buffer_id);
            }
        }
        Message::FlowRemoved(f) => {
            let reason = match f.reason {
                0 => "idle".to_string(),
                1 => "hard".into(),
                2 => "delete".into(),
                3 => "group_delete".into(),
                4 => "meter_delete".into(),
                n => n.to_string(),
            };
            let _ = write!(
                s,
                " {} reason={reason}",
                match_with_priority(&f.match_, f.priority)
            );
            if f.table_id != 255 {
                let _ = write!(s, " table_id={}", f.table_id);
            }
            if f.cookie != 0 {
                let _ = write!(s, " cookie:{:#x}", f.cookie);
            }
            let _ = write!(
                s,
                " duration{} idle{} hard{} pkts{} bytes{}",
                duration(f.duration_sec, f.duration_nsec),
                f.idle_timeout,
                f.hard_timeout,
                f.packet_count,
                f.byte_count
            );
        }
        Message::PortStatus(p) => {
            let reason = match p.reason {
                0 => "ADD",
                1 => "DELETE",
                _ => "MOD",
            };
            let _ = write!(s, " {reason}: {}", port_line(&p.port));
        }
        Message::PacketOut(p) => {
            let _ = write!(
                s,
                " in_port={} actions={}",
                port_name(p.in_port),
                ActionList(&p.actions)
            );
            if p.buffer_id == NO_BUFFER {
                let _ = write!(s, " data_len={}", p.data.len());
            } else {
                let _ = write!(s, " buffer={:#010x}", p.buffer_id);
            }
        }
        Message::FlowMod(f) => {
            let cmd = match f.command {
                FlowModCommand::Add => "ADD".to_string(),
                FlowModCommand::Modify => "MOD".into(),
                FlowModCommand::ModifyStrict => "MOD_STRICT".into(),
                FlowModCommand::Delete => "DEL".into(),
                FlowModCommand::DeleteStrict => "DEL_STRICT".into(),
                FlowModCommand::Unknown(n) => n.to_string(),
            };
            let _ = write!(s, " {cmd}");
            if f.table_id != 0 {
                let _ = write!(s, " table:{}", f.table_id);
            }
            let m = match_with_priority(&f.match_, f.priority);
            if !m.is_empty() {
                let _ = write!(s, " {m}");
            }
            if f.cookie != 0 || f.cookie_mask != 0 {
                let _ = write!(s, " cookie:{:#x}", f.cookie);
                if f.cookie_mask != 0 {
                    let _ = write!(s, "/{:#x}", f.cookie_mask);
                }
            }
            if f.idle_timeout != 0 {
                let _ = write!(s, " idle:{}", f.idle_timeout);
            }
            if f.hard_timeout != 0 {
                let _ = write!(s, " hard:{}", f.hard_timeout);
            }
            if f.buffer_id != NO_BUFFER {
                let _ = write!(s, " buf:{:#x}", f.buffer_id);
            }
            if f.out_port != 0xffff_ffff {
                let _ = write!(s, " out_port:{}", port_name(f.out_port));
            }
            if f.out_group != 0xffff_ffff {
                let _ = write!(s, " out_group:{}", f.out_group);
            }
            for n in flags_names(f.flags, &flow_flags::NAMES) {
                let _ = write!(s, " {n}");
            }
            let _ = write!(s, " actions={}", InstructionList(&f.instructions));
        }
        Message::GroupMod(g) => {
            let cmd = match u16::from(g.command) {
                0 => "ADD",
                1 => "MOD",
                _ => "DEL",
            };
            let _ = write!(
                s,
                "\n {cmd} group_id={},type={}",
                g.group_id,
                group_type(g.group_type)
            );
            buckets(s, &g.buckets);
        }
        Message::PortMod(p) => {
            let _ = write!(
                s,
                " port: {}: addr:{}\n     config: {}\n     mask:   {}\n     advertise: {}",
                port_name(p.port_no),
                mac(&p.hw_addr),
                config_names(p.config),
                config_names(p.mask),
                if p.advertise == 0 {
                    "UNCHANGED".to_string()
                } else {
                    format!("{:#x}", p.advertise)
                }
            );
        }
        Message::TableMod(t) => {
            let _ = write!(s, " table_id={}", t.table_id);
        }
        Message::MultipartRequest { flags, body } => {
            if flags & MORE != 0 {
                s.push_str(" flags=[more]");
            }
            mp_request(s, body);
        }
        Message::MultipartReply { flags, body } => {
            if flags & MORE != 0 {
                s.push_str(" flags=[more]");
            }
            mp_reply(s, body);
        }
        Message::QueueGetConfigRequest { port } => {
            let _ = write!(s, " port={}", port_name(*port));
        }
        Message::QueueGetConfigReply(q) => {
            let _ = write!(s, " port={}", port_name(q.port));
            // OVS prints the queues in order of their ids.
            let mut queues: Vec<_> = q.queues.iter().collect();
            queues.sort_by_key(|q| q.queue_id);
            for queue in queues {
                let _ = write!(s, "\nqueue {}:", queue.queue_id);
                for p in &queue.properties {
                    match p {
                        crate::msg::QueueProp::MinRate(r) if *r <= 1000 => {
                            let _ = write!(s, " min_rate:{:.1}%", f64::from(*r) / 10.0);
                        }
                        crate::msg::QueueProp::MaxRate(r) if *r <= 1000 => {
                            let _ = write!(s, " max_rate:{:.1}%", f64::from(*r) / 10.0);
                        }
                        _ => {}
                    }
                }
            }
        }
        Message::RoleRequest(r) | Message::RoleReply(r) => {
            let _ = write!(s, " role={}", role_name(r.role));
            if r.generation_id != u64::MAX {
                let _ = write!(s, " generation_id={}", r.generation_id);
            }
        }
        Message::RoleStatus(r) => {
            let _ = write!(s, " role={}", role_name(r.role));
            if r.generation_id != u64::MAX {
                let _ = write!(s, " generation_id={}", r.generation_id);
            }
            let reason = match r.reason {
                0 => "primary_request".to_string(),
                1 => "configuration_changed".into(),
                2 => "experimenter_data_changed".into(),
                n => n.to_string(),
            };
            let _ = write!(s, " reason={reason}");
        }
        Message::GetAsyncReply(a) | Message::SetAsync(a) => {
            for (i, who) in ["primary", "secondary"].iter().enumerate() {
                if i > 0 {
                    s.push('\n');
                }
                // OpenFlow 1.3 has no masks for the last three; OVS prints them as off.
                let _ = write!(
                    s,
                    "\n {who}:\n       PACKET_IN: {}\n     PORT_STATUS: {}\n    FLOW_REMOVED: {}\n     ROLE_STATUS: (off)\n    TABLE_STATUS: (off)\n  REQUESTFORWARD: (off)",
                    reasons(a.packet_in_mask[i], &["no_match", "action", "invalid_ttl"]),
                    reasons(a.port_status_mask[i], &["add", "delete", "modify"]),
                    reasons(a.flow_removed_mask[i], &["idle", "hard", "delete", "group_delete"]),
                );
            }
        }
        Message::MeterMod(m) => {
            let cmd = match m.command {
                MeterModCommand::Add => "ADD",
                MeterModCommand::Modify => "MOD",
                _ => "DEL",
            };
            let _ = write!(s, " {cmd} meter={}", meter_id(m.meter_id));
            for n in flags_names(m.flags, &meter_flags::NAMES) {
                let _ = write!(s, " {n}");
            }
            s.push_str(" bands=");
            bands(s, &m.bands);
        }
        Message::BundleControl(b) => {
            let _ = write!(
                s,
                "\n bundle_id={:#x} type={}",
                b.bundle_id,
                b.ctrl_type.name()
            );
            bundle_flags(s, b.flags);
        }
        Message::BundleAdd(b) => {
            let _ = write!(s, "\n bundle_id={:#x}", b.bundle_id);
            bundle_flags(s, b.flags);
            let inner = Header {
                version: crate::OFP13_VERSION,
                msg_type: b.message.msg_type(),
                length: 0,
                // The bundled message travels with the outer message's xid.
                xid,
            };
            let _ = write!(s, "\n{}", print(&inner, &b.message));
        }
        Message::Unknown { body, .. } => {
            let _ = write!(s, "\n{}", hex_dump(body));
        }
        Message::FeaturesRequest
        | Message::GetConfigRequest
        | Message::BarrierRequest
        | Message::BarrierReply
        | Message::GetAsyncRequest => {}
    }
}

fn bundle_flags(s: &mut String, flags: u16) {
    let mut names = Vec::new();
    if flags & 1 != 0 {
        names.push("atomic");
    }
    if flags & 2 != 0 {
        names.push("ordered");
    }
    if !names.is_empty() {
        let _ = write!(s, " flags={}", names.join(" "));
    }
}

fn reasons(mask: u32, names: &[&str]) -> String {
    let v: Vec<&str> = names
        .iter()
        .enumerate()
        .filter(|(i, _)| mask & (1 << i) != 0)
        .map(|(_, n)| *n)
        .collect();
    if v.is_empty() {
        "(off)".into()
    } else {
        v.join(" ")
    }
}

fn role_name(r: u32) -> String {
    match r {
        0 => "nochange".into(),
        1 => "equal".into(),
        2 => "primary".into(),
        3 => "secondary".into(),
        n => n.to_string(),
    }
}

fn meter_id(id: u32) -> String {
    match id {
        0xffff_ffff => "all".into(),
        0xffff_fffe => "controller".into(),
        0xffff_fffd => "slowpath".into(),
        n => n.to_string(),
    }
}

fn group_type(t: GroupType) -> String {
    match t {
        GroupType::All => "all".into(),
        GroupType::Select => "select".into(),
        GroupType::Indirect => "indirect".into(),
        GroupType::FastFailover => "ff".into(),
        GroupType::Unknown(n) => n.to_string(),
    }
}

fn buckets(s: &mut String, bs: &[Bucket]) {
    for b in bs {
        s.push_str(",bucket=");
        let mut parts = Vec::new();
        if b.weight != 0 {
            parts.push(format!("weight:{}", b.weight));
        }
        if b.watch_port != 0xffff_ffff {
            parts.push(format!("watch_port:{}", port_name(b.watch_port)));
        }
        if b.watch_group != 0xffff_ffff {
            parts.push(format!("watch_group:{}", b.watch_group));
        }
        parts.push(format!("actions={}", ActionList(&b.actions)));
        s.push_str(&parts.join(","));
    }
}

fn bands(s: &mut String, bands: &[MeterBand]) {
    for b in bands {
        match b {
            MeterBand::Drop { rate, burst_size } => {
                let _ = write!(s, "\ntype=drop rate={rate}");
                if *burst_size != 0 {
                    let _ = write!(s, " burst_size={burst_size}");
                }
            }
            MeterBand::DscpRemark {
                rate,
                burst_size,
                prec_level,
            } => {
                let _ = write!(s, "\ntype=dscp_remark rate={rate}");
                if *burst_size != 0 {
                    let _ = write!(s, " burst_size={burst_size}");
                }
                let _ = write!(s, " prec_level={prec_level}");
            }
            MeterBand::Experimenter {
                rate, experimenter, ..
            } => {
                let _ = write!(s, "\ntype=experimenter({experimenter:#x}) rate={rate}");
            }
        }
    }
}

fn mac(m: &[u8; 6]) -> String {
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        m[0], m[1], m[2], m[3], m[4], m[5]
    )
}

fn config_names(c: u32) -> String {
    let v = flags_names(c, &PORT_CONFIG);
    if v.is_empty() {
        "0".into()
    } else {
        v.join(" ")
    }
}

fn port_line(p: &crate::msg::Port) -> String {
    format!(
        "{}({}): addr:{}",
        port_name(p.port_no),
        p.name,
        mac(&p.hw_addr)
    )
}

fn mp_request(s: &mut String, body: &MultipartRequest) {
    match body {
        MultipartRequest::Flow(f) | MultipartRequest::Aggregate(f) => {
            if f.table_id != 0xff {
                let _ = write!(s, " table={}", f.table_id);
            }
            if f.out_port != 0xffff_ffff {
                let _ = write!(s, " out_port={}", port_name(f.out_port));
            }
            let m = f.match_.to_string();
            if !m.is_empty() {
                let _ = write!(s, " {m}");
            }
        }
        // OpenFlow 1.3 has no body for these; OVS says what they cover.
        MultipartRequest::GroupDesc => s.push_str(" group_id=ALL"),
        MultipartRequest::PortDesc => s.push_str(" port=ANY"),
        MultipartRequest::PortStats { port_no } => {
            let _ = write!(s, " port_no={}", port_name(*port_no));
        }
        MultipartRequest::Queue { port_no, queue_id } => {
            let q = if *queue_id == 0xffff_ffff {
                "ALL".to_string()
            } else {
                queue_id.to_string()
            };
            let _ = write!(s, " port={} queue={q}", port_name(*port_no));
        }
        MultipartRequest::Group { group_id } => {
            let g = if *group_id == crate::msg::group_meter::GROUP_ALL {
                "ALL".to_string()
            } else {
                group_id.to_string()
            };
            let _ = write!(s, " group_id={g}");
        }
        MultipartRequest::Meter { meter_id: id }
        | MultipartRequest::MeterConfig { meter_id: id } => {
            let _ = write!(s, " meter={}", meter_id(*id));
        }
        _ => {}
    }
}

fn mp_reply(s: &mut String, body: &MultipartReply) {
    match body {
        MultipartReply::Desc(d) => {
            let _ = write!(
                s,
                "\nManufacturer: {}\nHardware: {}\nSoftware: {}\nSerial Num: {}\nDP Description: {}",
                d.mfr_desc, d.hw_desc, d.sw_desc, d.serial_num, d.dp_desc
            );
        }
        MultipartReply::Flow(flows) => {
            for f in flows {
                let _ = write!(
                    s,
                    "\n cookie={:#x}, duration={}, table={}, n_packets={}, n_bytes={}, ",
                    f.cookie,
                    duration(f.duration_sec, f.duration_nsec),
                    f.table_id,
                    f.packet_count,
                    f.byte_count
                );
                if f.idle_timeout != 0 {
                    let _ = write!(s, "idle_timeout={}, ", f.idle_timeout);
                }
                if f.hard_timeout != 0 {
                    let _ = write!(s, "hard_timeout={}, ", f.hard_timeout);
                }
                let m = match_with_priority(&f.match_, f.priority);
                if !m.is_empty() {
                    let _ = write!(s, "{m} ");
                }
                let _ = write!(s, "actions={}", InstructionList(&f.instructions));
            }
        }
        MultipartReply::Aggregate(a) => {
            let _ = write!(
                s,
                " packet_count={} byte_count={} flow_count={}",
                a.packet_count, a.byte_count, a.flow_count
            );
        }
        MultipartReply::Table(tables) => {
            for (i, t) in tables.iter().enumerate() {
                if i > 0 {
                    s.push('\n');
                }
                let _ = write!(
                    s,
                    "\n  table {}:\n    active={}, lookup={}, matched={}",
                    t.table_id, t.active_count, t.lookup_count, t.matched_count
                );
            }
        }
        MultipartReply::PortStats(ports) => {
            let _ = write!(s, " {} ports", ports.len());
            for p in ports {
                let _ = write!(
                    s,
                    "\n  port {:>2}: rx pkts={}, bytes={}, drop={}, errs={}, frame={}, over={}, crc={}\n           tx pkts={}, bytes={}, drop={}, errs={}, coll={}\n           duration={}",
                    port_name(p.port_no),
                    p.rx_packets,
                    p.rx_bytes,
                    p.rx_dropped,
                    p.rx_errors,
                    p.rx_frame_err,
                    p.rx_over_err,
                    p.rx_crc_err,
                    p.tx_packets,
                    p.tx_bytes,
                    p.tx_dropped,
                    p.tx_errors,
                    p.collisions,
                    duration(p.duration_sec, p.duration_nsec)
                );
                if p.duration_sec == u32::MAX {
                    // Unknown duration: OVS leaves the line out.
                    let cut = s.rfind("\n           duration=").expect("just written");
                    s.truncate(cut);
                }
            }
        }
        MultipartReply::Queue(queues) => {
            let _ = write!(s, " {} queues", queues.len());
            for q in queues {
                let _ = write!(
                    s,
                    "\n  port {} queue {}: bytes={}, pkts={}, errors={}, duration={}",
                    port_name(q.port_no),
                    q.queue_id,
                    q.tx_bytes,
                    q.tx_packets,
                    q.tx_errors,
                    if q.duration_sec == u32::MAX {
                        "?".to_string()
                    } else {
                        duration(q.duration_sec, q.duration_nsec)
                    }
                );
            }
        }
        MultipartReply::Group(groups) => {
            for g in groups {
                let _ = write!(
                    s,
                    "\n group_id={},duration={},ref_count={},packet_count={},byte_count={}",
                    g.group_id,
                    duration(g.duration_sec, g.duration_nsec),
                    g.ref_count,
                    g.packet_count,
                    g.byte_count
                );
                for (i, (p, b)) in g.buckets.iter().enumerate() {
                    let _ = write!(s, ",bucket{i}:packet_count={p},byte_count={b}");
                }
            }
        }
        MultipartReply::GroupDesc(groups) => {
            for g in groups {
                let _ = write!(
                    s,
                    "\n group_id={},type={}",
                    g.group_id,
                    group_type(g.group_type)
                );
                buckets(s, &g.buckets);
            }
        }
        MultipartReply::GroupFeatures(g) => {
            let _ = write!(
                s,
                "\n Group table:\n    Types:  {:#x}\n    Capabilities:  {:#x}",
                g.types, g.capabilities
            );
        }
        MultipartReply::Meter(meters) => {
            s.push('\n');
            for m in meters {
                let _ = writeln!(
                    s,
                    "meter:{} flow_count:{} packet_in_count:{} byte_in_count:{} duration:{}.{:09}s bands:",
                    meter_id(m.meter_id),
                    m.flow_count,
                    m.packet_in_count,
                    m.byte_in_count,
                    m.duration_sec,
                    m.duration_nsec
                );
                for (i, (p, b)) in m.bands.iter().enumerate() {
                    let _ = writeln!(s, "{i}: packet_count:{p} byte_count:{b}");
                }
                s.push('\n');
            }
        }
        MultipartReply::MeterConfig(meters) => {
            s.push('\n');
            for m in meters {
                let _ = write!(s, "meter={}", meter_id(m.meter_id));
                for n in flags_names(m.flags, &meter_flags::NAMES) {
                    let _ = write!(s, " {n}");
                }
                s.push_str(" bands=");
                bands(s, &m.bands);
                s.push_str("\n\n");
            }
        }
        MultipartReply::MeterFeatures(f) => {
            let types: Vec<&str> = [(1u32 << 1, "drop"), (1 << 2, "dscp_remark")]
                .iter()
                .filter(|(b, _)| f.band_types & b != 0)
                .map(|(_, n)| *n)
                .collect();
            let caps = flags_names(
                f.capabilities,
                &[(1u32, "kbps"), (2, "pktps"), (4, "burst"), (8, "stats")],
            );
            let _ = write!(
                s,
                "\nmax_meter:{} max_bands:{} max_color:{}\nband_types: {}\ncapabilities: {}",
                f.max_meter,
                f.max_bands,
                f.max_color,
                types.join(" "),
                caps.join(" ")
            );
        }
        MultipartReply::PortDesc(ports) => {
            for p in ports {
                let _ = write!(s, "\n {}", port_line(p));
            }
        }
        MultipartReply::Raw { body, .. } => {
            // Not decoded (table features, experimenter): say how much there is.
            let _ = write!(s, "\n ({} bytes of body, not decoded)", body.len());
        }
    }
}

/// Hex dump in OVS's style (`ds_put_hex_dump` with ASCII): offset, 16 bytes with a dash in the
/// middle, then the printable characters between bars.
pub fn hex_dump(data: &[u8]) -> String {
    let mut s = String::new();
    for (i, chunk) in data.chunks(16).enumerate() {
        let _ = write!(s, "{:08x}  ", i * 16);
        for (j, b) in chunk.iter().enumerate() {
            let sep = if j == 7 { '-' } else { ' ' };
            let _ = write!(s, "{b:02x}{sep}");
        }
        for _ in chunk.len()..16 {
            s.push_str("   ");
        }
        s.push('|');
        for b in chunk {
            s.push(if (32..127).contains(b) {
                char::from(*b)
            } else {
                '.'
            });
        }
        for _ in chunk.len()..16 {
            s.push(' ');
        }
        s.push_str("|\n");
    }
    s
}

/// Reads hex as people paste it: whitespace, `:` separators and `0x` prefixes are ignored.
pub fn parse_hex(text: &str) -> Result<Vec<u8>, String> {
    let mut digits = String::with_capacity(text.len());
    for word in text.split_whitespace() {
        let word = word.strip_prefix("0x").unwrap_or(word);
        digits.extend(word.chars().filter(|c| *c != ':'));
    }
    if digits.is_empty() {
        return Err("no hex given".into());
    }
    if let Some((i, c)) = digits.char_indices().find(|(_, c)| !c.is_ascii_hexdigit()) {
        return Err(format!("'{c}' at digit {i} is not a hex digit"));
    }
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits ({})", digits.len()));
    }
    Ok((0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).expect("checked hex digits"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_hex_as_pasted() {
        assert_eq!(
            parse_hex("0x04 00:00 08\n00000001").unwrap(),
            vec![4, 0, 0, 8, 0, 0, 0, 1]
        );
        assert!(parse_hex("04 0").unwrap_err().contains("odd"));
        assert!(parse_hex("zz").unwrap_err().contains("not a hex digit"));
    }

    #[test]
    fn says_where_a_stream_goes_wrong() {
        // A good barrier request, then a truncated flow mod header.
        let bytes = parse_hex("0414000800000001 040e0040000000").unwrap();
        let e = ofp_print(&bytes).unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        let ok = ofp_print(&parse_hex("0414000800000001").unwrap()).unwrap();
        assert_eq!(ok, "OFPT_BARRIER_REQUEST (OF1.3) (xid=0x1):\n");
    }
}
