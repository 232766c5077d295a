//! Every way a sidecar can fail to start, each with its own error code, and the crash loop that ends
//! in `Failed` until `restart()`.
#![cfg(unix)]

mod common;

use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use prost::Message as _;
use tauri_plugin_anysync::{Config, HealthCheckResponse, ServingStatus, State};

const SETTLE: Duration = Duration::from_secs(10);

/// Starts a supervisor that gives up on the first failure, waits for `Failed`, and returns the
/// recorded error code and message.
async fn first_failure(sidecar: &Path, tweak: impl FnOnce(&mut Config)) -> (String, String) {
    let mut config = fast_config(sidecar);
    config.max_restarts = Some(0);
    tweak(&mut config);
    let (supervisor, _) = start(resolve(config));
    let status = state_reached(&supervisor, State::Failed, SETTLE).await;
    let error = status.last_error.expect("the failure is recorded");

    // Calls fail fast with SIDECAR_FAILED, and carry the cause.
    let call = supervisor
        .ping("x".into())
        .await
        .expect_err("failed backend");
    assert_eq!(call.code(), "SIDECAR_FAILED");
    let json = serde_json::to_value(&call).expect("json");
    assert_eq!(json["details"]["cause"]["code"], error.code.as_str());
    supervisor.shutdown().await;
    (error.code, error.message)
}

#[tokio::test]
async fn a_missing_binary_is_sidecar_not_found() {
    let (code, message) = first_failure(Path::new("/nonexistent/anysync-backend"), |_| {}).await;
    assert_eq!(code, "SIDECAR_NOT_FOUND");
    assert!(
        message.contains("/nonexistent/anysync-backend"),
        "{message}"
    );
}

#[tokio::test]
async fn a_non_executable_binary_is_spawn_failed() {
    let dir = scratch();
    let path = dir.path().join("anysync-backend");
    std::fs::write(&path, "not a program").expect("write");
    let (code, message) = first_failure(&path, |_| {}).await;
    assert_eq!(code, "SPAWN_FAILED");
    assert!(message.contains("ermission denied"), "{message}");
}

#[tokio::test]
async fn a_binary_for_another_architecture_is_spawn_failed() {
    let dir = scratch();
    let path = dir.path().join("anysync-backend");
    // An ELF header for a machine this host cannot run (chosen relative to the host, so the test
    // means the same on x86-64 and on AArch64), executable bit set.
    let machine = foreign_elf_machine();
    let host = match std::env::consts::ARCH {
        "x86_64" => Some(62),
        "aarch64" => Some(183),
        _ => None,
    };
    assert_ne!(Some(machine), host, "a foreign machine type");
    let mut elf = vec![
        0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0,
    ];
    elf.extend_from_slice(&machine.to_le_bytes());
    elf.resize(64, 0);
    std::fs::write(&path, elf).expect("write");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let (code, message) = first_failure(&path, |_| {}).await;
    assert_eq!(code, "SPAWN_FAILED", "{message}");
    assert!(
        message.contains(&format!("machine type {machine},")),
        "{message}"
    );
}

#[tokio::test]
async fn a_silent_sidecar_is_handshake_timeout() {
    let dir = scratch();
    let path = script(
        dir.path(),
        "silent",
        "echo 'starting up...' >&2\nexec sleep 30",
    );
    let (code, message) = first_failure(&path, |c| c.handshake_timeout_ms = Some(300)).await;
    assert_eq!(code, "HANDSHAKE_TIMEOUT");
    assert!(
        message.contains("300ms") && message.contains("starting up..."),
        "{message}"
    );
}

#[tokio::test]
async fn another_protocol_version_is_incompatible_backend() {
    let dir = scratch();
    let path = script(
        dir.path(),
        "future",
        r#"read line; echo '{"anysync":"ready","protocolVersion":2,"addr":"127.0.0.1:1","pid":1,"version":"9.0.0"}'; exec cat"#,
    );
    let (code, message) = first_failure(&path, |_| {}).await;
    assert_eq!(code, "INCOMPATIBLE_BACKEND");
    assert!(
        message.contains("protocol 2") && message.contains("speaks 1"),
        "{message}"
    );
}

#[tokio::test]
async fn garbage_on_stdout_is_handshake_invalid() {
    let dir = scratch();
    let path = script(
        dir.path(),
        "chatty",
        "read line; echo 'Hello from a program that is not a backend'; exec cat",
    );
    let (code, message) = first_failure(&path, |_| {}).await;
    assert_eq!(code, "HANDSHAKE_INVALID");
    assert!(message.contains("Hello from a program"), "{message}");
}

#[tokio::test]
async fn exiting_before_the_handshake_is_sidecar_exited_with_its_stderr() {
    let dir = scratch();
    let path = script(
        dir.path(),
        "dies",
        "echo 'config: listenAddr is invalid' >&2\nexit 2",
    );
    let (code, message) = first_failure(&path, |_| {}).await;
    assert_eq!(code, "SIDECAR_EXITED");
    assert!(
        message.contains("exit status: 2") && message.contains("listenAddr is invalid"),
        "{message}"
    );
}

#[tokio::test]
async fn the_real_sidecar_rejecting_its_config_is_sidecar_exited_naming_the_key() {
    let (code, message) = first_failure(&real_sidecar(), |c| {
        c.env = Some([("ANYSYNC_LISTEN_ADDR".to_owned(), "0.0.0.0:0".to_owned())].into());
    })
    .await;
    assert_eq!(code, "SIDECAR_EXITED");
    assert!(
        message.contains("exit status: 2") && message.contains("listenAddr"),
        "{message}"
    );
}

#[tokio::test]
async fn a_port_in_use_is_reported_with_the_backends_words() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr").to_string();
    let (code, message) = first_failure(&real_sidecar(), |c| {
        c.env = Some([("ANYSYNC_LISTEN_ADDR".to_owned(), addr.clone())].into());
    })
    .await;
    assert_eq!(code, "SIDECAR_EXITED");
    assert!(message.contains("in use"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_loop_ends_in_failed_and_restart_recovers() {
    let dir = scratch();
    let path = script(
        dir.path(),
        "anysync-backend",
        "echo 'crashing on purpose' >&2\nexit 3",
    );
    let mut config = fast_config(&path);
    config.max_restarts = Some(3);
    let (supervisor, recorder) = start(resolve(config));
    let failed = state_reached(&supervisor, State::Failed, SETTLE).await;
    assert_eq!(failed.restarts, 3, "gave up after max_restarts restarts");
    assert_eq!(failed.last_error.expect("recorded").code, "SIDECAR_EXITED");
    let states = recorder.states();
    assert_eq!(
        (states.first(), states.last()),
        (Some(&State::Starting), Some(&State::Failed)),
        "{states:?}"
    );
    let mut restarts: Vec<u32> = recorder
        .statuses
        .lock()
        .expect("lock")
        .iter()
        .filter(|s| s.state == State::Restarting)
        .map(|s| s.restarts)
        .collect();
    restarts.dedup();
    assert_eq!(restarts, [1, 2, 3], "one Restarting episode per restart");

    // Still failed a while later: no restarts behind the caller's back. The wait is real: many
    // health-check intervals (100 ms) and the longest backoff (200 ms) over, polled throughout.
    let statuses_when_failed = recorder.statuses.lock().expect("lock").len();
    holds_for(
        "Failed, with no restart behind the caller's back",
        Duration::from_millis(1_500),
        || {
            let status = supervisor.status();
            status.state == State::Failed && status.restarts == 3 && status.pid.is_none()
        },
    )
    .await;
    assert_eq!(
        recorder.statuses.lock().expect("lock").len(),
        statuses_when_failed,
        "no status change while failed"
    );
    let err = supervisor.ping("x".into()).await.expect_err("failed");
    assert_eq!(err.code(), "SIDECAR_FAILED");
    assert!(err.to_string().contains("restart()"), "{err}");

    // Fix the cause, then restart() brings it back with a fresh restart budget.
    script(
        dir.path(),
        "anysync-backend",
        &format!("exec '{}' \"$@\"", real_sidecar().display()),
    );
    let status = supervisor.restart().await.expect("recovers");
    assert_eq!(status.state, State::Running);
    assert_eq!(
        supervisor.ping("back".into()).await.expect("ping").message,
        "back"
    );
    supervisor.shutdown().await;
}

#[tokio::test]
async fn restart_of_a_still_broken_backend_reports_the_failure() {
    let (supervisor, _) = start(resolve(Config {
        max_restarts: Some(0),
        ..fast_config(Path::new("/nonexistent/anysync-backend"))
    }));
    state_reached(&supervisor, State::Failed, SETTLE).await;
    let err = supervisor.restart().await.expect_err("still missing");
    assert_eq!(err.code(), "SIDECAR_FAILED");
    supervisor.shutdown().await;
}

#[test]
fn a_malformed_config_is_a_config_error_naming_the_key() {
    let config: Config = serde_json::from_str(r#"{"callTimeoutMs": 0}"#).expect("parses");
    let err = config.resolve().expect_err("out of range");
    assert_eq!(err.code(), "CONFIG");
    assert!(err.to_string().contains("callTimeoutMs"), "{err}");
}

/// A gRPC server of its own (HTTP/2 by hand, with h2) that answers every call with a
/// `HealthCheckResponse` of the serving status `status` holds at that moment, without checking the
/// token. Returns its port.
async fn health_server(status: Arc<AtomicI32>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let status = Arc::clone(&status);
            tokio::spawn(async move {
                let Ok(mut connection) = h2::server::handshake(socket).await else {
                    return;
                };
                while let Some(Ok((request, mut respond))) = connection.accept().await {
                    let status = status.load(Ordering::SeqCst);
                    tokio::spawn(async move {
                        let mut body = request.into_body();
                        while let Some(Ok(chunk)) = body.data().await {
                            let _ = body.flow_control().release_capacity(chunk.len());
                        }
                        let message = HealthCheckResponse {
                            status,
                            version: "0.1.0".into(),
                            protocol_version: 1,
                            uptime_ms: 1,
                            pid: 1,
                        }
                        .encode_to_vec();
                        let mut frame = vec![0u8];
                        frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
                        frame.extend_from_slice(&message);
                        let response = http::Response::builder()
                            .status(200)
                            .header("content-type", "application/grpc")
                            .body(())
                            .expect("response");
                        let Ok(mut send) = respond.send_response(response, false) else {
                            return;
                        };
                        let _ = send.send_data(frame.into(), false);
                        let mut trailers = http::HeaderMap::new();
                        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
                        let _ = send.send_trailers(trailers);
                    });
                }
            });
        }
    });
    port
}

/// A sidecar that announces `port` (someone else's server) and then lives until its stdin closes.
fn announcing(dir: &Path, port: u16) -> std::path::PathBuf {
    script(
        dir,
        "anysync-backend",
        &format!(
            "read -r bootstrap\n\
             echo \"{{\\\"anysync\\\":\\\"ready\\\",\\\"protocolVersion\\\":1,\\\"addr\\\":\\\"127.0.0.1:{port}\\\",\\\"pid\\\":$$,\\\"version\\\":\\\"0.1.0\\\"}}\"\n\
             exec cat >/dev/null"
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_reports_not_serving_at_start_does_not_run() {
    let status = Arc::new(AtomicI32::new(ServingStatus::NotServing as i32));
    let port = health_server(status).await;
    let dir = scratch();
    let (code, message) = first_failure(&announcing(dir.path(), port), |_| {}).await;
    assert_eq!(code, "UNAVAILABLE", "{message}");
    assert!(message.contains("NOT_SERVING"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_backend_that_turns_not_serving_is_unhealthy() {
    let status = Arc::new(AtomicI32::new(ServingStatus::Serving as i32));
    let port = health_server(Arc::clone(&status)).await;
    let dir = scratch();
    let mut config = fast_config(&announcing(dir.path(), port));
    config.max_restarts = Some(0);
    let (supervisor, recorder) = start(resolve(config));
    state_reached(&supervisor, State::Running, SETTLE).await;
    // Answers arrive, all of them NOT_SERVING: a draining backend, not a healthy one.
    status.store(ServingStatus::NotServing as i32, Ordering::SeqCst);
    let failed = state_reached(&supervisor, State::Failed, SETTLE).await;
    let error = failed.last_error.expect("recorded");
    assert_eq!(error.code, "UNAVAILABLE", "{}", error.message);
    assert!(error.message.contains("NOT_SERVING"), "{}", error.message);
    let states = recorder.states();
    assert!(
        states.contains(&State::Unhealthy),
        "the probe found it unhealthy: {states:?}"
    );
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handshake_timeout_bounds_the_whole_start() {
    // The handshake comes at once, but the announced port accepts connections and never answers:
    // connecting and the first health check must fit in the same handshakeTimeoutMs.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = silent.local_addr().expect("addr").port();
    let dir = scratch();
    let started = Instant::now();
    let (code, message) = first_failure(&announcing(dir.path(), port), |config| {
        config.handshake_timeout_ms = Some(500);
        config.call_timeout_ms = Some(5_000);
    })
    .await;
    let took = started.elapsed();
    drop(silent);
    assert_eq!(code, "HANDSHAKE_TIMEOUT", "{message}");
    assert!(
        took < Duration::from_millis(2_500),
        "failed at handshakeTimeoutMs, not after other budgets: {took:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_is_bounded_by_its_deadline() {
    // A backend that never completes a start, with restarts to spare: restart() must not wait for
    // the supervisor to give up.
    let dir = scratch();
    let path = script(dir.path(), "anysync-backend", "exec sleep 30");
    let mut config = fast_config(&path);
    config.handshake_timeout_ms = Some(300);
    config.shutdown_timeout_ms = Some(200);
    config.max_restarts = Some(1_000);
    config.backoff_initial_ms = Some(0);
    config.backoff_max_ms = Some(0);
    let (supervisor, _) = start(resolve(config));
    let bound = supervisor.restart_bound();
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(10), supervisor.restart())
        .await
        .expect("restart() returns by its deadline");
    let took = started.elapsed();
    let err = outcome.expect_err("never runs");
    assert_eq!(err.code(), "UNAVAILABLE", "{err}");
    assert!(
        took < bound + Duration::from_millis(500),
        "{took:?} vs {bound:?}"
    );
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifo_as_the_sidecar_fails_at_once_instead_of_blocking_the_start() {
    let dir = scratch();
    let path = dir.path().join("anysync-backend");
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).expect("path");
    // SAFETY: mkfifo with a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o755) }, 0, "mkfifo");
    // Should the start block opening the FIFO, a writer releases it after a while, so that a
    // failing test ends instead of hanging.
    let writer_path = path.clone();
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_secs(5));
        let _ = std::fs::OpenOptions::new().write(true).open(writer_path);
    });
    let started = Instant::now();
    let (code, message) = first_failure(&path, |_| {}).await;
    assert_eq!(code, "SPAWN_FAILED", "{message}");
    assert!(message.contains("not a regular file"), "{message}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "failed at once: {:?}",
        started.elapsed()
    );
}
