//! The conversation state machine of one call. Pure and synchronous: it takes
//! normalized events and returns what to do, recording every turn the way the
//! seeds' `records[]` rows do. Transports (ESL, smartivr HTTP) only translate.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

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
    /// The prompt finished playing.
    PlaybackDone,
    /// The listening window after a prompt ran out with no speech.
    WaitTimeout,
    Dtmf { digits: String },
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
    /// Start the listening window of `ms`.
    Listen { ms: i64 },
    Hangup,
    Transfer,
    Noop,
}

/// One row of the call's transcript, as seed 000/001 `records[]`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Detail {
    pub notify: &'static str,
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
    /// Event received → decision made, in microseconds.
    pub decision_us: Option<i64>,
    /// Wall-clock time of the row, ms since the epoch.
    pub at_ms: i64,
}

/// The call-level result of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize)]
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

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The per-call dialogue state.
pub struct Dialogue {
    script: Arc<Script>,
    vars: HashMap<String, String>,
    /// Main-flow position: whose branches interpret the next answer.
    current: String,
    /// What is playing (or last played).
    playing: Option<String>,
    hangup_after: bool,
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
            hangup_after: false,
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
        }
    }

    pub fn details(&self) -> &[Detail] {
        &self.details
    }

    pub fn take_details(&mut self) -> Vec<Detail> {
        std::mem::take(&mut self.details)
    }

    pub fn is_finished(&self) -> bool {
        self.finished
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

    /// Start playing utterance `id`, scoring and tagging it on first visit.
    fn play(&mut self, id: &str, extra_score: i64) -> (Action, i64, Vec<String>) {
        let script = self.script.clone();
        let Some(u) = script.utterance(id) else {
            self.robot_hung_up = true;
            self.finished = true;
            return (Action::Hangup, 0, vec![]);
        };
        let mut gained = extra_score;
        let mut tags = Vec::new();
        if self.visited.insert(u.id.clone()) {
            gained += u.score;
            tags.extend(u.tags.iter().cloned());
        }
        self.score += gained;
        self.tags.extend(tags.iter().cloned());
        if u.word_class == MAIN_FLOW {
            self.current = u.id.clone();
            self.retries = 0;
        }
        let hangup_after = u.action.as_deref() == Some("hangup");
        self.hangup_after = hangup_after;
        self.playing = Some(u.id.clone());
        let action = Action::Play {
            utterance_id: u.id.clone(),
            prompts: self.prompts(u),
            wait_ms: u.wait,
            interruptible: !hangup_after && u.block_asr >= 0,
            hangup_after,
        };
        (action, gained, tags)
    }

    fn push_detail(&mut self, mut d: Detail) {
        self.sequence += 1;
        d.sequence = self.sequence;
        self.details.push(d);
    }

    fn answer_detail(&self, notify: &'static str, action: &Action, question: String, gained: i64, tags: Vec<String>) -> Detail {
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
            _ => (None, None, None, None, None),
        };
        Detail {
            notify,
            question,
            question_index: self.question_index,
            speak_ms: 0,
            play_ms: 0,
            keyword: None,
            answer_id,
            answer_text,
            answer_content,
            word_class,
            answer_action,
            score: gained,
            sequence: 0,
            asr_elapse: None,
            gender: None,
            tags,
            decision_us: None,
            at_ms: now_ms(),
        }
    }

    /// Feed one event; get the action to perform.
    pub fn handle(&mut self, input: Input) -> Action {
        let started = Instant::now();
        if self.finished {
            return Action::Noop;
        }
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
                    .is_some_and(|u| u.action.as_deref() != Some("hangup") && u.block_asr >= 0);
                if self.playing.is_some() && interruptible {
                    Action::StopPlayback
                } else {
                    Action::Noop
                }
            }
            Input::AsrProgress { text } => {
                let d = Detail {
                    notify: "asrprogress_notify",
                    question: text,
                    question_index: self.question_index + 1,
                    speak_ms: 0,
                    play_ms: 0,
                    keyword: None,
                    answer_id: None,
                    answer_text: None,
                    answer_content: None,
                    word_class: None,
                    answer_action: None,
                    score: 0,
                    sequence: 0,
                    asr_elapse: None,
                    gender: None,
                    tags: vec![],
                    decision_us: None,
                    at_ms: now_ms(),
                };
                self.push_detail(d);
                Action::Noop
            }
            Input::AsrMessage { text, speak_ms, asr_elapse, gender } => {
                self.question_index += 1;
                self.rounds += 1;
                if gender.is_some() {
                    self.gender = gender;
                }
                let (action, gained, tags, keyword) = if self.hangup_after {
                    (Action::Noop, 0, vec![], None)
                } else {
                    self.respond(&text)
                };
                let mut d = self.answer_detail("asrmessage_notify", &action, text, gained, tags);
                d.speak_ms = speak_ms;
                d.asr_elapse = asr_elapse;
                d.gender = gender;
                d.keyword = keyword;
                self.push_detail(d);
                action
            }
            Input::PlaybackDone => {
                self.playing = None;
                if self.hangup_after {
                    self.robot_hung_up = true;
                    self.finished = true;
                    Action::Hangup
                } else {
                    let wait = self.script.utterance(&self.current).map_or(4000, |u| u.wait);
                    Action::Listen { ms: wait.max(0) }
                }
            }
            Input::WaitTimeout => {
                let (a, gained, tags) = self.on_silence();
                let d = self.answer_detail("playback_result", &a, String::new(), gained, tags);
                self.push_detail(d);
                a
            }
            Input::Dtmf { .. } => Action::Noop,
            Input::Leave => {
                self.finished = true;
                Action::Noop
            }
        };
        if let Some(d) = self.details.last_mut() {
            if d.decision_us.is_none() && d.sequence == self.sequence {
                d.decision_us = Some(started.elapsed().as_micros() as i64);
            }
        }
        action
    }

    fn closing(&mut self) -> (Action, i64, Vec<String>) {
        match self.script.handlers.closing.clone() {
            Some(c) => self.play(&c, 0),
            None => {
                self.robot_hung_up = true;
                self.finished = true;
                (Action::Hangup, 0, vec![])
            }
        }
    }

    fn on_silence(&mut self) -> (Action, i64, Vec<String>) {
        let retry = self.script.utterance(&self.current).map_or(0, |u| u.retry);
        if self.retries < retry {
            self.retries += 1;
            let cur = self.current.clone();
            return self.play(&cur, 0);
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

    /// Choose the answer to a final recognition result.
    fn respond(&mut self, text: &str) -> (Action, i64, Vec<String>, Option<String>) {
        let script = self.script.clone();
        let h = &script.handlers;
        if let Some(k) = h.refusal_keywords.iter().find(|k| text.contains(k.as_str())) {
            self.refusals += 1;
            if self.refusals >= h.max_refusals {
                let (a, g, t) = self.closing();
                return (a, g, t, Some(k.clone()));
            }
        }
        if let Some(cur) = script.utterance(&self.current) {
            // Specific branches first, in order; the default one last.
            for b in cur.branches.iter().filter(|b| !b.is_default) {
                if b.negations.iter().any(|n| !n.is_empty() && text.contains(n.as_str())) {
                    continue;
                }
                let hit = b
                    .keywords
                    .iter()
                    .find(|k| !k.is_empty() && text.contains(k.as_str()))
                    .cloned()
                    .or_else(|| {
                        b.regexes
                            .iter()
                            .find(|r| regex::Regex::new(r).is_ok_and(|re| re.is_match(text)))
                            .cloned()
                    });
                if let Some(k) = hit {
                    self.not_understood = 0;
                    let (a, g, mut t) = self.play(&b.next, b.score);
                    for tag in &b.tags {
                        self.tags.insert(tag.clone());
                        t.push(tag.clone());
                    }
                    return (a, g, t, Some(k));
                }
            }
            if let Some(k) = h.repeat_keywords.iter().find(|k| text.contains(k.as_str())) {
                let id = cur.id.clone();
                let (a, g, t) = self.play(&id, 0);
                return (a, g, t, Some(k.clone()));
            }
            // Knowledge base: answer out of flow, stay on the current node.
            for kb in script.utterances.iter().filter(|u| u.word_class != MAIN_FLOW && !u.keywords.is_empty()) {
                if let Some(k) = kb.keywords.iter().find(|k| text.contains(k.as_str())) {
                    let (a, g, t) = self.play(&kb.id, 0);
                    return (a, g, t, Some(k.clone()));
                }
            }
            if let Some(b) = cur.branches.iter().find(|b| b.is_default) {
                let (a, g, mut t) = self.play(&b.next, b.score);
                t.extend(b.tags.iter().cloned());
                self.tags.extend(b.tags.iter().cloned());
                return (a, g, t, None);
            }
        }
        self.not_understood += 1;
        if self.not_understood > h.max_not_understood {
            let (a, g, t) = self.closing();
            return (a, g, t, None);
        }
        match h.not_understood.clone() {
            Some(n) => {
                let (a, g, t) = self.play(&n, 0);
                (a, g, t, None)
            }
            None => {
                let (a, g, t) = self.closing();
                (a, g, t, None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialogue::script::SAMPLE_SCRIPT;

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
}
