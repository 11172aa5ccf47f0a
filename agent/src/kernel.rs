//! Container interfaces over rtnetlink (no `ip` commands): the veth pair, the container end moved
//! into the container's namespace, named, addressed and routed.
//!
//! Work inside a container's namespace runs on a short-lived OS thread that enters the namespace
//! (`setns`) and opens its own netlink socket there, so the agent's other threads stay in the
//! host namespace.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use futures::TryStreamExt;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags};
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkFlags, LinkMessage};
use rtnetlink::packet_route::route::RouteScope;
use rtnetlink::{Handle, LinkUnspec, LinkVeth, RouteMessageBuilder};

use crate::offload::OffloadError;

/// What went wrong with an interface, an address, a route or a namespace; each says what was
/// being done, with the kernel's error as its source.
#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    /// A netlink request the kernel refused.
    #[error("{what}: {source}")]
    Netlink {
        what: String,
        #[source]
        source: rtnetlink::Error,
    },
    /// A file, socket or thread.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// A system call (entering a namespace).
    #[error("{what}: {source}")]
    Sys {
        what: String,
        #[source]
        source: nix::Error,
    },
    #[error(transparent)]
    Offload(#[from] OffloadError),
    /// The kernel's state is not what the step needs (an interface vanished, a name taken, ...).
    #[error("{0}")]
    Unexpected(String),
}

/// An error of a lower layer, named by what was being done.
pub(crate) trait Source {
    fn doing(self, what: String) -> KernelError;
}

impl Source for rtnetlink::Error {
    fn doing(self, what: String) -> KernelError {
        KernelError::Netlink { what, source: self }
    }
}

impl Source for std::io::Error {
    fn doing(self, what: String) -> KernelError {
        KernelError::Io { what, source: self }
    }
}

impl Source for nix::Error {
    fn doing(self, what: String) -> KernelError {
        KernelError::Sys { what, source: self }
    }
}

/// `result.what(|| "doing X".into())`: the error as a [`KernelError`] saying what was done.
pub(crate) trait What<T> {
    fn what(self, what: impl FnOnce() -> String) -> Result<T, KernelError>;
}

impl<T, E: Source> What<T> for Result<T, E> {
    fn what(self, what: impl FnOnce() -> String) -> Result<T, KernelError> {
        self.map_err(|e| e.doing(what()))
    }
}

/// A veth pair to make: what is known before netmaster has answered.
#[derive(Debug, Clone)]
pub struct VethSpec {
    /// The veth end that stays on the host (and goes on the bridge).
    pub host_if: String,
    /// The container end's name while it stays in the host's namespace (empty `netns`).
    pub temp_peer: String,
    /// The container's network namespace (`/var/run/netns/NAME`, `/proc/PID/ns/net`); empty:
    /// the container end stays here under `temp_peer`, for the runtime to move (Docker).
    pub netns: PathBuf,
    /// Its name inside the container (`eth0`, `net1`, ...).
    pub name: String,
    pub mtu: u32,
}

/// What the container end gets once the address is known.
#[derive(Debug, Clone)]
pub struct InsideSpec {
    pub mac: [u8; 6],
    pub ipv4: Option<Ipv4Net>,
    pub ipv6: Vec<Ipv6Net>,
    /// Default route via this gateway, when given.
    pub default_gateway: Option<Ipv4Addr>,
    /// Extra routes: via a gateway, or straight out of the interface when the gateway is None.
    pub routes: Vec<(IpNet, Option<IpAddr>)>,
}

/// Makes the host's own IP stack leave `ifname` alone: it only carries frames to and from the
/// bridge. No IPv6 of its own (no router solicitations or MLD reports out of it), and no ARP
/// replies for the host's addresses (`arp_ignore=8`). The last matters with the userspace
/// datapath, where the kernel still sees every frame on a bridge port: without it the host
/// answers ARP for its VTEP address on the uplink and on container ports, with their MACs, and
/// the underlay sends tunnel traffic where no tunnel ends.
pub fn bridge_only(ifname: &str) -> Result<(), KernelError> {
    for (path, value, what) in [
        (
            format!("/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6"),
            "1",
            "disabling IPv6",
        ),
        (
            format!("/proc/sys/net/ipv4/conf/{ifname}/arp_ignore"),
            "8",
            "turning off ARP replies",
        ),
    ] {
        if std::path::Path::new(&path).exists() {
            std::fs::write(&path, value).what(|| format!("{what} on {ifname}"))?;
        }
    }
    Ok(())
}

/// What a container interface looks like now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub mac: String,
    pub up: bool,
    pub mtu: u32,
    pub addrs: Vec<IpNet>,
}

/// A netlink (rtnetlink) handle in the calling thread's namespace; its connection task runs on
/// the current tokio runtime.
pub(crate) fn connect() -> Result<Handle, KernelError> {
    let (conn, handle, _) =
        rtnetlink::new_connection().what(|| "opening a netlink socket".to_string())?;
    tokio::spawn(conn);
    Ok(handle)
}

pub(crate) async fn index_of(h: &Handle, name: &str) -> Result<Option<u32>, KernelError> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(m)) => Ok(Some(m.header.index)),
        Ok(None) => Ok(None),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc_enodev() => Ok(None),
        Err(e) => Err(e).what(|| format!("looking up {name}")),
    }
}

const fn libc_enodev() -> i32 {
    19
}

const fn libc_eexist() -> i32 {
    17
}

/// Whether a host interface exists.
pub async fn exists(name: &str) -> Result<bool, KernelError> {
    let h = connect()?;
    Ok(index_of(&h, name).await?.is_some())
}

/// Removes a host interface (deleting one end of a veth pair removes both). Absent is fine.
pub async fn remove(name: &str) -> Result<bool, KernelError> {
    remove_with(&connect()?, name).await
}

async fn remove_with(h: &Handle, name: &str) -> Result<bool, KernelError> {
    let Some(idx) = index_of(h, name).await? else {
        return Ok(false);
    };
    match h.link().del(idx).execute().await {
        Ok(()) => Ok(true),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc_enodev() => Ok(false),
        Err(e) => Err(e).what(|| format!("deleting {name}")),
    }
}

/// A veth pair made for a container, its container end not yet configured.
///
/// The container end is born in the container's namespace under its final name and MTU, in the
/// same request that makes the pair: moving a device between namespaces costs the kernel an RCU
/// grace period (~15 ms here), creating it there costs nothing extra. Meanwhile a thread opens
/// the sockets that configure it from inside. The caller removes the pair ([`remove`] of
/// `host_if`) when a later step fails.
pub struct Pair {
    spec: VethSpec,
    /// Netlink in this (the host's) namespace.
    h: Handle,
    /// Sockets in the container's namespace; None when the container end stays here.
    inside: Option<Inside>,
}

impl Pair {
    /// Makes the pair; on failure nothing is left.
    pub async fn create(spec: &VethSpec) -> Result<Pair, KernelError> {
        let h = connect()?;
        if spec.netns.as_os_str().is_empty() {
            // A leftover from a crashed attach under the same names goes first.
            let _ = remove_with(&h, &spec.host_if).await;
            let _ = remove_with(&h, &spec.temp_peer).await;
            h.link()
                .add(
                    LinkVeth::new(&spec.host_if, &spec.temp_peer)
                        .mtu(spec.mtu)
                        .build(),
                )
                .execute()
                .await
                .what(|| format!("creating veth {}", spec.host_if))?;
            return Ok(Pair {
                spec: spec.clone(),
                h,
                inside: None,
            });
        }
        let ns = std::fs::File::open(&spec.netns)
            .what(|| format!("opening namespace {}", spec.netns.display()))?;
        let (inside, made) = tokio::join!(Inside::open(&spec.netns), make_pair_into(&h, spec, &ns));
        made?;
        match inside {
            Ok(inside) => Ok(Pair {
                spec: spec.clone(),
                h,
                inside: Some(inside),
            }),
            Err(e) => {
                let _ = remove_with(&h, &spec.host_if).await;
                Err(e)
            }
        }
    }

    /// The host end: left to the bridge (see [`bridge_only`]), then up.
    pub async fn host_end_up(&self) -> Result<(), KernelError> {
        let name = &self.spec.host_if;
        bridge_only(name)?;
        let host = index_of(&self.h, name)
            .await?
            .ok_or_else(|| KernelError::Unexpected(format!("veth {name} vanished")))?;
        self.h
            .link()
            .set(LinkUnspec::new_with_index(host).up().build())
            .execute()
            .await
            .what(|| format!("bringing {name} up"))
    }

    /// The container end: MAC, checksum offload off (see [`crate::offload`]), up, addresses and
    /// routes; or, left here for the runtime, its MAC.
    pub async fn configure(&self, inside: &InsideSpec) -> Result<(), KernelError> {
        match &self.inside {
            Some(ns) => configure_inside(ns, &self.spec, inside).await,
            None => {
                let peer = &self.spec.temp_peer;
                let idx = index_of(&self.h, peer)
                    .await?
                    .ok_or_else(|| KernelError::Unexpected(format!("veth peer {peer} vanished")))?;
                // Before the runtime moves it: the setting goes with the device.
                crate::offload::tx_checksum_off(peer)?;
                self.h
                    .link()
                    .set(
                        LinkUnspec::new_with_index(idx)
                            .address(inside.mac.to_vec())
                            .build(),
                    )
                    .execute()
                    .await
                    .what(|| format!("setting the MAC of {peer}"))
            }
        }
    }
}

/// The pair, the container end made straight in `ns` (named, with its MTU; not up: a veth end
/// cannot come up before its peer exists, ENOTCONN; its MAC comes with the address). A leftover
/// host end of a crashed attach under the same name is replaced.
async fn make_pair_into(
    h: &Handle,
    spec: &VethSpec,
    ns: &std::fs::File,
) -> Result<(), KernelError> {
    let request = || {
        let peer = rtnetlink::LinkMessageBuilder::<LinkUnspec>::new()
            .name(spec.name.clone())
            .mtu(spec.mtu)
            .setns_by_fd(std::os::fd::AsRawFd::as_raw_fd(ns))
            .build();
        LinkVeth::new(&spec.host_if, &spec.name)
            .mtu(spec.mtu)
            .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)))
            .build()
    };
    for first in [true, false] {
        match h.link().add(request()).execute().await {
            Ok(()) => return Ok(()),
            Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc_eexist() => {
                // Either end's name is taken: ours on the host (a leftover: replaced), or the
                // container's (not ours to touch).
                if first && remove_with(h, &spec.host_if).await? {
                    continue;
                }
                return Err(KernelError::Unexpected(format!(
                    "the container already has an interface named {}",
                    spec.name
                )));
            }
            Err(e) => {
                return Err(e).what(|| {
                    format!(
                        "creating veth {} with {} in {}",
                        spec.host_if,
                        spec.name,
                        spec.netns.display()
                    )
                })
            }
        }
    }
    unreachable!("the loop returns")
}

/// Sockets inside a container's namespace, usable from any thread: a socket stays in the
/// namespace it was opened in. A short-lived thread enters the namespace to open them, so no
/// thread of the agent's runtime ever leaves the host's.
struct Inside {
    /// rtnetlink, its connection task on the caller's runtime.
    h: Handle,
    /// For ethtool ioctls.
    sock: std::net::UdpSocket,
}

impl Inside {
    async fn open(netns: &Path) -> Result<Inside, KernelError> {
        let ns =
            std::fs::File::open(netns).what(|| format!("opening namespace {}", netns.display()))?;
        let where_ = netns.display().to_string();
        let rt = tokio::runtime::Handle::current();
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("weft-netns".into())
            .spawn(move || {
                let r = (|| -> Result<_, KernelError> {
                    nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                        .what(|| format!("entering namespace {where_}"))?;
                    // The netlink socket registers with the caller's runtime, not this thread.
                    let _rt = rt.enter();
                    let (conn, h, _) = rtnetlink::new_connection()
                        .what(|| format!("netlink socket in {where_}"))?;
                    let sock = std::net::UdpSocket::bind("0.0.0.0:0")
                        .what(|| format!("socket in {where_}"))?;
                    Ok((conn, h, sock))
                })();
                let _ = tx.send(r);
            })
            .what(|| "starting a thread".to_string())?;
        let (conn, h, sock) = rx
            .await
            .map_err(|_| KernelError::Unexpected("the namespace thread died".into()))??;
        tokio::spawn(conn);
        Ok(Inside { h, sock })
    }
}

/// The loopback device's index, the same in every namespace.
const LOOPBACK_INDEX: u32 = 1;

/// Inside the container: checksum offload off (see [`crate::offload`]); the addresses, the
/// interface and the loopback up (at once); then the routes (at once: they need the addresses).
async fn configure_inside(
    inside: &Inside,
    veth: &VethSpec,
    spec: &InsideSpec,
) -> Result<(), KernelError> {
    let h = &inside.h;
    let name = &veth.name;
    crate::offload::tx_checksum_off_with(&inside.sock, name)?;
    let idx = index_of(h, name).await?.ok_or_else(|| {
        KernelError::Unexpected(format!("{name} did not arrive in the namespace"))
    })?;
    let mut first = vec![];
    if let Some(a) = spec.ipv4 {
        let req = h.address().add(idx, IpAddr::V4(a.addr()), a.prefix_len());
        first.push(Box::pin(async move {
            req.execute()
                .await
                .what(|| format!("adding {a} to {}", name))
        })
            as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>);
    }
    for a in &spec.ipv6 {
        let mut req = h.address().add(idx, IpAddr::V6(a.addr()), a.prefix_len());
        // No duplicate address detection: the address is ours by allocation, and a tentative
        // address would not be usable for a second or so.
        req.message_mut().header.flags |= AddressHeaderFlags::Nodad;
        req.message_mut()
            .attributes
            .push(AddressAttribute::Flags(AddressFlags::Nodad));
        first.push(Box::pin(async move {
            req.execute()
                .await
                .what(|| format!("adding {a} to {}", name))
        }));
    }
    // The MAC and up in one request (the kernel sets the address before the flags).
    let up = h.link().set(
        LinkUnspec::new_with_index(idx)
            .address(spec.mac.to_vec())
            .up()
            .build(),
    );
    first.push(Box::pin(async move {
        up.execute()
            .await
            .what(|| format!("setting the MAC of {name} and bringing it up"))
    }));
    let lo = h
        .link()
        .set(LinkUnspec::new_with_index(LOOPBACK_INDEX).up().build());
    first.push(Box::pin(async move {
        lo.execute().await.what(|| "bringing lo up".to_string())
    }));
    futures::future::try_join_all(first).await?;

    let mut routes = vec![];
    if let Some(gw) = spec.default_gateway {
        let r = RouteMessageBuilder::<Ipv4Addr>::new()
            .gateway(gw)
            .output_interface(idx)
            .build();
        let req = h.route().add(r);
        // The container's first interface with a gateway gets the default route; a later one
        // (another network) leaves it alone unless asked for routes of its own.
        routes.push(Box::pin(async move {
            match req.execute().await {
                Ok(()) => Ok(()),
                Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc_eexist() => Ok(()),
                Err(e) => Err(e).what(|| format!("default route via {gw} on {}", name)),
            }
        })
            as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>);
    }
    for (dst, gw) in &spec.routes {
        let msg = match (dst, gw) {
            (IpNet::V4(d), gw) => {
                let b = RouteMessageBuilder::<Ipv4Addr>::new()
                    .destination_prefix(d.network(), d.prefix_len())
                    .output_interface(idx);
                match gw {
                    Some(IpAddr::V4(g)) => b.gateway(*g).build(),
                    None => b.scope(RouteScope::Link).build(),
                    Some(IpAddr::V6(g)) => {
                        return Err(KernelError::Unexpected(format!(
                            "route {dst}: gateway {g} is not IPv4"
                        )))
                    }
                }
            }
            (IpNet::V6(d), gw) => {
                let b = RouteMessageBuilder::<std::net::Ipv6Addr>::new()
                    .destination_prefix(d.network(), d.prefix_len())
                    .output_interface(idx);
                match gw {
                    Some(IpAddr::V6(g)) => b.gateway(*g).build(),
                    None => b.scope(RouteScope::Link).build(),
                    Some(IpAddr::V4(g)) => {
                        return Err(KernelError::Unexpected(format!(
                            "route {dst}: gateway {g} is not IPv6"
                        )))
                    }
                }
            }
        };
        let via = gw.map_or("the interface".to_string(), |g| g.to_string());
        let req = h.route().add(msg);
        routes.push(Box::pin(async move {
            req.execute()
                .await
                .what(|| format!("route {dst} via {via} on {}", name))
        }));
    }
    futures::future::try_join_all(routes).await?;
    Ok(())
}

/// The link named `name` in the namespace of `h`; None when there is none.
async fn find_link(h: &Handle, name: &str) -> Result<Option<LinkMessage>, KernelError> {
    let mut links = h.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(m) => Ok(m),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -libc_enodev() => Ok(None),
        Err(e) => Err(e).what(|| format!("looking up {name}")),
    }
}

/// Reads an interface inside a namespace; None when it is not there.
pub async fn inspect(netns: &Path, name: &str) -> Result<Option<Seen>, KernelError> {
    let name = name.to_string();
    in_netns(netns, move |h| async move {
        let Some(link) = find_link(&h, &name).await? else {
            return Ok(None);
        };
        let mut mac = String::new();
        let mut mtu = 0;
        for a in &link.attributes {
            match a {
                LinkAttribute::Address(b) if b.len() == 6 => {
                    mac = weft_policy::fmt_mac(&[b[0], b[1], b[2], b[3], b[4], b[5]]);
                }
                LinkAttribute::Mtu(m) => mtu = *m,
                _ => {}
            }
        }
        let up = link.header.flags.contains(LinkFlags::Up);
        let mut addrs = vec![];
        let mut list = h
            .address()
            .get()
            .set_link_index_filter(link.header.index)
            .execute();
        while let Some(m) = list.try_next().await.what(|| "addresses".to_string())? {
            for a in &m.attributes {
                if let AddressAttribute::Address(ip) = a {
                    if let Ok(n) = IpNet::new(*ip, m.header.prefix_len) {
                        addrs.push(n);
                    }
                }
            }
        }
        Ok(Some(Seen {
            mac,
            up,
            mtu,
            addrs,
        }))
    })
    .await
}

/// Runs `f` with a netlink handle inside the namespace at `netns`, on a thread of its own.
async fn in_netns<F, Fut, T>(netns: &Path, f: F) -> Result<T, KernelError>
where
    F: FnOnce(Handle) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<T, KernelError>>,
    T: Send + 'static,
{
    let ns =
        std::fs::File::open(netns).what(|| format!("opening namespace {}", netns.display()))?;
    let where_ = netns.display().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("weft-netns".into())
        .spawn(move || {
            let r = (|| {
                nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                    .what(|| format!("entering namespace {where_}"))?;
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .what(|| "runtime".to_string())?;
                rt.block_on(async move {
                    let h = connect()?;
                    f(h).await
                })
            })();
            let _ = tx.send(r);
        })
        .what(|| "starting a thread".to_string())?;
    rx.await
        .map_err(|_| KernelError::Unexpected("the namespace thread died".into()))?
}

// Interfaces and routes of the calling thread's own namespace (the host gateway, `hostgw`).

/// What an interface of this namespace looks like now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkState {
    pub index: u32,
    pub mac: Option<[u8; 6]>,
    pub mtu: u32,
    /// Administratively up.
    pub up: bool,
    /// `IFLA_LINK`: for a veth end, its peer's index (in this namespace when the peer is here).
    pub link: Option<u32>,
}

/// Reads an interface of this namespace; None when it is not there.
pub(crate) async fn link_state(h: &Handle, name: &str) -> Result<Option<LinkState>, KernelError> {
    let Some(link) = find_link(h, name).await? else {
        return Ok(None);
    };
    let mut st = LinkState {
        index: link.header.index,
        mac: None,
        mtu: 0,
        up: link.header.flags.contains(LinkFlags::Up),
        link: None,
    };
    for a in &link.attributes {
        match a {
            LinkAttribute::Address(b) if b.len() == 6 => {
                st.mac = Some([b[0], b[1], b[2], b[3], b[4], b[5]]);
            }
            LinkAttribute::Mtu(m) => st.mtu = *m,
            LinkAttribute::Link(i) => st.link = Some(*i),
            _ => {}
        }
    }
    Ok(Some(st))
}

/// Creates a veth pair with both ends in this namespace.
pub(crate) async fn create_veth_here(
    h: &Handle,
    name: &str,
    peer: &str,
    mtu: u32,
) -> Result<(), KernelError> {
    h.link()
        .add(LinkVeth::new(name, peer).mtu(mtu).build())
        .execute()
        .await
        .what(|| format!("creating veth {name} (peer {peer})"))
}

/// Sets what is given (MAC, MTU) on an interface, and brings it up when `up`; one request.
pub(crate) async fn set_link(
    h: &Handle,
    name: &str,
    index: u32,
    mac: Option<[u8; 6]>,
    mtu: Option<u32>,
    up: bool,
) -> Result<(), KernelError> {
    let mut b = LinkUnspec::new_with_index(index);
    if let Some(m) = mac {
        b = b.address(m.to_vec());
    }
    if let Some(m) = mtu {
        b = b.mtu(m);
    }
    if up {
        b = b.up();
    }
    h.link()
        .set(b.build())
        .execute()
        .await
        .what(|| format!("setting {name} (MAC {mac:02x?}, MTU {mtu:?}, up {up})"))
}

/// An IPv4 route of the main table that some routing protocol number marks as its own.
#[derive(Debug, Clone)]
pub struct ProtoRoute {
    pub dst: Ipv4Net,
    pub oif: Option<u32>,
    pub src: Option<Ipv4Addr>,
    /// As the kernel listed it, to delete exactly this route.
    msg: rtnetlink::packet_route::route::RouteMessage,
}

/// The IPv4 routes of the main table whose protocol is `protocol`.
pub(crate) async fn routes_of_protocol(
    h: &Handle,
    protocol: u8,
) -> Result<Vec<ProtoRoute>, KernelError> {
    use rtnetlink::packet_route::route::{
        RouteAddress, RouteAttribute, RouteHeader, RouteProtocol,
    };
    let mut out = vec![];
    let mut list = h
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute();
    while let Some(m) = list
        .try_next()
        .await
        .what(|| "listing routes".to_string())?
    {
        let table = m
            .attributes
            .iter()
            .find_map(|a| match a {
                RouteAttribute::Table(t) => Some(*t),
                _ => None,
            })
            .unwrap_or(u32::from(m.header.table));
        if table != u32::from(RouteHeader::RT_TABLE_MAIN)
            || m.header.protocol != RouteProtocol::from(protocol)
        {
            continue;
        }
        let mut dst = Ipv4Addr::UNSPECIFIED;
        let mut oif = None;
        let mut src = None;
        for a in &m.attributes {
            match a {
                RouteAttribute::Destination(RouteAddress::Inet(d)) => dst = *d,
                RouteAttribute::Oif(i) => oif = Some(*i),
                RouteAttribute::PrefSource(RouteAddress::Inet(s)) => src = Some(*s),
                _ => {}
            }
        }
        let Ok(dst) = Ipv4Net::new(dst, m.header.destination_prefix_length) else {
            continue;
        };
        out.push(ProtoRoute {
            dst,
            oif,
            src,
            msg: m,
        });
    }
    Ok(out)
}

/// Adds `DST dev OIF [src SRC] scope link proto PROTOCOL` to the main table.
pub(crate) async fn add_link_route(
    h: &Handle,
    dst: Ipv4Net,
    oif: u32,
    src: Option<Ipv4Addr>,
    protocol: u8,
) -> Result<(), KernelError> {
    use rtnetlink::packet_route::route::RouteProtocol;
    let mut b = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(dst.network(), dst.prefix_len())
        .output_interface(oif)
        .scope(RouteScope::Link)
        .protocol(RouteProtocol::from(protocol));
    if let Some(s) = src {
        b = b.pref_source(s);
    }
    match h.route().add(b.build()).execute().await {
        Ok(()) => Ok(()),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -17 => {
            Err(KernelError::Unexpected(format!(
                "route {dst}: the main table already has a route to {dst} that is not Weft's; \
             left alone"
            )))
        }
        Err(e) => Err(e).what(|| format!("adding route {dst}")),
    }
}

/// Deletes a route as listed by [`routes_of_protocol`]; gone already is fine.
pub(crate) async fn delete_route(h: &Handle, r: &ProtoRoute) -> Result<(), KernelError> {
    match h.route().del(r.msg.clone()).execute().await {
        Ok(()) => Ok(()),
        Err(rtnetlink::Error::NetlinkError(e)) if e.raw_code() == -3 => Ok(()),
        Err(e) => Err(e).what(|| format!("deleting route {}", r.dst)),
    }
}
