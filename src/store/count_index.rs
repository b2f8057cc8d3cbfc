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
//! being written in the records' own transaction: an index built from one
//! snapshot with `n` rows is exactly the task's records while the task's
//! `record_counts` total is still `n`. Every use checks that total first;
//! a task whose total moved (a running campaign, another node writing) is
//! counted in SQL and its index rebuilt in the background, at most once per
//! [`REBUILD_EVERY`].

use std::collections::HashMap;
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

/// The records of one task, sorted by call date.
#[derive(Debug, Default)]
pub struct TaskFacts {
    facts: Vec<Fact>,
}

impl TaskFacts {
    /// Number of records indexed.
    pub fn len(&self) -> usize {
        self.facts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.facts.is_empty()
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
        let a = self.facts.partition_point(|x| x.calldate < lo);
        let b = self.facts.partition_point(|x| x.calldate <= hi).max(a);
        let (bill_lo, bill_hi) = f.bill_ms.unwrap_or((i64::MIN, i64::MAX));
        let (rounds_lo, rounds_hi) = f.rounds.unwrap_or((i64::MIN, i64::MAX));
        let n = self.facts[a..b]
            .iter()
            .filter(|x| {
                let (score, bill, rounds) = (i64::from(x.score), i64::from(x.bill), i64::from(x.rounds));
                bill >= bill_lo
                    && bill < bill_hi
                    && rounds >= rounds_lo
                    && rounds < rounds_hi
                    && (f.levels.is_empty() || f.levels.iter().any(|(l, h)| score >= *l && score < *h))
            })
            .count();
        i64::try_from(n).ok()
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
        facts: Arc<TaskFacts>,
        built: Instant,
        used: Instant,
    },
    Building,
    /// Failed or too big for the budget: counted in SQL until then.
    Skip {
        until: Instant,
    },
}

/// What [`CountIndex::lookup`] found.
pub enum Lookup {
    /// An index that matches the task's current total.
    Hit(Arc<TaskFacts>),
    /// Count in SQL; `build` says the caller should start a build.
    Miss { build: bool },
}

/// The per-process index of tasks' records, within a budget of rows.
#[derive(Default)]
pub struct CountIndex {
    /// Rows all tasks' indexes may hold together; 0 disables the index.
    budget: AtomicUsize,
    /// Tasks with fewer records are counted in SQL (fast enough there).
    min_rows: AtomicUsize,
    slots: Mutex<HashMap<String, Slot>>,
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

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        // A panic while holding the lock can only have left a slot half
        // updated; the slots are a cache, so carry on with them.
        self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The index of `task` if it holds exactly `total` records.
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
        let mut slots = self.lock();
        match slots.get_mut(task) {
            Some(Slot::Ready { facts, used, .. }) if facts.len() == rows => {
                *used = now;
                self.hits.fetch_add(1, Ordering::Relaxed);
                return Lookup::Hit(facts.clone());
            }
            Some(Slot::Ready { built, .. }) if now.duration_since(*built) < REBUILD_EVERY => {
                return Lookup::Miss { build: false };
            }
            Some(Slot::Building) => return Lookup::Miss { build: false },
            Some(Slot::Skip { until }) if now < *until => return Lookup::Miss { build: false },
            Some(_) | None => {}
        }
        // A stale index stays counted against the budget until replaced:
        // drop it now, the new one takes its room.
        slots.insert(task.to_string(), Slot::Building);
        Lookup::Miss { build: true }
    }

    /// Store a finished build (or remember its failure), evicting the
    /// least recently used indexes beyond the budget.
    pub fn finish(&self, task: &str, built: Result<TaskFacts, StoreError>) {
        let now = Instant::now();
        let budget = self.budget.load(Ordering::Relaxed);
        let mut slots = self.lock();
        let facts = match built {
            Ok(f) if f.len() <= budget => f,
            Ok(_) => {
                slots.insert(task.to_string(), Slot::Skip { until: now + RETRY_AFTER });
                return;
            }
            Err(e) => {
                tracing::warn!(task, error = %e, "record count index not built; counting in SQL");
                slots.insert(task.to_string(), Slot::Skip { until: now + RETRY_AFTER });
                return;
            }
        };
        slots.remove(task);
        let mut used: usize = slots
            .values()
            .map(|s| match s {
                Slot::Ready { facts, .. } => facts.len(),
                Slot::Building | Slot::Skip { .. } => 0,
            })
            .sum();
        while used + facts.len() > budget {
            let oldest = slots
                .iter()
                .filter_map(|(k, s)| match s {
                    Slot::Ready { used, facts, .. } => Some((*used, k.clone(), facts.len())),
                    Slot::Building | Slot::Skip { .. } => None,
                })
                .min();
            let Some((_, k, n)) = oldest else { break };
            slots.remove(&k);
            used -= n;
        }
        slots.insert(task.to_string(), Slot::Ready { facts: Arc::new(facts), built: now, used: now });
    }

    /// Totals answered from an index so far.
    pub fn hits(&self) -> u64 {
        self.hits.load(Ordering::Relaxed)
    }

    /// Whether `task` has an index (of any age); for tests and benches.
    pub fn is_ready(&self, task: &str) -> bool {
        matches!(self.lock().get(task), Some(Slot::Ready { .. }))
    }
}

/// Read `task`'s records into an index. `sql` selects `calldate, score,
/// bill, rounds` of one task (placeholders already in the pool's dialect).
pub async fn build(pool: &AnyPool, sql: &str, task: &str) -> Result<TaskFacts, StoreError> {
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).bind(task).fetch(pool);
    let mut facts = Vec::new();
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
    facts.sort_unstable_by_key(|x| x.calldate);
    facts.shrink_to_fit();
    Ok(TaskFacts { facts })
}

/// Build `task`'s index off the request path and hand it to `index` (if
/// the store still exists). The build only reads; a build cut short by the
/// runtime stopping leaves nothing behind.
pub fn spawn_build(pool: AnyPool, sql: String, task: String, index: Weak<CountIndex>) {
    tokio::spawn(async move {
        let started = Instant::now();
        let built = build(&pool, &sql, &task).await;
        if let Ok(f) = &built {
            tracing::debug!(task = %task, rows = f.len(), ms = started.elapsed().as_millis() as u64, "record count index built");
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
        let mut facts: Vec<Fact> = rows
            .iter()
            .map(|(d, s, b, r)| Fact { calldate: pack_datetime(d).expect("date"), score: *s, bill: *b, rounds: *r })
            .collect();
        facts.sort_unstable_by_key(|x| x.calldate);
        TaskFacts { facts }
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
        let ten = || facts(&[("2020-01-01 00:00:00", 1, 1, 1); 10]);
        index.finish("a", Ok(ten()));
        assert!(matches!(index.lookup("a", 10), Lookup::Hit(_)));
        assert!(matches!(index.lookup("a", 11), Lookup::Miss { build: false }), "stale, rebuilt later");
        // Two more tasks of 10: the least recently used one goes.
        assert!(matches!(index.lookup("b", 10), Lookup::Miss { build: true }));
        index.finish("b", Ok(ten()));
        assert!(matches!(index.lookup("b", 10), Lookup::Hit(_)));
        assert!(matches!(index.lookup("c", 10), Lookup::Miss { build: true }));
        index.finish("c", Ok(ten()));
        assert!(!index.is_ready("a") && index.is_ready("b") && index.is_ready("c"));
        // A failed build is not retried at once.
        assert!(matches!(index.lookup("d", 10), Lookup::Miss { build: true }));
        index.finish("d", Err(StoreError::Invalid("odd".into())));
        assert!(matches!(index.lookup("d", 10), Lookup::Miss { build: false }));
    }
}
