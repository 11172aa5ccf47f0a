//! The endpoint service: attach, detach, list, check, over gRPC on a unix socket (and TCP when
//! asked). Attach is all-or-nothing: every step it took is undone, in reverse, when a later one
//! fails.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracing::{info, warn};
use weft_api::model::Encap;
use weft_api::proto::agent as nm;
use weft_api::proto::endpoint as pb;
use weft_api::proto::endpoint::endpoint_service_server::{EndpointService, EndpointServiceServer};

use weft_policy::layout::fnv1a as fnv;

use crate::agent::{Inner, LocalPort, StartError};
use crate::kernel::{self, IfaceSpec};

/// Starts serving on the configured unix socket (and TCP address).
pub(crate) async fn serve(inner: Arc<Inner>, cancel: CancellationToken) -> Result<(), StartError> {
    let path = inner.cfg.socket.clone();
    let sock_err = |e: std::io::Error| StartError::Socket {
        path: path.display().to_string(),
        error: e.to_string(),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(sock_err)?;
    }
    // A socket left by an earlier run is replaced; anything else is not ours to remove.
    if let Ok(meta) = std::fs::symlink_metadata(&path) {
        use std::os::unix::fs::FileTypeExt;
        if meta.file_type().is_socket() {
            let _ = std::fs::remove_file(&path);
        }
    }
    let listener = UnixListener::bind(&path).map_err(sock_err)?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).map_err(sock_err)?;
    let svc = Service {
        inner: inner.clone(),
    };
    let c = cancel.clone();
    let unix_svc = EndpointServiceServer::new(svc.clone());
    tokio::spawn(async move {
        let r = tonic::transport::Server::builder()
            .add_service(unix_svc)
            .serve_with_incoming_shutdown(UnixListenerStream::new(listener), c.cancelled())
            .await;
        if let Err(e) = r {
            warn!(error = %e, "endpoint service (unix) stopped");
        }
    });
    if let Some(addr) = inner.cfg.listen_tcp {
        let l = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| StartError::Socket {
                path: addr.to_string(),
                error: e.to_string(),
            })?;
        let c = cancel.clone();
        tokio::spawn(async move {
            let r = tonic::transport::Server::builder()
                .add_service(EndpointServiceServer::new(svc))
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(l).with_nodelay(Some(true)),
                    c.cancelled(),
                )
                .await;
            if let Err(e) = r {
                warn!(error = %e, "endpoint service (tcp) stopped");
            }
        });
    }
    let remove = path.clone();
    tokio::spawn(async move {
        cancel.cancelled().await;
        let _ = std::fs::remove_file(remove);
    });
    Ok(())
}

#[derive(Clone)]
struct Service {
    inner: Arc<Inner>,
}

/// The endpoint id of a container's interface.
pub fn endpoint_id(container_id: &str, interface_name: &str) -> String {
    format!("{container_id}-{interface_name}")
}

/// The host end of the veth pair: `wf` and 12 hex digits of a hash of the endpoint id, so the
/// same endpoint always gets the same name (attach is idempotent, detach finds it again).
pub fn host_interface(endpoint_id: &str) -> String {
    format!("wf{:012x}", fnv(endpoint_id) & 0xffff_ffff_ffff)
}

fn temp_peer(endpoint_id: &str) -> String {
    format!("wp{:012x}", fnv(endpoint_id) & 0xffff_ffff_ffff)
}

fn check_ifname(name: &str) -> Result<(), Status> {
    if name.is_empty()
        || name.len() > 15
        || name.contains(['/', ' ', ':'])
        || name == "."
        || name == ".."
    {
        return Err(Status::invalid_argument(format!(
            "interface_name \"{name}\": must be 1 to 15 characters without '/', ':' or spaces"
        )));
    }
    Ok(())
}

fn parse_routes(routes: &[pb::Route]) -> Result<Vec<(IpNet, Option<IpAddr>)>, Status> {
    routes
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let dst: IpNet = r.dst.parse().map_err(|_| {
                Status::invalid_argument(format!("routes[{i}].dst \"{}\" is not a CIDR", r.dst))
            })?;
            let gw = if r.gateway.is_empty() {
                None
            } else {
                Some(r.gateway.parse::<IpAddr>().map_err(|_| {
                    Status::invalid_argument(format!(
                        "routes[{i}].gateway \"{}\" is not an address",
                        r.gateway
                    ))
                })?)
            };
            Ok((dst, gw))
        })
        .collect()
}

impl LocalPort {
    fn to_proto(&self) -> pb::Interface {
        let ep = self.endpoint.as_ref();
        pb::Interface {
            endpoint_id: self.endpoint_id.clone(),
            container_id: self.container_id.clone(),
            interface_name: self.interface_name.clone(),
            host_interface: self.host_interface.clone(),
            netns: self.netns.clone(),
            tenant: ep.map(|e| e.tenant_name.clone()).unwrap_or_default(),
            network: ep.map(|e| e.network_name.clone()).unwrap_or_default(),
            group: ep.map(|e| e.group_name.clone()).unwrap_or_default(),
            bridge: self.bridge.clone(),
            vlan: u32::from(self.vlan),
            mac: self.mac.clone(),
            ipv4: self.ipv4.clone(),
            gateway: self.gateway.clone(),
            ipv6: self.ipv6.clone(),
            mtu: self.mtu,
            routes: self
                .routes
                .iter()
                .map(|(d, g)| pb::Route {
                    dst: d.clone(),
                    gateway: g.clone(),
                })
                .collect(),
            ofport: self.ofport,
            pod_name: self.labels.get("pod_name").cloned().unwrap_or_default(),
            pod_namespace: self
                .labels
                .get("pod_namespace")
                .cloned()
                .unwrap_or_default(),
            pod_uid: self.labels.get("pod_uid").cloned().unwrap_or_default(),
            peer_interface: if self.netns.is_empty() {
                temp_peer(&self.endpoint_id)
            } else {
                String::new()
            },
        }
    }
}

/// Steps an attach has taken, undone in reverse when a later step fails.
#[derive(Default)]
struct Undo {
    released: Option<String>,
    veth: Option<String>,
    port: Option<(String, String)>,
    local: Option<String>,
}

impl Service {
    async fn undo(&self, u: Undo) {
        let inner = &self.inner;
        if let Some(id) = u.local {
            inner.forget_local(&id).await;
        }
        if let Some((bridge, port)) = u.port {
            if let Err(e) = crate::bridge::remove_port(&inner.ovsdb, &bridge, &port).await {
                warn!(%port, error = %e, "undo: removing the port failed");
            }
        }
        if let Some(veth) = u.veth {
            if let Err(e) = kernel::remove(&veth).await {
                warn!(%veth, error = %e, "undo: removing the veth failed");
            }
        }
        if let Some(id) = u.released {
            if let Err(e) = inner.netmaster.release(&id).await {
                warn!(endpoint = %id, error = %e, "undo: releasing the address failed");
            }
        }
    }

    async fn attach_inner(&self, r: pb::AttachRequest) -> Result<LocalPort, Status> {
        let inner = &self.inner;
        if r.container_id.is_empty() || r.container_id.contains('/') {
            return Err(Status::invalid_argument(
                "container_id must be non-empty and contain no '/'",
            ));
        }
        check_ifname(&r.interface_name)?;
        if r.leave_in_host_namespace {
            if !r.netns.is_empty() {
                return Err(Status::invalid_argument(
                    "leave_in_host_namespace and netns exclude each other",
                ));
            }
        } else if r.netns.is_empty() || !Path::new(&r.netns).exists() {
            return Err(Status::invalid_argument(format!(
                "netns \"{}\" does not exist (give /var/run/netns/NAME or /proc/PID/ns/net)",
                r.netns
            )));
        }
        let bare = !r.bridge.is_empty();
        let names_network = !r.tenant.is_empty() || !r.network.is_empty();
        if bare == names_network {
            return Err(Status::invalid_argument(
                "give either tenant and network, or a bridge (with an optional vlan), not both",
            ));
        }
        if !bare && (r.tenant.is_empty() || r.network.is_empty()) {
            return Err(Status::invalid_argument(
                "tenant and network are both required",
            ));
        }
        if r.vlan > 4094 {
            return Err(Status::invalid_argument(format!(
                "vlan {} is not in 0..=4094",
                r.vlan
            )));
        }
        let routes = parse_routes(&r.routes)?;
        let ipv6: Vec<Ipv6Net> = r
            .ipv6
            .iter()
            .map(|a| {
                a.parse::<Ipv6Net>().map_err(|_| {
                    Status::invalid_argument(format!(
                        "ipv6 \"{a}\" is not an IPv6 CIDR (fd00::2/64)"
                    ))
                })
            })
            .collect::<Result<_, _>>()?;
        let (want_ip, want_prefix): (Option<Ipv4Addr>, Option<u8>) = match r.ipv4.as_str() {
            "" | "allocate" => (None, None),
            s => {
                if let Ok(n) = s.parse::<Ipv4Net>() {
                    (Some(n.addr()), Some(n.prefix_len()))
                } else {
                    let a = s.parse::<Ipv4Addr>().map_err(|_| {
                        Status::invalid_argument(format!(
                            "ipv4 \"{s}\" is neither \"allocate\", an address nor a CIDR"
                        ))
                    })?;
                    (Some(a), None)
                }
            }
        };
        let mac_wanted = if r.mac.is_empty() {
            None
        } else {
            Some(weft_policy::parse_mac(&r.mac).ok_or_else(|| {
                Status::invalid_argument(format!("mac \"{}\" is not aa:bb:cc:dd:ee:ff", r.mac))
            })?)
        };
        if r.endpoint_id.contains('/') {
            return Err(Status::invalid_argument("endpoint_id must contain no '/'"));
        }
        let id = if r.endpoint_id.is_empty() {
            endpoint_id(&r.container_id, &r.interface_name)
        } else {
            r.endpoint_id.clone()
        };
        let lock = inner.ep_lock(&id);
        let _g = lock.lock().await;

        // Asked again: if what we have is whole, the same answer; if it is broken, start over.
        let existing = inner.local.lock().expect("lock").get(&id).cloned();
        if let Some(lp) = existing {
            let problems = self.check_port(&lp).await;
            if problems.is_empty() {
                return Ok(lp);
            }
            warn!(endpoint = %id, ?problems, "attach again: the old interface is broken; recreating");
            self.detach_one(&lp, false).await?;
        }

        let mut undo = Undo::default();
        match self
            .attach_steps(
                &r,
                &id,
                bare,
                want_ip,
                want_prefix,
                mac_wanted,
                ipv6,
                routes,
                &mut undo,
            )
            .await
        {
            Ok(lp) => Ok(lp),
            Err(e) => {
                self.undo(undo).await;
                Err(e)
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn attach_steps(
        &self,
        r: &pb::AttachRequest,
        id: &str,
        bare: bool,
        want_ip: Option<Ipv4Addr>,
        want_prefix: Option<u8>,
        mac_wanted: Option<[u8; 6]>,
        ipv6: Vec<Ipv6Net>,
        routes: Vec<(IpNet, Option<IpAddr>)>,
        undo: &mut Undo,
    ) -> Result<LocalPort, Status> {
        let inner = &self.inner;
        let t = Instant::now();
        let mut labels: BTreeMap<String, String> = r.labels.clone().into_iter().collect();
        for (k, v) in [
            ("pod_name", &r.pod_name),
            ("pod_namespace", &r.pod_namespace),
            ("pod_uid", &r.pod_uid),
        ] {
            if !v.is_empty() {
                labels.insert(k.to_string(), v.clone());
            }
        }
        let (endpoint, bridge, ipv4, gateway, mac, mtu, default_gw) = if bare {
            let mac = mac_wanted.unwrap_or_else(|| derived_mac(id));
            let ipv4 = want_ip
                .map(|a| Ipv4Net::new(a, want_prefix.unwrap_or(24)).expect("prefix checked"));
            (
                None,
                r.bridge.clone(),
                ipv4,
                None,
                mac,
                if r.mtu > 0 { r.mtu } else { 1500 },
                None,
            )
        } else {
            let ep = inner
                .netmaster
                .allocate(nm::AllocateEndpointRequest {
                    endpoint_id: id.to_string(),
                    tenant: r.tenant.clone(),
                    network: r.network.clone(),
                    group: r.group.clone(),
                    host: inner.cfg.host.clone(),
                    container: r.container_id.clone(),
                    interface_name: r.interface_name.clone(),
                    requested_ipv4: want_ip.map(|a| a.to_string()).unwrap_or_default(),
                    mac: r.mac.clone(),
                    labels: labels.clone().into_iter().collect(),
                })
                .await
                .map_err(|s| {
                    Status::new(
                        s.code(),
                        format!("netmaster refused the endpoint: {}", s.message()),
                    )
                })?;
            undo.released = Some(id.to_string());
            let net_key = format!("{}:{}", r.tenant, r.network);
            let net = self.network(&net_key).await?;
            let mac = weft_policy::parse_mac(&ep.mac).ok_or_else(|| {
                Status::internal(format!("netmaster gave MAC \"{}\", unreadable", ep.mac))
            })?;
            let prefix = want_prefix.unwrap_or(net.subnet.net.prefix_len());
            let ipv4 = Ipv4Net::new(ep.ipv4, prefix)
                .map_err(|e| Status::invalid_argument(format!("prefix /{prefix}: {e}")))?;
            let mtu = if r.mtu > 0 {
                r.mtu
            } else if net.encap == Encap::Vxlan {
                1450
            } else {
                1500
            };
            let gw = net.gateway;
            (
                Some(ep),
                inner.cfg.bridge.clone(),
                Some(ipv4),
                gw,
                mac,
                mtu,
                gw,
            )
        };

        let t_alloc = t.elapsed();
        let host_if = host_interface(id);
        let spec = IfaceSpec {
            host_if: host_if.clone(),
            temp_peer: temp_peer(id),
            netns: r.netns.clone().into(),
            name: r.interface_name.clone(),
            mac,
            mtu,
            ipv4,
            ipv6: ipv6.clone(),
            default_gateway: if r.no_default_route { None } else { default_gw },
            routes: routes.clone(),
        };
        kernel::create(&spec).await.map_err(|e| {
            Status::internal(format!(
                "setting up {} in {}: {e}",
                r.interface_name, r.netns
            ))
        })?;
        undo.veth = Some(host_if.clone());
        let t_kernel = t.elapsed();

        let mut lp = LocalPort {
            endpoint_id: id.to_string(),
            container_id: r.container_id.clone(),
            interface_name: r.interface_name.clone(),
            host_interface: host_if.clone(),
            netns: r.netns.clone(),
            bridge: bridge.clone(),
            endpoint,
            vlan: r.vlan as u16,
            mac: weft_policy::fmt_mac(&mac),
            ipv4: ipv4.map(|n| n.to_string()).unwrap_or_default(),
            gateway: gateway.map(|g| g.to_string()).unwrap_or_default(),
            ipv6: ipv6.iter().map(|n| n.to_string()).collect(),
            mtu,
            routes: routes
                .iter()
                .map(|(d, g)| (d.to_string(), g.map(|g| g.to_string()).unwrap_or_default()))
                .collect(),
            labels,
            ofport: 0,
        };
        undo.port = Some((bridge.clone(), host_if.clone()));
        lp.ofport = crate::bridge::add_endpoint_port(&inner.ovsdb, &lp)
            .await
            .map_err(|e| Status::internal(format!("adding port {host_if} to {bridge}: {e}")))?;
        let t_port = t.elapsed();

        inner
            .local
            .lock()
            .expect("lock")
            .insert(id.to_string(), lp.clone());
        undo.local = Some(id.to_string());
        if !bare {
            let v = inner.publish();
            if v == 0
                || !inner
                    .reconciler
                    .wait_applied(v, inner.cfg.confirm_timeout)
                    .await
            {
                return Err(Status::unavailable(format!(
                    "the switch did not confirm the flows for {id} within {:?} (is ovs-vswitchd running?)",
                    inner.cfg.confirm_timeout
                )));
            }
        }
        info!(endpoint = %id, ofport = lp.ofport, ipv4 = %lp.ipv4, alloc = ?t_alloc, kernel = ?t_kernel, port = ?t_port,
            total = ?t.elapsed(), "attached");
        Ok(lp)
    }

    /// The network from netmaster's view; waits briefly for a network created just now.
    async fn network(&self, key: &str) -> Result<weft_api::model::Network, Status> {
        let mut view = self.inner.view.clone();
        let wait = tokio::time::timeout(
            std::time::Duration::from_secs(3),
            view.wait_for(|v| {
                v.networks
                    .get(key)
                    .is_some_and(|n| crate::agent::segment_of(n).is_some())
            }),
        )
        .await;
        match wait {
            Ok(Ok(v)) => Ok(v.networks[key].clone()),
            _ => Err(Status::unavailable(format!(
                "network {key} is not (yet) in this agent's view of netmaster"
            ))),
        }
    }

    /// Removes an interface: flows, port, veth, and (when `release`) netmaster's record and address.
    async fn detach_one(&self, lp: &LocalPort, release: bool) -> Result<(), Status> {
        let inner = &self.inner;
        inner.forget_local(&lp.endpoint_id).await;
        crate::bridge::remove_port(&inner.ovsdb, &lp.bridge, &lp.host_interface)
            .await
            .map_err(|e| Status::internal(format!("removing port {}: {e}", lp.host_interface)))?;
        kernel::remove(&lp.host_interface)
            .await
            .map_err(|e| Status::internal(format!("removing {}: {e}", lp.host_interface)))?;
        if release && lp.endpoint.is_some() {
            inner
                .netmaster
                .release(&lp.endpoint_id)
                .await
                .map_err(|s| {
                    Status::new(s.code(), format!("releasing the address: {}", s.message()))
                })?;
        }
        Ok(())
    }

    /// What is wrong with an attached port, one line per problem.
    async fn check_port(&self, lp: &LocalPort) -> Vec<String> {
        let mut problems = vec![];
        // Left in the host namespace for the runtime to move (Docker): where it went is the
        // runtime's business.
        let inside = if lp.netns.is_empty() {
            Ok(Some(kernel::Seen {
                mac: lp.mac.clone(),
                up: true,
                mtu: lp.mtu,
                addrs: lp.ipv4.parse().into_iter().collect(),
            }))
        } else {
            kernel::inspect(Path::new(&lp.netns), &lp.interface_name).await
        };
        match inside {
            Ok(Some(seen)) => {
                if !seen.mac.eq_ignore_ascii_case(&lp.mac) {
                    problems.push(format!(
                        "{}: MAC is {}, not {}",
                        lp.interface_name, seen.mac, lp.mac
                    ));
                }
                if !lp.ipv4.is_empty() && !seen.addrs.iter().any(|a| a.to_string() == lp.ipv4) {
                    problems.push(format!(
                        "{}: address {} is missing",
                        lp.interface_name, lp.ipv4
                    ));
                }
                if !seen.up {
                    problems.push(format!("{}: link is down", lp.interface_name));
                }
            }
            Ok(None) => problems.push(format!("{} is not in {}", lp.interface_name, lp.netns)),
            Err(e) => problems.push(format!("{}: {e}", lp.netns)),
        }
        match kernel::exists(&lp.host_interface).await {
            Ok(true) => {}
            Ok(false) => problems.push(format!("host interface {} is missing", lp.host_interface)),
            Err(e) => problems.push(format!("host interface {}: {e}", lp.host_interface)),
        }
        if lp.ofport == 0 {
            problems.push(format!("{} has no OpenFlow port", lp.host_interface));
        }
        if lp.endpoint.is_some() {
            let desired = self.inner.reconciler.desired().version;
            let applied = self.inner.reconciler.applied().borrow().version;
            if desired == 0 || applied < desired {
                problems.push(format!(
                    "the switch does not hold the latest flows yet (version {applied} of {desired})"
                ));
            }
        }
        problems
    }

    fn ports_of(&self, container_id: &str, interface_name: &str) -> Vec<LocalPort> {
        self.inner
            .local
            .lock()
            .expect("lock")
            .values()
            .filter(|p| container_id.is_empty() || p.container_id == container_id)
            .filter(|p| interface_name.is_empty() || p.interface_name == interface_name)
            .cloned()
            .collect()
    }
}

/// A locally administered MAC from the endpoint id (bare-bridge mode has no netmaster to ask).
fn derived_mac(id: &str) -> [u8; 6] {
    let h = fnv(id).to_be_bytes();
    [0x02, 0x00, h[2], h[3], h[4], h[5]]
}

#[tonic::async_trait]
impl EndpointService for Service {
    async fn attach(
        &self,
        req: Request<pb::AttachRequest>,
    ) -> Result<Response<pb::AttachReply>, Status> {
        let lp = self.attach_inner(req.into_inner()).await?;
        Ok(Response::new(pb::AttachReply {
            interface: Some(lp.to_proto()),
        }))
    }

    async fn detach(
        &self,
        req: Request<pb::DetachRequest>,
    ) -> Result<Response<pb::DetachReply>, Status> {
        let r = req.into_inner();
        if r.container_id.is_empty() {
            return Err(Status::invalid_argument("container_id is required"));
        }
        let mut removed = vec![];
        let ports = self.ports_of(&r.container_id, &r.interface_name);
        for lp in ports {
            let lock = self.inner.ep_lock(&lp.endpoint_id);
            let _g = lock.lock().await;
            self.detach_one(&lp, true).await?;
            removed.push(lp.endpoint_id.clone());
        }
        // Not known here (an agent that lost its record, or a half-made attach): remove what
        // could exist under the names this endpoint would have.
        if removed.is_empty() && !r.interface_name.is_empty() {
            let id = endpoint_id(&r.container_id, &r.interface_name);
            let host_if = host_interface(&id);
            let _ = crate::bridge::remove_port(&self.inner.ovsdb, &self.inner.cfg.bridge, &host_if)
                .await;
            let _ = kernel::remove(&host_if).await;
            match self.inner.netmaster.release(&id).await {
                Ok(true) => removed.push(id),
                Ok(false) => {}
                Err(s) => {
                    return Err(Status::new(
                        s.code(),
                        format!("releasing {id} at netmaster: {}", s.message()),
                    ))
                }
            }
        }
        Ok(Response::new(pb::DetachReply { removed }))
    }

    async fn list(&self, req: Request<pb::ListRequest>) -> Result<Response<pb::ListReply>, Status> {
        let r = req.into_inner();
        Ok(Response::new(pb::ListReply {
            interfaces: self
                .ports_of(&r.container_id, "")
                .iter()
                .map(LocalPort::to_proto)
                .collect(),
        }))
    }

    async fn check(
        &self,
        req: Request<pb::CheckRequest>,
    ) -> Result<Response<pb::CheckReply>, Status> {
        let r = req.into_inner();
        let ports = self.ports_of(&r.container_id, &r.interface_name);
        let mut problems = vec![];
        if ports.is_empty() {
            problems.push(format!(
                "no interface {} of container {} is attached here",
                if r.interface_name.is_empty() {
                    "at all"
                } else {
                    &r.interface_name
                },
                r.container_id
            ));
        }
        for lp in &ports {
            problems.extend(self.check_port(lp).await);
        }
        Ok(Response::new(pb::CheckReply {
            ok: problems.is_empty(),
            problems,
        }))
    }
}
