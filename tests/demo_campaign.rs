//! The walking skeleton end to end: a demo campaign against the simulator on
//! SQLite, checked against the database and the simulator's own log.

use std::collections::{BTreeMap, BTreeSet};

use sqlx::Row;
use voxdial::demo::{self, DemoOptions};
use voxdial::store::Store;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_campaign_finalizes_every_number_and_agrees_with_the_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = DemoOptions {
        numbers: 80,
        cps: 40.0,
        maximumcall: 25,
        seed: 7,
        data_dir: dir.path().to_path_buf(),
        time_scale: 10.0,
        progress: false,
    };
    let s = demo::run(&opts).await.expect("demo runs");

    // Every number reached a final status; all statuses of the mix occur.
    assert!(!s.statuses.contains_key("0"), "numbers left waiting: {:?}", s.statuses);
    assert_eq!(s.statuses.values().sum::<i64>(), 80);
    let codes: BTreeSet<i64> = s.statuses.keys().map(|k| k.parse().expect("code")).collect();
    assert_eq!(codes, (1..=12).collect::<BTreeSet<i64>>(), "every outcome 1–12 appears");

    // The simulator's view: maximumcall never exceeded, one history row per
    // originate, blacklisted numbers never dialled, at most recycle_limit+1
    // attempts per number.
    assert!(s.max_concurrent <= 25, "peak {} > maximumcall", s.max_concurrent);
    assert_eq!(s.originates as i64, s.call_histories);
    let store = Store::open(&s.database).await.expect("db");
    let mut per_number: BTreeMap<String, usize> = BTreeMap::new();
    for r in &s.originate_log {
        *per_number.entry(r.number.clone()).or_default() += 1;
    }
    assert!(per_number.values().all(|n| *n <= 2), "a number dialled more than twice");
    let black = sqlx::query(store.sql("SELECT number FROM autodialer_number WHERE task_id = ? AND status = 11"))
        .bind(&s.task_id)
        .fetch_all(store.pool())
        .await
        .expect("query");
    assert!(!black.is_empty());
    for r in black {
        let n: String = r.try_get("number").expect("number");
        assert!(!per_number.contains_key(&n), "blacklisted {n} was dialled");
    }
    let uuids: BTreeSet<&str> = s.originate_log.iter().map(|r| r.uuid.as_str()).collect();
    assert_eq!(uuids.len(), s.originate_log.len(), "origination uuids are unique");

    // One record per answered call, each with contiguous detail rows.
    assert_eq!(Some(&s.records), s.statuses.get("1"));
    let recs = sqlx::query(
        store.sql("SELECT id, rounds, level_name, recordfile, hangup_disposition FROM records WHERE task_id = ?"),
    )
    .bind(&s.task_id)
    .fetch_all(store.pool())
    .await
    .expect("records");
    assert_eq!(recs.len() as i64, s.records);
    let mut details = 0;
    for r in &recs {
        let id: String = r.try_get("id").expect("id");
        let level: Option<String> = r.try_get("level_name").expect("level");
        assert!(level.is_some(), "record {id} has a level");
        let file: Option<String> = r.try_get("recordfile").expect("file");
        assert!(file.is_some_and(|f| f.ends_with(".wav")), "record {id} has a recording path");
        let seqs: Vec<i64> =
            sqlx::query(store.sql("SELECT sequence FROM record_details WHERE record_id = ? ORDER BY sequence"))
                .bind(&id)
                .fetch_all(store.pool())
                .await
                .expect("details")
                .iter()
                .map(|d| d.try_get("sequence").expect("seq"))
                .collect();
        assert!(!seqs.is_empty(), "record {id} has detail rows");
        assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
        details += seqs.len() as i64;
    }
    assert_eq!(details, s.detail_rows);
    let level_total: i64 = s.levels.values().sum();
    assert_eq!(level_total, s.records);
    // Interested callees were recognised as such.
    assert!(s.levels.keys().any(|l| l.starts_with("A级")), "levels {:?}", s.levels);
    assert!(s.avg_rounds > 0.5);
    // No number is left claimed and every ledger entry was finalized.
    let claimed = store
        .count("SELECT COUNT(*) FROM autodialer_number WHERE task_id = ? AND claimed_by IS NOT NULL", &s.task_id)
        .await
        .expect("count");
    assert_eq!(claimed, 0);
    let open = store
        .count("SELECT COUNT(*) FROM dial_ledger WHERE task_id = ? AND state <> 'finalized'", &s.task_id)
        .await
        .expect("count");
    assert_eq!(open, 0);
    // The demo leaves a config pointing at its database.
    assert!(dir.path().join("voxdial.toml").exists());
}
