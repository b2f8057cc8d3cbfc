//! Shared limits of a carrier line (gateway or caller line): several tasks
//! dialling through one line share its CPS and concurrency caps. One actor
//! per line owns the pacing and the live count and grants permits to waiting
//! tasks in priority order (`is_top`, then `sort`), first come first served
//! within a priority, so equal tasks interleave.

use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot, watch, Notify};
use tokio_util::sync::CancellationToken;

use super::Pacer;

/// `[[lines]]` in the config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LineConfig {
    /// The gateway name as in `sofia/gateway/<name>/…`.
    pub name: String,
    pub cps: f64,
    pub max_concurrent: i64,
}

struct Request {
    priority: i64,
    seq: u64,
    reply: oneshot::Sender<LinePermit>,
}

impl PartialEq for Request {
    fn eq(&self, o: &Self) -> bool {
        self.priority == o.priority && self.seq == o.seq
    }
}
impl Eq for Request {}
impl PartialOrd for Request {
    fn partial_cmp(&self, o: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(o))
    }
}
impl Ord for Request {
    fn cmp(&self, o: &Self) -> CmpOrdering {
        // Max-heap: higher priority first, then the earlier request.
        self.priority.cmp(&o.priority).then_with(|| o.seq.cmp(&self.seq))
    }
}

struct Shared {
    live: AtomicI64,
    freed: Notify,
}

/// Held for the life of a call on the line.
pub struct LinePermit {
    shared: Arc<Shared>,
    /// The line's cluster-wide call slot, when clustered.
    _slot: Option<crate::cluster::SlotGuard>,
}

impl Drop for LinePermit {
    fn drop(&mut self) {
        self.shared.live.fetch_sub(1, Ordering::AcqRel);
        self.shared.freed.notify_one();
    }
}

/// Handle to one line's actor.
#[derive(Clone)]
pub struct LineGate {
    tx: mpsc::UnboundedSender<Request>,
    seq: Arc<AtomicI64>,
    shared: Arc<Shared>,
    cfg: Arc<watch::Sender<LineConfig>>,
}

impl LineGate {
    pub fn start(cfg: LineConfig) -> LineGate {
        Self::start_clustered(cfg, None)
    }

    /// With a cluster, the line's CPS and `max_concurrent` are global: each
    /// slot also needs a call slot and a GCRA grant from Redis (local
    /// fractions of both while Redis is down).
    pub fn start_clustered(cfg: LineConfig, cluster: Option<crate::cluster::Cluster>) -> LineGate {
        let (tx, mut rx) = mpsc::unbounded_channel::<Request>();
        let shared = Arc::new(Shared { live: AtomicI64::new(0), freed: Notify::new() });
        let sh = shared.clone();
        let (cfg_tx, mut cfg_rx) = watch::channel(cfg.clone());
        tokio::spawn(async move {
            let mut heap: BinaryHeap<Request> = BinaryHeap::new();
            let mut pacer = Pacer::new(cfg.cps);
            let mut max = cfg.max_concurrent.max(1);
            loop {
                // A reloaded config (SIGHUP) applies from the next grant; live
                // calls above a lowered cap finish normally.
                if cfg_rx.has_changed().unwrap_or(false) {
                    let c = cfg_rx.borrow_and_update().clone();
                    pacer.set_rate(c.cps);
                    max = c.max_concurrent.max(1);
                }
                if heap.is_empty() {
                    match rx.recv().await {
                        Some(r) => heap.push(r),
                        None => break,
                    }
                }
                while let Ok(r) = rx.try_recv() {
                    heap.push(r);
                }
                if sh.live.load(Ordering::Acquire) >= max {
                    tokio::select! {
                        _ = sh.freed.notified() => {}
                        r = rx.recv() => match r { Some(r) => heap.push(r), None => break },
                        c = cfg_rx.changed() => {
                            if c.is_err() {
                                break;
                            }
                            // changed() marked it seen: apply it here.
                            let c = cfg_rx.borrow_and_update().clone();
                            pacer.set_rate(c.cps);
                            max = c.max_concurrent.max(1);
                        }
                    }
                    continue;
                }
                pacer.wait().await;
                // --- cluster hook: global concurrency slot, then global pace.
                let slot = match &cluster {
                    Some(c) => {
                        let slot = c.acquire_slot(&format!("line:{}", cfg.name), max, &CancellationToken::new()).await;
                        c.pace(&format!("line:{}", cfg.name), cfg.cps).await;
                        slot
                    }
                    None => None,
                };
                let mut slot = Some(slot);
                // --- end cluster hook
                // Requests that arrived while pacing compete for this slot too.
                while let Ok(r) = rx.try_recv() {
                    heap.push(r);
                }
                while let Some(r) = heap.pop() {
                    if r.reply.is_closed() {
                        continue;
                    }
                    sh.live.fetch_add(1, Ordering::AcqRel);
                    let permit = LinePermit { shared: sh.clone(), _slot: slot.take().flatten() };
                    match r.reply.send(permit) {
                        Ok(()) => break,
                        // The waiter left: the slot goes to the next one.
                        Err(mut p) => slot = Some(p._slot.take()),
                    }
                }
            }
        });
        LineGate { tx, seq: Arc::new(AtomicI64::new(0)), shared, cfg: Arc::new(cfg_tx) }
    }

    /// Change the line's caps in place (permits held stay valid).
    pub fn reconfigure(&self, cfg: LineConfig) {
        self.cfg.send_if_modified(|c| {
            let changed = *c != cfg;
            *c = cfg;
            changed
        });
    }

    /// Wait for a slot on the line.
    pub async fn acquire(&self, priority: i64) -> Option<LinePermit> {
        let (reply, rx) = oneshot::channel();
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) as u64;
        self.tx.send(Request { priority, seq, reply }).ok()?;
        rx.await.ok()
    }

    /// Calls currently holding a permit.
    pub fn live(&self) -> i64 {
        self.shared.live.load(Ordering::Acquire)
    }
}

/// Every configured line, by gateway name.
/// Shared by every task runner of the node; [`Lines::reload`] changes it
/// for all of them.
#[derive(Clone, Default)]
pub struct Lines {
    gates: Arc<RwLock<HashMap<String, LineGate>>>,
    cluster: Option<crate::cluster::Cluster>,
}

impl Lines {
    pub fn start(cfgs: &[LineConfig]) -> Lines {
        Self::start_clustered(cfgs, None)
    }

    /// Lines whose caps hold across the cluster (see [`LineGate::start_clustered`]).
    pub fn start_clustered(cfgs: &[LineConfig], cluster: Option<crate::cluster::Cluster>) -> Lines {
        let gates =
            cfgs.iter().map(|c| (c.name.clone(), LineGate::start_clustered(c.clone(), cluster.clone()))).collect();
        Lines { gates: Arc::new(RwLock::new(gates)), cluster }
    }

    /// The gate of the gateway a dial string goes through, if it is limited.
    pub fn for_dial_string(&self, url: &str) -> Option<LineGate> {
        let rest = url.split("sofia/gateway/").nth(1)?;
        let name = rest.split('/').next()?;
        self.gates.read().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }

    /// Apply a reloaded `[[lines]]`: changed caps in place, new lines
    /// started, removed lines no longer limit new calls.
    pub fn reload(&self, cfgs: &[LineConfig]) {
        let mut gates = self.gates.write().unwrap_or_else(|p| p.into_inner());
        gates.retain(|name, _| cfgs.iter().any(|c| &c.name == name));
        for c in cfgs {
            match gates.get(&c.name) {
                Some(g) => g.reconfigure(c.clone()),
                None => {
                    gates.insert(c.name.clone(), LineGate::start_clustered(c.clone(), self.cluster.clone()));
                }
            }
        }
    }
}

/// A task's priority on shared lines: `is_top` first, then `sort`.
pub fn priority(is_top: i64, sort: i64) -> i64 {
    is_top.saturating_mul(1_000_000).saturating_add(sort)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn higher_priority_waiters_go_first_and_the_cap_holds() {
        let gate = LineGate::start(LineConfig { name: "gw".into(), cps: 10.0, max_concurrent: 2 });
        let a = gate.acquire(0).await.expect("permit");
        let b = gate.acquire(0).await.expect("permit");
        assert_eq!(gate.live(), 2);
        let g2 = gate.clone();
        let low = tokio::spawn(async move { g2.acquire(1).await.map(|_| "low") });
        tokio::task::yield_now().await;
        let g3 = gate.clone();
        let high = tokio::spawn(async move { g3.acquire(5).await.map(|_| "high") });
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        assert!(!low.is_finished() && !high.is_finished(), "cap of 2 holds");
        drop(a);
        let first = tokio::select! { r = high => r.expect("join"), r = low => r.expect("join") };
        assert_eq!(first, Some("high"));
        drop(b);
    }

    #[tokio::test(start_paused = true)]
    async fn reload_raises_a_cap_for_waiting_tasks() {
        let lines = Lines::start(&[LineConfig { name: "gw".into(), cps: 100.0, max_concurrent: 1 }]);
        let gate = lines.for_dial_string("{a=b}sofia/gateway/gw/138").expect("limited line");
        let _a = gate.acquire(0).await.expect("permit");
        let g2 = gate.clone();
        let waiting = tokio::spawn(async move { g2.acquire(0).await.is_some() });
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert!(!waiting.is_finished(), "cap of 1 holds");
        lines.reload(&[LineConfig { name: "gw".into(), cps: 100.0, max_concurrent: 2 }]);
        let got = tokio::time::timeout(std::time::Duration::from_secs(1), waiting).await;
        assert!(matches!(got, Ok(Ok(true))), "raised cap applies to a waiting task");
        lines.reload(&[]);
        assert!(lines.for_dial_string("sofia/gateway/gw/1").is_none(), "removed line no longer limits");
    }

    #[test]
    fn gateway_of_a_dial_string() {
        let lines = Lines::start(&[]);
        assert!(lines.for_dial_string("{a=b}sofia/gateway/gw1/138").is_none());
    }
}
