//! Chunking invariance over the real captures, and hostile input.

use std::path::PathBuf;

use bytes::{Bytes, BytesMut};
use tokio_util::codec::Decoder;
use voxdial_esl::{ContentType, DecodeError, EslCodec, Event, Frame};

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/esl");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("fixture dir") {
        let path = entry.expect("entry").path();
        if path.extension().is_some_and(|e| e == "esl") {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            out.push((name, std::fs::read(&path).expect("read fixture")));
        }
    }
    out.sort();
    assert!(out.len() >= 20, "expected the captured fixtures, found {}", out.len());
    out
}

/// An event's headers and body.
type SeenEvent = (Vec<(String, String)>, Option<Bytes>);

/// Everything observable about a frame and the event it carries.
#[derive(Debug, PartialEq)]
struct Seen {
    content_type: ContentType,
    headers: Vec<(String, String)>,
    body: Bytes,
    event: Option<SeenEvent>,
}

fn seen(f: &Frame) -> Seen {
    let event = Event::from_frame(f).expect("fixture event parses").map(|e| (e.headers(), e.body().cloned()));
    Seen {
        content_type: f.content_type.clone(),
        headers: f.headers.iter().map(|(k, v)| (k.into_owned(), v.into_owned())).collect(),
        body: f.body.clone(),
        event,
    }
}

/// Decode `data` delivered in pieces of the given sizes (the rest at once).
fn decode_in(data: &[u8], sizes: &mut dyn Iterator<Item = usize>) -> Result<Vec<Frame>, DecodeError> {
    let mut codec = EslCodec::default();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let n = sizes.next().unwrap_or(data.len()).clamp(1, data.len() - pos);
        buf.extend_from_slice(&data[pos..pos + n]);
        pos += n;
        while let Some(f) = codec.decode(&mut buf)? {
            frames.push(f);
        }
    }
    while let Some(f) = codec.decode_eof(&mut buf)? {
        frames.push(f);
    }
    Ok(frames)
}

fn seen_all(frames: &[Frame]) -> Vec<Seen> {
    frames.iter().map(seen).collect()
}

struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn small_fixtures_split_at_every_offset_decode_identically() {
    let mut checked = 0;
    for (name, data) in fixtures().into_iter().filter(|(_, d)| d.len() < 5 * 1024) {
        let whole = seen_all(&decode_in(&data, &mut std::iter::empty()).expect("decodes"));
        assert!(!whole.is_empty(), "{name}");
        for cut in 1..data.len() {
            let split = seen_all(&decode_in(&data, &mut [cut].into_iter()).expect("decodes"));
            assert_eq!(whole, split, "{name} split at byte {cut}");
        }
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} small fixtures");
}

#[test]
fn large_fixtures_byte_by_byte_and_in_random_chunks_decode_identically() {
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    for (name, data) in fixtures().into_iter().filter(|(_, d)| d.len() >= 5 * 1024) {
        let whole = seen_all(&decode_in(&data, &mut std::iter::empty()).expect("decodes"));
        let bytewise = seen_all(&decode_in(&data, &mut std::iter::repeat(1)).expect("decodes"));
        assert_eq!(whole, bytewise, "{name} byte by byte");
        for _ in 0..3 {
            let mut sizes = std::iter::from_fn(|| Some((rng.next() % 4096) as usize + 1));
            let split = seen_all(&decode_in(&data, &mut sizes).expect("decodes"));
            assert_eq!(whole, split, "{name} in random chunks");
        }
    }
}

/// Feed `data` and return the first error, if any; must never panic.
fn first_error(data: &[u8], codec: EslCodec, chunk: usize) -> Option<DecodeError> {
    let mut codec = codec;
    let mut buf = BytesMut::new();
    for piece in data.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(f)) => {
                    if let Err(e) = Event::from_frame(&f) {
                        return Some(e);
                    }
                }
                Ok(None) => break,
                Err(e) => return Some(e),
            }
        }
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(_)) => {}
            Ok(None) => return None,
            Err(e) => return Some(e),
        }
    }
}

#[test]
fn random_bytes_give_errors_not_panics() {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut errors = 0;
    for round in 0..300 {
        let len = (rng.next() % 8192) as usize + 1;
        // Bias towards the protocol's own bytes so parsing gets deep.
        let alphabet = b"Content-Length: 12\nType:event-plain%\r\n\n0123456789";
        let data: Vec<u8> = (0..len)
            .map(|_| {
                let r = rng.next();
                if round % 2 == 0 {
                    r as u8
                } else {
                    alphabet[(r % alphabet.len() as u64) as usize]
                }
            })
            .collect();
        let chunk = (rng.next() % 64) as usize + 1;
        if first_error(&data, EslCodec::new(1024, 4096), chunk).is_some() {
            errors += 1;
        }
    }
    assert!(errors > 200, "random input should mostly be rejected, got {errors} errors in 300");
}

#[test]
fn mutated_fixtures_never_panic() {
    let mut rng = XorShift(0xDEAD_BEEF_CAFE_F00D);
    for (_, data) in fixtures().into_iter().filter(|(_, d)| d.len() < 60 * 1024) {
        for _ in 0..20 {
            let mut d = data.clone();
            for _ in 0..8 {
                let i = (rng.next() as usize) % d.len();
                d[i] = rng.next() as u8;
            }
            let _ = first_error(&d, EslCodec::default(), (rng.next() % 512) as usize + 1);
        }
    }
}

#[test]
fn huge_header_is_header_too_large() {
    let data = vec![b'X'; 100_000];
    let err = first_error(&data, EslCodec::new(64 * 1024, 1024), 4096).expect("error");
    assert!(matches!(err, DecodeError::HeaderTooLarge { limit: 65536 }), "{err}");
    assert!(err.to_string().contains("65536"), "{err}");
}

#[test]
fn header_of_exactly_the_limit_passes_however_it_is_chunked() {
    // Regression (fuzz target `decode`): the limit applies to the block, not
    // to the block plus the first '\n' of its terminator.
    for size in [62usize, 63, 64, 65] {
        let mut data = b"Content-Type: api/response\nX: ".to_vec();
        data.resize(size, b'v');
        data.extend_from_slice(b"\n\n");
        for chunk in [1, 2, 3, data.len()] {
            let got = first_error(&data, EslCodec::new(64, 1024), chunk);
            if size <= 64 {
                assert!(got.is_none(), "size {size}, chunk {chunk}: {got:?}");
            } else {
                assert!(matches!(got, Some(DecodeError::HeaderTooLarge { .. })), "size {size}, chunk {chunk}: {got:?}");
            }
        }
    }
}

#[test]
fn bad_content_length_is_named() {
    for bad in ["-4", "12x", "", "99999999999999999999999", "0x10"] {
        let data = format!("Content-Type: api/response\nContent-Length: {bad}\n\n");
        let err = first_error(data.as_bytes(), EslCodec::default(), 7).expect("error");
        match &err {
            DecodeError::BadContentLength { value } => assert_eq!(value, bad),
            other => panic!("{bad:?}: expected BadContentLength, got {other}"),
        }
        assert!(err.to_string().contains("Content-Length"), "{err}");
    }
}

#[test]
fn body_over_the_limit_is_body_too_large() {
    let err = first_error(b"Content-Length: 5000\n\n", EslCodec::new(1024, 4096), 3).expect("error");
    assert!(matches!(err, DecodeError::BodyTooLarge { len: 5000, limit: 4096 }), "{err}");
}

#[test]
fn truncated_frame_at_eof_is_an_error() {
    let err =
        first_error(b"Content-Type: api/response\nContent-Length: 50\n\nshort", EslCodec::default(), 9).expect("error");
    assert!(err.to_string().contains("closed inside a frame"), "{err}");
}

#[test]
fn bad_event_bodies_are_bad_event() {
    let cases: [(&str, &[u8]); 5] = [
        ("text/event-plain", b"Event-Name: X\nContent-Length: 50\n\nshort"),
        ("text/event-plain", b"Event-Name: X\nContent-Length: lots\n\nbody"),
        ("text/event-plain", b"no colon here\n\n"),
        ("text/event-json", b"{\"Event-Name\": \"X\""),
        ("text/event-json", b"[1, 2]"),
    ];
    for (ctype, body) in cases {
        let mut data = format!("Content-Length: {}\nContent-Type: {ctype}\n\n", body.len()).into_bytes();
        data.extend_from_slice(body);
        let err = first_error(&data, EslCodec::default(), 5).expect("error");
        assert!(
            matches!(err, DecodeError::BadEvent(_) | DecodeError::BadHeaderLine { .. }),
            "{}: {err}",
            String::from_utf8_lossy(body)
        );
    }
}
