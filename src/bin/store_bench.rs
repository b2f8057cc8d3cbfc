//! `store-bench`: store throughput and query latency on any backend (a
//! benchmark, not a test; figures in docs/bench-store.md).
//!
//! 1. insert: finalized calls (history row, record, 10 detail rows, a tag,
//!    number update, update of the ledger row written in setup), one
//!    `write_call` at a time and in
//!    `write_calls` batches, from `--concurrency` tasks.
//! 2. query: seed 000's `query_done_task_phones` filter (task_id and score,
//!    bill, rounds and calldate ranges, ORDER BY calldate DESC LIMIT 15
//!    OFFSET …, plus its COUNT(*)) over `--records` records of one task,
//!    p50/p99 over `--queries` random filters; then the same filter through
//!    `Store::query_records`, the API's path (page and count concurrently).
//!
//! Point it at an empty scratch database: it migrates it and adds rows.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use sqlx::Row;
use voxdial::store::api::RecordFilter;
use voxdial::store::call::RecordWrite;
use voxdial::store::{Backend, CallWrite, DetailWrite, Store, Task};

#[derive(Parser, Debug)]
#[command(name = "store-bench", about = "voxdial store benchmark")]
struct Args {
    /// sqlite://…, postgres://… or mysql://… (a scratch database)
    #[arg(long)]
    database_url: String,
    /// Finalized calls to write per insert mode (0: skip the insert part).
    #[arg(long, default_value_t = 20_000)]
    calls: usize,
    /// Calls per `write_calls` batch.
    #[arg(long, default_value_t = 200)]
    batch: usize,
    /// Concurrent writers.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Calls written one by one (`write_call`); 0 skips that mode.
    #[arg(long, default_value_t = 5_000)]
    single_calls: usize,
    /// Records of the query task (0: skip the query part).
    #[arg(long, default_value_t = 1_000_000)]
    records: usize,
    /// Query samples.
    #[arg(long, default_value_t = 400)]
    queries: usize,
    /// `query_records` samples per single filter (0: skip that part).
    #[arg(long, default_value_t = 100)]
    filter_queries: usize,
    /// Random (v4) record ids instead of the finalizer's time-ordered ones,
    /// to measure what the ordering is worth.
    #[arg(long)]
    random_record_ids: bool,
    /// Random seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

const USER: &str = "bench-user";
const BENCH_TAG: &str = "bench-tag";

/// A small deterministic generator (splitmix64): the same seed gives the
/// same filters on every backend.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }
}

fn task(uuid: &str) -> Task {
    Task {
        start: 0,
        maximumcall: 100,
        call_per_second: 50.0,
        origination_caller_id_number: "02512345678".into(),
        ..Task::new(uuid, format!("bench {uuid}"), USER, 1)
    }
}

/// Insert `n` numbers for a task with multi-row statements; returns their ids.
async fn bulk_numbers(s: &Store, task_id: &str, n: usize) -> Result<Vec<(i64, String)>> {
    let now = voxdial::store::now_str();
    for start in (0..n).step_by(1000) {
        let rows = (n - start).min(1000);
        let vals = vec!["(?, ?, ?, ?, ?)"; rows].join(", ");
        let q = format!(
            "INSERT INTO autodialer_number (task_id, number, next_attempt_at, created_at, updated_at) VALUES {vals}"
        );
        let mut query = sqlx::query(s.sql(&q));
        for i in start..start + rows {
            query =
                query.bind(task_id.to_string()).bind(format!("139{i:08}")).bind("").bind(now.clone()).bind(now.clone());
        }
        query.execute(s.pool()).await?;
    }
    let rows = sqlx::query(s.sql("SELECT id, number FROM autodialer_number WHERE task_id = ? ORDER BY id"))
        .bind(task_id)
        .fetch_all(s.pool())
        .await?;
    rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("number")?))).collect()
}

/// The ledger rows the dialer writes before each originate (setup, not
/// measured), so the finalizer's ledger UPDATE has rows to change; all
/// calls of one task.
async fn bulk_ledger(s: &Store, calls: &[CallWrite]) -> Result<()> {
    let now = voxdial::store::now_str();
    for chunk in calls.chunks(1000) {
        let vals = vec!["(?, ?, ?, ?, ?, 'bench', 'originating', ?, ?)"; chunk.len()].join(", ");
        let q = format!(
            "INSERT INTO dial_ledger (task_id, number_id, number, attempt, origination_uuid, node_id, state, created_at, updated_at) VALUES {vals}"
        );
        let mut query = sqlx::query(s.sql(&q));
        for c in chunk {
            query = query
                .bind(c.task_id.clone())
                .bind(c.number_id)
                .bind(c.number.clone())
                .bind(c.attempt)
                .bind(c.callid.clone())
                .bind(now.clone())
                .bind(now.clone());
        }
        query.execute(s.pool()).await?;
    }
    // Store::ledger_begin lists each attempt in open_dials too (0014); the
    // finalizer deletes it there.
    let task = calls.first().map(|c| c.task_id.clone()).unwrap_or_default();
    sqlx::query(s.sql(
        "INSERT INTO open_dials (origination_uuid, node_id, number_id, ledger_id) SELECT origination_uuid, node_id, number_id, id FROM dial_ledger WHERE task_id = ?",
    ))
    .bind(task)
    .execute(s.pool())
    .await?;
    Ok(())
}

fn call(task_id: &str, number_id: i64, number: &str, i: usize, random_id: bool) -> CallWrite {
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
            id: if random_id { uuid::Uuid::new_v4().to_string() } else { voxdial::store::call::time_ordered_id() },
            score: (i % 100) as i64,
            level_id: Some("1:level-a".into()),
            level_name: Some("A级".into()),
            intention_results: Some(1),
            rounds: (i % 12) as i64,
            gender: Some(1),
            tags: vec!["tag-interested".into()],
            details: (1..=10)
                .map(|seq| DetailWrite {
                    notify: if seq == 1 { "enter".into() } else { "asrmessage_notify".into() },
                    question: format!("客户第{seq}句话，关于价格和服务的问题"),
                    question_index: seq - 1,
                    speak_ms: 1800,
                    play_ms: 4200,
                    keyword: Some("价格".into()),
                    answer_id: Some("1:u-price".into()),
                    answer_text: Some("价格介绍".into()),
                    answer_content: Some("我们的价格是每月九十九元，包含全部服务。".into()),
                    answer_action: None,
                    word_class: Some("16".into()),
                    score: 2,
                    sequence: seq,
                    asr_elapse: Some(230),
                    gender: Some(1),
                    asrtype: Some("aliyun".into()),
                    decision_us: Some(850),
                    tags: vec![],
                    created_at: "2020-03-06 22:31:10".into(),
                    bridge_status: None,
                    voice: None,
                    robot_voice: Vec::new(),
                })
                .collect(),
        }),
    }
}

/// `calls` in writes of `batch`, last first: `pop()` then hands them out in
/// the order they were built (and their time-ordered record ids were
/// taken), as calls ending one after the other would reach the store. Moved,
/// not cloned, and before the measured part: the finalizer owns its calls.
fn batches(calls: Vec<CallWrite>, batch: usize) -> Vec<Vec<CallWrite>> {
    let mut out = Vec::with_capacity(calls.len() / batch.max(1) + 1);
    let mut it = calls.into_iter().peekable();
    while it.peek().is_some() {
        out.push(it.by_ref().take(batch.max(1)).collect());
    }
    out.reverse();
    out
}

/// Write `chunks` (see [`batches`]) from `concurrency` tasks (`batch` 1:
/// `write_call`).
async fn insert_run(
    s: &Store,
    chunks: Vec<Vec<CallWrite>>,
    batch: usize,
    concurrency: usize,
) -> Result<(usize, Duration)> {
    let n = chunks.iter().map(Vec::len).sum::<usize>();
    let queue = std::sync::Arc::new(std::sync::Mutex::new(chunks));
    let t0 = Instant::now();
    let mut handles = Vec::new();
    for _ in 0..concurrency.max(1) {
        let s = s.clone();
        let queue = queue.clone();
        handles.push(tokio::spawn(async move {
            let mut written = 0_usize;
            loop {
                let next = queue.lock().map_err(|_| anyhow::anyhow!("queue poisoned"))?.pop();
                let Some(chunk) = next else { break };
                if chunk.len() == 1 && batch == 1 {
                    written += usize::from(s.write_call(&chunk[0]).await?);
                } else {
                    written += s.write_calls(&chunk).await?.iter().filter(|w| **w).count();
                }
            }
            anyhow::Ok(written)
        }));
    }
    let mut written = 0;
    for h in handles {
        written += h.await??;
    }
    let el = t0.elapsed();
    if written != n {
        bail!("wrote {written} of {n} calls");
    }
    Ok((written, el))
}

/// Fill `task_id` with `n` records straight in SQL (setup, not measured):
/// calldate spread evenly over 90 days and inserted in calldate order, with
/// time-ordered ids (as the finalizer appends records as calls end), score
/// 0–100, bill 0–300 s (in ms), rounds 0–20, callee 1380000000x.
async fn bulk_records(s: &Store, task_id: &str, n: usize) -> Result<()> {
    // Pseudo-random but deterministic columns from the row number g.
    let cols = |g: &str| {
        (format!("(({g} * 7919) % 101)"), format!("((({g} * 104729) % 300001))"), format!("(({g} * 31) % 21)"))
    };
    // Seconds after 2020-01-01 of row g: increasing with g, 90 days in all.
    let secs = |g: &str| format!("((({g} - 1) * 7776000) / {})", n.max(1));
    match s.backend() {
        Backend::Postgres => {
            let (score, bill, rounds) = cols("g");
            let s_ = secs("g");
            let q = format!(
                "INSERT INTO records (id, task_id, user_id, group_id, callid, score, callee, duration, calldate, bill, rounds, level_name, created_at, updated_at) \
                 SELECT substr(h, 1, 8) || '-' || substr(h, 9, 4) || '-7' || substr(m, 1, 3) || '-8' || substr(m, 4, 3) || '-' || substr(m, 7, 12), \
                 $1, $2, 1, md5('c' || g::text || $1), {score}, '138' || lpad(g::text, 8, '0'), 0, \
                 to_char(timestamp '2020-01-01' + {s_} * interval '1 second', 'YYYY-MM-DD HH24:MI:SS'), \
                 {bill}, {rounds}, 'A级', '2020-01-01 00:00:00', '2020-01-01 00:00:00' \
                 FROM generate_series(1, $3) AS g, \
                 LATERAL (SELECT lpad(to_hex(1577836800000 + {s_} * 1000 + g % 1000), 12, '0') AS h, md5(g::text || $1) AS m) AS v"
            );
            sqlx::query(sqlx::AssertSqlSafe(q)).bind(task_id).bind(USER).bind(n as i64).execute(s.pool()).await?;
            sqlx::query("VACUUM ANALYZE records").execute(s.pool()).await?;
        }
        Backend::MySql => {
            let (score, bill, rounds) = cols("seq");
            let s_ = secs("seq");
            let step = 100_000;
            for lo in (1..=n).step_by(step) {
                let hi = (lo + step - 1).min(n);
                let q = format!(
                    "INSERT INTO records (id, task_id, user_id, group_id, callid, score, callee, duration, calldate, bill, rounds, level_name, created_at, updated_at) \
                     SELECT CONCAT(LPAD(HEX({s_}), 12, '0'), '-', MD5(CONCAT(seq, ?))), ?, ?, 1, MD5(CONCAT('c', seq, ?)), {score}, CONCAT('138', LPAD(seq, 8, '0')), 0, \
                     DATE_FORMAT(TIMESTAMP '2020-01-01 00:00:00' + INTERVAL {s_} SECOND, '%Y-%m-%d %H:%i:%s'), \
                     {bill}, {rounds}, 'A级', '2020-01-01 00:00:00', '2020-01-01 00:00:00' FROM seq_{lo}_to_{hi}"
                );
                sqlx::query(sqlx::AssertSqlSafe(q))
                    .bind(task_id)
                    .bind(task_id)
                    .bind(USER)
                    .bind(task_id)
                    .execute(s.pool())
                    .await?;
            }
            sqlx::query("ANALYZE TABLE records").execute(s.pool()).await?;
        }
        Backend::Sqlite => {
            let (score, bill, rounds) = cols("g");
            let s_ = secs("g");
            let q = format!(
                "WITH RECURSIVE seq(g) AS (SELECT 1 UNION ALL SELECT g + 1 FROM seq WHERE g < ?) \
                 INSERT INTO records (id, task_id, user_id, group_id, callid, score, callee, duration, calldate, bill, rounds, level_name, created_at, updated_at) \
                 SELECT ? || '-' || substr('00000000' || g, -8, 8), ?, ?, 1, ? || '-c' || g, {score}, '138' || substr('00000000' || g, -8, 8), 0, \
                 datetime('2020-01-01 00:00:00', '+' || {s_} || ' seconds'), \
                 {bill}, {rounds}, 'A级', '2020-01-01 00:00:00', '2020-01-01 00:00:00' FROM seq"
            );
            sqlx::query(sqlx::AssertSqlSafe(q))
                .bind(n as i64)
                .bind(task_id)
                .bind(task_id)
                .bind(USER)
                .bind(task_id)
                .execute(s.pool())
                .await?;
            sqlx::query("ANALYZE").execute(s.pool()).await?;
        }
    }
    Ok(())
}

/// `record_counts`, `record_facet_counts` and `record_tag_counts` of
/// records and tags filled in SQL (the write path keeps them for the records
/// it writes; bills here are never negative). Call after the tags are in.
async fn fill_record_counts(s: &Store, task_id: &str) -> Result<()> {
    let sec = if s.backend() == Backend::MySql { "bill DIV 1000" } else { "bill / 1000" };
    let q = format!(
        "INSERT INTO record_counts (task_id, bill_s, records) SELECT task_id, {sec}, COUNT(*) FROM records WHERE task_id = ? GROUP BY task_id, {sec}"
    );
    sqlx::query(s.sql(&q)).bind(task_id).execute(s.pool()).await?;
    for (facet, col) in [(1, "score"), (2, "rounds")] {
        let q = format!(
            "INSERT INTO record_facet_counts (task_id, facet, facet_value, records) SELECT task_id, {facet}, {col}, COUNT(*) FROM records WHERE task_id = ? GROUP BY task_id, {col}"
        );
        sqlx::query(s.sql(&q)).bind(task_id).execute(s.pool()).await?;
    }
    sqlx::query(s.sql(
        "INSERT INTO record_tag_counts (task_id, tag_id, records) SELECT task_id, tag_id, COUNT(*) FROM taggables WHERE task_id = ? AND taggable_type = 'record' GROUP BY task_id, tag_id",
    ))
    .bind(task_id)
    .execute(s.pool())
    .await?;
    Ok(())
}

/// CPU seconds used so far by this process, by the database server's
/// processes (`postgres`, `mariadbd`/`mysqld`) and by each of those
/// processes (pid → seconds), from /proc (Linux; 0 when unreadable). The
/// machine may be shared, so wall-clock throughput alone understates what
/// the store costs; CPU per call doesn't.
fn cpu_secs() -> (f64, f64, std::collections::HashMap<u32, f64>) {
    // USER_HZ is 100 on every Linux architecture voxdial targets.
    const HZ: f64 = 100.0;
    let ticks = |stat: &str| -> Option<(String, f64)> {
        let open = stat.find('(')?;
        let close = stat.rfind(')')?;
        let comm = stat.get(open + 1..close)?.to_string();
        let f: Vec<&str> = stat.get(close + 2..)?.split(' ').collect();
        // after "pid (comm) ": state is field 3, utime 14, stime 15
        let u: f64 = f.get(11)?.parse().ok()?;
        let s: f64 = f.get(12)?.parse().ok()?;
        Some((comm, (u + s) / HZ))
    };
    let own = std::fs::read_to_string("/proc/self/stat").ok().as_deref().and_then(ticks).map_or(0.0, |t| t.1);
    let mut server = 0.0;
    let mut procs = std::collections::HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            if let Ok(st) = std::fs::read_to_string(e.path().join("stat")) {
                if let Some((comm, t)) = ticks(&st) {
                    if comm == "postgres" || comm == "mariadbd" || comm == "mysqld" {
                        server += t;
                        procs.insert(pid, t);
                    }
                }
            }
        }
    }
    (own, server, procs)
}

/// The PostgreSQL backends serving this database's sessions (the bench's
/// pools): their CPU alone is the store's server cost, without whatever
/// other databases of a shared server are doing. Empty on other backends.
async fn session_pids(s: &Store) -> Result<Vec<u32>> {
    if s.backend() != Backend::Postgres {
        return Ok(Vec::new());
    }
    let rows = sqlx::query(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND backend_type = 'client backend'",
    )
    .fetch_all(s.pool())
    .await?;
    rows.iter().map(|r| Ok(u32::try_from(r.try_get::<i32, _>("pid")?)?)).collect()
}

/// PostgreSQL's WAL insert position in bytes (`None` on the other
/// backends): exact at once, where `pg_stat_wal` lags by up to the
/// backends' stats flush interval (it under-counted 3-second runs by up to ~20 %).
/// Server-wide: whatever else writes on the server counts too.
async fn wal_bytes(s: &Store) -> Result<Option<i64>> {
    if s.backend() != Backend::Postgres {
        return Ok(None);
    }
    let r = sqlx::query("SELECT CAST(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0') AS BIGINT) AS b")
        .fetch_one(s.pool())
        .await?;
    Ok(Some(r.try_get("b")?))
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn date(day: i64) -> String {
    let d = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap_or_default() + chrono::Days::new(day as u64);
    d.format("%Y-%m-%d").to_string()
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = Args::parse();
    let s = Store::open(&a.database_url).await.context("open")?;
    println!("backend {:?}, url {}", s.backend(), a.database_url);
    s.ensure_user(USER, "bench").await?;

    if a.calls > 0 || a.single_calls > 0 {
        for (mode, n, batch) in [("write_call", a.single_calls, 1), ("write_calls", a.calls, a.batch)] {
            if n == 0 {
                continue;
            }
            let tid = uuid::Uuid::new_v4().to_string();
            s.create_task(&task(&tid)).await?;
            let nums = bulk_numbers(&s, &tid, n).await?;
            let calls: Vec<CallWrite> = nums
                .iter()
                .enumerate()
                .map(|(i, (id, number))| call(&tid, *id, number, i, a.random_record_ids))
                .collect();
            bulk_ledger(&s, &calls).await?;
            let chunks = batches(calls, batch);
            let w0 = wal_bytes(&s).await?;
            let (c0, s0, p0) = cpu_secs();
            let (w, el) = insert_run(&s, chunks, batch, a.concurrency).await?;
            let (c1, s1, p1) = cpu_secs();
            let w1 = wal_bytes(&s).await?;
            // Sessions opened during the run (the COPY pool connects
            // lazily) count from 0.
            let sessions: f64 = session_pids(&s)
                .await?
                .iter()
                .map(|pid| p1.get(pid).copied().unwrap_or(0.0) - p0.get(pid).copied().unwrap_or(0.0))
                .sum();
            let details = s.detail_rows(&tid).await?;
            let finalized =
                s.count("SELECT COUNT(*) FROM dial_ledger WHERE task_id = ? AND state = 'finalized'", &tid).await?;
            if finalized != w as i64 {
                bail!("{finalized} ledger rows finalized for {w} calls");
            }
            println!(
                "insert {mode:<11} batch {batch:>4} x{} writers: {w} calls ({details} detail rows) in {:.2} s = {:.0} calls/s; CPU per call: client {:.0} µs, server {:.0} µs (this database's sessions {:.0} µs)",
                a.concurrency,
                el.as_secs_f64(),
                w as f64 / el.as_secs_f64(),
                (c1 - c0) * 1e6 / w as f64,
                (s1 - s0) * 1e6 / w as f64,
                sessions * 1e6 / w as f64,
            );
            if let (Some(w0), Some(w1)) = (w0, w1) {
                println!(
                    "  WAL per call (whole server, other databases included): {:.0} bytes",
                    (w1 - w0) as f64 / w as f64
                );
            }
        }
    }

    if a.records > 0 {
        let tid = uuid::Uuid::new_v4().to_string();
        s.create_task(&task(&tid)).await?;
        let t0 = Instant::now();
        bulk_records(&s, &tid, a.records).await?;
        // One record in ten tagged, for the tags filter.
        let now = voxdial::store::now_str();
        sqlx::query(s.sql(
            "INSERT INTO taggables (taggable_id, taggable_type, tag_id, created_at, updated_at, task_id, calldate) \
             SELECT id, 'record', ?, ?, ?, task_id, calldate FROM records WHERE task_id = ? AND score % 10 = 3",
        ))
        .bind(BENCH_TAG)
        .bind(now.clone())
        .bind(now)
        .bind(tid.clone())
        .execute(s.pool())
        .await?;
        fill_record_counts(&s, &tid).await?;
        if s.backend() == Backend::Postgres {
            sqlx::query("VACUUM ANALYZE taggables").execute(s.pool()).await?;
        }
        let have = s.count("SELECT COUNT(*) FROM records WHERE task_id = ?", &tid).await?;
        println!("query setup: {have} records in one task in {:.1} s", t0.elapsed().as_secs_f64());
        let filt = "task_id = ? AND score BETWEEN ? AND ? AND bill BETWEEN ? AND ? AND rounds BETWEEN ? AND ? AND calldate BETWEEN ? AND ?";
        let list = format!(
            "SELECT id, callee, score, bill, rounds, calldate, level_name, recordfile FROM records WHERE {filt} ORDER BY calldate DESC LIMIT 15 OFFSET ?"
        );
        let count = format!("SELECT COUNT(*) AS n FROM records WHERE {filt}");
        let mut rng = Rng(a.seed);
        let (mut tl, mut tc, mut tb, mut ta) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let mut total_hits = 0_i64;
        for i in 0..a.queries + 20 {
            // A page of the UI: score level range, bills in seconds (seed:
            // 通话时间(秒)) → ms, rounds, a 1–14 day window, pages 1–20.
            let lo = rng.range(0, 80);
            let score = (lo, lo + rng.range(10, 40));
            let b = rng.range(0, 120);
            let bill = (b * 1000, (b + rng.range(30, 180)) * 1000);
            let r = rng.range(0, 6);
            let rounds = (r, r + rng.range(2, 10));
            let d = rng.range(0, 75);
            let days = (date(d) + " 00:00:00", date(d + rng.range(1, 14)) + " 23:59:59");
            let offset = rng.range(0, 19) * 15;
            let bind = |q: &str| {
                sqlx::query(s.sql(q))
                    .bind(tid.clone())
                    .bind(score.0)
                    .bind(score.1)
                    .bind(bill.0)
                    .bind(bill.1)
                    .bind(rounds.0)
                    .bind(rounds.1)
                    .bind(days.0.clone())
                    .bind(days.1.clone())
            };
            let t0 = Instant::now();
            let rows = bind(&list).bind(offset).fetch_all(s.pool()).await?;
            let t1 = Instant::now();
            let n: i64 = bind(&count).fetch_one(s.pool()).await?.try_get("n")?;
            let t2 = Instant::now();
            // The API's own path: the same filter through Store::query_records
            // (ranges there are [min, max)), page and count concurrently.
            let f = RecordFilter {
                task_id: tid.clone(),
                page: offset / 15 + 1,
                per_page: 15,
                levels: vec![(score.0, score.1 + 1)],
                bill_ms: Some((bill.0, bill.1 + 1)),
                rounds: Some((rounds.0, rounds.1 + 1)),
                start_at: Some(days.0.clone()),
                end_at: Some(days.1.clone()),
                ..RecordFilter::default()
            };
            let t3 = Instant::now();
            let (api_rows, api_n) = s.query_records(&f).await?;
            let t4 = Instant::now();
            if rows.len() > 15 || api_rows.len() != rows.len() || api_n != n {
                bail!("page of {} / {} rows, count {n} / {api_n}", rows.len(), api_rows.len());
            }
            if i >= 20 {
                // the first 20 warm the caches and the statement cache
                tl.push((t1 - t0).as_secs_f64() * 1e3);
                tc.push((t2 - t1).as_secs_f64() * 1e3);
                tb.push((t2 - t0).as_secs_f64() * 1e3);
                ta.push((t4 - t3).as_secs_f64() * 1e3);
                total_hits += n;
            }
        }
        for v in [&mut tl, &mut tc, &mut tb, &mut ta] {
            v.sort_by(f64::total_cmp);
        }
        println!(
            "query_done_task_phones over {have} records, {} samples, mean COUNT(*) {:.0} rows:",
            a.queries,
            total_hits as f64 / a.queries.max(1) as f64
        );
        for (name, v) in [("page (LIMIT 15)", &tl), ("COUNT(*)", &tc), ("page + count", &tb), ("query_records", &ta)] {
            println!(
                "  {name:<16} p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
                pct(v, 0.5),
                pct(v, 0.99),
                v.last().copied().unwrap_or(0.0)
            );
        }
        if a.filter_queries > 0 {
            per_filter(&s, &tid, a.filter_queries, a.seed).await?;
        }
    }
    Ok(())
}

/// `Store::query_records` (the endpoint's store call: page and exact count)
/// with one filter at a time, as the UI sends them, p50/p99 per filter.
async fn per_filter(s: &Store, tid: &str, n: usize, seed: u64) -> Result<()> {
    println!("query_records per filter, {n} samples each (page 1–20 of 15):");
    let mut rng = Rng(seed ^ 0x5eed);
    for kind in ["none", "levels", "bills", "rounds", "window", "keyword", "tags", "all"] {
        let mut v = Vec::with_capacity(n);
        let mut hits = 0_i64;
        for i in 0..n + 5 {
            let lo = rng.range(0, 80);
            let b = rng.range(0, 120);
            let r = rng.range(0, 6);
            let d = rng.range(0, 75);
            let mut f = RecordFilter {
                task_id: tid.to_string(),
                page: rng.range(1, 20),
                per_page: 15,
                ..RecordFilter::default()
            };
            let window = |f: &mut RecordFilter, rng: &mut Rng| {
                f.start_at = Some(date(d) + " 00:00:00");
                f.end_at = Some(date(d + rng.range(1, 14)) + " 23:59:59");
            };
            match kind {
                "levels" => f.levels = vec![(lo, lo + rng.range(10, 40))],
                "bills" => f.bill_ms = Some((b * 1000, (b + rng.range(30, 180)) * 1000)),
                "rounds" => f.rounds = Some((r, r + rng.range(2, 10))),
                "window" => window(&mut f, &mut rng),
                // A 7-digit prefix of the callee: ~10,000 of 1M records.
                "keyword" => f.keyword = Some(format!("1380{:03}", rng.range(0, 99))),
                "tags" => f.tags = vec![BENCH_TAG.to_string()],
                "all" => {
                    f.levels = vec![(lo, lo + rng.range(10, 40))];
                    f.bill_ms = Some((b * 1000, (b + rng.range(30, 180)) * 1000));
                    f.rounds = Some((r, r + rng.range(2, 10)));
                    window(&mut f, &mut rng);
                }
                _ => {}
            }
            let t0 = Instant::now();
            let (_, total) = s.query_records(&f).await?;
            let took = t0.elapsed();
            if i == 0 && matches!(kind, "none" | "bills" | "tags") {
                // Totals not counted in records: check them against a count there.
                let mut q = String::from("SELECT COUNT(*) FROM records r WHERE r.task_id = ?");
                if let Some((a, b)) = f.bill_ms {
                    q.push_str(&format!(" AND r.bill >= {a} AND r.bill < {b}"));
                }
                if kind == "tags" {
                    q.push_str(
                        " AND EXISTS (SELECT 1 FROM taggables tg WHERE tg.tag_id = ? AND tg.taggable_id = r.id)",
                    );
                }
                let mut query = sqlx::query(s.sql(&q)).bind(tid.to_string());
                if kind == "tags" {
                    query = query.bind(BENCH_TAG);
                }
                let want = query.fetch_one(s.pool()).await?;
                let want: i64 = want.try_get(0)?;
                if want != total {
                    bail!("{kind}: total {total}, COUNT(*) {want}");
                }
            }
            if i >= 5 {
                v.push(took.as_secs_f64() * 1e3);
                hits += total;
            }
        }
        v.sort_by(f64::total_cmp);
        println!(
            "  {kind:<8} mean total {:>7.0}  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.2} ms",
            hits as f64 / n.max(1) as f64,
            pct(&v, 0.5),
            pct(&v, 0.99),
            v.last().copied().unwrap_or(0.0)
        );
    }
    Ok(())
}
