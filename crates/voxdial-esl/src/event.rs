//! Events: `text/event-plain`, `text/event-json` and `text/event-xml` bodies
//! turned into one header/body view.

use std::borrow::Cow;

use bytes::Bytes;

use crate::codec::{ContentType, Frame};
use crate::error::DecodeError;
use crate::headers::{Headers, ValueEncoding};

#[derive(Debug, Clone)]
enum Repr {
    /// Plain events: URL-encoded headers indexed in place.
    Plain(Headers),
    /// JSON and XML events: decoded pairs in wire order.
    Pairs(Vec<(String, String)>),
}

/// One FreeSWITCH event.
#[derive(Debug, Clone)]
pub struct Event {
    repr: Repr,
    body: Option<Bytes>,
}

impl Event {
    /// Decode the event carried by `frame`. Returns `Ok(None)` for frames that
    /// are not events.
    pub fn from_frame(frame: &Frame) -> Result<Option<Event>, DecodeError> {
        match frame.content_type {
            ContentType::EventPlain => Self::parse_plain(frame.body.clone()).map(Some),
            ContentType::EventJson => Self::parse_json(frame.body.clone()).map(Some),
            ContentType::EventXml => Self::parse_xml(&frame.body).map(Some),
            _ => Ok(None),
        }
    }

    /// Parse a plain event body: headers, blank line, then the event's own
    /// `Content-Length` bytes of body when it has one.
    pub fn parse_plain(data: Bytes) -> Result<Event, DecodeError> {
        let scan = Headers::scan(data.clone(), ValueEncoding::UrlEncoded, true)?;
        let headers = scan.headers;
        // Echoed `sendevent`s may repeat Content-Length; the last one sits
        // right before the body.
        let len = scan.last_content_length.and_then(|i| headers.raw_at(i));
        let body = match (len, scan.rest) {
            (Some(len), Some(rest)) => {
                let n = parse_inner_length(len)?;
                let avail = data.len() - rest;
                if n > avail {
                    return Err(DecodeError::BadEvent(format!("inner Content-Length {n} but only {avail} body bytes")));
                }
                Some(data.slice(rest..rest + n))
            }
            (Some(len), None) if parse_inner_length(len)? != 0 => {
                return Err(DecodeError::BadEvent(format!(
                    "inner Content-Length {} but no body",
                    String::from_utf8_lossy(len)
                )));
            }
            _ => None,
        };
        Ok(Event { repr: Repr::Plain(headers), body })
    }

    /// Parse a JSON event: a flat object whose values are (almost always)
    /// strings. Values stay in `data` as spans and are unescaped on access, so
    /// decoding allocates one span list instead of two strings per header.
    fn parse_json(data: Bytes) -> Result<Event, DecodeError> {
        let bad = |e: serde_json::Error| DecodeError::BadEvent(format!("invalid JSON event: {e}"));
        let members: JsonMembers<'_> = serde_json::from_slice(&data).map_err(bad)?;
        let base = data.as_ptr() as usize;
        // Where a borrowed slice sits inside `data`.
        let offset = |s: &str| -> Option<(u32, u32)> {
            let start = (s.as_ptr() as usize).checked_sub(base)?;
            let end = start.checked_add(s.len())?;
            (end <= data.len() && end <= u32::MAX as usize).then_some((start as u32, end as u32))
        };
        let mut spans = Vec::with_capacity(members.0.len());
        let mut body = None;
        let mut owned_keys = false;
        for (k, v) in &members.0 {
            let (Cow::Borrowed(key), Some(value)) = (k, offset(v.get())) else {
                owned_keys = true;
                break;
            };
            if *key == "_body" {
                body = Some(json_body(&data, v.get(), value)?);
                continue;
            }
            let Some(name) = offset(key) else {
                owned_keys = true;
                break;
            };
            spans.push((name, value));
        }
        if owned_keys {
            // A key with escapes cannot be a span into `data`: take the slow path.
            return Self::parse_json_owned(&members);
        }
        drop(members);
        Ok(Event { repr: Repr::Plain(Headers::from_spans(data, spans, ValueEncoding::Json)), body })
    }

    fn parse_json_owned(members: &JsonMembers<'_>) -> Result<Event, DecodeError> {
        let mut pairs = Vec::with_capacity(members.0.len());
        let mut body = None;
        for (k, v) in &members.0 {
            let value = match serde_json::from_str::<String>(v.get()) {
                Ok(s) => s,
                Err(_) => v.get().to_string(),
            };
            if k == "_body" {
                body = Some(Bytes::from(value));
            } else {
                pairs.push((k.clone().into_owned(), value));
            }
        }
        Ok(Event { repr: Repr::Pairs(pairs), body })
    }

    fn parse_xml(data: &[u8]) -> Result<Event, DecodeError> {
        let text = std::str::from_utf8(data).map_err(|_| DecodeError::BadEvent("XML event is not UTF-8".into()))?;
        let bad = |w: &str| DecodeError::BadEvent(format!("XML event: {w}"));
        let hs = text.find("<headers>").ok_or_else(|| bad("no <headers>"))? + "<headers>".len();
        let he = text[hs..].find("</headers>").ok_or_else(|| bad("no </headers>"))? + hs;
        let mut pairs = Vec::new();
        let mut rest = &text[hs..he];
        while let Some(open) = rest.find('<') {
            let close = rest[open..].find('>').ok_or_else(|| bad("unterminated tag"))? + open;
            let name = &rest[open + 1..close];
            if name.is_empty() || name.starts_with('/') {
                return Err(bad("unexpected closing tag"));
            }
            let end_tag = format!("</{name}>");
            let vend = rest[close + 1..].find(&end_tag).ok_or_else(|| bad("missing closing tag"))? + close + 1;
            let raw = &rest[close + 1..vend];
            let unescaped = xml_unescape(raw);
            let value = percent_encoding::percent_decode_str(&unescaped).decode_utf8_lossy().into_owned();
            pairs.push((name.to_string(), value));
            rest = &rest[vend + end_tag.len()..];
        }
        let body = text.find("<body>").and_then(|bs| {
            let bs = bs + "<body>".len();
            text[bs..].find("</body>").map(|be| Bytes::from(xml_unescape(&text[bs..bs + be])))
        });
        Ok(Event { repr: Repr::Pairs(pairs), body })
    }

    /// The first value of header `name`, decoded.
    pub fn header(&self, name: &str) -> Option<Cow<'_, str>> {
        match &self.repr {
            Repr::Plain(h) => h.get(name),
            Repr::Pairs(p) => p.iter().find(|(k, _)| k == name).map(|(_, v)| Cow::Borrowed(v.as_str())),
        }
    }

    /// `Event-Name`, or `Event-Subclass` for queued CUSTOM echoes that lack it.
    pub fn name(&self) -> Option<Cow<'_, str>> {
        self.header("Event-Name")
    }

    pub fn subclass(&self) -> Option<Cow<'_, str>> {
        self.header("Event-Subclass")
    }

    /// `Unique-ID` of the channel the event is about.
    pub fn unique_id(&self) -> Option<Cow<'_, str>> {
        self.header("Unique-ID")
    }

    pub fn job_uuid(&self) -> Option<Cow<'_, str>> {
        self.header("Job-UUID")
    }

    /// `variable_<name>`.
    pub fn var(&self, name: &str) -> Option<Cow<'_, str>> {
        self.header(&format!("variable_{name}"))
    }

    pub fn body(&self) -> Option<&Bytes> {
        self.body.as_ref()
    }

    pub fn body_text(&self) -> Option<Cow<'_, str>> {
        self.body.as_ref().map(|b| String::from_utf8_lossy(b))
    }

    /// Every header in wire order.
    pub fn headers(&self) -> Vec<(String, String)> {
        match &self.repr {
            Repr::Plain(h) => h.iter().map(|(k, v)| (k.into_owned(), v.into_owned())).collect(),
            Repr::Pairs(p) => p.clone(),
        }
    }

    pub fn header_count(&self) -> usize {
        match &self.repr {
            Repr::Plain(h) => h.len(),
            Repr::Pairs(p) => p.len(),
        }
    }
}

/// An inner `Content-Length` value.
fn parse_inner_length(raw: &[u8]) -> Result<usize, DecodeError> {
    std::str::from_utf8(raw).ok().and_then(|s| s.trim().parse().ok()).ok_or_else(|| {
        DecodeError::BadEvent(format!("inner Content-Length {:?} is not a number", String::from_utf8_lossy(raw)))
    })
}

/// The `_body` member: a zero-copy slice when it has no escapes.
fn json_body(data: &Bytes, raw: &str, (start, end): (u32, u32)) -> Result<Bytes, DecodeError> {
    let (start, end) = (start as usize, end as usize);
    if !raw.starts_with('"') {
        return Ok(data.slice(start..end));
    }
    if !raw.contains('\\') && end - start >= 2 {
        return Ok(data.slice(start + 1..end - 1));
    }
    serde_json::from_str::<String>(raw)
        .map(Bytes::from)
        .map_err(|e| DecodeError::BadEvent(format!("invalid JSON event body: {e}")))
}

/// The members of a JSON object in wire order, borrowing from the input
/// (keys are owned only when they contain escapes).
struct JsonMembers<'a>(Vec<(Cow<'a, str>, &'a serde_json::value::RawValue)>);

impl<'de> serde::Deserialize<'de> for JsonMembers<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = JsonMembers<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(128).min(1024));
                while let Some((k, v)) = map.next_entry::<CowStr<'de>, &'de serde_json::value::RawValue>()? {
                    out.push((k.0, v));
                }
                Ok(JsonMembers(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A string that borrows from the input when it has no escapes
/// (`Cow<str>` alone always allocates under serde).
struct CowStr<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for CowStr<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = CowStr<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V)
    }
}

fn xml_unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    s.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", "\"").replace("&apos;", "'").replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_event_with_inner_body() {
        let ev = Event::parse_plain(Bytes::from_static(
            b"Event-Name: BACKGROUND_JOB\nJob-UUID: j1\nContent-Length: 15\n\n-ERR USER_BUSY\n",
        ))
        .expect("valid");
        assert_eq!(ev.name().as_deref(), Some("BACKGROUND_JOB"));
        assert_eq!(ev.body_text().as_deref(), Some("-ERR USER_BUSY\n"));
    }

    #[test]
    fn json_event_body() {
        let ev = Event::parse_json(Bytes::from_static(
            br#"{"Event-Name":"BACKGROUND_JOB","Job-UUID":"j","_body":"+OK x\n","A":"x\"y","N":12}"#,
        ))
        .expect("valid");
        assert_eq!(ev.job_uuid().as_deref(), Some("j"));
        assert_eq!(ev.body_text().as_deref(), Some("+OK x\n"));
        assert_eq!(ev.header("A").as_deref(), Some("x\"y"));
        assert_eq!(ev.header("N").as_deref(), Some("12"));
        let names: Vec<String> = ev.headers().into_iter().map(|(k, _)| k).collect();
        assert_eq!(names, ["Event-Name", "Job-UUID", "A", "N"], "wire order, _body excluded");
    }

    #[test]
    fn json_event_with_escaped_key_takes_the_owned_path() {
        let ev = Event::parse_json(Bytes::from_static(br#"{"K\u0041":"v","_body":"b"}"#)).expect("valid");
        assert_eq!(ev.header("KA").as_deref(), Some("v"));
        assert_eq!(ev.body_text().as_deref(), Some("b"));
    }

    #[test]
    fn xml_event() {
        let ev = Event::parse_xml(
            b"<event>\n<headers>\n<Event-Name>CUSTOM</Event-Name>\n<A>x%20y&amp;z</A>\n</headers>\n<body>hi</body></event>",
        )
        .expect("valid");
        assert_eq!(ev.header("A").as_deref(), Some("x y&z"));
        assert_eq!(ev.body_text().as_deref(), Some("hi"));
    }

    #[test]
    fn inner_length_beyond_body_is_an_error() {
        assert!(Event::parse_plain(Bytes::from_static(b"Event-Name: X\nContent-Length: 50\n\nshort")).is_err());
    }
}
