//! The stream path against the example app's own backend (examples/tauri-app/backend), whose
//! example.v1.CounterService reports what Go observed of its callers (`Stats`): flow control that
//! reaches Go's `Send`, cancellation that reaches the handler's context, and many open streams next
//! to unary calls.
#![cfg(unix)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::*;
use prost::Message as _;
use tauri_plugin_anysync::{FrameSink, State, StreamOptions, Supervisor};

const START: Duration = Duration::from_secs(10);
const TICK: &str = "example.v1.CounterService/Tick";
const STATS: &str = "example.v1.CounterService/Stats";
const SLEEP: &str = "example.v1.CounterService/Sleep";

/// example.v1 messages (examples/tauri-app/backend/proto/example/v1/counter.proto), written out
/// here: the plugin has no stubs for the app's services, and needs none.
#[derive(Clone, PartialEq, prost::Message)]
struct TickRequest {
    #[prost(uint64, tag = "1")]
    count: u64,
    #[prost(uint32, tag = "2")]
    interval_ms: u32,
    #[prost(uint32, tag = "3")]
    payload_bytes: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct TickEvent {
    #[prost(uint64, tag = "1")]
    seq: u64,
    #[prost(int64, tag = "2")]
    sent_at_unix_micros: i64,
    #[prost(bytes = "vec", tag = "3")]
    payload: Vec<u8>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct SleepRequest {
    #[prost(uint32, tag = "1")]
    duration_ms: u32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct StatsResponse {
    #[prost(uint64, tag = "1")]
    cancelled_calls: u64,
    #[prost(uint64, tag = "2")]
    cancelled_streams: u64,
    #[prost(uint32, tag = "3")]
    open_streams: u32,
    #[prost(uint64, tag = "4")]
    ticks_sent: u64,
    #[prost(int64, tag = "5")]
    last_cancelled_at_unix_micros: i64,
    #[prost(bool, tag = "6")]
    send_blocked: bool,
    #[prost(uint32, tag = "7")]
    sleeping_calls: u32,
}

async fn running() -> Supervisor {
    let (supervisor, _) = start(resolve(fast_config(&example_backend())));
    state_reached(&supervisor, State::Running, START).await;
    supervisor
}

async fn stats(supervisor: &Supervisor) -> StatsResponse {
    let answer = supervisor
        .call(STATS, Bytes::new(), None)
        .await
        .expect("stats");
    StatsResponse::decode(answer).expect("a StatsResponse")
}

/// Polls the backend's `Stats` every 5 ms until `done` holds, and returns those stats; fails the
/// test with `what` and the last stats after `START`.
async fn stats_when(
    supervisor: &Supervisor,
    what: &str,
    done: impl Fn(&StatsResponse) -> bool,
) -> StatsResponse {
    let deadline = Instant::now() + START;
    loop {
        let s = stats(supervisor).await;
        if done(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what}: {s:?}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn tick(count: u64, interval_ms: u32, payload_bytes: u32) -> Bytes {
    TickRequest {
        count,
        interval_ms,
        payload_bytes,
    }
    .encode_to_vec()
    .into()
}

async fn open(
    supervisor: &Supervisor,
    request: Bytes,
    credit: u32,
) -> (Arc<Frames>, tauri_plugin_anysync::StreamHandle) {
    let frames = Arc::new(Frames::default());
    let handle = supervisor
        .open_stream(
            TICK,
            request,
            StreamOptions {
                timeout: None,
                credit,
            },
            frames.clone() as Arc<dyn FrameSink>,
        )
        .await
        .expect("opens");
    (frames, handle)
}

fn now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_micros() as i64
}

fn seqs(frames: &Frames) -> Vec<u64> {
    frames
        .messages()
        .iter()
        .map(|m| TickEvent::decode(m.as_slice()).expect("a TickEvent").seq)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credit_bounds_what_is_delivered_and_blocks_go() {
    let supervisor = running().await;
    // Endless 64 KiB ticks, as fast as the caller reads, with credit for two.
    let (frames, handle) = open(&supervisor, tick(0, 0, 64 * 1024), 2).await;
    eventually("two ticks", START, || {
        (frames.messages().len() >= 2).then_some(())
    })
    .await;
    let blocked = stats_when(&supervisor, "Go never blocked in Send", |s| s.send_blocked).await;
    // Rust took exactly the two it had credit for; what else Go sent sits in one HTTP/2 stream
    // window (256 KiB: 4 ticks) plus grpc-go's own write buffer, and then Send blocks.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        seqs(&frames),
        [1, 2],
        "only the credited messages are delivered"
    );
    let later = stats(&supervisor).await;
    assert!(later.send_blocked, "{later:?}");
    assert_eq!(
        later.ticks_sent, blocked.ticks_sent,
        "Go stays blocked: {later:?}"
    );
    assert!(
        later.ticks_sent <= 2 + 4 + 4,
        "Go got at most a window ahead: {later:?}"
    );
    println!(
        "credit 2, 64 KiB ticks: Go sent {} and blocked",
        later.ticks_sent
    );

    handle.add_credit(3).expect("credit");
    eventually("three more ticks", START, || {
        (frames.messages().len() >= 5).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        seqs(&frames),
        [1, 2, 3, 4, 5],
        "in order, and no more than credited"
    );
    handle.cancel();
    let end = frames.ended(START).await.expect("an error end frame");
    assert_eq!(end.code, "CANCELLED");
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancellation_reaches_the_go_handler_within_10ms() {
    let supervisor = running().await;

    // A stream: cancelled while Go is blocked on its next tick.
    let (frames, handle) = open(&supervisor, tick(0, 50, 16), 1024).await;
    eventually("a tick", START, || {
        (!frames.messages().is_empty()).then_some(())
    })
    .await;
    let cancelled_at = now_micros();
    handle.cancel();
    let observed = stats_when(&supervisor, "Go never saw the cancel", |s| {
        s.cancelled_streams == 1
    })
    .await;
    let lag = observed.last_cancelled_at_unix_micros - cancelled_at;
    println!("stream cancel -> Go handler: {lag} µs");
    assert!((0..10_000).contains(&lag), "{lag} µs");
    assert_eq!(frames.ended(START).await.expect("end").code, "CANCELLED");

    // A unary call: dropping it (what `cancel` does to a pending `call`) resets it.
    let sleep: Bytes = SleepRequest {
        duration_ms: 10_000,
    }
    .encode_to_vec()
    .into();
    let mut call = Box::pin(supervisor.call(SLEEP, sleep, None));
    assert!(
        tokio::time::timeout(Duration::from_millis(100), &mut call)
            .await
            .is_err(),
        "Sleep answers only after 10 s"
    );
    let dropped_at = now_micros();
    drop(call);
    let observed = stats_when(&supervisor, "Go never saw the cancel", |s| {
        s.cancelled_calls == 1
    })
    .await;
    let lag = observed.last_cancelled_at_unix_micros - dropped_at;
    println!("unary cancel -> Go handler: {lag} µs");
    assert!((0..10_000).contains(&lag), "{lag} µs");
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_open_streams_never_fail_a_unary_call() {
    let supervisor = running().await;
    let mut streams = Vec::new();
    for _ in 0..200 {
        // Each stream ticks every 20 ms with credit for one: open, stalled, holding its slot.
        streams.push(open(&supervisor, tick(0, 20, 1024), 1).await);
    }
    for (frames, _) in &streams {
        eventually("each stream's first tick", START, || {
            (!frames.messages().is_empty()).then_some(())
        })
        .await;
    }
    assert_eq!(stats(&supervisor).await.open_streams, 200);

    let mut samples = Vec::new();
    let ping: Bytes = tauri_plugin_anysync::proto::PingRequest {
        message: "p".into(),
    }
    .encode_to_vec()
    .into();
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        let t = Instant::now();
        supervisor
            .call(
                "anysync.v1.HealthService/Ping",
                ping.clone(),
                Some(Duration::from_secs(1)),
            )
            .await
            .expect("no unary call fails next to 200 streams");
        samples.push(t.elapsed());
    }
    samples.sort();
    let p99 = samples[samples.len() * 99 / 100];
    println!(
        "{} unary calls next to 200 open streams: p50 {:?} p99 {:?}",
        samples.len(),
        samples[samples.len() / 2],
        p99
    );
    assert!(samples.len() > 100, "a steady load");
    assert!(
        p99 < Duration::from_millis(100),
        "unary calls do not wait on streams: {p99:?}"
    );

    for (_, handle) in &streams {
        handle.cancel();
    }
    for (frames, _) in &streams {
        assert_eq!(frames.ended(START).await.expect("end").code, "CANCELLED");
    }
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_shorter_than_the_handler_is_deadline_exceeded() {
    let supervisor = running().await;
    let sleep = SleepRequest { duration_ms: 5_000 }.encode_to_vec();
    for round in 0..20 {
        let error = supervisor
            .call(
                SLEEP,
                Bytes::from(sleep.clone()),
                Some(Duration::from_millis(50 + round * 5)),
            )
            .await
            .expect_err("the deadline passes first");
        assert_eq!(error.code(), "DEADLINE_EXCEEDED", "round {round}: {error}");
    }
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_with_a_call_in_flight_is_still_a_clean_exit() {
    // The handler outlasts the plugin's kill timeout (4 s here, below Go's default grace of 5 s):
    // the backend's own grace, which the plugin hands it below that timeout (3 s), must end it
    // first, so the stop is an exit, not SIGKILL.
    let mut config = fast_config(&example_backend());
    config.shutdown_timeout_ms = Some(4_000);
    config.call_timeout_ms = Some(60_000);
    let (supervisor, _) = start(resolve(config));
    state_reached(&supervisor, State::Running, START).await;
    let supervisor = Arc::new(supervisor);
    let sleeping = {
        let supervisor = Arc::clone(&supervisor);
        tokio::spawn(async move {
            let sleep = SleepRequest {
                duration_ms: 60_000,
            }
            .encode_to_vec();
            supervisor.call(SLEEP, Bytes::from(sleep), None).await
        })
    };
    // The stop must find the call inside its handler: poll the backend until it is there.
    stats_when(
        &supervisor,
        "the Sleep call never reached its handler",
        |s| s.sleeping_calls > 0,
    )
    .await;
    let started = Instant::now();
    let exit = supervisor
        .shutdown()
        .await
        .expect("a running backend exits");
    println!(
        "stop with a call in flight: {:?}, {exit:?}",
        started.elapsed()
    );
    assert_eq!(
        (
            exit.code(),
            std::os::unix::process::ExitStatusExt::signal(&exit)
        ),
        (Some(0), None),
        "the backend exited on its own within the kill timeout: {exit:?}"
    );
    let _ = sleeping.await.expect("task");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_with_open_streams_ends_them_and_exits_cleanly_well_within_its_grace() {
    // shutdown_timeout 3 s: Go's grace is 2.25 s. Streams that were waited out would take all of
    // it; cancelled first, the stop takes a fraction.
    let mut config = fast_config(&example_backend());
    config.shutdown_timeout_ms = Some(3_000);
    let (supervisor, _) = start(resolve(config));
    state_reached(&supervisor, State::Running, START).await;
    let mut streams = Vec::new();
    for _ in 0..5 {
        streams.push(open(&supervisor, tick(0, 10, 16), 1024).await);
    }
    // And one whose consumer stalled: Go is blocked in Send.
    streams.push(open(&supervisor, tick(0, 0, 64 * 1024), 1).await);
    let deadline = Instant::now() + START;
    loop {
        let s = stats(&supervisor).await;
        if s.open_streams == 6 && s.send_blocked {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "six streams open in Go, one blocked in Send: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let exit = supervisor
        .shutdown()
        .await
        .expect("a running backend exits");
    let took = started.elapsed();
    println!("stop with 6 open streams: {took:?}, {exit:?}");
    assert_eq!(
        (
            exit.code(),
            std::os::unix::process::ExitStatusExt::signal(&exit)
        ),
        (Some(0), None),
        "a clean exit: {exit:?}"
    );
    assert!(
        took < Duration::from_millis(1_500),
        "the stop took {took:?}"
    );
    for (frames, _handle) in &streams {
        let end = frames.ended(START).await;
        assert_eq!(
            end.as_ref().map(|e| e.code.as_str()),
            Some("UNAVAILABLE"),
            "every stream ends UNAVAILABLE, so the app resubscribes: {end:?}"
        );
    }
}
