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
