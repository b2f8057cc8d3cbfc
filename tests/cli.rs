//! The operator CLI as operators run it: the `voxdial` binary against a
//! configured database, and `voxdial serve` serving a demo's records.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod api_rig;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

fn voxdial(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_voxdial")).args(args).output().expect("run voxdial")
}

fn ok(args: &[&str]) -> String {
    let out = voxdial(args);
    assert!(out.status.success(), "voxdial {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn write_config(dir: &Path) -> String {
    let cfg = dir.join("voxdial.toml");
    std::fs::write(&cfg, format!("[database]\nurl = \"sqlite://{}/cli.db\"\n", dir.display())).unwrap();
    cfg.display().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_create_import_run_and_query_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path());
    let user = ok(&["user", "create", "--config", &cfg, "--name", "ops"]).trim().to_string();
    let token = ok(&["token", "create", "--config", &cfg, "--user", &user]).trim().to_string();
    assert!(token.starts_with("vx_"));
    // A script (via the store), then a task from a JSON file with no user_id:
    // the script group's owner is taken.
    let store = voxdial::store::Store::open(&format!("sqlite://{}/cli.db", dir.path().display())).await.unwrap();
    let group = store
        .save_script(&user, &voxdial::dialogue::Script::from_json(voxdial::dialogue::SAMPLE_SCRIPT).unwrap())
        .await
        .unwrap();
    let task_file = dir.path().join("task.json");
    std::fs::write(
        &task_file,
        json!({"name": "cli task", "group_id": group, "maximumcall": 10, "call_per_second": 2}).to_string(),
    )
    .unwrap();
    let out = ok(&["task", "create", "--config", &cfg, "--file", task_file.to_str().unwrap()]);
    let task = out.trim().to_string();
    assert_eq!(task.len(), 36, "prints the uuid only: {out:?}");
    // Validation is the API's: the message names the field.
    std::fs::write(&task_file, json!({"name": "bad", "group_id": group, "maximumcall": 0}).to_string()).unwrap();
    let out = voxdial(&["task", "create", "--config", &cfg, "--file", task_file.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("maximumcall"), "{}", String::from_utf8_lossy(&out.stderr));

    let csv = dir.path().join("numbers.csv");
    std::fs::write(&csv, "number,name\n13800000001,王先生\n13800000002,李女士\n13800000001,again\nabc,x\n").unwrap();
    let out = voxdial(&["task", "import", "--config", &cfg, "--task", &task, csv.to_str().unwrap()]);
    assert!(out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stdout.contains("2 imported") && stdout.contains("1 duplicates") && stdout.contains("1 rejected"),
        "{stdout}"
    );
    assert!(stderr.contains("numbers.csv:5:"), "line of the bad row: {stderr}");

    for (verb, start) in [("start", 1), ("pause", 0), ("stop", 2)] {
        let v: Value = serde_json::from_str(&ok(&["task", verb, "--config", &cfg, "--task", &task, "--json"])).unwrap();
        assert_eq!(v["start"], start, "{verb}");
    }
    let v: Value = serde_json::from_str(&ok(&["task", "status", "--config", &cfg, "--task", &task, "--json"])).unwrap();
    assert_eq!((v["total"].clone(), v["waiting"].clone(), v["dialled"].clone()), (json!(2), json!(2), json!(0)));
    let human = ok(&["task", "status", "--config", &cfg, "--task", &task]);
    assert!(human.contains("achieved CPS") && human.contains("in flight"), "{human}");
    assert!(ok(&["task", "list", "--config", &cfg]).contains(&task));
    let out = voxdial(&["task", "start", "--config", &cfg, "--task", "nope"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("--task"));

    // Records: query and export with the API's filters.
    let rec_dir = dir.path().join("rec");
    std::fs::create_dir_all(&rec_dir).unwrap();
    let t = api_rig::tenant(&store, None, "records", &rec_dir, false).await;
    let v: Value = serde_json::from_str(&ok(&[
        "records", "query", "--config", &cfg, "--task", &t.task, "--levels", "100-200", "--json",
    ]))
    .unwrap();
    assert_eq!((v["total"].clone(), v["data"][0]["id"].clone()), (json!(1), json!(t.record)));
    let v: Value = serde_json::from_str(&ok(&[
        "records", "query", "--config", &cfg, "--task", &t.task, "--bills", "0,10", "--json",
    ]))
    .unwrap();
    assert_eq!(v["total"], 0, "31 s is outside 0–10 s");
    let out = voxdial(&["records", "query", "--config", &cfg, "--task", &t.task, "--bills", "9,1"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("bills"));
    let csv_out = ok(&["records", "export", "--config", &cfg, "--task", &t.task]);
    let mut lines = csv_out.lines();
    assert!(lines.next().unwrap().starts_with("id,task_id,callid,callee"));
    assert!(lines.next().unwrap().contains(&t.number));
    let json_out = ok(&["records", "export", "--config", &cfg, "--task", &t.task, "--format", "json"]);
    let v: Value = serde_json::from_str(&json_out).unwrap();
    assert_eq!(v[0]["level"]["name"], "B级");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Daemon(std::process::Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_port(addr: std::net::SocketAddr) {
    let start = Instant::now();
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(start.elapsed() < Duration::from_secs(20), "daemon never listened on {addr}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_right_after_a_demo_serves_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let summary = dir.path().join("summary.json");
    ok(&[
        "demo",
        "--numbers",
        "12",
        "--cps",
        "40",
        "--data-dir",
        data.to_str().unwrap(),
        "--json",
        summary.to_str().unwrap(),
        "--quiet",
    ]);
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let token = s["api_token"].as_str().expect("api_token in the summary").to_string();
    let (user, task) = (s["user_id"].as_str().unwrap().to_string(), s["task_id"].as_str().unwrap().to_string());
    let port = free_port();
    let cfg = data.join("voxdial.toml");
    let _d = Daemon(
        Command::new(env!("CARGO_BIN_EXE_voxdial"))
            .args(["serve", "--config", cfg.to_str().unwrap(), "--http", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_port(addr).await;
    let (st, v) = api_rig::call(
        addr,
        "POST",
        "/v1/task/query_done_task_phones",
        Some(&token),
        Some(json!({"task_id": task, "page": 1})),
    )
    .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["total"], s["records"], "{v}");
    let record = v["data"][0]["id"].as_str().unwrap().to_string();
    let (_, v) =
        api_rig::call(addr, "GET", &format!("/agent-api/user/{user}/task/{task}/detail/{record}"), Some(&token), None)
            .await;
    assert_eq!(v["code"], 200);
    let (st, _) = api_rig::call(addr, "GET", "/healthz", None, None).await;
    assert_eq!(st, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_status_shows_the_cluster_when_the_node_has_one() {
    let redis = std::env::var("VOXDIAL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let require = std::env::var("VOXDIAL_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
    let host = redis.trim_start_matches("redis://").split('/').next().unwrap_or("127.0.0.1:6379").to_string();
    if std::net::TcpStream::connect(&host).is_err() {
        assert!(!require, "Redis not reachable at {redis}");
        eprintln!("SKIPPED: Redis not reachable at {redis}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("voxdial.toml");
    std::fs::write(
        &cfg,
        format!("[database]\nurl = \"sqlite://{}/cli.db\"\n\n[cluster]\nredis_url = \"{redis}\"\nkey_prefix = \"vxcli-{}\"\n", dir.path().display(), std::process::id()),
    )
    .unwrap();
    let cfg = cfg.display().to_string();
    let user = ok(&["user", "create", "--config", &cfg, "--name", "ops"]).trim().to_string();
    let store = voxdial::store::Store::open(&format!("sqlite://{}/cli.db", dir.path().display())).await.unwrap();
    let group = store
        .save_script(&user, &voxdial::dialogue::Script::from_json(voxdial::dialogue::SAMPLE_SCRIPT).unwrap())
        .await
        .unwrap();
    let task_file = dir.path().join("task.json");
    std::fs::write(
        &task_file,
        json!({"name": "cluster task", "group_id": group, "maximumcall": 10, "call_per_second": 2}).to_string(),
    )
    .unwrap();
    let task = ok(&["task", "create", "--config", &cfg, "--file", task_file.to_str().unwrap()]).trim().to_string();
    let v: Value = serde_json::from_str(&ok(&["task", "status", "--config", &cfg, "--task", &task, "--json"])).unwrap();
    assert_eq!(v["total"], json!(0), "the task's own status is still there: {v}");
    assert_eq!(v["cluster"]["redis_reachable"], json!(true), "{v}");
    assert!(v["cluster"]["nodes"].is_array(), "{v}");
}
