//! smartivr flow server for the benchmark and manual tests: opens an SQLite
//! store in a data directory, saves the sample script, creates a task (uuid
//! `--task`, `bench` by default, which is the `flowid` the load harness
//! sends), optionally imports numbers, and serves `POST /smartivr`.
//!
//! By default it serves exactly as `voxdial serve` does: the daemon's HTTP
//! listener (`api::rest::spawn`: REST API + `POST /smartivr`, smartivr
//! connections on their own `current_thread` runtime with the inline journal
//! writer) under a multi-thread main runtime, with the same allocator.
//! `--standalone` serves only the endpoint, with the runtime and journal
//! writer chosen by flags (for comparisons).
//!
//!     smartivr-server --addr 127.0.0.1:9999 --data /tmp/sivr --numbers 20000

use std::collections::BTreeMap;
use std::path::PathBuf;

use clap::Parser;
use tokio_util::sync::CancellationToken;
use voxdial::api::{self, Durability, SmartivrConfig, SmartivrState, WriterMode};
use voxdial::dialer::call::ModuleCalls;
use voxdial::dialogue::{Script, SAMPLE_SCRIPT};
use voxdial::store::{Store, StoreError, Task};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:9999")]
    addr: String,
    /// Data directory (database and journal); a temporary one when absent.
    #[arg(long)]
    data: Option<PathBuf>,
    #[arg(long, default_value = "bench")]
    task: String,
    /// Import numbers `186%08d` for 0..N (the harness's numbers) with a name.
    #[arg(long, default_value_t = 0)]
    numbers: usize,
    /// Serve only `POST /smartivr` with `--runtime` / `--journal` /
    /// `--durability` instead of the daemon's listener.
    #[arg(long)]
    standalone: bool,
    /// `fsync` (before every reply, group commit) or `write` (`--standalone`).
    #[arg(long, default_value = "fsync")]
    durability: String,
    /// `current`: one thread runs HTTP, sessions and the writers' tasks (no
    /// hand-offs between tokio workers); `multi`: a work-stealing pool.
    #[arg(long, default_value = "current")]
    runtime: String,
    /// Journal writer: `thread`, or `inline` on the runtime (the default
    /// with `--runtime current`).
    #[arg(long)]
    journal: Option<String>,
    /// Worker threads of the `multi` runtime (0 = one per core).
    #[arg(long, default_value_t = 0)]
    workers: usize,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let mut rt = if args.runtime == "multi" || !args.standalone {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if args.workers > 0 {
            b.worker_threads(args.workers);
        }
        b
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    rt.enable_all().build()?.block_on(run(args))
}

async fn run(args: Args) -> anyhow::Result<()> {
    let tmp;
    let dir = match &args.data {
        Some(d) => d.clone(),
        None => {
            tmp = tempfile_dir()?;
            tmp.clone()
        }
    };
    std::fs::create_dir_all(&dir)?;
    let store = Store::open(&format!("sqlite://{}", dir.join("voxdial.db").display())).await?;
    let user = "4d99d91c-f5d9-49da-88da-758977cc58a9";
    store.ensure_user(user, "smartivr bench").await?;
    match store.load_task(&args.task).await {
        Ok(_) => {}
        Err(StoreError::TaskNotFound(_)) => {
            let script = Script::from_json(SAMPLE_SCRIPT)?;
            let group_id = store.save_script(user, &script).await?;
            store
                .create_task(&Task {
                    maximumcall: 500,
                    call_per_second: 50.0,
                    originate_timeout: 30,
                    origination_caller_id_number: "02160001234".into(),
                    ..Task::new(args.task.clone(), "smartivr bench", user, group_id)
                })
                .await?;
            if args.numbers > 0 {
                let rows: Vec<(String, BTreeMap<String, String>)> = (0..args.numbers)
                    .map(|n| (format!("186{n:08}"), BTreeMap::from([("name".to_string(), format!("客户{n}"))])))
                    .collect();
                let r = store.import_numbers(&args.task, &rows).await?;
                eprintln!("imported {} numbers", r.inserted);
            }
        }
        Err(e) => return Err(e.into()),
    }
    let cancel = CancellationToken::new();
    let c = cancel.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        c.cancel();
    });
    if !args.standalone {
        // The daemon's listener, as `voxdial serve` builds it.
        let mut cfg = voxdial::config::Config::default();
        cfg.database.url = format!("sqlite://{}", dir.join("voxdial.db").display());
        cfg.finalizer.spool_dir = dir.join("spool").display().to_string();
        eprintln!(
            "smartivr-server pid {} on http://{}/smartivr (daemon listener, data {})",
            std::process::id(),
            args.addr,
            dir.display()
        );
        let api = api::rest::spawn(&cfg, store, Some(&args.addr), ModuleCalls::default(), cancel).await?;
        api.await??;
        return Ok(());
    }
    let durability = match args.durability.as_str() {
        "write" => Durability::Write,
        _ => Durability::Fsync,
    };
    let inline = match args.journal.as_deref() {
        Some(j) => j == "inline",
        None => args.runtime != "multi",
    };
    let journal_writer = if inline { WriterMode::Inline } else { WriterMode::Thread };
    let cfg =
        SmartivrConfig { journal_dir: dir.join("journal"), durability, journal_writer, ..SmartivrConfig::default() };
    let state = SmartivrState::start(store, cfg, cancel.clone()).await?;
    let listener = tokio::net::TcpListener::bind(&args.addr).await?;
    eprintln!(
        "smartivr-server pid {} on http://{}/smartivr (data {})",
        std::process::id(),
        listener.local_addr()?,
        dir.display()
    );
    api::serve_http(listener, state, cancel).await?;
    // Let the finalizer drain what is queued.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    Ok(())
}

fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("smartivr-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
