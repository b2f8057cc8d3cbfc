//! Writing one finished call: history row, record, detail rows, tags, number
//! status and ledger state in one transaction, idempotent per call id.

use std::collections::HashSet;

use sqlx::any::AnyRow;
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
    /// Where the callee's number is registered, from the number-location
    /// lookup (`crate::location`): `regions` ids and the operator code
    /// (1 移动, 2 联通, 3 电信, 4 广电), 0 = unknown. Written to the record
    /// and the call-history row.
    #[serde(default)]
    pub province_id: i64,
    #[serde(default)]
    pub city_id: i64,
    #[serde(default)]
    pub operator: i64,
}

impl Store {
    /// Write a finished call. Returns `false` (and changes nothing) when this
    /// call id was already written: a replayed hangup never duplicates rows.
    pub async fn write_call(&self, c: &CallWrite) -> Result<bool, StoreError> {
        Ok(self.write_calls(std::slice::from_ref(c)).await?.first().copied().unwrap_or(false))
    }

    /// The statements of [`Store::write_call`] inside the caller's
    /// transaction, so more rows (the webhook outbox) can commit with them.
    /// `false`: the call id is already stored and nothing was written.
    pub async fn write_call_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        c: &CallWrite,
    ) -> Result<bool, StoreError> {
        Ok(self.write_calls_in(tx, std::slice::from_ref(c)).await?.first().copied().unwrap_or(false))
    }

    /// Write many finished calls in one transaction. Per call id idempotent
    /// like `write_call`: the result says, call by call, whether it was
    /// written (`false`: that call id was already stored, or appeared earlier
    /// in `calls`, and nothing of it was written again). All or nothing: an
    /// error writes nothing of the batch.
    pub async fn write_calls(&self, calls: &[CallWrite]) -> Result<Vec<bool>, StoreError> {
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        let guard = self.register_writes(calls);
        let written = self.write_calls_unregistered(calls).await?;
        if let Some(g) = guard {
            g.finish(&written);
        }
        Ok(written)
    }

    /// Announce `calls`' records to the in-memory count index before their
    /// transaction commits (see `count_index`).
    pub(crate) fn register_writes<'a>(&'a self, calls: &'a [CallWrite]) -> Option<super::count_index::WriteGuard<'a>> {
        self.counts.begin_writes(calls.iter().map(|c| {
            c.record
                .as_ref()
                .map(|r| (c.task_id.as_str(), r.id.as_str(), c.calldate.as_str(), r.score, c.bill_ms, r.rounds))
        }))
    }

    async fn write_calls_unregistered(&self, calls: &[CallWrite]) -> Result<Vec<bool>, StoreError> {
        if let Some(sq) = self.sqlite.as_ref() {
            return self.write_calls_sqlite(sq, calls).await;
        }
        if let Some(pg) = self.pg.as_ref().filter(|_| calls.len() >= COPY_MIN_CALLS) {
            match self.write_calls_copy(pg, calls).await {
                Err(StoreError::Db(sqlx::Error::Database(e))) if e.is_unique_violation() => {
                    tracing::debug!("batch COPY hit a unique key ({e}); writing it with INSERTs");
                }
                r => return r,
            }
        }
        let mut tx = self.begin_write().await?;
        let written = self.write_calls_in(&mut tx, calls).await?;
        if written.iter().any(|w| *w) {
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        Ok(written)
    }

    /// The statements of [`Store::write_calls`] inside the caller's
    /// transaction: one statement per table for the whole batch (on
    /// PostgreSQL the rows travel as one `jsonb` parameter of arrays, see
    /// [`Table::recordset`], which parses and plans far cheaper than a
    /// multi-row `VALUES` list of thousands of parameters).
    pub async fn write_calls_in(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        calls: &[CallWrite],
    ) -> Result<Vec<bool>, StoreError> {
        for c in calls {
            check_call(c)?;
        }
        let mut written = vec![false; calls.len()];
        if calls.is_empty() {
            return Ok(written);
        }
        let now = now_str();

        // 1. History rows: the unique call_id decides which calls are new.
        let (firsts, rows) = history_rows(calls, &now);
        match self.backend {
            Backend::Postgres | Backend::Sqlite => {
                let mut new_ids: HashSet<String> = HashSet::with_capacity(firsts.len());
                for r in self.insert_rows(tx, &HISTORY, &rows, true, Some("call_id")).await? {
                    new_ids.insert(r.try_get("call_id")?);
                }
                for &i in &firsts {
                    written[i] = new_ids.contains(&calls[i].callid);
                }
            }
            Backend::MySql => {
                // MySQL has no INSERT … RETURNING: one INSERT IGNORE per call,
                // whose affected-row count says whether it is new.
                let q = format!(
                    "INSERT IGNORE INTO {} ({}) VALUES {}",
                    HISTORY.table,
                    HISTORY.list(),
                    value_rows(1, HISTORY.cols.len())
                );
                for (&i, row) in firsts.iter().zip(&rows) {
                    let query = bind_row(sqlx::query(self.sql(&q)), row);
                    written[i] = query.execute(&mut **tx).await?.rows_affected() == 1;
                }
            }
        }
        let new: Vec<&CallWrite> = calls.iter().zip(&written).filter(|(_, w)| **w).map(|(c, _)| c).collect();
        if new.is_empty() {
            return Ok(written);
        }

        // 2. Records, their detail rows and the tags of both.
        let owned = NewRows::of(&new);
        let rows = owned.rows(&now);
        self.insert_rows(tx, &RECORD, &rows.records, false, None).await?;
        self.insert_rows(tx, &DETAIL, &rows.details, false, None).await?;
        self.insert_rows(tx, &TAGGABLE, &rows.tags, true, None).await?;

        // 3. Number rows.
        if self.backend == Backend::Postgres {
            sqlx::query(self.sql(&pg_number_update()))
                .bind(now.clone())
                .bind(json_rows(&rows.numbers))
                .execute(&mut **tx)
                .await?;
        } else {
            let sets: Vec<String> = NUMBER.cols.iter().skip(1).map(|(c, _)| format!("{c} = ?")).collect();
            let q = format!(
                "UPDATE autodialer_number SET {}, claimed_by = NULL, claim_expires_at = NULL, updated_at = ? WHERE id = ?",
                sets.join(", ")
            );
            for row in &rows.numbers {
                let (id, set) = row.split_first().ok_or_else(|| StoreError::Invalid("empty number row".into()))?;
                let query = bind_row(sqlx::query(self.sql(&q)), set).bind(now.clone());
                bind_row(query, std::slice::from_ref(id)).execute(&mut **tx).await?;
            }
        }

        // 4. Ledger rows, and the calls leave open_dials.
        if self.backend == Backend::Postgres {
            let ids = json_rows(&rows.ledger);
            sqlx::query(self.sql(&pg_ledger_update())).bind(now.clone()).bind(ids.clone()).execute(&mut **tx).await?;
            sqlx::query(self.sql(&pg_open_dials_delete())).bind(ids).execute(&mut **tx).await?;
        } else {
            for chunk in new.chunks(CHUNK) {
                let list = vec!["?"; chunk.len()].join(", ");
                let q = format!(
                    "UPDATE dial_ledger SET state = 'finalized', updated_at = ? WHERE origination_uuid IN ({list})"
                );
                let mut query = sqlx::query(self.sql(&q)).bind(now.clone());
                for c in chunk {
                    query = query.bind(c.callid.clone());
                }
                query.execute(&mut **tx).await?;
                let q = format!("DELETE FROM open_dials WHERE origination_uuid IN ({list})");
                let mut query = sqlx::query(self.sql(&q));
                for c in chunk {
                    query = query.bind(c.callid.clone());
                }
                query.execute(&mut **tx).await?;
            }
        }

        // 5. Record counts, last: they are the rows concurrent batches of
        // one task share, so their locks are held only until the commit.
        self.add_counts(tx, &rows).await?;
        Ok(written)
    }

    /// The upsert adding a batch's new records to a count table `t`
    /// (`record_counts`: per task, talk-time second and shard;
    /// `record_facet_counts`: per task, score or rounds value and shard;
    /// `record_tag_counts`: per task, tag and shard; `n`
    /// rows; the last column is the increment, the others the key), run in
    /// the transaction that writes the records, so the counts stay exact and,
    /// like them, are written once per call id. The API's unfiltered,
    /// `bills`, `levels`, `rounds` and one-tag totals read them instead of counting up
    /// to a million index entries (migrations 0011, 0013). Rows go in key
    /// order, so two batches lock shared rows in the same order and never
    /// deadlock.
    fn counts_upsert_sql(&self, t: &Table, n: usize) -> String {
        let keys: Vec<&str> = t.cols.iter().take(t.cols.len() - 1).map(|(c, _)| *c).collect();
        let (table, cols, key) = (t.table, t.list(), keys.join(", "));
        match self.backend {
            Backend::Postgres => {
                let order: Vec<String> = (1..=keys.len()).map(|i| i.to_string()).collect();
                let xs: Vec<String> = (0..t.cols.len()).map(|i| format!("x.c{i}")).collect();
                format!(
                    "INSERT INTO {table} ({cols}) SELECT {} FROM {} ORDER BY {} \
                     ON CONFLICT ({key}) DO UPDATE SET records = {table}.records + EXCLUDED.records",
                    xs.join(", "),
                    t.recordset(),
                    order.join(", ")
                )
            }
            Backend::Sqlite => format!(
                "INSERT INTO {table} ({cols}) VALUES {} ON CONFLICT ({key}) DO UPDATE SET records = records + excluded.records",
                value_rows(n, t.cols.len())
            ),
            Backend::MySql => format!(
                "INSERT INTO {table} ({cols}) VALUES {} ON DUPLICATE KEY UPDATE records = records + VALUES(records)",
                value_rows(n, t.cols.len())
            ),
        }
    }

    /// Add a batch's counts (`record_counts`, `record_facet_counts`,
    /// `record_tag_counts`, in this order in every transaction).
    async fn add_counts(&self, conn: &mut sqlx::AnyConnection, rows: &Rows<'_>) -> Result<(), StoreError> {
        for (t, rows) in [(&COUNTS, &rows.counts), (&FACETS, &rows.facets), (&TAG_COUNTS, &rows.tag_counts)] {
            if rows.is_empty() {
                continue;
            }
            let q = self.counts_upsert_sql(t, rows.len());
            if self.backend == Backend::Postgres {
                sqlx::query(self.sql(&q)).bind(json_rows(rows)).execute(&mut *conn).await?;
            } else {
                bind_rows(sqlx::query(self.sql(&q)), rows).execute(&mut *conn).await?;
            }
        }
        Ok(())
    }

    /// [`Store::write_calls`] on PostgreSQL through the typed connection
    /// (`self.pg`): rows that are only ever inserted go in by `COPY` (a
    /// multi-row heap insert per page, no `jsonb` to take apart: about a
    /// third less server CPU per call, see docs/bench-store.md); the number
    /// and ledger UPDATEs are those of [`Store::write_calls_in`]. `COPY` has
    /// no `ON CONFLICT`: a call id already stored (a replay after a crash, or
    /// a concurrent writer of the same call) makes the history `COPY` fail
    /// with a unique violation, and the caller falls back to
    /// [`Store::write_calls_in`], which decides call by call. Such batches
    /// are rare, so no lookup of stored ids runs first (it cost a statement
    /// and a probe of the call id index per call in every batch).
    async fn write_calls_copy(&self, pg: &sqlx::PgPool, calls: &[CallWrite]) -> Result<Vec<bool>, StoreError> {
        for c in calls {
            check_call(c)?;
        }
        let now = now_str();
        let mut tx = pg.begin().await?;
        let (firsts, new_history) = history_rows(calls, &now);
        let mut written = vec![false; calls.len()];
        for &i in &firsts {
            written[i] = true;
        }
        let new: Vec<&CallWrite> = calls.iter().zip(&written).filter(|(_, w)| **w).map(|(c, _)| c).collect();
        let owned = NewRows::of(&new);
        let rows = owned.rows(&now);
        for (t, rows) in
            [(&HISTORY, &new_history), (&RECORD, &rows.records), (&DETAIL, &rows.details), (&TAGGABLE, &rows.tags)]
        {
            if rows.is_empty() {
                continue;
            }
            let data = copy_binary(rows)?;
            let mut copy =
                tx.copy_in_raw(&format!("COPY {} ({}) FROM STDIN (FORMAT binary)", t.table, t.list())).await?;
            copy.send(data).await?;
            copy.finish().await?;
        }
        sqlx::query(self.sql(&pg_number_update()))
            .bind(now.clone())
            .bind(json_rows(&rows.numbers))
            .execute(&mut *tx)
            .await?;
        let ids = json_rows(&rows.ledger);
        sqlx::query(self.sql(&pg_ledger_update())).bind(now.clone()).bind(ids.clone()).execute(&mut *tx).await?;
        sqlx::query(self.sql(&pg_open_dials_delete())).bind(ids).execute(&mut *tx).await?;
        for (t, rows) in [(&COUNTS, &rows.counts), (&FACETS, &rows.facets), (&TAG_COUNTS, &rows.tag_counts)] {
            if !rows.is_empty() {
                sqlx::query(self.sql(&self.counts_upsert_sql(t, rows.len())))
                    .bind(json_rows(rows))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(written)
    }

    /// [`Store::write_calls`] on an SQLite file through the typed pool
    /// (`self.sqlite`): the same rows and statements as
    /// [`Store::write_calls_in`], but values bound without `Any`'s copies
    /// and conversions, multi-row statements cut into chunks of power-of-two
    /// sizes (so the handful of statement texts stay prepared in each
    /// connection's cache instead of one new text per batch size), and the
    /// number rows set by one `UPDATE … FROM (VALUES …)` per chunk rather
    /// than one `UPDATE` per call. Each statement is a hand-off to the
    /// connection's worker thread, so fewer statements is less CPU.
    async fn write_calls_sqlite(&self, pool: &sqlx::SqlitePool, calls: &[CallWrite]) -> Result<Vec<bool>, StoreError> {
        for c in calls {
            check_call(c)?;
        }
        let mut written = vec![false; calls.len()];
        let now = now_str();
        let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
        let (firsts, rows) = history_rows(calls, &now);
        let new_ids: HashSet<String> =
            sqlite_insert(&mut tx, "INSERT OR IGNORE", &HISTORY, &rows, " RETURNING call_id")
                .await?
                .into_iter()
                .collect();
        for &i in &firsts {
            written[i] = new_ids.contains(&calls[i].callid);
        }
        let new: Vec<&CallWrite> = calls.iter().zip(&written).filter(|(_, w)| **w).map(|(c, _)| c).collect();
        if new.is_empty() {
            tx.rollback().await?;
            return Ok(written);
        }
        let owned = NewRows::of(&new);
        let rows = owned.rows(&now);
        sqlite_insert(&mut tx, "INSERT", &RECORD, &rows.records, "").await?;
        sqlite_insert(&mut tx, "INSERT", &DETAIL, &rows.details, "").await?;
        sqlite_insert(&mut tx, "INSERT OR IGNORE", &TAGGABLE, &rows.tags, "").await?;

        // Number rows: one source row per number id (the batch's last call
        // of a number wins, as the per-call UPDATEs in call order did).
        let mut seen = HashSet::with_capacity(rows.numbers.len());
        let mut numbers: Vec<&[V]> = Vec::with_capacity(rows.numbers.len());
        for row in rows.numbers.iter().rev() {
            if let Some(V::I(id)) = row.first() {
                if seen.insert(*id) {
                    numbers.push(row);
                }
            }
        }
        numbers.reverse();
        let sets: Vec<String> =
            NUMBER.cols.iter().enumerate().skip(1).map(|(i, (c, _))| format!("{c} = v.column{}", i + 1)).collect();
        for chunk in pow2_chunks(&numbers, max_rows(NUMBER.cols.len())) {
            let q = format!(
                "UPDATE autodialer_number SET {}, claimed_by = NULL, claim_expires_at = NULL, updated_at = ? \
                 FROM (VALUES {}) AS v WHERE autodialer_number.id = v.column1",
                sets.join(", "),
                value_rows(chunk.len(), NUMBER.cols.len())
            );
            let mut query = sqlx::query::<sqlx::Sqlite>(sqlx::AssertSqlSafe(q)).bind(now.as_str());
            for row in chunk {
                query = bind_sqlite(query, row);
            }
            query.execute(&mut *tx).await?;
        }

        // Ledger rows and their open_dials rows, the IN list padded to a
        // power of two.
        let ids: Vec<&str> = new.iter().map(|c| c.callid.as_str()).collect();
        for chunk in ids.chunks(512) {
            let slots = chunk.len().next_power_of_two();
            let list = vec!["?"; slots].join(", ");
            let q = format!(
                "UPDATE dial_ledger SET state = 'finalized', updated_at = ? WHERE origination_uuid IN ({list})"
            );
            let mut query = sqlx::query::<sqlx::Sqlite>(sqlx::AssertSqlSafe(q)).bind(now.as_str());
            for i in 0..slots {
                query = query.bind(chunk[i.min(chunk.len() - 1)]);
            }
            query.execute(&mut *tx).await?;
            let q = format!("DELETE FROM open_dials WHERE origination_uuid IN ({list})");
            let mut query = sqlx::query::<sqlx::Sqlite>(sqlx::AssertSqlSafe(q));
            for i in 0..slots {
                query = query.bind(chunk[i.min(chunk.len() - 1)]);
            }
            query.execute(&mut *tx).await?;
        }

        // Record counts, last (see write_calls_in); their keys are distinct,
        // so chunks of the upsert add up the same.
        for (t, rows) in [(&COUNTS, &rows.counts), (&FACETS, &rows.facets), (&TAG_COUNTS, &rows.tag_counts)] {
            let counts: Vec<&[V]> = rows.iter().map(Vec::as_slice).collect();
            for chunk in pow2_chunks(&counts, max_rows(t.cols.len())) {
                let q = self.counts_upsert_sql(t, chunk.len());
                let mut query = sqlx::query::<sqlx::Sqlite>(sqlx::AssertSqlSafe(q));
                for row in chunk {
                    query = bind_sqlite(query, row);
                }
                query.execute(&mut *tx).await?;
            }
        }
        tx.commit().await?;
        Ok(written)
    }

    /// `INSERT` `rows` of `t` (`ignore`: skip rows violating a unique key;
    /// `returning`: a column of the inserted rows to return). PostgreSQL gets
    /// one statement with the rows as a JSON parameter, the others multi-row
    /// `VALUES` in chunks.
    async fn insert_rows(
        &self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        t: &Table,
        rows: &[Vec<V<'_>>],
        ignore: bool,
        returning: Option<&str>,
    ) -> Result<Vec<AnyRow>, StoreError> {
        let mut out = Vec::new();
        if rows.is_empty() {
            return Ok(out);
        }
        let verb = if ignore { self.insert_ignore() } else { "INSERT" };
        let tail = format!(
            "{}{}",
            if ignore { self.on_conflict_nothing() } else { "" },
            returning.map(|r| format!(" RETURNING {r}")).unwrap_or_default()
        );
        if self.backend == Backend::Postgres {
            let query = sqlx::query(self.sql(&pg_insert(t, &tail))).bind(json_rows(rows));
            if returning.is_some() {
                out = query.fetch_all(&mut **tx).await?;
            } else {
                query.execute(&mut **tx).await?;
            }
            return Ok(out);
        }
        for chunk in rows.chunks(CHUNK) {
            let q = format!(
                "{verb} INTO {} ({}) VALUES {}{tail}",
                t.table,
                t.list(),
                value_rows(chunk.len(), t.cols.len())
            );
            let query = bind_rows(sqlx::query(self.sql(&q)), chunk);
            if returning.is_some() {
                out.extend(query.fetch_all(&mut **tx).await?);
            } else {
                query.execute(&mut **tx).await?;
            }
        }
        Ok(out)
    }

    /// Number of detail rows of a task's records (through the records: no
    /// index on `record_details.task_id` is kept only for this count).
    pub async fn detail_rows(&self, task_id: &str) -> Result<i64, StoreError> {
        let r = sqlx::query(self.sql(
            "SELECT COUNT(*) AS n FROM records r JOIN record_details d ON d.record_id = r.id WHERE r.task_id = ?",
        ))
        .bind(task_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(r.try_get("n")?)
    }
}

/// Batches from this many calls on go by `COPY` on PostgreSQL: a `COPY`
/// costs a round trip more than an `INSERT`, which a call or two doesn't
/// win back.
const COPY_MIN_CALLS: usize = 4;

/// The history rows of the first occurrence of each call id in `calls`, and
/// those occurrences' indexes.
fn history_rows<'a>(calls: &'a [CallWrite], now: &'a str) -> (Vec<usize>, Vec<Vec<V<'a>>>) {
    let mut seen = HashSet::with_capacity(calls.len());
    let firsts: Vec<usize> = (0..calls.len()).filter(|&i| seen.insert(calls[i].callid.as_str())).collect();
    let rows = firsts.iter().map(|&i| history_row(&calls[i], now)).collect();
    (firsts, rows)
}

/// `INSERT INTO t (…) SELECT … FROM <the jsonb parameter>{tail}`.
fn pg_insert(t: &Table, tail: &str) -> String {
    let pos: Vec<String> = (0..t.cols.len()).map(|i| format!("x.c{i}")).collect();
    format!("INSERT INTO {} ({}) SELECT {} FROM {}{tail}", t.table, t.list(), pos.join(", "), t.recordset())
}

/// The number rows' UPDATE on PostgreSQL: `updated_at`, then the rows as
/// `jsonb`.
fn pg_number_update() -> String {
    let sets: Vec<String> = NUMBER.cols.iter().enumerate().skip(1).map(|(i, (c, _))| format!("{c} = x.c{i}")).collect();
    format!(
        "UPDATE autodialer_number AS n SET {}, claimed_by = NULL, claim_expires_at = NULL, updated_at = ? FROM {} WHERE n.id = x.c0",
        sets.join(", "),
        NUMBER.recordset()
    )
}

/// The ledger rows' UPDATE on PostgreSQL: `updated_at`, then the call ids as
/// `jsonb`.
fn pg_ledger_update() -> String {
    format!(
        "UPDATE dial_ledger SET state = 'finalized', updated_at = ? WHERE origination_uuid IN (SELECT x.c0 FROM {})",
        LEDGER.recordset()
    )
}

/// The finalized calls leave `open_dials` (migration 0014) on PostgreSQL:
/// the call ids as `jsonb`, as for [`pg_ledger_update`].
fn pg_open_dials_delete() -> String {
    format!("DELETE FROM open_dials WHERE origination_uuid IN (SELECT x.c0 FROM {})", LEDGER.recordset())
}

/// What the calls a batch writes (those the history gate let through) own
/// beyond their `CallWrite`: detail ids, robot-voice JSON, number states.
struct NewRows<'a> {
    calls: Vec<&'a CallWrite>,
    recs: Vec<(&'a CallWrite, &'a RecordWrite)>,
    details: Vec<(&'a CallWrite, &'a RecordWrite, &'a DetailWrite, String, Option<String>)>,
    /// Each (taggable, tag) once: `COPY` has no `ON CONFLICT`. The last
    /// field is the record's task and calldate, set on records' tags only
    /// (the tags filter counts them by task, migration 0011, and pages them
    /// by date, migration 0012).
    tags: Vec<TagRow<'a>>,
    /// `record_counts` increments: (task, talk-time second, shard) → new
    /// records.
    counts: std::collections::BTreeMap<(&'a str, i64, i64), i64>,
    /// `record_facet_counts` increments: (task, facet, value, shard) → new
    /// records (facet [`FACET_SCORE`] or [`FACET_ROUNDS`]).
    facets: std::collections::BTreeMap<(&'a str, i64, i64, i64), i64>,
    /// `record_tag_counts` increments: (task, tag, shard) → new records
    /// with that tag.
    tag_counts: std::collections::BTreeMap<(&'a str, &'a str, i64), i64>,
    nums: Vec<(&'a CallWrite, i64, String, String)>,
}

/// A tag row to write: (taggable id, type, tag, the record's task and
/// calldate for records' tags).
type TagRow<'a> = (String, &'static str, &'a str, Option<(&'a str, &'a str)>);

/// The rows of [`NewRows`], table by table.
struct Rows<'a> {
    records: Vec<Vec<V<'a>>>,
    details: Vec<Vec<V<'a>>>,
    tags: Vec<Vec<V<'a>>>,
    numbers: Vec<Vec<V<'a>>>,
    ledger: Vec<Vec<V<'a>>>,
    counts: Vec<Vec<V<'a>>>,
    facets: Vec<Vec<V<'a>>>,
    tag_counts: Vec<Vec<V<'a>>>,
}

impl<'a> NewRows<'a> {
    fn of(new: &[&'a CallWrite]) -> NewRows<'a> {
        let recs: Vec<(&CallWrite, &RecordWrite)> =
            new.iter().filter_map(|c| c.record.as_ref().map(|r| (*c, r))).collect();
        let mut details = Vec::new();
        let mut tags: Vec<TagRow> = Vec::new();
        let mut seen: HashSet<(String, &str)> = HashSet::new();
        let mut tag = |id: &str, kind: &'static str, t: &'a str, task: Option<(&'a str, &'a str)>| {
            let new = seen.insert((id.to_string(), t));
            if new {
                tags.push((id.to_string(), kind, t, task));
            }
            new
        };
        let mut counts = std::collections::BTreeMap::new();
        let mut facets = std::collections::BTreeMap::new();
        let mut tag_counts = std::collections::BTreeMap::new();
        for (c, r) in &recs {
            let (task, shard) = (c.task_id.as_str(), count_shard(&c.callid));
            *counts.entry((task, c.bill_ms.div_euclid(1000), shard)).or_default() += 1;
            *facets.entry((task, FACET_SCORE, r.score, shard)).or_default() += 1;
            *facets.entry((task, FACET_ROUNDS, r.rounds, shard)).or_default() += 1;
            for t in &r.tags {
                if tag(&r.id, "record", t, Some((&c.task_id, &c.calldate))) {
                    *tag_counts.entry((task, t.as_str(), shard)).or_default() += 1;
                }
            }
            for d in &r.details {
                let did = time_ordered_id();
                for t in &d.tags {
                    tag(&did, "record_detail", t, None);
                }
                details.push((*c, *r, d, did, robot_voice_json(&d.robot_voice)));
            }
        }
        let nums = new
            .iter()
            .map(|c| match c.redial_in_secs {
                Some(secs) => (*c, 0, "等待呼叫".to_string(), super::in_secs(secs)),
                None => (*c, c.status, c.status_str.clone(), String::new()),
            })
            .collect();
        NewRows { calls: new.to_vec(), recs, details, tags, nums, counts, facets, tag_counts }
    }

    fn rows(&'a self, now: &'a str) -> Rows<'a> {
        Rows {
            records: self.recs.iter().map(|(c, r)| record_row(c, r, now)).collect(),
            details: self.details.iter().map(|(c, r, d, did, rv)| detail_row(c, r, d, did, rv.as_deref())).collect(),
            tags: self
                .tags
                .iter()
                .map(|(id, kind, tag, task)| {
                    vec![
                        V::S(Some(id)),
                        V::S(Some(kind)),
                        V::S(Some(tag)),
                        V::S(Some(now)),
                        V::S(Some(now)),
                        V::S(task.map(|t| t.0)),
                        V::S(task.map(|t| t.1)),
                    ]
                })
                .collect(),
            numbers: self.nums.iter().map(|(c, st, st_str, next)| number_row(c, *st, st_str, next)).collect(),
            ledger: self.calls.iter().map(|c| vec![V::S(Some(&c.callid))]).collect(),
            counts: self
                .counts
                .iter()
                .map(|((t, b, sh), n)| vec![V::S(Some(t)), V::I(Some(*b)), V::I(Some(*sh)), V::I(Some(*n))])
                .collect(),
            facets: self
                .facets
                .iter()
                .map(|((t, f, v, sh), n)| {
                    vec![V::S(Some(t)), V::I(Some(*f)), V::I(Some(*v)), V::I(Some(*sh)), V::I(Some(*n))]
                })
                .collect(),
            tag_counts: self
                .tag_counts
                .iter()
                .map(|((t, tag, sh), n)| vec![V::S(Some(t)), V::S(Some(tag)), V::I(Some(*sh)), V::I(Some(*n))])
                .collect(),
        }
    }
}

/// One column value of a row to write.
#[derive(Debug, Clone, Copy)]
enum V<'a> {
    I(Option<i64>),
    S(Option<&'a str>),
}

/// A column's type in the PostgreSQL JSON record set.
#[derive(Debug, Clone, Copy)]
enum Ty {
    Int,
    Text,
}

/// The columns a write fills, in the order the row builders below produce
/// them: the one column list every backend and both write paths share.
struct Table {
    table: &'static str,
    cols: &'static [(&'static str, Ty)],
}

impl Table {
    fn list(&self) -> String {
        self.cols.iter().map(|(c, _)| *c).collect::<Vec<_>>().join(", ")
    }

    /// `(SELECT e->>0 AS c0, (e->>1)::BIGINT AS c1, … FROM
    /// jsonb_array_elements(CAST(? AS jsonb)) AS e) AS x`: the JSON
    /// parameter's rows (arrays of the column values in order) as a relation.
    /// Measured against `json_to_recordset` over objects: that parses the
    /// text twice (`json` input, then the record set) and builds a hash of
    /// the keys for every row, about a third of the server's time per call;
    /// `jsonb` parses once and reads a field by position.
    fn recordset(&self) -> String {
        let defs: Vec<String> = self
            .cols
            .iter()
            .enumerate()
            .map(|(i, (_, ty))| match ty {
                Ty::Int => format!("CAST(e->>{i} AS BIGINT) AS c{i}"),
                Ty::Text => format!("e->>{i} AS c{i}"),
            })
            .collect();
        format!("(SELECT {} FROM jsonb_array_elements(CAST(? AS jsonb)) AS e) AS x", defs.join(", "))
    }
}

use Ty::{Int as I_, Text as T_};

const HISTORY: Table = Table {
    table: "auto_call_histories",
    cols: &[
        ("user_id", T_),
        ("task_id", T_),
        ("call_id", T_),
        ("number_id", I_),
        ("number", T_),
        ("attempt", I_),
        ("call_time", T_),
        ("duration", I_),
        ("hangup_cause", T_),
        ("hangup_code", T_),
        ("hangup_reason", I_),
        ("bill", I_),
        ("call_status", T_),
        ("status", I_),
        ("record_file", T_),
        ("calling_number", T_),
        ("province_id", I_),
        ("city_id", I_),
        ("operator", I_),
        ("created_at", T_),
        ("updated_at", T_),
    ],
};

fn history_row<'a>(c: &'a CallWrite, now: &'a str) -> Vec<V<'a>> {
    vec![
        V::S(Some(&c.user_id)),
        V::S(Some(&c.task_id)),
        V::S(Some(&c.callid)),
        V::I(Some(c.number_id)),
        V::S(Some(&c.number)),
        V::I(Some(c.attempt)),
        V::S(Some(&c.calldate)),
        V::I(Some(c.duration_ms)),
        V::S(c.hangupcause.as_deref()),
        V::S(c.hangup_code.as_deref()),
        V::I(c.hangup_reason),
        V::I(Some(c.bill_ms)),
        V::S(Some(&c.call_status)),
        V::I(Some(c.status)),
        V::S(c.recordfile.as_deref()),
        V::S(c.caller_number.as_deref()),
        V::I(Some(c.province_id)),
        V::I(Some(c.city_id)),
        V::I(Some(c.operator)),
        V::S(Some(now)),
        V::S(Some(now)),
    ]
}

const RECORD: Table = Table {
    table: "records",
    cols: &[
        ("id", T_),
        ("task_id", T_),
        ("user_id", T_),
        ("group_id", I_),
        ("number_id", I_),
        ("callid", T_),
        ("score", I_),
        ("callee", T_),
        ("caller_number", T_),
        ("duration", I_),
        ("error_code", I_),
        ("gender", I_),
        ("level_id", T_),
        ("level_name", T_),
        ("intention_results", I_),
        ("calldate", T_),
        ("bill", I_),
        ("hangupcause", T_),
        ("hangupdate", T_),
        ("answerdate", T_),
        ("recordfile", T_),
        ("hangup_disposition", I_),
        ("rounds", I_),
        ("province_id", I_),
        ("city_id", I_),
        ("operator", I_),
        ("created_at", T_),
        ("updated_at", T_),
    ],
};

fn record_row<'a>(c: &'a CallWrite, r: &'a RecordWrite, now: &'a str) -> Vec<V<'a>> {
    vec![
        V::S(Some(&r.id)),
        V::S(Some(&c.task_id)),
        V::S(Some(&c.user_id)),
        V::I(Some(c.group_id)),
        V::I(Some(c.number_id)),
        V::S(Some(&c.callid)),
        V::I(Some(r.score)),
        V::S(Some(&c.number)),
        V::S(c.caller_number.as_deref()),
        V::I(Some(c.duration_ms)),
        V::I(Some(0)),
        V::I(r.gender),
        V::S(r.level_id.as_deref()),
        V::S(r.level_name.as_deref()),
        V::I(r.intention_results),
        V::S(Some(&c.calldate)),
        V::I(Some(c.bill_ms)),
        V::S(c.hangupcause.as_deref()),
        V::S(Some(&c.hangupdate)),
        V::S(c.answerdate.as_deref()),
        V::S(c.recordfile.as_deref()),
        V::I(c.hangup_disposition),
        V::I(Some(r.rounds)),
        V::I(Some(c.province_id)),
        V::I(Some(c.city_id)),
        V::I(Some(c.operator)),
        V::S(Some(now)),
        V::S(Some(now)),
    ]
}

const DETAIL: Table = Table {
    table: "record_details",
    cols: &[
        ("id", T_),
        ("record_id", T_),
        ("task_id", T_),
        ("user_id", T_),
        ("notify", T_),
        ("callid", T_),
        ("asrtype", T_),
        ("callee", T_),
        ("gender", I_),
        ("asr_elapse", I_),
        ("question", T_),
        ("question_index", I_),
        ("speak_ms", I_),
        ("play_ms", I_),
        ("keyword", T_),
        ("answer_id", T_),
        ("answer_text", T_),
        ("answer_content", T_),
        ("answer_action", T_),
        ("word_class", T_),
        ("score", I_),
        ("sequence", I_),
        ("decision_us", I_),
        ("bridge_status", I_),
        ("voice", T_),
        ("robot_voice", T_),
        ("created_at", T_),
        ("updated_at", T_),
    ],
};

fn detail_row<'a>(
    c: &'a CallWrite,
    r: &'a RecordWrite,
    d: &'a DetailWrite,
    did: &'a str,
    robot_voice: Option<&'a str>,
) -> Vec<V<'a>> {
    vec![
        V::S(Some(did)),
        V::S(Some(&r.id)),
        V::S(Some(&c.task_id)),
        V::S(Some(&c.user_id)),
        V::S(Some(&d.notify)),
        V::S(Some(&c.callid)),
        V::S(d.asrtype.as_deref()),
        V::S(Some(&c.number)),
        V::I(d.gender),
        V::I(d.asr_elapse),
        V::S(Some(&d.question)),
        V::I(Some(d.question_index)),
        V::I(Some(d.speak_ms)),
        V::I(Some(d.play_ms)),
        V::S(d.keyword.as_deref()),
        V::S(d.answer_id.as_deref()),
        V::S(d.answer_text.as_deref()),
        V::S(d.answer_content.as_deref()),
        V::S(d.answer_action.as_deref()),
        V::S(d.word_class.as_deref()),
        V::I(Some(d.score)),
        V::I(Some(d.sequence)),
        V::I(d.decision_us),
        V::I(d.bridge_status),
        V::S(d.voice.as_deref()),
        V::S(robot_voice),
        V::S(Some(&d.created_at)),
        V::S(Some(&d.created_at)),
    ]
}

/// `task_id` and `calldate` are set on records' tags only (the tags filter
/// counts them by task, migration 0011, and pages them by date, 0012).
const TAGGABLE: Table = Table {
    table: "taggables",
    cols: &[
        ("taggable_id", T_),
        ("taggable_type", T_),
        ("tag_id", T_),
        ("created_at", T_),
        ("updated_at", T_),
        ("task_id", T_),
        ("calldate", T_),
    ],
};

/// The number row's columns set by a finished call; the first is the key.
const NUMBER: Table = Table {
    table: "autodialer_number",
    cols: &[
        ("id", I_),
        ("status", I_),
        ("status_str", T_),
        ("callid", T_),
        ("calldate", T_),
        ("bill", I_),
        ("duration", I_),
        ("hangupcause", T_),
        ("hangupdate", T_),
        ("answerdate", T_),
        ("attempts", I_),
        ("next_attempt_at", T_),
    ],
};

fn number_row<'a>(c: &'a CallWrite, status: i64, status_str: &'a str, next: &'a str) -> Vec<V<'a>> {
    vec![
        V::I(Some(c.number_id)),
        V::I(Some(status)),
        V::S(Some(status_str)),
        V::S(Some(&c.callid)),
        V::S(Some(&c.calldate)),
        V::I(Some(c.bill_ms)),
        V::I(Some(c.duration_ms)),
        V::S(c.hangupcause.as_deref()),
        V::S(Some(&c.hangupdate)),
        V::S(c.answerdate.as_deref()),
        V::I(Some(c.attempt)),
        V::S(Some(next)),
    ]
}

/// Rows of `record_counts`: (task_id, bill second, shard, records).
const COUNTS: Table =
    Table { table: "record_counts", cols: &[("task_id", T_), ("bill_s", I_), ("shard", I_), ("records", I_)] };

/// Rows of `record_facet_counts`: (task_id, facet, value, shard, records).
const FACETS: Table = Table {
    table: "record_facet_counts",
    cols: &[("task_id", T_), ("facet", I_), ("facet_value", I_), ("shard", I_), ("records", I_)],
};

/// Rows of `record_tag_counts`: (task_id, tag_id, shard, records).
const TAG_COUNTS: Table =
    Table { table: "record_tag_counts", cols: &[("task_id", T_), ("tag_id", T_), ("shard", I_), ("records", I_)] };

/// `record_facet_counts.facet` of a record's score (the `levels` filter).
pub const FACET_SCORE: i64 = 1;
/// `record_facet_counts.facet` of a record's rounds (the `rounds` filter).
pub const FACET_ROUNDS: i64 = 2;

/// Which of a (task, second)'s 16 `record_counts` rows a call adds to: a
/// stable hash of its id (FNV-1a), so the nodes and writers finalizing one
/// task's calls at once seldom wait on the same row lock until commit.
fn count_shard(callid: &str) -> i64 {
    let h = callid.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
    (h % 16) as i64
}

/// The ledger rows finalized by a batch, by origination uuid.
const LEDGER: Table = Table { table: "dial_ledger", cols: &[("origination_uuid", T_)] };

type AnyQuery = sqlx::query::Query<'static, sqlx::Any, sqlx::any::AnyArguments>;

/// Bind the values of one row in order (the `VALUES` path).
fn bind_row(mut q: AnyQuery, row: &[V]) -> AnyQuery {
    for v in row {
        q = match v {
            V::I(i) => q.bind(*i),
            V::S(s) => q.bind(s.map(str::to_string)),
        };
    }
    q
}

fn bind_rows(q: AnyQuery, rows: &[Vec<V>]) -> AnyQuery {
    rows.iter().fold(q, |q, row| bind_row(q, row))
}

/// `[[c0, c1, …], …]` for [`Table::recordset`], written straight into one
/// string (no intermediate JSON values: this runs for every row).
fn json_rows(rows: &[Vec<V>]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(rows.iter().map(|r| r.len() * 20).sum::<usize>() + 2);
    out.push('[');
    for (ri, row) in rows.iter().enumerate() {
        out.push_str(if ri == 0 { "[" } else { ",[" });
        for (i, v) in row.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            match v {
                V::I(Some(n)) => {
                    let _ = write!(out, "{n}");
                }
                V::S(Some(s)) => json_str(&mut out, s),
                V::I(None) | V::S(None) => out.push_str("null"),
            }
        }
        out.push(']');
    }
    out.push(']');
    out
}

/// Rows in `COPY … FROM STDIN (FORMAT binary)`: the signature and an empty
/// header, then per row the field count and each field as a length
/// (-1: NULL) and its bytes (`BIGINT` as 8 bytes big-endian, text as its
/// UTF-8), then -1 as the trailer. Against the text format the client
/// writes each string with one copy instead of escaping it character by
/// character (the text encoder was a third of the client's CPU; client CPU
/// per call −30–45 %, docs/bench-store.md round 4); the server's CPU per
/// call did not change measurably (no line splitting, unescaping or decimal
/// parsing, but a receive-function call per field). Every integer column the
/// write path copies is `BIGINT` (a `COPY` into an `INTEGER` column fails,
/// it does not truncate).
fn copy_binary(rows: &[Vec<V>]) -> Result<Vec<u8>, StoreError> {
    let len = |n: usize| {
        i32::try_from(n).map_err(|_| StoreError::Invalid(format!("a value of {n} bytes does not fit a COPY field")))
    };
    let size: usize = rows
        .iter()
        .map(|r| {
            2 + r
                .iter()
                .map(|v| match v {
                    V::I(Some(_)) => 12,
                    V::S(Some(s)) => 4 + s.len(),
                    V::I(None) | V::S(None) => 4,
                })
                .sum::<usize>()
        })
        .sum();
    let mut out = Vec::with_capacity(COPY_SIGNATURE.len() + 8 + size + 2);
    out.extend_from_slice(COPY_SIGNATURE);
    out.extend_from_slice(&0_i32.to_be_bytes()); // flags: no OIDs
    out.extend_from_slice(&0_i32.to_be_bytes()); // header extension length
    for row in rows {
        let fields = i16::try_from(row.len()).map_err(|_| StoreError::Invalid("too many COPY fields".into()))?;
        out.extend_from_slice(&fields.to_be_bytes());
        for v in row {
            match v {
                V::I(Some(n)) => {
                    out.extend_from_slice(&8_i32.to_be_bytes());
                    out.extend_from_slice(&n.to_be_bytes());
                }
                V::S(Some(s)) => {
                    out.extend_from_slice(&len(s.len())?.to_be_bytes());
                    out.extend_from_slice(s.as_bytes());
                }
                V::I(None) | V::S(None) => out.extend_from_slice(&(-1_i32).to_be_bytes()),
            }
        }
    }
    out.extend_from_slice(&(-1_i16).to_be_bytes());
    Ok(out)
}

/// The binary `COPY` signature (PostgreSQL docs, "Binary Format").
const COPY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// A JSON string literal (RFC 8259 escapes).
fn json_str(out: &mut String, s: &str) {
    use std::fmt::Write as _;
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A row id for records and detail rows: a UUID whose leading bits are the
/// time (version 7), so new rows go to the right edge of the primary-key
/// (and `record_details (record_id, sequence)`) index instead of a random
/// page each (measured: 40 % less server time for the detail rows).
pub fn time_ordered_id() -> String {
    let ms = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or_default();
    let rand = uuid::Uuid::new_v4().into_bytes();
    let mut bytes = [0_u8; 10];
    bytes.copy_from_slice(&rand[6..16]);
    uuid::Builder::from_unix_timestamp_millis(ms, &bytes).into_uuid().to_string()
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

type SqliteQuery<'q> = sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments>;

fn bind_sqlite<'q>(mut q: SqliteQuery<'q>, row: &[V<'_>]) -> SqliteQuery<'q> {
    for v in row {
        q = match v {
            V::I(i) => q.bind(*i),
            V::S(s) => q.bind(*s),
        };
    }
    q
}

/// Rows of a power-of-two count that fit one SQLite statement of `cols`
/// columns (at most 512; SQLite takes 32,766 parameters).
fn max_rows(cols: usize) -> usize {
    let fit = (32_766 / cols.max(1)).clamp(1, 512);
    1 << fit.ilog2()
}

/// `rows` cut into chunks whose sizes are powers of two, largest first
/// (e.g. 37 rows: 32 + 4 + 1), none above `max` (a power of two): every
/// batch size is written with at most log2(max) + 1 distinct statement
/// texts, which stay in the connection's prepared-statement cache.
fn pow2_chunks<T>(rows: &[T], max: usize) -> impl Iterator<Item = &[T]> {
    let mut rest = rows;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = 1 << rest.len().min(max).ilog2();
        let (chunk, tail) = rest.split_at(n);
        rest = tail;
        Some(chunk)
    })
}

/// `INSERT` `rows` of `t` on SQLite (`verb`: `INSERT` or `INSERT OR
/// IGNORE`; `tail`: ` RETURNING col` or empty) through the typed
/// connection, in [`pow2_chunks`]; the returned column's values, if any.
async fn sqlite_insert(
    tx: &mut sqlx::SqliteConnection,
    verb: &str,
    t: &Table,
    rows: &[Vec<V<'_>>],
    tail: &str,
) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    let rows: Vec<&[V]> = rows.iter().map(Vec::as_slice).collect();
    for chunk in pow2_chunks(&rows, max_rows(t.cols.len())) {
        let q =
            format!("{verb} INTO {} ({}) VALUES {}{tail}", t.table, t.list(), value_rows(chunk.len(), t.cols.len()));
        let mut query = sqlx::query::<sqlx::Sqlite>(sqlx::AssertSqlSafe(q));
        for row in chunk {
            query = bind_sqlite(query, row);
        }
        if tail.is_empty() {
            query.execute(&mut *tx).await?;
        } else {
            for r in query.fetch_all(&mut *tx).await? {
                out.push(r.try_get::<String, _>(0)?);
            }
        }
    }
    Ok(out)
}

/// Rows per multi-row statement on SQLite and MySQL: well under SQLite's
/// 32,766 and MySQL's 65,535 bind parameters for the widest table (28).
const CHUNK: usize = 1000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_powers_of_two_largest_first() {
        let rows: Vec<usize> = (0..1300).collect();
        let sizes: Vec<usize> = pow2_chunks(&rows, 512).map(<[usize]>::len).collect();
        assert_eq!(sizes, [512, 512, 256, 16, 4]);
        assert_eq!(pow2_chunks(&rows[..37], 512).map(<[usize]>::len).collect::<Vec<_>>(), [32, 4, 1]);
        assert_eq!(pow2_chunks(&rows[..0], 512).count(), 0);
        // In order, every row once.
        assert_eq!(pow2_chunks(&rows, 64).flatten().copied().collect::<Vec<_>>(), rows);
        // Statements stay under SQLite's 32,766 parameters.
        assert_eq!(max_rows(DETAIL.cols.len()), 512);
        assert!(max_rows(DETAIL.cols.len()) * DETAIL.cols.len() <= 32_766);
        assert_eq!(max_rows(100), 256);
    }

    #[test]
    fn json_rows_round_trip_through_a_json_parser() {
        let text = "引号\" 反斜杠\\ tab\t nl\n nul-free \u{1f} é";
        let rows = vec![
            vec![V::S(Some(text)), V::I(Some(-42)), V::I(None), V::S(None)],
            vec![V::S(Some("")), V::I(Some(i64::MAX)), V::I(Some(0)), V::S(Some("x"))],
        ];
        let v: serde_json::Value = serde_json::from_str(&json_rows(&rows)).expect("valid JSON");
        assert_eq!(v, serde_json::json!([[text, -42, null, null], ["", i64::MAX, 0, "x"]]));
    }

    #[test]
    fn copy_binary_writes_postgresql_binary_copy_format() {
        let rows = vec![vec![V::S(Some("é\t")), V::I(Some(-2)), V::I(None), V::S(None)], vec![V::S(Some(""))]];
        let got = copy_binary(&rows).expect("encodes");
        let mut want: Vec<u8> = b"PGCOPY\n\xff\r\n\0".to_vec();
        want.extend([0, 0, 0, 0, 0, 0, 0, 0]);
        want.extend([0, 4]);
        want.extend([0, 0, 0, 3, 0xc3, 0xa9, b'\t']);
        want.extend([0, 0, 0, 8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe]);
        want.extend([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
        want.extend([0, 1, 0, 0, 0, 0]);
        want.extend([0xff, 0xff]);
        assert_eq!(got, want);
    }

    #[test]
    fn detail_ids_are_time_ordered_uuids() {
        let a = time_ordered_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = time_ordered_id();
        assert!(a < b, "{a} !< {b}");
        assert_eq!(uuid::Uuid::parse_str(&a).expect("uuid").get_version_num(), 7);
    }
}
