//! Keeps one [`EslClient`] connected: reconnects with exponential backoff and
//! jitter, re-authenticates and re-subscribes (both part of
//! [`EslClient::connect`]), and drops a connection on which nothing at all
//! has arrived for too long (FreeSWITCH sends HEARTBEAT every 20 s, so
//! silence means a dead peer or a half-open socket that TCP alone may not
//! notice for many minutes).
//!
//! State changes are published on a `watch` channel. Each successful
//! connection gets a new generation number: per-call subscriptions, bgapi
//! jobs and in-flight commands of the previous generation have ended (the
//! commands with [`EslError::Closed`]), and the layers above must reconcile
//! what they believe with FreeSWITCH (`show channels as json`).

use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::client::{ClientConfig, EslClient};
use crate::error::EslError;

/// How the supervisor behaves.
#[derive(Debug, Clone)]
pub struct SupervisorConfig {
    pub client: ClientConfig,
    /// First reconnect delay; doubled per failed attempt up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Drop the connection when nothing has arrived for this long. Three
    /// missed HEARTBEATs by default.
    pub idle_timeout: Duration,
}

impl SupervisorConfig {
    pub fn new(client: ClientConfig) -> Self {
        SupervisorConfig {
            client,
            backoff_initial: Duration::from_millis(250),
            backoff_max: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// The connection as the layers above should see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConnState {
    /// Authenticated and subscribed. `generation` starts at 1 and grows by
    /// one per successful (re)connection.
    Connected { generation: u64 },
    /// Not connected; `reason` says why (the last failure).
    Disconnected { reason: String },
    /// The supervisor was shut down; it will not reconnect.
    Stopped,
}

/// Handle to the supervising task.
pub struct Supervisor {
    state: watch::Receiver<ConnState>,
    client: watch::Receiver<Option<EslClient>>,
    cancel: CancellationToken,
    task: JoinHandle<()>,
}

impl Supervisor {
    /// Start connecting in the background. Cancelling `cancel` (or calling
    /// [`shutdown`](Self::shutdown)) sends `exit` and stops the supervisor.
    pub fn start(cfg: SupervisorConfig, cancel: CancellationToken) -> Supervisor {
        let (state_tx, state) = watch::channel(ConnState::Disconnected { reason: "not connected yet".into() });
        let (client_tx, client) = watch::channel(None);
        let task = tokio::spawn(run(cfg, cancel.clone(), state_tx, client_tx));
        Supervisor { state, client, cancel, task }
    }

    /// A receiver of state changes (starts with the current state).
    pub fn state(&self) -> watch::Receiver<ConnState> {
        self.state.clone()
    }

    /// The current client, if connected.
    pub fn client(&self) -> Option<EslClient> {
        self.client.borrow().clone()
    }

    /// Wait until a client is connected, or fail once the supervisor stops.
    pub async fn connected(&self) -> Result<EslClient, EslError> {
        let mut rx = self.client.clone();
        loop {
            if let Some(c) = rx.borrow_and_update().clone() {
                if !c.is_closed() {
                    return Ok(c);
                }
            }
            if rx.changed().await.is_err() {
                return Err(EslError::Closed { reason: Some("supervisor stopped".into()) });
            }
        }
    }

    /// Stop: close the connection politely and wait for the task to end.
    pub async fn shutdown(self) {
        self.cancel.cancel();
        let _ = self.task.await;
    }
}

/// Delay before reconnect attempt `attempt` (0-based): exponential, capped,
/// with "equal jitter" (half fixed, half random) so that many voxdial nodes
/// restarted together do not reconnect in lockstep.
fn backoff(cfg: &SupervisorConfig, attempt: u32) -> Duration {
    let exp = cfg.backoff_initial.saturating_mul(1u32 << attempt.min(20));
    let capped = exp.min(cfg.backoff_max);
    let half = capped / 2;
    half + half.mul_f64(fastrand::f64())
}

async fn run(
    cfg: SupervisorConfig,
    cancel: CancellationToken,
    state: watch::Sender<ConnState>,
    client_slot: watch::Sender<Option<EslClient>>,
) {
    let mut generation = 0u64;
    let mut attempt = 0u32;
    // Check liveness a few times per idle period.
    let tick = (cfg.idle_timeout / 4).max(Duration::from_millis(10));
    'outer: loop {
        let connected = tokio::select! {
            _ = cancel.cancelled() => break 'outer,
            r = EslClient::connect(cfg.client.clone()) => r,
        };
        let reason = match connected {
            Err(e) => e.to_string(),
            Ok(client) => {
                attempt = 0;
                generation += 1;
                client_slot.send_replace(Some(client.clone()));
                state.send_replace(ConnState::Connected { generation });
                tracing::info!(generation, addr = %cfg.client.addr, "ESL connected");
                let reason = loop {
                    tokio::select! {
                        _ = cancel.cancelled() => {
                            let _ = tokio::time::timeout(Duration::from_secs(2), client.shutdown()).await;
                            client.abort("supervisor shut down");
                            client_slot.send_replace(None);
                            break 'outer;
                        }
                        _ = client.closed() => {
                            break client.close_reason().unwrap_or_else(|| "connection closed".into());
                        }
                        _ = tokio::time::sleep(tick) => {
                            let idle = client.idle_for();
                            if idle > cfg.idle_timeout {
                                let reason = format!(
                                    "nothing received from FreeSWITCH for {idle:?} (HEARTBEAT is due every 20 s); reconnecting"
                                );
                                client.abort(reason.clone());
                                break reason;
                            }
                        }
                    }
                };
                client_slot.send_replace(None);
                reason
            }
        };
        tracing::warn!(%reason, attempt, "ESL disconnected");
        state.send_replace(ConnState::Disconnected { reason });
        let delay = backoff(&cfg, attempt);
        attempt = attempt.saturating_add(1);
        tokio::select! {
            _ = cancel.cancelled() => break 'outer,
            _ = tokio::time::sleep(delay) => {}
        }
    }
    state.send_replace(ConnState::Stopped);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered() {
        let mut cfg = SupervisorConfig::new(ClientConfig::new("127.0.0.1:1", "x"));
        cfg.backoff_initial = Duration::from_millis(100);
        cfg.backoff_max = Duration::from_secs(2);
        for attempt in 0..40 {
            let full = (Duration::from_millis(100) * 2u32.pow(attempt.min(10))).min(Duration::from_secs(2));
            let d = backoff(&cfg, attempt);
            assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?} not in [{:?}, {full:?}]", full / 2);
        }
        let samples: std::collections::HashSet<Duration> = (0..20).map(|_| backoff(&cfg, 5)).collect();
        assert!(samples.len() > 1, "no jitter");
    }
}
