//! A small campaign whose conversations run over HTTP: the simulator plays
//! the mod_smartivr robot module against the daemon's `POST /smartivr`, and
//! the calls end as records with their transcript rows.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use sqlx::Row;
use tokio_util::sync::CancellationToken;
use voxdial::api::{self, Durability, SmartivrConfig, SmartivrState};
use voxdial::dialer::RunEnd;
use voxdial::dialogue::{Script, SAMPLE_SCRIPT};
use voxdial::sim::fate::{Fate, FateMix, Persona};
use voxdial::sim::{self, SimConfig};
use voxdial::store::{Store, Task};
use voxdial_esl::{ClientConfig, EslClient};

/// Per callee: level, rounds, and (notify, question, answer_id) per row.
type Calls = HashMap<String, (String, i64, Vec<(String, String, String)>)>;

const TASK: &str = "5b0e-sim-smartivr-task";
const USER: &str = "4d99d91c-f5d9-49da-88da-758977cc58a9";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_robot_module_converses_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&format!("sqlite://{}", dir.path().join("v.db").display())).await.unwrap();
    store.ensure_user(USER, "test").await.unwrap();
    let group_id = store.save_script(USER, &Script::from_json(SAMPLE_SCRIPT).unwrap()).await.unwrap();
    store
        .create_task(&Task {
            maximumcall: 10,
            call_per_second: 10.0,
            originate_timeout: 30,
            origination_caller_id_number: "02160001234".into(),
            ..Task::new(TASK, "sim smartivr", USER, group_id)
        })
        .await
        .unwrap();
    let personas = [
        Persona::Interested,
        Persona::Refuser,
        Persona::Asker,
        Persona::Mumbler,
        Persona::Silent,
        Persona::Interrupter,
        Persona::HangsUp,
        Persona::Busy,
    ];
    let mix = FateMix { weights: personas.iter().map(|p| (Fate::Answer(*p), 1)).collect() };
    // Numbers until every persona is covered once.
    let mut by_persona: HashMap<Persona, String> = HashMap::new();
    for i in 0..10_000 {
        let n = format!("1390000{i:04}");
        if let Fate::Answer(p) = mix.fate(3, &n) {
            by_persona.entry(p).or_insert(n);
        }
        if by_persona.len() == personas.len() {
            break;
        }
    }
    assert_eq!(by_persona.len(), personas.len());
    let rows: Vec<(String, BTreeMap<String, String>)> = by_persona
        .values()
        .map(|n| (n.clone(), BTreeMap::from([("name".to_string(), "王先生".to_string())])))
        .collect();
    store.import_numbers(TASK, &rows).await.unwrap();

    let cancel = CancellationToken::new();
    let cfg = SmartivrConfig {
        journal_dir: dir.path().join("journal"),
        durability: Durability::Write,
        ..SmartivrConfig::default()
    };
    let state = SmartivrState::start(store.clone(), cfg, cancel.clone()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/smartivr", listener.local_addr().unwrap());
    tokio::spawn(api::serve_http(listener, state.clone(), cancel.clone()));

    let simulator = sim::start(
        SimConfig { seed: 3, mix, time_scale: 10.0, smartivr_url: Some(url), ..SimConfig::default() },
        "127.0.0.1:0",
    )
    .await
    .unwrap();
    let esl = EslClient::connect(ClientConfig::new(simulator.addr().to_string(), "ClueCon")).await.unwrap();
    let mut jobs = Vec::new();
    for n in by_persona.values() {
        let uuid = uuid::Uuid::new_v4();
        let job = esl
            .bgapi(&format!(
                "originate {{origination_uuid={uuid},voxdial_task={TASK},originate_timeout=20}}sofia/gateway/voxdial-sim/{n} robot XML default"
            ))
            .await
            .unwrap();
        jobs.push(job);
    }
    for j in jobs {
        assert!(j.result().await.unwrap().starts_with("+OK"));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let n = store.count("SELECT COUNT(*) AS n FROM records WHERE task_id = ?", TASK).await.unwrap();
        if n == personas.len() as i64 && simulator.stats().live == 0 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "only {n} records, {} live channels", simulator.stats().live);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(state.live(), 0, "every call left the flow");

    let q = "SELECT r.callee, r.level_name, r.rounds, r.score, d.notify, d.question, d.answer_id, d.sequence, d.bridge_status \
             FROM records r JOIN record_details d ON d.record_id = r.id WHERE r.task_id = ? ORDER BY r.callee, d.sequence";
    let rows = sqlx::query(store.sql(q)).bind(TASK).fetch_all(store.pool()).await.unwrap();
    let mut calls: Calls = HashMap::new();
    for r in rows {
        let callee: String = r.try_get("callee").unwrap();
        let e = calls.entry(callee).or_insert_with(|| {
            (
                r.try_get::<Option<String>, _>("level_name").unwrap().unwrap_or_default(),
                r.try_get("rounds").unwrap(),
                vec![],
            )
        });
        let seq: i64 = r.try_get("sequence").unwrap();
        assert_eq!(seq, e.2.len() as i64 + 1, "sequences are contiguous");
        e.2.push((
            r.try_get("notify").unwrap(),
            r.try_get("question").unwrap(),
            r.try_get::<Option<String>, _>("answer_id").unwrap().unwrap_or_default(),
        ));
    }
    let call = |p: Persona| &calls[&by_persona[&p]];
    let answers = |p: Persona| -> Vec<String> {
        call(p)
            .2
            .iter()
            .filter(|d| !d.2.is_empty())
            .map(|d| d.2.rsplit(':').next().unwrap_or_default().to_string())
            .collect()
    };
    let notifies = |p: Persona| -> Vec<String> { call(p).2.iter().map(|d| d.0.clone()).collect() };

    assert_eq!(call(Persona::Interested).0, "A级(有明确意向)", "{:?}", call(Persona::Interested));
    assert_eq!(answers(Persona::Interested), ["u-open", "u-intro", "u-invite", "u-bye-success"]);
    assert_eq!(answers(Persona::Refuser).last().map(String::as_str), Some("u-bye-refuse"));
    assert_eq!(answers(Persona::Busy), ["u-open", "u-bye-busy"]);
    // The asker's question is answered from the knowledge base.
    assert_eq!(answers(Persona::Asker).get(1).map(String::as_str), Some("u-kb-who"), "{:?}", call(Persona::Asker));
    // Silence: the no-speech handler twice, then the closing prompt.
    assert_eq!(answers(Persona::Silent), ["u-open", "u-no-speech", "u-no-speech", "u-closing"]);
    assert!(notifies(Persona::Silent).iter().skip(1).all(|n| n == "playback_result"));
    assert_eq!(call(Persona::Silent).1, 0, "no rounds without speech");
    assert!(
        answers(Persona::Mumbler).iter().any(|a| a == "u-not-understood" || a == "u-open"),
        "{:?}",
        call(Persona::Mumbler)
    );
    // Barge-in: the interrupter's partial results are kept as asrprogress rows.
    assert!(notifies(Persona::Interrupter).iter().any(|n| n == "asrprogress_notify"));
    assert_eq!(answers(Persona::Interrupter).get(1).map(String::as_str), Some("u-intro"));
    // Hung up mid-sentence: one round, no closing prompt.
    assert_eq!(call(Persona::HangsUp).1, 1);
    assert!(!answers(Persona::HangsUp).iter().any(|a| a.starts_with("u-bye") || a == "u-closing"));

    simulator.shutdown().await;
    cancel.cancel();
}

/// A call the dialer places and a robot module converses over HTTP has two
/// ends: the module's `leave` (transcript, score, tags) and the channel's
/// hangup in the dialer's call actor. It must be finalized once, by the
/// actor, with both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dialer_placed_module_call_is_finalized_once() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/smartivr", listener.local_addr().unwrap());
    let mix = common::mix(Fate::Answer(Persona::Interested));
    let rig = common::Rig::with(SimConfig {
        seed: 5,
        mix,
        time_scale: 10.0,
        smartivr_url: Some(url),
        ..SimConfig::default()
    })
    .await;
    let nums = rig.numbers(3, 0);
    let task = rig.task(&nums, 10, 20.0, 0).await;
    rig.store.set_task_notify(&task, Some("http://127.0.0.1:9/notify"), 1, None).await.unwrap();
    let cancel = CancellationToken::new();
    let cfg = SmartivrConfig {
        journal_dir: rig.dir.path().join("journal"),
        durability: Durability::Fsync,
        ..SmartivrConfig::default()
    };
    // The dialer and the endpoint share one registry of dialer-placed calls,
    // as the daemon builds them.
    let (runner, _c, progress) = rig.runner(common::no_limits(), common::no_recycle());
    let state =
        SmartivrState::start_with(rig.store.clone(), cfg, runner.module_calls.clone(), cancel.clone()).await.unwrap();
    tokio::spawn(api::serve_http(listener, state.clone(), cancel.clone()));

    assert_eq!(runner.run(&task).await.unwrap(), RunEnd::Completed);
    assert_eq!(state.live(), 0, "every module call left the flow");
    // The actor's finalization wrote every record: none was a duplicate of
    // an earlier one from the smartivr side.
    assert_eq!(progress.records.load(std::sync::atomic::Ordering::Relaxed), 3);

    let count = |q: &'static str| {
        let store = rig.store.clone();
        let task = task.clone();
        async move { store.count(q, &task).await.unwrap() }
    };
    assert_eq!(count("SELECT COUNT(*) FROM auto_call_histories WHERE task_id = ?").await, 3);
    assert_eq!(count("SELECT COUNT(*) FROM records WHERE task_id = ?").await, 3);
    assert_eq!(count("SELECT COUNT(*) FROM webhook_outbox WHERE task_id = ?").await, 3, "one callback per call");
    assert_eq!(count("SELECT COUNT(*) FROM dial_ledger WHERE task_id = ? AND state = 'finalized'").await, 3);
    let q = "SELECT r.callid, r.level_name, r.score, r.rounds, h.call_id AS hid, h.bill, h.status, n.status AS nstatus \
             FROM records r JOIN auto_call_histories h ON h.call_id = r.callid JOIN autodialer_number n ON n.id = r.number_id \
             WHERE r.task_id = ?";
    let rows = sqlx::query(rig.store.sql(q)).bind(&task).fetch_all(rig.store.pool()).await.unwrap();
    assert_eq!(rows.len(), 3);
    for r in rows {
        let callid: String = r.try_get("callid").unwrap();
        assert_eq!(r.try_get::<Option<String>, _>("level_name").unwrap().as_deref(), Some("A级(有明确意向)"));
        assert!(r.try_get::<i64, _>("score").unwrap() > 0, "the module conversation's score");
        assert_eq!(r.try_get::<i64, _>("rounds").unwrap(), 3);
        // Answered and hung up normally: the channel's status, final.
        assert_eq!(r.try_get::<i64, _>("status").unwrap(), 1);
        assert_eq!(r.try_get::<i64, _>("nstatus").unwrap(), 1);
        let d = sqlx::query(rig.store.sql("SELECT answer_id FROM record_details WHERE callid = ? ORDER BY sequence"))
            .bind(&callid)
            .fetch_all(rig.store.pool())
            .await
            .unwrap();
        let answers: Vec<String> = d
            .iter()
            .filter_map(|r| r.try_get::<Option<String>, _>("answer_id").unwrap())
            .map(|a| a.rsplit(':').next().unwrap_or_default().to_string())
            .collect();
        assert_eq!(answers, ["u-open", "u-intro", "u-invite", "u-bye-success"], "{callid}");
        let tags = rig
            .store
            .count("SELECT COUNT(*) FROM taggables WHERE taggable_type = 'record' AND taggable_id IN (SELECT id FROM records WHERE callid = ?)", &callid)
            .await
            .unwrap();
        assert!(tags > 0, "the conversation's tags are on the record");
    }
    cancel.cancel();
}
