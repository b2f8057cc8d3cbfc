//! Replays every captured FreeSWITCH trace through the codec.

use std::path::PathBuf;

use bytes::BytesMut;
use tokio_util::codec::Decoder;
use voxdial_esl::{ContentType, EslCodec, Event, Frame};

fn fixture_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/esl")
}

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(fixture_dir()).expect("fixture dir") {
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

fn decode_chunked(data: &[u8], chunks: &mut dyn Iterator<Item = usize>) -> Vec<Frame> {
    let mut codec = EslCodec::default();
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let mut pos = 0;
    while pos < data.len() {
        let n = chunks.next().unwrap_or(data.len()).clamp(1, data.len() - pos);
        buf.extend_from_slice(&data[pos..pos + n]);
        pos += n;
        while let Some(f) = codec.decode(&mut buf).expect("fixture decodes") {
            frames.push(f);
        }
    }
    assert!(codec.decode_eof(&mut buf).expect("clean eof").is_none());
    frames
}

#[test]
fn every_fixture_decodes_whole_and_byte_by_byte() {
    for (name, data) in fixtures() {
        let whole = decode_chunked(&data, &mut std::iter::empty());
        let bytewise = decode_chunked(&data, &mut std::iter::repeat(1));
        assert_eq!(whole.len(), bytewise.len(), "{name}");
        for (a, b) in whole.iter().zip(&bytewise) {
            assert_eq!(a.body, b.body, "{name}");
            assert_eq!(a.content_type, b.content_type, "{name}");
        }
        assert_eq!(whole[0].content_type, ContentType::AuthRequest, "{name} starts with the greeting");
        let mut events = 0;
        for f in &whole {
            if let Some(ev) = Event::from_frame(f).unwrap_or_else(|e| panic!("{name}: {e}")) {
                events += 1;
                assert!(
                    ev.name().is_some() || ev.subclass().is_some(),
                    "{name}: event without Event-Name or Event-Subclass"
                );
            }
        }
        if !name.starts_with("auth") && !name.starts_with("api-") {
            assert!(events > 0, "{name} has events");
        }
    }
}

#[test]
fn random_chunks_give_identical_frames() {
    // A small xorshift keeps the test deterministic without a dependency.
    let mut s: u64 = 0x9E37_79B9_7F4A_7C15;
    for (name, data) in fixtures() {
        let whole = decode_chunked(&data, &mut std::iter::empty());
        for _ in 0..5 {
            let mut chunks = std::iter::from_fn(|| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                Some((s % 3000) as usize + 1)
            });
            let split = decode_chunked(&data, &mut chunks);
            assert_eq!(whole.len(), split.len(), "{name}");
            assert!(whole.iter().zip(&split).all(|(a, b)| a.body == b.body), "{name}");
        }
    }
}

#[test]
fn hangup_complete_facts_are_readable() {
    let data = std::fs::read(fixture_dir().join("busy-486-plain.esl")).expect("read");
    let frames = decode_chunked(&data, &mut std::iter::empty());
    let ev = frames
        .iter()
        .filter_map(|f| Event::from_frame(f).expect("event"))
        .find(|e| e.name().as_deref() == Some("CHANNEL_HANGUP_COMPLETE"))
        .expect("hangup complete");
    assert_eq!(ev.header("Hangup-Cause").as_deref(), Some("USER_BUSY"));
    assert_eq!(ev.var("sip_term_status").as_deref(), Some("486"));
    assert_eq!(ev.var("sip_invite_failure_phrase").as_deref(), Some("Busy Here"));
    assert_eq!(ev.var("proto_specific_hangup_cause").as_deref(), Some("sip:486"));
}

#[test]
fn sendevent_echo_with_duplicate_headers_keeps_its_body() {
    let data = std::fs::read(fixture_dir().join("sendevent-custom-plain.esl")).expect("read");
    let frames = decode_chunked(&data, &mut std::iter::empty());
    let echoes: Vec<Event> = frames
        .iter()
        .filter_map(|f| Event::from_frame(f).expect("event"))
        .filter(|e| e.subclass().as_deref() == Some("voxdial::asr"))
        .collect();
    assert_eq!(echoes.len(), 3);
    assert_eq!(echoes[0].header("ASR-Text").as_deref(), Some("你好，我对这个产品很感兴趣"));
    assert_eq!(echoes[0].body().map(|b| b.len()), Some(135));
    assert!(echoes[0].name().is_none());
    assert_eq!(echoes[2].body_text().as_deref(), Some("请稍后再打来\n"));
}
