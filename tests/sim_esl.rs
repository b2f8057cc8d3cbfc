//! The real ESL client against the simulator over loopback TCP.

use std::time::Duration;

use voxdial::sim::fate::{Fate, Persona};
use voxdial::sim::{self, SimConfig, SimHandle};
use voxdial_esl::{ClientConfig, EslClient, EslError};

async fn sim() -> SimHandle {
    sim::start(SimConfig { time_scale: 20.0, ..SimConfig::default() }, "127.0.0.1:0").await.expect("sim starts")
}

fn number_with(s: &SimHandle, want: Fate) -> String {
    (0..100_000).map(|i| format!("1860000{i:04}")).find(|n| s.fate_of(n) == want).expect("a number with that fate")
}

async fn client(s: &SimHandle) -> EslClient {
    EslClient::connect(ClientConfig::new(s.addr().to_string(), "ClueCon")).await.expect("connects")
}

#[tokio::test]
async fn wrong_password_is_reported_as_auth_failure() {
    let s = sim().await;
    let err = EslClient::connect(ClientConfig::new(s.addr().to_string(), "nope")).await.unwrap_err();
    assert!(matches!(err, EslError::AuthFailed { .. }), "{err}");
}

#[tokio::test]
async fn api_commands_answer_like_freeswitch() {
    let s = sim().await;
    let c = client(&s).await;
    assert!(c.api("version").await.expect("api").starts_with("FreeSWITCH Version 1.10"));
    assert_eq!(c.api("show channels as json").await.expect("api"), "{\"row_count\": 0}\n");
    assert_eq!(c.api("uuid_exists 5ca1ab1e-0000-4000-8000-000000000001").await.expect("api"), "false");
    assert_eq!(c.api("uuid_kill 5ca1ab1e-0000-4000-8000-000000000001").await.expect("api"), "-ERR No such channel!\n");
    let r = c
        .api("originate {origination_uuid=x1}sofia/gateway/nosuchgw/18651683344 robot XML default")
        .await
        .expect("api");
    assert_eq!(r, "-ERR INVALID_GATEWAY\n");
    assert_eq!(s.stats().originates, 1, "the simulator logs refused originates too");
}

#[tokio::test]
async fn busy_callee_gives_486_and_err_user_busy() {
    let s = sim().await;
    let c = client(&s).await;
    let n = number_with(&s, Fate::Busy);
    let uuid = "5ca1ab1e-0000-4000-8000-00000000000b";
    let mut ev = c.subscribe_call(uuid);
    let job = c
        .bgapi(&format!(
            "originate {{origination_uuid={uuid},originate_timeout=8}}sofia/gateway/voxdial-sim/{n} robot XML default"
        ))
        .await
        .expect("bgapi");
    let mut names = Vec::new();
    loop {
        let e = tokio::time::timeout(Duration::from_secs(10), ev.recv()).await.expect("in time").expect("event");
        let name = e.name().map(|n| n.into_owned()).unwrap_or_default();
        names.push(name.clone());
        if name == "CHANNEL_HANGUP_COMPLETE" {
            assert_eq!(e.header("Hangup-Cause").as_deref(), Some("USER_BUSY"));
            assert_eq!(e.var("sip_term_status").as_deref(), Some("486"));
            assert_eq!(e.var("sip_hangup_disposition").as_deref(), Some("recv_refuse"));
            break;
        }
    }
    assert_eq!(names.first().map(String::as_str), Some("CHANNEL_OUTGOING"));
    assert!(names.contains(&"CHANNEL_HANGUP".to_string()));
    assert_eq!(job.result().await.expect("job"), "-ERR USER_BUSY\n");
}

#[tokio::test]
async fn answered_call_plays_and_is_killed() {
    let s = sim().await;
    let c = client(&s).await;
    let n = number_with(&s, Fate::Answer(Persona::Silent));
    let uuid = "5ca1ab1e-0000-4000-8000-00000000000a";
    let mut ev = c.subscribe_call(uuid);
    let job = c
        .bgapi(&format!(
            "originate {{origination_uuid={uuid},originate_timeout=8}}sofia/gateway/voxdial-sim/{n} robot XML default"
        ))
        .await
        .expect("bgapi");
    next(&mut ev, "CHANNEL_ANSWER").await;
    let park = next(&mut ev, "CHANNEL_PARK").await;
    assert_eq!(
        park.header("Caller-Caller-ID-Number").as_deref(),
        Some(n.as_str()),
        "caller profile swapped after answer"
    );
    assert_eq!(job.result().await.expect("job"), format!("+OK {uuid}\n"));
    assert_eq!(c.api(&format!("uuid_exists {uuid}")).await.expect("api"), "true");
    assert_eq!(c.api(&format!("uuid_broadcast {uuid} /tmp/a.wav aleg")).await.expect("api"), "+OK Message sent\n");
    next(&mut ev, "PLAYBACK_START").await;
    assert_eq!(c.api(&format!("uuid_break {uuid} all")).await.expect("api"), "+OK\n");
    let stop = next(&mut ev, "PLAYBACK_STOP").await;
    assert_eq!(stop.header("Playback-Status").as_deref(), Some("break"));
    assert_eq!(c.api(&format!("uuid_kill {uuid}")).await.expect("api"), "+OK\n");
    let rec = next(&mut ev, "RECORD_STOP").await;
    assert!(rec.header("Record-File-Path").is_some_and(|p| p.ends_with(".wav")));
    let done = next(&mut ev, "CHANNEL_HANGUP_COMPLETE").await;
    assert_eq!(done.var("sip_hangup_disposition").as_deref(), Some("send_bye"));
    assert!(done.var("sip_term_status").is_none(), "absent when FreeSWITCH ended the call");
    assert_eq!(s.stats().max_concurrent, 1);
}

async fn next(ev: &mut voxdial_esl::CallEvents, want: &str) -> std::sync::Arc<voxdial_esl::Event> {
    loop {
        let e = tokio::time::timeout(Duration::from_secs(10), ev.recv()).await.expect("in time").expect("event");
        if e.name().as_deref() == Some(want) {
            return e;
        }
    }
}
