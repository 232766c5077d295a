//! Every way a sidecar can fail to start, each with its own error code, and the crash loop that ends
//! in `Failed` until `restart()`.
#![cfg(unix)]

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use tauri_plugin_anysync::{Config, State};

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
    // An ELF header for a machine this host cannot run, executable bit set.
    let mut elf = vec![
        0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0xb7, 0,
    ];
    elf.resize(64, 0);
    std::fs::write(&path, elf).expect("write");
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod");
    let (code, message) = first_failure(&path, |_| {}).await;
    assert_eq!(code, "SPAWN_FAILED", "{message}");
    assert!(message.contains("machine type 183"), "{message}");
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

    // Still failed a while later: no restarts behind the caller's back.
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
