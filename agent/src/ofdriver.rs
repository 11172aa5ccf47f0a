//! The OpenFlow driver: one task owns the connection to a bridge's management socket and drives
//! `ofproto`'s sans-IO session with real time and real bytes. It reconnects with backoff when
//! Open vSwitch goes away; every connection gets a new generation number so that the reconciler
//! knows to read the switch again.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ofproto::msg::group_meter::METER_ALL;
use ofproto::msg::multipart::{FlowStats, FlowStatsRequest, GroupDesc, MeterConfig};
use ofproto::msg::{
    set_packet_in_format, AsyncConfig, Message, MultipartReply, MultipartRequest, PacketIn2,
    PacketOut, SwitchConfig,
};
use ofproto::session::{Config, Event, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

/// Why a request to the switch did not succeed.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum OfError {
    #[error("not connected to the switch at {0}")]
    Disconnected(String),
    #[error("the switch refused the change: {0}")]
    Refused(String),
    #[error("the switch sent an unexpected reply: {0}")]
    Unexpected(String),
}

/// What the switch holds: every flow, group and meter.
#[derive(Debug, Clone, Default)]
pub struct Dump {
    pub flows: Vec<FlowStats>,
    pub groups: Vec<GroupDesc>,
    pub meters: Vec<MeterConfig>,
}

enum Cmd {
    Bundle {
        messages: Vec<Message>,
        reply: oneshot::Sender<Result<(), OfError>>,
    },
    Dump {
        reply: oneshot::Sender<Result<Dump, OfError>>,
    },
    /// Plain messages (not in a bundle), then a barrier.
    Send {
        messages: Vec<Message>,
        reply: oneshot::Sender<Result<(), OfError>>,
    },
}

/// A handle on the driver task. Cheap to clone.
#[derive(Clone)]
pub struct OfDriver {
    cmd: mpsc::Sender<Cmd>,
    generation: watch::Receiver<u64>,
    packet_ins: broadcast::Sender<Arc<PacketIn2>>,
}

/// Packet-ins kept for a slow subscriber before it starts missing some (it then gets
/// `RecvError::Lagged` with how many it missed).
pub const PACKET_IN_BACKLOG: usize = 1024;

impl OfDriver {
    /// Starts the task for the management socket at `socket` (`RUNDIR/br-int.mgmt`).
    pub fn spawn(socket: PathBuf, cancel: CancellationToken) -> OfDriver {
        let (cmd_tx, cmd_rx) = mpsc::channel(64);
        let (gen_tx, gen_rx) = watch::channel(0);
        let (pin_tx, _) = broadcast::channel(PACKET_IN_BACKLOG);
        tokio::spawn(run(socket, cmd_rx, gen_tx, pin_tx.clone(), cancel));
        OfDriver {
            cmd: cmd_tx,
            generation: gen_rx,
            packet_ins: pin_tx,
        }
    }

    /// Every packet the switch sends to the controller from now on, decoded: reason, table,
    /// cookie, metadata match (`in_port`, `metadata`, registers, ...), the controller action's
    /// userdata and the whole packet. The driver asks the switch for full packets in
    /// NXT_PACKET_IN2 form on every connection, so userdata arrives. A subscriber that falls
    /// more than [`PACKET_IN_BACKLOG`] behind gets `RecvError::Lagged`.
    pub fn packet_ins(&self) -> broadcast::Receiver<Arc<PacketIn2>> {
        self.packet_ins.subscribe()
    }

    /// Sends a PACKET_OUT and waits for a barrier behind it: `Err(OfError::Refused)` with the
    /// switch's error if it refused it.
    pub async fn packet_out(&self, packet_out: PacketOut) -> Result<(), OfError> {
        self.send(vec![Message::PacketOut(packet_out)]).await
    }

    /// Changes the current connection's number each time the driver (re)connects; 0 while it is
    /// not connected.
    pub fn generation(&self) -> watch::Receiver<u64> {
        self.generation.clone()
    }

    /// Sends `messages` as one atomic bundle and waits until the switch committed it. If any
    /// message is refused, nothing of the bundle is applied.
    pub async fn bundle(&self, messages: Vec<Message>) -> Result<(), OfError> {
        let (reply, rx) = oneshot::channel();
        self.call(Cmd::Bundle { messages, reply }, rx).await
    }

    /// Sends `messages` one by one (for what a bundle cannot carry, such as meter changes) and
    /// waits for a barrier; fails if the switch refused any of them (the others stay applied).
    pub async fn send(&self, messages: Vec<Message>) -> Result<(), OfError> {
        let (reply, rx) = oneshot::channel();
        self.call(Cmd::Send { messages, reply }, rx).await
    }

    /// Reads every flow, group and meter from the switch.
    pub async fn dump(&self) -> Result<Dump, OfError> {
        let (reply, rx) = oneshot::channel();
        self.call(Cmd::Dump { reply }, rx).await
    }

    async fn call<T>(
        &self,
        cmd: Cmd,
        rx: oneshot::Receiver<Result<T, OfError>>,
    ) -> Result<T, OfError> {
        let gone = || OfError::Disconnected("the OpenFlow driver stopped".into());
        self.cmd.send(cmd).await.map_err(|_| gone())?;
        rx.await.map_err(|_| gone())?
    }
}

const BACKOFF_MIN: Duration = Duration::from_millis(20);
const BACKOFF_MAX: Duration = Duration::from_millis(250);

async fn run(
    socket: PathBuf,
    mut cmds: mpsc::Receiver<Cmd>,
    generation: watch::Sender<u64>,
    packet_ins: broadcast::Sender<Arc<PacketIn2>>,
    cancel: CancellationToken,
) {
    let where_ = socket.display().to_string();
    let mut next_gen = 1u64;
    let mut backoff = BACKOFF_MIN;
    let mut logged_down = false;
    loop {
        if cancel.is_cancelled() {
            return;
        }
        match UnixStream::connect(&socket).await {
            Ok(stream) => {
                backoff = BACKOFF_MIN;
                logged_down = false;
                debug!(socket = %where_, "connected to the switch");
                let why = connection(
                    stream,
                    &mut cmds,
                    &generation,
                    &packet_ins,
                    next_gen,
                    &cancel,
                    &where_,
                )
                .await;
                next_gen += 1;
                generation.send_replace(0);
                match why {
                    Ended::Cancelled | Ended::NoMoreCommands => return,
                    Ended::Lost(why) => {
                        warn!(socket = %where_, %why, "lost the switch; reconnecting")
                    }
                }
            }
            Err(e) => {
                if !logged_down {
                    info!(socket = %where_, error = %e, "switch not reachable; retrying");
                    logged_down = true;
                }
            }
        }
        // While down, refuse requests at once (callers retry when a new generation appears).
        let sleep = tokio::time::sleep(backoff);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                _ = cancel.cancelled() => return,
                cmd = cmds.recv() => match cmd {
                    None => return,
                    Some(cmd) => refuse(cmd, &where_),
                },
            }
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

fn refuse(cmd: Cmd, where_: &str) {
    let e = OfError::Disconnected(where_.to_string());
    match cmd {
        Cmd::Bundle { reply, .. } => {
            let _ = reply.send(Err(e));
        }
        Cmd::Dump { reply } => {
            let _ = reply.send(Err(e));
        }
        Cmd::Send { reply, .. } => {
            let _ = reply.send(Err(e));
        }
    }
}

/// Plain messages waiting for their barrier.
struct SendInProgress {
    xids: Vec<u32>,
    barrier: u32,
    errors: Vec<String>,
    reply: oneshot::Sender<Result<(), OfError>>,
}

enum Ended {
    Cancelled,
    NoMoreCommands,
    Lost(String),
}

/// A dump waits for three replies: flows, groups and meters.
struct DumpInProgress {
    flows_xid: u32,
    groups_xid: u32,
    meters_xid: u32,
    dump: Dump,
    got: u8,
    reply: oneshot::Sender<Result<Dump, OfError>>,
}

async fn connection(
    stream: UnixStream,
    cmds: &mut mpsc::Receiver<Cmd>,
    generation: &watch::Sender<u64>,
    packet_ins: &broadcast::Sender<Arc<PacketIn2>>,
    this_gen: u64,
    cancel: &CancellationToken,
    where_: &str,
) -> Ended {
    let (mut rd, mut wr) = stream.into_split();
    // The writer runs apart so that a large bundle being written never stops us reading.
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Bytes>();
    let writer = tokio::spawn(async move {
        while let Some(b) = out_rx.recv().await {
            if let Err(e) = wr.write_all(&b).await {
                return Err(e.to_string());
            }
        }
        Ok(())
    });
    let mut session = Session::new(Instant::now(), Config::default());
    let mut bundles: HashMap<u32, oneshot::Sender<Result<(), OfError>>> = HashMap::new();
    let mut dumps: Vec<DumpInProgress> = Vec::new();
    let mut sends: Vec<SendInProgress> = Vec::new();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let why = loop {
        while let Some(b) = session.poll_transmit() {
            if out_tx.send(b).is_err() {
                break;
            }
        }
        if writer.is_finished() {
            break Ended::Lost("writing to the switch failed".into());
        }
        let mut closed = None;
        while let Some(ev) = session.poll_event() {
            match ev {
                Event::Connected(_) => {
                    ask_for_packet_ins(&mut session);
                    generation.send_replace(this_gen);
                }
                Event::PacketIn(p) => {
                    // Nobody listening is fine: the packet is dropped.
                    let _ = packet_ins.send(Arc::new(p));
                }
                Event::Bundle(outcome) => {
                    if let Some(reply) = bundles.remove(&outcome.bundle_id) {
                        let r = if outcome.is_ok() {
                            Ok(())
                        } else {
                            let mut why: Vec<String> = outcome
                                .message_errors
                                .iter()
                                .map(|e| format!("message xid {}: {}", e.xid, e.error))
                                .collect();
                            if let Some(e) = &outcome.error {
                                why.push(format!("bundle: {e:?}"));
                            }
                            Err(OfError::Refused(why.join("; ")))
                        };
                        let _ = reply.send(r);
                    }
                }
                Event::Reply { xid, message } => {
                    if let Some(i) = dumps.iter().position(|d| {
                        d.flows_xid == xid || d.groups_xid == xid || d.meters_xid == xid
                    }) {
                        let d = &mut dumps[i];
                        match message {
                            Message::MultipartReply {
                                body: MultipartReply::Flow(f),
                                ..
                            } => d.dump.flows = f,
                            Message::MultipartReply {
                                body: MultipartReply::GroupDesc(g),
                                ..
                            } => d.dump.groups = g,
                            Message::MultipartReply {
                                body: MultipartReply::MeterConfig(m),
                                ..
                            } => d.dump.meters = m,
                            other => {
                                let d = dumps.remove(i);
                                let _ =
                                    d.reply.send(Err(OfError::Unexpected(format!("{other:?}"))));
                                continue;
                            }
                        }
                        d.got += 1;
                        if d.got == 3 {
                            let d = dumps.remove(i);
                            let _ = d.reply.send(Ok(d.dump));
                        }
                    }
                }
                Event::Error(e) => {
                    if let Some(s) = sends.iter_mut().find(|s| s.xids.contains(&e.xid)) {
                        s.errors.push(format!("message xid {}: {}", e.xid, e.error));
                    } else if let Some(i) = dumps.iter().position(|d| {
                        d.flows_xid == e.xid || d.groups_xid == e.xid || d.meters_xid == e.xid
                    }) {
                        let d = dumps.remove(i);
                        let _ = d.reply.send(Err(OfError::Refused(e.error.to_string())));
                    } else {
                        warn!(xid = e.xid, error = %e.error, "the switch refused a request");
                    }
                }
                Event::Closed(why) => closed = Some(format!("{why:?}")),
                Event::Undecodable { xid, error } => {
                    warn!(xid, %error, "undecodable message from the switch")
                }
                Event::Barrier { xid } => {
                    if let Some(i) = sends.iter().position(|s| s.barrier == xid) {
                        let s = sends.remove(i);
                        let r = if s.errors.is_empty() {
                            Ok(())
                        } else {
                            Err(OfError::Refused(s.errors.join("; ")))
                        };
                        let _ = s.reply.send(r);
                    }
                }
                Event::Async { .. } => {}
            }
        }
        if let Some(why) = closed {
            break Ended::Lost(why);
        }
        let deadline = session.poll_timeout();
        tokio::select! {
            _ = cancel.cancelled() => break Ended::Cancelled,
            n = rd.read_buf(&mut buf) => match n {
                Ok(0) => break Ended::Lost("the switch closed the connection".into()),
                Ok(_) => {
                    session.handle_input(&buf, Instant::now());
                    buf.clear();
                }
                Err(e) => break Ended::Lost(e.to_string()),
            },
            cmd = cmds.recv() => match cmd {
                None => break Ended::NoMoreCommands,
                Some(Cmd::Bundle { messages, reply }) => {
                    let id = session.send_bundle(messages);
                    bundles.insert(id, reply);
                }
                Some(Cmd::Dump { reply }) => {
                    let flows_xid = session.send_request(Message::MultipartRequest {
                        flags: 0,
                        body: MultipartRequest::Flow(FlowStatsRequest::all()),
                    });
                    let groups_xid = session.send_request(Message::MultipartRequest {
                        flags: 0,
                        body: MultipartRequest::GroupDesc,
                    });
                    let meters_xid = session.send_request(Message::MultipartRequest {
                        flags: 0,
                        body: MultipartRequest::MeterConfig { meter_id: METER_ALL },
                    });
                    dumps.push(DumpInProgress { flows_xid, groups_xid, meters_xid, dump: Dump::default(), got: 0, reply });
                }
                Some(Cmd::Send { messages, reply }) => {
                    let xids = messages.into_iter().map(|m| session.send(m)).collect();
                    let barrier = session.send_barrier();
                    sends.push(SendInProgress { xids, barrier, errors: vec![], reply });
                }
            },
            _ = sleep_until(deadline) => session.handle_timeout(Instant::now()),
        }
    };
    writer.abort();
    let e = OfError::Disconnected(where_.to_string());
    for (_, reply) in bundles {
        let _ = reply.send(Err(e.clone()));
    }
    for d in dumps {
        let _ = d.reply.send(Err(e.clone()));
    }
    for s in sends {
        let _ = s.reply.send(Err(e.clone()));
    }
    why
}

/// The management socket is a service connection: Open vSwitch sends it no asynchronous
/// message until it sets a nonzero miss_send_len. Ask for whole packets (OFPCML_NO_BUFFER),
/// packet-ins only (no port-status, no flow-removed: nothing else changes), in NXT_PACKET_IN2
/// form so that the controller action's userdata comes along.
fn ask_for_packet_ins(session: &mut Session) {
    session.send(Message::SetConfig(SwitchConfig {
        flags: 0,
        miss_send_len: 0xffff,
    }));
    session.send(set_packet_in_format());
    // OFPR_NO_MATCH, OFPR_ACTION, OFPR_INVALID_TTL to a master/equal connection (ours).
    session.send(Message::SetAsync(AsyncConfig {
        packet_in_mask: [0x7, 0],
        port_status_mask: [0, 0],
        flow_removed_mask: [0, 0],
    }));
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(tokio::time::Instant::from_std(d)).await,
        None => std::future::pending().await,
    }
}
