//! The generic call path (docs/call-path.md) against the real Go sidecar: raw unary calls, the
//! stream path with credit, restarts, and the authenticated channel for tonic clients.
#![cfg(unix)]

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use prost::Message as _;
use tauri_plugin_anysync::proto::health_service_client::HealthServiceClient;
use tauri_plugin_anysync::proto::{
    HealthCheckRequest, HealthCheckResponse, PingRequest, PingResponse,
};
use tauri_plugin_anysync::{Config, FrameSink, ServingStatus, State, StreamOptions, Supervisor};

const START: Duration = Duration::from_secs(10);
const PING: &str = "anysync.v1.HealthService/Ping";
const CHECK: &str = "anysync.v1.HealthService/Check";
const WATCH: &str = "grpc.health.v1.Health/Watch";

/// `grpc.health.v1` messages, written out here: the plugin has no stubs for them, and needs none.
#[derive(Clone, PartialEq, prost::Message)]
struct GrpcHealthRequest {
    #[prost(string, tag = "1")]
    service: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct GrpcHealthResponse {
    #[prost(int32, tag = "1")]
    status: i32,
}
const GRPC_SERVING: i32 = 1;

async fn running(config: Config) -> Supervisor {
    let (supervisor, _) = start(resolve(config));
    state_reached(&supervisor, State::Running, START).await;
    supervisor
}

fn ping_bytes(message: &str) -> Bytes {
    PingRequest {
        message: message.into(),
    }
    .encode_to_vec()
    .into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_calls_round_trip_raw_protobuf() {
    let supervisor = running(fast_config(&real_sidecar())).await;

    let answer = supervisor
        .call(PING, ping_bytes("héllo, generic"), None)
        .await
        .expect("ping");
    let pong = PingResponse::decode(answer).expect("a PingResponse");
    assert_eq!(pong.message, "héllo, generic");
    assert!(pong.handled_at_unix_micros > 0);

    // An empty message is a valid request too.
    let answer = supervisor
        .call(CHECK, Bytes::new(), None)
        .await
        .expect("check");
    let health = HealthCheckResponse::decode(answer).expect("a HealthCheckResponse");
    assert_eq!(health.status(), ServingStatus::Serving);
    assert_eq!(Some(health.pid as u32), supervisor.status().pid);

    // The generic path is as fast as the typed one, give or take; print both for the record.
    for (name, generic) in [("typed", false), ("generic", true)] {
        let mut samples = Vec::new();
        for _ in 0..300 {
            let t = Instant::now();
            if generic {
                supervisor
                    .call(PING, ping_bytes("p"), None)
                    .await
                    .expect("ping");
            } else {
                supervisor.ping("p".into()).await.expect("ping");
            }
            samples.push(t.elapsed());
        }
        samples.sort();
        println!("{name} ping p50 {:?} p99 {:?}", samples[150], samples[297]);
    }
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_typed_errors_never_a_panic() {
    let supervisor = running(fast_config(&real_sidecar())).await;

    // Not a protobuf message: the backend's codec rejects it.
    for garbage in [&b"\xff\xff\xff\xff"[..], b"\x0a\x10short", b"\x08"] {
        let err = supervisor
            .call(PING, Bytes::copy_from_slice(garbage), None)
            .await
            .expect_err("garbage is refused");
        assert!(
            matches!(err.code(), "INTERNAL" | "INVALID_ARGUMENT"),
            "{garbage:?}: {err}"
        );
        assert!(!err.to_string().is_empty());
    }

    let err = supervisor
        .call("anysync.v1.HealthService/Nope", Bytes::new(), None)
        .await
        .expect_err("unknown method");
    assert_eq!(err.code(), "UNIMPLEMENTED", "{err}");

    for bad in ["/anysync.v1.HealthService/Ping", "nope", "a/b/c", ""] {
        let err = supervisor
            .call(bad, Bytes::new(), None)
            .await
            .expect_err("bad name");
        assert_eq!(err.code(), "INVALID_ARGUMENT", "{bad:?}: {err}");
    }
    // The backend is fine after all that.
    supervisor
        .call(PING, ping_bytes("ok"), None)
        .await
        .expect("ping");
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_at_the_message_limit_round_trips() {
    const LIMIT: usize = 1 << 20;
    let mut config = fast_config(&real_sidecar());
    config.env = Some([("ANYSYNC_MAX_MESSAGE_BYTES".to_owned(), LIMIT.to_string())].into());
    let supervisor = running(config).await;

    // Field tag (1 byte) + varint length (3 bytes) + the text: exactly at the limit.
    let text = "x".repeat(LIMIT - 4);
    let request = ping_bytes(&text);
    assert_eq!(request.len(), LIMIT);
    let answer = supervisor
        .call(PING, request, None)
        .await
        .expect("at the limit");
    assert_eq!(
        PingResponse::decode(answer).expect("decodes").message.len(),
        LIMIT - 4
    );

    let over = ping_bytes(&"x".repeat(LIMIT));
    let err = supervisor
        .call(PING, over, None)
        .await
        .expect_err("over the limit");
    assert_eq!(err.code(), "RESOURCE_EXHAUSTED", "{err}");
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_is_not_answered_fails_at_its_deadline() {
    // Slow health checks, so the supervisor does not replace the stopped backend meanwhile.
    let mut config = fast_config(&real_sidecar());
    config.health_check_interval_ms = Some(60_000);
    let supervisor = running(config).await;
    let pid = supervisor.status().pid.expect("pid");

    signal(pid, libc::SIGSTOP);
    eventually("every thread of the backend stopped", START, || {
        stopped(pid).then_some(())
    })
    .await;
    let started = Instant::now();
    let err = supervisor
        .call(PING, ping_bytes("late"), Some(Duration::from_millis(300)))
        .await
        .expect_err("a stopped backend does not answer");
    let took = started.elapsed();
    signal(pid, libc::SIGCONT);
    assert_eq!(err.code(), "DEADLINE_EXCEEDED", "{err}");
    assert!(
        took >= Duration::from_millis(290) && took < Duration::from_millis(1_500),
        "{took:?}"
    );
    // A timeout above callTimeoutMs is capped by it, never longer.
    supervisor
        .call(PING, ping_bytes("again"), Some(Duration::from_secs(3_600)))
        .await
        .expect("answers after SIGCONT");
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_during_a_restart_waits_and_succeeds() {
    let supervisor = running(fast_config(&real_sidecar())).await;
    let old = supervisor.status().pid.expect("pid");
    signal(old, libc::SIGKILL);
    // Once the supervisor saw the exit (a call racing the kill itself may reach the dying process:
    // that one fails UNAVAILABLE, "may or may not have handled the call"), a call waits for the
    // replacement instead of failing.
    let state = eventually("the supervisor to see the exit", START, || {
        let status = supervisor.status();
        (status.state != State::Running || status.pid != Some(old)).then_some(status.state)
    })
    .await;
    println!("calling while {state}");
    let answer = supervisor
        .call(CHECK, Bytes::new(), None)
        .await
        .expect("waits for the new incarnation");
    let health = HealthCheckResponse::decode(answer).expect("decodes");
    assert_ne!(health.pid as u32, old, "answered by the replacement");
    assert!(supervisor.status().restarts >= 1);
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_made_during_restart_wait_for_the_new_backend() {
    let supervisor = std::sync::Arc::new(running(fast_config(&real_sidecar())).await);
    let old = supervisor.status().pid.expect("pid");
    let restart = tokio::spawn({
        let supervisor = std::sync::Arc::clone(&supervisor);
        async move { supervisor.restart().await }
    });
    // Calls keep starting while the old incarnation drains and the new one starts; each must
    // succeed (a manual restart is not a reason to fail a call), none may see NOT_RUNNING.
    let mut calls = Vec::new();
    while !restart.is_finished() {
        let supervisor = std::sync::Arc::clone(&supervisor);
        calls.push(tokio::spawn(async move {
            supervisor.call(CHECK, Bytes::new(), None).await
        }));
        // Often enough that some calls reach the old incarnation after its stop began.
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let status = restart.await.expect("joins").expect("restart succeeds");
    assert_ne!(status.pid, Some(old));
    assert!(calls.len() > 1, "calls were made during the restart");
    for call in calls {
        let answer = call
            .await
            .expect("joins")
            .expect("a call made during restart() succeeds");
        HealthCheckResponse::decode(answer).expect("decodes");
    }
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_channel_serves_generated_clients_and_follows_restarts() {
    let supervisor = running(fast_config(&real_sidecar())).await;
    let mut client = HealthServiceClient::new(supervisor.channel());
    let pong = client
        .ping(PingRequest {
            message: "via channel".into(),
        })
        .await
        .expect("ping")
        .into_inner();
    assert_eq!(pong.message, "via channel");

    // The same client, after the backend was replaced: the next call reaches the new one.
    let old = supervisor.status().pid.expect("pid");
    let new = replaced_after(&supervisor, old, libc::SIGKILL).await;
    let health = client
        .check(HealthCheckRequest {})
        .await
        .expect("check on the new incarnation")
        .into_inner();
    assert_eq!(Some(health.pid as u32), new.pid);

    // Stopped: the channel says so with a gRPC status, not a hang.
    supervisor.shutdown().await;
    let status = client
        .check(HealthCheckRequest {})
        .await
        .expect_err("stopped");
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
}

fn watch_request() -> Bytes {
    GrpcHealthRequest {
        service: String::new(),
    }
    .encode_to_vec()
    .into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_health_watch_streams_its_first_status_then_blocks_until_cancelled() {
    let supervisor = running(fast_config(&real_sidecar())).await;
    let frames = Arc::new(Frames::default());
    let stream = supervisor
        .open_stream(
            WATCH,
            watch_request(),
            StreamOptions {
                timeout: None,
                credit: 8,
            },
            frames.clone() as Arc<dyn FrameSink>,
        )
        .await
        .expect("opens");
    let first = eventually("the first status", START, || {
        frames.messages().first().cloned()
    })
    .await;
    assert_eq!(
        GrpcHealthResponse::decode(first.as_slice())
            .expect("decodes")
            .status,
        GRPC_SERVING
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        frames.messages().len(),
        1,
        "Watch sends again only on a change"
    );
    assert!(frames.end().is_none());

    stream.cancel();
    let end = frames.ended(START).await.expect("an error end frame");
    assert_eq!(end.code, "CANCELLED", "{end:?}");
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_streams_end_unavailable_when_the_backend_dies_and_new_ones_work() {
    let supervisor = running(fast_config(&real_sidecar())).await;
    let open = |frames: Arc<Frames>| {
        let supervisor = &supervisor;
        async move {
            supervisor
                .open_stream(
                    WATCH,
                    watch_request(),
                    StreamOptions {
                        timeout: None,
                        credit: 4,
                    },
                    frames as Arc<dyn FrameSink>,
                )
                .await
                .expect("opens")
        }
    };
    let streams: Vec<Arc<Frames>> = (0..5).map(|_| Arc::new(Frames::default())).collect();
    for frames in &streams {
        open(frames.clone()).await;
    }
    for frames in &streams {
        eventually("the first status", START, || {
            frames.messages().first().cloned()
        })
        .await;
    }

    let old = supervisor.status().pid.expect("pid");
    let killed = Instant::now();
    signal(old, libc::SIGKILL);
    for frames in &streams {
        let end = frames.ended(START).await.expect("an error end frame");
        assert_eq!(end.code, "UNAVAILABLE", "{end:?}");
    }
    println!(
        "5 streams ended UNAVAILABLE {:?} after the kill",
        killed.elapsed()
    );

    // Resubscribing works: it waits for the replacement.
    let again = Arc::new(Frames::default());
    open(again.clone()).await;
    eventually("a status from the new backend", START, || {
        again.messages().first().cloned()
    })
    .await;
    assert_ne!(supervisor.status().pid, Some(old));

    // A graceful restart ends open streams the same way.
    supervisor.restart().await.expect("restart");
    let end = again.ended(START).await.expect("an error end frame");
    assert_eq!(end.code, "UNAVAILABLE", "{end:?}");
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_requests_refused_before_opening_are_errors_not_frames() {
    let supervisor = running(fast_config(&real_sidecar())).await;
    let frames = Arc::new(Frames::default());
    for credit in [0, 1025] {
        let err = supervisor
            .open_stream(
                WATCH,
                watch_request(),
                StreamOptions {
                    timeout: None,
                    credit,
                },
                frames.clone() as Arc<dyn FrameSink>,
            )
            .await
            .expect_err("credit out of range");
        assert_eq!(err.code(), "INVALID_ARGUMENT", "{err}");
    }
    let err = supervisor
        .open_stream(
            "not a method",
            Bytes::new(),
            StreamOptions {
                timeout: None,
                credit: 1,
            },
            frames.clone() as Arc<dyn FrameSink>,
        )
        .await
        .expect_err("bad method");
    assert_eq!(err.code(), "INVALID_ARGUMENT", "{err}");
    assert_eq!(frames.payload_count(), 0);

    // A stream the backend refuses ends with its status as the end frame.
    supervisor
        .open_stream(
            "grpc.health.v1.Health/Nope",
            Bytes::new(),
            StreamOptions {
                timeout: None,
                credit: 1,
            },
            frames.clone() as Arc<dyn FrameSink>,
        )
        .await
        .expect("registered");
    let end = frames.ended(START).await.expect("error");
    assert_eq!(end.code, "UNIMPLEMENTED", "{end:?}");

    // A stream deadline ends it with DEADLINE_EXCEEDED.
    let timed = Arc::new(Frames::default());
    supervisor
        .open_stream(
            WATCH,
            watch_request(),
            StreamOptions {
                timeout: Some(Duration::from_millis(200)),
                credit: 1,
            },
            timed.clone() as Arc<dyn FrameSink>,
        )
        .await
        .expect("opens");
    let end = timed.ended(START).await.expect("error");
    assert_eq!(end.code, "DEADLINE_EXCEEDED", "{end:?}");
    assert_eq!(timed.messages().len(), 1);
    supervisor.shutdown().await;
}
