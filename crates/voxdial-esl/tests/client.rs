//! The client against a fake FreeSWITCH over real TCP on 127.0.0.1.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::{background_job, call_event, frame, FakeFs, Opts, PASSWORD};
use voxdial_esl::{CallEventsEnd, ClientConfig, EslClient, EslError};

fn config(fs: &FakeFs) -> ClientConfig {
    ClientConfig::new(fs.addr_string(), PASSWORD)
}

/// Wait until `cond` holds, failing the test after 5 s.
async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !cond() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_api_calls_each_get_their_own_reply_while_events_stream() {
    let fs = FakeFs::start(Opts { stream_events: true, ..Default::default() }).await;
    let client = EslClient::connect(config(&fs)).await.expect("connect");
    let mut tasks = Vec::new();
    for t in 0..40 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..30 {
                let cmd = format!("echo task{t}-call{i}");
                let got = c.api(&cmd).await.expect("api");
                assert_eq!(got, cmd, "reply routed to the wrong caller");
            }
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    assert_eq!(fs.commands().iter().filter(|c| c.starts_with("api echo")).count(), 1200);
    // The replies were interleaved with a live event stream.
    let events = client.stats().events.load(Ordering::Relaxed);
    assert!(events > 100, "only {events} events arrived while the calls ran");
    assert!(!client.is_closed());
}

#[tokio::test]
async fn timed_out_caller_still_consumes_its_reply_slot() {
    let fs = FakeFs::start(Opts::default()).await;
    let mut cfg = config(&fs);
    cfg.command_timeout = Duration::from_millis(100);
    let client = EslClient::connect(cfg).await.expect("connect");
    let err = client.api("sleep 150").await.expect_err("must time out");
    assert!(matches!(err, EslError::Timeout(_)), "{err}");
    // Let the late reply arrive; it must be dropped, not handed to the next caller.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(client.api("after-timeout").await.expect("api"), "after-timeout");
    assert_eq!(client.api("and-again").await.expect("api"), "and-again");
}

#[tokio::test]
async fn cancelled_caller_still_consumes_its_reply_slot() {
    let fs = FakeFs::start(Opts::default()).await;
    let client = EslClient::connect(config(&fs)).await.expect("connect");
    let c = client.clone();
    let slow = tokio::spawn(async move { c.api("sleep 200").await });
    until("the slow command to reach the server", || fs.commands().iter().any(|c| c == "api sleep 200")).await;
    slow.abort();
    assert!(slow.await.expect_err("aborted").is_cancelled());
    assert_eq!(client.api("after-cancel").await.expect("api"), "after-cancel");
}

#[tokio::test]
async fn wrong_password_is_auth_failed() {
    let fs = FakeFs::start(Opts::default()).await;
    let err = EslClient::connect(ClientConfig::new(fs.addr_string(), "wrong")).await.expect_err("must fail");
    match err {
        EslError::AuthFailed { reply } => assert!(reply.contains("-ERR"), "{reply}"),
        other => panic!("expected AuthFailed, got {other}"),
    }
}

#[tokio::test]
async fn bgapi_results_are_routed_by_job_uuid_out_of_order() {
    let fs = FakeFs::start(Opts::default()).await;
    let client = EslClient::connect(config(&fs)).await.expect("connect");
    let mut jobs = Vec::new();
    for n in 0..4 {
        jobs.push(client.bgapi(&format!("originate call-{n}")).await.expect("bgapi"));
    }
    let sent = fs.jobs();
    assert_eq!(sent.len(), 4);
    for (job, (server_job, _)) in jobs.iter().zip(&sent) {
        assert_eq!(&job.job_uuid, server_job, "the Job-UUID we chose was sent");
    }
    // Results arrive in the order 2, 0, 3, 1, each naming its command.
    for k in [2usize, 0, 3, 1] {
        let (job, cmd) = &sent[k];
        fs.inject(background_job(job, &format!("+OK {cmd}\n")));
    }
    for (n, job) in jobs.into_iter().enumerate() {
        let result =
            tokio::time::timeout(Duration::from_secs(5), job.result()).await.expect("in time").expect("result");
        assert_eq!(result, format!("+OK originate call-{n}\n"));
    }
}

#[tokio::test]
async fn call_events_are_routed_by_unique_id() {
    let fs = FakeFs::start(Opts::default()).await;
    let client = EslClient::connect(config(&fs)).await.expect("connect");
    let mut a = client.subscribe_call("call-a");
    let mut b = client.subscribe_call("call-b");
    let mut others = client.other_events();
    let mut bytes = Vec::new();
    for (seq, uuid) in ["call-a", "call-b", "call-x", "call-a", "call-b", "call-a"].iter().enumerate() {
        bytes.extend(call_event("CHANNEL_STATE", uuid, seq));
    }
    fs.inject(bytes);
    let recv_seq = |ev: &voxdial_esl::Event| ev.header("Event-Sequence").map(|s| s.into_owned());
    for want in ["0", "3", "5"] {
        let ev = a.recv().await.expect("event for a");
        assert_eq!(ev.unique_id().as_deref(), Some("call-a"));
        assert_eq!(recv_seq(&ev).as_deref(), Some(want));
    }
    for want in ["1", "4"] {
        let ev = b.recv().await.expect("event for b");
        assert_eq!(ev.unique_id().as_deref(), Some("call-b"));
        assert_eq!(recv_seq(&ev).as_deref(), Some(want));
    }
    let ev = others.recv().await.expect("unrouted event");
    assert_eq!(ev.unique_id().as_deref(), Some("call-x"), "only the unsubscribed call goes to others");
    // Dropping a subscription sends that call's later events to others.
    drop(a);
    fs.inject(call_event("CHANNEL_HANGUP", "call-a", 9));
    let ev = others.recv().await.expect("event of dropped subscription");
    assert_eq!(ev.unique_id().as_deref(), Some("call-a"));
}

#[tokio::test]
async fn lagged_call_subscriber_is_dropped_not_the_stream() {
    let fs = FakeFs::start(Opts::default()).await;
    let mut cfg = config(&fs);
    cfg.call_queue = 4;
    let client = EslClient::connect(cfg).await.expect("connect");
    let mut slow = client.subscribe_call("slow");
    let mut fine = client.subscribe_call("fine");
    let mut bytes = Vec::new();
    for seq in 0..10 {
        bytes.extend(call_event("CHANNEL_STATE", "slow", seq));
    }
    bytes.extend(call_event("CHANNEL_ANSWER", "fine", 10));
    fs.inject(bytes);
    until("all events to be read", || client.stats().events.load(Ordering::Relaxed) == 11).await;
    // What was queued before the overflow is still delivered, then Lagged.
    for seq in 0..4 {
        let ev = slow.recv().await.expect("queued event");
        assert_eq!(ev.header("Event-Sequence").as_deref(), Some(seq.to_string().as_str()));
    }
    assert_eq!(slow.recv().await.expect_err("lagged"), CallEventsEnd::Lagged);
    assert_eq!(client.stats().lagged_subscribers.load(Ordering::Relaxed), 1);
    // Other calls and the connection are unaffected.
    assert_eq!(fine.recv().await.expect("fine").name().as_deref(), Some("CHANNEL_ANSWER"));
    assert_eq!(client.api("still-alive").await.expect("api"), "still-alive");
}

#[tokio::test]
async fn garbage_closes_the_connection_with_a_reason() {
    let cases: [(&[u8], &str); 3] = [
        (b"Content-Type: api/response\nContent-Length: 12x\n\n", "Content-Length"),
        (b"this line has no colon\n\n", "no ':' separator"),
        (&[b'A'; 70 * 1024], "exceeds"),
    ];
    for (bytes, want) in cases {
        let fs = FakeFs::start(Opts::default()).await;
        let client = EslClient::connect(config(&fs)).await.expect("connect");
        let c = client.clone();
        let pending = tokio::spawn(async move { c.api("sleep 2000").await });
        until("the command to reach the server", || fs.commands().iter().any(|c| c == "api sleep 2000")).await;
        fs.inject(bytes.to_vec());
        tokio::time::timeout(Duration::from_secs(5), client.closed()).await.expect("closed in time");
        let reason = client.close_reason().expect("a reason");
        assert!(reason.contains("protocol error") && reason.contains(want), "{reason:?} should name {want:?}");
        // The in-flight command fails with the same reason.
        match pending.await.expect("task") {
            Err(EslError::Closed { reason: Some(r) }) => assert_eq!(r, reason),
            other => panic!("expected Closed with reason, got {other:?}"),
        }
        // And later commands fail at once.
        assert!(matches!(client.api("x").await, Err(EslError::Closed { .. })));
    }
}

#[tokio::test]
async fn disconnect_notice_is_the_close_reason() {
    let fs = FakeFs::start(Opts::default()).await;
    let client = EslClient::connect(config(&fs)).await.expect("connect");
    fs.inject(frame("text/disconnect-notice", b"The system is being shut down.\n"));
    fs.kick();
    tokio::time::timeout(Duration::from_secs(5), client.closed()).await.expect("closed in time");
    let reason = client.close_reason().expect("reason");
    assert!(reason.contains("shut down") || reason.contains("closed the socket"), "{reason}");
}

#[tokio::test]
async fn event_stream_is_lossless_and_ends_with_the_connection() {
    let fs = FakeFs::start(Opts::default()).await;
    // A stream much smaller than the burst: the reader must wait, not drop.
    let (client, mut events) = EslClient::connect_with_events(config(&fs), 8).await.expect("connect");
    let mut bytes = Vec::new();
    for seq in 0..5000 {
        bytes.extend(call_event("CHANNEL_STATE", "burst", seq));
    }
    fs.inject(bytes);
    for seq in 0..5000 {
        let ev = events.recv().await.expect("event");
        assert_eq!(ev.header("Event-Sequence").as_deref(), Some(seq.to_string().as_str()));
    }
    client.shutdown().await;
    assert!(tokio::time::timeout(Duration::from_secs(5), events.recv()).await.expect("ends").is_none());
}
