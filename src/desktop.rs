//! The per-app handle on desktop: owns the supervisor of the sidecar and forwards its events to the
//! front end.

use std::sync::Arc;

use tauri::{AppHandle, Emitter, Runtime};

use crate::config::SupervisorConfig;
use crate::error::Result;
use crate::models::{HealthCheckResponse, LogRecord, PingResponse, Status};
use crate::supervisor::{EventSink, Supervisor};

/// The event carrying every [`Status`] change.
pub const STATUS_EVENT: &str = "anysync://status";
/// The event carrying every backend [`LogRecord`].
pub const LOG_EVENT: &str = "anysync://log";

/// Access to the Go backend from Rust; the same operations the front end has.
///
/// Get it with [`AnysyncExt::anysync`](crate::AnysyncExt::anysync).
#[derive(Debug, Clone)]
pub struct Anysync {
    supervisor: Arc<Supervisor>,
}

struct AppEvents<R: Runtime>(AppHandle<R>);

impl<R: Runtime> EventSink for AppEvents<R> {
    fn status(&self, status: &Status) {
        if let Err(error) = self.0.emit(STATUS_EVENT, status) {
            log::debug!("cannot emit {STATUS_EVENT}: {error}");
        }
    }

    fn log(&self, record: &LogRecord) {
        if let Err(error) = self.0.emit(LOG_EVENT, record) {
            log::debug!("cannot emit {LOG_EVENT}: {error}");
        }
    }
}

pub(crate) fn init<R: Runtime>(app: &AppHandle<R>, config: SupervisorConfig) -> Anysync {
    let sink = Arc::new(AppEvents(app.clone()));
    let tauri::async_runtime::RuntimeHandle::Tokio(runtime) = tauri::async_runtime::handle();
    Anysync {
        supervisor: Arc::new(Supervisor::start_on(&runtime, config, sink)),
    }
}

impl Anysync {
    /// Echoes `message` through the backend.
    pub async fn ping(&self, message: String) -> Result<PingResponse> {
        self.supervisor.ping(message).await
    }

    /// The backend's health and identity.
    pub async fn health(&self) -> Result<HealthCheckResponse> {
        self.supervisor.health().await
    }

    /// The supervisor's latest status.
    pub fn status(&self) -> Status {
        self.supervisor.status()
    }

    /// Restarts the backend (also out of the failed state) and resolves once it runs again.
    pub async fn restart(&self) -> Result<Status> {
        self.supervisor.restart().await
    }

    /// The retained backend log records, oldest first.
    pub fn logs(&self) -> Vec<LogRecord> {
        self.supervisor.logs()
    }

    /// Stops the backend and waits until it is gone (bounded by the shutdown timeout).
    pub async fn shutdown(&self) {
        self.supervisor.shutdown().await;
    }

    /// Stops the backend from synchronous code (the app's exit handler), bounded so that exit can
    /// never hang on it.
    pub(crate) fn shutdown_blocking(&self) {
        let bound = self.supervisor.config().shutdown_timeout + std::time::Duration::from_secs(1);
        let supervisor = Arc::clone(&self.supervisor);
        let finished = tauri::async_runtime::block_on(async move {
            tokio::time::timeout(bound, supervisor.shutdown())
                .await
                .is_ok()
        });
        if !finished {
            log::warn!(
                "anysync backend did not stop within {}ms of app exit",
                bound.as_millis()
            );
        }
    }
}
