//! Store queries of the REST API and the operator CLI: tenants and tokens,
//! the seeds' record and number listings, task management and task progress.
//!
//! Rows are turned into JSON maps column by column ([`row_map`]) because the
//! seeds' shapes are wide and differ per endpoint; the API layer picks the
//! keys each endpoint shows. Every query that takes an id from a client also
//! takes the caller's [`Scope`], so another tenant's ids find nothing.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::Hash;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sqlx::any::AnyRow;
use sqlx::{Column, Row, TypeInfo, ValueRef};

use super::call::{FACET_ROUNDS, FACET_SCORE};
use super::count_index::{answerable, spawn_build, BuildSql, CountIndex, Lookup};
use super::{now_str, Store, StoreError};

/// `users.type` of a main account (seed 002).
pub const USER_MAIN: i64 = 4;
/// `users.type` of a sub-account.
pub const USER_SUB: i64 = 8;

/// Who is calling, resolved from an API token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub user_id: String,
    pub parent_id: Option<String>,
    pub user_type: i64,
    /// Phone numbers in responses are masked for this token.
    pub mask_numbers: bool,
}

/// The users whose tasks (and everything under them) a caller may see:
/// a main account sees its own and its sub-accounts', a sub-account its own.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub users: Vec<String>,
    /// The account new objects are created for.
    pub owner: String,
    /// The main account of `owner` (itself for a main account): scripts,
    /// levels, tags and the blacklist are shared by a main account's family.
    pub tenant: String,
}

impl Scope {
    /// `?, ?, …` for the users, to splice into `IN (…)`.
    pub fn placeholders(&self) -> String {
        placeholders(self.users.len())
    }
}

/// `n` comma-separated `?` (at least one, so `IN ()` never occurs).
pub fn placeholders(n: usize) -> String {
    vec!["?"; n.max(1)].join(", ")
}

/// SHA-256 of a token, hex; only this is stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Up to this many matches, a filter the date index can't check (keyword,
/// tags) pages by sorting its matches (PostgreSQL; see
/// [`Store::query_records`]): 10,000 records fetched by callee and sorted
/// took 6 ms (index scan) + 12 ms (sort, join) at load ~5.
const FEW_MATCHES: i64 = 20_000;

/// From this `OFFSET` on, a page of records selects its ids first (from the
/// index alone) and fetches just the page's rows.
const DEEP_OFFSET: i64 = 150;

/// What the in-memory count index made of a total.
enum Indexed<'a> {
    Counted(i64),
    /// Count in SQL; and start this build afterwards.
    Miss(Option<DueBuild<'a>>),
}

/// A build [`CountIndex::lookup`] handed to this request. Started with
/// [`DueBuild::start`]; if the request is dropped first, the task's slot is
/// released so the next request can build.
struct DueBuild<'a> {
    index: &'a std::sync::Arc<CountIndex>,
    task: Option<String>,
}

impl DueBuild<'_> {
    fn start(mut self, store: &Store) {
        let Some(task) = self.task.take() else { return };
        let sql = BuildSql {
            begin: match store.backend {
                super::Backend::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ",
                super::Backend::MySql => "START TRANSACTION WITH CONSISTENT SNAPSHOT",
                super::Backend::Sqlite => "BEGIN",
            },
            scan: store.sql("SELECT calldate, score, bill, rounds FROM records WHERE task_id = ?").0,
            numbered: store.backend == super::Backend::Postgres,
        };
        spawn_build(store.pool().clone(), sql, task, std::sync::Arc::downgrade(self.index));
    }
}

impl Drop for DueBuild<'_> {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            self.index.abandon(&task);
        }
    }
}

/// Filters of `POST v1/task/query_done_task_phones`, already validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecordFilter {
    pub task_id: String,
    pub page: i64,
    pub per_page: i64,
    pub id: Option<String>,
    /// Score ranges `[min, max)`, any of them.
    pub levels: Vec<(i64, i64)>,
    pub keyword: Option<String>,
    /// Talk time in milliseconds, `[min, max)`.
    pub bill_ms: Option<(i64, i64)>,
    pub rounds: Option<(i64, i64)>,
    pub tags: Vec<String>,
    pub start_at: Option<String>,
    pub end_at: Option<String>,
}

/// Filters of `GET v1/task/number`, already validated.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NumberFilter {
    pub task_id: String,
    pub page: i64,
    pub per_page: i64,
    pub status: Vec<i64>,
    pub keyword: Option<String>,
    /// Operator codes (1 移动, 2 联通, 3 电信).
    pub operators: Vec<i64>,
    pub call_history: bool,
}

/// Live progress of a task, from the database so every node and the CLI
/// see the same figures.
#[derive(Debug, Clone, Default, serde::Serialize, PartialEq)]
pub struct TaskProgress {
    pub task_id: String,
    pub name: String,
    pub start: i64,
    pub start_str: String,
    pub total: i64,
    /// Originates sent (every attempt, redials included).
    pub dialled: i64,
    /// Attempts whose outcome is not written yet.
    pub in_flight: i64,
    /// Numbers still to dial (status 0).
    pub waiting: i64,
    /// Numbers with a final status.
    pub done: i64,
    /// Status code → numbers.
    pub statuses: BTreeMap<String, i64>,
    pub status_names: BTreeMap<String, String>,
    pub records: i64,
    /// Originates per second over the last `cps_window_secs`.
    pub achieved_cps: f64,
    pub cps_window_secs: i64,
    pub call_per_second: f64,
    pub maximumcall: i64,
}

/// Turn every column of a row into JSON (integers, reals, text; NULL → null).
pub fn row_map(r: &AnyRow) -> Map<String, Value> {
    let mut m = Map::new();
    for (i, col) in r.columns().iter().enumerate() {
        m.insert(col.name().to_string(), cell(r, i));
    }
    m
}

fn cell(r: &AnyRow, i: usize) -> Value {
    let Ok(raw) = r.try_get_raw(i) else { return Value::Null };
    if raw.is_null() {
        return Value::Null;
    }
    let kind = raw.type_info().name().to_ascii_uppercase();
    match kind.as_str() {
        "BOOLEAN" | "BOOL" => r.try_get::<bool, _>(i).map(Value::Bool).unwrap_or(Value::Null),
        "SMALLINT" | "INTEGER" | "BIGINT" | "INT" | "INT2" | "INT4" | "INT8" => {
            r.try_get::<i64, _>(i).map(Value::from).unwrap_or(Value::Null)
        }
        "REAL" | "DOUBLE" | "FLOAT" | "FLOAT4" | "FLOAT8" => {
            r.try_get::<f64, _>(i).map(Value::from).unwrap_or(Value::Null)
        }
        _ => r
            .try_get::<String, _>(i)
            .map(Value::String)
            .or_else(|_| r.try_get::<i64, _>(i).map(Value::from))
            .or_else(|_| r.try_get::<f64, _>(i).map(Value::from))
            .unwrap_or(Value::Null),
    }
}

fn maps(rows: &[AnyRow]) -> Vec<Map<String, Value>> {
    rows.iter().map(row_map).collect()
}

/// Rows as maps grouped by `key` (which may take its column out of the
/// map), each group in query order.
fn group_rows<K: Eq + Hash>(
    rows: &[AnyRow],
    mut key: impl FnMut(&mut Map<String, Value>) -> K,
) -> HashMap<K, Vec<Map<String, Value>>> {
    let mut out: HashMap<K, Vec<Map<String, Value>>> = HashMap::new();
    for r in rows {
        let mut m = row_map(r);
        out.entry(key(&mut m)).or_default().push(m);
    }
    out
}

/// Rows as maps by `key`, one row per key.
fn rows_by<K: Eq + Hash>(rows: &[AnyRow], key: impl Fn(&Map<String, Value>) -> K) -> HashMap<K, Map<String, Value>> {
    rows.iter().map(row_map).map(|m| (key(&m), m)).collect()
}

/// A text column as a key ("" when missing); `take` removes it from the row.
fn str_key(m: &mut Map<String, Value>, col: &str, take: bool) -> String {
    let v = if take { m.remove(col) } else { m.get(col).cloned() };
    v.and_then(|v| v.as_str().map(String::from)).unwrap_or_default()
}

/// Bind a list of strings in order.
macro_rules! bind_all {
    ($q:expr, $items:expr) => {{
        let mut q = $q;
        for it in $items {
            q = q.bind(it.clone());
        }
        q
    }};
}

/// Total pages of `total` rows at `per` a page (at least 1, as the seeds show).
pub fn last_page(total: i64, per: i64) -> i64 {
    if total <= 0 || per <= 0 {
        1
    } else {
        (total + per - 1) / per
    }
}

impl Store {
    /// Rows of `q` for `ids`, which go where `q` has `IN ({})`; no query
    /// (and no rows) when `ids` is empty.
    async fn rows_in<T>(&self, q: &str, ids: &[T]) -> Result<Vec<AnyRow>, StoreError>
    where
        T: for<'a> sqlx::Encode<'a, sqlx::Any> + sqlx::Type<sqlx::Any> + Clone + Send + 'static,
    {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let q = q.replace("IN ({})", &format!("IN ({})", placeholders(ids.len())));
        Ok(bind_all!(sqlx::query(self.sql(&q)), ids).fetch_all(self.pool()).await?)
    }

    // ---------------------------------------------------------------- users

    /// Create an account; `parent` makes it a sub-account. Returns its id.
    pub async fn create_user(&self, name: &str, parent: Option<&str>) -> Result<String, StoreError> {
        if name.trim().is_empty() {
            return Err(StoreError::Invalid("name: must not be empty".into()));
        }
        if let Some(p) = parent {
            match self.user_row(p).await? {
                Some(u) if u.parent_id.is_none() => {}
                Some(_) => return Err(StoreError::Invalid(format!("parent: {p} is itself a sub-account"))),
                None => return Err(StoreError::Invalid(format!("parent: no account {p}"))),
            }
        }
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_str();
        sqlx::query(
            self.sql("INSERT INTO users (id, parent_id, type, name, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)"),
        )
        .bind(&id)
        .bind(parent)
        .bind(if parent.is_some() { USER_SUB } else { USER_MAIN })
        .bind(name)
        .bind(&now)
        .bind(&now)
        .execute(self.pool())
        .await?;
        Ok(id)
    }

    /// An account as a principal (without token settings), if it exists.
    pub async fn user_row(&self, id: &str) -> Result<Option<Principal>, StoreError> {
        let r = sqlx::query(self.sql("SELECT id, parent_id, type FROM users WHERE id = ?"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        r.map(|r| {
            Ok(Principal {
                user_id: r.try_get("id")?,
                parent_id: r.try_get("parent_id")?,
                user_type: r.try_get("type")?,
                mask_numbers: false,
            })
        })
        .transpose()
    }

    /// All accounts: (id, parent_id, type, name).
    pub async fn list_users(&self) -> Result<Vec<Map<String, Value>>, StoreError> {
        let rows =
            sqlx::query(self.sql("SELECT id, parent_id, type, name, created_at FROM users ORDER BY created_at, id"))
                .fetch_all(self.pool())
                .await?;
        Ok(maps(&rows))
    }

    /// Issue an API token for `user_id`; returns the token (shown once, only
    /// its hash is stored).
    pub async fn create_api_token(&self, user_id: &str, name: &str, mask_numbers: bool) -> Result<String, StoreError> {
        if self.user_row(user_id).await?.is_none() {
            return Err(StoreError::Invalid(format!("user: no account {user_id}")));
        }
        let token = format!("vx_{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        sqlx::query(self.sql(
            "INSERT INTO api_tokens (user_id, name, token_sha256, mask_numbers, created_at) VALUES (?, ?, ?, ?, ?)",
        ))
        .bind(user_id)
        .bind(name)
        .bind(token_hash(&token))
        .bind(i64::from(mask_numbers))
        .bind(now_str())
        .execute(self.pool())
        .await?;
        Ok(token)
    }

    /// The principal a token stands for, if the token is known.
    pub async fn token_principal(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        let r = sqlx::query(self.sql(
            "SELECT u.id, u.parent_id, u.type, t.mask_numbers FROM api_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_sha256 = ?",
        ))
        .bind(token_hash(token))
        .fetch_optional(self.pool())
        .await?;
        r.map(|r| {
            Ok(Principal {
                user_id: r.try_get("id")?,
                parent_id: r.try_get("parent_id")?,
                user_type: r.try_get("type")?,
                mask_numbers: r.try_get::<i64, _>("mask_numbers")? != 0,
            })
        })
        .transpose()
    }

    /// The scope of `p`; with `sub_user_id` a main account acts for one of
    /// its sub-accounts (seed 001). `None` when `sub_user_id` is not one.
    pub async fn scope_of(&self, p: &Principal, sub_user_id: Option<&str>) -> Result<Option<Scope>, StoreError> {
        let tenant = p.parent_id.clone().unwrap_or_else(|| p.user_id.clone());
        if let Some(sub) = sub_user_id.filter(|s| !s.is_empty()) {
            if sub == p.user_id {
                return Ok(Some(Scope { users: vec![sub.to_string()], owner: sub.to_string(), tenant }));
            }
            let ok = p.parent_id.is_none()
                && sqlx::query(self.sql("SELECT 1 AS x FROM users WHERE id = ? AND parent_id = ?"))
                    .bind(sub)
                    .bind(&p.user_id)
                    .fetch_optional(self.pool())
                    .await?
                    .is_some();
            return Ok(ok.then(|| Scope { users: vec![sub.to_string()], owner: sub.to_string(), tenant }));
        }
        let mut users = vec![p.user_id.clone()];
        if p.parent_id.is_none() {
            let rows = sqlx::query(self.sql("SELECT id FROM users WHERE parent_id = ? ORDER BY id"))
                .bind(&p.user_id)
                .fetch_all(self.pool())
                .await?;
            for r in rows {
                users.push(r.try_get("id")?);
            }
        }
        Ok(Some(Scope { users, owner: p.user_id.clone(), tenant }))
    }

    /// Everyone: the operator CLI works on the whole database.
    pub async fn scope_all(&self) -> Result<Scope, StoreError> {
        let rows = sqlx::query(self.sql("SELECT id FROM users ORDER BY id")).fetch_all(self.pool()).await?;
        let mut users = rows.iter().map(|r| r.try_get("id")).collect::<Result<Vec<String>, _>>()?;
        if users.is_empty() {
            users.push(String::new());
        }
        Ok(Scope { users, owner: String::new(), tenant: String::new() })
    }

    /// Accounts of the tenant family `tenant` (the main account and its subs).
    async fn family(&self, tenant: &str) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query(self.sql("SELECT id FROM users WHERE id = ? OR parent_id = ? ORDER BY id"))
            .bind(tenant)
            .bind(tenant)
            .fetch_all(self.pool())
            .await?;
        let mut v = rows.iter().map(|r| r.try_get("id")).collect::<Result<Vec<String>, _>>()?;
        if v.is_empty() {
            v.push(tenant.to_string());
        }
        Ok(v)
    }

    // ---------------------------------------------------------------- tasks

    /// The task row, if it is in `scope` and not deleted.
    pub async fn task_in_scope(&self, task_id: &str, scope: &Scope) -> Result<Option<Map<String, Value>>, StoreError> {
        let q = format!(
            "SELECT * FROM autodialer_task WHERE uuid = ? AND deleted_at IS NULL AND user_id IN ({})",
            scope.placeholders()
        );
        let r = bind_all!(sqlx::query(self.sql(&q)).bind(task_id), &scope.users).fetch_optional(self.pool()).await?;
        Ok(r.as_ref().map(row_map))
    }

    /// Tasks in scope, newest first.
    pub async fn list_tasks(&self, scope: &Scope) -> Result<Vec<Map<String, Value>>, StoreError> {
        let q = format!(
            "SELECT * FROM autodialer_task WHERE deleted_at IS NULL AND user_id IN ({}) ORDER BY create_datetime DESC, uuid",
            scope.placeholders()
        );
        let rows = bind_all!(sqlx::query(self.sql(&q)), &scope.users).fetch_all(self.pool()).await?;
        Ok(maps(&rows))
    }

    /// Update the given columns of a task (names come from a fixed list in
    /// the API layer, never from input). Returns false when not in scope.
    pub async fn update_task_columns(
        &self,
        task_id: &str,
        scope: &Scope,
        cols: &[(&'static str, Value)],
    ) -> Result<bool, StoreError> {
        if self.task_in_scope(task_id, scope).await?.is_none() {
            return Ok(false);
        }
        if cols.is_empty() {
            return Ok(true);
        }
        let sets: Vec<String> = cols.iter().map(|(c, _)| format!("{c} = ?")).collect();
        let q = format!("UPDATE autodialer_task SET {}, alter_datetime = ? WHERE uuid = ?", sets.join(", "));
        let mut query = sqlx::query(self.sql(&q));
        for (_, v) in cols {
            query = match v {
                Value::Null => query.bind(None::<String>),
                Value::Bool(b) => query.bind(i64::from(*b)),
                Value::Number(n) if n.is_i64() => query.bind(n.as_i64().unwrap_or_default()),
                Value::Number(n) => query.bind(n.as_f64().unwrap_or_default()),
                Value::String(s) => query.bind(s.clone()),
                other => query.bind(other.to_string()),
            };
        }
        query.bind(now_str()).bind(task_id).execute(self.pool()).await?;
        Ok(true)
    }

    /// Set `start` (1 run, 0 pause, 2 stop) of a task in scope.
    pub async fn set_task_start_in_scope(&self, task_id: &str, scope: &Scope, start: i64) -> Result<bool, StoreError> {
        self.update_task_columns(task_id, scope, &[("start", Value::from(start))]).await
    }

    /// Soft-delete a task (a running one stops within a second).
    pub async fn delete_task(&self, task_id: &str, scope: &Scope) -> Result<bool, StoreError> {
        if self.task_in_scope(task_id, scope).await?.is_none() {
            return Ok(false);
        }
        let now = now_str();
        sqlx::query(
            self.sql("UPDATE autodialer_task SET deleted_at = ?, start = 0, alter_datetime = ? WHERE uuid = ?"),
        )
        .bind(&now)
        .bind(&now)
        .bind(task_id)
        .execute(self.pool())
        .await?;
        Ok(true)
    }

    /// A script group usable by `scope`'s owner: its own or its tenant's.
    pub async fn script_group_in_tenant(
        &self,
        group_id: i64,
        tenant: &str,
    ) -> Result<Option<Map<String, Value>>, StoreError> {
        let fam = self.family(tenant).await?;
        let q = format!(
            "SELECT * FROM script_groups WHERE id = ? AND deleted_at IS NULL AND user_id IN ({})",
            placeholders(fam.len())
        );
        let r = bind_all!(sqlx::query(self.sql(&q)).bind(group_id), &fam).fetch_optional(self.pool()).await?;
        Ok(r.as_ref().map(row_map))
    }

    /// Script groups of a tenant family, newest first (without definitions).
    pub async fn list_script_groups(&self, tenant: &str) -> Result<Vec<Map<String, Value>>, StoreError> {
        let fam = self.family(tenant).await?;
        let q = format!(
            "SELECT id, name, user_id, description, tag_scene_id, created_at, updated_at FROM script_groups WHERE deleted_at IS NULL AND user_id IN ({}) ORDER BY id DESC",
            placeholders(fam.len())
        );
        let rows = bind_all!(sqlx::query(self.sql(&q)), &fam).fetch_all(self.pool()).await?;
        Ok(maps(&rows))
    }

    /// Owner of a script group (any tenant), for the CLI's defaults.
    pub async fn script_group_owner(&self, group_id: i64) -> Result<Option<String>, StoreError> {
        let r = sqlx::query(self.sql("SELECT user_id FROM script_groups WHERE id = ? AND deleted_at IS NULL"))
            .bind(group_id)
            .fetch_optional(self.pool())
            .await?;
        Ok(r.map(|r| r.try_get("user_id")).transpose()?)
    }

    /// The newest script group of a tenant family.
    pub async fn latest_script_group(&self, tenant: &str) -> Result<Option<i64>, StoreError> {
        Ok(self.list_script_groups(tenant).await?.first().and_then(|m| m.get("id")).and_then(Value::as_i64))
    }

    /// Progress of a task (the caller checked the scope).
    pub async fn task_progress(
        &self,
        task: &Map<String, Value>,
        cps_window_secs: i64,
    ) -> Result<TaskProgress, StoreError> {
        let task_id = task.get("uuid").and_then(Value::as_str).unwrap_or_default().to_string();
        let statuses = self.status_counts(&task_id).await?;
        let count = |sql: &'static str| {
            let id = task_id.clone();
            async move {
                let r = sqlx::query(self.sql(sql)).bind(id).fetch_one(self.pool()).await?;
                Ok::<i64, StoreError>(r.try_get(0)?)
            }
        };
        let dialled = count("SELECT COUNT(*) FROM dial_ledger WHERE task_id = ?").await?;
        let in_flight =
            count("SELECT COUNT(*) FROM dial_ledger WHERE task_id = ? AND state NOT IN ('finalized', 'failed')")
                .await?;
        let records = count("SELECT COUNT(*) FROM records WHERE task_id = ?").await?;
        let window = cps_window_secs.max(1);
        let r = sqlx::query(self.sql("SELECT COUNT(*) FROM dial_ledger WHERE task_id = ? AND created_at >= ?"))
            .bind(&task_id)
            .bind(super::in_secs(-window))
            .fetch_one(self.pool())
            .await?;
        let recent: i64 = r.try_get(0)?;
        let total: i64 = statuses.values().sum();
        let waiting = statuses.get(&0).copied().unwrap_or(0);
        let start = task.get("start").and_then(Value::as_i64).unwrap_or(0);
        Ok(TaskProgress {
            task_id,
            name: task.get("name").and_then(Value::as_str).unwrap_or_default().to_string(),
            start,
            start_str: start_str(start).to_string(),
            total,
            dialled,
            in_flight,
            waiting,
            done: total - waiting,
            status_names: statuses
                .keys()
                .map(|k| {
                    let n = crate::finalize::status::NumberStatus::from_code(*k).map_or("?", |s| s.name_zh());
                    (k.to_string(), n.to_string())
                })
                .collect(),
            statuses: statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            records,
            achieved_cps: ((recent as f64 / window as f64) * 100.0).round() / 100.0,
            cps_window_secs: window,
            call_per_second: task.get("call_per_second").and_then(Value::as_f64).unwrap_or(0.0),
            maximumcall: task.get("maximumcall").and_then(Value::as_i64).unwrap_or(0),
        })
    }

    // -------------------------------------------------------------- records

    /// One page of a task's records and the total matching `f`.
    pub async fn query_records(&self, f: &RecordFilter) -> Result<(Vec<Map<String, Value>>, i64), StoreError> {
        let mut wh = vec!["r.task_id = ?".to_string()];
        let mut args: Vec<Arg> = vec![Arg::S(f.task_id.clone())];
        if let Some(id) = &f.id {
            wh.push("r.id = ?".into());
            args.push(Arg::S(id.clone()));
        }
        if !f.levels.is_empty() {
            let ors: Vec<&str> = f.levels.iter().map(|_| "(r.score >= ? AND r.score < ?)").collect();
            wh.push(format!("({})", ors.join(" OR ")));
            for (a, b) in &f.levels {
                args.push(Arg::I(*a));
                args.push(Arg::I(*b));
            }
        }
        if let Some(k) = &f.keyword {
            if k.chars().all(|c| c.is_ascii_digit()) {
                // A prefix of the number: an index range, not a scan.
                wh.push("r.callee >= ? AND r.callee < ?".into());
                args.push(Arg::S(k.clone()));
                args.push(Arg::S(format!("{k}~")));
            } else {
                wh.push("r.callee LIKE ?".into());
                args.push(Arg::S(format!("%{}%", k.replace(['%', '_'], ""))));
            }
        }
        if let Some((a, b)) = f.bill_ms {
            wh.push("r.bill >= ? AND r.bill < ?".into());
            args.push(Arg::I(a));
            args.push(Arg::I(b));
        }
        if let Some((a, b)) = f.rounds {
            wh.push("r.rounds >= ? AND r.rounds < ?".into());
            args.push(Arg::I(a));
            args.push(Arg::I(b));
        }
        if !f.tags.is_empty() {
            wh.push(format!(
                // A record's tags carry its task (migration 0011): the planner
                // may drive from taggables_task_tag (a hash of the task's
                // tagged ids) or probe the primary key (taggable_id, tag_id)
                // per record.
                "EXISTS (SELECT 1 FROM taggables tg WHERE tg.tag_id IN ({}) AND tg.taggable_type = 'record' AND tg.task_id = r.task_id AND tg.taggable_id = r.id)",
                placeholders(f.tags.len())
            ));
            args.extend(f.tags.iter().map(|t| Arg::S(t.clone())));
        }
        if let Some(s) = &f.start_at {
            wh.push("r.calldate >= ?".into());
            args.push(Arg::S(s.clone()));
        }
        if let Some(e) = &f.end_at {
            wh.push("r.calldate <= ?".into());
            args.push(Arg::S(e.clone()));
        }
        let cond = wh.join(" AND ");
        let no_range = f.id.is_none()
            && f.levels.is_empty()
            && f.keyword.is_none()
            && f.rounds.is_none()
            && f.start_at.is_none()
            && f.end_at.is_none();
        // Tags with at most a date window: answered from taggables_task_tag
        // alone (the tag rows carry task and calldate, migrations 0011/0012).
        let tags_and_window = !f.tags.is_empty()
            && f.id.is_none()
            && f.levels.is_empty()
            && f.keyword.is_none()
            && f.rounds.is_none()
            && f.bill_ms.is_none();
        let tag_window = |q: &mut String, a: &mut Vec<Arg>| {
            if let Some(s) = &f.start_at {
                q.push_str(" AND tg.calldate >= ?");
                a.push(Arg::S(s.clone()));
            }
            if let Some(e) = &f.end_at {
                q.push_str(" AND tg.calldate <= ?");
                a.push(Arg::S(e.clone()));
            }
        };
        let whole_secs = |(a, b): (i64, i64)| (a % 1000 == 0 && b % 1000 == 0).then_some((a / 1000, b / 1000));
        // Score ranges alone, or a rounds range alone: counted from
        // record_facet_counts (written with the records like record_counts,
        // migration 0013) instead of up to a million index entries (two
        // score ranges over 600k of 1M records: 87 ms p50 over HTTP).
        let only_facets = f.id.is_none()
            && f.keyword.is_none()
            && f.start_at.is_none()
            && f.end_at.is_none()
            && f.bill_ms.is_none()
            && f.tags.is_empty();
        let facet = match (only_facets, &f.levels[..], f.rounds) {
            (true, [], Some(r)) => Some((FACET_ROUNDS, vec![r])),
            (true, [_, ..], None) => Some((FACET_SCORE, f.levels.clone())),
            _ => None,
        };
        // SUM is NUMERIC / DECIMAL on PostgreSQL and MySQL.
        let int = if self.backend == super::Backend::MySql { "SIGNED" } else { "BIGINT" };
        let (count_q, count_args) = if no_range
            && f.tags.is_empty()
            && f.bill_ms.is_none_or(|b| whole_secs(b).is_some())
        {
            // No filter, or talk time in whole seconds (as the API sends
            // it): a sum over record_counts (written with the records,
            // exact; migration 0011) instead of counting up to every record
            // of the task (1M: 69–71 ms p99).
            let mut q = format!("SELECT CAST(COALESCE(SUM(records), 0) AS {int}) FROM record_counts WHERE task_id = ?");
            let mut a = vec![Arg::S(f.task_id.clone())];
            if let Some((lo, hi)) = f.bill_ms.and_then(whole_secs) {
                q.push_str(" AND bill_s >= ? AND bill_s < ?");
                a.extend([Arg::I(lo), Arg::I(hi)]);
            }
            (q, a)
        } else if let Some((facet, ranges)) = facet {
            let ors: Vec<&str> = ranges.iter().map(|_| "(facet_value >= ? AND facet_value < ?)").collect();
            let q = format!(
                "SELECT CAST(COALESCE(SUM(records), 0) AS {int}) FROM record_facet_counts WHERE task_id = ? AND facet = ? AND ({})",
                ors.join(" OR ")
            );
            let mut a = vec![Arg::S(f.task_id.clone()), Arg::I(facet)];
            a.extend(ranges.iter().flat_map(|(lo, hi)| [Arg::I(*lo), Arg::I(*hi)]));
            (q, a)
        } else if let ([tag], true, None, None) = (f.tags.as_slice(), tags_and_window, &f.start_at, &f.end_at) {
            // One tag, no window: a sum over record_tag_counts (0013).
            let q = format!(
                "SELECT CAST(COALESCE(SUM(records), 0) AS {int}) FROM record_tag_counts WHERE task_id = ? AND tag_id = ?"
            );
            (q, vec![Arg::S(f.task_id.clone()), Arg::S(tag.clone())])
        } else if tags_and_window {
            // Tags (and a window): counted in taggables_task_tag, not by
            // probing it for each of the task's records (1M records, one tag
            // on 100k: 316 → 37 ms p99, docs/bench-store.md). The primary
            // key (taggable_id, tag_id) makes one tag's rows distinct records.
            let what = if f.tags.len() == 1 { "COUNT(*)" } else { "COUNT(DISTINCT tg.taggable_id)" };
            let mut q = format!(
                "SELECT {what} FROM taggables tg WHERE tg.task_id = ? AND tg.taggable_type = 'record' AND tg.tag_id IN ({})",
                placeholders(f.tags.len())
            );
            let mut a = vec![Arg::S(f.task_id.clone())];
            a.extend(f.tags.iter().map(|t| Arg::S(t.clone())));
            tag_window(&mut q, &mut a);
            (q, a)
        } else {
            (format!("SELECT COUNT(*) FROM records r WHERE {cond}"), args.clone())
        };
        // Ranges combined (with or without a window) have no count table:
        // the in-memory index answers them when it matches the task's
        // current total, else the COUNT(*) above does.
        let indexed = self.counts.enabled() && count_q.starts_with("SELECT COUNT(*) FROM records") && answerable(f);
        let order = "ORDER BY r.calldate DESC, r.id DESC";
        let offset = (f.page.max(1) - 1) * f.per_page;
        let count = async {
            let mut build = None;
            if indexed {
                match self.indexed_count(f).await? {
                    Indexed::Counted(n) => return Ok(n),
                    Indexed::Miss(b) => build = b,
                }
            }
            let r = bind_args(sqlx::query(self.sql(&count_q)), &count_args).fetch_one(self.pool()).await;
            // The build starts once this count is done, not beside it: both
            // read the whole window, and the request waits for the count.
            if let Some(b) = build {
                b.start(self);
            }
            Ok::<i64, StoreError>(r?.try_get(0)?)
        };
        // The page is planned for its actual values every time (an unnamed
        // statement): a cached generic plan can't tell how many rows the
        // ranges match, estimates one, and sorts every match of the window
        // (on PostgreSQL a top-N sort over thousands of heap rows, 57 ms,
        // instead of reading the index backwards until the page is full,
        // 1–2 ms). Planning costs well under a millisecond.
        let page = |q: String, args: Vec<Arg>| async move {
            Ok::<Vec<AnyRow>, StoreError>(
                bind_args(sqlx::query(self.sql(&q)).persistent(false), &args)
                    .bind(f.per_page)
                    .bind(offset)
                    .fetch_all(self.pool())
                    .await?,
            )
        };
        // A deep page (the seeds page by number, so OFFSET it is) finds its
        // ids first, so the rows it skips are read from the index alone,
        // not fetched one by one from the table (page 1000 of 1M records:
        // 15,000 heap fetches).
        let by_date = if offset >= DEEP_OFFSET {
            format!(
                "SELECT r.* FROM records r JOIN (SELECT r.id FROM records r WHERE {cond} {order} LIMIT ? OFFSET ?) p ON r.id = p.id {order}"
            )
        } else {
            format!("SELECT r.* FROM records r WHERE {cond} {order} LIMIT ? OFFSET ?")
        };
        if self.backend == super::Backend::Postgres && (f.keyword.is_some() || !f.tags.is_empty()) {
            // A keyword or tags are conditions records_api_list can't check:
            // reading it backwards by date, PostgreSQL fetches each record
            // (or probes its tags) until the page is full, hoping matches
            // are spread over the dates. A number prefix is a stretch of an
            // imported list, called on a few days: 870,000 rows read for one
            // page of a 10,000-record prefix (452 ms p99). So the exact count
            // runs first (it is cheap for these filters), and when few
            // records match, the page sorts just them: the MATERIALIZED CTE
            // is planned on its own (the callee or tag index), so the date
            // order can't pull it back to the date index.
            let total = count.await?;
            if total <= offset {
                return Ok((Vec::new(), total));
            }
            if let ([tag], true) = (f.tags.as_slice(), tags_and_window) {
                // One tag (and a window): its rows in taggables_task_tag are
                // in date order (they carry the record's calldate, migration
                // 0012), so the page reads the newest of them and fetches
                // just their records: 0.5 ms instead of reading records
                // backwards by date and probing each one's tags (275–300 ms
                // at 1M records when the newest records lacked the tag). With
                // other filters too the planner misjudges this join (hash
                // joins over the whole task, 0.5 s), so they keep the paths
                // below.
                let mut q = "SELECT r.* FROM taggables tg JOIN records r ON r.id = tg.taggable_id \
                     WHERE tg.task_id = ? AND tg.tag_id = ? AND tg.taggable_type = 'record' AND r.task_id = ?"
                    .to_string();
                let mut a = vec![Arg::S(f.task_id.clone()), Arg::S(tag.clone()), Arg::S(f.task_id.clone())];
                tag_window(&mut q, &mut a);
                q.push_str(" ORDER BY tg.calldate DESC, tg.taggable_id DESC LIMIT ? OFFSET ?");
                return Ok((maps(&page(q, a).await?), total));
            }
            if total <= FEW_MATCHES {
                let q = format!(
                    "WITH m AS MATERIALIZED (SELECT r.id, r.calldate FROM records r WHERE {cond}) \
                     SELECT r.* FROM records r JOIN (SELECT id, calldate FROM m ORDER BY calldate DESC, id DESC LIMIT ? OFFSET ?) p ON r.id = p.id {order}"
                );
                return Ok((maps(&page(q, args.clone()).await?), total));
            }
            return Ok((maps(&page(by_date, args.clone()).await?), total));
        }
        // The exact total and the page on two pooled connections at once:
        // the answer waits for the slower of the two, not for both in turn.
        let (total, rows) = tokio::try_join!(count, page(by_date, args.clone()))?;
        Ok((maps(&rows), total))
    }

    /// Send `query_done_task_phones` totals of combined range filters to
    /// an in-memory index of each big task's records: up to `budget_rows`
    /// records in all (24 bytes each; 0: off), tasks of at least `min_rows`.
    pub fn configure_count_index(&self, budget_rows: usize, min_rows: usize) {
        self.counts.configure(budget_rows, min_rows);
    }

    /// Whether `task` has an in-memory count index (for tests and benches).
    pub fn count_index_ready(&self, task: &str) -> bool {
        self.counts.is_ready(task)
    }

    /// Totals answered by the in-memory count index so far.
    pub fn count_index_hits(&self) -> u64 {
        self.counts.hits()
    }

    /// `f`'s total from the task's in-memory index, if it holds exactly the
    /// task's records now; else a due build, to start after the SQL count.
    async fn indexed_count(&self, f: &RecordFilter) -> Result<Indexed<'_>, StoreError> {
        let int = if self.backend == super::Backend::MySql { "SIGNED" } else { "BIGINT" };
        let q = format!("SELECT CAST(COALESCE(SUM(records), 0) AS {int}) FROM record_counts WHERE task_id = ?");
        // The view first, then the total: see CountIndex::view.
        let view = self.counts.view(&f.task_id);
        let total: i64 = sqlx::query(self.sql(&q)).bind(&f.task_id).fetch_one(self.pool()).await?.try_get(0)?;
        if let Some(v) = view.filter(|v| i64::try_from(v.len()).is_ok_and(|n| n == total)) {
            return Ok(match v.count(f) {
                Some(n) => {
                    self.counts.hit(&f.task_id);
                    Indexed::Counted(n)
                }
                None => Indexed::Miss(None),
            });
        }
        Ok(match self.counts.lookup(&f.task_id, total) {
            // The index changed since the view (this node wrote meanwhile):
            // this total is counted in SQL.
            Lookup::Hit(_) => Indexed::Miss(None),
            Lookup::Miss { build } => {
                Indexed::Miss(build.then(|| DueBuild { index: &self.counts, task: Some(f.task_id.clone()) }))
            }
        })
    }

    /// A record whose task is in scope; `task_id` narrows it to one task.
    pub async fn record_in_scope(
        &self,
        record_id: &str,
        task_id: Option<&str>,
        scope: &Scope,
    ) -> Result<Option<Map<String, Value>>, StoreError> {
        let q = format!(
            "SELECT r.* FROM records r JOIN autodialer_task t ON t.uuid = r.task_id WHERE r.id = ? AND t.deleted_at IS NULL AND t.user_id IN ({}){}",
            scope.placeholders(),
            if task_id.is_some() { " AND r.task_id = ?" } else { "" }
        );
        let mut query = bind_all!(sqlx::query(self.sql(&q)).bind(record_id), &scope.users);
        if let Some(t) = task_id {
            query = query.bind(t.to_string());
        }
        Ok(query.fetch_optional(self.pool()).await?.as_ref().map(row_map))
    }

    /// Set `read_at` on the first read; returns the row's `read_at`.
    pub async fn mark_read(&self, record_id: &str) -> Result<String, StoreError> {
        let now = now_str();
        sqlx::query(self.sql("UPDATE records SET read_at = ?, updated_at = ? WHERE id = ? AND read_at IS NULL"))
            .bind(&now)
            .bind(&now)
            .bind(record_id)
            .execute(self.pool())
            .await?;
        Ok(now)
    }

    /// Detail rows of a record in sequence order.
    pub async fn record_details(&self, record_id: &str) -> Result<Vec<Map<String, Value>>, StoreError> {
        let rows = sqlx::query(self.sql("SELECT * FROM record_details WHERE record_id = ? ORDER BY sequence"))
            .bind(record_id)
            .fetch_all(self.pool())
            .await?;
        Ok(maps(&rows))
    }

    /// Contents of utterances, by utterance id.
    pub async fn contents_of(
        &self,
        utterance_ids: &[String],
    ) -> Result<HashMap<String, Vec<Map<String, Value>>>, StoreError> {
        let rows = self.rows_in(
            "SELECT id, utterance_id, file_id, sort, status, translate_text, wav_second FROM utterance_contents WHERE utterance_id IN ({}) ORDER BY utterance_id, sort, id",
            utterance_ids,
        )
        .await?;
        Ok(group_rows(&rows, |m| str_key(m, "utterance_id", false)))
    }

    /// Tags on the given taggables: taggable id → tag rows, each with its
    /// `pivot` and the `tag_groups` it belongs to.
    pub async fn tags_of(&self, taggables: &[String]) -> Result<HashMap<String, Vec<Map<String, Value>>>, StoreError> {
        let mut out: HashMap<String, Vec<Map<String, Value>>> = HashMap::new();
        let rows = self.rows_in(
            "SELECT tg.taggable_id, tg.tag_id, tg.created_at AS pivot_created_at, tg.updated_at AS pivot_updated_at, t.id, t.name, t.description, t.color, t.user_id, t.status, t.created_at, t.updated_at FROM taggables tg JOIN tags t ON t.id = tg.tag_id WHERE tg.taggable_id IN ({}) ORDER BY tg.taggable_id, tg.created_at, t.id",
            taggables,
        )
        .await?;
        let mut tag_ids: Vec<String> = Vec::new();
        let mut seen = HashSet::new();
        let mut raw = Vec::with_capacity(rows.len());
        for r in &rows {
            let m = row_map(r);
            let tid = m.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
            if seen.insert(tid.clone()) {
                tag_ids.push(tid);
            }
            raw.push(m);
        }
        let groups = self.groups_of_tags(&tag_ids).await?;
        for mut m in raw {
            let owner = str_key(&mut m, "taggable_id", true);
            let tag_id = m.remove("tag_id").unwrap_or(Value::Null);
            let pc = m.remove("pivot_created_at").unwrap_or(Value::Null);
            let pu = m.remove("pivot_updated_at").unwrap_or(Value::Null);
            let status = m.get("status").and_then(Value::as_i64).unwrap_or(1) != 0;
            m.insert("status".into(), Value::Bool(status));
            let mut pivot = Map::new();
            pivot.insert("taggable_id".into(), Value::String(owner.clone()));
            pivot.insert("tag_id".into(), tag_id.clone());
            pivot.insert("created_at".into(), pc);
            pivot.insert("updated_at".into(), pu);
            m.insert("pivot".into(), Value::Object(pivot));
            let gs = tag_id.as_str().and_then(|t| groups.get(t)).cloned().unwrap_or_default();
            m.insert("tag_groups".into(), Value::Array(gs.into_iter().map(Value::Object).collect()));
            out.entry(owner).or_default().push(m);
        }
        Ok(out)
    }

    async fn groups_of_tags(&self, tag_ids: &[String]) -> Result<HashMap<String, Vec<Map<String, Value>>>, StoreError> {
        let rows = self.rows_in(
            "SELECT x.tag_id AS for_tag, g.id, g.user_id, g.name, g.created_at, g.updated_at, g.tag_scene_id FROM tag_tag_group x JOIN tag_groups g ON g.id = x.tag_group_id WHERE x.tag_id IN ({}) ORDER BY x.tag_id, g.id",
            tag_ids,
        )
        .await?;
        Ok(group_rows(&rows, |m| str_key(m, "for_tag", true)))
    }

    /// Levels by id.
    pub async fn levels_by_id(&self, ids: &[String]) -> Result<HashMap<String, Map<String, Value>>, StoreError> {
        let rows = self.rows_in("SELECT id, name, alias, color FROM levels WHERE id IN ({})", ids).await?;
        Ok(rows_by(&rows, |m| m.get("id").and_then(Value::as_str).unwrap_or_default().to_string()))
    }

    /// Regions (seed city / province objects) by id.
    pub async fn regions_by_id(&self, ids: &[i64]) -> Result<HashMap<i64, Map<String, Value>>, StoreError> {
        let ids: Vec<i64> = ids.iter().copied().filter(|i| *i > 0).collect::<HashSet<_>>().into_iter().collect();
        let rows = self
            .rows_in(
                "SELECT id, pid, city, area_code, post_code, created_at, updated_at FROM regions WHERE id IN ({})",
                &ids,
            )
            .await?;
        Ok(rows_by(&rows, |m| m.get("id").and_then(Value::as_i64).unwrap_or_default()))
    }

    /// A script group row (seed `group`).
    pub async fn script_group_row(&self, group_id: i64) -> Result<Option<Map<String, Value>>, StoreError> {
        let r = sqlx::query(self.sql(
            "SELECT id, name, user_id, debug, deleted_at, created_at, updated_at, link_word_group_id, tag_scene_id FROM script_groups WHERE id = ?",
        ))
        .bind(group_id)
        .fetch_optional(self.pool())
        .await?;
        Ok(r.as_ref().map(row_map))
    }

    /// Main-flow utterances of a group (seed `utterances`).
    pub async fn main_flow_utterances(&self, group_id: i64) -> Result<Vec<Map<String, Value>>, StoreError> {
        let rows =
            sqlx::query(self.sql(
                "SELECT * FROM utterances WHERE group_id = ? AND word_class = 16 AND deleted_at IS NULL ORDER BY id",
            ))
            .bind(group_id)
            .fetch_all(self.pool())
            .await?;
        Ok(maps(&rows))
    }

    /// Number of a task's numbers and how many have been dealt with.
    pub async fn task_number_progress(&self, task_id: &str) -> Result<(i64, i64), StoreError> {
        let r = sqlx::query(self.sql(
            "SELECT COUNT(*) AS total, COUNT(CASE WHEN status <> 0 THEN 1 END) AS progress FROM autodialer_number WHERE task_id = ?",
        ))
        .bind(task_id)
        .fetch_one(self.pool())
        .await?;
        Ok((r.try_get("total")?, r.try_get("progress")?))
    }

    // -------------------------------------------------------------- numbers

    /// One page of a task's numbers and the total matching `f`.
    pub async fn query_numbers(&self, f: &NumberFilter) -> Result<(Vec<Map<String, Value>>, i64), StoreError> {
        let mut wh = vec!["n.task_id = ?".to_string()];
        let mut args = vec![Arg::S(f.task_id.clone())];
        if !f.status.is_empty() {
            wh.push(format!("n.status IN ({})", placeholders(f.status.len())));
            args.extend(f.status.iter().map(|s| Arg::I(*s)));
        }
        if let Some(k) = &f.keyword {
            if k.chars().all(|c| c.is_ascii_digit()) {
                wh.push("n.number >= ? AND n.number < ?".into());
                args.push(Arg::S(k.clone()));
                args.push(Arg::S(format!("{k}~")));
            } else {
                wh.push("n.number LIKE ?".into());
                args.push(Arg::S(format!("%{}%", k.replace(['%', '_'], ""))));
            }
        }
        if !f.operators.is_empty() {
            wh.push(format!("n.operator IN ({})", placeholders(f.operators.len())));
            args.extend(f.operators.iter().map(|s| Arg::I(*s)));
        }
        let cond = wh.join(" AND ");
        let total: i64 =
            bind_args(sqlx::query(self.sql(&format!("SELECT COUNT(*) FROM autodialer_number n WHERE {cond}"))), &args)
                .fetch_one(self.pool())
                .await?
                .try_get(0)?;
        let q = format!(
            "SELECT n.id, n.number, n.status, n.status_str, n.callid, n.calldate, n.bill, n.duration, n.hangupcause, n.hangupdate, n.answerdate, n.is_blacklist, n.province_id, n.city_id, n.operator FROM autodialer_number n WHERE {cond} ORDER BY n.id LIMIT ? OFFSET ?"
        );
        let rows = bind_args(sqlx::query(self.sql(&q)), &args)
            .bind(f.per_page)
            .bind((f.page.max(1) - 1) * f.per_page)
            .fetch_all(self.pool())
            .await?;
        Ok((maps(&rows), total))
    }

    /// Attempts of the given numbers, newest first, by number id.
    pub async fn call_histories(
        &self,
        number_ids: &[i64],
    ) -> Result<HashMap<i64, Vec<Map<String, Value>>>, StoreError> {
        let rows = self.rows_in(
            "SELECT id, user_id, task_id, call_id, number_id, number, call_time, duration, hangup_cause, hangup_code, bill, call_status, status, record_file, calling_number, province_id, city_id, operator, created_at, updated_at FROM auto_call_histories WHERE number_id IN ({}) ORDER BY number_id, id DESC",
            number_ids,
        )
        .await?;
        Ok(group_rows(&rows, |m| m.get("number_id").and_then(Value::as_i64).unwrap_or_default()))
    }

    // ------------------------------------------------- levels, tags, blacklist

    pub async fn list_levels(
        &self,
        tenant: &str,
        group_id: Option<i64>,
    ) -> Result<Vec<Map<String, Value>>, StoreError> {
        let fam = self.family(tenant).await?;
        let q = format!(
            "SELECT id, group_id, user_id, name, alias, color, min_score, max_score, intention_results, created_at, updated_at FROM levels WHERE user_id IN ({}){} ORDER BY group_id, min_score",
            placeholders(fam.len()),
            if group_id.is_some() { " AND group_id = ?" } else { "" }
        );
        let mut query = bind_all!(sqlx::query(self.sql(&q)), &fam);
        if let Some(g) = group_id {
            query = query.bind(g);
        }
        Ok(maps(&query.fetch_all(self.pool()).await?))
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn create_level(
        &self,
        user_id: &str,
        group_id: Option<i64>,
        name: &str,
        alias: Option<&str>,
        color: Option<&str>,
        min_score: i64,
        max_score: i64,
        intention_results: Option<i64>,
    ) -> Result<String, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_str();
        sqlx::query(self.sql(
            "INSERT INTO levels (id, group_id, user_id, name, alias, color, min_score, max_score, intention_results, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(&id)
        .bind(group_id)
        .bind(user_id)
        .bind(name)
        .bind(alias)
        .bind(color)
        .bind(min_score)
        .bind(max_score)
        .bind(intention_results)
        .bind(&now)
        .bind(&now)
        .execute(self.pool())
        .await?;
        Ok(id)
    }

    /// Delete rows of `table` (levels, tags, tag_groups, dial_time_groups)
    /// owned by the tenant family. Returns false when none matched.
    pub async fn delete_owned(&self, table: OwnedTable, id: &str, tenant: &str) -> Result<bool, StoreError> {
        let fam = self.family(tenant).await?;
        let q = format!("DELETE FROM {} WHERE id = ? AND user_id IN ({})", table.name(), placeholders(fam.len()));
        let r = bind_all!(sqlx::query(self.sql(&q)).bind(id), &fam).execute(self.pool()).await?;
        Ok(r.rows_affected() > 0)
    }

    /// Whether a row of `table` with `id` belongs to the tenant family.
    pub async fn owned(&self, table: OwnedTable, id: &str, tenant: &str) -> Result<bool, StoreError> {
        let fam = self.family(tenant).await?;
        let q =
            format!("SELECT 1 AS x FROM {} WHERE id = ? AND user_id IN ({})", table.name(), placeholders(fam.len()));
        Ok(bind_all!(sqlx::query(self.sql(&q)).bind(id), &fam).fetch_optional(self.pool()).await?.is_some())
    }

    /// Tags of a tenant family, each with its tag groups.
    pub async fn list_tags(&self, tenant: &str) -> Result<Vec<Map<String, Value>>, StoreError> {
        let fam = self.family(tenant).await?;
        let q = format!(
            "SELECT id, name, description, color, user_id, status, created_at, updated_at FROM tags WHERE user_id IN ({}) ORDER BY created_at, id",
            placeholders(fam.len())
        );
        let rows = bind_all!(sqlx::query(self.sql(&q)), &fam).fetch_all(self.pool()).await?;
        let mut tags = maps(&rows);
        let ids: Vec<String> =
            tags.iter().filter_map(|t| t.get("id").and_then(Value::as_str).map(String::from)).collect();
        let groups = self.groups_of_tags(&ids).await?;
        for t in &mut tags {
            let status = t.get("status").and_then(Value::as_i64).unwrap_or(1) != 0;
            t.insert("status".into(), Value::Bool(status));
            let id = t.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
            let gs = groups.get(&id).cloned().unwrap_or_default();
            t.insert("tag_groups".into(), Value::Array(gs.into_iter().map(Value::Object).collect()));
        }
        Ok(tags)
    }

    pub async fn list_tag_groups(&self, tenant: &str) -> Result<Vec<Map<String, Value>>, StoreError> {
        let fam = self.family(tenant).await?;
        let q = format!(
            "SELECT id, user_id, name, created_at, updated_at, tag_scene_id FROM tag_groups WHERE user_id IN ({}) ORDER BY created_at, id",
            placeholders(fam.len())
        );
        Ok(maps(&bind_all!(sqlx::query(self.sql(&q)), &fam).fetch_all(self.pool()).await?))
    }

    pub async fn create_tag_group(
        &self,
        user_id: &str,
        name: &str,
        tag_scene_id: Option<&str>,
    ) -> Result<String, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_str();
        sqlx::query(self.sql(
            "INSERT INTO tag_groups (id, user_id, name, tag_scene_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
        ))
        .bind(&id)
        .bind(user_id)
        .bind(name)
        .bind(tag_scene_id)
        .bind(&now)
        .bind(&now)
        .execute(self.pool())
        .await?;
        Ok(id)
    }

    /// Create a tag in the given groups (the caller checked they are the tenant's).
    pub async fn create_tag(
        &self,
        user_id: &str,
        name: &str,
        description: Option<&str>,
        color: Option<&str>,
        groups: &[String],
    ) -> Result<String, StoreError> {
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_str();
        let mut tx = self.begin_write().await?;
        sqlx::query(self.sql(
            "INSERT INTO tags (id, user_id, name, description, color, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?)",
        ))
        .bind(&id)
        .bind(user_id)
        .bind(name)
        .bind(description)
        .bind(color)
        .bind(&now)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
        for g in groups {
            sqlx::query(self.sql("INSERT INTO tag_tag_group (tag_id, tag_group_id) VALUES (?, ?)"))
                .bind(&id)
                .bind(g)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(id)
    }

    /// A page of the tenant's blacklist and its size.
    pub async fn list_blacklist(
        &self,
        tenant: &str,
        page: i64,
        per_page: i64,
    ) -> Result<(Vec<Map<String, Value>>, i64), StoreError> {
        let fam = self.family(tenant).await?;
        let ph = placeholders(fam.len());
        let total: i64 =
            bind_all!(sqlx::query(self.sql(&format!("SELECT COUNT(*) FROM blacklists WHERE user_id IN ({ph})"))), &fam)
                .fetch_one(self.pool())
                .await?
                .try_get(0)?;
        let q = format!(
            "SELECT id, user_id, number, reason, created_at FROM blacklists WHERE user_id IN ({ph}) ORDER BY id DESC LIMIT ? OFFSET ?"
        );
        let rows = bind_all!(sqlx::query(self.sql(&q)), &fam)
            .bind(per_page)
            .bind((page.max(1) - 1) * per_page)
            .fetch_all(self.pool())
            .await?;
        Ok((maps(&rows), total))
    }

    /// Blacklist numbers for `owner`; numbers of the family's tasks still
    /// waiting are flagged too, so the dialer skips them. Returns (added,
    /// already listed).
    pub async fn blacklist_add(
        &self,
        owner: &str,
        tenant: &str,
        numbers: &[String],
        reason: &str,
    ) -> Result<(u64, u64), StoreError> {
        let fam = self.family(tenant).await?;
        let already = self.blacklisted_among(tenant, numbers).await?;
        let now = now_str();
        let q = format!(
            "{} INTO blacklists (user_id, number, reason, created_at) VALUES (?, ?, ?, ?){}",
            self.insert_ignore(),
            self.on_conflict_nothing()
        );
        let mut added = 0;
        let mut tx = self.begin_write().await?;
        for n in numbers.iter().filter(|n| !already.contains(*n)) {
            added += sqlx::query(self.sql(&q))
                .bind(owner)
                .bind(n)
                .bind(reason)
                .bind(&now)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        for chunk in numbers.chunks(200) {
            let upd = format!(
                "UPDATE autodialer_number SET is_blacklist = 1, updated_at = ? WHERE status = 0 AND number IN ({}) AND task_id IN (SELECT uuid FROM autodialer_task WHERE user_id IN ({}))",
                placeholders(chunk.len()),
                placeholders(fam.len())
            );
            bind_all!(bind_all!(sqlx::query(self.sql(&upd)).bind(&now), chunk), &fam).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok((added, already.len() as u64))
    }

    /// Remove a number from the tenant family's blacklist.
    pub async fn remove_blacklist(&self, tenant: &str, number: &str) -> Result<bool, StoreError> {
        let fam = self.family(tenant).await?;
        let q = format!("DELETE FROM blacklists WHERE number = ? AND user_id IN ({})", placeholders(fam.len()));
        Ok(bind_all!(sqlx::query(self.sql(&q)).bind(number), &fam).execute(self.pool()).await?.rows_affected() > 0)
    }

    /// Which of `numbers` the tenant family has blacklisted.
    pub async fn blacklisted_among(&self, tenant: &str, numbers: &[String]) -> Result<HashSet<String>, StoreError> {
        let mut out = HashSet::new();
        if numbers.is_empty() {
            return Ok(out);
        }
        let fam = self.family(tenant).await?;
        let q = format!(
            "SELECT number FROM blacklists WHERE user_id IN ({}) AND number IN ({})",
            placeholders(fam.len()),
            placeholders(numbers.len())
        );
        let rows = bind_all!(bind_all!(sqlx::query(self.sql(&q)), &fam), numbers).fetch_all(self.pool()).await?;
        for r in rows {
            out.insert(r.try_get("number")?);
        }
        Ok(out)
    }

    pub async fn list_dial_time_groups(&self, tenant: &str) -> Result<Vec<Map<String, Value>>, StoreError> {
        let fam = self.family(tenant).await?;
        let q = format!(
            "SELECT id, user_id, name, timezone, weekdays, time_ranges, exclude_dates, created_at, updated_at FROM dial_time_groups WHERE user_id IN ({}) ORDER BY created_at, id",
            placeholders(fam.len())
        );
        let mut rows = maps(&bind_all!(sqlx::query(self.sql(&q)), &fam).fetch_all(self.pool()).await?);
        for m in &mut rows {
            for k in ["weekdays", "time_ranges", "exclude_dates"] {
                if let Some(Value::String(s)) = m.get(k) {
                    let v = serde_json::from_str(s).unwrap_or(Value::Null);
                    m.insert(k.into(), v);
                }
            }
        }
        Ok(rows)
    }
}

/// Tables whose rows belong to one account (`user_id`) and are deleted by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnedTable {
    Levels,
    Tags,
    TagGroups,
    DialTimeGroups,
}

impl OwnedTable {
    fn name(self) -> &'static str {
        match self {
            OwnedTable::Levels => "levels",
            OwnedTable::Tags => "tags",
            OwnedTable::TagGroups => "tag_groups",
            OwnedTable::DialTimeGroups => "dial_time_groups",
        }
    }
}

/// `start` as the seeds spell it.
pub fn start_str(start: i64) -> &'static str {
    match start {
        1 => "进行中",
        2 => "已停止",
        _ => "暂停",
    }
}

#[derive(Debug, Clone)]
enum Arg {
    S(String),
    I(i64),
}

fn bind_args<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    args: &[Arg],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for a in args {
        q = match a {
            Arg::S(s) => q.bind(s.clone()),
            Arg::I(i) => q.bind(*i),
        };
    }
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_and_placeholders() {
        assert_eq!(last_page(0, 15), 1);
        assert_eq!(last_page(15, 15), 1);
        assert_eq!(last_page(16, 15), 2);
        assert_eq!(placeholders(3), "?, ?, ?");
        assert_eq!(placeholders(0), "?");
        assert_eq!(token_hash("a").len(), 64);
    }
}
