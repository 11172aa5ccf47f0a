//! netctl: the command line for Weft, with Contiv's commands and flags. Talks to netmaster's
//! REST API (`--netmaster` or `NETMASTER`, default http://127.0.0.1:9999) through a typed client
//! (`rest`), and to this host's netplugin over its unix socket (`endpoint`). Tables for people,
//! `--json` for scripts. One function per command (`commands`, `inspect`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod commands;
mod endpoint;
mod inspect;
mod rest;
mod table;

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
    /// The tenant: of the object created or removed ("default" when not given), of the objects
    /// listed (every tenant's when not given), of the network an endpoint attaches to.
    #[arg(short = 't', long = "tenant", global = true)]
    tenant: Option<String>,
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
pub enum Cmd {
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
    /// The flows on a host's switch, with the intent object behind each.
    Flows(Box<inspect::FlowsArgs>),
    /// Follow a packet from SRC to DST through every host's flows; exit status 0 when it is
    /// delivered, 1 when it is dropped.
    Trace(Box<inspect::TraceArgs>),
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
pub enum NameOp {
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
pub enum EndpointOp {
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
pub enum LsOnly {
    Ls,
}

#[derive(Subcommand)]
pub enum NetOp {
    Create {
        name: String,
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
    },
    Ls,
}

#[derive(Subcommand)]
pub enum GroupOp {
    Create {
        /// Network, then group name (Contiv's order).
        network: String,
        name: String,
        #[arg(short = 'p', long = "policy")]
        policy: Vec<String>,
        #[arg(short = 'r', long = "networkprofile")]
        netprofile: Option<String>,
        #[arg(short = 'i', long = "ip-pool")]
        ip_pool: Option<String>,
        /// Only what rules allow reaches this group.
        #[arg(long)]
        default_deny: bool,
        /// Log the first packet of each connection the default deny refuses (needs --default-deny).
        #[arg(long)]
        log: bool,
    },
    #[command(alias = "delete")]
    Rm {
        name: String,
    },
    Ls,
}

#[derive(Subcommand)]
pub enum PolicyOp {
    Create {
        name: String,
    },
    #[command(alias = "delete")]
    Rm {
        name: String,
    },
    Ls,
    /// Add a rule: `netctl policy rule-add POLICY RULE-ID -d in -g GROUP -l tcp -P 80 -j allow`.
    RuleAdd {
        policy: String,
        rule_id: String,
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
        /// Log the first packet of each connection this rule decides (`netctl policy log`).
        #[arg(long)]
        log: bool,
    },
    RuleRm {
        policy: String,
        rule_id: String,
    },
    RuleLs {
        policy: String,
    },
    /// The verdicts of logged policies, oldest first.
    Log(inspect::LogArgs),
}

#[derive(Subcommand)]
pub enum NetprofileOp {
    Create {
        name: String,
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
    },
    Ls,
}

#[derive(Subcommand)]
pub enum GlobalOp {
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

/// What every command gets besides its own arguments.
pub struct Ctx {
    pub api: rest::Api,
    pub json: bool,
    pub tenant: Option<String>,
    pub agent_socket: std::path::PathBuf,
}

impl Ctx {
    /// The tenant of an object created or removed.
    pub fn tenant(&self) -> &str {
        self.tenant.as_deref().unwrap_or("default")
    }
    /// Prints a line saying what was done (not with --json).
    pub fn done(&self, what: String) {
        if !self.json {
            println!("{what}");
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let ctx = Ctx {
        api: rest::Api::new(&cli.netmaster),
        json: cli.json,
        tenant: cli.tenant,
        agent_socket: cli.agent_socket,
    };
    match cli.cmd {
        Cmd::Tenant { op } => commands::tenant(&ctx, op).await?,
        Cmd::Net { op } => commands::net(&ctx, op).await?,
        Cmd::Group { op } => commands::group(&ctx, op).await?,
        Cmd::Policy {
            op: PolicyOp::Log(a),
        } => inspect::policy_log(&ctx, a).await?,
        Cmd::Policy { op } => commands::policy(&ctx, op).await?,
        Cmd::Netprofile { op } => commands::netprofile(&ctx, op).await?,
        Cmd::Global { op } => commands::global(&ctx, op).await?,
        Cmd::Endpoint { op } => commands::endpoint(&ctx, op).await?,
        Cmd::Node { op: LsOnly::Ls } => commands::node_ls(&ctx).await?,
        Cmd::Apply { file, prune } => commands::apply(&ctx, &file, prune).await?,
        Cmd::Flows(a) => inspect::flows(&ctx, *a).await?,
        Cmd::Trace(a) => return inspect::trace(&ctx, *a).await,
    }
    Ok(ExitCode::SUCCESS)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("netctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}
