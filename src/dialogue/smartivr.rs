//! The smartivr HTTP flow protocol (顶顶通 robot modules), transport side only:
//! the notify the module POSTs, the action JSON it expects back, and the
//! mapping to and from the transport-free [`Dialogue`](super::Dialogue).
//!
//! See `shared/protocols/smartivr.md`. Parsing is tolerant because the
//! module lineages disagree on types (`speakms` as string or int, `flowdata`
//! as object or string); only `notify` and `callid` are required.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};

use super::engine::{Action, Dialogue, Input, Prompt};
use super::script::Script;

/// A request that cannot be served, naming what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyError {
    #[error("body is not a JSON object: {0}")]
    BadJson(String),
    #[error("missing field `{0}`")]
    MissingField(&'static str),
}

impl NotifyError {
    /// The field at fault, for the JSON error body.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            NotifyError::MissingField(f) => Some(f),
            NotifyError::BadJson(_) => None,
        }
    }
}

/// One request from the robot module. Unknown fields are ignored; `flowdata`
/// is not read at all since the state lives server-side.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Notify {
    #[serde(default, deserialize_with = "lenient_string")]
    pub notify: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub callid: Option<String>,
    /// On auto-outbound calls this carries the flow id.
    #[serde(default, deserialize_with = "lenient_string")]
    pub calleeid: Option<String>,
    /// On auto-outbound calls this is the customer's number.
    #[serde(default, deserialize_with = "lenient_string")]
    pub callerid: Option<String>,
    /// The caller ID used on outbound calls.
    #[serde(default, deserialize_with = "lenient_string")]
    pub origcallerid: Option<String>,
    /// The task uuid, as the ThinkPHP dialer sets it.
    #[serde(default, deserialize_with = "lenient_string")]
    pub flowid: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub errorcode: Option<i64>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub message: Option<String>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub playstate: Option<bool>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub asrstate: Option<bool>,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub hangup: Option<bool>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub speakms: Option<i64>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub playms: Option<i64>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub asrelapse: Option<i64>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub asrtype: Option<String>,
    #[serde(default, deserialize_with = "lenient_i64")]
    pub gender: Option<i64>,
    /// `leave`: seconds in the flow.
    #[serde(default, deserialize_with = "lenient_i64")]
    pub duration: Option<i64>,
    /// `leave`: `recv_bye` = the customer hung up.
    #[serde(default, deserialize_with = "lenient_string")]
    pub hangup_disposition: Option<String>,
    #[serde(default, alias = "hangupcause", deserialize_with = "lenient_string")]
    pub hangup_cause: Option<String>,
    /// `asrprogress_notify`: the segment's recording (customer audio).
    #[serde(default, deserialize_with = "lenient_string")]
    pub recordfile: Option<String>,
}

impl Notify {
    /// Parse a request body; `notify` and `callid` must be present and non-empty.
    pub fn parse(body: &[u8]) -> Result<Notify, NotifyError> {
        if body.trim_ascii_start().first() != Some(&b'{') {
            return Err(NotifyError::BadJson("expected a JSON object".into()));
        }
        let n: Notify = serde_json::from_slice(body).map_err(|e| NotifyError::BadJson(e.to_string()))?;
        if n.notify.as_deref().is_none_or(str::is_empty) {
            return Err(NotifyError::MissingField("notify"));
        }
        if n.callid.as_deref().is_none_or(str::is_empty) {
            return Err(NotifyError::MissingField("callid"));
        }
        Ok(n)
    }

    pub fn notify(&self) -> &str {
        self.notify.as_deref().unwrap_or("")
    }

    pub fn callid(&self) -> &str {
        self.callid.as_deref().unwrap_or("")
    }

    /// The recognized text of `message` (§6 format), empty when none.
    pub fn text(&self) -> String {
        parse_message(self.message.as_deref().unwrap_or(""))
    }
}

/// Join the segments of `1.喂你好;2.什么事;` into `喂你好什么事`. Accepts a
/// full-width `；`; a segment is cut at its FIRST `.` only, and only when what
/// precedes it is a segment index, so `3.5元` inside a text survives.
pub fn parse_message(m: &str) -> String {
    let mut out = String::with_capacity(m.len());
    for part in m.split([';', '；']) {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let text = match part.split_once('.') {
            Some((idx, text)) if !idx.is_empty() && idx.bytes().all(|b| b.is_ascii_digit()) => text,
            _ => part,
        };
        out.push_str(text.trim());
    }
    out
}

/// What a notify means for the dialogue.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// The call entered the flow.
    Enter,
    /// Feed these inputs in order, stopping at the first decisive action.
    Feed(Vec<Input>),
    /// Noise or an ASR failure: let the paused prompt go on.
    Resume,
    /// Informational (`start_asr_result`, unknown): nothing to do.
    Noop,
    /// The call left the flow.
    Leave,
}

/// Map a notify to what the dialogue must see.
pub fn step_of(n: &Notify) -> Step {
    let failed = n.errorcode.unwrap_or(0) != 0;
    match n.notify() {
        "enter" => Step::Enter,
        "asrprogress_notify" => {
            let text = n.text();
            if failed || text.is_empty() {
                Step::Resume
            } else {
                Step::Feed(vec![Input::AsrProgress { text }])
            }
        }
        "asrmessage_notify" => {
            let text = n.text();
            if failed || text.is_empty() {
                Step::Resume
            } else {
                let msg = Input::AsrMessage {
                    text,
                    speak_ms: n.speakms.unwrap_or(0),
                    asr_elapse: n.asrelapse,
                    gender: n.gender.filter(|g| *g > 0),
                };
                // `playstate: false`: the prompt is over (the callee spoke in
                // its wait window), so the answer is not a barge-in.
                if n.playstate == Some(false) {
                    Step::Feed(vec![Input::PlaybackStopped, msg])
                } else {
                    Step::Feed(vec![msg])
                }
            }
        }
        // Sent once the prompt AND its wait window are over with no speech:
        // the prompt finished, then the silence ran out. While the callee is
        // speaking (`asrstate`) or already gone (`hangup`), an asrmessage or
        // the leave follows; answer nothing now.
        "playback_result" => {
            if n.hangup == Some(true) || n.asrstate == Some(true) {
                Step::Noop
            } else {
                Step::Feed(vec![Input::PlaybackDone, Input::WaitTimeout])
            }
        }
        "wait_result" => {
            if n.hangup == Some(true) || n.asrstate == Some(true) {
                Step::Noop
            } else {
                Step::Feed(vec![Input::WaitTimeout])
            }
        }
        "getdtmf_result" if !failed => Step::Feed(vec![Input::Dtmf { digits: n.message.clone().unwrap_or_default() }]),
        // Success is `errorcode` 0 in one lineage, `message` SUCCESS in another.
        "bridge_result" | "transfer_result" => {
            let msg = n.message.as_deref().unwrap_or("");
            let ok =
                if n.errorcode.is_some() { !failed } else { msg.is_empty() || msg.eq_ignore_ascii_case("success") };
            let cause = Some(msg.to_string())
                .filter(|m| !m.is_empty() && !ok)
                .or_else(|| n.hangup_cause.clone().filter(|_| !ok));
            Step::Feed(vec![Input::BridgeResult { ok, cause }])
        }
        "leave" => Step::Leave,
        _ => Step::Noop,
    }
}

/// Feed a [`Step::Feed`]'s inputs: a `Listen` or `Noop` lets the next input
/// through (the module's own wait window already ran), anything else is the
/// answer.
pub fn drive(d: &mut Dialogue, inputs: Vec<Input>) -> Action {
    let mut last = Action::Noop;
    for i in inputs {
        last = d.handle(i);
        if !matches!(last, Action::Listen { .. } | Action::Noop) {
            break;
        }
    }
    last
}

/// `start_asr` parameters (§5.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AsrParams {
    pub min_speak_ms: i64,
    pub max_speak_ms: i64,
    pub min_pause_ms: i64,
    pub max_pause_ms: i64,
    /// The module pauses the prompt after this much continuous speech.
    pub pause_play_ms: i64,
    pub threshold: i64,
    pub recordpath: String,
    pub volume: i64,
    pub filter_level: f64,
    pub asr_configure_filename: String,
}

impl Default for AsrParams {
    fn default() -> Self {
        AsrParams {
            min_speak_ms: 100,
            max_speak_ms: 10_000,
            min_pause_ms: 300,
            max_pause_ms: 600,
            pause_play_ms: 200,
            threshold: 0,
            recordpath: String::new(),
            volume: 50,
            filter_level: 0.0,
            asr_configure_filename: String::new(),
        }
    }
}

/// `playback` parameters (§5.2).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PlaybackParams {
    /// Files (`….wav`) and TTS texts, played in order.
    pub prompt: Vec<String>,
    pub wait: i64,
    /// Always 0: the engine owns retries, so every replay is a recorded turn.
    pub retry: i64,
    pub block_asr: i64,
    /// 0 = barge-in per `pause_play_ms`; -1 = none on this prompt.
    pub allow_interrupt: i64,
}

/// The `params` / `after_params` of a reply.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Params {
    StartAsr(AsrParams),
    Playback(PlaybackParams),
    Console { command: &'static str },
    Hangup { cause: i64, usermsg: String },
    Transfer { destnumber: String, dialplan: String, context: String },
    Bridge { number: String, callerid: String, gateway: String, prompt: String, background: String },
    Noop { usermsg: String },
}

/// What rides along in `flowdata`: only a version, the state is server-side.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct FlowData {
    pub v: u8,
}

/// The action JSON answered to every notify.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reply {
    pub action: &'static str,
    pub params: Params,
    pub flowdata: FlowData,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_action: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_params: Option<Params>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after_ignore_error: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suspend_asr: Option<bool>,
}

impl Reply {
    fn simple(action: &'static str, params: Params) -> Reply {
        Reply {
            action,
            params,
            flowdata: FlowData { v: 1 },
            after_action: None,
            after_params: None,
            after_ignore_error: None,
            suspend_asr: None,
        }
    }

    pub fn noop() -> Reply {
        Reply::simple("noop", Params::Noop { usermsg: String::new() })
    }

    pub fn resume() -> Reply {
        Reply::simple("console_playback", Params::Console { command: "resume" })
    }

    pub fn pause() -> Reply {
        Reply::simple("console_playback", Params::Console { command: "pause" })
    }

    pub fn hangup(usermsg: &str) -> Reply {
        Reply::simple("hangup", Params::Hangup { cause: 0, usermsg: usermsg.to_string() })
    }
}

/// Where audio lives and how to start recognition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ReplyOptions {
    /// Directory holding `<file_id>.wav`, as the module's host sees it.
    pub audio_root: String,
    pub asr: AsrParams,
    /// Default destination of `Action::Transfer` when the script names none:
    /// an extension (→ `transfer`) or a dial string such as
    /// `sofia/gateway/agents/8001` or `user/8001` (→ `bridge`).
    pub transfer_to: String,
    pub transfer_context: String,
    /// Caller ID presented to the agent on a `bridge`; empty: the module's.
    pub bridge_callerid: String,
}

impl Default for ReplyOptions {
    fn default() -> Self {
        ReplyOptions {
            audio_root: "/var/smartivr/audio".into(),
            asr: AsrParams::default(),
            transfer_to: "agent".into(),
            transfer_context: "default".into(),
            bridge_callerid: String::new(),
        }
    }
}

/// A destination is bridged (dialled) rather than transferred in the
/// dialplan when it is a dial string.
pub fn is_dial_string(dest: &str) -> bool {
    dest.contains('/') || dest.starts_with('{') || dest.starts_with('[')
}

/// The prompt items of a `Play`: a recording when the content has one and no
/// `{$var}` (a recording cannot say the callee's name), otherwise TTS text.
pub fn prompt_items(script: &Script, utterance_id: &str, prompts: &[Prompt], audio_root: &str) -> Vec<String> {
    let mut raw: Vec<&super::script::Content> =
        script.utterance(utterance_id).map(|u| u.contents.iter().filter(|c| c.status).collect()).unwrap_or_default();
    raw.sort_by_key(|c| c.sort);
    prompts
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let templated = raw.get(i).is_some_and(|c| c.translate_text.contains("{$"));
            match &p.file_id {
                Some(f) if !templated => format!("{}/{f}.wav", audio_root.trim_end_matches('/')),
                _ => p.text.clone(),
            }
        })
        .collect()
}

/// Translate a dialogue action into the reply. `enter`: the first reply,
/// which must start recognition before the opening prompt.
pub fn reply_for(action: &Action, script: &Script, opts: &ReplyOptions, enter: bool) -> Reply {
    match action {
        Action::Play { utterance_id, prompts, wait_ms, interruptible, hangup_after } => {
            let u = script.utterance(utterance_id);
            // Keyword barge-in: the module must not pause on speech alone;
            // the server pauses on a matching partial result (§7).
            let keyword_only = u.is_some_and(|u| u.allow_keyword_interrupt);
            let transfer = u.is_some_and(|u| u.action.as_deref() == Some("transfer"));
            let params = PlaybackParams {
                prompt: prompt_items(script, utterance_id, prompts, &opts.audio_root),
                wait: (*wait_ms).max(0),
                retry: 0,
                block_asr: 0,
                allow_interrupt: if *interruptible && !keyword_only { 0 } else { -1 },
            };
            if enter {
                return Reply {
                    after_action: Some("playback"),
                    after_params: Some(Params::Playback(params)),
                    after_ignore_error: Some(false),
                    ..Reply::simple("start_asr", Params::StartAsr(opts.asr.clone()))
                };
            }
            let mut r = Reply::simple("playback", Params::Playback(params));
            if *hangup_after {
                // The closing prompt plays deaf and the call is always released.
                r.suspend_asr = Some(true);
                r.after_action = Some("hangup");
                r.after_params = Some(Params::Hangup { cause: 0, usermsg: String::new() });
                r.after_ignore_error = Some(true);
            } else if transfer {
                // Deaf too; its playback_result brings the transfer.
                r.suspend_asr = Some(true);
            }
            r
        }
        Action::StopPlayback | Action::PausePlayback => Reply::pause(),
        Action::ResumePlayback => Reply::resume(),
        // The module's own wait window (the `wait` of the prompt) applies.
        Action::Listen { .. } | Action::Noop => Reply::noop(),
        Action::Hangup => Reply::hangup(""),
        Action::Transfer { destination } => {
            let dest = if destination.is_empty() { opts.transfer_to.as_str() } else { destination.as_str() };
            let (after, params) = if is_dial_string(dest) {
                (
                    "bridge",
                    Params::Bridge {
                        number: dest.to_string(),
                        callerid: opts.bridge_callerid.clone(),
                        gateway: String::new(),
                        prompt: String::new(),
                        background: String::new(),
                    },
                )
            } else {
                (
                    "transfer",
                    Params::Transfer {
                        destnumber: dest.to_string(),
                        dialplan: "XML".into(),
                        context: opts.transfer_context.clone(),
                    },
                )
            };
            Reply {
                after_action: Some(after),
                after_params: Some(params),
                after_ignore_error: Some(false),
                ..Reply::simple("stop_asr", Params::Noop { usermsg: String::new() })
            }
        }
    }
}

// ---- lenient field parsing ----

struct AnyScalar;

enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

impl<'de> Visitor<'de> for AnyScalar {
    type Value = Scalar;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string, number, boolean or null")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Scalar, E> {
        Ok(Scalar::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Scalar, D::Error> {
        d.deserialize_any(AnyScalar)
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
        Ok(Scalar::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
        Ok(Scalar::Int(v))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
        Ok(Scalar::Int(i64::try_from(v).unwrap_or(i64::MAX)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
        Ok(Scalar::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
        Ok(Scalar::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Scalar, E> {
        Ok(Scalar::Str(v))
    }
    // Objects and arrays where a scalar belongs are treated as absent.
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut a: A) -> Result<Scalar, A::Error> {
        while a.next_element::<de::IgnoredAny>()?.is_some() {}
        Ok(Scalar::Null)
    }
    fn visit_map<A: de::MapAccess<'de>>(self, mut a: A) -> Result<Scalar, A::Error> {
        while a.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
        Ok(Scalar::Null)
    }
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match d.deserialize_any(AnyScalar)? {
        Scalar::Null => None,
        Scalar::Bool(b) => Some(b.to_string()),
        Scalar::Int(i) => Some(i.to_string()),
        Scalar::Float(f) => Some(f.to_string()),
        Scalar::Str(s) => Some(s),
    })
}

fn lenient_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(match d.deserialize_any(AnyScalar)? {
        Scalar::Null => None,
        Scalar::Bool(b) => Some(i64::from(b)),
        Scalar::Int(i) => Some(i),
        Scalar::Float(f) if f.is_finite() => Some(f as i64),
        Scalar::Float(_) => None,
        Scalar::Str(s) => {
            let s = s.trim();
            s.parse::<i64>().ok().or_else(|| s.parse::<f64>().ok().filter(|f| f.is_finite()).map(|f| f as i64))
        }
    })
}

fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(match d.deserialize_any(AnyScalar)? {
        Scalar::Null => None,
        Scalar::Bool(b) => Some(b),
        Scalar::Int(i) => Some(i != 0),
        Scalar::Float(f) => Some(f != 0.0),
        Scalar::Str(s) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Some(true),
            "false" | "0" | "no" | "" => Some(false),
            _ => None,
        },
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use super::*;
    use crate::dialogue::script::SAMPLE_SCRIPT;

    #[test]
    fn message_segments() {
        assert_eq!(parse_message("1.喂你好;2.什么事;"), "喂你好什么事");
        assert_eq!(parse_message("1.喂你好；2.什么事；"), "喂你好什么事");
        assert_eq!(parse_message("1.价格是3.5元吗;"), "价格是3.5元吗");
        assert_eq!(parse_message("对"), "对");
        assert_eq!(parse_message(""), "");
        assert_eq!(parse_message(";;"), "");
        assert_eq!(parse_message("1.;"), "");
    }

    #[test]
    fn tolerant_fields() {
        let n = Notify::parse(
            br#"{"notify":"asrmessage_notify","callid":"c1","speakms":"1380","flowdata":{"x":[1,2]},"playstate":"false","gender":2,"errorcode":null,"extra":{"a":1}}"#,
        )
        .unwrap();
        assert_eq!(n.speakms, Some(1380));
        assert_eq!(n.playstate, Some(false));
        assert_eq!(n.gender, Some(2));
        assert_eq!(n.errorcode, None);
        let n = Notify::parse(br#"{"notify":"enter","callid":"c1","flowdata":"{\"a\":1}","speakms":12}"#).unwrap();
        assert_eq!(n.speakms, Some(12));
        assert_eq!(Notify::parse(br#"{"callid":"c1"}"#).unwrap_err(), NotifyError::MissingField("notify"));
        assert_eq!(
            Notify::parse(br#"{"notify":"enter","callid":""}"#).unwrap_err(),
            NotifyError::MissingField("callid")
        );
        assert!(matches!(Notify::parse(b"{nope"), Err(NotifyError::BadJson(_))));
        assert!(matches!(Notify::parse(b"[1]"), Err(NotifyError::BadJson(_))));
    }

    #[test]
    fn steps() {
        let n = |j: &str| Notify::parse(j.as_bytes()).unwrap();
        assert_eq!(step_of(&n(r#"{"notify":"enter","callid":"c"}"#)), Step::Enter);
        assert_eq!(step_of(&n(r#"{"notify":"asrmessage_notify","callid":"c","message":""}"#)), Step::Resume);
        assert_eq!(
            step_of(&n(r#"{"notify":"asrmessage_notify","callid":"c","message":"1.好;","errorcode":-1}"#)),
            Step::Resume
        );
        assert_eq!(
            step_of(&n(
                r#"{"notify":"asrmessage_notify","callid":"c","message":"1.好;2.的;","speakms":"900","asrelapse":300,"gender":1}"#
            )),
            Step::Feed(vec![Input::AsrMessage {
                text: "好的".into(),
                speak_ms: 900,
                asr_elapse: Some(300),
                gender: Some(1)
            }])
        );
        assert_eq!(
            step_of(&n(r#"{"notify":"asrmessage_notify","callid":"c","message":"1.好;","playstate":false}"#)),
            Step::Feed(vec![
                Input::PlaybackStopped,
                Input::AsrMessage { text: "好".into(), speak_ms: 0, asr_elapse: None, gender: None }
            ])
        );
        assert_eq!(
            step_of(&n(r#"{"notify":"bridge_result","callid":"c","errorcode":480,"message":"NO_USER_RESPONSE"}"#)),
            Step::Feed(vec![Input::BridgeResult { ok: false, cause: Some("NO_USER_RESPONSE".into()) }])
        );
        assert_eq!(
            step_of(&n(r#"{"notify":"bridge_result","callid":"c","message":"SUCCESS"}"#)),
            Step::Feed(vec![Input::BridgeResult { ok: true, cause: None }])
        );
        assert_eq!(
            step_of(&n(r#"{"notify":"playback_result","callid":"c","message":"FILE PLAYED"}"#)),
            Step::Feed(vec![Input::PlaybackDone, Input::WaitTimeout])
        );
        assert_eq!(step_of(&n(r#"{"notify":"playback_result","callid":"c","hangup":true}"#)), Step::Noop);
        assert_eq!(step_of(&n(r#"{"notify":"wait_result","callid":"c"}"#)), Step::Feed(vec![Input::WaitTimeout]));
        assert_eq!(step_of(&n(r#"{"notify":"leave","callid":"c"}"#)), Step::Leave);
        assert_eq!(step_of(&n(r#"{"notify":"start_asr_result","callid":"c"}"#)), Step::Noop);
    }

    #[test]
    fn replies() {
        let script = Arc::new(Script::from_json(SAMPLE_SCRIPT).unwrap());
        let opts = ReplyOptions { audio_root: "/audio/".into(), ..ReplyOptions::default() };
        let mut d = Dialogue::new(script.clone(), HashMap::from([("name".to_string(), "王先生".to_string())]));
        let a = d.handle(Input::Enter);
        let r = serde_json::to_value(reply_for(&a, &script, &opts, true)).unwrap();
        assert_eq!(r["action"], "start_asr");
        assert_eq!(r["after_action"], "playback");
        assert_eq!(r["params"]["max_pause_ms"], 600);
        assert_eq!(r["flowdata"], serde_json::json!({"v": 1}));
        let prompt = r["after_params"]["prompt"][0].as_str().unwrap();
        assert!(prompt.contains("王先生"), "templated content is spoken by TTS: {prompt}");
        // A plain recording is played from the audio root.
        let a =
            drive(&mut d, vec![Input::AsrMessage { text: "可以".into(), speak_ms: 1, asr_elapse: None, gender: None }]);
        let r = serde_json::to_value(reply_for(&a, &script, &opts, false)).unwrap();
        assert_eq!(r["action"], "playback");
        assert_eq!(r["params"]["prompt"], serde_json::json!(["/audio/audio-intro.wav"]));
        assert_eq!(r["params"]["wait"], 4000);
        assert!(r.get("after_action").is_none());
        // Closing: deaf, then hang up whatever happens.
        let a = drive(
            &mut d,
            vec![Input::AsrMessage { text: "不需要".into(), speak_ms: 1, asr_elapse: None, gender: None }],
        );
        let r = serde_json::to_value(reply_for(&a, &script, &opts, false)).unwrap();
        assert_eq!(r["action"], "playback");
        assert_eq!(r["suspend_asr"], true);
        assert_eq!(r["after_action"], "hangup");
        assert_eq!(r["after_ignore_error"], true);
        assert_eq!(r["params"]["allow_interrupt"], -1);
        let r = serde_json::to_value(reply_for(&Action::StopPlayback, &script, &opts, false)).unwrap();
        assert_eq!(r, serde_json::json!({"action":"console_playback","params":{"command":"pause"},"flowdata":{"v":1}}));
        let t = Action::Transfer { destination: String::new() };
        let r = serde_json::to_value(reply_for(&t, &script, &opts, false)).unwrap();
        assert_eq!(r["action"], "stop_asr");
        assert_eq!(r["after_action"], "transfer");
        assert_eq!(r["after_params"]["destnumber"], "agent");
        let t = Action::Transfer { destination: "sofia/gateway/agents/8001".into() };
        let r = serde_json::to_value(reply_for(&t, &script, &opts, false)).unwrap();
        assert_eq!(r["after_action"], "bridge");
        assert_eq!(r["after_params"]["number"], "sofia/gateway/agents/8001");
        let r = serde_json::to_value(reply_for(&Action::ResumePlayback, &script, &opts, false)).unwrap();
        assert_eq!(r["params"]["command"], "resume");
    }

    #[test]
    fn playback_result_is_silence() {
        let script = Arc::new(Script::from_json(SAMPLE_SCRIPT).unwrap());
        let mut d = Dialogue::new(script, HashMap::new());
        d.handle(Input::Enter);
        let Action::Play { utterance_id, .. } = drive(&mut d, vec![Input::PlaybackDone, Input::WaitTimeout]) else {
            panic!("silence handler plays")
        };
        assert_eq!(utterance_id, "u-no-speech");
        assert_eq!(d.details().last().unwrap().notify, "playback_result");
    }
}
