//! The per-app handle on desktop: owns the supervisor of the sidecar and forwards its events to the
//! front end.

use std::sync::Arc;

use tauri::{AppHandle, Emitter, Runtime};

use bytes::Bytes;

use crate::calls::{Calls, CancelReason, Control, Owner};
use crate::config::SupervisorConfig;
use crate::error::{Error, Result};
use crate::ipc::{Invocation, StreamInvocation};
use crate::models::{LogRecord, Status};
use crate::proto::{HealthCheckResponse, PingResponse};
use crate::stream::{check_credit, check_credit_bytes, FrameSink};
use crate::subscriptions::{Outlet, Subscriptions};
use crate::supervisor::{EventSink, Supervisor};
use crate::transport::BackendChannel;

/// The event carrying every [`Status`] change, broadcast to every webview (outside the plugin's
/// permissions) for Rust listeners (`app.listen`) and pages that `listen` from
/// `@tauri-apps/api/event`. Pages should prefer the `subscribe_status` channel (`onStatus`).
pub const STATUS_EVENT: &str = "anysync://status";
/// The event carrying every backend [`LogRecord`], broadcast like [`STATUS_EVENT`]; pages should
/// prefer the `subscribe_logs` channel (`onLog`).
pub const LOG_EVENT: &str = "anysync://log";

/// Access to the Go backend from Rust; the same operations the front end has.
///
/// Get it with [`AnysyncExt::anysync`](crate::AnysyncExt::anysync).
#[derive(Debug, Clone)]
pub struct Anysync {
    supervisor: Arc<Supervisor>,
    /// The front end's open calls and streams, per webview.
    calls: Arc<Calls>,
    /// The front end's status and log subscriptions, per webview.
    subscriptions: Arc<Subscriptions>,
}

/// The supervisor's events go to the subscriptions (each behind its permission) and, for apps that
/// listen with `@tauri-apps/api/event`, out as the broadcast events too.
struct AppEvents<R: Runtime>(AppHandle<R>, Arc<Subscriptions>);

impl<R: Runtime> EventSink for AppEvents<R> {
    fn status(&self, status: &Status) {
        self.1.publish_status(status);
        if let Err(error) = self.0.emit(STATUS_EVENT, status) {
            log::debug!("cannot emit {STATUS_EVENT}: {error}");
        }
    }

    fn log(&self, record: &LogRecord) {
        self.1.publish_log(record);
        if let Err(error) = self.0.emit(LOG_EVENT, record) {
            log::debug!("cannot emit {LOG_EVENT}: {error}");
        }
    }
}

pub(crate) fn init<R: Runtime>(app: &AppHandle<R>, config: SupervisorConfig) -> Anysync {
    let subscriptions = Arc::new(Subscriptions::default());
    let sink = Arc::new(AppEvents(app.clone(), Arc::clone(&subscriptions)));
    let tauri::async_runtime::RuntimeHandle::Tokio(runtime) = tauri::async_runtime::handle();
    Anysync {
        supervisor: Arc::new(Supervisor::start_on(&runtime, config, sink)),
        calls: Arc::default(),
        subscriptions,
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

    /// One unary call of any method with the request message's protobuf bytes; see
    /// [`Supervisor::call`].
    pub async fn call(
        &self,
        method: &str,
        request: Bytes,
        timeout: Option<std::time::Duration>,
    ) -> Result<Bytes> {
        self.supervisor.call(method, request, timeout).await
    }

    /// An authenticated channel for the app's own tonic-generated clients that always follows the
    /// current backend incarnation: `FooClient::new(app.anysync().channel())`. See
    /// [`Supervisor::channel`].
    pub fn channel(&self) -> BackendChannel {
        self.supervisor.channel()
    }

    /// The supervisor itself, for what the handle does not wrap (e.g. [`Supervisor::open_stream`]).
    pub fn supervisor(&self) -> &Supervisor {
        &self.supervisor
    }

    /// The `call` command: registered under its id (when it has one) so `cancel` reaches it.
    pub(crate) async fn call_for(&self, owner: &Owner, call: Invocation) -> Result<Bytes> {
        let Invocation {
            method,
            id,
            timeout,
            body,
        } = call;
        let Some(id) = id else {
            return self.supervisor.call_method(&method, body, timeout).await;
        };
        let control = Control::new(0);
        let _registration = self.calls.register(owner, &id, Arc::clone(&control))?;
        // Losing the race drops the call's future, which resets its HTTP/2 stream: the Go
        // handler's context is done.
        tokio::select! {
            result = self.supervisor.call_method(&method, body, timeout) => result,
            reason = control.cancelled() => Err(Error::Cancelled {
                what: match reason {
                    CancelReason::Caller => format!("call {id:?} ({method})"),
                    CancelReason::OwnerGone => format!("call {id:?} ({method}) of a webview that went away"),
                },
            }),
        }
    }

    /// The `stream` command: registers the stream, then runs it in the background.
    pub(crate) async fn stream_for(
        &self,
        owner: &Owner,
        stream: StreamInvocation,
        sink: Arc<dyn FrameSink>,
    ) -> Result<()> {
        let control = Control::with_bytes(stream.credit, stream.credit_bytes);
        let registration = self
            .calls
            .register(owner, &stream.id, Arc::clone(&control))?;
        let call = stream.call;
        self.supervisor
            .start_stream(
                call.method,
                call.body,
                call.timeout,
                control,
                sink,
                Some(registration),
            )
            .await
    }

    /// The `credit` command.
    pub(crate) fn credit(&self, owner: &Owner, id: &str, n: u32, bytes: Option<u32>) -> Result<()> {
        let bytes = bytes.map(check_credit_bytes).transpose()?;
        self.calls
            .credit(&owner.webview, id, check_credit(n)?, bytes);
        Ok(())
    }

    /// The `cancel` command.
    pub(crate) fn cancel(&self, owner: &Owner, id: &str) {
        self.calls.cancel(&owner.webview, id);
    }

    /// The webview reloads: what it opened has no one to report to any more.
    pub(crate) fn webview_gone(&self, webview: &str) {
        self.calls.webview_gone(webview);
        self.subscriptions.webview_gone(webview);
    }

    /// The window was destroyed, with its webviews.
    pub(crate) fn window_gone(&self, window: &str) {
        self.calls.window_gone(window);
        self.subscriptions.window_gone(window);
    }

    /// The `subscribe_status` command: the current status at once, then every change.
    pub(crate) fn subscribe_status(&self, owner: &Owner, outlet: Arc<dyn Outlet>) -> Result<u64> {
        self.subscriptions
            .subscribe_status(owner, outlet, || self.supervisor.status())
    }

    /// The `subscribe_logs` command: every backend log record from now on.
    pub(crate) fn subscribe_logs(&self, owner: &Owner, outlet: Arc<dyn Outlet>) -> Result<u64> {
        self.subscriptions.subscribe_logs(owner, outlet)
    }

    /// The `unsubscribe` command.
    pub(crate) fn unsubscribe(&self, owner: &Owner, id: u64) {
        self.subscriptions.unsubscribe(owner, id);
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

    /// Stops the backend and waits until it is gone (bounded by the shutdown timeout); answers how
    /// it exited (`None` when none was running).
    pub async fn shutdown(&self) -> Option<std::process::ExitStatus> {
        self.supervisor.shutdown().await
    }

    /// Stops the backend from synchronous code (the app's exit handler), bounded so that exit can
    /// never hang on it. Safe on any thread, also one inside a tokio runtime (an app that handed
    /// Tauri its own runtime with `tauri::async_runtime::set` runs its event loop in one): the wait
    /// happens on a thread of its own, never by blocking a runtime.
    pub fn shutdown_blocking(&self) {
        let bound = self.supervisor.config().shutdown_timeout + std::time::Duration::from_secs(1);
        let supervisor = Arc::clone(&self.supervisor);
        let (done, finished) = std::sync::mpsc::channel();
        // `Supervisor::shutdown` only sends a command and awaits its answer, which needs no
        // particular runtime: a small one of this thread's own drives it.
        let waiter = std::thread::Builder::new()
            .name("anysync-shutdown".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(runtime) = runtime {
                    let exit = runtime.block_on(supervisor.shutdown());
                    let _ = done.send(exit);
                }
            });
        if let Err(error) = waiter {
            log::warn!("anysync: cannot stop the backend at app exit: {error}");
            return;
        }
        match finished.recv_timeout(bound) {
            Ok(exit) => log::debug!(
                "anysync backend stopped at app exit ({})",
                crate::sidecar::describe(exit)
            ),
            Err(_) => log::warn!(
                "anysync backend did not stop within {}ms of app exit",
                bound.as_millis()
            ),
        }
    }
}
