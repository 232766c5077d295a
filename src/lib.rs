//! # tauri-plugin-anysync
//!
//! A Tauri v2 plugin that runs a Go backend as a supervised sidecar and lets the app call it over an
//! authenticated loopback gRPC channel.
//!
//! ```no_run
//! tauri::Builder::default()
//!     .plugin(tauri_plugin_anysync::init())
//! #   ;
//! ```
//!
//! The plugin spawns `anysync-backend` (placed beside the app executable by `bundle.externalBin`),
//! hands it a fresh secret on stdin, connects once it announces its port, watches its health,
//! restarts it when it dies, forwards its logs and stops it with the app. Rust code reaches the same
//! API as the front end through [`AnysyncExt::anysync`].

#![warn(missing_docs)]

use tauri::plugin::TauriPlugin;
use tauri::webview::PageLoadEvent;
use tauri::{Manager, RunEvent, Runtime, WindowEvent};

// On mobile every call fails before it is registered or read (src/mobile.rs): the bookkeeping of
// cancellable calls and the parsed invocations are desktop-only there.
#[cfg_attr(mobile, allow(dead_code))]
mod calls;
mod client;
mod codec;
mod commands;
mod config;
mod connection;
#[cfg(desktop)]
mod desktop;
mod error;
#[cfg_attr(mobile, allow(dead_code))]
mod ipc;
mod method;
// Compiled in desktop tests too, so the mobile stand-in is checked on every platform.
#[cfg(any(mobile, test))]
mod mobile;
mod models;
mod proto_serde;
mod scope;
mod sidecar;
mod stream;
mod subscriptions;
mod supervisor;
mod transport;

/// The messages and clients generated from `go-backend/api/proto` by `npm run gen` (tonic-prost,
/// with serde derives: these are also the IPC types of `ping` and `health`). Use the clients with
/// [`Anysync::channel`]: `HealthServiceClient::new(app.anysync().channel())`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod proto {
    include!("generated/anysync.v1.rs");
}

pub use config::{BackendLogLevel, Config, SupervisorConfig, SIDECAR_NAME};
#[cfg(desktop)]
pub use desktop::{Anysync, LOG_EVENT, STATUS_EVENT};
pub use error::{Error, ErrorInfo, GrpcCode, Result};
pub use ipc::{CALL_ID_HEADER, CHANNEL_HEADER, CREDIT_HEADER, METHOD_HEADER, TIMEOUT_HEADER};
#[cfg(mobile)]
pub use mobile::{unsupported, Anysync, LOG_EVENT, STATUS_EVENT, UNSUPPORTED_MESSAGE};
pub use models::{LogLevel, LogRecord, State, Status};
pub use proto::health_check_response::ServingStatus;
pub use proto::{HealthCheckResponse, PingResponse};
pub use scope::MethodScope;
pub use sidecar::{
    parse_handshake, parse_log_line, Handshake, Token, LOG_TARGET, PROTOCOL_VERSION,
};
pub use stream::{
    parse_frames, Frame, FrameSink, StreamHandle, StreamOptions, FRAME_END, FRAME_MESSAGE,
    MAX_BATCH_BYTES, MAX_CREDIT,
};
pub use supervisor::{EventSink, Supervisor};
pub use transport::{BackendChannel, BoxError};

/// Access to the plugin's API from any Tauri manager (`App`, `AppHandle`, `Window`, ...).
pub trait AnysyncExt<R: Runtime> {
    /// The backend handle. Panics only if the plugin was not registered.
    fn anysync(&self) -> &Anysync;
}

impl<R: Runtime, T: Manager<R>> AnysyncExt<R> for T {
    fn anysync(&self) -> &Anysync {
        self.state::<Anysync>().inner()
    }
}

/// The plugin with its configuration taken from `plugins.anysync` in tauri.conf.json.
pub fn init<R: Runtime>() -> TauriPlugin<R, Option<Config>> {
    Builder::new().build()
}

/// Builds the plugin with options set in code; each overrides the same key of tauri.conf.json.
///
/// ```no_run
/// let plugin = tauri_plugin_anysync::Builder::new()
///     .health_check_interval_ms(2_000)
///     .log_level("debug")
///     .build::<tauri::Wry>();
/// ```
#[derive(Debug, Default)]
#[must_use]
pub struct Builder {
    overrides: Config,
}

/// One setter per option. Paths and strings take `impl Into`; numbers take their exact type, so that
/// an integer literal like `2_000` infers without a suffix.
macro_rules! setters {
    (into: $($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, value: impl Into<$ty>) -> Self {
                self.overrides.$name = Some(value.into());
                self
            }
        )*
    };
    (exact: $($(#[$doc:meta])* $name:ident: $ty:ty),* $(,)?) => {
        $(
            $(#[$doc])*
            pub fn $name(mut self, value: $ty) -> Self {
                self.overrides.$name = Some(value);
                self
            }
        )*
    };
}

impl Builder {
    /// A builder with no overrides.
    pub fn new() -> Self {
        Self::default()
    }

    setters! { into:
        /// Path of the sidecar binary (`sidecarPath`).
        sidecar_path: std::path::PathBuf,
        /// The sidecar's base name beside the app executable, matching the build helper's
        /// `Builder::name()` (`sidecarName`).
        sidecar_name: String,
        /// The backend's data directory, an absolute path (`dataDir`).
        data_dir: std::path::PathBuf,
        /// Extra sidecar arguments (`args`).
        args: Vec<String>,
        /// Extra sidecar environment (`env`).
        env: std::collections::BTreeMap<String, String>,
        /// The sidecar's log level: `debug`, `info`, `warn` or `error` (`logLevel`).
        log_level: String,
    }

    setters! { exact:
        /// Spawn-to-connected deadline (`handshakeTimeoutMs`).
        handshake_timeout_ms: u64,
        /// Interval between health checks (`healthCheckIntervalMs`).
        health_check_interval_ms: u64,
        /// Deadline of one health check (`healthCheckTimeoutMs`).
        health_check_timeout_ms: u64,
        /// Failed checks in a row that make the backend unhealthy (`unhealthyThreshold`).
        unhealthy_threshold: u32,
        /// Restarts allowed within the window (`maxRestarts`).
        max_restarts: u32,
        /// The restart-counting window (`restartWindowMs`).
        restart_window_ms: u64,
        /// First restart delay after the immediate one (`backoffInitialMs`).
        backoff_initial_ms: u64,
        /// Upper bound of the restart delay (`backoffMaxMs`).
        backoff_max_ms: u64,
        /// Graceful stop bound (`shutdownTimeoutMs`).
        shutdown_timeout_ms: u64,
        /// Deadline of every call (`callTimeoutMs`).
        call_timeout_ms: u64,
        /// Backend log records kept for `logs()` (`logBuffer`).
        log_buffer: usize,
    }

    /// The plugin, ready for `tauri::Builder::plugin`.
    pub fn build<R: Runtime>(self) -> TauriPlugin<R, Option<Config>> {
        let overrides = self.overrides;
        tauri::plugin::Builder::<R, Option<Config>>::new("anysync")
            .invoke_handler(tauri::generate_handler![
                commands::ping,
                commands::health,
                commands::status,
                commands::restart,
                commands::logs,
                commands::call,
                commands::stream,
                commands::credit,
                commands::cancel,
                commands::subscribe_status,
                commands::subscribe_logs,
                commands::unsubscribe
            ])
            .setup(move |app, api| {
                let mut config = api
                    .config()
                    .clone()
                    .unwrap_or_default()
                    .merged_with(overrides);
                if config.data_dir.is_none() {
                    // The backend's data lives with the app's own: app_data_dir()/anysync.
                    config.data_dir = app
                        .path()
                        .app_data_dir()
                        .ok()
                        .map(|dir| dir.join("anysync"));
                }
                let config = config.resolve()?;
                log::info!("anysync: supervising {}", config.sidecar_path.display());
                #[cfg(desktop)]
                app.manage(desktop::init(app, config));
                #[cfg(mobile)]
                app.manage(mobile::init(app, config));
                Ok(())
            })
            // Calls and streams belong to the page that opened them: a reload (a new page starts
            // loading) or a destroyed window cancels them, so none outlives its webview.
            .on_page_load(|webview, payload| {
                if payload.event() == PageLoadEvent::Started {
                    if let Some(anysync) = webview.try_state::<Anysync>() {
                        anysync.webview_gone(webview.label());
                    }
                }
            })
            .on_event(|app, event| match event {
                RunEvent::Exit => {
                    if let Some(anysync) = app.try_state::<Anysync>() {
                        anysync.shutdown_blocking();
                    }
                }
                RunEvent::WindowEvent {
                    label,
                    event: WindowEvent::Destroyed,
                    ..
                } => {
                    if let Some(anysync) = app.try_state::<Anysync>() {
                        anysync.window_gone(label);
                    }
                }
                _ => {}
            })
            .build()
    }
}
