//! Packet-in and packet-out through the OpenFlow driver against a real (userspace) Open vSwitch:
//! a flow sends to the controller with userdata, a packet-out injects a packet into the
//! pipeline, and the packet-in arrives with the userdata, the registers the flow set, and the
//! whole packet. A packet-out the switch refuses comes back as an error.

use std::time::Duration;

use ofproto::action::{Action, Controller2};
use ofproto::instruction::Instruction;
use ofproto::msg::{FlowMod, Message, PacketOut};
use ofproto::oxm::{Field, Match};
use testsupport::frames::{icmp_echo, mac};
use testsupport::Ovs;
use tokio_util::sync::CancellationToken;
use weft_agent::ofdriver::{OfDriver, OfError};

const OFPP_TABLE: u32 = 0xffff_fff9;
const OFPP_CONTROLLER: u32 = 0xffff_fffd;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_packet_out_comes_back_as_a_packet_in_with_its_userdata() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let ovs = Ovs::start();
    ovs.add_bridge("br-int");
    let cancel = CancellationToken::new();
    let driver = OfDriver::spawn(ovs.mgmt_socket("br-int"), cancel.clone());
    let mut gen = driver.generation();
    tokio::time::timeout(Duration::from_secs(10), gen.wait_for(|g| *g != 0))
        .await
        .expect("connected in time")
        .unwrap();
    let mut packet_ins = driver.packet_ins();

    let userdata = vec![0xde, 0xad, 0xbe, 0xef, 0x01];
    let mut flow = FlowMod::add(
        0,
        100,
        Match::new(),
        vec![Instruction::ApplyActions(vec![
            Action::set_field(Field::Reg(3), 0x42).unwrap(),
            Action::Controller2(Controller2::with_userdata(userdata.clone())),
        ])],
    );
    flow.cookie = 0xc0ffee;
    driver
        .bundle(vec![Message::FlowMod(flow.clone())])
        .await
        .expect("the switch takes the flow");
    // OVS prints the action as we do.
    let flows = ovs.ofctl("dump-flows", "br-int", &["-O", "OpenFlow13"]);
    let ours = Action::Controller2(Controller2::with_userdata(userdata.clone())).to_string();
    assert_eq!(ours, "controller(userdata=de.ad.be.ef.01)");
    assert!(flows.contains(&ours), "{flows}");

    let frame = icmp_echo(
        mac("02:00:00:00:00:01"),
        mac("02:00:00:00:00:02"),
        "10.1.0.1".parse().unwrap(),
        "10.1.0.2".parse().unwrap(),
        1,
    );
    driver
        .packet_out(PacketOut::new(
            OFPP_CONTROLLER,
            vec![Action::output(OFPP_TABLE)],
            frame.clone(),
        ))
        .await
        .expect("the switch takes the packet-out");
    let pin = tokio::time::timeout(Duration::from_secs(10), packet_ins.recv())
        .await
        .expect("a packet-in in time")
        .expect("no packet-in lost");
    assert_eq!(pin.userdata.as_deref(), Some(&userdata[..]));
    assert_eq!(pin.data, frame);
    assert_eq!(pin.total_len as usize, frame.len());
    assert_eq!(pin.reason, 1, "OFPR_ACTION");
    assert_eq!(pin.table_id, 0);
    assert_eq!(pin.cookie, 0xc0ffee);
    assert_eq!(
        pin.match_.get(Field::Reg(3)).map(|f| f.value()),
        Some(0x42),
        "{}",
        pin.match_
    );
    assert_eq!(
        pin.match_.get(Field::InPort).map(|f| f.value()),
        Some(u128::from(OFPP_CONTROLLER)),
        "{}",
        pin.match_
    );

    // A packet-out to a group that does not exist is refused, and said so.
    let err = driver
        .packet_out(PacketOut::new(
            OFPP_CONTROLLER,
            vec![Action::Group(999)],
            frame.clone(),
        ))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OfError::Refused(why) if why.contains("OFPBAC_BAD_OUT_GROUP")),
        "{err}"
    );
    cancel.cancel();
}
