//! The daemon (`voxdial serve`): runs every task whose `start` is 1 beside
//! one FreeSWITCH, as a systemd `Type=notify` service.
//!
//! Start: database → webhook deliverer → ESL (the supervisor retries until
//! FreeSWITCH answers) → finalizer with spool → reconciliation of the dial
//! ledger and release of this node's stale claims → `READY=1`.
//!
//! Stop (SIGTERM / SIGINT): no new claims; live calls get `[lifecycle]
//! drain_secs` to end by themselves, then the rest are hung up with
//! `uuid_kill` and finalized from their real hangup events; the spool is
//! flushed into the database for up to `flush_secs`; exit 0 once every
//! attempt of this node is finalized. What could not be settled stays in the
//! ledger for the next start's reconciliation, and the exit is non-zero.
//!
//! SIGHUP re-reads the config file: `[dialer]`, `[compliance]` and
//! `[[lines]]` apply to running tasks, connections are kept; other sections
//! need a restart (logged).
//!
//! Losing FreeSWITCH exits non-zero on purpose: the per-call state went with
//! the connection, and the restart's reconciliation (adopt or settle each
//! open ledger row) is the one tested path that cannot double-dial.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use futures::stream::{self, StreamExt};
use sd_notify::NotifyState;
use tokio::signal::unix::{signal, SignalKind};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use voxdial_esl::{ClientConfig, ConnState, EslClient, Supervisor, SupervisorConfig};

use crate::config::{Config, ConfigError};
use crate::dialer::compliance::{ComplianceConfig, DialGate};
use crate::dialer::line::Lines;
use crate::dialer::{DialerConfig, DialerError, Live, LiveSender, Progress, TaskRunner};
use crate::finalize::webhook::Deliverer;
use crate::finalize::{FinalizeError, Finalizer, FinalizerOptions};
use crate::metrics::{self, MetricsError};
use crate::store::{Store, StoreError};

/// How `serve` was started.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// The config file, re-read on SIGHUP (`None`: SIGHUP only logs).
    pub config_path: Option<PathBuf>,
    /// `--http ADDR`: the REST API and `/smartivr` listener (overrides `[api] http`).
    pub http: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("cluster: {0}")]
    Cluster(String),
    #[error("REST API: {0}")]
    Api(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Dialer(#[from] DialerError),
    #[error("starting the finalizer: {0}")]
    Finalizer(#[from] FinalizeError),
    #[error("starting webhook delivery: {0}")]
    Webhook(#[from] reqwest::Error),
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error("cannot listen on [metrics] listen {addr}: {source}")]
    Listen { addr: String, source: std::io::Error },
    #[error("installing signal handlers: {0}")]
    Signal(std::io::Error),
    #[error("FreeSWITCH connection lost: {0}; the restart's reconciliation settles the calls it had")]
    EslLost(String),
    #[error("stopped before FreeSWITCH was reached: {0}")]
    EslNeverConnected(String),
    #[error("{0} attempt(s) were still live at the stop deadline; the next start reconciles them")]
    Unsettled(usize),
}

/// What `/readyz` reports; flags are set by the parts that know.
#[derive(Debug, Default)]
pub struct Health {
    pub esl: AtomicBool,
    pub database: AtomicBool,
    pub reconciled: AtomicBool,
    pub draining: AtomicBool,
}

impl Health {
    /// Ready to dial: ESL up, database reachable, reconciliation done, not stopping.
    pub fn ready(&self) -> bool {
        self.esl.load(Ordering::Relaxed)
            && self.database.load(Ordering::Relaxed)
            && self.reconciled.load(Ordering::Relaxed)
            && !self.draining.load(Ordering::Relaxed)
    }

    fn publish(&self) {
        metrics::ready(self.ready());
    }
}

/// `/metrics`, `/healthz` (the process answers) and `/readyz`; other HTTP
/// listeners (the API) may merge these routes.
pub fn ops_router(health: Arc<Health>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_text))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(health)
}

async fn metrics_text() -> impl IntoResponse {
    metrics::upkeep();
    match metrics::render() {
        Some(text) => (StatusCode::OK, [("content-type", "text/plain; version=0.0.4")], text),
        None => {
            (StatusCode::NOT_FOUND, [("content-type", "text/plain")], "metrics recorder not installed\n".to_string())
        }
    }
}

async fn readyz(State(h): State<Arc<Health>>) -> impl IntoResponse {
    let body = serde_json::json!({
        "ready": h.ready(),
        "esl": h.esl.load(Ordering::Relaxed),
        "database": h.database.load(Ordering::Relaxed),
        "reconciled": h.reconciled.load(Ordering::Relaxed),
        "draining": h.draining.load(Ordering::Relaxed),
    });
    let code = if h.ready() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, axum::Json(body))
}

/// Tell systemd; outside systemd (`NOTIFY_SOCKET` unset) this does nothing.
fn notify(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!("sd_notify: {e}");
    }
}

fn status(text: &str) {
    notify(&[NotifyState::Status(text)]);
}

struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Signals, DaemonError> {
        let s = |k| signal(k).map_err(DaemonError::Signal);
        Ok(Signals {
            term: s(SignalKind::terminate())?,
            int: s(SignalKind::interrupt())?,
            hup: s(SignalKind::hangup())?,
        })
    }

    /// Resolves on SIGTERM or SIGINT.
    async fn stop(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// The reloadable parts, shared with every task runner.
struct Reloadable {
    dialer: LiveSender<DialerConfig>,
    compliance: LiveSender<ComplianceConfig>,
    lines: Lines,
}

impl Reloadable {
    fn apply(&self, old: &Config, new: &Config) {
        let mut d = new.dialer.clone();
        if d.node_id != old.dialer.node_id {
            tracing::warn!(kept = %old.dialer.node_id, "[dialer] node_id cannot change while running; restart to apply");
            d.node_id = old.dialer.node_id.clone();
        }
        self.dialer.set(d);
        self.compliance.set(new.compliance.clone());
        self.lines.reload(&new.lines);
        crate::logging::set_mask_numbers(new.log.mask_numbers);
        let restart_needed = [
            ("database", toml_of(&old.database) != toml_of(&new.database)),
            ("freeswitch", toml_of(&old.freeswitch) != toml_of(&new.freeswitch)),
            ("finalizer", toml_of(&old.finalizer) != toml_of(&new.finalizer)),
            ("webhook", toml_of(&old.webhook) != toml_of(&new.webhook)),
            ("metrics", toml_of(&old.metrics) != toml_of(&new.metrics)),
            (
                "status_rules / recycle",
                toml_of(&(&old.status_rules, &old.recycle)) != toml_of(&(&new.status_rules, &new.recycle)),
            ),
            ("log format / level", old.log.format != new.log.format || old.log.level != new.log.level),
        ];
        for (section, changed) in restart_needed {
            if changed {
                tracing::warn!("[{section}] changed; it applies after a restart");
            }
        }
    }
}

fn toml_of<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

fn reload(path: Option<&PathBuf>) -> Result<Option<Config>, ConfigError> {
    let Some(path) = path else { return Ok(None) };
    Config::load(path).map(Some)
}

/// Live calls over every running task.
fn live_calls(progress: &HashMap<String, Arc<Progress>>) -> i64 {
    progress.values().map(|p| p.in_flight.load(Ordering::Relaxed)).sum()
}

/// Run the daemon until SIGTERM / SIGINT (see the module docs).
pub async fn serve(cfg: Config, opts: ServeOptions) -> Result<(), DaemonError> {
    crate::logging::set_mask_numbers(cfg.log.mask_numbers);
    let health = Arc::new(Health::default());
    let mut signals = Signals::new()?;
    // Background services stop last, after every call was finalized.
    let bg_cancel = CancellationToken::new();
    if !cfg.metrics.listen.is_empty() {
        metrics::install()?;
        let addr: SocketAddr = cfg.metrics.listen.parse().map_err(|e: std::net::AddrParseError| {
            DaemonError::Listen { addr: cfg.metrics.listen.clone(), source: std::io::Error::other(e) }
        })?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| DaemonError::Listen { addr: cfg.metrics.listen.clone(), source: e })?;
        let router = ops_router(health.clone());
        let stop = bg_cancel.clone();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, router).with_graceful_shutdown(stop.cancelled_owned()).await {
                tracing::error!("metrics listener failed: {e}");
            }
        });
        tracing::info!(%addr, "serving /metrics, /healthz and /readyz");
    }
    metrics::ready(false);
    metrics::draining(false);

    status("opening the database");
    let store = Store::open(&cfg.database.url).await?;
    health.database.store(true, Ordering::Relaxed);
    // Every node delivers callbacks; the outbox lease keeps nodes apart.
    let deliverer = Deliverer::start(store.clone(), cfg.webhook.clone(), bg_cancel.clone())?;
    // The REST API (and smartivr) serve until the background services stop:
    // one listener, whose smartivr connections run on their own
    // `current_thread` runtime with the inline journal writer (`api::front`,
    // the setup `smartivr-server` measures); `api` resolves once both sides
    // drained.
    // Dialer-placed calls whose conversation a smartivr module runs over the
    // API's `POST /smartivr`: the endpoint hands them to their call actors.
    let module_calls = crate::dialer::call::ModuleCalls::default();
    let api =
        crate::api::rest::spawn(&cfg, store.clone(), opts.http.as_deref(), module_calls.clone(), bg_cancel.clone())
            .await
            .map_err(|e| DaemonError::Api(e.to_string()))?;
    let Some(fs) = cfg.freeswitch.clone() else {
        tracing::info!("no [freeswitch] section: nothing to dial (API-only node)");
        health.esl.store(true, Ordering::Relaxed);
        health.reconciled.store(true, Ordering::Relaxed);
        health.publish();
        notify(&[NotifyState::Ready, NotifyState::Status("API-only node: no dialing")]);
        signals.stop().await;
        notify(&[NotifyState::Stopping]);
        bg_cancel.cancel();
        let _ = api.await;
        return Ok(());
    };

    // ESL: the supervisor retries with backoff, so FreeSWITCH may start after us.
    let addr = format!("{}:{}", fs.host, fs.port);
    let sup_cancel = CancellationToken::new();
    let sup = Supervisor::start(
        SupervisorConfig::new(ClientConfig::new(addr.clone(), fs.password.clone())),
        sup_cancel.clone(),
    );
    let watcher = spawn_esl_watcher(sup.state(), health.clone(), bg_cancel.clone());
    let esl = tokio::select! {
        c = sup.connected() => c.map_err(|e| DaemonError::EslNeverConnected(e.to_string()))?,
        _ = signals.stop() => {
            sup.shutdown().await;
            bg_cancel.cancel();
            let reason: String = watcher.await.unwrap_or_default();
            return Err(DaemonError::EslNeverConnected(reason));
        }
    };

    let mut fopts = FinalizerOptions::from_config(&cfg);
    fopts.webhook_wake = Some(deliverer.waker());
    let finalizer = Finalizer::start_with(store.clone(), fopts, bg_cancel.clone())?;
    let (dialer_tx, dialer_live) = Live::channel(cfg.dialer.clone());
    let (compliance_tx, compliance_live) = Live::channel(cfg.compliance.clone());
    // Scale-out: shared limits, task control and node liveness (None
    // without `[cluster] redis_url`).
    let cluster = crate::cluster::Cluster::start(&cfg.cluster, &cfg.dialer.node_id, store.clone(), bg_cancel.clone())
        .await
        .map_err(|e| DaemonError::Cluster(e.to_string()))?;
    let mut cluster_signals = cluster.as_ref().map(|c| c.signals());
    let reloadable = Reloadable {
        dialer: dialer_tx,
        compliance: compliance_tx,
        lines: Lines::start_clustered(&cfg.lines, cluster.clone()),
    };
    let dial_gate: Arc<DialGate> = Arc::new(Default::default());
    let node = cfg.dialer.node_id.clone();

    // Results the previous process spooled are written first, so that
    // reconciliation sees their attempts as settled.
    let spool_deadline = Instant::now() + Duration::from_secs(30);
    while finalizer.spool_len() > 0 && Instant::now() < spool_deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Attempts a previous process left open are settled before any new dial.
    status("reconciling the dial ledger with FreeSWITCH");
    let rec = crate::dialer::reconcile::reconcile(&store, &esl, &finalizer, &node).await?;
    let released = store.release_node_claims(&node).await?;
    tracing::info!(adopted = rec.adopted, ended = rec.ended, released, "reconciliation done");
    if let Some(c) = &cluster {
        c.spawn_takeover(finalizer.clone(), bg_cancel.clone());
    }
    health.reconciled.store(true, Ordering::Relaxed);
    health.publish();
    spawn_sampler(store.clone(), esl.clone(), finalizer.clone(), health.clone(), bg_cancel.clone());
    let watchdog = spawn_watchdog(bg_cancel.clone());
    notify(&[NotifyState::Ready, NotifyState::Status("dialing; 0 live calls")]);
    tracing::info!("voxdial serving; ESL {addr}");

    let calls_cancel = CancellationToken::new();
    let mut running: HashMap<String, JoinHandle<()>> = HashMap::new();
    let mut progress: HashMap<String, Arc<Progress>> = HashMap::new();
    let mut cfg = cfg;
    let mut last_status = -1;
    let lost = loop {
        running.retain(|_, h| !h.is_finished());
        progress.retain(|id, _| running.contains_key(id));
        match sqlx::query(store.sql("SELECT uuid FROM autodialer_task WHERE start = 1 AND deleted_at IS NULL"))
            .fetch_all(store.pool())
            .await
        {
            Ok(rows) => {
                for r in rows {
                    let Ok(uuid) = sqlx::Row::try_get::<String, _>(&r, "uuid") else { continue };
                    if running.contains_key(&uuid) {
                        continue;
                    }
                    let p = Arc::new(Progress::default());
                    let runner = TaskRunner {
                        store: store.clone(),
                        esl: esl.clone(),
                        finalizer: finalizer.clone(),
                        cfg: dialer_live.clone(),
                        compliance: compliance_live.clone(),
                        dial_gate: dial_gate.clone(),
                        default_gateway: fs.gateway.clone(),
                        lines: reloadable.lines.clone(),
                        progress: p.clone(),
                        cancel: calls_cancel.child_token(),
                        cluster: cluster.clone(),
                        module_calls: module_calls.clone(),
                    };
                    let id = uuid.clone();
                    progress.insert(uuid.clone(), p);
                    running.insert(
                        uuid,
                        tokio::spawn(async move {
                            match runner.run(&id).await {
                                Ok(end) => tracing::info!(task = %id, ?end, "task runner ended"),
                                Err(e) => tracing::error!(task = %id, "task runner failed: {e}"),
                            }
                        }),
                    );
                }
            }
            // Live calls go on; tasks are picked up when the database is back.
            Err(e) => tracing::warn!("listing started tasks failed: {e}"),
        }
        let live = live_calls(&progress);
        if live != last_status {
            last_status = live;
            status(&format!("dialing; {live} live calls, {} running tasks", running.len()));
        }
        tokio::select! {
            _ = signals.term.recv() => break None,
            _ = signals.int.recv() => break None,
            _ = signals.hup.recv() => {
                notify(&[NotifyState::Reloading]);
                match reload(opts.config_path.as_ref()) {
                    Ok(Some(new)) => {
                        reloadable.apply(&cfg, &new);
                        cfg = new;
                        tracing::info!("configuration reloaded: [dialer], [compliance] and [[lines]] apply now");
                    }
                    Ok(None) => tracing::warn!("SIGHUP: no config file to reload"),
                    Err(e) => tracing::error!("SIGHUP: configuration not reloaded, keeping the running one: {e}"),
                }
                notify(&[NotifyState::Ready]);
                last_status = -1;
            }
            _ = esl.closed() => break Some(esl.close_reason().unwrap_or_default()),
            // Task control from another node: look at the task table now.
            _ = crate::cluster::task_signal(&mut cluster_signals, "") => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    };
    if let Some(reason) = lost {
        tracing::error!("FreeSWITCH connection lost ({reason}); exiting so that the restart reconciles the live calls");
        notify(&[NotifyState::Status("FreeSWITCH connection lost; restarting")]);
        return Err(DaemonError::EslLost(reason));
    }

    // Drain: no new claims; live calls end by themselves until the deadline.
    let lc = &cfg.lifecycle;
    let live = live_calls(&progress);
    tracing::info!(live, drain_secs = lc.drain_secs, "stopping: no new calls; live calls may finish");
    notify(&[NotifyState::Stopping, NotifyState::Status(&format!("draining; {live} live calls"))]);
    health.draining.store(true, Ordering::Relaxed);
    health.publish();
    metrics::draining(true);
    calls_cancel.cancel();
    let all_done = |running: &HashMap<String, JoinHandle<()>>| running.values().all(|h| h.is_finished());
    let deadline = Instant::now() + Duration::from_secs(lc.drain_secs);
    while !all_done(&running) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let live = live_calls(&progress);
        if live != last_status {
            last_status = live;
            status(&format!("draining; {live} live calls"));
        }
    }
    if !all_done(&running) {
        // Hang up what is left; each call actor sees its real hangup event
        // and finalizes as usual.
        let open = store.ledger_open(&node).await?;
        tracing::warn!(calls = open.len(), "drain deadline reached; hanging up the remaining calls");
        status(&format!("hanging up {} calls", open.len()));
        stream::iter(open)
            .for_each_concurrent(32, |row| {
                let esl = esl.clone();
                async move {
                    match esl.api(&format!("uuid_kill {} NORMAL_CLEARING", row.uuid)).await {
                        Ok(r) if r.starts_with("-ERR") => tracing::debug!(uuid = %row.uuid, "uuid_kill: {}", r.trim()),
                        Ok(_) => {}
                        Err(e) => tracing::warn!(uuid = %row.uuid, "uuid_kill failed: {e}"),
                    }
                }
            })
            .await;
    }
    let flush_deadline = Instant::now() + Duration::from_secs(lc.flush_secs);
    while !all_done(&running) && Instant::now() < flush_deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for (_, h) in running.iter().filter(|(_, h)| !h.is_finished()) {
        h.abort();
    }
    let unsettled = store.ledger_open(&node).await.map(|o| o.len()).unwrap_or(usize::MAX);
    if unsettled == 0 {
        // Nothing of ours can be live: claims left over (numbers deferred
        // mid-attempt, races with the drain) go back to the pool.
        let released = store.release_node_claims(&node).await?;
        if released > 0 {
            tracing::info!(released, "claims released");
        }
    }
    // The spool is durable on disk, but the database is the better place.
    status("flushing the spool");
    while finalizer.spool_len() > 0 && Instant::now() < flush_deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let spooled = finalizer.spool_len();
    if spooled > 0 {
        tracing::warn!(spooled, "calls stay in the spool; they are written at the next start");
    }
    bg_cancel.cancel();
    finalizer.stopped().await;
    let _ = api.await;
    sup.shutdown().await;
    let _ = watchdog.await;
    if unsettled > 0 {
        return Err(DaemonError::Unsettled(unsettled));
    }
    tracing::info!("stopped: every call finalized");
    Ok(())
}

/// Follows the supervisor: readiness, metrics and systemd STATUS while
/// FreeSWITCH is unreachable. Returns the last failure reason.
fn spawn_esl_watcher(
    mut state: tokio::sync::watch::Receiver<ConnState>,
    health: Arc<Health>,
    cancel: CancellationToken,
) -> JoinHandle<String> {
    tokio::spawn(async move {
        let mut last_reason = String::new();
        let mut failures = 0u64;
        loop {
            let s = state.borrow_and_update().clone();
            match s {
                ConnState::Connected { generation } => {
                    health.esl.store(true, Ordering::Relaxed);
                    metrics::esl_connected(true);
                    if generation > 1 {
                        metrics::esl_reconnect();
                    }
                }
                ConnState::Disconnected { reason } => {
                    health.esl.store(false, Ordering::Relaxed);
                    metrics::esl_connected(false);
                    if failures > 0 || reason != "not connected yet" {
                        metrics::esl_reconnect();
                        tracing::warn!("FreeSWITCH not reachable: {reason}");
                        status(&format!("waiting for FreeSWITCH: {reason}"));
                        last_reason = reason;
                    }
                    failures += 1;
                }
                ConnState::Stopped => {
                    health.esl.store(false, Ordering::Relaxed);
                    metrics::esl_connected(false);
                }
            }
            health.publish();
            tokio::select! {
                _ = cancel.cancelled() => break,
                r = state.changed() => if r.is_err() { break },
            }
        }
        last_reason
    })
}

/// Gauges that are sampled rather than pushed, and the database probe of
/// `/readyz`.
fn spawn_sampler(store: Store, esl: EslClient, finalizer: Finalizer, health: Arc<Health>, cancel: CancellationToken) {
    tokio::spawn(async move {
        loop {
            let ok = match tokio::time::timeout(Duration::from_secs(5), store.outbox_backlog()).await {
                Ok(Ok(n)) => {
                    metrics::outbox_backlog(n);
                    true
                }
                Ok(Err(e)) => {
                    tracing::debug!("database probe failed: {e}");
                    false
                }
                Err(_) => false,
            };
            if ok != health.database.swap(ok, Ordering::Relaxed) {
                if ok {
                    tracing::info!("database reachable again");
                } else {
                    tracing::warn!("database unreachable; finalized calls go to the spool");
                }
            }
            health.publish();
            metrics::spool_calls(finalizer.spool_len());
            let st = esl.stats();
            metrics::esl_stats(
                st.consumer_lag_us.load(Ordering::Relaxed),
                st.lagged_subscribers.load(Ordering::Relaxed),
            );
            metrics::upkeep();
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    });
}

/// `WATCHDOG=1` at half of systemd's `WATCHDOG_USEC`, until the daemon
/// stops (drain included: a long drain is not a hang).
fn spawn_watchdog(cancel: CancellationToken) -> JoinHandle<()> {
    tokio::spawn(async move {
        let Some(period) = sd_notify::watchdog_enabled() else { return };
        let every = (period / 2).max(Duration::from_millis(100));
        loop {
            notify(&[NotifyState::Watchdog]);
            tokio::select! {
                _ = cancel.cancelled() => break,
                _ = tokio::time::sleep(every) => {}
            }
        }
    })
}
