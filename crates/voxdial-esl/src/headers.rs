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
}

/// An ordered list of headers. Duplicates are kept (FreeSWITCH sends
/// `Unique-ID` and `Content-Length` twice on some `sendevent` echoes).
#[derive(Debug, Clone)]
pub struct Headers {
    raw: Bytes,
    spans: Vec<Span>,
    encoding: ValueEncoding,
}

impl Headers {
    /// Index `raw` (without the terminating blank line) as header lines.
    ///
    /// Errors name the offending line; they never panic on any input.
    pub fn parse(raw: Bytes, encoding: ValueEncoding) -> Result<Self, DecodeError> {
        if raw.len() > u32::MAX as usize {
            return Err(DecodeError::HeaderTooLarge { limit: u32::MAX as usize });
        }
        let mut spans = Vec::with_capacity(16);
        let mut pos = 0usize;
        let mut line_no = 0usize;
        let data = &raw[..];
        while pos < data.len() {
            line_no += 1;
            let end = memchr::memchr(b'\n', &data[pos..]).map_or(data.len(), |i| pos + i);
            let mut line_end = end;
            if line_end > pos && data[line_end - 1] == b'\r' {
                line_end -= 1;
            }
            let line = &data[pos..line_end];
            if line.is_empty() {
                // An empty line inside a block can only come from a caller that
                // did not split at the blank line; reject rather than guess.
                return Err(DecodeError::BadHeaderLine {
                    line: line_no,
                    reason: "empty line inside header block",
                });
            }
            let colon = memchr::memchr(b':', line).ok_or(DecodeError::BadHeaderLine {
                line: line_no,
                reason: "no ':' separator",
            })?;
            if colon == 0 {
                return Err(DecodeError::BadHeaderLine { line: line_no, reason: "empty header name" });
            }
            let mut vstart = colon + 1;
            if line.get(vstart) == Some(&b' ') {
                vstart += 1;
            }
            spans.push(Span {
                name: (pos as u32, (pos + colon) as u32),
                value: ((pos + vstart) as u32, line_end as u32),
            });
            pos = end + 1;
        }
        Ok(Headers { raw, spans, encoding })
    }

    /// An empty header list.
    pub fn empty() -> Self {
        Headers { raw: Bytes::new(), spans: Vec::new(), encoding: ValueEncoding::Raw }
    }

    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn name_bytes(&self, s: &Span) -> &[u8] {
        &self.raw[s.name.0 as usize..s.name.1 as usize]
    }

    fn value_bytes(&self, s: &Span) -> &[u8] {
        &self.raw[s.value.0 as usize..s.value.1 as usize]
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
        }
    }

    /// The raw (still encoded) bytes of the first header called `name`
    /// (case-sensitive, as FreeSWITCH is).
    pub fn get_raw(&self, name: &str) -> Option<&[u8]> {
        let n = name.as_bytes();
        self.spans.iter().find(|s| self.name_bytes(s) == n).map(|s| self.value_bytes(s))
    }

    /// The decoded value of the first header called `name`. Invalid UTF-8 is
    /// replaced with U+FFFD rather than rejected: a garbled caller name must not
    /// cost us the hangup event it rides on.
    pub fn get(&self, name: &str) -> Option<Cow<'_, str>> {
        let n = name.as_bytes();
        self.spans.iter().find(|s| self.name_bytes(s) == n).map(|s| self.decode(self.value_bytes(s)))
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
        self.spans
            .iter()
            .map(|s| (String::from_utf8_lossy(self.name_bytes(s)), self.decode(self.value_bytes(s))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_decodes_lazily() {
        let raw = Bytes::from_static(b"Event-Name: API\nCaller-Callee-ID-Name: Outbound%20Call\nX:\nUnique-ID: a\nUnique-ID: a");
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
        let err = Headers::parse(Bytes::from_static(b"A: b\ngarbage"), ValueEncoding::Raw).unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
