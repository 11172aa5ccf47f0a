//! One simulated host for agent tests: a real Open vSwitch in its own network namespace, netmaster
//! (embedded store) and the agent in-process, both on a tokio runtime whose threads live in that
//! namespace, and an uplink veth whose far end (`up0p`) stands for the physical network.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use testsupport::{Netns, Ovs, TempDir};
use tonic::transport::Channel;
use weft_agent::{Agent, Config};
use weft_api::proto::endpoint as pb;
use weft_api::proto::endpoint::endpoint_service_client::EndpointServiceClient;

pub const SPEC: &str = r#"{
  "global": { "vlans": "100-199", "vxlans": "5000-5999" },
  "tenants": [ { "tenantName": "blue" }, { "tenantName": "red" } ],
  "networks": [
    { "tenantName": "blue", "networkName": "web", "encap": "vlan", "pktTag": 100,
      "subnet": "10.231.1.0/24", "gateway": "10.231.1.1" },
    { "tenantName": "blue", "networkName": "db", "encap": "vlan", "pktTag": 101,
      "subnet": "10.231.2.0/24", "gateway": "10.231.2.1" },
    { "tenantName": "red", "networkName": "web", "encap": "vxlan", "pktTag": 5001,
      "subnet": "10.231.1.0/24", "gateway": "10.231.1.1" }
  ]
}"#;

/// A runtime whose threads are in `ovs`'s namespace. Call from the test's own thread.
pub fn runtime_in(ovs: &Ovs) -> tokio::runtime::Runtime {
    testsupport::watchdog(std::time::Duration::from_secs(15 * 60));
    ovs.netns().enter_current_thread();
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

pub struct Host {
    pub agent: Option<Agent>,
    pub cfg: Config,
    pub nm: weft_controller::server::Running,
    pub rest: String,
    pub client: EndpointServiceClient<Channel>,
    pub dir: TempDir,
}

impl Host {
    pub async fn start(ovs: &Ovs, spec: &str) -> Host {
        Host::start_with(ovs, spec, |_| {}).await
    }

    /// [`Host::start`] with the agent's configuration changed by `tweak` first.
    pub async fn start_with(ovs: &Ovs, spec: &str, tweak: impl FnOnce(&mut Config)) -> Host {
        ovs.netns().exec(&[
            "ip", "link", "add", "up0", "type", "veth", "peer", "name", "up0p",
        ]);
        ovs.netns().exec(&["ip", "link", "set", "up0", "up"]);
        ovs.netns().exec(&["ip", "link", "set", "up0p", "up"]);
        let dir = TempDir::new("weft-agent-test-");
        let nm = weft_controller::server::spawn(weft_controller::server::local_config(
            &dir.path().join("nm"),
        ))
        .await
        .unwrap();
        let rest = format!("http://{}", nm.bound.rest);
        let r = reqwest::Client::new()
            .post(format!("{rest}/api/v1/intent"))
            .header("content-type", "application/json")
            .body(spec.to_string())
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{:?}", r.text().await);
        let cfg = Config {
            host: "host1".into(),
            netmaster: format!("http://{}", nm.bound.grpc),
            ovsdb: ovs.db_remote(),
            ovs_rundir: ovs.dir().to_path_buf(),
            bridge: "br-int".into(),
            datapath: "netdev".into(),
            uplink: Some("up0".into()),
            vtep_ip: "127.0.0.1".parse().unwrap(),
            socket: dir.path().join("netplugin.sock"),
            listen_tcp: None,
            lease_ttl: 10,
            confirm_timeout: Duration::from_secs(10),
            resync_interval: weft_agent::reconcile::RESYNC,
            inspect_listen: Some("127.0.0.1:0".parse().unwrap()),
        };
        let mut cfg = cfg;
        tweak(&mut cfg);
        let agent = Agent::start(cfg.clone()).await.unwrap();
        assert!(
            agent.ready(Duration::from_secs(20)).await,
            "agent not ready"
        );
        let client = weft_agent::client::connect_unix(&cfg.socket).await.unwrap();
        Host {
            agent: Some(agent),
            cfg,
            nm,
            rest,
            client,
            dir,
        }
    }

    pub fn agent(&self) -> &Agent {
        self.agent.as_ref().unwrap()
    }

    /// Stops the agent and starts a new one with the same configuration.
    pub async fn restart_agent(&mut self) {
        drop(self.agent.take());
        tokio::time::sleep(Duration::from_millis(50)).await;
        let agent = Agent::start(self.cfg.clone()).await.unwrap();
        assert!(
            agent.ready(Duration::from_secs(20)).await,
            "agent not ready after restart"
        );
        self.agent = Some(agent);
        self.client = weft_agent::client::connect_unix(&self.cfg.socket)
            .await
            .unwrap();
    }

    pub fn socket(&self) -> PathBuf {
        self.cfg.socket.clone()
    }

    pub async fn attach(
        &self,
        c: &Netns,
        container: &str,
        ifname: &str,
        tenant: &str,
        network: &str,
    ) -> pb::Interface {
        self.try_attach(pb::AttachRequest {
            container_id: container.into(),
            netns: c.path().display().to_string(),
            interface_name: ifname.into(),
            tenant: tenant.into(),
            network: network.into(),
            ..Default::default()
        })
        .await
        .unwrap()
    }

    pub async fn try_attach(&self, req: pb::AttachRequest) -> Result<pb::Interface, tonic::Status> {
        let r = self.client.clone().attach(req).await?;
        Ok(r.into_inner().interface.unwrap())
    }

    pub async fn detach(&self, container: &str, ifname: &str) -> Vec<String> {
        self.client
            .clone()
            .detach(pb::DetachRequest {
                container_id: container.into(),
                interface_name: ifname.into(),
            })
            .await
            .unwrap()
            .into_inner()
            .removed
    }

    /// netmaster's endpoint records.
    pub async fn nm_endpoints(&self) -> String {
        reqwest::get(format!("{}/api/v1/inspect/endpoints/", self.rest))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

/// `ping -c N -W 1 ADDR` inside `c`; whether every reply came back (`ping` itself exits 0 on one
/// reply out of N, so the count is read from its summary).
pub fn ping(c: &Netns, addr: &str, count: u32) -> bool {
    testsupport::ping_replies(c, addr, count) == u64::from(count)
}

/// `ping -c N -W 1 ADDR` inside `c`; whether no reply at all came back. (`!ping(..)` would hold
/// when a single reply of N was lost.)
pub fn no_reply(c: &Netns, addr: &str, count: u32) -> bool {
    testsupport::ping_replies(c, addr, count) == 0
}

/// The address part of a CIDR.
pub fn ip_of(cidr: &str) -> String {
    cidr.split('/').next().unwrap().to_string()
}
