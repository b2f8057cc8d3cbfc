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
//! socket with the bytes already read, to the caller's runtime, where the
//! REST API serves it. Both sides know every route (the rare other request
//! on a smartivr connection is served by hyper with the REST router on the
//! smartivr thread, and a `POST /smartivr` on a REST connection reaches the
//! same sessions), so routing by connection is an optimisation, never a
//! behaviour change. This is what `smartivr-server` measures.
//!
//! Why a loop of its own instead of hyper for the smartivr requests: at
//! ~9 small requests per call, hyper's generic machinery (header maps,
//! body streams, the service and response types, `writev`) cost about as
//! much CPU as the endpoint's own work. The loop here parses each request
//! head with `httparse` straight from the connection's buffer, answers
//! from the body slice, and writes head and body with one `write`; it
//! serves keep-alive, pipelining, partial reads, `Content-Length` bodies
//! and `Connection: close`, answers malformed requests with a JSON 4xx and
//! closes, and hands the connection (with what it buffered) to hyper for
//! anything else (another route, a chunked body, `Expect`).

use std::convert::Infallible;
use std::io::Write as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower_service::Service;

use super::{answer, answer_into, bad_body, smartivr_router, ApiError, SmartivrConfig, SmartivrState, WriterMode};
use crate::dialer::call::ModuleCalls;
use crate::store::Store;

/// The request line that sends a connection to the smartivr thread.
const SMARTIVR_LINE: &[u8] = b"POST /smartivr";
/// A client that sent fewer bytes than the request line for this long is
/// handed to the REST side, which applies its own timeouts.
const PEEK_FOR: Duration = Duration::from_secs(5);
/// Largest `POST /smartivr` body (axum's default body limit).
const BODY_LIMIT: usize = 2 << 20;
/// Largest request head (request line and headers).
const HEAD_LIMIT: usize = 16 << 10;
/// Headers parsed per request; a request with more goes to hyper.
const MAX_HEADERS: usize = 32;
/// A request that started arriving is dropped (with the connection) when
/// no more of it arrives for this long (hyper's header read timeout is
/// 30 s too, counted from the head's start).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// A keep-alive connection with no request for this long is closed. Long:
/// the module sends nothing while a prompt plays or the customer speaks.
const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Read buffer of a connection (grown for larger requests).
const READ_BUF: usize = 4096;

/// The running listener; `stopped` resolves once both sides finished their
/// connections and the smartivr batch writer drained its queue.
pub struct Front {
    /// `None`: the smartivr endpoint could not start (logged); the REST API
    /// still serves.
    pub state: Option<SmartivrState>,
    pub stopped: tokio::task::JoinHandle<Result<(), ApiError>>,
}

/// A connection for the REST side, with the bytes the smartivr thread
/// already read from it.
type HandOff = (std::net::TcpStream, Vec<u8>);

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
    let (to_rest, from_front) = mpsc::unbounded_channel::<HandOff>();
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
struct Handed(mpsc::UnboundedReceiver<HandOff>);

impl axum::serve::Listener for Handed {
    type Io = Prefixed<TcpStream>;
    type Addr = Option<std::net::SocketAddr>;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Some((s, read)) = self.0.recv().await else {
                // The smartivr thread stopped accepting: nothing comes any more.
                return std::future::pending().await;
            };
            // Registered with this runtime's reactor from here on.
            match TcpStream::from_std(s) {
                Ok(s) => {
                    let addr = s.peer_addr().ok();
                    return (Prefixed::new(read, s), addr);
                }
                Err(e) => tracing::debug!("handed connection dropped: {e}"),
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(None)
    }
}

/// A stream whose first bytes were already read elsewhere: reads return
/// those bytes first, then what the stream delivers.
pub struct Prefixed<S> {
    pre: Vec<u8>,
    pos: usize,
    io: S,
}

impl<S> Prefixed<S> {
    fn new(pre: Vec<u8>, io: S) -> Prefixed<S> {
        Prefixed { pre, pos: 0, io }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Prefixed<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.pos < this.pre.len() && buf.remaining() > 0 {
            let n = (this.pre.len() - this.pos).min(buf.remaining());
            buf.put_slice(&this.pre[this.pos..this.pos + n]);
            this.pos += n;
            if this.pos == this.pre.len() {
                this.pre = Vec::new();
                this.pos = 0;
            }
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Prefixed<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

async fn accept_loop(
    listener: TcpListener,
    state: Option<SmartivrState>,
    app: Router,
    to_rest: mpsc::UnboundedSender<HandOff>,
    cancel: CancellationToken,
) {
    let conns = TaskTracker::new();
    loop {
        let mut stream = tokio::select! {
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
            let mut read = Vec::with_capacity(READ_BUF);
            let smartivr = state.is_some() && starts_smartivr(&mut stream, &mut read).await;
            match state {
                Some(st) if smartivr => serve_smartivr(stream, read, st, app, cancel).await,
                _ => match stream.into_std() {
                    Ok(s) => {
                        let _ = to_rest.send((s, read));
                    }
                    Err(e) => tracing::debug!("connection lost before hand-over: {e}"),
                },
            }
        });
    }
    conns.close();
    conns.wait().await;
}

/// Read the connection's first bytes into `buf` until they show whether
/// they are `POST /smartivr` followed by a space or a query (usually the
/// first read holds the whole request).
async fn starts_smartivr(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let deadline = Instant::now() + PEEK_FOR;
    loop {
        let m = buf.len().min(SMARTIVR_LINE.len());
        if buf[..m] != SMARTIVR_LINE[..m] {
            return false;
        }
        if buf.len() > SMARTIVR_LINE.len() {
            return matches!(buf[SMARTIVR_LINE.len()], b' ' | b'?');
        }
        match tokio::time::timeout_at(deadline, stream.read_buf(buf)).await {
            Ok(Ok(n)) if n > 0 => {}
            // Closed, failed or too slow: the REST side answers (or not).
            _ => return false,
        }
    }
}

/// What the head at the start of a buffer asks for.
#[derive(Debug, PartialEq, Eq)]
enum Parsed {
    /// More bytes are needed.
    Partial,
    /// A complete `POST /smartivr`: the request takes `head + body` bytes,
    /// the body being the last `body`; `close`: the connection ends after
    /// the reply; `keep_alive_10`: an HTTP/1.0 client asked to keep it.
    Smartivr { head: usize, body: usize, close: bool, keep_alive_10: bool },
    /// Any other request, or one this loop does not serve (chunked body,
    /// `Expect`, many headers): hyper serves the connection from here on.
    Other,
    /// A request that cannot be served: answered with this status and
    /// error, then the connection is closed.
    Refused(StatusCode, String),
}

/// Parse the request at the start of `buf` (see [`Parsed`]).
fn parse_request(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let head = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() > HEAD_LIMIT => {
            return Parsed::Refused(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                format!("request head larger than {HEAD_LIMIT} bytes"),
            )
        }
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(httparse::Error::TooManyHeaders) => return Parsed::Other,
        Err(e) => return Parsed::Refused(StatusCode::BAD_REQUEST, format!("malformed HTTP request: {e}")),
    };
    let path = req.path.unwrap_or("");
    let route = path.strip_prefix("/smartivr").is_some_and(|rest| rest.is_empty() || rest.starts_with('?'));
    if req.method != Some("POST") || !route {
        return Parsed::Other;
    }
    let http10 = req.version == Some(0);
    let (mut len, mut close, mut keep_alive) = (None::<usize>, false, false);
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = std::str::from_utf8(h.value).ok().map(str::trim).filter(|v| v.bytes().all(|b| b.is_ascii_digit()));
            let Some(n) = v.and_then(|v| v.parse::<usize>().ok()) else {
                return Parsed::Refused(StatusCode::BAD_REQUEST, "invalid Content-Length".into());
            };
            if len.is_some_and(|l| l != n) {
                return Parsed::Refused(StatusCode::BAD_REQUEST, "conflicting Content-Length headers".into());
            }
            len = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") || h.name.eq_ignore_ascii_case("expect") {
            return Parsed::Other;
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    let body = len.unwrap_or(0);
    if body > BODY_LIMIT {
        return Parsed::Refused(StatusCode::PAYLOAD_TOO_LARGE, format!("body larger than {BODY_LIMIT} bytes"));
    }
    if buf.len() - head < body {
        return Parsed::Partial;
    }
    let close = close || (http10 && !keep_alive);
    Parsed::Smartivr { head, body, close, keep_alive_10: http10 && !close }
}

thread_local! {
    /// The `Date` header's value and its second, formatted once per second
    /// for every connection of the thread.
    static DATE: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((0, String::new())) };
}

/// Append `date: <now>\r\n` (RFC 9110 IMF-fixdate).
fn push_date(out: &mut Vec<u8>) {
    let now = SystemTime::now();
    let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    DATE.with_borrow_mut(|(at, text)| {
        if *at != secs || text.is_empty() {
            *at = secs;
            *text = chrono::DateTime::<chrono::Utc>::from(now).format("%a, %d %b %Y %H:%M:%S GMT").to_string();
        }
        out.extend_from_slice(b"date: ");
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\r\n");
    });
}

/// Append a JSON response to `out`.
fn push_response(out: &mut Vec<u8>, status: StatusCode, body: &[u8], connection: Option<&str>) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\ncontent-type: application/json\r\ncontent-length: ");
    // Writing into a Vec cannot fail.
    let _ = write!(out, "{}", body.len());
    if let Some(c) = connection {
        out.extend_from_slice(b"\r\nconnection: ");
        out.extend_from_slice(c.as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    push_date(out);
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
}

/// One smartivr connection on this thread, `read` holding what was already
/// read from it: `POST /smartivr` requests straight to the sessions (see
/// the module docs), anything else through hyper and the full router.
async fn serve_smartivr(
    mut stream: TcpStream,
    mut read: Vec<u8>,
    st: SmartivrState,
    app: Router,
    cancel: CancellationToken,
) {
    let mut out: Vec<u8> = Vec::with_capacity(1024);
    let mut reply: Vec<u8> = Vec::with_capacity(512);
    let stop = cancel.cancelled();
    tokio::pin!(stop);
    let mut stopping = false;
    // One timer per connection, re-armed lazily: it fires at most every
    // REQUEST_TIMEOUT, and only then is the real deadline checked.
    let mut last_read = Instant::now();
    let timer = tokio::time::sleep(REQUEST_TIMEOUT);
    tokio::pin!(timer);
    loop {
        // Answer every complete request buffered, in order.
        let mut used = 0;
        let mut end = false;
        loop {
            match parse_request(&read[used..]) {
                Parsed::Partial => break,
                Parsed::Smartivr { head, body, close, keep_alive_10 } => {
                    let req_body = &read[used + head..used + head + body];
                    let status = answer_into(&st, req_body, &mut reply).await;
                    used += head + body;
                    let close = close || stopping;
                    let connection = if close {
                        Some("close")
                    } else if keep_alive_10 {
                        Some("keep-alive")
                    } else {
                        None
                    };
                    push_response(&mut out, status, &reply, connection);
                    if close {
                        end = true;
                        break;
                    }
                }
                Parsed::Other => {
                    if !out.is_empty() && stream.write_all(&out).await.is_err() {
                        return;
                    }
                    read.drain(..used);
                    serve_hyper(Prefixed::new(read, stream), st, app, cancel.clone()).await;
                    return;
                }
                Parsed::Refused(status, error) => {
                    let body = super::error_body(&error);
                    push_response(&mut out, status, &body, Some("close"));
                    end = true;
                    break;
                }
            }
        }
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        if end {
            linger(stream).await;
            return;
        }
        read.drain(..used);
        if stopping && read.is_empty() {
            return;
        }
        if read.capacity() - read.len() < READ_BUF / 4 {
            read.reserve(READ_BUF);
        }
        // Wait for more bytes.
        loop {
            tokio::select! {
                r = stream.read_buf(&mut read) => {
                    match r {
                        Ok(n) if n > 0 => {
                            last_read = Instant::now();
                            break;
                        }
                        // Closed by the client (a partial request is dropped) or failed.
                        _ => return,
                    }
                }
                _ = &mut stop, if !stopping => {
                    // Shutdown: an idle connection closes now, a request
                    // being received is still answered (then closed).
                    if read.is_empty() {
                        return;
                    }
                    stopping = true;
                }
                _ = &mut timer => {
                    let limit = if read.is_empty() { IDLE_TIMEOUT } else { REQUEST_TIMEOUT };
                    if last_read.elapsed() >= limit {
                        tracing::debug!("smartivr connection timed out");
                        return;
                    }
                    let next = (last_read + limit).min(Instant::now() + REQUEST_TIMEOUT);
                    timer.as_mut().reset(next);
                }
            }
        }
    }
}

/// Close after a last answer: send FIN, then read and drop what the client
/// still sends (a refused request's rest, pipelined requests) for a moment,
/// so that closing with unread bytes does not reset the connection and
/// destroy the answer before the client read it.
async fn linger(mut stream: TcpStream) {
    if stream.shutdown().await.is_err() {
        return;
    }
    let mut scratch = [0_u8; 4096];
    let mut left = BODY_LIMIT;
    let drain = async {
        while left > 0 {
            match stream.read(&mut scratch).await {
                Ok(n) if n > 0 => left = left.saturating_sub(n),
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), drain).await;
}

/// The rest of a smartivr connection served by hyper: `POST /smartivr`
/// straight to the sessions, anything else through the full router.
async fn serve_hyper(io: Prefixed<TcpStream>, st: SmartivrState, app: Router, cancel: CancellationToken) {
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
    let conn = b.serve_connection(TokioIo::new(io), svc);
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

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &[u8] = b"POST /smartivr HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}";

    #[test]
    fn a_request_is_complete_only_with_its_whole_body() {
        for cut in 0..REQ.len() {
            assert_eq!(parse_request(&REQ[..cut]), Parsed::Partial, "cut at {cut}");
        }
        let whole = Parsed::Smartivr { head: REQ.len() - 2, body: 2, close: false, keep_alive_10: false };
        assert_eq!(parse_request(REQ), whole);
        // A pipelined second request does not change the first.
        let two = [REQ, REQ].concat();
        assert_eq!(parse_request(&two), whole);
    }

    #[test]
    fn connection_tokens_and_http10() {
        let r = b"POST /smartivr?x=1 HTTP/1.1\r\nConnection: Keep-Alive, Close\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(parse_request(r), Parsed::Smartivr { close: true, .. }));
        let r = b"POST /smartivr HTTP/1.0\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(parse_request(r), Parsed::Smartivr { close: true, .. }));
        let r = b"POST /smartivr HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n";
        assert!(matches!(parse_request(r), Parsed::Smartivr { close: false, keep_alive_10: true, .. }));
    }

    #[test]
    fn other_requests_go_to_hyper() {
        for r in [
            &b"GET /healthz HTTP/1.1\r\n\r\n"[..],
            b"POST /smartivrx HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
            b"POST /smartivr HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST /smartivr HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
        ] {
            assert_eq!(parse_request(r), Parsed::Other, "{}", String::from_utf8_lossy(r));
        }
    }

    #[test]
    fn garbage_is_refused() {
        for r in [
            &b"\x00\x01garbage\r\n\r\n"[..],
            b"POST /smartivr HTTP/1.1\r\nContent-Length: x\r\n\r\n",
            b"POST /smartivr HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
            b"POST /smartivr HTTP/1.1\r\nContent-Length: 99999999999\r\n\r\n",
        ] {
            assert!(matches!(parse_request(r), Parsed::Refused(..)), "{}", String::from_utf8_lossy(r));
        }
        let huge = [&b"POST /smartivr HTTP/1.1\r\nX: "[..], &vec![b'a'; HEAD_LIMIT + 1]].concat();
        assert!(
            matches!(parse_request(&huge), Parsed::Refused(s, _) if s == StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE)
        );
    }
}
