//! The daemon as systemd runs it: a child process against the simulator of
//! this test process. SIGTERM during a campaign with live calls must end in
//! exit 0 with every attempt finalized and no number left claimed;
//! `/metrics` carries the named series; `voxdial check` names problems.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::*;
use voxdial::sim::fate::{Fate, FateMix, Persona};

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").expect("bind").local_addr().expect("addr").port()
}

fn write_config(rig: &Rig, extra: &str) -> PathBuf {
    let path = rig.dir.path().join("voxdial.toml");
    std::fs::write(
        &path,
        format!(
            "[database]\nurl = \"{}\"\n\n[freeswitch]\nhost = \"127.0.0.1\"\nport = {}\npassword = \"ClueCon\"\ngateway = \"voxdial-sim\"\n\n[dialer]\nnode_id = \"life-node\"\nrecordings_root = \"{}\"\n\n[finalizer]\nspool_dir = \"{}\"\n\n[compliance]\nlimits = []\n\n{extra}",
            rig.db_url,
            rig.sim.addr().port(),
            rig.dir.path().join("rec").display(),
            rig.dir.path().join("spool").display(),
        ),
    )
    .expect("config");
    path
}

fn daemon(cfg: &Path, log: &Path) -> Child {
    let out = std::fs::File::create(log).expect("log file");
    Command::new(env!("CARGO_BIN_EXE_voxdial"))
        .args(["serve", "--config"])
        .arg(cfg)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(out)
        .spawn()
        .expect("daemon starts")
}

fn sigterm(child: &Child) {
    let st = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("kill runs");
    assert!(st.success(), "kill -TERM failed");
}

async fn wait_exit(child: &mut Child, limit: Duration, log: &Path) -> ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().expect("wait") {
            return st;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            panic!("daemon did not exit within {limit:?}; log:\n{}", std::fs::read_to_string(log).unwrap_or_default());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn http_get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.expect("GET");
    let code = r.status().as_u16();
    (code, r.text().await.expect("body"))
}

async fn wait_ready(port: u16, log: &Path) {
    let start = Instant::now();
    loop {
        if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{port}/readyz")).await {
            if r.status().as_u16() == 200 {
                return;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "never ready; log:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn count(rig: &Rig, sql: &str, task: &str) -> i64 {
    rig.store.count(sql, task).await.expect("count")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_live_calls_drains_hangs_up_finalizes_and_exits_0() {
    // Silent callees keep the robot waiting: calls outlive the 1 s drain
    // and must be hung up; busy / unanswered ones end on their own.
    let mix = FateMix { weights: vec![(Fate::Answer(Persona::Silent), 6), (Fate::Busy, 2), (Fate::NoAnswer, 2)] };
    let rig = Rig::new(mix, 2.0).await;
    let nums = rig.numbers(400, 0);
    let task = rig.task(&nums, 60, 40.0, 0).await;
    let port = free_port();
    let cfg = write_config(
        &rig,
        &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n[lifecycle]\ndrain_secs = 1\nflush_secs = 20\n"),
    );
    let log = rig.dir.path().join("daemon.log");
    let mut child = daemon(&cfg, &log);
    wait_ready(port, &log).await;

    let start = Instant::now();
    while rig.sim.stats().live < 40 {
        assert!(start.elapsed() < Duration::from_secs(60), "never reached 40 live calls: {:?}", rig.sim.stats());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let live_at_term = rig.sim.stats().live;
    let t0 = Instant::now();
    sigterm(&child);
    // Draining: not ready any more, still healthy.
    tokio::time::sleep(Duration::from_millis(300)).await;
    if child.try_wait().expect("wait").is_none() {
        assert_eq!(
            http_get(&format!("http://127.0.0.1:{port}/readyz")).await.0,
            503,
            "draining node reports not ready"
        );
        assert_eq!(http_get(&format!("http://127.0.0.1:{port}/healthz")).await.0, 200);
    }
    let st = wait_exit(&mut child, Duration::from_secs(60), &log).await;
    let took = t0.elapsed();
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(st.success(), "exit status {st:?}; log:\n{text}");
    assert!(text.contains("hanging up the remaining calls"), "calls outlived the drain and were hung up; log:\n{text}");
    assert_eq!(rig.sim.stats().live, 0, "no channel left behind in FreeSWITCH");

    let originated = rig.sim.originate_log().len() as i64;
    assert!(originated >= live_at_term as i64);
    let ledger = count(&rig, "SELECT COUNT(*) FROM dial_ledger WHERE task_id = ?", &task).await;
    let open = count(&rig, "SELECT COUNT(*) FROM dial_ledger WHERE task_id = ? AND state <> 'finalized'", &task).await;
    let hist = count(&rig, "SELECT COUNT(*) FROM auto_call_histories WHERE task_id = ?", &task).await;
    let claimed =
        count(&rig, "SELECT COUNT(*) FROM autodialer_number WHERE task_id = ? AND claimed_by IS NOT NULL", &task).await;
    assert_eq!(open, 0, "every ledger attempt finalized");
    assert_eq!(ledger, originated, "one ledger row per originate the simulator saw");
    assert_eq!(hist, originated, "one history row per originate");
    assert_eq!(claimed, 0, "no number left claimed");
    let t = rig.store.load_task(&task).await.expect("task");
    assert_eq!(t.start, 1, "a stopped daemon leaves the task started for the next run");
    eprintln!("SIGTERM with {live_at_term} live calls: exit 0 after {took:?}; {originated} originates, all finalized");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_after_a_small_campaign_name_every_series() {
    let mix = FateMix {
        weights: vec![
            (Fate::Answer(Persona::Interested), 3),
            (Fate::Answer(Persona::Refuser), 2),
            (Fate::Busy, 1),
            (Fate::NoAnswer, 1),
        ],
    };
    let rig = Rig::new(mix, 8.0).await;
    let nums = rig.numbers(30, 0);
    let task = rig.task(&nums, 15, 30.0, 0).await;
    let port = free_port();
    let cfg = write_config(&rig, &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n\n[lifecycle]\ndrain_secs = 5\n"));
    let log = rig.dir.path().join("daemon.log");
    let mut child = daemon(&cfg, &log);
    wait_ready(port, &log).await;
    let start = Instant::now();
    while rig.store.load_task(&task).await.expect("task").start != 2 {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "campaign did not complete; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The sampler refreshes its gauges every 2 s.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (code, body) = http_get(&format!("http://127.0.0.1:{port}/metrics")).await;
    assert_eq!(code, 200);
    for series in [
        "voxdial_calls_in_flight{task=",
        "voxdial_originates_total{task=",
        "voxdial_calls_answered_total{task=",
        "voxdial_number_status_total{status=",
        "voxdial_dialogue_decision_seconds_bucket",
        "voxdial_esl_consumer_lag_seconds",
        "voxdial_esl_connected 1",
        "voxdial_db_write_seconds_bucket",
        "voxdial_webhook_outbox_backlog",
        "voxdial_spool_calls 0",
        "voxdial_ready 1",
    ] {
        assert!(body.contains(series), "/metrics lacks {series}:\n{body}");
    }
    let originates: f64 = body
        .lines()
        .find(|l| l.starts_with("voxdial_originates_total{"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .expect("originates value");
    assert_eq!(originates as usize, rig.sim.originate_log().len());
    let (code, ready) = http_get(&format!("http://127.0.0.1:{port}/readyz")).await;
    assert_eq!(code, 200, "{ready}");
    sigterm(&child);
    let st = wait_exit(&mut child, Duration::from_secs(30), &log).await;
    assert!(st.success(), "{st:?}");
}

fn check(cfg: &Path) -> (bool, String) {
    let out =
        Command::new(env!("CARGO_BIN_EXE_voxdial")).args(["check", "--config"]).arg(cfg).output().expect("check runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

fn require_services() -> bool {
    std::env::var("VOXDIAL_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_passes_a_good_config_and_names_each_problem() {
    let rig = Rig::new(mix(Fate::Busy), 4.0).await;
    let good = write_config(&rig, "");
    let (ok, text) = check(&good);
    assert!(ok, "{text}");
    assert!(text.contains("authenticated"), "{text}");
    assert!(text.contains("schema version"), "{text}");

    // Wrong ESL password.
    let body = std::fs::read_to_string(&good).expect("read").replace("password = \"ClueCon\"", "password = \"nope\"");
    let bad_pw = rig.dir.path().join("bad-pw.toml");
    std::fs::write(&bad_pw, body).expect("write");
    let (ok, text) = check(&bad_pw);
    assert!(!ok, "{text}");
    assert!(text.contains("refused the password"), "{text}");

    // Unreachable database (nothing listens on port 1).
    let body = std::fs::read_to_string(&good)
        .expect("read")
        .replace(&rig.db_url, "postgres://voxdial:secret@127.0.0.1:1/voxdial");
    let bad_db = rig.dir.path().join("bad-db.toml");
    std::fs::write(&bad_db, body).expect("write");
    let (ok, text) = check(&bad_db);
    assert!(!ok, "{text}");
    assert!(text.contains("cannot connect to the database"), "{text}");
    assert!(!text.contains("secret"), "passwords are not printed: {text}");

    // An invalid config names the section.
    let bad_cfg = rig.dir.path().join("bad-cfg.toml");
    std::fs::write(&bad_cfg, "[metrics]\nlisten = \"everywhere\"\n").expect("write");
    let (ok, text) = check(&bad_cfg);
    assert!(!ok && text.contains("[metrics] listen"), "{text}");

    // Redis: refused port always fails; a real server answers PONG.
    let body = std::fs::read_to_string(&good).expect("read");
    let redis_bad = rig.dir.path().join("redis-bad.toml");
    std::fs::write(&redis_bad, format!("{body}\n[cluster]\nredis_url = \"redis://127.0.0.1:1/0\"\n")).expect("write");
    let (ok, text) = check(&redis_bad);
    assert!(!ok && text.contains("cannot use Redis"), "{text}");
    let url = std::env::var("VOXDIAL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379/0".into());
    let redis_good = rig.dir.path().join("redis-good.toml");
    std::fs::write(&redis_good, format!("{body}\n[cluster]\nredis_url = \"{url}\"\n")).expect("write");
    let (ok, text) = check(&redis_good);
    if ok {
        assert!(text.contains("PONG"), "{text}");
    } else if require_services() {
        panic!("Redis at {url} not usable (VOXDIAL_REQUIRE_SERVICES=1): {text}");
    } else {
        eprintln!("SKIPPED: Redis at {url} not reachable: {text}");
    }
}

#[test]
fn the_shipped_example_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/voxdial.toml");
    let cfg = voxdial::config::Config::from_toml(
        &std::fs::read_to_string(&path).expect("read"),
        "voxdial.toml",
        std::iter::empty(),
    )
    .expect("deploy/voxdial.toml parses and validates");
    assert_eq!(cfg.lines.len(), 1);
    assert_eq!(cfg.compliance.limits.len(), 2);
    assert!(cfg.log.mask_numbers);
    assert_eq!(cfg.metrics.listen, "127.0.0.1:9464");
    assert_eq!(cfg.api.record_count_index_rows, 4_000_000);
    assert_eq!(cfg.api.cps_window_secs, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_calling_hours_without_a_restart() {
    let rig = Rig::new(mix(Fate::Busy), 4.0).await;
    let nums = rig.numbers(20, 0);
    let task = rig.task(&nums, 5, 20.0, 0).await;
    // A calling window that is closed now (UTC hours two to three from now).
    let h = chrono::Utc::now().format("%H").to_string().parse::<u32>().expect("hour");
    let (a, b) = if h <= 20 { (h + 2, h + 3) } else { (h - 3, h - 2) };
    let closed =
        format!("[compliance]\ntimezone = \"UTC\"\ncalling_hours = [\"{a:02}:00\", \"{b:02}:00\"]\nlimits = []\n");
    let port = free_port();
    let base = write_config(&rig, &format!("[metrics]\nlisten = \"127.0.0.1:{port}\"\n"));
    let text = std::fs::read_to_string(&base).expect("read").replace("[compliance]\nlimits = []\n", &closed);
    std::fs::write(&base, &text).expect("write");
    let log = rig.dir.path().join("daemon.log");
    let mut child = daemon(&base, &log);
    wait_ready(port, &log).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(rig.sim.originate_log().len(), 0, "window closed: nothing dialled");

    std::fs::write(&base, text.replace(&closed, "[compliance]\nlimits = []\n")).expect("write");
    let st = Command::new("kill").args(["-HUP", &child.id().to_string()]).status().expect("kill");
    assert!(st.success());
    let start = Instant::now();
    while rig.store.load_task(&task).await.expect("task").start != 2 {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "reloaded window not applied; log:\n{}",
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rig.sim.originate_log().len(), 20);
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(text.contains("configuration reloaded"), "{text}");
    sigterm(&child);
    let st = wait_exit(&mut child, Duration::from_secs(30), &log).await;
    assert!(st.success(), "{st:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_gets_ready_status_watchdog_and_stopping() {
    let rig = Rig::new(mix(Fate::Busy), 4.0).await;
    let cfg = write_config(&rig, "");
    let sock_path = rig.dir.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).expect("notify socket");
    sock.set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
    let log = rig.dir.path().join("daemon.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_voxdial"))
        .args(["serve", "--config"])
        .arg(&cfg)
        .env("NOTIFY_SOCKET", &sock_path)
        .env("WATCHDOG_USEC", "400000")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log"))
        .spawn()
        .expect("daemon");
    let mut seen = String::new();
    let mut buf = [0u8; 4096];
    let start = Instant::now();
    let mut termed = false;
    while start.elapsed() < Duration::from_secs(30) {
        if let Ok(n) = sock.recv(&mut buf) {
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        if !termed && seen.contains("READY=1") && seen.matches("WATCHDOG=1").count() >= 2 {
            sigterm(&child);
            termed = true;
        }
        if termed && seen.contains("STOPPING=1") {
            break;
        }
    }
    let st = wait_exit(&mut child, Duration::from_secs(30), &log).await;
    assert!(st.success(), "{st:?}");
    assert!(seen.contains("READY=1"), "{seen}");
    assert!(seen.contains("STATUS=dialing; 0 live calls"), "{seen}");
    assert!(seen.matches("WATCHDOG=1").count() >= 2, "pings at half of WATCHDOG_USEC: {seen}");
    assert!(seen.contains("STOPPING=1"), "{seen}");
    let ready_at = seen.find("READY=1").unwrap_or(usize::MAX);
    let reconciling = seen.find("STATUS=reconciling").unwrap_or(usize::MAX);
    assert!(reconciling < ready_at, "READY only after reconciliation: {seen}");
}
