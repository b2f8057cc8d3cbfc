//! Dialer: paces originates per task by `call_per_second` and `maximumcall`,
//! claims numbers under a lease, writes the dial ledger before each
//! originate, and spawns one call actor per attempt.

pub mod call;
pub mod compliance;
pub mod line;
pub mod live;
pub mod reconcile;
pub mod window;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use voxdial_esl::EslClient;

pub use self::live::{Live, LiveSender};
use crate::finalize::recordings::{sentence_dir, SentenceAudio};
use crate::finalize::Finalizer;

use self::compliance::ComplianceConfig;
use crate::store::{Claimed, Store, StoreError, Task};

/// Dialer settings (the `[dialer]` config section).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct DialerConfig {
    pub node_id: String,
    /// Numbers claimed per database round trip.
    pub claim_batch: i64,
    /// A claimed number returns to the pool if not dialled within this.
    pub lease_secs: i64,
    /// Where the robot's audio files live on the FreeSWITCH box.
    pub audio_root: String,
    /// Prefix that turns text into a FreeSWITCH TTS playback.
    pub tts_prefix: String,
    /// Root of call recordings (see recordings-layout.md).
    pub recordings_root: String,
    /// Longest call before voxdial hangs it up itself.
    pub max_call_secs: u64,
    /// `Event-Subclass` of the ASR module's CUSTOM events (headers
    /// `Speech-Type`, `ASR-Text` or `ASR-Response`), besides DETECTED_SPEECH.
    pub asr_subclass: String,
    /// How each customer sentence's audio is obtained (`uuid_record`,
    /// `header`, `off`; see `recordings-layout.md`).
    pub sentence_audio: SentenceAudio,
    /// With `sentence_audio = "header"`: the final-result event's header
    /// naming the sentence's file (NFhook mod_asr: `FilePath`).
    pub asr_record_header: String,
}

impl Default for DialerConfig {
    fn default() -> Self {
        DialerConfig {
            node_id: "node-1".into(),
            claim_batch: 50,
            lease_secs: 600,
            audio_root: "/var/lib/voxdial/audio".into(),
            tts_prefix: "speak:tts_commandline|default|".into(),
            recordings_root: "/var/lib/voxdial/recordings".into(),
            max_call_secs: 600,
            asr_subclass: "voxdial::asr".into(),
            sentence_audio: SentenceAudio::UuidRecord,
            asr_record_header: "FilePath".into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DialerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("task {task}: invalid configuration: {reason}")]
    InvalidTask { task: String, reason: String },
    #[error("FreeSWITCH: {0}")]
    Esl(String),
}

/// Live counters of a running task, for progress bars and status.
#[derive(Debug, Default)]
pub struct Progress {
    pub originated: AtomicU64,
    pub finished: AtomicU64,
    pub in_flight: AtomicI64,
    pub blacklisted: AtomicU64,
    pub records: AtomicU64,
}

/// Spaces originates exactly `1/cps` apart (no bursts); fractional rates
/// such as 0.5 work. A late caller does not earn a burst: the schedule
/// restarts from now.
#[derive(Debug)]
pub struct Pacer {
    interval: Duration,
    next: Instant,
}

impl Pacer {
    pub fn new(cps: f64) -> Pacer {
        Pacer { interval: Self::interval_of(cps), next: Instant::now() }
    }

    fn interval_of(cps: f64) -> Duration {
        Duration::from_secs_f64(1.0 / cps.clamp(0.001, 1_000_000.0))
    }

    /// Change the rate; the next slot keeps its place.
    pub fn set_rate(&mut self, cps: f64) {
        self.interval = Self::interval_of(cps);
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// Wait for the next slot. Slots follow a fixed schedule, so timer
    /// granularity (tokio sleeps to the next millisecond) does not add up
    /// into a slower rate; a caller more than max(interval, 250 ms) late (the
    /// task was waiting for a free call slot) restarts the schedule instead
    /// of bursting to catch up.
    pub async fn wait(&mut self) {
        let now = Instant::now();
        if self.next > now {
            tokio::time::sleep_until(self.next).await;
        }
        let now = Instant::now();
        // A short stall (claiming the next batch of numbers) is made up
        // within the same second; a long wait (no free call slot) restarts
        // the schedule, so no second ever carries more than its share.
        let catch_up = self.interval.max(Duration::from_millis(250));
        self.next = if now > self.next + catch_up { now + self.interval } else { self.next + self.interval };
    }
}

/// Backs pacing off when FreeSWITCH refuses originates for overload
/// (session limit → `DESTINATION_OUT_OF_ORDER` with no channel, storms of
/// `NORMAL_TEMPORARY_FAILURE`) and recovers once they stop.
#[derive(Debug)]
pub struct Backoff {
    factor: f64,
    recent: VecDeque<(Instant, bool)>,
    last_overload: Option<Instant>,
    last_step: Instant,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { factor: 1.0, recent: VecDeque::new(), last_overload: None, last_step: Instant::now() }
    }
}

impl Backoff {
    /// Fraction of the configured rate to use (0.05 ..= 1).
    pub fn factor(&self) -> f64 {
        self.factor
    }

    /// Record an originate outcome; returns true when the factor changed.
    pub fn record(&mut self, overload: bool) -> bool {
        let now = Instant::now();
        self.recent.push_back((now, overload));
        while self.recent.len() > 50
            || self.recent.front().is_some_and(|(t, _)| now.duration_since(*t) > Duration::from_secs(10))
        {
            self.recent.pop_front();
        }
        if !overload {
            return false;
        }
        self.last_overload = Some(now);
        let bad = self.recent.iter().filter(|(_, o)| *o).count();
        if bad >= 3 && bad * 5 >= self.recent.len() && now.duration_since(self.last_step) >= Duration::from_millis(500)
        {
            self.factor = (self.factor / 2.0).max(0.05);
            self.last_step = now;
            return true;
        }
        false
    }

    /// Called periodically: recover 20 % per second once overloads stopped.
    pub fn tick(&mut self) -> bool {
        let now = Instant::now();
        if self.factor < 1.0
            && self.last_overload.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(5))
            && now.duration_since(self.last_step) >= Duration::from_secs(1)
        {
            self.factor = (self.factor * 1.2).min(1.0);
            self.last_step = now;
            return true;
        }
        false
    }
}

/// Split a leading `{a=b,…}` block off a dial string / variable string.
fn split_vars(s: &str) -> (Vec<String>, &str) {
    let s = s.trim();
    if let Some(rest) = s.strip_prefix('{') {
        if let Some(end) = rest.find('}') {
            let vars = rest[..end].split(',').filter(|v| !v.trim().is_empty()).map(|v| v.trim().to_string()).collect();
            return (vars, &rest[end + 1..]);
        }
    }
    (Vec::new(), s)
}

/// The exact originate command for one attempt.
pub fn originate_command(task: &Task, number: &str, uuid: &str, record_path: &str, default_gateway: &str) -> String {
    let (mut vars, fmt) = split_vars(&task.dial_format);
    let (extra, _) = split_vars(&task.originate_variables);
    let mut all = vec![format!("origination_uuid={uuid}"), format!("originate_timeout={}", task.originate_timeout)];
    if !task.origination_caller_id_number.is_empty() {
        all.push(format!("origination_caller_id_number={}", task.origination_caller_id_number));
    }
    all.push(format!("voxdial_task={}", task.uuid));
    all.push(format!("voxdial_record_path={record_path}"));
    all.append(&mut vars);
    all.extend(extra);
    let url =
        if fmt.is_empty() { format!("sofia/gateway/{default_gateway}/{number}") } else { fmt.replace("%s", number) };
    format!(
        "originate {{{}}}{url} {} {} {}",
        all.join(","),
        task.destination_extension,
        task.destination_dialplan,
        task.destination_context
    )
}

/// The recording path of the seeds' layout:
/// `<root>/<YYYY-MM-DD>/<callee>.<group_id>.<HH-MM-SS>.<callid>.wav`.
pub fn record_path(root: &str, number: &str, group_id: i64, uuid: &str) -> String {
    let now = chrono::Local::now();
    format!("{root}/{}/{number}.{group_id}.{}.{uuid}.wav", now.format("%Y-%m-%d"), now.format("%H-%M-%S"))
}

/// Runs one task until all its numbers are final, it is paused or stopped,
/// or `cancel` fires.
pub struct TaskRunner {
    pub store: Store,
    pub esl: EslClient,
    pub finalizer: Finalizer,
    /// Re-read every loop turn: SIGHUP changes `claim_batch`, `lease_secs`,
    /// `max_call_secs`, … of running tasks (`node_id` is fixed per process).
    pub cfg: Live<DialerConfig>,
    /// Re-read with the dial windows (each second) and per attempt.
    pub compliance: Live<ComplianceConfig>,
    /// Serializes compliance check + ledger write across the node's tasks, so
    /// two tasks cannot both pass the per-callee limit for one number.
    pub dial_gate: Arc<compliance::DialGate>,
    pub default_gateway: String,
    /// Shared per-gateway caps (`[[lines]]`).
    pub lines: line::Lines,
    pub progress: Arc<Progress>,
    pub cancel: CancellationToken,
    /// Cluster coordination (`[cluster] redis_url`): global `maximumcall`,
    /// task CPS and per-callee limits, and task control by pub/sub.
    pub cluster: Option<crate::cluster::Cluster>,
    /// Calls whose conversation a smartivr module runs over this process's
    /// `POST /smartivr`: shared with that endpoint (see [`call::ModuleCalls`]).
    pub module_calls: call::ModuleCalls,
}

/// Why a task runner returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunEnd {
    /// Every number has a final status.
    Completed,
    /// The task was paused or stopped (`start` ≠ 1).
    Paused,
    Cancelled,
}

/// How one attempt ended, as the runner needs it for back-pressure.
#[derive(Debug, Clone, Copy)]
struct Ended {
    overload: bool,
}

fn is_overload(facts: &crate::finalize::status::HangupFacts) -> bool {
    let refused_locally = facts.hangup_cause.is_none()
        && matches!(facts.originate_error.as_deref(), Some("DESTINATION_OUT_OF_ORDER") | Some("SYSTEM_SHUTDOWN"));
    refused_locally
        || facts.hangup_cause.as_deref() == Some("NORMAL_TEMPORARY_FAILURE") && facts.sip_term_status.is_none()
}

impl TaskRunner {
    /// The pacing rate: `call_per_second`, or slower when `call_pause_second`
    /// asks for a longer gap between two originates.
    fn rate(task: &Task) -> f64 {
        let cps = task.call_per_second.max(0.001);
        if task.call_pause_second > 0 {
            cps.min(1.0 / task.call_pause_second as f64)
        } else {
            cps
        }
    }

    async fn windows(&self, task_id: &str) -> Result<Vec<window::DialWindow>, DialerError> {
        let mut w = Vec::new();
        if let Some(spec) = self.store.task_dial_window(task_id).await? {
            w.push(window::DialWindow::new(&spec).map_err(|e| DialerError::InvalidTask {
                task: task_id.to_string(),
                reason: format!("dial time group: {e}"),
            })?);
        }
        if let Some(h) = self.compliance.get().hours().map_err(|e| DialerError::InvalidTask {
            task: task_id.to_string(),
            reason: format!("[compliance] calling_hours: {e}"),
        })? {
            w.push(h);
        }
        Ok(w)
    }

    pub async fn run(&self, task_id: &str) -> Result<RunEnd, DialerError> {
        let mut task = self.store.load_task(task_id).await?;
        let script = Arc::new(self.store.load_script(task.group_id).await?);
        let mut windows = self.windows(task_id).await?;
        let mut max_calls = task.maximumcall.max(1);
        let sem = Arc::new(Semaphore::new(max_calls as usize));
        let mut pacer = Pacer::new(Self::rate(&task));
        let mut backoff = Backoff::default();
        let (ended_tx, mut ended_rx) = tokio::sync::mpsc::unbounded_channel::<Ended>();
        let mut queue: VecDeque<Claimed> = VecDeque::new();
        let mut calls: JoinSet<()> = JoinSet::new();
        let mut last_check = Instant::now();
        let mut window_closed_logged = false;
        // Cluster task control: a signal makes the runner re-read its row now.
        let mut control = self.cluster.as_ref().map(|c| c.signals());
        let mut check_now = false;
        let end = loop {
            while calls.try_join_next().is_some() {}
            let mut rate_changed = false;
            while let Ok(e) = ended_rx.try_recv() {
                rate_changed |= backoff.record(e.overload);
            }
            rate_changed |= backoff.tick();
            if rate_changed {
                let cps = Self::rate(&task) * backoff.factor();
                pacer.set_rate(cps);
                if backoff.factor() < 1.0 {
                    tracing::warn!(task = %task_id, cps, factor = backoff.factor(), "FreeSWITCH refuses originates for overload; pacing backed off");
                } else {
                    tracing::info!(task = %task_id, cps, "originate errors stopped; pacing recovered");
                }
            }
            if self.cancel.is_cancelled() {
                break RunEnd::Cancelled;
            }
            // Task control and edits take effect within a second.
            if check_now || last_check.elapsed() >= Duration::from_secs(1) {
                check_now = false;
                last_check = Instant::now();
                let fresh = self.store.load_task(task_id).await?;
                if fresh.start != 1 {
                    break RunEnd::Paused;
                }
                if fresh.maximumcall.max(1) != max_calls {
                    let new = fresh.maximumcall.max(1);
                    if new > max_calls {
                        sem.add_permits((new - max_calls) as usize);
                    } else {
                        let (sem2, n) = (sem.clone(), (max_calls - new) as u32);
                        tokio::spawn(async move {
                            if let Ok(p) = sem2.acquire_many_owned(n).await {
                                p.forget();
                            }
                        });
                    }
                    max_calls = new;
                }
                if (Self::rate(&fresh) - Self::rate(&task)).abs() > f64::EPSILON {
                    pacer.set_rate(Self::rate(&fresh) * backoff.factor());
                }
                task = fresh;
                windows = self.windows(task_id).await?;
            }
            let now = chrono::Utc::now();
            if let Some(closed) = windows.iter().find(|w| !w.is_open(now)) {
                if !window_closed_logged {
                    tracing::info!(task = %task_id, next_open = ?closed.next_open(now), "outside the dial window; live calls continue");
                    window_closed_logged = true;
                    for n in queue.drain(..) {
                        self.store.release_claim(n.id).await?;
                    }
                }
                tokio::select! {
                    _ = self.cancel.cancelled() => {}
                    _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
                continue;
            }
            window_closed_logged = false;
            let dcfg = self.cfg.get();
            if queue.is_empty() {
                let random = task.random_assignment_number != 0;
                let claimed = match self
                    .store
                    .claim_numbers_ordered(task_id, &dcfg.node_id, dcfg.claim_batch, dcfg.lease_secs, random)
                    .await
                {
                    Ok(c) => c,
                    Err(e) => {
                        // No new claims while the database is unhappy; live
                        // calls go on and we retry.
                        tracing::warn!(task = %task_id, "claiming numbers failed, retrying: {e}");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                };
                if claimed.is_empty() {
                    // end_action 2: an append-mode task keeps waiting for numbers.
                    if task.end_action != 2 && calls.is_empty() && self.store.pending_numbers(task_id).await? == 0 {
                        break RunEnd::Completed;
                    }
                    tokio::select! {
                        _ = self.cancel.cancelled() => {}
                        _ = calls.join_next(), if !calls.is_empty() => {}
                        _ = crate::cluster::task_signal(&mut control, task_id) => check_now = true,
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    }
                    continue;
                }
                queue.extend(claimed);
            }
            let permit = tokio::select! {
                _ = self.cancel.cancelled() => continue,
                p = sem.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break RunEnd::Cancelled },
                _ = crate::cluster::task_signal(&mut control, task_id) => { check_now = true; continue }
            };
            // The task's `maximumcall` across the cluster: a leased slot.
            let slot_name = format!("task:{task_id}");
            let cluster_slot = match &self.cluster {
                Some(c) => tokio::select! {
                    s = c.acquire_slot(&slot_name, max_calls, &self.cancel) => match s { Some(s) => Some(s), None => continue },
                    _ = crate::cluster::task_signal(&mut control, task_id) => { check_now = true; continue }
                },
                None => None,
            };
            let Some(num) = queue.pop_front() else { continue };
            if num.is_blacklist {
                self.store.mark_blacklisted(num.id).await?;
                self.progress.blacklisted.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            tokio::select! {
                _ = self.cancel.cancelled() => { queue.push_front(num); drop(permit); continue; }
                _ = pacer.wait() => {}
            }
            if let Some(c) = &self.cluster {
                // The task's CPS across the cluster.
                c.pace(&format!("task:{task_id}"), Self::rate(&task) * backoff.factor()).await;
            }
            let uuid = uuid::Uuid::new_v4().to_string();
            let attempt = num.attempts + 1;
            let rec = record_path(&dcfg.recordings_root, &num.number, task.group_id, &uuid);
            let originate = originate_command(&task, &num.number, &uuid, &rec, &self.default_gateway);
            // A shared line's cap and pace, granted by priority among tasks.
            let line_permit = match self.lines.for_dial_string(&originate) {
                Some(gate) => tokio::select! {
                    _ = self.cancel.cancelled() => { queue.push_front(num); continue; }
                    p = gate.acquire(line::priority(task.is_top, task.sort)) => p,
                },
                None => None,
            };
            let plan = call::CallPlan {
                uuid: uuid.clone(),
                originate: originate.trim_start_matches("originate ").to_string(),
                number: num.number.clone(),
                number_id: num.id,
                attempt,
                task_id: task.uuid.clone(),
                user_id: task.user_id.clone(),
                group_id: task.group_id,
                recycle_limit: task.recycle_limit,
                caller_number: task.origination_caller_id_number.clone(),
                vars: num.variables.iter().map(|(k, v)| (k.clone(), v.clone())).collect::<HashMap<_, _>>(),
                audio_root: dcfg.audio_root.clone(),
                tts_prefix: dcfg.tts_prefix.clone(),
                max_call: Duration::from_secs(dcfg.max_call_secs),
                asr_subclass: dcfg.asr_subclass.clone(),
                sentence_audio: dcfg.sentence_audio,
                sentence_dir: sentence_dir(&rec, &uuid),
                asr_record_header: dcfg.asr_record_header.clone(),
            };
            let esl = self.esl.clone();
            let script = script.clone();
            let fin = self.finalizer.clone();
            let progress = self.progress.clone();
            let ended = ended_tx.clone();
            let store = self.store.clone();
            let gate = self.dial_gate.clone();
            let compliance = self.compliance.get();
            let node = dcfg.node_id.clone();
            let cluster = self.cluster.clone();
            let module_calls = self.module_calls.clone();
            // The database round trips of this attempt happen in its own task
            // so that they do not hold up the pacing of the next one.
            calls.spawn(async move {
                let go = async {
                    // Check and ledger write under one lock: the ledger row is
                    // what the next check counts.
                    let _g = gate.lock(&num.number).await;
                    let mut verdict = compliance::check(&store, &compliance, &num.number, chrono::Utc::now()).await?;
                    if let (compliance::Verdict::Allow, Some(c)) = (&verdict, &cluster) {
                        // Across nodes: checked and recorded atomically in Redis.
                        if let Some(v) = c.admit_callee(&num.number, &uuid, &compliance.limits).await {
                            verdict = v;
                        }
                    }
                    match verdict {
                        compliance::Verdict::Allow => {}
                        compliance::Verdict::Defer { until, rule, reason } => {
                            let until = compliance::fmt_local(until);
                            store.record_blocked(&num.task_id, num.id, &num.number, rule, &reason, Some(&until)).await?;
                            store.defer_number(num.id, &until).await?;
                            return Ok::<bool, StoreError>(false);
                        }
                        compliance::Verdict::Block { rule, reason } => {
                            store.record_blocked(&num.task_id, num.id, &num.number, rule, &reason, None).await?;
                            store.mark_blacklisted(num.id).await?;
                            progress.blacklisted.fetch_add(1, Ordering::Relaxed);
                            return Ok(false);
                        }
                    }
                    // Durable before the originate leaves: after a crash the
                    // ledger says which attempts may be live.
                    store.ledger_begin(&num.task_id, num.id, &num.number, attempt, &uuid, &node).await?;
                    Ok(true)
                };
                match go.await {
                    Ok(true) => {}
                    Ok(false) => return,
                    Err(e) => {
                        // Not in the ledger, so certainly not dialled: the
                        // claim lapses and the number is dialled later.
                        tracing::warn!(number_id = num.id, number = %crate::logging::mask_number(&num.number), "attempt not started: {e}");
                        return;
                    }
                }
                if let Some(c) = &cluster {
                    c.note_originate(&plan.originate);
                }
                progress.originated.fetch_add(1, Ordering::Relaxed);
                progress.in_flight.fetch_add(1, Ordering::Relaxed);
                crate::metrics::originated(&num.task_id);
                let result = call::run(esl, script, plan, &module_calls).await;
                let _ = ended.send(Ended { overload: is_overload(&result.facts) });
                let answered = result.facts.answered && result.answered_ms.is_some();
                for us in result.dialogue.iter().flat_map(|(_, d)| d.iter().filter_map(|d| d.decision_us)) {
                    crate::metrics::decision_us(us);
                }
                let fin_res = fin.finalize(result).await;
                module_calls.settled(&uuid, fin_res.is_ok());
                match fin_res {
                    Ok(w) => {
                        if w.record {
                            progress.records.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(e) => tracing::error!(number = %crate::logging::mask_number(&num.number), "finalize failed: {e}"),
                }
                crate::metrics::call_done(&num.task_id, answered);
                progress.in_flight.fetch_sub(1, Ordering::Relaxed);
                progress.finished.fetch_add(1, Ordering::Relaxed);
                drop(line_permit);
                drop(cluster_slot);
                drop(permit);
            });
        };
        // Claimed but not dialled: back to the pool. Live calls finish.
        for n in queue {
            self.store.release_claim(n.id).await?;
        }
        while calls.join_next().await.is_some() {}
        if end == RunEnd::Completed {
            self.store.set_task_start(task_id, 2).await?;
            if let Some(c) = &self.cluster {
                let _ = c.publish_task(task_id, 2).await;
            }
        }
        // Another node completed the task: it sent the stop notice.
        let completed_elsewhere = end == RunEnd::Paused
            && self.cluster.is_some()
            && self.store.load_task(task_id).await.is_ok_and(|t| t.start == 2);
        if end != RunEnd::Cancelled && !completed_elsewhere {
            let reason = if end == RunEnd::Completed { "completed" } else { "paused" };
            // The stop notice is a courtesy; a failure must not fail the run.
            if let Err(e) = crate::finalize::notify_task_stopped(&self.store, task_id, reason).await {
                tracing::warn!(task = %task_id, "task stop notice not queued: {e}");
            }
        }
        Ok(end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task() -> Task {
        Task {
            maximumcall: 2,
            dial_format: "{origination_caller_id_number=202306071342}sofia/gateway/gw1/%s".into(),
            originate_variables: "{execute_on_media=start_da2}".into(),
            originate_timeout: 30,
            ..Task::new("t1", "t", "u", 1)
        }
    }

    #[test]
    fn originate_merges_variable_blocks() {
        let c = originate_command(&task(), "13800000000", "uu", "/r/x.wav", "def");
        assert_eq!(
            c,
            "originate {origination_uuid=uu,originate_timeout=30,voxdial_task=t1,voxdial_record_path=/r/x.wav,origination_caller_id_number=202306071342,execute_on_media=start_da2}sofia/gateway/gw1/13800000000 robot XML default"
        );
        let mut t = task();
        t.dial_format = String::new();
        assert!(originate_command(&t, "1", "u", "/r", "sim").contains("}sofia/gateway/sim/1 robot"));
    }

    #[tokio::test(start_paused = true)]
    async fn pacer_spaces_calls_exactly() {
        let mut p = Pacer::new(4.0);
        let start = Instant::now();
        for _ in 0..9 {
            p.wait().await;
        }
        assert_eq!(start.elapsed(), Duration::from_millis(2000));
        let mut half = Pacer::new(0.5);
        let s2 = Instant::now();
        half.wait().await;
        half.wait().await;
        assert_eq!(s2.elapsed(), Duration::from_secs(2));
    }
}
