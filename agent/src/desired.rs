//! One owner of desired state. A task holds this host's local ports and reads netmaster's view;
//! after each batch of changes it compiles once, hands the flows to the reconciler and the host's
//! routes to their follower, and publishes the ports for readers. Changes that arrive together
//! (concurrent attaches and detaches) share one compile and one OpenFlow bundle.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use weft_policy::HostState;

use crate::hoststate::{host_routes, host_state, HostPorts};
use crate::local::LocalPort;
use crate::netmaster::{SharedView, ViewChange};
use crate::reconcile::Reconciler;

/// A change to this host's local ports.
#[derive(Debug)]
pub(crate) enum Change {
    /// An endpoint's port, new or changed.
    Upsert(Arc<LocalPort>),
    /// An endpoint gone.
    Remove(String),
    /// Port numbers read again (Open vSwitch restarted): endpoint id → ofport.
    Renumber(BTreeMap<String, u32>),
    /// Nothing here changed; compile with what is there (someone waits for a version).
    Recompile,
}

/// The local ports as last published: a snapshot readers keep as long as they like.
pub(crate) type Ports = Arc<BTreeMap<String, Arc<LocalPort>>>;

type Request = (Change, oneshot::Sender<u64>);

/// Handle to the owner task.
#[derive(Clone)]
pub(crate) struct Desired {
    tx: mpsc::UnboundedSender<Request>,
    ports: watch::Receiver<Ports>,
}

impl Desired {
    pub fn spawn(
        initial: BTreeMap<String, LocalPort>,
        me: HostPorts,
        view: SharedView,
        view_changes: mpsc::UnboundedReceiver<Vec<ViewChange>>,
        reconciler: Reconciler,
        routes: watch::Sender<Option<crate::hostgw::HostRoutes>>,
        cancel: CancellationToken,
    ) -> Desired {
        let ports: BTreeMap<String, Arc<LocalPort>> =
            initial.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
        let (ports_tx, ports_rx) = watch::channel(Arc::new(ports.clone()));
        let (tx, rx) = mpsc::unbounded_channel();
        let owner = Owner {
            ports,
            me,
            view,
            view_changes,
            reconciler,
            routes,
            published: ports_tx,
            last: None,
        };
        tokio::spawn(owner.run(rx, cancel));
        Desired {
            tx,
            ports: ports_rx,
        }
    }

    /// Applies a change; returns the flow version that holds it (0 while netmaster's snapshot
    /// has not arrived: nothing is compiled then, the switch keeps what it has).
    pub async fn change(&self, c: Change) -> u64 {
        let (tx, rx) = oneshot::channel();
        if self.tx.send((c, tx)).is_err() {
            return 0;
        }
        rx.await.unwrap_or(0)
    }

    pub fn ports(&self) -> Ports {
        self.ports.borrow().clone()
    }

    pub fn get(&self, id: &str) -> Option<Arc<LocalPort>> {
        self.ports.borrow().get(id).cloned()
    }
}

struct Owner {
    ports: BTreeMap<String, Arc<LocalPort>>,
    me: HostPorts,
    view: SharedView,
    view_changes: mpsc::UnboundedReceiver<Vec<ViewChange>>,
    reconciler: Reconciler,
    routes: watch::Sender<Option<crate::hostgw::HostRoutes>>,
    published: watch::Sender<Ports>,
    /// The last compile's input and its flow version: a change that leaves the input as it was
    /// (netmaster echoing this host's own endpoints, say) costs no compile and no bundle.
    last: Option<(HostState, u64)>,
}

impl Owner {
    async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Request>, cancel: CancellationToken) {
        let mut waiting: Vec<oneshot::Sender<u64>> = vec![];
        loop {
            let mut ports_changed = false;
            tokio::select! {
                r = rx.recv() => match r {
                    Some((c, tx)) => {
                        ports_changed |= self.apply(c);
                        waiting.push(tx);
                    }
                    None => return,
                },
                r = self.view_changes.recv() => if r.is_none() { return },
                _ = cancel.cancelled() => return,
            }
            // Everything queued meanwhile joins this compile (group commit).
            while self.view_changes.try_recv().is_ok() {}
            while let Ok((c, tx)) = rx.try_recv() {
                ports_changed |= self.apply(c);
                waiting.push(tx);
            }
            if ports_changed {
                self.published.send_replace(Arc::new(self.ports.clone()));
            }
            let version = self.compile();
            for tx in waiting.drain(..) {
                let _ = tx.send(version);
            }
        }
    }

    /// Returns whether the ports changed.
    fn apply(&mut self, c: Change) -> bool {
        match c {
            Change::Upsert(p) => {
                self.ports.insert(p.endpoint_id.clone(), p);
                true
            }
            Change::Remove(id) => self.ports.remove(&id).is_some(),
            Change::Renumber(numbers) => {
                let mut changed = false;
                for (id, p) in self.ports.iter_mut() {
                    if let Some(&n) = numbers.get(id) {
                        if n != p.ofport {
                            Arc::make_mut(p).ofport = n;
                            changed = true;
                        }
                    }
                }
                if changed {
                    info!("port numbers changed after Open vSwitch restarted; recompiling");
                }
                changed
            }
            Change::Recompile => false,
        }
    }

    /// Compiles what is held now and hands it on; returns the flow version (0: not yet).
    fn compile(&mut self) -> u64 {
        // The view is read in place (no copy), and only while the compiler's input is built.
        let state = {
            let view = self.view.read();
            if !view.complete {
                return 0;
            }
            host_state(&view, &self.me, self.ports.values().map(|p| &**p))
        };
        if let Some((last, version)) = &self.last {
            if *last == state {
                return *version;
            }
        }
        let t = std::time::Instant::now();
        let compiled = weft_policy::compile(&state);
        debug!(endpoints = state.endpoints.len(), flows = compiled.flows.flows.len(), took = ?t.elapsed(), "compiled");
        for p in &compiled.problems {
            warn!(problem = %p, "left out of the pipeline");
        }
        let routes = host_routes(&state, &compiled);
        self.routes.send_if_modified(|r| {
            let changed = r.as_ref() != Some(&routes);
            *r = Some(routes);
            changed
        });
        let version = self.reconciler.set(compiled.flows);
        self.last = Some((state, version));
        version
    }
}
