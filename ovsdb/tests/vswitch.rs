//! The client and the Open_vSwitch helpers against a real ovsdb-server and ovs-vswitchd.

use std::collections::BTreeMap;
use std::time::Duration;

use ovsdb::vswitch::{self, BridgeSpec, PortKind, PortSpec};
use ovsdb::{Client, Error};
use serde_json::json;
use testsupport::{unique_name, Ovs};

fn br(name: &str) -> BridgeSpec {
    BridgeSpec {
        name: name.into(),
        datapath_type: "netdev".into(),
        protocols: vec!["OpenFlow13".into()],
        fail_mode: Some("secure".into()),
        external_ids: BTreeMap::from([("weft".into(), "test".into())]),
        other_config: BTreeMap::new(),
    }
}

fn port(bridge: &str, name: &str, kind: PortKind) -> PortSpec {
    PortSpec {
        bridge: bridge.into(),
        name: name.into(),
        kind,
        tag: None,
        trunks: vec![],
        external_ids: BTreeMap::from([("weft-endpoint".into(), format!("ep-{name}"))]),
        ofport_request: None,
    }
}

#[tokio::test]
async fn rpc_basics_and_errors_that_name_the_operation() {
    let ovs = Ovs::start();
    let db = Client::connect(&ovs.db_remote()).await.unwrap();
    db.echo().await.unwrap();
    assert!(db
        .list_dbs()
        .await
        .unwrap()
        .contains(&"Open_vSwitch".to_string()));
    let schema = db.get_schema("Open_vSwitch").await.unwrap();
    assert!(schema["tables"]["Bridge"].is_object());
    let err = db
        .transact(
            "Open_vSwitch",
            vec![
                json!({"op": "select", "table": "Bridge", "where": []}),
                json!({"op": "select", "table": "NoSuchTable", "where": []}),
            ],
        )
        .await
        .unwrap_err();
    match &err {
        Error::Transaction { index, .. } => assert_eq!(*index, 1, "{err}"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        Client::connect("udp:1.2.3.4:5").await,
        Err(Error::BadRemote(_))
    ));
    assert!(matches!(
        Client::connect("unix:/nonexistent/db.sock").await,
        Err(Error::Connect { .. })
    ));
}

#[tokio::test]
async fn bridges_and_ports_idempotently_with_port_numbers() {
    let ovs = Ovs::start();
    let db = Client::connect(&ovs.db_remote()).await.unwrap();
    vswitch::ensure_bridge(&db, &br("br-int")).await.unwrap();
    assert_eq!(
        ovs.vsctl(&["get", "bridge", "br-int", "datapath_type"])
            .trim(),
        "netdev"
    );
    assert_eq!(
        ovs.vsctl(&["get", "bridge", "br-int", "fail_mode"]).trim(),
        "secure"
    );
    assert_eq!(
        ovs.vsctl(&["get", "bridge", "br-int", "protocols"]).trim(),
        "[OpenFlow13]"
    );
    let uuid = ovs.vsctl(&["get", "bridge", "br-int", "_uuid"]);
    vswitch::ensure_bridge(&db, &br("br-int")).await.unwrap();
    assert_eq!(
        ovs.vsctl(&["get", "bridge", "br-int", "_uuid"]),
        uuid,
        "recreated"
    );
    // A changed spec updates in place.
    let mut spec = br("br-int");
    spec.fail_mode = Some("standalone".into());
    vswitch::ensure_bridge(&db, &spec).await.unwrap();
    assert_eq!(
        ovs.vsctl(&["get", "bridge", "br-int", "fail_mode"]).trim(),
        "standalone"
    );
    assert_eq!(ovs.vsctl(&["get", "bridge", "br-int", "_uuid"]), uuid);

    // Internal and VXLAN ports get numbers.
    vswitch::ensure_port(&db, &port("br-int", "int0", PortKind::Internal))
        .await
        .unwrap();
    let vx = PortKind::Vxlan {
        local_ip: Some("192.0.2.1".into()),
        remote_ip: "flow".into(),
        key: "flow".into(),
        dst_port: None,
    };
    vswitch::ensure_port(&db, &port("br-int", "vxlan0", vx))
        .await
        .unwrap();
    let a = vswitch::ofport(&db, "int0", Duration::from_secs(5))
        .await
        .unwrap();
    let b = vswitch::ofport(&db, "vxlan0", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(a > 0 && b > 0 && a != b);
    assert_eq!(
        ovs.vsctl(&["get", "interface", "vxlan0", "options:remote_ip"])
            .trim(),
        "flow"
    );

    // A veth end as a system port.
    let veth = unique_name("ov");
    ovs.netns().exec(&[
        "ip",
        "link",
        "add",
        &veth,
        "type",
        "veth",
        "peer",
        "name",
        &format!("{veth}p"),
    ]);
    let mut p = port("br-int", &veth, PortKind::System);
    p.tag = Some(42);
    vswitch::ensure_port(&db, &p).await.unwrap();
    let c = vswitch::ofport(&db, &veth, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(c > 0);
    assert_eq!(ovs.vsctl(&["get", "port", &veth, "tag"]).trim(), "42");
    // Again: same port, updated in place.
    p.tag = None;
    vswitch::ensure_port(&db, &p).await.unwrap();
    assert_eq!(ovs.vsctl(&["get", "port", &veth, "tag"]).trim(), "[]");
    assert_eq!(
        vswitch::ofport(&db, &veth, Duration::from_secs(5))
            .await
            .unwrap(),
        c
    );

    let ports = vswitch::ports(&db, "br-int").await.unwrap();
    let names: Vec<&str> = ports.iter().map(|p| p.name.as_str()).collect();
    assert!(
        names.contains(&"int0") && names.contains(&"vxlan0") && names.contains(&veth.as_str()),
        "{names:?}"
    );
    let v = ports.iter().find(|p| p.name == veth).unwrap();
    assert_eq!(v.ofport, Some(c));
    assert_eq!(v.external_ids["weft-endpoint"], format!("ep-{veth}"));

    // A port on another bridge is refused, not moved.
    vswitch::ensure_bridge(&db, &br("br-other")).await.unwrap();
    let err = vswitch::ensure_port(&db, &port("br-other", &veth, PortKind::System))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("is on bridge br-int"), "{err}");
    // Unknown bridge.
    let err = vswitch::ensure_port(&db, &port("br-nope", "x1", PortKind::Internal))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("br-nope does not exist"), "{err}");

    assert!(vswitch::delete_port(&db, "br-int", &veth).await.unwrap());
    assert!(!vswitch::delete_port(&db, "br-int", &veth).await.unwrap());
    assert!(!ovs.vsctl(&["list-ports", "br-int"]).contains(&veth));
    assert!(vswitch::delete_bridge(&db, "br-other").await.unwrap());
    assert!(!vswitch::delete_bridge(&db, "br-other").await.unwrap());
    ovs.netns().exec(&["ip", "link", "del", &veth]);
}

#[tokio::test]
async fn a_missing_interface_is_reported_with_ovs_reason() {
    let ovs = Ovs::start();
    let db = Client::connect(&ovs.db_remote()).await.unwrap();
    vswitch::ensure_bridge(&db, &br("br-int")).await.unwrap();
    vswitch::ensure_port(&db, &port("br-int", "nosuchdev0", PortKind::System))
        .await
        .unwrap();
    let err = vswitch::ofport(&db, "nosuchdev0", Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nosuchdev0"), "{err}");
}

#[tokio::test]
async fn monitors_see_changes_and_a_dead_server_fails_calls() {
    let ovs = Ovs::start();
    let db = Client::connect(&ovs.db_remote()).await.unwrap();
    vswitch::ensure_bridge(&db, &br("br-int")).await.unwrap();
    let (initial, mut updates) = db
        .monitor(
            "Open_vSwitch",
            "ports",
            json!({"Port": {"columns": ["name"]}}),
        )
        .await
        .unwrap();
    assert!(initial["Port"].is_object(), "{initial}");
    ovs.vsctl(&[
        "add-port",
        "br-int",
        "mon0",
        "--",
        "set",
        "interface",
        "mon0",
        "type=internal",
    ]);
    let upd = tokio::time::timeout(Duration::from_secs(5), updates.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(upd.to_string().contains("mon0"), "{upd}");
    db.monitor_cancel("ports").await.unwrap();

    // ovsdb-server dies: calls fail instead of hanging.
    let pid = std::fs::read_to_string(ovs.dir().join("ovsdb-server.pid")).unwrap();
    std::process::Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap();
    let r = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match db.echo().await {
                Err(e) => return e,
                Ok(()) => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    })
    .await
    .expect("calls must fail once the server is gone");
    assert_eq!(r, Error::Closed);
    assert!(db.is_closed());
}
