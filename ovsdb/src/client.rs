//! The JSON-RPC 1.0 connection of RFC 7047 over a unix socket or TCP.
//!
//! One task reads: OVSDB sends JSON objects back to back with no delimiter, so the reader parses
//! the byte stream incrementally and keeps any unfinished tail. Replies are matched to calls by
//! id; the server's `echo` requests are answered; `update` notifications go to their monitor.
//! When the connection drops, every pending call fails and later calls fail at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value as Json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

/// What can go wrong talking to OVSDB.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum Error {
    #[error("connecting to {remote}: {error}")]
    Connect { remote: String, error: String },
    #[error("remote \"{0}\" is neither unix:PATH nor tcp:HOST:PORT")]
    BadRemote(String),
    #[error("the connection to OVSDB is closed")]
    Closed,
    #[error("OVSDB answered {method} with an error: {error}")]
    Rpc { method: String, error: String },
    #[error("transaction failed at operation {index}: {error}{}", details.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Transaction {
        index: usize,
        error: String,
        details: Option<String>,
    },
    #[error("OVSDB sent something unexpected: {0}")]
    Protocol(String),
    #[error("{0}")]
    Timeout(String),
    #[error("{0}")]
    Vswitch(String),
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Result<Json, Error>>>>>;
type Monitors = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<Json>>>>;

/// A connection to an OVSDB server. Cheap to clone; all clones share the connection.
#[derive(Clone)]
pub struct Client {
    out: mpsc::UnboundedSender<Vec<u8>>,
    pending: Pending,
    monitors: Monitors,
    next_id: Arc<AtomicU64>,
    closed: Arc<AtomicBool>,
}

impl Client {
    /// Connects to `unix:PATH` or `tcp:HOST:PORT`.
    pub async fn connect(remote: &str) -> Result<Client, Error> {
        let err = |e: std::io::Error| Error::Connect {
            remote: remote.to_string(),
            error: e.to_string(),
        };
        if let Some(path) = remote.strip_prefix("unix:") {
            let s = tokio::net::UnixStream::connect(path).await.map_err(err)?;
            let (r, w) = s.into_split();
            Ok(Client::start(r, w))
        } else if let Some(addr) = remote.strip_prefix("tcp:") {
            let s = tokio::net::TcpStream::connect(addr).await.map_err(err)?;
            s.set_nodelay(true).ok();
            let (r, w) = s.into_split();
            Ok(Client::start(r, w))
        } else {
            Err(Error::BadRemote(remote.to_string()))
        }
    }

    fn start<R, W>(r: R, mut w: W) -> Client
    where
        R: AsyncRead + Unpin + Send + 'static,
        W: AsyncWrite + Unpin + Send + 'static,
    {
        let (out, mut out_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let client = Client {
            out: out.clone(),
            pending: Arc::default(),
            monitors: Arc::default(),
            next_id: Arc::new(AtomicU64::new(1)),
            closed: Arc::new(AtomicBool::new(false)),
        };
        tokio::spawn(async move {
            while let Some(b) = out_rx.recv().await {
                if w.write_all(&b).await.is_err() {
                    return;
                }
            }
        });
        let (pending, monitors, closed) = (
            client.pending.clone(),
            client.monitors.clone(),
            client.closed.clone(),
        );
        tokio::spawn(async move {
            read_loop(r, &out, &pending, &monitors).await;
            closed.store(true, Ordering::SeqCst);
            for (_, tx) in pending.lock().expect("lock").drain() {
                let _ = tx.send(Err(Error::Closed));
            }
            monitors.lock().expect("lock").clear();
        });
        client
    }

    /// Whether the connection has ended.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Calls `method` with `params`; returns the `result`.
    pub async fn call(&self, method: &str, params: Json) -> Result<Json, Error> {
        if self.is_closed() {
            return Err(Error::Closed);
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("lock").insert(id, tx);
        let msg = json!({"method": method, "params": params, "id": id});
        if self.out.send(msg.to_string().into_bytes()).is_err() {
            self.pending.lock().expect("lock").remove(&id);
            return Err(Error::Closed);
        }
        // The reader may have ended between the check above and the insert.
        if self.is_closed() {
            if let Some(tx) = self.pending.lock().expect("lock").remove(&id) {
                drop(tx);
                return Err(Error::Closed);
            }
        }
        match rx.await {
            Ok(Ok(reply)) => {
                let error = reply.get("error").cloned().unwrap_or(Json::Null);
                if !error.is_null() {
                    return Err(Error::Rpc {
                        method: method.to_string(),
                        error: error.to_string(),
                    });
                }
                Ok(reply.get("result").cloned().unwrap_or(Json::Null))
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(Error::Closed),
        }
    }

    pub async fn echo(&self) -> Result<(), Error> {
        self.call("echo", json!(["weft"])).await.map(|_| ())
    }

    pub async fn list_dbs(&self) -> Result<Vec<String>, Error> {
        let r = self.call("list_dbs", json!([])).await?;
        serde_json::from_value(r.clone()).map_err(|_| Error::Protocol(r.to_string()))
    }

    pub async fn get_schema(&self, db: &str) -> Result<Json, Error> {
        self.call("get_schema", json!([db])).await
    }

    /// Runs `ops` as one transaction. Every operation's result comes back in order; if one
    /// failed, the whole transaction did, and the error names the operation.
    pub async fn transact(&self, db: &str, ops: Vec<Json>) -> Result<Vec<Json>, Error> {
        let n = ops.len();
        let mut params = vec![json!(db)];
        params.extend(ops);
        let r = self.call("transact", Json::Array(params)).await?;
        let results = r
            .as_array()
            .ok_or_else(|| Error::Protocol(format!("transact result {r}")))?
            .clone();
        for (index, res) in results.iter().enumerate() {
            if let Some(e) = res.get("error").filter(|e| !e.is_null()) {
                return Err(Error::Transaction {
                    index,
                    error: e.as_str().unwrap_or_default().to_string(),
                    details: res
                        .get("details")
                        .and_then(Json::as_str)
                        .map(str::to_string),
                });
            }
        }
        if results.len() < n {
            return Err(Error::Transaction {
                index: results.len(),
                error: "not executed".into(),
                details: Some(format!("{} of {n} operations ran", results.len())),
            });
        }
        Ok(results)
    }

    /// Starts monitor `id` on `db` with `requests` (`{"Table": {"columns": [...]}}`). Returns the
    /// initial contents and a channel of later `table-updates`.
    pub async fn monitor(
        &self,
        db: &str,
        id: &str,
        requests: Json,
    ) -> Result<(Json, mpsc::UnboundedReceiver<Json>), Error> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.monitors
            .lock()
            .expect("lock")
            .insert(id.to_string(), tx);
        match self.call("monitor", json!([db, id, requests])).await {
            Ok(initial) => Ok((initial, rx)),
            Err(e) => {
                self.monitors.lock().expect("lock").remove(id);
                Err(e)
            }
        }
    }

    pub async fn monitor_cancel(&self, id: &str) -> Result<(), Error> {
        self.monitors.lock().expect("lock").remove(id);
        self.call("monitor_cancel", json!([id])).await.map(|_| ())
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    mut r: R,
    out: &mpsc::UnboundedSender<Vec<u8>>,
    pending: &Pending,
    monitors: &Monitors,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = match r.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut consumed = 0;
        {
            let mut stream = serde_json::Deserializer::from_slice(&buf).into_iter::<Json>();
            loop {
                match stream.next() {
                    Some(Ok(msg)) => {
                        consumed = stream.byte_offset();
                        dispatch(msg, out, pending, monitors);
                    }
                    Some(Err(e)) if e.is_eof() => break,
                    Some(Err(_)) => return, // not JSON: nothing more can be trusted
                    None => break,
                }
            }
        }
        buf.drain(..consumed);
    }
}

fn dispatch(
    msg: Json,
    out: &mpsc::UnboundedSender<Vec<u8>>,
    pending: &Pending,
    monitors: &Monitors,
) {
    match msg.get("method").and_then(Json::as_str) {
        Some("echo") => {
            let reply = json!({"result": msg["params"], "error": null, "id": msg["id"]});
            let _ = out.send(reply.to_string().into_bytes());
        }
        Some("update") => {
            let params = &msg["params"];
            let id = match &params[0] {
                Json::String(s) => s.clone(),
                other => other.to_string(),
            };
            if let Some(tx) = monitors.lock().expect("lock").get(&id) {
                let _ = tx.send(params[1].clone());
            }
        }
        Some(_) => {}
        None => {
            if let Some(id) = msg.get("id").and_then(Json::as_u64) {
                if let Some(tx) = pending.lock().expect("lock").remove(&id) {
                    let _ = tx.send(Ok(msg));
                }
            }
        }
    }
}
