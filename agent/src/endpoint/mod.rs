//! The endpoint service's domain part: attach, detach, list and check container interfaces,
//! whatever the transport (the gRPC adapter in [`crate::service`], or the Docker driver
//! directly).
//!
//! An attach is a saga: each step that made something records how to undo it, and a failure
//! undoes them in reverse, so a failed attach leaves no interface, port, flow or address behind.
//! Steps that do not depend on each other run at once: inside the container the addresses and
//! routes are set while Open vSwitch takes the port.

pub mod spec;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ipnet::Ipv4Net;
use tracing::{info, warn};
use weft_api::model::Encap;
use weft_api::proto::agent as nm;

use weft_policy::layout::fnv1a as fnv;

pub use spec::{endpoint_id, AttachSpec, Attachment, Ipv4Request, Placement};

use crate::agent::Inner;
use crate::desired::Change;
use crate::kernel::{self, InsideSpec, VethSpec};
use crate::local::LocalPort;

/// Why an attach or detach failed.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    /// The request itself is wrong.
    #[error("{0}")]
    Invalid(String),
    /// netmaster refused or failed (its status code kept).
    #[error("{message}")]
    Netmaster { code: tonic::Code, message: String },
    /// Something this host needs is not there yet or not answering; worth retrying.
    #[error("{0}")]
    Unavailable(String),
    /// The kernel or Open vSwitch failed.
    #[error("{0}")]
    Failed(String),
    /// Making the interface failed: `what` says which (`setting up eth0 in /proc/1/ns/net`).
    #[error("{what}: {source}")]
    Setup {
        what: String,
        #[source]
        source: Box<SetupError>,
    },
}

/// A step of making an interface: the kernel's part, or the port on the bridge.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(transparent)]
    Kernel(#[from] kernel::KernelError),
    #[error("adding port {port} to {bridge}: {source}")]
    Port {
        port: String,
        bridge: String,
        #[source]
        source: ovsdb::Error,
    },
}

impl AttachError {
    fn netmaster(context: &str, s: tonic::Status) -> AttachError {
        AttachError::Netmaster {
            code: s.code(),
            message: format!("{context}: {}", s.message()),
        }
    }
}

/// The host end of the veth pair: `wf` and 12 hex digits of a hash of the endpoint id, so the
/// same endpoint always gets the same name (attach is idempotent, detach finds it again).
pub fn host_interface(endpoint_id: &str) -> String {
    format!("wf{:012x}", fnv(endpoint_id) & 0xffff_ffff_ffff)
}

/// The container end's name while it waits in the host namespace for the runtime.
pub fn temp_peer(endpoint_id: &str) -> String {
    format!("wp{:012x}", fnv(endpoint_id) & 0xffff_ffff_ffff)
}

/// A locally administered MAC from the endpoint id (bare-bridge mode has no netmaster to ask).
fn derived_mac(id: &str) -> [u8; 6] {
    let h = fnv(id).to_be_bytes();
    [0x02, 0x00, h[2], h[3], h[4], h[5]]
}

/// The outcome label of a result.
fn outcome<T>(r: &Result<T, AttachError>) -> &'static str {
    match r {
        Ok(_) => "ok",
        Err(AttachError::Invalid(_)) => "invalid",
        Err(AttachError::Netmaster { .. }) => "netmaster",
        Err(AttachError::Unavailable(_)) => "unavailable",
        Err(AttachError::Failed(_) | AttachError::Setup { .. }) => "failed",
    }
}

/// The MTU of a network's interfaces: VXLAN's outer headers take 50 bytes.
fn network_mtu(net: &weft_api::model::Network) -> u32 {
    if net.encap == Encap::Vxlan {
        1450
    } else {
        1500
    }
}

/// A network of the view whose segment is allocated.
fn network_ready(v: &crate::netmaster::View, key: &str) -> Option<weft_api::model::Network> {
    ready(v.networks.get(key))
}

fn ready(n: Option<&weft_api::model::Network>) -> Option<weft_api::model::Network> {
    n.filter(|n| crate::hoststate::segment_of(n).is_some())
        .cloned()
}

/// Steps an attach has taken, undone in reverse when a later step fails.
#[derive(Default)]
struct Undo {
    released: Option<String>,
    veth: Option<String>,
    port: Option<(String, String)>,
    local: Option<String>,
}

/// The endpoint service of one host.
#[derive(Clone)]
pub struct Endpoints {
    pub(crate) inner: Arc<Inner>,
}

/// What the network says about an interface on it.
struct Plan {
    endpoint: Option<weft_api::model::Endpoint>,
    bridge: String,
    vlan: u16,
    ipv4: Option<Ipv4Net>,
    gateway: Option<std::net::Ipv4Addr>,
    mac: [u8; 6],
    mtu: u32,
    /// The store revision of netmaster's record (0: none); the view must reach it before the
    /// flows are compiled, so that it holds the endpoint's network and tenant.
    revision: i64,
}

impl Endpoints {
    /// Attaches an interface; asked again for one that exists and checks out, the same answer.
    #[tracing::instrument(name = "attach", skip_all, fields(endpoint = %spec.endpoint_id, container = %spec.container_id, interface = %spec.interface_name))]
    pub async fn attach(&self, spec: AttachSpec) -> Result<LocalPort, AttachError> {
        if let Placement::Netns(p) = &spec.placement {
            if !p.exists() {
                return Err(AttachError::Invalid(format!(
                    "netns \"{}\" does not exist (give /var/run/netns/NAME or /proc/PID/ns/net)",
                    p.display()
                )));
            }
        }
        let id = spec.endpoint_id.clone();
        let lock = self.inner.ep_lock(&id);
        let r = async {
            let _g = lock.lock().await;
            // Asked again: if what we have is whole, the same answer; if broken, start over.
            if let Some(lp) = self.inner.desired.get(&id) {
                let problems = self.check_port(&lp).await;
                if problems.is_empty() {
                    return Ok((*lp).clone());
                }
                warn!(endpoint = %id, ?problems, "attach again: the old interface is broken; recreating");
                self.remove(&lp, false).await?;
            }
            let mut undo = Undo::default();
            match self.attach_steps(&spec, &mut undo).await {
                Ok(lp) => Ok(lp),
                Err(e) => {
                    self.undo(undo).await;
                    Err(e)
                }
            }
        }
        .await;
        self.inner.metrics.outcome("attach", outcome(&r));
        drop(lock);
        self.inner.ep_unlock(&id);
        r
    }

    async fn attach_steps(
        &self,
        spec: &AttachSpec,
        undo: &mut Undo,
    ) -> Result<LocalPort, AttachError> {
        let inner = &self.inner;
        let id = spec.endpoint_id.as_str();
        let t = Instant::now();
        let host_if = host_interface(id);
        let (netns, name) = match &spec.placement {
            Placement::Netns(p) => (p.display().to_string(), spec.interface_name.clone()),
            Placement::HostNamespace => (String::new(), temp_peer(id)),
        };
        let veth = |mtu| VethSpec {
            host_if: host_if.clone(),
            temp_peer: temp_peer(id),
            netns: netns.clone().into(),
            name: name.clone(),
            mtu,
        };
        let kernel_err = |e: SetupError| AttachError::Setup {
            what: format!("setting up {} in {netns}", spec.interface_name),
            source: Box::new(e),
        };
        // netmaster's answer and the veth pair at once, when the MTU is known before the answer
        // (the usual case: the network is in the view); the MAC and address come after.
        let plan = async {
            let p = self.plan(spec, undo).await;
            (p, t.elapsed())
        };
        let ((plan, t_alloc), pair) = match self.mtu_now(spec) {
            Some(mtu) => {
                let v = veth(mtu);
                tokio::join!(plan, kernel::Pair::create(&v))
            }
            None => {
                let (plan, t_alloc) = plan.await;
                let plan = plan?;
                let pair = kernel::Pair::create(&veth(plan.mtu)).await;
                ((Ok(plan), t_alloc), pair)
            }
        };
        if pair.is_ok() {
            undo.veth = Some(host_if.clone());
        }
        let plan = plan?;
        let pair = pair.map_err(|e| kernel_err(e.into()))?;

        let mut lp = LocalPort {
            endpoint_id: id.to_string(),
            container_id: spec.container_id.clone(),
            interface_name: spec.interface_name.clone(),
            host_interface: host_if.clone(),
            netns: netns.clone(),
            bridge: plan.bridge.clone(),
            endpoint: plan.endpoint,
            vlan: plan.vlan,
            mac: plan.mac,
            ipv4: plan.ipv4,
            gateway: plan.gateway,
            ipv6: spec.ipv6.clone(),
            mtu: plan.mtu,
            routes: spec.routes.clone(),
            labels: spec.labels.clone(),
            ofport: 0,
        };
        let inside = InsideSpec {
            mac: plan.mac,
            ipv4: plan.ipv4,
            ipv6: spec.ipv6.clone(),
            default_gateway: if spec.default_route {
                plan.gateway
            } else {
                None
            },
            routes: spec.routes.iter().map(|r| (r.dst, r.gateway)).collect(),
        };
        // At once: inside the container, and the port on the bridge.
        undo.port = Some((plan.bridge.clone(), host_if.clone()));
        let mut t_port = Duration::ZERO;
        let port = async {
            pair.host_end_up().await?;
            let n = crate::bridge::add_endpoint_port(&inner.ovsdb, &lp)
                .await
                .map_err(|source| SetupError::Port {
                    port: host_if.clone(),
                    bridge: lp.bridge.clone(),
                    source,
                })?;
            t_port = t.elapsed();
            Ok::<_, SetupError>(n)
        };
        let configure = async { pair.configure(&inside).await.map_err(SetupError::from) };
        let (ofport, ()) = tokio::try_join!(port, configure).map_err(kernel_err)?;
        lp.ofport = ofport;
        let t_kernel = t.elapsed();

        let is_network = lp.endpoint.is_some();
        // The view must hold what netmaster recorded (the endpoint's tenant comes to this host
        // with its first endpoint there) before the flows are compiled.
        if plan.revision > 0
            && !inner
                .view
                .wait_revision(plan.revision, inner.cfg.confirm_timeout)
                .await
        {
            return Err(AttachError::Unavailable(format!(
                "netmaster's view did not reach revision {} within {:?}",
                plan.revision, inner.cfg.confirm_timeout
            )));
        }
        undo.local = Some(id.to_string());
        let v = inner
            .desired
            .change(Change::Upsert(Arc::new(lp.clone())))
            .await;
        if is_network
            && (v == 0
                || !inner
                    .reconciler
                    .wait_applied(v, inner.cfg.confirm_timeout)
                    .await)
        {
            return Err(AttachError::Unavailable(format!(
                "the switch did not confirm the flows for {id} within {:?} (is ovs-vswitchd running?)",
                inner.cfg.confirm_timeout
            )));
        }
        let total = t.elapsed();
        let m = &inner.metrics;
        m.stage("alloc", t_alloc);
        m.stage("port", t_port.saturating_sub(t_alloc));
        m.stage("kernel", t_kernel.saturating_sub(t_alloc));
        m.stage("flows", total.saturating_sub(t_kernel));
        m.stage("total", total);
        info!(endpoint = %id, ofport = lp.ofport, ipv4 = ?lp.ipv4, alloc = ?t_alloc, port = ?t_port,
            kernel = ?t_kernel, total = ?total, "attached");
        Ok(lp)
    }

    /// What the interface will be: from netmaster (address, MAC) and the network (gateway,
    /// MTU), or from the request alone on a bare bridge.
    async fn plan(&self, spec: &AttachSpec, undo: &mut Undo) -> Result<Plan, AttachError> {
        let inner = &self.inner;
        let (tenant, network, group) = match &spec.attachment {
            Attachment::Bridge { bridge, vlan } => {
                let ipv4 = match spec.ipv4 {
                    Ipv4Request::Allocate => None,
                    Ipv4Request::Address(a, p) => {
                        Some(Ipv4Net::new(a, p.unwrap_or(24)).expect("prefix checked"))
                    }
                };
                return Ok(Plan {
                    endpoint: None,
                    bridge: bridge.clone(),
                    vlan: *vlan,
                    ipv4,
                    gateway: None,
                    mac: spec.mac.unwrap_or_else(|| derived_mac(&spec.endpoint_id)),
                    mtu: spec.mtu.unwrap_or(1500),
                    revision: 0,
                });
            }
            Attachment::Network {
                tenant,
                network,
                group,
            } => (tenant, network, group),
        };
        // Known here already (the usual case), or after netmaster has answered: a network it
        // does not know is its error to give.
        let key = crate::hoststate::scoped_key(tenant, network);
        let known = network_ready(&self.inner.view.read(), &key);
        let (want_ip, want_prefix) = match spec.ipv4 {
            Ipv4Request::Allocate => (None, None),
            Ipv4Request::Address(a, p) => (Some(a), p),
        };
        let allocated = inner
            .netmaster
            .allocate(nm::AllocateEndpointRequest {
                endpoint_id: spec.endpoint_id.clone(),
                tenant: tenant.clone(),
                network: network.clone(),
                group: group.clone(),
                host: inner.cfg.host.clone(),
                container: spec.container_id.clone(),
                interface_name: spec.interface_name.clone(),
                requested_ipv4: want_ip.map(|a| a.to_string()).unwrap_or_default(),
                mac: spec
                    .mac
                    .map(|m| weft_policy::fmt_mac(&m))
                    .unwrap_or_default(),
                labels: spec.labels.clone().into_iter().collect(),
            })
            .await
            .map_err(|s| AttachError::netmaster("netmaster refused the endpoint", s))?;
        undo.released = Some(spec.endpoint_id.clone());
        let ep = allocated.endpoint;
        let net = match known.or_else(|| ready(allocated.network.as_ref())) {
            Some(n) => n,
            None => self.network(&key).await?,
        };
        let mac = weft_policy::parse_mac(&ep.mac).ok_or_else(|| {
            AttachError::Failed(format!("netmaster gave MAC \"{}\", unreadable", ep.mac))
        })?;
        let prefix = want_prefix.unwrap_or(net.subnet.net.prefix_len());
        let ipv4 = Ipv4Net::new(ep.ipv4, prefix)
            .map_err(|e| AttachError::Invalid(format!("prefix /{prefix}: {e}")))?;
        let mtu = spec.mtu.unwrap_or(network_mtu(&net));
        Ok(Plan {
            endpoint: Some(ep),
            bridge: inner.cfg.bridge.clone(),
            vlan: 0,
            ipv4: Some(ipv4),
            gateway: net.gateway,
            mac,
            mtu,
            revision: allocated.revision,
        })
    }

    /// The interface's MTU if it is known before netmaster answers.
    fn mtu_now(&self, spec: &AttachSpec) -> Option<u32> {
        spec.mtu.or_else(|| match &spec.attachment {
            Attachment::Bridge { .. } => Some(1500),
            Attachment::Network {
                tenant, network, ..
            } => network_ready(
                &self.inner.view.read(),
                &crate::hoststate::scoped_key(tenant, network),
            )
            .map(|n| network_mtu(&n)),
        })
    }

    /// The network from netmaster's view; waits briefly for a network created just now (or
    /// one whose packet tag is still being allocated).
    async fn network(&self, key: &str) -> Result<weft_api::model::Network, AttachError> {
        self.inner
            .view
            .wait_for(Duration::from_secs(3), |v| network_ready(v, key))
            .await
            .ok_or_else(|| {
                AttachError::Unavailable(format!(
                    "network {key} is not (yet) in this agent's view of netmaster"
                ))
            })
    }

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

    /// Detaches the interfaces of a container (one, or all when `interface_name` is empty);
    /// returns the endpoint ids removed.
    #[tracing::instrument(name = "detach", skip_all, fields(container = %container_id, interface = %interface_name))]
    pub async fn detach(
        &self,
        container_id: &str,
        interface_name: &str,
    ) -> Result<Vec<String>, AttachError> {
        let t = Instant::now();
        let r = self.detach_inner(container_id, interface_name).await;
        self.inner.metrics.outcome("detach", outcome(&r));
        if r.is_ok() {
            self.inner.metrics.stage("detach", t.elapsed());
        }
        r
    }

    async fn detach_inner(
        &self,
        container_id: &str,
        interface_name: &str,
    ) -> Result<Vec<String>, AttachError> {
        if container_id.is_empty() {
            return Err(AttachError::Invalid("container_id is required".into()));
        }
        let mut removed = vec![];
        for lp in self.list(container_id, interface_name) {
            let id = lp.endpoint_id.clone();
            let lock = self.inner.ep_lock(&id);
            let guard = lock.clone().lock_owned().await;
            drop(lock);
            // Detached meanwhile by someone else: nothing left to do.
            let Some(lp) = self.inner.desired.get(&id) else {
                drop(guard);
                self.inner.ep_unlock(&id);
                continue;
            };
            self.remove_holding(&lp, true, guard).await?;
            removed.push(id);
        }
        // Not known here (an agent that lost its record, or a half-made attach): remove what
        // could exist under the names this endpoint would have.
        if removed.is_empty() && !interface_name.is_empty() {
            let id = endpoint_id(container_id, interface_name);
            let host_if = host_interface(&id);
            let _ = crate::bridge::remove_port(&self.inner.ovsdb, &self.inner.cfg.bridge, &host_if)
                .await;
            let _ = kernel::remove(&host_if).await;
            match self.inner.netmaster.release(&id).await {
                Ok(true) => removed.push(id),
                Ok(false) => {}
                Err(s) => {
                    return Err(AttachError::netmaster(
                        &format!("releasing {id} at netmaster"),
                        s,
                    ))
                }
            }
        }
        Ok(removed)
    }

    /// Takes an interface out of the switch: its flows first (confirmed), then its port and
    /// (when `release`) netmaster's record and address, at once. The veth is the caller's.
    async fn unplug(&self, lp: &LocalPort, release: bool) -> Result<(), AttachError> {
        let inner = &self.inner;
        inner.forget_local(&lp.endpoint_id).await;
        let port = async {
            crate::bridge::remove_port(&inner.ovsdb, &lp.bridge, &lp.host_interface)
                .await
                .map_err(|e| {
                    AttachError::Failed(format!("removing port {}: {e}", lp.host_interface))
                })
        };
        let record = async {
            if release && lp.endpoint.is_some() {
                inner
                    .netmaster
                    .release(&lp.endpoint_id)
                    .await
                    .map_err(|s| AttachError::netmaster("releasing the address", s))?;
            }
            Ok(())
        };
        tokio::try_join!(port, record).map(|_| ())
    }

    /// Removes an interface inline, veth included (the caller holds its lock).
    async fn remove(&self, lp: &LocalPort, release: bool) -> Result<(), AttachError> {
        self.unplug(lp, release).await?;
        kernel::remove(&lp.host_interface)
            .await
            .map_err(|e| AttachError::Failed(format!("removing {}: {e}", lp.host_interface)))?;
        Ok(())
    }

    /// A detach: [`Self::unplug`], and the reply. Deleting the veth costs the kernel an RCU grace
    /// period (~15 ms) and only the container's namespace still sees it, so it finishes behind
    /// the reply, with the endpoint's lock held: an attach of the same endpoint waits for it.
    async fn remove_holding(
        &self,
        lp: &LocalPort,
        release: bool,
        guard: tokio::sync::OwnedMutexGuard<()>,
    ) -> Result<(), AttachError> {
        let r = self.unplug(lp, release).await;
        let (host_if, id) = (lp.host_interface.clone(), lp.endpoint_id.clone());
        let me = self.clone();
        tokio::spawn(async move {
            if let Err(e) = kernel::remove(&host_if).await {
                warn!(veth = %host_if, error = %e, "detach: removing the veth failed");
            }
            drop(guard);
            me.inner.ep_unlock(&id);
        });
        r
    }

    /// What is wrong with an attached port, one line per problem.
    pub async fn check_port(&self, lp: &LocalPort) -> Vec<String> {
        let mut problems = vec![];
        // Left in the host namespace for the runtime to move (Docker): where it went is the
        // runtime's business.
        let inside = if lp.netns.is_empty() {
            Ok(Some(kernel::Seen {
                mac: weft_policy::fmt_mac(&lp.mac),
                up: true,
                mtu: lp.mtu,
                addrs: lp.ipv4.into_iter().map(Into::into).collect(),
            }))
        } else {
            kernel::inspect(Path::new(&lp.netns), &lp.interface_name).await
        };
        match inside {
            Ok(Some(seen)) => {
                let mac = weft_policy::fmt_mac(&lp.mac);
                if !seen.mac.eq_ignore_ascii_case(&mac) {
                    problems.push(format!(
                        "{}: MAC is {}, not {mac}",
                        lp.interface_name, seen.mac
                    ));
                }
                if let Some(a) = lp.ipv4 {
                    if !seen.addrs.contains(&a.into()) {
                        problems.push(format!("{}: address {a} is missing", lp.interface_name));
                    }
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
            let desired = self.inner.reconciler.desired_version();
            let applied = self.inner.reconciler.applied().borrow().version;
            if desired == 0 || applied < desired {
                problems.push(format!(
                    "the switch does not hold the latest flows yet (version {applied} of {desired})"
                ));
            }
        }
        problems
    }

    /// The attached interfaces of a container (all containers when empty), optionally one name.
    pub fn list(&self, container_id: &str, interface_name: &str) -> Vec<LocalPort> {
        self.inner
            .desired
            .ports()
            .values()
            .filter(|p| container_id.is_empty() || p.container_id == container_id)
            .filter(|p| interface_name.is_empty() || p.interface_name == interface_name)
            .map(|p| (**p).clone())
            .collect()
    }

    /// What is wrong with a container's interfaces (empty: nothing).
    pub async fn check(&self, container_id: &str, interface_name: &str) -> Vec<String> {
        let ports = self.list(container_id, interface_name);
        let mut problems = vec![];
        if ports.is_empty() {
            problems.push(format!(
                "no interface {} of container {container_id} is attached here",
                if interface_name.is_empty() {
                    "at all"
                } else {
                    interface_name
                },
            ));
        }
        for lp in &ports {
            problems.extend(self.check_port(lp).await);
        }
        problems
    }
}
