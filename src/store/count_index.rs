//! In-memory count index of big tasks' records, for the totals of
//! `query_done_task_phones` filters that combine ranges.
//!
//! A total over score ranges *and* talk time *and* rounds (with or without
//! a date window) has no count table to sum: per-column tables can't be
//! combined and a table over the combinations has as many rows as records.
//! In the database it is a count of every index entry in the window (a
//! month of a 1M-record task: 333,000 entries, 50–140 ms on PostgreSQL).
//! Here the task's records are four numbers each (24 bytes), sorted by
//! call date, counted in well under a millisecond.
//!
//! Correctness rests on records being insert-only (`read_at` is the one
//! column ever updated, and no filter reads it) and on `record_counts`
//! being written in the records' own transaction: an index holding `n` of
//! the task's committed records is exactly the task's records when a
//! `record_counts` total read after taking the index is `n`. Every use
//! takes the index, then reads that total ([`CountIndex::view`]).
//!
//! The index follows this process's own writes: each records transaction
//! registers its records before it commits and adds them when it has
//! committed ([`CountIndex::begin_writes`]), so a campaign run by this node
//! stays indexed. A build reads one snapshot and then asks the same
//! snapshot which of the registered writes it already holds, so a write
//! committing while the build runs is counted exactly once. Writes of
//! other nodes make the totals differ: that task is counted in SQL and
//! rebuilt in the background, at most once per [`REBUILD_EVERY`].

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use sqlx::{AnyPool, Row};

use super::api::RecordFilter;
use super::StoreError;

/// A task whose index went stale is rebuilt at most this often.
pub const REBUILD_EVERY: Duration = Duration::from_secs(30);

/// After a failed build (an odd value, a database error) the task is
/// counted in SQL for this long before the next try.
const RETRY_AFTER: Duration = Duration::from_secs(300);

/// One record, as the range filters see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fact {
    /// `calldate` as the number its digits spell (`YYYYMMDDHHMMSS`): the
    /// same order as the strings the SQL filter compares.
    calldate: u64,
    score: i32,
    bill: i32,
    rounds: i32,
}

/// Records written since the sorted part was last rebuilt are kept apart,
/// unsorted, up to this many: adding one is a push, not a move of the whole
/// sorted array (24 MB at 1M records), and a reader copies at most this
/// many (~100 kB) with its view.
const RECENT_MAX: usize = 4096;

/// The records of one task: a sorted part shared with readers, and the
/// few written since.
#[derive(Debug, Default, Clone)]
pub struct TaskFacts {
    /// Sorted by call date; replaced, never changed, once shared.
    sorted: Arc<Vec<Fact>>,
    /// Added by this process's writes since, in no order.
    recent: Vec<Fact>,
}

impl TaskFacts {
    fn from_vec(mut facts: Vec<Fact>) -> TaskFacts {
        facts.sort_unstable_by_key(|x| x.calldate);
        facts.shrink_to_fit();
        TaskFacts { sorted: Arc::new(facts), recent: Vec::new() }
    }

    /// Number of records indexed.
    pub fn len(&self) -> usize {
        self.sorted.len() + self.recent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Add one record; past [`RECENT_MAX`] recent ones, merge them into a
    /// new sorted part (readers keep the old one as long as they need it).
    fn add(&mut self, f: Fact) {
        self.recent.push(f);
        if self.recent.len() >= RECENT_MAX {
            let mut recent = std::mem::take(&mut self.recent);
            recent.sort_unstable_by_key(|x| x.calldate);
            let old = &self.sorted;
            let mut merged = Vec::with_capacity(old.len() + recent.len());
            let (mut i, mut j) = (0, 0);
            while i < old.len() && j < recent.len() {
                if old[i].calldate <= recent[j].calldate {
                    merged.push(old[i]);
                    i += 1;
                } else {
                    merged.push(recent[j]);
                    j += 1;
                }
            }
            merged.extend_from_slice(&old[i..]);
            merged.extend_from_slice(&recent[j..]);
            self.sorted = Arc::new(merged);
        }
    }

    /// How many records match `f`'s score ranges, talk time, rounds and
    /// date window (the filters this index answers; see [`answerable`]).
    /// `None` when a date bound is not `YYYY-MM-DD HH:MM:SS`, whose string
    /// order this index can't reproduce.
    pub fn count(&self, f: &RecordFilter) -> Option<i64> {
        let lo = match &f.start_at {
            Some(s) => pack_datetime(s)?,
            None => 0,
        };
        let hi = match &f.end_at {
            Some(s) => pack_datetime(s)?,
            None => u64::MAX,
        };
        let a = self.sorted.partition_point(|x| x.calldate < lo);
        let b = self.sorted.partition_point(|x| x.calldate <= hi).max(a);
        // Branch-free tests (one subtraction and compare per range): with
        // real data the outcomes are random, and mispredicted branches cost
        // more than the arithmetic (1M records of the API bench counted
        // with `&&`: 12–20 ms; like this: 2.5–6.5 ms).
        let bill = Span::new(f.bill_ms);
        let rounds = Span::new(f.rounds);
        let levels: Vec<Span> = f.levels.iter().map(|r| Span::new(Some(*r))).collect();
        let matches = |x: &Fact| -> usize {
            let score = i64::from(x.score);
            let level = levels.is_empty() | levels.iter().fold(false, |acc, l| acc | l.holds(score));
            usize::from(bill.holds(i64::from(x.bill)) & rounds.holds(i64::from(x.rounds)) & level)
        };
        let n = self.sorted[a..b].iter().map(matches).sum::<usize>()
            + self.recent.iter().filter(|x| x.calldate >= lo && x.calldate <= hi).map(matches).sum::<usize>();
        i64::try_from(n).ok()
    }
}

/// A range `[lo, hi)` tested with one compare: `v - lo` (wrapping) is below
/// the width exactly when `lo <= v < hi`.
#[derive(Clone, Copy)]
struct Span {
    lo: i64,
    width: u64,
}

impl Span {
    /// `None`: every value.
    fn new(r: Option<(i64, i64)>) -> Span {
        match r {
            Some((lo, hi)) => Span { lo, width: if hi > lo { hi.wrapping_sub(lo) as u64 } else { 0 } },
            None => Span { lo: i64::MIN, width: u64::MAX },
        }
    }

    fn holds(self, v: i64) -> bool {
        (v.wrapping_sub(self.lo) as u64) < self.width
    }
}

/// Whether [`TaskFacts::count`] can answer `f`: no id, keyword or tags.
pub fn answerable(f: &RecordFilter) -> bool {
    f.id.is_none() && f.keyword.is_none() && f.tags.is_empty()
}

/// `YYYY-MM-DD HH:MM:SS` as the number its digits spell; `None` for any
/// other shape. For strings of this one shape, string order and number
/// order agree, so the index compares what the SQL compares.
pub fn pack_datetime(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 19 {
        return None;
    }
    let mut v: u64 = 0;
    for (i, c) in b.iter().enumerate() {
        match (i, c) {
            (4 | 7, b'-') | (10, b' ') | (13 | 16, b':') => {}
            (4 | 7 | 10 | 13 | 16, _) => return None,
            (_, b'0'..=b'9') => v = v * 10 + u64::from(c - b'0'),
            _ => return None,
        }
    }
    Some(v)
}

enum Slot {
    Ready {
        facts: TaskFacts,
        built: Instant,
        used: Instant,
    },
    Building,
    /// Failed or too big for the budget: counted in SQL until then.
    Skip {
        until: Instant,
    },
}

/// What the index knows of one task.
#[derive(Default)]
struct TaskEntry {
    slot: Option<Slot>,
    /// This process's writes of the task's records between registration
    /// (before their transaction commits) and completion, by record id
    /// (a count: the same call may be written twice at once).
    inflight: HashMap<String, u32>,
    /// Writes completed while a build ran: added to its result unless its
    /// snapshot already held them.
    during_build: Vec<(String, Option<Fact>)>,
    /// Writes still in flight that the last build's snapshot already held:
    /// not added again when they complete.
    seen: HashSet<String>,
}

impl TaskEntry {
    fn idle(&self) -> bool {
        self.slot.is_none() && self.inflight.is_empty()
    }
}

/// A build's result: the snapshot's records, and which of the writes in
/// flight or completed during the build (`checked`) it already held.
pub struct Built {
    pub facts: TaskFacts,
    pub checked: HashSet<String>,
    pub visible: HashSet<String>,
}

/// What [`CountIndex::lookup`] found.
pub enum Lookup {
    /// An index that holds `total` records (a view: the shared sorted part
    /// and a copy of the few recent records). Exact only if `total` was read
    /// after the view was taken: see [`CountIndex::view`].
    Hit(TaskFacts),
    /// Count in SQL; `build` says the caller should start a build.
    Miss { build: bool },
}

/// The per-process index of tasks' records, within a budget of rows.
///
/// Kept current by this process's own writes ([`CountIndex::begin_writes`]
/// around every records transaction), so a task written by one node stays
/// indexed while its campaign runs; writes of other nodes make the total
/// differ and the task is rebuilt.
#[derive(Default)]
pub struct CountIndex {
    /// Rows all tasks' indexes may hold together; 0 disables the index.
    budget: AtomicUsize,
    /// Tasks with fewer records are counted in SQL (fast enough there).
    min_rows: AtomicUsize,
    tasks: Mutex<HashMap<String, TaskEntry>>,
    /// Totals answered from an index, for tests and benches.
    hits: AtomicU64,
}

impl std::fmt::Debug for CountIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountIndex")
            .field("budget", &self.budget.load(Ordering::Relaxed))
            .field("min_rows", &self.min_rows.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Writes registered with [`CountIndex::begin_writes`]; completed with
/// [`WriteGuard::finish`], or abandoned (an error, a cancelled future) when
/// dropped: an abandoned write that did commit is missing from the index,
/// whose total then differs from the task's, so it is not used.
pub struct WriteGuard<'a> {
    index: &'a CountIndex,
    /// (task, record id, fact) per call, `None` for a call without record.
    writes: Vec<Option<(String, String, Option<Fact>)>>,
}

impl WriteGuard<'_> {
    /// The calls committed; `written[i]` says whether call `i` was new.
    pub fn finish(mut self, written: &[bool]) {
        let writes = std::mem::take(&mut self.writes);
        self.index.complete(writes, written);
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        if !self.writes.is_empty() {
            let writes = std::mem::take(&mut self.writes);
            self.index.complete(writes, &[]);
        }
    }
}

impl CountIndex {
    /// `budget` rows in all (24 bytes each; 0 disables); tasks with fewer
    /// than `min_rows` records are not indexed.
    pub fn configure(&self, budget: usize, min_rows: usize) {
        self.budget.store(budget, Ordering::Relaxed);
        self.min_rows.store(min_rows, Ordering::Relaxed);
        if budget == 0 {
            self.lock().clear();
        }
    }

    pub fn enabled(&self) -> bool {
        self.budget.load(Ordering::Relaxed) > 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, TaskEntry>> {
        // A panic while holding the lock can only have left an entry half
        // updated, and a wrong entry is caught by the total check; carry on.
        self.tasks.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Register writes of records (task, record id, calldate, score, bill,
    /// rounds) before their transaction commits; `None` for calls without
    /// a record. Nothing to do (and `None`) while the index is off.
    pub fn begin_writes<'a>(
        &'a self,
        calls: impl Iterator<Item = Option<(&'a str, &'a str, &'a str, i64, i64, i64)>>,
    ) -> Option<WriteGuard<'a>> {
        if !self.enabled() {
            return None;
        }
        let writes: Vec<_> = calls
            .map(|c| {
                c.map(|(task, id, calldate, score, bill, rounds)| {
                    let fact = (|| {
                        Some(Fact {
                            calldate: pack_datetime(calldate)?,
                            score: i32::try_from(score).ok()?,
                            bill: i32::try_from(bill).ok()?,
                            rounds: i32::try_from(rounds).ok()?,
                        })
                    })();
                    (task.to_string(), id.to_string(), fact)
                })
            })
            .collect();
        let mut tasks = self.lock();
        for (task, id, _) in writes.iter().flatten() {
            *tasks.entry(task.clone()).or_default().inflight.entry(id.clone()).or_default() += 1;
        }
        Some(WriteGuard { index: self, writes })
    }

    fn complete(&self, writes: Vec<Option<(String, String, Option<Fact>)>>, written: &[bool]) {
        let mut tasks = self.lock();
        for (i, w) in writes.into_iter().enumerate() {
            let Some((task, id, fact)) = w else { continue };
            let Some(e) = tasks.get_mut(&task) else { continue };
            if let Some(n) = e.inflight.get_mut(&id) {
                *n -= 1;
                if *n == 0 {
                    e.inflight.remove(&id);
                }
            }
            let already = e.seen.remove(&id);
            if written.get(i).copied().unwrap_or(false) {
                match (&mut e.slot, fact) {
                    (Some(Slot::Ready { .. }), _) if already => {}
                    (Some(Slot::Ready { facts, .. }), Some(f)) => facts.add(f),
                    // A record the index can't hold: count in SQL.
                    (Some(Slot::Ready { .. }), None) => {
                        e.slot = Some(Slot::Skip { until: Instant::now() + RETRY_AFTER })
                    }
                    (Some(Slot::Building), fact) => e.during_build.push((id, fact)),
                    (Some(Slot::Skip { .. }) | None, _) => {}
                }
            }
            if e.idle() {
                tasks.remove(&task);
            }
        }
    }

    /// Record ids of `task` whose writes are in flight or completed during
    /// the running build: the build asks its snapshot which it holds.
    pub fn candidates(&self, task: &str) -> Vec<String> {
        let tasks = self.lock();
        let Some(e) = tasks.get(task) else { return Vec::new() };
        e.inflight.keys().chain(e.during_build.iter().map(|(id, _)| id)).cloned().collect()
    }

    /// The current index of `task`, to compare with a total read *after*
    /// taking it: every record in it had committed before that read, so if
    /// the read total equals its length (records being insert-only), the
    /// two are the same set of records. (A total read before taking the
    /// view could equal it by accident: this node's newer record in, another
    /// node's older one out.)
    pub fn view(&self, task: &str) -> Option<TaskFacts> {
        match self.lock().get(task).and_then(|e| e.slot.as_ref()) {
            Some(Slot::Ready { facts, .. }) => Some(facts.clone()),
            Some(Slot::Building | Slot::Skip { .. }) | None => None,
        }
    }

    /// A total was answered from `task`'s view.
    pub fn hit(&self, task: &str) {
        self.hits.fetch_add(1, Ordering::Relaxed);
        if let Some(Some(Slot::Ready { used, .. })) = self.lock().get_mut(task).map(|e| e.slot.as_mut()) {
            *used = Instant::now();
        }
    }

    /// Whether `task`'s index holds exactly `total` records, and if not,
    /// whether the caller should start a build.
    pub fn lookup(&self, task: &str, total: i64) -> Lookup {
        let budget = self.budget.load(Ordering::Relaxed);
        let min_rows = self.min_rows.load(Ordering::Relaxed);
        let Ok(rows) = usize::try_from(total) else {
            return Lookup::Miss { build: false };
        };
        if budget == 0 || rows < min_rows.max(1) || rows > budget {
            return Lookup::Miss { build: false };
        }
        let now = Instant::now();
        let mut tasks = self.lock();
        let e = tasks.entry(task.to_string()).or_default();
        match &mut e.slot {
            Some(Slot::Ready { facts, used, .. }) if facts.len() == rows => {
                *used = now;
                return Lookup::Hit(facts.clone());
            }
            Some(Slot::Ready { built, .. }) if now.duration_since(*built) < REBUILD_EVERY => {
                return Lookup::Miss { build: false };
            }
            Some(Slot::Building) => return Lookup::Miss { build: false },
            Some(Slot::Skip { until }) if now < *until => return Lookup::Miss { build: false },
            Some(_) | None => {}
        }
        // A stale index is dropped now; the new one takes its room.
        e.slot = Some(Slot::Building);
        e.during_build.clear();
        Lookup::Miss { build: true }
    }

    /// A build [`CountIndex::lookup`] asked for will not run (its request
    /// went away first): free the slot for the next request to build.
    pub fn abandon(&self, task: &str) {
        let mut tasks = self.lock();
        if let Some(e) = tasks.get_mut(task) {
            if matches!(e.slot, Some(Slot::Building)) {
                e.slot = None;
                e.during_build.clear();
            }
            if e.idle() {
                tasks.remove(task);
            }
        }
    }

    /// Store a finished build (or remember its failure), evicting the
    /// least recently used indexes beyond the budget.
    pub fn finish(&self, task: &str, built: Result<Built, StoreError>) {
        let now = Instant::now();
        let budget = self.budget.load(Ordering::Relaxed);
        let mut tasks = self.lock();
        let skip = Slot::Skip { until: now + RETRY_AFTER };
        let Built { facts, checked, visible } = match built {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(task, error = %e, "record count index not built; counting in SQL");
                tasks.entry(task.to_string()).or_default().slot = Some(skip);
                return;
            }
        };
        let Some(e) = tasks.get_mut(task) else { return };
        if !matches!(e.slot, Some(Slot::Building)) {
            // Turned off and on again meanwhile: this build is not the
            // entry's; leave it.
            return;
        }
        // Writes completed during the build: added unless the snapshot
        // held them; writes still in flight that it held: not added later.
        let mut odd = false;
        let mut facts = facts;
        for (id, fact) in std::mem::take(&mut e.during_build) {
            if checked.contains(&id) && visible.contains(&id) {
                continue;
            }
            match fact {
                Some(f) => facts.add(f),
                None => odd = true,
            }
        }
        e.seen = e.inflight.keys().filter(|id| visible.contains(*id)).cloned().collect();
        if odd || facts.len() > budget {
            e.slot = Some(skip);
            return;
        }
        e.slot = None;
        let mut used: usize = tasks
            .values()
            .map(|e| match &e.slot {
                Some(Slot::Ready { facts, .. }) => facts.len(),
                Some(Slot::Building | Slot::Skip { .. }) | None => 0,
            })
            .sum();
        while used + facts.len() > budget {
            let oldest = tasks
                .iter()
                .filter_map(|(k, e)| match &e.slot {
                    Some(Slot::Ready { used, facts, .. }) => Some((*used, k.clone(), facts.len())),
                    Some(Slot::Building | Slot::Skip { .. }) | None => None,
                })
                .min();
            let Some((_, k, n)) = oldest else { break };
            if let Some(e) = tasks.get_mut(&k) {
                e.slot = None;
            }
            used -= n;
        }
        tasks.retain(|k, e| k == task || !e.idle());
        tasks.entry(task.to_string()).or_default().slot = Some(Slot::Ready { facts, built: now, used: now });
    }

    /// Totals answered from an index so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Whether `task` has an index (of any age); for tests and benches.
    pub fn is_ready(&self, task: &str) -> bool {
        matches!(self.lock().get(task).and_then(|e| e.slot.as_ref()), Some(Slot::Ready { .. }))
    }
}

/// The statements a build runs, in the pool's dialect.
pub struct BuildSql {
    /// `BEGIN` of a transaction whose reads share one snapshot.
    pub begin: &'static str,
    /// `calldate, score, bill, rounds` of one task's records.
    pub scan: String,
    /// PostgreSQL's `$n` placeholders instead of `?`.
    pub numbered: bool,
}

/// Read `task`'s records into an index, and ask the same snapshot which of
/// the writes this process has in flight (or completed meanwhile) it holds.
pub async fn build(pool: &AnyPool, sql: &BuildSql, task: &str, index: &CountIndex) -> Result<Built, StoreError> {
    let mut tx = pool.begin_with(sql.begin).await?;
    let mut facts = Vec::new();
    {
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql.scan.clone())).bind(task).fetch(&mut *tx);
        while let Some(r) = rows.try_next().await? {
            let calldate: String = r.try_get(0)?;
            let odd = |what: &str| StoreError::Invalid(format!("record of task {task}: {what} not indexable"));
            let int = |i: usize, what: &str| -> Result<i32, StoreError> {
                let v: i64 = r.try_get(i)?;
                i32::try_from(v).map_err(|_| odd(what))
            };
            facts.push(Fact {
                calldate: pack_datetime(&calldate).ok_or_else(|| odd("calldate"))?,
                score: int(1, "score")?,
                bill: int(2, "bill")?,
                rounds: int(3, "rounds")?,
            });
        }
    }
    // Every write that could have committed before the snapshot registered
    // before it (registration precedes the commit), so it is among these.
    let checked: HashSet<String> = index.candidates(task).into_iter().collect();
    let mut visible = HashSet::new();
    let ids: Vec<&String> = checked.iter().collect();
    for chunk in ids.chunks(500) {
        let (first, ids) = if sql.numbered {
            ("$1".to_string(), (2..chunk.len() + 2).map(|i| format!("${i}")).collect::<Vec<_>>().join(", "))
        } else {
            ("?".to_string(), super::api::placeholders(chunk.len()))
        };
        let q = format!("SELECT id FROM records WHERE task_id = {first} AND id IN ({ids})");
        let mut query = sqlx::query(sqlx::AssertSqlSafe(q)).bind(task);
        for id in chunk {
            query = query.bind((*id).clone());
        }
        for r in query.fetch_all(&mut *tx).await? {
            visible.insert(r.try_get::<String, _>(0)?);
        }
    }
    tx.rollback().await?;
    Ok(Built { facts: TaskFacts::from_vec(facts), checked, visible })
}

/// Build `task`'s index off the request path and hand it to `index` (if
/// the store still exists). The build only reads; a build cut short by the
/// runtime stopping leaves nothing behind.
pub fn spawn_build(pool: AnyPool, sql: BuildSql, task: String, index: Weak<CountIndex>) {
    tokio::spawn(async move {
        let started = Instant::now();
        let built = match index.upgrade() {
            Some(ix) => build(&pool, &sql, &task, &ix).await,
            None => return,
        };
        if let Ok(b) = &built {
            tracing::debug!(task = %task, rows = b.facts.len(), ms = started.elapsed().as_millis() as u64, "record count index built");
        }
        if let Some(index) = index.upgrade() {
            index.finish(&task, built);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(rows: &[(&str, i32, i32, i32)]) -> TaskFacts {
        TaskFacts::from_vec(
            rows.iter()
                .map(|(d, s, b, r)| Fact { calldate: pack_datetime(d).expect("date"), score: *s, bill: *b, rounds: *r })
                .collect(),
        )
    }

    #[test]
    fn packed_dates_keep_string_order_and_refuse_other_shapes() {
        let dates = ["2019-12-31 23:59:59", "2020-01-01 00:00:00", "2020-01-01 00:00:01", "2020-10-01 09:00:00"];
        for w in dates.windows(2) {
            assert!(pack_datetime(w[0]) < pack_datetime(w[1]), "{w:?}");
        }
        for bad in
            ["2020-01-01", "2020-01-01T00:00:00", "2020-01-01 00:00:0x", "2020/01/01 00:00:00", "２020-01-01 00:00:00"]
        {
            assert_eq!(pack_datetime(bad), None, "{bad}");
        }
    }

    #[test]
    fn counts_match_a_plain_scan_for_every_combination() {
        let mut rows = Vec::new();
        let mut dates = Vec::new();
        for i in 0..400_i32 {
            dates.push(format!("2020-0{}-{:02} 1{}:00:00", 1 + i % 3, 1 + i % 28, i % 10));
        }
        for (i, d) in dates.iter().enumerate() {
            let i = i as i32;
            rows.push((d.as_str(), (i * 37) % 100, (i * 1_013) % 90_000, i % 7));
        }
        let index = facts(&rows);
        let windows = [
            (None, None),
            (Some("2020-02-01 00:00:00"), Some("2020-02-28 23:59:59")),
            (Some("2020-01-05 13:00:00"), None),
            (None, Some("2020-01-05 13:00:00")),
            (Some("2020-03-01 00:00:00"), Some("2020-01-01 00:00:00")),
        ];
        let levels = [vec![], vec![(10, 40)], vec![(0, 20), (60, 100)]];
        let bills = [None, Some((0, 30_000)), Some((10_000, 60_000))];
        let roundss = [None, Some((1, 4)), Some((6, 7))];
        let mut checked = 0;
        for (s, e) in windows {
            for l in &levels {
                for b in bills {
                    for r in roundss {
                        let f = RecordFilter {
                            task_id: "t".into(),
                            levels: l.clone(),
                            bill_ms: b,
                            rounds: r,
                            start_at: s.map(String::from),
                            end_at: e.map(String::from),
                            ..RecordFilter::default()
                        };
                        let want = rows
                            .iter()
                            .filter(|(d, sc, bi, ro)| {
                                s.is_none_or(|s| *d >= s)
                                    && e.is_none_or(|e| *d <= e)
                                    && (l.is_empty()
                                        || l.iter().any(|(a, z)| i64::from(*sc) >= *a && i64::from(*sc) < *z))
                                    && b.is_none_or(|(a, z)| i64::from(*bi) >= a && i64::from(*bi) < z)
                                    && r.is_none_or(|(a, z)| i64::from(*ro) >= a && i64::from(*ro) < z)
                            })
                            .count() as i64;
                        assert_eq!(index.count(&f), Some(want), "{f:?}");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 5 * 3 * 3 * 3);
        let f = RecordFilter { start_at: Some("2020-02-01".into()), ..RecordFilter::default() };
        assert_eq!(index.count(&f), None, "a bound of another shape is left to SQL");
    }

    #[test]
    fn lookups_hit_only_at_the_indexed_total_and_stay_within_the_budget() {
        let index = CountIndex::default();
        assert!(matches!(index.lookup("a", 10), Lookup::Miss { build: false }), "disabled by default");
        index.configure(25, 5);
        assert!(matches!(index.lookup("a", 4), Lookup::Miss { build: false }), "too small to index");
        assert!(matches!(index.lookup("a", 26), Lookup::Miss { build: false }), "over the budget");
        assert!(matches!(index.lookup("a", 10), Lookup::Miss { build: true }));
        assert!(matches!(index.lookup("a", 10), Lookup::Miss { build: false }), "one build at a time");
        let ten = || Built {
            facts: facts(&[("2020-01-01 00:00:00", 1, 1, 1); 10]),
            checked: HashSet::new(),
            visible: HashSet::new(),
        };
        assert!(index.view("a").is_none(), "no view while building");
        index.finish("a", Ok(ten()));
        assert!(matches!(index.lookup("a", 10), Lookup::Hit(_)));
        assert_eq!(index.view("a").map(|v| v.len()), Some(10));
        assert_eq!(index.hits(), 0);
        index.hit("a");
        assert_eq!(index.hits(), 1);
        assert!(matches!(index.lookup("a", 11), Lookup::Miss { build: false }), "stale, rebuilt later");
        // Two more tasks of 10: the least recently used one goes.
        assert!(matches!(index.lookup("b", 10), Lookup::Miss { build: true }));
        index.finish("b", Ok(ten()));
        assert!(matches!(index.lookup("b", 10), Lookup::Hit(_)));
        assert!(matches!(index.lookup("c", 10), Lookup::Miss { build: true }));
        index.finish("c", Ok(ten()));
        assert!(!index.is_ready("a") && index.is_ready("b") && index.is_ready("c"));
        // A build whose request went away frees the slot for the next one.
        assert!(matches!(index.lookup("e", 10), Lookup::Miss { build: true }));
        index.abandon("e");
        assert!(matches!(index.lookup("e", 10), Lookup::Miss { build: true }));
        index.abandon("e");
        // A failed build is not retried at once.
        assert!(matches!(index.lookup("d", 10), Lookup::Miss { build: true }));
        index.finish("d", Err(StoreError::Invalid("odd".into())));
        assert!(matches!(index.lookup("d", 10), Lookup::Miss { build: false }));
    }

    #[test]
    fn writes_around_a_build_are_counted_once() {
        let index = CountIndex::default();
        index.configure(1_000, 1);
        let rec = |id: &'static str| Some(("t", id, "2020-01-02 00:00:00", 5, 1_000, 2));
        // a: committed before the snapshot, completes after the build
        // (in flight, visible). b: in flight, committed after the snapshot.
        // c: completes during the build, visible. d: completes during the
        // build, not visible. e: registered after the build asked.
        let ga = index.begin_writes([rec("a")].into_iter()).expect("on");
        let gb = index.begin_writes([rec("b")].into_iter()).expect("on");
        let gc = index.begin_writes([rec("c")].into_iter()).expect("on");
        let gd = index.begin_writes([rec("d"), None].into_iter()).expect("on");
        assert!(matches!(index.lookup("t", 3), Lookup::Miss { build: true }));
        gc.finish(&[true]);
        gd.finish(&[true, false]);
        let mut checked: Vec<String> = index.candidates("t");
        checked.sort();
        assert_eq!(checked, ["a", "b", "c", "d"]);
        let ge = index.begin_writes([rec("e")].into_iter()).expect("on");
        let snapshot = facts(&[
            ("2020-01-01 00:00:00", 1, 1, 1),
            ("2020-01-01 00:00:01", 1, 1, 1),
            ("2020-01-03 00:00:00", 9, 9, 9),
        ]);
        // The snapshot's 3 rows include a and c (as stand-ins above).
        let visible: HashSet<String> = ["a", "c"].iter().map(|s| s.to_string()).collect();
        index.finish("t", Ok(Built { facts: snapshot, checked: checked.into_iter().collect(), visible }));
        // 3 + d.
        assert!(matches!(index.lookup("t", 4), Lookup::Hit(_)));
        ga.finish(&[true]); // already in the snapshot: not added again
        assert!(matches!(index.lookup("t", 4), Lookup::Hit(_)));
        gb.finish(&[true]);
        ge.finish(&[true]);
        let Lookup::Hit(f) = index.lookup("t", 6) else { panic!("b and e not added") };
        let all = RecordFilter::default();
        assert_eq!(f.count(&all), Some(6));
        let day2 = RecordFilter {
            start_at: Some("2020-01-02 00:00:00".into()),
            end_at: Some("2020-01-02 23:59:59".into()),
            ..RecordFilter::default()
        };
        assert_eq!(f.count(&day2), Some(3), "d, b and e, in date order among the snapshot's rows");
        // A write that fails (dropped guard) adds nothing; a duplicate neither.
        drop(index.begin_writes([rec("f")].into_iter()));
        index.begin_writes([rec("g")].into_iter()).expect("on").finish(&[false]);
        assert!(matches!(index.lookup("t", 6), Lookup::Hit(_)));
        assert!(index.lock().get("t").is_some_and(|e| e.inflight.is_empty() && e.seen.is_empty()));
    }

    #[test]
    fn records_added_one_by_one_count_like_a_fresh_build() {
        // 10,000 records: 1,000 built, the rest added (two merges of the
        // recent part into a new sorted one, 904 left recent).
        let rows: Vec<Fact> = (0..10_000u64)
            .map(|i| Fact {
                calldate: 20200101000000 + (i * 7_919) % 1_000_000,
                score: (i % 101) as i32,
                bill: ((i * 31) % 120_000) as i32,
                rounds: (i % 9) as i32,
            })
            .collect();
        let mut grown = TaskFacts::from_vec(rows[..1_000].to_vec());
        let before = grown.clone();
        for f in &rows[1_000..] {
            grown.add(*f);
        }
        assert_eq!(grown.recent.len(), 9_000 % RECENT_MAX);
        assert!(grown.sorted.windows(2).all(|w| w[0].calldate <= w[1].calldate));
        assert_eq!(before.len(), 1_000, "a view taken before is not changed by later adds");
        let fresh = TaskFacts::from_vec(rows.clone());
        for (levels, bill_ms, rounds, start, end) in [
            (vec![], None, None, None, None),
            (
                vec![(10, 50)],
                Some((1_000, 60_000)),
                Some((2, 7)),
                Some("2020-01-01 00:10:00"),
                Some("2020-01-01 00:50:00"),
            ),
            (vec![(0, 5), (90, 101)], None, Some((0, 1)), None, Some("2020-01-01 00:30:00")),
        ] {
            let f = RecordFilter {
                levels,
                bill_ms,
                rounds,
                start_at: start.map(String::from),
                end_at: end.map(String::from),
                ..RecordFilter::default()
            };
            assert_eq!(grown.count(&f), fresh.count(&f), "{f:?}");
        }
        assert_eq!(grown.count(&RecordFilter::default()), Some(10_000));
    }
}
