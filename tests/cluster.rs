//! Three `voxdial serve` daemons, each beside its own simulator, on one
//! PostgreSQL and one Redis: global CPS and `maximumcall` measured from the
//! simulators' own logs and live counts, a `kill -9` of one node, and a
//! Redis outage. Needs PostgreSQL (`VOXDIAL_TEST_POSTGRES_URL`) and Redis
//! (`VOXDIAL_TEST_REDIS_URL`, plus `redis-server` on the PATH for the outage
//! test); without them the tests print `SKIPPED: …` and pass, unless
//! `VOXDIAL_REQUIRE_SERVICES=1`, where they fail.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::USER;
use sqlx::Row;
use voxdial::dialogue::{Script, SAMPLE_SCRIPT};
use voxdial::sim::fate::Fate;
use voxdial::sim::{self, OriginateRecord, SimConfig, SimHandle};
use voxdial::store::{Store, Task};

/// The daemons compete for 2 cores: one cluster test at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const NODES: usize = 3;
const LINE_CPS: f64 = 30.0;
const MAXIMUMCALL: i64 = 90;
/// Most originates a simulator may see in any second: 30, one more for the
/// GCRA's tolerance of one interval (it makes up a slot missed by timer
/// jitter, which is what keeps the long-run rate at 30), one for the window
/// edge, and up to two for jitter between the grant and the originate
/// reaching the simulator (the ledger row is written in between).
const MAX_PER_SECOND: usize = 34;

fn require_services() -> bool {
    std::env::var("VOXDIAL_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}

fn skip(what: &str) {
    let msg = format!("SKIPPED: {what}");
    if require_services() {
        panic!("{msg} (VOXDIAL_REQUIRE_SERVICES=1: a missing server is a failure)");
    }
    eprintln!("{msg}");
}

fn pg_admin_url() -> String {
    std::env::var("VOXDIAL_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

fn redis_url() -> String {
    std::env::var("VOXDIAL_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

fn host_of(url: &str) -> String {
    let after = url.split_once("://").map_or(url, |(_, r)| r);
    let hp = after.split(['/', '?']).next().unwrap_or("");
    hp.rsplit_once('@').map_or(hp, |(_, h)| h).to_string()
}

async fn reachable(url: &str) -> Result<(), String> {
    let host = host_of(url);
    match tokio::time::timeout(Duration::from_secs(3), tokio::net::TcpStream::connect(&host)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(format!("{url}: {e}")),
        Err(_) => Err(format!("{url}: connect timed out")),
    }
}

/// A fresh PostgreSQL database, dropped on drop.
struct PgDb {
    admin: String,
    name: String,
    url: String,
}

impl PgDb {
    async fn create() -> Option<PgDb> {
        let admin = pg_admin_url();
        if let Err(e) = reachable(&admin).await {
            skip(&format!("PostgreSQL not reachable: {e}"));
            return None;
        }
        let name = format!("vxcl_{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let s = match Store::connect(&admin).await {
            Ok(s) => s,
            Err(e) => {
                skip(&format!("PostgreSQL: {e}"));
                return None;
            }
        };
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(s.pool())
            .await
            .expect("create database");
        s.pool().close().await;
        let (base, query) = admin.split_once('?').map_or((admin.as_str(), None), |(b, q)| (b, Some(q)));
        let prefix = base.rsplit_once('/').map_or(base, |(p, _)| p);
        let url = match query {
            Some(q) => format!("{prefix}/{name}?{q}"),
            None => format!("{prefix}/{name}"),
        };
        Some(PgDb { admin, name, url })
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        let (admin, name) = (self.admin.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("rt");
            rt.block_on(async move {
                if let Ok(s) = Store::connect(&admin).await {
                    let q = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                    if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(q)).execute(s.pool()).await {
                        eprintln!("dropping {name} failed: {e}");
                    }
                    s.pool().close().await;
                }
            });
        })
        .join();
    }
}

/// A private `redis-server` on a free port, for the outage test.
struct OwnRedis {
    port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    fn start() -> Option<OwnRedis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
        let mut r = OwnRedis { port, child: None };
        r.resume().then_some(r)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn resume(&mut self) -> bool {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else { return false };
        self.child = Some(child);
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

struct Node {
    sim: Arc<SimHandle>,
    /// The simulator's JSON-lines originate log (kept for debugging a failure).
    _log: PathBuf,
    cfg: PathBuf,
    daemon_log: PathBuf,
    child: Option<Child>,
}

/// Three simulators and three daemon configs on one database and Redis.
struct Rig {
    /// Configs, logs and spools; removed with the rig.
    _dir: tempfile::TempDir,
    store: Store,
    nodes: Vec<Node>,
    group: i64,
    peak_live: Arc<AtomicI64>,
    sampling: Arc<AtomicBool>,
}

struct RigOpts {
    redis_url: String,
    lease_secs: u64,
    orphan_after_secs: i64,
    local_fraction: f64,
    nodes: usize,
    line_cps: f64,
}

impl Rig {
    async fn new(db: &PgDb, o: &RigOpts) -> Rig {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(&db.url).await.expect("open + migrate");
        store.ensure_user(USER, "test").await.expect("user");
        let group = store.save_script(USER, &Script::from_json(SAMPLE_SCRIPT).expect("script")).await.expect("save");
        let prefix = format!("vxtest-{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
        let mut nodes = Vec::new();
        for i in 0..o.nodes {
            let log = dir.path().join(format!("originates-{i}.jsonl"));
            let sim = sim::start(
                SimConfig {
                    mix: common::mix(Fate::NoAnswer),
                    seed: i as u64 + 1,
                    originate_log: Some(log.clone()),
                    ..SimConfig::default()
                },
                "127.0.0.1:0",
            )
            .await
            .expect("sim");
            let sim = Arc::new(sim);
            let cfg = dir.path().join(format!("node-{i}.toml"));
            let d = dir.path().display();
            std::fs::write(
                &cfg,
                format!(
                    r#"[database]
url = "{db}"

[freeswitch]
host = "127.0.0.1"
port = {port}
password = "ClueCon"
gateway = "voxdial-sim"

[dialer]
recordings_root = "{d}/rec-{i}"
claim_batch = 20

[finalizer]
spool_dir = "{d}/spool-{i}"

[cluster]
node_id = "node-{i}"
redis_url = "{redis}"
key_prefix = "{prefix}"
local_fraction = {frac}
lease_secs = {lease}
heartbeat_ms = 500
orphan_after_secs = {orphan}
degraded_settle_secs = 5

[[lines]]
name = "voxdial-sim"
cps = {line_cps:.1}
max_concurrent = 1000
"#,
                    db = db.url,
                    port = sim.addr().port(),
                    redis = o.redis_url,
                    frac = o.local_fraction,
                    lease = o.lease_secs,
                    orphan = o.orphan_after_secs,
                    line_cps = o.line_cps,
                ),
            )
            .expect("config");
            nodes.push(Node {
                sim,
                _log: log,
                cfg,
                daemon_log: dir.path().join(format!("daemon-{i}.log")),
                child: None,
            });
        }
        let rig = Rig {
            _dir: dir,
            store,
            nodes,
            group,
            peak_live: Arc::new(AtomicI64::new(0)),
            sampling: Arc::new(AtomicBool::new(true)),
        };
        rig.sample_live();
        rig
    }

    /// Sum of the simulators' live channels, sampled every 5 ms; the peak.
    fn sample_live(&self) {
        let sims: Vec<Arc<SimHandle>> = self.nodes.iter().map(|n| n.sim.clone()).collect();
        let (peak, on) = (self.peak_live.clone(), self.sampling.clone());
        tokio::spawn(async move {
            while on.load(Ordering::Relaxed) {
                let total: i64 = sims.iter().map(|s| s.stats().live).sum();
                peak.fetch_max(total, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
    }

    async fn task(&self, n: usize, ring_secs: i64) -> (String, Vec<String>) {
        let id = uuid::Uuid::new_v4().to_string();
        self.store
            .create_task(&Task {
                maximumcall: MAXIMUMCALL,
                // The gateway's 30 CPS is the binding limit.
                call_per_second: 100.0,
                originate_timeout: ring_secs,
                origination_caller_id_number: "02160001234".into(),
                ..Task::new(id.clone(), "cluster", USER, self.group)
            })
            .await
            .expect("task");
        let numbers: Vec<String> = (0..n).map(|i| format!("137{i:08}")).collect();
        let rows: Vec<(String, BTreeMap<String, String>)> =
            numbers.iter().map(|x| (x.clone(), BTreeMap::new())).collect();
        self.store.import_numbers(&id, &rows).await.expect("import");
        (id, numbers)
    }

    fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&node.daemon_log).expect("log");
        node.child = Some(
            Command::new(env!("CARGO_BIN_EXE_voxdial"))
                .args(["serve", "--config"])
                .arg(&node.cfg)
                .env("RUST_LOG", "warn,voxdial::cluster=info")
                .stdout(Stdio::null())
                .stderr(out)
                .spawn()
                .expect("daemon starts"),
        );
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.nodes[i].child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .map(|n| {
                format!(
                    "--- {}\n{}",
                    n.daemon_log.display(),
                    std::fs::read_to_string(&n.daemon_log).unwrap_or_default()
                )
            })
            .collect()
    }

    /// Every originate, from the simulators' own records (the in-memory
    /// twin of their `originate_log` files, which concurrent appends can
    /// interleave at high rates).
    fn originates(&self) -> Vec<OriginateRecord> {
        let mut out: Vec<OriginateRecord> = self.nodes.iter().flat_map(|n| n.sim.originate_log()).collect();
        out.sort_by_key(|r| r.at_ms);
        out
    }

    async fn wait_completed(&self, task: &str, limit: Duration) {
        let t = Instant::now();
        while self.store.load_task(task).await.expect("task").start != 2 {
            if t.elapsed() > limit {
                panic!(
                    "task did not complete within {limit:?}; pending {}\n{}",
                    self.store.pending_numbers(task).await.unwrap_or(-1),
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        self.sampling.store(false, Ordering::Relaxed);
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}

fn assert_no_number_twice(dials: &[OriginateRecord]) -> BTreeMap<String, usize> {
    let mut by: BTreeMap<String, usize> = BTreeMap::new();
    for r in dials {
        *by.entry(r.number.clone()).or_default() += 1;
    }
    let twice: Vec<_> = by.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "dialled twice: {twice:?}");
    by
}

/// Most originates in any window of `ms` milliseconds.
fn max_in_window(dials: &[OriginateRecord], ms: i64) -> usize {
    let mut best = 0;
    let mut lo = 0;
    for hi in 0..dials.len() {
        while dials[hi].at_ms - dials[lo].at_ms >= ms {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

/// Rate over the steady part: from the 50th originate to the 50th before
/// the end (start-up and tail excluded).
fn steady_cps(dials: &[OriginateRecord]) -> f64 {
    let (a, b) = (&dials[50], &dials[dials.len() - 50]);
    let n = dials.len() - 100;
    n as f64 * 1000.0 / (b.at_ms - a.at_ms) as f64
}

async fn setup(redis: &str, lease_secs: u64, orphan_after_secs: i64) -> Option<(PgDb, Rig)> {
    let db = PgDb::create().await?;
    if let Err(e) = reachable(redis).await {
        skip(&format!("Redis not reachable: {e}"));
        return None;
    }
    let rig = Rig::new(
        &db,
        &RigOpts {
            redis_url: redis.into(),
            lease_secs,
            orphan_after_secs,
            local_fraction: 0.33,
            nodes: NODES,
            line_cps: LINE_CPS,
        },
    )
    .await;
    Some((db, rig))
}

/// Attempts of a scenario whose rate figures are measured at the simulator:
/// on a shared VM with CPU steal a node stalled between its Redis grant and
/// its originate (a PostgreSQL commit and a Redis round trip sit in
/// between) delivers late and bunches the simulator's count. Every attempt
/// must hold the hard properties (no number twice, `maximumcall`); one
/// attempt must also show the rates.
const RATE_ATTEMPTS: usize = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_hold_the_gateway_cps_and_maximumcall_and_dial_no_number_twice() {
    let _serial = SERIAL.lock().await;
    let mut misses = Vec::new();
    for attempt in 1..=RATE_ATTEMPTS {
        let Some((_db, mut rig)) = setup(&redis_url(), 10, 720).await else { return };
        // 2-second calls: at 30 CPS about 60 live, so the gateway's CPS binds.
        let (task, numbers) = rig.task(420, 2).await;
        for i in 0..NODES {
            rig.spawn(i);
        }
        rig.wait_completed(&task, Duration::from_secs(60)).await;
        let status = voxdial::cluster::status(&rig.store, &toml_cluster(&rig.nodes[0].cfg)).await.expect("status");
        for i in 0..NODES {
            rig.kill(i);
        }
        let dials = rig.originates();
        let by = assert_no_number_twice(&dials);
        assert_eq!(by.len(), numbers.len(), "every number dialled once");
        for (i, n) in rig.nodes.iter().enumerate() {
            assert!(n.sim.stats().originates > 50, "node {i} took its share: {:?}", n.sim.stats());
        }
        let cps = steady_cps(&dials);
        let burst = max_in_window(&dials, 1000);
        let peak = rig.peak_live.load(Ordering::Relaxed);
        eprintln!(
            "cluster (attempt {attempt}): {} originates, steady {cps:.2} CPS, max {burst} in any 1 s, peak live {peak}",
            dials.len()
        );
        eprintln!("cluster status: {}", serde_json::to_string(&status).unwrap_or_default());
        assert!(peak <= MAXIMUMCALL, "{peak} live channels across the cluster");
        assert_eq!(rig.store.pending_numbers(&task).await.expect("pending"), 0);
        assert_eq!(status.nodes.len(), NODES, "every node registered: {status:?}");
        assert!(status.nodes.iter().all(|n| n.alive), "{status:?}");
        if (cps - LINE_CPS).abs() <= LINE_CPS * 0.03 && burst <= MAX_PER_SECOND {
            return;
        }
        misses.push(format!("attempt {attempt}: steady {cps:.2} CPS, {burst} originates in one second"));
    }
    panic!(
        "global CPS not within 3 % of {LINE_CPS} with at most {MAX_PER_SECOND} in any second in any of {RATE_ATTEMPTS} attempts: {misses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_one_node_the_others_finish_nothing_lost_or_duplicated_and_maximumcall_holds() {
    let _serial = SERIAL.lock().await;
    // 5-second calls: 30 CPS would need 150 live, so `maximumcall` 90 binds.
    // The lease (6 s) outlasts a call, so a dead node's slots return only
    // after its calls are over.
    let Some((_db, mut rig)) = setup(&redis_url(), 6, 8).await else { return };
    let (task, numbers) = rig.task(360, 5).await;
    for i in 0..NODES {
        rig.spawn(i);
    }
    let t = Instant::now();
    while rig.nodes[1].sim.stats().originates < 40 {
        assert!(t.elapsed() < Duration::from_secs(30), "node-1 never dialled\n{}", rig.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rig.kill(1);
    let killed_at = rig.nodes[1].sim.stats().originates;
    rig.wait_completed(&task, Duration::from_secs(90)).await;
    for i in 0..NODES {
        rig.kill(i);
    }
    let dials = rig.originates();
    let by = assert_no_number_twice(&dials);
    let peak = rig.peak_live.load(Ordering::Relaxed);
    eprintln!(
        "kill -9: node-1 dialled {killed_at} before the kill; {} originates in all; peak live {peak}",
        dials.len()
    );
    assert!(peak <= MAXIMUMCALL, "{peak} live channels across the cluster");
    assert!(peak >= MAXIMUMCALL - 10, "maximumcall was binding (peak {peak})");
    let rows = sqlx::query(rig.store.sql("SELECT number, status FROM autodialer_number WHERE task_id = ?"))
        .bind(&task)
        .fetch_all(rig.store.pool())
        .await
        .expect("numbers");
    assert_eq!(rows.len(), numbers.len());
    let mut undialled = 0;
    for r in &rows {
        let n: String = r.try_get("number").expect("n");
        let status: i64 = r.try_get("status").expect("s");
        assert!(status > 0, "{n} has no final status (lost)");
        if !by.contains_key(&n) {
            // Only an attempt in the dead node's ledger whose originate may
            // not have left ends undialled, as call loss.
            assert_eq!(status, 12, "{n} never dialled but has status {status}");
            undialled += 1;
        }
    }
    assert!(undialled <= 3, "{undialled} numbers settled without a dial");
    let hist = rig.store.count("SELECT COUNT(*) FROM auto_call_histories WHERE task_id = ?", &task).await.expect("h");
    assert_eq!(hist, numbers.len() as i64, "exactly one history row per number");
    let open = rig
        .store
        .count("SELECT COUNT(*) FROM dial_ledger WHERE task_id = ? AND state <> 'finalized'", &task)
        .await
        .expect("l");
    assert_eq!(open, 0, "every ledger attempt settled");
    let taken = rig
        .store
        .count(
            "SELECT COUNT(*) FROM auto_call_histories WHERE task_id = ? AND call_status = 'reconciled after restart'",
            &task,
        )
        .await
        .expect("taken over");
    eprintln!("attempts of node-1 finalized by the others as call loss: {taken}");
    assert!(taken >= 1, "the dead node's live attempts were settled by the rule, not re-dialled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_for_20_s_no_global_limit_is_exceeded_and_nodes_rejoin() {
    let _serial = SERIAL.lock().await;
    if Command::new("redis-server").arg("--version").output().is_err() {
        skip("redis-server is not on the PATH (needed to stop and restart a private Redis)");
        return;
    }
    let Some(mut redis) = OwnRedis::start() else {
        skip("could not start a private redis-server");
        return;
    };
    let Some((_db, mut rig)) = setup(&redis.url(), 6, 720).await else { return };
    // 3-second calls: 30 CPS means 90 live, so both caps are at their edge.
    let (task, _numbers) = rig.task(1100, 3).await;
    for i in 0..NODES {
        rig.spawn(i);
    }
    let t = Instant::now();
    while rig.nodes.iter().map(|n| n.sim.stats().originates).sum::<u64>() < 100 {
        assert!(t.elapsed() < Duration::from_secs(30), "campaign did not start\n{}", rig.logs());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    redis.stop();
    let down_at = now_ms();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let up_at = now_ms();
    assert!(redis.resume(), "private Redis restarts");
    tokio::time::sleep(Duration::from_secs(8)).await;
    for i in 0..NODES {
        rig.kill(i);
    }
    let _ = task;
    let dials = rig.originates();
    assert_no_number_twice(&dials);
    let peak = rig.peak_live.load(Ordering::Relaxed);
    let burst = max_in_window(&dials, 1000);
    let burst5 = max_in_window(&dials, 5000);
    let during = dials.iter().filter(|r| r.at_ms >= down_at && r.at_ms < up_at).count();
    let after = dials.iter().filter(|r| r.at_ms >= up_at + 3000).count();
    eprintln!("redis outage: {} originates, {during} during the 20 s outage, {after} in the last 5 s; peak live {peak}; max {burst}/1 s, {burst5}/5 s", dials.len());
    assert!(peak <= MAXIMUMCALL, "{peak} live channels across the cluster");
    assert!(burst <= MAX_PER_SECOND, "{burst} originates in one second");
    assert!(burst5 as f64 <= LINE_CPS * 5.0 * 1.03 + 2.0, "{burst5} originates in 5 s");
    assert!(during as f64 >= 20.0 * 10.0, "nodes kept dialling during the outage ({during})");
    assert!(after > 0, "dialling goes on after Redis returns");
    let logs = rig.logs();
    assert!(logs.contains("REDIS UNAVAILABLE"), "the outage is logged loudly\n{logs}");
    assert!(logs.contains("REDIS BACK"), "nodes rejoin\n{logs}");
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn toml_cluster(cfg: &Path) -> voxdial::cluster::ClusterConfig {
    voxdial::config::Config::load(cfg).expect("config").cluster
}

/// Benchmark (ignored; `cargo test --test cluster -- --ignored --nocapture`):
/// aggregate CPS of 1 node versus 3 with a gateway cap far above what the
/// machine can do, and the coordination cost per originate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_aggregate_cps_one_node_versus_three() {
    let _serial = SERIAL.lock().await;
    for nodes in [1usize, 3] {
        let Some(db) = PgDb::create().await else { return };
        if let Err(e) = reachable(&redis_url()).await {
            skip(&format!("Redis not reachable: {e}"));
            return;
        }
        let o = RigOpts {
            redis_url: redis_url(),
            lease_secs: 10,
            orphan_after_secs: 720,
            local_fraction: 0.33,
            nodes,
            line_cps: 2000.0,
        };
        let mut rig = Rig::new(&db, &o).await;
        let id = uuid::Uuid::new_v4().to_string();
        let (task, numbers) = rig.task(1500, 1).await;
        let _ = id;
        sqlx::query(
            rig.store.sql("UPDATE autodialer_task SET call_per_second = 2000, maximumcall = 2000 WHERE uuid = ?"),
        )
        .bind(&task)
        .execute(rig.store.pool())
        .await
        .expect("uncap");
        for i in 0..nodes {
            rig.spawn(i);
        }
        rig.wait_completed(&task, Duration::from_secs(120)).await;
        let status = voxdial::cluster::status(&rig.store, &toml_cluster(&rig.nodes[0].cfg)).await.expect("status");
        for i in 0..nodes {
            rig.kill(i);
        }
        let dials = rig.originates();
        assert_no_number_twice(&dials);
        assert_eq!(dials.len(), numbers.len());
        let cps = steady_cps(&dials);
        let (rt, us) = status
            .nodes
            .iter()
            .filter_map(|n| n.info.as_ref())
            .fold((0u64, 0u64), |(a, b), i| (a + i.coordination.round_trips, b + i.coordination.round_trip_us));
        eprintln!(
            "BENCH nodes={nodes} originates={} steady_cps={cps:.1} redis_round_trips_per_originate={:.2} mean_round_trip_us={:.0} redis_us_per_originate={:.0}",
            dials.len(),
            rt as f64 / dials.len() as f64,
            us as f64 / rt.max(1) as f64,
            us as f64 / dials.len() as f64
        );
    }
}
