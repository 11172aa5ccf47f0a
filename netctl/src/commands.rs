//! Contiv's commands over the typed REST client, one function per command, and the endpoint
//! commands over netplugin's unix socket.

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use weft_api::model::*;

use crate::endpoint;
use crate::rest::scoped;
use crate::table::{self, json_of};
use crate::{Ctx, EndpointOp, GlobalOp, GroupOp, NameOp, NetOp, NetprofileOp, PolicyOp};

/// Only the objects of `tenant` when one is given.
fn of_tenant<T>(objs: Vec<T>, tenant: &Option<String>, tenant_of: impl Fn(&T) -> &str) -> Vec<T> {
    match tenant {
        Some(t) => objs.into_iter().filter(|o| tenant_of(o) == t).collect(),
        None => objs,
    }
}

/// The objects of a list with `fields` that the server leaves out when false shown as false.
fn with_false(v: Value, fields: &[&str]) -> Value {
    match v {
        Value::Array(a) => Value::Array(
            a.into_iter()
                .map(|mut o| {
                    if let Value::Object(m) = &mut o {
                        for f in fields {
                            m.entry(f.to_string()).or_insert(Value::Bool(false));
                        }
                    }
                    o
                })
                .collect(),
        ),
        v => v,
    }
}

/// A command-line value parsed into its typed form, the flag named when it is not one.
fn parsed<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    v.parse::<T>()
        .map_err(|e| anyhow::anyhow!("{flag} \"{v}\": {e}"))
}

/// A value given as the JSON string the REST API takes (enums named in lower case).
fn named<T: serde::de::DeserializeOwned>(flag: &str, v: &str) -> Result<T> {
    serde_json::from_value(json!(v)).map_err(|e| anyhow::anyhow!("{flag} \"{v}\": {e}"))
}

fn port_range(p: &Option<String>) -> Result<(u32, u32)> {
    let Some(p) = p else { return Ok((0, 0)) };
    let (a, b) = p.split_once('-').unwrap_or((p, ""));
    let a: u32 = a
        .parse()
        .with_context(|| format!("port \"{p}\" is not a number or a range a-b"))?;
    let b: u32 = if b.is_empty() {
        0
    } else {
        b.parse().with_context(|| format!("port range \"{p}\""))?
    };
    Ok((a, b))
}

pub async fn tenant(ctx: &Ctx, op: NameOp) -> Result<()> {
    match op {
        NameOp::Create { name } => {
            let t = Tenant {
                tenant_name: name,
                default_network: None,
            };
            ctx.api.put(&t).await?;
            ctx.done(format!("tenant {} created", t.key()));
        }
        NameOp::Rm { name } => {
            ctx.api.delete::<Tenant>(&name).await?;
            ctx.done(format!("tenant {name} removed"));
        }
        NameOp::Ls => table::print(
            ctx.json,
            &json_of(&ctx.api.list::<Tenant>().await?),
            &["Name"],
            &["tenantName"],
        ),
    }
    Ok(())
}

pub async fn net(ctx: &Ctx, op: NetOp) -> Result<()> {
    match op {
        NetOp::Create {
            name,
            encap,
            pkt_tag,
            subnet,
            gateway,
            subnet_v6,
            gateway_v6,
            nw_type,
            host_access,
            external,
        } => {
            let net = Network {
                tenant_name: ctx.tenant().to_string(),
                network_name: name,
                encap: parsed("--encap", &encap)?,
                pkt_tag: pkt_tag.map(PktTag::Tag).unwrap_or_default(),
                subnet: parsed("--subnet", &subnet)?,
                gateway: gateway.map(|g| parsed("--gateway", &g)).transpose()?,
                ipv6_subnet: subnet_v6.map(|s| parsed("--subnetv6", &s)).transpose()?,
                ipv6_gateway: gateway_v6.map(|g| parsed("--gatewayv6", &g)).transpose()?,
                nw_type: named("--nw-type", &nw_type)?,
                cfgd_tag: None,
                host_access,
                external,
            };
            let stored = ctx.api.put(&net).await?;
            if ctx.json {
                println!("{}", json_of(&stored));
            }
            let reach: String = [
                (stored.host_access, ", host access"),
                (stored.external, ", external"),
            ]
            .iter()
            .filter(|(on, _)| *on)
            .map(|(_, what)| *what)
            .collect();
            ctx.done(format!(
                "network {} created ({} {}{reach})",
                stored.key(),
                stored.encap,
                json_of(&stored.pkt_tag)
            ));
        }
        NetOp::Rm { name } => {
            let key = scoped(ctx.tenant(), &name);
            ctx.api.delete::<Network>(&key).await?;
            ctx.done(format!("network {key} removed"));
        }
        NetOp::Ls => {
            let nets = of_tenant(ctx.api.list::<Network>().await?, &ctx.tenant, |n| {
                &n.tenant_name
            });
            let nets = json_of(&nets);
            // --json prints what netmaster stored; the table shows both flags either way.
            let nets = if ctx.json {
                nets
            } else {
                with_false(nets, &["hostAccess", "external"])
            };
            table::print(
                ctx.json,
                &nets,
                &[
                    "Tenant",
                    "Network",
                    "Nw Type",
                    "Encap",
                    "Tag",
                    "Subnet",
                    "Gateway",
                    "Host Access",
                    "External",
                ],
                &[
                    "tenantName",
                    "networkName",
                    "nwType",
                    "encap",
                    "pktTag",
                    "subnet",
                    "gateway",
                    "hostAccess",
                    "external",
                ],
            )
        }
    }
    Ok(())
}

pub async fn group(ctx: &Ctx, op: GroupOp) -> Result<()> {
    match op {
        GroupOp::Create {
            network,
            name,
            policy,
            netprofile,
            ip_pool,
            default_deny,
            log,
        } => {
            let g = EndpointGroup {
                tenant_name: ctx.tenant().to_string(),
                group_name: name,
                network_name: network,
                policies: policy,
                net_profile: netprofile,
                ip_pool,
                default_deny,
                cfgd_tag: None,
                ext_contracts_grps: vec![],
                log,
            };
            ctx.api.put(&g).await?;
            ctx.done(format!("group {} created", g.key()));
        }
        GroupOp::Rm { name } => {
            let key = scoped(ctx.tenant(), &name);
            ctx.api.delete::<EndpointGroup>(&key).await?;
            ctx.done(format!("group {key} removed"));
        }
        GroupOp::Ls => table::print(
            ctx.json,
            &json_of(&of_tenant(
                ctx.api.list::<EndpointGroup>().await?,
                &ctx.tenant,
                |g| &g.tenant_name,
            )),
            &["Tenant", "Group", "Network", "Policies", "Netprofile"],
            &[
                "tenantName",
                "groupName",
                "networkName",
                "policies",
                "netProfile",
            ],
        ),
    }
    Ok(())
}

pub async fn policy(ctx: &Ctx, op: PolicyOp) -> Result<()> {
    let tenant = ctx.tenant();
    match op {
        PolicyOp::Create { name } => {
            let p = Policy {
                tenant_name: tenant.to_string(),
                policy_name: name,
            };
            ctx.api.put(&p).await?;
            ctx.done(format!("policy {} created", p.key()));
        }
        PolicyOp::Rm { name } => {
            let key = scoped(tenant, &name);
            ctx.api.delete::<Policy>(&key).await?;
            ctx.done(format!("policy {key} removed"));
        }
        PolicyOp::Ls => table::print(
            ctx.json,
            &json_of(&of_tenant(
                ctx.api.list::<Policy>().await?,
                &ctx.tenant,
                |p| &p.tenant_name,
            )),
            &["Tenant", "Policy"],
            &["tenantName", "policyName"],
        ),
        PolicyOp::RuleAdd {
            policy,
            rule_id,
            priority,
            direction,
            group,
            network,
            ip,
            protocol,
            port,
            action,
            log,
        } => {
            let (port, port_end) = port_range(&port)?;
            let direction: Direction = named("--direction", &direction)?;
            let (group, network, ip) = (
                group.unwrap_or_default(),
                network.unwrap_or_default(),
                ip.unwrap_or_default(),
            );
            let mut rule = Rule {
                tenant_name: tenant.to_string(),
                policy_name: policy,
                rule_id,
                priority,
                direction,
                from_endpoint_group: String::new(),
                from_network: String::new(),
                from_ip_address: String::new(),
                to_endpoint_group: String::new(),
                to_network: String::new(),
                to_ip_address: String::new(),
                protocol: parsed("--protocol", &protocol)?,
                port,
                port_end,
                action: named("--action", &action)?,
                log,
            };
            // The peer is where the traffic comes from (in) or goes to (out).
            match direction {
                Direction::In => {
                    (
                        rule.from_endpoint_group,
                        rule.from_network,
                        rule.from_ip_address,
                    ) = (group, network, ip)
                }
                Direction::Out => {
                    (rule.to_endpoint_group, rule.to_network, rule.to_ip_address) =
                        (group, network, ip)
                }
            }
            ctx.api.put(&rule).await?;
            ctx.done(format!(
                "rule {} added to policy {}",
                rule.rule_id,
                scoped(tenant, &rule.policy_name)
            ));
        }
        PolicyOp::RuleRm { policy, rule_id } => {
            let rule_key = crate::rest::rule_key(tenant, &policy, &rule_id);
            ctx.api.delete::<Rule>(&rule_key).await?;
            ctx.done(format!(
                "rule {rule_id} removed from policy {}",
                scoped(tenant, &policy)
            ));
        }
        PolicyOp::RuleLs { policy } => {
            let rules: Vec<Rule> = ctx
                .api
                .list::<Rule>()
                .await?
                .into_iter()
                .filter(|r| r.tenant_name == tenant && r.policy_name == policy)
                .collect();
            table::print(
                ctx.json,
                &json_of(&rules),
                &[
                    "Rule",
                    "Priority",
                    "Direction",
                    "From Group",
                    "To Group",
                    "From Net",
                    "To Net",
                    "From IP",
                    "To IP",
                    "Protocol",
                    "Port",
                    "Action",
                ],
                &[
                    "ruleId",
                    "priority",
                    "direction",
                    "fromEndpointGroup",
                    "toEndpointGroup",
                    "fromNetwork",
                    "toNetwork",
                    "fromIpAddress",
                    "toIpAddress",
                    "protocol",
                    "port",
                    "action",
                ],
            );
        }
        PolicyOp::Log(_) => unreachable!("netctl policy log is inspect::policy_log"),
    }
    Ok(())
}

pub async fn netprofile(ctx: &Ctx, op: NetprofileOp) -> Result<()> {
    match op {
        NetprofileOp::Create {
            name,
            bandwidth,
            burst,
            dscp,
        } => {
            let p = NetProfile {
                tenant_name: ctx.tenant().to_string(),
                profile_name: name,
                bandwidth,
                burst,
                dscp,
            };
            ctx.api.put(&p).await?;
            ctx.done(format!("netprofile {} created", p.key()));
        }
        NetprofileOp::Rm { name } => {
            let key = scoped(ctx.tenant(), &name);
            ctx.api.delete::<NetProfile>(&key).await?;
            ctx.done(format!("netprofile {key} removed"));
        }
        NetprofileOp::Ls => table::print(
            ctx.json,
            &json_of(&ctx.api.list::<NetProfile>().await?),
            &["Tenant", "Name", "Bandwidth", "Burst", "DSCP"],
            &["tenantName", "profileName", "bandwidth", "burst", "DSCP"],
        ),
    }
    Ok(())
}

pub async fn global(ctx: &Ctx, op: GlobalOp) -> Result<()> {
    let name = Global::default().key();
    match op {
        GlobalOp::Get => {
            let g = ctx.api.get::<Global>(&name).await?;
            table::print(
                ctx.json,
                &json_of(&[g]),
                &[
                    "VLANs",
                    "VXLANs",
                    "Fwd Mode",
                    "ARP Mode",
                    "Private Subnet",
                    "Service CIDRs",
                ],
                &[
                    "vlans",
                    "vxlans",
                    "fwdMode",
                    "arpMode",
                    "pvtSubnet",
                    "serviceCidrs",
                ],
            );
        }
        GlobalOp::Set {
            vlans,
            vxlans,
            fwd_mode,
            arp_mode,
            private_subnet,
            service_cidrs,
            no_service_cidrs,
        } => {
            let mut g = ctx.api.get::<Global>(&name).await?;
            if let Some(v) = vlans {
                g.vlans = parsed("--vlan-range", &v)?;
            }
            if let Some(v) = vxlans {
                g.vxlans = parsed("--vxlan-range", &v)?;
            }
            if let Some(v) = fwd_mode {
                g.fwd_mode = v;
            }
            if let Some(v) = arp_mode {
                g.arp_mode = v;
            }
            if let Some(v) = private_subnet {
                g.pvt_subnet = parsed("--private-subnet", &v)?;
            }
            if !service_cidrs.is_empty() || no_service_cidrs {
                g.service_cidrs = service_cidrs
                    .iter()
                    .map(|c| {
                        c.parse().map_err(|_| {
                            anyhow::anyhow!(
                                "--service-cidr \"{c}\" is not an IPv4 CIDR (like 10.96.0.0/12)"
                            )
                        })
                    })
                    .collect::<Result<_>>()?;
            }
            ctx.api.put(&g).await?;
            ctx.done("global settings updated".into());
        }
    }
    Ok(())
}

pub async fn node_ls(ctx: &Ctx) -> Result<()> {
    table::print(
        ctx.json,
        &ctx.api.records("nodes").await?,
        &["Node", "VTEP", "Uplink"],
        &["name", "vtepIp", "uplink"],
    );
    Ok(())
}

pub async fn apply(ctx: &Ctx, file: &str, prune: bool) -> Result<()> {
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {file}"))?;
    let body: Value = serde_json::from_str(&text).with_context(|| format!("{file} is not JSON"))?;
    let kind = if weft_api::contiv::ContivIntent::looks_like(&body) {
        "Contiv intent file"
    } else {
        "Weft spec"
    };
    let r = ctx.api.apply(&body, prune).await?;
    if ctx.json {
        table::print_json(&json_of(&r));
    } else {
        println!("applied {file} ({kind}): {} change(s)", r.changes.len());
        for c in &r.changes {
            println!("  {c}");
        }
        for p in &r.placements {
            println!("  place {p}");
        }
    }
    Ok(())
}

pub async fn endpoint(ctx: &Ctx, op: EndpointOp) -> Result<()> {
    let j = ctx.json;
    if let EndpointOp::Ls = op {
        table::print(
            j,
            &ctx.api.records("endpoints").await?,
            &[
                "Endpoint",
                "Container",
                "Host",
                "Tenant",
                "Network",
                "Group",
                "IPv4",
                "MAC",
            ],
            &[
                "endpointId",
                "container",
                "host",
                "tenantName",
                "networkName",
                "groupName",
                "ipv4",
                "mac",
            ],
        );
        return Ok(());
    }
    let mut c = endpoint::client(&ctx.agent_socket).await?;
    match op {
        EndpointOp::Ls => unreachable!("handled above"),
        EndpointOp::Attach(a) => {
            let req = endpoint::attach_request(*a, ctx.tenant.clone())?;
            let r = c.attach(req).await.map_err(endpoint::status)?.into_inner();
            let i = r.interface.unwrap_or_default();
            if j {
                table::print_json(&endpoint::interface_json(&i));
            } else {
                println!(
                    "attached {} {} in {}: {} {} (port {}, host side {})",
                    i.container_id,
                    i.interface_name,
                    i.netns,
                    i.ipv4,
                    i.mac,
                    i.ofport,
                    i.host_interface
                );
            }
        }
        EndpointOp::Detach { container, ifname } => {
            let r = c
                .detach(weft_api::proto::endpoint::DetachRequest {
                    container_id: container.clone(),
                    interface_name: ifname.unwrap_or_default(),
                })
                .await
                .map_err(endpoint::status)?
                .into_inner();
            if j {
                println!("{}", json!({"removed": r.removed}));
            } else if r.removed.is_empty() {
                println!("nothing attached for {container}");
            } else {
                println!("detached {}", r.removed.join(", "));
            }
        }
        EndpointOp::Local { container } => {
            let r = c
                .list(weft_api::proto::endpoint::ListRequest {
                    container_id: container.unwrap_or_default(),
                })
                .await
                .map_err(endpoint::status)?
                .into_inner();
            let v = Value::Array(r.interfaces.iter().map(endpoint::interface_json).collect());
            table::print(
                j,
                &v,
                &[
                    "Container",
                    "Interface",
                    "Tenant",
                    "Network",
                    "IPv4",
                    "MAC",
                    "Port",
                    "Host side",
                ],
                &[
                    "container",
                    "interface",
                    "tenant",
                    "network",
                    "ipv4",
                    "mac",
                    "ofport",
                    "hostInterface",
                ],
            );
        }
        EndpointOp::Check { container, ifname } => {
            let r = c
                .check(weft_api::proto::endpoint::CheckRequest {
                    container_id: container.clone(),
                    interface_name: ifname.unwrap_or_default(),
                })
                .await
                .map_err(endpoint::status)?
                .into_inner();
            if j {
                println!("{}", json!({"ok": r.ok, "problems": r.problems}));
            } else if r.ok {
                println!("{container}: ok");
            }
            if !r.ok {
                bail!("{container}: {}", r.problems.join("; "));
            }
        }
    }
    Ok(())
}
