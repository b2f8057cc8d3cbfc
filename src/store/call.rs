//! Writing one finished call: history row, record, detail rows, tags, number
//! status and ledger state in one transaction, idempotent per call id.

use sqlx::Row;

use super::{now_str, Store, StoreError};

/// One transcript row of the record (seed `records[]`).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct DetailWrite {
    pub notify: String,
    pub question: String,
    pub question_index: i64,
    pub speak_ms: i64,
    pub play_ms: i64,
    pub keyword: Option<String>,
    pub answer_id: Option<String>,
    pub answer_text: Option<String>,
    pub answer_content: Option<String>,
    pub answer_action: Option<String>,
    pub word_class: Option<String>,
    pub score: i64,
    pub sequence: i64,
    pub asr_elapse: Option<i64>,
    pub gender: Option<i64>,
    pub asrtype: Option<String>,
    pub decision_us: Option<i64>,
    pub tags: Vec<String>,
    pub created_at: String,
}

/// The record of an answered call (seed 000 record).
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RecordWrite {
    pub id: String,
    pub score: i64,
    pub level_id: Option<String>,
    pub level_name: Option<String>,
    pub intention_results: Option<i64>,
    pub rounds: i64,
    pub gender: Option<i64>,
    pub tags: Vec<String>,
    pub details: Vec<DetailWrite>,
}

/// Everything the finalizer writes for one attempt.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct CallWrite {
    pub callid: String,
    pub task_id: String,
    pub user_id: String,
    pub group_id: i64,
    pub number_id: i64,
    pub number: String,
    pub attempt: i64,
    pub status: i64,
    pub status_str: String,
    pub call_status: String,
    pub hangup_code: Option<String>,
    pub hangup_reason: Option<i64>,
    pub hangupcause: Option<String>,
    pub calldate: String,
    pub answerdate: Option<String>,
    pub hangupdate: String,
    pub bill_ms: i64,
    pub duration_ms: i64,
    pub caller_number: Option<String>,
    pub recordfile: Option<String>,
    pub hangup_disposition: Option<i64>,
    /// `Some(secs)`: the number goes back to waiting and is redialled after
    /// `secs`; `None`: `status` is the number's final status.
    pub redial_in_secs: Option<i64>,
    pub record: Option<RecordWrite>,
}

impl Store {
    /// Write a finished call. Returns `false` (and changes nothing) when this
    /// call id was already written: a replayed hangup never duplicates rows.
    pub async fn write_call(&self, c: &CallWrite) -> Result<bool, StoreError> {
        let now = now_str();
        let mut tx = self.begin_write().await?;
        let q = format!(
            "{} INTO auto_call_histories (user_id, task_id, call_id, number_id, number, attempt, call_time, duration, hangup_cause, hangup_code, hangup_reason, bill, call_status, status, record_file, calling_number, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?){}",
            self.insert_ignore(),
            self.on_conflict_nothing()
        );
        let ins = sqlx::query(self.sql(&q))
            .bind(&c.user_id)
            .bind(&c.task_id)
            .bind(&c.callid)
            .bind(c.number_id)
            .bind(&c.number)
            .bind(c.attempt)
            .bind(&c.calldate)
            .bind(c.duration_ms)
            .bind(c.hangupcause.clone())
            .bind(c.hangup_code.clone())
            .bind(c.hangup_reason)
            .bind(c.bill_ms)
            .bind(&c.call_status)
            .bind(c.status)
            .bind(c.recordfile.clone())
            .bind(c.caller_number.clone())
            .bind(&now)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        if ins.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some(r) = &c.record {
            sqlx::query(self.sql(
                "INSERT INTO records (id, task_id, user_id, group_id, number_id, callid, score, callee, caller_number, duration, error_code, gender, level_id, level_name, intention_results, calldate, bill, hangupcause, hangupdate, answerdate, recordfile, hangup_disposition, rounds, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(&r.id)
            .bind(&c.task_id)
            .bind(&c.user_id)
            .bind(c.group_id)
            .bind(c.number_id)
            .bind(&c.callid)
            .bind(r.score)
            .bind(&c.number)
            .bind(c.caller_number.clone())
            .bind(c.duration_ms)
            .bind(r.gender)
            .bind(r.level_id.clone())
            .bind(r.level_name.clone())
            .bind(r.intention_results)
            .bind(&c.calldate)
            .bind(c.bill_ms)
            .bind(c.hangupcause.clone())
            .bind(&c.hangupdate)
            .bind(c.answerdate.clone())
            .bind(c.recordfile.clone())
            .bind(c.hangup_disposition)
            .bind(r.rounds)
            .bind(&now)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            for t in &r.tags {
                self.tag(&mut tx, &r.id, "record", t, &now).await?;
            }
            for d in &r.details {
                let did = uuid::Uuid::new_v4().to_string();
                sqlx::query(self.sql(
                    "INSERT INTO record_details (id, record_id, task_id, user_id, notify, callid, asrtype, callee, gender, asr_elapse, question, question_index, speak_ms, play_ms, keyword, answer_id, answer_text, answer_content, answer_action, word_class, score, sequence, decision_us, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ))
                .bind(&did)
                .bind(&r.id)
                .bind(&c.task_id)
                .bind(&c.user_id)
                .bind(&d.notify)
                .bind(&c.callid)
                .bind(d.asrtype.clone())
                .bind(&c.number)
                .bind(d.gender)
                .bind(d.asr_elapse)
                .bind(&d.question)
                .bind(d.question_index)
                .bind(d.speak_ms)
                .bind(d.play_ms)
                .bind(d.keyword.clone())
                .bind(d.answer_id.clone())
                .bind(d.answer_text.clone())
                .bind(d.answer_content.clone())
                .bind(d.answer_action.clone())
                .bind(d.word_class.clone())
                .bind(d.score)
                .bind(d.sequence)
                .bind(d.decision_us)
                .bind(&d.created_at)
                .bind(&d.created_at)
                .execute(&mut *tx)
                .await?;
                for t in &d.tags {
                    self.tag(&mut tx, &did, "record_detail", t, &now).await?;
                }
            }
        }
        let (status, status_str, next) = match c.redial_in_secs {
            Some(secs) => (0, "等待呼叫".to_string(), super::in_secs(secs)),
            None => (c.status, c.status_str.clone(), String::new()),
        };
        sqlx::query(self.sql(
            "UPDATE autodialer_number SET status = ?, status_str = ?, callid = ?, calldate = ?, bill = ?, duration = ?, hangupcause = ?, hangupdate = ?, answerdate = ?, attempts = ?, next_attempt_at = ?, claimed_by = NULL, claim_expires_at = NULL, updated_at = ? WHERE id = ?",
        ))
        .bind(status)
        .bind(&status_str)
        .bind(&c.callid)
        .bind(&c.calldate)
        .bind(c.bill_ms)
        .bind(c.duration_ms)
        .bind(c.hangupcause.clone())
        .bind(&c.hangupdate)
        .bind(c.answerdate.clone())
        .bind(c.attempt)
        .bind(&next)
        .bind(&now)
        .bind(c.number_id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(self.sql("UPDATE dial_ledger SET state = 'finalized', updated_at = ? WHERE origination_uuid = ?"))
            .bind(&now)
            .bind(&c.callid)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn tag(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        taggable: &str,
        kind: &str,
        tag: &str,
        now: &str,
    ) -> Result<(), StoreError> {
        let q = format!(
            "{} INTO taggables (taggable_id, taggable_type, tag_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?){}",
            self.insert_ignore(),
            self.on_conflict_nothing()
        );
        sqlx::query(self.sql(&q)).bind(taggable).bind(kind).bind(tag).bind(now).bind(now).execute(&mut **tx).await?;
        Ok(())
    }

    /// Number of detail rows of a task's records.
    pub async fn detail_rows(&self, task_id: &str) -> Result<i64, StoreError> {
        let r = sqlx::query(self.sql("SELECT COUNT(*) AS n FROM record_details WHERE task_id = ?"))
            .bind(task_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get("n")?)
    }
}
