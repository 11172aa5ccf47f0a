//! The agent's use of OVSDB: the integration bridge, the uplink, and endpoint ports, whose
//! `external_ids` carry the agent's record of each endpoint.

use std::collections::BTreeMap;
use std::time::Duration;

use ovsdb::vswitch::{self, BridgeSpec, PortKind, PortSpec};
use tracing::warn;

use crate::agent::{Config, LocalPort, EXT_ENDPOINT, EXT_RECORD};

/// How long Open vSwitch may take to give a new port its number.
const OFPORT_WAIT: Duration = Duration::from_secs(10);

/// `br-int`: OpenFlow 1.3 only, `fail_mode=secure` (traffic keeps flowing on installed flows
/// while the agent is away; nothing is forwarded that the agent did not say).
pub async fn ensure_integration_bridge(
    db: &ovsdb::Client,
    cfg: &Config,
) -> Result<(), ovsdb::Error> {
    vswitch::ensure_bridge(
        db,
        &BridgeSpec {
            name: cfg.bridge.clone(),
            datapath_type: cfg.datapath.clone(),
            protocols: vec!["OpenFlow13".into()],
            fail_mode: Some("secure".into()),
            external_ids: BTreeMap::from([("weft".to_string(), "integration".to_string())]),
            other_config: BTreeMap::new(),
        },
    )
    .await
}

/// Adds the uplink to the bridge as a trunk; returns its OpenFlow port number.
pub async fn ensure_uplink(
    db: &ovsdb::Client,
    bridge: &str,
    uplink: &str,
) -> Result<u32, ovsdb::Error> {
    vswitch::ensure_port(
        db,
        &PortSpec {
            bridge: bridge.to_string(),
            name: uplink.to_string(),
            kind: PortKind::System,
            tag: None,
            trunks: vec![],
            external_ids: BTreeMap::from([("weft".to_string(), "uplink".to_string())]),
            ofport_request: None,
        },
    )
    .await?;
    vswitch::ofport(db, uplink, OFPORT_WAIT).await
}

/// The VXLAN port (`remote_ip=flow`, `key=flow`: flows choose the peer and the VNI); returns its
/// OpenFlow port number.
///
/// With the kernel datapath the port pins its source address (`local_ip`). With the userspace
/// datapath it does not: there OVS (3.1) builds the outer header itself, and when a tunnel has a
/// source address it insists on finding that address among the *local* routes it caches from
/// the kernel. It empties that cache and reads it again on every link change in the host (each
/// endpoint's veth coming or going is one), and a flow revalidated inside that window is
/// translated to `drop`: measured, 1 to 5 pings lost per 24 endpoint changes on the sender's host
/// with `local_ip`, 0 to 2 without. The source is then the one the host's routing picks for the
/// other VTEPs, which is the VTEP address in any setup the docs describe (it is the address on
/// the underlay bridge).
pub async fn ensure_tunnel(
    db: &ovsdb::Client,
    bridge: &str,
    vtep: std::net::Ipv4Addr,
    datapath: &str,
) -> Result<u32, ovsdb::Error> {
    vswitch::ensure_port(
        db,
        &PortSpec {
            bridge: bridge.to_string(),
            name: TUNNEL_PORT.to_string(),
            kind: PortKind::Vxlan {
                local_ip: (datapath != "netdev").then(|| vtep.to_string()),
                remote_ip: "flow".into(),
                key: "flow".into(),
                dst_port: None,
            },
            tag: None,
            trunks: vec![],
            external_ids: BTreeMap::from([("weft".to_string(), "tunnel".to_string())]),
            ofport_request: None,
        },
    )
    .await?;
    vswitch::ofport(db, TUNNEL_PORT, OFPORT_WAIT).await
}

/// The name of the VXLAN port on the integration bridge.
pub const TUNNEL_PORT: &str = "weft-vxlan";

/// The endpoints whose ports are on `bridge`, with their current port numbers.
pub async fn local_ports(
    db: &ovsdb::Client,
    bridge: &str,
) -> Result<BTreeMap<String, LocalPort>, ovsdb::Error> {
    let mut out = BTreeMap::new();
    for p in vswitch::ports(db, bridge).await? {
        let Some(id) = p.external_ids.get(EXT_ENDPOINT) else {
            continue;
        };
        let Some(record) = p.external_ids.get(EXT_RECORD) else {
            continue;
        };
        match serde_json::from_str::<LocalPort>(record) {
            Ok(mut lp) => {
                lp.ofport = p.ofport.unwrap_or(0);
                out.insert(id.clone(), lp);
            }
            Err(e) => {
                warn!(port = %p.name, error = %e, "unreadable endpoint record on a port; left alone")
            }
        }
    }
    Ok(out)
}

/// Adds an endpoint's host interface to its bridge with the agent's record; returns its
/// OpenFlow port number.
pub async fn add_endpoint_port(db: &ovsdb::Client, lp: &LocalPort) -> Result<u32, ovsdb::Error> {
    let record = serde_json::to_string(lp).expect("records serialize");
    vswitch::ensure_port(
        db,
        &PortSpec {
            bridge: lp.bridge.clone(),
            name: lp.host_interface.clone(),
            kind: PortKind::System,
            tag: (lp.vlan != 0).then_some(lp.vlan),
            trunks: vec![],
            external_ids: BTreeMap::from([
                (EXT_ENDPOINT.to_string(), lp.endpoint_id.clone()),
                (EXT_RECORD.to_string(), record),
            ]),
            ofport_request: None,
        },
    )
    .await?;
    vswitch::ofport(db, &lp.host_interface, OFPORT_WAIT).await
}

/// Removes a port; absent is fine.
pub async fn remove_port(
    db: &ovsdb::Client,
    bridge: &str,
    name: &str,
) -> Result<bool, ovsdb::Error> {
    vswitch::delete_port(db, bridge, name).await
}
