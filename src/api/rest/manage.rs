//! Management endpoints: tasks and their progress, number import, scripts,
//! levels, tags, the blacklist and dial-time groups. Task creation and
//! validation live here as plain functions so the CLI runs the same checks.

use axum::body::{Body, Bytes};
use axum::extract::Path as UrlPath;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use futures::TryStreamExt;
use serde_json::{json, Map, Value};

use super::params::Params;
use super::{listing, ok, ApiErr, ApiResult, BodyParams, Ctx, TaskCtx, PER_PAGE};
use crate::api::import::{self, Format};
use crate::dialer::window::DialWindowSpec;
use crate::dialogue::Script;
use crate::store::api::{last_page, OwnedTable, Scope};
use crate::store::{normalize_number, Store, Task};

/// Keys a task object may carry but that are not set by clients (the seeds'
/// read-only fields); ignored silently on create and update.
const READ_ONLY: &[&str] = &[
    "uuid",
    "create_datetime",
    "alter_datetime",
    "user_id",
    "start_str",
    "group_str",
    "progress_bar",
    "group",
    "deleted_at",
    "enable",
    "sub_user_id",
];

/// How a writable task column is checked.
enum Kind {
    Text {
        max: usize,
        required: bool,
    },
    Int {
        lo: i64,
        hi: i64,
    },
    Real {
        lo: f64,
        hi: f64,
    },
    Url,
    /// A nullable id, checked against the tenant by the caller.
    Id,
}

/// Writable task columns (seed `info.task` names).
const COLUMNS: &[(&str, Kind)] = &[
    ("name", Kind::Text { max: 255, required: true }),
    ("start", Kind::Int { lo: 0, hi: 2 }),
    ("maximumcall", Kind::Int { lo: 1, hi: 100_000 }),
    ("call_per_second", Kind::Real { lo: 0.001, hi: 10_000.0 }),
    ("recycle_limit", Kind::Int { lo: 0, hi: 100 }),
    ("random_assignment_number", Kind::Int { lo: 0, hi: 1 }),
    ("destination_extension", Kind::Text { max: 64, required: false }),
    ("destination_dialplan", Kind::Text { max: 32, required: false }),
    ("destination_context", Kind::Text { max: 64, required: false }),
    ("dial_format", Kind::Text { max: 1024, required: false }),
    ("originate_variables", Kind::Text { max: 4096, required: false }),
    ("_originate_timeout", Kind::Int { lo: 1, hi: 600 }),
    ("_origination_caller_id_number", Kind::Text { max: 64, required: false }),
    ("group_id", Kind::Int { lo: 1, hi: i64::MAX }),
    ("call_pause_second", Kind::Int { lo: 0, hi: 86_400 }),
    ("sort", Kind::Int { lo: -1_000_000, hi: 1_000_000 }),
    ("is_top", Kind::Int { lo: 0, hi: 1 }),
    ("remark", Kind::Text { max: 1024, required: false }),
    ("domain", Kind::Text { max: 255, required: false }),
    ("caller_line_id", Kind::Text { max: 64, required: false }),
    ("call_notify_url", Kind::Url),
    ("call_notify_type", Kind::Int { lo: 0, hi: 9 }),
    ("call_stop_notify_url", Kind::Url),
    ("end_action", Kind::Int { lo: 0, hi: 9 }),
    ("task_type", Kind::Int { lo: 0, hi: 9 }),
    ("dial_time_id", Kind::Id),
];

/// Validated task columns, and the keys that were ignored as unknown.
pub struct TaskSpec {
    pub cols: Vec<(&'static str, Value)>,
    pub ignored: Vec<String>,
}

impl TaskSpec {
    fn get(&self, k: &str) -> Option<&Value> {
        self.cols.iter().find(|(c, _)| *c == k).map(|(_, v)| v)
    }
    fn text(&self, k: &str, default: &str) -> String {
        self.get(k).and_then(Value::as_str).unwrap_or(default).to_string()
    }
    fn int(&self, k: &str, default: i64) -> i64 {
        self.get(k).and_then(Value::as_i64).unwrap_or(default)
    }
}

/// Check every given task field; `creating` requires `name` and `group_id`.
pub fn task_spec(p: &Params, creating: bool) -> Result<TaskSpec, ApiErr> {
    let mut cols = Vec::new();
    for (name, kind) in COLUMNS {
        let given = p.0.get(*name);
        let v = match kind {
            Kind::Text { max, required } => match p.string(name)? {
                Some(s) if s.chars().count() > *max => {
                    return Err(ApiErr::param(name, format!("longer than {max} characters")))
                }
                Some(s) => Some(Value::String(s)),
                None if given.is_some() && !required => Some(Value::String(String::new())),
                None => None,
            },
            Kind::Int { lo, hi } => p.int_in(name, *lo, *hi)?.map(Value::from),
            Kind::Real { lo, hi } => match p.get(name) {
                None => None,
                Some(v) => {
                    let f = v
                        .as_f64()
                        .or_else(|| v.as_str().and_then(|s| s.trim().parse().ok()))
                        .filter(|f: &f64| f.is_finite())
                        .ok_or_else(|| ApiErr::param(name, format!("must be a number, got {v}")))?;
                    if f < *lo || f > *hi {
                        return Err(ApiErr::param(name, format!("must be between {lo} and {hi}, got {f}")));
                    }
                    Some(Value::from(f))
                }
            },
            Kind::Url => match p.string(name)? {
                Some(u) if !(u.starts_with("http://") || u.starts_with("https://")) => {
                    return Err(ApiErr::param(name, format!("must be an http:// or https:// URL, got {u:?}")))
                }
                Some(u) if u.len() > 2048 => return Err(ApiErr::param(name, "longer than 2048 characters")),
                Some(u) => Some(Value::String(u)),
                None if given.is_some() => Some(Value::Null),
                None => None,
            },
            Kind::Id => match p.string(name)? {
                Some(s) => Some(Value::String(s)),
                None if given.is_some() => Some(Value::Null),
                None => None,
            },
        };
        if let Some(v) = v {
            cols.push((*name, v));
        }
    }
    let spec = TaskSpec {
        ignored: p
            .0
            .keys()
            .filter(|k| !COLUMNS.iter().any(|(c, _)| c == k) && !READ_ONLY.contains(&k.as_str()))
            .cloned()
            .collect(),
        cols,
    };
    if creating {
        if spec.get("name").is_none() {
            return Err(ApiErr::param("name", "is required"));
        }
        if spec.get("group_id").is_none() {
            return Err(ApiErr::param("group_id", "is required (the script group the robot speaks)"));
        }
    }
    if let Some(f) = spec.get("dial_format").and_then(Value::as_str) {
        if !f.is_empty() && !f.contains("%s") {
            return Err(ApiErr::param("dial_format", "must contain %s where the number goes"));
        }
    }
    Ok(spec)
}

/// The tenant may use the script group and dial-time group the spec names.
async fn check_refs(store: &Store, scope: &Scope, spec: &TaskSpec) -> Result<(), ApiErr> {
    if let Some(g) = spec.get("group_id").and_then(Value::as_i64) {
        if store.script_group_in_tenant(g, &scope.tenant).await?.is_none() {
            return Err(ApiErr::param("group_id", format!("no script group {g} for this account")));
        }
    }
    if let Some(d) = spec.get("dial_time_id").and_then(Value::as_str) {
        if !store.owned(OwnedTable::DialTimeGroups, d, &scope.tenant).await? {
            return Err(ApiErr::param("dial_time_id", format!("no dial-time group {d} for this account")));
        }
    }
    Ok(())
}

/// Create a task for `scope.owner` from validated parameters; returns its
/// uuid and the ignored keys. Shared by the API and `voxdial task create`.
pub async fn create_task_from(store: &Store, scope: &Scope, p: &Params) -> Result<(String, Vec<String>), ApiErr> {
    let spec = task_spec(p, true)?;
    check_refs(store, scope, &spec).await?;
    let uuid = match p.string("uuid")? {
        Some(u) if u.len() > 64 || u.is_empty() => return Err(ApiErr::param("uuid", "must be 1–64 characters")),
        Some(u) => {
            let exists = sqlx::query(store.sql("SELECT 1 AS x FROM autodialer_task WHERE uuid = ?"))
                .bind(&u)
                .fetch_optional(store.pool())
                .await
                .map_err(crate::store::StoreError::from)?
                .is_some();
            if exists {
                return Err(ApiErr::new(StatusCode::CONFLICT, format!("uuid: task {u} already exists")));
            }
            u
        }
        None => uuid::Uuid::new_v4().to_string(),
    };
    let task = Task {
        uuid: uuid.clone(),
        name: spec.text("name", ""),
        start: spec.int("start", 0),
        maximumcall: spec.int("maximumcall", 1),
        call_per_second: spec.get("call_per_second").and_then(Value::as_f64).unwrap_or(1.0),
        recycle_limit: spec.int("recycle_limit", 0),
        destination_extension: spec.text("destination_extension", "robot"),
        destination_dialplan: spec.text("destination_dialplan", "XML"),
        destination_context: spec.text("destination_context", "default"),
        dial_format: spec.text("dial_format", ""),
        originate_variables: spec.text("originate_variables", ""),
        originate_timeout: spec.int("_originate_timeout", 60),
        origination_caller_id_number: spec.text("_origination_caller_id_number", ""),
        user_id: scope.owner.clone(),
        group_id: spec.int("group_id", 0),
        call_pause_second: spec.int("call_pause_second", 0),
        sort: spec.int("sort", 0),
        is_top: spec.int("is_top", 0),
        random_assignment_number: spec.int("random_assignment_number", 0),
        end_action: spec.int("end_action", 1),
    };
    store.create_task(&task).await?;
    const IN_STRUCT: &[&str] = &[
        "name",
        "start",
        "maximumcall",
        "call_per_second",
        "recycle_limit",
        "destination_extension",
        "destination_dialplan",
        "destination_context",
        "dial_format",
        "originate_variables",
        "_originate_timeout",
        "_origination_caller_id_number",
        "group_id",
        "call_pause_second",
        "sort",
        "is_top",
        "random_assignment_number",
        "end_action",
    ];
    let extra: Vec<(&'static str, Value)> = spec.cols.iter().filter(|(c, _)| !IN_STRUCT.contains(c)).cloned().collect();
    if !extra.is_empty() {
        store.update_task_columns(&uuid, scope, &extra).await?;
    }
    Ok((uuid, spec.ignored))
}

fn task_json(mut t: Map<String, Value>) -> Value {
    let start = t.get("start").and_then(Value::as_i64).unwrap_or(0);
    t.insert("start_str".into(), Value::from(crate::store::api::start_str(start)));
    Value::Object(t)
}

fn created(message: &str, data: Value) -> Response {
    let mut resp = ok(message, data);
    *resp.status_mut() = StatusCode::CREATED;
    resp
}

// ------------------------------------------------------------------ tasks

pub async fn list_tasks(c: Ctx) -> ApiResult {
    let tasks: Vec<Value> = c.store().list_tasks(&c.scope).await?.into_iter().map(task_json).collect();
    Ok(listing(&tasks))
}

pub async fn create_task(c: Ctx, BodyParams(p): BodyParams) -> ApiResult {
    let (uuid, ignored) = create_task_from(c.store(), &c.scope, &p).await?;
    let task = c.task(&uuid).await?;
    Ok(created("task created", json!({"task": task_json(task), "ignored": ignored})))
}

pub async fn get_task(t: TaskCtx) -> ApiResult {
    Ok(ok("ok", task_json(t.task)))
}

pub async fn update_task(t: TaskCtx, BodyParams(p): BodyParams) -> ApiResult {
    let c = &t.ctx;
    let spec = task_spec(&p, false)?;
    if let Some(Value::String(n)) = spec.get("name") {
        if n.is_empty() {
            return Err(ApiErr::param("name", "must not be empty"));
        }
    }
    check_refs(c.store(), &c.scope, &spec).await?;
    c.store().update_task_columns(&t.id, &c.scope, &spec.cols).await?;
    let task = c.task(&t.id).await?;
    Ok(ok("task updated", json!({"task": task_json(task), "ignored": spec.ignored})))
}

pub async fn delete_task(t: TaskCtx) -> ApiResult {
    if !t.ctx.store().delete_task(&t.id, &t.ctx.scope).await? {
        return Err(ApiErr::not_found(format!("task {}", t.id)));
    }
    Ok(ok("task deleted", json!({"uuid": t.id})))
}

async fn set_start(t: TaskCtx, start: i64) -> ApiResult {
    let c = &t.ctx;
    if !c.store().set_task_start_in_scope(&t.id, &c.scope, start).await? {
        return Err(ApiErr::not_found(format!("task {}", t.id)));
    }
    let task = c.task(&t.id).await?;
    let progress = c.store().task_progress(&task, c.st.cfg().cps_window_secs).await?;
    Ok(ok(crate::store::api::start_str(start), json!(progress)))
}

pub async fn start_task(t: TaskCtx) -> ApiResult {
    set_start(t, 1).await
}

pub async fn pause_task(t: TaskCtx) -> ApiResult {
    set_start(t, 0).await
}

pub async fn stop_task(t: TaskCtx) -> ApiResult {
    set_start(t, 2).await
}

/// Live progress: dialled, in flight, per-status counts, achieved CPS.
pub async fn task_status(t: TaskCtx) -> ApiResult {
    let st = &t.ctx.st;
    let progress = st.store().task_progress(&t.task, st.cfg().cps_window_secs).await?;
    let mut data = json!(progress);
    if let Some(c) = &st.cfg().cluster {
        // Nodes, their live calls and CPS per gateway across the cluster.
        match crate::cluster::status(st.store(), c).await {
            Ok(cs) => data["cluster"] = json!(cs),
            Err(e) => data["cluster"] = json!({"error": e.to_string()}),
        }
    }
    Ok(ok("ok", data))
}

/// Stream an upload of numbers (CSV, JSON array or NDJSON) into a task;
/// each number gets its province, city and operator from the location table.
pub async fn import_numbers(t: TaskCtx, headers: HeaderMap, body: Body) -> ApiResult {
    let c = &t.ctx;
    let format = match c.query.string("format")?.as_deref() {
        Some("csv") => Format::Csv,
        Some("json") | Some("ndjson") => Format::Json,
        Some(other) => return Err(ApiErr::param("format", format!("must be csv or json, got {other:?}"))),
        None => Format::guess(headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("")),
    };
    let locations = c.st.location_table().await?;
    let stream = body.into_data_stream().map_err(std::io::Error::other);
    let reader = tokio_util::io::StreamReader::new(stream);
    let report =
        import::import(c.store(), &locations, &t.id, &c.scope.tenant, reader, format).await.map_err(|e| match e {
            import::ImportError::Store(s) => ApiErr::from(s),
            other => ApiErr::param("body", other.to_string()),
        })?;
    Ok(ok("import finished", json!(report)))
}

/// Attach (or with `null`, detach) a dial-time group.
pub async fn set_task_dial_time(t: TaskCtx, BodyParams(p): BodyParams) -> ApiResult {
    let c = &t.ctx;
    if !p.0.contains_key("dial_time_group_id") {
        return Err(ApiErr::param("dial_time_group_id", "is required (null detaches)"));
    }
    let group = p.string("dial_time_group_id")?;
    if let Some(g) = &group {
        if !c.store().owned(OwnedTable::DialTimeGroups, g, &c.scope.tenant).await? {
            return Err(ApiErr::param("dial_time_group_id", format!("no dial-time group {g} for this account")));
        }
    }
    c.store().set_task_dial_time(&t.id, group.as_deref()).await?;
    Ok(ok("dial-time group set", json!({"uuid": t.id, "dial_time_id": group})))
}

/// Callback delivery log of a task: every webhook attempt, oldest first
/// (`webhook_deliveries`).
pub async fn callback_log(t: TaskCtx) -> ApiResult {
    Ok(listing(&t.ctx.store().deliveries(&t.id).await?))
}

// ---------------------------------------------------------------- scripts

pub async fn list_scripts(c: Ctx) -> ApiResult {
    Ok(listing(&c.store().list_script_groups(&c.scope.tenant).await?))
}

/// Import a script (`dialogue::Script` JSON); every validation problem is
/// listed in `data`.
pub async fn import_script(c: Ctx, body: Bytes) -> ApiResult {
    let text = std::str::from_utf8(&body).map_err(|_| ApiErr::param("body", "not UTF-8"))?;
    let script = Script::from_json(text).map_err(|e| ApiErr::param("body", format!("not a valid script: {e}")))?;
    let problems: Vec<String> = script.validate().iter().map(ToString::to_string).collect();
    if !problems.is_empty() {
        return Err(ApiErr::param(
            "body",
            format!("{} problem(s) in the script: {}", problems.len(), problems.join("; ")),
        )
        .with_data(json!(problems)));
    }
    let id = c.store().save_script(&c.scope.owner, &script).await?;
    Ok(created("script imported", json!({"id": id, "name": script.name, "utterances": script.utterances.len()})))
}

/// Export a script as it was imported (re-importable).
pub async fn export_script(c: Ctx, UrlPath(group_id): UrlPath<String>) -> ApiResult {
    let id: i64 =
        group_id.parse().map_err(|_| ApiErr::param("group_id", format!("must be an integer, got {group_id:?}")))?;
    let row = c
        .store()
        .script_group_in_tenant(id, &c.scope.tenant)
        .await?
        .ok_or_else(|| ApiErr::not_found(format!("script group {id}")))?;
    let def = row.get("definition").and_then(Value::as_str).unwrap_or("{}");
    let mut script: Script = serde_json::from_str(def)
        .map_err(|e| ApiErr::new(StatusCode::INTERNAL_SERVER_ERROR, format!("stored script: {e}")))?;
    script.id = id;
    Ok(ok("ok", json!(script)))
}

// ----------------------------------------------------------------- levels

pub async fn list_levels(c: Ctx) -> ApiResult {
    Ok(listing(&c.store().list_levels(&c.scope.tenant, c.query.int("group_id")?).await?))
}

pub async fn create_level(c: Ctx, BodyParams(p): BodyParams) -> ApiResult {
    let name = p.required_string("name")?;
    let min = p.int("min_score")?.ok_or_else(|| ApiErr::param("min_score", "is required"))?;
    let max = p.int("max_score")?.ok_or_else(|| ApiErr::param("max_score", "is required"))?;
    if max <= min {
        return Err(ApiErr::param("max_score", format!("must be greater than min_score ({max} ≤ {min})")));
    }
    let group = p.int("group_id")?;
    if let Some(g) = group {
        if c.store().script_group_in_tenant(g, &c.scope.tenant).await?.is_none() {
            return Err(ApiErr::param("group_id", format!("no script group {g} for this account")));
        }
    }
    let alias = p.string("alias")?;
    let color = p.string("color")?;
    let id = c
        .store()
        .create_level(
            &c.scope.owner,
            group,
            &name,
            alias.as_deref(),
            color.as_deref(),
            min,
            max,
            p.int("intention_results")?,
        )
        .await?;
    Ok(ok("level created", json!({"id": id})))
}

async fn delete_owned(c: Ctx, table: OwnedTable, id: String, what: &str) -> ApiResult {
    if !c.store().delete_owned(table, &id, &c.scope.tenant).await? {
        return Err(ApiErr::not_found(format!("{what} {id}")));
    }
    Ok(ok("deleted", json!({"id": id})))
}

pub async fn delete_level(c: Ctx, UrlPath(id): UrlPath<String>) -> ApiResult {
    delete_owned(c, OwnedTable::Levels, id, "level").await
}

// ------------------------------------------------------------------- tags

pub async fn list_tags(c: Ctx) -> ApiResult {
    Ok(listing(&c.store().list_tags(&c.scope.tenant).await?))
}

pub async fn create_tag(c: Ctx, BodyParams(p): BodyParams) -> ApiResult {
    let name = p.required_string("name")?;
    let groups = p.string_list("tag_group_ids")?;
    for g in &groups {
        if !c.store().owned(OwnedTable::TagGroups, g, &c.scope.tenant).await? {
            return Err(ApiErr::param("tag_group_ids", format!("no tag group {g} for this account")));
        }
    }
    let description = p.string("description")?;
    let color = p.string("color")?;
    let id = c.store().create_tag(&c.scope.owner, &name, description.as_deref(), color.as_deref(), &groups).await?;
    Ok(ok("tag created", json!({"id": id})))
}

pub async fn delete_tag(c: Ctx, UrlPath(id): UrlPath<String>) -> ApiResult {
    delete_owned(c, OwnedTable::Tags, id, "tag").await
}

pub async fn list_tag_groups(c: Ctx) -> ApiResult {
    Ok(listing(&c.store().list_tag_groups(&c.scope.tenant).await?))
}

pub async fn create_tag_group(c: Ctx, BodyParams(p): BodyParams) -> ApiResult {
    let name = p.required_string("name")?;
    let scene = p.string("tag_scene_id")?;
    let id = c.store().create_tag_group(&c.scope.owner, &name, scene.as_deref()).await?;
    Ok(ok("tag group created", json!({"id": id})))
}

pub async fn delete_tag_group(c: Ctx, UrlPath(id): UrlPath<String>) -> ApiResult {
    delete_owned(c, OwnedTable::TagGroups, id, "tag group").await
}

// -------------------------------------------------------------- blacklist

pub async fn list_blacklist(c: Ctx) -> ApiResult {
    let page = c.query.page()?;
    let (rows, total) = c.store().list_blacklist(&c.scope.tenant, page, PER_PAGE).await?;
    let mut v = json!({"data": rows, "total": total, "last_page": last_page(total, PER_PAGE)});
    if c.caller.0.mask_numbers {
        super::mask_numbers(&mut v);
    }
    Ok(ok("ok", v))
}

/// Add `number` or `numbers` (normalized) with an optional `reason`.
pub async fn add_blacklist(c: Ctx, BodyParams(p): BodyParams) -> ApiResult {
    let mut raw = p.string_list("numbers")?;
    if let Some(n) = p.string("number")? {
        raw.push(n);
    }
    if raw.is_empty() {
        return Err(ApiErr::param("numbers", "give number or numbers"));
    }
    if raw.len() > 10_000 {
        return Err(ApiErr::param("numbers", "at most 10000 per request"));
    }
    let mut numbers = Vec::with_capacity(raw.len());
    for (i, r) in raw.iter().enumerate() {
        numbers.push(normalize_number(r).map_err(|e| ApiErr::param("numbers", format!("item {i}: {e}")))?);
    }
    numbers.sort();
    numbers.dedup();
    let reason = p.string("reason")?.unwrap_or_default();
    let (added, already) = c.store().blacklist_add(&c.scope.owner, &c.scope.tenant, &numbers, &reason).await?;
    Ok(ok("blacklist updated", json!({"added": added, "already": already})))
}

pub async fn remove_blacklist(c: Ctx, UrlPath(number): UrlPath<String>) -> ApiResult {
    let n = normalize_number(&number).map_err(|e| ApiErr::param("number", e))?;
    if !c.store().remove_blacklist(&c.scope.tenant, &n).await? {
        return Err(ApiErr::not_found(format!("blacklisted number {number}")));
    }
    Ok(ok("removed", json!({"number": n})))
}

// -------------------------------------------------------- dial-time groups

pub async fn list_dial_time_groups(c: Ctx) -> ApiResult {
    Ok(listing(&c.store().list_dial_time_groups(&c.scope.tenant).await?))
}

/// `{name, timezone, weekdays, time_ranges, exclude_dates}`.
pub async fn create_dial_time_group(c: Ctx, BodyParams(p): BodyParams) -> ApiResult {
    let name = p.required_string("name")?;
    let timezone = p.string("timezone")?.unwrap_or_else(|| "Asia/Shanghai".into());
    let weekdays = p.int_list("weekdays")?;
    if weekdays.is_empty() {
        return Err(ApiErr::param("weekdays", "is required: 1 (Monday) … 7 (Sunday)"));
    }
    let weekdays = weekdays
        .into_iter()
        .map(|d| {
            u32::try_from(d)
                .ok()
                .filter(|d| (1..=7).contains(d))
                .ok_or_else(|| ApiErr::param("weekdays", format!("{d} is not 1–7")))
        })
        .collect::<Result<Vec<u32>, ApiErr>>()?;
    let time_ranges: Vec<(String, String)> = match p.get("time_ranges") {
        None => return Err(ApiErr::param("time_ranges", "is required: [[\"09:00\",\"12:00\"], …]")),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|_| ApiErr::param("time_ranges", format!("must be [[\"HH:MM\",\"HH:MM\"], …], got {v}")))?,
    };
    let exclude_dates = p.string_list("exclude_dates")?;
    let spec = DialWindowSpec { timezone, weekdays, time_ranges, exclude_dates };
    crate::dialer::window::DialWindow::new(&spec).map_err(|e| {
        let field = match e {
            crate::dialer::window::WindowError::TimeZone(_) => "timezone",
            crate::dialer::window::WindowError::Date(_) => "exclude_dates",
            crate::dialer::window::WindowError::Weekday(_) => "weekdays",
            _ => "time_ranges",
        };
        ApiErr::param(field, e)
    })?;
    let id = c.store().create_dial_time_group(&c.scope.owner, &name, &spec).await?;
    Ok(ok("dial-time group created", json!({"id": id})))
}

pub async fn delete_dial_time_group(c: Ctx, UrlPath(id): UrlPath<String>) -> ApiResult {
    delete_owned(c, OwnedTable::DialTimeGroups, id, "dial-time group").await
}
