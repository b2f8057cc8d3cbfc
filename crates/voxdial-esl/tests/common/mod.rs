//! A fake FreeSWITCH event socket on 127.0.0.1 for the client tests.
//!
//! It speaks the inbound protocol as the captures in `tests/fixtures/esl`
//! show it: greeting, `auth`, `event`, `api` (answered with an `api/response`
//! whose body echoes the command), `bgapi` (answered with `+OK Job-UUID`),
//! `exit`. Tests inject raw frames (events, garbage) through [`FakeFs::inject`]
//! and can drop the connection or silence the server.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};

pub const PASSWORD: &str = "ClueCon";

/// Options of the fake server.
#[derive(Clone, Default)]
pub struct Opts {
    /// Stream HEARTBEAT-like events continuously while a client is connected.
    pub stream_events: bool,
    /// Never answer anything after the handshake (a hung peer).
    pub silent_after_handshake: bool,
}

#[derive(Default)]
struct Shared {
    opts: Mutex<Opts>,
    inject: Mutex<Option<mpsc::UnboundedSender<Vec<u8>>>>,
    jobs: Mutex<Vec<(String, String)>>,
    commands: Mutex<Vec<String>>,
    connections: AtomicUsize,
    auths: AtomicUsize,
    streamed: AtomicUsize,
    kick: Notify,
    refuse: AtomicBool,
}

/// Handle to the running fake server.
#[derive(Clone)]
pub struct FakeFs {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FakeFs {
    pub async fn start(opts: Opts) -> FakeFs {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Shared { opts: Mutex::new(opts), ..Default::default() });
        let s = shared.clone();
        tokio::spawn(async move {
            loop {
                let Ok((sock, _)) = listener.accept().await else {
                    return;
                };
                if s.refuse.load(Ordering::SeqCst) {
                    drop(sock);
                    continue;
                }
                s.connections.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(serve(sock, s.clone()));
            }
        });
        FakeFs { addr, shared }
    }

    pub fn addr_string(&self) -> String {
        self.addr.to_string()
    }

    /// Write raw bytes to the current connection.
    pub fn inject(&self, bytes: impl Into<Vec<u8>>) {
        let guard = self.shared.inject.lock().expect("lock");
        let tx = guard.as_ref().expect("a client is connected");
        tx.send(bytes.into()).expect("connection alive");
    }

    /// Job-UUIDs and commands of the `bgapi`s received so far.
    pub fn jobs(&self) -> Vec<(String, String)> {
        self.shared.jobs.lock().expect("lock").clone()
    }

    pub fn commands(&self) -> Vec<String> {
        self.shared.commands.lock().expect("lock").clone()
    }

    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    pub fn auths(&self) -> usize {
        self.shared.auths.load(Ordering::SeqCst)
    }

    pub fn streamed(&self) -> usize {
        self.shared.streamed.load(Ordering::SeqCst)
    }

    /// Close the current connection abruptly (no disconnect notice).
    pub fn kick(&self) {
        self.shared.kick.notify_waiters();
    }

    /// Refuse (accept and close at once) new connections.
    pub fn set_refuse(&self, refuse: bool) {
        self.shared.refuse.store(refuse, Ordering::SeqCst);
    }

    pub fn set_silent(&self, silent: bool) {
        self.shared.opts.lock().expect("lock").silent_after_handshake = silent;
    }
}

/// An outer frame around `body`.
pub fn frame(content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!("Content-Length: {}\nContent-Type: {content_type}\n\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// A `text/event-plain` frame with URL-encoded `headers` and an optional body.
pub fn plain_event(headers: &[(&str, &str)], body: Option<&str>) -> Vec<u8> {
    let mut inner = String::new();
    for (k, v) in headers {
        inner.push_str(k);
        inner.push_str(": ");
        inner.push_str(&percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string());
        inner.push('\n');
    }
    if let Some(b) = body {
        inner.push_str(&format!("Content-Length: {}\n\n{b}", b.len()));
    } else {
        inner.push('\n');
    }
    frame("text/event-plain", inner.as_bytes())
}

/// A channel event for call `uuid`.
pub fn call_event(name: &str, uuid: &str, seq: usize) -> Vec<u8> {
    plain_event(&[("Event-Name", name), ("Unique-ID", uuid), ("Event-Sequence", &seq.to_string())], None)
}

/// The BACKGROUND_JOB event carrying `result` for `job`.
pub fn background_job(job: &str, result: &str) -> Vec<u8> {
    plain_event(&[("Event-Name", "BACKGROUND_JOB"), ("Job-UUID", job), ("Job-Command", "originate")], Some(result))
}

fn reply(text: &str) -> Vec<u8> {
    format!("Content-Type: command/reply\nReply-Text: {text}\n\n").into_bytes()
}

async fn serve(sock: TcpStream, shared: Arc<Shared>) {
    sock.set_nodelay(true).ok();
    let (mut rd, mut wr) = sock.into_split();
    let (tx, mut rx) = mpsc::unbounded_channel::<Vec<u8>>();
    *shared.inject.lock().expect("lock") = Some(tx.clone());
    // One writer, so frames from the command loop, the event streamer and
    // injections never interleave mid-frame.
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            if wr.write_all(&b).await.is_err() {
                return;
            }
        }
    });
    let _ = tx.send(b"Content-Type: auth/request\n\n".to_vec());
    let mut buf: Vec<u8> = Vec::new();
    let mut streamer: Option<tokio::task::JoinHandle<()>> = None;
    let kicked = shared.kick.notified();
    tokio::pin!(kicked);
    kicked.as_mut().enable();
    'conn: loop {
        while let Some(pos) = buf.windows(2).position(|w| w == b"\n\n") {
            let cmd = String::from_utf8_lossy(&buf[..pos]).into_owned();
            buf.drain(..pos + 2);
            shared.commands.lock().expect("lock").push(cmd.clone());
            let silent = shared.opts.lock().expect("lock").silent_after_handshake;
            let first = cmd.lines().next().unwrap_or_default().to_string();
            if let Some(pw) = first.strip_prefix("auth ") {
                shared.auths.fetch_add(1, Ordering::SeqCst);
                if pw == PASSWORD {
                    let _ = tx.send(reply("+OK accepted"));
                } else {
                    let _ = tx.send(reply("-ERR invalid"));
                    let body = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n";
                    let _ = tx.send(frame("text/disconnect-notice", body));
                    break 'conn;
                }
            } else if silent {
                continue;
            } else if first.starts_with("event ") {
                let _ = tx.send(reply("+OK event listener enabled plain"));
                if shared.opts.lock().expect("lock").stream_events && streamer.is_none() {
                    let tx = tx.clone();
                    let sh = shared.clone();
                    streamer = Some(tokio::spawn(async move {
                        for seq in 0.. {
                            let uuid = format!("stream-{}", seq % 7);
                            if tx.send(call_event("CHANNEL_STATE", &uuid, seq)).is_err() {
                                return;
                            }
                            sh.streamed.fetch_add(1, Ordering::SeqCst);
                            if seq % 16 == 0 {
                                tokio::time::sleep(Duration::from_micros(200)).await;
                            }
                        }
                    }));
                }
            } else if let Some(api) = first.strip_prefix("api ") {
                if let Some(ms) = api.strip_prefix("sleep ").and_then(|m| m.parse::<u64>().ok()) {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                }
                let _ = tx.send(frame("api/response", api.as_bytes()));
            } else if let Some(bg) = first.strip_prefix("bgapi ") {
                let job = cmd
                    .lines()
                    .find_map(|l| l.strip_prefix("Job-UUID: "))
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("server-job-{}", shared.jobs.lock().expect("lock").len()));
                shared.jobs.lock().expect("lock").push((job.clone(), bg.to_string()));
                let _ = tx.send(reply(&format!("+OK Job-UUID: {job}")));
            } else if first == "exit" {
                let _ = tx.send(reply("+OK bye"));
                let body = b"Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n";
                let _ = tx.send(frame("text/disconnect-notice", body));
                break 'conn;
            } else {
                let _ = tx.send(reply("+OK"));
            }
        }
        let mut chunk = [0u8; 4096];
        tokio::select! {
            _ = &mut kicked => {
                writer.abort();
                break 'conn;
            }
            n = rd.read(&mut chunk) => match n {
                Ok(0) | Err(_) => break 'conn,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            },
        }
    }
    if let Some(s) = streamer {
        s.abort();
    }
    {
        // Forget our sender unless a newer connection replaced it.
        let mut inject = shared.inject.lock().expect("lock");
        if inject.as_ref().is_some_and(|t| t.same_channel(&tx)) {
            *inject = None;
        }
    }
    drop(tx);
    // Let queued frames (the disconnect notice) go out, then close.
    let _ = tokio::time::timeout(Duration::from_secs(2), writer).await;
}
