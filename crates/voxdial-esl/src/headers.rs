//! A block of `Name: value` lines kept as one buffer plus offsets.
//!
//! FreeSWITCH events carry 100–200 headers; allocating a `String` pair for each
//! would dominate decode cost, so we index the raw bytes once and decode a
//! value only when someone asks for it.

use std::borrow::Cow;

use bytes::Bytes;

use crate::error::DecodeError;

/// Byte offsets of one header line inside the block.
#[derive(Debug, Clone, Copy)]
struct Span {
    name: (u32, u32),
    value: (u32, u32),
}

/// How header values are encoded on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueEncoding {
    /// Outer frame headers: values are sent as is.
    Raw,
    /// Headers inside `text/event-plain` bodies: values are URL-encoded.
    UrlEncoded,
    /// Members of a `text/event-json` object: a value span is the raw JSON
    /// text (string literals with their quotes), unescaped on access.
    Json,
}

/// An ordered list of headers. Duplicates are kept (FreeSWITCH sends
/// `Unique-ID` and `Content-Length` twice on some `sendevent` echoes).
#[derive(Debug, Clone)]
pub struct Headers {
    raw: Bytes,
    spans: Vec<Span>,
    encoding: ValueEncoding,
    hot: Hot,
}

/// Result of scanning a header block.
pub(crate) struct Scan {
    pub(crate) headers: Headers,
    /// Index (into the header list) of the last `Content-Length` header.
    pub(crate) last_content_length: Option<usize>,
    /// Offset just past the blank line that ended the block, if there was one.
    pub(crate) rest: Option<usize>,
}

/// Headers looked up for every event (routing, framing). Their positions are
/// noted during the scan, so a lookup, and above all a miss (no `Unique-ID`
/// on HEARTBEAT or API events), costs no walk over ~90 names.
const HOT: [&str; 4] = ["Event-Name", "Unique-ID", "Job-UUID", "Content-Length"];
const CONTENT_LENGTH: usize = 3;
const ABSENT: u32 = u32::MAX;

/// First index of each `HOT` name, and the last `Content-Length`.
#[derive(Debug, Clone, Copy)]
struct Hot {
    first: [u32; HOT.len()],
    last_content_length: u32,
}

impl Default for Hot {
    fn default() -> Self {
        Hot { first: [ABSENT; HOT.len()], last_content_length: ABSENT }
    }
}

impl Hot {
    #[inline(always)]
    fn note(&mut self, name: &[u8], index: usize) {
        // Dispatch on length first: most names are longer than any hot one.
        let k = match name.len() {
            10 => 0,
            9 => 1,
            8 => 2,
            14 => 3,
            _ => return,
        };
        if HOT.get(k).is_some_and(|h| h.as_bytes() == name) {
            let index = u32::try_from(index).unwrap_or(ABSENT);
            if let Some(f) = self.first.get_mut(k).filter(|f| **f == ABSENT) {
                *f = index;
            }
            if k == CONTENT_LENGTH {
                self.last_content_length = index;
            }
        }
    }
}

/// Record one header line `start..end` whose first ':' is at `colon`.
#[inline]
fn push_line(
    bytes: &[u8],
    spans: &mut Vec<Span>,
    hot: &mut Hot,
    line_no: usize,
    (start, colon, end): (usize, Option<usize>, usize),
) -> Result<(), DecodeError> {
    let Some(colon) = colon.filter(|c| *c < end) else {
        return Err(DecodeError::BadHeaderLine { line: line_no, reason: "no ':' separator" });
    };
    if colon == start {
        return Err(DecodeError::BadHeaderLine { line: line_no, reason: "empty header name" });
    }
    let vstart = if bytes.get(colon + 1) == Some(&b' ') && colon + 1 < end { colon + 2 } else { colon + 1 };
    hot.note(bytes.get(start..colon).unwrap_or_default(), spans.len());
    // Lengths were checked against u32::MAX by the caller.
    spans.push(Span { name: (start as u32, colon as u32), value: (vstart as u32, end as u32) });
    Ok(())
}

/// Bit `i` is set where `block[i]` is ':' or '\n': four 16-byte compares
/// and move-masks (SSE2 on x86_64, NEON on aarch64, scalar elsewhere) via
/// `wide`, which keeps this crate free of `unsafe`.
#[inline(always)]
fn hit_mask(block: &[u8; 64]) -> u64 {
    use wide::u8x16;
    let nl = u8x16::splat(b'\n');
    let colon = u8x16::splat(b':');
    let mut m = 0u64;
    for (k, lane) in block.chunks_exact(16).enumerate() {
        let Ok(lane) = <[u8; 16]>::try_from(lane) else {
            continue;
        };
        let v = u8x16::new(lane);
        let hits = v.simd_eq(nl) | v.simd_eq(colon);
        m |= u64::from(hits.to_bitmask()) << (16 * k);
    }
    m
}

/// Scanner state between hits.
struct LineState {
    spans: Vec<Span>,
    hot: Hot,
    line_start: usize,
    line_no: usize,
    colon: Option<usize>,
    rest: Option<usize>,
    stop_at_blank: bool,
}

impl LineState {
    /// Handle the ':' or '\n' at `i`; `Ok(true)` when the block has ended.
    #[inline(always)]
    fn hit(&mut self, bytes: &[u8], i: usize) -> Result<bool, DecodeError> {
        if bytes.get(i) == Some(&b':') {
            if self.colon.is_none() {
                self.colon = Some(i);
            }
            return Ok(false);
        }
        self.line_no += 1;
        if i == self.line_start {
            if self.stop_at_blank {
                self.rest = Some(i + 1);
                return Ok(true);
            }
            return Err(DecodeError::BadHeaderLine { line: self.line_no, reason: "empty line inside header block" });
        }
        let end = if bytes.get(i.wrapping_sub(1)) == Some(&b'\r') { i - 1 } else { i };
        if end == self.line_start {
            return Err(DecodeError::BadHeaderLine { line: self.line_no, reason: "empty line inside header block" });
        }
        push_line(bytes, &mut self.spans, &mut self.hot, self.line_no, (self.line_start, self.colon, end))?;
        self.line_start = i + 1;
        self.colon = None;
        Ok(false)
    }
}

impl Headers {
    /// Index `raw` (without the terminating blank line) as header lines.
    ///
    /// Errors name the offending line; they never panic on any input.
    pub fn parse(raw: Bytes, encoding: ValueEncoding) -> Result<Self, DecodeError> {
        Ok(Self::scan(raw, encoding, false)?.headers)
    }

    /// Index header lines from the start of `data`. With `stop_at_blank`, the
    /// block ends at the first empty line and what follows is left to the
    /// caller (`Scan::rest`); otherwise an empty line is an error.
    ///
    /// One SIMD pass finds every ':' and '\n' at once: FreeSWITCH events have
    /// ~90 short lines, and a search call per line cost more than the scan.
    pub(crate) fn scan(data: Bytes, encoding: ValueEncoding, stop_at_blank: bool) -> Result<Scan, DecodeError> {
        if data.len() > u32::MAX as usize {
            return Err(DecodeError::HeaderTooLarge { limit: u32::MAX as usize });
        }
        let bytes = &data[..];
        // Event lines average ~40 bytes; sizing once avoids regrowth.
        let mut st = LineState {
            // Event lines average ~40 bytes; sizing once avoids regrowth.
            spans: Vec::with_capacity(bytes.len() / 32 + 4),
            hot: Hot::default(),
            line_start: 0,
            line_no: 0,
            colon: None,
            rest: None,
            stop_at_blank,
        };
        // A bit mask of hits per 64 bytes, then one step per hit: with a hit
        // every ~15 bytes this beats a search call per hit (memchr2_iter
        // measured 2x slower, 8-byte SWAR 1.3x slower).
        let mut blocks = bytes.chunks_exact(64);
        let mut base = 0usize;
        'scan: {
            for block in blocks.by_ref() {
                let Ok(block) = <&[u8; 64]>::try_from(block) else {
                    break;
                };
                let mut m = hit_mask(block);
                while m != 0 {
                    let i = base + m.trailing_zeros() as usize;
                    m &= m - 1;
                    if st.hit(bytes, i)? {
                        break 'scan;
                    }
                }
                base += 64;
            }
            let tail = blocks.remainder();
            let mut last = [0u8; 64];
            if let Some(dst) = last.get_mut(..tail.len()) {
                dst.copy_from_slice(tail);
            }
            let mut m = hit_mask(&last);
            while m != 0 {
                let i = base + m.trailing_zeros() as usize;
                m &= m - 1;
                if st.hit(bytes, i)? {
                    break 'scan;
                }
            }
        }
        if st.rest.is_none() && st.line_start < bytes.len() {
            // A last line without '\n'.
            push_line(bytes, &mut st.spans, &mut st.hot, st.line_no + 1, (st.line_start, st.colon, bytes.len()))?;
        }
        Ok(Scan {
            last_content_length: (st.hot.last_content_length != ABSENT).then_some(st.hot.last_content_length as usize),
            headers: Headers { raw: data, spans: st.spans, encoding, hot: st.hot },
            rest: st.rest,
        })
    }

    /// Build from spans computed elsewhere (the JSON event parser).
    pub(crate) fn from_spans(raw: Bytes, spans: Vec<((u32, u32), (u32, u32))>, encoding: ValueEncoding) -> Self {
        let mut hot = Hot::default();
        let spans = spans
            .into_iter()
            .enumerate()
            .map(|(i, (name, value))| {
                hot.note(raw.get(name.0 as usize..name.1 as usize).unwrap_or_default(), i);
                Span { name, value }
            })
            .collect();
        Headers { raw, spans, encoding, hot }
    }

    /// An empty header list.
    pub fn empty() -> Self {
        Headers { raw: Bytes::new(), spans: Vec::new(), encoding: ValueEncoding::Raw, hot: Hot::default() }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn name_bytes(&self, s: &Span) -> &[u8] {
        self.raw.get(s.name.0 as usize..s.name.1 as usize).unwrap_or_default()
    }

    fn value_bytes(&self, s: &Span) -> &[u8] {
        self.raw.get(s.value.0 as usize..s.value.1 as usize).unwrap_or_default()
    }

    fn decode<'a>(&self, v: &'a [u8]) -> Cow<'a, str> {
        match self.encoding {
            ValueEncoding::Raw => String::from_utf8_lossy(v),
            ValueEncoding::UrlEncoded => {
                if memchr::memchr2(b'%', b'+', v).is_none() {
                    String::from_utf8_lossy(v)
                } else {
                    // FreeSWITCH encodes spaces as %20, so '+' is literal.
                    match percent_encoding::percent_decode(v).decode_utf8() {
                        Ok(s) => s,
                        Err(_) => Cow::Owned(
                            String::from_utf8_lossy(&percent_encoding::percent_decode(v).collect::<Vec<u8>>())
                                .into_owned(),
                        ),
                    }
                }
            }
            ValueEncoding::Json => {
                if v.first() != Some(&b'"') {
                    // A number, object, `true`…: its JSON text is its value.
                    return String::from_utf8_lossy(v);
                }
                let inner = v.get(1..v.len().saturating_sub(1).max(1)).unwrap_or_default();
                if memchr::memchr(b'\\', inner).is_none() {
                    String::from_utf8_lossy(inner)
                } else {
                    match serde_json::from_slice::<String>(v) {
                        Ok(s) => Cow::Owned(s),
                        Err(_) => String::from_utf8_lossy(inner),
                    }
                }
            }
        }
    }

    /// The raw (still encoded) value of the `i`-th header.
    pub(crate) fn raw_at(&self, i: usize) -> Option<&[u8]> {
        self.spans.get(i).map(|s| self.value_bytes(s))
    }

    /// The span of the first header called `name`.
    #[inline]
    fn find(&self, name: &str) -> Option<&Span> {
        if let Some(k) = HOT.iter().position(|h| *h == name) {
            let i = *self.hot.first.get(k)?;
            return if i == ABSENT { None } else { self.spans.get(i as usize) };
        }
        let n = name.as_bytes();
        self.spans.iter().find(|s| self.name_bytes(s) == n)
    }

    /// The raw (still encoded) bytes of the first header called `name`
    /// (case-sensitive, as FreeSWITCH is).
    pub fn get_raw(&self, name: &str) -> Option<&[u8]> {
        self.find(name).map(|s| self.value_bytes(s))
    }

    /// The decoded value of the first header called `name`. Invalid UTF-8 is
    /// replaced with U+FFFD rather than rejected: a garbled caller name must not
    /// cost us the hangup event it rides on.
    pub fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        self.find(name).map(|s| self.decode(self.value_bytes(s)))
    }

    /// The decoded value of the last header called `name`.
    pub fn get_last(&self, name: &str) -> Option<Cow<'_, str>> {
        let n = name.as_bytes();
        self.spans.iter().rev().find(|s| self.name_bytes(s) == n).map(|s| self.decode(self.value_bytes(s)))
    }

    /// All values of `name`, in order.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = Cow<'a, str>> + 'a {
        let n = name.as_bytes();
        self.spans.iter().filter(move |s| self.name_bytes(s) == n).map(|s| self.decode(self.value_bytes(s)))
    }

    /// Every header as (name, decoded value), in wire order.
    pub fn iter(&self) -> impl Iterator<Item = (Cow<'_, str>, Cow<'_, str>)> + '_ {
        self.spans.iter().map(|s| (String::from_utf8_lossy(self.name_bytes(s)), self.decode(self.value_bytes(s))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decodes_lazily() {
        let raw = Bytes::from_static(
            b"Event-Name: API\nCaller-Callee-ID-Name: Outbound%20Call\nX:\nUnique-ID: a\nUnique-ID: a",
        );
        let h = Headers::parse(raw, ValueEncoding::UrlEncoded).expect("valid");
        assert_eq!(h.len(), 5);
        assert_eq!(h.get("Caller-Callee-ID-Name").as_deref(), Some("Outbound Call"));
        assert_eq!(h.get("X").as_deref(), Some(""));
        assert_eq!(h.get_all("Unique-ID").count(), 2);
        assert!(h.get("event-name").is_none(), "names are case-sensitive");
    }

    #[test]
    fn chinese_is_decoded_and_bad_utf8_is_replaced() {
        let raw = Bytes::from_static(b"ASR-Text: %E4%BD%A0%E5%A5%BD\nBad: %FF%FE");
        let h = Headers::parse(raw, ValueEncoding::UrlEncoded).expect("valid");
        assert_eq!(h.get("ASR-Text").as_deref(), Some("你好"));
        assert_eq!(h.get("Bad").as_deref(), Some("\u{FFFD}\u{FFFD}"));
    }

    #[test]
    fn rejects_lines_without_colon() {
        let err =
            Headers::parse(Bytes::from_static(b"A: b\ngarbage"), ValueEncoding::Raw).expect_err("line 2 has no colon");
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
