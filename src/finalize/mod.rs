//! Finalizer: turns a finished call into rows. One actor owns the write path;
//! call actors hand it a [`CallResult`] and get an acknowledgement once the
//! transaction committed, so a number is never released before its result
//! is durable.

pub mod status;

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::dialogue::{Detail, Summary};
use crate::store::call::RecordWrite;
use crate::store::{CallWrite, DetailWrite, Store, StoreError};

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
}

fn fmt_ms(ms: i64) -> String {
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
    let redial = !answered
        && !r.reconciled
        && recycle.statuses.contains(&status.code())
        && r.attempt <= r.recycle_limit;
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
            id: uuid::Uuid::new_v4().to_string(),
            score: summary.score,
            level_id: summary.level_id.clone(),
            level_name: summary.level_name.clone(),
            intention_results: summary.intention_results,
            rounds: summary.rounds,
            gender: summary.gender,
            tags: tags.into_iter().collect(),
            details: details
                .iter()
                .map(|d| DetailWrite {
                    notify: d.notify.to_string(),
                    question: d.question.clone(),
                    question_index: d.question_index,
                    speak_ms: d.speak_ms,
                    play_ms: d.play_ms,
                    keyword: d.keyword.clone(),
                    answer_id: d.answer_id.clone(),
                    answer_text: d.answer_text.clone(),
                    answer_content: d.answer_content.clone(),
                    answer_action: d.answer_action.clone(),
                    word_class: d.word_class.clone(),
                    score: d.score,
                    sequence: d.sequence,
                    asr_elapse: d.asr_elapse,
                    gender: d.gender,
                    asrtype: None,
                    decision_us: d.decision_us,
                    tags: d.tags.clone(),
                    created_at: fmt_ms(d.at_ms),
                })
                .collect(),
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
}

impl Finalizer {
    /// Start the actor. It drains its queue before exiting on `cancel`.
    pub fn start(store: Store, rules: StatusRules, recycle: RecyclePolicy, cancel: CancellationToken) -> Finalizer {
        let (tx, mut rx) = mpsc::channel::<Job>(4096);
        tokio::spawn(async move {
            loop {
                let job = tokio::select! {
                    j = rx.recv() => match j { Some(j) => j, None => break },
                    _ = cancel.cancelled() => {
                        rx.close();
                        match rx.recv().await { Some(j) => j, None => break }
                    }
                };
                let w = build(&job.result, &rules, &recycle);
                let status = NumberStatus::from_code(w.status).unwrap_or(NumberStatus::LineFault);
                // A busy database gets a few retries before the error is
                // reported; the durable spool comes with the finalizer issue.
                let mut attempt = 0;
                let res = loop {
                    match store.write_call(&w).await {
                        Ok(new) => break Ok(new),
                        Err(e) if attempt < 5 => {
                            attempt += 1;
                            tracing::warn!(call = %w.callid, "finalize failed, retrying: {e}");
                            tokio::time::sleep(Duration::from_millis(200 * attempt)).await;
                        }
                        Err(e) => break Err(e),
                    }
                };
                let res = res.map(|new| Written {
                    status,
                    record: w.record.is_some() && new,
                    duplicate: !new,
                    redial: w.redial_in_secs.is_some(),
                });
                if let Err(e) = &res {
                    tracing::error!(call = %w.callid, "call could not be finalized: {e}");
                }
                let _ = job.ack.send(res);
            }
        });
        Finalizer { tx }
    }

    /// Queue a finished call and wait until it is durably written.
    pub async fn finalize(&self, result: CallResult) -> Result<Written, StoreError> {
        let (ack, rx) = oneshot::channel();
        self.tx
            .send(Job { result, ack })
            .await
            .map_err(|_| StoreError::Invalid("finalizer stopped".into()))?;
        rx.await.map_err(|_| StoreError::Invalid("finalizer stopped".into()))?
    }
}
