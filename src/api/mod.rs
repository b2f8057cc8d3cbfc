//! The daemon's HTTP API: `POST /smartivr`, the flow endpoint of the
//! smartivr robot modules, `GET /healthz`, and the REST API ([`rest`]) with
//! the seeds' record endpoints, task management and number import.
//!
//! One [`Dialogue`] per live callid lives in memory ([`session`]); every
//! transcript row is appended to the [`journal`] before the reply leaves, and
//! the call's database rows are written once, after `leave`, in batches.

pub mod front;
pub mod import;
pub mod journal;
pub mod openapi;
pub mod rest;
pub mod session;
pub mod voice;

use std::path::PathBuf;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::dialogue::smartivr::{Notify, NotifyError, Reply, ReplyOptions};
use crate::finalize::status::StatusRules;
use crate::finalize::RecyclePolicy;
use crate::store::StoreError;

pub use journal::{Durability, Journal, JournalError, WriterMode};
pub use session::SmartivrState;

/// Settings of the smartivr endpoint.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct SmartivrConfig {
    /// Names this node's journal segments.
    pub node_id: String,
    pub journal_dir: PathBuf,
    pub durability: Durability,
    /// A writer thread, or inline on the runtime serving the endpoint (only
    /// for a `current_thread` runtime of its own). The daemon's listener
    /// ([`front`]) always writes inline on its `smartivr-http` thread.
    pub journal_writer: WriterMode,
    /// Script group used when `flowid` names no task; `None`: the sample script.
    pub fallback_group: Option<i64>,
    /// Owner of records of calls whose `flowid` names no task.
    pub fallback_user: String,
    /// Live calls beyond this are answered with a hang-up.
    pub max_sessions: usize,
    /// A call not heard from for this long is finalized as it stands.
    pub idle_timeout_secs: u64,
    pub reply: ReplyOptions,
    /// `[status_rules]` of the config: the status of calls finalized here
    /// (the daemon passes its own; a configured override must apply to
    /// smartivr calls as to dialled ones).
    pub status_rules: StatusRules,
    /// `[recycle]` of the config: which statuses are redialled, and when.
    pub recycle: RecyclePolicy,
}

impl Default for SmartivrConfig {
    fn default() -> Self {
        SmartivrConfig {
            node_id: "node1".into(),
            journal_dir: PathBuf::from("voxdial-data/journal"),
            durability: Durability::Fsync,
            journal_writer: WriterMode::Thread,
            fallback_group: None,
            fallback_user: "smartivr".into(),
            max_sessions: 20_000,
            idle_timeout_secs: 600,
            reply: ReplyOptions::default(),
            status_rules: StatusRules::default(),
            recycle: RecyclePolicy::default(),
        }
    }
}

impl SmartivrConfig {
    pub fn idle_timeout(&self) -> Duration {
        Duration::from_secs(self.idle_timeout_secs.max(1))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("HTTP server: {0}")]
    Io(#[from] std::io::Error),
}

/// The routes, for embedding or tests.
/// Only `POST /smartivr`, for mounting beside the REST API.
pub fn smartivr_router(state: SmartivrState) -> Router {
    Router::new().route("/smartivr", post(smartivr)).with_state(state)
}

pub fn router(state: SmartivrState) -> Router {
    Router::new().route("/smartivr", post(smartivr)).route("/healthz", get(healthz)).with_state(state)
}

/// Serve the API on `listener` until `cancel`, then finish in-flight requests.
pub async fn serve_http(
    listener: tokio::net::TcpListener,
    state: SmartivrState,
    cancel: CancellationToken,
) -> Result<(), ApiError> {
    use axum::serve::ListenerExt;
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(state)).with_graceful_shutdown(cancel.cancelled_owned()).await?;
    Ok(())
}

fn json(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A JSON reply; serializing these plain structs cannot fail.
pub(crate) fn reply_response(r: &Reply) -> Response {
    let mut body = Vec::with_capacity(256);
    write_reply(r, &mut body);
    json(StatusCode::OK, body)
}

/// Append the JSON of `r` to `out`.
fn write_reply(r: &Reply, out: &mut Vec<u8>) {
    let at = out.len();
    if serde_json::to_writer(&mut *out, r).is_err() {
        out.truncate(at);
        out.extend_from_slice(b"{\"action\":\"noop\"}");
    }
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

/// `{"error": …}`, the body of every 4xx answer.
pub(crate) fn error_body(error: &str) -> Vec<u8> {
    serde_json::to_vec(&ErrorBody { error, field: None }).unwrap_or_default()
}

fn bad_request(e: &NotifyError) -> Response {
    let mut body = Vec::new();
    let status = write_bad_request(e, &mut body);
    json(status, body)
}

fn write_bad_request(e: &NotifyError, out: &mut Vec<u8>) -> StatusCode {
    let _ = serde_json::to_writer(&mut *out, &ErrorBody { error: &e.to_string(), field: e.field() });
    StatusCode::BAD_REQUEST
}

async fn smartivr(State(st): State<SmartivrState>, body: Bytes) -> Response {
    answer(&st, &body).await
}

/// The reply to one `POST /smartivr` body.
pub(crate) async fn answer(st: &SmartivrState, body: &[u8]) -> Response {
    match Notify::parse(body) {
        Ok(n) => reply_response(&st.handle(n).await),
        Err(e) => bad_request(&e),
    }
}

/// [`answer`] into `out` (cleared first): its status, and the JSON body in
/// `out`, with no response object (the smartivr listener's own loop).
pub(crate) async fn answer_into(st: &SmartivrState, body: &[u8], out: &mut Vec<u8>) -> StatusCode {
    out.clear();
    match Notify::parse(body) {
        Ok(n) => {
            write_reply(&st.handle(n).await, out);
            StatusCode::OK
        }
        Err(e) => write_bad_request(&e, out),
    }
}

/// A body that could not be read (too large, connection lost).
pub(crate) fn bad_body(error: &str) -> Response {
    json(StatusCode::BAD_REQUEST, error_body(error))
}

async fn healthz(State(st): State<SmartivrState>) -> Response {
    let body = serde_json::json!({"ok": true, "live_calls": st.live()});
    json(StatusCode::OK, body.to_string().into_bytes())
}
