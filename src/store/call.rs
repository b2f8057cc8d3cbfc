//! Writing one finished call: history row, record, detail rows, tags, number
//! status and ledger state in one transaction, idempotent per call id.

use std::collections::HashSet;

use sqlx::Row;

use super::limits::{self, chars, check, check_opt, TEXT};
use super::{now_str, Backend, Store, StoreError};

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
    /// 1 on rows after a transfer to an agent.
    #[serde(default)]
    pub bridge_status: Option<i64>,
    /// Customer audio of this sentence (`record_details.voice`), a path
    /// under the recordings root.
    #[serde(default)]
    pub voice: Option<String>,
    /// Robot audio played for this turn (`record_details.robot_voice`, stored
    /// as a JSON array of paths).
    #[serde(default)]
    pub robot_voice: Vec<String>,
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
        let mut tx = self.begin_write().await?;
        if self.write_call_in(&mut tx, c).await? {
            tx.commit().await?;
            Ok(true)
        } else {
            tx.rollback().await?;
            Ok(false)
        }
    }

    /// The statements of [`Store::write_call`] inside the caller's
    /// transaction, so more rows (the webhook outbox) can commit with them.
    /// `false`: the call id is already stored and nothing was written.
    pub async fn write_call_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        c: &CallWrite,
    ) -> Result<bool, StoreError> {
        check_call(c)?;
        let now = now_str();
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
            .execute(&mut **tx)
            .await?;
        if ins.rows_affected() == 0 {
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
            .execute(&mut **tx)
            .await?;
            for t in &r.tags {
                self.tag(tx, &r.id, "record", t, &now).await?;
            }
            for d in &r.details {
                let did = uuid::Uuid::new_v4().to_string();
                sqlx::query(self.sql(
                    "INSERT INTO record_details (id, record_id, task_id, user_id, notify, callid, asrtype, callee, gender, asr_elapse, question, question_index, speak_ms, play_ms, keyword, answer_id, answer_text, answer_content, answer_action, word_class, score, sequence, decision_us, bridge_status, voice, robot_voice, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                .bind(d.bridge_status)
                .bind(d.voice.clone())
                .bind(robot_voice_json(&d.robot_voice))
                .bind(&d.created_at)
                .bind(&d.created_at)
                .execute(&mut **tx)
                .await?;
                for t in &d.tags {
                    self.tag(tx, &did, "record_detail", t, &now).await?;
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
        .execute(&mut **tx)
        .await?;
        sqlx::query(self.sql("UPDATE dial_ledger SET state = 'finalized', updated_at = ? WHERE origination_uuid = ?"))
            .bind(&now)
            .bind(&c.callid)
            .execute(&mut **tx)
            .await?;
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

/// Check every string of a call against its column (see [`limits`]): a call
/// that doesn't fit is refused whole, on every backend, naming the column.
pub fn check_call(c: &CallWrite) -> Result<(), StoreError> {
    const H: &str = "auto_call_histories";
    check(H, "call_id", &c.callid, chars(limits::ID))?;
    check(H, "task_id", &c.task_id, chars(limits::ID))?;
    check(H, "user_id", &c.user_id, chars(limits::ID))?;
    check(H, "number", &c.number, chars(limits::NUMBER))?;
    check(H, "call_status", &c.call_status, chars(limits::CODE))?;
    check_opt(H, "hangup_code", c.hangup_code.as_deref(), chars(limits::CODE))?;
    check_opt(H, "hangup_cause", c.hangupcause.as_deref(), chars(limits::CODE))?;
    check(H, "call_time", &c.calldate, chars(limits::TIME))?;
    check_opt(H, "record_file", c.recordfile.as_deref(), TEXT)?;
    check_opt(H, "calling_number", c.caller_number.as_deref(), chars(limits::CALLER))?;
    const N: &str = "autodialer_number";
    check(N, "status_str", &c.status_str, chars(limits::CODE))?;
    check_opt(N, "answerdate", c.answerdate.as_deref(), chars(limits::TIME))?;
    check(N, "hangupdate", &c.hangupdate, chars(limits::TIME))?;
    if let Some(r) = &c.record {
        const R: &str = "records";
        check(R, "id", &r.id, chars(limits::ID))?;
        check_opt(R, "level_id", r.level_id.as_deref(), chars(limits::SCRIPT_ID))?;
        check_opt(R, "level_name", r.level_name.as_deref(), chars(limits::NAME))?;
        for t in &r.tags {
            check("taggables", "tag_id", t, chars(limits::SCRIPT_ID))?;
        }
        const D: &str = "record_details";
        for d in &r.details {
            check(D, "notify", &d.notify, chars(limits::SHORT))?;
            check(D, "question", &d.question, TEXT)?;
            check_opt(D, "keyword", d.keyword.as_deref(), TEXT)?;
            check_opt(D, "answer_id", d.answer_id.as_deref(), chars(limits::SCRIPT_ID))?;
            check_opt(D, "answer_text", d.answer_text.as_deref(), TEXT)?;
            check_opt(D, "answer_content", d.answer_content.as_deref(), TEXT)?;
            check_opt(D, "answer_action", d.answer_action.as_deref(), chars(limits::CODE))?;
            check_opt(D, "word_class", d.word_class.as_deref(), chars(limits::SHORT))?;
            check_opt(D, "asrtype", d.asrtype.as_deref(), chars(limits::SHORT))?;
            check(D, "created_at", &d.created_at, chars(limits::TIME))?;
            check_opt(D, "voice", d.voice.as_deref(), TEXT)?;
            check_opt(D, "robot_voice", robot_voice_json(&d.robot_voice).as_deref(), TEXT)?;
            for t in &d.tags {
                check("taggables", "tag_id", t, chars(limits::SCRIPT_ID))?;
            }
        }
    }
    Ok(())
}

/// `record_details.robot_voice`: a JSON array of paths, NULL when none.
fn robot_voice_json(paths: &[String]) -> Option<String> {
    (!paths.is_empty()).then(|| serde_json::Value::from(paths.to_vec()).to_string())
}

/// `(?, ?, …)` with `cols` placeholders, repeated `rows` times, comma-separated.
fn value_rows(rows: usize, cols: usize) -> String {
    let one = format!("({})", vec!["?"; cols].join(", "));
    let mut s = String::with_capacity(rows * (one.len() + 2));
    for i in 0..rows {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(&one);
    }
    s
}

/// Rows per multi-row statement: well under PostgreSQL's 65,535 and
/// SQLite's 32,766 bind parameters for the widest table (25 columns).
const CHUNK: usize = 1000;

impl Store {
    /// Write many finished calls in one transaction: the same rows as
    /// [`Store::write_call`] for each, with multi-row statements. Per call id
    /// idempotent like `write_call`: the result says, call by call, whether
    /// it was written (`false`: that call id was already stored, or appeared
    /// earlier in `calls`, and nothing of it was written again). All or
    /// nothing: an error writes nothing of the batch.
    pub async fn write_calls(&self, calls: &[CallWrite]) -> Result<Vec<bool>, StoreError> {
        for c in calls {
            check_call(c)?;
        }
        let mut written = vec![false; calls.len()];
        if calls.is_empty() {
            return Ok(written);
        }
        let now = now_str();
        let mut tx = self.begin_write().await?;

        // 1. History rows: the unique call_id decides which calls are new.
        let mut seen = HashSet::with_capacity(calls.len());
        let firsts: Vec<usize> = (0..calls.len()).filter(|&i| seen.insert(calls[i].callid.as_str())).collect();
        const HCOLS: &str = "user_id, task_id, call_id, number_id, number, attempt, call_time, duration, hangup_cause, hangup_code, hangup_reason, bill, call_status, status, record_file, calling_number, created_at, updated_at";
        let bind_history = |q: sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>, c: &CallWrite| {
            q.bind(c.user_id.clone())
                .bind(c.task_id.clone())
                .bind(c.callid.clone())
                .bind(c.number_id)
                .bind(c.number.clone())
                .bind(c.attempt)
                .bind(c.calldate.clone())
                .bind(c.duration_ms)
                .bind(c.hangupcause.clone())
                .bind(c.hangup_code.clone())
                .bind(c.hangup_reason)
                .bind(c.bill_ms)
                .bind(c.call_status.clone())
                .bind(c.status)
                .bind(c.recordfile.clone())
                .bind(c.caller_number.clone())
                .bind(now.clone())
                .bind(now.clone())
        };
        match self.backend {
            Backend::Postgres | Backend::Sqlite => {
                let mut new_ids: HashSet<String> = HashSet::with_capacity(firsts.len());
                for chunk in firsts.chunks(CHUNK) {
                    let q = format!(
                        "{} INTO auto_call_histories ({HCOLS}) VALUES {}{} RETURNING call_id",
                        self.insert_ignore(),
                        value_rows(chunk.len(), 18),
                        self.on_conflict_nothing()
                    );
                    let mut query = sqlx::query(self.sql(&q));
                    for &i in chunk {
                        query = bind_history(query, &calls[i]);
                    }
                    for r in query.fetch_all(&mut *tx).await? {
                        new_ids.insert(r.try_get("call_id")?);
                    }
                }
                for &i in &firsts {
                    written[i] = new_ids.contains(&calls[i].callid);
                }
            }
            Backend::MySql => {
                // MySQL has no INSERT … RETURNING: one INSERT IGNORE per call,
                // whose affected-row count says whether it is new.
                let q = format!("INSERT IGNORE INTO auto_call_histories ({HCOLS}) VALUES {}", value_rows(1, 18));
                for &i in &firsts {
                    let r = bind_history(sqlx::query(self.sql(&q)), &calls[i]).execute(&mut *tx).await?;
                    written[i] = r.rows_affected() == 1;
                }
            }
        }
        let new: Vec<&CallWrite> = calls.iter().zip(&written).filter(|(_, w)| **w).map(|(c, _)| c).collect();
        if new.is_empty() {
            tx.rollback().await?;
            return Ok(written);
        }

        // 2. Records.
        let recs: Vec<(&CallWrite, &RecordWrite)> =
            new.iter().filter_map(|c| c.record.as_ref().map(|r| (*c, r))).collect();
        for chunk in recs.chunks(CHUNK) {
            let q = format!(
                "INSERT INTO records (id, task_id, user_id, group_id, number_id, callid, score, callee, caller_number, duration, error_code, gender, level_id, level_name, intention_results, calldate, bill, hangupcause, hangupdate, answerdate, recordfile, hangup_disposition, rounds, created_at, updated_at) VALUES {}",
                value_rows(chunk.len(), 25)
            );
            let mut query = sqlx::query(self.sql(&q));
            for (c, r) in chunk {
                query = query
                    .bind(r.id.clone())
                    .bind(c.task_id.clone())
                    .bind(c.user_id.clone())
                    .bind(c.group_id)
                    .bind(c.number_id)
                    .bind(c.callid.clone())
                    .bind(r.score)
                    .bind(c.number.clone())
                    .bind(c.caller_number.clone())
                    .bind(c.duration_ms)
                    .bind(0_i64)
                    .bind(r.gender)
                    .bind(r.level_id.clone())
                    .bind(r.level_name.clone())
                    .bind(r.intention_results)
                    .bind(c.calldate.clone())
                    .bind(c.bill_ms)
                    .bind(c.hangupcause.clone())
                    .bind(c.hangupdate.clone())
                    .bind(c.answerdate.clone())
                    .bind(c.recordfile.clone())
                    .bind(c.hangup_disposition)
                    .bind(r.rounds)
                    .bind(now.clone())
                    .bind(now.clone());
            }
            query.execute(&mut *tx).await?;
        }

        // 3. Detail rows, and the tags of records and details.
        let mut details: Vec<(&CallWrite, &RecordWrite, &DetailWrite, String)> = Vec::new();
        let mut tags: Vec<(String, &'static str, &str)> = Vec::new();
        for (c, r) in &recs {
            for t in &r.tags {
                tags.push((r.id.clone(), "record", t));
            }
            for d in &r.details {
                let did = uuid::Uuid::new_v4().to_string();
                for t in &d.tags {
                    tags.push((did.clone(), "record_detail", t));
                }
                details.push((c, r, d, did));
            }
        }
        for chunk in details.chunks(CHUNK) {
            let q = format!(
                "INSERT INTO record_details (id, record_id, task_id, user_id, notify, callid, asrtype, callee, gender, asr_elapse, question, question_index, speak_ms, play_ms, keyword, answer_id, answer_text, answer_content, answer_action, word_class, score, sequence, decision_us, bridge_status, voice, robot_voice, created_at, updated_at) VALUES {}",
                value_rows(chunk.len(), 28)
            );
            let mut query = sqlx::query(self.sql(&q));
            for (c, r, d, did) in chunk {
                query = query
                    .bind(did.clone())
                    .bind(r.id.clone())
                    .bind(c.task_id.clone())
                    .bind(c.user_id.clone())
                    .bind(d.notify.clone())
                    .bind(c.callid.clone())
                    .bind(d.asrtype.clone())
                    .bind(c.number.clone())
                    .bind(d.gender)
                    .bind(d.asr_elapse)
                    .bind(d.question.clone())
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
                    .bind(d.bridge_status)
                    .bind(d.voice.clone())
                    .bind(robot_voice_json(&d.robot_voice))
                    .bind(d.created_at.clone())
                    .bind(d.created_at.clone());
            }
            query.execute(&mut *tx).await?;
        }
        for chunk in tags.chunks(CHUNK) {
            let q = format!(
                "{} INTO taggables (taggable_id, taggable_type, tag_id, created_at, updated_at) VALUES {}{}",
                self.insert_ignore(),
                value_rows(chunk.len(), 5),
                self.on_conflict_nothing()
            );
            let mut query = sqlx::query(self.sql(&q));
            for (id, kind, tag) in chunk {
                query = query.bind(id.clone()).bind(*kind).bind(tag.to_string()).bind(now.clone()).bind(now.clone());
            }
            query.execute(&mut *tx).await?;
        }

        // 4. Number rows.
        let nums: Vec<(&CallWrite, i64, String, String)> = new
            .iter()
            .map(|c| match c.redial_in_secs {
                Some(secs) => (*c, 0, "等待呼叫".to_string(), super::in_secs(secs)),
                None => (*c, c.status, c.status_str.clone(), String::new()),
            })
            .collect();
        const NUPD: &str = "UPDATE autodialer_number SET status = ?, status_str = ?, callid = ?, calldate = ?, bill = ?, duration = ?, hangupcause = ?, hangupdate = ?, answerdate = ?, attempts = ?, next_attempt_at = ?, claimed_by = NULL, claim_expires_at = NULL, updated_at = ? WHERE id = ?";
        if self.backend == Backend::Postgres {
            // One UPDATE … FROM (VALUES …) per chunk; the first row's casts
            // type the columns of the VALUES list.
            for chunk in nums.chunks(CHUNK) {
                let first = "(CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS BIGINT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS TEXT))";
                let rest = value_rows(chunk.len() - 1, 12);
                let q = format!(
                    "UPDATE autodialer_number AS n SET status = v.status, status_str = v.status_str, callid = v.callid, calldate = v.calldate, bill = v.bill, duration = v.duration, hangupcause = v.hangupcause, hangupdate = v.hangupdate, answerdate = v.answerdate, attempts = v.attempts, next_attempt_at = v.next_attempt_at, claimed_by = NULL, claim_expires_at = NULL, updated_at = ? FROM (VALUES {first}{}{rest}) AS v(id, status, status_str, callid, calldate, bill, duration, hangupcause, hangupdate, answerdate, attempts, next_attempt_at) WHERE n.id = v.id",
                    if chunk.len() > 1 { ", " } else { "" }
                );
                let mut query = sqlx::query(self.sql(&q)).bind(now.clone());
                for (c, status, status_str, next) in chunk {
                    query = query
                        .bind(c.number_id)
                        .bind(*status)
                        .bind(status_str.clone())
                        .bind(c.callid.clone())
                        .bind(c.calldate.clone())
                        .bind(c.bill_ms)
                        .bind(c.duration_ms)
                        .bind(c.hangupcause.clone())
                        .bind(c.hangupdate.clone())
                        .bind(c.answerdate.clone())
                        .bind(c.attempt)
                        .bind(next.clone());
                }
                query.execute(&mut *tx).await?;
            }
        } else {
            for (c, status, status_str, next) in &nums {
                sqlx::query(self.sql(NUPD))
                    .bind(*status)
                    .bind(status_str.clone())
                    .bind(c.callid.clone())
                    .bind(c.calldate.clone())
                    .bind(c.bill_ms)
                    .bind(c.duration_ms)
                    .bind(c.hangupcause.clone())
                    .bind(c.hangupdate.clone())
                    .bind(c.answerdate.clone())
                    .bind(c.attempt)
                    .bind(next.clone())
                    .bind(now.clone())
                    .bind(c.number_id)
                    .execute(&mut *tx)
                    .await?;
            }
        }

        // 5. Ledger rows.
        for chunk in new.chunks(CHUNK) {
            let q = format!(
                "UPDATE dial_ledger SET state = 'finalized', updated_at = ? WHERE origination_uuid IN ({})",
                vec!["?"; chunk.len()].join(", ")
            );
            let mut query = sqlx::query(self.sql(&q)).bind(now.clone());
            for c in chunk {
                query = query.bind(c.callid.clone());
            }
            query.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(written)
    }
}
