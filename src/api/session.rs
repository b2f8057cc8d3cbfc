//! Live smartivr calls: one [`Dialogue`] per callid, created at `enter`,
//! removed at `leave` or after the idle timeout, capped in number.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::Row;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::journal::{self, EnterLine, Journal, LeaveInfo, Recovered};
use super::{ApiError, SmartivrConfig};
use crate::dialer::call::{ModuleCalls, ModuleTranscript};
use crate::dialogue::smartivr::{drive, reply_for, step_of, Notify, Reply, Step};
use crate::dialogue::{Action, Detail, Dialogue, Input, RobotAudio, Script, Summary, SAMPLE_SCRIPT};
use crate::finalize::status::HangupFacts;
use crate::finalize::{build, is_transient, CallResult, Finalizer};
use crate::store::{Store, StoreError};

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// What a call's `flowid` resolves to.
#[derive(Debug)]
pub struct TaskCtx {
    /// `Some`: a real task whose numbers can be looked up.
    pub task_id: Option<String>,
    pub record_task_id: String,
    pub user_id: String,
    pub group_id: i64,
    pub recycle_limit: i64,
    pub script: Arc<Script>,
}

struct Session {
    dialogue: Dialogue,
    ctx: Arc<TaskCtx>,
    enter: EnterLine,
    /// Rows of `dialogue.details()` already in the journal.
    journaled: usize,
    /// A closing prompt went out with `after_action: hangup`.
    closing_sent: bool,
    /// This process's dialer placed the call: its call actor finalizes it,
    /// with this transcript and the channel's hangup.
    dialer: bool,
    last_seen: Instant,
}

/// A number's id, attempts so far and script variables.
type NumberRow = (i64, i64, HashMap<String, String>);

/// One `enter`'s number lookup.
struct Lookup {
    task_id: String,
    number: String,
    reply: oneshot::Sender<Option<NumberRow>>,
}

type Shard = Mutex<HashMap<String, Arc<Mutex<Session>>>>;
/// flowid → when looked up, and the task (`None`: no such task).
type TaskCache = HashMap<String, (Instant, Option<Arc<TaskCtx>>)>;

const SHARDS: usize = 16;
const TASK_TTL: Duration = Duration::from_secs(60);
/// How long the batch writer gathers finished calls before a commit.
const BATCH_WINDOW: Duration = Duration::from_millis(20);

struct Inner {
    cfg: SmartivrConfig,
    store: Store,
    journal: Journal,
    /// Calls whose task sends callbacks (their events commit with the rows).
    finalizer: Finalizer,
    /// Every other finished call, written in batches.
    batch: tokio::sync::mpsc::UnboundedSender<CallResult>,
    /// Number lookups of `enter`s, answered in batches.
    lookups: tokio::sync::mpsc::UnboundedSender<Lookup>,
    fallback: Arc<TaskCtx>,
    /// Calls this process's dialer placed; their call actors finalize them.
    module_calls: ModuleCalls,
    tasks: Mutex<TaskCache>,
    shards: Vec<Shard>,
    hasher: RandomState,
    live: AtomicUsize,
    /// The batch writer, awaited by [`SmartivrState::stopped`].
    writer: tokio_util::task::TaskTracker,
}

/// Shared state of the smartivr endpoint; cheap to clone.
#[derive(Clone)]
pub struct SmartivrState {
    inner: Arc<Inner>,
}

/// Lock a mutex whose holder never panics mid-update; a poisoned lock still
/// holds consistent data.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl SmartivrState {
    /// Open the journal, finalize the calls an earlier run left open, and
    /// start the finalizer and the idle sweeper (both stop on `cancel`).
    /// No dialer in this process: every call is finalized here.
    pub async fn start(
        store: Store,
        cfg: SmartivrConfig,
        cancel: CancellationToken,
    ) -> Result<SmartivrState, ApiError> {
        Self::start_with(store, cfg, ModuleCalls::default(), cancel).await
    }

    /// [`SmartivrState::start`] beside a dialer sharing `module_calls`: the
    /// calls it placed are handed to its call actors at `leave`.
    pub async fn start_with(
        store: Store,
        cfg: SmartivrConfig,
        module_calls: ModuleCalls,
        cancel: CancellationToken,
    ) -> Result<SmartivrState, ApiError> {
        let (journal, recovered) =
            Journal::open_with(&cfg.journal_dir, &cfg.node_id, cfg.durability, cfg.journal_writer)?;
        let script = match cfg.fallback_group {
            Some(g) => store.load_script(g).await?,
            None => Script::from_json(SAMPLE_SCRIPT).map_err(|e| StoreError::Invalid(format!("sample script: {e}")))?,
        };
        let fallback = Arc::new(TaskCtx {
            task_id: None,
            record_task_id: String::new(),
            user_id: cfg.fallback_user.clone(),
            group_id: cfg.fallback_group.unwrap_or(0),
            recycle_limit: 0,
            script: Arc::new(script),
        });
        let finalizer = Finalizer::start(store.clone(), cfg.status_rules.clone(), cfg.recycle.clone(), cancel.clone());
        let (batch, batch_rx) = tokio::sync::mpsc::unbounded_channel();
        let (lookups, lookup_rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(lookup_numbers(store.clone(), lookup_rx));
        let st = SmartivrState {
            inner: Arc::new(Inner {
                cfg,
                store,
                journal,
                finalizer,
                batch,
                lookups,
                fallback,
                module_calls,
                tasks: Mutex::new(HashMap::new()),
                shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
                hasher: RandomState::new(),
                live: AtomicUsize::new(0),
                writer: tokio_util::task::TaskTracker::new(),
            }),
        };
        if !recovered.is_empty() {
            tracing::warn!(calls = recovered.len(), "finalizing smartivr calls left open in the journal");
        }
        st.inner.writer.spawn(st.clone().write_batches(batch_rx, cancel.clone()));
        st.inner.writer.close();
        for r in recovered {
            st.finalize_recovered(r);
        }
        let sweeper = st.clone();
        tokio::spawn(async move {
            let every = (sweeper.inner.cfg.idle_timeout() / 4).max(Duration::from_millis(250));
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = tokio::time::sleep(every) => sweeper.sweep(),
                }
            }
        });
        Ok(st)
    }

    /// Resolves once the batch writer and the finalizer stopped (after
    /// `cancel`, with what was queued written), so a runtime serving only
    /// this endpoint may end.
    pub async fn stopped(&self) {
        self.inner.writer.wait().await;
        self.inner.finalizer.stopped().await;
    }

    /// Live calls.
    pub fn live(&self) -> usize {
        self.inner.live.load(Ordering::Relaxed)
    }

    fn shard(&self, callid: &str) -> &Shard {
        let h = self.inner.hasher.hash_one(callid) as usize;
        &self.inner.shards[h % SHARDS]
    }

    fn get(&self, callid: &str) -> Option<Arc<Mutex<Session>>> {
        lock(self.shard(callid)).get(callid).cloned()
    }

    fn remove(&self, callid: &str) -> Option<Arc<Mutex<Session>>> {
        let s = lock(self.shard(callid)).remove(callid);
        if s.is_some() {
            self.inner.live.fetch_sub(1, Ordering::Relaxed);
        }
        s
    }

    /// Answer one notify.
    pub async fn handle(&self, n: Notify) -> Reply {
        match step_of(&n) {
            Step::Enter => self.enter(&n).await,
            Step::Leave => self.leave(&n).await,
            step => self.turn(&n, step).await,
        }
    }

    async fn task_ctx(&self, flowid: &str) -> Arc<TaskCtx> {
        if flowid.is_empty() {
            return self.inner.fallback.clone();
        }
        if let Some((at, ctx)) = lock(&self.inner.tasks).get(flowid) {
            if at.elapsed() < TASK_TTL {
                return ctx.clone().unwrap_or_else(|| self.inner.fallback.clone());
            }
        }
        let store = &self.inner.store;
        let ctx = match store.load_task(flowid).await {
            Ok(t) => match store.load_script(t.group_id).await {
                Ok(s) => Some(Arc::new(TaskCtx {
                    task_id: Some(t.uuid.clone()),
                    record_task_id: t.uuid,
                    user_id: t.user_id,
                    group_id: t.group_id,
                    recycle_limit: t.recycle_limit,
                    script: Arc::new(s),
                })),
                Err(e) => {
                    tracing::warn!(
                        flowid,
                        "task's script group {} not loadable ({e}); using the fallback script",
                        t.group_id
                    );
                    None
                }
            },
            Err(StoreError::TaskNotFound(_)) => {
                tracing::info!(
                    flowid,
                    "flowid names no task; using the fallback script ({})",
                    match self.inner.cfg.fallback_group {
                        Some(g) => format!("script group {g}"),
                        None => "the sample script".into(),
                    }
                );
                None
            }
            Err(e) => {
                tracing::warn!(flowid, "task lookup failed ({e}); using the fallback script");
                None
            }
        };
        lock(&self.inner.tasks).insert(flowid.to_string(), (Instant::now(), ctx.clone()));
        ctx.unwrap_or_else(|| {
            // Records of unknown flows are still filed under the flow id.
            let fb = &self.inner.fallback;
            Arc::new(TaskCtx {
                task_id: None,
                record_task_id: flowid.to_string(),
                user_id: fb.user_id.clone(),
                group_id: fb.group_id,
                recycle_limit: 0,
                script: fb.script.clone(),
            })
        })
    }

    /// The number's row: id, attempts so far and script variables. Looked
    /// up by [`lookup_numbers`] together with the other `enter`s queued
    /// meanwhile.
    async fn number_row(&self, task_id: &str, number: &str) -> Option<NumberRow> {
        let (reply, rx) = oneshot::channel();
        let l = Lookup { task_id: task_id.to_string(), number: number.to_string(), reply };
        self.inner.lookups.send(l).ok()?;
        rx.await.ok().flatten()
    }

    async fn enter(&self, n: &Notify) -> Reply {
        let callid = n.callid();
        if self.get(callid).is_some() {
            tracing::debug!(callid, "repeated enter ignored");
            return Reply::noop();
        }
        if self.live() >= self.inner.cfg.max_sessions {
            tracing::warn!(callid, max = self.inner.cfg.max_sessions, "too many live smartivr calls; hanging up");
            return Reply::hangup("voxdial: too many live calls");
        }
        let ctx = self.task_ctx(n.flowid.as_deref().unwrap_or("")).await;
        let number = n.callerid.clone().unwrap_or_default();
        let row = match &ctx.task_id {
            Some(t) if !number.is_empty() => self.number_row(t, &number).await,
            _ => None,
        };
        let (number_id, attempts, mut vars) = row.unwrap_or((0, 0, HashMap::new()));
        vars.entry("number".into()).or_insert_with(|| number.clone());
        let audio = RobotAudio { root: self.inner.cfg.reply.audio_root.clone(), templated_as_tts: true };
        let mut d = Dialogue::new(ctx.script.clone(), vars).with_robot_audio(audio);
        let action = d.handle(Input::Enter);
        let reply = reply_for(&action, &ctx.script, &self.inner.cfg.reply, true);
        let enter = EnterLine {
            callid: callid.to_string(),
            task_id: ctx.record_task_id.clone(),
            user_id: ctx.user_id.clone(),
            group_id: ctx.group_id,
            recycle_limit: ctx.recycle_limit,
            number_id,
            number,
            attempt: attempts + 1,
            caller_number: n.origcallerid.clone().or_else(|| n.calleeid.clone()).unwrap_or_default(),
            at_ms: now_ms(),
        };
        let mut buf = Vec::with_capacity(1024);
        journal::enter_line(&mut buf, &enter);
        for det in d.details() {
            journal::turn_line(&mut buf, callid, det);
        }
        let session = Session {
            journaled: d.details().len(),
            closing_sent: false,
            dialer: self.inner.module_calls.entered(callid),
            dialogue: d,
            ctx,
            enter,
            last_seen: Instant::now(),
        };
        {
            let mut shard = lock(self.shard(callid));
            if shard.contains_key(callid) {
                return Reply::noop();
            }
            shard.insert(callid.to_string(), Arc::new(Mutex::new(session)));
        }
        self.inner.live.fetch_add(1, Ordering::Relaxed);
        self.record(buf, Some(callid.to_string()), reply).await
    }

    /// Journal `buf`, then give `reply`; a journal failure hangs the call up
    /// rather than run a conversation that is not being recorded.
    async fn record(&self, buf: Vec<u8>, open: Option<String>, reply: Reply) -> Reply {
        if buf.is_empty() {
            return reply;
        }
        match self.inner.journal.append(buf, open).await {
            Ok(()) => reply,
            Err(e) => {
                tracing::error!("smartivr journal: {e}");
                Reply::hangup("voxdial: journal unavailable")
            }
        }
    }

    async fn turn(&self, n: &Notify, step: Step) -> Reply {
        let callid = n.callid();
        let Some(s) = self.get(callid) else {
            return match step {
                Step::Noop => Reply::noop(),
                _ => {
                    tracing::warn!(callid, notify = n.notify(), "notify for an unknown call; hanging up");
                    Reply::hangup("voxdial: unknown call")
                }
            };
        };
        let mut buf = Vec::new();
        let reply = {
            let mut s = lock(&s);
            s.last_seen = Instant::now();
            let reply = match step {
                Step::Feed(inputs) => {
                    let speech = matches!(inputs.first(), Some(Input::AsrMessage { .. }));
                    let action = drive(&mut s.dialogue, inputs);
                    if let Some(f) = n.recordfile.as_deref() {
                        s.dialogue.set_customer_voice(f);
                    }
                    if let Action::Play { hangup_after: true, .. } = action {
                        s.closing_sent = true;
                    }
                    if speech && action == Action::Noop {
                        // The module paused the prompt on speech (pause_play_ms):
                        // without a new prompt it must be resumed (§7).
                        Reply::resume()
                    } else {
                        reply_for(&action, &s.ctx.script, &self.inner.cfg.reply, false)
                    }
                }
                Step::Resume => Reply::resume(),
                Step::Noop | Step::Enter | Step::Leave => Reply::noop(),
            };
            let s = &mut *s;
            for det in &s.dialogue.details()[s.journaled..] {
                journal::turn_line(&mut buf, callid, det);
            }
            s.journaled = s.dialogue.details().len();
            reply
        };
        self.record(buf, None, reply).await
    }

    async fn leave(&self, n: &Notify) -> Reply {
        let callid = n.callid();
        let Some(s) = self.remove(callid) else {
            return Reply::noop();
        };
        let info = LeaveInfo {
            at_ms: now_ms(),
            duration_s: n.duration,
            disposition: n.hangup_disposition.clone(),
            hangup_cause: n.hangup_cause.clone(),
        };
        let (buf, result) = {
            let mut s = lock(&s);
            let customer_hung_up = info.disposition.as_deref() == Some("recv_bye");
            if s.closing_sent && !customer_hung_up {
                // The module hung up after the closing prompt by itself.
                s.dialogue.handle(Input::PlaybackDone);
            }
            s.dialogue.handle(Input::Leave);
            let summary = s.dialogue.summary();
            let mut buf = Vec::new();
            let s = &mut *s;
            for det in &s.dialogue.details()[s.journaled..] {
                journal::turn_line(&mut buf, callid, det);
            }
            journal::leave_line(&mut buf, callid, &info, &summary);
            let details = s.dialogue.take_details();
            (buf, (s.enter.clone(), s.dialer, Box::new(ModuleTranscript { summary, details })))
        };
        let reply = self.record(buf, None, Reply::noop()).await;
        let (enter, dialer, t) = result;
        self.end_call(&enter, dialer, t, Some(&info));
        reply
    }

    /// A call left the flow: hand it to the dialer's call actor that placed
    /// it, or else finalize it here.
    fn end_call(&self, enter: &EnterLine, dialer: bool, t: Box<ModuleTranscript>, info: Option<&LeaveInfo>) {
        let t = if dialer {
            match self.inner.module_calls.hand_over(&enter.callid, t) {
                Ok(committed) => {
                    let (journal, callid) = (self.inner.journal.clone(), enter.callid.clone());
                    tokio::spawn(async move {
                        if committed.await.is_ok() {
                            journal.done(callid);
                        }
                    });
                    return;
                }
                Err(t) => {
                    tracing::warn!(callid = %enter.callid, "the dialer's call actor no longer waits for this call; finalizing it here");
                    t
                }
            }
        } else {
            t
        };
        self.finalize(call_result(enter, t.details, t.summary, info));
    }

    /// Queue a finished call for the batch writer; it is marked done in the
    /// journal once its rows are committed.
    fn finalize(&self, result: CallResult) {
        if let Err(e) = self.inner.batch.send(result) {
            // The writer stopped (shutdown): the call stays in the journal.
            tracing::warn!(callid = %e.0.uuid, "smartivr call not finalized before shutdown; kept in the journal");
        }
    }

    /// The batch writer: every call finished while a batch commits goes into
    /// the next one, one transaction with multi-row statements
    /// ([`Store::write_calls`]) instead of ~20 statements per call. Calls of
    /// tasks with callbacks go through the [`Finalizer`], which commits their
    /// events with their rows. Stops on `cancel` after what is queued.
    async fn write_batches(self, mut rx: tokio::sync::mpsc::UnboundedReceiver<CallResult>, cancel: CancellationToken) {
        const MAX_BATCH: usize = 512;
        let (rules, recycle) = (&self.inner.cfg.status_rules, &self.inner.cfg.recycle);
        let mut callbacks: HashMap<String, (Instant, bool)> = HashMap::new();
        let mut results: Vec<CallResult> = Vec::with_capacity(MAX_BATCH);
        // Province / city / operator of each call, as the Finalizer does.
        let locations = crate::location::LocationCache::read_only();
        loop {
            let n = tokio::select! {
                n = rx.recv_many(&mut results, MAX_BATCH) => n,
                _ = cancel.cancelled() => {
                    rx.close();
                    rx.recv_many(&mut results, MAX_BATCH).await
                }
            };
            if n == 0 {
                break;
            }
            if n < MAX_BATCH && !cancel.is_cancelled() {
                // Nobody waits for these rows (the replies left after the
                // journal had them): gather what else ends meanwhile, so
                // a commit carries many calls.
                tokio::time::sleep(BATCH_WINDOW).await;
                while results.len() < MAX_BATCH {
                    match rx.try_recv() {
                        Ok(r) => results.push(r),
                        Err(_) => break,
                    }
                }
            }
            let mut batch = Vec::with_capacity(results.len());
            for r in results.drain(..) {
                if self.has_callbacks(&mut callbacks, &r.task_id).await {
                    self.finalize_one(r);
                } else {
                    batch.push(r);
                }
            }
            if batch.is_empty() {
                continue;
            }
            // Off the reply path: at most one version check per 5 s.
            if let Err(e) = locations.table(&self.inner.store).await {
                tracing::debug!(error = %e, "number-location data not (re)loaded");
            }
            let writes: Vec<_> = batch
                .iter()
                .map(|r| {
                    let mut w = build(r, rules, recycle);
                    crate::finalize::locate(&mut w, &locations);
                    w
                })
                .collect();
            let mut delay = Duration::from_millis(100);
            loop {
                match self.inner.store.write_calls(&writes).await {
                    Ok(_) => {
                        self.inner.journal.done_many(writes.into_iter().map(|w| w.callid).collect());
                        break;
                    }
                    Err(e) if is_transient(&e) && delay < Duration::from_secs(5) => {
                        tracing::warn!(calls = writes.len(), "smartivr batch not written, retrying: {e}");
                        tokio::time::sleep(delay).await;
                        delay *= 2;
                    }
                    Err(e) => {
                        // One call may be at fault: write them one by one.
                        tracing::warn!(
                            calls = writes.len(),
                            "smartivr batch refused ({e}); writing its calls one by one"
                        );
                        for r in batch {
                            self.finalize_one(r);
                        }
                        break;
                    }
                }
            }
        }
    }

    /// Whether `task_id` sends call callbacks (re-read every [`TASK_TTL`]).
    async fn has_callbacks(&self, cache: &mut HashMap<String, (Instant, bool)>, task_id: &str) -> bool {
        if let Some((at, yes)) = cache.get(task_id) {
            if at.elapsed() < TASK_TTL {
                return *yes;
            }
        }
        let yes = match self.inner.store.notify_context(task_id).await {
            Ok(ctx) => ctx.is_some_and(|c| c.call_notify_url.is_some()),
            // Unknown: the finalizer decides per call.
            Err(_) => return true,
        };
        cache.insert(task_id.to_string(), (Instant::now(), yes));
        yes
    }

    /// One call through the finalizer; marked done once committed.
    fn finalize_one(&self, result: CallResult) {
        let st = self.clone();
        tokio::spawn(async move {
            let callid = result.uuid.clone();
            match st.inner.finalizer.finalize(result).await {
                Ok(_) => st.inner.journal.done(callid),
                Err(e) => tracing::error!(callid, "smartivr call not finalized (kept in the journal): {e}"),
            }
        });
    }

    fn finalize_recovered(&self, r: Recovered) {
        let (summary, info) = match r.leave {
            Some((info, summary)) => (summary, Some(info)),
            None => (summary_of(&r.details), None),
        };
        let result = call_result(&r.enter, r.details, summary, info.as_ref());
        self.finalize(result);
    }

    /// Finalize calls not heard from within the idle timeout.
    fn sweep(&self) {
        let idle = self.inner.cfg.idle_timeout();
        let mut stale = Vec::new();
        for shard in &self.inner.shards {
            let g = lock(shard);
            for (id, s) in g.iter() {
                if lock(s).last_seen.elapsed() >= idle {
                    stale.push(id.clone());
                }
            }
        }
        for id in stale {
            let Some(s) = self.remove(&id) else { continue };
            tracing::warn!(callid = %id, "smartivr call idle for {idle:?}; finalizing without leave");
            let mut s = lock(&s);
            s.dialogue.handle(Input::Leave);
            let summary = s.dialogue.summary();
            let details = s.dialogue.take_details();
            let (enter, dialer) = (s.enter.clone(), s.dialer);
            drop(s);
            self.end_call(&enter, dialer, Box::new(ModuleTranscript { summary, details }), None);
        }
    }
}

/// Answers number lookups: everything queued while the previous query ran
/// goes into one `SELECT … WHERE task_id = ? AND number IN (…)` per task, so
/// concurrent `enter`s share a database round trip (each one is a hand-off
/// to the SQLite worker thread and back). Stops when the state is dropped.
async fn lookup_numbers(store: Store, mut rx: tokio::sync::mpsc::UnboundedReceiver<Lookup>) {
    const MAX: usize = 256;
    let mut reqs: Vec<Lookup> = Vec::with_capacity(MAX);
    let mut by_task: HashMap<String, Vec<Lookup>> = HashMap::new();
    while rx.recv_many(&mut reqs, MAX).await > 0 {
        for l in reqs.drain(..) {
            match by_task.get_mut(&l.task_id) {
                Some(v) => v.push(l),
                None => {
                    by_task.insert(l.task_id.clone(), vec![l]);
                }
            }
        }
        for (task_id, group) in by_task.drain() {
            let mut numbers: Vec<&str> = group.iter().map(|l| l.number.as_str()).collect();
            numbers.sort_unstable();
            numbers.dedup();
            let rows = number_rows(&store, &task_id, &numbers).await;
            for l in group {
                let _ = l.reply.send(rows.get(&l.number).cloned());
            }
        }
    }
}

/// The rows of `numbers` (distinct, at least one) in task `task_id`; empty
/// on a database error (the calls go on without the number's variables).
async fn number_rows(store: &Store, task_id: &str, numbers: &[&str]) -> HashMap<String, NumberRow> {
    // The list is padded to a power of two (repeating the last number) so
    // that a few statement texts serve every batch size from the cache.
    let slots = numbers.len().next_power_of_two();
    let q = format!(
        "SELECT id, attempts, variables, number FROM autodialer_number WHERE task_id = ? AND number IN ({})",
        crate::store::api::placeholders(slots)
    );
    let mut query = sqlx::query(store.sql(&q)).bind(task_id);
    for i in 0..slots {
        query = query.bind(numbers[i.min(numbers.len() - 1)]);
    }
    let mut out = HashMap::with_capacity(numbers.len());
    match query.fetch_all(store.pool()).await {
        Ok(rows) => {
            for r in rows {
                let (Ok(id), Ok(number)) = (r.try_get::<i64, _>("id"), r.try_get::<String, _>("number")) else {
                    continue;
                };
                let attempts: i64 = r.try_get("attempts").unwrap_or(0);
                let vars: Option<String> = r.try_get("variables").ok().flatten();
                let vars = vars.and_then(|v| serde_json::from_str(&v).ok()).unwrap_or_default();
                out.insert(number, (id, attempts, vars));
            }
        }
        Err(e) => tracing::warn!(task_id, numbers = numbers.len(), "number lookup failed: {e}"),
    }
    out
}

/// A call's result from its journal metadata and transcript.
fn call_result(e: &EnterLine, details: Vec<Detail>, summary: Summary, leave: Option<&LeaveInfo>) -> CallResult {
    let end_ms = leave.map_or_else(|| details.last().map_or(e.at_ms, |d| d.at_ms), |l| l.at_ms);
    let talk_ms = leave.and_then(|l| l.duration_s).map_or((end_ms - e.at_ms).max(0), |s| s.max(0) * 1000);
    CallResult {
        uuid: e.callid.clone(),
        task_id: e.task_id.clone(),
        user_id: e.user_id.clone(),
        group_id: e.group_id,
        recycle_limit: e.recycle_limit,
        number_id: e.number_id,
        number: e.number.clone(),
        attempt: e.attempt,
        caller_number: e.caller_number.clone(),
        facts: HangupFacts {
            hangup_cause: Some(leave.and_then(|l| l.hangup_cause.clone()).unwrap_or_else(|| "NORMAL_CLEARING".into())),
            sip_hangup_disposition: leave.and_then(|l| l.disposition.clone()),
            answered: true,
            billsec_ms: talk_ms,
            duration_ms: talk_ms,
            ..HangupFacts::default()
        },
        originated_ms: e.at_ms,
        answered_ms: Some(e.at_ms),
        hangup_ms: end_ms,
        record_file: None,
        dialogue: Some((summary, details)),
        reconciled: false,
    }
}

/// A summary rebuilt from the rows when the call's end was never journaled.
fn summary_of(details: &[Detail]) -> Summary {
    let mut tags: Vec<String> = details.iter().flat_map(|d| d.tags.iter().cloned()).collect();
    tags.sort();
    tags.dedup();
    Summary {
        score: details.iter().map(|d| d.score).sum(),
        rounds: details.iter().filter(|d| d.notify == "asrmessage_notify").count() as i64,
        level_id: None,
        level_name: None,
        intention_results: None,
        tags,
        robot_hung_up: false,
        gender: details.iter().rev().find_map(|d| d.gender),
    }
}
