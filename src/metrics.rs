//! Prometheus metrics through the `metrics` facade. Call sites use the named
//! helpers below (one line each), so the series names live in one place and
//! the modules that own the state stay readable. Without an installed
//! recorder (demo, tests, tools) every helper is a no-op.
//!
//! The exporter is built without its own HTTP listener: the daemon renders
//! [`render`] at `/metrics` on the same axum listener as `/healthz` and
//! `/readyz` (see `crate::daemon`).

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

pub const CALLS_IN_FLIGHT: &str = "voxdial_calls_in_flight";
pub const ORIGINATES: &str = "voxdial_originates_total";
pub const ANSWERED: &str = "voxdial_calls_answered_total";
pub const NUMBER_STATUS: &str = "voxdial_number_status_total";
pub const DECISION_SECONDS: &str = "voxdial_dialogue_decision_seconds";
pub const ESL_LAG_SECONDS: &str = "voxdial_esl_consumer_lag_seconds";
pub const ESL_LAGGED: &str = "voxdial_esl_lagged_subscribers_total";
pub const ESL_CONNECTED: &str = "voxdial_esl_connected";
pub const ESL_RECONNECTS: &str = "voxdial_esl_reconnects_total";
pub const DB_WRITE_SECONDS: &str = "voxdial_db_write_seconds";
pub const OUTBOX_BACKLOG: &str = "voxdial_webhook_outbox_backlog";
pub const SPOOL_CALLS: &str = "voxdial_spool_calls";
pub const READY: &str = "voxdial_ready";
pub const DRAINING: &str = "voxdial_draining";

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    #[error("metrics recorder: {0}")]
    Install(String),
}

/// Install the Prometheus recorder once per process (later calls return the
/// same handle). Latency series get real buckets so Grafana can compute
/// quantiles across nodes (summaries cannot be aggregated).
pub fn install() -> Result<&'static PrometheusHandle, MetricsError> {
    if let Some(h) = HANDLE.get() {
        return Ok(h);
    }
    let buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &buckets)
        .map_err(|e| MetricsError::Install(e.to_string()))?
        .install_recorder()
        .map_err(|e| MetricsError::Install(e.to_string()))?;
    describe();
    Ok(HANDLE.get_or_init(|| handle))
}

fn describe() {
    describe_gauge!(CALLS_IN_FLIGHT, "Calls between originate and finalize, per task");
    describe_counter!(ORIGINATES, "Originates sent, per task (rate() gives originates per second)");
    describe_counter!(ANSWERED, "Answered calls, per task (answer rate = answered / originates)");
    describe_counter!(NUMBER_STATUS, "Finalized attempts by number status code (docs/status-mapping.md)");
    describe_histogram!(DECISION_SECONDS, Unit::Seconds, "Dialogue decision latency per customer turn");
    describe_gauge!(ESL_LAG_SECONDS, Unit::Seconds, "How far behind FreeSWITCH's event stream the ESL consumer is");
    describe_counter!(ESL_LAGGED, "Per-call subscribers dropped for falling behind");
    describe_gauge!(ESL_CONNECTED, "1 while the ESL connection is up");
    describe_counter!(ESL_RECONNECTS, "ESL connection attempts after a failure or a drop");
    describe_histogram!(
        DB_WRITE_SECONDS,
        Unit::Seconds,
        "Finalizer write of one call (rows + outbox), one transaction"
    );
    describe_gauge!(OUTBOX_BACKLOG, "Webhook events pending delivery");
    describe_gauge!(SPOOL_CALLS, "Finalized calls waiting in the local spool for the database");
    describe_gauge!(READY, "1 when ESL is connected, the database reachable and reconciliation done");
    describe_gauge!(DRAINING, "1 after SIGTERM while live calls finish");
}

/// The Prometheus text exposition, or `None` when no recorder is installed.
pub fn render() -> Option<String> {
    HANDLE.get().map(|h| h.render())
}

/// Housekeeping the exporter's own listener would do (histogram upkeep).
pub fn upkeep() {
    if let Some(h) = HANDLE.get() {
        h.run_upkeep();
    }
}

/// An originate left for `task`.
pub fn originated(task: &str) {
    counter!(ORIGINATES, "task" => task.to_string()).increment(1);
    gauge!(CALLS_IN_FLIGHT, "task" => task.to_string()).increment(1.0);
}

/// The call of `task` was finalized (or abandoned); `answered` as classified.
pub fn call_done(task: &str, answered: bool) {
    gauge!(CALLS_IN_FLIGHT, "task" => task.to_string()).decrement(1.0);
    if answered {
        counter!(ANSWERED, "task" => task.to_string()).increment(1);
    }
}

/// One finalized attempt with number status `code`.
pub fn number_status(code: i64) {
    counter!(NUMBER_STATUS, "status" => code.to_string()).increment(1);
}

/// One dialogue decision that took `us` microseconds.
pub fn decision_us(us: i64) {
    histogram!(DECISION_SECONDS).record(us.max(0) as f64 / 1e6);
}

/// One finalizer write of a call to the database.
pub fn db_write(took: Duration) {
    histogram!(DB_WRITE_SECONDS).record(took.as_secs_f64());
}

/// Sampled from `EslClient::stats()`.
pub fn esl_stats(lag_us: i64, lagged_subscribers: u64) {
    gauge!(ESL_LAG_SECONDS).set(lag_us.max(0) as f64 / 1e6);
    counter!(ESL_LAGGED).absolute(lagged_subscribers);
}

pub fn esl_connected(up: bool) {
    gauge!(ESL_CONNECTED).set(if up { 1.0 } else { 0.0 });
}

pub fn esl_reconnect() {
    counter!(ESL_RECONNECTS).increment(1);
}

pub fn outbox_backlog(n: i64) {
    gauge!(OUTBOX_BACKLOG).set(n as f64);
}

pub fn spool_calls(n: u64) {
    gauge!(SPOOL_CALLS).set(n as f64);
}

pub fn ready(r: bool) {
    gauge!(READY).set(if r { 1.0 } else { 0.0 });
}

pub fn draining(d: bool) {
    gauge!(DRAINING).set(if d { 1.0 } else { 0.0 });
}
