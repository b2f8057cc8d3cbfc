//! A simulated FreeSWITCH: an inbound Event Socket server on loopback that
//! speaks the wire format of the captures in `tests/fixtures/esl/`, places
//! simulated calls and plays simulated callees.
//!
//! Tests, the demo and benchmarks run against it; production runs the same
//! voxdial code against a real FreeSWITCH. It keeps its own count of live
//! channels and a log of every originate so tests can prove what was dialled,
//! independently of what the dialer believes.

pub mod dialstring;
pub mod fate;
pub mod smartivr;
pub mod wire;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use self::dialstring::Endpoint;
use self::fate::{Fate, FateMix, Persona};
use self::wire::{Channel, Format, Hangup, Phase, Renderer};

/// Simulator settings.
#[derive(Debug, Clone)]
pub struct SimConfig {
    pub password: String,
    /// Gateway names that exist; others get `-ERR INVALID_GATEWAY`.
    pub gateways: Vec<String>,
    pub seed: u64,
    /// Network and callee delays are divided by this (1 = real time).
    pub time_scale: f64,
    pub mix: FateMix,
    /// `max-sessions`; beyond it originates fail with DESTINATION_OUT_OF_ORDER.
    pub max_sessions: usize,
    pub heartbeat: Duration,
    pub recordings_root: String,
    /// How callee speech reaches ESL clients.
    pub asr: SimAsr,
    /// Append every originate as one JSON line here (for multi-process tests).
    pub originate_log: Option<std::path::PathBuf>,
    /// Play the mod_smartivr robot module against this flow URL for
    /// answered calls (`sim::smartivr`), instead of parking them for an ESL
    /// dialogue.
    pub smartivr_url: Option<String>,
    /// Write the audio files a real FreeSWITCH would: each `uuid_record`
    /// (per-sentence) recording as a small valid WAV when it stops. Off by
    /// default so that campaigns do not fill the disk.
    pub write_audio: bool,
}

/// The recognition transport the simulated ASR uses on the event socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SimAsr {
    /// `DETECTED_SPEECH` (`Speech-Type` begin-speaking / detected-speech, NLSML body).
    DetectedSpeech,
    /// An ASR module's `CUSTOM` event of this subclass, queued to the session
    /// like `sendevent` with a `Unique-ID` (headers `Speech-Type`, `ASR-Text`).
    Custom(String),
}

impl Default for SimConfig {
    fn default() -> Self {
        SimConfig {
            password: "ClueCon".into(),
            gateways: vec!["voxdial-sim".into(), "sipp".into()],
            seed: 1,
            time_scale: 1.0,
            mix: FateMix::default(),
            max_sessions: 10_000,
            heartbeat: Duration::from_secs(20),
            recordings_root: "/usr/local/freeswitch/recordings".into(),
            asr: SimAsr::DetectedSpeech,
            originate_log: None,
            smartivr_url: None,
            write_audio: false,
        }
    }
}

/// Errors starting the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("cannot listen on {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
}

/// One originate the simulator received.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OriginateRecord {
    pub uuid: String,
    pub number: String,
    pub gateway: String,
    pub at_ms: i64,
    pub fate: Option<Fate>,
}

/// The simulator's own counters.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct SimStats {
    pub originates: u64,
    pub live: i64,
    pub max_concurrent: i64,
    pub answered: u64,
}

enum ChanCmd {
    Kill(String),
    Broadcast(String),
    Break,
    SetVar(String, String),
    Transfer,
    /// `uuid_record … start|stop <path>`.
    Record {
        path: String,
        stop: bool,
    },
}

#[derive(Default)]
struct Subscription {
    format: Option<Format>,
    all: bool,
    names: HashSet<String>,
    subclasses: HashSet<String>,
}

impl Subscription {
    fn wants(&self, name: &str, subclass: Option<&str>) -> bool {
        if self.format.is_none() {
            return false;
        }
        if self.all {
            return true;
        }
        match subclass {
            Some(sc) if name == "CUSTOM" => self.subclasses.contains(sc),
            _ => self.names.contains(name),
        }
    }
}

struct Conn {
    tx: mpsc::UnboundedSender<Bytes>,
    sub: Arc<Mutex<Subscription>>,
}

struct ChanEntry {
    tx: mpsc::UnboundedSender<ChanCmd>,
    info: Arc<Mutex<Channel>>,
}

struct State {
    cfg: SimConfig,
    renderer: Renderer,
    conns: Mutex<HashMap<u64, Conn>>,
    next_conn: AtomicU64,
    channels: Mutex<HashMap<String, ChanEntry>>,
    originates: AtomicU64,
    answered: AtomicU64,
    live: AtomicI64,
    max_live: AtomicI64,
    log: Mutex<Vec<OriginateRecord>>,
    max_sessions: AtomicU64,
    cancel: CancellationToken,
    started: std::time::Instant,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl State {
    fn scaled(&self, ms: u64) -> Duration {
        Duration::from_secs_f64(ms as f64 / 1000.0 / self.cfg.time_scale.max(0.001))
    }

    fn subscribers(&self) -> Vec<(mpsc::UnboundedSender<Bytes>, Arc<Mutex<Subscription>>)> {
        lock(&self.conns).values().map(|c| (c.tx.clone(), c.sub.clone())).collect()
    }

    /// Render `phase` to every subscribed connection, then apply its state
    /// changes to `ch` once.
    fn emit(&self, phase: &Phase, ch: &mut Channel) {
        for (tx, sub) in self.subscribers() {
            let sub = lock(&sub);
            let Some(fmt) = sub.format else { continue };
            let mut copy = ch.clone();
            let mut out = BytesMut::new();
            self.renderer.phase(fmt, phase, &mut copy, &|n, sc| sub.wants(n, sc), &mut out);
            if !out.is_empty() {
                let _ = tx.send(out.freeze());
            }
        }
        let mut sink = BytesMut::new();
        self.renderer.phase(Format::Plain, phase, ch, &|_, _| false, &mut sink);
    }

    fn emit_with(&self, name: &str, subclass: Option<&str>, render: impl Fn(Format) -> Bytes) {
        for (tx, sub) in self.subscribers() {
            let sub = lock(&sub);
            if let Some(fmt) = sub.format {
                if sub.wants(name, subclass) {
                    let _ = tx.send(render(fmt));
                }
            }
        }
    }

    fn stats(&self) -> SimStats {
        SimStats {
            originates: self.originates.load(Ordering::Relaxed),
            live: self.live.load(Ordering::Relaxed),
            max_concurrent: self.max_live.load(Ordering::Relaxed),
            answered: self.answered.load(Ordering::Relaxed),
        }
    }
}

/// A running simulator.
pub struct SimHandle {
    addr: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
}

impl SimHandle {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn stats(&self) -> SimStats {
        self.state.stats()
    }

    /// Every originate received, in order.
    pub fn originate_log(&self) -> Vec<OriginateRecord> {
        lock(&self.state.log).clone()
    }

    /// The fate the simulator will give `number`.
    pub fn fate_of(&self, number: &str) -> Fate {
        self.state.cfg.mix.fate(self.state.cfg.seed, number)
    }

    /// Hang up every channel, send the shutdown notice and stop listening.
    pub async fn shutdown(self) {
        let chans: Vec<mpsc::UnboundedSender<ChanCmd>> =
            lock(&self.state.channels).values().map(|c| c.tx.clone()).collect();
        for c in chans {
            let _ = c.send(ChanCmd::Kill("SYSTEM_SHUTDOWN".into()));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        for (tx, _) in self.state.subscribers() {
            let _ = tx.send(wire::disconnect_notice("The system is being shut down.\n"));
        }
        self.state.cancel.cancel();
        let _ = self.task.await;
    }
}

/// Start a simulator listening on `listen` (e.g. `127.0.0.1:0`).
pub async fn start(cfg: SimConfig, listen: &str) -> Result<SimHandle, SimError> {
    let listener =
        TcpListener::bind(listen).await.map_err(|e| SimError::Listen { addr: listen.to_string(), source: e })?;
    let addr = listener.local_addr().map_err(|e| SimError::Listen { addr: listen.to_string(), source: e })?;
    let core_uuid = uuid::Uuid::new_v4().to_string();
    let state = Arc::new(State {
        max_sessions: AtomicU64::new(cfg.max_sessions as u64),
        cfg,
        renderer: Renderer::new(&core_uuid),
        conns: Mutex::new(HashMap::new()),
        next_conn: AtomicU64::new(1),
        channels: Mutex::new(HashMap::new()),
        originates: AtomicU64::new(0),
        answered: AtomicU64::new(0),
        live: AtomicI64::new(0),
        max_live: AtomicI64::new(0),
        log: Mutex::new(Vec::new()),
        cancel: CancellationToken::new(),
        started: std::time::Instant::now(),
    });
    let st = state.clone();
    let task = tokio::spawn(async move {
        let hb = st.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(hb.cfg.heartbeat);
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = hb.cancel.cancelled() => break,
                    _ = tick.tick() => {
                        let live = hb.live.load(Ordering::Relaxed).max(0) as u64;
                        let total = hb.originates.load(Ordering::Relaxed);
                        hb.emit_with("HEARTBEAT", None, |f| hb.renderer.heartbeat(f, live, total));
                    }
                }
            }
        });
        loop {
            tokio::select! {
                _ = st.cancel.cancelled() => break,
                acc = listener.accept() => match acc {
                    Ok((sock, _)) => { tokio::spawn(serve_conn(st.clone(), sock)); }
                    Err(e) => { tracing::warn!("sim accept failed: {e}"); tokio::time::sleep(Duration::from_millis(50)).await; }
                }
            }
        }
    });
    Ok(SimHandle { addr, state, task })
}

/// One client command: first line, header lines, optional body.
struct Cmd {
    line: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
}

/// Pull one command out of `buf` if complete.
fn take_cmd(buf: &mut BytesMut) -> Option<Result<Cmd, String>> {
    while buf.first().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        let _ = buf.split_to(1);
    }
    let end = memchr_blank(buf)?;
    let head = String::from_utf8_lossy(&buf[..end]).replace('\r', "");
    let mut lines = head.lines();
    let line = lines.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    let mut len = 0usize;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let v = v.trim_start().to_string();
            if k == "Content-Length" {
                match v.parse() {
                    Ok(n) => len = n,
                    Err(_) => return Some(Err(format!("bad Content-Length {v:?}"))),
                }
            }
            headers.push((k.to_string(), v));
        }
    }
    if buf.len() < end + 2 + len {
        return None;
    }
    let _ = buf.split_to(end + 2);
    let body = if len > 0 { Some(String::from_utf8_lossy(&buf.split_to(len)).into_owned()) } else { None };
    Some(Ok(Cmd { line, headers, body }))
}

fn memchr_blank(buf: &[u8]) -> Option<usize> {
    buf.windows(2).position(|w| w == b"\n\n")
}

async fn serve_conn(st: Arc<State>, sock: TcpStream) {
    sock.set_nodelay(true).ok();
    let (mut rd, mut wr) = sock.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Bytes>();
    let id = st.next_conn.fetch_add(1, Ordering::Relaxed);
    let sub = Arc::new(Mutex::new(Subscription::default()));
    let writer_cancel = CancellationToken::new();
    let wc = writer_cancel.clone();
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if b.is_empty() {
                break; // close marker
            }
            if wr.write_all(&b).await.is_err() {
                break;
            }
        }
        let _ = wr.shutdown().await;
        wc.cancel();
    });
    let _ = tx.send(wire::auth_request());
    let mut authed = false;
    let mut buf = BytesMut::with_capacity(4096);
    'conn: loop {
        while let Some(cmd) = take_cmd(&mut buf) {
            let cmd = match cmd {
                Ok(c) => c,
                Err(e) => {
                    let _ = tx.send(wire::command_reply(&format!("-ERR {e}"), &[]));
                    break 'conn;
                }
            };
            if !authed {
                match cmd.line.strip_prefix("auth ") {
                    Some(pw) if pw.trim() == st.cfg.password => {
                        authed = true;
                        lock(&st.conns).insert(id, Conn { tx: tx.clone(), sub: sub.clone() });
                        let _ = tx.send(wire::command_reply("+OK accepted", &[]));
                    }
                    Some(_) => {
                        let _ = tx.send(wire::command_reply("-ERR invalid", &[]));
                        let _ = tx.send(wire::disconnect_notice(wire::GOODBYE));
                        break 'conn;
                    }
                    None => {
                        let _ = tx.send(wire::command_reply("-ERR command not found", &[]));
                    }
                }
                continue;
            }
            if !handle_cmd(&st, &tx, &sub, cmd).await {
                break 'conn;
            }
        }
        let mut chunk = [0u8; 16 * 1024];
        tokio::select! {
            _ = st.cancel.cancelled() => break,
            _ = writer_cancel.cancelled() => break,
            r = rd.read(&mut chunk) => match r {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
    lock(&st.conns).remove(&id);
    let _ = tx.send(Bytes::new());
    let _ = writer.await;
}

/// Handle one authenticated command; `false` closes the connection.
async fn handle_cmd(
    st: &Arc<State>,
    tx: &mpsc::UnboundedSender<Bytes>,
    sub: &Arc<Mutex<Subscription>>,
    cmd: Cmd,
) -> bool {
    let line = cmd.line.trim().to_string();
    let (verb, args) = line.split_once(' ').unwrap_or((line.as_str(), ""));
    match verb {
        "exit" => {
            let _ = tx.send(wire::command_reply("+OK bye", &[]));
            let _ = tx.send(wire::disconnect_notice(wire::GOODBYE));
            return false;
        }
        "event" => {
            let mut words = args.split_whitespace();
            let fmt = match words.next() {
                Some("plain") => Format::Plain,
                Some("json") => Format::Json,
                other => {
                    let _ = tx.send(wire::command_reply(&format!("-ERR unsupported format {other:?}"), &[]));
                    return true;
                }
            };
            let mut s = lock(sub);
            s.format = Some(fmt);
            let mut custom = false;
            for w in words {
                match w {
                    "ALL" => s.all = true,
                    "CUSTOM" => custom = true,
                    w if custom && w.contains("::") => {
                        s.subclasses.insert(w.to_string());
                    }
                    w => {
                        s.names.insert(w.to_string());
                    }
                }
            }
            let name = if fmt == Format::Json { "json" } else { "plain" };
            let _ = tx.send(wire::command_reply(&format!("+OK event listener enabled {name}"), &[]));
        }
        "noevents" | "nixevent" => {
            *lock(sub) = Subscription::default();
            let _ = tx.send(wire::command_reply("+OK no longer listening for events", &[]));
        }
        "filter" => {
            let (h, v) = args.split_once(' ').unwrap_or((args, ""));
            let _ = tx.send(wire::command_reply(&format!("+OK filter added. [{h}]=[{v}]"), &[]));
        }
        "log" => {
            let _ = tx.send(wire::command_reply(&format!("+OK log level {args} [{args}]"), &[]));
        }
        "nolog" => {
            let _ = tx.send(wire::command_reply("+OK no longer spewing logs.", &[]));
        }
        "api" => {
            // Like FreeSWITCH's listener thread, a synchronous api command
            // holds up this connection's later commands until it answers.
            let body = run_api(st, args).await;
            let _ = tx.send(wire::api_response(&body));
            let (c, a) = line_cmd(&line);
            st.emit_with("API", None, |f| st.renderer.api_event(f, c, a));
        }
        "bgapi" => {
            let job = cmd
                .headers
                .iter()
                .find(|(k, _)| k == "Job-UUID")
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
            let _ = tx.send(wire::command_reply(&format!("+OK Job-UUID: {job}"), &[("Job-UUID", &job)]));
            let st2 = st.clone();
            let args = args.to_string();
            tokio::spawn(async move {
                let body = run_api(&st2, &args).await;
                let (c, a) = args.split_once(' ').unwrap_or((args.as_str(), ""));
                st2.emit_with("API", None, |f| st2.renderer.api_event(f, c, a));
                st2.emit_with("BACKGROUND_JOB", None, |f| st2.renderer.background_job(f, &job, c, a, &body));
            });
        }
        "sendevent" => {
            let ev_uuid = uuid::Uuid::new_v4().to_string();
            let subclass =
                cmd.headers.iter().find(|(k, _)| k == "Event-Subclass").map(|(_, v)| v.clone()).unwrap_or_default();
            let uid = cmd.headers.iter().find(|(k, _)| k == "Unique-ID").map(|(_, v)| v.clone());
            let ch = uid.and_then(|u| lock(&st.channels).get(&u).map(|c| lock(&c.info).clone()));
            let hdrs: Vec<(&str, &str)> = cmd
                .headers
                .iter()
                .filter(|(k, _)| k != "Event-Subclass" && k != "Content-Length")
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let _ = tx.send(wire::command_reply(&format!("+OK {ev_uuid}"), &[]));
            let body = cmd.body.clone();
            st.emit_with("CUSTOM", Some(&subclass), |f| {
                st.renderer.custom_event(f, &subclass, &hdrs, ch.as_ref(), body.as_deref())
            });
        }
        _ => {
            let _ = tx.send(wire::command_reply("-ERR command not found", &[]));
        }
    }
    true
}

fn line_cmd(line: &str) -> (&str, &str) {
    let rest = line.strip_prefix("api ").unwrap_or(line);
    rest.split_once(' ').unwrap_or((rest, ""))
}

fn chan_tx(st: &State, uuid: &str) -> Option<mpsc::UnboundedSender<ChanCmd>> {
    lock(&st.channels).get(uuid).map(|c| c.tx.clone())
}

/// Execute an API command and return its response body.
async fn run_api(st: &Arc<State>, args: &str) -> String {
    let args = args.trim();
    let (cmd, rest) = args.split_once(' ').unwrap_or((args, ""));
    let rest = rest.trim();
    let mut words = rest.split_whitespace();
    match cmd {
        "status" => {
            let up = st.started.elapsed().as_secs();
            let s = st.stats();
            format!(
                "UP 0 years, 0 days, {} hours, {} minutes, {} seconds, 0 milliseconds, 0 microseconds\nFreeSWITCH (Version 1.10.12-release voxdial-sim) is ready\n{} session(s) since startup\n{} session(s) - peak {}, last 5min {}\n0 session(s) per Sec out of max 1000, peak 0, last 5min 0\n{} session(s) max\nmin idle cpu 0.00/100.00\nCurrent Stack Size/Max 240K/8192K\n",
                up / 3600, (up / 60) % 60, up % 60, s.originates, s.live, s.max_concurrent, s.max_concurrent,
                st.max_sessions.load(Ordering::Relaxed)
            )
        }
        "version" => "FreeSWITCH Version 1.10.12-release+voxdial-sim (voxdial simulator 64bit)\n".to_string(),
        "show" => {
            let what: Vec<&str> = words.collect();
            let chans: Vec<Channel> = lock(&st.channels).values().map(|c| lock(&c.info).clone()).collect();
            if what.first() == Some(&"channels") && what.get(1) == Some(&"count") {
                return format!("\n{} total.\n", chans.len());
            }
            if chans.is_empty() {
                return "{\"row_count\": 0}\n".to_string();
            }
            let rows: Vec<serde_json::Value> = chans
                .iter()
                .map(|c| {
                    serde_json::json!({
                        "uuid": c.uuid, "direction": "outbound",
                        "created": chrono::DateTime::from_timestamp_micros(c.created_us).map(|t| t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S").to_string()).unwrap_or_default(),
                        "created_epoch": (c.created_us / 1_000_000).to_string(),
                        "name": format!("sofia/external/{}", c.dialed),
                        "state": if c.answered_us > 0 { "CS_EXECUTE" } else { "CS_CONSUME_MEDIA" },
                        "cid_name": "Outbound Call",
                        "cid_num": if c.swapped { c.dialed.clone() } else { c.caller_id_number.clone() },
                        "dest": if c.swapped { c.extension.clone() } else { c.dialed.clone() },
                        "application": if c.answered_us > 0 { "park" } else { "" },
                        "dialplan": "XML", "context": c.context,
                        "callstate": if c.answered_us > 0 { "ACTIVE" } else if c.progress_media_us > 0 { "EARLY" } else { "RINGING" },
                        "callee_num": if c.swapped { c.caller_id_number.clone() } else { c.dialed.clone() },
                        "call_uuid": c.uuid, "hostname": "fs-host",
                        "initial_cid_num": c.caller_id_number, "initial_dest": c.dialed, "initial_context": c.context,
                    })
                })
                .collect();
            serde_json::json!({"row_count": rows.len(), "rows": rows}).to_string()
        }
        "originate" => originate(st, rest).await,
        "uuid_kill" => {
            let uuid = words.next().unwrap_or_default();
            let cause = words.next().unwrap_or("NORMAL_CLEARING").to_string();
            match chan_tx(st, uuid) {
                Some(tx) => {
                    let _ = tx.send(ChanCmd::Kill(cause));
                    "+OK\n".into()
                }
                None => "-ERR No such channel!\n".into(),
            }
        }
        "uuid_broadcast" => {
            let uuid = words.next().unwrap_or_default();
            let path = words.next().unwrap_or_default().to_string();
            match chan_tx(st, uuid) {
                Some(tx) if !path.is_empty() => {
                    let _ = tx.send(ChanCmd::Broadcast(path));
                    "+OK Message sent\n".into()
                }
                Some(_) => "-USAGE: <uuid> <path> [aleg|bleg|both]\n".into(),
                None => "-ERR No such channel!\n".into(),
            }
        }
        "uuid_break" => match chan_tx(st, words.next().unwrap_or_default()) {
            Some(tx) => {
                let _ = tx.send(ChanCmd::Break);
                "+OK\n".into()
            }
            None => "-ERR No such channel!\n".into(),
        },
        "uuid_setvar" => {
            let uuid = words.next().unwrap_or_default();
            let k = words.next().unwrap_or_default().to_string();
            let v = words.collect::<Vec<_>>().join(" ");
            match chan_tx(st, uuid) {
                Some(tx) if !k.is_empty() => {
                    let _ = tx.send(ChanCmd::SetVar(k, v));
                    "+OK\n".into()
                }
                Some(_) => "-USAGE: <uuid> <var> [value]\n".into(),
                None => "-ERR No such channel!\n".into(),
            }
        }
        "uuid_record" => {
            let uuid = words.next().unwrap_or_default();
            let verb = words.next().unwrap_or_default();
            let path = words.next().unwrap_or_default().to_string();
            match chan_tx(st, uuid) {
                Some(tx) if matches!(verb, "start" | "stop") && !path.is_empty() => {
                    let _ = tx.send(ChanCmd::Record { path, stop: verb == "stop" });
                    "+Success\n".into()
                }
                Some(_) => "-USAGE: <uuid> [start|stop|mask|unmask] <path> [<limit>]\n".into(),
                None => "-ERR Cannot locate session!\n".into(),
            }
        }
        "uuid_transfer" => match chan_tx(st, words.next().unwrap_or_default()) {
            Some(tx) => {
                let _ = tx.send(ChanCmd::Transfer);
                "+OK\n".into()
            }
            None => "-ERR No such channel!\n".into(),
        },
        "uuid_exists" => {
            if lock(&st.channels).contains_key(words.next().unwrap_or_default()) { "true" } else { "false" }.into()
        }
        "hupall" => {
            let cause = words.next().unwrap_or("MANAGER_REQUEST").to_string();
            let txs: Vec<_> = lock(&st.channels).values().map(|c| c.tx.clone()).collect();
            for tx in txs {
                let _ = tx.send(ChanCmd::Kill(cause.clone()));
            }
            format!("+OK hangup all channels with cause {cause}\n")
        }
        "fsctl" => {
            if words.next() == Some("max_sessions") {
                if let Some(n) = words.next().and_then(|n| n.parse::<u64>().ok()) {
                    st.max_sessions.store(n, Ordering::Relaxed);
                }
                format!("+OK max sessions: {}\n", st.max_sessions.load(Ordering::Relaxed))
            } else {
                "-ERR unsupported fsctl\n".into()
            }
        }
        _ => format!("-ERR {cmd} Command not found!\n"),
    }
}

/// Place a simulated call; resolves like FreeSWITCH's originate: `+OK uuid`
/// once answered (or in early media), `-ERR CAUSE` on failure.
async fn originate(st: &Arc<State>, args: &str) -> String {
    let o = match dialstring::parse(args) {
        Ok(o) => o,
        Err(e) => return format!("{e}\n"),
    };
    let Endpoint::Gateway { gateway, number } = o.endpoint.clone() else {
        return "-ERR CHAN_NOT_IMPLEMENTED\n".into();
    };
    let uuid = o.var("origination_uuid").map(str::to_string).unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let known = st.cfg.gateways.contains(&gateway);
    let fate = known.then(|| st.cfg.mix.fate(st.cfg.seed, &number));
    st.originates.fetch_add(1, Ordering::Relaxed);
    let record =
        OriginateRecord { uuid: uuid.clone(), number: number.clone(), gateway: gateway.clone(), at_ms: now_ms(), fate };
    if let Some(path) = &st.cfg.originate_log {
        use std::io::Write;
        let line = serde_json::to_string(&record).unwrap_or_default();
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            // One write per line: O_APPEND keeps concurrent lines whole.
            .and_then(|mut f| f.write_all(format!("{line}\n").as_bytes()));
        if let Err(e) = written {
            tracing::warn!("sim: cannot append to originate log {}: {e}", path.display());
        }
    }
    lock(&st.log).push(record);
    let Some(fate) = fate else {
        return "-ERR INVALID_GATEWAY\n".into();
    };
    if fate == Fate::GatewayDown {
        return "-ERR GATEWAY_DOWN\n".into();
    }
    if lock(&st.channels).contains_key(&uuid) {
        return "-ERR DESTINATION_OUT_OF_ORDER\n".into();
    }
    let live = st.live.load(Ordering::Relaxed);
    if live >= st.max_sessions.load(Ordering::Relaxed) as i64 {
        return "-ERR DESTINATION_OUT_OF_ORDER\n".into();
    }
    let timeout_s: u64 = o.var("originate_timeout").and_then(|t| t.parse().ok()).unwrap_or(60);
    let mut ch = Channel {
        uuid: uuid.clone(),
        dialed: number.clone(),
        caller_id_number: o.var("origination_caller_id_number").unwrap_or("0000000000").to_string(),
        gateway,
        context: o.context.clone(),
        extension: o.extension.clone(),
        profile_index: 1,
        variables: o.vars.clone(),
        ..Channel::default()
    };
    let (tx, rx) = mpsc::unbounded_channel();
    let info = Arc::new(Mutex::new(ch.clone()));
    lock(&st.channels).insert(uuid.clone(), ChanEntry { tx, info: info.clone() });
    let n = st.live.fetch_add(1, Ordering::Relaxed) + 1;
    st.max_live.fetch_max(n, Ordering::Relaxed);
    st.emit(&Phase::Originate, &mut ch);
    *lock(&info) = ch.clone();
    let (res_tx, res_rx) = oneshot::channel();
    let st2 = st.clone();
    tokio::spawn(async move {
        let mut call = SimCall { st: st2.clone(), ch, info, rx, result: Some(res_tx), timeout_s, sentence: None };
        call.run(fate).await;
        lock(&st2.channels).remove(&call.ch.uuid);
        st2.live.fetch_sub(1, Ordering::Relaxed);
    });
    res_rx.await.unwrap_or_else(|_| "-ERR NORMAL_TEMPORARY_FAILURE\n".into())
}

/// Write `len` of a quiet 440 Hz tone as an 8 kHz 16-bit mono WAV (what
/// FreeSWITCH records at PCMA/PCMU rates), capped at 5 s: small, but a valid
/// file any player opens.
pub fn write_wav(path: &Path, len: Duration) -> std::io::Result<()> {
    const RATE: u32 = 8000;
    let samples = (len.min(Duration::from_secs(5)).as_millis() as u32 * RATE / 1000).max(RATE / 10);
    let data = samples * 2;
    let mut out = Vec::with_capacity(44 + data as usize);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&RATE.to_le_bytes());
    out.extend_from_slice(&(RATE * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data.to_le_bytes());
    for i in 0..samples {
        let t = f64::from(i) / f64::from(RATE);
        let v = (t * 440.0 * std::f64::consts::TAU).sin() * 2000.0;
        out.extend_from_slice(&(v as i16).to_le_bytes());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(path, out)
}

/// One simulated channel and its callee.
struct SimCall {
    st: Arc<State>,
    ch: Channel,
    info: Arc<Mutex<Channel>>,
    rx: mpsc::UnboundedReceiver<ChanCmd>,
    result: Option<oneshot::Sender<String>>,
    timeout_s: u64,
    /// The open `uuid_record` (per-sentence) recording and when it started.
    sentence: Option<(String, Instant)>,
}

enum Wake {
    Cmd(Option<ChanCmd>),
    Timer,
}

impl SimCall {
    /// Callee speech through the configured recognition transport.
    fn speech(&mut self, text: Option<&str>) {
        match self.st.cfg.asr.clone() {
            SimAsr::DetectedSpeech => match text {
                None => self.emit(Phase::SpeechBegin),
                Some(t) => self.emit(Phase::SpeechDetected { text: t.to_string(), confidence: 87 }),
            },
            SimAsr::Custom(sub) => {
                let kind = if text.is_some() { "detected-speech" } else { "begin-speaking" };
                let mut hdrs: Vec<(&str, &str)> = vec![("Speech-Type", kind)];
                if let Some(t) = text {
                    hdrs.push(("ASR-Text", t));
                }
                let ch = self.ch.clone();
                let st = self.st.clone();
                st.emit_with("CUSTOM", Some(&sub), |f| st.renderer.custom_event(f, &sub, &hdrs, Some(&ch), text));
            }
        }
    }

    fn emit(&mut self, p: Phase) {
        self.st.emit(&p, &mut self.ch);
        *lock(&self.info) = self.ch.clone();
    }

    fn reply(&mut self, s: String) {
        if let Some(r) = self.result.take() {
            let _ = r.send(s);
        }
    }

    /// Sleep, but wake early for a command (kill during ringing etc.).
    async fn wait(&mut self, d: Duration) -> Option<ChanCmd> {
        let deadline = Instant::now() + d;
        loop {
            tokio::select! {
                c = self.rx.recv() => match c {
                    Some(ChanCmd::SetVar(k, v)) => self.ch.set_var(&k, &v),
                    Some(c @ ChanCmd::Kill(_)) => return Some(c),
                    Some(_) => {}
                    None => return None,
                },
                _ = tokio::time::sleep_until(deadline) => return None,
            }
        }
    }

    fn jitter(&self, lo: u64, hi: u64) -> u64 {
        let h = fate::hash(self.st.cfg.seed ^ 0xA5A5, &self.ch.uuid);
        lo + h % (hi - lo).max(1)
    }

    /// `uuid_record` start / stop: the recording's events, and its file
    /// once it stops (with `write_audio`).
    fn sentence_record(&mut self, path: String, stop: bool) {
        if !stop {
            self.emit(Phase::SentenceRecord { path: path.clone(), stop: false });
            self.sentence = Some((path, Instant::now()));
            return;
        }
        let Some((open, started)) = self.sentence.take_if(|(p, _)| *p == path) else { return };
        if self.st.cfg.write_audio {
            if let Err(e) = write_wav(Path::new(&open), started.elapsed()) {
                tracing::debug!(path = %open, "simulated recording not written: {e}");
            }
        }
        self.emit(Phase::SentenceRecord { path: open, stop: true });
    }

    fn finish(&mut self, h: Hangup, reply: Option<String>, reply_before_complete: bool) {
        self.ch.hangup = Some(h);
        self.emit(Phase::Hangup);
        // Media bugs close with the channel.
        if let Some((path, _)) = self.sentence.clone() {
            self.sentence_record(path, true);
        }
        if reply_before_complete {
            if let Some(r) = reply.clone() {
                self.reply(r);
            }
        }
        self.emit(Phase::HangupComplete);
        if let Some(r) = reply {
            self.reply(r);
        }
    }

    fn refuse(&mut self, code: u16, phrase: &str, cause: &str, q850: u16) {
        let h = Hangup {
            cause: cause.into(),
            q850,
            sip_term_status: Some(code),
            sip_invite_failure: Some((code, phrase.into())),
            disposition: "recv_refuse".into(),
        };
        let answered_or_early = self.result.is_none();
        self.finish(h, (!answered_or_early).then(|| format!("-ERR {cause}\n")), false);
    }

    fn killed(&mut self, cause: &str) {
        let answered = self.ch.answered_us > 0 || self.ch.progress_media_us > 0;
        let (disposition, failure) = if answered {
            ("send_bye", None)
        } else {
            ("send_cancel", Some((487u16, "Request Terminated".to_string())))
        };
        let h = Hangup {
            cause: cause.into(),
            q850: 16, // FreeSWITCH reports 16 for kills and internal causes alike
            sip_term_status: None,
            sip_invite_failure: failure,
            disposition: disposition.into(),
        };
        let reply = (!answered)
            .then(|| format!("-ERR {}\n", if cause == "NORMAL_CLEARING" { "ORIGINATOR_CANCEL" } else { cause }));
        self.finish(h, reply, true);
    }

    async fn run(&mut self, fate: Fate) {
        let ring = self.st.scaled(self.jitter(1500, 6000));
        match fate {
            Fate::Busy | Fate::NotFound | Fate::Unavailable | Fate::Decline | Fate::ServiceUnavailable => {
                if let Some(ChanCmd::Kill(c)) = self.wait(self.st.scaled(self.jitter(150, 900))).await {
                    return self.killed(&c);
                }
                let (code, phrase, cause, q) = match fate {
                    Fate::Busy => (486, "Busy Here", "USER_BUSY", 17),
                    Fate::NotFound => (404, "Not Found", "UNALLOCATED_NUMBER", 1),
                    Fate::Unavailable => (480, "Temporarily Unavailable", "NO_USER_RESPONSE", 18),
                    Fate::Decline => (603, "Decline", "CALL_REJECTED", 21),
                    _ => (503, "Service Unavailable", "NORMAL_TEMPORARY_FAILURE", 41),
                };
                self.refuse(code, phrase, cause, q);
            }
            Fate::NoAnswer => {
                self.emit(Phase::Ringing);
                if let Some(ChanCmd::Kill(c)) = self.wait(Duration::from_secs(self.timeout_s)).await {
                    return self.killed(&c);
                }
                let h = Hangup {
                    cause: "NO_ANSWER".into(),
                    q850: 19,
                    sip_term_status: None,
                    sip_invite_failure: Some((487, "Request Terminated".into())),
                    disposition: "send_cancel".into(),
                };
                self.finish(h, Some("-ERR NO_ANSWER\n".into()), true);
            }
            Fate::Announcement(a) => {
                if let Some(ChanCmd::Kill(c)) = self.wait(self.st.scaled(self.jitter(200, 800))).await {
                    return self.killed(&c);
                }
                self.emit(Phase::EarlyMedia);
                // FreeSWITCH reports success as soon as early media flows.
                let uuid = self.ch.uuid.clone();
                self.reply(format!("+OK {uuid}\n"));
                let path = self.record_path();
                self.emit(Phase::RobotDialplan { record_path: path });
                if let Some(ChanCmd::Kill(c)) = self.wait(self.st.scaled(1200)).await {
                    return self.killed(&c);
                }
                self.speech(None);
                if let Some(ChanCmd::Kill(c)) = self.wait(self.st.scaled(1500)).await {
                    return self.killed(&c);
                }
                self.speech(Some(a.text()));
                if let Some(ChanCmd::Kill(c)) = self.wait(self.st.scaled(800)).await {
                    return self.killed(&c);
                }
                let (code, phrase, cause, q) = a.final_response();
                self.refuse(code, phrase, cause, q);
            }
            Fate::GatewayDown => self.reply("-ERR GATEWAY_DOWN\n".into()),
            Fate::Answer(p) => {
                self.emit(Phase::Ringing);
                if let Some(ChanCmd::Kill(c)) = self.wait(ring).await {
                    return self.killed(&c);
                }
                self.emit(Phase::Answer);
                self.st.answered.fetch_add(1, Ordering::Relaxed);
                let uuid = self.ch.uuid.clone();
                self.reply(format!("+OK {uuid}\n"));
                if let Some(url) = self.st.cfg.smartivr_url.clone() {
                    return self.converse_smartivr(p, &url).await;
                }
                let path = self.record_path();
                self.emit(Phase::RobotDialplan { record_path: path });
                self.converse(p).await;
            }
        }
    }

    fn record_path(&self) -> String {
        let date = chrono::Local::now().format("%Y-%m-%d");
        let path = self.ch.var("voxdial_record_path").map(str::to_string);
        path.unwrap_or_else(|| {
            format!("{}/{date}/{}.{}.wav", self.st.cfg.recordings_root, self.ch.dialed, self.ch.uuid)
        })
    }

    /// How long a prompt plays: TTS text by its length, files by a stable
    /// pseudo-duration (the simulator has no audio).
    fn play_ms(&self, file: &str) -> u64 {
        let items: Vec<&str> = file.trim_start_matches("file_string://").split('!').collect();
        items
            .iter()
            .map(|it| {
                if let Some(i) = it.rfind('|') {
                    it[i + 1..].chars().count() as u64 * 180
                } else if let Some(ms) = it
                    .split("voxdial_ms=")
                    .nth(1)
                    .and_then(|s| s.split(|c: char| !c.is_ascii_digit()).next().and_then(|d| d.parse::<u64>().ok()))
                {
                    ms
                } else {
                    1500 + fate::hash(self.st.cfg.seed, it) % 2500
                }
            })
            .sum::<u64>()
            .max(300)
    }

    async fn converse(&mut self, persona: Persona) {
        let lines = persona.lines();
        let mut turn = 0usize;
        let mut playing: Option<(String, Instant)> = None;
        let mut speech_at: Option<Instant> = None;
        let mut detect_at: Option<(Instant, String)> = None;
        let mut hangup_at: Option<Instant> = None;
        let give_up = Instant::now() + self.st.scaled(120_000).max(Duration::from_secs(20));
        loop {
            let next =
                [playing.as_ref().map(|p| p.1), speech_at, detect_at.as_ref().map(|d| d.0), hangup_at, Some(give_up)]
                    .into_iter()
                    .flatten()
                    .min()
                    .unwrap_or(give_up);
            let wake = tokio::select! {
                c = self.rx.recv() => Wake::Cmd(c),
                _ = tokio::time::sleep_until(next) => Wake::Timer,
            };
            match wake {
                Wake::Cmd(None) => return,
                Wake::Cmd(Some(ChanCmd::Kill(c))) => return self.killed(&c),
                Wake::Cmd(Some(ChanCmd::SetVar(k, v))) => {
                    self.ch.set_var(&k, &v);
                    *lock(&self.info) = self.ch.clone();
                }
                Wake::Cmd(Some(ChanCmd::Transfer)) => self.emit(Phase::TransferPark),
                Wake::Cmd(Some(ChanCmd::Record { path, stop })) => self.sentence_record(path, stop),
                Wake::Cmd(Some(ChanCmd::Break)) => {
                    if let Some((file, _)) = playing.take() {
                        self.emit(Phase::PlaybackStop { file, broken: true });
                    }
                }
                Wake::Cmd(Some(ChanCmd::Broadcast(file))) => {
                    if let Some((old, _)) = playing.take() {
                        self.emit(Phase::PlaybackStop { file: old, broken: true });
                    }
                    let dur = self.st.scaled(self.play_ms(&file));
                    self.emit(Phase::PlaybackStart { file: file.clone() });
                    let now = Instant::now();
                    playing = Some((file, now + dur));
                    if persona == Persona::Interrupter
                        && turn < lines.len()
                        && speech_at.is_none()
                        && detect_at.is_none()
                    {
                        speech_at = Some(now + dur.mul_f64(0.3));
                    }
                    if persona == Persona::HangsUp && turn >= lines.len() && hangup_at.is_none() {
                        hangup_at = Some(now + dur.mul_f64(0.4));
                    }
                }
                Wake::Timer => {
                    let now = Instant::now();
                    if now >= give_up || hangup_at.is_some_and(|t| now >= t) {
                        let h = Hangup {
                            cause: "NORMAL_CLEARING".into(),
                            q850: 16,
                            sip_term_status: Some(200),
                            sip_invite_failure: None,
                            disposition: "recv_bye".into(),
                        };
                        return self.finish(h, None, false);
                    }
                    if playing.as_ref().is_some_and(|p| now >= p.1) {
                        if let Some((file, _)) = playing.take() {
                            self.emit(Phase::PlaybackStop { file, broken: false });
                        }
                        if turn < lines.len() && speech_at.is_none() && detect_at.is_none() {
                            speech_at = Some(now + self.st.scaled(self.jitter(400, 1200)));
                        }
                    }
                    if speech_at.is_some_and(|t| now >= t) {
                        speech_at = None;
                        if let Some(text) = lines.get(turn) {
                            self.speech(None);
                            let speak = self.st.scaled(text.chars().count() as u64 * 200 + 300);
                            detect_at = Some((now + speak, (*text).to_string()));
                        }
                    }
                    if detect_at.as_ref().is_some_and(|d| now >= d.0) {
                        if let Some((_, text)) = detect_at.take() {
                            turn += 1;
                            self.speech(Some(&text));
                        }
                    }
                }
            }
        }
    }
}
