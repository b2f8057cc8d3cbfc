//! The per-call actor: originate, follow the channel's events, run the
//! dialogue once the robot extension has parked the answered call, and hand
//! the result to the finalizer after CHANNEL_HANGUP_COMPLETE.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;
use voxdial_esl::{CallEventsEnd, EslClient, Event};

use crate::dialogue::{Action, Detail, Dialogue, Input, Prompt, RobotAudio, Script, Summary};
use crate::finalize::recordings::{customer_sentence_path, SentenceAudio};
use crate::finalize::status::HangupFacts;
use crate::finalize::CallResult;

/// What the call actor needs to know about the attempt.
#[derive(Debug, Clone)]
pub struct CallPlan {
    pub uuid: String,
    pub originate: String,
    pub number: String,
    pub number_id: i64,
    pub attempt: i64,
    pub task_id: String,
    pub user_id: String,
    pub group_id: i64,
    pub recycle_limit: i64,
    pub caller_number: String,
    pub vars: HashMap<String, String>,
    pub audio_root: String,
    pub tts_prefix: String,
    /// Give up waiting for the hangup this long after the originate.
    pub max_call: Duration,
    /// `Event-Subclass` of the ASR module's CUSTOM events.
    pub asr_subclass: String,
    /// How each customer sentence's audio is obtained.
    pub sentence_audio: SentenceAudio,
    /// Where `uuid_record` puts the sentences (`<root>/<date>/<callid>`).
    pub sentence_dir: String,
    /// The final-result header naming the sentence file (`Header` mode).
    pub asr_record_header: String,
}

/// What a smartivr robot module's conversation left at `leave`.
#[derive(Debug)]
pub struct ModuleTranscript {
    pub summary: Summary,
    pub details: Vec<Detail>,
}

/// How long the call actor waits after the hangup for the `leave` of a
/// module that entered the flow (the module posts it as the channel ends).
const LEAVE_GRACE: Duration = Duration::from_secs(10);

/// A call placed by this process whose conversation a smartivr module may
/// run over `POST /smartivr` (the robot extension answers it, not a park).
#[derive(Debug)]
struct ModuleSlot {
    /// The module posted `enter` for this call id.
    entered: bool,
    transcript: Option<oneshot::Sender<Box<ModuleTranscript>>>,
    /// Resolved once the actor's result (with the transcript) is durable.
    committed: Option<oneshot::Sender<()>>,
}

/// The calls this process's dialer placed, by uuid, shared between the
/// dialer's call actors and the smartivr endpoint: both halves of a module
/// call meet here — the transcript at `leave`, the channel's hangup in the
/// actor — so the call is finalized once, by its actor, with both. The
/// daemon builds one and hands clones to the dialer and the endpoint; a
/// fresh one (as in an endpoint with no dialer) never matches a call.
#[derive(Debug, Clone, Default)]
pub struct ModuleCalls {
    slots: Arc<Mutex<HashMap<String, ModuleSlot>>>,
}

impl ModuleCalls {
    fn slots(&self) -> std::sync::MutexGuard<'_, HashMap<String, ModuleSlot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The smartivr endpoint saw `enter` for `callid`: `true` when this
    /// process's dialer placed the call, whose actor then finalizes it with
    /// the transcript [`ModuleCalls::hand_over`] delivers.
    pub fn entered(&self, callid: &str) -> bool {
        match self.slots().get_mut(callid) {
            Some(s) if s.transcript.is_some() => {
                s.entered = true;
                true
            }
            _ => false,
        }
    }

    /// Give a dialer-placed call's transcript to its actor. `Ok`: the actor
    /// finalizes it; the receiver resolves once that is durable (an error:
    /// it was not, keep the journal). `Err`: no actor waits for it (not
    /// placed here, or it gave up waiting); the caller finalizes it itself.
    pub fn hand_over(
        &self,
        callid: &str,
        t: Box<ModuleTranscript>,
    ) -> Result<oneshot::Receiver<()>, Box<ModuleTranscript>> {
        let mut calls = self.slots();
        let Some(slot) = calls.get_mut(callid) else { return Err(t) };
        let Some(tx) = slot.transcript.take() else { return Err(t) };
        tx.send(t)?;
        let (ctx, crx) = oneshot::channel();
        slot.committed = Some(ctx);
        Ok(crx)
    }

    /// The call's result was finalized (`ok`: durably): release its slot.
    pub fn settled(&self, uuid: &str, ok: bool) {
        if let Some(ctx) = self.slots().remove(uuid).and_then(|s| s.committed) {
            if ok {
                let _ = ctx.send(());
            }
        }
    }

    fn place(&self, uuid: &str) -> oneshot::Receiver<Box<ModuleTranscript>> {
        let (tx, rx) = oneshot::channel();
        self.slots().insert(uuid.to_string(), ModuleSlot { entered: false, transcript: Some(tx), committed: None });
        rx
    }

    fn forget(&self, uuid: &str) {
        self.slots().remove(uuid);
    }
}

/// After the hangup: the module's transcript, waiting up to [`LEAVE_GRACE`]
/// when a module entered the flow and has not left yet.
async fn module_transcript(
    calls: &ModuleCalls,
    uuid: &str,
    mut rx: oneshot::Receiver<Box<ModuleTranscript>>,
) -> Option<Box<ModuleTranscript>> {
    if let Ok(t) = rx.try_recv() {
        return Some(t);
    }
    let entered = {
        let mut slots = calls.slots();
        let entered = slots.get(uuid).is_some_and(|s| s.entered);
        if !entered {
            slots.remove(uuid);
        }
        entered
    };
    if !entered {
        return None;
    }
    match tokio::time::timeout(LEAVE_GRACE, &mut rx).await {
        Ok(Ok(t)) => Some(t),
        _ => {
            rx.close();
            // A transcript sent between the timeout and the close still counts.
            let t = rx.try_recv().ok();
            if t.is_none() {
                calls.forget(uuid);
                tracing::warn!(uuid, "smartivr module entered but sent no leave within {LEAVE_GRACE:?}; finalizing without its transcript");
            }
            t
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Text of a DETECTED_SPEECH / ASR CUSTOM event: NLSML `<input>`, JSON
/// `payload.result` / `text`, or the plain body.
pub fn speech_text(ev: &Event) -> Option<String> {
    if let Some(t) = ev.header("ASR-Text").or_else(|| ev.header("Detect-Speech-Result")) {
        return Some(t.trim().to_string());
    }
    let body = ev.body_text().map(|b| b.into_owned()).or_else(|| ev.header("ASR-Response").map(|s| s.into_owned()))?;
    let b = body.trim();
    if b.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(b).ok()?;
        return v
            .pointer("/payload/result")
            .or_else(|| v.get("text"))
            .and_then(|t| t.as_str())
            .map(|s| s.trim().trim_end_matches('。').to_string());
    }
    if b.contains("<input") {
        let start = b.find("<input")?;
        let open_end = b[start..].find('>')? + start + 1;
        let close = b[open_end..].find("</input>")? + open_end;
        let inner = &b[open_end..close];
        if inner.contains("<noinput") || inner.contains("<nomatch") {
            return None;
        }
        return Some(inner.trim().to_string());
    }
    (!b.is_empty()).then(|| b.to_string())
}

/// Build the FreeSWITCH playback string for prompts.
fn playback_path(prompts: &[Prompt], audio_root: &str, tts_prefix: &str) -> String {
    let items: Vec<String> = prompts
        .iter()
        .map(|p| match &p.file_id {
            Some(f) => format!("{audio_root}/{f}.wav"),
            // uuid_broadcast splits on spaces; TTS text keeps its meaning
            // with an ideographic space instead.
            None => format!("{tts_prefix}{}", p.text.replace(' ', "\u{3000}")),
        })
        .collect();
    if items.len() == 1 {
        items.into_iter().next().unwrap_or_default()
    } else {
        format!("file_string://{}", items.join("!"))
    }
}

/// `uuid_transfer` for a transfer destination: a dial string is bridged
/// inline, an extension goes through the XML dialplan (`8001` or
/// `8001 XML agents`), and no destination parks the call.
pub fn transfer_command(uuid: &str, destination: &str) -> String {
    let d = destination.trim();
    if d.is_empty() {
        format!("uuid_transfer {uuid} -both park inline")
    } else if crate::dialogue::smartivr::is_dial_string(d) && !d.contains(' ') {
        format!("uuid_transfer {uuid} 'bridge:{d}' inline")
    } else if d.contains(' ') {
        format!("uuid_transfer {uuid} {d}")
    } else {
        format!("uuid_transfer {uuid} {d} XML default")
    }
}

/// Run one attempt to completion.
pub async fn run(esl: EslClient, script: Arc<Script>, plan: CallPlan, calls: &ModuleCalls) -> CallResult {
    let originated_ms = now_ms();
    let mut result = CallResult {
        uuid: plan.uuid.clone(),
        task_id: plan.task_id.clone(),
        user_id: plan.user_id.clone(),
        group_id: plan.group_id,
        recycle_limit: plan.recycle_limit,
        number_id: plan.number_id,
        number: plan.number.clone(),
        attempt: plan.attempt,
        caller_number: plan.caller_number.clone(),
        originated_ms,
        ..CallResult::default()
    };
    // Subscribe before the originate so no event of this uuid is missed.
    let mut events = esl.subscribe_call(&plan.uuid);
    let module = calls.place(&plan.uuid);
    let job = match esl.bgapi(&format!("originate {}", plan.originate)).await {
        Ok(j) => j,
        Err(e) => {
            tracing::warn!(uuid = %plan.uuid, number = %crate::logging::mask_number(&plan.number), "originate not sent: {e}");
            calls.forget(&plan.uuid);
            result.facts.originate_error = Some("DESTINATION_OUT_OF_ORDER".into());
            result.hangup_ms = now_ms();
            return result;
        }
    };
    let mut job = Box::pin(job.result());
    let mut job_done = false;
    let mut saw_channel = false;
    let mut answered = false;
    let mut dialogue: Option<Dialogue> = None;
    let mut listen_until: Option<Instant> = None;
    let mut refused_at: Option<Instant> = None;
    let deadline = Instant::now() + plan.max_call;
    let mut speaking = false;
    // The open per-sentence recording, and how many were started.
    let mut sentence: Option<String> = None;
    let mut sentences = 0u32;
    let record_sentences = plan.sentence_audio == SentenceAudio::UuidRecord && !plan.sentence_dir.is_empty();

    loop {
        let timer = [listen_until, refused_at, Some(deadline)].into_iter().flatten().min().unwrap_or(deadline);
        tokio::select! {
            r = &mut job, if !job_done => {
                job_done = true;
                match r {
                    Ok(body) => {
                        if let Some(cause) = HangupFacts::originate_error_of(&body) {
                            result.facts.originate_error = Some(cause);
                            // Refused before any channel existed (gateway down,
                            // session limit): no events will follow.
                            if !saw_channel {
                                refused_at = Some(Instant::now() + Duration::from_millis(300));
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!(uuid = %plan.uuid, "originate result lost: {e}");
                    }
                }
            }
            ev = events.recv() => {
                let ev = match ev {
                    Ok(ev) => ev,
                    Err(end) => {
                        // The connection dropped or we fell behind: ask
                        // FreeSWITCH whether the call still exists.
                        tracing::warn!(uuid = %plan.uuid, ?end, "call events ended before hangup");
                        if end == CallEventsEnd::Lagged {
                            let _ = esl.api(&format!("uuid_kill {}", plan.uuid)).await;
                        }
                        result.facts.originate_error.get_or_insert_with(|| "DESTINATION_OUT_OF_ORDER".into());
                        break;
                    }
                };
                saw_channel = true;
                // Events queued to a session (ASR modules, sendevent with a
                // Unique-ID) carry Event-Subclass but no Event-Name.
                let name = ev
                    .name()
                    .map(|n| n.into_owned())
                    .or_else(|| ev.subclass().map(|_| "CUSTOM".to_string()))
                    .unwrap_or_default();
                match name.as_str() {
                    "CHANNEL_ANSWER" => {
                        answered = true;
                        result.answered_ms = Some(now_ms());
                    }
                    "CHANNEL_PARK" if answered && dialogue.is_none() => {
                        let audio = RobotAudio { root: plan.audio_root.clone(), templated_as_tts: false };
                        let mut d = Dialogue::new(script.clone(), plan.vars.clone()).with_robot_audio(audio);
                        let a = d.handle(Input::Enter);
                        dialogue = Some(d);
                        perform(&esl, &plan, a, &mut listen_until).await;
                        if record_sentences {
                            // Sentence recordings hold the caller only; the call's
                            // own recording already started with both sides.
                            command(&esl, &plan, format!("uuid_setvar {} RECORD_READ_ONLY true", plan.uuid)).await;
                        }
                    }
                    "RECORD_START" | "RECORD_STOP" => {
                        if let Some(p) = ev.header("Record-File-Path") {
                            if !(record_sentences && p.starts_with(plan.sentence_dir.as_str())) {
                                result.record_file = Some(p.into_owned());
                            }
                        }
                    }
                    "PLAYBACK_START" => {
                        if let Some(d) = dialogue.as_mut() {
                            d.playback_started();
                        }
                    }
                    "PLAYBACK_STOP" => {
                        if let Some(d) = dialogue.as_mut() {
                            // Ended under the callee's speech: the answer to it
                            // decides, not the listening window.
                            let input = if speaking { Input::PlaybackStopped } else { Input::PlaybackDone };
                            let a = d.handle(input);
                            perform(&esl, &plan, a, &mut listen_until).await;
                        }
                    }
                    "DTMF" => {
                        if let (Some(d), Some(digit)) = (dialogue.as_mut(), ev.header("DTMF-Digit")) {
                            listen_until = None;
                            let a = d.handle(Input::Dtmf { digits: digit.into_owned() });
                            perform(&esl, &plan, a, &mut listen_until).await;
                        }
                    }
                    "CHANNEL_BRIDGE" => {
                        if let Some(d) = dialogue.as_mut().filter(|d| d.is_bridged()) {
                            d.handle(Input::BridgeResult { ok: true, cause: None });
                        }
                    }
                    "CUSTOM" if ev.subclass().as_deref() != Some(plan.asr_subclass.as_str()) => {}
                    "DETECTED_SPEECH" | "CUSTOM" => {
                        let kind = ev.header("Speech-Type").map(|s| s.into_owned()).unwrap_or_else(|| "detected-speech".into());
                        match (kind.as_str(), dialogue.as_mut()) {
                            ("begin-speaking", Some(d)) => {
                                speaking = true;
                                listen_until = None;
                                let a = d.handle(Input::SpeechStarted);
                                perform(&esl, &plan, a, &mut listen_until).await;
                                if record_sentences && sentence.is_none() {
                                    sentences += 1;
                                    let path = customer_sentence_path(&plan.sentence_dir, sentences);
                                    command(&esl, &plan, format!("uuid_record {} start {path}", plan.uuid)).await;
                                    sentence = Some(path);
                                }
                            }
                            // An ASR module's partial result (CUSTOM mapping).
                            ("progress" | "partial" | "detected-partial-speech", Some(d)) => {
                                if let Some(text) = speech_text(&ev) {
                                    let a = d.handle(Input::AsrProgress { text });
                                    perform(&esl, &plan, a, &mut listen_until).await;
                                }
                            }
                            ("detected-speech", Some(d)) => {
                                speaking = false;
                                listen_until = None;
                                let voice = match plan.sentence_audio {
                                    SentenceAudio::UuidRecord => sentence.take(),
                                    SentenceAudio::Header => ev.header(&plan.asr_record_header).map(|h| h.into_owned()),
                                    SentenceAudio::Off => None,
                                };
                                if let Some(text) = speech_text(&ev) {
                                    let a = d.handle(Input::AsrMessage { text, speak_ms: 0, asr_elapse: None, gender: None });
                                    if let Some(v) = &voice {
                                        d.set_customer_voice(v);
                                    }
                                    perform(&esl, &plan, a, &mut listen_until).await;
                                }
                                // Stopped after the answer went out: the decision
                                // does not wait for this round trip.
                                if let Some(path) = voice.filter(|_| record_sentences) {
                                    command(&esl, &plan, format!("uuid_record {} stop {path}", plan.uuid)).await;
                                }
                            }
                            ("detected-speech", None) if !answered => {
                                // Early media: the carrier's announcement.
                                if let Some(text) = speech_text(&ev) {
                                    result.facts.announcement_text = Some(text);
                                }
                            }
                            _ => {}
                        }
                    }
                    "CHANNEL_HANGUP" => {
                        listen_until = None;
                        if let Some(d) = dialogue.as_mut() {
                            d.handle(Input::Leave);
                        }
                    }
                    "CHANNEL_HANGUP_COMPLETE" => {
                        let announcement = result.facts.announcement_text.take();
                        let orig = result.facts.originate_error.take();
                        result.facts = HangupFacts::from_event(&ev);
                        result.facts.announcement_text = announcement;
                        result.facts.originate_error = orig;
                        result.hangup_ms = now_ms();
                        break;
                    }
                    _ => {}
                }
            }
            _ = tokio::time::sleep_until(timer) => {
                let now = Instant::now();
                if refused_at.is_some_and(|t| now >= t) {
                    break;
                }
                if now >= deadline {
                    tracing::warn!(uuid = %plan.uuid, number = %crate::logging::mask_number(&plan.number), "no hangup within {:?}; killing", plan.max_call);
                    let _ = esl.api(&format!("uuid_kill {}", plan.uuid)).await;
                    listen_until = None;
                    refused_at = Some(now + Duration::from_secs(5));
                    continue;
                }
                if listen_until.is_some_and(|t| now >= t) {
                    listen_until = None;
                    if let Some(d) = dialogue.as_mut() {
                        let a = d.handle(Input::WaitTimeout);
                        perform(&esl, &plan, a, &mut listen_until).await;
                    }
                }
            }
        }
    }
    if result.hangup_ms == 0 {
        result.hangup_ms = now_ms();
    }
    if let Some(d) = dialogue {
        let summary = d.summary();
        let mut d = d;
        result.dialogue = Some((summary, d.take_details()));
    }
    if let Some(t) = module_transcript(calls, &plan.uuid, module).await {
        if result.dialogue.as_ref().is_some_and(|(_, d)| !d.is_empty()) {
            tracing::warn!(uuid = %plan.uuid, "call ran both an ESL dialogue and a smartivr module; keeping the ESL transcript");
        } else {
            result.dialogue = Some((t.summary, t.details));
        }
    }
    result
}

/// Send one API command whose answer changes nothing but a log line.
async fn command(esl: &EslClient, plan: &CallPlan, cmd: String) {
    match esl.api(&cmd).await {
        Ok(r) if r.starts_with("-ERR") || r.starts_with("-USAGE") => {
            tracing::debug!(uuid = %plan.uuid, "FreeSWITCH answered {}", r.trim())
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(uuid = %plan.uuid, "ESL command failed: {e}"),
    }
}

/// Carry out a dialogue action over ESL.
async fn perform(esl: &EslClient, plan: &CallPlan, action: Action, listen_until: &mut Option<Instant>) {
    let res = match action {
        Action::Play { prompts, .. } => {
            let path = playback_path(&prompts, &plan.audio_root, &plan.tts_prefix);
            esl.api(&format!("uuid_broadcast {} {} aleg", plan.uuid, path)).await
        }
        Action::StopPlayback => esl.api(&format!("uuid_break {} all", plan.uuid)).await,
        // `uuid_fileman … pause` toggles: the same command pauses and resumes.
        Action::PausePlayback | Action::ResumePlayback => esl.api(&format!("uuid_fileman {} pause", plan.uuid)).await,
        Action::Hangup => esl.api(&format!("uuid_kill {}", plan.uuid)).await,
        Action::Transfer { destination } => esl.api(&transfer_command(&plan.uuid, &destination)).await,
        Action::Listen { ms } => {
            *listen_until = Some(Instant::now() + Duration::from_millis(ms.max(0) as u64));
            return;
        }
        Action::Noop => return,
    };
    match res {
        Ok(r) if r.starts_with("-ERR") => tracing::debug!(uuid = %plan.uuid, "FreeSWITCH answered {}", r.trim()),
        Ok(_) => {}
        Err(e) => tracing::warn!(uuid = %plan.uuid, "ESL command failed: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playback_strings() {
        let p = |f: Option<&str>, t: &str| Prompt { file_id: f.map(str::to_string), text: t.into(), seconds: None };
        assert_eq!(playback_path(&[p(Some("a"), "x")], "/audio", "speak:"), "/audio/a.wav");
        assert_eq!(
            playback_path(&[p(Some("a"), "x"), p(None, "hi there")], "/audio", "speak:t|v|"),
            "file_string:///audio/a.wav!speak:t|v|hi\u{3000}there"
        );
    }

    #[test]
    fn transfer_commands() {
        assert_eq!(transfer_command("u1", ""), "uuid_transfer u1 -both park inline");
        assert_eq!(transfer_command("u1", "8001"), "uuid_transfer u1 8001 XML default");
        assert_eq!(transfer_command("u1", "8001 XML agents"), "uuid_transfer u1 8001 XML agents");
        assert_eq!(transfer_command("u1", "user/8001"), "uuid_transfer u1 'bridge:user/8001' inline");
    }
}
