//! The gRPC service for netplugin agents (`api/proto/agent.proto`): nodes under leases, endpoint
//! addresses, and the resumable watch of the desired state.
//!
//! Node and endpoint records live beside the intent (keys: [`crate::keys`]). The watch is served
//! by the hub
//! ([`crate::watch`]): each host receives the units it needs, typed, each change with its store
//! revision.

use std::net::Ipv4Addr;
use std::pin::Pin;

use futures::{Stream, StreamExt};
use tonic::{Request, Response, Status};
use weft_api::proto::agent as pb;
use weft_api::proto::agent::agent_service_server::AgentService;
use weft_api::{Endpoint, Node};

use crate::alloc::{AllocError, Allocator, Pool};
use crate::intent::{Intent, IntentError};
use crate::store::{Compare, Op, StoreError};
use crate::watch::Hub;

const DEFAULT_TTL: u32 = 10;

pub struct Agents {
    intent: Intent,
    alloc: Allocator,
    hub: Hub,
}

impl Agents {
    pub fn new(intent: Intent, hub: Hub) -> Self {
        let alloc = Allocator::new(intent.store().clone());
        Agents { intent, alloc, hub }
    }
}

fn status(e: StoreError) -> Status {
    match e {
        StoreError::Unavailable(m) => Status::unavailable(m),
        StoreError::Compacted { .. } => Status::out_of_range(e.to_string()),
        StoreError::LeaseNotFound(_) => Status::not_found(e.to_string()),
        other => Status::internal(other.to_string()),
    }
}

fn intent_status(e: IntentError) -> Status {
    match e {
        IntentError::Store(s) => status(s),
        IntentError::NotFound { .. } => Status::not_found(e.to_string()),
        IntentError::Conflict(_) => Status::aborted(e.to_string()),
        _ => Status::invalid_argument(e.to_string()),
    }
}

fn alloc_status(e: AllocError) -> Status {
    match e {
        AllocError::Store(s) => status(s),
        AllocError::Exhausted { .. } => Status::resource_exhausted(e.to_string()),
        AllocError::Taken { .. } => Status::already_exists(e.to_string()),
        _ => Status::invalid_argument(e.to_string()),
    }
}

/// An endpoint may name only a group of its tenant, in its network, that exists.
async fn group_exists(
    intent: &Intent,
    tenant: &str,
    network: &str,
    group: &str,
) -> Result<(), Status> {
    let key = format!("{tenant}:{group}");
    let found = intent
        .read(|s| s.groups.get(&key).map(|g| g.network_name.clone()))
        .await
        .map_err(intent_status)?;
    match found {
        Some(n) if n == network => Ok(()),
        Some(n) => Err(Status::invalid_argument(format!(
            "endpoint group \"{key}\" belongs to network {n}, not {network}"
        ))),
        None => Err(no_group(&key)),
    }
}

fn no_group(key: &str) -> Status {
    Status::not_found(format!("endpoint group \"{key}\" does not exist"))
}

/// A MAC for an endpoint: locally administered, derived from its address so it is stable.
fn mac_for(ip: Ipv4Addr) -> String {
    let o = ip.octets();
    format!("02:00:{:02x}:{:02x}:{:02x}:{:02x}", o[0], o[1], o[2], o[3])
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchEvent, Status>> + Send>>;

#[tonic::async_trait]
impl AgentService for Agents {
    #[tracing::instrument(name = "grpc.RegisterNode", skip_all, fields(node = %req.get_ref().name, vtep = %req.get_ref().vtep_ip))]
    async fn register_node(
        &self,
        req: Request<pb::RegisterNodeRequest>,
    ) -> Result<Response<pb::RegisterNodeReply>, Status> {
        let r = req.into_inner();
        weft_api::validate::check_name(&r.name)
            .map_err(|m| Status::invalid_argument(format!("node name: {m}")))?;
        let vtep_ip: Ipv4Addr = r.vtep_ip.parse().map_err(|_| {
            Status::invalid_argument(format!(
                "node \"{}\": vtep_ip \"{}\" is not an IPv4 address",
                r.name, r.vtep_ip
            ))
        })?;
        if !r.inspect.is_empty() && r.inspect.parse::<std::net::SocketAddr>().is_err() {
            return Err(Status::invalid_argument(format!(
                "node \"{}\": inspect \"{}\" is not ADDR:PORT",
                r.name, r.inspect
            )));
        }
        let ttl = if r.lease_ttl_seconds == 0 {
            DEFAULT_TTL
        } else {
            r.lease_ttl_seconds
        };
        let store = self.intent.store();
        let lease = store.lease_grant(i64::from(ttl)).await.map_err(status)?;
        let node = Node {
            name: r.name.clone(),
            vtep_ip,
            uplink: r.uplink,
            inspect: r.inspect,
        };
        let value = serde_json::to_vec(&node).expect("nodes serialize");
        store
            .txn(
                vec![],
                vec![Op::Put {
                    key: crate::keys::node(&r.name),
                    value,
                    lease,
                }],
                vec![],
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::RegisterNodeReply {
            lease_id: lease,
            ttl_seconds: ttl,
        }))
    }

    #[tracing::instrument(name = "grpc.KeepAlive", level = "debug", skip_all, fields(lease = req.get_ref().lease_id))]
    async fn keep_alive(
        &self,
        req: Request<pb::KeepAliveRequest>,
    ) -> Result<Response<pb::KeepAliveReply>, Status> {
        let ttl = self
            .intent
            .store()
            .lease_keepalive(req.into_inner().lease_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::KeepAliveReply {
            ttl_seconds: ttl as u32,
        }))
    }

    #[tracing::instrument(name = "grpc.AllocateEndpoint", skip_all, fields(endpoint = %req.get_ref().endpoint_id, host = %req.get_ref().host, network = %format_args!("{}:{}", req.get_ref().tenant, req.get_ref().network)))]
    async fn allocate_endpoint(
        &self,
        req: Request<pb::AllocateEndpointRequest>,
    ) -> Result<Response<pb::AllocateEndpointReply>, Status> {
        let allocated = self.allocate(req.into_inner()).await;
        self.intent.metrics().allocation(match &allocated {
            Ok(_) => "allocated",
            Err(s) => match s.code() {
                tonic::Code::ResourceExhausted => "exhausted",
                tonic::Code::AlreadyExists => "taken",
                tonic::Code::InvalidArgument | tonic::Code::NotFound => "invalid",
                tonic::Code::Unavailable => "unavailable",
                _ => "error",
            },
        });
        let (json, revision) = allocated?;
        let ep: Endpoint =
            serde_json::from_slice(&json).map_err(|e| Status::internal(e.to_string()))?;
        let net_key = format!("{}:{}", ep.tenant_name, ep.network_name);
        let network = self
            .intent
            .read(|s| {
                s.networks
                    .get(&net_key)
                    .map(weft_api::watch::network_to_proto)
            })
            .await
            .map_err(intent_status)?;
        Ok(Response::new(pb::AllocateEndpointReply {
            endpoint: Some(weft_api::watch::endpoint_to(&ep)),
            network,
            revision,
        }))
    }

    #[tracing::instrument(name = "grpc.ReleaseEndpoint", skip_all, fields(endpoint = %req.get_ref().endpoint_id))]
    async fn release_endpoint(
        &self,
        req: Request<pb::ReleaseEndpointRequest>,
    ) -> Result<Response<pb::ReleaseEndpointReply>, Status> {
        let id = req.into_inner().endpoint_id;
        let key = crate::keys::endpoint(&id);
        let store = self.intent.store();
        let Some(kv) = store.get(&key).await.map_err(status)? else {
            return Ok(Response::new(pb::ReleaseEndpointReply { existed: false }));
        };
        let ep: Endpoint =
            serde_json::from_slice(&kv.value).map_err(|e| Status::internal(e.to_string()))?;
        let net_key = format!("{}:{}", ep.tenant_name, ep.network_name);
        let pool = Pool::addresses(
            &format!("ip/{net_key}"),
            Ipv4Addr::UNSPECIFIED,
            Ipv4Addr::UNSPECIFIED,
            vec![],
        );
        self.alloc.release(&pool, &id).await.map_err(alloc_status)?;
        store
            .txn(vec![], vec![Op::Delete(key)], vec![])
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ReleaseEndpointReply { existed: true }))
    }

    type WatchStream = WatchStream;

    #[tracing::instrument(name = "grpc.Watch", skip_all, fields(host = %req.get_ref().host, from_revision = req.get_ref().from_revision, held = req.get_ref().held.len()))]
    async fn watch(
        &self,
        req: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let r = req.into_inner();
        let held = r.held.into_iter().map(|h| (h.unit, h.digest)).collect();
        let guard = self.intent.metrics().watch_opened(&r.host);
        let rx = self
            .hub
            .subscribe(r.host, r.from_revision, held)
            .await
            .ok_or_else(|| Status::unavailable("netmaster is shutting down"))?;
        let stream = futures::stream::unfold((rx, guard), |(mut rx, guard)| async move {
            let batch = rx.recv().await?;
            if let Some(rev) = batch.iter().map(|e| e.revision).max() {
                guard.delivered(rev);
            }
            Some((batch, (rx, guard)))
        })
        .flat_map(|batch| futures::stream::iter(batch.into_iter().map(Ok)));
        Ok(Response::new(Box::pin(stream)))
    }

    #[tracing::instrument(name = "grpc.GetNetworks", skip_all, fields(tenant = %req.get_ref().tenant, network = %req.get_ref().network))]
    async fn get_networks(
        &self,
        req: Request<pb::GetNetworksRequest>,
    ) -> Result<Response<pb::GetNetworksReply>, Status> {
        let r = req.into_inner();
        self.hub
            .networks(r.tenant, r.network)
            .await
            .map(Response::new)
            .ok_or_else(|| Status::unavailable("netmaster is shutting down"))
    }
}

impl Agents {
    /// Allocates (or finds) an endpoint: its stored JSON and the revision it was read or written at.
    async fn allocate(&self, r: pb::AllocateEndpointRequest) -> Result<(Vec<u8>, i64), Status> {
        if r.endpoint_id.is_empty() || r.endpoint_id.contains('/') {
            return Err(Status::invalid_argument(
                "endpoint_id must be non-empty and contain no '/'",
            ));
        }
        let key = crate::keys::endpoint(&r.endpoint_id);
        let store = self.intent.store();
        if let Some(kv) = store.get(&key).await.map_err(status)? {
            // Asked again: the same address (idempotent), if it is the same network.
            let mut ep: Endpoint =
                serde_json::from_slice(&kv.value).map_err(|e| Status::internal(e.to_string()))?;
            if ep.tenant_name != r.tenant || ep.network_name != r.network {
                return Err(Status::already_exists(format!(
                    "endpoint \"{}\" exists in network {}:{}",
                    r.endpoint_id, ep.tenant_name, ep.network_name
                )));
            }
            if !r.requested_ipv4.is_empty() && r.requested_ipv4 != ep.ipv4.to_string() {
                return Err(Status::already_exists(format!(
                    "endpoint \"{}\" holds {}, not the {} asked for",
                    r.endpoint_id, ep.ipv4, r.requested_ipv4
                )));
            }
            // A reservation (the Docker driver's IPAM reserves before the container exists)
            // becomes the endpoint: what the later request says of it is kept.
            let mut changed = false;
            for (have, want) in [
                (&mut ep.container, &r.container),
                (&mut ep.host, &r.host),
                (&mut ep.group_name, &r.group),
                (&mut ep.interface_name, &r.interface_name),
            ] {
                if !want.is_empty() && have != want {
                    *have = want.clone();
                    changed = true;
                }
            }
            if !changed {
                return Ok((kv.value, kv.mod_revision));
            }
            if !r.group.is_empty() {
                group_exists(&self.intent, &r.tenant, &r.network, &r.group).await?;
            }
            let value = serde_json::to_vec(&ep).expect("endpoints serialize");
            let done = store
                .txn(
                    vec![Compare::Value(key.clone(), kv.value.clone())],
                    vec![Op::put(key.clone(), value.clone())],
                    vec![],
                )
                .await
                .map_err(status)?;
            if !done.succeeded {
                return Err(Status::aborted(format!(
                    "endpoint \"{}\" changed while it was being updated; try again",
                    r.endpoint_id
                )));
            }
            return Ok((value, done.revision));
        }
        let net_key = format!("{}:{}", r.tenant, r.network);
        let net = self
            .intent
            .read(|s| s.networks.get(&net_key).cloned())
            .await
            .map_err(intent_status)?;
        let net =
            net.ok_or_else(|| Status::not_found(format!("network \"{net_key}\" does not exist")))?;
        if !r.group.is_empty() {
            group_exists(&self.intent, &r.tenant, &r.network, &r.group).await?;
        }
        let (first, last) = net.subnet.usable();
        let pool = Pool::addresses(
            &format!("ip/{net_key}"),
            first,
            last,
            net.gateway.into_iter().collect(),
        );
        let ip = if r.requested_ipv4.is_empty() {
            self.alloc.allocate(&pool, &r.endpoint_id).await
        } else {
            let want: Ipv4Addr = r.requested_ipv4.parse().map_err(|_| {
                Status::invalid_argument(format!(
                    "requested_ipv4 \"{}\" is not an IPv4 address",
                    r.requested_ipv4
                ))
            })?;
            self.alloc
                .allocate_static(&pool, &r.endpoint_id, want.into())
                .await
        }
        .map_err(alloc_status)?;
        let ip = Ipv4Addr::from(ip);
        let ep = Endpoint {
            endpoint_id: r.endpoint_id.clone(),
            container: r.container,
            host: r.host,
            tenant_name: r.tenant,
            network_name: r.network,
            group_name: r.group,
            interface_name: r.interface_name,
            mac: if r.mac.is_empty() { mac_for(ip) } else { r.mac },
            ipv4: ip,
            ipv6: None,
            state: "allocated".into(),
        };
        let value = serde_json::to_vec(&ep).expect("endpoints serialize");
        let stored = store
            .txn(
                vec![Compare::Absent(key.clone())],
                vec![Op::put(key.clone(), value.clone())],
                vec![Op::Get(key)],
            )
            .await
            .map_err(status)?;
        if !stored.succeeded {
            // A concurrent identical request won: answer with what it stored.
            if let Some(Some(kv)) = stored.gets.first() {
                return Ok((kv.value.clone(), kv.mod_revision));
            }
        }
        Ok((value, stored.revision))
    }
}
