//! One invocation of the plugin: the commands, talking to netplugin over its unix socket, the
//! attachment webhook, the log, and the notes kept for GC.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;
use tonic::transport::Channel;
use weft_api::proto::endpoint as pb;
use weft_api::proto::endpoint::endpoint_service_client::EndpointServiceClient;

use crate::config::{
    check_version, choose, peek_version, Attachments, CniArgs, Command, Env, LogLevel, NetConf,
    SUPPORTED_VERSIONS,
};
use crate::error::{code, from_status, CniError};
use crate::result::{Attached, CniResult};
use crate::webhook;

const NEWEST: &str = "1.1.0";

/// What the process prints and exits with.
pub struct Outcome {
    pub stdout: String,
    pub exit: i32,
}

/// Runs one CNI invocation: the environment and stdin in, stdout and exit status out.
pub fn run(env: &Env, stdin: &[u8]) -> Outcome {
    let answer_version = peek_version(stdin)
        .filter(|v| SUPPORTED_VERSIONS.contains(&v.as_str()))
        .unwrap_or_else(|| NEWEST.to_string());
    match run_inner(env, stdin) {
        Ok(stdout) => Outcome { stdout, exit: 0 },
        Err(e) => Outcome {
            stdout: e.to_json(&answer_version),
            exit: 1,
        },
    }
}

fn run_inner(env: &Env, stdin: &[u8]) -> Result<String, CniError> {
    let command = Command::parse(&env.command)?;
    if command == Command::Version {
        let asked = peek_version(stdin)
            .filter(|v| SUPPORTED_VERSIONS.contains(&v.as_str()))
            .unwrap_or_else(|| NEWEST.to_string());
        return Ok(
            json!({"cniVersion": asked, "supportedVersions": SUPPORTED_VERSIONS}).to_string(),
        );
    }
    let conf = NetConf::parse(stdin)?;
    check_version(command, &conf.cni_version)?;
    env.require(command)?;
    let log = Log::open(&conf, env);
    log.at(
        LogLevel::Debug,
        &format!("config: {}", String::from_utf8_lossy(stdin)),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            CniError::new(
                code::IO_FAILURE,
                "cannot start",
                format!("tokio runtime: {e}"),
            )
        })?;
    let started = std::time::Instant::now();
    let r = rt.block_on(dispatch(command, &conf, env, &log));
    match &r {
        Ok(out) => log.at(
            LogLevel::Info,
            &format!("{} ok in {:?}: {out}", command.name(), started.elapsed()),
        ),
        Err(e) => log.at(
            LogLevel::Error,
            &format!("{} failed in {:?}: {e}", command.name(), started.elapsed()),
        ),
    }
    r
}

async fn dispatch(
    command: Command,
    conf: &NetConf,
    env: &Env,
    log: &Log,
) -> Result<String, CniError> {
    match command {
        Command::Add => add(conf, env, log).await,
        Command::Del => del(conf, env, log).await.map(|_| String::new()),
        Command::Check => check(conf, env).await.map(|_| String::new()),
        Command::Status => status(conf).await.map(|_| String::new()),
        Command::Gc => gc(conf, log).await.map(|_| String::new()),
        Command::Version => unreachable!("answered before"),
    }
}

/// The message chain of an error (tonic's transport errors hide the cause in `source`).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

async fn connect(conf: &NetConf) -> Result<EndpointServiceClient<Channel>, CniError> {
    let path: &Path = &conf.agent_socket;
    weft_local::connect(path, Some(Duration::from_secs(2)))
        .await
        .map_err(|e| {
            CniError::new(
                code::TRY_AGAIN_LATER,
                "try again later: netplugin is not reachable",
                format!(
                    "cannot connect to netplugin's endpoint service at {} ({}); is netplugin \
                     running on this host, and is \"agentSocket\" in the network config right?",
                    path.display(),
                    chain(&e)
                ),
            )
        })
}

fn request<T>(conf: &NetConf, msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.set_timeout(Duration::from_secs(conf.timeout_seconds));
    r
}

/// The note kept for each interface weft-cni attached, for GC.
#[derive(Debug, Serialize, Deserialize)]
struct Note {
    container_id: String,
    /// CNI_IFNAME of the ADD (in webhook mode, the interface may be another one).
    runtime_ifname: String,
    ifname: String,
    tenant: String,
    network: String,
}

fn notes_dir(conf: &NetConf) -> PathBuf {
    conf.state_dir.join(&conf.name)
}

fn write_note(conf: &NetConf, n: &Note) -> Result<(), CniError> {
    let dir = notes_dir(conf);
    let io = |e: std::io::Error, p: &Path| {
        CniError::new(
            code::IO_FAILURE,
            "cannot record the attachment",
            format!("{}: {e}", p.display()),
        )
    };
    std::fs::create_dir_all(&dir).map_err(|e| io(e, &dir))?;
    let p = dir.join(format!("{}-{}", n.container_id, n.ifname));
    std::fs::write(&p, serde_json::to_vec(n).expect("note serialises")).map_err(|e| io(e, &p))
}

fn read_notes(conf: &NetConf) -> Vec<(PathBuf, Note)> {
    let Ok(rd) = std::fs::read_dir(notes_dir(conf)) else {
        return vec![];
    };
    rd.flatten()
        .filter_map(|e| {
            let p = e.path();
            let n: Note = serde_json::from_slice(&std::fs::read(&p).ok()?).ok()?;
            Some((p, n))
        })
        .collect()
}

async fn add(conf: &NetConf, env: &Env, log: &Log) -> Result<String, CniError> {
    let cni_args = CniArgs::parse(&env.args)?;
    let mut result = match &conf.prev_result {
        Some(p) => CniResult::from_prev(p)?,
        None => CniResult::default(),
    };
    let base = pb::AttachRequest {
        container_id: env.container_id.clone(),
        netns: env.netns.clone(),
        group: conf.endpoint_group.clone(),
        mtu: conf.mtu,
        pod_name: cni_args.pod_name.clone(),
        pod_namespace: cni_args.pod_namespace.clone(),
        pod_uid: cni_args.pod_uid.clone(),
        ..Default::default()
    };
    // (request, the default gateway the result reports when it is not the network's)
    let mut plan: Vec<(pb::AttachRequest, Option<String>)> = vec![];
    match &conf.attachments {
        None => {
            let (choice, source) = choose(conf, &cni_args)?;
            log.at(
                LogLevel::Debug,
                &format!("address from {}: {:?}", source.describe(), choice),
            );
            let mut req = pb::AttachRequest {
                interface_name: env.ifname.clone(),
                tenant: conf.tenant.clone(),
                network: conf.network.clone(),
                ipv4: choice.ipv4,
                ipv6: choice.ipv6,
                mac: choice.mac,
                no_default_route: !conf.default_route,
                ..base.clone()
            };
            let gw = choice.gateway.map(|g| g.to_string());
            if let Some(g) = &gw {
                req.no_default_route = true;
                req.routes.push(pb::Route {
                    dst: if g.contains(':') { "::/0" } else { "0.0.0.0/0" }.into(),
                    gateway: g.clone(),
                });
            }
            plan.push((req, gw));
        }
        Some(att) => {
            let (url, timeout_ms) = att.endpoint();
            if matches!(att, Attachments::Netmaster { .. })
                && (cni_args.pod_namespace.is_empty() || cni_args.pod_name.is_empty())
            {
                return Err(CniError::env(
                    "the netmaster attachment backend finds a pod by K8S_POD_NAMESPACE and \
                     K8S_POD_NAME in CNI_ARGS; they are missing",
                ));
            }
            let body = fetch_webhook(&url, timeout_ms, env, &cni_args, conf).await?;
            log.at(
                LogLevel::Debug,
                &format!("attachments from {url}: {}", String::from_utf8_lossy(&body)),
            );
            for p in webhook::plan(&body, &url, &conf.tenant, &env.ifname)? {
                let mut req = pb::AttachRequest {
                    interface_name: p.ifname,
                    tenant: p.tenant,
                    network: p.network,
                    ipv4: p.ipv4,
                    no_default_route: true,
                    ..base.clone()
                };
                let mut gw = None;
                if p.master {
                    match p.gateway {
                        Some(g) => {
                            req.routes.push(pb::Route {
                                dst: "0.0.0.0/0".into(),
                                gateway: g.to_string(),
                            });
                            gw = Some(g.to_string());
                        }
                        None => req.no_default_route = false,
                    }
                }
                plan.push((req, gw));
            }
        }
    }
    let mut client = connect(conf).await?;
    let mut done: Vec<String> = vec![];
    for (req, gw) in plan {
        let ifname = req.interface_name.clone();
        let no_default = req.no_default_route;
        let what = format!(
            "attaching {} of container {} to {}/{}",
            ifname, env.container_id, req.tenant, req.network
        );
        let note = Note {
            container_id: env.container_id.clone(),
            runtime_ifname: env.ifname.clone(),
            ifname: ifname.clone(),
            tenant: req.tenant.clone(),
            network: req.network.clone(),
        };
        let reply = client.attach(request(conf, req)).await;
        let iface = match reply {
            Ok(r) => r.into_inner().interface.ok_or_else(|| {
                CniError::new(
                    code::NETPLUGIN_REFUSED,
                    "netplugin failed",
                    format!("{what}: no interface in the reply"),
                )
            }),
            Err(s) => Err(from_status(&what, &s)),
        };
        let iface = match iface {
            Ok(i) => i,
            Err(e) => {
                // Leave nothing half made: undo the interfaces this ADD attached before.
                for d in &done {
                    let _ = std::fs::remove_file(
                        notes_dir(conf).join(format!("{}-{d}", env.container_id)),
                    );
                    let _ = client
                        .detach(request(
                            conf,
                            pb::DetachRequest {
                                container_id: env.container_id.clone(),
                                interface_name: d.clone(),
                            },
                        ))
                        .await;
                }
                return Err(e);
            }
        };
        write_note(conf, &note)?;
        done.push(ifname.clone());
        let default_gateway = match gw {
            Some(g) => Some(g),
            None if no_default || iface.gateway.is_empty() => None,
            None => Some(iface.gateway.clone()),
        };
        let has_default = default_gateway.is_some();
        let attached = Attached {
            name: iface.interface_name.clone(),
            mac: iface.mac.clone(),
            mtu: iface.mtu,
            sandbox: env.netns.clone(),
            ipv4: iface.ipv4.clone(),
            ipv6: iface.ipv6.clone(),
            default_gateway,
            gateway: iface.gateway.clone(),
            host_interface: iface.host_interface.clone(),
            routes: iface
                .routes
                .iter()
                .filter(|r| !((r.dst == "0.0.0.0/0" || r.dst == "::/0") && has_default))
                .map(|r| (r.dst.clone(), r.gateway.clone()))
                .collect(),
        };
        result.push(&attached);
    }
    Ok(result.render(&conf.cni_version).to_string())
}

fn encode(s: &str) -> String {
    let mut o = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

async fn fetch_webhook(
    url: &str,
    timeout_ms: u64,
    env: &Env,
    a: &CniArgs,
    conf: &NetConf,
) -> Result<Vec<u8>, CniError> {
    let sep = if url.contains('?') { '&' } else { '?' };
    let full = format!(
        "{url}{sep}podName={}&podNamespace={}&podUid={}&containerId={}&ifName={}&network={}",
        encode(&a.pod_name),
        encode(&a.pod_namespace),
        encode(&a.pod_uid),
        encode(&env.container_id),
        encode(&env.ifname),
        encode(&conf.name)
    );
    let unreachable = |e: String| {
        CniError::new(
            code::TRY_AGAIN_LATER,
            "try again later: the attachment webhook is not reachable",
            format!("GET {full}: {e}"),
        )
    };
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(timeout_ms))
        .build()
        .map_err(|e| unreachable(chain(&e)))?;
    let r = client
        .get(&full)
        .send()
        .await
        .map_err(|e| unreachable(chain(&e)))?;
    let status = r.status();
    let body = r.bytes().await.map_err(|e| unreachable(chain(&e)))?;
    if !status.is_success() {
        return Err(CniError::new(
            code::WEBHOOK_FAILED,
            "the attachment webhook refused",
            format!(
                "GET {full}: HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            ),
        ));
    }
    Ok(body.to_vec())
}

async fn del(conf: &NetConf, env: &Env, log: &Log) -> Result<(), CniError> {
    // Webhook mode: every interface the ADD made (they share the container).
    let ifname = match conf.attachments {
        Some(_) => String::new(),
        None => env.ifname.clone(),
    };
    let mut client = connect(conf).await?;
    let what = format!(
        "detaching {} of container {}",
        if ifname.is_empty() {
            "every interface"
        } else {
            &ifname
        },
        env.container_id
    );
    let removed = client
        .detach(request(
            conf,
            pb::DetachRequest {
                container_id: env.container_id.clone(),
                interface_name: ifname.clone(),
            },
        ))
        .await
        .map_err(|s| from_status(&what, &s))?
        .into_inner()
        .removed;
    log.at(LogLevel::Info, &format!("removed {removed:?}"));
    for (p, n) in read_notes(conf) {
        if n.container_id == env.container_id && (ifname.is_empty() || n.ifname == ifname) {
            let _ = std::fs::remove_file(p);
        }
    }
    Ok(())
}

async fn check(conf: &NetConf, env: &Env) -> Result<(), CniError> {
    let ifname = match conf.attachments {
        Some(_) => String::new(),
        None => env.ifname.clone(),
    };
    let mut client = connect(conf).await?;
    let what = format!("checking container {}", env.container_id);
    let r = client
        .check(request(
            conf,
            pb::CheckRequest {
                container_id: env.container_id.clone(),
                interface_name: ifname.clone(),
            },
        ))
        .await
        .map_err(|s| from_status(&what, &s))?
        .into_inner();
    if !r.ok {
        return Err(CniError::new(
            code::CHECK_FAILED,
            "the container's interface is not as attached",
            r.problems.join("; "),
        ));
    }
    // The runtime's record (prevResult) must show the addresses netplugin gave.
    let Some(prev) = &conf.prev_result else {
        return Ok(());
    };
    let prev = CniResult::from_prev(prev)?;
    let list = client
        .list(request(
            conf,
            pb::ListRequest {
                container_id: env.container_id.clone(),
            },
        ))
        .await
        .map_err(|s| from_status(&what, &s))?
        .into_inner();
    for i in list
        .interfaces
        .iter()
        .filter(|i| ifname.is_empty() || i.interface_name == ifname)
    {
        if !i.ipv4.is_empty() && !prev.ips.iter().any(|p| p.address == i.ipv4) {
            return Err(CniError::new(
                code::CHECK_FAILED,
                "prevResult does not match the container's interface",
                format!(
                    "{} has {} but prevResult lists {:?}",
                    i.interface_name,
                    i.ipv4,
                    prev.ips.iter().map(|p| &p.address).collect::<Vec<_>>()
                ),
            ));
        }
        if !prev.interfaces.iter().any(|p| p.name == i.interface_name) {
            return Err(CniError::new(
                code::CHECK_FAILED,
                "prevResult does not match the container's interface",
                format!("prevResult has no interface {}", i.interface_name),
            ));
        }
    }
    Ok(())
}

async fn status(conf: &NetConf) -> Result<(), CniError> {
    let not_available = |e: CniError| {
        CniError::new(
            code::NOT_AVAILABLE,
            "the plugin is not available",
            e.details,
        )
    };
    let mut client = connect(conf).await.map_err(not_available)?;
    client
        .list(request(
            conf,
            pb::ListRequest {
                container_id: "weft-cni-status".into(),
            },
        ))
        .await
        .map_err(|s| not_available(from_status("asking netplugin", &s)))?;
    Ok(())
}

async fn gc(conf: &NetConf, log: &Log) -> Result<(), CniError> {
    let valid = conf.valid_attachments.clone().unwrap_or_default();
    let stale: Vec<(PathBuf, Note)> = read_notes(conf)
        .into_iter()
        .filter(|(_, n)| {
            !valid
                .iter()
                .any(|v| v.container_id == n.container_id && v.ifname == n.runtime_ifname)
        })
        .collect();
    if stale.is_empty() {
        return Ok(());
    }
    let mut client = connect(conf).await?;
    for (p, n) in stale {
        let what = format!(
            "removing stale {} of container {}",
            n.ifname, n.container_id
        );
        client
            .detach(request(
                conf,
                pb::DetachRequest {
                    container_id: n.container_id.clone(),
                    interface_name: n.ifname.clone(),
                },
            ))
            .await
            .map_err(|s| from_status(&what, &s))?;
        log.at(LogLevel::Info, &what);
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

/// The plugin's log: a file named in the config, lines at or above its level.
pub struct Log {
    file: Option<std::fs::File>,
    level: LogLevel,
    prefix: String,
}

impl Log {
    fn open(conf: &NetConf, env: &Env) -> Log {
        let file = conf.log_file.as_ref().and_then(|p| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .ok()
        });
        Log {
            file,
            level: conf.log_level,
            prefix: format!("{} {} {}", env.command, env.container_id, env.ifname),
        }
    }

    fn at(&self, level: LogLevel, msg: &str) {
        if level > self.level {
            return;
        }
        if let Some(mut f) = self.file.as_ref() {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            let _ = writeln!(
                f,
                "{}.{:03} {:?} [{}] {}",
                t.as_secs(),
                t.subsec_millis(),
                level,
                self.prefix,
                msg
            );
        }
    }
}
