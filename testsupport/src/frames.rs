//! Hand-made Ethernet frames sent through a raw packet socket inside a namespace: for tests that
//! forge what a container sends (another source address, another MAC, a lying ARP reply), which
//! the kernel's own stack would never put on the wire.
//!
//! Test code only; it allows `unsafe` for the raw packet socket (no crate of the workspace wraps
//! `AF_PACKET` sends safely).
#![allow(unsafe_code)]

use std::net::Ipv4Addr;

use crate::Netns;

pub type Mac = [u8; 6];

pub const BROADCAST: Mac = [0xff; 6];

/// `aa:bb:cc:dd:ee:ff` as bytes.
pub fn mac(s: &str) -> Mac {
    let v: Vec<u8> = s
        .trim()
        .split(':')
        .map(|b| u8::from_str_radix(b, 16).expect("a MAC"))
        .collect();
    v.try_into().expect("six bytes")
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn ethernet(dst: Mac, src: Mac, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An ICMP echo request `src_ip` → `dst_ip` in an Ethernet frame `src` → `dst`.
pub fn icmp_echo(src: Mac, dst: Mac, src_ip: Ipv4Addr, dst_ip: Ipv4Addr, seq: u16) -> Vec<u8> {
    let mut icmp = vec![8, 0, 0, 0, 0x57, 0x46];
    icmp.extend_from_slice(&seq.to_be_bytes());
    icmp.extend_from_slice(b"weft forged frame, must be dropped");
    let c = checksum(&icmp);
    icmp[2..4].copy_from_slice(&c.to_be_bytes());
    let total = (20 + icmp.len()) as u16;
    let mut ip = vec![0x45, 0];
    ip.extend_from_slice(&total.to_be_bytes());
    ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 1, 0, 0]);
    ip.extend_from_slice(&src_ip.octets());
    ip.extend_from_slice(&dst_ip.octets());
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&icmp);
    ethernet(dst, src, 0x0800, &ip)
}

/// An ARP message (`op` 1 request, 2 reply) in an Ethernet frame `eth_src` → `eth_dst`.
pub fn arp(
    eth_src: Mac,
    eth_dst: Mac,
    op: u16,
    sha: Mac,
    spa: Ipv4Addr,
    tha: Mac,
    tpa: Ipv4Addr,
) -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4];
    a.extend_from_slice(&op.to_be_bytes());
    a.extend_from_slice(&sha);
    a.extend_from_slice(&spa.octets());
    a.extend_from_slice(&tha);
    a.extend_from_slice(&tpa.octets());
    ethernet(eth_dst, eth_src, 0x0806, &a)
}

/// Sends every frame of `frames`, `times` times each, out of `ifname` in `ns` through a raw
/// packet socket (on a thread that enters the namespace), 10 ms apart.
pub fn send(ns: &Netns, ifname: &str, frames: &[Vec<u8>], times: usize) {
    use nix::libc;
    let path = ns.path();
    let ifname = std::ffi::CString::new(ifname).expect("interface name");
    let frames = frames.to_vec();
    std::thread::spawn(move || {
        crate::setns_net(std::fs::File::open(path).expect("namespace"));
        // SAFETY: plain socket calls on a descriptor this thread owns and closes; the buffers
        // outlive the calls.
        unsafe {
            let fd = libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0);
            assert!(
                fd >= 0,
                "packet socket: {}",
                std::io::Error::last_os_error()
            );
            let index = libc::if_nametoindex(ifname.as_ptr());
            assert!(index > 0, "{ifname:?}: {}", std::io::Error::last_os_error());
            let mut sa: libc::sockaddr_ll = std::mem::zeroed();
            sa.sll_family = libc::AF_PACKET as u16;
            sa.sll_ifindex = index as i32;
            sa.sll_halen = 6;
            for _ in 0..times {
                for f in &frames {
                    sa.sll_addr[..6].copy_from_slice(&f[..6]);
                    let n = libc::sendto(
                        fd,
                        f.as_ptr().cast(),
                        f.len(),
                        0,
                        (&sa as *const libc::sockaddr_ll).cast(),
                        std::mem::size_of::<libc::sockaddr_ll>() as u32,
                    );
                    assert_eq!(
                        n,
                        f.len() as isize,
                        "sendto: {}",
                        std::io::Error::last_os_error()
                    );
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
            }
            libc::close(fd);
        }
    })
    .join()
    .expect("sender thread");
}

/// The packet count of the spoof guard's default (drop) flow, `table=10, priority=0`, in
/// `ovs-ofctl dump-flows` of `bridge`: what it dropped so far.
pub fn spoof_guard_drops(ovs: &crate::Ovs, bridge: &str) -> u64 {
    let dump = ovs.ofctl("dump-flows", bridge, &["table=10"]);
    let line = dump
        .lines()
        .find(|l| l.contains("priority=0 "))
        .unwrap_or_else(|| panic!("no default flow in table 10:\n{dump}"));
    line.split("n_packets=")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no packet count: {line}"))
}
