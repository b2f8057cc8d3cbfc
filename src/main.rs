//! The `voxdial` command line.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use voxdial::cli;
use voxdial::config::Config;
use voxdial::daemon::ServeOptions;
use voxdial::demo::{self, DemoOptions};
use voxdial::finalize::recordings::prune_recordings;
use voxdial::sim::{self, SimConfig};
use voxdial::store::Store;

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
    /// Run the daemon: the REST API, and the dialer when the config has a
    /// `[freeswitch]` section.
    Serve {
        #[arg(long)]
        config: PathBuf,
        /// Address of the REST API (overrides `[api] http`).
        #[arg(long)]
        http: Option<String>,
    },
    /// Validate a config file and reach FreeSWITCH, the database and Redis;
    /// exits non-zero on any problem.
    Check {
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
        /// Play the smartivr robot module against this flow URL
        /// (e.g. http://127.0.0.1:8080/smartivr) for answered calls.
        #[arg(long)]
        smartivr_url: Option<String>,
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
    /// Tasks: create, import numbers, start / pause / stop, status, list.
    Task {
        #[command(subcommand)]
        cmd: cli::TaskCmd,
    },
    /// Call records: query a page, export all.
    Records {
        #[command(subcommand)]
        cmd: cli::RecordsCmd,
    },
    /// Number location: import the 7-digit prefix table, look numbers up.
    Location {
        #[command(subcommand)]
        cmd: cli::LocationCmd,
    },
    /// Accounts (main and sub-accounts).
    User {
        #[command(subcommand)]
        cmd: cli::UserCmd,
    },
    /// API tokens.
    Token {
        #[command(subcommand)]
        cmd: cli::TokenCmd,
    },
    /// Print the REST API's OpenAPI document.
    Openapi {
        #[arg(long)]
        output: Option<PathBuf>,
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
    /// Validate a script file (JSON or YAML); exits non-zero when it is invalid.
    Check {
        file: PathBuf,
        /// Also require `<audio_root>/<file_id>.wav` for every content.
        #[arg(long)]
        audio_root: Option<PathBuf>,
    },
    /// Validate and store a script file as a new script group.
    Import {
        file: PathBuf,
        #[arg(long)]
        config: PathBuf,
        /// Owner of the group.
        #[arg(long, default_value = "admin")]
        user: String,
        #[arg(long)]
        audio_root: Option<PathBuf>,
    },
    /// Write a stored script group to a file (YAML for .yaml/.yml, else JSON).
    Export {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        group: i64,
        /// Default: script-<group>.json; `-` for standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Replay customer utterances through a script version and report every
    /// decision, score or level that changes.
    Replay {
        #[arg(long)]
        script: PathBuf,
        /// Replay the stored calls (needs --config).
        #[arg(long)]
        from_records: bool,
        #[arg(long)]
        config: Option<PathBuf>,
        #[arg(long)]
        task: Option<String>,
        #[arg(long, default_value_t = 1000)]
        limit: i64,
        /// A JSON list of calls, each a list of customer utterances.
        #[arg(long)]
        transcript: Option<PathBuf>,
        /// Compare with this script's decisions instead of the recorded ones.
        #[arg(long)]
        against: Option<PathBuf>,
        /// Exit non-zero when anything changed.
        #[arg(long)]
        fail_on_change: bool,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// mimalloc instead of glibc malloc: the request paths allocate many small,
/// short-lived buffers (see docs/bench-smartivr.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn init_logs(format: &str, level: &str) {
    voxdial::logging::init(format, level);
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
        Cmd::Serve { config, http } => {
            let cfg = Config::load(&config)?;
            init_logs(&cfg.log.format, &cfg.log.level);
            Ok(voxdial::daemon::serve(cfg, ServeOptions { config_path: Some(config), http }).await?)
        }
        Cmd::Check { config } => {
            init_logs("human", "error");
            let findings = voxdial::check::run(&config).await;
            for f in &findings {
                println!("{f}");
            }
            let bad = findings.iter().filter(|f| !f.ok).count();
            if bad > 0 {
                bail!("{bad} problem(s) found in {}", config.display());
            }
            Ok(())
        }
        Cmd::Task { cmd } => {
            init_logs("human", "warn");
            cli::task(cmd).await
        }
        Cmd::Records { cmd } => {
            init_logs("human", "warn");
            cli::records(cmd).await
        }
        Cmd::Location { cmd } => {
            init_logs("human", "warn");
            cli::location(cmd).await
        }
        Cmd::User { cmd } => {
            init_logs("human", "warn");
            cli::user(cmd).await
        }
        Cmd::Token { cmd } => {
            init_logs("human", "warn");
            cli::token(cmd).await
        }
        Cmd::Openapi { output } => cli::openapi(output.as_deref()),
        Cmd::Sim { listen, gateways, seed, password, time_scale, mix, asr_custom, originate_log, smartivr_url } => {
            init_logs("human", "info");
            let Some(mix) = voxdial::sim::fate::FateMix::preset(&mix) else {
                bail!("unknown --mix {mix:?}: use default, answer-<persona>, busy, no-answer, … (see `voxdial sim --help`)");
            };
            let asr = asr_custom.map_or(voxdial::sim::SimAsr::DetectedSpeech, voxdial::sim::SimAsr::Custom);
            let mut cfg =
                SimConfig { seed, password, time_scale, mix, asr, originate_log, smartivr_url, ..SimConfig::default() };
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
        Cmd::Script { cmd } => {
            init_logs("human", "warn");
            script_cmd(cmd).await
        }
    }
}

/// `voxdial script …`, dispatched to `dialogue::tools`.
async fn script_cmd(cmd: ScriptCmd) -> Result<()> {
    use voxdial::dialogue::tools;
    match cmd {
        ScriptCmd::Check { file, audio_root } => match tools::check(&file, audio_root.as_deref()) {
            Ok(script) => {
                println!("{}: ok ({} utterances)", file.display(), script.utterances.len());
                Ok(())
            }
            Err(tools::ToolError::Invalid { path, errors }) => {
                for e in &errors {
                    eprintln!("{path}: {e}");
                }
                bail!("{} problem(s) in {path}", errors.len())
            }
            Err(e) => Err(e.into()),
        },
        ScriptCmd::Import { file, config, user, audio_root } => {
            let store = Store::open(&Config::load(&config)?.database.url).await?;
            let id = tools::import(&store, &user, &file, audio_root.as_deref()).await?;
            println!("{}: imported as script group {id}", file.display());
            Ok(())
        }
        ScriptCmd::Export { config, group, out } => {
            let store = Store::open(&Config::load(&config)?.database.url).await?;
            let script = tools::export(&store, group).await?;
            let out = out.unwrap_or_else(|| tools::default_export_path(group));
            let text = tools::render(&script, &out)?;
            if out.as_os_str() == "-" {
                print!("{text}");
            } else {
                std::fs::write(&out, text).with_context(|| format!("writing {}", out.display()))?;
                println!("script group {group} written to {}", out.display());
            }
            Ok(())
        }
        ScriptCmd::Replay { script, from_records, config, task, limit, transcript, against, fail_on_change, json } => {
            let new = tools::check(&script, None)?;
            let baseline = against.as_deref().map(tools::read_script).transpose()?;
            let calls = match (transcript, from_records) {
                (Some(t), false) => tools::read_transcript(&t)?,
                (None, true) => {
                    let Some(config) = config else { bail!("--from-records needs --config") };
                    let store = Store::open(&Config::load(&config)?.database.url).await?;
                    tools::recorded_calls(&store, task.as_deref(), limit).await?
                }
                _ => bail!("give exactly one of --from-records or --transcript FILE"),
            };
            let rep = tools::replay(&new, baseline.as_ref(), &calls);
            if json {
                println!("{}", serde_json::to_string_pretty(&rep)?);
            } else {
                print!("{}", tools::render_report(&rep));
            }
            if fail_on_change && !rep.changes.is_empty() {
                bail!("{} change(s)", rep.changes.len());
            }
            Ok(())
        }
    }
}
