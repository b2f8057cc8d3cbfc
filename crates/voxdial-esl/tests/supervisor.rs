//! The reconnect supervisor against a fake FreeSWITCH that drops, hangs and
//! refuses connections.

mod common;

use std::time::Duration;

use common::{FakeFs, Opts, PASSWORD};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use voxdial_esl::{ClientConfig, ConnState, EslError, Supervisor, SupervisorConfig};

fn config(fs: &FakeFs) -> SupervisorConfig {
    let mut cfg = SupervisorConfig::new(ClientConfig::new(fs.addr_string(), PASSWORD));
    cfg.backoff_initial = Duration::from_millis(20);
    cfg.backoff_max = Duration::from_millis(200);
    cfg
}

/// Wait for a state matching `pred`, failing after 5 s.
async fn wait_for(rx: &mut watch::Receiver<ConnState>, what: &str, pred: impl Fn(&ConnState) -> bool) -> ConnState {
    let r = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|s| pred(s))).await;
    r.unwrap_or_else(|_| panic!("timed out waiting for {what}")).expect("supervisor alive").clone()
}

#[tokio::test]
async fn reconnects_reauthenticates_and_resubscribes_after_a_drop() {
    let fs = FakeFs::start(Opts::default()).await;
    let sup = Supervisor::start(config(&fs), CancellationToken::new());
    let mut state = sup.state();
    wait_for(&mut state, "generation 1", |s| *s == ConnState::Connected { generation: 1 }).await;
    let client = sup.connected().await.expect("client");
    assert_eq!(client.api("one").await.expect("api"), "one");

    // A command in flight when the connection drops fails with a clear error.
    let c = client.clone();
    let in_flight = tokio::spawn(async move { c.api("sleep 1000").await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    fs.kick();
    match in_flight.await.expect("task") {
        Err(EslError::Closed { reason: Some(r) }) => {
            assert!(r.contains("closed the socket"), "{r}")
        }
        other => panic!("expected Closed, got {other:?}"),
    }
    let s = wait_for(&mut state, "disconnected", |s| matches!(s, ConnState::Disconnected { .. })).await;
    let ConnState::Disconnected { reason } = s else { unreachable!() };
    assert!(reason.contains("closed the socket"), "{reason}");
    wait_for(&mut state, "generation 2", |s| *s == ConnState::Connected { generation: 2 }).await;

    let client2 = sup.connected().await.expect("client");
    assert!(client.is_closed(), "old generation's client is closed");
    assert_eq!(client2.api("two").await.expect("api"), "two");
    assert_eq!(fs.auths(), 2, "authenticated again");
    let subscriptions = fs.commands().iter().filter(|c| c.starts_with("event plain")).count();
    assert_eq!(subscriptions, 2, "subscribed again");
    sup.shutdown().await;
}

#[tokio::test]
async fn silent_peer_is_dropped_and_reconnected() {
    let fs = FakeFs::start(Opts::default()).await;
    let mut cfg = config(&fs);
    cfg.idle_timeout = Duration::from_millis(300);
    let sup = Supervisor::start(cfg, CancellationToken::new());
    let mut state = sup.state();
    wait_for(&mut state, "generation 1", |s| *s == ConnState::Connected { generation: 1 }).await;
    // The fake never sends HEARTBEAT: nothing arrives after the handshake.
    let s = wait_for(&mut state, "liveness drop", |s| matches!(s, ConnState::Disconnected { .. })).await;
    let ConnState::Disconnected { reason } = s else { unreachable!() };
    assert!(reason.contains("nothing received"), "{reason}");
    wait_for(&mut state, "generation 2", |s| *s == ConnState::Connected { generation: 2 }).await;
    assert_eq!(fs.connections(), 2);
    sup.shutdown().await;
}

#[tokio::test]
async fn traffic_keeps_a_connection_alive() {
    let fs = FakeFs::start(Opts { stream_events: true, ..Default::default() }).await;
    let mut cfg = config(&fs);
    cfg.idle_timeout = Duration::from_millis(200);
    let sup = Supervisor::start(cfg, CancellationToken::new());
    let mut state = sup.state();
    wait_for(&mut state, "generation 1", |s| *s == ConnState::Connected { generation: 1 }).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(*state.borrow(), ConnState::Connected { generation: 1 }, "streaming peer was dropped");
    assert_eq!(fs.connections(), 1);
    sup.shutdown().await;
}

#[tokio::test]
async fn keeps_retrying_with_backoff_until_the_server_returns() {
    let fs = FakeFs::start(Opts::default()).await;
    let sup = Supervisor::start(config(&fs), CancellationToken::new());
    let mut state = sup.state();
    wait_for(&mut state, "generation 1", |s| *s == ConnState::Connected { generation: 1 }).await;
    fs.set_refuse(true);
    fs.kick();
    wait_for(&mut state, "disconnected", |s| matches!(s, ConnState::Disconnected { .. })).await;
    // Refused attempts are reported but do not spin: with 20 ms doubling to a
    // 200 ms cap, 600 ms allows only a handful.
    tokio::time::sleep(Duration::from_millis(600)).await;
    let ConnState::Disconnected { reason } = state.borrow().clone() else { panic!("should still be down") };
    assert!(reason.contains("greeting") || reason.contains("closed"), "{reason}");
    fs.set_refuse(false);
    wait_for(&mut state, "generation 2", |s| *s == ConnState::Connected { generation: 2 }).await;
    assert_eq!(fs.connections(), 2, "refused attempts are not counted as connections");
    sup.shutdown().await;
}

#[tokio::test]
async fn cancellation_sends_exit_and_stops() {
    let fs = FakeFs::start(Opts::default()).await;
    let cancel = CancellationToken::new();
    let sup = Supervisor::start(config(&fs), cancel.clone());
    let mut state = sup.state();
    wait_for(&mut state, "generation 1", |s| *s == ConnState::Connected { generation: 1 }).await;
    let client = sup.connected().await.expect("client");
    cancel.cancel();
    wait_for(&mut state, "stopped", |s| *s == ConnState::Stopped).await;
    assert!(client.is_closed());
    assert!(fs.commands().iter().any(|c| c == "exit"), "said goodbye");
    assert!(sup.client().is_none());
    assert!(matches!(sup.connected().await, Err(EslError::Closed { .. })));
    // No reconnect after stopping.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(fs.connections(), 1);
}
