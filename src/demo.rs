//! `voxdial demo`: one whole campaign against the built-in simulator on an
//! embedded SQLite database, ending with a summary read back from the
//! database and from the simulator's own counters.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use voxdial_esl::{ClientConfig, EslClient, EslError};

use crate::config::Config;
use crate::dialer::{DialerError, Progress, RunEnd, TaskRunner};
use crate::dialogue::{Script, SAMPLE_SCRIPT};
use crate::finalize::status::NumberStatus;
use crate::finalize::{FinalizeError, Finalizer, FinalizerOptions, RecyclePolicy};
use crate::sim::fate::{hash, Fate};
use crate::sim::{self, SimConfig};
use crate::store::{Store, StoreError, Task};

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Sim(#[from] sim::SimError),
    #[error(transparent)]
    Esl(#[from] EslError),
    #[error(transparent)]
    Dialer(#[from] DialerError),
    #[error(transparent)]
    Finalize(#[from] FinalizeError),
    #[error("{0}")]
    Invalid(String),
    #[error("cannot write {path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// Options of `voxdial demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub numbers: usize,
    pub cps: f64,
    pub maximumcall: i64,
    pub seed: u64,
    pub data_dir: PathBuf,
    /// Simulated network/callee delays are divided by this.
    pub time_scale: f64,
    pub progress: bool,
}

/// The demo's summary; `--json` writes exactly this.
#[derive(Debug, Clone, Serialize)]
pub struct DemoSummary {
    pub task_id: String,
    pub numbers: usize,
    /// Originates as counted by the simulator.
    pub originates: u64,
    /// Status code (as a string) → numbers.
    pub statuses: BTreeMap<String, i64>,
    pub status_names: BTreeMap<String, String>,
    /// Level name → records.
    pub levels: BTreeMap<String, i64>,
    pub records: i64,
    pub detail_rows: i64,
    pub call_histories: i64,
    pub avg_rounds: f64,
    pub achieved_cps: f64,
    /// The simulator's own peak of live channels.
    pub max_concurrent: i64,
    pub maximumcall: i64,
    pub call_per_second: f64,
    pub database: String,
    pub recordings: String,
    pub elapsed_secs: f64,
    pub user_id: String,
    /// An API token of the demo tenant: `voxdial serve --config DIR/voxdial.toml`
    /// then serves the demo's records to it.
    pub api_token: String,
    /// The simulator's originate log (not part of the JSON summary).
    #[serde(skip)]
    pub originate_log: Vec<crate::sim::OriginateRecord>,
}

const SURNAMES: &[&str] = &["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周"];
const PREFIXES: &[&str] = &["138", "139", "186", "150", "177", "135", "158", "189"];

fn candidate(seed: u64, i: u64) -> String {
    let h = hash(seed, &format!("n{i}"));
    let prefix = PREFIXES[(h % PREFIXES.len() as u64) as usize];
    format!("{prefix}{:08}", (h >> 8) % 100_000_000)
}

/// Generate `n` distinct numbers so that every fate of the simulator's mix
/// occurs at least once (when `n` allows), the rest drawn at random.
pub fn generate_numbers(n: usize, seed: u64, fate_of: &dyn Fn(&str) -> Fate, fates: &[Fate]) -> Vec<String> {
    let mut out = Vec::with_capacity(n);
    let mut seen = BTreeSet::new();
    let mut i = 0u64;
    for f in fates {
        if out.len() >= n {
            break;
        }
        while i < 1_000_000 {
            let c = candidate(seed, i);
            i += 1;
            if fate_of(&c) == *f && seen.insert(c.clone()) {
                out.push(c);
                break;
            }
        }
    }
    while out.len() < n && i < 10_000_000 {
        let c = candidate(seed, i);
        i += 1;
        if seen.insert(c.clone()) {
            out.push(c);
        }
    }
    // Covered fates first would bias the dialing order; shuffle stably.
    out.sort_by_key(|x| hash(seed ^ 0x5eed, x));
    out
}

pub async fn run(opts: &DemoOptions) -> Result<DemoSummary, DemoError> {
    if opts.numbers == 0 {
        return Err(DemoError::Invalid("--numbers must be at least 1".into()));
    }
    if !(opts.cps > 0.0 && opts.cps.is_finite()) {
        return Err(DemoError::Invalid(format!("--cps must be > 0, got {}", opts.cps)));
    }
    if opts.maximumcall < 1 {
        return Err(DemoError::Invalid(format!("--maximumcall must be ≥ 1, got {}", opts.maximumcall)));
    }
    let started = std::time::Instant::now();
    let data_dir = crate::config::absolute(&opts.data_dir);
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| DemoError::Io { path: data_dir.display().to_string(), source: e })?;
    let recordings = data_dir.join("recordings");

    let simulator = sim::start(
        SimConfig {
            seed: opts.seed,
            time_scale: opts.time_scale,
            recordings_root: recordings.display().to_string(),
            ..SimConfig::default()
        },
        "127.0.0.1:0",
    )
    .await?;
    let mut cfg = Config::demo(&data_dir, simulator.addr().port());
    cfg.recycle = RecyclePolicy { statuses: vec![2, 3, 4, 8, 12], interval_secs: 2 };
    write_config(&data_dir, &cfg)?;

    let store = Store::open(&cfg.database.url).await?;
    let user_id = "4d99d91c-f5d9-49da-88da-758977cc58a9".to_string();
    store.ensure_user(&user_id, "voxdial demo").await?;
    let api_token = store.create_api_token(&user_id, "demo", false).await?;
    let script = Script::from_json(SAMPLE_SCRIPT).map_err(|e| DemoError::Invalid(format!("sample script: {e}")))?;
    let group_id = store.save_script(&user_id, &script).await?;

    let fates: Vec<Fate> = SimConfig::default().mix.weights.iter().map(|(f, _)| *f).collect();
    let numbers = generate_numbers(opts.numbers, opts.seed, &|n| simulator.fate_of(n), &fates);
    // A few numbers are on the tenant's blacklist: they must end as status 11
    // without ever being dialled.
    let blacklisted: Vec<&String> = numbers.iter().rev().take((opts.numbers / 60).max(1).min(opts.numbers)).collect();
    for b in &blacklisted {
        store.add_blacklist(&user_id, b, "demo: asked not to be called").await?;
    }
    let task_id = uuid::Uuid::new_v4().to_string();
    store
        .create_task(&Task {
            maximumcall: opts.maximumcall,
            call_per_second: opts.cps,
            recycle_limit: 1,
            dial_format: "sofia/gateway/voxdial-sim/%s".into(),
            originate_timeout: 6,
            origination_caller_id_number: "02160001234".into(),
            ..Task::new(
                task_id.clone(),
                format!("voxdial demo {}", chrono::Local::now().format("%Y-%m-%d %H:%M:%S")),
                user_id.clone(),
                group_id,
            )
        })
        .await?;
    let rows: Vec<(String, BTreeMap<String, String>)> = numbers
        .iter()
        .map(|n| {
            let h = hash(opts.seed, n);
            let name = format!(
                "{}{}",
                SURNAMES[(h % SURNAMES.len() as u64) as usize],
                if h & 1 == 0 { "先生" } else { "女士" }
            );
            (n.clone(), BTreeMap::from([("name".to_string(), name)]))
        })
        .collect();
    store.import_numbers(&task_id, &rows).await?;

    let fs = cfg.freeswitch.clone().unwrap_or_default();
    let mut ccfg = ClientConfig::new(format!("{}:{}", fs.host, fs.port), fs.password.clone());
    ccfg.events = [
        "CHANNEL_ANSWER",
        "CHANNEL_PARK",
        "CHANNEL_HANGUP",
        "CHANNEL_HANGUP_COMPLETE",
        "RECORD_START",
        "RECORD_STOP",
        "PLAYBACK_START",
        "PLAYBACK_STOP",
        "DETECTED_SPEECH",
        "DTMF",
        "CHANNEL_BRIDGE",
        "BACKGROUND_JOB",
        "HEARTBEAT",
        "CUSTOM",
        "voxdial::asr",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let esl = EslClient::connect(ccfg).await?;
    let cancel = CancellationToken::new();
    let finalizer = Finalizer::start_with(store.clone(), FinalizerOptions::from_config(&cfg), cancel.clone())?;
    let progress = Arc::new(Progress::default());
    let lines = crate::dialer::line::Lines::start(&cfg.lines);
    let runner = TaskRunner {
        store: store.clone(),
        esl: esl.clone(),
        finalizer,
        cfg: cfg.dialer.clone().into(),
        compliance: cfg.compliance.clone().into(),
        dial_gate: Arc::new(Default::default()),
        default_gateway: fs.gateway.clone(),
        lines: lines.clone(),
        progress: progress.clone(),
        cancel: cancel.clone(),
        cluster: None,
        module_calls: Default::default(),
    };
    let bar_task = opts.progress.then(|| spawn_progress(progress.clone(), opts.numbers as u64, cancel.clone()));
    let end = runner.run(&task_id).await;
    cancel.cancel();
    if let Some(b) = bar_task {
        let _ = b.await;
    }
    let end = end?;
    if end != RunEnd::Completed {
        return Err(DemoError::Invalid(format!("campaign ended early: {end:?}")));
    }
    esl.shutdown().await;

    let stats = simulator.stats();
    let log = simulator.originate_log();
    simulator.shutdown().await;
    // Pace of the first pass over the list; redials wait for their recycle
    // interval and would understate the rate the dialer held.
    let mut first_pass: Vec<i64> = Vec::new();
    let mut seen_numbers = BTreeSet::new();
    for r in &log {
        if seen_numbers.insert(r.number.clone()) {
            first_pass.push(r.at_ms);
        }
    }
    let achieved_cps = match (first_pass.first(), first_pass.last()) {
        (Some(a), Some(b)) if first_pass.len() > 1 && b > a => (first_pass.len() - 1) as f64 * 1000.0 / (b - a) as f64,
        _ => 0.0,
    };
    let statuses = store.status_counts(&task_id).await?;
    let summary = DemoSummary {
        task_id: task_id.clone(),
        numbers: opts.numbers,
        originates: stats.originates,
        status_names: statuses
            .keys()
            .map(|k| (k.to_string(), NumberStatus::from_code(*k).map_or("?", |s| s.name_zh()).to_string()))
            .collect(),
        statuses: statuses.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        levels: store.level_counts(&task_id).await?,
        records: store.count("SELECT COUNT(*) FROM records WHERE task_id = ?", &task_id).await?,
        detail_rows: store.detail_rows(&task_id).await?,
        call_histories: store.count("SELECT COUNT(*) FROM auto_call_histories WHERE task_id = ?", &task_id).await?,
        avg_rounds: (store.avg_rounds(&task_id).await? * 100.0).round() / 100.0,
        achieved_cps: (achieved_cps * 100.0).round() / 100.0,
        max_concurrent: stats.max_concurrent,
        maximumcall: opts.maximumcall,
        call_per_second: opts.cps,
        database: cfg.database.url.clone(),
        recordings: recordings.display().to_string(),
        elapsed_secs: (started.elapsed().as_secs_f64() * 10.0).round() / 10.0,
        user_id,
        api_token,
        originate_log: log,
    };
    Ok(summary)
}

/// The config left behind has no `[freeswitch]` section: the simulator is
/// gone once the demo exits, so `voxdial serve` runs as an API-only node.
fn write_config(dir: &Path, cfg: &Config) -> Result<(), DemoError> {
    let path = dir.join("voxdial.toml");
    let api_only = Config { freeswitch: None, ..cfg.clone() };
    let text = format!(
        "# Written by `voxdial demo`: the demo's database. `voxdial serve --config` this file\n# serves its records over the REST API (add a [freeswitch] section to dial).\n{}",
        api_only.to_toml()
    );
    std::fs::write(&path, text).map_err(|e| DemoError::Io { path: path.display().to_string(), source: e })
}

fn spawn_progress(p: Arc<Progress>, total: u64, cancel: CancellationToken) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let bar = indicatif::ProgressBar::new(total);
        bar.set_style(
            indicatif::ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} numbers done  {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        loop {
            let done = p.finished.load(Ordering::Relaxed).saturating_sub(0) + p.blacklisted.load(Ordering::Relaxed);
            bar.set_position(done.min(total));
            bar.set_message(format!(
                "in flight {:>3} · originated {} · records {}",
                p.in_flight.load(Ordering::Relaxed),
                p.originated.load(Ordering::Relaxed),
                p.records.load(Ordering::Relaxed)
            ));
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_millis(100)) => {}
            }
        }
        bar.finish_and_clear();
    })
}

/// The human summary table.
pub fn render(s: &DemoSummary) -> String {
    let mut out = String::new();
    out.push_str(&format!("\nvoxdial demo — task {}\n", s.task_id));
    out.push_str(&format!(
        "  {} numbers, {} originates (simulator count), {:.1} s, maximumcall {}, call_per_second {}\n\n",
        s.numbers, s.originates, s.elapsed_secs, s.maximumcall, s.call_per_second
    ));
    out.push_str("  status                         numbers\n");
    for st in NumberStatus::all() {
        let n = s.statuses.get(&st.code().to_string()).copied().unwrap_or(0);
        let label = format!("{:>2} {}", st.code(), st.name_zh());
        out.push_str(&format!("  {label:<28} {n:>7}\n"));
    }
    out.push_str("\n  level (intent)                 records\n");
    for (l, n) in &s.levels {
        out.push_str(&format!("  {:<28} {n:>7}\n", if l.is_empty() { "(none)" } else { l }));
    }
    out.push_str(&format!(
        "\n  records {} · detail rows {} · call histories {} · avg rounds {:.2}\n",
        s.records, s.detail_rows, s.call_histories, s.avg_rounds
    ));
    out.push_str(&format!(
        "  achieved CPS {:.2} (target {}) · peak live channels {} (maximumcall {})\n\n",
        s.achieved_cps, s.call_per_second, s.max_concurrent, s.maximumcall
    ));
    let db_path = s.database.trim_start_matches("sqlite://");
    out.push_str(&format!(
        "  database:   {}\n  recordings: {} (paths in records.recordfile)\n",
        s.database, s.recordings
    ));
    out.push_str(&format!(
        "  query it:   sqlite3 {db_path} \"SELECT callee, level_name, score, rounds, bill FROM records WHERE task_id = '{}' ORDER BY score DESC LIMIT 10\"\n",
        s.task_id
    ));
    out
}
