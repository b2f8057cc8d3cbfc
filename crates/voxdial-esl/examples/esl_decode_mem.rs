//! In-memory decode throughput: feeds a captured ESL byte stream to `EslCodec`
//! in 256 KiB reads and parses every event, without a socket. Used to profile
//! the decoder apart from the kernel.
//!
//! Usage: `esl_decode_mem FILE [passes]`

use std::time::Instant;

use bytes::BytesMut;
use tokio_util::codec::Decoder;
use voxdial_esl::{EslCodec, Event};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().collect();
    let path = args.get(1).ok_or("usage: esl_decode_mem FILE [passes]")?;
    let passes: usize = args.get(2).map_or(Ok(5), |p| p.parse())?;
    let data = std::fs::read(path)?;
    let mut events = 0u64;
    let mut uidlen = 0u64;
    let start = Instant::now();
    for _ in 0..passes {
        let mut codec = EslCodec::default();
        let mut buf = BytesMut::with_capacity(256 * 1024);
        for chunk in data.chunks(256 * 1024) {
            buf.reserve(chunk.len());
            buf.extend_from_slice(chunk);
            while let Some(frame) = codec.decode(&mut buf)? {
                if let Some(ev) = Event::from_frame(&frame)? {
                    events += 1;
                    uidlen += ev.unique_id().map_or(0, |u| u.len() as u64);
                }
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let bytes = (data.len() * passes) as f64;
    println!(
        "events={events} uidlen={uidlen} {:.0} events/s {:.0} MB/s {:.0} ns/event",
        events as f64 / secs,
        bytes / secs / 1e6,
        secs * 1e9 / events as f64
    );
    Ok(())
}
