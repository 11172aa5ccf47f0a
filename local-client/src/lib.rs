//! weft-local: a client of netplugin's endpoint service (`weft.endpoint.v1`) over its unix
//! socket, for weft-cni, netctl and tests. Small on purpose: the contract from `weft-api`, tonic
//! and tokio, and nothing of netplugin itself.

use std::path::{Path, PathBuf};
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};
use weft_api::proto::endpoint::endpoint_service_client::EndpointServiceClient;

/// The endpoint service's client, as `connect_unix` returns it.
pub type Client = EndpointServiceClient<Channel>;

/// Connects to the endpoint service listening on the unix socket at `path`.
pub async fn connect_unix(path: &Path) -> Result<Client, tonic::transport::Error> {
    connect(path, None).await
}

/// Connects to the endpoint service at `path`, giving up after `timeout` when one is given.
pub async fn connect(
    path: &Path,
    timeout: Option<Duration>,
) -> Result<Client, tonic::transport::Error> {
    let path: PathBuf = path.to_path_buf();
    // The URI is required by the API and unused: the connector dials the socket.
    let mut endpoint = Endpoint::from_static("http://localhost");
    if let Some(t) = timeout {
        endpoint = endpoint.connect_timeout(t);
    }
    let channel = endpoint
        .connect_with_connector(tower::service_fn(move |_: Uri| {
            let path = path.clone();
            async move {
                let s = tokio::net::UnixStream::connect(path).await?;
                Ok::<_, std::io::Error>(TokioIo::new(s))
            }
        }))
        .await?;
    Ok(EndpointServiceClient::new(channel))
}
