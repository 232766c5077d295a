//! Shared set-up of the integration tests: the real Go sidecar, built once per test binary, small
//! misbehaving sidecars as shell scripts, an event recorder, and polling with deadlines.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use tauri_plugin_anysync::{
    Config, EventSink, LogRecord, State, Status, Supervisor, SupervisorConfig,
};

/// The real sidecar, built from go-backend with `go build` into the target dir (once per test binary).
pub fn real_sidecar() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(prebuilt) = std::env::var_os("ANYSYNC_TEST_SIDECAR") {
                return PathBuf::from(prebuilt);
            }
            let exe = std::env::current_exe().expect("test exe");
            let out_dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("target dir")
                .join("anysync-test-sidecar");
            std::fs::create_dir_all(&out_dir).expect("mkdir");
            let out = out_dir.join("anysync-backend");
            let staging = out_dir.join(format!("anysync-backend.{}", std::process::id()));
            let backend = Path::new(env!("CARGO_MANIFEST_DIR")).join("go-backend");
            let status = std::process::Command::new("go")
                .args(["build", "-trimpath", "-o"])
                .arg(&staging)
                .arg("./cmd/server")
                .current_dir(&backend)
                .env("GOTOOLCHAIN", "local")
                .env("CGO_ENABLED", "0")
                .status()
                .expect("go is installed");
            assert!(status.success(), "go build of the sidecar failed");
            std::fs::rename(&staging, &out).expect("rename");
            out
        })
        .clone()
}

/// A scratch directory for scripts, removed when dropped.
pub fn scratch() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

/// Writes an executable `#!/bin/sh` script and returns its path.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(name);
    let staging = dir.join(format!(".{name}.tmp"));
    std::fs::write(&staging, format!("#!/bin/sh\n{body}\n")).expect("write script");
    std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    // Rename so a running `exec` of the old file never sees a half-written one (ETXTBSY-safe too).
    std::fs::rename(&staging, &path).expect("rename script");
    path
}

/// A config for `sidecar` with fast health checks and restarts, so tests run quickly.
pub fn fast_config(sidecar: &Path) -> Config {
    Config {
        sidecar_path: Some(sidecar.to_owned()),
        handshake_timeout_ms: Some(5_000),
        health_check_interval_ms: Some(100),
        health_check_timeout_ms: Some(200),
        unhealthy_threshold: Some(2),
        max_restarts: Some(5),
        restart_window_ms: Some(60_000),
        backoff_initial_ms: Some(20),
        backoff_max_ms: Some(200),
        shutdown_timeout_ms: Some(2_000),
        call_timeout_ms: Some(5_000),
        ..Config::default()
    }
}

pub fn resolve(config: Config) -> SupervisorConfig {
    config.resolve().expect("valid config")
}

/// Records every event the supervisor emits.
#[derive(Default)]
pub struct Recorder {
    pub statuses: Mutex<Vec<Status>>,
    pub logs: Mutex<Vec<LogRecord>>,
}

impl EventSink for Recorder {
    fn status(&self, status: &Status) {
        self.statuses.lock().expect("lock").push(status.clone());
    }
    fn log(&self, record: &LogRecord) {
        self.logs.lock().expect("lock").push(record.clone());
    }
}

impl Recorder {
    /// The sequence of distinct states seen, in order.
    pub fn states(&self) -> Vec<State> {
        let mut states: Vec<State> = Vec::new();
        for status in self.statuses.lock().expect("lock").iter() {
            if states.last() != Some(&status.state) {
                states.push(status.state);
            }
        }
        states
    }
}

/// Starts a supervisor of `config` that records its events.
pub fn start(config: SupervisorConfig) -> (Supervisor, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let supervisor = Supervisor::start(config, recorder.clone() as Arc<dyn EventSink>);
    (supervisor, recorder)
}

/// Polls `check` every 5 ms until it returns `Some`, failing the test at the deadline.
pub async fn eventually<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits for the supervisor to reach `state` and returns that status.
pub async fn state_reached(supervisor: &Supervisor, state: State, timeout: Duration) -> Status {
    eventually(&format!("state {state}"), timeout, || {
        let status = supervisor.status();
        (status.state == state).then_some(status)
    })
    .await
}

/// Whether a process with this pid exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the first field after the parenthesised command name.
        Ok(stat) => {
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().next())
                != Some("Z")
        }
        Err(_) => false,
    }
}

pub fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) on a pid the test observed; a stale pid only makes the call fail.
    let rc = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(rc, 0, "kill({pid}, {signal}) failed");
}

/// The pid of the running backend, waiting for it to run.
pub async fn running_pid(supervisor: &Supervisor) -> u32 {
    state_reached(supervisor, State::Running, Duration::from_secs(10))
        .await
        .pid
        .expect("a running backend has a pid")
}

/// Sends `sig` to the running backend `pid` and waits for its replacement to run.
pub async fn replaced_after(supervisor: &Supervisor, pid: u32, sig: i32) -> Status {
    signal(pid, sig);
    eventually("a replacement backend", Duration::from_secs(10), || {
        let status = supervisor.status();
        (status.state == State::Running && status.pid != Some(pid)).then_some(status)
    })
    .await
}

/// Kills the backend twice in a row, so that the second restart waits out its backoff, and returns
/// once the supervisor is in that wait.
pub async fn crash_twice(supervisor: &Supervisor) {
    let first = running_pid(supervisor).await;
    let second = replaced_after(supervisor, first, libc::SIGKILL)
        .await
        .pid
        .expect("pid");
    signal(second, libc::SIGKILL);
    state_reached(supervisor, State::Restarting, Duration::from_secs(10)).await;
}

/// Records what a stream delivers (see `FrameSink`), for assertions on frames and payloads.
#[derive(Default)]
pub struct Frames {
    pub payloads: Mutex<Vec<Vec<u8>>>,
}

impl tauri_plugin_anysync::FrameSink for Frames {
    fn deliver(&self, payload: Vec<u8>) -> bool {
        self.payloads.lock().expect("lock").push(payload);
        true
    }
}

impl Frames {
    /// Every message delivered so far, in order.
    pub fn messages(&self) -> Vec<Vec<u8>> {
        let payloads = self.payloads.lock().expect("lock");
        let mut out = Vec::new();
        for payload in payloads.iter() {
            for frame in tauri_plugin_anysync::parse_frames(payload).expect("well-formed frames") {
                if let tauri_plugin_anysync::Frame::Message(m) = frame {
                    out.push(m.to_vec());
                }
            }
        }
        out
    }

    /// The end frame, once delivered: `Some(None)` for OK, `Some(Some(error))` otherwise.
    pub fn end(&self) -> Option<Option<tauri_plugin_anysync::ErrorInfo>> {
        let payloads = self.payloads.lock().expect("lock");
        let frames: Vec<_> = payloads
            .iter()
            .flat_map(|p| tauri_plugin_anysync::parse_frames(p).expect("well-formed frames"))
            .map(|f| match f {
                tauri_plugin_anysync::Frame::End(e) => Some(e),
                tauri_plugin_anysync::Frame::Message(_) => None,
            })
            .collect();
        // Nothing follows an end frame.
        if let Some(at) = frames.iter().position(Option::is_some) {
            assert_eq!(at, frames.len() - 1, "frames after the end frame");
        }
        frames.into_iter().flatten().next()
    }

    /// Waits for the end frame.
    pub async fn ended(&self, timeout: Duration) -> Option<tauri_plugin_anysync::ErrorInfo> {
        eventually("the stream's end frame", timeout, || self.end()).await
    }

    pub fn payload_count(&self) -> usize {
        self.payloads.lock().expect("lock").len()
    }
}

/// The example app's backend (examples/tauri-app/backend: anysync.v1.HealthService and
/// example.v1.CounterService), built once per test binary.
pub fn example_backend() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            if let Some(prebuilt) = std::env::var_os("ANYSYNC_TEST_EXAMPLE_BACKEND") {
                return PathBuf::from(prebuilt);
            }
            let exe = std::env::current_exe().expect("test exe");
            let out_dir = exe
                .parent()
                .and_then(Path::parent)
                .expect("target dir")
                .join("anysync-test-sidecar");
            std::fs::create_dir_all(&out_dir).expect("mkdir");
            let out = out_dir.join("example-backend");
            let staging = out_dir.join(format!("example-backend.{}", std::process::id()));
            let module = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/tauri-app/backend");
            let status = std::process::Command::new("go")
                .args(["build", "-trimpath", "-o"])
                .arg(&staging)
                .arg(".")
                .current_dir(&module)
                .env("GOTOOLCHAIN", "local")
                .env("CGO_ENABLED", "0")
                .status()
                .expect("go is installed");
            assert!(status.success(), "go build of the example backend failed");
            std::fs::rename(&staging, &out).expect("rename");
            out
        })
        .clone()
}
