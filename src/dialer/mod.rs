//! Dialer: paces originates per task by `call_per_second` and `maximumcall`,
//! claims numbers under a lease, writes the dial ledger before each
//! originate, and spawns one call actor per attempt.

pub mod call;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use voxdial_esl::EslClient;

use crate::finalize::Finalizer;
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
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DialerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("task {task}: invalid configuration: {reason}")]
    InvalidTask { task: String, reason: String },
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
        Pacer { interval: Duration::from_secs_f64(1.0 / cps.max(0.001)), next: Instant::now() }
    }

    pub async fn wait(&mut self) {
        let now = Instant::now();
        if self.next > now {
            tokio::time::sleep_until(self.next).await;
        }
        self.next = self.next.max(Instant::now()) + self.interval;
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
    let mut all = vec![
        format!("origination_uuid={uuid}"),
        format!("originate_timeout={}", task.originate_timeout),
    ];
    if !task.origination_caller_id_number.is_empty() {
        all.push(format!("origination_caller_id_number={}", task.origination_caller_id_number));
    }
    all.push(format!("voxdial_task={}", task.uuid));
    all.push(format!("voxdial_record_path={record_path}"));
    all.append(&mut vars);
    all.extend(extra);
    let url = if fmt.is_empty() {
        format!("sofia/gateway/{default_gateway}/{number}")
    } else {
        fmt.replace("%s", number)
    };
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
    pub cfg: DialerConfig,
    pub default_gateway: String,
    pub progress: Arc<Progress>,
    pub cancel: CancellationToken,
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

impl TaskRunner {
    pub async fn run(&self, task_id: &str) -> Result<RunEnd, DialerError> {
        let task = self.store.load_task(task_id).await?;
        let script = Arc::new(self.store.load_script(task.group_id).await?);
        let sem = Arc::new(Semaphore::new(task.maximumcall.max(1) as usize));
        let mut pacer = Pacer::new(task.call_per_second);
        let mut queue: VecDeque<Claimed> = VecDeque::new();
        let mut calls: JoinSet<()> = JoinSet::new();
        let mut last_check = Instant::now();
        let end = loop {
            while calls.try_join_next().is_some() {}
            if self.cancel.is_cancelled() {
                break RunEnd::Cancelled;
            }
            if last_check.elapsed() >= Duration::from_secs(1) {
                last_check = Instant::now();
                if self.store.load_task(task_id).await?.start != 1 {
                    break RunEnd::Paused;
                }
            }
            if queue.is_empty() {
                let claimed = self.store.claim_numbers(task_id, &self.cfg.node_id, self.cfg.claim_batch, self.cfg.lease_secs).await?;
                if claimed.is_empty() {
                    if calls.is_empty() && self.store.pending_numbers(task_id).await? == 0 {
                        break RunEnd::Completed;
                    }
                    tokio::select! {
                        _ = self.cancel.cancelled() => {}
                        _ = calls.join_next(), if !calls.is_empty() => {}
                        _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    }
                    continue;
                }
                queue.extend(claimed);
            }
            let permit = tokio::select! {
                _ = self.cancel.cancelled() => continue,
                p = sem.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break RunEnd::Cancelled },
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
            let uuid = uuid::Uuid::new_v4().to_string();
            let attempt = num.attempts + 1;
            let rec = record_path(&self.cfg.recordings_root, &num.number, task.group_id, &uuid);
            let originate = originate_command(&task, &num.number, &uuid, &rec, &self.default_gateway);
            // Durable before the originate leaves: after a crash the ledger
            // says which attempts may be live.
            self.store.ledger_begin(task_id, num.id, &num.number, attempt, &uuid, &self.cfg.node_id).await?;
            let plan = call::CallPlan {
                uuid,
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
                audio_root: self.cfg.audio_root.clone(),
                tts_prefix: self.cfg.tts_prefix.clone(),
                max_call: Duration::from_secs(self.cfg.max_call_secs),
            };
            self.progress.originated.fetch_add(1, Ordering::Relaxed);
            self.progress.in_flight.fetch_add(1, Ordering::Relaxed);
            let esl = self.esl.clone();
            let script = script.clone();
            let fin = self.finalizer.clone();
            let progress = self.progress.clone();
            calls.spawn(async move {
                let result = call::run(esl, script, plan).await;
                match fin.finalize(result).await {
                    Ok(w) => {
                        if w.record {
                            progress.records.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(e) => tracing::error!("finalize failed: {e}"),
                }
                progress.in_flight.fetch_sub(1, Ordering::Relaxed);
                progress.finished.fetch_add(1, Ordering::Relaxed);
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
        }
        if end != RunEnd::Cancelled {
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
            uuid: "t1".into(),
            name: "t".into(),
            start: 1,
            maximumcall: 2,
            call_per_second: 1.0,
            recycle_limit: 0,
            destination_extension: "robot".into(),
            destination_dialplan: "XML".into(),
            destination_context: "default".into(),
            dial_format: "{origination_caller_id_number=202306071342}sofia/gateway/gw1/%s".into(),
            originate_variables: "{execute_on_media=start_da2}".into(),
            originate_timeout: 30,
            origination_caller_id_number: String::new(),
            user_id: "u".into(),
            group_id: 1,
            call_pause_second: 0,
            sort: 0,
            is_top: 0,
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
