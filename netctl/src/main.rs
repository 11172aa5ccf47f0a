//! netctl: the command line for Weft, with Contiv's commands and flags. Talks to netmaster's
//! REST API (`--netmaster` or `NETMASTER`, default http://127.0.0.1:9999). Tables for people,
//! `--json` for scripts.

use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use serde_json::{json, Value};

mod endpoint;

#[derive(Parser)]
#[command(
    name = "netctl",
    version,
    about = "Drive Weft: tenants, networks, groups, policies, intent files"
)]
struct Cli {
    /// netmaster's REST address.
    #[arg(
        long,
        env = "NETMASTER",
        default_value = "http://127.0.0.1:9999",
        global = true
    )]
    netmaster: String,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// This host's netplugin endpoint service (for `endpoint attach|detach|local|check`).
    #[arg(
        long,
        env = "WEFT_AGENT_SOCKET",
        default_value = "/run/weft/netplugin.sock",
        global = true
    )]
    agent_socket: std::path::PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Tenants.
    Tenant {
        #[command(subcommand)]
        op: NameOp,
    },
    /// Networks.
    #[command(alias = "network")]
    Net {
        #[command(subcommand)]
        op: NetOp,
    },
    /// Endpoint groups.
    Group {
        #[command(subcommand)]
        op: GroupOp,
    },
    /// Policies and their rules.
    Policy {
        #[command(subcommand)]
        op: PolicyOp,
    },
    /// Network profiles (bandwidth, DSCP).
    Netprofile {
        #[command(subcommand)]
        op: NetprofileOp,
    },
    /// Global settings.
    Global {
        #[command(subcommand)]
        op: GlobalOp,
    },
    /// Endpoints: netmaster's records (ls), and this host's interfaces through netplugin.
    Endpoint {
        #[command(subcommand)]
        op: EndpointOp,
    },
    /// Nodes (operational state).
    Node {
        #[command(subcommand)]
        op: LsOnly,
    },
    /// Apply an intent file: Weft's spec format or a Contiv intent file, detected automatically.
    Apply {
        /// The file.
        #[arg(short = 'f', long = "file")]
        file: String,
        /// Delete what the spec no longer names (Weft specs only).
        #[arg(long)]
        prune: bool,
    },
}

#[derive(Subcommand)]
enum NameOp {
    Create {
        name: String,
    },
    #[command(alias = "delete")]
    Rm {
        name: String,
    },
    Ls,
}

#[derive(Subcommand)]
enum EndpointOp {
    /// Every endpoint netmaster knows.
    Ls,
    /// Give a container an interface on a network (through this host's netplugin).
    Attach(Box<endpoint::AttachArgs>),
    /// Remove a container's interface (all of them without --ifname).
    Detach {
        container: String,
        #[arg(long)]
        ifname: Option<String>,
    },
    /// The interfaces this host's netplugin holds.
    Local { container: Option<String> },
    /// Whether a container's interfaces are as attached.
    Check {
        container: String,
        #[arg(long)]
        ifname: Option<String>,
    },
}

#[derive(Subcommand)]
enum LsOnly {
    Ls,
}

#[derive(Subcommand)]
enum NetOp {
    Create {
        name: String,
        #[arg(short = 't', long = "tenant", default_value = "default")]
        tenant: String,
        /// vlan or vxlan.
        #[arg(short = 'e', long = "encap", default_value = "vxlan")]
        encap: String,
        /// VLAN id or VNI; left out, netmaster allocates one.
        #[arg(short = 'p', long = "pkt-tag")]
        pkt_tag: Option<u32>,
        /// IPv4 subnet, optionally with a range: 10.1.0.0/24 or 10.1.0.10-10.1.0.99/24.
        #[arg(short = 's', long = "subnet")]
        subnet: String,
        #[arg(short = 'g', long = "gateway")]
        gateway: Option<String>,
        #[arg(long = "subnetv6")]
        subnet_v6: Option<String>,
        #[arg(long = "gatewayv6")]
        gateway_v6: Option<String>,
        /// data or infra.
        #[arg(short = 'n', long = "nw-type", default_value = "data")]
        nw_type: String,
        /// Give each host a gateway port from this network into its own IP stack: the
        /// network's containers reach every host's addresses and every host reaches them,
        /// without NAT, and their traffic to the global service CIDRs goes through the host
        /// (kube-proxy's rules). Every host routes the subnet, so it may overlap no other
        /// host-access network's subnet, in any tenant, nor a service CIDR.
        #[arg(long = "host-access")]
        host_access: bool,
        /// Let the network's containers reach addresses outside the cluster through the host,
        /// their source translated to the host's address.
        #[arg(long = "external")]
        external: bool,
    },
    #[command(alias = "delete")]
    Rm {
        name: String,
        #[arg(short = 't', long = "tenant", default_value = "default")]
        tenant: String,
    },
    Ls {
        #[arg(short = 't', long = "tenant")]
        tenant: Option<String>,
    },
}

#[derive(Subcommand)]
enum GroupOp {
    Create {
        /// Network, then group name (Contiv's order).
        network: String,
        name: String,
        #[arg(short = 't', long = "tenant", default_value = "default")]
        tenant: String,
        #[arg(short = 'p', long = "policy")]
        policy: Vec<String>,
        #[arg(short = 'r', long = "networkprofile")]
        netprofile: Option<String>,
        #[arg(short = 'i', long = "ip-pool")]
        ip_pool: Option<String>,
        /// Only what rules allow reaches this group.
        #[arg(long)]
        default_deny: bool,
    },
    #[command(alias = "delete")]
    Rm {
        name: String,
        #[arg(short = 't', long = "tenant", default_value = "default")]
        tenant: String,
    },
    Ls {
        #[arg(short = 't', long = "tenant")]
        tenant: Option<String>,
    },
}

#[derive(Subcommand)]
enum PolicyOp {
    Create {
        name: String,
        #[arg(short = 't', long = "tenant", default_value = "default")]
        tenant: String,
    },
    #[command(alias = "delete")]
    Rm {
        name: String,
        #[arg(short = 't', long = "tenant", default_value = "default")]
        tenant: String,
    },
    Ls {
        #[arg(short = 't', long = "tenant")]
        tenant: Option<String>,
    },
    /// Add a rule: `netctl policy rule-add POLICY RULE-ID -d in -g GROUP -l tcp -P 80 -j allow`.
    RuleAdd {
        policy: String,
        rule_id: String,
        #[arg(short = 't', long = "tenant", default_value = "default")]
        tenant: String,
        #[arg(short = 'o', long = "priority", default_value_t = 1)]
        priority: u32,
        /// in or out.
        #[arg(short = 'd', long = "direction", default_value = "in")]
        direction: String,
        /// Peer endpoint group (from-group for in, to-group for out).
        #[arg(short = 'g', long = "group")]
        group: Option<String>,
        /// Peer network.
        #[arg(short = 'n', long = "network")]
        network: Option<String>,
        /// Peer address or CIDR.
        #[arg(short = 'S', long = "ip-address")]
        ip: Option<String>,
        /// tcp, udp, icmp or a number.
        #[arg(short = 'l', long = "protocol", default_value = "")]
        protocol: String,
        /// Port, or a range a-b.
        #[arg(short = 'P', long = "port")]
        port: Option<String>,
        /// allow or deny.
        #[arg(short = 'j', long = "action", default_value = "allow")]
        action: String,
    },
    RuleRm {
        policy: String,
        rule_id: String,
        #[arg(short = 't', long = "tenant", default_value = "default")]
        tenant: String,
    },
    RuleLs {
        policy: String,
        #[arg(short = 't', long = "tenant", default_value = "default")]
        tenant: String,
    },
}

#[derive(Subcommand)]
enum NetprofileOp {
    Create {
        name: String,
        #[arg(short = 't', long = "tenant", default_value = "default")]
        tenant: String,
        /// Like 10Mbps.
        #[arg(short = 'b', long = "bandwidth")]
        bandwidth: Option<String>,
        /// Burst in kilobytes.
        #[arg(short = 's', long = "burst", default_value_t = 0)]
        burst: u32,
        #[arg(short = 'd', long = "dscp", default_value_t = 0)]
        dscp: u32,
    },
    #[command(alias = "delete")]
    Rm {
        name: String,
        #[arg(short = 't', long = "tenant", default_value = "default")]
        tenant: String,
    },
    Ls,
}

#[derive(Subcommand)]
enum GlobalOp {
    /// Change global settings; what is not given stays.
    Set {
        #[arg(long = "vlan-range")]
        vlans: Option<String>,
        #[arg(long = "vxlan-range")]
        vxlans: Option<String>,
        #[arg(long = "fwd-mode")]
        fwd_mode: Option<String>,
        #[arg(long = "arp-mode")]
        arp_mode: Option<String>,
        #[arg(long = "private-subnet")]
        private_subnet: Option<String>,
        /// A Kubernetes Service range (CIDR), like 10.96.0.0/12: traffic from host-access
        /// networks to it goes through the host's stack. Repeat for several; the ones given
        /// replace the list.
        #[arg(long = "service-cidr", value_name = "CIDR")]
        service_cidrs: Vec<String>,
        /// Remove every service range.
        #[arg(long = "no-service-cidrs", conflicts_with = "service_cidrs")]
        no_service_cidrs: bool,
    },
    #[command(alias = "info")]
    Get,
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value> {
        let url = format!("{}{path}", self.base.trim_end_matches('/'));
        let mut req = self.http.request(method.clone(), &url);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await.with_context(|| {
            format!(
                "cannot reach netmaster at {} (set --netmaster or NETMASTER)",
                self.base
            )
        })?;
        let status = resp.status();
        let text = resp.text().await?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        if !status.is_success() {
            let msg = v
                .get("error")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| v.to_string());
            bail!("{msg} ({method} {path}: {status})");
        }
        Ok(v)
    }
    async fn get(&self, path: &str) -> Result<Value> {
        self.call(reqwest::Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: &Value) -> Result<Value> {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
    async fn delete(&self, path: &str) -> Result<Value> {
        self.call(reqwest::Method::DELETE, path, None).await
    }
}

/// Prints rows as an aligned table under `headers`, or the JSON as it is.
fn table(json_out: bool, value: &Value, headers: &[&str], fields: &[&str]) {
    if json_out {
        println!(
            "{}",
            serde_json::to_string_pretty(value).expect("JSON prints")
        );
        return;
    }
    let rows: Vec<Vec<String>> = value
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|o| {
            fields
                .iter()
                .map(|f| match &o[*f] {
                    Value::Null => String::new(),
                    Value::String(s) => s.clone(),
                    Value::Array(a) => a
                        .iter()
                        .map(|x| x.as_str().map(str::to_string).unwrap_or(x.to_string()))
                        .collect::<Vec<_>>()
                        .join(","),
                    other => other.to_string(),
                })
                .collect()
        })
        .collect();
    let widths: Vec<usize> = (0..headers.len())
        .map(|i| {
            rows.iter()
                .map(|r| r[i].len())
                .chain([headers[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<String>| {
        let s: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", s.join("  ").trim_end());
    };
    line(headers.iter().map(|h| h.to_string()).collect());
    line(widths.iter().map(|w| "-".repeat(*w)).collect());
    for r in rows {
        line(r);
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

fn filter_tenant(v: Value, tenant: &Option<String>) -> Value {
    match (v, tenant) {
        (Value::Array(a), Some(t)) => Value::Array(
            a.into_iter()
                .filter(|o| o["tenantName"] == json!(t))
                .collect(),
        ),
        (v, _) => v,
    }
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

async fn run(cli: Cli) -> Result<()> {
    let api = Api {
        base: cli.netmaster.clone(),
        http: reqwest::Client::new(),
    };
    let j = cli.json;
    let done = |what: String| {
        if !j {
            println!("{what}");
        }
    };
    match cli.cmd {
        Cmd::Tenant { op } => match op {
            NameOp::Create { name } => {
                api.post(
                    &format!("/api/v1/tenants/{name}/"),
                    &json!({"tenantName": name}),
                )
                .await?;
                done(format!("tenant {name} created"));
            }
            NameOp::Rm { name } => {
                api.delete(&format!("/api/v1/tenants/{name}/")).await?;
                done(format!("tenant {name} removed"));
            }
            NameOp::Ls => table(
                j,
                &api.get("/api/v1/tenants/").await?,
                &["Name"],
                &["tenantName"],
            ),
        },
        Cmd::Net { op } => match op {
            NetOp::Create {
                name,
                tenant,
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
                let mut body = json!({"tenantName": tenant, "networkName": name, "encap": encap,
                                      "subnet": subnet, "nwType": nw_type});
                if let Some(t) = pkt_tag {
                    body["pktTag"] = json!(t);
                }
                if let Some(g) = gateway {
                    body["gateway"] = json!(g);
                }
                if let Some(s) = subnet_v6 {
                    body["ipv6Subnet"] = json!(s);
                }
                if let Some(g) = gateway_v6 {
                    body["ipv6Gateway"] = json!(g);
                }
                if host_access {
                    body["hostAccess"] = json!(true);
                }
                if external {
                    body["external"] = json!(true);
                }
                let stored = api
                    .post(&format!("/api/v1/networks/{tenant}:{name}/"), &body)
                    .await?;
                if j {
                    println!("{stored}");
                }
                let reach: String = [("hostAccess", ", host access"), ("external", ", external")]
                    .iter()
                    .filter(|(f, _)| stored[*f] == json!(true))
                    .map(|(_, what)| *what)
                    .collect();
                done(format!(
                    "network {tenant}:{name} created ({} {}{reach})",
                    stored["encap"].as_str().unwrap_or(""),
                    stored["pktTag"]
                ));
            }
            NetOp::Rm { name, tenant } => {
                api.delete(&format!("/api/v1/networks/{tenant}:{name}/"))
                    .await?;
                done(format!("network {tenant}:{name} removed"));
            }
            NetOp::Ls { tenant } => {
                let nets = filter_tenant(api.get("/api/v1/networks/").await?, &tenant);
                // --json prints what netmaster stored; the table shows both flags either way.
                let nets = if j {
                    nets
                } else {
                    with_false(nets, &["hostAccess", "external"])
                };
                table(
                    j,
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
        },
        Cmd::Group { op } => match op {
            GroupOp::Create {
                network,
                name,
                tenant,
                policy,
                netprofile,
                ip_pool,
                default_deny,
            } => {
                let mut body = json!({"tenantName": tenant, "groupName": name, "networkName": network,
                                      "policies": policy, "defaultDeny": default_deny});
                if let Some(p) = netprofile {
                    body["netProfile"] = json!(p);
                }
                if let Some(p) = ip_pool {
                    body["ipPool"] = json!(p);
                }
                api.post(&format!("/api/v1/endpointGroups/{tenant}:{name}/"), &body)
                    .await?;
                done(format!("group {tenant}:{name} created"));
            }
            GroupOp::Rm { name, tenant } => {
                api.delete(&format!("/api/v1/endpointGroups/{tenant}:{name}/"))
                    .await?;
                done(format!("group {tenant}:{name} removed"));
            }
            GroupOp::Ls { tenant } => table(
                j,
                &filter_tenant(api.get("/api/v1/endpointGroups/").await?, &tenant),
                &["Tenant", "Group", "Network", "Policies", "Netprofile"],
                &[
                    "tenantName",
                    "groupName",
                    "networkName",
                    "policies",
                    "netProfile",
                ],
            ),
        },
        Cmd::Policy { op } => match op {
            PolicyOp::Create { name, tenant } => {
                api.post(
                    &format!("/api/v1/policys/{tenant}:{name}/"),
                    &json!({"tenantName": tenant, "policyName": name}),
                )
                .await?;
                done(format!("policy {tenant}:{name} created"));
            }
            PolicyOp::Rm { name, tenant } => {
                api.delete(&format!("/api/v1/policys/{tenant}:{name}/"))
                    .await?;
                done(format!("policy {tenant}:{name} removed"));
            }
            PolicyOp::Ls { tenant } => table(
                j,
                &filter_tenant(api.get("/api/v1/policys/").await?, &tenant),
                &["Tenant", "Policy"],
                &["tenantName", "policyName"],
            ),
            PolicyOp::RuleAdd {
                policy,
                rule_id,
                tenant,
                priority,
                direction,
                group,
                network,
                ip,
                protocol,
                port,
                action,
            } => {
                let (port, port_end) = port_range(&port)?;
                let side = if direction == "out" { "to" } else { "from" };
                let mut body = json!({"tenantName": tenant, "policyName": policy, "ruleId": rule_id,
                                      "priority": priority, "direction": direction, "protocol": protocol,
                                      "port": port, "portEnd": port_end, "action": action});
                if let Some(g) = group {
                    body[format!("{side}EndpointGroup")] = json!(g);
                }
                if let Some(n) = network {
                    body[format!("{side}Network")] = json!(n);
                }
                if let Some(a) = ip {
                    body[format!("{side}IpAddress")] = json!(a);
                }
                api.post(
                    &format!("/api/v1/rules/{tenant}:{policy}:{rule_id}/"),
                    &body,
                )
                .await?;
                done(format!("rule {rule_id} added to policy {tenant}:{policy}"));
            }
            PolicyOp::RuleRm {
                policy,
                rule_id,
                tenant,
            } => {
                api.delete(&format!("/api/v1/rules/{tenant}:{policy}:{rule_id}/"))
                    .await?;
                done(format!(
                    "rule {rule_id} removed from policy {tenant}:{policy}"
                ));
            }
            PolicyOp::RuleLs { policy, tenant } => {
                let all = api.get("/api/v1/rules/").await?;
                let rules = Value::Array(
                    all.as_array()
                        .map(|a| a.as_slice())
                        .unwrap_or_default()
                        .iter()
                        .filter(|r| {
                            r["tenantName"] == json!(tenant) && r["policyName"] == json!(policy)
                        })
                        .cloned()
                        .collect(),
                );
                table(
                    j,
                    &rules,
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
        },
        Cmd::Netprofile { op } => match op {
            NetprofileOp::Create {
                name,
                tenant,
                bandwidth,
                burst,
                dscp,
            } => {
                let mut body = json!({"tenantName": tenant, "profileName": name, "burst": burst, "DSCP": dscp});
                if let Some(b) = bandwidth {
                    body["bandwidth"] = json!(b);
                }
                api.post(&format!("/api/v1/netprofiles/{tenant}:{name}/"), &body)
                    .await?;
                done(format!("netprofile {tenant}:{name} created"));
            }
            NetprofileOp::Rm { name, tenant } => {
                api.delete(&format!("/api/v1/netprofiles/{tenant}:{name}/"))
                    .await?;
                done(format!("netprofile {tenant}:{name} removed"));
            }
            NetprofileOp::Ls => table(
                j,
                &api.get("/api/v1/netprofiles/").await?,
                &["Tenant", "Name", "Bandwidth", "Burst", "DSCP"],
                &["tenantName", "profileName", "bandwidth", "burst", "DSCP"],
            ),
        },
        Cmd::Global { op } => match op {
            GlobalOp::Get => {
                let g = api.get("/api/v1/globals/global/").await?;
                table(
                    j,
                    &Value::Array(vec![g]),
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
                let mut g = api.get("/api/v1/globals/global/").await?;
                for (k, v) in [
                    ("vlans", vlans),
                    ("vxlans", vxlans),
                    ("fwdMode", fwd_mode),
                    ("arpMode", arp_mode),
                    ("pvtSubnet", private_subnet),
                ] {
                    if let Some(v) = v {
                        g[k] = json!(v);
                    }
                }
                if !service_cidrs.is_empty() || no_service_cidrs {
                    g["serviceCidrs"] = json!(service_cidrs);
                }
                api.post("/api/v1/globals/global/", &g).await?;
                done("global settings updated".into());
            }
        },
        Cmd::Endpoint { op: EndpointOp::Ls } => table(
            j,
            &api.get("/api/v1/inspect/endpoints/").await?,
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
        ),
        Cmd::Endpoint { op } => {
            let mut c = endpoint::client(&cli.agent_socket).await?;
            match op {
                EndpointOp::Ls => unreachable!("handled above"),
                EndpointOp::Attach(a) => {
                    let req = endpoint::attach_request(*a)?;
                    let r = c.attach(req).await.map_err(endpoint::status)?.into_inner();
                    let i = r.interface.unwrap_or_default();
                    if j {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&endpoint::interface_json(&i))?
                        );
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
                    let v =
                        Value::Array(r.interfaces.iter().map(endpoint::interface_json).collect());
                    table(
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
        }
        Cmd::Node { op: LsOnly::Ls } => table(
            j,
            &api.get("/api/v1/inspect/nodes/").await?,
            &["Node", "VTEP", "Uplink"],
            &["name", "vtepIp", "uplink"],
        ),
        Cmd::Apply { file, prune } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {file}"))?;
            let body: Value =
                serde_json::from_str(&text).with_context(|| format!("{file} is not JSON"))?;
            let kind = if weft_api::contiv::ContivIntent::looks_like(&body) {
                "Contiv intent file"
            } else {
                "Weft spec"
            };
            let r = api
                .post(
                    &format!("/api/v1/intent{}", if prune { "?prune=true" } else { "" }),
                    &body,
                )
                .await?;
            if j {
                println!("{}", serde_json::to_string_pretty(&r)?);
            } else {
                let changes = r["changes"].as_array().cloned().unwrap_or_default();
                println!("applied {file} ({kind}): {} change(s)", changes.len());
                for c in changes {
                    println!("  {}", c.as_str().unwrap_or_default());
                }
                for p in r["placements"].as_array().cloned().unwrap_or_default() {
                    println!("  place {}", p.as_str().unwrap_or_default());
                }
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("netctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}
