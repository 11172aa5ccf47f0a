//! The attachment webhook: an HTTP service that says which networks a pod gets, in dockin's
//! format: `{"code": 0, "message": "...", "data": [{"type", "podIp", "subnetMask", "gateway",
//! "ifName", "master"}]}`. `type` names the Weft network ("network" in the config's tenant, or
//! "tenant/network"); the `master` entry's interface is the one the result reports first, and the
//! only one that gets the default route.

use std::net::Ipv4Addr;

use serde::Deserialize;

use crate::error::{code, CniError};

#[derive(Debug, Clone, Deserialize)]
pub struct Reply {
    pub code: i64,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub data: Vec<Item>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Item {
    #[serde(rename = "type")]
    pub network: String,
    #[serde(default)]
    pub pod_ip: String,
    #[serde(default)]
    pub subnet_mask: String,
    #[serde(default)]
    pub gateway: String,
    pub if_name: String,
    #[serde(default)]
    pub master: bool,
}

/// One interface to attach, from one webhook entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub tenant: String,
    pub network: String,
    pub ifname: String,
    /// "A.B.C.D/LEN" or empty (netmaster allocates).
    pub ipv4: String,
    pub gateway: Option<Ipv4Addr>,
    pub master: bool,
}

fn fail(details: String) -> CniError {
    CniError::new(
        code::WEBHOOK_FAILED,
        "the attachment backend (webhook or netmaster) gave no usable answer",
        details,
    )
}

/// A mask as a prefix length: "255.255.255.0", "24" or "/24".
pub fn prefix_len(mask: &str) -> Option<u8> {
    let m = mask.trim_start_matches('/');
    if let Ok(n) = m.parse::<u8>() {
        return (n <= 32).then_some(n);
    }
    let a: Ipv4Addr = m.parse().ok()?;
    let bits = u32::from(a);
    let len = bits.leading_ones();
    (bits.checked_shl(len).unwrap_or(0) == 0).then_some(len as u8)
}

/// Turns the webhook's body into the interfaces to attach, master first.
pub fn plan(
    body: &[u8],
    url: &str,
    default_tenant: &str,
    cni_ifname: &str,
) -> Result<Vec<Planned>, CniError> {
    let r: Reply = serde_json::from_slice(body)
        .map_err(|e| fail(format!("{url}: the body is not dockin's format: {e}")))?;
    if r.code != 0 {
        return Err(fail(format!("{url}: code {}: {}", r.code, r.message)));
    }
    if r.data.is_empty() {
        return Err(fail(format!(
            "{url}: \"data\" lists no network for this pod"
        )));
    }
    let mut out = vec![];
    for (i, it) in r.data.iter().enumerate() {
        let at = format!("{url}: data[{i}]");
        let (tenant, network) = match it.network.split_once('/') {
            Some((t, n)) => (t.to_string(), n.to_string()),
            None => (default_tenant.to_string(), it.network.clone()),
        };
        if tenant.is_empty() || network.is_empty() {
            return Err(fail(format!(
                "{at}: \"type\" \"{}\" must name a network (\"tenant/network\", or set \"tenant\" in the config)",
                it.network
            )));
        }
        if it.if_name.is_empty() || it.if_name.len() > 15 {
            return Err(fail(format!(
                "{at}: \"ifName\" \"{}\" is not an interface name",
                it.if_name
            )));
        }
        let ipv4 = if it.pod_ip.is_empty() {
            String::new()
        } else {
            let ip: Ipv4Addr = it.pod_ip.parse().map_err(|_| {
                fail(format!(
                    "{at}: \"podIp\" \"{}\" is not an IPv4 address",
                    it.pod_ip
                ))
            })?;
            if it.subnet_mask.is_empty() {
                ip.to_string()
            } else {
                let len = prefix_len(&it.subnet_mask).ok_or_else(|| {
                    fail(format!(
                        "{at}: \"subnetMask\" \"{}\" is not a netmask",
                        it.subnet_mask
                    ))
                })?;
                format!("{ip}/{len}")
            }
        };
        let gateway = if it.gateway.is_empty() {
            None
        } else {
            Some(it.gateway.parse().map_err(|_| {
                fail(format!(
                    "{at}: \"gateway\" \"{}\" is not an IPv4 address",
                    it.gateway
                ))
            })?)
        };
        out.push(Planned {
            tenant,
            network,
            ifname: it.if_name.clone(),
            ipv4,
            gateway,
            master: it.master,
        });
    }
    let masters = out.iter().filter(|p| p.master).count();
    if masters > 1 {
        return Err(fail(format!(
            "{url}: {masters} entries say \"master\": true; one may"
        )));
    }
    if masters == 0 {
        // The runtime's own interface is the master then.
        match out.iter_mut().find(|p| p.ifname == cni_ifname) {
            Some(p) => p.master = true,
            None => out[0].master = true,
        }
    }
    let mut names: Vec<&str> = out.iter().map(|p| p.ifname.as_str()).collect();
    names.sort();
    names.dedup();
    if names.len() != out.len() {
        return Err(fail(format!("{url}: two entries have the same \"ifName\"")));
    }
    out.sort_by_key(|p| !p.master);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks() {
        assert_eq!(prefix_len("255.255.255.0"), Some(24));
        assert_eq!(prefix_len("255.255.0.0"), Some(16));
        assert_eq!(prefix_len("24"), Some(24));
        assert_eq!(prefix_len("/28"), Some(28));
        assert_eq!(prefix_len("255.0.255.0"), None);
        assert_eq!(prefix_len("33"), None);
    }

    #[test]
    fn dockin_reply_master_first() {
        let body = br#"{"code":0,"reqId":"1","message":"success","data":[
            {"type":"db","podIp":"10.231.2.9","subnetMask":"255.255.255.0","gateway":"10.231.2.1","ifName":"net1","master":false},
            {"type":"red/web","podIp":"10.231.1.9","subnetMask":"255.255.255.0","gateway":"10.231.1.1","ifName":"eth0","master":true}]}"#;
        let p = plan(body, "http://h/rm", "blue", "eth0").unwrap();
        assert_eq!(p[0].ifname, "eth0");
        assert_eq!(
            (p[0].tenant.as_str(), p[0].network.as_str()),
            ("red", "web")
        );
        assert_eq!(p[0].ipv4, "10.231.1.9/24");
        assert!(p[0].master && !p[1].master);
        assert_eq!(p[1].tenant, "blue");
        assert_eq!(p[1].gateway, Some("10.231.2.1".parse().unwrap()));
    }

    #[test]
    fn no_master_means_the_runtimes_interface() {
        let body =
            br#"{"code":0,"data":[{"type":"a","ifName":"net1"},{"type":"b","ifName":"eth0"}]}"#;
        let p = plan(body, "u", "t", "eth0").unwrap();
        assert_eq!(p[0].ifname, "eth0");
        assert!(p[0].master);
        assert_eq!(p[1].ipv4, "");
    }

    #[test]
    fn bad_replies() {
        let cases: &[(&[u8], &str)] = &[
            (b"<html>", "not dockin's format"),
            (br#"{"code":3,"message":"no quota"}"#, "no quota"),
            (br#"{"code":0,"data":[]}"#, "no network"),
            (br#"{"code":0,"data":[{"type":"a","ifName":"eth0","podIp":"x"}]}"#, "data[0]: \"podIp\""),
            (br#"{"code":0,"data":[{"type":"a","ifName":"eth0","podIp":"10.0.0.1","subnetMask":"255.0.255.0"}]}"#, "subnetMask"),
            (br#"{"code":0,"data":[{"type":"a","ifName":"eth0","master":true},{"type":"b","ifName":"net1","master":true}]}"#, "one may"),
            (br#"{"code":0,"data":[{"type":"a","ifName":"eth0"},{"type":"b","ifName":"eth0"}]}"#, "same \"ifName\""),
        ];
        for (body, needle) in cases {
            let e = plan(body, "u", "t", "eth0").unwrap_err();
            assert_eq!(e.code, 102);
            assert!(e.details.contains(needle), "{e}");
        }
        let e = plan(
            br#"{"code":0,"data":[{"type":"a","ifName":"eth0"}]}"#,
            "u",
            "",
            "eth0",
        )
        .unwrap_err();
        assert!(e.details.contains("tenant/network"), "{e}");
    }
}
