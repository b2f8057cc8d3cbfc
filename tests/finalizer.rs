//! The finalizer's durability and callbacks against real components: SQLite
//! files, the finalizer and delivery actors, a real HTTP receiver on
//! 127.0.0.1.

#[path = "support/fixture.rs"]
mod fixture;
#[path = "support/receiver.rs"]
mod receiver;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use sqlx::{Connection, Row};
use tokio_util::sync::CancellationToken;
use voxdial::finalize::signing::verify_webhook_signature;
use voxdial::finalize::spool::Spool;
use voxdial::finalize::webhook::{Deliverer, WebhookConfig};
use voxdial::finalize::{notify_task_stopped, Finalizer, FinalizerConfig, FinalizerOptions};
use voxdial::store::Store;

use fixture::{Fixture, USER};
use receiver::Receiver;

fn fast_webhooks() -> WebhookConfig {
    WebhookConfig {
        secret: "default-secret".into(),
        tenant_secrets: BTreeMap::from([(USER.to_string(), "tenant-secret".to_string())]),
        max_attempts: 50,
        backoff_initial_ms: 20,
        backoff_max_ms: 200,
        timeout_ms: 2_000,
        poll_ms: 20,
        batch: 16,
        concurrency: 8,
        lease_ms: 5_000,
    }
}

fn options(spool_dir: &std::path::Path) -> FinalizerOptions {
    FinalizerOptions {
        config: FinalizerConfig {
            spool_dir: spool_dir.display().to_string(),
            write_timeout_ms: 300,
            retry_initial_ms: 20,
            retry_max_ms: 200,
            context_ttl_ms: 60_000,
            ..FinalizerConfig::default()
        },
        ..FinalizerOptions::default()
    }
}

async fn wait_until<F, Fut>(what: &str, limit: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while !f().await {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_reach_a_recovering_receiver_exactly_once_each_and_are_signed() {
    let fx = Fixture::new().await;
    let success = fx.task(12).await; // type 2: answered calls only
    let records = fx.task(6).await; // type 3: every attempt
                                    // The receiver fails its first 40 requests: every early event is retried.
    let rx = Receiver::start(40).await;
    fx.store
        .set_task_notify(&success[0].task_id, Some(&rx.url("/hangup_notify")), 2, Some(&rx.url("/stop")))
        .await
        .expect("notify");
    fx.store.set_task_notify(&records[0].task_id, Some(&rx.url("/records")), 3, None).await.expect("notify");

    let cancel = CancellationToken::new();
    let deliverer = Deliverer::start(fx.store.clone(), fast_webhooks(), cancel.clone()).expect("deliverer");
    let mut opts = options(&fx.dir.path().join("spool"));
    opts.webhook_wake = Some(deliverer.waker());
    opts.voice.secret = "voice".into();
    let fin = Finalizer::start_with(fx.store.clone(), opts, cancel.clone()).expect("finalizer");

    let mut expected = BTreeSet::new();
    for (i, n) in success.iter().enumerate() {
        let answered = i % 3 != 0;
        let call = fx.call(n, 1, answered);
        if answered {
            expected.insert(format!("call_notify:{}", call.uuid));
        }
        let w = fin.finalize(call).await.expect("finalize");
        assert!(!w.spooled && !w.duplicate);
    }
    for (i, n) in records.iter().enumerate() {
        let call = fx.call(n, 1, i % 2 == 0);
        expected.insert(format!("call_notify:{}", call.uuid));
        fin.finalize(call).await.expect("finalize");
    }
    assert!(notify_task_stopped(&fx.store, &success[0].task_id, "completed").await.expect("stop"));
    assert!(!notify_task_stopped(&fx.store, &records[0].task_id, "completed").await.expect("no stop url"));
    let total = expected.len() + 1;
    assert_eq!(total, 8 + 6 + 1);

    let store = fx.store.clone();
    let tasks = [success[0].task_id.clone(), records[0].task_id.clone()];
    wait_until("every event delivered", Duration::from_secs(20), || {
        let (store, tasks) = (store.clone(), tasks.clone());
        async move {
            let mut delivered = 0;
            for t in &tasks {
                delivered +=
                    store.outbox_events(t).await.expect("outbox").iter().filter(|e| e.state == "delivered").count();
            }
            delivered == total
        }
    })
    .await;
    cancel.cancel();

    // Receiver's view: each event answered 200 exactly once, after failures.
    let log = rx.log();
    assert!(log.iter().filter(|r| r.status == 500).count() == 40);
    let mut ok: BTreeMap<String, usize> = BTreeMap::new();
    let mut bodies: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    for r in &log {
        assert!(verify_webhook_signature(b"tenant-secret", &r.body, &r.signature), "signature of {}", r.key);
        assert!(!verify_webhook_signature(b"default-secret", &r.body, &r.signature));
        // A retry sends the very same bytes under the same key.
        let prev = bodies.entry(r.key.clone()).or_insert_with(|| r.body.clone());
        assert_eq!(prev, &r.body, "body changed between attempts of {}", r.key);
        if r.status == 200 {
            *ok.entry(r.key.clone()).or_default() += 1;
        }
    }
    assert_eq!(ok.len(), total);
    assert!(ok.values().all(|n| *n == 1), "an event was accepted twice: {ok:?}");
    let call_keys: BTreeSet<String> = ok.keys().filter(|k| k.starts_with("call_notify:")).cloned().collect();
    assert_eq!(call_keys, expected);

    // Payload shapes: seed 002 for the type-2 task, seed 003 for type 3.
    for r in log.iter().filter(|r| r.status == 200) {
        let v: serde_json::Value = serde_json::from_slice(&r.body).expect("json");
        match r.path.as_str() {
            "/hangup_notify" => {
                assert_eq!(v["count"], 1);
                let d = &v["data"][0];
                assert_eq!(d["task"]["id"], success[0].task_id.as_str());
                assert_eq!(d["bill"], 12);
                assert_eq!(d["tags"][0]["name"], fx.tag.1.as_str());
                assert!(d["customer_data"]["name"].as_str().is_some_and(|n| n.starts_with("客户")));
                let url = d["voice_url"].as_str().expect("voice_url");
                let key = url.split("key=").nth(1).expect("key");
                let path =
                    voxdial::finalize::recordings::verify_voice_key(key, chrono::Utc::now().timestamp(), b"voice")
                        .expect("key");
                assert!(path.starts_with("/rec/2025-01-01/138"));
            }
            "/records" => {
                let connected = v["calledResult"] == 2;
                assert_eq!(v["workflow"], 4);
                assert_eq!(v["instances"].as_array().map(Vec::len), Some(usize::from(connected)));
                if connected {
                    let turns = v["instances"][0]["dialogueContentList"].as_array().expect("turns");
                    let roles: Vec<i64> = turns.iter().map(|t| t["dialogueRole"].as_i64().expect("role")).collect();
                    assert_eq!(roles, vec![1, 2, 1]);
                    assert_eq!(v["userAnsweredCount"], 1);
                } else {
                    assert_eq!(v["hangupCause"], "占线、用户正忙");
                }
            }
            "/stop" => {
                assert_eq!(v["reason"], "completed");
                assert_eq!(v["total"], 12);
            }
            p => panic!("unexpected path {p}"),
        }
    }

    // The delivery log: one row per attempt, retries before the delivery.
    let log = fx.store.deliveries(&success[0].task_id).await.expect("deliveries");
    let mut log2 = fx.store.deliveries(&records[0].task_id).await.expect("deliveries");
    log2.extend(log);
    assert_eq!(log2.len(), rx.requests());
    assert_eq!(log2.iter().filter(|d| d.outcome == "retry").count(), 40);
    assert_eq!(log2.iter().filter(|d| d.outcome == "delivered").count(), total);
    assert!(log2.iter().all(|d| d.outcome != "retry" || d.status_code == Some(500)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_row_commits_or_rolls_back_with_the_call() {
    let fx = Fixture::new().await;
    let nums = fx.task(2).await;
    let task = nums[0].task_id.clone();
    fx.store.set_task_notify(&task, Some("http://127.0.0.1:9/notify"), 1, None).await.expect("notify");
    let cancel = CancellationToken::new();
    let spool = fx.dir.path().join("spool");
    let fin = Finalizer::start_with(fx.store.clone(), options(&spool), cancel.clone()).expect("finalizer");

    // Two detail rows with the same sequence violate UNIQUE(record_id,
    // sequence) halfway through the call's transaction.
    let mut bad = fx.call(&nums[0], 1, true);
    if let Some((_, details)) = bad.dialogue.as_mut() {
        details[1].sequence = 1;
    }
    let err = fin.finalize(bad.clone()).await.expect_err("constraint violation");
    assert!(err.to_string().contains("UNIQUE"), "{err}");
    let q = |t: &str| format!("SELECT COUNT(*) FROM {t} WHERE task_id = ?");
    assert_eq!(fx.count(&q("auto_call_histories"), &task).await, 0);
    assert_eq!(fx.count(&q("records"), &task).await, 0);
    assert_eq!(fx.count(&q("webhook_outbox"), &task).await, 0, "no outbox row without the call");
    assert_eq!(fin.spool_len(), 0, "a refused call does not block the spool");
    let rejected = std::fs::read_to_string(spool.join("rejected.jsonl")).expect("rejected kept");
    assert!(rejected.contains(&bad.uuid));

    // A good call: rows and its event together; a replay changes nothing.
    let good = fx.call(&nums[1], 1, true);
    let w = fin.finalize(good.clone()).await.expect("finalize");
    assert!(w.record && !w.duplicate);
    assert_eq!(fx.count(&q("webhook_outbox"), &task).await, 1);
    let w = fin.finalize(good.clone()).await.expect("replay");
    assert!(w.duplicate);
    assert_eq!(fx.count(&q("records"), &task).await, 1);
    assert_eq!(fx.count(&q("webhook_outbox"), &task).await, 1, "a duplicate call adds no event");
    let ev = &fx.store.outbox_events(&task).await.expect("outbox")[0];
    let v: serde_json::Value = serde_json::from_str(&ev.payload).expect("json");
    assert_eq!(v["info"]["record"]["callid"], good.uuid.as_str());
    assert_eq!(v["info"]["task"]["uuid"], task.as_str());
    assert_eq!(v["records"].as_array().map(Vec::len), Some(2));
    cancel.cancel();
}

/// Holds SQLite's write lock from another connection: every write of the
/// store blocks, as with a database that is down or wedged.
async fn lock_database(url: &str) -> sqlx::AnyConnection {
    let mut c = sqlx::AnyConnection::connect(url).await.expect("lock connection");
    sqlx::query("BEGIN EXCLUSIVE").execute(&mut c).await.expect("lock");
    c
}

async fn unlock_database(mut c: sqlx::AnyConnection) {
    sqlx::query("COMMIT").execute(&mut c).await.expect("unlock");
    c.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_spools_calls_and_writes_each_once_after_recovery() {
    let fx = Fixture::new().await;
    let nums = fx.task(10).await;
    let task = nums[0].task_id.clone();
    fx.store.set_task_notify(&task, Some("http://127.0.0.1:9/notify"), 3, None).await.expect("notify");
    let cancel = CancellationToken::new();
    let fin = Finalizer::start_with(fx.store.clone(), options(&fx.dir.path().join("spool")), cancel.clone())
        .expect("finalizer");

    // Before the outage: written directly.
    assert!(!fin.finalize(fx.call(&nums[0], 1, true)).await.expect("finalize").spooled);

    let lock = lock_database(&fx.url).await;
    let mut uuids = Vec::new();
    for n in &nums[1..] {
        let c = fx.call(n, 1, n.id % 2 == 0);
        uuids.push(c.uuid.clone());
        let w = fin.finalize(c).await.expect("spooled, not failed");
        assert!(w.spooled);
    }
    // Number 1 is redialled during the outage: attempt 1 busy (redial), then
    // attempt 2 answered. Its final state must be attempt 2's.
    let redial = fx.call(&nums[1], 2, true);
    uuids.push(redial.uuid.clone());
    assert!(fin.finalize(redial.clone()).await.expect("spool").spooled);
    assert_eq!(fin.spool_len(), 10);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(fin.spool_len(), 10, "nothing written while the database is locked");

    unlock_database(lock).await;
    wait_until("spool drained", Duration::from_secs(15), || async { fin.spool_len() == 0 }).await;

    assert_eq!(fx.count("SELECT COUNT(*) FROM auto_call_histories WHERE task_id = ?", &task).await, 11);
    for u in &uuids {
        assert_eq!(
            fx.count("SELECT COUNT(*) FROM auto_call_histories WHERE call_id = ?", u).await,
            1,
            "history of {u}"
        );
        assert_eq!(fx.count("SELECT COUNT(*) FROM webhook_outbox WHERE callid = ?", u).await, 1, "event of {u}");
    }
    let row = sqlx::query("SELECT status, callid, attempts FROM autodialer_number WHERE id = ?")
        .bind(nums[1].id)
        .fetch_one(fx.store.pool())
        .await
        .expect("number");
    assert_eq!(row.try_get::<String, _>("callid").expect("callid"), redial.uuid, "attempts written in order");
    assert_eq!(row.try_get::<i64, _>("status").expect("status"), 1);
    // After recovery, writes are direct again.
    assert!(!fin.finalize(fx.call(&nums[2], 2, true)).await.expect("finalize").spooled);
    cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spooled_calls_survive_a_restart_and_are_replayed_once() {
    let fx = Fixture::new().await;
    let nums = fx.task(6).await;
    let task = nums[0].task_id.clone();
    let spool = fx.dir.path().join("spool");
    let mut uuids = Vec::new();
    {
        // First run: the database is wedged the whole time; then the process
        // "dies" (every handle dropped, the pool closed).
        let store = Store::open(&fx.url).await.expect("store");
        let cancel = CancellationToken::new();
        let fin = Finalizer::start_with(store.clone(), options(&spool), cancel.clone()).expect("finalizer");
        let lock = lock_database(&fx.url).await;
        for n in &nums {
            let c = fx.call(n, 1, true);
            uuids.push(c.uuid.clone());
            assert!(fin.finalize(c).await.expect("spool").spooled);
        }
        // One call is spooled twice (a replayed hangup): still one record.
        let mut again = fx.call(&nums[0], 1, true);
        again.uuid = uuids[0].clone();
        assert!(fin.finalize(again).await.expect("spool").spooled);
        assert_eq!(fin.spool_len(), 7);
        cancel.cancel();
        fin.stopped().await;
        drop(fin);
        drop(store);
        unlock_database(lock).await;
    }
    assert_eq!(Spool::open(&spool).expect("spool free").len(), 7, "the spool kept every acknowledged call");
    assert_eq!(fx.count("SELECT COUNT(*) FROM auto_call_histories WHERE task_id = ?", &task).await, 0);

    // Second run: the spool is replayed on start.
    let store = Store::open(&fx.url).await.expect("store");
    let cancel = CancellationToken::new();
    let fin = Finalizer::start_with(store.clone(), options(&spool), cancel.clone()).expect("restart");
    wait_until("replay", Duration::from_secs(15), || async { fin.spool_len() == 0 }).await;
    assert_eq!(fx.count("SELECT COUNT(*) FROM records WHERE task_id = ?", &task).await, 6);
    for u in &uuids {
        assert_eq!(fx.count("SELECT COUNT(*) FROM records WHERE callid = ?", u).await, 1);
    }
    let segs = std::fs::read_dir(&spool)
        .expect("dir")
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().starts_with("seg-")))
        .count();
    assert_eq!(segs, 0, "drained segments are removed");
    cancel.cancel();
}

/// Calls a campaign hands the finalizer: `n` of them, one every `every`,
/// each acknowledged by its own task (as call actors do). Every second one
/// is answered. Returns the call ids, once every call was acknowledged.
fn campaign(
    fx: &Fixture,
    fin: &Finalizer,
    nums: &[fixture::Num],
    every: Duration,
) -> tokio::task::JoinHandle<Vec<(String, bool)>> {
    let start = tokio::time::Instant::now();
    let calls: Vec<_> = nums.iter().enumerate().map(|(i, n)| fx.call(n, 1, i % 2 == 0)).collect();
    let fin = fin.clone();
    tokio::spawn(async move {
        let mut acks = Vec::new();
        for (i, c) in calls.into_iter().enumerate() {
            tokio::time::sleep_until(start + every * i as u32).await;
            let fin = fin.clone();
            acks.push(tokio::spawn(async move {
                let id = (c.uuid.clone(), c.facts.answered);
                let w = fin.finalize(c).await.expect("acknowledged: written or spooled, never failed");
                (id, w.spooled)
            }));
        }
        let mut out = Vec::new();
        for a in acks {
            out.push(a.await.expect("ack").0);
        }
        out
    })
}

/// The outage: the database is unreachable for 30 s in the middle
/// of a campaign; afterwards every call is in the database exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_down_for_30_s_during_a_campaign_loses_no_call() {
    const OUTAGE: Duration = Duration::from_secs(30);
    let fx = Fixture::new().await;
    // 20 calls a second for 40 s: 5 s before the outage, 30 s of it, 5 s after.
    let nums = fx.task(800).await;
    let task = nums[0].task_id.clone();
    fx.store.set_task_notify(&task, Some("http://127.0.0.1:9/notify"), 3, None).await.expect("notify");
    let cancel = CancellationToken::new();
    let spool = fx.dir.path().join("spool");
    let fin = Finalizer::start_with(fx.store.clone(), options(&spool), cancel.clone()).expect("finalizer");
    let run = campaign(&fx, &fin, &nums, Duration::from_millis(50));

    tokio::time::sleep(Duration::from_secs(5)).await;
    let written_before = fx.count("SELECT COUNT(*) FROM auto_call_histories WHERE task_id = ?", &task).await;
    assert!(written_before > 50, "calls were written before the outage ({written_before})");
    let lock = lock_database(&fx.url).await;
    tokio::time::sleep(OUTAGE).await;
    // Everything acknowledged during the outage waits in the spool.
    let waiting = fin.spool_len();
    let written = fx.count("SELECT COUNT(*) FROM auto_call_histories WHERE task_id = ?", &task).await;
    assert!(waiting >= 500, "30 s of calls spooled ({waiting})");
    assert!(written <= written_before + 5, "nothing written while the database is down ({written})");
    unlock_database(lock).await;

    let calls = run.await.expect("campaign");
    assert_eq!(calls.len(), 800);
    wait_until("spool drained", Duration::from_secs(60), || async { fin.spool_len() == 0 }).await;

    let q = |sql: &str| format!("SELECT {sql} FROM auto_call_histories WHERE task_id = ?");
    assert_eq!(fx.count(&q("COUNT(*)"), &task).await, 800, "one history row per call");
    assert_eq!(fx.count(&q("COUNT(DISTINCT call_id)"), &task).await, 800);
    let answered = calls.iter().filter(|c| c.1).count() as i64;
    assert_eq!(fx.count("SELECT COUNT(*) FROM records WHERE task_id = ?", &task).await, answered);
    assert_eq!(fx.count("SELECT COUNT(DISTINCT callid) FROM records WHERE task_id = ?", &task).await, answered);
    assert_eq!(fx.count("SELECT COUNT(*) FROM webhook_outbox WHERE task_id = ?", &task).await, 800, "one event each");
    assert_eq!(fx.count("SELECT COUNT(DISTINCT callid) FROM webhook_outbox WHERE task_id = ?", &task).await, 800);
    assert_eq!(
        fx.count(
            "SELECT COUNT(*) FROM autodialer_number WHERE task_id = ? AND attempts = 1 AND callid IS NOT NULL",
            &task
        )
        .await,
        800,
        "every number has its attempt"
    );
    for (id, _) in &calls {
        assert_eq!(fx.count("SELECT COUNT(*) FROM auto_call_histories WHERE call_id = ?", id).await, 1, "{id}");
    }
    let left: Vec<String> = std::fs::read_dir(&spool)
        .expect("spool dir")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with("seg-") || n == "rejected.jsonl")
        .collect();
    assert!(left.is_empty(), "nothing stuck or rejected in the spool: {left:?}");
    cancel.cancel();
    fin.stopped().await;
}

/// The outage: the webhook receiver answers 500 for a minute while
/// calls keep finishing; after it recovers every event is accepted exactly
/// once and nothing is left pending or dead in the outbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_receiver_down_for_a_minute_gets_every_event_exactly_once() {
    const OUTAGE: Duration = Duration::from_secs(60);
    let fx = Fixture::new().await;
    let started = Instant::now();
    let rx = Receiver::failing_for(OUTAGE).await;
    // Two calls a second for 50 s of the minute, type 3 (an event per attempt).
    let nums = fx.task(100).await;
    let task = nums[0].task_id.clone();
    fx.store.set_task_notify(&task, Some(&rx.url("/records")), 3, Some(&rx.url("/stop"))).await.expect("notify");
    let cancel = CancellationToken::new();
    let cfg = WebhookConfig {
        max_attempts: 1_000,
        backoff_initial_ms: 200,
        backoff_max_ms: 5_000,
        poll_ms: 100,
        ..fast_webhooks()
    };
    let deliverer = Deliverer::start(fx.store.clone(), cfg, cancel.clone()).expect("deliverer");
    let mut opts = options(&fx.dir.path().join("spool"));
    opts.webhook_wake = Some(deliverer.waker());
    let fin = Finalizer::start_with(fx.store.clone(), opts, cancel.clone()).expect("finalizer");

    let calls = campaign(&fx, &fin, &nums, Duration::from_millis(500)).await.expect("campaign");
    assert!(notify_task_stopped(&fx.store, &task, "completed").await.expect("stop event"));
    let mut expected: BTreeSet<String> = calls.iter().map(|(id, _)| format!("call_notify:{id}")).collect();
    let total = expected.len() + 1;
    assert_eq!(total, 101);

    let store = fx.store.clone();
    let t = task.clone();
    wait_until("every event delivered", OUTAGE + Duration::from_secs(40), || {
        let (store, t) = (store.clone(), t.clone());
        async move {
            store.outbox_events(&t).await.expect("outbox").iter().filter(|e| e.state == "delivered").count() == total
        }
    })
    .await;
    cancel.cancel();

    let log = rx.log();
    let failed: Vec<&receiver::Received> = log.iter().filter(|r| r.status == 500).collect();
    let last_failure = failed.iter().map(|r| r.at).max().expect("failures");
    assert!(last_failure.duration_since(started) >= OUTAGE - Duration::from_secs(6), "retried through the minute");
    assert!(
        failed.iter().all(|r| r.at.duration_since(started) < OUTAGE + Duration::from_millis(100)),
        "500 only during the outage"
    );
    let mut ok: BTreeMap<String, usize> = BTreeMap::new();
    for r in log.iter().filter(|r| r.status == 200) {
        assert!(r.at.duration_since(started) >= OUTAGE);
        *ok.entry(r.key.clone()).or_default() += 1;
    }
    assert!(ok.values().all(|n| *n == 1), "an event was accepted twice: {ok:?}");
    let stop_key = ok.keys().find(|k| k.starts_with("call_stop_notify:")).cloned().expect("stop event delivered");
    expected.insert(stop_key);
    assert_eq!(ok.keys().cloned().collect::<BTreeSet<_>>(), expected, "every event, by idempotency key");
    let events = fx.store.outbox_events(&task).await.expect("outbox");
    assert_eq!(events.len(), total);
    assert!(events.iter().all(|e| e.state == "delivered"), "nothing pending or dead");
    let deliveries = fx.store.deliveries(&task).await.expect("log");
    assert_eq!(deliveries.len(), log.len(), "one log row per attempt");
    assert_eq!(deliveries.iter().filter(|d| d.outcome == "delivered").count(), total);
    assert_eq!(deliveries.iter().filter(|d| d.outcome == "dead").count(), 0);
    assert_eq!(deliveries.iter().filter(|d| d.outcome == "retry").count(), failed.len());
}

/// The record and the call-history row say where the callee's number is
/// registered: province and city from the imported prefix table, the
/// operator from it or from the shipped number segments.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_carry_the_numbers_location() {
    let fx = Fixture::new().await;
    // 138 is 移动's segment; 1380000 is placed in 江苏 南京 by this table,
    // other 138 prefixes are unknown beyond the operator.
    let csv = "prefix,province,city,operator\n1380000,江苏省,南京市,\n";
    let report = voxdial::location::import::import(&fx.store, std::io::Cursor::new(csv.as_bytes().to_vec()))
        .await
        .expect("location import");
    assert_eq!(report.imported, 1, "{report:?}");
    let locations = std::sync::Arc::new(voxdial::location::LocationCache::default());
    let cancel = CancellationToken::new();
    let opts = FinalizerOptions { locations: Some(locations.clone()), ..options(&fx.dir.path().join("spool")) };
    let fin = Finalizer::start_with(fx.store.clone(), opts, cancel.clone()).expect("finalizer");
    wait_until("location data loaded", Duration::from_secs(10), || {
        let l = locations.clone();
        async move { l.current().is_some() }
    })
    .await;
    let table = locations.current().expect("table");

    let nums = fx.task(2).await; // 13800000000 and 13800000001
    let mut other = nums[1].clone();
    other.number = "13912345678".into();
    for (n, answered) in [(&nums[0], true), (&other, true), (&nums[1], false)] {
        fin.finalize(fx.call(n, 1, answered)).await.expect("finalize");
    }
    let row = |sql: &'static str, number: String| {
        let store = fx.store.clone();
        async move {
            let r = sqlx::query(store.sql(sql)).bind(number).fetch_one(store.pool()).await.expect("row");
            let get = |c: &str| r.try_get::<i64, _>(c).expect("column");
            (get("province_id"), get("city_id"), get("operator"))
        }
    };
    let rec = "SELECT province_id, city_id, operator FROM records WHERE callee = ?";
    let hist = "SELECT province_id, city_id, operator FROM auto_call_histories WHERE number = ?";
    let (p, c, o) = row(rec, "13800000000".into()).await;
    assert_eq!(table.region_name(p), Some("江苏"));
    assert_eq!(table.region_name(c), Some("南京"));
    assert_eq!(o, 1, "移动 by segment");
    assert_eq!(row(hist, "13800000000".into()).await, (p, c, o));
    // Only the segment is known: the operator, no region.
    assert_eq!(row(rec, "13912345678".into()).await, (0, 0, 1));
    // An unanswered call has no record, but its history row is located too.
    assert_eq!(row(hist, "13800000001".into()).await, (p, c, o));
    cancel.cancel();
    fin.stopped().await;
}
