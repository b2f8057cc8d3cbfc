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
    /// way FreeSWITCH does (a re-set variable moves to the end). Names starting
    /// with `voxdial_sim_` are the renderer's bookkeeping and are never rendered.
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
    /// The robot extension runs (answer, set RECORD_STEREO, record_session, park):
    /// CHANNEL_STATE, CALL_UPDATE, CHANNEL_STATE, CHANNEL_EXECUTE/…_COMPLETE pairs, the
    /// `API strftime` event of `${strftime()}` (rendered here, as FreeSWITCH fires it
    /// mid-dialplan), RECORD_START, MEDIA_BUG_START, …, CHANNEL_PARK. Works on an
    /// answered or an early-media channel. Sets `record_path`, `swapped`, `profile_index` 2.
    RobotDialplan { record_path: String },
    /// uuid_broadcast <file> aleg: CHANNEL_EXECUTE (playback), PLAYBACK_START
    PlaybackStart { file: String },
    /// PLAYBACK_STOP, CHANNEL_EXECUTE_COMPLETE, PRIVATE_COMMAND
    PlaybackStop { file: String, broken: bool },
    /// DETECTED_SPEECH begin-speaking (no body)
    SpeechBegin,
    /// DETECTED_SPEECH detected-speech with an NLSML body
    SpeechDetected { text: String, confidence: u8 },
    /// `uuid_record <uuid> start|stop <path>` (a per-sentence recording):
    /// RECORD_START + MEDIA_BUG_START, or RECORD_STOP + MEDIA_BUG_STOP, with
    /// `Record-File-Path` as for the call's own recording.
    SentenceRecord { path: String, stop: bool },
    /// uuid_transfer … -both park inline on a parked channel: CHANNEL_UNPARK,
    /// CHANNEL_EXECUTE_COMPLETE (park), CHANNEL_STATE ×2, CHANNEL_EXECUTE (park), CHANNEL_PARK.
    TransferPark,
    /// Uses `ch.hangup` (nothing is rendered while it is `None`): CHANNEL_HANGUP,
    /// [CHANNEL_UNPARK, CHANNEL_EXECUTE_COMPLETE (park) once the dialplan ran],
    /// CHANNEL_STATE, [RECORD_STOP, MEDIA_BUG_STOP when recording], CHANNEL_CALLSTATE,
    /// CHANNEL_STATE (CS_REPORTING). The originate BACKGROUND_JOB of a failed call is
    /// the caller's to send (after this phase, or after `HangupComplete` for 4xx–6xx).
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
    session_id: AtomicU64,
    started_us: i64,
}

fn now_us() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// Channel state headers of one event (FreeSWITCH's `switch_channel_event_set_basic_data`).
#[derive(Clone, Copy)]
struct St {
    state: &'static str,
    num: u8,
    call: &'static str,
    answer: &'static str,
    hit: bool,
    /// Codec headers are left out although media is up (CHANNEL_PROGRESS_MEDIA
    /// fires before the codec is set).
    hide_codec: bool,
    /// `Caller-RDNIS` still shown on a transferred profile (its CS_ROUTING).
    keep_rdnis: bool,
}

/// Which optional blocks an event carries.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Vars {
    /// Channel headers only (CHANNEL_STATE, CALLSTATE, CODEC, …).
    No,
    /// Channel headers then every `variable_*`.
    Yes,
}

const SRC_STATE: Src = Src("switch_channel.c", "switch_channel_perform_set_running_state", 2408);
const SRC_CALLSTATE: Src = Src("switch_channel.c", "switch_channel_perform_set_callstate", 301);
const SRC_EXEC: Src = Src("switch_core_session.c", "switch_core_session_exec", 2944);
const SRC_EXEC_DONE: Src = Src("switch_core_session.c", "switch_core_session_exec", 2967);
const OUTBOUND_CALL: &str = "Outbound Call";
const RECORD_STEREO: &str = "RECORD_STEREO=true";

/// A stable pseudo-random 64-bit value from `seed` and `salt` (FNV-1a), so
/// tags, ports and application UUIDs stay the same across a call's events.
fn mix(seed: &str, salt: u64) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    for b in seed.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 29)
}

/// A v4-shaped UUID derived from `seed`/`salt` (for `Application-UUID` etc.).
fn derived_uuid(seed: &str, salt: u64) -> String {
    let a = mix(seed, salt);
    let b = mix(seed, salt ^ 0x5555);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

fn tag(seed: &str, salt: u64, len: usize) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut h = mix(seed, salt);
    (0..len)
        .map(|i| {
            if i % 10 == 9 {
                h = mix(seed, h);
            }
            let c = ALNUM[(h % ALNUM.len() as u64) as usize];
            h /= ALNUM.len() as u64;
            char::from(c)
        })
        .collect()
}

fn stamp(us: i64) -> String {
    let mut b = [0u8; 32];
    let n = fmt_local(us, &mut b);
    String::from_utf8_lossy(&b[..n]).into_owned()
}

/// Media facts of a channel: codec, remote RTP port, callee SIP port.
struct Media {
    codec: &'static str,
    rate: u32,
    pt: u8,
    remote_sip_port: u16,
}

fn media(ch: &Channel) -> Media {
    let g722 = ch.var("absolute_codec_string").is_some_and(|c| c.eq_ignore_ascii_case("G722"));
    let remote_sip_port = ch
        .var("sip_route_uri")
        .and_then(|u| u.rsplit(':').next())
        .and_then(|p| p.trim_end_matches(|c: char| !c.is_ascii_digit()).parse().ok())
        .unwrap_or(5090);
    if g722 {
        Media { codec: "G722", rate: 16000, pt: 9, remote_sip_port }
    } else {
        Media { codec: "PCMU", rate: 8000, pt: 0, remote_sip_port }
    }
}

/// Seconds between two epoch-µs instants as FreeSWITCH computes them:
/// difference of whole epoch seconds.
fn secs(to: i64, from: i64) -> i64 {
    if to == 0 || from == 0 {
        0
    } else {
        to.div_euclid(1_000_000) - from.div_euclid(1_000_000)
    }
}

fn since(to: i64, from: i64) -> i64 {
    if to == 0 || from == 0 {
        0
    } else {
        to - from
    }
}

/// `Playback-File-Type`: the scheme of `tone_stream://…`, else the extension.
fn file_type(file: &str) -> &str {
    if let Some((scheme, _)) = file.split_once("://") {
        return scheme;
    }
    file.rsplit_once('.').map_or("", |(_, ext)| ext)
}

/// Rough play time of a file: tone_stream `%(on,off,freq);loops=N`, else 2 s.
fn playback_ms(file: &str) -> i64 {
    let loops: i64 = file
        .split(";loops=")
        .nth(1)
        .and_then(|l| l.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|l| l.parse().ok())
        .unwrap_or(1);
    let per: i64 = file
        .split("%(")
        .nth(1)
        .map(|spec| spec.split(',').take(2).filter_map(|n| n.trim().parse::<i64>().ok()).sum())
        .unwrap_or(2000);
    (per * loops.max(1)).max(20)
}

impl Renderer {
    pub fn new(core_uuid: &str) -> Self {
        Renderer {
            core_uuid: core_uuid.to_string(),
            seq: AtomicU64::new(1),
            session_id: AtomicU64::new(1),
            started_us: now_us(),
        }
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
    /// events for which `wants(event_name, subclass)` is false (the
    /// connection's `event plain|json …` subscription). Also mutates `ch`:
    /// timestamps still 0 are set to now, and `ch.variables` evolves exactly
    /// as FreeSWITCH's channel variables do (order included).
    pub fn phase(
        &self,
        fmt: Format,
        phase: &Phase,
        ch: &mut Channel,
        wants: &dyn Fn(&str, Option<&str>) -> bool,
        out: &mut BytesMut,
    ) {
        let mut r = Run { r: self, fmt, wants, out, scratch: Vec::with_capacity(8 * 1024), ts: now_us() };
        match phase {
            Phase::Originate => r.originate(ch),
            Phase::Ringing => r.ringing(ch),
            Phase::EarlyMedia => r.early_media(ch),
            Phase::Answer => r.answer(ch),
            Phase::RobotDialplan { record_path } => r.robot(ch, record_path),
            Phase::PlaybackStart { file } => r.playback_start(ch, file),
            Phase::PlaybackStop { file, broken } => r.playback_stop(ch, file, *broken),
            Phase::SpeechBegin => r.speech(ch, "begin-speaking", None),
            Phase::SpeechDetected { text, confidence } => {
                let body = format!(
                    "<?xml version=\"1.0\"?>\n<result grammar=\"voxdial\">\n  <interpretation grammar=\"voxdial\" confidence=\"{confidence}\">\n    <input mode=\"speech\">{}</input>\n  </interpretation>\n</result>\n",
                    xml_text(text)
                );
                r.speech(ch, "detected-speech", Some(&body));
            }
            Phase::SentenceRecord { path, stop } => r.sentence_record(ch, path, *stop),
            Phase::TransferPark => r.transfer_park(ch),
            Phase::Hangup => r.hangup(ch),
            Phase::HangupComplete => r.hangup_complete(ch),
        }
    }

    /// BACKGROUND_JOB event frame (`body` e.g. `"+OK <uuid>\n"`).
    pub fn background_job(&self, fmt: Format, job_uuid: &str, command: &str, arg: &str, body: &str) -> Bytes {
        let mut scratch = Vec::with_capacity(1024);
        let mut ev =
            self.begin(fmt, &mut scratch, "BACKGROUND_JOB", now_us(), Src("mod_event_socket.c", "api_exec", 1572));
        ev.h("Job-UUID", job_uuid);
        ev.h("Job-Command", command);
        ev.h("Job-Command-Arg", arg);
        ev.finish(Some(body));
        framed(fmt, &scratch)
    }

    /// API event frame as FreeSWITCH fires for an api/bgapi command.
    pub fn api_event(&self, fmt: Format, command: &str, arg: &str) -> Bytes {
        let mut scratch = Vec::with_capacity(1024);
        self.api_into(fmt, &mut scratch, now_us(), command, arg);
        framed(fmt, &scratch)
    }

    fn api_into(&self, fmt: Format, scratch: &mut Vec<u8>, ts: i64, command: &str, arg: &str) {
        let mut ev = self.begin(fmt, scratch, "API", ts, Src("switch_loadable_module.c", "switch_api_execute", 2954));
        ev.h("API-Command", command);
        if !arg.is_empty() {
            ev.h("API-Command-Argument", arg);
        }
        ev.finish(None);
    }

    /// HEARTBEAT event frame, header for header as in `idle-heartbeat-plain.esl`.
    pub fn heartbeat(&self, fmt: Format, session_count: u64, sessions_since_startup: u64) -> Bytes {
        let ts = now_us();
        let up = (ts - self.started_us).max(0);
        let mut scratch = Vec::with_capacity(1024);
        let mut ev = self.begin(fmt, &mut scratch, "HEARTBEAT", ts, Src("switch_core.c", "send_heartbeat", 95));
        ev.h("Event-Info", "System Ready");
        let (ms, us) = (up / 1000, up % 1000);
        let s = ms / 1000;
        let uptime = format!(
            "{} years, {} days, {} hours, {} minutes, {} seconds, {} milliseconds, {} microseconds",
            s / 31_536_000,
            s / 86_400 % 365,
            s / 3600 % 24,
            s / 60 % 60,
            s % 60,
            ms % 1000,
            us
        );
        ev.h("Up-Time", &uptime);
        ev.h("FreeSWITCH-Version", "1.10.12-release+git~20240802T210227Z~a88d069d6f~64bit");
        ev.h_int("Uptime-msec", ms);
        let count = i64::try_from(session_count).unwrap_or(i64::MAX);
        ev.h_int("Session-Count", count);
        ev.h("Max-Sessions", "1000");
        ev.h("Session-Per-Sec", "30");
        ev.h("Session-Per-Sec-Last", "0");
        ev.h_int("Session-Per-Sec-Max", count.clamp(1, 30));
        ev.h_int("Session-Per-Sec-FiveMin", count.clamp(1, 30));
        ev.h_int("Session-Since-Startup", i64::try_from(sessions_since_startup).unwrap_or(i64::MAX));
        ev.h_int("Session-Peak-Max", count.max(1));
        ev.h_int("Session-Peak-FiveMin", count.max(1));
        ev.h("Idle-CPU", "98.666667");
        ev.finish(None);
        framed(fmt, &scratch)
    }

    /// A CUSTOM event as echoed for `sendevent` / fired by an ASR module:
    /// `Event-Subclass` first, then `headers` in order (pass `Command`,
    /// the client's headers and `Event-UUID` as FreeSWITCH lists them).
    /// Without `ch` it is "fired at once": FreeSWITCH's common headers
    /// (`Event-Name: CUSTOM` …, `parse_command`) follow. With `ch` it is the
    /// "queued to the session" shape: channel headers and variables follow
    /// (no `Event-Name`, `Unique-ID` a second time) and, with a body,
    /// `Content-Length` again right before it.
    pub fn custom_event(
        &self,
        fmt: Format,
        subclass: &str,
        headers: &[(&str, &str)],
        ch: Option<&Channel>,
        body: Option<&str>,
    ) -> Bytes {
        let mut scratch = Vec::with_capacity(if ch.is_some() { 8192 } else { 1024 });
        let mut ev = Ev::new(fmt, &mut scratch);
        ev.h("Event-Subclass", subclass);
        for (k, v) in headers {
            ev.h(k, v);
        }
        match ch {
            None => {
                self.common(&mut ev, "CUSTOM", now_us(), Src("mod_event_socket.c", "parse_command", 2275));
                if body.is_some() && headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("Content-Length")) {
                    // The client's Content-Length already describes the body.
                    ev.finish_raw_body(body);
                } else {
                    ev.finish(body);
                }
            }
            Some(ch) => {
                let st = steady_state(ch);
                chan_headers(&mut ev, ch, st);
                vars(&mut ev, ch);
                ev.finish(body);
            }
        }
        framed(fmt, &scratch)
    }
}

/// The state headers of a channel between phases (parked, ringing, …).
fn steady_state(ch: &Channel) -> St {
    let call = call_state(ch);
    let answer = answer_state(ch);
    if ch.hangup_us != 0 {
        St {
            state: "CS_HANGUP",
            num: 10,
            call: "HANGUP",
            answer: "hangup",
            hit: ch.profile_index >= 2,
            hide_codec: false,
            keep_rdnis: false,
        }
    } else if ch.profile_index >= 2 {
        St { state: "CS_EXECUTE", num: 4, call, answer, hit: true, hide_codec: false, keep_rdnis: false }
    } else {
        St { state: "CS_CONSUME_MEDIA", num: 7, call, answer, hit: false, hide_codec: false, keep_rdnis: false }
    }
}

fn call_state(ch: &Channel) -> &'static str {
    if ch.answered_us != 0 {
        "ACTIVE"
    } else if ch.progress_media_us != 0 {
        "EARLY"
    } else if ch.progress_us != 0 {
        "RINGING"
    } else {
        "DOWN"
    }
}

fn call_state_num(s: &str) -> i64 {
    match s {
        "DOWN" => 0,
        "DIALING" => 1,
        "RINGING" => 2,
        "EARLY" => 3,
        "ACTIVE" => 4,
        "HELD" => 5,
        "RING_WAIT" => 6,
        "HANGUP" => 7,
        _ => 8,
    }
}

fn answer_state(ch: &Channel) -> &'static str {
    if ch.answered_us != 0 {
        "answered"
    } else if ch.progress_media_us != 0 {
        "early"
    } else {
        "ringing"
    }
}

/// Whether the callee has sent any SIP response (FreeSWITCH then knows
/// `Caller-Network-Addr`).
fn has_response(ch: &Channel) -> bool {
    ch.progress_us != 0
        || ch.progress_media_us != 0
        || ch.answered_us != 0
        || ch.hangup.as_ref().is_some_and(|h| h.sip_term_status.is_some() || h.disposition == "recv_refuse")
}

/// `Caller-Profile-Created-Time` of the current profile.
fn profile_created(ch: &Channel) -> i64 {
    match ch.profile_index {
        0 | 1 => ch.created_us,
        2 => ch.var("profile_start_uepoch").and_then(|v| v.parse().ok()).unwrap_or_else(|| dialplan_start(ch)),
        _ => ch
            .var("voxdial_sim_profile_us")
            .and_then(|v| v.parse().ok())
            .or_else(|| {
                ch.var("transfer_source")
                    .and_then(|t| t.split(':').next())
                    .and_then(|s| s.parse::<i64>().ok())
                    .map(|s| s * 1_000_000)
            })
            .unwrap_or(ch.created_us),
    }
}

/// When the robot extension started: at answer, or at early media.
fn dialplan_start(ch: &Channel) -> i64 {
    if ch.answered_us != 0 {
        ch.answered_us
    } else if ch.progress_media_us != 0 {
        ch.progress_media_us
    } else {
        ch.created_us
    }
}

/// The channel header block (`switch_channel_event_set_basic_data` +
/// caller profile), in FreeSWITCH's order.
fn chan_headers(ev: &mut Ev<'_>, ch: &Channel, st: St) {
    let chan_name_len = "sofia/external/".len() + ch.dialed.len();
    let mut chan_name = String::with_capacity(chan_name_len);
    chan_name.push_str("sofia/external/");
    chan_name.push_str(&ch.dialed);
    ev.h("Channel-State", st.state);
    ev.h("Channel-Call-State", st.call);
    ev.h_int("Channel-State-Number", i64::from(st.num));
    ev.h("Channel-Name", &chan_name);
    ev.h("Unique-ID", &ch.uuid);
    ev.h("Call-Direction", "outbound");
    ev.h("Presence-Call-Direction", "outbound");
    ev.h("Channel-HIT-Dialplan", if st.hit { "true" } else { "false" });
    ev.h("Channel-Call-UUID", &ch.uuid);
    ev.h("Answer-State", st.answer);
    if ch.hangup_us != 0 {
        if let Some(h) = &ch.hangup {
            ev.h("Hangup-Cause", &h.cause);
        }
    }
    if (ch.answered_us != 0 || ch.progress_media_us != 0) && !st.hide_codec {
        let m = media(ch);
        ev.h("Channel-Read-Codec-Name", m.codec);
        ev.h_int("Channel-Read-Codec-Rate", i64::from(m.rate));
        ev.h("Channel-Read-Codec-Bit-Rate", "64000");
        ev.h("Channel-Write-Codec-Name", m.codec);
        ev.h_int("Channel-Write-Codec-Rate", i64::from(m.rate));
        ev.h("Channel-Write-Codec-Bit-Rate", "64000");
    }
    ev.h("Caller-Direction", "outbound");
    ev.h("Caller-Logical-Direction", if ch.profile_index >= 3 { "inbound" } else { "outbound" });
    if ch.profile_index >= 2 {
        ev.h("Caller-Dialplan", if ch.profile_index >= 3 { "inline" } else { "XML" });
    }
    if ch.swapped {
        ev.h("Caller-Caller-ID-Name", OUTBOUND_CALL);
        ev.h("Caller-Caller-ID-Number", &ch.dialed);
    } else {
        ev.h("Caller-Caller-ID-Number", &ch.caller_id_number);
    }
    ev.h("Caller-Orig-Caller-ID-Number", &ch.caller_id_number);
    if ch.swapped {
        ev.h("Caller-Callee-ID-Number", &ch.caller_id_number);
    } else {
        ev.h("Caller-Callee-ID-Name", OUTBOUND_CALL);
        ev.h("Caller-Callee-ID-Number", &ch.dialed);
    }
    if has_response(ch) {
        ev.h("Caller-Network-Addr", IPV4);
    }
    ev.h("Caller-ANI", &ch.caller_id_number);
    ev.h("Caller-Destination-Number", if ch.profile_index >= 2 { &ch.extension } else { &ch.dialed });
    ev.h("Caller-Unique-ID", &ch.uuid);
    ev.h("Caller-Source", "src/switch_ivr_originate.c");
    if ch.profile_index >= 2 {
        ev.h("Caller-Transfer-Source", ch.var("transfer_source").unwrap_or(""));
    }
    ev.h("Caller-Context", &ch.context);
    if ch.profile_index == 2 || st.keep_rdnis {
        ev.h("Caller-RDNIS", &ch.dialed);
    }
    ev.h("Caller-Channel-Name", &chan_name);
    ev.h_int("Caller-Profile-Index", i64::from(ch.profile_index.max(1)));
    ev.h_int("Caller-Profile-Created-Time", profile_created(ch));
    ev.h_int("Caller-Channel-Created-Time", ch.created_us);
    ev.h_int("Caller-Channel-Answered-Time", ch.answered_us);
    ev.h_int("Caller-Channel-Progress-Time", ch.progress_us);
    ev.h_int("Caller-Channel-Progress-Media-Time", ch.progress_media_us);
    ev.h_int("Caller-Channel-Hangup-Time", ch.hangup_us);
    for h in [
        "Caller-Channel-Transfer-Time",
        "Caller-Channel-Resurrect-Time",
        "Caller-Channel-Bridged-Time",
        "Caller-Channel-Last-Hold",
        "Caller-Channel-Hold-Accum",
    ] {
        ev.h(h, "0");
    }
    ev.h("Caller-Screen-Bit", "true");
    ev.h("Caller-Privacy-Hide-Name", "false");
    ev.h("Caller-Privacy-Hide-Number", "false");
}

/// Every channel variable as `variable_<k>`, skipping the simulator's own
/// bookkeeping variables.
fn vars(ev: &mut Ev<'_>, ch: &Channel) {
    for (k, v) in &ch.variables {
        if !k.starts_with("voxdial_sim_") {
            ev.h_var(k, v);
        }
    }
}

/// One `phase()` call: output, subscription filter, scratch buffer and clock.
struct Run<'a> {
    r: &'a Renderer,
    fmt: Format,
    wants: &'a dyn Fn(&str, Option<&str>) -> bool,
    out: &'a mut BytesMut,
    scratch: Vec<u8>,
    ts: i64,
}

/// Extra headers of one channel event, split by where FreeSWITCH puts them.
#[derive(Default)]
struct Extra<'a> {
    /// Between the common block and the channel block.
    before: &'a [(&'a str, &'a str)],
    /// After the channel block (and variables, when present).
    after: &'a [(&'a str, &'a str)],
}

impl Run<'_> {
    /// Render one channel event if subscribed.
    fn chan(&mut self, ch: &Channel, name: &str, src: Src, st: St, with_vars: Vars, extra: Extra<'_>) {
        if !(self.wants)(name, None) {
            return;
        }
        let mut ev = self.r.begin(self.fmt, &mut self.scratch, name, self.ts, src);
        for (k, v) in extra.before {
            ev.h(k, v);
        }
        chan_headers(&mut ev, ch, st);
        if with_vars == Vars::Yes {
            vars(&mut ev, ch);
        }
        for (k, v) in extra.after {
            ev.h(k, v);
        }
        ev.finish(None);
        frame_event(self.fmt, &self.scratch, self.out);
    }

    fn state(&mut self, ch: &Channel, st: St) {
        self.chan(ch, "CHANNEL_STATE", SRC_STATE, st, Vars::No, Extra::default());
    }

    fn callstate(&mut self, ch: &Channel, from: &str, st: St) {
        let mut n = [0u8; 20];
        let l = fmt_int(call_state_num(st.call), &mut n);
        let num = std::str::from_utf8(&n[n.len() - l..]).unwrap_or("0");
        self.chan(
            ch,
            "CHANNEL_CALLSTATE",
            SRC_CALLSTATE,
            st,
            Vars::No,
            Extra { before: &[("Original-Channel-Call-State", from), ("Channel-Call-State-Number", num)], after: &[] },
        );
    }

    fn api(&mut self, command: &str, arg: &str) {
        if (self.wants)("API", None) {
            self.r.api_into(self.fmt, &mut self.scratch, self.ts, command, arg);
            frame_event(self.fmt, &self.scratch, self.out);
        }
    }

    fn originate(&mut self, ch: &mut Channel) {
        if ch.created_us == 0 {
            ch.created_us = self.ts;
        }
        ch.profile_index = 1;
        if ch.gateway.is_empty() {
            ch.gateway = "sipp".into();
        }
        if ch.context.is_empty() {
            ch.context = "default".into();
        }
        if ch.extension.is_empty() {
            ch.extension = "robot".into();
        }
        let dial_vars = std::mem::take(&mut ch.variables);
        let session = self.r.session_id.fetch_add(1, Ordering::Relaxed).to_string();
        let m = media(&Channel { variables: dial_vars.clone(), ..Channel::default() });
        let port = 16384 + (mix(&ch.uuid, 1) % 8192) * 2;
        let o = 1_700_000_000 + mix(&ch.uuid, 2) % 100_000_000;
        let codecs = dial_vars
            .iter()
            .find(|(k, _)| k == "absolute_codec_string")
            .map_or_else(|| "PCMU,PCMA".to_string(), |(_, v)| v.clone());
        let sdp_codecs = if m.codec == "G722" {
            "9 101\r\na=rtpmap:9 G722/8000".to_string()
        } else {
            "0 8 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000".to_string()
        };
        let sdp = format!(
            "v=0\r\no=FreeSWITCH {o} {} IN IP4 127.0.0.1\r\ns=FreeSWITCH\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {port} RTP/AVP {sdp_codecs}\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\na=sendrecv\r\n",
            o + 1
        );
        let d = &ch.dialed;
        let mut v: Vec<(String, String)> = Vec::with_capacity(128);
        let mut push = |k: &str, val: String| v.push((k.to_string(), val));
        push("direction", "outbound".into());
        push("is_outbound", "true".into());
        push("uuid", ch.uuid.clone());
        push("call_uuid", ch.uuid.clone());
        push("session_id", session);
        push("sip_gateway_name", ch.gateway.clone());
        push("sip_local_network_addr", IPV4.into());
        push("sip_profile_name", "gateway".into());
        push("video_media_flow", "disabled".into());
        push("text_media_flow", "disabled".into());
        push("channel_name", format!("sofia/external/{d}"));
        push("sip_destination_url", format!("sip:{d}@127.0.0.1:5090"));
        for (k, val) in &dial_vars {
            push(k, val.clone());
        }
        push("originate_early_media", "true".into());
        push("originate_endpoint", "sofia".into());
        push("rtp_use_codec_string", codecs);
        push("local_media_ip", IPV4.into());
        push("local_media_port", port.to_string());
        push("advertised_media_ip", IPV4.into());
        push("audio_media_flow", "sendrecv".into());
        push("rtp_local_sdp_str", sdp);
        push(
            "sip_outgoing_contact_uri",
            format!("<sip:gw+{}@127.0.0.1:5080;transport=udp;gw={}>", ch.gateway, ch.gateway),
        );
        push("sip_req_uri", format!("{d}@127.0.0.1:5090"));
        push("sip_to_host", "127.0.0.1:5090".into());
        push("sip_from_host", IPV4.into());
        push("sofia_profile_name", "external".into());
        push("recovery_profile_name", "external".into());
        push("sofia_profile_url", "sip:mod_sofia@127.0.0.1:5080".into());
        // Dial-string variables that repeat a FreeSWITCH one keep the later value and position.
        let mut seen = std::collections::HashSet::new();
        let mut dedup: Vec<(String, String)> = Vec::with_capacity(v.len());
        for (k, val) in v.into_iter().rev() {
            if seen.insert(k.clone()) {
                dedup.push((k, val));
            }
        }
        dedup.reverse();
        ch.variables = dedup;

        let down = |state, num| St {
            state,
            num,
            call: "DOWN",
            answer: "ringing",
            hit: false,
            hide_codec: false,
            keep_rdnis: false,
        };
        let vars_hidden = std::mem::take(&mut ch.variables);
        self.chan(
            ch,
            "CHANNEL_OUTGOING",
            Src("switch_core_session.c", "switch_core_session_outgoing_channel", 768),
            down("CS_NONE", 1),
            Vars::No,
            Extra::default(),
        );
        self.state(ch, down("CS_INIT", 1));
        ch.variables = vars_hidden;
        let src_run = |line| Src("switch_core_state_machine.c", "switch_core_session_run", line);
        self.chan(ch, "CHANNEL_CREATE", src_run(626), down("CS_INIT", 2), Vars::Yes, Extra::default());
        self.chan(ch, "CHANNEL_ORIGINATE", src_run(632), down("CS_INIT", 2), Vars::Yes, Extra::default());
        self.state(ch, down("CS_ROUTING", 2));
        self.state(ch, down("CS_CONSUME_MEDIA", 7));
    }

    /// Variables sofia sets from the callee's first provisional/final response.
    fn sip_response_vars(&self, ch: &mut Channel, early_media: bool) {
        let m = media(ch);
        let d = ch.dialed.clone();
        let p = m.remote_sip_port.to_string();
        let branch = tag(&ch.uuid, 3, 13);
        let from_tag = tag(&ch.uuid, 4, 13);
        let to_tag = format!("{}SIPpTag011", mix(&ch.uuid, 5) % 30000);
        ch.set_var("sip_local_network_addr", IPV4);
        ch.set_var("sip_reply_host", IPV4);
        ch.set_var("sip_reply_port", &p);
        ch.set_var("sip_network_ip", IPV4);
        ch.set_var("sip_network_port", &p);
        if early_media {
            ch.set_var("ep_codec_string", &ep_codec(&m));
        }
        ch.set_var("sip_user_agent", "sipp-callee");
        ch.set_var("sip_recover_contact", &format!("<sip:127.0.0.1:{p};transport=UDP>"));
        let via = format!("SIP/2.0/UDP 127.0.0.1:5080;rport;branch=z9hG4bK{branch}");
        ch.set_var("sip_full_via", &via);
        ch.set_var("sip_recover_via", &via);
        ch.set_var("sip_full_from", &format!("<sip:{}@127.0.0.1>;tag={from_tag}", ch.caller_id_number));
        ch.set_var("sip_full_to", &format!("<sip:{d}@127.0.0.1:5090>;tag={to_tag}"));
        let cid = ch.caller_id_number.clone();
        ch.set_var("sip_from_user", &cid);
        ch.set_var("sip_from_uri", &format!("{cid}@127.0.0.1"));
        ch.set_var("sip_from_host", IPV4);
        ch.set_var("sip_to_user", &d);
        ch.set_var("sip_to_port", "5090");
        ch.set_var("sip_to_uri", &format!("{d}@127.0.0.1:5090"));
        ch.set_var("sip_to_host", IPV4);
        ch.set_var("sip_contact_params", "transport=UDP");
        ch.set_var("sip_contact_user", "nobody");
        ch.set_var("sip_contact_port", &p);
        ch.set_var("sip_contact_uri", &format!("nobody@127.0.0.1:{p}"));
        ch.set_var("sip_contact_host", IPV4);
        ch.set_var("sip_to_tag", &to_tag);
        ch.set_var("sip_from_tag", &from_tag);
        ch.set_var("sip_cseq", &(100_000_000 + mix(&ch.uuid, 6) % 900_000_000).to_string());
        ch.set_var("sip_call_id", &sip_call_id(&ch.uuid));
    }

    fn ringing(&mut self, ch: &mut Channel) {
        if ch.progress_us == 0 {
            ch.progress_us = self.ts;
        }
        if ch.var("sip_to_tag").is_none() {
            self.sip_response_vars(ch, false);
        }
        let st = steady_state(ch);
        self.chan(
            ch,
            "CHANNEL_PROGRESS",
            Src("switch_channel.c", "switch_channel_perform_mark_ring_ready_value", 3505),
            St { call: "DOWN", ..st },
            Vars::Yes,
            Extra::default(),
        );
        self.callstate(ch, "DOWN", st);
    }

    fn early_media(&mut self, ch: &mut Channel) {
        let from = call_state(ch);
        if ch.progress_media_us == 0 {
            ch.progress_media_us = self.ts;
        }
        if ch.var("sip_to_tag").is_none() {
            self.sip_response_vars(ch, true);
        }
        ch.set_var("switch_r_sdp", &remote_sdp(ch));
        ch.set_var("endpoint_disposition", "EARLY MEDIA");
        let st = steady_state(ch);
        let no_codec = St { hide_codec: true, ..st };
        self.chan(
            ch,
            "CHANNEL_PROGRESS_MEDIA",
            Src("switch_channel.c", "switch_channel_perform_mark_pre_answered", 3560),
            St { call: from, ..no_codec },
            Vars::Yes,
            Extra::default(),
        );
        self.callstate(ch, from, no_codec);
        self.codecs(ch, st);
    }

    fn codecs(&mut self, ch: &Channel, st: St) {
        let m = media(ch);
        let rate = m.rate.to_string();
        let g722 = m.codec == "G722";
        let read: &[(&str, &str)] = &[
            ("channel-read-codec-name", m.codec),
            ("channel-read-codec-rate", &rate),
            ("channel-read-codec-bit-rate", "64000"),
            ("channel-reported-read-codec-rate", "8000"),
        ];
        let write: &[(&str, &str)] = &[
            ("Channel-Write-Codec-Name", m.codec),
            ("Channel-Write-Codec-Rate", &rate),
            ("Channel-Write-codec-bit-rate", "64000"),
            ("Channel-Reported-Write-Codec-Rate", &rate),
        ];
        let n = if g722 { 4 } else { 3 };
        self.chan(
            ch,
            "CODEC",
            Src("switch_core_codec.c", "switch_core_session_set_real_read_codec", 168),
            st,
            Vars::No,
            Extra { before: &[], after: &read[..n] },
        );
        self.chan(
            ch,
            "CODEC",
            Src("switch_core_codec.c", "switch_core_session_set_write_codec", 450),
            st,
            Vars::No,
            Extra { before: &[], after: &write[..n] },
        );
    }

    /// Variables set once RTP is up (`switch_core_media` on 200 OK, or
    /// lazily when the dialplan runs on an early-media channel).
    fn media_vars(ch: &mut Channel, early: bool) {
        let m = media(ch);
        if early {
            ch.set_var("ep_codec_string", &ep_codec(&m));
        }
        let codecs = ch.var("rtp_use_codec_string").unwrap_or("PCMU,PCMA").to_string();
        ch.set_var("rtp_use_codec_string", &codecs);
        ch.set_var("remote_video_media_flow", "inactive");
        ch.set_var("remote_text_media_flow", "inactive");
        ch.set_var("remote_audio_media_flow", "sendrecv");
        if early {
            ch.set_var("audio_media_flow", "sendrecv");
        }
        ch.set_var("rtp_audio_recv_pt", &m.pt.to_string());
        let rate = m.rate.to_string();
        ch.set_var("rtp_use_codec_name", m.codec);
        ch.set_var("rtp_use_codec_rate", "8000");
        ch.set_var("rtp_use_codec_ptime", "20");
        ch.set_var("rtp_use_codec_channels", "1");
        ch.set_var("rtp_last_audio_codec_string", &format!("{}@8000h@20i@1c", m.codec));
        ch.set_var("read_codec", m.codec);
        ch.set_var("original_read_codec", m.codec);
        ch.set_var("read_rate", &rate);
        ch.set_var("original_read_rate", &rate);
        ch.set_var("write_codec", m.codec);
        ch.set_var("write_rate", &rate);
        ch.set_var("dtmf_type", "rfc2833");
        for k in ["local_media_ip", "local_media_port", "advertised_media_ip"] {
            let v = ch.var(k).unwrap_or(IPV4).to_string();
            ch.set_var(k, &v);
        }
        ch.set_var("rtp_use_timer_name", "soft");
        ch.set_var("rtp_use_pt", &m.pt.to_string());
        ch.set_var("rtp_use_ssrc", &(mix(&ch.uuid, 7) % 4_000_000_000).to_string());
        ch.set_var("rtp_2833_send_payload", "101");
        ch.set_var("rtp_2833_recv_payload", "101");
        ch.set_var("remote_media_ip", IPV4);
        ch.set_var("remote_media_port", &remote_rtp_port(ch).to_string());
    }

    fn answer(&mut self, ch: &mut Channel) {
        let from = call_state(ch);
        let early = ch.progress_media_us != 0;
        if !early && ch.var("sip_to_tag").is_none() {
            self.sip_response_vars(ch, false);
        }
        if !early {
            let pre = St { call: from, ..steady_state(ch) };
            // Codec events fire before the answer is marked.
            let tmp_answer = ch.answered_us;
            ch.answered_us = self.ts;
            self.codecs(ch, pre);
            ch.answered_us = tmp_answer;
            ch.set_var("switch_r_sdp", &remote_sdp(ch));
            let m = media(ch);
            ch.set_var("ep_codec_string", &ep_codec(&m));
            Self::media_vars(ch, false);
        }
        if ch.answered_us == 0 {
            ch.answered_us = self.ts;
        }
        let st = steady_state(ch);
        self.chan(
            ch,
            "CHANNEL_ANSWER",
            Src("switch_channel.c", "switch_channel_perform_mark_answered", 3846),
            St { call: from, ..st },
            Vars::Yes,
            Extra::default(),
        );
        self.callstate(ch, from, st);
    }

    fn exec(&mut self, ch: &Channel, app: &str, data: Option<&str>, response: Option<&str>, salt: u64) {
        let app_uuid = derived_uuid(&ch.uuid, salt);
        let mut after: Vec<(&str, &str)> = Vec::with_capacity(4);
        after.push(("Application", app));
        if let Some(d) = data {
            after.push(("Application-Data", d));
        }
        let (name, src) = match response {
            Some(r) => {
                after.push(("Application-Response", r));
                ("CHANNEL_EXECUTE_COMPLETE", SRC_EXEC_DONE)
            }
            None => ("CHANNEL_EXECUTE", SRC_EXEC),
        };
        after.push(("Application-UUID", &app_uuid));
        self.chan(ch, name, src, steady_state(ch), Vars::Yes, Extra { before: &[], after: &after });
    }

    fn robot(&mut self, ch: &mut Channel, record_path: &str) {
        let early = ch.answered_us == 0 && ch.progress_media_us != 0;
        let start = dialplan_start(ch);
        ch.profile_index = 2;
        let xfer =
            format!("{}:{}:bl_xfer:{}/{}/XML", start / 1_000_000, derived_uuid(&ch.uuid, 8), ch.extension, ch.context);
        // Caller-Transfer-Source is read from this variable; FreeSWITCH sets it with CALL_UPDATE.
        ch.set_var("voxdial_sim_profile_us", &start.to_string());
        ch.set_var("transfer_source", &xfer);
        let routing = St { state: "CS_ROUTING", num: 2, ..steady_state(ch) };
        self.state(ch, St { hit: false, ..routing });
        ch.del_var("transfer_source");
        if early {
            Self::media_vars(ch, true);
            let ed = ch.var("endpoint_disposition").unwrap_or("EARLY MEDIA").to_string();
            ch.set_var("endpoint_disposition", &ed);
        } else {
            ch.set_var("endpoint_disposition", "ANSWER");
        }
        ch.set_var("max_forwards", "70");
        ch.set_var("transfer_history", &xfer);
        ch.set_var("transfer_source", &xfer);
        let uuid = ch.uuid.clone();
        ch.set_var("call_uuid", &uuid);
        let cid = ch.caller_id_number.clone();
        ch.set_var("pre_transfer_caller_id_number", &cid);
        ch.set_var("channel_cid_flipped", "yes");
        ch.swapped = true;
        self.chan(
            ch,
            "CALL_UPDATE",
            Src("switch_channel.c", "switch_channel_flip_cid", 3277),
            routing,
            Vars::Yes,
            Extra { before: &[("Direction", "RECV")], after: &[] },
        );
        self.state(ch, steady_state(ch));

        ch.set_var("call_uuid", &uuid);
        ch.set_var("current_application", "answer");
        self.exec(ch, "answer", None, None, 10);
        self.exec(ch, "answer", None, Some("_none_"), 10);

        ch.set_var("current_application", "set");
        ch.set_var("current_application_data", RECORD_STEREO);
        self.exec(ch, "set", Some(RECORD_STEREO), None, 11);
        ch.set_var("current_application", "set");
        ch.set_var("RECORD_STEREO", "true");
        self.exec(ch, "set", Some(RECORD_STEREO), Some("_none_"), 11);

        self.api("strftime", "%Y-%m-%d");
        ch.set_var("current_application", "record_session");
        ch.set_var("current_application_data", record_path);
        self.exec(ch, "record_session", Some(record_path), None, 12);
        ch.record_path = Some(record_path.to_string());
        ch.set_var("current_application", "record_session");
        let st = steady_state(ch);
        self.chan(
            ch,
            "RECORD_START",
            Src("switch_ivr_async.c", "record_callback", 1481),
            st,
            Vars::Yes,
            Extra { before: &[], after: &[("Record-File-Path", record_path)] },
        );
        self.chan(
            ch,
            "MEDIA_BUG_START",
            Src("switch_core_media_bug.c", "switch_core_media_bug_add", 1014),
            st,
            Vars::Yes,
            Extra {
                before: &[("Media-Bug-Function", "session_record"), ("Media-Bug-Target", record_path)],
                after: &[],
            },
        );
        self.exec(ch, "record_session", Some(record_path), Some("_none_"), 12);

        self.park(ch);
    }

    fn park(&mut self, ch: &mut Channel) {
        ch.del_var("current_application_data");
        ch.del_var("current_application_response");
        ch.set_var("current_application", "park");
        self.exec(ch, "park", None, None, 20 + u64::from(ch.profile_index));
        self.chan(
            ch,
            "CHANNEL_PARK",
            Src("switch_ivr.c", "switch_ivr_park", 1002),
            steady_state(ch),
            Vars::Yes,
            Extra::default(),
        );
    }

    /// CHANNEL_UNPARK + CHANNEL_EXECUTE_COMPLETE (park) when the park loop ends.
    fn unpark(&mut self, ch: &Channel, st: St) {
        // The robot extension and `uuid_transfer … park` both end in park;
        // a broadcast runs inside the park loop.
        if ch.profile_index < 2 {
            return;
        }
        self.chan(ch, "CHANNEL_UNPARK", Src("switch_ivr.c", "switch_ivr_park", 1213), st, Vars::Yes, Extra::default());
        let app_uuid = derived_uuid(&ch.uuid, 20 + u64::from(ch.profile_index));
        let resp = ch.var("current_application_response").unwrap_or("_none_");
        self.chan(
            ch,
            "CHANNEL_EXECUTE_COMPLETE",
            SRC_EXEC_DONE,
            st,
            Vars::Yes,
            Extra {
                before: &[],
                after: &[("Application", "park"), ("Application-Response", resp), ("Application-UUID", &app_uuid)],
            },
        );
    }

    fn sentence_record(&mut self, ch: &mut Channel, path: &str, stop: bool) {
        let st = steady_state(ch);
        let (record, bug, src, bug_src) = if stop {
            (
                "RECORD_STOP",
                "MEDIA_BUG_STOP",
                Src("switch_ivr_async.c", "send_record_stop_event", 1240),
                Src("switch_core_media_bug.c", "switch_core_media_bug_destroy", 84),
            )
        } else {
            (
                "RECORD_START",
                "MEDIA_BUG_START",
                Src("switch_ivr_async.c", "record_callback", 1481),
                Src("switch_core_media_bug.c", "switch_core_media_bug_add", 1014),
            )
        };
        let after: &[(&str, &str)] = if stop {
            &[("Record-File-Path", path), ("Record-Completion-Cause", "success-silence")]
        } else {
            &[("Record-File-Path", path)]
        };
        self.chan(ch, record, src, st, Vars::Yes, Extra { before: &[], after });
        let bug_hdrs = [("Media-Bug-Function", "session_record"), ("Media-Bug-Target", path)];
        self.chan(ch, bug, bug_src, st, Vars::Yes, Extra { before: &bug_hdrs, after: &[] });
    }

    fn playback_start(&mut self, ch: &mut Channel, file: &str) {
        ch.set_var("current_loop", "1");
        ch.set_var("total_loops", "1");
        ch.set_var("current_application", "playback");
        ch.set_var("current_application_data", file);
        let salt = 100 + mix(file, 0) % 1000;
        self.exec(ch, "playback", Some(file), None, salt);
        ch.set_var("current_application", "playback");
        self.chan(
            ch,
            "PLAYBACK_START",
            Src("switch_ivr_play_say.c", "switch_ivr_play_file", 1646),
            steady_state(ch),
            Vars::Yes,
            Extra { before: &[], after: &[("Playback-File-Type", file_type(file)), ("Playback-File-Path", file)] },
        );
    }

    fn playback_stop(&mut self, ch: &mut Channel, file: &str, broken: bool) {
        let mut ms = playback_ms(file);
        if broken {
            ms = (ms / 2).max(20);
        }
        let rate = i64::from(media(ch).rate);
        let samples = ms * rate / 1000;
        ch.set_var("playback_last_offset_pos", &samples.to_string());
        ch.set_var("playback_seconds", &(ms / 1000).to_string());
        ch.set_var("playback_ms", &ms.to_string());
        ch.set_var("playback_samples", &samples.to_string());
        let st = steady_state(ch);
        self.chan(
            ch,
            "PLAYBACK_STOP",
            Src("switch_ivr_play_say.c", "switch_ivr_play_file", 2020),
            st,
            Vars::Yes,
            Extra {
                before: &[],
                after: &[
                    ("Playback-File-Type", file_type(file)),
                    ("Playback-File-Path", file),
                    ("Playback-Status", if broken { "break" } else { "done" }),
                ],
            },
        );
        ch.set_var("current_application_response", "FILE PLAYED");
        let salt = 100 + mix(file, 0) % 1000;
        self.exec(ch, "playback", Some(file), Some("FILE PLAYED"), salt);
        if (self.wants)("PRIVATE_COMMAND", None) {
            // FreeSWITCH fires the queued broadcast command event itself: its
            // own header block (Event-Name COMMAND) precedes the channel's.
            let mut ev = self.r.begin(
                self.fmt,
                &mut self.scratch,
                "COMMAND",
                self.ts,
                Src("switch_ivr_async.c", "switch_ivr_broadcast", 5731),
            );
            ev.h("call-command", "execute");
            ev.h("execute-app-name", "playback");
            ev.h("execute-app-arg", file);
            ev.h("event-lock", "true");
            ev.h("lead-frames", "5");
            self.r.common(&mut ev, "PRIVATE_COMMAND", self.ts, Src("switch_ivr.c", "switch_ivr_parse_next_event", 804));
            chan_headers(&mut ev, ch, st);
            ev.finish(None);
            frame_event(self.fmt, &self.scratch, self.out);
        }
    }

    fn speech(&mut self, ch: &Channel, kind: &str, body: Option<&str>) {
        if !(self.wants)("DETECTED_SPEECH", None) {
            return;
        }
        let mut ev = self.r.begin(
            self.fmt,
            &mut self.scratch,
            "DETECTED_SPEECH",
            self.ts,
            Src("switch_ivr_async.c", "speech_thread", 5070),
        );
        ev.h("Speech-Type", kind);
        chan_headers(&mut ev, ch, steady_state(ch));
        ev.finish(body);
        frame_event(self.fmt, &self.scratch, self.out);
    }

    fn transfer_park(&mut self, ch: &mut Channel) {
        let xfer = format!(
            "{}:{}:bl_xfer:park/{}/inline",
            self.ts / 1_000_000,
            derived_uuid(&ch.uuid, 9 + u64::from(ch.profile_index)),
            ch.context
        );
        ch.del_var("current_loop");
        ch.del_var("total_loops");
        let mf = ch.var("max_forwards").and_then(|v| v.parse::<i64>().ok()).unwrap_or(70) - 1;
        ch.set_var("max_forwards", &mf.to_string());
        // transfer_history becomes an ARRAY in place; transfer_source is re-set.
        if let Some(slot) = ch.variables.iter_mut().find(|(k, _)| k == "transfer_history") {
            let old = slot.1.strip_prefix("ARRAY::").unwrap_or(&slot.1).to_string();
            slot.1 = format!("ARRAY::{old}|:{xfer}");
        }
        ch.set_var("transfer_source", &xfer);
        let st = St { num: 2, ..steady_state(ch) };
        self.unpark(ch, st);
        ch.profile_index += 1;
        ch.set_var("voxdial_sim_profile_us", &self.ts.to_string());
        let routing = St { state: "CS_ROUTING", keep_rdnis: true, ..st };
        self.state(ch, routing);
        self.state(ch, steady_state(ch));
        let uuid = ch.uuid.clone();
        ch.set_var("call_uuid", &uuid);
        self.park(ch);
    }

    fn hangup(&mut self, ch: &mut Channel) {
        let Some(h) = ch.hangup.clone() else {
            return;
        };
        let before = steady_state(ch);
        if ch.hangup_us == 0 {
            ch.hangup_us = self.ts;
        }
        let far_end = h.sip_term_status.is_some();
        if far_end {
            let responded = ch.var("sip_to_tag").is_some();
            if !responded && ch.var("sip_call_id").is_none() {
                let uuid = ch.uuid.clone();
                ch.set_var("sip_call_id", &sip_call_id(&uuid));
            }
            if h.disposition == "recv_refuse" {
                for (k, v) in [
                    ("sip_local_network_addr", IPV4.to_string()),
                    ("sip_reply_host", IPV4.to_string()),
                    ("sip_reply_port", media(ch).remote_sip_port.to_string()),
                    ("sip_network_ip", IPV4.to_string()),
                    ("sip_network_port", media(ch).remote_sip_port.to_string()),
                ] {
                    ch.set_var(k, &v);
                }
                ch.set_var("sip_hangup_disposition", &h.disposition);
                if let Some((code, phrase)) = &h.sip_invite_failure {
                    ch.set_var("sip_invite_failure_status", &code.to_string());
                    ch.set_var("sip_invite_failure_phrase", phrase);
                }
            }
            if let Some(code) = h.sip_term_status {
                ch.set_var("sip_term_status", &code.to_string());
                ch.set_var("proto_specific_hangup_cause", &format!("sip:{code}"));
                ch.set_var("sip_term_cause", &h.q850.to_string());
            }
        }
        ch.del_var("current_loop");
        ch.del_var("total_loops");
        let st = St { num: 10, answer: "hangup", ..before };
        self.chan(
            ch,
            "CHANNEL_HANGUP",
            Src("switch_channel.c", "switch_channel_perform_hangup", 3445),
            st,
            Vars::Yes,
            Extra::default(),
        );
        if h.disposition == "recv_bye" {
            ch.set_var("sip_hangup_disposition", "recv_bye");
        }
        self.unpark(ch, st);
        let st = St { state: "CS_HANGUP", ..st };
        self.state(ch, st);
        if let Some(path) = ch.record_path.clone() {
            let ms = since(ch.hangup_us, dialplan_start(ch)).max(0) / 1000;
            let samples = ms * i64::from(media(ch).rate) / 1000;
            ch.set_var("record_file_size", &(samples * 4 + 44).to_string());
            ch.set_var("record_samples", &samples.to_string());
            ch.set_var("record_seconds", &(ms / 1000).to_string());
            ch.set_var("record_ms", &ms.to_string());
            ch.set_var("record_completion_cause", "success-silence");
            self.chan(
                ch,
                "RECORD_STOP",
                Src("switch_ivr_async.c", "send_record_stop_event", 1240),
                st,
                Vars::Yes,
                Extra {
                    before: &[],
                    after: &[("Record-File-Path", &path), ("Record-Completion-Cause", "success-silence")],
                },
            );
            self.chan(
                ch,
                "MEDIA_BUG_STOP",
                Src("switch_core_media_bug.c", "switch_core_media_bug_destroy", 84),
                st,
                Vars::Yes,
                Extra { before: &[("Media-Bug-Function", "session_record"), ("Media-Bug-Target", &path)], after: &[] },
            );
        }
        let hung = St { call: "HANGUP", ..st };
        self.callstate(ch, before.call, hung);
        self.state(ch, St { state: "CS_REPORTING", num: 11, ..hung });
    }

    fn hangup_complete(&mut self, ch: &mut Channel) {
        if ch.hangup_us == 0 {
            ch.hangup_us = self.ts;
        }
        let h = ch.hangup.clone();
        let cause = h.as_ref().map_or("NORMAL_CLEARING", |h| h.cause.as_str()).to_string();
        cdr_vars(ch, h.as_ref());
        let st = St {
            state: "CS_REPORTING",
            num: 11,
            call: "HANGUP",
            answer: "hangup",
            hit: ch.profile_index >= 2,
            hide_codec: false,
            keep_rdnis: false,
        };
        self.chan(
            ch,
            "CHANNEL_HANGUP_COMPLETE",
            Src("switch_core_state_machine.c", "switch_core_session_reporting_state", 943),
            st,
            Vars::Yes,
            Extra { before: &[("Hangup-Cause", &cause)], after: &[] },
        );
        let st = St { num: 12, ..st };
        self.chan(
            ch,
            "CHANNEL_DESTROY",
            Src("switch_core_session.c", "switch_core_session_perform_destroy", 1584),
            st,
            Vars::Yes,
            Extra::default(),
        );
        self.state(ch, St { state: "CS_DESTROY", ..st });
    }
}

/// The CDR variables FreeSWITCH adds when the channel reaches CS_REPORTING,
/// computed from the channel's timestamps.
fn cdr_vars(ch: &mut Channel, h: Option<&Hangup>) {
    let (start, answer, progress, pmedia, end) =
        (ch.created_us, ch.answered_us, ch.progress_us, ch.progress_media_us, ch.hangup_us);
    let profile = profile_created(ch);
    let last_app = ch.var("current_application").map(str::to_string);
    let last_arg = ch.var("current_application_data").map(str::to_string);
    if let Some(h) = h {
        ch.set_var("hangup_cause", &h.cause);
        ch.set_var("hangup_cause_q850", &h.q850.to_string());
    }
    ch.set_var("digits_dialed", "none");
    ch.set_var("start_stamp", &stamp(start));
    ch.set_var("profile_start_stamp", &stamp(profile));
    if answer != 0 {
        ch.set_var("answer_stamp", &stamp(answer));
    }
    if progress != 0 {
        ch.set_var("progress_stamp", &stamp(progress));
    }
    if pmedia != 0 {
        ch.set_var("progress_media_stamp", &stamp(pmedia));
    }
    ch.set_var("end_stamp", &stamp(end));
    let epoch = |ch: &mut Channel, name: &str, us: i64| {
        ch.set_var(&format!("{name}_epoch"), &us.div_euclid(1_000_000).to_string());
        ch.set_var(&format!("{name}_uepoch"), &us.to_string());
    };
    epoch(ch, "start", start);
    epoch(ch, "profile_start", profile);
    epoch(ch, "answer", answer);
    epoch(ch, "bridge", 0);
    epoch(ch, "last_hold", 0);
    ch.set_var("hold_accum_seconds", "0");
    ch.set_var("hold_accum_usec", "0");
    ch.set_var("hold_accum_ms", "0");
    epoch(ch, "resurrect", 0);
    epoch(ch, "progress", progress);
    epoch(ch, "progress_media", pmedia);
    epoch(ch, "end", end);
    if let Some(app) = last_app {
        ch.set_var("last_app", &app);
        if let Some(arg) = last_arg {
            ch.set_var("last_arg", &arg);
        }
    }
    let caller_id =
        if ch.swapped { format!("\"{OUTBOUND_CALL}\" <{}>", ch.dialed) } else { ch.caller_id_number.clone() };
    ch.set_var("caller_id", &caller_id);
    let bill = if answer != 0 { end } else { 0 };
    let flow = if answer != 0 { end } else { 0 };
    let rows: [(&str, i64, i64); 7] = [
        ("duration", end, start),
        ("billsec", bill, answer),
        ("progresssec", progress, start),
        ("answersec", answer, start),
        ("waitsec", 0, start),
        ("progress_mediasec", pmedia, start),
        ("flow_billsec", flow, start),
    ];
    for (name, to, from) in rows {
        ch.set_var(name, &secs(to, from).to_string());
    }
    let ms_names =
        ["mduration", "billmsec", "progressmsec", "answermsec", "waitmsec", "progress_mediamsec", "flow_billmsec"];
    for ((_, to, from), name) in rows.iter().zip(ms_names) {
        ch.set_var(name, &(since(*to, *from) / 1000).to_string());
    }
    let us_names =
        ["uduration", "billusec", "progressusec", "answerusec", "waitusec", "progress_mediausec", "flow_billusec"];
    for ((_, to, from), name) in rows.iter().zip(us_names) {
        ch.set_var(name, &since(*to, *from).to_string());
    }
    // What FreeSWITCH records about its own BYE/CANCEL lands after the timing variables, before the RTP counters.
    if let Some(h) = h {
        match h.disposition.as_str() {
            "send_bye" => ch.set_var("sip_hangup_disposition", "send_bye"),
            "send_cancel" => {
                ch.set_var("sip_hangup_disposition", "send_cancel");
                let (code, phrase) = h.sip_invite_failure.clone().unwrap_or((487, "CANCEL".into()));
                ch.set_var("sip_invite_failure_status", &code.to_string());
                ch.set_var("sip_invite_failure_phrase", &phrase);
            }
            d if ch.var("sip_hangup_disposition").is_none() => ch.set_var("sip_hangup_disposition", d),
            _ => {}
        }
    }
    if answer != 0 || pmedia != 0 {
        let media_ms = since(end, if answer != 0 { answer } else { pmedia }).max(0) / 1000;
        let pkts = media_ms / 20;
        let bytes = pkts * 172;
        let played: i64 = ch.var("playback_ms").and_then(|v| v.parse().ok()).unwrap_or(0);
        let out_pkts = played / 20;
        let stats: [(&str, String); 28] = [
            ("rtp_audio_in_raw_bytes", bytes.to_string()),
            ("rtp_audio_in_media_bytes", bytes.to_string()),
            ("rtp_audio_in_packet_count", pkts.to_string()),
            ("rtp_audio_in_media_packet_count", pkts.to_string()),
            ("rtp_audio_in_skip_packet_count", "0".into()),
            ("rtp_audio_in_jitter_packet_count", "0".into()),
            ("rtp_audio_in_dtmf_packet_count", "0".into()),
            ("rtp_audio_in_cng_packet_count", "0".into()),
            ("rtp_audio_in_flush_packet_count", "0".into()),
            ("rtp_audio_in_largest_jb_size", "0".into()),
            ("rtp_audio_in_jitter_min_variance", "0.07".into()),
            ("rtp_audio_in_jitter_max_variance", "0.28".into()),
            ("rtp_audio_in_jitter_loss_rate", "0.00".into()),
            ("rtp_audio_in_jitter_burst_rate", "0.00".into()),
            ("rtp_audio_in_mean_interval", "20.00".into()),
            ("rtp_audio_in_flaw_total", "0".into()),
            ("rtp_audio_in_quality_percentage", "100.00".into()),
            ("rtp_audio_in_mos", "4.50".into()),
            ("rtp_audio_out_raw_bytes", (out_pkts * 172).to_string()),
            ("rtp_audio_out_media_bytes", (out_pkts * 172).to_string()),
            ("rtp_audio_out_packet_count", out_pkts.to_string()),
            ("rtp_audio_out_media_packet_count", out_pkts.to_string()),
            ("rtp_audio_out_skip_packet_count", "0".into()),
            ("rtp_audio_out_dtmf_packet_count", "0".into()),
            ("rtp_audio_out_cng_packet_count", "0".into()),
            ("rtp_audio_rtcp_packet_count", "0".into()),
            ("rtp_audio_rtcp_octet_count", "0".into()),
            ("rtp_audio_in_jitter_packet_count", "0".into()),
        ];
        for (k, v) in &stats[..27] {
            ch.set_var(k, v);
        }
    }
}

fn ep_codec(m: &Media) -> String {
    if m.codec == "G722" {
        "mod_spandsp.G722@8000h@20i@64000b".into()
    } else {
        "CORE_PCM_MODULE.PCMU@8000h@20i@64000b".into()
    }
}

fn remote_rtp_port(ch: &Channel) -> u16 {
    // sipp callees on 5090/5091/5092 sent RTP from 6000/6100/6200.
    6000u16.saturating_add(media(ch).remote_sip_port.saturating_sub(5090).saturating_mul(100))
}

fn remote_sdp(ch: &Channel) -> String {
    let m = media(ch);
    format!(
        "v=0\r\no=callee 53655765 2353687637 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio {} RTP/AVP {} 101\r\na=rtpmap:{} {}/8000\r\na=rtpmap:101 telephone-event/8000\r\na=fmtp:101 0-15\r\na=ptime:20\r\n",
        remote_rtp_port(ch),
        m.pt,
        m.pt,
        m.codec
    )
}

fn sip_call_id(uuid: &str) -> String {
    let a = mix(uuid, 11);
    format!("{:08x}-602b-1240-70aa-623ab454267f", a >> 32)
}

/// Escape text for the NLSML body of a DETECTED_SPEECH event.
fn xml_text(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn framed(fmt: Format, body: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(body.len() + 64);
    frame_event(fmt, body, &mut out);
    out.freeze()
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

    /// Close the event with a body whose `Content-Length` is already among
    /// the headers (a fired `sendevent` keeps the client's).
    fn finish_raw_body(self, body: Option<&str>) {
        match (self.fmt, body) {
            (Format::Plain, Some(b)) => {
                self.buf.push(b'\n');
                self.buf.extend_from_slice(b.as_bytes());
            }
            (Format::Json, Some(b)) => {
                let mut ev = Ev { fmt: self.fmt, buf: self.buf };
                ev.h("_body", b);
                ev.buf.push(b'}');
            }
            (_, None) => self.finish(None),
        }
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

/// Bytes `switch_url_encode` escapes, as a lookup table (hot path).
const URL_UNSAFE: [bool; 256] = {
    let mut t = [false; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = i < 0x20 || i > 0x7e;
        i += 1;
    }
    let extra = b" \"#%&+:;<=>?@[\\]^`{|}";
    let mut j = 0;
    while j < extra.len() {
        t[extra[j] as usize] = true;
        j += 1;
    }
    t
};

fn needs_encoding(c: u8) -> bool {
    URL_UNSAFE[usize::from(c)]
}

/// cJSON's string escaping: `"` `\` and control characters; UTF-8 passes through.
fn json_escape(v: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    if !v.iter().any(|&c| c < 0x20 || c == b'"' || c == b'\\') {
        out.extend_from_slice(v);
        return;
    }
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
