//! Per-sentence audio end to end: a simulated campaign over ESL (the
//! simulator records each customer sentence with `uuid_record` and writes a
//! WAV, as FreeSWITCH would), the finalizer stores `record_details.voice` /
//! `robot_voice`, and seed 001's record detail endpoint hands out download
//! links that return exactly those files.

#[path = "api_rig/mod.rs"]
mod api_rig;
mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use sqlx::Row;
use voxdial::dialer::{DialerConfig, RunEnd};
use voxdial::dialogue::{Script, SAMPLE_SCRIPT};
use voxdial::sim::fate::{Fate, Persona};
use voxdial::sim::{write_wav, SimConfig};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answered_calls_keep_sentence_audio_and_the_detail_endpoint_serves_it() {
    let rig = Rig::with(SimConfig {
        mix: mix(Fate::Answer(Persona::Interested)),
        time_scale: 20.0,
        write_audio: true,
        ..SimConfig::default()
    })
    .await;
    let rec_root = rig.dir.path().join("rec");
    let audio_root = rig.dir.path().join("audio");
    // The deployment's recorded prompts (what FreeSWITCH plays).
    let script = Script::from_json(SAMPLE_SCRIPT).expect("script");
    for f in script.utterances.iter().flat_map(|u| u.contents.iter()).filter_map(|c| c.file_id.as_ref()) {
        write_wav(&audio_root.join(format!("{f}.wav")), Duration::from_millis(300)).expect("prompt wav");
    }
    let nums = rig.numbers(3, 0);
    let task = rig.task(&nums, 3, 10.0, 0).await;
    let (mut runner, _cancel, _p) = rig.runner(no_limits(), no_recycle());
    runner.cfg = DialerConfig {
        recordings_root: rec_root.display().to_string(),
        audio_root: audio_root.display().to_string(),
        ..DialerConfig::default()
    }
    .into();
    assert_eq!(runner.run(&task).await.expect("run"), RunEnd::Completed);

    let pool = rig.store.pool();
    let records = sqlx::query("SELECT id, callid, recordfile FROM records WHERE task_id = ? ORDER BY id")
        .bind(&task)
        .fetch_all(pool)
        .await
        .expect("records");
    assert_eq!(records.len(), 3, "every call answered");
    for r in &records {
        // The sentences' RECORD_STOP events do not replace the call's recording.
        let callid: String = r.try_get("callid").expect("callid");
        let file: Option<String> = r.try_get("recordfile").expect("recordfile");
        assert!(file.as_deref().is_some_and(|f| f.ends_with(&format!(".{callid}.wav"))), "{file:?}");
    }

    // The rows: each recognized sentence has its own customer file beside
    // the call (recordings-layout.md), each prompt the files it played.
    let rows = sqlx::query(
        "SELECT d.record_id, d.notify, d.sequence, d.voice, d.robot_voice, r.callid FROM record_details d JOIN records r ON r.id = d.record_id WHERE d.task_id = ? ORDER BY d.record_id, d.sequence",
    )
    .bind(&task)
    .fetch_all(pool)
    .await
    .expect("details");
    let mut sentences = 0;
    for r in &rows {
        let notify: String = r.try_get("notify").expect("notify");
        let callid: String = r.try_get("callid").expect("callid");
        let voice: Option<String> = r.try_get("voice").expect("voice");
        let robot: Option<String> = r.try_get("robot_voice").expect("robot_voice");
        if notify == "asrmessage_notify" {
            sentences += 1;
            let v = voice.unwrap_or_else(|| panic!("sentence of {callid} has no voice"));
            let dir = rec_root.join(chrono::Local::now().format("%Y-%m-%d").to_string()).join(&callid);
            assert!(Path::new(&v).starts_with(&dir), "{v} not under {}", dir.display());
            assert!(v.ends_with(".customer.wav"), "{v}");
            let bytes = std::fs::read(&v).expect("sentence file written");
            assert!(bytes.starts_with(b"RIFF") && bytes.len() > 44, "a WAV with samples: {v}");
        } else {
            assert_eq!(voice, None, "{notify} rows carry no customer audio");
        }
        let robot: Vec<String> = robot.map(|j| serde_json::from_str(&j).expect("robot_voice JSON")).unwrap_or_default();
        for p in &robot {
            assert!(Path::new(p).starts_with(&audio_root) && Path::new(p).is_file(), "played file {p}");
        }
        if notify == "enter" {
            assert_eq!(robot, vec![audio_root.join("audio-open.wav").display().to_string()]);
        }
    }
    assert!(sentences >= 3 * 3, "the interested callee answers at least three prompts per call ({sentences})");

    // The seed 001 detail endpoint: non-empty links that download the bytes.
    let token = rig.store.create_api_token(USER, "audio test", false).await.expect("token");
    let (addr, stop) = api_rig::serve(rig.store.clone(), vec![rec_root.clone(), audio_root.clone()]).await;
    let path_of = |u: &str| u.split_once(&addr.to_string()).map(|(_, p)| p.to_string()).expect("link to this server");
    for rec in &records {
        let id: String = rec.try_get("id").expect("id");
        let (st, det) =
            api_rig::call(addr, "GET", &format!("/agent-api/user/{USER}/task/{task}/detail/{id}"), Some(&token), None)
                .await;
        assert_eq!(st, 200, "{det}");
        let list = det["data"]["records"].as_array().expect("records[]");
        let mut voices = 0;
        let mut robots = 0;
        for d in list {
            let db = rows
                .iter()
                .find(|r| {
                    r.try_get::<String, _>("record_id").ok().as_deref() == Some(id.as_str())
                        && r.try_get::<i64, _>("sequence").ok() == d["sequence"].as_i64()
                })
                .expect("row of the endpoint's detail");
            if let Some(url) = d["voice"].as_str().filter(|v| !v.is_empty()) {
                let file: String = db.try_get::<Option<String>, _>("voice").expect("voice").expect("stored voice");
                let (st, body) = api_rig::raw(addr, "GET", &path_of(url), None, None, b"").await;
                assert_eq!(st, 200);
                assert_eq!(body, std::fs::read(&file).expect("file"), "customer audio of {file}");
                voices += 1;
            }
            for url in d["download_voice"]
                .as_array()
                .expect("download_voice")
                .iter()
                .flat_map(|l| l.as_array().cloned().unwrap_or_default())
            {
                let (st, body) = api_rig::raw(addr, "GET", &path_of(url.as_str().expect("url")), None, None, b"").await;
                assert_eq!(st, 200);
                assert!(body.starts_with(b"RIFF"), "robot audio");
                robots += 1;
            }
        }
        assert!(voices >= 3, "record {id}: {voices} customer sentences downloadable");
        assert!(robots >= 3, "record {id}: {robots} robot prompts downloadable");
    }
    stop.cancel();
}

/// The smartivr transport: the module's segment recordings (`recordfile`)
/// become the customer audio of their rows, the prompts' files the robot's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smartivr_segment_recordings_become_customer_audio() {
    use voxdial::api::{self, Durability, SmartivrConfig, SmartivrState};
    use voxdial::sim::fate::FateMix;
    use voxdial_esl::{ClientConfig, EslClient};

    let dir = tempfile::tempdir().expect("tmp");
    let store =
        voxdial::store::Store::open(&format!("sqlite://{}", dir.path().join("v.db").display())).await.expect("store");
    store.ensure_user(USER, "test").await.expect("user");
    let group = store.save_script(USER, &Script::from_json(SAMPLE_SCRIPT).expect("script")).await.expect("save");
    let task = uuid::Uuid::new_v4().to_string();
    store
        .create_task(&voxdial::store::Task {
            maximumcall: 2,
            call_per_second: 10.0,
            ..voxdial::store::Task::new(task.clone(), "smartivr audio", USER, group)
        })
        .await
        .expect("task");
    let numbers = ["13900000001", "13900000002"];
    let rows: Vec<_> = numbers.iter().map(|n| (n.to_string(), Default::default())).collect();
    store.import_numbers(&task, &rows).await.expect("import");
    let cancel = tokio_util::sync::CancellationToken::new();
    let mut cfg = SmartivrConfig {
        journal_dir: dir.path().join("journal"),
        durability: Durability::Write,
        ..SmartivrConfig::default()
    };
    cfg.reply.audio_root = dir.path().join("audio").display().to_string();
    let state = SmartivrState::start(store.clone(), cfg, cancel.clone()).await.expect("smartivr");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/smartivr", listener.local_addr().expect("addr"));
    tokio::spawn(api::serve_http(listener, state.clone(), cancel.clone()));
    let rec_root = dir.path().join("rec");
    let simulator = voxdial::sim::start(
        SimConfig {
            mix: FateMix { weights: vec![(Fate::Answer(Persona::Interested), 1)] },
            time_scale: 20.0,
            smartivr_url: Some(url),
            recordings_root: rec_root.display().to_string(),
            write_audio: true,
            ..SimConfig::default()
        },
        "127.0.0.1:0",
    )
    .await
    .expect("sim");
    let esl = EslClient::connect(ClientConfig::new(simulator.addr().to_string(), "ClueCon")).await.expect("esl");
    for n in numbers {
        let uuid = uuid::Uuid::new_v4();
        let job = esl
            .bgapi(&format!(
                "originate {{origination_uuid={uuid},voxdial_task={task},originate_timeout=20}}sofia/gateway/voxdial-sim/{n} robot XML default"
            ))
            .await
            .expect("originate");
        assert!(job.result().await.expect("job").starts_with("+OK"));
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while store.count("SELECT COUNT(*) FROM records WHERE task_id = ?", &task).await.expect("count") < 2
        || simulator.stats().live > 0
    {
        assert!(tokio::time::Instant::now() < deadline, "calls did not finish");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = sqlx::query("SELECT notify, answer_id, voice, robot_voice FROM record_details WHERE task_id = ?")
        .bind(&task)
        .fetch_all(store.pool())
        .await
        .expect("details");
    let (mut segments, mut sentences) = (0, 0);
    for r in &rows {
        let notify: String = r.try_get("notify").expect("notify");
        let voice: Option<String> = r.try_get("voice").expect("voice");
        let robot: Option<String> = r.try_get("robot_voice").expect("robot_voice");
        let robot: Vec<String> = robot.map(|j| serde_json::from_str(&j).expect("json")).unwrap_or_default();
        match notify.as_str() {
            "asrprogress_notify" | "asrmessage_notify" => {
                let v = voice.unwrap_or_else(|| panic!("{notify} without audio"));
                assert!(Path::new(&v).starts_with(&rec_root), "{v}");
                assert!(std::fs::read(&v).expect("segment written").starts_with(b"RIFF"));
                if notify == "asrprogress_notify" {
                    segments += 1;
                } else {
                    sentences += 1;
                }
            }
            // The opening names the callee: smartivr speaks it by TTS.
            "enter" => assert!(robot.is_empty(), "{robot:?}"),
            _ => assert_eq!(voice, None),
        }
        for p in &robot {
            assert!(Path::new(p).starts_with(dir.path().join("audio")), "{p}");
        }
    }
    assert!(segments >= 6 && sentences >= 6, "{segments} segments, {sentences} sentences");
    assert!(
        rows.iter().any(|r| r.try_get::<Option<String>, _>("robot_voice").ok().flatten().is_some()),
        "recorded prompts are named"
    );
    simulator.shutdown().await;
    cancel.cancel();
}
