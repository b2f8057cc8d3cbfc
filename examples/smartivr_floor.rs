//! The floor of the smartivr benchmark on this machine: a flow server that
//! does nothing but HTTP/1.1 keep-alive over loopback, with the same I/O
//! model as `api::front` (one `current_thread` runtime, a task per
//! connection, the head parsed with `httparse`, head + body answered with one
//! `write`), and a constant `noop` answer — no JSON parsing, no dialogue, no
//! journal, no database.
//!
//! Run the harness against it exactly as against `smartivr-server`: whatever
//! CPU per call and p99 it shows is what the harness and TCP over loopback
//! cost before voxdial does any work, i.e. the lower bound of the figures in
//! `docs/bench-smartivr.md`.
//!
//!     cargo run --release --example smartivr_floor -- 127.0.0.1:9960
//!     python3 ../shared/bench/smartivr_load.py --url http://127.0.0.1:9960/smartivr \
//!         -c 500 --calls 20000 --server-pid PID --procs 2

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BODY: &[u8] = br#"{"action":"noop","params":{},"flowdata":"floor"}"#;

fn main() -> anyhow::Result<()> {
    let addr: SocketAddr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:9960".to_owned()).parse()?;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let listener = TcpListener::bind(addr).await?;
        eprintln!("smartivr_floor listening on {addr}, pid {}", std::process::id());
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(async move {
                if let Err(e) = serve(stream).await {
                    eprintln!("connection: {e}");
                }
            });
        }
    })
}

async fn serve(mut stream: TcpStream) -> anyhow::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = Vec::with_capacity(4096);
    let mut out = Vec::with_capacity(512);
    let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", BODY.len());
    loop {
        // Answer every complete request in the buffer, then read more.
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut req = httparse::Request::new(&mut headers);
            let httparse::Status::Complete(head_len) = req.parse(&buf)? else { break };
            let body_len = req
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .map(|h| std::str::from_utf8(h.value).map(str::trim).map(str::parse::<usize>))
                .transpose()?
                .transpose()?
                .unwrap_or(0);
            if buf.len() < head_len + body_len {
                break;
            }
            buf.drain(..head_len + body_len);
            out.extend_from_slice(head.as_bytes());
            out.extend_from_slice(BODY);
        }
        if !out.is_empty() {
            stream.write_all(&out).await?;
            out.clear();
        }
        if stream.read_buf(&mut buf).await? == 0 {
            return Ok(());
        }
    }
}
