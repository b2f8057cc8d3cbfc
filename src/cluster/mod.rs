//! Scale-out: several `voxdial serve` nodes, each beside its own
//! FreeSWITCH, sharing one database and one Redis.
//!
//! - The database stays the source of truth: numbers are claimed there
//!   (`FOR UPDATE SKIP LOCKED`), every attempt is in the dial ledger, and
//!   `cluster_nodes` holds a heartbeat per node.
//! - Redis holds what must be fast and shared: GCRA rate limiters per task
//!   and per gateway, lease-based call-slot counters per task `maximumcall`
//!   and per gateway `max_concurrent`, the per-callee dial times, node
//!   liveness keys and the `voxdial:task` pub/sub channel.
//! - Redis down: each node keeps dialling within `local_fraction` of every
//!   global cap (so with N nodes and `local_fraction ≤ 1/N` no cap can be
//!   exceeded), logs it loudly, and rejoins when Redis answers again: it
//!   re-registers its live slots, then waits two heartbeats (every other node
//!   has re-registered by then) before it trusts the shared counters again.
//!
//! A node without `[cluster] redis_url` has no `Cluster` at all and behaves
//! exactly as a single node did before.

pub mod nodes;
mod scripts;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::dialer::compliance::{CalleeLimit, Verdict};
use crate::finalize::Finalizer;
use crate::store::{Store, StoreError};

pub use nodes::{status, ClusterStatus, NodeStatus};

/// The `[cluster]` config section.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct ClusterConfig {
    /// This node's id; overrides `[dialer] node_id` when set.
    pub node_id: Option<String>,
    /// `redis://host:port/db`. Absent: no cluster coordination (one node).
    pub redis_url: Option<String>,
    /// Prefix of every Redis key and of the `<prefix>:task` channel.
    pub key_prefix: String,
    /// Fraction of each global cap a node uses while Redis is unreachable.
    /// Keep it ≤ 1 / number of nodes so the caps hold during an outage.
    pub local_fraction: f64,
    /// Lease of a call slot and of a node's liveness: a crashed node's slots
    /// and claims come back this long after its last heartbeat.
    pub lease_secs: u64,
    pub heartbeat_ms: u64,
    /// An open ledger row of a dead node older than this is finalized as
    /// call loss by a live node (the call must have ended by then: voxdial
    /// hangs up after `max_call_secs`, the carrier gives up ringing after
    /// the originate timeout). See `nodes::take_over`.
    pub orphan_after_secs: i64,
    /// Redis connect and response timeout: beyond it Redis counts as down.
    pub redis_timeout_ms: u64,
    /// After Redis is lost, a node holds each concurrency counter at no
    /// more than it held at that moment for this long (and at most its
    /// fraction): calls started under the shared counter may be spread
    /// unevenly, and another node's surplus must end before this node grows
    /// to its fraction. Set it to about the longest usual call.
    pub degraded_settle_secs: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node_id: None,
            redis_url: None,
            key_prefix: "voxdial".into(),
            local_fraction: 0.34,
            lease_secs: 10,
            heartbeat_ms: 1000,
            orphan_after_secs: 720,
            redis_timeout_ms: 500,
            degraded_settle_secs: 60,
        }
    }
}

impl ClusterConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(self.local_fraction > 0.0 && self.local_fraction <= 1.0) {
            return Err("[cluster] local_fraction must be in (0, 1]".into());
        }
        if self.lease_secs < 2 || self.heartbeat_ms < 50 || self.heartbeat_ms >= self.lease_secs * 1000 {
            return Err("[cluster] lease_secs must be ≥ 2 and heartbeat_ms between 50 and lease_secs·1000".into());
        }
        if self.key_prefix.is_empty() {
            return Err("[cluster] key_prefix is empty".into());
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("[cluster] {0}")]
    Config(String),
    #[error("Redis: {0}")]
    Redis(#[from] redis::RedisError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A task-control message on `<prefix>:task`; the database row stays the
/// truth, the message only makes nodes look at it now.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TaskSignal {
    pub task: String,
    pub start: i64,
}

/// Redis state as this node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedisMode {
    /// Shared limits in force.
    Up,
    /// Unreachable: local fractions of the caps.
    Down,
    /// Back, slots re-registered; still local limits until every node has
    /// re-registered too.
    Rejoining,
}

/// Coordination counters of this node (for benchmarks and status).
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct CoordStats {
    /// Redis round trips on the dial path.
    pub round_trips: u64,
    /// Their total latency (µs).
    pub round_trip_us: u64,
    /// Times this node fell back to local limits.
    pub degraded: u64,
}

struct Inner {
    cfg: ClusterConfig,
    node: String,
    store: Store,
    client: redis::Client,
    conn: Mutex<Option<redis::aio::ConnectionManager>>,
    mode: AtomicU8,
    rejoin_at: Mutex<Option<Instant>>,
    /// When Redis was lost, and the slots held per counter at that moment.
    down_since: Mutex<(Option<Instant>, HashMap<String, usize>)>,
    signals: broadcast::Sender<TaskSignal>,
    /// Slots this node holds: set key → members.
    held: Mutex<HashMap<String, HashSet<String>>>,
    /// Local rate limiter state while Redis is down: key → TAT.
    local_tat: Mutex<HashMap<String, Instant>>,
    /// Recent originates per gateway, for the achieved CPS.
    recent: Mutex<HashMap<String, VecDeque<Instant>>>,
    round_trips: AtomicU64,
    round_trip_us: AtomicU64,
    degraded: AtomicU64,
    gcra: redis::Script,
    slot_acquire: redis::Script,
    slot_renew: redis::Script,
    callee: redis::Script,
}

const UP: u8 = 0;
const DOWN: u8 = 1;
const REJOINING: u8 = 2;

/// How much earlier than its slot a GCRA caller may be, in intervals.
const GCRA_TOLERANCE: f64 = 1.0;
/// Poll period while a slot counter is full.
const SLOT_POLL: Duration = Duration::from_millis(25);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Handle to the cluster coordination of this node; cheap to clone.
#[derive(Clone)]
pub struct Cluster {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster").field("node", &self.inner.node).field("mode", &self.mode()).finish()
    }
}

impl Cluster {
    /// Connect (or start degraded when Redis is unreachable), write the
    /// first heartbeat and start the heartbeat and pub/sub tasks. `None`
    /// when no `redis_url` is configured.
    pub async fn start(
        cfg: &ClusterConfig,
        node: &str,
        store: Store,
        cancel: CancellationToken,
    ) -> Result<Option<Cluster>, ClusterError> {
        let Some(url) = cfg.redis_url.clone() else { return Ok(None) };
        cfg.validate().map_err(ClusterError::Config)?;
        let client = redis::Client::open(url.as_str())?;
        let (signals, _) = broadcast::channel(256);
        let c = Cluster {
            inner: Arc::new(Inner {
                cfg: cfg.clone(),
                node: node.to_string(),
                store,
                client,
                conn: Mutex::new(None),
                mode: AtomicU8::new(DOWN),
                rejoin_at: Mutex::new(None),
                down_since: Mutex::new((None, HashMap::new())),
                signals,
                held: Mutex::new(HashMap::new()),
                local_tat: Mutex::new(HashMap::new()),
                recent: Mutex::new(HashMap::new()),
                round_trips: AtomicU64::new(0),
                round_trip_us: AtomicU64::new(0),
                degraded: AtomicU64::new(0),
                gcra: redis::Script::new(scripts::GCRA),
                slot_acquire: redis::Script::new(scripts::SLOT_ACQUIRE),
                slot_renew: redis::Script::new(scripts::SLOT_RENEW),
                callee: redis::Script::new(scripts::CALLEE),
            }),
        };
        match c.connect().await {
            // At start nobody holds slots of ours: no rejoin wait needed.
            Ok(()) => c.inner.mode.store(UP, Ordering::Release),
            Err(e) => c.mark_down(&format!("at start: {e}")),
        }
        c.beat().await;
        tracing::info!(node = %c.inner.node, mode = ?c.mode(), "cluster coordination started");
        let hb = c.clone();
        let cancel_hb = cancel.clone();
        tokio::spawn(async move { hb.heartbeat_loop(cancel_hb).await });
        let ps = c.clone();
        tokio::spawn(async move { ps.pubsub_loop(cancel).await });
        Ok(Some(c))
    }

    pub fn node_id(&self) -> &str {
        &self.inner.node
    }

    pub fn config(&self) -> &ClusterConfig {
        &self.inner.cfg
    }

    pub fn mode(&self) -> RedisMode {
        match self.inner.mode.load(Ordering::Acquire) {
            UP => RedisMode::Up,
            REJOINING => RedisMode::Rejoining,
            _ => RedisMode::Down,
        }
    }

    pub fn stats(&self) -> CoordStats {
        CoordStats {
            round_trips: self.inner.round_trips.load(Ordering::Relaxed),
            round_trip_us: self.inner.round_trip_us.load(Ordering::Relaxed),
            degraded: self.inner.degraded.load(Ordering::Relaxed),
        }
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}:{suffix}", self.inner.cfg.key_prefix)
    }

    async fn connect(&self) -> Result<(), redis::RedisError> {
        let t = Duration::from_millis(self.inner.cfg.redis_timeout_ms);
        let cm_cfg = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(t))
            .set_response_timeout(Some(t))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let cm = tokio::time::timeout(
            t * 2,
            redis::aio::ConnectionManager::new_with_config(self.inner.client.clone(), cm_cfg),
        )
        .await
        .map_err(|_| redis::RedisError::from((redis::ErrorKind::Io, "connect timed out")))??;
        *lock(&self.inner.conn) = Some(cm);
        Ok(())
    }

    fn conn(&self) -> Option<redis::aio::ConnectionManager> {
        lock(&self.inner.conn).clone()
    }

    /// Redis failed: local limits from now on, loudly.
    fn mark_down(&self, why: &str) {
        let prev = self.inner.mode.swap(DOWN, Ordering::AcqRel);
        if prev != DOWN {
            let held: HashMap<String, usize> =
                lock(&self.inner.held).iter().map(|(k, m)| (k.clone(), m.len())).collect();
            *lock(&self.inner.down_since) = (Some(Instant::now()), held);
            self.inner.degraded.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                node = %self.inner.node,
                fraction = self.inner.cfg.local_fraction,
                "REDIS UNAVAILABLE ({why}): cluster-wide limits are not shared; dialling within local limits (fraction of every global cap) until it returns"
            );
        }
    }

    /// The shared limits are asked while Redis is up, and also while
    /// rejoining (then the local limits must grant too: nodes switch back
    /// at slightly different moments, and a rejoining node must not add its
    /// local share on top of what the shared limiter hands out).
    fn shared(&self) -> Option<redis::aio::ConnectionManager> {
        if self.inner.mode.load(Ordering::Acquire) != DOWN {
            self.conn()
        } else {
            None
        }
    }

    /// Run one script on the dial path, timing it; an error marks Redis
    /// down and returns `None` (the caller falls back to local limits).
    async fn run<T: redis::FromRedisValue>(&self, inv: redis::ScriptInvocation<'_>) -> Option<T> {
        let mut conn = self.shared()?;
        let t0 = Instant::now();
        let r = inv.invoke_async::<T>(&mut conn).await;
        self.inner.round_trips.fetch_add(1, Ordering::Relaxed);
        self.inner.round_trip_us.fetch_add(t0.elapsed().as_micros() as u64, Ordering::Relaxed);
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.mark_down(&e.to_string());
                None
            }
        }
    }

    /// Wait until the shared limiter `name` (e.g. `line:carrier1`) grants a
    /// slot at `rate` per second across the cluster. While Redis is down the
    /// same GCRA runs locally at `rate · local_fraction`.
    pub async fn pace(&self, name: &str, rate: f64) {
        let rate = rate.clamp(0.001, 1_000_000.0);
        let key = self.key(&format!("rate:{name}"));
        loop {
            let interval_us = (1_000_000.0 / rate).round() as u64;
            let tau_us = (interval_us as f64 * GCRA_TOLERANCE) as u64;
            let mut inv = self.inner.gcra.key(&key);
            inv.arg(interval_us).arg(tau_us);
            match self.run::<u64>(inv).await {
                Some(0) if self.mode() == RedisMode::Rejoining => {
                    while let Some(w) = self.local_pace(&key, rate * self.inner.cfg.local_fraction) {
                        tokio::time::sleep(w.min(Duration::from_millis(200))).await;
                    }
                    return;
                }
                Some(0) => return,
                Some(wait_us) => tokio::time::sleep(Duration::from_micros(wait_us.min(1_000_000))).await,
                None => match self.local_pace(&key, rate * self.inner.cfg.local_fraction) {
                    None => return,
                    Some(w) => tokio::time::sleep(w.min(Duration::from_millis(200))).await,
                },
            }
        }
    }

    /// The local GCRA: `None` = granted, else how long to wait.
    fn local_pace(&self, key: &str, rate: f64) -> Option<Duration> {
        let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
        let now = Instant::now();
        let mut tats = lock(&self.inner.local_tat);
        let tat = tats.get(key).copied().unwrap_or(now).max(now);
        // No tolerance locally: while degraded, rather too slow than too fast.
        if tat > now {
            return Some(tat - now);
        }
        tats.insert(key.to_string(), tat + interval);
        None
    }

    /// Hold one of `cap` call slots of `name` (e.g. `task:<id>` for
    /// `maximumcall`, `line:<gw>` for a gateway's `max_concurrent`) across
    /// the cluster; waits while the cap is reached. `None` if `cancel` fired.
    pub async fn acquire_slot(&self, name: &str, cap: i64, cancel: &CancellationToken) -> Option<SlotGuard> {
        let key = self.key(&format!("slots:{name}"));
        let member = format!("{}:{}", self.inner.node, uuid::Uuid::new_v4());
        let lease_ms = self.inner.cfg.lease_secs * 1000;
        loop {
            if cancel.is_cancelled() {
                return None;
            }
            let granted = if self.mode() == RedisMode::Up || self.local_slot_ok(&key, cap) {
                let mut inv = self.inner.slot_acquire.key(&key);
                inv.arg(&member).arg(cap.max(1)).arg(lease_ms);
                match self.run::<i64>(inv).await {
                    Some(g) => g == 1,
                    None => self.local_slot_ok(&key, cap),
                }
            } else {
                false
            };
            if granted {
                lock(&self.inner.held).entry(key.clone()).or_default().insert(member.clone());
                return Some(SlotGuard { cluster: self.clone(), key, member });
            }
            tokio::select! {
                _ = cancel.cancelled() => return None,
                _ = tokio::time::sleep(SLOT_POLL) => {}
            }
        }
    }

    /// The local rule for a concurrency counter while Redis is down or
    /// rejoining: at most `cap · local_fraction`, and during the settle time
    /// no more than this node held when Redis was lost.
    fn local_slot_ok(&self, key: &str, cap: i64) -> bool {
        let local_cap = ((cap.max(1) as f64) * self.inner.cfg.local_fraction).floor().max(1.0) as usize;
        let held = lock(&self.inner.held).get(key).map_or(0, HashSet::len);
        let limit = {
            let down = lock(&self.inner.down_since);
            match down.0 {
                Some(t) if t.elapsed() < Duration::from_secs(self.inner.cfg.degraded_settle_secs) => {
                    local_cap.min(down.1.get(key).copied().unwrap_or(0))
                }
                _ => local_cap,
            }
        };
        held < limit
    }

    /// Slots this node holds in `name`.
    pub fn held_slots(&self, name: &str) -> usize {
        lock(&self.inner.held).get(&self.key(&format!("slots:{name}"))).map_or(0, HashSet::len)
    }

    /// The per-callee limits across nodes: checks and records the dial in
    /// one atomic step. `None` = allowed (or Redis down: the ledger check,
    /// done before, is then the only one); `Some(Defer)` otherwise.
    pub async fn admit_callee(&self, number: &str, attempt_uuid: &str, limits: &[CalleeLimit]) -> Option<Verdict> {
        let limits: Vec<&CalleeLimit> = limits.iter().filter(|l| l.max_calls >= 1 && l.per_secs >= 1).collect();
        if limits.is_empty() {
            return None;
        }
        let mut inv = self.inner.callee.key(self.key(&format!("callee:{number}")));
        inv.arg(attempt_uuid).arg(limits.len());
        for l in &limits {
            inv.arg(l.max_calls).arg(l.per_secs * 1000);
        }
        let (ok, wait_ms, idx) = self.run::<(i64, i64, i64)>(inv).await?;
        if ok == 1 {
            return None;
        }
        let l = limits.get(idx as usize).copied().or(limits.first().copied())?;
        Some(Verdict::Defer {
            until: chrono::Utc::now() + chrono::Duration::milliseconds(wait_ms.max(0) + 1000),
            rule: "callee_limit",
            reason: format!(
                "{} calls to this number within {} s across the cluster (limit {})",
                l.max_calls, l.per_secs, l.max_calls
            ),
        })
    }

    /// Count an originate towards its gateway's achieved CPS.
    pub fn note_originate(&self, dial_string: &str) {
        let gw = dial_string.split("sofia/gateway/").nth(1).and_then(|r| r.split('/').next()).unwrap_or("").to_string();
        if gw.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut recent = lock(&self.inner.recent);
        let q = recent.entry(gw).or_default();
        q.push_back(now);
        while q.front().is_some_and(|t| now.duration_since(*t) > Duration::from_secs(10)) {
            q.pop_front();
        }
    }

    /// Originates per second over the last 10 s, by gateway.
    pub fn achieved_cps(&self) -> BTreeMap<String, f64> {
        let now = Instant::now();
        let mut recent = lock(&self.inner.recent);
        let mut out = BTreeMap::new();
        for (gw, q) in recent.iter_mut() {
            while q.front().is_some_and(|t| now.duration_since(*t) > Duration::from_secs(10)) {
                q.pop_front();
            }
            out.insert(gw.clone(), q.len() as f64 / 10.0);
        }
        out
    }

    /// Live calls of this node (task slots held).
    pub fn live_calls(&self) -> i64 {
        let prefix = self.key("slots:task:");
        lock(&self.inner.held).iter().filter(|(k, _)| k.starts_with(&prefix)).map(|(_, m)| m.len() as i64).sum()
    }

    /// Tell every node to look at a task now (start, pause, stop, edit).
    pub async fn publish_task(&self, task: &str, start: i64) -> Result<(), ClusterError> {
        let Some(mut conn) = self.conn() else {
            return Err(ClusterError::Redis(redis::RedisError::from((redis::ErrorKind::Io, "not connected"))));
        };
        let msg = serde_json::to_string(&TaskSignal { task: task.to_string(), start }).unwrap_or_default();
        redis::cmd("PUBLISH").arg(self.key("task")).arg(msg).query_async::<i64>(&mut conn).await?;
        Ok(())
    }

    /// Task-control signals received on this node. A signal with an empty
    /// task means "re-read everything" (sent after a pub/sub reconnect).
    pub fn signals(&self) -> broadcast::Receiver<TaskSignal> {
        self.inner.signals.subscribe()
    }

    async fn pubsub_loop(&self, cancel: CancellationToken) {
        let channel = self.key("task");
        while !cancel.is_cancelled() {
            let sub = async {
                let mut ps = self.inner.client.get_async_pubsub().await?;
                ps.subscribe(&channel).await?;
                Ok::<_, redis::RedisError>(ps)
            };
            match tokio::time::timeout(Duration::from_secs(2), sub).await {
                Ok(Ok(mut ps)) => {
                    // Whatever was missed while unsubscribed is in the database.
                    let _ = self.inner.signals.send(TaskSignal { task: String::new(), start: -1 });
                    let mut stream = ps.on_message();
                    loop {
                        tokio::select! {
                            _ = cancel.cancelled() => return,
                            m = stream.next() => match m {
                                Some(m) => {
                                    let payload: String = m.get_payload().unwrap_or_default();
                                    match serde_json::from_str::<TaskSignal>(&payload) {
                                        Ok(s) => { let _ = self.inner.signals.send(s); }
                                        Err(e) => tracing::warn!("ignoring malformed task signal {payload:?}: {e}"),
                                    }
                                }
                                None => break,
                            },
                        }
                    }
                    tracing::warn!("task-control subscription lost; resubscribing");
                }
                Ok(Err(e)) => tracing::debug!("task-control subscription failed: {e}"),
                Err(_) => tracing::debug!("task-control subscription timed out"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
    }

    /// Snapshot of held slots, by set key.
    fn held_snapshot(&self) -> Vec<(String, Vec<String>)> {
        lock(&self.inner.held)
            .iter()
            .filter(|(_, m)| !m.is_empty())
            .map(|(k, m)| (k.clone(), m.iter().cloned().collect()))
            .collect()
    }

    /// Redis part of a heartbeat: node key, slot renewal, mode changes.
    async fn beat_redis(&self) {
        let lease_ms = self.inner.cfg.lease_secs * 1000;
        let mode = self.inner.mode.load(Ordering::Acquire);
        if mode == DOWN && self.conn().is_none() {
            if let Err(e) = self.connect().await {
                tracing::debug!("Redis still unreachable: {e}");
                return;
            }
        }
        let Some(mut conn) = self.conn() else { return };
        let info = nodes::NodeInfo::of(self);
        let value = serde_json::to_string(&info).unwrap_or_default();
        let res: Result<(), redis::RedisError> = async {
            redis::cmd("SET")
                .arg(self.key(&format!("node:{}", self.inner.node)))
                .arg(&value)
                .arg("PX")
                .arg(lease_ms)
                .query_async::<()>(&mut conn)
                .await?;
            let reregister = if mode == UP { "0" } else { "1" };
            for (key, members) in self.held_snapshot() {
                let mut inv = self.inner.slot_renew.key(&key);
                inv.arg(lease_ms).arg(reregister);
                for m in &members {
                    inv.arg(m);
                }
                inv.invoke_async::<i64>(&mut conn).await?;
            }
            Ok(())
        }
        .await;
        match res {
            Err(e) => self.mark_down(&e.to_string()),
            Ok(()) if mode == DOWN => {
                self.inner.mode.store(REJOINING, Ordering::Release);
                *lock(&self.inner.rejoin_at) =
                    Some(Instant::now() + Duration::from_millis(self.inner.cfg.heartbeat_ms * 2 + 200));
                tracing::warn!(node = %self.inner.node, "Redis is reachable again: live slots re-registered; rejoining the shared limits shortly");
            }
            Ok(()) if mode == REJOINING => {
                let ready = lock(&self.inner.rejoin_at).is_none_or(|t| Instant::now() >= t);
                if ready {
                    // Drop local limiter state: the shared one rules again.
                    lock(&self.inner.local_tat).clear();
                    self.inner.mode.store(UP, Ordering::Release);
                    tracing::warn!(node = %self.inner.node, "REDIS BACK: cluster-wide limits shared again");
                }
            }
            Ok(()) => {}
        }
    }

    async fn beat(&self) {
        self.beat_redis().await;
        if let Err(e) = nodes::heartbeat(self).await {
            tracing::warn!("cluster heartbeat not written to the database: {e}");
        }
    }

    async fn heartbeat_loop(&self, cancel: CancellationToken) {
        let period = Duration::from_millis(self.inner.cfg.heartbeat_ms);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(period) => {}
            }
            self.beat().await;
        }
        // A clean stop: our slots go at once instead of after the lease.
        nodes::leave(self).await;
    }

    /// Settle what dead nodes left behind, every `lease/2`: release their
    /// undialled claims and finalize their orphaned attempts as call loss.
    pub fn spawn_takeover(&self, finalizer: Finalizer, cancel: CancellationToken) {
        let c = self.clone();
        let period = Duration::from_millis((self.inner.cfg.lease_secs * 500).max(500));
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(period) => {}
                }
                match nodes::take_over(&c, &finalizer).await {
                    Ok(t) if t.released > 0 || t.finalized > 0 => {
                        tracing::warn!(released = t.released, finalized = t.finalized, nodes = ?t.dead, "took over what dead nodes left")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!("cluster takeover pass failed: {e}"),
                }
            }
        });
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(crate) async fn redis_node_alive(&self, node: &str) -> Option<bool> {
        let mut conn = self.shared()?;
        redis::cmd("EXISTS")
            .arg(self.key(&format!("node:{node}")))
            .query_async::<i64>(&mut conn)
            .await
            .ok()
            .map(|n| n > 0)
    }
}

/// One held call slot; released when dropped.
pub struct SlotGuard {
    cluster: Cluster,
    key: String,
    member: String,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if let Some(set) = lock(&self.cluster.inner.held).get_mut(&self.key) {
            set.remove(&self.member);
        }
        let Some(mut conn) = self.cluster.conn() else { return };
        let (key, member) = (std::mem::take(&mut self.key), std::mem::take(&mut self.member));
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            // Best effort: a slot that is not removed expires with its lease.
            rt.spawn(async move {
                let _ = redis::cmd("ZREM").arg(key).arg(member).query_async::<i64>(&mut conn).await;
            });
        }
    }
}

/// Wait for the next signal about `task` (or a resync). Pends forever
/// without a receiver, so it can sit in a `select!` unconditionally.
pub async fn task_signal(rx: &mut Option<broadcast::Receiver<TaskSignal>>, task: &str) {
    let Some(rx) = rx.as_mut() else { return std::future::pending().await };
    loop {
        match rx.recv().await {
            Ok(s) if s.task.is_empty() || s.task == task => return,
            Ok(_) => {}
            Err(broadcast::error::RecvError::Lagged(_)) => return,
            Err(broadcast::error::RecvError::Closed) => return std::future::pending().await,
        }
    }
}
