//! Arbitrary bytes, cut into arbitrary chunks, through `EslCodec` and
//! `Event::from_frame`: no input may panic, and how the bytes are chunked must
//! never change what is decoded.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;
use voxdial_esl::{EslCodec, Event, Frame};

/// What one frame decoded to (frame headers, body, and the event's view).
type Seen = (String, Vec<(String, String)>, Vec<u8>, Result<Option<(Vec<(String, String)>, Option<Vec<u8>>)>, String>);

fn seen(f: &Frame) -> Seen {
    let ev = Event::from_frame(f)
        .map(|e| e.map(|e| (e.headers(), e.body().map(|b| b.to_vec()))))
        .map_err(|e| e.to_string());
    (
        format!("{:?}", f.content_type),
        f.headers.iter().map(|(k, v)| (k.into_owned(), v.into_owned())).collect(),
        f.body.to_vec(),
        ev,
    )
}

/// Decode `data` in pieces whose sizes come from `sizes` (cycled); returns the
/// frames and the error that ended decoding, if any.
fn run(data: &[u8], sizes: &[u8]) -> (Vec<Seen>, Option<String>) {
    // Small limits so the size checks are reachable by the fuzzer.
    let mut codec = EslCodec::new(2048, 1 << 16);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut pos = 0;
    let mut k = 0;
    while pos < data.len() {
        let n = if sizes.is_empty() { data.len() } else { usize::from(sizes[k % sizes.len()]) + 1 };
        k += 1;
        let end = (pos + n).min(data.len());
        buf.extend_from_slice(&data[pos..end]);
        pos = end;
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(f)) => out.push(seen(&f)),
                Ok(None) => break,
                Err(e) => return (out, Some(e.to_string())),
            }
        }
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(f)) => out.push(seen(&f)),
            Ok(None) => return (out, None),
            Err(e) => return (out, Some(e.to_string())),
        }
    }
}

fuzz_target!(|input: &[u8]| {
    // First byte: how many chunk-size bytes follow; the rest is the stream.
    let Some((&n, rest)) = input.split_first() else { return };
    let n = usize::from(n % 32).min(rest.len());
    let (sizes, data) = rest.split_at(n);
    let (whole, whole_err) = run(data, &[]);
    let (chunked, chunked_err) = run(data, sizes);
    assert_eq!(whole, chunked, "chunking changed the decoded frames");
    // A header that is too large may be noticed at a different point
    // depending on chunking, but whether the stream fails must not change.
    assert_eq!(whole_err.is_some(), chunked_err.is_some(), "{whole_err:?} vs {chunked_err:?}");
});
