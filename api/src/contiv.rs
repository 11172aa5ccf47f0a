//! Contiv's original intent files (`netdcli -cfg`), read as they are: `Hosts[]`, `Tenants[]` with
//! `Networks[]` and their `Endpoints[]`. [`ContivIntent::convert`] turns one into a Weft [`Spec`],
//! the hosts, and where each container goes.
//!
//! A network without `SubnetCIDR` gets the next free subnet of its tenant's `SubnetPool` of
//! length `AllocSubnetLen`, chosen here, deterministically (in file order, skipping subnets the
//! file gives explicitly), so the same file always yields the same addresses and the whole
//! result can be validated before anything is stored. A network with neither refers to a network
//! that must already exist: Contiv used such files to add endpoints to a running setup.

use std::net::Ipv4Addr;

use ipnet::Ipv4Net;
use serde::Deserialize;

use crate::model::*;
use crate::state::Spec;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContivIntent {
    #[serde(rename = "Hosts", default)]
    pub hosts: Vec<ContivHost>,
    #[serde(rename = "Tenants", default)]
    pub tenants: Vec<ContivTenant>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContivHost {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Intf", default)]
    pub intf: String,
    #[serde(rename = "VtepIp", default)]
    pub vtep_ip: Option<Ipv4Addr>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContivTenant {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "DefaultNetType", default)]
    pub default_net_type: Option<Encap>,
    #[serde(rename = "SubnetPool", default)]
    pub subnet_pool: Option<Ipv4Net>,
    #[serde(rename = "AllocSubnetLen", default)]
    pub alloc_subnet_len: Option<u8>,
    #[serde(rename = "Vlans", default)]
    pub vlans: Option<IdRanges>,
    #[serde(rename = "Vxlans", default)]
    pub vxlans: Option<IdRanges>,
    #[serde(rename = "Networks", default)]
    pub networks: Vec<ContivNetwork>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContivNetwork {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "PktTagType", default)]
    pub pkt_tag_type: Option<Encap>,
    #[serde(rename = "PktTag", default)]
    pub pkt_tag: Option<u32>,
    #[serde(rename = "SubnetCIDR", default)]
    pub subnet_cidr: Option<Subnet>,
    #[serde(rename = "Gateway", default)]
    pub gateway: Option<Ipv4Addr>,
    #[serde(rename = "Endpoints", default)]
    pub endpoints: Vec<ContivEndpoint>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContivEndpoint {
    #[serde(rename = "Container")]
    pub container: String,
    #[serde(rename = "Host")]
    pub host: String,
}

/// A container to start on a host, attached to a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub container: String,
    pub host: String,
    pub tenant: String,
    pub network: String,
}

/// What a Contiv file means in Weft's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    /// Tenants and networks to create or update (never to prune by: Contiv files are additive).
    pub spec: Spec,
    pub hosts: Vec<ContivHost>,
    pub placements: Vec<Placement>,
    /// Networks (`tenant:network`) the file uses without defining: they must already exist.
    pub existing_networks: Vec<String>,
}

impl PartialEq for ContivHost {
    fn eq(&self, o: &Self) -> bool {
        self.name == o.name && self.intf == o.intf && self.vtep_ip == o.vtep_ip
    }
}
impl Eq for ContivHost {}

impl ContivIntent {
    pub fn from_json(text: &str) -> Result<ContivIntent, String> {
        serde_json::from_str(text).map_err(|e| format!("Contiv intent file: {e}"))
    }

    /// Whether a JSON document looks like a Contiv intent file (top-level `Tenants` or `Hosts`)
    /// rather than a Weft spec.
    pub fn looks_like(v: &serde_json::Value) -> bool {
        v.get("Tenants").is_some() || v.get("Hosts").is_some()
    }

    pub fn convert(&self) -> Result<Converted, String> {
        let mut spec = Spec::default();
        let mut global = Global::default();
        let mut vlans: Vec<(u32, u32)> = Vec::new();
        let mut vxlans: Vec<(u32, u32)> = Vec::new();
        let mut placements = Vec::new();
        let mut existing = Vec::new();
        for t in &self.tenants {
            spec.tenants.push(Tenant {
                tenant_name: t.name.clone(),
                default_network: None,
            });
            if let Some(v) = &t.vlans {
                vlans.extend(&v.0);
            }
            if let Some(v) = &t.vxlans {
                vxlans.extend(&v.0);
            }
            let explicit: Vec<Ipv4Net> = t
                .networks
                .iter()
                .filter_map(|n| n.subnet_cidr.map(|s| s.net))
                .collect();
            let mut pool = match (t.subnet_pool, t.alloc_subnet_len) {
                (Some(p), Some(len)) => Some(
                    p.subnets(len)
                        .map_err(|_| {
                            format!(
                                "tenant \"{}\": AllocSubnetLen {len} does not fit SubnetPool {p}",
                                t.name
                            )
                        })?
                        .filter(move |s| {
                            !explicit
                                .iter()
                                .any(|e| e.contains(&s.network()) || s.contains(&e.network()))
                        }),
                ),
                _ => None,
            };
            for n in &t.networks {
                let subnet = match (n.subnet_cidr, pool.as_mut()) {
                    (Some(s), _) => Some(s),
                    (None, Some(p)) => Some(Subnet {
                        net: p.next().ok_or_else(|| {
                            format!(
                                "tenant \"{}\": SubnetPool has no subnet left for network \"{}\"",
                                t.name, n.name
                            )
                        })?,
                        range: None,
                    }),
                    (None, None) => None,
                };
                match subnet {
                    Some(subnet) => spec.networks.push(Network {
                        tenant_name: t.name.clone(),
                        network_name: n.name.clone(),
                        encap: n.pkt_tag_type.or(t.default_net_type).unwrap_or_default(),
                        pkt_tag: n.pkt_tag.map(PktTag::Tag).unwrap_or_default(),
                        // Contiv's netdcli took the first usable address as gateway when none
                        // was given.
                        gateway: Some(n.gateway.unwrap_or_else(|| subnet.usable().0)),
                        subnet,
                        ipv6_subnet: None,
                        ipv6_gateway: None,
                        nw_type: NwType::Data,
                        cfgd_tag: None,
                        host_access: false,
                        external: false,
                    }),
                    None => existing.push(format!("{}:{}", t.name, n.name)),
                }
                for ep in &n.endpoints {
                    placements.push(Placement {
                        container: ep.container.clone(),
                        host: ep.host.clone(),
                        tenant: t.name.clone(),
                        network: n.name.clone(),
                    });
                }
            }
        }
        if !vlans.is_empty() {
            global.vlans = IdRanges(vlans);
        }
        if !vxlans.is_empty() {
            global.vxlans = IdRanges(vxlans);
        }
        if !self.tenants.is_empty() {
            spec.global = Some(global);
        }
        Ok(Converted {
            spec,
            hosts: self.hosts.clone(),
            placements,
            existing_networks: existing,
        })
    }
}
