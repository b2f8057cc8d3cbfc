//! The REST API: the seeds' record endpoints (v1 and agent-api), task
//! management, number import, scripts, levels, tags, blacklist, dial-time
//! groups, and the OpenAPI document.
//!
//! Every request carries `Authorization: Bearer TOKEN`; the token names an
//! account, and every query is limited to that account's [`Scope`], so
//! another tenant's ids find nothing (404, or the seed's error codes on the
//! agent-api). Errors share one envelope, `{code, status, message, data}`
//! as seed 001 shows it, plus `field` when one parameter is at fault.

pub mod manage;
pub mod params;
pub mod seed;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{DefaultBodyLimit, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::Router;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::voice::VoiceKeys;
use super::ApiError;
use crate::config::Config;
use crate::location::{LocationCache, LocationError, LocationTable};
use crate::store::api::{Principal, Scope};
use crate::store::{Store, StoreError};

/// `[api]` settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ApiConfig {
    /// Address the HTTP API listens on (`serve --http` overrides it). Unset:
    /// 127.0.0.1:8080, and a taken port only disables the API (the dialer
    /// still runs); set: a taken port stops the daemon.
    pub http: Option<String>,
    /// Base URL clients reach this node at, for `download_voice` links;
    /// empty: `http://{http}`.
    pub public_url: String,
    /// Secret of the signed voice keys. Empty: a random secret per process,
    /// so links stop working at restart.
    pub voice_key_secret: String,
    /// How long a `download_voice` link works.
    pub voice_url_ttl_secs: u64,
    /// Window of the achieved-CPS figure in task status.
    pub cps_window_secs: i64,
    /// Records (24 bytes each) the in-memory count index may hold, over
    /// all tasks: totals of `query_done_task_phones` filters that combine
    /// score, talk time, rounds and dates over tasks of at least 50,000
    /// records come from it (`store::count_index`). 0 turns it off.
    pub record_count_index_rows: usize,
    /// The node's `[cluster]` when it has a Redis: task status then also
    /// shows the cluster's live state. Set by [`spawn`], not read from `[api]`.
    #[serde(skip)]
    pub cluster: Option<crate::cluster::ClusterConfig>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig {
            http: None,
            public_url: String::new(),
            voice_key_secret: String::new(),
            voice_url_ttl_secs: 24 * 3600,
            cps_window_secs: 10,
            record_count_index_rows: 4_000_000,
            cluster: None,
        }
    }
}

/// Where the API listens when neither `--http` nor `[api] http` says.
pub const DEFAULT_HTTP: &str = "127.0.0.1:8080";

/// Numbers of rows per page, as the seeds fix it.
pub const PER_PAGE: i64 = 15;
/// Token lookups are cached this long; a revoked token dies within it.
const TOKEN_TTL: Duration = Duration::from_secs(5);

struct Inner {
    store: Store,
    cfg: ApiConfig,
    base_url: String,
    voice: VoiceKeys,
    voice_roots: Vec<PathBuf>,
    tokens: Mutex<HashMap<String, (Instant, Option<Principal>)>>,
    locations: Arc<LocationCache>,
}

/// Shared state of the REST API; cheap to clone.
#[derive(Clone)]
pub struct RestState {
    inner: Arc<Inner>,
}

/// Tasks with fewer records count combined range filters in SQL: a month
/// of 50,000 records is ~17,000 index entries, a few milliseconds.
pub const COUNT_INDEX_MIN_ROWS: usize = 50_000;

impl RestState {
    /// `voice_roots`: directories `download-voice` may serve files from.
    pub fn new(store: Store, cfg: ApiConfig, voice_roots: Vec<PathBuf>) -> RestState {
        RestState::with_locations(store, cfg, voice_roots, Arc::new(LocationCache::default()))
    }

    /// [`RestState::new`] sharing one location cache with the rest of the
    /// process (the finalizer fills records from the same table).
    pub fn with_locations(
        store: Store,
        cfg: ApiConfig,
        voice_roots: Vec<PathBuf>,
        locations: Arc<LocationCache>,
    ) -> RestState {
        let base_url = if cfg.public_url.is_empty() {
            format!("http://{}", cfg.http.as_deref().unwrap_or(DEFAULT_HTTP))
        } else {
            cfg.public_url.trim_end_matches('/').to_string()
        };
        let voice = VoiceKeys::new(&cfg.voice_key_secret);
        store.configure_count_index(cfg.record_count_index_rows, COUNT_INDEX_MIN_ROWS);
        RestState {
            inner: Arc::new(Inner {
                store,
                cfg,
                base_url,
                voice,
                voice_roots,
                tokens: Mutex::new(HashMap::new()),
                locations,
            }),
        }
    }

    pub fn locations(&self) -> &Arc<LocationCache> {
        &self.inner.locations
    }

    /// The location table, loaded on first use and reloaded after imports.
    pub(crate) async fn location_table(&self) -> Result<Arc<LocationTable>, ApiErr> {
        Ok(self.inner.locations.table(&self.inner.store).await?)
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn cfg(&self) -> &ApiConfig {
        &self.inner.cfg
    }

    pub(crate) fn voice(&self) -> &VoiceKeys {
        &self.inner.voice
    }

    pub(crate) fn voice_roots(&self) -> &[PathBuf] {
        &self.inner.voice_roots
    }

    /// A `download_voice` link for a file path.
    pub(crate) fn voice_url(&self, path: &str) -> String {
        let key = self.inner.voice.sign(path, self.inner.cfg.voice_url_ttl_secs);
        format!("{}/agent-api/download-voice?key={key}", self.inner.base_url)
    }

    async fn principal(&self, token: &str) -> Result<Option<Principal>, StoreError> {
        {
            let cache = self.inner.tokens.lock().unwrap_or_else(|p| p.into_inner());
            if let Some((at, p)) = cache.get(token) {
                if at.elapsed() < TOKEN_TTL {
                    return Ok(p.clone());
                }
            }
        }
        let p = self.inner.store.token_principal(token).await?;
        let mut cache = self.inner.tokens.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() > 10_000 {
            cache.clear();
        }
        cache.insert(token.to_string(), (Instant::now(), p.clone()));
        Ok(p)
    }
}

/// An API error: HTTP status, the envelope's `code`, and what went wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiErr {
    pub http: StatusCode,
    pub code: i64,
    pub message: String,
    /// The parameter at fault, if one is.
    pub field: Option<String>,
    /// The envelope's `data`: `[]`, or the list of problems.
    pub data: Value,
}

impl ApiErr {
    pub fn new(http: StatusCode, message: impl Into<String>) -> ApiErr {
        ApiErr { http, code: i64::from(http.as_u16()), message: message.into(), field: None, data: json!([]) }
    }
    /// A parameter is missing or invalid; the message names it.
    pub fn param(field: &str, problem: impl std::fmt::Display) -> ApiErr {
        ApiErr {
            http: StatusCode::BAD_REQUEST,
            code: 400,
            message: format!("{field}: {problem}"),
            field: Some(field.to_string()),
            data: json!([]),
        }
    }
    pub fn not_found(what: impl std::fmt::Display) -> ApiErr {
        ApiErr::new(StatusCode::NOT_FOUND, format!("{what} not found"))
    }
    /// Seed 001 answers its errors with HTTP 200 and a code in the body.
    pub fn seed(code: i64, message: &str) -> ApiErr {
        ApiErr { http: StatusCode::OK, code, message: message.into(), field: None, data: json!([]) }
    }
    pub fn with_data(mut self, data: Value) -> ApiErr {
        self.data = data;
        self
    }
}

impl From<StoreError> for ApiErr {
    fn from(e: StoreError) -> ApiErr {
        match e {
            StoreError::Invalid(m) => {
                let field = m.split(':').next().filter(|f| !f.contains(' ')).map(String::from);
                ApiErr { http: StatusCode::BAD_REQUEST, code: 400, message: m, field, data: json!([]) }
            }
            StoreError::TaskNotFound(t) => ApiErr::not_found(format!("task {t}")),
            other => {
                tracing::error!("API store error: {other}");
                ApiErr::new(StatusCode::INTERNAL_SERVER_ERROR, "database error")
            }
        }
    }
}

impl From<LocationError> for ApiErr {
    fn from(e: LocationError) -> ApiErr {
        match e {
            LocationError::Store(s) => ApiErr::from(s),
            other => {
                tracing::error!("API location data error: {other}");
                ApiErr::new(StatusCode::INTERNAL_SERVER_ERROR, "location data error")
            }
        }
    }
}

impl std::fmt::Display for ApiErr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ApiErr {}

impl IntoResponse for ApiErr {
    fn into_response(self) -> Response {
        let mut body = json!({"code": self.code, "status": "error", "message": self.message, "data": self.data});
        if let (Some(f), Some(o)) = (self.field, body.as_object_mut()) {
            o.insert("field".into(), Value::String(f));
        }
        json_response(self.http, &body)
    }
}

pub type ApiResult = Result<Response, ApiErr>;

pub(crate) fn json_response(status: StatusCode, v: &Value) -> Response {
    let body = serde_json::to_vec(v).unwrap_or_else(|_| b"{}".to_vec());
    (status, [(header::CONTENT_TYPE, "application/json; charset=utf-8")], body).into_response()
}

/// The seeds' success envelope.
pub(crate) fn ok(message: &str, data: Value) -> Response {
    json_response(StatusCode::OK, &json!({"code": 200, "status": "ok", "message": message, "data": data}))
}

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<RestState> for Caller {
    type Rejection = ApiErr;

    async fn from_request_parts(parts: &mut Parts, st: &RestState) -> Result<Caller, ApiErr> {
        let unauthorized = |m: &str| ApiErr::new(StatusCode::UNAUTHORIZED, m);
        let h = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| unauthorized("Authorization: missing; send \"Authorization: Bearer TOKEN\""))?;
        let h = h.to_str().map_err(|_| unauthorized("Authorization: not text"))?;
        let token = h
            .strip_prefix("Bearer ")
            .or_else(|| h.strip_prefix("bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| unauthorized("Authorization: expected \"Bearer TOKEN\""))?;
        match st.principal(token).await? {
            Some(p) => Ok(Caller(p)),
            None => Err(unauthorized("Authorization: unknown API token")),
        }
    }
}

impl Caller {
    /// The caller's scope, or acting for `sub_user_id` (404-style error when
    /// that is not one of its sub-accounts).
    pub async fn scope(&self, st: &RestState, sub_user_id: Option<&str>) -> Result<Scope, ApiErr> {
        st.store()
            .scope_of(&self.0, sub_user_id)
            .await?
            .ok_or_else(|| ApiErr::param("sub_user_id", "not a sub-account of this account"))
    }
}

/// What most handlers start with: the caller, resolved to its scope
/// (`?sub_user_id=` honoured), and the query parameters.
pub struct Ctx {
    pub st: RestState,
    pub caller: Caller,
    pub scope: Scope,
    pub query: params::Params,
}

impl FromRequestParts<RestState> for Ctx {
    type Rejection = ApiErr;

    async fn from_request_parts(parts: &mut Parts, st: &RestState) -> Result<Ctx, ApiErr> {
        let caller = Caller::from_request_parts(parts, st).await?;
        let query = params::Params::from_query(parts.uri.query().unwrap_or(""));
        let scope = caller.scope(st, query.string("sub_user_id")?.as_deref()).await?;
        Ok(Ctx { st: st.clone(), caller, scope, query })
    }
}

impl Ctx {
    pub fn store(&self) -> &Store {
        self.st.store()
    }

    /// A task of the caller's scope (404 for anyone else's).
    pub async fn task(&self, task_id: &str) -> Result<serde_json::Map<String, Value>, ApiErr> {
        self.store()
            .task_in_scope(task_id, &self.scope)
            .await?
            .ok_or_else(|| ApiErr::not_found(format!("task {task_id}")))
    }
}

/// [`Ctx`] and the task named by the path's `{task_id}`, checked to be in
/// the caller's scope.
pub struct TaskCtx {
    pub ctx: Ctx,
    pub id: String,
    pub task: serde_json::Map<String, Value>,
}

impl FromRequestParts<RestState> for TaskCtx {
    type Rejection = ApiErr;

    async fn from_request_parts(parts: &mut Parts, st: &RestState) -> Result<TaskCtx, ApiErr> {
        let ctx = Ctx::from_request_parts(parts, st).await?;
        let axum::extract::Path(id) = axum::extract::Path::<String>::from_request_parts(parts, st)
            .await
            .map_err(|e| ApiErr::param("task_id", e.body_text()))?;
        let task = ctx.task(&id).await?;
        Ok(TaskCtx { ctx, id, task })
    }
}

/// A request body's parameters (JSON object or form), by its Content-Type.
pub struct BodyParams(pub params::Params);

impl<S: Send + Sync> axum::extract::FromRequest<S> for BodyParams {
    type Rejection = ApiErr;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<BodyParams, ApiErr> {
        let ct = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(String::from);
        let body =
            axum::body::Bytes::from_request(req, state).await.map_err(|e| ApiErr::param("body", e.body_text()))?;
        let mut p = params::Params::default();
        p.merge_body(ct.as_deref(), &body)?;
        Ok(BodyParams(p))
    }
}

/// A list in the management envelope: `{data: [...], total}`.
pub(crate) fn listing<T: Serialize>(rows: &[T]) -> Response {
    ok("ok", json!({"data": rows, "total": rows.len()}))
}

/// Mask phone numbers in a response for tokens with `mask_numbers`: every
/// `callee` / `number` value, and the same digits wherever else they occur
/// (recording paths carry the number too).
pub fn mask_numbers(v: &mut Value) {
    let mut raw = Vec::new();
    collect_numbers(v, &mut raw);
    raw.sort();
    raw.dedup();
    raw.sort_by_key(|n: &String| std::cmp::Reverse(n.len()));
    if !raw.is_empty() {
        replace_numbers(v, &raw);
    }
}

/// `13812345678` → `138****5678`; short numbers keep their last two digits.
pub fn mask(n: &str) -> String {
    let chars: Vec<char> = n.chars().collect();
    let len = chars.len();
    if len >= 7 {
        let head: String = chars[..3].iter().collect();
        let tail: String = chars[len - 4..].iter().collect();
        format!("{head}{}{tail}", "*".repeat(len - 7))
    } else if len > 2 {
        format!("{}{}", "*".repeat(len - 2), chars[len - 2..].iter().collect::<String>())
    } else {
        "*".repeat(len)
    }
}

fn collect_numbers(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("callee" | "number" | "phone", Value::String(s)) if s.len() >= 5 => out.push(s.clone()),
                    _ => collect_numbers(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_numbers(x, out)),
        _ => {}
    }
}

fn replace_numbers(v: &mut Value, raw: &[String]) {
    match v {
        Value::String(s) if raw.iter().any(|n| s.contains(n.as_str())) => {
            let mut t = s.clone();
            for n in raw {
                if t.contains(n.as_str()) {
                    t = t.replace(n.as_str(), &mask(n));
                }
            }
            *s = t;
        }
        Value::Object(m) => m.values_mut().for_each(|x| replace_numbers(x, raw)),
        Value::Array(a) => a.iter_mut().for_each(|x| replace_numbers(x, raw)),
        _ => {}
    }
}

/// The REST routes (without `/healthz`, which the daemon adds).
pub fn router(state: RestState) -> Router {
    use manage as m;
    use seed as s;
    Router::new()
        .route("/openapi.json", get(openapi_json))
        // Seed 000 (both with and without the leading slash the seed shows).
        .route("/v1/task/query_done_task_phones", post(s::query_done_task_phones).get(s::query_done_task_phones))
        .route("/v1/task/number", get(s::task_numbers))
        .route("/v1/record/{record_id}", get(s::record_brief))
        .route("/v1/task/record_info/{task_id}/{record_id}", get(s::record_info))
        // Seed 001.
        .route("/agent-api/user/{id}/task/{task_id}/detail/{record_id}", get(s::agent_detail))
        .route("/agent-api/download-voice", get(s::download_voice))
        .route("/api/agent-api/download-voice", get(s::download_voice))
        // Management.
        .route("/v1/tasks", get(m::list_tasks).post(m::create_task))
        .route("/v1/tasks/{task_id}", get(m::get_task).put(m::update_task).patch(m::update_task).delete(m::delete_task))
        .route("/v1/tasks/{task_id}/start", post(m::start_task))
        .route("/v1/tasks/{task_id}/pause", post(m::pause_task))
        .route("/v1/tasks/{task_id}/stop", post(m::stop_task))
        .route("/v1/tasks/{task_id}/status", get(m::task_status))
        .route("/v1/tasks/{task_id}/numbers", post(m::import_numbers).layer(DefaultBodyLimit::disable()))
        .route("/v1/tasks/{task_id}/dial_time_group", put(m::set_task_dial_time))
        .route("/v1/tasks/{task_id}/callbacks", get(m::callback_log))
        .route("/v1/scripts", get(m::list_scripts).post(m::import_script))
        .route("/v1/scripts/{group_id}", get(m::export_script))
        .route("/v1/levels", get(m::list_levels).post(m::create_level))
        .route("/v1/levels/{id}", axum::routing::delete(m::delete_level))
        .route("/v1/tags", get(m::list_tags).post(m::create_tag))
        .route("/v1/tags/{id}", axum::routing::delete(m::delete_tag))
        .route("/v1/tag_groups", get(m::list_tag_groups).post(m::create_tag_group))
        .route("/v1/tag_groups/{id}", axum::routing::delete(m::delete_tag_group))
        .route("/v1/blacklist", get(m::list_blacklist).post(m::add_blacklist))
        .route("/v1/blacklist/{number}", axum::routing::delete(m::remove_blacklist))
        .route("/v1/dial_time_groups", get(m::list_dial_time_groups).post(m::create_dial_time_group))
        .route("/v1/dial_time_groups/{id}", axum::routing::delete(m::delete_dial_time_group))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> ApiErr {
    ApiErr::not_found(format!("route {}", uri.path()))
}

async fn openapi_json() -> Response {
    json_response(StatusCode::OK, &super::openapi::document())
}

async fn healthz() -> Response {
    json_response(StatusCode::OK, &json!({"ok": true}))
}

/// Bind the API's listener (`http` overrides `[api] http`) and serve the REST
/// routes until `cancel`. `serve()` calls this in one line; binding happens
/// before it returns, so a taken port that was asked for fails at startup.
/// The default port being taken only disables the API.
pub async fn spawn(
    cfg: &Config,
    store: Store,
    http: Option<&str>,
    module_calls: crate::dialer::call::ModuleCalls,
    cancel: CancellationToken,
) -> Result<tokio::task::JoinHandle<Result<(), ApiError>>, ApiError> {
    let mut api = cfg.api.clone();
    if let Some(h) = http {
        api.http = Some(h.to_string());
    }
    let listener = match tokio::net::TcpListener::bind(api.http.as_deref().unwrap_or(DEFAULT_HTTP)).await {
        Ok(l) => l,
        Err(e) if api.http.is_none() => {
            tracing::warn!("REST API disabled: cannot listen on {DEFAULT_HTTP}: {e} (set [api] http or --http)");
            return Ok(tokio::spawn(async { Ok(()) }));
        }
        Err(e) => return Err(e.into()),
    };
    let addr = listener.local_addr()?;
    api.http = Some(addr.to_string());
    api.cluster = cfg.cluster.redis_url.as_ref().map(|_| cfg.cluster.clone());
    let roots = vec![PathBuf::from(&cfg.dialer.recordings_root), PathBuf::from(&cfg.dialer.audio_root)];
    let state = RestState::new(store.clone(), api, roots);
    let app = router(state).route("/healthz", get(healthz));
    // The smartivr flow protocol on the same listener; its turn journal sits
    // beside the finalizer's spool.
    let journal_dir = PathBuf::from(&cfg.finalizer.spool_dir).with_file_name("journal");
    let sconf = crate::api::SmartivrConfig {
        node_id: cfg.dialer.node_id.clone(),
        journal_dir,
        status_rules: cfg.status_rules.clone(),
        recycle: cfg.recycle.clone(),
        ..crate::api::SmartivrConfig::default()
    };
    // Smartivr connections are served on their own thread (see `api::front`).
    let front = super::front::serve(listener, app, store, sconf, module_calls, cancel).await?;
    tracing::info!("voxdial API listening on http://{addr}");
    println!("voxdial API listening on http://{addr}");
    Ok(front.stopped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_numbers_everywhere() {
        assert_eq!(mask("18651683344"), "186****3344");
        assert_eq!(mask("12345"), "***45");
        let mut v =
            json!({"callee": "18651683344", "recordfile": "/r/18651683344.1.wav", "x": [{"number": "13912345678"}]});
        mask_numbers(&mut v);
        assert_eq!(v["callee"], "186****3344");
        assert_eq!(v["recordfile"], "/r/186****3344.1.wav");
        assert_eq!(v["x"][0]["number"], "139****5678");
    }
}
