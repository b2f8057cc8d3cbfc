//! The turn journal: an append-only, segmented JSON-lines log per node that
//! makes every smartivr turn durable before its reply leaves, without a
//! database round trip per request.
//!
//! Why: a flow server answers ~9 requests per call; a DB transaction per
//! request costs far more CPU than the 0.1 ms per call budget. Instead one
//! writer thread appends whatever the handlers queued since its last pass in
//! one `write` and, in [`Durability::Fsync`] mode, one `fdatasync` (group
//! commit), then wakes the handlers. The database rows are written once per
//! call at `leave` through the finalizer; a `done` line then marks the call
//! and segments whose calls are all done are deleted. On start, calls still
//! open in the journal are recovered and finalized (idempotent per callid).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::dialogue::{Detail, Summary};

/// When a turn counts as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// `fdatasync` before the reply: survives a power loss.
    Fsync,
    /// Written to the OS before the reply, `fdatasync` at most every 10 ms:
    /// survives a crash of voxdial, may lose the last 10 ms on a power loss.
    Write,
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("journal {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("journal writer stopped")]
    Stopped,
    #[error("journal write failed: {0}")]
    Write(String),
}

/// Call metadata, written once at `enter`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnterLine {
    pub callid: String,
    pub task_id: String,
    pub user_id: String,
    pub group_id: i64,
    pub recycle_limit: i64,
    pub number_id: i64,
    pub number: String,
    pub attempt: i64,
    pub caller_number: String,
    pub at_ms: i64,
}

/// A transcript row as read back (the mirror of [`Detail`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct DetailLine {
    pub notify: String,
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
    pub decision_us: Option<i64>,
    pub at_ms: i64,
    #[serde(default)]
    pub bridge_status: Option<i64>,
    #[serde(default)]
    pub playback_us: Option<i64>,
    #[serde(default)]
    pub voice: Option<String>,
    #[serde(default)]
    pub robot_voice: Vec<String>,
}

impl DetailLine {
    pub fn into_detail(self) -> Detail {
        let notify = match self.notify.as_str() {
            "enter" => "enter",
            "asrprogress_notify" => "asrprogress_notify",
            "playback_result" => "playback_result",
            "wait_result" => "wait_result",
            "getdtmf_result" => "getdtmf_result",
            "bridge_result" => "bridge_result",
            "leave" => "leave",
            _ => "asrmessage_notify",
        };
        Detail {
            notify,
            question: self.question,
            question_index: self.question_index,
            speak_ms: self.speak_ms,
            play_ms: self.play_ms,
            keyword: self.keyword,
            answer_id: self.answer_id,
            answer_text: self.answer_text,
            answer_content: self.answer_content,
            word_class: self.word_class,
            answer_action: self.answer_action,
            score: self.score,
            sequence: self.sequence,
            asr_elapse: self.asr_elapse,
            gender: self.gender,
            tags: self.tags,
            decision_us: self.decision_us,
            at_ms: self.at_ms,
            bridge_status: self.bridge_status,
            playback_us: self.playback_us,
            voice: self.voice,
            robot_voice: self.robot_voice,
        }
    }
}

/// The call-level result as read back (the mirror of [`Summary`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct SummaryLine {
    pub score: i64,
    pub rounds: i64,
    pub level_id: Option<String>,
    pub level_name: Option<String>,
    pub intention_results: Option<i64>,
    pub tags: Vec<String>,
    pub robot_hung_up: bool,
    pub gender: Option<i64>,
}

impl From<SummaryLine> for Summary {
    fn from(s: SummaryLine) -> Summary {
        Summary {
            score: s.score,
            rounds: s.rounds,
            level_id: s.level_id,
            level_name: s.level_name,
            intention_results: s.intention_results,
            tags: s.tags,
            robot_hung_up: s.robot_hung_up,
            gender: s.gender,
        }
    }
}

/// How the call ended, written at `leave`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LeaveInfo {
    pub at_ms: i64,
    pub duration_s: Option<i64>,
    pub disposition: Option<String>,
    pub hangup_cause: Option<String>,
}

#[derive(Serialize)]
#[serde(tag = "k", rename_all = "snake_case")]
enum LineOut<'a> {
    Enter(&'a EnterLine),
    Turn { callid: &'a str, d: &'a Detail },
    Leave { callid: &'a str, info: &'a LeaveInfo, summary: &'a Summary },
    Done { callid: &'a str },
}

#[derive(Deserialize)]
#[serde(tag = "k", rename_all = "snake_case")]
enum LineIn {
    Enter(EnterLine),
    Turn { callid: String, d: DetailLine },
    Leave { callid: String, info: LeaveInfo, summary: SummaryLine },
    Done { callid: String },
}

/// Append the journal line of a call's metadata to `buf`.
pub fn enter_line(buf: &mut Vec<u8>, e: &EnterLine) {
    push_line(buf, &LineOut::Enter(e));
}

/// Append the journal line of one transcript row to `buf`.
pub fn turn_line(buf: &mut Vec<u8>, callid: &str, d: &Detail) {
    push_line(buf, &LineOut::Turn { callid, d });
}

/// Append the journal line of a call's end to `buf`.
pub fn leave_line(buf: &mut Vec<u8>, callid: &str, info: &LeaveInfo, summary: &Summary) {
    push_line(buf, &LineOut::Leave { callid, info, summary });
}

fn push_line(buf: &mut Vec<u8>, l: &LineOut<'_>) {
    // Serializing these plain structs into a Vec cannot fail.
    if serde_json::to_writer(&mut *buf, l).is_ok() {
        buf.push(b'\n');
    }
}

/// A call found open in the journal at start.
#[derive(Debug, Clone)]
pub struct Recovered {
    pub enter: EnterLine,
    pub details: Vec<Detail>,
    pub leave: Option<(LeaveInfo, Summary)>,
}

enum Msg {
    Append {
        buf: Vec<u8>,
        open: Option<String>,
        ack: oneshot::Sender<Result<(), String>>,
    },
    /// The call's rows are in the database.
    Done(String),
}

/// Handle to the journal writer thread.
#[derive(Clone)]
pub struct Journal {
    tx: mpsc::Sender<Msg>,
}

const SEGMENT_BYTES: u64 = 64 << 20;

fn seg_path(dir: &Path, node: &str, seq: u64) -> PathBuf {
    dir.join(format!("smartivr-{node}-{seq:08}.jsonl"))
}

fn list_segments(dir: &Path, node: &str) -> Result<BTreeMap<u64, PathBuf>, JournalError> {
    let io = |e| JournalError::Io { path: dir.display().to_string(), source: e };
    let prefix = format!("smartivr-{node}-");
    let mut out = BTreeMap::new();
    for ent in fs::read_dir(dir).map_err(io)? {
        let ent = ent.map_err(io)?;
        let name = ent.file_name().to_string_lossy().into_owned();
        if let Some(seq) = name.strip_prefix(&prefix).and_then(|r| r.strip_suffix(".jsonl")) {
            if let Ok(n) = seq.parse::<u64>() {
                out.insert(n, ent.path());
            }
        }
    }
    Ok(out)
}

impl Journal {
    /// Open the journal in `dir` for `node`: read what earlier runs left,
    /// return the calls not yet marked done, and start the writer on a new
    /// segment.
    pub fn open(dir: &Path, node: &str, durability: Durability) -> Result<(Journal, Vec<Recovered>), JournalError> {
        fs::create_dir_all(dir).map_err(|e| JournalError::Io { path: dir.display().to_string(), source: e })?;
        let segs = list_segments(dir, node)?;
        let mut calls: HashMap<String, (u64, Recovered)> = HashMap::new();
        let mut order: Vec<String> = Vec::new();
        for (seq, path) in &segs {
            let f = File::open(path).map_err(|e| JournalError::Io { path: path.display().to_string(), source: e })?;
            for line in BufReader::new(f).lines() {
                let Ok(line) = line else { break };
                // A torn last line (crash mid-write) is skipped.
                let Ok(l) = serde_json::from_str::<LineIn>(&line) else { continue };
                match l {
                    LineIn::Enter(e) => {
                        if !calls.contains_key(&e.callid) {
                            order.push(e.callid.clone());
                        }
                        calls.insert(e.callid.clone(), (*seq, Recovered { enter: e, details: vec![], leave: None }));
                    }
                    LineIn::Turn { callid, d } => {
                        if let Some((_, r)) = calls.get_mut(&callid) {
                            r.details.push(d.into_detail());
                        }
                    }
                    LineIn::Leave { callid, info, summary } => {
                        if let Some((_, r)) = calls.get_mut(&callid) {
                            r.leave = Some((info, summary.into()));
                        }
                    }
                    LineIn::Done { callid } => {
                        calls.remove(&callid);
                    }
                }
            }
        }
        let next = segs.keys().next_back().map_or(1, |s| s + 1);
        let mut open_calls: HashMap<String, u64> = HashMap::new();
        let mut recovered = Vec::new();
        for id in order {
            if let Some((seq, r)) = calls.remove(&id) {
                open_calls.insert(id, seq);
                recovered.push(r);
            }
        }
        let mut w = Writer::new(dir.to_path_buf(), node.to_string(), next, durability, segs.keys().copied().collect())?;
        for (id, seq) in open_calls {
            w.open(id, seq);
        }
        w.collect_garbage();
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("smartivr-journal".into())
            .spawn(move || w.run(rx))
            .map_err(|e| JournalError::Io { path: dir.display().to_string(), source: e })?;
        Ok((Journal { tx }, recovered))
    }

    /// Append `buf` (whole lines); resolves once it is recorded per the
    /// journal's [`Durability`]. `open`: this buffer starts call `open`.
    pub async fn append(&self, buf: Vec<u8>, open: Option<String>) -> Result<(), JournalError> {
        let (ack, rx) = oneshot::channel();
        self.tx.send(Msg::Append { buf, open, ack }).map_err(|_| JournalError::Stopped)?;
        rx.await.map_err(|_| JournalError::Stopped)?.map_err(JournalError::Write)
    }

    /// The call is in the database: its journal lines may go.
    pub fn done(&self, callid: String) {
        let _ = self.tx.send(Msg::Done(callid));
    }
}

struct Writer {
    dir: PathBuf,
    node: String,
    durability: Durability,
    seq: u64,
    file: File,
    size: u64,
    /// Segments on disk, current included.
    segments: BTreeSet<u64>,
    /// Open call → the segment of its `enter` line.
    calls: HashMap<String, u64>,
    /// Segment → open calls that entered in it.
    per_seg: BTreeMap<u64, usize>,
    dirty: bool,
    /// A write failed part-way: start the next one on a fresh line.
    torn: bool,
    last_sync: Instant,
}

impl Writer {
    fn new(
        dir: PathBuf,
        node: String,
        seq: u64,
        durability: Durability,
        mut segments: BTreeSet<u64>,
    ) -> Result<Writer, JournalError> {
        let path = seg_path(&dir, &node, seq);
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| JournalError::Io { path: path.display().to_string(), source: e })?;
        segments.insert(seq);
        Ok(Writer {
            dir,
            node,
            durability,
            seq,
            file,
            size: 0,
            segments,
            calls: HashMap::new(),
            per_seg: BTreeMap::new(),
            dirty: false,
            torn: false,
            last_sync: Instant::now(),
        })
    }

    fn open(&mut self, callid: String, seq: u64) {
        if self.calls.insert(callid, seq).is_none() {
            *self.per_seg.entry(seq).or_insert(0) += 1;
        }
    }

    fn close(&mut self, callid: &str) {
        if let Some(seq) = self.calls.remove(callid) {
            if let Some(n) = self.per_seg.get_mut(&seq) {
                *n -= 1;
                if *n == 0 {
                    self.per_seg.remove(&seq);
                }
            }
        }
    }

    /// Delete segments older than the oldest one an open call entered in:
    /// every line of an open call is in its enter segment or later.
    fn collect_garbage(&mut self) {
        let keep_from = self.per_seg.keys().next().copied().unwrap_or(self.seq).min(self.seq);
        let old: Vec<u64> = self.segments.range(..keep_from).copied().collect();
        for s in old {
            let p = seg_path(&self.dir, &self.node, s);
            match fs::remove_file(&p) {
                Ok(()) => {
                    self.segments.remove(&s);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.segments.remove(&s);
                }
                Err(e) => tracing::warn!("cannot delete journal segment {}: {e}", p.display()),
            }
        }
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.sync_data()?;
        let seq = self.seq + 1;
        let path = seg_path(&self.dir, &self.node, seq);
        self.file = OpenOptions::new().create(true).append(true).open(path)?;
        self.seq = seq;
        self.size = 0;
        self.segments.insert(seq);
        self.collect_garbage();
        Ok(())
    }

    fn run(mut self, rx: mpsc::Receiver<Msg>) {
        let mut buf: Vec<u8> = Vec::with_capacity(1 << 16);
        let mut acks: Vec<oneshot::Sender<Result<(), String>>> = Vec::new();
        let mut done: Vec<String> = Vec::new();
        loop {
            let first = if self.dirty {
                match rx.recv_timeout(Duration::from_millis(10).saturating_sub(self.last_sync.elapsed())) {
                    Ok(m) => Some(m),
                    Err(mpsc::RecvTimeoutError::Timeout) => None,
                    Err(mpsc::RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(m) => Some(m),
                    Err(_) => break,
                }
            };
            let mut next = first;
            while let Some(m) = next {
                match m {
                    Msg::Append { buf: b, open, ack } => {
                        if let Some(id) = open {
                            let seq = self.seq;
                            self.open(id, seq);
                        }
                        buf.extend_from_slice(&b);
                        acks.push(ack);
                    }
                    Msg::Done(id) => {
                        push_line(&mut buf, &LineOut::Done { callid: &id });
                        done.push(id);
                    }
                }
                if acks.len() >= 4096 {
                    break;
                }
                next = rx.try_recv().ok();
            }
            let res = self.flush(&buf);
            buf.clear();
            for a in acks.drain(..) {
                let _ = a.send(res.clone());
            }
            if !done.is_empty() {
                for id in done.drain(..) {
                    self.close(&id);
                }
                if self.size >= SEGMENT_BYTES {
                    if let Err(e) = self.rotate() {
                        tracing::error!("journal rotation failed: {e}");
                    }
                } else {
                    self.collect_garbage();
                }
            }
        }
        let _ = self.file.sync_data();
    }

    fn flush(&mut self, buf: &[u8]) -> Result<(), String> {
        if !buf.is_empty() {
            if self.torn {
                self.file.write_all(b"\n").map_err(|e| e.to_string())?;
                self.torn = false;
            }
            if let Err(e) = self.file.write_all(buf) {
                self.torn = true;
                return Err(e.to_string());
            }
            self.size += buf.len() as u64;
            self.dirty = true;
        }
        let due = self.durability == Durability::Fsync || self.last_sync.elapsed() >= Duration::from_millis(10);
        if self.dirty && due {
            self.file.sync_data().map_err(|e| e.to_string())?;
            self.dirty = false;
            self.last_sync = Instant::now();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail(seq: i64) -> Detail {
        Detail {
            notify: "asrmessage_notify",
            question: format!("q{seq}"),
            question_index: seq,
            speak_ms: 1,
            play_ms: 0,
            keyword: None,
            answer_id: Some("u".into()),
            answer_text: None,
            answer_content: None,
            word_class: None,
            answer_action: None,
            score: 1,
            sequence: seq,
            asr_elapse: None,
            gender: None,
            tags: vec![],
            decision_us: Some(3),
            at_ms: 0,
            ..Detail::default()
        }
    }

    fn enter(id: &str) -> EnterLine {
        EnterLine {
            callid: id.into(),
            task_id: "t".into(),
            user_id: "u".into(),
            group_id: 1,
            recycle_limit: 0,
            number_id: 0,
            number: "1".into(),
            attempt: 1,
            caller_number: String::new(),
            at_ms: 0,
        }
    }

    #[tokio::test]
    async fn open_calls_are_recovered_and_done_calls_dropped() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (j, rec) = Journal::open(dir.path(), "n1", Durability::Fsync).unwrap();
            assert!(rec.is_empty());
            for id in ["a", "b"] {
                let mut buf = Vec::new();
                enter_line(&mut buf, &enter(id));
                turn_line(&mut buf, id, &detail(1));
                j.append(buf, Some(id.into())).await.unwrap();
            }
            let mut buf = Vec::new();
            turn_line(&mut buf, "a", &detail(2));
            j.append(buf, None).await.unwrap();
            j.done("b".into());
            // A crash mid-write leaves a torn last line.
            j.append(b"{\"k\":\"turn\",\"callid\":\"a\",\"d\":{tor".to_vec(), None).await.unwrap();
        }
        let (_j, rec) = Journal::open(dir.path(), "n1", Durability::Write).unwrap();
        assert_eq!(rec.len(), 1);
        assert_eq!(rec[0].enter.callid, "a");
        assert_eq!(rec[0].details.iter().map(|d| d.sequence).collect::<Vec<_>>(), vec![1, 2]);
        assert!(rec[0].leave.is_none());
    }

    #[tokio::test]
    async fn finished_segments_are_deleted() {
        let dir = tempfile::tempdir().unwrap();
        {
            let (j, _) = Journal::open(dir.path(), "n", Durability::Fsync).unwrap();
            let mut buf = Vec::new();
            enter_line(&mut buf, &enter("a"));
            j.append(buf, Some("a".into())).await.unwrap();
            j.done("a".into());
            j.append(Vec::new(), None).await.unwrap();
        }
        let (j, rec) = Journal::open(dir.path(), "n", Durability::Fsync).unwrap();
        assert!(rec.is_empty());
        j.append(Vec::new(), None).await.unwrap();
        let segs = list_segments(dir.path(), "n").unwrap();
        assert_eq!(segs.keys().copied().collect::<Vec<_>>(), vec![2], "segment 1 held only a finished call");
    }
}
