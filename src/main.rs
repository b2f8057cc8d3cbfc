//! The `voxdial` command line.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use voxdial::config::Config;
use voxdial::demo::{self, DemoOptions};
use voxdial::dialer::{Progress, TaskRunner};
use voxdial::dialogue::Script;
use voxdial::finalize::recordings::prune_recordings;
use voxdial::finalize::webhook::Deliverer;
use voxdial::finalize::{Finalizer, FinalizerOptions};
use voxdial::sim::{self, SimConfig};
use voxdial::store::Store;
use voxdial_esl::{ClientConfig, EslClient};

#[derive(Parser)]
#[command(name = "voxdial", version, about = "AI outbound-call engine beside FreeSWITCH")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a demo campaign against the built-in FreeSWITCH simulator.
    Demo {
        #[arg(long, default_value_t = 200)]
        numbers: usize,
        #[arg(long, default_value_t = 20.0)]
        cps: f64,
        #[arg(long, default_value_t = 60)]
        maximumcall: i64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value = "voxdial-data")]
        data_dir: PathBuf,
        /// Also write the summary as one JSON object.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Simulated network and callee delays are divided by this.
        #[arg(long, default_value_t = 4.0)]
        time_scale: f64,
        /// No progress bar.
        #[arg(long)]
        quiet: bool,
    },
    /// Run the daemon against the configured FreeSWITCH and database.
    Serve {
        #[arg(long)]
        config: PathBuf,
    },
    /// Run the FreeSWITCH simulator on its own.
    Sim {
        #[arg(long, default_value = "127.0.0.1:8021")]
        listen: String,
        #[arg(long = "gateway")]
        gateways: Vec<String>,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value = "ClueCon")]
        password: String,
        #[arg(long, default_value_t = 1.0)]
        time_scale: f64,
        /// Callee fates: `default` or one fate for all (`answer-silent`, `busy`, …).
        #[arg(long, default_value = "default")]
        mix: String,
        /// Deliver callee speech as this ASR module CUSTOM subclass instead of DETECTED_SPEECH.
        #[arg(long)]
        asr_custom: Option<String>,
        /// Append every originate received to this file (JSON lines).
        #[arg(long)]
        originate_log: Option<PathBuf>,
    },
    /// Create or update the database schema.
    Migrate {
        #[arg(long)]
        database_url: String,
    },
    /// Scripts (话术组).
    Script {
        #[command(subcommand)]
        cmd: ScriptCmd,
    },
    /// Call recordings.
    Recordings {
        #[command(subcommand)]
        cmd: RecordingsCmd,
    },
    /// Cluster of voxdial nodes sharing a database and a Redis.
    Cluster {
        #[command(subcommand)]
        cmd: ClusterCmd,
    },
    /// Callback (webhook) outbox and delivery log.
    Webhooks {
        #[command(subcommand)]
        cmd: WebhooksCmd,
    },
}

#[derive(Subcommand)]
enum RecordingsCmd {
    /// Delete day directories older than the retention period.
    Prune {
        /// The recordings root (`[dialer] recordings_root`).
        #[arg(long)]
        root: PathBuf,
        #[arg(long)]
        older_than_days: u32,
        /// Report what would be deleted without deleting.
        #[arg(long)]
        dry_run: bool,
    },
}

#[derive(Subcommand)]
enum ClusterCmd {
    /// Nodes, their live calls and the achieved CPS per gateway (JSON).
    Status {
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
enum WebhooksCmd {
    /// Every delivery attempt of a task's callbacks, oldest first (JSON lines).
    Deliveries {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        task: String,
    },
    /// Give a task's dead callbacks another round of attempts.
    RetryDead {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        task: String,
    },
}

#[derive(Subcommand)]
enum ScriptCmd {
    /// Validate a script file; exits non-zero when it is invalid.
    Check { file: PathBuf },
}

fn init_logs(format: &str, level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Demo { numbers, cps, maximumcall, seed, data_dir, json, time_scale, quiet } => {
            init_logs("human", "warn");
            let opts = DemoOptions { numbers, cps, maximumcall, seed, data_dir, time_scale, progress: !quiet };
            let summary = demo::run(&opts).await?;
            print!("{}", demo::render(&summary));
            if let Some(path) = json {
                let text = serde_json::to_string_pretty(&summary)?;
                std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
                println!("  summary JSON: {}", path.display());
            }
            Ok(())
        }
        Cmd::Serve { config } => {
            let cfg = Config::load(&config)?;
            init_logs(&cfg.log.format, &cfg.log.level);
            serve(cfg).await
        }
        Cmd::Sim { listen, gateways, seed, password, time_scale, mix, asr_custom, originate_log } => {
            init_logs("human", "info");
            let Some(mix) = voxdial::sim::fate::FateMix::preset(&mix) else {
                bail!("unknown --mix {mix:?}: use default, answer-<persona>, busy, no-answer, … (see `voxdial sim --help`)");
            };
            let asr = asr_custom.map_or(voxdial::sim::SimAsr::DetectedSpeech, voxdial::sim::SimAsr::Custom);
            let mut cfg = SimConfig { seed, password, time_scale, mix, asr, originate_log, ..SimConfig::default() };
            if !gateways.is_empty() {
                cfg.gateways = gateways;
            }
            let handle = sim::start(cfg, &listen).await?;
            println!("voxdial simulator listening on {} (password as given; gateways ready)", handle.addr());
            tokio::signal::ctrl_c().await?;
            let stats = handle.stats();
            handle.shutdown().await;
            println!("originates {} · peak live channels {}", stats.originates, stats.max_concurrent);
            Ok(())
        }
        Cmd::Migrate { database_url } => {
            init_logs("human", "info");
            Store::open(&database_url).await?;
            println!("schema up to date: {database_url}");
            Ok(())
        }
        Cmd::Recordings { cmd: RecordingsCmd::Prune { root, older_than_days, dry_run } } => {
            let report = prune_recordings(&root, older_than_days, dry_run)
                .with_context(|| format!("pruning {}", root.display()))?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if !report.errors.is_empty() {
                bail!("{} path(s) could not be removed", report.errors.len());
            }
            Ok(())
        }
        Cmd::Webhooks { cmd } => {
            init_logs("human", "warn");
            match cmd {
                WebhooksCmd::Deliveries { config, task } => {
                    let store = Store::open(&Config::load(&config)?.database.url).await?;
                    for d in store.deliveries(&task).await? {
                        println!("{}", serde_json::to_string(&d)?);
                    }
                }
                WebhooksCmd::RetryDead { config, task } => {
                    let store = Store::open(&Config::load(&config)?.database.url).await?;
                    println!("{} dead event(s) requeued", store.retry_dead_events(&task).await?);
                }
            }
            Ok(())
        }
        Cmd::Cluster { cmd: ClusterCmd::Status { config } } => {
            init_logs("human", "warn");
            let cfg = Config::load(&config)?;
            let store = Store::open(&cfg.database.url).await?;
            println!("{}", serde_json::to_string_pretty(&voxdial::cluster::status(&store, &cfg.cluster).await?)?);
            Ok(())
        }
        Cmd::Script { cmd: ScriptCmd::Check { file } } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let script = Script::from_json(&text).with_context(|| format!("{} is not a valid script", file.display()))?;
            let errs = script.validate();
            if errs.is_empty() {
                println!("{}: ok ({} utterances)", file.display(), script.utterances.len());
                Ok(())
            } else {
                for e in &errs {
                    eprintln!("{}: {e}", file.display());
                }
                bail!("{} problem(s) in {}", errs.len(), file.display())
            }
        }
    }
}

/// The daemon: runs every task whose `start` is 1 until SIGTERM / Ctrl-C.
async fn serve(cfg: Config) -> Result<()> {
    let store = Store::open(&cfg.database.url).await?;
    let cancel = CancellationToken::new();
    // Every node delivers callbacks; the outbox lease keeps nodes apart.
    let deliverer = Deliverer::start(store.clone(), cfg.webhook.clone(), cancel.clone()).context("starting webhook delivery")?;
    let Some(fs) = cfg.freeswitch.clone() else {
        tracing::info!("no [freeswitch] section: nothing to dial (API-only node)");
        tokio::signal::ctrl_c().await?;
        cancel.cancel();
        return Ok(());
    };
    let esl = EslClient::connect(ClientConfig::new(format!("{}:{}", fs.host, fs.port), fs.password.clone()))
        .await
        .with_context(|| format!("connecting to FreeSWITCH at {}:{}", fs.host, fs.port))?;
    let mut fopts = FinalizerOptions::from_config(&cfg);
    fopts.webhook_wake = Some(deliverer.waker());
    let finalizer = Finalizer::start_with(store.clone(), fopts, cancel.clone()).context("starting the finalizer")?;
    let compliance = Arc::new(cfg.compliance.clone());
    let dial_gate: Arc<voxdial::dialer::compliance::DialGate> = Arc::new(Default::default());
    // --- cluster: shared limits, task control and node liveness (None without [cluster] redis_url).
    let cluster = voxdial::cluster::Cluster::start(&cfg.cluster, &cfg.dialer.node_id, store.clone(), cancel.clone()).await?;
    let mut cluster_signals = cluster.as_ref().map(|c| c.signals());
    let lines = voxdial::dialer::line::Lines::start_clustered(&cfg.lines, cluster.clone());
    // --- end cluster
    // Attempts a previous process left open are settled before any new dial.
    let rec = voxdial::dialer::reconcile::reconcile(&store, &esl, &finalizer, &cfg.dialer.node_id).await?;
    let released = store.release_node_claims(&cfg.dialer.node_id).await?;
    tracing::info!(adopted = rec.adopted, ended = rec.ended, released, "reconciliation done");
    if let Some(c) = &cluster {
        c.spawn_takeover(finalizer.clone(), cancel.clone());
    }
    let mut running: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    let mut sigterm = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tracing::info!("voxdial serving; ESL {}:{}", fs.host, fs.port);
    loop {
        running.retain(|_, h| !h.is_finished());
        let rows = sqlx::query(store.sql("SELECT uuid FROM autodialer_task WHERE start = 1 AND deleted_at IS NULL"))
            .fetch_all(store.pool())
            .await?;
        for r in rows {
            let uuid: String = sqlx::Row::try_get(&r, "uuid")?;
            if running.contains_key(&uuid) {
                continue;
            }
            let runner = TaskRunner {
                store: store.clone(),
                esl: esl.clone(),
                finalizer: finalizer.clone(),
                cfg: cfg.dialer.clone(),
                compliance: compliance.clone(),
                dial_gate: dial_gate.clone(),
                default_gateway: fs.gateway.clone(),
                lines: lines.clone(),
                progress: Arc::new(Progress::default()),
                cancel: cancel.child_token(),
                cluster: cluster.clone(),
            };
            let id = uuid.clone();
            running.insert(
                uuid,
                tokio::spawn(async move {
                    match runner.run(&id).await {
                        Ok(end) => tracing::info!(task = %id, ?end, "task runner ended"),
                        Err(e) => tracing::error!(task = %id, "task runner failed: {e}"),
                    }
                }),
            );
        }
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = sigterm.recv() => break,
            _ = voxdial::cluster::task_signal(&mut cluster_signals, "") => {}
            _ = esl.closed() => bail!("FreeSWITCH connection lost: {}", esl.close_reason().unwrap_or_default()),
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
    tracing::info!("shutting down: live calls finish, then exit");
    cancel.cancel();
    for (_, h) in running {
        let _ = h.await;
    }
    finalizer.stopped().await;
    Ok(())
}
