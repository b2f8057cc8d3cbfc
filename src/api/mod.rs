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
    json(StatusCode::OK, serde_json::to_vec(r).unwrap_or_else(|_| b"{\"action\":\"noop\"}".to_vec()))
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

fn bad_request(e: &NotifyError) -> Response {
    let body = ErrorBody { error: e.to_string(), field: e.field() };
    json(StatusCode::BAD_REQUEST, serde_json::to_vec(&body).unwrap_or_default())
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

/// A body that could not be read (too large, connection lost).
pub(crate) fn bad_body(error: &str) -> Response {
    let body = ErrorBody { error: error.to_string(), field: None };
    json(StatusCode::BAD_REQUEST, serde_json::to_vec(&body).unwrap_or_default())
}

async fn healthz(State(st): State<SmartivrState>) -> Response {
    let body = serde_json::json!({"ok": true, "live_calls": st.live()});
    json(StatusCode::OK, body.to_string().into_bytes())
}
