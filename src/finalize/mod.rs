//! Finalizer: turns a finished call into rows. One actor owns the write path;
//! call actors hand it a [`CallResult`] and get an acknowledgement once the
//! result is durable — committed, or (database unreachable) fsynced to the
//! local spool, from which a background task writes it when the database is
//! back. So a number is never released before its result is durable, and a
//! database outage costs no calls.
//!
//! The call's webhook events (see [`payload`]) are written in the same
//! transaction as its rows; [`webhook::Deliverer`] sends them.

pub mod payload;
pub mod recordings;
pub mod signing;
pub mod spool;
pub mod status;
pub mod webhook;

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot, Notify};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::dialogue::{Detail, Summary};
use crate::location::LocationCache;
use crate::store::call::RecordWrite;
use crate::store::outbox::NotifyContext;
use crate::store::{CallWrite, DetailWrite, Store, StoreError};

use self::recordings::VoiceLinks;
use self::spool::{Spool, SpoolError};
use self::status::{classify, hangup_disposition, HangupFacts, NumberStatus, StatusRules};

/// Which statuses are redialled and when.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct RecyclePolicy {
    /// Statuses that get another attempt while `recycle_limit` allows.
    pub statuses: Vec<i64>,
    pub interval_secs: i64,
}

impl Default for RecyclePolicy {
    fn default() -> Self {
        RecyclePolicy { statuses: vec![2, 3, 4, 8, 12], interval_secs: 300 }
    }
}

/// Everything known about one finished attempt.
#[derive(Debug, Clone, Default)]
pub struct CallResult {
    pub uuid: String,
    pub task_id: String,
    pub user_id: String,
    pub group_id: i64,
    pub recycle_limit: i64,
    pub number_id: i64,
    pub number: String,
    pub attempt: i64,
    pub caller_number: String,
    pub facts: HangupFacts,
    /// ms since the epoch.
    pub originated_ms: i64,
    pub answered_ms: Option<i64>,
    pub hangup_ms: i64,
    pub record_file: Option<String>,
    pub dialogue: Option<(Summary, Vec<Detail>)>,
    /// Finalized by crash reconciliation: if it was not answered, its outcome
    /// is unknown, so it becomes call loss (12) and is never redialled.
    pub reconciled: bool,
}

/// What was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub status: NumberStatus,
    pub record: bool,
    pub duplicate: bool,
    pub redial: bool,
    /// The database was unreachable: the call is in the local spool and
    /// will be written when it is back.
    pub spooled: bool,
}

/// `YYYY-MM-DD HH:MM:SS`, local time, as the seeds show times.
pub(crate) fn fmt_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// Build the rows of one call. Pure: the mapping is testable without a DB.
pub fn build(r: &CallResult, rules: &StatusRules, recycle: &RecyclePolicy) -> CallWrite {
    let mut outcome = classify(&r.facts, rules);
    let answered = r.facts.answered && r.answered_ms.is_some();
    if r.reconciled && !answered {
        outcome.status = NumberStatus::CallLoss;
        outcome.call_status = "reconciled after restart".into();
        outcome.rule = "reconciled".into();
    }
    let status = outcome.status;
    let redial =
        !answered && !r.reconciled && recycle.statuses.contains(&status.code()) && r.attempt <= r.recycle_limit;
    let record = if answered {
        let (summary, details) = r.dialogue.clone().unwrap_or_else(|| {
            (
                Summary {
                    score: 0,
                    rounds: 0,
                    level_id: None,
                    level_name: None,
                    intention_results: None,
                    tags: vec![],
                    robot_hung_up: false,
                    gender: None,
                },
                vec![],
            )
        });
        let mut tags: BTreeSet<String> = summary.tags.iter().cloned().collect();
        for d in &details {
            tags.extend(d.tags.iter().cloned());
        }
        Some(RecordWrite {
            id: crate::store::call::time_ordered_id(),
            score: summary.score,
            level_id: summary.level_id.clone(),
            level_name: summary.level_name.clone(),
            intention_results: summary.intention_results,
            rounds: summary.rounds,
            gender: summary.gender,
            tags: tags.into_iter().collect(),
            details: details.iter().map(DetailWrite::from).collect(),
        })
    } else {
        None
    };
    CallWrite {
        callid: r.uuid.clone(),
        task_id: r.task_id.clone(),
        user_id: r.user_id.clone(),
        group_id: r.group_id,
        number_id: r.number_id,
        number: r.number.clone(),
        attempt: r.attempt,
        status: status.code(),
        status_str: status.name_zh().to_string(),
        call_status: outcome.call_status.clone(),
        hangup_code: outcome.hangup_code.clone(),
        hangup_reason: outcome.hangup_reason,
        hangupcause: r.facts.hangup_cause.clone().or_else(|| r.facts.originate_error.clone()),
        calldate: fmt_ms(r.originated_ms),
        answerdate: r.answered_ms.filter(|_| answered).map(fmt_ms),
        hangupdate: fmt_ms(r.hangup_ms),
        bill_ms: r.facts.billsec_ms,
        duration_ms: r.facts.duration_ms,
        caller_number: Some(r.caller_number.clone()).filter(|c| !c.is_empty()),
        recordfile: if answered { r.record_file.clone() } else { None },
        hangup_disposition: hangup_disposition(&r.facts),
        redial_in_secs: redial.then_some(recycle.interval_secs),
        record,
        // Set by `locate` from the number-location data.
        province_id: 0,
        city_id: 0,
        operator: 0,
    }
}

/// Set where the callee's number is registered (regions ids and operator)
/// from the location data in memory: a hash probe, no database round trip,
/// so a call is located even while the database is down.
pub fn locate(w: &mut CallWrite, locations: &LocationCache) {
    if let Some(l) = locations.lookup(&w.number) {
        w.province_id = l.province_id;
        w.city_id = l.city_id;
        w.operator = l.operator;
    }
}

/// Keep the finalizer's location data loaded and fresh (a `voxdial location
/// import` in another process bumps its version) without ever putting a
/// database query on the path of a call.
async fn refresh_locations(store: Store, locations: Arc<LocationCache>, cancel: CancellationToken) {
    loop {
        if let Err(e) = locations.refresh(&store).await {
            tracing::debug!(error = %e, "number-location data not (re)loaded; keeping what is in memory");
        }
        tokio::select! {
            _ = tokio::time::sleep(locations.check_every) => {}
            _ = cancel.cancelled() => return,
        }
    }
}

/// The `[finalizer]` config section.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct FinalizerConfig {
    /// Where finalized calls wait while the database is unreachable; empty
    /// disables the spool (a failed write is then reported to the caller).
    pub spool_dir: String,
    /// A write taking longer than this counts as the database being down.
    pub write_timeout_ms: u64,
    /// Spool drain retry delay, doubled per failure up to `retry_max_ms`.
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    /// Task callback settings are re-read after this.
    pub context_ttl_ms: u64,
    /// Append every finished call to the spool (fsync) before writing it to
    /// the database, so a crash between a hangup and its commit loses
    /// nothing: the spool is replayed at start, and writes are idempotent.
    pub write_ahead: bool,
}

impl Default for FinalizerConfig {
    fn default() -> Self {
        FinalizerConfig {
            spool_dir: "voxdial-data/spool".into(),
            write_timeout_ms: 10_000,
            retry_initial_ms: 200,
            retry_max_ms: 30_000,
            context_ttl_ms: 30_000,
            write_ahead: false,
        }
    }
}

/// Everything the finalizer actor runs with.
#[derive(Debug, Clone, Default)]
pub struct FinalizerOptions {
    pub rules: StatusRules,
    pub recycle: RecyclePolicy,
    pub config: FinalizerConfig,
    /// Download links put into callbacks.
    pub voice: VoiceLinks,
    /// Woken after a call with webhook events was written.
    pub webhook_wake: Option<Arc<Notify>>,
    /// Number-location data for the record's province / city / operator;
    /// `None`: the finalizer keeps a read-only cache of its own.
    pub locations: Option<Arc<LocationCache>>,
}

impl FinalizerOptions {
    /// The options a config file describes (no webhook waker yet).
    pub fn from_config(cfg: &crate::config::Config) -> FinalizerOptions {
        FinalizerOptions {
            rules: cfg.status_rules.clone(),
            recycle: cfg.recycle.clone(),
            config: cfg.finalizer.clone(),
            voice: cfg.recordings.clone(),
            webhook_wake: None,
            locations: None,
        }
    }
}

/// Why the finalizer could not start.
#[derive(Debug, thiserror::Error)]
pub enum FinalizeError {
    #[error(transparent)]
    Spool(#[from] SpoolError),
}

/// Whether a failed write may succeed later (outage, lock, timeout) rather
/// than being refused for good (constraint violation, bad data).
pub fn is_transient(e: &StoreError) -> bool {
    use sqlx::error::ErrorKind;
    match e {
        StoreError::Db(sqlx::Error::Database(d)) => !matches!(
            d.kind(),
            ErrorKind::UniqueViolation
                | ErrorKind::ForeignKeyViolation
                | ErrorKind::NotNullViolation
                | ErrorKind::CheckViolation
        ),
        StoreError::Db(
            sqlx::Error::RowNotFound
            | sqlx::Error::TypeNotFound { .. }
            | sqlx::Error::ColumnIndexOutOfBounds { .. }
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Encode(_)
            | sqlx::Error::Decode(_),
        ) => false,
        StoreError::Db(_) | StoreError::Connect { .. } | StoreError::Io { .. } => true,
        _ => false,
    }
}

/// A task's callback settings as read at `.0` (`None`: task gone).
type CachedContext = (Instant, Option<Arc<NotifyContext>>);

/// Writes a built call with its webhook events; shared by the actor and the
/// spool drainer so both paths produce the same rows and events.
struct CallWriter {
    store: Store,
    voice: VoiceLinks,
    wake: Option<Arc<Notify>>,
    ttl: Duration,
    timeout: Duration,
    contexts: Mutex<HashMap<String, CachedContext>>,
}

impl CallWriter {
    async fn context(&self, task_id: &str) -> Result<Option<Arc<NotifyContext>>, StoreError> {
        if let Ok(m) = self.contexts.lock() {
            if let Some((at, ctx)) = m.get(task_id) {
                if at.elapsed() < self.ttl {
                    return Ok(ctx.clone());
                }
            }
        }
        let ctx = self.store.notify_context(task_id).await?.map(Arc::new);
        if let Ok(mut m) = self.contexts.lock() {
            m.insert(task_id.to_string(), (Instant::now(), ctx.clone()));
        }
        Ok(ctx)
    }

    async fn write_inner(&self, w: &CallWrite) -> Result<bool, StoreError> {
        let events = match self.context(&w.task_id).await? {
            Some(ctx) if ctx.call_notify_url.is_some() => {
                let vars = self.store.number_variables(w.number_id).await?;
                payload::call_events(w, &ctx, &vars, &self.voice, chrono::Utc::now().timestamp())
            }
            _ => vec![],
        };
        let new = self.store.write_call_with_outbox(w, &events).await?;
        if new && !events.is_empty() {
            if let Some(wake) = &self.wake {
                wake.notify_one();
            }
        }
        Ok(new)
    }

    /// `Ok(true)`: written; `Ok(false)`: already written (duplicate).
    async fn write(&self, w: &CallWrite) -> Result<bool, StoreError> {
        let started = Instant::now();
        let r = match tokio::time::timeout(self.timeout, self.write_inner(w)).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Db(sqlx::Error::PoolTimedOut)),
        };
        crate::metrics::db_write(started.elapsed());
        r
    }
}

struct Job {
    result: CallResult,
    ack: oneshot::Sender<Result<Written, StoreError>>,
}

/// Handle to the finalizer actor.
#[derive(Clone)]
pub struct Finalizer {
    tx: mpsc::Sender<Job>,
    spool: Option<Arc<Spool>>,
    tasks: TaskTracker,
}

fn spool_err(e: SpoolError) -> StoreError {
    StoreError::Invalid(format!("call could not be spooled: {e}"))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, SpoolError> + Send + 'static,
) -> Result<T, SpoolError> {
    tokio::task::spawn_blocking(f)
        .await
        .unwrap_or_else(|e| Err(SpoolError::Io { path: "spool".into(), source: std::io::Error::other(e.to_string()) }))
}

impl Finalizer {
    /// Start the actor without a spool or callbacks' download links. It
    /// drains its queue before exiting on `cancel`.
    pub fn start(store: Store, rules: StatusRules, recycle: RecyclePolicy, cancel: CancellationToken) -> Finalizer {
        let opts = FinalizerOptions {
            rules,
            recycle,
            config: FinalizerConfig { spool_dir: String::new(), ..FinalizerConfig::default() },
            ..FinalizerOptions::default()
        };
        let writer = Self::writer(store, &opts);
        Self::spawn(writer, None, opts, cancel)
    }

    /// Start the actor with the spool of `opts.config.spool_dir` (replaying
    /// what a previous run left there) and its drainer.
    pub fn start_with(
        store: Store,
        opts: FinalizerOptions,
        cancel: CancellationToken,
    ) -> Result<Finalizer, FinalizeError> {
        let spool = if opts.config.spool_dir.is_empty() {
            None
        } else {
            Some(Arc::new(Spool::open(&PathBuf::from(&opts.config.spool_dir))?))
        };
        if let Some(s) = spool.as_ref().filter(|s| !s.is_empty()) {
            tracing::warn!(spool = %s.dir().display(), "{} finalized call(s) in the spool from an earlier run; writing them", s.len());
        }
        let writer = Self::writer(store, &opts);
        Ok(Self::spawn(writer, spool, opts, cancel))
    }

    fn writer(store: Store, opts: &FinalizerOptions) -> Arc<CallWriter> {
        Arc::new(CallWriter {
            store,
            voice: opts.voice.clone(),
            wake: opts.webhook_wake.clone(),
            ttl: Duration::from_millis(opts.config.context_ttl_ms),
            timeout: Duration::from_millis(opts.config.write_timeout_ms.max(1)),
            contexts: Mutex::new(HashMap::new()),
        })
    }

    fn spawn(
        writer: Arc<CallWriter>,
        spool: Option<Arc<Spool>>,
        opts: FinalizerOptions,
        cancel: CancellationToken,
    ) -> Finalizer {
        let (tx, mut rx) = mpsc::channel::<Job>(4096);
        let drain_wake = Arc::new(Notify::new());
        let tasks = TaskTracker::new();
        if let Some(sp) = &spool {
            tasks.spawn(drain(writer.clone(), sp.clone(), opts.config.clone(), drain_wake.clone(), cancel.clone()));
        }
        let locations = opts.locations.clone().unwrap_or_else(|| Arc::new(LocationCache::read_only()));
        tasks.spawn(refresh_locations(writer.store.clone(), locations.clone(), cancel.clone()));
        let sp = spool.clone();
        tasks.spawn(async move {
            loop {
                let job = tokio::select! {
                    j = rx.recv() => match j { Some(j) => j, None => break },
                    _ = cancel.cancelled() => {
                        rx.close();
                        match rx.recv().await { Some(j) => j, None => break }
                    }
                };
                let mut w = build(&job.result, &opts.rules, &opts.recycle);
                locate(&mut w, &locations);
                let res = match &sp {
                    Some(sp) => finalize_spooled(&writer, sp, &drain_wake, w, opts.config.write_ahead).await,
                    None => finalize_direct(&writer, w).await,
                };
                if let Some(w) = res.as_ref().ok().filter(|w| !w.duplicate) {
                    crate::metrics::number_status(w.status.code());
                }
                if let Some(sp) = &sp {
                    crate::metrics::spool_calls(sp.len());
                }
                let _ = job.ack.send(res);
            }
        });
        tasks.close();
        Finalizer { tx, spool, tasks }
    }

    /// Wait until the actor has drained its queue and the spool drainer has
    /// stopped (after `cancel`); the spool directory is then free.
    pub async fn stopped(&self) {
        self.tasks.wait().await;
    }

    /// Queue a finished call and wait until it is durably written (or spooled).
    pub async fn finalize(&self, result: CallResult) -> Result<Written, StoreError> {
        let (ack, rx) = oneshot::channel();
        self.tx.send(Job { result, ack }).await.map_err(|_| StoreError::Invalid("finalizer stopped".into()))?;
        rx.await.map_err(|_| StoreError::Invalid("finalizer stopped".into()))?
    }

    /// Calls waiting in the spool for the database (0 without a spool).
    pub fn spool_len(&self) -> u64 {
        self.spool.as_ref().map_or(0, |s| s.len())
    }
}

fn written(w: &CallWrite, new: bool, spooled: bool) -> Written {
    Written {
        status: NumberStatus::from_code(w.status).unwrap_or(NumberStatus::LineFault),
        record: w.record.is_some() && new,
        duplicate: !new,
        redial: w.redial_in_secs.is_some(),
        spooled,
    }
}

/// No spool: a busy database gets a few retries before the error is reported.
async fn finalize_direct(writer: &CallWriter, w: CallWrite) -> Result<Written, StoreError> {
    let mut attempt = 0;
    loop {
        match writer.write(&w).await {
            Ok(new) => return Ok(written(&w, new, false)),
            Err(e) if attempt < 5 && is_transient(&e) => {
                attempt += 1;
                tracing::warn!(call = %w.callid, "finalize failed, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
            }
            Err(e) => {
                tracing::error!(call = %w.callid, "call could not be finalized: {e}");
                return Err(e);
            }
        }
    }
}

/// With a spool: while anything waits in it, new calls queue behind (so a
/// number's attempts are written in order); otherwise write, and spool on
/// an outage.
async fn finalize_spooled(
    writer: &CallWriter,
    sp: &Arc<Spool>,
    drain_wake: &Notify,
    w: CallWrite,
    write_ahead: bool,
) -> Result<Written, StoreError> {
    if sp.is_empty() && !write_ahead {
        match writer.write(&w).await {
            Ok(new) => return Ok(written(&w, new, false)),
            Err(e) if is_transient(&e) => {
                tracing::warn!(call = %w.callid, "database unavailable, spooling the call: {e}");
            }
            Err(e) => {
                tracing::error!(call = %w.callid, "call refused by the database: {e}");
                let (s, c, reason) = (sp.clone(), w.clone(), e.to_string());
                if let Err(se) = blocking(move || s.reject(&c, &reason)).await {
                    tracing::error!(call = %w.callid, "rejected call not kept: {se}");
                }
                return Err(e);
            }
        }
    }
    let (s, c) = (sp.clone(), w.clone());
    blocking(move || s.append(&c)).await.map_err(spool_err)?;
    drain_wake.notify_one();
    Ok(written(&w, true, true))
}

/// Write spooled calls in order once the database takes them; retry with
/// backoff while it does not. Stops between entries on `cancel`: what is
/// left stays on disk for the next start.
async fn drain(
    writer: Arc<CallWriter>,
    sp: Arc<Spool>,
    cfg: FinalizerConfig,
    wake: Arc<Notify>,
    cancel: CancellationToken,
) {
    let initial = Duration::from_millis(cfg.retry_initial_ms.max(1));
    let max = Duration::from_millis(cfg.retry_max_ms.max(cfg.retry_initial_ms).max(1));
    let pause = |d: Duration| {
        let cancel = cancel.clone();
        async move {
            tokio::select! {
                _ = cancel.cancelled() => false,
                _ = tokio::time::sleep(d) => true,
            }
        }
    };
    loop {
        if cancel.is_cancelled() {
            return;
        }
        if sp.is_empty() {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            continue;
        }
        let s = sp.clone();
        let segs = match blocking(move || s.seal()).await {
            Ok(segs) => segs,
            Err(e) => {
                tracing::error!("spool cannot be read: {e}");
                if !pause(max).await {
                    return;
                }
                continue;
            }
        };
        if segs.is_empty() {
            // The counter says calls wait but no file holds them: trust the
            // files.
            let s = sp.clone();
            if let Err(e) = blocking(move || s.recount()).await {
                tracing::error!("spool cannot be counted: {e}");
                if !pause(max).await {
                    return;
                }
            }
            continue;
        }
        for seg in segs {
            let path = seg.clone();
            let entries = match blocking(move || Spool::read_segment(&path)).await {
                Ok(e) => e,
                Err(e) => {
                    tracing::error!("spool segment unreadable: {e}");
                    if !pause(max).await {
                        return;
                    }
                    break;
                }
            };
            for e in entries {
                let mut delay = initial;
                loop {
                    if cancel.is_cancelled() {
                        return;
                    }
                    match writer.write(&e.call).await {
                        Ok(_) => break,
                        Err(err) if is_transient(&err) => {
                            tracing::debug!(call = %e.call.callid, "spooled call not written yet: {err}");
                            if !pause(delay).await {
                                return;
                            }
                            delay = (delay * 2).min(max);
                        }
                        Err(err) => {
                            tracing::error!(call = %e.call.callid, "spooled call refused by the database: {err}");
                            let (s, c, reason) = (sp.clone(), e.call.clone(), err.to_string());
                            if let Err(se) = blocking(move || s.reject(&c, &reason)).await {
                                tracing::error!("rejected call not kept: {se}");
                            }
                            break;
                        }
                    }
                }
                sp.mark_done();
            }
            let (s, path) = (sp.clone(), seg.clone());
            if let Err(e) = blocking(move || s.remove_segment(&path)).await {
                tracing::error!("drained spool segment not removed: {e}");
            }
        }
    }
}

/// Queue the task's `call_stop_notify_url` event, if it has one (`reason`:
/// `completed` or `paused`). `Ok(false)`: nothing to send.
pub async fn notify_task_stopped(store: &Store, task_id: &str, reason: &str) -> Result<bool, StoreError> {
    let Some(ctx) = store.notify_context(task_id).await? else { return Ok(false) };
    if ctx.call_stop_notify_url.is_none() {
        return Ok(false);
    }
    let counts = store.status_counts(task_id).await?;
    match payload::stop_event(&ctx, reason, &counts, &uuid::Uuid::new_v4().to_string()) {
        Some(ev) => store.enqueue_event(&ev).await,
        None => Ok(false),
    }
}
