//! REST API benchmark: requests per second of `GET /v1/task/record_info` and
//! latency percentiles of `POST v1/task/query_done_task_phones` with filters,
//! on one task of N records, over real loopback sockets with keep-alive
//! connections.
//!
//! `cargo run --release --example api_bench -- [RECORDS] [SECONDS] [CONNECTIONS] [DATABASE_URL]`
//! (defaults 1000000, 5, 16, a temporary SQLite file). DATABASE_URL may be
//! `postgres://…` (an empty scratch database: it is migrated and filled).
//! Figures: docs/bench-api.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use voxdial::api::rest::{router, ApiConfig, RestState};
use voxdial::dialogue::{Script, SAMPLE_SCRIPT};
use voxdial::store::call::RecordWrite;
use voxdial::store::{Backend, CallWrite, DetailWrite, Store, Task};

/// A keep-alive HTTP/1.1 connection.
struct Conn {
    r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
    host: String,
}

impl Conn {
    async fn new(addr: SocketAddr) -> Conn {
        let s = TcpStream::connect(addr).await.unwrap();
        s.set_nodelay(true).unwrap();
        let (r, w) = s.into_split();
        Conn { r: BufReader::new(r), w, host: addr.to_string() }
    }

    async fn req(&mut self, method: &str, path: &str, token: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        self.w.write_all(head.as_bytes()).await.unwrap();
        self.w.write_all(body).await.unwrap();
        let mut line = String::new();
        self.r.read_line(&mut line).await.unwrap();
        let status: u16 = line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut len = 0usize;
        loop {
            line.clear();
            self.r.read_line(&mut line).await.unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
        }
        let mut buf = vec![0u8; len];
        self.r.read_exact(&mut buf).await.unwrap();
        (status, buf)
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let n: i64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1_000_000);
    let secs: u64 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(5);
    let conns: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(16);
    let dir = tempfile::tempdir().unwrap();
    let url = args.get(4).cloned().unwrap_or_else(|| format!("sqlite://{}/bench.db", dir.path().display()));
    let store = Store::open(&url).await.unwrap();
    let pg = store.backend() == Backend::Postgres;
    assert!(pg || store.backend() == Backend::Sqlite, "api_bench fills SQLite or PostgreSQL");
    let user = store.create_user("bench", None).await.unwrap();
    let token = store.create_api_token(&user, "bench", false).await.unwrap();
    let group = store.save_script(&user, &Script::from_json(SAMPLE_SCRIPT).unwrap()).await.unwrap();
    let task = uuid::Uuid::new_v4().to_string();
    store
        .create_task(&Task {
            start: 0,
            maximumcall: 10,
            call_per_second: 10.0,
            origination_caller_id_number: "300708".into(),
            ..Task::new(task.clone(), "bench", user.clone(), group)
        })
        .await
        .unwrap();
    let t0 = Instant::now();
    // N records generated in SQL: scores 0–499, bills 0–120 s, rounds 0–9,
    // call dates over 100 days, callees 1380000000x; one in ten tagged.
    let g = |s: &str| format!("{group}:{s}");
    let fill = if pg {
        // The same rows as the SQLite statement below.
        "INSERT INTO records (id, task_id, user_id, group_id, callid, score, callee, caller_number, duration, level_id, level_name, calldate, bill, hangupcause, hangupdate, answerdate, recordfile, hangup_disposition, rounds, province_id, city_id, operator, created_at, updated_at) \
         SELECT 'rec-' || lpad(x::text, 8, '0'), ?, ?, ?, 'call-' || lpad(x::text, 8, '0'), (x * 7919) % 500, '138' || lpad(x::text, 8, '0'), '300708', 60000, ?, 'B级(有意向)', \
                '2020-' || lpad((1 + x % 3)::text, 2, '0') || '-' || lpad((1 + x % 28)::text, 2, '0') || ' ' || lpad((x % 24)::text, 2, '0') || ':' || lpad((x % 60)::text, 2, '0') || ':00', \
                ((x * 104729) % 121) * 1000 + 250, 'NORMAL_CLEARING', \
                '2020-01-01 00:00:00', '2020-01-01 00:00:00', '/rec/138' || lpad(x::text, 8, '0') || '.wav', 1 + x % 2, x % 10, 3, 12, 2, '2020-01-01 00:00:00', '2020-01-01 00:00:00' \
         FROM generate_series(1, CAST(? AS BIGINT)) AS x"
    } else {
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < ?) \
         INSERT INTO records (id, task_id, user_id, group_id, callid, score, callee, caller_number, duration, level_id, level_name, calldate, bill, hangupcause, hangupdate, answerdate, recordfile, hangup_disposition, rounds, province_id, city_id, operator, created_at, updated_at) \
         SELECT printf('rec-%08d', x), ?, ?, ?, printf('call-%08d', x), (x * 7919) % 500, printf('138%08d', x), '300708', 60000, ?, 'B级(有意向)', \
                printf('2020-%02d-%02d %02d:%02d:00', 1 + (x % 3), 1 + (x % 28), x % 24, x % 60), ((x * 104729) % 121) * 1000 + 250, 'NORMAL_CLEARING', \
                '2020-01-01 00:00:00', '2020-01-01 00:00:00', printf('/rec/138%08d.wav', x), 1 + x % 2, x % 10, 3, 12, 2, '2020-01-01 00:00:00', '2020-01-01 00:00:00' FROM c"
    };
    let q = sqlx::query(store.sql(fill));
    let q = if pg { q } else { q.bind(n) };
    let q = q.bind(&task).bind(&user).bind(group).bind(g("lv-b"));
    let q = if pg { q.bind(n) } else { q };
    q.execute(store.pool()).await.unwrap();
    sqlx::query(store.sql(
        "INSERT INTO taggables (taggable_id, taggable_type, tag_id, created_at, updated_at, task_id, calldate) SELECT id, 'record', ?, created_at, created_at, task_id, calldate FROM records WHERE task_id = ? AND (CAST(substr(id, 5) AS INTEGER) % 10) = 0",
    ))
    .bind(g("tag-busy"))
    .bind(&task)
    .execute(store.pool())
    .await
    .unwrap();
    // The write path keeps record_counts; the SQL fill above bypasses it.
    sqlx::query(store.sql(
        "INSERT INTO record_counts (task_id, bill_s, records) SELECT task_id, bill / 1000, COUNT(*) FROM records WHERE task_id = ? GROUP BY task_id, bill / 1000",
    ))
    .bind(&task)
    .execute(store.pool())
    .await
    .unwrap();
    sqlx::query(store.sql(
        "INSERT INTO record_tag_counts (task_id, tag_id, records) SELECT task_id, tag_id, COUNT(*) FROM taggables WHERE task_id = ? AND taggable_type = 'record' GROUP BY task_id, tag_id",
    ))
    .bind(&task)
    .execute(store.pool())
    .await
    .unwrap();
    for (facet, col) in [(1, "score"), (2, "rounds")] {
        let q = format!(
            "INSERT INTO record_facet_counts (task_id, facet, facet_value, records) SELECT task_id, {facet}, {col}, COUNT(*) FROM records WHERE task_id = ? GROUP BY task_id, {col}"
        );
        sqlx::query(store.sql(&q)).bind(&task).execute(store.pool()).await.unwrap();
    }
    if pg {
        // As autovacuum would: statistics and the visibility map (index-only scans).
        sqlx::query("VACUUM ANALYZE records").execute(store.pool()).await.unwrap();
        sqlx::query("VACUUM ANALYZE taggables").execute(store.pool()).await.unwrap();
    } else {
        sqlx::query("ANALYZE").execute(store.pool()).await.unwrap();
    }
    eprintln!("{n} records generated in {:.1} s", t0.elapsed().as_secs_f64());
    // One full call with detail rows for record_info.
    let rec = uuid::Uuid::new_v4().to_string();
    let d = |seq: i64, notify: &str, ans: Option<&str>| DetailWrite {
        notify: notify.into(),
        question: "可以".into(),
        question_index: seq / 2,
        sequence: seq,
        answer_id: ans.map(&g),
        answer_text: ans.map(String::from),
        tags: if seq == 3 { vec![g("tag-interested")] } else { vec![] },
        created_at: "2020-01-01 00:00:00".into(),
        ..DetailWrite::default()
    };
    store
        .write_call(&CallWrite {
            callid: uuid::Uuid::new_v4().to_string(),
            task_id: task.clone(),
            user_id: user.clone(),
            group_id: group,
            number: "13900000000".into(),
            status: 1,
            calldate: "2020-01-01 00:00:00".into(),
            hangupdate: "2020-01-01 00:01:00".into(),
            record: Some(RecordWrite {
                id: rec.clone(),
                score: 100,
                level_id: Some(g("lv-b")),
                rounds: 3,
                tags: vec![g("tag-interested")],
                details: (1..=8)
                    .map(|i| d(i, if i == 1 { "enter" } else { "asrmessage_notify" }, Some("u-intro")))
                    .collect(),
                ..RecordWrite::default()
            }),
            ..CallWrite::default()
        })
        .await
        .unwrap();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = router(RestState::new(
        store.clone(),
        ApiConfig { http: Some(addr.to_string()), ..ApiConfig::default() },
        vec![],
    ));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // record_info throughput.
    let path = format!("/v1/task/record_info/{task}/{rec}");
    let mut c = Conn::new(addr).await;
    let (st, body) = c.req("GET", &path, &token, b"").await;
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut handles = Vec::new();
    for _ in 0..conns {
        let (path, token) = (path.clone(), token.clone());
        handles.push(tokio::spawn(async move {
            let mut c = Conn::new(addr).await;
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                let (st, _) = c.req("GET", &path, &token, b"").await;
                assert_eq!(st, 200);
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            lat
        }));
    }
    let mut lat = Vec::new();
    for h in handles {
        lat.extend(h.await.unwrap());
    }
    let rps = lat.len() as f64 / secs as f64;
    println!(
        "record_info: {rps:.0} req/s over {conns} connections for {secs} s (p50 {:.2} ms, p99 {:.2} ms, body {} bytes)",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
        body.len()
    );

    // query_done_task_phones latency per filter, one connection, sequential.
    let filters: Vec<(&str, Value)> = vec![
        ("page 1, no filter", json!({})),
        ("page 1000", json!({"page": 1000})),
        ("levels [[0,100],[300,500]]", json!({"levels": [[0, 100], [300, 500]]})),
        ("bills [10,60] s", json!({"bills": [10, 60]})),
        ("rounds [2,5]", json!({"rounds": [2, 5]})),
        ("tags [busy]", json!({"tags": [g("tag-busy")]})),
        ("one day", json!({"start_at": "2020-02-03 00:00:00", "end_at": "2020-02-03 23:59:59"})),
        ("keyword prefix 1380012", json!({"keyword": "1380012"})),
        ("id", json!({"id": "rec-00500000"})),
        (
            "levels+bills+rounds+dates",
            json!({"levels": [[100, 300]], "bills": [20, 90], "rounds": [1, 6], "start_at": "2020-01-01", "end_at": "2020-01-31"}),
        ),
        ("levels+bills, whole task", json!({"levels": [[0, 100], [300, 500]], "bills": [10, 60]})),
        ("levels+rounds, whole task", json!({"levels": [[200, 210]], "rounds": [3, 4]})),
        (
            "bills+rounds+one week",
            json!({"bills": [5, 30], "rounds": [2, 8], "start_at": "2020-02-10", "end_at": "2020-02-16 23:59:59"}),
        ),
    ];
    // Combined ranges are counted in the in-memory count index once it is
    // built (store::count_index): the first such query counts in SQL and
    // starts the build in the background. Measured here once, cold; the
    // runs below see a built index, as a long-running daemon does.
    {
        let f = json!({"task_id": task, "levels": [[100, 300]], "bills": [20, 90], "rounds": [1, 6], "start_at": "2020-01-01", "end_at": "2020-01-31"});
        let body = serde_json::to_vec(&f).unwrap();
        let t = Instant::now();
        let (st, b) = c.req("POST", "/v1/task/query_done_task_phones", &token, &body).await;
        assert_eq!(st, 200, "{}", String::from_utf8_lossy(&b));
        let cold = t.elapsed().as_secs_f64() * 1000.0;
        while !store.count_index_ready(&task) {
            assert!(t.elapsed() < Duration::from_secs(120), "count index not built in 2 minutes");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        println!(
            "\ncombined ranges, cold: first query {cold:.1} ms (counted in SQL); count index of {n} records built {:.0} ms after it",
            t.elapsed().as_secs_f64() * 1000.0
        );
    }
    let reps = 40;
    let mut all = Vec::new();
    println!("\nquery_done_task_phones, {n} records in the task, {reps} runs each:");
    println!("{:<30} {:>10} {:>9} {:>9}", "filter", "total", "p50 ms", "p99 ms");
    for (name, mut f) in filters {
        f["task_id"] = json!(task);
        let body = serde_json::to_vec(&f).unwrap();
        let mut lat = Vec::new();
        let mut total = 0;
        for _ in 0..reps {
            let t = Instant::now();
            let (st, b) = c.req("POST", "/v1/task/query_done_task_phones", &token, &body).await;
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(st, 200, "{}", String::from_utf8_lossy(&b));
            total = serde_json::from_slice::<Value>(&b).unwrap()["total"].as_i64().unwrap();
        }
        all.extend(lat.iter().copied());
        println!("{name:<30} {total:>10} {:>9.2} {:>9.2}", pct(&mut lat, 0.5), pct(&mut lat, 0.99));
    }
    println!("{:<30} {:>10} {:>9.2} {:>9.2}", "all filters together", "", pct(&mut all, 0.5), pct(&mut all, 0.99));

    // A running campaign: this node keeps writing finished calls (batches
    // of 20 every 50 ms, 400 calls/s, as the finalizer would) while the
    // combined filter is queried; the count index follows the node's own
    // writes, so the totals keep coming from it.
    let writer = {
        let (store, task, user) = (store.clone(), task.clone(), user.clone());
        tokio::spawn(async move {
            let mut written = 0usize;
            let until = Instant::now() + Duration::from_secs(secs);
            let mut k = 0u64;
            while Instant::now() < until {
                let batch: Vec<CallWrite> = (0..20)
                    .map(|_| {
                        k += 1;
                        CallWrite {
                            callid: uuid::Uuid::new_v4().to_string(),
                            task_id: task.clone(),
                            user_id: user.clone(),
                            group_id: group,
                            number: format!("137{:08}", k),
                            status: 1,
                            calldate: format!("2020-01-{:02} 12:{:02}:{:02}", 1 + k % 28, (k / 60) % 60, k % 60),
                            hangupdate: "2020-01-01 12:01:00".into(),
                            bill_ms: ((k * 7_919) % 120_000) as i64,
                            record: Some(RecordWrite {
                                id: uuid::Uuid::new_v4().to_string(),
                                score: (k % 500) as i64,
                                rounds: (k % 10) as i64,
                                ..RecordWrite::default()
                            }),
                            ..CallWrite::default()
                        }
                    })
                    .collect();
                written += store.write_calls(&batch).await.unwrap().iter().filter(|w| **w).count();
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            written
        })
    };
    let f = json!({"task_id": task, "levels": [[100, 300]], "bills": [20, 90], "rounds": [1, 6], "start_at": "2020-01-01", "end_at": "2020-01-31"});
    let body = serde_json::to_vec(&f).unwrap();
    let hits = store.count_index_hits();
    let mut lat = Vec::new();
    while !writer.is_finished() {
        let t = Instant::now();
        let (st, b) = c.req("POST", "/v1/task/query_done_task_phones", &token, &body).await;
        assert_eq!(st, 200, "{}", String::from_utf8_lossy(&b));
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let written = writer.await.unwrap();
    let from_index = store.count_index_hits() - hits;
    println!(
        "levels+bills+rounds+dates while this node writes {written} calls in {secs} s: {} queries, {from_index} totals from the index, p50 {:.2} ms, p99 {:.2} ms",
        lat.len(),
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );
}
