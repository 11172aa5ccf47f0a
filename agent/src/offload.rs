//! NIC offload settings through the `SIOCETHTOOL` ioctl (what `ethtool -K` does, without the
//! command). The one module of Weft with `unsafe`: the ioctl call.
#![allow(unsafe_code)]

use std::os::fd::AsRawFd;

const SIOCETHTOOL: libc::c_ulong = 0x8946;
const ETHTOOL_STXCSUM: u32 = 0x17;

#[repr(C)]
struct EthtoolValue {
    cmd: u32,
    data: u32,
}

#[repr(C)]
struct IfReq {
    name: [libc::c_char; libc::IFNAMSIZ],
    data: *mut libc::c_void,
    _pad: [u8; 16],
}

/// Why checksum offload could not be turned off.
#[derive(Debug, thiserror::Error)]
pub enum OffloadError {
    #[error("socket for ethtool on {ifname}: {source}")]
    Socket {
        ifname: String,
        #[source]
        source: std::io::Error,
    },
    #[error("interface name {0} is too long")]
    NameTooLong(String),
    #[error("turning off checksum offload on {ifname}: {source}")]
    Ioctl {
        ifname: String,
        #[source]
        source: std::io::Error,
    },
}

/// Turns off transmit checksum offload on `ifname` (in the calling thread's namespace).
///
/// A veth end with it on hands its frames over with the TCP/UDP checksum left for "the
/// hardware" to fill in. The kernel datapath copes; Open vSwitch's userspace datapath reads the
/// frame from a packet socket as it is, and its conntrack then finds the checksum wrong and calls
/// every TCP and UDP packet invalid. Computing the checksum in the container's stack costs little.
pub fn tx_checksum_off(ifname: &str) -> Result<(), OffloadError> {
    // Any AF_INET socket will do for the ioctl.
    let sock = std::net::UdpSocket::bind("0.0.0.0:0").map_err(|source| OffloadError::Socket {
        ifname: ifname.to_string(),
        source,
    })?;
    tx_checksum_off_with(&sock, ifname)
}

/// The same through a socket of the caller's choosing: the interface is looked up in the
/// socket's namespace, so a socket opened inside a container's namespace reaches the
/// container's interfaces from any thread.
pub fn tx_checksum_off_with(sock: &std::net::UdpSocket, ifname: &str) -> Result<(), OffloadError> {
    if ifname.len() >= libc::IFNAMSIZ {
        return Err(OffloadError::NameTooLong(ifname.to_string()));
    }
    let mut value = EthtoolValue {
        cmd: ETHTOOL_STXCSUM,
        data: 0,
    };
    let mut req = IfReq {
        name: [0; libc::IFNAMSIZ],
        data: (&mut value as *mut EthtoolValue).cast(),
        _pad: [0; 16],
    };
    for (d, s) in req.name.iter_mut().zip(ifname.bytes()) {
        *d = s as libc::c_char;
    }
    // SAFETY: req is a valid ifreq whose data points at a live ethtool_value for the call.
    let r = unsafe { libc::ioctl(sock.as_raw_fd(), SIOCETHTOOL as _, &mut req) };
    if r < 0 {
        return Err(OffloadError::Ioctl {
            ifname: ifname.to_string(),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Caps glibc's malloc at `arenas` arenas (`M_ARENA_MAX`). By default glibc gives each thread
/// that allocates concurrently an arena of its own (up to 8 per core), each holding freed memory
/// of its own; an agent that mostly waits needs few. Call first thing in `main`.
pub fn limit_malloc_arenas(arenas: i32) {
    // SAFETY: mallopt only sets a tunable of the allocator; called before threads allocate.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}
