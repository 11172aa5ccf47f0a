//! Live traces: a real packet, tagged in its DSCP bits (as Antrea's Traceflow does), injected
//! at a local endpoint's port by a packet-out, and a temporary observation flow (its own cookie,
//! hard timeout) at the top of the output table that sends the tagged packet to netplugin
//! instead of out. Seen there: it was forwarded, and the output register says where. Not seen
//! within the wait: it was dropped on the way (the simulated trace says by what).
//!
//! The observation flow matches the probe alone (tag, addresses, protocol, source port), so no
//! other traffic is touched; the reconciler ignores it ([`CookieKind::Trace`]). One live trace
//! at a time per host. The probe is a real first packet: an allowed one commits its connection,
//! a logged rule logs it.

use std::net::Ipv4Addr;
use std::time::Duration;

use ofproto::action::{Action, Controller2};
use ofproto::instruction::Instruction;
use ofproto::msg::{FlowMod, Message, PacketOut};
use ofproto::oxm::{Field, Match};
use weft_policy::layout::{self, CookieKind};
use weft_policy::sim::{L3, L4};
use weft_policy::Packet;

/// How long a probe is waited for at the output table.
pub const WAIT: Duration = Duration::from_secs(1);
/// The observation flow's hard timeout, seconds: it goes even if netplugin does not remove it.
pub const HARD_TIMEOUT: u16 = 5;

const OFPP_TABLE: u32 = 0xffff_fff9;

/// What the observation flow saw of the probe: the output port the pipeline chose (reg7) and
/// the tunnel metadata it set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    pub port: u32,
    pub tun_id: u64,
    pub tun_dst: Ipv4Addr,
}

fn checksum(data: &[u8], init: u32) -> u16 {
    let mut sum: u32 = init;
    for c in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// The probe's frame: `p` with DSCP `tag` (TCP: a SYN), checksums right (the userspace
/// datapath's conntrack checks them).
pub fn frame(p: &Packet, tag: u8) -> Option<Vec<u8>> {
    let L3::Ipv4(ip) = p.l3 else { return None };
    let (proto, l4) = match ip.l4 {
        L4::Tcp { src, dst } => {
            let mut t = vec![0u8; 20];
            t[0..2].copy_from_slice(&src.to_be_bytes());
            t[2..4].copy_from_slice(&dst.to_be_bytes());
            t[4..8].copy_from_slice(&0x5745_4654u32.to_be_bytes());
            t[12] = 5 << 4;
            t[13] = 0x02; // SYN
            t[14..16].copy_from_slice(&64240u16.to_be_bytes());
            (6u8, t)
        }
        L4::Udp { src, dst } => {
            let mut u = vec![0u8; 8];
            u[0..2].copy_from_slice(&src.to_be_bytes());
            u[2..4].copy_from_slice(&dst.to_be_bytes());
            u.extend_from_slice(b"weft live trace");
            let len = u.len() as u16;
            u[4..6].copy_from_slice(&len.to_be_bytes());
            (17u8, u)
        }
        L4::Icmp { typ, code } => {
            let mut i = vec![typ, code, 0, 0, 0x57, 0x46, 0, 1];
            i.extend_from_slice(b"weft live trace");
            let c = checksum(&i, 0);
            i[2..4].copy_from_slice(&c.to_be_bytes());
            (1u8, i)
        }
        L4::Other(_) => return None,
    };
    if proto != 1 {
        // The pseudo-header: addresses, protocol, length.
        let mut pseudo = vec![];
        pseudo.extend_from_slice(&ip.src.octets());
        pseudo.extend_from_slice(&ip.dst.octets());
        pseudo.extend_from_slice(&[0, proto]);
        pseudo.extend_from_slice(&(l4.len() as u16).to_be_bytes());
        pseudo.extend_from_slice(&l4);
        let c = checksum(&pseudo, 0);
        let at = if proto == 6 { 16 } else { 6 };
        let mut l4 = l4;
        l4[at..at + 2].copy_from_slice(&c.to_be_bytes());
        return Some(assemble(p, ip.src, ip.dst, ip.ttl, tag, proto, &l4));
    }
    Some(assemble(p, ip.src, ip.dst, ip.ttl, tag, proto, &l4))
}

fn assemble(
    p: &Packet,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ttl: u8,
    tag: u8,
    proto: u8,
    l4: &[u8],
) -> Vec<u8> {
    let total = (20 + l4.len()) as u16;
    let mut ip = vec![0x45, tag << 2];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0x40, 0, ttl, proto, 0, 0]);
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = checksum(&ip, 0);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(l4);
    let mut f = Vec::with_capacity(14 + ip.len());
    f.extend_from_slice(&p.eth_dst);
    f.extend_from_slice(&p.eth_src);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    f.extend_from_slice(&ip);
    f
}

/// The cookie of the observation flow for `tag`.
pub fn cookie(tag: u8) -> u64 {
    layout::cookie(CookieKind::Trace, &format!("live trace {tag}"))
}

/// The observation flow: the probe alone (`tag`, addresses, protocol, source port), at the top
/// of the output table, to netplugin instead of out.
pub fn observation(p: &Packet, tag: u8) -> Option<FlowMod> {
    let L3::Ipv4(ip) = p.l3 else { return None };
    let mut m = Match::new()
        .eth_type(0x0800)
        .with(Field::IpDscp, u128::from(tag))
        .ipv4(Field::Ipv4Src, ip.src, 32)
        .ipv4(Field::Ipv4Dst, ip.dst, 32)
        .ip_proto(ip.l4.proto());
    match ip.l4 {
        L4::Tcp { src, .. } => m = m.with(Field::TcpSrc, u128::from(src)),
        L4::Udp { src, .. } => m = m.with(Field::UdpSrc, u128::from(src)),
        _ => {}
    }
    let mut f = FlowMod::add(
        layout::OUTPUT,
        0xffff,
        m,
        vec![Instruction::ApplyActions(vec![Action::Controller2(
            Controller2::with_userdata(vec![tag]),
        )])],
    );
    f.cookie = cookie(tag);
    f.hard_timeout = HARD_TIMEOUT;
    Some(f)
}

/// Injects `p` (tagged `tag`) at its input port and waits for the observation flow to see it.
pub async fn probe(
    driver: &crate::ofdriver::OfDriver,
    p: &Packet,
    tag: u8,
) -> Result<Option<Seen>, String> {
    let frame = frame(p, tag).ok_or("only IPv4 tcp, udp and icmp are traced live")?;
    let flow = observation(p, tag).ok_or("only IPv4 is traced live")?;
    let c = flow.cookie;
    let mut rx = driver.packet_ins();
    driver
        .bundle(vec![Message::FlowMod(flow)])
        .await
        .map_err(|e| format!("installing the observation flow: {e}"))?;
    let sent = driver
        .packet_out(PacketOut::new(
            p.in_port,
            vec![Action::output(OFPP_TABLE)],
            frame,
        ))
        .await
        .map_err(|e| format!("injecting the probe: {e}"));
    let seen = match sent {
        Err(e) => Err(e),
        Ok(()) => {
            let wait = async {
                loop {
                    match rx.recv().await {
                        Ok(pin) if pin.cookie == c => {
                            let get = |f: Field| pin.match_.get(f).map_or(0, |m| m.value());
                            return Some(Seen {
                                port: get(Field::Reg(layout::REG_OUT_PORT)) as u32,
                                tun_id: get(Field::TunnelId) as u64,
                                tun_dst: Ipv4Addr::from(get(Field::TunIpv4Dst) as u32),
                            });
                        }
                        Ok(_) => continue,
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(_) => return None,
                    }
                }
            };
            Ok(tokio::time::timeout(WAIT, wait).await.ok().flatten())
        }
    };
    // Gone now, whatever happened (else at its hard timeout).
    let _ = driver
        .bundle(vec![Message::FlowMod(FlowMod::delete_by_cookie(
            c,
            u64::MAX,
        ))])
        .await;
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_carry_their_tag_and_right_checksums() {
        let p = Packet::tcp(
            2,
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            5432,
        );
        let f = frame(&p, 9).unwrap();
        assert_eq!(f[15] >> 2, 9, "DSCP");
        assert_eq!(checksum(&f[14..34], 0), 0, "IPv4 header checksum");
        let mut pseudo = vec![10, 0, 0, 1, 10, 0, 0, 2, 0, 6, 0, 20];
        pseudo.extend_from_slice(&f[34..]);
        assert_eq!(checksum(&pseudo, 0), 0, "TCP checksum");
        assert_eq!(crate::verdict::five_tuple(&f).unwrap().3, Some(5432));
        let o = observation(&p, 9).unwrap();
        assert_eq!(o.table_id, layout::OUTPUT);
        assert!(o.match_.to_string().contains("nw_tos=36"), "{}", o.match_);
        assert_eq!(CookieKind::from_cookie(o.cookie), Some(CookieKind::Trace));
    }

    #[test]
    fn the_reconciler_does_not_see_observation_flows() {
        let p = Packet::tcp(
            2,
            [2, 0, 0, 0, 0, 1],
            [2, 0, 0, 0, 0, 2],
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            5432,
        );
        let o = observation(&p, 3).unwrap();
        let stats = |cookie: u64| ofproto::msg::multipart::FlowStats {
            table_id: o.table_id,
            duration_sec: 0,
            duration_nsec: 0,
            priority: o.priority,
            idle_timeout: 0,
            hard_timeout: o.hard_timeout,
            flags: 0,
            cookie,
            packet_count: 0,
            byte_count: 0,
            match_: o.match_.clone(),
            instructions: o.instructions.clone(),
        };
        let seen = weft_policy::FlowSet::from_switch(&[stats(o.cookie)], &[]);
        assert!(seen.flows.is_empty(), "{seen}");
        // The same flow with a stranger's cookie is the switch's drift.
        let seen = weft_policy::FlowSet::from_switch(&[stats(0x42)], &[]);
        assert_eq!(seen.flows.len(), 1);
    }
}
