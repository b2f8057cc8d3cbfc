//! The daemon's HTTP listener, split by connection: a smartivr robot
//! module keeps one keep-alive connection per call and sends only
//! `POST /smartivr` on it, so the first request line decides where the
//! whole connection is served.
//!
//! One thread (`smartivr-http`) runs a `current_thread` runtime that
//! accepts every connection of the listener, owns the smartivr sessions and
//! writes their journal inline ([`WriterMode::Inline`]): a connection whose
//! first bytes are `POST /smartivr` is served there, with no hand-off
//! between threads per request. Any other connection is handed, as a plain
//! socket, to the caller's runtime, where the REST API serves it. Both sides
//! know every route (the rare other request on a smartivr connection runs
//! the REST router on the smartivr thread, and a `POST /smartivr` on a REST
//! connection reaches the same sessions), so routing by connection is an
//! optimisation, never a behaviour change. This is what `smartivr-server`
//! measures.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

use super::{answer, bad_body, smartivr_router, ApiError, SmartivrConfig, SmartivrState, WriterMode};
use crate::dialer::call::ModuleCalls;
use crate::store::Store;

/// The request line that sends a connection to the smartivr thread.
const SMARTIVR_LINE: &[u8] = b"POST /smartivr";
/// A client that sent fewer bytes than the request line for this long is
/// handed to the REST side, which applies its own timeouts.
const PEEK_FOR: Duration = Duration::from_secs(5);
/// Largest `POST /smartivr` body (axum's default body limit).
const BODY_LIMIT: usize = 2 << 20;

/// The running listener; `stopped` resolves once both sides finished their
/// connections and the smartivr batch writer drained its queue.
pub struct Front {
    /// `None`: the smartivr endpoint could not start (logged); the REST API
    /// still serves.
    pub state: Option<SmartivrState>,
    pub stopped: tokio::task::JoinHandle<Result<(), ApiError>>,
}

/// Serve `rest` and `POST /smartivr` on `listener` until `cancel` (see the
/// module docs). `cfg.journal_writer` is forced to [`WriterMode::Inline`].
/// Must be called within a multi-thread runtime, which serves the REST side.
pub async fn serve(
    listener: TcpListener,
    rest: Router,
    store: Store,
    mut cfg: SmartivrConfig,
    module_calls: ModuleCalls,
    cancel: CancellationToken,
) -> Result<Front, ApiError> {
    cfg.journal_writer = WriterMode::Inline;
    let listener = listener.into_std()?;
    let (to_rest, from_front) = mpsc::unbounded_channel::<std::net::TcpStream>();
    let (started_tx, started_rx) = oneshot::channel::<Option<SmartivrState>>();
    let (app_tx, app_rx) = oneshot::channel::<Router>();
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let c = cancel.clone();
    // Built here so that a failure fails the caller, not a thread nobody watches.
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("smartivr-http".into()).spawn(move || {
        rt.block_on(async move {
            let state = match SmartivrState::start_with(store, cfg, module_calls, c.clone()).await {
                Ok(s) => Some(s),
                Err(e) => {
                    tracing::warn!("POST /smartivr disabled: {e}");
                    None
                }
            };
            let _ = started_tx.send(state.clone());
            let Ok(app) = app_rx.await else { return };
            match TcpListener::from_std(listener) {
                Ok(l) => accept_loop(l, state.clone(), app, to_rest, c).await,
                Err(e) => tracing::error!("smartivr listener: {e}"),
            }
            if let Some(st) = state {
                st.stopped().await;
            }
            // The inline journal writer stops (and syncs) once the last
            // handle is gone.
            tokio::time::sleep(Duration::from_millis(20)).await;
        });
        let _ = done_tx.send(());
    })?;
    let state = started_rx.await.ok().flatten();
    let app = match &state {
        Some(st) => rest.merge(smartivr_router(st.clone())),
        None => rest,
    };
    let _ = app_tx.send(app.clone());
    let stopped = tokio::spawn(async move {
        let served = axum::serve(Handed(from_front), app).with_graceful_shutdown(cancel.cancelled_owned()).await;
        let _ = done_rx.await;
        served.map_err(ApiError::from)
    });
    Ok(Front { state, stopped })
}

/// Connections handed over by the smartivr thread, as an axum listener.
struct Handed(mpsc::UnboundedReceiver<std::net::TcpStream>);

impl axum::serve::Listener for Handed {
    type Io = TcpStream;
    type Addr = Option<std::net::SocketAddr>;

    async fn accept(&mut self) -> (TcpStream, Self::Addr) {
        loop {
            let Some(s) = self.0.recv().await else {
                // The smartivr thread stopped accepting: nothing comes any more.
                return std::future::pending().await;
            };
            // Registered with this runtime's reactor from here on.
            match TcpStream::from_std(s) {
                Ok(s) => {
                    let addr = s.peer_addr().ok();
                    return (s, addr);
                }
                Err(e) => tracing::debug!("handed connection dropped: {e}"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(None)
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Option<SmartivrState>,
    app: Router,
    to_rest: mpsc::UnboundedSender<std::net::TcpStream>,
    cancel: CancellationToken,
) {
    let conns = TaskTracker::new();
    loop {
        let stream = tokio::select! {
            _ = cancel.cancelled() => break,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of file descriptors and the like: back off a little.
                    tracing::warn!("accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let (state, app, to_rest, cancel) = (state.clone(), app.clone(), to_rest.clone(), cancel.clone());
        conns.spawn(async move {
            match (state, is_smartivr(&stream).await) {
                (Some(st), true) => serve_smartivr(stream, st, app, cancel).await,
                _ => match stream.into_std() {
                    Ok(s) => {
                        let _ = to_rest.send(s);
                    }
                    Err(e) => tracing::debug!("connection lost before hand-over: {e}"),
                },
            }
        });
    }
    conns.close();
    conns.wait().await;
}

/// Whether the connection's first bytes are `POST /smartivr` followed by a
/// space or a query.
async fn is_smartivr(stream: &TcpStream) -> bool {
    let mut buf = [0_u8; SMARTIVR_LINE.len() + 1];
    let deadline = tokio::time::Instant::now() + PEEK_FOR;
    loop {
        let n = tokio::select! {
            r = stream.peek(&mut buf) => match r {
                Ok(n) => n,
                Err(_) => return false,
            },
            _ = tokio::time::sleep_until(deadline) => return false,
        };
        if n == 0 {
            return false;
        }
        let m = n.min(SMARTIVR_LINE.len());
        if buf[..m] != SMARTIVR_LINE[..m] {
            return false;
        }
        if n == buf.len() {
            return matches!(buf[SMARTIVR_LINE.len()], b' ' | b'?');
        }
        // Only part of the line arrived: `peek` returns at once while any
        // byte is buffered, so wait a little for the rest.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// One smartivr connection on this thread: `POST /smartivr` straight to the
/// sessions, anything else through the full router.
async fn serve_smartivr(stream: TcpStream, st: SmartivrState, app: Router, cancel: CancellationToken) {
    let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
        let (st, mut app) = (st.clone(), app.clone());
        async move {
            if req.method() == Method::POST && req.uri().path() == "/smartivr" {
                let resp = match axum::body::to_bytes(Body::new(req.into_body()), BODY_LIMIT).await {
                    Ok(body) => answer(&st, &body).await,
                    Err(e) => bad_body(&e.to_string()),
                };
                return Ok::<Response, Infallible>(resp);
            }
            app.call(req.map(Body::new)).await
        }
    });
    let mut b = hyper::server::conn::http1::Builder::new();
    b.timer(TokioTimer::new());
    let conn = b.serve_connection(TokioIo::new(stream), svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::trace!("smartivr connection: {e}");
            }
            return;
        }
        _ = cancel.cancelled() => conn.as_mut().graceful_shutdown(),
    }
    if let Err(e) = conn.await {
        tracing::trace!("smartivr connection: {e}");
    }
}
