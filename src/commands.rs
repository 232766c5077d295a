//! The front end's entry points: thin wrappers over [`Anysync`](crate::Anysync), no logic.

use tauri::{command, AppHandle, Runtime};

use crate::error::Result;
use crate::models::{HealthCheckResponse, LogRecord, PingResponse, Status};
use crate::AnysyncExt;

#[command]
pub(crate) async fn ping<R: Runtime>(app: AppHandle<R>, message: String) -> Result<PingResponse> {
    app.anysync().ping(message).await
}

#[command]
pub(crate) async fn health<R: Runtime>(app: AppHandle<R>) -> Result<HealthCheckResponse> {
    app.anysync().health().await
}

#[command]
pub(crate) fn status<R: Runtime>(app: AppHandle<R>) -> Status {
    app.anysync().status()
}

#[command]
pub(crate) async fn restart<R: Runtime>(app: AppHandle<R>) -> Result<Status> {
    app.anysync().restart().await
}

#[command]
pub(crate) fn logs<R: Runtime>(app: AppHandle<R>) -> Vec<LogRecord> {
    app.anysync().logs()
}
