//! The per-app handle on Android and iOS, until the mobile phase: every call fails with one clear
//! error instead of trying to spawn a sidecar (mobile apps cannot ship or run one).
//!
//! The mobile phase links the Go backend into the app through gomobile (`go-backend/api`, kept
//! gobind-compatible by `npm run check:gomobile`) and implements these same methods on it, so apps
//! and the front end keep the API they have on desktop. Until then the methods and events mirror
//! the desktop handle's exactly, so an app that registers the plugin still builds and starts
//! on mobile and learns at the first call, with a code it can branch on, that the backend is absent.
//!
//! Desktop builds compile this module under `cfg(test)` too, so its tests run on every platform.

#![cfg_attr(not(mobile), allow(dead_code))]

use std::time::{SystemTime, UNIX_EPOCH};

use tauri::{AppHandle, Runtime};

use std::sync::Arc;

use bytes::Bytes;

use crate::calls::Owner;
use crate::config::SupervisorConfig;
use crate::error::{Error, GrpcCode, Result};
use crate::ipc::{Invocation, StreamInvocation};
use crate::models::{LogRecord, State, Status};
use crate::proto::{HealthCheckResponse, PingResponse};
use crate::stream::FrameSink;
use crate::transport::BackendChannel;

/// The event carrying every [`Status`] change (never emitted on mobile yet).
pub const STATUS_EVENT: &str = "anysync://status";
/// The event carrying every backend [`LogRecord`] (never emitted on mobile yet).
pub const LOG_EVENT: &str = "anysync://log";

/// What every call answers on mobile: `UNIMPLEMENTED`, the gRPC code for "this operation is not
/// supported here", with a message that says why and what to do.
pub const UNSUPPORTED_MESSAGE: &str = "tauri-plugin-anysync does not support Android or iOS yet: \
     mobile apps cannot run the Go backend as a sidecar, and linking it in through gomobile comes in \
     a later release. Build for desktop (Linux, macOS, Windows), or do not call the anysync API on \
     mobile";

/// The error of every call on mobile.
pub fn unsupported() -> Error {
    Error::Backend {
        code: GrpcCode::Unimplemented,
        message: UNSUPPORTED_MESSAGE.to_owned(),
    }
}

/// Access to the Go backend from Rust; on mobile every operation fails with [`unsupported`].
///
/// Get it with [`AnysyncExt::anysync`](crate::AnysyncExt::anysync).
#[derive(Debug, Clone)]
pub struct Anysync {
    status: Status,
}

pub(crate) fn init<R: Runtime>(_app: &AppHandle<R>, _config: SupervisorConfig) -> Anysync {
    log::warn!("anysync: {UNSUPPORTED_MESSAGE}");
    Anysync::new()
}

impl Anysync {
    fn new() -> Self {
        let since_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self {
            status: Status {
                seq: 1,
                state: State::Failed,
                pid: None,
                addr: None,
                version: None,
                restarts: 0,
                last_error: Some(unsupported().info()),
                since_ms,
                running_since_ms: None,
            },
        }
    }

    /// Fails with [`unsupported`] on mobile.
    pub async fn ping(&self, _message: String) -> Result<PingResponse> {
        Err(unsupported())
    }

    /// Fails with [`unsupported`] on mobile.
    pub async fn health(&self) -> Result<HealthCheckResponse> {
        Err(unsupported())
    }

    /// Fails with [`unsupported`] on mobile.
    pub async fn call(
        &self,
        _method: &str,
        _request: Bytes,
        _timeout: Option<std::time::Duration>,
    ) -> Result<Bytes> {
        Err(unsupported())
    }

    /// A channel whose every call fails: the backend is never running on mobile (the status is
    /// FAILED_PRECONDITION carrying the [`unsupported`] message).
    pub fn channel(&self) -> BackendChannel {
        BackendChannel::new(
            crate::supervisor::detached(self.status.clone()),
            std::time::Duration::ZERO,
        )
    }

    pub(crate) async fn call_for(&self, _owner: &Owner, _call: Invocation) -> Result<Bytes> {
        Err(unsupported())
    }

    pub(crate) async fn stream_for(
        &self,
        _owner: &Owner,
        _stream: StreamInvocation,
        _sink: Arc<dyn FrameSink>,
    ) -> Result<()> {
        Err(unsupported())
    }

    /// Nothing is ever open on mobile.
    pub(crate) fn credit(
        &self,
        _owner: &Owner,
        _id: &str,
        _n: u32,
        _bytes: Option<u32>,
    ) -> Result<()> {
        Ok(())
    }

    pub(crate) fn cancel(&self, _owner: &Owner, _id: &str) {}

    pub(crate) fn webview_gone(&self, _webview: &str) {}

    pub(crate) fn window_gone(&self, _window: &str) {}

    /// Always `failed`, with the [`unsupported`] error as its last error.
    pub fn status(&self) -> Status {
        self.status.clone()
    }

    /// Fails with [`unsupported`] on mobile: there is nothing to restart.
    pub async fn restart(&self) -> Result<Status> {
        Err(unsupported())
    }

    /// Always empty on mobile: no backend, no records.
    pub fn logs(&self) -> Vec<LogRecord> {
        Vec::new()
    }

    /// Sends the one status there is (`failed`); it never changes on mobile.
    pub(crate) fn subscribe_status(
        &self,
        _owner: &Owner,
        outlet: Arc<dyn crate::subscriptions::Outlet>,
    ) -> Result<u64> {
        if let Ok(json) = serde_json::to_string(&self.status) {
            outlet.deliver(&json);
        }
        Ok(1)
    }

    /// Nothing is ever logged on mobile.
    pub(crate) fn subscribe_logs(
        &self,
        _owner: &Owner,
        _outlet: Arc<dyn crate::subscriptions::Outlet>,
    ) -> Result<u64> {
        Ok(2)
    }

    /// Nothing to end on mobile.
    pub(crate) fn unsubscribe(&self, _owner: &Owner, _id: u64) {}

    /// Does nothing on mobile: there is no backend to stop (`None`: none was running).
    pub async fn shutdown(&self) -> Option<std::process::ExitStatus> {
        None
    }

    /// Does nothing on mobile: there is no backend to stop.
    pub fn shutdown_blocking(&self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_unsupported(error: &Error) {
        let info = error.info();
        assert_eq!(info.code, "UNIMPLEMENTED");
        for needle in [
            "does not support Android or iOS",
            "gomobile",
            "Build for desktop",
        ] {
            assert!(
                info.message.contains(needle),
                "{needle:?} in {}",
                info.message
            );
        }
    }

    #[test]
    fn every_call_fails_with_one_clear_error() {
        let anysync = Anysync::new();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime");
        runtime.block_on(async {
            assert_unsupported(&anysync.ping("hi".into()).await.expect_err("ping"));
            assert_unsupported(&anysync.health().await.expect_err("health"));
            assert_unsupported(&anysync.restart().await.expect_err("restart"));
            assert_unsupported(
                &anysync
                    .call("anysync.v1.HealthService/Ping", Bytes::new(), None)
                    .await
                    .expect_err("call"),
            );
            let mut client =
                crate::proto::health_service_client::HealthServiceClient::new(anysync.channel());
            let status = client
                .ping(crate::proto::PingRequest::default())
                .await
                .expect_err("the channel fails");
            assert_eq!(status.code(), tonic::Code::FailedPrecondition);
            assert!(
                status.message().contains("does not support Android"),
                "{status:?}"
            );
            anysync.shutdown().await;
        });
        anysync.shutdown_blocking();
        assert!(anysync.logs().is_empty());
    }

    #[test]
    fn status_is_failed_with_the_reason() {
        let status = Anysync::new().status();
        assert_eq!(status.state, State::Failed);
        assert_eq!(status.pid, None);
        let last = status.last_error.expect("last error");
        assert_eq!(last.code, "UNIMPLEMENTED");
        assert_eq!(last.message, unsupported().to_string());
        assert!(status.since_ms > 0);
    }

    #[test]
    fn events_are_named_like_on_desktop() {
        assert_eq!(STATUS_EVENT, crate::desktop::STATUS_EVENT);
        assert_eq!(LOG_EVENT, crate::desktop::LOG_EVENT);
    }
}
