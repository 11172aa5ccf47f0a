//! Against a real Open vSwitch over a real OpenFlow connection: the session's handshake, a bundle
//! of the whole flow corpus committed atomically, the flows read back both with `ovs-ofctl
//! dump-flows` and with our own FLOW multipart dump; groups and meters likewise; a bad flow in a
//! bundle refused, mapped to the message that caused it, and nothing of that bundle installed.

mod common;

use common::Conn;
use ofproto::instruction::{Instruction, InstructionList};
use ofproto::msg::multipart::FlowStatsRequest;
use ofproto::msg::*;
use ofproto::oxm::Match;
use ofproto::session::Event;
use testsupport::Ovs;

fn switch() -> (Ovs, Conn) {
    let ovs = Ovs::start();
    ovs.add_bridge("br0");
    let conn = Conn::connect(&ovs.mgmt_socket("br0"));
    (ovs, conn)
}

fn barrier(c: &mut Conn) -> Vec<Event> {
    let xid = c.session.send_barrier();
    c.pump_until(|e| matches!(e, Event::Barrier { xid: x } if *x == xid))
}

fn no_errors(events: &[Event]) {
    let errors: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::Error(_)))
        .collect();
    assert!(errors.is_empty(), "switch reported errors: {errors:#?}");
}

/// `priority=..,match actions=..` as we print a flow, to compare with `ovs-ofctl dump-flows`.
fn flow_text(priority: u16, m: &Match, instructions: &[Instruction]) -> String {
    let mut s = format!("priority={priority}");
    let mt = m.to_string();
    if !mt.is_empty() {
        s.push(',');
        s.push_str(&mt);
    }
    format!("{s} actions={}", InstructionList(instructions))
}

/// `ovs-ofctl dump-flows` lines reduced to `priority=... actions=...`, keyed by cookie.
fn ovs_flows(ovs: &Ovs) -> Vec<(u64, String)> {
    let out = ovs.ofctl("dump-flows", "br0", &[]);
    let mut v: Vec<(u64, String)> = out
        .lines()
        .filter(|l| l.contains("cookie="))
        .map(|l| {
            let cookie = l
                .split("cookie=")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap();
            let cookie = u64::from_str_radix(cookie.trim_start_matches("0x"), 16).unwrap();
            let at = l
                .find("priority=")
                .unwrap_or_else(|| l.find(" actions=").unwrap() + 1);
            (cookie, l[at..].trim().to_string())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn corpus_goes_in_as_one_bundle_and_reads_back_as_sent() {
    let (ovs, mut c) = switch();
    let dpid = c.session.features().unwrap().datapath_id;
    assert_ne!(dpid, 0);
    let (group, meter) = common::group_and_meter();
    c.session.send(group.clone());
    c.session.send(meter.clone());
    no_errors(&barrier(&mut c));

    let corpus = common::flow_corpus();
    let id = c
        .session
        .send_bundle(corpus.iter().cloned().map(Message::from));
    let events = c.pump_until(|e| matches!(e, Event::Bundle(_)));
    match events.last() {
        Some(Event::Bundle(o)) => assert!(
            o.is_ok() && o.bundle_id == id,
            "bundle failed: {o:#?}\n{}",
            ovs.log_tail()
        ),
        other => panic!("{other:?}"),
    }

    // What OVS says it holds equals what we sent, printed our way.
    let mut sent: Vec<(u64, String)> = corpus
        .iter()
        .map(|f| (f.cookie, flow_text(f.priority, &f.match_, &f.instructions)))
        .collect();
    sent.sort();
    assert_eq!(ovs_flows(&ovs), sent);

    // Our own dump decodes into the same flows.
    let xid = c
        .session
        .send_request(MultipartRequest::Flow(FlowStatsRequest::all()));
    let events = c.pump_until(|e| matches!(e, Event::Reply { xid: x, .. } if *x == xid));
    let Some(Event::Reply {
        message:
            Message::MultipartReply {
                body: MultipartReply::Flow(flows),
                ..
            },
        ..
    }) = events.last()
    else {
        panic!("no flow dump: {events:#?}");
    };
    let mut dumped: Vec<(u64, String)> = flows
        .iter()
        .map(|f| (f.cookie, flow_text(f.priority, &f.match_, &f.instructions)))
        .collect();
    dumped.sort();
    assert_eq!(dumped, sent);
    for f in &corpus {
        let back = flows.iter().find(|d| d.cookie == f.cookie).unwrap();
        assert_eq!((back.table_id, back.priority), (f.table_id, f.priority));
    }

    // Groups and meters, through ovs-ofctl and through our own multipart requests.
    let groups = ovs.ofctl("dump-groups", "br0", &[]);
    assert!(groups.contains("group_id=7,type=all,bucket=actions=output:1,bucket=actions=output:2,bucket=actions=push_vlan:0x8100,set_field:4106->vlan_vid,output:3"), "{groups}");
    let xid = c.session.send_request(MultipartRequest::GroupDesc);
    let events = c.pump_until(|e| matches!(e, Event::Reply { xid: x, .. } if *x == xid));
    let Some(Event::Reply {
        message:
            Message::MultipartReply {
                body: MultipartReply::GroupDesc(g),
                ..
            },
        ..
    }) = events.last()
    else {
        panic!()
    };
    assert_eq!(g.len(), 1);
    assert_eq!(
        (g[0].group_id, &g[0].buckets),
        (group.group_id, &group.buckets)
    );
    let meters = ovs.ofctl("dump-meters", "br0", &[]);
    assert!(
        meters.contains("meter=3 kbps burst stats bands=\ntype=drop rate=1000 burst_size=100"),
        "{meters}"
    );
    let xid = c.session.send_request(MultipartRequest::MeterConfig {
        meter_id: ofproto::msg::group_meter::METER_ALL,
    });
    let events = c.pump_until(|e| matches!(e, Event::Reply { xid: x, .. } if *x == xid));
    let Some(Event::Reply {
        message:
            Message::MultipartReply {
                body: MultipartReply::MeterConfig(m),
                ..
            },
        ..
    }) = events.last()
    else {
        panic!()
    };
    assert_eq!(
        (m[0].meter_id, m[0].flags, &m[0].bands),
        (meter.meter_id, meter.flags, &meter.bands)
    );

    // Deleting by cookie removes exactly the flows with that cookie.
    c.session.send(FlowMod::delete_by_cookie(0x101, u64::MAX));
    no_errors(&barrier(&mut c));
    assert_eq!(ovs_flows(&ovs).len(), corpus.len() - 1);
}

#[test]
fn a_bad_flow_fails_its_bundle_whole_and_is_named() {
    let (ovs, mut c) = switch();
    // A state first: three flows, each with a cookie of its own.
    let flow = |cookie: u64, port: u32, goto: u8| FlowMod {
        cookie,
        ..FlowMod::add(
            0,
            10,
            Match::new().in_port(port),
            vec![Instruction::GotoTable(goto)],
        )
    };
    for f in [flow(1, 1, 1), flow(2, 2, 1), flow(3, 3, 1)] {
        c.session.send(f);
    }
    no_errors(&barrier(&mut c));
    let before = ovs_flows(&ovs);
    assert_eq!(before.len(), 3, "{before:?}");
    // A bundle that deletes the first, modifies the second, adds a fourth, and holds one bad
    // flow: goto_table backwards is refused by the switch.
    let delete = FlowMod {
        command: FlowModCommand::DeleteStrict,
        ..flow(1, 1, 1)
    };
    let modify = FlowMod {
        command: FlowModCommand::ModifyStrict,
        ..flow(2, 2, 7)
    };
    let add = flow(4, 4, 1);
    let bad = FlowMod::add(
        5,
        10,
        Match::new().in_port(2),
        vec![Instruction::GotoTable(1)],
    );
    let flags = bundle_flags::ATOMIC | bundle_flags::ORDERED;
    let id = c.session.bundle_open(flags);
    c.session.bundle_add(id, flags, delete);
    c.session.bundle_add(id, flags, modify);
    c.session.bundle_add(id, flags, add);
    let bad_xid = c.session.bundle_add(id, flags, bad);
    c.session.bundle_finish(id, flags);
    let events = c.pump_until(|e| matches!(e, Event::Bundle(_)));
    let Some(Event::Bundle(outcome)) = events.last() else {
        panic!()
    };
    assert_eq!(outcome.bundle_id, id);
    assert!(!outcome.is_ok() && !outcome.committed, "{outcome:#?}");
    assert!(
        outcome.message_errors.iter().any(|e| e.xid == bad_xid)
            || matches!(&outcome.error, Some(ErrorMsg::Standard { data, .. }) if !data.is_empty()),
        "the refusal must be tied to the bad message: {outcome:#?}"
    );
    let names: Vec<String> = outcome
        .message_errors
        .iter()
        .map(|e| match &e.error {
            ErrorMsg::Standard { code, .. } => code.name(),
            other => format!("{other:?}"),
        })
        .collect();
    assert!(
        names.iter().any(|n| n == "OFPBIC_BAD_TABLE_ID"),
        "{names:?} {outcome:#?}"
    );
    // Atomic: the switch holds exactly what it held before (nothing deleted, modified or
    // added by the failed bundle).
    no_errors(&barrier(&mut c));
    assert_eq!(
        ovs_flows(&ovs),
        before,
        "a refused bundle changed the switch"
    );
}

#[test]
fn echo_and_async_messages_from_a_live_switch() {
    let (ovs, mut c) = switch();
    // A connection to the management socket is a "service" connection: OVS sends it no async
    // messages until it asks for them.
    c.session.send(Message::SetAsync(AsyncConfig {
        packet_in_mask: [0, 0],
        port_status_mask: [0x7, 0x7],
        flow_removed_mask: [0, 0],
    }));
    let xid = c.session.send_request(Message::GetAsyncRequest);
    let events = c.pump_until(|e| matches!(e, Event::Reply { xid: x, .. } if *x == xid));
    assert!(
        matches!(events.last(), Some(Event::Reply { message: Message::GetAsyncReply(a), .. }) if a.port_status_mask[0] == 7),
        "{events:#?}"
    );
    // Adding a port makes the switch send PORT_STATUS on its own.
    ovs.vsctl(&[
        "add-port",
        "br0",
        "p1",
        "--",
        "set",
        "interface",
        "p1",
        "type=internal",
    ]);
    let events = c.pump_until(|e| {
        matches!(
            e,
            Event::Async {
                message: Message::PortStatus(_),
                ..
            }
        )
    });
    let Some(Event::Async {
        message: Message::PortStatus(ps),
        ..
    }) = events.last()
    else {
        panic!()
    };
    assert_eq!(ps.port.name, "p1");
    // The switch answers our echo through the session (no event: just no timeout).
    let xid = c
        .session
        .send_request(Message::EchoRequest(b"ping".to_vec()));
    let events = c.pump_until(|e| matches!(e, Event::Reply { xid: x, .. } if *x == xid));
    assert!(
        matches!(events.last(), Some(Event::Reply { message: Message::EchoReply(d), .. }) if d == b"ping")
    );
}
