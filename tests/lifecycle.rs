//! The supervisor against the real Go sidecar: start, calls, crashes, hangs, shutdown, orphans.
#![cfg(unix)]

mod common;

use std::io::BufRead as _;
use std::time::{Duration, Instant};

use common::*;
use tauri_plugin_anysync::{Config, ServingStatus, State};

const START: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_handshakes_and_answers_ping_and_health() {
    let spawned = Instant::now();
    let (supervisor, recorder) = start(resolve(fast_config(&real_sidecar())));
    let status = state_reached(&supervisor, State::Running, START).await;
    println!("spawn -> Running: {:?}", spawned.elapsed());

    let pid = status.pid.expect("pid while running");
    assert!(alive(pid));
    assert!(
        status
            .addr
            .as_deref()
            .is_some_and(|a| a.starts_with("127.0.0.1:")),
        "{status:?}"
    );
    assert_eq!(status.version.as_deref(), Some("0.1.0"));
    assert_eq!(status.restarts, 0);

    let pong = supervisor
        .ping("héllo, backend".into())
        .await
        .expect("ping");
    assert_eq!(pong.message, "héllo, backend");
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_micros() as i64;
    assert!(
        (now_us - pong.handled_at_unix_micros).abs() < 10_000_000,
        "handled_at is now-ish"
    );

    let health = supervisor.health().await.expect("health");
    assert_eq!(health.status(), ServingStatus::Serving);
    assert_eq!((health.pid as u32, health.protocol_version), (pid, 1));
    assert_eq!(health.version, "0.1.0");
    assert!(health.uptime_ms >= 0);

    // The backend's start-up record reached the log ring and the sink, tagged with its pid.
    eventually("a backend log record", START, || {
        supervisor
            .logs()
            .iter()
            .any(|r| r.pid == Some(pid))
            .then_some(())
    })
    .await;
    assert!(!recorder.logs.lock().expect("lock").is_empty());
    assert_eq!(recorder.states(), [State::Starting, State::Running]);

    let mut samples = Vec::new();
    for _ in 0..500 {
        let t = Instant::now();
        supervisor.ping("p".into()).await.expect("ping");
        samples.push(t.elapsed());
    }
    samples.sort();
    println!(
        "Rust->Go ping p50 {:?} p99 {:?} (500 sequential calls)",
        samples[250], samples[495]
    );

    supervisor.shutdown().await;
    assert_eq!(supervisor.status().state, State::Stopped);
    assert!(!alive(pid), "sidecar pid {pid} must be gone after shutdown");
    assert_eq!(recorder.states().last(), Some(&State::Stopped));
    let err = supervisor.ping("after".into()).await.expect_err("stopped");
    assert_eq!(err.code(), "NOT_RUNNING");
    supervisor.shutdown().await; // idempotent
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hundreds_of_concurrent_calls_all_get_their_own_answer() {
    let (supervisor, _) = start(resolve(fast_config(&real_sidecar())));
    let supervisor = std::sync::Arc::new(supervisor);
    let calls: Vec<_> = (0..500)
        .map(|i| {
            let supervisor = supervisor.clone();
            tokio::spawn(async move { (i, supervisor.ping(format!("call {i}")).await) })
        })
        .collect();
    for call in calls {
        let (i, answer) = call.await.expect("task");
        assert_eq!(answer.expect("answered").message, format!("call {i}"));
    }
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_the_sidecar_restarts_it_with_a_new_pid() {
    let (supervisor, recorder) = start(resolve(fast_config(&real_sidecar())));
    let first = running_pid(&supervisor).await;
    let killed = Instant::now();
    let second = replaced_after(&supervisor, first, libc::SIGKILL).await;
    println!("SIGKILL -> Running again: {:?}", killed.elapsed());

    assert_eq!(second.restarts, 1);
    let last_error = second.last_error.expect("the crash is recorded");
    assert_eq!(last_error.code, "SIDECAR_EXITED");
    assert!(
        last_error.message.contains("signal 9") && last_error.message.contains("while running"),
        "{}",
        last_error.message
    );
    assert_eq!(
        recorder.states(),
        [
            State::Starting,
            State::Running,
            State::Restarting,
            State::Running
        ]
    );
    assert_eq!(
        supervisor
            .ping("after the crash".into())
            .await
            .expect("ping")
            .message,
        "after the crash"
    );
    assert!(!alive(first));
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_during_a_restart_wait_for_the_new_backend() {
    let mut config = fast_config(&real_sidecar());
    config.backoff_initial_ms = Some(300);
    config.backoff_max_ms = Some(1_000);
    let (supervisor, _) = start(resolve(config));
    // Two crashes in a row: the second restart waits for the backoff, so calls meet Restarting.
    crash_twice(&supervisor).await;
    let answer = supervisor
        .ping("waited".into())
        .await
        .expect("waits for Running");
    assert_eq!(answer.message, "waited");
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_that_outlasts_the_call_deadline_fails_unavailable() {
    let mut config = fast_config(&real_sidecar());
    config.backoff_initial_ms = Some(3_000);
    config.backoff_max_ms = Some(3_000);
    config.call_timeout_ms = Some(200);
    let (supervisor, _) = start(resolve(config));
    crash_twice(&supervisor).await;
    let started = Instant::now();
    let err = supervisor
        .ping("too late".into())
        .await
        .expect_err("deadline passes during backoff");
    assert_eq!(err.code(), "UNAVAILABLE", "{err}");
    assert!(err.to_string().contains("restarting"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "failed at its deadline, not later"
    );
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_sidecar_is_found_unhealthy_and_replaced() {
    let (supervisor, recorder) = start(resolve(fast_config(&real_sidecar())));
    let hung = running_pid(&supervisor).await;
    let replaced = replaced_after(&supervisor, hung, libc::SIGSTOP).await;
    let states = recorder.states();
    assert_eq!(
        &states[states.len() - 3..],
        [State::Unhealthy, State::Restarting, State::Running],
        "{states:?}"
    );
    assert_eq!(
        replaced.last_error.expect("recorded").code,
        "DEADLINE_EXCEEDED"
    );
    assert!(!alive(hung), "the hung process was killed");
    supervisor.ping("fresh".into()).await.expect("ping");
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_replaces_a_running_backend() {
    let (supervisor, _) = start(resolve(fast_config(&real_sidecar())));
    let first = running_pid(&supervisor).await;
    let status = supervisor.restart().await.expect("restarted");
    assert_eq!(status.state, State::Running);
    assert_ne!(status.pid, Some(first));
    assert!(!alive(first), "the old backend was stopped");
    supervisor.ping("again".into()).await.expect("ping");
    supervisor.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_is_in_neither_argv_nor_environment() {
    let mut config = fast_config(&real_sidecar());
    config.args = Some(vec!["--log-level".into(), "debug".into()]);
    config.env = Some([("ANYSYNC_EXAMPLE".to_owned(), "visible".to_owned())].into());
    let config = resolve(config);
    let token = config.token().expose().to_owned();
    let (supervisor, _) = start(config);
    let pid = state_reached(&supervisor, State::Running, START)
        .await
        .pid
        .expect("pid");
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).expect("cmdline");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    let has = |haystack: &[u8]| haystack.windows(token.len()).any(|w| w == token.as_bytes());
    assert!(
        String::from_utf8_lossy(&cmdline).contains("--log-level"),
        "read the right process"
    );
    assert!(
        String::from_utf8_lossy(&environ).contains("ANYSYNC_EXAMPLE=visible"),
        "read the right process"
    );
    assert!(!has(&cmdline), "token leaked into argv");
    assert!(!has(&environ), "token leaked into the environment");
    supervisor.ping("x".into()).await.expect("ping");
    assert!(
        supervisor
            .logs()
            .iter()
            .all(|r| !serde_json::to_string(r).expect("json").contains(&token)),
        "token leaked into a log record"
    );
    supervisor.shutdown().await;
}

/// Not a test on its own: the host process of `killing_the_host_kills_the_sidecar`, re-executed
/// from this test binary. It runs a supervisor, prints the sidecar's pid and waits to be killed.
#[test]
fn host_process_helper() {
    let Some(sidecar) = std::env::var_os("ANYSYNC_HOST_HELPER_SIDECAR") else {
        return;
    };
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let (supervisor, _) = start(resolve(fast_config(std::path::Path::new(&sidecar))));
        let pid = state_reached(&supervisor, State::Running, START)
            .await
            .pid
            .expect("pid");
        println!("SIDECAR_PID {pid}");
        std::future::pending::<()>().await;
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_host_kills_the_sidecar() {
    for host_signal in [libc::SIGKILL, libc::SIGTERM] {
        let mut host = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args([
                "host_process_helper",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("ANYSYNC_HOST_HELPER_SIDECAR", real_sidecar())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("host helper");
        let stdout = host.stdout.take().expect("stdout");
        let sidecar: u32 = std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .find_map(|line| {
                line.split_once("SIDECAR_PID ")
                    .map(|(_, p)| p.trim().parse().expect("pid"))
            })
            .expect("the helper reports its sidecar");
        assert!(alive(sidecar));

        signal(host.id(), host_signal);
        host.wait().expect("reap host");
        let killed = Instant::now();
        eventually(
            "the orphaned sidecar to die",
            Duration::from_secs(2),
            || (!alive(sidecar)).then_some(()),
        )
        .await;
        println!(
            "host {host_signal} -> sidecar gone in {:?}",
            killed.elapsed()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_the_supervisor_stops_the_sidecar() {
    let (supervisor, _) = start(resolve(Config {
        ..fast_config(&real_sidecar())
    }));
    let pid = state_reached(&supervisor, State::Running, START)
        .await
        .pid
        .expect("pid");
    drop(supervisor);
    eventually("the sidecar to stop", Duration::from_secs(5), || {
        (!alive(pid)).then_some(())
    })
    .await;
}
