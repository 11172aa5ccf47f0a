//! Keeps the switch equal to the compiled state. Level-triggered: whatever happened (a new desired
//! set, a reconnect after Open vSwitch restarted, a refused bundle), the next step is "read what
//! the switch holds if we do not know it, send the difference as one bundle".

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use weft_policy::{diff, diff_delta, Delta, FlowKey, FlowSet};

use crate::ofdriver::OfDriver;

/// What the owner of desired state has handed over and the reconciler has not taken yet.
#[derive(Default)]
struct Pending {
    /// The version of the latest update (versions only grow; 0: nothing yet, and the reconciler
    /// leaves the switch alone until the agent knows its whole desired state).
    version: u64,
    /// A whole new set, then changes to it.
    full: Option<FlowSet>,
    deltas: Vec<Delta>,
}

/// What the reconciler has done, for waiting on and for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// The highest desired version the switch is known to hold.
    pub version: u64,
    /// Messages sent in the last bundle, and bundles sent in all.
    pub last_changes: usize,
    pub bundles: u64,
    /// Full reads of the switch (at start, after every reconnect or failure, and each resync).
    pub dumps: u64,
    /// Periodic resyncs that found the switch different from what was installed (flows,
    /// groups or meters changed behind the agent's back), and the changes that repaired them.
    pub repairs: u64,
    pub repaired_changes: u64,
}

/// What the reconciler tells whoever watches it (metrics): each batch sent to the switch, each
/// step, each full read of the switch, the desired set after each step.
pub trait Observer: Send + Sync {
    /// A batch the switch confirmed: `bundle` (flows and groups) or `meters`, and its time.
    fn flow_operation(&self, kind: &str, took: Duration);
    /// A step that changed or read the switch, and its time.
    fn reconciled(&self, took: Duration);
    /// Every flow the switch held at a full read (with its counters).
    fn dumped(&self, flows: &[ofproto::msg::multipart::FlowStats]);
    /// The switch now holds `desired`.
    fn installed(&self, desired: &FlowSet);
}

type Watcher = Arc<Mutex<Option<Arc<dyn Observer>>>>;

/// How often the reconciler reads the whole switch again to repair drift, by default.
pub const RESYNC: Duration = Duration::from_secs(30);

/// Handle to the reconciler task.
#[derive(Clone)]
pub struct Reconciler {
    pending: Arc<Mutex<Pending>>,
    notify: watch::Sender<u64>,
    applied: watch::Receiver<Applied>,
    observer: Watcher,
}

impl Reconciler {
    pub fn spawn(driver: OfDriver, cancel: CancellationToken) -> Reconciler {
        Reconciler::spawn_with_resync(driver, RESYNC, cancel)
    }

    /// A reconciler that also reads the whole switch every `resync` and repairs what differs.
    pub fn spawn_with_resync(
        driver: OfDriver,
        resync: Duration,
        cancel: CancellationToken,
    ) -> Reconciler {
        let pending = Arc::new(Mutex::new(Pending::default()));
        let (notify, notified) = watch::channel(0);
        let (applied_tx, applied_rx) = watch::channel(Applied::default());
        let observer: Watcher = Arc::default();
        tokio::spawn(run(
            driver,
            pending.clone(),
            notified,
            applied_tx,
            resync,
            observer.clone(),
            cancel,
        ));
        Reconciler {
            pending,
            notify,
            applied: applied_rx,
            observer,
        }
    }

    /// Tells `o` what the reconciler does from now on (one observer; a new one replaces it).
    pub fn observe(&self, o: Arc<dyn Observer>) {
        *self.observer.lock().unwrap_or_else(|e| e.into_inner()) = Some(o);
    }

    fn update(&self, f: impl FnOnce(&mut Pending)) -> u64 {
        let version = {
            let mut p = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut p);
            p.version += 1;
            p.version
        };
        self.notify.send_replace(version);
        version
    }

    /// Publishes a whole new desired set; returns its version.
    pub fn set(&self, flows: FlowSet) -> u64 {
        self.update(|p| {
            p.full = Some(flows);
            p.deltas.clear();
        })
    }

    /// Publishes a change to the desired set; returns the version that holds it.
    pub fn apply(&self, delta: Delta) -> u64 {
        self.update(|p| p.deltas.push(delta))
    }

    /// The latest desired version handed over.
    pub fn desired_version(&self) -> u64 {
        *self.notify.borrow()
    }

    pub fn applied(&self) -> watch::Receiver<Applied> {
        self.applied.clone()
    }

    /// Waits until the switch holds desired version `version` (or a later one).
    pub async fn wait_applied(&self, version: u64, timeout: Duration) -> bool {
        let mut rx = self.applied.clone();
        tokio::time::timeout(timeout, rx.wait_for(|a| a.version >= version))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// Keys the desired set changed at since the switch last matched it.
#[derive(Default)]
struct Touched {
    all: bool,
    flows: BTreeSet<FlowKey>,
    groups: BTreeSet<u32>,
    meters: BTreeSet<u32>,
}

impl Touched {
    fn is_empty(&self) -> bool {
        !self.all && self.flows.is_empty() && self.groups.is_empty() && self.meters.is_empty()
    }

    fn add(&mut self, d: &Delta) {
        if self.all {
            return;
        }
        self.flows.extend(d.flows_upsert.keys().cloned());
        self.flows.extend(d.flows_remove.iter().cloned());
        self.groups.extend(d.groups_upsert.keys());
        self.groups.extend(d.groups_remove.iter());
        self.meters.extend(d.meters_upsert.keys());
        self.meters.extend(d.meters_remove.iter());
    }

    /// The change that takes a switch from where it was to `desired` at these keys.
    fn delta(&self, desired: &FlowSet) -> Delta {
        let mut d = Delta::default();
        for k in &self.flows {
            match desired.flows.get(k) {
                Some(f) => {
                    d.flows_upsert.insert(k.clone(), f.clone());
                }
                None => {
                    d.flows_remove.insert(k.clone());
                }
            }
        }
        for id in &self.groups {
            match desired.groups.get(id) {
                Some(g) => {
                    d.groups_upsert.insert(*id, g.clone());
                }
                None => {
                    d.groups_remove.insert(*id);
                }
            }
        }
        for id in &self.meters {
            match desired.meters.get(id) {
                Some(m) => {
                    d.meters_upsert.insert(*id, *m);
                }
                None => {
                    d.meters_remove.insert(*id);
                }
            }
        }
        d
    }
}

#[tracing::instrument(name = "reconciler", skip_all)]
async fn run(
    driver: OfDriver,
    pending: Arc<Mutex<Pending>>,
    mut notified: watch::Receiver<u64>,
    applied: watch::Sender<Applied>,
    resync: Duration,
    observer: Watcher,
    cancel: CancellationToken,
) {
    let mut generation = driver.generation();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + resync, resync);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Whether the next read of the switch is a resync (what it finds is drift).
    let mut resyncing = false;
    let mut desired = FlowSet::default();
    let mut version = 0u64;
    // What the switch holds, as far as we know; None = read it first.
    let mut installed: Option<FlowSet> = None;
    let mut touched = Touched::default();
    let mut installed_gen = 0u64;
    let mut retry = Duration::from_millis(50);
    loop {
        let gen = *generation.borrow_and_update();
        notified.borrow_and_update();
        {
            let mut p = pending.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(full) = p.full.take() {
                desired = full;
                touched.all = true;
            }
            for d in p.deltas.drain(..) {
                desired.apply_delta(&d);
                touched.add(&d);
            }
            version = version.max(p.version);
        }
        if gen != installed_gen {
            installed = None;
        }
        let done = gen == 0
            || version == 0
            || (installed.is_some() && applied.borrow().version >= version);
        if !done {
            // A resync with nothing else to do: whatever it changes is drift.
            let drift = resyncing && installed.is_none() && touched.is_empty();
            let watcher = observer.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let t = Instant::now();
            match step(
                &driver,
                &mut installed,
                &desired,
                &touched,
                version,
                &applied,
                watcher.as_deref(),
            )
            .await
            {
                Ok(n) => {
                    if let Some(w) = &watcher {
                        w.reconciled(t.elapsed());
                        w.installed(&desired);
                    }
                    resyncing = false;
                    if drift && n > 0 {
                        warn!(
                            changes = n,
                            "the switch had drifted from the desired flows; repaired"
                        );
                        applied.send_modify(|a| {
                            a.repairs += 1;
                            a.repaired_changes += n as u64;
                        });
                    }
                    touched = Touched::default();
                    installed_gen = gen;
                    retry = Duration::from_millis(50);
                    applied.send_modify(|a| a.version = version);
                    continue;
                }
                Err(e) => {
                    warn!(error = %e, "reconciling failed; reading the switch again");
                    installed = None;
                    tokio::select! {
                        _ = tokio::time::sleep(retry) => {}
                        _ = cancel.cancelled() => return,
                    }
                    retry = (retry * 2).min(Duration::from_secs(2));
                    continue;
                }
            }
        }
        tokio::select! {
            _ = cancel.cancelled() => return,
            r = notified.changed() => if r.is_err() { return },
            r = generation.changed() => if r.is_err() { return },
            _ = tick.tick() => {
                // Read the whole switch again: whatever changed behind our back is repaired.
                if installed.is_some() && version > 0 {
                    installed = None;
                    resyncing = true;
                }
            }
        }
    }
}

#[tracing::instrument(name = "reconcile", skip_all, fields(version, whole = touched.all || installed.is_none()))]
async fn step(
    driver: &OfDriver,
    installed: &mut Option<FlowSet>,
    desired: &FlowSet,
    touched: &Touched,
    version: u64,
    applied: &watch::Sender<Applied>,
    observer: Option<&dyn Observer>,
) -> Result<usize, crate::ofdriver::OfError> {
    let whole = touched.all || installed.is_none();
    let d = match installed.as_ref() {
        Some(current) if !whole => diff_delta(current, &touched.delta(desired)),
        _ => {
            let t = Instant::now();
            let dump = driver.dump().await?;
            if let Some(o) = observer {
                o.dumped(&dump.flows);
            }
            let set = FlowSet::from_switch(&dump.flows, &dump.groups).with_meters(&dump.meters);
            debug!(flows = set.flows.len(), groups = set.groups.len(), took = ?t.elapsed(), "read the switch");
            applied.send_modify(|a| a.dumps += 1);
            let d = diff(&set, desired);
            *installed = Some(set);
            d
        }
    };
    let n = d.len();
    if n > 0 {
        let t = Instant::now();
        // Meters cannot go in a bundle: new ones before it, unused ones after it.
        let timed = |kind: &str, t: Instant| {
            if let Some(o) = observer {
                o.flow_operation(kind, t.elapsed());
            }
        };
        let before = d.meters_before();
        if !before.is_empty() {
            let t = Instant::now();
            driver.send(before).await?;
            timed("meters", t);
        }
        let bundle = d.messages();
        if !bundle.is_empty() {
            let t = Instant::now();
            driver.bundle(bundle).await?;
            timed("bundle", t);
        }
        let after = d.meters_after();
        if !after.is_empty() {
            let t = Instant::now();
            driver.send(after).await?;
            timed("meters", t);
        }
        info!(changes = n, took = ?t.elapsed(), version, "switch updated");
        applied.send_modify(|a| {
            a.last_changes = n;
            a.bundles += 1;
        });
    }
    // The switch now holds the desired set at every key we know of.
    let current = installed.as_mut().expect("read above");
    if whole {
        *current = desired.clone();
    } else {
        current.apply_delta(&touched.delta(desired));
    }
    Ok(n)
}
