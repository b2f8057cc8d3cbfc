//! One store test suite, three backends: every test function below runs
//! against SQLite (a temp file), PostgreSQL (`VOXDIAL_TEST_POSTGRES_URL`,
//! default `postgres://postgres@127.0.0.1:5432/test`) and MariaDB/MySQL
//! (`VOXDIAL_TEST_MYSQL_URL`, default `mysql://root@127.0.0.1:3306/test`).
//!
//! Each test gets a fresh schema (PostgreSQL: a uniquely named schema put
//! first on the search path; MariaDB: a uniquely named database), dropped
//! afterwards, even when the test fails. A server that can't be reached makes
//! the test print `SKIPPED: …` and pass, unless `VOXDIAL_REQUIRE_SERVICES=1`
//! (set by `.ci/run`), where it fails.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use sqlx::Row;
use voxdial::dialogue::{Script, SAMPLE_SCRIPT};
use voxdial::store::call::RecordWrite;
use voxdial::store::{Backend, CallWrite, DetailWrite, Store, StoreError, Task};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Sqlite,
    Postgres,
    MySql,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Sqlite => "sqlite",
            Kind::Postgres => "postgres",
            Kind::MySql => "mariadb",
        }
    }

    fn admin_url(self) -> String {
        match self {
            Kind::Sqlite => String::new(),
            Kind::Postgres => std::env::var("VOXDIAL_TEST_POSTGRES_URL")
                .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
            Kind::MySql => {
                std::env::var("VOXDIAL_TEST_MYSQL_URL").unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".into())
            }
        }
    }
}

/// A fresh, migrated database for one test.
struct Db {
    kind: Kind,
    store: Store,
    url: String,
    cleanup: Option<Cleanup>,
    _dir: Option<tempfile::TempDir>,
}

/// Drops the test's schema or database; runs on a thread of its own so it
/// also works from `Drop` while a failed test unwinds.
struct Cleanup {
    kind: Kind,
    admin_url: String,
    name: String,
}

impl Cleanup {
    fn run(&self) {
        let (kind, admin, name) = (self.kind, self.admin_url.clone(), self.name.clone());
        let t = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                let q = match kind {
                    Kind::Postgres => format!("DROP SCHEMA IF EXISTS {name} CASCADE"),
                    Kind::MySql => format!("DROP DATABASE IF EXISTS {name}"),
                    Kind::Sqlite => return,
                };
                if let Ok(s) = Store::connect(&admin).await {
                    if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(q)).execute(s.pool()).await {
                        eprintln!("cleanup of {name} failed: {e}");
                    }
                    s.pool().close().await;
                }
            });
        });
        let _ = t.join();
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        if let Some(c) = self.cleanup.take() {
            c.run();
        }
    }
}

fn require_services() -> bool {
    std::env::var("VOXDIAL_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

fn skip(kind: Kind, url: &str, err: &str) -> Option<Db> {
    let msg = format!("SKIPPED: {} not reachable at {url}: {err}", kind.label());
    if require_services() {
        panic!("{msg} (VOXDIAL_REQUIRE_SERVICES=1: a missing server is a failure)");
    }
    eprintln!("{msg}");
    None
}

/// `scheme://user@host:port/db?query` → (`host:port`, url with `db` replaced).
fn split_url(url: &str, db: &str) -> (String, String) {
    let (base, query) = url.split_once('?').map_or((url, None), |(b, q)| (b, Some(q)));
    let after_scheme = base.split_once("://").map_or(base, |(_, r)| r);
    let host_part = after_scheme.split('/').next().unwrap_or("");
    let host = host_part.rsplit_once('@').map_or(host_part, |(_, h)| h).to_string();
    let prefix = base.rsplit_once('/').map_or(base, |(p, _)| p);
    let mut out = format!("{prefix}/{db}");
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    (host, out)
}

fn unique_name() -> String {
    format!("vxt_{}", uuid::Uuid::new_v4().simple().to_string().get(..16).unwrap_or("x"))
}

/// A fresh migrated database of `kind`, or `None` when skipped.
async fn fresh(kind: Kind) -> Option<Db> {
    if kind == Kind::Sqlite {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}", dir.path().join("t.db").display());
        let store = Store::open(&url).await.expect("open sqlite");
        return Some(Db { kind, store, url, cleanup: None, _dir: Some(dir) });
    }
    let admin_url = kind.admin_url();
    let (host, _) = split_url(&admin_url, "x");
    // A quick TCP probe first: a pool would retry a refused port for 30 s.
    let addr = match tokio::net::lookup_host(&host).await.map(|mut a| a.next()) {
        Ok(Some(a)) => a,
        Ok(None) => return skip(kind, &admin_url, "host name resolves to no address"),
        Err(e) => return skip(kind, &admin_url, &e.to_string()),
    };
    match tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(addr)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => return skip(kind, &admin_url, &e.to_string()),
        Err(_) => return skip(kind, &admin_url, "connect timed out after 3 s"),
    }
    let admin = match Store::connect(&admin_url).await {
        Ok(s) => s,
        Err(e) => return skip(kind, &admin_url, &e.to_string()),
    };
    let name = unique_name();
    let (create, url) = match kind {
        Kind::Postgres => {
            let sep = if admin_url.contains('?') { '&' } else { '?' };
            (format!("CREATE SCHEMA {name}"), format!("{admin_url}{sep}options=-c%20search_path%3D{name}"))
        }
        Kind::MySql => (
            format!("CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"),
            split_url(&admin_url, &name).1,
        ),
        Kind::Sqlite => unreachable!(),
    };
    sqlx::query(sqlx::AssertSqlSafe(create)).execute(admin.pool()).await.expect("create test schema");
    admin.pool().close().await;
    let cleanup = Some(Cleanup { kind, admin_url, name });
    let store = Store::open(&url).await.expect("open + migrate");
    Some(Db { kind, store, url, cleanup, _dir: None })
}

macro_rules! on_backend {
    ($module:ident, $kind:expr, [$($name:ident),* $(,)?]) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(db) = super::fresh($kind).await {
                        super::$name(&db).await;
                        db.store.pool().close().await;
                    }
                }
            )*
        }
    };
}

macro_rules! on_all_backends {
    ($($name:ident),* $(,)?) => {
        on_backend!(sqlite, super::Kind::Sqlite, [$($name),*]);
        on_backend!(postgres, super::Kind::Postgres, [$($name),*]);
        on_backend!(mariadb, super::Kind::MySql, [$($name),*]);
    };
}

on_all_backends!(
    migrate_is_idempotent_and_the_cli_agrees,
    newer_schema_is_refused_with_a_clear_message,
    script_round_trip,
    task_round_trip,
    import_counts_duplicates_and_blacklisted,
    concurrent_claimers_never_share_a_number,
    write_call_is_idempotent_per_callid,
    write_call_is_all_or_nothing,
    write_calls_batch_matches_write_call,
    write_calls_waits_for_a_concurrent_writer_of_the_same_call,
    summaries_count_statuses_levels_and_rounds,
    record_list_totals_and_deep_pages_agree_with_the_rows,
    combined_range_totals_from_the_count_index_agree_with_the_rows,
    too_long_strings_are_refused_naming_the_column,
    unicode_survives_the_round_trip,
);

// ---------------------------------------------------------------- helpers

const USER: &str = "4d99d91c-f5d9-49da-88da-758977cc58a9";

fn task(uuid: &str, group_id: i64) -> Task {
    Task {
        start: 0,
        maximumcall: 10,
        call_per_second: 2.5,
        recycle_limit: 1,
        dial_format: "sofia/gateway/gw1/{number}".into(),
        originate_variables: "ignore_early_media=true".into(),
        originate_timeout: 45,
        origination_caller_id_number: "02512345678".into(),
        call_pause_second: 3,
        sort: 2,
        is_top: 1,
        ..Task::new(uuid, "测试任务", USER, group_id)
    }
}

/// A user, a script and a task with `n` numbers; returns (task id, number ids).
async fn setup(s: &Store, n: usize) -> (String, Vec<i64>) {
    s.ensure_user(USER, "测试用户").await.expect("user");
    let script = Script::from_json(SAMPLE_SCRIPT).expect("sample script");
    let gid = s.save_script(USER, &script).await.expect("script");
    let tid = uuid::Uuid::new_v4().to_string();
    s.create_task(&task(&tid, gid)).await.expect("task");
    let rows: Vec<(String, BTreeMap<String, String>)> =
        (0..n).map(|i| (format!("138{:08}", i), BTreeMap::new())).collect();
    if n > 0 {
        s.import_numbers(&tid, &rows).await.expect("import");
    }
    let ids = sqlx::query(s.sql("SELECT id FROM autodialer_number WHERE task_id = ? ORDER BY id"))
        .bind(&tid)
        .fetch_all(s.pool())
        .await
        .expect("ids")
        .iter()
        .map(|r| r.try_get::<i64, _>("id").expect("id"))
        .collect();
    (tid, ids)
}

fn detail(seq: i64, question: &str) -> DetailWrite {
    DetailWrite {
        notify: if seq == 1 { "enter".into() } else { "asrmessage_notify".into() },
        question: question.into(),
        question_index: seq - 1,
        speak_ms: 1200,
        play_ms: 3400,
        keyword: Some("价格".into()),
        answer_id: Some("ans-1".into()),
        answer_text: Some("流程1".into()),
        answer_content: Some("您好，这里是…".into()),
        answer_action: None,
        word_class: Some("16".into()),
        score: 5,
        sequence: seq,
        asr_elapse: Some(230),
        gender: Some(1),
        asrtype: Some("aliyun".into()),
        decision_us: Some(850),
        tags: if seq == 2 { vec!["tag-price".into()] } else { vec![] },
        created_at: "2020-03-06 22:32:37".into(),
        bridge_status: None,
        voice: None,
        robot_voice: Vec::new(),
    }
}

/// An answered call of number `number_id` with a record and `details` rows.
fn answered(
    task_id: &str,
    number_id: i64,
    number: &str,
    score: i64,
    rounds: i64,
    level: &str,
    details: usize,
) -> CallWrite {
    let callid = uuid::Uuid::new_v4().to_string();
    CallWrite {
        callid: callid.clone(),
        task_id: task_id.into(),
        user_id: USER.into(),
        group_id: 1,
        number_id,
        number: number.into(),
        attempt: 1,
        status: 1,
        status_str: "已接听".into(),
        call_status: "answered".into(),
        hangup_code: Some("16".into()),
        hangup_reason: Some(0),
        hangupcause: Some("NORMAL_CLEARING".into()),
        calldate: "2020-03-06 22:31:00".into(),
        answerdate: Some("2020-03-06 22:31:05".into()),
        hangupdate: "2020-03-06 22:32:40".into(),
        bill_ms: 95_000,
        duration_ms: 100_000,
        caller_number: Some("02512345678".into()),
        recordfile: Some(format!("/recordings/2020/03/06/{callid}.wav")),
        hangup_disposition: Some(2),
        redial_in_secs: None,
        province_id: 32,
        city_id: 3201,
        operator: 2,
        record: Some(RecordWrite {
            id: uuid::Uuid::new_v4().to_string(),
            score,
            level_id: Some("1:level-a".into()),
            level_name: Some(level.into()),
            intention_results: Some(1),
            rounds,
            gender: Some(1),
            tags: vec!["tag-interested".into()],
            details: (1..=details as i64).map(|i| detail(i, &format!("第{i}句"))).collect(),
        }),
    }
}

/// A call that wasn't answered: history and number update only.
fn unanswered(task_id: &str, number_id: i64, number: &str, status: i64) -> CallWrite {
    CallWrite {
        callid: uuid::Uuid::new_v4().to_string(),
        task_id: task_id.into(),
        user_id: USER.into(),
        number_id,
        number: number.into(),
        attempt: 1,
        status,
        status_str: "无人接听".into(),
        call_status: "no_answer".into(),
        calldate: "2020-03-06 22:31:00".into(),
        hangupdate: "2020-03-06 22:31:45".into(),
        ..Default::default()
    }
}

async fn count(s: &Store, q: &str, arg: &str) -> i64 {
    s.count(q, arg).await.unwrap_or_else(|e| panic!("{q}: {e}"))
}

/// Everything a call leaves in the database, to compare before and after.
async fn footprint(s: &Store, task_id: &str) -> [i64; 4] {
    [
        count(s, "SELECT COUNT(*) FROM auto_call_histories WHERE task_id = ?", task_id).await,
        count(s, "SELECT COUNT(*) FROM records WHERE task_id = ?", task_id).await,
        count(s, "SELECT COUNT(*) FROM record_details WHERE task_id = ?", task_id).await,
        count(s, "SELECT COUNT(*) FROM taggables WHERE created_at <> ?", "").await,
    ]
}

fn number_of(i: usize) -> String {
    format!("138{:08}", i)
}

// ------------------------------------------------------------------ tests

async fn migrate_is_idempotent_and_the_cli_agrees(db: &Db) {
    let s = &db.store;
    s.migrate().await.expect("second migrate");
    s.migrate().await.expect("third migrate");
    let n = count(s, "SELECT COUNT(*) FROM _sqlx_migrations WHERE description <> ?", "").await;
    assert_eq!(n, s.schema_version_known(), "one row per shipped migration");
    // The CLI on the same database: twice, both fine.
    for _ in 0..2 {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_voxdial"))
            .args(["migrate", "--database-url", &db.url])
            .output()
            .expect("run voxdial migrate");
        assert!(out.status.success(), "voxdial migrate failed: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("schema up to date"));
    }
    // The tables are usable.
    let (tid, ids) = setup(s, 3).await;
    assert_eq!(ids.len(), 3);
    assert_eq!(s.pending_numbers(&tid).await.expect("pending"), 3);
}

async fn newer_schema_is_refused_with_a_clear_message(db: &Db) {
    let s = &db.store;
    let future = s.schema_version_known() + 9000;
    sqlx::query(s.sql(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) VALUES (?, ?, TRUE, ?, 0)",
    ))
    .bind(future)
    .bind("from a newer voxdial")
    .bind(vec![0_u8; 48])
    .execute(s.pool())
    .await
    .expect("fake a newer migration");
    let err = Store::open(&db.url).await.expect_err("a newer schema must be refused");
    assert!(matches!(err, StoreError::SchemaTooNew { version, .. } if version == future), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&format!("database schema version {future} is newer than this voxdial knows; upgrade voxdial")),
        "{msg}"
    );
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_voxdial"))
        .args(["migrate", "--database-url", &db.url])
        .output()
        .expect("run voxdial migrate");
    assert!(!out.status.success(), "voxdial migrate accepted a newer schema");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("newer than this voxdial knows; upgrade voxdial"), "stderr: {stderr}");
}

async fn script_round_trip(db: &Db) {
    let s = &db.store;
    s.ensure_user(USER, "u").await.expect("user");
    s.ensure_user(USER, "u").await.expect("ensure_user is idempotent");
    let script = Script::from_json(SAMPLE_SCRIPT).expect("sample");
    let g1 = s.save_script(USER, &script).await.expect("save");
    let g2 = s.save_script(USER, &script).await.expect("save again");
    assert_ne!(g1, g2, "each import is a new group");
    let back = s.load_script(g2).await.expect("load");
    assert_eq!(back.id, g2);
    assert_eq!(back.name, script.name);
    assert_eq!(back.utterances.len(), script.utterances.len());
    assert_eq!(back.levels.len(), script.levels.len());
    assert_eq!(back.tags.len(), script.tags.len());
    for (a, b) in back.utterances.iter().zip(&script.utterances) {
        assert_eq!(a.id, format!("{g2}:{}", b.id));
        assert_eq!(a.name, b.name);
        assert_eq!(a.branches.len(), b.branches.len());
    }
    let n = sqlx::query(s.sql("SELECT COUNT(*) AS n FROM utterances WHERE group_id = ?"))
        .bind(g2)
        .fetch_one(s.pool())
        .await
        .expect("count")
        .try_get::<i64, _>("n")
        .expect("n");
    assert_eq!(n as usize, script.utterances.len());
    let r = sqlx::query(s.sql("SELECT wav_second FROM utterance_contents WHERE utterance_id LIKE ? LIMIT 1"))
        .bind(format!("{g2}:%"))
        .fetch_one(s.pool())
        .await
        .expect("content");
    let _: Option<f64> = r.try_get("wav_second").expect("REAL decodes as f64");
    assert!(matches!(s.load_script(g2 + 1000).await, Err(StoreError::Invalid(_))));
}

async fn task_round_trip(db: &Db) {
    let s = &db.store;
    let (tid, _) = setup(s, 0).await;
    let t = s.load_task(&tid).await.expect("load");
    let want = task(&tid, t.group_id);
    assert_eq!(serde_json::to_value(&t).expect("json"), serde_json::to_value(&want).expect("json"));
    s.set_task_start(&tid, 1).await.expect("start");
    assert_eq!(s.load_task(&tid).await.expect("load").start, 1);
    assert!(matches!(s.load_task("nope").await, Err(StoreError::TaskNotFound(_))));
    assert!(matches!(s.set_task_start("nope", 1).await, Err(StoreError::TaskNotFound(_))));
    let mut bad = task("bad", 1);
    bad.maximumcall = 0;
    assert!(matches!(s.create_task(&bad).await, Err(StoreError::Invalid(_))));
}

async fn import_counts_duplicates_and_blacklisted(db: &Db) {
    let s = &db.store;
    let (tid, _) = setup(s, 0).await;
    s.add_blacklist(USER, "13800000002", "投诉").await.expect("blacklist");
    s.add_blacklist(USER, "13800000002", "again").await.expect("blacklist twice is fine");
    let mut vars = BTreeMap::new();
    vars.insert("name".to_string(), "张三".to_string());
    let rows: Vec<(String, BTreeMap<String, String>)> = vec![
        ("13800000001".into(), vars.clone()),
        ("13800000002".into(), BTreeMap::new()),
        ("13800000001".into(), BTreeMap::new()),
        ("13800000003".into(), BTreeMap::new()),
    ];
    let r = s.import_numbers(&tid, &rows).await.expect("import");
    assert_eq!((r.inserted, r.duplicates, r.blacklisted), (3, 1, 1));
    let r = s.import_numbers(&tid, &rows[..2]).await.expect("import again");
    assert_eq!((r.inserted, r.duplicates, r.blacklisted), (0, 2, 0));
    assert_eq!(s.pending_numbers(&tid).await.expect("pending"), 3);
    let claimed = s.claim_numbers(&tid, "node-a", 10, 60).await.expect("claim");
    assert_eq!(claimed.len(), 3);
    let first = claimed.iter().find(|c| c.number == "13800000001").expect("first");
    assert_eq!(first.variables.get("name").map(String::as_str), Some("张三"));
    assert!(claimed.iter().find(|c| c.number == "13800000002").expect("bl").is_blacklist);
    // A number that doesn't fit its column refuses the whole import.
    let long = vec![("1".repeat(33), BTreeMap::new()), ("13800000009".into(), BTreeMap::new())];
    let e = s.import_numbers(&tid, &long).await.expect_err("too long");
    assert!(e.to_string().contains("autodialer_number.number is too long: 33 characters, at most 32"), "{e}");
    assert_eq!(count(s, "SELECT COUNT(*) FROM autodialer_number WHERE task_id = ?", &tid).await, 3);
}

async fn concurrent_claimers_never_share_a_number(db: &Db) {
    let s = &db.store;
    let n = 600;
    let (tid, ids) = setup(s, n).await;
    assert_eq!(ids.len(), n);
    let claimer = |node: &'static str| {
        let s = s.clone();
        let tid = tid.clone();
        tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let c = s.claim_numbers(&tid, node, 25, 300).await.expect("claim");
                if c.is_empty() {
                    break;
                }
                got.extend(c.into_iter().map(|c| c.id));
                tokio::task::yield_now().await;
            }
            got
        })
    };
    let (a, b) = tokio::join!(claimer("node-a"), claimer("node-b"));
    let (a, b) = (a.expect("a"), b.expect("b"));
    let sa: BTreeSet<i64> = a.iter().copied().collect();
    let sb: BTreeSet<i64> = b.iter().copied().collect();
    assert_eq!(sa.len(), a.len(), "node-a got a number twice");
    assert_eq!(sb.len(), b.len(), "node-b got a number twice");
    assert!(sa.is_disjoint(&sb), "numbers handed to both claimers: {:?}", sa.intersection(&sb).collect::<Vec<_>>());
    assert_eq!(sa.len() + sb.len(), n, "every number claimed once (a {}, b {})", sa.len(), sb.len());
    // The claims are in the table too.
    let by_a = count(s, "SELECT COUNT(*) FROM autodialer_number WHERE claimed_by = ?", "node-a").await;
    assert_eq!(by_a as usize, sa.len());
    // A released number can be claimed again. (On SQLite one claimer may
    // win every race, so take whichever got numbers.)
    let first = a.first().or(b.first()).copied().expect("some number was claimed");
    s.release_claim(first).await.expect("release");
    let again = s.claim_numbers(&tid, "node-c", 10, 60).await.expect("claim");
    assert_eq!(again.iter().map(|c| c.id).collect::<Vec<_>>(), vec![first]);
}

async fn write_call_is_idempotent_per_callid(db: &Db) {
    let s = &db.store;
    let (tid, ids) = setup(s, 2).await;
    s.ledger_begin(&tid, ids[0], &number_of(0), 1, "will-be-replaced", "node-a").await.expect("ledger");
    let mut c = answered(&tid, ids[0], &number_of(0), 30, 4, "A级", 3);
    s.ledger_begin(&tid, ids[0], &number_of(0), 1, &c.callid, "node-a").await.expect("ledger");
    assert!(s.write_call(&c).await.expect("first write"));
    let after_first = footprint(s, &tid).await;
    assert_eq!(after_first[..3], [1, 1, 3]);
    // Replayed hangup: same callid, even with a fresh record id.
    if let Some(r) = c.record.as_mut() {
        r.id = uuid::Uuid::new_v4().to_string();
    }
    assert!(!s.write_call(&c).await.expect("second write"));
    assert!(!s.write_calls(std::slice::from_ref(&c)).await.expect("batch replay")[0]);
    assert_eq!(footprint(s, &tid).await, after_first, "a replay wrote rows");
    let st = s.status_counts(&tid).await.expect("counts");
    assert_eq!(st.get(&1), Some(&1));
    assert_eq!(st.get(&0), Some(&1));
    let state: String = sqlx::query(s.sql("SELECT state FROM dial_ledger WHERE origination_uuid = ?"))
        .bind(&c.callid)
        .fetch_one(s.pool())
        .await
        .expect("ledger row")
        .try_get("state")
        .expect("state");
    assert_eq!(state, "finalized");
    // The finalized attempt left open_dials (migration 0014); the other
    // attempt of the node is still open.
    let open: Vec<String> = s.ledger_open("node-a").await.expect("open").into_iter().map(|l| l.uuid).collect();
    assert_eq!(open, vec!["will-be-replaced".to_string()]);
    // The number row carries the call (bill and duration in ms).
    let r = sqlx::query(
        s.sql("SELECT status, bill, duration, callid, attempts, claimed_by FROM autodialer_number WHERE id = ?"),
    )
    .bind(ids[0])
    .fetch_one(s.pool())
    .await
    .expect("number");
    assert_eq!(r.try_get::<i64, _>("status").expect("status"), 1);
    assert_eq!(r.try_get::<i64, _>("bill").expect("bill"), 95_000);
    assert_eq!(r.try_get::<i64, _>("duration").expect("duration"), 100_000);
    assert_eq!(r.try_get::<String, _>("callid").expect("callid"), c.callid);
    assert_eq!(r.try_get::<Option<String>, _>("claimed_by").expect("claimed_by"), None);
    // The number's location, on the record and on the call-history row.
    let r = sqlx::query(s.sql(
        "SELECT r.province_id, r.city_id, r.operator, h.province_id AS hp, h.city_id AS hc, h.operator AS ho \
         FROM records r JOIN auto_call_histories h ON h.call_id = r.callid WHERE r.callid = ?",
    ))
    .bind(&c.callid)
    .fetch_one(s.pool())
    .await
    .expect("record");
    for (col, want) in [("province_id", 32), ("city_id", 3201), ("operator", 2), ("hp", 32), ("hc", 3201), ("ho", 2)] {
        assert_eq!(r.try_get::<i64, _>(col).expect(col), want, "{col}");
    }
}

async fn write_call_is_all_or_nothing(db: &Db) {
    let s = &db.store;
    let (tid, ids) = setup(s, 2).await;
    let before = footprint(s, &tid).await;
    // Two detail rows with the same sequence: the second violates
    // UNIQUE (record_id, sequence) after history, record, tags and the
    // first detail were inserted in the transaction.
    let mut c = answered(&tid, ids[0], &number_of(0), 30, 4, "A级", 3);
    if let Some(r) = c.record.as_mut() {
        r.details[2].sequence = 2;
    }
    s.write_call(&c).await.expect_err("duplicate sequence must fail");
    assert_eq!(footprint(s, &tid).await, before, "a failed call left rows behind");
    let st: i64 = sqlx::query(s.sql("SELECT status FROM autodialer_number WHERE id = ?"))
        .bind(ids[0])
        .fetch_one(s.pool())
        .await
        .expect("number")
        .try_get("status")
        .expect("status");
    assert_eq!(st, 0, "the number row was changed by a failed write");
    // The same in a batch: the good call beside it isn't written either.
    let good = answered(&tid, ids[1], &number_of(1), 10, 2, "B级", 2);
    s.write_calls(&[good.clone(), c.clone()]).await.expect_err("batch with a bad call must fail");
    assert_eq!(footprint(s, &tid).await, before, "a failed batch left rows behind");
    // Fixed, the call goes through, and so does the good one.
    if let Some(r) = c.record.as_mut() {
        r.details[2].sequence = 3;
    }
    assert_eq!(s.write_calls(&[good, c]).await.expect("batch"), vec![true, true]);
    assert_eq!(footprint(s, &tid).await[..3], [2, 2, 5]);
}

async fn write_calls_batch_matches_write_call(db: &Db) {
    let s = &db.store;
    let (tid, ids) = setup(s, 40).await;
    let mut single = Vec::new();
    let mut batch = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let c = match i % 4 {
            0 | 1 => answered(&tid, *id, &number_of(i), i as i64, (i % 7) as i64, "A级", 10),
            2 => unanswered(&tid, *id, &number_of(i), 3),
            _ => CallWrite { redial_in_secs: Some(600), ..unanswered(&tid, *id, &number_of(i), 4) },
        };
        if i < 20 {
            single.push(c)
        } else {
            batch.push(c)
        }
    }
    for c in &single {
        assert!(s.write_call(c).await.expect("write_call"));
    }
    // A call id twice in one batch is written once.
    let mut with_dup = batch.clone();
    with_dup.push(batch[0].clone());
    let w = s.write_calls(&with_dup).await.expect("write_calls");
    assert_eq!(w.iter().filter(|w| **w).count(), 20);
    assert!(!w[20]);
    assert_eq!(s.write_calls(&batch).await.expect("replay"), vec![false; 20]);
    // Both halves left the same kind of rows.
    let per_half = |lo: usize, hi: usize| {
        let ids = &ids;
        async move {
            let mut out = Vec::new();
            for id in &ids[lo..hi] {
                let r = sqlx::query(s.sql(
                    "SELECT n.status, n.status_str, n.attempts, n.bill, (SELECT COUNT(*) FROM records r WHERE r.number_id = n.id) AS recs, (SELECT COUNT(*) FROM record_details d JOIN records r ON r.id = d.record_id WHERE r.number_id = n.id) AS dets, (SELECT COUNT(*) FROM auto_call_histories h WHERE h.number_id = n.id) AS hist, (SELECT COUNT(*) FROM records r WHERE r.number_id = n.id AND r.province_id = 32 AND r.city_id = 3201 AND r.operator = 2) AS located FROM autodialer_number n WHERE n.id = ?",
                ))
                .bind(*id)
                .fetch_one(s.pool())
                .await
                .expect("row");
                out.push((
                    r.try_get::<i64, _>("status").expect("status"),
                    r.try_get::<String, _>("status_str").expect("status_str"),
                    r.try_get::<i64, _>("recs").expect("recs"),
                    r.try_get::<i64, _>("dets").expect("dets"),
                    r.try_get::<i64, _>("hist").expect("hist"),
                    r.try_get::<i64, _>("bill").expect("bill"),
                    r.try_get::<i64, _>("located").expect("located"),
                ));
            }
            out
        }
    };
    let a = per_half(0, 20).await;
    let b = per_half(20, 40).await;
    assert_eq!(a, b);
    assert_eq!(a.iter().map(|r| r.3).sum::<i64>(), 100, "10 detail rows per answered call");
    assert_eq!(a.iter().map(|r| r.6).sum::<i64>(), 10, "every answered call's record has its location");
    let tags = count(s, "SELECT COUNT(*) FROM taggables WHERE taggable_type = ?", "record_detail").await;
    assert_eq!(tags, 20, "one tagged detail per answered call");
    assert_eq!(s.detail_rows(&tid).await.expect("details"), 200);
    assert_counts_exact(s, &tid).await;
}

/// The counters the record list reads instead of counting (migrations
/// 0011, 0013) agree with the rows: `record_counts` per talk-time second and
/// `record_facet_counts` per score and rounds value with
/// the task's records, `taggables.task_id` / `calldate` with the records'
/// tags (0011, 0012).
async fn assert_counts_exact(s: &Store, task_id: &str) {
    let pairs = |sql: &'static str| async move {
        sqlx::query(s.sql(sql))
            .bind(task_id.to_string())
            .fetch_all(s.pool())
            .await
            .expect(sql)
            .iter()
            .map(|r| (r.try_get::<i64, _>(0).expect("key"), r.try_get::<i64, _>(1).expect("value")))
            .collect::<Vec<(i64, i64)>>()
    };
    let mut per_second: BTreeMap<i64, i64> = BTreeMap::new();
    for (bill_ms, _) in pairs("SELECT bill, 0 FROM records WHERE task_id = ?").await {
        *per_second.entry(bill_ms.div_euclid(1000)).or_default() += 1;
    }
    let mut counted: BTreeMap<i64, i64> = BTreeMap::new();
    for (second, n) in pairs("SELECT bill_s, records FROM record_counts WHERE task_id = ?").await {
        *counted.entry(second).or_default() += n;
    }
    counted.retain(|_, n| *n != 0);
    assert_eq!(counted, per_second, "record_counts holds every record of the task once, by talk-time second");
    // record_facet_counts (0013): per score and per rounds value.
    for (column, sql, facet_sql) in [
        (
            "score",
            "SELECT score, 0 FROM records WHERE task_id = ?",
            "SELECT facet_value, records FROM record_facet_counts WHERE task_id = ? AND facet = 1",
        ),
        (
            "rounds",
            "SELECT rounds, 0 FROM records WHERE task_id = ?",
            "SELECT facet_value, records FROM record_facet_counts WHERE task_id = ? AND facet = 2",
        ),
    ] {
        let mut per_value: BTreeMap<i64, i64> = BTreeMap::new();
        for (v, _) in pairs(sql).await {
            *per_value.entry(v).or_default() += 1;
        }
        let mut counted: BTreeMap<i64, i64> = BTreeMap::new();
        for (v, n) in pairs(facet_sql).await {
            *counted.entry(v).or_default() += n;
        }
        counted.retain(|_, n| *n != 0);
        assert_eq!(counted, per_value, "record_facet_counts holds every record of the task once, by {column}");
    }
    let tagged =
        count(s, "SELECT COUNT(*) FROM taggables WHERE taggable_type = 'record' AND task_id = ?", task_id).await;
    let tags = count(
        s,
        "SELECT COUNT(*) FROM taggables tg JOIN records r ON r.id = tg.taggable_id \
         WHERE tg.taggable_type = 'record' AND r.task_id = ? AND tg.calldate = r.calldate",
        task_id,
    )
    .await;
    assert_eq!(tagged, tags, "every record tag carries its task and calldate");
    // record_tag_counts (0013): per tag, the task's tagged records.
    let per_tag = |sql: &'static str| async move {
        let mut m: BTreeMap<String, i64> = BTreeMap::new();
        for r in sqlx::query(s.sql(sql)).bind(task_id.to_string()).fetch_all(s.pool()).await.expect(sql) {
            *m.entry(r.try_get::<String, _>(0).expect("tag")).or_default() += r.try_get::<i64, _>(1).expect("n");
        }
        m.retain(|_, n| *n != 0);
        m
    };
    assert_eq!(
        per_tag("SELECT tag_id, records FROM record_tag_counts WHERE task_id = ?").await,
        per_tag("SELECT tag_id, 1 FROM taggables WHERE taggable_type = 'record' AND task_id = ?").await,
        "record_tag_counts holds every tagged record of the task once, by tag"
    );
    assert!(per_second.is_empty() || tags > 0, "the sample records are tagged");
}

/// A batch holding a call another transaction has written but not yet
/// committed waits for it and then skips that call (on PostgreSQL the
/// batch's history `COPY` hits the unique key and the batch is redone with
/// `INSERT … ON CONFLICT`).
async fn write_calls_waits_for_a_concurrent_writer_of_the_same_call(db: &Db) {
    let s = &db.store;
    let (tid, ids) = setup(s, 5).await;
    let calls: Vec<CallWrite> = (0..5).map(|i| answered(&tid, ids[i], &number_of(i), i as i64, 2, "A级", 3)).collect();
    let mut tx = s.begin_write().await.expect("begin");
    assert!(s.write_call_in(&mut tx, &calls[2]).await.expect("first writer"));
    let batch = {
        let (s, calls) = (s.clone(), calls.clone());
        tokio::spawn(async move { s.write_calls(&calls).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    tx.commit().await.expect("commit");
    let w = batch.await.expect("join").expect("batch");
    assert_eq!(w, vec![true, true, false, true, true]);
    assert_eq!(footprint(s, &tid).await[..3], [5, 5, 15]);
    assert_counts_exact(s, &tid).await;
}

async fn summaries_count_statuses_levels_and_rounds(db: &Db) {
    let s = &db.store;
    let (tid, ids) = setup(s, 6).await;
    assert_eq!(s.avg_rounds(&tid).await.expect("avg of nothing"), 0.0);
    let calls = vec![
        answered(&tid, ids[0], &number_of(0), 50, 3, "A级", 1),
        answered(&tid, ids[1], &number_of(1), 40, 4, "A级", 1),
        answered(&tid, ids[2], &number_of(2), 10, 6, "C级", 1),
        unanswered(&tid, ids[3], &number_of(3), 3),
        unanswered(&tid, ids[4], &number_of(4), 3),
    ];
    for c in &calls {
        s.write_call(c).await.expect("write");
    }
    let st = s.status_counts(&tid).await.expect("status");
    assert_eq!(st, BTreeMap::from([(0, 1), (1, 3), (3, 2)]));
    let lv = s.level_counts(&tid).await.expect("levels");
    assert_eq!(lv, BTreeMap::from([("A级".to_string(), 2), ("C级".to_string(), 1)]));
    let avg = s.avg_rounds(&tid).await.expect("avg");
    assert!((avg - 13.0 / 3.0).abs() < 1e-9, "avg {avg}");
    assert_eq!(s.pending_numbers(&tid).await.expect("pending"), 1);
    assert_eq!(s.next_due(&tid).await.expect("next due"), Some(String::new()));
    s.mark_blacklisted(ids[5]).await.expect("blacklist");
    assert_eq!(s.status_counts(&tid).await.expect("status").get(&11), Some(&1));
    assert_eq!(s.next_due(&tid).await.expect("next due"), None);
    assert_eq!(count(s, "SELECT COUNT(*) FROM records WHERE task_id = ? AND score >= 40", &tid).await, 2);
}

/// The record list's totals that come from the count tables (levels alone,
/// rounds alone: `record_facet_counts`, 0013) and its deep pages (ids
/// first, then the rows) give what the rows themselves give.
async fn record_list_totals_and_deep_pages_agree_with_the_rows(db: &Db) {
    use voxdial::store::api::RecordFilter;
    let s = &db.store;
    let (tid, ids) = setup(s, 180).await;
    let mut calls = Vec::new();
    // (calldate, record id, score, rounds) of every record written.
    let mut want = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let mut c = answered(&tid, *id, &number_of(i), (i as i64 * 7) % 100, i as i64 % 9, "A级", 1);
        // Distinct calldates, not in id order.
        c.calldate = format!("2020-04-{:02} 10:{:02}:{:02}", 1 + (i * 37) % 28, i / 60, i % 60);
        if let Some(r) = &c.record {
            want.push((c.calldate.clone(), r.id.clone(), r.score, r.rounds));
        }
        calls.push(c);
    }
    // Two batches (the COPY path on PostgreSQL) and some calls one by one.
    for chunk in calls[..160].chunks(80) {
        assert!(s.write_calls(chunk).await.expect("write_calls").iter().all(|w| *w));
    }
    for c in &calls[160..] {
        assert!(s.write_call(c).await.expect("write_call"));
    }
    want.sort_by(|a, b| (&b.0, &b.1).cmp(&(&a.0, &a.1)));
    let filter = |page: i64, levels: Vec<(i64, i64)>, rounds: Option<(i64, i64)>| RecordFilter {
        task_id: tid.clone(),
        page,
        per_page: 10,
        levels,
        rounds,
        ..RecordFilter::default()
    };
    let matching = |levels: &[(i64, i64)], rounds: Option<(i64, i64)>| -> Vec<String> {
        want.iter()
            .filter(|w| levels.is_empty() || levels.iter().any(|(lo, hi)| w.2 >= *lo && w.2 < *hi))
            .filter(|w| rounds.is_none_or(|(lo, hi)| w.3 >= lo && w.3 < hi))
            .map(|w| w.1.clone())
            .collect()
    };
    // (score ranges, rounds range)
    let cases: [(&[(i64, i64)], _); 4] =
        [(&[], None), (&[(0, 30), (60, 75)], None), (&[], Some((2, 5))), (&[(10, 90)], Some((0, 7)))];
    for (levels, rounds) in cases {
        let levels = levels.to_vec();
        let all = matching(&levels, rounds);
        let pages = (all.len() as i64 + 9) / 10;
        for page in [1, 2, pages - 1, pages, pages + 1] {
            if page < 1 {
                continue;
            }
            let (rows, total) = s.query_records(&filter(page, levels.clone(), rounds)).await.expect("query_records");
            assert_eq!(total, all.len() as i64, "total of levels {levels:?} rounds {rounds:?}");
            let got: Vec<String> = rows.iter().map(|r| r["id"].as_str().expect("id").to_string()).collect();
            let lo = ((page - 1) * 10) as usize;
            let expect: Vec<String> = all.iter().skip(lo).take(10).cloned().collect();
            assert_eq!(got, expect, "page {page} of levels {levels:?} rounds {rounds:?}, newest first");
        }
    }
    assert_counts_exact(s, &tid).await;
}

/// Totals of combined ranges (no count table serves them) from the
/// in-memory count index equal the rows, and a task written after the index
/// was built is counted in SQL again, still exactly.
async fn combined_range_totals_from_the_count_index_agree_with_the_rows(db: &Db) {
    use voxdial::store::api::RecordFilter;
    let s = &db.store;
    let (tid, ids) = setup(s, 150).await;
    // (calldate, score, bill ms, rounds) of every record written.
    let mut want: Vec<(String, i64, i64, i64)> = Vec::new();
    let mut calls = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let mut c = answered(&tid, *id, &number_of(i), (i as i64 * 7) % 100, i as i64 % 9, "A级", 1);
        c.calldate = format!("2020-0{}-{:02} 10:{:02}:{:02}", 4 + i % 3, 1 + (i * 37) % 28, i / 60, i % 60);
        c.bill_ms = (i as i64 * 1_370) % 120_000;
        want.push((c.calldate.clone(), (i as i64 * 7) % 100, c.bill_ms, i as i64 % 9));
        calls.push(c);
    }
    for chunk in calls[..120].chunks(60) {
        assert!(s.write_calls(chunk).await.expect("write_calls").iter().all(|w| *w));
    }
    s.configure_count_index(10_000, 1);
    let filters: Vec<RecordFilter> = vec![
        (vec![(10, 60)], Some((5_000, 90_000)), Some((1, 6)), None, None),
        (vec![(0, 30), (60, 100)], Some((0, 60_000)), None, Some("2020-05-01 00:00:00"), Some("2020-05-31 23:59:59")),
        (vec![], Some((20_000, 80_000)), Some((2, 9)), Some("2020-04-10 00:00:00"), None),
        (vec![(50, 51)], None, Some((0, 3)), None, Some("2020-06-15 10:00:30")),
        (vec![(0, 100)], Some((0, 120_000)), Some((0, 9)), Some("2020-06-30 00:00:00"), Some("2020-04-01 00:00:00")),
    ]
    .into_iter()
    .map(|(levels, bill_ms, rounds, start, end): (Vec<(i64, i64)>, _, _, Option<&str>, Option<&str>)| RecordFilter {
        task_id: tid.clone(),
        page: 1,
        per_page: 15,
        levels,
        bill_ms,
        rounds,
        start_at: start.map(String::from),
        end_at: end.map(String::from),
        ..RecordFilter::default()
    })
    .collect();
    let expected = |f: &RecordFilter, written: usize| -> i64 {
        want[..written]
            .iter()
            .filter(|(d, score, bill, rounds)| {
                f.start_at.as_ref().is_none_or(|a| d >= a)
                    && f.end_at.as_ref().is_none_or(|e| d <= e)
                    && (f.levels.is_empty() || f.levels.iter().any(|(lo, hi)| score >= lo && score < hi))
                    && f.bill_ms.is_none_or(|(lo, hi)| *bill >= lo && *bill < hi)
                    && f.rounds.is_none_or(|(lo, hi)| *rounds >= lo && *rounds < hi)
            })
            .count() as i64
    };
    // The first query counts in SQL and starts the build.
    let (_, total) = s.query_records(&filters[0]).await.expect("query");
    assert_eq!(total, expected(&filters[0], 120));
    for _ in 0..200 {
        if s.count_index_ready(&tid) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(s.count_index_ready(&tid), "the index was not built within 10 s");
    let hits = s.count_index_hits();
    for f in &filters {
        let (rows, total) = s.query_records(f).await.expect("query");
        assert_eq!(total, expected(f, 120), "indexed total of {f:?}");
        assert_eq!(rows.len() as i64, total.min(15), "page of {f:?}");
    }
    assert_eq!(s.count_index_hits(), hits + filters.len() as u64, "every total came from the index");
    // More records written by this store: the index follows them.
    assert!(s.write_calls(&calls[120..130]).await.expect("write_calls").iter().all(|w| *w));
    assert!(s.write_call(&calls[130]).await.expect("write_call"));
    assert!(!s.write_call(&calls[130]).await.expect("write_call again"), "idempotent");
    let hits = s.count_index_hits();
    for f in &filters {
        let (_, total) = s.query_records(f).await.expect("query");
        assert_eq!(total, expected(f, 131), "total of {f:?} after more records");
    }
    assert_eq!(s.count_index_hits(), hits + filters.len() as u64, "the index did not follow this store's writes");
    // Records written by another node (another store on the same database):
    // the index no longer holds the task's total, so totals are counted in
    // SQL, still exactly.
    let other = Store::connect(&db.url).await.expect("second store");
    assert!(other.write_calls(&calls[131..140]).await.expect("write_calls").iter().all(|w| *w));
    let hits = s.count_index_hits();
    for f in &filters {
        let (_, total) = s.query_records(f).await.expect("query");
        assert_eq!(total, expected(f, 140), "total of {f:?} after another node's records");
    }
    assert_eq!(s.count_index_hits(), hits, "a stale index answered");
    // Rebuilt from scratch while this store keeps writing: the build's
    // snapshot and the writes committing around it hand over exactly (a
    // record counted twice or lost would leave the index off the total
    // for good, and no total would come from it).
    s.configure_count_index(0, 1);
    s.configure_count_index(10_000, 1);
    let (_, total) = s.query_records(&filters[1]).await.expect("query");
    assert_eq!(total, expected(&filters[1], 140));
    for c in &calls[140..] {
        assert!(s.write_call(c).await.expect("write_call"));
    }
    for _ in 0..200 {
        if s.count_index_ready(&tid) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let hits = s.count_index_hits();
    for f in &filters {
        let (_, total) = s.query_records(f).await.expect("query");
        assert_eq!(total, expected(f, 150), "total of {f:?} after the rebuild");
    }
    assert_eq!(s.count_index_hits(), hits + filters.len() as u64, "the rebuilt index lost or doubled a record");
    s.configure_count_index(0, 1);
}

async fn too_long_strings_are_refused_naming_the_column(db: &Db) {
    let s = &db.store;
    let (tid, ids) = setup(s, 1).await;
    let before = footprint(s, &tid).await;
    let mut c = answered(&tid, ids[0], &number_of(0), 1, 1, "A级", 2);
    c.number = "1".repeat(33);
    let e = s.write_call(&c).await.expect_err("too long number");
    assert!(matches!(e, StoreError::TooLong { column: "number", len: 33, max: 32, .. }), "{e:?}");
    assert_eq!(e.to_string(), "auto_call_histories.number is too long: 33 characters, at most 32 allowed");
    let mut c = answered(&tid, ids[0], &number_of(0), 1, 1, "A级", 2);
    if let Some(r) = c.record.as_mut() {
        r.level_name = Some("级".repeat(256));
        r.details[1].question = "字".repeat(30_000); // 90,000 bytes > MySQL TEXT
    }
    let e = s.write_calls(std::slice::from_ref(&c)).await.expect_err("too long level name");
    assert!(e.to_string().starts_with("records.level_name is too long: 256 characters"), "{e}");
    if let Some(r) = c.record.as_mut() {
        r.level_name = Some("级".repeat(255)); // fits: widths count characters
    }
    let e = s.write_call(&c).await.expect_err("too long question");
    assert!(e.to_string().starts_with("record_details.question is too long: 90000 bytes, at most 65535"), "{e}");
    let mut c2 = c.clone();
    if let Some(r) = c2.record.as_mut() {
        r.details[1].question = "nul\0inside".into();
    }
    let e = s.write_call(&c2).await.expect_err("NUL");
    assert_eq!(e.to_string(), "record_details.question contains a NUL character at byte 3");
    assert_eq!(footprint(s, &tid).await, before, "a refused call wrote rows");
    if let Some(r) = c.record.as_mut() {
        r.details[1].question = "字".repeat(21_845); // 65,535 bytes: the most that fits everywhere
    }
    assert!(s.write_call(&c).await.expect("fits"));
    let q: String = sqlx::query(s.sql("SELECT question FROM record_details WHERE callid = ? AND sequence = 2"))
        .bind(&c.callid)
        .fetch_one(s.pool())
        .await
        .expect("question")
        .try_get("question")
        .expect("question");
    assert_eq!(q.chars().count(), 21_845, "stored whole");
    // Below the store's checks, the servers themselves refuse rather than
    // truncate (MySQL runs with STRICT_ALL_TABLES).
    if db.kind != Kind::Sqlite {
        let e = sqlx::query(s.sql("INSERT INTO users (id, name, created_at, updated_at) VALUES (?, ?, ?, ?)"))
            .bind("u2")
            .bind("x".repeat(256))
            .bind("2020-01-01 00:00:00")
            .bind("2020-01-01 00:00:00")
            .execute(s.pool())
            .await
            .expect_err("the server must refuse a too-long name");
        let m = e.to_string();
        assert!(m.contains("too long"), "{m}");
        assert_eq!(count(s, "SELECT COUNT(*) FROM users WHERE id = ?", "u2").await, 0);
    }
    assert_eq!(s.backend() == Backend::Sqlite, db.kind == Kind::Sqlite);
}

async fn unicode_survives_the_round_trip(db: &Db) {
    let s = &db.store;
    let (tid, ids) = setup(s, 5).await;
    let text = "您好😀，𠀀 émoji – ‘quotes’ \\ back\\slash ? $1 %";
    let mut c = answered(&tid, ids[0], &number_of(0), 1, 1, "A级😀", 1);
    if let Some(r) = c.record.as_mut() {
        r.details[0].question = text.into();
    }
    assert!(s.write_call(&c).await.expect("write"));
    let r = sqlx::query(s.sql(
        "SELECT d.question, r.level_name FROM record_details d JOIN records r ON r.id = d.record_id WHERE d.callid = ?",
    ))
    .bind(&c.callid)
    .fetch_one(s.pool())
    .await
    .expect("row");
    assert_eq!(r.try_get::<String, _>("question").expect("q"), text);
    assert_eq!(r.try_get::<String, _>("level_name").expect("l"), "A级😀");
    // Case-sensitive like SQLite and PostgreSQL (utf8mb4_bin on MySQL).
    let n = count(s, "SELECT COUNT(*) FROM records WHERE level_name = ?", "a级😀").await;
    assert_eq!(n, 0);
    // A batch (PostgreSQL: binary COPY; text COPY had escapes and a NULL
    // marker to get right) keeps every byte, NULL apart from the empty
    // string, and integers as they were.
    let tricky = "tab\there\nnew line\r\n \\N \\t \\\\ 引号\" ' \u{1}";
    let batch: Vec<CallWrite> = (1..5)
        .map(|i| {
            let mut c = answered(&tid, ids[i], &number_of(i), 1, 1, tricky, 2);
            if let Some(r) = c.record.as_mut() {
                r.details[0].question = tricky.into();
                r.details[0].keyword = Some(String::new());
                r.details[1].keyword = None;
            }
            c
        })
        .collect();
    assert_eq!(s.write_calls(&batch).await.expect("batch"), vec![true; 4]);
    for c in &batch {
        let r = sqlx::query(s.sql(
            "SELECT d.question, d.keyword, r.level_name, r.bill, r.rounds, d.speak_ms, d.decision_us, d.bridge_status FROM record_details d JOIN records r ON r.id = d.record_id WHERE d.callid = ? ORDER BY d.sequence",
        ))
        .bind(&c.callid)
        .fetch_all(s.pool())
        .await
        .expect("rows");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].try_get::<String, _>("question").expect("q"), tricky);
        assert_eq!(r[0].try_get::<String, _>("level_name").expect("l"), tricky);
        assert_eq!(r[0].try_get::<Option<String>, _>("keyword").expect("k"), Some(String::new()));
        assert_eq!(r[1].try_get::<Option<String>, _>("keyword").expect("k"), None);
        assert_eq!(r[0].try_get::<i64, _>("bill").expect("bill"), 95_000);
        assert_eq!(r[0].try_get::<i64, _>("rounds").expect("rounds"), 1);
        assert_eq!(r[1].try_get::<i64, _>("speak_ms").expect("speak_ms"), 1200);
        assert_eq!(r[1].try_get::<Option<i64>, _>("decision_us").expect("decision_us"), Some(850));
        assert_eq!(r[1].try_get::<Option<i64>, _>("bridge_status").expect("bridge_status"), None);
    }
}
