//! Durable local spool for finalized calls the database could not take.
//!
//! Append-only JSON-lines segments `<dir>/seg-<n>.jsonl`; every append is
//! fsynced before the call actor is acknowledged, so an acknowledged call is
//! on disk even if the process dies the next instant. A segment is removed
//! only after every entry in it was written to the database; replaying an
//! entry twice is harmless because `write_call` is idempotent per call id.
//! A torn last line (crash mid-append) was never acknowledged and is skipped.
//!
//! Entries the database refuses for good (a constraint violation, not an
//! outage) go to `<dir>/rejected.jsonl` instead of blocking the spool.
//!
//! One process owns a spool directory at a time (an exclusive lock on
//! `<dir>/LOCK`, released by the OS if the process dies): two daemons
//! draining one spool would write a number's attempts out of order.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::store::CallWrite;

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("spool entry cannot be encoded: {0}")]
    Encode(#[from] serde_json::Error),
    #[error("spool lock poisoned")]
    Poisoned,
    #[error("spool {0} is in use by another process")]
    InUse(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SpoolError + '_ {
    move |source| SpoolError::Io { path: path.display().to_string(), source }
}

/// One spooled call.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SpoolEntry {
    /// Entry format version.
    pub v: u32,
    pub spooled_at: String,
    pub call: CallWrite,
}

struct Active {
    file: File,
    path: PathBuf,
}

struct Inner {
    active: Option<Active>,
    next_seq: u64,
}

/// The spool directory. Cheap to share (`Arc`); appends are serialized.
pub struct Spool {
    dir: PathBuf,
    inner: Mutex<Inner>,
    len: Arc<AtomicU64>,
    /// Held for the spool's lifetime.
    _lock: File,
}

const REJECTED: &str = "rejected.jsonl";

fn seg_seq(p: &Path) -> Option<u64> {
    let name = p.file_name()?.to_str()?;
    name.strip_prefix("seg-")?.strip_suffix(".jsonl")?.parse().ok()
}

fn sync_dir(dir: &Path) -> Result<(), SpoolError> {
    // A new or removed file is durable only once its directory is.
    File::open(dir).and_then(|d| d.sync_all()).map_err(io(dir))
}

impl Spool {
    /// Open (creating) the spool; counts what a previous run left behind.
    pub fn open(dir: &Path) -> Result<Spool, SpoolError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let lock_path = dir.join("LOCK");
        let lock =
            OpenOptions::new().create(true).truncate(false).write(true).open(&lock_path).map_err(io(&lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => return Err(SpoolError::InUse(dir.display().to_string())),
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&lock_path)(e)),
        }
        let spool = Spool {
            dir: dir.to_path_buf(),
            inner: Mutex::new(Inner { active: None, next_seq: 0 }),
            len: Arc::new(AtomicU64::new(0)),
            _lock: lock,
        };
        let segs = spool.recount()?;
        let next = segs.last().and_then(|s| seg_seq(s)).map_or(0, |s| s + 1);
        spool.inner.lock().map_err(|_| SpoolError::Poisoned)?.next_seq = next;
        Ok(spool)
    }

    /// Set [`Spool::len`] from the segments on disk (at open, and whenever
    /// the counter and the files disagree); returns the segments.
    pub fn recount(&self) -> Result<Vec<PathBuf>, SpoolError> {
        // Appends hold this lock while they write and count.
        let inner = self.inner.lock().map_err(|_| SpoolError::Poisoned)?;
        let mut segs = self.list()?;
        if let Some(a) = &inner.active {
            segs.push(a.path.clone());
        }
        let mut n = 0;
        for s in &segs {
            n += Self::read_segment(s)?.len() as u64;
        }
        self.len.store(n, Ordering::SeqCst);
        drop(inner);
        segs.sort();
        segs.dedup();
        Ok(segs)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Calls waiting in the spool (the metric).
    pub fn len(&self) -> u64 {
        self.len.load(Ordering::SeqCst)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A shareable view of [`Spool::len`] for a metrics registry.
    pub fn len_gauge(&self) -> Arc<AtomicU64> {
        self.len.clone()
    }

    /// Append and fsync. Blocking: call from `spawn_blocking`.
    pub fn append(&self, call: &CallWrite) -> Result<(), SpoolError> {
        let entry = SpoolEntry { v: 1, spooled_at: crate::store::now_str(), call: call.clone() };
        let mut line = serde_json::to_vec(&entry)?;
        line.push(b'\n');
        let mut inner = self.inner.lock().map_err(|_| SpoolError::Poisoned)?;
        if inner.active.is_none() {
            let path = self.dir.join(format!("seg-{:020}.jsonl", inner.next_seq));
            inner.next_seq += 1;
            let file = OpenOptions::new().create(true).append(true).open(&path).map_err(io(&path))?;
            sync_dir(&self.dir)?;
            inner.active = Some(Active { file, path });
        }
        if let Some(a) = inner.active.as_mut() {
            a.file.write_all(&line).map_err(io(&a.path))?;
            a.file.sync_data().map_err(io(&a.path))?;
        }
        self.len.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    /// Close the segment being appended to, so it can be drained; returns
    /// every closed segment, oldest first.
    pub fn seal(&self) -> Result<Vec<PathBuf>, SpoolError> {
        let mut inner = self.inner.lock().map_err(|_| SpoolError::Poisoned)?;
        inner.active = None;
        drop(inner);
        self.segments()
    }

    fn segments(&self) -> Result<Vec<PathBuf>, SpoolError> {
        let mut out = self.list()?;
        // The open segment is not drained until sealed.
        if let Ok(inner) = self.inner.lock() {
            if let Some(a) = &inner.active {
                out.retain(|p| *p != a.path);
            }
        }
        Ok(out)
    }

    /// Every segment file, oldest first.
    fn list(&self) -> Result<Vec<PathBuf>, SpoolError> {
        let mut segs: Vec<(u64, PathBuf)> = std::fs::read_dir(&self.dir)
            .map_err(io(&self.dir))?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let p = e.path();
                seg_seq(&p).map(|s| (s, p))
            })
            .collect();
        segs.sort();
        Ok(segs.into_iter().map(|(_, p)| p).collect())
    }

    /// The entries of a segment in append order; a torn last line is skipped.
    pub fn read_segment(path: &Path) -> Result<Vec<SpoolEntry>, SpoolError> {
        let f = File::open(path).map_err(io(path))?;
        let mut out = Vec::new();
        for line in BufReader::new(f).lines() {
            let line = line.map_err(io(path))?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<SpoolEntry>(&line) {
                Ok(e) => out.push(e),
                Err(e) => tracing::warn!(segment = %path.display(), "unreadable spool line skipped: {e}"),
            }
        }
        Ok(out)
    }

    /// One entry of a segment is in the database (or rejected).
    pub fn mark_done(&self) {
        let _ = self.len.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| Some(n.saturating_sub(1)));
    }

    /// A fully drained segment goes away.
    pub fn remove_segment(&self, path: &Path) -> Result<(), SpoolError> {
        std::fs::remove_file(path).map_err(io(path))?;
        sync_dir(&self.dir)
    }

    /// Keep a call the database refuses for good, with the reason.
    pub fn reject(&self, call: &CallWrite, reason: &str) -> Result<(), SpoolError> {
        let path = self.dir.join(REJECTED);
        let line = serde_json::json!({ "rejected_at": crate::store::now_str(), "reason": reason, "call": call });
        let mut f = OpenOptions::new().create(true).append(true).open(&path).map_err(io(&path))?;
        f.write_all(format!("{line}\n").as_bytes()).map_err(io(&path))?;
        f.sync_data().map_err(io(&path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(id: &str) -> CallWrite {
        CallWrite { callid: id.into(), task_id: "t".into(), number: "138".into(), ..CallWrite::default() }
    }

    #[test]
    fn appends_survive_reopen_and_torn_lines_are_skipped() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = Spool::open(dir.path()).expect("open");
        s.append(&call("a")).expect("append");
        s.append(&call("b")).expect("append");
        assert_eq!(s.len(), 2);
        drop(s);
        // A crash mid-append leaves half a line.
        let seg = dir.path().join(format!("seg-{:020}.jsonl", 0));
        let mut f = OpenOptions::new().append(true).open(&seg).expect("seg");
        f.write_all(b"{\"v\":1,\"spooled_at\":\"x\",\"call\":{\"callid\":\"c").expect("torn");
        let s = Spool::open(dir.path()).expect("reopen");
        assert_eq!(s.len(), 2);
        s.append(&call("d")).expect("append");
        let segs = s.seal().expect("seal");
        assert_eq!(segs.len(), 2, "a new run appends to a new segment");
        let ids: Vec<String> =
            segs.iter().flat_map(|p| Spool::read_segment(p).expect("read")).map(|e| e.call.callid).collect();
        assert_eq!(ids, vec!["a", "b", "d"]);
        for p in &segs {
            s.remove_segment(p).expect("rm");
        }
        assert!(s.seal().expect("seal").is_empty());
        assert_eq!(s.len(), 3, "the counter is only corrected by a recount");
        assert!(s.recount().expect("recount").is_empty());
        assert_eq!(s.len(), 0);
    }

    #[test]
    fn one_process_per_spool() {
        let dir = tempfile::tempdir().expect("tmp");
        let s = Spool::open(dir.path()).expect("open");
        assert!(matches!(Spool::open(dir.path()), Err(SpoolError::InUse(_))));
        drop(s);
        Spool::open(dir.path()).expect("free again");
    }
}
