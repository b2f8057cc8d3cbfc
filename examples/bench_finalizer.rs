//! Finalizer and outbox throughput per backend (figures in docs/bench-finalizer.md).
//!
//! `cargo run --release --example bench_finalizer -- [calls] [submitters] [server URL]`
//!
//! Without a URL: SQLite in a temporary file. With a `postgres://…` or
//! `mysql://…` server URL the benchmark creates a database of its own on
//! that server (`voxdial_bench_<pid>`), runs there and drops it at the end.
//!
//! 1. Finalized calls per second through the finalizer actor (half answered
//!    with a two-row transcript and tags, half busy), without and with
//!    callbacks (outbox row in the same transaction), and into the spool
//!    while the database is locked (fsync per call).
//! 2. Outbox delivery rate: the events of (1) POSTed to a local receiver.

// Shared with tests/finalizer.rs; the benchmark uses part of them.
#[allow(dead_code)]
#[path = "../tests/support/fixture.rs"]
mod fixture;
#[allow(dead_code)]
#[path = "../tests/support/receiver.rs"]
mod receiver;

use std::time::{Duration, Instant};

use sqlx::{Connection, Executor};
use tokio_util::sync::CancellationToken;
use voxdial::finalize::webhook::{Deliverer, WebhookConfig};
use voxdial::finalize::{Finalizer, FinalizerConfig, FinalizerOptions};

use fixture::{Fixture, Num};

async fn run(fin: &Finalizer, fx: &Fixture, nums: &[Num], submitters: usize) -> (f64, u64) {
    let calls: Vec<_> = nums.iter().enumerate().map(|(i, n)| fx.call(n, 1, i % 2 == 0)).collect();
    let start = Instant::now();
    let mut set = tokio::task::JoinSet::new();
    let per = calls.len().div_ceil(submitters);
    for chunk in calls.chunks(per.max(1)) {
        let (fin, chunk) = (fin.clone(), chunk.to_vec());
        set.spawn(async move {
            let mut spooled = 0;
            for c in chunk {
                match fin.finalize(c).await {
                    Ok(w) => spooled += u64::from(w.spooled),
                    Err(e) => eprintln!("finalize failed: {e}"),
                }
            }
            spooled
        });
    }
    let mut spooled = 0;
    while let Some(r) = set.join_next().await {
        spooled += r.unwrap_or(0);
    }
    (calls.len() as f64 / start.elapsed().as_secs_f64(), spooled)
}

fn opts(fx: &Fixture, name: &str) -> FinalizerOptions {
    FinalizerOptions {
        config: FinalizerConfig {
            spool_dir: fx.dir.path().join(name).display().to_string(),
            write_timeout_ms: 500,
            ..FinalizerConfig::default()
        },
        ..FinalizerOptions::default()
    }
}

/// A fresh database on the server of `url`: (its URL, the server URL and name to drop it).
async fn fresh_database(url: &str) -> (String, String, String) {
    let name = format!("voxdial_bench_{}", std::process::id());
    let (base, _) = url.rsplit_once('/').unwrap_or_else(|| panic!("no database in {url}"));
    let mut c = sqlx::AnyConnection::connect(url).await.unwrap_or_else(|e| panic!("{url}: {e}"));
    c.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))))
        .await
        .unwrap_or_else(|e| panic!("create {name}: {e}"));
    c.close().await.unwrap_or_else(|e| panic!("{e}"));
    (format!("{base}/{name}"), url.to_string(), name)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    // The store installs the drivers on open; the benchmark connects first.
    sqlx::any::install_default_drivers();
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<usize> = raw.iter().filter_map(|a| a.parse().ok()).collect();
    let n = args.first().copied().unwrap_or(5_000);
    let submitters = args.get(1).copied().unwrap_or(64);
    let server = raw.iter().find(|a| a.contains("://")).cloned();
    let fresh = match &server {
        Some(u) => Some(fresh_database(u).await),
        None => None,
    };
    let fx = Fixture::at(fresh.as_ref().map(|f| f.0.clone())).await;
    let sqlite = fx.url.starts_with("sqlite:");
    let cancel = CancellationToken::new();
    let what = if sqlite { "SQLite WAL synchronous=NORMAL" } else { "server database" };
    println!("{n} calls, {submitters} concurrent call actors, {what} at {}", fx.url);

    // 1a. No callbacks.
    let plain = fx.task(n).await;
    let fin =
        Finalizer::start_with(fx.store.clone(), opts(&fx, "spool-a"), cancel.clone()).unwrap_or_else(|e| panic!("{e}"));
    let (rate, _) = run(&fin, &fx, &plain, submitters).await;
    println!("finalize, no callbacks:          {rate:>8.0} calls/s");

    // 1b. Callbacks on (type 3: an outbox row for every call).
    let rx = receiver::Receiver::start(0).await;
    let hooked = fx.task(n).await;
    let task = hooked[0].task_id.clone();
    fx.store.set_task_notify(&task, Some(&rx.url("/notify")), 3, None).await.unwrap_or_else(|e| panic!("{e}"));
    let (rate, _) = run(&fin, &fx, &hooked, submitters).await;
    println!("finalize + outbox row (type 3):  {rate:>8.0} calls/s");

    // 1c. Database locked: every call goes to the spool (fsync each). The
    // spool is the local disk whatever the backend: measured on SQLite only.
    if sqlite {
        spool(&fx, n, submitters, &cancel).await;
    }

    // 2. Deliver the outbox of 1b.
    let cfg = WebhookConfig { secret: "bench".into(), poll_ms: 10, ..WebhookConfig::default() };
    let (batch, conc) = (cfg.batch, cfg.concurrency);
    let start = Instant::now();
    let d = Deliverer::start(fx.store.clone(), cfg, cancel.clone()).unwrap_or_else(|e| panic!("{e}"));
    let hooked_n = hooked.len() as u64;
    while d.stats().delivered.load(std::sync::atomic::Ordering::Relaxed) < hooked_n {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let el = start.elapsed().as_secs_f64();
    println!(
        "outbox delivery (batch {batch}, {conc} in flight): {:>8.0} events/s ({} requests, {hooked_n} events)",
        hooked_n as f64 / el,
        rx.requests()
    );
    cancel.cancel();
    drop(fin);
    drop(d);
    if let Some((_, server, name)) = fresh {
        fx.store.pool().close().await;
        let mut c = sqlx::AnyConnection::connect(&server).await.unwrap_or_else(|e| panic!("{e}"));
        if let Err(e) = c.execute(sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE {name}")))).await {
            eprintln!("bench database {name} not dropped: {e}");
        }
    }
}

async fn spool(fx: &Fixture, n: usize, submitters: usize, cancel: &CancellationToken) {
    let spooled_task = fx.task(n).await;
    let mut lock = sqlx::AnyConnection::connect(&fx.url).await.unwrap_or_else(|e| panic!("{e}"));
    sqlx::query("BEGIN EXCLUSIVE").execute(&mut lock).await.unwrap_or_else(|e| panic!("{e}"));
    let fin_c =
        Finalizer::start_with(fx.store.clone(), opts(fx, "spool-c"), cancel.clone()).unwrap_or_else(|e| panic!("{e}"));
    let (rate, spooled) = run(&fin_c, fx, &spooled_task, submitters).await;
    println!("finalize into the spool:         {rate:>8.0} calls/s ({spooled} spooled)");
    sqlx::query("COMMIT").execute(&mut lock).await.unwrap_or_else(|e| panic!("{e}"));
    let drain = Instant::now();
    while fin_c.spool_len() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("spool drain after recovery:      {:>8.0} calls/s", n as f64 / drain.elapsed().as_secs_f64());
}
