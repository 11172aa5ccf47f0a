//! The result of ADD, written in the version the config asks for, with a previous plugin's result
//! (`prevResult`) carried on.

use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::config::version_tuple;
use crate::error::{code, CniError};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interface {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub mac: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtu: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpConfig {
    /// CIDR: the interface's address with the prefix length of its subnet.
    pub address: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gateway: Option<String>,
    /// Index into `interfaces`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<usize>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub dst: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gw: Option<String>,
}

/// A result in no particular version.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CniResult {
    pub interfaces: Vec<Interface>,
    pub ips: Vec<IpConfig>,
    pub routes: Vec<Route>,
    pub dns: Option<Value>,
    /// Fields of a previous result this plugin does not know, kept as they were.
    pub other: Map<String, Value>,
}

/// One interface netplugin made, as the result describes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attached {
    pub name: String,
    pub mac: String,
    pub mtu: u32,
    pub sandbox: String,
    pub ipv4: String,
    pub ipv6: Vec<String>,
    /// The default gateway this interface's default route goes through; None: no default route.
    pub default_gateway: Option<String>,
    /// The gateway of the interface's IPv4 subnet, as the result reports it.
    pub gateway: String,
    pub routes: Vec<(String, String)>,
    /// The veth's end on the host (reported after the container's interface, without a sandbox:
    /// `bandwidth` finds it there).
    pub host_interface: String,
}

impl CniResult {
    /// Reads a previous plugin's result (any supported version).
    pub fn from_prev(v: &Value) -> Result<CniResult, CniError> {
        let bad =
            |what: String| CniError::new(code::DECODE_FAILURE, "failed to decode prevResult", what);
        let Value::Object(m) = v else {
            return Err(bad("prevResult is not a JSON object".into()));
        };
        let mut r = CniResult::default();
        for (k, val) in m {
            match k.as_str() {
                "cniVersion" => {}
                "interfaces" => {
                    r.interfaces = serde_json::from_value(val.clone())
                        .map_err(|e| bad(format!("prevResult.interfaces: {e}")))?
                }
                "ips" => {
                    // 0.3/0.4 results carry "version" in each entry; it is derived on output.
                    let mut list = val.clone();
                    if let Some(a) = list.as_array_mut() {
                        for e in a {
                            if let Some(o) = e.as_object_mut() {
                                o.remove("version");
                            }
                        }
                    }
                    r.ips = serde_json::from_value(list)
                        .map_err(|e| bad(format!("prevResult.ips: {e}")))?
                }
                "routes" => {
                    r.routes = serde_json::from_value(val.clone())
                        .map_err(|e| bad(format!("prevResult.routes: {e}")))?
                }
                "dns" => r.dns = Some(val.clone()),
                _ => {
                    r.other.insert(k.clone(), val.clone());
                }
            }
        }
        Ok(r)
    }

    /// Adds one interface (its addresses and routes) at the end.
    pub fn push(&mut self, a: &Attached) {
        let idx = self.interfaces.len();
        self.interfaces.push(Interface {
            name: a.name.clone(),
            mac: a.mac.clone(),
            mtu: (a.mtu != 0).then_some(a.mtu),
            sandbox: Some(a.sandbox.clone()),
        });
        if !a.host_interface.is_empty() {
            self.interfaces.push(Interface {
                name: a.host_interface.clone(),
                ..Default::default()
            });
        }
        if !a.ipv4.is_empty() {
            self.ips.push(IpConfig {
                address: a.ipv4.clone(),
                gateway: Some(a.gateway.clone()).filter(|g| !g.is_empty()),
                interface: Some(idx),
            });
        }
        for v6 in &a.ipv6 {
            self.ips.push(IpConfig {
                address: v6.clone(),
                gateway: None,
                interface: Some(idx),
            });
        }
        if let Some(gw) = &a.default_gateway {
            let dst = if gw.contains(':') {
                "::/0"
            } else {
                "0.0.0.0/0"
            };
            self.routes.push(Route {
                dst: dst.into(),
                gw: Some(gw.clone()),
            });
        }
        for (dst, gw) in &a.routes {
            self.routes.push(Route {
                dst: dst.clone(),
                gw: Some(gw.clone()).filter(|g| !g.is_empty()),
            });
        }
    }

    /// The result as JSON in `version` (one of the supported versions).
    pub fn render(&self, version: &str) -> Value {
        let old = version_tuple(version) < Some((1, 0, 0));
        let with_mtu = version_tuple(version) >= Some((1, 1, 0));
        let mut m = self.other.clone();
        m.insert("cniVersion".into(), json!(version));
        let ifaces: Vec<Value> = self
            .interfaces
            .iter()
            .map(|i| {
                let mut i = i.clone();
                if !with_mtu {
                    i.mtu = None;
                }
                serde_json::to_value(i).expect("interface serialises")
            })
            .collect();
        m.insert("interfaces".into(), Value::Array(ifaces));
        let ips: Vec<Value> = self
            .ips
            .iter()
            .map(|ip| {
                let mut v = serde_json::to_value(ip).expect("ip serialises");
                if old {
                    let fam = if ip.address.contains(':') { "6" } else { "4" };
                    v.as_object_mut()
                        .expect("object")
                        .insert("version".into(), json!(fam));
                }
                v
            })
            .collect();
        m.insert("ips".into(), Value::Array(ips));
        if !self.routes.is_empty() {
            m.insert(
                "routes".into(),
                serde_json::to_value(&self.routes).expect("routes serialise"),
            );
        }
        m.insert("dns".into(), self.dns.clone().unwrap_or_else(|| json!({})));
        Value::Object(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eth0() -> Attached {
        Attached {
            name: "eth0".into(),
            mac: "02:00:0a:e7:01:05".into(),
            mtu: 1450,
            sandbox: "/var/run/netns/c1".into(),
            ipv4: "10.231.1.5/24".into(),
            ipv6: vec!["fd00::5/64".into()],
            default_gateway: Some("10.231.1.1".into()),
            gateway: "10.231.1.1".into(),
            routes: vec![("10.96.0.0/12".into(), "".into())],
            host_interface: "wf0123456789ab".into(),
        }
    }

    #[test]
    fn v1_result() {
        let mut r = CniResult::default();
        r.push(&eth0());
        let v = r.render("1.0.0");
        assert_eq!(
            v,
            json!({
                "cniVersion": "1.0.0",
                "interfaces": [
                    {"name":"eth0","mac":"02:00:0a:e7:01:05","sandbox":"/var/run/netns/c1"},
                    {"name":"wf0123456789ab"}
                ],
                "ips": [
                    {"address":"10.231.1.5/24","gateway":"10.231.1.1","interface":0},
                    {"address":"fd00::5/64","interface":0}
                ],
                "routes": [{"dst":"0.0.0.0/0","gw":"10.231.1.1"},{"dst":"10.96.0.0/12"}],
                "dns": {}
            })
        );
        // 1.1.0 adds the interface's MTU.
        assert_eq!(r.render("1.1.0")["interfaces"][0]["mtu"], 1450);
    }

    #[test]
    fn old_results_carry_ip_version() {
        let mut r = CniResult::default();
        r.push(&eth0());
        for v in ["0.3.0", "0.3.1", "0.4.0"] {
            let out = r.render(v);
            assert_eq!(out["cniVersion"], v);
            assert_eq!(out["ips"][0]["version"], "4");
            assert_eq!(out["ips"][1]["version"], "6");
            assert!(out["interfaces"][0].get("mtu").is_none());
        }
        assert!(r.render("1.0.0")["ips"][0].get("version").is_none());
    }

    #[test]
    fn prev_result_is_carried_on() {
        let prev = json!({
            "cniVersion": "0.4.0",
            "interfaces": [{"name":"lo0","sandbox":"/x"}],
            "ips": [{"version":"4","address":"192.0.2.2/24","interface":0}],
            "routes": [{"dst":"192.0.2.0/24"}],
            "dns": {"nameservers":["192.0.2.53"]},
            "custom": 1
        });
        let mut r = CniResult::from_prev(&prev).unwrap();
        r.push(&eth0());
        let out = r.render("0.4.0");
        assert_eq!(out["interfaces"][0]["name"], "lo0");
        assert_eq!(out["interfaces"][1]["name"], "eth0");
        assert_eq!(out["interfaces"][2]["name"], "wf0123456789ab");
        assert_eq!(out["ips"][1]["interface"], 1);
        assert_eq!(out["routes"][0]["dst"], "192.0.2.0/24");
        assert_eq!(out["dns"]["nameservers"][0], "192.0.2.53");
        assert_eq!(out["custom"], 1);
        let e = CniResult::from_prev(&json!({"ips": 3})).unwrap_err();
        assert_eq!(e.code, 6);
        assert!(e.details.contains("prevResult.ips"));
    }
}
