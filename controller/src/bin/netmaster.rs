//! netmaster: keeps Weft's intent and serves it. Thin: flags, logging, then `server::run`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;
use tokio_util::sync::CancellationToken;
use weft_controller::server::{run, Config};

#[derive(Parser)]
#[command(version, about = "Weft's netmaster: intent store and REST API")]
struct Args {
    /// Directory of the embedded store (used when no --etcd is given).
    #[arg(long, default_value = "/var/lib/weft")]
    data_dir: PathBuf,
    /// etcd endpoints, comma separated (http://host:port,...).
    #[arg(long, value_delimiter = ',', env = "WEFT_ETCD")]
    etcd: Vec<String>,
    /// REST API address.
    #[arg(long, default_value = "127.0.0.1:9999")]
    listen: SocketAddr,
    /// gRPC address for netplugin agents.
    #[arg(long, default_value = "127.0.0.1:9998")]
    grpc_listen: SocketAddr,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let shutdown = CancellationToken::new();
    let s = shutdown.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        s.cancel();
    });
    run(
        Config {
            data_dir: args.data_dir,
            etcd: args.etcd,
            listen: args.listen,
            grpc_listen: args.grpc_listen,
        },
        shutdown,
        None,
    )
    .await?;
    Ok(())
}
