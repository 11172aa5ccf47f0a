//! The host gateway: a veth pair between this host's own IP stack (`weft-gw`) and the integration
//! bridge (`weft-gw-p`), the routes that send host traffic for Weft's prefixes into the bridge, and
//! the masquerade rule for traffic that leaves the host from Weft's transit addresses.
//!
//! Everything here works in the network namespace of the calling thread (netplugin's own, the
//! host's), over netlink: rtnetlink for links and routes ([`crate::kernel`]), nf_tables for the
//! masquerade ([`crate::nft`]), OVSDB for the port. The flows that use the port are compiled
//! elsewhere (`policy`).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::time::Duration;

use ipnet::Ipv4Net;
use ovsdb::vswitch::{self, PortKind, PortSpec};

use crate::kernel::{self, KernelError};

/// The gateway's end in the host's IP stack.
pub const GW_IFNAME: &str = "weft-gw";
/// The gateway's end on the integration bridge.
pub const GW_PORT: &str = "weft-gw-p";

/// The routing protocol number that marks a route as Weft's (`proto 167` in `ip route`): unused
/// by the kernel and by iproute2's `rt_protos`. [`sync`] only ever removes routes carrying it.
pub const RTPROT_WEFT: u8 = 0xa7;

/// The `external_ids` Weft puts on the gateway port.
const EXT_KEY: &str = "weft";
const EXT_VALUE: &str = "gateway";

/// How long Open vSwitch may take to give the port its number.
const OFPORT_WAIT: Duration = Duration::from_secs(10);

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// The gateway as it was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostGateway {
    pub ofport: u32,
    pub mac: [u8; 6],
}

/// Desired kernel state around the gateway; `sync` makes the host equal to it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostRoutes {
    /// The source address for routes into the bridge (this node's address).
    pub src: Option<Ipv4Addr>,
    /// Prefixes routed into br-int through weft-gw (host-access subnets, /32 transit addresses).
    pub prefixes: Vec<Ipv4Net>,
    /// Source prefix masqueraded when leaving through any interface other than weft-gw; None: no rule.
    pub masquerade: Option<Ipv4Net>,
}

/// What went wrong making the host gateway or its routes.
#[derive(Debug, thiserror::Error)]
pub enum HostGwError {
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(transparent)]
    Offload(#[from] crate::offload::OffloadError),
    #[error("veth {GW_IFNAME}/{GW_PORT} vanished after creation")]
    Vanished,
    #[error("{what}: {source}")]
    Ovsdb {
        what: String,
        #[source]
        source: ovsdb::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// Routes or the masquerade rule that could not be made right (every one was tried).
    #[error("{0}")]
    Routes(Problems),
}

/// The problems of one [`sync`], reported together (`; ` between them).
#[derive(Debug)]
pub struct Problems(pub Vec<RouteProblem>);

impl std::fmt::Display for Problems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, p) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{p}")?;
        }
        Ok(())
    }
}

/// One route (or the masquerade rule) [`sync`] could not make right.
#[derive(Debug, thiserror::Error)]
pub enum RouteProblem {
    #[error(
        "{GW_IFNAME} does not exist (the gateway is made by hostgw::ensure): no routes to {}",
        .0.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
    )]
    NoGateway(Vec<Ipv4Net>),
    #[error(transparent)]
    Kernel(KernelError),
    #[error("masquerade: {0}")]
    Masquerade(#[source] crate::nft::NftError),
}

/// Creates (or finds) the veth pair, sets `mac` on weft-gw, MTU `mtu` on both ends, both up,
/// tx checksum offload off on both (the userspace datapath needs it: see [`crate::offload`]),
/// leaves weft-gw-p to the bridge ([`kernel::bridge_only`]), adds it to `bridge` over OVSDB,
/// turns on IPv4 forwarding in this namespace, and returns the port's OpenFlow number.
///
/// Idempotent: what is already right is not touched (a second call with the same arguments
/// sends no change to the kernel or the database); a weft-gw with another MAC or MTU gets the
/// right one; a lone end, or two ends that are not each other's peer, are replaced by a new pair.
pub async fn ensure(
    db: &ovsdb::Client,
    bridge: &str,
    mac: [u8; 6],
    mtu: u32,
) -> Result<HostGateway, HostGwError> {
    let h = kernel::connect()?;
    let mut gw = kernel::link_state(&h, GW_IFNAME).await?;
    let mut port = kernel::link_state(&h, GW_PORT).await?;
    let paired = match (&gw, &port) {
        (Some(g), Some(p)) => g.link == Some(p.index) && p.link == Some(g.index),
        _ => false,
    };
    if !paired {
        // Whatever is there under our names is not our pair: a crash halfway, or a stray.
        for name in [GW_IFNAME, GW_PORT] {
            kernel::remove(name).await?;
        }
        kernel::create_veth_here(&h, GW_IFNAME, GW_PORT, mtu).await?;
        gw = kernel::link_state(&h, GW_IFNAME).await?;
        port = kernel::link_state(&h, GW_PORT).await?;
    }
    let (Some(gw), Some(port)) = (gw, port) else {
        return Err(HostGwError::Vanished);
    };
    kernel::bridge_only(GW_PORT)?;
    for name in [GW_IFNAME, GW_PORT] {
        crate::offload::tx_checksum_off(name)?;
    }
    let gw_mac = (gw.mac != Some(mac)).then_some(mac);
    let gw_mtu = (gw.mtu != mtu).then_some(mtu);
    if gw_mac.is_some() || gw_mtu.is_some() || !gw.up {
        kernel::set_link(&h, GW_IFNAME, gw.index, gw_mac, gw_mtu, true).await?;
    }
    if port.mtu != mtu || !port.up {
        let port_mtu = (port.mtu != mtu).then_some(mtu);
        kernel::set_link(&h, GW_PORT, port.index, None, port_mtu, true).await?;
    }
    ip_forward_on()?;
    ensure_port(db, bridge).await?;
    let ofport = vswitch::ofport(db, GW_PORT, OFPORT_WAIT)
        .await
        .map_err(|source| HostGwError::Ovsdb {
            what: format!("OpenFlow port of {GW_PORT}"),
            source,
        })?;
    Ok(HostGateway { ofport, mac })
}

/// `/proc/sys/net/ipv4/ip_forward` = 1 in this namespace, written only when it is not.
fn ip_forward_on() -> Result<(), HostGwError> {
    let now = std::fs::read_to_string(IP_FORWARD).map_err(|source| HostGwError::Io {
        what: format!("reading {IP_FORWARD}"),
        source,
    })?;
    if now.trim() != "1" {
        std::fs::write(IP_FORWARD, "1").map_err(|source| HostGwError::Io {
            what: format!("turning on IPv4 forwarding ({IP_FORWARD})"),
            source,
        })?;
    }
    Ok(())
}

/// weft-gw-p on `bridge`, unless it is already there as Weft leaves it.
async fn ensure_port(db: &ovsdb::Client, bridge: &str) -> Result<(), HostGwError> {
    let external_ids = BTreeMap::from([(EXT_KEY.to_string(), EXT_VALUE.to_string())]);
    let ports = vswitch::ports(db, bridge)
        .await
        .map_err(|source| HostGwError::Ovsdb {
            what: format!("reading the ports of {bridge}"),
            source,
        })?;
    let there = ports
        .iter()
        .any(|p| p.name == GW_PORT && p.kind.is_empty() && p.external_ids == external_ids);
    if there {
        return Ok(());
    }
    vswitch::ensure_port(
        db,
        &PortSpec {
            bridge: bridge.to_string(),
            name: GW_PORT.to_string(),
            kind: PortKind::System,
            tag: None,
            trunks: vec![],
            external_ids,
            ofport_request: None,
        },
    )
    .await
    .map_err(|source| HostGwError::Ovsdb {
        what: format!("adding {GW_PORT} to {bridge}"),
        source,
    })
}

/// Makes the routes via weft-gw and the masquerade rule equal to `want`: adds what is missing,
/// removes what is extra. Only routes carrying [`RTPROT_WEFT`] are ever removed, so an operator's
/// routes are never touched; a route Weft wants whose destination already has a route of someone
/// else's is reported, not replaced. Routes are `PREFIX dev weft-gw src SRC scope link proto 167`
/// in the main table. Cheap when nothing changed: one route dump, one link lookup and the
/// nf_tables dumps of [`crate::nft::sync_masquerade`], and no change sent.
///
/// Every route is tried even when one fails; the errors are reported together.
pub async fn sync(want: &HostRoutes) -> Result<(), HostGwError> {
    let h = kernel::connect()?;
    let mut errors = vec![];
    let mut wanted: Vec<Ipv4Net> = want.prefixes.iter().map(Ipv4Net::trunc).collect();
    wanted.sort();
    wanted.dedup();
    let gw = kernel::index_of(&h, GW_IFNAME).await?;
    if gw.is_none() && !wanted.is_empty() {
        errors.push(RouteProblem::NoGateway(wanted.clone()));
        wanted.clear();
    }
    let have = kernel::routes_of_protocol(&h, RTPROT_WEFT).await?;
    let mut kept = vec![];
    for r in &have {
        let right = gw.is_some()
            && r.oif == gw
            && r.src == want.src
            && wanted.contains(&r.dst)
            && !kept.contains(&r.dst);
        if right {
            kept.push(r.dst);
        } else if let Err(e) = kernel::delete_route(&h, r).await {
            errors.push(RouteProblem::Kernel(e));
        }
    }
    if let Some(gw) = gw {
        for dst in wanted.iter().filter(|d| !kept.contains(d)) {
            if let Err(e) = kernel::add_link_route(&h, *dst, gw, want.src, RTPROT_WEFT).await {
                errors.push(RouteProblem::Kernel(e));
            }
        }
    }
    if let Err(e) = crate::nft::sync_masquerade(want.masquerade, GW_IFNAME).await {
        errors.push(RouteProblem::Masquerade(e));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(HostGwError::Routes(Problems(errors)))
    }
}

/// Removes the masquerade table and Weft's routes (the veth pair and the port stay).
pub async fn remove() -> Result<(), HostGwError> {
    sync(&HostRoutes::default()).await
}
