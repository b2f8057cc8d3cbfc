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
            ContentType::EventJson => Self::parse_json(&frame.body).map(Some),
            ContentType::EventXml => Self::parse_xml(&frame.body).map(Some),
            _ => Ok(None),
        }
    }

    /// Parse a plain event body: headers, blank line, then the event's own
    /// `Content-Length` bytes of body when it has one.
    pub fn parse_plain(data: Bytes) -> Result<Event, DecodeError> {
        let (head, rest) = match memchr::memmem::find(&data, b"\n\n") {
            Some(i) => (data.slice(..i), Some(data.slice(i + 2..))),
            None => {
                let end = data.len() - data.iter().rev().take_while(|b| **b == b'\n').count();
                (data.slice(..end), None)
            }
        };
        let headers = Headers::parse(head, ValueEncoding::UrlEncoded)?;
        // Echoed `sendevent`s may repeat Content-Length; the last one sits
        // right before the body.
        let body = match (headers.get_last("Content-Length"), rest) {
            (Some(len), Some(rest)) => {
                let n: usize = len
                    .trim()
                    .parse()
                    .map_err(|_| DecodeError::BadEvent(format!("inner Content-Length {len:?} is not a number")))?;
                if n > rest.len() {
                    return Err(DecodeError::BadEvent(format!(
                        "inner Content-Length {n} but only {} body bytes",
                        rest.len()
                    )));
                }
                Some(rest.slice(..n))
            }
            (Some(len), None) if len.trim() != "0" => {
                return Err(DecodeError::BadEvent(format!("inner Content-Length {len} but no body")));
            }
            _ => None,
        };
        Ok(Event { repr: Repr::Plain(headers), body })
    }

    fn parse_json(data: &[u8]) -> Result<Event, DecodeError> {
        let value: serde_json::Value =
            serde_json::from_slice(data).map_err(|e| DecodeError::BadEvent(format!("invalid JSON event: {e}")))?;
        let serde_json::Value::Object(map) = value else {
            return Err(DecodeError::BadEvent("JSON event is not an object".into()));
        };
        let mut pairs = Vec::with_capacity(map.len());
        let mut body = None;
        for (k, v) in map {
            let s = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            if k == "_body" {
                body = Some(Bytes::from(s));
            } else {
                pairs.push((k, s));
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
        let ev = Event::parse_json(br#"{"Event-Name":"BACKGROUND_JOB","Job-UUID":"j","_body":"+OK x\n"}"#).expect("valid");
        assert_eq!(ev.job_uuid().as_deref(), Some("j"));
        assert_eq!(ev.body_text().as_deref(), Some("+OK x\n"));
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
