//! The conversation state machine of one call. Pure and synchronous: it takes
//! normalized events and returns what to do, recording every turn the way the
//! seeds' `records[]` rows do. Transports (ESL, smartivr HTTP) only translate.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::script::{Script, Utterance, MAIN_FLOW};

/// A normalized event from either recognition transport.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The call was answered and entered the flow.
    Enter,
    /// Speech started (barge-in point).
    SpeechStarted,
    /// A partial recognition result.
    AsrProgress { text: String },
    /// A final recognition result for one customer utterance.
    AsrMessage { text: String, speak_ms: i64, asr_elapse: Option<i64>, gender: Option<i64> },
    /// The prompt finished playing; its listening window starts now.
    PlaybackDone,
    /// The prompt is no longer playing, but no listening window starts here
    /// (the transport saw it end while the callee was speaking). Records
    /// nothing and always answers `Noop`.
    PlaybackStopped,
    /// The listening window after a prompt ran out with no speech.
    WaitTimeout,
    /// Keypad digits; matched against branch keywords like speech ("1").
    Dtmf { digits: String },
    /// A transfer / bridge to an agent ended or failed.
    BridgeResult { ok: bool, cause: Option<String> },
    /// The call left the flow (hangup).
    Leave,
}

/// One thing to play: an audio file or TTS text.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prompt {
    pub file_id: Option<String>,
    pub text: String,
    pub seconds: Option<f64>,
}

/// What the transport must do next.
///
/// Barge-in: a prompt is interruptible unless it hangs up or transfers
/// after playing or has `block_asr < 0`. On an interruptible prompt,
/// `SpeechStarted` answers `StopPlayback`; when the utterance has
/// `allow_keyword_interrupt`, speech alone does not stop it: a partial
/// result (`AsrProgress`) that matches a branch, knowledge-base, repeat or
/// refusal keyword answers `PausePlayback`, and the final result then
/// answers a new `Play`, or `ResumePlayback` when it matched nothing
/// specific (the prompt goes on as if never interrupted).
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    Play {
        utterance_id: String,
        prompts: Vec<Prompt>,
        /// ms to keep listening after the prompt.
        wait_ms: i64,
        /// Speech may interrupt this prompt.
        interruptible: bool,
        /// Hang up once it has played.
        hangup_after: bool,
    },
    /// Stop the current prompt (barge-in).
    StopPlayback,
    /// Pause the current prompt (keyword barge-in, a decision is pending).
    PausePlayback,
    /// Resume the paused prompt (what was said needs no new prompt).
    ResumePlayback,
    /// Start the listening window of `ms`.
    Listen {
        ms: i64,
    },
    Hangup,
    /// Hand the call to an agent: an extension / agent group, or a dial
    /// string for a bridge. Empty: the transport's configured default.
    Transfer {
        destination: String,
    },
    Noop,
}

/// One row of the call's transcript, as seed 000/001 `records[]`. The one
/// transcript row type: the smartivr journal stores it as is, and the
/// finalizer writes it through `From<&Detail> for DetailWrite` below.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Detail {
    #[serde(deserialize_with = "notify_name")]
    pub notify: NotifyName,
    pub question: String,
    pub question_index: i64,
    pub speak_ms: i64,
    pub play_ms: i64,
    pub keyword: Option<String>,
    pub answer_id: Option<String>,
    pub answer_text: Option<String>,
    pub answer_content: Option<String>,
    pub word_class: Option<String>,
    pub answer_action: Option<String>,
    pub score: i64,
    pub sequence: i64,
    pub asr_elapse: Option<i64>,
    pub gender: Option<i64>,
    pub tags: Vec<String>,
    /// Event received (recognition end) → decision made, in microseconds.
    pub decision_us: Option<i64>,
    /// Wall-clock time of the row, ms since the epoch.
    pub at_ms: i64,
    /// 1 on rows after the call was transferred to an agent (seed
    /// `bridge_status`; `getUsableRecords` keeps them apart).
    pub bridge_status: Option<i64>,
    /// Decision → the prompt it chose started playing, in microseconds, when
    /// the transport observes playback start ([`Dialogue::playback_started`]).
    pub playback_us: Option<i64>,
    /// The customer's audio of this sentence (seed 001 `voice`), as the
    /// transport reports it ([`Dialogue::set_customer_voice`]).
    pub voice: Option<String>,
    /// The audio files the robot played on this turn (seed 001
    /// `download_voice`): the prompt's recorded contents; TTS has no file.
    pub robot_voice: Vec<String>,
}

/// The call-level result of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub score: i64,
    pub rounds: i64,
    pub level_id: Option<String>,
    pub level_name: Option<String>,
    pub intention_results: Option<i64>,
    pub tags: Vec<String>,
    pub robot_hung_up: bool,
    pub gender: Option<i64>,
}

/// `&'static str` under another name: serde borrows fields spelled `&str`
/// from the input, which a journal line read from a buffer cannot lend.
pub type NotifyName = &'static str;

/// A row's `notify` read back (journal): the names the engine records.
fn notify_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<&'static str, D::Error> {
    let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
    Ok(match &*s {
        "enter" => "enter",
        "asrprogress_notify" => "asrprogress_notify",
        "playback_result" => "playback_result",
        "wait_result" => "wait_result",
        "getdtmf_result" => "getdtmf_result",
        "bridge_result" => "bridge_result",
        "leave" => "leave",
        _ => "asrmessage_notify",
    })
}

impl From<&Detail> for crate::store::DetailWrite {
    fn from(d: &Detail) -> Self {
        crate::store::DetailWrite {
            notify: d.notify.to_string(),
            question: d.question.clone(),
            question_index: d.question_index,
            speak_ms: d.speak_ms,
            play_ms: d.play_ms,
            keyword: d.keyword.clone(),
            answer_id: d.answer_id.clone(),
            answer_text: d.answer_text.clone(),
            answer_content: d.answer_content.clone(),
            answer_action: d.answer_action.clone(),
            word_class: d.word_class.clone(),
            score: d.score,
            sequence: d.sequence,
            asr_elapse: d.asr_elapse,
            gender: d.gender,
            asrtype: None,
            decision_us: d.decision_us,
            tags: d.tags.clone(),
            created_at: crate::finalize::fmt_ms(d.at_ms),
            bridge_status: d.bridge_status,
            voice: d.voice.clone(),
            robot_voice: d.robot_voice.clone(),
        }
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// How a text was understood at the current position.
enum Match {
    Refusal(String),
    /// Branch index of the current utterance, and the keyword or regex hit.
    Branch(usize, String),
    Repeat(String),
    /// Knowledge-base utterance index.
    Kb(usize, String),
    /// The current utterance's default branch.
    Default(usize),
    Nothing,
}

impl Match {
    /// Something the callee said on purpose, worth interrupting a prompt.
    fn specific(&self) -> bool {
        !matches!(self, Match::Default(_) | Match::Nothing)
    }
}

/// What a decision produced: the action, score gained, tags attached.
type Turn = (Action, i64, Vec<String>);

/// The per-call dialogue state.
pub struct Dialogue {
    script: Arc<Script>,
    vars: HashMap<String, String>,
    /// Main-flow position: whose branches interpret the next answer.
    current: String,
    /// What is playing (or last played).
    playing: Option<String>,
    /// The playing prompt was paused by a keyword barge-in.
    paused: bool,
    hangup_after: bool,
    /// The playing prompt hands over to an agent when it ends.
    transfer_after: Option<String>,
    /// Transferred to an agent: later rows carry `bridge_status = 1`.
    bridged: bool,
    /// A knowledge-base answer with `is_jump_back` played: when its
    /// listening window runs out, the main-flow question is asked again.
    jump_back_pending: bool,
    jump_backs: i64,
    /// Times each utterance was played again (silence, repeat requests).
    replays: HashMap<String, i64>,
    finished: bool,
    question_index: i64,
    sequence: i64,
    score: i64,
    rounds: i64,
    visited: BTreeSet<String>,
    tags: BTreeSet<String>,
    no_speech: u32,
    not_understood: u32,
    refusals: u32,
    retries: i64,
    robot_hung_up: bool,
    gender: Option<i64>,
    details: Vec<Detail>,
    /// When the last `Play` was decided, and its row, for `playback_us`.
    play_decided: Option<(Instant, usize)>,
    /// Where recorded contents live, for `robot_voice` (`None`: not recorded).
    robot_audio: Option<RobotAudio>,
}

/// How the transport turns a content into a file to play, so that
/// `robot_voice` names exactly what was played.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RobotAudio {
    /// Directory of `<file_id>.wav`, as the playing host sees it.
    pub root: String,
    /// A content whose text has `{$var}` is spoken by TTS even when it has a
    /// recording (smartivr; the ESL transport plays the recording).
    pub templated_as_tts: bool,
}

impl Dialogue {
    /// A dialogue over `script` with the number's variables for `{$name}`.
    pub fn new(script: Arc<Script>, vars: HashMap<String, String>) -> Self {
        let current = script.start().map(|u| u.id.clone()).unwrap_or_default();
        Dialogue {
            script,
            vars,
            current,
            playing: None,
            paused: false,
            hangup_after: false,
            transfer_after: None,
            bridged: false,
            jump_back_pending: false,
            jump_backs: 0,
            replays: HashMap::new(),
            finished: false,
            question_index: 0,
            sequence: 0,
            score: 0,
            rounds: 0,
            visited: BTreeSet::new(),
            tags: BTreeSet::new(),
            no_speech: 0,
            not_understood: 0,
            refusals: 0,
            retries: 0,
            robot_hung_up: false,
            gender: None,
            details: Vec::new(),
            play_decided: None,
            robot_audio: None,
        }
    }

    /// Record on each turn which audio files its prompt played.
    pub fn with_robot_audio(mut self, audio: RobotAudio) -> Self {
        self.robot_audio = Some(audio);
        self
    }

    /// Attach the customer's audio of the sentence (or segment) just
    /// recognized to its row: the last row, when it is a recognition row.
    /// Call it right after the input that recorded the row. Returns whether
    /// it was attached.
    pub fn set_customer_voice(&mut self, path: &str) -> bool {
        match self.details.last_mut() {
            Some(d) if !path.is_empty() && matches!(d.notify, "asrmessage_notify" | "asrprogress_notify") => {
                d.voice = Some(path.to_string());
                true
            }
            _ => false,
        }
    }

    pub fn details(&self) -> &[Detail] {
        &self.details
    }

    pub fn take_details(&mut self) -> Vec<Detail> {
        self.play_decided = None;
        std::mem::take(&mut self.details)
    }

    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// The call was handed to an agent.
    pub fn is_bridged(&self) -> bool {
        self.bridged
    }

    /// The transport saw the last chosen prompt start playing: record the
    /// decision → playback-start latency on its row. Returns it (µs).
    pub fn playback_started(&mut self) -> Option<i64> {
        let (at, row) = self.play_decided.take()?;
        let us = at.elapsed().as_micros() as i64;
        let d = self.details.get_mut(row)?;
        d.playback_us = Some(us);
        Some(us)
    }

    pub fn summary(&self) -> Summary {
        let level = self.script.level_for(self.score);
        Summary {
            score: self.score,
            rounds: self.rounds,
            level_id: level.map(|l| l.id.clone()),
            level_name: level.map(|l| l.display_name()),
            intention_results: level.and_then(|l| l.intention_results),
            tags: self.tags.iter().cloned().collect(),
            robot_hung_up: self.robot_hung_up,
            gender: self.gender,
        }
    }

    /// Fill `{$name}` placeholders from the number's variables.
    fn fill(&self, text: &str) -> String {
        if !text.contains("{$") {
            return text.to_string();
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(i) = rest.find("{$") {
            out.push_str(&rest[..i]);
            match rest[i..].find('}') {
                Some(j) => {
                    let key = &rest[i + 2..i + j];
                    out.push_str(self.vars.get(key).map(String::as_str).unwrap_or(""));
                    rest = &rest[i + j + 1..];
                }
                None => {
                    out.push_str(&rest[i..]);
                    rest = "";
                }
            }
        }
        out.push_str(rest);
        out
    }

    fn prompts(&self, u: &Utterance) -> Vec<Prompt> {
        let mut contents: Vec<_> = u.contents.iter().filter(|c| c.status).collect();
        contents.sort_by_key(|c| c.sort);
        contents
            .into_iter()
            .map(|c| Prompt { file_id: c.file_id.clone(), text: self.fill(&c.translate_text), seconds: c.wav_second })
            .collect()
    }

    fn end(&mut self) -> Turn {
        self.robot_hung_up = true;
        self.finished = true;
        (Action::Hangup, 0, vec![])
    }

    /// Start playing utterance `id`, scoring and tagging it on first visit.
    fn play(&mut self, id: &str, extra_score: i64) -> Turn {
        let script = self.script.clone();
        let Some(u) = script.utterance(id) else {
            return self.end();
        };
        let mut gained = extra_score;
        let mut tags = Vec::new();
        if self.visited.insert(u.id.clone()) {
            gained += u.score;
            tags.extend(u.tags.iter().cloned());
        }
        self.score += gained;
        self.tags.extend(tags.iter().cloned());
        if u.word_class == MAIN_FLOW && self.current != u.id {
            self.current = u.id.clone();
            self.retries = 0;
        }
        let hangup_after = u.action.as_deref() == Some("hangup");
        let transfer = u.action.as_deref() == Some("transfer");
        self.hangup_after = hangup_after;
        self.transfer_after =
            transfer.then(|| u.bridge_group_id.clone().or_else(|| script.transfer_to.clone()).unwrap_or_default());
        self.jump_back_pending = u.word_class != MAIN_FLOW
            && u.is_jump_back != 0
            && (u.jump_back_threshold < 0 || self.jump_backs < u.jump_back_threshold);
        self.playing = Some(u.id.clone());
        self.paused = false;
        let action = Action::Play {
            utterance_id: u.id.clone(),
            prompts: self.prompts(u),
            // A transfer prompt hands over as soon as it ends.
            wait_ms: if transfer { 0 } else { u.wait },
            interruptible: !hangup_after && !transfer && u.block_asr >= 0,
            hangup_after,
        };
        (action, gained, tags)
    }

    /// Play `id` again (silence, "say that again"), counting toward its
    /// `max_retry` (0 = no limit). `None`: the limit is reached.
    fn replay(&mut self, id: &str) -> Option<Turn> {
        let max = self.script.utterance(id).map_or(0, |u| u.max_retry);
        let n = self.replays.entry(id.to_string()).or_insert(0);
        if max > 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(self.play(id, 0))
    }

    fn push_detail(&mut self, mut d: Detail) {
        self.sequence += 1;
        d.sequence = self.sequence;
        if self.bridged {
            d.bridge_status = Some(1);
        }
        self.details.push(d);
    }

    fn answer_detail(
        &self,
        notify: &'static str,
        action: &Action,
        question: String,
        gained: i64,
        tags: Vec<String>,
    ) -> Detail {
        let robot_voice = match action {
            Action::Play { utterance_id, prompts, .. } => self.robot_voice(utterance_id, prompts),
            _ => Vec::new(),
        };
        let (answer_id, answer_text, answer_content, word_class, answer_action) = match action {
            Action::Play { utterance_id, prompts, .. } => {
                let u = self.script.utterance(utterance_id);
                (
                    Some(utterance_id.clone()),
                    u.map(|u| u.name.clone()),
                    Some(prompts.iter().map(|p| p.text.as_str()).collect::<Vec<_>>().join("\n")),
                    u.map(|u| u.word_class.to_string()),
                    u.and_then(|u| u.action.clone()),
                )
            }
            Action::Hangup => (None, None, None, None, Some("hangup".to_string())),
            Action::Transfer { .. } => (None, None, None, None, Some("transfer".to_string())),
            Action::ResumePlayback => (None, None, None, None, Some("resume".to_string())),
            _ => (None, None, None, None, None),
        };
        Detail {
            notify,
            question,
            question_index: self.question_index,
            answer_id,
            answer_text,
            answer_content,
            word_class,
            answer_action,
            score: gained,
            tags,
            at_ms: now_ms(),
            robot_voice,
            ..Detail::default()
        }
    }

    /// The files a `Play` of `utterance_id` plays, resolved as the transport
    /// resolves them (`<root>/<file_id>.wav`).
    fn robot_voice(&self, utterance_id: &str, prompts: &[Prompt]) -> Vec<String> {
        let Some(audio) = &self.robot_audio else { return Vec::new() };
        let root = audio.root.trim_end_matches('/');
        // `prompts` are the enabled contents in `sort` order (see `prompts`).
        let mut contents: Vec<_> = self
            .script
            .utterance(utterance_id)
            .map(|u| u.contents.iter().filter(|c| c.status).collect())
            .unwrap_or_default();
        contents.sort_by_key(|c| c.sort);
        prompts
            .iter()
            .enumerate()
            .filter(|(i, _)| {
                !(audio.templated_as_tts && contents.get(*i).is_some_and(|c| c.translate_text.contains("{$")))
            })
            .filter_map(|(_, p)| p.file_id.as_ref().map(|f| format!("{root}/{f}.wav")))
            .collect()
    }

    /// An utterance recognized in one segment (one partial row) is that
    /// segment: its audio is the utterance's. With several segments no one
    /// file holds the sentence, so the row gets none from them.
    fn single_segment_voice(&self) -> Option<String> {
        let mut segments = self
            .details
            .iter()
            .rev()
            .take_while(|d| d.notify == "asrprogress_notify" && d.question_index == self.question_index);
        let first = segments.next()?;
        segments.next().is_none().then(|| first.voice.clone()).flatten()
    }

    /// The playing prompt lets keyword barge-in decide.
    fn keyword_interrupt(&self) -> bool {
        self.playing
            .as_deref()
            .and_then(|p| self.script.utterance(p))
            .is_some_and(|u| u.allow_keyword_interrupt && u.action.is_none() && u.block_asr >= 0)
    }

    /// Feed one event; get the action to perform.
    pub fn handle(&mut self, input: Input) -> Action {
        let started = Instant::now();
        if self.finished {
            return Action::Noop;
        }
        let rows_before = self.details.len();
        let action = match input {
            Input::Enter => {
                let start = self.current.clone();
                let (a, gained, tags) = self.play(&start, 0);
                let d = self.answer_detail("enter", &a, String::new(), gained, tags);
                self.push_detail(d);
                a
            }
            Input::SpeechStarted => {
                let interruptible = self
                    .playing
                    .as_deref()
                    .and_then(|p| self.script.utterance(p))
                    .is_some_and(|u| u.action.is_none() && u.block_asr >= 0 && !u.allow_keyword_interrupt);
                if self.playing.is_some() && interruptible && !self.bridged {
                    Action::StopPlayback
                } else {
                    Action::Noop
                }
            }
            Input::AsrProgress { text } => {
                let pause = !self.paused && !self.bridged && self.keyword_interrupt() && self.is_specific(&text);
                let d = Detail {
                    notify: "asrprogress_notify",
                    question: text,
                    question_index: self.question_index + 1,
                    at_ms: now_ms(),
                    ..Detail::default()
                };
                self.push_detail(d);
                if pause {
                    self.paused = true;
                    Action::PausePlayback
                } else {
                    Action::Noop
                }
            }
            Input::AsrMessage { text, speak_ms, asr_elapse, gender } => {
                self.question_index += 1;
                self.rounds += 1;
                if gender.is_some() {
                    self.gender = gender;
                }
                let (action, gained, tags, keyword) =
                    if self.hangup_after || self.transfer_after.is_some() || self.bridged {
                        (Action::Noop, 0, vec![], None)
                    } else if self.keyword_interrupt() && !self.is_specific(&text) {
                        // Keyword barge-in: what was said does not call for a new
                        // prompt, so the prompt goes on.
                        let a = if std::mem::take(&mut self.paused) { Action::ResumePlayback } else { Action::Noop };
                        (a, 0, vec![], None)
                    } else {
                        self.respond(&text)
                    };
                let mut d = self.answer_detail("asrmessage_notify", &action, text, gained, tags);
                d.voice = self.single_segment_voice();
                d.speak_ms = speak_ms;
                d.asr_elapse = asr_elapse;
                d.gender = gender;
                d.keyword = keyword;
                self.push_detail(d);
                action
            }
            Input::Dtmf { digits } => {
                if self.bridged || self.hangup_after || self.transfer_after.is_some() || digits.is_empty() {
                    Action::Noop
                } else {
                    self.question_index += 1;
                    self.rounds += 1;
                    let (action, gained, tags, keyword) = self.respond(&digits);
                    let mut d = self.answer_detail("getdtmf_result", &action, digits, gained, tags);
                    d.keyword = keyword;
                    self.push_detail(d);
                    action
                }
            }
            Input::PlaybackDone => {
                self.playing = None;
                self.paused = false;
                if self.hangup_after {
                    self.end().0
                } else if let Some(destination) = self.transfer_after.take() {
                    self.bridged = true;
                    Action::Transfer { destination }
                } else if self.bridged {
                    Action::Noop
                } else {
                    let wait = self.script.utterance(&self.current).map_or(4000, |u| u.wait);
                    Action::Listen { ms: wait.max(0) }
                }
            }
            Input::PlaybackStopped => {
                self.playing = None;
                self.paused = false;
                Action::Noop
            }
            Input::WaitTimeout => {
                if self.bridged || self.hangup_after {
                    Action::Noop
                } else {
                    let (a, gained, tags) = self.on_silence();
                    let d = self.answer_detail("playback_result", &a, String::new(), gained, tags);
                    self.push_detail(d);
                    a
                }
            }
            Input::BridgeResult { ok, cause } => {
                let (a, gained, tags) = if ok {
                    self.bridged = true;
                    (Action::Noop, 0, vec![])
                } else {
                    self.bridged = false;
                    match self.script.handlers.transfer_failed.clone() {
                        Some(h) => self.play(&h, 0),
                        None => self.closing(),
                    }
                };
                let mut d = self.answer_detail("bridge_result", &a, cause.unwrap_or_default(), gained, tags);
                if ok {
                    d.bridge_status = Some(1);
                }
                self.push_detail(d);
                a
            }
            Input::Leave => {
                self.finished = true;
                Action::Noop
            }
        };
        if self.details.len() > rows_before {
            let row = self.details.len() - 1;
            if let Some(d) = self.details.get_mut(row) {
                d.decision_us = Some(started.elapsed().as_micros() as i64);
            }
            if matches!(action, Action::Play { .. }) {
                self.play_decided = Some((Instant::now(), row));
            }
        }
        action
    }

    fn closing(&mut self) -> Turn {
        match self.script.handlers.closing.clone() {
            Some(c) => self.play(&c, 0),
            None => self.end(),
        }
    }

    fn on_silence(&mut self) -> Turn {
        let cur = self.current.clone();
        if std::mem::take(&mut self.jump_back_pending) {
            // Back from the knowledge base to the question it interrupted.
            self.jump_backs += 1;
            return self.play(&cur, 0);
        }
        let retry = self.script.utterance(&cur).map_or(0, |u| u.retry);
        if self.retries < retry {
            self.retries += 1;
            if let Some(t) = self.replay(&cur) {
                return t;
            }
        }
        self.no_speech += 1;
        if self.no_speech > self.script.handlers.max_no_speech {
            return self.closing();
        }
        match self.script.handlers.no_speech.clone() {
            Some(h) => self.play(&h, 0),
            None => self.closing(),
        }
    }

    /// How `text` reads at the current position, without changing state.
    /// `refusals`: the refusal count once `text` is counted.
    fn classify(&self, text: &str, refusals: u32) -> Match {
        let script = &*self.script;
        let h = &script.handlers;
        if let Some(k) = h.refusal_keywords.iter().find(|k| !k.is_empty() && text.contains(k.as_str())) {
            if refusals >= h.max_refusals {
                return Match::Refusal(k.clone());
            }
        }
        let compiled = script.compiled();
        let Some(ci) = compiled.position(&self.current) else {
            return Match::Nothing;
        };
        let cur = &script.utterances[ci];
        // Specific branches first, in order; the default one last.
        for (bi, b) in cur.branches.iter().enumerate().filter(|(_, b)| !b.is_default) {
            if b.negations.iter().any(|n| !n.is_empty() && text.contains(n.as_str())) {
                continue;
            }
            if let Some(k) = b.keywords.iter().find(|k| !k.is_empty() && text.contains(k.as_str())) {
                return Match::Branch(bi, k.clone());
            }
            if let Some(re) = compiled.regexes(ci, bi).iter().find(|re| re.is_match(text)) {
                return Match::Branch(bi, re.as_str().to_string());
            }
        }
        if let Some(k) = h.repeat_keywords.iter().find(|k| !k.is_empty() && text.contains(k.as_str())) {
            let max = cur.max_retry;
            if max <= 0 || self.replays.get(&cur.id).copied().unwrap_or(0) < max {
                return Match::Repeat(k.clone());
            }
        }
        // Knowledge base: answer out of flow, stay on the current node.
        for &ki in &compiled.kb {
            if let Some(k) = script.utterances[ki].keywords.iter().find(|k| !k.is_empty() && text.contains(k.as_str()))
            {
                return Match::Kb(ki, k.clone());
            }
        }
        match cur.branches.iter().position(|b| b.is_default) {
            Some(bi) => Match::Default(bi),
            None => Match::Nothing,
        }
    }

    /// `text` calls for a decision of its own (worth interrupting a prompt).
    fn is_specific(&self, text: &str) -> bool {
        let refusal = self.script.handlers.refusal_keywords.iter().any(|k| !k.is_empty() && text.contains(k.as_str()));
        refusal || self.classify(text, self.refusals).specific()
    }

    /// Choose the answer to a final recognition result (or digits).
    fn respond(&mut self, text: &str) -> (Action, i64, Vec<String>, Option<String>) {
        let script = self.script.clone();
        let h = &script.handlers;
        if h.refusal_keywords.iter().any(|k| !k.is_empty() && text.contains(k.as_str())) {
            self.refusals += 1;
        }
        let m = self.classify(text, self.refusals);
        let cur = script.utterance(&self.current);
        let branch = |bi: usize| cur.and_then(|u| u.branches.get(bi));
        match m {
            Match::Refusal(k) => {
                let (a, g, t) = self.closing();
                (a, g, t, Some(k))
            }
            Match::Branch(bi, k) => {
                self.not_understood = 0;
                let Some(b) = branch(bi) else { return self.not_understood_turn() };
                let (a, g, mut t) = self.play(&b.next, b.score);
                for tag in &b.tags {
                    self.tags.insert(tag.clone());
                    t.push(tag.clone());
                }
                (a, g, t, Some(k))
            }
            Match::Repeat(k) => {
                let id = self.current.clone();
                match self.replay(&id) {
                    Some((a, g, t)) => (a, g, t, Some(k)),
                    None => self.not_understood_turn(),
                }
            }
            Match::Kb(ki, k) => {
                let id = script.utterances[ki].id.clone();
                let (a, g, t) = self.play(&id, 0);
                (a, g, t, Some(k))
            }
            Match::Default(bi) => {
                let Some(b) = branch(bi) else { return self.not_understood_turn() };
                let (a, g, mut t) = self.play(&b.next, b.score);
                t.extend(b.tags.iter().cloned());
                self.tags.extend(b.tags.iter().cloned());
                (a, g, t, None)
            }
            Match::Nothing => self.not_understood_turn(),
        }
    }

    fn not_understood_turn(&mut self) -> (Action, i64, Vec<String>, Option<String>) {
        let script = self.script.clone();
        let h = &script.handlers;
        self.not_understood += 1;
        if self.not_understood > h.max_not_understood {
            let (a, g, t) = self.closing();
            return (a, g, t, None);
        }
        let (a, g, t) = match &h.not_understood {
            Some(n) => self.play(n, 0),
            None => self.closing(),
        };
        (a, g, t, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialogue::script::{Compiled, SAMPLE_SCRIPT};

    fn dialogue() -> Dialogue {
        let script = Arc::new(Script::from_json(SAMPLE_SCRIPT).expect("sample"));
        Dialogue::new(script, HashMap::from([("name".to_string(), "王先生".to_string())]))
    }

    fn said(text: &str) -> Input {
        Input::AsrMessage { text: text.into(), speak_ms: 900, asr_elapse: Some(300), gender: Some(2) }
    }

    #[test]
    fn interested_callee_reaches_a_high_level() {
        let mut d = dialogue();
        let Action::Play { prompts, .. } = d.handle(Input::Enter) else { panic!("opening plays") };
        assert!(prompts[0].text.contains("王先生"), "variables filled: {}", prompts[0].text);
        assert_eq!(d.handle(Input::PlaybackDone), Action::Listen { ms: 4000 });
        d.handle(said("可以，你说"));
        d.handle(Input::PlaybackDone);
        d.handle(said("我有兴趣"));
        d.handle(Input::PlaybackDone);
        let a = d.handle(said("好的"));
        assert!(matches!(a, Action::Play { hangup_after: true, .. }));
        assert_eq!(d.handle(Input::PlaybackDone), Action::Hangup);
        let s = d.summary();
        assert_eq!(s.rounds, 3);
        assert!(s.score >= 200, "score {}", s.score);
        assert_eq!(s.level_name.as_deref(), Some("A级(有明确意向)"));
        assert!(s.robot_hung_up);
        let seq: Vec<i64> = d.details().iter().map(|r| r.sequence).collect();
        assert_eq!(seq, (1..=4).collect::<Vec<_>>());
        assert_eq!(d.details()[1].keyword.as_deref(), Some("可以"));
    }

    #[test]
    fn negation_blocks_a_branch_and_refusal_ends_the_call() {
        let mut d = dialogue();
        d.handle(Input::Enter);
        let a = d.handle(said("现在不方便，在开会"));
        let Action::Play { utterance_id, hangup_after, .. } = a else { panic!("plays") };
        assert_eq!(utterance_id, "u-bye-busy");
        assert!(hangup_after);
    }

    #[test]
    fn knowledge_base_answers_then_returns_to_flow() {
        let mut d = dialogue();
        d.handle(Input::Enter);
        let Action::Play { utterance_id, .. } = d.handle(said("你们是哪里")) else { panic!() };
        assert_eq!(utterance_id, "u-kb-who");
        d.handle(Input::PlaybackDone);
        let Action::Play { utterance_id, .. } = d.handle(said("可以")) else { panic!() };
        assert_eq!(utterance_id, "u-intro", "back on the main flow");
    }

    #[test]
    fn silence_goes_to_handler_then_closing() {
        let mut d = dialogue();
        d.handle(Input::Enter);
        d.handle(Input::PlaybackDone);
        let mut played = vec![];
        for _ in 0..3 {
            if let Action::Play { utterance_id, .. } = d.handle(Input::WaitTimeout) {
                played.push(utterance_id);
            }
            d.handle(Input::PlaybackDone);
        }
        assert_eq!(played, vec!["u-no-speech", "u-no-speech", "u-closing"]);
        assert!(d.is_finished());
        assert_eq!(d.summary().level_name.as_deref(), Some("D级(无意向)"));
    }

    fn with(edit: impl FnOnce(&mut Script)) -> Dialogue {
        let mut s = Script::from_json(SAMPLE_SCRIPT).expect("sample");
        edit(&mut s);
        assert_eq!(s.validate(), vec![]);
        Dialogue::new(Arc::new(s), HashMap::new())
    }

    fn played(a: &Action) -> &str {
        match a {
            Action::Play { utterance_id, .. } => utterance_id,
            other => panic!("expected a prompt, got {other:?}"),
        }
    }

    #[test]
    fn keyword_barge_in_pauses_then_plays_or_resumes() {
        let mut d = with(|s| s.utterances[0].allow_keyword_interrupt = true);
        d.handle(Input::Enter);
        // Speech alone does not stop a keyword-interrupt prompt.
        assert_eq!(d.handle(Input::SpeechStarted), Action::Noop);
        assert_eq!(d.handle(Input::AsrProgress { text: "喂喂那个".into() }), Action::Noop, "no keyword yet");
        assert_eq!(d.handle(Input::AsrProgress { text: "没兴趣".into() }), Action::PausePlayback);
        assert_eq!(played(&d.handle(said("没兴趣"))), "u-bye-refuse");
        // Paused on a keyword, but the final text matches nothing specific:
        // the prompt resumes and nothing is counted as not understood.
        let mut d = with(|s| s.utterances[0].allow_keyword_interrupt = true);
        d.handle(Input::Enter);
        assert_eq!(d.handle(Input::AsrProgress { text: "价格".into() }), Action::PausePlayback);
        assert_eq!(d.handle(said("喂喂喂")), Action::ResumePlayback);
        assert_eq!(d.details().last().map(|r| r.answer_action.as_deref()), Some(Some("resume")));
        // Once the prompt is over, the same text is answered normally.
        d.handle(Input::PlaybackDone);
        assert_eq!(played(&d.handle(said("喂喂喂"))), "u-intro", "default branch");
        // An ordinary prompt is stopped by speech.
        let mut d = dialogue();
        d.handle(Input::Enter);
        assert_eq!(d.handle(Input::SpeechStarted), Action::StopPlayback);
    }

    #[test]
    fn dtmf_follows_keyword_branches() {
        let mut d = with(|s| s.utterances[0].branches[0].keywords.push("2".into()));
        d.handle(Input::Enter);
        assert_eq!(played(&d.handle(Input::Dtmf { digits: "2".into() })), "u-bye-refuse");
        let row = d.details().last().expect("row");
        assert_eq!(row.notify, "getdtmf_result");
        assert_eq!(row.question, "2");
        assert_eq!(row.keyword.as_deref(), Some("2"));
        assert_eq!(d.summary().rounds, 1);
    }

    #[test]
    fn transfer_hands_over_and_marks_later_rows() {
        let mut d = dialogue();
        d.handle(Input::Enter);
        let a = d.handle(said("帮我转人工"));
        let Action::Play { utterance_id, wait_ms, interruptible, hangup_after, .. } = a else { panic!("plays") };
        assert_eq!((utterance_id.as_str(), wait_ms, interruptible, hangup_after), ("u-kb-agent", 0, false, false));
        assert_eq!(d.handle(Input::SpeechStarted), Action::Noop, "the hand-over prompt is not interrupted");
        assert_eq!(d.handle(Input::PlaybackDone), Action::Transfer { destination: "8001".into() });
        assert!(d.is_bridged());
        assert_eq!(d.handle(Input::BridgeResult { ok: true, cause: None }), Action::Noop);
        assert_eq!(d.handle(said("你好我想办宽带")), Action::Noop, "the agent talks now");
        assert_eq!(d.handle(Input::WaitTimeout), Action::Noop);
        let rows = d.details();
        assert_eq!(rows[1].answer_action.as_deref(), Some("transfer"));
        assert_eq!(rows[1].bridge_status, None, "the request itself came before the transfer");
        assert!(rows[2..].iter().all(|r| r.bridge_status == Some(1)), "{rows:?}");
        assert_eq!(rows[2].notify, "bridge_result");
    }

    #[test]
    fn failed_transfer_plays_the_handler() {
        let mut d = dialogue();
        d.handle(Input::Enter);
        d.handle(said("转人工"));
        assert!(matches!(d.handle(Input::PlaybackDone), Action::Transfer { .. }));
        let a = d.handle(Input::BridgeResult { ok: false, cause: Some("NO_USER_RESPONSE".into()) });
        assert_eq!(played(&a), "u-closing");
        assert!(!d.is_bridged());
        let row = d.details().last().expect("row");
        assert_eq!((row.notify, row.question.as_str(), row.bridge_status), ("bridge_result", "NO_USER_RESPONSE", None));
    }

    #[test]
    fn knowledge_base_jumps_back_after_silence() {
        let mut d = dialogue();
        d.handle(Input::Enter);
        d.handle(Input::PlaybackDone);
        assert_eq!(played(&d.handle(said("多少钱"))), "u-kb-price");
        assert_eq!(d.handle(Input::PlaybackDone), Action::Listen { ms: 4000 });
        assert_eq!(played(&d.handle(Input::WaitTimeout)), "u-open", "asked again");
        // Without is_jump_back the silence handler answers instead.
        let mut d = with(|s| {
            for u in &mut s.utterances {
                u.is_jump_back = 0;
            }
        });
        d.handle(Input::Enter);
        d.handle(said("多少钱"));
        d.handle(Input::PlaybackDone);
        assert_eq!(played(&d.handle(Input::WaitTimeout)), "u-no-speech");
        // A threshold caps the jump backs per call.
        let mut d = with(|s| {
            for u in &mut s.utterances {
                u.jump_back_threshold = 1;
            }
        });
        d.handle(Input::Enter);
        for expect in ["u-open", "u-no-speech"] {
            d.handle(said("多少钱"));
            d.handle(Input::PlaybackDone);
            assert_eq!(played(&d.handle(Input::WaitTimeout)), expect);
            d.handle(Input::PlaybackDone);
        }
    }

    #[test]
    fn retry_and_max_retry_bound_replays() {
        let mut d = with(|s| {
            s.utterances[0].retry = 1;
            s.utterances[0].max_retry = 1;
        });
        d.handle(Input::Enter);
        d.handle(Input::PlaybackDone);
        assert_eq!(played(&d.handle(Input::WaitTimeout)), "u-open", "retry replays the question");
        d.handle(Input::PlaybackDone);
        assert_eq!(played(&d.handle(Input::WaitTimeout)), "u-no-speech");
        // "Say that again" is one more replay, over max_retry: not honoured.
        d.handle(Input::PlaybackDone);
        assert_eq!(played(&d.handle(said("什么"))), "u-intro", "falls to the default branch");
    }

    #[test]
    fn latency_fields_are_recorded() {
        let mut d = dialogue();
        d.handle(Input::Enter);
        assert!(d.playback_started().is_some());
        assert!(d.playback_started().is_none(), "once per decision");
        d.handle(Input::PlaybackDone);
        d.handle(said("可以"));
        d.playback_started();
        let rows = d.details();
        assert!(rows.iter().all(|r| r.decision_us.is_some()));
        assert!(rows.iter().all(|r| r.playback_us.is_some()), "{rows:?}");
    }

    #[test]
    fn customer_and_robot_audio_land_on_their_rows() {
        let script = Arc::new(Script::from_json(SAMPLE_SCRIPT).expect("sample"));
        let audio = RobotAudio { root: "/audio/".into(), templated_as_tts: false };
        let mut d = Dialogue::new(script.clone(), HashMap::new()).with_robot_audio(audio);
        d.handle(Input::Enter);
        assert_eq!(d.details()[0].robot_voice, vec!["/audio/audio-open.wav".to_string()]);
        assert!(!d.set_customer_voice("/rec/x.wav"), "not a recognition row");
        // One segment: the sentence's row takes its audio.
        d.handle(Input::AsrProgress { text: "可以".into() });
        assert!(d.set_customer_voice("/rec/1.wav"));
        d.handle(said("可以"));
        assert_eq!(d.details().last().and_then(|r| r.voice.as_deref()), Some("/rec/1.wav"));
        // Two segments: no single file is the sentence, unless one is reported.
        d.handle(Input::PlaybackDone);
        for (t, f) in [("我有", "/rec/2.wav"), ("兴趣", "/rec/3.wav")] {
            d.handle(Input::AsrProgress { text: t.into() });
            d.set_customer_voice(f);
        }
        d.handle(said("我有兴趣"));
        assert_eq!(d.details().last().and_then(|r| r.voice.clone()), None);
        assert!(d.set_customer_voice("/rec/all.wav"));
        assert_eq!(d.details().last().and_then(|r| r.voice.as_deref()), Some("/rec/all.wav"));
        // smartivr speaks a templated content by TTS: it has no file.
        let audio = RobotAudio { root: "/audio".into(), templated_as_tts: true };
        let mut d = Dialogue::new(script, HashMap::new()).with_robot_audio(audio);
        d.handle(Input::Enter);
        assert!(d.details()[0].robot_voice.is_empty(), "the opening names the callee");
    }

    #[test]
    fn regexes_compile_once_per_script() {
        let s = Arc::new(Script::from_json(SAMPLE_SCRIPT).expect("sample"));
        let a: *const Compiled = s.compiled();
        let mut d = Dialogue::new(s.clone(), HashMap::new());
        d.handle(Input::Enter);
        assert_eq!(played(&d.handle(said("是我"))), "u-intro", "regex ^(是|对)");
        assert!(std::ptr::eq(a, s.compiled()));
        // A clone may be edited, so it compiles afresh.
        let c = (*s).clone();
        assert!(!std::ptr::eq(a, c.compiled()));
    }
}
