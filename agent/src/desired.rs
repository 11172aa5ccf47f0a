//! One owner of desired state. A task holds this host's local ports and reads netmaster's view;
//! after each batch of changes it hands what changed to the compile engine ([`crate::engine`]),
//! the flows that changed to the reconciler and the host's routes to their follower, and
//! publishes the ports for readers. Changes that arrive together (concurrent attaches and
//! detaches, a batch from the watch) share one step and one OpenFlow bundle; a step's work is
//! about the size of its changes.

use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::engine::{Engine, Step};
use crate::hoststate::HostPorts;
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

/// A look at the compiler's current output, run on the owner's task (no copy of the set).
type Look = Box<dyn FnOnce(Option<&weft_policy::Incremental>) + Send>;

/// Handle to the owner task.
#[derive(Clone)]
pub(crate) struct Desired {
    tx: mpsc::UnboundedSender<Request>,
    looks: mpsc::UnboundedSender<Look>,
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
        let (looks, looks_rx) = mpsc::unbounded_channel();
        let owner = Owner {
            ports,
            engine: Engine::new(me),
            view,
            view_changes,
            reconciler,
            routes,
            published: ports_tx,
            version: 0,
            problems: vec![],
        };
        tokio::spawn(owner.run(rx, looks_rx, cancel));
        Desired {
            tx,
            looks,
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

    /// Runs `f` on the compiler's current output (None before netmaster's snapshot), between
    /// two steps, and returns what it makes of it (None if the owner stopped). For inspection:
    /// `f` should be quick, the owner waits for it.
    pub async fn look<R: Send + 'static>(
        &self,
        f: impl FnOnce(Option<&weft_policy::Incremental>) -> R + Send + 'static,
    ) -> Option<R> {
        let (tx, rx) = oneshot::channel();
        let look: Look = Box::new(move |inc| {
            let _ = tx.send(f(inc));
        });
        self.looks.send(look).ok()?;
        rx.await.ok()
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
    engine: Engine,
    view: SharedView,
    view_changes: mpsc::UnboundedReceiver<Vec<ViewChange>>,
    reconciler: Reconciler,
    routes: watch::Sender<Option<crate::hostgw::HostRoutes>>,
    published: watch::Sender<Ports>,
    /// The flow version of the last step that changed the flows (0: none yet).
    version: u64,
    /// The compiler's problems as last logged.
    problems: Vec<String>,
}

impl Owner {
    async fn run(
        mut self,
        mut rx: mpsc::UnboundedReceiver<Request>,
        mut looks: mpsc::UnboundedReceiver<Look>,
        cancel: CancellationToken,
    ) {
        let mut waiting: Vec<oneshot::Sender<u64>> = vec![];
        loop {
            let mut changed: Vec<String> = vec![];
            let mut view_changes = vec![];
            tokio::select! {
                Some(look) = looks.recv() => {
                    look(self.engine.compiled());
                    continue;
                }
                r = rx.recv() => match r {
                    Some((c, tx)) => {
                        self.apply(c, &mut changed);
                        waiting.push(tx);
                    }
                    None => return,
                },
                r = self.view_changes.recv() => match r {
                    Some(v) => view_changes = v,
                    None => return,
                },
                _ = cancel.cancelled() => return,
            }
            // Everything queued meanwhile joins this step (group commit).
            while let Ok(v) = self.view_changes.try_recv() {
                view_changes.extend(v);
            }
            while let Ok((c, tx)) = rx.try_recv() {
                self.apply(c, &mut changed);
                waiting.push(tx);
            }
            if !changed.is_empty() {
                self.published.send_replace(Arc::new(self.ports.clone()));
            }
            let version = self.step(&view_changes, &changed);
            for tx in waiting.drain(..) {
                let _ = tx.send(version);
            }
        }
    }

    /// Applies a change to the ports; notes which endpoints' ports changed.
    fn apply(&mut self, c: Change, changed: &mut Vec<String>) {
        match c {
            Change::Upsert(p) => {
                changed.push(p.endpoint_id.clone());
                self.ports.insert(p.endpoint_id.clone(), p);
            }
            Change::Remove(id) => {
                if self.ports.remove(&id).is_some() {
                    changed.push(id);
                }
            }
            Change::Renumber(numbers) => {
                for (id, p) in self.ports.iter_mut() {
                    if let Some(&n) = numbers.get(id) {
                        if n != p.ofport {
                            Arc::make_mut(p).ofport = n;
                            changed.push(id.clone());
                        }
                    }
                }
                if !changed.is_empty() {
                    info!("port numbers changed after Open vSwitch restarted; recompiling");
                }
            }
            Change::Recompile => {}
        }
    }

    /// Hands the changes to the engine and what it makes of them on; returns the flow version
    /// that holds them (0: netmaster's snapshot has not arrived, nothing is compiled).
    #[tracing::instrument(name = "desired.step", skip_all, fields(view_changes = view_changes.len(), ports = changed.len(), version = tracing::field::Empty))]
    fn step(&mut self, view_changes: &[crate::netmaster::ViewChange], changed: &[String]) -> u64 {
        let t = std::time::Instant::now();
        let step = {
            // The view is read in place (no copy), and only for the step.
            let view = self.view.read();
            self.engine.step(&view, &self.ports, view_changes, changed)
        };
        let version = match step {
            Step::Nothing => return self.version,
            Step::Full(set) => {
                debug!(flows = set.flows.len(), took = ?t.elapsed(), "compiled");
                self.reconciler.set(set)
            }
            Step::Delta(d) => {
                debug!(changes = d.len(), took = ?t.elapsed(), "compiled a change");
                self.reconciler.apply(d)
            }
        };
        if let Some(c) = self.engine.compiled() {
            // Each problem once, when it appears (not again at every later step).
            let now: Vec<String> = c.problems().iter().map(ToString::to_string).collect();
            for p in now.iter().filter(|p| !self.problems.contains(*p)) {
                warn!(problem = %p, "left out of the pipeline");
            }
            self.problems = now;
        }
        if let Some(routes) = self.engine.routes() {
            self.routes.send_if_modified(|r| {
                let moved = r.as_ref() != Some(routes);
                if moved {
                    *r = Some(routes.clone());
                }
                moved
            });
        }
        self.version = version;
        tracing::Span::current().record("version", version);
        version
    }
}
