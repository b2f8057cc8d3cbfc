//! Webhook delivery: an actor that polls the outbox for due events, POSTs
//! them, and records every attempt.
//!
//! Delivery is at-least-once; the receiver sees exactly-once per event by the
//! `Idempotency-Key` header, which is fixed when the event is created and
//! sent unchanged on every retry. Failed attempts are retried with
//! exponential backoff and equal jitter (so a receiver that comes back is not
//! hit by every event at the same instant) until `max_attempts`, after which
//! the event is `dead` (see `Store::retry_dead_events`).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::store::outbox::{ms_str, AttemptOutcome, AttemptReport, OutboxEvent};
use crate::store::Store;

use super::signing::{webhook_signature, SIGNATURE_HEADER};

/// The `[webhook]` config section.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct WebhookConfig {
    /// Signing secret for tenants without their own.
    pub secret: String,
    /// Tenant (user id) → signing secret.
    pub tenant_secrets: BTreeMap<String, String>,
    /// Attempts before an event is dead.
    pub max_attempts: i64,
    /// Delay after the first failure; doubles per attempt.
    pub backoff_initial_ms: u64,
    pub backoff_max_ms: u64,
    pub timeout_ms: u64,
    /// How often the outbox is polled when nothing wakes the actor.
    pub poll_ms: u64,
    /// Events claimed per poll.
    pub batch: i64,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// How long a claimed event is hidden from other pollers.
    pub lease_ms: i64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            secret: String::new(),
            tenant_secrets: BTreeMap::new(),
            max_attempts: 30,
            backoff_initial_ms: 2_000,
            backoff_max_ms: 3_600_000,
            timeout_ms: 10_000,
            poll_ms: 1_000,
            batch: 64,
            concurrency: 16,
            lease_ms: 60_000,
        }
    }
}

impl WebhookConfig {
    fn secret_for(&self, user_id: Option<&str>) -> &str {
        user_id.and_then(|u| self.tenant_secrets.get(u)).map_or(self.secret.as_str(), String::as_str)
    }
}

/// Delay before attempt `failures + 1`: `initial · 2^(failures−1)` capped at
/// `max`, of which the upper half is random.
pub fn backoff(failures: i64, initial_ms: u64, max_ms: u64) -> Duration {
    let exp = u32::try_from(failures.saturating_sub(1).clamp(0, 40)).unwrap_or(40);
    let full = initial_ms.saturating_mul(1u64 << exp).min(max_ms).max(1);
    let half = full / 2;
    Duration::from_millis(half + fastrand::u64(0..=full - half))
}

/// Counters for metrics and benchmarks.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    pub attempts: AtomicU64,
    pub delivered: AtomicU64,
    pub failed_attempts: AtomicU64,
    pub dead: AtomicU64,
}

/// Handle to the delivery actor.
#[derive(Clone)]
pub struct Deliverer {
    wake: Arc<Notify>,
    stats: Arc<DeliveryStats>,
}

impl Deliverer {
    /// Start the actor; it stops at `cancel` after its current batch.
    pub fn start(store: Store, cfg: WebhookConfig, cancel: CancellationToken) -> Result<Deliverer, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .user_agent(concat!("voxdial/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let d = Deliverer { wake: Arc::new(Notify::new()), stats: Arc::new(DeliveryStats::default()) };
        let (wake, stats) = (d.wake.clone(), d.stats.clone());
        tokio::spawn(async move {
            let cfg = Arc::new(cfg);
            loop {
                let mut claimed = 0;
                match store.claim_due_events(cfg.batch, cfg.lease_ms).await {
                    Ok(events) => {
                        claimed = events.len();
                        stream::iter(events)
                            .for_each_concurrent(cfg.concurrency.max(1), |ev| {
                                deliver(&store, &client, &cfg, &stats, ev)
                            })
                            .await;
                    }
                    Err(e) => tracing::warn!("webhook outbox poll failed: {e}"),
                }
                if cancel.is_cancelled() {
                    break;
                }
                // A full batch means more may be due right now.
                if claimed as i64 >= cfg.batch {
                    continue;
                }
                tokio::select! {
                    _ = cancel.cancelled() => break,
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(Duration::from_millis(cfg.poll_ms)) => {}
                }
            }
        });
        Ok(d)
    }

    /// Poll now (new events were written).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// A waker for the finalizer.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    pub fn stats(&self) -> &DeliveryStats {
        &self.stats
    }
}

async fn deliver(store: &Store, client: &reqwest::Client, cfg: &WebhookConfig, stats: &DeliveryStats, ev: OutboxEvent) {
    let started = Instant::now();
    let body = ev.payload.clone().into_bytes();
    let sig = webhook_signature(cfg.secret_for(ev.user_id.as_deref()).as_bytes(), &body);
    let res = client
        .post(&ev.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header("Idempotency-Key", &ev.idempotency_key)
        .header(SIGNATURE_HEADER, sig)
        .header("X-Voxdial-Event", &ev.kind)
        .header("X-Voxdial-Attempt", (ev.attempts + 1).to_string())
        .body(body)
        .send()
        .await;
    let (status_code, error) = match res {
        Ok(r) if r.status().is_success() => (Some(r.status().as_u16()), None),
        Ok(r) => {
            let code = r.status().as_u16();
            (Some(code), Some(format!("HTTP {code}")))
        }
        Err(e) => (None, Some(e.to_string())),
    };
    let failures = ev.attempts + 1;
    let outcome = match &error {
        None => AttemptOutcome::Delivered,
        Some(_) if failures >= cfg.max_attempts => AttemptOutcome::Dead,
        Some(_) => AttemptOutcome::Retry,
    };
    let next = match outcome {
        AttemptOutcome::Retry => {
            let d = backoff(failures, cfg.backoff_initial_ms, cfg.backoff_max_ms);
            ms_str(
                chrono::Local::now() + chrono::Duration::milliseconds(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            )
        }
        _ => ev.next_attempt_at.clone(),
    };
    stats.attempts.fetch_add(1, Ordering::Relaxed);
    match outcome {
        AttemptOutcome::Delivered => stats.delivered.fetch_add(1, Ordering::Relaxed),
        AttemptOutcome::Retry => stats.failed_attempts.fetch_add(1, Ordering::Relaxed),
        AttemptOutcome::Dead => {
            tracing::error!(event = %ev.idempotency_key, url = %ev.url, "webhook event dead after {failures} attempts");
            stats.failed_attempts.fetch_add(1, Ordering::Relaxed);
            stats.dead.fetch_add(1, Ordering::Relaxed)
        }
    };
    let report = AttemptReport {
        status_code,
        error,
        outcome,
        duration_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
        next_attempt_at: next,
    };
    // If this fails the lease runs out and the event is sent again with the
    // same key: the receiver's deduplication covers it.
    if let Err(e) = store.record_attempt(&ev, &report).await {
        tracing::warn!(event = %ev.idempotency_key, "webhook attempt not recorded: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        for _ in 0..200 {
            let d1 = backoff(1, 100, 10_000).as_millis();
            assert!((50..=100).contains(&d1), "{d1}");
            let d4 = backoff(4, 100, 10_000).as_millis();
            assert!((400..=800).contains(&d4), "{d4}");
            let big = backoff(60, 100, 10_000).as_millis();
            assert!((5_000..=10_000).contains(&big), "{big}");
        }
        assert!(backoff(0, 0, 0).as_millis() <= 1);
    }
}
