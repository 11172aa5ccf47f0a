//! Differential test against Open vSwitch's own decoder: every message kind, match field,
//! instruction and action the codec encodes is decoded by `ovs-ofctl ofp-print` without
//! complaint, and OVS prints it as we do.

mod common;

use std::process::Command;

use ofproto::action::Action;
use ofproto::header::Header;
use ofproto::msg::multipart::FlowStatsRequest;
use ofproto::msg::print::print;
use ofproto::msg::*;
use ofproto::oxm::Match;

/// What `ovs-ofctl ofp-print` printed: (stdout, stderr). Its log lines (such as a deprecation
/// notice) go to stderr and are no part of the printout.
fn ovs_print(bytes: &[u8]) -> (String, String) {
    let out = Command::new("ovs-ofctl")
        .args(["-O", "OpenFlow13", "ofp-print", &hex::encode(bytes)])
        .output()
        .expect("ovs-ofctl not found: run scripts/test.sh, which installs openvswitch-switch");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn messages() -> Vec<Message> {
    let (group, meter) = common::group_and_meter();
    let mut v: Vec<Message> = common::flow_corpus()
        .into_iter()
        .map(Message::from)
        .collect();
    let mut del = FlowMod::delete_by_cookie(0x100, 0xff00);
    del.out_port = 3;
    v.push(del.into());
    v.extend([
        group.into(),
        meter.into(),
        Message::Hello(Hello::of13()),
        Message::EchoRequest(vec![1, 2, 3]),
        Message::EchoReply(vec![]),
        Message::FeaturesRequest,
        Message::GetConfigRequest,
        Message::SetConfig(SwitchConfig {
            flags: 0,
            miss_send_len: 128,
        }),
        Message::BarrierRequest,
        Message::BarrierReply,
        Message::GetAsyncRequest,
        Message::RoleRequest(Role {
            role: 2,
            generation_id: 7,
        }),
        Message::TableMod(TableMod {
            table_id: 3,
            config: 0,
        }),
        Message::PortMod(PortMod {
            port_no: 3,
            hw_addr: [0x50, 0x54, 0, 0, 0, 1],
            config: 1,
            mask: 1,
            advertise: 0,
        }),
        Message::PacketOut(PacketOut {
            buffer_id: 0xffff_ffff,
            in_port: 0xffff_fffd,
            actions: vec![Action::output(1)],
            data: vec![0xff; 14],
        }),
        Message::QueueGetConfigRequest { port: 1 },
        MultipartRequest::Desc.into(),
        MultipartRequest::Flow(FlowStatsRequest::all()).into(),
        MultipartRequest::Aggregate(FlowStatsRequest {
            table_id: 2,
            match_: Match::new().in_port(1),
            ..FlowStatsRequest::all()
        })
        .into(),
        MultipartRequest::Table.into(),
        MultipartRequest::PortStats {
            port_no: 0xffff_ffff,
        }
        .into(),
        MultipartRequest::Queue {
            port_no: 0xffff_ffff,
            queue_id: 0xffff_ffff,
        }
        .into(),
        MultipartRequest::Group { group_id: 7 }.into(),
        MultipartRequest::GroupDesc.into(),
        MultipartRequest::GroupFeatures.into(),
        MultipartRequest::Meter { meter_id: 1 }.into(),
        MultipartRequest::MeterConfig { meter_id: 1 }.into(),
        MultipartRequest::MeterFeatures.into(),
        MultipartRequest::PortDesc.into(),
        Message::BundleControl(BundleCtrl {
            bundle_id: 5,
            ctrl_type: BundleCtrlType::OpenRequest,
            flags: bundle_flags::ATOMIC | bundle_flags::ORDERED,
            properties: vec![],
        }),
        Message::BundleAdd(BundleAdd {
            bundle_id: 5,
            flags: bundle_flags::ATOMIC,
            message: Box::new(Message::FlowMod(common::flow_corpus().remove(2))),
        }),
    ]);
    v
}

#[test]
fn ovs_decodes_everything_we_encode_and_prints_it_as_we_do() {
    let mut problems = Vec::new();
    let msgs = messages();
    for (i, m) in msgs.iter().enumerate() {
        let xid = 0x100 + i as u32;
        let bytes = m.to_bytes(xid);
        let (theirs, log) = ovs_print(&bytes);
        let all = format!("{theirs}{log}");
        if all.contains("***") || all.contains("error") && !matches!(m, Message::Error(_)) {
            problems.push(format!(
                "#{i}: OVS could not decode {}:\n{all}",
                hex::encode(&bytes)
            ));
            continue;
        }
        let (h, back) = Message::decode(&bytes).unwrap();
        assert_eq!(&back, m, "#{i} round trip");
        let ours = print(&Header { xid, ..h }, m);
        // Compare line by line, every line of either printout: an empty or short printout of
        // ours differs from OVS's at the first line we lack.
        let lines = |s: &str| -> Vec<String> {
            let mut v: Vec<String> = s.lines().map(|l| l.trim_end().to_string()).collect();
            while v.last().is_some_and(|l| l.is_empty()) {
                v.pop();
            }
            v
        };
        let (mut t, o) = (lines(&theirs), lines(&ours));
        // The one thing we print less: OVS decodes a packet-out's or packet-in's packet into a
        // flow line of its own after the message's line; we print the data's length only. That
        // line, and only it, is left out of the comparison.
        let with_packet = matches!(m, Message::PacketOut(p) if !p.data.is_empty())
            || matches!(m, Message::PacketIn(p) if !p.data.is_empty());
        if with_packet && t.len() == o.len() + 1 && t.last().is_some_and(|l| l.contains("dl_type="))
        {
            t.pop();
        }
        for n in 0..t.len().max(o.len()) {
            if t.get(n) != o.get(n) {
                problems.push(format!(
                    "#{i} line {n} (ovs printed {} lines, we {}):\n  ovs:  {}\n  ours: {}",
                    t.len(),
                    o.len(),
                    t.get(n).map_or("(nothing)", String::as_str),
                    o.get(n).map_or("(nothing)", String::as_str)
                ));
                break;
            }
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} messages differ:\n{}",
        problems.len(),
        msgs.len(),
        problems.join("\n")
    );
}
