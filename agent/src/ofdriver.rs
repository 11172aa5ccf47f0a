//! The OpenFlow driver: one task owns the connection to a bridge's management socket and drives
//! `ofproto`'s sans-IO session with real time and real bytes. It reconnects with backoff when
//! Open vSwitch goes away; every connection gets a new generation number so that the reconciler
//! knows to read the switch again.
//!
//! As quinn's `ConnectionDriver` over quinn-proto's `Connection`: the session does the protocol
//! and ties every answer to its request (bundles, batches, dumps, each one event); the driver
//! moves bytes and time and hands each outcome to the caller that waits for it. Its writer
//! queue is bounded: while bytes wait for the socket, no new command is taken.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use ofproto::msg::{
    set_packet_in_format, AsyncConfig, Message, PacketIn2, PacketOut, SwitchConfig,
};
use ofproto::session::{BatchId, BundleId, Config, DumpError, DumpId, Event, Session};
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
pub use ofproto::session::Dump;

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

enum Ended {
    Cancelled,
    NoMoreCommands,
    Lost(String),
}

/// Chunks of bytes the writer may hold before the driver stops taking commands: the switch
/// reading slowly slows the callers down instead of growing a queue without bound.
const WRITER_QUEUE: usize = 16;

/// One connection: the session (`ofproto::session`) does all the protocol and bookkeeping; this
/// moves bytes between it and the socket, gives it the time, and hands each outcome to the
/// caller that waits for it.
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
    let (out_tx, mut out_rx) = mpsc::channel::<Bytes>(WRITER_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(b) = out_rx.recv().await {
            if let Err(e) = wr.write_all(&b).await {
                return Err(e.to_string());
            }
        }
        Ok(())
    });
    let mut session = Session::new(Instant::now(), Config::default());
    let mut waiting = Waiting::default();
    let mut outbox: Option<Bytes> = None;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    let why = loop {
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
                Event::Closed(why) => closed = Some(why.to_string()),
                Event::Undecodable { xid, error } => {
                    warn!(xid, %error, "undecodable message from the switch")
                }
                Event::Error(e) => {
                    warn!(xid = e.xid, error = %e.error, "the switch refused a request")
                }
                ev => waiting.done(ev),
            }
        }
        if let Some(why) = closed {
            break Ended::Lost(why);
        }
        // After the events: handling them may have queued messages.
        if outbox.is_none() {
            outbox = session.poll_transmit();
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
            permit = out_tx.reserve(), if outbox.is_some() => match permit {
                Ok(permit) => permit.send(outbox.take().expect("checked")),
                Err(_) => break Ended::Lost("writing to the switch failed".into()),
            },
            // Backpressure: no new work while bytes wait for the writer.
            cmd = cmds.recv(), if outbox.is_none() => match cmd {
                None => break Ended::NoMoreCommands,
                Some(Cmd::Bundle { messages, reply }) => {
                    waiting.bundles.insert(session.send_bundle(messages), reply);
                }
                Some(Cmd::Dump { reply }) => {
                    waiting.dumps.insert(session.send_dump(), reply);
                }
                Some(Cmd::Send { messages, reply }) => {
                    waiting.batches.insert(session.send_batch(messages), reply);
                }
            },
            _ = sleep_until(deadline) => session.handle_timeout(Instant::now()),
        }
    };
    writer.abort();
    waiting.disconnected(where_);
    why
}

/// Callers waiting for an outcome, by the session's id for it.
#[derive(Default)]
struct Waiting {
    bundles: HashMap<BundleId, oneshot::Sender<Result<(), OfError>>>,
    batches: HashMap<BatchId, oneshot::Sender<Result<(), OfError>>>,
    dumps: HashMap<DumpId, oneshot::Sender<Result<Dump, OfError>>>,
}

impl Waiting {
    fn done(&mut self, ev: Event) {
        match ev {
            Event::Bundle(outcome) => {
                if let Some(reply) = self.bundles.remove(&outcome.bundle_id) {
                    let r = if outcome.is_ok() {
                        Ok(())
                    } else {
                        let mut why: Vec<String> = outcome
                            .message_errors
                            .iter()
                            .map(|e| format!("message xid {}: {}", e.xid, e.error))
                            .collect();
                        if let Some(e) = &outcome.error {
                            why.push(format!("bundle: {e}"));
                        }
                        Err(OfError::Refused(why.join("; ")))
                    };
                    let _ = reply.send(r);
                }
            }
            Event::Batch(outcome) => {
                if let Some(reply) = self.batches.remove(&outcome.batch_id) {
                    let r = if outcome.is_ok() {
                        Ok(())
                    } else {
                        let why: Vec<String> = outcome
                            .errors
                            .iter()
                            .map(|e| format!("message xid {}: {}", e.xid, e.error))
                            .collect();
                        Err(OfError::Refused(why.join("; ")))
                    };
                    let _ = reply.send(r);
                }
            }
            Event::Dump { dump_id, result } => {
                if let Some(reply) = self.dumps.remove(&dump_id) {
                    let _ = reply.send(result.map_err(|e| match e {
                        DumpError::Refused(e) => OfError::Refused(e.error.to_string()),
                        DumpError::Unexpected(m) => OfError::Unexpected(format!("{m:?}")),
                    }));
                }
            }
            // Replies to requests nobody made through the driver, async messages, barriers.
            _ => {}
        }
    }

    fn disconnected(self, where_: &str) {
        let e = OfError::Disconnected(where_.to_string());
        for (_, reply) in self.bundles {
            let _ = reply.send(Err(e.clone()));
        }
        for (_, reply) in self.batches {
            let _ = reply.send(Err(e.clone()));
        }
        for (_, reply) in self.dumps {
            let _ = reply.send(Err(e.clone()));
        }
    }
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
