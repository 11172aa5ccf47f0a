//! A client of the endpoint service over its unix socket, for the CNI plugin, netctl and tests.

use std::path::{Path, PathBuf};

use hyper_util::rt::TokioIo;
use tonic::transport::{Channel, Endpoint, Uri};
use weft_api::proto::endpoint::endpoint_service_client::EndpointServiceClient;

/// Connects to the endpoint service listening on the unix socket at `path`.
pub async fn connect_unix(
    path: &Path,
) -> Result<EndpointServiceClient<Channel>, tonic::transport::Error> {
    let path: PathBuf = path.to_path_buf();
    // The URI is required by the API and unused: the connector dials the socket.
    let channel = Endpoint::from_static("http://localhost")
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
