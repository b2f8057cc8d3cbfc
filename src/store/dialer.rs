//! Store queries of the dialer: the ledger after a crash, compliance
//! bookkeeping and dial windows.

use sqlx::Row;

use super::{now_str, Store, StoreError};
use crate::dialer::window::DialWindowSpec;

/// An attempt written to the ledger but not finalized.
#[derive(Debug, Clone)]
pub struct LedgerRow {
    pub task_id: String,
    pub number_id: i64,
    pub number: String,
    pub attempt: i64,
    pub uuid: String,
    pub state: String,
    pub created_at: String,
}

impl Store {
    /// Attempts of `node` whose outcome was never written (its rows in
    /// `open_dials`, migration 0014).
    pub async fn ledger_open(&self, node: &str) -> Result<Vec<LedgerRow>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT l.task_id, l.number_id, l.number, l.attempt, l.origination_uuid, l.state, l.created_at FROM open_dials o JOIN dial_ledger l ON l.id = o.ledger_id WHERE o.node_id = ? AND l.state NOT IN ('finalized', 'failed') ORDER BY o.ledger_id",
        ))
        .bind(node)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LedgerRow {
                    task_id: r.try_get("task_id")?,
                    number_id: r.try_get("number_id")?,
                    number: r.try_get("number")?,
                    attempt: r.try_get("attempt")?,
                    uuid: r.try_get("origination_uuid")?,
                    state: r.try_get("state")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// The ledger row of one attempt, whatever its state.
    pub async fn ledger_by_uuid(&self, uuid: &str) -> Result<Vec<LedgerRow>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT task_id, number_id, number, attempt, origination_uuid, state, created_at FROM dial_ledger WHERE origination_uuid = ?",
        ))
        .bind(uuid)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                Ok(LedgerRow {
                    task_id: r.try_get("task_id")?,
                    number_id: r.try_get("number_id")?,
                    number: r.try_get("number")?,
                    attempt: r.try_get("attempt")?,
                    uuid: r.try_get("origination_uuid")?,
                    state: r.try_get("state")?,
                    created_at: r.try_get("created_at")?,
                })
            })
            .collect()
    }

    /// Claims `node` still holds from a previous process: back to the pool,
    /// except numbers with an attempt still open in the ledger (its result
    /// may wait in the finalizer's spool): those are never released blindly.
    pub async fn release_node_claims(&self, node: &str) -> Result<u64, StoreError> {
        let r = sqlx::query(self.sql(
            "UPDATE autodialer_number SET claimed_by = NULL, claim_expires_at = NULL WHERE claimed_by = ? AND status = 0 AND id NOT IN (SELECT number_id FROM open_dials WHERE node_id = ?)",
        ))
        .bind(node)
        .bind(node)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected())
    }

    /// Dials to `number` (any task) since `since`, and the oldest of them.
    pub async fn calls_to_number_since(&self, number: &str, since: &str) -> Result<(i64, Option<String>), StoreError> {
        let r = sqlx::query(self.sql(
            "SELECT COUNT(*) AS n, MIN(created_at) AS oldest FROM dial_ledger WHERE number = ? AND created_at >= ?",
        ))
        .bind(number)
        .bind(since)
        .fetch_one(self.pool())
        .await?;
        Ok((r.try_get("n")?, r.try_get("oldest")?))
    }

    /// Record a dial the compliance rules held back.
    pub async fn record_blocked(
        &self,
        task_id: &str,
        number_id: i64,
        number: &str,
        rule: &str,
        reason: &str,
        retry_at: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(self.sql(
            "INSERT INTO blocked_dials (task_id, number_id, number, rule, reason, retry_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(task_id)
        .bind(number_id)
        .bind(number)
        .bind(rule)
        .bind(reason)
        .bind(retry_at)
        .bind(now_str())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Blocked dials of a task, newest first: (number, rule, reason).
    pub async fn blocked_dials(&self, task_id: &str) -> Result<Vec<(String, String, String)>, StoreError> {
        let rows =
            sqlx::query(self.sql("SELECT number, rule, reason FROM blocked_dials WHERE task_id = ? ORDER BY id DESC"))
                .bind(task_id)
                .fetch_all(self.pool())
                .await?;
        rows.iter().map(|r| Ok((r.try_get("number")?, r.try_get("rule")?, r.try_get("reason")?))).collect()
    }

    /// Put a claimed number back, due again at `until`.
    pub async fn defer_number(&self, number_id: i64, until: &str) -> Result<(), StoreError> {
        sqlx::query(self.sql(
            "UPDATE autodialer_number SET next_attempt_at = ?, claimed_by = NULL, claim_expires_at = NULL, updated_at = ? WHERE id = ? AND status = 0",
        ))
        .bind(until)
        .bind(now_str())
        .bind(number_id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Create a dial-time group; returns its id.
    pub async fn create_dial_time_group(
        &self,
        user_id: &str,
        name: &str,
        spec: &DialWindowSpec,
    ) -> Result<String, StoreError> {
        crate::dialer::window::DialWindow::new(spec)
            .map_err(|e| StoreError::Invalid(format!("dial time group {name:?}: {e}")))?;
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_str();
        sqlx::query(self.sql(
            "INSERT INTO dial_time_groups (id, user_id, name, timezone, weekdays, time_ranges, exclude_dates, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(&id)
        .bind(user_id)
        .bind(name)
        .bind(&spec.timezone)
        .bind(to_json(&spec.weekdays))
        .bind(to_json(&spec.time_ranges))
        .bind(to_json(&spec.exclude_dates))
        .bind(&now)
        .bind(&now)
        .execute(self.pool())
        .await?;
        Ok(id)
    }

    /// The dial window of a task, if it has one.
    pub async fn task_dial_window(&self, task_id: &str) -> Result<Option<DialWindowSpec>, StoreError> {
        let r = sqlx::query(self.sql(
            "SELECT g.timezone, g.weekdays, g.time_ranges, g.exclude_dates FROM autodialer_task t JOIN dial_time_groups g ON g.id = t.dial_time_id WHERE t.uuid = ?",
        ))
        .bind(task_id)
        .fetch_optional(self.pool())
        .await?;
        let Some(r) = r else { return Ok(None) };
        Ok(Some(DialWindowSpec {
            timezone: r.try_get("timezone")?,
            weekdays: from_json("weekdays", r.try_get("weekdays")?)?,
            time_ranges: from_json("time_ranges", r.try_get("time_ranges")?)?,
            exclude_dates: from_json("exclude_dates", r.try_get("exclude_dates")?)?,
        }))
    }

    /// Attach a dial-time group to a task (`None` detaches).
    pub async fn set_task_dial_time(&self, task_id: &str, group: Option<&str>) -> Result<(), StoreError> {
        sqlx::query(self.sql("UPDATE autodialer_task SET dial_time_id = ?, alter_datetime = ? WHERE uuid = ?"))
            .bind(group)
            .bind(now_str())
            .bind(task_id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn from_json<T: serde::de::DeserializeOwned>(col: &str, v: String) -> Result<T, StoreError> {
    serde_json::from_str(&v).map_err(|e| StoreError::Invalid(format!("dial_time_groups.{col} is not valid JSON: {e}")))
}
