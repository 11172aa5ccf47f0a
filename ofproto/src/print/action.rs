//! Actions as `ovs-ofctl` prints them.

use std::fmt;

use crate::action::*;
use crate::oxm::{port_name, CHex, MatchField};

impl fmt::Display for Controller2 {
    /// As `format_CONTROLLER` in OVS: the plain `CONTROLLER:N` when nothing else is set.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason == OFPR_ACTION
            && self.controller_id == 0
            && self.userdata.is_empty()
            && !self.pause
            && self.meter_id == NX_CTLR_NO_METER
        {
            return write!(f, "CONTROLLER:{}", self.max_len);
        }
        let mut parts = Vec::new();
        if self.reason != OFPR_ACTION {
            parts.push(format!("reason={}", packet_in_reason(self.reason)));
        }
        if self.max_len != 0xffff {
            parts.push(format!("max_len={}", self.max_len));
        }
        if self.controller_id != 0 {
            parts.push(format!("id={}", self.controller_id));
        }
        if !self.userdata.is_empty() {
            let hex: Vec<String> = self.userdata.iter().map(|b| format!("{b:02x}")).collect();
            parts.push(format!("userdata={}", hex.join(".")));
        }
        if self.pause {
            parts.push("pause".into());
        }
        if self.meter_id != NX_CTLR_NO_METER {
            parts.push(format!("meter_id={}", self.meter_id));
        }
        write!(f, "controller({})", parts.join(","))
    }
}

impl fmt::Display for FieldRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.field.nxm_name())?;
        if self.ofs == 0 && self.n_bits as usize == self.field.width() * 8 {
            f.write_str("[]")
        } else if self.n_bits == 1 {
            write!(f, "[{}]", self.ofs)
        } else {
            write!(f, "[{}..{}]", self.ofs, self.ofs + self.n_bits - 1)
        }
    }
}

/// Writes an action list as `ovs-ofctl` does: comma separated, `drop` when empty.
pub struct ActionList<'a>(pub &'a [Action]);

impl fmt::Display for ActionList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str("drop");
        }
        for (i, a) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

fn fmt_set_field(f: &mut fmt::Formatter<'_>, mf: &MatchField) -> fmt::Result {
    match mf {
        MatchField::Field(fm) => {
            let field = fm.field();
            write!(f, "set_field:{}", field.format_value(fm.value()))?;
            if let Some(m) = fm.mask() {
                write!(f, "/{}", field.format_value(m))?;
            }
            write!(f, "->{}", field.mf_name())
        }
        MatchField::Unknown(_) => write!(f, "set_field:{mf}"),
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Output { port, max_len } => {
                if *port == 0xffff_fffd {
                    write!(f, "CONTROLLER:{max_len}")
                } else if *port >= 0xffff_fff8 {
                    f.write_str(&port_name(*port))
                } else {
                    write!(f, "output:{port}")
                }
            }
            Action::CopyTtlOut => f.write_str("copy_ttl_out"),
            Action::CopyTtlIn => f.write_str("copy_ttl_in"),
            Action::SetMplsTtl(t) => write!(f, "set_mpls_ttl({t})"),
            Action::DecMplsTtl => f.write_str("dec_mpls_ttl"),
            Action::PushVlan(e) => write!(f, "push_vlan:{e:#06x}"),
            Action::PopVlan => f.write_str("pop_vlan"),
            Action::PushMpls(e) => write!(f, "push_mpls:{e:#06x}"),
            Action::PopMpls(e) => write!(f, "pop_mpls:{e:#06x}"),
            Action::SetQueue(q) => write!(f, "set_queue:{q}"),
            Action::Group(g) => write!(f, "group:{g}"),
            Action::SetNwTtl(t) => write!(f, "mod_nw_ttl:{t}"),
            Action::DecNwTtl => f.write_str("dec_ttl"),
            Action::SetField(mf) | Action::Load2(mf) => fmt_set_field(f, mf),
            Action::PushPbb(e) => write!(f, "push_pbb:{e:#06x}"),
            Action::PopPbb => f.write_str("pop_pbb"),
            Action::Resubmit { in_port, table } => match table {
                None => write!(f, "resubmit:{}", nx_port(*in_port)),
                Some(t) => {
                    f.write_str("resubmit(")?;
                    if *in_port != NX_IN_PORT {
                        f.write_str(&nx_port(*in_port))?;
                    }
                    if *t == 255 {
                        f.write_str(",)")
                    } else {
                        write!(f, ",{t})")
                    }
                }
            },
            Action::Move { src, dst } => write!(f, "move:{src}->{dst}"),
            Action::Load { dst, value } => {
                if dst.ofs == 0 && dst.n_bits as usize == dst.field.width() * 8 {
                    write!(
                        f,
                        "set_field:{}->{}",
                        CHex((*value).into()),
                        dst.field.name()
                    )
                } else {
                    write!(f, "load:{}->{dst}", CHex((*value).into()))
                }
            }
            Action::Note(b) => {
                f.write_str("note:")?;
                for (i, x) in b.iter().enumerate() {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    write!(f, "{x:02x}")?;
                }
                Ok(())
            }
            Action::OutputReg { src, max_len } => {
                write!(f, "output:{src}")?;
                if *max_len != 0 && *max_len != 0xffff {
                    write!(f, ",max_len={max_len}")?;
                }
                Ok(())
            }
            Action::DecTtl { controller_ids } => {
                f.write_str("dec_ttl(")?;
                for (i, id) in controller_ids.iter().enumerate() {
                    if i > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{id}")?;
                }
                f.write_str(")")
            }
            Action::Controller {
                max_len,
                controller_id,
                reason,
            } => {
                let mut parts = Vec::new();
                if *reason != 1 {
                    parts.push(format!("reason={}", packet_in_reason(*reason)));
                }
                if *max_len != 0xffff {
                    parts.push(format!("max_len={max_len}"));
                }
                if *controller_id != 0 {
                    parts.push(format!("id={controller_id}"));
                }
                if parts.is_empty() {
                    f.write_str("CONTROLLER:65535")
                } else {
                    write!(f, "controller({})", parts.join(","))
                }
            }
            Action::Controller2(c) => write!(f, "{c}"),
            Action::Conjunction {
                id,
                clause,
                n_clauses,
            } => write!(f, "conjunction({id},{}/{n_clauses})", clause + 1),
            Action::Ct(ct) => {
                let mut parts: Vec<String> = Vec::new();
                if ct.commit {
                    parts.push("commit".into());
                }
                if ct.force {
                    parts.push("force".into());
                }
                if let Some(t) = ct.table {
                    parts.push(format!("table={t}"));
                }
                match ct.zone {
                    CtZone::Imm(0) => {}
                    CtZone::Imm(z) => parts.push(format!("zone={z}")),
                    CtZone::Field(r) => parts.push(format!("zone={r}")),
                }
                if ct.alg != 0 {
                    parts.push(match ct.alg {
                        21 => "alg=ftp".into(),
                        69 => "alg=tftp".into(),
                        n => format!("alg={n}"),
                    });
                }
                let nats: Vec<String> = ct
                    .actions
                    .iter()
                    .filter(|a| matches!(a, Action::Nat(_)))
                    .map(|a| a.to_string())
                    .collect();
                let others: Vec<&Action> = ct
                    .actions
                    .iter()
                    .filter(|a| !matches!(a, Action::Nat(_)))
                    .collect();
                parts.extend(nats);
                if !others.is_empty() {
                    let list: Vec<Action> = others.into_iter().cloned().collect();
                    parts.push(format!("exec({})", ActionList(&list)));
                }
                write!(f, "ct({})", parts.join(","))
            }
            Action::Nat(n) => {
                f.write_str("nat")?;
                let kind = match n.kind {
                    NatKind::Reuse => return Ok(()),
                    NatKind::Src => "src",
                    NatKind::Dst => "dst",
                };
                write!(f, "({kind}")?;
                match n.addrs {
                    NatAddrs::None => {}
                    NatAddrs::V4(min, max) => {
                        write!(f, "={min}")?;
                        if let Some(max) = max {
                            write!(f, "-{max}")?;
                        }
                    }
                    NatAddrs::V6(min, max) => {
                        write!(f, "=[{min}]")?;
                        if let Some(max) = max {
                            write!(f, "-[{max}]")?;
                        }
                    }
                }
                if let Some((min, max)) = n.ports {
                    write!(f, ":{min}")?;
                    if let Some(max) = max {
                        write!(f, "-{max}")?;
                    }
                }
                for (on, name) in [
                    (n.persistent, "persistent"),
                    (n.hash, "hash"),
                    (n.random, "random"),
                ] {
                    if on {
                        write!(f, ",{name}")?;
                    }
                }
                f.write_str(")")
            }
            Action::CtClear => f.write_str("ct_clear"),
            Action::Experimenter { experimenter, body } => {
                write!(f, "experimenter({experimenter:#010x}:")?;
                for b in body {
                    write!(f, "{b:02x}")?;
                }
                f.write_str(")")
            }
            Action::Unknown { typ, body } => {
                write!(f, "unknown_action({typ}:")?;
                for b in body {
                    write!(f, "{b:02x}")?;
                }
                f.write_str(")")
            }
        }
    }
}

fn nx_port(p: u16) -> String {
    if p >= 0xfff8 {
        port_name(u32::from(p) | 0xffff_0000)
    } else {
        p.to_string()
    }
}

/// `ofp_packet_in_reason` names as OVS prints them.
pub fn packet_in_reason(r: u8) -> String {
    match r {
        0 => "no_match".into(),
        1 => "action".into(),
        2 => "invalid_ttl".into(),
        3 => "action_set".into(),
        4 => "group".into(),
        5 => "packet_out".into(),
        n => n.to_string(),
    }
}
