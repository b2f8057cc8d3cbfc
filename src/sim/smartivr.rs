//! The simulator as the mod_smartivr robot module: for an answered call it
//! POSTs `enter`, `asrprogress_notify`, `asrmessage_notify`,
//! `playback_result`, `bridge_result` and `leave` to the flow URL with the
//! persona's speech, follows the returned actions (prompt durations,
//! automatic barge-in per `pause_play_ms` / `allow_interrupt`,
//! `console_playback`, `hangup`, `transfer` / `bridge`) and hangs the channel
//! up at the end. See `shared/protocols/smartivr.md`.
//!
//! In this mode the simulator does not park the call in a robot extension:
//! the module owns the conversation, an ESL client only sees answer and
//! hangup.

use std::time::Duration;

use serde_json::{json, Value};
use tokio::time::Instant;

use super::fate::{self, Persona};
use super::wire::{Hangup, Phase};
use super::{lock, ChanCmd, SimCall};

/// What the module is doing with the prompt.
struct Prompt {
    /// When it ends (or, paused, how much is left).
    ends: Instant,
    paused_left: Option<Duration>,
    /// Listening window after it.
    wait: Duration,
    /// 0 = automatic barge-in; -1 = none.
    allow_interrupt: i64,
    /// Queued after it: `hangup`, or nothing.
    then_hangup: bool,
    deaf: bool,
}

/// The module's state for one call.
struct Module {
    url: String,
    client: reqwest::Client,
    callid: String,
    number: String,
    flowid: String,
    caller: String,
    /// `pause_play_ms` from `start_asr`.
    pause_play_ms: i64,
    /// `recordpath` from `start_asr`: where segment recordings go.
    recordpath: String,
    /// Segments recorded so far.
    segments: u32,
    asr_on: bool,
    started: Instant,
}

/// Why the module's call ended.
enum End {
    /// The flow hung up (`hangup` action or after the closing prompt).
    Robot,
    /// The callee hung up.
    Customer,
    /// Killed over ESL.
    Killed(String),
    /// The flow server failed.
    Error,
}

impl Module {
    fn base(&self, notify: &str) -> Value {
        json!({
            "notify": notify,
            "callid": self.callid,
            "callerid": self.number,
            "calleeid": self.flowid,
            "origcallerid": self.caller,
            "flowid": self.flowid,
            "flowdata": null,
            "errorcode": 0,
        })
    }

    async fn post(&self, body: Value) -> Option<Value> {
        let r = self.client.post(&self.url).json(&body).send().await;
        match r {
            Ok(resp) => resp.json::<Value>().await.ok(),
            Err(e) => {
                tracing::warn!(callid = %self.callid, "sim smartivr: POST failed: {e}");
                None
            }
        }
    }
}

/// How long the module takes to play `prompt` items, before time scaling.
fn prompt_ms(seed: u64, items: &Value) -> u64 {
    let items: Vec<&str> = match items {
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        Value::String(s) => vec![s.as_str()],
        _ => vec![],
    };
    items
        .iter()
        .map(
            |it| {
                if it.ends_with(".wav") {
                    1500 + fate::hash(seed, it) % 2500
                } else {
                    it.chars().count() as u64 * 180
                }
            },
        )
        .sum::<u64>()
        .max(300)
}

impl SimCall {
    /// Converse as the robot module would, against the flow at `url`.
    pub(super) async fn converse_smartivr(&mut self, persona: Persona, url: &str) {
        let m = Module {
            url: url.to_string(),
            client: reqwest::Client::new(),
            callid: self.ch.uuid.clone(),
            number: self.ch.dialed.clone(),
            flowid: self.ch.var("voxdial_task").or_else(|| self.ch.var("flowid")).unwrap_or_default().to_string(),
            caller: self.ch.caller_id_number.clone(),
            pause_play_ms: 0,
            recordpath: String::new(),
            segments: 0,
            asr_on: false,
            started: Instant::now(),
        };
        let end = self.module_loop(m, persona).await;
        match end {
            End::Killed(cause) => self.killed(&cause),
            End::Robot | End::Error => self.hang(false),
            End::Customer => self.hang(true),
        }
    }

    /// The module records each speech segment as `<callid>_<i>.wav` in
    /// `recordpath` (its default: the call's directory of
    /// `recordings-layout.md`), written when `write_audio` is on.
    fn segment_recording(&self, m: &mut Module, chars: usize) -> String {
        m.segments += 1;
        let dir = if m.recordpath.is_empty() {
            let day = chrono::Local::now().format("%Y-%m-%d");
            format!("{}/{day}/{}", self.st.cfg.recordings_root.trim_end_matches('/'), m.callid)
        } else {
            m.recordpath.trim_end_matches('/').to_string()
        };
        let path = format!("{dir}/{}_{}.wav", m.callid, m.segments);
        if self.st.cfg.write_audio {
            let len = self.st.scaled(chars as u64 * 200 + 300);
            if let Err(e) = super::write_wav(std::path::Path::new(&path), len) {
                tracing::debug!(path, "simulated segment recording not written: {e}");
            }
        }
        path
    }

    fn hang(&mut self, customer: bool) {
        let h = Hangup {
            cause: "NORMAL_CLEARING".into(),
            q850: 16,
            sip_term_status: Some(200),
            sip_invite_failure: None,
            disposition: if customer { "recv_bye" } else { "send_bye" }.into(),
        };
        self.finish(h, None, false);
    }

    async fn module_loop(&mut self, mut m: Module, persona: Persona) -> End {
        let lines = persona.lines();
        let mut turn = 0usize;
        let mut prompt: Option<Prompt> = None;
        // Listening window end after the prompt.
        let mut wait_until: Option<Instant> = None;
        let mut speak_at: Option<Instant> = None;
        let mut partial_at: Option<Instant> = None;
        let mut final_at: Option<(Instant, u64)> = None;
        let mut hangup_at: Option<Instant> = None;
        let mut prompts_heard = 0usize;
        let give_up = Instant::now() + self.st.scaled(120_000).max(Duration::from_secs(20));
        let mut reply = m.post(m.base("enter")).await;
        let end = loop {
            // Carry out the reply (and its after_action).
            if let Some(r) = reply.take() {
                let mut steps =
                    vec![(r.get("action").cloned(), r.get("params").cloned(), r.get("suspend_asr").cloned())];
                if let Some(a) = r.get("after_action").filter(|a| !a.is_null()) {
                    steps.push((Some(a.clone()), r.get("after_params").cloned(), None));
                }
                let mut transfer = false;
                for (i, (action, params, suspend)) in steps.into_iter().enumerate() {
                    let params = params.unwrap_or(Value::Null);
                    match action.as_ref().and_then(Value::as_str).unwrap_or("noop") {
                        "start_asr" => {
                            m.asr_on = true;
                            m.pause_play_ms = params.get("pause_play_ms").and_then(Value::as_i64).unwrap_or(0);
                            m.recordpath =
                                params.get("recordpath").and_then(Value::as_str).unwrap_or_default().to_string();
                        }
                        "stop_asr" => m.asr_on = false,
                        "playback" => {
                            let ms = prompt_ms(self.st.cfg.seed, params.get("prompt").unwrap_or(&Value::Null));
                            let dur = self.st.scaled(ms);
                            let now = Instant::now();
                            prompts_heard += 1;
                            prompt = Some(Prompt {
                                ends: now + dur,
                                paused_left: None,
                                wait: self.st.scaled(params.get("wait").and_then(Value::as_u64).unwrap_or(0)),
                                allow_interrupt: params.get("allow_interrupt").and_then(Value::as_i64).unwrap_or(0),
                                then_hangup: false,
                                deaf: suspend.as_ref().and_then(Value::as_bool).unwrap_or(false),
                            });
                            wait_until = None;
                            // Who talks when: after the prompt, or over it.
                            if turn < lines.len() && speak_at.is_none() && final_at.is_none() {
                                speak_at = Some(match persona {
                                    Persona::Interrupter => now + dur.mul_f64(0.3),
                                    _ => now + dur + self.st.scaled(self.jitter(400, 1200)),
                                });
                            }
                            if persona == Persona::HangsUp
                                && turn >= lines.len()
                                && hangup_at.is_none()
                                && prompts_heard >= 2
                            {
                                hangup_at = Some(now + dur.mul_f64(0.4));
                            }
                        }
                        "console_playback" => match params.get("command").and_then(Value::as_str) {
                            Some("pause") => {
                                if let Some(p) = prompt.as_mut().filter(|p| p.paused_left.is_none()) {
                                    p.paused_left = Some(p.ends.saturating_duration_since(Instant::now()));
                                }
                            }
                            Some("resume") => {
                                if let Some(p) = prompt.as_mut() {
                                    if let Some(left) = p.paused_left.take() {
                                        p.ends = Instant::now() + left;
                                    }
                                }
                            }
                            _ => {}
                        },
                        "hangup" if i == 0 => break,
                        "hangup" => {
                            // After the prompt of step 0.
                            if let Some(p) = prompt.as_mut() {
                                p.then_hangup = true;
                            }
                        }
                        "transfer" | "bridge" => transfer = true,
                        _ => {}
                    }
                }
                if matches!(r.get("action").and_then(Value::as_str), Some("hangup")) {
                    break End::Robot;
                }
                if transfer {
                    // The agent answers; they talk; the callee hangs up.
                    self.emit(Phase::TransferPark);
                    let mut n = m.base("bridge_result");
                    n["message"] = json!("SUCCESS");
                    m.post(n).await;
                    if let Some(ChanCmd::Kill(c)) = self.wait(self.st.scaled(3000)).await {
                        break End::Killed(c);
                    }
                    break End::Customer;
                }
            }
            let next = [
                prompt.as_ref().filter(|p| p.paused_left.is_none()).map(|p| p.ends),
                wait_until,
                speak_at,
                partial_at,
                final_at.map(|f| f.0),
                hangup_at,
                Some(give_up),
            ]
            .into_iter()
            .flatten()
            .min()
            .unwrap_or(give_up);
            let cmd = tokio::select! {
                c = self.rx.recv() => Some(c),
                _ = tokio::time::sleep_until(next) => None,
            };
            match cmd {
                Some(None) => break End::Error,
                Some(Some(ChanCmd::Kill(c))) => break End::Killed(c),
                Some(Some(ChanCmd::SetVar(k, v))) => {
                    self.ch.set_var(&k, &v);
                    *lock(&self.info) = self.ch.clone();
                    continue;
                }
                Some(Some(_)) => continue,
                None => {}
            }
            let now = Instant::now();
            if now >= give_up || hangup_at.is_some_and(|t| now >= t) {
                break End::Customer;
            }
            if let Some(p) = prompt.as_ref().filter(|p| p.paused_left.is_none() && now >= p.ends) {
                let (then_hangup, wait) = (p.then_hangup, p.wait);
                prompt = None;
                if then_hangup {
                    break End::Robot;
                }
                wait_until = Some(now + wait);
            }
            if speak_at.is_some_and(|t| now >= t) {
                speak_at = None;
                if let Some(text) = lines.get(turn) {
                    let speak = text.chars().count() as u64 * 200 + 300;
                    partial_at = Some(now + self.st.scaled(speak / 2));
                    final_at = Some((now + self.st.scaled(speak), speak));
                    wait_until = None;
                    // Automatic barge-in: the module pauses the prompt after
                    // pause_play_ms of speech when the prompt allows it.
                    if let Some(p) = prompt.as_mut() {
                        if m.pause_play_ms > 0 && p.allow_interrupt == 0 && !p.deaf && p.paused_left.is_none() {
                            p.paused_left = Some(p.ends.saturating_duration_since(now));
                        }
                    }
                }
            }
            let deaf = prompt.as_ref().is_some_and(|p| p.deaf) || !m.asr_on;
            if partial_at.is_some_and(|t| now >= t) {
                partial_at = None;
                if let Some(text) = lines.get(turn).filter(|_| !deaf) {
                    let half: String = text.chars().take(text.chars().count().div_ceil(2)).collect();
                    let mut n = m.base("asrprogress_notify");
                    n["message"] = json!(half);
                    n["asrtextall"] = json!(format!("1.{half};"));
                    n["asrelapse"] = json!(120);
                    n["recordfile"] = json!(self.segment_recording(&mut m, half.chars().count()));
                    reply = m.post(n).await;
                    if reply.is_none() {
                        break End::Error;
                    }
                    continue;
                }
            }
            if final_at.is_some_and(|f| now >= f.0) {
                if let Some((_, speak)) = final_at.take() {
                    let text = lines.get(turn).copied().unwrap_or_default();
                    turn += 1;
                    if deaf {
                        continue;
                    }
                    let mut n = m.base("asrmessage_notify");
                    n["message"] = json!(format!("1.{text};"));
                    n["speakms"] = json!(speak.to_string());
                    n["asrelapse"] = json!(300);
                    n["playstate"] = json!(prompt.is_some());
                    n["gender"] = json!(1 + (fate::hash(self.st.cfg.seed, &m.number) % 2));
                    reply = m.post(n).await;
                    if reply.is_none() {
                        break End::Error;
                    }
                    continue;
                }
            }
            if wait_until.is_some_and(|t| now >= t) && prompt.is_none() {
                wait_until = None;
                let mut n = m.base("playback_result");
                n["message"] = json!("FILE PLAYED");
                n["asrstate"] = json!(final_at.is_some());
                n["hangup"] = json!(false);
                reply = m.post(n).await;
                if reply.is_none() {
                    break End::Error;
                }
            }
        };
        let mut n = m.base("leave");
        n["duration"] = json!(m.started.elapsed().as_secs());
        n["hangup_disposition"] = json!(if matches!(end, End::Customer) { "recv_bye" } else { "send_bye" });
        n["hangup_cause"] = json!("NORMAL_CLEARING");
        m.post(n).await;
        end
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_durations() {
        assert_eq!(prompt_ms(1, &json!("您好")), 360);
        assert_eq!(prompt_ms(1, &json!(["好"])), 300, "at least 300 ms");
        let f = prompt_ms(1, &json!(["/a/x.wav"]));
        assert!((1500..4000).contains(&f));
    }
}
