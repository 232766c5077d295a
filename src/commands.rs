//! The front end's entry points: thin wrappers over [`Anysync`](crate::Anysync) and the IPC
//! glue of src/ipc.rs, no logic.

use std::sync::Arc;

use tauri::ipc::{Channel, CommandScope, GlobalScope, Request, Response};
use tauri::{command, AppHandle, Runtime, Webview};

use crate::error::Result;
use crate::ipc::{self, ChannelSink};
use crate::models::{LogRecord, Status};
use crate::proto::{HealthCheckResponse, PingResponse};
use crate::scope::MethodScope;
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
pub(crate) async fn status<R: Runtime>(app: AppHandle<R>) -> Status {
    app.anysync().status()
}

#[command]
pub(crate) async fn restart<R: Runtime>(app: AppHandle<R>) -> Result<Status> {
    app.anysync().restart().await
}

#[command]
pub(crate) async fn logs<R: Runtime>(app: AppHandle<R>) -> Vec<LogRecord> {
    app.anysync().logs()
}

#[command]
pub(crate) async fn call<R: Runtime>(
    app: AppHandle<R>,
    webview: Webview<R>,
    request: Request<'_>,
    command_scope: CommandScope<MethodScope>,
    global_scope: GlobalScope<MethodScope>,
) -> Result<Response> {
    let call = ipc::invocation(&request, &command_scope, &global_scope)?;
    let response = app.anysync().call_for(&ipc::owner(&webview), call).await?;
    Ok(Response::new(Vec::from(response)))
}

#[command]
pub(crate) async fn stream<R: Runtime>(
    app: AppHandle<R>,
    webview: Webview<R>,
    request: Request<'_>,
    command_scope: CommandScope<MethodScope>,
    global_scope: GlobalScope<MethodScope>,
) -> Result<()> {
    let stream = ipc::stream_invocation(&request, &command_scope, &global_scope)?;
    let sink = Arc::new(ChannelSink(stream.channel.channel_on(webview.clone())));
    app.anysync()
        .stream_for(&ipc::owner(&webview), stream, sink)
        .await
}

#[command]
pub(crate) fn credit<R: Runtime>(
    app: AppHandle<R>,
    webview: Webview<R>,
    id: String,
    n: u32,
    bytes: Option<u32>,
) -> Result<()> {
    app.anysync().credit(&ipc::owner(&webview), &id, n, bytes)
}

#[command]
pub(crate) fn cancel<R: Runtime>(app: AppHandle<R>, webview: Webview<R>, id: String) {
    app.anysync().cancel(&ipc::owner(&webview), &id);
}

// Async, like `status` and `logs`: a sync command would run on the main thread, and these send on
// channels under the subscriptions' lock.
#[command]
pub(crate) async fn subscribe_status<R: Runtime>(
    app: AppHandle<R>,
    webview: Webview<R>,
    on_status: Channel,
) -> Result<u64> {
    app.anysync()
        .subscribe_status(&ipc::owner(&webview), Arc::new(on_status))
}

#[command]
pub(crate) async fn subscribe_logs<R: Runtime>(
    app: AppHandle<R>,
    webview: Webview<R>,
    on_log: Channel,
) -> Result<u64> {
    app.anysync()
        .subscribe_logs(&ipc::owner(&webview), Arc::new(on_log))
}

#[command]
pub(crate) async fn unsubscribe<R: Runtime>(app: AppHandle<R>, webview: Webview<R>, id: u64) {
    app.anysync().unsubscribe(&ipc::owner(&webview), id);
}
