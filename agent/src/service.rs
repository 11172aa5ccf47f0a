//! The endpoint service's transport: gRPC on a unix socket (and TCP when asked), a thin adapter
//! over the domain part ([`crate::endpoint`]): requests parsed once into typed ones, errors
//! mapped to status codes.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;

use tokio::net::UnixListener;
use tokio_stream::wrappers::UnixListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};
use tracing::warn;
use weft_api::proto::endpoint as pb;
use weft_api::proto::endpoint::endpoint_service_server::{EndpointService, EndpointServiceServer};

pub use crate::endpoint::{endpoint_id, host_interface};

use crate::agent::{Inner, StartError};
use crate::endpoint::{AttachError, AttachSpec, Endpoints};
use crate::local::LocalPort;

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
        endpoints: Endpoints {
            inner: inner.clone(),
        },
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
    endpoints: Endpoints,
}

impl From<AttachError> for Status {
    fn from(e: AttachError) -> Status {
        match e {
            AttachError::Invalid(m) => Status::invalid_argument(m),
            AttachError::Netmaster { code, message } => Status::new(code, message),
            AttachError::Unavailable(m) => Status::unavailable(m),
            AttachError::Failed(m) => Status::internal(m),
            e @ AttachError::Setup { .. } => Status::internal(e.to_string()),
        }
    }
}

fn to_proto(p: &LocalPort) -> pb::Interface {
    let ep = p.endpoint.as_ref();
    let label = |k: &str| p.labels.get(k).cloned().unwrap_or_default();
    pb::Interface {
        endpoint_id: p.endpoint_id.clone(),
        container_id: p.container_id.clone(),
        interface_name: p.interface_name.clone(),
        host_interface: p.host_interface.clone(),
        netns: p.netns.clone(),
        tenant: ep.map(|e| e.tenant_name.clone()).unwrap_or_default(),
        network: ep.map(|e| e.network_name.clone()).unwrap_or_default(),
        group: ep.map(|e| e.group_name.clone()).unwrap_or_default(),
        bridge: p.bridge.clone(),
        vlan: u32::from(p.vlan),
        mac: weft_policy::fmt_mac(&p.mac),
        ipv4: p.ipv4.map(|n| n.to_string()).unwrap_or_default(),
        gateway: p.gateway.map(|g| g.to_string()).unwrap_or_default(),
        ipv6: p.ipv6.iter().map(ToString::to_string).collect(),
        mtu: p.mtu,
        routes: p
            .routes
            .iter()
            .map(|r| pb::Route {
                dst: r.dst.to_string(),
                gateway: r.gateway.map(|g| g.to_string()).unwrap_or_default(),
            })
            .collect(),
        ofport: p.ofport,
        pod_name: label("pod_name"),
        pod_namespace: label("pod_namespace"),
        pod_uid: label("pod_uid"),
        peer_interface: if p.netns.is_empty() {
            crate::endpoint::temp_peer(&p.endpoint_id)
        } else {
            String::new()
        },
    }
}

#[tonic::async_trait]
impl EndpointService for Service {
    async fn attach(
        &self,
        req: Request<pb::AttachRequest>,
    ) -> Result<Response<pb::AttachReply>, Status> {
        let spec = AttachSpec::try_from(req.into_inner())?;
        let lp = self.endpoints.attach(spec).await?;
        Ok(Response::new(pb::AttachReply {
            interface: Some(to_proto(&lp)),
        }))
    }

    async fn detach(
        &self,
        req: Request<pb::DetachRequest>,
    ) -> Result<Response<pb::DetachReply>, Status> {
        let r = req.into_inner();
        let removed = self
            .endpoints
            .detach(&r.container_id, &r.interface_name)
            .await?;
        Ok(Response::new(pb::DetachReply { removed }))
    }

    async fn list(&self, req: Request<pb::ListRequest>) -> Result<Response<pb::ListReply>, Status> {
        let r = req.into_inner();
        Ok(Response::new(pb::ListReply {
            interfaces: self
                .endpoints
                .list(&r.container_id, "")
                .iter()
                .map(to_proto)
                .collect(),
        }))
    }

    async fn check(
        &self,
        req: Request<pb::CheckRequest>,
    ) -> Result<Response<pb::CheckReply>, Status> {
        let r = req.into_inner();
        let problems = self
            .endpoints
            .check(&r.container_id, &r.interface_name)
            .await;
        Ok(Response::new(pb::CheckReply {
            ok: problems.is_empty(),
            problems,
        }))
    }
}
