//! An attach request, checked once and typed: what the domain part works from.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use weft_api::proto::endpoint as pb;

use super::AttachError;
use crate::local::Route;

/// Where the interface joins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attachment {
    /// A tenant's network at netmaster (and optionally an endpoint group).
    Network {
        tenant: String,
        network: String,
        group: String,
    },
    /// A bare OVS bridge with an optional VLAN tag (0: none); no netmaster, no flows.
    Bridge { bridge: String, vlan: u16 },
}

/// Where the container end goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placement {
    /// Into this network namespace, named, addressed and routed.
    Netns(PathBuf),
    /// Left in the host's namespace for the runtime to move (Docker).
    HostNamespace,
}

/// The IPv4 address asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ipv4Request {
    /// netmaster chooses (on a bare bridge: none).
    Allocate,
    /// This address; the prefix length when given, else the network's.
    Address(Ipv4Addr, Option<u8>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct AttachSpec {
    pub endpoint_id: String,
    pub container_id: String,
    pub interface_name: String,
    pub placement: Placement,
    pub attachment: Attachment,
    pub ipv4: Ipv4Request,
    pub mac: Option<[u8; 6]>,
    pub ipv6: Vec<Ipv6Net>,
    /// None: 1450 on VXLAN networks, 1500 otherwise.
    pub mtu: Option<u32>,
    pub routes: Vec<Route>,
    /// A default route via the network's gateway.
    pub default_route: bool,
    /// Pod name, namespace and UID among them (`pod_name`, `pod_namespace`, `pod_uid`).
    pub labels: BTreeMap<String, String>,
}

fn invalid(m: impl Into<String>) -> AttachError {
    AttachError::Invalid(m.into())
}

/// An interface name the kernel takes.
pub fn check_ifname(name: &str) -> Result<(), AttachError> {
    if name.is_empty()
        || name.len() > 15
        || name.contains(['/', ' ', ':'])
        || name == "."
        || name == ".."
    {
        return Err(invalid(format!(
            "interface_name \"{name}\": must be 1 to 15 characters without '/', ':' or spaces"
        )));
    }
    Ok(())
}

/// The endpoint id of a container's interface.
pub fn endpoint_id(container_id: &str, interface_name: &str) -> String {
    format!("{container_id}-{interface_name}")
}

impl TryFrom<pb::AttachRequest> for AttachSpec {
    type Error = AttachError;

    fn try_from(r: pb::AttachRequest) -> Result<AttachSpec, AttachError> {
        if r.container_id.is_empty() || r.container_id.contains('/') {
            return Err(invalid("container_id must be non-empty and contain no '/'"));
        }
        check_ifname(&r.interface_name)?;
        let placement = if r.leave_in_host_namespace {
            if !r.netns.is_empty() {
                return Err(invalid(
                    "leave_in_host_namespace and netns exclude each other",
                ));
            }
            Placement::HostNamespace
        } else if r.netns.is_empty() {
            return Err(invalid(
                "netns is required (give /var/run/netns/NAME or /proc/PID/ns/net)",
            ));
        } else {
            Placement::Netns(PathBuf::from(&r.netns))
        };
        let bare = !r.bridge.is_empty();
        let names_network = !r.tenant.is_empty() || !r.network.is_empty();
        if bare == names_network {
            return Err(invalid(
                "give either tenant and network, or a bridge (with an optional vlan), not both",
            ));
        }
        if r.vlan > 4094 {
            return Err(invalid(format!("vlan {} is not in 0..=4094", r.vlan)));
        }
        let attachment = if bare {
            Attachment::Bridge {
                bridge: r.bridge,
                vlan: r.vlan as u16,
            }
        } else {
            if r.tenant.is_empty() || r.network.is_empty() {
                return Err(invalid("tenant and network are both required"));
            }
            Attachment::Network {
                tenant: r.tenant,
                network: r.network,
                group: r.group,
            }
        };
        let routes = r
            .routes
            .iter()
            .enumerate()
            .map(|(i, rt)| {
                let dst: IpNet = rt.dst.parse().map_err(|_| {
                    invalid(format!("routes[{i}].dst \"{}\" is not a CIDR", rt.dst))
                })?;
                let gateway = if rt.gateway.is_empty() {
                    None
                } else {
                    let g: IpAddr = rt.gateway.parse().map_err(|_| {
                        invalid(format!(
                            "routes[{i}].gateway \"{}\" is not an address",
                            rt.gateway
                        ))
                    })?;
                    if g.is_ipv4() != dst.addr().is_ipv4() {
                        return Err(invalid(format!(
                            "routes[{i}]: gateway {g} and destination {dst} are not the same IP version"
                        )));
                    }
                    Some(g)
                };
                Ok(Route { dst, gateway })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ipv6 = r
            .ipv6
            .iter()
            .map(|a| {
                a.parse::<Ipv6Net>()
                    .map_err(|_| invalid(format!("ipv6 \"{a}\" is not an IPv6 CIDR (fd00::2/64)")))
            })
            .collect::<Result<_, _>>()?;
        let ipv4 = match r.ipv4.as_str() {
            "" | "allocate" => Ipv4Request::Allocate,
            s => {
                if let Ok(n) = s.parse::<Ipv4Net>() {
                    Ipv4Request::Address(n.addr(), Some(n.prefix_len()))
                } else {
                    let a = s.parse::<Ipv4Addr>().map_err(|_| {
                        invalid(format!(
                            "ipv4 \"{s}\" is neither \"allocate\", an address nor a CIDR"
                        ))
                    })?;
                    Ipv4Request::Address(a, None)
                }
            }
        };
        let mac =
            if r.mac.is_empty() {
                None
            } else {
                Some(weft_policy::parse_mac(&r.mac).ok_or_else(|| {
                    invalid(format!("mac \"{}\" is not aa:bb:cc:dd:ee:ff", r.mac))
                })?)
            };
        if r.endpoint_id.contains('/') {
            return Err(invalid("endpoint_id must contain no '/'"));
        }
        let endpoint_id = if r.endpoint_id.is_empty() {
            endpoint_id(&r.container_id, &r.interface_name)
        } else {
            r.endpoint_id
        };
        let mut labels: BTreeMap<String, String> = r.labels.into_iter().collect();
        for (k, v) in [
            ("pod_name", r.pod_name),
            ("pod_namespace", r.pod_namespace),
            ("pod_uid", r.pod_uid),
        ] {
            if !v.is_empty() {
                labels.insert(k.to_string(), v);
            }
        }
        Ok(AttachSpec {
            endpoint_id,
            container_id: r.container_id,
            interface_name: r.interface_name,
            placement,
            attachment,
            ipv4,
            mac,
            ipv6,
            mtu: (r.mtu > 0).then_some(r.mtu),
            routes,
            default_route: !r.no_default_route,
            labels,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> pb::AttachRequest {
        pb::AttachRequest {
            container_id: "c1".into(),
            netns: "/var/run/netns/c1".into(),
            interface_name: "eth0".into(),
            tenant: "blue".into(),
            network: "web".into(),
            ..Default::default()
        }
    }

    fn err(r: pb::AttachRequest) -> String {
        AttachSpec::try_from(r).unwrap_err().to_string()
    }

    #[test]
    fn a_plain_request() {
        let s = AttachSpec::try_from(base()).unwrap();
        assert_eq!(s.endpoint_id, "c1-eth0");
        assert_eq!(s.placement, Placement::Netns("/var/run/netns/c1".into()));
        assert_eq!(s.ipv4, Ipv4Request::Allocate);
        assert!(s.default_route);
        assert!(matches!(s.attachment, Attachment::Network { .. }));
    }

    #[test]
    fn typed_values() {
        let s = AttachSpec::try_from(pb::AttachRequest {
            ipv4: "10.1.0.5/16".into(),
            mac: "02:00:00:00:00:09".into(),
            ipv6: vec!["fd00::5/64".into()],
            routes: vec![
                pb::Route {
                    dst: "10.9.0.0/16".into(),
                    gateway: "10.1.0.1".into(),
                },
                pb::Route {
                    dst: "fd01::/64".into(),
                    gateway: String::new(),
                },
            ],
            pod_name: "p".into(),
            mtu: 1400,
            no_default_route: true,
            ..base()
        })
        .unwrap();
        assert_eq!(
            s.ipv4,
            Ipv4Request::Address(Ipv4Addr::new(10, 1, 0, 5), Some(16))
        );
        assert_eq!(s.mac, Some([2, 0, 0, 0, 0, 9]));
        assert_eq!(s.routes.len(), 2);
        assert_eq!(s.routes[1].gateway, None);
        assert_eq!(s.labels["pod_name"], "p");
        assert_eq!((s.mtu, s.default_route), (Some(1400), false));
        let s = AttachSpec::try_from(pb::AttachRequest {
            tenant: String::new(),
            network: String::new(),
            bridge: "br0".into(),
            vlan: 7,
            ipv4: "10.0.0.2".into(),
            ..base()
        })
        .unwrap();
        assert_eq!(
            s.attachment,
            Attachment::Bridge {
                bridge: "br0".into(),
                vlan: 7
            }
        );
        assert_eq!(
            s.ipv4,
            Ipv4Request::Address(Ipv4Addr::new(10, 0, 0, 2), None)
        );
    }

    #[test]
    fn bad_requests_say_what() {
        for (r, want) in [
            (
                pb::AttachRequest {
                    container_id: "a/b".into(),
                    ..base()
                },
                "container_id",
            ),
            (
                pb::AttachRequest {
                    interface_name: "x".repeat(16),
                    ..base()
                },
                "interface_name",
            ),
            (
                pb::AttachRequest {
                    netns: String::new(),
                    ..base()
                },
                "netns is required",
            ),
            (
                pb::AttachRequest {
                    leave_in_host_namespace: true,
                    ..base()
                },
                "exclude each other",
            ),
            (
                pb::AttachRequest {
                    bridge: "br0".into(),
                    ..base()
                },
                "not both",
            ),
            (
                pb::AttachRequest {
                    network: String::new(),
                    ..base()
                },
                "both required",
            ),
            (
                pb::AttachRequest {
                    tenant: String::new(),
                    network: String::new(),
                    bridge: "b".into(),
                    vlan: 4095,
                    ..base()
                },
                "vlan 4095",
            ),
            (
                pb::AttachRequest {
                    ipv4: "10.0.0.300".into(),
                    ..base()
                },
                "ipv4 \"10.0.0.300\"",
            ),
            (
                pb::AttachRequest {
                    ipv6: vec!["10.0.0.1/8".into()],
                    ..base()
                },
                "ipv6 \"10.0.0.1/8\"",
            ),
            (
                pb::AttachRequest {
                    mac: "02:00".into(),
                    ..base()
                },
                "mac \"02:00\"",
            ),
            (
                pb::AttachRequest {
                    routes: vec![pb::Route {
                        dst: "x".into(),
                        gateway: String::new(),
                    }],
                    ..base()
                },
                "routes[0].dst",
            ),
            (
                pb::AttachRequest {
                    routes: vec![pb::Route {
                        dst: "10.0.0.0/8".into(),
                        gateway: "fd00::1".into(),
                    }],
                    ..base()
                },
                "same IP version",
            ),
            (
                pb::AttachRequest {
                    endpoint_id: "a/b".into(),
                    ..base()
                },
                "endpoint_id",
            ),
        ] {
            let e = err(r);
            assert!(e.contains(want), "{e} (wanted {want})");
        }
    }
}
