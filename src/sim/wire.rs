//! Renders FreeSWITCH-shaped ESL frames.
//!
//! The simulator must be indistinguishable from FreeSWITCH 1.10 on the wire, so
//! everything here mirrors the captures in `tests/fixtures/esl/` (see its
//! README): header names and order, URL-encoding of plain events, the compact
//! JSON of `event json`, and the order of events per call phase.
//!
//! Rendering writes straight into a `BytesMut`; one scratch buffer per call of
//! [`Renderer::phase`] holds an event body until its length is known.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::{BufMut, Bytes, BytesMut};

/// Wire format of events on a connection (`event plain …` / `event json …`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Plain,
    Json,
}

/// How a call ended, as FreeSWITCH reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Hangup {
    /// `Hangup-Cause`, e.g. `USER_BUSY`.
    pub cause: String,
    /// `variable_hangup_cause_q850`.
    pub q850: u16,
    /// `variable_sip_term_status`; `None` when FreeSWITCH itself ended the call.
    pub sip_term_status: Option<u16>,
    /// `variable_sip_invite_failure_status` / `_phrase`, e.g. `(486, "Busy Here")`.
    pub sip_invite_failure: Option<(u16, String)>,
    /// `variable_sip_hangup_disposition`: recv_bye | send_bye | recv_refuse | send_cancel.
    pub disposition: String,
}

/// Everything about one simulated outbound channel that appears in event headers.
#[derive(Debug, Clone, Default)]
pub struct Channel {
    pub uuid: String,
    /// Number dialed (`sofia/gateway/GW/<dialed>`).
    pub dialed: String,
    /// `origination_caller_id_number`.
    pub caller_id_number: String,
    pub gateway: String,
    pub context: String,
    pub extension: String,
    /// Epoch microseconds.
    pub created_us: i64,
    /// 180 received (0 if none).
    pub progress_us: i64,
    /// 183 with SDP (0 if none).
    pub progress_media_us: i64,
    /// 0 if never answered.
    pub answered_us: i64,
    /// 0 while up.
    pub hangup_us: i64,
    /// After CALL_UPDATE the caller profile is swapped (README).
    pub swapped: bool,
    /// `Caller-Profile-Index`.
    pub profile_index: u32,
    /// Set once record_session ran.
    pub record_path: Option<String>,
    /// Channel variables, rendered as `variable_<k>` in this order.
    ///
    /// Before [`Phase::Originate`] this holds the dial-string (`{…}`/`[…]`)
    /// variables; from then on it is the channel's full variable list as
    /// FreeSWITCH keeps it (its own variables included), so `uuid_setvar` and
    /// `uuid_getvar` can work on it. Use [`Channel::set_var`] to change it the
    /// way FreeSWITCH does (a re-set variable moves to the end).
    pub variables: Vec<(String, String)>,
    pub hangup: Option<Hangup>,
}

impl Channel {
    /// FreeSWITCH's `switch_channel_set_variable`: delete then append, so a
    /// re-set variable moves to the end of the list (the captures show this).
    pub fn set_var(&mut self, name: &str, value: &str) {
        self.del_var(name);
        if !value.is_empty() {
            self.variables.push((name.to_string(), value.to_string()));
        }
    }

    /// Remove a variable (FreeSWITCH drops variables set to an empty value).
    pub fn del_var(&mut self, name: &str) {
        self.variables.retain(|(k, _)| k != name);
    }

    /// The value of variable `name`.
    pub fn var(&self, name: &str) -> Option<&str> {
        self.variables.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// One step of a call's life; each renders the exact sequence of events real
/// FreeSWITCH sends for it, in the README's order.
#[derive(Debug, Clone)]
pub enum Phase {
    /// CHANNEL_OUTGOING, CHANNEL_STATE, CHANNEL_CREATE, CHANNEL_ORIGINATE, CHANNEL_STATE ×2
    Originate,
    /// 180: CHANNEL_PROGRESS, CHANNEL_CALLSTATE
    Ringing,
    /// 183+SDP: CHANNEL_PROGRESS_MEDIA, CHANNEL_CALLSTATE, CODEC ×2
    EarlyMedia,
    /// 200: CODEC ×2 (if no early media), CHANNEL_ANSWER, CHANNEL_CALLSTATE
    Answer,
    /// The robot extension runs (answer, set RECORD_STEREO, record_session, park).
    RobotDialplan { record_path: String },
    /// uuid_broadcast <file> aleg: CHANNEL_EXECUTE (playback), PLAYBACK_START
    PlaybackStart { file: String },
    /// PLAYBACK_STOP, CHANNEL_EXECUTE_COMPLETE, PRIVATE_COMMAND
    PlaybackStop { file: String, broken: bool },
    /// DETECTED_SPEECH begin-speaking (no body)
    SpeechBegin,
    /// DETECTED_SPEECH detected-speech with an NLSML body
    SpeechDetected { text: String, confidence: u8 },
    /// uuid_transfer … park inline
    TransferPark,
    /// CHANNEL_HANGUP … CHANNEL_STATE (CS_HANGUP); uses `ch.hangup`
    Hangup,
    /// CHANNEL_HANGUP_COMPLETE, CHANNEL_DESTROY, CHANNEL_STATE
    HangupComplete,
}

/// The 67-byte notice FreeSWITCH sends after `exit` or a failed `auth`.
pub const GOODBYE: &str = "Disconnected, goodbye.\nSee you at ClueCon! http://www.cluecon.com/\n";

const HOSTNAME: &str = "fs-host";
const IPV4: &str = "127.0.0.1";
const IPV6: &str = "::1";

/// `Event-Calling-File`, `-Function`, `-Line-Number` of an event.
#[derive(Clone, Copy)]
struct Src(&'static str, &'static str, u32);

/// Renders events for one simulated FreeSWITCH instance.
pub struct Renderer {
    core_uuid: String,
    seq: AtomicU64,
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

impl Renderer {
    pub fn new(core_uuid: &str) -> Self {
        Renderer { core_uuid: core_uuid.to_string(), seq: AtomicU64::new(1) }
    }

    fn next_seq(&self) -> u64 {
        self.seq.fetch_add(1, Ordering::Relaxed)
    }

    /// Start an event: the common header block every FreeSWITCH event has.
    fn begin<'a>(&self, fmt: Format, buf: &'a mut Vec<u8>, name: &str, ts: i64, src: Src) -> Ev<'a> {
        let mut ev = Ev::new(fmt, buf);
        self.common(&mut ev, name, ts, src);
        ev
    }

    fn common(&self, ev: &mut Ev<'_>, name: &str, ts: i64, src: Src) {
        let Src(file, func, line) = src;
        ev.h("Event-Name", name);
        ev.h("Core-UUID", &self.core_uuid);
        ev.h("FreeSWITCH-Hostname", HOSTNAME);
        ev.h("FreeSWITCH-Switchname", HOSTNAME);
        ev.h("FreeSWITCH-IPv4", IPV4);
        ev.h("FreeSWITCH-IPv6", IPV6);
        let mut d = [0u8; 32];
        let n = fmt_local(ts, &mut d);
        ev.h_bytes("Event-Date-Local", &d[..n]);
        let n = fmt_gmt(ts, &mut d);
        ev.h_bytes("Event-Date-GMT", &d[..n]);
        ev.h_int("Event-Date-Timestamp", ts);
        ev.h("Event-Calling-File", file);
        ev.h("Event-Calling-Function", func);
        ev.h_int("Event-Calling-Line-Number", i64::from(line));
        ev.h_int("Event-Sequence", i64::try_from(self.next_seq()).unwrap_or(i64::MAX));
    }

    /// Append the frames of `phase` for `ch` to `out`, in order, skipping
    /// events for which `wants(event_name, subclass)` is false.
    pub fn phase(
        &self,
        fmt: Format,
        phase: &Phase,
        ch: &mut Channel,
        wants: &dyn Fn(&str, Option<&str>) -> bool,
        out: &mut BytesMut,
    ) {
        let mut scratch = Vec::with_capacity(8 * 1024);
        let ts = now_us();
        let name = match phase {
            Phase::Originate => {
                if ch.created_us == 0 {
                    ch.created_us = ts;
                }
                if ch.profile_index == 0 {
                    ch.profile_index = 1;
                }
                "CHANNEL_CREATE"
            }
            Phase::Ringing => {
                ch.progress_us = ts;
                "CHANNEL_PROGRESS"
            }
            Phase::EarlyMedia => {
                ch.progress_media_us = ts;
                "CHANNEL_PROGRESS_MEDIA"
            }
            Phase::Answer => {
                ch.answered_us = ts;
                "CHANNEL_ANSWER"
            }
            Phase::RobotDialplan { record_path } => {
                ch.swapped = true;
                ch.profile_index = 2;
                ch.record_path = Some(record_path.clone());
                "CHANNEL_PARK"
            }
            Phase::PlaybackStart { .. } => "PLAYBACK_START",
            Phase::PlaybackStop { .. } => "PLAYBACK_STOP",
            Phase::SpeechBegin | Phase::SpeechDetected { .. } => "DETECTED_SPEECH",
            Phase::TransferPark => {
                ch.profile_index += 1;
                "CHANNEL_PARK"
            }
            Phase::Hangup => {
                if ch.hangup_us == 0 {
                    ch.hangup_us = ts;
                }
                "CHANNEL_HANGUP"
            }
            Phase::HangupComplete => "CHANNEL_HANGUP_COMPLETE",
        };
        if !wants(name, None) {
            return;
        }
        let mut ev = self.begin(fmt, &mut scratch, name, ts, Src("switch_channel.c", "sim", 0));
        ev.h("Unique-ID", &ch.uuid);
        if let Some(h) = &ch.hangup {
            ev.h("Hangup-Cause", &h.cause);
        }
        for (k, v) in &ch.variables {
            ev.h_var(k, v);
        }
        ev.finish(None);
        frame_event(fmt, &scratch, out);
    }

    /// BACKGROUND_JOB event frame.
    pub fn background_job(&self, fmt: Format, job_uuid: &str, command: &str, arg: &str, body: &str) -> Bytes {
        let mut scratch = Vec::with_capacity(1024);
        let mut ev =
            self.begin(fmt, &mut scratch, "BACKGROUND_JOB", now_us(), Src("mod_event_socket.c", "api_exec", 1572));
        ev.h("Job-UUID", job_uuid);
        ev.h("Job-Command", command);
        ev.h("Job-Command-Arg", arg);
        ev.finish(Some(body));
        let mut out = BytesMut::with_capacity(scratch.len() + 64);
        frame_event(fmt, &scratch, &mut out);
        out.freeze()
    }

    /// API event frame as FreeSWITCH fires for an api/bgapi command.
    pub fn api_event(&self, fmt: Format, command: &str, arg: &str) -> Bytes {
        let mut scratch = Vec::with_capacity(1024);
        let mut ev =
            self.begin(fmt, &mut scratch, "API", now_us(), Src("switch_loadable_module.c", "switch_api_execute", 2954));
        ev.h("API-Command", command);
        ev.h("API-Command-Argument", arg);
        ev.finish(None);
        let mut out = BytesMut::with_capacity(scratch.len() + 64);
        frame_event(fmt, &scratch, &mut out);
        out.freeze()
    }

    /// HEARTBEAT event frame.
    pub fn heartbeat(&self, fmt: Format, session_count: u64, sessions_since_startup: u64) -> Bytes {
        let mut scratch = Vec::with_capacity(1024);
        let mut ev = self.begin(fmt, &mut scratch, "HEARTBEAT", now_us(), Src("switch_core.c", "send_heartbeat", 95));
        ev.h("Event-Info", "System Ready");
        ev.h_int("Session-Count", i64::try_from(session_count).unwrap_or(i64::MAX));
        ev.h_int("Session-Since-Startup", i64::try_from(sessions_since_startup).unwrap_or(i64::MAX));
        ev.finish(None);
        let mut out = BytesMut::with_capacity(scratch.len() + 64);
        frame_event(fmt, &scratch, &mut out);
        out.freeze()
    }

    /// A CUSTOM event as echoed for `sendevent` or fired by an ASR module.
    pub fn custom_event(
        &self,
        fmt: Format,
        subclass: &str,
        headers: &[(&str, &str)],
        ch: Option<&Channel>,
        body: Option<&str>,
    ) -> Bytes {
        let mut scratch = Vec::with_capacity(1024);
        let mut ev = Ev::new(fmt, &mut scratch);
        ev.h("Event-Subclass", subclass);
        for (k, v) in headers {
            ev.h(k, v);
        }
        if let Some(ch) = ch {
            ev.h("Unique-ID", &ch.uuid);
        }
        ev.finish(body);
        let mut out = BytesMut::with_capacity(scratch.len() + 64);
        frame_event(fmt, &scratch, &mut out);
        out.freeze()
    }
}

/// `auth/request` greeting.
pub fn auth_request() -> Bytes {
    Bytes::from_static(b"Content-Type: auth/request\n\n")
}

/// `command/reply` with `Reply-Text` and extra headers (e.g. `Job-UUID`).
pub fn command_reply(reply_text: &str, extra: &[(&str, &str)]) -> Bytes {
    let mut out = BytesMut::with_capacity(64 + reply_text.len());
    out.put_slice(b"Content-Type: command/reply\nReply-Text: ");
    out.put_slice(reply_text.as_bytes());
    out.put_u8(b'\n');
    for (k, v) in extra {
        out.put_slice(k.as_bytes());
        out.put_slice(b": ");
        out.put_slice(v.as_bytes());
        out.put_u8(b'\n');
    }
    out.put_u8(b'\n');
    out.freeze()
}

/// `api/response` carrying `body` verbatim.
pub fn api_response(body: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(64 + body.len());
    out.put_slice(b"Content-Type: api/response\nContent-Length: ");
    put_int(&mut out, body.len() as i64);
    out.put_slice(b"\n\n");
    out.put_slice(body.as_bytes());
    out.freeze()
}

/// `text/disconnect-notice` with `text` as body ([`GOODBYE`] or the shutdown text).
pub fn disconnect_notice(text: &str) -> Bytes {
    let mut out = BytesMut::with_capacity(64 + text.len());
    out.put_slice(b"Content-Type: text/disconnect-notice\nContent-Length: ");
    put_int(&mut out, text.len() as i64);
    out.put_slice(b"\n\n");
    out.put_slice(text.as_bytes());
    out.freeze()
}

/// Wrap a rendered event body in its outer frame.
fn frame_event(fmt: Format, body: &[u8], out: &mut BytesMut) {
    out.reserve(body.len() + 64);
    out.put_slice(b"Content-Length: ");
    put_int(out, body.len() as i64);
    out.put_slice(match fmt {
        Format::Plain => b"\nContent-Type: text/event-plain\n\n".as_slice(),
        Format::Json => b"\nContent-Type: text/event-json\n\n".as_slice(),
    });
    out.put_slice(body);
}

fn put_int<B: BufMut>(out: &mut B, v: i64) {
    let mut b = [0u8; 20];
    let n = fmt_int(v, &mut b);
    out.put_slice(&b[b.len() - n..]);
}

/// Decimal digits of `v`, right-aligned in `b`; returns their count.
fn fmt_int(v: i64, b: &mut [u8; 20]) -> usize {
    let neg = v < 0;
    let mut u = v.unsigned_abs();
    let mut i = b.len();
    loop {
        i -= 1;
        b[i] = b'0' + (u % 10) as u8;
        u /= 10;
        if u == 0 {
            break;
        }
    }
    if neg && i > 0 {
        i -= 1;
        b[i] = b'-';
    }
    b.len() - i
}

/// One event being rendered into a scratch buffer.
struct Ev<'a> {
    fmt: Format,
    buf: &'a mut Vec<u8>,
}

impl<'a> Ev<'a> {
    fn new(fmt: Format, buf: &'a mut Vec<u8>) -> Self {
        buf.clear();
        if fmt == Format::Json {
            buf.push(b'{');
        }
        Ev { fmt, buf }
    }

    fn name(&mut self, name: &[u8]) {
        match self.fmt {
            Format::Plain => {
                self.buf.extend_from_slice(name);
                self.buf.extend_from_slice(b": ");
            }
            Format::Json => {
                if self.buf.len() > 1 {
                    self.buf.push(b',');
                }
                self.buf.push(b'"');
                json_escape(name, self.buf);
                self.buf.extend_from_slice(b"\":\"");
            }
        }
    }

    fn value(&mut self, v: &[u8]) {
        match self.fmt {
            Format::Plain => {
                url_encode(v, self.buf);
                self.buf.push(b'\n');
            }
            Format::Json => {
                json_escape(v, self.buf);
                self.buf.push(b'"');
            }
        }
    }

    fn h(&mut self, name: &str, v: &str) {
        self.name(name.as_bytes());
        self.value(v.as_bytes());
    }

    fn h_bytes(&mut self, name: &str, v: &[u8]) {
        self.name(name.as_bytes());
        self.value(v);
    }

    fn h_int(&mut self, name: &str, v: i64) {
        let mut b = [0u8; 20];
        let n = fmt_int(v, &mut b);
        self.name(name.as_bytes());
        self.value(&b[b.len() - n..]);
    }

    /// `variable_<k>: v`.
    fn h_var(&mut self, k: &str, v: &str) {
        match self.fmt {
            Format::Plain => {
                self.buf.extend_from_slice(b"variable_");
                self.buf.extend_from_slice(k.as_bytes());
                self.buf.extend_from_slice(b": ");
            }
            Format::Json => {
                if self.buf.len() > 1 {
                    self.buf.push(b',');
                }
                self.buf.extend_from_slice(b"\"variable_");
                json_escape(k.as_bytes(), self.buf);
                self.buf.extend_from_slice(b"\":\"");
            }
        }
        self.value(v.as_bytes());
    }

    /// Close the event; a body gets its own `Content-Length` (plain) or
    /// `Content-Length` + `_body` members (JSON), as FreeSWITCH does.
    fn finish(self, body: Option<&str>) {
        match self.fmt {
            Format::Plain => {
                if let Some(b) = body {
                    self.buf.extend_from_slice(b"Content-Length: ");
                    put_int(self.buf, b.len() as i64);
                    self.buf.extend_from_slice(b"\n\n");
                    self.buf.extend_from_slice(b.as_bytes());
                } else {
                    self.buf.push(b'\n');
                }
            }
            Format::Json => {
                if let Some(b) = body {
                    let mut n = [0u8; 20];
                    let l = fmt_int(b.len() as i64, &mut n);
                    let mut ev = Ev { fmt: self.fmt, buf: self.buf };
                    ev.h_bytes("Content-Length", &n[n.len() - l..]);
                    ev.h("_body", b);
                    ev.buf.push(b'}');
                } else {
                    self.buf.push(b'}');
                }
            }
        }
    }
}

/// FreeSWITCH's `switch_url_encode`: control bytes, non-ASCII bytes and
/// `\r\n #%&+:;<=>?@[\]^`{|}"` become `%XX` (upper-case hex).
fn url_encode(v: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut start = 0;
    for (i, &c) in v.iter().enumerate() {
        if needs_encoding(c) {
            out.extend_from_slice(&v[start..i]);
            out.extend_from_slice(&[b'%', HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]]);
            start = i + 1;
        }
    }
    out.extend_from_slice(&v[start..]);
}

fn needs_encoding(c: u8) -> bool {
    !(b' '..=b'~').contains(&c) || b" \"#%&+:;<=>?@[\\]^`{|}".contains(&c)
}

/// cJSON's string escaping: `"` `\` and control characters; UTF-8 passes through.
fn json_escape(v: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut start = 0;
    for (i, &c) in v.iter().enumerate() {
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            c if c < 0x20 => {
                out.extend_from_slice(&v[start..i]);
                out.extend_from_slice(&[b'\\', b'u', b'0', b'0', HEX[usize::from(c >> 4)], HEX[usize::from(c & 15)]]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&v[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&v[start..]);
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

struct Tm {
    year: i64,
    mon: u32,
    day: u32,
    hour: u32,
    min: u32,
    sec: u32,
    wday: usize,
}

fn tm(us: i64) -> Tm {
    let secs = us.div_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, mon, day) = civil_from_days(days);
    Tm {
        year,
        mon,
        day,
        hour: (rem / 3600) as u32,
        min: (rem / 60 % 60) as u32,
        sec: (rem % 60) as u32,
        wday: (days + 4).rem_euclid(7) as usize,
    }
}

fn put2(b: &mut [u8], i: usize, v: u32) {
    b[i] = b'0' + (v / 10 % 10) as u8;
    b[i + 1] = b'0' + (v % 10) as u8;
}

/// `2026-11-21 08:49:47` (the simulator's local time is UTC, like the capture host).
fn fmt_local(us: i64, b: &mut [u8; 32]) -> usize {
    let t = tm(us);
    let y = t.year.clamp(0, 9999) as u32;
    put2(b, 0, y / 100);
    put2(b, 2, y % 100);
    b[4] = b'-';
    put2(b, 5, t.mon);
    b[7] = b'-';
    put2(b, 8, t.day);
    b[10] = b' ';
    put2(b, 11, t.hour);
    b[13] = b':';
    put2(b, 14, t.min);
    b[16] = b':';
    put2(b, 17, t.sec);
    19
}

/// `Sat, 21 Nov 2026 08:49:47 GMT`.
fn fmt_gmt(us: i64, b: &mut [u8; 32]) -> usize {
    const DAYS: [&[u8; 3]; 7] = [b"Sun", b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat"];
    const MONS: [&[u8; 3]; 12] =
        [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
    let t = tm(us);
    let y = t.year.clamp(0, 9999) as u32;
    b[..3].copy_from_slice(DAYS[t.wday]);
    b[3] = b',';
    b[4] = b' ';
    put2(b, 5, t.day);
    b[7] = b' ';
    b[8..11].copy_from_slice(MONS[(t.mon as usize).saturating_sub(1) % 12]);
    b[11] = b' ';
    put2(b, 12, y / 100);
    put2(b, 14, y % 100);
    b[16] = b' ';
    put2(b, 17, t.hour);
    b[19] = b':';
    put2(b, 20, t.min);
    b[22] = b':';
    put2(b, 23, t.sec);
    b[25..29].copy_from_slice(b" GMT");
    29
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_match_capture() {
        let mut b = [0u8; 32];
        let n = fmt_local(1_795_250_987_439_004, &mut b);
        assert_eq!(&b[..n], b"2026-11-21 08:49:47");
        let n = fmt_gmt(1_795_250_987_439_004, &mut b);
        assert_eq!(&b[..n], b"Sat, 21 Nov 2026 08:49:47 GMT");
    }

    #[test]
    fn url_encoding_matches_freeswitch() {
        let mut out = Vec::new();
        url_encode("tone_stream://%(500,500,440);loops=3 {a}~".as_bytes(), &mut out);
        assert_eq!(out, b"tone_stream%3A//%25(500,500,440)%3Bloops%3D3%20%7Ba%7D~");
    }
}
