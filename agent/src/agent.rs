//! The agent's start and its parts: the bridge and its own ports, the watch of netmaster's
//! [`View`], the owner of desired state ([`crate::desired`]), the OpenFlow driver and reconciler,
//! and the endpoint service.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use weft_api::model::Node;

pub use crate::hoststate::{policy_state, segment_of};
pub use crate::local::LocalPort;

use crate::desired::{Change, Desired};
use crate::hoststate::HostPorts;
use crate::netmaster::{Netmaster, SharedView, View};
use crate::ofdriver::OfDriver;
use crate::reconcile::Reconciler;

/// How netplugin is set up on one host.
#[derive(Debug, Clone)]
pub struct Config {
    /// This host's name, as netmaster knows it.
    pub host: String,
    /// netmaster's gRPC address, `http://HOST:PORT`.
    pub netmaster: String,
    /// OVSDB remote: `unix:/var/run/openvswitch/db.sock` or `tcp:HOST:PORT`.
    pub ovsdb: String,
    /// Where ovs-vswitchd puts `BRIDGE.mgmt`.
    pub ovs_rundir: PathBuf,
    /// The integration bridge.
    pub bridge: String,
    /// `system` (kernel datapath) or `netdev` (userspace).
    pub datapath: String,
    /// The interface towards the physical network, added to the bridge as a trunk.
    pub uplink: Option<String>,
    /// This host's underlay address (VXLAN tunnel endpoint).
    pub vtep_ip: Ipv4Addr,
    /// The endpoint service's unix socket (mode 0600).
    pub socket: PathBuf,
    /// The endpoint service on TCP too, when given.
    pub listen_tcp: Option<SocketAddr>,
    /// Lease of this host's registration.
    pub lease_ttl: u32,
    /// How long an attach waits for the switch to confirm its flows.
    pub confirm_timeout: Duration,
    /// How often the whole switch is read again and drift repaired (flows, groups, meters
    /// changed behind the agent's back); also after every reconnect to Open vSwitch.
    pub resync_interval: Duration,
    /// Where the inspect API listens (`crate::inspect`; port 0: any free one); None: nowhere.
    /// netmaster learns it from the node record.
    pub inspect_listen: Option<SocketAddr>,
}

/// `external_ids` keys on ports the agent made.
pub const EXT_ENDPOINT: &str = "weft-endpoint";
pub const EXT_RECORD: &str = "weft-record";

pub(crate) struct Inner {
    pub cfg: Config,
    pub netmaster: Netmaster,
    pub ovsdb: ovsdb::Client,
    pub reconciler: Reconciler,
    pub view: SharedView,
    /// The local ports and the compile: one owner.
    pub desired: Desired,
    /// What the host's routes through the gateway port and its masquerade rule must be.
    /// None until the first compile: a restarted agent leaves the host's routes alone until it
    /// knows what they must be.
    host_routes: watch::Receiver<Option<crate::hostgw::HostRoutes>>,
    pub metrics: crate::metrics::Metrics,
    /// The inspect API's and the verdict log's state.
    pub inspect: Arc<crate::inspect::Inspector>,
    /// Where the inspect API listens, if it does.
    pub inspect_addr: Option<SocketAddr>,
    /// One attach or detach at a time per endpoint id (an entry lives while someone holds it).
    pub ep_locks: dashmap::DashMap<String, Arc<tokio::sync::Mutex<()>>>,
    pub driver: OfDriver,
}

/// A running agent. Dropping it stops its tasks (the switch keeps its flows).
pub struct Agent {
    pub(crate) inner: Arc<Inner>,
    cancel: CancellationToken,
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("OVSDB at {remote}: {error}")]
    Ovsdb { remote: String, error: String },
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Kernel(#[from] crate::kernel::KernelError),
    #[error(transparent)]
    Netmaster(#[from] crate::netmaster::NetmasterError),
    #[error("endpoint service socket {path}: {error}")]
    Socket { path: String, error: String },
}

impl Agent {
    /// Sets up the bridge, learns the ports this host already has, starts the watch, the
    /// OpenFlow driver, the reconciler and the endpoint service.
    pub async fn start(cfg: Config) -> Result<Agent, StartError> {
        let cancel = CancellationToken::new();
        let ovsdb_err = |e: ovsdb::Error| StartError::Ovsdb {
            remote: cfg.ovsdb.clone(),
            error: e.to_string(),
        };
        let db = ovsdb::Client::connect(&cfg.ovsdb)
            .await
            .map_err(ovsdb_err)?;
        crate::bridge::ensure_integration_bridge(&db, &cfg)
            .await
            .map_err(ovsdb_err)?;
        let uplink_port = match &cfg.uplink {
            Some(u) => {
                crate::kernel::bridge_only(u)?;
                Some(
                    crate::bridge::ensure_uplink(&db, &cfg.bridge, u)
                        .await
                        .map_err(ovsdb_err)?,
                )
            }
            None => None,
        };
        let tunnel_port =
            crate::bridge::ensure_tunnel(&db, &cfg.bridge, cfg.vtep_ip, &cfg.datapath)
                .await
                .map_err(ovsdb_err)?;
        let gateway = match crate::hostgw::ensure(
            &db,
            &cfg.bridge,
            weft_policy::layout::host_gateway_mac(cfg.vtep_ip),
            GATEWAY_MTU,
        )
        .await
        {
            Ok(g) => Some(g),
            Err(e) => {
                warn!(error = %e, "no host gateway port: host access and egress will not work on this host");
                None
            }
        };
        let local = crate::bridge::local_ports(&db, &cfg.bridge)
            .await
            .map_err(ovsdb_err)?;
        info!(ports = local.len(), bridge = %cfg.bridge, "known local endpoints");

        // The inspect API's listener first: the node record says where it is.
        let inspect_listener = match cfg.inspect_listen {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| StartError::Config(format!("--inspect-listen {addr}: {e}")))?,
            ),
            None => None,
        };
        let inspect_addr = inspect_listener.as_ref().and_then(|l| l.local_addr().ok());
        let netmaster = Netmaster::new(&cfg.netmaster)?;
        netmaster.spawn_registration(
            Node {
                name: cfg.host.clone(),
                vtep_ip: cfg.vtep_ip,
                uplink: cfg.uplink.clone().unwrap_or_default(),
                inspect: inspect_addr.map(|a| a.to_string()).unwrap_or_default(),
            },
            cfg.lease_ttl,
            cancel.clone(),
        );
        let (view, view_changes) = netmaster.spawn_watch(cfg.host.clone(), cancel.clone());
        let mgmt = cfg.ovs_rundir.join(format!("{}.mgmt", cfg.bridge));
        let driver = OfDriver::spawn(mgmt, cancel.clone());
        let reconciler =
            Reconciler::spawn_with_resync(driver.clone(), cfg.resync_interval, cancel.clone());
        let me = HostPorts {
            host: cfg.host.clone(),
            bridge: cfg.bridge.clone(),
            uplink_port,
            tunnel_port: Some(tunnel_port),
            gateway_port: gateway.map(|g| weft_policy::GatewayPort {
                ofport: g.ofport,
                mac: g.mac,
                address: cfg.vtep_ip,
            }),
        };
        let (routes_tx, routes_rx) = watch::channel(None);
        let desired = Desired::spawn(
            local,
            me.clone(),
            view.clone(),
            view_changes,
            reconciler.clone(),
            routes_tx,
            cancel.clone(),
        );
        let metrics = crate::metrics::Metrics::default();
        let inspect = Arc::new(crate::inspect::Inspector::new(
            cfg.host.clone(),
            cfg.vtep_ip,
            me,
            desired.clone(),
            driver.clone(),
            reconciler.clone(),
            metrics.clone(),
        ));
        reconciler.observe(Arc::new(crate::inspect::MetricsFeed {
            metrics: metrics.clone(),
            desired: desired.clone(),
        }));
        crate::inspect::follow_packet_ins(inspect.clone(), driver.packet_ins(), cancel.clone());
        if let Some(l) = inspect_listener {
            crate::inspect::serve(inspect.clone(), l, cancel.clone());
        }
        let inner = Arc::new(Inner {
            cfg,
            netmaster,
            ovsdb: db,
            reconciler,
            view,
            desired,
            host_routes: routes_rx,
            ep_locks: dashmap::DashMap::new(),
            metrics,
            inspect,
            inspect_addr,
            driver,
        });
        if gateway.is_some() {
            tokio::spawn(follow_host_routes(inner.clone(), cancel.clone()));
        }
        tokio::spawn(follow_switch(inner.clone(), cancel.clone()));
        tokio::spawn(count_drift(inner.clone(), cancel.clone()));
        crate::service::serve(inner.clone(), cancel.clone()).await?;
        Ok(Agent { inner, cancel })
    }

    /// The agent's Prometheus metrics.
    pub fn metrics(&self) -> &crate::metrics::Metrics {
        &self.inner.metrics
    }

    /// Where the inspect API listens, if it does.
    pub fn inspect_addr(&self) -> Option<SocketAddr> {
        self.inner.inspect_addr
    }

    /// The inspect API's and the verdict log's state.
    pub fn inspector(&self) -> &crate::inspect::Inspector {
        &self.inner.inspect
    }

    /// The reconciler (tests and benchmarks wait on it).
    pub fn reconciler(&self) -> &Reconciler {
        &self.inner.reconciler
    }

    pub fn view(&self) -> View {
        self.inner.view.read().clone()
    }

    pub fn local_ports(&self) -> Vec<LocalPort> {
        self.inner
            .desired
            .ports()
            .values()
            .map(|p| (**p).clone())
            .collect()
    }

    /// Waits until netmaster's snapshot has arrived and the switch holds what it implies.
    pub async fn ready(&self, timeout: Duration) -> bool {
        let complete = self
            .inner
            .view
            .wait_for(timeout, |v| v.complete.then_some(()))
            .await;
        if complete.is_none() {
            return false;
        }
        let v = self.inner.desired.change(Change::Recompile).await;
        v > 0 && self.inner.reconciler.wait_applied(v, timeout).await
    }
}

impl Inner {
    /// Drops a local port from the state and waits (bounded) until its flows are gone.
    pub async fn forget_local(&self, id: &str) {
        let v = self.desired.change(Change::Remove(id.to_string())).await;
        if v > 0 {
            self.reconciler
                .wait_applied(v, self.cfg.confirm_timeout)
                .await;
        }
    }

    /// The lock of one endpoint id. Taken by attach and detach.
    pub fn ep_lock(&self, id: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.ep_locks.entry(id.to_string()).or_default().clone()
    }

    /// Forgets the lock of `id` when no one else holds or waits for it.
    pub fn ep_unlock(&self, id: &str) {
        self.ep_locks
            .remove_if(id, |_, l| Arc::strong_count(l) == 1);
    }
}

/// The MTU of the host gateway port: the smallest a container gets (VXLAN's 1450), so the host
/// never sends a container more than it takes.
const GATEWAY_MTU: u32 = 1450;

/// Keeps the host's routes through the gateway port (and its masquerade rule) equal to what
/// the last compile needs; retries while the kernel refuses.
async fn follow_host_routes(inner: Arc<Inner>, cancel: CancellationToken) {
    let mut want = inner.host_routes.clone();
    loop {
        let routes = want.borrow_and_update().clone();
        if let Some(Err(e)) = match &routes {
            Some(r) => Some(crate::hostgw::sync(r).await),
            None => None,
        } {
            warn!(error = %e, "host routes through the gateway port");
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                _ = cancel.cancelled() => return,
            }
        }
        tokio::select! {
            r = want.changed() => if r.is_err() { return },
            _ = cancel.cancelled() => return,
        }
    }
}

/// The reconciler's drift repairs, into the metrics.
async fn count_drift(inner: Arc<Inner>, cancel: CancellationToken) {
    let mut applied = inner.reconciler.applied();
    let (mut repairs, mut changes) = (0, 0);
    loop {
        tokio::select! {
            r = applied.changed() => if r.is_err() { return },
            _ = cancel.cancelled() => return,
        }
        let a = applied.borrow_and_update().clone();
        inner
            .metrics
            .drift(a.repairs - repairs, a.repaired_changes - changes);
        (repairs, changes) = (a.repairs, a.repaired_changes);
    }
}

/// After Open vSwitch comes back, port numbers may have changed: read them again.
async fn follow_switch(inner: Arc<Inner>, cancel: CancellationToken) {
    let mut gen = inner.driver.generation();
    let mut seen_first = false;
    loop {
        tokio::select! {
            r = gen.changed() => if r.is_err() { return },
            _ = cancel.cancelled() => return,
        }
        if *gen.borrow_and_update() == 0 {
            continue;
        }
        if !seen_first {
            seen_first = true;
            continue;
        }
        match crate::bridge::local_ports(&inner.ovsdb, &inner.cfg.bridge).await {
            Ok(fresh) => {
                let numbers = fresh.into_iter().map(|(id, p)| (id, p.ofport)).collect();
                inner.desired.change(Change::Renumber(numbers)).await;
            }
            Err(e) => warn!(error = %e, "reading ports after reconnect failed"),
        }
    }
}
