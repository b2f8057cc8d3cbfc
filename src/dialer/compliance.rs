//! Compliance rules checked when a number is about to be dialled: blocked
//! prefixes, a per-callee limit across all tasks, and calling hours. Every
//! held-back dial is recorded in `blocked_dials` with its reason.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use super::window::{DialWindow, WindowError};
use crate::store::{Store, StoreError};

/// At most `max_calls` dials to one number within `per_secs`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CalleeLimit {
    pub max_calls: i64,
    pub per_secs: i64,
}

/// The `[compliance]` config section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct ComplianceConfig {
    /// Time zone of `calling_hours` (and the default for dial windows).
    pub timezone: String,
    /// `["08:00", "21:00"]`: no originate outside these hours, for any task.
    pub calling_hours: Option<(String, String)>,
    pub limits: Vec<CalleeLimit>,
    /// Numbers starting with these are never dialled (status 11).
    pub blocked_prefixes: Vec<String>,
}

impl Default for ComplianceConfig {
    fn default() -> Self {
        ComplianceConfig {
            timezone: "Asia/Shanghai".into(),
            calling_hours: None,
            limits: vec![CalleeLimit { max_calls: 3, per_secs: 300 }, CalleeLimit { max_calls: 5, per_secs: 86_400 }],
            blocked_prefixes: vec![],
        }
    }
}

impl ComplianceConfig {
    /// The calling-hours window, if configured.
    pub fn hours(&self) -> Result<Option<DialWindow>, WindowError> {
        let tz = self.timezone.parse().map_err(|_| WindowError::TimeZone(self.timezone.clone()))?;
        match &self.calling_hours {
            Some((a, b)) => DialWindow::hours(tz, a, b).map(Some),
            None => Ok(None),
        }
    }
}

/// What to do with one number now.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Allow,
    /// Not now: due again at `until`.
    Defer {
        until: DateTime<Utc>,
        rule: &'static str,
        reason: String,
    },
    /// Never: the number gets status 11.
    Block {
        rule: &'static str,
        reason: String,
    },
}

/// Serializes "check the per-callee limit, then write the ledger row" per
/// number, so two tasks cannot both pass the limit for one number, while
/// different numbers proceed in parallel (striped by a hash of the number).
pub struct DialGate {
    stripes: Vec<tokio::sync::Mutex<()>>,
}

impl Default for DialGate {
    fn default() -> Self {
        DialGate { stripes: (0..64).map(|_| tokio::sync::Mutex::new(())).collect() }
    }
}

impl DialGate {
    pub async fn lock(&self, number: &str) -> tokio::sync::MutexGuard<'_, ()> {
        let i = (crate::sim::fate::hash(0, number) % self.stripes.len() as u64) as usize;
        self.stripes[i].lock().await
    }
}

/// Check `number` against the rules. The per-callee limit counts ledger rows,
/// i.e. every originate of every task, including calls still in progress.
pub async fn check(
    store: &Store,
    cfg: &ComplianceConfig,
    number: &str,
    now: DateTime<Utc>,
) -> Result<Verdict, StoreError> {
    if let Some(p) = cfg.blocked_prefixes.iter().find(|p| !p.is_empty() && number.starts_with(p.as_str())) {
        return Ok(Verdict::Block { rule: "blocked_prefix", reason: format!("number prefix {p} is blocked") });
    }
    for l in &cfg.limits {
        if l.max_calls < 1 || l.per_secs < 1 {
            continue;
        }
        let since = fmt_local(now - Duration::seconds(l.per_secs));
        let (n, oldest) = store.calls_to_number_since(number, &since).await?;
        if n >= l.max_calls {
            let until = oldest
                .and_then(|o| chrono::NaiveDateTime::parse_from_str(&o, "%Y-%m-%d %H:%M:%S").ok())
                .and_then(|o| o.and_local_timezone(chrono::Local).earliest())
                .map(|o| o.with_timezone(&Utc) + Duration::seconds(l.per_secs + 1))
                .unwrap_or(now + Duration::seconds(l.per_secs));
            return Ok(Verdict::Defer {
                until,
                rule: "callee_limit",
                reason: format!("{n} calls to this number within {} s (limit {})", l.per_secs, l.max_calls),
            });
        }
    }
    Ok(Verdict::Allow)
}

/// Format like the store's timestamps (local time).
pub fn fmt_local(t: DateTime<Utc>) -> String {
    t.with_timezone(&chrono::Local).format("%Y-%m-%d %H:%M:%S").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn prefix_block_and_callee_limit() {
        let dir = tempfile::tempdir().expect("tmp");
        let store = Store::open(&format!("sqlite://{}/c.db", dir.path().display())).await.expect("db");
        let cfg = ComplianceConfig {
            blocked_prefixes: vec!["95".into()],
            limits: vec![CalleeLimit { max_calls: 2, per_secs: 300 }],
            ..ComplianceConfig::default()
        };
        let now = Utc::now();
        assert!(matches!(check(&store, &cfg, "95588", now).await.expect("check"), Verdict::Block { .. }));
        assert_eq!(check(&store, &cfg, "13800000001", now).await.expect("check"), Verdict::Allow);
        for i in 0..2 {
            store.ledger_begin("t", 1, "13800000001", i + 1, &format!("u{i}"), "n").await.expect("ledger");
        }
        match check(&store, &cfg, "13800000001", now).await.expect("check") {
            Verdict::Defer { until, rule, reason } => {
                assert_eq!(rule, "callee_limit");
                assert!(reason.contains("2 calls"), "{reason}");
                assert!(until > now + Duration::seconds(250), "deferred about 5 minutes: {until}");
            }
            v => panic!("expected a deferral, got {v:?}"),
        }
        assert_eq!(
            check(&store, &cfg, "13800000002", now).await.expect("check"),
            Verdict::Allow,
            "other numbers unaffected"
        );
    }
}
