//! What operators see inside: the JSON shapes of netplugin's inspect API (served on
//! `--inspect-listen`, reached by netmaster only) and of netmaster's routes that gather them
//! (`/api/v1/hosts/{host}/flows`, `/api/v1/trace`, `/api/v1/verdicts`), which netctl and the web
//! view read.
//!
//! netplugin answers for its own switch; netmaster stitches hosts together: a trace leaving one
//! host by tunnel continues on the host whose VTEP address it was sent to.
//!
//! | route (netplugin)          | method | body            | answer            |
//! |----------------------------|--------|-----------------|-------------------|
//! | `/inspect/flows?FILTER`    | GET    |                 | `Vec<FlowView>`   |
//! | `/inspect/trace`           | POST   | `HostTraceRequest` | `HostTrace`    |
//! | `/inspect/verdicts?since=N`| GET    |                 | `Vec<VerdictRecord>` |
//! | `/inspect/live/arm`        | POST   | `LiveArm`       | `{}`              |
//! | `/inspect/live/{tag}`      | DELETE |                 | `LiveHop`         |
//!
//! | route (netmaster)                | method | body / query     | answer           |
//! |----------------------------------|--------|------------------|------------------|
//! | `/api/v1/hosts/{host}/flows`     | GET    | `FlowFilter`     | `Vec<FlowView>`  |
//! | `/api/v1/trace`                  | POST   | `TraceRequest`   | `TraceReport`    |
//! | `/api/v1/verdicts?since=N`       | GET    |                  | `Vec<VerdictRecord>` (all hosts, oldest first) |

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr};

/// Filters for a flow listing; all given filters must hold. Used as a query string.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FlowFilter {
    /// An endpoint id: flows that match its port, MAC or addresses, or whose owner is it.
    pub endpoint: Option<String>,
    /// `tenant/network` (or a network name alone): flows owned by it or by its endpoints.
    pub network: Option<String>,
    /// A policy name (`tenant/policy` or the name alone): flows owned by its rules.
    pub policy: Option<String>,
    /// A table, by number or by name.
    pub table: Option<String>,
}

/// One flow as it is on the switch now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FlowView {
    pub table: u8,
    pub table_name: String,
    pub priority: u16,
    pub cookie: u64,
    /// The intent object behind the cookie (`rule red/web-policy/1`, `endpoint abc`, ...), if known.
    pub owner: Option<String>,
    /// ovs-ofctl's syntax.
    pub matches: String,
    pub actions: String,
    pub packets: u64,
    pub bytes: u64,
}

/// The protocol of a traced packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TraceProto {
    Icmp,
    Tcp,
    Udp,
}

/// `netctl trace SRC DST`: what netmaster is asked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceRequest {
    /// An endpoint id, or `tenant/container` naming a container's endpoint.
    pub src: String,
    /// An endpoint (as `src`) or an address.
    pub dst: String,
    pub proto: TraceProto,
    /// For tcp and udp.
    #[serde(default)]
    pub dport: Option<u16>,
    /// Inject a real packet instead of simulating.
    #[serde(default)]
    pub live: bool,
}

/// The packet one host is asked to trace, as it enters that host's switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostTraceRequest {
    pub ingress: Ingress,
    pub src_mac: String,
    pub dst_mac: String,
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    pub proto: TraceProto,
    #[serde(default)]
    pub sport: Option<u16>,
    #[serde(default)]
    pub dport: Option<u16>,
    #[serde(default = "default_ttl")]
    pub ttl: u8,
    /// Inject a real packet (from a local endpoint) besides simulating.
    #[serde(default)]
    pub live: bool,
    /// Live traces only: the DSCP tag (1–63) the injected packet carries, chosen by netmaster
    /// when it armed the hosts on the way (`/inspect/live/arm`); None: netplugin picks one and
    /// arms itself alone.
    #[serde(default)]
    pub tag: Option<u8>,
}

/// `POST /inspect/live/arm`: install a live trace's observation flows for the probe alone (its
/// tag, addresses, protocol and ports) on a host it will cross.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveArm {
    pub tag: u8,
    pub src_ip: IpAddr,
    pub dst_ip: IpAddr,
    pub proto: TraceProto,
    #[serde(default)]
    pub sport: Option<u16>,
    #[serde(default)]
    pub dport: Option<u16>,
}

/// `DELETE /inspect/live/{tag}`: what the observation flows saw of the probe on one host (after
/// waiting a little for it), the flows removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiveHop {
    pub host: String,
    /// Whether any observation flow saw the probe here.
    pub observed: bool,
    /// What the switch did with it: out of a port, into the tunnel (copied to netplugin and sent
    /// on), or dropped (`by` the flow that would have dropped it); nothing when not observed.
    #[serde(default)]
    pub outcomes: Vec<Outcome>,
}

fn default_ttl() -> u8 {
    64
}

/// Where a traced packet enters a host's switch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Ingress {
    /// From a local endpoint's port.
    Endpoint { endpoint: String },
    /// From the tunnel, sent by `from_vtep` with this VNI.
    #[serde(rename_all = "camelCase")]
    Tunnel { tun_id: u64, from_vtep: Ipv4Addr },
    /// From the uplink, with this VLAN tag.
    Uplink { vlan: Option<u16> },
}

/// One table's decision in a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceStep {
    pub table: u8,
    pub table_name: String,
    pub priority: u16,
    pub cookie: u64,
    pub owner: Option<String>,
    /// The flow that matched, in ovs-ofctl's syntax.
    pub flow: String,
    /// What the step did, in words (`conntrack: new`, `group 3 bucket 1`, ...).
    #[serde(default)]
    pub notes: Vec<String>,
}

/// How a packet left a host's switch (or did not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", tag = "kind")]
pub enum Outcome {
    /// Out of a local endpoint's port.
    Delivered { endpoint: String },
    /// Into the tunnel towards another host.
    #[serde(rename_all = "camelCase")]
    Tunnel { tun_id: u64, remote_vtep: Ipv4Addr },
    /// Out of the uplink (VLAN networks, or egress).
    Uplink { vlan: Option<u16> },
    /// To the host itself (host access).
    Host,
    /// Dropped; `by` names the rule, the default-deny group, the spoof guard or the table.
    Dropped { by: String },
    /// Sent to netplugin (ARP answered, verdict logged).
    Controller { reason: String },
}

/// One host's part of a trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HostTrace {
    pub host: String,
    pub steps: Vec<TraceStep>,
    /// A flood or a group can send copies to several places.
    pub outcomes: Vec<Outcome>,
    /// Live traces: whether the observation flows saw the tagged packet here.
    #[serde(default)]
    pub observed: bool,
}

/// The whole trace, every host the packet crossed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TraceReport {
    pub request: TraceRequest,
    pub hops: Vec<HostTrace>,
    /// `delivered` or `dropped`.
    pub verdict: String,
    /// The rule, default, or guard that decided (`rule red/web-policy/1 allow`, `default deny of
    /// group red/db`, `spoof guard`, ...).
    pub decided_by: String,
}

/// What a logged policy decided about the first packet of a connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VerdictRecord {
    /// netplugin's sequence number, for `?since=`.
    pub seq: u64,
    /// Unix time in milliseconds.
    pub time_ms: u64,
    pub host: String,
    pub tenant: String,
    pub policy: String,
    /// The rule id, or empty for a group's default.
    pub rule: String,
    /// `allow` or `deny`.
    pub verdict: String,
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub dport: Option<u16>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_and_ingress_are_tagged() {
        let o = Outcome::Tunnel {
            tun_id: 5,
            remote_vtep: "10.0.0.2".parse().unwrap(),
        };
        let j = serde_json::to_string(&o).unwrap();
        assert_eq!(j, r#"{"kind":"tunnel","tunId":5,"remoteVtep":"10.0.0.2"}"#);
        let i: Ingress = serde_json::from_str(r#"{"kind":"endpoint","endpoint":"e1"}"#).unwrap();
        assert_eq!(
            i,
            Ingress::Endpoint {
                endpoint: "e1".into()
            }
        );
    }
}
