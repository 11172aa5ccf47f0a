//! Decodes the bench's flow-mod N times (for `perf stat`: instructions per decode do not
//! depend on the machine's load).

use std::hint::black_box;
use std::net::Ipv4Addr;

use ofproto::action::{Action, Ct, CtZone, FieldRange};
use ofproto::instruction::Instruction;
use ofproto::msg::{FlowMod, Message};
use ofproto::oxm::{ct_state, Field, Match};

fn pipeline_flow() -> Message {
    let m = Match::new()
        .in_port(7)
        .eth_type(0x0800)
        .ip_proto(6)
        .reg(5, 0x1234)
        .ipv4_src(Ipv4Addr::new(10, 1, 0, 0), 24)
        .with(Field::TcpDst, 443)
        .ct_state(ct_state::TRK | ct_state::NEW, ct_state::TRK | ct_state::NEW);
    let actions = vec![
        Action::Ct(Ct {
            commit: true,
            force: false,
            zone: CtZone::Field(FieldRange::new(Field::Reg(4), 0, 16).unwrap()),
            table: None,
            alg: 0,
            actions: vec![],
        }),
        Action::set_field(Field::Reg(0), 0x10).unwrap(),
        Action::Load {
            dst: FieldRange::new(Field::Reg(1), 0, 8).unwrap(),
            value: 3,
        },
        Action::resubmit(40),
    ];
    let mut f = FlowMod::add(
        30,
        1000,
        m,
        vec![
            Instruction::ApplyActions(actions),
            Instruction::GotoTable(40),
        ],
    );
    f.cookie = 0x0102_0304_0506_0708;
    Message::FlowMod(f)
}

fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2_000_000);
    let bytes = pipeline_flow().to_bytes(1);
    let t = std::time::Instant::now();
    for _ in 0..n {
        black_box(Message::decode(black_box(&bytes)).unwrap());
    }
    let e = t.elapsed();
    println!(
        "{n} decodes in {e:?}: {:.0} ns each",
        e.as_nanos() as f64 / n as f64
    );
}
