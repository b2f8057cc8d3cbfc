//! Dialer behaviour against the simulator: pacing, maximumcall, recycling,
//! windows, task control, compliance and back-pressure. Counts come from the
//! simulator's own originate log and channel counter, not the dialer's belief.

mod common;

use std::time::Duration;

use common::*;
use voxdial::dialer::compliance::{CalleeLimit, ComplianceConfig};
use voxdial::dialer::window::DialWindowSpec;
use voxdial::dialer::RunEnd;
use voxdial::finalize::RecyclePolicy;
use voxdial::sim::fate::{Fate, Persona};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pacing_holds_call_per_second() {
    let rig = Rig::new(mix(Fate::Busy), 10.0).await;
    // 4 s of dialling: one stall near the end cannot move the average 5 %.
    let nums = rig.numbers(81, 0);
    let task = rig.task(&nums, 100, 20.0, 0).await;
    let (runner, _c, _p) = rig.runner(no_limits(), no_recycle());
    assert_eq!(runner.run(&task).await.expect("run"), RunEnd::Completed);
    let log = rig.sim.originate_log();
    assert_eq!(log.len(), 81);
    let span = (log[80].at_ms - log[0].at_ms) as f64 / 1000.0;
    let cps = 80.0 / span;
    assert!((cps - 20.0).abs() / 20.0 < 0.05, "achieved {cps:.2} cps for a target of 20");
    // The pacer promises its share per second, not a minimum gap: a short
    // stall (a claim, a busy database) is made up on the fixed schedule, so
    // no 1-s window holds more than 20 slots, +1 for the window edge, +2 for
    // jitter between a slot and its originate reaching the simulator, whose
    // clock this is (as in tests/cluster.rs).
    let mut most = 0;
    let mut lo = 0;
    for hi in 0..log.len() {
        while log[hi].at_ms - log[lo].at_ms >= 1000 {
            lo += 1;
        }
        most = most.max(hi - lo + 1);
    }
    assert!(most <= 23, "burst: {most} originates within one second at 20 cps");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn maximumcall_is_never_exceeded() {
    let rig = Rig::new(mix(Fate::Answer(Persona::Refuser)), 8.0).await;
    let nums = rig.numbers(30, 0);
    let task = rig.task(&nums, 6, 50.0, 0).await;
    let (runner, _c, _p) = rig.runner(no_limits(), no_recycle());
    assert_eq!(runner.run(&task).await.expect("run"), RunEnd::Completed);
    let stats = rig.sim.stats();
    assert_eq!(stats.originates, 30);
    assert!(stats.max_concurrent <= 6, "simulator saw {} live channels", stats.max_concurrent);
    assert_eq!(stats.max_concurrent, 6, "the cap was reached, so it was the binding limit");
    let st = rig.store.status_counts(&task).await.expect("counts");
    assert_eq!(st.get(&1), Some(&30));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recycled_statuses_are_redialled_then_final() {
    let rig = Rig::new(mix(Fate::Busy), 10.0).await;
    let nums = rig.numbers(4, 0);
    let task = rig.task(&nums, 10, 50.0, 2).await;
    let (runner, _c, _p) = rig.runner(no_limits(), RecyclePolicy { statuses: vec![8], interval_secs: 1 });
    assert_eq!(runner.run(&task).await.expect("run"), RunEnd::Completed);
    for n in &nums {
        assert_eq!(rig.dials_of(n), 3, "{n}: first attempt + recycle_limit 2");
    }
    let hist =
        rig.store.count("SELECT COUNT(*) FROM auto_call_histories WHERE task_id = ?", &task).await.expect("count");
    assert_eq!(hist, 12, "one history row per attempt");
    let st = rig.store.status_counts(&task).await.expect("counts");
    assert_eq!(st.get(&8), Some(&4));
    let attempts =
        rig.store.count("SELECT MIN(attempts) FROM autodialer_number WHERE task_id = ?", &task).await.expect("min");
    assert_eq!(attempts, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_is_dialled_outside_the_window() {
    let rig = Rig::new(mix(Fate::Busy), 10.0).await;
    let nums = rig.numbers(5, 0);
    let task = rig.task(&nums, 10, 50.0, 0).await;
    let today = chrono::Utc::now().with_timezone(&chrono_tz::Asia::Shanghai).format("%Y-%m-%d").to_string();
    let spec = DialWindowSpec {
        timezone: "Asia/Shanghai".into(),
        weekdays: vec![1, 2, 3, 4, 5, 6, 7],
        time_ranges: vec![],
        exclude_dates: vec![today],
    };
    let g = rig.store.create_dial_time_group(USER, "closed today", &spec).await.expect("group");
    rig.store.set_task_dial_time(&task, Some(&g)).await.expect("attach");
    let (runner, _c, _p) = rig.runner(no_limits(), no_recycle());
    let store = rig.store.clone();
    let t2 = task.clone();
    let handle = tokio::spawn(async move { runner.run(&t2).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rig.sim.stats().originates, 0, "window closed: no originate");
    store.set_task_dial_time(&task, None).await.expect("detach");
    let end =
        tokio::time::timeout(Duration::from_secs(10), handle).await.expect("finishes").expect("join").expect("run");
    assert_eq!(end, RunEnd::Completed);
    assert_eq!(rig.sim.stats().originates, 5, "dialled once the window opened");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_and_resume_take_effect_within_a_second() {
    let rig = Rig::new(mix(Fate::Busy), 10.0).await;
    let nums = rig.numbers(40, 0);
    let task = rig.task(&nums, 10, 10.0, 0).await;
    let (runner, _c, _p) = rig.runner(no_limits(), no_recycle());
    let t2 = task.clone();
    let runner = std::sync::Arc::new(runner);
    let r2 = runner.clone();
    let handle = tokio::spawn(async move { r2.run(&t2).await });
    tokio::time::sleep(Duration::from_millis(800)).await;
    rig.store.set_task_start(&task, 0).await.expect("pause");
    let paused_at = std::time::Instant::now();
    let end = tokio::time::timeout(Duration::from_secs(5), handle).await.expect("stops").expect("join").expect("run");
    assert_eq!(end, RunEnd::Paused);
    let after_pause = rig
        .sim
        .originate_log()
        .iter()
        .filter(|r| r.at_ms > chrono::Utc::now().timestamp_millis() - paused_at.elapsed().as_millis() as i64 + 1100)
        .count();
    assert_eq!(after_pause, 0, "no originate more than 1.1 s after the pause");
    let n_paused = rig.sim.stats().originates;
    assert!(n_paused < 40);
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(rig.sim.stats().originates, n_paused, "paused task stays quiet");
    rig.store.set_task_start(&task, 1).await.expect("resume");
    assert_eq!(runner.run(&task).await.expect("run"), RunEnd::Completed);
    assert_eq!(rig.sim.stats().originates, 40, "every number dialled exactly once across pause/resume");
    for n in &nums {
        assert_eq!(rig.dials_of(n), 1, "{n}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blacklist_prefix_and_callee_limit_hold_dials_back_with_a_reason() {
    let rig = Rig::new(mix(Fate::Busy), 10.0).await;
    let shared = "13912345678".to_string();
    let black = "13987654321".to_string();
    let prefixed = "95588000111".to_string();
    rig.store.add_blacklist(USER, &black, "asked").await.expect("bl");
    let a = rig.task(&[shared.clone(), black.clone(), prefixed.clone()], 5, 50.0, 0).await;
    let b = rig.task(std::slice::from_ref(&shared), 5, 50.0, 0).await;
    let compliance = ComplianceConfig {
        limits: vec![CalleeLimit { max_calls: 1, per_secs: 300 }],
        blocked_prefixes: vec!["95".into()],
        ..ComplianceConfig::default()
    };
    let (ra, _c, _p) = rig.runner(compliance.clone(), no_recycle());
    assert_eq!(ra.run(&a).await.expect("run a"), RunEnd::Completed);
    assert_eq!(rig.dials_of(&shared), 1);
    assert_eq!(rig.dials_of(&black), 0, "blacklisted number never dialled");
    assert_eq!(rig.dials_of(&prefixed), 0, "blocked prefix never dialled");
    let st = rig.store.status_counts(&a).await.expect("counts");
    assert_eq!(st.get(&11), Some(&2), "blacklist and blocked prefix end as 11");
    let blocked = rig.store.blocked_dials(&a).await.expect("blocked");
    assert!(blocked
        .iter()
        .any(|(n, rule, reason)| n == &prefixed && rule == "blocked_prefix" && reason.contains("95")));
    // Task B may not call the same person again within 5 minutes.
    let (rb, _c2, _p2) = rig.runner(compliance, no_recycle());
    let hb = tokio::spawn(async move { rb.run(&b).await });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(rig.dials_of(&shared), 1, "callee limit across tasks");
    hb.abort();
    let blocked = rig.store.blocked_dials(&rig_task_b(&rig, &shared).await).await.expect("blocked");
    assert!(
        blocked.iter().any(|(n, rule, reason)| n == &shared && rule == "callee_limit" && reason.contains("limit 1")),
        "{blocked:?}"
    );
}

async fn rig_task_b(rig: &Rig, number: &str) -> String {
    let r = sqlx::query(rig.store.sql("SELECT task_id FROM blocked_dials WHERE number = ? AND rule = 'callee_limit'"))
        .bind(number)
        .fetch_one(rig.store.pool())
        .await
        .expect("blocked row");
    sqlx::Row::try_get(&r, "task_id").expect("task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_refusals_slow_the_dialer_down() {
    let rig = Rig::new(mix(Fate::Answer(Persona::Silent)), 1.0).await;
    assert_eq!(rig.esl.api("fsctl max_sessions 2").await.expect("fsctl"), "+OK max sessions: 2\n");
    let nums = rig.numbers(200, 0);
    let task = rig.task(&nums, 200, 40.0, 0).await;
    let (runner, cancel, _p) = rig.runner(no_limits(), no_recycle());
    let h = tokio::spawn(async move { runner.run(&task).await });
    tokio::time::sleep(Duration::from_secs(3)).await;
    cancel.cancel();
    let sent = rig.sim.stats().originates;
    // Without back-off 40 cps for 3 s is ~120 originates.
    assert!(sent < 80, "{sent} originates in 3 s despite a wall of DESTINATION_OUT_OF_ORDER");
    assert!(sent > 10, "kept dialling ({sent})");
    let _ = rig.esl.api("hupall").await;
    let _ = tokio::time::timeout(Duration::from_secs(20), h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_on_one_line_share_its_caps_by_priority() {
    let mut rig = Rig::new(mix(Fate::Busy), 10.0).await;
    rig.lines = vec![voxdial::dialer::line::LineConfig { name: "voxdial-sim".into(), cps: 10.0, max_concurrent: 3 }];
    let a_nums = rig.numbers(15, 0);
    let b_nums = rig.numbers(15, 100);
    let a = rig.task(&a_nums, 50, 50.0, 0).await;
    let b = rig.task(&b_nums, 50, 50.0, 0).await;
    sqlx::query(rig.store.sql("UPDATE autodialer_task SET is_top = 1 WHERE uuid = ?"))
        .bind(&a)
        .execute(rig.store.pool())
        .await
        .expect("top");
    // One node: both runners share the node's line gates.
    let (ra, _c1, _p1) = rig.runner(no_limits(), no_recycle());
    let rb = voxdial::dialer::TaskRunner { lines: ra.lines.clone(), ..rig.runner(no_limits(), no_recycle()).0 };
    let (ea, eb) = tokio::join!(ra.run(&a), rb.run(&b));
    assert_eq!((ea.expect("a"), eb.expect("b")), (RunEnd::Completed, RunEnd::Completed));
    let log = rig.sim.originate_log();
    assert_eq!(log.len(), 30);
    let span = (log[29].at_ms - log[0].at_ms) as f64 / 1000.0;
    assert!(29.0 / span <= 10.5, "line rate {:.2} cps above its cap of 10", 29.0 / span);
    assert!(rig.sim.stats().max_concurrent <= 3, "line concurrency cap");
    let first_a = log.iter().take(15).filter(|r| a_nums.contains(&r.number)).count();
    assert!(first_a >= 12, "the is_top task goes first: {first_a} of the first 15");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn speech_over_an_asr_module_custom_event_drives_the_dialogue() {
    let rig = Rig::with(voxdial::sim::SimConfig {
        mix: mix(Fate::Answer(Persona::Interested)),
        time_scale: 10.0,
        asr: voxdial::sim::SimAsr::Custom("voxdial::asr".into()),
        ..voxdial::sim::SimConfig::default()
    })
    .await;
    let nums = rig.numbers(3, 0);
    let task = rig.task(&nums, 5, 20.0, 0).await;
    let (runner, _c, _p) = rig.runner(no_limits(), no_recycle());
    assert_eq!(runner.run(&task).await.expect("run"), RunEnd::Completed);
    let levels = rig.store.level_counts(&task).await.expect("levels");
    assert_eq!(levels.get("A级(有明确意向)"), Some(&3), "interested callees heard through CUSTOM events: {levels:?}");
    let asr_rows = rig
        .store
        .count("SELECT COUNT(*) FROM record_details WHERE task_id = ? AND notify = 'asrmessage_notify'", &task)
        .await
        .expect("rows");
    assert!(asr_rows >= 9, "three turns per call recorded ({asr_rows})");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_assignment_and_append_mode_end_action() {
    let rig = Rig::new(mix(Fate::Busy), 10.0).await;
    let nums = rig.numbers(30, 0);
    let task = rig.task(&nums, 50, 100.0, 0).await;
    sqlx::query(
        rig.store.sql("UPDATE autodialer_task SET random_assignment_number = 1, end_action = 2 WHERE uuid = ?"),
    )
    .bind(&task)
    .execute(rig.store.pool())
    .await
    .expect("update");
    let (runner, _c, _p) = rig.runner(no_limits(), no_recycle());
    let runner = std::sync::Arc::new(runner);
    let (r2, t2) = (runner.clone(), task.clone());
    let h = tokio::spawn(async move { r2.run(&t2).await });
    let start = std::time::Instant::now();
    while rig.sim.stats().originates < 30 {
        assert!(start.elapsed() < Duration::from_secs(10), "dialled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let order: Vec<String> = rig.sim.originate_log().into_iter().map(|r| r.number).collect();
    assert_ne!(order, nums, "random_assignment_number = 1 dials out of import order");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(!h.is_finished(), "end_action 2 keeps the task open for new numbers");
    let late = rig.numbers(2, 500);
    let rows: Vec<(String, std::collections::BTreeMap<String, String>)> =
        late.iter().map(|n| (n.clone(), Default::default())).collect();
    rig.store.import_numbers(&task, &rows).await.expect("import");
    let start = std::time::Instant::now();
    while rig.sim.stats().originates < 32 {
        assert!(start.elapsed() < Duration::from_secs(10), "numbers imported later are dialled");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    rig.store.set_task_start(&task, 0).await.expect("pause");
    let end = tokio::time::timeout(Duration::from_secs(5), h).await.expect("stops").expect("join").expect("run");
    assert_eq!(end, RunEnd::Paused);
}
