//! Where the plugin's logs and events go can fail, and that must not take the backend down with it.
//!
//! The plugin writes to the `log` facade (its own records and every backend stderr line) and calls
//! the app's `EventSink` (in the Tauri plugin: `app.emit`). Both run on the supervisor's tasks. A
//! logger that panics is real: fern (behind tauri-plugin-log) panics when writing a record fails
//! and its fallback write to stderr fails too, as on a full disk with stdout and stderr redirected to
//! it. A sink may panic on a bug in the app. Either way the supervisor must keep supervising.
#![cfg(target_os = "linux")]

mod common;

use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Once};
use std::time::Duration;

use common::*;
use tauri_plugin_anysync::{EventSink, LogRecord, State, Status, Supervisor};

/// The tests share the process-wide logger; one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// Whether the logger fails (it is installed once for the whole test binary).
static LOGGER_FAILS: AtomicBool = AtomicBool::new(false);
static LOGGER_PANICS: AtomicU64 = AtomicU64::new(0);
const SIMULATED: &str = "simulated log failure";

/// A logger that writes every record to /dev/full, and panics when that fails, as fern does when
/// its fallback to stderr fails too.
struct FullDiskLogger;

impl log::Log for FullDiskLogger {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        if !LOGGER_FAILS.load(Ordering::Relaxed) {
            return;
        }
        let written = std::fs::OpenOptions::new()
            .write(true)
            .open("/dev/full")
            .and_then(|mut disk| writeln!(disk, "{} {}", record.target(), record.args()));
        if let Err(error) = written {
            LOGGER_PANICS.fetch_add(1, Ordering::Relaxed);
            panic!("{SIMULATED}: cannot write a log record ({error}) and stderr failed too");
        }
    }

    fn flush(&self) {}
}

/// An event sink that panics on every event, after counting it.
#[derive(Default)]
struct PanickingSink {
    statuses: AtomicU64,
    logs: AtomicU64,
}

impl EventSink for PanickingSink {
    fn status(&self, _: &Status) {
        self.statuses.fetch_add(1, Ordering::Relaxed);
        panic!("{SIMULATED}: the status sink broke");
    }

    fn log(&self, _: &LogRecord) {
        self.logs.fetch_add(1, Ordering::Relaxed);
        panic!("{SIMULATED}: the log sink broke");
    }
}

/// Installs the logger, and a panic hook that keeps the simulated panics out of the test output.
fn install_once() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        static LOGGER: FullDiskLogger = FullDiskLogger;
        log::set_logger(&LOGGER).expect("the only logger");
        log::set_max_level(log::LevelFilter::Trace);
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or_default();
            if !message.starts_with(SIMULATED) {
                default(info);
            }
        }));
    });
}

/// Runs the backend through start, calls, a crash and a restart, and shutdown: everything the
/// supervisor does, each step logging and emitting events.
async fn full_lifecycle(supervisor: &Supervisor) {
    let first = running_pid(supervisor).await;
    assert_eq!(
        supervisor
            .ping("through".into())
            .await
            .expect("ping")
            .message,
        "through"
    );
    let replaced = replaced_after(supervisor, first, libc::SIGKILL).await;
    assert_eq!(replaced.restarts, 1);
    supervisor
        .ping("again".into())
        .await
        .expect("ping after a crash");
    let restarted = supervisor.restart().await.expect("restart()");
    assert_eq!(restarted.state, State::Running);
    // The backend's stderr kept flowing into the ring (debug level: a record per call).
    eventually("backend records in logs()", Duration::from_secs(5), || {
        supervisor
            .logs()
            .iter()
            .any(|r| r.message == "rpc")
            .then_some(())
    })
    .await;
    supervisor.shutdown().await;
    assert_eq!(supervisor.status().state, State::Stopped);
}

fn debug_config() -> tauri_plugin_anysync::SupervisorConfig {
    let mut config = fast_config(&real_sidecar());
    config.log_level = Some("debug".into());
    resolve(config)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logger_that_panics_on_a_full_disk_does_not_kill_the_supervisor() {
    let _serial = SERIAL.lock().await;
    install_once();
    LOGGER_FAILS.store(true, Ordering::Relaxed);
    let before = LOGGER_PANICS.load(Ordering::Relaxed);
    let (supervisor, recorder) = start(debug_config());
    full_lifecycle(&supervisor).await;
    LOGGER_FAILS.store(false, Ordering::Relaxed);
    let panics = LOGGER_PANICS.load(Ordering::Relaxed) - before;
    assert!(panics > 10, "the logger failed on every record: {panics}");
    // The front end heard about it all the same.
    assert_eq!(recorder.states().last(), Some(&State::Stopped));
    assert!(!recorder.logs.lock().expect("lock").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_sink_that_panics_does_not_kill_the_supervisor() {
    let _serial = SERIAL.lock().await;
    install_once();
    let sink = Arc::new(PanickingSink::default());
    let supervisor = Supervisor::start(debug_config(), sink.clone() as Arc<dyn EventSink>);
    full_lifecycle(&supervisor).await;
    assert!(
        sink.statuses.load(Ordering::Relaxed) >= 8,
        "every status went to the sink"
    );
    assert!(
        sink.logs.load(Ordering::Relaxed) > 10,
        "every log record went to the sink"
    );
}
