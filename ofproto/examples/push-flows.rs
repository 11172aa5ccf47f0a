//! push-flows: connects to an Open vSwitch bridge's management socket, installs a small
//! two-network pipeline in one atomic bundle, and reads the flows back through its own
//! OpenFlow connection. Used by the demo: `push-flows /path/to/br-int.mgmt`.

use std::io::{Read, Write};
use std::net::Ipv4Addr;
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use ofproto::action::Action;
use ofproto::instruction::{Instruction, InstructionList};
use ofproto::msg::multipart::FlowStatsRequest;
use ofproto::msg::{FlowMod, Message, MultipartReply, MultipartRequest};
use ofproto::oxm::{Field, Match};
use ofproto::session::{Config, Event, Session};

/// Two networks on one host, isolated: each port is classified into its network's register
/// value, and forwarding only ever matches within that network.
fn pipeline() -> Vec<Message> {
    let classify = |port: u32, net: u32| {
        FlowMod::add(
            0,
            100,
            Match::new().in_port(port),
            vec![
                Instruction::ApplyActions(vec![
                    Action::set_field(Field::Reg(6), net.into()).unwrap()
                ]),
                Instruction::GotoTable(10),
            ],
        )
    };
    let forward = |net: u32, ip: Ipv4Addr, port: u32| {
        FlowMod::add(
            10,
            200,
            Match::new().reg(6, net).eth_type(0x0800).ipv4_dst(ip, 32),
            vec![Instruction::ApplyActions(vec![Action::output(port)])],
        )
    };
    let mut flows = vec![
        classify(1, 1),
        classify(2, 1),
        classify(3, 2),
        forward(1, Ipv4Addr::new(10, 1, 0, 2), 1),
        forward(1, Ipv4Addr::new(10, 1, 0, 3), 2),
        forward(2, Ipv4Addr::new(10, 1, 0, 2), 3),
    ];
    for (i, f) in flows.iter_mut().enumerate() {
        f.cookie = 0x7700 + i as u64;
    }
    flows.into_iter().map(Message::from).collect()
}

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: push-flows /path/to/BRIDGE.mgmt");
        return ExitCode::from(2);
    };
    match run(&path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("push-flows: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(path: &str) -> Result<(), String> {
    let mut stream = UnixStream::connect(path).map_err(|e| format!("connect {path}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .map_err(|e| e.to_string())?;
    let mut session = Session::new(Instant::now(), Config::default());
    let mut pump =
        |session: &mut Session, done: &mut dyn FnMut(&Event) -> bool| -> Result<(), String> {
            let start = Instant::now();
            let mut buf = vec![0u8; 65536];
            loop {
                while let Some(b) = session.poll_transmit() {
                    stream.write_all(&b).map_err(|e| e.to_string())?;
                }
                while let Some(e) = session.poll_event() {
                    if let Event::Closed(r) = &e {
                        return Err(format!("session closed: {r:?}"));
                    }
                    if done(&e) {
                        return Ok(());
                    }
                }
                if start.elapsed() > Duration::from_secs(10) {
                    return Err("no answer from the switch within 10 s".into());
                }
                match stream.read(&mut buf) {
                    Ok(0) => return Err("the switch closed the connection".into()),
                    Ok(n) => session.handle_input(&buf[..n], Instant::now()),
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        session.handle_timeout(Instant::now())
                    }
                    Err(e) => return Err(e.to_string()),
                }
            }
        };

    pump(&mut session, &mut |e| {
        if let Event::Connected(f) = e {
            println!(
                "connected: datapath {:016x}, {} tables",
                f.datapath_id, f.n_tables
            );
            true
        } else {
            false
        }
    })?;

    let flows = pipeline();
    let n = flows.len();
    let started = Instant::now();
    session.send_bundle(flows);
    let mut outcome = None;
    pump(&mut session, &mut |e| match e {
        Event::Bundle(o) => {
            outcome = Some(o.clone());
            true
        }
        _ => false,
    })?;
    let outcome = outcome.expect("set when the pump stopped");
    if !outcome.is_ok() {
        return Err(format!("bundle refused: {outcome:?}"));
    }
    println!(
        "installed {n} flows in one atomic bundle in {:?}",
        started.elapsed()
    );

    let xid = session.send_request(MultipartRequest::Flow(FlowStatsRequest::all()));
    let mut dumped = Vec::new();
    pump(&mut session, &mut |e| match e {
        Event::Reply {
            xid: x,
            message:
                Message::MultipartReply {
                    body: MultipartReply::Flow(f),
                    ..
                },
        } if *x == xid => {
            dumped = f.clone();
            true
        }
        _ => false,
    })?;
    println!("read back through our own OpenFlow connection:");
    for f in dumped {
        println!(
            "  cookie={:#x} table={} priority={},{} actions={}",
            f.cookie,
            f.table_id,
            f.priority,
            f.match_,
            InstructionList(&f.instructions)
        );
    }
    Ok(())
}
