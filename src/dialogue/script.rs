//! Script groups (话术组) as the seeds describe them: utterances with their
//! contents and branches, a knowledge base answered out of flow, global
//! handlers, tags and levels.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::{Arc, OnceLock};

use serde::{Deserialize, Deserializer, Serialize};

/// `word_class` of main-flow utterances (主流程).
pub const MAIN_FLOW: i64 = 16;
/// `word_class` of the general closing utterance (普适结束语).
pub const CLOSING: i64 = 1;

fn default_wait() -> i64 {
    4000
}
fn default_true() -> bool {
    true
}
fn default_play_ms() -> i64 {
    -1
}
fn default_status() -> bool {
    true
}

/// One piece of audio or TTS text of an utterance.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Content {
    pub id: String,
    #[serde(default)]
    pub file_id: Option<String>,
    #[serde(default)]
    pub translate_text: String,
    #[serde(default)]
    pub wav_second: Option<f64>,
    #[serde(default)]
    pub sort: i64,
    #[serde(default = "default_status")]
    pub status: bool,
}

/// A way out of an utterance, chosen by what the callee said.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Branch {
    pub id: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub regexes: Vec<String>,
    /// If any of these occurs, the branch does not match ("不是" vs "是").
    #[serde(default)]
    pub negations: Vec<String>,
    /// Taken when nothing else matched.
    #[serde(default)]
    pub is_default: bool,
    pub next: String,
    #[serde(default)]
    pub score: i64,
    #[serde(default)]
    pub tags: Vec<String>,
}

/// An utterance (话术节点) with the seed's fields.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Utterance {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub priority: i64,
    /// `None` listen after playing; `"hangup"` hang up after playing;
    /// `"transfer"` hand over to an agent group.
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default = "main_flow")]
    pub word_class: i64,
    /// ms to keep listening after the prompt ends.
    #[serde(default = "default_wait")]
    pub wait: i64,
    #[serde(default)]
    pub retry: i64,
    #[serde(default)]
    pub max_retry: i64,
    #[serde(default)]
    pub score: i64,
    #[serde(default = "default_play_ms")]
    pub play_ms: i64,
    #[serde(default = "default_true")]
    pub enquire: bool,
    #[serde(default)]
    pub identify_type: i64,
    #[serde(default)]
    pub block_asr: i64,
    #[serde(default)]
    pub allow_keyword_interrupt: bool,
    #[serde(default)]
    pub is_jump_back: i64,
    #[serde(default = "default_play_ms")]
    pub jump_back_threshold: i64,
    #[serde(default)]
    pub contents: Vec<Content>,
    #[serde(default)]
    pub branches: Vec<Branch>,
    /// Knowledge-base entries: what callers say that this utterance answers.
    #[serde(default)]
    pub keywords: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Where `action: "transfer"` hands the call: an agent group's extension
    /// or a dial string (`sofia/…`, `user/…`). `None`: the script's
    /// `transfer_to`, then the transport's configured default.
    #[serde(default, deserialize_with = "lenient_opt_string", skip_serializing_if = "Option::is_none")]
    pub bridge_group_id: Option<String>,
}

/// `bridge_group_id` is an integer in some exports and a string in others.
fn lenient_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) if s.is_empty() => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(v) => Some(v.to_string()),
    })
}

fn main_flow() -> i64 {
    MAIN_FLOW
}

/// Score range → level (A级/B级 …).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Level {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub alias: Option<String>,
    #[serde(default)]
    pub color: Option<String>,
    pub min_score: i64,
    pub max_score: i64,
    #[serde(default)]
    pub intention_results: Option<i64>,
}

impl Level {
    /// `level_name` as the seeds store it: "D级(无意向)".
    pub fn display_name(&self) -> String {
        match &self.alias {
            Some(a) if !a.is_empty() => format!("{}({})", self.name, a),
            _ => self.name.clone(),
        }
    }
}

/// 子标签, with the 母标签 it belongs to.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Tag {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub color: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// 母标签.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TagGroup {
    pub id: String,
    pub name: String,
}

/// What to do when the callee says nothing, says something not understood,
/// or keeps refusing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
pub struct Handlers {
    /// Played when the wait after a prompt runs out with no speech.
    #[serde(default)]
    pub no_speech: Option<String>,
    #[serde(default = "default_limit")]
    pub max_no_speech: u32,
    /// Played when nothing matched.
    #[serde(default)]
    pub not_understood: Option<String>,
    #[serde(default = "default_limit")]
    pub max_not_understood: u32,
    /// Played when the limits above are exceeded; must hang up.
    #[serde(default)]
    pub closing: Option<String>,
    /// Keywords that mean "say that again".
    #[serde(default)]
    pub repeat_keywords: Vec<String>,
    /// Keywords counted as refusals; at `max_refusals` the call goes to `closing`.
    #[serde(default)]
    pub refusal_keywords: Vec<String>,
    #[serde(default = "default_limit")]
    pub max_refusals: u32,
    /// Played when a transfer to an agent fails; `None`: the closing handler.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_failed: Option<String>,
}

fn default_limit() -> u32 {
    2
}

/// A script group (话术组).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Script {
    #[serde(default)]
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tag_scene_id: Option<String>,
    pub utterances: Vec<Utterance>,
    #[serde(default)]
    pub handlers: Handlers,
    #[serde(default)]
    pub levels: Vec<Level>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub tag_groups: Vec<TagGroup>,
    /// Default transfer destination of `action: "transfer"` utterances.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transfer_to: Option<String>,
    /// Regexes and lookups built once per script, on first use, so a call
    /// never compiles a regular expression.
    #[serde(skip)]
    compiled: CompiledCell,
}

/// What the engine needs fast: utterance index by id, every branch's
/// regexes compiled, the knowledge base in priority order.
#[derive(Debug, Default)]
pub struct Compiled {
    index: HashMap<String, usize>,
    /// utterance → branch → its regexes (invalid ones dropped; `validate`
    /// reports them).
    regexes: Vec<Vec<Vec<regex::Regex>>>,
    /// Knowledge-base utterances (not main flow, with keywords), by priority.
    pub kb: Vec<usize>,
}

impl Compiled {
    fn build(s: &Script) -> Compiled {
        let index = s.utterances.iter().enumerate().map(|(i, u)| (u.id.clone(), i)).collect();
        let regexes = s
            .utterances
            .iter()
            .map(|u| {
                u.branches
                    .iter()
                    .map(|b| b.regexes.iter().filter_map(|r| regex::Regex::new(r).ok()).collect())
                    .collect()
            })
            .collect();
        let mut kb: Vec<usize> = (0..s.utterances.len())
            .filter(|&i| s.utterances[i].word_class != MAIN_FLOW && !s.utterances[i].keywords.is_empty())
            .collect();
        kb.sort_by_key(|&i| (s.utterances[i].priority, i));
        Compiled { index, regexes, kb }
    }

    /// The compiled regexes of branch `b` of utterance `u`.
    pub fn regexes(&self, u: usize, b: usize) -> &[regex::Regex] {
        self.regexes.get(u).and_then(|v| v.get(b)).map_or(&[], Vec::as_slice)
    }

    pub fn position(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }
}

/// A lazily built [`Compiled`]. Cloning yields an empty cell (a cloned
/// script may be edited, so it compiles afresh) and it never affects
/// equality.
#[derive(Debug, Default)]
struct CompiledCell(OnceLock<Arc<Compiled>>);

impl Clone for CompiledCell {
    fn clone(&self) -> Self {
        CompiledCell::default()
    }
}

impl PartialEq for CompiledCell {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// Checks that need the file system, for [`Script::validate_with`].
#[derive(Debug, Clone, Default)]
pub struct ValidateOptions<'a> {
    /// Directory of `<file_id>.wav`; when given, every enabled content's
    /// recording must exist there.
    pub audio_root: Option<&'a Path>,
}

/// Why a script file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("not valid YAML: {0}")]
    Yaml(#[from] serde_yaml::Error),
}

/// A problem found by [`Script::validate`], naming the utterance.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    #[error("script has no main-flow utterance (word_class 16)")]
    NoStart,
    #[error("utterance {0:?} appears twice")]
    DuplicateId(String),
    #[error("utterance {utterance:?} branch {branch:?} goes to missing utterance {target:?}")]
    MissingTarget { utterance: String, branch: String, target: String },
    #[error("utterance {utterance:?} branch {branch:?} has no keywords, regexes and is not the default branch")]
    EmptyBranch { utterance: String, branch: String },
    #[error("utterance {utterance:?} branch {branch:?}: bad regular expression {regex:?}: {error}")]
    BadRegex { utterance: String, branch: String, regex: String, error: String },
    #[error("utterance {0:?} has no enabled content to play")]
    NoContent(String),
    #[error("utterance {utterance:?} content {content:?} has neither text nor an audio file")]
    EmptyContent { utterance: String, content: String },
    #[error("utterance {utterance:?} content {content:?}: audio file {path:?} does not exist")]
    MissingAudio { utterance: String, content: String, path: String },
    #[error("utterance {utterance:?} knowledge-base entry has an empty keyword")]
    EmptyKeyword { utterance: String },
    #[error("utterance {0:?} is unreachable from the opening utterance")]
    Unreachable(String),
    #[error("utterances {0:?} form a loop with no way to hang up")]
    NoExit(Vec<String>),
    #[error("handler {handler} names missing utterance {target:?}")]
    MissingHandler { handler: &'static str, target: String },
    #[error("levels {0:?} and {1:?} overlap")]
    OverlappingLevels(String, String),
    #[error("utterance {utterance:?} names unknown tag {tag:?}")]
    UnknownTag { utterance: String, tag: String },
}

impl Script {
    /// Parse JSON.
    pub fn from_json(text: &str) -> Result<Script, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// Parse JSON when the text starts with `{`, YAML otherwise.
    pub fn parse(text: &str) -> Result<Script, ParseError> {
        if text.trim_start().starts_with('{') {
            Ok(serde_json::from_str(text)?)
        } else {
            Ok(serde_yaml::from_str(text)?)
        }
    }

    /// YAML text of the script.
    pub fn to_yaml(&self) -> Result<String, ParseError> {
        Ok(serde_yaml::to_string(self)?)
    }

    /// The compiled form, built on first use.
    pub fn compiled(&self) -> &Compiled {
        self.compiled.0.get_or_init(|| Arc::new(Compiled::build(self)))
    }

    /// The opening utterance: the main-flow utterance with the lowest priority.
    pub fn start(&self) -> Option<&Utterance> {
        self.utterances.iter().filter(|u| u.word_class == MAIN_FLOW).min_by_key(|u| u.priority)
    }

    pub fn utterance(&self, id: &str) -> Option<&Utterance> {
        match self.compiled().position(id) {
            Some(i) => self.utterances.get(i),
            None => None,
        }
    }

    /// The level whose score range holds `score` (min inclusive, max exclusive;
    /// the highest level also takes its max).
    pub fn level_for(&self, score: i64) -> Option<&Level> {
        self.levels
            .iter()
            .find(|l| score >= l.min_score && score < l.max_score)
            .or_else(|| self.levels.iter().filter(|l| score >= l.max_score).max_by_key(|l| l.max_score))
            .or_else(|| self.levels.iter().min_by_key(|l| l.min_score))
    }

    /// Every problem, not only the first, so an author can fix them in one go.
    pub fn validate(&self) -> Vec<ScriptError> {
        self.validate_with(&ValidateOptions::default())
    }

    /// [`validate`](Self::validate) plus the checks that need `opts`.
    pub fn validate_with(&self, opts: &ValidateOptions) -> Vec<ScriptError> {
        let mut errs = Vec::new();
        let mut ids = HashSet::new();
        for u in &self.utterances {
            if !ids.insert(u.id.as_str()) {
                errs.push(ScriptError::DuplicateId(u.id.clone()));
            }
        }
        let Some(start) = self.start() else {
            errs.push(ScriptError::NoStart);
            return errs;
        };
        let tag_ids: HashSet<&str> = self.tags.iter().map(|t| t.id.as_str()).collect();
        for u in &self.utterances {
            if !u.contents.iter().any(|c| c.status && (!c.translate_text.is_empty() || c.file_id.is_some())) {
                errs.push(ScriptError::NoContent(u.id.clone()));
            }
            for c in u.contents.iter().filter(|c| c.status) {
                let file = c.file_id.as_deref().filter(|f| !f.trim().is_empty());
                if file.is_none() && c.translate_text.trim().is_empty() {
                    errs.push(ScriptError::EmptyContent { utterance: u.id.clone(), content: c.id.clone() });
                }
                if let (Some(root), Some(f)) = (opts.audio_root, file) {
                    let path = root.join(format!("{f}.wav"));
                    if !path.is_file() {
                        errs.push(ScriptError::MissingAudio {
                            utterance: u.id.clone(),
                            content: c.id.clone(),
                            path: path.display().to_string(),
                        });
                    }
                }
            }
            if u.word_class != MAIN_FLOW && u.keywords.iter().any(|k| k.trim().is_empty()) {
                errs.push(ScriptError::EmptyKeyword { utterance: u.id.clone() });
            }
            for t in &u.tags {
                if !tag_ids.contains(t.as_str()) {
                    errs.push(ScriptError::UnknownTag { utterance: u.id.clone(), tag: t.clone() });
                }
            }
            for b in &u.branches {
                if !ids.contains(b.next.as_str()) {
                    errs.push(ScriptError::MissingTarget {
                        utterance: u.id.clone(),
                        branch: b.id.clone(),
                        target: b.next.clone(),
                    });
                }
                if !b.is_default && b.keywords.iter().all(|k| k.trim().is_empty()) && b.regexes.is_empty() {
                    errs.push(ScriptError::EmptyBranch { utterance: u.id.clone(), branch: b.id.clone() });
                }
                for r in &b.regexes {
                    if let Err(e) = regex::Regex::new(r) {
                        errs.push(ScriptError::BadRegex {
                            utterance: u.id.clone(),
                            branch: b.id.clone(),
                            regex: r.clone(),
                            error: e.to_string(),
                        });
                    }
                }
                for t in &b.tags {
                    if !tag_ids.contains(t.as_str()) {
                        errs.push(ScriptError::UnknownTag { utterance: u.id.clone(), tag: t.clone() });
                    }
                }
            }
        }
        let h = &self.handlers;
        for (name, target) in [
            ("no_speech", &h.no_speech),
            ("not_understood", &h.not_understood),
            ("closing", &h.closing),
            ("transfer_failed", &h.transfer_failed),
        ] {
            if let Some(t) = target {
                if !ids.contains(t.as_str()) {
                    errs.push(ScriptError::MissingHandler { handler: name, target: t.clone() });
                }
            }
        }
        // Reachability: from the start through branches, plus everything the
        // callee can reach out of flow (knowledge base, handlers).
        let graph: HashMap<&str, Vec<&str>> = self
            .utterances
            .iter()
            .map(|u| (u.id.as_str(), u.branches.iter().map(|b| b.next.as_str()).collect()))
            .collect();
        let mut roots: Vec<&str> = vec![start.id.as_str()];
        roots.extend(self.utterances.iter().filter(|u| u.word_class != MAIN_FLOW).map(|u| u.id.as_str()));
        for t in [&h.no_speech, &h.not_understood, &h.closing, &h.transfer_failed].into_iter().flatten() {
            roots.push(t.as_str());
        }
        let mut seen: HashSet<&str> = HashSet::new();
        let mut stack = roots;
        while let Some(n) = stack.pop() {
            if seen.insert(n) {
                if let Some(next) = graph.get(n) {
                    stack.extend(next.iter().copied());
                }
            }
        }
        for u in &self.utterances {
            if !seen.contains(u.id.as_str()) {
                errs.push(ScriptError::Unreachable(u.id.clone()));
            }
        }
        // Loops with no exit: a set of utterances none of which hangs up and
        // none of which branches outside the set. Global handlers (no speech,
        // not understood → closing) still end such calls, so only report a
        // loop when no closing handler exists.
        if h.closing.is_none() {
            let exits =
                |u: &Utterance| u.action.as_deref() == Some("hangup") || u.action.as_deref() == Some("transfer");
            let mut can_exit: HashSet<&str> =
                self.utterances.iter().filter(|u| exits(u)).map(|u| u.id.as_str()).collect();
            loop {
                let before = can_exit.len();
                for u in &self.utterances {
                    if u.branches.iter().any(|b| can_exit.contains(b.next.as_str())) {
                        can_exit.insert(u.id.as_str());
                    }
                }
                if can_exit.len() == before {
                    break;
                }
            }
            let stuck: Vec<String> = self
                .utterances
                .iter()
                .filter(|u| seen.contains(u.id.as_str()) && !can_exit.contains(u.id.as_str()) && !u.branches.is_empty())
                .map(|u| u.id.clone())
                .collect();
            if !stuck.is_empty() {
                errs.push(ScriptError::NoExit(stuck));
            }
        }
        let mut levels: Vec<&Level> = self.levels.iter().collect();
        levels.sort_by_key(|l| l.min_score);
        for w in levels.windows(2) {
            if w[0].max_score > w[1].min_score {
                errs.push(ScriptError::OverlappingLevels(w[0].name.clone(), w[1].name.clone()));
            }
        }
        errs
    }
}

/// The sample script shipped with voxdial and used by the demo.
pub const SAMPLE_SCRIPT: &str = include_str!("../../scripts/sample.json");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_script_is_valid() {
        let s = Script::from_json(SAMPLE_SCRIPT).expect("sample parses");
        assert_eq!(s.validate(), vec![]);
        assert!(s.start().is_some());
    }

    #[test]
    fn validation_names_the_offending_utterance() {
        let mut s = Script::from_json(SAMPLE_SCRIPT).expect("sample parses");
        let first = s.utterances[0].id.clone();
        s.utterances[0].branches.push(Branch {
            id: "b-bad".into(),
            name: String::new(),
            keywords: vec![],
            regexes: vec![],
            negations: vec![],
            is_default: false,
            next: "nowhere".into(),
            score: 0,
            tags: vec![],
        });
        let errs = s.validate();
        assert!(errs.contains(&ScriptError::MissingTarget {
            utterance: first.clone(),
            branch: "b-bad".into(),
            target: "nowhere".into()
        }));
        assert!(errs.contains(&ScriptError::EmptyBranch { utterance: first, branch: "b-bad".into() }));
    }

    #[test]
    fn levels_cover_scores() {
        let s = Script::from_json(SAMPLE_SCRIPT).expect("sample parses");
        let low = s.level_for(0).expect("level");
        let high = s.level_for(10_000).expect("level");
        assert_ne!(low.id, high.id);
    }
}
