//! The supervisor against the real Go sidecar, written for every desktop OS: the GitHub workflow runs
//! this file on Windows and macOS as well as Linux (the other integration tests use `/proc` and
//! shell scripts, so Linux only). Start, a call, a hard kill of the sidecar and its replacement by a
//! new process, `restart()`, and a shutdown that leaves no process behind. On Windows the sidecar is
//! linked as the build helper links it, a GUI-subsystem program, so this also shows that such a
//! program talks over the pipes the plugin gives it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tauri_plugin_anysync::{Config, EventSink, State, Status, Supervisor};

const START: Duration = Duration::from_secs(30);

/// The real sidecar, built once per run into the target dir.
fn sidecar() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("anysync-platforms-sidecar");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let out = dir.join(format!("anysync-backend{}", std::env::consts::EXE_SUFFIX));
    let ldflags = if cfg!(windows) {
        "-s -w -H=windowsgui"
    } else {
        "-s -w"
    };
    let status = std::process::Command::new("go")
        .args(["build", "-trimpath", "-ldflags", ldflags, "-o"])
        .arg(&out)
        .arg("./cmd/server")
        .current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("go-backend"))
        .env("GOTOOLCHAIN", "local")
        .env("CGO_ENABLED", "0")
        .status()
        .expect("go is installed");
    assert!(status.success(), "go build of the sidecar failed");
    out
}

fn start(sidecar: &Path) -> Supervisor {
    let config = Config {
        sidecar_path: Some(sidecar.to_owned()),
        handshake_timeout_ms: Some(20_000),
        health_check_interval_ms: Some(200),
        health_check_timeout_ms: Some(1_000),
        unhealthy_threshold: Some(3),
        max_restarts: Some(5),
        restart_window_ms: Some(60_000),
        backoff_initial_ms: Some(20),
        backoff_max_ms: Some(200),
        shutdown_timeout_ms: Some(5_000),
        call_timeout_ms: Some(10_000),
        ..Config::default()
    }
    .resolve()
    .expect("valid config");
    Supervisor::start(config, Arc::new(()) as Arc<dyn EventSink>)
}

/// Polls the status every 10 ms until `check` accepts it, failing at the deadline.
async fn status_where(
    supervisor: &Supervisor,
    what: &str,
    check: impl Fn(&Status) -> bool,
) -> Status {
    let deadline = Instant::now() + START;
    loop {
        let status = supervisor.status();
        if check(&status) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Ends `pid` at once, as a crash would: SIGKILL, or `TerminateProcess` through `taskkill /F`.
fn kill_hard(pid: u32) {
    let status = if cfg!(windows) {
        std::process::Command::new("taskkill")
            .args(["/F", "/PID", &pid.to_string()])
            .status()
    } else {
        std::process::Command::new("kill")
            .args(["-KILL", &pid.to_string()])
            .status()
    };
    assert!(status.expect("run kill").success(), "kill {pid}");
}

/// Whether a process `pid` still exists (a zombie counts: it is what an unreaped child leaves).
fn exists(pid: u32) -> bool {
    #[cfg(unix)]
    {
        let pid = libc::pid_t::try_from(pid).expect("pid");
        // SAFETY: signal 0 only asks whether the process exists.
        unsafe { libc::kill(pid, 0) == 0 }
    }
    #[cfg(windows)]
    {
        use windows_sys::Win32::Foundation::{CloseHandle, WAIT_TIMEOUT};
        use windows_sys::Win32::System::Threading::{
            OpenProcess, WaitForSingleObject, PROCESS_SYNCHRONIZE,
        };
        // SAFETY: a handle by pid, closed below; null when there is no such process.
        unsafe {
            let process = OpenProcess(PROCESS_SYNCHRONIZE, 0, pid);
            if process.is_null() {
                return false;
            }
            let running = WaitForSingleObject(process, 0) == WAIT_TIMEOUT;
            CloseHandle(process);
            running
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_sidecar_runs_crashes_restarts_and_stops_on_this_os() {
    let supervisor = start(&sidecar());
    let first = status_where(&supervisor, "Running", |s| s.state == State::Running).await;
    let first_pid = first.pid.expect("pid while running");
    let pong = supervisor.ping("on this OS".into()).await.expect("ping");
    assert_eq!(pong.message, "on this OS");

    kill_hard(first_pid);
    let second = status_where(&supervisor, "a new backend after the crash", |s| {
        s.state == State::Running && s.pid.is_some_and(|pid| pid != first_pid)
    })
    .await;
    assert_eq!(second.restarts, 1, "{second:?}");
    assert_eq!(
        second.last_error.as_ref().map(|e| e.code.as_str()),
        Some("SIDECAR_EXITED"),
        "{second:?}"
    );
    let pong = supervisor
        .ping("after the crash".into())
        .await
        .expect("ping");
    assert_eq!(pong.message, "after the crash");

    let second_pid = second.pid.expect("pid");
    let third = supervisor.restart().await.expect("restart");
    let third_pid = third.pid.expect("pid after restart");
    assert_ne!(third_pid, second_pid, "restart() replaced the process");
    let pong = supervisor
        .ping("after restart()".into())
        .await
        .expect("ping");
    assert_eq!(pong.message, "after restart()");

    supervisor.shutdown().await;
    assert_eq!(supervisor.status().state, State::Stopped);
    for pid in [first_pid, second_pid, third_pid] {
        assert!(!exists(pid), "the backend {pid} is gone after shutdown");
    }
}
