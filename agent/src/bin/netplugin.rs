//! netplugin: Weft's agent for one host.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use weft_agent::{Agent, Config};

/// Makes this host's Open vSwitch and kernel do what netmaster says, and serves the endpoint
/// service that the CNI plugin, the Docker driver and `netctl endpoint` use.
#[derive(Parser, Debug)]
#[command(version)]
struct Args {
    /// This host's name (default: the kernel's hostname).
    #[arg(long, env = "WEFT_HOST")]
    host: Option<String>,
    /// netmaster's gRPC address.
    #[arg(long, env = "WEFT_NETMASTER", default_value = "http://127.0.0.1:9998")]
    netmaster: String,
    /// OVSDB remote (unix:PATH or tcp:HOST:PORT).
    #[arg(long, default_value = "unix:/var/run/openvswitch/db.sock")]
    ovsdb: String,
    /// Directory where ovs-vswitchd puts BRIDGE.mgmt.
    #[arg(long, default_value = "/var/run/openvswitch")]
    ovs_rundir: PathBuf,
    /// The integration bridge.
    #[arg(long, default_value = "br-int")]
    bridge: String,
    /// Datapath of the bridge: system (kernel module) or netdev (userspace).
    #[arg(long, default_value = "system", value_parser = ["system", "netdev"])]
    datapath: String,
    /// Interface to the physical network, added to the bridge as a VLAN trunk.
    #[arg(long)]
    uplink: Option<String>,
    /// This host's underlay address for VXLAN.
    #[arg(long, default_value = "127.0.0.1")]
    vtep_ip: Ipv4Addr,
    /// The endpoint service's unix socket.
    #[arg(long, default_value = "/run/weft/netplugin.sock")]
    socket: PathBuf,
    /// Also serve the endpoint service on this TCP address.
    #[arg(long)]
    listen_tcp: Option<SocketAddr>,
    /// Lease of this host's registration, in seconds.
    #[arg(long, default_value_t = 10)]
    lease_ttl: u32,
    /// Seconds between full reads of the switch that repair drift (flows, groups or meters
    /// changed behind netplugin's back).
    #[arg(long, default_value_t = 30)]
    resync_interval: u64,
    /// Serve Docker's network and IPAM driver APIs on this socket; its file name is the
    /// driver's name (`/run/docker/plugins/weft.sock`: `docker network create -d weft`).
    #[arg(long)]
    docker_plugin: Option<PathBuf>,
    /// Serve Prometheus metrics at http://ADDR/metrics ("off": not at all).
    #[arg(long, default_value = "127.0.0.1:9102")]
    metrics_listen: String,
    /// Serve the inspect API (flows, traces, the verdict log) for netmaster on ADDR:PORT
    /// (default: the VTEP address, port 9103; "off": not at all).
    #[arg(long)]
    inspect_listen: Option<String>,
    /// Where the Docker driver keeps which Docker network is which Weft network.
    #[arg(long, default_value = "/var/lib/weft/docker-networks.json")]
    docker_state: PathBuf,
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "localhost".into())
}

fn main() -> anyhow::Result<()> {
    // Before the runtime's threads exist: their allocations share one arena (see the function).
    weft_agent::offload::limit_malloc_arenas(1);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(run())
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let a = Args::parse();
    let inspect_listen = match a.inspect_listen.as_deref() {
        Some("off") => None,
        Some(addr) => Some(
            addr.parse::<SocketAddr>()
                .map_err(|e| anyhow::anyhow!("--inspect-listen {addr}: {e}"))?,
        ),
        None => Some(SocketAddr::from((a.vtep_ip, weft_agent::inspect::PORT))),
    };
    let cfg = Config {
        host: a.host.unwrap_or_else(hostname),
        netmaster: a.netmaster,
        ovsdb: a.ovsdb,
        ovs_rundir: a.ovs_rundir,
        bridge: a.bridge,
        datapath: a.datapath,
        uplink: a.uplink,
        vtep_ip: a.vtep_ip,
        socket: a.socket,
        listen_tcp: a.listen_tcp,
        lease_ttl: a.lease_ttl,
        confirm_timeout: Duration::from_secs(10),
        resync_interval: Duration::from_secs(a.resync_interval.max(1)),
        inspect_listen,
    };
    let agent = Agent::start(cfg).await?;
    let cancel = tokio_util::sync::CancellationToken::new();
    if let Some(sock) = &a.docker_plugin {
        weft_agent::docker::serve(&agent, sock, &a.docker_state, cancel.clone())
            .await
            .map_err(anyhow::Error::msg)?;
    }
    if a.metrics_listen != "off" {
        let addr: SocketAddr = a
            .metrics_listen
            .parse()
            .map_err(|e| anyhow::anyhow!("--metrics-listen {}: {e}", a.metrics_listen))?;
        agent.metrics().serve(addr, cancel.clone()).await?;
    }
    tracing::info!("netplugin running");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("stopping; the switch keeps its flows");
    cancel.cancel();
    drop(agent);
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(())
}
