//! Webhook outbox: events written in the same transaction as their call, the
//! claim/attempt bookkeeping of the delivery actor, and the delivery log.
//!
//! Atomicity: `write_call_with_outbox` runs `write_call_in` and the outbox
//! inserts in one transaction, so an event exists exactly when its call's
//! rows do, and a duplicate call (history row already there) adds nothing.

use std::collections::BTreeMap;

use sqlx::any::AnyRow;
use sqlx::Row;

use super::{now_str, CallWrite, Store, StoreError};

/// Local time with milliseconds; sorts with [`now_str`]'s second strings.
pub fn ms_str(at: chrono::DateTime<chrono::Local>) -> String {
    at.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// An event to deliver, before it is in the outbox.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NewEvent {
    /// Sent as `Idempotency-Key`; unique per event, stable across retries.
    pub idempotency_key: String,
    pub task_id: String,
    pub callid: Option<String>,
    /// `call_notify` or `call_stop_notify`.
    pub kind: String,
    pub url: String,
    pub payload: String,
}

/// An outbox row as the delivery actor and the API see it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct OutboxEvent {
    pub id: i64,
    pub task_id: String,
    /// The task's owner: picks the tenant's signing secret.
    pub user_id: Option<String>,
    pub callid: Option<String>,
    pub kind: String,
    pub url: String,
    pub payload: String,
    pub idempotency_key: String,
    /// pending | delivered | dead
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: String,
    pub last_error: Option<String>,
    pub created_at: String,
    pub delivered_at: Option<String>,
}

/// What one delivery attempt led to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptOutcome {
    Delivered,
    /// Failed; due again at the given time.
    Retry,
    /// Failed for the last time.
    Dead,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retry => "retry",
            Self::Dead => "dead",
        }
    }
}

/// One row of the delivery log (`Store::deliveries`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryAttempt {
    pub id: i64,
    pub outbox_id: i64,
    pub task_id: String,
    pub callid: Option<String>,
    pub kind: String,
    pub idempotency_key: String,
    pub attempt: i64,
    pub url: String,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub outcome: String,
    pub duration_ms: i64,
    pub attempted_at: String,
}

/// A finished attempt, as the delivery actor reports it.
#[derive(Debug, Clone)]
pub struct AttemptReport {
    pub status_code: Option<u16>,
    pub error: Option<String>,
    pub outcome: AttemptOutcome,
    pub duration_ms: i64,
    /// For [`AttemptOutcome::Retry`]: when the event is due again.
    pub next_attempt_at: String,
}

/// What the payload builders need about a task beyond the call itself.
#[derive(Debug, Clone, serde::Serialize)]
pub struct NotifyContext {
    pub task: super::Task,
    pub call_notify_url: Option<String>,
    pub call_notify_type: i64,
    pub call_stop_notify_url: Option<String>,
    pub group_name: Option<String>,
    pub user_name: Option<String>,
    /// 4 main account, 8 sub account (seed 002 `type`).
    pub user_type: i64,
    /// The main account of a sub-account (seed 002 `master_user_id`).
    pub master_user_id: String,
    /// Tag id → name, for the tags a record can carry.
    pub tag_names: BTreeMap<String, String>,
    /// Level id → (name, alias, color).
    pub levels: BTreeMap<String, (String, Option<String>, Option<String>)>,
}

const OUTBOX_COLUMNS: &str = "o.id, o.task_id, t.user_id, o.callid, o.kind, o.url, o.payload, o.idempotency_key, o.state, o.attempts, o.next_attempt_at, o.last_error, o.created_at, o.delivered_at FROM webhook_outbox o LEFT JOIN autodialer_task t ON t.uuid = o.task_id";

fn outbox_row(r: &AnyRow) -> Result<OutboxEvent, StoreError> {
    Ok(OutboxEvent {
        id: r.try_get("id")?,
        task_id: r.try_get("task_id")?,
        user_id: r.try_get("user_id")?,
        callid: r.try_get("callid")?,
        kind: r.try_get("kind")?,
        url: r.try_get("url")?,
        payload: r.try_get("payload")?,
        idempotency_key: r.try_get("idempotency_key")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        delivered_at: r.try_get("delivered_at")?,
    })
}

impl Store {
    /// Write a call and its webhook events atomically: either the call's rows
    /// and the outbox rows commit together, or neither does. Returns what
    /// [`Store::write_call`] returns (`false`: duplicate, nothing written).
    pub async fn write_call_with_outbox(&self, c: &CallWrite, events: &[NewEvent]) -> Result<bool, StoreError> {
        let guard = self.register_writes(std::slice::from_ref(c));
        let mut tx = self.begin_write().await?;
        if !self.write_call_in(&mut tx, c).await? {
            tx.rollback().await?;
            return Ok(false);
        }
        for e in events {
            self.insert_event(&mut tx, e).await?;
        }
        tx.commit().await?;
        if let Some(g) = guard {
            g.finish(&[true]);
        }
        Ok(true)
    }

    /// Put an event that belongs to no call (e.g. a task-stop notice) straight
    /// into the outbox. `false`: an event with this key already exists.
    pub async fn enqueue_event(&self, e: &NewEvent) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let new = self.insert_event(&mut tx, e).await?;
        tx.commit().await?;
        Ok(new)
    }

    /// Insert one outbox row in the caller's transaction; `false` when an
    /// event with the same idempotency key exists.
    async fn insert_event(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        e: &NewEvent,
    ) -> Result<bool, StoreError> {
        let now = ms_str(chrono::Local::now());
        let q = format!(
            "{} INTO webhook_outbox (task_id, callid, kind, url, payload, idempotency_key, state, attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, ?, 'pending', 0, ?, ?){}",
            self.insert_ignore(),
            self.on_conflict_nothing()
        );
        let r = sqlx::query(self.sql(&q))
            .bind(&e.task_id)
            .bind(e.callid.clone())
            .bind(&e.kind)
            .bind(&e.url)
            .bind(&e.payload)
            .bind(&e.idempotency_key)
            .bind(&now)
            .bind(&now)
            .execute(&mut **tx)
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Claim up to `limit` due events for `lease_ms`: each returned row was
    /// moved forward by the lease under a compare-and-set, so another node
    /// polling the same table skips it until the lease runs out.
    pub async fn claim_due_events(&self, limit: i64, lease_ms: i64) -> Result<Vec<OutboxEvent>, StoreError> {
        let now = chrono::Local::now();
        let now_s = ms_str(now);
        let lease = ms_str(now + chrono::Duration::milliseconds(lease_ms));
        let q = format!(
            "SELECT {OUTBOX_COLUMNS} WHERE o.state = 'pending' AND o.next_attempt_at <= ? ORDER BY o.next_attempt_at, o.id LIMIT ?"
        );
        let rows = sqlx::query(self.sql(&q)).bind(&now_s).bind(limit).fetch_all(&self.pool).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let mut ev = outbox_row(r)?;
            let upd = sqlx::query(self.sql(
                "UPDATE webhook_outbox SET next_attempt_at = ? WHERE id = ? AND state = 'pending' AND next_attempt_at = ?",
            ))
            .bind(&lease)
            .bind(ev.id)
            .bind(&ev.next_attempt_at)
            .execute(&self.pool)
            .await?;
            if upd.rows_affected() == 1 {
                ev.next_attempt_at = lease.clone();
                out.push(ev);
            }
        }
        Ok(out)
    }

    /// Record one attempt: the outbox row's new state and the log row, in one
    /// transaction.
    pub async fn record_attempt(&self, ev: &OutboxEvent, rep: &AttemptReport) -> Result<(), StoreError> {
        let now = now_str();
        let attempt = ev.attempts + 1;
        let mut tx = self.pool.begin().await?;
        let delivered_at = (rep.outcome == AttemptOutcome::Delivered).then(|| now.clone());
        let state = match rep.outcome {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Retry => "pending",
            AttemptOutcome::Dead => "dead",
        };
        sqlx::query(self.sql(
            "UPDATE webhook_outbox SET state = ?, attempts = ?, next_attempt_at = ?, last_error = ?, delivered_at = ? WHERE id = ?",
        ))
        .bind(state)
        .bind(attempt)
        .bind(&rep.next_attempt_at)
        .bind(rep.error.clone())
        .bind(delivered_at)
        .bind(ev.id)
        .execute(&mut *tx)
        .await?;
        sqlx::query(self.sql(
            "INSERT INTO webhook_deliveries (outbox_id, task_id, callid, kind, idempotency_key, attempt, url, status_code, error, outcome, duration_ms, attempted_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(ev.id)
        .bind(&ev.task_id)
        .bind(ev.callid.clone())
        .bind(&ev.kind)
        .bind(&ev.idempotency_key)
        .bind(attempt)
        .bind(&ev.url)
        .bind(rep.status_code.map(i64::from))
        .bind(rep.error.clone())
        .bind(rep.outcome.as_str())
        .bind(rep.duration_ms)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// The delivery log of a task, oldest first.
    pub async fn deliveries(&self, task_id: &str) -> Result<Vec<DeliveryAttempt>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT id, outbox_id, task_id, callid, kind, idempotency_key, attempt, url, status_code, error, outcome, duration_ms, attempted_at FROM webhook_deliveries WHERE task_id = ? ORDER BY id",
        ))
        .bind(task_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DeliveryAttempt {
                    id: r.try_get("id")?,
                    outbox_id: r.try_get("outbox_id")?,
                    task_id: r.try_get("task_id")?,
                    callid: r.try_get("callid")?,
                    kind: r.try_get("kind")?,
                    idempotency_key: r.try_get("idempotency_key")?,
                    attempt: r.try_get("attempt")?,
                    url: r.try_get("url")?,
                    status_code: r.try_get("status_code")?,
                    error: r.try_get("error")?,
                    outcome: r.try_get("outcome")?,
                    duration_ms: r.try_get("duration_ms")?,
                    attempted_at: r.try_get("attempted_at")?,
                })
            })
            .collect()
    }

    /// Events still to be delivered, all tasks (the `voxdial_webhook_outbox_backlog` gauge).
    pub async fn outbox_backlog(&self) -> Result<i64, StoreError> {
        let r = sqlx::query(self.sql("SELECT COUNT(*) AS n FROM webhook_outbox WHERE state = 'pending'"))
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get("n")?)
    }

    /// The outbox rows of a task, oldest first.
    pub async fn outbox_events(&self, task_id: &str) -> Result<Vec<OutboxEvent>, StoreError> {
        let q = format!("SELECT {OUTBOX_COLUMNS} WHERE o.task_id = ? ORDER BY o.id");
        let rows = sqlx::query(self.sql(&q)).bind(task_id).fetch_all(&self.pool).await?;
        rows.iter().map(outbox_row).collect()
    }

    /// Give dead events of a task another round of attempts; returns how many.
    pub async fn retry_dead_events(&self, task_id: &str) -> Result<u64, StoreError> {
        let r = sqlx::query(self.sql(
            "UPDATE webhook_outbox SET state = 'pending', attempts = 0, next_attempt_at = ? WHERE task_id = ? AND state = 'dead'",
        ))
        .bind(ms_str(chrono::Local::now()))
        .bind(task_id)
        .execute(&self.pool)
        .await?;
        Ok(r.rows_affected())
    }

    /// Set a task's callback settings (`call_notify_type`: see
    /// `docs/finalizer.md`).
    pub async fn set_task_notify(
        &self,
        task_id: &str,
        call_notify_url: Option<&str>,
        call_notify_type: i64,
        call_stop_notify_url: Option<&str>,
    ) -> Result<(), StoreError> {
        let r = sqlx::query(self.sql(
            "UPDATE autodialer_task SET call_notify_url = ?, call_notify_type = ?, call_stop_notify_url = ? WHERE uuid = ?",
        ))
        .bind(call_notify_url)
        .bind(call_notify_type)
        .bind(call_stop_notify_url)
        .bind(task_id)
        .execute(&self.pool)
        .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::TaskNotFound(task_id.to_string()));
        }
        Ok(())
    }

    /// Everything the payload builders need about a task; `None` when the
    /// task is gone (its calls then carry no callbacks).
    pub async fn notify_context(&self, task_id: &str) -> Result<Option<NotifyContext>, StoreError> {
        let task = match self.load_task(task_id).await {
            Ok(t) => t,
            Err(StoreError::TaskNotFound(_)) => return Ok(None),
            Err(e) => return Err(e),
        };
        let r = sqlx::query(self.sql(
            "SELECT t.call_notify_url, t.call_notify_type, t.call_stop_notify_url, g.name AS group_name, u.name AS user_name, u.type AS user_type, u.parent_id FROM autodialer_task t LEFT JOIN script_groups g ON g.id = t.group_id LEFT JOIN users u ON u.id = t.user_id WHERE t.uuid = ?",
        ))
        .bind(task_id)
        .fetch_one(&self.pool)
        .await?;
        let parent: Option<String> = r.try_get("parent_id")?;
        let mut ctx = NotifyContext {
            call_notify_url: r.try_get::<Option<String>, _>("call_notify_url")?.filter(|u| !u.trim().is_empty()),
            call_notify_type: r.try_get("call_notify_type")?,
            call_stop_notify_url: r
                .try_get::<Option<String>, _>("call_stop_notify_url")?
                .filter(|u| !u.trim().is_empty()),
            group_name: r.try_get("group_name")?,
            user_name: r.try_get("user_name")?,
            user_type: r.try_get::<Option<i64>, _>("user_type")?.unwrap_or(4),
            master_user_id: parent.unwrap_or_else(|| task.user_id.clone()),
            task,
            tag_names: BTreeMap::new(),
            levels: BTreeMap::new(),
        };
        if ctx.call_notify_url.is_some() {
            let tags = sqlx::query(self.sql("SELECT id, name FROM tags WHERE user_id = ?"))
                .bind(&ctx.task.user_id)
                .fetch_all(&self.pool)
                .await?;
            for t in tags {
                ctx.tag_names.insert(t.try_get("id")?, t.try_get("name")?);
            }
            let levels = sqlx::query(self.sql("SELECT id, name, alias, color FROM levels WHERE group_id = ?"))
                .bind(ctx.task.group_id)
                .fetch_all(&self.pool)
                .await?;
            for l in levels {
                ctx.levels.insert(l.try_get("id")?, (l.try_get("name")?, l.try_get("alias")?, l.try_get("color")?));
            }
        }
        Ok(Some(ctx))
    }

    /// The number's import variables (`{$name}` values), for callbacks that
    /// carry customer data.
    pub async fn number_variables(&self, number_id: i64) -> Result<BTreeMap<String, String>, StoreError> {
        let r = sqlx::query(self.sql("SELECT variables FROM autodialer_number WHERE id = ?"))
            .bind(number_id)
            .fetch_optional(&self.pool)
            .await?;
        let vars: Option<String> = match r {
            Some(r) => r.try_get("variables")?,
            None => None,
        };
        Ok(vars.and_then(|v| serde_json::from_str(&v).ok()).unwrap_or_default())
    }
}
