//! Async inbound ESL client.
//!
//! One reader task and one writer task own the socket. Replies are matched to
//! commands by order: the writer pushes a reply slot onto a FIFO *before* it
//! writes the command's bytes, so a reply can never arrive ahead of its slot,
//! and a caller that gave up (timeout, cancellation) still consumes its slot.
//! `bgapi` results are routed by a Job-UUID we generate, and channel events by
//! `Unique-ID` to per-call subscribers.
//!
//! Overflow policy: each call subscriber has a bounded queue. A subscriber
//! whose queue is full is dropped (not the event stream): its receiver drains
//! what was queued, then reports [`CallEventsEnd::Lagged`], and the layer above
//! reconciles the call with `uuid_exists` / `show channels`. Events nobody
//! subscribed to go to a broadcast channel whose slow receivers lose the oldest.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::codec::{FramedRead, FramedWrite};
use tokio_util::sync::CancellationToken;

use crate::codec::{Command, ContentType, EslCodec, Frame};
use crate::error::EslError;
use crate::event::Event;

/// Event encoding to subscribe with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EventFormat {
    #[default]
    Plain,
    Json,
}

impl EventFormat {
    fn as_str(self) -> &'static str {
        match self {
            EventFormat::Plain => "plain",
            EventFormat::Json => "json",
        }
    }
}

/// What to connect to and how.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub addr: String,
    pub password: String,
    pub format: EventFormat,
    /// Event names to subscribe (`ALL`, `CHANNEL_ANSWER`, `CUSTOM sub::class` …).
    /// `BACKGROUND_JOB` is always added: bgapi results depend on it.
    pub events: Vec<String>,
    pub connect_timeout: Duration,
    pub command_timeout: Duration,
    /// Capacity of each per-call event queue.
    pub call_queue: usize,
}

impl ClientConfig {
    pub fn new(addr: impl Into<String>, password: impl Into<String>) -> Self {
        ClientConfig {
            addr: addr.into(),
            password: password.into(),
            format: EventFormat::Plain,
            events: vec!["ALL".into()],
            connect_timeout: Duration::from_secs(5),
            command_timeout: Duration::from_secs(10),
            call_queue: 1024,
        }
    }
}

type ReplySlot = oneshot::Sender<Result<Frame, EslError>>;

struct Request {
    cmd: Command,
    reply: ReplySlot,
}

/// Counters describing the connection, readable at any time.
#[derive(Debug, Default)]
pub struct ClientStats {
    pub events: AtomicU64,
    pub frames: AtomicU64,
    pub lagged_subscribers: AtomicU64,
    /// Microseconds between `Event-Date-Timestamp` and our receipt of the
    /// latest event: how far behind FreeSWITCH's event stream we are.
    pub consumer_lag_us: AtomicI64,
}

struct Route {
    tx: mpsc::Sender<Arc<Event>>,
    lagged: Arc<AtomicBool>,
}

struct Inner {
    cmd_tx: mpsc::Sender<Request>,
    routes: Mutex<HashMap<String, Route>>,
    jobs: Mutex<HashMap<String, oneshot::Sender<Arc<Event>>>>,
    others: broadcast::Sender<Arc<Event>>,
    closed: CancellationToken,
    close_reason: Mutex<Option<String>>,
    stats: ClientStats,
    cfg: ClientConfig,
    /// When the connection was set up; `last_rx_ms` counts from here.
    started: Instant,
    /// Milliseconds after `started` at which bytes last arrived (liveness).
    last_rx_ms: AtomicU64,
}

impl Inner {
    fn touch(&self) {
        let ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_rx_ms.store(ms, Ordering::Relaxed);
    }
}

/// A cheap, cloneable handle to one ESL connection.
#[derive(Clone)]
pub struct EslClient {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EslClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EslClient").field("addr", &self.inner.cfg.addr).finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these short critical sections cannot leave
    // the maps inconsistent, so a poisoned lock is still usable.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

async fn next_frame(
    r: &mut FramedRead<tokio::net::tcp::OwnedReadHalf, EslCodec>,
    stage: &'static str,
) -> Result<Frame, EslError> {
    match r.next().await {
        Some(Ok(f)) => Ok(f),
        Some(Err(e)) => Err(e.into()),
        None => Err(EslError::Handshake { stage, detail: "connection closed".into() }),
    }
}

impl EslClient {
    /// Connect, authenticate and subscribe. Fails with
    /// [`EslError::AuthFailed`] on a wrong password.
    pub async fn connect(cfg: ClientConfig) -> Result<EslClient, EslError> {
        Self::connect_inner(cfg, None).await
    }

    /// Like [`connect`](Self::connect), plus a lossless stream of every event
    /// in wire order (events are still routed to call and job subscribers).
    ///
    /// The stream holds about `capacity` events (in batches of up to 128, one
    /// batch per socket read, so a wake-up is not paid per event); when it is
    /// full the reader
    /// waits, which pushes back on the socket instead of dropping or growing.
    /// So keep draining it: a task that awaits a command reply without also
    /// draining the stream can stall the connection once the stream is full.
    pub async fn connect_with_events(cfg: ClientConfig, capacity: usize) -> Result<(EslClient, EventStream), EslError> {
        let (tx, rx) = mpsc::channel(capacity.div_ceil(READ_BATCH).max(2));
        let client = Self::connect_inner(cfg, Some(tx)).await?;
        Ok((client, EventStream { rx, ready: Vec::new().into_iter() }))
    }

    async fn connect_inner(
        cfg: ClientConfig,
        firehose: Option<mpsc::Sender<Vec<Arc<Event>>>>,
    ) -> Result<EslClient, EslError> {
        let stream = tokio::time::timeout(cfg.connect_timeout, TcpStream::connect(&cfg.addr))
            .await
            .map_err(|_| EslError::Connect {
                addr: cfg.addr.clone(),
                source: std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
            })?
            .map_err(|e| EslError::Connect { addr: cfg.addr.clone(), source: e })?;
        stream.set_nodelay(true).ok();
        let (rd, wr) = stream.into_split();
        let mut reader = FramedRead::with_capacity(rd, EslCodec::default(), 256 * 1024);
        let mut writer = FramedWrite::new(wr, EslCodec::default());

        let hs = async {
            let greet = next_frame(&mut reader, "greeting").await?;
            if greet.content_type != ContentType::AuthRequest {
                return Err(EslError::Handshake { stage: "greeting", detail: format!("{:?}", greet.content_type) });
            }
            writer.send(Command { text: format!("auth {}", cfg.password), body: None }).await?;
            let reply = next_frame(&mut reader, "auth").await?;
            if !reply.reply_ok() {
                return Err(EslError::AuthFailed { reply: reply.reply_text() });
            }
            let mut events: Vec<String> = cfg.events.clone();
            if !events.iter().any(|e| e == "ALL" || e == "BACKGROUND_JOB") {
                events.push("BACKGROUND_JOB".into());
            }
            writer
                .send(Command { text: format!("event {} {}", cfg.format.as_str(), events.join(" ")), body: None })
                .await?;
            let reply = next_frame(&mut reader, "event subscription").await?;
            if !reply.reply_ok() {
                return Err(EslError::CommandFailed(reply.reply_text()));
            }
            Ok(())
        };
        tokio::time::timeout(cfg.connect_timeout, hs).await.map_err(|_| EslError::Handshake {
            stage: "handshake",
            detail: format!("no answer within {:?}", cfg.connect_timeout),
        })??;

        let (cmd_tx, cmd_rx) = mpsc::channel::<Request>(4096);
        let (others, _) = broadcast::channel(4096);
        let inner = Arc::new(Inner {
            cmd_tx,
            routes: Mutex::new(HashMap::new()),
            jobs: Mutex::new(HashMap::new()),
            others,
            closed: CancellationToken::new(),
            close_reason: Mutex::new(None),
            stats: ClientStats::default(),
            cfg,
            started: Instant::now(),
            last_rx_ms: AtomicU64::new(0),
        });
        let pending: Arc<Mutex<VecDeque<ReplySlot>>> = Arc::new(Mutex::new(VecDeque::new()));
        tokio::spawn(write_loop(writer, cmd_rx, pending.clone(), inner.clone()));
        tokio::spawn(read_loop(reader, pending, inner.clone(), firehose));
        Ok(EslClient { inner })
    }

    /// Resolves when the connection has ended.
    pub async fn closed(&self) {
        self.inner.closed.cancelled().await
    }

    pub fn is_closed(&self) -> bool {
        self.inner.closed.is_cancelled()
    }

    /// Why the connection ended, if it has.
    pub fn close_reason(&self) -> Option<String> {
        lock(&self.inner.close_reason).clone()
    }

    /// How long since the last frame arrived (or since connecting, if none
    /// has). FreeSWITCH sends HEARTBEAT every 20 s, so a much longer silence
    /// means a dead peer or a half-open socket.
    pub fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.inner.last_rx_ms.load(Ordering::Relaxed));
        self.inner.started.elapsed().saturating_sub(last)
    }

    pub fn stats(&self) -> &ClientStats {
        &self.inner.stats
    }

    /// Drop the connection now, recording `reason` as the close reason (unless
    /// it has already ended). In-flight commands fail with that reason. Used
    /// when the peer is alive at the TCP level but no longer talks to us.
    pub fn abort(&self, reason: impl Into<String>) {
        {
            let mut r = lock(&self.inner.close_reason);
            if r.is_none() {
                *r = Some(reason.into());
            }
        }
        self.inner.closed.cancel();
    }

    /// Send `exit` and wait for the connection to close.
    pub async fn shutdown(&self) {
        let _ = self.command("exit").await;
        self.inner.closed.cancel();
    }

    fn check_line(cmd: &str) -> Result<(), EslError> {
        if cmd.is_empty() || cmd.contains('\n') || cmd.contains('\r') {
            return Err(EslError::InvalidCommand(format!("{cmd:?} is empty or contains a newline")));
        }
        Ok(())
    }

    async fn request(&self, cmd: Command) -> Result<Frame, EslError> {
        if self.inner.closed.is_cancelled() {
            return Err(EslError::Closed { reason: self.close_reason() });
        }
        let (tx, rx) = oneshot::channel();
        self.inner
            .cmd_tx
            .send(Request { cmd, reply: tx })
            .await
            .map_err(|_| EslError::Closed { reason: self.close_reason() })?;
        let t = self.inner.cfg.command_timeout;
        match tokio::time::timeout(t, rx).await {
            Err(_) => Err(EslError::Timeout(t)),
            Ok(Err(_)) => Err(EslError::Closed { reason: self.close_reason() }),
            Ok(Ok(r)) => r,
        }
    }

    /// Send a raw command line (`event …`, `filter …`, `exit`) and return its
    /// `command/reply` frame.
    pub async fn command(&self, line: &str) -> Result<Frame, EslError> {
        Self::check_line(line)?;
        self.request(Command { text: line.to_string(), body: None }).await
    }

    /// Send a command with extra header lines and an optional body
    /// (`sendevent`, `sendmsg`). `Content-Length` is added for the body.
    pub async fn command_with_body(
        &self,
        line: &str,
        headers: &[(&str, &str)],
        body: Option<Bytes>,
    ) -> Result<Frame, EslError> {
        Self::check_line(line)?;
        let mut text = line.to_string();
        for (k, v) in headers {
            Self::check_line(k)?;
            if v.contains('\n') || v.contains('\r') {
                return Err(EslError::InvalidCommand(format!("header {k} contains a newline")));
            }
            text.push('\n');
            text.push_str(k);
            text.push_str(": ");
            text.push_str(v);
        }
        if let Some(b) = &body {
            text.push_str(&format!("\nContent-Length: {}", b.len()));
        }
        self.request(Command { text, body }).await
    }

    /// `api <cmd>`: the response body. `-ERR …` answers are returned as text,
    /// not as errors, because callers such as `uuid_exists` need them.
    pub async fn api(&self, cmd: &str) -> Result<String, EslError> {
        Self::check_line(cmd)?;
        let f = self.request(Command { text: format!("api {cmd}"), body: None }).await?;
        Ok(f.reply_text())
    }

    /// `bgapi <cmd>` with a Job-UUID we choose, registered before the command
    /// is written so the BACKGROUND_JOB can never be missed.
    pub async fn bgapi(&self, cmd: &str) -> Result<BgJob, EslError> {
        Self::check_line(cmd)?;
        let job = uuid::Uuid::new_v4().to_string();
        let (tx, rx) = oneshot::channel();
        lock(&self.inner.jobs).insert(job.clone(), tx);
        let res = self.request(Command { text: format!("bgapi {cmd}\nJob-UUID: {job}"), body: None }).await;
        match res {
            Ok(f) if f.reply_ok() => Ok(BgJob { job_uuid: job, rx, client: self.clone() }),
            Ok(f) => {
                lock(&self.inner.jobs).remove(&job);
                Err(EslError::CommandFailed(f.reply_text()))
            }
            Err(e) => {
                lock(&self.inner.jobs).remove(&job);
                Err(e)
            }
        }
    }

    /// Receive every event whose `Unique-ID` is `uuid`, from now on. Register
    /// before the originate so no early event is lost.
    pub fn subscribe_call(&self, uuid: &str) -> CallEvents {
        let (tx, rx) = mpsc::channel(self.inner.cfg.call_queue.max(1));
        let lagged = Arc::new(AtomicBool::new(false));
        lock(&self.inner.routes).insert(uuid.to_string(), Route { tx, lagged: lagged.clone() });
        CallEvents { uuid: uuid.to_string(), rx, lagged, inner: Arc::downgrade(&self.inner) }
    }

    /// Events not routed to a call or job (HEARTBEAT, events of unknown calls…).
    pub fn other_events(&self) -> broadcast::Receiver<Arc<Event>> {
        self.inner.others.subscribe()
    }
}

/// Every event of one connection, in wire order, without loss (see
/// [`EslClient::connect_with_events`]). Ends when the connection does.
pub struct EventStream {
    rx: mpsc::Receiver<Vec<Arc<Event>>>,
    ready: std::vec::IntoIter<Arc<Event>>,
}

impl EventStream {
    /// The next event, or `None` once the connection has ended and every
    /// event read before that has been delivered.
    pub async fn recv(&mut self) -> Option<Arc<Event>> {
        loop {
            if let Some(ev) = self.ready.next() {
                return Some(ev);
            }
            self.ready = self.rx.recv().await?.into_iter();
        }
    }
}

/// A pending `bgapi` job.
pub struct BgJob {
    pub job_uuid: String,
    rx: oneshot::Receiver<Arc<Event>>,
    client: EslClient,
}

impl BgJob {
    /// Wait for the BACKGROUND_JOB event and return its body (`+OK …` / `-ERR …`).
    pub async fn result(self) -> Result<String, EslError> {
        let reason = || EslError::Closed { reason: self.client.close_reason() };
        let ev = self.rx.await.map_err(|_| reason())?;
        Ok(ev.body_text().map(|b| b.into_owned()).unwrap_or_default())
    }
}

/// Why a call's event stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallEventsEnd {
    /// The subscriber fell `call_queue` events behind and was dropped.
    Lagged,
    /// The ESL connection ended.
    Disconnected,
}

/// The events of one channel.
pub struct CallEvents {
    uuid: String,
    rx: mpsc::Receiver<Arc<Event>>,
    lagged: Arc<AtomicBool>,
    inner: std::sync::Weak<Inner>,
}

impl CallEvents {
    /// The next event, or why there will be none.
    pub async fn recv(&mut self) -> Result<Arc<Event>, CallEventsEnd> {
        match self.rx.recv().await {
            Some(ev) => Ok(ev),
            None if self.lagged.load(Ordering::Acquire) => Err(CallEventsEnd::Lagged),
            None => Err(CallEventsEnd::Disconnected),
        }
    }

    pub fn uuid(&self) -> &str {
        &self.uuid
    }
}

impl Drop for CallEvents {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.upgrade() {
            let mut routes = lock(&inner.routes);
            // Only remove our own route (a re-subscription may have replaced it).
            if routes.get(&self.uuid).is_some_and(|r| Arc::ptr_eq(&r.lagged, &self.lagged)) {
                routes.remove(&self.uuid);
            }
        }
    }
}

async fn write_loop(
    mut writer: FramedWrite<tokio::net::tcp::OwnedWriteHalf, EslCodec>,
    mut rx: mpsc::Receiver<Request>,
    pending: Arc<Mutex<VecDeque<ReplySlot>>>,
    inner: Arc<Inner>,
) {
    loop {
        let req = tokio::select! {
            _ = inner.closed.cancelled() => break,
            r = rx.recv() => match r { Some(r) => r, None => break },
        };
        // Push the slot, then write: the reply cannot overtake its slot.
        let mut batch = vec![req];
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        let mut failed = None;
        for Request { cmd, reply } in batch {
            if failed.is_some() {
                let _ = reply.send(Err(EslError::Closed { reason: failed.clone() }));
                continue;
            }
            lock(&pending).push_back(reply);
            if let Err(e) = writer.feed(cmd).await {
                failed = Some(format!("write failed: {e}"));
            }
        }
        if failed.is_none() {
            if let Err(e) = writer.flush().await {
                failed = Some(format!("write failed: {e}"));
            }
        }
        if let Some(reason) = failed {
            close(&inner, &pending, reason);
            break;
        }
    }
    // Fail requests that were queued but never written.
    rx.close();
    while let Ok(r) = rx.try_recv() {
        let _ = r.reply.send(Err(EslError::Closed { reason: lock(&inner.close_reason).clone() }));
    }
}

fn close(inner: &Inner, pending: &Mutex<VecDeque<ReplySlot>>, reason: String) {
    {
        let mut r = lock(&inner.close_reason);
        if r.is_none() {
            *r = Some(reason);
        }
    }
    let reason = lock(&inner.close_reason).clone();
    for slot in lock(pending).drain(..) {
        let _ = slot.send(Err(EslError::Closed { reason: reason.clone() }));
    }
    lock(&inner.routes).clear();
    lock(&inner.jobs).clear();
    inner.closed.cancel();
}

fn now_us() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// Frames handled per wake-up of the reader: enough to amortise the hand-off
/// to the event stream, small enough to bound a batch's memory.
const READ_BATCH: usize = 128;

async fn read_loop(
    reader: FramedRead<tokio::net::tcp::OwnedReadHalf, EslCodec>,
    pending: Arc<Mutex<VecDeque<ReplySlot>>>,
    inner: Arc<Inner>,
    mut firehose: Option<mpsc::Sender<Vec<Arc<Event>>>>,
) {
    // Every frame already decodable is taken in one go, so the event stream
    // gets one message per socket read rather than a wake-up per event.
    let mut frames = reader.ready_chunks(READ_BATCH);
    let mut notice: Option<String> = None;
    let reason = 'conn: loop {
        let chunk = tokio::select! {
            _ = inner.closed.cancelled() => break "closed by client".to_string(),
            c = frames.next() => c,
        };
        let Some(chunk) = chunk else {
            break notice.take().unwrap_or_else(|| "FreeSWITCH closed the socket".into());
        };
        inner.touch();
        let mut batch = Vec::with_capacity(if firehose.is_some() { chunk.len() } else { 0 });
        let mut ended = None;
        let mut newest = None;
        for frame in chunk {
            let frame = match frame {
                Ok(f) => f,
                Err(e) => {
                    ended = Some(format!("protocol error: {e}"));
                    break;
                }
            };
            inner.stats.frames.fetch_add(1, Ordering::Relaxed);
            match frame.content_type {
                ContentType::CommandReply | ContentType::ApiResponse => {
                    let slot = lock(&pending).pop_front();
                    match slot {
                        Some(s) => {
                            let _ = s.send(Ok(frame));
                        }
                        None => {
                            ended = Some("reply received with no command outstanding".to_string());
                            break;
                        }
                    }
                }
                ContentType::EventPlain | ContentType::EventJson | ContentType::EventXml => {
                    let ev = match Event::from_frame(&frame) {
                        Ok(Some(ev)) => Arc::new(ev),
                        Ok(None) => continue,
                        Err(e) => {
                            ended = Some(format!("protocol error: {e}"));
                            break;
                        }
                    };
                    inner.stats.events.fetch_add(1, Ordering::Relaxed);
                    newest = Some(ev.clone());
                    if firehose.is_some() {
                        batch.push(ev.clone());
                    }
                    dispatch(&inner, ev);
                }
                ContentType::DisconnectNotice => {
                    notice = Some(format!("FreeSWITCH disconnected: {}", String::from_utf8_lossy(&frame.body).trim()));
                }
                ContentType::RudeRejection => {
                    ended = Some(format!(
                        "FreeSWITCH rejected the connection: {}",
                        String::from_utf8_lossy(&frame.body).trim()
                    ));
                    break;
                }
                _ => {}
            }
        }
        // Once per read: how far behind FreeSWITCH's clock the newest event is.
        if let Some(ts) = newest.and_then(|ev| ev.header("Event-Date-Timestamp").and_then(|t| t.parse::<i64>().ok())) {
            inner.stats.consumer_lag_us.store(now_us() - ts, Ordering::Relaxed);
        }
        // Events read before a protocol error are still delivered.
        if let (Some(tx), false) = (&firehose, batch.is_empty()) {
            let sent = tokio::select! {
                _ = inner.closed.cancelled() => break 'conn "closed by client".to_string(),
                r = tx.send(batch) => r,
            };
            if sent.is_err() {
                // Nobody reads the stream any more; stop feeding it.
                firehose = None;
            }
        }
        if let Some(reason) = ended {
            break reason;
        }
    };
    tracing::debug!(%reason, "ESL connection ended");
    close(&inner, &pending, reason);
}

fn dispatch(inner: &Inner, ev: Arc<Event>) {
    if ev.name().as_deref() == Some("BACKGROUND_JOB") {
        if let Some(job) = ev.job_uuid() {
            let waiter = lock(&inner.jobs).remove(job.as_ref());
            if let Some(w) = waiter {
                let _ = w.send(ev);
                return;
            }
        }
    }
    if let Some(uuid) = ev.unique_id() {
        let mut routes = lock(&inner.routes);
        if let Some(route) = routes.get(uuid.as_ref()) {
            match route.tx.try_send(ev.clone()) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    route.lagged.store(true, Ordering::Release);
                    inner.stats.lagged_subscribers.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(uuid = %uuid, "call event subscriber lagged; dropped");
                    routes.remove(uuid.as_ref());
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    routes.remove(uuid.as_ref());
                }
            }
        }
    }
    let _ = inner.others.send(ev);
}
