//! `netctl endpoint attach|detach|local|check`: the host's netplugin endpoint service, over its
//! unix socket (`--agent-socket`, `WEFT_AGENT_SOCKET`).

use std::path::Path;

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};
use weft_api::proto::endpoint as pb;

#[derive(Args)]
pub struct AttachArgs {
    /// The container's id (with the interface name, it names the endpoint).
    pub container: String,
    /// The container's network namespace: /var/run/netns/NAME or /proc/PID/ns/net.
    #[arg(long)]
    pub netns: String,
    /// Interface name inside the container.
    #[arg(long, default_value = "eth0")]
    pub ifname: String,
    #[arg(short = 'n', long)]
    pub network: Option<String>,
    #[arg(short = 'g', long)]
    pub group: Option<String>,
    /// A bare OVS bridge instead of a tenant's network.
    #[arg(long)]
    pub bridge: Option<String>,
    /// VLAN tag on the bare bridge.
    #[arg(long, default_value_t = 0)]
    pub vlan: u32,
    /// IPv4 address (A.B.C.D or A.B.C.D/LEN); default: netmaster allocates.
    #[arg(long)]
    pub ip: Option<String>,
    /// IPv6 CIDR, repeatable.
    #[arg(long)]
    pub ipv6: Vec<String>,
    #[arg(long)]
    pub mac: Option<String>,
    #[arg(long, default_value_t = 0)]
    pub mtu: u32,
    /// A route via a gateway, DST,GW; repeatable.
    #[arg(long = "route-gw")]
    pub route_gw: Vec<String>,
    /// A route straight out of the interface, DST; repeatable.
    #[arg(long = "route-intf")]
    pub route_intf: Vec<String>,
    /// Do not add the default route via the network's gateway.
    #[arg(long)]
    pub no_default_route: bool,
    #[arg(long)]
    pub pod_name: Option<String>,
    #[arg(long)]
    pub pod_namespace: Option<String>,
    #[arg(long)]
    pub pod_uid: Option<String>,
}

/// The request for `a`, on a network of `tenant` (netctl's `--tenant`).
pub fn attach_request(a: AttachArgs, tenant: Option<String>) -> Result<pb::AttachRequest> {
    let mut routes = vec![];
    for r in &a.route_gw {
        let Some((dst, gw)) = r.split_once(',') else {
            bail!("--route-gw {r:?}: expected DST,GW (e.g. 10.96.0.0/12,10.1.0.1)");
        };
        routes.push(pb::Route {
            dst: dst.into(),
            gateway: gw.into(),
        });
    }
    for r in &a.route_intf {
        routes.push(pb::Route {
            dst: r.clone(),
            gateway: String::new(),
        });
    }
    Ok(pb::AttachRequest {
        container_id: a.container,
        netns: a.netns,
        interface_name: a.ifname,
        tenant: tenant.unwrap_or_default(),
        network: a.network.unwrap_or_default(),
        group: a.group.unwrap_or_default(),
        bridge: a.bridge.unwrap_or_default(),
        vlan: a.vlan,
        ipv4: a.ip.unwrap_or_default(),
        ipv6: a.ipv6,
        mac: a.mac.unwrap_or_default(),
        mtu: a.mtu,
        routes,
        no_default_route: a.no_default_route,
        pod_name: a.pod_name.unwrap_or_default(),
        pod_namespace: a.pod_namespace.unwrap_or_default(),
        pod_uid: a.pod_uid.unwrap_or_default(),
        labels: Default::default(),
        ..Default::default()
    })
}

pub fn interface_json(i: &pb::Interface) -> Value {
    json!({
        "endpointId": i.endpoint_id, "container": i.container_id, "interface": i.interface_name,
        "hostInterface": i.host_interface, "netns": i.netns, "tenant": i.tenant,
        "network": i.network, "group": i.group, "bridge": i.bridge, "vlan": i.vlan,
        "mac": i.mac, "ipv4": i.ipv4, "gateway": i.gateway, "ipv6": i.ipv6, "mtu": i.mtu,
        "routes": i.routes.iter().map(|r| if r.gateway.is_empty() { r.dst.clone() } else { format!("{} via {}", r.dst, r.gateway) }).collect::<Vec<_>>(),
        "ofport": i.ofport, "podName": i.pod_name, "podNamespace": i.pod_namespace,
    })
}

pub async fn client(
    socket: &Path,
) -> Result<
    weft_api::proto::endpoint::endpoint_service_client::EndpointServiceClient<
        tonic::transport::Channel,
    >,
> {
    weft_local::connect_unix(socket)
        .await
        .with_context(|| format!("connecting to netplugin at {}", socket.display()))
}

/// A gRPC status as a message a person can act on.
pub fn status(s: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{} ({:?})", s.message(), s.code())
}
