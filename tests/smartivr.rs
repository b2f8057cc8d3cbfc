//! The smartivr flow endpoint over a real socket: whole calls, the rows they
//! leave, malformed requests, concurrent calls and journal recovery.
// Test helpers panic on setup failures like the tests themselves.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use sqlx::Row;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;
use voxdial::api::{self, Durability, SmartivrConfig, SmartivrState, WriterMode};
use voxdial::dialogue::smartivr::ReplyOptions;
use voxdial::dialogue::{Script, SAMPLE_SCRIPT};
use voxdial::store::{Store, Task};

const TASK: &str = "7f1c2a4e-task-0001";
const USER: &str = "4d99d91c-f5d9-49da-88da-758977cc58a9";

struct Server {
    addr: SocketAddr,
    store: Store,
    cancel: CancellationToken,
}

async fn store_with_task(dir: &Path, numbers: &[(&str, &str)]) -> Store {
    let store = Store::open(&format!("sqlite://{}", dir.join("v.db").display())).await.unwrap();
    store.ensure_user(USER, "test").await.unwrap();
    let group_id = store.save_script(USER, &Script::from_json(SAMPLE_SCRIPT).unwrap()).await.unwrap();
    store
        .create_task(&Task {
            maximumcall: 10,
            originate_timeout: 30,
            origination_caller_id_number: "02160001234".into(),
            ..Task::new(TASK, "smartivr test", USER, group_id)
        })
        .await
        .unwrap();
    let rows: Vec<(String, BTreeMap<String, String>)> = numbers
        .iter()
        .map(|(n, name)| (n.to_string(), BTreeMap::from([("name".to_string(), name.to_string())])))
        .collect();
    store.import_numbers(TASK, &rows).await.unwrap();
    store
}

async fn start(dir: &Path, store: Store) -> Server {
    start_with(dir, store, WriterMode::Thread).await
}

async fn start_with(dir: &Path, store: Store, journal_writer: WriterMode) -> Server {
    let cfg = SmartivrConfig {
        journal_dir: dir.join("journal"),
        durability: Durability::Fsync,
        journal_writer,
        reply: ReplyOptions { audio_root: "/audio".into(), ..ReplyOptions::default() },
        ..SmartivrConfig::default()
    };
    let cancel = CancellationToken::new();
    let state = SmartivrState::start(store.clone(), cfg, cancel.clone()).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(api::serve_http(listener, state, cancel.clone()));
    Server { addr, store, cancel }
}

/// A keep-alive HTTP/1.1 connection, as the robot module keeps one per call.
struct Client {
    r: BufReader<tokio::net::tcp::OwnedReadHalf>,
    w: tokio::net::tcp::OwnedWriteHalf,
}

impl Client {
    async fn connect(addr: SocketAddr) -> Client {
        let (r, w) = TcpStream::connect(addr).await.unwrap().into_split();
        Client { r: BufReader::new(r), w }
    }

    async fn raw(&mut self, method: &str, path: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        self.w.write_all(head.as_bytes()).await.unwrap();
        self.w.write_all(body).await.unwrap();
        let mut line = String::new();
        self.r.read_line(&mut line).await.unwrap();
        let status: u16 = line.split(' ').nth(1).unwrap().parse().unwrap();
        let mut len = 0;
        loop {
            let mut h = String::new();
            self.r.read_line(&mut h).await.unwrap();
            if h == "\r\n" {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().unwrap();
                }
            }
        }
        let mut body = vec![0; len];
        self.r.read_exact(&mut body).await.unwrap();
        (status, body)
    }

    async fn post(&mut self, v: Value) -> Value {
        let (status, body) = self.raw("POST", "/smartivr", v.to_string().as_bytes()).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        serde_json::from_slice(&body).unwrap()
    }
}

fn notify(kind: &str, callid: &str, number: &str, extra: Value) -> Value {
    let mut v = json!({
        "notify": kind, "callid": callid, "calleeid": "8888", "callerid": number,
        "origcallerid": "02160001234", "flowid": TASK, "errorcode": 0, "flowdata": {"v": 1},
    });
    if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        for (k, x) in e {
            o.insert(k.clone(), x.clone());
        }
    }
    v
}

fn said(text: &str) -> Value {
    json!({"message": text, "playstate": false, "speakms": "1162", "asrelapse": 391, "asrtype": "test", "gender": 2})
}

#[derive(Debug, Clone, PartialEq)]
struct Row_ {
    notify: String,
    question: String,
    question_index: i64,
    sequence: i64,
    answer_id: Option<String>,
    bridge_status: Option<i64>,
}

async fn wait_rows(store: &Store, callid: &str) -> Vec<Row_> {
    for _ in 0..100 {
        let rows = sqlx::query(store.sql(
            "SELECT notify, question, question_index, sequence, answer_id, bridge_status FROM record_details WHERE callid = ? ORDER BY sequence",
        ))
        .bind(callid)
        .fetch_all(store.pool())
        .await
        .unwrap();
        if !rows.is_empty() {
            return rows
                .iter()
                .map(|r| Row_ {
                    notify: r.try_get("notify").unwrap(),
                    question: r.try_get("question").unwrap(),
                    question_index: r.try_get("question_index").unwrap(),
                    sequence: r.try_get("sequence").unwrap(),
                    answer_id: r.try_get("answer_id").unwrap(),
                    bridge_status: r.try_get("bridge_status").unwrap(),
                })
                .collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("no record_details for {callid}");
}

/// Seed 001's `getUsableRecords`, transcribed.
fn usable(records: &[Row_]) -> Vec<Row_> {
    let mut out: Vec<Row_> = Vec::new();
    for (i, item) in records.iter().enumerate() {
        let behinds = &records[i + 1..];
        if item.bridge_status.is_some_and(|b| b != 0)
            || item.notify != "asrprogress_notify"
            || (out.iter().all(|u| u.question_index != item.question_index)
                && behinds.iter().all(|b| b.notify != "asrmessage_notify"))
        {
            out.push(item.clone());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_call_is_answered_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_task(dir.path(), &[("13900000001", "王先生")]).await;
    let srv = start(dir.path(), store).await;
    let mut c = Client::connect(srv.addr).await;
    let (id, num) = ("call-0001", "13900000001");

    let r = c.post(notify("enter", id, num, json!({"flowdata": null}))).await;
    assert_eq!(r["action"], "start_asr");
    assert_eq!(r["after_action"], "playback");
    assert_eq!(r["flowdata"], json!({"v": 1}));
    let opening = r["after_params"]["prompt"][0].as_str().unwrap();
    assert!(opening.contains("王先生"), "{{$name}} filled from the number: {opening}");

    // The opening and its wait ran out in silence.
    let r = c
        .post(notify("playback_result", id, num, json!({"message": "FILE PLAYED", "asrstate": false, "hangup": false})))
        .await;
    assert_eq!(r["action"], "playback");
    assert_eq!(r["params"]["prompt"], json!(["/audio/audio-no-speech.wav"]));

    let r = c
        .post(notify(
            "asrprogress_notify",
            id,
            num,
            json!({"message": "1.可以;", "asrtextall": "1.可以;", "playstate": true}),
        ))
        .await;
    assert_eq!(r["action"], "noop");
    let r = c.post(notify("asrmessage_notify", id, num, said("1.可以;2.你说;"))).await;
    assert_eq!(r["params"]["prompt"], json!(["/audio/audio-intro.wav"]));
    // Noise: the paused prompt goes on.
    let r = c.post(notify("asrmessage_notify", id, num, said(""))).await;
    assert_eq!(r, json!({"action": "console_playback", "params": {"command": "resume"}, "flowdata": {"v": 1}}));
    let r = c.post(notify("asrmessage_notify", id, num, said("1.我有兴趣;"))).await;
    assert_eq!(r["params"]["prompt"], json!(["/audio/audio-invite.wav"]));
    let r = c.post(notify("asrmessage_notify", id, num, said("1.好的；"))).await;
    assert_eq!(r["action"], "playback");
    assert_eq!(r["suspend_asr"], true);
    assert_eq!(r["after_action"], "hangup");
    assert_eq!(r["after_ignore_error"], true);
    assert_eq!(r["params"]["prompt"], json!(["/audio/audio-bye-success.wav"]));
    let r = c.post(notify("leave", id, num, json!({"duration": 41, "hangup_disposition": "send_bye"}))).await;
    assert_eq!(r["action"], "noop");

    let rows = wait_rows(&srv.store, id).await;
    let shape: Vec<(&str, i64, i64)> = rows.iter().map(|r| (r.notify.as_str(), r.question_index, r.sequence)).collect();
    assert_eq!(
        shape,
        vec![
            ("enter", 0, 1),
            ("playback_result", 0, 2),
            ("asrprogress_notify", 1, 3),
            ("asrmessage_notify", 1, 4),
            ("asrmessage_notify", 2, 5),
            ("asrmessage_notify", 3, 6),
        ]
    );
    assert_eq!(rows[3].question, "可以你说");
    assert_eq!(rows[5].answer_id.as_deref().map(|a| a.ends_with("u-bye-success")), Some(true));
    // The partial result is superseded by the final one.
    let u: Vec<String> = usable(&rows).into_iter().map(|r| r.notify).collect();
    assert_eq!(u, vec!["enter", "playback_result", "asrmessage_notify", "asrmessage_notify", "asrmessage_notify"]);

    let rec =
        sqlx::query(srv.store.sql(
            "SELECT rounds, level_name, callee, bill, number_id, hangup_disposition, operator FROM records WHERE callid = ?",
        ))
        .bind(id)
        .fetch_one(srv.store.pool())
        .await
        .unwrap();
    assert_eq!(rec.try_get::<i64, _>("rounds").unwrap(), 3);
    assert_eq!(rec.try_get::<Option<String>, _>("level_name").unwrap().as_deref(), Some("A级(有明确意向)"));
    assert_eq!(rec.try_get::<String, _>("callee").unwrap(), num);
    assert_eq!(rec.try_get::<i64, _>("bill").unwrap(), 41_000);
    assert_eq!(rec.try_get::<Option<i64>, _>("hangup_disposition").unwrap(), Some(1));
    assert!(rec.try_get::<i64, _>("number_id").unwrap() > 0);
    assert_eq!(rec.try_get::<i64, _>("operator").unwrap(), 1, "139 is 移动's segment");
    let n = sqlx::query(srv.store.sql("SELECT callid FROM autodialer_number WHERE number = ?"))
        .bind(num)
        .fetch_one(srv.store.pool())
        .await
        .unwrap();
    assert_eq!(n.try_get::<Option<String>, _>("callid").unwrap().as_deref(), Some(id));
    srv.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hangup_mid_sentence_keeps_the_partial_result() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_task(dir.path(), &[]).await;
    let srv = start(dir.path(), store).await;
    let mut c = Client::connect(srv.addr).await;
    let (id, num) = ("call-partial", "13900000009");
    let r = c.post(notify("enter", id, num, json!({}))).await;
    let opening = r["after_params"]["prompt"][0].as_str().unwrap();
    assert!(!opening.contains("{$"), "unknown number: variables left empty, not raw: {opening}");
    c.post(notify("asrmessage_notify", id, num, said("1.可以;"))).await;
    c.post(notify("asrprogress_notify", id, num, json!({"message": "1.我想问;"}))).await;
    c.post(notify("leave", id, num, json!({"hangup_disposition": "recv_bye"}))).await;
    let rows = wait_rows(&srv.store, id).await;
    let u: Vec<(String, i64)> = usable(&rows).into_iter().map(|r| (r.notify, r.question_index)).collect();
    assert_eq!(u, vec![("enter".into(), 0), ("asrmessage_notify".into(), 1), ("asrprogress_notify".into(), 2)]);
    srv.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_requests_get_a_clear_400() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_task(dir.path(), &[]).await;
    let srv = start(dir.path(), store).await;
    let mut c = Client::connect(srv.addr).await;
    let (s, b) = c.raw("POST", "/smartivr", b"{\"notify\": \"enter\", ").await;
    assert_eq!(s, 400);
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert!(v["error"].as_str().unwrap().contains("JSON"), "{v}");
    let (s, b) = c.raw("POST", "/smartivr", br#"{"notify":"enter","flowdata":null}"#).await;
    assert_eq!(s, 400);
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(v["field"], "callid");
    assert!(v["error"].as_str().unwrap().contains("callid"));
    let (s, b) = c.raw("POST", "/smartivr", br#"{"callid":"x"}"#).await;
    assert_eq!(s, 400);
    assert_eq!(serde_json::from_slice::<Value>(&b).unwrap()["field"], "notify");
    // The connection is still usable, and health reports live calls.
    let (s, b) = c.raw("GET", "/healthz", b"").await;
    assert_eq!(s, 200);
    assert_eq!(serde_json::from_slice::<Value>(&b).unwrap()["live_calls"], 0);
    // A notify for a call this server does not know releases the call.
    let r = c.post(json!({"notify": "asrmessage_notify", "callid": "ghost", "message": "1.喂;"})).await;
    assert_eq!(r["action"], "hangup");
    srv.cancel.cancel();
}

/// Concurrent `enter`s share number lookups: each still gets its own name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_keep_their_own_state() {
    concurrent_calls(WriterMode::Thread).await;
}

/// The same with the journal written inline on a `current_thread` runtime,
/// as `smartivr-server` runs it.
#[tokio::test]
async fn concurrent_calls_with_the_inline_journal_writer() {
    concurrent_calls(WriterMode::Inline).await;
}

async fn concurrent_calls(mode: WriterMode) {
    let dir = tempfile::tempdir().unwrap();
    let numbers: Vec<(String, String)> = (0..40).map(|i| (format!("1390000{i:04}"), format!("客户{i}"))).collect();
    let refs: Vec<(&str, &str)> = numbers.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    let store = store_with_task(dir.path(), &refs).await;
    let srv = start_with(dir.path(), store, mode).await;
    let mut calls = Vec::new();
    for (i, (num, name)) in numbers.iter().cloned().enumerate() {
        let addr = srv.addr;
        calls.push(tokio::spawn(async move {
            let mut c = Client::connect(addr).await;
            let id = format!("call-c{i}");
            let r = c.post(notify("enter", &id, &num, json!({}))).await;
            assert!(r["after_params"]["prompt"][0].as_str().unwrap().contains(&name));
            let accept = i % 2 == 0;
            if accept {
                for (text, next) in
                    [("1.可以;", "audio-intro"), ("1.有兴趣;", "audio-invite"), ("1.好的;", "audio-bye-success")]
                {
                    let r = c.post(notify("asrmessage_notify", &id, &num, said(text))).await;
                    assert_eq!(r["params"]["prompt"], json!([format!("/audio/{next}.wav")]), "call {id}");
                    tokio::task::yield_now().await;
                }
            } else {
                let r = c.post(notify("asrmessage_notify", &id, &num, said("1.不需要;"))).await;
                assert_eq!(r["params"]["prompt"], json!(["/audio/audio-bye-refuse.wav"]), "call {id}");
            }
            c.post(notify("leave", &id, &num, json!({}))).await;
            (id, accept)
        }));
    }
    for h in calls {
        let (id, accept) = h.await.unwrap();
        let rows = wait_rows(&srv.store, &id).await;
        assert_eq!(rows.len(), if accept { 4 } else { 2 }, "call {id}");
        assert!(rows.iter().enumerate().all(|(i, r)| r.sequence == i as i64 + 1));
    }
    srv.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_flow_uses_the_sample_script() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_task(dir.path(), &[]).await;
    let srv = start(dir.path(), store).await;
    let mut c = Client::connect(srv.addr).await;
    let mut n = notify("enter", "call-nf", "13800000000", json!({}));
    n["flowid"] = json!("no-such-task");
    let r = c.post(n).await;
    assert_eq!(r["action"], "start_asr");
    srv.cancel.cancel();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_open_at_a_crash_are_finalized_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with_task(dir.path(), &[("13900000001", "王先生")]).await;
    let srv = start(dir.path(), store.clone()).await;
    let mut c = Client::connect(srv.addr).await;
    let (id, num) = ("call-crash", "13900000001");
    c.post(notify("enter", id, num, json!({}))).await;
    c.post(notify("asrmessage_notify", id, num, said("1.可以;"))).await;
    // The node goes away before `leave`.
    srv.cancel.cancel();
    drop(c);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let srv2 = start(dir.path(), store).await;
    let rows = wait_rows(&srv2.store, id).await;
    let shape: Vec<(&str, i64)> = rows.iter().map(|r| (r.notify.as_str(), r.sequence)).collect();
    assert_eq!(shape, vec![("enter", 1), ("asrmessage_notify", 2)]);
    srv2.cancel.cancel();
}

/// `voxdial serve` as shipped (API-only node): `POST /smartivr` on the
/// daemon's HTTP listener, and the config's `[status_rules]` decide the
/// status of a call the dialer did not place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_serves_smartivr_with_the_configured_status_rules() {
    let dir = tempfile::tempdir().unwrap();
    let (id, num) = ("call-daemon", "13900000001");
    let store = store_with_task(dir.path(), &[(num, "王先生")]).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let cfg = dir.path().join("voxdial.toml");
    std::fs::write(
        &cfg,
        format!(
            "[database]\nurl = \"sqlite://{}\"\n\n[finalizer]\nspool_dir = \"{}\"\n\n[status_rules.by_cause]\nNORMAL_CLEARING = 9\n",
            dir.path().join("v.db").display(),
            dir.path().join("spool").display()
        ),
    )
    .unwrap();
    let log = dir.path().join("daemon.log");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_voxdial"))
        .args(["serve", "--config", cfg.to_str().unwrap(), "--http", &format!("127.0.0.1:{port}")])
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let start = std::time::Instant::now();
    while TcpStream::connect(addr).await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "daemon never listened");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut c = Client::connect(addr).await;
    let r = c.post(notify("enter", id, num, json!({}))).await;
    assert!(r["after_params"]["prompt"][0].as_str().unwrap().contains("王先生"), "{r}");
    c.post(notify("asrmessage_notify", id, num, said("1.可以;"))).await;
    // Another route on the same keep-alive connection still reaches the API.
    let (s, _) = c.raw("GET", "/healthz", b"").await;
    assert_eq!(s, 200);
    c.post(notify("leave", id, num, json!({"hangup_cause": "NORMAL_CLEARING", "duration": 12}))).await;
    // A connection that starts with the REST API is served by it.
    let mut rest = Client::connect(addr).await;
    let (s, _) = rest.raw("GET", "/openapi.json", b"").await;
    assert_eq!(s, 200);
    let rows = wait_rows(&store, id).await;
    assert_eq!(rows.len(), 2);
    let status: i64 = sqlx::query_scalar(store.sql("SELECT status FROM autodialer_number WHERE number = ?"))
        .bind(num)
        .fetch_one(store.pool())
        .await
        .unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        status,
        9,
        "[status_rules.by_cause] NORMAL_CLEARING = 9 applies; log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

/// The daemon's listener (`api::front`) on a test port, with a REST router
/// holding only `/healthz`.
async fn start_front(dir: &Path, store: Store) -> Server {
    let cfg = SmartivrConfig {
        journal_dir: dir.join("journal"),
        durability: Durability::Fsync,
        reply: ReplyOptions { audio_root: "/audio".into(), ..ReplyOptions::default() },
        ..SmartivrConfig::default()
    };
    let cancel = CancellationToken::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let rest = axum::Router::new().route("/healthz", axum::routing::get(|| async { "rest ok" }));
    let module_calls = voxdial::dialer::call::ModuleCalls::default();
    let front = api::front::serve(listener, rest, store.clone(), cfg, module_calls, cancel.clone()).await.unwrap();
    assert!(front.state.is_some());
    Server { addr, store, cancel }
}

/// One response read from `r`: status, lower-cased headers and body.
async fn read_response(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let mut line = String::new();
    r.read_line(&mut line).await.unwrap();
    let status: u16 = line.split(' ').nth(1).unwrap_or_else(|| panic!("status line {line:?}")).parse().unwrap();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h).await.unwrap();
        if h == "\r\n" {
            break;
        }
        let (k, v) = h.split_once(':').unwrap();
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let len: usize = headers.iter().find(|(k, _)| k == "content-length").map_or(0, |(_, v)| v.parse().unwrap());
    let mut body = vec![0; len];
    r.read_exact(&mut body).await.unwrap();
    (status, headers, body)
}

fn request(body: &Value, extra_headers: &str) -> Vec<u8> {
    let body = body.to_string();
    format!(
        "POST /smartivr HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n{extra_headers}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn assert_closed(r: &mut BufReader<tokio::net::tcp::OwnedReadHalf>) {
    let mut rest = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(5), r.read_to_end(&mut rest)).await.unwrap().unwrap_or(0);
    assert_eq!(n, 0, "nothing after the last answer: {}", String::from_utf8_lossy(&rest));
}

/// The listener's own HTTP/1.1 loop: a request split over many reads,
/// pipelined requests, another route and a chunked body mid-connection
/// (served by hyper from there on), `Connection: close`, and malformed
/// requests answered with a JSON 4xx and a close, never a panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_listener_serves_split_pipelined_and_malformed_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (id, num) = ("call-front", "13900000002");
    let store = store_with_task(dir.path(), &[(num, "李女士")]).await;
    let srv = start_front(dir.path(), store).await;
    let (r, mut w) = TcpStream::connect(srv.addr).await.unwrap().into_split();
    let mut r = BufReader::new(r);

    // `enter`, a few bytes at a time (cut inside the request line, the
    // headers and the body).
    let enter = request(&notify("enter", id, num, json!({})), "");
    for part in enter.chunks(7) {
        w.write_all(part).await.unwrap();
        w.flush().await.unwrap();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let (s, h, b) = read_response(&mut r).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
    assert!(h.iter().any(|(k, v)| k == "content-type" && v == "application/json"), "{h:?}");
    assert!(h.iter().any(|(k, _)| k == "date"), "{h:?}");
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert!(v["after_params"]["prompt"][0].as_str().unwrap().contains("李女士"), "{v}");

    // Two requests in one write: two answers, in order.
    let two = [
        request(&notify("playback_result", id, num, json!({})), ""),
        request(&notify("asrmessage_notify", id, num, said("1.你们是哪里的？;")), ""),
    ]
    .concat();
    w.write_all(&two).await.unwrap();
    let (s1, _, _) = read_response(&mut r).await;
    let (s2, _, b2) = read_response(&mut r).await;
    assert_eq!((s1, s2), (200, 200));
    assert!(serde_json::from_slice::<Value>(&b2).unwrap()["action"].is_string());

    // A request with a bad JSON body: 400 with the reason, connection kept.
    w.write_all(b"POST /smartivr HTTP/1.1\r\nContent-Length: 5\r\n\r\n{\"a\":").await.unwrap();
    let (s, h, b) = read_response(&mut r).await;
    assert_eq!(s, 400);
    assert!(!h.iter().any(|(k, _)| k == "connection"), "{h:?}");
    assert!(serde_json::from_slice::<Value>(&b).unwrap()["error"].as_str().unwrap().contains("JSON"));

    // Another route: hyper and the REST router take the connection over,
    // and still serve `POST /smartivr` on it, with a chunked body too.
    w.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").await.unwrap();
    let (s, _, b) = read_response(&mut r).await;
    assert_eq!((s, b.as_slice()), (200, &b"rest ok"[..]));
    let leave = notify("leave", id, num, json!({"hangup_cause": "NORMAL_CLEARING", "duration": 9})).to_string();
    let (a, z) = leave.split_at(10);
    let chunked = format!(
        "POST /smartivr HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{z}\r\n0\r\n\r\n",
        a.len(),
        z.len()
    );
    w.write_all(chunked.as_bytes()).await.unwrap();
    let (s, _, b) = read_response(&mut r).await;
    assert_eq!(s, 200, "{}", String::from_utf8_lossy(&b));
    // The call's rows, one per turn served over both paths (the leave
    // that arrived chunked through hyper finalized them).
    let notifies: Vec<String> = wait_rows(&srv.store, id).await.into_iter().map(|r| r.notify).collect();
    assert_eq!(notifies, ["enter", "playback_result", "asrmessage_notify"], "{notifies:?}");

    // `Connection: close`: answered, then closed.
    let (r2, mut w2) = TcpStream::connect(srv.addr).await.unwrap().into_split();
    let mut r2 = BufReader::new(r2);
    w2.write_all(&request(&notify("asrmessage_notify", "ghost", num, said("1.喂;")), "Connection: close\r\n"))
        .await
        .unwrap();
    let (s, h, b) = read_response(&mut r2).await;
    assert_eq!(s, 200);
    assert_eq!(serde_json::from_slice::<Value>(&b).unwrap()["action"], "hangup");
    assert!(h.iter().any(|(k, v)| k == "connection" && v == "close"), "{h:?}");
    assert_closed(&mut r2).await;

    // Malformed heads and lengths: a JSON 4xx, then the connection closes.
    for (bad, status) in [
        (&b"POST /smartivr HTTP/1.1\r\nContent-Length: abc\r\n\r\n"[..], 400),
        (b"POST /smartivr HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"POST /smartivr HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n", 413),
        (b"POST /smartivr HTTP/1.1\r\nBad Header\r\n\r\n", 400),
        (b"POST /smartivr \x01\x02 HTTP/1.1\r\n\r\n", 400),
    ] {
        let (r3, mut w3) = TcpStream::connect(srv.addr).await.unwrap().into_split();
        let mut r3 = BufReader::new(r3);
        w3.write_all(bad).await.unwrap();
        let (s, h, b) = read_response(&mut r3).await;
        assert_eq!(s, status, "{}", String::from_utf8_lossy(bad));
        assert!(serde_json::from_slice::<Value>(&b).unwrap()["error"].is_string());
        assert!(h.iter().any(|(k, v)| k == "connection" && v == "close"), "{h:?}");
        assert_closed(&mut r3).await;
    }

    // A head that never ends is refused once it passes the limit.
    let (r4, mut w4) = TcpStream::connect(srv.addr).await.unwrap().into_split();
    let mut r4 = BufReader::new(r4);
    w4.write_all(b"POST /smartivr HTTP/1.1\r\nX-Long: ").await.unwrap();
    let _ = w4.write_all(&vec![b'a'; 20_000]).await;
    let (s, _, _) = read_response(&mut r4).await;
    assert_eq!(s, 431);

    // The listener still serves after all that.
    let mut c = Client::connect(srv.addr).await;
    let r = c.post(notify("asrmessage_notify", "ghost2", num, said("1.喂;"))).await;
    assert_eq!(r["action"], "hangup");
    srv.cancel.cancel();
}
