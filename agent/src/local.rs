//! A container interface this host holds ([`LocalPort`]), with typed values. Its JSON form is
//! kept in the OVS port's `external_ids`, so that a restarted agent knows the port again without
//! asking anyone; that form is the one older agents wrote (addresses and MACs as strings).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use weft_api::model::Endpoint;

/// A route inside the container: via a gateway, or straight out of the interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub dst: IpNet,
    pub gateway: Option<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LocalPort {
    pub endpoint_id: String,
    pub container_id: String,
    pub interface_name: String,
    pub host_interface: String,
    /// The container's namespace; empty when the interface was left in the host's namespace
    /// for the runtime to move (Docker).
    pub netns: String,
    /// The bridge the port is on (the integration bridge, or a bare bridge).
    pub bridge: String,
    /// netmaster's record (tenant, network, group, MAC, address); None on a bare bridge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<Endpoint>,
    /// Bare-bridge mode: the port's VLAN tag (0: none).
    #[serde(default)]
    pub vlan: u16,
    #[serde(with = "mac_text")]
    pub mac: [u8; 6],
    /// With prefix length.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_text")]
    pub ipv4: Option<Ipv4Net>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "opt_text")]
    pub gateway: Option<Ipv4Addr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ipv6: Vec<Ipv6Net>,
    pub mtu: u32,
    #[serde(default, skip_serializing_if = "Vec::is_empty", with = "routes_text")]
    pub routes: Vec<Route>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Not stored: read from OVSDB.
    #[serde(skip)]
    pub ofport: u32,
}

impl LocalPort {
    /// The tenant network's key (`tenant:network`), when on one.
    pub fn network_key(&self) -> Option<String> {
        self.endpoint
            .as_ref()
            .map(|e| crate::hoststate::scoped_key(&e.tenant_name, &e.network_name))
    }
}

/// `aa:bb:cc:dd:ee:ff`.
mod mac_text {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(m: &[u8; 6], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&weft_policy::fmt_mac(m))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 6], D::Error> {
        let t = String::deserialize(d)?;
        weft_policy::parse_mac(&t).ok_or_else(|| {
            serde::de::Error::custom(format!("MAC \"{t}\" is not aa:bb:cc:dd:ee:ff"))
        })
    }
}

/// An optional value as its text; absent or "" is None.
mod opt_text {
    use std::fmt::Display;
    use std::str::FromStr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<T: Display, S: Serializer>(v: &Option<T>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.collect_str(v),
            None => s.serialize_str(""),
        }
    }

    pub fn deserialize<'de, T, D>(d: D) -> Result<Option<T>, D::Error>
    where
        T: FromStr,
        T::Err: Display,
        D: Deserializer<'de>,
    {
        let t = String::deserialize(d)?;
        if t.is_empty() {
            return Ok(None);
        }
        t.parse()
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("\"{t}\": {e}")))
    }
}

/// Routes as `[dst, gateway]` pairs of text, "" for no gateway.
mod routes_text {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::Route;

    pub fn serialize<S: Serializer>(v: &[Route], s: S) -> Result<S::Ok, S::Error> {
        v.iter()
            .map(|r| {
                (
                    r.dst.to_string(),
                    r.gateway.map(|g| g.to_string()).unwrap_or_default(),
                )
            })
            .collect::<Vec<_>>()
            .serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Route>, D::Error> {
        Vec::<(String, String)>::deserialize(d)?
            .into_iter()
            .map(|(dst, gw)| {
                let dst = dst
                    .parse()
                    .map_err(|_| serde::de::Error::custom(format!("route \"{dst}\"")))?;
                let gateway =
                    if gw.is_empty() {
                        None
                    } else {
                        Some(gw.parse().map_err(|_| {
                            serde::de::Error::custom(format!("route gateway \"{gw}\""))
                        })?)
                    };
                Ok(Route { dst, gateway })
            })
            .collect()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A local port for a netmaster endpoint record, on br-int at `ofport`.
    pub(crate) fn port_for(ep: &Endpoint, ofport: u32) -> LocalPort {
        LocalPort {
            endpoint_id: ep.endpoint_id.clone(),
            container_id: ep.container.clone(),
            interface_name: ep.interface_name.clone(),
            host_interface: format!("weft{ofport}"),
            netns: String::new(),
            bridge: "br-int".into(),
            endpoint: Some(ep.clone()),
            vlan: 0,
            mac: weft_policy::parse_mac(&ep.mac).unwrap_or([2, 0, 0, 0, 0, 1]),
            ipv4: Some(Ipv4Net::new(ep.ipv4, 24).expect("a prefix")),
            gateway: None,
            ipv6: vec![],
            mtu: 1450,
            routes: vec![],
            labels: BTreeMap::new(),
            ofport,
        }
    }

    /// A record as an older agent wrote it reads back, and writes out the same.
    #[test]
    fn record_form_is_stable() {
        let old = r#"{"endpoint_id":"c1-eth0","container_id":"c1","interface_name":"eth0","host_interface":"wf0123456789ab","netns":"/var/run/netns/x","bridge":"br-int","vlan":0,"mac":"02:00:0a:e7:01:02","ipv4":"10.231.1.2/24","gateway":"10.231.1.1","ipv6":["fd00::2/64"],"mtu":1500,"routes":[["10.9.0.0/16","10.231.1.254"],["10.8.0.0/16",""]]}"#;
        let lp: LocalPort = serde_json::from_str(old).unwrap();
        assert_eq!(lp.mac, [2, 0, 10, 231, 1, 2]);
        assert_eq!(lp.ipv4, Some("10.231.1.2/24".parse().unwrap()));
        assert_eq!(lp.gateway, Some(Ipv4Addr::new(10, 231, 1, 1)));
        assert_eq!(lp.routes[1].gateway, None);
        assert_eq!(serde_json::to_string(&lp).unwrap(), old);
        let bare = r#"{"endpoint_id":"c1-eth0","container_id":"c1","interface_name":"eth0","host_interface":"wf0123456789ab","netns":"/var/run/netns/x","bridge":"br0","vlan":7,"mac":"02:00:0a:e7:01:02","mtu":1500}"#;
        let lp: LocalPort = serde_json::from_str(bare).unwrap();
        assert_eq!((lp.ipv4, lp.gateway), (None, None));
        assert_eq!(serde_json::to_string(&lp).unwrap(), bare);
    }

    #[test]
    fn bad_values_are_refused_with_what() {
        let bad = r#"{"endpoint_id":"a","container_id":"a","interface_name":"eth0","host_interface":"wf","netns":"","bridge":"b","mac":"zz","mtu":1500}"#;
        let e = serde_json::from_str::<LocalPort>(bad)
            .unwrap_err()
            .to_string();
        assert!(e.contains("MAC \"zz\""), "{e}");
    }
}
