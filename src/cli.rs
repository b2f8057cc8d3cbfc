//! Operator commands against the configured database: tasks, numbers,
//! records, accounts and API tokens. They run the API's own validation
//! ([`crate::api::rest::params`], [`crate::api::rest::manage`]); a running
//! daemon polls the task table every second, so it picks changes up.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Subcommand};
use serde_json::{json, Map, Value};

use crate::api::import::{self, Format};
use crate::api::rest::manage::create_task_from;
use crate::api::rest::params::{record_filter, Params};
use crate::api::rest::seed::record_rows;
use crate::config::Config;
use crate::location::{self, LocationTable};
use crate::store::api::{last_page, Principal, Scope, TaskProgress};
use crate::store::Store;

#[derive(Args, Debug, Clone)]
pub struct ConfigArg {
    /// The daemon's configuration (its `[database] url` is used).
    #[arg(long, env = "VOXDIAL_CONFIG", default_value = "voxdial.toml")]
    pub config: PathBuf,
}

#[derive(Args, Debug, Clone)]
pub struct TaskArg {
    #[command(flatten)]
    pub cfg: ConfigArg,
    /// Task uuid.
    #[arg(long)]
    pub task: String,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand, Debug)]
pub enum TaskCmd {
    /// Create a task from a JSON file (seed `info.task` field names); prints its uuid.
    Create {
        #[command(flatten)]
        cfg: ConfigArg,
        #[arg(long)]
        file: PathBuf,
        /// Owner account; default: `user_id` in the file, else the script group's owner.
        #[arg(long)]
        user: Option<String>,
    },
    /// Import numbers (CSV, JSON array or NDJSON), streamed.
    Import {
        #[command(flatten)]
        cfg: ConfigArg,
        #[arg(long)]
        task: String,
        /// The numbers file.
        file: PathBuf,
        /// csv or json; default from the file name.
        #[arg(long)]
        format: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Start dialling.
    Start(TaskArg),
    /// Pause: no new dials, live calls finish.
    Pause(TaskArg),
    /// Stop the task.
    Stop(TaskArg),
    /// Live progress.
    Status(TaskArg),
    /// All tasks.
    List {
        #[command(flatten)]
        cfg: ConfigArg,
        #[arg(long)]
        json: bool,
    },
}

/// The filters of `POST v1/task/query_done_task_phones`, as flags.
#[derive(Args, Debug, Clone)]
pub struct RecordFlags {
    #[command(flatten)]
    pub cfg: ConfigArg,
    #[arg(long)]
    pub task: String,
    /// Record id.
    #[arg(long)]
    pub id: Option<String>,
    /// Score ranges: `0-100,100-500` or JSON `[[0,100],[100,500]]`.
    #[arg(long)]
    pub levels: Option<String>,
    /// Callee prefix.
    #[arg(long)]
    pub keyword: Option<String>,
    /// Talk time in seconds: `MIN,MAX`.
    #[arg(long)]
    pub bills: Option<String>,
    /// Rounds: `MIN,MAX`.
    #[arg(long)]
    pub rounds: Option<String>,
    /// Tag ids, comma-separated.
    #[arg(long)]
    pub tags: Option<String>,
    #[arg(long)]
    pub start_at: Option<String>,
    #[arg(long)]
    pub end_at: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum RecordsCmd {
    /// One page of a task's records (15 rows).
    Query {
        #[command(flatten)]
        f: RecordFlags,
        #[arg(long, default_value_t = 1)]
        page: i64,
        #[arg(long)]
        json: bool,
    },
    /// Every matching record as CSV or JSON.
    Export {
        #[command(flatten)]
        f: RecordFlags,
        /// csv or json.
        #[arg(long, default_value = "csv")]
        format: String,
        /// Write here instead of stdout.
        #[arg(long)]
        output: Option<PathBuf>,
    },
}

#[derive(Subcommand, Debug)]
pub enum LocationCmd {
    /// Load a CSV of `prefix,province,city[,operator]` (7-digit mobile
    /// prefix; operator yd/lt/dx/gd or 移动/联通/电信/广电), streamed.
    Import {
        #[command(flatten)]
        cfg: ConfigArg,
        /// The locations file.
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Where numbers are: province, city and operator.
    Lookup {
        #[command(flatten)]
        cfg: ConfigArg,
        numbers: Vec<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Create an account (a sub-account with --parent); prints its id.
    Create {
        #[command(flatten)]
        cfg: ConfigArg,
        #[arg(long)]
        name: String,
        #[arg(long)]
        parent: Option<String>,
    },
    /// All accounts.
    List {
        #[command(flatten)]
        cfg: ConfigArg,
    },
}

#[derive(Subcommand, Debug)]
pub enum TokenCmd {
    /// Issue an API token for an account; prints it (only its hash is kept).
    Create {
        #[command(flatten)]
        cfg: ConfigArg,
        #[arg(long)]
        user: String,
        #[arg(long, default_value = "")]
        name: String,
        /// Mask phone numbers in this token's responses.
        #[arg(long)]
        mask_numbers: bool,
    },
}

async fn open(c: &ConfigArg) -> Result<Store> {
    let cfg = Config::load(&c.config)?;
    Ok(Store::open(&cfg.database.url).await?)
}

async fn scope_for(store: &Store, user: &str) -> Result<Scope> {
    let p: Principal = store.user_row(user).await?.ok_or_else(|| anyhow!("user: no account {user}"))?;
    store.scope_of(&p, None).await?.ok_or_else(|| anyhow!("user: no account {user}"))
}

pub async fn task(cmd: TaskCmd) -> Result<()> {
    match cmd {
        TaskCmd::Create { cfg, file, user } => {
            let store = open(&cfg).await?;
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let v: Value =
                serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", file.display()))?;
            let Value::Object(obj) = v else { bail!("{}: must hold one JSON object", file.display()) };
            let mut p = Params(obj);
            let owner = match (p.string("user_id")?, user) {
                (_, Some(u)) | (Some(u), None) => u,
                (None, None) => default_owner(&store, &p).await?,
            };
            let scope = scope_for(&store, &owner).await?;
            if p.get("group_id").is_none() {
                if let Some(g) = store.latest_script_group(&scope.tenant).await? {
                    p.insert("group_id", json!(g));
                }
            }
            let (uuid, ignored) = create_task_from(&store, &scope, &p).await?;
            if !ignored.is_empty() {
                eprintln!("ignored unknown fields: {}", ignored.join(", "));
            }
            println!("{uuid}");
            Ok(())
        }
        TaskCmd::Import { cfg, task, file, format, json } => {
            let store = open(&cfg).await?;
            let (_, tenant) = task_owner(&store, &task).await?;
            let format = match format.as_deref() {
                Some("csv") => Format::Csv,
                Some("json") | Some("ndjson") => Format::Json,
                Some(f) => bail!("--format: must be csv or json, got {f:?}"),
                None => Format::guess(&file.display().to_string()),
            };
            let f = tokio::fs::File::open(&file).await.with_context(|| format!("opening {}", file.display()))?;
            let locations = LocationTable::load(&store).await?;
            let report = import::import(&store, &locations, &task, &tenant, f, format).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "{}: {} rows · {} imported · {} duplicates · {} blacklisted · {} rejected",
                    file.display(),
                    report.rows,
                    report.inserted,
                    report.duplicates,
                    report.blacklisted,
                    report.invalid
                );
                for e in &report.errors {
                    eprintln!("{}:{}: {}", file.display(), e.line, e.problem);
                }
                if !report.duplicate_lines.is_empty() {
                    eprintln!("duplicates on lines {}", join(&report.duplicate_lines));
                }
                if !report.blacklisted_lines.is_empty() {
                    eprintln!("blacklisted (will not be dialled) on lines {}", join(&report.blacklisted_lines));
                }
                if report.truncated {
                    eprintln!("(lists cut at {} entries)", import::MAX_LISTED);
                }
            }
            Ok(())
        }
        TaskCmd::Start(a) => set_start(a, 1, "started").await,
        TaskCmd::Pause(a) => set_start(a, 0, "paused").await,
        TaskCmd::Stop(a) => set_start(a, 2, "stopped").await,
        TaskCmd::Status(a) => {
            let store = open(&a.cfg).await?;
            let p = progress(&store, &a.cfg, &a.task).await?;
            // With a cluster, the task's status includes every node's share.
            let cluster = match Config::load(&a.cfg.config) {
                Ok(c) if c.cluster.redis_url.is_some() => Some(crate::cluster::status(&store, &c.cluster).await?),
                _ => None,
            };
            match cluster {
                None => print_progress(&p, a.json),
                Some(cs) if a.json => {
                    let mut v = serde_json::to_value(&p)?;
                    v["cluster"] = serde_json::to_value(&cs)?;
                    println!("{}", serde_json::to_string_pretty(&v)?);
                    Ok(())
                }
                Some(cs) => {
                    print_progress(&p, false)?;
                    println!("  cluster: {}", serde_json::to_string(&cs)?);
                    Ok(())
                }
            }
        }
        TaskCmd::List { cfg, json } => {
            let store = open(&cfg).await?;
            let tasks = store.list_tasks(&store.scope_all().await?).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&tasks)?);
                return Ok(());
            }
            println!("{:<36}  {:<6}  {:>11}  {:>8}  {:<20}  name", "uuid", "start", "maximumcall", "cps", "created");
            for t in &tasks {
                let g = |k: &str| t.get(k).map(plain).unwrap_or_default();
                println!(
                    "{:<36}  {:<6}  {:>11}  {:>8}  {:<20}  {}",
                    g("uuid"),
                    crate::store::api::start_str(t.get("start").and_then(Value::as_i64).unwrap_or(0)),
                    g("maximumcall"),
                    g("call_per_second"),
                    g("create_datetime"),
                    g("name")
                );
            }
            Ok(())
        }
    }
}

pub async fn location(cmd: LocationCmd) -> Result<()> {
    match cmd {
        LocationCmd::Import { cfg, file, json } => {
            let store = open(&cfg).await?;
            let f = tokio::fs::File::open(&file).await.with_context(|| format!("opening {}", file.display()))?;
            let report = location::import::import(&store, f).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&report)?);
            } else {
                println!(
                    "{}: {} rows · {} imported · {} rejected · {} new regions",
                    file.display(),
                    report.rows,
                    report.imported,
                    report.invalid,
                    report.regions_created
                );
                for e in &report.errors {
                    eprintln!("{}:{}: {}", file.display(), e.line, e.problem);
                }
                if report.truncated {
                    eprintln!("(errors cut at {} entries)", import::MAX_LISTED);
                }
            }
            Ok(())
        }
        LocationCmd::Lookup { cfg, numbers, json } => {
            let store = open(&cfg).await?;
            let table = LocationTable::load(&store).await?;
            for raw in &numbers {
                let n = crate::store::normalize_number(raw).map_err(|e| anyhow!("{e}"))?;
                let loc = table.lookup_normalized(&n).unwrap_or_default();
                let name = |id: i64| table.region_name(id).unwrap_or("").to_string();
                let op = location::Operator::from_code(loc.operator);
                if json {
                    let v = json!({
                        "number": n,
                        "province_id": loc.province_id,
                        "province": name(loc.province_id),
                        "city_id": loc.city_id,
                        "city": name(loc.city_id),
                        "operator": loc.operator,
                        "operator_name": op.name_zh(),
                        "type": op.short(),
                    });
                    println!("{v}");
                } else {
                    println!("{n}\t{}\t{}\t{}", name(loc.province_id), name(loc.city_id), op.name_zh());
                }
            }
            Ok(())
        }
    }
}

fn join(v: &[u64]) -> String {
    v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")
}

fn plain(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Without `user_id`: the script group's owner, else the only main account.
async fn default_owner(store: &Store, p: &Params) -> Result<String> {
    if let Some(g) = p.int("group_id")? {
        return store.script_group_owner(g).await?.ok_or_else(|| anyhow!("group_id: no script group {g}"));
    }
    let mains: Vec<String> = store
        .list_users()
        .await?
        .into_iter()
        .filter(|u| u.get("parent_id").is_none_or(Value::is_null))
        .filter_map(|u| u.get("id").and_then(Value::as_str).map(String::from))
        .collect();
    match mains.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!("user_id: no account yet (voxdial user create)"),
        _ => bail!("user_id: several accounts; give user_id in the file or --user"),
    }
}

/// The task's owner and tenant (main account).
async fn task_owner(store: &Store, task: &str) -> Result<(String, String)> {
    let t =
        store.task_in_scope(task, &store.scope_all().await?).await?.ok_or_else(|| anyhow!("--task: no task {task}"))?;
    let owner = t.get("user_id").and_then(Value::as_str).unwrap_or_default().to_string();
    let tenant = match store.user_row(&owner).await? {
        Some(p) => p.parent_id.unwrap_or(p.user_id),
        None => owner.clone(),
    };
    Ok((owner, tenant))
}

async fn progress(store: &Store, cfg: &ConfigArg, task: &str) -> Result<TaskProgress> {
    let window = Config::load(&cfg.config).map(|c| c.api.cps_window_secs).unwrap_or(10);
    let t =
        store.task_in_scope(task, &store.scope_all().await?).await?.ok_or_else(|| anyhow!("--task: no task {task}"))?;
    Ok(store.task_progress(&t, window).await?)
}

async fn set_start(a: TaskArg, start: i64, verb: &str) -> Result<()> {
    let store = open(&a.cfg).await?;
    if !store.set_task_start_in_scope(&a.task, &store.scope_all().await?, start).await? {
        bail!("--task: no task {}", a.task);
    }
    let p = progress(&store, &a.cfg, &a.task).await?;
    if a.json {
        return print_progress(&p, true);
    }
    println!("task {} {verb} (start = {start}); a running daemon picks it up within a second", a.task);
    Ok(())
}

fn print_progress(p: &TaskProgress, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(p)?);
        return Ok(());
    }
    println!("task {}  {}  {} (start = {})", p.task_id, p.name, p.start_str, p.start);
    println!(
        "  numbers {} · waiting {} · done {} · dialled {} · in flight {} · records {}",
        p.total, p.waiting, p.done, p.dialled, p.in_flight, p.records
    );
    println!(
        "  achieved CPS {:.2} over {} s (target {}) · maximumcall {}",
        p.achieved_cps, p.cps_window_secs, p.call_per_second, p.maximumcall
    );
    for (code, n) in &p.statuses {
        println!("  {:>2} {:<16} {n:>8}", code, p.status_names.get(code).map(String::as_str).unwrap_or(""));
    }
    Ok(())
}

/// Flags → the API's parameters, then the API's validation.
fn filter_params(f: &RecordFlags, page: i64) -> Result<Params> {
    let mut p = Params::default();
    p.insert("task_id", json!(f.task));
    p.insert("page", json!(page));
    let mut put = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            p.insert(k, json!(v));
        }
    };
    put("id", &f.id);
    put("keyword", &f.keyword);
    put("bills", &f.bills);
    put("rounds", &f.rounds);
    put("tags", &f.tags);
    put("start_at", &f.start_at);
    put("end_at", &f.end_at);
    if let Some(l) = &f.levels {
        let v = if l.trim_start().starts_with('[') {
            json!(l)
        } else {
            let mut pairs = Vec::new();
            for r in l.split(',') {
                let (a, b) = r.split_once('-').ok_or_else(|| anyhow!("levels: {r:?} is not MIN-MAX"))?;
                let a: i64 = a.trim().parse().map_err(|_| anyhow!("levels: {a:?} is not an integer"))?;
                let b: i64 = b.trim().parse().map_err(|_| anyhow!("levels: {b:?} is not an integer"))?;
                pairs.push(json!([a, b]));
            }
            Value::Array(pairs)
        };
        p.insert("levels", v);
    }
    Ok(p)
}

enum Sink {
    Csv(Box<csv::Writer<Box<dyn Write>>>),
    Json(Box<dyn Write>),
}

const EXPORT_COLUMNS: &[&str] = &[
    "id",
    "task_id",
    "callid",
    "callee",
    "caller_number",
    "calldate",
    "answerdate",
    "hangupdate",
    "bill",
    "duration",
    "score",
    "level_name",
    "rounds",
    "hangupcause",
    "hangup_disposition_str",
    "gender_str",
    "operator_name",
    "tags",
    "recordfile",
    "read_at",
];

fn export_cell(row: &Map<String, Value>, k: &str) -> String {
    match (k, row.get(k)) {
        ("tags", Some(Value::Array(tags))) => {
            tags.iter().filter_map(|t| t.get("name").and_then(Value::as_str)).collect::<Vec<_>>().join("|")
        }
        (_, Some(v)) => plain(v),
        (_, None) => String::new(),
    }
}

pub async fn records(cmd: RecordsCmd) -> Result<()> {
    match cmd {
        RecordsCmd::Query { f, page, json } => {
            let store = open(&f.cfg).await?;
            let filter = record_filter(&filter_params(&f, page)?)?;
            if store.task_in_scope(&filter.task_id, &store.scope_all().await?).await?.is_none() {
                bail!("--task: no task {}", filter.task_id);
            }
            let (rows, total) = record_rows(&store, &filter).await?;
            let last = last_page(total, filter.per_page);
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({"data": rows, "total": total, "last_page": last}))?
                );
                return Ok(());
            }
            println!(
                "{:<36}  {:<13}  {:<19}  {:>5}  {:>6}  {:>7}  level",
                "id", "callee", "calldate", "score", "rounds", "bill s"
            );
            for r in rows.iter().filter_map(Value::as_object) {
                let g = |k: &str| r.get(k).map(plain).unwrap_or_default();
                let bill = r.get("bill").and_then(Value::as_i64).unwrap_or(0) as f64 / 1000.0;
                println!(
                    "{:<36}  {:<13}  {:<19}  {:>5}  {:>6}  {:>7.1}  {}",
                    g("id"),
                    g("callee"),
                    g("calldate"),
                    g("score"),
                    g("rounds"),
                    bill,
                    g("level_name")
                );
            }
            println!("page {} of {last} · {total} records", filter.page);
            Ok(())
        }
        RecordsCmd::Export { f, format, output } => {
            let csv_out = match format.as_str() {
                "csv" => true,
                "json" => false,
                other => bail!("--format: must be csv or json, got {other:?}"),
            };
            let store = open(&f.cfg).await?;
            let mut filter = record_filter(&filter_params(&f, 1)?)?;
            if store.task_in_scope(&filter.task_id, &store.scope_all().await?).await?.is_none() {
                bail!("--task: no task {}", filter.task_id);
            }
            filter.per_page = 500;
            let out: Box<dyn Write> = match &output {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout())),
            };
            let mut sink = if csv_out {
                let mut w = csv::Writer::from_writer(out);
                w.write_record(EXPORT_COLUMNS)?;
                Sink::Csv(Box::new(w))
            } else {
                let mut out = out;
                out.write_all(b"[")?;
                Sink::Json(out)
            };
            let mut n = 0u64;
            loop {
                let (rows, total) = record_rows(&store, &filter).await?;
                for r in rows.iter().filter_map(Value::as_object) {
                    match &mut sink {
                        Sink::Csv(w) => w.write_record(EXPORT_COLUMNS.iter().map(|k| export_cell(r, k)))?,
                        Sink::Json(out) => {
                            out.write_all(if n == 0 { b"\n" } else { b",\n" })?;
                            serde_json::to_writer(&mut *out, r)?;
                        }
                    }
                    n += 1;
                }
                if filter.page >= last_page(total, filter.per_page) || rows.is_empty() {
                    break;
                }
                filter.page += 1;
            }
            match sink {
                Sink::Csv(mut w) => w.flush()?,
                Sink::Json(mut out) => {
                    out.write_all(b"\n]\n")?;
                    out.flush()?;
                }
            }
            if let Some(p) = output {
                eprintln!("{n} records written to {}", p.display());
            }
            Ok(())
        }
    }
}

pub async fn user(cmd: UserCmd) -> Result<()> {
    match cmd {
        UserCmd::Create { cfg, name, parent } => {
            let store = open(&cfg).await?;
            println!("{}", store.create_user(&name, parent.as_deref()).await?);
            Ok(())
        }
        UserCmd::List { cfg } => {
            let store = open(&cfg).await?;
            println!("{}", serde_json::to_string_pretty(&store.list_users().await?)?);
            Ok(())
        }
    }
}

pub async fn token(cmd: TokenCmd) -> Result<()> {
    match cmd {
        TokenCmd::Create { cfg, user, name, mask_numbers } => {
            let store = open(&cfg).await?;
            println!("{}", store.create_api_token(&user, &name, mask_numbers).await?);
            Ok(())
        }
    }
}

/// `voxdial openapi [--output FILE]`.
pub fn openapi(output: Option<&Path>) -> Result<()> {
    let text = crate::api::openapi::document_text();
    match output {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}
