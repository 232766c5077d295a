//! The plugin's exit hook (`RunEvent::Exit`) stops the backend, both when the app runs on Tauri's
//! own async runtime and when it handed Tauri a tokio runtime of its own
//! (`tauri::async_runtime::set`), where its event loop runs inside that runtime and nothing may
//! block on it. Each set-up is a process of its own: Tauri's runtime can be chosen once per process.
#![cfg(unix)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use tauri::test::{mock_builder, mock_context, noop_assets, MockRuntime};
use tauri::App;
use tauri_plugin_anysync::{AnysyncExt, State};

const HOST_ENV: &str = "ANYSYNC_EXIT_HOOK_HOST";

fn app() -> App<MockRuntime> {
    mock_builder()
        .plugin(
            tauri_plugin_anysync::Builder::new()
                .sidecar_path(real_sidecar())
                .shutdown_timeout_ms(2_000)
                .build(),
        )
        .build(mock_context(noop_assets()))
        .expect("mock app")
}

/// Waits for the backend, then runs the app's event loop until its only window is destroyed: the
/// loop ends with `RunEvent::Exit`. Returns the backend's pid.
fn run_until_exit(app: App<MockRuntime>) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    let pid = loop {
        let status = app.anysync().status();
        if status.state == State::Running {
            break status.pid.expect("pid");
        }
        assert!(
            Instant::now() < deadline,
            "the backend did not start: {status:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let window = tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .expect("window");
    std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        window.destroy().expect("destroy");
    });
    let handle = app.handle().clone();
    app.run_return(|_, _| {});
    assert_eq!(
        handle.anysync().status().state,
        State::Stopped,
        "the exit hook stopped the backend"
    );
    pid
}

#[test]
fn the_exit_hook_stops_the_backend_on_tauris_own_runtime() {
    let pid = run_until_exit(app());
    assert!(
        reaped(pid),
        "the backend {pid} is gone and reaped, not a zombie"
    );
}

/// Not a test on its own: the app of `..._on_the_apps_own_runtime`, in a process of its own. Like
/// an app with `#[tokio::main]`, it hands Tauri its runtime and runs the event loop inside it.
#[test]
fn own_runtime_host() {
    if std::env::var_os(HOST_ENV).is_none() {
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    tauri::async_runtime::set(runtime.handle().clone());
    let pid = runtime.block_on(async { run_until_exit(app()) });
    println!("SIDECAR_PID {pid}");
}

#[test]
fn the_exit_hook_stops_the_backend_on_the_apps_own_runtime() {
    let host = std::process::Command::new(std::env::current_exe().expect("exe"))
        .args([
            "own_runtime_host",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HOST_ENV, "1")
        .env("ANYSYNC_TEST_SIDECAR", real_sidecar())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .output()
        .expect("host");
    let stdout = String::from_utf8_lossy(&host.stdout);
    assert!(
        host.status.success(),
        "the app's exit failed: {}\n{stdout}\n{}",
        host.status,
        String::from_utf8_lossy(&host.stderr)
    );
    let pid: u32 = stdout
        .lines()
        .find_map(|line| {
            line.split_once("SIDECAR_PID ")
                .map(|(_, p)| p.trim().parse().expect("pid"))
        })
        .expect("the host reports its backend");
    assert!(
        reaped(pid),
        "the backend {pid} is gone and reaped, not a zombie"
    );
}
