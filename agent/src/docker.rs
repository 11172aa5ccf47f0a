//! The Docker network driver: Docker's remote NetworkDriver and IpamDriver plugin APIs, JSON over
//! HTTP on a unix socket in `/run/docker/plugins/`, served by netplugin.
//!
//! A Docker network maps to a Weft network: `docker network create -d weft --ipam-driver weft
//! --ipam-opt tenant=T --ipam-opt network=N [--opt group=G] NAME` (or `--subnet` naming the Weft
//! network's subnet, when only one network has it). The IPAM part reserves addresses at netmaster
//! (under an id of its own, `docker-…`, which gives the address its MAC; CreateEndpoint tells
//! Docker that MAC). At Join the driver asks this host's endpoint service for an interface under
//! that id, in the network and group of its Docker network, left in the host namespace
//! (Docker's sandbox namespace does not exist yet at Join): veth, port, flows as for any attach.
//! Docker moves the container end into the sandbox, names it `ethN`, and sets the address and the
//! default route via the gateway the reply names. Leave detaches; ReleaseAddress releases.
//!
//! The mapping from Docker networks to Weft networks is kept in a JSON file, so a restarted
//! netplugin knows the networks Docker created before.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use ipnet::Ipv4Net;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};
use weft_api::model::Keyed;
use weft_api::proto::agent as nm;
use weft_api::proto::endpoint as pb;

use crate::agent::Inner;
use crate::Agent;

/// What the driver knows of one Docker network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct DockerNet {
    tenant: String,
    network: String,
    #[serde(default)]
    group: String,
}

impl DockerNet {
    /// The Weft network's key (`tenant:network`): the IPAM pool's id.
    fn key(&self) -> String {
        crate::hoststate::scoped_key(&self.tenant, &self.network)
    }
}

/// What the driver knows of one Docker endpoint (between CreateEndpoint and DeleteEndpoint).
#[derive(Debug, Clone)]
struct DockerEp {
    network_id: String,
    /// CIDR from Docker's IPAM.
    address: String,
}

#[derive(Default, Serialize, Deserialize)]
struct Saved {
    networks: BTreeMap<String, DockerNet>,
}

struct Driver {
    inner: Arc<Inner>,
    state_file: PathBuf,
    networks: Mutex<BTreeMap<String, DockerNet>>,
    endpoints: Mutex<BTreeMap<String, DockerEp>>,
    /// Address reservations this process made: `tenant:network/address` → (reservation id,
    /// the MAC netmaster gave it).
    reservations: Mutex<BTreeMap<String, (String, String)>>,
    /// The Weft network of the last pool handed out for a subnet: `docker network create` asks
    /// IPAM for the pool and then creates the network, whose request names only the subnet.
    pools: Mutex<BTreeMap<Ipv4Net, (String, String)>>,
}

type D = State<Arc<Driver>>;

/// What the driver could not do; its message is what Docker shows.
#[derive(Debug, thiserror::Error)]
pub enum DockerError {
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", .path.display())]
    StateFile {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("docker plugin socket {}: {source}", .path.display())]
    Socket {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("asking netmaster for Weft networks: {}", .0.message())]
    Networks(#[source] tonic::Status),
    #[error("detaching {eid}: {source}")]
    Detach {
        eid: String,
        #[source]
        source: Box<crate::endpoint::AttachError>,
    },
    /// A request that names no Weft network, or one that does not fit.
    #[error("{0}")]
    Refused(String),
}

impl DockerError {
    fn io(path: &Path, source: std::io::Error) -> DockerError {
        DockerError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The network driver's error reply: `{"Err": "..."}` is what libnetwork reads.
fn err(msg: impl std::fmt::Display) -> Json<Value> {
    let msg = msg.to_string();
    warn!(error = %msg, "docker driver: request refused");
    Json(json!({ "Err": msg }))
}

/// The IPAM driver's error reply: its API calls the field `Error`.
fn ipam_err(msg: impl std::fmt::Display) -> Json<Value> {
    let msg = msg.to_string();
    warn!(error = %msg, "docker IPAM: request refused");
    Json(json!({ "Error": msg }))
}

fn ok(v: Value) -> Json<Value> {
    Json(v)
}

/// Starts the driver on `socket` (e.g. `/run/docker/plugins/weft.sock`; the file name is the
/// driver's name in Docker). `state_file` keeps the Docker network → Weft network mapping.
pub async fn serve(
    agent: &Agent,
    socket: &Path,
    state_file: &Path,
    cancel: CancellationToken,
) -> Result<(), DockerError> {
    let saved: Saved = match std::fs::read(state_file) {
        Ok(b) => serde_json::from_slice(&b).map_err(|source| DockerError::StateFile {
            path: state_file.to_path_buf(),
            source,
        })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Saved::default(),
        Err(e) => return Err(DockerError::io(state_file, e)),
    };
    let d = Arc::new(Driver {
        inner: agent.inner.clone(),
        state_file: state_file.to_path_buf(),
        networks: Mutex::new(saved.networks),
        endpoints: Mutex::new(BTreeMap::new()),
        reservations: Mutex::new(BTreeMap::new()),
        pools: Mutex::new(BTreeMap::new()),
    });
    if let Some(dir) = socket.parent() {
        std::fs::create_dir_all(dir).map_err(|e| DockerError::io(dir, e))?;
    }
    let _ = std::fs::remove_file(socket);
    let listener =
        tokio::net::UnixListener::bind(socket).map_err(|source| DockerError::Socket {
            path: socket.to_path_buf(),
            source,
        })?;
    let app = Router::new()
        .route("/Plugin.Activate", post(activate))
        .route("/NetworkDriver.GetCapabilities", post(net_caps))
        .route("/NetworkDriver.CreateNetwork", post(create_network))
        .route("/NetworkDriver.DeleteNetwork", post(delete_network))
        .route("/NetworkDriver.AllocateNetwork", post(empty))
        .route("/NetworkDriver.FreeNetwork", post(empty))
        .route("/NetworkDriver.CreateEndpoint", post(create_endpoint))
        .route("/NetworkDriver.DeleteEndpoint", post(delete_endpoint))
        .route("/NetworkDriver.EndpointOperInfo", post(oper_info))
        .route("/NetworkDriver.Join", post(join))
        .route("/NetworkDriver.Leave", post(leave))
        .route("/NetworkDriver.DiscoverNew", post(empty))
        .route("/NetworkDriver.DiscoverDelete", post(empty))
        .route("/NetworkDriver.ProgramExternalConnectivity", post(empty))
        .route("/NetworkDriver.RevokeExternalConnectivity", post(empty))
        .route("/IpamDriver.GetCapabilities", post(ipam_caps))
        .route("/IpamDriver.GetDefaultAddressSpaces", post(spaces))
        .route("/IpamDriver.RequestPool", post(request_pool))
        .route("/IpamDriver.ReleasePool", post(empty))
        .route("/IpamDriver.RequestAddress", post(request_address))
        .route("/IpamDriver.ReleaseAddress", post(release_address))
        .with_state(d);
    let path = socket.to_path_buf();
    info!(socket = %path.display(), "Docker network and IPAM driver listening");
    tokio::spawn(async move {
        let c = cancel.clone();
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(async move { c.cancelled().await })
            .await
        {
            warn!(error = %e, "docker driver stopped");
        }
        let _ = std::fs::remove_file(&path);
    });
    Ok(())
}

/// Docker sends `application/vnd.docker.plugins.v1+json` (or `…v1.2+json`): read the body as
/// JSON whatever the content type says.
fn body(b: &axum::body::Bytes) -> Value {
    serde_json::from_slice(b).unwrap_or(Value::Null)
}

fn s<'a>(v: &'a Value, k: &str) -> &'a str {
    v.get(k).and_then(Value::as_str).unwrap_or("")
}

async fn activate() -> Json<Value> {
    ok(json!({ "Implements": ["NetworkDriver", "IpamDriver"] }))
}

async fn empty() -> Json<Value> {
    ok(json!({}))
}

async fn net_caps() -> Json<Value> {
    // Local: each Docker daemon keeps its own network records (no Docker KV store needed);
    // netmaster makes the networks the same on every host.
    ok(json!({ "Scope": "local", "ConnectivityScope": "global" }))
}

async fn ipam_caps() -> Json<Value> {
    ok(json!({ "RequiresMACAddress": false }))
}

async fn spaces() -> Json<Value> {
    ok(json!({
        "LocalDefaultAddressSpace": "weft",
        "GlobalDefaultAddressSpace": "weft"
    }))
}

impl Driver {
    fn save(&self) -> Result<(), DockerError> {
        let saved = Saved {
            networks: self.networks.lock().expect("lock").clone(),
        };
        if let Some(dir) = self.state_file.parent() {
            std::fs::create_dir_all(dir).map_err(|e| DockerError::io(dir, e))?;
        }
        let tmp = self.state_file.with_extension("tmp");
        std::fs::write(&tmp, serde_json::to_vec_pretty(&saved).expect("serializes"))
            .and_then(|()| std::fs::rename(&tmp, &self.state_file))
            .map_err(|e| DockerError::io(&self.state_file, e))
    }

    /// The Weft network a pool names: `--ipam-opt tenant=T --ipam-opt network=N`, or a subnet
    /// only one Weft network (of tenant T, when given) has.
    async fn find_network(
        &self,
        tenant: &str,
        network: &str,
        subnet: Option<Ipv4Net>,
    ) -> Result<weft_api::model::Network, DockerError> {
        Ok(self.find_network_groups(tenant, network, subnet).await?.0)
    }

    /// The same, with the network's endpoint groups. Asks netmaster: this host receives only
    /// the networks of tenants it has endpoints in.
    async fn find_network_groups(
        &self,
        tenant: &str,
        network: &str,
        subnet: Option<Ipv4Net>,
    ) -> Result<
        (
            weft_api::model::Network,
            Vec<weft_api::model::EndpointGroup>,
        ),
        DockerError,
    > {
        let t = if tenant.is_empty() && !network.is_empty() {
            "default"
        } else {
            tenant
        };
        let (networks, groups) = self
            .inner
            .netmaster
            .networks(t, network)
            .await
            .map_err(DockerError::Networks)?;
        let with_groups = |n: &weft_api::model::Network| {
            let gs = groups
                .iter()
                .filter(|g| g.tenant_name == n.tenant_name && g.network_name == n.network_name)
                .cloned()
                .collect();
            (n.clone(), gs)
        };
        if !network.is_empty() {
            let key = crate::hoststate::scoped_key(t, network);
            let net = networks
                .iter()
                .find(|n| n.tenant_name == t && n.network_name == network)
                .ok_or_else(|| {
                    DockerError::Refused(format!(
                        "Weft network {key} does not exist (netctl net ls)"
                    ))
                })?;
            if let Some(sn) = subnet {
                if sn != net.subnet.net {
                    return Err(DockerError::Refused(format!(
                        "--subnet {sn} is not the subnet of Weft network {key} ({})",
                        net.subnet.net
                    )));
                }
            }
            return Ok(with_groups(net));
        }
        let Some(sn) = subnet else {
            return Err(DockerError::Refused(
                "say which Weft network: --ipam-opt tenant=T --ipam-opt network=N \
                        (or --subnet with the network's subnet)"
                    .into(),
            ));
        };
        let found: Vec<_> = networks
            .iter()
            .filter(|n| n.subnet.net == sn && (tenant.is_empty() || n.tenant_name == tenant))
            .collect();
        match found.as_slice() {
            [n] => Ok(with_groups(n)),
            [] => Err(DockerError::Refused(format!(
                "no Weft network has subnet {sn}"
            ))),
            many => Err(DockerError::Refused(format!(
                "Weft networks {} all have subnet {sn}; say which with --ipam-opt tenant=T \
                 --ipam-opt network=N",
                many.iter().map(|n| n.key()).collect::<Vec<_>>().join(", ")
            ))),
        }
    }
}

/// PoolID: `tenant:network`.
async fn request_pool(State(d): D, b: axum::body::Bytes) -> Json<Value> {
    let v = body(&b);
    if v.get("V6").and_then(Value::as_bool).unwrap_or(false) {
        return ipam_err("Weft's Docker IPAM gives IPv4 pools only");
    }
    let opts = v.get("Options").cloned().unwrap_or(Value::Null);
    let subnet = match s(&v, "Pool") {
        "" => None,
        p => match p.parse::<Ipv4Net>() {
            Ok(n) => Some(n),
            Err(_) => return ipam_err(format!("pool \"{p}\" is not an IPv4 CIDR")),
        },
    };
    match d
        .find_network(s(&opts, "tenant"), s(&opts, "network"), subnet)
        .await
    {
        Ok(net) => {
            d.pools.lock().expect("lock").insert(
                net.subnet.net,
                (net.tenant_name.clone(), net.network_name.clone()),
            );
            let mut data = serde_json::Map::new();
            if let Some(gw) = net.gateway {
                data.insert(
                    "com.docker.network.gateway".into(),
                    json!(format!("{gw}/{}", net.subnet.net.prefix_len())),
                );
            }
            ok(json!({
                "PoolID": net.key(),
                "Pool": net.subnet.net.to_string(),
                "Data": data,
            }))
        }
        Err(e) => ipam_err(e),
    }
}

async fn pool_network(
    d: &Driver,
    pool: &str,
) -> Result<(String, String, weft_api::model::Network), DockerError> {
    let (t, n) = pool.split_once(':').ok_or_else(|| {
        DockerError::Refused(format!("pool \"{pool}\" is not Weft's (tenant:network)"))
    })?;
    let net = d.find_network(t, n, None).await?;
    Ok((t.to_string(), n.to_string(), net))
}

async fn request_address(State(d): D, b: axum::body::Bytes) -> Json<Value> {
    let v = body(&b);
    let pool = s(&v, "PoolID");
    let (tenant, network, net) = match pool_network(&d, pool).await {
        Ok(x) => x,
        Err(e) => return ipam_err(e),
    };
    let prefix = net.subnet.net.prefix_len();
    let opts = v.get("Options").cloned().unwrap_or(Value::Null);
    let asked = s(&v, "Address");
    if s(&opts, "RequestAddressType") == "com.docker.network.gateway" {
        // The network's gateway (netmaster keeps it out of every endpoint's reach).
        return match net.gateway {
            Some(gw) if asked.is_empty() || asked == gw.to_string() => {
                ok(json!({ "Address": format!("{gw}/{prefix}"), "Data": {} }))
            }
            Some(gw) => ipam_err(format!(
                "Weft network {tenant}:{network} has gateway {gw}, not {asked}"
            )),
            None => ipam_err(format!(
                "Weft network {tenant}:{network} has no gateway; Docker needs one"
            )),
        };
    }
    if !asked.is_empty() && asked.parse::<Ipv4Addr>().is_err() {
        return ipam_err(format!("address \"{asked}\" is not IPv4"));
    }
    let id = reservation_id();
    let r = d
        .inner
        .netmaster
        .allocate(nm::AllocateEndpointRequest {
            endpoint_id: id.clone(),
            tenant: tenant.clone(),
            network: network.clone(),
            host: d.inner.cfg.host.clone(),
            requested_ipv4: asked.to_string(),
            ..Default::default()
        })
        .await;
    match r {
        Ok(a) => {
            let ep = a.endpoint;
            d.reservations
                .lock()
                .expect("lock")
                .insert(format!("{pool}/{}", ep.ipv4), (id, ep.mac.clone()));
            ok(json!({ "Address": format!("{}/{prefix}", ep.ipv4), "Data": {} }))
        }
        Err(s) => ipam_err(format!(
            "netmaster gave no address in {tenant}:{network}: {}",
            s.message()
        )),
    }
}

/// A fresh reservation id: `docker-` and 16 hex digits from the clock and a counter.
fn reservation_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let h = weft_policy::layout::fnv1a(&format!("{t}-{n}-{}", std::process::id()));
    format!("docker-{h:016x}")
}

/// The reservation of an address (id, MAC): the one this process made, or (after a restart) the
/// `docker-…` endpoint netmaster has at that address.
fn reservation_of(d: &Driver, pool: &str, address: &str) -> Option<(String, String)> {
    let ip = address.split('/').next().unwrap_or(address);
    if let Some(r) = d
        .reservations
        .lock()
        .expect("lock")
        .get(&format!("{pool}/{ip}"))
    {
        return Some(r.clone());
    }
    let (t, n) = pool.split_once(':')?;
    let view = d.inner.view.read();
    view.endpoints
        .values()
        .find(|e| {
            e.tenant_name == t
                && e.network_name == n
                && e.ipv4.to_string() == ip
                && e.endpoint_id.starts_with("docker-")
        })
        .map(|e| (e.endpoint_id.clone(), e.mac.clone()))
}

async fn release_address(State(d): D, b: axum::body::Bytes) -> Json<Value> {
    let v = body(&b);
    let pool = s(&v, "PoolID");
    let address = s(&v, "Address");
    let ip = address.split('/').next().unwrap_or(address).to_string();
    let Some((id, _)) = reservation_of(&d, pool, &ip) else {
        // The gateway, or an address already released.
        return ok(json!({}));
    };
    match d.inner.netmaster.release(&id).await {
        Ok(_) => {
            d.reservations
                .lock()
                .expect("lock")
                .remove(&format!("{pool}/{ip}"));
            ok(json!({}))
        }
        Err(s) => ipam_err(format!("releasing {address} at netmaster: {}", s.message())),
    }
}

async fn create_network(State(d): D, b: axum::body::Bytes) -> Json<Value> {
    let v = body(&b);
    let id = s(&v, "NetworkID").to_string();
    let generic = v
        .pointer("/Options/com.docker.network.generic")
        .cloned()
        .unwrap_or(Value::Null);
    let pool = v
        .pointer("/IPv4Data/0/Pool")
        .and_then(Value::as_str)
        .and_then(|p| p.parse::<Ipv4Net>().ok());
    let Some(pool) = pool else {
        return err("a Weft network needs an IPv4 pool: use --ipam-driver weft");
    };
    // The network the options name, else the one IPAM just gave this subnet for.
    let (mut tenant, mut network) = (
        s(&generic, "tenant").to_string(),
        s(&generic, "network").to_string(),
    );
    if let Some((t, n)) = d.pools.lock().expect("lock").get(&pool) {
        if tenant.is_empty() || tenant == *t {
            tenant = t.clone();
            if network.is_empty() {
                network = n.clone();
            }
        }
    }
    let (net, groups) = match d.find_network_groups(&tenant, &network, Some(pool)).await {
        Ok(n) => n,
        Err(e) => return err(e),
    };
    let group = s(&generic, "group").to_string();
    if !group.is_empty() {
        let key = crate::hoststate::scoped_key(&net.tenant_name, &group);
        if !groups.iter().any(|g| g.group_name == group) {
            return err(format!(
                "endpoint group {key} does not exist in network {}",
                net.network_name
            ));
        }
    }
    let dn = DockerNet {
        tenant: net.tenant_name.clone(),
        network: net.network_name.clone(),
        group,
    };
    info!(docker_network = %id, weft = %dn.key(), group = %dn.group, "Docker network created");
    d.networks.lock().expect("lock").insert(id, dn);
    match d.save() {
        Ok(()) => ok(json!({})),
        Err(e) => err(e),
    }
}

async fn delete_network(State(d): D, b: axum::body::Bytes) -> Json<Value> {
    let v = body(&b);
    d.networks.lock().expect("lock").remove(s(&v, "NetworkID"));
    match d.save() {
        Ok(()) => ok(json!({})),
        Err(e) => err(e),
    }
}

async fn create_endpoint(State(d): D, b: axum::body::Bytes) -> Json<Value> {
    let v = body(&b);
    let net_id = s(&v, "NetworkID");
    let address = v
        .pointer("/Interface/Address")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    if address.is_empty() {
        return err("the endpoint has no IPv4 address: use --ipam-driver weft");
    }
    if v.pointer("/Interface/MacAddress")
        .and_then(Value::as_str)
        .is_some_and(|m| !m.is_empty())
    {
        return err("--mac-address is not supported: netmaster gives each address its MAC");
    }
    let Some(net) = d.networks.lock().expect("lock").get(net_id).cloned() else {
        return err(format!(
            "Docker network {net_id} is not known to this netplugin; recreate it"
        ));
    };
    let pool = net.key();
    let Some((_, mac)) = reservation_of(&d, &pool, &address) else {
        return err(format!(
            "address {address} was not reserved through Weft's IPAM: use --ipam-driver weft"
        ));
    };
    d.endpoints.lock().expect("lock").insert(
        s(&v, "EndpointID").to_string(),
        DockerEp {
            network_id: net_id.to_string(),
            address,
        },
    );
    // The MAC netmaster gave the address: the one the flows expect.
    ok(json!({ "Interface": { "MacAddress": mac } }))
}

async fn delete_endpoint(State(d): D, b: axum::body::Bytes) -> Json<Value> {
    let v = body(&b);
    let eid = s(&v, "EndpointID").to_string();
    // Normally Leave has detached it; make sure.
    if let Err(e) = detach(&d, &eid).await {
        return err(e);
    }
    d.endpoints.lock().expect("lock").remove(&eid);
    ok(json!({}))
}

async fn oper_info() -> Json<Value> {
    ok(json!({ "Value": {} }))
}

/// This host's endpoint service, called directly (no socket in between).
fn endpoints(d: &Driver) -> crate::endpoint::Endpoints {
    crate::endpoint::Endpoints {
        inner: d.inner.clone(),
    }
}

async fn join(State(d): D, b: axum::body::Bytes) -> Json<Value> {
    let v = body(&b);
    let eid = s(&v, "EndpointID").to_string();
    let sandbox = s(&v, "SandboxKey").to_string();
    let Some(ep) = d.endpoints.lock().expect("lock").get(&eid).cloned() else {
        return err(format!(
            "endpoint {eid} was not created through this driver"
        ));
    };
    let Some(net) = d
        .networks
        .lock()
        .expect("lock")
        .get(&ep.network_id)
        .cloned()
    else {
        return err(format!("Docker network {} is not known", ep.network_id));
    };
    let pool = net.key();
    let Some((reservation, _)) = reservation_of(&d, &pool, &ep.address) else {
        return err(format!(
            "address {} was not reserved through Weft's IPAM: use --ipam-driver weft",
            ep.address
        ));
    };
    let spec = crate::endpoint::AttachSpec::try_from(pb::AttachRequest {
        container_id: eid.clone(),
        interface_name: "eth".into(),
        leave_in_host_namespace: true,
        tenant: net.tenant.clone(),
        network: net.network.clone(),
        group: net.group.clone(),
        ipv4: ep.address.clone(),
        endpoint_id: reservation,
        labels: [
            ("runtime".to_string(), "docker".to_string()),
            ("sandbox".to_string(), sandbox),
        ]
        .into(),
        ..Default::default()
    });
    let r = match spec {
        Ok(spec) => endpoints(&d).attach(spec).await,
        Err(e) => Err(e),
    };
    match r {
        // Docker moves the interface into the sandbox, names it ethN, gives it the address
        // from IPAM, the MAC from CreateEndpoint and the default route via the gateway.
        Ok(lp) => {
            let mut reply = json!({
                "InterfaceName": {
                    "SrcName": crate::endpoint::temp_peer(&lp.endpoint_id),
                    "DstPrefix": "eth",
                },
            });
            if let Some(g) = lp.gateway {
                reply["Gateway"] = json!(g.to_string());
            }
            ok(reply)
        }
        Err(e) => err(format!("attaching {eid}: {e}")),
    }
}

async fn detach(d: &Driver, eid: &str) -> Result<(), DockerError> {
    endpoints(d)
        .detach(eid, "")
        .await
        .map(|_| ())
        .map_err(|e| DockerError::Detach {
            eid: eid.to_string(),
            source: Box::new(e),
        })
}

async fn leave(State(d): D, b: axum::body::Bytes) -> Json<Value> {
    let v = body(&b);
    match detach(&d, s(&v, "EndpointID")).await {
        Ok(()) => ok(json!({})),
        Err(e) => err(e),
    }
}
