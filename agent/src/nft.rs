//! The host gateway's masquerade rule in nf_tables, over netlink (no `nft` command): Weft's own
//! encoder for the few messages it needs, sent as one atomic batch on a `NETLINK_NETFILTER`
//! socket of the calling thread's namespace.
//!
//! Weft owns one table, `ip weft`, holding one chain, `postrouting` (type nat, hook postrouting,
//! priority 100, policy accept), holding one rule:
//! `ip saddr PREFIX oifname != "weft-gw" masquerade comment "weft: …"`.
//! It is replaced whole, in one batch (NEWTABLE, DELTABLE, NEWTABLE, NEWCHAIN, NEWRULE: what
//! `nft -f` does for a file that flushes a table by deleting it), or deleted. The rule's comment
//! names everything the rule depends on, so a dump of the chain tells whether the kernel already
//! has what is wanted; nothing is sent then.
//!
//! The layout follows the kernel's `include/uapi/linux/netfilter/nf_tables.h` and
//! `nfnetlink.h`; it was checked against what `nft` 1.0.6 sends for the same ruleset (the
//! expression bytes in the tests are such a capture).

use std::time::Duration;

use ipnet::Ipv4Net;
use netlink_sys::{AsyncSocket, AsyncSocketExt, TokioSocket};

/// Weft's table (family `ip`).
pub const TABLE: &str = "weft";
/// Its one chain.
pub const CHAIN: &str = "postrouting";

// netlink (linux/netlink.h)
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
/// In an error message: the original message was cut to its header.
const NLM_F_CAPPED: u16 = 0x100;
/// In an error message: extended-ack attributes follow.
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSGERR_ATTR_MSG: u16 = 1;
const NLA_F_NESTED: u16 = 0x8000;
const NLA_TYPE_MASK: u16 = 0x3fff;
const NLMSG_HDRLEN: usize = 16;

// nfnetlink (linux/netfilter/nfnetlink.h, linux/netfilter.h)
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFPROTO_UNSPEC: u8 = 0;
const NFPROTO_IPV4: u8 = 2;
const NFNETLINK_V0: u8 = 0;
const NF_ACCEPT: u32 = 1;
const NF_INET_POST_ROUTING: u32 = 4;

// nf_tables (linux/netfilter/nf_tables.h)
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_DELTABLE: u16 = 2;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_GETCHAIN: u16 = 4;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_GETRULE: u16 = 7;

const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_FLAGS: u16 = 2;

const NFTA_CHAIN_TABLE: u16 = 1;
const NFTA_CHAIN_NAME: u16 = 3;
const NFTA_CHAIN_HOOK: u16 = 4;
const NFTA_CHAIN_POLICY: u16 = 5;
const NFTA_CHAIN_TYPE: u16 = 7;
const NFTA_HOOK_HOOKNUM: u16 = 1;
const NFTA_HOOK_PRIORITY: u16 = 2;

const NFTA_RULE_TABLE: u16 = 1;
const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_EXPRESSIONS: u16 = 4;
const NFTA_RULE_USERDATA: u16 = 7;

const NFTA_LIST_ELEM: u16 = 1;
const NFTA_EXPR_NAME: u16 = 1;
const NFTA_EXPR_DATA: u16 = 2;
const NFTA_DATA_VALUE: u16 = 1;

const NFTA_PAYLOAD_DREG: u16 = 1;
const NFTA_PAYLOAD_BASE: u16 = 2;
const NFTA_PAYLOAD_OFFSET: u16 = 3;
const NFTA_PAYLOAD_LEN: u16 = 4;
const NFT_PAYLOAD_NETWORK_HEADER: u32 = 1;

const NFTA_BITWISE_SREG: u16 = 1;
const NFTA_BITWISE_DREG: u16 = 2;
const NFTA_BITWISE_LEN: u16 = 3;
const NFTA_BITWISE_MASK: u16 = 4;
const NFTA_BITWISE_XOR: u16 = 5;

const NFTA_CMP_SREG: u16 = 1;
const NFTA_CMP_OP: u16 = 2;
const NFTA_CMP_DATA: u16 = 3;
const NFT_CMP_EQ: u32 = 0;
const NFT_CMP_NEQ: u32 = 1;

const NFTA_META_DREG: u16 = 1;
const NFTA_META_KEY: u16 = 2;
const NFT_META_OIFNAME: u32 = 7;

/// The first 16-byte register (`NFT_REG_1`).
const NFT_REG_1: u32 = 1;
const IFNAMSIZ: usize = 16;
/// `NFTNL_UDATA_RULE_COMMENT`: the user-data record `nft` shows as the rule's comment.
const UDATA_RULE_COMMENT: u8 = 0;
/// The chain's priority: where `srcnat` is.
const NAT_PRIORITY: i32 = 100;

/// How long the kernel may take to answer (it answers a batch while it is being sent; this only
/// bounds a broken exchange).
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);

/// Netlink attributes being built: each is length, type, value, padded to 4 bytes.
#[derive(Debug, Default, Clone)]
struct Attrs(Vec<u8>);

impl Attrs {
    fn bytes(&mut self, ty: u16, value: &[u8]) -> &mut Self {
        let len = u16::try_from(4 + value.len()).expect("attribute under 64 KiB");
        self.0.extend_from_slice(&len.to_ne_bytes());
        self.0.extend_from_slice(&ty.to_ne_bytes());
        self.0.extend_from_slice(value);
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
        self
    }

    /// A NUL-terminated string.
    fn string(&mut self, ty: u16, s: &str) -> &mut Self {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.bytes(ty, &v)
    }

    /// nf_tables numbers are big-endian.
    fn be32(&mut self, ty: u16, v: u32) -> &mut Self {
        self.bytes(ty, &v.to_be_bytes())
    }

    fn nested(&mut self, ty: u16, f: impl FnOnce(&mut Attrs)) -> &mut Self {
        let mut inner = Attrs::default();
        f(&mut inner);
        self.bytes(ty | NLA_F_NESTED, &inner.0)
    }

    /// `NFTA_DATA_VALUE` inside a nested `ty`.
    fn data(&mut self, ty: u16, value: &[u8]) -> &mut Self {
        self.nested(ty, |a| {
            a.bytes(NFTA_DATA_VALUE, value);
        })
    }

    /// One expression of a rule: a list element with its name and data.
    fn expr(&mut self, name: &str, f: impl FnOnce(&mut Attrs)) -> &mut Self {
        self.nested(NFTA_LIST_ELEM, |e| {
            e.string(NFTA_EXPR_NAME, name);
            e.nested(NFTA_EXPR_DATA, f);
        })
    }
}

/// One netlink message: header, `nfgenmsg` (family, version, resource id in network order),
/// attributes.
fn message(ty: u16, flags: u16, seq: u32, family: u8, res_id: u16, attrs: &[u8]) -> Vec<u8> {
    let len = u32::try_from(NLMSG_HDRLEN + 4 + attrs.len()).expect("message under 4 GiB");
    let mut m = Vec::with_capacity(len as usize);
    m.extend_from_slice(&len.to_ne_bytes());
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.push(family);
    m.push(NFNETLINK_V0);
    m.extend_from_slice(&res_id.to_be_bytes());
    m.extend_from_slice(attrs);
    m
}

/// An nf_tables batch: BATCH_BEGIN, messages each asking for an acknowledgement, BATCH_END.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The bytes to send, in one datagram.
    pub bytes: Vec<u8>,
    /// Each message's sequence number and what it does, to name the one the kernel refused.
    pub messages: Vec<(u32, String)>,
    next_seq: u32,
}

impl Batch {
    fn begin(seq: u32) -> Batch {
        Batch {
            bytes: message(
                NFNL_MSG_BATCH_BEGIN,
                NLM_F_REQUEST,
                seq,
                NFPROTO_UNSPEC,
                NFNL_SUBSYS_NFTABLES,
                &[],
            ),
            messages: vec![],
            next_seq: seq.wrapping_add(1),
        }
    }

    fn add(&mut self, what: String, nft_msg: u16, flags: u16, attrs: &Attrs) {
        let seq = self.next_seq;
        self.next_seq = seq.wrapping_add(1);
        self.bytes.extend(message(
            (NFNL_SUBSYS_NFTABLES << 8) | nft_msg,
            NLM_F_REQUEST | NLM_F_ACK | flags,
            seq,
            NFPROTO_IPV4,
            0,
            &attrs.0,
        ));
        self.messages.push((seq, what));
    }

    fn end(mut self) -> Batch {
        self.bytes.extend(message(
            NFNL_MSG_BATCH_END,
            NLM_F_REQUEST,
            self.next_seq,
            NFPROTO_UNSPEC,
            NFNL_SUBSYS_NFTABLES,
            &[],
        ));
        self
    }
}

fn table_attrs(with_flags: bool) -> Attrs {
    let mut a = Attrs::default();
    a.string(NFTA_TABLE_NAME, TABLE);
    if with_flags {
        a.be32(NFTA_TABLE_FLAGS, 0);
    }
    a
}

fn oifname_bytes(oif: &str) -> Result<[u8; IFNAMSIZ], NftError> {
    if oif.is_empty() || oif.len() >= IFNAMSIZ {
        return Err(NftError::InterfaceName(oif.to_string()));
    }
    let mut name = [0u8; IFNAMSIZ];
    name[..oif.len()].copy_from_slice(oif.as_bytes());
    Ok(name)
}

/// The rule's expressions (the contents of `NFTA_RULE_EXPRESSIONS`):
/// `ip saddr SRC oifname != EXCEPT_OIF masquerade`. The source is loaded whole (4 bytes), masked
/// unless it is a /32, and compared; the output interface's name is compared as the kernel holds
/// it, padded with NULs to 16 bytes.
pub fn rule_expressions(src: Ipv4Net, except_oif: &str) -> Result<Vec<u8>, NftError> {
    let name = oifname_bytes(except_oif)?;
    let src = src.trunc();
    let mut a = Attrs::default();
    a.expr("payload", |d| {
        d.be32(NFTA_PAYLOAD_DREG, NFT_REG_1)
            .be32(NFTA_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER)
            .be32(NFTA_PAYLOAD_OFFSET, 12)
            .be32(NFTA_PAYLOAD_LEN, 4);
    });
    if src.prefix_len() < 32 {
        a.expr("bitwise", |d| {
            d.be32(NFTA_BITWISE_SREG, NFT_REG_1)
                .be32(NFTA_BITWISE_DREG, NFT_REG_1)
                .be32(NFTA_BITWISE_LEN, 4)
                .data(NFTA_BITWISE_MASK, &src.netmask().octets())
                .data(NFTA_BITWISE_XOR, &[0; 4]);
        });
    }
    a.expr("cmp", |d| {
        d.be32(NFTA_CMP_SREG, NFT_REG_1)
            .be32(NFTA_CMP_OP, NFT_CMP_EQ)
            .data(NFTA_CMP_DATA, &src.network().octets());
    });
    a.expr("meta", |d| {
        d.be32(NFTA_META_KEY, NFT_META_OIFNAME)
            .be32(NFTA_META_DREG, NFT_REG_1);
    });
    a.expr("cmp", |d| {
        d.be32(NFTA_CMP_SREG, NFT_REG_1)
            .be32(NFTA_CMP_OP, NFT_CMP_NEQ)
            .data(NFTA_CMP_DATA, &name);
    });
    a.expr("masq", |_| {});
    Ok(a.0)
}

/// The rule's comment: everything the rule depends on, so that it identifies the rule.
pub fn rule_comment(src: Ipv4Net, except_oif: &str) -> String {
    format!(
        "weft: masquerade {} unless out through {except_oif} (v1)",
        src.trunc()
    )
}

/// The rule's user data: its comment as the record `nft` shows.
fn rule_userdata(src: Ipv4Net, except_oif: &str) -> Vec<u8> {
    let c = rule_comment(src, except_oif);
    let mut v = vec![
        UDATA_RULE_COMMENT,
        u8::try_from(c.len() + 1).unwrap_or(u8::MAX),
    ];
    v.extend_from_slice(c.as_bytes());
    v.push(0);
    v
}

/// The batch that replaces table `ip weft` by one holding only the masquerade rule. The first
/// NEWTABLE makes the DELTABLE after it succeed whether or not the table existed.
pub fn masquerade_batch(src: Ipv4Net, except_oif: &str, seq: u32) -> Result<Batch, NftError> {
    let exprs = rule_expressions(src, except_oif)?;
    let mut b = Batch::begin(seq);
    b.add(
        format!("NEWTABLE ip {TABLE} (so that it exists)"),
        NFT_MSG_NEWTABLE,
        NLM_F_CREATE,
        &table_attrs(true),
    );
    b.add(
        format!("DELTABLE ip {TABLE}"),
        NFT_MSG_DELTABLE,
        0,
        &table_attrs(false),
    );
    b.add(
        format!("NEWTABLE ip {TABLE}"),
        NFT_MSG_NEWTABLE,
        NLM_F_CREATE,
        &table_attrs(true),
    );
    let mut chain = Attrs::default();
    chain
        .string(NFTA_CHAIN_TABLE, TABLE)
        .string(NFTA_CHAIN_NAME, CHAIN)
        .string(NFTA_CHAIN_TYPE, "nat")
        .be32(NFTA_CHAIN_POLICY, NF_ACCEPT)
        .nested(NFTA_CHAIN_HOOK, |h| {
            h.be32(NFTA_HOOK_HOOKNUM, NF_INET_POST_ROUTING)
                .be32(NFTA_HOOK_PRIORITY, NAT_PRIORITY as u32);
        });
    b.add(
        format!("NEWCHAIN {CHAIN} (type nat hook postrouting priority {NAT_PRIORITY})"),
        NFT_MSG_NEWCHAIN,
        NLM_F_CREATE,
        &chain,
    );
    let mut rule = Attrs::default();
    rule.string(NFTA_RULE_TABLE, TABLE)
        .string(NFTA_RULE_CHAIN, CHAIN)
        .bytes(NFTA_RULE_EXPRESSIONS | NLA_F_NESTED, &exprs)
        .bytes(NFTA_RULE_USERDATA, &rule_userdata(src, except_oif));
    b.add(
        format!(
            "NEWRULE ip saddr {} oifname != {except_oif} masquerade",
            src.trunc()
        ),
        NFT_MSG_NEWRULE,
        NLM_F_CREATE | NLM_F_APPEND,
        &rule,
    );
    Ok(b.end())
}

/// The batch that deletes table `ip weft`.
pub fn remove_batch(seq: u32) -> Batch {
    let mut b = Batch::begin(seq);
    b.add(
        format!("DELTABLE ip {TABLE}"),
        NFT_MSG_DELTABLE,
        0,
        &table_attrs(false),
    );
    b.end()
}

/// A dump request (GETCHAIN, GETRULE) for family ip.
fn dump_request(nft_msg: u16, seq: u32, attrs: &Attrs) -> Vec<u8> {
    message(
        (NFNL_SUBSYS_NFTABLES << 8) | nft_msg,
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        NFPROTO_IPV4,
        0,
        &attrs.0,
    )
}

/// One netlink message received.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Received<'a> {
    ty: u16,
    flags: u16,
    seq: u32,
    /// After the netlink header.
    payload: &'a [u8],
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn align4(n: usize) -> usize {
    (n + 3) & !3
}

/// What went wrong talking to nf_tables; the kernel's refusals say which message and why.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    #[error("interface name {0:?} must have 1 to 15 characters")]
    InterfaceName(String),
    #[error("malformed netlink answer: message of {len} bytes at {at} of {total}")]
    Malformed { len: usize, at: usize, total: usize },
    #[error("opening a netfilter netlink socket: {0} (a kernel without nfnetlink/nf_tables?)")]
    Open(#[source] std::io::Error),
    #[error("binding the netfilter netlink socket: {0}")]
    Bind(#[source] std::io::Error),
    #[error("reading nf_tables' answer: {0}")]
    Recv(#[source] std::io::Error),
    #[error("nf_tables did not answer within {0:?}")]
    Timeout(std::time::Duration),
    #[error("sending {what} to nf_tables: {source}")]
    Send {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("sending {what} to nf_tables: {sent} of {len} bytes sent")]
    ShortSend {
        what: String,
        sent: usize,
        len: usize,
    },
    /// The kernel refused a message (its errno in words, and hints).
    #[error("{0}")]
    Refused(String),
    /// The kernel refused a message of a batch, so none of it was applied.
    #[error("{0} (nothing in the batch was applied)")]
    NothingApplied(String),
}

/// Splits a datagram into netlink messages.
fn split(buf: &[u8]) -> Result<Vec<Received<'_>>, NftError> {
    let mut out = vec![];
    let mut at = 0;
    while at + NLMSG_HDRLEN <= buf.len() {
        let len = u32_at(buf, at).unwrap_or(0) as usize;
        if len < NLMSG_HDRLEN || at + len > buf.len() {
            return Err(NftError::Malformed {
                len,
                at,
                total: buf.len(),
            });
        }
        out.push(Received {
            ty: u16_at(buf, at + 4).unwrap_or(0),
            flags: u16_at(buf, at + 6).unwrap_or(0),
            seq: u32_at(buf, at + 8).unwrap_or(0),
            payload: &buf[at + NLMSG_HDRLEN..at + len],
        });
        at += align4(len);
    }
    Ok(out)
}

/// Attributes: (type without flags, value).
fn attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = vec![];
    while b.len() >= 4 {
        let len = u16_at(b, 0).unwrap_or(0) as usize;
        let ty = u16_at(b, 2).unwrap_or(0) & NLA_TYPE_MASK;
        if len < 4 || len > b.len() {
            break;
        }
        out.push((ty, &b[4..len]));
        b = &b[align4(len).min(b.len())..];
    }
    out
}

/// An error message's code (0: acknowledgement) and the kernel's text, if it gave one.
fn error_of(m: &Received<'_>) -> (i32, Option<String>) {
    let code = m
        .payload
        .get(0..4)
        .map_or(0, |b| i32::from_ne_bytes(b.try_into().expect("4 bytes")));
    let mut text = None;
    if m.flags & NLM_F_ACK_TLVS != 0 {
        let inner_len = if m.flags & NLM_F_CAPPED != 0 {
            NLMSG_HDRLEN
        } else {
            u32_at(m.payload, 4).unwrap_or(0) as usize
        };
        if let Some(tlvs) = m.payload.get(4 + align4(inner_len)..) {
            for (ty, v) in attrs(tlvs) {
                if ty == NLMSGERR_ATTR_MSG {
                    let s = String::from_utf8_lossy(v);
                    text = Some(s.trim_end_matches('\0').to_string());
                }
            }
        }
    }
    (code, text)
}

fn errno_text(code: i32) -> String {
    std::io::Error::from_raw_os_error(-code).to_string()
}

fn nul_str(v: &[u8]) -> String {
    String::from_utf8_lossy(v.split(|c| *c == 0).next().unwrap_or(&[])).into_owned()
}

fn be32_of(v: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(v.get(0..4)?.try_into().ok()?))
}

/// A socket of this namespace's nfnetlink, with extended acks and capped error messages.
fn open() -> Result<TokioSocket, NftError> {
    let mut s =
        TokioSocket::new(netlink_sys::protocols::NETLINK_NETFILTER).map_err(NftError::Open)?;
    s.socket_mut().bind_auto().map_err(NftError::Bind)?;
    // Both are optional comforts: smaller error messages, and the kernel's reason in them.
    let _ = s.socket_ref().set_cap_ack(true);
    let _ = s.socket_ref().set_ext_ack(true);
    Ok(s)
}

async fn recv(s: &TokioSocket, buf: &mut Vec<u8>) -> Result<(), NftError> {
    buf.clear();
    match tokio::time::timeout(ANSWER_TIMEOUT, s.recv(buf)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(NftError::Recv(e)),
        Err(_) => Err(NftError::Timeout(ANSWER_TIMEOUT)),
    }
}

async fn send(s: &TokioSocket, bytes: &[u8], what: &str) -> Result<(), NftError> {
    let n = s.send(bytes).await.map_err(|source| NftError::Send {
        what: what.to_string(),
        source,
    })?;
    if n != bytes.len() {
        return Err(NftError::ShortSend {
            what: what.to_string(),
            sent: n,
            len: bytes.len(),
        });
    }
    Ok(())
}

/// Why the kernel refused a message, with a hint where the cause is likely a missing module.
fn refusal(what: &str, code: i32, text: Option<String>) -> String {
    let mut s = format!("nf_tables refused {what}: {}", errno_text(code));
    if let Some(t) = text.filter(|t| !t.is_empty()) {
        s.push_str(&format!(", kernel says: {t}"));
    }
    if (code == -libc::ENOENT || code == -libc::EOPNOTSUPP)
        && (what.starts_with("NEWCHAIN") || what.starts_with("NEWRULE"))
    {
        s.push_str(
            "; the kernel lacks nf_tables NAT support and could not load it \
             (modules nf_tables, nft_chain_nat, nft_masq, nf_nat: load them, e.g. at boot)",
        );
    }
    if code == -libc::EOPNOTSUPP && (what == "the batch" || what.starts_with("GET")) {
        s.push_str(
            "; the kernel has no nf_tables and could not load it (module nf_tables: load it, \
             e.g. at boot)",
        );
    }
    if code == -libc::EPERM {
        s.push_str("; changing nf_tables needs CAP_NET_ADMIN");
    }
    s
}

/// Sends a batch; Ok when the kernel acknowledged every message, else the first refusal, naming
/// the message.
async fn apply(s: &TokioSocket, batch: &Batch, ignore_enoent: bool) -> Result<(), NftError> {
    send(s, &batch.bytes, "a batch").await?;
    let mut pending: std::collections::BTreeMap<u32, &str> = batch
        .messages
        .iter()
        .map(|(seq, what)| (*seq, what.as_str()))
        .collect();
    let mut failures = vec![];
    let mut buf = Vec::with_capacity(64 * 1024);
    while !pending.is_empty() {
        recv(s, &mut buf).await?;
        for m in split(&buf)? {
            if m.ty != NLMSG_ERROR {
                continue;
            }
            let (code, text) = error_of(&m);
            let Some(what) = pending.remove(&m.seq) else {
                if code != 0 {
                    // Not one of the messages: the batch itself was refused.
                    return Err(NftError::Refused(refusal("the batch", code, text)));
                }
                continue;
            };
            if code != 0 && !(ignore_enoent && code == -libc::ENOENT) {
                failures.push(refusal(what, code, text));
            }
        }
    }
    match failures.into_iter().next() {
        None => Ok(()),
        Some(first) => Err(NftError::NothingApplied(first)),
    }
}

/// Runs a dump; returns the attributes of each object.
async fn dump(s: &TokioSocket, req: &[u8], seq: u32, what: &str) -> Result<Vec<Vec<u8>>, NftError> {
    send(s, req, what).await?;
    let mut out = vec![];
    let mut buf = Vec::with_capacity(64 * 1024);
    loop {
        recv(s, &mut buf).await?;
        for m in split(&buf)? {
            if m.seq != seq {
                continue;
            }
            match m.ty {
                NLMSG_DONE => return Ok(out),
                NLMSG_ERROR => {
                    let (code, text) = error_of(&m);
                    if code == 0 || code == -libc::ENOENT {
                        return Ok(out);
                    }
                    return Err(NftError::Refused(refusal(what, code, text)));
                }
                _ => out.push(m.payload.get(4..).unwrap_or(&[]).to_vec()),
            }
        }
    }
}

/// Whether the kernel already holds exactly the table `replace` would make: one chain, ours,
/// with one rule carrying the wanted comment.
async fn holds(s: &TokioSocket, src: Ipv4Net, except_oif: &str) -> Result<bool, NftError> {
    let chains = dump(
        s,
        &dump_request(NFT_MSG_GETCHAIN, 1, &Attrs::default()),
        1,
        "GETCHAIN",
    )
    .await?;
    let mut ours = 0;
    for c in &chains {
        let a = attrs(c);
        let get = |t| a.iter().find(|(ty, _)| *ty == t).map(|(_, v)| *v);
        if get(NFTA_CHAIN_TABLE).map(nul_str).as_deref() != Some(TABLE) {
            continue;
        }
        ours += 1;
        let hook = get(NFTA_CHAIN_HOOK).map(attrs).unwrap_or_default();
        let hget = |t| {
            hook.iter()
                .find(|(ty, _)| *ty == t)
                .and_then(|(_, v)| be32_of(v))
        };
        let right = get(NFTA_CHAIN_NAME).map(nul_str).as_deref() == Some(CHAIN)
            && get(NFTA_CHAIN_TYPE).map(nul_str).as_deref() == Some("nat")
            && get(NFTA_CHAIN_POLICY).and_then(be32_of) == Some(NF_ACCEPT)
            && hget(NFTA_HOOK_HOOKNUM) == Some(NF_INET_POST_ROUTING)
            && hget(NFTA_HOOK_PRIORITY) == Some(NAT_PRIORITY as u32);
        if !right {
            return Ok(false);
        }
    }
    if ours != 1 {
        return Ok(false);
    }
    let mut filter = Attrs::default();
    filter
        .string(NFTA_RULE_TABLE, TABLE)
        .string(NFTA_RULE_CHAIN, CHAIN);
    let rules = dump(s, &dump_request(NFT_MSG_GETRULE, 2, &filter), 2, "GETRULE").await?;
    let want = rule_userdata(src, except_oif);
    let ours: Vec<Option<&[u8]>> = rules
        .iter()
        .map(|r| attrs(r))
        .filter(|a| {
            a.iter()
                .any(|(t, v)| *t == NFTA_RULE_TABLE && nul_str(v) == TABLE)
                && a.iter()
                    .any(|(t, v)| *t == NFTA_RULE_CHAIN && nul_str(v) == CHAIN)
        })
        .map(|a| {
            a.iter()
                .find(|(t, _)| *t == NFTA_RULE_USERDATA)
                .map(|(_, v)| *v)
        })
        .collect();
    Ok(ours.len() == 1 && ours[0] == Some(want.as_slice()))
}

/// Makes table `ip weft` equal to what is wanted: with `Some(src)`, the masquerade rule for
/// `src` leaving through any interface but `except_oif` (replaced in one batch unless the kernel
/// already holds exactly it); with `None`, no table.
pub async fn sync_masquerade(src: Option<Ipv4Net>, except_oif: &str) -> Result<(), NftError> {
    let s = open()?;
    match src {
        Some(src) => {
            if holds(&s, src, except_oif).await? {
                return Ok(());
            }
            apply(&s, &masquerade_batch(src, except_oif, 10)?, false).await
        }
        None => apply(&s, &remove_batch(10), true).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// `NFTA_RULE_EXPRESSIONS` of `ip saddr 169.254.16.0/20 oifname != "weft-gw" masquerade`,
    /// as `nft` 1.0.6 sent it (strace of `nft -f`), byte for byte.
    #[test]
    fn expressions_match_what_nft_sends() {
        let nft = hex(
            "34000180 0c000100 7061796c 6f616400 24000280 08000100 00000001 08000200 00000001
             08000300 0000000c 08000400 00000004
             44000180 0c000100 62697477 69736500 34000280 08000100 00000001 08000200 00000001
             08000300 00000004 0c000480 08000100 fffff000 0c000580 08000100 00000000
             2c000180 08000100 636d7000 20000280 08000100 00000001 08000200 00000000
             0c000380 08000100 a9fe1000
             24000180 09000100 6d657461 00000000 14000280 08000200 00000007 08000100 00000001
             38000180 08000100 636d7000 2c000280 08000100 00000001 08000200 00000001
             18000380 14000100 77656674 2d677700 00000000 00000000
             14000180 09000100 6d617371 00000000 04000280",
        );
        let ours = rule_expressions("169.254.16.0/20".parse().unwrap(), "weft-gw").unwrap();
        assert_eq!(ours, nft);
        // Host bits in the prefix are dropped.
        assert_eq!(
            rule_expressions("169.254.17.9/20".parse().unwrap(), "weft-gw").unwrap(),
            nft
        );
    }

    #[test]
    fn a_host_address_needs_no_mask() {
        let e = rule_expressions("169.254.5.5/32".parse().unwrap(), "weft-gw").unwrap();
        assert!(!e.windows(7).any(|w| w == b"bitwise"));
        // payload (52) + cmp (44) + meta (36) + cmp (56) + masq (20)
        assert_eq!(e.len(), 52 + 44 + 36 + 56 + 20);
        let cmp = &e[52..52 + 44];
        assert_eq!(&cmp[cmp.len() - 4..], &[169, 254, 5, 5]);
    }

    #[test]
    fn names_must_fit_ifnamsiz() {
        assert!(rule_expressions("10.0.0.0/8".parse().unwrap(), "0123456789abcdef").is_err());
        assert!(rule_expressions("10.0.0.0/8".parse().unwrap(), "").is_err());
        assert!(rule_expressions("10.0.0.0/8".parse().unwrap(), "0123456789abcde").is_ok());
    }

    /// The replacing batch, message by message, against the layout `nft` uses (its NEWCHAIN
    /// and the table messages as captured, with our flags: every message asks for an ack).
    #[test]
    fn masquerade_batch_layout() {
        let b = masquerade_batch("169.254.16.0/20".parse().unwrap(), "weft-gw", 100).unwrap();
        let msgs = split(&b.bytes).unwrap();
        let types: Vec<(u16, u16, u32)> = msgs.iter().map(|m| (m.ty, m.flags, m.seq)).collect();
        assert_eq!(
            types,
            vec![
                (0x10, 0x1, 100),
                (0x0a00, 0x405, 101),
                (0x0a02, 0x5, 102),
                (0x0a00, 0x405, 103),
                (0x0a03, 0x405, 104),
                (0x0a06, 0xc05, 105),
                (0x11, 0x1, 106),
            ]
        );
        // BATCH_BEGIN: AF_UNSPEC, version 0, res_id NFNL_SUBSYS_NFTABLES (big-endian).
        assert_eq!(msgs[0].payload, &[0, 0, 0, 10]);
        assert_eq!(msgs[6].payload, &[0, 0, 0, 10]);
        // NEWTABLE: nfgenmsg (ipv4), name "weft", flags 0.
        assert_eq!(
            msgs[1].payload,
            hex("02000000 09000100 77656674 00000000 08000200 00000000").as_slice()
        );
        // DELTABLE: the name only.
        assert_eq!(
            msgs[2].payload,
            hex("02000000 09000100 77656674 00000000").as_slice()
        );
        // NEWCHAIN as nft sends it.
        assert_eq!(
            msgs[4].payload,
            hex(
                "02000000 09000100 77656674 00000000 10000300 706f7374 726f7574 696e6700
                 08000700 6e617400 08000500 00000001
                 14000480 08000100 00000004 08000200 00000064"
            )
            .as_slice()
        );
        // NEWRULE: table, chain, the expressions, then the comment as nft's user data.
        let rule = attrs(&msgs[5].payload[4..]);
        assert_eq!(rule[0], (NFTA_RULE_TABLE, b"weft\0".as_slice()));
        assert_eq!(rule[1], (NFTA_RULE_CHAIN, b"postrouting\0".as_slice()));
        assert_eq!(rule[2].0, NFTA_RULE_EXPRESSIONS);
        assert_eq!(
            rule[2].1,
            rule_expressions("169.254.16.0/20".parse().unwrap(), "weft-gw")
                .unwrap()
                .as_slice()
        );
        let comment = rule_comment("169.254.16.0/20".parse().unwrap(), "weft-gw");
        assert_eq!(rule[3].0, NFTA_RULE_USERDATA);
        assert_eq!(rule[3].1[0], 0);
        assert_eq!(rule[3].1[1] as usize, comment.len() + 1);
        assert_eq!(&rule[3].1[2..2 + comment.len()], comment.as_bytes());
        assert_eq!(b.messages.len(), 5);
        assert!(b.messages[4].1.starts_with("NEWRULE"));
    }

    #[test]
    fn remove_batch_layout() {
        let b = remove_batch(7);
        assert_eq!(
            b.bytes,
            hex("14000000 1000 0100 07000000 00000000 0000000a
                 20000000 020a 0500 08000000 00000000 02000000 09000100 77656674 00000000
                 14000000 1100 0100 09000000 00000000 0000000a")
        );
        assert_eq!(b.messages, vec![(8, "DELTABLE ip weft".to_string())]);
    }

    #[test]
    fn errors_carry_errno_and_the_kernels_text() {
        // An NLMSG_ERROR for seq 5, capped, with an extended-ack message.
        let mut payload = (-libc::ENOENT).to_ne_bytes().to_vec();
        payload.extend(message(0x0a06, 0x5, 5, 2, 0, &[])[..16].to_vec());
        let mut tlv = Attrs::default();
        tlv.string(NLMSGERR_ATTR_MSG, "no such expression");
        payload.extend(&tlv.0);
        let mut m = Vec::new();
        m.extend(((16 + payload.len()) as u32).to_ne_bytes());
        m.extend(NLMSG_ERROR.to_ne_bytes());
        m.extend((NLM_F_CAPPED | NLM_F_ACK_TLVS).to_ne_bytes());
        m.extend(5u32.to_ne_bytes());
        m.extend(0u32.to_ne_bytes());
        m.extend(&payload);
        let msgs = split(&m).unwrap();
        assert_eq!(msgs.len(), 1);
        let (code, text) = error_of(&msgs[0]);
        assert_eq!(code, -libc::ENOENT);
        assert_eq!(text.as_deref(), Some("no such expression"));
        let r = refusal("NEWRULE x", code, text);
        assert!(r.contains("os error 2"), "{r}");
        assert!(r.contains("nft_masq"), "{r}");
    }
}
