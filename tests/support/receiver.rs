//! A tiny HTTP/1.1 webhook receiver on 127.0.0.1 for tests and benchmarks:
//! keep-alive, Content-Length bodies, answers 500 to the first `fail_first`
//! requests (or to every request until a deadline) and 200 afterwards, and
//! logs every request.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One request as the receiver saw it, with the status it answered.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub key: String,
    pub signature: String,
    pub body: Vec<u8>,
    pub status: u16,
    pub at: Instant,
}

#[derive(Default)]
struct State {
    fail_first: usize,
    fail_until: Option<Instant>,
    seen: usize,
    log: Vec<Received>,
}

pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl Receiver {
    pub async fn start(fail_first: usize) -> Receiver {
        Self::serve(State { fail_first, ..State::default() }).await
    }

    /// A receiver that answers 500 to everything for `outage`, then 200.
    pub async fn failing_for(outage: Duration) -> Receiver {
        Self::serve(State { fail_until: Some(Instant::now() + outage), ..State::default() }).await
    }

    async fn serve(state: State) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let state = Arc::new(Mutex::new(state));
        let st = state.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let st = st.clone();
                tokio::spawn(async move {
                    let (rd, mut wr) = sock.into_split();
                    let mut rd = BufReader::new(rd);
                    loop {
                        let mut line = String::new();
                        if rd.read_line(&mut line).await.unwrap_or(0) == 0 {
                            return;
                        }
                        let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                        let (mut len, mut key, mut signature) = (0usize, String::new(), String::new());
                        loop {
                            let mut h = String::new();
                            if rd.read_line(&mut h).await.unwrap_or(0) == 0 {
                                return;
                            }
                            let h = h.trim_end();
                            if h.is_empty() {
                                break;
                            }
                            if let Some((name, value)) = h.split_once(':') {
                                let value = value.trim().to_string();
                                match name.to_ascii_lowercase().as_str() {
                                    "content-length" => len = value.parse().unwrap_or(0),
                                    "idempotency-key" => key = value,
                                    "x-voxdial-signature" => signature = value,
                                    _ => {}
                                }
                            }
                        }
                        let mut body = vec![0; len];
                        if rd.read_exact(&mut body).await.is_err() {
                            return;
                        }
                        let status = {
                            let mut s = st.lock().expect("lock");
                            s.seen += 1;
                            let at = Instant::now();
                            let down = s.seen <= s.fail_first || s.fail_until.is_some_and(|t| at < t);
                            let status = if down { 500 } else { 200 };
                            s.log.push(Received { path, key, signature, body, status, at });
                            status
                        };
                        let resp = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
                        if wr.write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Receiver { addr, state }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn log(&self) -> Vec<Received> {
        self.state.lock().expect("lock").log.clone()
    }

    pub fn requests(&self) -> usize {
        self.state.lock().expect("lock").seen
    }
}
