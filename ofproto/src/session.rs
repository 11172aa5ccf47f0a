//! The OpenFlow session state machine, sans I/O: hello and version negotiation, the features
//! handshake, echo keepalive and dead-peer detection, xids, request/reply matching with
//! multipart reassembly, barriers, and bundles (open → add → commit) with every error mapped back
//! to the request that caused it.
//!
//! As in quinn-proto, the caller owns the socket and the clock: it feeds received bytes to
//! [`Session::handle_input`], calls [`Session::handle_timeout`] when [`Session::poll_timeout`]
//! says, writes out what [`Session::poll_transmit`] gives, and reads [`Session::poll_event`].

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::error::{DecodeError, ErrorCode};
use crate::header::{frame_len, Header, MsgType, HEADER_LEN, OFP13_VERSION};
use crate::msg::group_meter::METER_ALL;
use crate::msg::multipart::{FlowStats, FlowStatsRequest, GroupDesc, MeterConfig, MORE};
use crate::msg::{
    bundle_flags, BundleAdd, BundleCtrl, BundleCtrlType, ErrorMsg, FeaturesReply, Hello, Message,
    MultipartReply, MultipartRequest, PacketIn2,
};

/// Timers of a session.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Send an echo request after this long without hearing from the switch.
    pub echo_interval: Duration,
    /// Declare the switch dead when an echo request has had no reply for this long.
    pub echo_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            echo_interval: Duration::from_secs(5),
            echo_timeout: Duration::from_secs(10),
        }
    }
}

/// Where the handshake is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Our HELLO is sent; waiting for the switch's.
    HelloSent,
    /// Versions agreed; FEATURES_REQUEST sent.
    FeaturesSent,
    /// Handshake done: requests flow.
    Ready,
    /// The session is over; nothing more is sent.
    Closed(CloseReason),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The switch does not speak OpenFlow 1.3.
    IncompatibleVersion,
    /// No answer to echo requests within the timeout.
    EchoTimeout,
    /// The byte stream cannot be framed any more.
    BadFraming(String),
    /// The switch sent an error during the handshake.
    HandshakeError(ErrorCode),
}

impl std::fmt::Display for CloseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CloseReason::IncompatibleVersion => {
                f.write_str("the switch does not speak OpenFlow 1.3")
            }
            CloseReason::EchoTimeout => f.write_str("no answer to echo requests in time"),
            CloseReason::BadFraming(why) => write!(f, "the byte stream cannot be framed: {why}"),
            CloseReason::HandshakeError(code) => {
                write!(f, "the switch refused the handshake: {code}")
            }
        }
    }
}

/// A bundle's id on the wire.
pub type BundleId = u32;

/// An error the switch reported for a message we sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestError {
    /// The xid of the request (for a bundled message, the xid of its BUNDLE_ADD).
    pub xid: u32,
    pub error: ErrorMsg,
}

/// How a bundle ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BundleOutcome {
    pub bundle_id: BundleId,
    /// Errors for individual bundled messages, with the xid that added each, in arrival order.
    pub message_errors: Vec<RequestError>,
    /// The error that ended the bundle (open, commit or discard refused), if any.
    pub error: Option<ErrorMsg>,
    /// Whether the bundle was committed (rather than discarded).
    pub committed: bool,
}

impl BundleOutcome {
    /// Committed with no error. (A bundle discarded because an add failed is not ok even
    /// though the discard itself succeeded.)
    pub fn is_ok(&self) -> bool {
        self.error.is_none() && self.message_errors.is_empty() && self.committed
    }
}

/// A batch's id: the xid of the barrier that ends it.
pub type BatchId = u32;

/// How a batch ([`Session::send_batch`]) ended: the switch processed every message (the barrier
/// after them was answered); the ones it refused are listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    pub batch_id: BatchId,
    /// The xid of every message, in the order given.
    pub xids: Vec<u32>,
    /// Errors for the batch's messages, in arrival order.
    pub errors: Vec<RequestError>,
}

impl BatchOutcome {
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// A dump's id: the xid of its first request.
pub type DumpId = u32;

/// What a switch holds: every flow, group and meter ([`Session::send_dump`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dump {
    pub flows: Vec<FlowStats>,
    pub groups: Vec<GroupDesc>,
    pub meters: Vec<MeterConfig>,
}

/// Why a dump failed.
#[derive(Debug, Clone, PartialEq)]
pub enum DumpError {
    /// The switch refused one of the requests.
    Refused(RequestError),
    /// The switch answered a request with something else than its reply.
    Unexpected(Box<Message>),
}

impl std::fmt::Display for DumpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DumpError::Refused(e) => write!(f, "request xid {}: {}", e.xid, e.error),
            DumpError::Unexpected(m) => write!(f, "unexpected answer {:?}", m.msg_type()),
        }
    }
}

/// What the session reports to its owner.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// Handshake complete.
    Connected(FeaturesReply),
    /// The reply to a request sent with [`Session::send_request`] (a multipart reply arrives
    /// whole, its parts joined).
    Reply { xid: u32, message: Message },
    /// The switch refused a request.
    Error(RequestError),
    /// A barrier was answered: everything sent before it has been processed.
    Barrier { xid: u32 },
    /// A bundle was committed or discarded (or failed).
    Bundle(BundleOutcome),
    /// A batch's barrier was answered: every message of it was processed.
    Batch(BatchOutcome),
    /// A dump is complete, or failed.
    Dump {
        dump_id: DumpId,
        result: Result<Dump, DumpError>,
    },
    /// A packet the switch sent to the controller: an OFPT_PACKET_IN or Nicira's
    /// NXT_PACKET_IN2 (which carries the controller action's userdata), as one type.
    PacketIn(PacketIn2),
    /// A message the switch sent on its own (port-status, flow-removed, ...).
    Async { xid: u32, message: Message },
    /// The switch sent something we could not decode; it was answered with the matching
    /// OpenFlow error. Reported so the owner can log it.
    Undecodable { xid: u32, error: DecodeError },
    /// The session ended.
    Closed(CloseReason),
}

#[derive(Debug)]
enum Pending {
    Request {
        multipart: Option<MultipartReply>,
        /// The dump this request is part of: its reply goes there, not out as an event.
        dump: Option<DumpId>,
    },
    /// A message of a batch: its errors go to the batch.
    BatchMsg(BatchId),
    /// The barrier that ends a batch.
    BatchEnd(BatchId),
    Barrier,
    BundleAdd(BundleId),
    BundleOpen(BundleId),
    BundleCommit(BundleId),
    BundleDiscard(BundleId),
    /// The barrier after a bundle's adds: commit if every add was accepted, else discard.
    BundleCheck(BundleId, u16),
    Echo,
}

#[derive(Debug)]
struct BatchState {
    xids: Vec<u32>,
    errors: Vec<RequestError>,
}

#[derive(Debug, Default)]
struct DumpState {
    dump: Dump,
    /// Replies still awaited.
    missing: u8,
}

#[derive(Debug, Default)]
struct BundleState {
    message_errors: Vec<RequestError>,
    failed: Option<ErrorMsg>,
}

/// The session.
#[derive(Debug)]
pub struct Session {
    config: Config,
    state: State,
    next_xid: u32,
    next_bundle: BundleId,
    rx: BytesMut,
    tx: BytesMut,
    /// Requests made before the handshake finished, sent once it has.
    held: Vec<(u32, Message)>,
    events: VecDeque<Event>,
    pending: HashMap<u32, Pending>,
    bundles: HashMap<BundleId, BundleState>,
    batches: HashMap<BatchId, BatchState>,
    dumps: HashMap<DumpId, DumpState>,
    last_rx: Instant,
    echo_sent: Option<Instant>,
    features: Option<FeaturesReply>,
}

impl Session {
    /// A new session; its HELLO is ready to be sent.
    pub fn new(now: Instant, config: Config) -> Self {
        let mut s = Session {
            config,
            state: State::HelloSent,
            next_xid: 1,
            next_bundle: 1,
            rx: BytesMut::new(),
            tx: BytesMut::new(),
            held: Vec::new(),
            events: VecDeque::new(),
            pending: HashMap::new(),
            bundles: HashMap::new(),
            batches: HashMap::new(),
            dumps: HashMap::new(),
            last_rx: now,
            echo_sent: None,
            features: None,
        };
        let xid = s.xid();
        Message::Hello(Hello::of13()).encode(xid, &mut s.tx);
        s
    }

    pub fn state(&self) -> &State {
        &self.state
    }

    pub fn is_ready(&self) -> bool {
        self.state == State::Ready
    }

    /// The switch's features, once connected.
    pub fn features(&self) -> Option<&FeaturesReply> {
        self.features.as_ref()
    }

    /// Requests still waiting for their answer.
    pub fn outstanding(&self) -> usize {
        self.pending.len()
    }

    fn xid(&mut self) -> u32 {
        let x = self.next_xid;
        // Skip 0, which some switches treat specially.
        self.next_xid = self.next_xid.wrapping_add(1).max(1);
        x
    }

    fn queue(&mut self, xid: u32, msg: Message) {
        if matches!(self.state, State::Closed(_)) {
            return;
        }
        if self.state == State::Ready {
            msg.encode(xid, &mut self.tx);
        } else {
            self.held.push((xid, msg));
        }
    }

    /// Sends a message that expects no reply (a flow-mod outside a bundle, packet-out, ...).
    /// Errors the switch reports for it come back as [`Event::Error`] with this xid.
    pub fn send(&mut self, msg: impl Into<Message>) -> u32 {
        let xid = self.xid();
        self.queue(xid, msg.into());
        xid
    }

    /// Sends a request whose reply comes back as [`Event::Reply`] with the returned xid.
    pub fn send_request(&mut self, msg: impl Into<Message>) -> u32 {
        let xid = self.xid();
        self.pending.insert(
            xid,
            Pending::Request {
                multipart: None,
                dump: None,
            },
        );
        self.queue(xid, msg.into());
        xid
    }

    /// Sends `messages` one by one (not in a bundle: what a bundle cannot carry, such as meter
    /// changes, or a packet-out), then a barrier. One [`Event::Batch`] with the returned id
    /// reports, once the switch processed them all, the errors it sent for any of them (the
    /// others stay applied).
    pub fn send_batch(&mut self, messages: impl IntoIterator<Item = Message>) -> BatchId {
        let xids: Vec<u32> = messages
            .into_iter()
            .map(|m| {
                let xid = self.xid();
                self.queue(xid, m);
                xid
            })
            .collect();
        let id = self.xid();
        for x in &xids {
            self.pending.insert(*x, Pending::BatchMsg(id));
        }
        self.pending.insert(id, Pending::BatchEnd(id));
        self.queue(id, Message::BarrierRequest);
        self.batches.insert(
            id,
            BatchState {
                xids,
                errors: Vec::new(),
            },
        );
        id
    }

    /// Reads every flow (all tables), group and meter; one [`Event::Dump`] with the returned id
    /// has them, or the first error.
    pub fn send_dump(&mut self) -> DumpId {
        let requests = [
            MultipartRequest::Flow(FlowStatsRequest::all()),
            MultipartRequest::GroupDesc,
            MultipartRequest::MeterConfig {
                meter_id: METER_ALL,
            },
        ];
        let mut id = None;
        for body in requests {
            let xid = self.xid();
            let dump_id = *id.get_or_insert(xid);
            self.pending.insert(
                xid,
                Pending::Request {
                    multipart: None,
                    dump: Some(dump_id),
                },
            );
            self.queue(xid, Message::MultipartRequest { flags: 0, body });
        }
        let id = id.expect("three requests");
        self.dumps.insert(
            id,
            DumpState {
                dump: Dump::default(),
                missing: 3,
            },
        );
        id
    }

    /// A reply (or error) for a request of dump `id`.
    fn dump_answer(&mut self, id: DumpId, xid: u32, msg: Message) {
        // A dump that already failed ignores its other replies.
        let Some(state) = self.dumps.get_mut(&id) else {
            return;
        };
        let failed = match msg {
            Message::MultipartReply { body, .. } => match body {
                MultipartReply::Flow(f) => {
                    state.dump.flows = f;
                    None
                }
                MultipartReply::GroupDesc(g) => {
                    state.dump.groups = g;
                    None
                }
                MultipartReply::MeterConfig(m) => {
                    state.dump.meters = m;
                    None
                }
                body => Some(DumpError::Unexpected(Box::new(Message::MultipartReply {
                    flags: 0,
                    body,
                }))),
            },
            Message::Error(error) => Some(DumpError::Refused(RequestError { xid, error })),
            other => Some(DumpError::Unexpected(Box::new(other))),
        };
        let result = match failed {
            Some(e) => Err(e),
            None => {
                state.missing -= 1;
                if state.missing > 0 {
                    return;
                }
                Ok(())
            }
        };
        let state = self.dumps.remove(&id).expect("present");
        self.events.push_back(Event::Dump {
            dump_id: id,
            result: result.map(|()| state.dump),
        });
    }

    /// Sends a barrier; [`Event::Barrier`] says when everything before it was processed.
    pub fn send_barrier(&mut self) -> u32 {
        let xid = self.xid();
        self.pending.insert(xid, Pending::Barrier);
        self.queue(xid, Message::BarrierRequest);
        xid
    }

    /// Opens a bundle; returns its id.
    pub fn bundle_open(&mut self, flags: u16) -> BundleId {
        let id = self.next_bundle;
        self.next_bundle = self.next_bundle.wrapping_add(1).max(1);
        self.bundles.insert(id, BundleState::default());
        let xid = self.xid();
        self.pending.insert(xid, Pending::BundleOpen(id));
        self.queue(
            xid,
            Message::BundleControl(BundleCtrl {
                bundle_id: id,
                ctrl_type: BundleCtrlType::OpenRequest,
                flags,
                properties: vec![],
            }),
        );
        id
    }

    /// Adds a message to an open bundle; returns the xid errors for it will carry.
    pub fn bundle_add(&mut self, bundle_id: BundleId, flags: u16, msg: impl Into<Message>) -> u32 {
        let xid = self.xid();
        self.pending.insert(xid, Pending::BundleAdd(bundle_id));
        self.queue(
            xid,
            Message::BundleAdd(BundleAdd {
                bundle_id,
                flags,
                message: Box::new(msg.into()),
            }),
        );
        xid
    }

    /// Commits a bundle; the outcome comes as [`Event::Bundle`].
    pub fn bundle_commit(&mut self, bundle_id: BundleId, flags: u16) -> u32 {
        self.bundle_ctrl(bundle_id, flags, BundleCtrlType::CommitRequest)
    }

    /// Discards a bundle; the outcome comes as [`Event::Bundle`].
    pub fn bundle_discard(&mut self, bundle_id: BundleId, flags: u16) -> u32 {
        self.bundle_ctrl(bundle_id, flags, BundleCtrlType::DiscardRequest)
    }

    fn bundle_ctrl(&mut self, bundle_id: BundleId, flags: u16, t: BundleCtrlType) -> u32 {
        let xid = self.xid();
        let p = if t == BundleCtrlType::CommitRequest {
            Pending::BundleCommit(bundle_id)
        } else {
            Pending::BundleDiscard(bundle_id)
        };
        self.pending.insert(xid, p);
        self.queue(
            xid,
            Message::BundleControl(BundleCtrl {
                bundle_id,
                ctrl_type: t,
                flags,
                properties: vec![],
            }),
        );
        xid
    }

    /// Open, add every message, then commit only if the switch accepted every add (a barrier
    /// after the adds tells), else discard: one atomic change of the switch or none. Open vSwitch
    /// checks each message when it is added and would commit the rest of a bundle whose adds
    /// partly failed, so the check is needed for all-or-nothing. The outcome comes as one
    /// [`Event::Bundle`] for the returned id.
    pub fn send_bundle(&mut self, messages: impl IntoIterator<Item = Message>) -> BundleId {
        let flags = bundle_flags::ATOMIC | bundle_flags::ORDERED;
        let id = self.bundle_open(flags);
        for m in messages {
            self.bundle_add(id, flags, m);
        }
        self.bundle_finish(id, flags);
        id
    }

    /// Ends a bundle all-or-nothing: a barrier after the adds, then commit if every add was
    /// accepted, else discard. The outcome comes as [`Event::Bundle`].
    pub fn bundle_finish(&mut self, bundle_id: BundleId, flags: u16) {
        let xid = self.xid();
        self.pending
            .insert(xid, Pending::BundleCheck(bundle_id, flags));
        self.queue(xid, Message::BarrierRequest);
    }

    /// Bytes to write to the switch, if any.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        if self.tx.is_empty() {
            None
        } else {
            Some(self.tx.split().freeze())
        }
    }

    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Session::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if matches!(self.state, State::Closed(_)) {
            return None;
        }
        Some(match self.echo_sent {
            Some(sent) => sent + self.config.echo_timeout,
            None => self.last_rx + self.config.echo_interval,
        })
    }

    pub fn handle_timeout(&mut self, now: Instant) {
        if matches!(self.state, State::Closed(_)) {
            return;
        }
        match self.echo_sent {
            Some(sent) if now >= sent + self.config.echo_timeout => {
                self.close(CloseReason::EchoTimeout);
            }
            None if now >= self.last_rx + self.config.echo_interval => {
                let xid = self.xid();
                self.pending.insert(xid, Pending::Echo);
                Message::EchoRequest(Vec::new()).encode(xid, &mut self.tx);
                self.echo_sent = Some(now);
            }
            _ => {}
        }
    }

    fn close(&mut self, reason: CloseReason) {
        if matches!(self.state, State::Closed(_)) {
            return;
        }
        self.state = State::Closed(reason.clone());
        self.events.push_back(Event::Closed(reason));
    }

    /// Feeds bytes received from the switch.
    pub fn handle_input(&mut self, data: &[u8], now: Instant) {
        if matches!(self.state, State::Closed(_)) {
            return;
        }
        self.rx.extend_from_slice(data);
        loop {
            let len = match frame_len(&self.rx) {
                Ok(Some(len)) => len,
                Ok(None) => break,
                Err(e) => {
                    self.close(CloseReason::BadFraming(e.to_string()));
                    return;
                }
            };
            let frame = self.rx.split_to(len);
            self.last_rx = now;
            self.echo_sent = None;
            self.handle_frame(&frame);
            if matches!(self.state, State::Closed(_)) {
                return;
            }
        }
    }

    fn send_error(&mut self, xid: u32, code: ErrorCode, offending: &[u8]) {
        // Like a switch, quote at most 64 bytes of what was refused.
        let data = offending[..offending.len().min(64)].to_vec();
        Message::Error(ErrorMsg::new(code, data)).encode(xid, &mut self.tx);
    }

    fn handle_frame(&mut self, frame: &[u8]) {
        let header = match Header::parse(frame) {
            Ok(h) => h,
            Err(_) => return, // frame_len guaranteed a header
        };
        let msg = match Message::decode(frame) {
            Ok((_, m)) => m,
            Err(e) => {
                if self.state == State::HelloSent && header.msg_type == MsgType::Hello {
                    self.incompatible(header.xid);
                    return;
                }
                let code = match e {
                    DecodeError::BadVersion(_) => ErrorCode::new(1, 0), // OFPBRC_BAD_VERSION
                    ref other => other.ofp_error(),
                };
                // Never answer an error with an error: that could ping-pong forever.
                if header.msg_type != MsgType::Error {
                    self.send_error(header.xid, code, frame);
                }
                self.events.push_back(Event::Undecodable {
                    xid: header.xid,
                    error: e,
                });
                return;
            }
        };
        match (&self.state, msg) {
            (State::HelloSent, Message::Hello(h)) => {
                if h.offers(header.version, OFP13_VERSION) {
                    self.state = State::FeaturesSent;
                    let xid = self.xid();
                    Message::FeaturesRequest.encode(xid, &mut self.tx);
                } else {
                    self.incompatible(header.xid);
                }
            }
            (State::HelloSent | State::FeaturesSent, Message::Error(e)) => {
                let code = match &e {
                    ErrorMsg::Standard { code, .. } => *code,
                    ErrorMsg::Experimenter { exp_code, .. } => ErrorCode::new(0xffff, *exp_code),
                };
                self.close(CloseReason::HandshakeError(code));
            }
            (State::FeaturesSent, Message::FeaturesReply(f)) => {
                self.state = State::Ready;
                self.features = Some(f.clone());
                self.events.push_back(Event::Connected(f));
                for (xid, m) in std::mem::take(&mut self.held) {
                    m.encode(xid, &mut self.tx);
                }
            }
            (_, Message::EchoRequest(data)) => {
                Message::EchoReply(data).encode(header.xid, &mut self.tx);
            }
            (_, Message::Unknown { .. }) => {
                self.send_error(header.xid, ErrorCode::new(1, 1), frame); // OFPBRC_BAD_TYPE
            }
            (_, msg) => self.handle_answer(header.xid, msg),
        }
    }

    fn incompatible(&mut self, xid: u32) {
        let text = b"We support only OpenFlow 1.3 (version 0x04).".to_vec();
        Message::Error(ErrorMsg::new(ErrorCode::new(0, 0), text)).encode(xid, &mut self.tx);
        self.close(CloseReason::IncompatibleVersion);
    }

    fn handle_answer(&mut self, xid: u32, msg: Message) {
        let Some(pending) = self.pending.remove(&xid) else {
            // Nobody asked: a message the switch sends on its own, or an error for a send().
            match msg {
                Message::Error(error) => self
                    .events
                    .push_back(Event::Error(RequestError { xid, error })),
                Message::PacketIn(p) => self.events.push_back(Event::PacketIn(p.into())),
                Message::Experimenter(e) => match PacketIn2::from_experimenter(&e) {
                    Some(Ok(p)) => self.events.push_back(Event::PacketIn(p)),
                    Some(Err(error)) => self.events.push_back(Event::Undecodable { xid, error }),
                    None => self.events.push_back(Event::Async {
                        xid,
                        message: Message::Experimenter(e),
                    }),
                },
                message => self.events.push_back(Event::Async { xid, message }),
            }
            return;
        };
        match (pending, msg) {
            (Pending::Echo, Message::EchoReply(_)) => {}
            (Pending::Barrier, Message::BarrierReply) => {
                self.events.push_back(Event::Barrier { xid })
            }
            (Pending::BundleCheck(id, flags), Message::BarrierReply) => {
                let clean = self
                    .bundles
                    .get(&id)
                    .is_some_and(|b| b.message_errors.is_empty() && b.failed.is_none());
                if clean {
                    self.bundle_commit(id, flags);
                } else {
                    self.bundle_discard(id, flags);
                }
            }
            (Pending::BatchMsg(id), Message::Error(error)) => {
                if let Some(b) = self.batches.get_mut(&id) {
                    b.errors.push(RequestError { xid, error });
                }
            }
            (Pending::BatchEnd(id), reply) => {
                if let (Some(b), Message::Error(error)) = (self.batches.get_mut(&id), reply) {
                    b.errors.push(RequestError { xid, error });
                }
                // Messages the switch never answered are done with too.
                self.pending
                    .retain(|_, p| !matches!(p, Pending::BatchMsg(b) if *b == id));
                if let Some(b) = self.batches.remove(&id) {
                    self.events.push_back(Event::Batch(BatchOutcome {
                        batch_id: id,
                        xids: b.xids,
                        errors: b.errors,
                    }));
                }
            }
            (
                Pending::Request {
                    multipart,
                    dump: owner,
                },
                Message::MultipartReply { flags, body },
            ) => {
                let joined = match multipart {
                    None => body,
                    Some(mut acc) => {
                        if !acc.extend(body.clone()) {
                            // Parts of different types: report what we have; keep the rest.
                            acc = body;
                        }
                        acc
                    }
                };
                if flags & MORE != 0 {
                    self.pending.insert(
                        xid,
                        Pending::Request {
                            multipart: Some(joined),
                            dump: owner,
                        },
                    );
                } else if let Some(id) = owner {
                    self.dump_answer(
                        id,
                        xid,
                        Message::MultipartReply {
                            flags,
                            body: joined,
                        },
                    );
                } else {
                    self.events.push_back(Event::Reply {
                        xid,
                        message: Message::MultipartReply {
                            flags,
                            body: joined,
                        },
                    });
                }
            }
            (Pending::BundleAdd(id), Message::Error(error)) => {
                // The switch reports errors for bundled messages with the BUNDLE_ADD's xid.
                if let Some(b) = self.bundles.get_mut(&id) {
                    b.message_errors.push(RequestError { xid, error });
                }
            }
            (Pending::BundleOpen(id), Message::Error(error)) => {
                if let Some(b) = self.bundles.get_mut(&id) {
                    b.failed.get_or_insert(error);
                }
            }
            (Pending::BundleOpen(_), Message::BundleControl(_)) => {}
            (p @ (Pending::BundleCommit(id) | Pending::BundleDiscard(id)), reply) => {
                let mut state = self.bundles.remove(&id).unwrap_or_default();
                let mut committed = matches!(p, Pending::BundleCommit(_));
                if let Message::Error(e) = reply {
                    state.failed.get_or_insert(e);
                    committed = false;
                }
                // Adds the switch never answered are done with too.
                self.pending.retain(
                    |_, p| !matches!(p, Pending::BundleAdd(b) | Pending::BundleOpen(b) if *b == id),
                );
                self.events.push_back(Event::Bundle(BundleOutcome {
                    bundle_id: id,
                    message_errors: state.message_errors,
                    error: state.failed,
                    committed,
                }));
            }
            (Pending::Request { dump: Some(id), .. }, msg) => self.dump_answer(id, xid, msg),
            (_, Message::Error(error)) => self
                .events
                .push_back(Event::Error(RequestError { xid, error })),
            (_, message) => self.events.push_back(Event::Reply { xid, message }),
        }
    }
}

/// A complete message's length from its first bytes, for drivers that read frame by frame.
pub fn peek_len(header: &[u8]) -> Option<usize> {
    (header.len() >= HEADER_LEN).then(|| u16::from_be_bytes([header[2], header[3]]) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::{FlowMod, MultipartRequest};
    use crate::oxm::Match;

    /// A fake switch: decodes what the session sends, answers as OVS would.
    fn decode_all(bytes: &[u8]) -> Vec<(Header, Message)> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while let Ok(Some(n)) = frame_len(rest) {
            out.push(Message::decode(&rest[..n]).unwrap());
            rest = &rest[n..];
        }
        out
    }

    fn features() -> FeaturesReply {
        FeaturesReply {
            datapath_id: 0x42,
            n_buffers: 0,
            n_tables: 254,
            auxiliary_id: 0,
            capabilities: 0x4f,
            reserved: 0,
        }
    }

    fn connected(now: Instant) -> Session {
        let mut s = Session::new(now, Config::default());
        let sent = decode_all(&s.poll_transmit().unwrap());
        assert!(matches!(sent[0].1, Message::Hello(_)));
        s.handle_input(&Message::Hello(Hello::of13()).to_bytes(9), now);
        let sent = decode_all(&s.poll_transmit().unwrap());
        assert_eq!(sent[0].1, Message::FeaturesRequest);
        s.handle_input(
            &Message::FeaturesReply(features()).to_bytes(sent[0].0.xid),
            now,
        );
        assert_eq!(s.poll_event(), Some(Event::Connected(features())));
        assert!(s.is_ready());
        s
    }

    #[test]
    fn handshake_then_held_requests_go_out() {
        let now = Instant::now();
        let mut s = Session::new(now, Config::default());
        let xid = s.send_barrier(); // before the handshake: held
        s.poll_transmit();
        s.handle_input(&Message::Hello(Hello::of13()).to_bytes(1), now);
        let fx = decode_all(&s.poll_transmit().unwrap())[0].0.xid;
        // Feed the reply one byte at a time: framing must cope.
        for b in Message::FeaturesReply(features()).to_bytes(fx).iter() {
            s.handle_input(&[*b], now);
        }
        let sent = decode_all(&s.poll_transmit().unwrap());
        assert_eq!(sent, vec![(sent[0].0, Message::BarrierRequest)]);
        assert_eq!(sent[0].0.xid, xid);
        s.handle_input(&Message::BarrierReply.to_bytes(xid), now);
        assert!(matches!(s.poll_event(), Some(Event::Connected(_))));
        assert_eq!(s.poll_event(), Some(Event::Barrier { xid }));
    }

    #[test]
    fn refuses_a_peer_without_openflow_13() {
        let now = Instant::now();
        let mut s = Session::new(now, Config::default());
        s.poll_transmit();
        // An OpenFlow 1.0 hello with no bitmap.
        s.handle_input(&[0x01, 0, 0, 8, 0, 0, 0, 5], now);
        let sent = decode_all(&s.poll_transmit().unwrap());
        match &sent[0].1 {
            Message::Error(ErrorMsg::Standard { code, .. }) => {
                assert_eq!(code.name(), "OFPHFC_INCOMPATIBLE")
            }
            other => panic!("expected HELLO_FAILED, got {other:?}"),
        }
        assert_eq!(
            s.poll_event(),
            Some(Event::Closed(CloseReason::IncompatibleVersion))
        );
    }

    #[test]
    fn echo_keepalive_and_dead_peer() {
        let t0 = Instant::now();
        let mut s = connected(t0);
        s.poll_transmit();
        // The switch's echo is answered with the same xid and data.
        s.handle_input(&Message::EchoRequest(vec![1, 2]).to_bytes(77), t0);
        let sent = decode_all(&s.poll_transmit().unwrap());
        assert_eq!(sent[0].0.xid, 77);
        assert_eq!(sent[0].1, Message::EchoReply(vec![1, 2]));
        // Quiet for the interval: we ask.
        let t1 = s.poll_timeout().unwrap();
        assert_eq!(t1, t0 + Duration::from_secs(5));
        s.handle_timeout(t1);
        let sent = decode_all(&s.poll_transmit().unwrap());
        assert_eq!(sent[0].1, Message::EchoRequest(vec![]));
        // An answer in time keeps the session; then silence past the timeout closes it.
        s.handle_input(&Message::EchoReply(vec![]).to_bytes(sent[0].0.xid), t1);
        let t2 = s.poll_timeout().unwrap();
        s.handle_timeout(t2);
        s.poll_transmit().unwrap();
        let t3 = s.poll_timeout().unwrap();
        assert_eq!(t3, t2 + Duration::from_secs(10));
        s.handle_timeout(t3 - Duration::from_millis(1));
        assert!(s.is_ready());
        s.handle_timeout(t3);
        assert_eq!(
            s.poll_event(),
            Some(Event::Closed(CloseReason::EchoTimeout))
        );
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn multipart_parts_are_joined() {
        let now = Instant::now();
        let mut s = connected(now);
        s.poll_transmit();
        let xid = s.send_request(MultipartRequest::PortDesc);
        let port = |n: u32| crate::msg::Port {
            port_no: n,
            hw_addr: [0; 6],
            name: format!("p{n}"),
            config: 0,
            state: 0,
            curr: 0,
            advertised: 0,
            supported: 0,
            peer: 0,
            curr_speed: 0,
            max_speed: 0,
        };
        let part = |flags, ports| Message::MultipartReply {
            flags,
            body: MultipartReply::PortDesc(ports),
        };
        s.handle_input(&part(MORE, vec![port(1)]).to_bytes(xid), now);
        assert_eq!(s.poll_event(), None);
        s.handle_input(&part(0, vec![port(2), port(3)]).to_bytes(xid), now);
        assert_eq!(
            s.poll_event(),
            Some(Event::Reply {
                xid,
                message: part(0, vec![port(1), port(2), port(3)])
            })
        );
        assert_eq!(s.outstanding(), 0);
    }

    #[test]
    fn bundle_errors_map_back_to_the_message_that_caused_them() {
        let now = Instant::now();
        let mut s = connected(now);
        s.poll_transmit();
        let fm = |p| Message::FlowMod(FlowMod::add(0, p, Match::new(), vec![]));
        // A clean bundle: open, adds, barrier, then commit.
        let id = s.send_bundle([fm(1), fm(2), fm(3)]);
        let sent = decode_all(&s.poll_transmit().unwrap());
        assert_eq!(sent.len(), 5);
        assert_eq!(sent[4].1, Message::BarrierRequest);
        s.handle_input(&Message::BarrierReply.to_bytes(sent[4].0.xid), now);
        let sent = decode_all(&s.poll_transmit().unwrap());
        assert!(
            matches!(&sent[0].1, Message::BundleControl(c) if c.ctrl_type == BundleCtrlType::CommitRequest)
        );
        let mut reply = BundleCtrl {
            bundle_id: id,
            ctrl_type: BundleCtrlType::CommitReply,
            flags: 3,
            properties: vec![],
        };
        s.handle_input(
            &Message::BundleControl(reply.clone()).to_bytes(sent[0].0.xid),
            now,
        );
        assert!(matches!(s.poll_event(), Some(Event::Bundle(o)) if o.is_ok() && o.bundle_id == id));

        // The switch refuses the second flow: the bundle is discarded, the error named.
        let id = s.send_bundle([fm(1), fm(2), fm(3)]);
        let sent = decode_all(&s.poll_transmit().unwrap());
        let add2 = sent[2].0.xid;
        match &sent[2].1 {
            Message::BundleAdd(b) => assert_eq!(*b.message, fm(2)),
            other => panic!("{other:?}"),
        }
        let err = ErrorMsg::new(ErrorCode::new(5, 1), vec![]);
        s.handle_input(&Message::Error(err.clone()).to_bytes(add2), now);
        s.handle_input(&Message::BarrierReply.to_bytes(sent[4].0.xid), now);
        let sent = decode_all(&s.poll_transmit().unwrap());
        assert!(
            matches!(&sent[0].1, Message::BundleControl(c) if c.ctrl_type == BundleCtrlType::DiscardRequest)
        );
        reply.bundle_id = id;
        reply.ctrl_type = BundleCtrlType::DiscardReply;
        s.handle_input(&Message::BundleControl(reply).to_bytes(sent[0].0.xid), now);
        assert_eq!(
            s.poll_event(),
            Some(Event::Bundle(BundleOutcome {
                bundle_id: id,
                message_errors: vec![RequestError {
                    xid: add2,
                    error: err
                }],
                error: None,
                committed: false,
            }))
        );
        assert_eq!(s.outstanding(), 0);
    }

    #[test]
    fn a_batch_reports_the_errors_of_its_messages_at_its_barrier() {
        let now = Instant::now();
        let mut s = connected(now);
        s.poll_transmit();
        let fm = |p| Message::FlowMod(FlowMod::add(0, p, Match::new(), vec![]));
        let id = s.send_batch([fm(1), fm(2), fm(3)]);
        let sent = decode_all(&s.poll_transmit().unwrap());
        assert_eq!(sent.len(), 4);
        assert_eq!(sent[3].1, Message::BarrierRequest);
        assert_eq!(sent[3].0.xid, id);
        let err = ErrorMsg::new(ErrorCode::new(5, 1), vec![]);
        s.handle_input(&Message::Error(err.clone()).to_bytes(sent[1].0.xid), now);
        // Nothing until the barrier: the error belongs to the batch, not out on its own.
        assert_eq!(s.poll_event(), None);
        s.handle_input(&Message::BarrierReply.to_bytes(id), now);
        assert_eq!(
            s.poll_event(),
            Some(Event::Batch(BatchOutcome {
                batch_id: id,
                xids: sent[..3].iter().map(|(h, _)| h.xid).collect(),
                errors: vec![RequestError {
                    xid: sent[1].0.xid,
                    error: err
                }],
            }))
        );
        assert_eq!(s.outstanding(), 0);
        // An empty batch is a barrier.
        let id = s.send_batch([]);
        s.handle_input(&Message::BarrierReply.to_bytes(id), now);
        assert!(matches!(s.poll_event(), Some(Event::Batch(b)) if b.is_ok() && b.batch_id == id));
    }

    #[test]
    fn a_dump_joins_its_three_replies_or_reports_the_first_error() {
        let now = Instant::now();
        let mut s = connected(now);
        s.poll_transmit();
        let id = s.send_dump();
        let sent = decode_all(&s.poll_transmit().unwrap());
        assert_eq!(sent.len(), 3);
        assert_eq!(sent[0].0.xid, id);
        let reply = |flags, body| Message::MultipartReply { flags, body };
        // Meters first, then groups, then the flows in two parts: order does not matter.
        s.handle_input(
            &reply(0, MultipartReply::MeterConfig(vec![])).to_bytes(sent[2].0.xid),
            now,
        );
        s.handle_input(
            &reply(0, MultipartReply::GroupDesc(vec![])).to_bytes(sent[1].0.xid),
            now,
        );
        s.handle_input(
            &reply(MORE, MultipartReply::Flow(vec![])).to_bytes(sent[0].0.xid),
            now,
        );
        assert_eq!(s.poll_event(), None);
        s.handle_input(
            &reply(0, MultipartReply::Flow(vec![])).to_bytes(sent[0].0.xid),
            now,
        );
        assert_eq!(
            s.poll_event(),
            Some(Event::Dump {
                dump_id: id,
                result: Ok(Dump::default())
            })
        );
        assert_eq!(s.outstanding(), 0);

        // The switch refuses the meters: the dump fails once, the rest is ignored.
        let id = s.send_dump();
        let sent = decode_all(&s.poll_transmit().unwrap());
        let err = ErrorMsg::new(ErrorCode::new(1, 1), vec![]);
        s.handle_input(&Message::Error(err.clone()).to_bytes(sent[2].0.xid), now);
        assert_eq!(
            s.poll_event(),
            Some(Event::Dump {
                dump_id: id,
                result: Err(DumpError::Refused(RequestError {
                    xid: sent[2].0.xid,
                    error: err
                }))
            })
        );
        s.handle_input(
            &reply(0, MultipartReply::Flow(vec![])).to_bytes(sent[0].0.xid),
            now,
        );
        assert_eq!(s.poll_event(), None);
    }

    #[test]
    fn packet_ins_of_both_formats_are_one_event() {
        let now = Instant::now();
        let mut s = connected(now);
        let p = crate::msg::PacketIn2 {
            reason: 1,
            table_id: 3,
            cookie: 9,
            match_: Match::new().in_port(4),
            userdata: Some(vec![7]),
            total_len: 14,
            buffer_id: crate::msg::NO_BUFFER,
            data: vec![1; 14],
            continuation: None,
        };
        s.handle_input(&p.to_message().to_bytes(0), now);
        assert_eq!(s.poll_event(), Some(Event::PacketIn(p.clone())));
        let plain = crate::msg::PacketIn {
            buffer_id: p.buffer_id,
            total_len: 14,
            reason: 1,
            table_id: 3,
            cookie: 9,
            match_: p.match_.clone(),
            data: p.data.clone(),
        };
        s.handle_input(&Message::PacketIn(plain).to_bytes(0), now);
        assert_eq!(
            s.poll_event(),
            Some(Event::PacketIn(crate::msg::PacketIn2 {
                userdata: None,
                ..p
            }))
        );
    }

    #[test]
    fn unknown_and_undecodable_messages_get_the_right_error() {
        let now = Instant::now();
        let mut s = connected(now);
        s.poll_transmit();
        s.handle_input(&[0x04, 99, 0, 8, 0, 0, 0, 3], now);
        let sent = decode_all(&s.poll_transmit().unwrap());
        match &sent[0].1 {
            Message::Error(ErrorMsg::Standard { code, data }) => {
                assert_eq!(code.name(), "OFPBRC_BAD_TYPE");
                assert_eq!(data, &vec![0x04, 99, 0, 8, 0, 0, 0, 3]);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(sent[0].0.xid, 3);
        // A 1.0 barrier after the handshake: bad version.
        s.handle_input(&[0x01, 18, 0, 8, 0, 0, 0, 4], now);
        let sent = decode_all(&s.poll_transmit().unwrap());
        assert!(
            matches!(&sent[0].1, Message::Error(ErrorMsg::Standard { code, .. }) if code.name() == "OFPBRC_BAD_VERSION")
        );
        assert!(matches!(
            s.poll_event(),
            Some(Event::Undecodable { xid: 4, .. })
        ));
        // A length below 8 cannot be framed: the session ends.
        s.handle_input(&[0x04, 2, 0, 4, 0, 0, 0, 5], now);
        assert!(matches!(
            s.poll_event(),
            Some(Event::Closed(CloseReason::BadFraming(_)))
        ));
    }
}

#[cfg(test)]
mod close_reason_display {
    use super::*;

    #[test]
    fn close_reasons_read_as_sentences() {
        assert_eq!(
            CloseReason::EchoTimeout.to_string(),
            "no answer to echo requests in time"
        );
        let code = ErrorCode::by_name("OFPHFC_INCOMPATIBLE").expect("a known code");
        assert_eq!(
            CloseReason::HandshakeError(code).to_string(),
            "the switch refused the handshake: OFPHFC_INCOMPATIBLE"
        );
    }
}
