//! Client for `shared/bench/esl_bench.py`: connect, authenticate, subscribe,
//! parse every event and print `events=<n> uidlen=<sum of len(Unique-ID)>`.
//!
//! Usage: `esl_bench_client HOST PORT plain|json [codec|client|client-mt|null]`
//!
//! * `codec` (default): the crate's decode path alone — `EslCodec` over a
//!   `FramedRead`, then `Event::from_frame` for every event frame.
//! * `client`: the full `EslClient` (reader task, reply slots, routing) with a
//!   lossless event stream from `EslClient::connect_with_events`, on a
//!   current-thread runtime; `client-mt` is the same on a 2-worker
//!   multi-thread runtime.
//! * `null`: reads and discards bytes; measures what the harness and the
//!   kernel can deliver (reports `events=0`, so the harness marks it failed).

use std::io::Write;

use futures::{SinkExt, StreamExt};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio_util::codec::{FramedRead, FramedWrite};
use voxdial_esl::{ClientConfig, Command, ContentType, EslClient, EslCodec, Event, EventFormat};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the harness checks: every event counted, its Unique-ID readable.
#[derive(Default)]
struct Tally {
    events: u64,
    uidlen: u64,
}

impl Tally {
    fn add(&mut self, ev: &Event) {
        self.events += 1;
        self.uidlen += ev.unique_id().map_or(0, |u| u.len() as u64);
    }
}

async fn run_codec(addr: &str, format: &str) -> Result<Tally, BoxError> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (rd, wr) = stream.into_split();
    let mut reader = FramedRead::with_capacity(rd, EslCodec::default(), 256 * 1024);
    let mut writer = FramedWrite::new(wr, EslCodec::default());
    let mut tally = Tally::default();
    while let Some(frame) = reader.next().await {
        let frame = frame?;
        match frame.content_type {
            ContentType::AuthRequest => {
                writer.send(Command { text: "auth ClueCon".into(), body: None }).await?;
            }
            ContentType::CommandReply => {
                let text = frame.reply_text();
                if text.starts_with("+OK accepted") {
                    writer.send(Command { text: format!("event {format} ALL"), body: None }).await?;
                } else if !frame.reply_ok() {
                    return Err(format!("command failed: {text}").into());
                }
            }
            ContentType::DisconnectNotice => break,
            _ => {
                if let Some(ev) = Event::from_frame(&frame)? {
                    tally.add(&ev);
                }
            }
        }
    }
    Ok(tally)
}

async fn run_client(addr: &str, format: EventFormat) -> Result<Tally, BoxError> {
    let mut cfg = ClientConfig::new(addr, "ClueCon");
    cfg.format = format;
    let (client, mut events) = EslClient::connect_with_events(cfg, 4096).await?;
    let mut tally = Tally::default();
    while let Some(ev) = events.recv().await {
        tally.add(&ev);
    }
    if let Some(reason) = client.close_reason() {
        eprintln!("closed: {reason}");
    }
    Ok(tally)
}

async fn run_null(addr: &str, format: &str) -> Result<Tally, BoxError> {
    let mut s = TcpStream::connect(addr).await?;
    let mut buf = vec![0u8; 256 * 1024];
    let n = s.read(&mut buf).await?;
    if !buf[..n].starts_with(b"Content-Type: auth/request") {
        return Err("no greeting".into());
    }
    tokio::io::AsyncWriteExt::write_all(&mut s, format!("auth ClueCon\n\nevent {format} ALL\n\n").as_bytes()).await?;
    let mut total = 0u64;
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    eprintln!("read {total} bytes");
    Ok(Tally::default())
}

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        return Err("usage: esl_bench_client HOST PORT plain|json [codec|client|client-mt|null]".into());
    }
    let addr = format!("{}:{}", args[1], args[2]);
    let format = args[3].as_str();
    let ev_format = match format {
        "plain" => EventFormat::Plain,
        "json" => EventFormat::Json,
        other => return Err(format!("unknown format {other}").into()),
    };
    let mode = args.get(4).map_or("codec", String::as_str);
    let tally = match mode {
        // The codec path is one task: a current-thread runtime is all it needs.
        "codec" => {
            tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(run_codec(&addr, format))?
        }
        "null" => {
            tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(run_null(&addr, format))?
        }
        "client" => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(run_client(&addr, ev_format))?,
        // The consumer is a spawned task, as in an application on the
        // default multi-thread runtime.
        "client-mt" => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?
            .block_on(async move { tokio::spawn(async move { run_client(&addr, ev_format).await }).await })??,
        other => return Err(format!("unknown mode {other}").into()),
    };
    let mut out = std::io::stdout().lock();
    writeln!(out, "events={} uidlen={}", tally.events, tally.uidlen)?;
    Ok(())
}
