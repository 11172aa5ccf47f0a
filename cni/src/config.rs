//! The network configuration weft-cni reads on stdin, the CNI environment variables, CNI_ARGS,
//! and the precedence of the per-container choices (capability, then args, then CNI_ARGS).

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;
use serde_json::Value;

use crate::error::{code, CniError};

/// The versions weft-cni speaks, oldest first. Results are written in the config's version.
pub const SUPPORTED_VERSIONS: &[&str] = &["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

pub const DEFAULT_SOCKET: &str = "/run/weft/netplugin.sock";
pub const DEFAULT_STATE_DIR: &str = "/var/lib/cni/weft";

/// The CNI commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    Add,
    Del,
    Check,
    Status,
    Gc,
    Version,
}

impl Command {
    pub fn parse(s: &str) -> Result<Command, CniError> {
        Ok(match s {
            "ADD" => Command::Add,
            "DEL" => Command::Del,
            "CHECK" => Command::Check,
            "STATUS" => Command::Status,
            "GC" => Command::Gc,
            "VERSION" => Command::Version,
            "" => {
                return Err(CniError::env(
                    "CNI_COMMAND is not set (ADD, DEL, CHECK, STATUS, GC or VERSION)",
                ))
            }
            other => {
                return Err(CniError::env(format!(
                    "CNI_COMMAND \"{other}\" is not one of ADD, DEL, CHECK, STATUS, GC, VERSION"
                )))
            }
        })
    }

    /// The oldest config version in which the command exists.
    fn since(self) -> &'static str {
        match self {
            Command::Check => "0.4.0",
            Command::Status | Command::Gc => "1.1.0",
            _ => "0.3.0",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Command::Add => "ADD",
            Command::Del => "DEL",
            Command::Check => "CHECK",
            Command::Status => "STATUS",
            Command::Gc => "GC",
            Command::Version => "VERSION",
        }
    }
}

/// A version as three numbers, for comparisons.
pub fn version_tuple(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.split('.');
    let t = (
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
        it.next()?.parse().ok()?,
    );
    if it.next().is_some() {
        return None;
    }
    Some(t)
}

/// Whether `command` may be run with a config of `version`; an error object otherwise.
pub fn check_version(command: Command, version: &str) -> Result<(), CniError> {
    if !SUPPORTED_VERSIONS.contains(&version) {
        return Err(CniError::new(
            code::INCOMPATIBLE_VERSION,
            "incompatible CNI version",
            format!(
                "config cniVersion \"{version}\" is not supported; weft-cni supports {}",
                SUPPORTED_VERSIONS.join(", ")
            ),
        ));
    }
    if version_tuple(version) < version_tuple(command.since()) {
        return Err(CniError::new(
            code::INCOMPATIBLE_VERSION,
            "incompatible CNI version",
            format!(
                "{} needs cniVersion {} or later; the config says \"{version}\"",
                command.name(),
                command.since()
            ),
        ));
    }
    Ok(())
}

/// Where a container's several networks come from, when one config stands for all of them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "backend", rename_all = "camelCase", deny_unknown_fields)]
pub enum Attachments {
    /// An HTTP service answering in dockin's format (`code`, `message`, `data[]`).
    #[serde(rename = "webhook", rename_all = "camelCase")]
    Webhook {
        url: String,
        #[serde(default = "default_webhook_timeout")]
        timeout_ms: u64,
    },
    /// netmaster's own pod-attachment records (`/api/v1/podAttachments/`), read at
    /// `URL/api/v1/cni/attachments` (URL: netmaster's REST address), in the same format.
    #[serde(rename = "netmaster", rename_all = "camelCase")]
    Netmaster {
        url: String,
        #[serde(default = "default_webhook_timeout")]
        timeout_ms: u64,
    },
}

impl Attachments {
    /// The URL to ask and the time allowed.
    pub fn endpoint(&self) -> (String, u64) {
        match self {
            Attachments::Webhook { url, timeout_ms } => (url.clone(), *timeout_ms),
            Attachments::Netmaster { url, timeout_ms } => (
                format!("{}/api/v1/cni/attachments", url.trim_end_matches('/')),
                *timeout_ms,
            ),
        }
    }
}

fn default_webhook_timeout() -> u64 {
    5000
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    #[default]
    Error,
    Info,
    Debug,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeConfig {
    /// The `ips` capability: addresses the runtime asks for ("10.1.1.5/24" or "10.1.1.5").
    #[serde(default)]
    pub ips: Vec<String>,
    /// The `mac` capability.
    #[serde(default)]
    pub mac: Option<String>,
    /// Anything else (portMappings, bandwidth, ...) is for chained plugins.
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct ArgsCni {
    #[serde(default)]
    pub ips: Vec<String>,
    #[serde(default)]
    pub mac: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub struct Args {
    #[serde(default)]
    pub cni: Option<ArgsCni>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct ValidAttachment {
    #[serde(rename = "containerID")]
    pub container_id: String,
    pub ifname: String,
}

/// One plugin's network configuration, as the runtime passes it on stdin.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct NetConf {
    pub cni_version: String,
    pub name: String,
    #[serde(rename = "type")]
    pub plugin_type: String,
    #[serde(default)]
    pub tenant: String,
    #[serde(default)]
    pub network: String,
    #[serde(default)]
    pub endpoint_group: String,
    #[serde(default = "default_socket")]
    pub agent_socket: PathBuf,
    #[serde(default)]
    pub log_file: Option<PathBuf>,
    #[serde(default)]
    pub log_level: LogLevel,
    /// 0: netplugin's default for the network.
    #[serde(default)]
    pub mtu: u32,
    /// Where weft-cni notes the attachments it made (for GC).
    #[serde(default = "default_state_dir")]
    pub state_dir: PathBuf,
    /// Whether the interface gets the default route via its network's gateway (false for the
    /// second and later networks of a pod with several conflists).
    #[serde(default = "yes")]
    pub default_route: bool,
    /// Longest time a request to netplugin may take.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    #[serde(default)]
    pub attachments: Option<Attachments>,
    #[serde(default)]
    pub runtime_config: RuntimeConfig,
    #[serde(default)]
    pub args: Option<Args>,
    #[serde(default)]
    pub prev_result: Option<Value>,
    #[serde(rename = "cni.dev/valid-attachments", default)]
    pub valid_attachments: Option<Vec<ValidAttachment>>,
}

fn default_socket() -> PathBuf {
    PathBuf::from(DEFAULT_SOCKET)
}
fn default_state_dir() -> PathBuf {
    PathBuf::from(DEFAULT_STATE_DIR)
}
fn yes() -> bool {
    true
}
fn default_timeout() -> u64 {
    60
}

/// Reads the version a config asks for, before anything else (to answer in it, even errors).
pub fn peek_version(stdin: &[u8]) -> Option<String> {
    let v: Value = serde_json::from_slice(stdin).ok()?;
    v.get("cniVersion")?.as_str().map(str::to_string)
}

impl NetConf {
    /// Parses and validates the config the runtime gave on stdin.
    pub fn parse(stdin: &[u8]) -> Result<NetConf, CniError> {
        if stdin.iter().all(|b| b.is_ascii_whitespace()) {
            return Err(CniError::new(
                code::DECODE_FAILURE,
                "failed to decode network config",
                "stdin is empty: the runtime must pass the network config as JSON on stdin",
            ));
        }
        let raw: Value = serde_json::from_slice(stdin).map_err(|e| {
            CniError::new(
                code::DECODE_FAILURE,
                "failed to decode network config",
                format!("stdin is not JSON: {e}"),
            )
        })?;
        if !raw.is_object() {
            return Err(CniError::config(
                "stdin: the network config must be a JSON object",
            ));
        }
        for key in ["cniVersion", "name", "type"] {
            if raw.get(key).is_none() {
                return Err(CniError::config(format!(
                    "stdin: required field \"{key}\" is missing"
                )));
            }
        }
        let c: NetConf = serde_json::from_value(raw.clone()).map_err(|e| {
            CniError::config(format!("stdin: {}: {e}", culprit(&raw).unwrap_or_default()))
        })?;
        c.validate()?;
        Ok(c)
    }

    fn validate(&self) -> Result<(), CniError> {
        if self.name.is_empty() {
            return Err(CniError::config("\"name\" is empty"));
        }
        if self.attachments.is_none() {
            if self.tenant.is_empty() {
                return Err(CniError::config(format!(
                    "network \"{}\": \"tenant\" is required (the Weft tenant of the network)",
                    self.name
                )));
            }
            if self.network.is_empty() {
                return Err(CniError::config(format!(
                    "network \"{}\": \"network\" is required (the Weft network in tenant \"{}\")",
                    self.name, self.tenant
                )));
            }
        }
        if let Some(Attachments::Webhook { url, .. } | Attachments::Netmaster { url, .. }) =
            &self.attachments
        {
            if !url.starts_with("http://") {
                return Err(CniError::config(format!(
                    "attachments.url \"{url}\": only http:// URLs are supported"
                )));
            }
        }
        if self.agent_socket.as_os_str().is_empty() {
            return Err(CniError::config("\"agentSocket\" is empty"));
        }
        if self.timeout_seconds == 0 {
            return Err(CniError::config("\"timeoutSeconds\" must be at least 1"));
        }
        if self.mtu != 0 && !(576..=9216).contains(&self.mtu) {
            return Err(CniError::config(format!(
                "\"mtu\" {} is outside 576..9216",
                self.mtu
            )));
        }
        Ok(())
    }
}

/// Which top-level field of a config that does not parse is the bad one (serde's message for a
/// value does not say): each field is tried alone with the required ones.
fn culprit(raw: &Value) -> Option<String> {
    let m = raw.as_object()?;
    for (k, v) in m {
        let mut one = serde_json::Map::new();
        for req in ["cniVersion", "name", "type"] {
            one.insert(req.into(), json_str(""));
        }
        one.insert(k.clone(), v.clone());
        if let Err(e) = serde_json::from_value::<NetConf>(Value::Object(one)) {
            if !["cniVersion", "name", "type"].contains(&k.as_str()) || !v.is_string() {
                let _ = e;
                return Some(format!("field \"{k}\""));
            }
        }
    }
    None
}

fn json_str(s: &str) -> Value {
    Value::String(s.to_string())
}

/// The CNI environment of one invocation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Env {
    pub command: String,
    pub container_id: String,
    pub netns: String,
    pub ifname: String,
    pub args: String,
    pub path: String,
}

impl Env {
    pub fn from_process() -> Env {
        let get = |k: &str| std::env::var(k).unwrap_or_default();
        Env {
            command: get("CNI_COMMAND"),
            container_id: get("CNI_CONTAINERID"),
            netns: get("CNI_NETNS"),
            ifname: get("CNI_IFNAME"),
            args: get("CNI_ARGS"),
            path: get("CNI_PATH"),
        }
    }

    /// That the variables `command` needs are there and well formed.
    pub fn require(&self, command: Command) -> Result<(), CniError> {
        let (id, netns, ifname) = match command {
            Command::Add | Command::Check => (true, true, true),
            Command::Del => (true, false, true),
            _ => (false, false, false),
        };
        let name = command.name();
        if id {
            if self.container_id.is_empty() {
                return Err(CniError::env(format!(
                    "CNI_CONTAINERID is required for {name}"
                )));
            }
            if !self
                .container_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c))
            {
                return Err(CniError::env(format!(
                    "CNI_CONTAINERID \"{}\" may hold only letters, digits, '_', '.' and '-'",
                    self.container_id
                )));
            }
        }
        if netns && self.netns.is_empty() {
            return Err(CniError::env(format!("CNI_NETNS is required for {name}")));
        }
        if ifname {
            if self.ifname.is_empty() {
                return Err(CniError::env(format!("CNI_IFNAME is required for {name}")));
            }
            if self.ifname.len() > 15
                || self.ifname.contains(['/', ' ', ':'])
                || self.ifname == "."
                || self.ifname == ".."
            {
                return Err(CniError::env(format!(
                    "CNI_IFNAME \"{}\" is not a valid interface name (at most 15 characters, no '/', ':' or spaces)",
                    self.ifname
                )));
            }
        }
        Ok(())
    }
}

/// The `KEY=VALUE;...` pairs of CNI_ARGS that weft-cni understands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CniArgs {
    pub ip: Vec<String>,
    pub gateway: Option<String>,
    pub mac: Option<String>,
    pub pod_name: String,
    pub pod_namespace: String,
    pub pod_uid: String,
}

impl CniArgs {
    pub fn parse(s: &str) -> Result<CniArgs, CniError> {
        let mut a = CniArgs::default();
        let mut unknown = vec![];
        let mut ignore_unknown = false;
        for pair in s.split(';').filter(|p| !p.is_empty()) {
            let Some((k, v)) = pair.split_once('=') else {
                return Err(CniError::env(format!(
                    "CNI_ARGS: \"{pair}\" is not KEY=VALUE (pairs are separated by ';')"
                )));
            };
            match k {
                "IP" => {
                    a.ip = v
                        .split(',')
                        .map(str::trim)
                        .filter(|x| !x.is_empty())
                        .map(str::to_string)
                        .collect()
                }
                "GATEWAY" => a.gateway = Some(v.to_string()).filter(|v| !v.is_empty()),
                "MAC" => a.mac = Some(v.to_string()).filter(|v| !v.is_empty()),
                "K8S_POD_NAME" => a.pod_name = v.to_string(),
                "K8S_POD_NAMESPACE" => a.pod_namespace = v.to_string(),
                "K8S_POD_UID" => a.pod_uid = v.to_string(),
                "K8S_POD_INFRA_CONTAINER_ID" => {}
                _ if k.eq_ignore_ascii_case("IgnoreUnknown") => {
                    ignore_unknown = matches!(v.to_ascii_lowercase().as_str(), "1" | "true")
                }
                _ => unknown.push(k.to_string()),
            }
        }
        if !unknown.is_empty() && !ignore_unknown {
            return Err(CniError::env(format!(
                "CNI_ARGS: unknown key(s) {}; weft-cni knows IP, GATEWAY, MAC, K8S_POD_NAME, \
                 K8S_POD_NAMESPACE, K8S_POD_UID (add IgnoreUnknown=1 to pass others)",
                unknown.join(", ")
            )));
        }
        Ok(a)
    }
}

/// Which of the three places a choice came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Capability,
    Args,
    CniArgs,
    None,
}

impl Source {
    pub fn describe(self) -> &'static str {
        match self {
            Source::Capability => "runtimeConfig.ips (capability)",
            Source::Args => "args.cni.ips",
            Source::CniArgs => "CNI_ARGS IP",
            Source::None => "netmaster's allocation",
        }
    }
}

/// What one interface should get, after the precedence is applied.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Choice {
    /// "A.B.C.D" or "A.B.C.D/LEN"; empty: netmaster allocates.
    pub ipv4: String,
    pub ipv6: Vec<String>,
    pub mac: String,
    /// A default gateway other than the network's.
    pub gateway: Option<IpAddr>,
}

/// Applies the precedence of the static IPAM: the `ips` capability, then `args.cni.ips`, then
/// CNI_ARGS `IP=` (the first place that names any address wins outright; the same for `mac`).
pub fn choose(conf: &NetConf, cni_args: &CniArgs) -> Result<(Choice, Source), CniError> {
    let args_cni = conf.args.as_ref().and_then(|a| a.cni.as_ref());
    let (ips, source) = if !conf.runtime_config.ips.is_empty() {
        (conf.runtime_config.ips.clone(), Source::Capability)
    } else if let Some(a) = args_cni.filter(|a| !a.ips.is_empty()) {
        (a.ips.clone(), Source::Args)
    } else if !cni_args.ip.is_empty() {
        (cni_args.ip.clone(), Source::CniArgs)
    } else {
        (vec![], Source::None)
    };
    let mut c = Choice::default();
    for ip in &ips {
        let (addr, text) = match ip.parse::<IpNet>() {
            Ok(n) => (n.addr(), n.to_string()),
            Err(_) => match ip.parse::<IpAddr>() {
                Ok(a) => (a, a.to_string()),
                Err(_) => {
                    return Err(CniError::config(format!(
                        "{}: \"{ip}\" is not an IP address (A.B.C.D, A.B.C.D/LEN or an IPv6 CIDR)",
                        source.describe()
                    )))
                }
            },
        };
        match addr {
            IpAddr::V4(_) => {
                if !c.ipv4.is_empty() {
                    return Err(CniError::config(format!(
                        "{}: more than one IPv4 address ({}, {ip}); an interface takes one",
                        source.describe(),
                        c.ipv4
                    )));
                }
                c.ipv4 = text;
            }
            IpAddr::V6(_) => {
                if !text.contains('/') {
                    return Err(CniError::config(format!(
                        "{}: IPv6 address \"{ip}\" needs a prefix length (e.g. {ip}/64)",
                        source.describe()
                    )));
                }
                c.ipv6.push(text);
            }
        }
    }
    let mac = conf
        .runtime_config
        .mac
        .clone()
        .filter(|m| !m.is_empty())
        .or_else(|| {
            args_cni
                .and_then(|a| a.mac.clone())
                .filter(|m| !m.is_empty())
        })
        .or_else(|| cni_args.mac.clone());
    if let Some(m) = mac {
        if !is_mac(&m) {
            return Err(CniError::config(format!(
                "mac \"{m}\" is not aa:bb:cc:dd:ee:ff"
            )));
        }
        c.mac = m.to_ascii_lowercase();
    }
    if let Some(g) = &cni_args.gateway {
        c.gateway = Some(g.parse().map_err(|_| {
            CniError::env(format!("CNI_ARGS GATEWAY \"{g}\" is not an IP address"))
        })?);
    }
    Ok((c, source))
}

pub fn is_mac(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 6
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.chars().all(|c| c.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conf(extra: &str) -> NetConf {
        let s = format!(
            r#"{{"cniVersion":"1.0.0","name":"blue-web","type":"weft-cni","tenant":"blue","network":"web"{extra}}}"#
        );
        NetConf::parse(s.as_bytes()).unwrap()
    }

    #[test]
    fn defaults() {
        let c = conf("");
        assert_eq!(c.agent_socket, PathBuf::from(DEFAULT_SOCKET));
        assert_eq!(c.state_dir, PathBuf::from(DEFAULT_STATE_DIR));
        assert_eq!(c.log_level, LogLevel::Error);
        assert_eq!(c.timeout_seconds, 60);
        assert!(c.default_route);
        assert!(!conf(r#","defaultRoute":false"#).default_route);
        assert!(c.attachments.is_none());
    }

    #[test]
    fn full_config() {
        let c = conf(
            r#","endpointGroup":"app","agentSocket":"/tmp/x.sock","logFile":"/tmp/l","logLevel":"debug","mtu":1400,
            "attachments":{"backend":"webhook","url":"http://127.0.0.1:1/a","timeoutMs":300}"#,
        );
        assert_eq!(c.endpoint_group, "app");
        assert_eq!(c.log_level, LogLevel::Debug);
        assert_eq!(
            c.attachments,
            Some(Attachments::Webhook {
                url: "http://127.0.0.1:1/a".into(),
                timeout_ms: 300
            })
        );
        let c = conf(r#","attachments":{"backend":"netmaster","url":"http://10.0.0.1:9999/"}"#);
        assert_eq!(
            c.attachments.unwrap().endpoint(),
            (
                "http://10.0.0.1:9999/api/v1/cni/attachments".to_string(),
                5000
            )
        );
    }

    #[test]
    fn malformed_configs_name_the_problem() {
        let cases: &[(&str, u32, &str)] = &[
            ("", 6, "stdin is empty"),
            ("{not json", 6, "not JSON"),
            ("[1]", 7, "JSON object"),
            (r#"{"name":"n","type":"t"}"#, 7, "\"cniVersion\" is missing"),
            (
                r#"{"cniVersion":"1.0.0","type":"t"}"#,
                7,
                "\"name\" is missing",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","type":"t","network":"w"}"#,
                7,
                "\"tenant\" is required",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","type":"t","tenant":"b"}"#,
                7,
                "\"network\" is required",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","type":"t","tenant":"b","network":"w","mtu":"big"}"#,
                7,
                "field \"mtu\"",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","type":"t","tenant":"b","network":"w","logLevel":"loud"}"#,
                7,
                "field \"logLevel\"",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","type":"t","attachments":{"backend":"carrier-pigeon"}}"#,
                7,
                "carrier-pigeon",
            ),
            (
                r#"{"cniVersion":"1.0.0","name":"n","type":"t","attachments":{"backend":"webhook","url":"ftp://x"}}"#,
                7,
                "only http://",
            ),
        ];
        for (input, code, needle) in cases {
            let e = NetConf::parse(input.as_bytes()).unwrap_err();
            assert_eq!(e.code, *code, "{input}: {e}");
            assert!(e.details.contains(needle), "{input}: {e}");
        }
    }

    #[test]
    fn versions() {
        for v in SUPPORTED_VERSIONS {
            check_version(Command::Add, v).unwrap();
        }
        let e = check_version(Command::Add, "0.2.0").unwrap_err();
        assert_eq!(e.code, 1);
        assert!(e.details.contains("0.3.1"), "{e}");
        assert_eq!(check_version(Command::Add, "2.0.0").unwrap_err().code, 1);
        assert_eq!(check_version(Command::Check, "0.3.1").unwrap_err().code, 1);
        check_version(Command::Check, "0.4.0").unwrap();
        assert_eq!(check_version(Command::Status, "1.0.0").unwrap_err().code, 1);
        assert_eq!(check_version(Command::Gc, "0.4.0").unwrap_err().code, 1);
        check_version(Command::Gc, "1.1.0").unwrap();
    }

    #[test]
    fn env_requirements() {
        let mut e = Env {
            command: "ADD".into(),
            container_id: "abc".into(),
            netns: "/var/run/netns/x".into(),
            ifname: "eth0".into(),
            ..Default::default()
        };
        e.require(Command::Add).unwrap();
        e.netns.clear();
        assert!(e
            .require(Command::Add)
            .unwrap_err()
            .details
            .contains("CNI_NETNS"));
        e.require(Command::Del).unwrap();
        e.ifname = "a/b".into();
        assert_eq!(e.require(Command::Del).unwrap_err().code, 4);
        e.ifname = "eth0".into();
        e.container_id = "bad id".into();
        assert!(e
            .require(Command::Del)
            .unwrap_err()
            .details
            .contains("CNI_CONTAINERID"));
        assert_eq!(Command::parse("FROB").unwrap_err().code, 4);
    }

    #[test]
    fn cni_args() {
        let a = CniArgs::parse(
            "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;K8S_POD_UID=u;IP=10.1.1.5/24,fd00::5/64;GATEWAY=10.1.1.254;FOO=bar",
        )
        .unwrap();
        assert_eq!(a.pod_name, "p");
        assert_eq!(a.pod_namespace, "ns");
        assert_eq!(a.pod_uid, "u");
        assert_eq!(a.ip, vec!["10.1.1.5/24", "fd00::5/64"]);
        assert_eq!(a.gateway.as_deref(), Some("10.1.1.254"));
        let e = CniArgs::parse("FOO=bar").unwrap_err();
        assert!(
            e.details.contains("FOO") && e.details.contains("IgnoreUnknown"),
            "{e}"
        );
        assert!(CniArgs::parse("novalue")
            .unwrap_err()
            .details
            .contains("KEY=VALUE"));
        assert_eq!(CniArgs::parse("").unwrap(), CniArgs::default());
    }

    #[test]
    fn precedence_capability_then_args_then_cni_args() {
        let env = CniArgs::parse("IP=10.1.1.7;MAC=02:00:00:00:00:07").unwrap();
        let all = conf(
            r#","runtimeConfig":{"ips":["10.1.1.5/24"],"mac":"02:00:00:00:00:05"},"args":{"cni":{"ips":["10.1.1.6"],"mac":"02:00:00:00:00:06"}}"#,
        );
        let (c, s) = choose(&all, &env).unwrap();
        assert_eq!(
            (c.ipv4.as_str(), c.mac.as_str(), s),
            ("10.1.1.5/24", "02:00:00:00:00:05", Source::Capability)
        );
        let args = conf(r#","args":{"cni":{"ips":["10.1.1.6"],"mac":"02:00:00:00:00:06"}}"#);
        let (c, s) = choose(&args, &env).unwrap();
        assert_eq!(
            (c.ipv4.as_str(), c.mac.as_str(), s),
            ("10.1.1.6", "02:00:00:00:00:06", Source::Args)
        );
        let (c, s) = choose(&conf(""), &env).unwrap();
        assert_eq!(
            (c.ipv4.as_str(), c.mac.as_str(), s),
            ("10.1.1.7", "02:00:00:00:00:07", Source::CniArgs)
        );
        let (c, s) = choose(&conf(""), &CniArgs::default()).unwrap();
        assert_eq!((c.ipv4.as_str(), c.mac.as_str(), s), ("", "", Source::None));
        // An empty capability list does not hide args.
        let (c, _) = choose(
            &conf(r#","runtimeConfig":{"ips":[]},"args":{"cni":{"ips":["10.1.1.6"]}}"#),
            &env,
        )
        .unwrap();
        assert_eq!(c.ipv4, "10.1.1.6");
    }

    #[test]
    fn bad_choices() {
        let e = choose(
            &conf(r#","runtimeConfig":{"ips":["10.1.1.5","10.1.1.6"]}"#),
            &CniArgs::default(),
        )
        .unwrap_err();
        assert!(e.details.contains("more than one IPv4"), "{e}");
        let e = choose(
            &conf(r#","runtimeConfig":{"ips":["ten"]}"#),
            &CniArgs::default(),
        )
        .unwrap_err();
        assert!(
            e.details.contains("runtimeConfig.ips") && e.details.contains("\"ten\""),
            "{e}"
        );
        let e = choose(
            &conf(r#","args":{"cni":{"ips":["fd00::1"]}}"#),
            &CniArgs::default(),
        )
        .unwrap_err();
        assert!(e.details.contains("prefix length"), "{e}");
        let e = choose(
            &conf(r#","runtimeConfig":{"mac":"zz"}"#),
            &CniArgs::default(),
        )
        .unwrap_err();
        assert!(e.details.contains("\"zz\""), "{e}");
        let (c, _) = choose(
            &conf(r#","runtimeConfig":{"ips":["10.1.1.5/24","fd00::5/64"]}"#),
            &CniArgs::default(),
        )
        .unwrap();
        assert_eq!(c.ipv6, vec!["fd00::5/64"]);
    }
}
