//! `voxdial script …`: check, import, export and regression replay of
//! script groups, callable from the CLI and from tests.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sqlx::Row;

use super::engine::{Action, Dialogue, Input};
use super::script::{ParseError, Script, ScriptError, ValidateOptions};
use crate::store::{Store, StoreError};

/// Why a script command failed.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: {source}")]
    Parse { path: String, source: ParseError },
    #[error("{path}: {} problem(s): {}", .errors.len(), .errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Invalid { path: String, errors: Vec<ScriptError> },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: transcript is not a JSON list of calls: {source}")]
    Transcript { path: String, source: serde_json::Error },
    #[error("serializing: {0}")]
    Serialize(String),
}

/// Read a JSON or YAML script file.
pub fn read_script(path: &Path) -> Result<Script, ToolError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ToolError::Io { path: p.clone(), source })?;
    Script::parse(&text).map_err(|source| ToolError::Parse { path: p, source })
}

/// Read and validate; every problem is returned, each naming its utterance.
pub fn check(path: &Path, audio_root: Option<&Path>) -> Result<Script, ToolError> {
    let script = read_script(path)?;
    let errors = script.validate_with(&ValidateOptions { audio_root });
    if errors.is_empty() {
        Ok(script)
    } else {
        Err(ToolError::Invalid { path: path.display().to_string(), errors })
    }
}

/// Validate and store a script file for `user_id`; returns the group id.
pub async fn import(store: &Store, user_id: &str, path: &Path, audio_root: Option<&Path>) -> Result<i64, ToolError> {
    let script = check(path, audio_root)?;
    store.ensure_user(user_id, user_id).await?;
    Ok(store.save_script(user_id, &script).await?)
}

/// Load group `group_id` with its ids as authored (without the
/// `<group>:` prefix the store adds), ready to edit and import again.
pub async fn export(store: &Store, group_id: i64) -> Result<Script, ToolError> {
    let mut s = store.load_script(group_id).await?;
    let prefix = format!("{group_id}:");
    let strip = |id: &mut String| {
        if let Some(rest) = id.strip_prefix(&prefix) {
            *id = rest.to_string();
        }
    };
    for u in &mut s.utterances {
        strip(&mut u.id);
        u.contents.iter_mut().for_each(|c| strip(&mut c.id));
        for b in &mut u.branches {
            strip(&mut b.id);
            strip(&mut b.next);
            b.tags.iter_mut().for_each(strip);
        }
        u.tags.iter_mut().for_each(strip);
    }
    s.levels.iter_mut().for_each(|l| strip(&mut l.id));
    for t in &mut s.tags {
        strip(&mut t.id);
        t.groups.iter_mut().for_each(strip);
    }
    s.tag_groups.iter_mut().for_each(|g| strip(&mut g.id));
    let h = &mut s.handlers;
    for id in [&mut h.no_speech, &mut h.not_understood, &mut h.closing, &mut h.transfer_failed].into_iter().flatten() {
        strip(id);
    }
    Ok(s)
}

/// Script text for `path`: YAML for `.yaml` / `.yml`, JSON otherwise.
pub fn render(script: &Script, path: &Path) -> Result<String, ToolError> {
    let yaml = matches!(path.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"));
    if yaml {
        script.to_yaml().map_err(|e| ToolError::Serialize(e.to_string()))
    } else {
        serde_json::to_string_pretty(script).map_err(|e| ToolError::Serialize(e.to_string()))
    }
}

/// One customer turn to replay.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TurnIn {
    /// What the callee said.
    Said(String),
    /// A recorded turn, with what the robot answered then.
    Recorded {
        #[serde(default)]
        notify: String,
        #[serde(default)]
        text: String,
        #[serde(default)]
        answer_id: Option<String>,
        #[serde(default)]
        score: Option<i64>,
    },
}

/// A call to replay: customer turns in order and, when recorded, the
/// call's outcome then.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplayCall {
    #[serde(default)]
    pub callid: String,
    pub turns: Vec<TurnIn>,
    #[serde(default)]
    pub score: Option<i64>,
    #[serde(default)]
    pub level_name: Option<String>,
}

/// One difference found by [`replay`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    pub callid: String,
    /// 1-based customer turn; 0 for call-level changes.
    pub turn: usize,
    pub what: &'static str,
    pub question: String,
    pub before: String,
    pub after: String,
}

/// What a replay found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ReplayReport {
    pub calls: usize,
    pub turns: usize,
    pub changes: Vec<Change>,
}

/// The robot's side of one turn under a script.
#[derive(Debug, Clone, PartialEq)]
struct Decision {
    answer_id: String,
    score: i64,
}

/// Run `call`'s customer turns through `script`: the decision and score
/// gained per turn, and the final score and level.
fn run(script: &Arc<Script>, call: &ReplayCall) -> (Vec<Decision>, i64, Option<String>) {
    let mut d = Dialogue::new(script.clone(), HashMap::new());
    d.handle(Input::Enter);
    let mut out = Vec::with_capacity(call.turns.len());
    for t in &call.turns {
        let (notify, text) = match t {
            TurnIn::Said(s) => ("asrmessage_notify", s.as_str()),
            TurnIn::Recorded { notify, text, .. } => (notify.as_str(), text.as_str()),
        };
        let before = d.details().len();
        let a = match notify {
            "playback_result" | "wait_result" => {
                d.handle(Input::PlaybackDone);
                d.handle(Input::WaitTimeout)
            }
            "getdtmf_result" => {
                d.handle(Input::PlaybackStopped);
                d.handle(Input::Dtmf { digits: text.to_string() })
            }
            _ => {
                d.handle(Input::PlaybackStopped);
                d.handle(Input::AsrMessage { text: text.to_string(), speak_ms: 0, asr_elapse: None, gender: None })
            }
        };
        let row = d.details().get(before..).and_then(|r| r.last());
        let answer_id = match (&a, row) {
            (_, Some(r)) if r.answer_id.is_some() => r.answer_id.clone().unwrap_or_default(),
            (Action::Hangup, _) => "(hangup)".into(),
            (Action::Transfer { .. }, _) => "(transfer)".into(),
            (Action::ResumePlayback, _) => "(resume)".into(),
            _ => "(none)".into(),
        };
        out.push(Decision { answer_id, score: row.map_or(0, |r| r.score) });
        if d.is_finished() {
            break;
        }
    }
    let s = d.summary();
    (out, s.score, s.level_name)
}

/// Ids as the store prefixes them (`<group>:u-open`) compare equal to the
/// authored ones.
fn bare(id: &str) -> &str {
    match id.split_once(':') {
        Some((g, rest)) if !g.is_empty() && g.bytes().all(|b| b.is_ascii_digit()) => rest,
        _ => id,
    }
}

/// Replay `calls` through `script` and report every decision, score or level
/// that differs from what was recorded, or, given `baseline`, from what the
/// baseline script decides.
pub fn replay(script: &Script, baseline: Option<&Script>, calls: &[ReplayCall]) -> ReplayReport {
    let new = Arc::new(script.clone());
    let old = baseline.map(|b| Arc::new(b.clone()));
    let mut rep = ReplayReport { calls: calls.len(), ..ReplayReport::default() };
    for call in calls {
        let (after, score, level) = run(&new, call);
        rep.turns += call.turns.len();
        // What it was: the baseline's decisions, else the recorded ones.
        let (before, old_score, old_level): (Vec<Option<Decision>>, Option<i64>, Option<String>) = match &old {
            Some(o) => {
                let (b, s, l) = run(o, call);
                (b.into_iter().map(Some).collect(), Some(s), l)
            }
            None => (
                call.turns
                    .iter()
                    .map(|t| match t {
                        TurnIn::Recorded { answer_id, score, .. } => Some(Decision {
                            answer_id: answer_id.clone().unwrap_or_else(|| "(none)".into()),
                            score: score.unwrap_or(0),
                        }),
                        TurnIn::Said(_) => None,
                    })
                    .collect(),
                call.score,
                call.level_name.clone(),
            ),
        };
        let question = |i: usize| match call.turns.get(i) {
            Some(TurnIn::Said(s)) => s.clone(),
            Some(TurnIn::Recorded { text, .. }) => text.clone(),
            None => String::new(),
        };
        let n = after.len().max(before.len());
        for i in 0..n {
            let a = after.get(i);
            let Some(b) = before.get(i).and_then(Option::as_ref) else {
                continue;
            };
            let change = |what, before: String, after: String| Change {
                callid: call.callid.clone(),
                turn: i + 1,
                what,
                question: question(i),
                before,
                after,
            };
            match a {
                None => rep.changes.push(change("decision", b.answer_id.clone(), "(call already over)".into())),
                Some(a) => {
                    if bare(&a.answer_id) != bare(&b.answer_id) {
                        rep.changes.push(change("decision", bare(&b.answer_id).into(), bare(&a.answer_id).into()));
                    } else if a.score != b.score {
                        rep.changes.push(change("score", b.score.to_string(), a.score.to_string()));
                    }
                }
            }
        }
        let call_change = |what, before: String, after: String| Change {
            callid: call.callid.clone(),
            turn: 0,
            what,
            question: String::new(),
            before,
            after,
        };
        if let Some(s) = old_score.filter(|s| *s != score) {
            rep.changes.push(call_change("call score", s.to_string(), score.to_string()));
        }
        if old_level.is_some() && old_level != level {
            rep.changes.push(call_change("level", old_level.unwrap_or_default(), level.unwrap_or_default()));
        }
    }
    rep
}

/// A transcript file: a JSON list of calls, each a list of what the
/// customer said (strings) or a [`ReplayCall`] object.
pub fn read_transcript(path: &Path) -> Result<Vec<ReplayCall>, ToolError> {
    let p = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ToolError::Io { path: p.clone(), source })?;
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Entry {
        Turns(Vec<TurnIn>),
        Call(ReplayCall),
    }
    let entries: Vec<Entry> =
        serde_json::from_str(&text).map_err(|source| ToolError::Transcript { path: p, source })?;
    Ok(entries
        .into_iter()
        .enumerate()
        .map(|(i, e)| match e {
            Entry::Turns(turns) => ReplayCall { callid: format!("#{}", i + 1), turns, ..ReplayCall::default() },
            Entry::Call(mut c) => {
                if c.callid.is_empty() {
                    c.callid = format!("#{}", i + 1);
                }
                c
            }
        })
        .collect())
}

/// Recorded calls, newest first: the customer's turns (`asrmessage_notify`,
/// `getdtmf_result`, silences) in sequence with the answers given then.
pub async fn recorded_calls(store: &Store, task: Option<&str>, limit: i64) -> Result<Vec<ReplayCall>, ToolError> {
    let q = match task {
        Some(_) => {
            "SELECT id, callid, score, level_name FROM records WHERE task_id = ? ORDER BY calldate DESC, id LIMIT ?"
        }
        None => "SELECT id, callid, score, level_name FROM records ORDER BY calldate DESC, id LIMIT ?",
    };
    let mut query = sqlx::query(store.sql(q));
    if let Some(t) = task {
        query = query.bind(t.to_string());
    }
    let rows = query.bind(limit.max(1)).fetch_all(store.pool()).await.map_err(StoreError::from)?;
    let mut calls = Vec::with_capacity(rows.len());
    for r in rows {
        let id: String = r.try_get("id").map_err(StoreError::from)?;
        let details = sqlx::query(store.sql(
            "SELECT notify, question, answer_id, score FROM record_details WHERE record_id = ? AND notify IN ('asrmessage_notify', 'getdtmf_result', 'playback_result', 'wait_result') AND (bridge_status IS NULL OR bridge_status = 0) ORDER BY sequence",
        ))
        .bind(id)
        .fetch_all(store.pool())
        .await
        .map_err(StoreError::from)?;
        let mut turns = Vec::with_capacity(details.len());
        for d in details {
            turns.push(TurnIn::Recorded {
                notify: d.try_get("notify").map_err(StoreError::from)?,
                text: d.try_get("question").map_err(StoreError::from)?,
                answer_id: d.try_get("answer_id").map_err(StoreError::from)?,
                score: Some(d.try_get("score").map_err(StoreError::from)?),
            });
        }
        calls.push(ReplayCall {
            callid: r.try_get("callid").map_err(StoreError::from)?,
            turns,
            score: Some(r.try_get("score").map_err(StoreError::from)?),
            level_name: r.try_get("level_name").map_err(StoreError::from)?,
        });
    }
    Ok(calls)
}

/// Human-readable report lines.
pub fn render_report(rep: &ReplayReport) -> String {
    let mut out = String::new();
    for c in &rep.changes {
        if c.turn == 0 {
            out.push_str(&format!("{}: {} {} → {}\n", c.callid, c.what, c.before, c.after));
        } else {
            out.push_str(&format!(
                "{} turn {} {:?}: {} {} → {}\n",
                c.callid, c.turn, c.question, c.what, c.before, c.after
            ));
        }
    }
    out.push_str(&format!("{} call(s), {} turn(s) replayed, {} change(s)\n", rep.calls, rep.turns, rep.changes.len()));
    out
}

/// Where `export` writes when no `--out` is given.
pub fn default_export_path(group: i64) -> PathBuf {
    PathBuf::from(format!("script-{group}.json"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialogue::SAMPLE_SCRIPT;

    fn sample() -> Script {
        Script::from_json(SAMPLE_SCRIPT).expect("sample")
    }

    #[test]
    fn yaml_round_trip() {
        let s = sample();
        let y = s.to_yaml().expect("yaml");
        assert!(!y.trim_start().starts_with('{'));
        assert_eq!(Script::parse(&y).expect("parses"), s);
    }

    #[test]
    fn check_names_missing_audio_and_empty_content() {
        let dir = tempfile::tempdir().expect("tmp");
        let mut s = sample();
        s.utterances[1].contents[0].translate_text.clear();
        s.utterances[1].contents[0].file_id = None;
        let path = dir.path().join("s.yaml");
        std::fs::write(&path, s.to_yaml().expect("yaml")).expect("write");
        let audio = dir.path().join("audio");
        std::fs::create_dir(&audio).expect("mkdir");
        for u in &s.utterances {
            for c in &u.contents {
                if let Some(f) = &c.file_id {
                    if f != "audio-open" {
                        std::fs::write(audio.join(format!("{f}.wav")), b"RIFF").expect("wav");
                    }
                }
            }
        }
        let Err(ToolError::Invalid { errors, .. }) = check(&path, Some(&audio)) else { panic!("invalid") };
        assert!(
            errors.contains(&ScriptError::EmptyContent { utterance: "u-intro".into(), content: "c-intro".into() }),
            "{errors:?}"
        );
        assert!(
            errors.iter().any(|e| matches!(e, ScriptError::MissingAudio { utterance, .. } if utterance == "u-open")),
            "{errors:?}"
        );
        assert_eq!(errors.len(), 3, "u-intro also has no content left: {errors:?}");
        // Without an audio root only the content problems remain.
        let Err(ToolError::Invalid { errors, .. }) = check(&path, None) else { panic!("invalid") };
        assert_eq!(errors.len(), 2, "{errors:?}");
    }

    #[test]
    fn replay_reports_what_a_script_edit_changes() {
        let calls = vec![
            ReplayCall {
                callid: "a".into(),
                turns: vec![TurnIn::Said("可以".into()), TurnIn::Said("发我看看".into())],
                ..Default::default()
            },
            ReplayCall { callid: "b".into(), turns: vec![TurnIn::Said("没兴趣".into())], ..Default::default() },
        ];
        let old = sample();
        assert!(replay(&old, Some(&old), &calls).changes.is_empty(), "same script, same decisions");
        let mut new = sample();
        // "发我" no longer means interest on the intro: the default branch
        // (score 10 instead of 50) now takes it.
        new.utterances[1].branches[1].keywords.retain(|k| k != "发我");
        let rep = replay(&new, Some(&old), &calls);
        assert_eq!(rep.calls, 2);
        let kinds: Vec<(&str, usize, &str)> = rep.changes.iter().map(|c| (c.callid.as_str(), c.turn, c.what)).collect();
        assert_eq!(kinds, vec![("a", 2, "score"), ("a", 0, "call score")], "{rep:?}");
        assert!(render_report(&rep).contains("a turn 2 \"发我看看\": score 100 → 60"), "{}", render_report(&rep));
    }

    #[test]
    fn replay_against_records_uses_bare_ids() {
        let call = ReplayCall {
            callid: "r1".into(),
            turns: vec![TurnIn::Recorded {
                notify: "asrmessage_notify".into(),
                text: "不需要".into(),
                answer_id: Some("12:u-bye-refuse".into()),
                score: Some(0),
            }],
            score: Some(0),
            level_name: Some("D级(无意向)".into()),
        };
        assert!(replay(&sample(), None, std::slice::from_ref(&call)).changes.is_empty());
        let mut s = sample();
        s.utterances[0].branches[0].next = "u-bye-busy".into();
        let rep = replay(&s, None, &[call]);
        assert_eq!(rep.changes.len(), 1);
        assert_eq!((rep.changes[0].before.as_str(), rep.changes[0].after.as_str()), ("u-bye-refuse", "u-bye-busy"));
    }

    #[test]
    fn transcripts_accept_plain_lists() {
        let dir = tempfile::tempdir().expect("tmp");
        let p = dir.path().join("t.json");
        std::fs::write(&p, r#"[["可以","好的"],{"callid":"x","turns":["不需要"]}]"#).expect("write");
        let calls = read_transcript(&p).expect("reads");
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[0].callid, "#1");
        assert_eq!(calls[1].turns, vec![TurnIn::Said("不需要".into())]);
    }
}
