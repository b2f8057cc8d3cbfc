//! Dialer benchmark: a large task at a high CPS against the simulator running
//! as a separate process, measuring achieved CPS over a steady window,
//! maximumcall breaches (from the simulator's own peak), daemon CPU per
//! completed call and resident memory.
//!
//! `cargo run --release --bin dialer-bench -- --numbers 100000 --cps 200 --seconds 75`

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use tokio_util::sync::CancellationToken;
use voxdial::dialer::compliance::ComplianceConfig;
use voxdial::dialer::{DialerConfig, Progress, TaskRunner};
use voxdial::dialogue::{Script, SAMPLE_SCRIPT};
use voxdial::finalize::{Finalizer, RecyclePolicy};
use voxdial::store::{Store, Task};
use voxdial_esl::{ClientConfig, EslClient};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 100_000)]
    numbers: usize,
    #[arg(long, default_value_t = 200.0)]
    cps: f64,
    #[arg(long, default_value_t = 4000)]
    maximumcall: i64,
    /// How long to dial; the CPS window is the last 60 s of it.
    #[arg(long, default_value_t = 75)]
    seconds: u64,
    #[arg(long, default_value_t = 10.0)]
    time_scale: f64,
    #[arg(long, default_value = "127.0.0.1:18021")]
    sim_addr: String,
    /// Query parameters for the scratch SQLite URL, e.g. `synchronous=normal`
    /// to measure what the default `synchronous = FULL` costs.
    #[arg(long)]
    sqlite_params: Option<String>,
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = Args::parse();
    let exe = std::env::current_exe()?;
    let voxdial = exe.with_file_name("voxdial");
    if !voxdial.exists() {
        bail!("build the voxdial binary first: cargo build --release (looked for {})", voxdial.display());
    }
    let mut sim = Command::new(&voxdial)
        .args(["sim", "--listen", &a.sim_addr, "--time-scale", &a.time_scale.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting the simulator")?;
    tokio::time::sleep(Duration::from_millis(500)).await;

    let dir = std::env::temp_dir().join(format!("voxdial-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let params = a.sqlite_params.as_deref().map(|p| format!("?{p}")).unwrap_or_default();
    let store = Store::open(&format!("sqlite://{}/bench.db{params}", dir.display())).await?;
    let user = "bench-user";
    store.ensure_user(user, "bench").await?;
    let group = store.save_script(user, &Script::from_json(SAMPLE_SCRIPT)?).await?;
    let task = uuid::Uuid::new_v4().to_string();
    store
        .create_task(&Task {
            maximumcall: a.maximumcall,
            call_per_second: a.cps,
            originate_timeout: 6,
            origination_caller_id_number: "02160001234".into(),
            ..Task::new(task.clone(), "bench", user, group)
        })
        .await?;
    let t0 = Instant::now();
    let rows: Vec<(String, BTreeMap<String, String>)> =
        (0..a.numbers).map(|i| (format!("1{:010}", 3_000_000_000u64 + i as u64), BTreeMap::new())).collect();
    store.import_numbers(&task, &rows).await?;
    let import_s = t0.elapsed().as_secs_f64();

    let esl = EslClient::connect(ClientConfig::new(a.sim_addr.clone(), "ClueCon")).await?;
    let probe = EslClient::connect(ClientConfig {
        events: vec!["HEARTBEAT".into()],
        ..ClientConfig::new(a.sim_addr.clone(), "ClueCon")
    })
    .await?;
    let cancel = CancellationToken::new();
    let finalizer = Finalizer::start(store.clone(), Default::default(), RecyclePolicy::default(), cancel.clone());
    let progress = Arc::new(Progress::default());
    let runner = TaskRunner {
        store: store.clone(),
        esl: esl.clone(),
        finalizer,
        cfg: DialerConfig { claim_batch: 500, ..DialerConfig::default() }.into(),
        compliance: ComplianceConfig { limits: vec![], ..ComplianceConfig::default() }.into(),
        dial_gate: Arc::new(Default::default()),
        default_gateway: "voxdial-sim".into(),
        lines: Default::default(),
        progress: progress.clone(),
        cancel: cancel.clone(),
        cluster: None,
        module_calls: Default::default(),
    };
    let cpu0 = voxdial::benchutil::cpu_secs("self");
    let start = Instant::now();
    let run = tokio::spawn(async move { runner.run(&task).await });
    let mut samples: Vec<(f64, u64)> = Vec::new();
    while start.elapsed() < Duration::from_secs(a.seconds) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        samples.push((start.elapsed().as_secs_f64(), progress.originated.load(Ordering::Relaxed)));
    }
    cancel.cancel();
    match tokio::time::timeout(Duration::from_secs(120), run).await {
        Ok(Ok(Ok(end))) => println!("runner ended: {end:?}"),
        Ok(Ok(Err(e))) => println!("runner failed: {e}"),
        other => println!("runner did not stop cleanly: {other:?}"),
    }
    let cpu = voxdial::benchutil::cpu_secs("self") - cpu0;
    let status = probe.api("status").await.unwrap_or_default();
    let peak: i64 = status
        .lines()
        .find(|l| l.contains("peak"))
        .and_then(|l| l.split("peak").nth(1))
        .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).find(|p| !p.is_empty()))
        .and_then(|p| p.parse().ok())
        .unwrap_or(-1);
    let _ = sim.kill();
    let _ = sim.wait();
    let _ = std::fs::remove_dir_all(&dir);

    let window = 60.0_f64.min(a.seconds as f64 - 5.0);
    let end = samples.last().copied().unwrap_or((0.0, 0));
    let begin = samples.iter().rev().find(|(t, _)| end.0 - t >= window).copied().unwrap_or((0.0, 0));
    let cps = (end.1 - begin.1) as f64 / (end.0 - begin.0).max(0.001);
    let finished = progress.finished.load(Ordering::Relaxed);
    println!("numbers imported           {} in {:.1} s", a.numbers, import_s);
    println!("target CPS                 {}", a.cps);
    println!("achieved CPS ({:.0} s window) {:.2} ({:+.2} %)", end.0 - begin.0, cps, (cps - a.cps) / a.cps * 100.0);
    println!("originates / finished      {} / {}", end.1, finished);
    println!(
        "simulator peak live        {} (maximumcall {}, breaches {})",
        peak,
        a.maximumcall,
        i64::from(peak > a.maximumcall)
    );
    println!(
        "daemon CPU                 {:.2} s = {:.3} ms per finished call",
        cpu,
        cpu * 1000.0 / finished.max(1) as f64
    );
    println!("daemon peak RSS            {:.1} MB", voxdial::benchutil::peak_rss_mb("self"));
    Ok(())
}
