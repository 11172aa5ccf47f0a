//! Running netmaster: open the store, serve the REST API until shut down.

use std::net::SocketAddr;
use std::path::PathBuf;

use tokio_util::sync::CancellationToken;

use crate::intent::Intent;
use crate::store::embedded::Embedded;
use crate::store::etcd::EtcdStore;
use crate::store::{Store, StoreError};

/// What netmaster needs to start.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the embedded store keeps its file (when no etcd is given).
    pub data_dir: PathBuf,
    /// etcd endpoints; empty for the embedded store.
    pub etcd: Vec<String>,
    /// REST API address.
    pub listen: SocketAddr,
    /// gRPC address for agents.
    pub grpc_listen: SocketAddr,
}

/// Where netmaster ended up listening (the ports may have been 0).
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub rest: SocketAddr,
    pub grpc: SocketAddr,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("listening on {addr}: {err}")]
    Listen {
        addr: SocketAddr,
        err: std::io::Error,
    },
    #[error("gRPC service: {0}")]
    Grpc(#[from] tonic::transport::Error),
}

/// Opens the store the config names.
pub async fn open_store(config: &Config) -> Result<Store, StoreError> {
    if config.etcd.is_empty() {
        Ok(Store::Embedded(Embedded::open(&config.data_dir).await?))
    } else {
        Ok(Store::Etcd(Box::new(
            EtcdStore::connect(&config.etcd).await?,
        )))
    }
}

async fn bind(addr: SocketAddr) -> Result<(tokio::net::TcpListener, SocketAddr), ServeError> {
    let l = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|err| ServeError::Listen { addr, err })?;
    let bound = l
        .local_addr()
        .map_err(|err| ServeError::Listen { addr, err })?;
    Ok((l, bound))
}

/// Serves the REST API and the agents' gRPC service until `shutdown` is cancelled. `ready` gets
/// the bound addresses (useful with port 0).
pub async fn run(
    config: Config,
    shutdown: CancellationToken,
    ready: Option<tokio::sync::oneshot::Sender<Bound>>,
) -> Result<(), ServeError> {
    let store = open_store(&config).await?;
    let hub = crate::watch::Hub::start(store.clone(), shutdown.clone()).await?;
    let intent = Intent::new(store.clone());
    intent.metrics().attach(store, hub.clone());
    let (rest_l, rest) = bind(config.listen).await?;
    let (grpc_l, grpc) = bind(config.grpc_listen).await?;
    tracing::info!("netmaster: REST API on http://{rest}, agents' gRPC on {grpc}");
    if let Some(tx) = ready {
        let _ = tx.send(Bound { rest, grpc });
    }
    let app = crate::rest::router(intent.clone());
    let s1 = shutdown.clone();
    let rest_task =
        axum::serve(rest_l, app).with_graceful_shutdown(async move { s1.cancelled().await });
    let agents = weft_api::proto::agent::agent_service_server::AgentServiceServer::new(
        crate::grpc::Agents::new(intent, hub),
    );
    let grpc_task = tonic::transport::Server::builder()
        .add_service(agents)
        .serve_with_incoming_shutdown(
            // Without TCP_NODELAY small replies wait for delayed ACKs (~40 ms a call).
            tonic::transport::server::TcpIncoming::from(grpc_l).with_nodelay(Some(true)),
            async move { shutdown.cancelled().await },
        );
    let (r, g) = tokio::join!(rest_task, grpc_task);
    r.map_err(|err| ServeError::Listen { addr: rest, err })?;
    g?;
    Ok(())
}

/// A netmaster running in this process (embedded in another program, or in tests); it stops
/// when dropped.
pub struct Running {
    pub bound: Bound,
    stop: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// Starts netmaster in the background and returns once it listens.
pub async fn spawn(config: Config) -> Result<Running, ServeError> {
    let stop = CancellationToken::new();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let task = tokio::spawn(run(config, stop.clone(), Some(tx)));
    match rx.await {
        Ok(bound) => Ok(Running { bound, stop }),
        // It stopped before listening: report why.
        Err(_) => match task.await {
            Ok(Err(e)) => Err(e),
            _ => Err(ServeError::Store(StoreError::Other(
                "netmaster stopped while starting".into(),
            ))),
        },
    }
}

/// A config for an embedded store in `data_dir`, listening on free loopback ports.
pub fn local_config(data_dir: &std::path::Path) -> Config {
    let any: SocketAddr = "127.0.0.1:0".parse().expect("a socket address");
    Config {
        data_dir: data_dir.to_path_buf(),
        etcd: vec![],
        listen: any,
        grpc_listen: any,
    }
}
