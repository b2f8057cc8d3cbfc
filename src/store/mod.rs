//! Store: the seeds' tables behind one API, whatever the backend.
//!
//! Queries are written once with `?` placeholders and run through sqlx's `Any`
//! driver; for PostgreSQL the placeholders are rewritten to `$n`. Times are
//! stored as `YYYY-MM-DD HH:MM:SS` strings exactly as the seeds show them, so
//! every backend sorts and compares them the same way.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AnyPool, Row};

use crate::dialogue::Script;

pub mod api;
pub mod call;
pub mod count_index;
pub mod dialer;
pub mod limits;
pub mod number;
pub mod outbox;

pub use call::{CallWrite, DetailWrite};
pub use number::{normalize_number, NumberError};

use limits::{chars, check, check_opt};

/// Store errors name what failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("unsupported database URL {0:?}: use sqlite://, postgres:// or mysql://")]
    UnsupportedUrl(String),
    #[error("cannot open database {url}: {source}")]
    Connect { url: String, source: sqlx::Error },
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database schema version {version} is newer than this voxdial knows; upgrade voxdial (this binary knows versions up to {known})")]
    SchemaTooNew { version: i64, known: i64 },
    #[error("{table}.{column} is too long: {len} {unit}, at most {max} allowed")]
    TooLong { table: &'static str, column: &'static str, len: usize, max: usize, unit: &'static str },
    #[error("{table}.{column} contains a NUL character at byte {byte}")]
    NulChar { table: &'static str, column: &'static str, byte: usize },
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("task {0} not found")]
    TaskNotFound(String),
    #[error("invalid data: {0}")]
    Invalid(String),
    #[error("cannot create data directory {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// SQLite's `synchronous` setting, from the URL's own `synchronous=`
/// parameter (taken out before sqlx parses the URL, which refuses unknown
/// parameters).
///
/// Why FULL by default: in WAL mode NORMAL syncs the log only at checkpoints,
/// so a power loss or an OS crash can roll back transactions that had
/// committed: a dial claim (the number is then dialled again), a finalized
/// call whose journal segment is already deleted (the record is lost). FULL
/// syncs the log at every commit; the callers batch their writes, so it
/// costs one `fdatasync` per batch. `synchronous=normal` trades that
/// guarantee for speed where a machine crash may lose the last commits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqliteSync {
    Off,
    Normal,
    Full,
    Extra,
}

impl SqliteSync {
    fn pragma(self) -> &'static str {
        match self {
            SqliteSync::Off => "PRAGMA synchronous = OFF",
            SqliteSync::Normal => "PRAGMA synchronous = NORMAL",
            SqliteSync::Full => "PRAGMA synchronous = FULL",
            SqliteSync::Extra => "PRAGMA synchronous = EXTRA",
        }
    }

    /// Remove `synchronous=…` from an SQLite URL's query and return it
    /// (FULL when absent).
    fn take_from(url: &mut String) -> Result<SqliteSync, StoreError> {
        let Some((base, query)) = url.split_once('?') else { return Ok(SqliteSync::Full) };
        let mut sync = SqliteSync::Full;
        let mut kept = Vec::new();
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            if !key.eq_ignore_ascii_case("synchronous") {
                kept.push(pair);
                continue;
            }
            sync = match value.to_ascii_lowercase().as_str() {
                "off" | "0" => SqliteSync::Off,
                "normal" | "1" => SqliteSync::Normal,
                "full" | "2" => SqliteSync::Full,
                "extra" | "3" => SqliteSync::Extra,
                _ => {
                    return Err(StoreError::Invalid(format!(
                        "unknown value {value:?} for `synchronous` in the SQLite URL: use full (the default), normal, extra or off"
                    )))
                }
            };
        }
        let rebuilt = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
        *url = rebuilt;
        Ok(sync)
    }
}

/// Which SQL dialect the pool speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    MySql,
}

impl Backend {
    pub fn from_url(url: &str) -> Result<Backend, StoreError> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Ok(Backend::Postgres)
        } else if url.starts_with("mysql:") || url.starts_with("mariadb:") {
            Ok(Backend::MySql)
        } else {
            Err(StoreError::UnsupportedUrl(url.to_string()))
        }
    }
}

/// Local time formatted as the seeds store it.
pub fn now_str() -> String {
    chrono::Local::now().format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `t` seconds from now, formatted like [`now_str`].
pub fn in_secs(t: i64) -> String {
    (chrono::Local::now() + chrono::Duration::seconds(t)).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A shared handle to the database.
#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    url: String,
    /// PostgreSQL only: typed connections for what `Any` can't do, `COPY`
    /// of batched calls (`Store::write_calls`); connected on first use.
    pg: Option<sqlx::PgPool>,
    /// SQLite files only: typed connections for the batched call writes
    /// (`Store::write_calls`), which `Any` slows down with a copy and a
    /// conversion of every bound value; connected on first use.
    sqlite: Option<sqlx::SqlitePool>,
    /// Totals of combined range filters over big tasks (see
    /// [`count_index`]); off until [`Store::configure_count_index`].
    counts: std::sync::Arc<count_index::CountIndex>,
}

/// A task as the dialer needs it (seed `info.task`).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Task {
    pub uuid: String,
    pub name: String,
    pub start: i64,
    pub maximumcall: i64,
    pub call_per_second: f64,
    pub recycle_limit: i64,
    pub destination_extension: String,
    pub destination_dialplan: String,
    pub destination_context: String,
    pub dial_format: String,
    pub originate_variables: String,
    #[serde(rename = "_originate_timeout")]
    pub originate_timeout: i64,
    #[serde(rename = "_origination_caller_id_number")]
    pub origination_caller_id_number: String,
    pub user_id: String,
    pub group_id: i64,
    pub call_pause_second: i64,
    pub sort: i64,
    pub is_top: i64,
    /// 1: dial the numbers in random order instead of import order.
    #[serde(default)]
    pub random_assignment_number: i64,
    /// When every number is final: 1 finish the task (`start` = 2);
    /// 2 keep it running and dial numbers imported later.
    #[serde(default = "default_end_action")]
    pub end_action: i64,
}

fn default_end_action() -> i64 {
    1
}

impl Task {
    /// A running task with the seeds' defaults: one call at a time at one
    /// call per second, no redials, `robot XML default`, a 60 s originate
    /// timeout, no dial format (the node's default gateway is used).
    pub fn new(uuid: impl Into<String>, name: impl Into<String>, user_id: impl Into<String>, group_id: i64) -> Task {
        Task {
            uuid: uuid.into(),
            name: name.into(),
            start: 1,
            maximumcall: 1,
            call_per_second: 1.0,
            recycle_limit: 0,
            destination_extension: "robot".into(),
            destination_dialplan: "XML".into(),
            destination_context: "default".into(),
            dial_format: String::new(),
            originate_variables: String::new(),
            originate_timeout: 60,
            origination_caller_id_number: String::new(),
            user_id: user_id.into(),
            group_id,
            call_pause_second: 0,
            sort: 0,
            is_top: 0,
            random_assignment_number: 0,
            end_action: 1,
        }
    }
}

/// A number claimed for dialing.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub id: i64,
    pub task_id: String,
    pub number: String,
    pub attempts: i64,
    pub is_blacklist: bool,
    pub variables: BTreeMap<String, String>,
}

/// Outcome of a number import.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ImportReport {
    pub inserted: u64,
    pub duplicates: u64,
    pub blacklisted: u64,
}

impl Store {
    /// Open (creating an SQLite file if needed) without migrating.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let backend = Backend::from_url(url)?;
        let mut conn_url = url.to_string();
        let mut synchronous = SqliteSync::Full;
        if backend == Backend::Sqlite {
            synchronous = SqliteSync::take_from(&mut conn_url)?;
            let path = url.trim_start_matches("sqlite://").trim_start_matches("sqlite:");
            let path = path.split('?').next().unwrap_or(path);
            if let Some(parent) = Path::new(path).parent() {
                if !parent.as_os_str().is_empty() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| StoreError::Io { path: parent.display().to_string(), source: e })?;
                }
            }
            if !conn_url.contains("mode=") {
                conn_url.push_str(if conn_url.contains('?') { "&mode=rwc" } else { "?mode=rwc" });
            }
        }
        let max = if backend == Backend::Sqlite { 4 } else { 16 };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    match backend {
                        Backend::Sqlite => {
                            sqlx::query("PRAGMA busy_timeout = 10000").execute(&mut *conn).await?;
                            sqlx::query(synchronous.pragma()).execute(&mut *conn).await?;
                        }
                        // A value too long for its column, a NULL in a NOT
                        // NULL column or a bad number is an error on every
                        // table, never a warning with a truncated value.
                        Backend::MySql => {
                            sqlx::query(
                                "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'STRICT_ALL_TABLES', 'NO_ZERO_DATE', 'ERROR_FOR_DIVISION_BY_ZERO')",
                            )
                            .execute(&mut *conn)
                            .await?;
                        }
                        Backend::Postgres => {}
                    }
                    Ok(())
                })
            })
            .connect(&conn_url)
            .await
            .map_err(|e| StoreError::Connect { url: url.to_string(), source: e })?;
        if backend == Backend::Sqlite {
            sqlx::query("PRAGMA journal_mode = WAL").execute(&pool).await?;
        }
        let pg = match backend {
            Backend::Postgres => Some(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(8)
                    .connect_lazy(&conn_url)
                    .map_err(|e| StoreError::Connect { url: url.to_string(), source: e })?,
            ),
            Backend::Sqlite | Backend::MySql => None,
        };
        // Not for an in-memory database: a second pool would open another one.
        let memory = conn_url.contains(":memory:") || conn_url.contains("mode=memory");
        let sqlite = match backend {
            Backend::Sqlite if !memory => Some(
                sqlx::sqlite::SqlitePoolOptions::new()
                    .max_connections(2)
                    // A local file does not drop connections: no ping (a
                    // hand-off to the worker thread) before every batch.
                    .test_before_acquire(false)
                    .after_connect(move |conn, _| {
                        Box::pin(async move {
                            sqlx::query("PRAGMA busy_timeout = 10000").execute(&mut *conn).await?;
                            sqlx::query(synchronous.pragma()).execute(&mut *conn).await?;
                            Ok(())
                        })
                    })
                    .connect_lazy(&conn_url)
                    .map_err(|e| StoreError::Connect { url: url.to_string(), source: e })?,
            ),
            Backend::Sqlite | Backend::Postgres | Backend::MySql => None,
        };
        Ok(Store { pool, backend, url: url.to_string(), pg, sqlite, counts: Default::default() })
    }

    /// Open and bring the schema up to date. Refuses a database whose schema
    /// is newer than this binary knows.
    pub async fn open(url: &str) -> Result<Store, StoreError> {
        let s = Self::connect(url).await?;
        s.migrate().await?;
        Ok(s)
    }

    /// Bring the schema up to date (idempotent). A database holding a
    /// migration this binary doesn't know was migrated by a newer voxdial:
    /// refused with [`StoreError::SchemaTooNew`] and left untouched.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let known = self.schema_version_known();
        match self.migrator().run(&self.pool).await {
            Ok(()) => Ok(()),
            Err(sqlx::migrate::MigrateError::VersionMissing(version)) => {
                Err(StoreError::SchemaTooNew { version, known })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The schema version the database is at (`None`: never migrated).
    pub async fn schema_version(&self) -> Result<Option<i64>, StoreError> {
        match sqlx::query("SELECT MAX(version) AS v FROM _sqlx_migrations WHERE success = TRUE")
            .fetch_one(&self.pool)
            .await
        {
            Ok(r) => Ok(r.try_get::<Option<i64>, _>("v")?),
            // No bookkeeping table: nothing was ever migrated.
            Err(sqlx::Error::Database(_)) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// The highest schema version this binary ships for its backend.
    pub fn schema_version_known(&self) -> i64 {
        self.migrator().iter().map(|m| m.version).max().unwrap_or(0)
    }

    fn migrator(&self) -> sqlx::migrate::Migrator {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
            Backend::MySql => sqlx::migrate!("./migrations/mysql"),
        }
    }

    /// Begin a transaction that will write. On SQLite it takes the write
    /// lock at once (`BEGIN IMMEDIATE`): a deferred transaction that reads
    /// first and then writes fails with "database is locked" when another
    /// connection wrote in between, which `busy_timeout` can't wait out.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres | Backend::MySql => self.pool.begin().await?,
        })
    }

    /// `AVG(expr)` as a double on every backend: PostgreSQL's NUMERIC and
    /// MySQL's DECIMAL averages don't decode through `Any`.
    pub fn avg_f64(&self, expr: &str) -> String {
        match self.backend {
            Backend::Sqlite => format!("AVG(({expr}) * 1.0)"),
            Backend::Postgres => format!("CAST(AVG({expr}) AS DOUBLE PRECISION)"),
            Backend::MySql => format!("CAST(AVG({expr}) AS DOUBLE)"),
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Rewrite `?` placeholders for PostgreSQL. Every query text is built from
    /// string literals and backend-specific fragments, never from input, so it
    /// is asserted SQL-safe here; values always go through `bind`.
    pub fn sql(&self, q: &str) -> sqlx::AssertSqlSafe<String> {
        if self.backend != Backend::Postgres || !q.contains('?') {
            return sqlx::AssertSqlSafe(q.to_string());
        }
        let mut out = String::with_capacity(q.len() + 8);
        let mut n = 0;
        for c in q.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        sqlx::AssertSqlSafe(out)
    }

    /// `INSERT` that skips rows violating a unique key.
    pub fn insert_ignore(&self) -> &'static str {
        match self.backend {
            Backend::MySql => "INSERT IGNORE",
            Backend::Sqlite => "INSERT OR IGNORE",
            Backend::Postgres => "INSERT",
        }
    }

    /// Suffix for [`Self::insert_ignore`] on PostgreSQL.
    pub fn on_conflict_nothing(&self) -> &'static str {
        match self.backend {
            Backend::Postgres => " ON CONFLICT DO NOTHING",
            _ => "",
        }
    }

    pub async fn ensure_user(&self, id: &str, name: &str) -> Result<(), StoreError> {
        check("users", "id", id, chars(limits::ID))?;
        check("users", "name", name, chars(limits::NAME))?;
        let now = now_str();
        let q = format!(
            "{} INTO users (id, parent_id, type, name, created_at, updated_at) VALUES (?, NULL, 4, ?, ?, ?){}",
            self.insert_ignore(),
            self.on_conflict_nothing()
        );
        sqlx::query(self.sql(&q)).bind(id).bind(name).bind(&now).bind(&now).execute(&self.pool).await?;
        Ok(())
    }

    /// Store a script group with its utterances, contents, branches, levels
    /// and tags; returns the new group id.
    pub async fn save_script(&self, user_id: &str, script: &Script) -> Result<i64, StoreError> {
        let errs = script.validate();
        if !errs.is_empty() {
            let msg: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
            return Err(StoreError::Invalid(msg.join("; ")));
        }
        let now = now_str();
        let definition = serde_json::to_string(script).map_err(|e| StoreError::Invalid(e.to_string()))?;
        check("script_groups", "user_id", user_id, chars(limits::ID))?;
        check("script_groups", "name", &script.name, chars(limits::NAME))?;
        check_opt("script_groups", "description", script.description.as_deref(), limits::TEXT)?;
        check_opt("script_groups", "tag_scene_id", script.tag_scene_id.as_deref(), chars(limits::SCRIPT_ID))?;
        let mut tx = self.begin_write().await?;
        // The new id comes from the insert itself (RETURNING on PostgreSQL
        // and SQLite, LAST_INSERT_ID() on MySQL), never from MAX(id), which a
        // concurrent import could change.
        let ins = "INSERT INTO script_groups (user_id, name, description, tag_scene_id, definition, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)";
        let returning = self.backend != Backend::MySql;
        let q = if returning { format!("{ins} RETURNING id") } else { ins.to_string() };
        let query = sqlx::query(self.sql(&q))
            .bind(user_id)
            .bind(&script.name)
            .bind(script.description.clone())
            .bind(script.tag_scene_id.clone())
            .bind(&definition)
            .bind(&now)
            .bind(&now);
        let group_id: i64 = if returning {
            query.fetch_one(&mut *tx).await?.try_get("id")?
        } else {
            query
                .execute(&mut *tx)
                .await?
                .last_insert_id()
                .ok_or_else(|| StoreError::Invalid("the driver returned no id for the new script group".into()))?
        };
        // Ids inside a script are local to it; prefix them with the group so
        // two imports of one script never collide.
        let gid = |id: &str| format!("{group_id}:{id}");
        for u in &script.utterances {
            sqlx::query(self.sql(
                "INSERT INTO utterances (id, group_id, user_id, name, description, priority, action, word_class, wait, retry, max_retry, score, play_ms, enquire, identify_type, block_asr, allow_keyword_interrupt, is_jump_back, jump_back_threshold, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(gid(&u.id))
            .bind(group_id)
            .bind(user_id)
            .bind(&u.name)
            .bind(u.description.clone())
            .bind(u.priority)
            .bind(u.action.clone())
            .bind(u.word_class)
            .bind(u.wait)
            .bind(u.retry)
            .bind(u.max_retry)
            .bind(u.score)
            .bind(u.play_ms)
            .bind(i64::from(u.enquire))
            .bind(u.identify_type)
            .bind(u.block_asr)
            .bind(i64::from(u.allow_keyword_interrupt))
            .bind(u.is_jump_back)
            .bind(u.jump_back_threshold)
            .bind(&now)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            for c in &u.contents {
                sqlx::query(self.sql(
                    "INSERT INTO utterance_contents (id, utterance_id, file_id, translate_text, wav_second, sort, status) VALUES (?, ?, ?, ?, ?, ?, ?)",
                ))
                .bind(gid(&c.id))
                .bind(gid(&u.id))
                .bind(c.file_id.clone())
                .bind(&c.translate_text)
                .bind(c.wav_second)
                .bind(c.sort)
                .bind(i64::from(c.status))
                .execute(&mut *tx)
                .await?;
            }
            for (i, b) in u.branches.iter().enumerate() {
                let js = |v: &Vec<String>| serde_json::to_string(v).unwrap_or_else(|_| "[]".into());
                sqlx::query(self.sql(
                    "INSERT INTO utterance_branches (id, utterance_id, name, keywords, regexes, negations, is_default, next_utterance_id, score, sort) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                ))
                .bind(gid(&b.id))
                .bind(gid(&u.id))
                .bind(&b.name)
                .bind(js(&b.keywords))
                .bind(js(&b.regexes))
                .bind(js(&b.negations))
                .bind(i64::from(b.is_default))
                .bind(gid(&b.next))
                .bind(b.score)
                .bind(i as i64)
                .execute(&mut *tx)
                .await?;
            }
        }
        for l in &script.levels {
            sqlx::query(self.sql(
                "INSERT INTO levels (id, group_id, user_id, name, alias, color, min_score, max_score, intention_results, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            ))
            .bind(gid(&l.id))
            .bind(group_id)
            .bind(user_id)
            .bind(&l.name)
            .bind(l.alias.clone())
            .bind(l.color.clone())
            .bind(l.min_score)
            .bind(l.max_score)
            .bind(l.intention_results)
            .bind(&now)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        for g in &script.tag_groups {
            sqlx::query(self.sql(
                "INSERT INTO tag_groups (id, user_id, name, tag_scene_id, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
            ))
            .bind(gid(&g.id))
            .bind(user_id)
            .bind(&g.name)
            .bind(script.tag_scene_id.clone())
            .bind(&now)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
        }
        for t in &script.tags {
            sqlx::query(self.sql(
                "INSERT INTO tags (id, user_id, name, description, color, status, created_at, updated_at) VALUES (?, ?, ?, ?, ?, 1, ?, ?)",
            ))
            .bind(gid(&t.id))
            .bind(user_id)
            .bind(&t.name)
            .bind(&t.name)
            .bind(t.color.clone())
            .bind(&now)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            for g in &t.groups {
                sqlx::query(self.sql("INSERT INTO tag_tag_group (tag_id, tag_group_id) VALUES (?, ?)"))
                    .bind(gid(&t.id))
                    .bind(gid(g))
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(group_id)
    }

    /// Load a script group; ids are returned as stored (group-prefixed).
    pub async fn load_script(&self, group_id: i64) -> Result<Script, StoreError> {
        let row = sqlx::query(self.sql("SELECT definition FROM script_groups WHERE id = ?"))
            .bind(group_id)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::Invalid(format!("script group {group_id} not found")))?;
        let def: String = row.try_get("definition")?;
        let mut s: Script = serde_json::from_str(&def).map_err(|e| StoreError::Invalid(e.to_string()))?;
        s.id = group_id;
        let p = |id: &mut String| *id = format!("{group_id}:{id}");
        for u in &mut s.utterances {
            p(&mut u.id);
            for c in &mut u.contents {
                p(&mut c.id);
            }
            for b in &mut u.branches {
                p(&mut b.id);
                p(&mut b.next);
                b.tags.iter_mut().for_each(p);
            }
            u.tags.iter_mut().for_each(p);
        }
        for l in &mut s.levels {
            p(&mut l.id);
        }
        for t in &mut s.tags {
            p(&mut t.id);
            t.groups.iter_mut().for_each(p);
        }
        for g in &mut s.tag_groups {
            p(&mut g.id);
        }
        for id in [
            &mut s.handlers.no_speech,
            &mut s.handlers.not_understood,
            &mut s.handlers.closing,
            &mut s.handlers.transfer_failed,
        ]
        .into_iter()
        .flatten()
        {
            p(id);
        }
        Ok(s)
    }

    /// Create a task; returns its uuid.
    pub async fn create_task(&self, t: &Task) -> Result<String, StoreError> {
        if t.maximumcall < 1 {
            return Err(StoreError::Invalid(format!("maximumcall must be ≥ 1, got {}", t.maximumcall)));
        }
        if !(t.call_per_second > 0.0 && t.call_per_second.is_finite()) {
            return Err(StoreError::Invalid(format!("call_per_second must be > 0, got {}", t.call_per_second)));
        }
        for (col, v, w) in [
            ("uuid", t.uuid.as_str(), chars(limits::ID)),
            ("name", &t.name, chars(limits::NAME)),
            ("destination_extension", &t.destination_extension, chars(limits::NAME)),
            ("destination_dialplan", &t.destination_dialplan, chars(limits::CODE)),
            ("destination_context", &t.destination_context, chars(limits::NAME)),
            ("dial_format", &t.dial_format, limits::TEXT),
            ("originate_variables", &t.originate_variables, limits::TEXT),
            ("_origination_caller_id_number", &t.origination_caller_id_number, chars(limits::CALLER)),
            ("user_id", &t.user_id, chars(limits::ID)),
        ] {
            check("autodialer_task", col, v, w)?;
        }
        let now = now_str();
        sqlx::query(self.sql(
            "INSERT INTO autodialer_task (uuid, name, create_datetime, alter_datetime, start, maximumcall, call_per_second, recycle_limit, destination_extension, destination_dialplan, destination_context, dial_format, originate_variables, _originate_timeout, _origination_caller_id_number, user_id, group_id, call_pause_second, sort, is_top, random_assignment_number, end_action) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        ))
        .bind(&t.uuid)
        .bind(&t.name)
        .bind(&now)
        .bind(&now)
        .bind(t.start)
        .bind(t.maximumcall)
        .bind(t.call_per_second)
        .bind(t.recycle_limit)
        .bind(&t.destination_extension)
        .bind(&t.destination_dialplan)
        .bind(&t.destination_context)
        .bind(&t.dial_format)
        .bind(&t.originate_variables)
        .bind(t.originate_timeout)
        .bind(&t.origination_caller_id_number)
        .bind(&t.user_id)
        .bind(t.group_id)
        .bind(t.call_pause_second)
        .bind(t.sort)
        .bind(t.is_top)
        .bind(t.random_assignment_number)
        .bind(t.end_action)
        .execute(&self.pool)
        .await?;
        Ok(t.uuid.clone())
    }

    pub async fn load_task(&self, uuid: &str) -> Result<Task, StoreError> {
        let r = sqlx::query(self.sql(
            "SELECT uuid, name, start, maximumcall, call_per_second, recycle_limit, destination_extension, destination_dialplan, destination_context, dial_format, originate_variables, _originate_timeout, _origination_caller_id_number, user_id, group_id, call_pause_second, sort, is_top, random_assignment_number, end_action FROM autodialer_task WHERE uuid = ? AND deleted_at IS NULL",
        ))
        .bind(uuid)
        .fetch_optional(&self.pool)
        .await?
        .ok_or_else(|| StoreError::TaskNotFound(uuid.to_string()))?;
        Ok(Task {
            uuid: r.try_get("uuid")?,
            name: r.try_get("name")?,
            start: r.try_get("start")?,
            maximumcall: r.try_get("maximumcall")?,
            call_per_second: r.try_get("call_per_second")?,
            recycle_limit: r.try_get("recycle_limit")?,
            destination_extension: r.try_get("destination_extension")?,
            destination_dialplan: r.try_get("destination_dialplan")?,
            destination_context: r.try_get("destination_context")?,
            dial_format: r.try_get("dial_format")?,
            originate_variables: r.try_get("originate_variables")?,
            originate_timeout: r.try_get("_originate_timeout")?,
            origination_caller_id_number: r.try_get("_origination_caller_id_number")?,
            user_id: r.try_get("user_id")?,
            group_id: r.try_get("group_id")?,
            call_pause_second: r.try_get("call_pause_second")?,
            sort: r.try_get("sort")?,
            is_top: r.try_get("is_top")?,
            random_assignment_number: r.try_get("random_assignment_number")?,
            end_action: r.try_get("end_action")?,
        })
    }

    /// `start` = 1 running, 0 paused, 2 finished.
    pub async fn set_task_start(&self, uuid: &str, start: i64) -> Result<(), StoreError> {
        let r = sqlx::query(self.sql("UPDATE autodialer_task SET start = ?, alter_datetime = ? WHERE uuid = ?"))
            .bind(start)
            .bind(now_str())
            .bind(uuid)
            .execute(&self.pool)
            .await?;
        if r.rows_affected() == 0 {
            return Err(StoreError::TaskNotFound(uuid.to_string()));
        }
        Ok(())
    }

    pub async fn add_blacklist(&self, user_id: &str, number: &str, reason: &str) -> Result<(), StoreError> {
        check("blacklists", "user_id", user_id, chars(limits::ID))?;
        check("blacklists", "number", number, chars(limits::NUMBER))?;
        check("blacklists", "reason", reason, limits::TEXT)?;
        let q = format!(
            "{} INTO blacklists (user_id, number, reason, created_at) VALUES (?, ?, ?, ?){}",
            self.insert_ignore(),
            self.on_conflict_nothing()
        );
        sqlx::query(self.sql(&q)).bind(user_id).bind(number).bind(reason).bind(now_str()).execute(&self.pool).await?;
        Ok(())
    }

    /// Import numbers (already normalized) with their script variables.
    /// Duplicates within the task are skipped and counted.
    pub async fn import_numbers(
        &self,
        task_id: &str,
        rows: &[(String, BTreeMap<String, String>)],
    ) -> Result<ImportReport, StoreError> {
        let task = self.load_task(task_id).await?;
        // Checked up front: one bad row refuses the import before anything
        // is written (and MySQL's INSERT IGNORE would truncate it).
        let mut vars_json = Vec::with_capacity(rows.len());
        for (number, vars) in rows {
            check("autodialer_number", "number", number, chars(limits::NUMBER))?;
            let v = if vars.is_empty() {
                None
            } else {
                Some(serde_json::to_string(vars).map_err(|e| StoreError::Invalid(e.to_string()))?)
            };
            check_opt("autodialer_number", "variables", v.as_deref(), limits::TEXT)?;
            vars_json.push(v);
        }
        let mut report = ImportReport::default();
        for (chunk, vars_chunk) in rows.chunks(500).zip(vars_json.chunks(500)) {
            // The chunk's blacklisted numbers in one query, not one per number.
            let q = format!(
                "SELECT number FROM blacklists WHERE user_id = ? AND number IN ({})",
                vec!["?"; chunk.len()].join(", ")
            );
            let mut query = sqlx::query(self.sql(&q)).bind(&task.user_id);
            for (number, _) in chunk {
                query = query.bind(number);
            }
            let mut black = HashSet::new();
            for row in query.fetch_all(&self.pool).await? {
                black.insert(row.try_get::<String, _>(0)?);
            }
            let mut batch = Vec::with_capacity(chunk.len());
            for (line, ((number, _), variables)) in (0_u64..).zip(chunk.iter().zip(vars_chunk)) {
                let blacklisted = black.contains(number);
                batch.push(number::NewNumber {
                    line,
                    number: number.clone(),
                    location: crate::location::Location::default(),
                    blacklisted,
                    variables: variables.clone(),
                });
            }
            let dups: HashSet<u64> = self.insert_numbers(task_id, &batch).await?.into_iter().collect();
            for n in &batch {
                if dups.contains(&n.line) {
                    report.duplicates += 1;
                } else {
                    report.inserted += 1;
                    report.blacklisted += u64::from(n.blacklisted);
                }
            }
        }
        Ok(report)
    }

    /// Claim up to `limit` due numbers of a task for `node` under a lease.
    /// A number is claimed by one node only: the UPDATE re-checks the claim
    /// columns, so a racing node's UPDATE affects no row.
    pub async fn claim_numbers(
        &self,
        task_id: &str,
        node: &str,
        limit: i64,
        lease_secs: i64,
    ) -> Result<Vec<Claimed>, StoreError> {
        self.claim_numbers_ordered(task_id, node, limit, lease_secs, false).await
    }

    /// [`Store::claim_numbers`], in random order when `random` (the task's
    /// `random_assignment_number`).
    pub async fn claim_numbers_ordered(
        &self,
        task_id: &str,
        node: &str,
        limit: i64,
        lease_secs: i64,
        random: bool,
    ) -> Result<Vec<Claimed>, StoreError> {
        check("autodialer_number", "claimed_by", node, chars(limits::NODE))?;
        let now = now_str();
        let lease = in_secs(lease_secs);
        let lock = match self.backend {
            Backend::Postgres | Backend::MySql => " FOR UPDATE SKIP LOCKED",
            Backend::Sqlite => "",
        };
        let order = match (random, self.backend) {
            (false, _) => "id",
            (true, Backend::Sqlite) => "RANDOM()",
            (true, Backend::Postgres) => "random()",
            (true, Backend::MySql) => "RAND()",
        };
        let q = format!(
            "SELECT id, number, attempts, is_blacklist, variables FROM autodialer_number WHERE task_id = ? AND status = 0 AND next_attempt_at <= ? AND (claimed_by IS NULL OR claim_expires_at < ?) ORDER BY {order} LIMIT ?{lock}"
        );
        let mut tx = self.begin_write().await?;
        let rows: Vec<AnyRow> =
            sqlx::query(self.sql(&q)).bind(task_id).bind(&now).bind(&now).bind(limit).fetch_all(&mut *tx).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            let id: i64 = r.try_get("id")?;
            let upd = sqlx::query(self.sql(
                "UPDATE autodialer_number SET claimed_by = ?, claim_expires_at = ?, updated_at = ? WHERE id = ? AND status = 0 AND (claimed_by IS NULL OR claim_expires_at < ?)",
            ))
            .bind(node)
            .bind(&lease)
            .bind(&now)
            .bind(id)
            .bind(&now)
            .execute(&mut *tx)
            .await?;
            if upd.rows_affected() == 1 {
                let vars: Option<String> = r.try_get("variables")?;
                out.push(Claimed {
                    id,
                    task_id: task_id.to_string(),
                    number: r.try_get("number")?,
                    attempts: r.try_get("attempts")?,
                    is_blacklist: r.try_get::<i64, _>("is_blacklist")? != 0,
                    variables: vars.and_then(|v| serde_json::from_str(&v).ok()).unwrap_or_default(),
                });
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Give a claimed but undialled number back to the pool.
    pub async fn release_claim(&self, number_id: i64) -> Result<(), StoreError> {
        sqlx::query(self.sql(
            "UPDATE autodialer_number SET claimed_by = NULL, claim_expires_at = NULL WHERE id = ? AND status = 0",
        ))
        .bind(number_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Mark a number blacklisted (status 11) without dialing it.
    pub async fn mark_blacklisted(&self, number_id: i64) -> Result<(), StoreError> {
        sqlx::query(self.sql(
            "UPDATE autodialer_number SET status = 11, status_str = '黑名单', is_blacklist = 1, claimed_by = NULL, claim_expires_at = NULL, updated_at = ? WHERE id = ?",
        ))
        .bind(now_str())
        .bind(number_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Durably record an attempt before its originate is sent, and list it
    /// among the open dials (`open_dials`, migration 0014: the finalizing
    /// ledger UPDATE stays HOT when no index names `state`).
    pub async fn ledger_begin(
        &self,
        task_id: &str,
        number_id: i64,
        number: &str,
        attempt: i64,
        uuid: &str,
        node: &str,
    ) -> Result<(), StoreError> {
        check("dial_ledger", "task_id", task_id, chars(limits::ID))?;
        check("dial_ledger", "number", number, chars(limits::NUMBER))?;
        check("dial_ledger", "origination_uuid", uuid, chars(limits::ID))?;
        check("dial_ledger", "node_id", node, chars(limits::NODE))?;
        let now = now_str();
        const INSERT: &str = "INSERT INTO dial_ledger (task_id, number_id, number, attempt, origination_uuid, node_id, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 'originating', ?, ?)";
        let ledger_row = |q: String| {
            sqlx::query(self.sql(&q))
                .bind(task_id.to_string())
                .bind(number_id)
                .bind(number.to_string())
                .bind(attempt)
                .bind(uuid.to_string())
                .bind(node.to_string())
                .bind(now.clone())
                .bind(now.clone())
        };
        if self.backend == Backend::Postgres {
            // One statement (one round trip before the originate), atomic.
            ledger_row(format!(
                "WITH l AS ({INSERT} RETURNING origination_uuid, node_id, number_id, id) \
                 INSERT INTO open_dials (origination_uuid, node_id, number_id, ledger_id) SELECT origination_uuid, node_id, number_id, id FROM l"
            ))
            .execute(&self.pool)
            .await?;
            return Ok(());
        }
        let mut tx = self.begin_write().await?;
        ledger_row(INSERT.to_string()).execute(&mut *tx).await?;
        sqlx::query(self.sql(
            "INSERT INTO open_dials (origination_uuid, node_id, number_id, ledger_id) SELECT origination_uuid, node_id, number_id, id FROM dial_ledger WHERE origination_uuid = ?",
        ))
        .bind(uuid)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn ledger_set(&self, uuid: &str, state: &str, detail: Option<&str>) -> Result<(), StoreError> {
        check("dial_ledger", "state", state, chars(limits::SHORT))?;
        check_opt("dial_ledger", "detail", detail, limits::TEXT)?;
        let mut tx = self.begin_write().await?;
        sqlx::query(
            self.sql("UPDATE dial_ledger SET state = ?, detail = ?, updated_at = ? WHERE origination_uuid = ?"),
        )
        .bind(state)
        .bind(detail)
        .bind(now_str())
        .bind(uuid)
        .execute(&mut *tx)
        .await?;
        if matches!(state, "finalized" | "failed") {
            sqlx::query(self.sql("DELETE FROM open_dials WHERE origination_uuid = ?"))
                .bind(uuid)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Numbers of a task still to be dialled (waiting or claimed).
    pub async fn pending_numbers(&self, task_id: &str) -> Result<i64, StoreError> {
        let r = sqlx::query(self.sql("SELECT COUNT(*) AS n FROM autodialer_number WHERE task_id = ? AND status = 0"))
            .bind(task_id)
            .fetch_one(&self.pool)
            .await?;
        Ok(r.try_get("n")?)
    }

    /// Earliest `next_attempt_at` among waiting numbers (recycled ones wait).
    pub async fn next_due(&self, task_id: &str) -> Result<Option<String>, StoreError> {
        let r = sqlx::query(
            self.sql("SELECT MIN(next_attempt_at) AS t FROM autodialer_number WHERE task_id = ? AND status = 0"),
        )
        .bind(task_id)
        .fetch_one(&self.pool)
        .await?;
        Ok(r.try_get("t")?)
    }

    /// Count of numbers per status.
    pub async fn status_counts(&self, task_id: &str) -> Result<BTreeMap<i64, i64>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT status, COUNT(*) AS n FROM autodialer_number WHERE task_id = ? GROUP BY status ORDER BY status",
        ))
        .bind(task_id)
        .fetch_all(&self.pool)
        .await?;
        let mut m = BTreeMap::new();
        for r in rows {
            m.insert(r.try_get("status")?, r.try_get("n")?);
        }
        Ok(m)
    }

    /// Records per level name.
    pub async fn level_counts(&self, task_id: &str) -> Result<BTreeMap<String, i64>, StoreError> {
        let rows = sqlx::query(self.sql(
            "SELECT COALESCE(level_name, '') AS level_name, COUNT(*) AS n FROM records WHERE task_id = ? GROUP BY COALESCE(level_name, '') ORDER BY 1",
        ))
        .bind(task_id)
        .fetch_all(&self.pool)
        .await?;
        let mut m = BTreeMap::new();
        for r in rows {
            m.insert(r.try_get("level_name")?, r.try_get("n")?);
        }
        Ok(m)
    }

    /// Scalar `SELECT COUNT(*)`-style helper for summaries and tests.
    pub async fn count(&self, sql: &str, task_id: &str) -> Result<i64, StoreError> {
        let r = sqlx::query(self.sql(sql)).bind(task_id).fetch_one(&self.pool).await?;
        Ok(r.try_get(0)?)
    }

    /// Average rounds of the task's records.
    pub async fn avg_rounds(&self, task_id: &str) -> Result<f64, StoreError> {
        let q = format!("SELECT {} AS a FROM records WHERE task_id = ?", self.avg_f64("rounds"));
        let r = sqlx::query(self.sql(&q)).bind(task_id).fetch_one(&self.pool).await?;
        Ok(r.try_get::<Option<f64>, _>("a")?.unwrap_or(0.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn synchronous_of(store: &Store) -> i64 {
        let row = sqlx::query("PRAGMA synchronous").fetch_one(&store.pool).await.expect("pragma");
        row.try_get::<i64, _>(0).expect("value")
    }

    #[tokio::test]
    async fn sqlite_commits_are_synced_unless_the_url_says_otherwise() {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("s.db");
        let full = Store::open(&format!("sqlite://{}", db.display())).await.expect("open");
        assert_eq!(synchronous_of(&full).await, 2, "FULL by default");
        let typed = full.sqlite.as_ref().expect("typed pool");
        let row = sqlx::query("PRAGMA synchronous").fetch_one(typed).await.expect("pragma");
        assert_eq!(row.try_get::<i64, _>(0).expect("value"), 2, "the batch writer's pool too");
        drop(full);

        let normal =
            Store::open(&format!("sqlite://{}?synchronous=normal&mode=rwc", db.display())).await.expect("open");
        assert_eq!(synchronous_of(&normal).await, 1);
        drop(normal);

        let Err(err) = Store::open(&format!("sqlite://{}?synchronous=sometimes", db.display())).await else {
            panic!("an unknown synchronous value was accepted")
        };
        assert!(err.to_string().contains("synchronous") && err.to_string().contains("sometimes"), "{err}");
    }

    #[test]
    fn the_synchronous_parameter_leaves_the_others_in_place() {
        let mut url = "sqlite://a.db?mode=rwc&Synchronous=EXTRA&cache=shared".to_string();
        assert_eq!(SqliteSync::take_from(&mut url).expect("valid"), SqliteSync::Extra);
        assert_eq!(url, "sqlite://a.db?mode=rwc&cache=shared");
        let mut url = "sqlite://a.db?synchronous=off".to_string();
        assert_eq!(SqliteSync::take_from(&mut url).expect("valid"), SqliteSync::Off);
        assert_eq!(url, "sqlite://a.db");
        let mut url = "sqlite://a.db".to_string();
        assert_eq!(SqliteSync::take_from(&mut url).expect("valid"), SqliteSync::Full);
        assert_eq!(url, "sqlite://a.db");
    }
}
