//! Simulator capacity: originate answered, silent calls at a fixed rate until
//! a number of channels are live, through the real ESL client; report the
//! simulator process's CPU and memory and the events per second the client
//! received.
//!
//! `cargo build --release && ./target/release/sim-bench --cps 200 --channels 5000`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use voxdial_esl::{ClientConfig, EslClient};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value_t = 200.0)]
    cps: f64,
    #[arg(long, default_value_t = 5000)]
    channels: u64,
    #[arg(long, default_value = "127.0.0.1:18022")]
    addr: String,
}

#[tokio::main]
async fn main() -> Result<()> {
    let a = Args::parse();
    let voxdial = std::env::current_exe()?.with_file_name("voxdial");
    if !voxdial.exists() {
        bail!("build the voxdial binary first: cargo build --release");
    }
    // Every callee answers and stays silent (the simulator hangs up after 120 s).
    let mut sim = std::process::Command::new(&voxdial)
        .args(["sim", "--listen", &a.addr, "--mix", "answer-silent"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .context("starting the simulator")?;
    let pid = sim.id().to_string();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut cfg = ClientConfig::new(a.addr.clone(), "ClueCon");
    cfg.events = vec!["ALL".into()];
    let esl = EslClient::connect(cfg).await.context("connecting to the simulator")?;
    let events = Arc::new(AtomicU64::new(0));
    let mut rx = esl.other_events();
    let ev2 = events.clone();
    tokio::spawn(async move {
        loop {
            match rx.recv().await {
                Ok(_) => {
                    ev2.fetch_add(1, Ordering::Relaxed);
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    ev2.fetch_add(n, Ordering::Relaxed);
                }
                Err(_) => break,
            }
        }
    });
    let cpu0 = voxdial::benchutil::cpu_secs(&pid);
    let start = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / a.cps);
    let mut next = tokio::time::Instant::now();
    let mut sent = 0u64;
    let mut jobs = tokio::task::JoinSet::new();
    while sent < a.channels {
        tokio::time::sleep_until(next).await;
        next += interval;
        let uuid = uuid::Uuid::new_v4();
        let cmd = format!("originate {{origination_uuid={uuid},originate_timeout=30}}sofia/gateway/voxdial-sim/1{:010} robot XML default", 5_000_000_000u64 + sent);
        let c = esl.clone();
        jobs.spawn(async move { c.bgapi(&cmd).await.map(|_| ()) });
        sent += 1;
    }
    while jobs.join_next().await.is_some() {}
    let dial_secs = start.elapsed().as_secs_f64();
    // Wait until the last calls are answered and live.
    let mut live = 0u64;
    for _ in 0..100 {
        let out = esl.api("show channels count").await.unwrap_or_default();
        live = out.split_whitespace().next().and_then(|n| n.parse().ok()).unwrap_or(0);
        if live >= a.channels {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = voxdial::benchutil::cpu_secs(&pid) - cpu0;
    let hwm = voxdial::benchutil::peak_rss_mb(&pid);
    let n_events = events.load(Ordering::Relaxed);
    let _ = esl.api("hupall").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let _ = sim.kill();
    let _ = sim.wait();
    println!("originates sent             {sent} in {dial_secs:.1} s ({:.1} cps)", sent as f64 / dial_secs);
    println!("live channels (simulator)   {live}");
    println!("simulator CPU               {cpu:.2} s over {elapsed:.1} s ({:.0} % of one core)", cpu / elapsed * 100.0);
    println!("simulator peak RSS          {hwm:.1} MB ({:.1} KB per live channel)", hwm * 1024.0 / live.max(1) as f64);
    println!("events received by client   {n_events} ({:.0} events/s)", n_events as f64 / elapsed);
    Ok(())
}
