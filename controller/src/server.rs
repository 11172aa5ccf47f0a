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
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("REST API on {addr}: {err}")]
    Listen {
        addr: SocketAddr,
        err: std::io::Error,
    },
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

/// Serves until `shutdown` is cancelled. `ready` gets the bound address (useful with port 0).
pub async fn run(
    config: Config,
    shutdown: CancellationToken,
    ready: Option<tokio::sync::oneshot::Sender<SocketAddr>>,
) -> Result<(), ServeError> {
    let store = open_store(&config).await?;
    let app = crate::rest::router(Intent::new(store));
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|err| ServeError::Listen {
            addr: config.listen,
            err,
        })?;
    let addr = listener.local_addr().map_err(|err| ServeError::Listen {
        addr: config.listen,
        err,
    })?;
    tracing::info!("netmaster REST API on http://{addr}");
    if let Some(tx) = ready {
        let _ = tx.send(addr);
    }
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .map_err(|err| ServeError::Listen { addr, err })
}
