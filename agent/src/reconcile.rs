//! Keeps the switch equal to the compiled state. Level-triggered: whatever happened (a new desired
//! set, a reconnect after Open vSwitch restarted, a refused bundle), the next step is "read what
//! the switch holds if we do not know it, send the difference as one bundle".

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use weft_policy::{diff, FlowSet};

use crate::ofdriver::OfDriver;

/// A desired flow set with its version (versions only grow; 0 means "not known yet": the
/// reconciler leaves the switch alone until the agent knows its whole desired state).
#[derive(Debug, Clone, Default)]
pub struct Desired {
    pub version: u64,
    pub flows: Arc<FlowSet>,
}

/// What the reconciler has done, for waiting on and for metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// The highest desired version the switch is known to hold.
    pub version: u64,
    /// Messages sent in the last bundle, and bundles sent in all.
    pub last_changes: usize,
    pub bundles: u64,
    /// Full reads of the switch (at start and after every reconnect or failure).
    pub dumps: u64,
}

/// Handle to the reconciler task.
#[derive(Clone)]
pub struct Reconciler {
    desired: watch::Sender<Desired>,
    applied: watch::Receiver<Applied>,
}

impl Reconciler {
    pub fn spawn(driver: OfDriver, cancel: CancellationToken) -> Reconciler {
        let (desired_tx, desired_rx) = watch::channel(Desired::default());
        let (applied_tx, applied_rx) = watch::channel(Applied::default());
        tokio::spawn(run(driver, desired_rx, applied_tx, cancel));
        Reconciler {
            desired: desired_tx,
            applied: applied_rx,
        }
    }

    /// Publishes a new desired set; returns its version.
    pub fn set(&self, flows: FlowSet) -> u64 {
        let mut version = 0;
        self.desired.send_modify(|d| {
            d.version += 1;
            d.flows = Arc::new(flows);
            version = d.version;
        });
        version
    }

    pub fn desired(&self) -> Desired {
        self.desired.borrow().clone()
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

async fn run(
    driver: OfDriver,
    mut desired: watch::Receiver<Desired>,
    applied: watch::Sender<Applied>,
    cancel: CancellationToken,
) {
    let mut generation = driver.generation();
    // What the switch holds, as far as we know; None = read it first.
    let mut installed: Option<Arc<FlowSet>> = None;
    let mut installed_gen = 0u64;
    let mut retry = Duration::from_millis(50);
    loop {
        let gen = *generation.borrow_and_update();
        let want = desired.borrow_and_update().clone();
        if gen != installed_gen {
            installed = None;
        }
        let done = gen == 0
            || want.version == 0
            || (installed.is_some() && applied.borrow().version >= want.version);
        if !done {
            match step(&driver, &mut installed, &want, &applied).await {
                Ok(()) => {
                    installed_gen = gen;
                    retry = Duration::from_millis(50);
                    applied.send_modify(|a| a.version = want.version);
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
            r = desired.changed() => if r.is_err() { return },
            r = generation.changed() => if r.is_err() { return },
        }
    }
}

async fn step(
    driver: &OfDriver,
    installed: &mut Option<Arc<FlowSet>>,
    want: &Desired,
    applied: &watch::Sender<Applied>,
) -> Result<(), crate::ofdriver::OfError> {
    if installed.is_none() {
        let t = Instant::now();
        let dump = driver.dump().await?;
        let set = FlowSet::from_switch(&dump.flows, &dump.groups).with_meters(&dump.meters);
        debug!(flows = set.flows.len(), groups = set.groups.len(), took = ?t.elapsed(), "read the switch");
        *installed = Some(Arc::new(set));
        applied.send_modify(|a| a.dumps += 1);
    }
    let current = installed.as_ref().expect("read above");
    let d = diff(current, &want.flows);
    if !d.is_empty() {
        let n = d.len();
        let t = Instant::now();
        // Meters cannot go in a bundle: new ones before it, unused ones after it.
        let before = d.meters_before();
        if !before.is_empty() {
            driver.send(before).await?;
        }
        let bundle = d.messages();
        if !bundle.is_empty() {
            driver.bundle(bundle).await?;
        }
        let after = d.meters_after();
        if !after.is_empty() {
            driver.send(after).await?;
        }
        info!(changes = n, took = ?t.elapsed(), version = want.version, "switch updated");
        applied.send_modify(|a| {
            a.last_changes = n;
            a.bundles += 1;
        });
    }
    *installed = Some(want.flows.clone());
    Ok(())
}
